// Unit tests for TCP listeners, HTTP upgrades and the upstream PROXY protocol over xDS
// (src/xds/translate-listener-tcp.ts, the upgrade_configs of translate-listener-hcm.ts and
// translate-route.ts, translate-cluster.ts's transport sockets, src/xds/encode-tcp.ts):
// Remora configs with them survive toXdsResources → wire → translateXds unchanged;
// Istio- and Envoy-shaped resources (an outbound TCP listener, TLS passthrough by SNI,
// weighted tcp_proxy clusters, websocket upgrades, upstream_proxy_protocol) translate;
// what Remora cannot do is rejected by path.

import t from 'tap';
import { missingResources } from '../../src/xds/resources.js';
import { translateXds, type XdsTranslateResult } from '../../src/xds/translate.js';
import { toXdsResources } from '../../src/xds/encode.js';
import { TypeUrl, type AnyMessage } from '../../src/xds/protos.js';
import { arr, baseOf, errorsOf, hcmOf, obj, overTheWire, protos, rewire, setHcm, valid, type Obj } from '../helpers/xds.js';

/** A result without its count of fields accepted without effect (noEffect, which
 *  test/unit/xds-no-effect.test.ts checks): what those fields must leave unchanged. */
const effect = (r: XdsTranslateResult): unknown => (r.ok ? { ...r, noEffect: undefined } : r);

// ---------------------------------------------------------------------------
// Remora configs (round trips)

const EP = (port: number) => [{ address: '127.0.0.1', port }];

/** A TCP listener of each shape: one forwarding everything; one picking chains by SNI, by
 *  transport and by ALPN, with a default; PROXY protocol in and out. */
const TCP = {
  listeners: [
    {
      name: 'redis', port: 6379, proxy_protocol: true, max_connections: 500, access_log: { path: '/var/log/remora/tcp.log', sample_ratio: 0.5 },
      tcp_proxy: { cluster: 'redis', idle_timeout_ms: 0, max_connect_attempts: 3, max_downstream_connection_duration_ms: 600_000 },
    },
    {
      name: 'passthrough', address: '0.0.0.0', port: 8443,
      filter_chains: [
        { name: 'api', match: { server_names: ['api.example.com'] }, tcp_proxy: { cluster: 'api' } },
        { name: 'wild', match: { server_names: ['*.example.com'], transport_protocol: 'tls', application_protocols: ['h2', 'http/1.1'] }, tcp_proxy: { cluster: 'wild', idle_timeout_ms: 30_000 } },
        { name: 'plain', match: { transport_protocol: 'raw_buffer' }, tcp_proxy: { weighted_clusters: [{ cluster: 'api', weight: 1 }, { cluster: 'wild', weight: 3 }] } },
      ],
      tcp_proxy: { cluster: 'fallback' },
    },
    { name: 'chains-only', port: 9000, filter_chains: [{ name: 'all', tcp_proxy: { cluster: 'fallback' } }] },
  ],
  clusters: [
    { name: 'redis', endpoints: EP(7000), send_proxy_protocol: 'v2' },
    { name: 'api', endpoints: EP(7001), send_proxy_protocol: 'v1', tls: { ca_file: '/id/ca.pem', sni: 'api.internal' } },
    { name: 'wild', endpoints: EP(7002), tls: { ca_file: '/id/ca.pem' } },
    { name: 'fallback', endpoints: EP(7003) },
  ],
};

/** HTTP upgrades: allowed on the listener, refused and allowed per route. */
const UPGRADES = {
  listeners: [{
    name: 'ws', port: 8080, upgrade_configs: [{ upgrade_type: 'websocket' }, { upgrade_type: 'custom-proto', enabled: false }],
    virtual_hosts: [{
      name: 'v', domains: ['*'], routes: [
        { name: 'no-ws', match: { prefix: '/static/' }, route: { cluster: 'app' }, upgrade_configs: [{ upgrade_type: 'websocket', enabled: false }] },
        { name: 'custom', match: { prefix: '/custom/' }, route: { cluster: 'app' }, upgrade_configs: [{ upgrade_type: 'custom-proto' }] },
        { match: { prefix: '/' }, route: { cluster: 'app' } },
      ],
    }],
  }],
  clusters: [{ name: 'app', endpoints: EP(7100) }],
};

t.test('round trip: TCP listeners, upgrades and send_proxy_protocol come back unchanged', async (t) => {
  for (const [name, raw] of [['tcp', TCP], ['upgrades', UPGRADES]] as const) {
    for (const eds of [true, false]) {
      const config = valid(raw);
      const set = overTheWire(config, eds);
      t.same(missingResources(set), { routes: [], endpoints: [], secrets: [] }, `${name} (eds ${eds}): nothing missing`);
      const back = translateXds(baseOf(config), set);
      t.same(errorsOf(back), [], `${name} (eds ${eds}): no rejections`);
      if (back.ok) t.strictSame(back.config, config, `${name} (eds ${eds}): same config`);
    }
  }
});

