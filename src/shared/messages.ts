// Messages between the main thread and workers over each worker's MessagePort.
// Config travels as a whole snapshot; stats are pulled on demand (admin requests).

import type { MessagePort } from 'node:worker_threads';
import type { Cluster, ConfigSnapshot, EndpointSlots, ResolvedEndpoints, TlsMaterialSet } from '../config/types.js';

export interface ServeTask {
  readonly slot: number;
  readonly snapshot: ConfigSnapshot;
  readonly port: MessagePort;
  /** This slot's stats slab (kept across worker replacements). */
  readonly statsSlab: SharedArrayBuffer;
  /** Every slot's stats slab, this one included (read to enforce listener max_connections). */
  readonly allStatsSlabs: readonly SharedArrayBuffer[];
  /** The process-wide resilience state (src/shared/shared-state.ts), same for all workers. */
  readonly sharedState: SharedArrayBuffer;
  /** Epoch of the rate-limit fill periods (ms since 1970), same for all workers. */
  readonly epochMs: number;
}

/** Something a worker saw at an endpoint that the main thread decides on. */
export type EndpointEventKind =
  | 'consecutive_5xx'
  | 'consecutive_gateway'
  | 'probation_ok'
  | 'probation_fail'
  | 'immediate_health_check_fail';

export type ToWorker =
  | { readonly type: 'config'; readonly snapshot: ConfigSnapshot }
  /** `endpoints`: with every endpoint's pool state (WorkerStatsReply.clusters). */
  | { readonly type: 'stats'; readonly id: number; readonly endpoints: boolean }
  | { readonly type: 'stop'; readonly graceMs: number }
  /** Draining: every response from now on closes its connection. */
  | { readonly type: 'drain' }
  /** Stop accepting connections; open ones keep being served. */
  | { readonly type: 'stop_listening' }
  | { readonly type: 'crash' }
  /** Fault injection: the worker's event loop blocks forever (the watchdog's case). */
  | { readonly type: 'hang' }
  | { readonly type: 'log_level'; readonly level: string }
  /** Rotated certificates: new handshakes use them, open connections keep theirs. */
  | { readonly type: 'tls'; readonly tls: TlsMaterialSet }
  /** New DNS answers: every DNS cluster's endpoints and the endpoint slots (the same
   *  config version; src/main/dns-resolver.ts). */
  | { readonly type: 'endpoints'; readonly resolved: ResolvedEndpoints; readonly endpointSlots: EndpointSlots }
  /** An endpoint-only update (EDS) of the same config version: the named clusters as
   *  written, their endpoints' slots, and the snapshot's
   *  endpoints revision, which the worker reports back ('endpoints_applied'). */
  | {
      readonly type: 'cluster_endpoints';
      readonly revision: number;
      readonly clusters: readonly Cluster[];
      readonly endpointSlots: EndpointSlots;
    };

export interface EndpointState {
  readonly endpoint: string;
  readonly active: number;
  readonly connections: number;
  readonly idle: number;
  readonly queued: number;
}

export interface WorkerStatsReply {
  readonly type: 'stats';
  readonly id: number;
  readonly slot: number;
  readonly threadId: number;
  readonly version: number;
  readonly inflight: number;
  /** The worker's V8 heap: bytes in use and reserved (v8.getHeapStatistics), and the
   *  young generation's limit in MiB (worker_limits.young_generation_mb, else V8's own). */
  readonly heap: { readonly used: number; readonly total: number; readonly youngLimitMb: number };
  /** Pool state per cluster and endpoint; empty when not asked for (stats request `endpoints`). */
  readonly clusters: Readonly<Record<string, readonly EndpointState[]>>;
}

/** A worker's finished spans, encoded for the exporter (workers/span-buffer.ts). */
export interface SpanBatchMessage {
  readonly type: 'spans';
  readonly count: number;
  /** Encoded ScopeSpans.spans entries (protobuf protocols), else null. */
  readonly proto: Uint8Array | null;
  /** Comma-joined OTLP/JSON span objects (http/json), else null. */
  readonly json: string | null;
  /** Spans the worker dropped since its last message (its list was full). */
  readonly dropped: number;
}

/** A worker's gRPC access log entries for one (cluster, log_name)
 *  (workers/access-log-grpc.ts). */
export interface AccessLogBatchMessage {
  readonly type: 'access_logs';
  readonly cluster: string;
  readonly logName: string;
  /** Entries in `entries`. */
  readonly count: number;
  /** Encoded StreamAccessLogsMessage.HTTPAccessLogEntries body (`log_entry` fields). */
  readonly entries: Uint8Array;
  /** Entries the worker dropped since its last message (it held too many). */
  readonly dropped: number;
}

export type FromWorker =
  | SpanBatchMessage
  | AccessLogBatchMessage
  | { readonly type: 'listening'; readonly slot: number; readonly threadId: number; readonly version: number; readonly endpointsRevision: number }
  | { readonly type: 'endpoints_applied'; readonly revision: number }
  | {
      readonly type: 'listen_failed';
      readonly slot: number;
      readonly version: number;
      readonly listener: string;
      readonly address: string;
      readonly port: number;
    }
  | WorkerStatsReply
  | { readonly type: 'endpoint_event'; readonly endpointSlot: number; readonly kind: EndpointEventKind };
