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
import type { ChainTarget } from '../src/router/filter-chains.js';
import { pickByWeight } from '../src/router/route-table.js';
import { reportError } from '../src/core/report.js';
import { FLAGS, ListenerCounter, ListenerGauge, ListenerHistogram } from '../src/stats/stat-names.js';
import type { ClusterRuntime } from '../src/upstream/cluster.js';
import { abandonDedicated, type DedicatedEvents, type DedicatedFailure } from '../src/upstream/dedicated-connection.js';
import type { EndpointPool } from '../src/upstream/pool.js';
import { NO_LISTENER_STATS } from '../src/stats/recorder.js';
import { Tunnel, type TunnelOwner } from './byte-tunnel.js';
import type { ListenerRuntime, WorkerContext } from './context.js';
import { clientAddress, encodeProxyHeader, proxiedAddresses } from './proxy-protocol.js';

const NO_ALPN: readonly string[] = [];
const EMPTY = Buffer.alloc(0);

export class TcpProxySession implements DedicatedEvents, TunnelOwner {
  private readonly startedAt = performance.now();
  private cluster: ClusterRuntime | null = null;
  private pool: EndpointPool | null = null;
  private tried: EndpointPool[] = [];
  private upstream: Socket | null = null;
  /** The upstream connection is up and bytes flow (counted as an active request of its endpoint). */
  private connected = false;
  private flag: string = ResponseFlag.None;
  /** What ended it (the access log's `termination`); '' while it is open. */
  private termination = '';
  private tunnel: Tunnel | null = null;
  private bytesIn = 0;
  private bytesOut = 0;
  private done = false;
  private durationTimer: NodeJS.Timeout | null = null;
  /** The client's address, read while the socket is open. */
  private readonly client: string;
  private readonly config: TcpProxy;

  constructor(
    private readonly ctx: WorkerContext,
    private readonly listener: ListenerRuntime | undefined,
    private readonly down: Socket,
    /** The filter chain that took the connection (or the listener's default). */
    private readonly chain: ChainTarget,
    private readonly serverName: string,
    /** Called once when both sockets are gone. */
    private readonly onEnd: (session: TcpProxySession) => void,
  ) {
    this.client = clientAddress(down);
    this.config = chain.tcpProxy;
  }

  /** Starts connecting upstream; the downstream socket stays paused until then. */
  start(): void {
    this.ctx.inflight++;
    this.listener?.stats.gauge(ListenerGauge.TcpActive, 1);
    const down = this.down;
    down.once('close', this.onEarlyClose);
    const name = pickByWeight(this.chain.clusters, this.chain.totalWeight).name;
    const cluster = this.ctx.clusters.get(name);
    if (cluster === undefined) return this.refuse(ResponseFlag.NoClusterFound);
    this.cluster = cluster;
    if (this.config.max_downstream_connection_duration_ms > 0) {
      this.durationTimer = setTimeout(this.onMaxDuration, this.config.max_downstream_connection_duration_ms);
    }
    this.connect();
  }

  /** Closes both sides at once (the worker is stopping). */
  destroy(): void {
    if (this.termination === '') this.termination = 'drain';
    if (this.tunnel !== null) this.tunnel.destroy();
    else this.down.destroy();
  }

  private connect(): void {
    const cluster = this.cluster!;
    const pool = cluster.pick(this.tried.length > 0 ? this.tried : null);
    if (pool === null) return this.refuse(ResponseFlag.NoHealthyUpstream);
    this.pool = pool;
    this.tried.push(pool);
    const version = cluster.config.send_proxy_protocol;
    const down = this.down;
    // The addresses a PROXY header named pass on unchanged (Envoy's behaviour); else this
    // connection's own.
    const named = proxiedAddresses(down);
    const preamble = version === undefined ? null : named !== null
      ? encodeProxyHeader(version, named.source, named.sourcePort, named.dest, named.destPort)
      : encodeProxyHeader(version, down.remoteAddress ?? '', down.remotePort ?? 0, down.localAddress ?? '', down.localPort ?? 0);
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
    const tunnel = new Tunnel(this.down, up, this.config.idle_timeout_ms, this.listener?.stats ?? NO_LISTENER_STATS, cluster.stats, this);
    this.tunnel = tunnel;
    tunnel.start(null, EMPTY);
  }

  onTunnelEnd(tunnel: Tunnel, flag: string): void {
    this.flag = flag;
    this.bytesIn = tunnel.bytesIn;
    this.bytesOut = tunnel.bytesOut;
    if (this.termination === '') this.termination = tunnel.reason ?? 'closed';
    this.finish();
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
    this.down.removeListener('close', this.onEarlyClose);
    this.down.destroy();
    this.finish();
  }

  private readonly onMaxDuration = (): void => {
    this.termination = 'max_duration';
    if (this.tunnel !== null) this.tunnel.destroy();
    else this.down.destroy();
  };

  /** Before the tunnel exists: the client went away while the upstream connection was
   *  being made; give that up (not a connect failure). */
  private readonly onEarlyClose = (): void => {
    guard(() => {
      if (this.connected) return;
      if (this.upstream !== null) abandonDedicated(this.upstream);
      if (this.termination === '') this.termination = 'downstream';
      this.finish();
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
        chain: this.chain.name,
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

function guard(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    reportError(err, 'a TCP proxy connection');
  }
}