t.test('toXdsResources: a TCP listener as Envoy reads it', async (t) => {
  const r = toXdsResources(valid(TCP), { edsForAllClusters: true });
  t.same([...r.routes.keys()], [], 'TCP listeners have no route configuration');
  const l = r.listeners.get('passthrough') as Obj;
  t.same(arr(l.listener_filters).map((f) => [f.name, obj(f.typed_config).type_url]), [['envoy.filters.listener.tls_inspector', TypeUrl.TlsInspector]],
    'the TLS inspector, since chains match on the ClientHello');
  const chains = arr(l.filter_chains);
  t.same(chains.map((c) => c.name), ['api', 'wild', 'plain']);
  t.same(chains[1].filter_chain_match, { server_names: ['*.example.com'], transport_protocol: 'tls', application_protocols: ['h2', 'http/1.1'] });
  const proxy = (c: Obj): Obj => protos.decodeAny(obj(arr(c.filters)[0].typed_config) as unknown as AnyMessage).message;
  t.same(arr(chains[0].filters).map((f) => f.name), ['envoy.filters.network.tcp_proxy']);
  t.same(proxy(chains[2]).weighted_clusters, { clusters: [{ name: 'api', weight: 1 }, { name: 'wild', weight: 3 }] });
  t.same(proxy(obj(l.default_filter_chain)), {
    stat_prefix: 'passthrough', cluster: 'fallback', idle_timeout: { seconds: '3600', nanos: 0 }, max_connect_attempts: { value: 1 },
  }, 'every setting written but a connection duration of 0 (Envoy requires at least 1 ms)');
  const redis = r.listeners.get('redis') as Obj;
  t.same(arr(redis.listener_filters).map((f) => f.name), ['envoy.filters.listener.proxy_protocol'], 'no inspector: nothing to pick');
  t.same(redis.filter_chains, []);
  t.equal(proxy(obj(redis.default_filter_chain)).max_downstream_connection_duration !== undefined, true);

  const socket = (name: string): Obj => obj(r.clusters.get(name)?.transport_socket);
  t.equal(socket('redis').name, 'envoy.transport_sockets.upstream_proxy_protocol');
  const outer = protos.decodeAny(socket('redis').typed_config as unknown as AnyMessage).message;
  t.same(outer.config, { version: 'V2' });
  t.same(obj(outer.transport_socket).name, 'envoy.transport_sockets.raw_buffer', 'plaintext inside');
  const api = protos.decodeAny(socket('api').typed_config as unknown as AnyMessage).message;
  t.same(obj(api.transport_socket).name, 'envoy.transport_sockets.tls', 'TLS inside');
  t.equal(socket('wild').name, 'envoy.transport_sockets.tls', 'no PROXY protocol: the TLS socket alone');
});

// ---------------------------------------------------------------------------
// Resources as control planes write them

const any = (typeUrl: string, bytes: number[] = []): AnyMessage => ({ type_url: typeUrl, value: Buffer.from(bytes) });
const typedStruct = (inner: string, fields: Obj): AnyMessage => protos.encodeAny(TypeUrl.UdpaTypedStruct, { type_url: inner, value: { fields } });
const tcpProxy = (fields: Obj, name = 'envoy.filters.network.tcp_proxy'): Obj => ({ name, typed_config: protos.encodeAny(TypeUrl.TcpProxy, { stat_prefix: 'tcp', ...fields }) });
const address = (ip: string, port: number): Obj => ({ socket_address: { address: ip, port_value: port } });
const lbEndpoints = (port: number): Obj[] => [{ lb_endpoints: [{ endpoint: { address: address('127.0.0.1', port) } }] }];
const staticCluster = (name: string, port = 9000): Obj => ({ name, type: 'STATIC', connect_timeout: { seconds: 1 }, load_assignment: { cluster_name: name, endpoints: lbEndpoints(port) } });
const STDOUT_LOG = {
  name: 'envoy.access_loggers.file',
  typed_config: protos.encodeAny(TypeUrl.FileAccessLog, { path: '/dev/stdout', log_format: { text_format_source: { inline_string: '[%START_TIME%] %UPSTREAM_CLUSTER%\n' } } }),
};
const ISTIO_STATS = { name: 'istio.stats', typed_config: any('type.googleapis.com/stats.PluginConfig', [0x08, 0x01]) };
const METADATA_EXCHANGE = {
  name: 'istio.metadata_exchange',
  typed_config: typedStruct('type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange', { protocol: { stringValue: 'istio-peer-exchange' } }),
};

/** Listeners and clusters put on the wire and translated. */
function translate(listeners: Obj[], clusters: Obj[], endpoints: Obj[] = []): XdsTranslateResult {
  const byName = (list: Obj[], key: string): Map<string, Obj> => new Map(list.map((x) => [String(x[key]), x]));
  return translateXds({}, rewire({ listeners: byName(listeners, 'name'), routes: new Map(), clusters: byName(clusters, 'name'), endpoints: byName(endpoints, 'cluster_name') }));
}

const REDIS = 'outbound|6379||redis.default.svc.cluster.local';

