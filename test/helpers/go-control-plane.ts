// go-control-plane-shaped xDS resources for tests, written from its example server's
// snapshot (the "listener_0" / "local_route" / "example_proxy_cluster" sample its
// documentation walks through): an HTTP listener whose HttpConnectionManager (a network
// filter named "http-connection-manager", an HTTP filter named "http-router") takes
// RouteConfiguration "local_route" from an api_config_source naming the bootstrap's
// "xds_cluster"; one virtual host for every domain routing "/" to a LOGICAL_DNS cluster,
// with the upstream host name as Host. Zero values (codec_type AUTO, lb_policy
// ROUND_ROBIN, protocol TCP) are left out, as a Go sender leaves them out. The test's
// changes: address 127.0.0.1 and port 0; the upstream is `localhost` on the test's port,
// and the cluster names the DNS server that resolves it (see gcpCluster). Also the
// version go-control-plane's cache gives each resource of a delta response (Envoy
// Gateway's xDS server is built on it too).

import { createHash } from 'node:crypto';
import { TypeUrl } from '../../src/xds/protos.js';
import { protos, type Obj } from './xds.js';

export const GCP_LISTENER = 'listener_0';
export const GCP_ROUTE = 'local_route';
export const GCP_CLUSTER = 'example_proxy_cluster';
export const GCP_UPSTREAM_HOST = 'localhost';

/** The version go-control-plane's cache gives a resource in a delta response (and
 *  expects back in initial_resource_versions): the hex SHA-256 of its encoding. */
export function resourceVersion(typeUrl: string, resource: Obj): string {
  return createHash('sha256').update(protos.encodeAny(typeUrl, resource).value).digest('hex');
}

/** The example's ConfigSource for RDS: its own gRPC stream to the management server,
 *  named by the bootstrap cluster "xds_cluster". */
export const GCP_CONFIG_SOURCE = {
  resource_api_version: 'V3',
  api_config_source: {
    api_type: 'GRPC',
    transport_api_version: 'V3',
    set_node_on_first_message_only: true,
    grpc_services: [{ envoy_grpc: { cluster_name: 'xds_cluster' } }],
  },
};

/** The example's cluster, with `dnsServer` (`IP:port`) as its resolver: the example's
 *  upstream is a public host name its Envoy resolves through the system's DNS; here the
 *  name is `localhost`, which Remora's resolver (c-ares queries, no hosts file) asks a
 *  DNS server for, so the test names its own. */
export function gcpCluster(upstreamPort: number, dnsServer: string): Obj {
  const [ip, port] = dnsServer.split(':');
  return {
    name: GCP_CLUSTER,
    connect_timeout: { seconds: 5 },
    type: 'LOGICAL_DNS',
    load_assignment: {
      cluster_name: GCP_CLUSTER,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: GCP_UPSTREAM_HOST, port_value: upstreamPort } } } }] }],
    },
    dns_lookup_family: 'V4_ONLY',
    typed_dns_resolver_config: {
      name: 'envoy.network.dns_resolver.cares',
      typed_config: protos.encodeAny(TypeUrl.CaresDnsResolver, { resolvers: [{ socket_address: { address: ip, port_value: Number(port) } }] }),
    },
  };
}

export function gcpRoutes(): Obj {
  return {
    name: GCP_ROUTE,
    virtual_hosts: [{
      name: 'local_service',
      domains: ['*'],
      routes: [{ match: { prefix: '/' }, route: { cluster: GCP_CLUSTER, host_rewrite_literal: GCP_UPSTREAM_HOST } }],
    }],
  };
}

export function gcpListener(port: number): Obj {
  const manager = {
    stat_prefix: 'http',
    rds: { config_source: GCP_CONFIG_SOURCE, route_config_name: GCP_ROUTE },
    http_filters: [{ name: 'http-router', typed_config: protos.encodeAny(TypeUrl.Router, {}) }],
  };
  return {
    name: GCP_LISTENER,
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [{ filters: [{ name: 'http-connection-manager', typed_config: protos.encodeAny(TypeUrl.HttpConnectionManager, manager) }] }],
  };
}
