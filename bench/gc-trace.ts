// Tail latency next to GC pauses: Remora (1 worker, quick mode) under `node --trace-gc`,
// driven open-loop at each rate while every GC line of every isolate is read off Remora's
// stdout as it arrives. Each worker GC pause is placed on the generator's clock and laid
// beside the per-request latencies: how many of the slowest requests were in flight
// during a worker GC pause, against the same share for all requests.
//
//   npm run bench:gc-trace -- [--rates 1000,5000] [--seconds 20] [--warmup 3]
//                             [--young-generation-mb N] [--no-pin] [--out DIR]
//
// Layout: generator and upstream on core 0, Remora (every thread) on core 1, when pinning
// works. A fresh Remora per rate, warmed up at that rate, then measured. Load: GET, 100 B
// responses, 16 keep-alive connections (bench/lib/open-loop.ts, latency from the
// scheduled send time). --young-generation-mb N runs Remora from a config file equal to
// quick mode's plus `worker_limits.young_generation_mb: N`.
// Writes <out>/gc-trace-<stamp>.{json,md} and gc-trace-<rate>-<stamp>.svg (out:
// bench/results). The parsing, clock alignment and correlation are bench/lib/gc-log.ts.
// Long file: the run, the report and the SVG belong to this one benchmark.

import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { basename, join, resolve } from 'node:path';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { StringDecoder } from 'node:string_decoder';
import { parseArgs } from 'node:util';
import {
  LineSplitter,
  Samples,
  assignRoles,
  classifyLine,
  expectedOverlap,
  isolateTraces,
  latencyStats,
  logHistogram,
  nearestPause,
  overlapFlags,
  overlapShare,
  overlapsPause,
  pausesIn,
  slowest,
  summarizePauses,
  timeBuckets,
  type ArrivedGc,
  type GcFamily,
  type GcPause,
  type GcSummary,
  type IsolateClock,
  type LatencyStats,
  type LogBin,
  type Share,
  type TimeBucket,
} from './lib/gc-log.js';
import { MACHINE, Processes, ROOT, canPin, commandLine, log, pinSelf, revision, round, runMain, sleep, stampOf, startRemoraRun, startUpstream, writeConfig, writeResults } from './lib/harness.js';
import { runOpenLoop } from './lib/open-loop.js';
import { escapeXml, niceStep } from './lib/svg.js';

