// Config validation: turns parsed YAML/JSON (plain data) into the immutable RemoraConfig
// of types.ts, collecting EVERY problem as a ConfigError with a precise path
// (`clusters[2].endpoints[0].port`). Bad input never throws.
//
// Two passes. The schema walker (schema/walk.ts) checks what the schemas in schema/
// declare: types, ranges, enums, field checks, unknown keys, static defaults. This file
// is the second pass, for what a schema cannot say: references between objects (route →
// cluster), uniqueness, "exactly one of", conditional defaults (a default computed from
// another field) and other rules across fields, and the process-wide caps.

import { isIP } from 'node:net';
import { defaultRouteName } from './route-name.js';
import { regexRewriteProblem } from '../router/regex-rewrite.js';
import { availableParallelism } from 'node:os';
import { MAX_BUCKETS, MAX_CLUSTERS, MAX_ENDPOINTS, MAX_LISTENERS } from '../shared/limits.js';
import { RootSchema, XdsSchema, xdsTlsErrors } from './schema/root.js';
import { checkAccessLog } from './validate-access-log.js';
import { checkClusterDns } from './validate-dns.js';
import { checkHttpChains, fillListenerTls } from './validate-http-chains.js';
import { asksForClientCertificates, listenerVirtualHostPaths, listenerVirtualHosts } from './listener-chains.js';
import { at, isObj, nameList, objectEntries, SchemaWalk, unknownKeyMessage } from './schema/walk.js';
import type {
  Authorization, Cluster, ConfigError, FilterChain, HealthCheck, Listener, ListenerTlsConfig, OutlierDetection, RateLimit, RemoraConfig,
  RegexRewrite, RetryPolicy, Route, RouteAction, RouteMatch, TcpProxy, VirtualHost, XdsBootstrap,
} from './types.js';

export type ValidateResult = { ok: true; config: RemoraConfig } | { ok: false; errors: ConfigError[] };

export type BootstrapResult =
  | { ok: true; xds: XdsBootstrap; base: Record<string, unknown> }
  | { ok: false; errors: ConfigError[] };

/** The walker's output while the second pass fills it in (its objects are fresh copies). */
type Draft<T> = { -readonly [K in keyof T]: T[K] };

const ROOT_KEYS = Object.keys(objectEntries(RootSchema) ?? {});

/** What a listener's virtual hosts and routes must be unique against. */
interface ListenerScope {
  readonly clusterNames: ReadonlySet<string>;
  /** A route or tcp_proxy may name an unknown cluster (ValidateOptions.allowMissingClusters). */
  readonly allowMissingClusters: boolean;
  /** Clusters with send_proxy_protocol (tcp_proxy only). */
  readonly proxyProtocolClusters: ReadonlySet<string>;
  readonly domains: Map<string, string>;
  readonly vhostNames: Map<string, string>;
  readonly routeNames: Map<string, string>;
}

type MatchKind = 'prefix' | 'path' | 'regex';

/** Reports `what` if it was seen before in `seen`; records it otherwise. */
function noDuplicate(w: SchemaWalk, seen: Map<string, string>, value: string, path: string, what: string): void {
  const first = seen.get(value);
  if (first !== undefined) w.err(path, `duplicate ${what} "${value}" (first used at ${first})`);
  else seen.set(value, path);
}

/** The one key of `keys` set in the input of `o`; reports none or several. */
function exactlyOne(w: SchemaWalk, o: object, keys: readonly string[], path: string): string | undefined {
  const set = keys.filter((k) => w.given(o, k));
  const quoted = keys.map((k) => `"${k}"`);
  const names = `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`;
  if (set.length === 0) w.err(path, `must set exactly one of ${names}`);
  else if (set.length > 1) w.err(path, `must set exactly one of ${names}, not ${set.map((k) => `"${k}"`).join(' and ')}`);
  return set.length === 1 ? set[0] : undefined;
}

