// Pure logic of the benchmark suite (bench/suite.ts): options → plan of steps with time
// estimates, per-round statistics against the direct baseline, target checks, and the
// Markdown tables. No I/O here, so all of it is unit-tested.

import { round, showSpread, spread, type Spread } from './harness.js';

export const GROUPS = ['latency', 'throughput', 'payload', 'workers'] as const;
export type Group = (typeof GROUPS)[number];
export type Tool = 'open-loop' | 'autocannon';

export interface SuiteOptions {
  readonly quick: boolean;
  readonly groups: readonly Group[];
  /** Seconds per measurement (one target, one round). */
  readonly duration: number;
  readonly rounds: number;
  /** Seconds of warm-up per target before its first measurement with each tool. */
  readonly warmup: number;
  readonly rates: readonly number[];
  readonly connections: readonly number[];
  readonly sizes: readonly number[];
  readonly workers: readonly number[];
  readonly pin: boolean;
  readonly peers: boolean;
  /** Keep-alive connections of the open-loop generator. */
  readonly openLoopConnections: number;
  readonly out: string | null;
}

export interface RawArgs {
  quick?: boolean;
  scenarios?: string;
  duration?: string;
  rounds?: string;
  warmup?: string;
  rates?: string;
  connections?: string;
  sizes?: string;
  workers?: string;
  'no-pin'?: boolean;
  'no-peers'?: boolean;
  out?: string;
}

/** "1000, 5000" → [1000, 5000]; throws on anything but positive numbers. */
export function numberList(s: string, what: string): number[] {
  const xs = s.split(',').map((x) => x.trim()).filter((x) => x !== '').map(Number);
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x) || x <= 0)) throw new Error(`--${what}: expected positive numbers separated by commas, got "${s}"`);
  return xs;
}

function positive(s: string, what: string): number {
  const x = Number(s);
  if (!Number.isFinite(x) || x <= 0) throw new Error(`--${what}: expected a positive number, got "${s}"`);
  return x;
}

/** 1, 2, 4, … up to `cores`, and `cores` itself. */
export function defaultWorkers(cores: number): number[] {
  const out: number[] = [];
  for (let w = 1; w < cores; w *= 2) out.push(w);
  out.push(Math.max(1, cores));
  return out;
}

/** The suite's options from parsed argv; --quick picks short defaults that flags override. */
export function resolveOptions(a: RawArgs, cores: number, canPin: boolean): SuiteOptions {
  const quick = a.quick ?? false;
  let groups: Group[] = [...GROUPS];
  if (a.scenarios !== undefined) {
    const asked = a.scenarios.split(',').map((s) => s.trim()).filter((s) => s !== '');
    const bad = asked.filter((s) => !(GROUPS as readonly string[]).includes(s));
    if (bad.length > 0 || asked.length === 0) throw new Error(`--scenarios: unknown ${bad.join(', ') || '(none)'}; choose from ${GROUPS.join(', ')}`);
    groups = GROUPS.filter((g) => asked.includes(g));
  }
  return {
    quick,
    groups,
    duration: positive(a.duration ?? (quick ? '1' : '5'), 'duration'),
    rounds: Math.round(positive(a.rounds ?? (quick ? '1' : '3'), 'rounds')),
    warmup: a.warmup !== undefined ? Number(a.warmup) : quick ? 0.5 : 3,
    rates: numberList(a.rates ?? '1000,5000', 'rates'),
    connections: numberList(a.connections ?? (quick ? '50' : '10,50,200'), 'connections').map(Math.round),
    sizes: numberList(a.sizes ?? (quick ? '100,65536' : '100,4096,65536'), 'sizes').map(Math.round),
    workers: numberList(a.workers ?? (quick ? [...new Set([1, Math.max(1, cores)])].join(',') : defaultWorkers(cores).join(',')), 'workers').map(Math.round),
    pin: canPin && !(a['no-pin'] ?? false),
    peers: !(a['no-peers'] ?? false),
    openLoopConnections: 16,
    out: a.out ?? null,
  };
}

export interface Step {
  /** "latency-1000", "throughput-c50", "payload-4096", "workers-2". */
  readonly id: string;
  readonly group: Group;
  readonly tool: Tool;
  /** Rate (req/s), connections, body bytes or worker count. */
  readonly param: number;
  /** Targets measured in this step, "direct" first. */
  readonly targets: readonly string[];
  /** Seconds this step is expected to take. */
  readonly estimateS: number;
}

