// Config schema: clusters, their endpoints, upstream TLS and resilience settings
// (circuit breakers, retry budget, outlier detection, active health checks).

import * as v from 'valibot';
import { isIP } from 'node:net';
import { bool, field, filePath, HOST_RE, int, list, ms, name, num, obj, oneOf, str } from './fields.js';
import { Http2KeepaliveSchema, TLS_VERSIONS } from './listener.js';
import { TcpKeepaliveSchema } from './socket.js';

function endpointAddressProblem(a: string): string | undefined {
  if (a === '') return 'must not be empty';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(a)) return `must be a bare address without a scheme (got "${a}"); put the port in "port"`;
  if (/\s/.test(a)) return 'must not contain whitespace';
  if (a.startsWith('[')) return 'write IPv6 addresses without brackets (e.g. ::1)';
  if (isIP(a) !== 0) return undefined;
  if (a.includes(':')) return 'must not include a port; use the "port" field';
  return HOST_RE.test(a.toLowerCase()) ? undefined : `"${a}" is not an IP address or a valid host name`;
}

/** Metadata a transport match compares: string values. */
const transportMetadata = () => v.pipe(v.record(v.string(), v.string('must be a string')), v.readonly());

export const EndpointSchema = obj({
  address: str('No scheme (`http://`), no port, no spaces.', { type: 'IPv4 literal, IPv6 literal (no brackets) or host name', check: endpointAddressProblem }),
  port: int(1, 65535, 'Upstream port.'),
  transport_socket_match: v.optional(field(transportMetadata(),
    'What the cluster\'s `transport_socket_matches` read of this endpoint (Envoy\'s endpoint metadata under `envoy.transport_socket_match`; Istio writes `tlsMode: istio` for endpoints with a sidecar).',
    { type: 'map of strings', default: 'unset (empty)' })),
  health_check_host: v.optional(str('The `Host` of this endpoint\'s HTTP health checks, and the `:authority` of its gRPC ones, instead of the check\'s `host` / `grpc.authority` (Envoy\'s `health_check_config.hostname`).',
    { type: 'string, non-empty, no whitespace', default: 'unset (the cluster\'s check decides)', check: (s: string) => (/^\S+$/.test(s) ? undefined : 'must be a non-empty host name without whitespace') })),
}, 'One upstream address of a cluster.');

const SAN = 'must be a non-empty string without whitespace or commas (a URI SAN such as "spiffe://cluster.local/ns/app/sa/backend" or a DNS name)';

/** What a cluster's alpn_protocols must not name: the versions Remora offers itself, and
 *  Istio's metadata exchange (a peer that selected it would start with its own framing). */
function alpnProblem(s: string): string | undefined {
  if (s === '') return 'must not be empty';
  if (s === 'h2' || s === 'http/1.1') return `"${s}" is offered by the connections that speak it, always last; list only what comes before`;
  if (s === 'istio-peer-exchange') return '"istio-peer-exchange" is Istio\'s metadata exchange, which Remora does not speak: a peer that selected it would start the connection with its own framing';
  return undefined;
}

