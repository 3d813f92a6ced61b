// Listener → a raw Remora listener without its routes (part of src/xds/translate.ts).
// An HTTP listener: the address, one filter chain with downstream TLS and one
// HttpConnectionManager, whose HTTP versions (codec_type, http2_protocol_options), XFCC
// mode, upgrades and HTTP filters (RBAC, local rate limits, the router, and those that
// have no effect on their own) become the listener's, with its other settings and access
// log (translate-listener-hcm.ts); the route configuration (RDS name or inline) is joined
// later by translateXds, with the per-route configs these filters make room for. A TCP
// listener, whose chains end in tcp_proxy, is read by translate-listener-tcp.ts; one
// mixing the two kinds is rejected. Listener filters (PROXY protocol, inspectors) are read
// here for both, and the listener-wide fields by translate-listener-wide.ts. An HTTP
// listener with no chain for its port is served from its default_filter_chain (Envoy
// Gateway's plain HTTP listeners).
// Remora has no traffic interception, so a listener only gets connections addressed to
// its own port: one with bind_to_port: false is accepted and not served (ctx.unbound),
// use_original_dst and the original_dst listener filter change nothing, and the chains
// that only take redirected connections (Envoy's destination_port rule, directChains in
// resources.ts) are accepted and not served. docs/xds.md, "Listener", says why.

import { isIP } from 'node:net';
import {
  HCM_FILTER_NAME, HTTP_INSPECTOR, PROXY_PROTOCOL_LISTENER_FILTER, REMORA_EXTENSIONS, ROUTER_FILTER_NAME, TCP_PROXY_FILTER_NAME, TLS_INSPECTOR,
} from './names.js';
import { TypeUrl } from './protos.js';
import { asArr, asObj, asStr, isSet, wrapped, wrappedBool, type Obj } from './read.js';
import { bindsPort, directChains } from './resources.js';
import { checkName, extPath, root, socketAddress, sub, type Ctx, type Loc } from './translate-context.js';
import { Fields, type Mark, type Part } from './translate-fields.js';
import { chainTls, httpChains, routeSource, sameConnectionManager, type RouteSource, type ServedChain, type ServedChains } from './translate-listener-chains.js';
import { connectionManagerOptions, HCM_SETTINGS, inertHttpFilter, REJECTED_FILTERS, type InertFilter } from './translate-listener-hcm.js';
import { accessLogOf } from './translate-access-log.js';
import { tcpListener, type Inspectors, type TcpChains } from './translate-listener-tcp.js';
import { LISTENER_SETTINGS, listenerSocketOptions, listenerWide } from './translate-listener-wide.js';
import { http2Options } from './translate-protocol.js';
import { applyRateLimitKeys, localRateLimit } from './translate-ratelimit.js';
import { authorization, collectRules, rbacConfig, type RbacAction, type RbacRules } from './translate-rbac.js';
import { forwardClientCert, listenerAlpn, type TlsResult } from './translate-tls.js';

/** HTTP/3 has no Remora codec. */
type CodecType = 'auto' | 'http1' | 'http2';
const CODEC_TYPES: Readonly<Record<string, CodecType>> = { AUTO: 'auto', HTTP1: 'http1', HTTP2: 'http2' };
/** Router fields accepted, no effect: Remora sends none of Envoy's x-envoy-* headers
 *  whatever suppress_envoy_headers says, exports no spans, and its stats do not depend on
 *  dynamic_stats (which turns Envoy's own per-cluster stats on or off). */
const ROUTER_FIELDS = ['suppress_envoy_headers', 'start_child_span', 'dynamic_stats'];