/** Istio's outbound listener for a TCP service port (istioctl proxy-config listener
 *  --port 6379 -o json), as a sidecar without traffic capture gets it (bound to its port;
 *  with capture Istio sends `bind_to_port: false`, accepted and not served below). */
const ISTIO_REDIS_LISTENER = {
  name: '10.96.120.33_6379',
  traffic_direction: 'OUTBOUND',
  address: address('10.96.120.33', 6379),
  filter_chains: [{
    filters: [ISTIO_STATS, tcpProxy({ stat_prefix: REDIS, cluster: REDIS, access_log: [STDOUT_LOG] })],
  }],
};
const ISTIO_REDIS_CLUSTER = {
  name: REDIS,
  type: 'EDS',
  eds_cluster_config: { eds_config: { ads: {}, initial_fetch_timeout: {}, resource_api_version: 'V3' }, service_name: REDIS },
  connect_timeout: { seconds: 10 },
};
const ISTIO_REDIS_ENDPOINTS = { cluster_name: REDIS, endpoints: [{ locality: {}, lb_endpoints: [{ endpoint: { address: address('10.244.0.12', 6379) } }] }] };

t.test("Istio's outbound TCP listener: tcp_proxy to the service's cluster, istio.stats accepted, its access log", async (t) => {
  const r = translate([ISTIO_REDIS_LISTENER], [ISTIO_REDIS_CLUSTER], [ISTIO_REDIS_ENDPOINTS]);
  t.same(errorsOf(r), []);
  const l = r.ok ? r.config.listeners[0] : undefined;
  t.equal(l?.address, '10.96.120.33');
  t.equal(l?.port, 6379);
  t.strictSame(l?.filter_chains, [{
    name: 'filter_chains[0]', match: { server_names: [], application_protocols: [], destination_prefix_ranges: [], direct_source_prefix_ranges: [], source_type: 'any', source_prefix_ranges: [], source_ports: [] },
    tcp_proxy: { cluster: REDIS, idle_timeout_ms: 3_600_000, max_connect_attempts: 1, max_downstream_connection_duration_ms: 0 },
  }], 'an unnamed chain is named by its place; unset fields are Envoy\'s defaults (an hour idle, one attempt)');
  t.equal(l?.tcp_proxy, undefined);
  t.strictSame(l?.access_log, { path: 'stdout', sample_ratio: 1, format: '[%START_TIME%] %UPSTREAM_CLUSTER%\n' });
  t.same(l?.virtual_hosts, []);

  t.same(errorsOf(translate([{ ...ISTIO_REDIS_LISTENER, bind_to_port: { value: true } }], [ISTIO_REDIS_CLUSTER], [ISTIO_REDIS_ENDPOINTS])), [],
    'traffic_direction (a label for Envoy\'s tracing and stats) and bind_to_port: true are accepted');
  const unbound = translate([ISTIO_REDIS_LISTENER, { ...ISTIO_REDIS_LISTENER, name: '0.0.0.0_6379', bind_to_port: { value: false } }],
    [ISTIO_REDIS_CLUSTER], [ISTIO_REDIS_ENDPOINTS]);
  t.same(errorsOf(unbound), [], 'bind_to_port: false (a listener fed by an original-destination redirect) is accepted');
  t.same(unbound.ok ? unbound.config.listeners.map((x) => x.name) : undefined, ['10.96.120.33_6379'],
    'and not served (test/unit/xds-virtual-listeners.test.ts)');

  const waiting = translate([ISTIO_REDIS_LISTENER], [ISTIO_REDIS_CLUSTER]);
  t.same(errorsOf(waiting), []);
  t.same(waiting.ok ? waiting.config.listeners : undefined, [], 'left out while its cluster waits for endpoints');
});

t.test("Istio's inbound TCP chain filters: metadata exchange, authn, stats and RBAC without rules have no effect", async (t) => {
  const filters = [
    METADATA_EXCHANGE,
    { name: 'istio_authn', typed_config: typedStruct('type.googleapis.com/io.istio.network.authn.Config', {}) },
    { name: 'envoy.filters.network.rbac', typed_config: protos.encodeAny(TypeUrl.NetworkRbac, { stat_prefix: 'tcp.', shadow_rules: { action: 'DENY' } }) },
    ISTIO_STATS,
    tcpProxy({ cluster: 'app' }),
  ];
  const withFilters = translate([{ name: 'in', address: address('0.0.0.0', 15006), filter_chains: [{ name: 'inbound|8080||', filters }] }], [staticCluster('app')]);
  const bare = translate([{ name: 'in', address: address('0.0.0.0', 15006), filter_chains: [{ name: 'inbound|8080||', filters: [tcpProxy({ cluster: 'app' })] }] }], [staticCluster('app')]);
  t.same(errorsOf(withFilters), []);
  t.strictSame(effect(withFilters), effect(bare), 'the same config as without them');

  const wasm = (code: string): Obj => ({
    name: 'istio.stats',
    typed_config: typedStruct('type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm', {
      config: { structValue: { fields: { vm_config: { structValue: { fields: {
        runtime: { stringValue: 'envoy.wasm.runtime.null' }, code: { structValue: { fields: { local: { structValue: { fields: { inline_string: { stringValue: code } } } } } } },
      } } } } } },
    }),
  });
  t.same(errorsOf(translate([{ name: 'in', address: address('0.0.0.0', 15006), filter_chains: [{ filters: [wasm('envoy.wasm.stats'), tcpProxy({ cluster: 'app' })] }] }],
    [staticCluster('app')])), [], 'older Istio: the null-VM stats plugin');
});

