// The access_log of an HttpConnectionManager or a TcpProxy → the listener's `access_log`
// (one per listener): a file or stdout logger (FileAccessLog, StdoutAccessLog: `path` and
// the format), an HTTP gRPC access log service (HttpGrpcAccessLogConfig: `grpc`), or one
// of each. A second logger of the same kind, a filter, a TCP gRPC logger and a
// google_grpc service are rejected by path; docs/xds.md has the table.

import { TypeUrl } from './protos.js';
import { asArr, asObj, asStr, isSet, wrapped, type Obj } from './read.js';
import { sub, type Ctx, type Loc } from './translate-context.js';
import { Fields, type Part } from './translate-fields.js';

/** The format fields of Envoy's file and stdout access loggers (`format`, `json_format`
 *  and `typed_json_format` are FileAccessLog's deprecated forms of `log_format`). */
const LOG_FORMATS = ['log_format', 'format', 'json_format', 'typed_json_format'];

/** HttpGrpcAccessLogConfig fields that choose what more to log: accepted, no effect
 *  (Remora's entries carry the fixed set in docs/operations.md). */
const GRPC_NO_EFFECT = ['additional_request_headers_to_log', 'additional_response_headers_to_log', 'additional_response_trailers_to_log'];
/** CommonGrpcAccessLogConfig fields accepted without effect. */
const COMMON_NO_EFFECT = ['filter_state_objects_to_log', 'grpc_stream_retry_policy', 'custom_tags'];

/** An HCM's (`http`) or a TcpProxy's access_log → the listener's `access_log`; undefined
 *  when it has none. */
export function accessLogOf(ctx: Ctx, owner: Obj, tl: Loc, http: boolean): Part | undefined {
  const logs = asArr(owner.access_log);
  if (logs.length === 0) return undefined;
  const out = new Fields().here(sub(tl, 'access_log'));
  let file = false;
  let grpc = false;
  logs.forEach((v, i) => {
    const al = sub(tl, `access_log[${i}]`);
    const log = asObj(v) ?? {};
    ctx.only(log, al, ['name', 'typed_config', 'filter']);
    if (log.filter !== undefined && log.filter !== null) {
      ctx.reject(sub(al, 'filter'), 'is not supported: Remora logs every request (errors always, others per sample_ratio) and selects none by filter');
    }
    const cl = sub(al, 'typed_config');
    const type = asStr(asObj(log.typed_config)?.type_url);
    if (type === TypeUrl.HttpGrpcAccessLog && http) {
      if (grpc) return ctx.reject(al, 'a second gRPC access log is not supported: Remora streams to one service per listener');
      grpc = true;
      const msg = ctx.decode(log.typed_config, cl)?.message;
      if (msg !== undefined) grpcLog(ctx, msg, cl, tl, out.nest('grpc'));
      return;
    }
    if (type !== TypeUrl.FileAccessLog && type !== TypeUrl.StdoutAccessLog) {
      const what = http
        ? 'to a file or stdout (FileAccessLog, StdoutAccessLog) or to a gRPC access log service (HttpGrpcAccessLogConfig)'
        : 'of TCP connections to a file or stdout (FileAccessLog, StdoutAccessLog)';
      return ctx.reject(cl, `${type ?? '(none)'} is not supported: Remora writes its access log ${what}`);
    }
    const msg = ctx.decode(log.typed_config, cl)?.message;
    if (msg === undefined) return;
    const isFile = type === TypeUrl.FileAccessLog;
    ctx.only(msg, cl, isFile ? ['path', ...LOG_FORMATS] : LOG_FORMATS);
    if (file) return ctx.reject(al, 'a second file or stdout access log is not supported: Remora writes one per listener');
    file = true;
    const path = isFile ? asStr(msg.path) ?? '' : 'stdout';
    out.set('path', path === '/dev/stdout' ? 'stdout' : path, isFile ? sub(cl, 'path') : cl);
    logFormat(ctx, msg, cl, out);
  });
  return file || grpc ? out : undefined;
}

/** HttpGrpcAccessLogConfig → `grpc`: the log name, the service's cluster (envoy_grpc),
 *  and the buffering (buffer_size_bytes, buffer_flush_interval), which Remora's workers
 *  apply as Envoy's do. */
