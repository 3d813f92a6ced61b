// Remora configs for the benchmarks, and reading a running Remora's /metrics: one place
// for the "feature on / feature off" variants that bench/features.ts, bench/resilience.ts
// and the suite's `features` scenario (bench/suite.ts) price. Pure apart from the
// /metrics scrape, so the configs are unit-tested.

import { httpGet } from './harness.js';

/** Never refuses: the config validator's maximum, refilled in full every second. */
export const HUGE_BUCKET = { max_tokens: 1_000_000_000, fill_interval_ms: 1000 } as const;

/** What a benchmark Remora records and enforces beyond plain proxying. Circuit breakers
 *  are not listed: they are always on in Remora (every request takes and releases a
 *  `max_requests` slot), so every variant pays for them. */
export interface Features {
  /** Stats recording and /metrics (`stats.enabled`; Remora's default is on). */
  readonly stats: boolean;
  /** Access log to this file (every request logged), or null for none. */
  readonly accessLog: string | null;
  /** A listener rate limit (one bucket for all requests) and a route rate limit keyed by
   *  client IP (one hot key from 127.0.0.1), both HUGE_BUCKET: nothing is refused. */
  readonly rateLimit: boolean;
  /** `outlier_detection: {}` on the cluster: every response counted per endpoint. */
  readonly outlier: boolean;
  /** A retry policy (5xx, reset, connect-failure; 2 retries) that never fires. */
  readonly retry?: boolean;
  readonly traceparent?: boolean;
  /** Tracing with this share of requests sampled (percent), spans sent over OTLP/HTTP
   *  protobuf to `endpoint` (a sink that accepts and drops them). */
  readonly tracing?: { readonly percent: number; readonly endpoint: string };
  /** Serve the listener over TLS (Remora's Node https front end instead of uWS); with
   *  `ca_file`, client certificates are required (mTLS). Absolute paths. */
  readonly tls?: { readonly cert_file: string; readonly key_file: string; readonly ca_file?: string };
  /** The listener's HTTP/1 codec; unset = Remora's default (`strict`). */
  readonly codec?: 'strict' | 'uws';
}

export const ALL_OFF: Features = { stats: false, accessLog: null, rateLimit: false, outlier: false };

/** Remora in front of 127.0.0.1:`upstreamPort`: listener "bench" on a free port, one
 *  route "/" to cluster "upstream", admin on a free port, `workers` workers. */
export function benchRemoraConfig(f: Features, upstreamPort: number, workers = 1): object {
  const route = {
    name: 'all',
    match: { prefix: '/' },
    route: {
      cluster: 'upstream',
      ...(f.retry ? { retry_policy: { retry_on: ['5xx', 'reset', 'connect-failure'], num_retries: 2 } } : {}),
    },
    ...(f.rateLimit ? { rate_limits: [{ name: 'per-ip', ...HUGE_BUCKET, key: { client_ip: true } }] } : {}),
  };
  const listener = {
    name: 'bench',
    address: '127.0.0.1',
    port: 0,
    ...(f.tls !== undefined ? { tls: f.tls } : {}),
    ...(f.codec !== undefined ? { codec: f.codec } : {}),
    ...(f.accessLog !== null ? { access_log: { path: f.accessLog } } : {}),
    ...(f.traceparent ? { generate_traceparent: true } : {}),
    ...(f.rateLimit ? { rate_limits: [{ name: 'all', ...HUGE_BUCKET }] } : {}),
    virtual_hosts: [{ name: 'all', domains: ['*'], routes: [route] }],
  };
  const cluster = {
    name: 'upstream',
    endpoints: [{ address: '127.0.0.1', port: upstreamPort }],
    ...(f.outlier ? { outlier_detection: {} } : {}),
  };
  return {
    workers,
    admin: { address: '127.0.0.1', port: 0 },
    // Stats on is Remora's default: left out rather than spelled, so the default is priced.
    ...(f.stats ? {} : { stats: { enabled: false } }),
    ...(f.tracing !== undefined
      ? { tracing: { sampler: 'parentbased_traceidratio', sampler_arg: f.tracing.percent / 100, otlp: { endpoint: f.tracing.endpoint, protocol: 'http/protobuf' } } }
      : {}),
    listeners: [listener],
    clusters: [cluster],
  };
}

/** Sum of every sample of a metric family in Prometheus text (with or without labels). */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

export interface Sanity {
  readonly requests_in_metrics: number;
  readonly rate_limit_table_entries: number;
  readonly retries: number;
  readonly outlier_threshold_reached: number;
  readonly request_overflows: number;
  readonly spans_exported: number;
  readonly spans_dropped: number;
}

/** Counters from a Remora's /metrics that show each variant did what it says. */
export function sanityOf(metrics: string): Sanity {
  return {
    requests_in_metrics: metricSum(metrics, 'remora_downstream_requests_total'),
    rate_limit_table_entries: metricSum(metrics, 'remora_rate_limit_table_entries'),
    retries: metricSum(metrics, 'remora_upstream_retries_total'),
    outlier_threshold_reached: metricSum(metrics, 'remora_outlier_threshold_reached_total'),
    request_overflows: metricSum(metrics, 'remora_upstream_request_overflows_total'),
    spans_exported: metricSum(metrics, 'remora_trace_spans_exported_total'),
    spans_dropped: metricSum(metrics, 'remora_trace_spans_dropped_total'),
  };
}

export async function scrapeSanity(adminPort: number): Promise<Sanity> {
  return sanityOf((await httpGet(adminPort, '/metrics')).body);
}
