// Regression check between two revisions of Remora: the current build and an older
// commit built in a temporary git worktree, each with 1 worker and every feature off
// (`--stats` keeps stats recording on, Remora's default; `--codec uws` measures the uWS
// front end instead of the strict one), proxying the same uWS upstream; autocannon (50 connections) drives
// them in interleaved rounds (the order alternates each round), and the result is the
// per-round ratio current/old with its median. Used to check that a change (e.g. the
// TLS front end's seam) costs nothing on the uWS path. Layout as features.ts: each Remora
// on core 1, upstream and autocannon on core 0.
//
//   npm run bench:revisions -- --old <commit> [--rounds 10] [--duration 4] [--codec strict|uws] [--stats] [--no-pin]

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { closedLoop } from './lib/closed-loop.js';
import {
  canPin, commandLine, log, MACHINE, pinSelf, Processes, revision, ROOT, round, runMain, showSpread, spread, startUpstream,
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
    'no-pin': { type: 'boolean', default: false },
  },
  strict: true,
});

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

async function startBuild(bin: string, config: string): Promise<number> {
  const child = procs.start(1, process.execPath, [bin, 'run', '--config', config]);
  const m = await waitForOutput(child, /^.*"msg":"remora ready".*$/m);
  return (JSON.parse(m[0]) as { listeners: Record<string, number> }).listeners.bench;
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
  const upstream = await startUpstream(procs, 0);
  const codec = args.codec;
  if (codec !== 'strict' && codec !== 'uws') throw new Error('--codec is strict or uws');
  const features: Features = { ...ALL_OFF, stats: args.stats, codec };
  const config = writeConfig(work, 'remora', benchRemoraConfig(features, upstream, 1));
  const targets = { old: await startBuild(oldBin, config), current: await startBuild(join(ROOT, 'bin/remora.js'), config) };
  for (const port of Object.values(targets)) await closedLoop({ port, connections: 50, seconds: Number(args.warmup) });
  const rows: { round: number; old: number; current: number; ratio: number; errors: number }[] = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? (['old', 'current'] as const) : (['current', 'old'] as const);
    const rps = { old: 0, current: 0 };
    let errors = 0;
    for (const name of order) {
      const res = await closedLoop({ port: targets[name], connections: 50, seconds: duration });
      rps[name] = res.rps;
      errors += res.errors;
    }
    const row = { round: r + 1, old: round(rps.old), current: round(rps.current), ratio: round(rps.current / rps.old, 3), errors };
    rows.push(row);
    log(`round ${row.round}: old ${row.old} req/s, current ${row.current} req/s, current/old ${row.ratio}, errors ${errors}`);
  }
  const ratio = spread(rows.map((r) => r.ratio), 3);
  const lines = [
    `# Revisions: ${current} vs ${oldRev} (${args.codec} HTTP/1 front end, stats ${args.stats ? 'on' : 'off'})`,
    '',
    `Command: \`${commandLine('bench:revisions')}\`  `,
    `When: ${when}; machine: ${MACHINE}; pinning ${procs.pin ? 'each Remora on core 1, autocannon + upstream on core 0' : 'off'}  `,
    `Remora 1 worker, every feature off${args.stats ? ' but stats' : ''}, GET 100 B through one route; autocannon 50 connections, ${duration} s per revision per round, ${rounds} rounds, order alternating, after a ${args.warmup} s warm-up each.`,
    '',
    `current/old req/s: **${showSpread(ratio)}** (median (min–max) of the per-round ratios; 1 = no difference).`,
    '',
    '| round | old req/s | current req/s | current/old | errors |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.round} | ${r.old} | ${r.current} | ${r.ratio} | ${r.errors} |`),
  ];
  writeResults('revisions', when, { when, command: commandLine('bench:revisions'), machine: MACHINE, current, old: oldRev, codec: args.codec, stats: args.stats, rounds: rows, ratio }, lines);
}

runMain(main, () => {
  procs.stopAll();
  if (existsSync(join(work, 'old'))) spawnSync('git', ['-C', ROOT, 'worktree', 'remove', '--force', join(work, 'old')]);
  rmSync(work, { recursive: true, force: true });
});
