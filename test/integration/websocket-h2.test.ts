// WebSocket over HTTP/2 (extended CONNECT, RFC 8441) through Remora: a node:http2 client
// opens a stream with `:method CONNECT` and `:protocol websocket`, then writes masked
// WebSocket frames by hand on it (test/helpers/ws-frames.ts); the upstream is a `ws`
// server reached with an HTTP/1.1 Upgrade. Covered: SETTINGS_ENABLE_CONNECT_PROTOCOL,
// the upstream's handshake (fresh key, version, Host from :authority), the 200 without
// Sec-WebSocket-Accept, text, binary and a 1 MB message, close codes both ways,
// subprotocols, the policy (403), an upstream refusing (400, and a chunked 401), an
// upstream down (503 UF), the client closing or resetting its stream, an upstream reset,
// many tunnels on one connection, plain CONNECT still refused, the idle timeout, h2c
// with prior knowledge and h2 by ALPN on TLS, and the upgrade stats.

import { readFileSync } from 'node:fs';
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import net from 'node:net';
import t from 'tap';
import { TestPki } from '../helpers/certs.js';
import { admin, startRemora, waitUntil } from '../helpers/remora.js';
import { clientFrame, closePayload, FrameReader, OP } from '../helpers/ws-frames.js';
import { startWsUpstream } from '../helpers/ws-upstream.js';
import { deadPort } from '../helpers/dead-port.js';

// ---- the upstream ----

/** The upstream (test/helpers/ws-upstream.ts): what it saw, and how each WebSocket ended. */
const up = await startWsUpstream(false);
t.teardown(() => up.close());
const { seenHeads, closesSeen } = up;
const upstreamPort = up.port;

/** A raw upstream that switches protocols, then resets its connection (TCP RST). */
const resetter = net.createServer((s) => {
  s.on('error', () => {});
  s.once('data', () => {
    s.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n');
    setTimeout(() => s.resetAndDestroy(), 50);
  });
});
await new Promise<void>((r) => resetter.listen(0, '127.0.0.1', r));
t.teardown(() => new Promise<void>((r) => resetter.close(() => r())));

/** A port with nothing listening. */
const downPort = await deadPort();

const pki = new TestPki('websocket-h2');
t.teardown(() => pki.remove());
pki.ca('ca');
pki.leaf('remora', 'ca', { dns: 'remora.test', usage: 'serverAuth' });

const cluster = (name: string, port: number) => ({ name, connect_timeout_ms: 500, endpoints: [{ address: '127.0.0.1', port }] });
const routes = [
  { name: 'off', match: { prefix: '/off' }, route: { cluster: 'ws' }, upgrade_configs: [{ upgrade_type: 'websocket', enabled: false }] },
  { name: 'down', match: { prefix: '/down' }, route: { cluster: 'down' } },
  { name: 'reset', match: { prefix: '/reset-upstream' }, route: { cluster: 'resetter' } },
  { name: 'ws', match: { prefix: '/' }, route: { cluster: 'ws' } },
];
const remora = await startRemora({
  workers: 1,
  admin: { address: '127.0.0.1', port: 0 },
  listeners: [
    {
      name: 'main', address: '127.0.0.1', port: 0,
      upgrade_configs: [{ upgrade_type: 'websocket' }],
      virtual_hosts: [{ name: 'all', domains: ['*'], routes }],
    },
    {
      name: 'idle', address: '127.0.0.1', port: 0, idle_timeout_ms: 400,
      upgrade_configs: [{ upgrade_type: 'websocket' }],
      virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'ws' } }] }],
    },
    {
      name: 'secure', address: '127.0.0.1', port: 0,
      upgrade_configs: [{ upgrade_type: 'websocket' }],
      tls: { cert_file: pki.file('remora.pem'), key_file: pki.file('remora.key') },
      virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'ws' } }] }],
    },
  ],
  clusters: [cluster('ws', upstreamPort), cluster('down', downPort), cluster('resetter', (resetter.address() as net.AddressInfo).port)],
});
t.teardown(() => remora.stop());
const port = remora.ports.main;

// ---- the client ----

