// xDS propagation: time from a snapshot push on the control plane to the new version
// serving on every worker of a sidecar, and the sidecar's memory per 1,000 endpoints.
//
//   npm run bench:xds -- [--clusters 100] [--endpoints-per-cluster 10] [--pushes 50]
//                        [--change endpoint|route] [--api delta|sotw]
//                        [--warmup-pushes 3] [--workers 2] [--gap-ms 200]
//                        [--memory-endpoints 1000,2000,4000,5000] [--memory-settle-s 2] [--no-memory] [--no-pin]
//
// The reference control plane runs in this process (startControlPlane, 127.0.0.1 port 0,
// an empty temp config dir, no rescans); groups are set with its in-process
// pushSnapshot. Remora (dist, `bin/remora.js run --config <bootstrap>`) gets an xDS
// bootstrap pointing at it (persist_path set, as in a deployment).
//
// Propagation. Group "bench": 1 listener ("main", port 0), `clusters` clusters and
// clusters × endpoints-per-cluster endpoints. Cluster c0 has one endpoint, the real
// upstream (bench/upstream-uws.ts); the others are spread evenly over c1..c(N-1) and
// point at 127.0.0.1 ports nothing needs to listen on (no traffic goes there: no health
// checks). One route per cluster (/svc/c<k>/) and the catch-all "/" → c0, which adds the
// response header `x-version: v<i>`. Push i changes that header to v<i> (RDS) and the
// last endpoint of c1 (EDS); the control plane then pushes CDS, EDS, LDS, RDS. With
// --change endpoint (the default) a push changes one endpoint and nothing else: c0's one
// endpoint moves between two upstreams (bench/upstream-uws.ts answering 100 and 101
// bytes), so traffic tells which it reaches; Remora applies such an update without a new
// config version, and "applied" is every worker reporting a newer endpoints_revision in
// /workers. --api picks the sidecar's xDS variant (xds.api_type; delta by default).
// For each push, t0 is taken just before pushSnapshot (so its translation and encoding
// count), and two pollers run at once until both are done:
//   - traffic: 8 parallel GETs on 8 fresh connections (so the kernel spreads them over
//     the workers), a new round 2 ms after the previous one ends; done at the end of
//     the first round where all 8 answer 200 with x-version: v<i>;
//   - applied: GET /workers on the admin (keep-alive) every 2 ms; done at the first
//     reply in which every worker's `version` is at least the config version that
//     carries v<i> (read from /config_dump once traffic sees v<i>: the push arrives as
//     four xDS responses, and Remora may reload more than once for them).
// Both include the polling granularity (~2 ms plus one poll's round trip). Reported:
// p50/p90/p99/max over the measured pushes (warm-up pushes excluded) and the target
// check (p99 ≤ 100 ms). With 50 pushes the p99 is the slowest push.
//
// Memory. A second Remora (group "mem") starts from 1 cluster with 1 endpoint; each step
// of --memory-endpoints pushes a config with that many endpoints (min(clusters, n)
// clusters), waits until every worker runs it, settles --memory-settle-s (2 s; V8 gives
// idle heap back some seconds later, so 20 s reads what the sidecar keeps) and takes the median of 5
// VmRSS samples (200 ms apart). A step over Remora's endpoint cap (MAX_ENDPOINTS, 65,536)
// is refused by the control plane's validation, and the report says so. MB per 1,000
// endpoints: from 1 to 1,000 endpoints (that step also adds the clusters and routes),
// and the least-squares slope over the accepted steps from 1,000 up (clusters fixed).
//
// Layout as bench/latency.ts: this process (control plane + pollers) and the upstream on
// core 0, Remora (main thread and workers) on core 1; --no-pin leaves it to the kernel.
// Writes bench/results/xds-propagation-<timestamp>.{json,md}; temp files are deleted.

import http from 'node:http';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { startControlPlane, type RunningControlPlane } from '../src/control-plane/server.js';
import {
  MACHINE,
  Processes,
  canPin,
  commandLine,
  httpGet,
  log,
  median,
  percentile,
  pinSelf,
  round,
  rssMb,
  runMain,
  sleep,
  startRemora,
  startUpstream,
  writeConfig,
  writeResults,
  type RemoraProcess,
} from './lib/harness.js';
import { heapMb, parseWorkersReply } from './lib/footprint-report.js';
import { metricSum } from './lib/remora-config.js';

