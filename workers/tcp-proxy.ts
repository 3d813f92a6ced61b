// One TCP proxy connection (Envoy's tcp_proxy network filter): picks the cluster (weighted
// clusters per connection) and an endpoint with the cluster's load balancer, connects
// (trying other endpoints up to max_connect_attempts), then carries bytes both ways with
// backpressure. A half-close travels (the client's FIN becomes the upstream's and back);
// a reset on one side resets the other. Ends on the idle timeout or the maximum duration.
// Outlier detection sees each connect as a success or a gateway failure; the cluster's
// max_connections caps connections (UO). One access-log line and the tunnel stats when it
// is over.

import type { Socket } from 'node:net';
import type { TcpProxy } from '../src/config/types.js';
import { ResponseFlag } from '../src/core/flags.js';
import { reportError } from '../src/core/report.js';
import { ClusterCounter, FLAGS, ListenerCounter, ListenerGauge, ListenerHistogram } from '../src/stats/stat-names.js';
import type { ClusterRuntime } from '../src/upstream/cluster.js';
import type { DedicatedEvents, DedicatedFailure } from '../src/upstream/dedicated-connection.js';
import type { EndpointPool } from '../src/upstream/pool.js';
import type { ListenerRuntime, WorkerContext } from './context.js';
import { clientAddress, encodeProxyHeader } from './proxy-protocol.js';

const NO_ALPN: readonly string[] = [];

export class TcpProxySession implements DedicatedEvents {
  private readonly startedAt = performance.now();
  private cluster: ClusterRuntime | null = null;
  private pool: EndpointPool | null = null;
  private tried: EndpointPool[] = [];
  private upstream: Socket | null = null;
  /** The upstream connection is up and bytes flow (counted as an active request of its endpoint). */
  private connected = false;
  private flag: string = ResponseFlag.None;
  private termination = 'downstream';
  private bytesIn = 0;
  private bytesOut = 0;
  private done = false;
  private durationTimer: NodeJS.Timeout | null = null;
  /** The client's address, read while the socket is open. */
  private readonly client: string;

  constructor(
    private readonly ctx: WorkerContext,
    private readonly listener: ListenerRuntime | undefined,
    private readonly down: Socket,
    private readonly chain: string,
    private readonly serverName: string,
    private readonly config: TcpProxy,
    /** Called once when both sockets are gone. */
    private readonly onEnd: (session: TcpProxySession) => void,
  ) {
    this.client = clientAddress(down);
  }

  /** Starts connecting upstream; the downstream socket stays paused until then. */
  start(): void {
    this.ctx.inflight++;
    this.listener?.stats.gauge(ListenerGauge.TcpActive, 1);
    const down = this.down;
    down.on('error', this.onDownstreamError);
    down.on('close', this.onDownstreamClose);
    const name = pickCluster(this.config);
    const cluster = this.ctx.clusters.get(name);
    if (cluster === undefined) return this.refuse(ResponseFlag.NoRoute);
    this.cluster = cluster;
    if (this.config.max_downstream_connection_duration_ms > 0) {
      this.durationTimer = setTimeout(this.onMaxDuration, this.config.max_downstream_connection_duration_ms);
    }
    this.connect();
  }

  /** Closes both sides at once (the worker is stopping). */
  destroy(): void {
    this.termination = 'drain';
    this.upstream?.destroy();
    this.down.destroy();
  }

  private connect(): void {
    const cluster = this.cluster!;
    const pool = cluster.pick(this.tried.length > 0 ? this.tried : null);
    if (pool === null) return this.refuse(ResponseFlag.NoHealthyUpstream);
    this.pool = pool;
    this.tried.push(pool);
    const version = cluster.config.send_proxy_protocol;
    const down = this.down;
    const preamble = version === undefined ? null
      : encodeProxyHeader(version, clientAddress(down), down.remotePort ?? 0, down.localAddress ?? '', down.localPort ?? 0);
    const socket = pool.openDedicated(NO_ALPN, preamble, this);
    if (socket === null) return this.refuse(ResponseFlag.UpstreamOverflow);
    this.upstream = socket;
  }

  // ---- DedicatedEvents ----

