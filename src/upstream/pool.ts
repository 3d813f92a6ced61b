// Connection pool for one endpoint, in one worker. HTTP/1.1: hands out idle keep-alive
// connections most-recently-used first (the ones least likely to have been closed by
// the upstream), opens new ones up to a limit, and queues requests beyond it. HTTP/2
// (`protocol: http2`): hands out streams on the first connection with room, opens
// another connection when all are full (up to the same limit), and queues beyond it;
// cluster connection limits count connections, max_requests counts streams.

import type { UpstreamEndpoint } from '../config/types.js';
import { dialAddress, tlsName } from '../config/dns-endpoints.js';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { RingBuffer } from '../core/ring-buffer.js';
import type { ClusterResources, EndpointCells } from '../shared/shared-state.js';
import type { ClusterStats } from '../stats/recorder.js';
import { ClusterCounter, ClusterGauge } from '../stats/stat-names.js';
import { openDedicated, type DedicatedEvents } from './dedicated-connection.js';
import { UpstreamConnection, type ConnectionOwner, type UpstreamChannel } from './connection.js';
import { Http2Connection, type Http2ConnectionOwner, type Http2Settings } from './http2-connection.js';
import type { ClusterTls, EndpointTls } from './upstream-tls.js';

/** A request waiting for a connection. */
export interface PoolClient {
  /** Called with a connection (HTTP/2: a stream) that is now this client's until the
   *  exchange ends. */
  onConnection(conn: UpstreamChannel): void;
  /** True when the client no longer wants a connection (it was aborted while queued). */
  readonly cancelled: boolean;
  /** The endpoint left the config while the client waited in its queue. */
  onPoolClosed(): void;
  /** The client's own request came over HTTP/2 (read by `protocol: downstream` pools). */
  readonly downstreamHttp2: boolean;
}

export interface PoolOptions {
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Connections per endpoint in this worker. */
  readonly maxConnections: number;
  /** Cluster circuit breakers, shared by all workers: connections and pending requests. */
  readonly maxClusterConnections: number;
  readonly maxPending: number;
  /** The cluster's TLS settings; absent or null for plaintext. */
  readonly tls?: ClusterTls | null;
  /** HTTP/2 settings for `protocol: http2` or `downstream`; absent or null for HTTP/1.1. */
  readonly http2?: Http2Settings | null;
  /** How a request's HTTP version is chosen: `http1` / `http2` (fixed), `downstream`
   *  (the client's), `alpn` (`protocol: auto` with TLS: what the endpoint's ALPN chose,
   *  learned by a first handshake). Absent: from `http2` (set: http2). */
  readonly mode?: 'http1' | 'http2' | 'downstream' | 'alpn';
  /** TCP keepalive's initial delay in ms (0: the system's), or absent / null for off. */
  readonly keepaliveMs?: number | null;
  /** Requests an upstream connection carries before it takes no more; absent or 0: no limit. */
  readonly maxRequestsPerConnection?: number;
}

export class EndpointPool implements ConnectionOwner, Http2ConnectionOwner {
  private readonly idle: UpstreamConnection[] = [];
  /** HTTP/2 connections, busy or not (empty for HTTP/1.1). */
  private readonly h2: Http2Connection[] = [];
  /** Requests waiting for an HTTP/1.1 connection, and for an HTTP/2 stream. */
  private readonly waiting = new RingBuffer<PoolClient>();
  private readonly waitingH2 = new RingBuffer<PoolClient>();
  /** protocol auto: requests waiting for the endpoint's ALPN choice. */
  private readonly waitingAlpn = new RingBuffer<PoolClient>();
  /** protocol auto: what the endpoint's ALPN chose; null until a handshake said. */
  private alpn: 'h2' | 'http/1.1' | null = null;
  private probing = false;
  /** Open or connecting connections, idle or busy. */
  private total = 0;
  /** Requests dispatched to this endpoint and not yet finished (least_request reads it). */
  active = 0;
  private closed = false;
  /** TLS state of this endpoint (SNI, identity check, session for resumption); null = plaintext. */
  private tls: EndpointTls | null;
  /** `address:port` (IPv6 in brackets), for logs and admin views. */
  readonly key: string;

