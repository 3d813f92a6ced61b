// Remora's routes → an xDS RouteConfiguration (part of src/xds/encode.ts): one per
// listener, named after it, and one per HTTPS filter chain (named `<listener> <chain>`). Route rate limits and authorization become per-route configs
// (FilterConfig with is_optional, so gRPC clients skip them) of the listener's slot
// filters; Remora-only route fields travel in the route's metadata.

import type { Authorization, HeaderMatcher, HeaderValue, Redirect, RegexRewrite, Route, RouteAction, RetryPolicy, VirtualHost } from '../config/types.js';
import {
  duration, encode, hasRules, localRateLimit, metadata, RBAC_ACTIONS, rateLimitKeys, rbacRules, ROUTE_LIMIT_SLOT, ROUTE_RBAC_SLOT, u32, upgradeConfigs,
} from './encode-common.js';
import { FILTER_CONFIG_TYPE_URL } from './names.js';
import { redirectCodeName } from './translate-route-redirect.js';
import { TypeUrl, type AnyMessage, type ProtoObject } from './protos.js';

/** A route's rules as per-route configs of the slots; optional, so gRPC clients skip them. */
function routeRbac(a: Authorization | undefined): [string, AnyMessage][] {
  return RBAC_ACTIONS.filter((x) => hasRules(a, x)).map((x) => [
    ROUTE_RBAC_SLOT[x],
    encode(FILTER_CONFIG_TYPE_URL, { config: encode(TypeUrl.RbacPerRoute, { rbac: { rules: rbacRules(x, a?.[x] ?? []) } }), is_optional: true }),
  ]);
}

/** A route table (a listener's own, or an HTTPS filter chain's) as the RouteConfiguration
 *  `name`. */
export function routeConfiguration(name: string, virtualHosts: readonly VirtualHost[]): ProtoObject {
  return {
    name,
    virtual_hosts: virtualHosts.map((vh) => ({
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

/** A percentage as a FractionalPercent per million (0.05 % stays 0.05 %). */
const perMillion = (percent: number): ProtoObject => ({ numerator: Math.round(percent * 10_000), denominator: 'MILLION' });

/** A route's sampling as FractionalPercents. */
function routeTracing(t: NonNullable<Route['tracing']>): ProtoObject {
  const pct = (v: number | undefined): ProtoObject | undefined => (v === undefined ? undefined : perMillion(v));
  return { random_sampling: pct(t.random_sampling), client_sampling: pct(t.client_sampling), overall_sampling: pct(t.overall_sampling) };
}

function route(r: Route, defaultName: string): ProtoObject {
  const m = r.match;
  const methods = m.methods.length === 0
    ? []
    : [{ name: ':method', string_match: m.methods.length === 1 ? { exact: m.methods[0] } : { safe_regex: { regex: m.methods.join('|') } } }];
  const match: ProtoObject = {
    ...(m.prefix !== undefined ? { prefix: m.prefix } : m.path !== undefined ? { path: m.path } : { safe_regex: { regex: m.regex ?? '' } }),
    headers: [...methods, ...m.headers.map(headerMatcher)],
    ...(m.query_parameters.length > 0 ? { query_parameters: m.query_parameters.map(headerMatcher) } : {}),
  };
  const a = r.route;
  const retry = a?.retry_policy;
  return {
    ...(r.name !== defaultName ? { name: r.name } : {}), // default names (`vhost/0`) are not valid explicit names
    match,
    // Envoy's upgrade_configs are the route action's: a direct response has none.
    ...(a !== undefined ? { route: { ...routeAction(a), upgrade_configs: upgradeConfigs(r.upgrade_configs) } } : {}),
    ...(r.direct_response !== undefined
      ? { direct_response: { status: r.direct_response.status, ...(r.direct_response.body !== '' ? { body: { inline_string: r.direct_response.body } } : {}) } }
      : {}),
    ...(r.redirect !== undefined ? { redirect: redirectAction(r.redirect) } : {}),
    request_headers_to_add: headersToAdd(r.request_headers_to_add),
    request_headers_to_remove: [...r.request_headers_to_remove],
    response_headers_to_add: headersToAdd(r.response_headers_to_add),
    response_headers_to_remove: [...r.response_headers_to_remove],
    ...(retry !== undefined ? { per_request_buffer_limit_bytes: u32(retry.buffer_limit_bytes) } : {}),
    ...(r.tracing !== undefined ? { tracing: routeTracing(r.tracing) } : {}),
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

function regexRewrite(r: RegexRewrite): ProtoObject {
  return { pattern: { regex: r.pattern }, substitution: r.substitution };
}

function redirectAction(r: Redirect): ProtoObject {
  return {
    ...(r.scheme !== undefined ? { scheme_redirect: r.scheme } : {}),
    ...(r.host !== undefined ? { host_redirect: r.host } : {}),
    ...(r.port !== undefined ? { port_redirect: r.port } : {}),
    ...(r.path !== undefined ? { path_redirect: r.path } : {}),
    ...(r.prefix_rewrite !== undefined ? { prefix_rewrite: r.prefix_rewrite } : {}),
    ...(r.regex_rewrite !== undefined ? { regex_rewrite: regexRewrite(r.regex_rewrite) } : {}),
    response_code: redirectCodeName(r.response_code),
    strip_query: r.strip_query,
  };
}

function routeAction(a: RouteAction): ProtoObject {
  return {
    ...(a.cluster !== undefined ? { cluster: a.cluster } : {}),
    ...(a.weighted_clusters !== undefined
      ? { weighted_clusters: { clusters: a.weighted_clusters.map((w) => ({ name: w.cluster, weight: u32(w.weight), ...(w.host_rewrite !== undefined ? { host_rewrite_literal: w.host_rewrite } : {}) })) } }
      : {}),
    ...(a.prefix_rewrite !== undefined ? { prefix_rewrite: a.prefix_rewrite } : {}),
    ...(a.regex_rewrite !== undefined ? { regex_rewrite: regexRewrite(a.regex_rewrite) } : {}),
    ...(a.request_mirror_policies !== undefined
      ? { request_mirror_policies: a.request_mirror_policies.map((m) => ({ cluster: m.cluster, runtime_fraction: { default_value: perMillion(m.percent) } })) }
      : {}),
    ...(a.host_rewrite !== undefined ? { host_rewrite_literal: a.host_rewrite } : {}),
    timeout: duration(a.timeout_ms),
    ...(a.grpc_timeout_header_max_ms !== undefined ? { max_stream_duration: { grpc_timeout_header_max: duration(a.grpc_timeout_header_max_ms) } } : {}),
    ...(a.retry_policy !== undefined ? { retry_policy: retryPolicy(a.retry_policy) } : {}),
    ...(a.cluster_not_found_status !== 503 ? { cluster_not_found_response_code: a.cluster_not_found_status === 404 ? 'NOT_FOUND' : 'INTERNAL_SERVER_ERROR' } : {}),
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
