// Multi-core scaling: Remora with 1, 2, 4, … workers against nginx with as many worker
// processes, on whatever cores this host has, each figure next to the direct-to-upstream
// baseline of the same round and the CPU each target actually used.
//
//   npm run bench:scaling -- [--workers 1,2,4,8] [--seconds 8] [--rounds 3]
//                            [--connections 256] [--upstream-workers N] [--wrk-threads N]
//                            [--no-pin] [--out DIR]
//
// Layout (cores ≥ 8, pinned): the upstream (nginx answering 100 B, N workers) on the first
// quarter of the cores, wrk on the next quarter, the proxy under test on the cores after
// them (w workers on w cores). The suite's `workers` scenario keeps a one-core upstream and
// autocannon, which cap scaling at a few workers; this one is sized for many cores and uses
// a native generator. Every round drives direct, Remora and nginx in turn (the order
// rotates); a target whose direct baseline is under 1.5× its rate is marked
// generator-bound. "Busy" is the proxy's CPU over the cores it was given: how close its
// workers came to saturating them (docs/performance.md's multi-core model).

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchRemoraConfig, ALL_OFF } from './lib/remora-config.js';
import { canPin, commandLine, hasBinary, log, MACHINE, median, Processes, revision, round, rssMb, runMain, sleep, startRemora, stopPid, writeConfig, writeResults } from './lib/harness.js';
import { clockTicksPerSecond, processTreeTicks } from './lib/host-load.js';
import { freePort, startPeer, waitPort } from './lib/peers.js';
import { runWrk } from './lib/wrk.js';

const { values: v } = parseArgs({
  options: {
    workers: { type: 'string' },
    seconds: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '256' },
    'upstream-workers': { type: 'string' },
    'wrk-threads': { type: 'string' },
    'no-pin': { type: 'boolean', default: false },
    codec: { type: 'string', default: 'strict' },
    'extra-cores': { type: 'string', default: '0' },
    out: { type: 'string' },
  },
});

const cores = os.availableParallelism();
const quarter = Math.max(1, Math.floor(cores / 4));
const upstreamWorkers = Number(v['upstream-workers'] ?? quarter);
const wrkThreads = Number(v['wrk-threads'] ?? quarter);
const proxyFirstCore = upstreamWorkers + wrkThreads;
const proxyCoresLeft = Math.max(1, cores - proxyFirstCore);
const workerCounts = (v.workers ?? defaultCounts(proxyCoresLeft)).toString().split(',').map(Number);
const seconds = Number(v.seconds);
const rounds = Number(v.rounds);
const connections = Number(v.connections);
const pin = cores >= 8 && canPin(v['no-pin']);
const codec = v.codec === 'uws' ? 'uws' : 'strict';
/** Cores beyond one per worker that the proxy under test gets (its main thread, V8's
 *  helper threads and libuv's pool otherwise share the workers' cores). */
const extraCores = Number(v['extra-cores']);
const wrkCores = pin ? span(upstreamWorkers, wrkThreads) : null;

/** 1, 2, 4, … up to the cores left for the proxy (at least 1 and 2). */
function defaultCounts(left: number): string {
  const out = [1, 2];
  for (let w = 4; w <= left; w *= 2) out.push(w);
  return out.join(',');
}

function span(first: number, n: number): string {
  return n === 1 ? String(first) : `${first}-${first + n - 1}`;
}

interface Sample {
  readonly rps: number;
  readonly errors: number;
  /** The target's CPU over the run, in cores (CPU seconds ÷ wall seconds). */
  readonly cpuCores: number | null;
  readonly wrkCpuPct: number | null;
}

interface Row {
  readonly workers: number;
  readonly proxyCores: string;
  readonly direct: Sample[];
  readonly remora: Sample[];
  readonly nginx: Sample[];
  readonly remoraRssMb: number | null;
}

const HZ = clockTicksPerSecond();

function treeTotal(pid: number): number {
  let sum = 0;
  for (const t of processTreeTicks(pid).values()) sum += t;
  return sum;
}