export interface ListenerPart {
  readonly name: string;
  readonly loc: Loc;
  /** The raw listener without virtual_hosts. */
  readonly raw: Obj;
  readonly marks: Mark[];
  /** Where its routes come from; a TCP listener has none, only the clusters its
   *  tcp_proxy filters name. */
  readonly route: RouteSource | { kind: 'tcp'; clusters: readonly string[] } | { kind: 'none' };
  /** An HTTP listener's chains picked by server name: where each one's routes come from
   *  (in `raw.http_filter_chains` order). Without a chain for other names (`route` is
   *  'none'), the listener has no routes of its own. */
  readonly chainRoutes: readonly RouteSource[];
  /** Local rate limit HTTP filters by name: index in http_filters, and whether the
   *  filter has its own token bucket (a listener-wide limit). */
  readonly rateLimitFilters: ReadonlyMap<string, { index: number; bucket: boolean }>;
  /** RBAC HTTP filters by name, and whether the filter has rules of its own. */
  readonly rbacFilters: ReadonlyMap<string, { rules: boolean }>;
  /** HTTP filters accepted as having no effect on their own, by name (CORS, fault, gRPC
   *  stats, Istio's). A per-route config naming one would make it act (a CORS policy, a
   *  fault), so attachRoutes (translate-route.ts) rejects a route's typed_per_filter_config
   *  for CORS or fault filters the listener runs, also when it is wrapped in a FilterConfig
   *  with is_optional: Envoy runs these filters. */
  readonly inertFilters: ReadonlyMap<string, InertFilter>;
  /** No TLS, or a verified client certificate required (see authorization()). */
  readonly everyClientVerified: boolean;
  /** per_connection_buffer_limit_bytes: in Envoy also the most a request's body is
   *  buffered for retries (the route's per_request_buffer_limit_bytes can only lower
   *  it), so attachRoutes caps its routes' retry buffer_limit_bytes with it. */
  readonly retryBufferLimit?: { readonly bytes: number; readonly loc: Loc };
}

