// HTTP/2 and gRPC through Remora, nginx and HAProxy, one worker each pinned to core 1, in
// front of the same upstreams (an HTTP/1.1 one for plain requests, @grpc/grpc-js for gRPC)
// on core 0 with h2load (nghttp2-client). Interleaved rounds, medians.
//
//   npm run bench:http2 -- [--rounds 3] [--duration 5] [--rate 1000] [--no-pin]
//
// Per target: HTTP/2 GET 100 B req/s (h2c client → HTTP/1.1 upstream; the direct baseline
// is h2load over HTTP/1.1 to the upstream), gRPC unary req/s (h2c client → HTTP/2 gRPC
// upstream), each with 10 connections × 10 streams; and gRPC unary latency at a fixed
// rate (4 connections, one call at a time each), p50/p99 and added over direct.
// Targets: gRPC unary added p50 ≤ nginx's; HTTP/2 req/s with 1 worker ≥ nginx's.
// Writes bench/results/http2-<timestamp>.{json,md}.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MACHINE, Processes, hasBinary, log, median, revision, round, runMain, startPortScript, startRemora, startUpstream, writeConfig, writeResults } from './lib/harness.js';
import { h2loadLatency, h2loadRps, type H2Latency, type H2Request } from './lib/h2load.js';
import { peerMissing, startH2Peer } from './lib/peers.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    rate: { type: 'string', default: '1000' },
    'no-pin': { type: 'boolean', default: false },
  },
  strict: true,
});
const rounds = Number(args.rounds);
const seconds = Number(args.duration);
const rate = Number(args.rate);
const pin = !args['no-pin'] && os.availableParallelism() >= 2 && hasBinary('taskset');
const tmp = mkdtempSync(join(os.tmpdir(), 'remora-http2-'));
const procs = new Processes(pin);

const GET: H2Request = { path: '/' };
const GRPC: H2Request = { path: '/bench.Echo/Unary', grpcMessage: Buffer.alloc(64, 7) };

interface Target {
  readonly name: string;
  readonly port: number;
}