/** An HTTP/2 connection whose SETTINGS have arrived. */
async function connect(url = `http://127.0.0.1:${port}`, opts: http2.SecureClientSessionOptions = {}): Promise<ClientHttp2Session> {
  const session = http2.connect(url, opts);
  session.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    session.once('remoteSettings', () => resolve());
    session.once('error', reject);
  });
  return session;
}

const session = await connect();
t.teardown(() => session.destroy());

interface Opened {
  stream: ClientHttp2Stream;
  headers: IncomingHttpHeaders;
  frames: FrameReader;
  /** The body of a refused CONNECT. */
  body: () => Promise<string>;
  /** Resolves when the stream closed (its RST_STREAM code). */
  closed: Promise<number>;
  /** Resolves when the server ended its half (END_STREAM). */
  ended: Promise<void>;
}

/** Sends an extended CONNECT for `path` and waits for the response head. */
function openWs(path: string, opts: { protocols?: string; s?: ClientHttp2Session; authority?: string } = {}): Promise<Opened> {
  const s = opts.s ?? session;
  const headers: http2.OutgoingHttpHeaders = {
    ':method': 'CONNECT',
    ':protocol': 'websocket',
    ':scheme': 'http',
    ':path': path,
    ':authority': opts.authority ?? 'chat.example',
    'sec-websocket-version': '13',
    origin: 'http://chat.example',
  };
  if (opts.protocols !== undefined) headers['sec-websocket-protocol'] = opts.protocols;
  const stream = s.request(headers, { endStream: false });
  stream.on('error', () => {});
  const frames = new FrameReader();
  const chunks: Buffer[] = [];
  stream.on('data', (d: Buffer) => {
    chunks.push(d);
    frames.push(d);
  });
  const ended = new Promise<void>((r) => stream.once('end', () => r()));
  const closed = new Promise<number>((r) => stream.once('close', () => r(stream.rstCode ?? -1)));
  const body = async () => {
    await ended;
    return Buffer.concat(chunks).toString();
  };
  return new Promise((resolve, reject) => {
    stream.once('response', (h) => resolve({ stream, headers: h, frames, body, closed, ended }));
    stream.once('close', () => reject(new Error(`${path}: stream closed before a response (rst ${stream.rstCode})`)));
  });
}

/** Sends a message and reads the echoed frame. */
async function echo(o: Opened, opcode: number, payload: Buffer | string): Promise<{ opcode: number; payload: Buffer }> {
  o.stream.write(clientFrame(opcode, payload));
  const f = await o.frames.next();
  if (!f.fin) throw new Error('expected a whole message in one frame');
  return f;
}

async function closeHandshake(o: Opened, code = 1000, reason = 'done'): Promise<{ code: number; reason: string }> {
  o.stream.write(clientFrame(OP.CLOSE, closePayload(code, reason)));
  const f = await o.frames.next();
  if (f.opcode !== OP.CLOSE) throw new Error(`expected a close frame, got opcode ${f.opcode}`);
  return { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString() };
}

// ---- tests ----

t.test('the HTTP/2 front end advertises SETTINGS_ENABLE_CONNECT_PROTOCOL', async (t) => {
  t.equal(session.remoteSettings.enableConnectProtocol, true);
});

t.test('text and binary messages are echoed over an extended CONNECT stream', async (t) => {
  const before = seenHeads.length;
  const o = await openWs('/echo?room=1', { authority: 'chat.example:8443' });
  t.equal(o.headers[':status'], 200, 'the 101 became a 200');
  t.notOk(o.headers['sec-websocket-accept'], 'no Sec-WebSocket-Accept (RFC 8441 §5)');
  t.notOk(o.headers.upgrade, 'no upgrade header');
  t.notOk(o.headers.connection, 'no connection header');
  const text = await echo(o, OP.TEXT, 'hello, wörld');
  t.equal(text.opcode, OP.TEXT, 'text stays text');
  t.equal(text.payload.toString(), 'hello, wörld');
  const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
  const bin = await echo(o, OP.BINARY, bytes);
  t.equal(bin.opcode, OP.BINARY, 'binary stays binary');
  t.same([...bin.payload], [...bytes]);
  const closing = await closeHandshake(o, 1000, 'done');
  t.same(closing, { code: 1000, reason: 'done' });
  await o.ended;
  o.stream.end();
  t.equal(await o.closed, 0, 'the stream closes cleanly');

  t.equal(seenHeads.length, before + 1, 'one handshake upstream');
  const head = seenHeads[seenHeads.length - 1];
  t.equal(head.upgrade, 'websocket', 'upstream got Upgrade: websocket');
  t.match(String(head.connection), /upgrade/i, 'and Connection: upgrade');
  t.equal(head.host, 'chat.example:8443', 'Host from :authority');
  t.match(String(head['sec-websocket-key']), /^[A-Za-z0-9+/]{22}==$/, 'a fresh 16-byte Sec-WebSocket-Key');
  t.equal(head['sec-websocket-version'], '13');
  t.equal(head.origin, 'http://chat.example', 'other headers passed on');
  t.equal(head['x-forwarded-proto'], 'http');
  t.ok(head['x-request-id'], 'x-request-id added');
});

