// RouteConfiguration → raw virtual hosts (part of src/xds/translate.ts): their domains
// (translate-route-domains.ts) and routes with their match (translate-route-match.ts),
// route action (cluster or weighted clusters, rewrites, timeout, gRPC deadline, retry
// policy: translate-route-retry.ts, upgrades) or direct response, header edits and
// Remora extensions; per-route configs of local rate limit
// and RBAC filters are collected and attached per listener (attachRoutes), because
// whether they are allowed depends on the listener's filters, and so is the cap the
// listener's buffer limit puts on retry buffering. What control planes add
// that changes nothing in Remora (decorator, validate_clusters, optional configs of
// filters Remora does not run, other metadata namespaces) is accepted.

import { FILTER_CONFIG_TYPE_URL, REMORA_EXTENSIONS } from './names.js';
import { TypeUrl } from './protos.js';
import { asArr, asNum, asObj, asStr, isSet, wrapped, wrappedBool, type Obj } from './read.js';
import { extPath, sub, type Ctx, type Loc } from './translate-context.js';
import { Fields, type Mark } from './translate-fields.js';
import type { ListenerPart } from './translate-listener.js';
import { upgradeConfigs } from './translate-listener-hcm.js';
import { applyRateLimitKeys, localRateLimit } from './translate-ratelimit.js';
import { authorization, collectRules, rbacConfig, type RbacAction, type RbacRules } from './translate-rbac.js';
import { virtualHostDomains } from './translate-route-domains.js';
import { regexRewrite, routeMatch } from './translate-route-match.js';
import { mirrorPolicies } from './translate-route-mirror.js';
import { redirectAction } from './translate-route-redirect.js';
import { capRetryBuffers, retryPolicy } from './translate-route-retry.js';

interface PerRouteLimit {
  readonly vhost: number;
  readonly route: number;
  /** The HTTP filter the per-route config belongs to (typed_per_filter_config key). */
  readonly filter: string;
  /** The raw rate limit, marks relative to it. */
  readonly limit: Fields;
  readonly loc: Loc;
}

interface PerRouteRbac {
  readonly vhost: number;
  readonly route: number;
  /** The RBAC HTTP filter the per-route config belongs to. */
  readonly filter: string;
  /** null: no rules (Envoy enforces nothing on this route for that filter). */
  readonly rules: RbacRules | null;
  readonly loc: Loc;
}

export interface RoutePart {
  /** Raw virtual hosts, without the routes' rate_limits and authorization (they depend
   *  on the listener). */
  readonly vhosts: Obj[];
  /** Relative to the virtual host list: `[0].routes[1].match.prefix`. */
  readonly marks: Mark[];
  readonly limits: PerRouteLimit[];
  readonly rbac: PerRouteRbac[];
  /** Optional per-filter configs accepted without effect (FilterConfig, is_optional), by
   *  filter name: attachRoutes refuses those for a filter the listener runs. */
  readonly optional: { readonly filter: string; readonly loc: Loc }[];
  /** Clusters the routes reference. */
  readonly clusters: string[];
}

/** Envoy's default for RouteConfiguration.max_direct_response_body_size_bytes. */
const DEFAULT_DIRECT_BODY_LIMIT = 4096;

