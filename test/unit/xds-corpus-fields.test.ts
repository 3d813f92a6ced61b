// Unit tests for fields found NACKed when real resources (Envoy Gateway's outputs,
// Istio's gateway routes, Envoy's example configs) were sent to Remora
// (bench/xds-corpus.ts): a route's path_separated_prefix, a RouteConfiguration's
// max_direct_response_body_size_bytes (Envoy's 4096 when unset), an endpoint's hostname,
// a health check's event log settings, a cluster's load_balancing_policy, outlier
// detection's local-origin fields, TLS session resumption, repeated route names and an http
// filter with disabled: true
// (translate-route-match.ts, translate-route.ts, translate-endpoints.ts, translate-lb-policy.ts,
// translate-cluster.ts, translate-listener.ts; docs/xds.md).

import t from 'tap';
import { translateXds, type XdsTranslateResult } from '../../src/xds/translate.js';
import { TypeUrl } from '../../src/xds/protos.js';
import type { RemoraConfig } from '../../src/config/types.js';
import { EG_CLUSTER, egAssignment, egCluster, egListener, egRoutes, EG_ROUTE_CONFIG, struct } from '../helpers/envoy-gateway.js';
import { arr, baseOf, errorsOf, obj, overTheWire, protos, valid, wire, type Obj } from '../helpers/xds.js';

interface Resources {
  routes?: Obj[];
  clusters?: Obj[];
  endpoints?: Obj[];
}

/** Envoy Gateway's listener, route configuration, cluster and endpoints, with `edit`
 *  applied, put on the wire and translated as the sidecar does (ADS). */
function translate(edit: (r: Required<Resources>) => void): XdsTranslateResult {
  const r = { routes: [egRoutes()], clusters: [egCluster()], endpoints: [egAssignment(9000)] };
  edit(r);
  const byName = (typeUrl: string, list: Obj[], key = 'name'): Map<string, Obj> => wire(typeUrl, new Map(list.map((x) => [String(x[key]), x])));
  return translateXds({}, {
    listeners: byName(TypeUrl.Listener, [egListener({ port: 0, underscores: 'ALLOW' })]),
    routes: byName(TypeUrl.RouteConfiguration, r.routes),
    clusters: byName(TypeUrl.Cluster, r.clusters),
    endpoints: byName(TypeUrl.ClusterLoadAssignment, r.endpoints, 'cluster_name'),
  }, { ads: true });
}

const firstRoute = (r: Required<Resources>): Obj => arr(arr(r.routes[0].virtual_hosts)[0].routes)[0];
const noEffect = (r: XdsTranslateResult): Record<string, number> => (r.ok ? Object.fromEntries(r.noEffect) : {});
const R = `RouteConfiguration "${EG_ROUTE_CONFIG}"`;

t.test('path_separated_prefix takes the prefix and what is below it, not a longer segment', async (t) => {
  const r = translate((x) => {
    firstRoute(x).match = { path_separated_prefix: '/api.v1' };
  });
  t.same(errorsOf(r), []);
  const match = r.ok ? obj(arr(arr(r.config.listeners[0].virtual_hosts)[0].routes)[0].match) : {};
  const re = new RegExp(`^(?:${String(match.regex)})$`); // how the route table applies a regex
  const verdicts = ['/api.v1', '/api.v1/', '/api.v1/users', '/api.v1s', '/apixv1', '/api', '/'].map((p) => [p, re.test(p)]);
  t.same(verdicts, [['/api.v1', true], ['/api.v1/', true], ['/api.v1/users', true], ['/api.v1s', false], ['/apixv1', false], ['/api', false], ['/', false]],
    `expected the prefix's own segment and below only; regex ${String(match.regex)}`);

  for (const bad of ['/api/', '/a?b', '']) {
    const rejected = translate((x) => {
      firstRoute(x).match = { path_separated_prefix: bad };
    });
    t.match(errorsOf(rejected).join('\n'), /path_separated_prefix: ".*" must not be empty, end with "\/" or contain "\?" or "#"/, `"${bad}" is rejected as Envoy rejects it`);
  }
});

