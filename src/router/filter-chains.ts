// Picking a TCP listener's filter chain for a connection (Envoy's filter_chain_match),
// from its addresses and what its first bytes said: the SNI, whether it is TLS, the ALPN
// protocols offered. Envoy's order, each criterion keeping the chains that match it most
// specifically, else those that leave it out: the address the connection reached (the
// longest matching range), the server name (an exact name, then the longest `*.suffix`),
// the transport protocol, ALPN (a chain naming one of the offered protocols), the peer's
// address (direct source), the source type (loopback or same address, or external), the
// client's address (the longest matching range), the client's port. Connections no chain
// takes go to the default chain (the listener's own tcp_proxy), or are closed.

import type { FilterChain, TcpProxy } from '../config/types.js';
import { addressBytes, cidrContains, parseCidr, type Cidr } from './cidr.js';
import { compileTargets, type WeightedTarget } from './route-table.js';

/** What the start of a connection told about it. */
export interface ConnectionFacts {
  /** 'tls' or 'raw_buffer'. */
  readonly transport: 'tls' | 'raw_buffer';
  /** SNI, lower-cased; '' when none. */
  readonly serverName: string;
  readonly alpn: readonly string[];
}

/** Where a connection comes from and goes to. */
export interface ConnectionAddresses {
  /** The address it reached (the PROXY header's destination when there is one). */
  readonly destination: string;
  /** The peer's own address. */
  readonly directSource: string;
  /** The client's address and port (the PROXY header's source when there is one). */
  readonly source: string;
  readonly sourcePort: number;
}

const NO_ADDRESSES: ConnectionAddresses = { destination: '', directSource: '', source: '', sourcePort: 0 };

/** A chain's address criteria, parsed once. */
interface AddressMatch {
  readonly destination: readonly Cidr[];
  readonly directSource: readonly Cidr[];
  readonly source: readonly Cidr[];
}

/** A chain as the listener uses it. */
export interface ChainTarget {
  /** The chain's name; '' for the listener's default chain. */
  readonly name: string;
  readonly tcpProxy: TcpProxy;
  /** Its cluster names with cumulative weights (pickByWeight), compiled once. */
  readonly clusters: readonly WeightedTarget<string>[];
  readonly totalWeight: number;
}

function chainTarget(name: string, tcpProxy: TcpProxy): ChainTarget {
  const { targets, totalWeight } = compileTargets(tcpProxy, (cluster) => cluster);
  return { name, tcpProxy, clusters: targets, totalWeight };
}

export class FilterChainTable {
  /** Whether any chain looks at the ClientHello (else a connection is never read first). */
  readonly needsInspection: boolean;
  /** Whether any chain looks at the connection's addresses. */
  readonly needsAddresses: boolean;
  private readonly chains: readonly FilterChain[];
  private readonly targets: ReadonlyMap<FilterChain, ChainTarget>;
  private readonly addresses: ReadonlyMap<FilterChain, AddressMatch>;
  private readonly fallback: ChainTarget | null;

  constructor(chains: readonly FilterChain[], defaultChain: TcpProxy | undefined) {
    this.chains = chains;
    this.targets = new Map(chains.map((c) => [c, chainTarget(c.name, c.tcp_proxy)]));
    const ranges = (list: readonly string[]): Cidr[] => list.flatMap((r) => parseCidr(r) ?? []);
    this.addresses = new Map(chains.map((c) => [c, {
      destination: ranges(c.match.destination_prefix_ranges), directSource: ranges(c.match.direct_source_prefix_ranges), source: ranges(c.match.source_prefix_ranges),
    }]));
    this.fallback = defaultChain !== undefined ? chainTarget('', defaultChain) : null;
    this.needsInspection = chains.some((c) => c.match.server_names.length > 0 || c.match.transport_protocol !== undefined || c.match.application_protocols.length > 0);
    this.needsAddresses = chains.some((c) => {
      const m = c.match;
      return m.destination_prefix_ranges.length > 0 || m.direct_source_prefix_ranges.length > 0 || m.source_prefix_ranges.length > 0 || m.source_ports.length > 0 || m.source_type !== 'any';
    });
  }

