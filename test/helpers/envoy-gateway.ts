// Envoy Gateway-shaped xDS resources for tests, written from what Envoy Gateway's
// translator generates (egctl x translate, its documentation) for a Gateway `default/eg`
// with one HTTP listener `http` and an HTTPRoute `default/backend` for www.example.com
// with one rule: the listener (its HttpConnectionManager in default_filter_chain), the
// RouteConfiguration named after the listener, the EDS cluster of the rule and its
// ClusterLoadAssignment. Addresses and ports are the test's (127.0.0.1, port 0); the
// resources carry the settings Envoy Gateway writes by default, and those it writes for
// the policies named where they are used (ClientTrafficPolicy, BackendTrafficPolicy).

import { TypeUrl } from '../../src/xds/protos.js';
import { protos, type Obj } from './xds.js';

export const EG_LISTENER = 'default/eg/http';
/** The RouteConfiguration of the listener: named as the listener. */
export const EG_ROUTE_CONFIG = 'default/eg/http';
export const EG_VHOST = 'default/eg/http/www_example_com';
export const EG_ROUTE = 'httproute/default/backend/rule/0/match/0/www_example_com';
/** The rule's cluster, and its ClusterLoadAssignment (service_name). */
export const EG_CLUSTER = 'httproute/default/backend/rule/0';

/** Plain data → google.protobuf.Struct (protobufjs names Value's fields in camelCase). */
export function struct(o: Record<string, unknown>): Obj {
  const value = (v: unknown): Obj => {
    if (typeof v === 'number') return { numberValue: v };
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
    return { structValue: struct(v as Record<string, unknown>) };
  };
  return { fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, value(v)])) };
}

/** The `envoy-gateway` metadata naming the Gateway API resource a piece comes from. */
const egMetadata = (resource: Record<string, string>): Obj => ({ filter_metadata: { 'envoy-gateway': struct({ resources: [resource] }) } });

/** The operators of Envoy Gateway's default access log line (a JSON object per request,
 *  as a text format), by key. */
const LOG_FIELDS: readonly (readonly [string, string])[] = [
  ['start_time', '%START_TIME%'], ['method', '%REQ(:METHOD)%'], ['x-envoy-origin-path', '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%'],
  ['protocol', '%PROTOCOL%'], ['response_code', '%RESPONSE_CODE%'], ['response_flags', '%RESPONSE_FLAGS%'],
  ['response_code_details', '%RESPONSE_CODE_DETAILS%'], ['connection_termination_details', '%CONNECTION_TERMINATION_DETAILS%'],
  ['upstream_transport_failure_reason', '%UPSTREAM_TRANSPORT_FAILURE_REASON%'], ['bytes_received', '%BYTES_RECEIVED%'],
  ['bytes_sent', '%BYTES_SENT%'], ['duration', '%DURATION%'], ['x-envoy-upstream-service-time', '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%'],
  ['x-forwarded-for', '%REQ(X-FORWARDED-FOR)%'], ['user-agent', '%REQ(USER-AGENT)%'], ['x-request-id', '%REQ(X-REQUEST-ID)%'],
  [':authority', '%REQ(:AUTHORITY)%'], ['upstream_host', '%UPSTREAM_HOST%'], ['upstream_cluster', '%UPSTREAM_CLUSTER%'],
  ['upstream_local_address', '%UPSTREAM_LOCAL_ADDRESS%'], ['downstream_local_address', '%DOWNSTREAM_LOCAL_ADDRESS%'],
  ['downstream_remote_address', '%DOWNSTREAM_REMOTE_ADDRESS%'], ['requested_server_name', '%REQUESTED_SERVER_NAME%'],
  ['route_name', '%ROUTE_NAME%'],
];
export const EG_LOG_FORMAT = `{${LOG_FIELDS.map(([k, op]) => `"${k}":"${op}"`).join(',')}}\n`;

/** The file access logger Envoy Gateway writes (to /dev/stdout, its text format). */
export const egAccessLog = (): Obj => ({
  name: 'envoy.access_loggers.file',
  typed_config: protos.encodeAny(TypeUrl.FileAccessLog, { path: '/dev/stdout', log_format: { text_format_source: { inline_string: EG_LOG_FORMAT } } }),
});