  constructor(
    /** Replaced (same key) when a logical DNS endpoint's address changes. */
    public endpoint: UpstreamEndpoint,
    private options: PoolOptions,
    private stats: ClusterStats,
    private resources: ClusterResources,
    /** This endpoint's shared health and outlier cells. */
    public cells: EndpointCells,
  ) {
    this.key = endpointKey(endpoint.address, endpoint.port);
    this.tls = options.tls?.forEndpoint(tlsName(endpoint)) ?? null;
  }

  /** Whether this pool's connections are TLS (fixed: an endpoint whose transport changes
   *  gets a new pool, so no connection of the other one is reused). */
  get secure(): boolean {
    return this.options.tls !== null && this.options.tls !== undefined;
  }

  /** How this pool picks its HTTP version (fixed: a cluster whose choice changes gets new pools). */
  get mode(): 'http1' | 'http2' | 'downstream' | 'alpn' {
    return this.options.mode ?? (this.options.http2 ? 'http2' : 'http1');
  }

  /** Whether `client` is served over HTTP/2. */
  private wantsHttp2(client: PoolClient): boolean {
    const o = this.options;
    if (o.http2 === undefined || o.http2 === null) return false;
    switch (o.mode) {
      case 'downstream':
        return client.downstreamHttp2;
      case 'alpn':
        return this.alpn === 'h2';
      case 'http1':
        return false;
      default:
        return true;
    }
  }

  get idleCount(): number {
    if (this.h2.length > 0) {
      let n = 0;
      for (const c of this.h2) if (c.streams === 0) n++;
      return n;
    }
    return this.idle.length;
  }

  get connectionCount(): number {
    return this.total;
  }

  get queued(): number {
    return this.waiting.length + this.waitingH2.length + this.waitingAlpn.length;
  }

  /** Applies new limits from a config snapshot; existing connections stay. `endpoint`:
   *  the same endpoint with a new address to dial (logical DNS): new connections go there. */
  update(options: PoolOptions, stats: ClusterStats, resources: ClusterResources, cells: EndpointCells, endpoint?: UpstreamEndpoint): void {
    if (endpoint !== undefined) this.endpoint = endpoint;
    // New TLS settings apply to new connections (and start a new session cache);
    // connections already open keep the handshake they made.
    if (options.tls !== this.options.tls) this.tls = options.tls?.forEndpoint(tlsName(this.endpoint)) ?? null;
    this.options = options;
    this.stats = stats;
    this.resources = resources;
    this.cells = cells;
  }

  /** Gets `client` a connection now or when one frees up. `fresh` skips idle ones
   *  (used to resend a request that hit a connection the upstream had just closed).
   *  Returns false when the request would have to wait and the cluster's
   *  max_pending_requests is reached (the caller answers 503 UO). */
  acquire(client: PoolClient, fresh = false): boolean {
    if (this.options.mode === 'alpn' && this.alpn === null && this.tls !== null) return this.awaitAlpn(client);
    return this.acquireAs(client, this.wantsHttp2(client), fresh);
  }

  /** acquire() once the HTTP version is known (`h2`). */
  private acquireAs(client: PoolClient, h2: boolean, fresh = false): boolean {
    if (!fresh) {
      const conn = h2 ? this.streamOnOpenConnection() : this.takeIdle();
      if (conn !== null) {
        client.onConnection(conn);
        return true;
      }
    }
    if (this.total < this.options.maxConnections || fresh) {
      // Cluster-wide max_connections; an endpoint with no connection at all gets one
      // regardless, else its queued requests could never run (Envoy does the same).
      if (this.total === 0 || fresh) {
        this.resources.connections.acquire();
        client.onConnection(this.openChannel(h2));
        return true;
      }
      if (this.resources.connections.tryAcquire(this.options.maxClusterConnections)) {
        client.onConnection(this.openChannel(h2));
        return true;
      }
      this.stats.count(ClusterCounter.CxOverflow);
    }
    if (!this.resources.pending.tryAcquire(this.options.maxPending)) {
      this.stats.count(ClusterCounter.RqPendingOverflow);
      return false;
    }
    (h2 ? this.waitingH2 : this.waiting).push(client);
    this.stats.gauge(ClusterGauge.RqPending, 1);
    return true;
  }

