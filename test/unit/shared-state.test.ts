// Unit tests for the process-wide shared state (src/shared/shared-state.ts) and slot
// assignment by name (SlotRegistry in src/shared/stats-layout.ts): the layout's regions,
// circuit-breaker resources (single-threaded and hammered by real worker threads: never
// more holders than max, no lost updates), per-endpoint outcome counters, probation
// trial tokens under contention, the main thread's state writer, and slot reuse.

import t from 'tap';
import {
  CLUSTER_CELLS,
  ClusterCell,
  ClusterResources,
  ENDPOINT_CELLS,
  EndpointCell,
  EndpointCells,
  EndpointState,
  EndpointStateWriter,
  ResourceLimit,
  SHARED_LAYOUT,
} from '../../src/shared/shared-state.js';
import { MAX_BUCKETS, MAX_CLUSTERS, MAX_ENDPOINTS } from '../../src/shared/limits.js';
import { SlotRegistry } from '../../src/shared/stats-layout.js';
import { CONTROL_CELLS, WorkerGang, type BucketWorkerJob } from '../helpers/bucket-worker.js';

const WORKERS = 4;

/** A buffer big enough for endpoint slots 0..slots-1 of the real layout. */
function endpointBuffer(slots = 2): SharedArrayBuffer {
  return new SharedArrayBuffer((SHARED_LAYOUT.endpoint(slots - 1) + ENDPOINT_CELLS) * 4);
}

t.test('layout regions follow each other without overlap', async (t) => {
  const L = SHARED_LAYOUT;
  t.equal(L.cluster(0), 0, `cluster slot 0 starts at 0: got ${L.cluster(0)}`);
  t.equal(L.cluster(3) - L.cluster(2), CLUSTER_CELLS, `cluster slots are ${CLUSTER_CELLS} cells apart: got ${L.cluster(3) - L.cluster(2)}`);
  t.equal(L.cluster(MAX_CLUSTERS - 1) + CLUSTER_CELLS, L.endpointStart, `endpoints start right after the last cluster slot: ${L.cluster(MAX_CLUSTERS - 1) + CLUSTER_CELLS} vs ${L.endpointStart}`);
  t.equal(L.endpoint(MAX_ENDPOINTS - 1) + ENDPOINT_CELLS, L.bucketStart, `buckets start right after the last endpoint slot: ${L.endpoint(MAX_ENDPOINTS - 1) + ENDPOINT_CELLS} vs ${L.bucketStart}`);
  t.ok(L.bucket(MAX_BUCKETS - 1) < L.globalStart, `the last bucket (${L.bucket(MAX_BUCKETS - 1)}) lies before the global cells (${L.globalStart})`);
  t.ok(L.globalStart < L.keyedStart && L.keyedStart < L.cells, `global < keyed < end: ${L.globalStart} < ${L.keyedStart} < ${L.cells}`);
  t.ok(ClusterCell.HealthGeneration < CLUSTER_CELLS, 'every ClusterCell fits in a cluster slot');
  t.ok(Math.max(...Object.values(EndpointCell)) < ENDPOINT_CELLS, 'every EndpointCell fits in an endpoint slot');
  const buffer = L.allocate();
  t.equal(buffer.byteLength, L.cells * 4, `allocate() gives ${L.cells} cells of 4 bytes: got ${buffer.byteLength} bytes`);
});

