// Unit tests for access-log formats: the format-string parser (src/config/log-format.ts),
// what each operator prints for an HTTP request and a TCP connection
// (workers/access-log-operators.ts), text and JSON lines (workers/access-log-format.ts),
// strftime-style START_TIME formats, the config errors an operator typo gives, and the
// default JSON line's attempt timings and trace id (workers/access-log.ts).

import t from 'tap';
import { FILLED_OPERATORS, parseLogFormat, UNFILLED_OPERATORS } from '../../src/config/log-format.js';
import { validateConfig } from '../../src/config/validate.js';
import type { PeerIdentity } from '../../src/tls/peer-identity.js';
import type { ClusterRuntime } from '../../src/upstream/cluster.js';
import { compileAccessLogFormat, type AccessLogFormat } from '../../workers/access-log-format.js';
import type { ConnectionRecord, FormatContext } from '../../workers/access-log-operators.js';
import { compileTimeFormat, isoTime } from '../../workers/access-log-time.js';
import { AccessLogSink } from '../../workers/access-log.js';
import type { DownstreamRequest } from '../../workers/downstream.js';
import { StreamInfo } from '../../workers/stream-info.js';

const ENVOY_DEFAULT = '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% '
  + '%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
  + '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

const CTX: FormatContext = { scheme: 'http', proxyProtocol: false };
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

function requestOf(over: Partial<DownstreamRequest> = {}): DownstreamRequest {
  return {
    method: 'POST',
    path: '/v1/users',
    query: 'limit=10',
    headers: ['host', 'api.local', 'user-agent', 'curl/8.5.0', 'x-forwarded-for', '10.1.1.1', 'x-tenant', 'acme-corporation'],
    remoteAddress: '10.0.0.7',
    http2: false,
    peer: null,
    refusal: null,
    ...over,
  };
}

/** A proxied request: 200 after two attempts, with its timings. */
function proxied(over: Partial<DownstreamRequest> = {}): StreamInfo {
  const info = new StreamInfo(requestOf(over));
  info.requestId = 'req-1';
  info.status = 200;
  info.upstreamStatus = 200;
  info.attempts = 2;
  info.noteAttempt(3_400);
  info.noteAttempt(12_987);
  info.bytesIn = 11;
  info.bytesOut = 512;
  info.durationUs = 17_834;
  info.upstreamUs = 13_000;
  info.routeName = 'users';
  info.cluster = { name: 'backend' } as ClusterRuntime;
  info.upstreamHost = '10.0.0.11:3000';
  return info;
}

/** A request answered locally (no route): nothing upstream. */
function local(): StreamInfo {
  const info = new StreamInfo(requestOf({ headers: [], query: '', method: 'GET', path: '/' }));
  info.status = 404;
  info.flag = 'NR';
  return info;
}

const CONNECTION: ConnectionRecord = {
  client: '192.0.2.4', chain: 'tls-api', serverName: 'api.example.com', cluster: 'redis', upstream: '10.0.0.12:6379',
  attempts: 1, flags: '-', bytesIn: 120, bytesOut: 4096, durationUs: 2_500_000, termination: 'downstream',
};

function compiled(config: { format?: string; json_format?: Record<string, string> }, ctx = CTX): AccessLogFormat {
  const f = compileAccessLogFormat(config, ctx);
  if (f === null) throw new Error('no format');
  return f;
}
const text = (format: string, info: StreamInfo, ctx = CTX): string => compiled({ format }, ctx).http(info);
const tcpText = (format: string, c: ConnectionRecord = CONNECTION, ctx = CTX): string => compiled({ format }, ctx).tcp(c);
const json = (fields: Record<string, string>, info: StreamInfo): unknown => JSON.parse(compiled({ json_format: fields }).http(info));

// ---------------------------------------------------------------------------
// Parsing

