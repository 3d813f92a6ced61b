// Byte tunnels through Remora, nginx and HAProxy, one worker each: a TCP listener in front
// of redis-server (redis-benchmark), and WebSocket upgrades in front of an echo upstream
// (bench/peers/ws-echo.ts, driven by bench/peers/ws-load.ts in processes of its own).
// Interleaved rounds (the target order rotates each round), medians.
//
//   npm run bench:tunnels -- [--rounds 3] [--duration 5] [--warmup 2] [--requests 100000]
//                            [--connections 50] [--sizes 64,4096] [--window 1]
//                            [--generators auto|N] [--scenarios tcp,ws] [--only name,...]
//                            [--no-pin] [--quick] [--out DIR]
//
// - tcp: `redis-benchmark -t set,get -n <requests> -c <connections> -P 1 --csv` against
//   redis-server directly, Remora (`tcp_proxy`), nginx (`stream { proxy_pass }`) and
//   HAProxy (`mode tcp`): req/s and p50 ms per command. Target: Remora ≥ 0.8 × HAProxy.
// - ws-<size>: <connections> WebSockets, closed loop (`--window` messages in flight per
//   socket, 1 by default: the next message leaves when the echo is back), binary messages
//   of <size> bytes for `--duration` s after `--warmup` s, against the echo upstream
//   directly, Remora (`upgrade_configs: [{upgrade_type: websocket}]`), nginx
//   (`proxy_http_version 1.1` + Upgrade/Connection headers) and HAProxy (`mode http`,
//   `timeout tunnel`): messages/s. Target: Remora ≥ nginx.
//
// Layout: proxies on core 1; upstreams, redis-benchmark and the WebSocket generators on
// core 0 under 4 cores (the generators on cores 2–3 from 4 cores). Reported with each figure:
// the generator's CPU (% of one core) and, per round, the CPU used by processes outside
// the benchmark. Writes bench/results/tunnels-<timestamp>.{json,md}.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { HostLoad, shareOf, type CpuTicks } from './lib/host-load.js';
import { MACHINE, Processes, ROOT, canPin, commandLine, hasBinary, httpGet, log, median, pinSelf, revision, round, runMain, showSpread, spread, startPortScript, startRemora, waitForOutput, writeConfig, writeResults, type Spread } from './lib/harness.js';
import { freePort, haproxyTcpConfig, haproxyWebSocketConfig, nginxStreamConfig, nginxStreamModule, nginxWebSocketConfig, waitPort, type PeerConfigOptions } from './lib/peers.js';
import { metricSum } from './lib/remora-config.js';
import type { WsLoadResult } from './peers/ws-load.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    requests: { type: 'string' },
    connections: { type: 'string', default: '50' },
    sizes: { type: 'string', default: '64,4096' },
    window: { type: 'string', default: '1' },
    generators: { type: 'string', default: 'auto' },
    scenarios: { type: 'string', default: 'tcp,ws' },
    only: { type: 'string', default: '' },
    'no-pin': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
  strict: true,
});
const quick = args.quick;
const rounds = Number(args.rounds ?? (quick ? 1 : 3));
const seconds = Number(args.duration ?? (quick ? 1 : 5));
const warmup = Number(args.warmup ?? (quick ? 0.5 : 2));
const requests = Number(args.requests ?? (quick ? 10000 : 100000));
const connections = Number(args.connections);
const sizes = args.sizes.split(',').map(Number);
const window = Number(args.window);
const scenarioKinds = new Set(args.scenarios.split(','));
const only = args.only === '' ? [] : args.only.split(',');
const cores = os.availableParallelism();
const generators = args.generators === 'auto' ? (cores >= 4 ? 2 : 1) : Number(args.generators);
const pin = canPin(args['no-pin']);
const GEN_CORES = cores >= 4 ? '2-3' : '0';
const PROXY_CORE = 1;
/** A proxy at this share of direct or more is limited by the generator side. */
const CAPPED = 0.9;
const UPSTREAM_CORE = 0;
const tmp = mkdtempSync(join(os.tmpdir(), 'remora-tunnels-'));
const procs = new Processes(pin);
// Polled twice a second: a process that ends loses at most its last half second to
// "other" (redis-benchmark and the generators end after each run).
const hostLoad = new HostLoad(500);

