// Micro-benchmark: the upstream HTTP/1.1 client Remora uses (src/upstream pool +
// connection + parser) against undici (Pool, dispatch API with streaming handlers) and
// node:http (keep-alive Agent), each driving the same uWS upstream closed-loop with
// the same concurrency. Rounds are interleaved; medians reported.
//
//   npm run bench:clients -- [--concurrency 32] [--seconds 3] [--rounds 5]
//
// The upstream runs in a child process pinned to core 0; this process to core 1.

import { ClusterResources, EndpointCells, SHARED_LAYOUT } from '../src/shared/shared-state.js';
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { EndpointPool } from '../src/upstream/pool.js';
import { SlabClusterStats, StatsRecorder } from '../src/stats/recorder.js';
import { LAYOUT } from '../src/stats/shapes.js';
import type { UpstreamChannel, UpstreamFailure, UpstreamSink } from '../src/upstream/connection.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const { values: args } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '5' },
  },
  strict: true,
});
const concurrency = Number(args.concurrency);
const ms = Number(args.seconds) * 1000;
const rounds = Number(args.rounds);

type Client = (done: (ok: boolean) => void) => void;

function remoraClient(port: number): Client {
  const shared = new Int32Array(SHARED_LAYOUT.allocate());
  const pool = new EndpointPool(
    { address: '127.0.0.1', port },
    { connectTimeoutMs: 1000, idleTimeoutMs: 60000, maxConnections: concurrency, maxClusterConnections: 1024, maxPending: 1024 },
    new SlabClusterStats(new StatsRecorder(LAYOUT.allocate()), 0),
    new ClusterResources(shared, 0),
    new EndpointCells(shared, 0),
  );
  const head = 'GET / HTTP/1.1\r\nhost: bench\r\n\r\n';
  class Req implements UpstreamSink {
    cancelled = false;
    readonly downstreamHttp2 = false;
    constructor(private readonly done: (ok: boolean) => void) {}
    onConnection(conn: UpstreamChannel): void {
      conn.start(this, head, false, 'none');
    }
    cork(fn: () => void): void {
      fn();
    }
    onHead(): void {}
    onBody(): void {}
    onComplete(): void {
      this.done(true);
    }
    onUpstreamError(_f: UpstreamFailure): void {
      this.done(false);
    }
    onUpstreamDrain(): void {}
    onTrailers(): void {}
    onPoolClosed(): void {
      this.done(false);
    }
  }
  return (done) => {
    pool.acquire(new Req(done));
  };
}

function undiciClient(port: number): Client {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: concurrency, pipelining: 1 });
  return (done) => {
    pool.dispatch(
      { method: 'GET', path: '/', headers: { host: 'bench' } },
      {
        onConnect() {},
        onHeaders() {
          return true;
        },
        onData() {
          return true;
        },
        onComplete() {
          done(true);
        },
        onError() {
          done(false);
        },
      },
    );
  };
}

function nodeHttpClient(port: number): Client {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  return (done) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', agent, headers: { host: 'bench' } }, (res) => {
      res.on('data', () => {});
      res.on('end', () => done(true));
    });
    req.on('error', () => done(false));
    req.end();
  };
}

function drive(client: Client): Promise<number> {
  return new Promise((resolve) => {
    let completed = 0;
    let running = true;
    const start = performance.now();
    const loop = (ok: boolean): void => {
      if (ok) completed++;
      if (running) client(loop);
    };
    for (let i = 0; i < concurrency; i++) client(loop);
    setTimeout(() => {
      running = false;
      resolve(Math.round(completed / ((performance.now() - start) / 1000)));
    }, ms);
  });
}

async function main(): Promise<void> {
  const pin = os.availableParallelism() >= 2 && spawnSync('sh', ['-c', 'command -v taskset']).status === 0;
  const upstreamArgs = [join(ROOT, 'dist/bench/upstream-uws.js'), '100'];
  const upstream = pin
    ? spawn('taskset', ['-c', '0', process.execPath, ...upstreamArgs], { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn(process.execPath, upstreamArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
  if (pin) spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  const port = await new Promise<number>((resolve) => upstream.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  const clients: Record<string, Client> = {
    remora: remoraClient(port),
    undici: undiciClient(port),
    'node:http': nodeHttpClient(port),
  };
  const results: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    for (const [name, client] of Object.entries(clients)) {
      (results[name] ??= []).push(await drive(client));
      await new Promise((res) => setTimeout(res, 200)); // let the last requests settle
    }
  }
  upstream.kill();
  const median = (xs: number[]): number => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
  process.stdout.write(`upstream clients, ${concurrency} concurrent, ${args.seconds}s × ${rounds} rounds, pinning ${pin ? 'on' : 'off'}\n`);
  process.stdout.write('| client | median req/s | min–max |\n|---|---|---|\n');
  for (const [name, xs] of Object.entries(results)) {
    process.stdout.write(`| ${name} | ${median(xs)} | ${Math.min(...xs)}–${Math.max(...xs)} |\n`);
  }
  setTimeout(() => process.exit(0), 100);
}

void main();
