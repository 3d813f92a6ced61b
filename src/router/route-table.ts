// The route table of one listener, compiled once per config snapshot: virtual host
// lookup by Host, then first-match over the vhost's routes. Everything a request needs
// from its route (cluster handles, rewrites, header edits, timeout) is precomputed here
// so the hot path only looks things up. A virtual host with many routes (a mesh config:
// one per service) gets an index by the first path segment a route requires, so a
// request tries only the routes that can match it, still in config order.

import type { HeaderMatcher, Listener, Route, VirtualHost } from '../config/types.js';
import { headerBytes } from '../http/headers.js';
import { compileRedirect, type CompiledRedirect } from './redirect.js';
import { compileRegexRewrite, type CompiledRegexRewrite } from './regex-rewrite.js';

/** Request facts the router looks at. `headers` is flat [name, value, ...], lower-case names. */
export interface RouteInput {
  readonly host: string;
  readonly method: string; // upper-case
  readonly path: string; // without query
  readonly headers: readonly string[];
  /** The raw query, without '?' ('' when none); read only by routes with query_parameters. */
  readonly query: string;
}

const enum PathKind {
  Prefix,
  Exact,
  Regex,
}

interface CompiledHeaderMatcher {
  readonly name: string;
  readonly exact: string | null;
  readonly regex: RegExp | null;
}

/** A cluster choice with its share of traffic; `upTo` is the cumulative weight.
 *  `cluster` is null when the snapshot has no cluster of that name (a route from xDS may
 *  name one that CDS has not sent yet, or has removed): requests picking it answer 503 NC. */
export interface WeightedTarget<C> {
  readonly cluster: C | null;
  readonly name: string;
  readonly upTo: number;
  /** A weighted cluster's own host rewrite, over the route's; null when it has none. */
  readonly hostRewrite: string | null;
}

export interface CompiledRoute<C, P = null> {
  readonly name: string;
  readonly vhostName: string;
  readonly pathKind: PathKind;
  readonly pathValue: string;
  readonly pathRegex: RegExp | null;
  readonly methods: ReadonlySet<string> | null;
  readonly headerMatchers: readonly CompiledHeaderMatcher[];
  /** query_parameters (the name percent-decoded; tested against the first occurrence). */
  readonly queryMatchers: readonly CompiledHeaderMatcher[];
  /** Proxy action: one or more weighted targets (a single cluster is one target). */
  readonly targets: readonly WeightedTarget<C>[];
  readonly totalWeight: number;
  readonly prefixRewrite: string | null;
  readonly regexRewrite: CompiledRegexRewrite | null;
  /** Copies of each request (request_mirror_policies): the cluster (null while not known) and the percent. */
  readonly mirrors: readonly { readonly cluster: C | null; readonly percent: number }[];
  readonly hostRewrite: string | null;
  readonly timeoutMs: number;
  /** grpc_timeout_header_max_ms: a request's grpc-timeout sets the timeout, capped by this
   *  (0 = no cap); null = grpc-timeout ignored. */
  readonly grpcTimeoutMax: number | null;
  /** Send x-remora-attempt-count on the first attempt too (the virtual host's
   *  include_request_attempt_count); retries always carry it. */
  readonly includeAttemptCount: boolean;
  /** Request body limit (413); 0 = none. */
  readonly maxRequestBodyBytes: number;
  /** Status when the cluster is not known (flag NC): 503, 404 or 500. */
  readonly clusterNotFoundStatus: number;
  /** Direct response, when the route answers by itself. */
  readonly direct: { readonly status: number; readonly body: string } | null;
  /** Redirect, when the route answers with one. */
  readonly redirect: CompiledRedirect | null;
  /** Flat [name, value, ...] to add; names lower-case. */
  readonly requestHeadersToAdd: readonly string[];
  readonly requestHeadersToRemove: ReadonlySet<string> | null;
  readonly responseHeadersToAdd: readonly string[];
  readonly responseHeadersToRemove: ReadonlySet<string> | null;
  /** What the caller compiled for this route when the snapshot was applied (retry
   *  policy, rate limits: workers/context.ts). */
  readonly policy: P;
}

