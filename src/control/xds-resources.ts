// Remora's config model → Envoy xDS v3 resources, for the reference control plane: the
// inverse of src/config/xds-translate.ts, within the subset it accepts, so a config
// served and translated back is the same config. Each listener gets an
// HttpConnectionManager that fetches its routes over RDS (a RouteConfiguration named
// after the listener); clusters are EDS with a ClusterLoadAssignment each (or STATIC
// with the endpoints inline). TLS is a `transport_socket` (filter chain, cluster),
// authorization RBAC HTTP filters and per-route RBAC, the XFCC mode the HCM's
// forward_client_cert_details, always written so that a round trip is exact.
// Remora-only fields travel in `metadata.filter_metadata.remora` (docs/xds.md). The
// objects are in proto-loader's shape, ready for encodeAny; nested `Any`s are already encoded.

import type {
  Authorization, Cluster, HeaderMatcher, HeaderValue, Listener, ListenerTlsConfig, RateLimit, RemoraConfig, Route, RouteAction,
  RetryPolicy, TlsVersion, UpstreamTlsConfig,
} from '../config/types.js';
import { FILTER_CONFIG_TYPE_URL, HCM_FILTER_NAME, REMORA_METADATA, ROUTER_FILTER_NAME } from '../config/xds-translate.js';
import { ANY_IDENTITY_REGEX } from '../config/xds-translate-rbac.js';
import { TLS_TRANSPORT_SOCKET } from '../config/xds-translate-tls.js';
import { loadXdsProtos, TypeUrl, type AnyMessage, type ProtoObject } from './xds-protos.js';

export interface XdsResources {
  listeners: Map<string, ProtoObject>;
  /** RouteConfiguration by name (a listener's is named after it). */
  routes: Map<string, ProtoObject>;
  clusters: Map<string, ProtoObject>;
  /** ClusterLoadAssignment by cluster name (EDS clusters only). */
  endpoints: Map<string, ProtoObject>;
}

/** HTTP filter names: one per listener-wide rate limit, and per-route slots (a route's
 *  n-th rate limit is the per-route config of slot n, which has no bucket of its own). */
const LISTENER_LIMIT_FILTER = 'remora.local_ratelimit.';
const ROUTE_LIMIT_SLOT = 'remora.route_local_ratelimit.';
/** RBAC HTTP filters, DENY before ALLOW (Envoy's filter has one action): the listener's
 *  rules, and per-route slots without rules of their own that carry a route's rules. */
const LISTENER_RBAC = { deny: 'remora.rbac.deny', allow: 'remora.rbac.allow' } as const;
const ROUTE_RBAC_SLOT = { deny: 'remora.route_rbac.deny', allow: 'remora.route_rbac.allow' } as const;
const RBAC_POLICY = 'remora';
const RBAC_ACTIONS = ['deny', 'allow'] as const;
/** XFCC modes that add this hop's element to the header. */
const XFCC_SETS: readonly string[] = ['sanitize_set', 'append_forward'];

const ADS = { ads: {}, resource_api_version: 'V3' };

/** Milliseconds → google.protobuf.Duration. */
export function duration(ms: number): ProtoObject {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

const u32 = (value: number): ProtoObject => ({ value });
const percent = (p: number): ProtoObject => ({ default_value: { numerator: p, denominator: 'HUNDRED' } });
const encode = (typeUrl: string, message: ProtoObject): AnyMessage => loadXdsProtos().encodeAny(typeUrl, message);

/** Plain data → google.protobuf.Struct (protobufjs names Value's fields in camelCase). */
function toValue(v: unknown): ProtoObject {
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  if (typeof v === 'object' && v !== null) return { structValue: toStruct(v as Record<string, unknown>) };
  return { nullValue: 'NULL_VALUE' };
}

function toStruct(o: Record<string, unknown>): ProtoObject {
  return { fields: Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined).map(([k, v]) => [k, toValue(v)])) };
}

/** `metadata` carrying Remora-only fields; nothing when there are none. */
function metadata(ext: Record<string, unknown>): ProtoObject {
  const set = Object.entries(ext).filter(([, v]) => v !== undefined);
  return set.length === 0 ? {} : { metadata: { filter_metadata: { [REMORA_METADATA]: toStruct(Object.fromEntries(set)) } } };
}

