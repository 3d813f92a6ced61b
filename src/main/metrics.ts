// Prometheus exposition on the main thread. The per-listener and per-cluster series are
// read from the workers' shared stats slabs and the resilience state at scrape time and
// written as bytes (metrics-text.ts); the process-wide families go through a prom-client
// registry. Families are declared by the stat tables (src/stats/tables/;
// docs/metrics.md is generated from the same tables).

import client from 'prom-client';
import type { ConfigSnapshot } from '../config/types.js';
import { percentileUs, type HistogramSnapshot, type StatsReader } from '../stats/reader.js';
import { families, type StatRow } from '../stats/tables/table.js';
import { MAIN_THREAD_METRICS, type MainThreadMetricName } from '../stats/tables/main-thread.js';
import { WORKER_ROWS, WorkerCell } from '../stats/tables/worker.js';
import { ExpositionBuffer, expositionLabels, writeClusterState, writeTraffic, type ExpositionLabels } from './metrics-text.js';
import { ProcessMetrics } from './process-metrics.js';
import type { WorkerPool } from './worker-pool.js';
import type { CertStore } from './cert-store.js';
import type { Resilience } from './resilience.js';
import type { DnsClusters } from './dns-resolver.js';
import { dataPlaneConfig } from '../config/dns-endpoints.js';
import type { Lifecycle } from './lifecycle.js';
import type { ConfigSourceInfo } from './context.js';
import type { TraceExport } from './trace-export.js';
import type { AccessLogExport } from './access-log-export.js';

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

/** A main-thread family as MAIN_THREAD_METRICS declares it, computed at scrape time. */
function mainThread(name: MainThreadMetricName, collect: () => Sample[]) {
  const m = MAIN_THREAD_METRICS[name];
  return computed(name, m.help, m.kind, collect);
}

const WORKER_FAMILIES = families(WORKER_ROWS);

export interface MetricsSource {
  readonly reader: StatsReader;
  readonly pool: WorkerPool;
  readonly resilience: Resilience;
  readonly lifecycle: Lifecycle;
  readonly source: ConfigSourceInfo | null;
  readonly certs: CertStore;
  /** Span export counts (absent families when tracing was never configured). */
  readonly traces: Pick<TraceExport, 'counters'>;
  /** gRPC access log counts, per stream (none when no listener logs to a service). */
  readonly accessLogs: Pick<AccessLogExport, 'counters'>;
  /** DNS clusters' resolution counters. */
  readonly dns: Pick<DnsClusters, 'allCounts'>;
  snapshot(): ConfigSnapshot;
}

export class Metrics {
  readonly registry = new client.Registry();
  private readonly trafficEnabled: boolean;
  private readonly processMetrics = new ProcessMetrics();
  /** Process values read once per scrape. */
  private processValues = new Map<string, number>();
  /** Label bytes of the config version last scraped. */
  private labels: ExpositionLabels | null = null;
  /** Bytes of the last exposition: the next one's buffer starts that large. */
  private lastSize = 0;

  constructor(private readonly src: MetricsSource) {
    for (const sample of this.processMetrics.collect()) {
      this.registry.registerMetric(
        computed(sample.name, sample.help, sample.type, () => [{ labels: {}, value: this.processValues.get(sample.name) ?? 0 }]) as unknown as client.Metric,
      );
    }
    this.trafficEnabled = src.snapshot().config.stats.enabled;
    for (const m of this.processDefinitions()) this.registry.registerMetric(m as unknown as client.Metric);
  }

