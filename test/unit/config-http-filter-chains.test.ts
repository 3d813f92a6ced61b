// Config validation of an HTTP listener's HTTPS filter chains (`http_filter_chains`,
// validate-http-chains.ts): names and server names unique, domains unique per chain but
// virtual host and route names across the listener, a default chain that is whole, the
// TLS server's settings the same on every chain; and the helpers that walk every route
// table of a listener (rate-limit buckets) and pick a chain by server name.

import t from 'tap';
import { formatErrors } from '../../src/config/load.js';
import type { ConfigError, RemoraConfig } from '../../src/config/types.js';
import { validateConfig } from '../../src/config/validate.js';
import { allRateLimits } from '../../src/filters/rate-limit.js';
import { ServerNames } from '../../src/router/server-names.js';

type Obj = Record<string, unknown>;

const pair = (name: string): Obj => ({ cert_file: `/tmp/${name}.pem`, key_file: `/tmp/${name}.key` });
const vhosts = (name: string, domains: string[] = ['*'], route = `${name}-r`): Obj[] => [{ name, domains, routes: [{ name: route, match: { prefix: '/' }, route: { cluster: 'app' } }] }];
const chain = (name: string, serverNames: string[], more: Obj = {}): Obj => ({ name, server_names: serverNames, tls: pair(name), virtual_hosts: vhosts(`${name}-vh`), ...more });

function base(listener: Obj): Obj {
  return { workers: 1, listeners: [{ name: 'https', port: 0, ...listener }], clusters: [{ name: 'app', endpoints: [{ address: '127.0.0.1', port: 8080 }] }] };
}

function configOf(raw: unknown): RemoraConfig {
  const r = validateConfig(raw, { defaultWorkers: 1 });
  if (!r.ok) throw new Error(formatErrors('test', r.errors));
  return r.config;
}

function errorsOf(raw: unknown): string[] {
  const r = validateConfig(raw, { defaultWorkers: 1 });
  if (r.ok) throw new Error('expected validation to fail, but the config was accepted');
  return r.errors.map((e: ConfigError) => `${e.path}: ${e.message}`);
}

t.test('chains with and without a default chain are accepted, names lower-cased', async (t) => {
  const cfg = configOf(base({ tls: pair('default'), virtual_hosts: vhosts('default'), http_filter_chains: [chain('foo', ['Foo.Example']), chain('bar', ['*.bar.example'])] }));
  const l = cfg.listeners[0];
  t.same(l.http_filter_chains.map((c) => c.server_names), [['foo.example'], ['*.bar.example']]);
  t.equal(l.http_filter_chains[0].tls.require_client_certificate, false, 'expected the chain\'s TLS defaults filled in');
  t.equal(l.forward_client_cert_details, 'sanitize');
  const only = configOf(base({ http_filter_chains: [chain('foo', ['foo.example'], { tls: { ...pair('foo'), ca_file: '/tmp/ca.pem' } })] }));
  t.equal(only.listeners[0].http_filter_chains[0].tls.require_client_certificate, true);
  t.equal(only.listeners[0].forward_client_cert_details, 'sanitize_set', 'expected a chain with client CAs to make XFCC sanitize_set by default');
});