/** A name field usable for uniqueness: it was a string (valid or not). */
const nameOf = (w: SchemaWalk, o: { name: string }, path: string): string | undefined => (w.wrong(at(path, 'name')) ? undefined : o.name);

/** Sorts errors (stably) by the root field and list item they are in, so that a second-pass
 *  error (an unknown cluster) is listed with the walker's errors of the same listener or
 *  cluster, as one pass over the document would list them. */
function inDocumentOrder(errors: ConfigError[]): void {
  const key = (path: string): [number, number] => {
    const m = /^([a-z_]+)(?:\[(\d+)\])?/.exec(path);
    const section = m ? ROOT_KEYS.indexOf(m[1]) : -1;
    return [section, m?.[2] !== undefined ? Number(m[2]) : -1];
  };
  const keys = new Map(errors.map((e) => [e, key(e.path)]));
  errors.sort((a, b) => {
    const [sa, ia] = keys.get(a) ?? [0, 0];
    const [sb, ib] = keys.get(b) ?? [0, 0];
    return sa - sb || ia - ib;
  });
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    for (const child of Object.values(v)) deepFreeze(child);
    Object.freeze(v);
  }
  return v;
}

// ---------------------------------------------------------------------------
// Listeners, virtual hosts, routes

function checkListener(w: SchemaWalk, l: Draft<Listener>, path: string, clusterNames: ReadonlySet<string>, proxyProtocolClusters: ReadonlySet<string>, allowMissingClusters: boolean): void {
  const scope: ListenerScope = { clusterNames, allowMissingClusters, proxyProtocolClusters, domains: new Map(), vhostNames: new Map(), routeNames: new Map() };
  if (w.given(l, 'tcp_proxy') || l.filter_chains.length > 0) checkTcpListener(w, l, path, scope);
  else if (!w.wrong(at(path, 'virtual_hosts')) && l.virtual_hosts.length === 0 && l.http_filter_chains.length === 0) {
    w.err(at(path, 'virtual_hosts'), 'must list at least one virtual host (or set "tcp_proxy" or "filter_chains" for a TCP listener)');
  }
  l.virtual_hosts.forEach((vh, i) => { if (vh) checkVirtualHost(w, vh, `${at(path, 'virtual_hosts')}[${i}]`, scope); });
  checkRateLimits(w, l.rate_limits, at(path, 'rate_limits'));
  const tls = l.tls as Draft<ListenerTlsConfig> | undefined;
  if (tls) fillListenerTls(w, tls, at(path, 'tls'));
  if (l.http_filter_chains.length > 0) {
    checkHttpChains(w, l, path, { vhost: (vh, p, domains) => checkVirtualHost(w, vh, p, { ...scope, domains }), unique: (seen, value, p, what) => noDuplicate(w, seen, value, p, what) });
  }
  if (!w.given(l, 'forward_client_cert_details')) l.forward_client_cert_details = asksForClientCertificates(l) ? 'sanitize_set' : 'sanitize';
  if (l.authorization) checkAuthorization(w, l.authorization, at(path, 'authorization'));
  checkAccessLog(w, l, path, clusterNames, allowMissingClusters);
  if (l.codec === 'uws' && w.given(l, 'tls')) w.err(at(path, 'codec'), 'must be "strict" on a TLS listener (uWS cannot read client certificates)');
  if (l.tcp_keepalive !== undefined && l.codec === 'uws') w.err(at(path, 'tcp_keepalive'), 'is not supported with codec "uws" (uWS does not expose its sockets; use the strict codec)');
  if (l.proxy_protocol && l.codec === 'uws') w.err(at(path, 'proxy_protocol'), 'is not supported with codec "uws" (use the strict codec)');
  if (l.codec === 'uws' && l.upgrade_configs.length > 0) w.err(at(path, 'upgrade_configs'), 'is not supported with codec "uws" (upgrades are tunnelled by the strict codec)');
  if (l.codec === 'uws' && l.codec_type === 'http2') w.err(at(path, 'codec_type'), 'must be "http1" or "auto" with codec "uws" (the uWS front end speaks HTTP/1.1 only)');
}

