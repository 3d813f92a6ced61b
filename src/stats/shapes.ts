// The stats layout Remora uses, built from the stat tables (src/stats/tables/): block
// shapes (how many rows of each kind) and the offsets of gauges and histograms inside
// a block. Shared by the worker's recorder and
// the main thread's reader.

import { StatsLayout, type BlockShape } from '../shared/stats-layout.js';
import {
  CLUSTER_COUNTERS,
  CLUSTER_GAUGES,
  CLUSTER_HISTOGRAMS,
  LISTENER_COUNTERS,
  LISTENER_GAUGES,
  LISTENER_HISTOGRAMS,
  RECORD_BUCKETS_US,
} from './stat-names.js';
import { WORKER_CELLS } from './tables/worker.js';

/** Recording buckets + overflow + sum. */
export const HISTOGRAM_CELLS = RECORD_BUCKETS_US.length + 2;
/** Offset of the overflow bucket and of the µs sum inside a histogram. */
export const OVERFLOW_CELL = RECORD_BUCKETS_US.length;
export const SUM_CELL = RECORD_BUCKETS_US.length + 1;

export const LISTENER_SHAPE: BlockShape = {
  counters: LISTENER_COUNTERS,
  gauges: LISTENER_GAUGES,
  histograms: LISTENER_HISTOGRAMS,
  histogramCells: HISTOGRAM_CELLS,
};

export const CLUSTER_SHAPE: BlockShape = {
  counters: CLUSTER_COUNTERS,
  gauges: CLUSTER_GAUGES,
  histograms: CLUSTER_HISTOGRAMS,
  histogramCells: HISTOGRAM_CELLS,
};

export const LAYOUT = new StatsLayout(LISTENER_SHAPE, CLUSTER_SHAPE, WORKER_CELLS);

export function gaugeOffset(shape: BlockShape, i: number): number {
  return shape.counters + i;
}

export function histogramOffset(shape: BlockShape, i: number): number {
  return shape.counters + shape.gauges + i * shape.histogramCells;
}

/** Index of the recording bucket for `us` (OVERFLOW_CELL above the last bound). */
export function bucketIndex(us: number): number {
  let lo = 0;
  let hi = RECORD_BUCKETS_US.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (us <= RECORD_BUCKETS_US[mid]) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
