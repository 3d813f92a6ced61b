// Active HTTP health checks, run by the main thread (Envoy's semantics): every endpoint
// of a cluster with `health_check` gets `GET <path>` over one persistent keep-alive
// connection. The first result decides at once; after that a status outside
// expected_statuses and retriable_statuses makes a healthy endpoint unhealthy at once,
// while timeouts, network errors and retriable statuses must reach unhealthy_threshold
// in a row; an unhealthy endpoint turns healthy after healthy_threshold passes in a row.
// The wait before each check follows Envoy's intervals (no_traffic, unhealthy, the two
// edge intervals, jitter). Verdict changes go to onChange (the caller publishes them to
// the workers). A cluster with `tls` is checked over TLS with its own settings (CA,
// client certificate, SNI, expected SANs), except the endpoints its
// transport_socket_matches send plaintext; rotated certificates reach the checks' next
// connections. One probe (the GET itself) is health-probe.ts; a cluster's check may
// instead be a gRPC one (grpc-health-probe.ts) or a TCP one (tcp-health-probe.ts).

import http from 'node:http';
import https from 'node:https';
import type { Cluster, HealthCheck, TlsMaterial, UpstreamEndpoint, UpstreamTlsConfig } from '../config/types.js';
import type { Logger } from '../core/log.js';
import { endpointKey } from '../upstream/pool.js';
import { endpointUsesTls } from '../upstream/transport-match.js';
import { clientTlsOptions, H2_ALPN, HTTP1_ALPN } from '../upstream/upstream-tls.js';
import { probe, statusExpected, type ProbeResult, type RunningProbe } from './health-probe.js';
import { grpcProbe } from './grpc-health-probe.js';
import { tcpProbe } from './tcp-health-probe.js';

export interface HealthTarget {
  /** Shared-state endpoint slot (stable for `cluster|address:port`). */
  readonly slot: number;
  readonly cluster: string;
  readonly address: string;
  readonly port: number;
  /** A DNS cluster's endpoint: the host name written (TLS SNI), the address to dial. */
  readonly hostname?: string;
  readonly dial?: string;
  /** Checked in plaintext although the cluster has `tls` (its transport_socket_matches
   *  say so for this endpoint: src/upstream/transport-match.ts). */
  readonly plaintext?: boolean;
}

export type HealthVerdict = 'healthy' | 'unhealthy';

export interface EndpointHealthView {
  readonly slot: number;
  readonly cluster: string;
  /** `address:port` (IPv6 in brackets). */
  readonly endpoint: string;
  /** null until the first result. */
  readonly healthy: boolean | null;
  /** Status of the last response; 0 = none (no check yet, or it got no response). */
  readonly lastStatus: number;
  /** Why the last check failed; '' when it passed or none ran. */
  readonly lastError: string;
  /** Epoch ms of the last finished check; 0 = none. */
  readonly lastCheckedAt: number;
  readonly consecutivePasses: number;
  readonly consecutiveFailures: number;
  /** Checks finished. */
  readonly checks: number;
}

export interface HealthCheckStats {
  /** Checks started. */
  readonly attempts: number;
  readonly successes: number;
  /** failures = timeouts + networkErrors + badStatus. */
  readonly failures: number;
  readonly timeouts: number;
  readonly networkErrors: number;
  readonly badStatus: number;
  /** Verdicts reported through onChange (first results included). */
  readonly changes: number;
}

/** One checked endpoint. */
interface Checked {
  readonly target: HealthTarget;
  readonly key: string;
  /** Replaced by update(); a check reads it when it starts. */
  settings: HealthCheck;
  /** Replaced when the cluster's TLS settings or files change. */
  agent: http.Agent;
  /** The TLS settings and material the agent was made with; null for plain HTTP. */
  tls: { readonly config: UpstreamTlsConfig; readonly revision: number; readonly grpc: boolean } | null;
  /** The next check's timer, or null while a check runs (or after removal). */
  timer: NodeJS.Timeout | null;
  /** The running check, to cancel on removal. */
  probe: RunningProbe | null;
  removed: boolean;
  healthy: boolean | null;
  lastStatus: number;
  lastError: string;
  lastCheckedAt: number;
  passes: number;
  failures: number;
  checks: number;
}

