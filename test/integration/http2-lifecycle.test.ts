// HTTP/2 across Remora's lifecycle and limits: a drain tells HTTP/2 clients GOAWAY while
// their open streams finish; circuit breakers count HTTP/2 upstream streams (max_requests)
// and connections (max_connections) as Envoy does, requests share one upstream connection,
// a refused stream is sent again on a new connection; `protocol: downstream` speaks
// each client's own HTTP version to an upstream that serves both, `protocol: auto` the
// version each TLS endpoint chooses by ALPN; and PING keepalive closes a connection whose
// peer stopped answering, on both sides of Remora.

import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import t from 'tap';
import { TestPki } from '../helpers/certs.js';
import { FRAME, RawH2 } from '../helpers/raw-h2.js';
import { request, routesConfig, startRemora, waitUntil } from '../helpers/remora.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An h2c upstream: answers `up:<path>` after `delayMs`, counts sessions and streams. */
async function h2Upstream(delayMs = 0, opts: { refuseFirst?: number } = {}) {
  const state = { sessions: 0, streams: 0, open: 0, maxOpen: 0, refused: 0 };
  const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
  server.on('session', () => state.sessions++);
  server.on('stream', (stream, headers) => {
    state.streams++;
    stream.on('error', () => {}); // a refused or cancelled stream
    if (opts.refuseFirst !== undefined && state.refused < opts.refuseFirst) {
      state.refused++;
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    state.open++;
    state.maxOpen = Math.max(state.maxOpen, state.open);
    stream.on('close', () => state.open--);
    stream.resume();
    setTimeout(() => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200 });
      stream.end(`up:${headers[':path']}`);
    }, delayMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { port, state, close: () => new Promise<void>((r) => server.close(() => r())) };
}

function h2Get(session: http2.ClientHttp2Session, path: string, method = 'GET'): Promise<{ status: number; body: string; flags: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': method, ':path': path });
    let status = 0;
    let flags = '';
    const chunks: Buffer[] = [];
    req.on('response', (h) => {
      status = Number(h[':status']);
      flags = String(h['x-remora-flags'] ?? '');
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString(), flags }));
    req.on('error', reject);
    req.end(method === 'POST' ? 'payload' : undefined);
  });
}

t.test('drain: HTTP/2 clients get GOAWAY, open streams finish, the process exits 0', async (t) => {
  const up = await h2Upstream(600);
  const remora = await startRemora(routesConfig([{ match: { prefix: '/' }, route: { cluster: 'u' } }],
    [{ name: 'u', protocol: 'http2', endpoints: [{ address: '127.0.0.1', port: up.port }] }]));
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const session = http2.connect(`http://127.0.0.1:${remora.ports.main}`);
  session.on('error', () => {});
  let goaway = -1;
  session.on('goaway', (code) => (goaway = code));
  const inFlight = Promise.all([h2Get(session, '/slow/1'), h2Get(session, '/slow/2')]);
  await sleep(150);
  const exited = new Promise<number | null>((r) => remora.child.once('exit', (code) => r(code)));
  process.kill(remora.pid, 'SIGTERM');
  const answers = await inFlight;
  t.same(answers.map((a) => [a.status, a.body]), [[200, 'up:/slow/1'], [200, 'up:/slow/2']], 'the streams open at SIGTERM finish with their answers');
  t.equal(goaway, http2.constants.NGHTTP2_NO_ERROR, 'the client was told GOAWAY (NO_ERROR)');
  t.equal(await exited, 0, 'Remora exits 0');
  session.destroy();
});

t.test('HTTP/2 upstreams: one connection carries concurrent requests; max_requests counts streams', async (t) => {
  const up = await h2Upstream(300);
  const remora = await startRemora(routesConfig([{ match: { prefix: '/' }, route: { cluster: 'u' } }],
    [{ name: 'u', protocol: 'http2', endpoints: [{ address: '127.0.0.1', port: up.port }], circuit_breakers: { max_requests: 3 } }]));
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const session = http2.connect(`http://127.0.0.1:${remora.ports.main}`);
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => h2Get(session, `/c/${i}`)));
  const ok = answers.filter((a) => a.status === 200);
  const overflow = answers.filter((a) => a.status === 503 && a.flags === 'UO');
  t.equal(ok.length, 3, `three requests within max_requests 3 are served (saw ${answers.map((a) => `${a.status} ${a.flags}`).join(', ')})`);
  t.equal(overflow.length, 2, 'the other two get 503 UO');
  t.equal(up.state.maxOpen, 3, 'the upstream saw at most 3 streams at once');
  t.equal(up.state.sessions, 1, 'all of them on one upstream connection');
  const more = await Promise.all(Array.from({ length: 3 }, (_, i) => h2Get(session, `/d/${i}`)));
  t.ok(more.every((a) => a.status === 200), 'the streams were given back: 3 more succeed');
  t.equal(up.state.sessions, 1, 'still one upstream connection');
});

