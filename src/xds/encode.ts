// Remora's config model → Envoy xDS v3 resources, for the reference control plane: the
// inverse of src/xds/translate.ts, within the subset it accepts, so a config served and
// translated back is the same config. Each listener gets an HttpConnectionManager that
// fetches its routes over RDS (a RouteConfiguration named after the listener,
// encode-route.ts), and each of its HTTPS filter chains a filter chain with
// `server_names`, its own TLS and route configuration (`<listener> <chain>`); clusters are EDS with a ClusterLoadAssignment each (or STATIC with
// the endpoints inline). TLS is a `transport_socket` (filter chain, cluster),
// authorization RBAC HTTP filters and per-route RBAC, the XFCC mode the HCM's
// forward_client_cert_details, always written so that a round trip is exact, as are the
// HCM's codec_type and http2_protocol_options (with PING keepalive); an HTTP/2 cluster
// has HttpProtocolOptions with explicit_http_config.http2_protocol_options, a
// `downstream` one use_downstream_protocol_config. TLS contexts name the ALPN protocols
// Remora offers.
// A TCP listener (tcp_proxy, filter_chains) has filter chains of tcp_proxy filters and no
// routes, a cluster's send_proxy_protocol a PROXY protocol transport socket around its
// TLS one (encode-tcp.ts); upgrade_configs go to the HCM and the route actions.
// Remora-only fields travel in `metadata.filter_metadata.remora` (docs/xds.md). The
// objects are in proto-loader's shape, ready for encodeAny; nested `Any`s are already
// encoded (encode-common.ts).

import type { Cluster, Listener, RemoraConfig, TracingConfig } from '../config/types.js';
import {
  ADS, downstreamTlsSocket, duration, encode, hasRules, LISTENER_LIMIT_FILTER, LISTENER_RBAC, listenerSocketOptions, localRateLimit, metadata, RBAC_ACTIONS,
  rateLimitKeys, rbacRules, ROUTE_LIMIT_SLOT, ROUTE_RBAC_SLOT, toStruct, u32, upgradeConfigs, upstreamTlsSocket, XFCC_SETS,
} from './encode-common.js';
import { isTcpListener, tcpListener, upstreamProxyProtocolSocket } from './encode-tcp.js';
import { routeConfiguration } from './encode-route.js';
import { dnsClusterFields, dnsExtensions } from './encode-dns.js';
import { ALPN_H1, ALPN_H2, HCM_FILTER_NAME, HTTP_PROTOCOL_OPTIONS, LISTENER_ALPN, PROXY_PROTOCOL_LISTENER_FILTER, ROUTER_FILTER_NAME, RAW_BUFFER_SOCKET, TRANSPORT_SOCKET_MATCH_METADATA } from './names.js';
import { TypeUrl, type ProtoObject } from './protos.js';
import { listenerVirtualHosts } from '../config/listener-chains.js';
import { chainTlsKey } from '../tls/chain-key.js';

export interface XdsResources {
  listeners: Map<string, ProtoObject>;
  /** RouteConfiguration by name (a listener's is named after it). */
  routes: Map<string, ProtoObject>;
  clusters: Map<string, ProtoObject>;
  /** ClusterLoadAssignment by cluster name (EDS clusters only). */
  endpoints: Map<string, ProtoObject>;
}

/** Converts a config; throws only for a config that did not come from validateConfig. */
export function toXdsResources(config: RemoraConfig, opts: { edsForAllClusters: boolean }): XdsResources {
  const out: XdsResources = { listeners: new Map(), routes: new Map(), clusters: new Map(), endpoints: new Map() };
  for (const l of config.listeners) {
    if (isTcpListener(l)) {
      out.listeners.set(l.name, tcpListener(l)); // no routes
      continue;
    }
    out.listeners.set(l.name, listener(l, config.tracing));
    if (ownChain(l)) out.routes.set(l.name, routeConfiguration(l.name, l.virtual_hosts));
    for (const fc of l.http_filter_chains) out.routes.set(chainTlsKey(l.name, fc.name), routeConfiguration(chainTlsKey(l.name, fc.name), fc.virtual_hosts));
  }
  for (const c of config.clusters) {
    const eds = opts.edsForAllClusters && c.dns === undefined; // a DNS cluster lists its host names inline
    out.clusters.set(c.name, cluster(c, eds));
    if (eds) out.endpoints.set(c.name, loadAssignment(c));
  }
  return out;
}

