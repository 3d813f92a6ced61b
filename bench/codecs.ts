// The price of the HTTP/1 codec: Remora's strict codec (llhttp through node:http, the
// default) against its uWS codec (`codec: uws`), nginx and HAProxy, all with one worker
// pinned to core 1, in front of the same upstream; wrk (a native generator, so the
// generator is not the limit) and the upstream on core 0. Interleaved rounds, medians.
//
//   npm run bench:codecs -- [--rounds 3] [--duration 5] [--rate 2000] [--no-pin]
//                           [--node /path/to/node,...] [--only name,...]
//
// --node adds the strict codec on each other Node binary (Node 22 or 24, say: the uWS
// codec has no build there), beside both codecs on this process's Node. --only keeps the
// targets whose names start with one of the given (direct always runs: the baseline).
//
// node-floor-data and node-floor-onread (bench/peers/node-forwarder.ts) copy bytes between
// paired client and upstream connections with no HTTP at all: the least a Node.js proxy
// pays per request, so the ceiling for Remora's rate against nginx's.
//
// Reports per target: GET 100 B req/s and POST 4 KB req/s (wrk, 50 connections), each as
// a ratio to direct and to nginx; added p50/p99 latency at a fixed rate (open loop, µs).
// Writes bench/results/codecs-<timestamp>.{json,md}.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runOpenLoop, type LatencySummary } from './lib/open-loop.js';
import { MACHINE, Processes, hasBinary, median, revision, runMain, startPortScript, startRemora, startUpstream, writeConfig, writeResults, log, round } from './lib/harness.js';
import { peerMissing, startPeer } from './lib/peers.js';
import { ALL_OFF, benchRemoraConfig } from './lib/remora-config.js';
import { wrkRps } from './lib/wrk.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    rate: { type: 'string', default: '2000' },
    'no-pin': { type: 'boolean', default: false },
    node: { type: 'string', default: '' },
    only: { type: 'string', default: '' },
  },
  strict: true,
});
const otherNodes = args.node === '' ? [] : args.node.split(',');
const only = args.only === '' ? [] : args.only.split(',');
/** Whether --only lets target `name` run. */
const wanted = (name: string): boolean => only.length === 0 || only.some((prefix) => name.startsWith(prefix));
const nodeVersion = (node: string): string => spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
const rounds = Number(args.rounds);
const seconds = Number(args.duration);
const rate = Number(args.rate);
const pin = !args['no-pin'] && os.availableParallelism() >= 2 && hasBinary('taskset');
const tmp = mkdtempSync(join(os.tmpdir(), 'remora-codecs-'));
const procs = new Processes(pin);

interface Target {
  readonly name: string;
  readonly port: number;
}

/** wrk's req/s for `seconds` on `port`; `script` sets a POST body. */
function wrk(port: number, script: string | null): number {
  return wrkRps(port, seconds, pin, script);
}

