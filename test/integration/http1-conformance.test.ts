// The strict HTTP/1 front end against RFC 9110/9112's requirements and the listener
// settings built with it, through a real Remora (2 workers) with raw-socket clients and
// upstreams that record what reached them: HTTP/1.0, Expect, trailers, timeouts,
// connection limits, headers Remora adds, port ownership, and the response side (what
// an upstream may send back).
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import t from 'tap';
import { RawConn, startRawUpstream, until } from '../helpers/raw-http.js';
import { startRecordingUpstream, type RecordedRequest } from '../helpers/recording-upstream.js';
import { admin, BIN, rawExchange, startRemora, UWS_AVAILABLE as UWS, waitUntil } from '../helpers/remora.js';

/** What the recording upstream answers: per path, for the tests below. */
function respond(req: RecordedRequest, res: import('node:http').ServerResponse): void {
  if (req.url === '/chunked') {
    res.writeHead(200, { 'content-type': 'text/plain' }); // no length: Node frames it chunked for 1.1
    res.write('chunk-');
    res.end('ed');
    return;
  }
  if (req.url === '/server') {
    res.setHeader('server', 'app/1.0');
    res.setHeader('date', 'Tue, 01 Dec 2026 00:00:00 GMT');
    res.end('ok');
    return;
  }
  if (req.url === '/nodate') res.sendDate = false;
  res.end('ok');
}

const upstream = await startRecordingUpstream(respond);
t.teardown(() => upstream.close());

const route = (name: string, prefix: string, extra: Record<string, unknown> = {}) => ({ name, match: { prefix }, route: { cluster: 'up' }, ...extra });
const listener = (name: string, extra: Record<string, unknown> = {}, routes: unknown[] = [route('all', '/')]) => ({
  name,
  address: '127.0.0.1',
  port: 0,
  virtual_hosts: [{ name: 'all', domains: ['*'], routes }],
  ...extra,
});
const config = {
  workers: 2,
  admin: { address: '127.0.0.1', port: 0 },
  listeners: [
    listener('main', {}, [
      route('stripped', '/stripped', { response_headers_to_remove: ['date', 'x-remora-upstream-service-time', 'server'] }),
      route('all', '/'),
    ]),
    listener('timeouts', { request_headers_timeout_ms: 300, idle_timeout_ms: 400 }),
    listener('limited', { max_connections: 2, max_requests_per_connection: 2, max_request_headers_count: 5 }),
    listener('paths', { merge_slashes: true, path_with_escaped_slashes_action: 'unescape_and_redirect' }),
    listener('rejecting', { path_with_escaped_slashes_action: 'reject_request', server_name: 'edge', server_header_transformation: 'append_if_absent' }),
    listener('passing', { normalize_path: false, server_header_transformation: 'pass_through' }),
    ...(UWS ? [listener('uws', { codec: 'uws' })] : []),
  ],
  clusters: [{ name: 'up', connect_timeout_ms: 500, endpoints: [{ address: '127.0.0.1', port: upstream.port }] }],
};
const remora = await startRemora(config);
t.teardown(() => remora.stop());
const port = (name: string): number => remora.ports[name];

