// HTTP protocol options (part of src/xds/translate.ts): Http2ProtocolOptions, which a
// listener's HttpConnectionManager and a cluster share (settings and PING keepalive), and
// a cluster's upstream HTTP version, from the deprecated Cluster.http2_protocol_options or
// from typed_extension_protocol_options' envoy.extensions.upstreams.http.v3.HttpProtocolOptions
// (explicit HTTP/1.1 or HTTP/2, or the downstream's version per request; Remora does not
// choose the version by ALPN). docs/xds.md says what is accepted, and why the rest is rejected.

import { HTTP_PROTOCOL_OPTIONS } from './names.js';
import { TypeUrl } from './protos.js';
import { asObj, asStr, isSet, wrapped, type Obj } from './read.js';
import { sub, type Ctx, type Loc } from './translate-context.js';
import type { Fields } from './translate-fields.js';

/** Http2ProtocolOptions fields with a Remora field of the same name. */
const H2_SETTINGS = ['max_concurrent_streams', 'initial_stream_window_size', 'initial_connection_window_size'] as const;
/** Envoy's flood-mitigation limits: accepted, not applied. node:http2 (nghttp2) bounds the
 *  same floods by its own limits (session memory, invalid frames, control frames awaiting
 *  acknowledgement; docs/protocols.md), so a value here cannot loosen what Remora holds. */
const H2_FLOOD_LIMITS = ['max_outbound_frames', 'max_outbound_control_frames', 'max_consecutive_inbound_frames_with_empty_payload',
  'max_inbound_priority_frames_per_stream', 'max_inbound_window_update_frames_per_data_frame_sent'];
/** SETTINGS_HEADER_TABLE_SIZE: node:http2's and Envoy's default, which Remora keeps. */
const HPACK_TABLE_SIZE = 4096;

/** The upstream version choices of HttpProtocolOptions (a oneof in Envoy's proto). */
const VERSION_CHOICES = ['explicit_http_config', 'use_downstream_protocol_config', 'auto_config'] as const;

/** The HTTP version a cluster speaks upstream (its raw `protocol`). */
export type UpstreamProtocol = 'http1' | 'http2' | 'downstream' | 'auto';

/** Http2ProtocolOptions → `out` (a raw `http2_protocol_options`). Unset fields keep
 *  Remora's defaults (Envoy's recommendation for untrusted peers), not Envoy's own (2^31-1
 *  streams, 256 MiB windows). Everything else is rejected by path: `allow_connect` (Remora
 *  refuses CONNECT), `allow_metadata`, `custom_settings_parameters`, the invalid-message
 *  overrides, `use_oghttp2_codec`. */
export function http2Options(ctx: Ctx, o: Obj, loc: Loc, out: Fields): void {
  ctx.only(o, loc, [...H2_SETTINGS, ...H2_FLOOD_LIMITS, 'hpack_table_size', 'connection_keepalive']);
  const hpack = wrapped(o.hpack_table_size);
  if (hpack !== undefined && hpack !== HPACK_TABLE_SIZE) {
    ctx.reject(sub(loc, 'hpack_table_size'), `${hpack} is not supported: Remora's HPACK table is ${HPACK_TABLE_SIZE} bytes (${HPACK_TABLE_SIZE} or unset)`);
  }
  for (const k of H2_FLOOD_LIMITS) if (isSet(o[k])) ctx.noEffect(loc, `Http2ProtocolOptions.${k}`);
  out.here(loc);
  for (const k of H2_SETTINGS) out.take(k, wrapped(o[k]), sub(loc, k));
  const ka = asObj(o.connection_keepalive);
  if (ka !== undefined) keepalive(ctx, ka, sub(loc, 'connection_keepalive'), out);
}

/** KeepaliveSettings → `connection_keepalive` in `out`: a PING every `interval`, the
 *  connection closed when one goes unanswered for `timeout`. Envoy sends no interval PINGs
 *  when `interval` is 0 or unset: then nothing is written (Remora's unset: no PINGs).
 *  Unset `timeout` (Envoy requires it) keeps Remora's default. Remora PINGs at a fixed
 *  interval: `interval_jitter` may only be 0 or unset (Envoy's unset is 15 %; PINGs a
 *  little more regular change nothing a peer can see), and `connection_idle_interval`
 *  (a PING before reusing an idle connection) is rejected. */
