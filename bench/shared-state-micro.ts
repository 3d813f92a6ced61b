// Micro-benchmark of the shared-state operations on the request path, under contention:
// 1, 2 and 4 worker threads hammer the SAME SharedArrayBuffer (laid out as Remora's,
// src/shared/shared-state.ts) at once.
//
//   npm run bench:shared-state -- [--rounds 5] [--ms 500] [--threads 1,2,4] [--keys 10000]
//
// Cases (all on the real code from dist/src/shared/):
//   atomics-shared   Atomics.add on one cell that every thread uses (reference: one
//                    contended read-modify-write)
//   atomics-own      Atomics.add on a cell of each thread's own, 128 bytes apart
//                    (reference: the same instruction without sharing a cache line)
//   resource-limit   ResourceLimit.tryAcquire(1024) + release() on one cell (a circuit
//                    breaker's max_requests, paid by every request)
//   token-bucket     tryTake on one bucket (an unkeyed rate limit)
//   keyed-hot        KeyedBuckets.tryTake on ONE key (a per-IP limit with one client)
//   keyed-10k        KeyedBuckets.tryTake cycling over 10,000 distinct keys (each thread
//                    from its own offset; the keys are inserted before the first round,
//                    so this measures lookups + takes, not inserts)
// Buckets hold 1,000,000,000 tokens refilled every second (nothing is refused). The clock
// (Date.now → tick, seconds) is read once per batch of 1024 operations, as a request
// reads it once for all its limits; the stop flag is checked at the same time.
//
// Per thread count, the threads are started once (JIT warm-up: one discarded round per
// case), then for each round every case runs in turn: the main thread resets the state,
// releases all threads at once (Atomics.notify on a start word, a barrier), lets them run
// `ms` milliseconds, raises a stop flag, and collects each thread's operations and
// elapsed time. Reported per case and thread count, median over rounds (min–max):
//   - ns/op per thread: a thread's elapsed wall time / its operations (what one caller
//     pays per operation, waiting for the cache line included);
//   - CPU ns/op: min(threads, cores) / total throughput. With more threads than cores
//     (4 threads on a 2-core host) a thread's wall time includes time descheduled, so
//     this is the figure to compare there; otherwise the two agree.
//   - total Mops/s over all threads.
// Writes bench/results/shared-state-<timestamp>.{json,md}. Run after `npm run build`
// (the worker threads load this file from dist/).

import os from 'node:os';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { KeyedBuckets } from '../src/shared/keyed-buckets.js';
import { ClusterCell, ResourceLimit, SHARED_LAYOUT } from '../src/shared/shared-state.js';
import { currentTick, initBucket, tryTake, type BucketParams } from '../src/shared/token-bucket.js';
import { MACHINE, commandLine, log, median, round, runMain, writeResults, type Spread } from './lib/harness.js';

const CASES = ['atomics-shared', 'atomics-own', 'resource-limit', 'token-bucket', 'keyed-hot', 'keyed-10k'] as const;
type CaseName = (typeof CASES)[number];

const CASE_LABELS: Record<CaseName, string> = {
  'atomics-shared': 'Atomics.add, one shared cell (reference)',
  'atomics-own': 'Atomics.add, own cell per thread (reference, no sharing)',
  'resource-limit': 'ResourceLimit tryAcquire + release',
  'token-bucket': 'token bucket tryTake, one bucket',
  'keyed-hot': 'KeyedBuckets.tryTake, one hot key',
  'keyed-10k': 'KeyedBuckets.tryTake, 10,000 keys',
};

const PARAMS: BucketParams = { maxTokens: 1_000_000_000, tokensPerFill: 1_000_000_000, fillIntervalMs: 1000 };
const MAX_REQUESTS = 1024;
const BATCH = 1024;
const HOT_LIMIT_ID = 1;
const MANY_LIMIT_ID = 2;
const HOT_KEY = '127.0.0.1';
/** Cells used by the cases (the real layout's regions). */
const BUCKET_BASE = SHARED_LAYOUT.bucket(0);
const RESOURCE_INDEX = SHARED_LAYOUT.cluster(0) + ClusterCell.RqActive;
const SHARED_ADD_INDEX = SHARED_LAYOUT.cluster(1) + ClusterCell.RqActive;
/** 32 cells (128 bytes) apart per thread: never the same or an adjacent cache line. */
function ownAddIndex(thread: number): number {
  return SHARED_LAYOUT.cluster(4 + thread * 4);
}