/** Rate limit keys by name, for the `rate_limit_keys` extension. */
function rateLimitKeys(limits: readonly RateLimit[]): Record<string, unknown> | undefined {
  const keyed = limits.filter((r) => r.key !== undefined);
  if (keyed.length === 0) return undefined;
  return Object.fromEntries(keyed.map((r) => [r.name, { headers: [...(r.key?.headers ?? [])], client_ip: r.key?.client_ip ?? false }]));
}

/** A LocalRateLimit with a token bucket, enabled for every request; enforced unless shadow. */
function localRateLimit(r: RateLimit): ProtoObject {
  return {
    stat_prefix: r.name,
    token_bucket: { max_tokens: r.max_tokens, tokens_per_fill: u32(r.tokens_per_fill), fill_interval: duration(r.fill_interval_ms) },
    filter_enabled: percent(100),
    filter_enforced: percent(r.shadow ? 0 : 100),
  };
}

/** Converts a config; throws only for a config that did not come from validateConfig. */
export function toXdsResources(config: RemoraConfig, opts: { edsForAllClusters: boolean }): XdsResources {
  const out: XdsResources = { listeners: new Map(), routes: new Map(), clusters: new Map(), endpoints: new Map() };
  for (const l of config.listeners) {
    out.listeners.set(l.name, listener(l));
    out.routes.set(l.name, routeConfiguration(l));
  }
  for (const c of config.clusters) {
    const eds = opts.edsForAllClusters;
    out.clusters.set(c.name, cluster(c, eds));
    if (eds) out.endpoints.set(c.name, loadAssignment(c));
  }
  return out;
}

/** A gRPC API listener (for `xds:///name` targets): an HttpConnectionManager that fetches
 *  `routeConfigName` over ADS, with the router filter only — the shape gRPC clients need. */
export function grpcApiListener(name: string, routeConfigName: string): ProtoObject {
  return {
    name,
    api_listener: {
      api_listener: encode(TypeUrl.HttpConnectionManager, {
        stat_prefix: name,
        rds: { route_config_name: routeConfigName, config_source: ADS },
        http_filters: [{ name: ROUTER_FILTER_NAME, typed_config: encode(TypeUrl.Router, {}) }],
      }),
    },
  };
}

/** An identity pattern → an RBAC principal: `*` (any verified identity) → the regex `.+`,
 *  as Istio writes it (`authenticated: {}` would also match TLS clients without a certificate). */
function principal(pattern: string): ProtoObject {
  const name = pattern === '*'
    ? { safe_regex: { regex: ANY_IDENTITY_REGEX } }
    : pattern.endsWith('*') ? { prefix: pattern.slice(0, -1) } : { exact: pattern };
  return { authenticated: { principal_name: name } };
}

/** One policy: every request (`any`) from one of the patterns' identities. */
function rbacRules(action: 'allow' | 'deny', patterns: readonly string[]): ProtoObject {
  return { action: action.toUpperCase(), policies: { [RBAC_POLICY]: { permissions: [{ any: true }], principals: patterns.map(principal) } } };
}

const hasRules = (a: Authorization | undefined, action: 'allow' | 'deny'): boolean => (a?.[action].length ?? 0) > 0;

/** The listener's RBAC filters with rules, and a rule-less slot per action some route uses. */
function rbacFilters(l: Listener): { listener: ProtoObject[]; routeSlots: ProtoObject[] } {
  const routes = l.virtual_hosts.flatMap((vh) => vh.routes.map((r) => r.authorization));
  return {
    listener: RBAC_ACTIONS.filter((a) => hasRules(l.authorization, a))
      .map((a) => ({ name: LISTENER_RBAC[a], typed_config: encode(TypeUrl.Rbac, { rules: rbacRules(a, l.authorization?.[a] ?? []) }) })),
    routeSlots: RBAC_ACTIONS.filter((a) => routes.some((r) => hasRules(r, a)))
      .map((a) => ({ name: ROUTE_RBAC_SLOT[a], typed_config: encode(TypeUrl.Rbac, {}) })),
  };
}

/** A route's rules as per-route configs of the slots; optional, so gRPC clients skip them. */
function routeRbac(a: Authorization | undefined): [string, AnyMessage][] {
  return RBAC_ACTIONS.filter((x) => hasRules(a, x)).map((x) => [
    ROUTE_RBAC_SLOT[x],
    encode(FILTER_CONFIG_TYPE_URL, { config: encode(TypeUrl.RbacPerRoute, { rbac: { rules: rbacRules(x, a?.[x] ?? []) } }), is_optional: true }),
  ]);
}

