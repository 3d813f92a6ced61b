// Unit tests for a worker's collection once traffic stops (workers/idle-heap-trim.ts): the
// schedule (only after work was seen, after the quiet time in quiet looks, 30 by default,
// only when the heap holds TRIM_SLACK_BYTES more than was live after the last
// collection, once per burst, never when turned off), with the event loop and heap
// figures given by the test; and V8's real collection in a worker thread giving a grown
// young generation back.

import t from 'tap';
import { Worker } from 'node:worker_threads';
import { pino } from 'pino';
import { BUSY_UTILISATION, IdleHeapTrim, QUIET_SECONDS as DEFAULT_QUIET, TRIM_SLACK_BYTES, type Collector, type IdleTrimProbe } from '../../workers/idle-heap-trim.js';

const MB = 1048576;

/** A thread whose utilisation and heap the test sets; its collector brings the heap down
 *  to `live`. */
function fakeThread(total: number, used: number) {
  const state = { utilisation: 0, total, used, live: used, collections: 0, scavenges: 0 };
  const probe: IdleTrimProbe = { utilisation: () => state.utilisation, heap: () => ({ total: state.total, used: state.used }) };
  const gc = {
    minor: () => {
      state.scavenges++;
    },
    full: () => {
      state.collections++;
      state.used = state.live;
      state.total = state.live + 1 * MB;
    },
  };
  return { state, probe, gc };
}

const silent = pino({ level: 'silent' });

type Thread = ReturnType<typeof fakeThread>['state'];

/** One busy look that leaves `total` bytes reserved, then `quiet` quiet looks. */
function burstThenQuiet(trim: IdleHeapTrim, state: Thread, total: number, quiet: number, utilisation = 0.9): void {
  state.utilisation = utilisation;
  state.total = total;
  trim.look();
  state.utilisation = 0;
  for (let i = 0; i < quiet; i++) trim.look();
}
/** The quiet time these tests set (worker_limits.idle_heap_trim_after_ms 5000). */
const QUIET_SECONDS = 5;

function trimmer(probe: IdleTrimProbe, gc: Collector | null): IdleHeapTrim {
  const trim = new IdleHeapTrim(silent, probe, gc);
  trim.setQuietTime(QUIET_SECONDS * 1000);
  return trim;
}

t.test('one collection after a burst, once the worker has been quiet long enough', async (t) => {
  const { state, probe, gc } = fakeThread(9 * MB, 7 * MB);
  const trim = trimmer(probe, gc);
  for (let i = 0; i < 20; i++) trim.look();
  t.equal(state.collections, 0, 'no work seen since start: no collection, however long it is quiet');

  state.utilisation = 0.6; // a burst of traffic grows the heap
  state.total = 18 * MB;
  state.used = 11 * MB;
  for (let i = 0; i < 3; i++) trim.look();
  t.equal(state.collections, 0, 'none while busy');
  state.utilisation = BUSY_UTILISATION / 2;
  trim.look();
  t.equal(state.scavenges, 1, 'a scavenge on the first quiet look');
  for (let i = 0; i < QUIET_SECONDS - 2; i++) trim.look();
  t.equal(state.scavenges, 1, 'and only then');
  t.equal(state.collections, 0, `no full collection before ${QUIET_SECONDS} quiet looks in a row`);
  trim.look();
  t.equal(state.collections, 1, `one after ${QUIET_SECONDS} quiet looks`);
  t.equal(trim.trims, 1, 'counted');
  for (let i = 0; i < 20; i++) trim.look();
  t.equal(state.collections, 1, 'and no more until work is seen again');
});

t.test('a busy look in the quiet stretch starts the count again', async (t) => {
  const { state, probe, gc } = fakeThread(9 * MB, 7 * MB);
  const trim = trimmer(probe, gc);
  trim.look();
  burstThenQuiet(trim, state, 20 * MB, QUIET_SECONDS - 1);
  burstThenQuiet(trim, state, 20 * MB, QUIET_SECONDS - 1, BUSY_UTILISATION); // at the threshold counts as work
  t.equal(state.collections, 0, `expected no collection ${QUIET_SECONDS - 1} quiet looks after the last busy one, saw ${state.collections}`);
  trim.look();
  t.equal(state.collections, 1, 'one once the quiet stretch is long enough');
});

t.test('the first quiet spell always collects; later ones only when the burst left enough', async (t) => {
  const { state, probe, gc } = fakeThread(9 * MB, 7 * MB);
  const trim = trimmer(probe, gc);
  trim.look();
  burstThenQuiet(trim, state, 9 * MB, QUIET_SECONDS); // start-up work, little grown
  t.equal(state.collections, 1, 'the first quiet spell after work collects (nothing was collected since start)');
  t.equal(state.total, 8 * MB, 'leaving the live heap and a little');
  burstThenQuiet(trim, state, 7 * MB + TRIM_SLACK_BYTES - 1, QUIET_SECONDS * 3); // just under the slack over the live heap
  t.equal(state.collections, 1, `expected no second with one byte less than ${TRIM_SLACK_BYTES / MB} MB over the live heap, saw ${state.collections}`);
  burstThenQuiet(trim, state, 7 * MB + TRIM_SLACK_BYTES, QUIET_SECONDS);
  t.equal(state.collections, 2, 'one with the slack reached');
});