t.test('a format string parses into literal text and operators', async (t) => {
  t.strictSame(parseLogFormat('a %REQ(X-A?X-B):8% 100%% %DURATION%'), {
    parts: [
      { kind: 'text', text: 'a ' },
      { kind: 'operator', name: 'REQ', arg: 'X-A?X-B', maxLength: 8 },
      { kind: 'text', text: ' 100% ' },
      { kind: 'operator', name: 'DURATION', arg: null, maxLength: 0 },
    ],
  });
  t.strictSame(parseLogFormat('%START_TIME(%Y/%m/%d %s)%'), { parts: [{ kind: 'operator', name: 'START_TIME', arg: '%Y/%m/%d %s', maxLength: 0 }] },
    'a START_TIME format may hold "%"');
  t.strictSame(parseLogFormat('%%'), { parts: [{ kind: 'text', text: '%' }] });
  t.ok('parts' in parseLogFormat(ENVOY_DEFAULT), "Envoy's default format is accepted as it is");
});

t.test('a format that does not parse says where and why', async (t) => {
  const problem = (s: string): string | undefined => {
    const r = parseLogFormat(s);
    return 'problem' in r ? r.problem : undefined;
  };
  t.equal(problem('%RESPONSE_CODES%'), 'unknown operator %RESPONSE_CODES% at position 0', 'a typo is named');
  t.equal(problem('x %REQ(:METHOD)% %BYTES_RECIEVED%'), 'unknown operator %BYTES_RECIEVED% at position 17');
  t.equal(problem('100% done'), '"%" at position 3 does not start an operator such as %START_TIME% (write %% for a literal percent sign)');
  t.equal(problem('%DURATION'), '%DURATION at position 0 is not closed by "%"');
  t.equal(problem('%REQ(USER-AGENT%'), '%REQ( at position 0 has no closing ")"');
  t.equal(problem('%REQ(USER-AGENT):0%'), '%REQ…:0 at position 0: the length after ":" must be an integer 1..1000000');
  t.equal(problem('%REQ%'), '%REQ% at position 0: needs an argument, e.g. %REQ(USER-AGENT)%');
  t.equal(problem('%DURATION(ms)%'), '%DURATION% at position 0: takes no argument in parentheses');
  t.equal(problem('%REQ(A?B?C)%'), '%REQ% at position 0: "A?B?C": at most one alternative header ("NAME?ALTERNATIVE")');
  t.equal(problem('%REQ(A B)%'), '%REQ% at position 0: "A B" is not a header name (or "NAME?ALTERNATIVE")');
  t.equal(problem('%GRPC_STATUS(NAME)%'), '%GRPC_STATUS% at position 0: "NAME" is not one of CAMEL_STRING, SNAKE_STRING, NUMBER');
  t.equal(problem('%start_time%'), '"%" at position 0 does not start an operator such as %START_TIME% (write %% for a literal percent sign)',
    'operator names are upper-case');
});

// ---------------------------------------------------------------------------
// Text lines

t.test("Envoy's default format prints Envoy's line, '-' where Remora has nothing", async (t) => {
  const line = text(ENVOY_DEFAULT, proxied());
  const m = /^\[(.+?)\] (.*)\n$/.exec(line);
  t.ok(m, line);
  t.match(m?.[1], ISO, 'START_TIME: ISO 8601 with milliseconds');
  t.equal(m?.[2], '"POST /v1/users?limit=10 HTTP/1.1" 200 - 11 512 17 - "10.1.1.1" "curl/8.5.0" "req-1" "api.local" "10.0.0.11:3000"');
  t.equal(text(ENVOY_DEFAULT, local()).replace(/^\[[^\]]+\]/, '[T]'), '[T] "GET / HTTP/1.1" 404 NR 0 0 0 - "-" "-" "-" "-" "-"\n',
    'a local reply: nothing upstream, no headers');
});

