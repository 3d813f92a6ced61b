// wrk, the native closed-loop generator, for benchmarks where autocannon (a Node.js
// process) would be the limit. `wrkRps`: one thread, 50 connections, its req/s parsed from
// the report, pinned to core 0 with taskset when `pin` is set (the proxy runs on core 1).
// `runWrk`: the same with connections, path, cores and a POST body script chosen by the
// caller, asynchronous (the caller's timers keep running), and wrk's own CPU use: wrk runs
// under `sh`, which prints its cutime + cstime from /proc/<sh>/stat once wrk has exited
// (the exact CPU of the waited-for wrk, Linux only; null elsewhere).

import { spawn, spawnSync } from 'node:child_process';
import { hasBinary, log } from './harness.js';
import { clockTicksPerSecond } from './host-load.js';

/** wrk's req/s for `seconds` on 127.0.0.1:`port``path`; `script` (a wrk Lua file) sets a
 *  POST body. Non-2xx responses and socket errors are logged. */
export function wrkRps(port: number, seconds: number, pin: boolean, script: string | null = null, path = '/'): number {
  const argv = ['-t1', '-c50', `-d${seconds}s`, ...(script !== null ? ['-s', script] : []), `http://127.0.0.1:${port}${path}`];
  const out = pin ? spawnSync('taskset', ['-c', '0', 'wrk', ...argv], { encoding: 'utf8' }) : spawnSync('wrk', argv, { encoding: 'utf8' });
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out.stdout ?? '');
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: .*/.exec(out.stdout ?? '');
  if (errors !== null) log(`wrk on ${port}: ${errors[0]}`);
  return m ? Math.round(Number(m[1])) : 0;
}

/** Whether wrk is on the PATH. */
export function wrkInstalled(): boolean {
  return hasBinary('wrk');
}

/** A wrk Lua script that sends every request as a POST with a `bytes`-byte body. */
export function wrkPostScript(bytes: number): string {
  return [
    'wrk.method = "POST"',
    `wrk.body = string.rep("x", ${Math.max(0, Math.round(bytes))})`,
    'wrk.headers["Content-Type"] = "application/octet-stream"',
    '',
  ].join('\n');
}

export interface WrkReport {
  /** Requests/sec as wrk reports it (rounded); NaN when the report has none. */
  readonly rps: number;
  readonly requests: number;
  /** Non-2xx/3xx responses plus socket errors (connect, read, write, timeout). */
  readonly errors: number;
  /** The error lines, for the log. */
  readonly errorText: string;
}

/** Parses wrk's text report. */
export function parseWrk(stdout: string): WrkReport {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  const requests = /(\d+) requests in /.exec(stdout);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors = (non2xx ? Number(non2xx[1]) : 0) + (socket ? socket.slice(1, 5).reduce((s, x) => s + Number(x), 0) : 0);
  return {
    rps: rps ? Math.round(Number(rps[1])) : NaN,
    requests: requests ? Number(requests[1]) : 0,
    errors,
    errorText: [non2xx?.[0], socket?.[0]].filter((x): x is string => x !== undefined).join('; '),
  };
}

const CPU_MARK = 'remora-wrk-cpu:';

/** cutime + cstime (fields 16 and 17) of a /proc/<pid>/stat line, in clock ticks. */
export function childTicks(stat: string): number | null {
  const close = stat.lastIndexOf(')');
  if (close < 0) return null;
  // After "pid (comm) " the fields start at 3 (state): field n is rest[n - 3].
  const rest = stat.slice(close + 2).trim().split(/\s+/);
  const ticks = Number(rest[13]) + Number(rest[14]);
  return Number.isFinite(ticks) ? ticks : null;
}

export interface WrkOptions {
  readonly port: number;
  /** Default "/"; the suite's upstream answers /payload/<n>/ with n bytes. */
  readonly path?: string;
  readonly seconds: number;
  /** Default 50. */
  readonly connections?: number;
  /** Default 1. */
  readonly threads?: number;
  /** taskset core list for wrk; null: not pinned (it inherits this process's affinity). */
  readonly cores?: number | string | null;
  /** A wrk Lua script file (wrkPostScript for POST bodies); null: GET. */
  readonly script?: string | null;
}

export interface WrkResult extends WrkReport {
  /** wrk's CPU over its run, % of one core (CPU seconds ÷ wall seconds); null where
   *  /proc is not available. */
  readonly cpuPct: number | null;
  readonly wallS: number;
}

/** Runs wrk once; rejects when it does not start or prints no Requests/sec. */
export function runWrk(o: WrkOptions): Promise<WrkResult> {
  const threads = o.threads ?? 1;
  const connections = Math.max(threads, o.connections ?? 50);
  const argv = [`-t${threads}`, `-c${connections}`, `-d${o.seconds}s`, ...(o.script ? ['-s', o.script] : []), `http://127.0.0.1:${o.port}${o.path ?? '/'}`];
  const cmd = o.cores !== null && o.cores !== undefined ? ['taskset', '-c', String(o.cores), 'wrk', ...argv] : ['wrk', ...argv];
  // `sh` runs wrk, waits for it, then prints its own children's CPU (wrk's, exactly).
  const shell = `"$@"; rc=$?; echo "${CPU_MARK} $(cat /proc/$$/stat 2>/dev/null)"; exit $rc`;
  const hz = clockTicksPerSecond();
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('sh', ['-c', shell, 'sh', ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallS = (performance.now() - t0) / 1000;
      const report = parseWrk(stdout);
      if (code !== 0 || !Number.isFinite(report.rps)) {
        reject(new Error(`wrk on port ${o.port} exited ${code}: ${(stderr || stdout).trim().split('\n').slice(-3).join(' | ') || 'no report'}`));
        return;
      }
      const mark = stdout.split('\n').find((l) => l.startsWith(CPU_MARK));
      const ticks = mark !== undefined ? childTicks(mark.slice(CPU_MARK.length).trim()) : null;
      if (report.errors > 0) log(`wrk on ${o.port}: ${report.errorText}`);
      resolve({ ...report, cpuPct: ticks !== null && wallS > 0 ? Math.round(((ticks / hz) / wallS) * 100) : null, wallS });
    });
  });
}
