// Config validation of TCP listeners (tcp_proxy, filter_chains) and of clusters that send
// the PROXY protocol: defaults filled in, and one test per mistake with its exact path and
// message (validate.ts checkTcpListener / clusterRef; schema/listener.ts).

import t from 'tap';
import { validateConfig } from '../../src/config/validate.js';
import { formatErrors } from '../../src/config/load.js';
import type { ConfigError, RemoraConfig } from '../../src/config/types.js';

type Obj = Record<string, unknown>;

/** A valid config: one TCP listener to cluster `db`, and a cluster `pp` that sends PROXY v1. */
function base(listener: Obj = {}): Obj {
  return {
    workers: 1,
    listeners: [{ name: 'tcp', port: 0, tcp_proxy: { cluster: 'db' }, ...listener }],
    clusters: [
      { name: 'db', endpoints: [{ address: '127.0.0.1', port: 5432 }] },
      { name: 'pp', send_proxy_protocol: 'v1', endpoints: [{ address: '127.0.0.1', port: 6379 }] },
    ],
  };
}

const chain = (name: string, match: Obj, cluster = 'db'): Obj => ({ name, match, tcp_proxy: { cluster } });

function configOf(raw: unknown): RemoraConfig {
  const r = validateConfig(raw, { defaultWorkers: 1 });
  if (!r.ok) throw new Error(formatErrors('test', r.errors));
  return r.config;
}

function errorsOf(raw: unknown): ConfigError[] {
  const r = validateConfig(raw, { defaultWorkers: 1 });
  if (r.ok) throw new Error('expected validation to fail, but the config was accepted');
  return r.errors;
}

/** The errors as `path: message` lines, for asserts whose failure shows what was seen. */
const lines = (errors: readonly ConfigError[]): string[] => errors.map((e) => `${e.path}: ${e.message}`);

const HTTP_SETTING = 'is an HTTP setting: a TCP listener ("tcp_proxy" / "filter_chains") forwards bytes';

t.test('a TCP listener: tcp_proxy defaults, chains normalised', async (t) => {
  const cfg = configOf(base({
    proxy_protocol: true,
    request_headers_timeout_ms: 500,
    filter_chains: [chain('a', { server_names: ['A.Example', '*.B.example'], transport_protocol: 'tls', application_protocols: ['h2'] }), { name: 'any', tcp_proxy: { weighted_clusters: [{ cluster: 'db', weight: 1 }, { cluster: 'pp', weight: 3 }] } }],
  }));
  const l = cfg.listeners[0];
  t.strictSame(l.tcp_proxy, { cluster: 'db', idle_timeout_ms: 3_600_000, max_connect_attempts: 1, max_downstream_connection_duration_ms: 0 },
    'tcp_proxy defaults: idle 1 h (Envoy), one connect attempt, no duration limit');
  t.strictSame(l.filter_chains[0].match, { server_names: ['a.example', '*.b.example'], transport_protocol: 'tls', application_protocols: ['h2'], destination_prefix_ranges: [], direct_source_prefix_ranges: [], source_type: 'any', source_prefix_ranges: [], source_ports: [] }, 'server names lower-cased');
  t.strictSame(l.filter_chains[1].match, { server_names: [], application_protocols: [], destination_prefix_ranges: [], direct_source_prefix_ranges: [], source_type: 'any', source_prefix_ranges: [], source_ports: [] }, 'a chain without match takes anything');
  t.equal(l.proxy_protocol, true, 'proxy_protocol is allowed on a TCP listener');
  t.equal(l.request_headers_timeout_ms, 500, 'request_headers_timeout_ms is allowed on a TCP listener (PROXY header / ClientHello)');
  t.equal(cfg.clusters[1].send_proxy_protocol, 'v1', 'a send_proxy_protocol cluster may be a tcp_proxy\'s');
  const only = configOf({ ...base(), listeners: [{ name: 'sni', port: 0, filter_chains: [chain('a', { server_names: ['a.example'] })] }] });
  t.equal(only.listeners[0].tcp_proxy, undefined, 'filter_chains alone (no default chain) make a TCP listener');
});