/** TLS passthrough by SNI, with a default chain. */
const SNI = {
  name: 'sni',
  address: address('0.0.0.0', 443),
  listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: protos.encodeAny(TypeUrl.TlsInspector, {}) }],
  filter_chains: [
    { name: 'api', filter_chain_match: { server_names: ['API.example.com'] }, filters: [tcpProxy({ cluster: 'api' })] },
    { name: 'wild', filter_chain_match: { server_names: ['*.example.com'], transport_protocol: 'tls' }, filters: [tcpProxy({ cluster: 'wild' })] },
    { name: 'h2-only', filter_chain_match: { server_names: ['grpc.example.com'], application_protocols: ['h2'] }, filters: [tcpProxy({ cluster: 'api' })] },
  ],
  default_filter_chain: { name: 'fallback', filters: [tcpProxy({ cluster: 'fallback', idle_timeout: { seconds: 0 } })] },
};
const SNI_CLUSTERS = [staticCluster('api'), staticCluster('wild', 9001), staticCluster('fallback', 9002)];

t.test('TLS passthrough by SNI: tls_inspector, server_names, a default chain', async (t) => {
  const r = translate([SNI], SNI_CLUSTERS);
  t.same(errorsOf(r), []);
  const l = r.ok ? r.config.listeners[0] : undefined;
  t.strictSame(l?.filter_chains.map((c) => [c.name, c.match]), [
    ['api', { server_names: ['api.example.com'], application_protocols: [], destination_prefix_ranges: [], direct_source_prefix_ranges: [], source_type: 'any', source_prefix_ranges: [], source_ports: [] }],
    ['wild', { server_names: ['*.example.com'], transport_protocol: 'tls', application_protocols: [], destination_prefix_ranges: [], direct_source_prefix_ranges: [], source_type: 'any', source_prefix_ranges: [], source_ports: [] }],
    ['h2-only', { server_names: ['grpc.example.com'], application_protocols: ['h2'], destination_prefix_ranges: [], direct_source_prefix_ranges: [], source_type: 'any', source_prefix_ranges: [], source_ports: [] }],
  ], 'server names lower-cased');
  const ownPort = (c: Obj): Obj => ({ ...c, filter_chain_match: { ...obj(c.filter_chain_match), destination_port: { value: 443 } } });
  const named = translate([{ ...SNI, filter_chains: arr(SNI.filter_chains).map(ownPort) }], SNI_CLUSTERS);
  t.same(errorsOf(named), []);
  t.strictSame(named.ok ? named.config.listeners[0] : undefined, l, 'every chain naming the listener\'s own port: the same listener');
  t.strictSame(l?.tcp_proxy, { cluster: 'fallback', idle_timeout_ms: 0, max_connect_attempts: 1, max_downstream_connection_duration_ms: 0 },
    'default_filter_chain → the listener\'s tcp_proxy; idle_timeout 0s: none');
});

t.test("Envoy's tcp_proxy weighted_clusters example, and every other TcpProxy field", async (t) => {
  const weighted = { clusters: [{ name: 'cluster1', weight: 1 }, { name: 'cluster2', weight: 2 }] };
  const r = translate([{
    name: 'tcp',
    address: address('127.0.0.1', 10000),
    filter_chains: [{ filters: [tcpProxy({
      weighted_clusters: weighted, idle_timeout: { seconds: 600 }, max_connect_attempts: { value: 3 }, max_downstream_connection_duration: { seconds: 3600 },
      hash_policy: [{ source_ip: {} }], access_log_options: { access_log_flush_interval: { seconds: 60 }, flush_access_log_on_connected: true },
    })] }],
  }], [staticCluster('cluster1'), staticCluster('cluster2', 9001)]);
  t.same(errorsOf(r), []);
  t.strictSame(r.ok ? r.config.listeners[0].filter_chains[0].tcp_proxy : undefined, {
    weighted_clusters: [{ cluster: 'cluster1', weight: 1 }, { cluster: 'cluster2', weight: 2 }],
    idle_timeout_ms: 600_000, max_connect_attempts: 3, max_downstream_connection_duration_ms: 3_600_000,
  }, 'hash_policy (ring hash and Maglev only) and access_log_options (when lines are written) have no effect');
});