t.test('each operator on an HTTP request', async (t) => {
  const peer: PeerIdentity = { id: 'spiffe://cluster.local/ns/shop/sa/web', xfcc: '' };
  const info = proxied({ peer, http2: true, headers: ['host', 'api.local', 'traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'] });
  info.grpcStatus = 14;
  info.flag = 'UF';
  info.retryExhausted = true;
  const cases: [string, string][] = [
    ['%REQ(:METHOD)%', 'POST'],
    ['%REQ(:PATH)%', '/v1/users?limit=10'],
    ['%REQ_WITHOUT_QUERY(:PATH)%', '/v1/users'],
    ['%REQ(:AUTHORITY)%', 'api.local'],
    ['%REQ(HOST)%', 'api.local'],
    ['%REQ(:SCHEME)%', 'http'],
    ['%REQ(:PROTOCOL)%', '-'],
    ['%REQ(X-REQUEST-ID)%', 'req-1'],
    ['%PROTOCOL%', 'HTTP/2'],
    ['%RESPONSE_CODE%', '200'],
    ['%RESPONSE_FLAGS%', 'UF,URX'],
    ['%RESPONSE_CODE_DETAILS%', 'via_upstream'],
    ['%BYTES_RECEIVED%', '11'],
    ['%BYTES_SENT%', '512'],
    ['%DURATION%', '17'],
    ['%REQUEST_DURATION% %RESPONSE_DURATION% %RESPONSE_TX_DURATION%', '- - -'],
    ['%UPSTREAM_HOST%', '10.0.0.11:3000'],
    ['%UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%:%UPSTREAM_REMOTE_PORT%', '10.0.0.11:3000'],
    ['%UPSTREAM_CLUSTER% %UPSTREAM_CLUSTER_RAW%', 'backend backend'],
    ['%UPSTREAM_REQUEST_ATTEMPT_COUNT%', '2'],
    ['%UPSTREAM_ATTEMPT_DURATIONS%', '3,12'],
    ['%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_DIRECT_REMOTE_ADDRESS%', '10.0.0.7 10.0.0.7 10.0.0.7'],
    ['%DOWNSTREAM_PEER_URI_SAN%', 'spiffe://cluster.local/ns/shop/sa/web'],
    ['%ROUTE_NAME%', 'users'],
    ['%GRPC_STATUS%', 'Unavailable'],
    ['%GRPC_STATUS(SNAKE_STRING)%', 'UNAVAILABLE'],
    ['%GRPC_STATUS(NUMBER)% %GRPC_STATUS_NUMBER%', '14 14'],
    ['%TRACE_ID%', '4bf92f3577b34da6a3ce929d0e0e4736'],
    ['%REQUEST_ID% %STREAM_ID%', 'req-1 req-1'],
    ['%REQUESTED_SERVER_NAME% %FILTER_CHAIN_NAME% %CONNECTION_TERMINATION_DETAILS%', '- - -'],
    ['%RESP(CONTENT-TYPE)% %TRAILER(GRPC-MESSAGE)%', '- -'],
    ['%DYNAMIC_METADATA(istio.mixer:status)% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS%', '- - -'],
    ['%ENVIRONMENT(REMORA_TEST_ACCESS_LOG_ENV)% %ENVIRONMENT(REMORA_TEST_UNSET_ENV)%', 'from-env -'],
    ['%%%RESPONSE_CODE%%%', '%200%'],
  ];
  process.env.REMORA_TEST_ACCESS_LOG_ENV = 'from-env';
  delete process.env.REMORA_TEST_UNSET_ENV;
  for (const [format, want] of cases) t.equal(text(format, info), `${want}\n`, format);
  t.match(text('%START_TIME%', info), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\n$/, '%START_TIME%');
  t.match(text('%HOSTNAME%', info), /^[^\s-][^\s]*\n$/, '%HOSTNAME%');
  t.equal(text('%REQ(:SCHEME)%', info, { scheme: 'https', proxyProtocol: false }), 'https\n', ':SCHEME on a TLS listener');
  t.equal(text('%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%', info, { scheme: 'http', proxyProtocol: true }), '-\n',
    'behind the PROXY protocol the socket peer is not known');
  t.equal(text('%DOWNSTREAM_PEER_URI_SAN%', proxied({ peer: { id: 'client.example.com', xfcc: '' } })), '-\n', 'a DNS SAN identity is not a URI SAN');

  const bare = local();
  const unknown: [string, string][] = [
    ['%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %UPSTREAM_ATTEMPT_DURATIONS% %UPSTREAM_REMOTE_PORT%', '- - - -'],
    ['%ROUTE_NAME% %GRPC_STATUS% %TRACE_ID% %REQUEST_ID% %RESPONSE_CODE_DETAILS%', '- - - - -'],
    ['%UPSTREAM_REQUEST_ATTEMPT_COUNT% %RESPONSE_CODE%', '0 404'],
  ];
  for (const [format, want] of unknown) t.equal(text(format, bare), `${want}\n`, `${format} (nothing upstream)`);
});

