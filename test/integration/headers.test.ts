// Header handling through the real proxy: hop-by-hop removal both ways, X-Forwarded-*,
// x-request-id, tracing headers, bodiless responses (HEAD, 204, 304) on a reused socket,
// the upstream service time header and per-route header edits.
import http from 'node:http';
import t from 'tap';
import { request, routesConfig, startRemora, startUpstream } from '../helpers/remora.js';
import { RawConn, startRawUpstream } from '../helpers/raw-http.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What the echo upstream saw: raw header pairs, names lower-cased. */
interface Echo {
  method: string;
  url: string;
  headers: [string, string][];
}

function values(echo: Echo, name: string): string[] {
  return echo.headers.filter(([n]) => n === name).map(([, v]) => v);
}

// The echo upstream answers every request with the headers it received, as JSON.
// /slow/* requests are held (never answered) and their x-request-id recorded.
let heldRequestId = '';
const echo = await startUpstream((req, res) => {
  req.resume();
  req.on('end', () => {
    const url = req.url ?? '';
    if (url.startsWith('/slow')) {
      heldRequestId = String(req.headers['x-request-id'] ?? '');
      return; // never answers
    }
    if (url === '/status/204') {
      res.writeHead(204, { 'x-status': '204' });
      return res.end();
    }
    if (url.startsWith('/sized')) {
      // Same length for GET and HEAD, so HEAD's Content-Length can be compared.
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 1234 });
      return res.end('x'.repeat(1234));
    }
    if (url === '/status/304') {
      res.writeHead(304, { etag: '"v1"', 'x-status': '304' });
      return res.end();
    }
    const pairs: [string, string][] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) pairs.push([req.rawHeaders[i].toLowerCase(), req.rawHeaders[i + 1]]);
    const body = JSON.stringify({ method: req.method ?? '', url, headers: pairs } satisfies Echo);
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      server: 'upstream-server',
      'x-internal': 'secret',
      'x-public': 'yes',
    });
    res.end(body); // node drops the body itself for HEAD
  });
});

// A raw upstream that answers with connection-level headers a proxy must drop.
const raw = await startRawUpstream((socket) => {
  socket.write(
    'HTTP/1.1 200 OK\r\n' +
      'Content-Length: 2\r\n' +
      'Keep-Alive: timeout=5, max=100\r\n' +
      'Connection: X-Bar\r\n' +
      'X-Bar: 1\r\n' +
      'Proxy-Authenticate: Basic realm="up"\r\n' +
      'Proxy-Connection: keep-alive\r\n' +
      'Upgrade: h2c\r\n' +
      'Trailer: x-t\r\n' +
      'X-Keep: yes\r\n' +
      'X-Utf8: a \xc3\xa9 \xe2\x82\xac b\r\n' + // "a é € b" as UTF-8 bytes
      '\r\n' +
      'ok',
    'latin1',
  );
});

const remora = await startRemora(
  routesConfig(
    [
      {
        name: 'edits',
        match: { prefix: '/edits' },
        route: { cluster: 'echo' },
        request_headers_to_add: [{ name: 'x-added', value: 'by-remora' }],
        request_headers_to_remove: ['x-secret'],
        response_headers_to_add: [{ name: 'x-served-by', value: 'remora' }],
        response_headers_to_remove: ['server', 'x-internal'],
      },
      { name: 'slow', match: { prefix: '/slow' }, route: { cluster: 'echo', timeout_ms: 300 } },
      { name: 'raw', match: { prefix: '/raw' }, route: { cluster: 'raw' } },
      { name: 'echo', match: { prefix: '/' }, route: { cluster: 'echo' } },
    ],
    [
      { name: 'echo', connect_timeout_ms: 500, endpoints: [{ address: '127.0.0.1', port: echo.port }] },
      { name: 'raw', connect_timeout_ms: 500, endpoints: [{ address: '127.0.0.1', port: raw.port }] },
    ],
  ),
);
const port = remora.ports.main;

t.teardown(async () => {
  await remora.stop();
  await echo.close();
  await raw.close();
});

const noAgent = new http.Agent({ keepAlive: false });
t.teardown(() => noAgent.destroy());