t.test('TCP listeners: what Remora cannot do is rejected by path', async (t) => {
  const L = 'Listener "tcp"';
  const listener = (chains: Obj[], extra: Obj = {}): Obj => ({ name: 'tcp', address: address('127.0.0.1', 10000), filter_chains: chains, ...extra });
  const clusters = [staticCluster('app'), staticCluster('other', 9001)];
  const errors = (chains: Obj[], extra: Obj = {}): string[] => errorsOf(translate([listener(chains, extra)], clusters));

  const hcm = protos.decodeAny(protos.encodeAny(TypeUrl.Listener, overTheWire(valid({
    listeners: [{ name: 'x', port: 1, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] }],
    clusters: [{ name: 'app', endpoints: EP(1) }],
  })).listeners.get('x') as Obj)).message;
  const httpChain = arr(hcm.filter_chains)[0];
  const BOTH = 'and both take connections to the listener\'s port: a Remora listener is HTTP or TCP, not both. It serves HTTP with one filter chain (one '
    + 'HttpConnectionManager, which takes every connection) or forwards TCP with tcp_proxy chains picked by the TLS ClientHello; it does not sniff plaintext '
    + 'for HTTP to choose between the two (serve them on two listeners)';
  t.same(errors([{ filters: [tcpProxy({ cluster: 'app' })] }, httpChain]), [
    `${L} filter_chains[1]: has envoy.filters.network.http_connection_manager where filter_chains[0] has envoy.filters.network.tcp_proxy, ${BOTH}`,
  ]);
  t.same(errors([httpChain], { default_filter_chain: { filters: [tcpProxy({ cluster: 'app' })] } }), [
    `${L} default_filter_chain: has envoy.filters.network.tcp_proxy where filter_chains[0] has envoy.filters.network.http_connection_manager, ${BOTH}`,
  ]);

  const tls = protos.encodeAny(TypeUrl.DownstreamTlsContext, { common_tls_context: { tls_certificates: [{ certificate_chain: { filename: '/c.pem' }, private_key: { filename: '/k.pem' } }] } });
  // A chain's DownstreamTlsContext: Remora terminates TLS there (the chain's `tls`).
  const terminated = translate([listener([{ name: 'term', transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: tls }, filters: [tcpProxy({ cluster: 'app' })] }])], clusters);
  t.same(errorsOf(terminated), []);
  t.same(terminated.ok ? terminated.config.listeners[0].filter_chains[0].tls : undefined,
    { cert_file: '/c.pem', key_file: '/k.pem', additional_certificates: [], min_version: 'TLSv1.2', session_resumption: 'tickets', require_client_certificate: false }, 'the chain\'s tls');
  const withAlpn = protos.encodeAny(TypeUrl.DownstreamTlsContext, { common_tls_context: { alpn_protocols: ['h2'], tls_certificates: [{ certificate_chain: { filename: '/c.pem' }, private_key: { filename: '/k.pem' } }] } });
  t.match(errors([{ transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: withAlpn }, filters: [tcpProxy({ cluster: 'app' })] }]).join('\n'),
    /filter_chains\[0\]\.transport_socket\.typed_config\.common_tls_context\.alpn_protocols: is not supported on a tcp_proxy chain/);
  t.match(errors([], { default_filter_chain: { transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: tls }, filters: [tcpProxy({ cluster: 'app' })] } }).join('\n'),
    /default_filter_chain\.transport_socket: TLS termination on the default_filter_chain is not supported/);
  const rawBuffer = { name: 'envoy.transport_sockets.raw_buffer', typed_config: protos.encodeAny(TypeUrl.RawBuffer, {}) };
  t.same(errors([{ transport_socket: rawBuffer, filters: [tcpProxy({ cluster: 'app' })] }]), [], 'raw_buffer is plaintext, as no transport socket');
  t.same(errorsOf(translate([{ ...hcm, filter_chains: [{ ...httpChain, transport_socket: rawBuffer }] }], clusters)), [], 'on an HTTP listener\'s chain too');

  const M = `${L} filter_chains[0].filter_chain_match`;
  t.same(errors([{
    filter_chain_match: {
      destination_port: { value: 10000 }, prefix_ranges: [{ address_prefix: '10.0.0.0', prefix_len: { value: 8 } }], source_ports: [1234], source_type: 'EXTERNAL',
    },
    filters: [tcpProxy({ cluster: 'app' })],
  }]), [], 'address criteria on a chain that takes connections to the listener\'s port (10000) are read');
  t.same(errors([{ filter_chain_match: { address_suffix: '1' }, filters: [tcpProxy({ cluster: 'app' })] }]),
    [`${M}.address_suffix: is not supported (Envoy does not implement it either)`], 'a criterion Envoy does not implement is rejected by path');
  t.same(errors([{ filter_chain_match: { source_prefix_ranges: [{ address_prefix: '10.0.0.0', prefix_len: { value: 40 } }] }, filters: [tcpProxy({ cluster: 'app' })] }]),
    [`${M}.source_prefix_ranges[0]: "10.0.0.0/40" is not an IP range: use an address with a prefix length, such as 10.0.0.0/8 or fd00::/8`], 'a bad range is rejected by path');
  t.same(errors([{ filter_chain_match: { destination_port: { value: 8080 } }, filters: [tcpProxy({ cluster: 'app' })] }]), [
    `${L} filter_chains: every filter chain names a destination_port other than the listener's (10000): such a chain only takes connections redirected to the `
      + 'listener by original destination, which Remora does not receive (it has no traffic interception), so the listener would serve nothing '
      + '(name its own port, or add a default_filter_chain)',
  ], 'a chain for another port is not served (test/unit/xds-virtual-listeners.test.ts): with no other, the listener serves nothing');
  t.same(errors([{ filter_chain_match: { application_protocols: ['http/1.1', 'h2c'] }, filters: [tcpProxy({ cluster: 'app' })] }],
    { listener_filters: [{ name: 'envoy.filters.listener.http_inspector' }] }), [
    `${M}.application_protocols: ["http/1.1","h2c"] with the HTTP inspector matches plaintext HTTP by sniffing it, which Remora does not do: it reads application protocols from the TLS ClientHello only (add transport_protocol: tls, or drop the HTTP protocol ids)`,
  ]);
  t.same(errors([{ filter_chain_match: { application_protocols: ['http/1.1'], transport_protocol: 'tls' }, filters: [tcpProxy({ cluster: 'app' })] }],
    { listener_filters: [{ name: 'envoy.filters.listener.http_inspector' }] }), [], 'over TLS the protocols come from ALPN');

  const T = `${L} filter_chains[0].filters[0].typed_config`;
  t.same(errors([{ filters: [tcpProxy({
    cluster: 'app', tunneling_config: { hostname: 'host.com:443' }, on_demand: { resources_locator: 'x' }, metadata_match: { filter_metadata: { 'envoy.lb': {} } },
    downstream_idle_timeout: { seconds: 5 }, upstream_idle_timeout: { seconds: 5 },
  })] }]), [
    `${T}.tunneling_config: is not supported: Remora forwards the connection's bytes as they are (no HTTP CONNECT or POST tunnel to the upstream)`,
    `${T}.on_demand: is not supported: Remora knows every cluster from CDS before a connection uses it (no on-demand discovery)`,
    `${T}.metadata_match: is not supported: Remora has no subset load balancing`,
    `${T}.downstream_idle_timeout: is not supported: Remora has one idle timeout for both directions (idle_timeout)`,
    `${T}.upstream_idle_timeout: is not supported: Remora has one idle timeout for both directions (idle_timeout)`,
  ]);

  const F = `${L} filter_chains[0].filters`;
  t.same(errors([{ filters: [tcpProxy({ cluster: 'app' }), ISTIO_STATS] }]), [
    `${F}[0]: envoy.filters.network.tcp_proxy must be the last network filter (it forwards the connection: filters after it would never run)`,
  ]);
  t.same(errors([{ filters: [{ name: 'envoy.filters.network.redis_proxy', typed_config: any('type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy') }, tcpProxy({ cluster: 'app' })] }]), [
    `${F}[0]: unsupported network filter envoy.filters.network.redis_proxy: a TCP listener's chains take envoy.filters.network.tcp_proxy, after Istio's metadata exchange, stats and authn filters and an RBAC filter without rules at most`,
  ]);
  t.same(errors([{ filters: [tcpProxy({ cluster: 'app' })] }, { name: 'stats-only', filters: [ISTIO_STATS] }]), [
    `${L} filter_chains[1].filters: needs envoy.filters.network.tcp_proxy as its last network filter (a TCP listener forwards every connection)`,
  ]);
  t.same(errors([{ filters: [{ name: 'rbac', typed_config: protos.encodeAny(TypeUrl.NetworkRbac, { stat_prefix: 'tcp.', rules: {} }) }, tcpProxy({ cluster: 'app' })] }]), [
    `${F}[0].typed_config.rules: is not supported: Remora does not authorize TCP connections (only an RBAC filter without rules, or with shadow rules, is accepted)`,
  ], 'rules without policies deny every connection in Envoy');

  t.same(errors([
    { filters: [tcpProxy({ cluster: 'app', access_log: [STDOUT_LOG] })] },
    { filter_chain_match: { server_names: ['a.example'] }, filters: [tcpProxy({ cluster: 'other' })] },
  ]), [
    `${L} filter_chains[1].filters[0].typed_config.access_log: differs from filter_chains[0].filters[0].typed_config.access_log: Remora writes one access log per listener, for every connection (give every tcp_proxy the same one, or none)`,
  ]);
  const ext = (fields: Obj): Obj => ({ metadata: { filter_metadata: { remora: { fields } } } });
  t.same(errors([{ filters: [tcpProxy({ cluster: 'app', access_log: [STDOUT_LOG] })] }], ext({ access_log: { structValue: { fields: { path: { stringValue: 'stdout' } } } } })), [
    `${L} filter_chains[0].filters[0].typed_config.access_log: and the Remora extension access_log (metadata.filter_metadata.remora.access_log) are both set: set one`,
  ]);
  t.same(errors([{ filters: [tcpProxy({ cluster: 'app' })] }], ext({ generate_traceparent: { boolValue: true } })), [
    `${L} metadata.filter_metadata.remora.generate_traceparent: unknown Remora extension (allowed here: access_log, max_connections)`,
  ], 'HTTP extensions are not a TCP listener\'s');

  t.same(errors([{ filters: [tcpProxy({ cluster: 'nope' })] }]), [
    `${L} filter_chains[0].filters[0].typed_config.cluster: unknown cluster "nope" (defined: app, other)`,
  ], "validateConfig's errors point at the xDS field");
  t.same(errors([{ name: 'a', filters: [tcpProxy({ cluster: 'app' })] }, { name: 'b', filters: [tcpProxy({ cluster: 'other' })] }]), [
    `${L} filter_chains[1].filter_chain_match: overlaps listeners[0].filter_chains[0]: both take any server name, any transport, any ALPN (each combination belongs to one chain, as in Envoy)`,
  ], 'two chains without a match');
});

