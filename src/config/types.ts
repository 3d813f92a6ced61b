// The validated, immutable configuration model (Envoy's shape, simplified):
// listeners → virtual hosts → routes → clusters. Everything here has its defaults
// filled in by validate.ts; nothing downstream of validation sees raw input.
// Units are in the field names (`_ms` = milliseconds). Scopes are stated per field.

export type LbPolicy = 'round_robin' | 'least_request' | 'random';

export interface AdminConfig {
  /** Address the admin server binds. Default 127.0.0.1 (loopback only). */
  readonly address: string;
  /** Admin port. Default 9901; 0 picks a free port. */
  readonly port: number;
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
}

export interface DirectResponse {
  readonly status: number;
  readonly body: string;
}

export interface Route {
  /** Name used in logs and metrics. Default `<vhost>/<index>`. */
  readonly name: string;
  readonly match: RouteMatch;
  /** Exactly one of route / direct_response is set. */
  readonly route?: RouteAction;
  readonly direct_response?: DirectResponse;
  readonly request_headers_to_add: readonly HeaderValue[];
  readonly request_headers_to_remove: readonly string[];
  readonly response_headers_to_add: readonly HeaderValue[];
  readonly response_headers_to_remove: readonly string[];
}

export interface VirtualHost {
  readonly name: string;
  /** Host names, lower-case: exact (`api.local`), suffix wildcard (`*.local`), or `*`. */
  readonly domains: readonly string[];
  readonly routes: readonly Route[];
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
}

/** One validation problem: `path` like `clusters[2].endpoints[0].port`. */
export interface ConfigError {
  readonly path: string;
  readonly message: string;
}