t.test('each mistake with its path', async (t) => {
  t.same(errorsOf(base({ tls: pair('default'), http_filter_chains: [chain('foo', ['foo.example'])] })),
    ['listeners[0].virtual_hosts: must list at least one virtual host when "tls" is set beside "http_filter_chains" (the default chain, for connections whose server name no chain lists); leave "tls" out to refuse those connections']);
  t.same(errorsOf(base({ virtual_hosts: vhosts('default'), http_filter_chains: [chain('foo', ['foo.example'])] })),
    ['listeners[0].tls: is required with "http_filter_chains" when "virtual_hosts" is set: the default chain serves TLS, as the chains do']);
  t.same(errorsOf(base({ http_filter_chains: [chain('foo', ['foo.example']), chain('foo', ['foo.example', 'bar.example'], { virtual_hosts: vhosts('other') })] })), [
    'listeners[0].http_filter_chains[1].name: duplicate filter chain name "foo" (first used at listeners[0].http_filter_chains[0].name)',
    'listeners[0].http_filter_chains[1].server_names[0]: duplicate server name "foo.example" (first used at listeners[0].http_filter_chains[0].server_names[0])',
  ]);
  t.same(errorsOf(base({ http_filter_chains: [chain('foo', [])] })),
    ['listeners[0].http_filter_chains[0].server_names: must list at least one server name (the listener\'s own `tls` and `virtual_hosts` are the chain for every other name)']);
  t.same(errorsOf(base({ http_filter_chains: [{ name: 'foo', server_names: ['foo.example'], virtual_hosts: vhosts('v') }] })),
    ['listeners[0].http_filter_chains[0].tls: is required (a chain picked by server name serves TLS)']);
  t.same(errorsOf(base({ http_filter_chains: [chain('foo', ['foo.example']), chain('bar', ['bar.example'], { tls: { ...pair('bar'), min_version: 'TLSv1.3' } })] })),
    ['listeners[0].http_filter_chains[1].tls.min_version: must be the same as listeners[0].http_filter_chains[0].tls.min_version (TLSv1.2), got TLSv1.3: it is a setting of the listener\'s one TLS server, whichever chain a client gets']);
  // Domains may repeat across chains (each chain routes its own connections); names may not.
  t.same(errorsOf(base({ http_filter_chains: [chain('foo', ['foo.example']), chain('bar', ['bar.example'], { virtual_hosts: vhosts('foo-vh') })] })),
    ['listeners[0].http_filter_chains[1].virtual_hosts[0].name: duplicate virtual host name "foo-vh" (first used at listeners[0].http_filter_chains[0].virtual_hosts[0].name)',
      'listeners[0].http_filter_chains[1].virtual_hosts[0].routes[0].name: duplicate route name "foo-vh-r" (first used at listeners[0].http_filter_chains[0].virtual_hosts[0].routes[0].name)']);
  t.same(errorsOf(base({ http_filter_chains: [chain('foo', ['foo.example'], { virtual_hosts: [...vhosts('a', ['x.example']), ...vhosts('b', ['x.example'], 'b-r')] })] })),
    ['listeners[0].http_filter_chains[0].virtual_hosts[1].domains[0]: duplicate domain "x.example" (first used at listeners[0].http_filter_chains[0].virtual_hosts[0].domains[0])']);
  t.match(errorsOf(base({ codec: 'uws', http_filter_chains: [chain('foo', ['foo.example'])] })), ['listeners[0].codec: must be "strict" on a TLS listener (uWS cannot read client certificates)']);
  t.match(errorsOf({ ...base({ tcp_proxy: { cluster: 'app' }, http_filter_chains: [chain('foo', ['foo.example'])] }) }),
    ['listeners[0].http_filter_chains: is an HTTP setting: a TCP listener ("tcp_proxy" / "filter_chains") forwards bytes']);
});

t.test('rate limits of chain routes get their buckets', async (t) => {
  const limit = { name: 'l', max_tokens: 1, tokens_per_fill: 1, fill_interval_ms: 1000 };
  const cfg = configOf(base({
    http_filter_chains: [chain('foo', ['foo.example'], { virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'app' }, rate_limits: [limit] }] }] })],
  }));
  t.same(allRateLimits(cfg.listeners).map((x) => x.slotName), ['route:https/r:l#1/1/1000']);
});

t.test('server names: exact first, then the longest wildcard suffix', async (t) => {
  const names = new ServerNames([
    { names: ['*.example', 'a.b.example'], value: 'one' },
    { names: ['*.b.example'], value: 'two' },
  ]);
  const seen = ['a.b.example', 'x.b.example', 'y.x.b.example', 'c.example', 'example', 'b.example', '.example', 'other.org'].map((n) => [n, names.pick(n)]);
  t.same(seen, [['a.b.example', 'one'], ['x.b.example', 'two'], ['y.x.b.example', 'two'], ['c.example', 'one'], ['example', null], ['b.example', 'one'], ['.example', null], ['other.org', null]]);
});