// ---------------------------------------------------------------------------
// Upgrades

/** MINIMAL's resources, HCM edited. */
const MINIMAL = valid({
  listeners: [{ name: 'in', port: 0, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'api' } }] }] }],
  clusters: [{ name: 'api', endpoints: EP(9000) }],
});

function withUpgrades(hcmUpgrades: Obj[], routeUpgrades: Obj[] = []): XdsTranslateResult {
  const set = overTheWire(MINIMAL, false);
  const l = set.listeners.get('in') as Obj;
  const hcm = hcmOf(l);
  hcm.upgrade_configs = hcmUpgrades;
  setHcm(l, hcm);
  obj(arr(arr((set.routes.get('in') as Obj).virtual_hosts)[0].routes)[0].route).upgrade_configs = routeUpgrades;
  return translateXds(baseOf(MINIMAL), rewire(set));
}

t.test("HCM upgrade_configs (Istio's websocket) and a route's: the listener's and the route's upgrade_configs", async (t) => {
  const r = withUpgrades([{ upgrade_type: 'websocket' }, { upgrade_type: 'Custom-Proto', enabled: { value: false } }],
    [{ upgrade_type: 'custom-proto', enabled: { value: true } }, { upgrade_type: 'websocket', enabled: { value: false } }]);
  t.same(errorsOf(r), []);
  const l = r.ok ? r.config.listeners[0] : undefined;
  t.strictSame(l?.upgrade_configs, [{ upgrade_type: 'websocket', enabled: true }, { upgrade_type: 'custom-proto', enabled: false }], 'enabled unset is true; types lower-cased');
  t.strictSame(l?.virtual_hosts[0].routes[0].upgrade_configs, [{ upgrade_type: 'custom-proto', enabled: true }, { upgrade_type: 'websocket', enabled: false }]);
});

