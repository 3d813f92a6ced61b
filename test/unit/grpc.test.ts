// Unit tests for gRPC as the proxy sees it (src/http/grpc.ts): recognising gRPC requests,
// grpc-timeout parsing, the status of gRPC-shaped local replies, grpc-message encoding;
// the gRPC and refused-stream retry conditions (src/upstream/retry-policy.ts); and the
// HTTP/1.1 head → HTTP/2 headers translation towards HTTP/2 upstreams.

import t from 'tap';
import type { RetryPolicy } from '../../src/config/types.js';
import { ResponseFlag } from '../../src/core/flags.js';
import { grpcLocalReplyHeaders, grpcMessage, grpcStatusFor, grpcStatusOf, grpcTimeoutMs, isGrpcContentType } from '../../src/http/grpc.js';
import { healthCheckRequestFrame, servingStatus } from '../../src/main/grpc-health-probe.js';
import { requestHeaders } from '../../src/upstream/http2-connection.js';
import { AttemptFailure, CompiledRetryPolicy } from '../../src/upstream/retry-policy.js';
import { RetryState } from '../../src/upstream/retry-state.js';

t.test('gRPC content types', async (t) => {
  for (const ct of ['application/grpc', 'application/grpc+proto', 'application/grpc+json', 'application/grpc;charset=utf-8']) {
    t.ok(isGrpcContentType(ct), `${ct} is gRPC`);
  }
  for (const ct of ['application/grpcx', 'application/grpc-web', 'application/json', '']) {
    t.notOk(isGrpcContentType(ct), `${JSON.stringify(ct)} is not gRPC`);
  }
});

t.test('grpc-timeout in milliseconds, rounded up; malformed values are null', async (t) => {
  const cases: [string, number | null][] = [
    ['1H', 3_600_000], ['2M', 120_000], ['3S', 3000], ['250m', 250], ['1500u', 2], ['1u', 1],
    ['999999n', 1], ['0m', 0], ['12345678S', 12_345_678_000],
    ['123456789S', null], ['10', null], ['10s', null], ['-1S', null], ['1.5S', null], ['', null],
  ];
  for (const [value, ms] of cases) t.equal(grpcTimeoutMs(value), ms, `grpc-timeout ${JSON.stringify(value)} → ${ms}`);
});

t.test('local reply status → grpc-status (Envoy\'s mapping; a timeout is a deadline)', async (t) => {
  t.equal(grpcStatusFor(504, ResponseFlag.UpstreamRequestTimeout), 4);
  t.equal(grpcStatusFor(503, ResponseFlag.NoHealthyUpstream), 14);
  t.equal(grpcStatusFor(503, ResponseFlag.UpstreamConnectFailure), 14);
  t.equal(grpcStatusFor(429, ResponseFlag.RateLimited), 14);
  t.equal(grpcStatusFor(404, ResponseFlag.NoRoute), 12);
  t.equal(grpcStatusFor(403, ResponseFlag.AuthorizationDenied), 7);
  t.equal(grpcStatusFor(401, '-'), 16);
  t.equal(grpcStatusFor(400, ResponseFlag.DownstreamProtocolError), 13);
  t.equal(grpcStatusFor(413, ResponseFlag.DownstreamProtocolError), 2);
  const h = grpcLocalReplyHeaders(503, ResponseFlag.UpstreamConnectFailure, 'upstream connect error: 100% down', 'UF', 'id-1', ['retry-after', '1'], ['x-added', 'y']);
  t.same(h, [
    'content-type', 'application/grpc', 'grpc-status', '14', 'grpc-message', 'upstream connect error: 100%25 down',
    'x-remora-flags', 'UF', 'x-request-id', 'id-1', 'retry-after', '1', 'x-added', 'y',
  ]);
  t.equal(grpcStatusOf(h), 14);
  t.equal(grpcStatusOf(['grpc-status', 'x']), -1, 'a non-numeric grpc-status is none');
  t.equal(grpcStatusOf([]), -1);
});

t.test('grpc-message percent-encodes non-printable bytes and %', async (t) => {
  t.equal(grpcMessage('plain text'), 'plain text');
  t.equal(grpcMessage('50%'), '50%25');
  t.equal(grpcMessage('line\nbreak'), 'line%0Abreak');
  t.equal(grpcMessage('café'), 'caf%C3%A9');
});