t.test('by default after 30 quiet looks', async (t) => {
  const { state, probe, gc } = fakeThread(9 * MB, 7 * MB);
  const trim = new IdleHeapTrim(silent, probe, gc);
  trim.look();
  burstThenQuiet(trim, state, 40 * MB, DEFAULT_QUIET - 1);
  t.equal(DEFAULT_QUIET, 30, 'the default quiet time is 30 s');
  t.equal(state.collections, 0, `none after ${DEFAULT_QUIET - 1} quiet looks`);
  trim.look();
  t.equal(state.collections, 1, `one after ${DEFAULT_QUIET}`);
});

t.test("the trim's own scavenge is not taken for work", async (t) => {
  // A probe that reports the utilisation of the window since its last call, as the
  // thread's does; the scavenge takes 5 % of the window it runs in (a loaded host).
  const state = { busy: 0, total: 9 * MB, used: 7 * MB, collections: 0, scavenges: 0 };
  const probe: IdleTrimProbe = {
    utilisation: () => {
      const u = state.busy;
      state.busy = 0;
      return u;
    },
    heap: () => ({ total: state.total, used: state.used }),
  };
  const gc = {
    minor: () => {
      state.scavenges++;
      state.busy += 0.05;
    },
    full: () => {
      state.collections++;
      state.busy += 0.05;
      state.total = state.used + 1 * MB;
    },
  };
  const trim = trimmer(probe, gc);
  trim.look();
  state.busy = 0.9;
  state.total = 40 * MB;
  trim.look();
  for (let i = 0; i < QUIET_SECONDS * 2; i++) trim.look();
  t.equal(state.collections, 1, `expected one collection after ${QUIET_SECONDS} quiet looks, saw ${state.collections} (scavenges: ${state.scavenges})`);
  t.equal(state.scavenges, 1, `expected one scavenge, saw ${state.scavenges}`);
});

t.test('turned off: never', async (t) => {
  const { state, probe, gc } = fakeThread(9 * MB, 7 * MB);
  const trim = trimmer(probe, gc);
  trim.setQuietTime(0);
  trim.look();
  burstThenQuiet(trim, state, 40 * MB, QUIET_SECONDS * 3);
  t.equal(state.collections, 0, `expected none with idle_heap_trim_after_ms 0, saw ${state.collections}`);
});

t.test('a runtime without the collector: nothing happens, nothing throws', async (t) => {
  const { state, probe } = fakeThread(9 * MB, 7 * MB);
  const trim = trimmer(probe, null);
  trim.look();
  burstThenQuiet(trim, state, 40 * MB, QUIET_SECONDS * 2);
  t.equal(trim.trims, 0, 'no collection counted');
});

t.test('in a real worker thread, the collection gives a grown young generation back', async (t) => {
  // The worker grows its young generation (16 MiB limit, as Remora's default), goes
  // quiet, and lets the trim look once a second with the thread's own probe and
  // collector. The burst is seen by the thread's real event-loop utilisation; after it
  // the probe reports quiet, because on a loaded host V8's own collection tasks (its
  // memory reducer, run on the thread's event loop) can push a quiet second over 2 %,
  // which starts the count again: that schedule is tested with the fake thread above.
  const url = new URL('../../workers/idle-heap-trim.js', import.meta.url).href;
  const source = `
    const { parentPort } = require('node:worker_threads');
    const v8 = require('node:v8');
    const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
    import(${JSON.stringify(url)}).then(async ({ IdleHeapTrim, threadProbe }) => {
      const lines = [];
      const log = { debug: (o, msg) => lines.push(msg) };
      const thread = threadProbe();
      let quiet = false;
      let lastSeen = 0;
      const probe = {
        utilisation: () => {
          const u = thread.utilisation();
          if (quiet) return 0;
          lastSeen = u;
          return u;
        },
        heap: () => thread.heap(),
      };
      const trim = new IdleHeapTrim(log, probe);
      trim.setQuietTime(10000); // the least the config allows: a 9 s span between the scavenge and the collection, past V8's 5 s allocation-rate window
      trim.look();
      let keep = [];
      const t0 = Date.now();
      while (Date.now() - t0 < 1500) { keep.push({ a: new Array(20).fill(1), s: 'x' + Math.random() }); if (keep.length > 3000) keep = []; }
      keep = null;
      const grown = newSpace();
      trim.look(); // the burst, seen as work
      const burstSeen = lastSeen;
      quiet = true;
      for (let i = 0; i < 16 && trim.trims === 0; i++) { await new Promise((r) => setTimeout(r, 1000)); trim.look(); }
      parentPort.postMessage({ grown, after: newSpace(), trims: trim.trims, lines, burstSeen });
    });`;
  type Result = { grown: number; after: number; trims: number; lines: string[]; burstSeen: number };
  const result = await new Promise<Result>((resolve, reject) => {
    const w = new Worker(source, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: 16 } });
    w.once('message', (m) => {
      resolve(m as Result);
      void w.terminate();
    });
    w.once('error', reject);
  });
  t.ok(result.burstSeen >= BUSY_UTILISATION, `the thread's utilisation over the burst is work: expected ≥ ${BUSY_UTILISATION}, saw ${result.burstSeen}`);
  t.equal(result.trims, 1, `one collection once quiet (log: ${JSON.stringify(result.lines)})`);
  t.ok(result.grown >= 8 * MB, `the burst grew the young generation to ≥ 8 MB (saw ${(result.grown / MB).toFixed(1)} MB)`);
  t.ok(result.after <= result.grown / 4, `the collection gave most of it back: expected ≤ ${(result.grown / 4 / MB).toFixed(1)} MB, saw ${(result.after / MB).toFixed(1)} MB`);
});
