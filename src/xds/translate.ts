// Envoy xDS v3 resources (decoded by src/xds/protos.ts) → Remora's config model.
// The supported subset of Listener, RouteConfiguration, Cluster and ClusterLoadAssignment
// is turned into RAW config data — the same shape a config file has — which then goes
// through validateConfig, so defaults and checks are exactly those of a file. A field
// outside the subset that is SET is a rejection naming its path (never half-applied),
// unless it cannot change what Remora does: then it is accepted, docs/xds.md says why it
// has no effect, and the result counts it per field (noEffect). validateConfig's errors
// are mapped back to the resource and field they came from. Proto shapes stop here: nothing downstream sees them.
// docs/xds.md lists the supported fields, the rejections and the warming rules. The
// parts, one per resource type: translate-listener.ts (with translate-listener-hcm.ts and
// translate-listener-tcp.ts), translate-route.ts (with
// translate-route-match.ts and translate-route-retry.ts), translate-cluster.ts,
// translate-endpoints.ts, and the pieces they share: translate-tls.ts, translate-protocol.ts,
// translate-rbac.ts, translate-ratelimit.ts; translate-context.ts reads (paths,
// rejections), translate-fields.ts writes (marks).

import { validateConfig } from '../config/validate.js';
import { MAX_ENDPOINTS } from '../shared/limits.js';
import type { ConfigError, RemoraConfig } from '../config/types.js';
import { REMORA_METADATA } from './names.js';
import { TypeUrl } from './protos.js';
import { asArr, asObj, type Obj } from './read.js';
import type { XdsResourceSet } from './resources.js';
import { translateCluster, type ClusterPart } from './translate-cluster.js';
import { checkName, Ctx, formatRejection, root, sub, type XdsRejection } from './translate-context.js';
import { translateEndpoints, type EndpointsPart } from './translate-endpoints.js';
import { addMarks, Fields, type Mark } from './translate-fields.js';
import { translateListener, type ListenerPart } from './translate-listener.js';
import type { RouteSource } from './translate-listener-chains.js';
import { checkSecret } from './translate-secret.js';
import { parseSecretKey } from './sds.js';
import { bootstrapBaseFields } from '../config/bootstrap-base.js';
import { attachRoutes, translateRouteConfig, type RoutePart } from './translate-route.js';

export { formatRejection, type XdsRejection } from './translate-context.js';

/** `warming`: listeners and clusters left out of `config` because what they reference
 *  has not arrived (a RouteConfiguration, a ClusterLoadAssignment, a Secret). `noEffect`:
 *  per field accepted without effect (Ctx.noEffect names them), how many resources of the
 *  set have it set (each resource counted once), sorted by field; empty when none. */
export type XdsTranslateResult =
  | {
    ok: true;
    config: RemoraConfig;
    warming: { readonly listeners: readonly string[]; readonly clusters: readonly string[] };
    noEffect: ReadonlyMap<string, number>;
    /** What an endpoint-only update of this set needs (translateEndpointUpdate). */
    eds: EdsBasis;
    /** Listeners accepted and not bound (bind_to_port: false; docs/xds.md "Traffic
     *  capture"), by name: in no config. */
    notBound: readonly string[];
    /** How long what references each RouteConfiguration / ClusterLoadAssignment waits for
     *  it (initial_fetch_timeout, ms), when it does not wait as long as it takes. */
    fetchTimeouts: { readonly routes: ReadonlyMap<string, number>; readonly endpoints: ReadonlyMap<string, number> };
  }
  | { ok: false; errors: XdsRejection[] };

/** The EDS clusters of a translated set, by the ClusterLoadAssignment they read (raw,
 *  before endpoints), with the bootstrap's root fields: enough to translate and validate
 *  a new version of a ClusterLoadAssignment without translating the whole set again. */
export interface EdsBasis {
  readonly root: Obj;
  readonly clusters: ReadonlyMap<string, readonly ClusterPart[]>;
}