interface CompiledVhost<C, P> {
  readonly name: string;
  readonly routes: readonly CompiledRoute<C, P>[];
  /** For a vhost of INDEX_MIN_ROUTES routes or more; null: every route is tried. */
  readonly index: RouteIndex | null;
}

/** Routes of a vhost by the first path segment they require (`/svc-a/` and the exact
 *  path `/svc-a/x` require `svc-a`), as ascending route numbers. `any` lists, also in
 *  order, the routes that can match a path whatever its first segment: a regex, a
 *  prefix that ends inside the first segment (`/`, `/api`). */
interface RouteIndex {
  readonly bySegment: ReadonlyMap<string, readonly number[]>;
  readonly any: readonly number[];
}

/** Below this many routes a vhost is scanned route by route (a few string compares
 *  cost less than finding a path's first segment). */
const INDEX_MIN_ROUTES = 32;

export class RouteTable<C, P = null> {
  private readonly exact = new Map<string, CompiledVhost<C, P>>();
  private readonly suffixes: { readonly suffix: string; readonly vhost: CompiledVhost<C, P> }[] = [];
  private wildcard: CompiledVhost<C, P> | null = null;

  /** `resolveCluster` turns a cluster name into the caller's handle, or null when the
   *  snapshot has no such cluster (only a config from xDS can name one: validation with
   *  allow_missing_clusters; such targets answer 503 NC, see pickTarget). */
  constructor(
    listener: Listener,
    resolveCluster: (name: string) => C | null,
    compilePolicy: (route: Route) => P = () => null as P,
  ) {
    for (const vh of listener.virtual_hosts) {
      const routes = vh.routes.map((r) => compileRoute(vh, r, resolveCluster, compilePolicy));
      const compiled: CompiledVhost<C, P> = { name: vh.name, routes, index: routes.length >= INDEX_MIN_ROUTES ? indexRoutes(routes) : null };
      for (const domain of vh.domains) {
        if (domain === '*') this.wildcard = compiled;
        else if (domain.startsWith('*')) this.suffixes.push({ suffix: domain.slice(1), vhost: compiled });
        else this.exact.set(domain, compiled);
      }
    }
    // Longest suffix wins, as in Envoy.
    this.suffixes.sort((a, b) => b.suffix.length - a.suffix.length);
  }

  /** The route for a request, or null (404, flag NR). */
  match(req: RouteInput): CompiledRoute<C, P> | null {
    const vhost = this.findVhost(req.host);
    if (vhost === null) return null;
    const routes = vhost.routes;
    if (vhost.index !== null) return matchIndexed(routes, vhost.index, req);
    for (let i = 0; i < routes.length; i++) {
      if (routeMatches(routes[i], req)) return routes[i];
    }
    return null;
  }

  private findVhost(rawHost: string): CompiledVhost<C, P> | null {
    const host = rawHost.toLowerCase();
    let vhost = this.exact.get(host);
    if (vhost !== undefined) return vhost;
    const bare = stripPort(host);
    if (bare !== host) {
      vhost = this.exact.get(bare);
      if (vhost !== undefined) return vhost;
    }
    for (const { suffix, vhost: candidate } of this.suffixes) {
      if (bare.length > suffix.length && bare.endsWith(suffix)) return candidate;
    }
    return this.wildcard;
  }
}

/** The route's target for one request, picked from its weighted targets, with its own
 *  host rewrite: its cluster is null when the snapshot lacks it (Envoy's
 *  cluster_not_found: 503, flag NC). */
export function pickTarget<C, P>(route: CompiledRoute<C, P>): WeightedTarget<C> {
  return pickByWeight(route.targets, route.totalWeight);
}

/** One of `targets` at random in proportion to the weights (`upTo` cumulative, the last
 *  one's equal to `totalWeight`): a route's clusters per request, a tcp_proxy's per
 *  connection. */
export function pickByWeight<T extends { readonly upTo: number }>(targets: readonly T[], totalWeight: number): T {
  if (targets.length === 1) return targets[0];
  const x = Math.random() * totalWeight;
  for (let i = 0; i < targets.length; i++) {
    if (x < targets[i].upTo) return targets[i];
  }
  return targets[targets.length - 1];
}