export const UpstreamTlsSchema = obj({
  ca_file: filePath('PEM bundle of the CAs trusted to sign the upstream\'s certificate. Replaces the system roots.'),
  cert_file: v.optional(filePath('Client certificate chain (PEM) presented to the upstream (mTLS). Set together with `key_file`.')),
  key_file: v.optional(filePath('Private key (PEM) of `cert_file`.')),
  sni: v.optional(str('Server name sent in SNI and, when `verify_subject_alt_names` is empty, checked against the server certificate (standard host name verification).', {
    type: 'host name', default: 'the endpoint address when it is a host name, else none',
    check: (s: string) => (isIP(s) !== 0 || !HOST_RE.test(s.toLowerCase()) ? `must be a host name (SNI cannot carry an IP address), got "${s}"` : undefined),
  })),
  verify_subject_alt_names: v.optional(list(v.pipe(v.string(SAN), v.metadata({ check: (s: string) => (s === '' || /[\s,]/.test(s) ? SAN : undefined) })),
    'Exact SANs accepted: URI SANs (`spiffe://cluster.local/ns/app/sa/backend`) or DNS names (case-insensitive). When set, the server certificate must present one of them (instead of matching `sni`). When empty: host name verification against `sni` if there is one, else only the chain is verified against `ca_file` (an IP endpoint without `sni`).',
    { type: 'list of strings' }), []),
  min_version: v.optional(oneOf(TLS_VERSIONS, 'Lowest TLS version offered.'), 'TLSv1.2'),
  alpn_protocols: v.optional(list(str('An ALPN protocol name.', { check: alpnProblem }),
    'Offered by ALPN on every TLS connection to the endpoints, before the HTTP version the connection speaks (`h2` or `http/1.1`, always offered last; a `tcp_proxy` connection offers these alone): for peers that pick a filter chain by them, such as Istio sidecars, whose mutual-TLS chains match `istio`. Not with `protocol: auto`, whose version the endpoint\'s ALPN choice decides.',
    { type: 'list of strings', default: 'unset (the version spoken only)' })),
}, 'TLS (and mTLS) from Remora to a cluster\'s endpoints. Files are read and checked by the main thread and watched (docs/tls.md).');

export const TransportSocketMatchSchema = obj({
  name: str('Shown in errors and `/config_dump` (Istio: `tlsMode-istio`, `tlsMode-disabled`).', { check: (s: string) => (s === '' ? 'must not be empty' : undefined) }),
  match: v.optional(field(transportMetadata(),
    'The endpoint\'s `transport_socket_match` must hold every one of these keys with the same value; empty matches every endpoint.', { type: 'map of strings' }), {}),
  tls: bool('`true`: the endpoint is reached with the cluster\'s `tls` settings; `false`: in plaintext.'),
}, 'One entry of a cluster\'s `transport_socket_matches`.');

export const MAX_CIRCUIT_BREAKER = 1_000_000_000;

export const RetryBudgetSchema = obj({
  budget_percent: v.optional(num(0, 100, 'Share of active requests that may be retries in flight.', { scope: 'percent of active requests, whole cluster' }), 20),
  min_retry_concurrency: v.optional(int(0, 1_000_000, 'Retries in flight always allowed, whatever the share.', { scope: 'retries, whole cluster' }), 3),
}, 'Retries in flight may not exceed `budget_percent` of the cluster\'s active requests, but `min_retry_concurrency` retries are always allowed.');

export const CircuitBreakersSchema = obj({
  max_connections: v.optional(int(1, MAX_CIRCUIT_BREAKER, 'Upstream connections open to the cluster.', { scope: 'connections, whole cluster' }), 1024),
  max_pending_requests: v.optional(int(1, MAX_CIRCUIT_BREAKER, 'Requests waiting for a connection (queued in a pool).', { scope: 'requests, whole cluster' }), 1024),
  max_requests: v.optional(int(1, MAX_CIRCUIT_BREAKER, 'Requests outstanding on upstream connections (Envoy): counted from the moment an attempt has its connection until it ends. Requests queued for a connection count against `max_pending_requests` only.',
    { scope: 'requests, whole cluster' }), 1024),
  max_retries: v.optional(int(0, MAX_CIRCUIT_BREAKER, 'Retries in flight, including those waiting in backoff. Not used when `retry_budget` is set.', { scope: 'retries, whole cluster' }), 3),
  retry_budget: v.optional(field(RetryBudgetSchema, 'When set, **replaces `max_retries`** (Envoy semantics).', { scope: 'whole cluster' })),
}, 'Resource limits for the whole cluster, shared by all workers of the process (Envoy\'s circuit breaker thresholds and defaults) — unlike `max_connections_per_endpoint`, which is per worker.');

