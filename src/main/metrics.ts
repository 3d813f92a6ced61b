// Prometheus exposition on the main thread: a prom-client registry whose Remora
// metrics are read from the workers' shared stats slabs at scrape time, family by
// family as the stat tables declare them (src/stats/tables/; docs/metrics.md is
// generated from the same tables), plus process and main-thread state.

import client from 'prom-client';
import type { ConfigSnapshot } from '../config/types.js';
import { percentileUs, type HistogramSnapshot, type StatsReader } from '../stats/reader.js';
import { PROMETHEUS_BUCKETS_US, RECORD_BUCKETS_US } from '../stats/stat-names.js';
import { CLUSTER_ROWS } from '../stats/tables/cluster.js';
import { LISTENER_ROWS } from '../stats/tables/listener.js';
import { families, kindIndexes, type StatKind, type StatRow } from '../stats/tables/table.js';
import { MAIN_THREAD_METRICS, type MainThreadMetricName } from '../stats/tables/main-thread.js';
import { WORKER_ROWS, WorkerCell } from '../stats/tables/worker.js';
import { ProcessMetrics } from './process-metrics.js';
import type { WorkerPool } from './worker-pool.js';
import type { CertStore } from './cert-store.js';
import type { Resilience } from './resilience.js';
import type { DnsClusters } from './dns-resolver.js';
import { dataPlaneConfig } from '../config/dns-endpoints.js';
import type { Lifecycle } from './lifecycle.js';
import type { ConfigSourceInfo } from './context.js';
import type { TraceExport } from './trace-export.js';

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

/** One row of an exported family: where to read it and its constant label text. */
interface TrafficRow {
  readonly kind: StatKind;
  /** The row's handle value (offset among its kind). */
  readonly index: number;
  /** `,name="value"` for each constant label of the row ('' for none). */
  readonly labels: string;
}

/** A Prometheus family of a slab table, with its HELP/TYPE header text. */
interface TrafficFamily {
  readonly name: string;
  readonly kind: StatKind;
  readonly header: string;
  readonly rows: readonly TrafficRow[];
}

/** The Prometheus families of a stat table, header text made once at load. */
function trafficFamilies(rows: readonly StatRow[]): TrafficFamily[] {
  const index = kindIndexes(rows);
  const indexOf = new Map(rows.map((row, i) => [row, index[i]]));
  return families(rows).map((f) => ({
    name: f.name,
    kind: f.kind,
    header: `# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.kind}\n`,
    rows: f.rows.map((row) => ({
      kind: row.kind,
      index: indexOf.get(row)!,
      labels: Object.entries(row.labels ?? {})
        .map(([k, v]) => `,${k}="${escapeLabel(v)}"`)
        .join(''),
    })),
  }));
}

const LISTENER_FAMILIES = trafficFamilies(LISTENER_ROWS);
const CLUSTER_FAMILIES = trafficFamilies(CLUSTER_ROWS);
const LISTENER_HISTOGRAMS = LISTENER_FAMILIES.filter((f) => f.kind === 'histogram');
const CLUSTER_HISTOGRAMS = CLUSTER_FAMILIES.filter((f) => f.kind === 'histogram');
const WORKER_FAMILIES = families(WORKER_ROWS);

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
  /** Span export counts (absent families when tracing was never configured). */
  readonly traces: Pick<TraceExport, 'counters'>;
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
    // Counters and gauges: listener families, then cluster families, in table order.
    for (const f of LISTENER_FAMILIES) {
      if (f.kind === 'histogram') continue;
      out.push(f.header);
      for (const [l, slot] of labels.listeners) {
        for (const row of f.rows) {
          const value = row.kind === 'gauge' ? r.listenerGauge(slot, row.index) : r.listenerCounter(slot, row.index);
          out.push(`${f.name}{${l}${row.labels}} ${value}\n`);
        }
      }
    }
    for (const f of CLUSTER_FAMILIES) {
      if (f.kind === 'histogram') continue;
      out.push(f.header);
      for (const [l, slot] of labels.clusters) {
        for (const row of f.rows) {
          const value = row.kind === 'gauge' ? r.clusterGauge(slot, row.index) : r.clusterCounter(slot, row.index);
          out.push(`${f.name}{${l}${row.labels}} ${value}\n`);
        }
      }
    }
    // Histograms (one row per family), line text up to the value cached per config.
    for (const f of LISTENER_HISTOGRAMS) {
      out.push(f.header);
      const h = f.rows[0].index;
      labels.listeners.forEach(([, slot], i) => histogram(labels.listenerHistogramPrefixes[i][h], r.listenerHistogram(slot, h)));
    }
    for (const f of CLUSTER_HISTOGRAMS) {
      out.push(f.header);
      const h = f.rows[0].index;
      labels.clusters.forEach(([, slot], i) => histogram(labels.clusterHistogramPrefixes[i][h], r.clusterHistogram(slot, h)));
    }
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
        // Indexed [slot entry][histogram handle].
        listenerHistogramPrefixes: listeners.map(([l]) => LISTENER_HISTOGRAMS.map((f) => histogramPrefixes(f.name, l))),
        clusterHistogramPrefixes: clusters.map(([l]) => CLUSTER_HISTOGRAMS.map((f) => histogramPrefixes(f.name, l))),
      };
    }
    return this.labelCache;
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

  /** Circuit breakers, outlier detection, health checks and the rate-limit table: state
   *  the main thread holds (or reads from the shared state) at scrape time. */
  private resilienceDefinitions() {
    const res = this.src.resilience;
    const clusters = () => {
      const snap = this.src.snapshot();
      return dataPlaneConfig(snap.config, snap.resolved).clusters; // DNS clusters: their resolved endpoints
    };
    return [
      mainThread('remora_circuit_breaker_open', () =>
        clusters().flatMap((c) =>
          Object.entries(res.breakers(c)).map(([resource, b]) => ({ labels: { cluster: c.name, resource }, value: b.open ? 1 : 0 })),
        ),
      ),
      mainThread('remora_circuit_breaker_remaining', () =>
        clusters().flatMap((c) =>
          Object.entries(res.breakers(c)).map(([resource, b]) => ({ labels: { cluster: c.name, resource }, value: b.remaining })),
        ),
      ),
      mainThread('remora_cluster_endpoints', () =>
        clusters().flatMap((c) => {
          const counts: Record<string, number> = { healthy: 0, ejected: 0, unhealthy: 0, pending_first_check: 0, probation: 0 };
          for (const ep of c.endpoints) {
            const state = res.endpointState(c.name, ep.address, ep.port);
            if (state in counts) counts[state]++;
          }
          return Object.entries(counts).map(([state, value]) => ({ labels: { cluster: c.name, state }, value }));
        }),
      ),
      mainThread('remora_outlier_ejections_total', () =>
        Object.entries(res.detector.ejections).map(([reason, value]) => ({ labels: { reason }, value })),
      ),
      mainThread('remora_outlier_ejections_active', () =>
        clusters()
          .filter((c) => c.outlier_detection !== undefined)
          .map((c) => ({ labels: { cluster: c.name }, value: res.detector.activeEjections(c.name) })),
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
