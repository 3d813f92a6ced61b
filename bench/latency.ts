// Latency and throughput harness: Remora against direct-to-upstream (and nginx and
// HAProxy when installed), interleaved in one run, several rounds, medians reported.
//
//   npm run bench:latency -- [--rate 5000] [--duration 5] [--rounds 5] [--workers 1]
//                            [--connections 16] [--size 100] [--throughput-duration 5]
//                            [--warmup 5] [--no-pin] [--no-peers] [--no-throughput]
//
// Layout (DESIGN.md): load generator + upstream pinned to core 0, the proxy under test
// to core 1. Fixed-rate latency uses bench/lib/open-loop.ts (µs, coordinated omission
// corrected); closed-loop throughput uses autocannon (connections 50, pipelining 1).
// Writes bench/results/latency-<timestamp>.{json,md}.

import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { runOpenLoop, type LatencySummary } from './lib/open-loop.js';
import { MACHINE, Processes, REMORA_NODE_FLAGS, hasBinary, median, rssMb, runMain, waitForOutput } from './lib/harness.js';
import { freePort, peerMissing, startPeer } from './lib/peers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '5000' },
    duration: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '5' },
    workers: { type: 'string', default: '1' },
    connections: { type: 'string', default: '16' },
    size: { type: 'string', default: '100' },
    'throughput-duration': { type: 'string', default: '5' },
    warmup: { type: 'string', default: '5' },
    'no-pin': { type: 'boolean', default: false },
    'no-peers': { type: 'boolean', default: false },
    'no-throughput': { type: 'boolean', default: false },
  },
  strict: true,
});

const rate = Number(args.rate);
const durationMs = Number(args.duration) * 1000;
const rounds = Number(args.rounds);
const workers = Number(args.workers);
const connections = Number(args.connections);
const pin = !args['no-pin'] && os.availableParallelism() >= 2 && hasBinary('taskset');
const machine = MACHINE;
const tmp = mkdtempSync(join(os.tmpdir(), 'remora-bench-'));

const procs = new Processes(pin);

function start(core: number, cmd: string, argv: string[]): ChildProcess {
  return procs.start(core, cmd, argv);
}

interface Target {
  readonly name: string;
  readonly port: number;
  readonly pid?: number;
}

async function startTargets(upstreamPort: number): Promise<Target[]> {
  const targets: Target[] = [{ name: 'direct', port: upstreamPort }];

  const remoraPort = await freePort();
  const remora = start(1, process.execPath, [
    ...REMORA_NODE_FLAGS,
    join(ROOT, 'bin/remora.js'),
    'run',
    '--listen',
    `127.0.0.1:${remoraPort}`,
    '--upstream',
    `127.0.0.1:${upstreamPort}`,
    '--workers',
    String(workers),
    '--admin',
    '127.0.0.1:0',
  ]);
  await waitForOutput(remora, /remora ready/);
  targets.push({ name: 'remora', port: remoraPort, pid: remora.pid });

  // Same worker count as Remora, pinned to the proxy core (bench/lib/peers.ts).
  for (const name of ['nginx', 'haproxy'] as const) {
    if (args['no-peers'] || peerMissing(name) !== null) continue;
    const peer = await startPeer(procs, 1, name, upstreamPort, workers, tmp);
    targets.push({ name, port: peer.port, pid: peer.pid });
  }
  return targets;
}

async function throughput(port: number, seconds: number): Promise<number> {
  const result = await autocannon({ url: `http://127.0.0.1:${port}/`, connections: 50, pipelining: 1, duration: seconds });
  return result.requests.average;
}

