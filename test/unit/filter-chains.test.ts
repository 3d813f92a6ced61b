// FilterChainTable (src/router/filter-chains.ts): which chain a connection gets, in
// Envoy's order — server name (exact, then the longest `*.suffix`, then chains naming
// none), then transport protocol, then ALPN — with no going back to a less specific
// server name when a later criterion rules out the more specific chains (Envoy's
// filter_chain_match tree), the listener's own tcp_proxy as the default chain, and null
// (closed) without one. Chains come from validateConfig, as a worker gets them.

import t, { type Test } from 'tap';
import { validateConfig } from '../../src/config/validate.js';
import { formatErrors } from '../../src/config/load.js';
import { FilterChainTable, type ConnectionFacts } from '../../src/router/filter-chains.js';

type Match = { server_names?: string[]; transport_protocol?: 'tls' | 'raw_buffer'; application_protocols?: string[] };

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