/** Listener fields that only mean something to HTTP, refused on a TCP listener. */
const HTTP_ONLY_FIELDS = ['virtual_hosts', 'http_filter_chains', 'tls', 'codec', 'codec_type', 'rate_limits', 'authorization', 'upgrade_configs', 'generate_traceparent', 'tracing',
  'http2_protocol_options', 'max_request_headers_kb', 'max_request_headers_count', 'normalize_path', 'merge_slashes', 'path_with_escaped_slashes_action',
  'idle_timeout_ms', 'max_requests_per_connection', 'server_name', 'server_header_transformation', 'forward_client_cert_details'] as const;

/** A TCP listener: its chains' clusters exist, their names and matches are unique, and
 *  no HTTP setting is given (it would silently do nothing). */
function checkTcpListener(w: SchemaWalk, l: Draft<Listener>, path: string, scope: ListenerScope): void {
  const why = (key: string): string => (key === 'tls' ? ' (TLS passes through, or set a filter chain\'s tls to terminate it)' : '');
  for (const key of HTTP_ONLY_FIELDS) if (w.given(l, key)) w.err(at(path, key), `is an HTTP setting: a TCP listener ("tcp_proxy" / "filter_chains") forwards bytes${why(key)}`);
  if (l.tcp_proxy) checkTcpProxy(w, l.tcp_proxy, at(path, 'tcp_proxy'), scope);
  const names = new Map<string, string>();
  const matches = new Map<string, string>();
  l.filter_chains.forEach((fc, i) => {
    const p = `${at(path, 'filter_chains')}[${i}]`;
    if (!fc) return;
    const fname = nameOf(w, fc, p);
    if (fname !== undefined) noDuplicate(w, names, fname, at(p, 'name'), 'filter chain name');
    if (fc.tcp_proxy) checkTcpProxy(w, fc.tcp_proxy, at(p, 'tcp_proxy'), scope);
    if (fc.tls) fillListenerTls(w, fc.tls as Draft<ListenerTlsConfig>, at(p, 'tls'));
    const m = fc.match;
    if (m && !w.erred(at(p, 'match'))) {
      // Envoy's rule: no (server name, transport, ALPN id) combination in two chains.
      const names = m.server_names.length > 0 ? m.server_names.map((n) => `server name "${n}"`) : ['any server name'];
      const protocols = m.application_protocols.length > 0 ? m.application_protocols.map((a) => `ALPN "${a}"`) : ['any ALPN'];
      const transport = (m.transport_protocol !== undefined ? `transport ${m.transport_protocol}` : 'any transport') + addressCriteria(m);
      let clash: string | null = null;
      for (const n of names) {
        for (const a of protocols) {
          const key = `${n}, ${transport}, ${a}`;
          const first = matches.get(key);
          if (first === undefined) matches.set(key, p);
          else if (first !== p) clash ??= `overlaps ${first}: both take ${key} (each combination belongs to one chain, as in Envoy)`;
        }
      }
      if (clash !== null) w.err(at(p, 'match'), clash);
    }
  });
}

/** A chain match's address criteria, for telling overlapping chains apart ('' when it
 *  has none). */
function addressCriteria(m: FilterChain['match']): string {
  const set = ([['destination', m.destination_prefix_ranges], ['direct source', m.direct_source_prefix_ranges], ['source', m.source_prefix_ranges], ['source port', m.source_ports]] as const)
    .filter(([, list]) => list.length > 0).map(([what, list]) => `${what} ${list.join('|')}`);
  if (m.source_type !== 'any') set.push(`source type ${m.source_type}`);
  return set.length === 0 ? '' : `, ${set.join(', ')}`;
}

function checkTcpProxy(w: SchemaWalk, t: TcpProxy, path: string, scope: ListenerScope): void {
  checkTarget(w, t, path, scope, false);
}

