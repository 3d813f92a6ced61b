// Picking a TCP listener's filter chain for a connection (Envoy's filter_chain_match),
// from what its first bytes said: the SNI, whether it is TLS, the ALPN protocols offered.
// Envoy's order: the most specific server name first (an exact name, then the longest
// `*.suffix`, then chains that name none), then the transport protocol (a chain naming it,
// then chains that do not), then ALPN (a chain naming one of the offered protocols, then
// chains that name none). Connections no chain takes go to the default chain (the
// listener's own tcp_proxy), or are closed.

import type { FilterChain, TcpProxy } from '../config/types.js';
import { compileTargets, type WeightedTarget } from './route-table.js';

/** What the start of a connection told about it. */
export interface ConnectionFacts {
  /** 'tls' or 'raw_buffer'. */
  readonly transport: 'tls' | 'raw_buffer';
  /** SNI, lower-cased; '' when none. */
  readonly serverName: string;
  readonly alpn: readonly string[];
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
  private readonly chains: readonly FilterChain[];
  private readonly targets: ReadonlyMap<FilterChain, ChainTarget>;
  private readonly fallback: ChainTarget | null;

  constructor(chains: readonly FilterChain[], defaultChain: TcpProxy | undefined) {
    this.chains = chains;
    this.targets = new Map(chains.map((c) => [c, chainTarget(c.name, c.tcp_proxy)]));
    this.fallback = defaultChain !== undefined ? chainTarget('', defaultChain) : null;
    this.needsInspection = chains.some((c) => c.match.server_names.length > 0 || c.match.transport_protocol !== undefined || c.match.application_protocols.length > 0);
  }

  /** The chain named `name` ('' for the listener's default), or null. */
  byName(name: string): ChainTarget | null {
    if (name === '') return this.fallback;
    for (const [c, target] of this.targets) if (c.name === name) return target;
    return null;
  }

  /** The chain for a connection, or null when none takes it (it is closed). */
  pick(facts: ConnectionFacts): ChainTarget | null {
    let candidates = byServerName(this.chains, facts.serverName);
    candidates = narrow(candidates, (c) => c.match.transport_protocol === facts.transport, (c) => c.match.transport_protocol === undefined);
    candidates = byAlpn(candidates, facts.alpn);
    const chain = candidates[0];
    return chain !== undefined ? this.targets.get(chain)! : this.fallback;
  }
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
