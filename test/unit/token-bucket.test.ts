// Unit tests for the shared token bucket (token-bucket.ts): fill, take, lazy refill by
// ticks (capped, multi-tick, stale ticks), peek, tick math, and contention from real
// worker threads on one SharedArrayBuffer (no lost updates, no overshoot).

import t from 'tap';
import { BucketCell, currentTick, initBucket, peek, tryTake, type BucketParams } from '../../src/shared/token-bucket.js';
import { CONTROL_CELLS, WorkerGang, type BucketWorkerJob } from '../helpers/bucket-worker.js';

const WORKERS = 4;

function bucket(params: BucketParams, tick = 0): Int32Array {
  const cells = new Int32Array(new SharedArrayBuffer(2 * 4));
  initBucket(cells, 0, params, tick);
  return cells;
}

/** Takes until refused; returns every value tryTake returned, the final -1 included. */
function drain(cells: Int32Array, params: BucketParams, tick: number): number[] {
  const seen: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const left = tryTake(cells, 0, params, tick);
    seen.push(left);
    if (left < 0) break;
  }
  return seen;
}

t.test('currentTick counts whole fill intervals since the epoch', async (t) => {
  const cases: [number, number, number, number][] = [
    // nowMs, epochMs, fillIntervalMs, expected
    [0, 0, 100, 0],
    [99, 0, 100, 0],
    [100, 0, 100, 1],
    [1099, 0, 100, 10],
    [5000, 4000, 250, 4],
    [5249, 4000, 250, 4],
    [5250, 4000, 250, 5],
    [900, 1000, 100, -1],
  ];
  for (const [now, epoch, interval, want] of cases) {
    const got = currentTick(now, epoch, interval);
    t.equal(got, want, `currentTick(${now}, ${epoch}, ${interval}): expected ${want}, got ${got}`);
  }
  const far = currentTick(2 ** 31 * 50 + 50, 0, 50);
  t.ok(Number.isInteger(far) && far >= -(2 ** 31) && far < 2 ** 31, `a tick past 2^31 wraps to an int32 (got ${far})`);
});

t.test('a new bucket starts full and takes until empty', async (t) => {
  const params = { maxTokens: 5, tokensPerFill: 5, fillIntervalMs: 1000 };
  const cells = bucket(params, 7);
  t.equal(cells[BucketCell.Tokens], 5, `initBucket stores maxTokens: expected 5, got ${cells[BucketCell.Tokens]}`);
  t.equal(cells[BucketCell.Tick], 7, `initBucket stores the tick: expected 7, got ${cells[BucketCell.Tick]}`);
  t.equal(peek(cells, 0, params, 7), 5, `peek on a full bucket: expected 5, got ${peek(cells, 0, params, 7)}`);
  const seen = drain(cells, params, 7);
  t.same(seen, [4, 3, 2, 1, 0, -1], `takes return the tokens left, then -1: got ${seen.join(',')}`);
  const again = tryTake(cells, 0, params, 7);
  t.equal(again, -1, `an empty bucket keeps refusing within the tick: expected -1, got ${again}`);
  t.equal(cells[BucketCell.Tokens], 0, `tokens never go below 0: expected 0, got ${cells[BucketCell.Tokens]}`);
});

t.test('a refill after one tick adds tokensPerFill (< maxTokens)', async (t) => {
  const params = { maxTokens: 5, tokensPerFill: 2, fillIntervalMs: 1000 };
  const cells = bucket(params);
  drain(cells, params, 0);
  t.equal(peek(cells, 0, params, 1), 2, `peek sees the refill due at tick 1: expected 2, got ${peek(cells, 0, params, 1)}`);
  t.equal(cells[BucketCell.Tick], 0, `peek writes nothing: expected stored tick 0, got ${cells[BucketCell.Tick]}`);
  t.equal(cells[BucketCell.Tokens], 0, `peek writes nothing: expected stored tokens 0, got ${cells[BucketCell.Tokens]}`);
  const seen = drain(cells, params, 1);
  t.same(seen, [1, 0, -1], `after one fill of 2 tokens: expected 1,0,-1, got ${seen.join(',')}`);
  t.equal(cells[BucketCell.Tick], 1, `the take stored the new tick: expected 1, got ${cells[BucketCell.Tick]}`);
});

