// Binding one port from every worker thread. Each worker has its own listening socket
// with SO_REUSEPORT, so the kernel spreads connections over the workers and a worker that
// dies closes only its own socket. Node ≥ 22.12 sets SO_REUSEPORT itself (`reusePort`);
// Node 20 cannot, so the socket is made by node-unix-socket (a small N-API addon: socket,
// SO_REUSEADDR + SO_REUSEPORT, bind) and handed to Node with `listen({ fd })`.
//
// SO_REUSEPORT would also let another process of the same user join the port: the main
// thread refuses to start a listener on a port someone else holds (src/main/ports.ts
// probeListenerPorts) before any worker binds it.

import { createRequire } from 'node:module';
import type { Server } from 'node:net';

const [NODE_MAJOR, NODE_MINOR] = process.versions.node.split('.').map(Number);
/** `reusePort` for net servers arrived in Node 22.12 and 23.1. */
export const REUSE_PORT = NODE_MAJOR > 23 || (NODE_MAJOR === 23 && NODE_MINOR >= 1) || (NODE_MAJOR === 22 && NODE_MINOR >= 12);

type ReuseportFd = (port: number, host: string) => number;
let reuseportFd: ReuseportFd | null = null;

function makeReuseportFd(port: number, host: string): number {
  reuseportFd ??= (createRequire(import.meta.url)('node-unix-socket') as { createReuseportFd: ReuseportFd }).createReuseportFd;
  return reuseportFd(port, host === 'localhost' ? '127.0.0.1' : host);
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
    if (REUSE_PORT) {
      server.listen({ host: address, port, reusePort: true } as Parameters<Server['listen']>[0], done);
      return;
    }
    let fd: number;
    try {
      fd = makeReuseportFd(port, address);
    } catch {
      server.off('error', onError);
      resolve(false);
      return;
    }
    server.listen({ fd }, done);
  });
}
