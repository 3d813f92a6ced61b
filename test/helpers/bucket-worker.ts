// Worker thread for the shared-memory contention tests (token-bucket, keyed-buckets,
// shared-state): spins at a start barrier in the shared buffer so all workers begin
// together, then hammers a token bucket, a keyed table entry, a plain counter, a
// circuit-breaker resource, probation trial tokens or endpoint outcome counters, and
// posts how many takes were admitted.

import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { tryTake, type BucketParams } from '../../src/shared/token-bucket.js';
import { KeyedBuckets } from '../../src/shared/keyed-buckets.js';
import { EndpointCells, ResourceLimit } from '../../src/shared/shared-state.js';

/** Control cells at the start of the shared buffer. */
export const Control = {
  /** Each worker adds 1 when it reaches the barrier. */
  Ready: 0,
  /** The test stores 1 to start them all. */
  Go: 1,
} as const;
export const CONTROL_CELLS = 4;

export type BucketWorkerJob =
  | {
      readonly kind: 'bucket';
      readonly base: number;
      readonly params: BucketParams;
      readonly takes: number;
      /** Tick for take i is floor(i / iterationsPerTick); 0 = the tick stays 0. */
      readonly iterationsPerTick: number;
      /** When >= 0: cells[marksStart + left] += 1 for every admitted take. */
      readonly marksStart: number;
    }
  | {
      readonly kind: 'keyed';
      readonly start: number;
      readonly entries: number;
      readonly globalBase: number;
      readonly limitId: number;
      readonly key: string;
      readonly params: BucketParams;
      readonly takes: number;
    }
  | { readonly kind: 'add'; readonly index: number; readonly count: number }
  | {
      /** Rounds of: tryAcquire up to `batch` units of a ResourceLimit, then release them. */
      readonly kind: 'resource';
      readonly index: number;
      readonly max: number;
      readonly rounds: number;
      readonly batch: number;
      /** Cell counting holders: +1 after a successful acquire, −1 before its release. */
      readonly holders: number;
      /** Cell raised (CAS) to the most holders seen. */
      readonly maxHolders: number;
      /** Cell raised (CAS) to the most the resource cell read right after an acquire. */
      readonly maxCount: number;
      /** Cell counting refused acquires. */
      readonly refused: number;
    }
  | { readonly kind: 'trial'; readonly slot: number; readonly attempts: number }
  | { readonly kind: 'outcome'; readonly slot: number; readonly count: number; readonly is5xx: boolean; readonly isGateway: boolean };

/** One round's message to a worker: the shared buffer (CONTROL_CELLS first) and its job. */
export interface BucketWorkerRound {
  readonly buffer: SharedArrayBuffer;
  readonly job: BucketWorkerJob;
}

export interface BucketWorkerResult {
  readonly admitted: number;
}

/** Raises cells[index] to at least `value` (compare-and-swap loop). */
function raiseTo(cells: Int32Array, index: number, value: number): void {
  for (let seen = Atomics.load(cells, index); seen < value; seen = Atomics.load(cells, index)) {
    if (Atomics.compareExchange(cells, index, seen, value) === seen) return;
  }
}

function run(cells: Int32Array, job: BucketWorkerJob): number {
  let admitted = 0;
  switch (job.kind) {
    case 'bucket':
      for (let i = 0; i < job.takes; i++) {
        const tick = job.iterationsPerTick > 0 ? Math.floor(i / job.iterationsPerTick) : 0;
        const left = tryTake(cells, job.base, job.params, tick);
        if (left >= 0) {
          admitted++;
          if (job.marksStart >= 0) Atomics.add(cells, job.marksStart + left, 1);
        }
      }
      break;
    case 'keyed': {
      const table = new KeyedBuckets(cells, job.start, job.entries, job.globalBase);
      for (let i = 0; i < job.takes; i++) {
        if (table.tryTake(job.limitId, job.key, job.params, 0, 1000) >= 0) admitted++;
      }
      break;
    }
    case 'add':
      for (let i = 0; i < job.count; i++) Atomics.add(cells, job.index, 1);
      admitted = job.count;
      break;
    case 'resource': {
      const limit = new ResourceLimit(cells, job.index);
      for (let r = 0; r < job.rounds; r++) {
        let held = 0;
        for (let b = 0; b < job.batch; b++) {
          if (!limit.tryAcquire(job.max)) {
            Atomics.add(cells, job.refused, 1);
            continue;
          }
          raiseTo(cells, job.maxCount, Atomics.load(cells, job.index));
          raiseTo(cells, job.maxHolders, Atomics.add(cells, job.holders, 1) + 1);
          held++;
        }
        for (; held > 0; held--) {
          Atomics.sub(cells, job.holders, 1);
          limit.release();
          admitted++;
        }
      }
      break;
    }
    case 'trial': {
      const endpoint = new EndpointCells(cells, job.slot);
      for (let i = 0; i < job.attempts; i++) if (endpoint.takeTrial()) admitted++;
      break;
    }
    case 'outcome': {
      const endpoint = new EndpointCells(cells, job.slot);
      const out = new Int32Array(2);
      for (let i = 0; i < job.count; i++) endpoint.outcome(job.is5xx, job.isGateway, out);
      admitted = job.count;
      break;
    }
  }
  return admitted;
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  port.on('message', (round: BucketWorkerRound) => {
    const cells = new Int32Array(round.buffer);
    Atomics.add(cells, Control.Ready, 1);
    // Spin rather than Atomics.wait: a woken thread takes tens of microseconds to run,
    // long enough for the first one to finish a small job alone.
    while (Atomics.load(cells, Control.Go) === 0);
    const result: BucketWorkerResult = { admitted: run(cells, round.job) };
    port.postMessage(result);
  });
}