t.test('direct_response bodies are bounded by max_direct_response_body_size_bytes, 4096 when unset', async (t) => {
  const withBody = (bytes: number, limit?: number) => translate((x) => {
    if (limit !== undefined) x.routes[0].max_direct_response_body_size_bytes = { value: limit };
    const route = firstRoute(x);
    delete route.route;
    route.direct_response = { status: 200, body: { inline_string: 'x'.repeat(bytes) } };
  });
  t.same(errorsOf(withBody(4096)), [], 'Envoy\'s default allows 4096 bytes');
  t.same(errorsOf(withBody(4097)), [`${R} virtual_hosts[0].routes[0].direct_response.body: 4097 bytes, over max_direct_response_body_size_bytes (4096)`]);
  t.same(errorsOf(withBody(8192, 8192)), [], 'a larger limit allows more');
  t.same(errorsOf(withBody(11, 10)), [`${R} virtual_hosts[0].routes[0].direct_response.body: 11 bytes, over max_direct_response_body_size_bytes (10)`], 'a smaller one less');
  t.same(noEffect(withBody(10, 10))['RouteConfiguration.max_direct_response_body_size_bytes'], undefined, 'it is applied, not counted as without effect');
});

t.test('an endpoint\'s hostname and a health check\'s event log are accepted without effect', async (t) => {
  const r = translate((x) => {
    const lbe = arr(arr(x.endpoints[0].endpoints)[0].lb_endpoints)[0];
    obj(lbe.endpoint).hostname = 'backend-0.example.internal';
    x.clusters[0].health_checks = [{
      timeout: { seconds: 1 }, interval: { seconds: 5 }, unhealthy_threshold: { value: 2 }, healthy_threshold: { value: 1 },
      http_health_check: { path: '/healthz' }, event_log_path: '/dev/stdout', always_log_health_check_failures: true,
    }];
  });
  t.same(errorsOf(r), []);
  const counted = noEffect(r);
  t.same(
    ['ClusterLoadAssignment.endpoints.lb_endpoints.endpoint.hostname', 'Cluster.health_checks.event_log_path', 'Cluster.health_checks.always_log_health_check_failures'].map((k) => counted[k]),
    [1, 1, 1],
    'each counted once',
  );
  const cluster = r.ok ? r.config.clusters.find((c) => c.name === EG_CLUSTER) : undefined;
  t.equal(cluster?.health_check?.path, '/healthz', 'the health check itself is applied');
});

