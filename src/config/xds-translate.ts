// Envoy xDS v3 resources (decoded by src/control/xds-protos.ts) → Remora's config model.
// The supported subset of Listener, RouteConfiguration, Cluster and ClusterLoadAssignment
// is turned into RAW config data — the same shape a config file has — which then goes
// through validateConfig, so defaults and checks are exactly those of a file. A field
// outside the subset that is SET is a rejection naming its path (never half-applied,
// never silently ignored); validateConfig's errors are mapped back to the resource and
// field they came from. Proto shapes stop here: nothing downstream sees them.
// docs/xds.md lists the supported fields, the rejections and the warming rules. Its
// parts: xds-translate-context.ts (reading protos, paths, rejections), xds-translate-tls.ts
// (transport sockets, XFCC) and xds-translate-rbac.ts (RBAC → authorization).

import { validateConfig } from './validate.js';
import type { ConfigError, RemoraConfig } from './types.js';
import { loadXdsProtos, TypeUrl, type ProtoObject } from '../control/xds-protos.js';
import {
  addMarks, asArr, asNum, asObj, asStr, Ctx, formatRejection, isObj, isSet, REMORA_METADATA, root, sub, wrapped,
  wrappedBool, type Loc, type Mark, type Obj, type XdsRejection,
} from './xds-translate-context.js';
import { authorization, collectRules, rbacConfig, type RbacAction, type RbacRules } from './xds-translate-rbac.js';
import { downstreamTls, forwardClientCert, upstreamTls } from './xds-translate-tls.js';

export { formatRejection, REMORA_METADATA, type XdsRejection } from './xds-translate-context.js';

/** Decoded resources by name, as received (already decoded from Any). */
export interface XdsResourceSet {
  readonly listeners: ReadonlyMap<string, ProtoObject>;
  /** RouteConfiguration by name. */
  readonly routes: ReadonlyMap<string, ProtoObject>;
  readonly clusters: ReadonlyMap<string, ProtoObject>;
  /** ClusterLoadAssignment by cluster_name. */
  readonly endpoints: ReadonlyMap<string, ProtoObject>;
}

/** RDS and EDS names referenced by the set but not (yet) in it. */
export interface MissingResources {
  readonly routes: string[];
  readonly endpoints: string[];
}

export type XdsTranslateResult = { ok: true; config: RemoraConfig } | { ok: false; errors: XdsRejection[] };

/** Type URL of the per-route filter config wrapper (`is_optional` lets gRPC skip it). */
export const FILTER_CONFIG_TYPE_URL = 'type.googleapis.com/envoy.config.route.v3.FilterConfig';
export const HCM_FILTER_NAME = 'envoy.filters.network.http_connection_manager';
export const ROUTER_FILTER_NAME = 'envoy.filters.http.router';

/** Remora-only fields carried in `metadata.filter_metadata.remora`, per resource level. */
export const REMORA_EXTENSIONS = {
  listener: ['access_log', 'generate_traceparent', 'rate_limit_keys', 'codec', 'max_connections'],
  route: ['max_request_body_bytes', 'retry_allow_request_headers', 'retry_non_idempotent_on_reset', 'rate_limit_keys'],
  cluster: ['idle_timeout_ms', 'max_connections_per_endpoint', 'outlier_probation_requests'],
} as const;

/** The bootstrap's root fields that translateXds takes from `base`. */
const BASE_KEYS = ['workers', 'admin', 'probes', 'drain', 'worker_limits', 'stats'];
const RETRY_ON = ['5xx', 'gateway-error', 'reset', 'connect-failure', 'retriable-4xx', 'retriable-status-codes'];
const LB_POLICIES: Readonly<Record<string, string>> = { ROUND_ROBIN: 'round_robin', LEAST_REQUEST: 'least_request', RANDOM: 'random' };
/** Endpoints in these states are left out (Envoy sends them no traffic). */
const LEFT_OUT_HEALTH = ['UNHEALTHY', 'DRAINING', 'TIMEOUT'];
/** Listener filters accepted as no-ops (see translateListener). */
const INSPECTOR_FILTERS = ['envoy.filters.listener.tls_inspector', 'envoy.filters.listener.http_inspector'];
/** Envoy's defaults where they differ from Remora's file defaults. */
const ENVOY_CONNECT_TIMEOUT_MS = 5000;
const ENVOY_TOKENS_PER_FILL = 1;
const ENVOY_EXPECTED_STATUSES: readonly (readonly [number, number])[] = [[200, 201]];
/** Validation-only stand-ins for what is still warming (never in a returned config). */
const PLACEHOLDER_VHOSTS = [{ name: 'warming', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 503 } }] }];
const PLACEHOLDER_ENDPOINTS = [{ address: '127.0.0.1', port: 1 }];

// ---------------------------------------------------------------------------
// Public helpers

/** RDS route config names a listener references (its HttpConnectionManager's `rds`),
 *  also for an api_listener. Listeners that do not decode reference nothing. */
export function referencedRoutes(listener: ProtoObject): string[] {
  const anys: unknown[] = [];
  const api = asObj(listener.api_listener);
  if (api !== undefined) anys.push(api.api_listener);
  for (const chain of asArr(listener.filter_chains)) {
    for (const f of asArr(asObj(chain)?.filters)) anys.push(asObj(f)?.typed_config);
  }
  const names: string[] = [];
  for (const any of anys) {
    const a = asObj(any);
    if (a?.type_url !== TypeUrl.HttpConnectionManager || !(a.value instanceof Uint8Array)) continue;
    try {
      const rds = asObj(loadXdsProtos().decodeAny({ type_url: a.type_url, value: a.value }).message.rds);
      const name = asStr(rds?.route_config_name);
      if (name !== undefined && name !== '' && !names.includes(name)) names.push(name);
    } catch {
      // undecodable: translateXds rejects it
    }
  }
  return names;
}

/** The ClusterLoadAssignment names EDS clusters wait for: `eds_cluster_config.service_name`,
 *  or the cluster's name. */
export function edsClusters(clusters: Iterable<ProtoObject>): string[] {
  const names: string[] = [];
  for (const c of clusters) {
    if (c.type !== 'EDS') continue;
    const name = edsName(c);
    if (name !== '' && !names.includes(name)) names.push(name);
  }
  return names;
}

/** What the set references but lacks. A caller applies a set only when both lists are
 *  empty (make before break: a new listener or cluster waits for what it references). */
export function missingResources(set: XdsResourceSet): MissingResources {
  const routes = [...set.listeners.values()].flatMap((l) => referencedRoutes(l)).filter((n) => !set.routes.has(n));
  const endpoints = edsClusters(set.clusters.values()).filter((n) => !set.endpoints.has(n));
  return { routes: [...new Set(routes)], endpoints };
}

/**
 * Builds the raw Remora config from `base` (the bootstrap file's non-xDS root fields:
 * workers, admin, probes, drain, worker_limits, stats; other keys of `base` are not
 * read) plus the resources, and validates it with validateConfig.
 *
 * Rejections are real problems only (a NACK). Missing RDS/EDS resources are not: a
 * listener whose route configuration has not arrived, an EDS cluster whose endpoints
 * have not, and a listener routing to such a cluster are validated with stand-ins and
 * left OUT of the returned config. Such a partial config (possibly without listeners)
 * is not meant to be applied: check missingResources(set) first.
 */
