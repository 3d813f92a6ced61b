// The main thread's side of the shared resilience state: it owns the SharedArrayBuffer,
// hands out slots by name (endpoints, rate-limit buckets) so state survives reloads,
// fills new token buckets, runs the outlier detector and the active health checker, and
// is the single writer of every endpoint state word (health bits | outlier bits). It
// also builds the per-cluster view for /clusters and the resilience metrics.

import type { Cluster, EndpointSlots, RemoraConfig, TlsMaterial } from '../config/types.js';
import type { Logger } from '../core/log.js';
import { allRateLimits, initRateLimitBucket } from '../filters/rate-limit.js';
import { MAX_BUCKETS, MAX_ENDPOINTS } from '../shared/limits.js';
import type { FromWorker } from '../shared/messages.js';
import {
  CLUSTER_CELLS,
  ClusterCell,
  ClusterResources,
  EndpointCell,
  EndpointState,
  EndpointStateWriter,
  GlobalCell,
  SHARED_LAYOUT,
} from '../shared/shared-state.js';
import { SlotRegistry } from '../shared/stats-layout.js';
import { endpointKey } from '../upstream/pool.js';
import { retryLimit } from '../upstream/retry-policy.js';
import { HealthChecker, type EndpointHealthView } from './health-checker.js';
import { OutlierDetector } from './outlier-detector.js';

/** Id space for keyed rate limits (only hashed into the per-key table, no cells). */
const MAX_KEYED_LIMITS = 1 << 20;
const TICK_MS = 100;

export interface StateSlots {
  readonly endpoints: EndpointSlots;
  readonly buckets: Readonly<Record<string, number>>;
}

/** `cluster|address:port`: an endpoint's slot name. */
export function endpointSlotName(cluster: string, key: string): string {
  return `${cluster}|${key}`;
}

/** Slot names of every endpoint of `clusters`. */
function slotNames(clusters: readonly Cluster[]): string[] {
  return clusters.flatMap((c) => c.endpoints.map((ep) => endpointSlotName(c.name, endpointKey(ep.address, ep.port))));
}

/** Each cluster's endpoints with their slots (given by name in `slots`). */
function slotsByCluster(clusters: readonly Cluster[], slots: Readonly<Record<string, number>>): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const c of clusters) {
    const own: Record<string, number> = {};
    for (const ep of c.endpoints) {
      const key = endpointKey(ep.address, ep.port);
      own[key] = slots[endpointSlotName(c.name, key)];
    }
    out[c.name] = own;
  }
  return out;
}

