// The standard benchmark suite: one command, every scenario against a baseline measured
// in the same run, rounds interleaved, medians with min–max.
//
//   npm run bench -- [--quick] [--scenarios latency,throughput,payload,body,connections,features,workers,memory]
//                    [--duration S] [--rounds N] [--warmup S] [--rates 1000,5000]
//                    [--connections 10,50,200] [--sizes 100,4096,65536,1048576]
//                    [--body-sizes 4096] [--lanes 16] [--workers 1,2]
//                    [--soak] [--soak-seconds 600] [--soak-rate 1000]
//                    [--autocannon-workers auto|N] [--no-pin] [--no-peers] [--out DIR]
//
// Scenarios (bench/README.md has the targets they are checked against):
//   latency      fixed rate, each of --rates: p50/p90/p99/p99.9 added µs (bench/lib/open-loop.ts)
//   throughput   closed loop, autocannon with each of --connections, pipelining 1
//   payload      closed loop, 50 connections, each response size of --sizes
//   body         closed loop, 50 connections, POST bodies of --body-sizes (100 B responses)
//   connections  closed loop, --lanes lanes, a new connection per request (Connection:
//                close) vs keep-alive, same generator (bench/lib/conn-loop.ts)
//   features     closed loop, 50 connections, eight Remoras (1 worker) that differ only in
//                features: all off, each alone, all on; ratio to all-off per round
//   workers      closed loop, 50 connections, Remora and nginx/HAProxy with each of
//                --workers (req/s, per core, Remora's peak RSS); Node peers at 1
//   memory       Remora with 2 workers: RSS idle, and sampled every 100 ms under closed
//                loop; with --soak, RSS every second for --soak-seconds at --soak-rate
// Targets: direct, Remora (1 worker), and when installed (not --no-peers) nginx (1
// worker), HAProxy (1 thread), node http-proxy and @fastify/http-proxy, all in front of
// one upstream (bench/upstream-uws.ts: /payload/<n>/ answers n bytes, bodies are read).
// Every closed-loop figure carries the direct baseline of the same rounds and the load
// generator's CPU; one whose direct baseline ran under 1.5× its rate is generator-bound
// and judged by no target (bench/lib/verdict.ts). When wrk is installed, throughput,
// payload and body also measure direct, Remora, nginx and HAProxy with wrk (one thread,
// the step's connections) in the same rounds: a native generator's cross-check.
// Layout: bench/lib/suite-plan.ts planLayout (on 2 cores: generators and upstream on core
// 0, proxies on core 1, Remora with w workers on 1..w when there are enough cores).
// Writes <out>/suite-<timestamp>.{json,md} and suite-<timestamp>-*.svg (out: bench/results).
// Long file: every scenario's I/O (starting targets, driving them, the report) in one
// place; the pure logic is in bench/lib/suite-plan.ts, suite-report.ts, suite-charts.ts
// and verdict.ts.

import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { autocannonWorkersFor, closedLoop } from './lib/closed-loop.js';
import { runConnLoop } from './lib/conn-loop.js';
import { HostLoad, shareOf, type HostShare } from './lib/host-load.js';
import { runOpenLoop } from './lib/open-loop.js';
import {
  MACHINE,
  Processes,
  ROOT,
  RssSampler,
  canPin,
  commandLine,
  log,
  pinSelf,
  revision,
  round,
  rssMb,
  runMain,
  sleep,
  stampOf,
  startRemora,
  startUpstream,
  stopPid,
  writeConfig,
  writeResults,
} from './lib/harness.js';
import { PEERS, peerMissing, startPeer, type PeerName } from './lib/peers.js';
import { ALL_OFF, benchRemoraConfig, scrapeSanity, type Features } from './lib/remora-config.js';
import { startOtlpSink } from './lib/otlp-sink.js';
import { charts } from './lib/suite-charts.js';
import { checkTargets, generatorBoundFigures, stepTable, stepTitle, targetsTable, wrkTable } from './lib/suite-report.js';
import { GENERATOR_HEADROOM_MIN } from './lib/verdict.js';
import { runWrk, wrkInstalled, wrkPostScript } from './lib/wrk.js';
import {
  FEATURE_VARIANTS,
  FIXED_CONNECTIONS,
  IDLE_SAMPLE_S,
  MEMORY_WORKERS,
  SCALING_PEERS,
  planLayout,
  planSteps,
  progressLine,
  proxyCores,
  resolveOptions,
  soakGrowth,
  summarizeClosed,
  summarizeConnections,
  summarizeLatency,
  summarizeMemory,
  warmKey,
  type ClosedRound,
  type ConnRound,
  type FeatureVariant,
  type LatencyRound,
  type MemoryRound,
  type Step,
  type StepResult,
  type Tool,
} from './lib/suite-plan.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    scenarios: { type: 'string' },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    rates: { type: 'string' },
    connections: { type: 'string' },
    sizes: { type: 'string' },
    'body-sizes': { type: 'string' },
    lanes: { type: 'string' },
    workers: { type: 'string' },
    soak: { type: 'boolean' },
    'soak-seconds': { type: 'string' },
    'soak-rate': { type: 'string' },
    'autocannon-workers': { type: 'string' },
    'no-pin': { type: 'boolean' },
    'no-peers': { type: 'boolean' },
    out: { type: 'string' },
  },
  strict: true,
});

