// Readers of a set of decoded xDS resources: which RouteConfigurations (RDS),
// ClusterLoadAssignments (EDS) and Secrets (SDS over ADS) the listeners and clusters
// reference, and which of them the set still lacks. The ADS client subscribes to those names (src/main/xds-source.ts)
// and a set is applied only when nothing is missing (make before break); the
// translation (src/xds/translate.ts) uses the same readers for its warming rules. Only
// what a listener serves references anything: not a listener with `bind_to_port: false`,
// nor a filter chain no connection to the listener's own port can select (bindsPort,
// directChains, oneChainTakesAll; the translation reads them the same way).

import { asArr, asObj, asStr, isSet, wrapped, wrappedBool } from './read.js';
import { loadXdsProtos, TypeUrl, type ProtoObject } from './protos.js';
import { sdsServerOf, secretKey } from './sds.js';

/** Decoded resources by name, as received (already decoded from Any). */
export interface XdsResourceSet {
  readonly listeners: ReadonlyMap<string, ProtoObject>;
  /** RouteConfiguration by name. */
  readonly routes: ReadonlyMap<string, ProtoObject>;
  readonly clusters: ReadonlyMap<string, ProtoObject>;
  /** ClusterLoadAssignment by cluster_name. */
  readonly endpoints: ReadonlyMap<string, ProtoObject>;
  /** Secret by key (sds.ts secretKey: the name over ADS; with its server's name from an
   *  SDS server of the bootstrap); absent = none received. */
  readonly secrets?: ReadonlyMap<string, ProtoObject>;
}

/** RDS, EDS and SDS names referenced by the set but not (yet) in it. */
export interface MissingResources {
  readonly routes: string[];
  readonly endpoints: string[];
  readonly secrets: string[];
}

/** False for a listener with `bind_to_port: false` (a BoolValue false, which Go control
 *  planes put on the wire as an empty message): it only receives connections another
 *  listener hands over by original destination (Istio's per-port listeners behind
 *  `virtualOutbound`), which Remora never does. The translation accepts such a listener
 *  and leaves it out of the config (not bound, not served); nothing it names is fetched. */
export function bindsPort(listener: ProtoObject): boolean {
  // Envoy binds only when neither bind_to_port nor the deprecated deprecated_v1.bind_to_port
  // (Istio 1.9's per-port listeners, with its bootstrap allowing the deprecated field) is false.
  const v1 = listener.deprecated_v1 as ProtoObject | undefined;
  return wrappedBool(listener.bind_to_port) !== false && wrappedBool(v1?.bind_to_port) !== false;
}

/**
 * The indexes of the `filter_chains` a connection to the listener's own address and port
 * can be given. Envoy matches `filter_chain_match.destination_port` first: chains naming
 * the connection's port win, chains naming no port are taken only when none names it, and
 * a chain naming another port never matches (FilterChainMatch, listener_components.proto).
 * Remora has no original-destination redirect, so every connection it gets is to the
 * listener's port: the other chains only serve connections redirected to the listener
 * (Istio's `virtualOutbound` and `virtualInbound`), and Remora never sees one.
 */
export function directChains(listener: ProtoObject): number[] {
  const port = Number(asObj(asObj(listener.address)?.socket_address)?.port_value ?? 0);
  const ports = asArr(listener.filter_chains).map((c) => wrapped(asObj(asObj(c)?.filter_chain_match)?.destination_port));
  const own = ports.some((p) => p === port);
  return ports.flatMap((p, i) => ((own ? p === port : p === undefined) ? [i] : []));
}

/** Whether the listener's one chain for its port (directChains) takes every connection:
 *  its filter_chain_match names nothing but that port. Its default_filter_chain is then
 *  never used, in Envoy too. (Two such chains would overlap: validation rejects them.) */
export function oneChainTakesAll(listener: ProtoObject): boolean {
  const direct = directChains(listener);
  if (direct.length !== 1) return false;
  const m = asObj(asObj(asArr(listener.filter_chains)[direct[0]])?.filter_chain_match) ?? {};
  return Object.entries(m).every(([k, v]) => k === 'destination_port' || (k === 'source_type' && v === 'ANY') || !isSet(v));
}

