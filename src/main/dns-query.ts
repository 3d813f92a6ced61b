// One DNS resolution of a host name for a DNS cluster (main thread): the A and AAAA
// queries its `lookup_family` asks for, answered from the hosts file where it holds the
// name (hosts-file.ts) and otherwise through a node:dns Resolver with the cluster's
// servers, turned into one outcome (addresses and their lowest TTL, or a failure), and
// the wait before the next resolution (refresh rate, TTL, failure backoff).

import { Resolver } from 'node:dns/promises';
import type { ClusterDns, DnsLookupFamily } from '../config/types.js';
import { hostsAddresses, type HostsTable } from './hosts-file.js';

/** A record of an answer: an address and its TTL in seconds. */
export interface DnsRecord {
  readonly address: string;
  readonly ttl: number;
}

/** The queries one resolution needs (a node:dns Resolver; a fake in unit tests). */
export interface DnsLookup {
  resolve4(name: string): Promise<readonly DnsRecord[]>;
  resolve6(name: string): Promise<readonly DnsRecord[]>;
  /** Ends the queries in flight (they reject). */
  cancel(): void;
}

export type DnsOutcome =
  | { readonly kind: 'answer'; readonly addresses: readonly string[]; readonly ttlS: number }
  | { readonly kind: 'failure'; readonly error: string };

/** A node:dns Resolver asking the cluster's `resolvers` (or the system's servers). */
export function systemLookup(settings: ClusterDns): DnsLookup {
  const resolver = new Resolver({ timeout: settings.query_timeout_ms, tries: settings.query_tries });
  if (settings.resolvers.length > 0) resolver.setServers([...settings.resolvers]);
  return {
    resolve4: (name) => resolver.resolve4(name, { ttl: true }),
    resolve6: (name) => resolver.resolve6(name, { ttl: true }),
    cancel: () => resolver.cancel(),
  };
}

/** Codes that mean the name has no address of that family (NODATA) or does not exist
 *  (NXDOMAIN): a successful, empty answer (Envoy's c-ares resolver treats them so). */
const EMPTY_CODES = new Set(['ENODATA', 'ENOTFOUND']);

/** The hosts file as one resolution sees it: its table, and the TTL its answers get
 *  (hosts entries have none; the resolver passes the cluster's refresh rate). */
export interface HostsView {
  readonly table: HostsTable;
  readonly ttlS: number;
}

type FamilyResult = { readonly ok: true; readonly records: readonly DnsRecord[] } | { readonly ok: false; readonly error: string };

const fromHosts = (addresses: readonly string[], hosts: HostsView): FamilyResult => ({
  ok: true,
  records: addresses.map((address) => ({ address, ttl: hosts.ttlS })),
});

/** One family: from the hosts file when it has an address of that family for the name
 *  (c-ares looks in the file per family, so a name there with IPv4 addresses only still
 *  asks DNS for AAAA), else the DNS query. */
async function query(lookup: DnsLookup, name: string, v6: boolean, hosts: HostsView | null): Promise<FamilyResult> {
  if (hosts !== null) {
    const found = hostsAddresses(hosts.table, name, v6);
    if (found !== null) return fromHosts(found, hosts);
  }
  try {
    return { ok: true, records: await (v6 ? lookup.resolve6(name) : lookup.resolve4(name)) };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && EMPTY_CODES.has(code)) return { ok: true, records: [] };
    return { ok: false, error: `${v6 ? 'AAAA' : 'A'} ${name}: ${typeof code === 'string' ? code : String(err)}` };
  }
}

function outcome(results: readonly FamilyResult[]): DnsOutcome {
  const addresses: string[] = [];
  let ttl = Infinity;
  const errors: string[] = [];
  for (const r of results) {
    if (!r.ok) {
      errors.push(r.error);
      continue;
    }
    for (const rec of r.records) {
      addresses.push(rec.address);
      ttl = Math.min(ttl, rec.ttl);
    }
  }
  // Some addresses are an answer even when the other family failed; none with a failure
  // is a failure (the last good addresses stay).
  if (addresses.length === 0 && errors.length > 0) return { kind: 'failure', error: errors.join('; ') };
  return { kind: 'answer', addresses, ttlS: Number.isFinite(ttl) ? ttl : 0 };
}

/** Resolves `name` as `family` asks: `auto` AAAA then A when AAAA gave no address,
 *  `v4_preferred` the other way round, `all` both (IPv4 first). With `hosts`, the hosts
 *  file answers first, as Envoy's c-ares resolver does: per family asked, and for `all`
 *  (one lookup of both families in Envoy) the name's addresses in the file, of either
 *  family, answer alone. */
export async function resolveName(lookup: DnsLookup, name: string, family: DnsLookupFamily, hosts: HostsView | null = null): Promise<DnsOutcome> {
  switch (family) {
    case 'v4_only':
      return outcome([await query(lookup, name, false, hosts)]);
    case 'v6_only':
      return outcome([await query(lookup, name, true, hosts)]);
    case 'all': {
      if (hosts !== null) {
        const v4 = hostsAddresses(hosts.table, name, false);
        const v6 = hostsAddresses(hosts.table, name, true);
        if (v4 !== null || v6 !== null) return outcome([fromHosts(v4 ?? [], hosts), fromHosts(v6 ?? [], hosts)]);
      }
      return outcome(await Promise.all([query(lookup, name, false, null), query(lookup, name, true, null)]));
    }
    case 'auto':
    case 'v4_preferred': {
      const v6First = family === 'auto';
      const first = await query(lookup, name, v6First, hosts);
      if (first.ok && first.records.length > 0) return outcome([first]);
      const second = await query(lookup, name, !v6First, hosts);
      return outcome(first.ok ? [second] : [first, second]);
    }
  }
}

/** Milliseconds before the next resolution of a name. After an answer: its lowest TTL
 *  with `respect_ttl` (at least `min_refresh_rate_ms`; a TTL of 0 or an empty answer
 *  uses `refresh_rate_ms`), else `refresh_rate_ms`. After the n-th failure in a row:
 *  `failure_refresh_rate` backoff, base × 2^(n-1) capped at max, jittered to between half
 *  and all of it; `refresh_rate_ms` without one (Envoy). `random` is 0..1. */
export function nextDelayMs(s: ClusterDns, result: DnsOutcome, failuresInARow: number, random: () => number = Math.random): number {
  if (result.kind === 'answer') {
    if (s.respect_ttl && result.addresses.length > 0 && result.ttlS > 0) return Math.max(result.ttlS * 1000, s.min_refresh_rate_ms);
    return s.refresh_rate_ms;
  }
  const f = s.failure_refresh_rate;
  if (f === undefined) return s.refresh_rate_ms;
  const ceiling = Math.min(f.base_ms * 2 ** Math.min(Math.max(failuresInARow - 1, 0), 30), f.max_ms);
  return Math.max(1, Math.round(ceiling / 2 + (random() * ceiling) / 2));
}
