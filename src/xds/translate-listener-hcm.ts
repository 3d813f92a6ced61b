// The HttpConnectionManager's settings (part of src/xds/translate-listener.ts, which reads
// its routes, HTTP versions, XFCC mode and its own HTTP filters): the front-end settings
// that map onto the listener's fields (path normalisation, server header, timeouts,
// limits, HTTP/1 options), and a decision for each setting that real
// control planes send and Remora has no field for. Such a setting is accepted when it
// changes nothing Remora does (tracing without span export, the UUID request ID
// extension, internal addresses, drain timings), and rejected by path when ignoring it
// would change traffic (trusted x-forwarded-for hops, Via, custom local replies, ...).
// Also upgrade_configs, the HCM's and a route's (CONNECT and h2c only disabled), and
// the HTTP filters that have no effect on their own (CORS without policies, fault without
// faults, gRPC stats, Istio's telemetry and ALPN filters).
// docs/xds.md, "HttpConnectionManager", has the table and the reasons. The access log is
// translate-access-log.ts's.

import { TypeUrl } from './protos.js';
import { asArr, asNum, asObj, asStr, fromStruct, isSet, wrapped, wrappedBool, type Obj } from './read.js';
import { sub, type Ctx, type Loc } from './translate-context.js';
import { Fields } from './translate-fields.js';

/** HttpConnectionManager fields read here (translate-listener.ts reads the others). */
export const HCM_SETTINGS = [
  'normalize_path', 'merge_slashes', 'path_with_escaped_slashes_action', 'server_name', 'server_header_transformation',
  'scheme_header_transformation', 'request_headers_timeout', 'common_http_protocol_options', 'http_protocol_options',
  'use_remote_address', 'xff_num_trusted_hops', 'skip_xff_append', 'internal_address_config', 'via', 'add_user_agent',
  'generate_request_id', 'preserve_external_request_id', 'request_id_extension', 'tracing', 'access_log',
  'stream_idle_timeout', 'request_timeout', 'delayed_close_timeout', 'drain_timeout', 'upgrade_configs',
  'local_reply_config', 'strip_any_host_port', 'strip_matching_host_port',
] as const;

const ESCAPED_SLASHES: Readonly<Record<string, string>> = {
  IMPLEMENTATION_SPECIFIC_DEFAULT: 'keep_unchanged',
  KEEP_UNCHANGED: 'keep_unchanged',
  REJECT_REQUEST: 'reject_request',
  UNESCAPE_AND_REDIRECT: 'unescape_and_redirect',
  UNESCAPE_AND_FORWARD: 'unescape_and_forward',
};
const SERVER_HEADER: Readonly<Record<string, string>> = {
  OVERWRITE: 'overwrite',
  APPEND_IF_ABSENT: 'append_if_absent',
  PASS_THROUGH: 'pass_through',
};

/** The HttpConnectionManager's settings → the listener's (`out`). Unset fields keep
 *  Remora's defaults; note that normalize_path unset stays on (Remora's safe default),
 *  where Envoy's is off. */
