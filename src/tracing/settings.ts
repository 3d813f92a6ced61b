// The root `tracing` block with its defaults filled in: what the config says, else
// OpenTelemetry's standard environment variables (OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_*, OTEL_TRACES_SAMPLER(_ARG),
// OTEL_PROPAGATORS, OTEL_BSP_*), else OpenTelemetry's defaults. Pure: the environment
// is passed in. The main thread (exporter) and the workers (sampling, batching) resolve
// the same block the same way.

import type { OtlpProtocol, PropagatorName, SamplerName, TracingConfig } from '../config/types.js';
import { OTLP_PROTOCOLS, PROPAGATORS, SAMPLERS } from '../config/schema/tracing-names.js';

export interface TracingSettings {
  readonly serviceName: string;
  /** Resource attributes, service.name included. */
  readonly resource: Readonly<Record<string, string>>;
  readonly sampler: SamplerName;
  /** The `*traceidratio` share, 0..1. */
  readonly ratio: number;
  readonly propagators: readonly PropagatorName[];
  readonly protocol: OtlpProtocol;
  /** The URL spans are sent to; null when `cluster` says where. */
  readonly endpoint: string | null;
  readonly cluster: string | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  readonly scheduleDelayMs: number;
  /** Environment values that were not usable (logged by the main thread). */
  readonly warnings: readonly string[];
}

type Env = Readonly<Record<string, string | undefined>>;

/** `k=v,k2=v2` (values percent-decoded), as OTEL_RESOURCE_ATTRIBUTES and
 *  OTEL_EXPORTER_OTLP_HEADERS write them. */
export function parseKeyValues(s: string, what: string, warnings: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of s.split(',')) {
    if (item.trim() === '') continue;
    const eq = item.indexOf('=');
    const key = eq > 0 ? item.slice(0, eq).trim() : '';
    if (key === '') {
      warnings.push(`${what}: "${item}" is not key=value; ignored`);
      continue;
    }
    try {
      out[key] = decodeURIComponent(item.slice(eq + 1).trim());
    } catch {
      warnings.push(`${what}: the value of "${key}" is not percent-encoded correctly; ignored`);
    }
  }
  return out;
}

function envInt(env: Env, name: string, min: number, warnings: string[]): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (Number.isInteger(n) && n >= min) return n;
  warnings.push(`${name}="${raw}" is not an integer ≥ ${min}; ignored`);
  return undefined;
}

function envChoice<T extends string>(env: Env, name: string, choices: readonly T[], warnings: string[]): T | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return undefined;
  if ((choices as readonly string[]).includes(raw)) return raw as T;
  warnings.push(`${name}="${raw}" is not one of ${choices.join(', ')}; ignored`);
  return undefined;
}

/** Joins a base endpoint and the OTLP/HTTP traces path, as OTEL_EXPORTER_OTLP_ENDPOINT asks. */
function withTracesPath(base: string): string {
  return base.endsWith('/') ? `${base}v1/traces` : `${base}/v1/traces`;
}

