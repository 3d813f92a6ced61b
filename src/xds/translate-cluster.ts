// Cluster → a raw Remora cluster (part of src/xds/translate.ts): STATIC with inline
// endpoints, STRICT_DNS or LOGICAL_DNS with inline host names (translate-dns.ts) or EDS
// (endpoints from a ClusterLoadAssignment, joined by translateXds),
// load balancing policy, connect timeout, circuit breakers, outlier detection, one HTTP
// or gRPC health check, the panic threshold, upstream TLS (its ALPN list checked against
// the upstream HTTP version), the upstream PROXY protocol (send_proxy_protocol, a socket
// around the TLS or plaintext one), the upstream HTTP version (translate-protocol.ts) and
// the Remora extensions. Where Envoy's defaults differ from Remora's file defaults,
// Envoy's are written out.

import { MAX_CIRCUIT_BREAKER } from '../config/schema/cluster.js';
import { RAW_BUFFER_SOCKET, REMORA_EXTENSIONS, TLS_TRANSPORT_SOCKET } from './names.js';
import { loadXdsProtos, TypeUrl } from './protos.js';
import { asArr, asNum, asObj, asStr, isSet, wrapped, type Obj } from './read.js';
import { edsName } from './resources.js';
import { checkName, configSource, extPath, root, sub, type Ctx, type Loc } from './translate-context.js';
import { clusterDns, DNS_CLUSTER_FIELDS, DNS_CLUSTER_TYPE, DNS_EXTENSIONS, dnsClusterType } from './translate-dns.js';
import { translateEndpoints } from './translate-endpoints.js';
import { Fields, type Mark } from './translate-fields.js';
import { upstreamProtocol } from './translate-protocol.js';
import { clusterAlpn, rawBufferSocket, upstreamTls, type TlsResult } from './translate-tls.js';
import { loadBalancingPolicy } from './translate-lb-policy.js';
import { transportSocketMatches } from './translate-transport-match.js';
import { inertNetworkFilter } from './translate-listener-tcp.js';

const LB_POLICIES: Readonly<Record<string, string>> = { ROUND_ROBIN: 'round_robin', LEAST_REQUEST: 'least_request', RANDOM: 'random' };
/** Envoy's defaults where they differ from Remora's file defaults. */
const ENVOY_CONNECT_TIMEOUT_MS = 5000;
const ENVOY_EXPECTED_STATUSES: readonly (readonly [number, number])[] = [[200, 201]];

export interface ClusterPart {
  readonly name: string;
  /** The raw cluster; `endpoints` missing for EDS clusters. */
  readonly raw: Obj;
  /** Relative to the cluster: `.connect_timeout_ms`. */
  readonly marks: Mark[];
  /** EDS: the ClusterLoadAssignment name its endpoints come from. */
  readonly eds?: string;
}

