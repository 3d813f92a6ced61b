// Peers for TCP proxy tests: small net servers (echo with a reply after the client's FIN,
// a server that speaks first and closes, one that records each connection's first bytes),
// a client that sends bytes and collects everything until the proxy closes, finding
// external servers (redis-server, PostgreSQL's initdb/postgres, openssl) on PATH or under
// Debian's /usr/lib/postgresql/<ver>/bin, starting them on free 127.0.0.1 ports in
// temporary directories, and reading /stats as numbers.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/main/ports.js';
import { admin, waitUntil } from './remora.js';

export interface Peer {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: () => number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:0; `onConnection` gets every accepted socket (allowHalfOpen). */
export async function startPeer(onConnection: (s: net.Socket) => void): Promise<Peer> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onConnection(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

/** Echoes every byte (with backpressure); after the client's FIN it sends
 *  `after FIN: <n> bytes` and its own FIN. */
export function startEcho(): Promise<Peer> {
  return startPeer((s) => {
    let n = 0;
    s.on('data', (d: Buffer) => (n += d.length));
    s.pipe(s, { end: false });
    s.on('end', () => s.end(`after FIN: ${n} bytes`));
  });
}

/** Writes `greeting` as soon as a client connects, then closes (FIN) at once. */
export function startGreeter(greeting: string): Promise<Peer> {
  return startPeer((s) => {
    s.end(greeting);
    s.resume();
  });
}

/** Keeps the first `keep` bytes of every connection in `seen` and answers `name`
 *  (then echoes). */
export async function startRecorder(name: string, keep = 256): Promise<Peer & { readonly seen: Buffer[] }> {
  const seen: Buffer[] = [];
  const peer = await startPeer((s) => {
    const index = seen.length;
    seen.push(Buffer.alloc(0));
    s.write(`${name}\n`);
    s.on('data', (d: Buffer) => {
      if (seen[index].length < keep) seen[index] = Buffer.concat([seen[index], d]).subarray(0, keep);
      s.write(d);
    });
    s.on('end', () => s.end());
  });
  return Object.assign(peer, { seen });
}

export interface Exchange {
  /** Everything received. */
  readonly data: Buffer;
  /** The peer's FIN arrived (a clean end) before the socket closed. */
  readonly ended: boolean;
  /** The socket closed (by either side, or reset) before `ms`. */
  readonly closed: boolean;
  /** A reset or other socket error, if any. */
  readonly error: string | null;
  /** Milliseconds from connect to close (or to `ms`). */
  readonly ms: number;
}

/** Connects to 127.0.0.1:`port`, writes `send` (a Buffer or a list written in turn), ends
 *  its side when `end` is true, and collects until the socket closes or `ms` pass. */
export function exchange(port: number, send: Buffer | string | (Buffer | string)[], opts: { end?: boolean; ms?: number; wait?: (got: Buffer) => boolean } = {}): Promise<Exchange> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let ended = false;
    let error: string | null = null;
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ data: Buffer.concat(chunks), ended, closed, error, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false), opts.ms ?? 5000);
    socket.on('connect', () => {
      for (const part of Array.isArray(send) ? send : [send]) socket.write(part);
      if (opts.end !== false) socket.end();
    });
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      if (opts.wait?.(Buffer.concat(chunks))) finish(false);
    });
    socket.on('end', () => {
      ended = true;
      if (!socket.writableEnded) socket.end();
    });
    socket.on('error', (err) => (error = (err as NodeJS.ErrnoException).code ?? err.message));
    socket.on('close', () => finish(true));
  });
}

