// Test harness for metrics: starts a real Prometheus server (Debian's `prometheus`
// package, installed by .ci/run) that scrapes test targets on 127.0.0.1 every second,
// queries it over its HTTP API, and lints exposition text with `promtool check metrics`.
// Tests that use it should skip when `prometheusInstalled()` is false (a developer
// machine without Prometheus) unless `prometheusRequired()` says CI needs them to run.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/main/ports.js';

export interface ScrapeTarget {
  /** Prometheus job name (the `job` label of every scraped series). */
  job: string;
  /** Port on 127.0.0.1. */
  port: number;
  /** metrics_path; default /metrics. */
  path?: string;
}

/** One element of an instant-vector result; `value` parsed to a number (NaN, ±Inf kept). */
export interface PromSample {
  metric: Record<string, string>;
  value: number;
  /** Evaluation time, seconds since the epoch. */
  timestamp: number;
}

/** One entry of /api/v1/targets `activeTargets`. */
export interface PromTarget {
  labels: Record<string, string>;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
  lastScrape: string;
}

export interface PrometheusProcess {
  /** HTTP port of the Prometheus server on 127.0.0.1. */
  readonly port: number;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Temp dir holding prometheus.yml and the TSDB (removed by stop()). */
  readonly dir: string;
  /** Instant query (/api/v1/query); resolves the vector result (a scalar becomes one sample
   *  with no labels). Rejects with Prometheus' error text on a bad query. */
  query(promql: string): Promise<PromSample[]>;
  /** Polls `query(promql)` until `accept(result)` is true; rejects after `ms` with the last result. */
  waitForQuery(promql: string, accept: (samples: PromSample[]) => boolean, ms?: number): Promise<PromSample[]>;
  /** The active targets as /api/v1/targets reports them. */
  targets(): Promise<PromTarget[]>;
  /** Resolves once every configured target has health "up" (each has been scraped
   *  successfully); rejects after `ms` listing the targets and their last errors.
   *  Prometheus hands new targets to its scrapers about 5 s after start, so this takes
   *  5-7 s: keep `ms` (default 15000) well above that. */
  waitForTargetsUp(ms?: number): Promise<void>;
  /** Everything Prometheus printed so far (stdout + stderr). */
  output(): string;
  /** SIGTERM (SIGKILL after 5 s) by pid, waits for exit, removes the temp dir. */
  stop(): Promise<void>;
}

function onPath(cmd: string): boolean {
  const r = spawnSync(cmd, ['--version'], { stdio: 'ignore', timeout: 10_000 });
  return r.error === undefined && r.status === 0;
}

let installed: boolean | undefined;
/** True when both `prometheus` and `promtool` run (`--version`). Checked once per process. */
export function prometheusInstalled(): boolean {
  installed ??= onPath('prometheus') && onPath('promtool');
  return installed;
}

/** True where the Prometheus tests must run rather than skip (.ci/run sets
 *  REMORA_REQUIRE_PROMETHEUS=1 after installing it). */
export function prometheusRequired(): boolean {
  return process.env.REMORA_REQUIRE_PROMETHEUS === '1';
}

/** Why Prometheus tests are skipped here, for t.plan(0, reason) / { skip: reason }. */
export const PROMETHEUS_SKIP_REASON =
  'prometheus/promtool not installed (Debian: apt-get install --no-install-recommends prometheus; .ci/run installs it in CI)';


