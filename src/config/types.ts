// The validated, immutable configuration model (Envoy's shape, simplified):
// listeners → virtual hosts → routes → clusters. Everything here has its defaults
// filled in by validate.ts; nothing downstream of validation sees raw input.
// Units are in the field names (`_ms` = milliseconds). Scopes are stated per field.

import type { EscapedSlashesAction } from '../http/path-normalize.js';

export type { EscapedSlashesAction };
export type LbPolicy = 'round_robin' | 'least_request' | 'random';

export interface AdminConfig {
  /** Address the admin server binds. Default 127.0.0.1 (loopback only). */
  readonly address: string;
  /** Admin port. Default 9901; 0 picks a free port. */
  readonly port: number;
  /** Must be true to bind admin to a non-loopback address (admin can stop the proxy,
   *  fail its health checks and dump its config). Default false. */
  readonly allow_remote: boolean;
}

export interface HeaderValue {
  readonly name: string; // lower-cased by validation
  readonly value: string;
}

export interface HeaderMatcher {
  readonly name: string; // lower-cased by validation
  /** Exactly one of exact / regex / present is set. */
  readonly exact?: string;
  readonly regex?: string;
  readonly present?: boolean;
}

export interface RouteMatch {
  /** Exactly one of prefix / path / regex is set. Matched against the path without query. */
  readonly prefix?: string;
  readonly path?: string;
  readonly regex?: string;
  /** Upper-case methods; empty = any method. */
  readonly methods: readonly string[];
  readonly headers: readonly HeaderMatcher[];
}

export interface WeightedCluster {
  readonly cluster: string;
  /** Relative weight, integer ≥ 0; weights of a route need not sum to 100. */
  readonly weight: number;
}

export interface RouteAction {
  /** Exactly one of cluster / weighted_clusters is set. */
  readonly cluster?: string;
  readonly weighted_clusters?: readonly WeightedCluster[];
  /** Replaces the matched prefix (prefix routes only). */
  readonly prefix_rewrite?: string;
  /** Replaces the Host header sent upstream. */
  readonly host_rewrite?: string;
  /** Route timeout: from the moment the whole client request has been received until
   *  the upstream's response headers arrive (504, flag UT). 0 disables. Default 15000
   *  (Envoy's default value; Envoy's timer also covers the response body). */
  readonly timeout_ms: number;
  /** Retries for this route; absent = no retries (and retry request headers ignored). */
  readonly retry_policy?: RetryPolicy;
  /** Request bodies larger than this get 413 (and the upstream request is cut). 0 = no
   *  limit (bodies stream). Default 0. */
  readonly max_request_body_bytes: number;
}

/** Conditions a retry may be made on (Envoy's `retry_on` names). */
export type RetryOn = '5xx' | 'gateway-error' | 'reset' | 'connect-failure' | 'retriable-4xx' | 'retriable-status-codes';

export interface RetryPolicy {
  /** When a failed attempt is retried. May be empty when only request headers enable retries. */
  readonly retry_on: readonly RetryOn[];
  /** Retries after the first attempt. Default 1 (Envoy). */
  readonly num_retries: number;
  /** Timeout of each attempt, until its response headers; 0 = none (the route timeout
   *  still covers all attempts together). Default 0. */
  readonly per_try_timeout_ms: number;
  /** Status codes retried under `retriable-status-codes`. */
  readonly retriable_status_codes: readonly number[];
  /** Fully jittered exponential backoff (Envoy's): retry n (from 1) waits
   *  min(max, random[0, (2^n − 1) × base)). Defaults 25 and 10 × base_interval_ms. */
  readonly base_interval_ms: number;
  readonly max_interval_ms: number;
  /** Honour the request's control headers: `x-remora-retry-on` / `x-envoy-retry-on`,
   *  `x-remora-max-retries` / `x-envoy-max-retries`, `x-remora-upstream-rq-timeout-ms` /
   *  `x-envoy-upstream-rq-timeout-ms` and the `-per-try-timeout-ms` variants. Default
   *  false. They are never forwarded, trusted or not. */
  readonly allow_request_headers: boolean;
  /** Retry non-idempotent methods (POST, PATCH, ...) after an upstream reset or a
   *  per-try timeout, when the request may already have been processed. Default false;
   *  true gives Envoy's behaviour (Envoy retries every method). Connect failures and
   *  retriable statuses are retried for every method. */
  readonly retry_non_idempotent_on_reset: boolean;
  /** A request body is kept for replay up to this size (per request); a larger body is
   *  streamed and the request is not retried. Default 65536. */
  readonly buffer_limit_bytes: number;
}