async function main(): Promise<void> {
  // The load generator (this process, every thread of it) shares core 0 with the upstream.
  if (pin) spawnSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  // The generator spins (setImmediate) to keep its schedule; at the lowest priority it
  // yields core 0 to the upstream whenever the upstream has work, instead of sharing it.
  os.setPriority(19);
  const upstream = start(0, process.execPath, [join(ROOT, 'dist/bench/upstream-uws.js'), args.size!]);
  const upstreamPort = Number((await waitForOutput(upstream, /^(\d+)\n/m))[1]);
  const targets = await startTargets(upstreamPort);
  const names = targets.map((t) => t.name);
  process.stderr.write(`targets: ${names.join(', ')}; pinning ${pin ? 'on' : 'off'}\n`);

  // Steady state only: JIT tier-up and pool growth happen during a warm-up per target.
  const warmupMs = Number(args.warmup) * 1000;
  for (const t of targets) {
    if (warmupMs <= 0) break;
    process.stderr.write(`warm-up: ${t.name} at ${rate} req/s for ${warmupMs / 1000}s\n`);
    await runOpenLoop({ port: t.port, rate, durationMs: warmupMs, connections });
  }
  const latency: Record<string, LatencySummary[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (const t of targets) {
      process.stderr.write(`latency round ${r + 1}/${rounds}: ${t.name} at ${rate} req/s for ${durationMs / 1000}s\n`);
      latency[t.name].push(await runOpenLoop({ port: t.port, rate, durationMs, connections }));
    }
  }

  const tput: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const tputSeconds = Number(args['throughput-duration']);
  if (!args['no-throughput']) {
    for (let r = 0; r < 3; r++) {
      for (const t of targets) {
        process.stderr.write(`throughput round ${r + 1}/3: ${t.name}\n`);
        tput[t.name].push(await throughput(t.port, tputSeconds));
      }
    }
  }
  const rss = Object.fromEntries(targets.map((t) => [t.name, t.pid === undefined ? null : rssMb(t.pid)]));

  // Added latency per round (target minus direct in the same round), then the median.
  const pcts = ['p50', 'p90', 'p99', 'p999'] as const;
  const summary = names.map((name) => {
    const rows = latency[name];
    const added = Object.fromEntries(
      pcts.map((p) => {
        const perRound = rows.map((row, i) => row[p] - latency.direct[i][p]);
        return [p, { median: median(perRound), min: Math.min(...perRound), max: Math.max(...perRound) }];
      }),
    );
    const absolute = Object.fromEntries(pcts.map((p) => [p, median(rows.map((row) => row[p]))]));
    const rps = tput[name].length > 0 ? median(tput[name]) : null;
    const directRps = tput.direct.length > 0 ? median(tput.direct) : null;
    return {
      name,
      absolute_us: absolute,
      added_us: added,
      errors: rows.reduce((a, r) => a + r.errors, 0),
      throughput_rps: rps,
      throughput_vs_direct: rps !== null && directRps ? Math.round((rps / directRps) * 1000) / 1000 : null,
      rss_mb_after: rss[name],
    };
  });

  const when = new Date().toISOString();
  const command = `npm run bench:latency -- ${process.argv.slice(2).join(' ')}`.trim();
  const result = { when, command, machine, rate, duration_s: durationMs / 1000, rounds, workers, connections, body_bytes: Number(args.size), pinned: pin, summary, raw: { latency, throughput: tput } };

  const lines = [
    `# Latency and throughput — ${when}`,
    '',
    `Command: \`${command}\`  `,
    `Machine: ${machine}; pinning ${pin ? 'proxy on core 1, load generator + upstream on core 0' : 'off'}  `,
    `Fixed rate ${rate} req/s after a ${args.warmup} s warm-up per target, ${durationMs / 1000} s × ${rounds} rounds interleaved, ${connections} keep-alive connections, ${args.size}-byte responses, ${workers} proxy worker(s).`,
    'Latency from bench/lib/open-loop.ts (µs, from scheduled send); throughput from autocannon (50 connections, 3 rounds).',
    '',
    '| target | p50 µs | p99 µs | added p50 µs (min–max) | added p99 µs (min–max) | added p99.9 µs | closed-loop req/s | vs direct | RSS MB | errors |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...summary.map((s) => {
      const a = s.added_us as Record<string, { median: number; min: number; max: number }>;
      const abs = s.absolute_us as Record<string, number>;
      return `| ${s.name} | ${abs.p50} | ${abs.p99} | ${a.p50.median} (${a.p50.min}–${a.p50.max}) | ${a.p99.median} (${a.p99.min}–${a.p99.max}) | ${a.p999.median} | ${s.throughput_rps ?? '-'} | ${s.throughput_vs_direct ?? '-'} | ${s.rss_mb_after ?? '-'} | ${s.errors} |`;
    }),
    '',
  ];
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const stamp = when.replace(/[:.]/g, '-');
  writeFileSync(join(ROOT, `bench/results/latency-${stamp}.json`), JSON.stringify(result, null, 2) + '\n');
  writeFileSync(join(ROOT, `bench/results/latency-${stamp}.md`), lines.join('\n'));
  process.stdout.write(lines.join('\n'));
}

function cleanup(): void {
  procs.stopAll();
  rmSync(tmp, { recursive: true, force: true });
}

runMain(main, cleanup);
