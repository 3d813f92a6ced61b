// TCP listeners (part of src/xds/translate-listener.ts): a Listener whose filter chains all
// end in `envoy.filters.network.tcp_proxy` becomes a Remora TCP listener. Each of its
// `filter_chains` becomes one of the listener's `filter_chains` (name, and a match on the
// TLS ClientHello: server_names, transport_protocol, application_protocols), its
// `default_filter_chain` the listener's own `tcp_proxy`; each TcpProxy maps its cluster or
// weighted clusters, idle timeout, connect attempts and connection duration, and its
// access log becomes the listener's (one per listener). Istio's network filters before the
// tcp_proxy (metadata exchange, stats, authn) and an RBAC filter without rules have no
// effect on a connection Remora does not terminate, and are accepted; a chain's
// DownstreamTlsContext is terminated by Remora (the chain's `tls`); other filters,
// tunnelling and matches on addresses or ports Remora cannot see are rejected by path. Only the chains that take connections to the listener's own port are
// read (the caller drops those for other destination ports, which only redirected
// connections reach). docs/xds.md, "TCP listeners", has the table and the reasons.

import { TCP_PROXY_FILTER_NAME } from './names.js';
import { TypeUrl } from './protos.js';
import { asArr, asNum, asObj, asStr, fromStruct, isSet, wrapped, type Obj } from './read.js';
import { oneChainTakesAll } from './resources.js';
import { sub, type Ctx, type Loc } from './translate-context.js';
import { Fields, type Part } from './translate-fields.js';
import { istioNullVm } from './translate-listener-hcm.js';
import { accessLogOf } from './translate-access-log.js';
import { downstreamTls, rawBufferSocket } from './translate-tls.js';

/** Which chain-picking listener filters a listener has that matter: the HTTP inspector
 *  (the TLS inspector's work Remora does whenever a chain needs it). */
export interface Inspectors {
  readonly http: boolean;
}

/** What the caller (translate-listener.ts) knows of the listener's chains. */
export interface TcpChains {
  /** The listener's port, which a chain's destination_port may name (then it changes nothing). */
  readonly port: number;
  /** The indexes of the chains that take connections to that port (directChains in
   *  resources.ts): only these are translated; the others are never served. */
  readonly direct: readonly number[];
  readonly inspectors: Inspectors;
}

/** A TCP listener's chains and defaults, written into the raw listener. */
export interface TcpListenerPart {
  /** Clusters its tcp_proxy filters reference (a listener waits for their endpoints). */
  readonly clusters: string[];
  /** The access log its tcp_proxy filters name (all the same), if any. */
  readonly log?: Part;
  readonly logLoc?: Loc;
  /** Whether every connection gets a chain: a default chain, or one chain without a match. */
  readonly everyConnectionTaken: boolean;
  /** Whether a chain matches on the TLS ClientHello (which Remora then reads first). */
  readonly readsClientHello: boolean;
}

/** Network filters accepted before a tcp_proxy, having no effect there (docs/xds.md), by
 *  their usual names (those counted by Ctx.noEffect). */
type InertNetworkFilter = 'istio.metadata_exchange' | 'istio.stats' | 'istio_authn' | 'envoy.filters.network.rbac';

/** Istio's network filters by type URL (directly, or in a TypedStruct). Metadata exchange
 *  acts only on a connection whose TLS Remora terminates with ALPN istio-peer-exchange,
 *  which a TCP chain never is; stats and authn only record. */
const ISTIO_NETWORK_FILTERS: Readonly<Record<string, InertNetworkFilter>> = {
  'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange': 'istio.metadata_exchange',
  'type.googleapis.com/stats.PluginConfig': 'istio.stats',
  'type.googleapis.com/io.istio.network.authn.Config': 'istio_authn',
};
const NETWORK_WASM = 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm';

