// DNS clusters' endpoints as the data plane sees them: the config as written keeps the
// host names (what /config_dump shows); workers, health checks and outlier detection
// use a copy whose DNS clusters list the addresses the main thread resolved last
// (src/main/dns-resolver.ts). Static clusters are passed through unchanged.

import type { Cluster, RemoraConfig, ResolvedEndpoints, UpstreamEndpoint } from './types.js';

const NONE: readonly UpstreamEndpoint[] = [];

/** `cluster` with the endpoints the data plane uses: its resolved ones when it is a DNS
 *  cluster (none before the first answer), else itself. */
export function dataPlaneCluster(cluster: Cluster, resolved: ResolvedEndpoints | undefined): Cluster {
  if (cluster.dns === undefined) return cluster;
  return { ...cluster, endpoints: resolved?.[cluster.name] ?? NONE };
}

/** `config` with every DNS cluster's endpoints replaced by its resolved ones. */
export function dataPlaneConfig(config: RemoraConfig, resolved: ResolvedEndpoints | undefined): RemoraConfig {
  if (!config.clusters.some((c) => c.dns !== undefined)) return config;
  return { ...config, clusters: config.clusters.map((c) => dataPlaneCluster(c, resolved)) };
}

/** The address connections to `ep` go to. */
export function dialAddress(ep: UpstreamEndpoint): string {
  return ep.dial ?? ep.address;
}

/** The host name TLS sends as SNI for `ep` (when the cluster sets none): the name
 *  written, also when a DNS cluster resolved it. */
export function tlsName(ep: UpstreamEndpoint): string {
  return ep.hostname ?? ep.address;
}
