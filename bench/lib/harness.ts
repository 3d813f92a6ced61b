// Shared plumbing for the benchmarks under bench/: CPU pinning, child processes
// (upstream, Remora), ports, RSS, summaries and result files. Same conventions as
// bench/latency.ts: the load generator and the upstream on core 0, the proxy on core 1.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from dist/bench/lib/). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export const MACHINE = `${os.cpus()[0]?.model.trim() ?? 'cpu'} × ${os.availableParallelism()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`;

export function hasBinary(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

/** Whether to pin: not disabled, at least 2 cores, taskset installed. */
export function canPin(disabled: boolean): boolean {
  return !disabled && os.availableParallelism() >= 2 && hasBinary('taskset');
}

/** Pins every thread of this process (autocannon, workers, GC helpers) to `core` (a core
 *  number or a taskset list such as "12-15"); threads started later inherit it. */
export function pinSelf(core: number | string): void {
  spawnSync('taskset', ['-a', '-p', '-c', String(core), String(process.pid)], { stdio: 'ignore' });
}

/** Child processes started by a benchmark, optionally pinned, all stopped at the end. */
export class Processes {
  private readonly children: ChildProcess[] = [];

  constructor(readonly pin: boolean) {}

  /** `cores`: a core number or a taskset list ("1-3"); null runs it unpinned. */
  start(cores: number | string | null, cmd: string, argv: string[]): ChildProcess {
    const [c, a]: [string, string[]] = this.pin && cores !== null ? ['taskset', ['-c', String(cores), cmd, ...argv]] : [cmd, argv];
    const child = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    return child;
  }

  stopAll(): void {
    for (const c of this.children) {
      if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) continue;
      try {
        // SIGINT: Remora drains without the 5 s drain delay SIGTERM waits for.
        process.kill(c.pid, 'SIGINT');
      } catch {
        // already gone
      }
    }
  }
}

/** Resolves with the first match of `re` in the child's stdout+stderr; rejects if the
 *  child exits first or `ms` pass. Output after the match is drained and dropped. */
export function waitForOutput(child: ChildProcess, re: RegExp, ms = 20000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    const finish = (err: Error | null, m?: RegExpExecArray): void => {
      clearTimeout(timer);
      child.stdout!.off('data', on);
      child.stderr!.off('data', on);
      child.off('exit', onExit);
      child.stdout!.resume();
      child.stderr!.resume();
      if (err) reject(err);
      else resolve(m!);
    };
    const on = (d: Buffer): void => {
      out += d.toString();
      const m = re.exec(out);
      if (m) finish(null, m);
    };
    const onExit = (code: number | null): void => finish(new Error(`exited (${code}) before ${re}: ${out}`));
    const timer = setTimeout(() => finish(new Error(`timeout waiting for ${re}: ${out}`)), ms);
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.on('exit', onExit);
  });
}

/** Starts bench/upstream-uws.ts (fixed `size`-byte body) and returns its port. */
export async function startUpstream(procs: Processes, core: number, size = 100): Promise<number> {
  return (await startPortScript(procs, core, 'upstream-uws', [String(size)])).port;
}

/** Starts `dist/bench/<script>.js`, a Node script that prints the port it bound as its
 *  first line of output, on `core`; resolves once it has. */
export async function startPortScript(procs: Processes, core: number | string | null, script: string, args: readonly string[] = []): Promise<{ port: number; pid: number | undefined }> {
  const child = procs.start(core, process.execPath, [join(ROOT, `dist/bench/${script}.js`), ...args]);
  return { port: Number((await waitForOutput(child, /^(\d+)\n/m))[1]), pid: child.pid };
}

export interface RemoraProcess {
  readonly pid: number;
  readonly adminPort: number;
  /** Bound port per listener name. */
  readonly listeners: Readonly<Record<string, number>>;
}

interface ReadyLine {
  admin: number;
  listeners: Record<string, number>;
}

/** The Node flags the image starts Remora with (deploy/Dockerfile's ENTRYPOINT): the
 *  main thread's young generation capped. Benchmarks start it the same way. */
export const REMORA_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

/** Starts `bin/remora.js run --config <file> [extra]` and waits for "remora ready"; on
 *  this process's Node unless `node` names another binary. */
export async function startRemora(
  procs: Processes,
  core: number | string | null,
  configFile: string,
  extra: string[] = [],
  node: string = process.execPath,
): Promise<RemoraProcess> {
  return startRemoraRun(procs, core, ['--config', configFile, ...extra], [], node);
}

/** Starts `node REMORA_NODE_FLAGS [nodeFlags] bin/remora.js run [runArgs]` (a config
 *  file, or quick mode's --listen/--upstream) and waits for "remora ready". `nodeFlags` go
 *  to Node itself (--cpu-prof, …); worker threads inherit them. */
export async function startRemoraRun(
  procs: Processes,
  core: number | string | null,
  runArgs: readonly string[],
  nodeFlags: readonly string[] = [],
  node: string = process.execPath,
): Promise<RemoraProcess> {
  const child = procs.start(core, node, [...REMORA_NODE_FLAGS, ...nodeFlags, join(ROOT, 'bin/remora.js'), 'run', ...runArgs]);
  const m = await waitForOutput(child, /^.*"msg":"remora ready".*$/m);
  const ready = JSON.parse(m[0]) as ReadyLine;
  return { pid: child.pid!, adminPort: ready.admin, listeners: ready.listeners };
}