export function translateListener(ctx: Ctx, key: string, l: Obj): ListenerPart | undefined {
  const loc = root(TypeUrl.Listener, key);
  checkName(ctx, l.name, key, loc);
  if (isSet(l.api_listener)) {
    ctx.reject(sub(loc, 'api_listener'), 'api_listener is for gRPC clients; Remora needs address + filter_chains');
    return undefined;
  }
  if (!bindsPort(l)) {
    unboundListener(ctx, key, l, loc);
    return undefined;
  }
  const direct = directChains(l);
  const kind = listenerKind(ctx, l, loc, direct);
  if (kind === undefined) return undefined;
  ctx.only(l, loc, ['name', 'address', 'filter_chains', 'default_filter_chain', 'metadata', 'listener_filters', 'traffic_direction', 'bind_to_port',
    'use_original_dst', 'access_log', 'listener_filters_timeout', 'continue_on_listener_filters_timeout', 'socket_options', 'deprecated_v1', ...LISTENER_SETTINGS]);
  // deprecated_v1 holds bind_to_port only (bindsPort reads it; here it is true or unset).
  const v1 = asObj(l.deprecated_v1);
  if (v1 !== undefined) ctx.only(v1, sub(loc, 'deprecated_v1'), ['bind_to_port']);
  // traffic_direction (Istio sets INBOUND / OUTBOUND on every listener) only labels
  // Envoy's tracing and stats: accepted, no effect. use_original_dst hands a connection
  // that iptables redirected to the listener of its original destination; Remora gets no
  // redirected connections (no interception), so the listener serves those addressed to
  // it, with its own chains.
  if (isSet(l.traffic_direction) && l.traffic_direction !== 'UNSPECIFIED') ctx.noEffect(loc, 'Listener.traffic_direction');
  if (wrappedBool(l.use_original_dst) === true) ctx.noEffect(loc, 'Listener.use_original_dst');
  const out = new Fields().here(loc);
  const inspectors = listenerFilters(ctx, l, loc, out);
  out.set('name', key, sub(loc, 'name'));
  listenerSocketOptions(ctx, l, loc, out);
  const sa = socketAddress(ctx, l.address, sub(loc, 'address'));
  if (sa !== undefined) {
    out.set('address', sa.address, sa.addressLoc);
    out.set('port', sa.port, sa.portLoc);
  }
  const port = sa?.port ?? 0;
  if (!unservedChains(ctx, l, loc, port, direct)) return undefined;
  if (kind === 'tcp') return translateTcpListener(ctx, key, l, loc, out, { port, direct, inspectors });
  const served = httpChains(ctx, l, loc, direct);
  if (served === undefined) return undefined;
  // The listener's settings are read from the chain that takes the rest, else from the
  // first chain picked by server name (the others must agree: sameConnectionManager).
  const primary = served.fallback ?? served.named[0];
  listenerWide(ctx, l, loc, { http: true, everyConnectionTaken: served.fallback !== undefined, readsFirstBytes: out.raw.proxy_protocol === true });
  const tls = chainTls(ctx, primary);
  if (tls !== undefined && served.fallback !== undefined) out.attach('tls', tls.part.raw, tls.part.marks);
  const manager = connectionManager(ctx, primary);
  if (manager === undefined) return undefined;
  const { hcm, tl } = manager;
  ctx.only(hcm, tl, ['stat_prefix', 'codec_type', 'rds', 'route_config', 'http_filters', 'max_request_headers_kb',
    'forward_client_cert_details', 'set_current_client_cert_details', 'http2_protocol_options', ...HCM_SETTINGS]);
  // Unset is AUTO, in Envoy and in Remora.
  const codec = isSet(hcm.codec_type) ? CODEC_TYPES[String(hcm.codec_type)] : 'auto';
  if (codec === undefined) ctx.reject(sub(tl, 'codec_type'), `${String(hcm.codec_type)} is not supported: Remora serves HTTP/1.1 and HTTP/2 (AUTO, HTTP1 or HTTP2)`);
  else if (isSet(hcm.codec_type)) out.set('codec_type', codec, sub(tl, 'codec_type'));
  if (codec !== undefined && tls?.alpn !== undefined) listenerAlpn(ctx, tls.alpn, codec);
  const h2 = asObj(hcm.http2_protocol_options);
  if (h2 !== undefined) http2Options(ctx, h2, sub(tl, 'http2_protocol_options'), out.nest('http2_protocol_options'));
  out.take('max_request_headers_kb', wrapped(hcm.max_request_headers_kb), sub(tl, 'max_request_headers_kb'));
  connectionManagerOptions(ctx, hcm, tl, out);
  forwardClientCert(ctx, hcm, tl, out);

  const route = routeSource(ctx, hcm, tl);
  const chains = namedChains(ctx, served, { tls, hcm, tl, route }, codec);
  if (chains.parts.length > 0) out.list('http_filter_chains', chains.parts);

  const { limits, rateLimitFilters, rbac, rbacFilters, inertFilters } = httpFilters(ctx, asArr(hcm.http_filters), sub(tl, 'http_filters'));
  const everyClientVerified = (tls === undefined || tls.part.raw.require_client_certificate === true) && chains.everyClientVerified;
  const authz = authorization(ctx, rbac, everyClientVerified);
  if (authz !== undefined) out.attach('authorization', authz.raw, authz.marks);
  const ext = ctx.extensions(l, loc, REMORA_EXTENSIONS.listener, 'Listener.metadata');
  applyRateLimitKeys(ctx, ext, loc, limits, `listener "${key}"`);
  out.list('rate_limits', limits);
  for (const k of ['access_log', 'generate_traceparent', 'codec', 'max_connections'] as const) out.take(k, ext[k], extPath(loc, k));
  const log = accessLogOf(ctx, hcm, tl, true);
  if (log !== undefined && ext.access_log !== undefined) {
    ctx.reject(sub(tl, 'access_log'), `and the Remora extension access_log (${extPath(loc, 'access_log').path}) are both set: set one`);
  } else if (log !== undefined) {
    out.attach('access_log', log.raw, log.marks);
  }
  if (route === undefined || chains.routes.includes(undefined)) return undefined;
  const limit = wrapped(l.per_connection_buffer_limit_bytes);
  const retryBufferLimit = limit === undefined ? {} : { retryBufferLimit: { bytes: limit, loc: sub(loc, 'per_connection_buffer_limit_bytes') } };
  return {
    name: key, loc, raw: out.raw, marks: out.marks, route: served.fallback !== undefined ? route : { kind: 'none' }, chainRoutes: chains.routes as RouteSource[],
    rateLimitFilters, rbacFilters, inertFilters, everyClientVerified, ...retryBufferLimit,
  };
}