t.test('a multi-tick refill adds one fill per tick, capped at maxTokens', async (t) => {
  const params = { maxTokens: 10, tokensPerFill: 2, fillIntervalMs: 1000 };
  const cells = bucket(params);
  drain(cells, params, 0);
  const first = tryTake(cells, 0, params, 3);
  t.equal(first, 5, `3 ticks × 2 tokens = 6, one taken: expected 5 left, got ${first}`);
  drain(cells, params, 3);
  const capped = tryTake(cells, 0, params, 100);
  t.equal(capped, 9, `97 ticks × 2 tokens is capped at maxTokens 10, one taken: expected 9, got ${capped}`);
  const peeked = peek(cells, 0, params, 1000);
  t.equal(peeked, 10, `peek is capped at maxTokens too: expected 10, got ${peeked}`);
  // Partially drained, then refilled: the cap applies to what is already there.
  const partial = bucket(params);
  tryTake(partial, 0, params, 0);
  tryTake(partial, 0, params, 0); // 8 left
  const afterOne = tryTake(partial, 0, params, 1);
  t.equal(afterOne, 9, `8 + 2 is capped at 10, one taken: expected 9, got ${afterOne}`);
});

t.test('a stale tick (behind the stored one) just takes', async (t) => {
  const params = { maxTokens: 4, tokensPerFill: 4, fillIntervalMs: 1000 };
  const cells = bucket(params);
  drain(cells, params, 0);
  t.equal(tryTake(cells, 0, params, 5), 3, 'tick 5 refills: expected 3 left');
  const stale = tryTake(cells, 0, params, 3);
  t.equal(stale, 2, `a take at stale tick 3 takes without refilling: expected 2, got ${stale}`);
  t.equal(cells[BucketCell.Tick], 5, `the stored tick stays 5: got ${cells[BucketCell.Tick]}`);
  const sameTick = tryTake(cells, 0, params, 5);
  t.equal(sameTick, 1, `the same tick again does not refill: expected 1, got ${sameTick}`);
  t.equal(peek(cells, 0, params, 3), 1, `peek at a stale tick shows the stored tokens: expected 1, got ${peek(cells, 0, params, 3)}`);
});

t.test('a smaller maxTokens applies at the next refill; takes keep working', async (t) => {
  const big = { maxTokens: 10, tokensPerFill: 1, fillIntervalMs: 1000 };
  const small = { maxTokens: 4, tokensPerFill: 1, fillIntervalMs: 1000 };
  const cells = bucket(big);
  const left = tryTake(cells, 0, small, 0);
  t.equal(left, 9, `a take under the new params before any refill: expected 9 left, got ${left}`);
  const refilled = tryTake(cells, 0, small, 1);
  t.equal(refilled, 3, `the refill caps at the new maxTokens 4, one taken: expected 3, got ${refilled}`);
});

