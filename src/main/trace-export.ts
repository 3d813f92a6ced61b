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
  /** The protocol the exporter runs with (a change of encoding needs a new exporter). */
  private protocol = '';
  /** Counts of exporters that were replaced or stopped, and spans dropped while none
   *  was configured, so the metrics only grow; null until there is anything to count. */
  private retired: Counters | null = null;
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
    if (this.exporter !== null && this.protocol === opts.protocol) {
      this.exporter.update(opts);
    } else {
      this.retire();
      this.exporter = new OtlpExporter(opts);
    }
    this.key = key;
    this.protocol = opts.protocol;
    this.log.info({ protocol: opts.protocol, endpoint: opts.endpoint, service: settings.serviceName }, 'tracing: exporting spans over OTLP');
  }

  onWorkerMessage(msg: FromWorker): void {
    if (msg.type !== 'spans') return;
    if (this.exporter === null) {
      const r = (this.retired ??= zeroCounters());
      r.dropped.export_failed += msg.count + msg.dropped;
      return;
    }
    this.exporter.submit({ count: msg.count, proto: msg.proto, json: msg.json, dropped: msg.dropped });
  }

  /** Totals since start (every exporter this process had), for /metrics; null when
   *  tracing was never configured. */
  counters(): Counters | null {
    const now = this.exporter?.counters() ?? null;
    if (now === null) return this.retired;
    return this.retired === null ? now : { ...addCounters(this.retired, now), queuedSpans: now.queuedSpans };
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
    this.retired = addCounters(this.retired ?? zeroCounters(), e.counters());
    this.exporter = null;
    this.key = '';
    void e.shutdown(2000).catch(() => {});
  }
}

function zeroCounters(): Counters {
  return { exported: 0, dropped: { worker_queue_full: 0, export_queue_full: 0, export_failed: 0, rejected: 0 }, requests: { success: 0, failure: 0, retry: 0 }, queuedSpans: 0 };
}

/** a + b, field by field; queuedSpans 0 (what a retired exporter held is gone). */
function addCounters(a: Counters, b: Counters): Counters {
  const d = (k: keyof Counters['dropped']): number => a.dropped[k] + b.dropped[k];
  const r = (k: keyof Counters['requests']): number => a.requests[k] + b.requests[k];
  return {
    exported: a.exported + b.exported,
    dropped: { worker_queue_full: d('worker_queue_full'), export_queue_full: d('export_queue_full'), export_failed: d('export_failed'), rejected: d('rejected') },
    requests: { success: r('success'), failure: r('failure'), retry: r('retry') },
    queuedSpans: 0,
  };
}
