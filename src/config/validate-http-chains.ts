// Validation of an HTTP listener's HTTPS filter chains picked by server name
// (`http_filter_chains`; part of validate.ts's second pass): chain names and server names
// unique, each chain's virtual hosts checked with domains unique within the chain (names
// across the listener), a default chain that is whole (`tls` and `virtual_hosts` together,
// or neither), and the TLS server's settings the same on every chain. Also the TLS
// defaults every listener's and chain's `tls` gets (fillListenerTls).

import type { SchemaWalk } from './schema/walk.js';
import { at } from './schema/walk.js';
import type { Listener, ListenerTlsConfig, VirtualHost } from './types.js';

type Draft<T> = { -readonly [K in keyof T]: T[K] };

/** What the listener check lends this one: its virtual host check (with a fresh domain
 *  scope per chain) and its uniqueness check. */
export interface ChainChecks {
  /** Checks a chain's virtual host; `domains` is the chain's own domain scope. */
  vhost(vh: VirtualHost, path: string, domains: Map<string, string>): void;
  /** Reports a duplicate of `value` in `seen`, else records it. */
  unique(seen: Map<string, string>, value: string, path: string, what: string): void;
}

/** TLS settings that belong to the listener's one TLS server, not to a chain. */
const SERVER_TLS_FIELDS = ['require_client_certificate', 'min_version', 'session_resumption'] as const;

export function checkHttpChains(w: SchemaWalk, l: Draft<Listener>, path: string, checks: ChainChecks): void {
  const chainsPath = at(path, 'http_filter_chains');
  const ownTls = w.given(l, 'tls');
  const ownVhosts = l.virtual_hosts.length > 0;
  if (ownTls && !ownVhosts && !w.wrong(at(path, 'virtual_hosts'))) {
    w.err(at(path, 'virtual_hosts'), 'must list at least one virtual host when "tls" is set beside "http_filter_chains" (the default chain, for connections whose server name no chain lists); leave "tls" out to refuse those connections');
  }
  if (!ownTls && ownVhosts) {
    w.err(at(path, 'tls'), 'is required with "http_filter_chains" when "virtual_hosts" is set: the default chain serves TLS, as the chains do');
  }
  if (l.codec === 'uws') w.err(at(path, 'codec'), 'must be "strict" on a TLS listener (uWS cannot read client certificates)');
  const names = new Map<string, string>();
  const serverNames = new Map<string, string>();
  let reference: { tls: ListenerTlsConfig; path: string } | undefined = l.tls !== undefined ? { tls: l.tls, path: at(path, 'tls') } : undefined;
  l.http_filter_chains.forEach((fc, i) => {
    const p = `${chainsPath}[${i}]`;
    if (!fc) return;
    if (!w.wrong(at(p, 'name'))) checks.unique(names, fc.name, at(p, 'name'), 'filter chain name');
    fc.server_names.forEach((n, j) => {
      const np = `${at(p, 'server_names')}[${j}]`;
      if (!w.erred(np)) checks.unique(serverNames, n, np, 'server name');
    });
    const domains = new Map<string, string>();
    fc.virtual_hosts.forEach((vh, j) => { if (vh) checks.vhost(vh, `${at(p, 'virtual_hosts')}[${j}]`, domains); });
    if (!fc.tls || w.erred(at(p, 'tls'))) return;
    fillListenerTls(w, fc.tls as Draft<ListenerTlsConfig>, at(p, 'tls'));
    if (reference === undefined) {
      reference = { tls: fc.tls, path: at(p, 'tls') };
      return;
    }
    for (const key of SERVER_TLS_FIELDS) {
      if (fc.tls[key] !== reference.tls[key]) {
        w.err(at(at(p, 'tls'), key), `must be the same as ${reference.path}.${key} (${String(reference.tls[key])}), got ${String(fc.tls[key])}: it is a setting of the listener's one TLS server, whichever chain a client gets`);
      }
    }
  });
}

/** A listener's or filter chain's TLS: a client certificate is required when ca_file is
 *  set, unless said otherwise. */
export function fillListenerTls(w: SchemaWalk, tls: Draft<ListenerTlsConfig>, path: string): void {
  if (!w.given(tls, 'require_client_certificate')) tls.require_client_certificate = tls.ca_file !== undefined;
  if (tls.require_client_certificate && tls.ca_file === undefined) {
    w.err(at(path, 'require_client_certificate'), 'needs "ca_file" (the CAs that client certificates are verified against)');
  }
}