t.test('ResourceLimit, single-threaded', async (t) => {
  const cells = new Int32Array(new SharedArrayBuffer(4 * 4));
  const limit = new ResourceLimit(cells, 2);
  const got = [limit.tryAcquire(3), limit.tryAcquire(3), limit.tryAcquire(3), limit.tryAcquire(3)];
  t.same(got, [true, true, true, false], `max 3: three acquires succeed, the fourth is refused: got ${got.join(',')}`);
  t.equal(limit.used, 3, `used: expected 3, got ${limit.used}`);
  t.equal(cells[2], 3, `a refused acquire takes its increment back: cell expected 3, got ${cells[2]}`);
  t.same([cells[0], cells[1], cells[3]], [0, 0, 0], 'neighbouring cells untouched');
  limit.release();
  t.equal(limit.used, 2, `after one release: expected 2, got ${limit.used}`);
  t.equal(limit.tryAcquire(3), true, 'a released unit can be acquired again');
  t.equal(limit.tryAcquire(2), false, `a lower max applies at once: 3 used, max 2 refused (used ${limit.used})`);
  limit.acquire();
  t.equal(limit.used, 4, `acquire() takes one past the max: expected 4, got ${limit.used}`);
  t.equal(limit.tryAcquire(3), false, 'over the max, tryAcquire keeps refusing');
  for (let i = 0; i < 4; i++) limit.release();
  t.equal(limit.used, 0, `all released: expected 0, got ${limit.used}`);
  t.equal(limit.tryAcquire(0), false, 'max 0 refuses everything');
  limit.release();
  t.equal(cells[2], -1, `an extra release makes the cell negative: expected -1, got ${cells[2]}`);
  t.equal(limit.used, 0, `but used never reports below 0: got ${limit.used}`);
});

t.test('ClusterResources: four resources and the health generation, per cluster slot', async (t) => {
  const cells = new Int32Array(SHARED_LAYOUT.allocate());
  const a = new ClusterResources(cells, 1);
  const b = new ClusterResources(cells, 2);
  a.requests.tryAcquire(10);
  a.pending.tryAcquire(10);
  a.pending.tryAcquire(10);
  a.connections.acquire();
  a.connections.acquire();
  a.connections.acquire();
  a.retries.tryAcquire(10);
  const used = [a.requests.used, a.pending.used, a.connections.used, a.retries.used];
  t.same(used, [1, 2, 3, 1], `requests/pending/connections/retries are separate cells: got ${used.join('/')}`);
  const base = SHARED_LAYOUT.cluster(1);
  const raw = [cells[base + ClusterCell.RqActive], cells[base + ClusterCell.RqPending], cells[base + ClusterCell.CxActive], cells[base + ClusterCell.RetriesActive]];
  t.same(raw, [1, 2, 3, 1], `in ClusterCell order at cluster(1): got ${raw.join('/')}`);
  const other = [b.requests.used, b.pending.used, b.connections.used, b.retries.used];
  t.same(other, [0, 0, 0, 0], `cluster slot 2 is not affected: got ${other.join('/')}`);
  t.equal(a.healthGeneration, 0, `generation starts at 0: got ${a.healthGeneration}`);
  a.bumpHealthGeneration();
  a.bumpHealthGeneration();
  t.equal(a.healthGeneration, 2, `two bumps: expected 2, got ${a.healthGeneration}`);
  t.equal(new ClusterResources(cells, 1).healthGeneration, 2, 'another view of the same slot sees the bumps');
  t.equal(b.healthGeneration, 0, `cluster slot 2's generation is separate: got ${b.healthGeneration}`);
});

