// Gives a worker's memory back once traffic stops. Under load V8 grows a worker's young
// generation to its limit (worker_limits.young_generation_mb) and promotes some request
// garbage to the old generation; when the traffic stops it keeps both: V8's memory
// reducer, which would shrink them, starts only after a full collection, and an idle
// worker never runs one. Measured with 2 workers: 104 MB resident 20 s after a burst,
// against 83 MB before it (docs/performance.md).
//
// So the worker looks once a second (from its sweep, off the request path): after a
// second with work in it (event-loop utilisation at or above BUSY_UTILISATION), once
// worker_limits.idle_heap_trim_after_ms (30 s by default) has passed in quiet looks and
// the heap holds at least TRIM_SLACK_BYTES more than was live after the last collection,
// it runs one full collection (src/core/full-gc.ts): a few tens of milliseconds, at a
// moment with next to no requests in flight. Then it waits for work again before it
// looks. The next burst pays for it: its first seconds cost more CPU per request (40 %
// more over the first 2 s, median of the runs in docs/performance.md) while the young
// generation grows back. Hence the long quiet time: a short one turned every pause
// between bursts into a collection and that cost.

import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { fullGcFunction, minorGcFunction } from '../src/core/full-gc.js';
import type { Logger } from '../src/core/log.js';

/** Event-loop utilisation (0..1) over one look's interval that counts as work. */
export const BUSY_UTILISATION = 0.02;
/** Quiet looks in a row (one a second) before a collection, by default. */
export const QUIET_SECONDS = 30;
/** Heap reserved beyond what was live after the last collection that makes one
 *  worthwhile (a young generation grown by traffic is several MiB). */
export const TRIM_SLACK_BYTES = 4 * 1024 * 1024;

/** What the trim reads: the thread's event loop and heap (tests give their own). */
export interface IdleTrimProbe {
  /** Utilisation of the event loop since the previous call (0..1). */
  utilisation(): number;
  /** V8 heap reserved and in use, in bytes. */
  heap(): { total: number; used: number };
}

/** This thread's event loop and V8 heap. */
export function threadProbe(): IdleTrimProbe {
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  return {
    utilisation() {
      const now = performance.eventLoopUtilization();
      const delta = performance.eventLoopUtilization(now, last);
      last = now;
      return delta.utilization;
    },
    heap() {
      const h = getHeapStatistics();
      return { total: h.total_heap_size, used: h.used_heap_size };
    },
  };
}

const mb = (bytes: number): number => Math.round(bytes / 104857.6) / 10;

/** The collections the trim runs (tests give their own). */
export interface Collector {
  minor(): void;
  full(): void;
}

/** This thread's collections, or null where the runtime hands out none. */
function threadCollector(): Collector | null {
  const full = fullGcFunction();
  const minor = minorGcFunction();
  return full === null || minor === null ? null : { full, minor };
}

export class IdleHeapTrim {
  /** Quiet looks in a row before a collection; 0: never collect. */
  private quietNeeded = QUIET_SECONDS;
  /** Work was seen since the last collection (or since start). */
  private armed = false;
  private quietLooks = 0;
  /** Heap in use just after the last collection; 0 before the first, so the first quiet
   *  spell after work always collects (what start-up left goes with it), as the main
   *  thread's trim does. */
  private liveAfterLast = 0;
  /** Collections run. */
  trims = 0;

  constructor(
    private readonly log: Logger,
    private readonly probe: IdleTrimProbe = threadProbe(),
    /** Looked up on first use (null: this runtime has none). */
    private gc: Collector | null | undefined = undefined,
  ) {}

  /** worker_limits.idle_heap_trim_after_ms: quiet time before a collection (0: never). */
  setQuietTime(ms: number): void {
    this.quietNeeded = Math.ceil(ms / 1000);
  }

  /** One look; called once a second. */
  look(): void {
    const busy = this.probe.utilisation() >= BUSY_UTILISATION;
    if (this.quietNeeded === 0) return;
    if (busy) {
      this.armed = true;
      this.quietLooks = 0;
      return;
    }
    if (!this.armed) return;
    this.quietLooks++;
    if (this.gc === undefined) this.gc = threadCollector();
    if (this.gc === null) {
      this.armed = false;
      return;
    }
    // On the first quiet second, a scavenge: V8 (Node 20) shrinks the young generation
    // at a collection only when the allocation rate since the one before is low, and
    // without this the one before could be the burst's last, with the young generation
    // full of its allocation since.
    if (this.quietLooks === 1) {
      this.gc.minor();
      this.restartWindow();
    }
    if (this.quietLooks < this.quietNeeded) return;
    this.armed = false;
    const before = this.probe.heap();
    if (before.total - this.liveAfterLast < TRIM_SLACK_BYTES) {
      // Nothing worth a collection left behind: wait for the next burst.
      this.log.debug({ heap_total_mb: mb(before.total), live_after_last_mb: mb(this.liveAfterLast) }, 'worker heap: no collection needed once idle');
      return;
    }
    const t0 = performance.now();
    this.gc.full();
    const ms = performance.now() - t0;
    this.restartWindow();
    const after = this.probe.heap();
    this.liveAfterLast = after.used;
    this.trims++;
    this.log.debug({ heap_total_mb: [mb(before.total), mb(after.total)], heap_used_mb: [mb(before.used), mb(after.used)], ms: Math.round(ms * 10) / 10 },
      'worker heap collected once idle');
  }

  /** Starts the next look's utilisation window after the trim's own collection: its
   *  time is not work. Counted, a scavenge that took 20 ms on a loaded host made the
   *  next look busy, which started the quiet count again with another scavenge, so the
   *  collection never came. */
  private restartWindow(): void {
    this.probe.utilisation();
  }
}
