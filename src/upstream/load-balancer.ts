// Load-balancing policies: pick one endpoint index out of a cluster's endpoints.
// One instance per cluster per worker; state (the round-robin cursor) is per worker.

import type { LbPolicy } from '../config/types.js';

/** What a balancer may look at: the number of requests in flight per endpoint. */
export interface Balanced {
  readonly active: number;
}

export interface LoadBalancer {
  pick(endpoints: readonly Balanced[]): number;
}

/** Cycles through endpoints in order. */
export class RoundRobin implements LoadBalancer {
  private next = 0;
  pick(endpoints: readonly Balanced[]): number {
    const n = endpoints.length;
    if (this.next >= n) this.next = 0;
    return this.next++;
  }
}

/** Uniformly random endpoint. */
export class RandomPick implements LoadBalancer {
  pick(endpoints: readonly Balanced[]): number {
    return Math.floor(Math.random() * endpoints.length);
  }
}

/** Power of two choices: two random distinct endpoints, the one with fewer requests in
 *  flight wins (Envoy's least_request with choice_count 2). With two endpoints this is
 *  "the less busy one". */
export class LeastRequest implements LoadBalancer {
  pick(endpoints: readonly Balanced[]): number {
    const n = endpoints.length;
    if (n === 1) return 0;
    const a = Math.floor(Math.random() * n);
    let b = Math.floor(Math.random() * (n - 1));
    if (b >= a) b++;
    return endpoints[b].active < endpoints[a].active ? b : a;
  }
}

export function createLoadBalancer(policy: LbPolicy): LoadBalancer {
  switch (policy) {
    case 'round_robin':
      return new RoundRobin();
    case 'random':
      return new RandomPick();
    case 'least_request':
      return new LeastRequest();
  }
}
