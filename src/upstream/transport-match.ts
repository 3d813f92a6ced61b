// Which transport reaches an endpoint of a cluster (Envoy's transport_socket_matches, what
// Istio's automatic mTLS writes): the first entry whose `match` the endpoint's
// `transport_socket_match` metadata satisfies (every key, same value; an empty match takes
// every endpoint) decides between the cluster's `tls` and plaintext; an endpoint no entry
// matches uses `tls` when the cluster has it. Read by the workers' pools (src/upstream/
// cluster.ts) and the main thread's health checks, so both reach an endpoint the same way.

import type { Cluster, Endpoint } from '../config/types.js';

/** Whether `ep` is reached over the cluster's TLS settings. */
export function endpointUsesTls(cluster: Pick<Cluster, 'tls' | 'transport_socket_matches'>, ep: Pick<Endpoint, 'transport_socket_match'>): boolean {
  if (cluster.tls === undefined) return false;
  const matches = cluster.transport_socket_matches;
  if (matches === undefined) return true;
  const meta = ep.transport_socket_match;
  for (const m of matches) {
    let all = true;
    for (const key in m.match) {
      if (meta?.[key] !== m.match[key]) {
        all = false;
        break;
      }
    }
    if (all) return m.tls;
  }
  return true;
}