// base_ejection_time_ms comes first: max_ejection_time_ms's default depends on it.
export const OutlierDetectionSchema = obj({
  base_ejection_time_ms: v.optional(ms(1, 'Ejection time = `base_ejection_time_ms` × times ejected, at most `max_ejection_time_ms`.'), 30_000),
  max_ejection_time_ms: ms(1, 'Cap on the ejection time; at least `base_ejection_time_ms`.', { type: 'integer 1..3600000, ≥ `base_ejection_time_ms`', conditional: true, default: '`300000`, or `base_ejection_time_ms` if that is larger (Envoy)' }),
  consecutive_5xx: v.optional(int(0, 1000, 'Consecutive 5xx responses that eject an endpoint; locally generated 503s for connect failures, resets and timeouts count too. `0` disables.', { scope: 'responses, per endpoint' }), 5),
  consecutive_gateway_failure: v.optional(int(0, 1000, 'Consecutive gateway errors (502, 503, 504, connect failure, reset, timeout) that eject an endpoint. `0` disables.', { scope: 'responses, per endpoint' }), 5),
  interval_ms: v.optional(ms(100, 'How often success rates are evaluated and ejections expire.'), 10_000),
  max_ejection_percent: v.optional(int(0, 100, 'At most this share of endpoints is ejected at once, but at least one.', { scope: 'percent of the cluster\'s endpoints' }), 10),
  probation_requests: v.optional(int(1, 1000, 'After an ejection the endpoint is on probation: this many trial requests at a time; a success makes it healthy, a failure ejects it again.', { scope: 'requests, per endpoint' }), 1),
  success_rate_minimum_hosts: v.optional(int(0, 10_000, 'Success-rate ejection (per interval) runs only when at least this many endpoints have `success_rate_request_volume` requests. `0` turns success-rate ejection off.', { scope: 'endpoints' }), 5),
  success_rate_request_volume: v.optional(int(1, 1_000_000, 'Endpoints with fewer requests are not considered for success-rate ejection.', { scope: 'requests per interval, per endpoint' }), 100),
  success_rate_stdev_factor: v.optional(num(0, 100, 'An endpoint whose success rate is below mean − factor × stdev is ejected.'), 1.9),
}, 'Passive health checking: endpoints that keep failing are ejected. Off unless configured (as in Envoy); `outlier_detection: {}` turns it on with every default.');

const PAIR = 'must be a [start, end) pair of status codes with 100 <= start < end <= 600';
const statusRange = v.pipe(v.tuple([int(100, 600, 'start'), int(100, 600, 'end')], PAIR), v.readonly(),
  v.metadata({ check: (r: readonly [number, number]) => (r[0] < r[1] ? undefined : PAIR) }));
const noWhitespace = (s: string): string | undefined => (/^\S+$/.test(s) ? undefined : 'must be a non-empty host name without whitespace');
const perEndpoint = 'ms, per endpoint';

export const GrpcHealthCheckSchema = obj({
  service_name: v.optional(str('The `service` asked about (`HealthCheckRequest.service`); empty asks about the server as a whole.'), ''),
  authority: v.optional(str('`:authority` of the check.', { type: 'string, non-empty, no whitespace', default: 'the check\'s `host`', check: noWhitespace })),
}, 'A gRPC health check (Envoy\'s `grpc_health_check`): `grpc.health.v1.Health/Check` over HTTP/2 (h2c, or h2 with the cluster\'s `tls`), one connection per check. The endpoint passes when the call ends with `grpc-status` 0 and the answer is `SERVING`; any other answer fails it at once, as an unexpected status does.');

const HEX = 'must be an even number of hex digits (the bytes, as Envoy\'s Payload `text`)';
const hexBytes = (doc: string) => str(doc, { type: 'string of hex digits', check: (s: string) => (/^(?:[0-9a-fA-F]{2})+$/.test(s) ? undefined : HEX) });