const tlsVersion = (v: TlsVersion): string => v.replace('.', '_'); // TLSv1.2 → TLSv1_2

/** Files only: Remora reads and watches them. A SAN with a scheme (`:`) is a URI, else a DNS name. */
function commonTlsContext(t: { cert_file?: string; key_file?: string; ca_file?: string; min_version: TlsVersion }, sans: readonly string[]): ProtoObject {
  return {
    tls_params: { tls_minimum_protocol_version: tlsVersion(t.min_version) },
    tls_certificates: t.cert_file !== undefined && t.key_file !== undefined
      ? [{ certificate_chain: { filename: t.cert_file }, private_key: { filename: t.key_file } }]
      : [],
    ...(t.ca_file !== undefined
      ? {
        validation_context: {
          trusted_ca: { filename: t.ca_file },
          match_typed_subject_alt_names: sans.map((s) => ({ san_type: s.includes(':') ? 'URI' : 'DNS', matcher: { exact: s } })),
        },
      }
      : {}),
  };
}

function downstreamTlsSocket(t: ListenerTlsConfig): ProtoObject {
  return {
    name: TLS_TRANSPORT_SOCKET,
    typed_config: encode(TypeUrl.DownstreamTlsContext, {
      common_tls_context: commonTlsContext(t, []),
      require_client_certificate: { value: t.require_client_certificate },
    }),
  };
}

function upstreamTlsSocket(t: UpstreamTlsConfig): ProtoObject {
  return {
    name: TLS_TRANSPORT_SOCKET,
    typed_config: encode(TypeUrl.UpstreamTlsContext, {
      common_tls_context: commonTlsContext(t, t.verify_subject_alt_names),
      ...(t.sni !== undefined ? { sni: t.sni } : {}),
    }),
  };
}

function listener(l: Listener): ProtoObject {
  const slots = Math.max(0, ...l.virtual_hosts.flatMap((vh) => vh.routes.map((r) => r.rate_limits.length)));
  const rbac = rbacFilters(l);
  // Remora's order: listener authorization, listener limits, route authorization, route limits.
  const httpFilters = [
    ...rbac.listener,
    ...l.rate_limits.map((r) => ({ name: `${LISTENER_LIMIT_FILTER}${r.name}`, typed_config: encode(TypeUrl.LocalRateLimit, localRateLimit(r)) })),
    ...rbac.routeSlots,
    ...Array.from({ length: slots }, (_, i) => ({
      name: `${ROUTE_LIMIT_SLOT}${i}`,
      typed_config: encode(TypeUrl.LocalRateLimit, { stat_prefix: `route_local_ratelimit_${i}` }),
    })),
    { name: ROUTER_FILTER_NAME, typed_config: encode(TypeUrl.Router, {}) },
  ];
  const hcm: ProtoObject = {
    stat_prefix: l.name,
    rds: { route_config_name: l.name, config_source: ADS },
    http_filters: httpFilters,
    max_request_headers_kb: u32(l.max_request_headers_kb),
    normalize_path: { value: l.normalize_path },
    ...(l.merge_slashes ? { merge_slashes: true } : {}),
    path_with_escaped_slashes_action: l.path_with_escaped_slashes_action.toUpperCase(),
    server_name: l.server_name,
    server_header_transformation: l.server_header_transformation.toUpperCase(),
    request_headers_timeout: duration(l.request_headers_timeout_ms),
    common_http_protocol_options: {
      idle_timeout: duration(l.idle_timeout_ms),
      max_headers_count: u32(l.max_request_headers_count),
      ...(l.max_requests_per_connection > 0 ? { max_requests_per_connection: u32(l.max_requests_per_connection) } : {}),
    },
    // Explicit, also SANITIZE: absent is Envoy's SANITIZE, not Remora's file default.
    forward_client_cert_details: l.forward_client_cert_details.toUpperCase(),
    // The elements Remora sets, so that an Envoy sets them too.
    ...(XFCC_SETS.includes(l.forward_client_cert_details) ? { set_current_client_cert_details: { subject: { value: true }, uri: true, dns: true } } : {}),
  };
  return {
    name: l.name,
    address: { socket_address: { address: l.address, port_value: l.port } },
    filter_chains: [{
      filters: [{ name: HCM_FILTER_NAME, typed_config: encode(TypeUrl.HttpConnectionManager, hcm) }],
      ...(l.tls !== undefined ? { transport_socket: downstreamTlsSocket(l.tls) } : {}),
    }],
    ...metadata({
      access_log: l.access_log === undefined ? undefined : { ...l.access_log },
      generate_traceparent: l.generate_traceparent ? true : undefined,
      codec: l.codec === 'strict' ? undefined : l.codec,
      max_connections: l.max_connections > 0 ? l.max_connections : undefined,
      rate_limit_keys: rateLimitKeys(l.rate_limits),
    }),
  };
}