const { values: args } = parseArgs({
  options: {
    clusters: { type: 'string', default: '100' },
    'endpoints-per-cluster': { type: 'string', default: '10' },
    pushes: { type: 'string', default: '50' },
    'warmup-pushes': { type: 'string', default: '3' },
    workers: { type: 'string', default: '2' },
    'gap-ms': { type: 'string', default: '200' },
    'memory-endpoints': { type: 'string', default: '1000,2000,4000,5000' },
    'memory-settle-s': { type: 'string', default: '2' },
    change: { type: 'string', default: 'endpoint' },
    api: { type: 'string', default: 'delta' },
    'no-memory': { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
  },
  strict: true,
});

const clusters = Number(args.clusters);
const perCluster = Number(args['endpoints-per-cluster']);
const endpoints = clusters * perCluster;
const pushes = Number(args.pushes);
const warmupPushes = Number(args['warmup-pushes']);
const workers = Number(args.workers);
const gapMs = Number(args['gap-ms']);
const memorySteps = args['no-memory'] ? [] : args['memory-endpoints'].split(',').map(Number);
const pin = canPin(args['no-pin']);
const change = args.change;
if (change !== 'endpoint' && change !== 'route') throw new Error(`--change endpoint|route (got ${change})`);
const api = args.api;
if (api !== 'delta' && api !== 'sotw') throw new Error(`--api delta|sotw (got ${api})`);
/** --change endpoint: c0's endpoint alternates between upstreams answering these sizes. */
const BODY_SIZES = [100, 101] as const;

const TARGET_P99_MS = 100;
const POLL_MS = 2;
const PROBES_PER_POLL = 8;
const PUSH_TIMEOUT_MS = 15_000;
const SETTLE_MS = Number(args['memory-settle-s']) * 1000;

const procs = new Processes(pin);
const tmp = mkdtempSync(join(os.tmpdir(), 'remora-xds-bench-'));
let controlPlane: RunningControlPlane | null = null;

// ---------------------------------------------------------------------------
// Group configs

interface GroupShape {
  readonly clusters: number;
  readonly endpoints: number;
  /** c0's one endpoint. */
  readonly upstreamPort: number;
  /** The probe route's x-version header value. */
  readonly version: string;
  /** > 0: the last endpoint of c1 gets a port derived from it (an EDS change). */
  readonly vary: number;
}

/** A Remora config (JSON text) for the control plane: listener "main", clusters c0..,
 *  c0 = the upstream alone, the other endpoints spread evenly over c1..c(n-1). */
function groupConfig(s: GroupShape): string {
  if (s.clusters < 1 || s.endpoints < s.clusters || (s.clusters === 1 && s.endpoints > 1)) {
    throw new Error(`cannot lay out ${s.endpoints} endpoints over ${s.clusters} clusters (c0 has 1, every other cluster at least 1)`);
  }
  const out: { name: string; endpoints: { address: string; port: number }[] }[] = [{ name: 'c0', endpoints: [{ address: '127.0.0.1', port: s.upstreamPort }] }];
  const rest = s.endpoints - 1;
  const others = s.clusters - 1;
  let next = 0;
  for (let k = 1; k <= others; k++) {
    const n = Math.floor(rest / others) + (k <= rest % others ? 1 : 0);
    // Ports nothing needs to listen on: no request is ever routed to them.
    out.push({ name: `c${k}`, endpoints: Array.from({ length: n }, () => ({ address: '127.0.0.1', port: 20000 + (next++ % 40000) })) });
  }
  if (s.vary > 0 && out.length > 1) {
    const eps = out[1].endpoints;
    eps[eps.length - 1] = { address: '127.0.0.1', port: 40000 + (s.vary % 20000) };
  }
  const routes: object[] = out.slice(1).map((c) => ({ name: `to-${c.name}`, match: { prefix: `/svc/${c.name}/` }, route: { cluster: c.name } }));
  routes.push({ name: 'probe', match: { prefix: '/' }, route: { cluster: 'c0' }, response_headers_to_add: [{ name: 'x-version', value: s.version }] });
  return JSON.stringify({
    listeners: [{ name: 'main', address: '127.0.0.1', port: 0, virtual_hosts: [{ name: 'all', domains: ['*'], routes }] }],
    clusters: out,
  });
}

function push(group: string, text: string): { version: string } {
  const outcome = controlPlane!.pushSnapshot(group, text);
  if (!outcome.ok) throw new Error(outcome.message);
  if (!outcome.changed) throw new Error(`push to ${group}: content unchanged`);
  return { version: outcome.version };
}

// ---------------------------------------------------------------------------
// HTTP

const adminAgent = new http.Agent({ keepAlive: true, maxSockets: 2 });

async function getJson<T>(port: number, path: string): Promise<T> {
  return JSON.parse((await httpGet(port, path, adminAgent)).body) as T;
}

interface Probe {
  readonly status: number;
  readonly version: string | null;
  /** Body bytes: which upstream answered (--change endpoint). */
  readonly bytes: number;
}

/** One GET on a fresh connection; the x-version header and body size. Errors are status 0. */
function probe(port: number): Promise<Probe> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      const v = res.headers['x-version'];
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, version: typeof v === 'string' ? v : null, bytes }));
      res.on('error', () => resolve({ status: 0, version: null, bytes: 0 }));
    });
    req.on('error', () => resolve({ status: 0, version: null, bytes: 0 }));
  });
}

