// Per-listener stats, one block per listener slot in each worker's slab: the table
// that declares their slab order, /stats names (Envoy's `listener.<name>.…`),
// Prometheus families (label `listener`) and help text.

import { ResponseFlag } from '../../core/flags.js';
import { statusClassRows, type StatRow } from './table.js';

/** Response flags counted per listener (all but "none"), in slab order. */
export const FLAGS: readonly string[] = Object.values(ResponseFlag).filter((f) => f !== ResponseFlag.None);

const TLS_HELP = 'TLS handshakes refused on TLS listeners, by reason (no_client_cert, verify_failed, other).';
const TLS_DOC =
  'TLS listeners: clients refused for `no_client_cert`, `verify_failed` (unknown CA, expired, …) or `other` handshake errors';
const FLAG_HELP = 'Responses carrying an Envoy-style response flag, by listener and flag.';

export const LISTENER_ROWS = [
  // The status-class block comes first: requestFinished adds Rq1xx + class.
  ...statusClassRows('Rq', 'downstream_rq_', 'remora_downstream_requests_total',
    'Responses sent to clients, by listener and status class.', 'responses sent to clients, by 1xx..5xx'),
  { handle: 'RqActive', kind: 'gauge', stats: 'downstream_rq_active', prom: 'remora_downstream_requests_active',
    help: 'Requests in flight, by listener.', doc: 'requests in flight' },
  { handle: 'CxActive', kind: 'gauge', stats: 'downstream_cx_active', prom: 'remora_downstream_connections_active',
    help: 'Open client connections, by listener.', doc: 'open client connections (what `max_connections` is checked against)' },
  { handle: 'CxTotal', kind: 'counter', stats: 'downstream_cx_total', prom: 'remora_downstream_connections_total',
    help: 'Client connections accepted, by listener.', doc: 'client connections accepted' },
  { handle: 'CxOverflow', kind: 'counter', stats: 'downstream_cx_overflow', prom: 'remora_downstream_connection_overflows_total',
    help: 'Client connections closed at once because the listener had max_connections open.',
    doc: 'connections closed at once because the listener had `max_connections` open' },
  /** Requests the codec or the head checks refused (malformed framing, bad Host, too
   *  many headers...); each closed its connection. */
  { handle: 'RqProtocolError', kind: 'counter', stats: 'downstream_rq_protocol_error', prom: 'remora_downstream_protocol_errors_total',
    help: 'Requests refused by the HTTP/1 codec or its head checks (each closed its connection).',
    doc: 'requests refused by the HTTP/1 codec or its head checks, each closing its connection' },
  { handle: 'BytesIn', kind: 'counter', stats: 'downstream_bytes_received', prom: 'remora_downstream_bytes_received_total',
    help: 'Request body bytes received from clients.', doc: 'request body bytes received' },
  { handle: 'BytesOut', kind: 'counter', stats: 'downstream_bytes_sent', prom: 'remora_downstream_bytes_sent_total',
    help: 'Response body bytes sent to clients (proxied responses).', doc: 'response body bytes sent (proxied responses)' },
  { handle: 'RateLimitShadow', kind: 'counter', stats: 'ratelimit.shadow', prom: 'remora_downstream_rate_limit_shadow_total',
    help: 'Requests a shadow-mode rate limit would have rejected.', doc: 'requests a shadow-mode rate limit would have refused (and admitted)' },
  // Connections carried as bytes: TCP listeners (tcp_proxy) and upgraded requests (WebSocket).
  { handle: 'CxRxBytes', kind: 'counter', stats: 'downstream_cx_rx_bytes_total', prom: 'remora_downstream_tunnel_bytes_received_total',
    help: 'Bytes received from clients on TCP proxy connections and upgraded (WebSocket) connections after the upgrade.',
    doc: 'bytes received from clients on `tcp_proxy` connections and on upgraded connections after the `101`' },
  { handle: 'CxTxBytes', kind: 'counter', stats: 'downstream_cx_tx_bytes_total', prom: 'remora_downstream_tunnel_bytes_sent_total',
    help: 'Bytes sent to clients on TCP proxy connections and upgraded (WebSocket) connections after the upgrade.',
    doc: 'bytes sent to clients on `tcp_proxy` connections and on upgraded connections after the `101`' },
  { handle: 'NoFilterChainMatch', kind: 'counter', stats: 'no_filter_chain_match', prom: 'remora_downstream_no_filter_chain_match_total',
    help: 'TCP listener connections closed because no filter chain matched them and the listener has no tcp_proxy of its own.',
    doc: 'TCP listener connections that no filter chain took (closed; the listener had no default `tcp_proxy`)' },
  { handle: 'TunnelIdleTimeout', kind: 'counter', stats: 'idle_timeout', prom: 'remora_downstream_tunnel_idle_timeouts_total',
    help: 'TCP proxy and upgraded connections closed by their idle timeout.', doc: '`tcp_proxy` and upgraded connections closed by their idle timeout' },
  { handle: 'UpgradesTotal', kind: 'counter', stats: 'downstream_cx_upgrades_total', prom: 'remora_downstream_upgrades_total',
    help: 'Requests upgraded to a tunnel (101 from the upstream), by listener.', doc: 'requests upgraded to a tunnel (the upstream answered `101`)' },
  { handle: 'UpgradesActive', kind: 'gauge', stats: 'downstream_cx_upgrades_active', prom: 'remora_downstream_upgrades_active',
    help: 'Upgraded (WebSocket) connections open, by listener.', doc: 'upgraded connections open' },
  { handle: 'TcpActive', kind: 'gauge', stats: 'tcp.downstream_cx_active', prom: 'remora_downstream_tcp_connections_active',
    help: 'TCP proxy connections open (upstream connected or connecting), by listener.', doc: '`tcp_proxy` connections open' },
  // TLS handshakes refused: no client certificate / one that did not verify (unknown
  // CA, expired) / any other failure (protocol version, ciphers, garbage).
  { handle: 'TlsNoCert', kind: 'counter', stats: 'ssl.fail_verify_no_cert', prom: 'remora_downstream_tls_handshake_errors_total',
    labels: { reason: 'no_client_cert' }, help: TLS_HELP, doc: TLS_DOC },
  { handle: 'TlsVerifyFailed', kind: 'counter', stats: 'ssl.fail_verify_error', prom: 'remora_downstream_tls_handshake_errors_total',
    labels: { reason: 'verify_failed' }, help: TLS_HELP, doc: TLS_DOC },
  { handle: 'TlsOtherError', kind: 'counter', stats: 'ssl.connection_error', prom: 'remora_downstream_tls_handshake_errors_total',
    labels: { reason: 'other' }, help: TLS_HELP, doc: TLS_DOC },
  // Flag counters last among the counters: FlagBase + index into FLAGS.
  ...FLAGS.map((f) => ({
    handle: `Flag${f}` as `Flag${string}`,
    kind: 'counter' as const,
    stats: `response_flag.${f}`,
    prom: 'remora_downstream_response_flags_total',
    labels: { flag: f },
    help: FLAG_HELP,
    doc: `responses carrying a response flag (${FLAGS.join(', ')})`,
    docStats: '`response_flag.<FLAG>`',
  })),
  { handle: 'Downstream', kind: 'histogram', stats: 'downstream_rq_time', prom: 'remora_downstream_request_duration_seconds',
    help: 'Time from request arrival to the last response byte, by listener.', doc: 'arrival to last byte sent' },
  { handle: 'TunnelDuration', kind: 'histogram', stats: 'downstream_cx_length', prom: 'remora_downstream_tunnel_duration_seconds',
    help: 'How long TCP proxy connections and upgraded connections stayed open, by listener.', doc: 'lifetime of a `tcp_proxy` or upgraded connection' },
] as const satisfies readonly StatRow[];
