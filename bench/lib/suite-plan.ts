// Pure logic of the benchmark suite (bench/suite.ts): options → CPU layout → plan of steps
// with time estimates, per-round statistics against the baseline (direct, or all-off for
// the features scenario) with the direct baseline, the generator's CPU and the
// generator-bound rule (verdict.ts) on every closed-loop figure, memory and soak
// statistics. Target checks and Markdown tables are in suite-report.ts. No I/O here, so
// all of it is unit-tested.
// Long file: options, layout, plan and statistics share the suite's types and are read
// together when a scenario is added; each is a section below.

import { median, round, spread, type Spread } from './harness.js';
import { generatorHeadroom, type Headroom } from './verdict.js';

export const GROUPS = ['latency', 'throughput', 'payload', 'body', 'connections', 'features', 'workers', 'memory'] as const;
export type Group = (typeof GROUPS)[number];
export type Tool = 'open-loop' | 'autocannon' | 'conn-loop';

/** Closed-loop connections of the payload, body, features, workers and memory scenarios. */
export const FIXED_CONNECTIONS = 50;
/** Remora's workers in the memory scenario (the RSS target is for 2). */
export const MEMORY_WORKERS = 2;
/** Seconds the memory scenario samples an idle Remora. */
export const IDLE_SAMPLE_S = 2;
/** The soak's "no growth" threshold, MB (bench/README.md says why). */
export const SOAK_GROWTH_MAX_MB = 5;
/** The features target: all-on/all-off req/s ≥ 1 − this. */
export const FEATURE_COST_MAX = 0.1;

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
  /** POST body sizes, bytes (scenario `body`). */
  readonly bodySizes: readonly number[];
  /** Lanes of the conn-loop generator (scenario `connections`). */
  readonly lanes: number;
  readonly workers: readonly number[];
  readonly soak: boolean;
  readonly soakSeconds: number;
  /** Open-loop rate during the soak, req/s. */
  readonly soakRate: number;
  /** autocannon worker threads: a number, or 'auto' (planLayout decides). */
  readonly autocannonWorkers: number | 'auto';
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
  'body-sizes'?: string;
  lanes?: string;
  workers?: string;
  soak?: boolean;
  'soak-seconds'?: string;
  'soak-rate'?: string;
  'autocannon-workers'?: string;
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
  const acw = a['autocannon-workers'] ?? 'auto';
  let autocannonWorkers: number | 'auto' = 'auto';
  if (acw !== 'auto') {
    const n = Number(acw);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--autocannon-workers: expected "auto" or a whole number ≥ 0, got "${acw}"`);
    autocannonWorkers = n;
  }
  const soak = (a.soak ?? false) || a['soak-seconds'] !== undefined;
  if (soak && !groups.includes('memory')) groups = GROUPS.filter((g) => g === 'memory' || groups.includes(g));
  return {
    quick,
    groups,
    duration: positive(a.duration ?? (quick ? '1' : '5'), 'duration'),
    rounds: Math.round(positive(a.rounds ?? (quick ? '1' : '3'), 'rounds')),
    warmup: a.warmup !== undefined ? Number(a.warmup) : quick ? 0.5 : 3,
    rates: numberList(a.rates ?? '1000,5000', 'rates'),
    connections: numberList(a.connections ?? (quick ? '50' : '10,50,200'), 'connections').map(Math.round),
    sizes: numberList(a.sizes ?? (quick ? '100,1048576' : '100,4096,65536,1048576'), 'sizes').map(Math.round),
    bodySizes: numberList(a['body-sizes'] ?? '4096', 'body-sizes').map(Math.round),
    lanes: Math.round(positive(a.lanes ?? (quick ? '8' : '16'), 'lanes')),
    workers: numberList(a.workers ?? (quick ? [...new Set([1, Math.max(1, cores)])].join(',') : defaultWorkers(cores).join(',')), 'workers').map(Math.round),
    soak,
    soakSeconds: positive(a['soak-seconds'] ?? (quick ? '20' : '600'), 'soak-seconds'),
    soakRate: positive(a['soak-rate'] ?? '1000', 'soak-rate'),
    autocannonWorkers,
    pin: canPin && !(a['no-pin'] ?? false),
    peers: !(a['no-peers'] ?? false),
    openLoopConnections: 16,
    out: a.out ?? null,
  };
}

// ---- CPU layout -----------------------------------------------------------------------

export interface Layout {
  /** taskset list for this process (every load generator), or null: unpinned. */
  readonly generator: string | null;
  /** Core of the upstreams. */
  readonly upstream: number | null;
  /** Cores the generator has to itself (0: it shares core 0 with the upstream). */
  readonly generatorOwnCores: number;
  /** Highest worker count a proxy can be pinned with (cores 1..w); more runs unpinned. */
  readonly maxPinnedWorkers: number;
  /** autocannon worker threads for closed-loop runs (0: autocannon runs on this thread). */
  readonly autocannonWorkers: number;
  /** Why that many (for the report). */
  readonly autocannonWhy: string;
  /** One line for the report. */
  readonly text: string;
}

/**
 * Where everything runs. Below 4 cores (this project's 2-core host): upstream and
 * generator on core 0, proxies on core 1 (w workers on 1..w when there are enough). From
 * 4 cores: upstream on core 0, the generator on the top max(2, cores/4) cores, proxies on
 * 1..w below those. autocannon's worker threads ('auto') get one per core the generator
 * has to itself, none when it has none: on a shared core worker threads only compete.
 */
export function planLayout(cores: number, pin: boolean, requested: number | 'auto'): Layout {
  const own = pin && cores >= 4 ? Math.max(2, Math.floor(cores / 4)) : 0;
  const generator = !pin ? null : own > 0 ? (own === 1 ? String(cores - 1) : `${cores - own}-${cores - 1}`) : '0';
  const maxPinnedWorkers = pin ? Math.max(1, cores - 1 - own) : 0;
  let autocannonWorkers: number;
  let autocannonWhy: string;
  if (requested !== 'auto') {
    autocannonWorkers = requested;
    autocannonWhy = `--autocannon-workers ${requested}`;
  } else if (!pin) {
    autocannonWorkers = cores >= 4 ? Math.min(4, Math.floor(cores / 4)) : 0;
    autocannonWhy = autocannonWorkers > 0 ? `unpinned, ${cores} cores: ${autocannonWorkers} threads` : `unpinned on ${cores} cores: the generator would compete with the proxy and upstream`;
  } else if (own > 0) {
    autocannonWorkers = own;
    autocannonWhy = `one per core the generator has to itself (${generator})`;
  } else {
    autocannonWorkers = 0;
    autocannonWhy = `the generator shares core 0 with the upstream on this ${cores}-core host: worker threads would only compete for it`;
  }
  const text = !pin
    ? 'unpinned'
    : own > 0
      ? `upstream on core 0, load generators on cores ${generator}, proxies on core 1 (with w workers: cores 1..w while w ≤ ${maxPinnedWorkers}, unpinned beyond)`
      : `upstream and load generators on core 0, proxies on core 1 (${maxPinnedWorkers > 1 ? `with w workers: cores 1..w while w ≤ ${maxPinnedWorkers}, unpinned beyond` : 'a proxy with 2 or more workers runs unpinned'})`;
  return { generator, upstream: pin ? 0 : null, generatorOwnCores: own, maxPinnedWorkers, autocannonWorkers, autocannonWhy, text };
}

/** taskset cores for a proxy with `w` workers/threads: 1, "1-w", or null (unpinned). */
export function proxyCores(l: Layout, w: number): number | string | null {
  if (l.generator === null) return null;
  if (w === 1) return 1;
  return w <= l.maxPinnedWorkers ? `1-${w}` : null;
}

// ---- plan -----------------------------------------------------------------------------

/** Peers that scale with workers (nginx processes, HAProxy threads); the Node peers are
 *  one process each and join the workers scenario at 1 worker only. */
export const SCALING_PEERS: readonly string[] = ['nginx', 'haproxy'];

/** Throughput cost allowed for tracing at 1 % and at 100 % sampling (vs all-off). */
export const TRACING_COST_MAX = [0.03, 0.15] as const;

/** The names of the features scenario's variants, all-off (the baseline) first. */
export const FEATURE_VARIANTS = ['all-off', 'stats', 'access-log', 'rate-limit', 'outlier', 'all-on', 'tracing-1', 'tracing-100'] as const;
export type FeatureVariant = (typeof FEATURE_VARIANTS)[number];

export interface Step {
  /** "latency-1000", "throughput-c50", "payload-4096", "body-4096", "connections-l16",
   *  "features", "workers-2", "memory", "memory-soak". */
  readonly id: string;
  readonly group: Group;
  readonly tool: Tool;
  /** Rate (req/s), connections, response or body bytes, lanes, worker count, or (memory)
   *  Remora's workers. */
  readonly param: number;
  /** Targets measured in this step, the ratio baseline first ("direct", or "all-off";
   *  the features scenario measures "direct" last, for the generator-bound rule). */
  readonly targets: readonly string[];
  /** Targets also measured with wrk in the same rounds (throughput, payload and body when
   *  wrk is installed; empty otherwise). */
  readonly wrkTargets: readonly string[];
  /** Seconds this step is expected to take. */
  readonly estimateS: number;
}

/** Seconds the open-loop generator discards at the start of every run. */
export const OPEN_LOOP_WARMUP_S = 0.5;
/** Seconds to start one Remora or peer (a rough allowance for the estimate). */
export const STARTUP_S = 1;

/** Warm-up key: once per target and tool (and method), as bench/suite.ts keeps them. */
export function warmKey(tool: Tool, target: string, method: 'GET' | 'POST' = 'GET'): string {
  return `${tool}:${target}:${method}`;
}

/** The workers scenario's targets for `w` workers: direct, Remora, the scaling peers
 *  with w workers/threads, and the Node peers at w = 1. */
export function workerTargets(w: number, proxies: readonly string[]): string[] {
  const peers = proxies.filter((p) => p !== 'remora' && (w === 1 || SCALING_PEERS.includes(p)));
  return ['direct', `remora-${w}w`, ...peers.map((p) => `${p}-${w}w`)];
}

/** The targets the wrk cross-check measures, when they run: the native peers and Remora
 *  with its default codec beside the direct baseline. */
export const WRK_TARGETS: readonly string[] = ['direct', 'remora', 'nginx', 'haproxy'];

/** The ordered steps of a run. `proxies`: Remora and the peers that started (not "direct");
 *  `wrk`: whether wrk is installed (throughput, payload and body then also run it). */
export function planSteps(o: SuiteOptions, proxies: readonly string[], wrk = false): Step[] {
  const steps: Step[] = [];
  const all = ['direct', ...proxies];
  const wrkTargets = wrk ? all.filter((t) => WRK_TARGETS.includes(t)) : [];
  // wrk runs after autocannon in each round, without a warm-up of its own (the targets
  // are warm by then, and wrk is native: nothing of its own to warm).
  const closedCount = all.length + wrkTargets.length;
  const warmed = new Set<string>();
  const warmups = (keys: readonly string[]): number => {
    const fresh = keys.filter((k) => !warmed.has(k));
    for (const k of fresh) warmed.add(k);
    return o.warmup > 0 ? fresh.length * o.warmup : 0;
  };
  const est = (targets: number, extra: number, warmKeys: readonly string[], startup = 0, runsPerRound = 1): number =>
    round(targets * o.rounds * runsPerRound * (o.duration + extra) + warmups(warmKeys) + startup, 1);
  const has = (g: Group): boolean => o.groups.includes(g);
  if (has('latency')) {
    for (const rate of o.rates) {
      steps.push({ id: `latency-${rate}`, group: 'latency', tool: 'open-loop', param: rate, targets: all, wrkTargets: [], estimateS: est(all.length, OPEN_LOOP_WARMUP_S, all.map((t) => warmKey('open-loop', t))) });
    }
  }
  if (has('throughput')) {
    for (const c of o.connections) {
      steps.push({ id: `throughput-c${c}`, group: 'throughput', tool: 'autocannon', param: c, targets: all, wrkTargets, estimateS: est(closedCount, 0, all.map((t) => warmKey('autocannon', t))) });
    }
  }
  if (has('payload')) {
    for (const size of o.sizes) {
      steps.push({ id: `payload-${size}`, group: 'payload', tool: 'autocannon', param: size, targets: all, wrkTargets, estimateS: est(closedCount, 0, all.map((t) => warmKey('autocannon', t))) });
    }
  }
  if (has('body')) {
    for (const size of o.bodySizes) {
      steps.push({ id: `body-${size}`, group: 'body', tool: 'autocannon', param: size, targets: all, wrkTargets, estimateS: est(closedCount, 0, all.map((t) => warmKey('autocannon', t, 'POST'))) });
    }
  }
  if (has('connections')) {
    // Each round runs every target in both modes (new connection, keep-alive).
    steps.push({ id: `connections-l${o.lanes}`, group: 'connections', tool: 'conn-loop', param: o.lanes, targets: all, wrkTargets: [], estimateS: est(all.length, 0, all.map((t) => warmKey('conn-loop', t)), 0, 2) });
  }
  if (has('features')) {
    // The variants, then the direct baseline (the generator-bound rule needs it).
    const vs = [...FEATURE_VARIANTS, 'direct'];
    steps.push({ id: 'features', group: 'features', tool: 'autocannon', param: FIXED_CONNECTIONS, targets: vs, wrkTargets: [], estimateS: est(vs.length, 0, vs.map((t) => warmKey('autocannon', t)), FEATURE_VARIANTS.length * STARTUP_S) });
  }
  if (has('workers')) {
    // Each worker count starts a fresh Remora and fresh scaling peers (then their warm-ups).
    for (const w of o.workers) {
      const targets = workerTargets(w, proxies);
      steps.push({ id: `workers-${w}`, group: 'workers', tool: 'autocannon', param: w, targets, wrkTargets: [], estimateS: est(targets.length, 0, targets.map((t) => warmKey('autocannon', t)), (targets.length - 1) * STARTUP_S) });
    }
  }
  if (has('memory')) {
    const target = `remora-${MEMORY_WORKERS}w`;
    steps.push({ id: 'memory', group: 'memory', tool: 'autocannon', param: MEMORY_WORKERS, targets: [target], wrkTargets: [], estimateS: round(STARTUP_S + IDLE_SAMPLE_S + o.rounds * o.duration, 1) });
    if (o.soak) steps.push({ id: 'memory-soak', group: 'memory', tool: 'open-loop', param: MEMORY_WORKERS, targets: [target], wrkTargets: [], estimateS: round(o.warmup + o.soakSeconds + OPEN_LOOP_WARMUP_S, 1) });
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
  /** The load generator's CPU during the round, % of one core (CPU seconds ÷ wall
   *  seconds; above 100 with generator threads on several cores); null: not measured. */
  readonly generatorCpuPct?: number | null;
}

/** One round of one closed-loop figure, as the JSON result keeps it. */
export interface ClosedRoundRecord {
  readonly rps: number;
  /** The direct baseline of the same round and generator (null for direct itself). */
  readonly directRps: number | null;
  readonly generatorCpuPct: number | null;
}

export interface ClosedRow {
  readonly target: string;
  readonly rps: Spread;
  /** Per-round ratio to the step's baseline (direct; all-off in `features`); null for it
   *  and for direct. */
  readonly vsBase: Spread | null;
  /** req/s divided by the proxy's worker count (workers scenario only). */
  readonly perCore: Spread | null;
  readonly rssPeakMb: number | null;
  readonly errors: number;
  /** The direct baseline's req/s over the same rounds (null for direct itself, or when
   *  direct was not measured). */
  readonly direct: Spread | null;
  /** The generator-bound rule on the medians (verdict.ts); null for direct itself. */
  readonly headroom: Headroom | null;
  /** The generator's CPU per round, % of one core. */
  readonly generatorCpuPct: Spread | null;
  readonly rounds: readonly ClosedRoundRecord[];
}

function cpuSpread(xs: readonly (number | null | undefined)[]): Spread | null {
  const ok = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return ok.length > 0 ? spread(ok, 0) : null;
}

/** Closed-loop rows of one step. `raw.direct` (when measured) is every row's direct
 *  baseline, paired round by round; `base` is the ratio baseline. */
export function summarizeClosed(
  raw: Readonly<Record<string, readonly ClosedRound[]>>,
  targets: readonly string[],
  cores: number | null = null,
  base = 'direct',
): ClosedRow[] {
  const baseRps = (raw[base] ?? []).map((r) => r.rps);
  const directRounds = raw.direct ?? [];
  const directRps = directRounds.map((r) => r.rps);
  return targets.map((target) => {
    const rows = raw[target] ?? [];
    const rps = rows.map((r) => r.rps);
    const rss = rows.map((r) => r.rssPeakMb).filter((x): x is number => typeof x === 'number');
    const isDirect = target === 'direct';
    const rpsSpread = spread(rps, 0);
    const direct = isDirect || directRps.length === 0 ? null : spread(directRps, 0);
    return {
      target,
      rps: rpsSpread,
      vsBase: target === base || isDirect ? null : ratioSpread(rps, baseRps),
      perCore: cores !== null && !isDirect ? spread(rps.map((x) => x / cores), 0) : null,
      rssPeakMb: rss.length > 0 ? Math.max(...rss) : null,
      errors: rows.reduce((s, r) => s + r.errors, 0),
      direct,
      headroom: isDirect ? null : generatorHeadroom(direct?.median ?? null, rpsSpread.median),
      generatorCpuPct: cpuSpread(rows.map((r) => r.generatorCpuPct)),
      rounds: rows.map((r, i) => ({ rps: r.rps, directRps: isDirect ? null : (directRounds[i]?.rps ?? null), generatorCpuPct: r.generatorCpuPct ?? null })),
    };
  });
}

/** One conn-loop round of one target in both modes. */
export interface ConnRound {
  readonly newRps: number;
  readonly keepAliveRps: number;
  readonly newErrors: number;
  readonly keepAliveErrors: number;
  /** conn-loop's CPU in each mode, % of one core (it runs in the suite's process). */
  readonly newCpuPct?: number | null;
  readonly keepAliveCpuPct?: number | null;
}

export interface ConnRow {
  readonly target: string;
  readonly newRps: Spread;
  readonly keepAliveRps: Spread;
  /** new/keep-alive per round: the share of keep-alive throughput left with a
   *  connection per request. */
  readonly newVsKeepAlive: Spread | null;
  readonly newVsDirect: Spread | null;
  readonly keepAliveVsDirect: Spread | null;
  readonly newErrors: number;
  readonly keepAliveErrors: number;
  /** The direct baseline in each mode over the same rounds (null for direct itself). */
  readonly newDirect: Spread | null;
  readonly keepAliveDirect: Spread | null;
  /** The generator-bound rule in each mode; null for direct itself. */
  readonly newHeadroom: Headroom | null;
  readonly keepAliveHeadroom: Headroom | null;
  readonly newCpuPct: Spread | null;
  readonly keepAliveCpuPct: Spread | null;
}

export function summarizeConnections(raw: Readonly<Record<string, readonly ConnRound[]>>, targets: readonly string[]): ConnRow[] {
  const direct = raw.direct ?? [];
  return targets.map((target) => {
    const rows = raw[target] ?? [];
    const n = rows.map((r) => r.newRps);
    const k = rows.map((r) => r.keepAliveRps);
    const isDirect = target === 'direct';
    const newRps = spread(n, 0);
    const keepAliveRps = spread(k, 0);
    const newDirect = isDirect || direct.length === 0 ? null : spread(direct.map((r) => r.newRps), 0);
    const keepAliveDirect = isDirect || direct.length === 0 ? null : spread(direct.map((r) => r.keepAliveRps), 0);
    return {
      target,
      newRps,
      keepAliveRps,
      newVsKeepAlive: ratioSpread(n, k),
      newVsDirect: isDirect ? null : ratioSpread(n, direct.map((r) => r.newRps)),
      keepAliveVsDirect: isDirect ? null : ratioSpread(k, direct.map((r) => r.keepAliveRps)),
      newErrors: rows.reduce((s, r) => s + r.newErrors, 0),
      keepAliveErrors: rows.reduce((s, r) => s + r.keepAliveErrors, 0),
      newDirect,
      keepAliveDirect,
      newHeadroom: isDirect ? null : generatorHeadroom(newDirect?.median ?? null, newRps.median),
      keepAliveHeadroom: isDirect ? null : generatorHeadroom(keepAliveDirect?.median ?? null, keepAliveRps.median),
      newCpuPct: cpuSpread(rows.map((r) => r.newCpuPct)),
      keepAliveCpuPct: cpuSpread(rows.map((r) => r.keepAliveCpuPct)),
    };
  });
}

/** One closed-loop round of the memory scenario: req/s and the RSS samples taken during it. */
export interface MemoryRound {
  readonly rps: number;
  readonly errors: number;
  readonly rssMb: readonly number[];
}

export interface MemorySummary {
  readonly workers: number;
  /** Median of the idle samples (before any load), MB. */
  readonly idleMb: number;
  /** Highest sample under load, MB. */
  readonly peakMb: number;
  /** Peak of each round, MB: median (min–max). */
  readonly peakPerRound: Spread;
  /** Median of every sample under load, MB. */
  readonly loadMedianMb: number;
  readonly samples: number;
  readonly rps: Spread;
  readonly errors: number;
}

export function summarizeMemory(workers: number, idle: readonly number[], rounds: readonly MemoryRound[]): MemorySummary {
  const load = rounds.flatMap((r) => r.rssMb);
  return {
    workers,
    idleMb: idle.length > 0 ? round(median(idle), 1) : NaN,
    peakMb: load.length > 0 ? Math.max(...load) : NaN,
    peakPerRound: spread(rounds.map((r) => (r.rssMb.length > 0 ? Math.max(...r.rssMb) : NaN)), 1),
    loadMedianMb: load.length > 0 ? round(median(load), 1) : NaN,
    samples: idle.length + load.length,
    rps: spread(rounds.map((r) => r.rps), 0),
    errors: rounds.reduce((s, r) => s + r.errors, 0),
  };
}

export interface SoakSummary {
  readonly seconds: number;
  readonly rate: number;
  /** Length of the first and last windows compared, s (60, or a third of a shorter soak). */
  readonly windowS: number;
  readonly firstMb: number;
  readonly lastMb: number;
  /** lastMb − firstMb. */
  readonly growthMb: number;
  /** Least-squares slope over all samples, MB per minute. */
  readonly slopeMbPerMin: number;
  readonly minMb: number;
  readonly maxMb: number;
  readonly samples: number;
  readonly requests: number;
  readonly errors: number;
}

/** Growth over a soak from RSS samples (t in s from the start of the load, mb): median of
 *  the last window minus median of the first, window = min(60 s, a third of the span). */
export function soakGrowth(samples: readonly { readonly t: number; readonly mb: number }[]): Pick<SoakSummary, 'windowS' | 'firstMb' | 'lastMb' | 'growthMb' | 'slopeMbPerMin' | 'minMb' | 'maxMb' | 'samples'> {
  if (samples.length === 0) return { windowS: 0, firstMb: NaN, lastMb: NaN, growthMb: NaN, slopeMbPerMin: NaN, minMb: NaN, maxMb: NaN, samples: 0 };
  const t0 = samples[0].t;
  const t1 = samples[samples.length - 1].t;
  const windowS = round(Math.min(60, (t1 - t0) / 3), 1);
  const first = samples.filter((s) => s.t <= t0 + windowS).map((s) => s.mb);
  const last = samples.filter((s) => s.t >= t1 - windowS).map((s) => s.mb);
  const firstMb = round(median(first), 1);
  const lastMb = round(median(last), 1);
  const n = samples.length;
  const mt = samples.reduce((s, x) => s + x.t, 0) / n;
  const mm = samples.reduce((s, x) => s + x.mb, 0) / n;
  const num = samples.reduce((s, x) => s + (x.t - mt) * (x.mb - mm), 0);
  const den = samples.reduce((s, x) => s + (x.t - mt) ** 2, 0);
  const mbs = samples.map((s) => s.mb);
  return {
    windowS,
    firstMb,
    lastMb,
    growthMb: round(lastMb - firstMb, 1),
    slopeMbPerMin: den > 0 ? round((num / den) * 60, 2) : 0,
    minMb: Math.min(...mbs),
    maxMb: Math.max(...mbs),
    samples: n,
  };
}

export interface StepResult {
  readonly id: string;
  readonly group: Group;
  readonly tool: Tool;
  readonly param: number;
  /** Which generator produced the figures ("autocannon, 2 worker threads", …). */
  readonly toolText?: string;
  readonly latency?: readonly LatencyRow[];
  readonly closed?: readonly ClosedRow[];
  /** The baseline of `closed` ("direct" unless said). */
  readonly base?: string;
  /** The wrk cross-check of the same rounds (baseline direct), when wrk ran. */
  readonly wrk?: readonly ClosedRow[];
  /** How wrk ran ("wrk, 1 thread, 50 connections"), or why it did not. */
  readonly wrkText?: string;
  readonly connections?: readonly ConnRow[];
  readonly memory?: MemorySummary;
  readonly soak?: SoakSummary;
  readonly note?: string;
  /** Features scenario: each variant's features, /metrics sanity check, log size, RSS. */
  readonly variants?: Readonly<Record<string, object>>;
  /** Soak: every RSS sample (t s from the start of the load, MB). */
  readonly samples?: readonly { readonly t: number; readonly mb: number }[];
  /** Extra Markdown lines after the table. */
  readonly notes?: readonly string[];
}
