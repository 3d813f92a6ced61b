// Remora's memory footprint against Node's own floor, per worker count: what a bare Node
// process with the same number of listening worker threads holds, what Remora holds at
// start, once idle heaps have shrunk, under load and idle again after it, and the
// difference, split into anonymous and file-backed memory; each worker's V8 heap.
//
//   npm run bench:footprint -- [--workers 1,2,4] [--settle 20] [--load-seconds 10]
//                              [--no-pin] [--out DIR]
//
// Per worker count W:
// 1. Floors: two bare Node processes (`node -e`, no Remora code but uws.js's loader) with
//    W worker threads each, listening on 127.0.0.1:0, one with Node's http server (llhttp:
//    what Remora's default strict codec serves with), one with uWebSockets.js loaded by
//    src/uws/uws.ts loadUws. Both run at once (idle processes do not disturb each other's
//    memory); sampled right after their workers listen and --settle s later.
// 2. Remora in quick mode (`remora run --listen --upstream`, Remora's defaults) with W
//    workers in front of bench/upstream-uws.ts: sampled 1 s after ready ("start"),
//    --settle s after ready ("steady idle"), every 100 ms under --load-seconds of closed
//    loop load (autocannon, 50 connections), and --settle s after the load ("idle after
//    load"); worker heaps from the admin `/workers` at the two idle samples.
// Samples: VmRSS, RssAnon, RssFile, RssShmem from /proc/<pid>/status. V8's memory reducer
// shrinks an idle isolate's heap some seconds after its last activity, so a sample taken
// soon after start reads high: the steady samples are the footprint.
// Layout as the suite's (bench/lib/suite-plan.ts planLayout): generator and upstream on
// core 0, Remora and the floors on core 1 (cores 1..W where there are enough).
// Writes <out>/footprint-<stamp>.{json,md} (out: bench/results).

import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { closedLoop } from './lib/closed-loop.js';
import {
  FLOOR_TEXT,
  checkTargets,
  heapMb,
  parseProcStatus,
  parseWorkerCounts,
  parseWorkersReply,
  runLines,
  spreadOf,
  summaryLines,
  targetLines,
  type FloorKind,
  type FloorRun,
  type MemSample,
  type RemoraRun,
  type WorkerCountRun,
  type WorkerHeap,
} from './lib/footprint-report.js';
import { MACHINE, Processes, ROOT, commandLine, httpGet, log, pinSelf, revision, round, runMain, sleep, startRemoraRun, stopPid, startUpstream, waitForOutput, writeResults } from './lib/harness.js';
import { planLayout, proxyCores } from './lib/suite-plan.js';