export function connectionManagerOptions(ctx: Ctx, hcm: Obj, tl: Loc, out: Fields): void {
  out.take('normalize_path', wrappedBool(hcm.normalize_path), sub(tl, 'normalize_path'));
  if (hcm.merge_slashes === true) out.set('merge_slashes', true, sub(tl, 'merge_slashes'));
  if (isSet(hcm.path_with_escaped_slashes_action)) {
    const action = ESCAPED_SLASHES[String(hcm.path_with_escaped_slashes_action)];
    if (action === undefined) ctx.reject(sub(tl, 'path_with_escaped_slashes_action'), `unknown action ${String(hcm.path_with_escaped_slashes_action)}`);
    else out.set('path_with_escaped_slashes_action', action, sub(tl, 'path_with_escaped_slashes_action'));
  }
  if (isSet(hcm.server_name)) out.set('server_name', asStr(hcm.server_name), sub(tl, 'server_name'));
  if (isSet(hcm.server_header_transformation)) {
    const mode = SERVER_HEADER[String(hcm.server_header_transformation)];
    if (mode === undefined) ctx.reject(sub(tl, 'server_header_transformation'), `unknown transformation ${String(hcm.server_header_transformation)}`);
    else out.set('server_header_transformation', mode, sub(tl, 'server_header_transformation'));
  }
  const scheme = asObj(hcm.scheme_header_transformation);
  // match_upstream is what Remora does: an HTTP/2 upstream gets the :scheme of its own connection.
  if (scheme !== undefined) ctx.only(scheme, sub(tl, 'scheme_header_transformation'), ['match_upstream']);
  if (hcm.request_headers_timeout !== undefined && hcm.request_headers_timeout !== null) {
    const ms = ctx.ms(hcm.request_headers_timeout, sub(tl, 'request_headers_timeout'));
    // Envoy's 0 means no timeout: Remora's longest one stands for it.
    if (ms !== undefined) out.set('request_headers_timeout_ms', ms === 0 ? 3_600_000 : ms, sub(tl, 'request_headers_timeout'));
  }
  const common = asObj(hcm.common_http_protocol_options);
  if (common !== undefined) commonOptions(ctx, common, sub(tl, 'common_http_protocol_options'), out);
  const h1 = asObj(hcm.http_protocol_options);
  if (h1 !== undefined) http1Options(ctx, h1, sub(tl, 'http_protocol_options'));
  forwarding(ctx, hcm, tl);
  timeouts(ctx, hcm, tl);
  const upgrades = upgradeConfigs(ctx, asArr(hcm.upgrade_configs), sub(tl, 'upgrade_configs'), 'filters');
  if (upgrades.length > 0) out.list('upgrade_configs', upgrades);
  const reply = asObj(hcm.local_reply_config);
  for (const [k, v] of Object.entries(reply ?? {})) {
    if (isSet(v)) ctx.reject(sub(tl, `local_reply_config.${k}`), 'is not supported: Remora\'s local replies are its own (only an empty local_reply_config is accepted)');
  }
  tracing(ctx, hcm, tl, out);
  // Accepted, no effect (docs/xds.md): use_remote_address (either value),
  // internal_address_config, preserve_external_request_id, and timeouts() below.
  for (const k of ['use_remote_address', 'internal_address_config', 'preserve_external_request_id', 'delayed_close_timeout', 'drain_timeout']) {
    if (isSet(hcm[k])) ctx.noEffect(tl, `HttpConnectionManager.${k}`);
  }
}

/** HttpConnectionManager `tracing` → the listener's `tracing` (sampling percentages,
 *  path tag length, custom tags); an OpenTelemetry provider also says where spans go
 *  (ctx.tracingProvider → the root `tracing` block). Other providers (Zipkin, Istio's
 *  default; Datadog...) are accepted: sampling and propagation apply, and spans go to the
 *  bootstrap's exporter if it has one. `verbose` and `spawn_upstream_span` are accepted:
 *  Remora always records one span per upstream attempt. */
