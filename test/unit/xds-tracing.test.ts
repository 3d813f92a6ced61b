// HttpConnectionManager `tracing` and route `tracing` from a control plane
// (src/xds/translate-listener-hcm.ts, translate-route.ts, translate.ts): an OpenTelemetry
// provider (gRPC or HTTP service to a cluster) becomes the root `tracing` block and the
// listener's sampling; Istio's Zipkin block is accepted and, with a bootstrap tracing
// block, its sampling applies; route sampling maps; wrong providers are rejected by path.

import t from 'tap';
import { translateXds } from '../../src/xds/translate.js';
import { TypeUrl } from '../../src/xds/protos.js';
import { baseOf, errorsOf, hcmOf, overTheWire, protos, setHcm, valid, wire, type Obj } from '../helpers/xds.js';

const CONFIG = valid({
  listeners: [{ name: 'in', port: 0, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'api' } }] }] }],
  clusters: [
    { name: 'api', endpoints: [{ address: '127.0.0.1', port: 9000 }] },
    { name: 'otel-collector', protocol: 'http2', endpoints: [{ address: '127.0.0.1', port: 4317 }] },
  ],
});

function translate(tracing: Obj, base: Record<string, unknown> = baseOf(CONFIG), route?: (r: Obj) => void) {
  const set = overTheWire(CONFIG, false);
  const l = set.listeners.get('in') as Obj;
  const hcm = hcmOf(l);
  hcm.tracing = tracing;
  setHcm(l, hcm);
  if (route !== undefined) {
    for (const rc of set.routes.values()) route(((rc.virtual_hosts as Obj[])[0].routes as Obj[])[0]);
  }
  return translateXds(base, { ...set, listeners: wire(TypeUrl.Listener, set.listeners), routes: wire(TypeUrl.RouteConfiguration, set.routes) });
}

const otel = (config: Obj): Obj => ({ name: 'envoy.tracers.opentelemetry', typed_config: protos.encodeAny(TypeUrl.OpenTelemetryTracer, config) });

t.test('OpenTelemetry provider over gRPC: root tracing to the cluster, listener sampling', async (t) => {
  const r = translate({
    random_sampling: { value: 10 },
    overall_sampling: { value: 50 },
    max_path_tag_length: { value: 64 },
    custom_tags: [{ tag: 'team', literal: { value: 'payments' } }, { tag: 'pod', environment: { name: 'POD_NAME', default_value: 'unknown' } }, { tag: 'tenant', request_header: { name: 'X-Tenant' } }],
    provider: otel({ grpc_service: { envoy_grpc: { cluster_name: 'otel-collector' }, timeout: { seconds: 2 } }, service_name: 'productpage' }),
  });
  t.same(errorsOf(r), []);
  if (!r.ok) return;
  t.strictSame(r.config.tracing?.otlp.cluster, 'otel-collector');
  t.strictSame(r.config.tracing?.otlp.protocol, 'grpc');
  t.strictSame(r.config.tracing?.otlp.timeout_ms, 2000);
  t.strictSame(r.config.tracing?.service_name, 'productpage');
  const lt = r.config.listeners[0].tracing;
  t.strictSame([lt?.random_sampling, lt?.overall_sampling, lt?.client_sampling, lt?.max_path_tag_length], [10, 50, undefined, 64]);
  t.same(lt?.custom_tags, [{ tag: 'team', literal: 'payments' }, { tag: 'pod', environment: 'POD_NAME', default_value: 'unknown' }, { tag: 'tenant', request_header: 'x-tenant' }]);
});