const cores = os.availableParallelism();
const opts = resolveOptions(args, cores, canPin(false));
const layout = planLayout(cores, opts.pin, opts.autocannonWorkers);
const procs = new Processes(opts.pin);
const tmp = mkdtempSync(join(os.tmpdir(), 'remora-suite-'));
const hasWrk = wrkInstalled();

interface Endpoint {
  readonly port: number;
  /** Sampled for RSS under load when set. */
  readonly pid: number | null;
}

interface Request {
  readonly path: string;
  readonly method?: 'GET' | 'POST';
  readonly body?: string;
}

const GET_ROOT: Request = { path: '/' };

function autocannonText(connections: number): string {
  const k = autocannonWorkersFor(connections, layout.autocannonWorkers);
  return `autocannon, ${connections} connections, pipelining 1, ${k > 0 ? `${k} worker threads` : 'one thread'}`;
}

const OPEN_LOOP_TEXT = `open-loop: bench/lib/open-loop.ts, fixed rate, ${opts.openLoopConnections} keep-alive connections, µs from the scheduled send`;
const CONN_LOOP_TEXT = `conn-loop: bench/lib/conn-loop.ts, closed loop, ${opts.lanes} lanes, one request in flight per lane`;

async function drive(e: Endpoint, connections: number, seconds: number, req: Request): Promise<ClosedRound> {
  const sampler = e.pid !== null ? new RssSampler(e.pid, 100) : null;
  try {
    const r = await closedLoop({ port: e.port, path: req.path, connections, seconds, workers: layout.autocannonWorkers, method: req.method, body: req.body });
    const rss = sampler?.stop() ?? [];
    return { rps: r.rps, errors: r.errors, rssPeakMb: rss.length > 0 ? Math.max(...rss) : null, generatorCpuPct: r.cpuPct };
  } finally {
    sampler?.stop();
  }
}

const warmed = new Set<string>();

/** Warms `name` once per tool (and method), as planSteps counts it. */
async function warm(tool: Tool, name: string, e: Endpoint, rate: number, req: Request = GET_ROOT): Promise<void> {
  const key = warmKey(tool, name, req.method ?? 'GET');
  if (opts.warmup <= 0 || warmed.has(key)) return;
  warmed.add(key);
  if (tool === 'open-loop') await runOpenLoop({ port: e.port, path: req.path, rate, durationMs: opts.warmup * 1000, connections: opts.openLoopConnections, warmupMs: 0 });
  else if (tool === 'conn-loop') await runConnLoop({ port: e.port, path: req.path, mode: 'new', lanes: opts.lanes, durationMs: opts.warmup * 1000 });
  else await drive({ ...e, pid: null }, FIXED_CONNECTIONS, opts.warmup, req);
}

async function latencyStep(step: Step, targets: ReadonlyMap<string, Endpoint>): Promise<StepResult> {
  const raw: Record<string, LatencyRound[]> = Object.fromEntries(step.targets.map((t) => [t, []]));
  for (const t of step.targets) await warm('open-loop', t, targets.get(t)!, step.param);
  for (let r = 0; r < opts.rounds; r++) {
    for (const t of step.targets) {
      const e = targets.get(t)!;
      raw[t].push(await runOpenLoop({ port: e.port, path: '/', rate: step.param, durationMs: opts.duration * 1000, connections: opts.openLoopConnections }));
    }
  }
  return { id: step.id, group: step.group, tool: step.tool, param: step.param, toolText: OPEN_LOOP_TEXT, latency: summarizeLatency(raw, step.targets) };
}

interface ClosedStepOptions {
  readonly connections: number;
  readonly req?: Request;
  /** Workers per target (req/s per core), workers scenario only. */
  readonly perCore?: number | null;
  readonly base?: string;
  readonly note?: string;
}

/** The wrk Lua script for `req` (a POST body), written once into the temp dir; null: GET. */
function wrkScript(req: Request): string | null {
  if (req.method !== 'POST') return null;
  const bytes = req.body?.length ?? 0;
  const file = join(tmp, `wrk-post-${bytes}.lua`);
  if (!existsSync(file)) writeFileSync(file, wrkPostScript(bytes));
  return file;
}

