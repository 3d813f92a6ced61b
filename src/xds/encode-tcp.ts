// Remora's TCP listeners and upstream PROXY protocol → xDS (part of src/xds/encode.ts), in
// the shapes src/xds/translate-listener-tcp.ts and translate-cluster.ts read back: each
// of the listener's `filter_chains` a FilterChain (its name, a filter_chain_match on the
// ClientHello, one envoy.filters.network.tcp_proxy), its own `tcp_proxy` the
// `default_filter_chain`, the TLS inspector when a chain matches on the ClientHello (an
// Envoy fed these resources then picks chains as Remora does); a cluster's
// `send_proxy_protocol` the `envoy.transport_sockets.upstream_proxy_protocol` socket
// around its TLS socket, or around raw_buffer.

import type { FilterChain, Listener, TcpProxy } from '../config/types.js';
import { downstreamTlsSocket, duration, encode, listenerSocketOptions, metadata, u32 } from './encode-common.js';
import { PROXY_PROTOCOL_LISTENER_FILTER, RAW_BUFFER_SOCKET, TCP_PROXY_FILTER_NAME, TLS_INSPECTOR, UPSTREAM_PROXY_PROTOCOL_SOCKET } from './names.js';
import { TypeUrl, type ProtoObject } from './protos.js';

/** A listener with `tcp_proxy` or `filter_chains` (validateConfig's test). */
export const isTcpListener = (l: Listener): boolean => l.tcp_proxy !== undefined || l.filter_chains.length > 0;

/** Whether picking the chain needs the ClientHello (the TLS inspector's job in Envoy). */
const readsHello = (fc: FilterChain): boolean =>
  fc.match.server_names.length > 0 || fc.match.transport_protocol !== undefined || fc.match.application_protocols.length > 0;

/** Whether the chain is picked by the connection's addresses too. */
const byAddress = (fc: FilterChain): boolean => {
  const m = fc.match;
  return m.destination_prefix_ranges.length > 0 || m.direct_source_prefix_ranges.length > 0 || m.source_prefix_ranges.length > 0 || m.source_ports.length > 0 || m.source_type !== 'any';
};

/** `{ key: list }` when the list has items, else nothing. */
const nonEmpty = (key: string, list: readonly unknown[]): ProtoObject => (list.length > 0 ? { [key]: list } : {});

/** `address/len` (a bare address: all its bits) → a CidrRange. */
function cidrRange(r: string): ProtoObject {
  const [address, len] = r.split('/');
  return { address_prefix: address, prefix_len: { value: len !== undefined ? Number(len) : address.includes(':') ? 128 : 32 } };
}

export function tcpListener(l: Listener): ProtoObject {
  const listenerFilters = [
    ...(l.proxy_protocol ? [{ name: PROXY_PROTOCOL_LISTENER_FILTER, typed_config: encode(TypeUrl.ProxyProtocol, {}) }] : []),
    ...(l.filter_chains.some(readsHello) ? [{ name: TLS_INSPECTOR, typed_config: encode(TypeUrl.TlsInspector, {}) }] : []),
  ];
  return {
    name: l.name,
    address: { socket_address: { address: l.address, port_value: l.port } },
    ...listenerSocketOptions(l),
    ...(listenerFilters.length > 0 ? { listener_filters: listenerFilters } : {}),
    filter_chains: l.filter_chains.map((fc) => ({
      name: fc.name,
      ...(readsHello(fc) || byAddress(fc)
        ? {
          filter_chain_match: {
            server_names: [...fc.match.server_names],
            ...(fc.match.transport_protocol !== undefined ? { transport_protocol: fc.match.transport_protocol } : {}),
            application_protocols: [...fc.match.application_protocols],
            ...nonEmpty('prefix_ranges', fc.match.destination_prefix_ranges.map(cidrRange)),
            ...nonEmpty('direct_source_prefix_ranges', fc.match.direct_source_prefix_ranges.map(cidrRange)),
            ...nonEmpty('source_prefix_ranges', fc.match.source_prefix_ranges.map(cidrRange)),
            ...nonEmpty('source_ports', [...fc.match.source_ports]),
            ...(fc.match.source_type !== 'any' ? { source_type: fc.match.source_type.toUpperCase() } : {}),
          },
        }
        : {}),
      filters: [tcpProxyFilter(fc.tcp_proxy, `${l.name}.${fc.name}`)],
      ...(fc.tls !== undefined ? { transport_socket: downstreamTlsSocket(fc.tls, []) } : {}),
    })),
    ...(l.tcp_proxy !== undefined ? { default_filter_chain: { filters: [tcpProxyFilter(l.tcp_proxy, l.name)] } } : {}),
    ...metadata({
      access_log: l.access_log === undefined ? undefined : { ...l.access_log },
      max_connections: l.max_connections > 0 ? l.max_connections : undefined,
    }),
  };
}

/** One tcp_proxy network filter. Every setting is written, Envoy's defaults being Remora's
 *  except where a field cannot say so: a connection duration of 0 (none) is left out. */
function tcpProxyFilter(t: TcpProxy, statPrefix: string): ProtoObject {
  return {
    name: TCP_PROXY_FILTER_NAME,
    typed_config: encode(TypeUrl.TcpProxy, {
      stat_prefix: statPrefix,
      ...(t.cluster !== undefined ? { cluster: t.cluster } : {}),
      ...(t.weighted_clusters !== undefined ? { weighted_clusters: { clusters: t.weighted_clusters.map((w) => ({ name: w.cluster, weight: w.weight })) } } : {}),
      idle_timeout: duration(t.idle_timeout_ms),
      max_connect_attempts: u32(t.max_connect_attempts),
      ...(t.max_downstream_connection_duration_ms > 0 ? { max_downstream_connection_duration: duration(t.max_downstream_connection_duration_ms) } : {}),
    }),
  };
}

/** A cluster's transport socket with the PROXY protocol header: around `inner` (its TLS
 *  socket), or around raw_buffer. */
export function upstreamProxyProtocolSocket(version: 'v1' | 'v2', inner: ProtoObject | undefined): ProtoObject {
  return {
    name: UPSTREAM_PROXY_PROTOCOL_SOCKET,
    typed_config: encode(TypeUrl.UpstreamProxyProtocol, {
      config: { version: version.toUpperCase() },
      transport_socket: inner ?? { name: RAW_BUFFER_SOCKET, typed_config: encode(TypeUrl.RawBuffer, {}) },
    }),
  };
}