export function translateXds(base: Record<string, unknown>, set: XdsResourceSet): XdsTranslateResult {
  const ctx = new Ctx();
  const listeners = [...set.listeners].flatMap(([key, l]) => translateListener(ctx, key, l) ?? []);
  const routeConfigs = new Map<string, RoutePart>();
  for (const [key, rc] of set.routes) {
    const loc = root(TypeUrl.RouteConfiguration, key);
    checkName(ctx, rc.name, key, loc);
    routeConfigs.set(key, translateRouteConfig(ctx, rc, loc));
  }
  const assignments = new Map<string, EndpointsPart>();
  for (const [key, cla] of set.endpoints) {
    const loc = root(TypeUrl.ClusterLoadAssignment, key);
    if (cla.cluster_name !== undefined && cla.cluster_name !== key) {
      ctx.reject(sub(loc, 'cluster_name'), `"${String(cla.cluster_name)}" does not match the resource name "${key}"`);
    }
    assignments.set(key, translateEndpoints(ctx, cla, loc));
  }
  const clusters = [...set.clusters].flatMap(([key, c]) => translateCluster(ctx, key, c) ?? []);
  if (ctx.errors.length > 0) return { ok: false, errors: ctx.errors };

  // Assemble. Marks map raw paths (`clusters[2].endpoints[0].port`) back to resources.
  const marks: Mark[] = [];
  const waitingClusters = new Set<string>();
  const rawClusters = clusters.map((c, i) => {
    const raw: Obj = { ...c.raw };
    const prefix = `clusters[${i}]`;
    addMarks(marks, prefix, c.marks);
    if (c.eds !== undefined) {
      const cla = assignments.get(c.eds);
      if (cla === undefined) {
        waitingClusters.add(c.name);
        raw.endpoints = PLACEHOLDER_ENDPOINTS;
      } else {
        raw.endpoints = cla.endpoints;
        addMarks(marks, prefix, cla.marks.map(([rel, loc]) => [`.endpoints${rel}`, loc]));
      }
    }
    return raw;
  });
  const waitingListeners = new Set<string>();
  const rawListeners = listeners.map((l, i) => {
    const raw: Obj = { ...l.raw };
    const prefix = `listeners[${i}]`;
    addMarks(marks, prefix, l.marks);
    const part = l.route.kind === 'inline' ? translateRouteConfig(ctx, l.route.config, l.route.loc) : routeConfigs.get(l.route.name);
    if (part === undefined) {
      waitingListeners.add(l.name);
      raw.virtual_hosts = PLACEHOLDER_VHOSTS;
      return raw;
    }
    const attached = attachRoutes(ctx, l, part);
    raw.virtual_hosts = attached.vhosts;
    addMarks(marks, prefix, attached.marks);
    if (part.clusters.some((c) => waitingClusters.has(c))) waitingListeners.add(l.name);
    return raw;
  });
  if (ctx.errors.length > 0) return { ok: false, errors: ctx.errors };

  const raw: Obj = {};
  for (const key of BASE_KEYS) if (base[key] !== undefined) raw[key] = base[key];
  raw.listeners = rawListeners;
  raw.clusters = rawClusters;
  const result = validateConfig(raw);
  if (!result.ok) return { ok: false, errors: dedupe(result.errors.map((e) => locate(e, marks))) };
  if (waitingListeners.size === 0 && waitingClusters.size === 0) return result;
  const c = result.config;
  return {
    ok: true,
    config: Object.freeze({
      ...c,
      listeners: Object.freeze(c.listeners.filter((l) => !waitingListeners.has(l.name))),
      clusters: Object.freeze(c.clusters.filter((cl) => !waitingClusters.has(cl.name))),
    }),
  };
}

// ---------------------------------------------------------------------------
// Names and marks (reading decoded protos: src/config/xds-translate-context.ts).

function edsName(c: Obj): string {
  const service = asStr(asObj(c.eds_cluster_config)?.service_name);
  return service !== undefined && service !== '' ? service : (asStr(c.name) ?? '');
}

/** Maps a validateConfig error to the resource field its value came from. */
function locate(e: ConfigError, marks: readonly Mark[]): XdsRejection {
  let best: Mark | undefined;
  for (const m of marks) {
    const p = m[0];
    const covers = e.path === p || e.path.startsWith(`${p}.`) || e.path.startsWith(`${p}[`);
    if (covers && (best === undefined || p.length > best[0].length)) best = m;
  }
  if (best === undefined) {
    if (e.path.startsWith('listeners')) return { typeUrl: TypeUrl.Listener, name: '', path: e.path, message: e.message };
    if (e.path.startsWith('clusters')) return { typeUrl: TypeUrl.Cluster, name: '', path: e.path, message: e.message };
    return { typeUrl: '', name: 'bootstrap', path: e.path, message: e.message };
  }
  const [p, loc] = best;
  const rest = e.path.slice(p.length);
  // Lists copied one to one keep their indexes, and Remora extensions their field names;
  // other leftovers are named as Remora fields.
  const extension = loc.path.includes(`filter_metadata.${REMORA_METADATA}.`);
  if (rest === '' || /^(\[\d+\])+$/.test(rest) || extension) return { ...loc, path: `${loc.path}${rest}`, message: e.message };
  return { ...loc, message: `${e.message} (Remora field ${rest.replace(/^\./, '')})` };
}

