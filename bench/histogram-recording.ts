// Micro-benchmark: the price of recording a latency in a worker, and of merging the
// workers' histograms on the main thread, for the two designs Remora chose between:
// its shared bucket counters (StatsRecorder.observe on a LAYOUT slab: binary search
// over RECORD_BUCKETS_US, two Atomics.add) and hdr-histogram-js (32-bit JS, packed,
// and the WebAssembly builds when available).
//
//   npm run bench:histogram -- [--rounds 7] [--records 1000000] [--merge-rounds 5]
//                              [--merge-workers 16] [--merge-clusters 100]
//                              [--per-interval 1000] [--no-merge] [--no-pin]
//                              [--merge-tasks merge-remora,merge-hdr-js,merge-hdr-packed,merge-hdr-wasm]
//
// Latencies are log-normal around 100 µs (σ 0.5) with a 2% tail around 2 ms (σ 1),
// seeded, shared by every task. Every task runs in its own worker thread (one histogram
// class per V8 isolate, as in a Remora worker); rounds are interleaved across tasks
// after one untimed warm-up round each. The process is pinned to core 1 (not with
// --no-pin). "bytes per histogram" is the footprint after the run (packed: content-dependent).
// Recording: ns per record = round time / records; median of rounds with min–max.
// Merging: merge-workers × (1 listener + merge-clusters × 2) histograms, per-interval
// values recorded into each between rounds (untimed); see bench/lib/histogram-tasks.ts.
// At the defaults (3,216 histograms) merge-hdr-packed is by far the slowest task; drop
// it with --merge-tasks to shorten a run.
// Writes bench/results/histogram-recording-<timestamp>.{json,md}.

import { Worker } from 'node:worker_threads';
import { parseArgs } from 'node:util';
import { MACHINE, canPin, commandLine, log, pinSelf, round, runMain, showSpread, spread, writeResults, type Spread } from './lib/harness.js';
import { MERGE_TASKS, RECORD_TASKS, wasmAvailable, type Measures } from './lib/histogram-tasks.js';
import type { WorkerInput, WorkerRequest } from './lib/histogram-worker.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '7' },
    records: { type: 'string', default: '1000000' },
    'merge-rounds': { type: 'string', default: '5' },
    'merge-tasks': { type: 'string', default: MERGE_TASKS.join(',') },
    'merge-workers': { type: 'string', default: '16' },
    'merge-clusters': { type: 'string', default: '100' },
    'per-interval': { type: 'string', default: '1000' },
    'no-merge': { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
  },
  strict: true,
});

const records = Number(args.records);
const rounds = Number(args.rounds);
const mergeRounds = Number(args['merge-rounds']);
const mergeWorkers = Number(args['merge-workers']);
const mergeClusters = Number(args['merge-clusters']);
const perInterval = Number(args['per-interval']);
const pin = canPin(args['no-pin']);
const live: TaskWorker[] = [];

/** Seeded PRNG (mulberry32), so every run records the same latencies. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function latencies(n: number): SharedArrayBuffer {
  const rand = prng(20261127);
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const sab = new SharedArrayBuffer(n * 4);
  const out = new Uint32Array(sab);
  for (let i = 0; i < n; i++) {
    const tail = rand() < 0.02;
    const us = (tail ? 2000 : 100) * Math.exp((tail ? 1 : 0.5) * normal());
    out[i] = Math.min(60_000_000, Math.max(1, Math.round(us)));
  }
  return sab;
}

function describe(sab: SharedArrayBuffer): Measures {
  const xs = new Uint32Array(sab).slice().sort();
  const at = (p: number): number => xs[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];
  return { p50_us: at(50), p90_us: at(90), p99_us: at(99), p999_us: at(99.9), max_us: xs[xs.length - 1] };
}

/** One task in its own worker thread; `call` runs a round (or fetches info). */
class TaskWorker {
  private readonly worker: Worker;

  constructor(
    readonly name: string,
    values: SharedArrayBuffer,
  ) {
    const data: WorkerInput = { task: name, values, records, workers: mergeWorkers, clusters: mergeClusters, perInterval };
    this.worker = new Worker(new URL('./lib/histogram-worker.js', import.meta.url), { workerData: data });
    live.push(this);
  }

  call(req: WorkerRequest): Promise<Measures> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.worker.once('error', onError);
      this.worker.once('message', (m: Measures) => {
        this.worker.off('error', onError);
        resolve(m);
      });
      this.worker.postMessage(req);
    });
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

interface TaskResult {
  readonly info: Measures;
  readonly raw: Measures[];
  readonly summary: Record<string, Spread>;
}

