// Listener → a raw Remora listener without its routes (part of src/xds/translate.ts).
// An HTTP listener: the address, one filter chain with downstream TLS and one
// HttpConnectionManager, whose HTTP versions (codec_type, http2_protocol_options), XFCC
// mode, upgrades and HTTP filters (RBAC, local rate limits, the router, and those that
// have no effect on their own) become the listener's, with its other settings and access
// log (translate-listener-hcm.ts); the route configuration (RDS name or inline) is joined
// later by translateXds, with the per-route configs these filters make room for. A TCP
// listener, whose chains end in tcp_proxy, is read by translate-listener-tcp.ts; one
// mixing the two kinds is rejected. Listener filters (PROXY protocol, inspectors) are
// read here for both.

import {
  HCM_FILTER_NAME, HTTP_INSPECTOR, PROXY_PROTOCOL_LISTENER_FILTER, REMORA_EXTENSIONS, ROUTER_FILTER_NAME, TCP_PROXY_FILTER_NAME, TLS_INSPECTOR,
} from './names.js';
import { TypeUrl } from './protos.js';
import { asArr, asObj, asStr, isSet, wrapped, type Obj } from './read.js';
import { checkName, configSource, extPath, root, socketAddress, sub, type Ctx, type Loc } from './translate-context.js';
import { Fields, type Mark } from './translate-fields.js';
import { connectionManagerOptions, HCM_SETTINGS, hcmAccessLog, inertHttpFilter, REJECTED_FILTERS, type InertFilter } from './translate-listener-hcm.js';
import { tcpListener, type Inspectors } from './translate-listener-tcp.js';
import { http2Options } from './translate-protocol.js';
import { applyRateLimitKeys, localRateLimit } from './translate-ratelimit.js';
import { authorization, collectRules, rbacConfig, type RbacAction, type RbacRules } from './translate-rbac.js';
import { downstreamTls, forwardClientCert, listenerAlpn, rawBufferSocket } from './translate-tls.js';

/** HTTP/3 has no Remora codec. */
const CODEC_TYPES: Readonly<Record<string, 'auto' | 'http1' | 'http2'>> = { AUTO: 'auto', HTTP1: 'http1', HTTP2: 'http2' };
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
  readonly route: { kind: 'rds'; name: string } | { kind: 'inline'; config: Obj; loc: Loc } | { kind: 'tcp'; clusters: readonly string[] };
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
}

export function translateListener(ctx: Ctx, key: string, l: Obj): ListenerPart | undefined {
  const loc = root(TypeUrl.Listener, key);
  checkName(ctx, l.name, key, loc);
  if (isSet(l.api_listener)) {
    ctx.reject(sub(loc, 'api_listener'), 'api_listener is for gRPC clients; Remora needs address + filter_chains');
    return undefined;
  }
  const kind = listenerKind(ctx, l, loc);
  if (kind === undefined) return undefined;
  ctx.only(l, loc, ['name', 'address', 'filter_chains', 'metadata', 'listener_filters', 'traffic_direction', 'bind_to_port',
    ...(kind === 'tcp' ? ['default_filter_chain'] : [])]);
  // traffic_direction (Istio sets INBOUND / OUTBOUND on every listener) only labels
  // Envoy's tracing and stats: accepted, no effect. bind_to_port: false is a listener that
  // only receives connections redirected from another (use_original_dst), which Remora
  // has no way to do.
  if (isSet(l.traffic_direction) && l.traffic_direction !== 'UNSPECIFIED') ctx.noEffect(loc, 'Listener.traffic_direction');
  const bind = asObj(l.bind_to_port);
  if (bind !== undefined && bind.value === false) {
    ctx.reject(sub(loc, 'bind_to_port'), 'false is not supported: Remora has no original-destination redirect (use_original_dst), so a listener always binds its port');
  }
  const out = new Fields().here(loc);
  const inspectors = listenerFilters(ctx, l, loc, out);
  out.set('name', key, sub(loc, 'name'));
  const sa = socketAddress(ctx, l.address, sub(loc, 'address'));
  if (sa !== undefined) {
    out.set('address', sa.address, sa.addressLoc);
    out.set('port', sa.port, sa.portLoc);
  }
  if (kind === 'tcp') return translateTcpListener(ctx, key, l, loc, out, sa?.port ?? 0, inspectors);
  const chains = asArr(l.filter_chains);
  if (chains.length !== 1) {
    const where = chains.length === 0 ? sub(loc, 'filter_chains') : sub(loc, 'filter_chains[1]');
    ctx.reject(where, `an HTTP listener needs exactly one filter chain (got ${chains.length}); only tcp_proxy listeners have several`);
    return undefined;
  }
  const cl = sub(loc, 'filter_chains[0]');
  const chain = asObj(chains[0]) ?? {};
  ctx.only(chain, cl, ['filters', 'name', 'transport_socket']);
  const tls = chain.transport_socket === undefined || rawBufferSocket(ctx, chain.transport_socket, sub(cl, 'transport_socket'))
    ? undefined : downstreamTls(ctx, chain.transport_socket, sub(cl, 'transport_socket'));
  if (tls !== undefined) out.attach('tls', tls.part.raw, tls.part.marks);
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

  const { limits, rateLimitFilters, rbac, rbacFilters, inertFilters } = httpFilters(ctx, asArr(hcm.http_filters), sub(tl, 'http_filters'));
  const everyClientVerified = tls === undefined || tls.part.raw.require_client_certificate === true;
  const authz = authorization(ctx, rbac, everyClientVerified);
  if (authz !== undefined) out.attach('authorization', authz.raw, authz.marks);
  const ext = ctx.extensions(l, loc, REMORA_EXTENSIONS.listener, 'Listener.metadata');
  applyRateLimitKeys(ctx, ext, loc, limits, `listener "${key}"`);
  out.list('rate_limits', limits);
  for (const k of ['access_log', 'generate_traceparent', 'codec', 'max_connections'] as const) out.take(k, ext[k], extPath(loc, k));
  const log = hcmAccessLog(ctx, hcm, tl);
  if (log !== undefined && ext.access_log !== undefined) {
    ctx.reject(sub(tl, 'access_log'), `and the Remora extension access_log (${extPath(loc, 'access_log').path}) are both set: set one`);
  } else if (log !== undefined) {
    out.attach('access_log', log.raw, log.marks);
  }
  if (route === undefined) return undefined;
  return { name: key, loc, raw: out.raw, marks: out.marks, route, rateLimitFilters, rbacFilters, inertFilters, everyClientVerified };
}