/** `underscores`: the HCM's headers_with_underscores_action. Envoy Gateway's default is
 *  REJECT_REQUEST; a ClientTrafficPolicy with `headers.withUnderscoresAction: Allow`
 *  makes it ALLOW, the enum's zero value, so a Go control plane sends the options
 *  message empty. */
export function egListener(opts: { port: number; underscores: 'REJECT_REQUEST' | 'ALLOW' }): Obj {
  const hcm = {
    stat_prefix: 'http-10080',
    access_log: [egAccessLog()],
    common_http_protocol_options: opts.underscores === 'ALLOW' ? {} : { headers_with_underscores_action: opts.underscores },
    http2_protocol_options: { max_concurrent_streams: { value: 100 }, initial_stream_window_size: { value: 65536 }, initial_connection_window_size: { value: 1048576 } },
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: protos.encodeAny(TypeUrl.Router, { suppress_envoy_headers: true }) }],
    merge_slashes: true,
    normalize_path: { value: true },
    path_with_escaped_slashes_action: 'UNESCAPE_AND_REDIRECT',
    rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: EG_ROUTE_CONFIG },
    server_header_transformation: 'PASS_THROUGH',
    use_remote_address: { value: true },
  };
  return {
    name: EG_LISTENER,
    address: { socket_address: { address: '127.0.0.1', port_value: opts.port } },
    // The listener-wide log: only connections no filter chain takes (flag NR).
    access_log: [{ ...egAccessLog(), filter: { response_flag_filter: { flags: ['NR'] } } }],
    // A plain HTTP listener has no filter chain to match: the HCM is the default chain.
    default_filter_chain: {
      name: EG_LISTENER,
      filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: protos.encodeAny(TypeUrl.HttpConnectionManager, hcm) }],
    },
    drain_type: 'MODIFY_ONLY',
    per_connection_buffer_limit_bytes: { value: 32768 },
    // ClientTrafficPolicy `connection.maxAcceptPerSocketEvent` (1 by default).
    max_connections_to_accept_per_socket_event: { value: 1 },
  };
}

export function egRoutes(): Obj {
  return {
    name: EG_ROUTE_CONFIG,
    ignore_port_in_host_matching: true,
    virtual_hosts: [{
      name: EG_VHOST,
      domains: ['www.example.com'],
      metadata: egMetadata({ kind: 'Gateway', name: 'eg', namespace: 'default', sectionName: 'http' }),
      routes: [{
        name: EG_ROUTE,
        match: { prefix: '/' },
        metadata: egMetadata({ kind: 'HTTPRoute', name: 'backend', namespace: 'default' }),
        route: { cluster: EG_CLUSTER, upgrade_configs: [{ upgrade_type: 'websocket' }] },
      }],
    }],
  };
}

/** The rule's cluster. `ignore_health_on_host_removal` comes with a BackendTrafficPolicy
 *  health check (left out here: only the flag is kept). */
const LEAST_REQUEST_POLICY = 'type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest';

export function egCluster(): Obj {
  return {
    name: EG_CLUSTER,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: EG_CLUSTER },
    connect_timeout: { seconds: 10 },
    lb_policy: 'LEAST_REQUEST',
    // Written beside lb_policy on every cluster by current Envoy Gateway releases.
    load_balancing_policy: { policies: [{ typed_extension_config: {
      name: 'envoy.load_balancing_policies.least_request',
      typed_config: protos.encodeAny(LEAST_REQUEST_POLICY, { locality_lb_config: { locality_weighted_lb_config: {} } }),
    } }] },
    dns_lookup_family: 'V4_ONLY',
    circuit_breakers: { thresholds: [{ max_retries: { value: 1024 } }] },
    common_lb_config: { locality_weighted_lb_config: {} },
    outlier_detection: {},
    per_connection_buffer_limit_bytes: { value: 32768 },
    ignore_health_on_host_removal: true,
  };
}

export function egAssignment(port: number): Obj {
  return {
    cluster_name: EG_CLUSTER,
    endpoints: [{
      locality: { region: `${EG_CLUSTER}/backend/0` },
      load_balancing_weight: { value: 1 },
      lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } }, load_balancing_weight: { value: 1 } }],
    }],
  };
}