function tracing(ctx: Ctx, hcm: Obj, tl: Loc, out: Fields): void {
  const t = asObj(hcm.tracing);
  if (t === undefined) return;
  const loc = sub(tl, 'tracing');
  ctx.only(t, loc, ['client_sampling', 'random_sampling', 'overall_sampling', 'verbose', 'max_path_tag_length', 'custom_tags', 'provider', 'spawn_upstream_span']);
  for (const k of ['verbose', 'spawn_upstream_span']) if (isSet(t[k])) ctx.noEffect(tl, `HttpConnectionManager.tracing.${k}`);
  const f = out.nest('tracing');
  f.here(loc);
  for (const k of ['client_sampling', 'random_sampling', 'overall_sampling']) {
    const p = asObj(t[k]);
    if (p !== undefined) f.set(k, asNum(p.value), sub(loc, k));
  }
  f.take('max_path_tag_length', wrapped(t.max_path_tag_length), sub(loc, 'max_path_tag_length'));
  const tags: Fields[] = [];
  asArr(t.custom_tags).forEach((v, i) => {
    const tag = customTag(ctx, asObj(v) ?? {}, sub(sub(loc, 'custom_tags'), i));
    if (tag !== null) tags.push(tag);
  });
  if (tags.length > 0) f.list('custom_tags', tags);
  const provider = asObj(t.provider);
  if (provider === undefined) return;
  const pl = sub(loc, 'provider');
  ctx.only(provider, pl, ['name', 'typed_config']);
  const type = asStr(asObj(provider.typed_config)?.type_url);
  if (type !== TypeUrl.OpenTelemetryTracer) return ctx.noEffect(tl, 'HttpConnectionManager.tracing.provider'); // Zipkin, ...: only sampling applies
  const msg = ctx.decode(provider.typed_config, sub(pl, 'typed_config'))?.message;
  if (msg === undefined) return;
  const ml = sub(pl, 'typed_config');
  ctx.only(msg, ml, ['grpc_service', 'http_service', 'service_name', 'resource_detectors', 'sampler', 'max_cache_size']);
  for (const k of ['resource_detectors', 'max_cache_size']) if (isSet(msg[k])) ctx.noEffect(tl, `OpenTelemetryConfig.${k}`);
  if (isSet(msg.sampler)) ctx.reject(sub(ml, 'sampler'), 'is not supported: use the HttpConnectionManager\'s random_sampling (or the bootstrap\'s tracing.sampler)');
  const serviceName = asStr(msg.service_name) || undefined;
  const grpcService = asObj(msg.grpc_service);
  const httpService = asObj(msg.http_service);
  let provided: { cluster: string; protocol: 'grpc' | 'http/protobuf'; timeoutMs: number | undefined } | null = null;
  if (grpcService !== undefined) {
    const gl = sub(ml, 'grpc_service');
    ctx.only(grpcService, gl, ['envoy_grpc', 'timeout', 'initial_metadata']);
    if (isSet(grpcService.initial_metadata)) ctx.noEffect(tl, 'OpenTelemetryConfig.grpc_service.initial_metadata');
    const cluster = asStr(asObj(grpcService.envoy_grpc)?.cluster_name);
    if (cluster === undefined || cluster === '') ctx.reject(sub(gl, 'envoy_grpc.cluster_name'), 'is required (the collector\'s cluster; google_grpc is not supported)');
    else provided = { cluster, protocol: 'grpc', timeoutMs: ctx.ms(grpcService.timeout, sub(gl, 'timeout')) };
  } else if (httpService !== undefined) {
    const hl = sub(ml, 'http_service');
    ctx.only(httpService, hl, ['http_uri', 'request_headers_to_add']);
    if (isSet(httpService.request_headers_to_add)) ctx.noEffect(tl, 'OpenTelemetryConfig.http_service.request_headers_to_add');
    const uri = asObj(httpService.http_uri) ?? {};
    const cluster = asStr(uri.cluster);
    const path = asStr(uri.uri) ?? '';
    if (cluster === undefined || cluster === '') ctx.reject(sub(hl, 'http_uri.cluster'), 'is required (the collector\'s cluster)');
    else if (path !== '' && !/\/v1\/traces$/.test(path)) ctx.reject(sub(hl, 'http_uri.uri'), `"${path}": Remora posts to the collector's /v1/traces path only`);
    else provided = { cluster, protocol: 'http/protobuf', timeoutMs: ctx.ms(uri.timeout, sub(hl, 'http_uri.timeout')) };
  } else {
    ctx.reject(ml, 'must set grpc_service or http_service (where spans are sent)');
  }
  if (provided !== null) ctx.tracingProvider ??= { ...provided, serviceName };
}

/** An HCM custom tag → the listener's; a `metadata` tag is accepted and left out (Remora
 *  has no metadata to read it from). */
function customTag(ctx: Ctx, t: Obj, loc: Loc): Fields | null {
  ctx.only(t, loc, ['tag', 'literal', 'environment', 'request_header', 'metadata', 'value']);
  if (isSet(t.metadata)) {
    ctx.noEffect(loc, 'HttpConnectionManager.tracing.custom_tags.metadata');
    return null;
  }
  const out = new Fields().here(loc);
  out.set('tag', asStr(t.tag) ?? '', sub(loc, 'tag'));
  const literal = asObj(t.literal);
  const env = asObj(t.environment);
  const header = asObj(t.request_header);
  if (literal !== undefined) out.set('literal', asStr(literal.value) ?? '', sub(loc, 'literal.value'));
  if (env !== undefined) {
    out.set('environment', asStr(env.name) ?? '', sub(loc, 'environment.name'));
    if (isSet(env.default_value)) out.set('default_value', asStr(env.default_value), sub(loc, 'environment.default_value'));
  }
  if (header !== undefined) {
    out.set('request_header', asStr(header.name) ?? '', sub(loc, 'request_header.name'));
    if (isSet(header.default_value)) out.set('default_value', asStr(header.default_value), sub(loc, 'request_header.default_value'));
  }
  return out;
}