/** A chain's one network filter, the HttpConnectionManager, decoded; undefined (rejected)
 *  for anything else. */
function connectionManager(ctx: Ctx, c: ServedChain): { hcm: Obj; tl: Loc } | undefined {
  const filters = asArr(c.chain.filters);
  if (filters.length !== 1) {
    const where = filters.length === 0 ? sub(c.loc, 'filters') : sub(c.loc, 'filters[1]');
    ctx.reject(where, `Remora needs exactly one network filter, ${HCM_FILTER_NAME} (got ${filters.length})`);
    return undefined;
  }
  const fl = sub(c.loc, 'filters[0]');
  const filter = asObj(filters[0]) ?? {};
  ctx.only(filter, fl, ['name', 'typed_config']);
  const type = asStr(asObj(filter.typed_config)?.type_url);
  if (type !== TypeUrl.HttpConnectionManager) {
    ctx.reject(fl, `unsupported network filter ${asStr(filter.name) ?? type ?? '(unnamed)'}: Remora supports ${HCM_FILTER_NAME} only`);
    return undefined;
  }
  const tl = sub(fl, 'typed_config');
  const hcm = ctx.decode(filter.typed_config, tl)?.message;
  return hcm === undefined ? undefined : { hcm, tl };
}

/** The chains picked by server name → `http_filter_chains` (without their virtual hosts,
 *  which translateXds joins from `routes`, one per chain): each its own TLS and routes,
 *  its HttpConnectionManager otherwise the listener's (`primary`'s, read already). A
 *  chain's name is Envoy's when it has a usable one, else `filter_chains[i]`. A route
 *  source is undefined where it was rejected. */
function namedChains(ctx: Ctx, served: ServedChains, primary: { tls: TlsResult | undefined; hcm: Obj; tl: Loc; route: RouteSource | undefined }, codec: CodecType | undefined):
  { parts: Part[]; routes: (RouteSource | undefined)[]; everyClientVerified: boolean } {
  const parts: Part[] = [];
  const routes: (RouteSource | undefined)[] = [];
  const used = new Set<string>();
  let everyClientVerified = true;
  for (const c of served.named) {
    const isPrimary = served.fallback === undefined && c === served.named[0];
    const tls = isPrimary ? primary.tls : chainTls(ctx, c);
    let route = primary.route;
    if (!isPrimary) {
      const manager = connectionManager(ctx, c);
      if (manager !== undefined) sameConnectionManager(ctx, manager.hcm, manager.tl, primary.hcm, primary.tl);
      route = manager === undefined ? undefined : routeSource(ctx, manager.hcm, manager.tl);
      if (tls?.alpn !== undefined && codec !== undefined) listenerAlpn(ctx, tls.alpn, codec);
    }
    const given = asStr(c.chain.name);
    const name = given !== undefined && /^[\x21-\x7e]+$/.test(given) && !used.has(given) ? given : c.loc.path;
    used.add(name);
    const f = new Fields().here(c.loc);
    f.set('name', name, given === undefined ? c.loc : sub(c.loc, 'name'));
    f.set('server_names', c.names, sub(c.loc, 'filter_chain_match.server_names'));
    if (tls !== undefined) f.attach('tls', tls.part.raw, tls.part.marks);
    everyClientVerified &&= tls?.part.raw.require_client_certificate === true;
    parts.push({ raw: f.raw, marks: f.marks });
    routes.push(route);
  }
  return { parts, routes, everyClientVerified };
}

/**
 * A listener with `bind_to_port: false` (bindsPort, resources.ts): accepted, not bound and
 * not served, since only connections redirected to it by original destination reach it
 * (Istio's per-port listeners behind `virtualOutbound`) and Remora has no interception.
 * Its name and address are checked, without following anything it names (its route
 * configurations are not fetched: referencedRoutes); it is listed in ctx.unbound.
 */