t.test('a disabled http filter Remora does not run is accepted; its own filters cannot be disabled', async (t) => {
  const withFilter = (filter: Obj) => {
    const l = egListener({ port: 0, underscores: 'ALLOW' });
    const chain = obj(l.default_filter_chain);
    const hcmAny = obj(arr(chain.filters)[0].typed_config);
    const hcm = protos.decodeAny(hcmAny as never).message;
    hcm.http_filters = [filter, ...arr(hcm.http_filters)];
    arr(chain.filters)[0].typed_config = protos.encodeAny(TypeUrl.HttpConnectionManager, hcm);
    return translateXds({}, {
      listeners: wire(TypeUrl.Listener, new Map([[String(l.name), l]])),
      routes: wire(TypeUrl.RouteConfiguration, new Map([[EG_ROUTE_CONFIG, egRoutes()]])),
      clusters: wire(TypeUrl.Cluster, new Map([[EG_CLUSTER, egCluster()]])),
      endpoints: wire(TypeUrl.ClusterLoadAssignment, new Map([[EG_CLUSTER, egAssignment(9000)]])),
    }, { ads: true });
  };
  // Envoy Gateway's ext_authz, off unless a route enables it (the bytes are never read).
  const extAuthz = { name: 'envoy.filters.http.ext_authz/securitypolicy/default/p', disabled: true,
    typed_config: { type_url: 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz', value: Buffer.from([0x0a, 0x00]) } };
  const r = withFilter(extAuthz);
  t.same(errorsOf(r), []);
  t.equal(noEffect(r)['HttpFilter envoy.extensions.filters.http.ext_authz.v3.ExtAuthz (disabled, not run)'], 1, 'counted as not run');
  t.match(errorsOf(withFilter({ ...extAuthz, disabled: false })).join('\n'), /unsupported http filter envoy\.filters\.http\.ext_authz/, 'enabled, it is rejected as before');

  const rbac = { name: 'envoy.filters.http.rbac', disabled: true, typed_config: protos.encodeAny(TypeUrl.Rbac, {}) };
  t.match(errorsOf(withFilter(rbac)).join('\n'), /http_filters\[0\]\.disabled: is not supported for this filter: Remora runs it on every request of the listener/, 'RBAC cannot be disabled');
});

t.test('load_balancing_policy: the first policy Remora runs is used, over lb_policy', async (t) => {
  const policy = (type: string, config: Obj = {}): Obj => ({ typed_extension_config: { name: `envoy.load_balancing_policies.${type}`, typed_config: protos.encodeAny(`type.googleapis.com/envoy.extensions.load_balancing_policies.${type}.v3.${type === 'least_request' ? 'LeastRequest' : type === 'round_robin' ? 'RoundRobin' : 'Random'}`, config) } });
  const ringHash = { typed_extension_config: { name: 'envoy.load_balancing_policies.ring_hash', typed_config: { type_url: 'type.googleapis.com/envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash', value: Buffer.alloc(0) } } };
  const withPolicies = (policies: Obj[], lbPolicy = 'LEAST_REQUEST') => translate((x) => {
    x.clusters[0].lb_policy = lbPolicy;
    x.clusters[0].load_balancing_policy = { policies };
  });
  const lbOf = (r: XdsTranslateResult): string | undefined => (r.ok ? r.config.clusters.find((c) => c.name === EG_CLUSTER)?.lb_policy : undefined);

  // Envoy Gateway's: least_request with locality weighting, beside lb_policy LEAST_REQUEST.
  const eg = withPolicies([policy('least_request', { locality_lb_config: { locality_weighted_lb_config: {} } })]);
  t.same(errorsOf(eg), []);
  t.equal(lbOf(eg), 'least_request');
  t.same([noEffect(eg)['Cluster.lb_policy (load_balancing_policy is used)'], noEffect(eg)['Cluster.load_balancing_policy locality_weighted_lb_config']], [1, 1], 'lb_policy and locality weighting counted without effect');

  const passed = withPolicies([ringHash, policy('random')], 'ROUND_ROBIN');
  t.equal(lbOf(passed), 'random', 'a policy Remora does not run is passed over for the next (expected random)');
  t.equal(lbOf(withPolicies([policy('round_robin')], 'RANDOM')), 'round_robin', 'load_balancing_policy wins over lb_policy');
  t.same(errorsOf(withPolicies([ringHash])), [`Cluster "${EG_CLUSTER}" load_balancing_policy.policies: none of these is supported: envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash (Remora runs round_robin, least_request and random)`]);
  t.match(errorsOf(withPolicies([policy('least_request', { choice_count: { value: 3 } })])).join('\n'), /choice_count: 3 is not supported/, 'another choice_count is rejected');
  t.match(errorsOf(withPolicies([policy('round_robin', { slow_start_config: { slow_start_window: { seconds: 30 } } })])).join('\n'), /slow_start_config: is not supported/, 'slow start is rejected');
  t.same(errorsOf(withPolicies([policy('least_request', { choice_count: { value: 2 } })])), [], 'choice_count 2 (the default) is accepted');
});

t.test('outlier detection: the local-origin fields without split are accepted without effect; split is rejected', async (t) => {
  const withOutlier = (od: Obj) => translate((x) => {
    x.clusters[0].outlier_detection = od;
  });
  // Envoy Gateway's BackendTrafficPolicy passive health check.
  const eg = { consecutive_5xx: { value: 5 }, consecutive_gateway_failure: { value: 0 }, consecutive_local_origin_failure: { value: 5 },
    enforcing_consecutive_gateway_failure: { value: 100 }, interval: { seconds: 2 }, max_ejection_percent: { value: 100 } };
  const r = withOutlier(eg);
  t.same(errorsOf(r), []);
  t.equal(noEffect(r)['Cluster.outlier_detection.consecutive_local_origin_failure (without split_external_local_origin_errors)'], 1, 'counted');
  const cluster = r.ok ? r.config.clusters.find((c) => c.name === EG_CLUSTER) : undefined;
  t.equal(cluster?.outlier_detection?.consecutive_5xx, 5, 'the 5xx detector is applied');
  t.match(errorsOf(withOutlier({ ...eg, split_external_local_origin_errors: true })).join('\n'), /split_external_local_origin_errors: is not supported/);
});

t.test('disable_stateless/stateful_session_resumption are a listener\'s session_resumption, both ways', async (t) => {
  const withResumption = (mode: string): RemoraConfig => valid({
    listeners: [{ name: 'in', address: '127.0.0.1', port: 0, tls: { cert_file: '/x/cert.pem', key_file: '/x/key.pem', session_resumption: mode },
      virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }] }] }],
    clusters: [{ name: 'up', endpoints: [{ address: '127.0.0.1', port: 9 }] }],
  });
  for (const mode of ['tickets', 'cache', 'none']) {
    const config = withResumption(mode);
    const r = translateXds(baseOf(config), { ...overTheWire(config, false), secrets: new Map() });
    t.same(errorsOf(r), []);
    t.equal(r.ok ? r.config.listeners[0].tls?.session_resumption : undefined, mode, `${mode}: encoded and translated back`);
  }
  const config = withResumption('tickets');
  const plain = valid({ ...config, listeners: [{ ...config.listeners[0], tls: { cert_file: '/x/cert.pem', key_file: '/x/key.pem' } }] });
  t.equal(plain.listeners[0].tls?.session_resumption, 'tickets', 'tickets are the default');
});