async function drive(port: number, cpuPid: number): Promise<Sample> {
  const before = treeTotal(cpuPid);
  const r = await runWrk({ port, seconds, connections, threads: wrkThreads, cores: wrkCores });
  const used = (treeTotal(cpuPid) - before) / HZ;
  return { rps: r.rps, errors: r.errors, cpuCores: r.wallS > 0 ? round(used / r.wallS, 2) : null, wrkCpuPct: r.cpuPct };
}

function nginxUpstreamConfig(dir: string, port: number, workers: number): string {
  return (
    `worker_processes ${workers};\ndaemon off;\npid ${dir}/up.pid;\nerror_log ${dir}/up-error.log;\n` +
    `events { worker_connections 8192; }\nhttp {\n  access_log off;\n  keepalive_requests 10000000;\n` +
    `  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};\n` +
    `  server { listen 127.0.0.1:${port}; location / { default_type text/plain; return 200 '${'x'.repeat(100)}'; } }\n}\n`
  );
}

const med = (xs: readonly Sample[], f: (s: Sample) => number | null): number => median(xs.map(f).filter((x): x is number => x !== null));

async function main(): Promise<void> {
  for (const bin of ['nginx', 'wrk']) if (!hasBinary(bin)) throw new Error(`${bin} is not installed: the scaling benchmark needs it (apt-get install ${bin})`);
  const when = new Date().toISOString();
  const tmp = mkdtempSync(join(os.tmpdir(), 'remora-scaling-'));
  const procs = new Processes(pin);
  cleanup = () => {
    procs.stopAll();
    rmSync(tmp, { recursive: true, force: true });
  };
  const upPort = await freePort();
  writeFileSync(join(tmp, 'upstream.conf'), nginxUpstreamConfig(tmp, upPort, upstreamWorkers));
  const up = procs.start(pin ? span(0, upstreamWorkers) : null, 'nginx', ['-c', join(tmp, 'upstream.conf'), '-p', tmp]);
  await waitPort(upPort);
  log(`scaling: ${MACHINE}; upstream nginx ×${upstreamWorkers}, wrk ${wrkThreads} threads ${connections} connections, workers ${workerCounts.join(',')}, ${pin ? 'pinned' : 'unpinned'}`);
  const rows: Row[] = [];
  for (const w of workerCounts) {
    const where = pin && proxyFirstCore + w + extraCores <= cores ? span(proxyFirstCore, w + extraCores) : null;
    const dir = join(tmp, `w${w}`);
    mkdirSync(dir);
    const remora = await startRemora(procs, where, writeConfig(dir, 'remora', benchRemoraConfig({ ...ALL_OFF, stats: true, codec }, upPort, w)));
    const nginx = await startPeer(procs, where, 'nginx', upPort, w, dir);
    const targets = [
      { name: 'direct' as const, port: upPort, pid: up.pid! },
      { name: 'remora' as const, port: remora.listeners.bench, pid: remora.pid },
      { name: 'nginx' as const, port: nginx.port, pid: nginx.pid! },
    ];
    // Warm-up (not recorded): the JIT and every connection pool, before the first round.
    for (const t of targets.slice(1)) await runWrk({ port: t.port, seconds: 2, connections, threads: wrkThreads, cores: wrkCores });
    const row: Row = { workers: w, proxyCores: where ?? 'unpinned', direct: [], remora: [], nginx: [], remoraRssMb: null };
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < targets.length; i++) {
        const t = targets[(i + r) % targets.length];
        await sleep(300);
        const s = await drive(t.port, t.pid);
        row[t.name].push(s);
        log(`w=${w} round ${r + 1} ${t.name}: ${s.rps} req/s, ${s.cpuCores} cores, errors ${s.errors}`);
      }
    }
    rows.push({ ...row, remoraRssMb: rssMb(remora.pid) });
    await stopPid(remora.pid);
    await stopPid(nginx.pid!);
  }
  const s1 = rows.find((r) => r.workers === 1);
  const one = s1 !== undefined ? med(s1.remora, (s) => s.rps) : NaN;
  const oneNginx = s1 !== undefined ? med(s1.nginx, (s) => s.rps) : NaN;
  const table = rows.map((r) => {
    const d = med(r.direct, (s) => s.rps);
    const rem = med(r.remora, (s) => s.rps);
    const ngx = med(r.nginx, (s) => s.rps);
    const remCpu = med(r.remora, (s) => s.cpuCores);
    const ngxCpu = med(r.nginx, (s) => s.cpuCores);
    return {
      workers: r.workers,
      proxyCores: r.proxyCores,
      direct: d,
      remora: rem,
      nginx: ngx,
      remoraVsNginx: round(rem / ngx, 2),
      remoraEfficiency: round(rem / (r.workers * one), 2),
      nginxEfficiency: round(ngx / (r.workers * oneNginx), 2),
      remoraBusy: round(remCpu / (r.workers + extraCores), 2),
      remoraCpuCores: round(remCpu, 2),
      nginxCpuCores: round(ngxCpu, 2),
      remoraPerCore: Math.round(rem / remCpu),
      nginxPerCore: Math.round(ngx / ngxCpu),
      generatorBound: [...(d < 1.5 * rem ? ['Remora'] : []), ...(d < 1.5 * ngx ? ['nginx'] : [])],
      errors: [...r.direct, ...r.remora, ...r.nginx].reduce((n, s) => n + s.errors, 0),
      wrkCpuPct: med([...r.remora, ...r.nginx], (s) => s.wrkCpuPct),
      remoraRssMb: r.remoraRssMb,
      rounds: { direct: r.direct, remora: r.remora, nginx: r.nginx },
    };
  });
  const lines = [
    `# Scaling: Remora and nginx with 1–${Math.max(...workerCounts)} workers (${when})`,
    '',
    `Machine: ${MACHINE}. Revision ${revision()}. Command: \`${commandLine('bench:scaling')}\`.`,
    '',
    `Upstream: nginx with ${upstreamWorkers} worker(s) answering 100 B${pin ? ` on cores ${span(0, upstreamWorkers)}` : ''}. Generator: wrk, ${wrkThreads} thread(s), ${connections} keep-alive connections, ${seconds} s per run${pin ? `, on cores ${span(upstreamWorkers, wrkThreads)}` : ''}. ${rounds} round(s), direct/Remora/nginx interleaved, medians. Remora: stats on, ${codec} codec, otherwise defaults; nginx: as many worker processes, keep-alive both sides. Each proxy gets ${extraCores > 0 ? `its workers' cores plus ${extraCores}` : 'one core per worker'}.`,
    '',
    '| workers | proxy cores | direct req/s | Remora req/s | nginx req/s | Remora/nginx | Remora scaling | nginx scaling | Remora CPU (cores) | Remora busy | nginx CPU (cores) | Remora req/s per CPU-s | nginx req/s per CPU-s | Remora RSS MB | note |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...table.map(
      (t) =>
        `| ${t.workers} | ${t.proxyCores} | ${t.direct} | ${t.remora} | ${t.nginx} | ${t.remoraVsNginx} | ${t.remoraEfficiency} | ${t.nginxEfficiency} | ${t.remoraCpuCores} | ${t.remoraBusy} | ${t.nginxCpuCores} | ${t.remoraPerCore} | ${t.nginxPerCore} | ${t.remoraRssMb ?? '-'} | ${t.generatorBound.length > 0 ? `${t.generatorBound.join(' and ')} generator-bound (direct < 1.5× the proxied rate)` : ''}${t.errors > 0 ? ` ${t.errors} errors` : ''} |`,
    ),
    '',
    'Scaling = req/s ÷ (workers × the same target’s 1-worker req/s). Busy = Remora’s CPU ÷ the cores it was given (its workers’ plus --extra-cores). CPU = the target’s process tree’s user+system time over the run ÷ its wall time.',
  ];
  for (const f of writeResults('scaling', when, { machine: MACHINE, cores, pin, upstreamWorkers, wrkThreads, connections, seconds, rounds, rows: table }, lines, v.out)) log(`wrote ${f}`);
}

let cleanup = (): void => {};
runMain(main, () => cleanup());