/** Upgrade types Remora never tunnels, and why: accepted only with enabled: false (which
 *  asks for what Remora does anyway). */
const NO_TUNNEL: Readonly<Record<string, string>> = {
  connect: 'Remora refuses CONNECT requests (Envoy proxies them with this upgrade type)',
  h2c: 'Remora serves a request with Upgrade: h2c over HTTP/1.1 and never switches it (Envoy with this entry would pass the upgrade on)',
};

/** An HCM's or a route's upgrade_configs → raw `upgrade_configs` (upgrade_type, enabled;
 *  Envoy's unset enabled is true, as Remora's). `extra`: the HCM's `filters` (a filter
 *  chain of its own for upgraded requests) or a route's `connect_config` (CONNECT
 *  termination), rejected. A type listed twice is rejected (Envoy rejects it too). */
export function upgradeConfigs(ctx: Ctx, list: readonly unknown[], loc: Loc, extra: 'filters' | 'connect_config'): Fields[] {
  const out: Fields[] = [];
  const seen = new Set<string>();
  list.forEach((v, i) => {
    const ul = sub(loc, i);
    const u = asObj(v) ?? {};
    if (isSet(u[extra])) {
      ctx.reject(sub(ul, extra), extra === 'filters'
        ? 'is not supported: upgraded requests go through the listener\'s own http_filters in Remora'
        : 'is not supported: Remora does not terminate CONNECT');
    }
    ctx.only(u, ul, ['upgrade_type', 'enabled', extra]);
    const type = asStr(u.upgrade_type) ?? '';
    const enabled = wrappedBool(u.enabled) ?? true;
    if (seen.has(type.toLowerCase())) ctx.reject(sub(ul, 'upgrade_type'), `"${type}" is listed twice`);
    seen.add(type.toLowerCase());
    const why = NO_TUNNEL[type.toLowerCase()];
    if (why !== undefined) {
      if (enabled) ctx.reject(ul, `${type} upgrades are not supported: ${why} (only enabled: false is accepted)`);
      return;
    }
    const item = new Fields().here(ul);
    item.set('upgrade_type', type, sub(ul, 'upgrade_type'));
    item.set('enabled', enabled, sub(ul, 'enabled'));
    out.push(item);
  });
  return out;
}

function commonOptions(ctx: Ctx, common: Obj, cl: Loc, out: Fields): void {
  ctx.only(common, cl, ['idle_timeout', 'max_headers_count', 'max_requests_per_connection', 'headers_with_underscores_action']);
  if (common.idle_timeout !== undefined && common.idle_timeout !== null) {
    const ms = ctx.ms(common.idle_timeout, sub(cl, 'idle_timeout'));
    // Envoy's 0 disables the idle timeout: a day stands for it.
    if (ms !== undefined) out.set('idle_timeout_ms', ms === 0 ? 86_400_000 : ms, sub(cl, 'idle_timeout'));
  }
  out.take('max_request_headers_count', wrapped(common.max_headers_count), sub(cl, 'max_headers_count'));
  out.take('max_requests_per_connection', wrapped(common.max_requests_per_connection), sub(cl, 'max_requests_per_connection'));
  const underscores = asStr(common.headers_with_underscores_action);
  if (underscores !== undefined && underscores !== 'ALLOW') {
    out.set('headers_with_underscores_action', underscores.toLowerCase(), sub(cl, 'headers_with_underscores_action'));
  }
}