const { values: args } = parseArgs({
  options: {
    rates: { type: 'string', default: '1000,5000' },
    seconds: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    'young-generation-mb': { type: 'string' },
    'no-pin': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
  strict: true,
});

function positive(name: string, text: string | undefined): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${text}`);
  return n;
}

const rates = args.rates!.split(',').map((r) => positive('rates', r.trim()));
const seconds = positive('seconds', args.seconds);
const warmupS = Number(args.warmup);
if (!Number.isFinite(warmupS) || warmupS < 0) throw new Error(`--warmup must be 0 or more seconds, got ${args.warmup}`);
const youngMb = args['young-generation-mb'] === undefined ? null : Number(args['young-generation-mb']);
if (youngMb !== null && !(Number.isInteger(youngMb) && youngMb >= 0 && youngMb <= 1024)) {
  throw new Error(`--young-generation-mb must be an integer 0..1024 (worker_limits.young_generation_mb), got ${args['young-generation-mb']}`);
}
const outDir = resolve(args.out ?? join(ROOT, 'bench/results'));
const pin = canPin(args['no-pin'] === true);
const CONNECTIONS = 16;
/** Also reported: overlap with each pause widened by this much on both sides (the trace's
 *  clock is whole ms; see the report's notes). */
const SLACK_MS = 1;
const TOP = 10;

/** Processes that can watch the next child's output from its first byte: harness's
 *  startRemoraRun returns only the pid and ports, and its wait for the ready line drops
 *  everything before it. */
class TappedProcesses extends Processes {
  private tap: ((child: ChildProcess) => void) | null = null;

  tapNext(tap: (child: ChildProcess) => void): void {
    this.tap = tap;
  }

  override start(cores: number | string | null, cmd: string, argv: string[]): ChildProcess {
    const child = super.start(cores, cmd, argv);
    const tap = this.tap;
    this.tap = null;
    tap?.(child);
    return child;
  }
}

const procs = new TappedProcesses(pin);
const tmp = mkdtempSync(join(os.tmpdir(), 'remora-gc-trace-'));

// ---- Remora's stdout ------------------------------------------------------------------

interface StdoutCapture {
  readonly gc: ArrivedGc[];
  logLines: number;
  gcOther: string[];
  other: string[];
  exited: Promise<void>;
}

/** Reads every stdout line of `child`, each timestamped (performance.now()) on arrival. */
function capture(child: ChildProcess): StdoutCapture {
  const cap: StdoutCapture = { gc: [], logLines: 0, gcOther: [], other: [], exited: new Promise((r) => child.once('exit', () => r())) };
  const decoder = new StringDecoder('utf8');
  const lines = new LineSplitter();
  const onLine =
    (arrivalMs: number) =>
    (text: string): void => {
      const l = classifyLine(text);
      if (l.type === 'gc') cap.gc.push({ ...l.gc, arrivalMs });
      else if (l.type === 'log') cap.logLines++;
      else if (l.type === 'gc-other') cap.gcOther.push(l.text);
      else if (l.text.trim() !== '') cap.other.push(l.text);
    };
  child.stdout!.on('data', (d: Buffer) => lines.push(decoder.write(d), onLine(performance.now())));
  child.stdout!.on('end', () => lines.end(onLine(performance.now())));
  return cap;
}

async function stopRemora(pid: number, cap: StdoutCapture): Promise<void> {
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return;
  }
  const killed = setTimeout(() => process.kill(pid, 'SIGKILL'), 15000);
  await cap.exited;
  clearTimeout(killed);
}

// ---- the generator's own GC -----------------------------------------------------------

const GC_KIND_NAMES: Readonly<Record<number, [string, GcFamily]>> = {
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: ['minor', 'scavenge'],
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: ['major', 'mark-compact'],
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: ['incremental', 'other'],
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: ['weak callbacks', 'other'],
};

/** Collects this process's GC pauses (the generator's clock, exact) until stopped. */
function watchGeneratorGc(): { pauses: GcPause[]; stop: () => void } {
  const pauses: GcPause[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      // A 'gc' entry carries { detail: { kind, flags } } (typed only on marks and measures).
      const detail = (e as unknown as { readonly detail?: { readonly kind?: number } }).detail;
      const [kind, family] = GC_KIND_NAMES[detail?.kind ?? -1] ?? ['other', 'other'];
      pauses.push({ kind, family, startMs: e.startTime, endMs: e.startTime + e.duration, pauseMs: e.duration, reason: '', incremental: null });
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  return { pauses, stop: () => obs.disconnect() };
}

// ---- one rate -------------------------------------------------------------------------

interface SlowRequest {
  readonly sent_s: number;
  readonly latency_us: number;
  readonly nearest_worker_gc: { readonly kind: string; readonly pause_ms: number; readonly distance_ms: number; readonly relation: string } | null;
  readonly generator_gc_during: boolean;
}

interface IsolateRow {
  readonly isolate: string;
  readonly role: 'main' | 'worker' | 'other';
  readonly lines: number;
  readonly start_ms_before_window: number;
  readonly spread_ms: number;
  readonly late_lines: number;
  readonly max_late_ms: number;
}

interface RateResult {
  readonly rate: number;
  readonly achieved_rate: number;
  readonly requests: number;
  readonly errors: number;
  readonly window_s: number;
  /** µs */
  readonly latency: LatencyStats;
  readonly worker_gc: GcSummary;
  readonly main_gc: GcSummary;
  readonly generator_gc: GcSummary;
  readonly worker_gc_pct_of_window: number;
  readonly above_p99_overlapping_worker_gc: Share;
  /** The share expected by chance for requests as long as those above p99 (0..1). */
  readonly above_p99_expected_worker_gc: number;
  readonly all_overlapping_worker_gc: Share;
  readonly above_p99_overlapping_worker_gc_within_1ms: Share;
  readonly all_overlapping_worker_gc_within_1ms: Share;
  readonly above_p99_overlapping_generator_gc: Share;
  readonly all_overlapping_generator_gc: Share;
  readonly above_p99_expected_generator_gc: number;
  readonly slowest: SlowRequest[];
  readonly isolates: IsolateRow[];
  readonly identification: { readonly main_started_first: string | null; readonly first_printed: string | null; readonly lowest_address: string | null; readonly agree: boolean };
  readonly stdout: { readonly gc_lines: number; readonly log_lines: number; readonly unparsed_gc_lines: string[]; readonly other_lines: string[] };
  readonly svg: string;
}

function remoraArgs(upstreamPort: number, rate: number): string[] {
  if (youngMb === null) return ['--listen', '127.0.0.1:0', '--upstream', `127.0.0.1:${upstreamPort}`, '--workers', '1', '--admin', '127.0.0.1:0'];
  // Quick mode's config (src/cli/remora.ts quickConfig) plus the young generation's limit.
  const config = {
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    worker_limits: { young_generation_mb: youngMb },
    listeners: [
      {
        name: 'main',
        address: '127.0.0.1',
        port: 0,
        virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'all', match: { prefix: '/' }, route: { cluster: 'upstream' } }] }],
      },
    ],
    clusters: [{ name: 'upstream', lb_policy: 'round_robin', protocol: 'http1', endpoints: [{ address: '127.0.0.1', port: upstreamPort }] }],
  };
  return ['--config', writeConfig(tmp, `remora-${rate}`, config)];
}

async function runRate(rate: number, upstreamPort: number, stamp: string, rev: string): Promise<RateResult> {
  let cap: StdoutCapture | null = null;
  procs.tapNext((child) => (cap = capture(child)));
  const remora = await startRemoraRun(procs, 1, remoraArgs(upstreamPort, rate), ['--trace-gc']);
  const out = cap as StdoutCapture | null;
  if (out === null) throw new Error('Remora started without its stdout being watched');
  const port = remora.listeners.main;
  const samples = new Samples(Math.ceil(rate * seconds * 1.05) + 1024);
  const gen = watchGeneratorGc();
  let fromMs: number;
  let toMs: number;
  let errors: number;
  try {
    if (warmupS > 0) {
      log(`${rate} req/s: warm-up for ${warmupS} s`);
      await runOpenLoop({ port, rate, durationMs: warmupS * 1000, connections: CONNECTIONS, warmupMs: 0 });
    }
    log(`${rate} req/s: measuring for ${seconds} s`);
    fromMs = performance.now();
    const summary = await runOpenLoop({ port, rate, durationMs: seconds * 1000, connections: CONNECTIONS, warmupMs: 0, onSample: (t, us) => samples.add(t, us) });
    toMs = performance.now();
    errors = summary.errors;
    await sleep(300); // the last GC lines on their way
  } finally {
    gen.stop();
    await stopRemora(remora.pid, out);
  }

  const traces = isolateTraces(out.gc);
  const roles = assignRoles(traces, fromMs, toMs);
  const pausesOf = (isolate: string | null): readonly GcPause[] => (isolate === null ? [] : (traces.get(isolate)?.pauses ?? []));
  const workerAll = pausesOf(roles.worker);
  const workerIn = pausesIn(workerAll, fromMs, toMs);
  const mainIn = pausesIn(pausesOf(roles.main), fromMs, toMs);
  const genPauses = gen.pauses.slice().sort((a, b) => a.startMs - b.startMs);
  const genIn = pausesIn(genPauses, fromMs, toMs);
  const stats = latencyStats(samples);
  const flags = overlapFlags(samples, workerAll);
  const flagsSlack = overlapFlags(samples, workerAll, SLACK_MS);
  const genFlags = overlapFlags(samples, genPauses);
  const workerGc = summarizePauses(workerIn);
  const windowMs = toMs - fromMs;

  const slow = slowest(samples, TOP).map((i): SlowRequest => {
    const near = nearestPause(workerAll, samples.sentMs(i), samples.doneMs(i));
    return {
      sent_s: round((samples.sentMs(i) - fromMs) / 1000, 4),
      latency_us: round(samples.latencyUs(i)),
      nearest_worker_gc: near === null ? null : { kind: near.pause.kind, pause_ms: near.pause.pauseMs, distance_ms: round(near.distanceMs, 2), relation: near.relation },
      generator_gc_during: overlapsPause(genPauses, samples.sentMs(i), samples.doneMs(i)),
    };
  });
  const role = (iso: string): IsolateRow['role'] => (iso === roles.main ? 'main' : iso === roles.worker ? 'worker' : 'other');
  const isolates = [...traces.values()].map(({ clock: c }: { clock: IsolateClock }) => ({
    isolate: c.isolate,
    role: role(c.isolate),
    lines: c.lines,
    start_ms_before_window: round(fromMs - c.startMs, 1),
    spread_ms: round(c.spreadMs, 3),
    late_lines: c.lateLines,
    max_late_ms: round(c.maxLateMs, 3),
  }));

  const svgName = `gc-trace-${rate}-${stamp}.svg`;
  const bucketMs = Math.max(10, windowMs / 1500);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(
    join(outDir, svgName),
    gcTraceSvg({
      title: `Remora at ${rate} req/s: request latency and GC pauses`,
      subtitle: `${samples.count} requests in ${round(windowMs / 1000, 1)} s; p99 ${round(stats.p99)} µs; worker ${workerGc.count} GC pauses, ${round(workerGc.totalMs, 1)} ms in all, max ${round(workerGc.maxMs, 2)} ms; ${rev}`,
      fromMs,
      toMs,
      buckets: timeBuckets(samples, fromMs, bucketMs),
      bucketMs,
      p99Us: stats.p99,
      worker: workerIn,
      main: mainIn,
      generator: genIn,
      histogram: logHistogram(samples, flags, 10),
    }),
  );
  const pct = (x: number): number => round(x * 100, 1);
  const roundGc = (g: GcSummary): GcSummary => ({
    ...g,
    totalMs: round(g.totalMs, 3),
    maxMs: round(g.maxMs, 3),
    incrementalMs: round(g.incrementalMs, 3),
    byKind: g.byKind.map((k) => ({ ...k, totalMs: round(k.totalMs, 3), maxMs: round(k.maxMs, 3) })),
  });
  return {
    rate,
    achieved_rate: round(samples.count / (seconds || 1)),
    requests: samples.count,
    errors,
    window_s: round(windowMs / 1000, 2),
    latency: { count: stats.count, p50: round(stats.p50, 1), p90: round(stats.p90, 1), p99: round(stats.p99, 1), p999: round(stats.p999, 1), max: round(stats.max, 1), mean: round(stats.mean, 1) },
    worker_gc: roundGc(workerGc),
    main_gc: roundGc(summarizePauses(mainIn)),
    generator_gc: roundGc(summarizePauses(genIn)),
    worker_gc_pct_of_window: pct(workerGc.totalMs / windowMs),
    above_p99_overlapping_worker_gc: overlapShare(samples, flags, stats.p99),
    above_p99_expected_worker_gc: round(expectedOverlap(samples, workerAll, stats.p99, fromMs, toMs), 4),
    all_overlapping_worker_gc: overlapShare(samples, flags),
    above_p99_overlapping_worker_gc_within_1ms: overlapShare(samples, flagsSlack, stats.p99),
    all_overlapping_worker_gc_within_1ms: overlapShare(samples, flagsSlack),
    above_p99_overlapping_generator_gc: overlapShare(samples, genFlags, stats.p99),
    all_overlapping_generator_gc: overlapShare(samples, genFlags),
    above_p99_expected_generator_gc: round(expectedOverlap(samples, genPauses, stats.p99, fromMs, toMs), 4),
    slowest: slow,
    isolates,
    identification: {
      main_started_first: roles.main,
      first_printed: roles.firstPrinted,
      lowest_address: roles.lowestAddress,
      agree: roles.main !== null && roles.main === roles.firstPrinted && roles.main === roles.lowestAddress,
    },
    stdout: { gc_lines: out.gc.length, log_lines: out.logLines, unparsed_gc_lines: out.gcOther.slice(0, 5), other_lines: out.other.slice(0, 5) },
    svg: svgName,
  };
}

// ---- SVG ------------------------------------------------------------------------------

const FAMILY_COLOR: Readonly<Record<GcFamily, string>> = { scavenge: '#4e79a7', 'minor-mark-sweep': '#76b7b2', 'mark-compact': '#e15759', other: '#b07aa1' };
const MAIN_COLOR = '#8c8c8c';
const GEN_COLOR = '#59a14f';

interface SvgInput {
  readonly title: string;
  readonly subtitle: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly buckets: readonly TimeBucket[];
  readonly bucketMs: number;
  readonly p99Us: number;
  readonly worker: readonly GcPause[];
  readonly main: readonly GcPause[];
  readonly generator: readonly GcPause[];
  readonly histogram: readonly LogBin[];
}

/** Pauses closer than one pixel merged into one mark (keeps the file small at any rate). */
function pixelGroups(pauses: readonly GcPause[], x: (ms: number) => number): { x0: number; x1: number; n: number; totalMs: number; max: GcPause }[] {
  const out: { x0: number; x1: number; n: number; totalMs: number; max: GcPause }[] = [];
  for (const p of pauses) {
    const x0 = x(p.startMs);
    const x1 = Math.max(x(p.endMs), x0 + 1);
    const last = out[out.length - 1];
    if (last !== undefined && x0 < last.x1 + 1) {
      last.x1 = Math.max(last.x1, x1);
      last.n++;
      last.totalMs += p.pauseMs;
      if (p.pauseMs > last.max.pauseMs) last.max = p;
    } else out.push({ x0, x1, n: 1, totalMs: p.pauseMs, max: p });
  }
  return out;
}

const f1 = (v: number): string => v.toFixed(1);

function fmtUs(us: number): string {
  return us >= 1e6 ? `${+(us / 1e6).toFixed(1)} s` : us >= 1000 ? `${+(us / 1000).toFixed(1)} ms` : `${+us.toFixed(0)} µs`;
}

/** The nearest 1, 2 or 5 × 10^k at or below (`down`) or at or above (`up`) `v` > 0. */
function nice125(v: number, dir: 'up' | 'down'): number {
  const d = 10 ** Math.floor(Math.log10(v) + 1e-9);
  const steps = [1, 2, 5, 10].map((m) => m * d);
  return dir === 'up' ? steps.find((s) => s >= v * (1 - 1e-9))! : steps.filter((s) => s <= v * (1 + 1e-9)).pop()!;
}

function gcTraceSvg(c: SvgInput): string {
  const width = 1200;
  const left = 80;
  const right = 20;
  const plotW = width - left - right;
  const spanMs = Math.max(1, c.toMs - c.fromMs);
  const x = (ms: number): number => left + ((ms - c.fromMs) / spanMs) * plotW;
  const o: string[] = [];
  const text = (tx: number, ty: number, s: string, extra = ''): void => void o.push(`<text x="${f1(tx)}" y="${f1(ty)}"${extra}>${escapeXml(s)}</text>`);

  // Panel 1: latency over time (log µs), worker GC pauses as bands.
  const t1 = 60;
  const h1 = 300;
  const lats = c.buckets.flatMap((b) => [b.minUs, b.maxUs]);
  const lo = nice125(Math.max(1, Math.min(...lats, c.p99Us)), 'down');
  const hi = Math.max(nice125(Math.max(...lats, c.p99Us), 'up'), lo * 10);
  const y1 = (us: number): number => t1 + h1 - ((Math.log10(Math.max(us, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * h1;
  text(left, t1 - 8, `request latency by send time (${f1(c.bucketMs)} ms buckets: line = fastest to slowest, dot = slowest), worker GC pauses as bands`);
  for (let d = 10 ** Math.floor(Math.log10(lo) + 1e-9); d <= hi; d *= 10) {
    for (const m of [1, 2, 5]) {
      const v = d * m;
      if (v < lo * (1 - 1e-9)) continue;
      if (v > hi * (1 + 1e-9)) break;
      const yy = f1(y1(v));
      o.push(`<line x1="${left}" x2="${width - right}" y1="${yy}" y2="${yy}" stroke="${m === 1 ? '#ccc' : '#eee'}"/>`);
      text(left - 6, y1(v) + 4, fmtUs(v), ' text-anchor="end"');
    }
  }
  for (const g of pixelGroups(c.worker, x)) {
    o.push(
      `<rect x="${f1(g.x0)}" y="${t1}" width="${f1(g.x1 - g.x0)}" height="${h1}" fill="${FAMILY_COLOR[g.max.family]}" opacity="0.35"><title>${escapeXml(`${g.n} worker GC pause(s), ${g.totalMs.toFixed(2)} ms; longest ${g.max.kind} ${g.max.pauseMs} ms at ${((g.max.startMs - c.fromMs) / 1000).toFixed(3)} s (${g.max.reason})`)}</title></rect>`,
    );
  }
  const range = c.buckets.map((b) => `M${f1(x(b.startMs + c.bucketMs / 2))} ${f1(y1(b.minUs))}V${f1(y1(b.maxUs))}`).join('');
  o.push(`<path d="${range}" stroke="#9ab" stroke-width="1" fill="none"/>`);
  const tops = c.buckets.map((b) => `M${f1(x(b.startMs + c.bucketMs / 2) - 1)} ${f1(y1(b.maxUs))}h2`).join('');
  o.push(`<path d="${tops}" stroke="#1f3b57" stroke-width="2" fill="none"/>`);
  const yp = f1(y1(c.p99Us));
  o.push(`<line x1="${left}" x2="${width - right}" y1="${yp}" y2="${yp}" stroke="#e15759" stroke-dasharray="4 3"/>`);
  text(width - right - 4, y1(c.p99Us) - 4, `p99 ${fmtUs(c.p99Us)}`, ' text-anchor="end" fill="#e15759"');
  o.push(`<rect x="${left}" y="${t1}" width="${plotW}" height="${h1}" fill="none" stroke="#888"/>`);

  // Panel 2: worker GC pause lengths on the same time axis; main thread and generator lanes.
  const t2 = t1 + h1 + 30;
  const h2 = 90;
  const maxPause = Math.max(0.1, ...c.worker.map((p) => p.pauseMs));
  const step = niceStep(maxPause, 3);
  const top2 = Math.ceil(maxPause / step) * step;
  const y2 = (ms: number): number => t2 + h2 - (ms / top2) * h2;
  text(left, t2 - 8, 'worker GC pauses (ms), by kind');
  for (let v = 0; v <= top2 + step / 2; v += step) {
    o.push(`<line x1="${left}" x2="${width - right}" y1="${f1(y2(v))}" y2="${f1(y2(v))}" stroke="#eee"/>`);
    text(left - 6, y2(v) + 4, `${+v.toFixed(2)} ms`, ' text-anchor="end"');
  }
  for (const g of pixelGroups(c.worker, x)) {
    o.push(`<rect x="${f1(g.x0)}" y="${f1(y2(g.max.pauseMs))}" width="${f1(Math.max(1.5, g.x1 - g.x0))}" height="${f1(t2 + h2 - y2(g.max.pauseMs))}" fill="${FAMILY_COLOR[g.max.family]}"/>`);
  }
  o.push(`<rect x="${left}" y="${t2}" width="${plotW}" height="${h2}" fill="none" stroke="#888"/>`);
  const lane = (ty: number, label: string, pauses: readonly GcPause[], color: string): void => {
    text(left - 6, ty + 11, label, ' text-anchor="end"');
    o.push(`<rect x="${left}" y="${ty}" width="${plotW}" height="14" fill="#fafafa" stroke="#ddd"/>`);
    for (const g of pixelGroups(pauses, x)) {
      o.push(`<rect x="${f1(g.x0)}" y="${ty}" width="${f1(g.x1 - g.x0)}" height="14" fill="${color}"><title>${escapeXml(`${label}: ${g.n} GC pause(s), ${g.totalMs.toFixed(2)} ms; longest ${g.max.kind} ${g.max.pauseMs.toFixed(2)} ms`)}</title></rect>`);
    }
  };
  lane(t2 + h2 + 8, 'main thread', c.main, MAIN_COLOR);
  lane(t2 + h2 + 26, 'generator', c.generator, GEN_COLOR);
  const axisY = t2 + h2 + 56;
  const tStep = niceStep(spanMs / 1000, 10);
  for (let s = 0; s <= spanMs / 1000 + 1e-9; s += tStep) text(x(c.fromMs + s * 1000), axisY, `${+s.toFixed(3)} s`, ' text-anchor="middle"');

  // Panel 3: latency histogram, log bins, log counts; the part in flight during a worker GC.
  const t3 = axisY + 40;
  const h3 = 200;
  const maxCount = Math.max(1, ...c.histogram.map((b) => b.count));
  const cTop = 10 ** Math.ceil(Math.log10(maxCount + 1));
  const y3 = (n: number): number => t3 + h3 - (Math.log10(n + 1) / Math.log10(cTop)) * h3;
  text(left, t3 - 8, 'latency histogram (log bins; requests, log scale): grey all, orange in flight during a worker GC pause');
  for (let n = 1; n <= cTop; n *= 10) {
    o.push(`<line x1="${left}" x2="${width - right}" y1="${f1(y3(n))}" y2="${f1(y3(n))}" stroke="#eee"/>`);
    text(left - 6, y3(n) + 4, n >= 1000 ? `${n / 1000}k` : String(n), ' text-anchor="end"');
  }
  const bw = plotW / Math.max(1, c.histogram.length);
  c.histogram.forEach((b, i) => {
    const bx = left + i * bw;
    const tip = `${fmtUs(b.loUs)}–${fmtUs(b.hiUs)}: ${b.count} requests, ${b.overlapping} in flight during a worker GC pause`;
    if (b.count > 0) o.push(`<rect x="${f1(bx + 1)}" y="${f1(y3(b.count))}" width="${f1(bw - 2)}" height="${f1(t3 + h3 - y3(b.count))}" fill="#bbb"><title>${escapeXml(tip)}</title></rect>`);
    if (b.overlapping > 0) o.push(`<rect x="${f1(bx + bw * 0.25)}" y="${f1(y3(b.overlapping))}" width="${f1(bw * 0.5)}" height="${f1(t3 + h3 - y3(b.overlapping))}" fill="#f28e2b"><title>${escapeXml(tip)}</title></rect>`);
    if (i % Math.max(1, Math.ceil(c.histogram.length / 12)) === 0) text(bx, t3 + h3 + 14, fmtUs(b.loUs), ' text-anchor="middle"');
  });
  o.push(`<rect x="${left}" y="${t3}" width="${plotW}" height="${h3}" fill="none" stroke="#888"/>`);

  // Legend.
  const ly = t3 + h3 + 40;
  let lx = left;
  const kinds = [...new Map([...c.worker].map((p) => [p.family, p.kind.replace(/ \(.*\)$/, '')])).entries()];
  for (const [family, name] of kinds) {
    o.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${FAMILY_COLOR[family]}"/>`);
    text(lx + 16, ly, `worker ${name}`);
    lx += 36 + (name.length + 7) * 6.5; // about 6.5 px per character at 11 px
  }
  const height = ly + 20;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15">${escapeXml(c.title)}</text>`,
    `<text x="${width / 2}" y="38" text-anchor="middle" fill="#555">${escapeXml(c.subtitle)}</text>`,
    ...o,
    '</svg>',
    '',
  ].join('\n');
}