/** Control words (their own buffer, away from the measured cells). */
const Ctl = { Start: 0, Stop: 16 } as const;
const CTL_CELLS = 32;

interface WorkerInit {
  readonly cells: SharedArrayBuffer;
  readonly ctl: SharedArrayBuffer;
  readonly thread: number;
  readonly threads: number;
  readonly epochMs: number;
  readonly keys: readonly string[];
}

interface RunRequest {
  readonly case: CaseName;
  /** The Start word's value to wait for. */
  readonly startGen: number;
}

interface RunResult {
  readonly ops: number;
  readonly elapsedNs: number;
  readonly refused: number;
}

// ---------------------------------------------------------------------------
// Worker side

function workerMain(init: WorkerInit): void {
  const cells = new Int32Array(init.cells);
  const ctl = new Int32Array(init.ctl);
  const keyed = new KeyedBuckets(cells, SHARED_LAYOUT.keyedStart, SHARED_LAYOUT.keyedEntries, SHARED_LAYOUT.globalStart);
  const resource = new ResourceLimit(cells, RESOURCE_INDEX);
  const ownIndex = ownAddIndex(init.thread);
  const keys = init.keys;
  let keyAt = Math.floor((init.thread * keys.length) / init.threads);
  let tick = 0;
  let nowSec = 0;
  let refused = 0;

  // One kernel per case, each a monomorphic loop of n operations.
  const kernels: Record<CaseName, (n: number) => void> = {
    'atomics-shared': (n) => {
      for (let i = 0; i < n; i++) Atomics.add(cells, SHARED_ADD_INDEX, 1);
    },
    'atomics-own': (n) => {
      for (let i = 0; i < n; i++) Atomics.add(cells, ownIndex, 1);
    },
    'resource-limit': (n) => {
      for (let i = 0; i < n; i++) {
        if (resource.tryAcquire(MAX_REQUESTS)) resource.release();
        else refused++;
      }
    },
    'token-bucket': (n) => {
      for (let i = 0; i < n; i++) if (tryTake(cells, BUCKET_BASE, PARAMS, tick) < 0) refused++;
    },
    'keyed-hot': (n) => {
      for (let i = 0; i < n; i++) if (keyed.tryTake(HOT_LIMIT_ID, HOT_KEY, PARAMS, tick, nowSec) < 0) refused++;
    },
    'keyed-10k': (n) => {
      let k = keyAt;
      for (let i = 0; i < n; i++) {
        if (keyed.tryTake(MANY_LIMIT_ID, keys[k], PARAMS, tick, nowSec) < 0) refused++;
        k = k + 1 === keys.length ? 0 : k + 1;
      }
      keyAt = k;
    },
  };

  parentPort!.on('message', (req: RunRequest) => {
    const kernel = kernels[req.case];
    refused = 0;
    // Start barrier: every thread sleeps on the Start word until the main thread bumps it.
    Atomics.wait(ctl, Ctl.Start, req.startGen - 1);
    let ops = 0;
    const t0 = process.hrtime.bigint();
    for (;;) {
      const now = Date.now();
      tick = currentTick(now, init.epochMs, PARAMS.fillIntervalMs);
      nowSec = Math.floor(now / 1000);
      kernel(BATCH);
      ops += BATCH;
      if (Atomics.load(ctl, Ctl.Stop) !== 0) break;
    }
    const elapsedNs = Number(process.hrtime.bigint() - t0);
    const res: RunResult = { ops, elapsedNs, refused };
    parentPort!.postMessage(res);
  });
  parentPort!.postMessage('up');
}

// ---------------------------------------------------------------------------
// Main side

interface CaseRound {
  readonly ns_per_op_per_thread: number;
  readonly cpu_ns_per_op: number;
  readonly mops: number;
  readonly refused: number;
  readonly per_thread: RunResult[];
}

interface CaseSummary {
  readonly case: CaseName;
  readonly threads: number;
  readonly ns_per_op_per_thread: Spread;
  readonly cpu_ns_per_op: Spread;
  readonly mops: Spread;
  readonly refused: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function spreadOf(xs: readonly number[], digits: number): Spread {
  return { median: round(median(xs), digits), min: round(Math.min(...xs), digits), max: round(Math.max(...xs), digits) };
}

class Pool {
  private gen = 0;

