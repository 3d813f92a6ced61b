// A cluster as one worker sees it: its endpoints' connection pools and its load
// balancer. Pools survive config updates for endpoints that stay (by address:port), so
// a reload does not drop warm keep-alive connections.

import type { Cluster as ClusterConfig } from '../config/types.js';
import type { ClusterStats } from '../stats/recorder.js';
import { createLoadBalancer, type LoadBalancer } from './load-balancer.js';
import { EndpointPool, endpointKey, type PoolOptions } from './pool.js';

export class ClusterRuntime {
  pools: EndpointPool[] = [];
  private lb: LoadBalancer;

  constructor(
    public config: ClusterConfig,
    public stats: ClusterStats,
  ) {
    this.lb = createLoadBalancer(config.lb_policy);
    this.pools = config.endpoints.map((ep) => new EndpointPool(ep, poolOptions(config), stats));
  }

  get name(): string {
    return this.config.name;
  }

  /** Picks the endpoint for a request; null when the cluster has none. */
  pick(): EndpointPool | null {
    const pools = this.pools;
    if (pools.length === 0) return null;
    return pools[this.lb.pick(pools)];
  }

  /** Moves to a new definition of the same-named cluster. */
  update(config: ClusterConfig, stats: ClusterStats): void {
    this.stats = stats;
    if (config.lb_policy !== this.config.lb_policy) this.lb = createLoadBalancer(config.lb_policy);
    const options = poolOptions(config);
    const old = new Map(this.pools.map((p) => [endpointKey(p.endpoint.address, p.endpoint.port), p]));
    this.pools = config.endpoints.map((ep) => {
      const key = endpointKey(ep.address, ep.port);
      const pool = old.get(key);
      if (pool === undefined) return new EndpointPool(ep, options, stats);
      old.delete(key);
      pool.update(options, stats);
      return pool;
    });
    for (const gone of old.values()) gone.close();
    this.config = config;
  }

  sweep(now: number): void {
    for (const pool of this.pools) pool.sweep(now);
  }

  close(): void {
    for (const pool of this.pools) pool.close();
  }
}

function poolOptions(config: ClusterConfig): PoolOptions {
  return {
    connectTimeoutMs: config.connect_timeout_ms,
    idleTimeoutMs: config.idle_timeout_ms,
    maxConnections: config.max_connections_per_endpoint,
  };
}
