// Pure helpers for bench/gc-trace.ts: reading `node --trace-gc` output (one line per GC,
// per isolate, on stdout beside Remora's JSON log lines), placing each GC pause on the
// load generator's clock, telling the isolates apart, and relating per-request latency
// samples to the pauses (overlap shares, nearest pause, log-scale histogram, time buckets).
// Everything here takes data and returns data, so test/unit/gc-log.test.ts covers it.
// Long file: parsing, clock alignment and the request correlation are one chain, read in
// order from the trace line to the share of slow requests; split, each part would only
// serve the next.
//
// A --trace-gc line (V8 11–13; newer ones may add "pooled: N MB, " before the pause):
//   [1234:0x55d0c3a2b000]     5123 ms: Scavenge 10.2 (12.0) -> 9.1 (13.0) MB, 0.85 / 0.00 ms  (average mu = 1.000, current mu = 1.000) allocation failure;
//   [1234:0x55d0c3a2b000]     7001 ms: Mark-Compact 21.7 (51.5) -> 17.9 (51.4) MB, 31.69 / 0.00 ms  (+ 5.7 ms in 16 steps since start of marking, biggest step 4.5 ms, walltime since start of marking 38 ms) (average mu = …) finalize incremental marking via task; GC in old space requested
// "5123 ms" is the time since that isolate started, printed rounded to a whole ms when the
// GC ends; "0.85" is the pause on the isolate's thread, "0.00" the part of it spent in the
// embedder's GC callbacks; "(+ … in N steps …)" is the incremental marking done in steps
// between JavaScript work before this full GC's final pause.

import { quantileSorted } from './harness.js';
import type { LatencyPercentiles } from './open-loop.js';

/** V8 prints the isolate time with `%8.0f`: rounded to the nearest ms. */
export const TRACE_ROUNDING_MS = 0.5;

export type GcFamily = 'scavenge' | 'minor-mark-sweep' | 'mark-compact' | 'other';

export interface IncrementalMarking {
  /** Time spent in incremental marking steps before the final pause, ms. */
  readonly ms: number;
  readonly steps: number;
  readonly biggestStepMs: number;
  /** Wall time from the start of marking to the final pause, ms. */
  readonly wallMs: number;
}

export interface GcLine {
  readonly pid: number;
  /** The isolate's address as printed ("0x55d0c3a2b000"): one per thread running JS. */
  readonly isolate: string;
  /** ms since the isolate started, when the GC ended (whole ms). */
  readonly traceMs: number;
  /** As printed: "Scavenge", "Mark-Compact", "Mark-Compact (reduce)", "Minor Mark-Sweep", … */
  readonly kind: string;
  readonly family: GcFamily;
  readonly pauseMs: number;
  readonly externalMs: number;
  readonly heapBeforeMb: number;
  readonly heapAfterMb: number;
  readonly incremental: IncrementalMarking | null;
  /** Why V8 collected ("allocation failure", "task", "finalize incremental marking via task; …"). */
  readonly reason: string;
}

export type StdoutLine =
  | { readonly type: 'gc'; readonly gc: GcLine }
  /** A line with the --trace-gc prefix that is not a GC record (or not one this parser knows). */
  | { readonly type: 'gc-other'; readonly text: string }
  /** Remora's own JSON log line. */
  | { readonly type: 'log'; readonly text: string }
  | { readonly type: 'other'; readonly text: string };

const PREFIX = /^\[(\d+):(0x[0-9a-fA-F]+)\]\s+(-?\d+(?:\.\d+)?) ms: (.*)$/;
const NUM = String.raw`(\d+(?:\.\d+)?)`;
const BODY = new RegExp(String.raw`^(.+?) ${NUM} \(${NUM}\) -> ${NUM} \(${NUM}\) MB, (?:.*?)${NUM} / ${NUM} ms(.*)$`);
const INCREMENTAL = new RegExp(String.raw`\(\+ ${NUM} ms in (\d+) steps since start of marking, biggest step ${NUM} ms, walltime since start of marking ${NUM} ms\)`);