function dedupe(errors: XdsRejection[]): XdsRejection[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const key = formatRejection(e);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Marks a resource name that disagrees with the key it is stored under. */
function checkName(ctx: Ctx, name: unknown, key: string, loc: Loc): void {
  if (name !== undefined && name !== key) ctx.reject(sub(loc, 'name'), `"${String(name)}" does not match the resource name "${key}"`);
}

const extPath = (loc: Loc, key: string): Loc => sub(loc, `metadata.filter_metadata.${REMORA_METADATA}.${key}`);

/** `address.socket_address` → address and port (`protocol` TCP only). */
function socketAddress(ctx: Ctx, v: unknown, loc: Loc): { address: string; port: number; addressLoc: Loc; portLoc: Loc } | undefined {
  const a = asObj(v);
  const sl = sub(loc, 'socket_address');
  const s = asObj(a?.socket_address);
  if (a === undefined || s === undefined) {
    ctx.reject(sl, 'is required');
    return undefined;
  }
  ctx.only(a, loc, ['socket_address']);
  ctx.only(s, sl, ['address', 'port_value', 'protocol']);
  if (isSet(s.protocol) && s.protocol !== 'TCP') ctx.reject(sub(sl, 'protocol'), `${String(s.protocol)} is not supported (TCP only)`);
  return { address: asStr(s.address) ?? '', port: asNum(s.port_value), addressLoc: sub(sl, 'address'), portLoc: sub(sl, 'port_value') };
}

/** A ConfigSource for RDS/EDS: Remora fetches everything over its one ADS stream. */
function configSource(ctx: Ctx, v: unknown, loc: Loc): void {
  const cs = asObj(v);
  if (cs === undefined || !isObj(cs.ads)) {
    ctx.reject(loc, 'must be { ads: {} }: Remora receives every resource on its ADS stream');
    return;
  }
  ctx.only(cs, loc, ['ads', 'resource_api_version']);
  if (isSet(cs.resource_api_version) && cs.resource_api_version !== 'AUTO' && cs.resource_api_version !== 'V3') {
    ctx.reject(sub(loc, 'resource_api_version'), `${String(cs.resource_api_version)} is not supported (V3)`);
  }
}

// ---------------------------------------------------------------------------
// Local rate limits (HTTP filter and per-route config)

/** envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit → a raw rate limit;
 *  null when it has no token bucket (a filter that only carries per-route limits). */
function localRateLimit(ctx: Ctx, msg: Obj, loc: Loc): { raw: Obj; marks: Mark[] } | null {
  ctx.only(msg, loc, ['stat_prefix', 'status', 'token_bucket', 'filter_enabled', 'filter_enforced', 'always_consume_default_token_bucket']);
  const status = asObj(msg.status);
  if (status !== undefined && status.code !== 'TooManyRequests') {
    ctx.reject(sub(loc, 'status'), `${String(status.code ?? 'Empty')} is not supported: Remora refuses with 429 (TooManyRequests)`);
  }
  const bucket = asObj(msg.token_bucket);
  if (bucket === undefined) return null;
  const bl = sub(loc, 'token_bucket');
  ctx.only(bucket, bl, ['max_tokens', 'tokens_per_fill', 'fill_interval']);
  const enabled = ctx.percent(msg.filter_enabled, sub(loc, 'filter_enabled'));
  if (enabled !== 100) {
    const got = enabled === undefined ? 'unset (0% in Envoy: the limiter is off)' : `${enabled}%`;
    ctx.reject(sub(loc, 'filter_enabled'), `must be 100% (got ${got}); Remora has no partial enablement`);
  }
  const enforced = ctx.percent(msg.filter_enforced, sub(loc, 'filter_enforced')) ?? 0;
  if (enforced !== 0 && enforced !== 100) {
    ctx.reject(sub(loc, 'filter_enforced'), `must be 100% (enforce) or 0% (shadow: count only), got ${enforced}%`);
  }
  const fill = ctx.ms(bucket.fill_interval, sub(bl, 'fill_interval'));
  const raw: Obj = {
    name: asStr(msg.stat_prefix) ?? '',
    max_tokens: asNum(bucket.max_tokens),
    tokens_per_fill: wrapped(bucket.tokens_per_fill) ?? ENVOY_TOKENS_PER_FILL,
    ...(fill !== undefined ? { fill_interval_ms: fill } : {}),
    shadow: enforced === 0,
  };
  const marks: Mark[] = [
    ['', loc],
    ['.name', sub(loc, 'stat_prefix')],
    ['.max_tokens', sub(bl, 'max_tokens')],
    ['.tokens_per_fill', sub(bl, 'tokens_per_fill')],
    ['.fill_interval_ms', sub(bl, 'fill_interval')],
  ];
  return { raw, marks };
}

/** `rate_limit_keys` extension: rate limit name → key ({headers, client_ip}). */
function applyRateLimitKeys(ctx: Ctx, ext: Obj, loc: Loc, limits: readonly { raw: Obj; marks: Mark[] }[], where: string): void {
  const keys = ext.rate_limit_keys;
  if (keys === undefined) return;
  const kl = extPath(loc, 'rate_limit_keys');
  if (!isObj(keys)) {
    ctx.reject(kl, 'must be a struct: rate limit name → { headers, client_ip }');
    return;
  }
  for (const [name, key] of Object.entries(keys)) {
    const limit = limits.find((l) => l.raw.name === name);
    if (limit === undefined) ctx.reject(sub(kl, name), `no local rate limit with stat_prefix "${name}" on this ${where}`);
    else {
      limit.raw.key = key;
      limit.marks.push(['.key', sub(kl, name)]);
    }
  }
}

// ---------------------------------------------------------------------------
// Listener

interface ListenerPart {
  readonly name: string;
  readonly loc: Loc;
  /** The raw listener without virtual_hosts. */
  readonly raw: Obj;
  readonly marks: Mark[];
  readonly route: { kind: 'rds'; name: string } | { kind: 'inline'; config: Obj; loc: Loc };
  /** Local rate limit HTTP filters by name: index in http_filters, and whether the
   *  filter has its own token bucket (a listener-wide limit). */
  readonly rateLimitFilters: ReadonlyMap<string, { index: number; bucket: boolean }>;
  /** RBAC HTTP filters by name, and whether the filter has rules of its own. */
  readonly rbacFilters: ReadonlyMap<string, { rules: boolean }>;
  /** No TLS, or a verified client certificate required (see authorization()). */
  readonly everyClientVerified: boolean;
}

function translateListener(ctx: Ctx, key: string, l: Obj): ListenerPart | undefined {
  const loc = root(TypeUrl.Listener, key);
  checkName(ctx, l.name, key, loc);
  if (isSet(l.api_listener)) {
    ctx.reject(sub(loc, 'api_listener'), 'api_listener is for gRPC clients; Remora needs address + filter_chains');
    return undefined;
  }
  ctx.only(l, loc, ['name', 'address', 'filter_chains', 'metadata', 'listener_filters']);
  // Inspectors that only read the first bytes to pick a filter chain (Istio adds them):
  // with one filter chain there is nothing to pick, so they change nothing. Others act.
  asArr(l.listener_filters).forEach((f, i) => {
    const name = asStr(asObj(f)?.name) ?? '';
    if (!INSPECTOR_FILTERS.includes(name)) {
      ctx.reject(sub(loc, `listener_filters[${i}]`), `"${name}" is not supported (only ${INSPECTOR_FILTERS.join(', ')}, which change nothing with one filter chain)`);
    }
  });
  const raw: Obj = { name: key };
  const marks: Mark[] = [['', loc], ['.name', sub(loc, 'name')]];
  const sa = socketAddress(ctx, l.address, sub(loc, 'address'));
  if (sa !== undefined) {
    raw.address = sa.address;
    raw.port = sa.port;
    marks.push(['.address', sa.addressLoc], ['.port', sa.portLoc]);
  }
  const chains = asArr(l.filter_chains);
  if (chains.length !== 1) {
    const where = chains.length === 0 ? sub(loc, 'filter_chains') : sub(loc, 'filter_chains[1]');
    ctx.reject(where, `Remora needs exactly one filter chain (got ${chains.length})`);
    return undefined;
  }
  const cl = sub(loc, 'filter_chains[0]');
  const chain = asObj(chains[0]) ?? {};
  ctx.only(chain, cl, ['filters', 'name', 'transport_socket']);
  const tls = chain.transport_socket === undefined ? undefined : downstreamTls(ctx, chain.transport_socket, sub(cl, 'transport_socket'));
  if (tls !== undefined) {
    raw.tls = tls.raw;
    marks.push(...tls.marks);
  }
  const filters = asArr(chain.filters);
  if (filters.length !== 1) {
    const where = filters.length === 0 ? sub(cl, 'filters') : sub(cl, 'filters[1]');
    ctx.reject(where, `Remora needs exactly one network filter, ${HCM_FILTER_NAME} (got ${filters.length})`);
    return undefined;
  }
  const fl = sub(cl, 'filters[0]');
  const filter = asObj(filters[0]) ?? {};
  ctx.only(filter, fl, ['name', 'typed_config']);
  const type = asStr(asObj(filter.typed_config)?.type_url);
  if (type !== TypeUrl.HttpConnectionManager) {
    ctx.reject(fl, `unsupported network filter ${asStr(filter.name) ?? type ?? '(unnamed)'}: Remora supports ${HCM_FILTER_NAME} only`);
    return undefined;
  }
  const tl = sub(fl, 'typed_config');
  const hcm = ctx.decode(filter.typed_config, tl)?.message;
  if (hcm === undefined) return undefined;
  ctx.only(hcm, tl, ['stat_prefix', 'codec_type', 'rds', 'route_config', 'http_filters', 'max_request_headers_kb',
    'forward_client_cert_details', 'set_current_client_cert_details', 'normalize_path', 'merge_slashes',
    'path_with_escaped_slashes_action', 'server_name', 'server_header_transformation', 'request_headers_timeout',
    'common_http_protocol_options']);
  if (isSet(hcm.codec_type) && hcm.codec_type !== 'AUTO' && hcm.codec_type !== 'HTTP1') {
    ctx.reject(sub(tl, 'codec_type'), `${String(hcm.codec_type)} is not supported: Remora's listeners speak HTTP/1.1 (AUTO or HTTP1)`);
  }
  const headersKb = wrapped(hcm.max_request_headers_kb);
  if (headersKb !== undefined) {
    raw.max_request_headers_kb = headersKb;
    marks.push(['.max_request_headers_kb', sub(tl, 'max_request_headers_kb')]);
  }
  marks.push(...connectionManagerOptions(ctx, hcm, tl, raw));
  const xfcc = forwardClientCert(ctx, hcm, tl);
  raw.forward_client_cert_details = xfcc.mode;
  marks.push(...xfcc.marks);

  let route: ListenerPart['route'] | undefined;
  const rds = asObj(hcm.rds);
  const inline = asObj(hcm.route_config);
  if (rds !== undefined) {
    const rl = sub(tl, 'rds');
    ctx.only(rds, rl, ['config_source', 'route_config_name']);
    configSource(ctx, rds.config_source, sub(rl, 'config_source'));
    const name = asStr(rds.route_config_name) ?? '';
    if (name === '') ctx.reject(sub(rl, 'route_config_name'), 'is required');
    route = { kind: 'rds', name };
  } else if (inline !== undefined) {
    route = { kind: 'inline', config: inline, loc: sub(tl, 'route_config') };
  } else {
    ctx.reject(tl, 'needs rds or route_config (scoped_routes is not supported)');
  }

  const { limits, rateLimitFilters, rbac, rbacFilters } = httpFilters(ctx, asArr(hcm.http_filters), sub(tl, 'http_filters'));
  const everyClientVerified = tls === undefined || tls.raw.require_client_certificate === true;
  const authz = authorization(ctx, rbac, everyClientVerified, '');
  if (authz !== undefined) {
    raw.authorization = authz.raw;
    marks.push(...authz.marks);
  }
  const ext = ctx.extensions(l, loc, REMORA_EXTENSIONS.listener);
  applyRateLimitKeys(ctx, ext, loc, limits, `listener "${key}"`);
  raw.rate_limits = limits.map((x) => x.raw);
  limits.forEach((x, i) => addMarks(marks, `.rate_limits[${i}]`, x.marks));
  for (const k of ['access_log', 'generate_traceparent', 'codec', 'max_connections'] as const) {
    if (ext[k] !== undefined) {
      raw[k] = ext[k];
      marks.push([`.${k}`, extPath(loc, k)]);
    }
  }
  if (route === undefined) return undefined;
  return { name: key, loc, raw, marks, route, rateLimitFilters, rbacFilters, everyClientVerified };
}

/** The HCM's http_filters: RBAC and local rate limits, then the router, last. An
 *  unsupported filter is rejected unless `is_optional` (xDS lets a client skip optional
 *  filters). At most one RBAC filter per action has rules (one allow and one deny list). */
const ESCAPED_SLASHES: Readonly<Record<string, string>> = {
  IMPLEMENTATION_SPECIFIC_DEFAULT: 'keep_unchanged',
  KEEP_UNCHANGED: 'keep_unchanged',
  REJECT_REQUEST: 'reject_request',
  UNESCAPE_AND_REDIRECT: 'unescape_and_redirect',
  UNESCAPE_AND_FORWARD: 'unescape_and_forward',
};
const SERVER_HEADER: Readonly<Record<string, string>> = {
  OVERWRITE: 'overwrite',
  APPEND_IF_ABSENT: 'append_if_absent',
  PASS_THROUGH: 'pass_through',
};

/** The HttpConnectionManager's front-end settings → the listener's (path normalisation,
 *  server header, timeouts, limits). Unset fields keep Remora's defaults; note that
 *  normalize_path unset stays on (Remora's safe default), where Envoy's is off. */
function connectionManagerOptions(ctx: Ctx, hcm: Obj, tl: Loc, raw: Obj): Mark[] {
  const marks: Mark[] = [];
  const set = (key: string, value: unknown, loc: Loc): void => {
    raw[key] = value;
    marks.push([`.${key}`, loc]);
  };
  const normalize = wrappedBool(hcm.normalize_path);
  if (normalize !== undefined) set('normalize_path', normalize, sub(tl, 'normalize_path'));
  if (hcm.merge_slashes === true) set('merge_slashes', true, sub(tl, 'merge_slashes'));
  if (isSet(hcm.path_with_escaped_slashes_action)) {
    const action = ESCAPED_SLASHES[String(hcm.path_with_escaped_slashes_action)];
    if (action === undefined) ctx.reject(sub(tl, 'path_with_escaped_slashes_action'), `unknown action ${String(hcm.path_with_escaped_slashes_action)}`);
    else set('path_with_escaped_slashes_action', action, sub(tl, 'path_with_escaped_slashes_action'));
  }
  if (isSet(hcm.server_name)) set('server_name', asStr(hcm.server_name), sub(tl, 'server_name'));
  if (isSet(hcm.server_header_transformation)) {
    const mode = SERVER_HEADER[String(hcm.server_header_transformation)];
    if (mode === undefined) ctx.reject(sub(tl, 'server_header_transformation'), `unknown transformation ${String(hcm.server_header_transformation)}`);
    else set('server_header_transformation', mode, sub(tl, 'server_header_transformation'));
  }
  if (hcm.request_headers_timeout !== undefined && hcm.request_headers_timeout !== null) {
    const ms = ctx.ms(hcm.request_headers_timeout, sub(tl, 'request_headers_timeout'));
    // Envoy's 0 means no timeout: Remora's longest one stands for it.
    if (ms !== undefined) set('request_headers_timeout_ms', ms === 0 ? 3_600_000 : ms, sub(tl, 'request_headers_timeout'));
  }
  const common = asObj(hcm.common_http_protocol_options);
  if (common !== undefined) {
    const cl = sub(tl, 'common_http_protocol_options');
    ctx.only(common, cl, ['idle_timeout', 'max_headers_count', 'max_requests_per_connection']);
    if (common.idle_timeout !== undefined && common.idle_timeout !== null) {
      const ms = ctx.ms(common.idle_timeout, sub(cl, 'idle_timeout'));
      // Envoy's 0 disables the idle timeout: a day stands for it.
      if (ms !== undefined) set('idle_timeout_ms', ms === 0 ? 86_400_000 : ms, sub(cl, 'idle_timeout'));
    }
    const headers = wrapped(common.max_headers_count);
    if (headers !== undefined) set('max_request_headers_count', headers, sub(cl, 'max_headers_count'));
    const requests = wrapped(common.max_requests_per_connection);
    if (requests !== undefined) set('max_requests_per_connection', requests, sub(cl, 'max_requests_per_connection'));
  }
  return marks;
}

function httpFilters(ctx: Ctx, filters: unknown[], loc: Loc): {
  limits: { raw: Obj; marks: Mark[] }[];
  rateLimitFilters: Map<string, { index: number; bucket: boolean }>;
  rbac: Partial<Record<RbacAction, RbacRules>>;
  rbacFilters: Map<string, { rules: boolean }>;
} {
  const limits: { raw: Obj; marks: Mark[] }[] = [];
  const rateLimitFilters = new Map<string, { index: number; bucket: boolean }>();
  const rbac: Partial<Record<RbacAction, RbacRules>> = {};
  const rbacFilters = new Map<string, { rules: boolean }>();
  const names = new Set<string>();
  let router = false;
  filters.forEach((v, i) => {
    const fl = sub(loc, i);
    const f = asObj(v) ?? {};
    ctx.only(f, fl, ['name', 'typed_config', 'is_optional']);
    const name = asStr(f.name) ?? '';
    if (names.has(name)) ctx.reject(sub(fl, 'name'), `duplicate http filter name "${name}"`);
    names.add(name);
    const type = asStr(asObj(f.typed_config)?.type_url);
    if (type === TypeUrl.Router || (type === undefined && name === ROUTER_FILTER_NAME)) {
      if (i !== filters.length - 1) ctx.reject(fl, 'the router filter must be the last http filter');
      if (type !== undefined) {
        const msg = ctx.decode(f.typed_config, sub(fl, 'typed_config'))?.message;
        if (msg !== undefined) ctx.only(msg, sub(fl, 'typed_config'), []);
      }
      router = true;
      return;
    }
    if (type === TypeUrl.LocalRateLimit) {
      const msg = ctx.decode(f.typed_config, sub(fl, 'typed_config'))?.message;
      if (msg === undefined) return;
      const limit = localRateLimit(ctx, msg, sub(fl, 'typed_config'));
      rateLimitFilters.set(name, { index: i, bucket: limit !== null });
      if (limit !== null) limits.push(limit);
      return;
    }
    if (type === TypeUrl.Rbac) {
      const msg = ctx.decode(f.typed_config, sub(fl, 'typed_config'))?.message;
      const rules = msg === undefined ? undefined : rbacConfig(ctx, msg, sub(fl, 'typed_config'));
      if (rules === undefined) return;
      rbacFilters.set(name, { rules: rules !== null });
      if (rules !== null) collectRules(ctx, rbac, rules, fl, 'listener');
      return;
    }
    if (f.is_optional === true) return;
    ctx.reject(fl, `unsupported http filter ${name !== '' ? name : (type ?? '(unnamed)')}`);
  });
  if (!router) ctx.reject(loc, `the last http filter must be the router (${ROUTER_FILTER_NAME})`);
  return { limits, rateLimitFilters, rbac, rbacFilters };
}

// ---------------------------------------------------------------------------
// RouteConfiguration

interface PerRouteLimit {
  readonly vhost: number;
  readonly route: number;
  /** The HTTP filter the per-route config belongs to (typed_per_filter_config key). */
  readonly filter: string;
  readonly raw: Obj;
  readonly marks: Mark[];
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

interface RoutePart {
  /** Raw virtual hosts, without the routes' rate_limits and authorization (they depend
   *  on the listener). */
  readonly vhosts: Obj[];
  /** Relative to the listener: `.virtual_hosts[0].routes[1].match.prefix`. */
  readonly marks: Mark[];
  readonly limits: PerRouteLimit[];
  readonly rbac: PerRouteRbac[];
  /** Clusters the routes reference. */
  readonly clusters: string[];
}

function translateRouteConfig(ctx: Ctx, rc: Obj, loc: Loc): RoutePart {
  ctx.only(rc, loc, ['name', 'virtual_hosts', 'validate_clusters']);
  if (wrappedBool(rc.validate_clusters) === false) {
    ctx.reject(sub(loc, 'validate_clusters'), 'false is not supported: Remora rejects routes to clusters that CDS has not defined');
  }
  const part: RoutePart = { vhosts: [], marks: [], limits: [], rbac: [], clusters: [] };
  asArr(rc.virtual_hosts).forEach((v, i) => {
    const vl = sub(loc, `virtual_hosts[${i}]`);
    const vh = asObj(v) ?? {};
    ctx.only(vh, vl, ['name', 'domains', 'routes', 'include_request_attempt_count']);
    const rel = `.virtual_hosts[${i}]`;
    const routes: Obj[] = [];
    asArr(vh.routes).forEach((r, j) => {
      routes.push(translateRoute(ctx, asObj(r) ?? {}, sub(vl, `routes[${j}]`), `${rel}.routes[${j}]`, part, i, j));
    });
    part.vhosts.push({ name: vh.name ?? '', domains: asArr(vh.domains), routes, ...(vh.include_request_attempt_count === true ? { include_request_attempt_count: true } : {}) });
    part.marks.push([rel, vl], [`${rel}.name`, sub(vl, 'name')], [`${rel}.domains`, sub(vl, 'domains')], [`${rel}.routes`, sub(vl, 'routes')],
      [`${rel}.include_request_attempt_count`, sub(vl, 'include_request_attempt_count')]);
  });
  return part;
}

function translateRoute(ctx: Ctx, r: Obj, loc: Loc, rel: string, part: RoutePart, vhost: number, index: number): Obj {
  ctx.only(r, loc, ['name', 'match', 'route', 'direct_response', 'metadata', 'typed_per_filter_config',
    'request_headers_to_add', 'request_headers_to_remove', 'response_headers_to_add', 'response_headers_to_remove',
    'per_request_buffer_limit_bytes']);
  const raw: Obj = {};
  part.marks.push([rel, loc]);
  if (isSet(r.name)) {
    raw.name = r.name;
    part.marks.push([`${rel}.name`, sub(loc, 'name')]);
  }
  if (r.match !== undefined) raw.match = routeMatch(ctx, asObj(r.match) ?? {}, sub(loc, 'match'), `${rel}.match`, part.marks);
  if (r.route !== undefined) {
    const action = routeAction(ctx, asObj(r.route) ?? {}, sub(loc, 'route'), `${rel}.route`, part.marks);
    raw.route = action;
    if (typeof action.cluster === 'string') part.clusters.push(action.cluster);
    for (const w of asArr(action.weighted_clusters)) part.clusters.push(String(asObj(w)?.cluster));
  }
  if (r.direct_response !== undefined) {
    const dl = sub(loc, 'direct_response');
    const d = asObj(r.direct_response) ?? {};
    ctx.only(d, dl, ['status', 'body']);
    const body = asObj(d.body);
    if (body !== undefined) ctx.only(body, sub(dl, 'body'), ['inline_string']);
    raw.direct_response = { status: asNum(d.status), body: asStr(body?.inline_string) ?? '' };
    part.marks.push([`${rel}.direct_response`, dl], [`${rel}.direct_response.status`, sub(dl, 'status')], [`${rel}.direct_response.body`, sub(dl, 'body.inline_string')]);
  }
  for (const k of ['request_headers_to_add', 'response_headers_to_add'] as const) {
    const out: Obj[] = [];
    asArr(r[k]).forEach((h, i) => {
      const header = headerToAdd(ctx, asObj(h) ?? {}, sub(loc, `${k}[${i}]`));
      if (header === undefined) return;
      part.marks.push([`${rel}.${k}[${out.length}]`, sub(loc, `${k}[${i}].header`)], [`${rel}.${k}[${out.length}].name`, sub(loc, `${k}[${i}].header.key`)],
        [`${rel}.${k}[${out.length}].value`, sub(loc, `${k}[${i}].header.value`)]);
      out.push(header);
    });
    raw[k] = out;
  }
  for (const k of ['request_headers_to_remove', 'response_headers_to_remove'] as const) {
    raw[k] = asArr(r[k]);
    part.marks.push([`${rel}.${k}`, sub(loc, k)]);
  }

  // Remora-only fields; those of the route action need one.
  const ext = ctx.extensions(r, loc, REMORA_EXTENSIONS.route);
  const action = asObj(raw.route);
  const needsAction = (key: string, value: unknown, to: string, inRetry: boolean): void => {
    if (value === undefined) return;
    const where = key === 'per_request_buffer_limit_bytes' ? sub(loc, key) : extPath(loc, key);
    const retry = asObj(action?.retry_policy);
    if (action === undefined) ctx.reject(where, 'needs a route action (not allowed with direct_response)');
    else if (inRetry && retry === undefined) ctx.reject(where, 'needs route.retry_policy');
    else {
      (inRetry ? (retry ?? {}) : action)[to] = value;
      part.marks.push([`${rel}.route${inRetry ? '.retry_policy' : ''}.${to}`, where]);
    }
  };
  needsAction('max_request_body_bytes', ext.max_request_body_bytes, 'max_request_body_bytes', false);
  needsAction('retry_allow_request_headers', ext.retry_allow_request_headers, 'allow_request_headers', true);
  needsAction('retry_non_idempotent_on_reset', ext.retry_non_idempotent_on_reset, 'retry_non_idempotent_on_reset', true);
  needsAction('per_request_buffer_limit_bytes', wrapped(r.per_request_buffer_limit_bytes), 'buffer_limit_bytes', true);

  const { limits, rbac } = perRouteConfigs(ctx, asObj(r.typed_per_filter_config) ?? {}, loc, vhost, index);
  applyRateLimitKeys(ctx, ext, loc, limits, 'route');
  part.limits.push(...limits);
  part.rbac.push(...rbac);
  return raw;
}

/** typed_per_filter_config: local rate limits and RBAC rules (directly or in a FilterConfig). */
function perRouteConfigs(ctx: Ctx, configs: Obj, loc: Loc, vhost: number, route: number): { limits: PerRouteLimit[]; rbac: PerRouteRbac[] } {
  const out: { limits: PerRouteLimit[]; rbac: PerRouteRbac[] } = { limits: [], rbac: [] };
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
      continue;
    }
    const msg = ctx.decode(inner, fl)?.message;
    if (msg === undefined) continue;
    const limit = localRateLimit(ctx, msg, fl);
    if (limit === null) ctx.reject(sub(fl, 'token_bucket'), 'is required in a per-route local rate limit');
    else out.limits.push({ vhost, route, filter, raw: limit.raw, marks: limit.marks, loc: fl });
  }
  return out;
}

