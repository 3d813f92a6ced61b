// Prometheus families the main thread computes from its own state at scrape time
// (workers, config, TLS files, circuit breakers, outlier detection, health checks, xDS,
// the OTLP span exporter):
// declared once here, keyed by name. src/main/metrics.ts collects them by these names;
// docs/metrics.md lists them from this table (src/stats/metrics-doc.ts). The
// remora_process_* families are declared in src/main/process-metrics.ts.

import type { StatKind } from './table.js';

export interface MainThreadMetric {
  readonly kind: StatKind;
  /** Label names, in the order samples carry them. */
  readonly labels: readonly string[];
  /** Prometheus HELP text. */
  readonly help: string;
  /** Meaning in docs/metrics.md. */
  readonly doc: string;
}

export const MAIN_THREAD_METRICS = {
  remora_tls_certificate_expiry_seconds: {
    kind: 'gauge',
    labels: ['owner', 'role', 'serial'],
    help: 'Seconds until each TLS certificate in use expires (negative: expired), by owner, role and serial.',
    doc: 'seconds until each certificate in use expires (server/client leaf and each CA; negative once expired)',
  },
  remora_tls_earliest_expiry_seconds: {
    kind: 'gauge',
    labels: [],
    help: 'Seconds until the earliest TLS certificate in use expires (alert well before 0); absent without TLS.',
    doc: 'seconds until the earliest certificate in use expires; alert on it, e.g. `remora_tls_earliest_expiry_seconds < 7 * 86400` (absent without TLS)',
  },
  remora_tls_rotations_total: {
    kind: 'counter',
    labels: ['result'],
    help: 'Changed TLS files: applied (new handshakes use them) or rejected (the old ones keep serving).',
    doc: 'changed TLS files: `applied` (new handshakes use them) or `rejected` (broken, mismatched or expired; the old ones keep serving)',
  },
  remora_worker_restarts_total: {
    kind: 'counter',
    labels: ['worker'],
    help: 'Worker replacements after a worker died.',
    doc: 'replacements after a worker died',
  },
  remora_workers: {
    kind: 'gauge',
    labels: ['state'],
    help: 'Worker slots by state.',
    doc: 'worker slots by state (starting, listening, restarting, failed, stopped)',
  },
  remora_config_version: {
    kind: 'gauge',
    labels: [],
    help: 'Config version applied.',
    doc: 'config version applied',
  },
  remora_config_reloads_total: {
    kind: 'counter',
    labels: [],
    help: 'Config reloads applied.',
    doc: 'config reloads applied',
  },
  remora_config_rejections_total: {
    kind: 'counter',
    labels: [],
    help: 'Config changes rejected by validation (the running config kept serving).',
    doc: 'config changes rejected by validation (the running config kept serving)',
  },
  remora_startup_seconds: {
    kind: 'gauge',
    labels: [],
    help: 'Seconds from process start to ready (every worker listening); -1 before.',
    doc: 'seconds from process start to ready (every worker listening); -1 before',
  },
  remora_ready: {
    kind: 'gauge',
    labels: [],
    help: 'Whether /ready answers 200 (1) or 503 (0).',
    doc: 'whether `/ready` answers 200 (1) or 503 (0)',
  },
  remora_xds_connected: {
    kind: 'gauge',
    labels: [],
    help: 'Whether the xDS stream to a control plane is up (1) or not (0).',
    doc: 'xDS mode: whether the stream to the control plane is up (1) or not (0)',
  },
  remora_xds_updates_total: {
    kind: 'counter',
    labels: ['result'],
    help: 'xDS responses by result: ack (applied or warming) and nack (rejected; the running config kept serving).',
    doc: 'xDS mode: responses by result, `ack` (applied or warming) or `nack` (rejected; the running config kept serving)',
  },
  remora_xds_reconnects_total: {
    kind: 'counter',
    labels: [],
    help: 'Times the xDS stream was re-established.',
    doc: 'xDS mode: times the stream was re-established',
  },
  remora_xds_unknown_fields_total: {
    kind: 'counter',
    labels: [],
    help: 'Fields of received xDS resources that this Remora\'s protos do not know (accepted without them; each resource version counted).',
    doc: 'xDS mode: fields of received resources this Remora does not know, accepted without them and listed in `/config_dump` (`xds.unknown_fields`)',
  },
  remora_xds_fields_without_effect: {
    kind: 'gauge',
    labels: ['field'],
    help: 'Resources of the applied xDS config that set a field Remora accepts without effect, by field.',
    doc: 'xDS mode: per field that Remora accepts as having no effect (docs/xds.md), how many resources of the applied config set it; also in `/config_dump` (`xds.fields_without_effect`)',
  },
  remora_xds_config_age_seconds: {
    kind: 'gauge',
    labels: [],
    help: 'Seconds since the last config from the control plane was applied (-1: none yet).',
    doc: 'xDS mode: seconds since the last config from the control plane was applied (-1: none yet)',
  },
  remora_circuit_breaker_open: {
    kind: 'gauge',
    labels: ['cluster', 'resource'],
    help: 'Whether a circuit-breaker resource is at its limit (1) or not (0), by cluster and resource.',
    doc: '1 when a breaker resource (connections, pending_requests, requests, retries) is at its limit, process-wide',
  },
  remora_circuit_breaker_remaining: {
    kind: 'gauge',
    labels: ['cluster', 'resource'],
    help: 'Room left under a circuit-breaker limit, by cluster and resource (all workers).',
    doc: 'room left under each breaker limit, process-wide (Envoy: `circuit_breakers.default.remaining_*`)',
  },
  remora_cluster_endpoints: {
    kind: 'gauge',
    labels: ['cluster', 'state'],
    help: 'Endpoints by state (healthy, ejected, unhealthy, pending_first_check, probation), by cluster.',
    doc: 'endpoints by state: healthy, ejected, unhealthy, pending_first_check, probation',
  },
  remora_cluster_dns_resolutions_total: {
    kind: 'counter',
    labels: ['cluster', 'result'],
    help: 'DNS resolutions of a DNS cluster\'s host names, by cluster and result: attempt, success, failure, empty (a success without addresses).',
    doc: 'DNS clusters: resolutions of their host names — `attempt`, `success`, `failure` (the last good addresses kept serving), `empty` (a success without addresses, counted in `success` too); Envoy: `cluster.<name>.update_attempt`, `update_success`, `update_failure`, `update_empty`',
  },
  remora_outlier_ejections_total: {
    kind: 'counter',
    labels: ['reason'],
    help: 'Endpoint ejections by outlier detection, by reason.',
    doc: 'ejections: consecutive_5xx, consecutive_gateway, success_rate, probation_failure (Envoy: `outlier_detection.ejections_enforced_*`)',
  },
  remora_outlier_ejections_active: {
    kind: 'gauge',
    labels: ['cluster'],
    help: 'Endpoints ejected right now, by cluster.',
    doc: 'endpoints ejected now (Envoy: `outlier_detection.ejections_active`)',
  },
  remora_outlier_ejections_overflow_total: {
    kind: 'counter',
    labels: [],
    help: 'Ejections not made because max_ejection_percent was reached.',
    doc: 'ejections not made because `max_ejection_percent` was reached (Envoy: `outlier_detection.ejections_overflow`)',
  },
  remora_health_checks_total: {
    kind: 'counter',
    labels: ['result'],
    help: 'Active health checks, by result.',
    doc: 'active health checks: success, timeout, network_error, bad_status',
  },
  remora_rate_limit_table_entries: {
    kind: 'gauge',
    labels: [],
    help: 'Per-key rate-limit buckets in use (the table holds a fixed number).',
    doc: 'per-key rate-limit buckets in use (of 65,536)',
  },
  remora_rate_limit_table_evictions_total: {
    kind: 'counter',
    labels: [],
    help: 'Per-key buckets evicted (least recently used) to make room for a new key.',
    doc: 'per-key buckets evicted (least recently used) to make room',
  },
  remora_access_log_grpc_entries_sent_total: {
    kind: 'counter',
    labels: ['cluster', 'log_name'],
    help: 'gRPC access log entries written to the access log service stream.',
    doc: 'gRPC access logs: entries written to the `StreamAccessLogs` stream of each cluster and log name',
  },
  remora_access_log_grpc_entries_dropped_total: {
    kind: 'counter',
    labels: ['cluster', 'log_name', 'reason'],
    help: 'gRPC access log entries not sent, by reason: worker_buffer_full, queue_full, stream_failed, unconfigured.',
    doc: 'gRPC access logs: entries not sent — `worker_buffer_full` (a worker held 2 MiB of entries it had not handed over), `queue_full` (the stream already held 10,000 entries or 16 MiB: the service is down or slow), `stream_failed` (written to a stream that then failed), `unconfigured` (held when the log was removed from the config or Remora stopped)',
  },
  remora_access_log_grpc_streams_total: {
    kind: 'counter',
    labels: ['cluster', 'log_name', 'result'],
    help: 'StreamAccessLogs streams opened, and streams that ended with an error.',
    doc: 'gRPC access logs: `StreamAccessLogs` streams `opened`, and those that `failed` (ended with an error; another is opened after a backoff)',
  },
  remora_access_log_grpc_queue_entries: {
    kind: 'gauge',
    labels: ['cluster', 'log_name'],
    help: 'gRPC access log entries the main thread holds now, waiting for the stream (at most 10000).',
    doc: 'gRPC access logs: entries the main thread holds now, waiting for the stream (at most 10,000 per stream)',
  },
  remora_trace_spans_exported_total: {
    kind: 'counter',
    labels: [],
    help: 'Spans the OTLP collector accepted.',
    doc: 'tracing: spans the OTLP collector accepted',
  },
  remora_trace_spans_dropped_total: {
    kind: 'counter',
    labels: ['reason'],
    help: 'Finished spans not exported, by reason: worker_queue_full, export_queue_full, export_failed, rejected.',
    doc: 'tracing: finished spans not exported — `worker_queue_full` (a worker\'s batch queue was full), `export_queue_full` (the exporter already held `max_queue_size` spans: the collector is slow or down), `export_failed` (not retryable, or given up after 5 tries or 30 s), `rejected` (the collector refused them in a partial success)',
  },
  remora_trace_export_requests_total: {
    kind: 'counter',
    labels: ['result'],
    help: 'OTLP export tries, by result: success, retry (a retryable failure) or failure (not retryable).',
    doc: 'tracing: OTLP export tries — `success`, `retry` (a retryable failure: UNAVAILABLE, 503, timeout, connection error…) or `failure` (not retryable)',
  },
  remora_trace_export_queue_spans: {
    kind: 'gauge',
    labels: [],
    help: 'Spans the OTLP exporter holds now, waiting or being retried (at most max_queue_size).',
    doc: 'tracing: spans the exporter holds now, waiting or being retried (at most `tracing.otlp.max_queue_size`)',
  },
} as const satisfies Record<string, MainThreadMetric>;

export type MainThreadMetricName = keyof typeof MAIN_THREAD_METRICS;
