// Per-worker state the request pipeline reads: the compiled config snapshot (route
// tables, cluster runtimes), the logger and this worker's counters. A new snapshot
// replaces the tables in one assignment; requests in flight keep the route they matched.

import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import type { Authorization, Cluster, ConfigSnapshot, EndpointSlots, Listener, ResolvedEndpoints, Route, ServerHeaderTransformation, TlsMaterialSet, XfccMode } from '../src/config/types.js';
import { dataPlaneCluster } from '../src/config/dns-endpoints.js';
import { servesTls } from '../src/config/listener-chains.js';
import { chainTlsKey } from '../src/tls/chain-key.js';
import { compileAuthorization } from '../src/filters/authorization.js';
import { AuthorizationFilter } from '../src/filters/authorization-filter.js';
import type { Logger } from '../src/core/log.js';
import { ResponseFlag } from '../src/core/flags.js';
import { RateLimiter, rateLimitSlotName, type CompiledRateLimit } from '../src/filters/rate-limit.js';
import { RateLimitFilter } from '../src/filters/rate-limit-filter.js';
import type { RequestFilter } from '../src/filters/request-filter.js';
import { compileResponseHeadPolicy, type ResponseHeadPolicy } from '../src/http/response-head.js';
import { RouteTable } from '../src/router/route-table.js';
import type { EndpointEventKind, FromWorker } from '../src/shared/messages.js';
import { EndpointState } from '../src/shared/shared-state.js';
import { ClusterCounter, FLAGS, ListenerCounter } from '../src/stats/stat-names.js';
import { CompiledRetryPolicy } from '../src/upstream/retry-policy.js';
import type { EndpointPool } from '../src/upstream/pool.js';
import {
  NO_CLUSTER_STATS,
  NO_LISTENER_STATS,
  SlabClusterStats,
  SlabListenerStats,
  StatsRecorder,
  type ListenerStats,
} from '../src/stats/recorder.js';
import { ClusterRuntime, type SharedSlots } from '../src/upstream/cluster.js';
import { AccessLogs, type AccessLogSink } from './access-log.js';
import { GrpcLogs } from './access-log-grpc.js';
import { compileListenerUpgrades, compileRouteUpgrades } from './upgrade-policy.js';
import { resolveTracing } from '../src/tracing/settings.js';
import { SpanBuffer } from './span-buffer.js';
import { ListenerTracer, type Sampling } from './tracing.js';
import { IdleHeapTrim } from './idle-heap-trim.js';

/** What a route carries besides matching and forwarding, compiled per snapshot. */
export interface RoutePolicy {
  readonly retry: CompiledRetryPolicy | null;
  /** Run after the listener's, when this route matched (authorization, then rate
   *  limits); empty when the route has neither. */
  readonly filters: readonly RequestFilter[];
  /** The route's response header edits with the listener's `server` settings. */
  readonly responseHead: ResponseHeadPolicy;
  /** The route's upgrade_configs by upgrade type (true: allowed, false: refused); null
   *  when the route has none (the listener's `upgrades` decide). */
  readonly upgrades: ReadonlyMap<string, boolean> | null;
  /** The route's tracing sampling; null: the listener's. */
  readonly sampling: Sampling | null;
}

/** A listener as the pipeline sees it in one snapshot: its route table and stats. An
 *  HTTPS filter chain has one too, under its key (chainTlsKey), the same but its table. */
export interface ListenerRuntime {
  readonly name: string;
  readonly table: RouteTable<ClusterRuntime, RoutePolicy>;
  /** Run before routing: who may use the listener (by peer identity), then its rate
   *  limits; empty when it has neither. */
  readonly filters: readonly RequestFilter[];
  readonly stats: ListenerStats;
  /** Access log (workers/access-log.ts), or null when the listener has none. */
  readonly accessLog: AccessLogSink | null;
  /** Start a W3C trace for requests without a traceparent (src/http/upstream-request-head.ts). */
  readonly generateTraceparent: boolean;
  /** max_request_headers_kb in bytes (431 above it). */
  readonly maxRequestHeadersBytes: number;
  /** headers_with_underscores_action: what a header name with `_` gets. */
  readonly underscoreHeaders: Listener['headers_with_underscores_action'];
  /** What happens to x-forwarded-client-cert. */
  readonly xfcc: XfccMode;
  /** x-forwarded-proto: "https" on a TLS listener. */
  readonly scheme: 'http' | 'https';
  /** The `server` header: server_name, and what happens to the upstream's. */
  readonly serverName: string;
  readonly serverHeader: ServerHeaderTransformation;
  /** Upgrade types (lower-case) the listener's upgrade_configs enable; routes may
   *  override (RoutePolicy.upgrades). Empty: no upgrades unless a route allows one. */
  readonly upgrades: ReadonlySet<string>;
  /** Tracing (workers/tracing.ts), or null when the listener does not trace. */
  readonly tracer: ListenerTracer | null;
}

