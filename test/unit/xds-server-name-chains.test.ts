// xDS translation of an HTTP listener's filter chains picked by server name
// (translate-listener-chains.ts) into `http_filter_chains`: a chain without server names
// (or the default_filter_chain) becomes the listener's own TLS and routes; each named
// chain keeps its TLS and its route configuration, with names that repeat across chains
// qualified; a plaintext chain and two chains for every name are rejected by path.

import t from 'tap';
import type { RemoraConfig } from '../../src/config/types.js';
import { TypeUrl, type AnyMessage } from '../../src/xds/protos.js';
import { translateXds, type XdsTranslateResult } from '../../src/xds/translate.js';
import { toXdsResources } from '../../src/xds/encode.js';
import { arr, baseOf, errorsOf, obj, protos, rewire, valid, type Obj } from '../helpers/xds.js';

/** Remora listeners answering `body`, each with its route configuration (named after it). */
const answering = (name: string, body: string, tls = true): Obj => ({
  name, address: '127.0.0.1', port: 0, ...(tls ? { tls: { cert_file: `/certs/${name}.pem`, key_file: `/certs/${name}.key` } } : {}),
  virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'all', match: { prefix: '/' }, direct_response: { status: 200, body } }] }],
});
const resources = toXdsResources(valid({ listeners: [answering('a', 'a'), answering('b', 'b'), answering('c', 'c'), answering('plain', 'p', false)], clusters: [] }), { edsForAllClusters: false });

/** Listener `a`'s only chain, as listener `from` has it, with `server_names` (none: left
 *  without a match). */
function chainOf(from: string, serverNames: string[]): Obj {
  const c = structuredClone(arr(resources.listeners.get(from)!.filter_chains)[0]);
  if (serverNames.length > 0) c.filter_chain_match = { server_names: serverNames };
  return c;
}

function translate(chains: Obj[], fallback?: Obj): XdsTranslateResult {
  const listener: Obj = { ...structuredClone(resources.listeners.get('a')!), filter_chains: chains, ...(fallback !== undefined ? { default_filter_chain: fallback } : {}) };
  return translateXds({ workers: 1 }, rewire({ listeners: new Map([['a', listener]]), routes: resources.routes, clusters: new Map(), endpoints: new Map() }));
}

const listenerOf = (r: XdsTranslateResult): RemoraConfig['listeners'][number] => {
  if (!r.ok) throw new Error(`expected the translation to succeed: ${errorsOf(r).join('; ')}`);
  return r.config.listeners[0];
};
const bodies = (vhosts: readonly { routes: readonly { direct_response?: { body?: string } }[] }[]): string[] => vhosts.flatMap((vh) => vh.routes.map((r) => r.direct_response?.body ?? ''));

t.test('a chain without server names is the listener\'s own; named chains keep TLS and routes', async (t) => {
  const l = listenerOf(translate([chainOf('b', ['b.example']), chainOf('a', []), chainOf('c', ['*.c.example'])]));
  t.equal(l.tls?.cert_file, '/certs/a.pem', 'expected the chain without server names to give the listener its TLS');
  t.same(bodies(l.virtual_hosts), ['a'], 'and its routes');
  t.same(l.http_filter_chains.map((c) => [c.name, c.server_names, c.tls.cert_file, bodies(c.virtual_hosts)]), [
    ['filter_chains[0]', ['b.example'], '/certs/b.pem', ['b']],
    ['filter_chains[2]', ['*.c.example'], '/certs/c.pem', ['c']],
  ], 'expected each named chain its server names, certificate and route table');
  t.same(l.http_filter_chains.map((c) => [c.virtual_hosts[0].name, c.virtual_hosts[0].routes[0].name]),
    [['filter_chains[0]/all', 'filter_chains[0]/all'], ['filter_chains[2]/all', 'filter_chains[2]/all']],
    'expected virtual host and route names used before to be qualified by their chain');
});