/** The first check of a new endpoint waits a random 0..min(interval, this) ms. */
const MAX_FIRST_JITTER_MS = 100;

export class HealthChecker {
  private readonly checked = new Map<number, Checked>();
  private readonly firstRoundWaiters: (() => void)[] = [];
  /** A ref'd timer held while someone awaits firstRound(): the checks' own timers and
   *  sockets are unref'd, and the awaited promise must not be dropped by an exit. */
  private firstRoundHold: NodeJS.Timeout | null = null;
  private stopped = false;
  /** The clusters of the last update (for rotateTls). */
  private clusters: readonly Cluster[] = [];
  private attempts = 0;
  private successes = 0;
  private timeouts = 0;
  private networkErrors = 0;
  private badStatus = 0;
  private changes = 0;

  constructor(
    private readonly log: Logger,
    private readonly onChange: (target: HealthTarget, verdict: HealthVerdict, reason: string) => void,
    /** Whether the cluster has had traffic (an upstream connection); until it has, checks
     *  run every no_traffic_interval_ms. */
    private readonly hasTraffic: (cluster: string) => boolean = () => true,
  ) {}

  /** The cluster just had its first traffic: checks waiting for a no-traffic interval
   *  are brought forward to the regular one. */
  trafficStarted(cluster: string): void {
    for (const entry of this.checked.values()) {
      if (entry.target.cluster !== cluster || entry.timer === null || entry.healthy === null) continue;
      clearTimeout(entry.timer);
      entry.timer = null;
      this.schedule(entry, this.waitMs(entry.settings, entry.healthy ? entry.settings.interval_ms : entry.settings.unhealthy_interval_ms));
    }
  }

  /** Applies a config: checks start for endpoints of clusters that have health_check,
   *  stop for endpoints/clusters gone or whose cluster lost health_check; endpoints that
   *  stay (same slot) keep their state and counts while the new settings apply from the
   *  next check. No onChange is made for endpoints that stop being checked: the caller
   *  clears their health state. With `only`, `clusters` are the new versions of just the
   *  clusters named there (an endpoint update): the others stay as they are. */
  update(
    clusters: readonly Cluster[],
    slotOf: (cluster: string, address: string, port: number) => number,
    tls: Readonly<Record<string, TlsMaterial>> = {},
    only?: ReadonlySet<string>,
  ): void {
    if (this.stopped) return;
    if (only === undefined) this.clusters = clusters;
    else {
      const byName = new Map(clusters.map((c) => [c.name, c]));
      this.clusters = this.clusters.map((c) => byName.get(c.name) ?? c);
    }
    const wanted = new Map<number, { target: HealthTarget; settings: HealthCheck; tls: Cluster['tls'] }>();
    for (const cluster of clusters) {
      const settings = cluster.health_check;
      if (settings === undefined) continue;
      for (const ep of cluster.endpoints as readonly UpstreamEndpoint[]) {
        const slot = slotOf(cluster.name, ep.address, ep.port);
        const secure = endpointUsesTls(cluster, ep);
        const target = { slot, cluster: cluster.name, address: ep.address, port: ep.port, hostname: ep.hostname, dial: ep.dial, ...(cluster.tls !== undefined && !secure ? { plaintext: true } : {}) };
        wanted.set(slot, { target, settings: ep.health_check_host !== undefined ? withHost(settings, ep.health_check_host) : settings, tls: secure ? cluster.tls : undefined });
      }
    }
    for (const [slot, entry] of this.checked) {
      if (only !== undefined && !only.has(entry.target.cluster)) continue;
      const w = wanted.get(slot);
      if (w === undefined || !sameTarget(w.target, entry.target)) this.remove(entry);
    }
    for (const [slot, w] of wanted) {
      let entry = this.checked.get(slot);
      if (entry !== undefined) entry.settings = w.settings;
      else entry = this.add(w.target, w.settings);
      this.useTls(entry, w.tls, w.tls !== undefined ? tls[w.target.cluster] : undefined);
    }
    this.settleFirstRound();
  }