export function translateCluster(ctx: Ctx, key: string, c: Obj): ClusterPart | undefined {
  const loc = root(TypeUrl.Cluster, key);
  checkName(ctx, c.name, key, loc);
  // A DNS cluster may come as a cluster_type extension (DnsCluster) instead of a type.
  const dnsExt = c.cluster_type !== undefined ? dnsClusterType(ctx, c.cluster_type, sub(loc, 'cluster_type')) : undefined;
  if (dnsExt !== undefined && isSet(c.type)) ctx.reject(sub(loc, 'type'), 'not allowed with cluster_type (Envoy takes one of them)');
  const type = dnsExt?.type ?? asStr(c.type) ?? 'STATIC';
  // ORIGINAL_DST (Istio's PassthroughCluster and InboundPassthroughCluster) forwards to
  // where a redirected connection was going. Remora has no traffic capture, so no
  // connection has an original destination other than Remora itself: such a cluster is
  // accepted with no endpoints (a request routed to it answers 503 UH; nothing Remora
  // serves of Istio's listeners routes to it: docs/xds.md "Traffic capture").
  const originalDst = type === 'ORIGINAL_DST';
  ctx.only(c, loc, ['name', 'type', 'eds_cluster_config', 'connect_timeout', 'lb_policy', 'load_assignment', 'health_checks',
    'circuit_breakers', 'outlier_detection', 'common_lb_config', 'metadata', 'transport_socket', 'transport_socket_matches', 'filters', 'typed_extension_protocol_options',
    'http2_protocol_options', 'per_connection_buffer_limit_bytes', 'ignore_health_on_host_removal', 'alt_stat_name', 'load_balancing_policy', ...DNS_CLUSTER_FIELDS,
    'upstream_connection_options', 'max_requests_per_connection', 'cluster_type', 'protocol_selection',
    ...(originalDst ? ['original_dst_lb_config', 'upstream_bind_config', 'cleanup_interval'] : [])]);
  // Envoy Gateway sets both. The upstream connection's buffer limit only paces reading
  // (flow control): Envoy buffers nothing from an upstream to replay. Remora drops an
  // endpoint as soon as an assignment leaves it out, health checked or not, which is
  // Envoy with ignore_health_on_host_removal: true (false is the unset zero value).
  // Istio names every cluster's stats with alt_stat_name; Remora's stats carry the
  // cluster's name as sent.
  for (const k of ['per_connection_buffer_limit_bytes', 'ignore_health_on_host_removal', 'alt_stat_name']) if (isSet(c[k])) ctx.noEffect(loc, `Cluster.${k}`);
  const out = new Fields().here(loc);
  out.set('name', key, sub(loc, 'name'));
  if (type !== 'STATIC' && type !== 'EDS' && type !== 'STRICT_DNS' && type !== 'LOGICAL_DNS' && !originalDst) {
    ctx.reject(sub(loc, 'type'), `${type} is not supported (STATIC, EDS, STRICT_DNS, LOGICAL_DNS, or ORIGINAL_DST without endpoints)`);
  }
  if (originalDst) {
    ctx.noEffect(loc, 'Cluster.type ORIGINAL_DST (no original destination: no endpoints)');
    for (const k of ['original_dst_lb_config', 'upstream_bind_config', 'cleanup_interval']) if (isSet(c[k])) ctx.noEffect(loc, `Cluster.${k}`);
    out.raw.endpoints = [];
  }
  const dnsType = type === 'STRICT_DNS' || type === 'LOGICAL_DNS' ? type : undefined;
  const lb = asStr(c.lb_policy) ?? 'ROUND_ROBIN';
  if (c.load_balancing_policy !== undefined) {
    // Envoy uses load_balancing_policy when both are set (Envoy Gateway sets both).
    out.raw.lb_policy = loadBalancingPolicy(ctx, c.load_balancing_policy, sub(loc, 'load_balancing_policy'));
    if (c.lb_policy !== undefined) ctx.noEffect(loc, 'Cluster.lb_policy (load_balancing_policy is used)');
  } else if (originalDst && lb === 'CLUSTER_PROVIDED') out.raw.lb_policy = 'round_robin'; // (no endpoints to choose from)
  else if (LB_POLICIES[lb] === undefined) ctx.reject(sub(loc, 'lb_policy'), `${lb} is not supported (ROUND_ROBIN, LEAST_REQUEST or RANDOM)`);
  else out.raw.lb_policy = LB_POLICIES[lb];
  out.set('connect_timeout_ms', ctx.ms(c.connect_timeout, sub(loc, 'connect_timeout')) ?? ENVOY_CONNECT_TIMEOUT_MS, sub(loc, 'connect_timeout'));

  let eds: string | undefined;
  if (type === 'EDS') {
    if (isSet(c.load_assignment)) ctx.reject(sub(loc, 'load_assignment'), 'not allowed with type EDS (endpoints come from EDS)');
    const el = sub(loc, 'eds_cluster_config');
    const ec = asObj(c.eds_cluster_config) ?? {};
    ctx.only(ec, el, ['eds_config', 'service_name']);
    eds = edsName({ ...c, name: key });
    configSource(ctx, ec.eds_config, sub(el, 'eds_config'), 'endpoints', eds);
  } else if (type === 'STATIC' || dnsType !== undefined) {
    if (isSet(c.eds_cluster_config)) ctx.reject(sub(loc, 'eds_cluster_config'), 'only allowed with type EDS');
    const la = asObj(c.load_assignment);
    // A STATIC cluster without one has no endpoints (Istio's BlackHoleCluster): its
    // requests answer 503 UH, as Envoy's do. A DNS cluster needs names to resolve.
    if (la === undefined && dnsType !== undefined) ctx.reject(sub(loc, 'load_assignment'), `is required for type ${type}`);
    else if (la === undefined) out.raw.endpoints = [];
    else {
      const part = translateEndpoints(ctx, la, sub(loc, 'load_assignment'));
      // Envoy: a LOGICAL_DNS cluster has exactly one endpoint.
      if (dnsType === 'LOGICAL_DNS' && part.endpoints.length !== 1) ctx.reject(sub(loc, 'load_assignment'), `LOGICAL_DNS needs exactly one endpoint (got ${part.endpoints.length})`);
      out.attach('endpoints', part.endpoints, part.marks);
    }
  }

  asArr(c.filters).forEach((f, i) => upstreamFilter(ctx, asObj(f) ?? {}, sub(loc, `filters[${i}]`)));
  const cb = asObj(c.circuit_breakers);
  if (cb !== undefined) circuitBreakers(ctx, cb, sub(loc, 'circuit_breakers'), out.nest('circuit_breakers'));
  const od = asObj(c.outlier_detection);
  if (od !== undefined) outlierDetection(ctx, od, sub(loc, 'outlier_detection'), out.nest('outlier_detection'));
  const checks = asArr(c.health_checks);
  if (checks.length > 1) ctx.reject(sub(loc, 'health_checks[1]'), 'Remora runs at most one health check per cluster');
  if (checks.length > 0) healthCheck(ctx, asObj(checks[0]) ?? {}, sub(loc, 'health_checks[0]'), out.nest('health_check'));
  const lbc = asObj(c.common_lb_config);
  if (lbc !== undefined) {
    const ll = sub(loc, 'common_lb_config');
    ctx.only(lbc, ll, ['healthy_panic_threshold', 'locality_weighted_lb_config']);
    out.take('panic_threshold_percent', wrapped(lbc.healthy_panic_threshold), sub(ll, 'healthy_panic_threshold'));
    // Istio sets it with its locality load balancing. Remora balances over every
    // locality's endpoints as one set (docs/xds.md: the same split with one locality, or
    // with localities of equal weight and size).
    if (lbc.locality_weighted_lb_config !== undefined) ctx.noEffect(ll, 'Cluster.common_lb_config.locality_weighted_lb_config');
  }

  const matches = asArr(c.transport_socket_matches);
  // Envoy Gateway writes an empty UpstreamTlsContext as the cluster's own socket beside
  // matches that cover every endpoint: Remora's endpoints no entry matches use the
  // entries' TLS settings (verified), where Envoy would use TLS without verification.
  const placeholder = matches.length > 0 && emptyUpstreamTls(c.transport_socket);
  if (placeholder) ctx.noEffect(loc, 'Cluster.transport_socket (an empty UpstreamTlsContext beside transport_socket_matches)');
  let tls = placeholder ? undefined : transportSocket(ctx, c.transport_socket, sub(loc, 'transport_socket'), out, true);
  if (matches.length > 0) {
    const part = transportSocketMatches(ctx, matches, loc, tls, placeholder);
    out.attach('transport_socket_matches', part.entries, part.marks);
    tls = part.tls;
  }
  if (tls !== undefined) out.attach('tls', tls.part.raw, tls.part.marks);
  const protocol = upstreamProtocol(ctx, c, loc, out);
  const maxRequests = wrapped(c.max_requests_per_connection); // deprecated for HttpProtocolOptions' own
  if (maxRequests !== undefined) {
    if (out.raw.max_requests_per_connection !== undefined) ctx.reject(sub(loc, 'max_requests_per_connection'), 'is also set by the HttpProtocolOptions\' common_http_protocol_options; set one');
    else out.set('max_requests_per_connection', maxRequests, sub(loc, 'max_requests_per_connection'));
  }
  const uco = asObj(c.upstream_connection_options);
  if (uco !== undefined) tcpKeepalive(ctx, uco, sub(loc, 'upstream_connection_options'), out);
  if (protocol !== undefined && tls?.alpn !== undefined) {
    const offered = clusterAlpn(ctx, tls.alpn, protocol);
    if (offered !== undefined) out.within('tls')?.set('alpn_protocols', offered, tls.alpn.loc);
  }

  const ext = ctx.extensions(c, loc, REMORA_EXTENSIONS.cluster, 'Cluster.metadata');
  if (dnsExt !== undefined) {
    // The DnsCluster's settings apply; the Cluster's own DNS fields are ignored (Envoy).
    for (const k of DNS_CLUSTER_FIELDS) if (isSet(c[k])) ctx.noEffect(loc, `Cluster.${k} (with cluster_type ${DNS_CLUSTER_TYPE})`);
    clusterDns(ctx, dnsExt.settings, dnsExt.loc, dnsExt.type, ext, out);
  } else if (dnsType !== undefined) clusterDns(ctx, c, loc, dnsType, ext, out);
  else {
    for (const k of DNS_EXTENSIONS) if (ext[k] !== undefined) ctx.reject(extPath(loc, k), 'only for STRICT_DNS and LOGICAL_DNS clusters');
    for (const k of DNS_CLUSTER_FIELDS) if (isSet(c[k])) ctx.noEffect(loc, `Cluster.${k}`); // ignored, as by Envoy
  }
  if (ext.idle_timeout_ms !== undefined && out.raw.idle_timeout_ms !== undefined) {
    ctx.reject(extPath(loc, 'idle_timeout_ms'), 'is also set by the HttpProtocolOptions\' common_http_protocol_options.idle_timeout; set one');
  }
  for (const k of ['idle_timeout_ms', 'max_connections_per_endpoint'] as const) out.take(k, ext[k], extPath(loc, k));
  if (ext.outlier_probation_requests !== undefined) {
    const od2 = out.within('outlier_detection');
    if (od2 === undefined) ctx.reject(extPath(loc, 'outlier_probation_requests'), 'needs outlier_detection');
    else od2.set('probation_requests', ext.outlier_probation_requests, extPath(loc, 'outlier_probation_requests'));
  }
  return { name: key, raw: out.raw, marks: out.marks, ...(eds !== undefined ? { eds } : {}) };
}

