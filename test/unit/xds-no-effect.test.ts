// Unit tests for the count of fields accepted without effect (Ctx.noEffect, translateXds'
// `noEffect`; docs/xds.md "Fields without effect"): Istio-shaped resources, built from a
// Remora config and edited the way Istio writes them, give the exact map of field → number
// of resources setting it (a field set twice in one resource counts once); the same
// resources without those fields give an empty map.

import t from 'tap';
import { translateXds } from '../../src/xds/translate.js';
import { TypeUrl, type AnyMessage } from '../../src/xds/protos.js';
import { arr, baseOf, errorsOf, hcmOf, obj, overTheWire, protos, rewire, setHcm, valid, type Obj } from '../helpers/xds.js';

const EP = (port: number) => [{ address: '127.0.0.1', port }];
const HTTP = valid({
  listeners: [{
    name: 'in', port: 0, virtual_hosts: [{
      name: 'v', domains: ['*'], routes: [
        { name: 'a', match: { prefix: '/a' }, route: { cluster: 'api', retry_policy: { retry_on: ['5xx'], num_retries: 2 } } },
        { name: 'b', match: { prefix: '/' }, route: { cluster: 'web' } },
      ],
    }],
  }],
  clusters: [{ name: 'api', endpoints: EP(9000) }, { name: 'web', endpoints: EP(9001) }],
});
const TCP = valid({ listeners: [{ name: 'redis', port: 6379, tcp_proxy: { cluster: 'redis' } }], clusters: [{ name: 'redis', endpoints: EP(7000) }] });

const any = (typeUrl: string, bytes: number[] = []): AnyMessage => ({ type_url: typeUrl, value: Buffer.from(bytes) });
const istioMetadata = (fields: Obj): Obj => ({ filter_metadata: { istio: { fields } } });
const str = (s: string): Obj => ({ stringValue: s });

/** The resources of `config` as Remora's encoder writes them, less the one locality and
 *  its weight it gives every ClusterLoadAssignment (for gRPC clients; no effect in Remora,
 *  so counted: see the first test). */
function encoded(config: typeof HTTP): ReturnType<typeof overTheWire> {
  const set = overTheWire(config);
  for (const cla of set.endpoints.values()) {
    for (const group of arr(cla.endpoints)) {
      delete group.locality;
      delete group.load_balancing_weight;
    }
  }
  return set;
}

/** Istio's sidecar additions to every resource of the HTTP config. */
function istioHttp(set: ReturnType<typeof overTheWire>): void {
  const l = set.listeners.get('in') as Obj;
  Object.assign(l, {
    traffic_direction: 'OUTBOUND',
    listener_filters: [
      { name: 'envoy.filters.listener.tls_inspector', typed_config: any(TypeUrl.TlsInspector) },
      { name: 'envoy.filters.listener.http_inspector', typed_config: any(TypeUrl.HttpInspector) },
    ],
    metadata: istioMetadata({ config: str('/apis/networking.istio.io/v1/namespaces/default/sidecar/default') }),
  });
  const hcm = hcmOf(l);
  Object.assign(hcm, {
    use_remote_address: { value: false },
    drain_timeout: { seconds: 45 },
    request_id_extension: { typed_config: protos.encodeAny(TypeUrl.UuidRequestId, { use_request_id_for_trace_sampling: { value: true } }) },
    tracing: {
      random_sampling: { value: 1 },
      custom_tags: [
        { tag: 'dry_run', metadata: { kind: { request: {} }, metadata_key: { key: 'envoy.filters.http.rbac', path: [{ key: 'id' }] } } },
        { tag: 'mesh', literal: { value: 'cluster.local' } },
      ],
    },
    http_filters: [
      { name: 'envoy.filters.http.cors', typed_config: protos.encodeAny(TypeUrl.Cors, {}) },
      { name: 'istio.stats', typed_config: any('type.googleapis.com/stats.PluginConfig', [0x08, 0x01]) },
      { name: 'envoy.filters.http.router', typed_config: protos.encodeAny(TypeUrl.Router, { suppress_envoy_headers: true }) },
    ],
  });
  setHcm(l, hcm);
  const rc = set.routes.get('in') as Obj;
  rc.validate_clusters = { value: false };
  const vh = obj(arr(rc.virtual_hosts)[0]);
  for (const r of arr(vh.routes)) {
    r.decorator = { operation: 'api.default.svc.cluster.local:80/*' }; // twice in one resource: counted once
    r.metadata = istioMetadata({ config: str('/apis/networking.istio.io/v1/namespaces/default/virtual-service/api') });
  }
  obj(obj(arr(vh.routes)[0].route).retry_policy).host_selection_retry_max_attempts = '5';
  for (const c of set.clusters.values()) {
    c.metadata = istioMetadata({ services: { listValue: { values: [] } } });
    c.dns_lookup_family = 'V4_ONLY'; // an EDS cluster: ignored, as by Envoy
  }
  const cla = set.endpoints.get('api') as Obj;
  cla.policy = { overprovisioning_factor: { value: 140 } };
  const group = obj(arr(cla.endpoints)[0]);
  group.locality = { region: 'eu', zone: 'eu-1a' };
  for (const e of arr(group.lb_endpoints)) {
    e.metadata = {
      filter_metadata: { istio: { fields: { workload: str('api-v1;default;api;v1;Kubernetes') } }, 'envoy.transport_socket_match': { fields: { tlsMode: str('istio') } } },
    };
    obj(e.endpoint).health_check_config = {};
  }
}

