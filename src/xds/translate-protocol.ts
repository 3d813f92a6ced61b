// HTTP protocol options (part of src/xds/translate.ts): Http2ProtocolOptions, which a
// listener's HttpConnectionManager and a cluster share, and a cluster's upstream HTTP
// version, from the deprecated Cluster.http2_protocol_options or from
// typed_extension_protocol_options' envoy.extensions.upstreams.http.v3.HttpProtocolOptions
// (explicit HTTP/1.1 or HTTP/2; Remora does not choose the version per request or by ALPN).
// docs/xds.md says what is accepted, and why the rest is rejected.

import { HTTP_PROTOCOL_OPTIONS } from './names.js';
import { TypeUrl } from './protos.js';
import { asObj, asStr, wrapped, type Obj } from './read.js';
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

/** Http2ProtocolOptions → `out` (a raw `http2_protocol_options`). Unset fields keep
 *  Remora's defaults (Envoy's recommendation for untrusted peers), not Envoy's own (2^31-1
 *  streams, 256 MiB windows). Everything else is rejected by path: `allow_connect` (Remora
 *  refuses CONNECT), `allow_metadata`, `custom_settings_parameters`, `connection_keepalive`
 *  (Remora sends no PINGs), the invalid-message overrides, `use_oghttp2_codec`. */
export function http2Options(ctx: Ctx, o: Obj, loc: Loc, out: Fields): void {
  ctx.only(o, loc, [...H2_SETTINGS, ...H2_FLOOD_LIMITS, 'hpack_table_size']);
  const hpack = wrapped(o.hpack_table_size);
  if (hpack !== undefined && hpack !== HPACK_TABLE_SIZE) {
    ctx.reject(sub(loc, 'hpack_table_size'), `${hpack} is not supported: Remora's HPACK table is ${HPACK_TABLE_SIZE} bytes (${HPACK_TABLE_SIZE} or unset)`);
  }
  out.here(loc);
  for (const k of H2_SETTINGS) out.take(k, wrapped(o[k]), sub(loc, k));
}

/** A cluster's upstream protocol → `out` (the raw cluster): `protocol`,
 *  `http2_protocol_options`, and `idle_timeout_ms` from HttpProtocolOptions'
 *  common_http_protocol_options. Nothing is written when neither field is set (HTTP/1.1,
 *  as in Envoy). */
export function upstreamProtocol(ctx: Ctx, c: Obj, loc: Loc, out: Fields): void {
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
  if (legacy !== undefined) {
    const ll = sub(loc, 'http2_protocol_options');
    if (options !== undefined) {
      ctx.reject(ll, `not allowed together with ${options.loc.path} (Envoy refuses both too); set its explicit_http_config.http2_protocol_options`);
    } else {
      out.set('protocol', 'http2', ll);
      http2Options(ctx, legacy, ll, out.nest('http2_protocol_options'));
    }
  }
  if (options !== undefined) httpProtocolOptions(ctx, options.message, options.loc, out);
}

/** envoy.extensions.upstreams.http.v3.HttpProtocolOptions. */
function httpProtocolOptions(ctx: Ctx, o: Obj, loc: Loc, out: Fields): void {
  ctx.only(o, loc, ['common_http_protocol_options', 'explicit_http_config', 'use_downstream_protocol_config', 'auto_config']);
  // Both would need the protocol chosen per request (the downstream's) or per connection
  // (ALPN). Mapping them to HTTP/1.1 would send an HTTP/2 client's gRPC calls as HTTP/1.1,
  // where Envoy keeps HTTP/2; so they are refused, not approximated.
  if (asObj(o.use_downstream_protocol_config) !== undefined) {
    ctx.reject(sub(loc, 'use_downstream_protocol_config'),
      'is not supported: Remora speaks one HTTP version per cluster; use explicit_http_config (http_protocol_options or http2_protocol_options)');
  }
  if (asObj(o.auto_config) !== undefined) {
    ctx.reject(sub(loc, 'auto_config'),
      'is not supported: Remora does not choose the upstream HTTP version by ALPN; use explicit_http_config (http_protocol_options or http2_protocol_options)');
  }
  const el = sub(loc, 'explicit_http_config');
  const explicit = asObj(o.explicit_http_config);
  if (explicit !== undefined) {
    ctx.only(explicit, el, ['http_protocol_options', 'http2_protocol_options']);
    const h2 = asObj(explicit.http2_protocol_options);
    const h1 = asObj(explicit.http_protocol_options);
    if (h2 !== undefined) {
      out.set('protocol', 'http2', sub(el, 'http2_protocol_options'));
      http2Options(ctx, h2, sub(el, 'http2_protocol_options'), out.nest('http2_protocol_options'));
    } else {
      // Empty explicit_http_config is HTTP/1.1 in Envoy too. Http1ProtocolOptions' fields
      // (absolute URLs, HTTP/1.0, header case, trailers, ...) are not supported.
      if (h1 !== undefined) ctx.only(h1, sub(el, 'http_protocol_options'), []);
      out.set('protocol', 'http1', h1 !== undefined ? sub(el, 'http_protocol_options') : el);
    }
  } else if (asObj(o.use_downstream_protocol_config) === undefined && asObj(o.auto_config) === undefined) {
    ctx.reject(el, 'is required (Envoy requires one of explicit_http_config, use_downstream_protocol_config, auto_config; Remora supports the first)');
  }
  const common = asObj(o.common_http_protocol_options);
  if (common !== undefined) {
    const cl = sub(loc, 'common_http_protocol_options');
    ctx.only(common, cl, ['idle_timeout']);
    // Envoy's 0 disables the idle timeout; so does Remora's.
    out.take('idle_timeout_ms', ctx.ms(common.idle_timeout, sub(cl, 'idle_timeout')), sub(cl, 'idle_timeout'));
  }
}