t.test('upgrade_configs: CONNECT and h2c only disabled; filters, connect_config and repeats rejected', async (t) => {
  const TL = 'Listener "in" filter_chains[0].filters[0].typed_config.upgrade_configs';
  const R = 'RouteConfiguration "in" virtual_hosts[0].routes[0].route.upgrade_configs';
  const r = withUpgrades([{ upgrade_type: 'CONNECT', enabled: { value: false } }, { upgrade_type: 'h2c', enabled: { value: false } }], [{ upgrade_type: 'CONNECT', enabled: { value: false } }]);
  t.same(errorsOf(r), []);
  t.strictSame(r.ok ? [r.config.listeners[0].upgrade_configs, r.config.listeners[0].virtual_hosts[0].routes[0].upgrade_configs] : undefined, [[], []],
    'disabled, they ask for what Remora does anyway');
  t.same(errorsOf(withUpgrades(
    [{ upgrade_type: 'websocket', filters: [{ name: 'envoy.filters.http.router' }] }, { upgrade_type: 'WebSocket' }],
    [{ upgrade_type: 'CONNECT', connect_config: {} }, { upgrade_type: 'h2c' }],
  )), [
    `${TL}[0].filters: is not supported: upgraded requests go through the listener's own http_filters in Remora`,
    `${TL}[1].upgrade_type: "WebSocket" is listed twice`,
    `${R}[0].connect_config: is not supported: Remora does not terminate CONNECT`,
    `${R}[0]: CONNECT upgrades are not supported: Remora refuses CONNECT requests (Envoy proxies them with this upgrade type) (only enabled: false is accepted)`,
    `${R}[1]: h2c upgrades are not supported: Remora serves a request with Upgrade: h2c over HTTP/1.1 and never switches it (Envoy with this entry would pass the upgrade on) (only enabled: false is accepted)`,
  ]);
  t.same(errorsOf(withUpgrades([{ upgrade_type: 'web socket' }])), [
    `${TL}[0].upgrade_type: "web socket" is not an upgrade protocol (a token, or token/version such as "websocket" or "spdy/3.1")`,
  ], "validateConfig's errors point at the xDS field");
});

t.test('toXdsResources: upgrade_configs on the HCM and the route action', async (t) => {
  const r = toXdsResources(valid(UPGRADES), { edsForAllClusters: false });
  t.same(hcmOf(r.listeners.get('ws') as Obj).upgrade_configs, [{ upgrade_type: 'websocket' }, { upgrade_type: 'custom-proto', enabled: { value: false } }]);
  const routes = arr(arr(obj(r.routes.get('ws')).virtual_hosts)[0].routes);
  t.same(routes.map((x) => obj(x.route).upgrade_configs), [[{ upgrade_type: 'websocket', enabled: { value: false } }], [{ upgrade_type: 'custom-proto' }], []]);
});

