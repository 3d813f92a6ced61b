// Unit tests for what Envoy Gateway and go-control-plane's example send that the
// translation reads (src/xds/translate-listener.ts, translate-route.ts, translate-cluster.ts,
// translate-context.ts; docs/xds.md): an HTTP listener served from its default_filter_chain
// (and one whose default chain is never used); the listener's drain_type,
// max_connections_to_accept_per_socket_event and per_connection_buffer_limit_bytes, the
// last capping the retry buffer of its routes as Envoy does; a cluster's
// per_connection_buffer_limit_bytes and ignore_health_on_host_removal; a ConfigSource's
// api_config_source naming one gRPC management server, and what of it is still NACKed;
// a `host:*` domain (translate-route-domains.ts). Each set as a whole translates with the
// exact fields without effect.

import t from 'tap';
import { translateXds, type XdsTranslateResult } from '../../src/xds/translate.js';
import { TypeUrl, type AnyMessage } from '../../src/xds/protos.js';
import { EG_CLUSTER, EG_LISTENER, EG_ROUTE_CONFIG, egAssignment, egCluster, egListener, egRoutes } from '../helpers/envoy-gateway.js';
import { GCP_CLUSTER, GCP_CONFIG_SOURCE, GCP_LISTENER, GCP_ROUTE, gcpCluster, gcpListener, gcpRoutes } from '../helpers/go-control-plane.js';
import { arr, errorsOf, hcmOf, obj, protos, wire, type Obj } from '../helpers/xds.js';

interface Resources {
  listeners?: Obj[];
  routes?: Obj[];
  clusters?: Obj[];
  endpoints?: Obj[];
}
const byName = (typeUrl: string, list: Obj[] = [], key = 'name'): Map<string, Obj> => wire(typeUrl, new Map(list.map((r) => [String(r[key]), r])));
/** Resources put on the wire and translated as the sidecar does (ADS). */
function translate(r: Resources): XdsTranslateResult {
  return translateXds({}, {
    listeners: byName(TypeUrl.Listener, r.listeners),
    routes: byName(TypeUrl.RouteConfiguration, r.routes),
    clusters: byName(TypeUrl.Cluster, r.clusters),
    endpoints: byName(TypeUrl.ClusterLoadAssignment, r.endpoints, 'cluster_name'),
  }, { ads: true });
}
const noEffect = (r: XdsTranslateResult): Record<string, number> | undefined => (r.ok ? Object.fromEntries(r.noEffect) : undefined);
const listenerOf = (r: XdsTranslateResult): Obj => (r.ok ? (r.config.listeners[0] as unknown as Obj) : {});
const eg = (): Resources => ({
  listeners: [egListener({ port: 0, underscores: 'ALLOW' })], routes: [egRoutes()], clusters: [egCluster()], endpoints: [egAssignment(9000)],
});
const L = `Listener "${EG_LISTENER}"`;
/** The HttpConnectionManager of the Envoy Gateway listener's default chain, decoded. */
const egHcm = (l: Obj): Obj => protos.decodeAny(obj(arr(obj(l.default_filter_chain).filters)[0].typed_config) as unknown as AnyMessage).message;

t.test('Envoy Gateway\'s resources translate, with exactly these fields without effect', async (t) => {
  const r = translate(eg());
  t.same(errorsOf(r), []);
  t.strictSame(noEffect(r), {
    'Cluster.common_lb_config.locality_weighted_lb_config': 1,
    'Cluster.dns_lookup_family': 1,
    'Cluster.ignore_health_on_host_removal': 1,
    'Cluster.lb_policy (load_balancing_policy is used)': 1,
    'Cluster.load_balancing_policy locality_weighted_lb_config': 1,
    'Cluster.per_connection_buffer_limit_bytes': 1,
    'ClusterLoadAssignment.endpoints.load_balancing_weight': 1,
    'ClusterLoadAssignment.endpoints.locality': 1,
    'HttpConnectionManager.use_remote_address': 1,
    'Listener.access_log': 1,
    'Listener.drain_type': 1,
    'Listener.max_connections_to_accept_per_socket_event': 1,
    'RouteConfiguration.virtual_hosts.metadata': 1,
    'RouteConfiguration.virtual_hosts.routes.metadata': 1,
    'Router.suppress_envoy_headers': 1,
  });
  const l = listenerOf(r);
  t.same(
    [l.normalize_path, l.merge_slashes, l.path_with_escaped_slashes_action, l.server_header_transformation, obj(l.access_log).path],
    [true, true, 'unescape_and_redirect', 'pass_through', 'stdout'],
    'the HttpConnectionManager of the default chain is read',
  );
  t.same(arr(arr(l.virtual_hosts)[0].routes)[0].upgrade_configs, [{ upgrade_type: 'websocket', enabled: true }], 'with its routes');

  t.equal(l.headers_with_underscores_action, 'allow', 'ALLOW is the default');
  const strict = translate({ ...eg(), listeners: [egListener({ port: 0, underscores: 'REJECT_REQUEST' })] });
  t.same(errorsOf(strict), [], 'Envoy Gateway\'s default REJECT_REQUEST is accepted');
  t.equal(strict.ok ? strict.config.listeners[0].headers_with_underscores_action : null, 'reject_request', 'and applied');
});