function grpcLog(ctx: Ctx, msg: Obj, cl: Loc, tl: Loc, out: Fields): void {
  out.here(cl);
  ctx.only(msg, cl, ['common_config', ...GRPC_NO_EFFECT]);
  for (const k of GRPC_NO_EFFECT) if (isSet(msg[k])) ctx.noEffect(tl, `HttpGrpcAccessLogConfig.${k}`);
  const common = asObj(msg.common_config);
  const ccl = sub(cl, 'common_config');
  if (common === undefined) return ctx.reject(ccl, 'is required (the log name and the service)');
  ctx.only(common, ccl, ['log_name', 'grpc_service', 'transport_api_version', 'buffer_flush_interval', 'buffer_size_bytes', ...COMMON_NO_EFFECT]);
  for (const k of COMMON_NO_EFFECT) if (isSet(common[k])) ctx.noEffect(tl, `HttpGrpcAccessLogConfig.common_config.${k}`);
  const api = common.transport_api_version;
  if (isSet(api) && api !== 'V3' && api !== 'AUTO') ctx.reject(sub(ccl, 'transport_api_version'), `${String(api)} is not supported: Remora speaks envoy.service.accesslog.v3 (V3)`);
  out.set('log_name', asStr(common.log_name) ?? '', sub(ccl, 'log_name'));
  const flush = common.buffer_flush_interval !== undefined ? ctx.ms(common.buffer_flush_interval, sub(ccl, 'buffer_flush_interval')) : undefined;
  if (flush !== undefined) out.set('flush_interval_ms', Math.max(10, flush), sub(ccl, 'buffer_flush_interval'));
  out.take('buffer_size_bytes', wrapped(common.buffer_size_bytes), sub(ccl, 'buffer_size_bytes'));
  const service = asObj(common.grpc_service);
  const gl = sub(ccl, 'grpc_service');
  if (service === undefined) return ctx.reject(gl, 'is required (envoy_grpc.cluster_name: the access log service\'s cluster)');
  if (isSet(service.google_grpc)) {
    return ctx.reject(sub(gl, 'google_grpc'), 'is not supported: name the access log service by its cluster (envoy_grpc.cluster_name)');
  }
  ctx.only(service, gl, ['envoy_grpc', 'timeout', 'initial_metadata', 'retry_policy']);
  // A stream has no deadline; Remora sends no extra metadata and retries on its own backoff.
  for (const k of ['timeout', 'initial_metadata', 'retry_policy']) if (isSet(service[k])) ctx.noEffect(tl, `HttpGrpcAccessLogConfig.common_config.grpc_service.${k}`);
  const envoyGrpc = asObj(service.envoy_grpc);
  const el = sub(gl, 'envoy_grpc');
  if (envoyGrpc === undefined) return ctx.reject(el, 'is required (cluster_name: the access log service\'s cluster)');
  ctx.only(envoyGrpc, el, ['cluster_name', 'authority', 'retry_policy', 'max_receive_message_length', 'skip_envoy_headers']);
  for (const k of ['authority', 'retry_policy', 'max_receive_message_length', 'skip_envoy_headers']) if (isSet(envoyGrpc[k])) ctx.noEffect(tl, `HttpGrpcAccessLogConfig.common_config.grpc_service.envoy_grpc.${k}`);
  out.set('cluster', asStr(envoyGrpc.cluster_name) ?? '', sub(el, 'cluster_name'));
}

/** A logger's format (SubstitutionFormatString) → `format` (text_format, or
 *  text_format_source's inline string) or `json_format` (a Struct of format strings).
 *  Operators are checked by validateConfig, by name: `formatters` (extensions that add
 *  operators) are accepted, and an operator none of them gives Remora is an error. */
function logFormat(ctx: Ctx, msg: Obj, cl: Loc, out: Fields): void {
  const text = (v: unknown, loc: Loc): void => out.take('format', asStr(v), loc);
  const json = (v: unknown, loc: Loc): void => {
    const fields = out.nest('json_format').here(loc);
    for (const [k, x] of Object.entries(asObj(asObj(v)?.fields) ?? {})) {
      const s = asStr(asObj(x)?.stringValue);
      if (s === undefined) ctx.reject(sub(loc, k), 'is not supported: Remora\'s json_format values are format strings (not a nested object, number or boolean)');
      else fields.set(k, s, sub(loc, k));
    }
  };
  if (isSet(msg.format)) text(msg.format, sub(cl, 'format'));
  if (isSet(msg.json_format)) json(msg.json_format, sub(cl, 'json_format'));
  if (isSet(msg.typed_json_format)) json(msg.typed_json_format, sub(cl, 'typed_json_format'));
  const lf = asObj(msg.log_format);
  if (lf === undefined) return;
  const ll = sub(cl, 'log_format');
  // content_type is for local replies; json_format_options only sorts keys.
  ctx.only(lf, ll, ['text_format', 'json_format', 'text_format_source', 'omit_empty_values', 'content_type', 'formatters', 'json_format_options']);
  for (const k of ['content_type', 'formatters', 'json_format_options']) if (isSet(lf[k])) ctx.noEffect(ll, `SubstitutionFormatString.${k}`);
  if (lf.omit_empty_values === true) {
    ctx.reject(sub(ll, 'omit_empty_values'), 'is not supported: Remora prints "-" (text) or null (JSON) for a value it does not have');
  }
  if (isSet(lf.text_format)) text(lf.text_format, sub(ll, 'text_format'));
  if (isSet(lf.json_format)) json(lf.json_format, sub(ll, 'json_format'));
  const source = asObj(lf.text_format_source);
  if (source === undefined) return;
  const sl = sub(ll, 'text_format_source');
  for (const k of ['filename', 'environment_variable']) {
    if (isSet(source[k])) ctx.reject(sub(sl, k), 'is not supported: Remora takes the format inline (inline_string or inline_bytes)');
  }
  if (isSet(source.inline_string)) text(source.inline_string, sub(sl, 'inline_string'));
  if (source.inline_bytes instanceof Uint8Array) text(Buffer.from(source.inline_bytes).toString('utf8'), sub(sl, 'inline_bytes'));
}