/** Writes `config` as JSON (Remora reads .json configs) and returns the path. */
export function writeConfig(dir: string, name: string, config: object): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** The commit measured, and whether src/ or workers/ differed from it (uncommitted work
 *  is what dist/ was built from). */
export function revision(): string {
  // A copy on another host names the commit it was made from in REMORA_REVISION (its own
  // git metadata, if any, may be older than the files).
  if (process.env.REMORA_REVISION !== undefined) return `${process.env.REMORA_REVISION} (from REMORA_REVISION)`;
  const git = (...a: string[]): string => spawnSync('git', ['-C', ROOT, ...a], { encoding: 'utf8' }).stdout?.trim() ?? '';
  const head = git('rev-parse', '--short', 'HEAD');
  if (head === '') return 'unknown (no git)';
  const dirty = git('status', '--porcelain', '--', 'src', 'workers', 'bin');
  return dirty === '' ? head : `${head} + uncommitted changes in src/workers/bin`;
}

/** Resident set size of `pid` in MB (one decimal), or null once it is gone. */
export function rssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? round(Number(m[1]) / 1024, 1) : null;
  } catch {
    return null;
  }
}

/** Samples a process's VmRSS (MB) every `everyMs` from /proc until stopped. */
export class RssSampler {
  readonly samples: { readonly t: number; readonly mb: number }[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly t0 = performance.now();

  constructor(
    readonly pid: number,
    everyMs = 100,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  sample(): void {
    const mb = rssMb(this.pid);
    if (mb !== null) this.samples.push({ t: round((performance.now() - this.t0) / 1000, 2), mb });
  }

  /** Stops sampling (one last sample) and returns the values in MB. */
  stop(): number[] {
    clearInterval(this.timer);
    this.sample();
    return this.samples.map((s) => s.mb);
  }
}

export interface HttpReply {
  readonly status: number;
  readonly body: string;
}

/** GET over `agent` (false: a fresh connection; default: Node's global agent). */
export function httpGet(port: number, path: string, agent?: http.Agent | false): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Sends `signal` (SIGINT: Remora drains without SIGTERM's delay, and every thread exits
 *  normally) and waits up to `ms` for the process to be gone; then SIGKILL. True when it
 *  exited by itself (false: killed, or it was already gone when signalled → true). */
export async function stopPid(pid: number, ms = 5000, signal: NodeJS.Signals = 'SIGINT'): Promise<boolean> {
  try {
    process.kill(pid, signal);
  } catch {
    return true; // already gone
  }
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await sleep(50);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return true; // exited just now
  }
  return false;
}

export function round(x: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Nearest-rank quantile (q in 0..1) of ascending values. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  return sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))];
}

/** Nearest-rank percentile (p in 0..100) of `xs`, in any order. */
export function percentile(xs: readonly number[], p: number): number {
  return quantileSorted(xs.slice().sort((a, b) => a - b), p / 100);
}

export function median(xs: readonly number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export function spread(xs: readonly number[], digits = 2): Spread {
  return { median: round(median(xs), digits), min: round(Math.min(...xs), digits), max: round(Math.max(...xs), digits) };
}

/** Per-round ratios of interleaved runs whose order alternates each round, taken in
 *  pairs (rounds 1 and 2, 3 and 4, …): the geometric mean of each pair, in which each
 *  side ran first once, cancels what running first or second does to a figure; the
 *  median (min–max) of those. An odd last round is left out. */
export function pairedSpread(ratios: readonly number[], digits = 3): Spread | null {
  const pairs: number[] = [];
  for (let i = 0; i + 1 < ratios.length; i += 2) pairs.push(Math.sqrt(ratios[i] * ratios[i + 1]));
  return pairs.length === 0 ? null : spread(pairs, digits);
}

/** "median (min–max)" for a markdown cell. */
export function showSpread(s: Spread): string {
  return `${s.median} (${s.min}–${s.max})`;
}

/** The npm command that ran this benchmark, with its arguments. */
export function commandLine(script: string): string {
  return `npm run ${script} -- ${process.argv.slice(2).join(' ')}`.replace(/ -- $/, '').trim();
}

/** The file-name stamp for an ISO time: 2026-11-27T06-05-01-676Z. */
export function stampOf(when: string): string {
  return when.replace(/[:.]/g, '-');
}

/** Writes <dir>/<name>-<stamp>.{json,md} (dir: bench/results), prints the markdown,
 *  returns the paths. */
export function writeResults(name: string, when: string, result: object, lines: readonly string[], dir = join(ROOT, 'bench/results')): string[] {
  mkdirSync(dir, { recursive: true });
  const stamp = stampOf(when);
  const json = join(dir, `${name}-${stamp}.json`);
  const md = join(dir, `${name}-${stamp}.md`);
  writeFileSync(json, JSON.stringify(result, null, 2) + '\n');
  writeFileSync(md, lines.join('\n') + '\n');
  process.stdout.write(lines.join('\n') + '\n');
  return [json, md];
}

/** Runs `main`, reports a failure, always runs `cleanup`, then exits. */
export function runMain(main: () => Promise<void>, cleanup: () => void): void {
  main()
    .catch((err: unknown) => {
      process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    })
    .finally(() => {
      cleanup();
      setTimeout(() => process.exit(), 500).unref();
    });
}

export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}