/** A local rate limit: a token bucket shared by every worker of the process. */
export interface RateLimit {
  /** Name in stats and logs; unique within its listener or route. */
  readonly name: string;
  /** Bucket capacity and initial fill. */
  readonly max_tokens: number;
  /** Tokens added every fill interval (capped at max_tokens). Default 1 (Envoy). */
  readonly tokens_per_fill: number;
  /** Milliseconds between fills, ≥ 50. */
  readonly fill_interval_ms: number;
  /** Per-key buckets: each distinct key gets its own bucket. Absent = one bucket for all.
   *  A request that lacks a key header is not limited by this rate limit (Envoy). */
  readonly key?: RateLimitKey;
  /** Shadow mode: count would-be rejections, admit every request. Default false. */
  readonly shadow: boolean;
}

export interface RateLimitKey {
  /** Request headers (lower-case) whose values make up the key, in order. */
  readonly headers: readonly string[];
  /** Include the client's IP address in the key. */
  readonly client_ip: boolean;
}

export interface DirectResponse {
  readonly status: number;
  readonly body: string;
}

export interface Route {
  /** Name used in logs, metrics and rate-limit state. Default `<vhost>/<hash>`: the first
   *  8 hex digits of a SHA-256 of the route's match, so it follows the route, not its
   *  position (validate.ts defaultRouteName). */
  readonly name: string;
  readonly match: RouteMatch;
  /** Exactly one of route / direct_response is set. */
  readonly route?: RouteAction;
  readonly direct_response?: DirectResponse;
  readonly request_headers_to_add: readonly HeaderValue[];
  readonly request_headers_to_remove: readonly string[];
  readonly response_headers_to_add: readonly HeaderValue[];
  readonly response_headers_to_remove: readonly string[];
  /** Local rate limits checked after the route matched (all must admit). */
  readonly rate_limits: readonly RateLimit[];
  /** Checked after the listener's authorization, when this route matched. */
  readonly authorization?: Authorization;
}

export interface VirtualHost {
  readonly name: string;
  /** Host names, lower-case: exact (`api.local`), suffix wildcard (`*.local`), or `*`. */
  readonly domains: readonly string[];
  readonly routes: readonly Route[];
  /** Send `x-remora-attempt-count` upstream on every attempt, the first included
   *  (Envoy's include_request_attempt_count). Retries and resends always carry it.
   *  Default false. */
  readonly include_request_attempt_count?: boolean;
}

/** Per-listener access log: one JSON line per request (a share of them, errors always). */
export interface AccessLogConfig {
  /** `"stdout"`, or a file path (absolute or relative to the working directory). */
  readonly path: string;
  /** Share of requests logged, 0..1; error responses are logged whatever it is. Default 1. */
  readonly sample_ratio: number;
}