function routeMatch(ctx: Ctx, m: Obj, loc: Loc, rel: string, marks: Mark[]): Obj {
  ctx.only(m, loc, ['prefix', 'path', 'safe_regex', 'case_sensitive', 'headers']);
  if (wrappedBool(m.case_sensitive) === false) ctx.reject(sub(loc, 'case_sensitive'), 'false is not supported: Remora matches paths case-sensitively');
  const raw: Obj = {};
  marks.push([rel, loc]);
  // path_specifier is a oneof, so an explicit "" is on the wire; prefix "" matches every path.
  if (m.prefix !== undefined) {
    raw.prefix = m.prefix === '' ? '/' : m.prefix;
    marks.push([`${rel}.prefix`, sub(loc, 'prefix')]);
  } else if (m.path !== undefined) {
    raw.path = m.path;
    marks.push([`${rel}.path`, sub(loc, 'path')]);
  } else if (m.safe_regex !== undefined) {
    raw.regex = regexMatcher(ctx, m.safe_regex, sub(loc, 'safe_regex'));
    marks.push([`${rel}.regex`, sub(loc, 'safe_regex.regex')]);
  }
  const headers: Obj[] = [];
  let methodsAt: Loc | undefined;
  asArr(m.headers).forEach((v, i) => {
    const hl = sub(loc, `headers[${i}]`);
    const h = asObj(v) ?? {};
    const matcher = headerMatcher(ctx, h, hl);
    if (matcher === undefined) return;
    if (h.name === ':method') {
      if (methodsAt !== undefined) ctx.reject(hl, `only one :method matcher is supported (first at ${methodsAt.path})`);
      methodsAt = hl;
      const methods = methodList(ctx, matcher, hl);
      raw.methods = methods;
      marks.push([`${rel}.methods`, hl], ...methods.map((_, k): Mark => [`${rel}.methods[${k}]`, hl]));
      return;
    }
    marks.push([`${rel}.headers[${headers.length}]`, hl], [`${rel}.headers[${headers.length}].name`, sub(hl, 'name')]);
    headers.push(matcher);
  });
  raw.headers = headers;
  return raw;
}

