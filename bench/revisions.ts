// Regression check between two revisions of Remora: the current build and an older
// commit built in a temporary git worktree, each with 1 worker and every feature off
// Besides req/s, each figure carries the Remora process's CPU time per request (user +
// system of all its threads from /proc, over the measured seconds): on a shared, noisy
// host a throughput ratio wanders, while CPU per request moves much less.
// (`--stats` keeps stats recording on, Remora's default; `--codec uws` measures the uWS
// front end instead of the strict one), proxying the same uWS upstream; autocannon or,
// with `--generator wrk`, wrk (native, so the generator is not the limit) autocannon (50 connections) drives
// them in interleaved rounds (the order alternates each round), and the result is the
// per-round ratio current/old with its median. Used to check that a change (e.g. the
// TLS front end's seam) costs nothing on the uWS path. Layout as features.ts: each Remora
// on core 1, upstream and autocannon on core 0.
//
// `--scenario` picks the traffic: `get` (GET, 100 B responses; the default), `post4k`
// (POST with a 4 KiB body), `resp4k` (GET, 4 KiB responses) or `newconn` (GET on a new
// connection per request, bench/lib/conn-loop.ts with 16 lanes).
//
//   npm run bench:revisions -- --old <commit> [--scenario get|post4k|resp4k|newconn] [--rounds 10] [--duration 4] [--codec strict|uws] [--stats] [--generator autocannon|wrk] [--no-pin]

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { closedLoop } from './lib/closed-loop.js';
import { runConnLoop } from './lib/conn-loop.js';
import { clockTicksPerSecond, parsePidStat } from './lib/host-load.js';
import { wrkRps } from './lib/wrk.js';
import {
  canPin, commandLine, hasBinary, log, MACHINE, pairedSpread, pinSelf, Processes, REMORA_NODE_FLAGS, revision, ROOT, round, runMain, showSpread, spread, startUpstream,
  waitForOutput, writeConfig, writeResults,
} from './lib/harness.js';
import { ALL_OFF, benchRemoraConfig, type Features } from './lib/remora-config.js';

const { values: args } = parseArgs({
  options: {
    old: { type: 'string' },
    rounds: { type: 'string', default: '10' },
    duration: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '2' },
    codec: { type: 'string', default: 'strict' },
    stats: { type: 'boolean', default: false },
    generator: { type: 'string', default: 'autocannon' },
    scenario: { type: 'string', default: 'get' },
    'no-pin': { type: 'boolean', default: false },
  },
  strict: true,
});

type ScenarioName = 'get' | 'post4k' | 'resp4k' | 'newconn';
interface Scenario {
  readonly text: string;
  readonly responseBytes: number;
  readonly body?: string;
  readonly newConnections?: boolean;
}
const SCENARIOS: Record<ScenarioName, Scenario> = {
  get: { text: 'GET, 100 B responses', responseBytes: 100 },
  post4k: { text: 'POST 4 KiB bodies, 100 B responses', responseBytes: 100, body: 'x'.repeat(4096) },
  resp4k: { text: 'GET, 4 KiB responses', responseBytes: 4096 },
  newconn: { text: 'GET, 100 B responses, a new connection per request', responseBytes: 100, newConnections: true },
};

const work = mkdtempSync(join(tmpdir(), 'remora-bench-revisions-'));
const procs = new Processes(canPin(args['no-pin']));

/** Checks out `rev` into a worktree under `work` and builds it with this tree's
 *  node_modules; returns its bin/remora.js. */
function buildOld(rev: string): string {
  const dir = join(work, 'old');
  const git = spawnSync('git', ['-C', ROOT, 'worktree', 'add', '--detach', dir, rev], { encoding: 'utf8' });
  if (git.status !== 0) throw new Error(`git worktree add ${rev} failed: ${git.stderr}`);
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.build.json')], { encoding: 'utf8' });
  if (tsc.status !== 0) throw new Error(`building ${rev} failed: ${tsc.stdout}${tsc.stderr}`);
  return join(dir, 'bin/remora.js');
}

interface Build {
  readonly port: number;
  readonly pid: number;
}

async function startBuild(bin: string, config: string): Promise<Build> {
  const child = procs.start(1, process.execPath, [...REMORA_NODE_FLAGS, bin, 'run', '--config', config]);
  const m = await waitForOutput(child, /^.*"msg":"remora ready".*$/m);
  return { port: (JSON.parse(m[0]) as { listeners: Record<string, number> }).listeners.bench, pid: child.pid! };
}

/** CPU time (user + system, all threads) a process has used, in ms; NaN if unreadable. */
function cpuMs(pid: number): number {
  try {
    const ticks = parsePidStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.ticks;
    return ticks === undefined ? NaN : (ticks * 1000) / clockTicksPerSecond();
  } catch {
    return NaN;
  }
}