/** A gRPC API listener (for `xds:///name` targets): an HttpConnectionManager that fetches
 *  `routeConfigName` over ADS, with the router filter only — the shape gRPC clients need. */
export function grpcApiListener(name: string, routeConfigName: string): ProtoObject {
  return {
    name,
    api_listener: {
      api_listener: encode(TypeUrl.HttpConnectionManager, {
        stat_prefix: name,
        rds: { route_config_name: routeConfigName, config_source: ADS },
        http_filters: [{ name: ROUTER_FILTER_NAME, typed_config: encode(TypeUrl.Router, {}) }],
      }),
    },
  };
}

/** The listener's RBAC filters with rules, and a rule-less slot per action some route uses. */
function rbacFilters(l: Listener): { listener: ProtoObject[]; routeSlots: ProtoObject[] } {
  const routes = listenerVirtualHosts(l).flatMap((vh) => vh.routes.map((r) => r.authorization));
  return {
    listener: RBAC_ACTIONS.filter((a) => hasRules(l.authorization, a))
      .map((a) => ({ name: LISTENER_RBAC[a], typed_config: encode(TypeUrl.Rbac, { rules: rbacRules(a, l.authorization?.[a] ?? []) }) })),
    routeSlots: RBAC_ACTIONS.filter((a) => routes.some((r) => hasRules(r, a)))
      .map((a) => ({ name: ROUTE_RBAC_SLOT[a], typed_config: encode(TypeUrl.Rbac, {}) })),
  };
}

/** A listener's tracing as the HCM's `tracing`: its sampling and custom tags, and, when
 *  the config's root block sends spans to a cluster, an OpenTelemetry provider naming it
 *  (a collector given by URL stays the sidecar's own bootstrap setting). */
function hcmTracing(l: Listener, root: TracingConfig | undefined): ProtoObject | undefined {
  const t = l.tracing;
  if (root === undefined || t?.enabled === false) return undefined;
  const pct = (v: number | undefined): ProtoObject | undefined => (v === undefined ? undefined : { value: v });
  const otlp = root.otlp;
  const provider = otlp.cluster === undefined ? undefined : {
    name: 'envoy.tracers.opentelemetry',
    typed_config: encode(TypeUrl.OpenTelemetryTracer, {
      ...(otlp.protocol === 'grpc' || otlp.protocol === undefined
        ? { grpc_service: { envoy_grpc: { cluster_name: otlp.cluster }, ...(otlp.timeout_ms !== undefined ? { timeout: duration(otlp.timeout_ms) } : {}) } }
        : { http_service: { http_uri: { uri: `http://${otlp.cluster}/v1/traces`, cluster: otlp.cluster, timeout: duration(otlp.timeout_ms ?? 10_000) } } }),
      ...(root.service_name !== undefined ? { service_name: root.service_name } : {}),
    }),
  };
  return {
    random_sampling: pct(t?.random_sampling),
    client_sampling: pct(t?.client_sampling),
    overall_sampling: pct(t?.overall_sampling),
    ...(t !== undefined ? { max_path_tag_length: u32(t.max_path_tag_length) } : {}),
    custom_tags: (t?.custom_tags ?? []).map((c) => ({
      tag: c.tag,
      ...(c.literal !== undefined ? { literal: { value: c.literal } } : {}),
      ...(c.environment !== undefined ? { environment: { name: c.environment, default_value: c.default_value ?? '' } } : {}),
      ...(c.request_header !== undefined ? { request_header: { name: c.request_header, default_value: c.default_value ?? '' } } : {}),
    })),
    ...(provider !== undefined ? { provider } : {}),
  };
}

/** Whether the listener has a chain of its own: always, but for one whose HTTPS filter
 *  chains take every connection there is (no `tls` and routes of its own). */
function ownChain(l: Listener): boolean {
  return l.http_filter_chains.length === 0 || l.tls !== undefined;
}