function routeConfiguration(l: Listener): ProtoObject {
  return {
    name: l.name,
    virtual_hosts: l.virtual_hosts.map((vh) => ({
      name: vh.name,
      domains: [...vh.domains],
      routes: vh.routes.map((r, i) => route(r, `${vh.name}/${i}`)),
    })),
  };
}

/** Envoy's header values are format strings: a literal `%` is written `%%`. */
function headersToAdd(headers: readonly HeaderValue[]): ProtoObject[] {
  return headers.map((h) => ({
    header: { key: h.name, value: h.value.replaceAll('%', '%%') },
    append_action: 'APPEND_IF_EXISTS_OR_ADD',
    ...(h.value === '' ? { keep_empty_value: true } : {}),
  }));
}

function headerMatcher(h: HeaderMatcher): ProtoObject {
  if (h.exact !== undefined) return { name: h.name, string_match: { exact: h.exact } };
  if (h.regex !== undefined) return { name: h.name, string_match: { safe_regex: { regex: h.regex } } };
  return { name: h.name, present_match: true };
}

function route(r: Route, defaultName: string): ProtoObject {
  const m = r.match;
  const methods = m.methods.length === 0
    ? []
    : [{ name: ':method', string_match: m.methods.length === 1 ? { exact: m.methods[0] } : { safe_regex: { regex: m.methods.join('|') } } }];
  const match: ProtoObject = {
    ...(m.prefix !== undefined ? { prefix: m.prefix } : m.path !== undefined ? { path: m.path } : { safe_regex: { regex: m.regex ?? '' } }),
    headers: [...methods, ...m.headers.map(headerMatcher)],
  };
  const a = r.route;
  const retry = a?.retry_policy;
  return {
    ...(r.name !== defaultName ? { name: r.name } : {}), // default names (`vhost/0`) are not valid explicit names
    match,
    ...(a !== undefined ? { route: routeAction(a) } : {}),
    ...(r.direct_response !== undefined
      ? { direct_response: { status: r.direct_response.status, ...(r.direct_response.body !== '' ? { body: { inline_string: r.direct_response.body } } : {}) } }
      : {}),
    request_headers_to_add: headersToAdd(r.request_headers_to_add),
    request_headers_to_remove: [...r.request_headers_to_remove],
    response_headers_to_add: headersToAdd(r.response_headers_to_add),
    response_headers_to_remove: [...r.response_headers_to_remove],
    ...(retry !== undefined ? { per_request_buffer_limit_bytes: u32(retry.buffer_limit_bytes) } : {}),
    // FilterConfig with is_optional: a gRPC client (no local rate limit filter) skips it.
    typed_per_filter_config: Object.fromEntries([
      ...routeRbac(r.authorization),
      ...r.rate_limits.map((rl, i) => [
        `${ROUTE_LIMIT_SLOT}${i}`,
        encode(FILTER_CONFIG_TYPE_URL, { config: encode(TypeUrl.LocalRateLimit, localRateLimit(rl)), is_optional: true }),
      ]),
    ]),
    ...metadata({
      max_request_body_bytes: a !== undefined && a.max_request_body_bytes !== 0 ? a.max_request_body_bytes : undefined,
      retry_allow_request_headers: retry?.allow_request_headers === true ? true : undefined,
      retry_non_idempotent_on_reset: retry?.retry_non_idempotent_on_reset === true ? true : undefined,
      rate_limit_keys: rateLimitKeys(r.rate_limits),
    }),
  };
}

function routeAction(a: RouteAction): ProtoObject {
  return {
    ...(a.cluster !== undefined ? { cluster: a.cluster } : {}),
    ...(a.weighted_clusters !== undefined
      ? { weighted_clusters: { clusters: a.weighted_clusters.map((w) => ({ name: w.cluster, weight: u32(w.weight) })) } }
      : {}),
    ...(a.prefix_rewrite !== undefined ? { prefix_rewrite: a.prefix_rewrite } : {}),
    ...(a.host_rewrite !== undefined ? { host_rewrite_literal: a.host_rewrite } : {}),
    timeout: duration(a.timeout_ms),
    ...(a.retry_policy !== undefined ? { retry_policy: retryPolicy(a.retry_policy) } : {}),
  };
}