function checkAuthorization(w: SchemaWalk, a: Authorization, path: string): void {
  if (!w.given(a, 'allow') && !w.given(a, 'deny')) w.err(path, 'must list at least one "allow" or "deny" pattern');
}

function checkVirtualHost(w: SchemaWalk, vh: VirtualHost, path: string, scope: ListenerScope): void {
  const vname = nameOf(w, vh, path);
  if (vname !== undefined) noDuplicate(w, scope.vhostNames, vname, at(path, 'name'), 'virtual host name');
  vh.domains.forEach((d, i) => {
    const p = `${at(path, 'domains')}[${i}]`;
    if (w.erred(p)) return;
    if (d === '*' && scope.domains.has('*')) w.err(p, `only one virtual host may use "*" (already used at ${scope.domains.get('*')})`);
    else noDuplicate(w, scope.domains, d, p, 'domain');
  });
  vh.routes.forEach((r, i) => { if (r) checkRoute(w, r as Draft<Route>, `${at(path, 'routes')}[${i}]`, vh.name, scope); });
}

function checkRoute(w: SchemaWalk, r: Draft<Route>, path: string, vname: string, scope: ListenerScope): void {
  let kind: MatchKind | undefined;
  const match: RouteMatch = r.match ?? { methods: [], headers: [], query_parameters: [] };
  if (r.match) {
    const m = at(path, 'match');
    kind = exactlyOne(w, r.match, ['prefix', 'path', 'regex'], m) as MatchKind | undefined;
    for (const key of ['headers', 'query_parameters'] as const) r.match[key].forEach((h, i) => { if (h) exactlyOne(w, h, ['exact', 'regex', 'present'], `${at(m, key)}[${i}]`); });
  }
  const named = w.given(r, 'name');
  if (!named) r.name = defaultRouteName(vname, match, scope.routeNames);
  if (!named || !w.wrong(at(path, 'name'))) noDuplicate(w, scope.routeNames, r.name, named ? at(path, 'name') : path, 'route name');
  const action = exactlyOne(w, r, ['route', 'direct_response', 'redirect'], path);
  if (action !== 'route' && r.upgrade_configs.length > 0) {
    w.err(at(path, 'upgrade_configs'), `needs "route": a ${action ?? 'direct_response'} route answers every request itself, upgrades included`);
  }
  if (r.route) checkAction(w, r.route, at(path, 'route'), kind, scope);
  if (r.redirect) pathRewrites(w, r.redirect, at(path, 'redirect'), kind, w.given(r.redirect, 'path'));
  checkRateLimits(w, r.rate_limits, at(path, 'rate_limits'));
  if (r.authorization) checkAuthorization(w, r.authorization, at(path, 'authorization'));
}

function checkAction(w: SchemaWalk, a: RouteAction, path: string, kind: MatchKind | undefined, scope: ListenerScope): void {
  checkTarget(w, a, path, scope, true);
  pathRewrites(w, a, path, kind, false);
  const mirrors = at(path, 'request_mirror_policies');
  a.request_mirror_policies?.forEach((m, i) => {
    const cp = at(`${mirrors}[${i}]`, 'cluster');
    if (m && !w.wrong(cp)) clusterRef(w, m.cluster, cp, scope, true);
  });
  if (a.retry_policy) checkRetryPolicy(w, a.retry_policy as Draft<RetryPolicy>, at(path, 'retry_policy'));
}

/** A route action's or a redirect's path rewrites: prefix_rewrite needs a prefix match;
 *  at most one of path (a redirect's), prefix_rewrite and regex_rewrite. */