t.test('a 1 MB message each way, with flow control', async (t) => {
  const o = await openWs('/big');
  const big = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  const f = await echo(o, OP.BINARY, big);
  t.equal(f.payload.length, big.length, '1 MB back');
  t.ok(f.payload.equals(big), 'unchanged');
  await closeHandshake(o);
  o.stream.end();
  await o.closed;
});

t.test('close codes travel both ways', async (t) => {
  const o = await openWs('/codes');
  const back = await closeHandshake(o, 4000, 'client-bye');
  t.same(back, { code: 4000, reason: 'client-bye' }, 'the upstream answered with the same code');
  await o.ended; // the upstream's FIN after the close handshake
  o.stream.end(); // and the client's
  t.equal(await o.closed, 0, 'closed cleanly');
  await waitUntil('upstream saw the close', async () => closesSeen.some((c) => c.url === '/codes'));
  t.same(closesSeen.find((c) => c.url === '/codes'), { url: '/codes', code: 4000, reason: 'client-bye' }, 'the upstream saw the client\'s code');

  const s = await openWs('/close-me');
  const f = await s.frames.next();
  t.equal(f.opcode, OP.CLOSE, 'the upstream closes first');
  t.equal(f.payload.readUInt16BE(0), 4001);
  t.equal(f.payload.subarray(2).toString(), 'server-bye');
  s.stream.write(clientFrame(OP.CLOSE, closePayload(4001)));
  await s.ended;
  s.stream.end();
  t.equal(await s.closed, 0, 'closed cleanly');
});

t.test('a subprotocol is negotiated end to end', async (t) => {
  const o = await openWs('/proto', { protocols: 'chat.v1, chat.v2' });
  t.equal(o.headers['sec-websocket-protocol'], 'chat.v2', 'the upstream\'s choice in the 200');
  t.equal(seenHeads[seenHeads.length - 1]['sec-websocket-protocol'], 'chat.v1, chat.v2', 'the client\'s offer went up');
  const m = await echo(o, OP.TEXT, 'v2');
  t.equal(m.payload.toString(), 'v2');
  await closeHandshake(o);
  o.stream.end();
  await o.closed;
});

t.test('a route that disables websocket answers 403 on the stream', async (t) => {
  const before = seenHeads.length;
  const o = await openWs('/off/x');
  t.equal(o.headers[':status'], 403);
  t.match(await o.body(), /upgrade_failed/);
  t.equal(await o.closed, 0, 'the stream ends with the answer');
  t.equal(seenHeads.length, before, 'nothing went upstream');
  t.equal(session.closed || session.destroyed, false, 'the connection serves on');
});

t.test('an upstream that refuses the upgrade: its answer on the stream', async (t) => {
  const o = await openWs('/refuse-400');
  t.equal(o.headers[':status'], 400);
  t.equal(o.headers['x-why'], 'test', 'its headers');
  t.equal(await o.body(), 'refused with 400', 'its body');
  await o.closed;

  const c = await openWs('/refuse-chunked');
  t.equal(c.headers[':status'], 401);
  t.equal(c.headers['www-authenticate'], 'Bearer');
  t.equal(await c.body(), 'hello, again', 'a chunked body, whole');
  await c.closed;
});

t.test('an upstream that is down: 503 UF', async (t) => {
  const o = await openWs('/down');
  t.equal(o.headers[':status'], 503);
  t.equal(o.headers['x-remora-flags'], 'UF');
  t.match(await o.body(), /upstream connect error/);
  await o.closed;
});