export interface XdsTranslateOptions {
  /**
   * Envoy's ADS semantics (the sidecar's client, src/main/xds-source.ts; docs/xds.md "ADS
   * semantics"): a route or tcp_proxy may name a cluster the set lacks (its requests
   * answer 503 NC), so a listener waits only for its RouteConfiguration, never for a
   * cluster; and a set without listeners is valid (clusters sent first), its config then
   * has none. Without it (the default, what the reference control plane's checks and the
   * translation tests use) an unknown cluster is a rejection, as in a file.
   */
  readonly ads?: boolean;
  /** Where Secrets' inline certificates are written (xds.sds_dir; src/xds/sds.ts): the
   *  paths the translated `tls` blocks name. Default: none (only file-based Secrets). */
  readonly sdsDir?: string;
  /** The bootstrap's SDS servers by name (xds.sds_servers): an SdsSecretConfig may name
   *  one in its api_config_source; its Secrets are in the set keyed by secretKey (sds.ts),
   *  checked by the stream that received them. Default: none. */
  readonly sdsServers?: ReadonlySet<string>;
  /** RouteConfigurations and ClusterLoadAssignments whose initial_fetch_timeout expired
   *  before they arrived: while missing, a listener reading one serves without routes
   *  (404 NR) and a cluster reading one has no endpoints (503 UH), as in Envoy. */
  readonly gaveUp?: { readonly routes: ReadonlySet<string>; readonly endpoints: ReadonlySet<string> };
}

/** Virtual hosts that answer every request 404 NR, as Envoy's empty route configuration
 *  does: one route named `name` that no request can match (a path never has a space). */
function noRouteVhosts(name: string, why: string): Obj[] {
  return [{ name, domains: ['*'], routes: [{ name, match: { path: `/ (${why})` }, direct_response: { status: 404 } }] }];
}

/** What a listener serves when its RouteConfiguration's initial_fetch_timeout expired
 *  before it arrived. */
const NO_ROUTES_VHOSTS = noRouteVhosts('remora.routes-not-received', 'initial_fetch_timeout expired');

/** What a listener serves whose route table has no virtual hosts. */
const EMPTY_ROUTE_TABLE_VHOSTS = noRouteVhosts('remora.empty-route-table', 'route table without virtual hosts');

/** Validation-only stand-ins for what is still warming (never in a returned config). */
const PLACEHOLDER_VHOSTS = [{ name: 'warming', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 503 } }] }];
const PLACEHOLDER_ENDPOINTS = [{ address: '127.0.0.1', port: 1 }];
/** With `ads`, a set without listeners is validated with this one, then left out. */
const PLACEHOLDER_LISTENER = { name: 'remora.no-listener-yet', address: '127.0.0.1', port: 0, virtual_hosts: PLACEHOLDER_VHOSTS };

/**
 * Builds the raw Remora config from `base` (the bootstrap file's non-xDS root fields:
 * workers, admin, probes, drain, worker_limits, stats; other keys of `base` are not
 * read) plus the resources, and validates it with validateConfig.
 *
 * Rejections are real problems only (a NACK). Missing RDS/EDS resources are not: a
 * listener whose route configuration has not arrived, an EDS cluster whose endpoints
 * have not, and a listener routing to such a cluster are validated with stand-ins and
 * left OUT of the returned config. Such a partial config (possibly without listeners)
 * is not meant to be applied: check missingResources(set) (src/xds/resources.ts) first.
 */