/** A cluster's transport_socket: TLS (`tls`), plaintext (raw_buffer, the same as none), or
 *  the upstream PROXY protocol socket (`send_proxy_protocol`, V1 unset as in Envoy) around
 *  one of those (`outer`: not inside another). */
function transportSocket(ctx: Ctx, v: unknown, loc: Loc, out: Fields, outer: boolean): TlsResult | undefined {
  if (v === undefined || v === null || rawBufferSocket(ctx, v, loc)) return undefined;
  const ts = asObj(v) ?? {};
  if (asStr(asObj(ts.typed_config)?.type_url) !== TypeUrl.UpstreamProxyProtocol) return upstreamTls(ctx, v, loc);
  if (!outer) {
    ctx.reject(loc, 'a PROXY protocol socket inside another is not supported: Remora sends one header');
    return undefined;
  }
  ctx.only(ts, loc, ['name', 'typed_config']);
  const tl = sub(loc, 'typed_config');
  const msg = ctx.decode(ts.typed_config, tl)?.message;
  if (msg === undefined) return undefined;
  ctx.only(msg, tl, ['config', 'transport_socket']);
  const cl = sub(tl, 'config');
  const config = asObj(msg.config) ?? {};
  if (isSet(config.pass_through_tlvs)) {
    ctx.reject(sub(cl, 'pass_through_tlvs'), 'is not supported: Remora\'s header carries the client\'s addresses only (no TLVs passed on)');
  }
  ctx.only(config, cl, ['version', 'pass_through_tlvs']);
  const version = asStr(config.version) ?? 'V1';
  if (version !== 'V1' && version !== 'V2') ctx.reject(sub(cl, 'version'), `${version} is not supported (V1 or V2)`);
  else out.set('send_proxy_protocol', version.toLowerCase(), isSet(config.version) ? sub(cl, 'version') : tl);
  if (msg.transport_socket === undefined || msg.transport_socket === null) {
    ctx.reject(sub(tl, 'transport_socket'), `is required: the socket the header goes out on (${RAW_BUFFER_SOCKET}, or ${TLS_TRANSPORT_SOCKET} with UpstreamTlsContext)`);
    return undefined;
  }
  return transportSocket(ctx, msg.transport_socket, sub(tl, 'transport_socket'), out, false);
}

