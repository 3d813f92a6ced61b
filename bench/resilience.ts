// Price of the shared resilience state on the request path, measured in one run: two
// Remora processes (one worker each, stats on in both) in front of the same upstream,
// driven one at a time, interleaved.
//
//   npm run bench:resilience -- [--rounds 5] [--duration 5] [--warmup 3] [--rate 5000]
//                               [--latency-duration 5] [--latency-connections 16]
//                               [--size 100] [--no-pin]
//
//   OFF  no rate limits, no outlier_detection, no retry_policy.
//   ON   a listener rate limit (one bucket for all requests), a route rate limit keyed by
//        client IP (one hot key: every request from 127.0.0.1 takes from the same
//        per-key bucket, the worst case for contention), outlier_detection on the
//        cluster (defaults: every response counted in the endpoint's shared cells) and
//        a retry_policy (retry_on 5xx, reset, connect-failure; num_retries 2). Both
//        buckets hold 1,000,000,000 tokens refilled every second, so nothing is ever
//        refused, and the upstream never fails, so no retry is ever made: what is priced
//        is the bookkeeping on the hot path, not the features doing their job.
//
// Circuit breakers are always on in Remora: OFF pays the max_requests acquire/release
// too. Their own price is measured by bench/shared-state-micro.ts (ResourceLimit alone).
//
// Layout as bench/features.ts: the upstream (bench/upstream-uws.ts) and the load
// generators (this process, every thread, at the lowest CPU priority) on core 0, both
// Remoras on core 1 (one idle while the other is driven). After a warm-up per variant
// (closed loop then open loop, `warmup` s each), every round drives OFF then ON with
// (1) autocannon, 50 connections, pipelining 1, `duration` s (closed loop, req/s), and
// (2) bench/lib/open-loop.ts at `rate` req/s for `latency-duration` s (µs, coordinated
// omission corrected). Reported: median (min–max) req/s per variant and the ON/OFF
// ratio per round; p50/p99 per variant and ON−OFF per round (median, min–max); the
// targets (≤ 5 % throughput cost, ≤ 20 µs added median latency) marked met or missed
// by the median of rounds, flagged noisy when rounds lie on both sides of the target;
// rounds whose p50 is over 2× the run's lowest marked disturbed (kept, and the p50
// difference shown without them as well); and a sanity check from each Remora's /metrics (ON must show one rate-limit table
// entry and no retries; OFF no entry).
// Writes bench/results/resilience-<timestamp>.{json,md}.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runOpenLoop, type LatencySummary } from './lib/open-loop.js';
import {
  MACHINE,
  Processes,
  canPin,
  commandLine,
  log,
  pinSelf,
  round,
  rssMb,
  runMain,
  showSpread,
  spread,
  startRemora,
  startUpstream,
  writeConfig,
  writeResults,
  type RemoraProcess,
  type Spread,
} from './lib/harness.js';
import { closedLoop } from './lib/closed-loop.js';
import { ALL_OFF, benchRemoraConfig, scrapeSanity, type Sanity } from './lib/remora-config.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '3' },
    rate: { type: 'string', default: '5000' },
    'latency-duration': { type: 'string', default: '5' },
    'latency-connections': { type: 'string', default: '16' },
    size: { type: 'string', default: '100' },
    'no-pin': { type: 'boolean', default: false },
  },
  strict: true,
});

const rounds = Number(args.rounds);
const duration = Number(args.duration);
const warmup = Number(args.warmup);
const rate = Number(args.rate);
const latencySeconds = Number(args['latency-duration']);
const latencyConnections = Number(args['latency-connections']);
const size = Number(args.size);
const pin = canPin(args['no-pin']);
const procs = new Processes(pin);
const tmp = mkdtempSync(join(os.tmpdir(), 'remora-resilience-'));

/** Targets from the issue. */
const MAX_THROUGHPUT_COST = 0.05;
const MAX_ADDED_P50_US = 20;
const AUTOCANNON_CONNECTIONS = 50;

type VariantName = 'OFF' | 'ON';

interface Variant {
  readonly name: VariantName;
  readonly label: string;
  readonly on: boolean;
}

const VARIANTS: readonly Variant[] = [
  { name: 'OFF', label: 'no rate limits, no outlier detection, no retry policy', on: false },
  { name: 'ON', label: 'listener + per-IP route rate limits, outlier detection, retry policy', on: true },
];

