// Test harness: starts a real Remora process (bin/remora.js, built code) on port 0 with
// a config written to a temp file, finds its ports from the "remora ready" log line,
// and stops it by pid. Also small HTTP helpers that speak raw sockets when needed.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoPath } from './repo-root.js';
import { uwsCodecErrors } from '../../src/uws/uws.js';

export const BIN = repoPath('bin/remora.js');

export interface RemoraProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Listener name → port. */
  readonly ports: Record<string, number>;
  readonly adminPort: number;
  /** The probes server's port, when the config has one. */
  readonly probesPort?: number;
  /** The config file it runs with (rewrite it and send SIGHUP to reload). */
  readonly configFile: string;
  /** Everything the process printed so far (stdout + stderr). */
  output(): string;
  /** Sends SIGTERM and waits for exit; SIGKILL after `ms`. Resolves the exit code/signal. */
  stop(ms?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits for a log line matching `re` (in output from now on or already seen). */
  waitFor(re: RegExp, ms?: number): Promise<string>;
}

/** A config with one listener ("main", port 0) whose single catch-all virtual host
 *  ("all", domains *) has `routes`, and the given `clusters`. */
export function routesConfig(routes: unknown[], clusters: unknown[], opts: { workers?: number } = {}) {
  return {
    workers: opts.workers ?? 1,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [
      {
        name: 'main',
        address: '127.0.0.1',
        port: 0,
        virtual_hosts: [{ name: 'all', domains: ['*'], routes }],
      },
    ],
    clusters,
  };
}

/** A minimal valid config: one listener on port 0 routing everything to `upstreams`. */
export function simpleConfig(upstreams: number[], extra: { workers?: number; lb?: string; route?: Record<string, unknown> } = {}) {
  return routesConfig(
    [{ name: 'all', match: { prefix: '/' }, route: { cluster: 'up', ...(extra.route ?? {}) } }],
    [
      {
        name: 'up',
        lb_policy: extra.lb ?? 'round_robin',
        connect_timeout_ms: 500,
        endpoints: upstreams.map((port) => ({ address: '127.0.0.1', port })),
      },
    ],
    { workers: extra.workers ?? 1 },
  );
}

/** Tests stop Remora with SIGTERM; the default drain delay (5 s, for load balancers)
 *  would add that to every test. A config that says nothing about `drain` gets none. */
export function withTestDrain(config: unknown): unknown {
  if (typeof config !== 'object' || config === null || Array.isArray(config) || 'drain' in config) return config;
  return { ...config, drain: { delay_ms: 0, timeout_ms: 5000 } };
}

/** Starts Remora with `config` (an object, written as JSON). */
export async function startRemora(config: unknown, env: Record<string, string> = {}): Promise<RemoraProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'remora-test-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(withTestDrain(config)));
  const child = spawn(process.execPath, [BIN, 'run', '--config', file], {
    env: { ...process.env, REMORA_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  const onChunk = (chunk: Buffer): void => {
    out += chunk.toString();
    for (const w of waiters.slice()) {
      const m = w.re.exec(out);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m[0]);
      }
    }
  };
  child.stdout!.on('data', onChunk);
  child.stderr!.on('data', onChunk);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, signal });
    });
  });

  const waitFor = (re: RegExp, ms = 10_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const m = re.exec(out);
      if (m) return resolve(m[0]);
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re} in output:\n${out}`)), ms);
      waiters.push({
        re,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`remora exited while waiting for ${re}; output:\n${out}`));
      });
    });

  let readyLine: string;
  try {
    readyLine = await waitFor(/\{[^\n]*"msg":"remora ready"[^\n]*\}/, 15_000);
  } catch (err) {
    // Never leave a half-started Remora behind (it would hold ports and files).
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
    await exited;
    throw err;
  }
  const ready = JSON.parse(readyLine) as { listeners: Record<string, number>; admin: number; probes?: number };
  return {
    pid: child.pid!,
    child,
    ports: ready.listeners,
    adminPort: ready.admin,
    probesPort: ready.probes,
    configFile: file,
    output: () => out,
    waitFor,
    async stop(ms = 8000) {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid!, 'SIGTERM');
        const timer = setTimeout(() => {
          if (child.exitCode === null) process.kill(child.pid!, 'SIGKILL');
        }, ms);
        const result = await exited;
        clearTimeout(timer);
        return result;
      }
      return exited;
    },
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

/** One HTTP request through node:http (keep-alive agent shared by a test file). */
export function request(
  port: number,
  opts: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer; agent?: http.Agent | false } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: opts.headers,
        agent: opts.agent === undefined ? agent : opts.agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode!, headers: res.headers, body, text: body.toString() });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Writes raw bytes on a fresh connection; resolves everything read until the server
 *  closes the connection or `ms` passes (then `closed` is false). */
export function rawExchange(port: number, data: string, ms = 2000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(data));
    let text = '';
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => finish(false), ms);
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
  });
}

/** A node:http upstream for tests; `handler` decides each response. */
export async function startUpstream(
  handler: http.RequestListener,
): Promise<{ port: number; server: http.Server; close(): Promise<void> }> {
  const server = http.createServer(handler);
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    server,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** An upstream that answers each request with its own name (for balancing tests). */
export function namedUpstream(name: string) {
  return startUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': name });
      res.end(name);
    });
  });
}

/** Admin GET/POST returning parsed JSON or text. */
export async function admin(port: number, path: string, method = 'GET'): Promise<Reply> {
  return request(port, { path, method, agent: false });
}

/** Resident set size of a process in bytes, from /proc (Linux). */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Polls `fn` until it returns true; throws naming `what` after `ms`. */
export async function waitUntil(what: string, fn: () => Promise<boolean>, ms = 5000, everyMs = 25): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
}

/** Whether uWebSockets.js has a native build for this runtime (Node 20; not Node 22 or
 *  24), i.e. whether a listener may use `codec: uws` here. */
export const UWS_AVAILABLE = uwsCodecErrors([{ name: 'probe', codec: 'uws' }]).length === 0;