t.test('default_filter_chain of an HTTP listener', async (t) => {
  const base = egListener({ port: 0, underscores: 'ALLOW' });
  const matched = { ...base, default_filter_chain: { ...obj(base.default_filter_chain), filter_chain_match: { server_names: ['www.example.com'] } } };
  const r = translate({ ...eg(), listeners: [matched] });
  t.same(errorsOf(r), [], 'its filter_chain_match is accepted: the default chain takes what no chain takes, in Envoy too');
  t.equal(noEffect(r)?.['Listener.default_filter_chain.filter_chain_match'], 1, 'and counted');

  // A chain for the listener's port takes every connection: the default chain is never used.
  const chain = { filters: obj(base.default_filter_chain).filters };
  const other = egHcm(base);
  other.server_header_transformation = 'OVERWRITE';
  const unused = { filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: protos.encodeAny(TypeUrl.HttpConnectionManager, other) }] };
  const both = translate({ ...eg(), listeners: [{ ...base, filter_chains: [chain], default_filter_chain: unused }] });
  t.same(errorsOf(both), []);
  t.equal(listenerOf(both).server_header_transformation, 'pass_through', 'with a chain for its port, that chain is served');
  t.equal(noEffect(both)?.['Listener.default_filter_chain (never used, not served)'], 1, 'and the default chain counted as never used');
  t.same(hcmOf({ filter_chains: [chain] }).rds, egHcm(base).rds, '(the same HttpConnectionManager)');

  const none = translate({ ...eg(), listeners: [{ ...base, default_filter_chain: undefined }] });
  t.same(errorsOf(none), [`${L} filter_chains: an HTTP listener needs a filter chain (got none for connections to its port, and no default_filter_chain)`],
    'no chain and no default chain: rejected as before');
  const bad = translate({ ...eg(), listeners: [{ ...base, default_filter_chain: { ...obj(base.default_filter_chain), use_proxy_proto: { value: true } } }] });
  t.same(errorsOf(bad), [`${L} default_filter_chain.use_proxy_proto: field not supported by Remora`], 'other fields of the default chain are NACKed by path');
});

t.test('listener settings: drain_type and accepts per socket event have no effect, on HTTP and TCP listeners', async (t) => {
  const base = egListener({ port: 0, underscores: 'ALLOW' });
  const r = translate({ ...eg(), listeners: [{ ...base, drain_type: 'DEFAULT', max_connections_to_accept_per_socket_event: undefined, per_connection_buffer_limit_bytes: undefined }] });
  t.same(errorsOf(r), []);
  t.equal(noEffect(r)?.['Listener.drain_type'], 1, 'DEFAULT sent explicitly is counted too');
  t.equal(noEffect(r)?.['Listener.max_connections_to_accept_per_socket_event'], undefined, 'unset: not counted');

  const tcp = {
    name: 'tcp', address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, drain_type: 'MODIFY_ONLY',
    max_connections_to_accept_per_socket_event: { value: 1 }, per_connection_buffer_limit_bytes: { value: 32768 },
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: protos.encodeAny(TypeUrl.TcpProxy, { stat_prefix: 't', cluster: EG_CLUSTER }) }] }],
  };
  const rt = translate({ listeners: [tcp], clusters: [egCluster()], endpoints: [egAssignment(9000)] });
  t.same(errorsOf(rt), []);
  const counted = noEffect(rt) ?? {};
  t.same(
    ['Listener.drain_type', 'Listener.max_connections_to_accept_per_socket_event', 'Listener.per_connection_buffer_limit_bytes'].map((k) => counted[k]),
    [1, 1, 1],
    'a TCP listener\'s buffer limit only paces reading: counted without effect with the other two',
  );
});