t.test('HTTP-only fields are refused on a TCP listener, by path', async (t) => {
  const vhosts = [{ name: 'a', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'db' } }] }];
  t.strictSame(lines(errorsOf(base({ virtual_hosts: vhosts }))), [`listeners[0].virtual_hosts: ${HTTP_SETTING}`], 'virtual_hosts');
  t.strictSame(lines(errorsOf(base({ tls: { cert_file: '/nonexistent/c.pem', key_file: '/nonexistent/k.pem' } }))),
    [`listeners[0].tls: ${HTTP_SETTING} (TLS passes through, or set a filter chain's tls to terminate it)`], 'tls (TLS is passed through, not terminated)');
  for (const [key, value] of [['idle_timeout_ms', 1000], ['codec_type', 'http1'], ['rate_limits', []], ['normalize_path', false], ['server_name', 'x']] as const) {
    t.strictSame(lines(errorsOf(base({ [key]: value }))), [`listeners[0].${key}: ${HTTP_SETTING}`], `${key} (given, even with its default value)`);
  }
  const fc = errorsOf({ ...base(), listeners: [{ name: 'sni', port: 0, filter_chains: [chain('a', {})], max_request_headers_kb: 8 }] });
  t.strictSame(lines(fc), [`listeners[0].max_request_headers_kb: ${HTTP_SETTING}`], 'the same on a listener with filter_chains only');
});

t.test('clusters: unknown ones, exactly one of cluster / weighted_clusters', async (t) => {
  t.strictSame(lines(errorsOf(base({ tcp_proxy: { cluster: 'nope' } }))), ['listeners[0].tcp_proxy.cluster: unknown cluster "nope" (defined: db, pp)'], 'the listener\'s own tcp_proxy');
  t.strictSame(lines(errorsOf(base({ filter_chains: [{ name: 'w', tcp_proxy: { weighted_clusters: [{ cluster: 'db', weight: 1 }, { cluster: 'gone', weight: 1 }] } }] }))),
    ['listeners[0].filter_chains[0].tcp_proxy.weighted_clusters[1].cluster: unknown cluster "gone" (defined: db, pp)'], 'a chain\'s weighted cluster');
  t.strictSame(lines(errorsOf(base({ tcp_proxy: {} }))), ['listeners[0].tcp_proxy: must set exactly one of "cluster" or "weighted_clusters"'], 'neither');
  t.strictSame(lines(errorsOf(base({ tcp_proxy: { cluster: 'db', weighted_clusters: [{ cluster: 'db', weight: 1 }] } }))),
    ['listeners[0].tcp_proxy: must set exactly one of "cluster" or "weighted_clusters", not "cluster" and "weighted_clusters"'], 'both');
  t.strictSame(lines(errorsOf(base({ tcp_proxy: { weighted_clusters: [{ cluster: 'db', weight: 0 }] } }))), ['listeners[0].tcp_proxy.weighted_clusters: weights must add up to more than 0'], 'zero total weight');
  const attempts = lines(errorsOf(base({ tcp_proxy: { cluster: 'db', max_connect_attempts: 0 } })));
  t.equal(attempts.length, 1, `max_connect_attempts 0: one error (got ${JSON.stringify(attempts)})`);
  t.match(attempts[0], /^listeners\[0\]\.tcp_proxy\.max_connect_attempts: /, 'max_connect_attempts 0: refused at its path');
  t.strictSame(lines(errorsOf(base({ filter_chains: [{ name: 'a' }] }))),
    ['listeners[0].filter_chains[0].tcp_proxy: is required (a filter chain forwards its connections with tcp_proxy)'], 'a chain without tcp_proxy');
});

