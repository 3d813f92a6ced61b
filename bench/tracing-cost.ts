// The CPU price of tracing per request, independent of the load generator: Remora with
// tracing off, at 1 % and at 100 % sampling (1 worker each, all on the same core) under
// the same fixed request rate (open loop), interleaved rounds. For each round the CPU
// time the Remora process used (every thread: the worker, and the main thread that
// exports) is read from /proc and divided by the requests served. A proxy that is
// CPU-bound serves in inverse proportion to that figure, so
// throughput cost = 1 − (CPU per request off ÷ CPU per request on).
// On this 2-core host closed-loop req/s is bound by the generator (autocannon shares
// core 0 with the upstream), so the suite's features ratios swing ±30 % round to round;
// CPU per request at a fixed rate does not depend on the generator.
//
//   npm run bench:tracing-cost -- [--rate 6000] [--duration 8] [--rounds 7] [--connections 16] [--no-pin]
//
// Writes bench/results/tracing-cost-<timestamp>.{json,md}.

import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { runOpenLoop } from './lib/open-loop.js';
import { MACHINE, Processes, canPin, commandLine, log, median, revision, round, runMain, startRemora, startUpstream, writeConfig, writeResults } from './lib/harness.js';
import { startOtlpSink } from './lib/otlp-sink.js';
import { benchRemoraConfig, ALL_OFF, type Features } from './lib/remora-config.js';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '6000' },
    duration: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '7' },
    connections: { type: 'string', default: '16' },
    'no-pin': { type: 'boolean', default: false },
  },
  strict: true,
});
const rate = Number(args.rate);
const durationMs = Number(args.duration) * 1000;
const rounds = Number(args.rounds);
const connections = Number(args.connections);
const pin = canPin(args['no-pin'] === true);
const procs = new Processes(pin);
const tmp = mkdtempSync(join(os.tmpdir(), 'remora-tracing-cost-'));
const TICK_MS = 1000 / 100; // /proc/<pid>/stat times are in clock ticks (USER_HZ = 100)

/** CPU milliseconds (user + system, every thread) the process has used. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS; // utime, stime (fields 14, 15)
}

interface Variant {
  readonly name: string;
  readonly features: Features;
}

async function main(): Promise<void> {
  if (pin) spawnSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  const sink = await startOtlpSink();
  const upstreamPort = await startUpstream(procs, 0, 100);
  const variants: Variant[] = [
    { name: 'off', features: ALL_OFF },
    { name: 'tracing 1 %', features: { ...ALL_OFF, tracing: { percent: 1, endpoint: sink.endpoint } } },
    { name: 'tracing 100 %', features: { ...ALL_OFF, tracing: { percent: 100, endpoint: sink.endpoint } } },
  ];
  const running = [];
  for (const v of variants) {
    const r = await startRemora(procs, 1, writeConfig(tmp, v.name.replace(/\W+/g, '-'), benchRemoraConfig(v.features, upstreamPort, 1)));
    running.push({ v, pid: r.pid, port: r.listeners.bench });
  }
  for (const r of running) {
    log(`warm-up: ${r.v.name} at ${rate} req/s for 5 s`);
    await runOpenLoop({ port: r.port, rate, durationMs: 5000, connections });
  }
  const perRequest: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.name, []]));
  const p50: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.name, []]));
  for (let i = 0; i < rounds; i++) {
    for (const r of running) {
      log(`round ${i + 1}/${rounds}: ${r.v.name} at ${rate} req/s for ${durationMs / 1000} s`);
      const before = cpuMs(r.pid);
      const res = await runOpenLoop({ port: r.port, rate, durationMs, connections });
      // Spans finished in the round are exported up to a schedule delay later: wait for them
      // (every variant waits as long, so each round holds the same idle time).
      await new Promise((done) => setTimeout(done, 5500));
      perRequest[r.v.name].push((cpuMs(r.pid) - before) * 1000 / Math.max(1, res.requests - res.errors));
      p50[r.v.name].push(res.p50);
    }
  }
  const base = median(perRequest.off);
  const when = new Date().toISOString();
  const lines = [
    `# Tracing: CPU per request (${when})`,
    '',
    `Command: \`${commandLine('bench:tracing-cost')}\`; ${MACHINE}; revision ${revision()}; pinning ${pin ? 'on (generator, upstream, OTLP sink: core 0; the Remoras: core 1)' : 'off'}.`,
    `Remora: 1 worker, stats off, no access log (the features scenario's all-off), plus tracing as named, spans exported over OTLP/HTTP protobuf to a sink that drops them. Open loop at ${rate} req/s over ${connections} connections, ${durationMs / 1000} s per round, ${rounds} rounds interleaved; CPU = utime + stime of the whole Remora process (worker and main thread) over the round and the 5.5 s after it (the last batch's export), per request served.`,
    '',
    '| variant | CPU µs per request, median (min–max) | vs off | throughput cost (1 − off ÷ variant) | p50 µs |',
    '|---|---|---|---|---|',
  ];
  const rows = variants.map((v) => {
    const xs = perRequest[v.name];
    const m = median(xs);
    return { name: v.name, median: round(m, 1), min: round(Math.min(...xs), 1), max: round(Math.max(...xs), 1), ratio: round(m / base, 3), cost: round((1 - base / m) * 100, 1), p50: median(p50[v.name]) };
  });
  for (const r of rows) lines.push(`| ${r.name} | ${r.median} (${r.min}–${r.max}) | ${r.ratio} | ${r.name === 'off' ? '-' : `${r.cost} %`} | ${r.p50} |`);
  lines.push('', 'CPU ticks are 10 ms: a round of a few seconds reads a few hundred ticks, so each figure is within about ±1 %.');
  writeResults('tracing-cost', when, { when, machine: MACHINE, revision: revision(), rate, durationMs, rounds, connections, perRequest, rows }, lines);
  await sink.close();
}

runMain(main, () => {
  procs.stopAll();
  rmSync(tmp, { recursive: true, force: true });
});