function unboundListener(ctx: Ctx, key: string, l: Obj, loc: Loc): void {
  ctx.noEffect(loc, 'Listener.bind_to_port');
  const sa = socketAddress(ctx, l.address, sub(loc, 'address'));
  if (sa !== undefined && sa.address !== 'localhost' && isIP(sa.address) === 0) {
    ctx.reject(sa.addressLoc, `must be an IP address (e.g. 127.0.0.1, 0.0.0.0, ::1) or "localhost", got "${sa.address}"`);
  }
  if (sa !== undefined && (sa.port < 1 || sa.port > 65535)) ctx.reject(sa.portLoc, `must be a port from 1 to 65535, got ${sa.port}`);
  ctx.unbound.push(key);
}

/**
 * The filter chains no connection to the listener's own port can select (those not in
 * `direct`, see directChains): they only take connections redirected to the listener by
 * original destination (Istio's virtual listeners), in Envoy too, and Remora receives
 * none. Accepted, not translated, not served; counted. False (rejected) when the listener
 * would then serve nothing: no chain for its port and no default chain.
 */
function unservedChains(ctx: Ctx, l: Obj, loc: Loc, port: number, direct: readonly number[]): boolean {
  const chains = asArr(l.filter_chains);
  if (direct.length === chains.length) return true;
  ctx.noEffect(loc, 'Listener.filter_chains (for other destination ports, not served)');
  if (direct.length > 0 || isSet(l.default_filter_chain)) return true;
  ctx.reject(sub(loc, 'filter_chains'), `every filter chain names a destination_port other than the listener's (${port}): such a chain only takes connections `
    + 'redirected to the listener by original destination, which Remora does not receive (it has no traffic interception), so the listener would serve nothing '
    + '(name its own port, or add a default_filter_chain)');
  return false;
}

/** The kinds of network filter a chain ends in, by typed_config (or name without one). */
function chainKind(c: unknown): 'http' | 'tcp' | undefined {
  const filters = asArr(asObj(c)?.filters).map((f) => [asStr(asObj(f)?.name), asStr(asObj(asObj(f)?.typed_config)?.type_url)]);
  if (filters.some(([n, t]) => t === TypeUrl.HttpConnectionManager || (t === undefined && n === HCM_FILTER_NAME))) return 'http';
  if (filters.some(([n, t]) => t === TypeUrl.TcpProxy || (t === undefined && n === TCP_PROXY_FILTER_NAME))) return 'tcp';
  return undefined;
}

/** 'tcp' when some chain the listener serves (`direct`, and the default one) has a
 *  tcp_proxy and none an HttpConnectionManager; 'http' otherwise (the HCM translation
 *  rejects what it cannot read); undefined, rejected, when HCM and tcp_proxy chains both
 *  take connections to its port. Chains for other ports are not served: their kind does
 *  not matter (Istio's virtualInbound mixes both kinds across its ports). */
function listenerKind(ctx: Ctx, l: Obj, loc: Loc, direct: readonly number[]): 'http' | 'tcp' | undefined {
  const all = asArr(l.filter_chains);
  const chains: [unknown, Loc][] = direct.map((i) => [all[i], sub(loc, `filter_chains[${i}]`)]);
  if (l.default_filter_chain !== undefined && l.default_filter_chain !== null) chains.push([l.default_filter_chain, sub(loc, 'default_filter_chain')]);
  let http: Loc | undefined;
  let tcp: Loc | undefined;
  for (const [c, cl] of chains) {
    const kind = chainKind(c);
    if (kind === 'http') http ??= cl;
    else if (kind === 'tcp') tcp ??= cl;
    if (http !== undefined && tcp !== undefined) {
      // This chain is the second kind seen; the other kind's first chain came before it.
      const [mine, theirs, first] = cl === tcp ? [TCP_PROXY_FILTER_NAME, HCM_FILTER_NAME, http] : [HCM_FILTER_NAME, TCP_PROXY_FILTER_NAME, tcp];
      ctx.reject(cl, `has ${mine} where ${first.path} has ${theirs}, and both take connections to the listener's port: a Remora listener is HTTP or TCP, not both. `
        + 'It serves HTTP with one filter chain (one HttpConnectionManager, which takes every connection) or forwards TCP with tcp_proxy chains picked by the TLS '
        + 'ClientHello; it does not sniff plaintext for HTTP to choose between the two (serve them on two listeners)');
      return undefined;
    }
  }
  return tcp !== undefined ? 'tcp' : 'http';
}

