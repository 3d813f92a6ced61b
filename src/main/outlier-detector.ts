// Outlier detection, decided on the main thread (Envoy's outlier detector): workers count
// outcomes per endpoint in shared memory and post an event when a consecutive-failure
// threshold is reached; this module decides whether to eject (max_ejection_percent),
// for how long (base_ejection_time × times ejected, capped), when an ejected endpoint
// comes back on probation, and runs success-rate ejection every interval. Decisions go
// out through `write(slot, bits, probationTokens)`; the caller publishes them to workers.

import type { Cluster, OutlierDetection } from '../config/types.js';
import type { Logger } from '../core/log.js';
import type { EndpointEventKind } from '../shared/messages.js';
import { EndpointState } from '../shared/shared-state.js';

export type EjectionReason = 'consecutive_5xx' | 'consecutive_gateway' | 'success_rate' | 'probation_failure';

interface Tracked {
  readonly slot: number;
  readonly cluster: string;
  readonly endpoint: string;
  /** Ejection count that sets the ejection time; goes down by one per healthy interval. */
  timesEjected: number;
  /** Epoch ms when the current ejection ends; 0 when not ejected. */
  ejectedUntil: number;
  probation: boolean;
  /** When probation started (trial tokens are refilled if a trial never reports back). */
  probationSince: number;
  lastReason: EjectionReason | '';
}

interface ClusterState {
  config: OutlierDetection;
  readonly endpoints: Tracked[];
  lastIntervalAt: number;
}

export interface OutlierView {
  readonly ejected: boolean;
  readonly probation: boolean;
  readonly timesEjected: number;
  readonly ejectedUntil: number;
  readonly lastReason: string;
}

/** Reads and takes per-endpoint request volumes (shared cells) for success-rate checks. */
export interface VolumeSource {
  takeVolume(slot: number): { total: number; success: number };
  resetConsecutive(slot: number): void;
}

export class OutlierDetector {
  private readonly clusters = new Map<string, ClusterState>();
  private readonly bySlot = new Map<number, Tracked>();
  /** Ejections by reason, process lifetime. */
  readonly ejections: Record<EjectionReason, number> = {
    consecutive_5xx: 0,
    consecutive_gateway: 0,
    success_rate: 0,
    probation_failure: 0,
  };
  /** Ejections refused because max_ejection_percent was reached. */
  overflows = 0;