/** 'tcp' when some filter chain (the default one included) has a tcp_proxy and none an
 *  HttpConnectionManager; 'http' otherwise (the HCM translation rejects what it cannot
 *  read); undefined, rejected, when HCM and tcp_proxy chains are mixed: a Remora listener
 *  is HTTP or TCP. */
function listenerKind(ctx: Ctx, l: Obj, loc: Loc): 'http' | 'tcp' | undefined {
  const chains: [unknown, Loc][] = asArr(l.filter_chains).map((c, i) => [c, sub(loc, `filter_chains[${i}]`)]);
  if (l.default_filter_chain !== undefined && l.default_filter_chain !== null) chains.push([l.default_filter_chain, sub(loc, 'default_filter_chain')]);
  let http: Loc | undefined;
  let tcp: Loc | undefined;
  for (const [c, cl] of chains) {
    const filters = asArr(asObj(c)?.filters).map((f) => [asStr(asObj(f)?.name), asStr(asObj(asObj(f)?.typed_config)?.type_url)]);
    if (filters.some(([n, t]) => t === TypeUrl.HttpConnectionManager || (t === undefined && n === HCM_FILTER_NAME))) http ??= cl;
    else if (filters.some(([n, t]) => t === TypeUrl.TcpProxy || (t === undefined && n === TCP_PROXY_FILTER_NAME))) tcp ??= cl;
    if (http !== undefined && tcp !== undefined) {
      // This chain is the second kind seen; the other kind's first chain came before it.
      const [mine, theirs, first] = cl === tcp ? [TCP_PROXY_FILTER_NAME, HCM_FILTER_NAME, http] : [HCM_FILTER_NAME, TCP_PROXY_FILTER_NAME, tcp];
      ctx.reject(cl, `has ${mine} where ${first.path} has ${theirs}: a Remora listener is HTTP or TCP, not both (serve them on two listeners)`);
      return undefined;
    }
  }
  return tcp !== undefined ? 'tcp' : 'http';
}

/** listener_filters → `out`. The PROXY protocol filter (without options) is the listener's
 *  proxy_protocol. The TLS and HTTP inspectors only read a connection's first bytes to pick
 *  a filter chain (Istio adds them): an HTTP listener has one chain, so they change
 *  nothing there; a TCP listener's chains are picked by the ClientHello, which Remora reads
 *  itself whenever a chain matches on it (as Envoy injects the TLS inspector when a chain
 *  needs it). Other listener filters act, and are rejected. */
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
    else ctx.reject(fl, `"${name}" is not supported (only ${TLS_INSPECTOR} and ${HTTP_INSPECTOR}, which only help pick a filter chain, and ${PROXY_PROTOCOL_LISTENER_FILTER})`);
  });
  return { http };
}

/** A TCP listener (translate-listener-tcp.ts) with its Remora extensions and access log. */
function translateTcpListener(ctx: Ctx, key: string, l: Obj, loc: Loc, out: Fields, port: number, inspectors: Inspectors): ListenerPart {
  const tcp = tcpListener(ctx, l, loc, out, port, inspectors);
  const ext = ctx.extensions(l, loc, REMORA_EXTENSIONS.tcpListener, 'Listener.metadata');
  for (const k of REMORA_EXTENSIONS.tcpListener) out.take(k, ext[k], extPath(loc, k));
  if (tcp.log !== undefined && tcp.logLoc !== undefined) {
    if (ext.access_log !== undefined) ctx.reject(tcp.logLoc, `and the Remora extension access_log (${extPath(loc, 'access_log').path}) are both set: set one`);
    else out.attach('access_log', tcp.log.raw, tcp.log.marks);
  }
  return {
    name: key, loc, raw: out.raw, marks: out.marks, route: { kind: 'tcp', clusters: tcp.clusters },
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
    ctx.only(f, fl, ['name', 'typed_config', 'is_optional']);
    const name = asStr(f.name) ?? '';
    if (names.has(name)) ctx.reject(sub(fl, 'name'), `duplicate http filter name "${name}"`);
    names.add(name);
    const type = asStr(asObj(f.typed_config)?.type_url);
    if (type === TypeUrl.Router || (type === undefined && name === ROUTER_FILTER_NAME)) {
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
    const why = type === undefined ? undefined : REJECTED_FILTERS[type];
    ctx.reject(fl, `unsupported http filter ${name !== '' ? name : (type ?? '(unnamed)')}${why === undefined ? '' : `: ${why}`}`);
  });
  if (!router) ctx.reject(loc, `the last http filter must be the router (${ROUTER_FILTER_NAME})`);
  return { limits, rateLimitFilters, rbac, rbacFilters, inertFilters };
}