export function translateXds(base: Record<string, unknown>, set: XdsResourceSet, opts: XdsTranslateOptions = {}): XdsTranslateResult {
  const ads = opts.ads === true;
  const secrets = set.secrets ?? new Map<string, Obj>();
  const ctx = new Ctx({ secrets, dir: opts.sdsDir ?? '', servers: opts.sdsServers ?? new Set() });
  for (const [key, secret] of secrets) if (parseSecretKey(key).server === null) checkSecret(ctx, key, secret);
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
    const out = new Fields({ ...c.raw }, marks, `clusters[${i}]`);
    addMarks(marks, out.at, c.marks);
    if (c.eds !== undefined) {
      const cla = assignments.get(c.eds);
      if (cla === undefined && opts.gaveUp?.endpoints.has(c.eds) === true) out.raw.endpoints = [];
      else if (cla === undefined) {
        waitingClusters.add(c.name);
        out.raw.endpoints = PLACEHOLDER_ENDPOINTS;
      } else out.attach('endpoints', cla.endpoints, cla.marks);
    }
    return out.raw;
  });
  for (const c of clusters) if (ctx.waitingForSecrets.has(`${TypeUrl.Cluster} ${c.name}`)) waitingClusters.add(c.name);
  const waitingListeners = new Set<string>();
  for (const l of listeners) if (ctx.waitingForSecrets.has(`${TypeUrl.Listener} ${l.name}`)) waitingListeners.add(l.name);
  const rawListeners = listeners.map((l, i) => {
    const out = new Fields({ ...l.raw }, marks, `listeners[${i}]`);
    addMarks(marks, out.at, l.marks);
    if (l.route.kind === 'tcp') {
      // No routes; it waits for the endpoints of the clusters its chains forward to
      // (with `ads` it does not: a connection to a cluster still warming is refused, NC).
      if (!ads && l.route.clusters.some((c) => waitingClusters.has(c))) waitingListeners.add(l.name);
      return out.raw;
    }
    // The listener's own routes (none when only chains picked by server name serve it),
    // then each chain's; virtual host and route names are made unique across them.
    const names = { vhosts: new Set<string>(), routes: new Set<string>() };
    const tables: [Fields, RouteSource | { kind: 'none' }, string | null][] = [[out, l.route, null]];
    asArr(out.raw.http_filter_chains).forEach((c, k) => tables.push([new Fields(asObj(c) ?? {}, marks, `${out.at}.http_filter_chains[${k}]`), l.chainRoutes[k], String(asObj(c)?.name)]));
    for (const [at, source, chain] of tables) {
      if (source.kind === 'none') continue;
      const table = routeTable(ctx, l, source, routeConfigs, opts.gaveUp);
      if (table === 'waiting') waitingListeners.add(l.name);
      else if (!ads && table.clusters.some((c) => waitingClusters.has(c))) waitingListeners.add(l.name);
      const vhosts = table === 'waiting' ? structuredClone(PLACEHOLDER_VHOSTS) : table.vhosts;
      qualifyAcrossTables(vhosts, names, chain);
      at.attach('virtual_hosts', vhosts, table === 'waiting' ? [] : table.marks);
    }
    return out.raw;
  });
  if (ctx.errors.length > 0) return { ok: false, errors: ctx.errors };

  const raw: Obj = bootstrapBaseFields(base);
  // The bootstrap's tracing block wins; else an HttpConnectionManager's OpenTelemetry
  // provider says where spans go. Without either, listeners' tracing settings (Istio's
  // Zipkin blocks, say) have nowhere to send spans and are left out.
  const provider = ctx.tracingProvider;
  if (raw.tracing === undefined && provider !== null) {
    const otlp: Obj = { cluster: provider.cluster, protocol: provider.protocol };
    if (provider.timeoutMs !== undefined && provider.timeoutMs > 0) otlp.timeout_ms = provider.timeoutMs;
    raw.tracing = provider.serviceName !== undefined ? { service_name: provider.serviceName, otlp } : { otlp };
  }
  if (raw.tracing === undefined) {
    for (const l of rawListeners) {
      delete l.tracing;
      const vhosts = [...asArr(l.virtual_hosts), ...asArr(l.http_filter_chains).flatMap((c) => asArr(asObj(c)?.virtual_hosts))];
      for (const vh of vhosts) for (const r of asArr(asObj(vh)?.routes)) delete (asObj(r) ?? {}).tracing;
    }
  }
  const noListeners = ads && rawListeners.length === 0;
  raw.listeners = noListeners ? [PLACEHOLDER_LISTENER] : rawListeners;
  raw.clusters = rawClusters;
  const result = validateConfig(raw, { allowMissingClusters: ads });
  if (!result.ok) return { ok: false, errors: dedupe(result.errors.map((e) => locate(e, marks))) };
  const warming = { listeners: [...waitingListeners], clusters: [...waitingClusters] };
  const noEffect = ctx.noEffectCounts();
  const byAssignment = new Map<string, ClusterPart[]>();
  for (const c of clusters) if (c.eds !== undefined) byAssignment.set(c.eds, [...(byAssignment.get(c.eds) ?? []), c]);
  const eds: EdsBasis = { root: bootstrapBaseFields(base), clusters: byAssignment };
  if (waitingListeners.size === 0 && waitingClusters.size === 0 && !noListeners) return { ...result, warming, noEffect, eds, notBound: [...ctx.unbound], fetchTimeouts: ctx.fetchTimeouts };
  const c = result.config;
  return {
    ok: true,
    noEffect,
    eds,
    notBound: [...ctx.unbound],
    fetchTimeouts: ctx.fetchTimeouts,
    config: Object.freeze({
      ...c,
      listeners: Object.freeze(noListeners ? [] : c.listeners.filter((l) => !waitingListeners.has(l.name))),
      clusters: Object.freeze(c.clusters.filter((cl) => !waitingClusters.has(cl.name))),
    }),
    warming,
  };
}

