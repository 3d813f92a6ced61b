// Tracing when the collector is in trouble: Remora (1 worker, every request sampled)
// under a fixed request rate while its OTLP collector is healthy, then down (connections
// refused), then answering slowly (each export held longer than the exporter's timeout),
// then healthy again. Per phase: the request latency (open loop, µs) of the traced Remora
// and of an identical Remora without tracing measured in alternating chunks on the same
// core (the control: what the host did meanwhile), the traced one's RSS, and the
// exporter's counters (exported, dropped by reason, queued). Shows that memory stays
// bounded, drops are counted and latency does not move while export fails.
//
//   npm run bench:tracing-outage -- [--rate 2000] [--phase-seconds 60] [--connections 16]
//                                   [--slow-ms 15000] [--no-pin]
//
// Layout: generator, upstream and collector on core 0; Remora on core 1.
// Writes bench/results/tracing-outage-<timestamp>.{json,md}.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { runOpenLoop, type LatencySummary } from './lib/open-loop.js';
import {
  MACHINE, Processes, RssSampler, canPin, commandLine, httpGet, log, median, revision, round, runMain, startRemora, startUpstream, writeConfig, writeResults,
} from './lib/harness.js';
import { metricSum } from './lib/remora-config.js';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '2000' },
    'phase-seconds': { type: 'string', default: '60' },
    connections: { type: 'string', default: '16' },
    'slow-ms': { type: 'string', default: '15000' },
    'no-pin': { type: 'boolean', default: false },
  },
  strict: true,
});
const rate = Number(args.rate);
const phaseMs = Number(args['phase-seconds']) * 1000;
const connections = Number(args.connections);
const slowMs = Number(args['slow-ms']);
const pin = canPin(args['no-pin'] === true);
const procs = new Processes(pin);
const tmp = mkdtempSync(join(os.tmpdir(), 'remora-tracing-outage-'));

type Mode = 'ok' | 'down' | 'slow';

/** An OTLP/HTTP collector stand-in whose behaviour the benchmark switches: `ok` answers
 *  at once, `down` stops listening (connections refused), `slow` holds every answer. */
class Collector {
  mode: Mode = 'ok';
  requests = 0;
  private server: http.Server | null = null;
  private readonly held = new Set<http.ServerResponse>();
  port = 0;

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        this.requests++;
        if (this.mode === 'slow') {
          this.held.add(res);
          setTimeout(() => {
            this.held.delete(res);
            if (!res.destroyed) res.writeHead(200, { 'content-length': 0 }).end();
          }, slowMs).unref();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 }).end();
      });
    });
    await new Promise<void>((r) => server.listen(this.port, '127.0.0.1', r));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async set(mode: Mode): Promise<void> {
    if (mode === 'down' && this.server !== null) {
      const s = this.server;
      this.server = null;
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    } else if (mode !== 'down' && this.server === null) {
      await this.start();
    }
    this.mode = mode;
  }

  async stop(): Promise<void> {
    for (const res of this.held) res.destroy();
    await this.set('down');
  }
}

interface Counters {
  readonly exported: number;
  readonly dropped: Record<string, number>;
  readonly queued: number;
  readonly requests: number;
}

async function counters(adminPort: number): Promise<Counters> {
  const text = (await httpGet(adminPort, '/metrics')).body;
  const dropped: Record<string, number> = {};
  for (const m of text.matchAll(/^remora_trace_spans_dropped_total\{reason="([a-z_]+)"\} (\d+)/gm)) dropped[m[1]] = Number(m[2]);
  return {
    exported: metricSum(text, 'remora_trace_spans_exported_total'),
    dropped,
    queued: metricSum(text, 'remora_trace_export_queue_spans'),
    requests: metricSum(text, 'remora_downstream_requests_total'),
  };
}

interface PhaseResult {
  readonly phase: string;
  readonly latency: LatencySummary[];
  readonly controlLatency: LatencySummary[];
  readonly rssMb: { readonly median: number; readonly max: number };
  readonly exported: number;
  readonly dropped: Record<string, number>;
  readonly queuedAtEnd: number;
  readonly collectorRequests: number;
}