/** Envoy's original-destination listener filter: it restores the address iptables
 *  redirected a connection from, which Remora never receives (no interception). */
const ORIGINAL_DST_LISTENER_FILTER = 'envoy.filters.listener.original_dst';
const ORIGINAL_DST_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst';

/** listener_filters → `out`. The PROXY protocol filter (without options) is the listener's
 *  proxy_protocol. The TLS and HTTP inspectors only read a connection's first bytes to pick
 *  a filter chain (Istio adds them): an HTTP listener has one chain, so they change
 *  nothing there; a TCP listener's chains are picked by the ClientHello, which Remora reads
 *  itself whenever a chain matches on it (as Envoy injects the TLS inspector when a chain
 *  needs it). The original-destination filter (Istio's virtualInbound) changes nothing on a
 *  connection addressed to the listener itself, the only kind Remora gets. Other listener
 *  filters act, and are rejected. */
function listenerFilters(ctx: Ctx, l: Obj, loc: Loc, out: Fields): Inspectors {
  let http = false;
  asArr(l.listener_filters).forEach((f, i) => {
    const fl = sub(loc, `listener_filters[${i}]`);
    const filter = asObj(f) ?? {};
    const name = asStr(filter.name) ?? '';
    const typed = asObj(filter.typed_config) as { type_url?: string } | undefined;
    if (name === PROXY_PROTOCOL_LISTENER_FILTER || typed?.type_url === TypeUrl.ProxyProtocol) {
      const config = typed !== undefined ? ctx.decode(typed, sub(fl, 'typed_config'))?.message : {};
      if (config !== undefined) ctx.only(config, sub(fl, 'typed_config'), []);
      out.set('proxy_protocol', true, fl);
    } else if (name === HTTP_INSPECTOR || typed?.type_url === TypeUrl.HttpInspector) {
      http = true;
      ctx.noEffect(loc, `ListenerFilter ${HTTP_INSPECTOR}`);
    } else if (name === TLS_INSPECTOR || typed?.type_url === TypeUrl.TlsInspector) ctx.noEffect(loc, `ListenerFilter ${TLS_INSPECTOR}`);
    else if (name === ORIGINAL_DST_LISTENER_FILTER || typed?.type_url === ORIGINAL_DST_TYPE_URL) ctx.noEffect(loc, `ListenerFilter ${ORIGINAL_DST_LISTENER_FILTER}`);
    else {
      ctx.reject(fl, `"${name}" is not supported (only ${TLS_INSPECTOR} and ${HTTP_INSPECTOR}, which only help pick a filter chain, `
        + `${ORIGINAL_DST_LISTENER_FILTER}, which only matters to redirected connections, and ${PROXY_PROTOCOL_LISTENER_FILTER})`);
    }
  });
  return { http };
}

/** A TCP listener (translate-listener-tcp.ts) with its Remora extensions and access log. */
function translateTcpListener(ctx: Ctx, key: string, l: Obj, loc: Loc, out: Fields, chains: TcpChains): ListenerPart {
  const tcp = tcpListener(ctx, l, loc, out, chains);
  listenerWide(ctx, l, loc, { http: false, everyConnectionTaken: tcp.everyConnectionTaken, readsFirstBytes: tcp.readsClientHello || out.raw.proxy_protocol === true });
  const ext = ctx.extensions(l, loc, REMORA_EXTENSIONS.tcpListener, 'Listener.metadata');
  for (const k of REMORA_EXTENSIONS.tcpListener) out.take(k, ext[k], extPath(loc, k));
  if (tcp.log !== undefined && tcp.logLoc !== undefined) {
    if (ext.access_log !== undefined) ctx.reject(tcp.logLoc, `and the Remora extension access_log (${extPath(loc, 'access_log').path}) are both set: set one`);
    else out.attach('access_log', tcp.log.raw, tcp.log.marks);
  }
  return {
    name: key, loc, raw: out.raw, marks: out.marks, route: { kind: 'tcp', clusters: tcp.clusters }, chainRoutes: [],
    rateLimitFilters: new Map(), rbacFilters: new Map(), inertFilters: new Map(), everyClientVerified: true,
  };
}