/** Seconds the open-loop generator discards at the start of every run. */
export const OPEN_LOOP_WARMUP_S = 0.5;

/** The ordered steps of a run. `proxies`: Remora and the peers that started (not "direct"). */
export function planSteps(o: SuiteOptions, proxies: readonly string[]): Step[] {
  const steps: Step[] = [];
  const all = ['direct', ...proxies];
  // Warm-up runs once per target and tool (bench/suite.ts keeps the same set).
  const warmed = new Set<string>();
  const warmups = (keys: readonly string[]): number => {
    const fresh = keys.filter((k) => !warmed.has(k));
    for (const k of fresh) warmed.add(k);
    return o.warmup > 0 ? fresh.length * o.warmup : 0;
  };
  const est = (targets: number, extra: number, warmKeys: readonly string[], startup = 0): number =>
    round(targets * o.rounds * (o.duration + extra) + warmups(warmKeys) + startup, 1);
  if (o.groups.includes('latency')) {
    for (const rate of o.rates) {
      steps.push({ id: `latency-${rate}`, group: 'latency', tool: 'open-loop', param: rate, targets: all, estimateS: est(all.length, OPEN_LOOP_WARMUP_S, all.map((t) => `open-loop:${t}:/`)) });
    }
  }
  if (o.groups.includes('throughput')) {
    for (const c of o.connections) {
      steps.push({ id: `throughput-c${c}`, group: 'throughput', tool: 'autocannon', param: c, targets: all, estimateS: est(all.length, 0, all.map((t) => `autocannon:${t}:/`)) });
    }
  }
  if (o.groups.includes('payload')) {
    for (const size of o.sizes) {
      const keys = ['direct', 'remora'].map((t) => `autocannon:${t}:/payload/${size}/`);
      steps.push({ id: `payload-${size}`, group: 'payload', tool: 'autocannon', param: size, targets: ['direct', 'remora'], estimateS: est(2, 0, keys) });
    }
  }
  if (o.groups.includes('workers')) {
    // Each worker count is a fresh Remora (about 1 s to start, then its own warm-up).
    for (const w of o.workers) {
      const keys = ['autocannon:direct:/', `autocannon:remora-${w}w:/`];
      steps.push({ id: `workers-${w}`, group: 'workers', tool: 'autocannon', param: w, targets: ['direct', `remora-${w}w`], estimateS: est(2, 0, keys, 1) });
    }
  }
  return steps;
}

/** "scenario n/m: name — ~Xs left" for step index `i` (0-based). */
export function progressLine(steps: readonly Step[], i: number): string {
  const left = steps.slice(i).reduce((s, st) => s + st.estimateS, 0);
  return `scenario ${i + 1}/${steps.length}: ${steps[i].id} — ~${Math.ceil(left)}s left`;
}

// ---- statistics ---------------------------------------------------------------------

export const PCTS = ['p50', 'p90', 'p99', 'p999'] as const;
export type Pct = (typeof PCTS)[number];
export type Percentiles = Record<Pct, number>;

/** Per-round differences `xs[i] - base[i]` as a spread (rounds paired, interleaved). */
export function pairedSpread(xs: readonly number[], base: readonly number[], digits = 0): Spread {
  const n = Math.min(xs.length, base.length);
  return spread(Array.from({ length: n }, (_, i) => xs[i] - base[i]), digits);
}

/** Per-round ratios `xs[i] / base[i]`. */
export function ratioSpread(xs: readonly number[], base: readonly number[], digits = 3): Spread | null {
  const n = Math.min(xs.length, base.length);
  if (n === 0 || base.slice(0, n).some((b) => !(b > 0))) return null;
  return spread(Array.from({ length: n }, (_, i) => xs[i] / base[i]), digits);
}

export interface LatencyRow {
  readonly target: string;
  readonly requests: number;
  readonly errors: number;
  /** Median over rounds of each percentile, µs. */
  readonly absolute: Percentiles;
  /** Target minus direct per round, µs: median (min–max). Null for "direct". */
  readonly added: Record<Pct, Spread> | null;
}