interface WorkersReply {
  workers: { slot: number; state: string; version: number; endpoints_revision: number }[];
}

async function workerVersions(adminPort: number): Promise<number[]> {
  const r = await getJson<WorkersReply>(adminPort, '/workers');
  return r.workers.map((w) => (w.state === 'listening' ? w.version : -1));
}

/** Per worker: [config version, endpoints revision] (-1s when not listening). */
async function workerRevisions(adminPort: number): Promise<[number, number][]> {
  const r = await getJson<WorkersReply>(adminPort, '/workers');
  return r.workers.map((w) => (w.state === 'listening' ? [w.version, w.endpoints_revision] : [-1, -1]));
}

interface Dump {
  version: number;
  config: { listeners: { virtual_hosts: { routes: { name: string; response_headers_to_add?: { value: string }[] }[] }[] }[]; clusters: { endpoints: unknown[] }[] };
}

function probeHeader(d: Dump): string | null {
  for (const l of d.config.listeners) {
    for (const vh of l.virtual_hosts) for (const r of vh.routes) if (r.name === 'probe') return r.response_headers_to_add?.[0]?.value ?? null;
  }
  return null;
}

// ---------------------------------------------------------------------------
// Propagation

interface PushSample {
  readonly i: number;
  readonly warmup: boolean;
  readonly cp_version: string;
  /** Time inside pushSnapshot (validate, translate, encode, write to the stream). */
  readonly push_call_ms: number;
  /** Every worker reports (via /workers) the config version that carries v<i>. */
  readonly applied_ms: number | null;
  /** The first poll in which all 8 fresh-connection requests answered v<i>. */
  readonly traffic_ms: number | null;
  /** Config versions (reloads) this push caused: final minus the one before. */
  readonly reloads: number | null;
  /** Per reload k (1..reloads): when every worker reported version ≥ before + k. */
  readonly reload_steps_ms: (number | null)[];
  readonly traffic_polls: number;
  /** Polls that saw both the old and the new version (workers apart). */
  readonly mixed_polls: number;
  /** Probe requests that failed or were not 200. */
  readonly probe_errors: number;
  readonly workers_polls: number;
}

/** What the traffic poller saw for one push: when 8/8 fresh-connection probes first all
 *  passed `fresh` (ms from t0, null on timeout), the polls, the polls that saw old and
 *  new mixed, and the probes that failed. */
interface TrafficSeen {
  readonly ms: number | null;
  readonly polls: number;
  readonly mixed: number;
  readonly errors: number;
}