  /** A connection for one client alone (a tcp_proxy connection, an upgraded request;
   *  dedicated-connection.ts), counted against the cluster's max_connections: null when
   *  that is reached (counted as upstream_cx_overflow; the caller's UO). */
  openDedicated(alpn: readonly string[], preamble: Buffer | null, events: DedicatedEvents): Socket | null {
    if (!this.resources.connections.tryAcquire(this.options.maxClusterConnections)) {
      this.stats.count(ClusterCounter.CxOverflow);
      return null;
    }
    const o = this.options;
    return openDedicated({
      host: dialAddress(this.endpoint), port: this.endpoint.port, connectTimeoutMs: o.connectTimeoutMs, tls: this.tls, keepaliveMs: o.keepaliveMs ?? null,
      stats: this.stats, resources: this.resources, alpn, preamble,
    }, events);
  }

  /** ConnectionOwner: a connection finished its exchange and may be reused, unless it
   *  has carried max_requests_per_connection: then it closes (its close event lets a
   *  waiting request open a new one). */
  release(conn: UpstreamConnection): void {
    const max = this.options.maxRequestsPerConnection ?? 0;
    if (max > 0 && conn.served >= max) {
      this.stats.count(ClusterCounter.CxMaxRequests);
      conn.destroy();
      return;
    }
    this.reuse(conn);
  }

  /** Hands an idle connection to the next waiting request, or keeps it idle. */
  private reuse(conn: UpstreamConnection): void {
    if (this.closed) {
      conn.destroy();
      return;
    }
    const next = this.nextWaiting(this.waiting);
    if (next !== undefined) {
      next.onConnection(conn);
      return;
    }
    if (this.waitingH2.length > 0) {
      // protocol: downstream, at the connection limit: this connection makes room for an
      // HTTP/2 one (its close event opens it for the waiting request).
      conn.destroy();
      return;
    }
    this.idle.push(conn);
  }

  /** Gives back a channel its client will not use after all (refused by a circuit
   *  breaker, or the client is over): the next waiting request gets it. */
  giveBack(channel: UpstreamChannel): void {
    if (channel instanceof UpstreamConnection) this.reuse(channel);
    else channel.destroy(); // an unused HTTP/2 stream place: streamEnded passes it on
  }

  /** Http2ConnectionOwner: a stream ended; its place goes to the next waiting request. */
  streamEnded(conn: Http2Connection): void {
    if (this.closed) {
      if (conn.streams === 0) conn.close();
      return;
    }
    if (conn.spent) {
      // It carried max_requests_per_connection streams: it closes once they are done.
      if (conn.streams === 0) {
        this.stats.count(ClusterCounter.CxMaxRequests);
        conn.close();
      }
      return;
    }
    if (!conn.hasRoom) return;
    const next = this.nextWaiting(this.waitingH2);
    if (next !== undefined) {
      conn.streams++;
      next.onConnection(conn.channel());
    } else if (conn.streams === 0 && this.waiting.length > 0) {
      conn.close(); // protocol: downstream: room for an HTTP/1.1 connection
    }
  }

  /** Http2ConnectionOwner: an HTTP/2 connection closed. */
  connectionClosed(conn: Http2Connection): void {
    const i = this.h2.indexOf(conn);
    if (i >= 0) this.h2.splice(i, 1);
    this.total--;
    this.resources.connections.release();
    this.stats.connectionClosed(conn.wasConnected);
    this.replaceFor(this.nextWaiting(this.waitingH2) ?? this.nextWaiting(this.waiting));
  }

  /** ConnectionOwner: a connection closed; forget it and let a waiter open a new one. */
  forget(conn: UpstreamConnection): void {
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    this.total--;
    this.resources.connections.release();
    this.stats.connectionClosed(conn.wasConnected);
    this.replaceFor(this.nextWaiting(this.waiting) ?? this.nextWaiting(this.waitingH2));
  }

  /** A connection closed: `next`, a request that waited for one, gets a new one. */
  private replaceFor(next: PoolClient | undefined): void {
    if (next === undefined || this.closed) return;
    this.resources.connections.acquire(); // replaces the one just closed
    next.onConnection(this.openChannel(this.wantsHttp2(next)));
  }