async function echoed(path: string, headers: Record<string, string> = {}): Promise<Echo> {
  const reply = await request(port, { path, headers });
  if (reply.status !== 200) throw new Error(`expected 200 from the echo upstream, got ${reply.status}: ${reply.text}`);
  return JSON.parse(reply.text) as Echo;
}

t.test('hop-by-hop request headers are not forwarded', async (t) => {
  const conn = await RawConn.open(port);
  t.teardown(() => conn.destroy());
  conn.write(
    'GET /hop HTTP/1.1\r\n' +
      'Host: example.test\r\n' +
      'Connection: keep-alive, X-Foo\r\n' +
      'X-Foo: 1\r\n' +
      'Keep-Alive: timeout=5\r\n' +
      'TE: trailers\r\n' +
      'Trailer: x-t\r\n' +
      'Upgrade: h2c\r\n' +
      'Proxy-Authorization: Basic Zm9vOmJhcg==\r\n' +
      'Proxy-Connection: keep-alive\r\n' +
      'X-Keep: yes\r\n' +
      '\r\n',
  );
  const res = await conn.readResponse();
  t.equal(res.status, 200, 'expected 200 from the echo upstream');
  const seen = JSON.parse(res.body.toString()) as Echo;
  const names = seen.headers.map(([n]) => n);
  for (const name of ['connection', 'x-foo', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-connection']) {
    t.notOk(names.includes(name), `expected no ${name} header upstream; upstream saw ${names.join(', ')}`);
  }
  t.same(values(seen, 'x-keep'), ['yes'], 'expected an end-to-end header (x-keep) to be forwarded once');
  t.same(values(seen, 'host'), ['example.test'], 'expected the Host header forwarded unchanged');
});

t.test('hop-by-hop response headers do not reach the client', async (t) => {
  const conn = await RawConn.open(port);
  t.teardown(() => conn.destroy());
  conn.write('GET /raw HTTP/1.1\r\nHost: example.test\r\n\r\n');
  const res = await conn.readResponse();
  t.equal(res.status, 200, 'expected the upstream 200');
  t.equal(res.body.toString(), 'ok', 'expected the upstream body');
  const names = res.headerList.map(([n]) => n);
  for (const name of ['x-bar', 'proxy-authenticate', 'proxy-connection', 'upgrade', 'trailer']) {
    t.notOk(names.includes(name), `expected no ${name} header downstream; got head ${JSON.stringify(res.head)}`);
  }
  // Remora announces its own idle timeout (60 s by default); the upstream's never passes.
  const keepAlive = res.headerList.filter(([n]) => n === 'keep-alive').map(([, v]) => v);
  t.same(keepAlive, ['timeout=60'], `expected only Remora's own keep-alive header downstream; got head ${JSON.stringify(res.head)}`);
  const connection = res.headerList.filter(([n]) => n === 'connection').map(([, v]) => v.toLowerCase());
  t.notOk(connection.some((v) => v.includes('x-bar')), `expected no Connection header naming x-bar; got ${JSON.stringify(connection)}`);
  t.equal(res.headers['x-keep'], 'yes', 'expected an end-to-end response header (x-keep) to pass');
});

t.test('non-ASCII bytes in header values pass unchanged both ways; in the target they are refused', async (t) => {
  const utf8 = Buffer.from('é a € b ü', 'utf8');
  const conn = await RawConn.open(port);
  t.teardown(() => conn.destroy());
  const heads = raw.heads.length;
  conn.write(
    Buffer.concat([
      Buffer.from('GET /raw/cafe HTTP/1.1\r\nHost: example.test\r\nX-Name: ', 'latin1'),
      utf8,
      Buffer.from('\r\nX-Latin1: \xe9t\xe9\r\n\r\n', 'latin1'),
    ]),
  );
  const res = await conn.readResponse();
  t.equal(res.status, 200, 'expected 200 for a request with non-ASCII bytes in header values');
  const head = Buffer.from(raw.heads[heads] ?? '', 'latin1');
  t.ok(head.includes(Buffer.concat([Buffer.from('x-name: '), utf8, Buffer.from('\r\n')])), `expected the UTF-8 value bytes unchanged upstream; got ${JSON.stringify(head.toString('latin1'))}`);
  t.ok(head.includes(Buffer.from('x-latin1: \xe9t\xe9\r\n', 'latin1')), `expected invalid UTF-8 value bytes unchanged upstream (never rewritten); got ${JSON.stringify(head.toString('latin1'))}`);
  t.equal(Buffer.from(res.headers['x-utf8'] ?? '', 'latin1').toString('hex'), Buffer.from('a é € b', 'utf8').toString('hex'), 'expected the response header value bytes unchanged downstream');

  // RFC 9112 §3.2: the request target is ASCII; raw UTF-8 in it is refused, not rewritten.
  const bad = await RawConn.open(port);
  t.teardown(() => bad.destroy());
  const before = raw.heads.length;
  bad.write(Buffer.from('GET /raw/caf\xc3\xa9 HTTP/1.1\r\nHost: example.test\r\n\r\n', 'latin1'));
  const refused = await bad.readResponse();
  t.equal(refused.status, 400, 'expected 400 for raw non-ASCII bytes in the target');
  t.equal(raw.heads.length, before, 'expected nothing forwarded upstream for a non-ASCII target');
});

t.test('X-Forwarded-For / -Proto / -Host', async (t) => {
  const plain = await echoed('/xff', { host: 'front.example:8443' });
  t.same(values(plain, 'x-forwarded-for'), ['127.0.0.1'], 'expected X-Forwarded-For: 127.0.0.1 when the client sent none');
  t.same(values(plain, 'x-forwarded-proto'), ['http'], 'expected X-Forwarded-Proto: http');
  t.same(values(plain, 'x-forwarded-host'), ['front.example:8443'], 'expected X-Forwarded-Host to be the original Host');

  const chained = await echoed('/xff', { 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https' });
  t.same(values(chained, 'x-forwarded-for'), ['1.2.3.4, 127.0.0.1'], 'expected the client address appended to X-Forwarded-For');
  t.same(values(chained, 'x-forwarded-proto'), ['http'], 'expected a client-sent X-Forwarded-Proto replaced by the one real value');
});

t.test('x-request-id', async (t) => {
  const a = await echoed('/rid');
  const b = await echoed('/rid');
  const idA = values(a, 'x-request-id');
  t.equal(idA.length, 1, `expected exactly one generated x-request-id upstream, got ${JSON.stringify(idA)}`);
  t.match(idA[0], UUID, 'expected the generated x-request-id to be a UUID');
  t.not(values(b, 'x-request-id')[0], idA[0], 'expected a different x-request-id for another request');

  const kept = await echoed('/rid', { 'x-request-id': 'client-chosen-42' });
  t.same(values(kept, 'x-request-id'), ['client-chosen-42'], 'expected a client x-request-id forwarded unchanged, once');

  // The id the proxy generated is the one the upstream saw: a timed-out request's
  // local 504 carries it back.
  heldRequestId = '';
  const timedOut = await request(port, { path: '/slow/rid', agent: noAgent });
  t.equal(timedOut.status, 504, 'expected 504 from the 300 ms route timeout');
  t.match(String(timedOut.headers['x-request-id']), UUID, 'expected the 504 to carry the generated x-request-id');
  t.equal(timedOut.headers['x-request-id'], heldRequestId, 'expected the id in the 504 to equal the one the upstream received');
});

t.test('tracing headers pass unchanged', async (t) => {
  const trace: Record<string, string> = {
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    tracestate: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE',
    'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7',
    'x-b3-spanid': 'e457b5a2e4d86bd1',
    'x-b3-sampled': '1',
    b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90',
  };
  const seen = await echoed('/trace', trace);
  for (const [name, value] of Object.entries(trace)) {
    t.same(values(seen, name), [value], `expected ${name} forwarded once and unchanged`);
  }
});

t.test('HEAD has no body and the connection stays usable', async (t) => {
  const get = await request(port, { path: '/sized' });
  t.equal(get.headers['content-length'], '1234', 'expected the GET to carry the upstream length');
  const conn = await RawConn.open(port);
  t.teardown(() => conn.destroy());
  conn.write('HEAD /sized HTTP/1.1\r\nHost: example.test\r\n\r\n');
  const head = await conn.readResponse({ noBody: true });
  t.equal(head.status, 200, 'expected 200 for HEAD');
  t.notOk(head.headers['transfer-encoding'], 'expected no Transfer-Encoding on a HEAD response');
  t.equal(head.headers['content-length'], get.headers['content-length'], 'expected HEAD to announce the length a GET gets');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(conn.buffered.length, 0, `expected no bytes after the HEAD response head, got ${JSON.stringify(conn.buffered.toString('latin1'))}`);
  conn.write('GET /after-head HTTP/1.1\r\nHost: example.test\r\n\r\n');
  const next = await conn.readResponse();
  t.equal(next.status, 200, 'expected the next request on the same socket to get 200');
  t.equal((JSON.parse(next.body.toString()) as Echo).url, '/after-head', 'expected the next response to be for the next request');
});

t.test('pipelined HEAD then GET: never a mixed-up response', async (t) => {
  // Limitation of this uWS build: a request arriving while an asynchronous response is
  // still pending aborts the connection (uWS does not queue pipelined requests). So the
  // client gets either both responses in order or a closed connection, never the GET's
  // bytes read as part of the HEAD response.
  const conn = await RawConn.open(port);
  t.teardown(() => conn.destroy());
  conn.write('HEAD /sized/p1 HTTP/1.1\r\nHost: example.test\r\n\r\nGET /p2 HTTP/1.1\r\nHost: example.test\r\n\r\n');
  const p1 = await conn.readResponse({ noBody: true }).catch(() => null);
  if (p1 === null) {
    t.ok(await conn.waitClosed(2000), 'expected the connection closed when the pipelined pair is not answered');
    t.equal(conn.buffered.length, 0, 'expected no partial response before the close');
    t.comment('uWS limitation: pipelined requests with asynchronous responses close the connection');
  } else {
    t.equal(p1.status, 200, 'expected 200 for the pipelined HEAD');
    const p2 = await conn.readResponse();
    t.equal(p2.status, 200, 'expected 200 for the GET pipelined after HEAD');
    t.equal((JSON.parse(p2.body.toString()) as Echo).url, '/p2', 'expected the pipelined GET answered with its own body');
  }
  const after = await request(port, { path: '/after-pipeline', agent: noAgent });
  t.equal(after.status, 200, 'expected the proxy to serve a fresh connection after the pipelined pair');
});

for (const status of [204, 304]) {
  t.test(`${status} has no body and the connection stays usable`, async (t) => {
    const conn = await RawConn.open(port);
    t.teardown(() => conn.destroy());
    conn.write(`GET /status/${status} HTTP/1.1\r\nHost: example.test\r\n\r\n`);
    const res = await conn.readResponse();
    t.equal(res.status, status, `expected ${status}`);
    t.equal(res.headers['x-status'], String(status), 'expected the upstream headers');
    t.notOk(res.headers['transfer-encoding'], `expected no Transfer-Encoding on ${status}; head ${JSON.stringify(res.head)}`);
    if (status === 204) {
      t.notOk(res.headers['content-length'], `expected no Content-Length on 204; head ${JSON.stringify(res.head)}`);
    }
    await new Promise((r) => setTimeout(r, 300));
    t.equal(conn.buffered.length, 0, `expected no bytes after the ${status} head, got ${JSON.stringify(conn.buffered.toString('latin1'))}`);
    conn.write('GET /after HTTP/1.1\r\nHost: example.test\r\n\r\n');
    const next = await conn.readResponse();
    t.equal(next.status, 200, `expected the request after a ${status} on the same socket to get 200`);
    t.equal((JSON.parse(next.body.toString()) as Echo).url, '/after', 'expected the next response to be for the next request');
  });
}

t.test('x-remora-upstream-service-time on proxied responses', async (t) => {
  const res = await request(port, { path: '/svc' });
  t.equal(res.status, 200, 'expected 200');
  t.match(String(res.headers['x-remora-upstream-service-time']), /^\d+$/, 'expected x-remora-upstream-service-time as whole milliseconds');
});

t.test('route header edits', async (t) => {
  const edited = await request(port, { path: '/edits', headers: { 'x-secret': 's3cret', 'x-keep': 'k' } });
  t.equal(edited.status, 200, 'expected 200');
  const seen = JSON.parse(edited.text) as Echo;
  t.same(values(seen, 'x-added'), ['by-remora'], 'expected request_headers_to_add to add x-added');
  t.same(values(seen, 'x-secret'), [], 'expected request_headers_to_remove to drop x-secret');
  t.same(values(seen, 'x-keep'), ['k'], 'expected other request headers kept');
  t.equal(edited.headers['x-served-by'], 'remora', 'expected response_headers_to_add to add x-served-by');
  t.equal(edited.headers.server, undefined, 'expected response_headers_to_remove to drop server');
  t.equal(edited.headers['x-internal'], undefined, 'expected response_headers_to_remove to drop x-internal');
  t.equal(edited.headers['x-public'], 'yes', 'expected other response headers kept');

  // Control: the same upstream through a route without edits.
  const plain = await request(port, { path: '/plain', headers: { 'x-secret': 's3cret' } });
  const plainSeen = JSON.parse(plain.text) as Echo;
  t.same(values(plainSeen, 'x-secret'), ['s3cret'], 'expected x-secret forwarded on a route without edits');
  t.same(values(plainSeen, 'x-added'), [], 'expected no x-added on a route without edits');
  t.equal(plain.headers.server, 'remora', 'expected server_name in place of the upstream server header (server_header_transformation overwrite, the default)');
  t.equal(plain.headers['x-internal'], 'secret', 'expected x-internal on a route without edits');
  t.equal(plain.headers['x-served-by'], undefined, 'expected no x-served-by on a route without edits');
});

t.test('headers_with_underscores_action: reject_request (HTTP/1.1 and HTTP/2) and drop_header', async (t) => {
  const { default: http2 } = await import('node:http2');
  const listener = (name: string, action: string) => ({
    name, address: '127.0.0.1', port: 0, codec_type: 'auto', headers_with_underscores_action: action,
    virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'echo' } }] }],
  });
  const proxy = await startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [listener('strict', 'reject_request'), listener('dropping', 'drop_header')],
    clusters: [{ name: 'echo', endpoints: [{ address: '127.0.0.1', port: echo.port }] }],
  });
  t.teardown(() => proxy.stop());

  const refused = await request(proxy.ports.strict, { path: '/u', headers: { x_user: 'mallory', 'x-user': 'alice' }, agent: false });
  t.same([refused.status, refused.headers['x-remora-flags'], refused.headers.connection], [400, 'DPE', 'close'], 'reject_request over HTTP/1.1: 400, flag DPE, connection closed');
  const passed = await request(proxy.ports.strict, { path: '/u', headers: { 'x-user': 'alice' }, agent: false });
  t.equal(passed.status, 200, 'without an underscore the request is forwarded');

  const session = http2.connect(`http://127.0.0.1:${proxy.ports.strict}`);
  t.teardown(() => session.close());
  const h2status = await new Promise<number>((resolve, reject) => {
    const stream = session.request({ ':path': '/u', x_user: 'mallory' });
    stream.on('response', (h) => resolve(Number(h[':status'])));
    stream.on('error', reject);
    stream.resume();
  });
  t.equal(h2status, 400, 'reject_request over HTTP/2: the stream gets 400');

  const dropped = await request(proxy.ports.dropping, { path: '/d', headers: { x_user: 'mallory', 'x-user': 'alice', my_other: 'v' }, agent: false });
  t.equal(dropped.status, 200, 'drop_header: forwarded');
  const seen = JSON.parse(dropped.text) as Echo;
  t.same(values(seen, 'x_user'), [], 'without the header named with an underscore');
  t.same(values(seen, 'my_other'), [], 'nor any other');
  t.same(values(seen, 'x-user'), ['alice'], 'the dashed one passes');
});