t.test('filter chains: duplicate names, duplicate matches, bad server names and protocols', async (t) => {
  t.strictSame(lines(errorsOf(base({ filter_chains: [chain('a', { server_names: ['a.example'] }), chain('a', { server_names: ['b.example'] })] }))),
    ['listeners[0].filter_chains[1].name: duplicate filter chain name "a" (first used at listeners[0].filter_chains[0].name)'], 'duplicate name');
  t.strictSame(lines(errorsOf(base({
    filter_chains: [chain('a', { server_names: ['a.example', 'b.example'], application_protocols: ['h2', 'http/1.1'] }), chain('b', { server_names: ['B.example', 'a.example'], application_protocols: ['http/1.1', 'h2'] })],
  }))), ['listeners[0].filter_chains[1].match: overlaps listeners[0].filter_chains[0]: both take server name "b.example", any transport, ALPN "http/1.1" (each combination belongs to one chain, as in Envoy)'],
  'the same match in another order and case is a duplicate');
  t.strictSame(lines(errorsOf(base({
    filter_chains: [chain('a', { server_names: ['a.example', 'b.example'] }), chain('b', { server_names: ['a.example'], transport_protocol: 'tls' }), chain('c', { server_names: ['a.example'] })],
  }))), ['listeners[0].filter_chains[2].match: overlaps listeners[0].filter_chains[0]: both take server name "a.example", any transport, any ALPN (each combination belongs to one chain, as in Envoy)'],
  'a chain whose names are a subset of another\'s overlaps it; one narrowed by transport does not');
  t.strictSame(lines(errorsOf(base({ filter_chains: [{ name: 'x', tcp_proxy: { cluster: 'db' } }, chain('y', {})] }))),
    ['listeners[0].filter_chains[1].match: overlaps listeners[0].filter_chains[0]: both take any server name, any transport, any ALPN (each combination belongs to one chain, as in Envoy)'], 'two catch-all chains');
  t.strictSame(lines(errorsOf(base({ filter_chains: [chain('a', { server_names: ['*x.example', 'bad name', '*.ok.example', '', 'a..b'] })] }))), [
    'listeners[0].filter_chains[0].match.server_names[0]: "*x.example" is not a server name: use a host name or "*.suffix"',
    'listeners[0].filter_chains[0].match.server_names[1]: "bad name" is not a server name: use a host name or "*.suffix"',
    'listeners[0].filter_chains[0].match.server_names[3]: "" is not a server name: use a host name or "*.suffix"',
    'listeners[0].filter_chains[0].match.server_names[4]: "a..b" is not a server name: use a host name or "*.suffix"',
  ], 'bad server names, each by index; "*.suffix" is fine');
  t.strictSame(lines(errorsOf(base({ filter_chains: [chain('a', { transport_protocol: 'quic', application_protocols: [''] })] }))), [
    'listeners[0].filter_chains[0].match.transport_protocol: must be one of tls, raw_buffer',
    'listeners[0].filter_chains[0].match.application_protocols[0]: must be 1..255 characters',
  ], 'unknown transport, empty ALPN id');
});

t.test('a send_proxy_protocol cluster cannot be an HTTP route\'s', async (t) => {
  const c = base();
  (c.listeners as Obj[]).push({
    name: 'http', port: 0,
    virtual_hosts: [{ name: 'a', domains: ['*'], routes: [
      { match: { prefix: '/w' }, route: { weighted_clusters: [{ cluster: 'db', weight: 1 }, { cluster: 'pp', weight: 1 }] } },
      { match: { prefix: '/' }, route: { cluster: 'pp' } },
    ] }],
  });
  const why = 'sends the PROXY protocol (send_proxy_protocol), which only tcp_proxy connections carry: pooled HTTP connections serve many clients';
  t.strictSame(lines(errorsOf(c)), [
    `listeners[1].virtual_hosts[0].routes[0].route.weighted_clusters[1].cluster: cluster "pp" ${why}`,
    `listeners[1].virtual_hosts[0].routes[1].route.cluster: cluster "pp" ${why}`,
  ], 'refused by the route\'s path, as a cluster and as a weighted cluster');
  t.strictSame(lines(errorsOf(base({ send_proxy_protocol: 'v1' }))).length, 1, 'send_proxy_protocol is a cluster field, not a listener\'s');
  const bad = lines(errorsOf({ ...base(), clusters: [{ name: 'db', send_proxy_protocol: 'v3', endpoints: [] }] }));
  t.match(bad, [/^clusters\[0\]\.send_proxy_protocol: must be one of v1, v2$/], `send_proxy_protocol v3 refused (got ${JSON.stringify(bad)})`);
});

t.test('a listener with neither virtual hosts nor tcp_proxy is refused, naming tcp_proxy', async (t) => {
  t.strictSame(lines(errorsOf({ ...base(), listeners: [{ name: 'empty', port: 0 }] })),
    ['listeners[0].virtual_hosts: must list at least one virtual host (or set "tcp_proxy" or "filter_chains" for a TCP listener)'], 'no vhosts, no tcp_proxy');
  t.strictSame(lines(errorsOf({ ...base(), listeners: [{ name: 'empty', port: 0, virtual_hosts: [], filter_chains: [] }] })),
    ['listeners[0].virtual_hosts: must list at least one virtual host (or set "tcp_proxy" or "filter_chains" for a TCP listener)'], 'empty lists');
});