/** The HCM's http_filters: RBAC and local rate limits, then the router, last; filters
 *  that have no effect on their own are accepted (translate-listener-hcm.ts). An
 *  unsupported filter is rejected unless `is_optional` (xDS lets a client skip optional
 *  filters). At most one RBAC filter per action has rules (one allow and one deny list). */
function httpFilters(ctx: Ctx, filters: unknown[], loc: Loc): {
  limits: Fields[];
  rateLimitFilters: Map<string, { index: number; bucket: boolean }>;
  rbac: Partial<Record<RbacAction, RbacRules>>;
  rbacFilters: Map<string, { rules: boolean }>;
  inertFilters: Map<string, InertFilter>;
} {
  const limits: Fields[] = [];
  const rateLimitFilters = new Map<string, { index: number; bucket: boolean }>();
  const rbac: Partial<Record<RbacAction, RbacRules>> = {};
  const rbacFilters = new Map<string, { rules: boolean }>();
  const inertFilters = new Map<string, InertFilter>();
  const names = new Set<string>();
  let router = false;
  filters.forEach((v, i) => {
    const fl = sub(loc, i);
    const f = asObj(v) ?? {};
    ctx.only(f, fl, ['name', 'typed_config', 'is_optional', 'disabled']);
    const name = asStr(f.name) ?? '';
    if (names.has(name)) ctx.reject(sub(fl, 'name'), `duplicate http filter name "${name}"`);
    names.add(name);
    const type = asStr(asObj(f.typed_config)?.type_url);
    const isRouter = type === TypeUrl.Router || (type === undefined && name === ROUTER_FILTER_NAME);
    // A disabled filter runs only on routes that enable it (typed_per_filter_config):
    // accepted for a filter Remora does not run (below), whose per-route configs are
    // rejected (translate-route.ts); Remora's own filters run on every request.
    const disabled = f.disabled === true;
    if (disabled && (isRouter || type === TypeUrl.LocalRateLimit || type === TypeUrl.Rbac)) {
      ctx.reject(sub(fl, 'disabled'), 'is not supported for this filter: Remora runs it on every request of the listener');
    }
    if (isRouter) {
      if (i !== filters.length - 1) ctx.reject(fl, 'the router filter must be the last http filter');
      if (type !== undefined) {
        const msg = ctx.decode(f.typed_config, sub(fl, 'typed_config'))?.message;
        if (msg !== undefined) ctx.only(msg, sub(fl, 'typed_config'), ROUTER_FIELDS);
        for (const k of ROUTER_FIELDS) if (isSet(msg?.[k])) ctx.noEffect(fl, `Router.${k}`);
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
    const inert = inertHttpFilter(ctx, f.typed_config, fl);
    if (inert !== undefined) {
      inertFilters.set(name, inert);
      ctx.noEffect(fl, `HttpFilter ${inert.startsWith('istio.') ? inert : `envoy.filters.http.${inert}`}`); // by its usual name
      return;
    }
    if (f.is_optional === true) {
      // Skipped, as xDS lets a client do: counted by its type (else its name).
      ctx.noEffect(fl, `HttpFilter ${type?.slice(type.lastIndexOf('/') + 1) ?? name} (is_optional, not run)`);
      return;
    }
    if (disabled) {
      // Runs on no route here: a route that enables it is rejected.
      ctx.noEffect(fl, `HttpFilter ${type?.slice(type.lastIndexOf('/') + 1) ?? name} (disabled, not run)`);
      return;
    }
    const why = type === undefined ? undefined : REJECTED_FILTERS[type];
    ctx.reject(fl, `unsupported http filter ${name !== '' ? name : (type ?? '(unnamed)')}${why === undefined ? '' : `: ${why}`}`);
  });
  if (!router) ctx.reject(loc, `the last http filter must be the router (${ROUTER_FILTER_NAME})`);
  return { limits, rateLimitFilters, rbac, rbacFilters, inertFilters };
}
