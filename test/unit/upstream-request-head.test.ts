// Unit tests for the upstream request head (src/http/upstream-request-head.ts): hop-by-hop
// and Connection-listed headers, control headers, Host and rewrites, x-forwarded-*,
// x-request-id, traceparent, XFCC modes, header edits and body framing.

import t from 'tap';
import type { PeerIdentity } from '../../src/tls/peer-identity.js';
import { buildUpstreamRequestHead, forwardedClientCert, startsTrace, withAttemptCount, withHost } from '../../src/http/upstream-request-head.js';
import { compileRegexRewrite, type CompiledRegexRewrite } from '../../src/router/regex-rewrite.js';

const route = {
  prefixRewrite: null as string | null,
  regexRewrite: null as CompiledRegexRewrite | null,
  pathValue: '/',
  hostRewrite: null as string | null,
  requestHeadersToRemove: null as ReadonlySet<string> | null,
  requestHeadersToAdd: [] as string[],
};
const listener = { scheme: 'http' as const, xfcc: 'sanitize' as const };

function build(headers: string[], over: Partial<typeof route> = {}, facts: Partial<{ host: string; contentLength: number; connection: string | null; framing: 'none' | 'fixed' | 'chunked' }> = {}) {
  const req = { method: 'GET', path: '/api/x', query: 'q=1', headers, remoteAddress: '10.1.1.1', peer: null };
  return buildUpstreamRequestHead(req, { host: 'svc', contentLength: -1, connection: null, framing: 'none', ...facts }, { ...route, ...over }, listener, 'rid-1', null);
}

t.test('request line, host, forwarded headers, request id', async (t) => {
  const head = build(['host', 'svc', 'accept', '*/*']);
  t.equal(
    head,
    'GET /api/x?q=1 HTTP/1.1\r\nhost: svc\r\naccept: */*\r\nx-forwarded-for: 10.1.1.1\r\nx-forwarded-proto: http\r\nx-forwarded-host: svc\r\nx-request-id: rid-1\r\n\r\n',
  );
});

t.test('drops hop-by-hop, Connection-listed, control and removed headers', async (t) => {
  const head = build(
    ['host', 'svc', 'connection', 'x-secret', 'x-secret', '1', 'keep-alive', 'x', 'proxy-authorization', 'p', 'x-remora-retry-on', '5xx', 'x-envoy-max-retries', '2', 'x-drop', '1', 'x-keep', '2'],
    { requestHeadersToRemove: new Set(['x-drop']) },
    { connection: 'x-secret' },
  );
  for (const gone of ['connection', 'x-secret', 'keep-alive', 'proxy-authorization', 'x-remora-retry-on', 'x-envoy-max-retries', 'x-drop']) {
    t.notMatch(head, new RegExp(`\r\n${gone}:`), `${gone} dropped`);
  }
  t.match(head, /\r\nx-keep: 2\r\n/);
});

t.test('rewrites, appended x-forwarded-for, a client request id kept, adds and framing', async (t) => {
  const head = build(['host', 'svc', 'x-forwarded-for', '1.2.3.4', 'x-request-id', 'mine'], {
    prefixRewrite: '/v2/',
    pathValue: '/api/',
    hostRewrite: 'backend',
    requestHeadersToAdd: ['x-added', 'v'],
  }, { contentLength: 3, framing: 'fixed' });
  t.match(head, /^GET \/v2\/x\?q=1 HTTP\/1\.1\r\nhost: backend\r\n/);
  t.match(head, /x-forwarded-for: 1\.2\.3\.4, 10\.1\.1\.1\r\n/);
  t.match(head, /x-request-id: mine\r\n/);
  t.notMatch(head, /rid-1/);
  t.match(head, /x-added: v\r\ncontent-length: 3\r\n\r\n$/);
  t.match(build(['host', 'svc'], {}, { framing: 'chunked' }), /transfer-encoding: chunked\r\n\r\n$/);
  const regex = compileRegexRewrite({ pattern: '^/api/(\\w+)$', substitution: '/svc/\\1/index' });
  t.match(build(['host', 'svc'], { regexRewrite: regex }), /^GET \/svc\/x\/index\?q=1 HTTP\/1\.1\r\n/, 'regex_rewrite: the path rewritten, the query kept');
});

t.test('traceparent: started only when asked, absent, and not removed', async (t) => {
  t.ok(startsTrace(true, null, ['host', 'a']));
  t.notOk(startsTrace(false, null, ['host', 'a']));
  t.notOk(startsTrace(true, null, ['traceparent', 'x']));
  t.notOk(startsTrace(true, new Set(['traceparent']), []));
  const req = { method: 'GET', path: '/', query: '', headers: [], remoteAddress: 'c', peer: null };
  const head = buildUpstreamRequestHead(req, { host: 'h', contentLength: -1, connection: null, framing: 'none' }, route, listener, 'r', '00-abc-def-01');
  t.match(head, /traceparent: 00-abc-def-01\r\n/);
});

t.test('attempt count goes before the blank line', async (t) => {
  t.equal(withAttemptCount('GET / HTTP/1.1\r\nhost: a\r\n\r\n', 3), 'GET / HTTP/1.1\r\nhost: a\r\nx-remora-attempt-count: 3\r\n\r\n');
});

t.test('x-forwarded-client-cert modes', async (t) => {
  const peer = { id: 'spiffe://a', xfcc: 'URI=spiffe://a' } as PeerIdentity;
  t.equal(forwardedClientCert('sanitize', 'c', peer), '');
  t.equal(forwardedClientCert('always_forward_only', 'c', null), 'c');
  t.equal(forwardedClientCert('forward_only', 'c', null), '');
  t.equal(forwardedClientCert('forward_only', 'c', peer), 'c');
  t.equal(forwardedClientCert('sanitize_set', 'c', peer), 'URI=spiffe://a');
  t.equal(forwardedClientCert('append_forward', 'c', peer), 'c,URI=spiffe://a');
  t.equal(forwardedClientCert('append_forward', '', peer), 'URI=spiffe://a');
  t.equal(forwardedClientCert('append_forward', 'c', null), '');
});

t.test('withHost: the Host line replaced, everything else as built', async (t) => {
  const head = build(['host', 'svc', 'accept', '*/*']);
  const shadow = withHost(head, 'svc-shadow');
  t.equal(shadow, head.replace('\r\nhost: svc\r\n', '\r\nhost: svc-shadow\r\n'), 'only the host line differs');
  t.match(shadow, /\r\nx-forwarded-host: svc\r\n/, 'x-forwarded-host keeps the client\'s');
});