export interface Listener {
  readonly name: string;
  /** Bind address. Default 127.0.0.1. */
  readonly address: string;
  /** Port; 0 lets the OS pick (all workers then share the port the first worker got). */
  readonly port: number;
  readonly virtual_hosts: readonly VirtualHost[];
  /** Access log; absent = none for this listener. */
  readonly access_log?: AccessLogConfig;
  /** Start a W3C trace (generate `traceparent`) for requests that carry none. Default false. */
  readonly generate_traceparent: boolean;
  /** Request line plus headers larger than this get 431 and a closed connection.
   *  Default 60 (KiB, Envoy's default). */
  readonly max_request_headers_kb: number;
  /** Local rate limits checked for every request before routing (all must admit). */
  readonly rate_limits: readonly RateLimit[];
  /** TLS (and mTLS when ca_file is set) on this listener; absent = plain HTTP. */
  readonly tls?: ListenerTlsConfig;
  /** What happens to x-forwarded-client-cert (Envoy's forward_client_cert_details).
   *  Default: sanitize_set on a listener that verifies client certificates, else sanitize. */
  readonly forward_client_cert_details: XfccMode;
  /** Who may send requests through this listener (by peer identity); absent = anyone. */
  readonly authorization?: Authorization;
  /** The HTTP/1 front end of a plain listener: `strict` (llhttp through node:http, safe
   *  against request smuggling; the default) or `uws` (uWebSockets.js: faster, but its
   *  parser can be desynchronised; only for clients you trust; docs/architecture.md).
   *  TLS listeners always use `strict`. */
  readonly codec: ListenerCodec;
  /** Requests with more header fields get 431 and a closed connection. Default 100
   *  (Envoy's max_headers_count). */
  readonly max_request_headers_count: number;
  /** Path normalisation before routing and authorization (docs/config.md). Defaults:
   *  normalize_path true, merge_slashes false, escaped slashes keep_unchanged (Envoy's). */
  readonly normalize_path: boolean;
  readonly merge_slashes: boolean;
  readonly path_with_escaped_slashes_action: EscapedSlashesAction;
  /** A connection must send a whole request head within this long (408 and close).
   *  Default 10000 (ms). strict codec only. */
  readonly request_headers_timeout_ms: number;
  /** A keep-alive connection with no request in flight closes after this long. Default
   *  60000 (ms). strict codec only. */
  readonly idle_timeout_ms: number;
  /** Open connections to this listener over all workers; beyond it new connections are
   *  closed at once (counted as downstream_cx_overflow). 0 = no limit (default). */
  readonly max_connections: number;
  /** Requests one connection may carry; the last one is answered with `connection:
   *  close`. 0 = no limit (default, Envoy's). */
  readonly max_requests_per_connection: number;
  /** The `server` header of responses (Envoy's server_name). Default "remora". */
  readonly server_name: string;
  /** overwrite: always `server_name`; append_if_absent: the upstream's, else ours;
   *  pass_through: the upstream's or none (Envoy's server_header_transformation). */
  readonly server_header_transformation: ServerHeaderTransformation;
}

export type ListenerCodec = 'strict' | 'uws';
export type ServerHeaderTransformation = 'overwrite' | 'append_if_absent' | 'pass_through';

/** Envoy's forward_client_cert_details modes. The three that add or forward the header do
 *  so only when the client connection presented a verified certificate; otherwise they
 *  sanitize (remove the client's header). */
export type XfccMode = 'sanitize' | 'sanitize_set' | 'forward_only' | 'append_forward' | 'always_forward_only';

/** Inbound TLS. Files are read and checked by the main thread (a config whose files do
 *  not load is rejected), watched, and hot-swapped when they change (docs/tls.md). */
export interface ListenerTlsConfig {
  /** Server certificate chain (PEM, leaf first) and its private key. */
  readonly cert_file: string;
  readonly key_file: string;
  /** CAs trusted to sign client certificates. Set: clients are asked for a certificate. */
  readonly ca_file?: string;
  /** Refuse clients without a valid certificate. Default true when ca_file is set. */
  readonly require_client_certificate: boolean;
  /** Lowest TLS version accepted. Default TLSv1.2 (1.3 preferred). */
  readonly min_version: TlsVersion;
}

/** Allow/deny by peer identity (the SPIFFE URI SAN of the client certificate, else its
 *  first DNS SAN, else its subject). A pattern is exact, or ends in `*` for a prefix;
 *  `*` alone is any verified identity. Deny wins; when `allow` is non-empty the identity
 *  must match it (a client without a certificate matches nothing). */
