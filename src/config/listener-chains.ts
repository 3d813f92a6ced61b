// An HTTP listener's route tables and TLS server: its own virtual hosts and `tls` (the
// default chain) and those of its HTTPS filter chains picked by server name
// (`http_filter_chains`). What walks every route of a listener (rate-limit buckets,
// validation) and what makes its TLS server reads them through here.

import type { HttpFilterChain, Listener, ListenerTlsConfig } from './types.js';

/** The parts of a listener that hold virtual hosts (structural, for raw drafts too). */
export interface RoutedListener<V> {
  readonly virtual_hosts: readonly V[];
  readonly http_filter_chains?: readonly { readonly virtual_hosts: readonly V[] }[];
}

/** Every virtual host of a listener: its own, then each chain's, in config order. */
export function listenerVirtualHosts<V>(l: RoutedListener<V>): V[] {
  const chains = l.http_filter_chains ?? [];
  if (chains.length === 0) return l.virtual_hosts as V[];
  return [...l.virtual_hosts, ...chains.flatMap((c) => c.virtual_hosts)];
}

/** Each virtual host of a listener with its config path below the listener's
 *  (`virtual_hosts[0]`, `http_filter_chains[1].virtual_hosts[0]`). */
export function listenerVirtualHostPaths<V>(l: RoutedListener<V>): [V, string][] {
  const out: [V, string][] = l.virtual_hosts.map((vh, i) => [vh, `virtual_hosts[${i}]`]);
  (l.http_filter_chains ?? []).forEach((c, j) => {
    if (c) c.virtual_hosts.forEach((vh, i) => out.push([vh, `http_filter_chains[${j}].virtual_hosts[${i}]`]));
  });
  return out;
}

/** Whether the listener serves TLS (its own `tls`, or HTTPS filter chains). */
export function servesTls(l: Listener): boolean {
  return l.tls !== undefined || l.http_filter_chains.length > 0;
}

/** The TLS settings of the listener's server (client certificates asked for, versions,
 *  session resumption: the same on every chain): its own `tls`, else its first chain's. */
export function serverTls(l: Listener): ListenerTlsConfig | undefined {
  return l.tls ?? l.http_filter_chains[0]?.tls;
}

/** Whether any chain of the listener (its own `tls` included) verifies client
 *  certificates. Also on a draft that failed validation (a chain may lack its `tls`). */
export function asksForClientCertificates(l: { readonly tls?: ListenerTlsConfig; readonly http_filter_chains: readonly HttpFilterChain[] }): boolean {
  return l.tls?.ca_file !== undefined || l.http_filter_chains.some((c) => (c?.tls as ListenerTlsConfig | undefined)?.ca_file !== undefined);
}