export const TcpHealthCheckSchema = obj({
  send: v.optional(hexBytes('Bytes written once connected, as hex digits (`70696e67` is `ping`).')),
  receive: v.optional(list(hexBytes('Bytes expected, as hex digits.'), 'Blocks the answer must contain, each found in this order but not necessarily next to each other (Envoy\'s fuzzy match). Empty: the check passes once connected (connect only).', { default: '`[]` (connect only)' }), []),
}, 'A TCP health check (Envoy\'s `tcp_health_check`): a new connection per check (TLS with the cluster\'s `tls`), `send` written, and the endpoint passes when everything read so far contains the `receive` blocks in order, or at once when there are none. A connection refused, closed before a match, or no match within `timeout_ms` fails the check.');

export const HealthCheckSchema = obj({
  path: v.optional(str('HTTP path requested with GET. Exactly one of `path`, `grpc` and `tcp` is set.', {
    type: 'string starting with `/`, no whitespace', default: '—',
    check: (s: string) => (!s.startsWith('/') ? 'must start with "/"' : /\s/.test(s) ? 'must not contain whitespace' : undefined),
  })),
  grpc: v.optional(field(GrpcHealthCheckSchema, 'Check with the gRPC health protocol instead of an HTTP GET.', { default: '—' })),
  tcp: v.optional(field(TcpHealthCheckSchema, 'Check by connecting (and exchanging bytes) instead of an HTTP GET.', { default: '—' })),
  receive: v.optional(list(hexBytes('Bytes expected, as hex digits.'), 'HTTP checks: blocks the response body must contain, in this order, within its first `response_buffer_size` bytes (Envoy\'s `http_health_check.receive`); a body without them fails the check like an unexpected status. The status must be expected as well.', { default: '`[]` (the body is not read)' }), []),
  response_buffer_size: v.optional(int(1, 1_048_576, 'HTTP checks with `receive`: how much of the body is searched.', { unit: 'bytes', scope: 'bytes, per check' }), 1024),
  host: str('`Host` header sent.', { type: 'string, non-empty, no whitespace', conditional: true, default: 'the cluster\'s name', check: noWhitespace }),
  interval_ms: v.optional(ms(100, 'Milliseconds between checks of one endpoint.', { scope: perEndpoint }), 5000),
  timeout_ms: v.optional(ms(1, 'Milliseconds a check may take.', { scope: 'ms, per check' }), 1000),
  healthy_threshold: v.optional(int(1, 100, 'Passing checks in a row that make an unhealthy endpoint healthy.', { scope: 'checks in a row' }), 2),
  unhealthy_threshold: v.optional(int(1, 100, 'Failing checks in a row that make a healthy endpoint unhealthy.', { scope: 'checks in a row' }), 3),
  expected_statuses: v.optional(list(statusRange, 'Status ranges counted as healthy; `end` is excluded. At least one pair. Any other status not in `retriable_statuses` (a 503, say) makes a healthy endpoint **unhealthy at once**, whatever `unhealthy_threshold` is (Envoy).',
    { type: 'list of `[start, end)` pairs, 100 ≤ start < end ≤ 600', nonEmpty: 'must list at least one [start, end) range' }), [[200, 300]]),
  retriable_statuses: v.optional(list(statusRange, 'Failing statuses that count toward `unhealthy_threshold` like timeouts and connection errors, instead of failing the endpoint at once. `expected_statuses` win where both match.',
    { type: 'list of `[start, end)` pairs' }), []),
  no_traffic_interval_ms: v.optional(ms(100, 'Interval used while the cluster has never had traffic (no upstream connection seen yet, sampled every 100 ms); takes precedence over the others. Once traffic starts, waiting checks are brought forward.',
    { scope: perEndpoint }), 60_000),
  no_traffic_healthy_interval_ms: ms(100, 'The same, for endpoints that currently pass.', { scope: perEndpoint, conditional: true, default: '`no_traffic_interval_ms`' }),
  unhealthy_interval_ms: ms(100, 'Interval while an endpoint is unhealthy.', { scope: perEndpoint, conditional: true, default: '`interval_ms`' }),
  unhealthy_edge_interval_ms: ms(100, 'Wait for the first check after an endpoint was marked unhealthy.', { scope: perEndpoint, conditional: true, default: '`unhealthy_interval_ms`' }),
  healthy_edge_interval_ms: ms(100, 'Wait for the first check after an endpoint was marked healthy.', { scope: perEndpoint, conditional: true, default: '`interval_ms`' }),
  interval_jitter_ms: v.optional(ms(0, 'A random 0..`interval_jitter_ms` added to every wait.'), 0),
  interval_jitter_percent: v.optional(int(0, 100, 'A random 0..`interval_jitter_percent` % of the wait added to it; both jitters may apply.', { unit: 'percent', scope: '% of the wait' }), 0),
  initial_jitter_ms: v.optional(ms(0, 'The first check of an endpoint waits a random 0..`initial_jitter_ms`; with `0` first checks are still spread over 0..min(`interval_ms`, 100) ms.'), 0),
}, 'Active health checks, run by the main thread of the process. Off unless configured. On a cluster with `tls` they run over TLS with the cluster\'s settings.');