// ---- report ---------------------------------------------------------------------------

const pctOf = (s: Share): string => (Number.isNaN(s.share) ? '-' : `${round(s.share * 100, 1)} % (${s.overlapping}/${s.requests})`);
const pctCell = (x: number): string => (Number.isNaN(x) ? '-' : `${round(x * 100, 1)} %`);

function kindRows(thread: string, g: GcSummary): string[] {
  if (g.count === 0) return [`| ${thread} | (none) | 0 | 0 | - |`];
  return g.byKind.map((k) => `| ${thread} | ${k.kind} | ${k.count} | ${round(k.totalMs, 2)} | ${round(k.maxMs, 2)} |`);
}

function rateLines(r: RateResult): string[] {
  const l = r.latency;
  const inc = (g: GcSummary): string => (g.incrementalSteps > 0 ? `${g.incrementalSteps} steps, ${round(g.incrementalMs, 1)} ms` : 'none');
  const id = r.identification;
  return [
    `## ${r.rate} req/s`,
    '',
    `${r.achieved_rate} req/s achieved; ${r.requests} requests, ${r.errors} errors in ${r.window_s} s. Latency (µs): p50 ${round(l.p50)}, p90 ${round(l.p90)}, p99 ${round(l.p99)}, p99.9 ${round(l.p999)}, max ${round(l.max)}.  `,
    `Worker GC: ${r.worker_gc.count} pauses, ${round(r.worker_gc.totalMs, 1)} ms (${r.worker_gc_pct_of_window} % of the window), longest ${round(r.worker_gc.maxMs, 2)} ms; incremental marking ${inc(r.worker_gc)}. Main thread: ${r.main_gc.count} pauses, ${round(r.main_gc.totalMs, 1)} ms. Generator (this process): ${r.generator_gc.count} pauses, ${round(r.generator_gc.totalMs, 1)} ms, longest ${round(r.generator_gc.maxMs, 2)} ms.  `,
    `**Requests above p99 in flight during a worker GC pause: ${pctOf(r.above_p99_overlapping_worker_gc)}**; by chance for requests that long: ${pctCell(r.above_p99_expected_worker_gc)}; all requests (base rate): ${pctOf(r.all_overlapping_worker_gc)}. Within ${SLACK_MS} ms of a pause: above p99 ${pctOf(r.above_p99_overlapping_worker_gc_within_1ms)}, all ${pctOf(r.all_overlapping_worker_gc_within_1ms)}. During a GC pause of the generator's own: above p99 ${pctOf(r.above_p99_overlapping_generator_gc)} (by chance ${pctCell(r.above_p99_expected_generator_gc)}), all ${pctOf(r.all_overlapping_generator_gc)}.`,
    '',
    `![latency and GC pauses at ${r.rate} req/s](${r.svg})`,
    '',
    '| thread | kind | count | total ms | max ms |',
    '|---|---|---|---|---|',
    ...kindRows('worker', r.worker_gc),
    ...kindRows('main', r.main_gc),
    ...kindRows('generator', r.generator_gc),
    '',
    `Slowest ${r.slowest.length} requests and the nearest worker GC pause (distance 0: the request was in flight during it):`,
    '',
    '| # | sent at (s) | latency µs | nearest worker GC | pause ms | distance ms | generator GC during |',
    '|---|---|---|---|---|---|---|',
    ...r.slowest.map((s, i) => {
      const n = s.nearest_worker_gc;
      return `| ${i + 1} | ${s.sent_s} | ${s.latency_us} | ${n === null ? '-' : n.kind} | ${n === null ? '-' : n.pause_ms} | ${n === null ? '-' : `${n.distance_ms}${n.relation === 'during' ? '' : ` (${n.relation})`}`} | ${s.generator_gc_during ? 'yes' : 'no'} |`;
    }),
    '',
    `Isolates (${r.stdout.gc_lines} GC lines, ${r.stdout.log_lines} log lines on stdout${r.stdout.unparsed_gc_lines.length > 0 ? `; unparsed GC lines, e.g. \`${r.stdout.unparsed_gc_lines[0]}\`` : ''}). Main thread = the isolate that started first; ${id.agree ? 'it is also the one that printed first and the one with the lowest address' : `first printed: ${id.first_printed}, lowest address: ${id.lowest_address} (not all the same)`}. Spread: 99th percentile minus minimum of (arrival − trace time), about 1 ms when lines arrive promptly; late: lines that arrived after the trace's bound and took it:`,
    '',
    '| isolate | role | GC lines | started (ms before the window) | spread ms | late lines | most late ms |',
    '|---|---|---|---|---|---|---|',
    ...r.isolates.map((i) => `| ${i.isolate} | ${i.role} | ${i.lines} | ${i.start_ms_before_window} | ${i.spread_ms} | ${i.late_lines} | ${i.max_late_ms} |`),
    '',
  ];
}