function pathRewrites(w: SchemaWalk, a: { prefix_rewrite?: string; regex_rewrite?: RegexRewrite }, path: string, kind: MatchKind | undefined, withPath: boolean): void {
  const set = [...(withPath ? ['"path"'] : []), ...(['prefix_rewrite', 'regex_rewrite'] as const).filter((k) => w.given(a, k)).map((k) => `"${k}"`)];
  if (set.length > 1) w.err(path, `set at most one of ${withPath ? '"path", ' : ''}"prefix_rewrite" and "regex_rewrite", not ${set.join(' and ')}`);
  if (w.given(a, 'prefix_rewrite') && kind !== undefined && kind !== 'prefix') w.err(at(path, 'prefix_rewrite'), `only allowed with a "prefix" match (this route uses "${kind}")`);
  const problem = a.regex_rewrite !== undefined ? regexRewriteProblem(a.regex_rewrite) : undefined;
  if (problem !== undefined) w.err(at(path, 'regex_rewrite.substitution'), problem);
}

/** A route's or tcp_proxy's cluster, or weighted clusters: exactly one, each defined;
 *  `http`: a route's, which may not name a cluster that sends the PROXY protocol. */
function checkTarget(w: SchemaWalk, a: { readonly cluster?: string; readonly weighted_clusters?: readonly { readonly cluster: string; readonly weight: number }[] }, path: string, scope: ListenerScope, http: boolean): void {
  exactlyOne(w, a, ['cluster', 'weighted_clusters'], path);
  if (w.given(a, 'cluster') && !w.wrong(at(path, 'cluster'))) clusterRef(w, a.cluster ?? '', at(path, 'cluster'), scope, http);
  if (a.weighted_clusters) {
    const p = at(path, 'weighted_clusters');
    const seen = new Map<string, string>();
    const items = a.weighted_clusters.filter((x) => x !== undefined);
    a.weighted_clusters.forEach((wc, i) => {
      const cp = at(`${p}[${i}]`, 'cluster');
      if (!wc || w.wrong(cp)) return;
      clusterRef(w, wc.cluster, cp, scope, http);
      noDuplicate(w, seen, wc.cluster, cp, 'cluster');
    });
    if (items.length > 0 && items.reduce((sum, x) => sum + x.weight, 0) <= 0) w.err(p, 'weights must add up to more than 0');
  }
}

function clusterRef(w: SchemaWalk, c: string, path: string, scope: ListenerScope, http: boolean): void {
  if (scope.clusterNames.has(c)) {
    if (http && scope.proxyProtocolClusters.has(c)) {
      w.err(path, `cluster "${c}" sends the PROXY protocol (send_proxy_protocol), which only tcp_proxy connections carry: pooled HTTP connections serve many clients`);
    }
    return;
  }
  if (scope.allowMissingClusters) return;
  const defined = scope.clusterNames.size > 0 ? `defined: ${nameList(scope.clusterNames)}` : 'no clusters are defined';
  w.err(path, `unknown cluster "${c}" (${defined})`);
}

function checkRetryPolicy(w: SchemaWalk, rp: Draft<RetryPolicy>, path: string): void {
  const codes = at(path, 'retriable_status_codes');
  if (rp.retry_on.includes('retriable-status-codes') && !w.wrong(codes) && rp.retriable_status_codes.length === 0) {
    w.err(codes, 'must list at least one status code when retry_on includes "retriable-status-codes"');
  }
  const base = at(path, 'base_interval_ms');
  const max = at(path, 'max_interval_ms');
  if (!w.given(rp, 'max_interval_ms')) rp.max_interval_ms = 10 * rp.base_interval_ms;
  else if (!w.erred(base) && !w.erred(max) && rp.max_interval_ms < rp.base_interval_ms) {
    w.err(max, `must be at least base_interval_ms (${rp.base_interval_ms})`);
  }
}

/** A listener's or route's `rate_limits`: names unique within the list; keys not empty. */
function checkRateLimits(w: SchemaWalk, limits: readonly RateLimit[], path: string): void {
  const seen = new Map<string, string>();
  limits.forEach((r, i) => {
    const p = `${path}[${i}]`;
    if (!r) return;
    const rname = nameOf(w, r, p);
    if (rname !== undefined) noDuplicate(w, seen, rname, at(p, 'name'), 'rate limit name');
    const key = r.key;
    const kp = at(p, 'key');
    if (key && !(w.given(key, 'headers') && (w.wrong(at(kp, 'headers')) || key.headers.length > 0))
      && !(w.given(key, 'client_ip') && (w.wrong(at(kp, 'client_ip')) || key.client_ip))) {
      w.err(kp, 'must name at least one header or set client_ip: true');
    }
  });
}