/** OpenSSL verification results Node reports for a client certificate that is there but
 *  not acceptable (untrusted, expired, not yet valid, wrong purpose...). */
const CERT_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_SIGNATURE_FAILURE', 'CERT_REVOKED',
  'CERT_UNTRUSTED', 'CERT_REJECTED', 'INVALID_PURPOSE', 'INVALID_CA', 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
]);

const DPE_INDEX = FLAGS.indexOf(ResponseFlag.DownstreamProtocolError);

export class WorkerContext {
  version = 0;
  inflight = 0;
  /** Draining (SIGTERM, /drain_listeners): every response closes its connection. */
  draining = false;
  /** worker_limits.max_downstream_connections; 0 = none. */
  maxDownstreamConnections = 0;
  /** worker_limits.memory_limit_mb in bytes; 0 = none. */
  private memoryLimitBytes = 0;
  /** Called (once) when the heap goes over the memory limit. */
  onMemoryLimit: ((usedMb: number, limitMb: number) => void) | null = null;
  readonly clusters = new Map<string, ClusterRuntime>();
  /** The snapshot applied last, with the latest DNS answers and TLS files. */
  private snapshot: ConfigSnapshot | null = null;
  private listeners = new Map<string, ListenerRuntime>();
  /** This worker's access log files; closed by serve.ts when the worker stops. */
  readonly accessLogs: AccessLogs;
  /** Entries for gRPC access log services, on their way to the main thread. */
  readonly grpcLogs: GrpcLogs;
  readonly recorder: StatsRecorder;
  /** Finished spans on their way to the main thread's exporter. */
  readonly spans: SpanBuffer;
  private readonly sweepTimer: NodeJS.Timeout;
  /** Gives back what a burst of traffic left in the heap once the worker is quiet. */
  private readonly heapTrim: IdleHeapTrim;
  /** Event-loop delay of this worker (ns), sampled every 20 ms; stored in the slab each
   *  second (/workers, /metrics). */
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });

  /** The process-wide resilience state (circuit breakers, endpoint health, buckets). */
  readonly shared: Int32Array;
  readonly rateLimiter: RateLimiter;
  /** Last log line per listener|code of refused handshakes (tlsHandshakeFailed). */
  private readonly handshakeLog = new Map<string, { at: number; suppressed: number }>();
  /** Consecutive counts returned by EndpointCells.outcome (no allocation per request). */
  private readonly outcomeScratch = new Int32Array(2);

  constructor(
    readonly slot: number,
    readonly log: Logger,
    statsSlab: SharedArrayBuffer,
    sharedState: SharedArrayBuffer,
    epochMs: number,
    private readonly post: (msg: FromWorker, transfer?: ArrayBuffer[]) => void,
  ) {
    this.spans = new SpanBuffer(post, log);
    this.shared = new Int32Array(sharedState);
    this.rateLimiter = new RateLimiter(this.shared, epochMs);
    this.recorder = new StatsRecorder(statsSlab);
    this.accessLogs = new AccessLogs(slot, log);
    this.grpcLogs = new GrpcLogs(post, log);
    this.heapTrim = new IdleHeapTrim(log);
    this.recorder.zeroGauges();
    this.recorder.storeWorker({ p50_us: 0, p99_us: 0, max_us: 0 }); // first heartbeat now, not in a second
    this.sweepTimer = setInterval(this.sweep, 1000);
    this.sweepTimer.unref();
    this.loopDelay.enable();
  }

  /** Event-loop delay since the last call, in microseconds. */
  private takeLoopDelay(): { p50_us: number; p99_us: number; max_us: number } {
    const h = this.loopDelay;
    const out = {
      // The histogram holds whole timer periods; what is above the period is the delay.
      p50_us: delayUs(h.percentile(50)),
      p99_us: delayUs(h.percentile(99)),
      max_us: delayUs(h.max),
    };
    h.reset();
    return out;
  }

  /** Compiles and switches to a snapshot. Clusters keep their pools across versions. */
  apply(snapshot: ConfigSnapshot): void {
    const config = snapshot.config;
    this.snapshot = snapshot;
    const seen = new Set<string>();
    for (const written of config.clusters) {
      // A DNS cluster's endpoints are the addresses the main thread resolved.
      const c = dataPlaneCluster(written, snapshot.resolved);
      seen.add(c.name);
      const stats = config.stats.enabled ? new SlabClusterStats(this.recorder, snapshot.statSlots.clusters[c.name]) : NO_CLUSTER_STATS;
      const shared = this.sharedSlots(c.name, snapshot);
      const existing = this.clusters.get(c.name);
      const tls = snapshot.tls.clusters[c.name];
      if (existing) existing.update(c, stats, shared, tls);
      else this.clusters.set(c.name, new ClusterRuntime(c, stats, shared, tls));
    }
    // A route from xDS may name a cluster this snapshot lacks (not sent yet, or removed):
    // its requests answer 503 NC (RouteTable, pickTarget). A file config cannot.
    const resolve = (name: string): ClusterRuntime | null => (seen.has(name) ? (this.clusters.get(name) ?? null) : null);
    const accessLogs = this.accessLogs.compile(config.listeners, this.grpcLogs.compile(config.listeners));
    const tracing = config.tracing !== undefined ? resolveTracing(config.tracing, process.env) : null;
    this.spans.configure(tracing);
    const listeners = new Map<string, ListenerRuntime>();
    const buckets = snapshot.stateSlots.buckets;
    for (const l of config.listeners) {
      const stats = config.stats.enabled ? new SlabListenerStats(this.recorder, snapshot.statSlots.listeners[l.name]) : NO_LISTENER_STATS;
      const onShadowHit = (): void => stats.count(ListenerCounter.RateLimitShadow);
      const tracer = tracing !== null && l.tracing?.enabled !== false && l.tcp_proxy === undefined && l.filter_chains.length === 0
        ? new ListenerTracer(tracing, l.tracing, l.name, this.spans, process.env) : null;
      // Authorization first, then rate limits: a refused client takes no token.
      const filters = (authorization: Authorization | undefined, limits: CompiledRateLimit[] | null): RequestFilter[] => {
        const out: RequestFilter[] = [];
        const compiled = compileAuthorization(authorization);
        if (compiled !== null) out.push(new AuthorizationFilter(compiled));
        if (limits !== null) out.push(new RateLimitFilter(this.rateLimiter, limits, onShadowHit));
        return out;
      };
      const routePolicy = (r: Route): RoutePolicy => ({
        retry: r.route?.retry_policy !== undefined ? new CompiledRetryPolicy(r.route.retry_policy) : null,
        filters: filters(r.authorization, this.rateLimiter.compile(r.rate_limits, (limit) => rateLimitSlotName(l.name, r.name, limit), buckets)),
        responseHead: compileResponseHeadPolicy(r.response_headers_to_add, r.response_headers_to_remove, l.server_name, l.server_header_transformation),
        upgrades: compileRouteUpgrades(r.upgrade_configs),
        sampling: tracer !== null ? tracer.routeSampling(r.tracing) : null,
      });
      const runtime: ListenerRuntime = {
        name: l.name,
        table: new RouteTable(l, resolve, routePolicy),
        filters: filters(l.authorization, this.rateLimiter.compile(l.rate_limits, (limit) => rateLimitSlotName(l.name, null, limit), buckets)),
        stats,
        accessLog: accessLogs.get(l.name) ?? null,
        generateTraceparent: l.generate_traceparent,
        maxRequestHeadersBytes: l.max_request_headers_kb * 1024,
        underscoreHeaders: l.headers_with_underscores_action,
        xfcc: l.forward_client_cert_details,
        scheme: servesTls(l) ? 'https' : 'http',
        serverName: l.server_name,
        serverHeader: l.server_header_transformation,
        upgrades: compileListenerUpgrades(l.upgrade_configs),
        tracer,
      };
      listeners.set(l.name, runtime);
      // An HTTPS filter chain's connections are routed by its own table; everything else
      // (filters, stats, access log) is the listener's.
      for (const fc of l.http_filter_chains) {
        listeners.set(chainTlsKey(l.name, fc.name), { ...runtime, table: new RouteTable({ ...l, virtual_hosts: fc.virtual_hosts }, resolve, routePolicy) });
      }
    }
    this.listeners = listeners;
    for (const [name, cluster] of this.clusters) {
      if (!seen.has(name)) {
        cluster.close();
        this.clusters.delete(name);
      }
    }
    this.version = snapshot.version;
    this.memoryLimitBytes = config.worker_limits.memory_limit_mb * 2 ** 20;
    this.heapTrim.setQuietTime(config.worker_limits.idle_heap_trim_after_ms);
    this.maxDownstreamConnections = config.worker_limits.max_downstream_connections;
  }

  /** A TLS handshake on `listener` failed: counted by reason, and logged at most once
   *  per listener and reason every 10 s (with how many since), so a refused client is
   *  visible without letting a flood of them flood the log. */
  tlsHandshakeFailed(listener: string, code: string, detail: string): void {
    const reason =
      code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE'
        ? ListenerCounter.TlsNoCert
        : CERT_VERIFY_CODES.has(code)
          ? ListenerCounter.TlsVerifyFailed
          : ListenerCounter.TlsOtherError;
    this.listeners.get(listener)?.stats.count(reason);
    const key = `${listener}|${code}`;
    const seen = this.handshakeLog.get(key) ?? { at: 0, suppressed: 0 };
    const now = Date.now();
    if (now - seen.at < 10_000) {
      seen.suppressed++;
    } else {
      this.log.warn({ listener, code, detail, sinceLastLine: seen.suppressed }, 'TLS handshake refused');
      seen.at = now;
      seen.suppressed = 0;
    }
    this.handshakeLog.set(key, seen);
  }

  /** The codec refused a request before it became an exchange (llhttp's framing errors,
   *  the headers timeout): counted as a protocol error with its status, flag DPE.
   *  `status` 0: refused without an answer of its own (a response was in flight). */
  codecRefused(listener: string, status: number): void {
    const stats = this.listeners.get(listener)?.stats;
    if (stats === undefined) return;
    stats.count(ListenerCounter.RqProtocolError);
    if (status === 0) return;
    stats.requestStarted();
    stats.requestFinished(status, DPE_INDEX, 0, 0, 0);
  }

  /** Where cluster `name` finds its shared cells in `snapshot`. */
  private sharedSlots(name: string, snapshot: ConfigSnapshot): SharedSlots {
    const endpointSlots = snapshot.stateSlots.endpoints;
    return {
      cells: this.shared,
      clusterSlot: snapshot.statSlots.clusters[name],
      endpointSlot: (key: string): number => {
        const slot = endpointSlots[name]?.[key];
        if (slot === undefined) throw new Error(`endpoint ${name}|${key} has no shared-state slot`);
        return slot;
      },
    };
  }

  /** New DNS answers (src/main/dns-resolver.ts): the DNS clusters move to their new
   *  endpoint lists without a new snapshot; pools of addresses that stay are kept. */
  applyEndpoints(resolved: ResolvedEndpoints, endpointSlots: EndpointSlots): void {
    const prev = this.snapshot;
    if (prev === null) return;
    const snapshot: ConfigSnapshot = { ...prev, resolved, stateSlots: { ...prev.stateSlots, endpoints: endpointSlots } };
    this.snapshot = snapshot;
    for (const written of snapshot.config.clusters) if (written.dns !== undefined) this.moveEndpoints(written, snapshot);
  }

  /** An endpoint-only update (EDS): `clusters` replace the written clusters of the same
   *  name in this snapshot, and move to their new endpoint lists (pools of endpoints that
   *  stay keep their connections). Their endpoints' slots replace the old ones. */
  applyClusterEndpoints(revision: number, clusters: readonly Cluster[], endpointSlots: EndpointSlots): void {
    const prev = this.snapshot;
    if (prev === null) return;
    const byName = new Map(clusters.map((c) => [c.name, c]));
    const slots: EndpointSlots = { ...prev.stateSlots.endpoints, ...endpointSlots };
    const config = { ...prev.config, clusters: prev.config.clusters.map((c) => byName.get(c.name) ?? c) };
    const snapshot: ConfigSnapshot = { ...prev, config, stateSlots: { ...prev.stateSlots, endpoints: slots }, endpointsRevision: revision };
    this.snapshot = snapshot;
    for (const written of clusters) this.moveEndpoints(written, snapshot);
  }

  /** Cluster `written`'s runtime moves to the endpoints `snapshot` gives it (its DNS
   *  answers, if any), with their slots and TLS material; pools of endpoints that stay are
   *  kept. */
  private moveEndpoints(written: Cluster, snapshot: ConfigSnapshot): void {
    const runtime = this.clusters.get(written.name);
    if (runtime === undefined) return;
    runtime.update(dataPlaneCluster(written, snapshot.resolved), runtime.stats, this.sharedSlots(written.name, snapshot), snapshot.tls.clusters[written.name]);
  }

  /** Rotated certificates for upstream clusters (listeners are handled by serve.ts). */
  applyTls(tls: TlsMaterialSet): void {
    if (this.snapshot !== null) this.snapshot = { ...this.snapshot, tls };
    for (const [name, cluster] of this.clusters) cluster.rotateTls(tls.clusters[name]);
  }

  listener(name: string): ListenerRuntime | undefined {
    return this.listeners.get(name);
  }

  /** Counts the outcome of one attempt at an endpoint of `cluster` (outlier detection),
   *  and tells the main thread when a consecutive-failure threshold is reached or a
   *  probation trial ended. Costs nothing for clusters without outlier detection. */
  endpointOutcome(cluster: ClusterRuntime, pool: EndpointPool, is5xx: boolean, isGateway: boolean): void {
    const od = cluster.config.outlier_detection;
    if (od === undefined) return;
    const onProbation = pool.cells.state === EndpointState.Probation;
    const counts = this.outcomeScratch;
    pool.cells.outcome(is5xx, isGateway, counts);
    let kind: EndpointEventKind | null = null;
    if (onProbation) kind = is5xx || isGateway ? 'probation_fail' : 'probation_ok';
    else if (od.consecutive_5xx > 0 && counts[0] > 0 && counts[0] % od.consecutive_5xx === 0) kind = 'consecutive_5xx';
    else if (od.consecutive_gateway_failure > 0 && counts[1] > 0 && counts[1] % od.consecutive_gateway_failure === 0) {
      kind = 'consecutive_gateway';
    }
    if (kind !== null) {
      if (kind !== 'probation_ok' && kind !== 'probation_fail') cluster.stats.count(ClusterCounter.OutlierNotified);
      this.post({ type: 'endpoint_event', endpointSlot: pool.cells.slot, kind });
    }
  }

  /** An upstream answered with x-remora-immediate-health-check-fail. */
  immediateHealthCheckFail(pool: EndpointPool): void {
    this.post({ type: 'endpoint_event', endpointSlot: pool.cells.slot, kind: 'immediate_health_check_fail' });
  }

  /** Per-endpoint pool state for the admin /clusters view. */
  clusterState(): Record<string, { endpoint: string; active: number; connections: number; idle: number; queued: number }[]> {
    const out: Record<string, { endpoint: string; active: number; connections: number; idle: number; queued: number }[]> = {};
    for (const [name, cluster] of this.clusters) {
      out[name] = cluster.pools.map((p) => ({
        endpoint: `${p.endpoint.address}:${p.endpoint.port}`,
        active: p.active,
        connections: p.connectionCount,
        idle: p.idleCount,
        queued: p.queued,
      }));
    }
    return out;
  }

  close(): void {
    clearInterval(this.sweepTimer);
    this.spans.close();
    this.grpcLogs.close();
    this.loopDelay.disable();
    for (const cluster of this.clusters.values()) cluster.close();
  }

  private readonly sweep = (): void => {
    try {
      const now = performance.now();
      for (const cluster of this.clusters.values()) cluster.sweep(now);
      this.accessLogs.flush();
      this.recorder.storeWorker(this.takeLoopDelay());
      if (this.memoryLimitBytes > 0 && this.onMemoryLimit !== null) {
        const used = getHeapStatistics().used_heap_size;
        if (used > this.memoryLimitBytes) {
          const notify = this.onMemoryLimit;
          this.onMemoryLimit = null;
          notify(Math.round(used / 2 ** 20), this.memoryLimitBytes / 2 ** 20);
        }
      }
      this.heapTrim.look();
    } catch (err) {
      this.log.error({ err }, 'pool sweep failed');
    }
  };
}

function delayUs(ns: number): number {
  return Math.max(0, Math.round((ns - 20e6) / 1000));
}
