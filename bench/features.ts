// Throughput price of observability, measured in one run: four Remora processes (one
// worker each) that differ only in what they record, driven one at a time.
//
//   npm run bench:features -- [--duration 5] [--rounds 5] [--warmup 5] [--size 100] [--no-pin]
//
//   A  stats: { enabled: false }, no access log
//   B  stats enabled (the default), no access log
//   C  B + access_log: { path: <temp file> } (every request logged)
//   D  C + generate_traceparent: true
//
// Layout as bench/latency.ts: the upstream (bench/upstream-uws.ts) and autocannon (this
// process, every thread, at the lowest CPU priority) on core 0, every Remora on core 1
// (idle while another is driven). After a warm-up per variant, autocannon (50
// connections, pipelining 1, `duration` s) runs A, B, C, D in turn for `rounds` rounds.
// Reported: median req/s with min–max, each variant's ratio to A in the same round
// (median, min–max), RSS of each Remora at the end, the requests each one's /metrics
// counted (A must show none), and the access-log sizes. The temp dir holding configs
// and access logs is deleted at the end.
// Writes bench/results/features-<timestamp>.{json,md}.

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
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
import { ALL_OFF, benchRemoraConfig, scrapeSanity } from './lib/remora-config.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '5' },
    size: { type: 'string', default: '100' },
    'no-pin': { type: 'boolean', default: false },
  },
  strict: true,
});

const duration = Number(args.duration);
const rounds = Number(args.rounds);
const warmup = Number(args.warmup);
const pin = canPin(args['no-pin']);
const procs = new Processes(pin);
const tmp = mkdtempSync(join(os.tmpdir(), 'remora-features-'));

interface Variant {
  readonly name: string;
  readonly label: string;
  readonly stats: boolean;
  readonly accessLog: boolean;
  readonly traceparent: boolean;
}

const VARIANTS: readonly Variant[] = [
  { name: 'A', label: 'stats off', stats: false, accessLog: false, traceparent: false },
  { name: 'B', label: 'stats on', stats: true, accessLog: false, traceparent: false },
  { name: 'C', label: 'stats + access log', stats: true, accessLog: true, traceparent: false },
  { name: 'D', label: 'stats + access log + traceparent', stats: true, accessLog: true, traceparent: true },
];

interface Running {
  readonly variant: Variant;
  readonly remora: RemoraProcess;
  readonly port: number;
  readonly logFile: string | null;
}

function remoraConfig(v: Variant, upstreamPort: number, logFile: string | null): object {
  // B, C and D leave `stats` out: enabled is the default being priced.
  return benchRemoraConfig({ ...ALL_OFF, stats: v.stats, accessLog: logFile, traceparent: v.traceparent }, upstreamPort, 1);
}

async function startVariant(v: Variant, upstreamPort: number): Promise<Running> {
  const logFile = v.accessLog ? join(tmp, `access-${v.name}.log`) : null;
  const remora = await startRemora(procs, 1, writeConfig(tmp, `remora-${v.name}`, remoraConfig(v, upstreamPort, logFile)));
  return { variant: v, remora, port: remora.listeners.bench, logFile };
}

interface Drive {
  readonly rps: number;
  readonly total: number;
  readonly bad: number;
}

async function drive(port: number, seconds: number): Promise<Drive> {
  const r = await closedLoop({ port, connections: 50, seconds });
  return { rps: r.rps, total: r.total, bad: r.errors };
}

/** Requests counted by remora_downstream_requests_total (all labels) on the admin. */
async function recordedRequests(adminPort: number): Promise<number> {
  return (await scrapeSanity(adminPort)).requests_in_metrics;
}

function fileMb(path: string | null): number | null {
  if (path === null) return null;
  try {
    return round(statSync(path).size / 2 ** 20, 1);
  } catch {
    return 0;
  }
}

interface VariantSummary {
  readonly name: string;
  readonly label: string;
  readonly rps: Spread;
  readonly vs_a: Spread;
  readonly rss_mb_end: number | null;
  readonly requests_sent: number;
  readonly requests_in_metrics: number;
  readonly access_log_mb: number | null;
  readonly errors: number;
}

async function summarize(running: Running[], raw: Record<string, Drive[]>): Promise<VariantSummary[]> {
  const a = raw.A;
  const out: VariantSummary[] = [];
  for (const { variant: v, remora, logFile } of running) {
    const rows = raw[v.name];
    out.push({
      name: v.name,
      label: v.label,
      rps: spread(rows.map((d) => d.rps), 0),
      vs_a: spread(rows.map((d, i) => d.rps / a[i].rps), 3),
      rss_mb_end: rssMb(remora.pid),
      requests_sent: rows.reduce((s, d) => s + d.total, 0),
      requests_in_metrics: await recordedRequests(remora.adminPort),
      access_log_mb: fileMb(logFile),
      errors: rows.reduce((s, d) => s + d.bad, 0),
    });
  }
  return out;
}

function table(summary: VariantSummary[]): string[] {
  return [
    '| variant | records | req/s median (min–max) | vs A, per round (min–max) | RSS MB at end | requests in /metrics | access log MB | errors + non-2xx |',
    '|---|---|---|---|---|---|---|---|',
    ...summary.map(
      (s) =>
        `| ${s.name} | ${s.label} | ${showSpread(s.rps)} | ${showSpread(s.vs_a)} | ${s.rss_mb_end ?? '-'} | ${s.requests_in_metrics} | ${s.access_log_mb ?? '-'} | ${s.errors} |`,
    ),
  ];
}

async function main(): Promise<void> {
  if (pin) pinSelf(0);
  os.setPriority(19);
  const upstreamPort = await startUpstream(procs, 0, Number(args.size));
  const running: Running[] = [];
  for (const v of VARIANTS) running.push(await startVariant(v, upstreamPort));
  log(`variants ${running.map((r) => `${r.variant.name}:${r.port}`).join(' ')}; pinning ${pin ? 'on' : 'off'}`);
  for (const r of running) {
    if (warmup <= 0) break;
    log(`warm-up ${r.variant.name} for ${warmup}s`);
    await drive(r.port, warmup);
  }
  const raw: Record<string, Drive[]> = Object.fromEntries(VARIANTS.map((v) => [v.name, []]));
  for (let i = 0; i < rounds; i++) {
    for (const r of running) {
      log(`round ${i + 1}/${rounds}: ${r.variant.name} (${r.variant.label}) for ${duration}s`);
      raw[r.variant.name].push(await drive(r.port, duration));
    }
  }
  const summary = await summarize(running, raw);

  const when = new Date().toISOString();
  const command = commandLine('bench:features');
  const result = { when, command, machine: MACHINE, pinned: pin, duration_s: duration, rounds, warmup_s: warmup, body_bytes: Number(args.size), connections: 50, summary, raw };
  const lines = [
    `# Price of observability — ${when}`,
    '',
    `Command: \`${command}\`  `,
    `Machine: ${MACHINE}; pinning ${pin ? 'each Remora on core 1, autocannon + upstream on core 0' : 'off'}  `,
    `Remora 1 worker; autocannon 50 connections, pipelining 1, ${duration} s per variant per round, ${rounds} rounds interleaved A→D after a ${warmup} s warm-up each; ${args.size}-byte responses.`,
    'Requests in /metrics include the warm-up; A (stats off) should count none.',
    '',
    ...table(summary),
  ];
  writeResults('features', when, result, lines);
}

runMain(main, () => {
  procs.stopAll();
  rmSync(tmp, { recursive: true, force: true });
});
