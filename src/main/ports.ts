// Resolves listeners configured with port 0 to a concrete free port before workers
// start, so every worker binds the same port. (A tiny race with other processes taking
// the port in between is possible; a bind failure then fails startup loudly.)

import net from 'node:net';
import type { Listener } from '../config/types.js';

export async function resolvePorts(listeners: readonly Listener[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const l of listeners) out[l.name] = l.port === 0 ? await freePort(l.address) : l.port;
  return out;
}

/** A port on `address` that was free a moment ago (bind 0, read, close). Also used by
 *  tests and benchmarks to pick ports. */
export function freePort(address = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host: address, port: 0, exclusive: true }, () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      server.close(() => resolve(port));
    });
  });
}