/** Polls 8 probes on fresh connections every POLL_MS until all pass `fresh` or `deadline`. */
async function pollTraffic(port: number, t0: number, deadline: number, fresh: (p: Probe) => boolean): Promise<TrafficSeen> {
  let polls = 0;
  let mixed = 0;
  let errors = 0;
  while (performance.now() < deadline) {
    const replies = await Promise.all(Array.from({ length: PROBES_PER_POLL }, () => probe(port)));
    const end = performance.now();
    polls++;
    errors += replies.filter((r) => r.status !== 200).length;
    const passed = replies.filter((r) => r.status === 200 && fresh(r)).length;
    if (passed === PROBES_PER_POLL) return { ms: end - t0, polls, mixed, errors };
    if (passed > 0) mixed++;
    await sleep(POLL_MS);
  }
  return { ms: null, polls, mixed, errors };
}

/** --change endpoint: push i moves c0 to upstreams[i % 2] and changes nothing else. Done
 *  when 8/8 fresh connections reach it (traffic) and every worker reports a newer config
 *  version or endpoints revision than before the push (applied). */
async function measureEndpointPush(i: number, warmup: boolean, remora: RemoraProcess, port: number, upstreams: readonly number[]): Promise<PushSample> {
  const which = i % 2;
  const text = groupConfig({ clusters, endpoints, upstreamPort: upstreams[which], version: 'v0', vary: 0 });
  const before = await workerRevisions(remora.adminPort);
  const [v0, r0] = before[0];
  if (before.some(([v, r]) => v !== v0 || r !== r0)) throw new Error(`push ${i}: workers not settled before the push (${JSON.stringify(before)})`);
  const t0 = performance.now();
  const { version: cpVersion } = push('bench', text);
  const pushCallMs = performance.now() - t0;
  const deadline = t0 + PUSH_TIMEOUT_MS;
  const polled = pollTraffic(port, t0, deadline, (r) => r.bytes === BODY_SIZES[which]);
  let appliedMs: number | null = null;
  let reloads: number | null = null;
  let workersPolls = 0;
  const applied = (async () => {
    while (performance.now() < deadline) {
      const now = await workerRevisions(remora.adminPort);
      workersPolls++;
      if (now.every(([v, r]) => v > v0 || (v === v0 && r > r0))) {
        appliedMs = performance.now() - t0;
        reloads = Math.min(...now.map(([v]) => v)) - v0;
        return;
      }
      await sleep(POLL_MS);
    }
  })();
  const [seen] = await Promise.all([polled, applied]);
  return {
    i,
    warmup,
    cp_version: cpVersion,
    push_call_ms: round(pushCallMs, 2),
    applied_ms: appliedMs !== null ? round(appliedMs, 1) : null,
    traffic_ms: seen.ms !== null ? round(seen.ms, 1) : null,
    reloads,
    reload_steps_ms: [],
    traffic_polls: seen.polls,
    mixed_polls: seen.mixed,
    probe_errors: seen.errors,
    workers_polls: workersPolls,
  };
}

async function measurePush(i: number, warmup: boolean, remora: RemoraProcess, port: number, upstreamPort: number): Promise<PushSample> {
  const want = `v${i}`;
  const text = groupConfig({ clusters, endpoints, upstreamPort, version: want, vary: i });
  const before = await workerVersions(remora.adminPort);
  const baseline = Math.max(...before);
  if (before.some((v) => v !== baseline)) throw new Error(`push ${i}: workers not settled before the push (${before.join(', ')})`);

  const t0 = performance.now();
  const { version: cpVersion } = push('bench', text);
  const pushCallMs = performance.now() - t0;
  const deadline = t0 + PUSH_TIMEOUT_MS;

  const polled = pollTraffic(port, t0, deadline, (r) => r.version === want);
  let trafficMs: number | null = null;
  const traffic = polled.then((p) => (trafficMs = p.ms));

  // /workers replies: when each arrived and the versions it reported.
  const samples: { t: number; versions: number[] }[] = [];
  let finalVersion: number | null = null;
  let workersPolls = 0;
  const applied = (async () => {
    while (performance.now() < deadline) {
      const versions = await workerVersions(remora.adminPort);
      samples.push({ t: performance.now() - t0, versions });
      workersPolls++;
      if (trafficMs !== null && finalVersion === null) {
        // Traffic sees v<i>: the config carrying it exists; which version is it?
        const d = await getJson<Dump>(remora.adminPort, '/config_dump');
        if (probeHeader(d) !== want) throw new Error(`push ${i}: traffic sees ${want} but /config_dump has ${probeHeader(d)}`);
        finalVersion = d.version;
      }
      if (finalVersion !== null && versions.every((v) => v >= finalVersion!)) return;
      await sleep(POLL_MS);
    }
  })();
  const [seen] = await Promise.all([polled, applied, traffic]);
  const hit = finalVersion === null ? undefined : samples.find((s) => s.versions.every((v) => v >= finalVersion!));
  const steps: (number | null)[] = [];
  for (let k = 1; finalVersion !== null && baseline + k <= finalVersion; k++) {
    const at = samples.find((s) => s.versions.every((v) => v >= baseline + k));
    steps.push(at !== undefined ? round(at.t, 1) : null);
  }
  return {
    i,
    warmup,
    cp_version: cpVersion,
    push_call_ms: round(pushCallMs, 2),
    applied_ms: hit !== undefined ? round(hit.t, 1) : null,
    traffic_ms: trafficMs !== null ? round(trafficMs, 1) : null,
    reloads: finalVersion !== null ? finalVersion - baseline : null,
    reload_steps_ms: steps,
    traffic_polls: seen.polls,
    mixed_polls: seen.mixed,
    probe_errors: seen.errors,
    workers_polls: workersPolls,
  };
}

