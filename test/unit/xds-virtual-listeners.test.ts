// Unit tests for the listeners Istio sends a sidecar with traffic capture, which Remora
// (no interception) accepts without serving what only redirected connections reach
// (src/xds/translate-listener.ts, translate-listener-tcp.ts, resources.ts; docs/xds.md
// "Listener"): `bind_to_port: false` listeners are ACKed, left out of the config, listed
// in Ctx.unbound and reference nothing (RDS, SDS), while garbage in them is still NACKed;
// `virtualOutbound` (use_original_dst) and `virtualInbound` (the original_dst listener
// filter) bind and serve the chain for their own port, Envoy's destination_port rule
// decides which chains a direct connection can reach, and the listener-wide access log
// and listener filter timeouts are accepted where they change nothing.

import t from 'tap';
import { missingResources, referencedRoutes, referencedSecrets, directChains } from '../../src/xds/resources.js';
import { translateXds, type XdsTranslateResult } from '../../src/xds/translate.js';
import { Ctx } from '../../src/xds/translate-context.js';
import { translateListener } from '../../src/xds/translate-listener.js';
import { TypeUrl } from '../../src/xds/protos.js';
import { errorsOf, protos, wire, type Obj } from '../helpers/xds.js';
import { INLINE_ROUTES, ISTIO_STATS, LOG, NR_LOG, OUTBOUND_HTTP, OUTBOUND_TCP, VIRTUAL_INBOUND, VIRTUAL_OUTBOUND, address, any, hcm, tcpProxy } from '../helpers/istio.js';

/** Listeners put on the wire and translated as the sidecar does (ADS: a tcp_proxy may name
 *  a cluster the set lacks). */
function translate(...listeners: Obj[]): XdsTranslateResult {
  const set = { listeners: wire(TypeUrl.Listener, new Map(listeners.map((l) => [String(l.name), l]))), routes: new Map(), clusters: new Map(), endpoints: new Map() };
  return translateXds({}, set, { ads: true });
}
const noEffect = (r: XdsTranslateResult): Record<string, number> | undefined => (r.ok ? Object.fromEntries(r.noEffect) : undefined);
/** One listener decoded as the sidecar receives it. */
const received = (l: Obj): Obj => protos.decodeAny(protos.encodeAny(TypeUrl.Listener, l)).message;

// ---------------------------------------------------------------------------
// bind_to_port: false

t.test('bind_to_port: false is ACKed, not bound, listed as unbound, and counted', async (t) => {
  const r = translate(OUTBOUND_HTTP, OUTBOUND_TCP);
  t.same(errorsOf(r), [], 'both accepted (false as Go writes it, {}, and as {value: false})');
  t.same(r.ok ? r.config.listeners : undefined, [], 'neither is in the config the workers run');
  t.same(r.ok ? r.warming.listeners : undefined, [], 'nor warming: nothing is waited for');
  t.strictSame(noEffect(r), { 'Listener.bind_to_port': 2 }, 'only bind_to_port is counted: nothing else of an unbound listener is read');

  const ctx = new Ctx();
  t.equal(translateListener(ctx, OUTBOUND_HTTP.name, received(OUTBOUND_HTTP)), undefined);
  t.equal(translateListener(ctx, OUTBOUND_TCP.name, received(OUTBOUND_TCP)), undefined);
  t.same(ctx.errors, []);
  t.strictSame(ctx.unbound, ['0.0.0.0_9080', '10.96.0.1_443'], 'ctx.unbound lists them in the order read');

  const bound = new Ctx();
  translateListener(bound, 'b', received({ ...OUTBOUND_TCP, name: 'b', bind_to_port: { value: true } }));
  t.same(bound.errors, []);
  t.strictSame(bound.unbound, [], 'bind_to_port: true binds');
});

t.test('bind_to_port: false references nothing: its RDS and SDS names are not subscribed to', async (t) => {
  const http = received(OUTBOUND_HTTP);
  t.same(referencedRoutes(http), [], 'its route configuration is not fetched');
  t.same(referencedSecrets(http), [], 'nor the Secret its TLS chain names');
  t.same(referencedRoutes(received({ ...OUTBOUND_HTTP, bind_to_port: { value: true } })), ['9080'], 'bound, the same listener references its routes');
  t.same(referencedSecrets(received({ ...OUTBOUND_HTTP, bind_to_port: { value: true } })), ['default'], 'and its Secret');
  const set = { listeners: new Map([['0.0.0.0_9080', http]]), routes: new Map(), clusters: new Map(), endpoints: new Map() };
  t.same(missingResources(set), { routes: [], endpoints: [], secrets: [] }, 'nothing missing: the sidecar does not wait for them');
});