/** FilterChainMatch ranges of addresses → the match's fields of the same meaning. */
const RANGE_MATCHES: readonly (readonly [string, string])[] = [
  ['prefix_ranges', 'destination_prefix_ranges'], ['direct_source_prefix_ranges', 'direct_source_prefix_ranges'], ['source_prefix_ranges', 'source_prefix_ranges'],
];
/** FilterChainMatch fields Envoy documents as not implemented. */
const UNIMPLEMENTED_MATCHES = ['address_suffix', 'suffix_len'];
const SOURCE_TYPES: Readonly<Record<string, string>> = { ANY: 'any', SAME_IP_OR_LOOPBACK: 'same_ip_or_loopback', EXTERNAL: 'external' };
/** Application protocols the HTTP inspector reports for plaintext connections. */
const SNIFFED_PROTOCOLS = ['http/1.0', 'http/1.1', 'h2c'];
/** TcpProxy fields rejected with a reason of their own. */
const TCP_PROXY_REJECTED: Readonly<Record<string, string>> = {
  tunneling_config: 'is not supported: Remora forwards the connection\'s bytes as they are (no HTTP CONNECT or POST tunnel to the upstream)',
  on_demand: 'is not supported: Remora knows every cluster from CDS before a connection uses it (no on-demand discovery)',
  metadata_match: 'is not supported: Remora has no subset load balancing',
  downstream_idle_timeout: 'is not supported: Remora has one idle timeout for both directions (idle_timeout)',
  upstream_idle_timeout: 'is not supported: Remora has one idle timeout for both directions (idle_timeout)',
};

/**
 * The TCP listener's `filter_chains` (those of `chains.direct`) and `tcp_proxy` (the
 * default chain), into `out` (the raw listener, which has its name, address and port).
 */
export function tcpListener(ctx: Ctx, l: Obj, loc: Loc, out: Fields, { port, direct, inspectors }: TcpChains): TcpListenerPart {
  const clusters: string[] = [];
  const logs: { part: Part | undefined; loc: Loc }[] = [];
  const chains: Part[] = [];
  let readsClientHello = false;
  const all = asArr(l.filter_chains);
  for (const i of direct) {
    const cl = sub(loc, `filter_chains[${i}]`);
    const chain = asObj(all[i]) ?? {};
    const fc = new Fields().here(cl);
    // A name is optional in Envoy and required in Remora: an unnamed chain is named by its place.
    fc.set('name', isSet(chain.name) ? chain.name : `filter_chains[${i}]`, sub(cl, 'name'));
    const m = asObj(chain.filter_chain_match);
    if (m !== undefined) {
      if (chainMatch(ctx, m, sub(cl, 'filter_chain_match'), port, inspectors, fc.nest('match').here(sub(cl, 'filter_chain_match')))) readsClientHello = true;
    } else fc.mark('.match', sub(cl, 'filter_chain_match')); // the default ({}, any) stands for it
    const body = chainBody(ctx, chain, cl, clusters, fc);
    if (body !== undefined) {
      fc.attach('tcp_proxy', body.proxy.raw, body.proxy.marks);
      logs.push({ part: body.log, loc: body.logLoc });
    }
    chains.push(fc);
  }
  if (chains.length > 0) out.list('filter_chains', chains);
  // One chain without a match takes every connection: the default chain is then never
  // used, by Envoy or Remora (Istio's virtual listeners, whose chain for their own port
  // blackholes what reaches them directly).
  const oneTakesAll = oneChainTakesAll(l);
  let d = asObj(l.default_filter_chain);
  if (d !== undefined && oneTakesAll) {
    ctx.noEffect(loc, 'Listener.default_filter_chain (never used, not served)');
    d = undefined;
  }
  if (d !== undefined) {
    // Its filter_chain_match is ignored, by Envoy and by Remora: it takes what no chain takes.
    if (isSet(d.filter_chain_match)) ctx.noEffect(loc, 'Listener.default_filter_chain.filter_chain_match');
    const body = chainBody(ctx, d, sub(loc, 'default_filter_chain'), clusters, null);
    if (body !== undefined) {
      out.attach('tcp_proxy', body.proxy.raw, body.proxy.marks);
      logs.push({ part: body.log, loc: body.logLoc });
    }
  }
  // One access log per listener, for every connection: the chains must agree on it.
  const first = logs[0];
  for (const x of logs.slice(1)) {
    if (JSON.stringify(x.part?.raw) !== JSON.stringify(first.part?.raw)) {
      ctx.reject(x.loc, `differs from ${first.loc.path}: Remora writes one access log per listener, for every connection (give every tcp_proxy the same one, or none)`);
    }
  }
  return { clusters, everyConnectionTaken: oneTakesAll || d !== undefined, readsClientHello, ...(first?.part !== undefined ? { log: first.part, logLoc: first.loc } : {}) };
}

