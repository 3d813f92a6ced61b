// Main-thread side of the stats: sums every worker's slab. Counter and histogram cells
// are 32-bit and wrap, so the reader folds each cell's delta since the last read into a
// 64-bit total (fold() runs at least once a second and on every scrape). Gauges are
// read live and summed. Only slots in use are read, so a fold or a scrape costs in
// proportion to the config, not to the slab's capacity (MAX_CLUSTERS); the per-worker
// views and a counter reset go no further than the highest slot ever used, so the
// pages of slots never used are never touched.

import { MAX_CLUSTERS, MAX_LISTENERS } from '../shared/limits.js';
import type { BlockShape } from '../shared/stats-layout.js';
import { CLUSTER_SHAPE, HISTOGRAM_CELLS, LAYOUT, LISTENER_SHAPE, OVERFLOW_CELL, SUM_CELL, gaugeOffset, histogramOffset } from './shapes.js';
import { RECORD_BUCKETS_US } from './stat-names.js';

export interface HistogramSnapshot {
  /** Count per recording bucket (RECORD_BUCKETS_US), then the overflow bucket. */
  readonly buckets: readonly number[];
  readonly count: number;
  readonly sumUs: number;
}

export class StatsReader {
  private readonly views: Uint32Array[];
  private readonly last: Uint32Array[];
  /** 64-bit (float) totals per cell, summed over workers; gauges are not kept here. */
  private readonly totals: Float64Array;
  private listenerSlots: readonly number[] = [];
  private clusterSlots: readonly number[] = [];
  /** One past the highest listener and cluster slot ever in use: slots are handed out
   *  lowest first (SlotRegistry), so every slot with counts is below these. Until the
   *  first setSlots nothing says which slots were used: all of them count. */
  private listenerEnd = MAX_LISTENERS;
  private clusterEnd = MAX_CLUSTERS;
  private slotsKnown = false;

  constructor(slabs: readonly SharedArrayBuffer[]) {
    this.views = slabs.map((s) => new Uint32Array(s));
    this.last = slabs.map(() => new Uint32Array(LAYOUT.cells));
    this.totals = new Float64Array(LAYOUT.cells);
  }

  /** Which slots to read (those of the current config). */
  setSlots(listeners: readonly number[], clusters: readonly number[]): void {
    this.listenerSlots = listeners;
    this.clusterSlots = clusters;
    if (!this.slotsKnown) {
      this.slotsKnown = true;
      this.listenerEnd = 0;
      this.clusterEnd = 0;
    }
    for (const slot of listeners) if (slot >= this.listenerEnd) this.listenerEnd = slot + 1;
    for (const slot of clusters) if (slot >= this.clusterEnd) this.clusterEnd = slot + 1;
  }

  /** One past the highest listener slot ever in use (every slot below may hold counts). */
  get listenerSlotsUsed(): number {
    return this.listenerEnd;
  }

  /** One past the highest cluster slot ever in use (every slot below may hold counts). */
  get clusterSlotsUsed(): number {
    return this.clusterEnd;
  }

  /** Folds every worker's counter and histogram deltas into the totals. */
  fold(): void {
    for (const slot of this.listenerSlots) this.foldBlock(LAYOUT.listenerBase(slot), LISTENER_SHAPE);
    for (const slot of this.clusterSlots) this.foldBlock(LAYOUT.clusterBase(slot), CLUSTER_SHAPE);
  }

  /** Zeroes the totals (POST /reset_counters); gauges are unaffected. */
  reset(): void {
    this.fold();
    // Totals exist only for slots ever used; the rest of the array stays untouched.
    this.totals.fill(0, 0, LAYOUT.listenerBase(this.listenerEnd));
    this.totals.fill(0, LAYOUT.clusterStart, LAYOUT.clusterBase(this.clusterEnd));
  }

  listenerCounter(slot: number, i: number): number {
    return this.totals[LAYOUT.listenerBase(slot) + i];
  }