/** A `:method` matcher → methods: exact `GET`, or a regex like `GET|POST`. */
function methodList(ctx: Ctx, matcher: Obj, loc: Loc): string[] {
  if (typeof matcher.exact === 'string') return [matcher.exact];
  const re = typeof matcher.regex === 'string' ? /^\^?\(?((?:[A-Z]+\|)*[A-Z]+)\)?\$?$/.exec(matcher.regex) : null;
  if (re === null) {
    ctx.reject(loc, 'a :method matcher must be an exact method or a regex listing methods (GET|POST)');
    return [];
  }
  return re[1].split('|');
}

function regexMatcher(ctx: Ctx, v: unknown, loc: Loc): string {
  const r = asObj(v) ?? {};
  ctx.only(r, loc, ['google_re2', 'regex']);
  const re2 = asObj(r.google_re2);
  if (re2 !== undefined) ctx.only(re2, sub(loc, 'google_re2'), []);
  return asStr(r.regex) ?? '';
}

/** HeaderMatcher → {name, exact | regex | present}; undefined when rejected. */
function headerMatcher(ctx: Ctx, h: Obj, loc: Loc): Obj | undefined {
  ctx.only(h, loc, ['name', 'exact_match', 'safe_regex_match', 'present_match', 'string_match']);
  const name = h.name;
  if (h.exact_match !== undefined) return { name, exact: h.exact_match };
  if (h.safe_regex_match !== undefined) return { name, regex: regexMatcher(ctx, h.safe_regex_match, sub(loc, 'safe_regex_match')) };
  if (h.present_match === false) {
    ctx.reject(sub(loc, 'present_match'), 'false (match when the header is absent) is not supported');
    return undefined;
  }
  const s = asObj(h.string_match);
  if (s !== undefined) {
    const sl = sub(loc, 'string_match');
    ctx.only(s, sl, ['exact', 'safe_regex']);
    if (s.exact !== undefined) return { name, exact: s.exact };
    if (s.safe_regex !== undefined) return { name, regex: regexMatcher(ctx, s.safe_regex, sub(sl, 'safe_regex')) };
    if (!Object.values(s).some(isSet)) ctx.reject(sl, 'needs exact or safe_regex'); // else rejected above
    return undefined;
  }
  return { name, present: true }; // present_match: true, or no specifier (Envoy: present)
}

