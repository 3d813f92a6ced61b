// The filter chains an HTTP listener serves (part of translate-listener.ts): one chain
// that takes every connection, a default_filter_chain, or chains picked by the TLS server
// name (`filter_chain_match.server_names`, Envoy Gateway's HTTPS listeners: one chain per
// host name, each with its own certificate and route configuration). Chains picked by
// server name become Remora's `http_filter_chains`: each keeps its own TLS and routes, and
// their HttpConnectionManagers must otherwise be the same as the listener's (Remora's
// chains share the listener's codec, filters and settings), which is what Envoy Gateway
// writes; one that differs is rejected, naming the fields.

import { asArr, asObj, asStr, isSet, type Obj } from './read.js';
import { configSource, sub, type Ctx, type Loc } from './translate-context.js';
import { downstreamTls, rawBufferSocket, type TlsResult } from './translate-tls.js';

/** One chain the listener serves, where it is, and the server names that pick it (none:
 *  it takes the connections no named chain takes). */
export interface ServedChain {
  readonly chain: Obj;
  readonly loc: Loc;
  readonly names: readonly string[];
}

export interface ServedChains {
  /** The chain for connections whose server name no named chain lists; undefined: such a
   *  connection is refused, as in Envoy. */
  readonly fallback?: ServedChain;
  /** Chains picked by server name, in config order. */
  readonly named: readonly ServedChain[];
}

/** Where a chain's routes come from. */
export type RouteSource = { kind: 'rds'; name: string } | { kind: 'inline'; config: Obj; loc: Loc };

/**
 * The chains of an HTTP listener for connections to its port (`direct`, see directChains):
 * the chains naming server names, and the one that takes the rest: the chain for its port
 * that names none (its filter_chain_match may only name the port), else its
 * default_filter_chain (Envoy Gateway writes a plain HTTP listener's HttpConnectionManager
 * there). A default_filter_chain beside a chain that takes every other connection is never
 * used, in Envoy either: accepted, not served, not read. Undefined (rejected) when there is
 * no chain, or two that name no server name.
 */
export function httpChains(ctx: Ctx, l: Obj, loc: Loc, direct: readonly number[]): ServedChains | undefined {
  const chains = asArr(l.filter_chains);
  const fallbackChain = asObj(l.default_filter_chain);
  const named: ServedChain[] = [];
  const unnamed: ServedChain[] = [];
  for (const i of direct) {
    const cl = sub(loc, `filter_chains[${i}]`);
    const chain = asObj(chains[i]) ?? {};
    ctx.only(chain, cl, ['filters', 'name', 'transport_socket', 'filter_chain_match']);
    const match = asObj(chain.filter_chain_match);
    let names: string[] = [];
    if (match !== undefined) {
      // Only the listener's own port (directChains keeps a chain naming no other) and
      // server names pick an HTTP chain.
      ctx.only(match, sub(cl, 'filter_chain_match'), ['destination_port', 'server_names']);
      if (isSet(match.destination_port)) ctx.noEffect(cl, 'Listener.filter_chains.filter_chain_match.destination_port');
      names = asArr(match.server_names).map((n) => asStr(n) ?? '');
    }
    (names.length > 0 ? named : unnamed).push({ chain, loc: cl, names });
  }
  if (unnamed.length > 1) {
    const got = direct.length === chains.length ? `${unnamed.length}` : `${unnamed.length} for connections to its port`;
    ctx.reject(unnamed[1].loc, `an HTTP listener takes at most one filter chain without server_names (got ${got}): each would take every connection; `
      + 'only tcp_proxy listeners pick chains by transport or ALPN');
    return undefined;
  }
  let fallback: ServedChain | undefined = unnamed[0];
  if (fallback !== undefined && fallbackChain !== undefined) ctx.noEffect(loc, 'Listener.default_filter_chain (never used, not served)');
  if (fallback === undefined && fallbackChain !== undefined) {
    const cl = sub(loc, 'default_filter_chain');
    ctx.only(fallbackChain, cl, ['filters', 'name', 'transport_socket', 'filter_chain_match']);
    // Ignored by Envoy too: the default chain takes what no chain takes.
    if (isSet(fallbackChain.filter_chain_match)) ctx.noEffect(loc, 'Listener.default_filter_chain.filter_chain_match');
    fallback = { chain: fallbackChain, loc: cl, names: [] };
  }
  if (fallback === undefined && named.length === 0) {
    ctx.reject(sub(loc, 'filter_chains'), 'an HTTP listener needs a filter chain (got none for connections to its port, and no default_filter_chain)');
    return undefined;
  }
  if (named.length > 0) {
    // The server name comes from the TLS handshake: every chain of such a listener is TLS
    // (Remora does not tell plaintext from TLS on one HTTP listener).
    for (const c of [...named, ...(fallback !== undefined ? [fallback] : [])]) {
      const socket = c.chain.transport_socket;
      if (socket === undefined || rawBufferSocket(ctx, socket, sub(c.loc, 'transport_socket'))) {
        ctx.reject(sub(c.loc, 'transport_socket'), 'must be TLS (envoy.transport_sockets.tls): the listener picks chains by the TLS server name, and Remora does not serve '
          + 'plaintext and TLS on one HTTP listener (serve them on two)');
        return undefined;
      }
    }
  }
  return { ...(fallback !== undefined ? { fallback } : {}), named };
}