export function translateRouteConfig(ctx: Ctx, rc: Obj, loc: Loc): RoutePart {
  ctx.only(rc, loc, ['name', 'virtual_hosts', 'validate_clusters', 'ignore_port_in_host_matching', 'typed_per_filter_config', 'metadata',
    'max_direct_response_body_size_bytes']);
  // validate_clusters: true, false or unset alike. Remora always rejects a route to a
  // cluster CDS has not defined (naming the route's cluster), as Envoy does with true;
  // Envoy's default for RDS is false (503 at request time), so false is no different
  // from unset here.
  if (isSet(rc.validate_clusters)) ctx.noEffect(loc, 'RouteConfiguration.validate_clusters');
  const ignorePort = rc.ignore_port_in_host_matching === true;
  const part: RoutePart = { vhosts: [], marks: [], limits: [], rbac: [], optional: [], clusters: [] };
  optionalFilterConfigs(ctx, asObj(rc.typed_per_filter_config) ?? {}, loc, 'RouteConfiguration', part.optional);
  ctx.extensions(rc, loc, [], 'RouteConfiguration.metadata');
  asArr(rc.virtual_hosts).forEach((v, i) => {
    const vl = sub(loc, `virtual_hosts[${i}]`);
    const vh = asObj(v) ?? {};
    ctx.only(vh, vl, ['name', 'domains', 'routes', 'include_request_attempt_count', 'typed_per_filter_config', 'metadata']);
    optionalFilterConfigs(ctx, asObj(vh.typed_per_filter_config) ?? {}, vl, 'RouteConfiguration.virtual_hosts', part.optional);
    ctx.extensions(vh, vl, [], 'RouteConfiguration.virtual_hosts.metadata');
    const { domains, moved } = virtualHostDomains(ctx, asArr(vh.domains), vl, ignorePort);
    const routes: Obj[] = [];
    asArr(vh.routes).forEach((r, j) => {
      routes.push(translateRoute(ctx, asObj(r) ?? {}, sub(vl, `routes[${j}]`), new Fields({}, part.marks, `[${i}].routes[${j}]`), part, i, j));
    });
    const out = new Fields({}, part.marks, `[${i}]`).here(vl);
    out.set('name', vh.name ?? '', sub(vl, 'name'));
    out.set('domains', domains, sub(vl, 'domains'));
    for (const [k, j] of moved) out.mark(`.domains[${k}]`, sub(vl, `domains[${j}]`));
    out.set('routes', routes, sub(vl, 'routes'));
    out.fill('include_request_attempt_count', vh.include_request_attempt_count === true ? true : undefined, sub(vl, 'include_request_attempt_count'));
    part.vhosts.push(out.raw);
  });
  directBodyLimit(ctx, rc, loc, part.vhosts);
  qualifyRepeatedNames(part.vhosts);
  return part;
}

/** Route names need not be unique in Envoy, and Istio names the route of every virtual
 *  host `default`; Remora keeps state by route name (rate-limit buckets, stats), one per
 *  listener. A name used more than once in a route table becomes `<virtual host>/<name>`
 *  on each route that has it (as an unnamed route is `<virtual host>/<hash>`). */
function qualifyRepeatedNames(vhosts: readonly Obj[]): void {
  const routes = vhosts.flatMap((vh) => asArr(vh.routes).map((r) => ({ vh, r: asObj(r) ?? {} })));
  const uses = new Map<string, number>();
  for (const { r } of routes) if (typeof r.name === 'string') uses.set(r.name, (uses.get(r.name) ?? 0) + 1);
  for (const { vh, r } of routes) if (typeof r.name === 'string' && uses.get(r.name)! > 1) r.name = `${String(vh.name)}/${r.name}`;
}

/** Envoy's bound on direct_response bodies (max_direct_response_body_size_bytes, 4096
 *  when unset): a larger body rejects the route configuration, as in Envoy. */
function directBodyLimit(ctx: Ctx, rc: Obj, loc: Loc, vhosts: readonly Obj[]): void {
  const limit = wrapped(rc.max_direct_response_body_size_bytes) ?? DEFAULT_DIRECT_BODY_LIMIT;
  vhosts.forEach((vh, i) => {
    asArr(vh.routes).forEach((r, j) => {
      const body = asStr(asObj(asObj(r)?.direct_response)?.body);
      if (body !== undefined && Buffer.byteLength(body) > limit) {
        ctx.reject(sub(loc, `virtual_hosts[${i}].routes[${j}].direct_response.body`), `${Buffer.byteLength(body)} bytes, over max_direct_response_body_size_bytes (${limit})`);
      }
    });
  });
}

/** Per-filter configs of a virtual host or route configuration: only those Envoy may
 *  skip (a FilterConfig with is_optional) for filters Remora does not run; they do
 *  nothing in Remora. Remora reads the configs of its own filters (local rate limit,
 *  RBAC) on routes only, so at these levels they are rejected. */