/** One wrk run of `e` (the suite's wrk cross-check): the same duration and connections as
 *  autocannon's, one thread, on the generator's cores. */
async function driveWrk(e: Endpoint, connections: number, req: Request): Promise<ClosedRound> {
  const r = await runWrk({ port: e.port, path: req.path, seconds: opts.duration, connections, threads: 1, cores: opts.pin ? layout.generator : null, script: wrkScript(req) });
  return { rps: r.rps, errors: r.errors, generatorCpuPct: r.cpuPct };
}

async function closedStep(step: Step, targets: ReadonlyMap<string, Endpoint>, o: ClosedStepOptions): Promise<StepResult> {
  const req = o.req ?? GET_ROOT;
  const raw: Record<string, ClosedRound[]> = Object.fromEntries(step.targets.map((t) => [t, []]));
  const wrkRaw: Record<string, ClosedRound[]> = Object.fromEntries(step.wrkTargets.map((t) => [t, []]));
  let wrkFailed: string | null = null;
  for (const t of step.targets) await warm('autocannon', t, targets.get(t)!, 0, req);
  for (let r = 0; r < opts.rounds; r++) {
    for (const t of step.targets) raw[t].push(await drive(targets.get(t)!, o.connections, opts.duration, req));
    // The native cross-check in the same round, after autocannon; a wrk failure drops the
    // cross-check of this step, never the step.
    for (const t of wrkFailed === null ? step.wrkTargets : []) {
      try {
        wrkRaw[t].push(await driveWrk(targets.get(t)!, o.connections, req));
      } catch (err) {
        wrkFailed = err instanceof Error ? err.message.split('\n')[0] : String(err);
        log(`  ${step.id}: wrk failed, no cross-check for this scenario: ${wrkFailed}`);
        break;
      }
    }
  }
  const wrkText = `wrk, 1 thread, ${o.connections} connections, ${opts.duration} s per run after autocannon in each round${opts.pin && layout.generator !== null ? `, cores ${layout.generator}` : ''}`;
  const wrk =
    step.wrkTargets.length === 0 ? {} : wrkFailed !== null ? { wrkText: `wrk failed: ${wrkFailed}` } : { wrk: summarizeClosed(wrkRaw, step.wrkTargets), wrkText };
  return {
    id: step.id,
    group: step.group,
    tool: step.tool,
    param: step.param,
    toolText: autocannonText(o.connections),
    closed: summarizeClosed(raw, step.targets, o.perCore ?? null, o.base ?? 'direct'),
    ...wrk,
    ...(o.base ? { base: o.base } : {}),
    ...(o.note ? { note: o.note } : {}),
  };
}

async function connectionsStep(step: Step, targets: ReadonlyMap<string, Endpoint>): Promise<StepResult> {
  const raw: Record<string, ConnRound[]> = Object.fromEntries(step.targets.map((t) => [t, []]));
  const kinds: Record<string, Record<string, number>> = {};
  for (const t of step.targets) await warm('conn-loop', t, targets.get(t)!, 0);
  for (let r = 0; r < opts.rounds; r++) {
    for (const t of step.targets) {
      const e = targets.get(t)!;
      const fresh = await runConnLoop({ port: e.port, path: '/', mode: 'new', lanes: opts.lanes, durationMs: opts.duration * 1000 });
      const kept = await runConnLoop({ port: e.port, path: '/', mode: 'keep-alive', lanes: opts.lanes, durationMs: opts.duration * 1000 });
      raw[t].push({ newRps: fresh.rps, keepAliveRps: kept.rps, newErrors: fresh.errors, keepAliveErrors: kept.errors, newCpuPct: fresh.cpuPct, keepAliveCpuPct: kept.cpuPct });
      for (const [k, n] of [...Object.entries(fresh.errorKinds), ...Object.entries(kept.errorKinds)]) {
        kinds[t] ??= {};
        kinds[t][k] = (kinds[t][k] ?? 0) + n;
      }
    }
  }
  const errorNotes = Object.entries(kinds).map(([t, k]) => `Errors, ${t}: ${Object.entries(k).map(([kind, n]) => `${kind} × ${n}`).join(', ')}.`);
  return {
    id: step.id,
    group: step.group,
    tool: step.tool,
    param: step.param,
    toolText: CONN_LOOP_TEXT,
    connections: summarizeConnections(raw, step.targets),
    notes: [
      '"new": every request on a fresh TCP connection with `Connection: close`, closed by the generator once the response is complete; "keep-alive": one connection per lane for the whole run. Same generator for both, so new / keep-alive prices the connection set-up and tear-down (through a proxy: the downstream connection only; proxies keep their upstream connections alive).',
      ...errorNotes,
    ],
  };
}