t.test('a stream the upstream refused is sent again on a new connection (a POST too)', async (t) => {
  const up = await h2Upstream(0, { refuseFirst: 1 });
  const remora = await startRemora(routesConfig([{ match: { prefix: '/' }, route: { cluster: 'u' } }],
    [{ name: 'u', protocol: 'http2', endpoints: [{ address: '127.0.0.1', port: up.port }] }]));
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const session = http2.connect(`http://127.0.0.1:${remora.ports.main}`);
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  const answer = await h2Get(session, '/refused', 'POST');
  t.equal(answer.status, 200, `the refused POST is answered after one resend (saw ${answer.status} ${answer.flags})`);
  t.equal(up.state.refused, 1, 'the upstream refused it once');
  t.equal(up.state.streams, 2, 'and processed it once, on the second try');
  t.equal(up.state.sessions, 2, 'the resend went on a new connection');
});

t.test('protocol: downstream: HTTP/1.1 clients reach the upstream over HTTP/1.1, HTTP/2 clients over HTTP/2', async (t) => {
  // An upstream serving both on one port (the preface decides, as Remora's listeners do).
  const seen: string[] = [];
  const answer = (version: string, url: string, res: http.ServerResponse | http2.Http2ServerResponse): void => {
    seen.push(`${version} ${url}`);
    res.setHeader('x-upstream-version', version);
    res.end(`via ${version}`);
  };
  const h1 = http.createServer((req, res) => answer(req.httpVersion, req.url ?? '', res));
  const h2 = http2.createServer((req, res) => answer(req.httpVersion, req.url, res));
  const front = net.createServer((socket) => {
    socket.once('data', (chunk) => {
      socket.pause();
      socket.unshift(chunk);
      if (chunk.toString('latin1').startsWith('PRI * HTTP/2.0')) {
        h2.emit('connection', socket); // the session reads the socket itself
      } else {
        h1.emit('connection', socket);
        socket.resume();
      }
    });
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  const upPort = (front.address() as net.AddressInfo).port;
  const remora = await startRemora(routesConfig([{ match: { prefix: '/' }, route: { cluster: 'u' } }],
    [{ name: 'u', protocol: 'downstream', endpoints: [{ address: '127.0.0.1', port: upPort }] }]));
  const session = http2.connect(`http://127.0.0.1:${remora.ports.main}`);
  session.on('error', () => {});
  t.teardown(async () => {
    session.destroy();
    await remora.stop();
    await new Promise<void>((r) => front.close(() => r()));
    h1.close();
    h2.close();
  });
  const r1 = await request(remora.ports.main, { path: '/one' });
  t.equal(r1.text, 'via 1.1', 'an HTTP/1.1 client reaches the upstream over HTTP/1.1');
  const r2 = await h2Get(session, '/two');
  t.equal(r2.body, 'via 2.0', 'an HTTP/2 client reaches it over HTTP/2');
  const both = await Promise.all([request(remora.ports.main, { path: '/three' }), h2Get(session, '/four')]);
  t.same([both[0].text, both[1].body], ['via 1.1', 'via 2.0'], 'both at once, each in its own version');
  t.same(seen.sort(), ['1.1 /one', '1.1 /three', '2.0 /four', '2.0 /two'], 'what the upstream saw');
});

t.test('connection_keepalive: a client that stops answering PINGs is cut off; one that answers stays', async (t) => {
  const up = await h2Upstream(0);
  const config = routesConfig([{ match: { prefix: '/' }, route: { cluster: 'u' } }],
    [{ name: 'u', protocol: 'http2', endpoints: [{ address: '127.0.0.1', port: up.port }] }]) as { listeners: Record<string, unknown>[] };
  config.listeners[0].http2_protocol_options = { connection_keepalive: { interval_ms: 200, timeout_ms: 300 } };
  const remora = await startRemora(config);
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const silent = await RawH2.open(remora.ports.main, t, { ackPings: false });
  const session = http2.connect(`http://127.0.0.1:${remora.ports.main}`);
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  t.equal((await h2Get(session, '/before')).status, 200, 'a well-behaved client is served');
  const started = Date.now();
  await waitUntil('the silent client cut off', async () => silent.closed, 3000);
  const pings = silent.frames.filter((f) => f.type === FRAME.PING).length;
  t.ok(pings >= 1, `Remora sent PINGs (${pings})`);
  t.ok(Date.now() - started < 2000, `closed within interval + timeout, about 0.5 s (took ${Date.now() - started} ms)`);
  await sleep(600);
  t.notOk(session.closed || session.destroyed, 'the client that answers PINGs keeps its connection');
  t.equal((await h2Get(session, '/after')).status, 200, 'and is still served');
});

t.test('connection_keepalive on a cluster: a request on an upstream connection whose PINGs go unanswered fails in time, and the connection is closed', async (t) => {
  // An h2c "upstream" written by hand: it answers the handshake, then ignores everything
  // (its PINGs unanswered), like a peer whose network path died.
  const sockets: net.Socket[] = [];
  const dead = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
    socket.resume(); // reads and drops everything (so it sees Remora's FIN)
    socket.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])); // SETTINGS, empty
  });
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const port = (dead.address() as net.AddressInfo).port;
  const remora = await startRemora(routesConfig([{ match: { prefix: '/' }, route: { cluster: 'u', timeout_ms: 0 } }],
    [{ name: 'u', protocol: 'http2', endpoints: [{ address: '127.0.0.1', port }], http2_protocol_options: { connection_keepalive: { interval_ms: 200, timeout_ms: 300 } } }]));
  t.teardown(async () => {
    await remora.stop();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => dead.close(() => r()));
  });
  const started = Date.now();
  const reply = await request(remora.ports.main, { path: '/hangs' });
  t.equal(reply.status, 503, `the request on the dead connection fails instead of hanging (saw ${reply.status} ${reply.headers['x-remora-flags']})`);
  t.ok(Date.now() - started < 3000, `within about interval + timeout (${Date.now() - started} ms)`);
  await waitUntil('the dead connection closed', async () => sockets.length >= 1 && sockets[0].destroyed, 3000);
  t.pass('Remora closed the connection whose PING went unanswered');
});

