// Worker side of the stats: typed handles over this worker's slab. Each worker is the
// only writer of its slab (Atomics.add/store, no contention); the main thread reads.
// Handles are made when a config snapshot is applied, never per request.

import { MAX_CLUSTERS, MAX_LISTENERS } from '../shared/limits.js';
import { WorkerCell } from '../shared/stats-layout.js';
import { CLUSTER_SHAPE, LAYOUT, LISTENER_SHAPE, SUM_CELL, bucketIndex, gaugeOffset, histogramOffset } from './shapes.js';
import { ClusterCounter, ClusterGauge, ClusterHistogram, ListenerCounter, ListenerGauge, ListenerHistogram } from './stat-names.js';

/** What the pipeline records per listener. */
export interface ListenerStats {
  requestStarted(): void;
  /** `flagIndex`: index into FLAGS, or -1 for none. */
  requestFinished(status: number, flagIndex: number, bytesIn: number, bytesOut: number, durationUs: number): void;
  /** Adds one to a ListenerCounter (flag counters: FlagBase + index). */
  count(counter: number): void;
  /** Adds `n` to a ListenerCounter. */
  add(counter: number, n: number): void;
  gauge(gauge: number, delta: number): void;
  /** Records `us` in a ListenerHistogram. */
  observe(histogram: number, us: number): void;
}

/** What pools and the pipeline record per cluster. */
export interface ClusterStats {
  count(counter: number): void;
  /** Adds `n` to a ClusterCounter. */
  add(counter: number, n: number): void;
  gauge(gauge: number, delta: number): void;
  connectionOpened(): void;
  connectionClosed(connected: boolean): void;
  upstreamResponse(status: number, upstreamUs: number, downstreamUs: number): void;
  /** An upstream response that Remora retried instead of sending on. */
  retriedResponse(status: number, upstreamUs: number): void;
  /** A gRPC call's grpc-status from the upstream. */
  grpcResponse(code: number): void;
}

/** Recording switched off (`stats.enabled: false`): calls cost a no-op, as pino does
 *  for disabled log levels. */
export const NO_LISTENER_STATS: ListenerStats = {
  requestStarted() {},
  requestFinished() {},
  count() {},
  add() {},
  gauge() {},
  observe() {},
};

export const NO_CLUSTER_STATS: ClusterStats = {
  count() {},
  add() {},
  gauge() {},
  connectionOpened() {},
  connectionClosed() {},
  upstreamResponse() {},
  retriedResponse() {},
  grpcResponse() {},
};

export class StatsRecorder {
  readonly cells: Uint32Array;

  constructor(slab: SharedArrayBuffer) {
    this.cells = new Uint32Array(slab);
  }

  /** A replacement worker inherits its slot's slab: counters go on, but the gauges
   *  its dead predecessor left behind describe nothing that exists any more. Runs when
   *  a worker starts, over the slots its predecessors used (slotUsed; a fresh slab:
   *  none): the pages of slots never used are not even read, since on some kernels and
   *  runtimes a read of a shared buffer's untouched page makes it resident (~6 MiB per
   *  worker at MAX_CLUSTERS); a cell is stored only when it is not already 0. */
  zeroGauges(): void {
    const used = LAYOUT.workerStart;
    const listeners = Math.min(MAX_LISTENERS, Atomics.load(this.cells, used + WorkerCell.ListenerSlotsUsed));
    const clusters = Math.min(MAX_CLUSTERS, Atomics.load(this.cells, used + WorkerCell.ClusterSlotsUsed));
    for (let s = 0; s < listeners; s++) this.zero(LAYOUT.listenerBase(s) + gaugeOffset(LISTENER_SHAPE, 0), LISTENER_SHAPE.gauges);
    for (let s = 0; s < clusters; s++) this.zero(LAYOUT.clusterBase(s) + gaugeOffset(CLUSTER_SHAPE, 0), CLUSTER_SHAPE.gauges);
    this.zero(LAYOUT.workerStart + WorkerCell.CxActive, 1);
  }

  /** Raises the slab's mark of slots used (`cell`: ListenerSlotsUsed or ClusterSlotsUsed)
   *  past `slot`: every slot whose stats this slab's workers ever wrote is below it. */
  slotUsed(cell: number, slot: number): void {
    const at = LAYOUT.workerStart + cell;
    if (Atomics.load(this.cells, at) <= slot) Atomics.store(this.cells, at, slot + 1);
  }

  private zero(from: number, count: number): void {
    for (let i = from; i < from + count; i++) if (Atomics.load(this.cells, i) !== 0) Atomics.store(this.cells, i, 0);
  }

  /** Stores this worker's heartbeat and last-second event-loop delay. */
  storeWorker(loopDelay: { p50_us: number; p99_us: number; max_us: number }): void {
    const base = LAYOUT.workerStart;
    Atomics.store(this.cells, base + WorkerCell.Heartbeat, Math.floor(Date.now() / 1000));
    Atomics.store(this.cells, base + WorkerCell.LoopDelayP50, loopDelay.p50_us);
    Atomics.store(this.cells, base + WorkerCell.LoopDelayP99, loopDelay.p99_us);
    Atomics.store(this.cells, base + WorkerCell.LoopDelayMax, loopDelay.max_us);
  }