export interface Authorization {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
}

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export interface Cluster {
  readonly name: string;
  readonly lb_policy: LbPolicy;
  readonly endpoints: readonly Endpoint[];
  /** TCP connect timeout per attempt. Default 1000. */
  readonly connect_timeout_ms: number;
  /** Pooled keep-alive connections idle longer than this are closed. Default 60000. */
  readonly idle_timeout_ms: number;
  /** Connection limit per endpoint, PER WORKER. Requests beyond it wait in the pool's
   *  queue. Default 1024. */
  readonly max_connections_per_endpoint: number;
  readonly circuit_breakers: CircuitBreakers;
  /** Passive health: eject endpoints that keep failing. Absent = off (Envoy). */
  readonly outlier_detection?: OutlierDetection;
  /** Active health checks run by the main thread. Absent = off. */
  readonly health_check?: HealthCheck;
  /** When fewer than this percentage of endpoints are healthy, balance over all of them
   *  (Envoy's panic threshold). 0 disables panic mode. Default 50. */
  readonly panic_threshold_percent: number;
  /** TLS (and mTLS) to the cluster's endpoints. Absent = plaintext HTTP/1.1. */
  readonly tls?: UpstreamTlsConfig;
}

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

/** Upstream TLS for one cluster. Files are read by each worker when it applies the
 *  config (validation does not touch the file system). */
export interface UpstreamTlsConfig {
  /** PEM bundle of the CAs trusted to sign the upstream's certificate (replaces the
   *  system roots). */
  readonly ca_file: string;
  /** Client certificate chain and key (PEM) presented to the upstream (mTLS); both or neither. */
  readonly cert_file?: string;
  readonly key_file?: string;
  /** SNI server name. Absent: the endpoint address when it is a host name, else none. */
  readonly sni?: string;
  /** Exact subject alt names accepted (URI SANs such as spiffe://… or DNS names); the
   *  server certificate must present one of them. Empty: standard host name
   *  verification against the SNI name when there is one, else CA verification only. */
  readonly verify_subject_alt_names: readonly string[];
  /** Lowest TLS version offered. Default TLSv1.2 (TLS 1.3 is preferred when both support it). */
  readonly min_version: TlsVersion;
}

/** Resource limits for the whole cluster, shared by ALL workers of the process
 *  (Envoy's circuit breaker thresholds and defaults). */
export interface CircuitBreakers {
  /** Upstream connections open to the cluster. Default 1024. */
  readonly max_connections: number;
  /** Requests waiting for a connection (queued in a pool). Default 1024. */
  readonly max_pending_requests: number;
  /** Requests outstanding on upstream connections (queued ones are pending, not counted
   *  here: Envoy's semantics). Default 1024. */
  readonly max_requests: number;
  /** Retries in flight (including those waiting in backoff). Default 3. Replaced by
   *  retry_budget when that is set. */
  readonly max_retries: number;
  /** Retries in flight may not exceed budget_percent of active requests (at least
   *  min_retry_concurrency). */
  readonly retry_budget?: RetryBudget;
}

export interface RetryBudget {
  /** Default 20. */
  readonly budget_percent: number;
  /** Default 3. */
  readonly min_retry_concurrency: number;
}

export interface OutlierDetection {
  /** Consecutive 5xx responses (locally generated 503s for connect failures, resets and
   *  timeouts count too) that eject an endpoint. 0 disables. Default 5. */
  readonly consecutive_5xx: number;
  /** Consecutive gateway errors (502, 503, 504, connect failure, reset, timeout) that
   *  eject an endpoint. 0 disables. Default 5. */
  readonly consecutive_gateway_failure: number;
  /** How often success rates are evaluated and ejections expire. Default 10000. */
  readonly interval_ms: number;
  /** Ejection time = base_ejection_time_ms × times ejected, at most max_ejection_time_ms.
   *  Defaults 30000 and 300000. */
  readonly base_ejection_time_ms: number;
  readonly max_ejection_time_ms: number;
  /** At most this share of endpoints is ejected at once, but at least one. Default 10. */
  readonly max_ejection_percent: number;
  /** After an ejection the endpoint is on probation: this many trial requests at a time;
   *  a success makes it healthy, a failure ejects it again. Default 1. */
  readonly probation_requests: number;
  /** Success-rate ejection (per interval): endpoints with at least request_volume
   *  requests, when at least minimum_hosts such endpoints exist; an endpoint whose rate
   *  is below mean − stdev_factor × stdev is ejected. Defaults 5, 100, 1.9. 0 hosts = off. */
  readonly success_rate_minimum_hosts: number;
  readonly success_rate_request_volume: number;
  readonly success_rate_stdev_factor: number;
}