/**
 * Main thread side: a fixed set of workers, started once and reused for every round.
 * Workers get the test process's execArgv less tap's own hooks (@tapjs/mock,
 * @tapjs/processinfo: each costs a module-hooks thread per worker, seconds on a small
 * machine, and a worker needs neither), so a TypeScript loader, if one runs the test,
 * also loads this file.
 */
export class WorkerGang {
  private failure: Error | undefined;
  private lastBuffer: SharedArrayBuffer | undefined;
  private readonly exits: Promise<void>[];

  private constructor(private readonly workers: readonly Worker[]) {
    this.exits = workers.map(
      (w, i) =>
        new Promise<void>((resolve) => {
          w.once('error', (err: Error) => {
            this.failure ??= err;
          });
          w.once('exit', (code) => {
            this.failure ??= new Error(`worker ${i} exited with code ${code}`);
            resolve();
          });
        }),
    );
  }

  static start(size: number): WorkerGang {
    const execArgv = process.execArgv.filter((arg) => !arg.includes('@tapjs/'));
    return new WorkerGang(Array.from({ length: size }, () => new Worker(new URL(import.meta.url), { execArgv })));
  }

  get size(): number {
    return this.workers.length;
  }

  /** Runs one job per worker on `buffer`, releasing them at once when every worker has
   *  reached the barrier; resolves with each worker's admitted count. */
  async run(buffer: SharedArrayBuffer, jobs: readonly BucketWorkerJob[], timeoutMs = 90_000): Promise<number[]> {
    if (jobs.length !== this.workers.length) throw new Error(`expected ${this.workers.length} jobs, got ${jobs.length}`);
    if (this.failure) throw this.failure;
    const cells = new Int32Array(buffer);
    Atomics.store(cells, Control.Ready, 0);
    Atomics.store(cells, Control.Go, 0);
    this.lastBuffer = buffer;
    const results = this.workers.map(
      (w) =>
        new Promise<number>((resolve) => {
          w.once('message', (m: BucketWorkerResult) => resolve(m.admitted));
        }),
    );
    this.workers.forEach((w, i) => {
      const round: BucketWorkerRound = { buffer, job: jobs[i] };
      w.postMessage(round);
    });
    const deadline = Date.now() + timeoutMs;
    const admitted: number[] = [];
    const poll = (): Error | undefined => {
      if (this.failure) return this.failure;
      if (Date.now() > deadline) return new Error(`workers did not finish within ${timeoutMs} ms (${Atomics.load(cells, Control.Ready)} reached the barrier)`);
      return undefined;
    };
    while (Atomics.load(cells, Control.Ready) < jobs.length) {
      const err = poll();
      if (err) throw err;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    Atomics.store(cells, Control.Go, 1);
    for (const r of results) {
      // Race each result against failure/timeout polling so a dead worker cannot hang us.
      for (;;) {
        const got = await Promise.race([r, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 50))]);
        if (got !== undefined) {
          admitted.push(got);
          break;
        }
        const err = poll();
        if (err) throw err;
      }
    }
    return admitted;
  }

  /** Stops every worker and waits for all of them to exit. */
  async close(): Promise<void> {
    if (this.lastBuffer) {
      // Release any worker left at the barrier by a failed round.
      const cells = new Int32Array(this.lastBuffer);
      Atomics.store(cells, Control.Go, 1);
    }
    await Promise.all(this.workers.map((w) => w.terminate()));
    await Promise.all(this.exits);
  }
}