/** Opens a connection and resolves once `first` bytes arrived (or on connect when 0). */
export function openSocket(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves the bytes read from `s` until `until` says so; rejects after `ms`. */
export function readUntil(s: net.Socket, until: (got: Buffer) => boolean, ms = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      got = Buffer.concat([got, d]);
      if (until(got)) {
        cleanup();
        resolve(got);
      }
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error(`socket closed after ${got.length} bytes (${JSON.stringify(got.toString('latin1').slice(0, 80))})`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${ms} ms with ${got.length} bytes (${JSON.stringify(got.toString('latin1').slice(0, 80))})`));
    }, ms);
    const cleanup = (): void => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('close', onClose);
    };
    s.on('data', onData);
    s.on('close', onClose);
    s.resume();
  });
}

/** Resolves when `s` closes; `ended`: a FIN came first. Rejects after `ms`. */
export function closeOf(s: net.Socket, ms = 5000): Promise<{ ended: boolean; afterMs: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    if (s.destroyed) return resolve({ ended: s.readableEnded, afterMs: 0 });
    let ended = false;
    s.on('end', () => {
      ended = true;
      if (!s.writableEnded) s.end();
    });
    s.on('error', () => {});
    const timer = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms);
    s.once('close', () => {
      clearTimeout(timer);
      resolve({ ended, afterMs: Date.now() - started });
    });
    s.resume();
  });
}

// ---------------------------------------------------------------------------
// Stats

/** /stats?format=json counters and gauges whose names match `filter`, by name. */
export async function statsOf(adminPort: number, filter: string): Promise<Map<string, number>> {
  const r = await admin(adminPort, `/stats?format=json&filter=${encodeURIComponent(filter)}`);
  const json = JSON.parse(r.text) as { stats: { name: string; value: number }[] };
  return new Map(json.stats.map((s) => [s.name, s.value]));
}

/** One stat's value (0 when absent). */
export async function stat(adminPort: number, name: string): Promise<number> {
  const escaped = `^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;
  return (await statsOf(adminPort, escaped)).get(name) ?? 0;
}

// ---------------------------------------------------------------------------
// External programs

/** The path of `cmd` on PATH, or null. */
export function which(cmd: string): string | null {
  for (const d of (process.env.PATH ?? '').split(':')) {
    if (d !== '' && existsSync(join(d, cmd))) return join(d, cmd);
  }
  return null;
}

/** A PostgreSQL server binary: on PATH, else Debian's /usr/lib/postgresql/<newest>/bin. */
export function postgresBin(cmd: string): string | null {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => /^\d+(\.\d+)?$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (existsSync(join(root, v, 'bin', cmd))) return join(root, v, 'bin', cmd);
  }
  return which(cmd);
}

/** `skip` for a test that needs `missing` programs: false when none is missing; a
 *  reason otherwise, or a thrown error when REMORA_REQUIRE_TCP_PEERS=1 (CI installs them). */
export function skipUnless(missing: string[], packages: string): string | false {
  if (missing.length === 0) return false;
  const reason = `${missing.join(', ')} not installed (Debian: apt-get install ${packages})`;
  if (process.env.REMORA_REQUIRE_TCP_PEERS === '1') throw new Error(`REMORA_REQUIRE_TCP_PEERS=1 but ${reason}`);
  return reason;
}

export interface Daemon {
  readonly port: number;
  readonly child: ChildProcess;
  output(): string;
  /** SIGTERM by pid, SIGKILL after `ms`; removes its directory. */
  stop(ms?: number): Promise<void>;
}

function daemon(child: ChildProcess, port: number, dir: string | null): Daemon {
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r();
    else child.once('exit', () => r());
  });
  return {
    port,
    child,
    output: () => out,
    async stop(ms = 5000) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        process.kill(child.pid, 'SIGTERM');
        const timer = setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
        }, ms);
        await exited;
        clearTimeout(timer);
      }
      if (dir !== null) rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** redis-server on a free port, without persistence. */
export async function startRedis(): Promise<Daemon> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'remora-redis-'));
  const child = spawn('redis-server', ['--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--port', String(port), '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const d = daemon(child, port, dir);
  try {
    await waitUntil(`redis-server listening on ${port}`, () => listening(port), 10_000);
  } catch (err) {
    await d.stop();
    throw new Error(`${(err as Error).message}; output: ${d.output()}`);
  }
  return d;
}

/** The user PostgreSQL runs as: refuses root, so `nobody` through runuser when root. */
function asUser(): { wrap: (argv: string[]) => string[]; uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const id = (flag: string): number => Number(spawnSync('id', [flag, 'nobody'], { encoding: 'utf8' }).stdout.trim());
  return { wrap: (argv) => ['runuser', '-u', 'nobody', '--', ...argv], uid: id('-u'), gid: id('-g') };
}

/** A fresh PostgreSQL cluster (initdb, trust auth) served by `postgres` on a free port,
 *  its socket in its own directory. */
export async function startPostgres(): Promise<Daemon & { readonly dir: string }> {
  const initdb = postgresBin('initdb');
  const postgres = postgresBin('postgres');
  if (initdb === null || postgres === null) throw new Error('initdb / postgres not found');
  const dir = mkdtempSync(join(tmpdir(), 'remora-pg-'));
  const data = join(dir, 'data');
  const user = asUser();
  if (user !== null) {
    chmodSync(dir, 0o755);
    chownSync(dir, user.uid, user.gid);
  }
  const run = (argv: string[]): string[] => (user !== null ? user.wrap(argv) : argv);
  const init = run([initdb, '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale', 'C']);
  const r = spawnSync(init[0], init.slice(1), { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${r.status}): ${r.stderr}${r.stdout}`);
  }
  const port = await freePort();
  const argv = run([postgres, '-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'max_connections=40']);
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const d = daemon(child, port, dir);
  try {
    await waitUntil(`postgres listening on ${port}`, async () => /ready to accept connections/.test(d.output()) && listening(port), 30_000, 100);
  } catch (err) {
    await d.stop();
    throw new Error(`${(err as Error).message}; output: ${d.output()}`);
  }
  return Object.assign(d, { dir });
}

/** Runs a program to completion; resolves its exit code and output. Kills it by pid after `ms`. */
export function runProgram(cmd: string, args: string[], opts: { ms?: number; env?: Record<string, string> } = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(opts.env ?? {}) } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      out += `\n(killed after ${opts.ms ?? 60_000} ms)`;
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    }, opts.ms ?? 60_000);
    child.on('error', (err) => (out += `\n${err.message}`));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}