function remoraConfig(v: Variant, upstreamPort: number): object {
  // Stats stay at their default (enabled) in both variants.
  return benchRemoraConfig({ ...ALL_OFF, stats: true, rateLimit: v.on, outlier: v.on, retry: v.on }, upstreamPort, 1);
}

interface Running {
  readonly variant: Variant;
  readonly remora: RemoraProcess;
  readonly port: number;
}

interface Drive {
  readonly rps: number;
  readonly total: number;
  readonly bad: number;
}

async function drive(port: number, seconds: number): Promise<Drive> {
  const r = await closedLoop({ port, connections: AUTOCANNON_CONNECTIONS, seconds });
  return { rps: r.rps, total: r.total, bad: r.errors };
}

function openLoop(port: number, seconds: number): Promise<LatencySummary> {
  return runOpenLoop({ port, rate, durationMs: seconds * 1000, connections: latencyConnections });
}

async function sanity(adminPort: number): Promise<Sanity> {
  return scrapeSanity(adminPort);
}

interface VariantSummary {
  readonly name: VariantName;
  readonly label: string;
  readonly rps: Spread;
  readonly p50_us: Spread;
  readonly p99_us: Spread;
  readonly throughput_errors: number;
  readonly latency_errors: number;
  readonly achieved_rate: Spread;
  readonly rss_mb_end: number | null;
  readonly sanity: Sanity;
}

interface Comparison {
  /** ON/OFF req/s per round. */
  readonly ratio_per_round: number[];
  readonly ratio: Spread;
  /** ON − OFF per round, µs. */
  readonly p50_diff_per_round: number[];
  readonly p50_diff_us: Spread;
  readonly p99_diff_per_round: number[];
  readonly p99_diff_us: Spread;
  /** Rounds whose open-loop p50 (either variant) exceeds DISTURBED_FACTOR × the run's
   *  lowest p50: something else had the cores then. Reported, never dropped. */
  readonly disturbed_rounds: number[];
  /** ON − OFF p50 over the undisturbed rounds only; null when every round was. */
  readonly p50_diff_undisturbed_us: Spread | null;
  readonly throughput_cost: number;
  readonly throughput_target_met: boolean;
  readonly latency_target_met: boolean;
  /** Per-round values lie on both sides of the target: the verdict rests on the median. */
  readonly throughput_noisy: boolean;
  readonly latency_noisy: boolean;
}

/** A round's p50 this many times the run's lowest marks it as disturbed. */
const DISTURBED_FACTOR = 2;

function compare(tput: Record<VariantName, Drive[]>, lat: Record<VariantName, LatencySummary[]>): Comparison {
  const ratios = tput.ON.map((d, i) => round(d.rps / tput.OFF[i].rps, 3));
  const p50 = lat.ON.map((l, i) => l.p50 - lat.OFF[i].p50);
  const p99 = lat.ON.map((l, i) => l.p99 - lat.OFF[i].p99);
  const ratio = spread(ratios, 3);
  const p50Diff = spread(p50, 0);
  const lowest = Math.min(...lat.OFF.map((l) => l.p50), ...lat.ON.map((l) => l.p50));
  const disturbed = lat.OFF.flatMap((off, i) => (Math.max(off.p50, lat.ON[i].p50) > DISTURBED_FACTOR * lowest ? [i + 1] : []));
  const undisturbed = p50.filter((_, i) => !disturbed.includes(i + 1));
  return {
    ratio_per_round: ratios,
    ratio,
    p50_diff_per_round: p50,
    p50_diff_us: p50Diff,
    p99_diff_per_round: p99,
    p99_diff_us: spread(p99, 0),
    disturbed_rounds: disturbed,
    p50_diff_undisturbed_us: undisturbed.length > 0 ? spread(undisturbed, 0) : null,
    throughput_cost: round(1 - ratio.median, 3),
    throughput_target_met: ratio.median >= 1 - MAX_THROUGHPUT_COST,
    latency_target_met: p50Diff.median <= MAX_ADDED_P50_US,
    throughput_noisy: ratio.min < 1 - MAX_THROUGHPUT_COST && ratio.max > 1 - MAX_THROUGHPUT_COST,
    latency_noisy: p50Diff.min < MAX_ADDED_P50_US && p50Diff.max > MAX_ADDED_P50_US,
  };
}

function verdict(met: boolean, noisy: boolean): string {
  return `${met ? '**met**' : '**missed**'}${noisy ? ' (noisy: rounds on both sides of the target)' : ''}`;
}