async function main(): Promise<void> {
  if (!hasBinary('h2load')) throw new Error('h2load is not installed (apt-get install nghttp2-client)');
  os.setPriority(19);
  const upstreamPort = await startUpstream(procs, 0, 100);
  const grpcPort = (await startPortScript(procs, 0, 'peers/grpc-upstream')).port;
  const route = (prefix: string, cluster: string) => ({ match: { prefix }, route: { cluster } });
  const config = {
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [{ name: 'bench', address: '127.0.0.1', port: 0, virtual_hosts: [{ name: 'all', domains: ['*'], routes: [route('/bench.', 'grpc'), route('/', 'up')] }] }],
    clusters: [
      { name: 'up', endpoints: [{ address: '127.0.0.1', port: upstreamPort }] },
      { name: 'grpc', protocol: 'http2', endpoints: [{ address: '127.0.0.1', port: grpcPort }] },
    ],
  };
  const remora = await startRemora(procs, 1, writeConfig(tmp, 'remora-h2', config));
  const targets: Target[] = [{ name: 'remora', port: remora.listeners.bench }];
  for (const peer of ['nginx', 'haproxy'] as const) {
    const missing = peerMissing(peer);
    if (missing !== null) {
      log(`${peer}: ${missing}; left out`);
      continue;
    }
    targets.push({ name: peer, port: (await startH2Peer(procs, 1, peer, upstreamPort, grpcPort, tmp)).port });
  }

  const getRps: Record<string, number[]> = { direct: [] };
  const grpcRps: Record<string, number[]> = { direct: [] };
  const grpcLat: Record<string, H2Latency[]> = { direct: [] };
  for (const t of targets) {
    getRps[t.name] = [];
    grpcRps[t.name] = [];
    grpcLat[t.name] = [];
  }
  for (let r = 0; r < rounds; r++) {
    log(`round ${r + 1}/${rounds}: direct`);
    // The HTTP/1.1 upstream cannot speak HTTP/2: its baseline is h2load over HTTP/1.1.
    getRps.direct.push(h2loadRpsH1(upstreamPort));
    grpcRps.direct.push(h2loadRps(tmp, grpcPort, GRPC, seconds, pin));
    grpcLat.direct.push(h2loadLatency(tmp, grpcPort, GRPC, seconds, rate, pin));
    for (const t of targets) {
      log(`round ${r + 1}/${rounds}: ${t.name}`);
      getRps[t.name].push(h2loadRps(tmp, t.port, GET, seconds, pin));
      grpcRps[t.name].push(h2loadRps(tmp, t.port, GRPC, seconds, pin));
      grpcLat[t.name].push(h2loadLatency(tmp, t.port, GRPC, seconds, rate, pin));
    }
  }
  const names = ['direct', ...targets.map((t) => t.name)];
  const rows = names.map((name) => {
    const addedP50 = grpcLat[name].map((l, i) => l.p50 - grpcLat.direct[i].p50);
    const addedP99 = grpcLat[name].map((l, i) => l.p99 - grpcLat.direct[i].p99);
    return {
      name,
      h2_get_rps: median(getRps[name]),
      h2_get_vs_nginx: getRps.nginx === undefined ? null : round(median(getRps[name]) / median(getRps.nginx), 2),
      grpc_rps: median(grpcRps[name]),
      grpc_vs_nginx: grpcRps.nginx === undefined ? null : round(median(grpcRps[name]) / median(grpcRps.nginx), 2),
      grpc_p50_us: median(grpcLat[name].map((l) => l.p50)),
      grpc_p99_us: median(grpcLat[name].map((l) => l.p99)),
      grpc_added_p50_us: name === 'direct' ? 0 : median(addedP50),
      grpc_added_p99_us: name === 'direct' ? 0 : median(addedP99),
    };
  });
  const when = new Date().toISOString();
  const command = `npm run bench:http2 -- ${process.argv.slice(2).join(' ')}`.trim();
  const lines = [
    `# HTTP/2 and gRPC — ${when}`,
    '',
    `Command: \`${command}\`  `,
    `Machine: ${MACHINE}; revision ${revision()}; pinning ${pin ? 'proxies on core 1, h2load and upstreams on core 0' : 'off'}  `,
    `One worker each. Throughput: h2load -c10 -m10 for ${seconds} s (GET: h2c → HTTP/1.1 upstream, 100 B; direct is h2load --h1 to it. gRPC: unary echo of 64 B to @grpc/grpc-js over HTTP/2). ` +
      `Latency: gRPC unary at ${rate} calls/s over 4 connections, one call at a time each. ${rounds} interleaved rounds, medians.`,
    '',
    '| target | HTTP/2 GET req/s | vs nginx | gRPC unary req/s | vs nginx | gRPC p50 µs | p99 µs | added p50 µs | added p99 µs |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.name} | ${r.h2_get_rps} | ${r.h2_get_vs_nginx ?? '-'} | ${r.grpc_rps} | ${r.grpc_vs_nginx ?? '-'} | ${r.grpc_p50_us} | ${r.grpc_p99_us} | ${r.grpc_added_p50_us} | ${r.grpc_added_p99_us} |`),
    '',
  ];
  writeResults('http2', when, { when, command, machine: MACHINE, rounds, seconds, rate, pinned: pin, rows, raw: { getRps, grpcRps, grpcLat } }, lines);
  process.stdout.write(lines.join('\n'));
}

/** h2load over HTTP/1.1 (the upstream's baseline for the GET scenario). */
function h2loadRpsH1(port: number): number {
  return h2loadRps(tmp, port, GET, seconds, pin, 10, 1, ['--h1']);
}

runMain(main, () => {
  procs.stopAll();
  rmSync(tmp, { recursive: true, force: true });
});