function keepalive(ctx: Ctx, k: Obj, loc: Loc, out: Fields): void {
  ctx.only(k, loc, ['interval', 'timeout', 'interval_jitter', 'connection_idle_interval']);
  const jitter = wrapped(k.interval_jitter);
  if (jitter !== undefined && jitter !== 0) {
    ctx.reject(sub(loc, 'interval_jitter'), `${jitter}% is not supported: Remora sends PINGs at a fixed interval (0 or unset)`);
  }
  const idle = ctx.ms(k.connection_idle_interval, sub(loc, 'connection_idle_interval'));
  if (idle !== undefined && idle !== 0) {
    ctx.reject(sub(loc, 'connection_idle_interval'), `${idle} ms is not supported: Remora PINGs at the fixed interval only, not before reusing an idle connection (0 or unset)`);
  }
  const interval = ctx.ms(k.interval, sub(loc, 'interval'));
  if (interval === undefined || interval === 0) return;
  const ka = out.nest('connection_keepalive').here(loc);
  ka.set('interval_ms', interval, sub(loc, 'interval'));
  ka.fill('timeout_ms', ctx.ms(k.timeout, sub(loc, 'timeout')), sub(loc, 'timeout'));
}

/** A cluster's upstream protocol → `out` (the raw cluster): `protocol`,
 *  `http2_protocol_options`, and `idle_timeout_ms` from HttpProtocolOptions'
 *  common_http_protocol_options. Nothing is written when neither field is set (HTTP/1.1,
 *  as in Envoy). Returns the protocol the cluster speaks; undefined when its choice was
 *  rejected. */
export function upstreamProtocol(ctx: Ctx, c: Obj, loc: Loc, out: Fields): UpstreamProtocol | undefined {
  const tl = sub(loc, 'typed_extension_protocol_options');
  let options: { message: Obj; loc: Loc } | undefined;
  for (const [key, any] of Object.entries(asObj(c.typed_extension_protocol_options) ?? {})) {
    const kl = sub(tl, `["${key}"]`);
    const type = asStr(asObj(any)?.type_url);
    if (type !== TypeUrl.HttpProtocolOptions) {
      ctx.reject(kl, `${type ?? 'no type'} is not supported (only ${HTTP_PROTOCOL_OPTIONS})`);
      continue;
    }
    if (options !== undefined) {
      ctx.reject(kl, `a second ${HTTP_PROTOCOL_OPTIONS} (the first is ${options.loc.path})`);
      continue;
    }
    const message = ctx.decode(any, kl)?.message;
    if (message !== undefined) options = { message, loc: kl };
  }
  const legacy = asObj(c.http2_protocol_options);
  // The deprecated protocol_selection: USE_DOWNSTREAM_PROTOCOL (Istio 1.9) speaks the
  // client's version upstream, as use_downstream_protocol_config does.
  const selection = asStr(c.protocol_selection) ?? 'USE_CONFIGURED_PROTOCOL';
  const sl = sub(loc, 'protocol_selection');
  if (selection !== 'USE_CONFIGURED_PROTOCOL' && selection !== 'USE_DOWNSTREAM_PROTOCOL') ctx.reject(sl, `${selection} is not supported`);
  const downstream = selection === 'USE_DOWNSTREAM_PROTOCOL';
  if (downstream && options !== undefined) {
    ctx.reject(sl, `not allowed together with ${options.loc.path}; set its use_downstream_protocol_config`);
    return undefined;
  }
  if (legacy !== undefined || downstream) {
    const ll = sub(loc, 'http2_protocol_options');
    if (options !== undefined) {
      ctx.reject(ll, `not allowed together with ${options.loc.path} (Envoy refuses both too); set its explicit_http_config.http2_protocol_options`);
    } else {
      out.set('protocol', downstream ? 'downstream' : 'http2', downstream ? sl : ll);
      http2Options(ctx, legacy ?? {}, ll, out.nest('http2_protocol_options'));
      return downstream ? 'downstream' : 'http2';
    }
  }
  return options !== undefined ? httpProtocolOptions(ctx, options.message, options.loc, out) : 'http1';
}

/** envoy.extensions.upstreams.http.v3.HttpProtocolOptions → `out`; the protocol chosen,
 *  undefined when the choice was rejected. */
function httpProtocolOptions(ctx: Ctx, o: Obj, loc: Loc, out: Fields): UpstreamProtocol | undefined {
  ctx.only(o, loc, ['common_http_protocol_options', ...VERSION_CHOICES]);
  const protocol = upstreamVersion(ctx, o, loc, out);
  const common = asObj(o.common_http_protocol_options);
  if (common !== undefined) {
    const cl = sub(loc, 'common_http_protocol_options');
    ctx.only(common, cl, ['idle_timeout', 'max_requests_per_connection']);
    // Envoy's 0 disables the idle timeout; so does Remora's.
    out.take('idle_timeout_ms', ctx.ms(common.idle_timeout, sub(cl, 'idle_timeout')), sub(cl, 'idle_timeout'));
    out.take('max_requests_per_connection', wrapped(common.max_requests_per_connection), sub(cl, 'max_requests_per_connection'));
  }
  return protocol;
}