function policy(retryOn: RetryPolicy['retry_on']): CompiledRetryPolicy {
  return new CompiledRetryPolicy({
    retry_on: retryOn, num_retries: 1, per_try_timeout_ms: 0, retriable_status_codes: [], base_interval_ms: 25,
    max_interval_ms: 250, allow_request_headers: false, retry_non_idempotent_on_reset: false, buffer_limit_bytes: 65536,
  });
}

t.test('gRPC retry conditions read grpc-status from the response headers', async (t) => {
  const names = { cancelled: 1, 'deadline-exceeded': 4, 'resource-exhausted': 8, internal: 13, unavailable: 14 } as const;
  for (const [name, code] of Object.entries(names)) {
    const state = new RetryState(policy([name as keyof typeof names]), false);
    t.ok(state.retriesGrpc(['content-type', 'application/grpc', 'grpc-status', String(code)]), `${name} retries grpc-status ${code}`);
    for (const other of Object.values(names)) {
      if (other !== code) t.notOk(state.retriesGrpc(['grpc-status', String(other)]), `${name} does not retry grpc-status ${other}`);
    }
    t.notOk(state.retriesGrpc(['content-type', 'application/grpc']), `${name}: no grpc-status, no retry`);
  }
  t.notOk(new RetryState(policy(['5xx', 'reset']), false).retriesGrpc(['grpc-status', '14']), 'HTTP conditions ignore grpc-status');
  t.notOk(new RetryState(null, false).retriesGrpc(['grpc-status', '14']), 'no policy, no retry');
});

t.test('refused streams: retried under refused-stream for any method, else resent once', async (t) => {
  t.ok(policy(['refused-stream']).retriesFailure(AttemptFailure.RefusedStream, 'POST'), 'refused-stream retries a POST');
  t.notOk(policy(['reset', '5xx']).retriesFailure(AttemptFailure.RefusedStream, 'GET'), 'only refused-stream covers it');
  const plain = new RetryState(null, true);
  plain.retain(Buffer.from('body'));
  t.notOk(plain.mayResendRefused(true, false), 'not while the body is still arriving');
  t.ok(plain.mayResendRefused(true, true), 'a POST with its whole body kept is resent');
  t.notOk(plain.mayResendRefused(true, true), 'once only');
  t.notOk(new RetryState(policy(['refused-stream']), false).mayResendRefused(false, true), 'a refused-stream policy decides instead');
});

t.test('an HTTP/1.1 request head as HTTP/2 request headers', async (t) => {
  const head = 'POST /pkg.Svc/Call?x=1 HTTP/1.1\r\nhost: api.local:8080\r\ncontent-type: application/grpc\r\n' +
    'x-md: a\r\nx-md: b\r\ntransfer-encoding: chunked\r\nconnection: close\r\nkeep-alive: 5\r\nupgrade: h2c\r\n' +
    'te: trailers\r\ngrpc-timeout: 100m\r\n\r\n';
  const h = requestHeaders(head);
  t.same({ ...h }, {
    ':method': 'POST',
    ':path': '/pkg.Svc/Call?x=1',
    ':authority': 'api.local:8080',
    'content-type': 'application/grpc',
    'x-md': ['a', 'b'],
    'grpc-timeout': '100m',
    te: 'trailers',
  });
  const plain = requestHeaders('GET / HTTP/1.1\r\nhost: h\r\nte: trailers\r\n\r\n');
  t.equal(plain.te, undefined, 'te is kept for gRPC requests only');
});

t.test('gRPC health check messages', async (t) => {
  t.same([...healthCheckRequestFrame('')], [0, 0, 0, 0, 0], 'the whole server: an empty message');
  t.same([...healthCheckRequestFrame('a.B')], [0, 0, 0, 0, 5, 0x0a, 3, 0x61, 0x2e, 0x42], 'service "a.B"');
  const frame = (msg: number[]) => Buffer.from([0, 0, 0, 0, msg.length, ...msg]);
  t.equal(servingStatus(frame([0x08, 1])), 1, 'SERVING');
  t.equal(servingStatus(frame([0x08, 2])), 2, 'NOT_SERVING');
  t.equal(servingStatus(frame([])), 0, 'an empty message is UNKNOWN');
  t.equal(servingStatus(frame([0x12, 1, 0x41, 0x08, 1])), 1, 'an unknown length-delimited field is skipped');
  t.equal(servingStatus(Buffer.from([1, 0, 0, 0, 2, 0x08, 1])), -1, 'a compressed message is not read');
  t.equal(servingStatus(Buffer.from([0, 0, 0, 0, 9, 0x08])), -1, 'a short frame is not read');
});