export interface LatencyRound extends Percentiles {
  readonly requests: number;
  readonly errors: number;
}

export function summarizeLatency(raw: Readonly<Record<string, readonly LatencyRound[]>>, targets: readonly string[]): LatencyRow[] {
  const direct = raw.direct ?? [];
  return targets.map((target) => {
    const rows = raw[target] ?? [];
    const absolute = Object.fromEntries(PCTS.map((p) => [p, spread(rows.map((r) => r[p]), 0).median])) as Percentiles;
    const added =
      target === 'direct' || direct.length === 0
        ? null
        : (Object.fromEntries(PCTS.map((p) => [p, pairedSpread(rows.map((r) => r[p]), direct.map((r) => r[p]))])) as Record<Pct, Spread>);
    return { target, requests: rows.reduce((s, r) => s + r.requests, 0), errors: rows.reduce((s, r) => s + r.errors, 0), absolute, added };
  });
}

export interface ClosedRound {
  readonly rps: number;
  readonly errors: number;
  /** Peak RSS of the target during the round, MB (proxies only). */
  readonly rssPeakMb?: number | null;
}

export interface ClosedRow {
  readonly target: string;
  readonly rps: Spread;
  readonly vsDirect: Spread | null;
  /** req/s divided by the proxy's worker count (workers scenario only). */
  readonly perCore: Spread | null;
  readonly rssPeakMb: number | null;
  readonly errors: number;
}

export function summarizeClosed(raw: Readonly<Record<string, readonly ClosedRound[]>>, targets: readonly string[], cores: number | null = null): ClosedRow[] {
  const direct = (raw.direct ?? []).map((r) => r.rps);
  return targets.map((target) => {
    const rows = raw[target] ?? [];
    const rps = rows.map((r) => r.rps);
    const rss = rows.map((r) => r.rssPeakMb).filter((x): x is number => typeof x === 'number');
    return {
      target,
      rps: spread(rps, 0),
      vsDirect: target === 'direct' ? null : ratioSpread(rps, direct),
      perCore: cores !== null && target !== 'direct' ? spread(rps.map((x) => x / cores), 0) : null,
      rssPeakMb: rss.length > 0 ? Math.max(...rss) : null,
      errors: rows.reduce((s, r) => s + r.errors, 0),
    };
  });
}

export interface StepResult {
  readonly id: string;
  readonly group: Group;
  readonly tool: Tool;
  readonly param: number;
  readonly latency?: readonly LatencyRow[];
  readonly closed?: readonly ClosedRow[];
  readonly note?: string;
}

// ---- targets ------------------------------------------------------------------------

export type Verdict = 'met' | 'missed' | 'not measured';

export interface TargetCheck {
  readonly target: string;
  readonly verdict: Verdict;
  readonly detail: string;
}

function latencyRow(results: readonly StepResult[], rate: number, target: string): LatencyRow | undefined {
  return results.find((r) => r.group === 'latency' && r.param === rate)?.latency?.find((row) => row.target === target);
}

function all(checks: readonly { ok: boolean; text: string }[]): { verdict: Verdict; detail: string } {
  if (checks.length === 0) return { verdict: 'not measured', detail: '' };
  return { verdict: checks.every((c) => c.ok) ? 'met' : 'missed', detail: checks.map((c) => c.text).join('; ') };
}