t.test('an HTTP listener\'s per_connection_buffer_limit_bytes caps its routes\' retry buffers, as in Envoy', async (t) => {
  const retry = { retry_on: '5xx', num_retries: { value: 2 } };
  const route = (name: string, extra: Obj): Obj => ({ name, match: { prefix: `/${name}` }, route: { cluster: EG_CLUSTER, ...('retry' in extra ? { retry_policy: retry } : {}) }, ...('limit' in extra ? { per_request_buffer_limit_bytes: { value: extra.limit } } : {}) });
  const routes = {
    name: EG_ROUTE_CONFIG,
    virtual_hosts: [{ name: 'v', domains: ['*'], routes: [route('plain', {}), route('retry', { retry: true }), route('lower', { retry: true, limit: 1024 }), route('higher', { retry: true, limit: 1_000_000 })] }],
  };
  const limits = (r: XdsTranslateResult): unknown[] => arr(arr(listenerOf(r).virtual_hosts)[0].routes).map((x) => obj(obj(x.route).retry_policy ?? {}).buffer_limit_bytes);
  const capped = translate({ ...eg(), routes: [routes] });
  t.same(errorsOf(capped), []);
  t.same(limits(capped), [undefined, 32768, 1024, 32768], 'a retrying route buffers the lower of its own limit and the listener\'s; a route without retries buffers nothing');
  t.equal(noEffect(capped)?.['Listener.per_connection_buffer_limit_bytes'], undefined, 'it has an effect: not counted');

  const unset = translate({ ...eg(), listeners: [{ ...egListener({ port: 0, underscores: 'ALLOW' }), per_connection_buffer_limit_bytes: undefined }], routes: [routes] });
  t.same(limits(unset), [undefined, 65536, 1024, 1_000_000], 'without it, each route keeps its own (Remora\'s default when unset)');

  const huge = translate({ ...eg(), listeners: [{ ...egListener({ port: 0, underscores: 'ALLOW' }), per_connection_buffer_limit_bytes: { value: 64 * 1024 * 1024 } }], routes: [routes] });
  t.match(errorsOf(huge).join('\n'), new RegExp(`^${L.replace(/[/"]/g, '\\$&')} per_connection_buffer_limit_bytes: `),
    'a limit above the largest retry buffer is NACKed at the listener\'s field');
  t.same(errorsOf(translate({ ...eg(), listeners: [{ ...egListener({ port: 0, underscores: 'ALLOW' }), per_connection_buffer_limit_bytes: { value: 64 * 1024 * 1024 } }] })), [],
    'the same limit with no retrying route is accepted (it bounds no buffer then)');
});

t.test('a cluster\'s per_connection_buffer_limit_bytes and ignore_health_on_host_removal have no effect', async (t) => {
  const r = translate({ clusters: [egCluster()], endpoints: [egAssignment(9000)] });
  t.same(errorsOf(r), []);
  const counted = noEffect(r) ?? {};
  t.same([counted['Cluster.per_connection_buffer_limit_bytes'], counted['Cluster.ignore_health_on_host_removal']], [1, 1]);
  const plain = { ...egCluster(), per_connection_buffer_limit_bytes: undefined, ignore_health_on_host_removal: false };
  const counted2 = noEffect(translate({ clusters: [plain], endpoints: [egAssignment(9000)] })) ?? {};
  t.same([counted2['Cluster.per_connection_buffer_limit_bytes'], counted2['Cluster.ignore_health_on_host_removal']], [undefined, undefined],
    'unset (false is the zero value): not counted');
});