type Kind = 'tcp' | 'ws';
/** `uws-terminate`: the design Remora did not take for WebSocket (bench/peers/ws-terminator.ts). */
type TargetName = 'direct' | 'remora' | 'nginx' | 'haproxy' | 'uws-terminate';

/** One run of one target: the figure, the generator's CPU, errors. */
interface Run {
  readonly rate: number;
  readonly genCpuPct: number | null;
  readonly errors: number;
  /** redis-benchmark's p50 (ms), or the mean round trip implied by the rate (µs, ws). */
  readonly latency: number | null;
}

interface Scenario {
  readonly id: string;
  readonly kind: Kind;
  readonly title: string;
  readonly unit: string;
  /** Measured per round and target (all of a tcp round's commands come from one run). */
  readonly runs: Map<TargetName, Run[]>;
}

const unavailable = new Map<TargetName | `${TargetName}-${Kind}`, string>();
const wanted = (name: string): boolean => only.length === 0 || name === 'direct' || only.some((p) => name.startsWith(p));

// ---------------------------------------------------------------- starting the targets

/** Starts nginx or HAProxy with `config` written to its own directory; resolves once it
 *  accepts connections on `port`. */
async function startPeerWith(name: 'nginx' | 'haproxy', kind: Kind, build: (o: PeerConfigOptions) => string, upstreamPort: number): Promise<number> {
  const dir = join(tmp, `${name}-${kind}`);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const file = join(dir, name === 'nginx' ? 'nginx.conf' : 'haproxy.cfg');
  writeFileSync(file, build({ port, upstreamPort, workers: 1, dir }));
  const child = name === 'nginx' ? procs.start(PROXY_CORE, 'nginx', ['-c', file, '-p', dir]) : procs.start(PROXY_CORE, 'haproxy', ['-f', file, '-db']);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.resume();
  try {
    await waitPort(port, 5000);
  } catch {
    throw new Error(`${name} (${kind}) did not start: ${stderr.trim() || `exit ${child.exitCode}`}`);
  }
  return port;
}

/** Remora, one worker, with `listener` and one cluster "up" → 127.0.0.1:`upstreamPort`. */
async function startRemoraWith(kind: Kind, listener: object, upstreamPort: number): Promise<{ port: number; admin: number }> {
  const config = {
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [{ name: kind, address: '127.0.0.1', port: 0, ...listener }],
    clusters: [{ name: 'up', endpoints: [{ address: '127.0.0.1', port: upstreamPort }] }],
  };
  const file = writeConfig(tmp, `remora-${kind}`, config);
  const r = await startRemora(procs, PROXY_CORE, file);
  const port = r.listeners[kind];
  if (port === undefined) throw new Error(`remora (${kind}): listener "${kind}" missing from the ready line ${JSON.stringify(r.listeners)}; config ${file}`);
  return { port, admin: r.adminPort };
}

/** Starts every wanted proxy of `kind` in front of `upstreamPort`; a proxy that cannot
 *  start is recorded in `unavailable` and left out. */