function optionalFilterConfigs(ctx: Ctx, configs: Obj, loc: Loc, at: string, optionals: RoutePart['optional']): void {
  for (const [filter, any] of Object.entries(configs)) {
    const fl = sub(loc, `typed_per_filter_config["${filter}"]`);
    let type = asStr(asObj(any)?.type_url);
    let optional = false;
    if (type === FILTER_CONFIG_TYPE_URL) {
      const fc = ctx.decode(any, fl)?.message;
      if (fc === undefined) continue;
      ctx.only(fc, fl, ['config', 'is_optional']);
      optional = fc.is_optional === true;
      type = asStr(asObj(fc.config)?.type_url);
    }
    if (type === TypeUrl.LocalRateLimit || type === TypeUrl.RbacPerRoute) {
      ctx.reject(fl, 'is only supported on routes (Remora reads per-route local rate limits and RBAC there)');
    } else if (!optional) {
      ctx.reject(fl, `per-route config of an unsupported http filter (${type ?? 'no type'}); only a FilterConfig with is_optional: true is accepted (and ignored)`);
    } else {
      ctx.noEffect(loc, `${at}.typed_per_filter_config`);
      optionals.push({ filter, loc: fl });
    }
  }
}

/** A route's `tracing` (FractionalPercents) → the route's sampling; custom_tags are
 *  accepted and left out (the listener's apply). */
function routeTracing(ctx: Ctx, t: Obj, loc: Loc, out: Fields): void {
  ctx.only(t, loc, ['client_sampling', 'random_sampling', 'overall_sampling', 'custom_tags']);
  if (isSet(t.custom_tags)) ctx.noEffect(loc, 'RouteConfiguration.virtual_hosts.routes.tracing.custom_tags');
  const f = out.nest('tracing');
  for (const k of ['client_sampling', 'random_sampling', 'overall_sampling']) {
    const p = asObj(t[k]);
    if (p === undefined) continue;
    ctx.only(p, sub(loc, k), ['numerator', 'denominator']);
    const denominator = p.denominator === 'TEN_THOUSAND' ? 10_000 : p.denominator === 'MILLION' ? 1_000_000 : 100;
    f.set(k, Math.min(100, (asNum(p.numerator) * 100) / denominator), sub(loc, k));
  }
}

/** One route → `out` (marks relative to the virtual host list); its per-route configs and
 *  clusters go to `part`. */