/** The features scenario's variants. Circuit breakers are always on in Remora. */
function variantFeatures(v: FeatureVariant, logFile: string, otlpSink: string): Features {
  const on: Features = { stats: true, accessLog: logFile, rateLimit: true, outlier: true };
  switch (v) {
    case 'all-off':
      return ALL_OFF;
    case 'stats':
      return { ...ALL_OFF, stats: true };
    case 'access-log':
      return { ...ALL_OFF, accessLog: logFile };
    case 'rate-limit':
      return { ...ALL_OFF, rateLimit: true };
    case 'outlier':
      return { ...ALL_OFF, outlier: true };
    case 'all-on':
      return on;
    case 'tracing-1':
      return { ...ALL_OFF, tracing: { percent: 1, endpoint: otlpSink } };
    case 'tracing-100':
      return { ...ALL_OFF, tracing: { percent: 100, endpoint: otlpSink } };
  }
}

function fileMb(path: string): number | null {
  try {
    return round(statSync(path).size / 2 ** 20, 1);
  } catch {
    return null;
  }
}

async function featuresStep(step: Step, upstreamPort: number): Promise<StepResult> {
  const running = new Map<string, { e: Endpoint; admin: number; log: string; f: Features }>();
  const sink = await startOtlpSink();
  try {
    for (const v of FEATURE_VARIANTS) {
      const logFile = join(tmp, `access-${v}.log`);
      const f = variantFeatures(v, logFile, sink.endpoint);
      const remora = await startRemora(procs, proxyCores(layout, 1), writeConfig(tmp, `remora-${v}`, benchRemoraConfig(f, upstreamPort, 1)));
      running.set(v, { e: { port: remora.listeners.bench, pid: remora.pid }, admin: remora.adminPort, log: logFile, f });
    }
    const endpoints = new Map<string, Endpoint>([...running].map(([k, x]) => [k, x.e]));
    endpoints.set('direct', { port: upstreamPort, pid: null }); // the generator-bound rule's baseline
    const result = await closedStep(step, endpoints, { connections: FIXED_CONNECTIONS, base: 'all-off' });
    const sanity: string[] = ['| variant | stats | access log | rate limits | outlier detection | tracing | requests in /metrics | rate-limit table entries | spans exported (dropped) | access log MB | RSS MB at end |', '|---|---|---|---|---|---|---|---|---|---|---|'];
    const json: Record<string, object> = {};
    for (const [v, x] of running) {
      const s = await scrapeSanity(x.admin).catch(() => null);
      const logMb = x.f.accessLog !== null ? fileMb(x.log) : null;
      const rss = x.e.pid !== null ? rssMb(x.e.pid) : null;
      json[v] = { features: { ...x.f, accessLog: x.f.accessLog !== null }, sanity: s, access_log_mb: logMb, rss_mb_end: rss };
      const yes = (b: boolean): string => (b ? 'on' : '-');
      sanity.push(
        `| ${v} | ${yes(x.f.stats)} | ${yes(x.f.accessLog !== null)} | ${yes(x.f.rateLimit)} | ${yes(x.f.outlier)} | ${x.f.tracing !== undefined ? `${x.f.tracing.percent} %` : '-'} | ${s?.requests_in_metrics ?? '-'} | ${s?.rate_limit_table_entries ?? '-'} | ${x.f.tracing !== undefined ? `${s?.spans_exported ?? '-'} (${s?.spans_dropped ?? '-'})` : '-'} | ${logMb ?? '-'} | ${rss ?? '-'} |`,
      );
    }
    return {
      ...result,
      notes: [
        'Eight Remora processes (1 worker each, the same core), driven one at a time, interleaved in every round. **all-off**: `stats.enabled: false`, no access log, no rate limits, no outlier detection, no tracing. **stats**: stats recording and /metrics (the default). **access-log**: every request logged to a file in a temp dir. **rate-limit**: a listener rate limit (one bucket) and a route rate limit keyed by client IP (one hot key), both 1,000,000,000 tokens per second: nothing is refused. **outlier**: `outlier_detection: {}` (every response counted per endpoint). **all-on**: those four. **tracing-1** / **tracing-100**: all-off plus tracing with 1 % / 100 % of requests sampled (`parentbased_traceidratio`), a server span and a client span per sampled request exported over OTLP/HTTP protobuf to a sink in the benchmark process that drops them. No retry policy in any variant. The upstream is also driven directly in every round (row **direct**): the baseline of the generator-bound rule, not of the ratios.',
        '**Circuit breakers are always on in Remora**: every variant, all-off included, takes and releases a `max_requests` slot per request, so their price is inside every figure here (`npm run bench:shared-state` prices it alone).',
        '',
        'Sanity check (each Remora\'s /metrics at the end, warm-up included; all-off, access-log, rate-limit and outlier have stats off and must count none):',
        '',
        ...sanity,
      ],
      variants: json,
    };
  } finally {
    for (const x of running.values()) if (x.e.pid !== null) await stopPid(x.e.pid);
    await sink.close();
  }
}


