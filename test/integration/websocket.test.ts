// WebSocket and other HTTP/1.1 upgrades through Remora (listener and route upgrade_configs):
// a `ws` client and upstream on both ends — text, binary (16 MB), fragmented messages,
// ping/pong, close codes both ways, subprotocols, permessage-deflate end to end — the
// policy (403 upgrade_failed, route overrides), the request pipeline around it
// (authorization, rate limits, direct responses, 503 UF), an upstream that refuses the
// upgrade, 200 sockets at once, bytes pipelined behind the request head (raw sockets),
// h2c upgrades served as plain HTTP/1.1, a TLS listener, the idle timeout, stats, the
// access log line, and a drain that ends within its timeout with a 1001 close both ways.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import WebSocket from 'ws';
import { TestPki } from '../helpers/certs.js';
import { admin, rawExchange, request, startRemora, waitUntil } from '../helpers/remora.js';
import { startWsUpstream } from '../helpers/ws-upstream.js';
import { deadPort } from '../helpers/dead-port.js';

const run = promisify(execFile);

// ---- upstreams ----

/** What the ws upstream saw: request heads and the close frames clients sent. */
const seenHeads: http.IncomingHttpHeaders[] = [];
const closesSeen: { url: string; code: number; reason: string }[] = [];

/** A raw upstream: reads the request head, answers 101 and a greeting in ONE write, then
 *  records every byte that follows (the pipelined ones first). */
const raw = { head: '', after: '' };
const rawServer = net.createServer((s) => {
  let buf = '';
  let switched = false;
  s.on('data', (d: Buffer) => {
    if (switched) {
      raw.after += d.toString('latin1');
      return;
    }
    buf += d.toString('latin1');
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    switched = true;
    raw.head = buf.slice(0, end);
    raw.after += buf.slice(end + 4);
    s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Raw: 1\r\n\r\nhello-from-upstream');
  });
  s.on('error', () => {});
});
await new Promise<void>((r) => rawServer.listen(0, '127.0.0.1', r));
t.teardown(() => new Promise<void>((r) => rawServer.close(() => r())));
const rawPort = (rawServer.address() as net.AddressInfo).port;

const up = await startWsUpstream(true, { seenHeads, closesSeen });
t.teardown(() => up.close());
const upNoDeflate = await startWsUpstream(false, { seenHeads, closesSeen });
t.teardown(() => upNoDeflate.close());

/** A port with nothing listening. */
const downPort = await deadPort();

const pki = new TestPki('websocket');
t.teardown(() => pki.remove());
pki.ca('ca');
pki.leaf('remora', 'ca', { dns: 'remora.test', usage: 'serverAuth' });

const logDir = mkdtempSync(join(tmpdir(), 'remora-ws-log-'));
t.teardown(() => rmSync(logDir, { recursive: true, force: true }));
const accessLog = join(logDir, 'access.log');

const cluster = (name: string, port: number) => ({ name, connect_timeout_ms: 500, endpoints: [{ address: '127.0.0.1', port }] });
const routes = [
  { name: 'off', match: { prefix: '/off' }, route: { cluster: 'ws' }, upgrade_configs: [{ upgrade_type: 'websocket', enabled: false }] },
  { name: 'authz', match: { prefix: '/authz' }, route: { cluster: 'ws' }, authorization: { allow: ['spiffe://example.org/*'] } },
  { name: 'limited', match: { prefix: '/limited' }, route: { cluster: 'ws' }, rate_limits: [{ name: 'one', max_tokens: 1, fill_interval_ms: 3_600_000 }] },
  { name: 'direct', match: { prefix: '/direct' }, direct_response: { status: 200, body: 'direct' } },
  { name: 'down', match: { prefix: '/down' }, route: { cluster: 'down' } },
  { name: 'raw', match: { prefix: '/raw' }, route: { cluster: 'raw' } },
  { name: 'nodeflate', match: { prefix: '/nodeflate' }, route: { cluster: 'nodeflate' } },
  { name: 'ws', match: { prefix: '/' }, route: { cluster: 'ws' } },
];
const remora = await startRemora({
  workers: 1,
  admin: { address: '127.0.0.1', port: 0 },
  listeners: [
    {
      name: 'main', address: '127.0.0.1', port: 0,
      upgrade_configs: [{ upgrade_type: 'websocket' }],
      access_log: { path: accessLog },
      virtual_hosts: [{ name: 'all', domains: ['*'], routes }],
    },
    {
      // No upgrades, except on the route that allows them itself. A short headers
      // timeout: it must not reach a tunnel.
      name: 'plain', address: '127.0.0.1', port: 0, request_headers_timeout_ms: 200,
      virtual_hosts: [{ name: 'all', domains: ['*'], routes: [
        { name: 'on', match: { prefix: '/on' }, route: { cluster: 'ws' }, upgrade_configs: [{ upgrade_type: 'websocket', enabled: true }] },
        { name: 'rest', match: { prefix: '/' }, route: { cluster: 'ws' } },
      ] }],
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
  clusters: [cluster('ws', up.port), cluster('nodeflate', upNoDeflate.port), cluster('raw', rawPort), cluster('down', downPort)],
});
t.teardown(() => remora.stop());
const port = remora.ports.main;

// ---- client helpers ----

function open(path: string, opts: WebSocket.ClientOptions & { protocols?: string[]; listenerPort?: number } = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${opts.listenerPort ?? port}${path}`, opts.protocols ?? [], opts);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** The status (and headers, body) of a refused handshake. */
function refused(path: string, listenerPort = port): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${listenerPort}${path}`);
    ws.once('open', () => {
      ws.terminate();
      reject(new Error(`${path}: the upgrade was accepted`));
    });
    ws.once('error', () => {});
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
  });
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data: data as Buffer, isBinary })));
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

