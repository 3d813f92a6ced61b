// Worker thread for the shared-memory contention tests (token-bucket, keyed-buckets):
// spins at a start barrier in the shared buffer so all workers begin together, then
// hammers a token bucket, a keyed table entry or a plain counter, and posts how many
// takes were admitted.

import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { tryTake, type BucketParams } from '../../src/shared/token-bucket.js';
import { KeyedBuckets } from '../../src/shared/keyed-buckets.js';

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
  | { readonly kind: 'add'; readonly index: number; readonly count: number };

/** One round's message to a worker: the shared buffer (CONTROL_CELLS first) and its job. */
export interface BucketWorkerRound {
  readonly buffer: SharedArrayBuffer;
  readonly job: BucketWorkerJob;
}

export interface BucketWorkerResult {
  readonly admitted: number;
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
 * Main thread side: a fixed set of workers, started once (each loads the TypeScript
 * sources, which takes seconds) and reused for every round. Workers inherit the test
 * process's execArgv, so the loader that runs the test also loads this file.
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
    return new WorkerGang(Array.from({ length: size }, () => new Worker(new URL(import.meta.url))));
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