export interface HealthCheck {
  /** HTTP path requested with GET. */
  readonly path: string;
  /** Host header sent; default the cluster name. */
  readonly host: string;
  /** Milliseconds between checks of one endpoint. Default 5000. */
  readonly interval_ms: number;
  /** Milliseconds a check may take. Default 1000. */
  readonly timeout_ms: number;
  /** Passing checks in a row that make an unhealthy endpoint healthy. Default 2. */
  readonly healthy_threshold: number;
  /** Failing checks in a row that make a healthy endpoint unhealthy. Default 3. */
  readonly unhealthy_threshold: number;
  /** Status ranges counted as healthy, [start, end) pairs. Default [[200, 300]]. Any
   *  other status not in retriable_statuses makes a healthy endpoint unhealthy at once
   *  (Envoy: a non-expected, non-retriable status is an immediate failure). */
  readonly expected_statuses: readonly (readonly [number, number])[];
  /** Status ranges that fail a check but count toward unhealthy_threshold like a timeout
   *  or a network error, instead of failing the endpoint at once. Default none. */
  readonly retriable_statuses: readonly (readonly [number, number])[];
  /** Milliseconds between checks while the cluster has never had traffic (no upstream
   *  connection seen yet); takes precedence over the others. Default 60000 (Envoy). */
  readonly no_traffic_interval_ms: number;
  /** The same, for endpoints that currently pass. Default no_traffic_interval_ms. */
  readonly no_traffic_healthy_interval_ms: number;
  /** Milliseconds between checks of an unhealthy endpoint. Default interval_ms. */
  readonly unhealthy_interval_ms: number;
  /** Milliseconds to the first check after an endpoint was marked unhealthy. Default
   *  unhealthy_interval_ms. */
  readonly unhealthy_edge_interval_ms: number;
  /** Milliseconds to the first check after an endpoint was marked healthy. Default interval_ms. */
  readonly healthy_edge_interval_ms: number;
  /** A random 0..interval_jitter_ms milliseconds added to every wait. Default 0. */
  readonly interval_jitter_ms: number;
  /** A random 0..interval_jitter_percent % of the wait added to it (both jitters may
   *  apply). Default 0. */
  readonly interval_jitter_percent: number;
  /** The first check of an endpoint waits a random 0..initial_jitter_ms milliseconds.
   *  Default 0, which still spreads first checks over 0..min(interval_ms, 100). */
  readonly initial_jitter_ms: number;
}

/** A read-only HTTP server for kubelet/load-balancer probes: GET /ready, /live and
 *  /metrics only, so they can be reached without exposing the admin API. */
export interface ProbesConfig {
  /** Bind address. Default 0.0.0.0 (probes come from outside the pod). */
  readonly address: string;
  readonly port: number;
}

/** Graceful stop (SIGTERM, POST /quitquitquit, POST /drain_listeners). */
export interface DrainConfig {
  /** After /ready turns 503, listeners keep accepting this long so load balancers stop
   *  sending first (SIGTERM and /drain_listeners; SIGINT and /quitquitquit skip it).
   *  Default 5000. */
  readonly delay_ms: number;
  /** Then in-flight requests get this long to finish; what is left is cut (and logged).
   *  Default 20000. */
  readonly timeout_ms: number;
}

/** Limits that protect the sidecar itself. */
export interface WorkerLimitsConfig {
  /** A worker whose heartbeat (stored every second) is older than this is considered
   *  hung and replaced. Default 10000; 0 turns the watchdog off. */
  readonly heartbeat_timeout_ms: number;
  /** V8 old-generation limit per worker thread, MiB; a worker that exceeds it is
   *  replaced. 0 = Node's default. Default 0. */
  readonly memory_limit_mb: number;
  /** Open client connections over every listener and worker of the process; beyond it
   *  new connections are closed at once (Envoy's global_downstream_max_connections).
   *  0 = no limit. Default 0. Listeners' own max_connections apply as well. */
  readonly max_downstream_connections: number;
}

