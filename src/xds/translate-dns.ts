// A STRICT_DNS or LOGICAL_DNS Cluster's DNS settings → the raw cluster's `dns` block
// (part of translate-cluster.ts): dns_refresh_rate, respect_dns_ttl,
// dns_failure_refresh_rate, dns_lookup_family, the DNS servers (typed_dns_resolver_config
// with c-ares' CaresDnsResolverConfig, or the deprecated dns_resolution_config and
// dns_resolvers) and the Remora extensions Envoy's proto lacks (min refresh rate, query
// timeout and tries). What Remora's resolver cannot do (TCP queries, the system's
// servers as a fallback, getaddrinfo or Apple's resolver) is rejected by path.

import { isIP } from 'node:net';
import { TypeUrl } from './protos.js';
import { asArr, asObj, asStr, isSet, type Obj } from './read.js';
import { extPath, socketAddress, sub, type Ctx, type Loc } from './translate-context.js';
import type { Fields } from './translate-fields.js';

/** The Cluster fields of DNS clusters (ignored, as by Envoy, on other types). */
export const DNS_CLUSTER_FIELDS = ['dns_refresh_rate', 'dns_failure_refresh_rate', 'respect_dns_ttl', 'dns_lookup_family', 'dns_resolvers',
  'use_tcp_for_dns_lookups', 'dns_resolution_config', 'typed_dns_resolver_config'] as const;

/** Remora extensions of a DNS cluster, in its filter_metadata. */
export const DNS_EXTENSIONS = ['dns_min_refresh_rate_ms', 'dns_query_timeout_ms', 'dns_query_tries'] as const;

export const CARES_RESOLVER = 'envoy.network.dns_resolver.cares';
/** The cluster_type extension of DNS clusters (DnsCluster). */
export const DNS_CLUSTER_TYPE = 'envoy.cluster.dns';

/** A DNS cluster given as a cluster_type: its type, and its DnsCluster message with its
 *  fields under the Cluster's names, for clusterDns (`loc`: the message's place). */
export interface DnsClusterType {
  readonly type: 'STRICT_DNS' | 'LOGICAL_DNS';
  readonly settings: Obj;
  readonly loc: Loc;
}

/** A Cluster's cluster_type: only envoy.cluster.dns (DnsCluster, LOGICAL unless
 *  dns_discovery_type says STRICT) is a type Remora runs. Its dns_jitter only spreads
 *  refreshes over time: counted as without effect. */
export function dnsClusterType(ctx: Ctx, v: unknown, loc: Loc): DnsClusterType | undefined {
  const t = asObj(v) ?? {};
  ctx.only(t, loc, ['name', 'typed_config']);
  const tl = sub(loc, 'typed_config');
  if (asStr(asObj(t.typed_config)?.type_url) !== TypeUrl.DnsCluster) {
    ctx.reject(loc, `${asStr(t.name) ?? '(unnamed)'} is not supported: the only cluster_type Remora runs is ${DNS_CLUSTER_TYPE} (DnsCluster)`);
    return undefined;
  }
  const decoded = ctx.decode(t.typed_config, tl);
  if (decoded === undefined) return undefined;
  const m = decoded.message;
  ctx.only(m, tl, ['dns_refresh_rate', 'dns_failure_refresh_rate', 'respect_dns_ttl', 'dns_jitter', 'typed_dns_resolver_config', 'dns_lookup_family', 'dns_discovery_type']);
  if (isSet(m.dns_jitter)) ctx.noEffect(tl, 'DnsCluster.dns_jitter');
  const { dns_discovery_type: discovery, dns_jitter: _jitter, ...settings } = m;
  // UNSPECIFIED is AUTO, as unset on a Cluster.
  if (settings.dns_lookup_family === 'UNSPECIFIED') delete settings.dns_lookup_family;
  return { type: discovery === 'STRICT' ? 'STRICT_DNS' : 'LOGICAL_DNS', settings, loc: tl };
}

const FAMILIES: Readonly<Record<string, string>> = { AUTO: 'auto', V4_ONLY: 'v4_only', V6_ONLY: 'v6_only', V4_PREFERRED: 'v4_preferred', ALL: 'all' };