/** A chain's FilterChainMatch → the Remora chain's `match` (`out`); true when it picks
 *  connections by their ClientHello (server names, transport, application protocols). */
function chainMatch(ctx: Ctx, m: Obj, ml: Loc, port: number, inspectors: Inspectors, out: Fields): boolean {
  ctx.only(m, ml, ['server_names', 'transport_protocol', 'application_protocols', 'destination_port', 'source_type', 'source_ports', ...RANGE_MATCHES.map(([k]) => k), ...UNIMPLEMENTED_MATCHES]);
  for (const k of UNIMPLEMENTED_MATCHES) if (isSet(m[k])) ctx.reject(sub(ml, k), 'is not supported (Envoy does not implement it either)');
  for (const [k, to] of RANGE_MATCHES) {
    const ranges = asArr(m[k]).map((r, i) => cidrRange(ctx, asObj(r) ?? {}, sub(ml, `${k}[${i}]`)));
    if (ranges.length > 0) out.set(to, ranges, sub(ml, k));
  }
  const ports = asArr(m.source_ports).map(Number);
  if (ports.length > 0) out.set('source_ports', ports, sub(ml, 'source_ports'));
  if (isSet(m.source_type) && m.source_type !== 'ANY') {
    const type = SOURCE_TYPES[String(m.source_type)];
    if (type === undefined) ctx.reject(sub(ml, 'source_type'), `${String(m.source_type)} is not a source type (ANY, SAME_IP_OR_LOOPBACK or EXTERNAL)`);
    else out.set('source_type', type, sub(ml, 'source_type'));
  }
  // Only chains naming the listener's own port, or none, are translated (directChains):
  // every connection a listener gets is to that port, so naming it matches them all.
  if (wrapped(m.destination_port) === port) ctx.noEffect(ml, 'Listener.filter_chains.filter_chain_match.destination_port');
  const names = asArr(m.server_names);
  if (names.length > 0) out.set('server_names', names, sub(ml, 'server_names'));
  const transport = asStr(m.transport_protocol);
  if (isSet(transport)) out.set('transport_protocol', transport, sub(ml, 'transport_protocol'));
  const alpn = asArr(m.application_protocols).map(String);
  if (alpn.length > 0) {
    out.set('application_protocols', alpn, sub(ml, 'application_protocols'));
    if (inspectors.http && transport !== 'tls' && alpn.some((p) => SNIFFED_PROTOCOLS.includes(p))) {
      ctx.reject(sub(ml, 'application_protocols'), `${JSON.stringify(alpn)} with the HTTP inspector matches plaintext HTTP by sniffing it, which Remora does not do: `
        + 'it reads application protocols from the TLS ClientHello only (add transport_protocol: tls, or drop the HTTP protocol ids)');
    }
  }
  return names.length > 0 || isSet(transport) || alpn.length > 0;
}

/** A CidrRange → `address/len` (validation checks it). */
function cidrRange(ctx: Ctx, r: Obj, loc: Loc): string {
  ctx.only(r, loc, ['address_prefix', 'prefix_len']);
  const len = wrapped(r.prefix_len);
  return `${asStr(r.address_prefix) ?? ''}/${len ?? 0}`;
}

/** A chain's transport socket and network filters: the tcp_proxy, last, with its access
 *  log; undefined when the chain has none that translates. */