t.test('HTTP/1.0: served, keep-alive only when asked, never chunked', async (t) => {
  const plain = await rawExchange(port('main'), 'GET /ten HTTP/1.0\r\n\r\n');
  t.match(plain.text, /^HTTP\/1\.1 200 /, `expected 200 for HTTP/1.0; got ${JSON.stringify(plain.text)}`);
  t.ok(plain.closed, 'expected the connection closed after a 1.0 response without keep-alive');

  const conn = await RawConn.open(port('main'));
  t.teardown(() => conn.destroy());
  conn.write('GET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  const res = await conn.readResponse();
  t.equal(res.status, 200, 'expected 200');
  t.equal(res.headers['transfer-encoding'], undefined, `expected no chunked framing to a 1.0 client; got ${JSON.stringify(res.head)}`);
  t.equal(res.body.toString(), 'chunk-ed', 'expected the whole body');
});

t.test('Expect: 100-continue is answered by the proxy and not forwarded', async (t) => {
  upstream.clear();
  const conn = await RawConn.open(port('main'));
  t.teardown(() => conn.destroy());
  conn.write('POST /expect HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
  const interim = await conn.readResponse();
  t.equal(interim.status, 100, 'expected 100 Continue before the body is sent');
  conn.write('hello');
  const res = await conn.readResponse();
  t.equal(res.status, 200, 'expected the final 200');
  const req = upstream.requests.find((r) => r.url === '/expect');
  t.equal(req?.body, 'hello', 'expected the body upstream');
  t.notOk(req?.headers.some((h) => h.toLowerCase() === 'expect'), `expected no Expect header upstream; saw ${JSON.stringify(req?.headers)}`);

  const other = await rawExchange(port('main'), 'POST /expect HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: magic\r\n\r\nhello');
  t.match(other.text, /^HTTP\/1\.1 417 /, `expected 417 for an unknown expectation; got ${JSON.stringify(other.text.slice(0, 80))}`);
});

t.test('trailers are parsed and dropped', async (t) => {
  upstream.clear();
  const r = await rawExchange(port('main'), 'POST /trailers HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n', 700);
  t.match(r.text, /^HTTP\/1\.1 200 /, 'expected 200');
  const raw = Buffer.concat(upstream.raw).toString('latin1');
  t.notOk(/x-checksum/i.test(raw), `expected no trailer field upstream; raw ${JSON.stringify(raw)}`);
  t.same(upstream.requests.map((q) => q.body), ['abc'], 'expected the body whole');
});

t.test('OPTIONS * gets a definite answer (no route unless one matches "*")', async (t) => {
  const r = await rawExchange(port('main'), 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n', 500);
  t.match(r.text, /^HTTP\/1\.1 404 /, `expected 404 NR; got ${JSON.stringify(r.text.slice(0, 120))}`);
  t.match(r.text, /x-remora-flags: NR/, 'expected flag NR');
});

t.test('request headers timeout → 408 and close; idle keep-alive connections close', async (t) => {
  const started = Date.now();
  const slow = await rawExchange(port('timeouts'), 'GET /slow HTTP/1.1\r\nHost: a\r\n', 3000);
  t.match(slow.text, /^HTTP\/1\.1 408 /, `expected 408 for a head not finished in 300 ms; got ${JSON.stringify(slow.text)}`);
  t.ok(slow.closed, 'expected the connection closed');
  t.ok(Date.now() - started < 2500, `expected the timeout near 300 ms (took ${Date.now() - started} ms)`);

  const conn = await RawConn.open(port('timeouts'));
  t.teardown(() => conn.destroy());
  conn.write('GET /idle HTTP/1.1\r\nHost: a\r\n\r\n');
  t.equal((await conn.readResponse()).status, 200, 'expected 200');
  t.ok(await conn.waitClosed(2500), 'expected an idle connection closed after idle_timeout_ms (400)');
});

t.test('max_connections, max_requests_per_connection, max_request_headers_count', async (t) => {
  const a = await RawConn.open(port('limited'));
  const b = await RawConn.open(port('limited'));
  t.teardown(() => {
    a.destroy();
    b.destroy();
  });
  a.write('GET /1 HTTP/1.1\r\nHost: a\r\n\r\n');
  b.write('GET /1 HTTP/1.1\r\nHost: a\r\n\r\n');
  t.equal((await a.readResponse()).status, 200, 'first connection served');
  t.equal((await b.readResponse()).status, 200, 'second connection served');
  const third = await rawExchange(port('limited'), 'GET /3 HTTP/1.1\r\nHost: a\r\n\r\n', 1500);
  t.equal(third.text, '', `expected the third connection closed with no answer; got ${JSON.stringify(third.text)}`);
  t.ok(third.closed, 'expected the third connection closed at once (max_connections 2 over both workers)');
  const stats = (await admin(remora.adminPort, '/stats')).text;
  t.match(stats, /listener\.limited\.downstream_cx_overflow: [1-9]/, 'expected the overflow counted');

  a.write('GET /2 HTTP/1.1\r\nHost: a\r\n\r\n');
  const second = await a.readResponse();
  t.equal(second.status, 200, 'second request on the connection served');
  t.equal(second.headers.connection?.toLowerCase(), 'close', `expected connection: close on the last request allowed; got ${JSON.stringify(second.head)}`);
  t.ok(await a.waitClosed(2000), 'expected the connection closed after max_requests_per_connection');
  b.destroy();
  await until(() => a.closed, 1000);
  // Both connections are over for the client; the next one must not race the listener's
  // own count of them (max_connections 2), so wait until Remora has counted them closed.
  await waitUntil('the listener counts no open connection', async () => /^listener\.limited\.downstream_cx_active: 0$/m.test((await admin(remora.adminPort, '/stats')).text));

  const many = await rawExchange(port('limited'), `GET /h HTTP/1.1\r\nHost: a\r\n${'X: 1\r\n'.repeat(5)}\r\n`, 1500);
  t.match(many.text, /^HTTP\/1\.1 431 /, `expected 431 over max_request_headers_count 5; got ${JSON.stringify(many.text.slice(0, 80))}`);
});

t.test('worker_limits.max_downstream_connections caps connections over every listener', async (t) => {
  const capped = await startRemora({ ...config, listeners: [listener('one'), listener('two')], worker_limits: { max_downstream_connections: 2 } });
  t.teardown(() => capped.stop());
  const a = await RawConn.open(capped.ports.one);
  const b = await RawConn.open(capped.ports.two);
  t.teardown(() => {
    a.destroy();
    b.destroy();
  });
  a.write('GET /a HTTP/1.1\r\nHost: a\r\n\r\n');
  b.write('GET /b HTTP/1.1\r\nHost: a\r\n\r\n');
  t.equal((await a.readResponse()).status, 200, 'a connection on the first listener is served');
  t.equal((await b.readResponse()).status, 200, 'a connection on the second listener is served');
  const third = await rawExchange(capped.ports.one, 'GET /c HTTP/1.1\r\nHost: a\r\n\r\n', 1500);
  t.ok(third.closed && third.text === '', `expected a third connection closed at once with no answer; got ${JSON.stringify(third.text)}`);
  b.destroy();
  await until(() => b.closed, 1000);
  let served = '';
  for (let i = 0; i < 20 && !served.startsWith('HTTP/1.1 200'); i++) {
    served = (await rawExchange(capped.ports.one, 'GET /d HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 1500)).text;
    if (!served.startsWith('HTTP/1.1 200')) await new Promise((r) => setTimeout(r, 50));
  }
  t.match(served, /^HTTP\/1\.1 200 /, 'once a connection closes, a new one is served');
});

t.test('merge_slashes and escaped slashes per listener', async (t) => {
  upstream.clear();
  const merged = await rawExchange(port('paths'), 'GET //a///b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  t.match(merged.text, /^HTTP\/1\.1 200 /, 'expected 200');
  t.same(upstream.lines(), ['GET /a/b'], 'expected the merged path upstream');
  const redirected = await rawExchange(port('paths'), 'GET /a%2Fb?x=1 HTTP/1.1\r\nHost: a\r\n\r\n');
  t.match(redirected.text, /^HTTP\/1\.1 307 /, `expected 307 for an escaped slash (unescape_and_redirect); got ${JSON.stringify(redirected.text.slice(0, 200))}`);
  t.match(redirected.text, /\r\nlocation: \/a\/b\?x=1\r\n/, 'expected the unescaped location');
  const rejected = await rawExchange(port('rejecting'), 'GET /a%2fb HTTP/1.1\r\nHost: a\r\n\r\n');
  t.match(rejected.text, /^HTTP\/1\.1 400 /, 'expected 400 for an escaped slash (reject_request)');
  upstream.clear();
  const raw = await rawExchange(port('passing'), 'GET /a/../b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  t.match(raw.text, /^HTTP\/1\.1 200 /, 'expected 200');
  t.same(upstream.lines(), ['GET /a/../b'], 'expected the path unchanged with normalize_path: false');
});

t.test('server and date headers, as Envoy sets them', async (t) => {
  const get = async (name: string, path: string) => {
    const conn = await RawConn.open(port(name));
    try {
      conn.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
      return await conn.readResponse();
    } finally {
      conn.destroy();
    }
  };
  const over = await get('main', '/server');
  t.equal(over.headers.server, 'remora', 'overwrite (default): server_name replaces the upstream server');
  t.equal(over.headers.date, 'Tue, 01 Dec 2026 00:00:00 GMT', "the upstream's date passes unchanged");
  t.notOk(over.headerList.some(([n]) => n === 'uwebsockets'), 'no uWebSockets header');
  t.equal(over.headerList.filter(([n]) => n === 'date').length, 1, 'exactly one date');
  const noDate = await get('main', '/nodate');
  t.match(noDate.headers.date ?? '', /GMT$/, 'an upstream without a date gets the proxy’s');
  const append = await get('rejecting', '/server');
  t.equal(append.headers.server, 'app/1.0', "append_if_absent keeps the upstream's server");
  const appendNone = await get('rejecting', '/plain');
  t.equal(appendNone.headers.server, 'edge', 'append_if_absent adds server_name when the upstream has none');
  const pass = await get('passing', '/plain');
  t.equal(pass.headers.server, undefined, 'pass_through adds no server header');
  const stripped = await get('main', '/stripped');
  for (const name of ['date', 'x-remora-upstream-service-time', 'server']) {
    t.equal(stripped.headers[name], undefined, `response_headers_to_remove removes ${name}; got ${JSON.stringify(stripped.head)}`);
  }
});

t.test('a reloaded server_name reaches the codec\'s own replies too', async (t) => {
  const renamed = { ...config, listeners: config.listeners.map((l) => (l.name === 'rejecting' ? { ...l, server_name: 'edge2' } : l)) };
  writeFileSync(remora.configFile, JSON.stringify({ ...renamed, drain: { delay_ms: 0, timeout_ms: 5000 } }));
  process.kill(remora.pid, 'SIGHUP');
  let text = '';
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && !/\r\nserver: edge2\r\n/.test(text)) {
    text = (await rawExchange(port('rejecting'), 'GET /x HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n', 1000)).text;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.match(text, /^HTTP\/1\.1 400 [^]*\r\nserver: edge2\r\n/, `expected the codec's 400 to carry the new server_name; got ${JSON.stringify(text.slice(0, 200))}`);
  writeFileSync(remora.configFile, JSON.stringify({ ...config, drain: { delay_ms: 0, timeout_ms: 5000 } }));
  process.kill(remora.pid, 'SIGHUP');
  const back = Date.now() + 5000;
  while (Date.now() < back && !/\r\nserver: edge\r\n/.test(text)) {
    text = (await rawExchange(port('rejecting'), 'GET /x HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n', 1000)).text;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.match(text, /\r\nserver: edge\r\n/, 'expected the original server_name back after the next reload');
});

t.test('the uws codec still serves plain requests when chosen', { skip: UWS ? false : 'uWebSockets.js has no build for this runtime' }, async (t) => {
  const r = await rawExchange(port('uws'), 'GET /u HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  t.match(r.text, /^HTTP\/1\.1 200 /, `expected 200 through codec: uws; got ${JSON.stringify(r.text.slice(0, 80))}`);
});

t.test('a port held by another process is never shared', async (t) => {
  // A second Remora on the first one's port fails as against any other process.
  const second = spawn(process.execPath, [BIN, 'run', '--listen', `127.0.0.1:${port('main')}`, '--upstream', `127.0.0.1:${upstream.port}`, '--admin', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  second.stdout.on('data', (d: Buffer) => (out += d.toString()));
  second.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => {
      process.kill(second.pid!, 'SIGKILL');
      resolve(null);
    }, 15_000);
    second.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  t.not(code, 0, `expected the second Remora to fail; it exited ${code}`);
  t.match(out, /REMORA_ERR_LISTEN/, `expected REMORA_ERR_LISTEN; output: ${out.slice(-400)}`);

  // A reload that moves a listener onto a port in use is rejected; the old one serves on.
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => blocker.close());
  const busy = (blocker.address() as net.AddressInfo).port;
  const before = JSON.parse((await admin(remora.adminPort, '/config_dump')).text) as { version: number; rejections: number; bound_ports: Record<string, number> };
  const moved = { ...config, listeners: config.listeners.map((l) => (l.name === 'main' ? { ...l, port: busy } : l)) };
  writeFileSync(remora.configFile, JSON.stringify({ ...moved, drain: { delay_ms: 0, timeout_ms: 5000 } }));
  process.kill(remora.pid, 'SIGHUP');
  await until(() => false, 300);
  let dump = before;
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && dump.rejections === before.rejections) {
    dump = JSON.parse((await admin(remora.adminPort, '/config_dump')).text) as typeof before;
    await new Promise((r) => setTimeout(r, 50));
  }
  const full = JSON.parse((await admin(remora.adminPort, '/config_dump')).text) as { version: number; last_rejection: { errors: { path: string; message: string }[] }; bound_ports: Record<string, number> };
  t.equal(dump.rejections, before.rejections + 1, 'expected the reload rejected and counted');
  t.equal(full.version, before.version, 'expected the running version kept');
  t.same(full.bound_ports, before.bound_ports, 'expected /config_dump to show the ports still bound');
  t.ok(full.last_rejection.errors.some((e) => e.path === 'listeners[0].port' && e.message.includes(String(busy))), `expected the error by path; got ${JSON.stringify(full.last_rejection.errors)}`);
  const still = await rawExchange(port('main'), 'GET /still HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  t.match(still.text, /^HTTP\/1\.1 200 /, 'expected the old port to keep serving');

  // The error names the listener's own index, whichever listeners stay where they are.
  const third = { ...config, listeners: config.listeners.map((l) => (l.name === 'limited' ? { ...l, port: busy } : l)) };
  writeFileSync(remora.configFile, JSON.stringify({ ...third, drain: { delay_ms: 0, timeout_ms: 5000 } }));
  process.kill(remora.pid, 'SIGHUP');
  let again = full as typeof full & { rejections: number };
  const until2 = Date.now() + 5000;
  while (Date.now() < until2 && again.rejections === dump.rejections) {
    again = JSON.parse((await admin(remora.adminPort, '/config_dump')).text) as typeof again;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.same(again.last_rejection.errors.map((e) => e.path), ['listeners[2].port'], `expected the third listener named by its index; got ${JSON.stringify(again.last_rejection.errors)}`);
  writeFileSync(remora.configFile, JSON.stringify({ ...config, drain: { delay_ms: 0, timeout_ms: 5000 } }));
});

t.test('response side: stray bytes, status lines, head size', async (t) => {
  let n = 0;
  const odd = await startRawUpstream((socket, head) => {
    n++;
    const path = head.split(' ')[1];
    if (path === '/stray-same') {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL');
    } else if (path === '/stray-late') {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL'), 300);
    } else if (path === '/badstatus') {
      socket.write('HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok');
    } else if (path === '/bigstatus') {
      socket.write('HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok');
    } else if (path === '/bighead') {
      socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70_000)}\r\nContent-Length: 2\r\n\r\nok`);
    } else {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${String(n).length + 1}\r\n\r\nn${n}`);
    }
  });
  t.teardown(() => odd.close());
  const r2 = await startRemora({ ...config, workers: 1, listeners: [listener('main')], clusters: [{ name: 'up', endpoints: [{ address: '127.0.0.1', port: odd.port }] }] });
  t.teardown(() => r2.stop());
  const get = async (path: string) => {
    const conn = await RawConn.open(r2.ports.main);
    try {
      conn.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
      return await conn.readResponse();
    } finally {
      conn.destroy();
    }
  };
  t.equal((await get('/stray-same')).body.toString(), 'ok', 'the first response is served');
  const next = await get('/next');
  t.not(next.body.toString(), 'EVIL', 'stray bytes after a response (same read) never reach the next client');
  t.equal((await get('/stray-late')).body.toString(), 'ok', 'the first response is served');
  await new Promise((r) => setTimeout(r, 500));
  for (let i = 0; i < 3; i++) {
    const after = await get(`/after-${i}`);
    t.not(after.body.toString(), 'EVIL', `stray bytes 0.3 s later never reach a later client (try ${i + 1})`);
  }
  for (const [path, what] of [['/badstatus', 'a status code with a letter'], ['/bigstatus', 'a four-digit status code'], ['/bighead', 'a 70 KB head (limit 64 KiB)']]) {
    const r = await get(path);
    t.equal(r.status, 502, `expected 502 for ${what}; got ${r.status}`);
    t.equal(r.headers['x-remora-flags'], 'UPE', `expected flag UPE for ${what}`);
  }
});
