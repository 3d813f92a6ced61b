// One finished request as Envoy's HTTPAccessLogEntry (envoy/data/accesslog/v3/
// accesslog.proto), written straight from its StreamInfo into a worker's ProtoWriter as a
// `log_entry` field of StreamAccessLogsMessage.HTTPAccessLogEntries: no object per entry.
// Filled from what Remora knows: the client's address, the start time and durations,
// the upstream cluster, endpoint and attempts, response flags, route, protocol, the
// request's method, scheme, authority, path, user agent, referer, x-forwarded-for,
// request id and sizes, and the response's code, body size and details.

import { ResponseFlag } from '../src/core/flags.js';
import type { ProtoWriter } from '../src/access-log/proto-writer.js';
import type { StreamInfo } from './stream-info.js';

/** config.core.v3.RequestMethod by method name. */
const METHODS: Readonly<Record<string, number>> = {
  GET: 1, HEAD: 2, POST: 3, PUT: 4, DELETE: 5, CONNECT: 6, OPTIONS: 7, TRACE: 8, PATCH: 9,
};

/** AccessLogCommon.response_flags (ResponseFlags) field by Remora's flag. RBAC and DR
 *  have none (Envoy's RBAC filter and direct responses set no flag). */
const FLAG_FIELDS: Readonly<Record<string, number>> = {
  [ResponseFlag.NoHealthyUpstream]: 2,
  [ResponseFlag.UpstreamRequestTimeout]: 3,
  [ResponseFlag.LocalReset]: 4,
  [ResponseFlag.UpstreamRemoteReset]: 5,
  [ResponseFlag.UpstreamConnectFailure]: 6,
  [ResponseFlag.UpstreamConnectionTermination]: 7,
  [ResponseFlag.UpstreamOverflow]: 8,
  [ResponseFlag.NoRoute]: 9,
  [ResponseFlag.RateLimited]: 12,
  [ResponseFlag.DownstreamConnectionTermination]: 15,
  [ResponseFlag.UpstreamRetryLimitExceeded]: 16,
  [ResponseFlag.DownstreamProtocolError]: 19,
  [ResponseFlag.UpstreamProtocolError]: 24,
  [ResponseFlag.NoClusterFound]: 25,
};

/** HTTPResponseProperties.response_code_details for a local reply, by flag (Envoy's
 *  names); a proxied response's is `via_upstream`. */
const DETAILS: Readonly<Record<string, string>> = {
  [ResponseFlag.NoRoute]: 'route_not_found',
  [ResponseFlag.NoClusterFound]: 'cluster_not_found',
  [ResponseFlag.NoHealthyUpstream]: 'no_healthy_upstream',
  [ResponseFlag.UpstreamRequestTimeout]: 'upstream_response_timeout',
  [ResponseFlag.UpstreamConnectFailure]: 'upstream_reset_before_response_started{connection_failure}',
  [ResponseFlag.UpstreamOverflow]: 'upstream_reset_before_response_started{overflow}',
  [ResponseFlag.RateLimited]: 'local_rate_limited',
  [ResponseFlag.AuthorizationDenied]: 'rbac_access_denied_matched_policy[none]',
  [ResponseFlag.DirectResponse]: 'direct_response',
};

/** Writes `info` as one `log_entry` (field 1) of HTTPAccessLogEntries. `scheme`: the
 *  listener's (http, https); `nowMs`: Date.now() when the request ended. */