/** Http1ProtocolOptions: only the values that describe what Remora's HTTP/1 codec does. */
function http1Options(ctx: Ctx, h1: Obj, loc: Loc): void {
  ctx.only(h1, loc, ['accept_http_10', 'allow_absolute_url', 'default_host_for_http_10', 'header_key_format', 'enable_trailers', 'allow_chunked_length']);
  // accept_http_10: true is what Remora does (it serves HTTP/1.0); false is unset.
  if (wrappedBool(h1.allow_absolute_url) === false) {
    ctx.reject(sub(loc, 'allow_absolute_url'), 'false is not supported: Remora accepts an absolute-form request target and routes it by its authority');
  }
  if (isSet(h1.default_host_for_http_10)) {
    ctx.reject(sub(loc, 'default_host_for_http_10'), 'is not supported: Remora gives no Host to an HTTP/1.0 request that has none');
  }
  if (h1.header_key_format !== undefined && h1.header_key_format !== null) {
    ctx.reject(sub(loc, 'header_key_format'), 'is not supported: Remora sends HTTP/1 header names in lower case');
  }
  if (h1.enable_trailers === true) ctx.reject(sub(loc, 'enable_trailers'), 'true is not supported: Remora does not pass HTTP/1 trailers on');
  if (h1.allow_chunked_length === true) {
    ctx.reject(sub(loc, 'allow_chunked_length'), 'true is not supported: Remora refuses (400) a request with both Content-Length and Transfer-Encoding: chunked');
  }
}

/** x-forwarded-for, x-request-id and the other headers Envoy adds or derives per request.
 *  Remora's are fixed: the downstream address appended to x-forwarded-for, a client's
 *  x-request-id kept (else a new UUID), no Via, no x-envoy-* headers. */
function forwarding(ctx: Ctx, hcm: Obj, tl: Loc): void {
  if (isSet(hcm.xff_num_trusted_hops)) {
    ctx.reject(sub(tl, 'xff_num_trusted_hops'), `${asNum(hcm.xff_num_trusted_hops)} is not supported: Remora takes the client's address from the connection, `
      + 'never from x-forwarded-for (0 or unset only)');
  }
  if (hcm.skip_xff_append === true) ctx.reject(sub(tl, 'skip_xff_append'), 'true is not supported: Remora always appends the downstream address to x-forwarded-for');
  if (wrappedBool(hcm.generate_request_id) === false) {
    ctx.reject(sub(tl, 'generate_request_id'), 'false is not supported: Remora gives every request without an x-request-id a new UUID');
  }
  if (wrappedBool(hcm.add_user_agent) === true) {
    ctx.reject(sub(tl, 'add_user_agent'), 'true is not supported: Remora adds no user-agent or x-envoy-downstream-service-* headers');
  }
  if (isSet(hcm.via)) ctx.reject(sub(tl, 'via'), 'is not supported: Remora adds no Via header');
  for (const k of ['strip_any_host_port', 'strip_matching_host_port']) {
    if (hcm[k] === true) ctx.reject(sub(tl, k), 'true is not supported: Remora routes by the Host header as received, port included, and sends it upstream so');
  }
  const ext = asObj(hcm.request_id_extension);
  if (ext !== undefined) {
    const el = sub(tl, 'request_id_extension');
    ctx.only(ext, el, ['typed_config']);
    const type = asStr(asObj(ext.typed_config)?.type_url);
    if (type === TypeUrl.UuidRequestId) {
      // Both fields only say how Envoy's tracing uses the ID; Remora does not trace.
      const msg = ctx.decode(ext.typed_config, sub(el, 'typed_config'))?.message;
      if (msg !== undefined) ctx.only(msg, sub(el, 'typed_config'), ['pack_trace_reason', 'use_request_id_for_trace_sampling']);
      for (const k of ['pack_trace_reason', 'use_request_id_for_trace_sampling']) if (isSet(msg?.[k])) ctx.noEffect(el, `UuidRequestIdConfig.${k}`);
    } else if (type !== undefined) {
      ctx.reject(sub(el, 'typed_config'), `${type.slice(type.lastIndexOf('/') + 1)} is not supported: Remora's request IDs are UUIDs (UuidRequestIdConfig only)`);
    }
  }
}

/** Timeouts Remora has no field for: 0 (none) where that is what Remora does; any value
 *  where the timeout only paces closing. */