t.test('bind_to_port: false still checks the name and the address', async (t) => {
  const errors = (l: Obj, key = String(l.name)): string[] => {
    const ctx = new Ctx();
    translateListener(ctx, key, received(l));
    return ctx.errors.map((e) => `${e.name} ${e.path}: ${e.message}`);
  };
  t.same(errors(OUTBOUND_TCP, 'other'), ['other name: "10.96.0.1_443" does not match the resource name "other"']);
  t.same(errors({ ...OUTBOUND_TCP, address: undefined }), ['10.96.0.1_443 address.socket_address: is required']);
  t.same(errors({ ...OUTBOUND_TCP, address: address('kubernetes', 443) }), ['10.96.0.1_443 address.socket_address.address: must be an IP address (e.g. 127.0.0.1, 0.0.0.0, ::1) or "localhost", got "kubernetes"']);
  t.same(errors({ ...OUTBOUND_TCP, address: address('10.96.0.1', 0) }), ['10.96.0.1_443 address.socket_address.port_value: must be a port from 1 to 65535, got 0']);
  t.same(errors({ ...OUTBOUND_TCP, address: { socket_address: { address: '10.96.0.1', port_value: 443, protocol: 'UDP' } } }),
    ['10.96.0.1_443 address.socket_address.protocol: UDP is not supported (TCP only)']);
  t.same(errors({ ...OUTBOUND_TCP, api_listener: { api_listener: any(TypeUrl.HttpConnectionManager) } }),
    ['10.96.0.1_443 api_listener: api_listener is for gRPC clients; Remora needs address + filter_chains']);
  t.same(errorsOf(translate({ ...OUTBOUND_TCP, address: address('kubernetes', 443) })),
    ['Listener "10.96.0.1_443" address.socket_address.address: must be an IP address (e.g. 127.0.0.1, 0.0.0.0, ::1) or "localhost", got "kubernetes"'],
    'a NACK naming the listener and the field');
});

// ---------------------------------------------------------------------------
// virtualOutbound and virtualInbound

t.test('virtualOutbound: use_original_dst has no effect; the listener serves its own port\'s chain', async (t) => {
  const r = translate(VIRTUAL_OUTBOUND);
  t.same(errorsOf(r), []);
  const l = r.ok ? r.config.listeners[0] : undefined;
  t.equal(l?.name, 'virtualOutbound');
  t.equal(l?.port, 15001);
  t.strictSame(l?.filter_chains.map((c) => [c.name, c.match, c.tcp_proxy.cluster]), [
    ['virtualOutbound-blackhole', { server_names: [], application_protocols: [], destination_prefix_ranges: [], direct_source_prefix_ranges: [], source_type: 'any', source_prefix_ranges: [], source_ports: [] }, 'BlackHoleCluster'],
  ], 'a connection addressed to 15001 takes the chain naming 15001, in Envoy too; the chain for 6379 (and its prefix_ranges) only takes redirected ones');
  t.equal(l?.tcp_proxy, undefined, 'that chain takes every connection: the default chain is never used');
  t.strictSame(noEffect(r), {
    'Listener.access_log': 1,
    'Listener.default_filter_chain (never used, not served)': 1,
    'Listener.filter_chains (for other destination ports, not served)': 1,
    'Listener.filter_chains.filter_chain_match.destination_port': 1,
    'Listener.traffic_direction': 1,
    'Listener.use_original_dst': 1,
    'NetworkFilter istio.stats': 1,
  });
  t.same(referencedRoutes(received(VIRTUAL_OUTBOUND)), []);

  const off = translate({ ...VIRTUAL_OUTBOUND, use_original_dst: { value: false } });
  t.same(errorsOf(off), []);
  t.notOk(noEffect(off)?.['Listener.use_original_dst'], 'use_original_dst: false (the default) is not counted');
});

t.test('virtualInbound: the original_dst listener filter has no effect; only its own port\'s chain is served', async (t) => {
  const r = translate(VIRTUAL_INBOUND);
  t.same(errorsOf(r), [], 'HTTP and TCP chains for other ports (and the catch-all ones they outrank) are not served, so their mix is no problem');
  const l = r.ok ? r.config.listeners[0] : undefined;
  t.strictSame(l?.filter_chains.map((c) => c.name), ['virtualInbound-blackhole']);
  t.strictSame(noEffect(r), {
    'Listener.access_log': 1,
    'Listener.continue_on_listener_filters_timeout': 1,
    'Listener.filter_chains (for other destination ports, not served)': 1,
    'Listener.filter_chains.filter_chain_match.destination_port': 1,
    'Listener.listener_filters_timeout': 1,
    'Listener.traffic_direction': 1,
    'ListenerFilter envoy.filters.listener.http_inspector': 1,
    'ListenerFilter envoy.filters.listener.original_dst': 1,
    'ListenerFilter envoy.filters.listener.tls_inspector': 1,
    'NetworkFilter istio.stats': 1,
  });
  t.same(referencedSecrets(received(VIRTUAL_INBOUND)), [], 'the TLS chain for 9080 is not served: its Secret is not fetched');
  t.same(directChains(received(VIRTUAL_INBOUND)), [0]);
});

