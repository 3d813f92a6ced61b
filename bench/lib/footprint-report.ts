// The memory footprint benchmark's figures and Markdown (bench/footprint.ts): memory
// lines of /proc/<pid>/status, median and max of a series of samples, Remora minus Node's
// floor, worker heaps from the admin `/workers` reply, the targets with their verdicts,
// and the report's tables. Pure, unit-tested in test/unit/footprint-report.test.ts.

import { median, round } from './harness.js';

/** One reading of a process's resident memory, MB (one decimal). VmRSS = anon + file +
 *  shmem: anon is heaps, stacks and malloc; file is mapped files (the node binary, native
 *  addons); shmem is shared memory mappings. */
export interface MemSample {
  readonly rss: number;
  readonly anon: number;
  readonly file: number;
  readonly shmem: number;
}

const FIELDS = ['rss', 'anon', 'file', 'shmem'] as const;
const STATUS_KEYS: Readonly<Record<(typeof FIELDS)[number], string>> = { rss: 'VmRSS', anon: 'RssAnon', file: 'RssFile', shmem: 'RssShmem' };

/** The memory lines of a /proc/<pid>/status text, or null without VmRSS (a kernel
 *  thread, a zombie). A kernel without the Rss* split (before 4.5) gives 0 for them. */
export function parseProcStatus(text: string): MemSample | null {
  const kb = (key: string): number | null => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return m === null ? null : Number(m[1]);
  };
  const rss = kb(STATUS_KEYS.rss);
  if (rss === null) return null;
  const mb = (k: number | null): number => round((k ?? 0) / 1024, 1);
  return { rss: mb(rss), anon: mb(kb(STATUS_KEYS.anon)), file: mb(kb(STATUS_KEYS.file)), shmem: mb(kb(STATUS_KEYS.shmem)) };
}

/** Field by field: `a` minus `b`. */
export function minus(a: MemSample, b: MemSample): MemSample {
  return { rss: round(a.rss - b.rss, 1), anon: round(a.anon - b.anon, 1), file: round(a.file - b.file, 1), shmem: round(a.shmem - b.shmem, 1) };
}

export interface MemSpread {
  /** Each field's median over the samples (the fields need not come from one sample). */
  readonly median: MemSample;
  /** Each field's maximum over the samples. */
  readonly max: MemSample;
  readonly samples: number;
}

/** Median and max of each field, or null without samples. */
export function spreadOf(samples: readonly MemSample[]): MemSpread | null {
  if (samples.length === 0) return null;
  const of = (f: (xs: number[]) => number): MemSample => {
    const pick = (k: (typeof FIELDS)[number]): number => round(f(samples.map((s) => s[k])), 1);
    return { rss: pick('rss'), anon: pick('anon'), file: pick('file'), shmem: pick('shmem') };
  };
  return { median: of(median), max: of((xs) => Math.max(...xs)), samples: samples.length };
}

/** A worker thread's V8 heap, MB; null where the worker did not answer. */
export interface WorkerHeap {
  readonly worker: number;
  readonly usedMb: number | null;
  readonly totalMb: number | null;
}

/** Bytes to MB with one decimal, as the admin `/workers` endpoint rounds. */
export function heapMb(bytes: number): number {
  return Math.round(bytes / 104857.6) / 10;
}

/** Worker heaps from the body of Remora's admin `GET /workers` (`workers[].slot`,
 *  `heap_used_mb`, `heap_total_mb`); throws on a body of another shape. */
export function parseWorkersReply(body: string): WorkerHeap[] {
  const parsed = JSON.parse(body) as { workers?: unknown };
  if (!Array.isArray(parsed.workers)) throw new Error(`/workers: expected {"workers": [...]}, got ${body.slice(0, 200)}`);
  const num = (x: unknown): number | null => (typeof x === 'number' ? x : null);
  return parsed.workers.map((w: unknown, i: number) => {
    const o = (typeof w === 'object' && w !== null ? w : {}) as Record<string, unknown>;
    return { worker: num(o.slot) ?? i, usedMb: num(o.heap_used_mb), totalMb: num(o.heap_total_mb) };
  });
}