/** A `cluster` or `weighted_clusters` choice (a route action's, a tcp_proxy's) as targets
 *  with cumulative weights, compiled once per snapshot; weight-0 clusters are left out. */
export function compileTargets<C>(
  action: { readonly cluster?: string; readonly weighted_clusters?: readonly { readonly cluster: string; readonly weight: number; readonly host_rewrite?: string }[] } | undefined,
  resolveCluster: (name: string) => C | null,
): { targets: WeightedTarget<C>[]; totalWeight: number } {
  const targets: WeightedTarget<C>[] = [];
  let totalWeight = 0;
  if (action?.cluster !== undefined) {
    totalWeight = 1;
    targets.push({ cluster: resolveCluster(action.cluster), name: action.cluster, upTo: 1, hostRewrite: null });
  } else if (action?.weighted_clusters !== undefined) {
    for (const wc of action.weighted_clusters) {
      if (wc.weight === 0) continue;
      totalWeight += wc.weight;
      targets.push({ cluster: resolveCluster(wc.cluster), name: wc.cluster, upTo: totalWeight, hostRewrite: wc.host_rewrite ?? null });
    }
  }
  return { targets, totalWeight };
}

/** The first path segment a route requires, or null when it can match paths with
 *  different first segments. */
function requiredSegment<C, P>(route: CompiledRoute<C, P>): string | null {
  const v = route.pathValue;
  if (route.pathKind === PathKind.Regex || !v.startsWith('/')) return null;
  const end = v.indexOf('/', 1);
  if (route.pathKind === PathKind.Exact) return v.slice(1, end < 0 ? v.length : end);
  return end < 0 ? null : v.slice(1, end); // a prefix must close its first segment
}

function indexRoutes<C, P>(routes: readonly CompiledRoute<C, P>[]): RouteIndex {
  const bySegment = new Map<string, number[]>();
  const any: number[] = [];
  routes.forEach((route, i) => {
    const segment = requiredSegment(route);
    if (segment === null) any.push(i);
    else {
      const list = bySegment.get(segment);
      if (list === undefined) bySegment.set(segment, [i]);
      else list.push(i);
    }
  });
  return { bySegment, any };
}

/** First match over the routes of the path's first segment and the routes of any
 *  segment, merged in route order: the same route a scan of them all finds. */
function matchIndexed<C, P>(routes: readonly CompiledRoute<C, P>[], index: RouteIndex, req: RouteInput): CompiledRoute<C, P> | null {
  const path = req.path;
  let own: readonly number[] | undefined;
  if (path.charCodeAt(0) === 0x2f /* / */) {
    const end = path.indexOf('/', 1);
    own = index.bySegment.get(path.slice(1, end < 0 ? path.length : end));
  }
  const any = index.any;
  let a = 0;
  let o = 0;
  const ownLength = own === undefined ? 0 : own.length;
  while (a < any.length || o < ownLength) {
    const i = o < ownLength && (a >= any.length || own![o] < any[a]) ? own![o++] : any[a++];
    if (routeMatches(routes[i], req)) return routes[i];
  }
  return null;
}

function routeMatches<C, P>(route: CompiledRoute<C, P>, req: RouteInput): boolean {
  switch (route.pathKind) {
    case PathKind.Prefix:
      if (!req.path.startsWith(route.pathValue)) return false;
      break;
    case PathKind.Exact:
      if (req.path !== route.pathValue) return false;
      break;
    case PathKind.Regex:
      if (!route.pathRegex!.test(req.path)) return false;
      break;
  }
  if (route.methods !== null && !route.methods.has(req.method)) return false;
  const matchers = route.headerMatchers;
  for (let i = 0; i < matchers.length; i++) {
    if (!headerMatches(matchers[i], req.headers)) return false;
  }
  const queries = route.queryMatchers;
  for (let i = 0; i < queries.length; i++) {
    if (!queryMatches(queries[i], req.query)) return false;
  }
  return true;
}