t.test('a route name used in several virtual hosts (Istio\'s "default") is qualified with each one\'s name', async (t) => {
  const r = translate((x) => {
    const vh = arr(x.routes[0].virtual_hosts)[0];
    const route = (): Obj => ({ name: 'default', match: { prefix: '/' }, route: { cluster: EG_CLUSTER } });
    x.routes[0].virtual_hosts = [
      { ...vh, name: 'reviews.default.svc.cluster.local:9080', domains: ['reviews'], routes: [route()] },
      { ...vh, name: 'ratings.default.svc.cluster.local:9080', domains: ['ratings'], routes: [route(), { name: 'only-once', match: { path: '/x' }, route: { cluster: EG_CLUSTER } }] },
    ];
  });
  t.same(errorsOf(r), []);
  const names = r.ok ? arr(r.config.listeners[0].virtual_hosts).flatMap((vh) => arr(vh.routes).map((x) => x.name)) : [];
  t.same(names, ['reviews.default.svc.cluster.local:9080/default', 'ratings.default.svc.cluster.local:9080/default', 'only-once'], 'a name used once stays as sent');
});

t.test('a route table without virtual hosts is accepted: every request answers 404 NR', async (t) => {
  const r = translate((x) => {
    x.routes[0].virtual_hosts = [];
  });
  t.same(errorsOf(r), []);
  const vhosts = r.ok ? r.config.listeners[0].virtual_hosts : [];
  t.same(vhosts.map((vh) => [vh.name, vh.routes.map((route) => route.direct_response?.status)]), [['remora.empty-route-table', [404]]],
    'a stand-in whose one route no path matches (a path never has a space)');
});