const { values: args } = parseArgs({
  options: {
    workers: { type: 'string', default: '1,2,4' },
    settle: { type: 'string', default: '20' },
    'load-seconds': { type: 'string', default: '10' },
    'no-pin': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
  strict: true,
});

const workerCounts = parseWorkerCounts(args.workers!);
const settleS = Number(args.settle);
if (!Number.isFinite(settleS) || settleS < 2) throw new Error(`--settle must be 2 seconds or more (the start sample is taken 1 s after ready), got ${args.settle}`);
const loadSeconds = Number(args['load-seconds']);
if (!Number.isInteger(loadSeconds) || loadSeconds < 1) throw new Error(`--load-seconds must be a whole number of seconds ≥ 1, got ${args['load-seconds']}`);
const outDir = resolve(args.out ?? join(ROOT, 'bench/results'));
const cores = os.availableParallelism();
const layout = planLayout(cores, args['no-pin'] !== true, 'auto');
const procs = new Processes(layout.generator !== null);
const CONNECTIONS = 50;
const SAMPLE_MS = 100;
const UWS_URL = pathToFileURL(join(ROOT, 'dist/src/uws/uws.js')).href;

// ---- /proc ----------------------------------------------------------------------------

function readMem(pid: number): MemSample | null {
  try {
    return parseProcStatus(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return null; // gone
  }
}

/** Whether the uWebSockets.js native addon is mapped into `pid`. */
function uwsMapped(pid: number): boolean {
  try {
    return /\/uws_[^/\s]*\.node$/m.test(readFileSync(`/proc/${pid}/maps`, 'utf8'));
  } catch {
    return false;
  }
}


// ---- the floor ------------------------------------------------------------------------

// Worker threads of the floor process (CommonJS, eval'd): listen, report the port, and
// answer a heap query. uws.js is imported for its loadUws only (it imports core/errors.js).
const FLOOR_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const v8 = require('node:v8');
parentPort.on('message', () => {
  const h = v8.getHeapStatistics();
  parentPort.postMessage({ heap: [h.used_heap_size, h.total_heap_size] });
});
if (workerData.kind === 'uws') {
  import(workerData.uwsUrl).then((m) => {
    const uws = m.loadUws();
    uws.App().any('/*', (res) => { res.end('ok'); }).listen('127.0.0.1', 0, (s) => {
      if (!s) throw new Error('uWS did not listen on 127.0.0.1:0');
      parentPort.postMessage({ port: uws.us_socket_local_port(s) });
    });
  });
} else {
  const server = require('node:http').createServer((req, res) => res.end('ok'));
  server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }));
}`;

// The floor's main thread: argv kind, worker count, uws.js URL. Prints "floor ready" once
// every worker listens; on SIGUSR2 prints "heaps [[used, total], ...]" (bytes, per worker).
const FLOOR_MAIN = `
const { Worker } = require('node:worker_threads');
const [kind, n, uwsUrl] = process.argv.slice(1);
const FLOOR_WORKER = ${JSON.stringify(FLOOR_WORKER)};
const workers = [];
let listening = 0;
let heaps = null;
let answered = 0;
for (let i = 0; i < Number(n); i++) {
  const w = new Worker(FLOOR_WORKER, { eval: true, workerData: { kind, uwsUrl } });
  w.on('error', (err) => { process.stderr.write('floor failed: ' + err.message + '\\n'); process.exit(1); });
  w.on('message', (m) => {
    if (m.port !== undefined && ++listening === workers.length) process.stdout.write('floor ready\\n');
    if (m.heap !== undefined && heaps !== null) {
      heaps[i] = m.heap;
      if (++answered === workers.length) process.stdout.write('heaps ' + JSON.stringify(heaps) + '\\n');
    }
  });
  workers.push(w);
}
process.on('SIGUSR2', () => {
  heaps = workers.map(() => null);
  answered = 0;
  for (const w of workers) w.postMessage('heap');
});
process.on('SIGINT', () => process.exit(0));
`;

interface FloorProcess {
  readonly kind: FloorKind;
  readonly pid: number;
  readonly start: MemSample | null;
  readonly error: string | null;
  readonly heaps: () => Promise<WorkerHeap[]>;
}

async function startFloor(kind: FloorKind, w: number): Promise<FloorProcess> {
  const child = procs.start(proxyCores(layout, w), process.execPath, ['-e', FLOOR_MAIN, kind, String(w), UWS_URL]);
  const pid = child.pid!;
  const heaps = async (): Promise<WorkerHeap[]> => {
    const reply = waitForOutput(child, /^heaps (.*)$/m, 5000);
    process.kill(pid, 'SIGUSR2');
    const pairs = JSON.parse((await reply)[1]) as [number, number][];
    return pairs.map(([used, total], i) => ({ worker: i, usedMb: heapMb(used), totalMb: heapMb(total) }));
  };
  try {
    await waitForOutput(child, /^floor ready$/m, 20000);
  } catch (err) {
    const why = err instanceof Error ? err.message.replace(/\s+/g, ' ').slice(0, 300) : String(err);
    return { kind, pid, start: null, error: why, heaps };
  }
  return { kind, pid, start: readMem(pid), error: null, heaps };
}

/** Both floors at once: their start samples, and --settle s later the steady ones. */
async function measureFloors(w: number): Promise<FloorRun[]> {
  const kinds: FloorKind[] = ['http', 'uws'];
  const floors = await Promise.all(kinds.map((k) => startFloor(k, w)));
  try {
    await sleep(settleS * 1000);
    const steady = floors.map((f) => (f.error === null ? readMem(f.pid) : null));
    const out: FloorRun[] = [];
    for (let i = 0; i < floors.length; i++) {
      const f = floors[i];
      out.push({ kind: f.kind, start: f.start, steady: steady[i], heaps: f.error === null ? await f.heaps() : [], error: f.error });
    }
    return out;
  } finally {
    for (const f of floors) await stopPid(f.pid, 10000);
  }
}

// ---- Remora ---------------------------------------------------------------------------

async function workerHeaps(adminPort: number): Promise<WorkerHeap[]> {
  const reply = await httpGet(adminPort, '/workers');
  if (reply.status !== 200) throw new Error(`GET /workers on the admin port: expected 200, got ${reply.status}: ${reply.body.slice(0, 200)}`);
  return parseWorkersReply(reply.body);
}

async function measureRemora(w: number, upstreamPort: number): Promise<RemoraRun> {
  const runArgs = ['--listen', '127.0.0.1:0', '--upstream', `127.0.0.1:${upstreamPort}`, '--workers', String(w), '--admin', '127.0.0.1:0'];
  const remora = await startRemoraRun(procs, proxyCores(layout, w), runArgs);
  const ready = performance.now();
  const at = (s: number): Promise<void> => sleep(Math.max(0, ready + s * 1000 - performance.now()));
  try {
    await at(1);
    const start = readMem(remora.pid);
    await at(settleS);
    const steadyIdle = readMem(remora.pid);
    const mapped = uwsMapped(remora.pid);
    const heapsIdle = await workerHeaps(remora.adminPort);

    log(`${w} worker(s): Remora under load for ${loadSeconds} s`);
    const samples: MemSample[] = [];
    const timer = setInterval(() => {
      const m = readMem(remora.pid);
      if (m !== null) samples.push(m);
    }, SAMPLE_MS);
    let load;
    try {
      load = await closedLoop({ port: remora.listeners.main, connections: CONNECTIONS, seconds: loadSeconds, workers: layout.autocannonWorkers });
    } finally {
      clearInterval(timer);
    }
    const stopped = performance.now();
    await sleep(Math.max(0, stopped + settleS * 1000 - performance.now()));
    const afterLoad = readMem(remora.pid);
    const heapsAfterLoad = await workerHeaps(remora.adminPort);
    return {
      start,
      steadyIdle,
      load: { spread: spreadOf(samples), rps: round(load.rps), errors: load.errors },
      afterLoad,
      heapsIdle,
      heapsAfterLoad,
      uwsMapped: mapped,
    };
  } finally {
    await stopPid(remora.pid, 10000);
  }
}

// ---- main -----------------------------------------------------------------------------

async function main(): Promise<void> {
  if (layout.generator !== null) pinSelf(layout.generator);
  const when = new Date().toISOString();
  const rev = revision();
  const upstreamPort = await startUpstream(procs, layout.upstream ?? 0, 100);
  const runs: WorkerCountRun[] = [];
  for (const w of workerCounts) {
    log(`${w} worker(s): floors (${Object.values(FLOOR_TEXT).join(', ')}), ${settleS} s`);
    const floors = await measureFloors(w);
    log(`${w} worker(s): Remora idle, ${settleS} s`);
    const remora = await measureRemora(w, upstreamPort);
    runs.push({ workers: w, floors, remora });
  }
  const checks = checkTargets(runs);
  const command = commandLine('bench:footprint');
  const lines = [
    `# Memory footprint — ${when}`,
    '',
    `Command: \`${command}\`  `,
    `Machine: ${MACHINE}; layout: ${layout.text}  `,
    `Remora: ${rev}; quick mode (\`remora run --listen --upstream\`, Remora's defaults), a fresh process per worker count.  `,
    `Memory: VmRSS = RssAnon (heaps, stacks, malloc) + RssFile (mapped files: the node binary, native addons) + RssShmem, from /proc/<pid>/status; the whole process (main thread and every worker thread).  `,
    `Floors: a bare Node process (\`node -e\`) with as many worker threads, each listening on 127.0.0.1:0 with Node's http server (node:http floor) or with uWebSockets.js loaded as Remora loads it (uWS floor); nothing else. "Over the floor" is what Remora adds to Node's own footprint.  `,
    `Timing: the floors are sampled as soon as their workers listen and ${settleS} s later; Remora 1 s after ready, ${settleS} s after ready, every ${SAMPLE_MS} ms under ${loadSeconds} s of load (${CONNECTIONS} connections, closed loop) and ${settleS} s after it. V8 shrinks an idle isolate's heap some seconds after its last activity, so a start sample can read well above the steady one.`,
    '',
    ...targetLines(checks),
    ...summaryLines(runs),
    ...runs.flatMap((r) => runLines(r, settleS, loadSeconds, CONNECTIONS)),
  ];
  const result = {
    when,
    command,
    machine: MACHINE,
    revision: rev,
    layout: layout.text,
    settle_s: settleS,
    load_seconds: loadSeconds,
    connections: CONNECTIONS,
    sample_ms: SAMPLE_MS,
    targets: checks,
    runs,
  };
  const files = writeResults('footprint', when, result, lines, outDir);
  log(`wrote ${files.join(', ')}`);
}

runMain(main, () => procs.stopAll());
