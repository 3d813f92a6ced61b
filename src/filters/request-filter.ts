// Per-request features as small filters run in order before a request is forwarded
// (Envoy's decoder filter chain, reduced to a decision on the request head): each says
// continue (null) or answers the request itself with a LocalReply. Filter lists are
// built when a snapshot is applied, one for the listener (before routing) and one per
// route (after it matched); a feature that is not configured is not in the list.

import type { PeerIdentity } from '../tls/peer-identity.js';

/** A reply Remora makes itself instead of forwarding: status, response flag, a short
 *  body (a newline is added), and extra headers (flat [name, value, ...]) or null. */
export interface LocalReply {
  readonly status: number;
  readonly flag: string;
  readonly body: string;
  readonly headers: readonly string[] | null;
}

/** What filters look at in a request (a DownstreamRequest fits). */
export interface FilterRequest {
  /** Flat [name, value, ...], lower-case names. */
  readonly headers: readonly string[];
  readonly remoteAddress: string;
  readonly peer: PeerIdentity | null;
}

export interface RequestFilter {
  /** null: let the request through; else the reply that ends it. */
  decide(req: FilterRequest): LocalReply | null;
}

/** Runs `filters` in order; the first reply wins. */
export function runFilters(filters: readonly RequestFilter[], req: FilterRequest): LocalReply | null {
  for (let i = 0; i < filters.length; i++) {
    const reply = filters[i].decide(req);
    if (reply !== null) return reply;
  }
  return null;
}
