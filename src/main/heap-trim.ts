// Gives the main thread's garbage back after start and after config changes. Decoding, translating,
// validating and compiling a whole update of tens of thousands of endpoints allocates
// several times the config's own size, and most of it lives long enough to be promoted
// to the old generation. V8 collects the old generation only when it reaches a limit that
// the same burst has just raised, and its memory reducer starts only after a full
// collection, so the garbage stayed resident indefinitely: 20,000 endpoints pushed over
// xDS left 90 MB of old space "in use" of which about 30 MB was live, 20 s later.
//
// So a few seconds after start and after the last config or endpoint change, when the
// main thread is quiet again, this runs one full collection: the first time always, then
// when the heap in use has grown by at least TRIM_GROWTH_BYTES since the last one. It
// costs a few to tens of milliseconds on the main thread, which carries no traffic
// (workers do), once per burst of changes. The collection itself is src/core/full-gc.ts;
// where the runtime will not hand one out, nothing is collected. Workers give back what
// a burst of traffic leaves in the same way, once they are quiet (workers/idle-heap-trim.ts).

import v8 from 'node:v8';
import { fullGcFunction, type FullGc } from '../core/full-gc.js';
import type { Logger } from '../core/log.js';

/** Quiet time after the last change before a collection. */
export const TRIM_DELAY_MS = 3000;
/** Growth of the heap in use since the last collection that makes one worthwhile. */
export const TRIM_GROWTH_BYTES = 8 * 1024 * 1024;

/** Bytes of V8 heap in use now (`v8.getHeapStatistics().used_heap_size`). */
type HeapUsed = () => number;

const mb = (bytes: number): number => Math.round(bytes / 104857.6) / 10;

export class HeapTrim {
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Heap in use just after the last collection this ran; 0 before the first, so the
   *  first look (after start) always collects. */
  private liveAfterLast = 0;
  /** Collections run. */
  trims = 0;

  constructor(
    private readonly log: Logger,
    private readonly delayMs = TRIM_DELAY_MS,
    private readonly gc: FullGc | null = fullGcFunction(),
    private readonly heapUsed: HeapUsed = () => v8.getHeapStatistics().used_heap_size,
  ) {}

  /** Whether this runtime lets the main thread trim at all. */
  get available(): boolean {
    return this.gc !== null;
  }

  /** A config or endpoint change was applied: look again once changes stop for a while. */
  changed(): void {
    if (this.gc === null || this.closed) return;
    if (this.timer !== null) {
      this.timer.refresh();
      return;
    }
    this.timer = setTimeout(() => this.run(), this.delayMs);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private run(): void {
    this.timer = null;
    if (this.gc === null) return;
    const before = this.heapUsed();
    if (before - this.liveAfterLast < TRIM_GROWTH_BYTES) {
      this.log.debug({ heap_used_mb: mb(before), live_after_last_mb: mb(this.liveAfterLast) }, 'main thread heap: no collection needed after a config change');
      return;
    }
    const t0 = performance.now();
    try {
      this.gc();
    } catch (err) {
      this.log.warn({ err }, 'main thread heap collection failed');
      return;
    }
    const after = this.heapUsed();
    this.liveAfterLast = after;
    this.trims++;
    this.log.info({ heap_used_mb: [mb(before), mb(after)], ms: Math.round(performance.now() - t0) }, 'main thread heap collected after a config change');
  }
}