export const DNS_TYPES = ['strict', 'logical'] as const;
export const DNS_LOOKUP_FAMILIES = ['auto', 'v4_only', 'v6_only', 'v4_preferred', 'all'] as const;

/** `IP` or `IP:port` (`[v6]:port`): a DNS server. */
function resolverProblem(s: string): string | undefined {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s);
  const host = m?.[1] ?? s;
  const port = m?.[2] !== undefined ? Number(m[2]) : 53;
  if (isIP(host) === 0 || port < 1 || port > 65535) return `must be an IP address with an optional port ("10.0.0.10", "10.0.0.10:53", "[fd00::a]:53"), got "${s}"`;
  return undefined;
}

export const DnsFailureRefreshSchema = obj({
  base_ms: ms(1, 'Wait after the first failed resolution of a name; each failure in a row doubles it (jittered: between half and all of it), up to `max_ms`.'),
  max_ms: ms(1, 'Longest wait between retries of a failing name; at least `base_ms`.', { type: 'integer 1..3600000, ≥ `base_ms`', conditional: true, default: '10 × `base_ms` (Envoy)' }),
}, 'Retries of a name whose resolution failed (Envoy\'s `dns_failure_refresh_rate`): exponential backoff with jitter.');

export const ClusterDnsSchema = obj({
  type: oneOf(DNS_TYPES, '`strict` (Envoy\'s `STRICT_DNS`): every address a host name resolves to is an endpoint of its own (same port), load-balanced, health-checked and outlier-detected like a written one. `logical` (`LOGICAL_DNS`): each written endpoint stays one endpoint, and new connections go to the first address of the latest answer; open connections are kept.'),
  refresh_rate_ms: v.optional(ms(1, 'Interval between resolutions of each host name (Envoy\'s `dns_refresh_rate`).', { scope: 'ms, per host name' }), 5000),
  respect_ttl: v.optional(bool('Resolve again when the answer\'s lowest TTL runs out instead of after `refresh_rate_ms` (Envoy\'s `respect_dns_ttl`); a TTL of 0 falls back to `refresh_rate_ms`.'), false),
  min_refresh_rate_ms: v.optional(ms(1, 'With `respect_ttl`: the shortest interval a TTL may ask for (Envoy\'s `dns_min_refresh_rate`).', { scope: 'ms, per host name' }), 5000),
  failure_refresh_rate: v.optional(field(DnsFailureRefreshSchema, 'Backoff after failed resolutions; the last good addresses keep serving meanwhile.', { default: 'unset: `refresh_rate_ms`, no backoff (Envoy)' })),
  lookup_family: v.optional(oneOf(DNS_LOOKUP_FAMILIES, 'Address families asked for (Envoy\'s `dns_lookup_family`). `auto`: AAAA, and A when there is no AAAA record (Envoy\'s AUTO); `v4_preferred`: A, and AAAA when there is no A record; `v4_only`, `v6_only`; `all`: both, IPv4 addresses first.'), 'auto'),
  resolvers: v.optional(list(str('A DNS server.', { type: '`IP` or `IP:port`', check: resolverProblem }),
    'DNS servers asked, in order (Envoy\'s c-ares `resolvers`). Empty: the system\'s (`/etc/resolv.conf`).', { type: 'list of `IP[:port]`' }), []),
  query_timeout_ms: v.optional(ms(1, 'Wait for one server\'s answer before the next try (Envoy\'s c-ares `query_timeout_seconds`).', { scope: 'ms, per try' }), 5000),
  query_tries: v.optional(int(1, 16, 'Tries per query before the resolution counts as failed (Envoy\'s c-ares `query_tries`).', { scope: 'tries, per query' }), 4),
}, 'Service discovery by DNS (Envoy\'s `STRICT_DNS` and `LOGICAL_DNS` clusters): the main thread resolves the endpoints\' host names on a timer and hands the addresses to the workers; requests never wait for DNS.');

