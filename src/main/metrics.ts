// Prometheus exposition on the main thread: a prom-client registry whose Remora
// metrics are read from the workers' shared stats slabs at scrape time (see
// docs/metrics.md for names and meanings), plus prom-client's process metrics.

import client from 'prom-client';
import type { ConfigSnapshot } from '../config/types.js';
import { percentileUs, type HistogramSnapshot, type StatsReader } from '../stats/reader.js';
import {
  ClusterCounter,
  ClusterGauge,
  ClusterHistogram,
  FLAGS,
  ListenerCounter,
  ListenerGauge,
  ListenerHistogram,
  PROMETHEUS_BUCKETS_US,
  RECORD_BUCKETS_US,
  STATUS_CLASSES,
  RESILIENCE_COUNTERS,
} from '../stats/stat-names.js';
import { WorkerCell } from '../shared/stats-layout.js';
import { ProcessMetrics } from './process-metrics.js';
import type { WorkerPool } from './worker-pool.js';
import type { CertStore } from './cert-store.js';
import type { Resilience } from './resilience.js';
import type { Lifecycle } from './lifecycle.js';
import type { ConfigSourceInfo } from './remora.js';

type Labels = Record<string, string | number>;
interface Sample {
  value: number;
  labels: Labels;
  metricName?: string;
}
type MetricType = 'counter' | 'gauge' | 'histogram';

/** A metric computed at scrape time, in the shape prom-client's registry expects. */
function computed(name: string, help: string, type: MetricType, collect: () => Sample[]) {
  return {
    name,
    help,
    type,
    aggregator: 'sum' as const,
    get: async () => ({ name, help, type, aggregator: 'sum' as const, values: collect() }),
  };
}

/** Index of each Prometheus bound in the recording buckets (each is one of them). */
const PROM_BOUND_INDEX = PROMETHEUS_BUCKETS_US.map((b) => RECORD_BUCKETS_US.indexOf(b));

/** Prometheus `le` label text per bound, in seconds. */
const LE_TEXT = PROMETHEUS_BUCKETS_US.map((b) => String(b / 1e6));

/** Escapes a label value for the text format (backslash, quote, newline). */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Text of each line of a histogram up to its value: buckets, +Inf, _sum, _count. */
function histogramPrefixes(name: string, label: string): string[] {
  return [
    ...LE_TEXT.map((le) => `${name}_bucket{${label},le="${le}"} `),
    `${name}_bucket{${label},le="+Inf"} `,
    `${name}_sum{${label}} `,
    `${name}_count{${label}} `,
  ];
}

interface LabelCache {
  readonly version: number;
  readonly listeners: [string, number][];
  readonly clusters: [string, number][];
  readonly listenerHistogramPrefixes: string[][][];
  readonly clusterHistogramPrefixes: string[][][];
}

export interface MetricsSource {
  readonly reader: StatsReader;
  readonly pool: WorkerPool;
  readonly resilience: Resilience;
  readonly lifecycle: Lifecycle;
  readonly source: ConfigSourceInfo | null;
  readonly certs: CertStore;
  snapshot(): ConfigSnapshot;
}

export class Metrics {
  readonly registry = new client.Registry();
  private readonly trafficEnabled: boolean;
  private readonly processMetrics = new ProcessMetrics();
  /** Process values read once per scrape. */
  private processValues = new Map<string, number>();
  private labelCache: LabelCache | null = null;

  constructor(private readonly src: MetricsSource) {
    for (const sample of this.processMetrics.collect()) {
      this.registry.registerMetric(
        computed(sample.name, sample.help, sample.type, () => [{ labels: {}, value: this.processValues.get(sample.name) ?? 0 }]) as unknown as client.Metric,
      );
    }
    // With recording switched off the slab series would be all zeros: leave them out.
    this.trafficEnabled = src.snapshot().config.stats.enabled;
    for (const m of this.processDefinitions()) this.registry.registerMetric(m as unknown as client.Metric);
  }