t.test('HTTP and TCP chains that both take connections to the listener\'s port are still refused, saying why', async (t) => {
  const withoutBlackhole = { ...VIRTUAL_INBOUND, filter_chains: VIRTUAL_INBOUND.filter_chains.slice(1) };
  const catchallTcp = {
    name: 'virtualInbound', filter_chain_match: { transport_protocol: 'tls' }, filters: [ISTIO_STATS, tcpProxy({ stat_prefix: 'p', cluster: 'InboundPassthroughCluster' })],
  };
  t.same(errorsOf(translate({ ...withoutBlackhole, filter_chains: [catchallTcp, ...withoutBlackhole.filter_chains] })), [
    'Listener "virtualInbound" filter_chains[1]: has envoy.filters.network.http_connection_manager where filter_chains[0] has envoy.filters.network.tcp_proxy, '
      + 'and both take connections to the listener\'s port: a Remora listener is HTTP or TCP, not both. It serves HTTP with one filter chain (one '
      + 'HttpConnectionManager, which takes every connection) or forwards TCP with tcp_proxy chains picked by the TLS ClientHello; it does not sniff plaintext '
      + 'for HTTP to choose between the two (serve them on two listeners)',
  ]);
});

// ---------------------------------------------------------------------------
// Envoy's destination_port rule, the listener-wide log and timeouts

t.test('destination_port: chains naming the listener\'s port outrank those naming none; other ports are never reached', async (t) => {
  const chain = (name: string, match: Obj | undefined, cluster: string): Obj => ({
    name, ...(match !== undefined ? { filter_chain_match: match } : {}), filters: [tcpProxy({ stat_prefix: name, cluster })],
  });
  const sni = chain('sni', { server_names: ['api.example.com'] }, 'api');
  const own = chain('own', { destination_port: { value: 8443 }, server_names: ['web.example.com'] }, 'web');
  const other = chain('other', { destination_port: { value: 9443 }, source_ports: [1] }, 'other');
  const listener = (chains: Obj[], extra: Obj = {}): Obj => ({ name: 'l', address: address('0.0.0.0', 8443), filter_chains: chains, ...extra });
  t.same(directChains(received(listener([sni, own, other]))), [1], 'the chain naming 8443 only');
  t.same(directChains(received(listener([sni, other]))), [0], 'none names 8443: those naming no port');

  const r = translate(listener([sni, own, other]));
  t.same(errorsOf(r), [], 'the unreachable chain is not read (its source_ports would be refused)');
  t.strictSame(r.ok ? r.config.listeners[0].filter_chains.map((c) => c.name) : undefined, ['own']);
  t.equal(noEffect(r)?.['Listener.filter_chains (for other destination ports, not served)'], 1);

  t.same(errorsOf(translate(listener([other]))), [
    'Listener "l" filter_chains: every filter chain names a destination_port other than the listener\'s (8443): such a chain only takes connections redirected '
      + 'to the listener by original destination, which Remora does not receive (it has no traffic interception), so the listener would serve nothing '
      + '(name its own port, or add a default_filter_chain)',
  ]);
  const fallback = translate(listener([other], { default_filter_chain: { filters: [tcpProxy({ stat_prefix: 'd', cluster: 'fallback' })] } }));
  t.same(errorsOf(fallback), [], 'with a default chain, it serves that');
  t.same(fallback.ok ? fallback.config.listeners[0].tcp_proxy?.cluster : undefined, 'fallback');

  // An HTTP listener's one chain may name its own port; a chain for another port is not served.
  const http = {
    name: 'h', address: address('127.0.0.1', 8080),
    filter_chains: [chain('tcp-9090', { destination_port: { value: 9090 } }, 'x'), { filter_chain_match: { destination_port: { value: 8080 } }, filters: [hcm(INLINE_ROUTES)] }],
  };
  const h = translateXds({}, {
    listeners: wire(TypeUrl.Listener, new Map([['h', http]])), routes: new Map(), endpoints: new Map(),
    clusters: wire(TypeUrl.Cluster, new Map([['inbound|9080||', { name: 'inbound|9080||', type: 'STATIC', load_assignment: { cluster_name: 'inbound|9080||', endpoints: [{ lb_endpoints: [{ endpoint: { address: address('127.0.0.1', 9080) } }] }] } }]])),
  });
  t.same(errorsOf(h), []);
  t.same(h.ok ? h.config.listeners[0].virtual_hosts.map((v) => v.name) : undefined, ['inbound|http|9080']);
  t.same(errorsOf(translate({ ...http, filter_chains: [{ filter_chain_match: { transport_protocol: 'raw_buffer' }, filters: [hcm(INLINE_ROUTES)] }] })),
    ['Listener "h" filter_chains[0].filter_chain_match.transport_protocol: field not supported by Remora'], 'an HTTP listener\'s chain picks nothing');
});