t.test('EndpointCells.outcome counts totals, successes and consecutive failures', async (t) => {
  const cells = new Int32Array(endpointBuffer(3));
  const ep = new EndpointCells(cells, 1);
  const writer = new EndpointStateWriter(cells);
  const out = new Int32Array(2);
  // [is5xx, isGateway, expected out after it]
  const steps: [string, boolean, boolean, [number, number]][] = [
    ['200', false, false, [0, 0]],
    ['500', true, false, [1, 0]],
    ['500', true, false, [2, 0]],
    ['503', true, true, [3, 1]],
    ['502', true, true, [4, 2]],
    ['500', true, false, [5, 0]],
    ['504', true, true, [6, 1]],
    ['200', false, false, [0, 0]],
    ['503', true, true, [1, 1]],
  ];
  for (const [status, is5xx, isGateway, want] of steps) {
    ep.outcome(is5xx, isGateway, out);
    t.same([...out], want, `after a ${status}: consecutive 5xx/gateway expected ${want.join('/')}, got ${out.join('/')}`);
  }
  const c5 = writer.read(1, EndpointCell.Consecutive5xx);
  const cg = writer.read(1, EndpointCell.ConsecutiveGateway);
  t.same([c5, cg], [1, 1], `the cells hold the same counts: expected 1/1, got ${c5}/${cg}`);
  const volume = writer.takeVolume(1);
  t.same(volume, { total: 9, success: 2 }, `takeVolume: 9 requests, 2 successes: got ${JSON.stringify(volume)}`);
  const again = writer.takeVolume(1);
  t.same(again, { total: 0, success: 0 }, `takeVolume zeroes what it took: got ${JSON.stringify(again)}`);
  writer.resetConsecutive(1);
  t.same([writer.read(1, EndpointCell.Consecutive5xx), writer.read(1, EndpointCell.ConsecutiveGateway)], [0, 0], 'resetConsecutive zeroes both counters');
  ep.outcome(true, false, out);
  t.same([...out], [1, 0], `counting starts over after a reset: got ${out.join('/')}`);
  const neighbours = [0, 2].flatMap((slot) => Array.from({ length: ENDPOINT_CELLS }, (_, i) => writer.read(slot, i)));
  t.ok(
    neighbours.every((v) => v === 0),
    `slots 0 and 2 untouched: got ${neighbours.join(',')}`,
  );
});

t.test('EndpointCells: active requests, state, trials; EndpointStateWriter', async (t) => {
  const cells = new Int32Array(endpointBuffer(2));
  const ep = new EndpointCells(cells, 1);
  const writer = new EndpointStateWriter(cells);
  ep.requestStarted();
  ep.requestStarted();
  t.equal(ep.active, 2, `two requests started: active expected 2, got ${ep.active}`);
  ep.requestFinished();
  ep.requestFinished();
  ep.requestFinished();
  t.equal(ep.active, 0, `active never reports below 0: got ${ep.active}`);
  t.equal(ep.takeTrial(), false, 'no tokens: no trial');
  writer.setState(1, EndpointState.Probation, 2);
  t.equal(ep.state, EndpointState.Probation, `the worker sees the state the writer set: got ${ep.state}`);
  t.equal(writer.state(1), EndpointState.Probation, `writer.state reads it back: got ${writer.state(1)}`);
  const trials = [ep.takeTrial(), ep.takeTrial(), ep.takeTrial()];
  t.same(trials, [true, true, false], `2 tokens: two trials then none: got ${trials.join(',')}`);
  t.equal(writer.read(1, EndpointCell.ProbationTokens), 0, 'tokens never go below 0');
  writer.setState(1, EndpointState.Ejected | EndpointState.Unhealthy);
  t.equal(ep.state, EndpointState.Ejected | EndpointState.Unhealthy, `bits combine: got ${ep.state}`);
  t.equal(writer.read(1, EndpointCell.ProbationTokens), 0, 'setState without tokens stores 0 tokens');
  for (let i = 0; i < ENDPOINT_CELLS; i++) Atomics.store(cells, SHARED_LAYOUT.endpoint(1) + i, 7);
  writer.clear(1);
  const left = Array.from({ length: ENDPOINT_CELLS }, (_, i) => writer.read(1, i));
  t.same(left, new Array(ENDPOINT_CELLS).fill(0), `clear() zeroes every cell of the slot: got ${left.join(',')}`);
});