  observe(histogram: number, us: number): void {
    Atomics.add(this.cells, histogram + bucketIndex(us), 1);
    Atomics.add(this.cells, histogram + SUM_CELL, us);
  }
}

/** Stats of one listener, in one worker, kept in the slab. */
export class SlabListenerStats implements ListenerStats {
  private readonly base: number;
  private readonly downstream: number;

  constructor(
    private readonly rec: StatsRecorder,
    slot: number,
  ) {
    this.base = LAYOUT.listenerBase(slot);
    rec.slotUsed(WorkerCell.ListenerSlotsUsed, slot);
    this.downstream = this.base + histogramOffset(LISTENER_SHAPE, ListenerHistogram.Downstream);
  }

  requestStarted(): void {
    Atomics.add(this.rec.cells, this.base + gaugeOffset(LISTENER_SHAPE, ListenerGauge.RqActive), 1);
  }

  count(counter: number): void {
    Atomics.add(this.rec.cells, this.base + counter, 1);
  }

  add(counter: number, n: number): void {
    if (n > 0) Atomics.add(this.rec.cells, this.base + counter, n);
  }

  gauge(gauge: number, delta: number): void {
    const cell = this.base + gaugeOffset(LISTENER_SHAPE, gauge);
    if (delta > 0) Atomics.add(this.rec.cells, cell, delta);
    else if (Atomics.load(this.rec.cells, cell) >= -delta) Atomics.sub(this.rec.cells, cell, -delta);
  }

  observe(histogram: number, us: number): void {
    this.rec.observe(this.base + histogramOffset(LISTENER_SHAPE, histogram), us);
  }

  /** `flagIndex`: index into FLAGS, or -1 for none. */
  requestFinished(status: number, flagIndex: number, bytesIn: number, bytesOut: number, durationUs: number): void {
    const cells = this.rec.cells;
    const base = this.base;
    Atomics.sub(cells, base + gaugeOffset(LISTENER_SHAPE, ListenerGauge.RqActive), 1);
    const cls = ((status / 100) | 0) - 1;
    if (cls >= 0 && cls <= 4) Atomics.add(cells, base + ListenerCounter.Rq1xx + cls, 1);
    if (flagIndex >= 0) Atomics.add(cells, base + ListenerCounter.FlagBase + flagIndex, 1);
    if (bytesIn > 0) Atomics.add(cells, base + ListenerCounter.BytesIn, bytesIn);
    if (bytesOut > 0) Atomics.add(cells, base + ListenerCounter.BytesOut, bytesOut);
    this.rec.observe(this.downstream, durationUs);
  }
}

/** Stats of one cluster, in one worker (shared by its endpoint pools), kept in the slab. */
export class SlabClusterStats implements ClusterStats {
  private readonly base: number;
  private readonly upstream: number;
  private readonly overhead: number;

  constructor(
    private readonly rec: StatsRecorder,
    slot: number,
  ) {
    this.base = LAYOUT.clusterBase(slot);
    rec.slotUsed(WorkerCell.ClusterSlotsUsed, slot);
    this.upstream = this.base + histogramOffset(CLUSTER_SHAPE, ClusterHistogram.Upstream);
    this.overhead = this.base + histogramOffset(CLUSTER_SHAPE, ClusterHistogram.Overhead);
  }

  count(counter: number): void {
    Atomics.add(this.rec.cells, this.base + counter, 1);
  }

  add(counter: number, n: number): void {
    if (n > 0) Atomics.add(this.rec.cells, this.base + counter, n);
  }

  gauge(gauge: number, delta: number): void {
    Atomics.add(this.rec.cells, this.base + gaugeOffset(CLUSTER_SHAPE, gauge), delta);
  }

  connectionOpened(): void {
    this.count(ClusterCounter.CxTotal);
    this.gauge(ClusterGauge.CxActive, 1);
  }

  /** `connected`: whether it ever connected (else it was a connect failure). */
  connectionClosed(connected: boolean): void {
    this.gauge(ClusterGauge.CxActive, -1);
    if (!connected) this.count(ClusterCounter.CxConnectFail);
  }

  /** An upstream response (head received) with `status`, and its timings. */
  upstreamResponse(status: number, upstreamUs: number, downstreamUs: number): void {
    const cls = ((status / 100) | 0) - 1;
    if (cls >= 0 && cls <= 4) Atomics.add(this.rec.cells, this.base + ClusterCounter.Rq1xx + cls, 1);
    this.rec.observe(this.upstream, upstreamUs);
    this.rec.observe(this.overhead, downstreamUs > upstreamUs ? downstreamUs - upstreamUs : 0);
  }

  grpcResponse(code: number): void {
    Atomics.add(this.rec.cells, this.base + ClusterCounter.Grpc0 + (code >= 0 && code <= 16 ? code : 17), 1);
  }

  /** A response that was retried: counted by class apart from the responses clients got
   *  (Envoy's retry.upstream_rq_*), its attempt's time in upstream_rq_time. */
  retriedResponse(status: number, upstreamUs: number): void {
    const cls = ((status / 100) | 0) - 1;
    if (cls >= 0 && cls <= 4) Atomics.add(this.rec.cells, this.base + ClusterCounter.RetryRq1xx + cls, 1);
    this.rec.observe(this.upstream, upstreamUs);
  }
}
