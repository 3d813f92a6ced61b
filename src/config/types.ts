// The validated, immutable configuration model (Envoy's shape, simplified):
// listeners → virtual hosts → routes → clusters. The config objects are declared once,
// as schemas in src/config/schema/ (fields, defaults, ranges, units, docs); their types
// are derived from those schemas here, under the names the rest of Remora imports.
// Everything here has its defaults filled in by validate.ts; nothing downstream of
// validation sees raw input. Units are in the field names (`_ms` = milliseconds).

import type { InferOutput } from 'valibot';
import type { EscapedSlashesAction } from '../http/path-normalize.js';
import type { AccessLogGrpcSchema, AccessLogSchema } from './schema/access-log.js';
import type { AuthorizationSchema, RateLimitKeySchema, RateLimitSchema } from './schema/listener.js';
import type { HeaderMatcherSchema, HeaderValueSchema } from './schema/listener.js';
import type {
  DirectResponseSchema, MirrorPolicySchema, RedirectSchema, RegexRewriteSchema, RETRY_ON, RetryPolicySchema, RouteActionSchema, RouteMatchSchema, RouteSchema, VirtualHostSchema, WeightedClusterSchema,
} from './schema/listener.js';
import type { FilterChainMatchSchema, FilterChainSchema, HttpFilterChainSchema, TcpProxySchema, UpgradeConfigSchema } from './schema/listener.js';
import type { CODECS, ListenerSchema, ListenerTlsSchema, SERVER_HEADER_TRANSFORMATIONS, TLS_VERSIONS, XFCC_MODES } from './schema/listener.js';
import type { ClusterDnsSchema, DNS_LOOKUP_FAMILIES } from './schema/cluster.js';
import type { TcpKeepaliveSchema } from './schema/socket.js';
import type {
  CircuitBreakersSchema, ClusterSchema, EndpointSchema, HealthCheckSchema, LB_POLICIES, OutlierDetectionSchema, RetryBudgetSchema, TransportSocketMatchSchema,
  UpstreamTlsSchema,
} from './schema/cluster.js';
import type { AdminSchema, DrainSchema, ProbesSchema, RootSchema, StatsSchema, WorkerLimitsSchema } from './schema/root.js';
import type { MeshIdentitySchema, XdsSchema, XdsTlsSchema } from './schema/root.js';
import type { CustomTagSchema, ListenerTracingSchema, OtlpExporterSchema, RouteTracingSchema, TracingSchema } from './schema/tracing.js';
import type { OTLP_PROTOCOLS, PROPAGATORS, SAMPLERS } from './schema/tracing-names.js';

export type { EscapedSlashesAction };
export type LbPolicy = (typeof LB_POLICIES)[number];
/** Conditions a retry may be made on (Envoy's `retry_on` names). */
export type RetryOn = (typeof RETRY_ON)[number];
export type ListenerCodec = (typeof CODECS)[number];
export type ServerHeaderTransformation = (typeof SERVER_HEADER_TRANSFORMATIONS)[number];
/** Envoy's forward_client_cert_details modes. */
export type XfccMode = (typeof XFCC_MODES)[number];
export type TlsVersion = (typeof TLS_VERSIONS)[number];

// Each type below is documented field by field in its schema (src/config/schema/*.ts).
export type AdminConfig = InferOutput<typeof AdminSchema>;
export type HeaderValue = InferOutput<typeof HeaderValueSchema>;
export type HeaderMatcher = InferOutput<typeof HeaderMatcherSchema>;
export type RouteMatch = InferOutput<typeof RouteMatchSchema>;
export type WeightedCluster = InferOutput<typeof WeightedClusterSchema>;
export type RouteAction = InferOutput<typeof RouteActionSchema>;
export type RetryPolicy = InferOutput<typeof RetryPolicySchema>;
/** A local rate limit: a token bucket shared by every worker of the process. */
export type RateLimit = InferOutput<typeof RateLimitSchema>;
export type RateLimitKey = InferOutput<typeof RateLimitKeySchema>;
export type DirectResponse = InferOutput<typeof DirectResponseSchema>;
export type Redirect = InferOutput<typeof RedirectSchema>;
export type RegexRewrite = InferOutput<typeof RegexRewriteSchema>;
export type MirrorPolicy = InferOutput<typeof MirrorPolicySchema>;
export type Route = InferOutput<typeof RouteSchema>;
export type VirtualHost = InferOutput<typeof VirtualHostSchema>;
/** Per-listener access log: one JSON line per request (a share of them, errors always). */
export type AccessLogConfig = InferOutput<typeof AccessLogSchema>;
export type AccessLogGrpcConfig = InferOutput<typeof AccessLogGrpcSchema>;
export type Listener = InferOutput<typeof ListenerSchema>;
/** A TCP listener's forwarding (Envoy's tcp_proxy). */
export type TcpProxy = InferOutput<typeof TcpProxySchema>;
export type FilterChain = InferOutput<typeof FilterChainSchema>;
/** An HTTPS filter chain picked by SNI (`http_filter_chains`). */
export type HttpFilterChain = InferOutput<typeof HttpFilterChainSchema>;
export type FilterChainMatch = InferOutput<typeof FilterChainMatchSchema>;
/** An HTTP/1.1 upgrade allowed (or, on a route, refused). */
export type UpgradeConfig = InferOutput<typeof UpgradeConfigSchema>;
/** Inbound TLS; files are read and checked by the main thread (docs/tls.md). */
export type ListenerTlsConfig = InferOutput<typeof ListenerTlsSchema>;
/** Allow/deny by peer identity. */
export type Authorization = InferOutput<typeof AuthorizationSchema>;
export type Endpoint = InferOutput<typeof EndpointSchema>;
/** One entry of a cluster's transport_socket_matches (src/upstream/transport-match.ts). */
export type TransportSocketMatch = InferOutput<typeof TransportSocketMatchSchema>;
export type Cluster = InferOutput<typeof ClusterSchema>;
/** Upstream TLS for one cluster. */
export type UpstreamTlsConfig = InferOutput<typeof UpstreamTlsSchema>;
/** Resource limits for the whole cluster, shared by ALL workers of the process. */
export type CircuitBreakers = InferOutput<typeof CircuitBreakersSchema>;
export type RetryBudget = InferOutput<typeof RetryBudgetSchema>;
export type OutlierDetection = InferOutput<typeof OutlierDetectionSchema>;
export type HealthCheck = InferOutput<typeof HealthCheckSchema>;
/** A DNS cluster's settings (src/main/dns-resolver.ts). */
export type ClusterDns = InferOutput<typeof ClusterDnsSchema>;
export type DnsLookupFamily = (typeof DNS_LOOKUP_FAMILIES)[number];
/** TCP keepalive of a listener's or a cluster's connections (src/core/tcp-keepalive.ts). */
export type TcpKeepalive = InferOutput<typeof TcpKeepaliveSchema>;
/** An endpoint as workers and health checks use it. A static cluster's are its written
 *  endpoints; a DNS cluster's come from resolutions (src/config/dns-endpoints.ts):
 *  strict: `address` is a resolved IP and `hostname` the name written; logical:
 *  `address` is the name written (the endpoint's identity) and `dial` the address
 *  connections go to now. */