/** Whether `v` is a TLS transport socket with nothing in it: an UpstreamTlsContext whose
 *  fields are all unset but for an empty common_tls_context. */
function emptyUpstreamTls(v: unknown): boolean {
  const any = asObj(asObj(v)?.typed_config);
  if (asStr(any?.type_url) !== TypeUrl.UpstreamTlsContext || !(any!.value instanceof Uint8Array)) return false;
  let m: Obj;
  try {
    m = loadXdsProtos().decodeAny({ type_url: TypeUrl.UpstreamTlsContext, value: any!.value }).message;
  } catch {
    return false; // not decodable: the usual path rejects it
  }
  return Object.entries(m).every(([k, x]) => !isSet(x) || (k === 'common_tls_context' && Object.values(asObj(x) ?? {}).every((y) => !isSet(y))));
}

/** A cluster's upstream network filter. Istio puts its metadata exchange on every
 *  outbound cluster (`istio.metadata_exchange`): it acts only on a connection whose ALPN
 *  selected istio-peer-exchange, which Remora never offers (translate-tls.ts), so it is
 *  accepted without effect. Any other is rejected: Remora runs no upstream filters. */
function upstreamFilter(ctx: Ctx, f: Obj, loc: Loc): void {
  ctx.only(f, loc, ['name', 'typed_config']);
  if (inertNetworkFilter(ctx, f.typed_config, sub(loc, 'typed_config')) === 'istio.metadata_exchange') ctx.noEffect(loc, 'Cluster.filters istio.metadata_exchange');
  else ctx.reject(loc, `unsupported upstream network filter ${asStr(f.name) ?? '(unnamed)'}: Remora runs no filters on upstream connections (Istio's istio.metadata_exchange is accepted)`);
}