t.test('protocol: auto: each TLS endpoint is spoken to in the version it chooses by ALPN', async (t) => {
  const pki = new TestPki('http2-auto');
  t.teardown(() => pki.remove());
  pki.ca('ca');
  pki.leaf('up', 'ca', { dns: 'up.test', usage: 'serverAuth' });
  const tlsFiles = { cert: readFileSync(pki.file('up.pem')), key: readFileSync(pki.file('up.key')) };
  const seen: string[] = [];
  // One upstream that prefers h2 (and also speaks HTTP/1.1), one that offers no ALPN.
  const h2 = http2.createSecureServer({ ...tlsFiles, allowHTTP1: true }, (req, res) => {
    seen.push(`h2-capable ${req.httpVersion}`);
    res.end(`version ${req.httpVersion}`);
  });
  const h1 = https.createServer(tlsFiles, (req, res) => {
    seen.push(`h1-only ${req.httpVersion}`);
    res.end(`version ${req.httpVersion}`);
  });
  const listen = (server: net.Server): Promise<number> =>
    new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
  const [h2Port, h1Port] = await Promise.all([listen(h2), listen(h1)]);
  const tls = { ca_file: pki.file('ca.pem'), sni: 'up.test' };
  const remora = await startRemora(routesConfig(
    [{ match: { prefix: '/h2' }, route: { cluster: 'a' } }, { match: { prefix: '/h1' }, route: { cluster: 'b' } }],
    [
      { name: 'a', protocol: 'auto', tls, endpoints: [{ address: '127.0.0.1', port: h2Port }] },
      { name: 'b', protocol: 'auto', tls, endpoints: [{ address: '127.0.0.1', port: h1Port }] },
    ]));
  t.teardown(async () => {
    await remora.stop();
    h1.close();
    h2.close();
    h1.closeAllConnections();
  });
  const first = await Promise.all([1, 2, 3].map((i) => request(remora.ports.main, { path: `/h2/${i}` })));
  t.same(first.map((r) => r.text), ['version 2.0', 'version 2.0', 'version 2.0'], 'the endpoint that chose h2 gets HTTP/2 (requests that waited for the choice too)');
  const second = await Promise.all([1, 2].map((i) => request(remora.ports.main, { path: `/h1/${i}` })));
  t.same(second.map((r) => r.text), ['version 1.1', 'version 1.1'], 'the endpoint without h2 gets HTTP/1.1');
  t.equal((await request(remora.ports.main, { path: '/h2/again' })).text, 'version 2.0', 'and the choice is remembered');
  t.equal(seen.filter((x) => x.startsWith('h2-capable 1.1')).length, 0, 'nothing went to the h2 endpoint over HTTP/1.1');
});
