// The root `tracing` block resolved with OpenTelemetry's environment variables
// (src/tracing/settings.ts) and checked by config validation: config over environment
// over OpenTelemetry's defaults, endpoint paths per protocol, headers and resource
// attributes from their key=value lists, the Downward API variables, bad environment
// values reported and ignored; validation errors by path.

import t from 'tap';
import { resolveTracing } from '../../src/tracing/settings.js';
import { validateConfig } from '../../src/config/validate.js';
import type { TracingConfig } from '../../src/config/types.js';

const block = (b: Record<string, unknown> = {}): TracingConfig => ({ otlp: {}, ...b }) as TracingConfig;

t.test('defaults', async (t) => {
  const s = resolveTracing(block(), {});
  t.same({ p: s.protocol, e: s.endpoint, svc: s.serviceName, sampler: s.sampler, ratio: s.ratio, prop: s.propagators, q: s.maxQueueSize, b: s.maxExportBatchSize, d: s.scheduleDelayMs, to: s.timeoutMs },
    { p: 'http/protobuf', e: 'http://localhost:4318/v1/traces', svc: 'remora', sampler: 'parentbased_always_on', ratio: 1, prop: ['tracecontext'], q: 2048, b: 512, d: 5000, to: 10_000 });
  t.equal(resolveTracing(block({ otlp: { protocol: 'grpc' } }), {}).endpoint, 'http://localhost:4317');
});

t.test('environment', async (t) => {
  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
    OTEL_EXPORTER_OTLP_HEADERS: 'api-key=s%20ecret,x-team=payments',
    OTEL_SERVICE_NAME: 'checkout',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,service.version=1.2',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.01',
    OTEL_PROPAGATORS: 'tracecontext,baggage,b3multi,jaeger',
    OTEL_BSP_SCHEDULE_DELAY: '200',
    POD_NAME: 'checkout-7f9c', POD_NAMESPACE: 'shop', NODE_NAME: 'node-1',
  };
  const s = resolveTracing(block(), env);
  t.equal(s.endpoint, 'http://collector:4318/v1/traces', 'OTEL_EXPORTER_OTLP_ENDPOINT gets /v1/traces over HTTP');
  t.same(s.headers, { 'api-key': 's ecret', 'x-team': 'payments' });
  t.equal(s.serviceName, 'checkout');
  t.same(s.resource, { 'deployment.environment': 'prod', 'service.version': '1.2', 'k8s.pod.name': 'checkout-7f9c', 'k8s.namespace.name': 'shop', 'k8s.node.name': 'node-1', 'service.name': 'checkout', 'service.instance.id': 'checkout-7f9c' });
  t.same([s.sampler, s.ratio, s.propagators, s.scheduleDelayMs], ['parentbased_traceidratio', 0.01, ['tracecontext', 'b3multi'], 200]);
  t.match(s.warnings.join('\n'), /OTEL_PROPAGATORS: jaeger not supported/);
  const grpc = resolveTracing(block(), { ...env, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector:4317' });
  t.same([grpc.protocol, grpc.endpoint], ['grpc', 'https://collector:4317'], 'gRPC: the endpoint as given');
  t.equal(resolveTracing(block(), { ...env, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://x:1/custom' }).endpoint, 'http://x:1/custom', 'the signal-specific endpoint as given');
  const cfg = resolveTracing(block({ service_name: 'from-config', sampler: 'always_on', otlp: { endpoint: 'http://c:9/v1/traces', headers: { 'x-team': 'infra' } } }), env);
  t.same([cfg.serviceName, cfg.sampler, cfg.endpoint, cfg.headers['x-team']], ['from-config', 'always_on', 'http://c:9/v1/traces', 'infra'], 'the config wins over the environment');
  const bad = resolveTracing(block(), { OTEL_TRACES_SAMPLER: 'sometimes', OTEL_BSP_MAX_QUEUE_SIZE: '-4', OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' });
  t.same([bad.sampler, bad.maxQueueSize, bad.endpoint], ['parentbased_always_on', 2048, 'http://localhost:4318/v1/traces'], 'bad values ignored');
  t.equal(bad.warnings.length, 3, `each reported: ${bad.warnings.join('; ')}`);
});

const config = (tracing: unknown, listener: Record<string, unknown> = {}, route: Record<string, unknown> = {}) => ({
  workers: 1,
  ...(tracing === undefined ? {} : { tracing }),
  listeners: [{ name: 'main', port: 0, ...listener, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'up' }, ...route }] }] }],
  clusters: [{ name: 'up', endpoints: [{ address: '127.0.0.1', port: 1 }] }],
});

const errors = (raw: unknown): string[] => {
  const r = validateConfig(raw);
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
};

t.test('validation', async (t) => {
  t.same(errors(config({ otlp: { endpoint: 'http://c:4318/v1/traces' } }, { tracing: { random_sampling: 10, custom_tags: [{ tag: 'team', literal: 'x' }] } }, { tracing: { overall_sampling: 50 } })), []);
  t.same(errors(config(undefined, { tracing: { random_sampling: 10 } })), ['listeners[0].tracing: needs the root "tracing" block (where spans are exported)']);
  t.same(errors(config(undefined, {}, { tracing: { random_sampling: 10 } })), ['listeners[0].virtual_hosts[0].routes[0].tracing: needs the root "tracing" block (where spans are exported)']);
  t.same(errors(config(undefined, { tracing: { enabled: false } })), [], 'turning it off needs no root block');
  t.same(errors(config({ otlp: { endpoint: 'collector:4317' } })), ['tracing.otlp.endpoint: "collector:4317": the scheme must be http or https']);
  t.same(errors(config({ otlp: { endpoint: 'http://c:1', cluster: 'up' } })), ['tracing.otlp: must set at most one of "endpoint" and "cluster"']);
  t.same(errors(config({ otlp: { cluster: 'nope' } })), ['tracing.otlp.cluster: unknown cluster "nope"']);
  t.same(errors(config({ otlp: { protocol: 'thrift' } })), ['tracing.otlp.protocol: must be one of grpc, http/protobuf, http/json']);
  t.same(errors(config({}, { tracing: { custom_tags: [{ tag: 'a' }, { tag: 'b', literal: 'x', environment: 'Y' }] } })), [
    'listeners[0].tracing.custom_tags[0]: must set exactly one of "literal", "request_header" or "environment"',
    'listeners[0].tracing.custom_tags[1]: must set exactly one of "literal", "request_header" or "environment", not "literal" and "environment"',
  ]);
  t.same(errors(config({}, { tracing: { random_sampling: 101 } })), ['listeners[0].tracing.random_sampling: must be a number 0..100 (percent)']);
  t.same(errors({ workers: 1, tracing: {}, listeners: [{ name: 't', port: 0, tcp_proxy: { cluster: 'up' }, tracing: {} }], clusters: [{ name: 'up', endpoints: [{ address: '127.0.0.1', port: 1 }] }] }),
    ['listeners[0].tracing: is an HTTP setting: a TCP listener ("tcp_proxy" / "filter_chains") forwards bytes']);
});