function chainBody(ctx: Ctx, chain: Obj, cl: Loc, clusters: string[], out: Fields | null): { proxy: Fields; log?: Part; logLoc: Loc } | undefined {
  ctx.only(chain, cl, ['name', 'filter_chain_match', 'filters', 'transport_socket', 'metadata']);
  ctx.extensions(chain, cl, [], `Listener.${cl.path.replace(/\[\d+\]$/, '')}.metadata`);
  const tl = sub(cl, 'transport_socket');
  if (chain.transport_socket !== undefined && !rawBufferSocket(ctx, chain.transport_socket, tl)) {
    // A DownstreamTlsContext: Remora terminates TLS on the chain (`out`: a filter chain's
    // fields; the default chain cannot, and is rejected).
    if (out === null) {
      ctx.reject(tl, 'TLS termination on the default_filter_chain is not supported: terminate it on a filter chain (one without filter_chain_match takes every connection)');
    } else {
      const tls = downstreamTls(ctx, chain.transport_socket, tl);
      if (tls?.alpn !== undefined) ctx.reject(tls.alpn.loc, 'is not supported on a tcp_proxy chain: Remora\'s TLS termination there offers no ALPN protocols');
      else if (tls !== undefined) out.attach('tls', tls.part.raw, tls.part.marks);
    }
  }
  const filters = asArr(chain.filters);
  let result: { proxy: Fields; log?: Part; logLoc: Loc } | undefined;
  let found = false;
  filters.forEach((f, i) => {
    const fl = sub(cl, `filters[${i}]`);
    const filter = asObj(f) ?? {};
    ctx.only(filter, fl, ['name', 'typed_config']);
    const name = asStr(filter.name) ?? '';
    const type = asStr(asObj(filter.typed_config)?.type_url);
    if (type === TypeUrl.TcpProxy || (type === undefined && name === TCP_PROXY_FILTER_NAME)) {
      found = true;
      if (i !== filters.length - 1) {
        ctx.reject(fl, `${TCP_PROXY_FILTER_NAME} must be the last network filter (it forwards the connection: filters after it would never run)`);
        return;
      }
      result = tcpProxy(ctx, filter.typed_config, sub(fl, 'typed_config'), clusters);
      return;
    }
    const inert = inertNetworkFilter(ctx, filter.typed_config, sub(fl, 'typed_config'));
    if (inert !== undefined) return ctx.noEffect(fl, `NetworkFilter ${inert}`);
    ctx.reject(fl, `unsupported network filter ${name !== '' ? name : (type ?? '(unnamed)')}: a TCP listener's chains take ${TCP_PROXY_FILTER_NAME}, `
      + 'after Istio\'s metadata exchange, stats and authn filters and an RBAC filter without rules at most');
  });
  if (!found) ctx.reject(sub(cl, 'filters'), `needs ${TCP_PROXY_FILTER_NAME} as its last network filter (a TCP listener forwards every connection)`);
  return result;
}

/** A network filter that has no effect before a tcp_proxy, by its typed_config; undefined
 *  when it is not one (rejected by the caller) or when it is rejected here. */
export function inertNetworkFilter(ctx: Ctx, typedConfig: unknown, tl: Loc): InertNetworkFilter | undefined {
  const type = asStr(asObj(typedConfig)?.type_url);
  switch (type) {
    case TypeUrl.NetworkRbac: {
      // Without rules Envoy's RBAC filter admits every connection; shadow rules only record
      // (stats, dynamic metadata). Rules would authorize connections: Remora has no such thing.
      const msg = ctx.decode(typedConfig, tl)?.message;
      if (msg === undefined) return 'envoy.filters.network.rbac';
      for (const k of ['rules', 'matcher']) {
        if (msg[k] !== undefined && msg[k] !== null) {
          ctx.reject(sub(tl, k), 'is not supported: Remora does not authorize TCP connections (only an RBAC filter without rules, or with shadow rules, is accepted)');
        }
      }
      ctx.only(msg, tl, ['rules', 'matcher', 'shadow_rules', 'shadow_matcher', 'shadow_rules_stat_prefix', 'stat_prefix', 'enforcement_type']);
      return 'envoy.filters.network.rbac';
    }
    case TypeUrl.TypedStruct:
    case TypeUrl.UdpaTypedStruct: {
      const msg = ctx.decode(typedConfig, tl)?.message;
      const inner = asStr(msg?.type_url);
      if (inner === NETWORK_WASM) {
        const plugin = istioNullVm(fromStruct(asObj(msg?.value) ?? {}));
        return plugin === 'istio.metadata_exchange' || plugin === 'istio.stats' ? plugin : undefined;
      }
      return inner === undefined ? undefined : ISTIO_NETWORK_FILTERS[inner];
    }
    default:
      return type === undefined ? undefined : ISTIO_NETWORK_FILTERS[type];
  }
}