  private constructor(
    private readonly workers: Worker[],
    private readonly ctl: Int32Array,
  ) {}

  static async start(n: number, cells: SharedArrayBuffer, ctlBuf: SharedArrayBuffer, epochMs: number, keys: readonly string[]): Promise<Pool> {
    const workers: Worker[] = [];
    const ups: Promise<void>[] = [];
    for (let t = 0; t < n; t++) {
      const init: WorkerInit = { cells, ctl: ctlBuf, thread: t, threads: n, epochMs, keys };
      const w = new Worker(new URL(import.meta.url), { workerData: init });
      ups.push(new Promise((resolve, reject) => {
        w.once('message', () => resolve());
        w.once('error', reject);
      }));
      workers.push(w);
    }
    await Promise.all(ups);
    return new Pool(workers, new Int32Array(ctlBuf));
  }

  /** Runs `c` on every thread at once for `ms` ms. */
  async run(c: CaseName, ms: number): Promise<RunResult[]> {
    const startGen = ++this.gen;
    Atomics.store(this.ctl, Ctl.Stop, 0);
    const results = this.workers.map((w) => new Promise<RunResult>((resolve, reject) => {
      w.once('message', (m: RunResult) => resolve(m));
      w.once('error', reject);
    }));
    const req: RunRequest = { case: c, startGen };
    for (const w of this.workers) w.postMessage(req);
    // Give every thread time to reach Atomics.wait (a thread that arrives late finds the
    // Start word already bumped and does not wait at all: it just starts a little later).
    await sleep(20);
    Atomics.store(this.ctl, Ctl.Start, startGen);
    Atomics.notify(this.ctl, Ctl.Start);
    await sleep(ms);
    Atomics.store(this.ctl, Ctl.Stop, 1);
    const out = await Promise.all(results);
    for (const w of this.workers) w.removeAllListeners('message').removeAllListeners('error');
    return out;
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function manyKeys(n: number): string[] {
  // IPv4-looking client addresses, as a per-IP limit would see.
  return Array.from({ length: n }, (_, i) => `10.${(i >>> 16) & 0xff}.${(i >>> 8) & 0xff}.${i & 0xff}`);
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      ms: { type: 'string', default: '500' },
      threads: { type: 'string', default: '1,2,4' },
      keys: { type: 'string', default: '10000' },
    },
    strict: true,
  });
  const rounds = Number(args.rounds);
  const ms = Number(args.ms);
  const threadCounts = args.threads!.split(',').map(Number);
  const cores = os.availableParallelism();
  const keys = manyKeys(Number(args.keys));

  const cellsBuf = SHARED_LAYOUT.allocate();
  const cells = new Int32Array(cellsBuf);
  const ctlBuf = new SharedArrayBuffer(CTL_CELLS * 4);
  const epochMs = Date.now();
  const keyed = new KeyedBuckets(cells, SHARED_LAYOUT.keyedStart, SHARED_LAYOUT.keyedEntries, SHARED_LAYOUT.globalStart);
  const tickNow = (): number => currentTick(Date.now(), epochMs, PARAMS.fillIntervalMs);
  // Insert every key once (and the hot one) so rounds measure lookups and takes.
  const nowSec = Math.floor(Date.now() / 1000);
  keyed.tryTake(HOT_LIMIT_ID, HOT_KEY, PARAMS, tickNow(), nowSec);
  for (const k of keys) keyed.tryTake(MANY_LIMIT_ID, k, PARAMS, tickNow(), nowSec);
  const insertsBefore = keyed.inserts;

  /** Fresh state before every run: full buckets, no resource held. */
  const reset = (): void => {
    initBucket(cells, BUCKET_BASE, PARAMS, tickNow());
    Atomics.store(cells, RESOURCE_INDEX, 0);
  };

