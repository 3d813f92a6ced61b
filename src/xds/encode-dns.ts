// A DNS cluster's `dns` block → Envoy's Cluster fields (part of encode.ts, for the
// reference control plane): STRICT_DNS or LOGICAL_DNS, dns_refresh_rate,
// respect_dns_ttl, dns_failure_refresh_rate, dns_lookup_family, and the servers as a
// c-ares typed_dns_resolver_config. What Envoy's proto lacks travels as Remora
// extensions (translate-dns.ts reads them back).

import type { ClusterDns } from '../config/types.js';
import { duration, encode } from './encode-common.js';
import { TypeUrl, type ProtoObject } from './protos.js';

/** `IP:port` or `[v6]:port` (port optional) → a core.v3.Address. */
function address(server: string): ProtoObject {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(server) ?? /^([^:]+)(?::(\d+))?$/.exec(server);
  const host = m?.[1] ?? server;
  return { socket_address: { address: host, port_value: m?.[2] !== undefined ? Number(m[2]) : 53 } };
}

/** The Cluster fields of a DNS cluster. */
export function dnsClusterFields(dns: ClusterDns): ProtoObject {
  const f = dns.failure_refresh_rate;
  return {
    type: dns.type === 'strict' ? 'STRICT_DNS' : 'LOGICAL_DNS',
    dns_refresh_rate: duration(dns.refresh_rate_ms),
    ...(dns.respect_ttl ? { respect_dns_ttl: true } : {}),
    ...(f !== undefined ? { dns_failure_refresh_rate: { base_interval: duration(f.base_ms), max_interval: duration(f.max_ms) } } : {}),
    dns_lookup_family: dns.lookup_family.toUpperCase(),
    ...(dns.resolvers.length > 0
      ? { typed_dns_resolver_config: { name: 'envoy.network.dns_resolver.cares', typed_config: encode(TypeUrl.CaresDnsResolver, { resolvers: dns.resolvers.map(address) }) } }
      : {}),
  };
}

/** Remora extensions of a DNS cluster (Envoy's defaults left out). */
export function dnsExtensions(dns: ClusterDns | undefined): Record<string, number | undefined> {
  if (dns === undefined) return {};
  return {
    dns_min_refresh_rate_ms: dns.min_refresh_rate_ms !== 5000 ? dns.min_refresh_rate_ms : undefined,
    dns_query_timeout_ms: dns.query_timeout_ms !== 5000 ? dns.query_timeout_ms : undefined,
    dns_query_tries: dns.query_tries !== 4 ? dns.query_tries : undefined,
  };
}