function pct(x: number): string {
  return `${round(x * 100, 1)} %`;
}

function report(summary: VariantSummary[], cmp: Comparison, tput: Record<VariantName, Drive[]>, lat: Record<VariantName, LatencySummary[]>): string[] {
  const roundRows = tput.OFF.map((_, i) => {
    const off = lat.OFF[i];
    const on = lat.ON[i];
    const mark = cmp.disturbed_rounds.includes(i + 1) ? 'yes' : '';
    return `| ${i + 1} | ${round(tput.OFF[i].rps)} | ${round(tput.ON[i].rps)} | ${cmp.ratio_per_round[i]} | ${off.p50} | ${on.p50} | ${on.p50 - off.p50} | ${off.p99} | ${on.p99} | ${on.p99 - off.p99} | ${mark} |`;
  });
  return [
    '## Per variant',
    '',
    '| variant | what | closed-loop req/s median (min–max) | open-loop p50 µs median (min–max) | open-loop p99 µs median (min–max) | achieved req/s (open loop) | errors + non-2xx (closed / open) | RSS MB at end |',
    '|---|---|---|---|---|---|---|---|',
    ...summary.map(
      (s) =>
        `| ${s.name} | ${s.label} | ${showSpread(s.rps)} | ${showSpread(s.p50_us)} | ${showSpread(s.p99_us)} | ${showSpread(s.achieved_rate)} | ${s.throughput_errors} / ${s.latency_errors} | ${s.rss_mb_end ?? '-'} |`,
    ),
    '',
    '## Per round (OFF and ON driven back to back)',
    '',
    '| round | OFF req/s | ON req/s | ON/OFF | OFF p50 µs | ON p50 µs | ON−OFF p50 µs | OFF p99 µs | ON p99 µs | ON−OFF p99 µs | disturbed |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...roundRows,
    '',
    `ON/OFF throughput, per round: ${showSpread(cmp.ratio)} (median (min–max)).  `,
    `ON−OFF p50, per round: ${showSpread(cmp.p50_diff_us)} µs; ON−OFF p99, per round: ${showSpread(cmp.p99_diff_us)} µs.  `,
    `Disturbed (either variant's p50 above ${DISTURBED_FACTOR}× the run's lowest p50, i.e. the host was busy with something else): ${cmp.disturbed_rounds.length > 0 ? `round ${cmp.disturbed_rounds.join(', ')}` : 'none'}; ON−OFF p50 over the other rounds: ${cmp.p50_diff_undisturbed_us !== null ? `${showSpread(cmp.p50_diff_undisturbed_us)} µs` : '-'}.`,
    '',
    '## Targets',
    '',
    '| target | measured (median of rounds, min–max) | verdict |',
    '|---|---|---|',
    `| throughput cost ≤ ${pct(MAX_THROUGHPUT_COST)} (ON/OFF ≥ ${1 - MAX_THROUGHPUT_COST}) | ON/OFF ${showSpread(cmp.ratio)}: cost ${pct(cmp.throughput_cost)} | ${verdict(cmp.throughput_target_met, cmp.throughput_noisy)} |`,
    `| added median latency ≤ ${MAX_ADDED_P50_US} µs (ON−OFF p50) | ${showSpread(cmp.p50_diff_us)} µs; undisturbed rounds only: ${cmp.p50_diff_undisturbed_us !== null ? `${showSpread(cmp.p50_diff_undisturbed_us)} µs` : '-'} | ${verdict(cmp.latency_target_met, cmp.latency_noisy)} |`,
    '',
    '## Sanity check (each Remora\'s /metrics at the end, warm-up included)',
    '',
    '| variant | requests in /metrics | rate-limit table entries | retries | outlier threshold reached | max_requests overflows |',
    '|---|---|---|---|---|---|',
    ...summary.map(
      (s) =>
        `| ${s.name} | ${s.sanity.requests_in_metrics} | ${s.sanity.rate_limit_table_entries} | ${s.sanity.retries} | ${s.sanity.outlier_threshold_reached} | ${s.sanity.request_overflows} |`,
    ),
    '',
    'ON should show 1 table entry (the one client IP) and no retries; OFF 0 entries.',
  ];
}