function routeAction(ctx: Ctx, a: Obj, loc: Loc, rel: string, marks: Mark[]): Obj {
  ctx.only(a, loc, ['cluster', 'weighted_clusters', 'prefix_rewrite', 'host_rewrite_literal', 'timeout', 'retry_policy',
    'auto_host_rewrite', 'priority', 'cluster_not_found_response_code']);
  if (wrappedBool(a.auto_host_rewrite) === true) ctx.reject(sub(loc, 'auto_host_rewrite'), 'is not supported; use host_rewrite_literal');
  if (isSet(a.priority) && a.priority !== 'DEFAULT') ctx.reject(sub(loc, 'priority'), `${String(a.priority)} is not supported (DEFAULT only)`);
  if (isSet(a.cluster_not_found_response_code) && a.cluster_not_found_response_code !== 'SERVICE_UNAVAILABLE') {
    ctx.reject(sub(loc, 'cluster_not_found_response_code'), 'is not supported: Remora rejects routes to unknown clusters');
  }
  const raw: Obj = {};
  marks.push([rel, loc]);
  if (a.cluster !== undefined) {
    raw.cluster = a.cluster;
    marks.push([`${rel}.cluster`, sub(loc, 'cluster')]);
  }
  const wc = asObj(a.weighted_clusters);
  if (wc !== undefined) {
    const wl = sub(loc, 'weighted_clusters');
    ctx.only(wc, wl, ['clusters', 'total_weight']);
    const list = asArr(wc.clusters).map((v, i) => {
      const cl = sub(wl, `clusters[${i}]`);
      const c = asObj(v) ?? {};
      ctx.only(c, cl, ['name', 'weight']);
      marks.push([`${rel}.weighted_clusters[${i}]`, cl], [`${rel}.weighted_clusters[${i}].cluster`, sub(cl, 'name')],
        [`${rel}.weighted_clusters[${i}].weight`, sub(cl, 'weight')]);
      return { cluster: c.name, weight: wrapped(c.weight) ?? 0 };
    });
    const total = wrapped(wc.total_weight);
    const sum = list.reduce((s, w) => s + w.weight, 0);
    if (total !== undefined && total !== sum) ctx.reject(sub(wl, 'total_weight'), `${total} is not the sum of the weights (${sum})`);
    raw.weighted_clusters = list;
    marks.push([`${rel}.weighted_clusters`, sub(wl, 'clusters')]);
  }
  if (isSet(a.prefix_rewrite)) {
    raw.prefix_rewrite = a.prefix_rewrite;
    marks.push([`${rel}.prefix_rewrite`, sub(loc, 'prefix_rewrite')]);
  }
  if (a.host_rewrite_literal !== undefined) {
    raw.host_rewrite = a.host_rewrite_literal;
    marks.push([`${rel}.host_rewrite`, sub(loc, 'host_rewrite_literal')]);
  }
  const timeout = ctx.ms(a.timeout, sub(loc, 'timeout'));
  if (timeout !== undefined) {
    raw.timeout_ms = timeout;
    marks.push([`${rel}.timeout_ms`, sub(loc, 'timeout')]);
  }
  const rp = asObj(a.retry_policy);
  if (rp !== undefined) raw.retry_policy = retryPolicy(ctx, rp, sub(loc, 'retry_policy'), `${rel}.retry_policy`, marks);
  return raw;
}

function retryPolicy(ctx: Ctx, rp: Obj, loc: Loc, rel: string, marks: Mark[]): Obj {
  ctx.only(rp, loc, ['retry_on', 'num_retries', 'per_try_timeout', 'retriable_status_codes', 'retry_back_off']);
  const raw: Obj = {};
  marks.push([rel, loc]);
  const on = (asStr(rp.retry_on) ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const cond of on) {
    if (!RETRY_ON.includes(cond)) ctx.reject(sub(loc, 'retry_on'), `"${cond}" is not supported (Remora retries on ${RETRY_ON.join(', ')})`);
  }
  raw.retry_on = on;
  marks.push([`${rel}.retry_on`, sub(loc, 'retry_on')]);
  const n = wrapped(rp.num_retries);
  if (n !== undefined) {
    raw.num_retries = n;
    marks.push([`${rel}.num_retries`, sub(loc, 'num_retries')]);
  }
  const perTry = ctx.ms(rp.per_try_timeout, sub(loc, 'per_try_timeout'));
  if (perTry !== undefined) {
    raw.per_try_timeout_ms = perTry;
    marks.push([`${rel}.per_try_timeout_ms`, sub(loc, 'per_try_timeout')]);
  }
  if (rp.retriable_status_codes !== undefined) {
    raw.retriable_status_codes = asArr(rp.retriable_status_codes);
    marks.push([`${rel}.retriable_status_codes`, sub(loc, 'retriable_status_codes')]);
  }
  const back = asObj(rp.retry_back_off);
  if (back !== undefined) {
    const bl = sub(loc, 'retry_back_off');
    ctx.only(back, bl, ['base_interval', 'max_interval']);
    const base = ctx.ms(back.base_interval, sub(bl, 'base_interval'));
    const max = ctx.ms(back.max_interval, sub(bl, 'max_interval'));
    if (base !== undefined) raw.base_interval_ms = base;
    if (max !== undefined) raw.max_interval_ms = max;
    marks.push([`${rel}.base_interval_ms`, sub(bl, 'base_interval')], [`${rel}.max_interval_ms`, sub(bl, 'max_interval')]);
  }
  return raw;
}

/** HeaderValueOption → {name, value}; undefined when left out (an empty value without
 *  keep_empty_value, as Envoy does) or rejected. Remora appends, and adds values
 *  literally: Envoy's `%%` becomes `%`, a %COMMAND% is rejected. */
function headerToAdd(ctx: Ctx, o: Obj, loc: Loc): Obj | undefined {
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
  return { name: asStr(h.key) ?? '', value };
}

/** A listener's routes with their rate limits and authorization: each per-route config
 *  must belong to a local rate limit filter of the listener that has no token bucket of
 *  its own, or to an RBAC filter without rules (Envoy would REPLACE that bucket or those
 *  rules for the route; Remora checks listener and route limits and authorization
 *  together, so only filters that exist for per-route configs can carry them). */
function attachRoutes(ctx: Ctx, l: ListenerPart, part: RoutePart): { vhosts: Obj[]; marks: Mark[] } {
  const vhosts = structuredClone(part.vhosts);
  const marks = [...part.marks];
  for (const vh of vhosts) for (const r of asArr(vh.routes)) (r as Obj).rate_limits = [];
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
    const route = asArr(asObj(vhosts[v])?.routes)[r] as Obj;
    limits.sort((a, b) => a.index - b.index);
    route.rate_limits = limits.map((x) => structuredClone(x.raw));
    limits.forEach((x, i) => addMarks(marks, `.virtual_hosts[${v}].routes[${r}].rate_limits[${i}]`, x.marks));
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
    const authz = authorization(ctx, rules, l.everyClientVerified, `.virtual_hosts[${v}].routes[${r}]`);
    if (authz === undefined) continue;
    (asArr(asObj(vhosts[v])?.routes)[r] as Obj).authorization = authz.raw;
    marks.push(...authz.marks);
  }
  return { vhosts, marks };
}

// ---------------------------------------------------------------------------
// Cluster and ClusterLoadAssignment