  /** Rotated TLS files: the next connection of each TLS-checked endpoint uses them. */
  rotateTls(tls: Readonly<Record<string, TlsMaterial>>): void {
    const byName = new Map(this.clusters.map((c) => [c.name, c]));
    for (const entry of this.checked.values()) {
      const cluster = byName.get(entry.target.cluster);
      if (cluster?.tls !== undefined && entry.target.plaintext !== true) this.useTls(entry, cluster.tls, tls[cluster.name]);
    }
  }

  /** Gives the entry an agent for its TLS settings (a new one when they changed). */
  private useTls(entry: Checked, config: UpstreamTlsConfig | undefined, material: TlsMaterial | undefined): void {
    const grpc = entry.settings.grpc !== undefined;
    const want = config !== undefined && material !== undefined ? { config, revision: material.revision, grpc } : null;
    const have = entry.tls;
    if (want === null ? have === null : have !== null && have.config === want.config && have.revision === want.revision && have.grpc === grpc) return;
    entry.agent.destroy();
    entry.tls = want;
    entry.agent =
      want === null
        ? new http.Agent({ keepAlive: true, maxSockets: 1 })
        : new https.Agent({ keepAlive: true, maxSockets: 1, ...clientTlsOptions(want.config, material!, entry.target.hostname ?? entry.target.address, grpc ? H2_ALPN : HTTP1_ALPN) });
  }

  /** Marks an endpoint unhealthy at once (an upstream answered with
   *  `x-remora-immediate-health-check-fail`); it must then pass healthy_threshold checks
   *  to return. No-op for endpoints that are not checked. */
  failNow(slot: number, reason: string): void {
    const entry = this.checked.get(slot);
    if (entry === undefined || entry.removed) return;
    entry.passes = 0;
    entry.lastError = reason;
    if (entry.healthy === false) return;
    entry.healthy = false;
    this.report(entry, 'unhealthy', `immediate failure: ${reason}`);
    this.settleFirstRound();
  }

  /** Resolves when every currently checked endpoint has a first result (immediately if
   *  none, and at stop()). While awaited it keeps the process alive. */
  firstRound(): Promise<void> {
    if (this.allHaveResults()) return Promise.resolve();
    this.firstRoundHold ??= setInterval(() => {}, 60_000);
    return new Promise((resolve) => this.firstRoundWaiters.push(resolve));
  }

  view(): EndpointHealthView[] {
    const out: EndpointHealthView[] = [];
    for (const e of this.checked.values()) {
      out.push({
        slot: e.target.slot,
        cluster: e.target.cluster,
        endpoint: e.key,
        healthy: e.healthy,
        lastStatus: e.lastStatus,
        lastError: e.lastError,
        lastCheckedAt: e.lastCheckedAt,
        consecutivePasses: e.passes,
        consecutiveFailures: e.failures,
        checks: e.checks,
      });
    }
    return out.sort((a, b) => a.slot - b.slot);
  }

  /** Counters for metrics. */
  stats(): HealthCheckStats {
    return {
      attempts: this.attempts,
      successes: this.successes,
      failures: this.timeouts + this.networkErrors + this.badStatus,
      timeouts: this.timeouts,
      networkErrors: this.networkErrors,
      badStatus: this.badStatus,
      changes: this.changes,
    };
  }