t.test('Istio 1.9\'s shapes: deprecated_v1.bind_to_port, a raw_buffer socket by name, protocol_selection', async (t) => {
  // A per-port listener Istio 1.9 writes unbound through the deprecated field: accepted, not served.
  const unbound = egListener({ port: 9080, underscores: 'ALLOW' });
  unbound.deprecated_v1 = { bind_to_port: { value: false } };
  const bound = { ...egListener({ port: 0, underscores: 'ALLOW' }), name: 'bound', deprecated_v1: { bind_to_port: { value: true } } };
  const listeners = translateXds({}, {
    listeners: wire(TypeUrl.Listener, new Map([[String(unbound.name), unbound], ['bound', bound]])),
    routes: wire(TypeUrl.RouteConfiguration, new Map([[EG_ROUTE_CONFIG, egRoutes()]])),
    clusters: wire(TypeUrl.Cluster, new Map([[EG_CLUSTER, egCluster()]])),
    endpoints: wire(TypeUrl.ClusterLoadAssignment, new Map([[EG_CLUSTER, egAssignment(9000)]])),
  }, { ads: true });
  t.same(errorsOf(listeners), []);
  t.same(listeners.ok ? listeners.config.listeners.map((l) => l.name) : [], ['bound'], 'deprecated_v1.bind_to_port false: not bound, not served; true: served');

  // Automatic mTLS's plaintext match names the raw_buffer socket without a typed_config.
  const r = translate((x) => {
    x.clusters[0].transport_socket_matches = [{ name: 'tlsMode-disabled', match: {}, transport_socket: { name: 'envoy.transport_sockets.raw_buffer' } }];
  });
  t.same(errorsOf(r), []);

  const selection = (edit: (c: Obj) => void) => translate((x) => edit(x.clusters[0]));
  const downstream = selection((c) => {
    c.protocol_selection = 'USE_DOWNSTREAM_PROTOCOL';
    c.http2_protocol_options = { max_concurrent_streams: { value: 1000 } };
    delete c.typed_extension_protocol_options;
  });
  t.same(errorsOf(downstream), []);
  const c = downstream.ok ? downstream.config.clusters.find((x) => x.name === EG_CLUSTER) : undefined;
  t.same([c?.protocol, c?.http2_protocol_options.max_concurrent_streams], ['downstream', 1000], 'the client\'s version upstream, with the deprecated HTTP/2 options');
  const both = selection((c) => {
    c.protocol_selection = 'USE_DOWNSTREAM_PROTOCOL';
    c.typed_extension_protocol_options = {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': protos.encodeAny(TypeUrl.HttpProtocolOptions, { explicit_http_config: { http_protocol_options: {} } }),
    };
  });
  t.match(errorsOf(both).join('\n'), /protocol_selection: not allowed together with typed_extension_protocol_options/);
});

t.test('Envoy Gateway\'s empty UpstreamTlsContext beside transport_socket_matches: the entries\' TLS settings apply', async (t) => {
  const entryTls = protos.encodeAny(TypeUrl.UpstreamTlsContext, {
    sni: 'backend.example.com',
    common_tls_context: { validation_context: { trusted_ca: { filename: '/etc/ssl/backend-ca.pem' }, match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'backend.example.com' } }] } },
  });
  const withSockets = (own: unknown) => translate((x) => {
    x.clusters[0].transport_socket = { name: 'dummy.transport_socket', typed_config: own };
    x.clusters[0].transport_socket_matches = [{ name: `${EG_CLUSTER}/tls/0`, match: struct({ name: `${EG_CLUSTER}/tls/0` }), transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: entryTls } }];
    const lbe = arr(arr(x.endpoints[0].endpoints)[0].lb_endpoints)[0];
    lbe.metadata = { filter_metadata: { 'envoy.transport_socket_match': struct({ name: `${EG_CLUSTER}/tls/0` }) } };
  });
  const r = withSockets(protos.encodeAny(TypeUrl.UpstreamTlsContext, { common_tls_context: {} }));
  t.same(errorsOf(r), []);
  const c = r.ok ? r.config.clusters.find((x) => x.name === EG_CLUSTER) : undefined;
  t.same([c?.tls?.ca_file, c?.tls?.sni], ['/etc/ssl/backend-ca.pem', 'backend.example.com'], 'the entry\'s settings are the cluster\'s TLS');
  t.same(c?.transport_socket_matches?.map((m) => [m.name, m.tls]), [[`${EG_CLUSTER}/tls/0`, true]], 'no plaintext default: endpoints no entry matches use TLS, verified');
  t.equal(noEffect(r)['Cluster.transport_socket (an empty UpstreamTlsContext beside transport_socket_matches)'], 1, 'counted');

  const withSni = withSockets(protos.encodeAny(TypeUrl.UpstreamTlsContext, { sni: 'other.example.com', common_tls_context: {} }));
  t.match(errorsOf(withSni).join('\n'), /trusted_ca: is required/, 'a cluster socket with settings of its own is read as before');
});