/** The chain's TLS (undefined: plaintext, or rejected). */
export function chainTls(ctx: Ctx, c: ServedChain): TlsResult | undefined {
  const socket = c.chain.transport_socket;
  return socket === undefined || rawBufferSocket(ctx, socket, sub(c.loc, 'transport_socket')) ? undefined : downstreamTls(ctx, socket, sub(c.loc, 'transport_socket'));
}

/** The HttpConnectionManager's route source (RDS name or inline configuration). */
export function routeSource(ctx: Ctx, hcm: Obj, tl: Loc): RouteSource | undefined {
  const rds = asObj(hcm.rds);
  const inline = asObj(hcm.route_config);
  if (rds !== undefined) {
    const rl = sub(tl, 'rds');
    ctx.only(rds, rl, ['config_source', 'route_config_name']);
    const name = asStr(rds.route_config_name) ?? '';
    configSource(ctx, rds.config_source, sub(rl, 'config_source'), 'routes', name);
    if (name === '') ctx.reject(sub(rl, 'route_config_name'), 'is required');
    return { kind: 'rds', name };
  }
  if (inline !== undefined) return { kind: 'inline', config: inline, loc: sub(tl, 'route_config') };
  ctx.reject(tl, 'needs rds or route_config (scoped_routes is not supported)');
  return undefined;
}

/** HttpConnectionManager fields a chain picked by server name may set its own way: its
 *  routes and its stats prefix (Remora's stats are the listener's). */
const PER_CHAIN_HCM_FIELDS = new Set(['rds', 'route_config', 'stat_prefix']);

/** Rejects a chain's HttpConnectionManager that differs from the listener's (`reference`,
 *  at `referenceLoc`) in anything but its routes and stats prefix, naming the fields. */
export function sameConnectionManager(ctx: Ctx, hcm: Obj, tl: Loc, reference: Obj, referenceLoc: Loc): void {
  const keys = new Set([...Object.keys(hcm), ...Object.keys(reference)]);
  const differ = [...keys].filter((k) => !PER_CHAIN_HCM_FIELDS.has(k) && JSON.stringify(hcm[k], bytesAsText) !== JSON.stringify(reference[k], bytesAsText));
  if (differ.length === 0) return;
  ctx.reject(tl, `differs from ${referenceLoc.path}'s HttpConnectionManager in ${differ.join(', ')}: a Remora listener's chains picked by server name share its codec, `
    + 'HTTP filters and settings, and each has its own TLS and routes (rds / route_config) only');
}

/** JSON.stringify replacer that compares bytes (an Any's value) by content. */
function bytesAsText(_key: string, v: unknown): unknown {
  return v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v;
}
