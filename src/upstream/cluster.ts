// A cluster as one worker sees it: its endpoints' connection pools, its load balancer,
// and its view of the process-wide shared state (circuit-breaker resources, endpoint
// health). Pools survive config updates for endpoints that stay (by address:port), so a
// reload does not drop warm keep-alive connections.
//
// Health-aware picking: the main thread writes endpoint states (ejected, unhealthy,
// probation) and bumps the cluster's health generation; a worker rebuilds its healthy
// list only when the generation moved, so a pick costs one Atomics.load in the steady
// state. Endpoints on probation get their trial requests first; when fewer than
// panic_threshold_percent of endpoints are healthy, picks spread over all of them.
// With transport_socket_matches, each endpoint's pool is reached over the cluster's TLS
// or in plaintext, as src/upstream/transport-match.ts decides for it.

import type { Cluster as ClusterConfig, TlsMaterial } from '../config/types.js';
import { reportError } from '../core/report.js';
import { ClusterResources, EndpointCells, EndpointState } from '../shared/shared-state.js';
import type { ClusterStats } from '../stats/recorder.js';
import { createLoadBalancer, type LoadBalancer } from './load-balancer.js';
import { EndpointPool, endpointKey, type PoolOptions } from './pool.js';
import { endpointUsesTls } from './transport-match.js';
import { ClusterTls } from './upstream-tls.js';
import { keepaliveDelayMs } from '../core/tcp-keepalive.js';

/** Where a worker finds the shared cells of a cluster and of its endpoints. */
export interface SharedSlots {
  readonly cells: Int32Array;
  readonly clusterSlot: number;
  /** Endpoint slot by `address:port`. */
  endpointSlot(key: string): number;
}

export class ClusterRuntime {
  pools: EndpointPool[] = [];
  resources: ClusterResources;
  private lb: LoadBalancer;
  private healthy: EndpointPool[] = [];
  private probation: EndpointPool[] = [];
  private panic = false;
  private seenGeneration = -1;
  private tls: ClusterTls | null;

  constructor(
    public config: ClusterConfig,
    public stats: ClusterStats,
    shared: SharedSlots,
    tlsMaterial?: TlsMaterial,
  ) {
    this.lb = createLoadBalancer(config.lb_policy);
    this.resources = new ClusterResources(shared.cells, shared.clusterSlot);
    this.tls = loadTls(config, tlsMaterial, null);
    const options = transportOptions(config, this.tls);
    this.pools = config.endpoints.map((ep) => {
      const key = endpointKey(ep.address, ep.port);
      return new EndpointPool(ep, options(ep), stats, this.resources, new EndpointCells(shared.cells, shared.endpointSlot(key)));
    });
  }

  get name(): string {
    return this.config.name;
  }

  /** Picks the endpoint for a request, avoiding those in `avoid` (the endpoints earlier
   *  attempts of a retried request went to, Envoy's previous_hosts) when another is
   *  available; null when no endpoint may be used (503 UH). When every endpoint was tried,
   *  the balancer's pick stands. */
  pick(avoid: readonly EndpointPool[] | null = null): EndpointPool | null {
    if (this.resources.healthGeneration !== this.seenGeneration) this.rebuild();
    let list = this.pools;
    if (!this.panic) {
      const probation = this.probation;
      for (let i = 0; i < probation.length; i++) {
        if ((avoid === null || !avoid.includes(probation[i])) && probation[i].cells.takeTrial()) return probation[i];
      }
      list = this.healthy;
    }
    const n = list.length;
    if (n === 0) return null;
    const first = this.lb.pick(list);
    if (avoid === null || n === 1) return list[first];
    // The next endpoint in the list that was not tried yet.
    for (let step = 0, i = first; step < n; step++, i = i + 1 === n ? 0 : i + 1) {
      if (!avoid.includes(list[i])) return list[i];
    }
    return list[first];
  }

  /** True when the cluster balances over all endpoints because too few are healthy. */
  get inPanic(): boolean {
    if (this.resources.healthGeneration !== this.seenGeneration) this.rebuild();
    return this.panic;
  }