async function main(): Promise<void> {
  if (args.old === undefined) throw new Error('--old <commit> is required');
  const rounds = Number(args.rounds);
  const duration = Number(args.duration);
  if (procs.pin) pinSelf(0);
  const when = new Date().toISOString();
  const current = revision();
  const oldRev = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', args.old], { encoding: 'utf8' }).stdout.trim();
  log(`building ${oldRev} in ${work}`);
  const oldBin = buildOld(args.old);
  const scenario = SCENARIOS[args.scenario as ScenarioName];
  if (scenario === undefined) throw new Error(`--scenario is one of ${Object.keys(SCENARIOS).join(', ')}`);
  const upstream = await startUpstream(procs, 0, scenario.responseBytes);
  const codec = args.codec;
  if (codec !== 'strict' && codec !== 'uws') throw new Error('--codec is strict or uws');
  const features: Features = { ...ALL_OFF, stats: args.stats, codec };
  const config = writeConfig(work, 'remora', benchRemoraConfig(features, upstream, 1));
  const targets = { old: await startBuild(oldBin, config), current: await startBuild(join(ROOT, 'bin/remora.js'), config) };
  const useWrk = args.generator === 'wrk';
  if (!useWrk && args.generator !== 'autocannon') throw new Error('--generator is autocannon or wrk');
  if (useWrk && !hasBinary('wrk')) throw new Error('wrk is not installed (apt-get install wrk)');
  if (useWrk && args.scenario !== 'get' && args.scenario !== 'resp4k') throw new Error('--generator wrk drives the get and resp4k scenarios only');
  /** req/s and the target's CPU µs per request over one run. */
  const load = async (target: Build, seconds: number): Promise<{ rps: number; errors: number; cpuUs: number }> => {
    const before = cpuMs(target.pid);
    const res = useWrk
      ? { rps: wrkRps(target.port, seconds, procs.pin), errors: 0 }
      : scenario.newConnections
        ? await runConnLoop({ port: target.port, mode: 'new', lanes: 16, durationMs: seconds * 1000 })
        : await closedLoop({ port: target.port, connections: 50, seconds, ...(scenario.body !== undefined ? { method: 'POST' as const, body: scenario.body } : {}) });
    const used = cpuMs(target.pid) - before;
    return { ...res, cpuUs: res.rps > 0 ? (used * 1000) / (res.rps * seconds) : NaN };
  };
  for (const target of Object.values(targets)) await load(target, Number(args.warmup));
  const rows: { round: number; old: number; current: number; ratio: number; oldCpuUs: number; currentCpuUs: number; cpuRatio: number; errors: number }[] = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? (['old', 'current'] as const) : (['current', 'old'] as const);
    const rps = { old: 0, current: 0 };
    const cpu = { old: 0, current: 0 };
    let errors = 0;
    for (const name of order) {
      const res = await load(targets[name], duration);
      rps[name] = res.rps;
      cpu[name] = res.cpuUs;
      errors += res.errors;
    }
    const row = {
      round: r + 1, old: round(rps.old), current: round(rps.current), ratio: round(rps.current / rps.old, 3),
      oldCpuUs: round(cpu.old, 1), currentCpuUs: round(cpu.current, 1), cpuRatio: round(cpu.current / cpu.old, 3), errors,
    };
    rows.push(row);
    log(`round ${row.round}: old ${row.old} req/s ${row.oldCpuUs} µs CPU/req, current ${row.current} req/s ${row.currentCpuUs} µs CPU/req, current/old ${row.ratio} (CPU ${row.cpuRatio}), errors ${errors}`);
  }
  const ratio = spread(rows.map((r) => r.ratio), 3);
  const cpuRatio = spread(rows.map((r) => r.cpuRatio), 3);
  const pairedRatio = pairedSpread(rows.map((r) => r.ratio));
  const pairedCpuRatio = pairedSpread(rows.map((r) => r.cpuRatio));
  const lines = [
    `# Revisions: ${current} vs ${oldRev}, ${scenario.text} (${args.codec} HTTP/1 front end, stats ${args.stats ? 'on' : 'off'})`,
    '',
    `Command: \`${commandLine('bench:revisions')}\`  `,
    `When: ${when}; machine: ${MACHINE}; pinning ${procs.pin ? 'each Remora on core 1, autocannon + upstream on core 0' : 'off'}  `,
    `Remora 1 worker, every feature off${args.stats ? ' but stats' : ''}, ${scenario.text} through one route; ${useWrk ? 'wrk -t1 50 connections' : scenario.newConnections ? 'conn-loop 16 lanes' : 'autocannon 50 connections'}, ${duration} s per revision per round, ${rounds} rounds, order alternating, after a ${args.warmup} s warm-up each.`,
    '',
    `current/old req/s: **${showSpread(ratio)}**; current/old CPU time per request: **${showSpread(cpuRatio)}** (median (min–max) of the per-round ratios; 1 = no difference; CPU per request below 1 is cheaper).`,
    ...(pairedRatio !== null && pairedCpuRatio !== null
      ? ['', `Order-balanced: req/s ${showSpread(pairedRatio)}, CPU time per request ${showSpread(pairedCpuRatio)} (median (min–max) over pairs of rounds, 1 and 2, 3 and 4, …, of each pair's geometric mean: each revision ran first in one round of a pair, so what going first or second does to a figure cancels out).`]
      : []),
    '',
    '| round | old req/s | current req/s | current/old | old µs CPU/req | current µs CPU/req | current/old CPU | errors |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.round} | ${r.old} | ${r.current} | ${r.ratio} | ${r.oldCpuUs} | ${r.currentCpuUs} | ${r.cpuRatio} | ${r.errors} |`),
  ];
  writeResults('revisions', when, { when, command: commandLine('bench:revisions'), machine: MACHINE, current, old: oldRev, scenario: args.scenario, codec: args.codec, stats: args.stats, generator: args.generator, rounds: rows, ratio, cpuRatio, pairedRatio, pairedCpuRatio }, lines);
}

runMain(main, () => {
  procs.stopAll();
  if (existsSync(join(work, 'old'))) spawnSync('git', ['-C', ROOT, 'worktree', 'remove', '--force', join(work, 'old')]);
  rmSync(work, { recursive: true, force: true });
});