t.test('OpenTelemetry provider over HTTP', async (t) => {
  const r = translate({ provider: otel({ http_service: { http_uri: { uri: 'http://otel-collector:4318/v1/traces', cluster: 'otel-collector', timeout: { seconds: 1 } } } }) });
  t.same(errorsOf(r), []);
  if (r.ok) t.same([r.config.tracing?.otlp.protocol, r.config.tracing?.otlp.cluster], ['http/protobuf', 'otel-collector']);
  const bad = translate({ provider: otel({ http_service: { http_uri: { uri: 'http://c/api/traces', cluster: 'otel-collector' } } }) });
  t.match(errorsOf(bad).join('\n'), /http_service\.http_uri\.uri: "http:\/\/c\/api\/traces": Remora posts to the collector's \/v1\/traces path only/);
  const none = translate({ provider: otel({ service_name: 'x' }) });
  t.match(errorsOf(none).join('\n'), /provider\.typed_config: must set grpc_service or http_service/);
  const sampler = translate({ provider: otel({ grpc_service: { envoy_grpc: { cluster_name: 'otel-collector' } }, sampler: { name: 'x', typed_config: { type_url: 'type.googleapis.com/x', value: Buffer.alloc(0) } } }) });
  t.match(errorsOf(sampler).join('\n'), /typed_config\.sampler: is not supported/);
});

const ZIPKIN = {
  random_sampling: { value: 1 },
  provider: { name: 'envoy.tracers.zipkin', typed_config: protos.encodeAny(TypeUrl.ZipkinTracer, { collector_cluster: 'zipkin', collector_endpoint: '/api/v2/spans', collector_endpoint_version: 'HTTP_JSON', trace_id_128bit: true, shared_span_context: { value: false } }) },
};

t.test('Istio\'s Zipkin tracing: accepted; no effect without an exporter, sampling with the bootstrap\'s', async (t) => {
  const r = translate(ZIPKIN);
  t.same(errorsOf(r), []);
  if (r.ok) t.same([r.config.tracing, r.config.listeners[0].tracing], [undefined, undefined]);
  const withBootstrap = translate(ZIPKIN, { ...baseOf(CONFIG), tracing: { otlp: { endpoint: 'http://127.0.0.1:4318/v1/traces' } } });
  t.same(errorsOf(withBootstrap), []);
  if (withBootstrap.ok) {
    t.same(withBootstrap.config.tracing?.otlp.endpoint, 'http://127.0.0.1:4318/v1/traces', 'the bootstrap\'s exporter');
    t.same(withBootstrap.config.listeners[0].tracing?.random_sampling, 1, 'the HCM\'s sampling');
  }
});

t.test('route tracing', async (t) => {
  const r = translate({ provider: otel({ grpc_service: { envoy_grpc: { cluster_name: 'otel-collector' } } }) }, baseOf(CONFIG), (route) => {
    route.tracing = { random_sampling: { numerator: 5, denominator: 'TEN_THOUSAND' }, overall_sampling: { numerator: 100 } };
  });
  t.same(errorsOf(r), []);
  if (r.ok) t.same(r.config.listeners[0].virtual_hosts[0].routes[0].tracing, { random_sampling: 0.05, overall_sampling: 100 });
});

t.test('a config with tracing survives encoding for the control plane and translating back', async (t) => {
  const config = valid({
    tracing: { service_name: 'svc', otlp: { cluster: 'otel-collector', protocol: 'grpc' } },
    listeners: [{
      name: 'in', port: 0,
      tracing: { random_sampling: 12.5, custom_tags: [{ tag: 'team', literal: 'payments' }, { tag: 'tenant', request_header: 'x-tenant' }] },
      virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'api' }, tracing: { random_sampling: 0.05 } }] }],
    }],
    clusters: [
      { name: 'api', endpoints: [{ address: '127.0.0.1', port: 9000 }] },
      { name: 'otel-collector', protocol: 'http2', endpoints: [{ address: '127.0.0.1', port: 4317 }] },
    ],
  });
  const r = translateXds(baseOf(config), overTheWire(config, false));
  t.same(errorsOf(r), []);
  if (!r.ok) return;
  t.strictSame(r.config.tracing, config.tracing);
  t.strictSame(r.config.listeners[0].tracing, config.listeners[0].tracing);
  t.strictSame(r.config.listeners[0].virtual_hosts[0].routes[0].tracing, config.listeners[0].virtual_hosts[0].routes[0].tracing);
});