async function main(): Promise<void> {
  if (!hasBinary('wrk')) throw new Error('wrk is not installed (apt-get install wrk)');
  if (pin) spawnSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  os.setPriority(19);
  const upstreamPort = await startUpstream(procs, 0, 100);
  const targets: Target[] = [{ name: 'direct', port: upstreamPort }];
  for (const codec of ['strict', 'uws'] as const) {
    if (!wanted(`remora-${codec}`)) continue;
    const config = benchRemoraConfig({ ...ALL_OFF, stats: true, codec }, upstreamPort);
    const remora = await startRemora(procs, 1, writeConfig(tmp, codec, config));
    targets.push({ name: `remora-${codec}`, port: remora.listeners.bench });
    if (codec !== 'strict') continue;
    for (const node of otherNodes) {
      const remoraThere = await startRemora(procs, 1, writeConfig(tmp, codec, config), [], node);
      targets.push({ name: `remora-${codec} (node ${nodeVersion(node)})`, port: remoraThere.listeners.bench });
    }
  }
  for (const peer of ['nginx', 'haproxy'] as const) {
    if (peerMissing(peer) !== null || !wanted(peer)) continue;
    targets.push({ name: peer, port: (await startPeer(procs, 1, peer, upstreamPort, 1, tmp)).port });
  }
  // Node's floor: bytes copied between paired connections, no HTTP (bench/peers/node-forwarder.ts).
  for (const mode of ['data', 'onread'] as const) {
    const name = `node-floor-${mode}`;
    if (!wanted(name)) continue;
    targets.push({ name, port: (await startPortScript(procs, 1, 'peers/node-forwarder', [String(upstreamPort), '0', mode])).port });
  }
  const post = join(tmp, 'post.lua');
  writeFileSync(post, `wrk.method = "POST"\nwrk.body = string.rep("x", 4096)\nwrk.headers["Content-Type"] = "application/octet-stream"\n`);

  const get: Record<string, number[]> = {};
  const body: Record<string, number[]> = {};
  const latency: Record<string, LatencySummary[]> = {};
  for (const t of targets) {
    get[t.name] = [];
    body[t.name] = [];
    latency[t.name] = [];
    log(`warm-up: ${t.name}`);
    wrk(t.port, null);
  }
  for (let r = 0; r < rounds; r++) {
    for (const t of targets) {
      log(`round ${r + 1}/${rounds}: ${t.name}`);
      // The target idled while the others ran (Remora's workers give their heaps back
      // after 30 quiet seconds, and any process's caches go cold): 2 s of load first.
      wrkRps(t.port, 2, pin, null);
      get[t.name].push(wrk(t.port, null));
      body[t.name].push(wrk(t.port, post));
      latency[t.name].push(await runOpenLoop({ port: t.port, rate, durationMs: seconds * 1000, connections: 16 }));
    }
  }
  const med = (xs: number[]): number => median(xs);
  const nginxGet = get.nginx !== undefined ? med(get.nginx) : null;
  const nginxBody = body.nginx !== undefined ? med(body.nginx) : null;
  const rows = targets.map((t) => {
    const addedP50 = latency[t.name].map((l, i) => l.p50 - latency.direct[i].p50);
    const addedP99 = latency[t.name].map((l, i) => l.p99 - latency.direct[i].p99);
    return {
      name: t.name,
      get_rps: med(get[t.name]),
      get_vs_direct: round(med(get[t.name]) / med(get.direct), 2),
      get_vs_nginx: nginxGet === null ? null : round(med(get[t.name]) / nginxGet, 2),
      post4k_rps: med(body[t.name]),
      post4k_vs_nginx: nginxBody === null ? null : round(med(body[t.name]) / nginxBody, 2),
      added_p50_us: t.name === 'direct' ? 0 : med(addedP50),
      added_p99_us: t.name === 'direct' ? 0 : med(addedP99),
    };
  });
  const when = new Date().toISOString();
  const command = `npm run bench:codecs -- ${process.argv.slice(2).join(' ')}`.trim();
  const lines = [
    `# HTTP/1 codecs — ${when}`,
    '',
    `Command: \`${command}\`  `,
    `Machine: ${MACHINE}; Node ${process.version} unless named; revision ${revision()}; pinning ${pin ? 'proxies on core 1, wrk + open-loop generator + upstream on core 0' : 'off'}  `,
    `One worker each; wrk -t1 -c50 for ${seconds} s per figure (GET: 100 B responses; POST: 4 KB bodies), open loop at ${rate} req/s with 16 connections; ${rounds} interleaved rounds, medians; 2 s of warm-up load on each target before its figures in each round.`,
    '',
    '| target | GET req/s | vs direct | vs nginx | POST 4 KB req/s | vs nginx | added p50 µs | added p99 µs |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.name} | ${r.get_rps} | ${r.get_vs_direct} | ${r.get_vs_nginx ?? '-'} | ${r.post4k_rps} | ${r.post4k_vs_nginx ?? '-'} | ${r.added_p50_us} | ${r.added_p99_us} |`),
    '',
  ];
  writeResults('codecs', when, { when, command, machine: MACHINE, rounds, seconds, rate, pinned: pin, rows, raw: { get, body, latency } }, lines);
  process.stdout.write(lines.join('\n'));
}

runMain(main, () => {
  procs.stopAll();
  rmSync(tmp, { recursive: true, force: true });
});