async function startProxies(kind: Kind, upstreamPort: number, admins: Map<Kind, number>): Promise<Map<TargetName, number>> {
  const ports = new Map<TargetName, number>([['direct', upstreamPort]]);
  const attempt = async (name: TargetName, start: () => Promise<number>): Promise<void> => {
    if (!wanted(name)) return;
    try {
      ports.set(name, await start());
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      unavailable.set(`${name}-${kind}`, why);
      log(`${name} (${kind}) left out: ${why}`);
    }
  };
  await attempt('remora', async () => {
    const listener = kind === 'tcp'
      ? { tcp_proxy: { cluster: 'up' } }
      : { upgrade_configs: [{ upgrade_type: 'websocket' }], virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'all', match: { prefix: '/' }, route: { cluster: 'up' } }] }] };
    const r = await startRemoraWith(kind, listener, upstreamPort);
    admins.set(kind, r.admin);
    return r.port;
  });
  if (kind === 'ws') {
    // The other design, in the same conditions: uWS terminates each WebSocket and the `ws`
    // client re-originates it (Node 20 only: the uWS build loads nowhere else).
    await attempt('uws-terminate', async () => {
      const child = procs.start(PROXY_CORE, process.execPath, [join(ROOT, 'dist/bench/peers/ws-terminator.js'), String(upstreamPort)]);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      try {
        return Number((await waitForOutput(child, /^(\d+)\n/m))[1]);
      } catch {
        throw new Error(`ws-terminator did not start: ${stderr.trim().split('\n')[0] ?? ''}`);
      }
    });
  }
  for (const name of ['nginx', 'haproxy'] as const) {
    if (!wanted(name)) continue;
    if (!hasBinary(name)) {
      unavailable.set(name, `${name} not installed`);
      continue;
    }
    if (kind === 'tcp' && name === 'nginx') {
      const module = nginxStreamModule();
      if (module === null) {
        unavailable.set('nginx-tcp', 'nginx has no stream module (Debian: apt-get install libnginx-mod-stream)');
        continue;
      }
      await attempt(name, () => startPeerWith(name, kind, (o) => nginxStreamConfig(o, module), upstreamPort));
      continue;
    }
    const build = kind === 'tcp' ? haproxyTcpConfig : name === 'nginx' ? nginxWebSocketConfig : haproxyWebSocketConfig;
    await attempt(name, () => startPeerWith(name, kind, build, upstreamPort));
  }
  return ports;
}

// ---------------------------------------------------------------- checks before measuring

/** Redis PING through `port`: resolves with what came back (`+PONG` when it works). */
function redisPing(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('PING\r\n'));
    let got = '';
    const done = (what: string): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(what);
    };
    const timer = setTimeout(() => done(`no answer in 2 s${got === '' ? '' : `: ${JSON.stringify(got)}`}`), 2000);
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n')) done(got.trim());
    });
    s.on('error', (err) => done(`error: ${err.message}`));
    s.on('close', () => done(`closed${got === '' ? '' : ` after ${JSON.stringify(got)}`}`));
  });
}

// ---------------------------------------------------------------- generators

/** redis-benchmark's req/s and p50 per command, run through `sh` so that the shell's
 *  cutime + cstime (its reaped child: redis-benchmark) give the generator's CPU. */
async function redisBenchmark(port: number): Promise<{ byTest: Map<string, { rps: number; p50: number }>; cpuPct: number | null; errors: string }> {
  const cmd = `redis-benchmark -h 127.0.0.1 -p ${port} -t set,get -n ${requests} -c ${connections} -P 1 -q --csv; s=$?; cat /proc/$$/stat >&2; exit $s`;
  const argv = pin ? ['taskset', '-c', GEN_CORES, 'sh', '-c', cmd] : ['sh', '-c', cmd];
  const t0 = performance.now();
  const { stdout, stderr } = await collect(argv, 120_000 + requests);
  const wall = (performance.now() - t0) / 1000;
  const byTest = new Map<string, { rps: number; p50: number }>();
  for (const line of stdout.split('\n')) {
    const f = line.split(',').map((x) => x.replace(/"/g, ''));
    if (f.length >= 5 && Number.isFinite(Number(f[1])) && f[0] !== 'test') byTest.set(f[0].toLowerCase(), { rps: Math.round(Number(f[1])), p50: Number(f[4]) });
  }
  const statLine = stderr.split('\n').reverse().find((l) => /^\d+ \(sh\)/.test(l)) ?? '';
  const rest = statLine.slice(statLine.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(rest[13]) + Number(rest[14]); // cutime + cstime, USER_HZ (100 on Linux)
  const cpuPct = Number.isFinite(ticks) && statLine !== '' ? round((ticks / 100 / wall) * 100, 1) : null;
  const errors = stderr.split('\n').filter((l) => l !== '' && l !== statLine).join('; ');
  return { byTest, cpuPct, errors };
}

/** Runs `argv` to its end (killed after `ms`); stdout and stderr. */
function collect(argv: string[], ms: number): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
  });
}