async function closeClean(ws: WebSocket): Promise<void> {
  const done = closed(ws);
  ws.close(1000, 'done');
  await done;
}

/** The bodies of Content-Length framed responses read back to back. */
function responseBodies(text: string): string[] {
  const out: string[] = [];
  let at = 0;
  for (;;) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) return out;
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(text.slice(at, end))?.[1] ?? 0);
    out.push(text.slice(end + 4, end + 4 + length));
    at = end + 4 + length;
  }
}

// ---- messages ----

t.test('text and binary messages are echoed unchanged', async (t) => {
  const ws = await open('/echo');
  ws.send('hello, wörld');
  const text = await nextMessage(ws);
  t.equal(text.isBinary, false, 'text frame');
  t.equal(text.data.toString(), 'hello, wörld');
  const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
  ws.send(bytes);
  const bin = await nextMessage(ws);
  t.equal(bin.isBinary, true, 'binary frame');
  t.same([...bin.data], [...bytes]);
  await closeClean(ws);
  const head = seenHeads[seenHeads.length - 1];
  t.equal(head.upgrade, 'websocket', 'upstream got Upgrade: websocket');
  t.match(String(head.connection), /upgrade/i, 'and Connection: upgrade');
  t.ok(head['sec-websocket-key'], 'and the client\'s Sec-WebSocket-Key');
  t.equal(head['sec-websocket-version'], '13');
  t.equal(head['x-forwarded-for'], '127.0.0.1', 'x-forwarded-for added');
  t.ok(head['x-request-id'], 'x-request-id added');
});