function circuitBreakers(ctx: Ctx, cb: Obj, loc: Loc, out: Fields): void {
  ctx.only(cb, loc, ['thresholds']);
  const list = asArr(cb.thresholds);
  if (list.length > 1) ctx.reject(sub(loc, 'thresholds[1]'), 'Remora has one set of thresholds (priority DEFAULT)');
  const tl = sub(loc, 'thresholds[0]');
  const t = asObj(list[0]);
  out.here(tl);
  if (t === undefined) return;
  ctx.only(t, tl, ['priority', 'max_connections', 'max_pending_requests', 'max_requests', 'max_retries', 'retry_budget', 'track_remaining']);
  if (isSet(t.priority) && t.priority !== 'DEFAULT') ctx.reject(sub(tl, 'priority'), `${String(t.priority)} is not supported (DEFAULT only)`);
  // Istio writes 4294967295 (the uint32 maximum) for "no limit"; Remora's largest limit
  // is the same in practice. track_remaining only adds Envoy's remaining_* gauges
  // (Remora's /clusters always shows what remains).
  for (const k of ['max_connections', 'max_pending_requests', 'max_requests', 'max_retries'] as const) {
    const v = wrapped(t[k]);
    out.take(k, v !== undefined && v > MAX_CIRCUIT_BREAKER ? MAX_CIRCUIT_BREAKER : v, sub(tl, k));
  }
  if (t.track_remaining === true) ctx.noEffect(tl, 'Cluster.circuit_breakers.thresholds.track_remaining');
  const rb = asObj(t.retry_budget);
  if (rb !== undefined) {
    const rl = sub(tl, 'retry_budget');
    ctx.only(rb, rl, ['budget_percent', 'min_retry_concurrency']);
    const budget = out.nest('retry_budget').here(rl);
    budget.fill('budget_percent', wrapped(rb.budget_percent), sub(rl, 'budget_percent'));
    budget.fill('min_retry_concurrency', wrapped(rb.min_retry_concurrency), sub(rl, 'min_retry_concurrency'));
  }
}

/** Envoy's enforcing_* percentages: Remora ejects always (100) or never (0). */
function enforcing(ctx: Ctx, v: unknown, loc: Loc, envoyDefault: number): boolean {
  const p = wrapped(v) ?? envoyDefault;
  if (p !== 0 && p !== 100) ctx.reject(loc, `must be 0 or 100 (got ${p}): Remora ejects always or never`);
  return p !== 0;
}

