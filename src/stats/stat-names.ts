// The handles workers count with, resolved from the stat tables (src/stats/tables/):
// `ListenerCounter.CxTotal` is the CxTotal row's offset among the listener block's
// counters. Plain objects built once at load, so a handle costs a property read.
// Also the histogram bucket bounds. The layout (src/stats/shapes.ts) sizes blocks from
// the same tables; the main thread names stats from them (src/main/admin-stats.ts,
// src/main/metrics.ts).

import { CLUSTER_ROWS } from './tables/cluster.js';
import { FLAGS, LISTENER_ROWS } from './tables/listener.js';
import { handles, rowsOf } from './tables/table.js';

export { FLAGS } from './tables/listener.js';
export { STATUS_CLASSES } from './tables/table.js';

/** Per-listener counters; flag counters are FlagBase + index into FLAGS. */
export const ListenerCounter = (() => {
  const h = handles(LISTENER_ROWS, 'counter');
  return { ...h, FlagBase: h[`Flag${FLAGS[0]}`] };
})();
export const LISTENER_COUNTERS = rowsOf(LISTENER_ROWS, 'counter').length;
export const ListenerGauge = handles(LISTENER_ROWS, 'gauge');
export const LISTENER_GAUGES = rowsOf(LISTENER_ROWS, 'gauge').length;
export const ListenerHistogram = handles(LISTENER_ROWS, 'histogram');
export const LISTENER_HISTOGRAMS = rowsOf(LISTENER_ROWS, 'histogram').length;

/** Per-cluster counters, gauges and histograms. */
export const ClusterCounter = handles(CLUSTER_ROWS, 'counter');
export const CLUSTER_COUNTERS = rowsOf(CLUSTER_ROWS, 'counter').length;
export const ClusterGauge = handles(CLUSTER_ROWS, 'gauge');
export const CLUSTER_GAUGES = rowsOf(CLUSTER_ROWS, 'gauge').length;
export const ClusterHistogram = handles(CLUSTER_ROWS, 'histogram');
export const CLUSTER_HISTOGRAMS = rowsOf(CLUSTER_ROWS, 'histogram').length;

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