/** `gens` ws-load processes sharing `conns` sockets on `port`, `warmupS` then `countS`
 *  seconds; summed. */
async function wsLoad(port: number, size: number, gens = generators, conns = connections, warmupS = warmup, countS = seconds): Promise<Run & { samples: string[] }> {
  const startAt = Date.now() + 500 + warmupS * 1000;
  const runs = Array.from({ length: gens }, (_, g) => {
    const share = Math.floor(conns / gens) + (g < conns % gens ? 1 : 0);
    const opts = { port, connections: share, size, window, startAt, durationMs: countS * 1000 };
    const argv = [join(ROOT, 'dist/bench/peers/ws-load.js'), JSON.stringify(opts)];
    const cmd = pin ? ['taskset', '-c', GEN_CORES, process.execPath, ...argv] : [process.execPath, ...argv];
    return collect(cmd, startAt - Date.now() + countS * 1000 + 15_000);
  });
  const outs = await Promise.all(runs);
  let rate = 0;
  let cpu = 0;
  let errors = 0;
  const samples: string[] = [];
  for (const o of outs) {
    const line = o.stdout.trim().split('\n').pop() ?? '';
    let r: WsLoadResult;
    try {
      r = JSON.parse(line) as WsLoadResult;
    } catch {
      errors++;
      samples.push(`generator exited ${o.code}: ${o.stderr.trim().slice(0, 300)}`);
      continue;
    }
    rate += r.seconds > 0 ? r.messages / r.seconds : 0;
    cpu += r.cpuPct;
    errors += r.errors;
    samples.push(...r.errorSamples);
  }
  rate = Math.round(rate);
  return { rate, genCpuPct: round(cpu, 1), errors, latency: rate > 0 ? Math.round(((conns * window) / rate) * 1e6) : null, samples };
}

// ---------------------------------------------------------------- the run

/** Per-round ratios of `name` to `vs` (paired), median (min–max); null without both. */
function ratio(s: Scenario, name: TargetName, vs: TargetName): Spread | null {
  const a = s.runs.get(name);
  const b = s.runs.get(vs);
  if (a === undefined || b === undefined || a.length === 0) return null;
  // A run with no figure (0: it failed, see errors) pairs with nothing.
  const xs = a.map((r, i) => (r.rate > 0 && b[i]?.rate ? r.rate / b[i].rate : NaN)).filter((x) => Number.isFinite(x));
  return xs.length === 0 ? null : spread(xs, 3);
}

interface TargetCheck {
  readonly target: string;
  readonly verdict: 'met' | 'missed' | 'not measured';
  readonly ratio: Spread | null;
  readonly noisy: boolean;
  readonly note?: string;
}

function check(target: string, s: Scenario | undefined, vs: TargetName, threshold: number): TargetCheck {
  const r = s === undefined ? null : ratio(s, 'remora', vs);
  if (r === null) {
    const why = s === undefined ? 'scenario not run' : !s.runs.has('remora') ? 'Remora left out' : !s.runs.has(vs) ? `${vs} left out` : 'no figure (see Errors)';
    return { target, verdict: 'not measured', ratio: null, noisy: false, note: why };
  }
  return { target, verdict: r.median >= threshold ? 'met' : 'missed', ratio: r, noisy: r.min < threshold && r.max >= threshold };
}

