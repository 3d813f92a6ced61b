// A connection to an endpoint that belongs to one client alone: a tcp_proxy connection, or
// an HTTP/1.1 request upgraded to a tunnel (WebSocket). It is never pooled or reused, but
// it counts like a pooled one: against the cluster's circuit_breakers.max_connections and
// in the upstream_cx_* stats, given back when the socket closes. With the cluster's `tls`
// it is a TLS connection made with the cluster's settings (identity checks, session
// resumption); with `send_proxy_protocol` its first bytes are the client's PROXY header.

import net from 'node:net';
import tls from 'node:tls';
import { reportError } from '../core/report.js';
import type { ClusterResources } from '../shared/shared-state.js';
import type { ClusterStats } from '../stats/recorder.js';
import type { EndpointTls } from './upstream-tls.js';
import { applyKeepalive } from '../core/tcp-keepalive.js';

/** Why a dedicated connection never carried a byte. */
export type DedicatedFailure = 'connect' | 'connect_timeout';

export interface DedicatedEvents {
  /** Connected (and with TLS, handshake done): the socket is the caller's from now on. */
  onUpstreamConnected(socket: net.Socket): void;
  /** The connect failed or timed out; the socket is already destroyed. */
  onUpstreamConnectFailed(failure: DedicatedFailure, detail: string): void;
}

/** What the pool lends a dedicated connection. */
export interface DedicatedOptions {
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs: number;
  readonly tls: EndpointTls | null;
  /** TCP keepalive's initial delay (ms), or null for off. */
  readonly keepaliveMs: number | null;
  readonly stats: ClusterStats;
  readonly resources: ClusterResources;
  /** ALPN protocols to offer over TLS (`['http/1.1']` for an upgrade); [] for none. */
  readonly alpn: readonly string[];
  /** Written before anything else (a PROXY protocol header), or null. */
  readonly preamble: Buffer | null;
}

/** Connections given up by their client before they connected: closing them is not a
 *  connect failure. */
const abandoned = new WeakSet<net.Socket>();

/** Closes a dedicated connection its client no longer wants, before it connected. */
export function abandonDedicated(socket: net.Socket): void {
  abandoned.add(socket);
  socket.destroy();
}

/** Opens the connection; it is already counted (the caller checked max_connections).
 *  Returns the socket so the caller can destroy it before it connects. */
export function openDedicated(o: DedicatedOptions, events: DedicatedEvents): net.Socket {
  let connected = false;
  let settled = false;
  let socket: net.Socket;
  const fail = (failure: DedicatedFailure, detail: string): void => {
    if (settled) return;
    settled = true;
    socket.destroy();
    try {
      events.onUpstreamConnectFailed(failure, detail);
    } catch (err) {
      reportError(err, 'an upstream connect failure');
    }
  };
  const onConnected = (): void => {
    if (settled) return;
    settled = true;
    connected = true;
    socket.setTimeout(0);
    socket.removeListener('timeout', onTimeout);
    socket.removeListener('error', onError);
    try {
      events.onUpstreamConnected(socket);
    } catch (err) {
      reportError(err, 'an upstream connection');
      socket.destroy();
    }
  };
  const onTimeout = (): void => fail('connect_timeout', `no connection within ${o.connectTimeoutMs} ms`);
  const onError = (err: Error): void => fail('connect', err.message);

  if (o.tls === null) {
    socket = net.connect({ host: o.host, port: o.port, noDelay: true, allowHalfOpen: true });
    socket.once('connect', onConnected);
  } else if (o.tls.cluster.error !== null) {
    // The cluster's TLS files could not be loaded: fail like a refused connect.
    socket = new net.Socket();
    const detail = o.tls.cluster.error;
    process.nextTick(() => socket.destroy(new Error(detail)));
  } else {
    const options: tls.ConnectionOptions & { allowHalfOpen: boolean } = { ...o.tls.connectOptions(o.host, o.port), ALPNProtocols: o.tls.alpn(o.alpn), allowHalfOpen: true };
    if (o.preamble !== null) {
      // The PROXY header goes before the ClientHello, on the TCP connection itself.
      const raw = net.connect({ host: o.host, port: o.port, noDelay: true, allowHalfOpen: true });
      raw.write(o.preamble);
      applyKeepalive(raw, o.keepaliveMs);
      options.socket = raw;
      delete options.host;
      delete options.port;
      raw.once('error', (err) => socket.destroy(err));
    }
    const t = tls.connect(options);
    t.setNoDelay(true);
    t.on('session', o.tls.onSession);
    t.once('secureConnect', onConnected);
    socket = t;
  }
  if (o.tls === null || o.preamble === null) applyKeepalive(socket, o.keepaliveMs);
  if (o.tls === null && o.preamble !== null) socket.write(o.preamble);
  o.stats.connectionOpened();
  socket.setTimeout(o.connectTimeoutMs);
  socket.once('timeout', onTimeout);
  socket.on('error', onError);
  socket.once('close', () => {
    o.resources.connections.release();
    o.stats.connectionClosed(connected || abandoned.has(socket));
    if (!settled) fail('connect', 'connection closed before it was established');
  });
  return socket;
}
