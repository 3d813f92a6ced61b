// Readers of a set of decoded xDS resources: which RouteConfigurations (RDS) and
// ClusterLoadAssignments (EDS) the listeners and clusters reference, and which of them
// the set still lacks. The ADS client subscribes to those names (src/main/xds-source.ts)
// and a set is applied only when nothing is missing (make before break); the
// translation (src/xds/translate.ts) uses the same readers for its warming rules.

import { asArr, asObj, asStr } from './read.js';
import { loadXdsProtos, TypeUrl, type ProtoObject } from './protos.js';

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

/** The ClusterLoadAssignment name an EDS cluster waits for: `eds_cluster_config.service_name`,
 *  or the cluster's name. */
export function edsName(c: ProtoObject): string {
  const service = asStr(asObj(c.eds_cluster_config)?.service_name);
  return service !== undefined && service !== '' ? service : (asStr(c.name) ?? '');
}

/** The ClusterLoadAssignment names EDS clusters wait for (see edsName). */
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