export function gcFamily(kind: string): GcFamily {
  if (/^Scavenge/i.test(kind)) return 'scavenge';
  if (/^Minor /i.test(kind) || /^MinorMS/i.test(kind)) return 'minor-mark-sweep';
  if (/Mark-Compact|Mark-Sweep/i.test(kind)) return 'mark-compact';
  return 'other';
}

/** One stdout line (no trailing newline) sorted into GC record, log line or other. */
export function classifyLine(text: string): StdoutLine {
  const line = text.replace(/\r$/, '');
  const p = PREFIX.exec(line);
  if (p === null) return line.trimStart().startsWith('{') ? { type: 'log', text: line } : { type: 'other', text: line };
  const b = BODY.exec(p[4]);
  if (b === null) return { type: 'gc-other', text: line };
  const tail = b[8];
  const inc = INCREMENTAL.exec(tail);
  // The reason follows the last ")" of "(average mu = …, current mu = …)".
  const mu = tail.lastIndexOf('current mu');
  const afterMu = mu >= 0 ? tail.slice(tail.indexOf(')', mu) + 1) : tail;
  const kind = b[1].trim();
  return {
    type: 'gc',
    gc: {
      pid: Number(p[1]),
      isolate: p[2].toLowerCase(),
      traceMs: Number(p[3]),
      kind,
      family: gcFamily(kind),
      heapBeforeMb: Number(b[2]),
      heapAfterMb: Number(b[4]),
      pauseMs: Number(b[6]),
      externalMs: Number(b[7]),
      incremental: inc === null ? null : { ms: Number(inc[1]), steps: Number(inc[2]), biggestStepMs: Number(inc[3]), wallMs: Number(inc[4]) },
      reason: afterMu.trim().replace(/;\s*$/, ''),
    },
  };
}

/** Splits a byte stream's text into lines; a line is complete at its newline, so it gets
 *  the arrival time of the chunk that carried the newline. */
export class LineSplitter {
  private rest = '';

  push(chunk: string, onLine: (line: string) => void): void {
    const text = this.rest + chunk;
    let from = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
      onLine(text.slice(from, nl));
      from = nl + 1;
    }
    this.rest = text.slice(from);
  }

  /** The unterminated last line, if any. */
  end(onLine: (line: string) => void): void {
    if (this.rest !== '') onLine(this.rest);
    this.rest = '';
  }
}

// ---- clocks ---------------------------------------------------------------------------

/** A GC line with the generator's performance.now() when it arrived on the pipe. */
export interface ArrivedGc extends GcLine {
  readonly arrivalMs: number;
}

export interface IsolateClock {
  readonly isolate: string;
  /** Estimated start of the isolate on the generator's clock (ms). */
  readonly startMs: number;
  readonly lines: number;
  readonly firstArrivalMs: number;
  /** Spread of (arrival − trace time) over the lines, 99th percentile minus minimum, ms:
   *  about 1 when the lines arrive promptly (the trace's whole-ms rounding alone), more
   *  when the pipe or the generator's event loop delayed some. */
  readonly spreadMs: number;
  /** Lines that arrived later than the trace allows (their end time is the trace's). */
  readonly lateLines: number;
  /** The latest of those beyond the trace's bound, ms (0 for none). */
  readonly maxLateMs: number;
}

/** The isolate's start on the generator's clock. Every line arrives no earlier than its
 *  GC ended (arrival = end + delay, delay ≥ 0) and the trace's time is the end rounded to
 *  a whole ms, so min(arrival − traceMs) is the start minus up to 0.5 ms (the most
 *  favourable rounding) plus the smallest delay; over many lines both extremes show up,
 *  hence + TRACE_ROUNDING_MS. */