/** The virtual hosts a listener's route source gives (attachRoutes), with their marks and
 *  the clusters they name; 'waiting' while its RDS configuration has not arrived. One whose
 *  initial_fetch_timeout expired, or a route table without virtual hosts (Envoy
 *  Gateway's, before a route attaches), answers every request 404 NR, as in Envoy. */
function routeTable(ctx: Ctx, l: ListenerPart, source: RouteSource, routeConfigs: ReadonlyMap<string, RoutePart>, gaveUp: XdsTranslateOptions['gaveUp']):
  { vhosts: Obj[]; marks: Mark[]; clusters: readonly string[] } | 'waiting' {
  const part = source.kind === 'inline' ? translateRouteConfig(ctx, source.config, source.loc) : routeConfigs.get(source.name);
  if (part === undefined && source.kind === 'rds' && gaveUp?.routes.has(source.name) === true) return { vhosts: structuredClone(NO_ROUTES_VHOSTS), marks: [], clusters: [] };
  if (part === undefined) return 'waiting';
  if (part.vhosts.length === 0) return { vhosts: structuredClone(EMPTY_ROUTE_TABLE_VHOSTS), marks: [], clusters: [] };
  return { ...attachRoutes(ctx, l, part), clusters: part.clusters };
}

/** Virtual host and route names are unique across a listener in Remora (state is kept by
 *  route name), not in Envoy across its chains' route configurations: a chain's name
 *  already used by the listener's own routes or an earlier chain's becomes
 *  `<chain>/<name>`. `chain` null: the listener's own, recorded as they are. */