// ---------------------------------------------------------------------------
// Clusters

function checkCluster(w: SchemaWalk, c: Draft<Cluster>, path: string): void {
  const tls = c.tls;
  if (tls) {
    const [given, missing] = w.given(tls, 'cert_file') ? ['cert_file', 'key_file'] : ['key_file', 'cert_file'];
    if (w.given(tls, given) !== w.given(tls, missing)) w.err(at(at(path, 'tls'), missing), `is required with "${given}" (a client certificate needs both)`);
    if (tls.alpn_protocols !== undefined && c.protocol === 'auto') w.err(at(at(path, 'tls'), 'alpn_protocols'), 'cannot be set with protocol auto (the endpoint\'s ALPN choice decides its version)');
  } else c.transport_socket_matches?.forEach((m, i) => { if (m.tls) w.err(at(path, `transport_socket_matches[${i}].tls`), 'needs the cluster\'s "tls" (the TLS settings an entry selects)'); });
  if (c.outlier_detection) checkOutlierDetection(w, c.outlier_detection as Draft<OutlierDetection>, at(path, 'outlier_detection'));
  if (c.dns) checkClusterDns(w, c, path);
  if (c.health_check) fillHealthCheck(w, c.health_check as Draft<HealthCheck>, c.name, at(path, 'health_check'));
}

function checkOutlierDetection(w: SchemaWalk, o: Draft<OutlierDetection>, path: string): void {
  // Envoy: the default maximum is 300 s, or base_ejection_time when that is larger.
  const max = at(path, 'max_ejection_time_ms');
  if (!w.given(o, 'max_ejection_time_ms')) o.max_ejection_time_ms = Math.max(300_000, o.base_ejection_time_ms);
  else if (!w.erred(at(path, 'base_ejection_time_ms')) && !w.erred(max) && o.max_ejection_time_ms < o.base_ejection_time_ms) {
    w.err(max, `must be at least base_ejection_time_ms (${o.base_ejection_time_ms})`);
  }
}

/** A check is one of HTTP, gRPC and TCP; Envoy's intervals: each defaults to the one it refines. */
function fillHealthCheck(w: SchemaWalk, h: Draft<HealthCheck>, clusterName: string, hl: string): void {
  const kinds = (['path', 'grpc', 'tcp'] as const).filter((k) => w.given(h, k));
  if (kinds.length !== 1) w.err(kinds.length === 0 ? hl : at(hl, kinds[1]), kinds.length === 0 ? 'needs "path" (an HTTP check), "grpc" (a gRPC health check) or "tcp" (a TCP check)' : `cannot be combined with "${kinds[0]}": a check is HTTP, gRPC or TCP`);
  if (!w.given(h, 'path') && (h.receive?.length ?? 0) > 0) w.err(at(hl, 'receive'), 'is for HTTP checks (with "path"); a TCP check has its own tcp.receive');
  const fill = <K extends keyof HealthCheck>(key: K, value: HealthCheck[K]): void => { if (!w.given(h, key)) h[key] = value; };
  fill('host', clusterName);
  fill('no_traffic_healthy_interval_ms', h.no_traffic_interval_ms);
  fill('unhealthy_interval_ms', h.interval_ms);
  fill('unhealthy_edge_interval_ms', h.unhealthy_interval_ms);
  fill('healthy_edge_interval_ms', h.interval_ms);
}

// ---------------------------------------------------------------------------
// Root

/** The root `tracing` block and the listeners' and routes' blocks: custom tags say where
 *  their value comes from, the exporter has one target, and a listener or route that
 *  tunes tracing has a root block to export with. */
