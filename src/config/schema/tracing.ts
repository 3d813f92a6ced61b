// Config schema: distributed tracing. The root `tracing` block says where spans go (an
// OTLP collector) and how the trace is sampled and propagated; a listener's and a
// route's `tracing` blocks tune sampling per traffic (Envoy's HttpConnectionManager
// `tracing` and route `tracing`). Defaults the block leaves out come from OpenTelemetry's
// standard environment variables (src/tracing/settings.ts), then OpenTelemetry's defaults.

import * as v from 'valibot';
import { bool, field, int, list, ms, num, obj, oneOf, str, TOKEN_RE } from './fields.js';

import { OTLP_PROTOCOLS, PROPAGATORS, SAMPLERS } from './tracing-names.js';

function endpointProblem(s: string): string | undefined {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return `"${s}" is not a URL (e.g. http://otel-collector:4318/v1/traces or http://otel-collector:4317)`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `"${s}": the scheme must be http or https`;
  if (u.username !== '' || u.password !== '') return `"${s}": put credentials in "headers", not in the URL`;
  return undefined;
}

const stringMap = (doc: string, check: (k: string, value: string) => string | undefined, m: { default?: string; type?: string } = {}) =>
  field(v.pipe(v.record(v.string(), v.string('must be a string')), v.readonly(), v.metadata({
    check: (r: Readonly<Record<string, string>>) => {
      for (const [k, value] of Object.entries(r)) {
        const p = check(k, value);
        if (p !== undefined) return p;
      }
      return undefined;
    },
  })), doc, { type: m.type ?? 'map of strings', default: m.default });

export const OtlpExporterSchema = obj({
  endpoint: v.optional(str('Where spans are sent. OTLP/HTTP: the full URL posted to (OpenTelemetry\'s `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; the collector\'s path is `/v1/traces`). OTLP/gRPC: the collector\'s `http://host:port` (`https://` for TLS).',
    { type: 'URL', conditional: true, default: '`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` (+ `/v1/traces` over HTTP), else `http://localhost:4318/v1/traces` (HTTP) or `http://localhost:4317` (gRPC)', check: endpointProblem })),
  cluster: v.optional(str('Send spans to this cluster\'s first endpoint instead of `endpoint` (plain HTTP/2 for gRPC, plain HTTP/1.1 otherwise): how an xDS config names its collector.', { type: 'cluster name', default: 'unset' })),
  protocol: v.optional(oneOf(OTLP_PROTOCOLS, 'OTLP over gRPC, or over HTTP with protobuf or JSON bodies.', { conditional: true, default: '`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`, else `http/protobuf` (OpenTelemetry\'s default)' })),
  headers: v.optional(stringMap('Sent with every export request (gRPC metadata or HTTP headers), e.g. an API key. Merged over `OTEL_EXPORTER_OTLP_HEADERS` / `OTEL_EXPORTER_OTLP_TRACES_HEADERS`.',
    (k, value) => (!TOKEN_RE.test(k) ? `"${k}" is not a valid header name` : /[\r\n\0]/.test(value) ? `header "${k}": the value must not contain CR, LF or NUL` : undefined), { default: '`{}`' })),
  timeout_ms: v.optional(ms(1, 'An export request not answered within this is abandoned and retried.', { conditional: true, default: '`OTEL_EXPORTER_OTLP_TIMEOUT`, else 10000', scope: 'ms, per export request' })),
  max_queue_size: v.optional(int(1, 1_000_000, 'Finished spans a worker holds for the next batch at most, and spans the exporter holds waiting (or being retried) at most; beyond, spans are dropped and counted in `remora_trace_spans_dropped_total` — a collector that is down or slow never grows memory.',
    { conditional: true, default: '`OTEL_BSP_MAX_QUEUE_SIZE`, else 2048', scope: 'spans, per worker and in the exporter' })),
  max_export_batch_size: v.optional(int(1, 100_000, 'Spans per batch and per export request at most.', { conditional: true, default: '`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, else 512', scope: 'spans' })),
  schedule_delay_ms: v.optional(ms(1, 'A worker sends its finished spans at least this often (sooner when a batch is full).', { conditional: true, default: '`OTEL_BSP_SCHEDULE_DELAY`, else 5000', scope: 'ms, per worker' })),
}, 'Where and how spans are exported (OTLP). Export runs on the main thread, batched, one request at a time, retried with backoff on the errors OTLP calls retryable; never on a request\'s path.');