export type UpstreamEndpoint = Endpoint & { readonly hostname?: string; readonly dial?: string };
/** A read-only HTTP server for probes: GET /ready, /live and /metrics only. */
export type ProbesConfig = InferOutput<typeof ProbesSchema>;
/** Graceful stop (SIGTERM, POST /quitquitquit, POST /drain_listeners). */
export type DrainConfig = InferOutput<typeof DrainSchema>;
/** Limits that protect the sidecar itself. */
export type WorkerLimitsConfig = InferOutput<typeof WorkerLimitsSchema>;
export type StatsConfig = InferOutput<typeof StatsSchema>;
export type RemoraConfig = InferOutput<typeof RootSchema>;
/** The `xds` block of a bootstrap file (src/control/xds-client.ts). */
export type XdsBootstrap = InferOutput<typeof XdsSchema>;
/** The sidecar's mesh identity (docs/mesh-ca.md). */
export type MeshIdentityBootstrap = InferOutput<typeof MeshIdentitySchema>;
/** TLS to the control plane (docs/control-plane.md). */
export type XdsTlsBootstrap = InferOutput<typeof XdsTlsSchema>;

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
  /** Shared-state slots by name (src/shared/shared-state.ts): endpoints by cluster, then
   *  `address:port`; rate-limit buckets keyed by rateLimitSlotName(). */
  readonly stateSlots: {
    readonly endpoints: EndpointSlots;
    readonly buckets: Readonly<Record<string, number>>;
  };
  /** PEM material read and checked by the main thread (src/main/cert-store.ts), by
   *  listener and cluster name; replaced without a new version when files rotate. */
  readonly tls: TlsMaterialSet;
  /** DNS clusters' endpoints as last resolved by the main thread, by cluster name (absent
   *  or missing: none yet). Replaced without a new version when answers change. */
  readonly resolved?: ResolvedEndpoints;
  /** Counts endpoint-only updates of this version (EDS; RunningRemora.updateEndpoints):
   *  workers report the one they run. Absent: 0. */
  readonly endpointsRevision?: number;
}

export type ResolvedEndpoints = Readonly<Record<string, readonly UpstreamEndpoint[]>>;

/** Shared-state slots of endpoints: by cluster name, then `address:port` (endpointKey).
 *  Per cluster, so that an update of one cluster's endpoints replaces one entry. */
export type EndpointSlots = Readonly<Record<string, Readonly<Record<string, number>>>>;

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
  /** By listener name, and by `<listener> <chain>` for a TCP listener's filter chains
   *  that terminate TLS (src/tls/chain-key.ts; names have no spaces). */
  readonly listeners: Readonly<Record<string, TlsMaterial>>;
  readonly clusters: Readonly<Record<string, TlsMaterial>>;
}

/** One validation problem: `path` like `clusters[2].endpoints[0].port`. */
export interface ConfigError {
  readonly path: string;
  readonly message: string;
}
/** Root `tracing`: where spans go, sampling and propagation (src/tracing/settings.ts resolves its defaults). */
export type TracingConfig = InferOutput<typeof TracingSchema>;
export type OtlpExporterConfig = InferOutput<typeof OtlpExporterSchema>;
export type ListenerTracing = InferOutput<typeof ListenerTracingSchema>;
export type RouteTracing = InferOutput<typeof RouteTracingSchema>;
export type CustomTag = InferOutput<typeof CustomTagSchema>;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];
export type SamplerName = (typeof SAMPLERS)[number];
export type PropagatorName = (typeof PROPAGATORS)[number];