t.test('TRACE_ID: the trace tracing put the request in first, then the traceparent Remora made, then the request\'s', async (t) => {
  const headers = ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'x-b3-traceid', '80f198ee56343ba864fe8b2a57d3eff7'];
  const info = proxied({ headers });
  t.equal(text('%TRACE_ID%', info), '4bf92f3577b34da6a3ce929d0e0e4736\n');
  info.generatedTraceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  t.equal(text('%TRACE_ID%', info), '0af7651916cd43dd8448eb211c80319c\n');
  info.traceId = '11111111111111111111111111111111';
  t.equal(text('%TRACE_ID%', info), '11111111111111111111111111111111\n');
  t.equal(text('%TRACE_ID%', proxied({ headers: headers.slice(2) })), '80f198ee56343ba864fe8b2a57d3eff7\n', 'B3');
});

t.test('REQ: the alternative when the first header is missing, and MAXLEN', async (t) => {
  const info = proxied();
  t.equal(text('%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%', info), '/v1/users?limit=10\n');
  t.equal(text('%REQ(X-TENANT?:PATH)%', info), 'acme-corporation\n', 'the first wins when present');
  t.equal(text('%REQ(x-tenant)%', info), 'acme-corporation\n', 'names are case-insensitive');
  t.equal(text('%REQ(X-TENANT):4%', info), 'acme\n');
  t.equal(text('%REQ(X-MISSING?X-ALSO-MISSING):4%', info), '-\n');
  t.equal(text('%REQ(X-ENVOY-ORIGINAL-PATH?:PATH):9%', info), '/v1/users\n');
  t.equal(text('%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%', info), '/v1/users\n');
  t.equal(text('%UPSTREAM_CLUSTER:3%', info), 'bac\n', 'MAXLEN on any operator');
  t.equal(text('%RESPONSE_CODE:1%', info), '200\n', 'numbers are not cut');
});

t.test('a line ends with one newline', async (t) => {
  const info = proxied();
  t.equal(text('%RESPONSE_CODE%', info), '200\n', 'added');
  t.equal(text('%RESPONSE_CODE%\n', info), '200\n', 'not doubled');
  t.equal(text('static', info), 'static\n', 'a format without operators');
});

t.test('START_TIME formats', async (t) => {
  const at = Date.UTC(2026, 2, 2, 10, 15, 4, 123);
  t.equal(isoTime(at), '2026-03-02T10:15:04.123Z');
  t.equal(compileTimeFormat('%Y/%m/%d %H:%M:%S.%3f %z')(at), '2026/03/02 10:15:04.123 +0000');
  t.equal(compileTimeFormat('%s')(at), String(Math.floor(at / 1000)));
  t.equal(compileTimeFormat('%F %T %Z 100%%')(at), '2026-03-02 10:15:04 UTC 100%');
  t.equal(compileTimeFormat('%f|%1f|%6f')(at), '123000000|1|123000');
  t.equal(compileTimeFormat('%A, %d %B')(at), '2026-03-02T10:15:04.123Z', 'a conversion Remora lacks: ISO 8601');
  for (const day of [Date.UTC(2024, 1, 29), Date.UTC(2000, 11, 31, 23, 59, 59), Date.UTC(1970, 0, 1), Date.UTC(2100, 2, 1)]) {
    t.equal(compileTimeFormat('%FT%T')(day), new Date(day).toISOString().slice(0, 19), new Date(day).toISOString());
  }
  const info = proxied();
  info.durationUs = 0;
  const before = Math.floor(Date.now() / 1000);
  const s = Number(text('%START_TIME(%s)%', info));
  t.ok(s >= before && s <= before + 1, 'the request\'s start, as epoch seconds');
});

// ---------------------------------------------------------------------------
// JSON lines

