// The per-worker numbers GET /workers shows, read from that worker's own stats slab:
// nothing is counted twice on the hot path for them. Over every listener slot ever used:
// requests are the downstream duration histogram's count (every finished request is
// observed once, with or without a status), responses the status-class counters, flags
// the flag counters (downstream resets are flag DC); keep-alive resends are the cluster
// counter over every cluster slot ever used; the loop delay is the worker's own cells.
// Slots above the highest one ever used hold nothing and are not read.
//
// Slab cells are read as stored (32 bits, not folded): a worker's view wraps after 2^32
// of a counter, and /reset_counters leaves it alone. A replacement worker inherits its
// slot's slab, so the counts cover the slot, not just the thread now in it. With
// `stats.enabled: false` nothing is recorded per listener or cluster, so those read 0.

import { ResponseFlag } from '../core/flags.js';
import type { StatsReader } from './reader.js';
import { LAYOUT, LISTENER_SHAPE, OVERFLOW_CELL, histogramOffset } from './shapes.js';
import { ClusterCounter, FLAGS, ListenerCounter, ListenerHistogram } from './stat-names.js';
import { WorkerCell } from './tables/worker.js';

/** What /workers shows per worker under `stats` (the shape WorkerStats had). */
export interface WorkerStatsView {
  /** Requests finished (answered or not). */
  requests: number;
  responses2xx: number;
  responses3xx: number;
  responses4xx: number;
  responses5xx: number;
  /** Requests whose client went away before the response ended (flag DC). */
  downstreamResets: number;
  /** Requests resent on a fresh connection after the keep-alive race. */
  keepAliveRaceRetries: number;
  /** Count per response flag, as the listener counters count them (a request that
   *  ran out of retries or was refused one also counts URX or UO beside its own flag);
   *  flags never seen are left out. */
  flags: Record<string, number>;
  /** Event-loop delay over the worker's last full second, µs. */
  event_loop_delay: { p50_us: number; p99_us: number; max_us: number };
}

const DOWNSTREAM = histogramOffset(LISTENER_SHAPE, ListenerHistogram.Downstream);
const DC_INDEX = FLAGS.indexOf(ResponseFlag.DownstreamConnectionTermination);

/** The /workers stats of worker slot `w`, read from its slab now. */
export function workerStatsView(reader: StatsReader, w: number): WorkerStatsView {
  let requests = 0;
  const classes = [0, 0, 0, 0, 0];
  const flagCounts = new Array<number>(FLAGS.length).fill(0);
  for (let slot = 0; slot < reader.listenerSlotsUsed; slot++) {
    const base = LAYOUT.listenerBase(slot);
    for (let b = 0; b <= OVERFLOW_CELL; b++) requests += reader.rawCell(w, base + DOWNSTREAM + b);
    for (let c = 0; c < 5; c++) classes[c] += reader.rawCell(w, base + ListenerCounter.Rq1xx + c);
    for (let f = 0; f < FLAGS.length; f++) flagCounts[f] += reader.rawCell(w, base + ListenerCounter.FlagBase + f);
  }
  let keepAliveRaceRetries = 0;
  for (let slot = 0; slot < reader.clusterSlotsUsed; slot++) {
    keepAliveRaceRetries += reader.rawCell(w, LAYOUT.clusterBase(slot) + ClusterCounter.KeepAliveRetries);
  }
  const flags: Record<string, number> = {};
  FLAGS.forEach((f, i) => {
    if (flagCounts[i] > 0) flags[f] = flagCounts[i];
  });
  const cell = (c: number): number => reader.rawCell(w, LAYOUT.workerStart + c);
  return {
    requests,
    responses2xx: classes[1],
    responses3xx: classes[2],
    responses4xx: classes[3],
    responses5xx: classes[4],
    downstreamResets: flagCounts[DC_INDEX],
    keepAliveRaceRetries,
    flags,
    event_loop_delay: { p50_us: cell(WorkerCell.LoopDelayP50), p99_us: cell(WorkerCell.LoopDelayP99), max_us: cell(WorkerCell.LoopDelayMax) },
  };
}
