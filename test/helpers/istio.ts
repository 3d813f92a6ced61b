// Istio-shaped xDS resources for tests, written from what istioctl proxy-config shows for
// a sidecar with traffic capture (trimmed): the virtual listeners (15001, 15006), the
// per-port listeners behind them (bind_to_port: false) and the pieces they are built of.
// Used by the translation's unit tests and by the end-to-end Istio bootstrap test.

import { TypeUrl, type AnyMessage } from '../../src/xds/protos.js';
import { protos, type Obj } from './xds.js';
// ---------------------------------------------------------------------------
// Istio-shaped resources (istioctl proxy-config listener -o json, trimmed)

export const any = (typeUrl: string, bytes: number[] = []): AnyMessage => ({ type_url: typeUrl, value: Buffer.from(bytes) });
export const address = (ip: string, port: number): Obj => ({ socket_address: { address: ip, port_value: port } });
export const tcpProxy = (fields: Obj): Obj => ({ name: 'envoy.filters.network.tcp_proxy', typed_config: protos.encodeAny(TypeUrl.TcpProxy, fields) });
/** Istio's upstream metadata exchange filter, on every outbound cluster (a TypedStruct, as
 *  Istio 1.2x writes it). */
export const CLUSTER_METADATA_EXCHANGE = {
  name: 'istio.metadata_exchange',
  typed_config: protos.encodeAny(TypeUrl.TypedStruct, {
    type_url: 'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange',
    value: { fields: { protocol: { stringValue: 'istio-peer-exchange' }, enable_discovery: { boolValue: true } } },
  }),
};
export const ISTIO_STATS = { name: 'istio.stats', typed_config: any('type.googleapis.com/stats.PluginConfig', [0x08, 0x01]) };
export const LOG = { name: 'envoy.access_loggers.file', typed_config: protos.encodeAny(TypeUrl.FileAccessLog, { path: '/dev/stdout' }) };
/** Istio's listener-wide log: only connections no filter chain takes (flag NR). */
export const NR_LOG = { ...LOG, filter: { response_flag_filter: { flags: ['NR'] } } };
export const listenerFilter = (name: string, type: string): Obj => ({
  name: `envoy.filters.listener.${name}`, typed_config: any(`type.googleapis.com/envoy.extensions.filters.listener.${name}.v3.${type}`),
});
export const ROUTER = { name: 'envoy.filters.http.router', typed_config: protos.encodeAny(TypeUrl.Router, {}) };
export const hcm = (fields: Obj): Obj => ({
  name: 'envoy.filters.network.http_connection_manager',
  typed_config: protos.encodeAny(TypeUrl.HttpConnectionManager, { stat_prefix: 'in', http_filters: [ROUTER], ...fields }),
});
export const rds = (name: string): Obj => ({ rds: { config_source: { ads: {}, initial_fetch_timeout: {}, resource_api_version: 'V3' }, route_config_name: name } });
export const INLINE_ROUTES = {
  route_config: {
    name: 'inbound|9080||',
    virtual_hosts: [{ name: 'inbound|http|9080', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'inbound|9080||' } }] }],
  },
};
export const blackhole = (name: string, port: number): Obj => ({
  name, filter_chain_match: { destination_port: { value: port } }, filters: [ISTIO_STATS, tcpProxy({ stat_prefix: 'BlackHoleCluster', cluster: 'BlackHoleCluster' })],
});
/** TLS whose certificates come over SDS on the ADS stream (a listener then waits for them). */
export const sdsTls = {
  name: 'envoy.transport_sockets.tls',
  typed_config: protos.encodeAny(TypeUrl.DownstreamTlsContext, {
    common_tls_context: { tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {}, resource_api_version: 'V3' } }] },
  }),
};

/** 15001: what iptables redirects outbound connections to. A redirected connection goes to
 *  the listener of its original destination (use_original_dst); one addressed to 15001
 *  itself takes the blackhole chain. */