function translateRoute(ctx: Ctx, r: Obj, loc: Loc, out: Fields, part: RoutePart, vhost: number, index: number): Obj {
  ctx.only(r, loc, ['name', 'match', 'route', 'direct_response', 'redirect', 'metadata', 'typed_per_filter_config',
    'request_headers_to_add', 'request_headers_to_remove', 'response_headers_to_add', 'response_headers_to_remove',
    'per_request_buffer_limit_bytes', 'decorator', 'tracing']);
  const tracing = asObj(r.tracing);
  if (tracing !== undefined) routeTracing(ctx, tracing, sub(loc, 'tracing'), out);
  // decorator names the route's tracing span and sends it upstream in
  // x-envoy-decorator-operation: accepted, not applied (Remora names server spans
  // "<method> <route name>").
  const decorator = asObj(r.decorator);
  if (decorator !== undefined) ctx.only(decorator, sub(loc, 'decorator'), ['operation', 'propagate']);
  if (decorator !== undefined) ctx.noEffect(loc, 'RouteConfiguration.virtual_hosts.routes.decorator');
  out.here(loc);
  if (isSet(r.name)) out.set('name', r.name, sub(loc, 'name'));
  if (r.match !== undefined) routeMatch(ctx, asObj(r.match) ?? {}, sub(loc, 'match'), out.nest('match'));
  if (r.route !== undefined) {
    const ra = asObj(r.route) ?? {};
    const action = routeAction(ctx, ra, sub(loc, 'route'), out.nest('route'));
    if (typeof action.cluster === 'string') part.clusters.push(action.cluster);
    for (const w of asArr(action.weighted_clusters)) part.clusters.push(String(asObj(w)?.cluster));
    for (const m of asArr(action.request_mirror_policies)) part.clusters.push(String(asObj(m)?.cluster));
    // Envoy's are the route action's; Remora's the route's.
    const upgrades = upgradeConfigs(ctx, asArr(ra.upgrade_configs), sub(loc, 'route.upgrade_configs'), 'connect_config');
    if (upgrades.length > 0) out.list('upgrade_configs', upgrades);
  }
  if (r.direct_response !== undefined) {
    const dl = sub(loc, 'direct_response');
    const d = asObj(r.direct_response) ?? {};
    ctx.only(d, dl, ['status', 'body']);
    const body = asObj(d.body);
    if (body !== undefined) ctx.only(body, sub(dl, 'body'), ['inline_string']);
    const direct = out.nest('direct_response').here(dl);
    direct.set('status', asNum(d.status), sub(dl, 'status'));
    direct.set('body', asStr(body?.inline_string) ?? '', sub(dl, 'body.inline_string'));
  }
  if (r.redirect !== undefined) redirectAction(ctx, asObj(r.redirect) ?? {}, sub(loc, 'redirect'), out.nest('redirect'), isSet(asObj(r.match)?.path));
  for (const k of ['request_headers_to_add', 'response_headers_to_add'] as const) {
    const headers: Fields[] = [];
    asArr(r[k]).forEach((h, i) => {
      const header = headerToAdd(ctx, asObj(h) ?? {}, sub(loc, `${k}[${i}]`));
      if (header !== undefined) headers.push(header);
    });
    out.list(k, headers);
  }
  for (const k of ['request_headers_to_remove', 'response_headers_to_remove'] as const) out.set(k, asArr(r[k]), sub(loc, k));

  // Remora-only fields; those of the route action need one.
  const ext = ctx.extensions(r, loc, REMORA_EXTENSIONS.route, 'RouteConfiguration.virtual_hosts.routes.metadata');
  const action = out.within('route');
  const needsAction = (key: string, value: unknown, to: string, inRetry: boolean): void => {
    if (value === undefined) return;
    const where = key === 'per_request_buffer_limit_bytes' ? sub(loc, key) : extPath(loc, key);
    const retry = action?.within('retry_policy');
    if (action === undefined) ctx.reject(where, 'needs a route action (not allowed with direct_response or redirect)');
    else if (inRetry && retry === undefined) ctx.reject(where, 'needs route.retry_policy');
    else (inRetry ? (retry ?? action) : action).set(to, value, where);
  };
  needsAction('max_request_body_bytes', ext.max_request_body_bytes, 'max_request_body_bytes', false);
  needsAction('retry_allow_request_headers', ext.retry_allow_request_headers, 'allow_request_headers', true);
  needsAction('retry_non_idempotent_on_reset', ext.retry_non_idempotent_on_reset, 'retry_non_idempotent_on_reset', true);
  needsAction('per_request_buffer_limit_bytes', wrapped(r.per_request_buffer_limit_bytes), 'buffer_limit_bytes', true);

  const { limits, rbac, optional } = perRouteConfigs(ctx, asObj(r.typed_per_filter_config) ?? {}, loc, vhost, index);
  applyRateLimitKeys(ctx, ext, loc, limits.map((l) => l.limit), 'route');
  part.limits.push(...limits);
  part.rbac.push(...rbac);
  part.optional.push(...optional);
  return out.raw;
}

/** typed_per_filter_config: local rate limits and RBAC rules (directly or in a FilterConfig). */
function perRouteConfigs(ctx: Ctx, configs: Obj, loc: Loc, vhost: number, route: number): Pick<RoutePart, 'limits' | 'rbac' | 'optional'> {
  const out: Pick<RoutePart, 'limits' | 'rbac' | 'optional'> = { limits: [], rbac: [], optional: [] };
  for (const [filter, any] of Object.entries(configs)) {
    let fl = sub(loc, `typed_per_filter_config["${filter}"]`);
    let inner: unknown = any;
    let optional = false;
    if (asObj(any)?.type_url === FILTER_CONFIG_TYPE_URL) {
      const fc = ctx.decode(any, fl)?.message;
      if (fc === undefined) continue;
      ctx.only(fc, fl, ['config', 'is_optional']);
      optional = fc.is_optional === true;
      inner = fc.config;
      fl = sub(fl, 'config');
    }
    const type = asStr(asObj(inner)?.type_url);
    if (type === TypeUrl.RbacPerRoute) {
      const msg = ctx.decode(inner, fl)?.message;
      if (msg === undefined) continue;
      ctx.only(msg, fl, ['rbac']);
      const rbac = asObj(msg.rbac);
      const rules = rbac === undefined ? null : rbacConfig(ctx, rbac, sub(fl, 'rbac'));
      if (rules !== undefined) out.rbac.push({ vhost, route, filter, rules, loc: fl });
      continue;
    }
    if (type !== TypeUrl.LocalRateLimit) {
      if (!optional) ctx.reject(fl, `per-route config of an unsupported http filter (${type ?? 'no type'})`);
      else {
        ctx.noEffect(loc, 'RouteConfiguration.virtual_hosts.routes.typed_per_filter_config');
        out.optional.push({ filter, loc: sub(loc, `typed_per_filter_config["${filter}"]`) });
      }
      continue;
    }
    const msg = ctx.decode(inner, fl)?.message;
    if (msg === undefined) continue;
    const limit = localRateLimit(ctx, msg, fl);
    if (limit === null) ctx.reject(sub(fl, 'token_bucket'), 'is required in a per-route local rate limit');
    else out.limits.push({ vhost, route, filter, limit, loc: fl });
  }
  return out;
}