interface ClusterPart {
  readonly name: string;
  /** The raw cluster; `endpoints` missing for EDS clusters. */
  readonly raw: Obj;
  /** Relative to the cluster: `.connect_timeout_ms`. */
  readonly marks: Mark[];
  /** EDS: the ClusterLoadAssignment name its endpoints come from. */
  readonly eds?: string;
}

interface EndpointsPart {
  readonly endpoints: Obj[];
  /** Relative to the endpoint list: `[0].port`. */
  readonly marks: Mark[];
}

function translateCluster(ctx: Ctx, key: string, c: Obj): ClusterPart | undefined {
  const loc = root(TypeUrl.Cluster, key);
  checkName(ctx, c.name, key, loc);
  ctx.only(c, loc, ['name', 'type', 'eds_cluster_config', 'connect_timeout', 'lb_policy', 'load_assignment', 'health_checks',
    'circuit_breakers', 'outlier_detection', 'common_lb_config', 'metadata', 'transport_socket']);
  const raw: Obj = { name: key };
  const marks: Mark[] = [['', loc], ['.name', sub(loc, 'name')]];
  const type = asStr(c.type) ?? 'STATIC';
  if (type !== 'STATIC' && type !== 'EDS') ctx.reject(sub(loc, 'type'), `${type} is not supported (STATIC or EDS)`);
  const lb = asStr(c.lb_policy) ?? 'ROUND_ROBIN';
  if (LB_POLICIES[lb] === undefined) ctx.reject(sub(loc, 'lb_policy'), `${lb} is not supported (ROUND_ROBIN, LEAST_REQUEST or RANDOM)`);
  else raw.lb_policy = LB_POLICIES[lb];
  raw.connect_timeout_ms = ctx.ms(c.connect_timeout, sub(loc, 'connect_timeout')) ?? ENVOY_CONNECT_TIMEOUT_MS;
  marks.push(['.connect_timeout_ms', sub(loc, 'connect_timeout')]);

  let eds: string | undefined;
  if (type === 'EDS') {
    if (isSet(c.load_assignment)) ctx.reject(sub(loc, 'load_assignment'), 'not allowed with type EDS (endpoints come from EDS)');
    const el = sub(loc, 'eds_cluster_config');
    const ec = asObj(c.eds_cluster_config) ?? {};
    ctx.only(ec, el, ['eds_config', 'service_name']);
    configSource(ctx, ec.eds_config, sub(el, 'eds_config'));
    eds = edsName({ ...c, name: key });
  } else if (type === 'STATIC') {
    if (isSet(c.eds_cluster_config)) ctx.reject(sub(loc, 'eds_cluster_config'), 'only allowed with type EDS');
    const la = asObj(c.load_assignment);
    if (la === undefined) ctx.reject(sub(loc, 'load_assignment'), 'is required for type STATIC');
    else {
      const part = translateEndpoints(ctx, la, sub(loc, 'load_assignment'));
      raw.endpoints = part.endpoints;
      addMarks(marks, '.endpoints', part.marks);
    }
  }

  const cb = asObj(c.circuit_breakers);
  if (cb !== undefined) raw.circuit_breakers = circuitBreakers(ctx, cb, sub(loc, 'circuit_breakers'), marks);
  const od = asObj(c.outlier_detection);
  if (od !== undefined) raw.outlier_detection = outlierDetection(ctx, od, sub(loc, 'outlier_detection'), marks);
  const checks = asArr(c.health_checks);
  if (checks.length > 1) ctx.reject(sub(loc, 'health_checks[1]'), 'Remora runs at most one health check per cluster');
  if (checks.length > 0) raw.health_check = healthCheck(ctx, asObj(checks[0]) ?? {}, sub(loc, 'health_checks[0]'), marks);
  const lbc = asObj(c.common_lb_config);
  if (lbc !== undefined) {
    const ll = sub(loc, 'common_lb_config');
    ctx.only(lbc, ll, ['healthy_panic_threshold']);
    const panic = wrapped(lbc.healthy_panic_threshold);
    if (panic !== undefined) {
      raw.panic_threshold_percent = panic;
      marks.push(['.panic_threshold_percent', sub(ll, 'healthy_panic_threshold')]);
    }
  }

  const tls = c.transport_socket === undefined ? undefined : upstreamTls(ctx, c.transport_socket, sub(loc, 'transport_socket'));
  if (tls !== undefined) {
    raw.tls = tls.raw;
    marks.push(...tls.marks);
  }

  const ext = ctx.extensions(c, loc, REMORA_EXTENSIONS.cluster);
  for (const k of ['idle_timeout_ms', 'max_connections_per_endpoint'] as const) {
    if (ext[k] === undefined) continue;
    raw[k] = ext[k];
    marks.push([`.${k}`, extPath(loc, k)]);
  }
  if (ext.outlier_probation_requests !== undefined) {
    const od2 = asObj(raw.outlier_detection);
    if (od2 === undefined) ctx.reject(extPath(loc, 'outlier_probation_requests'), 'needs outlier_detection');
    else {
      od2.probation_requests = ext.outlier_probation_requests;
      marks.push(['.outlier_detection.probation_requests', extPath(loc, 'outlier_probation_requests')]);
    }
  }
  return { name: key, raw, marks, ...(eds !== undefined ? { eds } : {}) };
}

function circuitBreakers(ctx: Ctx, cb: Obj, loc: Loc, marks: Mark[]): Obj {
  ctx.only(cb, loc, ['thresholds']);
  const list = asArr(cb.thresholds);
  if (list.length > 1) ctx.reject(sub(loc, 'thresholds[1]'), 'Remora has one set of thresholds (priority DEFAULT)');
  const raw: Obj = {};
  const tl = sub(loc, 'thresholds[0]');
  const t = asObj(list[0]);
  marks.push(['.circuit_breakers', tl]);
  if (t === undefined) return raw;
  ctx.only(t, tl, ['priority', 'max_connections', 'max_pending_requests', 'max_requests', 'max_retries', 'retry_budget']);
  if (isSet(t.priority) && t.priority !== 'DEFAULT') ctx.reject(sub(tl, 'priority'), `${String(t.priority)} is not supported (DEFAULT only)`);
  for (const k of ['max_connections', 'max_pending_requests', 'max_requests', 'max_retries'] as const) {
    const v = wrapped(t[k]);
    if (v === undefined) continue;
    raw[k] = v;
    marks.push([`.circuit_breakers.${k}`, sub(tl, k)]);
  }
  const rb = asObj(t.retry_budget);
  if (rb !== undefined) {
    const rl = sub(tl, 'retry_budget');
    ctx.only(rb, rl, ['budget_percent', 'min_retry_concurrency']);
    const budget: Obj = {};
    const percent = wrapped(rb.budget_percent);
    const min = wrapped(rb.min_retry_concurrency);
    if (percent !== undefined) budget.budget_percent = percent;
    if (min !== undefined) budget.min_retry_concurrency = min;
    raw.retry_budget = budget;
    marks.push(['.circuit_breakers.retry_budget', rl], ['.circuit_breakers.retry_budget.budget_percent', sub(rl, 'budget_percent')],
      ['.circuit_breakers.retry_budget.min_retry_concurrency', sub(rl, 'min_retry_concurrency')]);
  }
  return raw;
}

/** Envoy's enforcing_* percentages: Remora ejects always (100) or never (0). */
function enforcing(ctx: Ctx, v: unknown, loc: Loc, envoyDefault: number): boolean {
  const p = wrapped(v) ?? envoyDefault;
  if (p !== 0 && p !== 100) ctx.reject(loc, `must be 0 or 100 (got ${p}): Remora ejects always or never`);
  return p !== 0;
}