export const TracingSchema = obj({
  service_name: v.optional(str('The `service.name` resource attribute of every span.', { conditional: true, default: '`OTEL_SERVICE_NAME`, else `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else `remora`', check: (s: string) => (s === '' ? 'must not be empty' : undefined) })),
  resource_attributes: v.optional(stringMap('More resource attributes, merged over `OTEL_RESOURCE_ATTRIBUTES` and the pod\'s Downward API variables (`POD_NAME`, `POD_NAMESPACE`, `NODE_NAME` → `k8s.pod.name`, `k8s.namespace.name`, `k8s.node.name`).',
    (k) => (k === '' ? 'attribute names must not be empty' : undefined), { default: '`{}`' })),
  sampler: v.optional(oneOf(SAMPLERS, 'OpenTelemetry\'s samplers. `parentbased_*`: a request that carries a sampled (or unsampled) trace context keeps that decision; the rest decide by themselves. `traceidratio`: a share of traces (`sampler_arg`), decided from the trace id, so every hop with the same ratio agrees.',
    { conditional: true, default: '`OTEL_TRACES_SAMPLER`, else `parentbased_always_on`' })),
  sampler_arg: v.optional(num(0, 1, 'The share for the `*traceidratio` samplers. A listener\'s or route\'s `random_sampling` overrides it.', { conditional: true, default: '`OTEL_TRACES_SAMPLER_ARG`, else 1' })),
  propagators: v.optional(list(oneOf(PROPAGATORS, 'A trace-context format.'), 'Formats read from requests (the first found wins, in this order) and written to upstream requests. `tracecontext`: W3C `traceparent` / `tracestate`; `b3`: Zipkin\'s single `b3` header; `b3multi`: `x-b3-traceid`, `x-b3-spanid`, `x-b3-sampled`…. A request that came with B3 headers gets them written back upstream whatever this says, so a B3 mesh keeps working.',
    { type: 'list of `tracecontext`, `b3`, `b3multi`', conditional: true, default: '`OTEL_PROPAGATORS` (its supported entries), else `[tracecontext]`', nonEmpty: 'must list at least one propagator' })),
  otlp: v.optional(field(OtlpExporterSchema, 'The OTLP exporter.', { default: 'all defaults' }), {}),
}, 'Distributed tracing: a server span per request and a client span per upstream attempt, exported over OTLP to Jaeger, Tempo or any OpenTelemetry collector ([observability.md](observability.md#tracing)). With this block every HTTP listener traces, unless its `tracing.enabled` is `false`.');

const percent = (doc: string, dflt: string) => v.optional(num(0, 100, doc, { unit: 'percent', conditional: true, default: dflt }));

export const CustomTagSchema = obj({
  tag: str('The attribute name on the server span.', { check: (s: string) => (s === '' ? 'must not be empty' : undefined) }),
  literal: v.optional(str('This value, always.', { default: '—' })),
  request_header: v.optional(str('The value of this request header (lower-cased); the tag is left out when the request has none and no `default_value` is set.', { type: 'header name', default: '—', normalize: (s: string) => s.toLowerCase(), check: (s: string) => (TOKEN_RE.test(s) ? undefined : `"${s}" is not a valid header name`) })),
  environment: v.optional(str('The value of this environment variable of the Remora process, read when the config is applied.', { type: 'variable name', default: '—' })),
  default_value: v.optional(str('Used when the header or variable is missing.', { default: 'unset (the tag is left out)' })),
}, 'A custom attribute on server spans (Envoy\'s `custom_tags`): exactly one of `literal`, `request_header`, `environment`.');

export const ListenerTracingSchema = obj({
  enabled: v.optional(bool('`false`: this listener neither traces nor touches trace headers.'), true),
  random_sampling: percent('Share of requests without a sampling decision (no parent context, or a sampler that ignores it) that are traced (Envoy\'s field).', 'the root `sampler_arg` × 100 for a `*traceidratio` sampler; 100 for `*always_on`; 0 for `*always_off`'),
  client_sampling: percent('Share of requests with an `x-client-trace-id` header that are traced whatever the other settings say (Envoy\'s field).', '100'),
  overall_sampling: percent('An upper bound applied last: only this share of the requests otherwise traced are (Envoy\'s field).', '100'),
  custom_tags: v.optional(list(CustomTagSchema, 'Attributes added to every server span of this listener.', { scope: 'server spans' }), []),
  max_path_tag_length: v.optional(int(1, 65_536, '`url.path` and `url.query` are cut to this many characters (Envoy\'s default).', { scope: 'characters' }), 256),
}, 'Tracing of one HTTP listener (Envoy\'s HttpConnectionManager `tracing`). Needs the root `tracing` block.');

export const RouteTracingSchema = obj({
  random_sampling: percent('Overrides the listener\'s for requests this route takes.', 'the listener\'s'),
  client_sampling: percent('Overrides the listener\'s.', 'the listener\'s'),
  overall_sampling: percent('Overrides the listener\'s.', 'the listener\'s'),
}, 'Sampling of the requests one route takes (Envoy\'s route `tracing`).');