t.test('the listener-wide access log: NR only, where every connection has a chain', async (t) => {
  const sniOnly = {
    name: 'sni', address: address('0.0.0.0', 443),
    filter_chains: [{ filter_chain_match: { server_names: ['api.example.com'] }, filters: [tcpProxy({ stat_prefix: 's', cluster: 'api' })] }],
  };
  t.same(errorsOf(translate({ ...sniOnly, access_log: [NR_LOG] })), [
    'Listener "sni" access_log[0]: logs the connections no filter chain takes (response_flag_filter NR): Remora closes those without a log line '
      + '(counted by remora_downstream_no_filter_chain_match_total); add a default_filter_chain, or drop this log',
  ]);
  const withDefault = translate({ ...sniOnly, access_log: [NR_LOG], default_filter_chain: { filters: [tcpProxy({ stat_prefix: 'd', cluster: 'other' })] } });
  t.same(errorsOf(withDefault), [], 'with a default chain no connection is left: the log has no effect');
  t.equal(noEffect(withDefault)?.['Listener.access_log'], 1);
  const refused = 'is not supported: Remora writes the access log of the HttpConnectionManager or tcp_proxy; a listener-wide one is accepted only with '
    + 'filter.response_flag_filter NR (connections no filter chain takes) on a listener where every connection has a chain';
  t.same(errorsOf(translate({ ...VIRTUAL_OUTBOUND, access_log: [LOG] })), [`Listener "virtualOutbound" access_log[0]: ${refused}`], 'a log of every connection');
  t.same(errorsOf(translate({ ...VIRTUAL_OUTBOUND, access_log: [{ ...LOG, filter: { response_flag_filter: { flags: ['NR', 'UF'] } } }] })),
    [`Listener "virtualOutbound" access_log[0]: ${refused}`], 'other flags');
});

t.test('listener filter timeouts: no effect unless Remora reads a connection\'s first bytes', async (t) => {
  const sni = {
    name: 'sni', address: address('0.0.0.0', 443), listener_filters_timeout: { seconds: 1 },
    filter_chains: [{ filter_chain_match: { server_names: ['api.example.com'] }, filters: [tcpProxy({ stat_prefix: 's', cluster: 'api' })] }],
  };
  t.same(errorsOf(translate(sni)), [
    'Listener "sni" listener_filters_timeout: is not supported on a listener that reads a PROXY header or a TLS ClientHello before picking a filter chain: '
      + 'Remora waits request_headers_timeout_ms (10 s by default) for them, then closes the connection',
  ]);
  const plain = translate({ ...sni, filter_chains: [{ filters: [tcpProxy({ stat_prefix: 's', cluster: 'api' })] }], continue_on_listener_filters_timeout: true });
  t.same(errorsOf(plain), [], 'nothing read first: nothing to time out');
  t.equal(noEffect(plain)?.['Listener.listener_filters_timeout'], 1);
  t.equal(noEffect(plain)?.['Listener.continue_on_listener_filters_timeout'], 1);
});

t.test('Istio\'s BlackHoleCluster (STATIC, no load_assignment) is a cluster without endpoints', async (t) => {
  const blackHole = { name: 'BlackHoleCluster', type: 'STATIC', connect_timeout: { seconds: 10 } };
  const set = {
    listeners: wire(TypeUrl.Listener, new Map([['virtualOutbound', VIRTUAL_OUTBOUND]])),
    routes: new Map(),
    clusters: wire(TypeUrl.Cluster, new Map([['BlackHoleCluster', blackHole]])),
    endpoints: new Map(),
  };
  const r = translateXds({}, set, { ads: true });
  t.same(errorsOf(r), [], 'accepted');
  t.same(r.ok ? r.config.clusters.map((c) => [c.name, c.endpoints]) : undefined, [['BlackHoleCluster', []]], 'with no endpoints (its connections are refused, UH)');
  const dns = { ...blackHole, type: 'STRICT_DNS' };
  const refused = translateXds({}, { ...set, clusters: wire(TypeUrl.Cluster, new Map([['BlackHoleCluster', dns]])) }, { ads: true });
  t.match(errorsOf(refused).join('\n'), /load_assignment: is required for type STRICT_DNS/, 'a DNS cluster still needs names to resolve');
});