async function main(): Promise<void> {
  for (const [flag, x] of Object.entries({ rounds, duration: seconds, requests, connections, window, generators, sizes: Math.min(...sizes) })) {
    if (!(Number.isFinite(x) && x > 0)) throw new Error(`--${flag} must be positive`);
  }
  if (pin) pinSelf(UPSTREAM_CORE);
  os.setPriority(19);
  const admins = new Map<Kind, number>();
  const scenarios: Scenario[] = [];
  const ports = new Map<Kind, Map<TargetName, number>>();
  const notes: string[] = [];

  if (scenarioKinds.has('tcp')) {
    if (!hasBinary('redis-server') || !hasBinary('redis-benchmark')) {
      notes.push('tcp: skipped, redis-server or redis-benchmark is not installed (Debian: apt-get install redis-server redis-tools)');
    } else {
      const redisPort = await freePort();
      const redis = procs.start(UPSTREAM_CORE, 'redis-server', ['--save', '', '--appendonly', 'no', '--port', String(redisPort), '--bind', '127.0.0.1', '--dir', tmp, '--daemonize', 'no']);
      redis.stdout!.resume();
      redis.stderr!.resume();
      await waitPort(redisPort);
      const tcpPorts = await startProxies('tcp', redisPort, admins);
      for (const [name, port] of tcpPorts) {
        const pong = await redisPing(port);
        if (pong !== '+PONG') {
          unavailable.set(`${name}-tcp`, `PING through it answered ${JSON.stringify(pong)}`);
          log(`${name} (tcp) left out: PING answered ${pong}`);
          tcpPorts.delete(name);
        }
      }
      ports.set('tcp', tcpPorts);
      for (const test of ['set', 'get']) {
        scenarios.push({ id: `tcp-${test}`, kind: 'tcp', title: `TCP: redis ${test.toUpperCase()}`, unit: 'req/s', runs: new Map([...tcpPorts.keys()].map((n) => [n, []])) });
      }
    }
  }
  if (scenarioKinds.has('ws')) {
    const echoPort = (await startPortScript(procs, UPSTREAM_CORE, 'peers/ws-echo')).port;
    const wsPorts = await startProxies('ws', echoPort, admins);
    for (const [name, port] of wsPorts) {
      // One socket for 0.3 s: the upgrade must succeed and messages come back.
      const probe = await wsLoad(port, Math.min(...sizes), 1, 1, 0, 0.3);
      if (probe.rate === 0 || probe.errors > 0) {
        const why = probe.samples.join('; ') || 'no echo came back';
        unavailable.set(`${name}-ws`, `WebSocket probe failed: ${why}`);
        log(`${name} (ws) left out: ${why}`);
        wsPorts.delete(name);
      }
    }
    ports.set('ws', wsPorts);
    for (const size of sizes) {
      scenarios.push({ id: `ws-${size}`, kind: 'ws', title: `WebSocket echo, ${size} B messages`, unit: 'messages/s', runs: new Map([...wsPorts.keys()].map((n) => [n, []])) });
    }
  }

  const roundLoad: { round: number; otherPct: number | null; stealPct: number | null }[] = [];
  const errorSamples: string[] = [];
  for (let r = 0; r < rounds; r++) {
    const before: CpuTicks | null = hostLoad.snapshot();
    for (const kind of ['tcp', 'ws'] as const) {
      const kindPorts = ports.get(kind);
      if (kindPorts === undefined) continue;
      const names = [...kindPorts.keys()];
      const order = names.map((_, i) => names[(i + r) % names.length]);
      if (kind === 'tcp') {
        for (const name of order) {
          log(`round ${r + 1}/${rounds}: tcp ${name}`);
          const out = await redisBenchmark(kindPorts.get(name)!);
          if (out.errors !== '') errorSamples.push(`tcp ${name}: ${out.errors.slice(0, 300)}`);
          for (const s of scenarios.filter((x) => x.kind === 'tcp')) {
            const test = out.byTest.get(s.id.slice(4));
            s.runs.get(name)!.push({ rate: test?.rps ?? 0, genCpuPct: out.cpuPct, errors: test === undefined ? 1 : 0, latency: test?.p50 ?? null });
          }
        }
        continue;
      }
      for (const s of scenarios.filter((x) => x.kind === 'ws')) {
        const size = Number(s.id.slice(3));
        for (const name of order) {
          log(`round ${r + 1}/${rounds}: ${s.id} ${name}`);
          const run = await wsLoad(kindPorts.get(name)!, size);
          if (run.samples.length > 0) errorSamples.push(`${s.id} ${name}: ${run.samples.slice(0, 3).join('; ')}`);
          s.runs.get(name)!.push({ rate: run.rate, genCpuPct: run.genCpuPct, errors: run.errors, latency: run.latency });
        }
      }
    }
    const share = shareOf(before, hostLoad.snapshot());
    roundLoad.push({ round: r + 1, otherPct: share?.otherPct ?? null, stealPct: share?.stealPct ?? null });
  }

  const sanity: Record<string, Record<string, number>> = {};
  for (const [kind, admin] of admins) {
    try {
      const text = (await httpGet(admin, '/metrics')).body;
      sanity[`remora-${kind}`] = Object.fromEntries(
        ['remora_downstream_tunnel_bytes_received_total', 'remora_downstream_tunnel_bytes_sent_total', 'remora_downstream_upgrades_total', 'remora_upstream_tunnel_bytes_sent_total', 'remora_upstream_connect_failures_total']
          .map((m) => [m, metricSum(text, m)]),
      );
    } catch (err) {
      sanity[`remora-${kind}`] = {};
      notes.push(`remora (${kind}): /metrics unreadable: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  report(scenarios, roundLoad, errorSamples, sanity, notes);
}

// ---------------------------------------------------------------- the report

function report(scenarios: Scenario[], roundLoad: { round: number; otherPct: number | null; stealPct: number | null }[], errorSamples: string[], sanity: object, notes: string[]): void {
  const when = new Date().toISOString();
  const command = commandLine('bench:tunnels');
  const rows = scenarios.map((s) => ({
    id: s.id,
    title: s.title,
    unit: s.unit,
    targets: [...s.runs.entries()].map(([name, runs]) => ({
      target: name,
      rate: spread(runs.map((x) => x.rate), 0),
      vsDirect: name === 'direct' ? null : ratio(s, name, 'direct'),
      vsNginx: name === 'nginx' ? null : ratio(s, name, 'nginx'),
      vsHaproxy: name === 'haproxy' ? null : ratio(s, name, 'haproxy'),
      latency: runs.every((x) => x.latency !== null) && runs.length > 0 ? round(median(runs.map((x) => x.latency!)), s.kind === 'tcp' ? 3 : 0) : null,
      genCpuPct: runs.every((x) => x.genCpuPct !== null) && runs.length > 0 ? round(median(runs.map((x) => x.genCpuPct!)), 1) : null,
      errors: runs.reduce((n, x) => n + x.errors, 0),
      perRound: runs.map((x) => x.rate),
    })),
  }));
  const by = new Map(scenarios.map((s) => [s.id, s]));
  const targets: TargetCheck[] = [
    check('TCP redis SET: Remora ≥ 0.8 × HAProxy req/s', by.get('tcp-set'), 'haproxy', 0.8),
    check('TCP redis GET: Remora ≥ 0.8 × HAProxy req/s', by.get('tcp-get'), 'haproxy', 0.8),
    ...sizes.map((size) => check(`WebSocket ${size} B: Remora ≥ nginx messages/s (1 worker)`, by.get(`ws-${size}`), 'nginx', 1)),
  ];
  const versions = {
    nginx: hasBinary('nginx') ? firstLine(['nginx', '-v']) : null,
    haproxy: hasBinary('haproxy') ? firstLine(['haproxy', '-v']).replace(/ - https?:.*/, '') : null,
    redis: hasBinary('redis-server') ? firstLine(['redis-server', '--version']).replace(/ sha=.*/, '') : null,
  };
  const cell = (x: Spread | null): string => (x === null ? '–' : showSpread(x));
  const layout = pin
    ? `proxies on core ${PROXY_CORE}; upstreams (redis-server, ws-echo) on core ${UPSTREAM_CORE}; redis-benchmark and the ws generators (${generators} process${generators > 1 ? 'es' : ''}) on core${GEN_CORES.includes('-') ? 's' : ''} ${GEN_CORES}`
    : 'unpinned';
  const lines = [
    `# Tunnels: TCP (redis) and WebSocket — ${when}`,
    '',
    `Command: \`${command}\`  `,
    `Machine: ${MACHINE}; revision ${revision()}  `,
    `Peers: ${versions.nginx ?? 'nginx missing'}; ${versions.haproxy ?? 'HAProxy missing'}; ${versions.redis ?? 'redis missing'}  `,
    `Layout: ${layout}; one worker each (Remora \`workers: 1\`, nginx \`worker_processes 1\`, HAProxy \`nbthread 1\`)  `,
    `Method: ${rounds} round(s), targets interleaved (order rotated each round), median (min–max) over rounds; ratios are paired per round. ` +
      `TCP: \`redis-benchmark -t set,get -n ${requests} -c ${connections} -P 1\` (latency column: its p50, ms). ` +
      `WebSocket: ${connections} sockets, ${window} message(s) in flight per socket, ${warmup} s warm-up then ${seconds} s counted (latency column: mean round trip implied by the rate, µs).`,
    '',
  ];
  for (const s of rows) {
    lines.push(`## ${s.title} (${s.unit})`, '', `| target | ${s.unit} | vs direct | vs nginx | vs HAProxy | ${s.id.startsWith('tcp') ? 'p50 ms' : 'mean RTT µs'} | generator CPU % | errors |`, '|---|---|---|---|---|---|---|---|');
    for (const t of s.targets) lines.push(`| ${t.target} | ${showSpread(t.rate)} | ${cell(t.vsDirect)} | ${cell(t.vsNginx)} | ${cell(t.vsHaproxy)} | ${t.latency ?? '–'} | ${t.genCpuPct ?? '–'} | ${t.errors} |`);
    const capped = s.targets.filter((t) => t.vsDirect !== null && t.vsDirect.median >= CAPPED).map((t) => t.target);
    if (capped.length > 0) {
      lines.push('', `${capped.join(', ')}: ≥ ${CAPPED} × direct, so limited by what direct is limited by (the generator and upstream${pin && GEN_CORES === '0' ? ', sharing core 0' : ''}) rather than by the proxy: ratios between such targets understate their difference.`);
    }
    lines.push('');
  }
  lines.push('## Targets', '', '| target | Remora ratio | verdict |', '|---|---|---|');
  for (const t of targets) lines.push(`| ${t.target} | ${cell(t.ratio)} | **${t.verdict}**${t.noisy ? ' (rounds on both sides)' : ''}${t.note !== undefined ? ` (${t.note})` : ''} |`);
  lines.push('', '## Host noise', '', '| round | other processes' + "'" + ' CPU % (of all cores) | steal % |', '|---|---|---|');
  for (const l of roundLoad) lines.push(`| ${l.round} | ${l.otherPct ?? '–'} | ${l.stealPct ?? '–'} |`);
  lines.push('', 'Generator CPU is % of one core (redis-benchmark: its CPU over its whole run; ws: the generator processes summed over the counted window). Near 100 % on one core, the generator may be the limit (above all for direct).', '');
  const left = [...unavailable.entries()].map(([k, why]) => `- ${k}: ${why}`);
  if (left.length > 0 || notes.length > 0) lines.push('## Left out', '', ...left, ...notes.map((n) => `- ${n}`), '');
  if (errorSamples.length > 0) lines.push('## Errors', '', ...errorSamples.map((e) => `- ${e}`), '');
  lines.push('## Remora /metrics at the end', '', '```', JSON.stringify(sanity, null, 2), '```', '');
  writeResults(
    'tunnels',
    when,
    { when, command, machine: MACHINE, revision: revision(), versions, pinned: pin, layout, rounds, seconds, warmup, requests, connections, sizes, window, generators, scenarios: rows, targets, hostNoise: roundLoad, unavailable: Object.fromEntries(unavailable), notes, errors: errorSamples, remoraMetrics: sanity },
    lines,
    args.out ?? join(ROOT, 'bench/results'),
  );
}

function firstLine(argv: string[]): string {
  const r = spawnSyncText(argv);
  return r.split('\n').find((l) => l.trim() !== '')?.trim() ?? '';
}

function spawnSyncText(argv: string[]): string {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

runMain(main, () => {
  hostLoad.stop();
  procs.stopAll();
  rmSync(tmp, { recursive: true, force: true });
});