/** RouteAction → `out` (the route's raw `route`), which it returns. */
function routeAction(ctx: Ctx, a: Obj, loc: Loc, out: Fields): Obj {
  ctx.only(a, loc, ['cluster', 'weighted_clusters', 'prefix_rewrite', 'regex_rewrite', 'request_mirror_policies', 'host_rewrite_literal', 'timeout', 'retry_policy',
    'auto_host_rewrite', 'priority', 'cluster_not_found_response_code', 'max_stream_duration', 'max_grpc_timeout', 'grpc_timeout_offset', 'upgrade_configs']);
  if (wrappedBool(a.auto_host_rewrite) === true) ctx.reject(sub(loc, 'auto_host_rewrite'), 'is not supported; use host_rewrite_literal');
  if (isSet(a.priority) && a.priority !== 'DEFAULT') ctx.reject(sub(loc, 'priority'), `${String(a.priority)} is not supported (DEFAULT only)`);
  out.here(loc);
  const notFound = { SERVICE_UNAVAILABLE: 503, NOT_FOUND: 404, INTERNAL_SERVER_ERROR: 500 }[String(a.cluster_not_found_response_code ?? 'SERVICE_UNAVAILABLE')];
  if (notFound === undefined) ctx.reject(sub(loc, 'cluster_not_found_response_code'), `${String(a.cluster_not_found_response_code)} is not supported`);
  else if (notFound !== 503) out.set('cluster_not_found_status', notFound, sub(loc, 'cluster_not_found_response_code'));
  out.take('cluster', a.cluster, sub(loc, 'cluster'));
  const wc = asObj(a.weighted_clusters);
  if (wc !== undefined) {
    const wl = sub(loc, 'weighted_clusters');
    ctx.only(wc, wl, ['clusters', 'total_weight']);
    let sum = 0;
    const list = asArr(wc.clusters).map((v, i) => {
      const cl = sub(wl, `clusters[${i}]`);
      const c = asObj(v) ?? {};
      ctx.only(c, cl, ['name', 'weight', 'host_rewrite_literal']);
      const weight = wrapped(c.weight) ?? 0;
      sum += weight;
      const w = out.item(`.weighted_clusters[${i}]`).here(cl);
      w.set('cluster', c.name, sub(cl, 'name'));
      w.set('weight', weight, sub(cl, 'weight'));
      if (isSet(c.host_rewrite_literal)) w.set('host_rewrite', c.host_rewrite_literal, sub(cl, 'host_rewrite_literal'));
      return w.raw;
    });
    const total = wrapped(wc.total_weight);
    if (total !== undefined && total !== sum) ctx.reject(sub(wl, 'total_weight'), `${total} is not the sum of the weights (${sum})`);
    out.set('weighted_clusters', list, sub(wl, 'clusters'));
  }
  if (isSet(a.prefix_rewrite)) out.set('prefix_rewrite', a.prefix_rewrite, sub(loc, 'prefix_rewrite'));
  if (a.regex_rewrite !== undefined) regexRewrite(ctx, a.regex_rewrite, sub(loc, 'regex_rewrite'), out, 'regex_rewrite');
  if (isSet(a.request_mirror_policies)) out.list('request_mirror_policies', mirrorPolicies(ctx, asArr(a.request_mirror_policies), sub(loc, 'request_mirror_policies')));
  out.take('host_rewrite', a.host_rewrite_literal, sub(loc, 'host_rewrite_literal'));
  out.take('timeout_ms', ctx.ms(a.timeout, sub(loc, 'timeout')), sub(loc, 'timeout'));
  grpcTimeout(ctx, a, loc, out);
  const rp = asObj(a.retry_policy);
  if (rp !== undefined) retryPolicy(ctx, rp, sub(loc, 'retry_policy'), out.nest('retry_policy'));
  return out.raw;
}