export function isolateClock(isolate: string, lines: readonly ArrivedGc[]): IsolateClock {
  if (lines.length === 0) throw new Error(`isolateClock: no lines for ${isolate}`);
  const offsets = lines.map((l) => l.arrivalMs - l.traceMs).sort((a, b) => a - b);
  const startMs = offsets[0] + TRACE_ROUNDING_MS;
  let lateLines = 0;
  let maxLateMs = 0;
  for (const l of lines) {
    const late = l.arrivalMs - latestEndMs(l, startMs);
    if (late > 0) {
      lateLines++;
      maxLateMs = Math.max(maxLateMs, late);
    }
  }
  return {
    isolate,
    startMs,
    lines: lines.length,
    firstArrivalMs: Math.min(...lines.map((l) => l.arrivalMs)),
    spreadMs: quantileSorted(offsets, 0.99) - offsets[0],
    lateLines,
    maxLateMs,
  };
}

/** The latest end the trace allows: start + trace time + the rounding. */
function latestEndMs(line: ArrivedGc, startMs: number): number {
  return startMs + line.traceMs + TRACE_ROUNDING_MS;
}

/** When a GC ended on the generator's clock: its line's arrival, which trails the end by
 *  the pipe's and the event loop's delay (well under a ms when the generator is not busy,
 *  finer than the trace's whole ms), but never later than the trace allows (a line held
 *  up, by a GC pause of the generator's own for one, takes the trace's bound). */
export function gcEndMs(line: ArrivedGc, startMs: number): number {
  return Math.min(line.arrivalMs, latestEndMs(line, startMs));
}

/** A GC pause on the generator's clock. */
export interface GcPause {
  readonly kind: string;
  readonly family: GcFamily;
  readonly startMs: number;
  readonly endMs: number;
  readonly pauseMs: number;
  readonly reason: string;
  readonly incremental: IncrementalMarking | null;
}

export interface IsolateTrace {
  readonly clock: IsolateClock;
  /** Sorted by start; one thread's pauses never overlap. */
  readonly pauses: readonly GcPause[];
}

/** Groups the lines by isolate and places every pause [end − pause, end] on the
 *  generator's clock. */
export function isolateTraces(lines: readonly ArrivedGc[]): Map<string, IsolateTrace> {
  const by = new Map<string, ArrivedGc[]>();
  for (const l of lines) {
    const list = by.get(l.isolate);
    if (list === undefined) by.set(l.isolate, [l]);
    else list.push(l);
  }
  const out = new Map<string, IsolateTrace>();
  for (const [isolate, list] of by) {
    const clock = isolateClock(isolate, list);
    const pauses = list
      .map((l): GcPause => {
        const endMs = gcEndMs(l, clock.startMs);
        return { kind: l.kind, family: l.family, startMs: endMs - l.pauseMs, endMs, pauseMs: l.pauseMs, reason: l.reason, incremental: l.incremental };
      })
      .sort((a, b) => a.startMs - b.startMs);
    out.set(isolate, { clock, pauses });
  }
  return out;
}

export interface IsolateRoles {
  /** The isolate that started first: the main thread starts before any worker. */
  readonly main: string | null;
  /** Of the others, the one with the most pauses in the window: the request worker
   *  allocates per request; other helper threads (if any) barely do. */
  readonly worker: string | null;
  readonly others: readonly string[];
  /** Checks of the rule above, for the report: whose line came first, and the isolate
   *  with the lowest address (the main isolate comes from the process heap, a worker's
   *  from its thread's malloc arena, higher up). */
  readonly firstPrinted: string | null;
  readonly lowestAddress: string | null;
}

export function assignRoles(traces: ReadonlyMap<string, IsolateTrace>, fromMs: number, toMs: number): IsolateRoles {
  const all = [...traces.values()];
  if (all.length === 0) return { main: null, worker: null, others: [], firstPrinted: null, lowestAddress: null };
  const main = all.reduce((a, b) => (b.clock.startMs < a.clock.startMs ? b : a)).clock.isolate;
  const rest = all.filter((t) => t.clock.isolate !== main);
  const inWindow = (t: IsolateTrace): number => t.pauses.filter((p) => p.endMs >= fromMs && p.startMs <= toMs).length;
  const worker = rest.length === 0 ? null : rest.reduce((a, b) => (inWindow(b) > inWindow(a) ? b : a)).clock.isolate;
  return {
    main,
    worker,
    others: rest.map((t) => t.clock.isolate).filter((i) => i !== worker),
    firstPrinted: all.reduce((a, b) => (b.clock.firstArrivalMs < a.clock.firstArrivalMs ? b : a)).clock.isolate,
    lowestAddress: all.map((t) => t.clock.isolate).reduce((a, b) => (BigInt(b) < BigInt(a) ? b : a)),
  };
}