t.test('json_format: one operator keeps its type, the rest are strings', async (t) => {
  const fields = {
    status: '%RESPONSE_CODE%',
    duration_ms: '%DURATION%',
    bytes: '%BYTES_SENT%',
    attempts: '%UPSTREAM_REQUEST_ATTEMPT_COUNT%',
    grpc: '%GRPC_STATUS_NUMBER%',
    method: '%REQ(:METHOD)%',
    service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
    line: '%REQ(:METHOD)% %REQ(:PATH)% -> %RESPONSE_CODE% %GRPC_STATUS%',
    kind: 'proxy',
    percent: '100%%',
    'quote"key': '"%REQ(USER-AGENT)%"',
  };
  const line = compiled({ json_format: fields }).http(proxied());
  t.ok(line.endsWith('}\n'), 'one line');
  t.strictSame(JSON.parse(line), {
    status: 200, duration_ms: 17, bytes: 512, attempts: 2, grpc: null, method: 'POST', service_time: null,
    line: 'POST /v1/users?limit=10 -> 200 -', kind: 'proxy', percent: '100%', 'quote"key': '"curl/8.5.0"',
  });
  t.same(Object.keys(JSON.parse(line) as object), Object.keys(fields), 'keys in the order given');
  t.strictSame(json({ path: '%REQ(:PATH)%' }, proxied({ query: '', path: '/a"b\\c' })), { path: '/a"b\\c' }, 'strings are escaped');
  t.equal(compiled({ json_format: {} }).http(proxied()), '{}\n');
  t.strictSame(JSON.parse(compiled({ json_format: { s: '%RESPONSE_FLAGS%', c: '%UPSTREAM_CLUSTER%', n: '%BYTES_RECEIVED%' } }).tcp(CONNECTION)),
    { s: '-', c: 'redis', n: 120 }, 'a TCP connection');
});

// ---------------------------------------------------------------------------
// TCP proxy connections

t.test('each operator on a TCP proxy connection', async (t) => {
  const cases: [string, string][] = [
    ['%BYTES_RECEIVED% %BYTES_SENT% %DURATION%', '120 4096 2500'],
    ['%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %UPSTREAM_REQUEST_ATTEMPT_COUNT%', '10.0.0.12:6379 redis 1'],
    ['%UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %UPSTREAM_REMOTE_PORT%', '10.0.0.12 6379'],
    ['%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%', '192.0.2.4 192.0.2.4'],
    ['%REQUESTED_SERVER_NAME% %FILTER_CHAIN_NAME% %CONNECTION_TERMINATION_DETAILS%', 'api.example.com tls-api downstream'],
    ['%RESPONSE_CODE% %RESPONSE_FLAGS%', '0 -'],
    ['%REQ(:METHOD)% %PROTOCOL% %ROUTE_NAME% %TRACE_ID% %UPSTREAM_ATTEMPT_DURATIONS% %GRPC_STATUS%', '- - - - - -'],
  ];
  for (const [format, want] of cases) t.equal(tcpText(format), `${want}\n`, format);
  t.equal(tcpText('%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %FILTER_CHAIN_NAME%', { ...CONNECTION, upstream: '', cluster: '', chain: '' }), '- - -\n');
  t.equal(tcpText('%UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%', { ...CONNECTION, upstream: '[fd00::1]:6379' }), 'fd00::1\n', 'IPv6');
  t.equal(tcpText('%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%', CONNECTION, { scheme: 'http', proxyProtocol: true }), '-\n');
  t.match(tcpText(ENVOY_DEFAULT), /^\[\S+\] "- - -" 0 - 120 4096 2500 - "-" "-" "-" "-" "10\.0\.0\.12:6379"\n$/, "Envoy's default format");
});

t.test('every operator Remora fills prints something for some record; the others print -', async (t) => {
  const info = proxied({ peer: { id: 'spiffe://a/b', xfcc: '' } });
  info.grpcStatus = 0;
  info.flag = 'UF';
  info.traceId = '11111111111111111111111111111111';
  const arg = (name: string): string => ({ REQ: '(:METHOD)', REQ_WITHOUT_QUERY: '(:PATH)', ENVIRONMENT: '(PATH)' } as Record<string, string>)[name] ?? '';
  for (const name of FILLED_OPERATORS) {
    const format = `%${name}${arg(name)}%`;
    t.not(text(format, info) === '-\n' && tcpText(format) === '-\n', true, `${format} is filled`);
  }
  // Those that need an argument get one.
  const bare = (name: string): string => ('problem' in parseLogFormat(`%${name}%`) ? `%${name}(X)%` : `%${name}%`);
  for (const name of UNFILLED_OPERATORS) {
    const format = bare(name);
    t.equal(`${text(format, info)}${tcpText(format)}`, '-\n-\n', `${format} prints -`);
  }
});