/** TcpProxy → the raw `tcp_proxy` (marks relative to it), with its access log. */
function tcpProxy(ctx: Ctx, any: unknown, tl: Loc, clusters: string[]): { proxy: Fields; log?: Part; logLoc: Loc } | undefined {
  const msg = ctx.decode(any, tl)?.message;
  if (msg === undefined) return undefined;
  for (const [k, why] of Object.entries(TCP_PROXY_REJECTED)) if (isSet(msg[k])) ctx.reject(sub(tl, k), why);
  // stat_prefix: Remora's stats use the listener name. hash_policy only matters to
  // ring-hash and Maglev balancing, which Remora rejects on clusters. access_log_options
  // (and its deprecated fields) only add lines while a connection is open: Remora writes
  // one when it closes.
  ctx.only(msg, tl, ['stat_prefix', 'cluster', 'weighted_clusters', 'idle_timeout', 'access_log', 'max_connect_attempts', 'hash_policy',
    'max_downstream_connection_duration', 'access_log_options', 'access_log_flush_interval', 'flush_access_log_on_connected', ...Object.keys(TCP_PROXY_REJECTED)]);
  for (const k of ['hash_policy', 'access_log_options', 'access_log_flush_interval', 'flush_access_log_on_connected']) if (isSet(msg[k])) ctx.noEffect(tl, `TcpProxy.${k}`);
  const opts = asObj(msg.access_log_options);
  if (opts !== undefined) ctx.only(opts, sub(tl, 'access_log_options'), ['access_log_flush_interval', 'flush_access_log_on_connected']);
  const out = new Fields().here(tl);
  const cluster = asStr(msg.cluster);
  if (isSet(cluster)) {
    out.set('cluster', cluster, sub(tl, 'cluster'));
    clusters.push(cluster ?? '');
  }
  const wc = asObj(msg.weighted_clusters);
  if (wc !== undefined) {
    const wl = sub(tl, 'weighted_clusters');
    ctx.only(wc, wl, ['clusters']);
    const list = asArr(wc.clusters).map((v, i) => {
      const cl = sub(wl, `clusters[${i}]`);
      const c = asObj(v) ?? {};
      if (isSet(c.metadata_match)) ctx.reject(sub(cl, 'metadata_match'), TCP_PROXY_REJECTED.metadata_match);
      ctx.only(c, cl, ['name', 'weight', 'metadata_match']);
      const w = out.item(`.weighted_clusters[${i}]`).here(cl);
      w.set('cluster', asStr(c.name) ?? '', sub(cl, 'name'));
      w.set('weight', asNum(c.weight), sub(cl, 'weight'));
      clusters.push(asStr(c.name) ?? '');
      return w.raw;
    });
    out.set('weighted_clusters', list, sub(wl, 'clusters'));
  }
  // Unset: Envoy's hour, Remora's default too; 0s: none, in both.
  out.take('idle_timeout_ms', ctx.ms(msg.idle_timeout, sub(tl, 'idle_timeout')), sub(tl, 'idle_timeout'));
  out.take('max_connect_attempts', wrapped(msg.max_connect_attempts), sub(tl, 'max_connect_attempts'));
  out.take('max_downstream_connection_duration_ms', ctx.ms(msg.max_downstream_connection_duration, sub(tl, 'max_downstream_connection_duration')),
    sub(tl, 'max_downstream_connection_duration'));
  const log = accessLogOf(ctx, msg, tl, false);
  return { proxy: out, ...(log !== undefined ? { log } : {}), logLoc: sub(tl, 'access_log') };
}