export const LB_POLICIES = ['round_robin', 'least_request', 'random'] as const;
export const UPSTREAM_PROTOCOLS = ['http1', 'http2', 'downstream', 'auto'] as const;

export const ClusterHttp2Schema = obj({
  max_concurrent_streams: v.optional(int(1, 2_147_483_647, 'Requests carried at once on one connection; the upstream\'s own SETTINGS_MAX_CONCURRENT_STREAMS lowers it. A new connection is opened (up to `max_connections_per_endpoint`) when every one is full.', { scope: 'per connection' }), 100),
  initial_stream_window_size: v.optional(int(65_535, 2_147_483_647, 'Response bytes an upstream may send on one stream before Remora has passed them on.', { unit: 'bytes', scope: 'bytes, per stream' }), 65_535),
  initial_connection_window_size: v.optional(int(65_535, 2_147_483_647, 'The same for the whole connection.', { unit: 'bytes', scope: 'bytes, per connection' }), 1_048_576),
  connection_keepalive: v.optional(field(Http2KeepaliveSchema, 'PING endpoints; close a connection whose PING goes unanswered (its requests fail as resets and may be retried).', { default: 'unset (no PINGs)', scope: 'per connection' })),
}, 'HTTP/2 settings towards a cluster\'s endpoints (Envoy\'s `http2_protocol_options`).');

export const SEND_PROXY_PROTOCOL = ['v1', 'v2'] as const;

