// Circuit-breaker admission of a request to a cluster (Envoy's ResourceManager checks on
// the request path): max_requests when an attempt gets its connection (requests waiting
// for one count as pending only, limited by the pool), and the constant replies for the
// two overflows, 503 UO with x-remora-overloaded.

import { ResponseFlag } from '../core/flags.js';
import { ClusterCounter } from '../stats/stat-names.js';
import type { LocalReply } from './request-filter.js';

const OVERLOADED_HEADERS: readonly string[] = Object.freeze(['x-remora-overloaded', 'true']);

/** The pool's queue is full (cluster max_pending_requests). */
export const PENDING_OVERFLOW: LocalReply = Object.freeze({
  status: 503,
  flag: ResponseFlag.UpstreamOverflow,
  body: 'upstream overflow: max_pending_requests reached',
  headers: OVERLOADED_HEADERS,
});

/** The cluster has max_requests outstanding. */
export const REQUESTS_OVERFLOW: LocalReply = Object.freeze({
  status: 503,
  flag: ResponseFlag.UpstreamOverflow,
  body: 'upstream overflow: max_requests reached',
  headers: OVERLOADED_HEADERS,
});

/** What admission needs of a cluster (a ClusterRuntime fits). */
export interface AdmissionCluster {
  readonly config: { readonly circuit_breakers: { readonly max_requests: number } };
  readonly resources: { readonly requests: { tryAcquire(max: number): boolean; release(): void } };
  readonly stats: { count(counter: number): void };
}

/** Takes one of the cluster's max_requests (outstanding requests, Envoy's
 *  attachStreamToClient): null when taken (the caller gives it back with
 *  releaseOutstandingRequest), else the overflow reply (counted). */
export function admitOutstandingRequest(cluster: AdmissionCluster): LocalReply | null {
  if (cluster.resources.requests.tryAcquire(cluster.config.circuit_breakers.max_requests)) return null;
  cluster.stats.count(ClusterCounter.RqOverflow);
  return REQUESTS_OVERFLOW;
}

export function releaseOutstandingRequest(cluster: AdmissionCluster): void {
  cluster.resources.requests.release();
}