export function resolveTracing(t: TracingConfig, env: Env): TracingSettings {
  const warnings: string[] = [];
  const o = t.otlp;
  const protocol = o.protocol ?? envChoice(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', OTLP_PROTOCOLS, warnings)
    ?? envChoice(env, 'OTEL_EXPORTER_OTLP_PROTOCOL', OTLP_PROTOCOLS, warnings) ?? 'http/protobuf';
  let endpoint: string | null = null;
  if (o.cluster === undefined) {
    const url = (s: string | undefined, name: string): string | undefined => {
      if (s === undefined || s.trim() === '') return undefined;
      try {
        const u = new URL(s.trim());
        if (u.protocol === 'http:' || u.protocol === 'https:') return s.trim();
      } catch {
        // reported below
      }
      warnings.push(`${name}="${s}" is not an http(s) URL; ignored`);
      return undefined;
    };
    const grpc = protocol === 'grpc';
    const signal = url(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
    const base = url(env.OTEL_EXPORTER_OTLP_ENDPOINT, 'OTEL_EXPORTER_OTLP_ENDPOINT');
    endpoint = o.endpoint ?? signal ?? (base !== undefined ? (grpc ? base : withTracesPath(base)) : grpc ? 'http://localhost:4317' : 'http://localhost:4318/v1/traces');
  }
  const headers = {
    ...parseKeyValues(env.OTEL_EXPORTER_OTLP_HEADERS ?? '', 'OTEL_EXPORTER_OTLP_HEADERS', warnings),
    ...parseKeyValues(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS ?? '', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS', warnings),
    ...(o.headers ?? {}),
  };
  // Resource: OTEL_RESOURCE_ATTRIBUTES, then the Downward API variables a pod spec sets,
  // then the config; service.name from the config, else OTEL_SERVICE_NAME, else the
  // attributes, else "remora".
  const resource: Record<string, string> = parseKeyValues(env.OTEL_RESOURCE_ATTRIBUTES ?? '', 'OTEL_RESOURCE_ATTRIBUTES', warnings);
  const downward: [string, string][] = [['POD_NAME', 'k8s.pod.name'], ['POD_NAMESPACE', 'k8s.namespace.name'], ['NODE_NAME', 'k8s.node.name'], ['POD_IP', 'k8s.pod.ip']];
  for (const [variable, attr] of downward) {
    const value = env[variable];
    if (value !== undefined && value !== '' && resource[attr] === undefined) resource[attr] = value;
  }
  Object.assign(resource, t.resource_attributes ?? {});
  const serviceName = t.service_name ?? (env.OTEL_SERVICE_NAME?.trim() || undefined) ?? resource['service.name'] ?? 'remora';
  resource['service.name'] = serviceName;
  if (resource['service.instance.id'] === undefined && resource['k8s.pod.name'] !== undefined) resource['service.instance.id'] = resource['k8s.pod.name'];

  const sampler = t.sampler ?? envChoice(env, 'OTEL_TRACES_SAMPLER', SAMPLERS, warnings) ?? 'parentbased_always_on';
  let ratio = t.sampler_arg;
  if (ratio === undefined && env.OTEL_TRACES_SAMPLER_ARG !== undefined && env.OTEL_TRACES_SAMPLER_ARG.trim() !== '') {
    const n = Number(env.OTEL_TRACES_SAMPLER_ARG);
    if (n >= 0 && n <= 1) ratio = n;
    else warnings.push(`OTEL_TRACES_SAMPLER_ARG="${env.OTEL_TRACES_SAMPLER_ARG}" is not a number 0..1; ignored`);
  }
  let propagators = t.propagators;
  if (propagators === undefined && env.OTEL_PROPAGATORS !== undefined && env.OTEL_PROPAGATORS.trim() !== '') {
    const named = env.OTEL_PROPAGATORS.split(',').map((s) => s.trim()).filter((s) => s !== '');
    const known = named.filter((s): s is PropagatorName => (PROPAGATORS as readonly string[]).includes(s));
    const other = named.filter((s) => !known.includes(s as PropagatorName) && s !== 'baggage' && s !== 'none');
    if (other.length > 0) warnings.push(`OTEL_PROPAGATORS: ${other.join(', ')} not supported; ignored`);
    if (known.length > 0) propagators = known;
  }
  return {
    serviceName,
    resource,
    sampler,
    ratio: ratio ?? 1,
    propagators: propagators ?? ['tracecontext'],
    protocol,
    endpoint,
    cluster: o.cluster ?? null,
    headers,
    timeoutMs: o.timeout_ms ?? envInt(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 1, warnings) ?? envInt(env, 'OTEL_EXPORTER_OTLP_TIMEOUT', 1, warnings) ?? 10_000,
    maxQueueSize: o.max_queue_size ?? envInt(env, 'OTEL_BSP_MAX_QUEUE_SIZE', 1, warnings) ?? 2048,
    maxExportBatchSize: o.max_export_batch_size ?? envInt(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 1, warnings) ?? 512,
    scheduleDelayMs: o.schedule_delay_ms ?? envInt(env, 'OTEL_BSP_SCHEDULE_DELAY', 1, warnings) ?? 5000,
    warnings,
  };
}
