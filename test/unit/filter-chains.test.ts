// FilterChainTable (src/router/filter-chains.ts): which chain a connection gets, in
// Envoy's order — server name (exact, then the longest `*.suffix`, then chains naming
// none), then transport protocol, then ALPN — with no going back to a less specific
// server name when a later criterion rules out the more specific chains (Envoy's
// filter_chain_match tree), the listener's own tcp_proxy as the default chain, and null
// (closed) without one. Chains come from validateConfig, as a worker gets them.

import t, { type Test } from 'tap';
import { validateConfig } from '../../src/config/validate.js';
import { formatErrors } from '../../src/config/load.js';
import { FilterChainTable, type ConnectionAddresses, type ConnectionFacts } from '../../src/router/filter-chains.js';
import { addressBytes, cidrContains, parseCidr } from '../../src/router/cidr.js';

type Match = {
  server_names?: string[]; transport_protocol?: 'tls' | 'raw_buffer'; application_protocols?: string[];
  destination_prefix_ranges?: string[]; direct_source_prefix_ranges?: string[]; source_prefix_ranges?: string[]; source_ports?: number[];
  source_type?: 'any' | 'same_ip_or_loopback' | 'external';
};

/** A table of chains named by the keys of `chains`, with a default chain when `withDefault`. */
function table(chains: Record<string, Match>, withDefault: boolean): FilterChainTable {
  const r = validateConfig({
    workers: 1,
    listeners: [{
      name: 'l', port: 0,
      ...(withDefault ? { tcp_proxy: { cluster: 'c' } } : {}),
      filter_chains: Object.entries(chains).map(([name, match]) => ({ name, match, tcp_proxy: { cluster: 'c' } })),
    }],
    clusters: [{ name: 'c', endpoints: [] }],
  }, { defaultWorkers: 1 });
  if (!r.ok) throw new Error(formatErrors('test', r.errors));
  return new FilterChainTable(r.config.listeners[0].filter_chains, r.config.listeners[0].tcp_proxy);
}

const tlsConn = (serverName: string, alpn: string[] = []): ConnectionFacts => ({ transport: 'tls', serverName, alpn });
const RAW: ConnectionFacts = { transport: 'raw_buffer', serverName: '', alpn: [] };

/** The picked chain's name: '' for the default chain, 'closed' for none. */
const pick = (tb: FilterChainTable, facts: ConnectionFacts): string => tb.pick(facts)?.name ?? 'closed';