/** Envoy's local-origin outlier detectors: in effect only with split_external_local_origin_errors. */
const LOCAL_ORIGIN_FIELDS = ['consecutive_local_origin_failure', 'enforcing_consecutive_local_origin_failure', 'enforcing_local_origin_success_rate'];

function outlierDetection(ctx: Ctx, od: Obj, loc: Loc, out: Fields): void {
  ctx.only(od, loc, ['consecutive_5xx', 'consecutive_gateway_failure', 'interval', 'base_ejection_time', 'max_ejection_time',
    'max_ejection_percent', 'enforcing_consecutive_5xx', 'enforcing_consecutive_gateway_failure', 'enforcing_success_rate',
    'success_rate_minimum_hosts', 'success_rate_request_volume', 'success_rate_stdev_factor', 'split_external_local_origin_errors', ...LOCAL_ORIGIN_FIELDS]);
  // Envoy reads its local-origin detectors only with split_external_local_origin_errors;
  // without it (as in Remora) connect failures, resets and timeouts count as 5xx.
  if (od.split_external_local_origin_errors === true) {
    ctx.reject(sub(loc, 'split_external_local_origin_errors'), 'is not supported: Remora counts connect failures, resets and timeouts with the 5xx responses');
  }
  for (const k of LOCAL_ORIGIN_FIELDS) if (isSet(od[k])) ctx.noEffect(sub(loc, k), `Cluster.outlier_detection.${k} (without split_external_local_origin_errors)`);
  out.here(loc);
  // A detector Envoy does not enforce is off in Remora (threshold 0), which its
  // enforcing_* field decided.
  const counts = [
    ['consecutive_5xx', 'enforcing_consecutive_5xx', 100],
    ['consecutive_gateway_failure', 'enforcing_consecutive_gateway_failure', 0],
  ] as const;
  for (const [field, enforce, envoyDefault] of counts) {
    const on = enforcing(ctx, od[enforce], sub(loc, enforce), envoyDefault);
    out.fill(field, on ? wrapped(od[field]) : 0, sub(loc, on ? field : enforce));
  }
  const successRate = enforcing(ctx, od.enforcing_success_rate, sub(loc, 'enforcing_success_rate'), 100);
  const minHosts = wrapped(od.success_rate_minimum_hosts);
  if (successRate && minHosts === 0) {
    ctx.reject(sub(loc, 'success_rate_minimum_hosts'), '0 is not supported (Remora uses 0 to turn success-rate ejection off; for that set enforcing_success_rate to 0)');
  }
  out.fill('success_rate_minimum_hosts', !successRate ? 0 : minHosts === 0 ? undefined : minHosts,
    sub(loc, successRate ? 'success_rate_minimum_hosts' : 'enforcing_success_rate'));
  for (const [to, from] of [['interval_ms', 'interval'], ['base_ejection_time_ms', 'base_ejection_time'], ['max_ejection_time_ms', 'max_ejection_time']] as const) {
    out.fill(to, ctx.ms(od[from], sub(loc, from)), sub(loc, from));
  }
  for (const k of ['max_ejection_percent', 'success_rate_request_volume'] as const) out.fill(k, wrapped(od[k]), sub(loc, k));
  const stdev = wrapped(od.success_rate_stdev_factor);
  out.fill('success_rate_stdev_factor', stdev === undefined ? undefined : stdev / 1000, sub(loc, 'success_rate_stdev_factor')); // Envoy: 1900 = 1.9
}

/** upstream_connection_options: TCP keepalive (`tcp_keepalive`, its idle time). Node
 *  cannot set the probes' interval and count: counted as without effect. */
function tcpKeepalive(ctx: Ctx, o: Obj, loc: Loc, out: Fields): void {
  ctx.only(o, loc, ['tcp_keepalive']);
  const k = asObj(o.tcp_keepalive);
  if (k === undefined) return;
  const kl = sub(loc, 'tcp_keepalive');
  ctx.only(k, kl, ['keepalive_time', 'keepalive_interval', 'keepalive_probes']);
  const ka = out.nest('tcp_keepalive').here(kl);
  ka.take('time_s', wrapped(k.keepalive_time), sub(kl, 'keepalive_time'));
  for (const f of ['keepalive_interval', 'keepalive_probes']) if (isSet(k[f])) ctx.noEffect(kl, `TcpKeepalive.${f}`);
}