function summarize(raw: Measures[]): Record<string, Spread> {
  const keys = Object.keys(raw[0] ?? {});
  return Object.fromEntries(keys.map((k) => [k, spread(raw.map((m) => m[k]), 2)]));
}

/** Runs `n` interleaved rounds over `names` (one untimed warm-up round first). */
async function runTasks(names: readonly string[], n: number, values: SharedArrayBuffer, label: string): Promise<Record<string, TaskResult>> {
  const workers = names.map((name) => new TaskWorker(name, values));
  const raw: Record<string, Measures[]> = Object.fromEntries(names.map((name) => [name, []]));
  for (const w of workers) await w.call('round');
  for (let r = 0; r < n; r++) {
    log(`${label} round ${r + 1}/${n}`);
    for (const w of workers) raw[w.name].push(await w.call('round'));
  }
  const out: Record<string, TaskResult> = {};
  for (const w of workers) {
    out[w.name] = { info: await w.call('info'), raw: raw[w.name], summary: summarize(raw[w.name]) };
    await w.terminate();
  }
  return out;
}

function recordTable(rec: Record<string, TaskResult>): string[] {
  const base = rec.remora.summary.ns_per_record.median;
  return [
    '| method | ns per record, median (min–max) | vs remora | bytes per histogram |',
    '|---|---|---|---|',
    ...Object.entries(rec).map(([name, r]) => {
      const s = r.summary.ns_per_record;
      return `| ${name} | ${showSpread(s)} | ${round(s.median / base, 2)}× | ${r.info.histogram_bytes} |`;
    }),
  ];
}

function mergeTable(merge: Record<string, TaskResult>): string[] {
  const rows: string[] = [];
  for (const [name, r] of Object.entries(merge)) {
    for (const [k, s] of Object.entries(r.summary)) {
      if (k !== 'total_count') rows.push(`| ${name} | ${r.info.histograms} | ${k} | ${showSpread(s)} |`);
    }
  }
  return ['| method | histograms | measure | median (min–max) |', '|---|---|---|---|', ...rows];
}

async function main(): Promise<void> {
  if (pin) pinSelf(1);
  const wasm = wasmAvailable();
  const values = latencies(records);
  const recordTasks = RECORD_TASKS.filter((t) => wasm || !t.includes('wasm'));
  log(`recording: ${recordTasks.join(', ')}; ${records} records × ${rounds} rounds; pinning ${pin ? 'on' : 'off'}`);
  const record = await runTasks(recordTasks, rounds, values, 'record');
  const mergeTasks = args['merge-tasks']!.split(',').filter((t) => MERGE_TASKS.includes(t) && (wasm || !t.includes('wasm')));
  const merge = args['no-merge'] ? {} : await runTasks(mergeTasks, mergeRounds, values, 'merge');

  const when = new Date().toISOString();
  const command = commandLine('bench:histogram');
  const distribution = describe(values);
  const result = { when, command, machine: MACHINE, pinned: pin, wasm, records, rounds, merge_rounds: mergeRounds, merge_workers: mergeWorkers, merge_clusters: mergeClusters, per_interval: perInterval, distribution, record, merge };
  const lines = [
    `# Histogram recording and merging — ${when}`,
    '',
    `Command: \`${command}\`  `,
    `Machine: ${MACHINE}; pinning ${pin ? 'core 1' : 'off'}; hdr WebAssembly ${wasm ? 'available' : 'unavailable'}  `,
    `Latencies (µs): p50 ${distribution.p50_us}, p90 ${distribution.p90_us}, p99 ${distribution.p99_us}, p99.9 ${distribution.p999_us}, max ${distribution.max_us}.`,
    '',
    `## Recording (${records} records per round, ${rounds} rounds)`,
    '',
    ...recordTable(record),
    '',
  ];
  if (!args['no-merge']) {
    lines.push(`## Merging on the main thread (${mergeWorkers} workers × (1 + ${mergeClusters} × 2) histograms, ${perInterval} values each per round, ${mergeRounds} rounds)`, '');
    lines.push('Remora: `fold_ms` = StatsReader.fold(), `fold_and_snapshot_ms` = fold + every histogram snapshot (what a scrape reads). hdr: `encode_ms` = encodeIntoCompressedBase64 of every worker histogram (workers\' cost), `decode_add_ms` = decode + add into aggregates (main thread), `add_ms` = add without encoding (lower bound).', '');
    lines.push(...mergeTable(merge), '');
  }
  writeResults('histogram-recording', when, result, lines);
}

runMain(main, () => {
  for (const w of live) void w.terminate();
});