t.test('contention from worker threads on one SharedArrayBuffer', async (t) => {
  const gang = WorkerGang.start(WORKERS);
  t.teardown(() => gang.close());

  t.test('below capacity: every take is admitted, no lost updates', async (t) => {
    const perWorker = 50_000;
    const max = 250_000;
    const base = CONTROL_CELLS;
    const marksStart = base + 2;
    const buffer = new SharedArrayBuffer((marksStart + max) * 4);
    const cells = new Int32Array(buffer);
    const params = { maxTokens: max, tokensPerFill: 0, fillIntervalMs: 1000 };
    initBucket(cells, base, params, 0);
    const job: BucketWorkerJob = { kind: 'bucket', base, params, takes: perWorker, iterationsPerTick: 0, marksStart };
    const admitted = await gang.run(buffer, Array.from({ length: WORKERS }, () => job));
    const total = admitted.reduce((a, b) => a + b, 0);
    t.equal(total, WORKERS * perWorker, `all ${WORKERS * perWorker} takes admitted below capacity: got ${total} (${admitted.join('/')})`);
    const tokens = Atomics.load(cells, base + BucketCell.Tokens);
    t.equal(tokens, max - total, `final Tokens = ${max} − admitted = ${max - total}: got ${tokens}`);
    // Every admitted take saw a distinct "tokens left" value: each of max−total .. max−1 exactly once.
    let wrong = 0;
    let firstWrong = -1;
    for (let left = 0; left < max; left++) {
      const want = left >= max - total ? 1 : 0;
      if (cells[marksStart + left] !== want) {
        wrong++;
        if (firstWrong < 0) firstWrong = left;
      }
    }
    t.equal(wrong, 0, `each tokens-left value seen exactly once by one take: ${wrong} wrong, first at ${firstWrong} (count ${firstWrong >= 0 ? cells[marksStart + firstWrong] : 0})`);
  });

  t.test('over capacity without refill: exactly maxTokens admitted', async (t) => {
    // The small bucket can be emptied by one thread before the others run; the large one
    // keeps all of them taking at once.
    for (const [maxTokens, takes] of [
      [1000, 10_000],
      [100_000, 50_000],
    ]) {
      const base = CONTROL_CELLS;
      const buffer = new SharedArrayBuffer((base + 2) * 4);
      const cells = new Int32Array(buffer);
      const params = { maxTokens, tokensPerFill: 0, fillIntervalMs: 1000 };
      initBucket(cells, base, params, 0);
      const job: BucketWorkerJob = { kind: 'bucket', base, params, takes, iterationsPerTick: 0, marksStart: -1 };
      const admitted = await gang.run(buffer, Array.from({ length: WORKERS }, () => job));
      const total = admitted.reduce((a, b) => a + b, 0);
      t.equal(total, maxTokens, `${WORKERS} × ${takes} takes from a bucket of ${maxTokens}: expected exactly ${maxTokens} admitted, got ${total} (${admitted.join('/')})`);
      const tokens = Atomics.load(cells, base + BucketCell.Tokens);
      t.equal(tokens, 0, `the bucket of ${maxTokens} ends empty, not negative: expected 0, got ${tokens}`);
    }
  });

  t.test('with racing refills: never more than maxTokens + fills', async (t) => {
    const base = CONTROL_CELLS;
    const buffer = new SharedArrayBuffer((base + 2) * 4);
    const cells = new Int32Array(buffer);
    const params = { maxTokens: 100, tokensPerFill: 10, fillIntervalMs: 1000 };
    initBucket(cells, base, params, 0);
    const takes = 10_000;
    const iterationsPerTick = 100;
    const lastTick = Math.floor((takes - 1) / iterationsPerTick);
    const job: BucketWorkerJob = { kind: 'bucket', base, params, takes, iterationsPerTick, marksStart: -1 };
    const admitted = await gang.run(buffer, Array.from({ length: WORKERS }, () => job));
    const total = admitted.reduce((a, b) => a + b, 0);
    const bound = params.maxTokens + lastTick * params.tokensPerFill;
    t.ok(total <= bound, `admitted at most maxTokens + ${lastTick} fills = ${bound}: got ${total} (${admitted.join('/')})`);
    t.ok(total > params.maxTokens, `refills admitted more than the initial ${params.maxTokens}: got ${total}`);
    const tick = Atomics.load(cells, base + BucketCell.Tick);
    t.equal(tick, lastTick, `the stored tick reached the last tick ${lastTick}: got ${tick}`);
  });

  t.test('plain Atomics.add counters are exact', async (t) => {
    const index = CONTROL_CELLS;
    const buffer = new SharedArrayBuffer((index + 1) * 4);
    const job: BucketWorkerJob = { kind: 'add', index, count: 100_000 };
    await gang.run(buffer, Array.from({ length: WORKERS }, () => job));
    const total = Atomics.load(new Int32Array(buffer), index);
    t.equal(total, WORKERS * 100_000, `4 × 100000 Atomics.add: expected ${WORKERS * 100_000}, got ${total}`);
  });
});