t.test('the client resetting its stream closes the upstream connection', async (t) => {
  const o = await openWs('/reset-me');
  t.equal((await echo(o, OP.TEXT, 'hi')).payload.toString(), 'hi');
  o.stream.close(http2.constants.NGHTTP2_CANCEL);
  await waitUntil('upstream saw the connection go', async () => closesSeen.some((c) => c.url === '/reset-me'));
  t.equal(closesSeen.find((c) => c.url === '/reset-me')!.code, 1006, 'abnormal closure: no close frame');
});

t.test('the client ending its stream ends the upstream connection', async (t) => {
  const o = await openWs('/end-me');
  t.equal((await echo(o, OP.TEXT, 'hi')).payload.toString(), 'hi');
  o.stream.end(); // END_STREAM: the upstream gets a FIN
  await waitUntil('upstream saw the connection end', async () => closesSeen.some((c) => c.url === '/end-me'));
  await o.ended;
  t.equal(await o.closed, 0, 'then the stream closes cleanly');
});

t.test('an upstream reset resets the stream (CONNECT_ERROR)', async (t) => {
  const o = await openWs('/reset-upstream');
  t.equal(o.headers[':status'], 200);
  t.equal(await o.closed, http2.constants.NGHTTP2_CONNECT_ERROR);
});

t.test('several tunnels share one connection', async (t) => {
  const all = await Promise.all([1, 2, 3, 4, 5].map((i) => openWs(`/many-${i}`)));
  const answers = await Promise.all(all.map((o, i) => echo(o, OP.TEXT, `n${i}`)));
  t.same(answers.map((a) => a.payload.toString()), ['n0', 'n1', 'n2', 'n3', 'n4']);
  for (const o of all) o.stream.close(http2.constants.NGHTTP2_CANCEL);
  await Promise.all(all.map((o) => o.closed));
});

t.test('a quiet tunnel is closed after the listener\'s idle timeout', async (t) => {
  const s = await connect(`http://127.0.0.1:${remora.ports.idle}`);
  t.teardown(() => s.destroy());
  const o = await openWs('/idle-me', { s });
  t.equal((await echo(o, OP.TEXT, 'hi')).payload.toString(), 'hi');
  const started = Date.now();
  const code = await o.closed;
  t.equal(code, http2.constants.NGHTTP2_CANCEL, 'the stream is reset');
  t.ok(Date.now() - started >= 300, 'after the idle timeout');
  await waitUntil('upstream saw the connection go', async () => closesSeen.some((c) => c.url === '/idle-me'));
  await waitUntil('idle_timeout counted', async () => /^listener\.idle\.idle_timeout: [1-9]/m.test((await admin(remora.adminPort, '/stats')).text));
});

t.test('a plain CONNECT is still refused', async (t) => {
  const stream = session.request({ ':method': 'CONNECT', ':authority': 'example.com:443' }, { endStream: false });
  stream.on('error', () => {});
  const status = await new Promise<number>((resolve) => stream.once('response', (h) => resolve(Number(h[':status']))));
  t.equal(status, 501);
  stream.close();
});

t.test('h2 by ALPN on a TLS listener', async (t) => {
  const s = await connect(`https://127.0.0.1:${remora.ports.secure}`, { ca: readFileSync(pki.file('ca.pem')), servername: 'remora.test' });
  t.teardown(() => s.destroy());
  t.equal(s.alpnProtocol, 'h2');
  t.equal(s.remoteSettings.enableConnectProtocol, true);
  const o = await openWs('/tls', { s });
  t.equal(o.headers[':status'], 200);
  t.equal((await echo(o, OP.TEXT, 'over tls')).payload.toString(), 'over tls');
  await closeHandshake(o);
  o.stream.end();
  await o.closed;
});

t.test('upgrades are counted as over HTTP/1.1', async (t) => {
  await waitUntil('no tunnel open', async () => /^listener\.main\.downstream_cx_upgrades_active: 0$/m.test((await admin(remora.adminPort, '/stats')).text));
  const stats = (await admin(remora.adminPort, '/stats')).text;
  const total = Number(/^listener\.main\.downstream_cx_upgrades_total: (\d+)$/m.exec(stats)?.[1] ?? -1);
  t.ok(total >= 10, `downstream_cx_upgrades_total (${total})`);
});