/** Writes `dns` for a cluster of `type` STRICT_DNS or LOGICAL_DNS; `ext` its Remora extensions. */
export function clusterDns(ctx: Ctx, c: Obj, loc: Loc, type: 'STRICT_DNS' | 'LOGICAL_DNS', ext: Obj, parent: Fields): void {
  const out = parent.nest('dns');
  out.set('type', type === 'STRICT_DNS' ? 'strict' : 'logical', sub(loc, 'type'));
  out.take('refresh_rate_ms', ctx.ms(c.dns_refresh_rate, sub(loc, 'dns_refresh_rate')), sub(loc, 'dns_refresh_rate'));
  if (c.respect_dns_ttl === true) out.set('respect_ttl', true, sub(loc, 'respect_dns_ttl'));
  const fr = asObj(c.dns_failure_refresh_rate);
  if (fr !== undefined) {
    const fl = sub(loc, 'dns_failure_refresh_rate');
    ctx.only(fr, fl, ['base_interval', 'max_interval']);
    const f = out.nest('failure_refresh_rate');
    f.here(fl);
    const base = ctx.ms(fr.base_interval, sub(fl, 'base_interval'));
    if (base === undefined) ctx.reject(sub(fl, 'base_interval'), 'is required');
    f.take('base_ms', base, sub(fl, 'base_interval'));
    f.take('max_ms', ctx.ms(fr.max_interval, sub(fl, 'max_interval')), sub(fl, 'max_interval'));
  }
  const family = asStr(c.dns_lookup_family);
  if (family !== undefined) {
    if (FAMILIES[family] === undefined) ctx.reject(sub(loc, 'dns_lookup_family'), `${family} is not supported (AUTO, V4_ONLY, V6_ONLY, V4_PREFERRED or ALL)`);
    else out.set('lookup_family', FAMILIES[family], sub(loc, 'dns_lookup_family'));
  }
  if (c.use_tcp_for_dns_lookups === true) tcpRejected(ctx, sub(loc, 'use_tcp_for_dns_lookups'));
  // typed_dns_resolver_config wins over dns_resolution_config, which wins over dns_resolvers (Envoy).
  let servers: { list: string[]; loc: Loc } | undefined;
  if (isSet(c.typed_dns_resolver_config)) servers = typedResolver(ctx, c.typed_dns_resolver_config, sub(loc, 'typed_dns_resolver_config'));
  else if (isSet(c.dns_resolution_config)) servers = resolutionConfig(ctx, asObj(c.dns_resolution_config) ?? {}, sub(loc, 'dns_resolution_config'));
  else if (asArr(c.dns_resolvers).length > 0) servers = { list: addresses(ctx, asArr(c.dns_resolvers), sub(loc, 'dns_resolvers')), loc: sub(loc, 'dns_resolvers') };
  if (servers !== undefined) out.set('resolvers', servers.list, servers.loc);
  out.take('min_refresh_rate_ms', ext.dns_min_refresh_rate_ms, extPath(loc, 'dns_min_refresh_rate_ms'));
  out.take('query_timeout_ms', ext.dns_query_timeout_ms, extPath(loc, 'dns_query_timeout_ms'));
  out.take('query_tries', ext.dns_query_tries, extPath(loc, 'dns_query_tries'));
}

function tcpRejected(ctx: Ctx, loc: Loc): void {
  ctx.reject(loc, 'is not supported: Remora\'s resolver (node:dns) asks over UDP, and over TCP only for a truncated answer');
}

/** core.v3.Address list → `IP:port` strings (port 53 when unset). */
function addresses(ctx: Ctx, list: readonly unknown[], loc: Loc): string[] {
  const out: string[] = [];
  list.forEach((a, i) => {
    const sa = socketAddress(ctx, a, sub(loc, i));
    if (sa === undefined) return;
    const kind = isIP(sa.address);
    if (kind === 0) {
      ctx.reject(sa.addressLoc, `must be an IP address (a DNS server), got "${sa.address}"`);
      return;
    }
    const port = Number.isInteger(sa.port) && sa.port > 0 ? sa.port : 53;
    out.push(kind === 6 ? `[${sa.address}]:${port}` : `${sa.address}:${port}`);
  });
  return out;
}

/** core.v3.DnsResolverOptions: TCP queries are rejected; search domains are never used
 *  by Remora's queries, so no_default_search_domain changes nothing. */
function resolverOptions(ctx: Ctx, v: unknown, loc: Loc): void {
  const o = asObj(v);
  if (o === undefined) return;
  ctx.only(o, loc, ['use_tcp_for_dns_lookups', 'no_default_search_domain']);
  if (o.use_tcp_for_dns_lookups === true) tcpRejected(ctx, sub(loc, 'use_tcp_for_dns_lookups'));
  if (o.no_default_search_domain === true) ctx.noEffect(loc, 'DnsResolverOptions.no_default_search_domain');
}

function resolutionConfig(ctx: Ctx, o: Obj, loc: Loc): { list: string[]; loc: Loc } {
  ctx.only(o, loc, ['resolvers', 'dns_resolver_options']);
  resolverOptions(ctx, o.dns_resolver_options, sub(loc, 'dns_resolver_options'));
  return { list: addresses(ctx, asArr(o.resolvers), sub(loc, 'resolvers')), loc: sub(loc, 'resolvers') };
}

/** typed_dns_resolver_config: c-ares (envoy.network.dns_resolver.cares) only. */
function typedResolver(ctx: Ctx, v: unknown, loc: Loc): { list: string[]; loc: Loc } | undefined {
  const t = asObj(v) ?? {};
  ctx.only(t, loc, ['name', 'typed_config']);
  const tl = sub(loc, 'typed_config');
  const decoded = ctx.decode(t.typed_config, tl);
  if (decoded === undefined) return undefined;
  if (decoded.typeUrl !== TypeUrl.CaresDnsResolver) {
    ctx.reject(tl, `${decoded.typeUrl} is not supported: Remora's resolver is c-ares (${CARES_RESOLVER}, CaresDnsResolverConfig)`);
    return undefined;
  }
  const m = decoded.message;
  ctx.only(m, tl, ['resolvers', 'use_resolvers_as_fallback', 'filter_unroutable_families', 'dns_resolver_options', 'udp_max_queries']);
  if (m.use_resolvers_as_fallback === true) ctx.reject(sub(tl, 'use_resolvers_as_fallback'), 'is not supported: Remora asks the resolvers listed, or the system\'s when none are');
  if (m.filter_unroutable_families === true) ctx.reject(sub(tl, 'filter_unroutable_families'), 'is not supported: choose the families with dns_lookup_family');
  resolverOptions(ctx, m.dns_resolver_options, sub(tl, 'dns_resolver_options'));
  if (isSet(m.udp_max_queries)) ctx.noEffect(tl, 'CaresDnsResolverConfig.udp_max_queries');
  return { list: addresses(ctx, asArr(m.resolvers), sub(tl, 'resolvers')), loc: sub(tl, 'resolvers') };
}