  /** Moves to a new definition of the same-named cluster. */
  update(config: ClusterConfig, stats: ClusterStats, shared: SharedSlots, tlsMaterial?: TlsMaterial): void {
    this.stats = stats;
    this.resources = new ClusterResources(shared.cells, shared.clusterSlot);
    if (config.lb_policy !== this.config.lb_policy) this.lb = createLoadBalancer(config.lb_policy);
    this.tls = loadTls(config, tlsMaterial, this.tls);
    const options = transportOptions(config, this.tls);
    const old = new Map(this.pools.map((p) => [endpointKey(p.endpoint.address, p.endpoint.port), p]));
    this.pools = config.endpoints.map((ep) => {
      const key = endpointKey(ep.address, ep.port);
      const cells = new EndpointCells(shared.cells, shared.endpointSlot(key));
      const pool = old.get(key);
      const o = options(ep);
      // A pool keeps its HTTP version choice and its transport: a change of either (the
      // cluster's protocol or tls, the endpoint's transport_socket_match) gets a new pool.
      if (pool === undefined || pool.mode !== o.mode || pool.secure !== (o.tls !== null && o.tls !== undefined)) {
        return new EndpointPool(ep, o, stats, this.resources, cells);
      }
      old.delete(key);
      pool.update(o, stats, this.resources, cells, ep);
      return pool;
    });
    for (const gone of old.values()) gone.close();
    this.config = config;
    this.seenGeneration = -1;
  }

  /** Rotated certificates: new connections use them; open pooled ones keep theirs. */
  rotateTls(material: TlsMaterial | undefined): void {
    const tls = loadTls(this.config, material, this.tls);
    if (tls === this.tls) return;
    this.tls = tls;
    const options = transportOptions(this.config, tls);
    for (const pool of this.pools) pool.update(options(pool.endpoint), this.stats, this.resources, pool.cells);
  }

  sweep(now: number): void {
    for (const pool of this.pools) pool.sweep(now);
  }

  close(): void {
    for (const pool of this.pools) pool.close();
  }

  private rebuild(): void {
    // Read the generation first: a change made while rebuilding bumps it again and the
    // next pick rebuilds once more.
    this.seenGeneration = this.resources.healthGeneration;
    const healthy: EndpointPool[] = [];
    const probation: EndpointPool[] = [];
    for (const pool of this.pools) {
      const state = pool.cells.state;
      if (state === 0) healthy.push(pool);
      else if (state === EndpointState.Probation) probation.push(pool);
    }
    this.healthy = healthy;
    this.probation = probation;
    const threshold = this.config.panic_threshold_percent;
    this.panic = threshold > 0 && healthy.length * 100 < threshold * this.pools.length;
  }
}

/** The cluster's TLS context from the material the main thread read and checked. The
 *  current one is kept while its settings and files are unchanged (its pools keep their
 *  TLS sessions); a failure is logged loudly and every connection of the cluster then
 *  fails with it (503 UF). */
function loadTls(config: ClusterConfig, material: TlsMaterial | undefined, current: ClusterTls | null): ClusterTls | null {
  if (config.tls === undefined) return null;
  if (current !== null && current.config === config.tls && material !== undefined && current.revision === material.revision) return current;
  const tls = new ClusterTls(config.name, config.tls, material);
  if (tls.error !== null) reportError(new Error(tls.error), `cluster "${config.name}" TLS settings`);
  return tls;
}

/** The pool options of each endpoint: over the cluster's TLS, or (transport_socket_matches
 *  said so) in plaintext. Both are built once per apply. */
function transportOptions(config: ClusterConfig, tls: ClusterTls | null): (ep: ClusterConfig['endpoints'][number]) => PoolOptions {
  const secure = poolOptions(config, tls);
  if (tls === null || config.transport_socket_matches === undefined) return () => secure;
  const plain = poolOptions(config, null);
  return (ep) => (endpointUsesTls(config, ep) ? secure : plain);
}

function poolOptions(config: ClusterConfig, tls: ClusterTls | null): PoolOptions {
  return {
    tls,
    connectTimeoutMs: config.connect_timeout_ms,
    keepaliveMs: keepaliveDelayMs(config.tcp_keepalive),
    maxRequestsPerConnection: config.max_requests_per_connection,
    idleTimeoutMs: config.idle_timeout_ms,
    maxConnections: config.max_connections_per_endpoint,
    maxClusterConnections: config.circuit_breakers.max_connections,
    maxPending: config.circuit_breakers.max_pending_requests,
    // protocol auto: ALPN decides over TLS; plaintext has no way to ask, so HTTP/1.1.
    mode: config.protocol === 'auto' ? (tls !== null ? 'alpn' : 'http1') : config.protocol,
    http2: config.protocol !== 'http1' ? {
      maxConcurrentStreams: config.http2_protocol_options.max_concurrent_streams,
      initialStreamWindow: config.http2_protocol_options.initial_stream_window_size,
      initialConnectionWindow: config.http2_protocol_options.initial_connection_window_size,
      keepalive: config.http2_protocol_options.connection_keepalive ?? null,
      maxRequests: config.max_requests_per_connection,
    } : null,
  };
}