/** gRPC deadlines: max_stream_duration.grpc_timeout_header_max, or the deprecated
 *  max_grpc_timeout, → grpc_timeout_header_max_ms (0: no cap). Envoy ignores
 *  max_grpc_timeout when max_stream_duration is set; Remora refuses the pair instead of
 *  ignoring a field. A stream duration limit and offsets are not supported (0 only). */
function grpcTimeout(ctx: Ctx, a: Obj, loc: Loc, out: Fields): void {
  const zeroOnly = (v: unknown, at: Loc, why: string): void => {
    const ms = ctx.ms(v, at);
    if (ms !== undefined && ms !== 0) ctx.reject(at, `${ms} ms is not supported: ${why} (0 or unset)`);
  };
  zeroOnly(a.grpc_timeout_offset, sub(loc, 'grpc_timeout_offset'), 'Remora does not shorten a grpc-timeout');
  const msd = asObj(a.max_stream_duration);
  if (msd === undefined) {
    out.take('grpc_timeout_header_max_ms', ctx.ms(a.max_grpc_timeout, sub(loc, 'max_grpc_timeout')), sub(loc, 'max_grpc_timeout'));
    return;
  }
  const ml = sub(loc, 'max_stream_duration');
  if (asObj(a.max_grpc_timeout) !== undefined) {
    ctx.reject(sub(loc, 'max_grpc_timeout'), 'not allowed together with max_stream_duration (Envoy would ignore it); use max_stream_duration.grpc_timeout_header_max');
  }
  ctx.only(msd, ml, ['max_stream_duration', 'grpc_timeout_header_max', 'grpc_timeout_header_offset']);
  zeroOnly(msd.max_stream_duration, sub(ml, 'max_stream_duration'), 'Remora has no limit on a stream\'s duration');
  zeroOnly(msd.grpc_timeout_header_offset, sub(ml, 'grpc_timeout_header_offset'), 'Remora does not shorten a grpc-timeout');
  const at = sub(ml, 'grpc_timeout_header_max');
  out.take('grpc_timeout_header_max_ms', ctx.ms(msd.grpc_timeout_header_max, at), at);
}

/** HeaderValueOption → raw {name, value} with marks relative to it; undefined when left
 *  out (an empty value without keep_empty_value, as Envoy does) or rejected. Remora
 *  appends, and adds values literally: Envoy's `%%` becomes `%`, a %COMMAND% is rejected. */
function headerToAdd(ctx: Ctx, o: Obj, loc: Loc): Fields | undefined {
  ctx.only(o, loc, ['header', 'append', 'append_action', 'keep_empty_value']);
  if (wrappedBool(o.append) === false) ctx.reject(sub(loc, 'append'), 'false (overwrite) is not supported: Remora appends');
  if (isSet(o.append_action) && o.append_action !== 'APPEND_IF_EXISTS_OR_ADD') {
    ctx.reject(sub(loc, 'append_action'), `${String(o.append_action)} is not supported: Remora appends (APPEND_IF_EXISTS_OR_ADD)`);
  }
  const hl = sub(loc, 'header');
  const h = asObj(o.header) ?? {};
  ctx.only(h, hl, ['key', 'value']);
  const escaped = asStr(h.value) ?? '';
  let value = '';
  for (let i = 0; i < escaped.length; i++) {
    if (escaped[i] !== '%') value += escaped[i];
    else if (escaped[i + 1] === '%') {
      value += '%';
      i++;
    } else {
      ctx.reject(sub(hl, 'value'), "uses Envoy's %COMMAND% substitution; Remora adds values literally (write %% for a literal %)");
      return undefined;
    }
  }
  if (value === '' && o.keep_empty_value !== true) return undefined;
  const out = new Fields().here(hl);
  out.set('name', asStr(h.key) ?? '', sub(hl, 'key'));
  out.set('value', value, sub(hl, 'value'));
  return out;
}

