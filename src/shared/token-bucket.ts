// A token bucket in two Int32 cells of shared memory, used by every worker at once
// without locks (Atomics only). Time is a "tick": whole fill intervals since a
// process-wide epoch that the main thread chooses, so every thread agrees on it.
//
// Lazy refill: nothing runs on a timer. A take that sees a tick newer than the stored one
// tries to move the stored tick forward by CAS; only the thread that wins adds the tokens
// for the ticks it moved over. Then it takes one token with a CAS loop.
//
// Looseness contract:
// - No overshoot: admissions never exceed maxTokens + the fills of the ticks elapsed.
//   Each tick range (t0, tick] is added by exactly one winner, and a take never drives
//   Tokens below 0.
// - Undershoot only: in the instant between the winner's tick CAS and its token add,
//   other threads see the new tick with the old tokens and may be refused spuriously.
// - A take with a tick behind the stored one (another thread already advanced it) just
//   takes.
// - If maxTokens shrinks in a config change, the new cap applies at the next refill; a
//   take in between still works (Tokens may be above the new maxTokens until then).
// - Ticks compare with wrap-around arithmetic: a bucket idle for more than 2^31 fill
//   intervals (3.4 years at the 50 ms minimum) may miss one refill. A change of
//   fillIntervalMs or of the epoch changes the tick scale: re-initialize the bucket
//   (initBucket) rather than keep its stored tick.

import { BUCKET_CELLS } from './shared-state.js';

export interface BucketParams {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
}

/** Cell offsets of one bucket from its base index. */
export const BucketCell = { Tokens: 0, Tick: 1 } as const;

if (BUCKET_CELLS !== 2) throw new Error(`token-bucket.ts expects BUCKET_CELLS = 2, layout says ${BUCKET_CELLS}`);

/** Fill periods since `epochMs` (a process-wide epoch the main thread chooses), as an
 *  int32 (wrapping; compared with wrap-around arithmetic). */
export function currentTick(nowMs: number, epochMs: number, fillIntervalMs: number): number {
  return Math.floor((nowMs - epochMs) / fillIntervalMs) | 0;
}

/** Fills the bucket (tokens = maxTokens) and stamps it with `tick`. Not for a bucket that
 *  other threads are using at the same moment (slot assignment, config load). */
export function initBucket(cells: Int32Array, base: number, params: BucketParams, tick: number): void {
  Atomics.store(cells, base + BucketCell.Tokens, params.maxTokens);
  Atomics.store(cells, base + BucketCell.Tick, tick);
}

/** Tokens the winner of the tick CAS adds for `elapsed` (> 0) ticks, capped at maxTokens. */
function fillFor(elapsed: number, params: BucketParams): number {
  return Math.min(elapsed * params.tokensPerFill, params.maxTokens);
}

/**
 * Takes one token. Returns the tokens left after taking (>= 0), or -1 when empty.
 * `tick` is currentTick() for this bucket's fill interval.
 */
export function tryTake(cells: Int32Array, base: number, params: BucketParams, tick: number): number {
  const tickIndex = base + BucketCell.Tick;
  const tokenIndex = base + BucketCell.Tokens;
  const t0 = Atomics.load(cells, tickIndex);
  if (tick !== t0) {
    const elapsed = (tick - t0) | 0;
    // Only the thread that moves the tick from t0 adds the fills of (t0, tick].
    if (elapsed > 0 && Atomics.compareExchange(cells, tickIndex, t0, tick) === t0) {
      const add = fillFor(elapsed, params);
      const max = params.maxTokens;
      let have = Atomics.load(cells, tokenIndex);
      for (;;) {
        const next = Math.min(have + add, max);
        if (next === have) break;
        const seen = Atomics.compareExchange(cells, tokenIndex, have, next);
        if (seen === have) break;
        have = seen;
      }
    }
  }
  let have = Atomics.load(cells, tokenIndex);
  for (;;) {
    if (have <= 0) return -1;
    const seen = Atomics.compareExchange(cells, tokenIndex, have, have - 1);
    if (seen === have) return have - 1;
    have = seen;
  }
}

/** Tokens a take would find now, counting a refill due at `tick`, without writing
 *  anything (for x-ratelimit-remaining and admin views). */
export function peek(cells: Int32Array, base: number, params: BucketParams, tick: number): number {
  const have = Math.max(0, Atomics.load(cells, base + BucketCell.Tokens));
  const elapsed = (tick - Atomics.load(cells, base + BucketCell.Tick)) | 0;
  if (elapsed <= 0) return have;
  return Math.min(have + fillFor(elapsed, params), params.maxTokens);
}