function expectPicks(t: Test, tb: FilterChainTable, cases: [ConnectionFacts, string][], what: string): void {
  for (const [facts, want] of cases) {
    const got = pick(tb, facts);
    t.equal(got, want, `${what}: ${JSON.stringify(facts)} → expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
  }
}

t.test('server names: exact > longest wildcard > chains without names', async (t) => {
  const tb = table({
    wild: { server_names: ['*.example'] },
    exact: { server_names: ['a.b.example'] },
    wildB: { server_names: ['*.b.example'] },
    wildCB: { server_names: ['*.c.b.example', 'other.test'] },
    none: {},
  }, false);
  expectPicks(t, tb, [
    [tlsConn('a.b.example'), 'exact'],
    [tlsConn('x.b.example'), 'wildB'],
    [tlsConn('y.c.b.example'), 'wildCB'],
    [tlsConn('deep.x.b.example'), 'wildB'],
    [tlsConn('x.example'), 'wild'],
    [tlsConn('other.test'), 'wildCB'],
    [tlsConn('b.example'), 'wild'], // "*.b.example" does not take b.example itself
    [tlsConn('example'), 'none'], // nor does "*.example" take "example"
    [tlsConn('elsewhere.test'), 'none'],
    [tlsConn(''), 'none'], // no SNI: only chains without server names
    [RAW, 'none'],
  ], 'server names');
});

t.test('no match: the default chain when the listener has tcp_proxy, else null', async (t) => {
  const chains = { a: { server_names: ['a.example'] }, wild: { server_names: ['*.b.example'] } };
  const withDefault = table(chains, true);
  const without = table(chains, false);
  for (const facts of [tlsConn('c.example'), tlsConn(''), RAW, tlsConn('b.example')]) {
    t.equal(pick(withDefault, facts), '', `${JSON.stringify(facts)}: the default chain (name '')`);
    t.equal(without.pick(facts), null, `${JSON.stringify(facts)}: null without a default chain (closed)`);
  }
  const d = withDefault.pick(RAW);
  t.equal(d?.tcpProxy.cluster, 'c', 'the default chain carries the listener\'s own tcp_proxy');
  t.equal(pick(withDefault, tlsConn('A.example'.toLowerCase())), 'a', 'a named chain still wins over the default');
  const onlyDefault = new FilterChainTable([], withDefault.pick(RAW)!.tcpProxy);
  t.equal(onlyDefault.needsInspection, false, 'tcp_proxy alone: no ClientHello is read');
  t.equal(pick(onlyDefault, tlsConn('x.example')), '', 'tcp_proxy alone takes everything');
});

t.test('transport protocol after server names', async (t) => {
  const tb = table({ raw: { transport_protocol: 'raw_buffer' }, tls: { transport_protocol: 'tls' }, any: { application_protocols: ['imap'] } }, false);
  expectPicks(t, tb, [[RAW, 'raw'], [tlsConn(''), 'tls'], [tlsConn('x.example', ['h2']), 'tls']], 'transport');
  const fallback = table({ tls: { transport_protocol: 'tls' }, any: {} }, false);
  expectPicks(t, fallback, [[RAW, 'any'], [tlsConn(''), 'tls']], 'a chain naming the transport beats one that does not');
  // Envoy never goes back to a less specific server name: a.example picks chain "a" by name,
  // which wants raw_buffer; a TLS connection to a.example then matches nothing.
  const noBacktrack = table({ a: { server_names: ['a.example'], transport_protocol: 'raw_buffer' }, any: {} }, false);
  expectPicks(t, noBacktrack, [[tlsConn('a.example'), 'closed'], [tlsConn('b.example'), 'any']], 'no backtracking to less specific names');
  const noBacktrackDefault = table({ a: { server_names: ['a.example'], transport_protocol: 'raw_buffer' }, any: {} }, true);
  t.equal(pick(noBacktrackDefault, tlsConn('a.example')), '', 'the same with a default chain: the default chain');
});

t.test('ALPN after transport', async (t) => {
  const tb = table({
    h2: { application_protocols: ['h2'] },
    h1: { server_names: ['h1.example'], application_protocols: ['http/1.1'] },
    h1any: { server_names: ['h1.example'] },
    plain: {},
  }, false);
  expectPicks(t, tb, [
    [tlsConn('', ['h2', 'http/1.1']), 'h2'],
    [tlsConn('x.example', ['http/1.1', 'h2']), 'h2'],
    [tlsConn('', ['http/1.1']), 'plain'],
    [tlsConn('', []), 'plain'],
    [tlsConn('h1.example', ['http/1.1']), 'h1'],
    [tlsConn('h1.example', ['h2']), 'h1any'], // the name wins; among its chains, the one naming no ALPN
    [RAW, 'plain'],
  ], 'ALPN');
  const strict = table({ h2: { application_protocols: ['h2'] } }, false);
  expectPicks(t, strict, [[tlsConn('', ['http/1.1']), 'closed'], [tlsConn('', ['h2']), 'h2']], 'a chain naming ALPN takes no other protocol');
});

t.test('needsInspection: only when a chain looks at the ClientHello', async (t) => {
  t.equal(table({ a: {} }, true).needsInspection, false, 'catch-all chains only: connections are not read first');
  t.equal(table({ a: { server_names: ['a.example'] } }, false).needsInspection, true, 'server_names');
  t.equal(table({ a: { transport_protocol: 'raw_buffer' } }, false).needsInspection, true, 'transport_protocol');
  t.equal(table({ a: { application_protocols: ['h2'] } }, false).needsInspection, true, 'application_protocols');
});

/** A connection from `source` (port `port`; through a PROXY header when `direct` differs)
 *  to `destination`. */
const from = (source: string, port = 40000, destination = '10.7.7.7', direct = source): ConnectionAddresses => ({ destination, directSource: direct, source, sourcePort: port });
const pickAt = (tb: FilterChainTable, facts: ConnectionFacts, at: ConnectionAddresses): string => tb.pick(facts, at)?.name ?? 'closed';

t.test('by the client\'s address: the longest matching range, else chains naming none', async (t) => {
  const tb = table({
    wide: { source_prefix_ranges: ['10.0.0.0/8'] },
    narrow: { source_prefix_ranges: ['10.1.0.0/16', '192.0.2.7'] },
    v6: { source_prefix_ranges: ['fd00::/8'] },
  }, true);
  const seen = ['10.1.2.3', '10.9.9.9', '192.0.2.7', '192.0.2.8', 'fd00::1', '::ffff:10.1.0.9', 'fe80::1'].map((a) => [a, pickAt(tb, RAW, from(a))]);
  t.same(seen, [['10.1.2.3', 'narrow'], ['10.9.9.9', 'wide'], ['192.0.2.7', 'narrow'], ['192.0.2.8', ''], ['fd00::1', 'v6'], ['::ffff:10.1.0.9', 'narrow'], ['fe80::1', '']]);
  t.ok(tb.needsAddresses);
  t.notOk(tb.needsInspection, 'expected address criteria not to need the ClientHello');
});

t.test('Envoy\'s order: destination, server name, transport, ALPN, direct source, source type, source, port', async (t) => {
  const tb = table({
    dest: { destination_prefix_ranges: ['10.0.0.0/24'], server_names: ['a.example'] },
    name: { server_names: ['a.example'], source_prefix_ranges: ['10.9.0.0/16'] },
    nameAny: { server_names: ['a.example'] },
    local: { server_names: ['b.example'], source_type: 'same_ip_or_loopback' },
    external: { server_names: ['b.example'], source_type: 'external' },
    port: { server_names: ['c.example'], source_ports: [5555] },
    portAny: { server_names: ['c.example'] },
    direct: { server_names: ['d.example'], direct_source_prefix_ranges: ['127.0.0.1/32'], source_prefix_ranges: ['10.0.0.0/8'] },
    source: { server_names: ['d.example'], source_prefix_ranges: ['10.5.0.0/16'] },
  }, false);
  expectAt(t, tb, [
    [tlsConn('a.example'), from('10.9.1.1', 1, '10.0.0.1'), 'dest'],
    [tlsConn('a.example'), from('10.9.1.1', 1, '10.0.1.1'), 'name'],
    [tlsConn('a.example'), from('10.8.1.1', 1, '10.0.1.1'), 'nameAny'],
    [tlsConn('b.example'), from('127.0.0.1', 1, '10.0.1.1'), 'local'],
    [tlsConn('b.example'), from('10.0.1.1', 1, '10.0.1.1'), 'local'],
    [tlsConn('b.example'), from('10.2.2.2', 1, '10.0.1.1'), 'external'],
    [tlsConn('c.example'), from('10.2.2.2', 5555), 'port'],
    [tlsConn('c.example'), from('10.2.2.2', 5556), 'portAny'],
    // The direct source narrows first: behind a PROXY header from 127.0.0.1, the chain
    // naming it wins even though the other names a longer client range.
    [tlsConn('d.example'), from('10.5.1.1', 1, '10.7.7.7', '127.0.0.1'), 'direct'],
    [tlsConn('d.example'), from('10.5.1.1', 1, '10.7.7.7', '127.0.0.2'), 'source'],
    [tlsConn('d.example'), from('10.6.1.1', 1, '10.7.7.7', '127.0.0.2'), 'closed'],
    // The destination comes first, with no going back: to 10.0.0.1 only `dest` is left,
    // which does not name c.example.
    [tlsConn('c.example'), from('10.2.2.2', 5555, '10.0.0.1'), 'closed'],
  ]);
});

function expectAt(t: Test, tb: FilterChainTable, cases: [ConnectionFacts, ConnectionAddresses, string][]): void {
  for (const [facts, at, want] of cases) {
    const got = pickAt(tb, facts, at);
    t.equal(got, want, `${facts.serverName} from ${at.source}:${at.sourcePort} (peer ${at.directSource}) to ${at.destination} → expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
  }
}

t.test('IP ranges', async (t) => {
  const contains = (range: string, address: string): boolean => cidrContains(parseCidr(range)!, addressBytes(address)!);
  t.same([contains('10.0.0.0/8', '10.255.1.1'), contains('10.0.0.0/8', '11.0.0.1'), contains('10.1.2.0/23', '10.1.3.255'), contains('10.1.2.0/23', '10.1.4.0'),
    contains('0.0.0.0/0', '1.2.3.4'), contains('fd00::/8', 'fdff::1'), contains('fd00::/8', 'fe00::1'), contains('2001:db8::/32', '2001:db8:0:0:1::1'),
    contains('::/0', '::1'), contains('10.0.0.0/8', '::ffff:10.1.1.1'), contains('::1/128', '::1'), contains('10.0.0.0/8', 'fd00::1')],
  [true, false, true, false, true, true, false, true, true, true, true, false]);
  t.same(['10.0.0.0/33', 'fd00::/129', '10.0.0/8', 'x/8', '10.0.0.0/x', ''].map((r) => parseCidr(r)), [null, null, null, null, null, null], 'expected bad ranges refused');
  t.same(parseCidr('10.0.0.1'), { bytes: Uint8Array.from([10, 0, 0, 1]), prefixLen: 32 });
});