function retryPolicy(p: RetryPolicy): ProtoObject {
  return {
    retry_on: p.retry_on.join(','),
    num_retries: u32(p.num_retries),
    ...(p.per_try_timeout_ms > 0 ? { per_try_timeout: duration(p.per_try_timeout_ms) } : {}),
    retriable_status_codes: [...p.retriable_status_codes],
    retry_back_off: { base_interval: duration(p.base_interval_ms), max_interval: duration(p.max_interval_ms) },
  };
}

function cluster(c: Cluster, eds: boolean): ProtoObject {
  const cb = c.circuit_breakers;
  const od = c.outlier_detection;
  const hc = c.health_check;
  return {
    name: c.name,
    type: eds ? 'EDS' : 'STATIC',
    ...(eds ? { eds_cluster_config: { eds_config: ADS } } : { load_assignment: loadAssignment(c) }),
    connect_timeout: duration(c.connect_timeout_ms),
    lb_policy: c.lb_policy.toUpperCase(),
    circuit_breakers: {
      thresholds: [{
        priority: 'DEFAULT',
        max_connections: u32(cb.max_connections),
        max_pending_requests: u32(cb.max_pending_requests),
        max_requests: u32(cb.max_requests),
        max_retries: u32(cb.max_retries),
        ...(cb.retry_budget !== undefined
          ? { retry_budget: { budget_percent: { value: cb.retry_budget.budget_percent }, min_retry_concurrency: u32(cb.retry_budget.min_retry_concurrency) } }
          : {}),
      }],
    },
    ...(od !== undefined
      ? {
        outlier_detection: {
          // A detector at 0 is not enforced (Envoy's enforcing_* percentages).
          ...(od.consecutive_5xx > 0 ? { consecutive_5xx: u32(od.consecutive_5xx) } : {}),
          enforcing_consecutive_5xx: u32(od.consecutive_5xx > 0 ? 100 : 0),
          ...(od.consecutive_gateway_failure > 0 ? { consecutive_gateway_failure: u32(od.consecutive_gateway_failure) } : {}),
          enforcing_consecutive_gateway_failure: u32(od.consecutive_gateway_failure > 0 ? 100 : 0),
          ...(od.success_rate_minimum_hosts > 0 ? { success_rate_minimum_hosts: u32(od.success_rate_minimum_hosts) } : {}),
          enforcing_success_rate: u32(od.success_rate_minimum_hosts > 0 ? 100 : 0),
          success_rate_request_volume: u32(od.success_rate_request_volume),
          success_rate_stdev_factor: u32(Math.round(od.success_rate_stdev_factor * 1000)), // Envoy: 1900 = 1.9
          interval: duration(od.interval_ms),
          base_ejection_time: duration(od.base_ejection_time_ms),
          max_ejection_time: duration(od.max_ejection_time_ms),
          max_ejection_percent: u32(od.max_ejection_percent),
        },
      }
      : {}),
    ...(hc !== undefined
      ? {
        health_checks: [{
          timeout: duration(hc.timeout_ms),
          interval: duration(hc.interval_ms),
          healthy_threshold: u32(hc.healthy_threshold),
          unhealthy_threshold: u32(hc.unhealthy_threshold),
          http_health_check: {
            host: hc.host,
            path: hc.path,
            expected_statuses: hc.expected_statuses.map(([start, end]) => ({ start, end })),
          },
        }],
      }
      : {}),
    common_lb_config: { healthy_panic_threshold: { value: c.panic_threshold_percent } },
    ...(c.tls !== undefined ? { transport_socket: upstreamTlsSocket(c.tls) } : {}),
    ...metadata({
      idle_timeout_ms: c.idle_timeout_ms,
      max_connections_per_endpoint: c.max_connections_per_endpoint,
      outlier_probation_requests: od !== undefined && od.probation_requests !== 1 ? od.probation_requests : undefined,
    }),
  };
}

/** One locality (gRPC clients need one, with a weight) holding every endpoint. */
function loadAssignment(c: Cluster): ProtoObject {
  return {
    cluster_name: c.name,
    endpoints: [{
      locality: {},
      load_balancing_weight: u32(1),
      lb_endpoints: c.endpoints.map((e) => ({ endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } } })),
    }],
  };
}