/** The targets of bench/README.md, each checked against this run's results. */
export function checkTargets(results: readonly StepResult[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  for (const rate of [1000, 5000]) {
    const row = latencyRow(results, rate, 'remora');
    const name = `p99 added ≤ 0.5 ms at ${rate.toLocaleString('en-US')} req/s`;
    if (!row?.added) out.push({ target: name, verdict: 'not measured', detail: `no latency run at ${rate} req/s` });
    else out.push({ target: name, verdict: row.added.p99.median <= 500 ? 'met' : 'missed', detail: `remora +${row.added.p99.median} µs (${row.added.p99.min}–${row.added.p99.max})` });
  }
  {
    const checks = results
      .filter((r) => r.group === 'latency')
      .flatMap((r) => {
        const remora = r.latency?.find((x) => x.target === 'remora')?.added;
        const nginx = r.latency?.find((x) => x.target === 'nginx')?.added;
        return remora && nginx ? [{ ok: remora.p50.median <= nginx.p50.median, text: `${r.param} req/s: remora +${remora.p50.median} µs, nginx +${nginx.p50.median} µs` }] : [];
      });
    const c = all(checks);
    out.push({ target: "median added latency ≤ nginx's", verdict: c.verdict, detail: c.detail || 'needs a latency run with nginx' });
  }
  const closedPairs = (peer: string, factor: number): { verdict: Verdict; detail: string } =>
    all(
      results
        .filter((r) => r.group === 'throughput')
        .flatMap((r) => {
          const remora = r.closed?.find((x) => x.target === 'remora');
          const other = r.closed?.find((x) => x.target === peer);
          if (!remora || !other) return [];
          const ratio = other.rps.median > 0 ? round(remora.rps.median / other.rps.median, 2) : Infinity;
          return [{ ok: remora.rps.median >= factor * other.rps.median, text: `c${r.param}: ${remora.rps.median} vs ${other.rps.median} req/s (${ratio}×)` }];
        }),
    );
  {
    const c = closedPairs('nginx', 1);
    out.push({ target: '1-worker throughput ≥ nginx with 1 worker', verdict: c.verdict, detail: c.detail || 'needs a throughput run with nginx' });
  }
  for (const peer of ['http-proxy', 'fastify-proxy']) {
    const c = closedPairs(peer, 3);
    const label = peer === 'http-proxy' ? 'node http-proxy' : '@fastify/http-proxy';
    out.push({ target: `throughput ≥ 3× ${label}`, verdict: c.verdict, detail: c.detail || `needs a throughput run with ${label}` });
  }
  {
    const row = results.find((r) => r.group === 'workers' && r.param === 2)?.closed?.find((x) => x.target !== 'direct');
    const name = 'RSS ≤ 100 MB with 2 workers under load';
    if (!row || row.rssPeakMb === null) out.push({ target: name, verdict: 'not measured', detail: 'needs the workers scenario with 2 workers' });
    else out.push({ target: name, verdict: row.rssPeakMb <= 100 ? 'met' : 'missed', detail: `peak ${row.rssPeakMb} MB` });
  }
  return out;
}

// ---- Markdown -----------------------------------------------------------------------

function cell(s: Spread | null): string {
  return s === null ? '-' : showSpread(s);
}

export function stepTable(r: StepResult): string[] {
  if (r.latency) {
    return [
      '| target | p50 µs | p99 µs | added p50 µs | added p90 µs | added p99 µs | added p99.9 µs | requests | errors |',
      '|---|---|---|---|---|---|---|---|---|',
      ...r.latency.map(
        (x) =>
          `| ${x.target} | ${x.absolute.p50} | ${x.absolute.p99} | ${cell(x.added?.p50 ?? null)} | ${cell(x.added?.p90 ?? null)} | ${cell(x.added?.p99 ?? null)} | ${cell(x.added?.p999 ?? null)} | ${x.requests} | ${x.errors} |`,
      ),
    ];
  }
  const closed = r.closed ?? [];
  const workers = r.group === 'workers';
  return [
    `| target | req/s | vs direct |${workers ? ' req/s per core | peak RSS MB |' : ''} errors |`,
    `|---|---|---|${workers ? '---|---|' : ''}---|`,
    ...closed.map((x) => `| ${x.target} | ${cell(x.rps)} | ${cell(x.vsDirect)} |${workers ? ` ${cell(x.perCore)} | ${x.rssPeakMb ?? '-'} |` : ''} ${x.errors} |`),
  ];
}

export function stepTitle(r: StepResult): string {
  switch (r.group) {
    case 'latency':
      return `Latency at ${r.param} req/s (open-loop, bench/lib/open-loop.ts, µs)`;
    case 'throughput':
      return `Closed-loop throughput, ${r.param} connections (autocannon, pipelining 1)`;
    case 'payload':
      return `Payload ${r.param} B responses (autocannon, 50 connections)`;
    case 'workers':
      return `Remora with ${r.param} worker(s) (autocannon, 50 connections)`;
  }
}

export function targetsTable(checks: readonly TargetCheck[]): string[] {
  return ['| target | verdict | measured |', '|---|---|---|', ...checks.map((c) => `| ${c.target} | **${c.verdict}** | ${c.detail} |`)];
}