/** `{start, end}` status ranges → `[start, end]`. */
function statusRanges(ctx: Ctx, list: unknown[], loc: Loc, key: string): number[][] {
  return list.map((r, i) => {
    const range = asObj(r) ?? {};
    ctx.only(range, sub(loc, `${key}[${i}]`), ['start', 'end']);
    return [asNum(range.start), asNum(range.end)];
  });
}

/** Envoy's health check event log (a file of each check's events): Remora logs an
 *  endpoint's health changes to its own log, and writes no event file. */
const EVENT_LOG_FIELDS = ['event_log_path', 'always_log_health_check_failures', 'always_log_health_check_success'];

/** One HealthCheck: an HTTP GET (http_health_check) or a gRPC health check
 *  (grpc_health_check), with the intervals and thresholds they share. */
function healthCheck(ctx: Ctx, hc: Obj, loc: Loc, out: Fields): void {
  if (isSet(hc.custom_health_check)) ctx.reject(sub(loc, 'custom_health_check'), 'only http_health_check, grpc_health_check and tcp_health_check are supported');
  ctx.only(hc, loc, ['timeout', 'interval', 'unhealthy_threshold', 'healthy_threshold', 'http_health_check',
    'tcp_health_check', 'grpc_health_check', 'custom_health_check', 'no_traffic_interval', 'no_traffic_healthy_interval',
    'unhealthy_interval', 'unhealthy_edge_interval', 'healthy_edge_interval', 'interval_jitter', 'interval_jitter_percent',
    'initial_jitter', ...EVENT_LOG_FIELDS]);
  for (const k of EVENT_LOG_FIELDS) if (isSet(hc[k])) ctx.noEffect(sub(loc, k), `Cluster.health_checks.${k}`);
  out.here(loc);
  const h = asObj(hc.http_health_check);
  const g = asObj(hc.grpc_health_check);
  const t = asObj(hc.tcp_health_check);
  const given = [['http_health_check', h], ['grpc_health_check', g], ['tcp_health_check', t]].filter(([, x]) => x !== undefined);
  if (given.length > 1) {
    ctx.reject(sub(loc, String(given[1][0])), `not allowed together with ${String(given[0][0])} (Envoy takes one health checker)`);
    return;
  }
  if (g !== undefined) grpcHealthCheck(ctx, g, sub(loc, 'grpc_health_check'), out);
  else if (t !== undefined) tcpHealthCheck(ctx, t, sub(loc, 'tcp_health_check'), out);
  else if (h !== undefined) httpHealthCheck(ctx, h, sub(loc, 'http_health_check'), out);
  else {
    ctx.reject(sub(loc, 'http_health_check'), 'is required (Remora runs HTTP health checks, or gRPC ones with grpc_health_check, or TCP ones with tcp_health_check)');
    return;
  }
  for (const [to, from] of [
    ['interval_ms', 'interval'],
    ['timeout_ms', 'timeout'],
    ['no_traffic_interval_ms', 'no_traffic_interval'],
    ['no_traffic_healthy_interval_ms', 'no_traffic_healthy_interval'],
    ['unhealthy_interval_ms', 'unhealthy_interval'],
    ['unhealthy_edge_interval_ms', 'unhealthy_edge_interval'],
    ['healthy_edge_interval_ms', 'healthy_edge_interval'],
    ['interval_jitter_ms', 'interval_jitter'],
    ['initial_jitter_ms', 'initial_jitter'],
  ] as const) {
    out.fill(to, ctx.ms(hc[from], sub(loc, from)), sub(loc, from));
  }
  out.fill('interval_jitter_percent', isSet(hc.interval_jitter_percent) ? hc.interval_jitter_percent : undefined, sub(loc, 'interval_jitter_percent'));
  for (const k of ['healthy_threshold', 'unhealthy_threshold'] as const) out.fill(k, wrapped(hc[k]), sub(loc, k));
}

