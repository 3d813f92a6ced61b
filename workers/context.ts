// Per-worker state the request pipeline reads: the compiled config snapshot (route
// tables, cluster runtimes), the logger and this worker's counters. A new snapshot
// replaces the tables in one assignment; requests in flight keep the route they matched.

import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { ConfigSnapshot } from '../src/config/types.js';
import type { Logger } from '../src/core/log.js';
import { RouteTable } from '../src/router/route-table.js';
import { ClusterRuntime } from '../src/upstream/cluster.js';
import type { Exchange } from './exchange.js';

export interface WorkerStats {
  requests: number;
  responses2xx: number;
  responses3xx: number;
  responses4xx: number;
  responses5xx: number;
  downstreamResets: number;
  keepAliveRaceRetries: number;
  flags: Record<string, number>;
}

export class WorkerContext {
  version = 0;
  inflight = 0;
  readonly clusters = new Map<string, ClusterRuntime>();
  private tables = new Map<string, RouteTable<ClusterRuntime>>();
  readonly stats: WorkerStats = {
    requests: 0,
    responses2xx: 0,
    responses3xx: 0,
    responses4xx: 0,
    responses5xx: 0,
    downstreamResets: 0,
    keepAliveRaceRetries: 0,
    flags: {},
  };
  private readonly sweepTimer: NodeJS.Timeout;
  /** Event-loop delay of this worker (ns), sampled every 20 ms; shown by /workers. */
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });

  constructor(
    readonly slot: number,
    readonly log: Logger,
  ) {
    this.sweepTimer = setInterval(this.sweep, 1000);
    this.sweepTimer.unref();
    this.loopDelay.enable();
  }

  /** Event-loop delay since the last call, in microseconds. */
  takeLoopDelay(): { p50_us: number; p99_us: number; max_us: number } {
    const h = this.loopDelay;
    const out = {
      p50_us: Math.round(h.percentile(50) / 1000),
      p99_us: Math.round(h.percentile(99) / 1000),
      max_us: Math.round(h.max / 1000),
    };
    h.reset();
    return out;
  }

  /** Compiles and switches to a snapshot. Clusters keep their pools across versions. */
  apply(snapshot: ConfigSnapshot): void {
    const config = snapshot.config;
    const seen = new Set<string>();
    for (const c of config.clusters) {
      seen.add(c.name);
      const existing = this.clusters.get(c.name);
      if (existing) existing.update(c);
      else this.clusters.set(c.name, new ClusterRuntime(c));
    }
    const resolve = (name: string): ClusterRuntime => {
      const cluster = this.clusters.get(name);
      if (cluster === undefined) throw new Error(`cluster ${name} missing from snapshot`);
      return cluster;
    };
    const tables = new Map<string, RouteTable<ClusterRuntime>>();
    for (const l of config.listeners) tables.set(l.name, new RouteTable(l, resolve));
    this.tables = tables;
    for (const [name, cluster] of this.clusters) {
      if (!seen.has(name)) {
        cluster.close();
        this.clusters.delete(name);
      }
    }
    this.version = snapshot.version;
  }

  table(listener: string): RouteTable<ClusterRuntime> | undefined {
    return this.tables.get(listener);
  }

  /** Counts a finished exchange. */
  record(ex: Exchange): void {
    const s = this.stats;
    s.requests++;
    const cls = (ex.status / 100) | 0;
    if (cls === 2) s.responses2xx++;
    else if (cls === 3) s.responses3xx++;
    else if (cls === 4) s.responses4xx++;
    else if (cls === 5) s.responses5xx++;
    if (ex.flag !== '-') s.flags[ex.flag] = (s.flags[ex.flag] ?? 0) + 1;
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
    this.loopDelay.disable();
    for (const cluster of this.clusters.values()) cluster.close();
  }

  private readonly sweep = (): void => {
    try {
      const now = performance.now();
      for (const cluster of this.clusters.values()) cluster.sweep(now);
    } catch (err) {
      this.log.error({ err }, 'pool sweep failed');
    }
  };
}