t.test('go-control-plane\'s example: an api_config_source naming the management server is fetched on the ADS stream', async (t) => {
  const r = translate({ listeners: [gcpListener(0)], routes: [gcpRoutes()], clusters: [gcpCluster(9000, '127.0.0.1:53')] });
  t.same(errorsOf(r), []);
  t.strictSame(noEffect(r), { 'ConfigSource.api_config_source (fetched on the ADS stream)': 1 }, 'only the api_config_source is counted');
  const l = listenerOf(r);
  t.same(arr(arr(l.virtual_hosts)[0].routes).map((x) => obj(x.route).host_rewrite), ['localhost'], 'local_route is joined to listener_0');
  t.same(r.ok ? r.fetchTimeouts.routes.get(GCP_ROUTE) : undefined, 15_000, 'its initial_fetch_timeout is Envoy\'s default (15 s), as for ads');
  const c = r.ok ? r.config.clusters.find((x) => x.name === GCP_CLUSTER) : undefined;
  t.same(c?.dns && { type: c.dns.type, lookup_family: c.dns.lookup_family }, { type: 'logical', lookup_family: 'v4_only' }, 'example_proxy_cluster: LOGICAL_DNS, V4_ONLY');
  t.equal(c?.connect_timeout_ms, 5000);

  // The same source for an EDS cluster.
  const eds = { ...egCluster(), eds_cluster_config: { eds_config: GCP_CONFIG_SOURCE, service_name: EG_CLUSTER } };
  const re = translate({ clusters: [eds], endpoints: [egAssignment(9000)] });
  t.same(errorsOf(re), []);
  t.equal(noEffect(re)?.['ConfigSource.api_config_source (fetched on the ADS stream)'], 1, 'an EDS cluster\'s eds_config likewise');
});

t.test('api_config_source: what does not name one gRPC management server is NACKed by path', async (t) => {
  const at = `Listener "${GCP_LISTENER}" filter_chains[0].filters[0].typed_config.rds.config_source`;
  const errors = (api: Obj): string[] => {
    const l = gcpListener(0);
    const hcm = hcmOf(l);
    hcm.rds = { config_source: { resource_api_version: 'V3', api_config_source: api }, route_config_name: GCP_ROUTE };
    arr(l.filter_chains)[0].filters = [{ name: 'hcm', typed_config: protos.encodeAny(TypeUrl.HttpConnectionManager, hcm) }];
    return errorsOf(translate({ listeners: [l], routes: [gcpRoutes()], clusters: [gcpCluster(9000, '127.0.0.1:53')] }));
  };
  const server = { envoy_grpc: { cluster_name: 'xds_cluster' } };
  t.same(errors({ api_type: 'DELTA_GRPC', grpc_services: [server] }), [], 'DELTA_GRPC, transport_api_version unset: accepted');
  t.same(errors({ api_type: 'REST', cluster_names: ['xds_cluster'], refresh_delay: { seconds: 1 } }), [
    `${at}.api_config_source.cluster_names: field not supported by Remora`,
    `${at}.api_config_source.refresh_delay: field not supported by Remora`,
    `${at}.api_config_source.api_type: REST is not supported (a gRPC management server: GRPC or DELTA_GRPC)`,
    `${at}.api_config_source.grpc_services: must name exactly one management server (got 0): Remora has one, its bootstrap's xds.servers`,
  ]);
  t.same(errors({ api_type: 'GRPC', grpc_services: [server, server] }), [
    `${at}.api_config_source.grpc_services: must name exactly one management server (got 2): Remora has one, its bootstrap's xds.servers`,
  ]);
  t.same(errors({ api_type: 'GRPC', grpc_services: [{ google_grpc: { target_uri: 'xds.example:443', stat_prefix: 'x' } }] }), [
    `${at}.api_config_source.grpc_services[0].google_grpc: is not supported: name the management server by its bootstrap cluster (envoy_grpc.cluster_name)`,
  ]);
  t.same(errors({ api_type: 'GRPC', grpc_services: [{ envoy_grpc: {}, timeout: { seconds: 1 } }] }), [
    `${at}.api_config_source.grpc_services[0].timeout: field not supported by Remora`,
    `${at}.api_config_source.grpc_services[0].envoy_grpc.cluster_name: is required`,
  ]);
  t.same(errors({ api_type: 'GRPC', grpc_services: [server], rate_limit_settings: { max_tokens: { value: 10 } } }), [
    `${at}.api_config_source.rate_limit_settings: field not supported by Remora`,
  ]);
  const l = gcpListener(0);
  const hcm = hcmOf(l);
  hcm.rds = { config_source: { path_config_source: { path: '/etc/envoy/rds.yaml' } }, route_config_name: GCP_ROUTE };
  arr(l.filter_chains)[0].filters = [{ name: 'hcm', typed_config: protos.encodeAny(TypeUrl.HttpConnectionManager, hcm) }];
  t.same(errorsOf(translate({ listeners: [l], routes: [gcpRoutes()], clusters: [gcpCluster(9000, '127.0.0.1:53')] })), [
    `${at}: must be { ads: {} } (or an api_config_source naming one gRPC management server): Remora receives every resource on its ADS stream`,
  ], 'a file (path_config_source) is still NACKed');
});