  /** The chain named `name` ('' for the listener's default), or null. */
  byName(name: string): ChainTarget | null {
    if (name === '') return this.fallback;
    for (const [c, target] of this.targets) if (c.name === name) return target;
    return null;
  }

  /** The chain for a connection, or null when none takes it (it is closed). `at`: its
   *  addresses (needed only when needsAddresses). */
  pick(facts: ConnectionFacts, at: ConnectionAddresses = NO_ADDRESSES): ChainTarget | null {
    let candidates: FilterChain[] = this.chains as FilterChain[];
    if (this.needsAddresses) candidates = this.byRange(candidates, (a) => a.destination, at.destination);
    candidates = byServerName(candidates, facts.serverName);
    candidates = narrow(candidates, (c) => c.match.transport_protocol === facts.transport, (c) => c.match.transport_protocol === undefined);
    candidates = byAlpn(candidates, facts.alpn);
    if (this.needsAddresses) {
      candidates = this.byRange(candidates, (a) => a.directSource, at.directSource);
      const local = at.source === at.destination || isLoopback(at.source);
      candidates = narrow(candidates, (c) => c.match.source_type === (local ? 'same_ip_or_loopback' : 'external'), (c) => c.match.source_type === 'any');
      candidates = this.byRange(candidates, (a) => a.source, at.source);
      candidates = narrow(candidates, (c) => c.match.source_ports.includes(at.sourcePort), (c) => c.match.source_ports.length === 0);
    }
    const chain = candidates[0];
    return chain !== undefined ? this.targets.get(chain)! : this.fallback;
  }

  /** The chains with the longest of their `ranges` containing `address`, else those with
   *  no such ranges. */
  private byRange(chains: FilterChain[], ranges: (a: AddressMatch) => readonly Cidr[], address: string): FilterChain[] {
    const bytes = addressBytes(address);
    let best = -1;
    let out: FilterChain[] = [];
    const any: FilterChain[] = [];
    for (const c of chains) {
      const list = ranges(this.addresses.get(c)!);
      if (list.length === 0) {
        any.push(c);
        continue;
      }
      if (bytes === null) continue;
      for (const r of list) {
        if (r.prefixLen < best || !cidrContains(r, bytes)) continue;
        if (r.prefixLen > best) {
          best = r.prefixLen;
          out = [c];
        } else if (!out.includes(c)) out.push(c);
      }
    }
    return out.length > 0 ? out : any;
  }
}

/** A loopback address (127/8, ::1, or IPv4-mapped 127/8). */
function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/** The chains whose server names match `sni` most specifically. */
function byServerName(chains: readonly FilterChain[], sni: string): FilterChain[] {
  if (sni !== '') {
    const exact = chains.filter((c) => c.match.server_names.includes(sni));
    if (exact.length > 0) return exact;
    // The longest matching wildcard suffix: "*.b.example" beats "*.example".
    let best = -1;
    let out: FilterChain[] = [];
    for (const c of chains) {
      for (const name of c.match.server_names) {
        if (!name.startsWith('*.')) continue;
        const suffix = name.slice(1); // ".b.example"
        if (sni.length > suffix.length && sni.endsWith(suffix)) {
          if (suffix.length > best) {
            best = suffix.length;
            out = [c];
          } else if (suffix.length === best && !out.includes(c)) {
            out.push(c);
          }
        }
      }
    }
    if (out.length > 0) return out;
  }
  return chains.filter((c) => c.match.server_names.length === 0);
}

/** The chains naming the first ALPN id the client offers that any chain names (the
 *  client's order of preference, as Envoy walks it), else those naming none. */
function byAlpn(chains: FilterChain[], offered: readonly string[]): FilterChain[] {
  for (const id of offered) {
    const matched = chains.filter((c) => c.match.application_protocols.includes(id));
    if (matched.length > 0) return matched;
  }
  return chains.filter((c) => c.match.application_protocols.length === 0);
}

/** Those of `chains` that `specific` takes, else those that `any` takes. */
function narrow(chains: FilterChain[], specific: (c: FilterChain) => boolean, any: (c: FilterChain) => boolean): FilterChain[] {
  const matched = chains.filter(specific);
  return matched.length > 0 ? matched : chains.filter(any);
}
