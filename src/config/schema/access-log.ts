// A listener's `access_log`: where its records go — a file or stdout (a line per request,
// Remora's JSON or a format), a gRPC access log service (Envoy's HTTPAccessLogEntry,
// streamed by the main thread), or both — and what share of requests is logged.

import * as v from 'valibot';
import { logFormatProblem } from '../log-format.js';
import { field, int, ms, num, obj, str } from './fields.js';

function accessLogPathProblem(file: string): string | undefined {
  if (file === '') return 'must not be empty (use "stdout" or a file path)';
  if (file.includes('\0')) return 'must not contain NUL characters';
  if (file.endsWith('/')) return 'must name a file, not a directory';
  return undefined;
}

export const AccessLogGrpcSchema = obj({
  cluster: str('The cluster whose endpoints serve `envoy.service.accesslog.v3.AccessLogService` (HTTP/2; TLS when the cluster has `tls`). The main thread holds one `StreamAccessLogs` stream per cluster and `log_name`, to the first endpoint that answers.',
    { type: 'cluster name', check: (s: string) => (s === '' ? 'must not be empty' : undefined) }),
  log_name: str('Sent in the first message of each stream (`identifier.log_name`, with the node); the service tells logs apart by it.',
    { check: (s: string) => (s === '' ? 'must not be empty' : undefined) }),
  buffer_size_bytes: v.optional(int(0, 1_048_576, 'A worker hands its entries to the main thread once they take this many bytes (Envoy\'s `buffer_size_bytes`), or at the next flush.',
    { unit: 'bytes', scope: 'bytes, per worker and log' }), 16_384),
  flush_interval_ms: v.optional(ms(10, 'A worker hands what it holds to the main thread at least this often (Envoy\'s `buffer_flush_interval`).',
    { scope: 'ms, per worker' }), 1000),
}, 'A gRPC access log service (Envoy\'s `HttpGrpcAccessLogConfig`): one `HTTPAccessLogEntry` per logged HTTP request, batched by each worker and streamed by the main thread. See [operations.md](operations.md#grpc-access-log-service).');

export const AccessLogSchema = obj({
  path: v.optional(str('Where the lines go. A relative path is relative to Remora\'s working directory; missing directories are created. Every worker appends to the file itself (whole lines, `O_APPEND`); listeners naming the same path share it.',
    { type: '`"stdout"` or a file path', default: 'unset (no lines; `grpc` must be set)', scope: 'per worker', check: accessLogPathProblem })),
  grpc: v.optional(field(AccessLogGrpcSchema, 'Also (or instead of `path`) send each logged request to a gRPC access log service. HTTP listeners only.',
    { default: 'unset', scope: 'this listener' })),
  sample_ratio: v.optional(num(0, 1, 'Share of requests logged, drawn at random per request (one draw for `path` and `grpc` alike). Error responses are logged whatever it is: status ≥ 500, or any response flag other than `-` and `DR` (so `404 NR`, `503 UF`, `504 UT`, `DC` are always there), and so is a request that took more than one upstream attempt. `0` logs errors (and retried requests) only.',
    { scope: 'per request' }), 1),
  format: v.optional(str('A text line in Envoy\'s format-string language (`text_format`): literal text and operators such as `%START_TIME%`, `%REQ(:METHOD)%`, `%RESPONSE_CODE%`; Envoy\'s default format is accepted as it is. A line ends with a newline (added when the format has none). An unknown operator is an error; Envoy operators Remora keeps nothing for print `-` ([operations.md](operations.md#formats)). Needs `path`.',
    { type: 'format string', default: 'unset (Remora\'s JSON line)', scope: 'per line', check: logFormatProblem })),
  json_format: v.optional(field(v.pipe(v.record(v.string(), v.pipe(v.string('must be a string (a format string)'), v.metadata({ check: logFormatProblem }))), v.readonly()),
    'One JSON object per line, its keys in the order given (Envoy\'s `json_format`). Each value is a format string: a value that is exactly one operator keeps its type (`%RESPONSE_CODE%`, `%DURATION%`, `%BYTES_SENT%`… are numbers; an operator with nothing to print is `null`); any other value is a string. Not together with `format`. Needs `path`.',
    { type: 'map of format strings', default: 'unset (Remora\'s JSON line)', scope: 'per line' })),
}, 'Per-listener access log: one record per request (a share of them, errors always) and per TCP proxy connection, as a line in a file or on stdout (`path`), to a gRPC access log service (`grpc`), or both; at least one of the two. Remora\'s JSON line unless `format` or `json_format` says otherwise.');