// ---- summaries ------------------------------------------------------------------------

export interface KindStats {
  readonly kind: string;
  readonly family: GcFamily;
  readonly count: number;
  readonly totalMs: number;
  readonly maxMs: number;
}

export interface GcSummary {
  readonly count: number;
  readonly totalMs: number;
  readonly maxMs: number;
  readonly byKind: readonly KindStats[];
  /** Incremental marking reported by the full GCs in the window (steps between JS work,
   *  not part of any pause above). */
  readonly incrementalSteps: number;
  readonly incrementalMs: number;
}

/** The pauses that overlap [fromMs, toMs]. */
export function pausesIn(pauses: readonly GcPause[], fromMs: number, toMs: number): GcPause[] {
  return pauses.filter((p) => p.endMs >= fromMs && p.startMs <= toMs);
}

/** Counts, total and max pause by kind (most time first) over the pauses given. */
export function summarizePauses(pauses: readonly GcPause[]): GcSummary {
  const kinds = new Map<string, { kind: string; family: GcFamily; count: number; totalMs: number; maxMs: number }>();
  let incrementalSteps = 0;
  let incrementalMs = 0;
  for (const p of pauses) {
    const k = kinds.get(p.kind) ?? { kind: p.kind, family: p.family, count: 0, totalMs: 0, maxMs: 0 };
    k.count++;
    k.totalMs += p.pauseMs;
    k.maxMs = Math.max(k.maxMs, p.pauseMs);
    kinds.set(p.kind, k);
    if (p.incremental !== null) {
      incrementalSteps += p.incremental.steps;
      incrementalMs += p.incremental.ms;
    }
  }
  const byKind = [...kinds.values()].sort((a, b) => b.totalMs - a.totalMs);
  return {
    count: pauses.length,
    totalMs: byKind.reduce((s, k) => s + k.totalMs, 0),
    maxMs: byKind.reduce((m, k) => Math.max(m, k.maxMs), 0),
    byKind,
    incrementalSteps,
    incrementalMs,
  };
}

// ---- requests -------------------------------------------------------------------------

/** Per-request samples: send time (generator clock, ms) and latency (µs), in arrival
 *  order, in growable typed arrays (no object per request, little GC in the generator). */
export class Samples {
  private sent: Float64Array;
  private lat: Float64Array;
  count = 0;

  constructor(capacity = 1024) {
    this.sent = new Float64Array(Math.max(16, capacity));
    this.lat = new Float64Array(Math.max(16, capacity));
  }

  add(sentAtMs: number, latencyUs: number): void {
    if (this.count === this.sent.length) {
      const grow = (a: Float64Array): Float64Array => {
        const b = new Float64Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.sent = grow(this.sent);
      this.lat = grow(this.lat);
    }
    this.sent[this.count] = sentAtMs;
    this.lat[this.count] = latencyUs;
    this.count++;
  }

  sentMs(i: number): number {
    return this.sent[i];
  }

  latencyUs(i: number): number {
    return this.lat[i];
  }

  /** The request's in-flight interval's end: sent + latency, ms. */
  doneMs(i: number): number {
    return this.sent[i] + this.lat[i] / 1000;
  }

  latencies(): Float64Array {
    return this.lat.slice(0, this.count);
  }
}

export interface LatencyStats extends LatencyPercentiles {
  readonly count: number;
}

/** µs, from every sample (exact, nearest rank). */
export function latencyStats(s: Samples): LatencyStats {
  const sorted = s.latencies().sort();
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: s.count,
    p50: quantileSorted(sorted, 0.5),
    p90: quantileSorted(sorted, 0.9),
    p99: quantileSorted(sorted, 0.99),
    p999: quantileSorted(sorted, 0.999),
    max: s.count === 0 ? NaN : sorted[s.count - 1],
    mean: s.count === 0 ? NaN : sum / s.count,
  };
}