t.test('SlotRegistry', async (t) => {
  t.test('names keep their slots; removed names free theirs', async (t) => {
    const reg = new SlotRegistry(10);
    const first = reg.assign(['a', 'b', 'c']);
    t.same(first, { a: 0, b: 1, c: 2 }, `slots in order of first appearance: got ${JSON.stringify(first)}`);
    const again = reg.assign(['c', 'a', 'b']);
    t.same(again, { a: 0, b: 1, c: 2 }, `the same names in another order keep their slots: got ${JSON.stringify(again)}`);
    const fewer = reg.assign(['a', 'c']);
    t.same(fewer, { a: 0, c: 2 }, `b removed: a and c keep theirs: got ${JSON.stringify(fewer)}`);
    t.same([...reg.used.entries()].sort(), [['a', 0], ['c', 2]], `used no longer holds b: got ${JSON.stringify([...reg.used])}`);
  });

  t.test('a new name gets a never-used slot before a freed one', async (t) => {
    const reused: number[] = [];
    const reg = new SlotRegistry(5, (slot) => reused.push(slot));
    reg.assign(['a', 'b', 'c']);
    reg.assign(['a', 'c']); // b frees slot 1
    const got = reg.assign(['a', 'c', 'd', 'b']);
    t.same(got, { a: 0, c: 2, d: 3, b: 4 }, `d and the returning b get never-used slots 3 and 4, not freed slot 1: got ${JSON.stringify(got)}`);
    t.same(reused, [], `onReuse not called for never-used slots: got ${reused.join(',')}`);
  });

  t.test('at capacity, freed slots are reused oldest-first and onReuse is called', async (t) => {
    const reused: number[] = [];
    const reg = new SlotRegistry(4, (slot) => reused.push(slot));
    reg.assign(['a', 'b', 'c', 'd']);
    reg.assign(['a', 'c', 'd']); // frees 1 (b)
    reg.assign(['c', 'd']); // frees 0 (a), later
    t.same(reused, [], 'freeing calls no onReuse');
    const got = reg.assign(['c', 'd', 'x', 'y']);
    t.same(got, { c: 2, d: 3, x: 1, y: 0 }, `x gets the longest-free slot 1, y then slot 0: got ${JSON.stringify(got)}`);
    t.same(reused, [1, 0], `onReuse(1) then onReuse(0), each before its slot is handed out: got ${reused.join(',')}`);
    const back = reg.assign(['x', 'y', 'c', 'a']);
    t.same(back, { x: 1, y: 0, c: 2, a: 3 }, `a returning name gets whatever is free (d's slot 3), not its old one: got ${JSON.stringify(back)}`);
    t.same(reused, [1, 0, 3], `onReuse(3) for it: got ${reused.join(',')}`);
  });

  t.test('exceeding capacity throws', async (t) => {
    const reg = new SlotRegistry(2);
    t.throws(() => reg.assign(['a', 'b', 'c']), /more than 2 slots needed/, 'three names for two slots throw');
    const ok = new SlotRegistry(2);
    ok.assign(['a', 'b']);
    t.same(ok.assign(['c', 'd']), { c: 0, d: 1 }, 'two new names replacing two old ones fit');
    t.throws(() => ok.assign(['c', 'd', 'e']), /more than 2 slots needed/, 'a third name with every slot taken throws');
  });
});

