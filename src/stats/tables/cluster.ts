// Per-cluster stats, one block per cluster slot in each worker's slab (shared by the
// cluster's endpoint pools): the table that declares their slab order, /stats names
// (Envoy's `cluster.<name>.…`), Prometheus families (label `cluster`) and help text.

import { grpcStatusRows, statusClassRows, type StatRow } from './table.js';

export const CLUSTER_ROWS = [
  // The status-class block comes first: upstreamResponse adds Rq1xx + class.
  ...statusClassRows('Rq', 'upstream_rq_', 'remora_upstream_requests_total',
    'Upstream responses by cluster and status class.', 'upstream responses by class'),
  // Responses that made Remora retry (they never reached the client): Envoy's
  // cluster.<name>.retry.upstream_rq_<class>. retriedResponse adds RetryRq1xx + class.
  ...statusClassRows('RetryRq', 'retry.upstream_rq_', 'remora_upstream_retried_responses_total',
    'Upstream responses that were retried (not sent to the client), by cluster and status class.', 'upstream responses that were retried, by class'),
  // gRPC responses by grpc-status (headers or trailers): recordRequest adds Grpc0 + code.
  ...grpcStatusRows('Grpc', 'grpc.upstream_rq_', 'remora_upstream_grpc_responses_total',
    'gRPC responses from upstreams by cluster and grpc-status (from headers or trailers; 17 codes and "other").',
    'gRPC calls answered by the upstream, by `grpc-status` (a call cut off before its status is not counted)'),
  { handle: 'CxTotal', kind: 'counter', stats: 'upstream_cx_total', prom: 'remora_upstream_connections_total',
    help: 'Upstream connections opened.', doc: 'upstream connections opened' },
  { handle: 'CxActive', kind: 'gauge', stats: 'upstream_cx_active', prom: 'remora_upstream_connections_active',
    help: 'Open upstream connections.', doc: 'open upstream connections' },
  { handle: 'CxRxBytes', kind: 'counter', stats: 'upstream_cx_rx_bytes_total', prom: 'remora_upstream_tunnel_bytes_received_total',
    help: 'Bytes received from upstreams on TCP proxy and upgraded connections.', doc: 'bytes received on `tcp_proxy` and upgraded connections' },
  { handle: 'CxTxBytes', kind: 'counter', stats: 'upstream_cx_tx_bytes_total', prom: 'remora_upstream_tunnel_bytes_sent_total',
    help: 'Bytes sent to upstreams on TCP proxy and upgraded connections.', doc: 'bytes sent on `tcp_proxy` and upgraded connections' },
  { handle: 'CxMaxRequests', kind: 'counter', stats: 'upstream_cx_max_requests', prom: 'remora_upstream_connections_max_requests_total',
    help: 'Upstream connections closed because they reached max_requests_per_connection.', doc: 'connections closed at the cluster\'s `max_requests_per_connection`' },
  { handle: 'CxConnectFail', kind: 'counter', stats: 'upstream_cx_connect_fail', prom: 'remora_upstream_connect_failures_total',
    help: 'Failed upstream connects, timeouts included.', doc: 'failed connects, timeouts included' },
  { handle: 'RqPending', kind: 'gauge', stats: 'upstream_rq_pending_active', prom: 'remora_upstream_pending_requests',
    help: 'Requests waiting for a pooled upstream connection.', doc: 'requests waiting for a pooled connection' },
  { handle: 'RqTimeout', kind: 'counter', stats: 'upstream_rq_timeout', prom: 'remora_upstream_timeouts_total',
    help: 'Requests that hit the route timeout.', doc: 'route timeouts (flag UT)' },
  { handle: 'Resets', kind: 'counter', stats: 'upstream_cx_destroy_remote_with_active_rq', prom: 'remora_upstream_resets_total',
    help: 'Upstream connections closed or reset mid-exchange.', doc: 'upstream closed/reset mid-exchange (flag UC)' },
  { handle: 'ProtocolErrors', kind: 'counter', stats: 'upstream_cx_protocol_error', prom: 'remora_upstream_protocol_errors_total',
    help: 'Malformed upstream responses.', doc: 'malformed upstream responses (flag UPE)' },
  { handle: 'KeepAliveRetries', kind: 'counter', stats: 'upstream_keepalive_retry', prom: 'remora_upstream_keepalive_retries_total',
    help: 'Requests resent on a fresh connection after the keep-alive race.',
    doc: 'requests resent on a fresh connection without a retry policy: one that provably never reached the upstream, ' +
      'or an idempotent one after the keep-alive race ([resilience.md](resilience.md#sending-a-request-twice))' },
  // Circuit breakers and retries (Envoy's names).
  { handle: 'CxOverflow', kind: 'counter', stats: 'upstream_cx_overflow', prom: 'remora_upstream_connection_overflows_total',
    help: 'Times max_connections held a request back (it waited for a connection instead).',
    doc: 'times `max_connections` made a request wait for a connection' },
  { handle: 'RqPendingOverflow', kind: 'counter', stats: 'upstream_rq_pending_overflow', prom: 'remora_upstream_pending_overflows_total',
    help: 'Requests refused (503 UO) because max_pending_requests was reached.', doc: 'requests refused (503 UO) at `max_pending_requests`' },
  { handle: 'RqOverflow', kind: 'counter', stats: 'upstream_rq_overflow', prom: 'remora_upstream_request_overflows_total',
    help: 'Requests refused (503 UO) because max_requests was reached.', doc: 'requests refused (503 UO) at `max_requests`' },
  { handle: 'RqRetry', kind: 'counter', stats: 'upstream_rq_retry', prom: 'remora_upstream_retries_total',
    help: 'Retries made.', doc: 'retries made' },
  { handle: 'RqRetrySuccess', kind: 'counter', stats: 'upstream_rq_retry_success', prom: 'remora_upstream_retry_successes_total',
    help: 'Retries whose attempt succeeded.', doc: 'retries whose attempt succeeded' },
  { handle: 'RqRetryOverflow', kind: 'counter', stats: 'upstream_rq_retry_overflow', prom: 'remora_upstream_retry_overflows_total',
    help: 'Retries not made because max_retries or the retry budget was reached (flag UO, as Envoy).',
    doc: 'retries refused by `max_retries` or the retry budget' },
  { handle: 'RqRetryLimitExceeded', kind: 'counter', stats: 'upstream_rq_retry_limit_exceeded', prom: 'remora_upstream_retry_limit_exceeded_total',
    help: 'Requests that failed after num_retries retries (flag URX).', doc: 'requests that failed after `num_retries` retries (flag URX)' },
  { handle: 'RqPerTryTimeout', kind: 'counter', stats: 'upstream_rq_per_try_timeout', prom: 'remora_upstream_per_try_timeouts_total',
    help: 'Attempts that hit the per-try timeout.', doc: 'attempts that hit `per_try_timeout_ms`' },
  { handle: 'OutlierNotified', kind: 'counter', stats: 'outlier_detection.failure_threshold_reached', prom: 'remora_outlier_threshold_reached_total',
    help: 'Times an endpoint reached a consecutive-failure threshold (the main thread then decides on ejection).',
    doc: 'times an endpoint reached a consecutive-failure threshold (the main thread then decides; not an Envoy stat)' },
  { handle: 'Upstream', kind: 'histogram', stats: 'upstream_rq_time', prom: 'remora_upstream_request_duration_seconds',
    help: 'Time from the upstream request start to the end of its response (to the head of a retried one), by cluster.',
    doc: 'upstream request start to response end, every attempt (a retried response: to its head)' },
  { handle: 'Overhead', kind: 'histogram', stats: 'proxy_overhead', prom: 'remora_proxy_overhead_seconds',
    help: 'Downstream time minus upstream time: the time Remora added, by cluster.',
    doc: 'downstream time minus upstream time: what Remora added (not an Envoy stat)' },
] as const satisfies readonly StatRow[];