function checkTracing(w: SchemaWalk, cfg: Draft<RemoraConfig>, clusterNames: ReadonlySet<string>, allowMissingClusters: boolean): void {
  const otlp = cfg.tracing?.otlp;
  if (otlp) {
    if (w.given(otlp, 'endpoint') && w.given(otlp, 'cluster')) w.err('tracing.otlp', 'must set at most one of "endpoint" and "cluster"');
    if (otlp.cluster !== undefined && !allowMissingClusters && !clusterNames.has(otlp.cluster)) w.err('tracing.otlp.cluster', `unknown cluster "${otlp.cluster}"`);
  }
  cfg.listeners.forEach((l, i) => {
    if (!l) return;
    const path = `listeners[${i}]`;
    const t = l.tracing;
    if (t && w.given(l, 'tracing') && cfg.tracing === undefined && t.enabled) {
      w.err(at(path, 'tracing'), 'needs the root "tracing" block (where spans are exported)');
    }
    t?.custom_tags.forEach((tag, j) => { if (tag) exactlyOne(w, tag, ['literal', 'request_header', 'environment'], `${at(at(path, 'tracing'), 'custom_tags')}[${j}]`); });
    if (cfg.tracing !== undefined || t !== undefined) return;
    for (const [vh, vp] of listenerVirtualHostPaths(l)) {
      vh?.routes.forEach((r, k) => { if (r && w.given(r, 'tracing')) w.err(`${at(path, vp)}.routes[${k}].tracing`, 'needs the root "tracing" block (where spans are exported)'); });
    }
  });
}

function isLoopback(address: string): boolean {
  return address === '::1' || address === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(address);
}

/** Listener names and (address, port) pairs must be unique, also against the admin server. */
function checkListenerUniqueness(w: SchemaWalk, listeners: readonly Listener[], admin: RemoraConfig['admin']): void {
  const names = new Map<string, string>();
  const binds = new Map<string, string>();
  if (admin.port !== 0) binds.set(`${admin.address}:${admin.port}`, 'admin');
  listeners.forEach((l, i) => {
    if (!l) return;
    const path = `listeners[${i}]`;
    const lname = nameOf(w, l, path);
    if (lname !== undefined) noDuplicate(w, names, lname, at(path, 'name'), 'listener name');
    if (!w.wrong(at(path, 'port')) && l.port !== 0) noDuplicate(w, binds, `${l.address}:${l.port}`, at(path, 'port'), 'address and port');
  });
}

export interface ValidateOptions {
  /** Workers when the config does not say (default: the CPUs, at most 256). */
  readonly defaultWorkers?: number;
  /** Routes and tcp_proxy may name clusters the config lacks (xDS only: Envoy accepts a
   *  route to a cluster CDS has not sent, and answers its requests 503 NC). A file's
   *  config never sets it: there an unknown cluster is a typo. */
  readonly allowMissingClusters?: boolean;
}