  /** The exposition text; folds the slabs first. The per-listener and per-cluster
   *  series (thousands of lines per hundred clusters) are written as bytes
   *  (metrics-text.ts), the process-wide families through the registry. */
  async scrape(): Promise<Buffer> {
    this.src.reader.fold();
    this.processValues = new Map(this.processMetrics.collect().map((s) => [s.name, s.value]));
    const snap = this.src.snapshot();
    if (this.labels === null || this.labels.version !== snap.version) this.labels = expositionLabels(snap);
    const out = new ExpositionBuffer(this.lastSize + 65_536);
    // With recording switched off the slab series would be all zeros: left out.
    if (this.trafficEnabled) writeTraffic(out, this.src.reader, this.labels);
    writeClusterState(out, dataPlaneConfig(snap.config, snap.resolved).clusters, this.src.resilience, this.labels); // DNS clusters: their resolved endpoints
    out.text(await this.registry.metrics());
    this.lastSize = out.length;
    return out.finish();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private processDefinitions() {
    return [
      ...WORKER_FAMILIES.map((f) =>
        computed(f.name, f.help, f.kind, () => {
          const r = this.src.reader;
          const now = Math.floor(Date.now() / 1000);
          const out: Sample[] = [];
          for (let w = 0; w < r.workerCount; w++) {
            for (const row of f.rows) {
              const value = workerValue(row.handle, r.workerCell(w, WorkerCell[row.handle]), now);
              out.push({ labels: { worker: String(w), ...(row as StatRow).labels }, value });
            }
          }
          return out;
        }),
      ),
      mainThread('remora_tls_certificate_expiry_seconds', () =>
        this.src.certs.certificates().map((c) => ({ labels: { owner: c.owner, role: c.role, serial: c.serial }, value: c.seconds_until_expiry })),
      ),
      mainThread('remora_tls_earliest_expiry_seconds', () => {
        const s = this.src.certs.earliestExpirySeconds();
        return s === null ? [] : [{ labels: {}, value: s }];
      }),
      mainThread('remora_tls_rotations_total', () => [
        { labels: { result: 'applied' }, value: this.src.certs.rotations.applied },
        { labels: { result: 'rejected' }, value: this.src.certs.rotations.rejected },
      ]),
      mainThread('remora_trace_spans_exported_total', () => {
        const c = this.src.traces.counters();
        return c === null ? [] : [{ labels: {}, value: c.exported }];
      }),
      mainThread('remora_trace_spans_dropped_total', () => {
        const c = this.src.traces.counters();
        return c === null ? [] : Object.entries(c.dropped).map(([reason, value]) => ({ labels: { reason }, value }));
      }),
      mainThread('remora_trace_export_requests_total', () => {
        const c = this.src.traces.counters();
        return c === null ? [] : Object.entries(c.requests).map(([result, value]) => ({ labels: { result }, value }));
      }),
      mainThread('remora_trace_export_queue_spans', () => {
        const c = this.src.traces.counters();
        return c === null ? [] : [{ labels: {}, value: c.queuedSpans }];
      }),
      mainThread('remora_access_log_grpc_entries_sent_total', () =>
        this.src.accessLogs.counters().map((s) => ({ labels: { cluster: s.cluster, log_name: s.logName }, value: s.counters.sent }))),
      mainThread('remora_access_log_grpc_entries_dropped_total', () =>
        this.src.accessLogs.counters().flatMap((s) => Object.entries(s.counters.dropped).map(([reason, value]) => ({ labels: { cluster: s.cluster, log_name: s.logName, reason }, value })))),
      mainThread('remora_access_log_grpc_streams_total', () =>
        this.src.accessLogs.counters().flatMap((s) => Object.entries(s.counters.streams).map(([result, value]) => ({ labels: { cluster: s.cluster, log_name: s.logName, result }, value })))),
      mainThread('remora_access_log_grpc_queue_entries', () =>
        this.src.accessLogs.counters().map((s) => ({ labels: { cluster: s.cluster, log_name: s.logName }, value: s.counters.queued }))),
      mainThread('remora_worker_restarts_total', () =>
        this.src.pool.slots.map((s) => ({ labels: { worker: String(s.slot) }, value: s.restarts })),
      ),
      mainThread('remora_workers', () => {
        const counts: Record<string, number> = { starting: 0, listening: 0, restarting: 0, failed: 0, stopped: 0 };
        for (const s of this.src.pool.slots) counts[s.state] = (counts[s.state] ?? 0) + 1;
        return Object.entries(counts).map(([state, value]) => ({ labels: { state }, value }));
      }),
      mainThread('remora_config_version', () => [{ labels: {}, value: this.src.snapshot().version }]),
      mainThread('remora_config_reloads_total', () => [{ labels: {}, value: this.src.lifecycle.reloads }]),
      mainThread('remora_config_rejections_total', () => [
        { labels: {}, value: this.src.lifecycle.rejections },
      ]),
      mainThread('remora_startup_seconds', () => [
        { labels: {}, value: this.src.lifecycle.startupMs < 0 ? -1 : this.src.lifecycle.startupMs / 1000 },
      ]),
      mainThread('remora_ready', () => [
        { labels: {}, value: this.src.lifecycle.readiness(this.src.pool.notListening(this.src.snapshot().version)).ready ? 1 : 0 },
      ]),
      ...this.resilienceDefinitions(),
      ...this.xdsDefinitions(),
      mainThread('remora_cluster_dns_resolutions_total', () =>
        [...this.src.dns.allCounts()].flatMap(([cluster, n]) =>
          (['attempt', 'success', 'failure', 'empty'] as const).map((result) => ({ labels: { cluster, result }, value: n[result] })))),
    ];
  }

  /** Control-plane connection state (xDS mode only). */
  private xdsDefinitions() {
    const source = this.src.source;
    if (source === null) return [];
    const m = () => source.metrics();
    return [
      mainThread('remora_xds_connected', () => [{ labels: {}, value: m().connected }]),
      mainThread('remora_xds_updates_total', () => [
        { labels: { result: 'ack' }, value: m().acks },
        { labels: { result: 'nack' }, value: m().nacks },
      ]),
      mainThread('remora_xds_reconnects_total', () => [{ labels: {}, value: m().reconnects }]),
      mainThread('remora_xds_unknown_fields_total', () => [{ labels: {}, value: m().unknownFields }]),
      mainThread('remora_xds_fields_without_effect', () => [...m().fieldsWithoutEffect].map(([field, value]) => ({ labels: { field }, value }))),
      mainThread('remora_xds_config_age_seconds', () => [
        { labels: {}, value: m().configAgeS },
      ]),
    ];
  }

  /** Outlier detection, health checks and the rate-limit table: process-wide state the
   *  main thread holds (or reads from the shared state) at scrape time. The per-cluster
   *  breaker, endpoint and ejection families are written with the traffic series. */
  private resilienceDefinitions() {
    const res = this.src.resilience;
    return [
      mainThread('remora_outlier_ejections_total', () =>
        Object.entries(res.detector.ejections).map(([reason, value]) => ({ labels: { reason }, value })),
      ),
      mainThread('remora_outlier_ejections_overflow_total', () => [
        { labels: {}, value: res.detector.overflows },
      ]),
      mainThread('remora_health_checks_total', () => {
        const s = res.checker.stats();
        return [
          { labels: { result: 'success' }, value: s.successes },
          { labels: { result: 'timeout' }, value: s.timeouts },
          { labels: { result: 'network_error' }, value: s.networkErrors },
          { labels: { result: 'bad_status' }, value: s.badStatus },
        ];
      }),
      mainThread('remora_rate_limit_table_entries', () => [
        { labels: {}, value: res.keyedTable().entries },
      ]),
      mainThread('remora_rate_limit_table_evictions_total', () => [
        { labels: {}, value: res.keyedTable().evictions },
      ]),
    ];
  }
}

/** The exported value of a worker cell as stored: loop delays µs → s, the heartbeat
 *  (epoch seconds) → its age (-1 before the first). */
function workerValue(handle: keyof typeof WorkerCell, stored: number, nowS: number): number {
  switch (handle) {
    case 'Heartbeat':
      return stored === 0 ? -1 : nowS - stored;
    case 'LoopDelayP50':
    case 'LoopDelayP99':
    case 'LoopDelayMax':
      return stored / 1e6;
    default:
      return stored;
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