  onUpstreamConnected(up: Socket): void {
    if (this.done || this.down.destroyed) {
      up.destroy();
      return;
    }
    const cluster = this.cluster!;
    const pool = this.pool!;
    this.ctx.endpointOutcome(cluster, pool, false, false);
    pool.cells.requestStarted();
    this.connected = true;
    this.upstream = up;
    const down = this.down;
    const lstats = this.listener?.stats;
    const cstats = cluster.stats;
    up.on('error', this.onUpstreamError);
    up.on('close', this.onUpstreamClose);
    down.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      lstats?.add(ListenerCounter.CxRxBytes, chunk.length);
      cstats.add(ClusterCounter.CxTxBytes, chunk.length);
      if (!up.write(chunk)) down.pause();
    });
    up.on('data', (chunk: Buffer) => {
      this.bytesOut += chunk.length;
      lstats?.add(ListenerCounter.CxTxBytes, chunk.length);
      cstats.add(ClusterCounter.CxRxBytes, chunk.length);
      if (!down.write(chunk)) up.pause();
    });
    up.on('drain', () => down.resume());
    down.on('drain', () => up.resume());
    // Half-close: each side's FIN is passed on; the connection ends when both have sent one.
    let firstFin = '';
    down.on('end', () => guard(() => {
      firstFin ||= 'downstream';
      up.end();
    }));
    up.on('end', () => guard(() => {
      firstFin ||= 'upstream';
      if (this.termination === 'downstream') this.termination = firstFin;
      down.end();
    }));
    if (this.config.idle_timeout_ms > 0) {
      // Node's socket timeout counts reads and writes: every byte either way passes the
      // downstream socket.
      down.setTimeout(this.config.idle_timeout_ms);
      down.on('timeout', this.onIdle);
    }
    down.resume();
  }

  onUpstreamConnectFailed(_failure: DedicatedFailure, _detail: string): void {
    if (this.done) return;
    const cluster = this.cluster!;
    this.ctx.endpointOutcome(cluster, this.pool!, false, true);
    this.upstream = null;
    if (this.down.destroyed) return this.finish();
    if (this.tried.length < this.config.max_connect_attempts) {
      return this.connect();
    }
    this.refuse(ResponseFlag.UpstreamConnectFailure);
  }

  // ---- ending ----

  /** No upstream for this connection: close the client's and log why. */
  private refuse(flag: string): void {
    this.flag = flag;
    this.termination = 'refused';
    this.down.destroy();
    this.finish();
  }

  private readonly onIdle = (): void => {
    this.termination = 'idle_timeout';
    this.listener?.stats.count(ListenerCounter.TunnelIdleTimeout);
    this.upstream?.destroy();
    this.down.destroy();
  };

  private readonly onMaxDuration = (): void => {
    this.termination = 'max_duration';
    this.upstream?.destroy();
    this.down.destroy();
  };

  private readonly onDownstreamError = (): void => {
    // A reset from the client resets the upstream connection too.
    if (this.termination === 'downstream') this.termination = 'error';
    this.upstream?.destroy();
  };

  private readonly onUpstreamError = (): void => {
    if (this.termination === 'downstream') this.termination = 'error';
    this.flag = ResponseFlag.UpstreamConnectionTermination;
    this.down.destroy();
  };

  private readonly onDownstreamClose = (): void => {
    guard(() => {
      const up = this.upstream;
      if (!this.connected) {
        // Gone while the upstream connection was being made: give that up.
        up?.destroy();
        this.finish();
      } else if (up !== null && !up.destroyed) {
        // What the upstream still sends has nowhere to go: close it (after what it was sent).
        up.end(() => up.destroy());
      } else {
        this.finish();
      }
    });
  };

  private readonly onUpstreamClose = (): void => {
    guard(() => {
      const down = this.down;
      // Bytes already written to the client are flushed before its socket closes.
      if (!down.destroyed) down.end(() => down.destroy());
      else this.finish();
    });
  };

  private finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.durationTimer !== null) clearTimeout(this.durationTimer);
    this.ctx.inflight--;
    if (this.connected) this.pool!.cells.requestFinished();
    const durationUs = Math.round((performance.now() - this.startedAt) * 1000);
    const listener = this.listener;
    if (listener !== undefined) {
      listener.stats.gauge(ListenerGauge.TcpActive, -1);
      listener.stats.observe(ListenerHistogram.TunnelDuration, durationUs);
      const flagIndex = FLAGS.indexOf(this.flag);
      if (flagIndex >= 0) listener.stats.count(ListenerCounter.FlagBase + flagIndex);
      listener.accessLog?.writeConnection({
        client: this.client,
        chain: this.chain,
        serverName: this.serverName,
        cluster: this.cluster?.name ?? '',
        upstream: this.pool?.key ?? '',
        attempts: this.tried.length,
        flags: this.flag,
        bytesIn: this.bytesIn,
        bytesOut: this.bytesOut,
        durationUs,
        termination: this.termination,
      });
    }
    this.onEnd(this);
  }
}

/** The cluster of a connection: the one named, or one of the weighted ones at random. */
function pickCluster(t: TcpProxy): string {
  if (t.cluster !== undefined) return t.cluster;
  const clusters = t.weighted_clusters ?? [];
  let total = 0;
  for (const c of clusters) total += c.weight;
  let r = Math.random() * total;
  for (const c of clusters) {
    r -= c.weight;
    if (r < 0) return c.cluster;
  }
  return clusters[clusters.length - 1]?.cluster ?? '';
}

function guard(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    reportError(err, 'a TCP proxy connection');
  }
}
