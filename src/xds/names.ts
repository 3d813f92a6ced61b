// Names both directions agree on: the encoder (Remora config → xDS resources,
// src/xds/encode*.ts) writes them and the translation (xDS resources → Remora config,
// src/xds/translate*.ts) reads them. Filter and transport socket names, the per-route
// wrapper's type URL, the ALPN lists Remora offers, where Remora-only fields travel, and
// the identity regex that stands for Remora's `*`. docs/xds.md describes each.

/** Type URL of the per-route filter config wrapper (`is_optional` lets gRPC skip it). */
export const FILTER_CONFIG_TYPE_URL = 'type.googleapis.com/envoy.config.route.v3.FilterConfig';
export const HCM_FILTER_NAME = 'envoy.filters.network.http_connection_manager';
export const ROUTER_FILTER_NAME = 'envoy.filters.http.router';
export const TLS_TRANSPORT_SOCKET = 'envoy.transport_sockets.tls';
/** TCP listeners and send_proxy_protocol clusters. */
export const TCP_PROXY_FILTER_NAME = 'envoy.filters.network.tcp_proxy';
export const TLS_INSPECTOR = 'envoy.filters.listener.tls_inspector';
export const HTTP_INSPECTOR = 'envoy.filters.listener.http_inspector';
export const PROXY_PROTOCOL_LISTENER_FILTER = 'envoy.filters.listener.proxy_protocol';
export const UPSTREAM_PROXY_PROTOCOL_SOCKET = 'envoy.transport_sockets.upstream_proxy_protocol';
export const RAW_BUFFER_SOCKET = 'envoy.transport_sockets.raw_buffer';
/** The typed_extension_protocol_options key of a cluster's HttpProtocolOptions. */
export const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** ALPN protocol ids of the HTTP versions Remora speaks over TLS. */
export const ALPN_H2 = 'h2';
export const ALPN_H1 = 'http/1.1';
/** What a TLS listener offers by ALPN per codec_type, in its order of preference
 *  (workers/tls-listener.ts). */
export const LISTENER_ALPN = { auto: [ALPN_H2, ALPN_H1], http1: [ALPN_H1], http2: [ALPN_H2] } as const;

/** `filter_metadata` namespace of the Remora-only fields (see docs/xds.md). */
export const REMORA_METADATA = 'remora';
/** The endpoint metadata namespace a cluster's transport_socket_matches read. */
export const TRANSPORT_SOCKET_MATCH_METADATA = 'envoy.transport_socket_match';

/** Remora-only fields carried in `metadata.filter_metadata.remora`, per resource level. */
export const REMORA_EXTENSIONS = {
  listener: ['access_log', 'generate_traceparent', 'rate_limit_keys', 'codec', 'max_connections'],
  /** A TCP listener's (tcp_proxy filter chains): the others are HTTP settings. */
  tcpListener: ['access_log', 'max_connections'],
  route: ['max_request_body_bytes', 'retry_allow_request_headers', 'retry_non_idempotent_on_reset', 'rate_limit_keys'],
  cluster: ['idle_timeout_ms', 'max_connections_per_endpoint', 'outlier_probation_requests', 'dns_min_refresh_rate_ms', 'dns_query_timeout_ms', 'dns_query_tries'],
} as const;

/** The principal_name regex that stands for Remora's `*` (any verified identity). */
export const ANY_IDENTITY_REGEX = '.+';