// ---------------------------------------------------------------------------
// The sink: the default line, and a configured format

/** A sink writing into an array. */
function sinkOf(format: AccessLogFormat | null): { sink: AccessLogSink; lines: string[] } {
  const lines: string[] = [];
  const dest = { write: (l: string) => lines.push(l), report: (err: unknown) => { throw err; } };
  return { sink: new AccessLogSink(dest as never, 1, 'in', 0, format), lines };
}

t.test('the default line: attempt_us after attempts, trace_id from tracing first', async (t) => {
  const { sink, lines } = sinkOf(null);
  const info = proxied({ headers: ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'] });
  sink.write(info);
  info.traceId = '0af7651916cd43dd8448eb211c80319c';
  sink.write(info);
  sink.write(local());
  const [first, traced, bare] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.strictSame(first.attempt_us, [3400, 12987]);
  const keys = Object.keys(first);
  t.equal(keys[keys.indexOf('attempts') + 1], 'attempt_us', 'right after "attempts"');
  t.equal(first.trace_id, '4bf92f3577b34da6a3ce929d0e0e4736', 'from the traceparent');
  t.equal(traced.trace_id, '0af7651916cd43dd8448eb211c80319c', 'the traced request\'s trace id wins');
  t.equal(bare.attempt_us, null, 'null when no attempt was made');
  t.equal(bare.trace_id, null);
});

t.test('a sink with a format writes its lines, for requests and TCP connections', async (t) => {
  const { sink, lines } = sinkOf(compiled({ format: '%RESPONSE_CODE% %UPSTREAM_CLUSTER% %BYTES_SENT%' }));
  sink.write(proxied());
  sink.writeConnection(CONNECTION);
  t.strictSame(lines, ['200 backend 512\n', '0 redis 4096\n']);
  t.equal(compileAccessLogFormat({}, CTX), null, 'neither format: Remora\'s JSON line');
});

// ---------------------------------------------------------------------------
// Config validation

t.test('config: a format that does not parse is an error at its path; format and json_format exclude each other', async (t) => {
  const config = (accessLog: Record<string, unknown>) => ({
    listeners: [{ name: 'in', port: 0, access_log: { path: 'stdout', ...accessLog }, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c' } }] }] }],
    clusters: [{ name: 'c', endpoints: [{ address: '127.0.0.1', port: 9000 }] }],
  });
  const errors = (accessLog: Record<string, unknown>) => {
    const r = validateConfig(config(accessLog));
    return r.ok ? [] : r.errors;
  };
  const ok = validateConfig(config({ format: ENVOY_DEFAULT }));
  t.ok(ok.ok, "Envoy's default format validates");
  if (ok.ok) t.strictSame(ok.config.listeners[0].access_log, { path: 'stdout', sample_ratio: 1, format: ENVOY_DEFAULT });
  t.same(errors({ format: '%START_TIME% %RESPONSE_CODES%' }), [{ path: 'listeners[0].access_log.format', message: 'unknown operator %RESPONSE_CODES% at position 13' }]);
  t.same(errors({ format: '' }), [{ path: 'listeners[0].access_log.format', message: 'must not be empty' }]);
  t.same(errors({ json_format: { status: '%RESPONSE_CODE%', method: '%REQ(:METHDO%', n: 5 } }), [
    { path: 'listeners[0].access_log.json_format.method', message: '%REQ( at position 0 has no closing ")"' },
    { path: 'listeners[0].access_log.json_format.n', message: 'must be a string (a format string)' },
  ]);
  t.same(errors({ format: '%DURATION%', json_format: { d: '%DURATION%' } }), [
    { path: 'listeners[0].access_log', message: 'must set at most one of "format" (a text line) and "json_format" (a JSON object), not both' },
  ]);
});
