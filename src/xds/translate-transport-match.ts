// A cluster's transport_socket_matches and an endpoint's `envoy.transport_socket_match`
// metadata → Remora's `transport_socket_matches` and `transport_socket_match` (part of
// src/xds/translate.ts; the choice per endpoint is src/upstream/transport-match.ts).
// Istio's automatic mTLS writes two entries on a cluster: `tlsMode-istio` (TLS with the
// workload's certificate, for endpoints whose metadata says `tlsMode: istio`) and
// `tlsMode-disabled` (raw_buffer, for the rest). Remora's cluster has one set of TLS
// settings: every TLS entry and the cluster's own transport_socket must agree on them
// (rejected otherwise), and each entry says TLS or plaintext. Match values are strings.

import { TRANSPORT_SOCKET_MATCH_METADATA } from './names.js';
import { asObj, asStr, fromStruct, type Obj } from './read.js';
import { sub, type Ctx, type Loc } from './translate-context.js';
import { Fields, type Mark } from './translate-fields.js';
import { rawBufferSocket, upstreamTls, type TlsResult } from './translate-tls.js';

/** The entries (raw, with marks relative to the list) and the TLS settings they use (the
 *  cluster's own transport_socket's, or the first TLS entry's when it has none). */
export interface TransportMatchesPart {
  readonly entries: Obj[];
  readonly marks: Mark[];
  readonly tls: TlsResult | undefined;
}

/** What a cluster's endpoints no entry matches use when the cluster has no transport_socket
 *  of its own but an entry is TLS: plaintext, said by a last entry that matches all. */
const PLAINTEXT_DEFAULT = 'transport_socket (unset: plaintext)';

/** `tlsDefault`: the cluster's own socket asks for TLS without settings of its own (see
 *  translateCluster): endpoints no entry matches then use the entries' TLS settings. */
export function transportSocketMatches(ctx: Ctx, entries: readonly unknown[], loc: Loc, own: TlsResult | undefined, tlsDefault = false): TransportMatchesPart {
  const out: Obj[] = [];
  const marks: Mark[] = [];
  let tls = own;
  let tlsAt = own !== undefined ? 'the cluster\'s transport_socket' : '';
  entries.forEach((v, i) => {
    const el = sub(loc, `transport_socket_matches[${i}]`);
    const e = asObj(v) ?? {};
    ctx.only(e, el, ['name', 'match', 'transport_socket']);
    const f = new Fields({}, marks, `[${out.length}]`).here(el);
    const name = asStr(e.name) ?? '';
    if (name === '') ctx.reject(sub(el, 'name'), 'is required');
    f.set('name', name, sub(el, 'name'));
    f.set('match', stringMetadata(ctx, asObj(e.match), sub(el, 'match')), sub(el, 'match'));
    const tl = sub(el, 'transport_socket');
    if (e.transport_socket === undefined || e.transport_socket === null) {
      ctx.reject(tl, 'is required');
      return;
    }
    if (rawBufferSocket(ctx, e.transport_socket, tl)) f.set('tls', false, tl);
    else {
      const t = upstreamTls(ctx, e.transport_socket, tl);
      if (t === undefined) return;
      if (tls === undefined) {
        tls = t;
        tlsAt = `transport_socket_matches[${i}]`;
      } else if (JSON.stringify([t.part.raw, t.alpn?.protocols]) !== JSON.stringify([tls.part.raw, tls.alpn?.protocols])) {
        ctx.reject(tl, `differs from the TLS settings of ${tlsAt}: a Remora cluster has one set of TLS settings, which every TLS entry uses`);
        return;
      }
      f.set('tls', true, tl);
    }
    out.push(f.raw);
  });
  // Envoy: an endpoint no entry matches uses the cluster's transport_socket. Remora's
  // cluster then has `tls` from an entry, so "none" is said with a last entry.
  if (own === undefined && !tlsDefault && tls !== undefined && !out.some((e) => Object.keys(asObj(e.match) ?? {}).length === 0)) {
    new Fields({}, marks, `[${out.length}]`).here(loc);
    out.push({ name: PLAINTEXT_DEFAULT, match: {}, tls: false });
  }
  return { entries: out, marks, tls };
}

/** An endpoint's (or its locality's) metadata under `envoy.transport_socket_match`, as
 *  strings; undefined when it has none. */
export function endpointTransportMatch(ctx: Ctx, holder: Obj, loc: Loc): Record<string, string> | undefined {
  const s = asObj(asObj(asObj(holder.metadata)?.filter_metadata)?.[TRANSPORT_SOCKET_MATCH_METADATA]);
  if (s === undefined) return undefined;
  return stringMetadata(ctx, s, sub(loc, `metadata.filter_metadata["${TRANSPORT_SOCKET_MATCH_METADATA}"]`));
}

/** A Struct of string values → a plain map; other values are rejected (Remora compares strings). */
function stringMetadata(ctx: Ctx, s: Obj | undefined, loc: Loc): Record<string, string> {
  const out: Record<string, string> = {};
  if (s === undefined) return out;
  for (const [k, v] of Object.entries(fromStruct(s))) {
    if (typeof v === 'string') out[k] = v;
    else ctx.reject(sub(loc, k), `${JSON.stringify(v)} is not supported: Remora matches string values only`);
  }
  return out;
}
