// Where a Remora worker thread spends its CPU, per request: Remora in quick mode (1 worker,
// Remora's defaults) under `node --cpu-prof`, driven at a fixed rate per scenario; the
// worker thread's profile, cut to the measured window, becomes a flame graph and tables of
// the top functions, and /proc gives the worker thread's CPU per request.
//
//   npm run bench:profile -- [--scenario get|post4k|resp4k|newconn|all, or a comma list] [--rate 5000]
//                            [--seconds 15] [--warmup 3] [--workers 1] [--connections 16]
//                            [--interval-us 1000] [--out DIR] [--keep-profiles DIR] [--baseline]
//                            [--no-pin]
//
// Scenarios (the suite's requests, bench/suite.ts): get: GET, 100 B responses, keep-alive;
// post4k: POST with a 4 KB body (100 B responses), keep-alive; resp4k: GET /payload/4096/
// (4 KB responses), keep-alive; newconn: GET on a new connection per request
// (`Connection: close`, bench/lib/conn-loop.ts requestHead). get and resp4k use the
// open-loop generator (bench/lib/open-loop.ts); post4k and newconn use the small open-loop
// driver below (same schedule: request i at t0 + i/rate), which sends any request bytes and
// can open a connection per request.
// Layout: generator and upstream on core 0, Remora (every thread) on core 1, when pinning
// works. A fresh Remora per scenario: Node writes one .cpuprofile per thread when the
// process exits; the worker's is the one with frames from dist/workers/.
// Writes <out>/profile-<stamp>.{json,md} and profile-<scenario>-<stamp>.svg (out:
// bench/results). The .cpuprofile files stay in a temp dir that is removed, unless
// --keep-profiles DIR copies them there. --baseline first runs each scenario on a Remora
// without the profiler, for the worker's CPU per request unprofiled (the profiler's price).
// Long file: the scenario drivers, the per-thread CPU reading and the report belong to
// this one benchmark; the profile aggregation and the flame graph are bench/lib/flamegraph.ts.

import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { requestHead } from './lib/conn-loop.js';
import { flameGraphSvg, parseCpuProfile, summarize, topFrames, type CpuProfile, type FrameStat, type ProfileSummary } from './lib/flamegraph.js';
import { clockTicksPerSecond, parsePidStat } from './lib/host-load.js';
import { MACHINE, Processes, ROOT, canPin, commandLine, log, pinSelf, revision, round, runMain, sleep, stampOf, startRemoraRun, startUpstream, stopPid, writeResults } from './lib/harness.js';
import { runOpenLoop } from './lib/open-loop.js';
import { ResponseParser, type ResponseHandler } from '../src/upstream/http1-parser.js';

const SCENARIOS = ['get', 'post4k', 'resp4k', 'newconn'] as const;
type Scenario = (typeof SCENARIOS)[number];

const DESCRIPTION: Record<Scenario, string> = {
  get: 'GET, 100 B responses, keep-alive',
  post4k: 'POST with a 4 KB body, 100 B responses, keep-alive',
  resp4k: 'GET /payload/4096/, 4 KB responses, keep-alive',
  newconn: 'GET, 100 B responses, a new connection per request (Connection: close)',
};

const { values: args } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'all' },
    rate: { type: 'string', default: '5000' },
    seconds: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '3' },
    workers: { type: 'string', default: '1' },
    connections: { type: 'string', default: '16' },
    'interval-us': { type: 'string', default: '1000' },
    out: { type: 'string' },
    'keep-profiles': { type: 'string' },
    baseline: { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
  },
  strict: true,
});