async function main(): Promise<void> {
  if (pin) pinSelf(0);
  os.setPriority(19); // the generator spins; the upstream on the same core goes first
  const when = new Date().toISOString();
  const stamp = stampOf(when);
  const rev = revision();
  const upstreamPort = await startUpstream(procs, 0, 100);
  const results: RateResult[] = [];
  for (const rate of rates) results.push(await runRate(rate, upstreamPort, stamp, rev));
  const command = commandLine('bench:gc-trace');
  const mode = youngMb === null ? 'quick mode (`remora run --listen --upstream`: Remora\'s defaults)' : `quick mode's config from a file plus \`worker_limits.young_generation_mb: ${youngMb}\``;
  const lines = [
    `# GC pauses and tail latency — ${when}`,
    '',
    `Command: \`${command}\`  `,
    `Machine: ${MACHINE}; pinning ${pin ? 'generator and upstream on core 0, Remora on core 1' : 'off'}  `,
    `Remora: ${rev}; ${mode}, 1 worker, under \`node --trace-gc\`, a fresh process per rate.  `,
    `Load: open loop (bench/lib/open-loop.ts), GET with 100 B responses, ${CONNECTIONS} keep-alive connections, ${seconds} s per rate after a ${warmupS} s warm-up at that rate; latency from the scheduled send time (coordinated omission corrected), every request's latency and send time kept.`,
    '',
    "**GC pauses**: V8 prints a line per GC, per isolate, as the GC ends, with the time since that isolate started (whole ms) and the pause. Each line is timestamped on arrival (`performance.now()` in this process, the generator's clock), and a pause ends at its line's arrival: finer than the trace's whole ms, late by the pipe's and this event loop's delay. The trace bounds it: an isolate's start on this clock is min(arrival − trace time) + 0.5 ms (no line arrives before its GC ended; the trace time is rounded to the nearest ms), and a line that arrives later than that start + its trace time + 0.5 ms takes that bound instead. A pause began its length before its end. A full GC's line may be printed after concurrent sweeping ends, later than its pause ended.",
    "**Overlap**: a request overlaps a pause when its in-flight interval [scheduled send, send + latency] meets the pause's interval. The base rate is the share of all requests that do. A slow request is in flight longer and meets more pauses by its length alone, so the share above p99 is also set against the share expected by chance for requests that long (each one's chance of meeting a pause if sent at a random time in the window, averaged): a share above p99 well over that ties the tail to GC; one near or under it does not. 'Within 1 ms' widens each pause by 1 ms either side, the clock's uncertainty. The generator's own GC pauses (PerformanceObserver, exact) hold up its timestamps too and are shown beside.",
    '**Isolates**: the main thread is the isolate that started first (it exists before any worker); the worker is the other isolate with the most GC pauses in the window.',
    '',
    '| rate | req/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | worker GCs | worker GC ms (% of time) | longest ms | > p99 during worker GC | by chance | all during worker GC |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.rate} | ${r.achieved_rate} | ${round(r.latency.p50)} | ${round(r.latency.p90)} | ${round(r.latency.p99)} | ${round(r.latency.p999)} | ${round(r.latency.max)} | ${r.worker_gc.count} | ${round(r.worker_gc.totalMs, 1)} (${r.worker_gc_pct_of_window} %) | ${round(r.worker_gc.maxMs, 2)} | ${pctOf(r.above_p99_overlapping_worker_gc)} | ${pctCell(r.above_p99_expected_worker_gc)} | ${pctOf(r.all_overlapping_worker_gc)} |`,
    ),
    '',
    ...results.flatMap(rateLines),
  ];
  const result = { when, command, machine: MACHINE, revision: rev, pinned: pin, rates, seconds, warmup_s: warmupS, connections: CONNECTIONS, young_generation_mb: youngMb, slack_ms: SLACK_MS, results };
  const files = writeResults('gc-trace', when, result, lines, outDir);
  log(`wrote ${[...files, ...results.map((r) => join(outDir, r.svg))].map((f) => basename(f)).join(', ')} in ${outDir}`);
}

runMain(main, () => {
  procs.stopAll();
  rmSync(tmp, { recursive: true, force: true });
});