function coresNote(w: number): string {
  if (!opts.pin) return 'unpinned';
  const where = proxyCores(layout, w);
  return where === null ? `unpinned: ${w} workers need ${w + 1 + layout.generatorOwnCores} cores, ${cores} here` : `proxies pinned to cores ${where}`;
}

async function workersStep(step: Step, base: ReadonlyMap<string, Endpoint>, upstreamPort: number): Promise<StepResult> {
  const w = step.param;
  const where = proxyCores(layout, w);
  const started: number[] = [];
  try {
    const remora = await startRemora(procs, where, writeConfig(tmp, `remora-${w}w`, benchRemoraConfig({ ...ALL_OFF, stats: true }, upstreamPort, w)));
    started.push(remora.pid);
    const targets = new Map<string, Endpoint>([
      ['direct', base.get('direct')!],
      [`remora-${w}w`, { port: remora.listeners.bench, pid: remora.pid }],
    ]);
    const dir = join(tmp, `w${w}`);
    mkdirSync(dir, { recursive: true });
    for (const t of step.targets.slice(2)) {
      const name = t.slice(0, t.lastIndexOf('-')) as PeerName;
      if (SCALING_PEERS.includes(name)) {
        const p = await startPeer(procs, where, name, upstreamPort, w, dir);
        if (p.pid !== undefined) started.push(p.pid);
        targets.set(t, { port: p.port, pid: null });
      } else {
        targets.set(t, { port: base.get(name)!.port, pid: null }); // Node peers: the base process (1 worker)
      }
    }
    const peerNote = step.targets.length > 2 ? ` nginx with ${w} worker process(es), HAProxy with ${w} thread(s); the Node peers are single processes and join at 1 worker only.` : '';
    const note = `${coresNote(w)}; req/s per core = req/s ÷ ${w}.${peerNote} Peak RSS is Remora's (every thread of the process), sampled every 100 ms.`;
    return await closedStep(step, targets, { connections: FIXED_CONNECTIONS, perCore: w, note });
  } finally {
    for (const pid of started) await stopPid(pid);
  }
}

async function memoryStep(step: Step, upstreamPort: number): Promise<StepResult> {
  const w = step.param;
  const remora = await startRemora(procs, proxyCores(layout, w), writeConfig(tmp, `remora-mem-${w}w`, benchRemoraConfig({ ...ALL_OFF, stats: true }, upstreamPort, w)));
  try {
    await sleep(1000);
    const idle = new RssSampler(remora.pid, 100);
    await sleep(IDLE_SAMPLE_S * 1000);
    const idleMb = idle.stop();
    const rounds: MemoryRound[] = [];
    const e = { port: remora.listeners.bench, pid: null };
    for (let r = 0; r < opts.rounds; r++) {
      const sampler = new RssSampler(remora.pid, 100);
      const d = await drive(e, FIXED_CONNECTIONS, opts.duration, GET_ROOT);
      rounds.push({ rps: d.rps, errors: d.errors, rssMb: sampler.stop() });
    }
    return {
      id: step.id,
      group: step.group,
      tool: step.tool,
      param: w,
      toolText: `${autocannonText(FIXED_CONNECTIONS)}; RSS: VmRSS from /proc/<pid>/status every 100 ms`,
      memory: summarizeMemory(w, idleMb, rounds),
      note: `${coresNote(w)}; a fresh Remora (stats on, defaults), idle for 1 s after ready, then sampled idle for ${IDLE_SAMPLE_S} s and under ${opts.rounds} closed-loop run(s) of ${opts.duration} s. RSS covers the whole process (main thread and every worker thread).`,
    };
  } finally {
    await stopPid(remora.pid);
  }
}

