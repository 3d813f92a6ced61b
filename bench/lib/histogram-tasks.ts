// The measured work of bench/histogram-recording.ts. Each task runs alone in its own
// worker thread (bench/lib/histogram-worker.ts), so V8's feedback for its hot loop sees
// one histogram class only, as it would in a Remora worker.
//
// Recording tasks: `records` latencies (µs) into one histogram, timed per round
// ('remora-no-atomics' is a diagnostic: Remora's bucket search, plain increments).
// Merge tasks: `workers` × (1 listener + `clusters` × 2) histograms, `perInterval`
// values recorded into each between rounds (untimed), then the main thread's work
// timed: for Remora's slabs StatsReader.fold() and a snapshot of every histogram; for
// hdr, the workers' encodeIntoCompressedBase64, the main thread's decode + add into
// one aggregate per histogram, and (a lower bound) add without encoding.

import * as hdr from 'hdr-histogram-js';
import { StatsReader } from '../../src/stats/reader.js';
import { StatsRecorder } from '../../src/stats/recorder.js';
import { CLUSTER_SHAPE, HISTOGRAM_CELLS, LAYOUT, LISTENER_SHAPE, SUM_CELL, bucketIndex, histogramOffset } from '../../src/stats/shapes.js';
import { ClusterHistogram, ListenerHistogram } from '../../src/stats/stat-names.js';

export interface TaskParams {
  /** Latencies in µs, shared by every task. */
  readonly values: Uint32Array;
  readonly records: number;
  readonly workers: number;
  readonly clusters: number;
  readonly perInterval: number;
}

/** One round's measurements (ns, ms, bytes: the names carry the unit). */
export type Measures = Record<string, number>;

export interface Task {
  round(): Measures;
  /** Static facts (memory footprint, histograms merged). */
  info(): Measures;
}

type HdrKind = { readonly bitBucketSize: 32 | 'packed'; readonly useWebAssembly: boolean };

const HDR_KINDS: Readonly<Record<string, HdrKind>> = {
  'hdr-js': { bitBucketSize: 32, useWebAssembly: false },
  'hdr-packed': { bitBucketSize: 'packed', useWebAssembly: false },
  'hdr-wasm': { bitBucketSize: 32, useWebAssembly: true },
  'hdr-wasm-packed': { bitBucketSize: 'packed', useWebAssembly: true },
};

export const RECORD_TASKS: readonly string[] = ['remora', 'remora-no-atomics', ...Object.keys(HDR_KINDS)];
export const MERGE_TASKS: readonly string[] = ['merge-remora', 'merge-hdr-js', 'merge-hdr-packed', 'merge-hdr-wasm'];

/** Whether hdr-histogram-js can use WebAssembly here. */
export function wasmAvailable(): boolean {
  try {
    hdr.initWebAssemblySync();
    return true;
  } catch {
    return false;
  }
}

function buildHdr(kind: HdrKind): hdr.Histogram {
  if (kind.useWebAssembly) hdr.initWebAssemblySync();
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
    bitBucketSize: kind.bitBucketSize,
    useWebAssembly: kind.useWebAssembly,
  });
}

function nsSince(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0);
}

class RemoraRecord implements Task {
  private readonly rec = new StatsRecorder(LAYOUT.allocate());
  private readonly histogram = LAYOUT.clusterBase(0) + histogramOffset(CLUSTER_SHAPE, ClusterHistogram.Upstream);

  constructor(private readonly p: TaskParams) {}

  round(): Measures {
    const { values, records } = this.p;
    const rec = this.rec;
    const h = this.histogram;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < records; i++) rec.observe(h, values[i]);
    const ns = nsSince(t0);
    let count = 0;
    for (let i = 0; i < HISTOGRAM_CELLS - 1; i++) count += rec.cells[h + i];
    rec.cells.fill(0, h, h + HISTOGRAM_CELLS);
    return { ns_per_record: ns / records, recorded: count };
  }

  info(): Measures {
    return { histogram_bytes: HISTOGRAM_CELLS * 4, slab_bytes: LAYOUT.cells * 4 };
  }
}

/** Diagnostic: the same bucket search with plain (non-atomic) increments, to split
 *  Remora's cost between the search and the two Atomics.add. */
class RemoraNoAtomics implements Task {
  private readonly cells = new Uint32Array(LAYOUT.allocate());
  private readonly histogram = LAYOUT.clusterBase(0) + histogramOffset(CLUSTER_SHAPE, ClusterHistogram.Upstream);

  constructor(private readonly p: TaskParams) {}

  round(): Measures {
    const { values, records } = this.p;
    const cells = this.cells;
    const h = this.histogram;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < records; i++) {
      const us = values[i];
      cells[h + bucketIndex(us)]++;
      cells[h + SUM_CELL] += us;
    }
    const ns = nsSince(t0);
    let count = 0;
    for (let i = 0; i < HISTOGRAM_CELLS - 1; i++) count += cells[h + i];
    cells.fill(0, h, h + HISTOGRAM_CELLS);
    return { ns_per_record: ns / records, recorded: count };
  }

  info(): Measures {
    return { histogram_bytes: HISTOGRAM_CELLS * 4 };
  }
}

class HdrRecord implements Task {
  private readonly h: hdr.Histogram;

  constructor(
    private readonly p: TaskParams,
    kind: HdrKind,
  ) {
    this.h = buildHdr(kind);
  }

  round(): Measures {
    const { values, records } = this.p;
    const h = this.h;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < records; i++) h.recordValue(values[i]);
    const ns = nsSince(t0);
    const count = h.totalCount;
    h.reset();
    return { ns_per_record: ns / records, recorded: count };
  }

  info(): Measures {
    this.h.recordValue(60_000_000);
    const bytes = this.h.estimatedFootprintInBytes;
    this.h.reset();
    return { histogram_bytes: bytes };
  }
}