function timeouts(ctx: Ctx, hcm: Obj, tl: Loc): void {
  const none = (key: string, why: string): void => {
    const ms = ctx.ms(hcm[key], sub(tl, key));
    if (ms !== undefined && ms > 0) ctx.reject(sub(tl, key), `${ms} ms is not supported: ${why} (0s or unset only)`);
  };
  none('stream_idle_timeout', 'Remora has no per-stream idle timeout; a stream waits as long as its route\'s timeouts allow');
  none('request_timeout', 'Remora has no timeout for receiving a whole request; a route\'s timeout_ms starts once it is received');
  // How long Envoy waits for a peer to close, and between drain notices and closing:
  // Remora ends a connection once its response is written, and drains per the bootstrap's
  // `drain`. Checked as Durations, not applied.
  ctx.ms(hcm.delayed_close_timeout, sub(tl, 'delayed_close_timeout'));
  ctx.ms(hcm.drain_timeout, sub(tl, 'drain_timeout'));
}

/** HTTP filters accepted as having no effect on their own (docs/xds.md says why each). */
export type InertFilter = 'cors' | 'fault' | 'grpc_stats' | 'istio.metadata_exchange' | 'istio.stats' | 'istio.alpn';

/** Istio's own filters by type URL (directly, or inside a TypedStruct): Remora has no
 *  protos for them and reads nothing from them. */
const ISTIO_FILTERS: Readonly<Record<string, InertFilter>> = {
  'type.googleapis.com/io.istio.http.peer_metadata.Config': 'istio.metadata_exchange',
  'type.googleapis.com/stats.PluginConfig': 'istio.stats',
  'type.googleapis.com/istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig': 'istio.alpn',
};
/** Older Istio releases ran the same two filters as Envoy's built-in ("null VM") Wasm
 *  plugins, named by their code; any other Wasm filter is rejected. */
const WASM = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';
const ISTIO_NULL_VM: Readonly<Record<string, InertFilter>> = {
  'envoy.wasm.metadata_exchange': 'istio.metadata_exchange',
  'envoy.wasm.stats': 'istio.stats',
};
/** HTTPFault fields that inject a fault; the others only qualify them. */
const FAULTS = ['delay', 'abort', 'response_rate_limit'];

/** Why Remora rejects an HTTP filter, for those where the reason is not obvious. */
export const REJECTED_FILTERS: Readonly<Record<string, string>> = {
  'type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb': 'Remora does not translate gRPC-Web, so its requests would reach the upstream as they came',
};

/** An HTTP filter that has no effect on its own, by its typed_config's type URL; undefined
 *  when it is not one. Their per-route configs would give them one: see ListenerPart. */
export function inertHttpFilter(ctx: Ctx, typedConfig: unknown, fl: Loc): InertFilter | undefined {
  const tl = sub(fl, 'typed_config');
  const type = asStr(asObj(typedConfig)?.type_url);
  switch (type) {
    case TypeUrl.Cors: {
      // No fields: policies live on routes and virtual hosts, where Remora rejects them.
      const msg = ctx.decode(typedConfig, tl)?.message;
      if (msg !== undefined) ctx.only(msg, tl, []);
      return 'cors';
    }
    case TypeUrl.Fault: {
      const msg = ctx.decode(typedConfig, tl)?.message ?? {};
      for (const k of FAULTS) {
        if (msg[k] !== undefined && msg[k] !== null) ctx.reject(sub(tl, k), 'is not supported: Remora injects no faults, so it would forward what this filter delays, aborts or slows');
      }
      return 'fault';
    }
    case TypeUrl.GrpcStats:
      ctx.decode(typedConfig, tl); // any settings: they choose stats and filter state only
      return 'grpc_stats';
    case TypeUrl.TypedStruct:
    case TypeUrl.UdpaTypedStruct: {
      const msg = ctx.decode(typedConfig, tl)?.message;
      const inner = asStr(msg?.type_url);
      if (inner === WASM) return istioNullVm(fromStruct(asObj(msg?.value) ?? {}));
      return inner === undefined ? undefined : ISTIO_FILTERS[inner];
    }
    default:
      return type === undefined ? undefined : ISTIO_FILTERS[type];
  }
}

/** A Wasm filter config (as a Struct) that runs one of Istio's built-in plugins (an HTTP
 *  or a network filter: the two share the shape and the plugin names). */
export function istioNullVm(wasm: Obj): InertFilter | undefined {
  const vm = asObj(asObj(wasm.config)?.vm_config);
  if (vm?.runtime !== 'envoy.wasm.runtime.null') return undefined;
  const code = asStr(asObj(asObj(vm.code)?.local)?.inline_string);
  return code === undefined ? undefined : ISTIO_NULL_VM[code];
}