t.test('only named chains, or with a default_filter_chain', async (t) => {
  const only = listenerOf(translate([chainOf('b', ['b.example'])]));
  t.equal(only.tls, undefined, 'expected no TLS of the listener\'s own without a chain for other names');
  t.same(only.virtual_hosts, [], 'nor routes');
  t.same(only.http_filter_chains.map((c) => c.name), ['filter_chains[0]']);
  const withDefault = listenerOf(translate([chainOf('b', ['b.example'])], chainOf('c', [])));
  t.equal(withDefault.tls?.cert_file, '/certs/c.pem', 'expected the default_filter_chain to be the listener\'s own');
  t.same(bodies(withDefault.virtual_hosts), ['c']);
});

t.test('rejected: a plaintext chain, two chains for every name, a different connection manager', async (t) => {
  t.same(errorsOf(translate([chainOf('b', ['b.example']), chainOf('plain', [])])), [
    'Listener "a" filter_chains[1].transport_socket: must be TLS (envoy.transport_sockets.tls): the listener picks chains by the TLS server name, and Remora does not serve plaintext and TLS on one HTTP listener (serve them on two)',
  ]);
  t.same(errorsOf(translate([chainOf('b', []), chainOf('c', [])])), [
    'Listener "a" filter_chains[1]: an HTTP listener takes at most one filter chain without server_names (got 2): each would take every connection; only tcp_proxy listeners pick chains by transport or ALPN',
  ]);
  const odd = chainOf('c', ['c.example']);
  const filter = arr(odd.filters)[0];
  const hcm = protos.decodeAny(obj(filter.typed_config) as unknown as AnyMessage).message;
  hcm.codec_type = 'HTTP1';
  filter.typed_config = protos.encodeAny(TypeUrl.HttpConnectionManager, hcm);
  t.match(errorsOf(translate([chainOf('b', ['b.example']), odd])), [
    /^Listener "a" filter_chains\[1\]\.filters\[0\]\.typed_config: differs from filter_chains\[0\]\.filters\[0\]\.typed_config's HttpConnectionManager in codec_type: /,
  ]);
  const matched = chainOf('b', ['b.example']);
  obj(matched.filter_chain_match).application_protocols = ['h2'];
  t.same(errorsOf(translate([matched])), ['Listener "a" filter_chains[0].filter_chain_match.application_protocols: field not supported by Remora']);
});

t.test('round trip: http_filter_chains → xDS → the same config', async (t) => {
  const limit = { name: 'l', max_tokens: 5, tokens_per_fill: 5, fill_interval_ms: 1000 };
  for (const withDefault of [true, false]) {
    const config = valid({
      listeners: [{
        ...(withDefault ? answering('https', 'own') : { name: 'https', address: '127.0.0.1', port: 0 }),
        http_filter_chains: [
          { name: 'shop', server_names: ['shop.example'], tls: { cert_file: '/certs/shop.pem', key_file: '/certs/shop.key' },
            virtual_hosts: [{ name: 'shop', domains: ['*'], routes: [{ name: 'buy', match: { prefix: '/' }, route: { cluster: 'app' }, rate_limits: [limit], authorization: { allow: ['spiffe://x/*'] } }] }] },
          { name: 'api', server_names: ['*.api.example'], tls: { cert_file: '/certs/api.pem', key_file: '/certs/api.key', additional_certificates: [{ cert_file: '/certs/v2.pem', key_file: '/certs/v2.key' }] },
            virtual_hosts: [{ name: 'api', domains: ['*'], routes: [{ name: 'api', match: { prefix: '/' }, route: { cluster: 'app' } }] }] },
        ],
      }],
      clusters: [{ name: 'app', endpoints: [{ address: '127.0.0.1', port: 8080 }] }],
    });
    const set = rewire(toXdsResources(config, { edsForAllClusters: true }));
    t.same([...set.routes.keys()], [...(withDefault ? ['https'] : []), 'https shop', 'https api'], 'expected a route configuration per chain');
    const back = translateXds(baseOf(config), set);
    t.same(errorsOf(back), [], `no rejections (default chain: ${withDefault})`);
    if (back.ok) t.strictSame(back.config.listeners, config.listeners, `the same listener (default chain: ${withDefault})`);
  }
});