function outlierDetection(ctx: Ctx, od: Obj, loc: Loc, marks: Mark[]): Obj {
  ctx.only(od, loc, ['consecutive_5xx', 'consecutive_gateway_failure', 'interval', 'base_ejection_time', 'max_ejection_time',
    'max_ejection_percent', 'enforcing_consecutive_5xx', 'enforcing_consecutive_gateway_failure', 'enforcing_success_rate',
    'success_rate_minimum_hosts', 'success_rate_request_volume', 'success_rate_stdev_factor']);
  const raw: Obj = {};
  const mark = (to: string, from: string): void => {
    marks.push([`.outlier_detection.${to}`, sub(loc, from)]);
  };
  marks.push(['.outlier_detection', loc]);
  // A detector Envoy does not enforce is off in Remora (threshold 0).
  const counts = [
    ['consecutive_5xx', 'enforcing_consecutive_5xx', 100],
    ['consecutive_gateway_failure', 'enforcing_consecutive_gateway_failure', 0],
  ] as const;
  for (const [field, enforce, envoyDefault] of counts) {
    const on = enforcing(ctx, od[enforce], sub(loc, enforce), envoyDefault);
    const v = wrapped(od[field]);
    if (!on) raw[field] = 0;
    else if (v !== undefined) raw[field] = v;
    mark(field, on ? field : enforce);
  }
  const successRate = enforcing(ctx, od.enforcing_success_rate, sub(loc, 'enforcing_success_rate'), 100);
  const minHosts = wrapped(od.success_rate_minimum_hosts);
  if (!successRate) raw.success_rate_minimum_hosts = 0;
  else if (minHosts === 0) {
    ctx.reject(sub(loc, 'success_rate_minimum_hosts'), '0 is not supported (Remora uses 0 to turn success-rate ejection off; for that set enforcing_success_rate to 0)');
  } else if (minHosts !== undefined) raw.success_rate_minimum_hosts = minHosts;
  mark('success_rate_minimum_hosts', successRate ? 'success_rate_minimum_hosts' : 'enforcing_success_rate');
  for (const [to, from] of [['interval_ms', 'interval'], ['base_ejection_time_ms', 'base_ejection_time'], ['max_ejection_time_ms', 'max_ejection_time']] as const) {
    const v = ctx.ms(od[from], sub(loc, from));
    if (v !== undefined) raw[to] = v;
    mark(to, from);
  }
  for (const k of ['max_ejection_percent', 'success_rate_request_volume'] as const) {
    const v = wrapped(od[k]);
    if (v !== undefined) raw[k] = v;
    mark(k, k);
  }
  const stdev = wrapped(od.success_rate_stdev_factor);
  if (stdev !== undefined) raw.success_rate_stdev_factor = stdev / 1000; // Envoy: 1900 = 1.9
  mark('success_rate_stdev_factor', 'success_rate_stdev_factor');
  return raw;
}

function healthCheck(ctx: Ctx, hc: Obj, loc: Loc, marks: Mark[]): Obj {
  for (const k of ['tcp_health_check', 'grpc_health_check', 'custom_health_check']) {
    if (isSet(hc[k])) ctx.reject(sub(loc, k), 'only http_health_check is supported');
  }
  ctx.only(hc, loc, ['timeout', 'interval', 'unhealthy_threshold', 'healthy_threshold', 'http_health_check',
    'tcp_health_check', 'grpc_health_check', 'custom_health_check', 'no_traffic_interval', 'no_traffic_healthy_interval',
    'unhealthy_interval', 'unhealthy_edge_interval', 'healthy_edge_interval', 'interval_jitter', 'interval_jitter_percent',
    'initial_jitter']);
  const raw: Obj = {};
  marks.push(['.health_check', loc]);
  const hl = sub(loc, 'http_health_check');
  const h = asObj(hc.http_health_check);
  if (h === undefined) {
    ctx.reject(hl, 'is required (Remora runs HTTP health checks)');
    return raw;
  }
  ctx.only(h, hl, ['host', 'path', 'expected_statuses', 'retriable_statuses', 'codec_client_type', 'method']);
  if (isSet(h.codec_client_type) && h.codec_client_type !== 'HTTP1') ctx.reject(sub(hl, 'codec_client_type'), `${String(h.codec_client_type)} is not supported (HTTP1)`);
  if (isSet(h.method) && h.method !== 'GET' && h.method !== 'METHOD_UNSPECIFIED') ctx.reject(sub(hl, 'method'), `${String(h.method)} is not supported (GET)`);
  raw.path = h.path ?? '';
  marks.push(['.health_check.path', sub(hl, 'path')]);
  if (isSet(h.host)) {
    raw.host = h.host;
    marks.push(['.health_check.host', sub(hl, 'host')]);
  }
  for (const [to, from] of [
    ['interval_ms', 'interval'],
    ['timeout_ms', 'timeout'],
    ['no_traffic_interval_ms', 'no_traffic_interval'],
    ['no_traffic_healthy_interval_ms', 'no_traffic_healthy_interval'],
    ['unhealthy_interval_ms', 'unhealthy_interval'],
    ['unhealthy_edge_interval_ms', 'unhealthy_edge_interval'],
    ['healthy_edge_interval_ms', 'healthy_edge_interval'],
    ['interval_jitter_ms', 'interval_jitter'],
    ['initial_jitter_ms', 'initial_jitter'],
  ] as const) {
    const v = ctx.ms(hc[from], sub(loc, from));
    if (v !== undefined) raw[to] = v;
    marks.push([`.health_check.${to}`, sub(loc, from)]);
  }
  if (isSet(hc.interval_jitter_percent)) raw.interval_jitter_percent = hc.interval_jitter_percent;
  marks.push(['.health_check.interval_jitter_percent', sub(loc, 'interval_jitter_percent')]);
  for (const k of ['healthy_threshold', 'unhealthy_threshold'] as const) {
    const v = wrapped(hc[k]);
    if (v !== undefined) raw[k] = v;
    marks.push([`.health_check.${k}`, sub(loc, k)]);
  }
  // Envoy's default is 200 only ([200, 201)); Remora's file default is 2xx.
  const statuses = asArr(h.expected_statuses);
  raw.expected_statuses = statuses.length === 0
    ? ENVOY_EXPECTED_STATUSES.map((r) => [...r])
    : statuses.map((r, i) => {
      const range = asObj(r) ?? {};
      ctx.only(range, sub(hl, `expected_statuses[${i}]`), ['start', 'end']);
      return [asNum(range.start), asNum(range.end)];
    });
  marks.push(['.health_check.expected_statuses', sub(hl, 'expected_statuses')]);
  const retriable = asArr(h.retriable_statuses);
  if (retriable.length > 0) {
    raw.retriable_statuses = retriable.map((r, i) => {
      const range = asObj(r) ?? {};
      ctx.only(range, sub(hl, `retriable_statuses[${i}]`), ['start', 'end']);
      return [asNum(range.start), asNum(range.end)];
    });
  }
  marks.push(['.health_check.retriable_statuses', sub(hl, 'retriable_statuses')]);
  return raw;
}

/** A ClusterLoadAssignment (EDS, or a STATIC cluster's load_assignment) → raw endpoints.
 *  UNHEALTHY, DRAINING and TIMEOUT endpoints are left out; locality and its weight are
 *  informational (Envoy ignores locality weights without locality-weighted balancing). */
function translateEndpoints(ctx: Ctx, cla: Obj, loc: Loc): EndpointsPart {
  ctx.only(cla, loc, ['cluster_name', 'endpoints']);
  const endpoints: Obj[] = [];
  const marks: Mark[] = [];
  let leftOut = 0;
  asArr(cla.endpoints).forEach((v, i) => {
    const gl = sub(loc, `endpoints[${i}]`);
    const group = asObj(v) ?? {};
    ctx.only(group, gl, ['locality', 'lb_endpoints', 'load_balancing_weight', 'priority']);
    if (isSet(group.priority)) ctx.reject(sub(gl, 'priority'), `${asNum(group.priority)} is not supported: Remora has no priority levels (0 only)`);
    const locality = asObj(group.locality);
    if (locality !== undefined) ctx.only(locality, sub(gl, 'locality'), ['region', 'zone', 'sub_zone']);
    asArr(group.lb_endpoints).forEach((e, j) => {
      const el = sub(gl, `lb_endpoints[${j}]`);
      const lbe = asObj(e) ?? {};
      ctx.only(lbe, el, ['endpoint', 'health_status', 'load_balancing_weight']);
      const weight = wrapped(lbe.load_balancing_weight);
      if (weight !== undefined && weight !== 1) {
        ctx.reject(sub(el, 'load_balancing_weight'), `${weight} is not supported: Remora has no endpoint weights yet (1 or unset)`);
      }
      if (LEFT_OUT_HEALTH.includes(asStr(lbe.health_status) ?? '')) {
        leftOut++;
        return;
      }
      const epl = sub(el, 'endpoint');
      const ep = asObj(lbe.endpoint) ?? {};
      ctx.only(ep, epl, ['address']);
      const sa = socketAddress(ctx, ep.address, sub(epl, 'address'));
      if (sa === undefined) return;
      const k = endpoints.length;
      marks.push([`[${k}]`, el], [`[${k}].address`, sa.addressLoc], [`[${k}].port`, sa.portLoc]);
      endpoints.push({ address: sa.address, port: sa.port });
    });
  });
  if (endpoints.length === 0 && leftOut > 0) {
    ctx.reject(sub(loc, 'endpoints'), `all ${leftOut} endpoints are UNHEALTHY, DRAINING or TIMEOUT; Remora needs at least one endpoint per cluster`);
  }
  marks.push(['', sub(loc, 'endpoints')]);
  return { endpoints, marks };
}