  constructor(
    private readonly log: Logger,
    private readonly volumes: VolumeSource,
    /** Publishes an endpoint's outlier bits (Ejected / Probation) and trial tokens. */
    private readonly write: (slot: number, bits: number, probationTokens: number) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Follows a new config: endpoints that stay keep their ejection state; endpoints of
   *  clusters without outlier_detection are released. With `only`, `clusters` are the new
   *  versions of just the clusters named there (an endpoint update): the others stay as
   *  they are. */
  update(
    clusters: readonly Cluster[],
    slotOf: (cluster: string, endpoint: string) => number,
    endpointKey: (address: string, port: number) => string,
    only?: ReadonlySet<string>,
  ): void {
    const keep = new Set<number>();
    const now = this.now();
    for (const c of clusters) {
      const od = c.outlier_detection;
      if (od === undefined) continue;
      const endpoints: Tracked[] = [];
      for (const ep of c.endpoints) {
        const key = endpointKey(ep.address, ep.port);
        const slot = slotOf(c.name, key);
        keep.add(slot);
        let t = this.bySlot.get(slot);
        if (t === undefined || t.cluster !== c.name || t.endpoint !== key) {
          // A reused slot: whatever its previous endpoint's state was, the new one starts clean.
          if (t !== undefined && (t.ejectedUntil !== 0 || t.probation)) this.write(slot, 0, 0);
          t = { slot, cluster: c.name, endpoint: key, timesEjected: 0, ejectedUntil: 0, probation: false, probationSince: 0, lastReason: '' };
          this.bySlot.set(slot, t);
          this.volumes.resetConsecutive(slot);
        }
        endpoints.push(t);
      }
      const existing = this.clusters.get(c.name);
      this.clusters.set(c.name, { config: od, endpoints, lastIntervalAt: existing?.lastIntervalAt ?? now });
    }
    const detected = new Set(clusters.flatMap((c) => (c.outlier_detection !== undefined ? [c.name] : [])));
    for (const [name] of this.clusters) {
      if (!detected.has(name) && (only === undefined || only.has(name))) this.clusters.delete(name);
    }
    for (const [slot, t] of this.bySlot) {
      if (keep.has(slot) || (only !== undefined && !only.has(t.cluster))) continue;
      this.bySlot.delete(slot);
      // Still in the config (its cluster lost outlier detection): make it usable again.
      if (t.ejectedUntil !== 0 || t.probation) this.write(slot, 0, 0);
    }
  }

  /** A worker's report about an endpoint. */
  onEvent(slot: number, kind: EndpointEventKind): void {
    const t = this.bySlot.get(slot);
    if (t === undefined) return;
    const cluster = this.clusters.get(t.cluster);
    if (cluster === undefined) return;
    switch (kind) {
      case 'consecutive_5xx':
      case 'consecutive_gateway':
        if (t.ejectedUntil === 0 && !t.probation) this.eject(cluster, t, kind);
        break;
      case 'probation_fail':
        if (t.probation) this.eject(cluster, t, 'probation_failure', true);
        break;
      case 'probation_ok':
        if (t.probation) {
          t.probation = false;
          this.volumes.resetConsecutive(slot);
          this.write(slot, 0, 0);
          this.log.info({ cluster: t.cluster, endpoint: t.endpoint }, 'endpoint passed probation; healthy again');
        }
        break;
      case 'immediate_health_check_fail':
        break; // active health checking handles it
    }
  }

  /** Ends ejections that are due and runs per-interval work (success rate, decay). Call
   *  often (every 100 ms); per-cluster work runs once per interval_ms. */
  tick(): void {
    const now = this.now();
    for (const cluster of this.clusters.values()) {
      const od = cluster.config;
      for (const t of cluster.endpoints) {
        if (t.ejectedUntil !== 0 && now >= t.ejectedUntil) {
          t.ejectedUntil = 0;
          t.probation = true;
          t.probationSince = now;
          this.volumes.resetConsecutive(t.slot);
          this.write(t.slot, EndpointState.Probation, od.probation_requests);
          this.log.info({ cluster: t.cluster, endpoint: t.endpoint, trials: od.probation_requests }, 'ejection ended; endpoint on probation');
        }
      }
      if (now - cluster.lastIntervalAt < od.interval_ms) continue;
      cluster.lastIntervalAt = now;
      for (const t of cluster.endpoints) {
        if (t.ejectedUntil === 0 && !t.probation && t.timesEjected > 0) t.timesEjected--;
        // A trial that never reported back (its client went away) must not strand the
        // endpoint on probation: hand out the trials again.
        if (t.probation && now - t.probationSince >= od.interval_ms) {
          t.probationSince = now;
          this.write(t.slot, EndpointState.Probation, od.probation_requests);
        }
      }
      this.successRate(cluster);
    }
  }

  view(slot: number): OutlierView | null {
    const t = this.bySlot.get(slot);
    if (t === undefined) return null;
    return {
      ejected: t.ejectedUntil !== 0,
      probation: t.probation,
      timesEjected: t.timesEjected,
      ejectedUntil: t.ejectedUntil,
      lastReason: t.lastReason,
    };
  }

  /** Endpoints ejected right now, per cluster. */
  activeEjections(cluster: string): number {
    const c = this.clusters.get(cluster);
    return c === undefined ? 0 : c.endpoints.filter((t) => t.ejectedUntil !== 0).length;
  }

  private eject(cluster: ClusterState, t: Tracked, reason: EjectionReason, force = false): void {
    const od = cluster.config;
    const total = cluster.endpoints.length;
    const ejected = cluster.endpoints.filter((e) => e.ejectedUntil !== 0).length;
    // Envoy: no ejection once max_ejection_percent is reached, but one host may always be
    // ejected. A failed probation re-ejects regardless (the endpoint was not in service).
    if (!force && ejected > 0 && (100 * ejected) / total >= od.max_ejection_percent) {
      this.overflows++;
      this.log.warn({ cluster: t.cluster, endpoint: t.endpoint, reason, ejected, total }, 'not ejecting: max_ejection_percent reached');
      return;
    }
    t.timesEjected++;
    t.probation = false;
    const ms = Math.min(od.base_ejection_time_ms * t.timesEjected, Math.max(od.max_ejection_time_ms, od.base_ejection_time_ms));
    t.ejectedUntil = this.now() + ms;
    t.lastReason = reason;
    this.ejections[reason]++;
    this.write(t.slot, EndpointState.Ejected, 0);
    this.log.warn({ cluster: t.cluster, endpoint: t.endpoint, reason, timesEjected: t.timesEjected, ejectionMs: ms }, 'endpoint ejected');
  }

  /** Envoy's success-rate ejection: among endpoints with enough requests this interval
   *  (and only when enough such endpoints exist), eject those whose success rate is below
   *  mean − stdev_factor × stdev. */
  private successRate(cluster: ClusterState): void {
    const od = cluster.config;
    const sample: { t: Tracked; rate: number }[] = [];
    for (const t of cluster.endpoints) {
      const { total, success } = this.volumes.takeVolume(t.slot);
      if (t.ejectedUntil !== 0 || t.probation) continue;
      if (total >= od.success_rate_request_volume) sample.push({ t, rate: (100 * success) / total });
    }
    if (od.success_rate_minimum_hosts === 0 || sample.length < od.success_rate_minimum_hosts) return;
    const mean = sample.reduce((a, s) => a + s.rate, 0) / sample.length;
    const variance = sample.reduce((a, s) => a + (s.rate - mean) ** 2, 0) / sample.length;
    const threshold = mean - od.success_rate_stdev_factor * Math.sqrt(variance);
    for (const s of sample) {
      if (s.rate < threshold) this.eject(cluster, s.t, 'success_rate');
    }
  }
}
