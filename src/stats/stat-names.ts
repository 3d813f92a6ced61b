// Every stat Remora keeps, declared once per component (Envoy's stat macros). The
// layout (src/shared/stats-layout.ts) turns these lists into offsets; workers write by
// index, the main thread names them for Prometheus (src/main/metrics.ts).

import { ResponseFlag } from '../core/flags.js';

/** Response flags counted per listener (all but "none"). */
export const FLAGS: readonly string[] = Object.values(ResponseFlag).filter((f) => f !== ResponseFlag.None);

export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** Per-listener counters, in slab order. The status-class block comes first. */
export const ListenerCounter = {
  Rq1xx: 0,
  Rq2xx: 1,
  Rq3xx: 2,
  Rq4xx: 3,
  Rq5xx: 4,
  BytesIn: 5,
  BytesOut: 6,
  /** Requests a shadow-mode rate limit would have rejected (admitted anyway). */
  RateLimitShadow: 7,
  /** TLS handshakes refused: the client sent no certificate (Envoy ssl.fail_verify_no_cert). */
  TlsNoCert: 8,
  /** ... its certificate did not verify: unknown CA, expired (ssl.fail_verify_error). */
  TlsVerifyFailed: 9,
  /** ... any other handshake failure: protocol version, ciphers, garbage (ssl.connection_error). */
  TlsOtherError: 10,
  /** Connections accepted (downstream_cx_total). */
  CxTotal: 11,
  /** Connections closed at once because max_connections was reached (downstream_cx_overflow). */
  CxOverflow: 12,
  /** Requests the codec or the head checks refused (malformed framing, bad Host, too many
   *  headers...); each closed its connection (downstream_rq_protocol_error). */
  RqProtocolError: 13,
  /** First of FLAGS.length flag counters. */
  FlagBase: 14,
} as const;
export const LISTENER_COUNTERS = ListenerCounter.FlagBase + FLAGS.length;

export const ListenerGauge = {
  RqActive: 0,
  /** Open downstream connections (also what max_connections is checked against). */
  CxActive: 1,
} as const;
export const LISTENER_GAUGES = 2;

/** Per-cluster counters, in slab order. */
export const ClusterCounter = {
  Rq1xx: 0,
  Rq2xx: 1,
  Rq3xx: 2,
  Rq4xx: 3,
  Rq5xx: 4,
  CxTotal: 5,
  CxConnectFail: 6,
  RqTimeout: 7,
  Resets: 8,
  ProtocolErrors: 9,
  KeepAliveRetries: 10,
  CxOverflow: 11,
  RqPendingOverflow: 12,
  RqOverflow: 13,
  RqRetry: 14,
  RqRetrySuccess: 15,
  RqRetryOverflow: 16,
  RqRetryLimitExceeded: 17,
  RqPerTryTimeout: 18,
  OutlierNotified: 19,
} as const;
export const CLUSTER_COUNTERS = 20;

/** Circuit-breaker and retry counters per cluster: [counter, /stats name (Envoy's),
 *  Prometheus name, help]. Exposition loops over this table. */
export const RESILIENCE_COUNTERS: readonly (readonly [number, string, string, string])[] = [
  [ClusterCounter.CxOverflow, 'upstream_cx_overflow', 'remora_upstream_connection_overflows_total',
    'Times max_connections held a request back (it waited for a connection instead).'],
  [ClusterCounter.RqPendingOverflow, 'upstream_rq_pending_overflow', 'remora_upstream_pending_overflows_total',
    'Requests refused (503 UO) because max_pending_requests was reached.'],
  [ClusterCounter.RqOverflow, 'upstream_rq_overflow', 'remora_upstream_request_overflows_total',
    'Requests refused (503 UO) because max_requests was reached.'],
  [ClusterCounter.RqRetry, 'upstream_rq_retry', 'remora_upstream_retries_total', 'Retries made.'],
  [ClusterCounter.RqRetrySuccess, 'upstream_rq_retry_success', 'remora_upstream_retry_successes_total',
    'Retries whose attempt succeeded.'],
  [ClusterCounter.RqRetryOverflow, 'upstream_rq_retry_overflow', 'remora_upstream_retry_overflows_total',
    'Retries not made because max_retries or the retry budget was reached (flag UO, as Envoy).'],
  [ClusterCounter.RqRetryLimitExceeded, 'upstream_rq_retry_limit_exceeded', 'remora_upstream_retry_limit_exceeded_total',
    'Requests that failed after num_retries retries (flag URX).'],
  [ClusterCounter.RqPerTryTimeout, 'upstream_rq_per_try_timeout', 'remora_upstream_per_try_timeouts_total',
    'Attempts that hit the per-try timeout.'],
  [ClusterCounter.OutlierNotified, 'outlier_detection.failure_threshold_reached', 'remora_outlier_threshold_reached_total',
    'Times an endpoint reached a consecutive-failure threshold (the main thread then decides on ejection).'],
];

export const ClusterGauge = {
  CxActive: 0,
  RqPending: 1,
} as const;
export const CLUSTER_GAUGES = 2;

/** Histograms per listener and per cluster. */
export const ListenerHistogram = { Downstream: 0 } as const;
export const LISTENER_HISTOGRAMS = 1;
export const ClusterHistogram = { Upstream: 0, Overhead: 1 } as const;
export const CLUSTER_HISTOGRAMS = 2;

/** Prometheus bucket upper bounds in microseconds (50 µs … 10 s). */
export const PROMETHEUS_BUCKETS_US: readonly number[] = [
  50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
  5_000_000, 10_000_000,
];

/** Finer bounds used for recording (so /stats percentiles resolve better than the
 *  Prometheus buckets): every Prometheus interval split into 4 geometric steps, plus
 *  10 and 25 µs below. Every Prometheus bound is one of these. */
export const RECORD_BUCKETS_US: readonly number[] = (() => {
  const out = [10, 25];
  let lower = 25;
  for (const upper of PROMETHEUS_BUCKETS_US) {
    const ratio = Math.pow(upper / lower, 1 / 4);
    for (let i = 1; i < 4; i++) out.push(Math.round(lower * Math.pow(ratio, i)));
    out.push(upper);
    lower = upper;
  }
  return out;
})();