export function writeHttpEntry(w: ProtoWriter, info: StreamInfo, scheme: string, nowMs: number): void {
  const req = info.request;
  const headers = req.headers;
  let authority = '';
  let userAgent = '';
  let referer = '';
  let forwardedFor = '';
  // Request line plus header lines, as HTTP/1.1 would send them (Envoy's
  // request_headers_bytes counts the header map: close enough, and no second pass).
  let headerBytes = req.method.length + req.path.length + req.query.length + 12;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    const value = headers[i + 1];
    headerBytes += name.length + value.length + 4;
    switch (name) {
      case 'host':
      case ':authority':
        if (authority === '') authority = value;
        break;
      case 'user-agent':
        if (userAgent === '') userAgent = value;
        break;
      case 'referer':
        if (referer === '') referer = value;
        break;
      case 'x-forwarded-for':
        if (forwardedFor === '') forwardedFor = value;
        break;
    }
  }
  const entry = w.begin(1);

  // common_properties: AccessLogCommon
  const common = w.begin(1);
  if (req.remoteAddress !== '') socketAddress(w, 2, req.remoteAddress, 0);
  const startUs = nowMs * 1000 - info.durationUs;
  const ts = w.begin(5); // start_time: Timestamp
  const seconds = Math.floor(startUs / 1e6);
  w.uint(1, seconds);
  w.uint(2, Math.round(startUs - seconds * 1e6) * 1000);
  w.end(ts);
  if (info.upstreamStartedAt > 0) duration(w, 7, Math.max(0, Math.round((info.upstreamStartedAt - info.startedAt) * 1000))); // time_to_first_upstream_tx_byte
  if (info.upstreamStatus > 0) duration(w, 10, info.durationUs); // time_to_last_upstream_rx_byte
  duration(w, 12, info.durationUs); // time_to_last_downstream_tx_byte
  const upstream = info.upstreamHost;
  if (upstream !== '') {
    const colon = upstream.lastIndexOf(':');
    const host = colon > 0 ? upstream.slice(upstream[0] === '[' ? 1 : 0, upstream[colon - 1] === ']' ? colon - 1 : colon) : upstream;
    socketAddress(w, 13, host, colon > 0 ? Number(upstream.slice(colon + 1)) || 0 : 0);
  }
  if (info.cluster !== null) w.string(15, info.cluster.name);
  flags(w, info);
  w.string(19, info.routeName);
  duration(w, 23, info.durationUs); // duration
  w.uint(24, info.attempts); // upstream_request_attempt_count
  w.string(26, info.requestId); // stream_id
  w.uint(33, 6); // access_log_type: DownstreamEnd
  w.end(common);

  w.uint(2, req.http2 ? 3 : 2); // protocol_version: HTTP2 or HTTP11

  // request: HTTPRequestProperties
  const request = w.begin(3);
  w.uint(1, METHODS[req.method] ?? 0);
  w.string(2, scheme);
  w.string(3, authority);
  w.string(5, req.query.length > 0 ? `${req.path}?${req.query}` : req.path);
  w.string(6, userAgent);
  w.string(7, referer);
  w.string(8, forwardedFor);
  w.string(9, info.requestId);
  w.uint(11, headerBytes);
  w.uint(12, info.bytesIn);
  w.end(request);

  // response: HTTPResponseProperties
  const response = w.begin(4);
  if (info.status > 0) {
    const code = w.begin(1); // response_code: UInt32Value
    w.uint(1, info.status);
    w.end(code);
  }
  w.uint(3, info.bytesOut);
  const details = info.upstreamStatus !== 0 && info.status === info.upstreamStatus ? 'via_upstream' : DETAILS[info.flag];
  if (details !== undefined) w.string(6, details);
  w.end(response);

  w.end(entry);
}

/** A config.core.v3.Address holding a SocketAddress (TCP). */
function socketAddress(w: ProtoWriter, field: number, address: string, port: number): void {
  const a = w.begin(field);
  const s = w.begin(1);
  w.string(2, address);
  w.uint(3, port);
  w.end(s);
  w.end(a);
}

/** A google.protobuf.Duration of `us` microseconds (written even when 0). */
function duration(w: ProtoWriter, field: number, us: number): void {
  const d = w.begin(field);
  const seconds = Math.floor(us / 1e6);
  w.uint(1, seconds);
  w.uint(2, (us - seconds * 1e6) * 1000);
  w.end(d);
}

/** ResponseFlags: the flag, plus URX and UO when retries ran out or were refused. */
function flags(w: ProtoWriter, info: StreamInfo): void {
  const main = FLAG_FIELDS[info.flag];
  if (main === undefined && !info.retryExhausted && !info.retryOverflow) return;
  const f = w.begin(16); // fields in any order are valid protobuf
  if (main !== undefined) w.bool(main, true);
  if (info.retryOverflow && info.flag !== ResponseFlag.UpstreamOverflow) w.bool(8, true);
  if (info.retryExhausted && info.flag !== ResponseFlag.UpstreamRetryLimitExceeded) w.bool(16, true);
  w.end(f);
}