t.test('a 16 MB binary message both ways', async (t) => {
  const ws = await open('/big');
  const big = Buffer.alloc(16 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
  big[big.length - 1] = 0x5a;
  ws.send(big);
  const back = await nextMessage(ws);
  t.equal(back.data.length, big.length, 'length');
  t.ok(back.data.equals(big), 'same bytes');
  await closeClean(ws);
});

t.test('a fragmented message arrives whole', async (t) => {
  const ws = await open('/frag');
  ws.send('part one, ', { fin: false });
  ws.send('part two, ', { fin: false });
  ws.send('the end', { fin: true });
  const m = await nextMessage(ws);
  t.equal(m.data.toString(), 'part one, part two, the end');
  await closeClean(ws);
});

t.test('ping gets its pong', async (t) => {
  const ws = await open('/ping');
  const pong = new Promise<Buffer>((r) => ws.once('pong', (d) => r(d)));
  ws.ping(Buffer.from('are you there'));
  t.equal((await pong).toString(), 'are you there');
  await closeClean(ws);
});

t.test('close codes and reasons travel both ways', async (t) => {
  const ws = await open('/client-closes');
  const before = closesSeen.length;
  const done = closed(ws);
  ws.close(4000, 'client-bye');
  t.same(await done, { code: 4000, reason: 'client-bye' }, 'client sees its close echoed');
  await waitUntil('the upstream saw the close', async () => closesSeen.length > before);
  t.match(closesSeen[closesSeen.length - 1], { code: 4000, reason: 'client-bye' }, 'upstream got 4000 client-bye');

  const ws2 = new WebSocket(`ws://127.0.0.1:${port}/close-me`);
  t.same(await closed(ws2), { code: 4001, reason: 'server-bye' }, 'client gets the upstream\'s 4001 server-bye');
});

t.test('an upstream that drops the connection closes the client\'s', async (t) => {
  const ws = await open('/drop-me');
  const c = await closed(ws);
  t.equal(c.code, 1006, 'abnormal closure (no close frame)');
});

t.test('subprotocol negotiation', async (t) => {
  const ws = await open('/proto', { protocols: ['chat.v1', 'chat.v2'] });
  t.equal(ws.protocol, 'chat.v2', 'the upstream\'s choice reaches the client');
  await closeClean(ws);
  const head = seenHeads[seenHeads.length - 1];
  t.match(String(head['sec-websocket-protocol']), /^chat\.v1,\s*chat\.v2$/, 'offer forwarded');
});

t.test('permessage-deflate negotiated end to end, and refused cleanly', async (t) => {
  const ws = await open('/deflate', { perMessageDeflate: { threshold: 0 } });
  t.match(ws.extensions, /permessage-deflate/, 'negotiated with the upstream');
  const text = 'compress me '.repeat(1000);
  ws.send(text);
  t.equal((await nextMessage(ws)).data.toString(), text, 'compressed message round trip');
  await closeClean(ws);

  const ws2 = await open('/nodeflate', { perMessageDeflate: { threshold: 0 } });
  t.equal(ws2.extensions, '', 'not negotiated when the upstream refuses it');
  ws2.send(text);
  t.equal((await nextMessage(ws2)).data.toString(), text, 'uncompressed round trip');
  await closeClean(ws2);
});

// ---- policy and pipeline ----

t.test('upgrades the route or listener does not enable get 403', async (t) => {
  const off = await refused('/off');
  t.equal(off.status, 403, 'listener allows, route disables: 403');
  t.match(off.body, /upgrade_failed/);
  const plain = await refused('/x', remora.ports.plain);
  t.equal(plain.status, 403, 'listener without upgrade_configs: 403');
  const other = await rawExchange(port, 'GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n');
  t.match(other.text, /^HTTP\/1\.1 403 /, 'an upgrade type nobody enabled: 403');
  t.ok(other.closed, 'and the connection closes');
  const ws = await open('/on', { listenerPort: remora.ports.plain });
  ws.send('allowed by the route');
  t.equal((await nextMessage(ws)).data.toString(), 'allowed by the route', 'a route may enable what its listener does not');
  await new Promise((r) => setTimeout(r, 700));
  ws.send('still there');
  t.equal((await nextMessage(ws)).data.toString(), 'still there', 'the listener\'s request headers timeout (200 ms) does not apply to a tunnel');
  await closeClean(ws);
});

t.test('authorization, rate limits and direct responses apply', async (t) => {
  const denied = await refused('/authz');
  t.equal(denied.status, 403, 'authorization refuses');
  t.equal(denied.headers['x-remora-flags'], 'RBAC');
  const first = await open('/limited');
  await closeClean(first);
  const second = await refused('/limited');
  t.equal(second.status, 429, 'the second upgrade is rate limited');
  const direct = await refused('/direct');
  t.equal(direct.status, 200, 'direct response');
  t.equal(direct.body, 'direct');
});

t.test('an upstream that refuses the upgrade: the client gets its answer', async (t) => {
  for (const status of [400, 404]) {
    const r = await refused(`/refuse-${status}`);
    t.equal(r.status, status, `status ${status}`);
    t.equal(r.body, `refused with ${status}`, 'body');
    t.equal(r.headers['x-why'], 'test', 'headers');
    t.equal(r.headers.connection, 'close', 'connection closes');
  }
  const chunked = await refused('/refuse-chunked');
  t.equal(chunked.status, 401, 'a chunked answer');
  t.equal(chunked.body, 'hello, again', 'its whole body');
  t.equal(chunked.headers['www-authenticate'], 'Bearer');
});

t.test('upstream down: 503 UF', async (t) => {
  const r = await refused('/down');
  t.equal(r.status, 503);
  t.equal(r.headers['x-remora-flags'], 'UF');
});

t.test('200 sockets at once', async (t) => {
  const sockets = await Promise.all(Array.from({ length: 200 }, (_, i) => open(`/many/${i}`)));
  const replies = await Promise.all(sockets.map((ws, i) => {
    const m = nextMessage(ws);
    ws.send(`n=${i}`);
    return m;
  }));
  t.ok(replies.every((r, i) => r.data.toString() === `n=${i}`), 'each socket got its own echo');
  await Promise.all(sockets.map((ws) => closeClean(ws)));
});

t.test('bytes pipelined behind the request head reach the upstream (raw sockets)', async (t) => {
  raw.head = '';
  raw.after = '';
  const s = net.connect(port, '127.0.0.1');
  let got = '';
  s.on('data', (d: Buffer) => (got += d.toString('latin1')));
  s.write('GET /raw/x HTTP/1.1\r\nHost: raw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
    'Sec-WebSocket-Version: 13\r\n\r\nPIPELINED');
  await waitUntil('the 101 and the greeting', async () => got.includes('hello-from-upstream'));
  t.match(got, /^HTTP\/1\.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Raw: 1\r\n\r\nhello-from-upstream$/, '101 head unchanged, bytes after it in the same read forwarded');
  await waitUntil('pipelined bytes upstream', async () => raw.after === 'PIPELINED');
  t.match(raw.head, /\r\nconnection: upgrade\r\n/i, 'upstream head keeps connection: upgrade');
  t.match(raw.head, /\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n/i);
  s.write('more');
  await waitUntil('later bytes upstream', async () => raw.after === 'PIPELINEDmore');
  t.pass('bytes after the 101 flow too');
  s.destroy();
});

t.test('an upgrade pipelined behind a request waits for its response', async (t) => {
  const r = await rawExchange(port, 'GET /first HTTP/1.1\r\nHost: a\r\n\r\n' +
    'GET /raw/second HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', 500);
  t.match(r.text, /^HTTP\/1\.1 200 OK\r\n[^]*"url":"\/first"[^]*\}HTTP\/1\.1 101 Switching Protocols\r\n[^]*\r\n\r\nhello-from-upstream$/,
    `200 first, then the 101 and the tunnel: ${JSON.stringify(r.text.slice(-200))}`);
});

