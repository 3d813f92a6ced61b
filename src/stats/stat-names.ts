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
  /** First of FLAGS.length flag counters. */
  FlagBase: 7,
} as const;
export const LISTENER_COUNTERS = ListenerCounter.FlagBase + FLAGS.length;

export const ListenerGauge = {
  RqActive: 0,
} as const;
export const LISTENER_GAUGES = 1;

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
} as const;
export const CLUSTER_COUNTERS = 11;

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