t.test('a host:* domain is dropped where it adds nothing, and rejected where Remora would match more', async (t) => {
  const withDomains = (domains: string[], ignorePort: boolean): Obj => {
    const rc = egRoutes();
    if (!ignorePort) delete rc.ignore_port_in_host_matching;
    arr(rc.virtual_hosts)[0].domains = domains;
    return rc;
  };
  const domainsOf = (r: XdsTranslateResult): unknown => arr(listenerOf(r).virtual_hosts)[0].domains;
  const pair = translate({ ...eg(), routes: [withDomains(['www.example.com', 'www.example.com:*', 'api.example.com'], false)] });
  t.same(errorsOf(pair), []);
  t.same(domainsOf(pair), ['www.example.com', 'api.example.com'], 'beside its host, host:* is dropped (the host already takes any port)');
  t.equal(noEffect(pair)?.['RouteConfiguration.virtual_hosts.domains (host:*)'], 1, 'and counted');
  const ignored = translate({ ...eg(), routes: [withDomains(['www.example.com:*', 'api.example.com'], true)] });
  t.same(errorsOf(ignored), []);
  t.same(domainsOf(ignored), ['api.example.com'], 'with ignore_port_in_host_matching, Envoy never matches it: dropped');
  const alone = translate({ ...eg(), routes: [withDomains(['api.example.com', 'www.example.com:*'], false)] });
  t.same(errorsOf(alone), [
    `RouteConfiguration "${EG_ROUTE_CONFIG}" virtual_hosts[0].domains[1]: "www.example.com:*" matches www.example.com with a port and not without one; `
      + 'Remora matches a domain whatever port Host carries and cannot leave out the Host without one: list "www.example.com" in this virtual host too '
      + '(it then takes both, in Envoy too)',
  ], 'alone, it is rejected by path');
  const later = translate({ ...eg(), routes: [withDomains(['www.example.com:*', 'www.example.com', 'api.example.com:8080'], true)] });
  t.match(errorsOf(later).join('\n'), /virtual_hosts\[0\]\.domains\[2\]: "api\.example\.com:8080" has a port/, 'a later domain is still named by its index as received');
  const invalid = translate({ ...eg(), routes: [withDomains(['www.example.com:*', 'www.example.com', 'a b'], false)] });
  t.match(errorsOf(invalid).join('\n'), /virtual_hosts\[0\]\.domains\[2\]: "a b" is not a valid domain/, 'as are validation errors');
});

t.test('a route path or prefix without its leading "/" is kept as a route that matches nothing, and counted', async (t) => {
  const rc = egRoutes();
  const vh = arr(rc.virtual_hosts)[0];
  const route = arr(vh.routes)[0];
  vh.routes = [{ ...route, name: 'p', match: { path: 'foo/bar' } }, { ...route, name: 'q', match: { prefix: 'foo' } }, route];
  const r = translate({ ...eg(), routes: [rc] });
  t.same(errorsOf(r), [], 'accepted, as Envoy accepts it');
  const routes = arr(arr(listenerOf(r).virtual_hosts)[0].routes);
  t.same(routes.slice(0, 2).map((x) => obj(x.match).regex), ['(?!)', '(?!)'], 'each becomes a regex no path matches');
  t.equal(noEffect(r)?.['RouteConfiguration.virtual_hosts.routes.match.path without a leading / (never matches)'], 1);
  t.equal(noEffect(r)?.['RouteConfiguration.virtual_hosts.routes.match.prefix without a leading / (never matches)'], 1);
  t.notOk(new RegExp('(?!)').test('/foo/bar'), 'and it matches nothing');
});