// ---------------------------------------------------------------------------
// Clusters: the upstream PROXY protocol

const RAW_BUFFER = { name: 'envoy.transport_sockets.raw_buffer', typed_config: protos.encodeAny(TypeUrl.RawBuffer, {}) };
const upstreamProxyProtocol = (message: Obj): Obj => ({
  name: 'envoy.transport_sockets.upstream_proxy_protocol',
  typed_config: protos.encodeAny(TypeUrl.UpstreamProxyProtocol, message),
});
/** A TCP listener forwarding to `cluster` (a PROXY protocol cluster may not be a route's). */
const toCluster = (cluster: string): Obj => ({ name: 'tcp', address: address('127.0.0.1', 10000), filter_chains: [{ filters: [tcpProxy({ cluster })] }] });

t.test("CDS: Envoy's upstream_proxy_protocol socket is send_proxy_protocol, around raw_buffer or TLS", async (t) => {
  const tls = {
    name: 'envoy.transport_sockets.tls',
    typed_config: protos.encodeAny(TypeUrl.UpstreamTlsContext, { sni: 'db.internal', common_tls_context: { validation_context: { trusted_ca: { filename: '/ca.pem' } } } }),
  };
  const r = translate([toCluster('v1'), { ...toCluster('v2'), name: 'tcp2', address: address('127.0.0.1', 10001) }], [
    { ...staticCluster('v1'), transport_socket: upstreamProxyProtocol({ config: { version: 'V1' }, transport_socket: RAW_BUFFER }) },
    { ...staticCluster('v2', 9001), transport_socket: upstreamProxyProtocol({ config: { version: 'V2' }, transport_socket: tls }) },
    { ...staticCluster('plain', 9002), transport_socket: RAW_BUFFER },
  ]);
  t.same(errorsOf(r), []);
  const c = (name: string) => (r.ok ? r.config.clusters.find((x) => x.name === name) : undefined);
  t.equal(c('v1')?.send_proxy_protocol, 'v1');
  t.equal(c('v1')?.tls, undefined);
  t.equal(c('v2')?.send_proxy_protocol, 'v2');
  t.same(c('v2')?.tls, { sni: 'db.internal', ca_file: '/ca.pem', verify_subject_alt_names: [], min_version: 'TLSv1.2' }, 'the inner TLS socket as a cluster\'s own');
  t.equal(c('plain')?.send_proxy_protocol, undefined, 'raw_buffer alone is plaintext');
  const noConfig = translate([toCluster('v1')], [{ ...staticCluster('v1'), transport_socket: upstreamProxyProtocol({ transport_socket: RAW_BUFFER }) }]);
  t.equal(noConfig.ok ? noConfig.config.clusters[0].send_proxy_protocol : undefined, 'v1', 'no config: V1, Envoy\'s default');
});

t.test('CDS: upstream PROXY protocol outside the subset is rejected by path', async (t) => {
  const C = 'Cluster "pp" transport_socket.typed_config';
  const errors = (message: Obj): string[] => errorsOf(translate([toCluster('pp')], [{ ...staticCluster('pp'), transport_socket: upstreamProxyProtocol(message) }]));
  t.same(errors({ config: { version: 'V2', pass_through_tlvs: { match_type: 'INCLUDE_ALL' } }, transport_socket: RAW_BUFFER }), [
    `${C}.config.pass_through_tlvs: is not supported: Remora's header carries the client's addresses only (no TLVs passed on)`,
  ]);
  t.same(errors({ config: { version: 'V2' } }), [
    `${C}.transport_socket: is required: the socket the header goes out on (envoy.transport_sockets.raw_buffer, or envoy.transport_sockets.tls with UpstreamTlsContext)`,
  ]);
  t.same(errors({ transport_socket: upstreamProxyProtocol({ transport_socket: RAW_BUFFER }) }), [
    `${C}.transport_socket: a PROXY protocol socket inside another is not supported: Remora sends one header`,
  ]);
  t.same(errorsOf(translate([], [{ ...staticCluster('pp'), transport_socket: { name: 'alts', typed_config: any('type.googleapis.com/envoy.extensions.transport_sockets.alts.v3.Alts') } }])), [
    'Cluster "pp" transport_socket: unsupported transport socket alts: Remora supports envoy.transport_sockets.tls with UpstreamTlsContext only',
  ]);
  // A route may not use it: pooled HTTP connections carry many clients.
  const set = overTheWire(MINIMAL, false);
  (set.clusters.get('api') as Obj).transport_socket = upstreamProxyProtocol({ transport_socket: RAW_BUFFER });
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'RouteConfiguration "in" virtual_hosts[0].routes[0].route.cluster: cluster "api" sends the PROXY protocol (send_proxy_protocol), which only tcp_proxy connections carry: pooled HTTP connections serve many clients',
  ]);
});