export class Resilience {
  readonly buffer = SHARED_LAYOUT.allocate();
  readonly cells = new Int32Array(this.buffer);
  /** Rate-limit fill periods count from here (all workers use the same epoch). */
  readonly epochMs = Date.now();
  readonly writer = new EndpointStateWriter(this.cells);
  readonly detector: OutlierDetector;
  readonly checker: HealthChecker;
  private readonly endpointSlots = new SlotRegistry(MAX_ENDPOINTS, (slot) => {
    // A reused slot starts clean: shared cells and the bits remembered here.
    this.writer.clear(slot);
    this.healthBits.delete(slot);
    this.outlierBits.delete(slot);
  });
  private readonly bucketSlots = new SlotRegistry(MAX_BUCKETS);
  private readonly keyedSlots = new SlotRegistry(MAX_KEYED_LIMITS);
  /** Health-check bits and outlier bits per endpoint slot; the state word is their OR. */
  private readonly healthBits = new Map<number, number>();
  private readonly outlierBits = new Map<number, number>();
  /** Endpoint slot → its cluster's slot (for the health generation bump). */
  private readonly clusterOfEndpoint = new Map<number, number>();
  private clusterSlots: Readonly<Record<string, number>> = {};
  private endpointSlotMap: EndpointSlots = {};
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly log: Logger) {
    this.detector = new OutlierDetector(log, this.writer, (slot, bits, tokens) => {
      this.outlierBits.set(slot, bits);
      this.publish(slot, tokens);
    });
    this.checker = new HealthChecker(
      log,
      (target, verdict) => {
        this.healthBits.set(target.slot, verdict === 'healthy' ? 0 : EndpointState.Unhealthy);
        this.publish(target.slot, -1);
      },
      (cluster) => this.trafficSeen.has(cluster),
    );
    this.timer = setInterval(() => {
      try {
        this.detector.tick();
        this.sampleTraffic();
      } catch (err) {
        this.log.error({ err }, 'outlier detection tick failed');
      }
    }, TICK_MS);
    this.timer.unref();
  }

  /** Clusters that have had traffic, for the health checks' no_traffic_interval (Envoy:
   *  the cluster made an upstream connection). Sampled every tick from the cluster's
   *  connection and request gauges; pooled connections stay open for idle_timeout_ms,
   *  so a 100 ms sample sees all but connections that close at once. */
  private readonly trafficSeen = new Set<string>();

  private sampleTraffic(): void {
    for (const name in this.clusterSlots) {
      if (this.trafficSeen.has(name)) continue;
      const base = SHARED_LAYOUT.cluster(this.clusterSlots[name]);
      if (Atomics.load(this.cells, base + ClusterCell.CxActive) > 0 || Atomics.load(this.cells, base + ClusterCell.RqActive) > 0) {
        this.trafficSeen.add(name);
        this.checker.trafficStarted(name);
      }
    }
  }

  /** Zeroes a cluster's shared cells before its slot goes to another cluster name. */
  clearClusterSlot(slot: number): void {
    const base = SHARED_LAYOUT.cluster(slot);
    for (let i = 0; i < CLUSTER_CELLS; i++) Atomics.store(this.cells, base + i, 0);
  }

  /** Slots for a config about to be applied: endpoints and rate-limit buckets keep
   *  theirs by name; new buckets start full. */
  assign(config: RemoraConfig): StateSlots {
    const endpoints = slotsByCluster(config.clusters, this.endpointSlots.assign(slotNames(config.clusters)));
    const limits = allRateLimits(config.listeners);
    const knownBuckets = new Set(this.bucketSlots.used.keys());
    const plain = limits.filter((l) => l.limit.key === undefined);
    const bucketSlots = this.bucketSlots.assign(plain.map((l) => l.slotName));
    const now = Date.now();
    for (const { slotName, limit } of plain) {
      if (!knownBuckets.has(slotName)) initRateLimitBucket(this.cells, bucketSlots[slotName], limit, this.epochMs, now);
    }
    const keyedSlots = this.keyedSlots.assign(limits.filter((l) => l.limit.key !== undefined).map((l) => l.slotName));
    return { endpoints, buckets: { ...bucketSlots, ...keyedSlots } };
  }

  /** Follows an applied config: health checks and outlier detection start or stop. */
  applied(
    config: RemoraConfig,
    clusterSlots: Readonly<Record<string, number>>,
    slots: StateSlots,
    tls: Readonly<Record<string, TlsMaterial>> = {},
  ): void {
    this.clusterSlots = clusterSlots;
    this.endpointSlotMap = slots.endpoints;
    const live = new Set<number>();
    for (const c of config.clusters) {
      const own = slots.endpoints[c.name] ?? {};
      for (const ep of c.endpoints) live.add(this.follow(c, own[endpointKey(ep.address, ep.port)]));
    }
    for (const slot of [...this.healthBits.keys()]) {
      if (live.has(slot)) continue;
      this.healthBits.delete(slot);
      this.outlierBits.delete(slot);
      this.clusterOfEndpoint.delete(slot);
    }
    const slotOf = (cluster: string, key: string): number => slots.endpoints[cluster][key];
    this.detector.update(config.clusters, slotOf, endpointKey);
    this.checker.update(config.clusters, (cluster, address, port) => slotOf(cluster, endpointKey(address, port)), tls);
  }

  /**
   * Endpoint-only changes of some clusters (EDS), `before` → `after` (data-plane form,
   * same names): their endpoints get slots (those that stay keep theirs), health checks
   * and outlier detection follow for them alone. Returns the state slots of the config
   * after the change; the work is proportional to the clusters changed.
   */
  endpointsChanged(
    before: readonly Cluster[],
    after: readonly Cluster[],
    previous: StateSlots,
    tls: Readonly<Record<string, TlsMaterial>> = {},
  ): StateSlots {
    const changed = slotsByCluster(after, this.endpointSlots.replace(slotNames(before), slotNames(after)));
    const endpoints: EndpointSlots = { ...previous.endpoints, ...changed };
    const slots: StateSlots = { ...previous, endpoints };
    this.endpointSlotMap = endpoints;
    const live = new Set<number>();
    for (const c of after) for (const slot of Object.values(changed[c.name])) live.add(this.follow(c, slot));
    for (const c of before) {
      for (const slot of Object.values(previous.endpoints[c.name] ?? {})) {
        if (live.has(slot)) continue;
        this.healthBits.delete(slot);
        this.outlierBits.delete(slot);
        this.clusterOfEndpoint.delete(slot);
      }
    }
    const only = new Set(after.map((c) => c.name));
    const slotOf = (cluster: string, key: string): number => endpoints[cluster][key];
    this.detector.update(after, slotOf, endpointKey, only);
    this.checker.update(after, (cluster, address, port) => slotOf(cluster, endpointKey(address, port)), tls, only);
    return slots;
  }

  /** An endpoint of `c` in a config being applied: its cluster noted, and its health bits
   *  set as the cluster's health checking says (Pending until a first check). Returns
   *  `slot`. */
  private follow(c: Cluster, slot: number): number {
    this.clusterOfEndpoint.set(slot, this.clusterSlots[c.name]);
    const checked = c.health_check !== undefined;
    if (!checked && (this.healthBits.get(slot) ?? 0) !== 0) {
      this.healthBits.set(slot, 0);
      this.publish(slot, -1);
    } else if (checked && !this.healthBits.has(slot)) {
      // Pending until its first check (Envoy); panic mode covers a cold start.
      this.healthBits.set(slot, EndpointState.Pending);
      this.publish(slot, -1);
    }
    return slot;
  }

  /** Rotated TLS files of clusters: health checks use them on their next connection. */
  tlsRotated(tls: Readonly<Record<string, TlsMaterial>>): void {
    this.checker.rotateTls(tls);
  }

  /** Handles what workers report about endpoints. */
  onWorkerMessage(msg: FromWorker): void {
    if (msg.type !== 'endpoint_event') return;
    if (msg.kind === 'immediate_health_check_fail') {
      this.checker.failNow(msg.endpointSlot, 'upstream sent x-remora-immediate-health-check-fail');
      return;
    }
    this.detector.onEvent(msg.endpointSlot, msg.kind);
  }

  /** Writes an endpoint's state word (`tokens` ≥ 0 also sets its probation trials) and
   *  tells workers of its cluster to rebuild their healthy lists. */
  private publish(slot: number, tokens: number): void {
    const state = (this.healthBits.get(slot) ?? 0) | (this.outlierBits.get(slot) ?? 0);
    const trials = tokens >= 0 ? tokens : this.writer.read(slot, EndpointCell.ProbationTokens);
    this.writer.setState(slot, state, trials);
    const clusterSlot = this.clusterOfEndpoint.get(slot);
    if (clusterSlot !== undefined) new ClusterResources(this.cells, clusterSlot).bumpHealthGeneration();
  }

  /** /clusters: breaker resources of a cluster, process-wide. */
  breakers(cluster: Cluster): Record<string, { used: number; max: number; remaining: number; open: boolean }> {
    const slot = this.clusterSlots[cluster.name];
    const r = new ClusterResources(this.cells, slot);
    const cb = cluster.circuit_breakers;
    const retryMax = retryLimit(cb, r.requests.used + r.pending.used);
    const entry = (used: number, max: number) => ({ used, max, remaining: Math.max(0, max - used), open: used >= max });
    return {
      connections: entry(r.connections.used, cb.max_connections),
      pending_requests: entry(r.pending.used, cb.max_pending_requests),
      requests: entry(r.requests.used, cb.max_requests),
      retries: entry(r.retries.used, retryMax),
    };
  }

  /** One word for an endpoint's state: healthy, ejected, unhealthy, pending_first_check,
   *  probation (or unknown for an endpoint not in the config). */
  endpointState(cluster: string, address: string, port: number): string {
    const slot = this.endpointSlotMap[cluster]?.[endpointKey(address, port)];
    if (slot === undefined) return 'unknown';
    const state = this.writer.state(slot);
    if ((state & EndpointState.Ejected) !== 0) return 'ejected';
    if ((state & EndpointState.Unhealthy) !== 0) return 'unhealthy';
    if ((state & EndpointState.Pending) !== 0) return 'pending_first_check';
    if ((state & EndpointState.Probation) !== 0) return 'probation';
    return 'healthy';
  }

  /** Health-check results by endpoint slot (one call per admin request). */
  healthChecks(): Map<number, EndpointHealthView> {
    return new Map(this.checker.view().map((v) => [v.slot, v]));
  }

  /** /clusters: health of one endpoint; `checks` from healthChecks(). */
  endpointHealth(cluster: string, address: string, port: number, checks: Map<number, EndpointHealthView>): Record<string, unknown> {
    const slot = this.endpointSlotMap[cluster]?.[endpointKey(address, port)];
    if (slot === undefined) return { health: 'unknown' };
    const outlier = this.detector.view(slot);
    const check = checks.get(slot);
    return {
      health: this.endpointState(cluster, address, port),
      outlier: outlier === null
        ? null
        : {
            ejected: outlier.ejected,
            probation: outlier.probation,
            times_ejected: outlier.timesEjected,
            ejected_for_ms: outlier.ejected ? Math.max(0, outlier.ejectedUntil - Date.now()) : 0,
            last_ejection_reason: outlier.lastReason || null,
          },
      health_check: check === undefined
        ? null
        : {
            healthy: check.healthy,
            last_status: check.lastStatus,
            last_error: check.lastError || null,
            last_checked_at: check.lastCheckedAt > 0 ? new Date(check.lastCheckedAt).toISOString() : null,
            consecutive_passes: check.consecutivePasses,
            consecutive_failures: check.consecutiveFailures,
          },
    };
  }

  /** Per-key rate-limit table counters. */
  keyedTable(): { entries: number; capacity: number; inserts: number; evictions: number } {
    const g = SHARED_LAYOUT.globalStart;
    return {
      entries: Atomics.load(this.cells, g + GlobalCell.KeyedLive),
      capacity: SHARED_LAYOUT.keyedEntries,
      inserts: Atomics.load(this.cells, g + GlobalCell.KeyedInserts),
      evictions: Atomics.load(this.cells, g + GlobalCell.KeyedEvictions),
    };
  }

  stop(): void {
    clearInterval(this.timer);
    this.checker.stop();
  }
}