function positive(name: string, text: string | undefined): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${text}`);
  return n;
}

const scenarios: readonly Scenario[] =
  args.scenario === 'all' ? SCENARIOS : args.scenario!.split(',').map((s) => {
    if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`--scenario: expected ${SCENARIOS.join('|')}|all, got ${s}`);
    return s as Scenario;
  });
const rate = positive('rate', args.rate);
const seconds = positive('seconds', args.seconds);
const warmupS = Number(args.warmup);
if (!Number.isFinite(warmupS) || warmupS < 0) throw new Error(`--warmup must be 0 or more seconds, got ${args.warmup}`);
const workers = Math.round(positive('workers', args.workers));
const connections = Math.round(positive('connections', args.connections));
const intervalUs = Math.round(positive('interval-us', args['interval-us']));
const outDir = resolve(args.out ?? join(ROOT, 'bench/results'));
const keepDir = args['keep-profiles'] !== undefined ? resolve(args['keep-profiles']) : null;
const baseline = args.baseline === true;
const pin = canPin(args['no-pin'] === true);
const procs = new Processes(pin);
const tmp = mkdtempSync(join(os.tmpdir(), 'remora-profile-'));
const BODY_4K = 'x'.repeat(4096);
const NEWCONN_LANES = 64;
const TOP_SELF = 25;
const TOP_TOTAL = 15;

// ---- a fixed-rate driver for request bytes open-loop.ts does not send -----------------

interface DriveResult {
  readonly requests: number;
  readonly errors: number;
  readonly achievedRate: number;
  /** Error kinds and counts ("ECONNRESET", "status 502", …), where the driver tells them. */
  readonly errorKinds?: Readonly<Record<string, number>>;
}

/** One connection at a time with one request in flight; `fresh`: a new connection for
 *  every request. Counts 2xx responses as done, anything else as an error. */
class Lane implements ResponseHandler {
  private socket: net.Socket | null = null;
  private readonly parser = new ResponseParser();
  private status = 0;
  private busy = false;

  constructor(
    private readonly port: number,
    private readonly fresh: boolean,
    private readonly done: (lane: Lane, ok: boolean, kind: string) => void,
  ) {}

  connect(): Promise<void> {
    const s = this.open();
    return new Promise((r) => s.once('connect', () => r()));
  }

  send(request: Buffer): void {
    this.busy = true;
    this.status = 0;
    this.parser.start(this, false);
    (this.socket ?? this.open()).write(request);
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }

  private open(): net.Socket {
    const s = net.connect({ port: this.port, host: '127.0.0.1', noDelay: true });
    this.socket = s;
    s.on('data', (buf: Buffer) => {
      if (s !== this.socket) return;
      try {
        this.parser.execute(buf);
      } catch {
        this.finish(false, 'malformed response');
      }
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (s === this.socket) this.finish(false, err.code ?? 'socket error');
    });
    s.on('close', () => {
      if (s !== this.socket) return;
      if (!this.busy) this.socket = null;
      else if (this.parser.endsAtClose) this.parser.finishAtClose();
      else this.finish(false, 'closed before the response');
    });
    return s;
  }

  onHead(status: number): void {
    this.status = status;
  }
  onBody(): void {}
  onComplete(): void {
    this.finish(this.status >= 200 && this.status < 300, `status ${this.status}`);
  }

  private finish(ok: boolean, kind: string): void {
    if (!this.busy) return;
    this.busy = false;
    if (this.fresh || !ok) this.close();
    this.done(this, ok, kind);
  }
}

/** Sends `request` at t0 + i/rate for `durationMs` over `lanes` lanes (a request waits for
 *  a free lane when none is), then waits up to 5 s for the last responses. */
async function runPaced(port: number, request: Buffer, fresh: boolean, lanes: number, durationMs: number): Promise<DriveResult> {
  let requests = 0;
  let errors = 0;
  let queued = 0;
  const errorKinds: Record<string, number> = {};
  const done = (lane: Lane, ok: boolean, kind: string): void => {
    if (ok) requests++;
    else {
      errors++;
      errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
    }
    if (queued > 0) {
      queued--;
      lane.send(request);
    } else free.push(lane);
  };
  const all = Array.from({ length: lanes }, () => new Lane(port, fresh, done));
  const free = all.slice();
  if (!fresh) await Promise.all(all.map((l) => l.connect()));
  const start = performance.now();
  const end = start + durationMs;
  const intervalMs = 1000 / rate;
  let next = start;
  await new Promise<void>((resolveRun) => {
    const tick = (): void => {
      const now = performance.now();
      for (; next <= now && next < end; next += intervalMs) {
        const lane = free.pop();
        if (lane !== undefined) lane.send(request);
        else queued++;
      }
      if (next < end) {
        setImmediate(tick); // timers are too coarse for the schedule
        return;
      }
      const drain = (): void => {
        if ((free.length === lanes && queued === 0) || performance.now() > end + 5000) resolveRun();
        else setTimeout(drain, 5);
      };
      drain();
    };
    tick();
  });
  for (const l of all) l.close();
  if (queued > 0) errorKinds['never sent (no free lane by the end)'] = queued;
  return { requests, errors: errors + queued, achievedRate: requests / (durationMs / 1000), errorKinds };
}

function drive(s: Scenario, port: number, durationMs: number): Promise<DriveResult> {
  switch (s) {
    case 'get':
    case 'resp4k':
      return runOpenLoop({ port, rate, durationMs, connections, path: s === 'get' ? '/' : '/payload/4096/', warmupMs: 0 });
    case 'post4k': {
      const head = `POST / HTTP/1.1\r\nhost: bench\r\ncontent-type: application/octet-stream\r\ncontent-length: ${BODY_4K.length}\r\n\r\n`;
      return runPaced(port, Buffer.from(head + BODY_4K), false, connections, durationMs);
    }
    case 'newconn':
      return runPaced(port, Buffer.from(requestHead('new')), true, NEWCONN_LANES, durationMs);
  }
}

// ---- the Remora process: threads, stop, profiles --------------------------------------

const CLK_TCK = clockTicksPerSecond();

interface ThreadCpu {
  readonly comm: string;
  /** utime + stime, clock ticks. */
  readonly ticks: number;
}

/** utime + stime of every thread of `pid` (/proc/<pid>/task/<tid>/stat). */
function threadCpu(pid: number): Map<number, ThreadCpu> {
  const out = new Map<number, ThreadCpu>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const parsed = parsePidStat(stat);
      if (parsed !== null) out.set(parsed.pid, { comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), ticks: parsed.ticks });
    } catch {
      // the thread ended between readdir and read
    }
  }
  return out;
}

interface CpuSplit {
  /** The `workers` busiest threads but the main thread and V8's profiler threads. */
  readonly workerTids: number[];
  readonly workerMs: number;
  readonly mainMs: number;
  readonly profilerMs: number;
  readonly processMs: number;
}

function splitCpu(pid: number, before: Map<number, ThreadCpu>, after: Map<number, ThreadCpu>): CpuSplit {
  const ms = (ticks: number): number => (ticks * 1000) / CLK_TCK;
  const deltas = [...after].map(([tid, a]) => ({ tid, comm: a.comm, ticks: a.ticks - (before.get(tid)?.ticks ?? 0) }));
  const others = deltas.filter((d) => d.tid !== pid && !d.comm.startsWith('v8:')).sort((a, b) => b.ticks - a.ticks);
  const busiest = others.slice(0, workers);
  const sum = (xs: readonly { ticks: number }[]): number => ms(xs.reduce((s, d) => s + d.ticks, 0));
  return {
    workerTids: busiest.map((d) => d.tid),
    workerMs: sum(busiest),
    mainMs: sum(deltas.filter((d) => d.tid === pid)),
    profilerMs: sum(deltas.filter((d) => d.comm.startsWith('v8:'))),
    processMs: sum(deltas),
  };
}

/** SIGINT (every thread exits normally and writes its profile), then waits for the
 *  process to be gone. */
async function stopAndWait(pid: number, ms = 15000): Promise<void> {
  if (!(await stopPid(pid, ms))) throw new Error(`Remora (pid ${pid}) did not exit within ${ms / 1000} s of SIGINT: no profiles`);
}

function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n); // the clock .cpuprofile time stamps use
}

const isWorkerProfile = (p: CpuProfile): boolean => p.nodes.some((n) => n.callFrame.url.includes('/dist/workers/'));

// ---- one scenario ---------------------------------------------------------------------

interface FrameRow {
  readonly frame: string;
  readonly category: string;
  readonly self_pct_busy: number;
  readonly self_us_per_request: number;
  readonly total_pct_busy: number;
  readonly total_us_per_request: number;
}

interface CpuPerRequest {
  readonly worker_us_per_request: number;
  readonly process_us_per_request: number;
  readonly main_thread_us_per_request: number;
  readonly profiler_threads_us_per_request: number;
  readonly worker_tids: number[];
}

interface ScenarioResult {
  readonly scenario: Scenario;
  readonly description: string;
  readonly target_rate: number;
  readonly achieved_rate: number;
  readonly requests: number;
  readonly errors: number;
  readonly error_kinds: Readonly<Record<string, number>>;
  readonly window_s: number;
  readonly cpu: CpuPerRequest;
  /** The same scenario on a Remora without the profiler (--baseline), or null. */
  readonly unprofiled: { readonly achieved_rate: number; readonly errors: number; readonly cpu: CpuPerRequest } | null;
  readonly profile: {
    readonly window: string;
    readonly samples: number;
    readonly busy_samples: number;
    readonly idle_samples: number;
    readonly idle_pct: number;
    readonly busy_us_per_request: number;
    readonly gc_pct_of_busy: number;
    readonly gc_us_per_request: number;
    readonly worker_profiles: number;
    readonly kept: string[];
  };
  readonly top_self: FrameRow[];
  readonly top_total: FrameRow[];
  readonly svg: string;
}

/** Shares of busy time: each sample weighs the time until the next one. */
function rows(s: ProfileSummary, frames: readonly FrameStat[], requests: number): FrameRow[] {
  const pct = (us: number): number => round((us / Math.max(1, s.busyUs)) * 100, 2);
  const per = (us: number): number => round(us / Math.max(1, requests), 3);
  return frames.map((f) => ({
    frame: f.name,
    category: f.category,
    self_pct_busy: pct(f.selfUs),
    self_us_per_request: per(f.selfUs),
    total_pct_busy: pct(f.totalUs),
    total_us_per_request: per(f.totalUs),
  }));
}

interface Measured {
  readonly result: DriveResult;
  readonly cpu: CpuPerRequest;
  readonly fromUs: number;
  readonly toUs: number;
}

/** A fresh Remora (with `nodeFlags`) on core 1: warm-up, the measured window, stop. */
async function measure(s: Scenario, upstreamPort: number, nodeFlags: readonly string[], what: string): Promise<Measured> {
  const runArgs = ['--listen', '127.0.0.1:0', '--upstream', `127.0.0.1:${upstreamPort}`, '--workers', String(workers), '--admin', '127.0.0.1:0'];
  const remora = await startRemoraRun(procs, 1, runArgs, nodeFlags);
  try {
    const port = remora.listeners.main;
    if (warmupS > 0) {
      log(`${s}, ${what}: warm-up at ${rate} req/s for ${warmupS} s`);
      await drive(s, port, warmupS * 1000);
    }
    log(`${s}, ${what}: ${rate} req/s for ${seconds} s`);
    const before = threadCpu(remora.pid);
    const fromUs = nowUs();
    const result = await drive(s, port, seconds * 1000);
    const toUs = nowUs();
    const c = splitCpu(remora.pid, before, threadCpu(remora.pid));
    const n = Math.max(1, result.requests);
    const per = (ms: number): number => round((ms * 1000) / n, 1);
    const cpu = {
      worker_us_per_request: per(c.workerMs),
      process_us_per_request: per(c.processMs),
      main_thread_us_per_request: per(c.mainMs),
      profiler_threads_us_per_request: per(c.profilerMs),
      worker_tids: c.workerTids,
    };
    return { result, cpu, fromUs, toUs };
  } finally {
    await stopAndWait(remora.pid);
  }
}

async function profileScenario(s: Scenario, upstreamPort: number, stamp: string): Promise<ScenarioResult> {
  const base = baseline ? await measure(s, upstreamPort, [], 'unprofiled') : null;
  const dir = join(tmp, s);
  mkdirSync(dir, { recursive: true });
  const { result, cpu, fromUs, toUs } = await measure(s, upstreamPort, ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-interval=${intervalUs}`], 'profiled');

  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const parsed = files.map((f) => ({ file: f, profile: parseCpuProfile(readFileSync(join(dir, f), 'utf8')) }));
  const candidates = parsed.filter((p) => isWorkerProfile(p.profile)).map((p) => ({ ...p, summary: summarize(p.profile, { fromUs, toUs }) }));
  if (candidates.length === 0) throw new Error(`${s}: none of the ${files.length} profiles (${files.join(', ')}) has frames from dist/workers/`);
  const worker = candidates.reduce((a, b) => (b.summary.busyUs > a.summary.busyUs ? b : a));
  const sum = worker.summary;
  const kept: string[] = [];
  if (keepDir !== null) {
    mkdirSync(keepDir, { recursive: true });
    let k = 0;
    let m = 0;
    for (const p of parsed) {
      const role = p.file === worker.file ? 'worker' : isWorkerProfile(p.profile) ? `worker-${++k + 1}` : m++ === 0 ? 'main' : `other-${m}`;
      const to = join(keepDir, `profile-${s}-${stamp}-${role}.cpuprofile`);
      copyFileSync(join(dir, p.file), to);
      kept.push(to);
    }
  }
  rmSync(dir, { recursive: true, force: true });

  const n = Math.max(1, result.requests);
  const idlePct = round((sum.idleUs / Math.max(1, sum.us)) * 100, 1);
  const gcPct = round((sum.gcUs / Math.max(1, sum.busyUs)) * 100, 2);
  const svgName = `profile-${s}-${stamp}.svg`;
  const svg = flameGraphSvg(sum.root, {
    title: `Remora worker thread CPU profile: ${s} (${DESCRIPTION[s]})`,
    subtitle: `${round(result.achievedRate)} req/s for ${seconds} s; worker ${cpu.worker_us_per_request} µs CPU per request (/proc); ${sum.busySamples} busy samples of ${sum.samples} (idle not drawn); GC ${gcPct} % of busy; ${revision()}`,
    allSamples: sum.samples,
  });
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, svgName), svg);
  return {
    scenario: s,
    description: DESCRIPTION[s],
    target_rate: rate,
    achieved_rate: round(result.achievedRate),
    requests: result.requests,
    errors: result.errors,
    error_kinds: result.errorKinds ?? {},
    window_s: round((toUs - fromUs) / 1e6, 2),
    cpu,
    unprofiled: base === null ? null : { achieved_rate: round(base.result.achievedRate), errors: base.result.errors, cpu: base.cpu },
    profile: {
      window: sum.windowed ? 'the measured window' : 'the whole profile (no sample fell inside the measured window)',
      samples: sum.samples,
      busy_samples: sum.busySamples,
      idle_samples: sum.idleSamples,
      idle_pct: idlePct,
      busy_us_per_request: round(sum.busyUs / n, 1),
      gc_pct_of_busy: gcPct,
      gc_us_per_request: round(sum.gcUs / n, 2),
      worker_profiles: candidates.length,
      kept,
    },
    top_self: rows(sum, topFrames(sum, TOP_SELF, 'self'), n),
    top_total: rows(sum, topFrames(sum, TOP_TOTAL, 'total'), n),
    svg: svgName,
  };
}