/** Index of the last pause starting at or before `t`, or −1. */
function lastStartingBy(pauses: readonly GcPause[], t: number): number {
  let lo = 0;
  let hi = pauses.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (pauses[mid].startMs <= t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** Whether [fromMs, toMs] overlaps a pause widened by `slackMs` on each side. `pauses`
 *  sorted by start and not overlapping one another (one thread's). */
export function overlapsPause(pauses: readonly GcPause[], fromMs: number, toMs: number, slackMs = 0): boolean {
  const i = lastStartingBy(pauses, toMs + slackMs);
  // Two of the estimated intervals may overlap by a rounding error: look one further back.
  return (i >= 0 && pauses[i].endMs + slackMs >= fromMs) || (i >= 1 && pauses[i - 1].endMs + slackMs >= fromMs);
}

/** 1 for each request whose in-flight interval [sent, sent + latency] overlaps a pause. */
export function overlapFlags(s: Samples, pauses: readonly GcPause[], slackMs = 0): Uint8Array {
  const flags = new Uint8Array(s.count);
  for (let i = 0; i < s.count; i++) flags[i] = overlapsPause(pauses, s.sentMs(i), s.doneMs(i), slackMs) ? 1 : 0;
  return flags;
}

export interface Share {
  readonly requests: number;
  readonly overlapping: number;
  /** overlapping ÷ requests, 0..1 (NaN for none). */
  readonly share: number;
}

/** Of the requests slower than `aboveUs` (all of them for −Infinity), how many overlap. */
export function overlapShare(s: Samples, flags: Uint8Array, aboveUs = -Infinity): Share {
  let requests = 0;
  let overlapping = 0;
  for (let i = 0; i < s.count; i++) {
    if (!(s.latencyUs(i) > aboveUs)) continue;
    requests++;
    overlapping += flags[i];
  }
  return { requests, overlapping, share: requests === 0 ? NaN : overlapping / requests };
}

/** The chance that a request `lengthMs` long, sent at a uniformly random time in
 *  [fromMs, toMs], is in flight during one of the pauses (widened by `slackMs`): the part
 *  of the window covered by the union of [start − length, end] over the pauses (sorted by
 *  start). A longer request meets more pauses by its length alone, whatever made it slow. */
export function chanceOfOverlap(pauses: readonly GcPause[], lengthMs: number, fromMs: number, toMs: number, slackMs = 0): number {
  if (!(toMs > fromMs)) return NaN;
  let covered = 0;
  let lo = NaN;
  let hi = NaN;
  for (const p of pauses) {
    const a = Math.max(fromMs, p.startMs - lengthMs - slackMs);
    const b = Math.min(toMs, p.endMs + slackMs);
    if (b <= a) continue;
    if (Number.isNaN(hi) || a > hi) {
      if (!Number.isNaN(hi)) covered += hi - lo;
      lo = a;
      hi = b;
    } else hi = Math.max(hi, b);
  }
  if (!Number.isNaN(hi)) covered += hi - lo;
  return covered / (toMs - fromMs);
}

/** For the requests slower than `aboveUs`: the share expected to overlap a pause by chance
 *  (the mean of chanceOfOverlap over their lengths), against which to read overlapShare. */
export function expectedOverlap(s: Samples, pauses: readonly GcPause[], aboveUs: number, fromMs: number, toMs: number, slackMs = 0): number {
  let n = 0;
  let sum = 0;
  for (let i = 0; i < s.count; i++) {
    if (!(s.latencyUs(i) > aboveUs)) continue;
    n++;
    sum += chanceOfOverlap(pauses, s.latencyUs(i) / 1000, fromMs, toMs, slackMs);
  }
  return n === 0 ? NaN : sum / n;
}

export interface NearestPause {
  readonly pause: GcPause;
  /** 0 when the request was in flight during the pause, else the gap between them, ms. */
  readonly distanceMs: number;
  /** Where the pause lies relative to the request. */
  readonly relation: 'during' | 'before' | 'after';
}

/** The pause nearest to [fromMs, toMs], or null when there is none. */
export function nearestPause(pauses: readonly GcPause[], fromMs: number, toMs: number): NearestPause | null {
  const i = lastStartingBy(pauses, toMs);
  const before = i >= 0 ? pauses[i] : null;
  const after = i + 1 < pauses.length ? pauses[i + 1] : null;
  if (before !== null && before.endMs >= fromMs) return { pause: before, distanceMs: 0, relation: 'during' };
  const dBefore = before === null ? Infinity : fromMs - before.endMs;
  const dAfter = after === null ? Infinity : after.startMs - toMs;
  if (before === null && after === null) return null;
  return dBefore <= dAfter ? { pause: before!, distanceMs: dBefore, relation: 'before' } : { pause: after!, distanceMs: dAfter, relation: 'after' };
}

/** Indices of the `n` slowest requests, slowest first. */
export function slowest(s: Samples, n: number): number[] {
  const idx = Array.from({ length: s.count }, (_, i) => i);
  return idx.sort((a, b) => s.latencyUs(b) - s.latencyUs(a)).slice(0, n);
}

export interface LogBin {
  /** [loUs, hiUs) */
  readonly loUs: number;
  readonly hiUs: number;
  readonly count: number;
  /** Requests in this bin in flight during a pause (flags). */
  readonly overlapping: number;
}

/** Latency histogram over log-spaced bins (`perDecade` per power of ten), from the decade
 *  holding the fastest request to the bin holding the slowest; empty bins kept. */
export function logHistogram(s: Samples, flags: Uint8Array, perDecade = 10): LogBin[] {
  if (s.count === 0) return [];
  let min = Infinity;
  let max = 0;
  for (let i = 0; i < s.count; i++) {
    const v = Math.max(1, s.latencyUs(i));
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const first = Math.floor(Math.log10(min) * perDecade + 1e-9);
  const last = Math.floor(Math.log10(max) * perDecade + 1e-9);
  const counts = new Array<number>(last - first + 1).fill(0);
  const over = new Array<number>(last - first + 1).fill(0);
  for (let i = 0; i < s.count; i++) {
    const b = Math.min(last, Math.max(first, Math.floor(Math.log10(Math.max(1, s.latencyUs(i))) * perDecade + 1e-9))) - first;
    counts[b]++;
    over[b] += flags[i];
  }
  return counts.map((count, b) => ({ loUs: 10 ** ((first + b) / perDecade), hiUs: 10 ** ((first + b + 1) / perDecade), count, overlapping: over[b] }));
}

export interface TimeBucket {
  readonly startMs: number;
  readonly count: number;
  readonly minUs: number;
  readonly maxUs: number;
}

/** Requests by send time in buckets of `widthMs` from `fromMs`; buckets with none left out. */
export function timeBuckets(s: Samples, fromMs: number, widthMs: number): TimeBucket[] {
  const by = new Map<number, { count: number; minUs: number; maxUs: number }>();
  for (let i = 0; i < s.count; i++) {
    const b = Math.floor((s.sentMs(i) - fromMs) / widthMs);
    const v = s.latencyUs(i);
    const cur = by.get(b);
    if (cur === undefined) by.set(b, { count: 1, minUs: v, maxUs: v });
    else {
      cur.count++;
      cur.minUs = Math.min(cur.minUs, v);
      cur.maxUs = Math.max(cur.maxUs, v);
    }
  }
  return [...by].sort((a, b) => a[0] - b[0]).map(([b, v]) => ({ startMs: fromMs + b * widthMs, ...v }));
}