  /** Clears all timers and destroys all sockets; idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const entry of this.checked.values()) this.remove(entry);
    this.settleFirstRound();
  }

  private add(target: HealthTarget, settings: HealthCheck): Checked {
    const entry: Checked = {
      target,
      key: endpointKey(target.address, target.port),
      settings,
      agent: new http.Agent({ keepAlive: true, maxSockets: 1 }),
      tls: null,
      timer: null,
      probe: null,
      removed: false,
      healthy: null,
      lastStatus: 0,
      lastError: '',
      lastCheckedAt: 0,
      passes: 0,
      failures: 0,
      checks: 0,
    };
    this.checked.set(target.slot, entry);
    const spread = settings.initial_jitter_ms > 0 ? settings.initial_jitter_ms : Math.min(settings.interval_ms, MAX_FIRST_JITTER_MS);
    this.schedule(entry, Math.floor(Math.random() * spread));
    return entry;
  }

  private remove(entry: Checked): void {
    entry.removed = true;
    if (entry.timer !== null) clearTimeout(entry.timer);
    entry.timer = null;
    const running = entry.probe;
    entry.probe = null;
    running?.cancel();
    entry.agent.destroy();
    if (this.checked.get(entry.target.slot) === entry) this.checked.delete(entry.target.slot);
  }

  private schedule(entry: Checked, delayMs: number): void {
    if (entry.removed || this.stopped) return;
    entry.timer = setTimeout(() => {
      entry.timer = null;
      try {
        this.runCheck(entry);
      } catch (err) {
        this.log.error({ err, cluster: entry.target.cluster, endpoint: entry.key }, 'health check failed to start');
        this.schedule(entry, entry.settings.interval_ms);
      }
    }, delayMs);
    entry.timer.unref();
  }

  private runCheck(entry: Checked): void {
    if (entry.removed || this.stopped) return;
    const settings = entry.settings;
    this.attempts++;
    const target = { address: entry.target.dial ?? entry.target.address, port: entry.target.port, agent: entry.agent, tls: entry.tls !== null };
    let reported = false;
    const onResult = (result: ProbeResult): void => {
      reported = true;
      entry.probe = null;
      if (entry.removed || this.stopped) return;
      let next = settings.interval_ms;
      try {
        next = this.nextDelay(entry, settings, this.record(entry, settings, result));
      } catch (err) {
        this.log.error({ err, cluster: entry.target.cluster, endpoint: entry.key }, 'health check result handling failed');
      }
      this.schedule(entry, next);
    };
    const running = settings.grpc !== undefined
      ? grpcProbe({ address: target.address, port: target.port, tlsAgent: target.tls ? entry.agent : null }, settings, onResult)
      : settings.tcp !== undefined
        ? tcpProbe({ address: target.address, port: target.port, tlsAgent: target.tls ? entry.agent as https.Agent : null }, settings, onResult)
        : probe(target, settings, onResult);
    // A probe that failed synchronously has already reported (and rescheduled).
    if (!reported) entry.probe = running;
  }

  /** Milliseconds to the next check (Envoy's interval choice): no_traffic intervals until
   *  the cluster has had traffic; else the edge interval right after a verdict changed,
   *  the unhealthy interval while unhealthy, the interval while healthy; plus jitter. */
  private nextDelay(entry: Checked, settings: HealthCheck, changed: boolean): number {
    let base: number;
    if (!this.hasTraffic(entry.target.cluster)) {
      base = entry.healthy === true ? settings.no_traffic_healthy_interval_ms : settings.no_traffic_interval_ms;
    } else if (entry.healthy === false) {
      base = changed ? settings.unhealthy_edge_interval_ms : settings.unhealthy_interval_ms;
    } else {
      base = changed ? settings.healthy_edge_interval_ms : settings.interval_ms;
    }
    return this.waitMs(settings, base);
  }