/** HttpProtocolOptions' version choice → `protocol` (and `http2_protocol_options`) in `out`. */
function upstreamVersion(ctx: Ctx, o: Obj, loc: Loc, out: Fields): UpstreamProtocol | undefined {
  const chosen = VERSION_CHOICES.filter((k) => asObj(o[k]) !== undefined);
  if (chosen.length === 0) {
    ctx.reject(sub(loc, 'explicit_http_config'),
      'is required (Envoy requires one of explicit_http_config, use_downstream_protocol_config, auto_config)');
    return undefined;
  }
  if (chosen.length > 1) {
    for (const k of chosen.slice(1)) ctx.reject(sub(loc, k), `not allowed together with ${chosen[0]} (Envoy takes one of ${VERSION_CHOICES.join(', ')})`);
    return undefined;
  }
  switch (chosen[0]) {
    case 'explicit_http_config':
      return explicitHttpConfig(ctx, asObj(o.explicit_http_config) ?? {}, sub(loc, 'explicit_http_config'), out);
    case 'use_downstream_protocol_config':
      return downstreamHttpConfig(ctx, asObj(o.use_downstream_protocol_config) ?? {}, sub(loc, 'use_downstream_protocol_config'), out);
    case 'auto_config':
      return autoHttpConfig(ctx, asObj(o.auto_config) ?? {}, sub(loc, 'auto_config'), out);
  }
}

/** auto_config: the version each endpoint chooses by ALPN (`protocol: auto`), HTTP/2
 *  connections with the settings of its http2_protocol_options. HTTP/3 and the alternate
 *  protocols cache are rejected. */
function autoHttpConfig(ctx: Ctx, a: Obj, al: Loc, out: Fields): UpstreamProtocol {
  ctx.only(a, al, ['http_protocol_options', 'http2_protocol_options']);
  const h1 = asObj(a.http_protocol_options);
  if (h1 !== undefined) ctx.only(h1, sub(al, 'http_protocol_options'), []);
  out.set('protocol', 'auto', al);
  const h2 = asObj(a.http2_protocol_options);
  if (h2 !== undefined) http2Options(ctx, h2, sub(al, 'http2_protocol_options'), out.nest('http2_protocol_options'));
  return 'auto';
}

/** explicit_http_config: HTTP/2 with its options, else HTTP/1.1 (an empty message is
 *  HTTP/1.1 in Envoy too). Http1ProtocolOptions' fields (absolute URLs, HTTP/1.0, header
 *  case, trailers, ...) are not supported. */
function explicitHttpConfig(ctx: Ctx, explicit: Obj, el: Loc, out: Fields): UpstreamProtocol {
  ctx.only(explicit, el, ['http_protocol_options', 'http2_protocol_options']);
  const h2 = asObj(explicit.http2_protocol_options);
  if (h2 !== undefined) {
    out.set('protocol', 'http2', sub(el, 'http2_protocol_options'));
    http2Options(ctx, h2, sub(el, 'http2_protocol_options'), out.nest('http2_protocol_options'));
    return 'http2';
  }
  const h1 = asObj(explicit.http_protocol_options);
  if (h1 !== undefined) ctx.only(h1, sub(el, 'http_protocol_options'), []);
  out.set('protocol', 'http1', h1 !== undefined ? sub(el, 'http_protocol_options') : el);
  return 'http1';
}

/** use_downstream_protocol_config: each request goes upstream in the version its client
 *  spoke (Istio's cluster for a port whose protocol it sniffs); HTTP/2 connections take
 *  the settings of its http2_protocol_options. Its http_protocol_options may have no
 *  fields set (as under explicit_http_config); http3_protocol_options is rejected. */
function downstreamHttpConfig(ctx: Ctx, d: Obj, dl: Loc, out: Fields): UpstreamProtocol {
  ctx.only(d, dl, ['http_protocol_options', 'http2_protocol_options']);
  const h1 = asObj(d.http_protocol_options);
  if (h1 !== undefined) ctx.only(h1, sub(dl, 'http_protocol_options'), []);
  out.set('protocol', 'downstream', dl);
  const h2 = asObj(d.http2_protocol_options);
  if (h2 !== undefined) http2Options(ctx, h2, sub(dl, 'http2_protocol_options'), out.nest('http2_protocol_options'));
  return 'downstream';
}