interface Stats {
  readonly n: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly min: number;
  readonly mean: number;
}

function stats(xs: readonly number[]): Stats | null {
  if (xs.length === 0) return null;
  return {
    n: xs.length,
    p50: round(percentile(xs, 50), 1),
    p90: round(percentile(xs, 90), 1),
    p99: round(percentile(xs, 99), 1),
    max: round(Math.max(...xs), 1),
    min: round(Math.min(...xs), 1),
    mean: round(xs.reduce((a, b) => a + b, 0) / xs.length, 1),
  };
}

function bootstrap(name: string, group: string): string {
  return writeConfig(tmp, name, {
    workers,
    admin: { address: '127.0.0.1', port: 0 },
    xds: {
      servers: [`127.0.0.1:${controlPlane!.listenPort}`],
      node: { id: `bench-${group}`, cluster: group },
      persist_path: join(tmp, `${group}-last-config.json`),
      ...(api === 'delta' ? { api_type: 'delta' } : {}),
    },
  });
}

// ---------------------------------------------------------------------------
// Memory

interface MemoryStep {
  readonly endpoints: number;
  readonly clusters: number;
  readonly refused: string | null;
  readonly rss_mb: number | null;
  readonly rss_samples_mb: number[];
  /** Push to every worker running it (polled every 50 ms). */
  readonly apply_ms: number | null;
  /** Where the RSS is, read after the samples: the main thread's V8 heap (reserved) and
   *  each worker's (used / reserved), from /metrics and /workers. */
  readonly heaps: Heaps | null;
}

interface Heaps {
  readonly main_total_mb: number | null;
  readonly workers_used_mb: (number | null)[];
  readonly workers_total_mb: (number | null)[];
}

async function readHeaps(adminPort: number): Promise<Heaps | null> {
  try {
    const workers = parseWorkersReply((await httpGet(adminPort, '/workers', adminAgent)).body);
    const main = metricSum((await httpGet(adminPort, '/metrics', adminAgent)).body, 'remora_process_heap_bytes');
    return {
      main_total_mb: main > 0 ? heapMb(main) : null,
      workers_used_mb: workers.map((w) => w.usedMb),
      workers_total_mb: workers.map((w) => w.totalMb),
    };
  } catch {
    return null;
  }
}

function heapCell(h: Heaps | null): string {
  if (h === null) return '-';
  const workers = h.workers_used_mb.map((u, k) => `${u ?? '-'}/${h.workers_total_mb[k] ?? '-'}`).join(', ');
  return `${h.main_total_mb ?? '-'} · ${workers}`;
}