/** `--workers 1,2,4`: distinct integers 1..256, in the order given. */
export function parseWorkerCounts(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const n = Number(part.trim());
    if (part.trim() === '' || !Number.isInteger(n) || n < 1 || n > 256) throw new Error(`--workers: expected worker counts 1..256 separated by commas, got "${text}"`);
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

// ---- one worker count -----------------------------------------------------------------

/** The listener a floor's workers run: Node's http server (llhttp, what Remora's default
 *  strict codec serves with) or uWebSockets.js loaded as Remora loads it. */
export type FloorKind = 'http' | 'uws';

export const FLOOR_TEXT: Readonly<Record<FloorKind, string>> = {
  http: 'node:http floor',
  uws: 'uWS floor',
};

export interface FloorRun {
  readonly kind: FloorKind;
  /** Right after every worker listened. */
  readonly start: MemSample | null;
  /** --settle s after every worker listened. */
  readonly steady: MemSample | null;
  /** Each worker's heap at the steady sample. */
  readonly heaps: readonly WorkerHeap[];
  /** Why this floor has no figures (the uWS build does not load on this runtime, …). */
  readonly error: string | null;
}

export interface LoadRun {
  readonly spread: MemSpread | null;
  readonly rps: number;
  readonly errors: number;
}

export interface RemoraRun {
  /** 1 s after the ready line. */
  readonly start: MemSample | null;
  /** --settle s after the ready line, no traffic. */
  readonly steadyIdle: MemSample | null;
  /** Every 100 ms under closed-loop load. */
  readonly load: LoadRun;
  /** --settle s after the load stopped. */
  readonly afterLoad: MemSample | null;
  readonly heapsIdle: readonly WorkerHeap[];
  readonly heapsAfterLoad: readonly WorkerHeap[];
  /** Whether the uWebSockets.js addon was mapped into Remora (/proc/<pid>/maps). */
  readonly uwsMapped: boolean;
}

export interface WorkerCountRun {
  readonly workers: number;
  readonly floors: readonly FloorRun[];
  readonly remora: RemoraRun;
}

/** The floor Remora is compared with: the one whose listener Remora ran (uWS when its
 *  addon was mapped into Remora, else node:http), if it measured; else any that did. */
export function likeFloor(run: WorkerCountRun): FloorRun | null {
  const want: FloorKind = run.remora.uwsMapped ? 'uws' : 'http';
  const ok = run.floors.filter((f) => f.steady !== null);
  return ok.find((f) => f.kind === want) ?? ok[0] ?? null;
}

/** Remora's steady idle minus a floor's steady sample, or null where either is missing. */
export function overFloor(remora: RemoraRun, floor: FloorRun): MemSample | null {
  return remora.steadyIdle !== null && floor.steady !== null ? minus(remora.steadyIdle, floor.steady) : null;
}

// ---- targets ------------------------------------------------------------------------

/** Targets, VmRSS in MB, with TARGET_WORKERS workers. */
export const TARGET_WORKERS = 2;
export const IDLE_TARGET_MB = 75;
export const LOAD_TARGET_MB = 90;

export type FootprintVerdict = 'met' | 'not met' | 'not measured';

export interface FootprintCheck {
  readonly target: string;
  readonly verdict: FootprintVerdict;
  readonly detail: string;
}

/** Idle: the steady idle sample. Under load: the peak (max) VmRSS under load. */
export function checkTargets(runs: readonly WorkerCountRun[]): FootprintCheck[] {
  const run = runs.find((r) => r.workers === TARGET_WORKERS);
  const idleTarget = `idle VmRSS ≤ ${IDLE_TARGET_MB} MB with ${TARGET_WORKERS} workers`;
  const loadTarget = `VmRSS under load ≤ ${LOAD_TARGET_MB} MB with ${TARGET_WORKERS} workers`;
  if (run === undefined) {
    const detail = `no ${TARGET_WORKERS}-worker run (add ${TARGET_WORKERS} to --workers)`;
    return [
      { target: idleTarget, verdict: 'not measured', detail },
      { target: loadTarget, verdict: 'not measured', detail },
    ];
  }
  const r = run.remora;
  const startText = r.start !== null ? `; the start sample, 1 s after ready, was ${r.start.rss} MB` : '';
  const idle: FootprintCheck =
    r.steadyIdle === null
      ? { target: idleTarget, verdict: 'not measured', detail: 'no steady idle sample' }
      : {
          target: idleTarget,
          verdict: r.steadyIdle.rss <= IDLE_TARGET_MB ? 'met' : 'not met',
          detail: `steady idle ${r.steadyIdle.rss} MB${startText}${r.afterLoad !== null ? `; idle after load ${r.afterLoad.rss} MB` : ''}`,
        };
  const s = r.load.spread;
  const load: FootprintCheck =
    s === null
      ? { target: loadTarget, verdict: 'not measured', detail: 'no sample under load' }
      : {
          target: loadTarget,
          verdict: s.max.rss <= LOAD_TARGET_MB ? 'met' : 'not met',
          detail: `peak ${s.max.rss} MB (median ${s.median.rss} MB over ${s.samples} samples, ${r.load.rps} req/s)`,
        };
  return [idle, load];
}

// ---- Markdown -------------------------------------------------------------------------

const cells = (m: MemSample | null): string => (m === null ? '- | - | -' : `${m.rss} | ${m.anon} | ${m.file}`);
const signedCell = (x: number): string => (x > 0 ? `+${x}` : String(x));
const signedCells = (m: MemSample | null): string => (m === null ? '- | - | -' : `${signedCell(m.rss)} | ${signedCell(m.anon)} | ${signedCell(m.file)}`);
const heapCell = (h: WorkerHeap | undefined): string => (h === undefined || h.usedMb === null || h.totalMb === null ? '-' : `${h.usedMb} / ${h.totalMb}`);

export function targetLines(checks: readonly FootprintCheck[]): string[] {
  return [
    '## Targets',
    '',
    ...checks.map((c) => `- ${c.target}: **${c.verdict}** — ${c.detail}.`),
    '',
    `"Idle" is the steady idle sample (taken once V8's memory reducer has had time to shrink the idle heaps); the start sample is shown beside it because it can read higher. "Under load" is the peak of the samples taken every 100 ms under load.`,
    '',
  ];
}

/** One row per worker count: the figures to compare at a glance. */
export function summaryLines(runs: readonly WorkerCountRun[]): string[] {
  return [
    '## Summary (VmRSS, MB)',
    '',
    '| workers | floor steady | Remora start | Remora steady idle | over the floor (anon / file) | under load median / max | idle after load |',
    '|---|---|---|---|---|---|---|',
    ...runs.map((run) => {
      const r = run.remora;
      const floor = likeFloor(run);
      const over = floor !== null ? overFloor(r, floor) : null;
      const s = r.load.spread;
      const row = [
        run.workers,
        floor?.steady ? `${floor.steady.rss} (${FLOOR_TEXT[floor.kind]})` : '-',
        r.start?.rss ?? '-',
        r.steadyIdle?.rss ?? '-',
        over !== null ? `**${signedCell(over.rss)}** (${signedCell(over.anon)} / ${signedCell(over.file)})` : '-',
        s !== null ? `${s.median.rss} / ${s.max.rss}` : '-',
        r.afterLoad?.rss ?? '-',
      ];
      return `| ${row.join(' | ')} |`;
    }),
    '',
  ];
}

/** The tables for one worker count. */
export function runLines(run: WorkerCountRun, settleS: number, loadSeconds: number, connections: number): string[] {
  const r = run.remora;
  const s = r.load.spread;
  const like = likeFloor(run);
  const floorRows = run.floors.flatMap((f) =>
    f.error !== null
      ? [`| ${FLOOR_TEXT[f.kind]} | - | - | - |`]
      : [`| ${FLOOR_TEXT[f.kind]}, start (workers listening) | ${cells(f.start)} |`, `| ${FLOOR_TEXT[f.kind]}, steady (${settleS} s) | ${cells(f.steady)} |`],
  );
  const overRows = run.floors.flatMap((f) => {
    const over = overFloor(r, f);
    if (over === null) return [];
    const bold = like !== null && f.kind === like.kind;
    return [`| ${bold ? '**' : ''}Remora over the ${FLOOR_TEXT[f.kind]}${bold ? '**' : ''} (steady idle − floor steady) | ${signedCells(over)} |`];
  });
  const floorErrors = run.floors.filter((f) => f.error !== null).map((f) => `${FLOOR_TEXT[f.kind]}: not measured: ${f.error}.  `);
  const workers = Array.from({ length: run.workers }, (_, i) => i);
  const heapOf = (hs: readonly WorkerHeap[], i: number): WorkerHeap | undefined => hs.find((h) => h.worker === i) ?? hs[i];
  return [
    `## ${run.workers} worker${run.workers === 1 ? '' : 's'}`,
    '',
    '| sample | VmRSS MB | RssAnon MB | RssFile MB |',
    '|---|---|---|---|',
    ...floorRows,
    `| Remora, start (1 s after ready) | ${cells(r.start)} |`,
    `| Remora, steady idle (${settleS} s after ready) | ${cells(r.steadyIdle)} |`,
    `| Remora, under load, median | ${cells(s?.median ?? null)} |`,
    `| Remora, under load, max | ${cells(s?.max ?? null)} |`,
    `| Remora, idle after load (${settleS} s after it stopped) | ${cells(r.afterLoad)} |`,
    ...overRows,
    '',
    ...floorErrors,
    `Load: ${loadSeconds} s closed loop, ${connections} connections: ${r.load.rps} req/s, ${r.load.errors} errors, ${s?.samples ?? 0} samples (each column's median and max separately). The uWebSockets.js addon was ${r.uwsMapped ? '' : 'not '}mapped into Remora, so the ${like !== null ? FLOOR_TEXT[like.kind] : 'floor'} is the like-for-like one (in bold).`,
    '',
    'Worker V8 heap, MB used / total:',
    '',
    `| worker | Remora steady idle | Remora idle after load | ${run.floors.map((f) => `${FLOOR_TEXT[f.kind]} steady`).join(' | ')} |`,
    `|---|---|---|${run.floors.map(() => '---|').join('')}`,
    ...workers.map((i) => `| ${i} | ${heapCell(heapOf(r.heapsIdle, i))} | ${heapCell(heapOf(r.heapsAfterLoad, i))} | ${run.floors.map((f) => heapCell(heapOf(f.heaps, i))).join(' | ')} |`),
    '',
  ];
}