export const VIRTUAL_OUTBOUND = {
  name: 'virtualOutbound',
  address: address('0.0.0.0', 15001),
  use_original_dst: { value: true },
  traffic_direction: 'OUTBOUND',
  access_log: [NR_LOG],
  filter_chains: [
    blackhole('virtualOutbound-blackhole', 15001),
    {
      name: '10.96.120.33_6379',
      filter_chain_match: { destination_port: { value: 6379 }, prefix_ranges: [{ address_prefix: '10.96.120.33', prefix_len: { value: 32 } }] },
      filters: [ISTIO_STATS, tcpProxy({ stat_prefix: 'redis', cluster: 'outbound|6379||redis.default.svc.cluster.local', access_log: [LOG] })],
    },
  ],
  default_filter_chain: {
    name: 'PassthroughFilterChain',
    filters: [ISTIO_STATS, tcpProxy({ stat_prefix: 'PassthroughCluster', cluster: 'PassthroughCluster', access_log: [LOG] })],
  },
};

/** 15006: what iptables redirects inbound connections to; the original_dst listener filter
 *  restores their port, and a chain per port (HTTP or TCP) takes them. */
export const VIRTUAL_INBOUND = {
  name: 'virtualInbound',
  address: address('0.0.0.0', 15006),
  traffic_direction: 'INBOUND',
  access_log: [NR_LOG],
  listener_filters: [listenerFilter('original_dst', 'OriginalDst'), listenerFilter('tls_inspector', 'TlsInspector'), listenerFilter('http_inspector', 'HttpInspector')],
  listener_filters_timeout: {},
  continue_on_listener_filters_timeout: true,
  filter_chains: [
    blackhole('virtualInbound-blackhole', 15006),
    {
      name: 'virtualInbound-catchall-http',
      filter_chain_match: { transport_protocol: 'raw_buffer', application_protocols: ['http/1.1', 'h2c'] },
      filters: [hcm(INLINE_ROUTES)],
    },
    {
      name: '0.0.0.0_9080',
      filter_chain_match: { destination_port: { value: 9080 }, transport_protocol: 'tls', application_protocols: ['istio-http/1.1', 'istio-h2'] },
      filters: [hcm(INLINE_ROUTES)],
      transport_socket: sdsTls,
    },
    {
      name: '0.0.0.0_9080',
      filter_chain_match: { destination_port: { value: 9080 }, transport_protocol: 'raw_buffer', application_protocols: ['http/1.1', 'h2c'] },
      filters: [hcm(INLINE_ROUTES)],
    },
    { name: '0.0.0.0_6379', filter_chain_match: { destination_port: { value: 6379 } }, filters: [ISTIO_STATS, tcpProxy({ stat_prefix: 'r', cluster: 'inbound|6379||' })] },
  ],
};

/** Per-port outbound listeners, reached only through virtualOutbound. Go control planes
 *  write BoolValue false as an empty message: `bind_to_port: {}` on the wire. */
export const OUTBOUND_HTTP = {
  name: '0.0.0.0_9080',
  address: address('0.0.0.0', 9080),
  bind_to_port: {},
  traffic_direction: 'OUTBOUND',
  access_log: [NR_LOG],
  listener_filters: [listenerFilter('tls_inspector', 'TlsInspector'), listenerFilter('http_inspector', 'HttpInspector')],
  listener_filters_timeout: {},
  continue_on_listener_filters_timeout: true,
  filter_chains: [
    { filter_chain_match: { transport_protocol: 'raw_buffer', application_protocols: ['http/1.1', 'h2c'] }, filters: [hcm(rds('9080'))] },
    { filter_chain_match: { transport_protocol: 'tls' }, filters: [tcpProxy({ stat_prefix: 'x', cluster: 'PassthroughCluster' })], transport_socket: sdsTls },
  ],
  default_filter_chain: { name: 'PassthroughFilterChain', filters: [tcpProxy({ stat_prefix: 'PassthroughCluster', cluster: 'PassthroughCluster' })] },
};
export const OUTBOUND_TCP = {
  name: '10.96.0.1_443',
  address: address('10.96.0.1', 443),
  bind_to_port: { value: false },
  traffic_direction: 'OUTBOUND',
  filter_chains: [{ filters: [ISTIO_STATS, tcpProxy({ stat_prefix: 'k', cluster: 'outbound|443||kubernetes.default.svc.cluster.local' })] }],
};