/** http_health_check: a GET of `path`; its statuses. */
function httpHealthCheck(ctx: Ctx, h: Obj, hl: Loc, out: Fields): void {
  ctx.only(h, hl, ['host', 'path', 'expected_statuses', 'retriable_statuses', 'codec_client_type', 'method', 'receive', 'response_buffer_size']);
  if (isSet(h.codec_client_type) && h.codec_client_type !== 'HTTP1') ctx.reject(sub(hl, 'codec_client_type'), `${String(h.codec_client_type)} is not supported (HTTP1)`);
  if (isSet(h.method) && h.method !== 'GET' && h.method !== 'METHOD_UNSPECIFIED') ctx.reject(sub(hl, 'method'), `${String(h.method)} is not supported (GET)`);
  out.set('path', h.path ?? '', sub(hl, 'path'));
  if (isSet(h.host)) out.set('host', h.host, sub(hl, 'host'));
  // Envoy's default is 200 only ([200, 201)); Remora's file default is 2xx.
  const statuses = asArr(h.expected_statuses);
  out.set('expected_statuses', statuses.length === 0
    ? ENVOY_EXPECTED_STATUSES.map((r) => [...r])
    : statusRanges(ctx, statuses, hl, 'expected_statuses'), sub(hl, 'expected_statuses'));
  const retriable = asArr(h.retriable_statuses);
  out.fill('retriable_statuses', retriable.length > 0 ? statusRanges(ctx, retriable, hl, 'retriable_statuses') : undefined, sub(hl, 'retriable_statuses'));
  const receive = asArr(h.receive);
  if (receive.length > 0) out.set('receive', payloads(ctx, receive, sub(hl, 'receive')), sub(hl, 'receive'));
  const size = wrapped(h.response_buffer_size);
  if (size !== undefined) out.set('response_buffer_size', Number(size), sub(hl, 'response_buffer_size'));
}

/** tcp_health_check: `send` written on a new connection, the answer matched against
 *  `receive` (none: connect only). */
function tcpHealthCheck(ctx: Ctx, t: Obj, tl: Loc, out: Fields): void {
  ctx.only(t, tl, ['send', 'receive']);
  const tcp = out.nest('tcp').here(tl);
  if (t.send !== undefined) {
    const send = payload(ctx, t.send, sub(tl, 'send'));
    if (send !== '') tcp.set('send', send, sub(tl, 'send'));
  }
  tcp.set('receive', payloads(ctx, asArr(t.receive), sub(tl, 'receive')), sub(tl, 'receive'));
}

/** A HealthCheck.Payload → hex digits: `text` is hex already (Envoy's form), `binary`
 *  bytes are written as hex. */
function payload(ctx: Ctx, p: unknown, loc: Loc): string {
  const o = asObj(p) ?? {};
  ctx.only(o, loc, ['text', 'binary']);
  if (typeof o.text === 'string') {
    if (!/^(?:[0-9a-fA-F]{2})*$/.test(o.text)) ctx.reject(sub(loc, 'text'), 'must be hex digits, two per byte');
    return o.text.toLowerCase();
  }
  if (o.binary instanceof Uint8Array) return Buffer.from(o.binary).toString('hex');
  ctx.reject(loc, 'needs text (hex digits) or binary');
  return '';
}

const payloads = (ctx: Ctx, list: readonly unknown[], loc: Loc): string[] => list.map((p, i) => payload(ctx, p, sub(loc, `[${i}]`)));

/** grpc_health_check: grpc.health.v1.Health/Check for `service_name` ('' = the whole
 *  server) over HTTP/2, with `:authority` `authority`; unset, the cluster name in Envoy,
 *  and in Remora too (the check's `host`, whose default is the cluster name). Envoy
 *  refuses it on a cluster without HTTP/2; Remora's check is HTTP/2 whatever the
 *  cluster's protocol, so it is accepted there. */
function grpcHealthCheck(ctx: Ctx, g: Obj, gl: Loc, out: Fields): void {
  if (isSet(g.initial_metadata)) ctx.reject(sub(gl, 'initial_metadata'), 'is not supported: Remora sends no metadata with a gRPC health check');
  ctx.only(g, gl, ['service_name', 'authority', 'initial_metadata']);
  const grpc = out.nest('grpc').here(gl);
  grpc.fill('service_name', asStr(g.service_name), sub(gl, 'service_name'));
  if (isSet(g.authority)) grpc.set('authority', g.authority, sub(gl, 'authority'));
}