export interface StatsConfig {
  /** Workers count requests, connections and latencies into shared memory for /metrics
   *  and /stats. Default true; false makes recording a no-op (to measure its price). */
  readonly enabled: boolean;
}

export interface RemoraConfig {
  /** Worker threads. Default: os.availableParallelism(). */
  readonly workers: number;
  readonly admin: AdminConfig;
  /** Probe server; absent = none (use the admin port). */
  readonly probes?: ProbesConfig;
  readonly drain: DrainConfig;
  readonly worker_limits: WorkerLimitsConfig;
  readonly stats: StatsConfig;
  readonly listeners: readonly Listener[];
  readonly clusters: readonly Cluster[];
}

/** A config with the version it was applied as; what workers receive. */
export interface ConfigSnapshot {
  readonly version: number;
  readonly config: RemoraConfig;
  /** Listener name → port actually bound (resolves port 0). */
  readonly boundPorts: Readonly<Record<string, number>>;
  /** Stats slab slots by name (src/shared/stats-layout.ts); a name keeps its slot. */
  readonly statSlots: {
    readonly listeners: Readonly<Record<string, number>>;
    readonly clusters: Readonly<Record<string, number>>;
  };
  /** Shared-state slots by name (src/shared/shared-state.ts): endpoints keyed
   *  `cluster|address:port`, rate-limit buckets keyed by rateLimitSlotName(). */
  readonly stateSlots: {
    readonly endpoints: Readonly<Record<string, number>>;
    readonly buckets: Readonly<Record<string, number>>;
  };
  /** PEM material read and checked by the main thread (src/main/cert-store.ts), by
   *  listener and cluster name; replaced without a new version when files rotate. */
  readonly tls: TlsMaterialSet;
}

/** The PEM contents of one listener's or cluster's TLS files. `revision` changes when
 *  any of them does. */
export interface TlsMaterial {
  readonly revision: number;
  readonly cert?: string;
  readonly key?: string;
  readonly ca?: string;
  /** The own certificate's first URI SAN ('' when none): XFCC's By. */
  readonly identity: string;
}

export interface TlsMaterialSet {
  readonly listeners: Readonly<Record<string, TlsMaterial>>;
  readonly clusters: Readonly<Record<string, TlsMaterial>>;
}

/** One validation problem: `path` like `clusters[2].endpoints[0].port`. */
export interface ConfigError {
  readonly path: string;
  readonly message: string;
}

/** The `xds` block of a bootstrap file: listeners and clusters come from a control
 *  plane instead of the file (src/control/xds-client.ts). */
export interface XdsBootstrap {
  /** Control-plane addresses, HOST:PORT, tried in order (failover). */
  readonly servers: readonly string[];
  readonly node: { readonly id: string; readonly cluster: string; readonly metadata: Readonly<Record<string, string>> };
  /** Where the last applied config is saved, to start from when no control plane answers. */
  readonly persist_path?: string;
  /** How long startup waits for the control plane before using the persisted config.
   *  Default 10000. */
  readonly initial_fetch_timeout_ms: number;
  /** A certificate for this sidecar's SPIFFE identity from the control plane's mesh CA. */
  readonly mesh_identity?: MeshIdentityBootstrap;
}

/** The sidecar's mesh identity (docs/mesh-ca.md): a certificate for `spiffe_id` from the
 *  control plane's mesh CA, written to files in `dir` and renewed before it expires. */
export interface MeshIdentityBootstrap {
  /** spiffe://<trust-domain>/<path>. */
  readonly spiffe_id: string;
  /** Where key.pem, cert.pem and ca.pem are written (created when missing). */
  readonly dir: string;
  /** Lifetime asked for, seconds. Default 86400; the CA may clamp it (the reference CA
   *  grants 600 .. 1296000). */
  readonly lifetime_seconds: number;
  /** Renew once this fraction of the certificate's lifetime has passed. Default 0.5. */
  readonly renew_fraction: number;
  /** Its content (trimmed) is sent as `authorization: Bearer <token>`; read for every
   *  request, so a rotated token applies at once. */
  readonly token_file?: string;
}