export const ClusterSchema = obj({
  name: name('Referenced by routes.', 'unique among clusters'),
  lb_policy: v.optional(oneOf(LB_POLICIES, 'How an endpoint is chosen.', { scope: 'per worker' }), 'round_robin'),
  endpoints: list(EndpointSchema, 'Upstream addresses. May be empty (a service scaled to zero, an endpoint list from xDS with none): requests to the cluster then get `503` with flag `UH`, as from Envoy.'),
  dns: v.optional(field(ClusterDnsSchema, 'Resolve the endpoints\' host names in the main thread on a timer (a DNS cluster) instead of at each upstream connect.', { default: 'unset (static: host names are looked up with the system resolver at each new connection)', scope: 'whole cluster' })),
  connect_timeout_ms: v.optional(ms(1, 'TCP connect timeout.', { scope: 'ms, per connect attempt' }), 1000),
  idle_timeout_ms: v.optional(ms(0, 'Keep-alive connections idle longer than this are closed (checked once a second). `0` keeps them until the upstream closes them. An upstream\'s `Keep-Alive: timeout=N` hint is honoured too: a connection is not reused within a second of that deadline.',
    { scope: 'ms, per pooled connection' }), 60_000),
  max_requests_per_connection: v.optional(int(0, 1_000_000_000, 'An upstream connection that has carried this many requests takes no more: an HTTP/1.1 connection closes after its last response, an HTTP/2 one takes no new streams and closes once its open ones end (Envoy\'s `max_requests_per_connection`). Requests then go to another connection.',
    { default: '`0` (no limit)', scope: 'requests per upstream connection' }), 0),
  tcp_keepalive: v.optional(field(TcpKeepaliveSchema, 'TCP keepalive on every upstream connection (Envoy\'s `upstream_connection_options.tcp_keepalive`).', { default: 'unset (off)', scope: 'each upstream connection' })),
  max_connections_per_endpoint: v.optional(int(1, 1_000_000, 'Connection limit; requests beyond it wait in the pool\'s queue. With N workers an endpoint may see N × this many connections.',
    { scope: 'per endpoint, **per worker**' }), 1024),
  circuit_breakers: v.optional(field(CircuitBreakersSchema, 'Resource limits for the cluster.', { default: 'all defaults', scope: 'whole cluster, shared by all workers of the process' }), {}),
  outlier_detection: v.optional(field(OutlierDetectionSchema, 'Passive health: eject endpoints that keep failing.', { default: 'unset (off)', scope: 'per endpoint' })),
  health_check: v.optional(field(HealthCheckSchema, 'Active HTTP health checks, run by the main thread.', { default: 'unset (off)', scope: 'per endpoint' })),
  panic_threshold_percent: v.optional(int(0, 100, 'When fewer than this percentage of endpoints are healthy, balance over all of them (Envoy\'s panic threshold). `0` disables panic mode.',
    { scope: 'percent of the cluster\'s endpoints' }), 50),
  tls: v.optional(field(UpstreamTlsSchema, 'TLS or mutual TLS to the cluster\'s endpoints.', { default: 'unset (plaintext)', scope: 'whole cluster' })),
  transport_socket_matches: v.optional(list(TransportSocketMatchSchema,
    'Per endpoint, TLS or plaintext (Envoy\'s `transport_socket_matches`, what Istio\'s automatic mTLS writes): the first entry whose `match` the endpoint\'s `transport_socket_match` satisfies decides; an endpoint no entry matches uses the cluster\'s `tls` if set, else plaintext. Remora\'s cluster has one set of TLS settings (`tls`), which every TLS entry uses. Pools, health checks and upgraded connections of each endpoint follow its choice.',
    { type: 'list', default: 'unset (every endpoint as `tls` says)' })),
  send_proxy_protocol: v.optional(oneOf(SEND_PROXY_PROTOCOL, 'Start each upstream connection with a PROXY protocol header (HAProxy\'s `send-proxy` / `send-proxy-v2`, Envoy\'s `upstream_proxy_protocol` transport socket) carrying the client\'s address, for upstreams behind Remora that need it. Only for connections made for one client: clusters of `tcp_proxy` (and upgraded connections); a cluster with it cannot be a route\'s (pooled HTTP connections carry many clients).', { default: 'unset (no header)', scope: 'each upstream connection' })),
  protocol: v.optional(oneOf(UPSTREAM_PROTOCOLS, 'HTTP version spoken to the endpoints. `http2`: cleartext HTTP/2 with prior knowledge (h2c), or `h2` by ALPN with `tls`; requests are multiplexed over few connections per endpoint per worker (gRPC services need it). `downstream`: the version the client spoke, per request (Envoy\'s `use_downstream_protocol_config`, what Istio sets for ports whose protocol it sniffs). `auto`: with `tls`, what each endpoint chooses by ALPN among `h2` and `http/1.1` (Envoy\'s `auto_config`), learned by each worker\'s first handshake with it; without `tls`, HTTP/1.1. With `http1` or `http2` the client may speak either version: requests are translated.',
    { scope: 'whole cluster' }), 'http1'),
  http2_protocol_options: v.optional(field(ClusterHttp2Schema, 'HTTP/2 settings (with `protocol: http2`, `downstream` or `auto`).', { default: 'all defaults', scope: 'every HTTP/2 connection to this cluster' }), {}),
}, 'An upstream service that routes forward to.');
