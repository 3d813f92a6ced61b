// Binding one port from every worker thread. Each worker has its own listening socket
// with SO_REUSEPORT, so the kernel spreads connections over the workers and a worker that
// dies closes only its own socket. Node ≥ 22.12 sets SO_REUSEPORT itself (`reusePort`).
// Node 20 cannot, so the socket is made by node-unix-socket's N-API binary (socket,
// SO_REUSEADDR + SO_REUSEPORT, bind; loaded directly from its platform package, an
// optional dependency published for Linux x64) and handed to Node with `listen({ fd })`.
// Where neither is available, each listener is served by one worker, picked by a hash of
// its name (stable across reloads), and a warning says so once.
//
// SO_REUSEPORT would also let another process of the same user join the port: the main
// thread refuses to start a listener on a port someone else holds (src/main/ports.ts)
// before any worker binds it.

import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Server } from 'node:net';

const [NODE_MAJOR, NODE_MINOR] = process.versions.node.split('.').map(Number);
/** Tests: behave as on a platform where no worker can share a port (on every runtime). */
const SHARING_DISABLED = process.env.REMORA_FAULT_INJECTION === 'no_reuseport';
/** `reusePort` for net servers arrived in Node 22.12 and 23.1. */
const REUSE_PORT =
  !SHARING_DISABLED && (NODE_MAJOR > 23 || (NODE_MAJOR === 23 && NODE_MINOR >= 1) || (NODE_MAJOR === 22 && NODE_MINOR >= 12));

/** node-unix-socket's native export: a bound (not yet listening) SO_REUSEPORT socket. */
type NewReuseportFd = (domain: 'ipv4' | 'ipv6', port: number, ip: string) => number;

const BINARIES = ['node-unix-socket-linux-x64-gnu', 'node-unix-socket-linux-x64-musl'];

let addon: NewReuseportFd | null | undefined;

/** The addon's function, or null where no binary loads (another OS or CPU). */
function reuseportAddon(): NewReuseportFd | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (SHARING_DISABLED) return addon;
  const require = createRequire(import.meta.url);
  for (const name of BINARIES) {
    try {
      const m = require(name) as { socketNewSoReuseportFd?: NewReuseportFd };
      if (typeof m.socketNewSoReuseportFd === 'function') {
        addon = m.socketNewSoReuseportFd;
        break;
      }
    } catch {
      // not installed here, or built for another libc: try the next
    }
  }
  return addon;
}

/** True when every worker can bind the same port (else one worker per listener). */
export function sharedPortsAvailable(): boolean {
  return REUSE_PORT || reuseportAddon() !== null;
}

/** Whether worker `slot` of `workers` serves listener `name`: all of them where ports
 *  can be shared, else the one its name hashes to. */
export function servesListener(name: string, slot: number, workers: number): boolean {
  if (sharedPortsAvailable()) return true;
  return createHash('sha256').update(name).digest().readUInt32BE(0) % workers === slot;
}

/** Listens on address:port beside this process's other workers; resolves false when the
 *  port cannot be bound (in use by a socket without SO_REUSEPORT, or not permitted). */
export function listenShared(server: Server, address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const onError = (): void => resolve(false);
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve(true);
    };
    const host = address === 'localhost' ? '127.0.0.1' : address;
    const newFd = REUSE_PORT ? null : reuseportAddon();
    if (newFd === null) {
      // Node's own bind: SO_REUSEPORT on ≥ 22.12; elsewhere an exclusive bind (this
      // worker is the listener's only one, servesListener).
      server.listen({ host, port, ...(REUSE_PORT ? { reusePort: true } : { exclusive: true }) } as Parameters<Server['listen']>[0], done);
      return;
    }
    let fd: number;
    try {
      fd = newFd(host.includes(':') ? 'ipv6' : 'ipv4', port, host);
    } catch {
      server.off('error', onError);
      resolve(false);
      return;
    }
    server.listen({ fd }, done);
  });
}
