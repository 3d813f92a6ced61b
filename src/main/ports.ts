// Resolves listeners configured with port 0 to a concrete free port before workers
// start, so every worker binds the same port. The port is picked below the kernel's
// ephemeral range, where outgoing connections cannot take it between the pick and the
// workers' bind (on a busy host they would, now and then); a race with another process
// binding it on purpose remains possible, and a bind failure then fails startup loudly.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type { ConfigError, ConfigSnapshot, Listener } from '../config/types.js';

export async function resolvePorts(listeners: readonly Listener[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const l of listeners) out[l.name] = l.port === 0 ? await freePort(l.address) : l.port;
  return out;
}

/** Where free ports are looked for: from 20000 up to the first ephemeral port (Linux's
 *  ip_local_port_range, 32768 by default); null where that leaves too little room. */
const PICK_RANGE: readonly [number, number] | null = (() => {
  let low = 32768;
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    // not Linux: assume the default range
  }
  return low - 20000 >= 1000 ? [20000, low - 1] : null;
})();

/** A port on `address` that was free a moment ago (bound, then closed): one picked at
 *  random below the ephemeral range (a few tries), else whatever the kernel gives for
 *  port 0. Also used by tests and benchmarks to pick ports. */
export async function freePort(address = '127.0.0.1'): Promise<number> {
  if (PICK_RANGE !== null) {
    const [from, to] = PICK_RANGE;
    for (let i = 0; i < 20; i++) {
      const port = await tryBind(address, from + Math.floor(Math.random() * (to - from + 1)));
      if (port !== null) return port;
    }
  }
  const port = await tryBind(address, 0);
  if (port === null) throw new Error(`no free port on ${address}`);
  return port;
}

/** Binds `port` (0: any) exclusively and closes; the port bound, or null when it was taken. */
function tryBind(address: string, port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(null));
    server.listen({ host: address, port, exclusive: true }, () => {
      const addr = server.address();
      const bound = typeof addr === 'object' && addr !== null ? addr.port : 0;
      server.close(() => resolve(bound));
    });
  });
}

/** Listeners whose port another socket already holds (another process, or anything bound
 *  without SO_REUSEPORT), by config path. Checked before workers bind: their sockets use
 *  SO_REUSEPORT, which would otherwise let them share a port silently with another
 *  process of the same user (a second Remora, say). Ports this process holds for
 *  listeners in `held` (heldPorts) are not probed. */
export async function busyListenerPorts(listeners: readonly Listener[], held: ReadonlySet<string>): Promise<ConfigError[]> {
  const errors: ConfigError[] = [];
  for (let i = 0; i < listeners.length; i++) {
    const l = listeners[i];
    if (!needsProbe(l, held)) continue;
    const err = await probe(l.address, l.port);
    if (err !== null) errors.push({ path: `listeners[${i}].port`, message: `listener ${l.name} cannot bind ${l.address}:${l.port}: ${err}` });
  }
  return errors;
}

/** The `address|port` pairs a running snapshot's listeners hold (none before the first). */
export function heldPorts(snapshot: Pick<ConfigSnapshot, 'config' | 'boundPorts'> | null): Set<string> {
  const held = new Set<string>();
  for (const l of snapshot?.config.listeners ?? []) held.add(`${l.address}|${snapshot!.boundPorts[l.name]}`);
  return held;
}

/** A listener on a fixed port this process does not hold yet. */
function needsProbe(l: Listener, held: ReadonlySet<string>): boolean {
  return l.port !== 0 && !held.has(`${l.address}|${l.port}`);
}

/** Null when address:port can be bound exclusively right now, else why not. */
function probe(address: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      resolve(err.code === 'EADDRINUSE' ? 'the port is in use by another socket (another process?)' : `${err.code ?? ''} ${err.message}`.trim());
    });
    server.listen({ host: address, port, exclusive: true }, () => server.close(() => resolve(null)));
  });
}

/** The same check as busyListenerPorts, synchronous, for the xDS client's accept-or-NACK
 *  decision (which cannot wait): each address:port not in `held` is probed by a short
 *  child process that tries an exclusive bind. Runs only for listeners that move to a
 *  port this process does not hold, so an update that keeps its ports costs nothing. */
export function busyListenerPortsSync(listeners: readonly Listener[], held: ReadonlySet<string>): string[] {
  const busy: string[] = [];
  for (const l of listeners) {
    if (!needsProbe(l, held)) continue;
    const probeScript =
      "const s=require('net').createServer();s.once('error',e=>{process.stdout.write(String(e.code));process.exit(1)});" +
      's.listen({host:process.argv[1],port:Number(process.argv[2]),exclusive:true},()=>s.close(()=>process.exit(0)))';
    const r = spawnSync(process.execPath, ['-e', probeScript, l.address, String(l.port)], { encoding: 'utf8', timeout: 5000 });
    if (r.status !== 0) busy.push(`Listener "${l.name}" port: cannot bind ${l.address}:${l.port} (${r.stdout || 'probe failed'}: in use by another socket?)`);
  }
  return busy;
}