/** The filter chains a listener serves (directChains, then its default_filter_chain
 *  unless oneChainTakesAll); none when it does not bind its port (bindsPort). */
function servedChains(listener: ProtoObject): unknown[] {
  if (!bindsPort(listener)) return [];
  const chains = asArr(listener.filter_chains);
  const served = directChains(listener).map((i) => chains[i]);
  return oneChainTakesAll(listener) ? served : [...served, listener.default_filter_chain];
}

/** RDS route config names a listener references (its HttpConnectionManager's `rds`),
 *  also for an api_listener. Only the chains it serves count (servedChains): a listener
 *  with `bind_to_port: false` references none, since it is accepted and not served, and
 *  its route configurations are not subscribed to. Listeners that do not decode
 *  reference nothing. */
export function referencedRoutes(listener: ProtoObject): string[] {
  const anys: unknown[] = [];
  const api = asObj(listener.api_listener);
  if (api !== undefined) anys.push(api.api_listener);
  for (const chain of servedChains(listener)) {
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
  const names = new Set<string>();
  for (const c of clusters) {
    if (c.type !== 'EDS') continue;
    const name = edsName(c);
    if (name !== '') names.add(name);
  }
  return [...names];
}

/** The transport sockets of a listener (those of the chains it serves: servedChains) or
 *  of a cluster (its own, or the one an upstream PROXY protocol socket wraps, and those of
 *  its transport_socket_matches). */
function transportSockets(resource: ProtoObject): unknown[] {
  const sockets = servedChains(resource).map((c) => asObj(c)?.transport_socket);
  const own = asObj(resource.transport_socket);
  if (own !== undefined) sockets.push(own);
  for (const m of asArr(resource.transport_socket_matches)) sockets.push(asObj(m)?.transport_socket);
  return sockets;
}

/** The keys (secretKey, sds.ts) of the Secrets a listener's or cluster's TLS contexts
 *  fetch (`*_sds_secret_config(s)`): over ADS, or from an SDS server an api_config_source
 *  names. Undecodable ones name nothing. */
export function referencedSecrets(resource: ProtoObject): string[] {
  const names: string[] = [];
  const add = (cfg: unknown): void => {
    const c = asObj(cfg);
    const name = asStr(c?.name);
    const server = sdsServerOf(c?.sds_config);
    if (name === undefined || name === '' || server === undefined) return;
    const key = secretKey(server, name);
    if (!names.includes(key)) names.push(key);
  };
  const protos = loadXdsProtos();
  const pending = transportSockets(resource);
  while (pending.length > 0) {
    const tc = asObj(asObj(pending.pop())?.typed_config);
    if (tc === undefined || !(tc.value instanceof Uint8Array)) continue;
    let msg: ProtoObject;
    try {
      msg = protos.decodeAny({ type_url: String(tc.type_url), value: tc.value }).message;
    } catch {
      continue; // translateXds rejects it
    }
    if (tc.type_url === TypeUrl.UpstreamProxyProtocol) pending.push(msg.transport_socket);
    const common = asObj(msg.common_tls_context);
    if (common === undefined) continue;
    for (const cfg of asArr(common.tls_certificate_sds_secret_configs)) add(cfg);
    add(common.validation_context_sds_secret_config);
    add(asObj(common.combined_validation_context)?.validation_context_sds_secret_config);
  }
  return names;
}

/** The Secret keys of every listener and cluster of the set (see referencedSecrets). */
export function secretNames(set: Pick<XdsResourceSet, 'listeners' | 'clusters'>): string[] {
  return [...new Set([...set.listeners.values(), ...set.clusters.values()].flatMap((r) => referencedSecrets(r)))];
}

/** What the set references but lacks. A caller applies a set only when the lists are
 *  empty (make before break: a new listener or cluster waits for what it references). */
export function missingResources(set: XdsResourceSet): MissingResources {
  const routes = [...set.listeners.values()].flatMap((l) => referencedRoutes(l)).filter((n) => !set.routes.has(n));
  const endpoints = edsClusters(set.clusters.values()).filter((n) => !set.endpoints.has(n));
  const secrets = secretNames(set).filter((n) => set.secrets?.has(n) !== true);
  return { routes: [...new Set(routes)], endpoints, secrets };
}
