// The main thread's end of tracing: workers post their finished spans, encoded in
// batches (workers/span-buffer.ts); this hands them to the OTLP exporter built from the
// current config's root `tracing` block (src/tracing/otlp-exporter.ts), rebuilds it when
// a reload changes where or how spans go, and stops it last on shutdown so the final
// batches still leave.

import type { RemoraConfig } from '../config/types.js';
import type { Logger } from '../core/log.js';
import { REMORA_VERSION } from '../core/version.js';
import type { FromWorker } from '../shared/messages.js';
import { OtlpExporter, type OtlpExporterOptions } from '../tracing/otlp-exporter.js';
import { resolveTracing } from '../tracing/settings.js';

type Counters = ReturnType<OtlpExporter['counters']>;

export class TraceExport {
  private exporter: OtlpExporter | null = null;
  /** JSON of the options the exporter runs with: a reload that leaves them alone keeps it. */
  private key = '';
  /** Counts of exporters that were replaced or stopped, so the metrics only grow. */
  private retired: Counters | null = null;
  /** Spans workers dropped while no exporter was configured (a reload turned it off). */
  private orphanDropped = 0;
  private warned = '';

  constructor(private readonly log: Logger) {}

  /** Builds, changes or stops the exporter for `config`. */
  apply(config: RemoraConfig): void {
    const t = config.tracing;
    if (t === undefined) {
      this.retire();
      return;
    }
    const settings = resolveTracing(t, process.env);
    const warnings = settings.warnings.join('; ');
    if (warnings !== '' && warnings !== this.warned) this.log.warn({ warnings: settings.warnings }, 'tracing: environment values ignored');
    this.warned = warnings;
    let endpoint = settings.endpoint;
    if (settings.cluster !== null) {
      const ep = config.clusters.find((c) => c.name === settings.cluster)?.endpoints[0];
      if (ep === undefined) {
        this.log.warn({ cluster: settings.cluster }, 'tracing: the collector cluster has no endpoint; spans are dropped until it has one');
        this.retire();
        return;
      }
      const host = ep.address.includes(':') ? `[${ep.address}]` : ep.address;
      endpoint = `http://${host}:${ep.port}${settings.protocol === 'grpc' ? '' : '/v1/traces'}`;
    }
    const opts: OtlpExporterOptions = {
      protocol: settings.protocol,
      endpoint: endpoint!,
      headers: settings.headers,
      timeoutMs: settings.timeoutMs,
      resource: settings.resource,
      scope: { name: 'remora', version: REMORA_VERSION },
      maxQueueSpans: settings.maxQueueSize,
      maxBatchSpans: settings.maxExportBatchSize,
      log: this.log,
    };
    const key = JSON.stringify({ ...opts, log: undefined });
    if (this.exporter !== null && key === this.key) return;
    if (this.exporter !== null && JSON.parse(this.key).protocol === opts.protocol) {
      this.exporter.update(opts);
    } else {
      this.retire();
      this.exporter = new OtlpExporter(opts);
    }
    this.key = key;
    this.log.info({ protocol: opts.protocol, endpoint: opts.endpoint, service: settings.serviceName }, 'tracing: exporting spans over OTLP');
  }

  onWorkerMessage(msg: FromWorker): void {
    if (msg.type !== 'spans') return;
    if (this.exporter === null) {
      this.orphanDropped += msg.count + msg.dropped;
      return;
    }
    this.exporter.submit({ count: msg.count, proto: msg.proto, json: msg.json, dropped: msg.dropped });
  }

  /** Totals since start (every exporter this process had), for /metrics; null when
   *  tracing was never configured. */
  counters(): Counters | null {
    const now = this.exporter?.counters() ?? null;
    const old = this.retired;
    if (now === null && old === null && this.orphanDropped === 0) return null;
    const zero: Counters = { exported: 0, dropped: { worker_queue_full: 0, export_queue_full: 0, export_failed: 0, rejected: 0 }, requests: { success: 0, failure: 0, retry: 0 }, queuedSpans: 0 };
    const a = now ?? zero;
    const b = old ?? zero;
    return {
      exported: a.exported + b.exported,
      dropped: {
        worker_queue_full: a.dropped.worker_queue_full + b.dropped.worker_queue_full,
        export_queue_full: a.dropped.export_queue_full + b.dropped.export_queue_full,
        export_failed: a.dropped.export_failed + b.dropped.export_failed + this.orphanDropped,
        rejected: a.dropped.rejected + b.dropped.rejected,
      },
      requests: { success: a.requests.success + b.requests.success, failure: a.requests.failure + b.requests.failure, retry: a.requests.retry + b.requests.retry },
      queuedSpans: a.queuedSpans,
    };
  }

  /** Sends what is queued (within `deadlineMs`), then stops. */
  async shutdown(deadlineMs: number): Promise<void> {
    const e = this.exporter;
    if (e === null) return;
    try {
      await e.shutdown(deadlineMs);
    } catch (err) {
      this.log.warn({ err }, 'tracing: stopping the exporter failed');
    }
  }

  private retire(): void {
    const e = this.exporter;
    if (e === null) return;
    this.retired = this.counters();
    this.retired = this.retired === null ? null : { ...this.retired, queuedSpans: 0, dropped: { ...this.retired.dropped, export_failed: this.retired.dropped.export_failed - this.orphanDropped } };
    this.exporter = null;
    this.key = '';
    void e.shutdown(2000).catch(() => {});
  }
}