function qualifyAcrossTables(vhosts: readonly Obj[], names: { vhosts: Set<string>; routes: Set<string> }, chain: string | null): void {
  for (const vh of vhosts) {
    if (typeof vh.name === 'string' && chain !== null && names.vhosts.has(vh.name)) vh.name = `${chain}/${vh.name}`;
    if (typeof vh.name === 'string') names.vhosts.add(vh.name);
    for (const r of asArr(vh.routes).map((x) => asObj(x) ?? {})) {
      if (typeof r.name === 'string' && chain !== null && names.routes.has(r.name)) r.name = `${chain}/${r.name}`;
      if (typeof r.name === 'string') names.routes.add(r.name);
    }
  }
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

/** A new version of each changed ClusterLoadAssignment (`before`: the version in
 *  effect). */
export type EndpointChanges = ReadonlyMap<string, { readonly before: Obj; readonly after: Obj }>;

export type EndpointUpdateResult =
  | {
    ok: true;
    /** `current` with the clusters that read a changed assignment replaced. */
    config: RemoraConfig;
    /** Those clusters' names. */
    clusters: readonly string[];
    /** The noEffect counts of the whole set after the update. */
    noEffect: ReadonlyMap<string, number>;
  }
  | { ok: false; errors: XdsRejection[] };

/**
 * An update that changes only ClusterLoadAssignments of a set translated before (its
 * `eds` basis, its config `current` and noEffect counts): translates and validates just
 * those assignments and the clusters that read them, with the same rules and errors as
 * translateXds (the endpoint cap counts every cluster's endpoints). Work is proportional
 * to the change, not to the set.
 */
export function translateEndpointUpdate(
  basis: EdsBasis,
  current: RemoraConfig,
  noEffect: ReadonlyMap<string, number>,
  changes: EndpointChanges,
): EndpointUpdateResult {
  const ctx = new Ctx({ secrets: new Map(), dir: '' });
  const before = new Ctx({ secrets: new Map(), dir: '' });
  const marks: Mark[] = [];
  const rawClusters: Obj[] = [];
  for (const [key, change] of changes) {
    const loc = root(TypeUrl.ClusterLoadAssignment, key);
    const cla = change.after;
    if (cla.cluster_name !== undefined && cla.cluster_name !== key) {
      ctx.reject(sub(loc, 'cluster_name'), `"${String(cla.cluster_name)}" does not match the resource name "${key}"`);
    }
    const part = translateEndpoints(ctx, cla, loc);
    translateEndpoints(before, change.before, loc);
    for (const c of basis.clusters.get(key) ?? []) {
      const out = new Fields({ ...c.raw }, marks, `clusters[${rawClusters.length}]`);
      addMarks(marks, out.at, c.marks);
      out.attach('endpoints', part.endpoints, part.marks);
      rawClusters.push(out.raw);
    }
  }
  if (ctx.errors.length > 0) return { ok: false, errors: ctx.errors };
  const counts = new Map(noEffect);
  for (const [field, n] of before.noEffectCounts()) counts.set(field, (counts.get(field) ?? 0) - n);
  for (const [field, n] of ctx.noEffectCounts()) counts.set(field, (counts.get(field) ?? 0) + n);
  const adjusted = new Map([...counts].filter(([, n]) => n > 0));
  if (rawClusters.length === 0) return { ok: true, config: current, clusters: [], noEffect: adjusted };
  const result = validateConfig({ ...basis.root, listeners: [PLACEHOLDER_LISTENER], clusters: rawClusters }, { allowMissingClusters: true });
  if (!result.ok) return { ok: false, errors: dedupe(result.errors.map((e) => locate(e, marks))) };
  const replaced = new Map(result.config.clusters.map((c) => [c.name, c]));
  const clusters = current.clusters.map((c) => replaced.get(c.name) ?? c);
  const total = clusters.reduce((n, c) => n + c.endpoints.length, 0);
  if (total > MAX_ENDPOINTS) {
    const errors = [...changes.keys()].map((key) => ({
      typeUrl: TypeUrl.ClusterLoadAssignment, name: key, path: 'endpoints',
      message: `at most ${MAX_ENDPOINTS} endpoints over all clusters (this update makes ${total})`,
    }));
    return { ok: false, errors };
  }
  return { ok: true, config: Object.freeze({ ...current, clusters: Object.freeze(clusters) }), clusters: [...replaced.keys()], noEffect: adjusted };
}

/** What `set` changes from `applied` when it changes only ClusterLoadAssignments that
 *  `applied` has (by object: the xDS client keeps a resource resent unchanged as the same
 *  object); null when it changes anything else (a listener, route configuration, cluster
 *  or secret, or which assignments exist). */
export function endpointChanges(applied: XdsResourceSet, set: XdsResourceSet): EndpointChanges | null {
  const same = (a: ReadonlyMap<string, Obj> | undefined, b: ReadonlyMap<string, Obj> | undefined): boolean => {
    if (a === b) return true;
    if (a === undefined || b === undefined || a.size !== b.size) return (a?.size ?? 0) === 0 && (b?.size ?? 0) === 0;
    for (const [k, v] of a) if (b.get(k) !== v) return false;
    return true;
  };
  if (!same(applied.listeners, set.listeners) || !same(applied.routes, set.routes) || !same(applied.clusters, set.clusters) || !same(applied.secrets, set.secrets)) {
    return null;
  }
  if (applied.endpoints.size !== set.endpoints.size) return null;
  const changes = new Map<string, { before: Obj; after: Obj }>();
  for (const [key, before] of applied.endpoints) {
    const after = set.endpoints.get(key);
    if (after === undefined) return null;
    if (after !== before) changes.set(key, { before, after });
  }
  return changes;
}
