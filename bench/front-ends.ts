// What an HTTP/1 front end costs per request. Answering by itself: three origin servers
// that answer 100 bytes (bench/peers/origin.ts: node:http, llhttp on a net socket through
// Node's parser binding, uWebSockets.js) beside Remora answering the same 100 bytes from
// a direct_response route on each codec (strict: node:http; uws), and nginx (`return
// 200`). Proxying to the bench upstream: the least proxy on node:http and on the parser
// binding (bench/peers/mini-proxy.ts), Node's floor (bench/peers/node-forwarder.ts, no
// HTTP) and Remora on each codec. One process each pinned to core 1, wrk and the
// upstream on core 0, interleaved rounds, medians, each figure after 2 s of load on the
// same target (the others' turns leave it idle). CPU per request is the reciprocal of
// the saturated rate on one core.
//
//   npm run bench:front-ends -- [--rounds 3] [--duration 4] [--no-pin]
//
// Writes bench/results/front-ends-<timestamp>.{json,md}.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { MACHINE, Processes, hasBinary, log, median, revision, round, runMain, startPortScript, startRemora, startUpstream, writeConfig, writeResults } from './lib/harness.js';
import { freePort, waitPort } from './lib/peers.js';
import { ALL_OFF, benchRemoraConfig } from './lib/remora-config.js';
import { wrkRps } from './lib/wrk.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '4' },
    'no-pin': { type: 'boolean', default: false },
  },
  strict: true,
});
const rounds = Number(args.rounds);
const seconds = Number(args.duration);
const pin = !args['no-pin'] && os.availableParallelism() >= 2 && hasBinary('taskset');
const tmp = mkdtempSync(join(os.tmpdir(), 'remora-front-ends-'));
const procs = new Processes(pin);
const BODY = 'a'.repeat(100);

interface Target {
  readonly name: string;
  readonly what: string;
  readonly port: number;
}

async function main(): Promise<void> {
  if (!hasBinary('wrk')) throw new Error('wrk is not installed (apt-get install wrk)');
  if (pin) spawnSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  const targets: Target[] = [];
  const origins = {
    'node-http': "node:http's server",
    llhttp: "llhttp through Node's parser binding, written to the socket",
    uws: 'uWebSockets.js',
  } as const;
  for (const [mode, what] of Object.entries(origins)) {
    targets.push({ name: `origin ${mode}`, what, port: (await startPortScript(procs, 1, 'peers/origin', [mode])).port });
  }
  for (const codec of ['strict', 'uws'] as const) {
    const config = {
      workers: 1,
      admin: { address: '127.0.0.1', port: 0 },
      listeners: [{ name: 'bench', address: '127.0.0.1', port: 0, codec, virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'all', match: { prefix: '/' }, direct_response: { status: 200, body: BODY } }] }] }],
      clusters: [],
    };
    const remora = await startRemora(procs, 1, writeConfig(tmp, codec, config));
    targets.push({ name: `remora-${codec} direct_response`, what: `Remora, codec ${codec}, routing and stats as configured by default`, port: remora.listeners.bench });
  }
  // The same front ends proxying to an upstream (on core 0), with the least proxy around
  // them, and Node's floor: bytes copied between paired connections, no HTTP at all.
  const upstreamPort = await startUpstream(procs, 0, 100);
  for (const [mode, what] of Object.entries({ 'node-http': "node:http's server, a fixed upstream request", llhttp: "Node's parser binding, the response written to the socket" })) {
    targets.push({ name: `proxy ${mode}`, what, port: (await startPortScript(procs, 1, 'peers/mini-proxy', [String(upstreamPort), mode])).port });
  }
  const floor = await startPortScript(procs, 1, 'peers/node-forwarder', [String(upstreamPort), '0', 'data']);
  targets.push({ name: 'proxy node-floor', what: 'bytes copied between paired connections, no HTTP', port: floor.port });
  for (const codec of ['strict', 'uws'] as const) {
    const config = benchRemoraConfig({ ...ALL_OFF, stats: true, codec }, upstreamPort);
    const remora = await startRemora(procs, 1, writeConfig(tmp, `proxy-${codec}`, config));
    targets.push({ name: `proxy remora-${codec}`, what: `Remora, codec ${codec}, Remora's defaults`, port: remora.listeners.bench });
  }
  if (hasBinary('nginx')) {
    const port = await freePort();
    const conf = join(tmp, 'nginx.conf');
    writeFileSync(conf,
      `worker_processes 1;\ndaemon off;\npid ${tmp}/nginx.pid;\nerror_log ${tmp}/nginx-error.log;\nevents { worker_connections 4096; }\n` +
        `http {\n  access_log off;\n  keepalive_requests 10000000;\n  client_body_temp_path ${tmp}; proxy_temp_path ${tmp}; fastcgi_temp_path ${tmp}; uwsgi_temp_path ${tmp}; scgi_temp_path ${tmp};\n` +
        `  server { listen 127.0.0.1:${port}; location / { default_type text/plain; return 200 "${BODY}"; } }\n}\n`);
    const child = procs.start(1, 'nginx', ['-c', conf, '-p', tmp]);
    child.stderr!.on('data', (d: Buffer) => process.stderr.write(`nginx: ${d}`));
    await waitPort(port);
    targets.push({ name: 'nginx return 200', what: 'nginx 1 worker, `return 200`', port });
  }

  const rps: Record<string, number[]> = {};
  for (const t of targets) {
    rps[t.name] = [];
    log(`warm-up: ${t.name}`);
    wrkRps(t.port, seconds, pin);
  }
  for (let r = 0; r < rounds; r++) {
    for (const t of targets) {
      log(`round ${r + 1}/${rounds}: ${t.name}`);
      // Each target idles while the others run (Remora's workers give their heaps back
      // after 30 quiet seconds, and any process's caches go cold): 2 s of load first.
      wrkRps(t.port, 2, pin);
      rps[t.name].push(wrkRps(t.port, seconds, pin));
    }
  }
  const rows = targets.map((t) => {
    const m = median(rps[t.name]);
    return { name: t.name, what: t.what, rps: round(m), us_per_request: round(1e6 / m, 1), min: round(Math.min(...rps[t.name])), max: round(Math.max(...rps[t.name])) };
  });
  const when = new Date().toISOString();
  const command = `npm run bench:front-ends -- ${process.argv.slice(2).join(' ')}`.trim();
  const lines = [
    `# HTTP/1 front ends — ${when}`,
    '',
    `Command: \`${command}\`  `,
    `Machine: ${MACHINE}; revision ${revision()}; pinning ${pin ? 'servers on core 1, wrk and the upstream on core 0' : 'off'}  `,
    `wrk -t1 -c50 for ${seconds} s per figure, GET, 100 B responses, keep-alive; ${rounds} interleaved rounds, medians, each figure after 2 s of warm-up load on the same target. µs per request: 1 / rate (one saturated core).`,
    '',
    '| target | what | req/s (min–max) | µs per request |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.name} | ${r.what} | ${r.rps} (${r.min}–${r.max}) | ${r.us_per_request} |`),
    '',
  ];
  writeResults('front-ends', when, { when, command, machine: MACHINE, rounds, seconds, pinned: pin, rows, raw: rps }, lines);
  process.stdout.write(lines.join('\n'));
}

runMain(main, () => {
  procs.stopAll();
  rmSync(tmp, { recursive: true, force: true });
});