async function soakStep(step: Step, upstreamPort: number): Promise<StepResult> {
  const w = step.param;
  const remora = await startRemora(procs, proxyCores(layout, w), writeConfig(tmp, `remora-soak-${w}w`, benchRemoraConfig({ ...ALL_OFF, stats: true }, upstreamPort, w)));
  try {
    const port = remora.listeners.bench;
    if (opts.warmup > 0) await runOpenLoop({ port, rate: opts.soakRate, durationMs: opts.warmup * 1000, connections: opts.openLoopConnections, warmupMs: 0 });
    const sampler = new RssSampler(remora.pid, 1000);
    const r = await runOpenLoop({ port, rate: opts.soakRate, durationMs: opts.soakSeconds * 1000, connections: opts.openLoopConnections, warmupMs: 0 });
    sampler.stop();
    const g = soakGrowth(sampler.samples);
    return {
      id: step.id,
      group: step.group,
      tool: step.tool,
      param: w,
      toolText: `${OPEN_LOOP_TEXT}; RSS: VmRSS every 1 s`,
      soak: { seconds: opts.soakSeconds, rate: opts.soakRate, ...g, requests: r.requests, errors: r.errors },
      note: `${coresNote(w)}; a fresh Remora (stats on), ${opts.warmup} s warm-up at the soak rate, then ${opts.soakSeconds} s at ${opts.soakRate} req/s (p50 ${r.p50} µs, p99 ${r.p99} µs). Growth = median of the last ${g.windowS} s minus median of the first ${g.windowS} s.`,
      samples: sampler.samples,
    };
  } finally {
    await stopPid(remora.pid);
  }
}

async function runStep(step: Step, base: ReadonlyMap<string, Endpoint>, upstreamPort: number): Promise<StepResult> {
  const only = (names: readonly string[]): Map<string, Endpoint> => new Map(names.map((n) => [n, base.get(n)!]));
  switch (step.group) {
    case 'latency':
      return latencyStep(step, base);
    case 'throughput':
      return closedStep(step, only(step.targets), { connections: step.param });
    case 'payload':
      return closedStep(step, only(step.targets), { connections: FIXED_CONNECTIONS, req: { path: `/payload/${step.param}/` } });
    case 'body':
      return closedStep(step, only(step.targets), { connections: FIXED_CONNECTIONS, req: { path: '/', method: 'POST', body: 'x'.repeat(step.param) } });
    case 'connections':
      return connectionsStep(step, base);
    case 'features':
      return featuresStep(step, upstreamPort);
    case 'workers':
      return workersStep(step, base, upstreamPort);
    case 'memory':
      return step.id === 'memory-soak' ? soakStep(step, upstreamPort) : memoryStep(step, upstreamPort);
  }
}

// ---- host noise -----------------------------------------------------------------------

type Timed = StepResult & { elapsedS?: number; estimateS?: number; host?: HostShare | null };

function noiseLines(results: readonly Timed[], whole: HostShare | null, loadStart: number[], loadEnd: number[], revStart: string, revEnd: string): string[] {
  const spreads = results.filter(() => opts.rounds > 1).flatMap((r) => {
    const d = r.closed?.find((x) => x.target === 'direct') ?? null;
    if (d && d.rps.median > 0) return [`${r.id} ${round(((d.rps.max - d.rps.min) / d.rps.median) * 100, 0)} %`];
    const l = r.latency?.find((x) => x.target === 'direct');
    return l ? [`${r.id} p99 ${l.absolute.p99} µs`] : [];
  });
  const perStep = results.filter((r) => r.host).map((r) => `${r.id} ${r.host!.otherPct} %`);
  return [
    '## Host noise',
    '',
    `CPU used by processes outside this benchmark (other sessions' tests, builds, …), as a share of all ${cores} cores' time: ${whole ? `${whole.otherPct} % over the run` : '-'}; per scenario: ${perStep.join(', ') || '-'}. The benchmark's own processes used ${whole ? `${whole.ownPct} %` : '-'}. CPU steal (the hypervisor running other guests on these vCPUs): ${whole ? `${whole.stealPct} %` : '-'}. (/proc/stat user+nice+system minus this process tree's utime+stime, read every second.)  `,
    `Load average (1 min) ${loadStart[0].toFixed(2)} at the start, ${loadEnd[0].toFixed(2)} at the end.  `,
    `Direct-to-upstream baseline, spread over rounds (max − min as % of the median req/s) or p99: ${spreads.join('; ') || '- (one round)'}.  `,
    ...(revStart !== revEnd ? [`Remora's source changed during the run (${revStart} at the start, ${revEnd} at the end): processes started later may run newer code if dist/ was rebuilt meanwhile.  `] : []),
    'Figures are reported as measured, not filtered; where other processes took a large share of the CPU, or the direct baseline spread widely, the host was disturbed during that scenario, and the paired per-round ratios are then the figures to read.',
    '',
  ];
}

// ---- main -----------------------------------------------------------------------------