async function main(): Promise<void> {
  if (pin) spawnSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  const collector = new Collector();
  await collector.start();
  const upstreamPort = await startUpstream(procs, 0, 100);
  const config = {
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    tracing: { service_name: 'bench', otlp: { endpoint: `http://127.0.0.1:${collector.port}/v1/traces`, protocol: 'http/protobuf' } },
    listeners: [{ name: 'bench', port: 0, virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }] }] }],
    clusters: [{ name: 'up', endpoints: [{ address: '127.0.0.1', port: upstreamPort }] }],
  };
  const remora = await startRemora(procs, 1, writeConfig(tmp, 'remora', config));
  const { tracing: _off, ...untraced } = config;
  const control = await startRemora(procs, 1, writeConfig(tmp, 'control', untraced));
  const port = remora.listeners.bench;
  const controlPort = control.listeners.bench;
  log(`warm-up ${rate} req/s for 10 s each`);
  await runOpenLoop({ port, rate, durationMs: 10_000, connections });
  await runOpenLoop({ port: controlPort, rate, durationMs: 10_000, connections });

  const phases: [string, Mode][] = [['healthy', 'ok'], ['collector down', 'down'], [`collector slow (${slowMs / 1000} s per answer)`, 'slow'], ['healthy again', 'ok']];
  const results: PhaseResult[] = [];
  for (const [name, mode] of phases) {
    await collector.set(mode);
    const before = await counters(remora.adminPort);
    const collectorBefore = collector.requests;
    const rss = new RssSampler(remora.pid, 500);
    const latency: LatencySummary[] = [];
    const controlLatency: LatencySummary[] = [];
    // Chunks of 10 s, traced then control: a change inside the phase shows in its chunks,
    // and the control shows what the host did. The traced Remora's workers keep
    // finishing spans only while it is driven, so its phase lasts the full length.
    for (let left = phaseMs; left > 0; left -= 10_000) {
      const ms = Math.min(10_000, left);
      log(`${name}: ${rate} req/s for ${ms / 1000} s, traced then control`);
      latency.push(await runOpenLoop({ port, rate, durationMs: ms, connections }));
      controlLatency.push(await runOpenLoop({ port: controlPort, rate, durationMs: Math.min(5000, ms), connections }));
    }
    const samples = rss.stop();
    const after = await counters(remora.adminPort);
    const dropped: Record<string, number> = {};
    for (const k of new Set([...Object.keys(before.dropped), ...Object.keys(after.dropped)])) dropped[k] = (after.dropped[k] ?? 0) - (before.dropped[k] ?? 0);
    results.push({
      phase: name,
      latency,
      controlLatency,
      rssMb: { median: median(samples), max: Math.max(...samples) },
      exported: after.exported - before.exported,
      dropped,
      queuedAtEnd: after.queued,
      collectorRequests: collector.requests - collectorBefore,
    });
  }
  await collector.stop();

  const when = new Date().toISOString();
  const lines = [
    `# Tracing with the collector down or slow (${when})`,
    '',
    `Command: \`${commandLine('bench:tracing-outage')}\`; ${MACHINE}; revision ${revision()}; pinning ${pin ? 'on (generator, upstream, collector: core 0; Remora: core 1)' : 'off'}.`,
    `Remora: 1 worker, every request traced (a server and a client span each), OTLP/HTTP protobuf, default queues (2048 spans per worker and in the exporter, batches of 512, 10 s export timeout). Load: open loop, ${rate} req/s over ${connections} connections, phases of ${phaseMs / 1000} s in 10 s chunks, each followed by 5 s on the control (the same Remora without tracing, same core).`,
    '',
    '| phase | p50 µs (chunks) | p99 µs (chunks) | control p50 / p99 µs | max µs | errors | RSS MB median / max | spans exported | spans dropped | queued at end | export requests |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    const p50 = r.latency.map((l) => l.p50);
    const p99 = r.latency.map((l) => l.p99);
    const drops = Object.entries(r.dropped).filter(([, v]) => v > 0).map(([k, v]) => `${v} ${k}`).join(', ') || '0';
    const c50 = median(r.controlLatency.map((l) => l.p50));
    const c99 = median(r.controlLatency.map((l) => l.p99));
    lines.push(`| ${r.phase} | ${median(p50)} (${Math.min(...p50)}–${Math.max(...p50)}) | ${median(p99)} (${Math.min(...p99)}–${Math.max(...p99)}) | ${c50} / ${c99} | ${Math.max(...r.latency.map((l) => l.max))} | ${r.latency.reduce((n, l) => n + l.errors, 0)} | ${round(r.rssMb.median, 1)} / ${round(r.rssMb.max, 1)} | ${r.exported} | ${drops} | ${r.queuedAtEnd} | ${r.collectorRequests} |`);
  }
  writeResults('tracing-outage', when, { when, machine: MACHINE, revision: revision(), rate, phaseMs, connections, slowMs, results }, lines);
}

runMain(main, () => {
  procs.stopAll();
  rmSync(tmp, { recursive: true, force: true });
});