t.test('Upgrade: h2c is served as a plain HTTP/1.1 request', async (t) => {
  const r = await rawExchange(port, 'POST /h2c HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n' +
    'HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nContent-Length: 5\r\n\r\nhello' +
    'GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  const bodies = responseBodies(r.text);
  t.equal(bodies.length, 2, `two answers on the connection: ${JSON.stringify(r.text.slice(0, 300))}`);
  const first = JSON.parse(bodies[0]) as { method: string; url: string; headers: Record<string, string>; body: string };
  t.equal(first.method, 'POST');
  t.equal(first.body, 'hello', 'its body');
  t.equal(first.headers.upgrade, undefined, 'no Upgrade upstream');
  t.equal(first.headers['http2-settings'], undefined, 'no HTTP2-Settings upstream');
  t.match(bodies[1], /"url":"\/after"/, 'the pipelined request behind it is served too');
  // On the listener without upgrades too (node:http only diverts upgrades once a listener
  // for them exists, which every strict-codec server now has).
  const plain = await request(remora.ports.plain, { path: '/h2c-plain', headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQCAAAAAAIAAAAA' }, agent: false });
  t.equal(plain.status, 200);
});

let curlHttp2: boolean;
try {
  curlHttp2 = /\bHTTP2\b/.test((await run('curl', ['--version'])).stdout);
} catch {
  curlHttp2 = false;
}

t.test('curl --http2 against a plain listener: served over HTTP/1.1', { skip: curlHttp2 ? false : 'curl without HTTP2 support' }, async (t) => {
  const out = (await run('curl', ['-s', '-S', '--max-time', '10', '--http2', '-D', '-', `http://127.0.0.1:${port}/curl-h2c`])).stdout;
  t.match(out, /^HTTP\/1\.1 200 /, `answered over HTTP/1.1: ${JSON.stringify(out.slice(0, 120))}`);
  t.match(out, /"url":"\/curl-h2c"/);
  t.notMatch(out, /"upgrade"/, 'no Upgrade reached the upstream');
});

t.test('a TLS listener tunnels too (wss)', async (t) => {
  const ws = await new Promise<WebSocket>((resolve, reject) => {
    const tlsOptions = { ca: readFileSync(pki.file('ca.pem')), servername: 'remora.test' }; // passed on to tls.connect
    const c = new WebSocket(`wss://127.0.0.1:${remora.ports.secure}/secure`, tlsOptions);
    c.once('open', () => resolve(c));
    c.once('error', reject);
  });
  ws.send('over tls');
  t.equal((await nextMessage(ws)).data.toString(), 'over tls');
  await closeClean(ws);
  t.equal(seenHeads[seenHeads.length - 1]['x-forwarded-proto'], 'https');
});

t.test('the idle timeout closes a silent tunnel', async (t) => {
  const ws = await open('/quiet', { listenerPort: remora.ports.idle });
  const started = Date.now();
  const c = await closed(ws);
  const ms = Date.now() - started;
  t.equal(c.code, 1006, 'closed without a close frame');
  t.ok(ms >= 300 && ms < 3000, `closed after ${ms} ms (idle_timeout_ms 400)`);
  await waitUntil('idle_timeout counted', async () => /^listener\.idle\.idle_timeout: [1-9]/m.test((await admin(remora.adminPort, '/stats')).text));
});

t.test('stats and the access log', async (t) => {
  const before = (await admin(remora.adminPort, '/stats')).text;
  const upgrades = Number(/^listener\.main\.downstream_cx_upgrades_total: (\d+)$/m.exec(before)?.[1] ?? -1);
  t.ok(upgrades >= 200, `downstream_cx_upgrades_total counts upgrades (${upgrades})`);
  const ws = await open('/stats-check');
  ws.send(randomBytes(2000)); // incompressible: permessage-deflate is on
  await nextMessage(ws);
  const during = (await admin(remora.adminPort, '/stats')).text;
  t.match(during, /^listener\.main\.downstream_cx_upgrades_active: 1$/m, 'one tunnel open');
  await closeClean(ws);
  await waitUntil('tunnel closed in stats', async () =>
    /^listener\.main\.downstream_cx_upgrades_active: 0$/m.test((await admin(remora.adminPort, '/stats')).text));
  const after = (await admin(remora.adminPort, '/stats')).text;
  t.match(after, /^listener\.main\.downstream_cx_rx_bytes_total: [1-9]\d*$/m, 'bytes from clients');
  t.match(after, /^listener\.main\.downstream_cx_tx_bytes_total: [1-9]\d*$/m, 'bytes to clients');
  t.match(after, /^cluster\.ws\.upstream_cx_tx_bytes_total: [1-9]\d*$/m, 'cluster bytes sent');
  t.match(after, /^listener\.main\.downstream_rq_1xx: [1-9]\d*$/m, '101 counted under 1xx');
  t.match(after, /^listener\.main\.downstream_cx_length: count=[1-9]/m, 'tunnel durations recorded');
  const metrics = (await admin(remora.adminPort, '/metrics')).text;
  t.match(metrics, /^remora_downstream_upgrades_total\{listener="main"\} [1-9]/m, 'Prometheus counter');

  let line: { status: number; path: string; bytes_in: number; bytes_out: number; duration_us: number } | undefined;
  await waitUntil('the access log line of the tunnel', async () => {
    let text = '';
    try {
      text = readFileSync(accessLog, 'utf8');
    } catch {
      return false;
    }
    line = text.trim().split('\n').map((l) => JSON.parse(l) as typeof line).find((l) => l?.path === '/stats-check');
    return line !== undefined;
  }, 5000);
  t.equal(line?.status, 101, 'status 101');
  t.ok((line?.bytes_in ?? 0) > 1000 && (line?.bytes_out ?? 0) > 1000, `bytes both ways (${line?.bytes_in} in, ${line?.bytes_out} out)`);
  t.ok((line?.duration_us ?? 0) > 0, 'duration');
});

t.test('SIGTERM with an open websocket: the process exits within the drain timeout', async (t) => {
  const r = await startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    drain: { delay_ms: 0, timeout_ms: 1000 },
    listeners: [{
      name: 'main', address: '127.0.0.1', port: 0, upgrade_configs: [{ upgrade_type: 'websocket' }],
      virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'ws' } }] }],
    }],
    clusters: [cluster('ws', up.port)],
  });
  const ws = await open('/drain', { listenerPort: r.ports.main });
  const wsClosed = closed(ws);
  // A message each way first, so both directions have seen frames.
  ws.send('before the drain');
  t.equal((await nextMessage(ws)).data.toString(), 'before the drain');
  const upstreamCloses = closesSeen.length;
  const started = Date.now();
  const exit = await r.stop(10_000);
  const ms = Date.now() - started;
  t.equal(exit.code, 0, 'exit 0');
  t.ok(ms >= 900, `the open tunnel held the drain (${ms} ms)`);
  t.ok(ms < 5000, `exited within the drain timeout plus shutdown (${ms} ms)`);
  const c = await wsClosed;
  t.equal(c.code, 1001, `the client gets a close frame 1001 Going Away (got ${c.code})`);
  await waitUntil('the upstream saw the close', async () => closesSeen.length > upstreamCloses);
  t.equal(closesSeen.at(-1)?.code, 1001, `the upstream gets a (masked) close frame 1001 too (got ${JSON.stringify(closesSeen.at(-1))})`);
});