async function main(): Promise<void> {
  if (layout.generator !== null) pinSelf(layout.generator);
  os.setPriority(19);
  const hostLoad = new HostLoad();
  const hostStart = hostLoad.snapshot();
  const loadStart = os.loadavg();
  const revStart = revision();
  const upstreamPort = await startUpstream(procs, layout.upstream ?? 0, 100);
  const needsBase = opts.groups.some((g) => g !== 'workers' && g !== 'features' && g !== 'memory');
  const base = new Map<string, Endpoint>([['direct', { port: upstreamPort, pid: null }]]);
  if (needsBase) {
    const remora = await startRemora(procs, proxyCores(layout, 1), writeConfig(tmp, 'remora', benchRemoraConfig({ ...ALL_OFF, stats: true }, upstreamPort, 1)));
    base.set('remora', { port: remora.listeners.bench, pid: remora.pid });
    // The opt-in uWS codec beside the default strict one, so every scenario prices the
    // codec choice in the same run (it joins the workers scenario at 1 worker only).
    const uws = await startRemora(procs, proxyCores(layout, 1), writeConfig(tmp, 'remora-uws', benchRemoraConfig({ ...ALL_OFF, stats: true, codec: 'uws' }, upstreamPort, 1)));
    base.set('remora-uws', { port: uws.listeners.bench, pid: uws.pid });
  }
  const peers: Record<string, string> = {};
  const peerGroups = opts.groups.filter((g) => g !== 'features' && g !== 'memory');
  for (const name of PEERS) {
    if (!opts.peers) peers[name] = 'skipped (--no-peers)';
    else if (peerGroups.length === 0) peers[name] = 'not used by the chosen scenarios';
    else {
      const missing = peerMissing(name);
      if (missing !== null) peers[name] = `skipped: ${missing}`;
      else {
        try {
          const p = await startPeer(procs, proxyCores(layout, 1), name, upstreamPort, 1, tmp);
          base.set(name, { port: p.port, pid: p.pid ?? null });
          const inWorkers = peerGroups.includes('workers') ? (SCALING_PEERS.includes(name) ? `; in workers with each worker count (${name === 'nginx' ? 'worker processes' : 'threads'})` : '; in workers at 1 worker only (one process)') : '';
          peers[name] = `measured in ${peerGroups.filter((g) => g !== 'workers').join(', ') || '-'} (1 ${name === 'haproxy' ? 'thread' : name === 'nginx' ? 'worker' : 'process'}, keep-alive to the upstream)${inWorkers}`;
        } catch (err) {
          peers[name] = `skipped: failed to start (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`;
        }
      }
    }
  }
  const proxies = [...base.keys()].filter((k) => k !== 'direct');
  const steps = planSteps(opts, proxies, hasWrk);
  log(`suite: ${steps.length} scenarios, targets ${['direct', ...proxies].join(', ')}; ${layout.text}; autocannon worker threads ${layout.autocannonWorkers} (${layout.autocannonWhy}); ${hasWrk ? 'wrk cross-check on' : 'wrk not installed: no cross-check'}`);
  for (const [name, state] of Object.entries(peers)) if (!state.startsWith('measured')) log(`  ${name}: ${state}`);

  const results: Timed[] = [];
  const started = Date.now();
  for (let i = 0; i < steps.length; i++) {
    log(progressLine(steps, i));
    const t0 = Date.now();
    const h0 = hostLoad.snapshot();
    try {
      const r = await runStep(steps[i], base, upstreamPort);
      const host = shareOf(h0, hostLoad.snapshot());
      results.push({ ...r, elapsedS: round((Date.now() - t0) / 1000, 1), estimateS: steps[i].estimateS, host });
      if (host) log(`  ${steps[i].id}: ${round((Date.now() - t0) / 1000, 0)} s; other processes used ${host.otherPct} % of the CPU meanwhile`);
    } catch (err) {
      log(`  ${steps[i].id} failed: ${err instanceof Error ? err.message : String(err)}`);
      results.push({ id: steps[i].id, group: steps[i].group, tool: steps[i].tool, param: steps[i].param, note: `failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}` });
    }
  }
  const rss = Object.fromEntries(proxies.map((p) => [p, rssMb(base.get(p)!.pid ?? -1)]));
  const checks = checkTargets(results);
  const bound = generatorBoundFigures(results);
  const wrkGroups = opts.groups.filter((g) => g === 'throughput' || g === 'payload' || g === 'body');
  const whole = shareOf(hostStart, hostLoad.snapshot());
  hostLoad.stop();
  const loadEnd = os.loadavg();

  const rev = revision();
  const when = new Date().toISOString();
  const stamp = stampOf(when);
  const dir = opts.out ?? join(ROOT, 'bench/results');
  const command = commandLine('bench');
  const svgs = charts(results);
  const totalS = round((Date.now() - started) / 1000, 0);
  const lines: string[] = [
    `# Benchmark suite — ${when}`,
    '',
    `Command: \`${command}\`  `,
    `Machine: ${MACHINE}; ${layout.text}  `,
    `Remora: ${rev === revStart ? rev : `${revStart} at the start, ${rev} at the end`}  `,
    `${opts.rounds} round(s) of ${opts.duration} s per target, interleaved, after a ${opts.warmup} s warm-up per target and tool; ${totalS} s in all.  `,
    'Every figure is a median over rounds with the min–max in brackets; "added" and "vs direct" are paired per round with the direct-to-upstream baseline of the same run (features: with all-off).',
    '',
    'Tools (each table names the one that produced it):',
    `- **open-loop** (latency, soak): ${OPEN_LOOP_TEXT}, coordinated omission corrected; one thread.`,
    `- **autocannon** (throughput, payload, body, features, workers, memory): closed loop, pipelining 1, ${layout.autocannonWorkers > 0 ? `up to ${layout.autocannonWorkers} worker threads (autocannon's \`workers\` option; the largest count that divides the connections)` : 'in this thread, no worker threads'}: ${layout.autocannonWhy}.`,
    `- **conn-loop** (connections): ${CONN_LOOP_TEXT}; one thread.`,
    hasWrk
      ? `- **wrk** (cross-check in ${wrkGroups.join(', ') || 'no chosen scenario'}): a native generator, one thread, the step's connections and duration, run after autocannon in every round on direct, remora, nginx and HAProxy (those that run); its tables follow autocannon's.`
      : `- **wrk**: not installed, so no native-generator cross-check: closed-loop figures come from Node.js generators only.`,
    '- **Generator CPU**: autocannon and conn-loop run in this process, so their CPU is this process\'s (process.cpuUsage() over the run, every thread); wrk\'s is its own (cutime + cstime of the shell that waited for it, /proc). % of one core: near 100 with one thread, the generator was saturated.',
    '- **RSS**: VmRSS of the Remora process from /proc/<pid>/status.',
    ...(cores < 4 ? ['', `On this ${cores}-core host the load generator shares core 0 with the upstream, so closed-loop figures rank targets only roughly and worker scaling is bounded by the cores.`] : []),
    ...(opts.quick ? ['', '**--quick run**: one short round per target, barely warmed up; a smoke check of the suite, not a measurement. Target verdicts below follow these figures only.'] : []),
    '',
    '## Targets (bench/README.md)',
    '',
    ...targetsTable(checks),
    '',
    `A closed-loop figure whose direct baseline (same generator, same rounds) ran under ${GENERATOR_HEADROOM_MIN}× its req/s is **generator-bound**: the load generator, not the target, may have set the pace, so no verdict uses it (marked "not judged"). Where autocannon's figures are generator-bound, the wrk rows are the ones to judge. Generator-bound figures (direct ÷ target): ${bound.length > 0 ? bound.join('; ') : 'none'}.`,
    '',
    ...noiseLines(results, whole, loadStart, loadEnd, revStart, rev),
    '## Peers',
    '',
    ...Object.entries(peers).map(([n, s]) => `- ${n}: ${s}`),
    '',
  ];
  for (const r of results) {
    lines.push(`## ${r.id}: ${stepTitle(r)}`, '');
    if (r.note) lines.push(`_${r.note}_`, '');
    if (r.latency || r.closed || r.connections || r.memory || r.soak) lines.push(...stepTable(r), '');
    if (r.wrk) lines.push(...wrkTable(r), '');
    else if (r.wrkText) lines.push(`_${r.wrkText}_`, '');
    if (r.notes) lines.push(...r.notes, '');
  }
  if (svgs.length > 0) {
    lines.push('## Charts', '');
    for (const c of svgs) lines.push(`![${c.name}](suite-${stamp}-${c.name}.svg)`, '');
  }
  lines.push(`RSS at the end, MB: ${Object.entries(rss).map(([k, v]) => `${k} ${v ?? '-'}`).join(', ') || '-'}`);
  const noise = { host: whole, loadavg_start: loadStart, loadavg_end: loadEnd };
  const generator = { headroom_min: GENERATOR_HEADROOM_MIN, wrk_installed: hasWrk, generator_bound: bound };
  const result = { when, command, revision: rev, revision_start: revStart, machine: MACHINE, pinned: opts.pin, layout, options: opts, peers, targets: checks, generator, noise, total_s: totalS, scenarios: results, rss_mb_end: rss, charts: svgs.map((c) => `suite-${stamp}-${c.name}.svg`) };
  const files = writeResults('suite', when, result, lines, dir);
  for (const c of svgs) {
    const f = join(dir, `suite-${stamp}-${c.name}.svg`);
    writeFileSync(f, c.svg);
    files.push(f);
  }
  log(`wrote ${files.map((f) => basename(f)).join(', ')} in ${dir}`);
}

runMain(main, () => {
  procs.stopAll();
  rmSync(tmp, { recursive: true, force: true });
});