  /** Closes idle connections past the idle timeout or the upstream's keep-alive hint. */
  sweep(now: number): void {
    // idle_timeout_ms 0 turns the idle timeout off.
    const limit = this.options.idleTimeoutMs > 0 ? now - this.options.idleTimeoutMs : -Infinity;
    for (const conn of this.h2) {
      if (conn.streams === 0 && conn.idleSince < limit) conn.close(); // its close event counts it out
    }
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const conn = this.idle[i];
      if (conn.idleSince < limit || (conn.expiresAt !== 0 && conn.expiresAt < now)) {
        this.idle.splice(i, 1);
        conn.destroy(); // its close event calls forget(), which counts it out
      }
    }
  }

  /** Closes idle connections now and busy ones when their exchange ends; requests still
   *  queued are handed the failure of a closed connection. */
  close(): void {
    this.closed = true;
    for (const conn of this.idle.splice(0)) conn.destroy();
    for (const conn of this.h2) conn.close(); // open streams finish first
    for (const queue of [this.waiting, this.waitingH2, this.waitingAlpn]) {
      for (let next = this.nextWaiting(queue); next !== undefined; next = this.nextWaiting(queue)) next.onPoolClosed();
    }
  }

  private takeIdle(): UpstreamConnection | null {
    const now = performance.now();
    let conn = this.idle.pop();
    while (conn !== undefined) {
      if (!conn.isClosed && (conn.expiresAt === 0 || conn.expiresAt > now)) return conn;
      conn.destroy();
      conn = this.idle.pop();
    }
    return null;
  }

  /** The first queued client still waiting, taken off the queue. */
  private nextWaiting(queue: RingBuffer<PoolClient>): PoolClient | undefined {
    let next = queue.shift();
    while (next !== undefined) {
      this.stats.gauge(ClusterGauge.RqPending, -1);
      this.resources.pending.release();
      if (!next.cancelled) return next;
      next = queue.shift();
    }
    return undefined;
  }

  /** protocol auto: `client` waits (as a pending request) for the endpoint's ALPN choice,
   *  which one TLS handshake offering h2 and http/1.1 finds out. */
  private awaitAlpn(client: PoolClient): boolean {
    if (!this.resources.pending.tryAcquire(this.options.maxPending)) {
      this.stats.count(ClusterCounter.RqPendingOverflow);
      return false;
    }
    this.stats.gauge(ClusterGauge.RqPending, 1);
    this.waitingAlpn.push(client);
    if (!this.probing) this.probeAlpn();
    return true;
  }

  /** One TLS handshake offering h2 and http/1.1: the endpoint's choice is remembered by
   *  this pool (its session is kept for the next handshake to resume), and the requests
   *  that waited for it go on. A failed handshake leaves the choice open (the next
   *  request asks again); the waiting requests go on over HTTP/1.1, where their own
   *  connection reports the failure. */
  private probeAlpn(): void {
    const tlsState = this.tls!;
    this.probing = true;
    let settled = false;
    const settle = (alpn: 'h2' | 'http/1.1' | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      this.probing = false;
      if (alpn !== null) this.alpn = alpn;
      for (let next = this.nextWaiting(this.waitingAlpn); next !== undefined; next = this.nextWaiting(this.waitingAlpn)) {
        if (this.closed) {
          next.onPoolClosed();
        } else if (!this.acquireAs(next, this.alpn === 'h2')) {
          next.onPoolClosed(); // the queue is full now: reported as a connect failure
        }
      }
    };
    const socket = tls.connect({ ...tlsState.connectOptions(dialAddress(this.endpoint), this.endpoint.port), ALPNProtocols: ['h2', 'http/1.1'] });
    const timer = setTimeout(() => settle(null), this.options.connectTimeoutMs);
    socket.on('session', tlsState.onSession);
    socket.once('secureConnect', () => settle(socket.alpnProtocol === 'h2' ? 'h2' : 'http/1.1'));
    socket.once('error', () => settle(null));
    socket.once('close', () => settle(null));
  }

  /** A stream place on an open HTTP/2 connection with room, or null. */
  private streamOnOpenConnection(): UpstreamChannel | null {
    for (const conn of this.h2) {
      if (conn.hasRoom) {
        conn.streams++;
        return conn.channel();
      }
    }
    return null;
  }

  /** A new connection (HTTP/2: a new connection's first stream). */
  private openChannel(h2: boolean): UpstreamChannel {
    this.total++;
    this.stats.connectionOpened();
    const o = this.options;
    if (!h2 || !o.http2) return new UpstreamConnection(this, dialAddress(this.endpoint), this.endpoint.port, o.connectTimeoutMs, this.tls, o.keepaliveMs ?? null);
    const conn = new Http2Connection(this, dialAddress(this.endpoint), this.endpoint.port, o.connectTimeoutMs, o.http2, this.tls, o.keepaliveMs ?? null);
    this.h2.push(conn);
    conn.streams++;
    return conn.channel();
  }
}

/** `address:port`, with IPv6 addresses in brackets. */
export function endpointKey(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