// ---- report ---------------------------------------------------------------------------

const cell = (text: string): string => `\`${text.replace(/`/g, "'").replace(/\|/g, '\\|')}\``;

function kinds(k: Readonly<Record<string, number>>): string {
  const e = Object.entries(k);
  return e.length === 0 ? '' : ` (${e.map(([kind, n]) => `${kind} × ${n}`).join(', ')})`;
}

function scenarioLines(r: ScenarioResult): string[] {
  const short = r.achieved_rate < 0.95 * r.target_rate ? ' **Under 95 % of the target rate: Remora (or the generator) did not keep up; the profile is of a saturated worker.**' : '';
  const c = r.cpu;
  const u = r.unprofiled;
  return [
    `## ${r.scenario}: ${r.description}`,
    '',
    `${r.achieved_rate} req/s achieved of ${r.target_rate} targeted; ${r.requests} requests, ${r.errors} errors${kinds(r.error_kinds)} in ${r.window_s} s.${short}  `,
    `**Worker thread CPU: ${c.worker_us_per_request} µs per request** (/proc utime + stime of thread${c.worker_tids.length > 1 ? 's' : ''} ${c.worker_tids.join(', ')}); whole process ${c.process_us_per_request} µs (main thread ${c.main_thread_us_per_request}, V8 profiler threads ${c.profiler_threads_us_per_request}, the rest GC helper threads and libuv's pool).  `,
    ...(u !== null
      ? [`Unprofiled (same scenario, a Remora without --cpu-prof): worker ${u.cpu.worker_us_per_request} µs per request, whole process ${u.cpu.process_us_per_request} µs, at ${u.achieved_rate} req/s with ${u.errors} errors.  `]
      : []),
    `Profile (${r.profile.window}): ${r.profile.busy_samples} busy samples of ${r.profile.samples} (${r.profile.idle_pct} % of the time idle); busy time from the samples ${r.profile.busy_us_per_request} µs per request; **GC ${r.profile.gc_pct_of_busy} % of busy** (${r.profile.gc_us_per_request} µs per request).${r.profile.worker_profiles > 1 ? ` ${r.profile.worker_profiles} worker profiles: the busiest is shown.` : ''}`,
    '',
    `![flame graph, ${r.scenario}](${r.svg})`,
    '',
    `Top ${TOP_SELF} by self time (% of busy time; µs per request):`,
    '',
    '| # | function | category | self % | self µs/req | total % |',
    '|---|---|---|---|---|---|',
    ...r.top_self.map((f, i) => `| ${i + 1} | ${cell(f.frame)} | ${f.category} | ${f.self_pct_busy} | ${f.self_us_per_request} | ${f.total_pct_busy} |`),
    '',
    `Top ${TOP_TOTAL} by total (inclusive) time:`,
    '',
    '| # | function | category | total % | total µs/req | self % |',
    '|---|---|---|---|---|---|',
    ...r.top_total.map((f, i) => `| ${i + 1} | ${cell(f.frame)} | ${f.category} | ${f.total_pct_busy} | ${f.total_us_per_request} | ${f.self_pct_busy} |`),
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
  const results: ScenarioResult[] = [];
  for (const s of scenarios) results.push(await profileScenario(s, upstreamPort, stamp));
  const command = commandLine('bench:profile');
  const lines = [
    `# Worker CPU profile — ${when}`,
    '',
    `Command: \`${command}\`  `,
    `Machine: ${MACHINE}; pinning ${pin ? 'generator and upstream on core 0, Remora on core 1' : 'off'}  `,
    `Remora: ${rev}; quick mode (\`remora run --listen --upstream\`: Remora's defaults, stats on, strict HTTP/1 codec), ${workers} worker(s), a fresh process per scenario under \`node --cpu-prof --cpu-prof-interval=${intervalUs}\`${baseline ? ', and first one without the profiler (--baseline)' : ''}.  `,
    `Load: ${rate} req/s for ${seconds} s after a ${warmupS} s warm-up; get and resp4k: bench/lib/open-loop.ts with ${connections} keep-alive connections; post4k: the same schedule over ${connections} keep-alive connections; newconn: the same schedule over ${NEWCONN_LANES} lanes, each request on a new connection.`,
    '',
    "**Worker CPU per request** (the figure to compare): the worker thread's utime + stime from /proc/<pid>/task/<tid>/stat over the measured window, divided by the responses received. Node names its threads `node`, so the worker is the busiest thread other than the main thread and V8's `v8:ProfEvntProc` profiler threads. It includes the profiler's cost on that thread (a signal and a stack walk per sample): `--baseline` measures an unprofiled Remora too.",
    "**Busy time from the samples** is lower: V8 marks the thread `(idle)` from the event loop's prepare phase to its check phase, so native work done there outside JavaScript (libuv's reads, epoll, the kernel's side of them) counts as idle. The profile shows where the JavaScript-visible time goes; /proc says how much CPU there is.",
    "**Profile**: the worker thread's .cpuprofile (the one with frames from dist/workers/), only the samples inside the measured window (profile time stamps and process.hrtime share the monotonic clock); each sample weighs the time until the next one. Frames are merged by function name and file:line. `(idle)` is excluded from every % (they are % of busy time) and from the flame graph; `(program)` is native time V8 cannot attribute to a JS function; `(garbage collector)` is GC on this thread. The flame graph's widths are sample counts; frames narrower than 0.1 % of busy samples are dropped; hover a frame for its samples and shares.",
    '',
    `| scenario | req/s | worker CPU µs/req (/proc) |${baseline ? ' unprofiled µs/req |' : ''} busy µs/req (samples) | idle % | GC % of busy | top self frame |`,
    `|---|---|---|${baseline ? '---|' : ''}---|---|---|---|`,
    ...results.map(
      (r) =>
        `| ${r.scenario} | ${r.achieved_rate} | ${r.cpu.worker_us_per_request} |${baseline ? ` ${r.unprofiled?.cpu.worker_us_per_request ?? '-'} |` : ''} ${r.profile.busy_us_per_request} | ${r.profile.idle_pct} | ${r.profile.gc_pct_of_busy} | ${r.top_self[0] ? `${cell(r.top_self[0].frame)} ${r.top_self[0].self_pct_busy} %` : '-'} |`,
    ),
    '',
    ...results.flatMap(scenarioLines),
  ];
  const result = { when, command, machine: MACHINE, revision: rev, pinned: pin, rate, seconds, warmup_s: warmupS, workers, connections, interval_us: intervalUs, baseline, clk_tck: CLK_TCK, scenarios: results };
  const files = writeResults('profile', when, result, lines, outDir);
  log(`wrote ${[...files, ...results.map((r) => join(outDir, r.svg))].map((f) => basename(f)).join(', ')} in ${outDir}`);
}

runMain(main, () => {
  procs.stopAll();
  rmSync(tmp, { recursive: true, force: true });
});