  /** The exposition text; folds the slabs first. */
  async scrape(): Promise<string> {
    this.src.reader.fold();
    this.processValues = new Map(this.processMetrics.collect().map((s) => [s.name, s.value]));
    const traffic = this.trafficEnabled ? this.renderTraffic() : '';
    return traffic + (await this.registry.metrics());
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Remora's traffic series as exposition text, written directly: with 100 clusters
   *  that is ~5,000 lines, and building them here (label text precomputed per config
   *  version) is an order of magnitude cheaper than sample objects through the registry. */
  private renderTraffic(): string {
    const r = this.src.reader;
    const labels = this.labelText();
    const out: string[] = [];
    const family = (name: string, help: string, type: MetricType): void => {
      out.push(`# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`);
    };
    const line = (name: string, label: string, value: number): void => {
      out.push(`${name}{${label}} ${value}\n`);
    };
    const histogram = (prefixes: readonly string[], h: HistogramSnapshot): void => {
      let cumulative = 0;
      let next = 0;
      let text = '';
      for (let p = 0; p < PROMETHEUS_BUCKETS_US.length; p++) {
        for (; next <= PROM_BOUND_INDEX[p]; next++) cumulative += h.buckets[next];
        text += prefixes[p] + cumulative + '\n';
      }
      const n = PROMETHEUS_BUCKETS_US.length;
      out.push(text + prefixes[n] + h.count + '\n' + prefixes[n + 1] + h.sumUs / 1e6 + '\n' + prefixes[n + 2] + h.count + '\n');
    };
    const perListener = (fn: (label: string, slot: number) => void): void => {
      for (const [label, slot] of labels.listeners) fn(label, slot);
    };
    const perCluster = (fn: (label: string, slot: number) => void): void => {
      for (const [label, slot] of labels.clusters) fn(label, slot);
    };
    const clusterCounter = (name: string, help: string, counter: number): void => {
      family(name, help, 'counter');
      perCluster((l, slot) => line(name, l, r.clusterCounter(slot, counter)));
    };
    const listenerCounter = (name: string, help: string, counter: number): void => {
      family(name, help, 'counter');
      perListener((l, slot) => line(name, l, r.listenerCounter(slot, counter)));
    };
    const listenerGauge = (name: string, help: string, gauge: number): void => {
      family(name, help, 'gauge');
      perListener((l, slot) => line(name, l, r.listenerGauge(slot, gauge)));
    };

    family('remora_downstream_requests_total', 'Responses sent to clients, by listener and status class.', 'counter');
    perListener((l, slot) =>
      STATUS_CLASSES.forEach((c, i) =>
        line('remora_downstream_requests_total', `${l},status_class="${c}"`, r.listenerCounter(slot, ListenerCounter.Rq1xx + i)),
      ),
    );
    family('remora_downstream_response_flags_total', 'Responses carrying an Envoy-style response flag, by listener and flag.', 'counter');
    perListener((l, slot) =>
      FLAGS.forEach((f, i) =>
        line('remora_downstream_response_flags_total', `${l},flag="${f}"`, r.listenerCounter(slot, ListenerCounter.FlagBase + i)),
      ),
    );
    listenerGauge('remora_downstream_requests_active', 'Requests in flight, by listener.', ListenerGauge.RqActive);
    listenerGauge('remora_downstream_connections_active', 'Open client connections, by listener.', ListenerGauge.CxActive);
    listenerCounter('remora_downstream_connections_total', 'Client connections accepted, by listener.', ListenerCounter.CxTotal);
    listenerCounter('remora_downstream_connection_overflows_total', 'Client connections closed at once because the listener had max_connections open.', ListenerCounter.CxOverflow);
    listenerCounter('remora_downstream_protocol_errors_total', 'Requests refused by the HTTP/1 codec or its head checks (each closed its connection).', ListenerCounter.RqProtocolError);
    listenerCounter('remora_downstream_bytes_received_total', 'Request body bytes received from clients.', ListenerCounter.BytesIn);
    listenerCounter('remora_downstream_bytes_sent_total', 'Response body bytes sent to clients (proxied responses).', ListenerCounter.BytesOut);

    family('remora_upstream_requests_total', 'Upstream responses by cluster and status class.', 'counter');
    perCluster((l, slot) =>
      STATUS_CLASSES.forEach((c, i) =>
        line('remora_upstream_requests_total', `${l},status_class="${c}"`, r.clusterCounter(slot, ClusterCounter.Rq1xx + i)),
      ),
    );
    clusterCounter('remora_upstream_connections_total', 'Upstream connections opened.', ClusterCounter.CxTotal);
    family('remora_upstream_connections_active', 'Open upstream connections.', 'gauge');
    perCluster((l, slot) => line('remora_upstream_connections_active', l, r.clusterGauge(slot, ClusterGauge.CxActive)));
    clusterCounter('remora_upstream_connect_failures_total', 'Failed upstream connects, timeouts included.', ClusterCounter.CxConnectFail);
    family('remora_upstream_pending_requests', 'Requests waiting for a pooled upstream connection.', 'gauge');
    perCluster((l, slot) => line('remora_upstream_pending_requests', l, r.clusterGauge(slot, ClusterGauge.RqPending)));
    clusterCounter('remora_upstream_timeouts_total', 'Requests that hit the route timeout.', ClusterCounter.RqTimeout);
    clusterCounter('remora_upstream_resets_total', 'Upstream connections closed or reset mid-exchange.', ClusterCounter.Resets);
    clusterCounter('remora_upstream_protocol_errors_total', 'Malformed upstream responses.', ClusterCounter.ProtocolErrors);
    clusterCounter(
      'remora_upstream_keepalive_retries_total',
      'Requests resent on a fresh connection after the keep-alive race.',
      ClusterCounter.KeepAliveRetries,
    );
    for (const [counter, , name, help] of RESILIENCE_COUNTERS) clusterCounter(name, help, counter);
    family('remora_downstream_tls_handshake_errors_total', 'TLS handshakes refused on TLS listeners, by reason (no_client_cert, verify_failed, other).', 'counter');
    perListener((l, slot) => {
      line('remora_downstream_tls_handshake_errors_total', `${l},reason="no_client_cert"`, r.listenerCounter(slot, ListenerCounter.TlsNoCert));
      line('remora_downstream_tls_handshake_errors_total', `${l},reason="verify_failed"`, r.listenerCounter(slot, ListenerCounter.TlsVerifyFailed));
      line('remora_downstream_tls_handshake_errors_total', `${l},reason="other"`, r.listenerCounter(slot, ListenerCounter.TlsOtherError));
    });
    listenerCounter('remora_downstream_rate_limit_shadow_total', 'Requests a shadow-mode rate limit would have rejected.', ListenerCounter.RateLimitShadow);

    family('remora_downstream_request_duration_seconds', 'Time from request arrival to the last response byte, by listener.', 'histogram');
    labels.listeners.forEach(([l, slot], i) =>
      histogram(labels.listenerHistogramPrefixes[i][0], r.listenerHistogram(slot, ListenerHistogram.Downstream)),
    );
    family('remora_upstream_request_duration_seconds', 'Time from the upstream request start to the end of its response, by cluster.', 'histogram');
    labels.clusters.forEach(([, slot], i) => histogram(labels.clusterHistogramPrefixes[i][0], r.clusterHistogram(slot, ClusterHistogram.Upstream)));
    family('remora_proxy_overhead_seconds', 'Downstream time minus upstream time: the time Remora added, by cluster.', 'histogram');
    labels.clusters.forEach(([, slot], i) => histogram(labels.clusterHistogramPrefixes[i][1], r.clusterHistogram(slot, ClusterHistogram.Overhead)));
    return out.join('');
  }

  /** `listener="name"` / `cluster="name"` label text per slot, and every histogram
   *  line's text up to its value, made once per config version. */
  private labelText(): LabelCache {
    const snap = this.src.snapshot();
    if (this.labelCache === null || this.labelCache.version !== snap.version) {
      const listeners = Object.entries(snap.statSlots.listeners).map(([n, slot]): [string, number] => [`listener="${escapeLabel(n)}"`, slot]);
      const clusters = Object.entries(snap.statSlots.clusters).map(([n, slot]): [string, number] => [`cluster="${escapeLabel(n)}"`, slot]);
      this.labelCache = {
        version: snap.version,
        listeners,
        clusters,
        listenerHistogramPrefixes: listeners.map(([l]) => [histogramPrefixes('remora_downstream_request_duration_seconds', l)]),
        clusterHistogramPrefixes: clusters.map(([l]) => [
          histogramPrefixes('remora_upstream_request_duration_seconds', l),
          histogramPrefixes('remora_proxy_overhead_seconds', l),
        ]),
      };
    }
    return this.labelCache;
  }

  private processDefinitions() {
    return [
      computed('remora_worker_event_loop_delay_seconds', 'Event-loop delay per worker over its last full second.', 'gauge', () => {
        const r = this.src.reader;
        const out: Sample[] = [];
        for (let w = 0; w < r.workerCount; w++) {
          const worker = String(w);
          out.push({ labels: { worker, stat: 'p50' }, value: r.workerCell(w, WorkerCell.LoopDelayP50) / 1e6 });
          out.push({ labels: { worker, stat: 'p99' }, value: r.workerCell(w, WorkerCell.LoopDelayP99) / 1e6 });
          out.push({ labels: { worker, stat: 'max' }, value: r.workerCell(w, WorkerCell.LoopDelayMax) / 1e6 });
        }
        return out;
      }),
      computed('remora_worker_heartbeat_age_seconds', 'Seconds since each worker last stored its heartbeat (about 1 when healthy).', 'gauge', () => {
        const r = this.src.reader;
        const now = Math.floor(Date.now() / 1000);
        const out: Sample[] = [];
        for (let w = 0; w < r.workerCount; w++) {
          const beat = r.workerCell(w, WorkerCell.Heartbeat);
          out.push({ labels: { worker: String(w) }, value: beat === 0 ? -1 : now - beat });
        }
        return out;
      }),
      computed('remora_tls_certificate_expiry_seconds', 'Seconds until each TLS certificate in use expires (negative: expired), by owner, role and serial.', 'gauge', () =>
        this.src.certs.certificates().map((c) => ({ labels: { owner: c.owner, role: c.role, serial: c.serial }, value: c.seconds_until_expiry })),
      ),
      computed('remora_tls_earliest_expiry_seconds', 'Seconds until the earliest TLS certificate in use expires (alert well before 0); absent without TLS.', 'gauge', () => {
        const s = this.src.certs.earliestExpirySeconds();
        return s === null ? [] : [{ labels: {}, value: s }];
      }),
      computed('remora_tls_rotations_total', 'Changed TLS files: applied (new handshakes use them) or rejected (the old ones keep serving).', 'counter', () => [
        { labels: { result: 'applied' }, value: this.src.certs.rotations.applied },
        { labels: { result: 'rejected' }, value: this.src.certs.rotations.rejected },
      ]),
      computed('remora_worker_restarts_total', 'Worker replacements after a worker died.', 'counter', () =>
        this.src.pool.slots.map((s) => ({ labels: { worker: String(s.slot) }, value: s.restarts })),
      ),
      computed('remora_workers', 'Worker slots by state.', 'gauge', () => {
        const counts: Record<string, number> = { starting: 0, listening: 0, restarting: 0, failed: 0, stopped: 0 };
        for (const s of this.src.pool.slots) counts[s.state] = (counts[s.state] ?? 0) + 1;
        return Object.entries(counts).map(([state, value]) => ({ labels: { state }, value }));
      }),
      computed('remora_config_version', 'Config version applied.', 'gauge', () => [{ labels: {}, value: this.src.snapshot().version }]),
      computed('remora_config_reloads_total', 'Config reloads applied.', 'counter', () => [{ labels: {}, value: this.src.lifecycle.reloads }]),
      computed('remora_config_rejections_total', 'Config changes rejected by validation (the running config kept serving).', 'counter', () => [
        { labels: {}, value: this.src.lifecycle.rejections },
      ]),
      computed('remora_startup_seconds', 'Seconds from process start to ready (every worker listening); -1 before.', 'gauge', () => [
        { labels: {}, value: this.src.lifecycle.startupMs < 0 ? -1 : this.src.lifecycle.startupMs / 1000 },
      ]),
      computed('remora_ready', 'Whether /ready answers 200 (1) or 503 (0).', 'gauge', () => [
        { labels: {}, value: this.src.lifecycle.readiness(this.src.pool.notListening(this.src.snapshot().version)).ready ? 1 : 0 },
      ]),
      ...this.resilienceDefinitions(),
      ...this.xdsDefinitions(),
    ];
  }

  /** Control-plane connection state (xDS mode only). */
  private xdsDefinitions() {
    const source = this.src.source;
    if (source === null) return [];
    const m = () => source.metrics();
    return [
      computed('remora_xds_connected', 'Whether the xDS stream to a control plane is up (1) or not (0).', 'gauge', () => [{ labels: {}, value: m().connected }]),
      computed('remora_xds_updates_total', 'xDS responses by result: ack (applied or warming) and nack (rejected; the running config kept serving).', 'counter', () => [
        { labels: { result: 'ack' }, value: m().acks },
        { labels: { result: 'nack' }, value: m().nacks },
      ]),
      computed('remora_xds_reconnects_total', 'Times the xDS stream was re-established.', 'counter', () => [{ labels: {}, value: m().reconnects }]),
      computed('remora_xds_config_age_seconds', 'Seconds since the last config from the control plane was applied (-1: none yet).', 'gauge', () => [
        { labels: {}, value: m().configAgeS },
      ]),
    ];
  }

  /** Circuit breakers, outlier detection, health checks and the rate-limit table: state
   *  the main thread holds (or reads from the shared state) at scrape time. */
  private resilienceDefinitions() {
    const res = this.src.resilience;
    const clusters = () => this.src.snapshot().config.clusters;
    return [
      computed('remora_circuit_breaker_open', 'Whether a circuit-breaker resource is at its limit (1) or not (0), by cluster and resource.', 'gauge', () =>
        clusters().flatMap((c) =>
          Object.entries(res.breakers(c)).map(([resource, b]) => ({ labels: { cluster: c.name, resource }, value: b.open ? 1 : 0 })),
        ),
      ),
      computed('remora_circuit_breaker_remaining', 'Room left under a circuit-breaker limit, by cluster and resource (all workers).', 'gauge', () =>
        clusters().flatMap((c) =>
          Object.entries(res.breakers(c)).map(([resource, b]) => ({ labels: { cluster: c.name, resource }, value: b.remaining })),
        ),
      ),
      computed('remora_cluster_endpoints', 'Endpoints by state (healthy, ejected, unhealthy, pending_first_check, probation), by cluster.', 'gauge', () =>
        clusters().flatMap((c) => {
          const counts: Record<string, number> = { healthy: 0, ejected: 0, unhealthy: 0, pending_first_check: 0, probation: 0 };
          for (const ep of c.endpoints) {
            const state = res.endpointState(c.name, ep.address, ep.port);
            if (state in counts) counts[state]++;
          }
          return Object.entries(counts).map(([state, value]) => ({ labels: { cluster: c.name, state }, value }));
        }),
      ),
      computed('remora_outlier_ejections_total', 'Endpoint ejections by outlier detection, by reason.', 'counter', () =>
        Object.entries(res.detector.ejections).map(([reason, value]) => ({ labels: { reason }, value })),
      ),
      computed('remora_outlier_ejections_active', 'Endpoints ejected right now, by cluster.', 'gauge', () =>
        clusters()
          .filter((c) => c.outlier_detection !== undefined)
          .map((c) => ({ labels: { cluster: c.name }, value: res.detector.activeEjections(c.name) })),
      ),
      computed('remora_outlier_ejections_overflow_total', 'Ejections not made because max_ejection_percent was reached.', 'counter', () => [
        { labels: {}, value: res.detector.overflows },
      ]),
      computed('remora_health_checks_total', 'Active health checks, by result.', 'counter', () => {
        const s = res.checker.stats();
        return [
          { labels: { result: 'success' }, value: s.successes },
          { labels: { result: 'timeout' }, value: s.timeouts },
          { labels: { result: 'network_error' }, value: s.networkErrors },
          { labels: { result: 'bad_status' }, value: s.badStatus },
        ];
      }),
      computed('remora_rate_limit_table_entries', 'Per-key rate-limit buckets in use (the table holds a fixed number).', 'gauge', () => [
        { labels: {}, value: res.keyedTable().entries },
      ]),
      computed('remora_rate_limit_table_evictions_total', 'Per-key buckets evicted (least recently used) to make room for a new key.', 'counter', () => [
        { labels: {}, value: res.keyedTable().evictions },
      ]),
    ];
  }
}

/** p50/p90/p99/p99.9 in µs, for /stats. */
export function quantiles(h: HistogramSnapshot): Record<string, number> {
  return {
    count: h.count,
    p50_us: percentileUs(h, 50),
    p90_us: percentileUs(h, 90),
    p99_us: percentileUs(h, 99),
    p999_us: percentileUs(h, 99.9),
  };
}