/** Histograms per worker: the listener's downstream, then each cluster's two. */
function histogramsPerWorker(clusters: number): number {
  return 1 + clusters * 2;
}

class RemoraMerge implements Task {
  private readonly recs: StatsRecorder[];
  private readonly reader: StatsReader;
  private readonly offsets: number[];
  private cursor = 0;

  constructor(private readonly p: TaskParams) {
    const slabs = Array.from({ length: p.workers }, () => LAYOUT.allocate());
    this.recs = slabs.map((s) => new StatsRecorder(s));
    this.reader = new StatsReader(slabs);
    const clusterSlots = Array.from({ length: p.clusters }, (_, i) => i);
    this.reader.setSlots([0], clusterSlots);
    this.offsets = [LAYOUT.listenerBase(0) + histogramOffset(LISTENER_SHAPE, ListenerHistogram.Downstream)];
    for (const c of clusterSlots) {
      this.offsets.push(LAYOUT.clusterBase(c) + histogramOffset(CLUSTER_SHAPE, ClusterHistogram.Upstream));
      this.offsets.push(LAYOUT.clusterBase(c) + histogramOffset(CLUSTER_SHAPE, ClusterHistogram.Overhead));
    }
  }

  round(): Measures {
    this.fill();
    const t0 = process.hrtime.bigint();
    this.reader.fold();
    const foldNs = nsSince(t0);
    let count = this.reader.listenerHistogram(0, ListenerHistogram.Downstream).count;
    for (let c = 0; c < this.p.clusters; c++) {
      count += this.reader.clusterHistogram(c, ClusterHistogram.Upstream).count;
      count += this.reader.clusterHistogram(c, ClusterHistogram.Overhead).count;
    }
    const allNs = nsSince(t0);
    return { fold_ms: foldNs / 1e6, fold_and_snapshot_ms: allNs / 1e6, total_count: count };
  }

  info(): Measures {
    return { histograms: this.p.workers * this.offsets.length, slab_bytes_per_worker: LAYOUT.cells * 4 };
  }

  private fill(): void {
    const { values, perInterval } = this.p;
    for (const rec of this.recs) {
      for (const off of this.offsets) {
        for (let i = 0; i < perInterval; i++) rec.observe(off, values[(this.cursor + i) % values.length]);
        this.cursor = (this.cursor + perInterval) % values.length;
      }
    }
  }
}

class HdrMerge implements Task {
  /** [worker][histogram] */
  private readonly perWorker: hdr.Histogram[][];
  private readonly aggregates: hdr.Histogram[];
  private cursor = 0;

  constructor(
    private readonly p: TaskParams,
    private readonly kind: HdrKind,
  ) {
    const n = histogramsPerWorker(p.clusters);
    this.perWorker = Array.from({ length: p.workers }, () => Array.from({ length: n }, () => buildHdr(kind)));
    this.aggregates = Array.from({ length: n }, () => buildHdr(kind));
  }

  round(): Measures {
    this.fill();
    const t0 = process.hrtime.bigint();
    const encoded = this.perWorker.map((hs) => hs.map((h) => hdr.encodeIntoCompressedBase64(h)));
    const encodeNs = nsSince(t0);
    const t1 = process.hrtime.bigint();
    this.decodeAndAdd(encoded);
    const decodeAddNs = nsSince(t1);
    const count = this.aggregateCount();
    const t2 = process.hrtime.bigint();
    this.addOnly();
    const addNs = nsSince(t2);
    for (const hs of this.perWorker) for (const h of hs) h.reset();
    const bytes = encoded.reduce((a, hs) => a + hs.reduce((b, s) => b + s.length, 0), 0);
    return { encode_ms: encodeNs / 1e6, decode_add_ms: decodeAddNs / 1e6, add_ms: addNs / 1e6, encoded_bytes: bytes, total_count: count };
  }

  info(): Measures {
    const one = this.perWorker[0][0].estimatedFootprintInBytes;
    return { histograms: this.p.workers * this.aggregates.length, histogram_bytes_empty: one };
  }

  private fill(): void {
    const { values, perInterval } = this.p;
    for (const hs of this.perWorker) {
      for (const h of hs) {
        for (let i = 0; i < perInterval; i++) h.recordValue(values[(this.cursor + i) % values.length]);
        this.cursor = (this.cursor + perInterval) % values.length;
      }
    }
  }

  private decodeAndAdd(encoded: string[][]): void {
    for (const a of this.aggregates) a.reset();
    for (const hs of encoded) {
      for (let j = 0; j < hs.length; j++) {
        const h = hdr.decodeFromCompressedBase64(hs[j], this.kind.bitBucketSize, this.kind.useWebAssembly);
        this.aggregates[j].add(h);
        h.destroy();
      }
    }
  }

  private addOnly(): void {
    for (const a of this.aggregates) a.reset();
    for (const hs of this.perWorker) for (let j = 0; j < hs.length; j++) this.aggregates[j].add(hs[j]);
  }

  private aggregateCount(): number {
    return this.aggregates.reduce((a, h) => a + h.totalCount, 0);
  }
}

export function makeTask(name: string, p: TaskParams): Task {
  if (name === 'remora') return new RemoraRecord(p);
  if (name === 'remora-no-atomics') return new RemoraNoAtomics(p);
  if (name === 'merge-remora') return new RemoraMerge(p);
  const merge = name.startsWith('merge-');
  const kind = HDR_KINDS[merge ? name.slice('merge-'.length) : name];
  if (kind === undefined) throw new Error(`unknown task ${name}`);
  return merge ? new HdrMerge(p, kind) : new HdrRecord(p, kind);
}