/** Envoy's query parameter match: the first `name` (percent-decoded) of the query, its
 *  value percent-decoded ('' without "="); present matches a name with or without one. */
function queryMatches(m: CompiledHeaderMatcher, query: string): boolean {
  if (query === '') return false;
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    if (percentDecoded(eq < 0 ? part : part.slice(0, eq)) !== m.name) continue;
    const value = eq < 0 ? '' : percentDecoded(part.slice(eq + 1));
    if (m.exact !== null) return value === m.exact;
    if (m.regex !== null) return m.regex.test(value);
    return true;
  }
  return false;
}

/** `%XX` sequences decoded; a string that is not valid percent-encoded UTF-8 stays as is. */
function percentDecoded(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function headerMatches(m: CompiledHeaderMatcher, headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== m.name) continue;
    const value = headers[i + 1];
    if (m.exact !== null) {
      if (value === m.exact) return true;
    } else if (m.regex !== null) {
      if (m.regex.test(value)) return true;
    } else {
      return true; // present
    }
  }
  return false;
}

function compileRoute<C, P>(
  vh: VirtualHost,
  r: Route,
  resolveCluster: (name: string) => C | null,
  compilePolicy: (route: Route) => P,
): CompiledRoute<C, P> {
  const m = r.match;
  let pathKind = PathKind.Prefix;
  let pathValue = m.prefix ?? '';
  let pathRegex: RegExp | null = null;
  if (m.path !== undefined) {
    pathKind = PathKind.Exact;
    pathValue = m.path;
  } else if (m.regex !== undefined) {
    pathKind = PathKind.Regex;
    pathValue = m.regex;
    pathRegex = new RegExp(`^(?:${m.regex})$`); // whole-path match, as Envoy's safe_regex
  }

  const action = r.route;
  const { targets, totalWeight } = compileTargets(action, resolveCluster);

  return {
    name: r.name,
    vhostName: vh.name,
    pathKind,
    pathValue,
    pathRegex,
    methods: m.methods.length > 0 ? new Set(m.methods) : null,
    headerMatchers: m.headers.map(compileHeaderMatcher),
    queryMatchers: m.query_parameters.map(compileHeaderMatcher),
    targets,
    totalWeight,
    prefixRewrite: action?.prefix_rewrite ?? null,
    regexRewrite: action?.regex_rewrite !== undefined ? compileRegexRewrite(action.regex_rewrite) : null,
    mirrors: (action?.request_mirror_policies ?? []).map((m) => ({ cluster: resolveCluster(m.cluster), percent: m.percent })),
    hostRewrite: action?.host_rewrite ?? null,
    timeoutMs: action?.timeout_ms ?? 0,
    grpcTimeoutMax: action?.grpc_timeout_header_max_ms ?? null,
    includeAttemptCount: vh.include_request_attempt_count === true,
    maxRequestBodyBytes: action?.max_request_body_bytes ?? 0,
    clusterNotFoundStatus: action?.cluster_not_found_status ?? 503,
    direct: r.direct_response ? { status: r.direct_response.status, body: r.direct_response.body } : null,
    redirect: r.redirect ? compileRedirect(r.redirect) : null,
    requestHeadersToAdd: r.request_headers_to_add.flatMap((h) => [h.name, headerBytes(h.value)]),
    requestHeadersToRemove: r.request_headers_to_remove.length > 0 ? new Set(r.request_headers_to_remove) : null,
    responseHeadersToAdd: r.response_headers_to_add.flatMap((h) => [h.name, headerBytes(h.value)]),
    responseHeadersToRemove: r.response_headers_to_remove.length > 0 ? new Set(r.response_headers_to_remove) : null,
    policy: compilePolicy(r),
  };
}

function compileHeaderMatcher(h: HeaderMatcher): CompiledHeaderMatcher {
  return {
    name: h.name,
    exact: h.exact ?? null,
    regex: h.regex !== undefined ? new RegExp(`^(?:${h.regex})$`) : null,
  };
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end > 0 ? host.slice(0, end + 1) : host;
  }
  const colon = host.lastIndexOf(':');
  return colon > 0 ? host.slice(0, colon) : host;
}