t.test('contention from worker threads on one SharedArrayBuffer', async (t) => {
  const gang = WorkerGang.start(WORKERS);
  t.teardown(() => gang.close());

  t.test('ResourceLimit max 10: never more than 10 holders, no lost updates', async (t) => {
    const max = 10;
    const batch = 6; // two threads running at once already want 12 > 10
    const rounds = 40_000;
    const index = CONTROL_CELLS;
    const holders = index + 1;
    const maxHolders = index + 2;
    const maxCount = index + 3;
    const refused = index + 4;
    const buffer = new SharedArrayBuffer((refused + 1) * 4);
    const cells = new Int32Array(buffer);
    const job: BucketWorkerJob = { kind: 'resource', index, max, rounds, batch, holders, maxHolders, maxCount, refused };
    const acquired = await gang.run(buffer, Array.from({ length: WORKERS }, () => job));
    const total = acquired.reduce((a, b) => a + b, 0);
    const seenHolders = Atomics.load(cells, maxHolders);
    const seenCount = Atomics.load(cells, maxCount);
    const refusals = Atomics.load(cells, refused);
    t.equal(total + refusals, WORKERS * rounds * batch, `every attempt either acquired or refused: ${total} + ${refusals} vs ${WORKERS * rounds * batch}`);
    t.ok(refusals > 0, `the limit was reached: ${refusals} refusals (${total} acquires, per worker ${acquired.join('/')})`);
    t.ok(seenHolders <= max && seenHolders >= batch, `holders never exceeded ${max}: most seen ${seenHolders}`);
    // Add-then-check: a refused acquire's increment is visible until it is taken back, so
    // the raw count can read up to max + (workers − 1); the holders are never over max.
    t.ok(seenCount <= max + WORKERS - 1, `the raw count read after an acquire stays within max + workers − 1 = ${max + WORKERS - 1}: most seen ${seenCount}`);
    const final = Atomics.load(cells, index);
    t.equal(final, 0, `every unit released: final count expected 0, got ${final}`);
    t.equal(Atomics.load(cells, holders), 0, `holders back to 0: got ${Atomics.load(cells, holders)}`);
  });

  t.test('takeTrial: exactly `tokens` trials granted in total', async (t) => {
    for (const [tokens, attempts] of [
      [100, 10_000],
      [100_000, 50_000],
    ]) {
      const slot = 1;
      const buffer = endpointBuffer(2);
      const cells = new Int32Array(buffer);
      new EndpointStateWriter(cells).setState(slot, EndpointState.Probation, tokens);
      const job: BucketWorkerJob = { kind: 'trial', slot, attempts };
      const granted = await gang.run(buffer, Array.from({ length: WORKERS }, () => job));
      const total = granted.reduce((a, b) => a + b, 0);
      t.equal(total, tokens, `${WORKERS} × ${attempts} takeTrial on ${tokens} tokens: expected exactly ${tokens} granted, got ${total} (${granted.join('/')})`);
      const left = Atomics.load(cells, SHARED_LAYOUT.endpoint(slot) + EndpointCell.ProbationTokens);
      t.equal(left, 0, `tokens end at 0, not negative: got ${left}`);
    }
  });

  t.test('outcome counters are exact under contention', async (t) => {
    const slot = 1;
    const count = 50_000;
    const buffer = endpointBuffer(2);
    const cells = new Int32Array(buffer);
    const failing: BucketWorkerJob = { kind: 'outcome', slot, count, is5xx: true, isGateway: true };
    await gang.run(buffer, Array.from({ length: WORKERS }, () => failing));
    const writer = new EndpointStateWriter(cells);
    const c5 = writer.read(slot, EndpointCell.Consecutive5xx);
    const cg = writer.read(slot, EndpointCell.ConsecutiveGateway);
    t.same([c5, cg], [WORKERS * count, WORKERS * count], `only failures: both consecutive counters reach ${WORKERS * count}: got ${c5}/${cg}`);
    const v1 = writer.takeVolume(slot);
    t.same(v1, { total: WORKERS * count, success: 0 }, `total ${WORKERS * count}, success 0: got ${JSON.stringify(v1)}`);
    const ok: BucketWorkerJob = { kind: 'outcome', slot, count, is5xx: false, isGateway: false };
    const mixed = Array.from({ length: WORKERS }, (_, i) => (i % 2 === 0 ? ok : failing));
    await gang.run(buffer, mixed);
    const v2 = writer.takeVolume(slot);
    const successes = (WORKERS / 2) * count;
    t.same(v2, { total: WORKERS * count, success: successes }, `half the workers succeed: total ${WORKERS * count}, success ${successes}: got ${JSON.stringify(v2)}`);
  });
});