function httpGet(port: number, path: string, ms = 5000): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: ms }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET 127.0.0.1:${port}${path} timed out after ${ms} ms`)));
    req.on('error', reject);
  });
}

interface ApiReply<T> {
  status: 'success' | 'error';
  data?: T;
  errorType?: string;
  error?: string;
}

async function api<T>(port: number, path: string): Promise<T> {
  const res = await httpGet(port, path);
  let body: ApiReply<T>;
  try {
    body = JSON.parse(res.text) as ApiReply<T>;
  } catch {
    throw new Error(`prometheus ${path}: HTTP ${res.status}, not JSON: ${res.text.slice(0, 500)}`);
  }
  if (body.status !== 'success' || body.data === undefined) {
    throw new Error(`prometheus ${path}: HTTP ${res.status}, ${body.errorType ?? 'error'}: ${body.error ?? res.text.slice(0, 500)}`);
  }
  return body.data;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** prometheus.yml for `targets`, one job each (job names must be unique). */
export function prometheusConfig(targets: ScrapeTarget[], scrapeIntervalMs = 1000): string {
  const every = `${scrapeIntervalMs}ms`;
  const lines = [
    'global:',
    `  scrape_interval: ${every}`,
    `  scrape_timeout: ${every}`,
    `  evaluation_interval: ${every}`,
    'scrape_configs:',
  ];
  for (const t of targets) {
    lines.push(
      `  - job_name: ${JSON.stringify(t.job)}`,
      `    metrics_path: ${JSON.stringify(t.path ?? '/metrics')}`,
      '    static_configs:',
      `      - targets: [${JSON.stringify(`127.0.0.1:${t.port}`)}]`,
    );
  }
  return lines.join('\n') + '\n';
}

// Prometheus servers still running; killed if the test process exits without stop().
const live = new Set<ChildProcess>();
let exitHook = false;
function killLiveOnExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const c of live) {
      try {
        process.kill(c.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/**
 * Starts Prometheus scraping each target at 127.0.0.1:port (every `scrapeIntervalMs`,
 * default 1000) and resolves once /-/ready answers 200. Call stop() in a teardown.
 */
export async function startPrometheus(
  targets: ScrapeTarget[],
  opts: { scrapeIntervalMs?: number; readyMs?: number } = {},
): Promise<PrometheusProcess> {
  const jobs = new Set(targets.map((t) => t.job));
  if (jobs.size !== targets.length) throw new Error('startPrometheus: job names must be unique');
  const dir = mkdtempSync(join(tmpdir(), 'remora-prom-'));
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, prometheusConfig(targets, opts.scrapeIntervalMs ?? 1000));
  killLiveOnExit();

  // The free port can be taken between our probe and Prometheus' bind: try a few times.
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    try {
      return await launch(dir, configFile, port, targets.map((t) => t.job), opts.readyMs ?? 20_000);
    } catch (err) {
      lastError = err as Error;
      if (!/address already in use/i.test(lastError.message)) break;
    }
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastError!;
}

async function launch(dir: string, configFile: string, port: number, jobs: string[], readyMs: number): Promise<PrometheusProcess> {
  const child = spawn(
    'prometheus',
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.on('error', (err) => {
      spawnError = err;
      resolve();
    });
    child.on('exit', () => resolve());
  });
  const running = (): boolean => spawnError === undefined && child.exitCode === null && child.signalCode === null;
  if (child.pid !== undefined) live.add(child);
  void exited.then(() => live.delete(child));

  const signal = (sig: NodeJS.Signals): void => {
    try {
      if (running()) process.kill(child.pid!, sig);
    } catch {
      // exited in between
    }
  };
  const kill = async (): Promise<void> => {
    if (running()) {
      signal('SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  };

  // Wait for /-/ready (200 once the TSDB is open and the web handler serves).
  const deadline = Date.now() + readyMs;
  for (;;) {
    if (!running()) {
      await exited;
      const why = spawnError ? String(spawnError) : `exit code ${child.exitCode}, signal ${child.signalCode}`;
      throw new Error(`prometheus did not start (${why}); output:\n${out}`);
    }
    const res = await httpGet(port, '/-/ready', 1000).catch(() => undefined);
    if (res?.status === 200) break;
    if (Date.now() > deadline) {
      await kill();
      throw new Error(`prometheus not ready on 127.0.0.1:${port} after ${readyMs} ms; output:\n${out}`);
    }
    await sleep(100);
  }

  const query = async (promql: string): Promise<PromSample[]> => {
    const data = await api<{ resultType: string; result: unknown }>(port, `/api/v1/query?query=${encodeURIComponent(promql)}`);
    if (data.resultType === 'vector') {
      return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map((s) => ({
        metric: s.metric,
        value: Number(s.value[1]),
        timestamp: s.value[0],
      }));
    }
    if (data.resultType === 'scalar') {
      const [ts, v] = data.result as [number, string];
      return [{ metric: {}, value: Number(v), timestamp: ts }];
    }
    throw new Error(`prometheus query ${promql}: unexpected result type ${data.resultType}`);
  };

  const targets = async (): Promise<PromTarget[]> =>
    (await api<{ activeTargets: PromTarget[] }>(port, '/api/v1/targets?state=active')).activeTargets;

  return {
    port,
    pid: child.pid!,
    child,
    dir,
    query,
    targets,
    output: () => out,
    async waitForQuery(promql, accept, ms = 15_000) {
      const until = Date.now() + ms;
      let last: PromSample[] = [];
      for (;;) {
        last = await query(promql);
        if (accept(last)) return last;
        if (Date.now() > until) throw new Error(`prometheus query ${promql}: not accepted after ${ms} ms; last result ${JSON.stringify(last)}`);
        await sleep(250);
      }
    },
    async waitForTargetsUp(ms = 15_000) {
      const until = Date.now() + ms;
      let last: PromTarget[] = [];
      for (;;) {
        last = await targets();
        if (last.length === jobs.length && last.every((t) => t.health === 'up')) return;
        if (Date.now() > until) {
          const list = jobs.map((job) => {
            const t = last.find((x) => x.labels.job === job);
            return t ? `${job} ${t.scrapeUrl}: ${t.health}${t.lastError ? ` (${t.lastError})` : ''}` : `${job}: not discovered yet`;
          });
          throw new Error(`prometheus targets not all up after ${ms} ms:\n${list.join('\n')}`);
        }
        await sleep(200);
      }
    },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs `promtool check metrics` with `text` on stdin. Exit 0: valid and lint-clean;
 *  1: the text does not parse; 3: it parses but has lint problems (e.g. a counter without
 *  `_total`, a metric without HELP). `output` is stdout + stderr. */
export function promtoolCheckMetrics(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), output });
    });
    // promtool may exit before reading all of stdin (a parse error early on).
    child.stdin.on('error', () => {});
    child.stdin.end(text);
  });
}