export function validateConfig(raw: unknown, opts: ValidateOptions = {}): ValidateResult {
  if (raw === null || raw === undefined) {
    return { ok: false, errors: [{ path: '(root)', message: 'config is empty; expected an object with "listeners" and "clusters"' }] };
  }
  const w = new SchemaWalk();
  const cfg = w.value(RootSchema, raw, '') as Draft<RemoraConfig> | undefined;
  if (!cfg) return { ok: false, errors: w.errors };

  if (!w.given(cfg, 'workers')) cfg.workers = opts.defaultWorkers ?? Math.min(256, Math.max(1, availableParallelism()));
  const admin = cfg.admin;
  if (admin && !admin.allow_remote && !w.erred('admin.address') && isIP(admin.address) !== 0 && !isLoopback(admin.address)) {
    w.err('admin.address', `"${admin.address}" is not a loopback address: admin can stop the proxy and dump its config, so it stays on loopback unless "allow_remote: true" is set (use "probes" to expose /ready, /live and /metrics)`);
  }

  const clusterNames = new Set(cfg.clusters.flatMap((c, i) => (c && !w.wrong(`clusters[${i}].name`) ? [c.name] : [])));
  const proxyProtocolClusters = new Set(cfg.clusters.flatMap((c) => (c && c.send_proxy_protocol !== undefined ? [c.name] : [])));
  cfg.listeners.forEach((l, i) => { if (l) checkListener(w, l as Draft<Listener>, `listeners[${i}]`, clusterNames, proxyProtocolClusters, opts.allowMissingClusters === true); });
  checkTracing(w, cfg, clusterNames, opts.allowMissingClusters === true);
  if (admin) checkListenerUniqueness(w, cfg.listeners, admin);

  const seenClusters = new Map<string, string>();
  cfg.clusters.forEach((c, i) => {
    if (!c) return;
    checkCluster(w, c as Draft<Cluster>, `clusters[${i}]`);
    const cname = nameOf(w, c, `clusters[${i}]`);
    if (cname !== undefined) noDuplicate(w, seenClusters, cname, `clusters[${i}].name`, 'cluster name');
  });

  inDocumentOrder(w.errors);
  // Stats slabs are sized for these at startup (src/shared/limits.ts).
  if (cfg.listeners.length > MAX_LISTENERS) w.err('listeners', `at most ${MAX_LISTENERS} listeners (got ${cfg.listeners.length})`);
  if (cfg.clusters.length > MAX_CLUSTERS) w.err('clusters', `at most ${MAX_CLUSTERS} clusters (got ${cfg.clusters.length})`);
  // Shared state (src/shared/shared-state.ts) has a slot per endpoint and per unkeyed rate limit.
  const endpointCount = cfg.clusters.reduce((n, c) => n + (c ? c.endpoints.length : 0), 0);
  if (endpointCount > MAX_ENDPOINTS) w.err('clusters', `at most ${MAX_ENDPOINTS} endpoints over all clusters (got ${endpointCount})`);
  const unkeyed = (limits: readonly RateLimit[]): number => limits.filter((r) => r && r.key === undefined).length;
  const bucketCount = cfg.listeners.reduce((n, l) => n + (l ? unkeyed(l.rate_limits)
    + listenerVirtualHosts(l).reduce((m, vh) => m + (vh ? vh.routes.reduce((k, r) => k + (r ? unkeyed(r.rate_limits) : 0), 0) : 0), 0) : 0), 0);
  if (bucketCount > MAX_BUCKETS) {
    w.err('listeners', `at most ${MAX_BUCKETS} rate limits without a key over all listeners and routes (got ${bucketCount})`);
  }

  if (w.errors.length > 0) return { ok: false, errors: w.errors };
  return { ok: true, config: deepFreeze(cfg as RemoraConfig) };
}

/** A bootstrap file for xDS mode: the usual root fields (workers, admin, probes, drain,
 *  worker_limits, stats) plus `xds`; listeners and clusters come from the control plane.
 *  `base` is the raw root without `xds`, which translateXds completes and validates. */
export function validateBootstrap(raw: unknown): BootstrapResult {
  if (!isObj(raw)) return { ok: false, errors: [{ path: '(root)', message: 'must be an object (mapping)' }] };
  const w = new SchemaWalk();
  const { xds: rawXds, ...base } = raw;
  for (const key of ['listeners', 'clusters']) {
    if (raw[key] !== undefined) w.err(key, 'must not be set with "xds": listeners and clusters come from the control plane');
  }
  for (const key of Object.keys(base)) {
    if (!ROOT_KEYS.includes(key)) w.err(key, unknownKeyMessage(key, [...ROOT_KEYS, 'xds']));
  }
  const xds = w.value(XdsSchema, rawXds, 'xds') as XdsBootstrap | undefined;
  if (xds !== undefined) for (const e of xdsTlsErrors(xds)) w.err(e.path, e.message);
  if (!xds || w.errors.length > 0) return { ok: false, errors: w.errors };
  return { ok: true, xds: deepFreeze(xds), base };
}