async function main(): Promise<void> {
  if (pin) pinSelf(0);
  // The open-loop generator spins (setImmediate); at the lowest priority it yields core 0
  // to the upstream whenever the upstream has work.
  os.setPriority(19);
  const upstreamPort = await startUpstream(procs, 0, size);
  const running: Running[] = [];
  for (const v of VARIANTS) {
    const remora = await startRemora(procs, 1, writeConfig(tmp, `remora-${v.name}`, remoraConfig(v, upstreamPort)));
    running.push({ variant: v, remora, port: remora.listeners.bench });
  }
  log(`variants ${running.map((r) => `${r.variant.name}:${r.port}`).join(' ')}; pinning ${pin ? 'on' : 'off'}`);

  for (const r of running) {
    if (warmup <= 0) break;
    log(`warm-up ${r.variant.name}: closed loop ${warmup}s, open loop ${rate} req/s ${warmup}s`);
    await drive(r.port, warmup);
    await openLoop(r.port, warmup);
  }

  const tput: Record<VariantName, Drive[]> = { OFF: [], ON: [] };
  const lat: Record<VariantName, LatencySummary[]> = { OFF: [], ON: [] };
  for (let i = 0; i < rounds; i++) {
    for (const r of running) {
      const n = r.variant.name;
      log(`round ${i + 1}/${rounds}: ${n} closed loop ${duration}s`);
      tput[n].push(await drive(r.port, duration));
      log(`round ${i + 1}/${rounds}: ${n} open loop ${rate} req/s ${latencySeconds}s`);
      lat[n].push(await openLoop(r.port, latencySeconds));
    }
  }

  const summary: VariantSummary[] = [];
  for (const { variant: v, remora } of running) {
    const t = tput[v.name];
    const l = lat[v.name];
    summary.push({
      name: v.name,
      label: v.label,
      rps: spread(t.map((d) => d.rps), 0),
      p50_us: spread(l.map((x) => x.p50), 0),
      p99_us: spread(l.map((x) => x.p99), 0),
      throughput_errors: t.reduce((s, d) => s + d.bad, 0),
      latency_errors: l.reduce((s, x) => s + x.errors, 0),
      achieved_rate: spread(l.map((x) => x.achievedRate), 0),
      rss_mb_end: rssMb(remora.pid),
      sanity: await sanity(remora.adminPort),
    });
  }
  const cmp = compare(tput, lat);

  const when = new Date().toISOString();
  const command = commandLine('bench:resilience');
  const result = {
    when,
    command,
    machine: MACHINE,
    pinned: pin,
    rounds,
    duration_s: duration,
    warmup_s: warmup,
    rate,
    latency_duration_s: latencySeconds,
    latency_connections: latencyConnections,
    autocannon_connections: AUTOCANNON_CONNECTIONS,
    body_bytes: size,
    targets: { max_throughput_cost: MAX_THROUGHPUT_COST, max_added_p50_us: MAX_ADDED_P50_US },
    configs: Object.fromEntries(VARIANTS.map((v) => [v.name, remoraConfig(v, 0)])),
    summary,
    comparison: cmp,
    raw: { throughput: tput, latency: lat },
  };
  const lines = [
    `# Price of rate limits, outlier detection and retry policy — ${when}`,
    '',
    `Command: \`${command}\`  `,
    `Machine: ${MACHINE}; pinning ${pin ? 'both Remoras on core 1, load generators + upstream on core 0' : 'off'}  `,
    `Remora 1 worker, stats on in both. Per round, interleaved OFF → ON: autocannon ${AUTOCANNON_CONNECTIONS} connections, pipelining 1, ${duration} s; then open loop ${rate} req/s over ${latencyConnections} connections, ${latencySeconds} s (µs from the scheduled send). ${rounds} rounds after a ${warmup} s + ${warmup} s warm-up per variant; ${size}-byte responses.`,
    '',
    '- **OFF**: no rate limits, no outlier_detection, no retry_policy.',
    '- **ON**: listener rate limit (one bucket) + route rate limit keyed by client IP (one hot key), both 1,000,000,000 tokens per 1 s (never refuse); outlier_detection with defaults; retry_policy retry_on [5xx, reset, connect-failure], num_retries 2 (never fires: the upstream never fails).',
    '- Circuit breakers are always on: both variants pay the max_requests acquire/release per request (priced alone by `npm run bench:shared-state`).',
    '',
    ...report(summary, cmp, tput, lat),
  ];
  writeResults('resilience', when, result, lines);
}

runMain(main, () => {
  procs.stopAll();
  rmSync(tmp, { recursive: true, force: true });
});