  /** `base` plus interval_jitter_percent of it and interval_jitter_ms, each at random. */
  private waitMs(settings: HealthCheck, base: number): number {
    let ms = base;
    if (settings.interval_jitter_percent > 0) ms += Math.floor(Math.random() * ((settings.interval_jitter_percent * base) / 100));
    if (settings.interval_jitter_ms > 0) ms += Math.floor(Math.random() * settings.interval_jitter_ms);
    return ms;
  }

  /** Counts a result and changes the verdict when it should; true when it changed. */
  private record(entry: Checked, settings: HealthCheck, result: ProbeResult): boolean {
    entry.checks++;
    entry.lastCheckedAt = Date.now();
    entry.lastStatus = result.status;
    entry.lastError = result.error;
    if (result.pass) {
      this.successes++;
      entry.passes++;
      entry.failures = 0;
    } else {
      if (result.kind === 'timeout') this.timeouts++;
      else if (result.kind === 'status') this.badStatus++;
      else this.networkErrors++;
      entry.failures++;
      entry.passes = 0;
    }

    if (entry.healthy === null) {
      entry.healthy = result.pass;
      if (result.pass) this.report(entry, 'healthy', 'first check passed');
      else this.report(entry, 'unhealthy', `first check failed: ${result.error}`);
      this.settleFirstRound();
      return true;
    }
    if (entry.healthy && !result.pass) {
      // A status the upstream chose (neither expected nor retriable) says "take me out
      // now"; other failures must repeat (Envoy's ACTIVE vs NETWORK failure types).
      const immediate = result.kind === 'status' && !statusExpected(result.status, settings.retriable_statuses);
      if (!immediate && entry.failures < settings.unhealthy_threshold) return false;
      entry.healthy = false;
      const n = entry.failures;
      this.report(entry, 'unhealthy', immediate ? `unexpected status: ${result.error}` : `${n} consecutive failure${n === 1 ? '' : 's'}: ${result.error}`);
      return true;
    }
    if (!entry.healthy && result.pass && entry.passes >= settings.healthy_threshold) {
      entry.healthy = true;
      const n = entry.passes;
      this.report(entry, 'healthy', `${n} consecutive pass${n === 1 ? '' : 'es'}`);
      return true;
    }
    return false;
  }

  private report(entry: Checked, verdict: HealthVerdict, reason: string): void {
    this.changes++;
    const fields = { cluster: entry.target.cluster, endpoint: entry.key, reason };
    if (verdict === 'unhealthy') this.log.warn(fields, 'endpoint unhealthy (active health check)');
    else this.log.info(fields, 'endpoint healthy (active health check)');
    try {
      this.onChange(entry.target, verdict, reason);
    } catch (err) {
      this.log.error({ err, cluster: entry.target.cluster, endpoint: entry.key }, 'health change handler failed');
    }
  }

  private allHaveResults(): boolean {
    if (this.stopped) return true;
    for (const e of this.checked.values()) if (e.healthy === null) return false;
    return true;
  }

  private settleFirstRound(): void {
    if (this.firstRoundWaiters.length === 0 || !this.allHaveResults()) return;
    if (this.firstRoundHold !== null) clearInterval(this.firstRoundHold);
    this.firstRoundHold = null;
    const waiters = this.firstRoundWaiters.splice(0);
    for (const resolve of waiters) resolve();
  }
}

function sameTarget(a: HealthTarget, b: HealthTarget): boolean {
  return a.slot === b.slot && a.cluster === b.cluster && a.address === b.address && a.port === b.port && a.hostname === b.hostname && a.dial === b.dial
    && a.plaintext === b.plaintext;
}

/** A check's settings for an endpoint with a health_check_host of its own: it is the Host
 *  of HTTP checks and the authority of gRPC ones (Envoy's health_check_config.hostname). */
function withHost(settings: HealthCheck, host: string): HealthCheck {
  return { ...settings, host, ...(settings.grpc !== undefined ? { grpc: { ...settings.grpc, authority: host } } : {}) };
}
