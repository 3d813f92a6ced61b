// TCP keepalive as Remora's config states it (`tcp_keepalive` on a listener or a
// cluster), applied to Node's sockets and servers. The config is read once per listener
// or cluster; nothing here runs per request.

import type { Socket } from 'node:net';
import type { TcpKeepalive } from '../config/types.js';

/** The initial delay Node takes (ms; 0 keeps the operating system's idle time), or null
 *  for keepalive off. */
export function keepaliveDelayMs(k: TcpKeepalive | undefined): number | null {
  if (k === undefined) return null;
  return (k.time_s ?? 0) * 1000;
}

/** Options of a net/http/https server that turn keepalive on for every accepted socket. */
export function keepaliveServerOptions(k: TcpKeepalive | undefined): { keepAlive?: boolean; keepAliveInitialDelay?: number } {
  const delay = keepaliveDelayMs(k);
  return delay === null ? {} : { keepAlive: true, keepAliveInitialDelay: delay };
}

/** Turns keepalive on for `socket` (before or after it connects) when `delayMs` is set. */
export function applyKeepalive(socket: Socket, delayMs: number | null): void {
  if (delayMs !== null) socket.setKeepAlive(true, delayMs);
}