/** A listener's routes with their rate limits and authorization (marks relative to the
 *  virtual host list): each per-route config must belong to a local rate limit filter of
 *  the listener that has no token bucket of its own, or to an RBAC filter without rules
 *  (Envoy would REPLACE that bucket or those rules for the route; Remora checks listener
 *  and route limits and authorization together, so only filters that exist for per-route
 *  configs can carry them). */
export function attachRoutes(ctx: Ctx, l: ListenerPart, part: RoutePart): { vhosts: Obj[]; marks: Mark[] } {
  // An optional per-route config of a filter the listener runs would make it act in Envoy
  // (a CORS policy, a fault to inject), which Remora's inert filter would not.
  for (const o of part.optional) {
    const inert = l.inertFilters.get(o.filter);
    if (inert === 'cors' || inert === 'fault') {
      ctx.reject(o.loc, `Listener "${l.name}" runs the ${inert} filter "${o.filter}", which Remora accepts only as doing nothing on its own; `
        + 'this per-route config would make it act in Envoy (is_optional or not), and Remora would ignore it');
    }
  }
  const vhosts = structuredClone(part.vhosts);
  const marks = [...part.marks];
  if (l.retryBufferLimit !== undefined) capRetryBuffers(vhosts, marks, l.retryBufferLimit);
  for (const vh of vhosts) for (const r of asArr(vh.routes)) (r as Obj).rate_limits = [];
  const routeAt = (v: number, r: number): Fields => new Fields(asArr(asObj(vhosts[v])?.routes)[r] as Obj, marks, `[${v}].routes[${r}]`);
  const byRoute = new Map<string, (PerRouteLimit & { index: number })[]>();
  for (const limit of part.limits) {
    const f = l.rateLimitFilters.get(limit.filter);
    if (f === undefined) {
      ctx.reject(limit.loc, `Listener "${l.name}" has no local rate limit http filter named "${limit.filter}"`);
      continue;
    }
    if (f.bucket) {
      ctx.reject(limit.loc, `would replace the token bucket of Listener "${l.name}"'s filter "${limit.filter}" for this route; `
        + 'Remora applies listener and route limits together: put per-route limits on a local rate limit filter without token_bucket');
      continue;
    }
    const key = `${limit.vhost}/${limit.route}`;
    byRoute.set(key, [...(byRoute.get(key) ?? []), { ...limit, index: f.index }]);
  }
  for (const [key, limits] of byRoute) {
    const [v, r] = key.split('/').map(Number);
    limits.sort((a, b) => a.index - b.index);
    routeAt(v, r).list('rate_limits', limits.map((x) => ({ raw: structuredClone(x.limit.raw), marks: x.limit.marks })));
  }
  const rulesByRoute = new Map<string, Partial<Record<RbacAction, RbacRules>>>();
  for (const x of part.rbac) {
    const f = l.rbacFilters.get(x.filter);
    if (f === undefined) ctx.reject(x.loc, `Listener "${l.name}" has no RBAC http filter named "${x.filter}"`);
    else if (f.rules) {
      ctx.reject(x.loc, `would replace the rules of Listener "${l.name}"'s RBAC filter "${x.filter}" for this route; `
        + 'Remora applies listener and route authorization together: put per-route RBAC on an RBAC filter without rules');
    } else if (x.rules !== null) {
      const key = `${x.vhost}/${x.route}`;
      const rules = rulesByRoute.get(key) ?? {};
      collectRules(ctx, rules, x.rules, x.loc, 'route');
      rulesByRoute.set(key, rules);
    }
  }
  for (const [key, rules] of rulesByRoute) {
    const [v, r] = key.split('/').map(Number);
    const authz = authorization(ctx, rules, l.everyClientVerified);
    if (authz !== undefined) routeAt(v, r).attach('authorization', authz.raw, authz.marks);
  }
  return { vhosts, marks };
}