  const raw: Record<string, CaseRound[]> = {};
  const summary: CaseSummary[] = [];
  let resourceLeak = 0;
  for (const n of threadCounts) {
    log(`${n} thread(s): starting`);
    const pool = await Pool.start(n, cellsBuf, ctlBuf, epochMs, keys);
    try {
      for (const c of CASES) {
        reset();
        await pool.run(c, Math.min(ms, 200)); // JIT warm-up, discarded
      }
      for (let r = 0; r < rounds; r++) {
        log(`${n} thread(s): round ${r + 1}/${rounds}`);
        for (const c of CASES) {
          reset();
          const per = await pool.run(c, ms);
          resourceLeak += Math.abs(Atomics.load(cells, RESOURCE_INDEX));
          const ops = per.reduce((s, p) => s + p.ops, 0);
          const elapsedNs = per.reduce((s, p) => s + p.elapsedNs, 0) / per.length;
          const perThread = per.reduce((s, p) => s + p.elapsedNs / p.ops, 0) / per.length;
          const opsPerNs = ops / elapsedNs;
          (raw[`${c}/${n}`] ??= []).push({
            ns_per_op_per_thread: perThread,
            cpu_ns_per_op: Math.min(n, cores) / opsPerNs,
            mops: opsPerNs * 1000,
            refused: per.reduce((s, p) => s + p.refused, 0),
            per_thread: per,
          });
        }
      }
    } finally {
      await pool.stop();
    }
    for (const c of CASES) {
      const rows = raw[`${c}/${n}`];
      summary.push({
        case: c,
        threads: n,
        ns_per_op_per_thread: spreadOf(rows.map((x) => x.ns_per_op_per_thread), 1),
        cpu_ns_per_op: spreadOf(rows.map((x) => x.cpu_ns_per_op), 1),
        mops: spreadOf(rows.map((x) => x.mops), 1),
        refused: rows.reduce((s, x) => s + x.refused, 0),
      });
    }
  }
  const insertsDuring = keyed.inserts - insertsBefore;

  const when = new Date().toISOString();
  const command = commandLine('bench:shared-state');
  const find = (c: CaseName, n: number): CaseSummary | undefined => summary.find((s) => s.case === c && s.threads === n);
  const cell = (s: CaseSummary | undefined, pick: (s: CaseSummary) => Spread): string => {
    if (s === undefined) return '-';
    const v = pick(s);
    return `${v.median} (${v.min}–${v.max})`;
  };
  const tableFor = (title: string, pick: (s: CaseSummary) => Spread): string[] => [
    `### ${title}`,
    '',
    `| operation | ${threadCounts.map((n) => `${n} thread${n > 1 ? 's' : ''}`).join(' | ')} |`,
    `|---|${threadCounts.map(() => '---').join('|')}|`,
    ...CASES.map((c) => `| ${CASE_LABELS[c]} | ${threadCounts.map((n) => cell(find(c, n), pick)).join(' | ')} |`),
    '',
  ];
  const refusedTotal = summary.reduce((s, x) => s + x.refused, 0);
  const lines = [
    `# Shared-state operations under contention — ${when}`,
    '',
    `Command: \`${command}\`  `,
    `Machine: ${MACHINE}  `,
    `Worker threads hammer one SharedArrayBuffer (Remora's layout) at once, released together by a start barrier; ${ms} ms per case per round, ${rounds} rounds (cases interleaved within a round) after a discarded warm-up round; median (min–max) over rounds. Clock read once per ${BATCH} operations. Buckets: 1,000,000,000 tokens per 1 s (never refuse).`,
    cores < Math.max(...threadCounts)
      ? `This host has ${cores} cores: with more threads than cores, "ns/op per thread" includes time a thread spends descheduled; compare "CPU ns/op" there.`
      : `This host has ${cores} cores: every thread has a core of its own.`,
    '',
    ...tableFor('ns per operation, per thread (wall time / operations)', (s) => s.ns_per_op_per_thread),
    ...tableFor(`CPU ns per operation (min(threads, ${cores} cores) / total throughput)`, (s) => s.cpu_ns_per_op),
    ...tableFor('Total throughput, million operations/s (all threads)', (s) => s.mops),
    `Refused takes (should be 0): ${refusedTotal}. Resource cell left non-zero after runs (should be 0): ${resourceLeak}. Keyed inserts during the runs (keys were inserted before; should be 0): ${insertsDuring}.`,
  ];
  const result = {
    when,
    command,
    machine: MACHINE,
    cores,
    rounds,
    ms_per_run: ms,
    threads: threadCounts,
    batch: BATCH,
    keys: keys.length,
    params: PARAMS,
    cases: CASE_LABELS,
    summary,
    checks: { refused: refusedTotal, resource_leak: resourceLeak, keyed_inserts_during_runs: insertsDuring },
    raw,
  };
  writeResults('shared-state', when, result, lines);
}

if (isMainThread) {
  runMain(main, () => {});
} else {
  workerMain(workerData as WorkerInit);
}