function listener(l: Listener, tracing: TracingConfig | undefined): ProtoObject {
  const slots = Math.max(0, ...listenerVirtualHosts(l).flatMap((vh) => vh.routes.map((r) => r.rate_limits.length)));
  const rbac = rbacFilters(l);
  // Remora's order: listener authorization, listener limits, route authorization, route limits.
  const httpFilters = [
    ...rbac.listener,
    ...l.rate_limits.map((r) => ({ name: `${LISTENER_LIMIT_FILTER}${r.name}`, typed_config: encode(TypeUrl.LocalRateLimit, localRateLimit(r)) })),
    ...rbac.routeSlots,
    ...Array.from({ length: slots }, (_, i) => ({
      name: `${ROUTE_LIMIT_SLOT}${i}`,
      typed_config: encode(TypeUrl.LocalRateLimit, { stat_prefix: `route_local_ratelimit_${i}` }),
    })),
    { name: ROUTER_FILTER_NAME, typed_config: encode(TypeUrl.Router, {}) },
  ];
  const hcm: ProtoObject = {
    stat_prefix: l.name,
    rds: { route_config_name: l.name, config_source: ADS },
    http_filters: httpFilters,
    max_request_headers_kb: u32(l.max_request_headers_kb),
    normalize_path: { value: l.normalize_path },
    ...(l.merge_slashes ? { merge_slashes: true } : {}),
    path_with_escaped_slashes_action: l.path_with_escaped_slashes_action.toUpperCase(),
    server_name: l.server_name,
    server_header_transformation: l.server_header_transformation.toUpperCase(),
    request_headers_timeout: duration(l.request_headers_timeout_ms),
    codec_type: l.codec_type.toUpperCase(),
    http2_protocol_options: http2Options(l.http2_protocol_options),
    common_http_protocol_options: {
      idle_timeout: duration(l.idle_timeout_ms),
      max_headers_count: u32(l.max_request_headers_count),
      ...(l.max_requests_per_connection > 0 ? { max_requests_per_connection: u32(l.max_requests_per_connection) } : {}),
      ...(l.headers_with_underscores_action !== 'allow' ? { headers_with_underscores_action: l.headers_with_underscores_action.toUpperCase() } : {}),
    },
    // enabled unset is true, in Envoy and in Remora.
    upgrade_configs: upgradeConfigs(l.upgrade_configs),
    tracing: hcmTracing(l, tracing),
    // Explicit, also SANITIZE: absent is Envoy's SANITIZE, not Remora's file default.
    forward_client_cert_details: l.forward_client_cert_details.toUpperCase(),
    // The elements Remora sets, so that an Envoy sets them too.
    ...(XFCC_SETS.includes(l.forward_client_cert_details) ? { set_current_client_cert_details: { subject: { value: true }, uri: true, dns: true } } : {}),
  };
  return {
    name: l.name,
    address: { socket_address: { address: l.address, port_value: l.port } },
    ...listenerSocketOptions(l),
    ...(l.proxy_protocol
      ? { listener_filters: [{ name: PROXY_PROTOCOL_LISTENER_FILTER, typed_config: encode(TypeUrl.ProxyProtocol, {}) }] }
      : {}),
    // The listener's own chain takes every connection, or those whose server name no
    // HTTPS filter chain lists; each of those has the same HttpConnectionManager but its
    // routes (RouteConfiguration `<listener> <chain>`).
    filter_chains: [
      ...(ownChain(l) ? [{
        filters: [{ name: HCM_FILTER_NAME, typed_config: encode(TypeUrl.HttpConnectionManager, hcm) }],
        ...(l.tls !== undefined ? { transport_socket: downstreamTlsSocket(l.tls, LISTENER_ALPN[l.codec_type]) } : {}),
      }] : []),
      ...l.http_filter_chains.map((fc) => ({
        name: fc.name,
        filter_chain_match: { server_names: [...fc.server_names] },
        filters: [{ name: HCM_FILTER_NAME, typed_config: encode(TypeUrl.HttpConnectionManager, { ...hcm, rds: { route_config_name: chainTlsKey(l.name, fc.name), config_source: ADS } }) }],
        transport_socket: downstreamTlsSocket(fc.tls, LISTENER_ALPN[l.codec_type]),
      })),
    ],
    ...metadata({
      access_log: l.access_log === undefined ? undefined : { ...l.access_log },
      generate_traceparent: l.generate_traceparent ? true : undefined,
      codec: l.codec === 'strict' ? undefined : l.codec,
      max_connections: l.max_connections > 0 ? l.max_connections : undefined,
      rate_limit_keys: rateLimitKeys(l.rate_limits),
    }),
  };
}

