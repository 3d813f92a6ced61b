// Admin handler GET /clusters: per cluster its breakers, outlier ejections and, per
// endpoint, health and the workers' connection-pool state summed over workers. A DNS
// cluster lists its resolved endpoints, and per host name its latest answer.

import { dataPlaneCluster } from '../../config/dns-endpoints.js';
import type { UpstreamEndpoint } from '../../config/types.js';
import type { AdminHandler } from './context.js';

export const clustersHandler: AdminHandler = async (ctx) => {
  const replies = await ctx.pool.stats();
  // Each worker's pool states by cluster and endpoint key, indexed once: a cluster may
  // have thousands of endpoints, and a search of the list per endpoint is quadratic.
  const pools = replies.map((r) => new Map(Object.entries(r.clusters).map(([name, states]) => [name, new Map(states.map((e) => [e.endpoint, e]))])));
  const snap = ctx.snapshot();
  const res = ctx.resilience;
  const checks = res.healthChecks();
  const clusters = snap.config.clusters.map((written) => dataPlaneCluster(written, snap.resolved)).map((c) => ({
    name: c.name,
    lb_policy: c.lb_policy,
    ...(c.dns !== undefined ? { dns: { type: c.dns.type, ...ctx.dns.countsOf(c.name), names: ctx.dns.view(c.name) } } : {}),
    circuit_breakers: res.breakers(c),
    outlier_detection: c.outlier_detection !== undefined ? { ejected_now: res.detector.activeEjections(c.name) } : null,
    endpoints: (c.endpoints as readonly UpstreamEndpoint[]).map((ep) => {
      const key = `${ep.address}:${ep.port}`;
      let active = 0;
      let connections = 0;
      let idle = 0;
      let queued = 0;
      for (const byCluster of pools) {
        const state = byCluster.get(c.name)?.get(key);
        if (state === undefined) continue;
        active += state.active;
        connections += state.connections;
        idle += state.idle;
        queued += state.queued;
      }
      return {
        address: ep.address,
        port: ep.port,
        ...(ep.hostname !== undefined ? { hostname: ep.hostname } : {}),
        ...(ep.dial !== undefined ? { dial: ep.dial } : {}),
        ...res.endpointHealth(c.name, ep.address, ep.port, checks),
        active_requests: active,
        connections,
        idle_connections: idle,
        queued_requests: queued,
      };
    }),
  }));
  return [200, { version: snap.version, clusters, rate_limit_table: res.keyedTable() }];
};