t.test('Istio-shaped HTTP resources: each field without effect, with the resources setting it', async (t) => {
  const plain = translateXds(baseOf(HTTP), overTheWire(HTTP));
  t.strictSame(plain.ok ? Object.fromEntries(plain.noEffect) : undefined, {
    'ClusterLoadAssignment.endpoints.load_balancing_weight': 2,
    'ClusterLoadAssignment.endpoints.locality': 2,
  }, 'Remora\'s encoder: a locality and its weight on each of the two assignments');
  const set = encoded(HTTP);
  istioHttp(set);
  const r = translateXds(baseOf(HTTP), rewire(set));
  t.same(errorsOf(r), []);
  t.strictSame(r.ok ? Object.fromEntries(r.noEffect) : undefined, {
    'Cluster.dns_lookup_family': 2,
    'Cluster.metadata': 2,
    'ClusterLoadAssignment.endpoints.lb_endpoints.endpoint.health_check_config': 1,
    'ClusterLoadAssignment.endpoints.lb_endpoints.metadata': 1,
    'ClusterLoadAssignment.endpoints.locality': 1,
    'ClusterLoadAssignment.policy.overprovisioning_factor': 1,
    'HttpConnectionManager.drain_timeout': 1,
    'HttpConnectionManager.tracing.custom_tags.metadata': 1,
    'HttpConnectionManager.use_remote_address': 1,
    'HttpFilter envoy.filters.http.cors': 1,
    'HttpFilter istio.stats': 1,
    'Listener.metadata': 1,
    'Listener.traffic_direction': 1,
    'ListenerFilter envoy.filters.listener.http_inspector': 1,
    'ListenerFilter envoy.filters.listener.tls_inspector': 1,
    'RouteConfiguration.validate_clusters': 1,
    'RouteConfiguration.virtual_hosts.routes.decorator': 1,
    'RouteConfiguration.virtual_hosts.routes.metadata': 1,
    'RouteConfiguration.virtual_hosts.routes.route.retry_policy.host_selection_retry_max_attempts': 1,
    'Router.suppress_envoy_headers': 1,
    'UuidRequestIdConfig.use_request_id_for_trace_sampling': 1,
  });
  t.same(r.ok ? [...r.noEffect.keys()] : [], r.ok ? [...r.noEffect.keys()].sort() : [], 'sorted by field');
});

t.test('Istio-shaped TCP resources: network filters before the tcp_proxy and its fields without effect', async (t) => {
  const set = encoded(TCP);
  const l = set.listeners.get('redis') as Obj;
  const chain = obj(l.default_filter_chain);
  chain.filter_chain_match = { server_names: ['redis.example.com'] }; // ignored on the default chain
  const filters = arr(chain.filters);
  const proxy = filters[filters.length - 1];
  const msg = protos.decodeAny(proxy.typed_config as unknown as AnyMessage).message;
  msg.hash_policy = [{ source_ip: {} }];
  proxy.typed_config = protos.encodeAny(TypeUrl.TcpProxy, msg);
  chain.filters = [
    { name: 'istio.stats', typed_config: any('type.googleapis.com/stats.PluginConfig', [0x08, 0x01]) },
    { name: 'envoy.filters.network.rbac', typed_config: protos.encodeAny(TypeUrl.NetworkRbac, { stat_prefix: 'tcp.', shadow_rules: { action: 'DENY' } }) },
    proxy,
  ];
  const r = translateXds(baseOf(TCP), rewire(set));
  t.same(errorsOf(r), []);
  t.strictSame(r.ok ? Object.fromEntries(r.noEffect) : undefined, {
    'Listener.default_filter_chain.filter_chain_match': 1,
    'NetworkFilter envoy.filters.network.rbac': 1,
    'NetworkFilter istio.stats': 1,
    'TcpProxy.hash_policy': 1,
  });
});

t.test('the same resources without those fields: an empty map', async (t) => {
  for (const config of [HTTP, TCP]) {
    const r = translateXds(baseOf(config), rewire(encoded(config)));
    t.same(errorsOf(r), []);
    t.strictSame(r.ok ? [...r.noEffect] : undefined, []);
  }
  // Set to its zero value (proto3: the same as unset on the wire): not counted either.
  const set = encoded(HTTP);
  (set.listeners.get('in') as Obj).traffic_direction = 'UNSPECIFIED';
  const r = translateXds(baseOf(HTTP), rewire(set));
  t.strictSame(r.ok ? [...r.noEffect] : undefined, []);
});

t.test('a rejected set has no map', async (t) => {
  const set = overTheWire(HTTP);
  istioHttp(set);
  (set.clusters.get('api') as Obj).lb_policy = 'MAGLEV';
  const r = translateXds(baseOf(HTTP), rewire(set));
  t.equal(r.ok, false);
  t.notOk('noEffect' in r);
});
