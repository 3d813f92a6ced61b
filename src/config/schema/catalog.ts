// The named config objects, in the order docs/config.md documents them: the JSON Schema's
// definitions and the generated docs tables (docs.ts) are made from this list.

import type { GenericSchema } from 'valibot';
import { ClusterDnsSchema, DnsFailureRefreshSchema } from './cluster.js';
import { CircuitBreakersSchema, ClusterSchema, EndpointSchema, HealthCheckSchema, OutlierDetectionSchema, RetryBudgetSchema, TransportSocketMatchSchema, UpstreamTlsSchema } from './cluster.js';
import { HeaderMatcherSchema, HeaderValueSchema } from './listener.js';
import { FilterChainMatchSchema, FilterChainSchema, HttpFilterChainSchema, ListenerSchema, ListenerTlsSchema, TcpProxySchema, UpgradeConfigSchema } from './listener.js';
import { AccessLogGrpcSchema, AccessLogSchema } from './access-log.js';
import { AuthorizationSchema, RateLimitKeySchema, RateLimitSchema } from './listener.js';
import { AdminSchema, DrainSchema, ProbesSchema, RootSchema, StatsSchema, WorkerLimitsSchema } from './root.js';
import { DirectResponseSchema, MirrorPolicySchema, RedirectSchema, RegexRewriteSchema, RetryPolicySchema, RouteActionSchema, RouteMatchSchema, RouteSchema, VirtualHostSchema, WeightedClusterSchema } from './listener.js';
import { MeshIdentitySchema, XdsNodeSchema, XdsSchema, XdsTlsSchema } from './root.js';
import { CustomTagSchema, ListenerTracingSchema, OtlpExporterSchema, RouteTracingSchema, TracingSchema } from './tracing.js';

export interface CatalogEntry {
  /** Definition name in the JSON Schema, and the docs table's marker. */
  readonly name: string;
  readonly schema: GenericSchema;
  /** The docs heading's anchor (default: the name, lower-cased). */
  readonly anchor?: string;
}

export const CATALOG: readonly CatalogEntry[] = [
  { name: 'Root', schema: RootSchema },
  { name: 'Xds', schema: XdsSchema, anchor: 'xds-bootstrap-xds' },
  { name: 'XdsNode', schema: XdsNodeSchema },
  { name: 'MeshIdentity', schema: MeshIdentitySchema },
  { name: 'XdsTls', schema: XdsTlsSchema },
  { name: 'Probes', schema: ProbesSchema },
  { name: 'Drain', schema: DrainSchema },
  { name: 'WorkerLimits', schema: WorkerLimitsSchema },
  { name: 'Stats', schema: StatsSchema },
  { name: 'Admin', schema: AdminSchema },
  { name: 'Tracing', schema: TracingSchema },
  { name: 'OtlpExporter', schema: OtlpExporterSchema },
  { name: 'Listener', schema: ListenerSchema },
  { name: 'ListenerTls', schema: ListenerTlsSchema },
  { name: 'TcpProxy', schema: TcpProxySchema },
  { name: 'FilterChain', schema: FilterChainSchema },
  { name: 'FilterChainMatch', schema: FilterChainMatchSchema },
  { name: 'HttpFilterChain', schema: HttpFilterChainSchema },
  { name: 'UpgradeConfig', schema: UpgradeConfigSchema },
  { name: 'Authorization', schema: AuthorizationSchema },
  { name: 'AccessLog', schema: AccessLogSchema },
  { name: 'AccessLogGrpc', schema: AccessLogGrpcSchema },
  { name: 'ListenerTracing', schema: ListenerTracingSchema },
  { name: 'CustomTag', schema: CustomTagSchema },
  { name: 'VirtualHost', schema: VirtualHostSchema },
  { name: 'Route', schema: RouteSchema },
  { name: 'RouteMatch', schema: RouteMatchSchema },
  { name: 'HeaderMatcher', schema: HeaderMatcherSchema },
  { name: 'RouteAction', schema: RouteActionSchema },
  { name: 'WeightedCluster', schema: WeightedClusterSchema },
  { name: 'RetryPolicy', schema: RetryPolicySchema },
  { name: 'RateLimit', schema: RateLimitSchema },
  { name: 'RateLimitKey', schema: RateLimitKeySchema },
  { name: 'RouteTracing', schema: RouteTracingSchema },
  { name: 'DirectResponse', schema: DirectResponseSchema },
  { name: 'Redirect', schema: RedirectSchema },
  { name: 'RegexRewrite', schema: RegexRewriteSchema },
  { name: 'MirrorPolicy', schema: MirrorPolicySchema },
  { name: 'HeaderValue', schema: HeaderValueSchema },
  { name: 'Cluster', schema: ClusterSchema },
  { name: 'UpstreamTls', schema: UpstreamTlsSchema },
  { name: 'CircuitBreakers', schema: CircuitBreakersSchema },
  { name: 'RetryBudget', schema: RetryBudgetSchema },
  { name: 'OutlierDetection', schema: OutlierDetectionSchema },
  { name: 'HealthCheck', schema: HealthCheckSchema },
  { name: 'ClusterDns', schema: ClusterDnsSchema },
  { name: 'DnsFailureRefresh', schema: DnsFailureRefreshSchema },
  { name: 'Endpoint', schema: EndpointSchema },
  { name: 'TransportSocketMatch', schema: TransportSocketMatchSchema },
];

const byIdentity = new Map<GenericSchema, CatalogEntry>(CATALOG.map((e) => [e.schema, e]));

/** The catalog entry a field's schema refers to, looking through optional and pipes. */
export function namedObject(schema: GenericSchema): CatalogEntry | undefined {
  let s: GenericSchema | undefined = schema;
  while (s !== undefined) {
    const entry = byIdentity.get(s);
    if (entry) return entry;
    const o = s as { type: string; wrapped?: GenericSchema; pipe?: readonly GenericSchema[] };
    s = o.type === 'optional' ? o.wrapped : o.pipe?.[0];
  }
  return undefined;
}

export const anchorOf = (e: CatalogEntry): string => e.anchor ?? e.name.toLowerCase();