function cluster(c: Cluster, eds: boolean): ProtoObject {
  const cb = c.circuit_breakers;
  const od = c.outlier_detection;
  const hc = c.health_check;
  return {
    name: c.name,
    type: eds ? 'EDS' : 'STATIC',
    ...(eds ? { eds_cluster_config: { eds_config: ADS } } : { load_assignment: loadAssignment(c) }),
    ...(c.dns !== undefined ? dnsClusterFields(c.dns) : {}),
    connect_timeout: duration(c.connect_timeout_ms),
    lb_policy: c.lb_policy.toUpperCase(),
    circuit_breakers: {
      thresholds: [{
        priority: 'DEFAULT',
        max_connections: u32(cb.max_connections),
        max_pending_requests: u32(cb.max_pending_requests),
        max_requests: u32(cb.max_requests),
        max_retries: u32(cb.max_retries),
        ...(cb.retry_budget !== undefined
          ? { retry_budget: { budget_percent: { value: cb.retry_budget.budget_percent }, min_retry_concurrency: u32(cb.retry_budget.min_retry_concurrency) } }
          : {}),
      }],
    },
    ...(od !== undefined
      ? {
        outlier_detection: {
          // A detector at 0 is not enforced (Envoy's enforcing_* percentages).
          ...(od.consecutive_5xx > 0 ? { consecutive_5xx: u32(od.consecutive_5xx) } : {}),
          enforcing_consecutive_5xx: u32(od.consecutive_5xx > 0 ? 100 : 0),
          ...(od.consecutive_gateway_failure > 0 ? { consecutive_gateway_failure: u32(od.consecutive_gateway_failure) } : {}),
          enforcing_consecutive_gateway_failure: u32(od.consecutive_gateway_failure > 0 ? 100 : 0),
          ...(od.success_rate_minimum_hosts > 0 ? { success_rate_minimum_hosts: u32(od.success_rate_minimum_hosts) } : {}),
          enforcing_success_rate: u32(od.success_rate_minimum_hosts > 0 ? 100 : 0),
          success_rate_request_volume: u32(od.success_rate_request_volume),
          success_rate_stdev_factor: u32(Math.round(od.success_rate_stdev_factor * 1000)), // Envoy: 1900 = 1.9
          interval: duration(od.interval_ms),
          base_ejection_time: duration(od.base_ejection_time_ms),
          max_ejection_time: duration(od.max_ejection_time_ms),
          max_ejection_percent: u32(od.max_ejection_percent),
        },
      }
      : {}),
    ...(hc !== undefined
      ? {
        health_checks: [{
          timeout: duration(hc.timeout_ms),
          interval: duration(hc.interval_ms),
          healthy_threshold: u32(hc.healthy_threshold),
          unhealthy_threshold: u32(hc.unhealthy_threshold),
          ...healthChecker(c, hc),
        }],
      }
      : {}),
    common_lb_config: { healthy_panic_threshold: { value: c.panic_threshold_percent } },
    ...transportSocket(c),
    ...transportSocketMatches(c),
    // HTTP/1.1 is Envoy's default: nothing to write (an http1 cluster's
    // http2_protocol_options do nothing and are not sent).
    ...(c.protocol !== 'http1' || c.max_requests_per_connection > 0
      ? { typed_extension_protocol_options: { [HTTP_PROTOCOL_OPTIONS]: encode(TypeUrl.HttpProtocolOptions, upstreamVersion(c)) } }
      : {}),
    ...(c.tcp_keepalive !== undefined
      ? { upstream_connection_options: { tcp_keepalive: c.tcp_keepalive.time_s !== undefined ? { keepalive_time: u32(c.tcp_keepalive.time_s) } : {} } }
      : {}),
    ...metadata({
      idle_timeout_ms: c.idle_timeout_ms,
      max_connections_per_endpoint: c.max_connections_per_endpoint,
      outlier_probation_requests: od !== undefined && od.probation_requests !== 1 ? od.probation_requests : undefined,
      ...dnsExtensions(c.dns),
    }),
  };
}

/** A cluster's TLS socket, inside the PROXY protocol one with send_proxy_protocol. */
function transportSocket(c: Cluster): ProtoObject {
  const tls = c.tls !== undefined ? upstreamTlsSocket(c.tls, CLUSTER_ALPN[c.protocol]) : undefined;
  if (c.send_proxy_protocol !== undefined) return { transport_socket: upstreamProxyProtocolSocket(c.send_proxy_protocol, tls) };
  return tls !== undefined ? { transport_socket: tls } : {};
}