  clusterCounter(slot: number, i: number): number {
    return this.totals[LAYOUT.clusterBase(slot) + i];
  }

  listenerGauge(slot: number, i: number): number {
    return this.gauge(LAYOUT.listenerBase(slot) + gaugeOffset(LISTENER_SHAPE, i));
  }

  clusterGauge(slot: number, i: number): number {
    return this.gauge(LAYOUT.clusterBase(slot) + gaugeOffset(CLUSTER_SHAPE, i));
  }

  listenerHistogram(slot: number, i: number): HistogramSnapshot {
    return this.histogram(LAYOUT.listenerBase(slot) + histogramOffset(LISTENER_SHAPE, i));
  }

  clusterHistogram(slot: number, i: number): HistogramSnapshot {
    return this.histogram(LAYOUT.clusterBase(slot) + histogramOffset(CLUSTER_SHAPE, i));
  }

  /** A WorkerCell value of worker `w` (slot index). */
  workerCell(w: number, cell: number): number {
    return Atomics.load(this.views[w], LAYOUT.workerStart + cell);
  }

  /** Cell `cell` (absolute, as LAYOUT computes it) of worker `w`'s own slab, as stored:
   *  32 bits, wrapping, not folded. For per-worker views (GET /workers). */
  rawCell(w: number, cell: number): number {
    return Atomics.load(this.views[w], cell);
  }

  get workerCount(): number {
    return this.views.length;
  }

  private gauge(cell: number): number {
    let sum = 0;
    for (const view of this.views) sum += Atomics.load(view, cell) | 0;
    return sum;
  }

  private histogram(start: number): HistogramSnapshot {
    const buckets: number[] = [];
    let count = 0;
    for (let i = 0; i <= OVERFLOW_CELL; i++) {
      const n = this.totals[start + i];
      buckets.push(n);
      count += n;
    }
    return { buckets, count, sumUs: this.totals[start + SUM_CELL] };
  }

  private foldBlock(base: number, shape: BlockShape): void {
    const histStart = shape.counters + shape.gauges; // gauges are read live, not folded
    const end = histStart + shape.histograms * HISTOGRAM_CELLS;
    for (let w = 0; w < this.views.length; w++) {
      this.foldCells(this.views[w], this.last[w], base, base + shape.counters);
      this.foldCells(this.views[w], this.last[w], base + histStart, base + end);
    }
  }

  /** Plain reads, not Atomics.load: an aligned 32-bit typed-array read is tear-free (the
   *  ECMAScript memory model), and a value a moment old is folded by the next fold. With
   *  Atomics.load a fold of 5,000 clusters took ~4 times as long (~20 ms every second). */
  private foldCells(view: Uint32Array, last: Uint32Array, from: number, to: number): void {
    const totals = this.totals;
    for (let cell = from; cell < to; cell++) {
      const now = view[cell];
      const before = last[cell];
      if (now !== before) {
        totals[cell] += (now - before) >>> 0;
        last[cell] = now;
      }
    }
  }
}

/** Percentile (0..100) in µs from a histogram, interpolated inside its bucket. */
export function percentileUs(h: HistogramSnapshot, p: number): number {
  if (h.count === 0) return 0;
  const rank = (p / 100) * h.count;
  let seen = 0;
  for (let i = 0; i < h.buckets.length; i++) {
    const n = h.buckets[i];
    if (n === 0) continue;
    if (seen + n >= rank) {
      const lower = i === 0 ? 0 : RECORD_BUCKETS_US[i - 1];
      const upper = i < RECORD_BUCKETS_US.length ? RECORD_BUCKETS_US[i] : lower * 2;
      return Math.round(lower + ((rank - seen) / n) * (upper - lower));
    }
    seen += n;
  }
  return RECORD_BUCKETS_US[RECORD_BUCKETS_US.length - 1];
}