/** Waits until /config_dump has `want` as the probe header and every worker runs it. */
async function waitApplied(adminPort: number, want: string, ms = PUSH_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const d = await getJson<Dump>(adminPort, '/config_dump');
    if (probeHeader(d) === want && (await workerVersions(adminPort)).every((v) => v >= d.version)) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${want} on every worker`);
}

async function rssSettled(pid: number): Promise<number[]> {
  await sleep(SETTLE_MS);
  const out: number[] = [];
  for (let k = 0; k < 5; k++) {
    const mb = rssMb(pid);
    if (mb !== null) out.push(mb);
    await sleep(200);
  }
  return out;
}

async function measureMemory(upstreamPort: number): Promise<MemoryStep[]> {
  push('mem', groupConfig({ clusters: 1, endpoints: 1, upstreamPort, version: 'm1', vary: 0 }));
  const remora = await startRemora(procs, 1, bootstrap('remora-mem', 'mem'));
  await waitApplied(remora.adminPort, 'm1');
  const steps: MemoryStep[] = [];
  const first = await rssSettled(remora.pid);
  steps.push({ endpoints: 1, clusters: 1, refused: null, rss_mb: median(first), rss_samples_mb: first, apply_ms: null, heaps: await readHeaps(remora.adminPort) });
  log(`memory: 1 endpoint: ${median(first)} MB`);
  for (const n of memorySteps) {
    const c = Math.min(clusters, n);
    const want = `m${n}`;
    const t0 = performance.now();
    try {
      push('mem', groupConfig({ clusters: c, endpoints: n, upstreamPort, version: want, vary: 0 }));
    } catch (err) {
      const message = err instanceof Error ? err.message.split('\n').join(' ') : String(err);
      log(`memory: ${n} endpoints refused: ${message}`);
      steps.push({ endpoints: n, clusters: c, refused: message, rss_mb: null, rss_samples_mb: [], apply_ms: null, heaps: null });
      continue;
    }
    await waitApplied(remora.adminPort, want);
    const applyMs = round(performance.now() - t0, 0);
    const rss = await rssSettled(remora.pid);
    steps.push({ endpoints: n, clusters: c, refused: null, rss_mb: median(rss), rss_samples_mb: rss, apply_ms: applyMs, heaps: await readHeaps(remora.adminPort) });
    log(`memory: ${n} endpoints over ${c} clusters: ${median(rss)} MB`);
  }
  process.kill(remora.pid, 'SIGINT');
  return steps;
}

/** Least-squares slope of y over x. */
function slope(points: readonly { x: number; y: number }[]): number | null {
  if (points.length < 2) return null;
  const mx = points.reduce((s, p) => s + p.x, 0) / points.length;
  const my = points.reduce((s, p) => s + p.y, 0) / points.length;
  const num = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const den = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  return den === 0 ? null : num / den;
}

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  if (pin) pinSelf(0);
  const groups = join(tmp, 'groups');
  mkdirSync(groups);
  controlPlane = await startControlPlane({ configDir: groups, listen: '127.0.0.1:0', management: '127.0.0.1:0', log: pino({ level: 'silent' }), rescanIntervalMs: 0 });
  const upstreamPort = await startUpstream(procs, 0, BODY_SIZES[0]);
  const upstreams = change === 'endpoint' ? [upstreamPort, await startUpstream(procs, 0, BODY_SIZES[1])] : [upstreamPort];

  // Propagation.
  push('bench', groupConfig({ clusters, endpoints, upstreamPort, version: 'v0', vary: 0 }));
  const remora = await startRemora(procs, 1, bootstrap('remora-bench', 'bench'));
  const port = remora.listeners.main;
  await waitApplied(remora.adminPort, 'v0');
  log(`control plane :${controlPlane.listenPort}; remora pid ${remora.pid} listener :${port} admin :${remora.adminPort}; ${clusters} clusters, ${endpoints} endpoints, ${workers} workers; pinning ${pin ? 'on' : 'off'}`);
  const samples: PushSample[] = [];
  const total = warmupPushes + pushes;
  for (let i = 1; i <= total; i++) {
    const s = change === 'endpoint'
      ? await measureEndpointPush(i, i <= warmupPushes, remora, port, upstreams)
      : await measurePush(i, i <= warmupPushes, remora, port, upstreamPort);
    samples.push(s);
    if (i % 10 === 0 || i === total) log(`push ${i}/${total}: applied ${s.applied_ms} ms, traffic ${s.traffic_ms} ms, ${s.reloads} reloads`);
    await sleep(gapMs + Math.random() * 50);
  }
  const rssAfterPushes = rssMb(remora.pid);
  process.kill(remora.pid, 'SIGINT');

  const measured = samples.filter((s) => !s.warmup);
  const applied = stats(measured.flatMap((s) => (s.applied_ms !== null ? [s.applied_ms] : [])));
  const traffic = stats(measured.flatMap((s) => (s.traffic_ms !== null ? [s.traffic_ms] : [])));
  const pushCall = stats(measured.map((s) => s.push_call_ms));
  // The sidecar's share: every worker applied, minus the control plane's push call.
  const sidecar = stats(measured.flatMap((s) => (s.applied_ms !== null ? [round(s.applied_ms - s.push_call_ms, 1)] : [])));
  // Per reload (one per xDS response), the median time at which every worker had it.
  const maxReloads = Math.max(0, ...measured.map((s) => s.reload_steps_ms.length));
  const stepMedians = Array.from({ length: maxReloads }, (_, k) => {
    const xs = measured.flatMap((s) => (typeof s.reload_steps_ms[k] === 'number' ? [s.reload_steps_ms[k] as number] : []));
    return xs.length > 0 ? round(median(xs), 1) : null;
  });
  const timeouts = measured.filter((s) => s.applied_ms === null || s.traffic_ms === null).length;
  const probeErrors = measured.reduce((n, s) => n + s.probe_errors, 0);
  const mixedPolls = measured.reduce((n, s) => n + s.mixed_polls, 0);
  const reloads = [...new Set(measured.map((s) => s.reloads))].sort((a, b) => (a ?? -1) - (b ?? -1));
  const met = (x: Stats | null): boolean => x !== null && timeouts === 0 && x.p99 <= TARGET_P99_MS;
  const targetMet = met(applied) && met(traffic);

  // Memory.
  const memory = memorySteps.length > 0 ? await measureMemory(upstreamPort) : [];
  const ok = memory.filter((m) => m.rss_mb !== null);
  const one = ok.find((m) => m.endpoints === 1);
  const thousand = ok.find((m) => m.endpoints === 1000);
  const firstThousandMb = one && thousand ? round(((thousand.rss_mb! - one.rss_mb!) / 999) * 1000, 1) : null;
  const slopeFrom1000 = slope(ok.filter((m) => m.endpoints >= 1000).map((m) => ({ x: m.endpoints, y: m.rss_mb! })));
  const perThousandSlope = slopeFrom1000 !== null ? round(slopeFrom1000 * 1000, 1) : null;

  const when = new Date().toISOString();
  const command = commandLine('bench:xds');
  const result = {
    when,
    command,
    machine: MACHINE,
    pinned: pin,
    clusters,
    endpoints_per_cluster: perCluster,
    endpoints,
    routes: clusters,
    workers,
    change,
    api,
    pushes,
    warmup_pushes: warmupPushes,
    gap_ms: gapMs,
    poll_ms: POLL_MS,
    probes_per_poll: PROBES_PER_POLL,
    target_p99_ms: TARGET_P99_MS,
    applied_ms: applied,
    traffic_ms: traffic,
    push_call_ms: pushCall,
    sidecar_ms: sidecar,
    reload_step_medians_ms: stepMedians,
    reloads_per_push: reloads,
    timeouts,
    probe_errors: probeErrors,
    mixed_polls: mixedPolls,
    target_met: targetMet,
    rss_mb_after_pushes: rssAfterPushes,
    memory,
    mb_per_1000_endpoints: { first_1000_with_clusters_and_routes: firstThousandMb, slope_from_1000: perThousandSlope },
    samples,
  };
  const row = (label: string, x: Stats | null): string =>
    x === null ? `| ${label} | - | - | - | - | - | - |` : `| ${label} | ${x.p50} | ${x.p90} | ${x.p99} | ${x.max} | ${x.min} | ${x.mean} |`;
  const verdict = (x: Stats | null): string => (x === null ? 'not measured' : x.p99 <= TARGET_P99_MS ? `**met** (p99 ${x.p99} ms)` : `**missed** (p99 ${x.p99} ms)`);
  const lines = [
    `# xDS propagation — ${when}`,
    '',
    `Command: \`${command}\`  `,
    `Machine: ${MACHINE}; pinning ${pin ? 'this process (control plane + pollers) and the upstream on core 0, Remora on core 1' : 'off'}  `,
    `Control plane in this process; group: 1 listener, ${clusters} clusters, ${endpoints} endpoints, ${clusters} routes. Remora ${workers} workers (xDS bootstrap, persist_path set, ${api === 'delta' ? 'delta xDS' : 'state-of-the-world xDS'}).`,
    change === 'endpoint'
      ? `${pushes} measured pushes after ${warmupPushes} warm-up pushes, ${gapMs}–${gapMs + 50} ms apart; each changes one endpoint and nothing else (c0's endpoint moves between two upstreams; applied = every worker reports a newer endpoints revision in /workers).`
      : `${pushes} measured pushes after ${warmupPushes} warm-up pushes, ${gapMs}–${gapMs + 50} ms apart; each changes the probe route's x-version header (RDS) and one endpoint of c1 (EDS).`,
    `Times from just before pushSnapshot; they **include the polling granularity**: a poll every ${POLL_MS} ms after the previous one ends, so each figure is late by up to ~${POLL_MS} ms plus one poll's round trip.`,
    `With ${pushes} pushes, p99 is the ${percentileRank(pushes)}.`,
    '',
    '| ms | p50 | p90 | p99 | max | min | mean |',
    '|---|---|---|---|---|---|---|',
    row(`every worker applied (admin /workers ${change === 'endpoint' ? 'endpoints revision' : 'version'})`, applied),
    row(`traffic sees it (${PROBES_PER_POLL}/${PROBES_PER_POLL} fresh connections)`, traffic),
    row('of which: the pushSnapshot call (control plane: validate, translate, encode, send)', pushCall),
    row('of which: the sidecar (every worker applied − pushSnapshot call, per push)', sidecar),
    '',
    `Target p99 ≤ ${TARGET_P99_MS} ms: every worker applied ${verdict(applied)}; traffic ${verdict(traffic)} → **${targetMet ? 'met' : 'missed'}**${timeouts > 0 ? ` (${timeouts} pushes timed out)` : ''}.`,
    '',
    `Config versions (reloads) per push: ${reloads.join(', ')} (${change === 'endpoint' ? 'an endpoint-only update is applied without one' : 'the control plane sends each push as four responses: CDS, EDS, LDS, RDS'}). Probe errors: ${probeErrors}. Polls with old and new versions mixed: ${mixedPolls}.`,
    `Median time from t0 until every worker ran the push's k-th reload (over the pushes that had one): ${stepMedians.map((m, k) => `${k + 1}: ${m ?? '-'} ms`).join(', ')}.`,
    '',
    `RSS after the pushes (${endpoints} endpoints): ${rssAfterPushes ?? '-'} MB.`,
    '',
    ...(memory.length > 0
      ? [
          '## Memory per 1,000 endpoints',
          '',
          `A fresh Remora (${workers} workers), config grown by pushes; RSS = median of 5 VmRSS samples 200 ms apart after a ${SETTLE_MS / 1000} s settle.`,
          '',
          'V8 heaps, MB: the main thread\'s reserved heap · each worker\'s used/reserved, read just after the samples.',
          '',
          '| endpoints | clusters | RSS MB | V8 heaps MB | push → all workers, ms | note |',
          '|---|---|---|---|---|---|',
          ...memory.map((m) => `| ${m.endpoints} | ${m.clusters} | ${m.rss_mb ?? '-'} | ${heapCell(m.heaps)} | ${m.apply_ms ?? '-'} | ${m.refused !== null ? `refused: ${m.refused.slice(0, 160)}` : ''} |`),
          '',
          `MB per 1,000 endpoints: ${firstThousandMb ?? '-'} from 1 to 1,000 (with ${Math.min(clusters, 1000)} clusters and routes added); ${perThousandSlope ?? '-'} as the slope over the accepted steps from 1,000 up (clusters fixed).`,
        ]
      : []),
  ];
  writeResults('xds-propagation', when, result, lines);
}

function percentileRank(n: number): string {
  const k = n - (Math.ceil(0.99 * n) - 1);
  return k === 1 ? 'slowest push' : `${k}${k === 2 ? 'nd' : k === 3 ? 'rd' : 'th'} slowest push`;
}

runMain(main, () => {
  procs.stopAll();
  adminAgent.destroy();
  void controlPlane?.stop();
  rmSync(tmp, { recursive: true, force: true });
});