/** Per-endpoint TLS or plaintext: entries of the cluster's one TLS socket or raw_buffer. */
function transportSocketMatches(c: Cluster): ProtoObject {
  if (c.transport_socket_matches === undefined) return {};
  const tls = c.tls !== undefined ? upstreamTlsSocket(c.tls, CLUSTER_ALPN[c.protocol]) : undefined;
  const plaintext = { name: RAW_BUFFER_SOCKET, typed_config: encode(TypeUrl.RawBuffer, {}) };
  return {
    transport_socket_matches: c.transport_socket_matches.map((m) => ({
      name: m.name, match: toStruct(m.match), transport_socket: m.tls && tls !== undefined ? tls : plaintext,
    })),
  };
}

/** HttpProtocolOptions' version choice for an `http2`, `downstream` or `auto` cluster. */
function upstreamVersion(c: Cluster): ProtoObject {
  const http2 = http2Options(c.http2_protocol_options);
  const common = c.max_requests_per_connection > 0 ? { common_http_protocol_options: { max_requests_per_connection: u32(c.max_requests_per_connection) } } : {};
  switch (c.protocol) {
    case 'downstream':
      return { ...common, use_downstream_protocol_config: { http2_protocol_options: http2 } };
    case 'auto':
      return { ...common, auto_config: { http2_protocol_options: http2 } };
    case 'http1':
      return { ...common, explicit_http_config: { http_protocol_options: {} } };
    default:
      return { ...common, explicit_http_config: { http2_protocol_options: http2 } };
  }
}

/** A cluster's ALPN list: what its connections offer. A `downstream` cluster offers h2 or
 *  http/1.1 per connection, which no one list says: none is written. */
const CLUSTER_ALPN: Readonly<Record<Cluster['protocol'], readonly string[] | undefined>> = {
  http1: [ALPN_H1],
  http2: [ALPN_H2],
  downstream: undefined,
  auto: [ALPN_H2, ALPN_H1],
};

/** The HealthCheck's checker: gRPC (authority: the check's own, else its `host` when that
 *  is not the cluster name, Envoy's default; service_name '' is Envoy's default too), TCP
 *  (payloads as hex `text`), else an HTTP GET. */
function healthChecker(c: Cluster, hc: NonNullable<Cluster['health_check']>): ProtoObject {
  if (hc.grpc !== undefined) {
    const authority = hc.grpc.authority ?? (hc.host !== c.name ? hc.host : undefined);
    return {
      grpc_health_check: {
        ...(hc.grpc.service_name !== '' ? { service_name: hc.grpc.service_name } : {}),
        ...(authority !== undefined ? { authority } : {}),
      },
    };
  }
  if (hc.tcp !== undefined) {
    return {
      tcp_health_check: {
        ...(hc.tcp.send !== undefined ? { send: { text: hc.tcp.send } } : {}),
        receive: hc.tcp.receive.map((text) => ({ text })),
      },
    };
  }
  return {
    http_health_check: {
      host: hc.host,
      path: hc.path,
      expected_statuses: hc.expected_statuses.map(([start, end]) => ({ start, end })),
      ...(hc.receive.length > 0 ? { receive: hc.receive.map((text) => ({ text })), response_buffer_size: { value: String(hc.response_buffer_size) } } : {}),
    },
  };
}

/** Http2ProtocolOptions with every setting written: Envoy's defaults are not Remora's.
 *  Keepalive PINGs come without jitter (Envoy's unset jitter is 15 %). */
function http2Options(o: Listener['http2_protocol_options'] | Cluster['http2_protocol_options']): ProtoObject {
  const ka = o.connection_keepalive;
  return {
    max_concurrent_streams: u32(o.max_concurrent_streams),
    initial_stream_window_size: u32(o.initial_stream_window_size),
    initial_connection_window_size: u32(o.initial_connection_window_size),
    ...(ka !== undefined ? { connection_keepalive: { interval: duration(ka.interval_ms), timeout: duration(ka.timeout_ms), interval_jitter: { value: 0 } } } : {}),
  };
}

/** One locality (gRPC clients need one, with a weight) holding every endpoint. */
function loadAssignment(c: Cluster): ProtoObject {
  return {
    cluster_name: c.name,
    endpoints: [{
      locality: {},
      load_balancing_weight: u32(1),
      lb_endpoints: c.endpoints.map((e) => ({
        endpoint: {
          address: { socket_address: { address: e.address, port_value: e.port } },
          ...(e.health_check_host !== undefined ? { health_check_config: { hostname: e.health_check_host } } : {}),
        },
        ...(e.transport_socket_match !== undefined ? { metadata: { filter_metadata: { [TRANSPORT_SOCKET_MATCH_METADATA]: toStruct(e.transport_socket_match) } } } : {}),
      })),
    }],
  };
}
