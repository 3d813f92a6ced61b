// The PROXY protocol on a listener (`proxy_protocol: true`): v1 text and v2 binary headers
// written by hand and by HAProxy (`send-proxy`, `send-proxy-v2`), the named client address
// reaching the upstream in x-forwarded-for, HTTP/1.1 and h2c after the header (on an auto
// and an HTTP/2-only listener), and a
// connection without a valid header closed before anything is forwarded.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import tls from 'node:tls';
import { freePort } from '../../src/main/ports.js';
import { TestPki } from '../helpers/certs.js';
import { rawExchange, request, startRemora, startUpstream, waitUntil } from '../helpers/remora.js';

/** The upstream answers with the x-forwarded-for it got; `seen` counts requests. */
const seen: string[] = [];
const up = await startUpstream((req, res) => {
  seen.push(String(req.headers['x-forwarded-for']));
  res.end(`xff=${req.headers['x-forwarded-for']}`);
});
t.teardown(() => up.close());
const pki = new TestPki('proxy-protocol');
t.teardown(() => pki.remove());
pki.ca('ca');
pki.leaf('remora', 'ca', { dns: 'remora.test', usage: 'serverAuth' });

const remora = await startRemora({
  workers: 1,
  admin: { address: '127.0.0.1', port: 0 },
  listeners: [{
    name: 'main', address: '127.0.0.1', port: 0, proxy_protocol: true, request_headers_timeout_ms: 1000,
    virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }] }],
  }, {
    name: 'h2only', address: '127.0.0.1', port: 0, proxy_protocol: true, codec_type: 'http2',
    virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }] }],
  }, {
    name: 'tls', address: '127.0.0.1', port: 0, proxy_protocol: true, request_headers_timeout_ms: 1000,
    tls: { cert_file: pki.file('remora.pem'), key_file: pki.file('remora.key') },
    virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }] }],
  }],
  clusters: [{ name: 'up', endpoints: [{ address: '127.0.0.1', port: up.port }] }],
});
t.teardown(() => remora.stop());
// A failure here has been seen once under CI load and not reproduced: leave Remora's log
// with it.
t.teardown(() => {
  if (!t.passing()) process.stderr.write(`proxy-protocol.test: Remora's output (last 6000 characters):\n${remora.output().slice(-6000)}\n`);
});
const port = remora.ports.main;

/** A v2 header (PROXY command, TCP over IPv4) for `src`:`srcPort` → 127.0.0.1:`dstPort`. */
function v2Header(src: string, srcPort: number, dstPort: number): Buffer {
  const b = Buffer.alloc(16 + 12);
  Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]).copy(b, 0);
  b[12] = 0x21; // version 2, PROXY
  b[13] = 0x11; // AF_INET, STREAM
  b.writeUInt16BE(12, 14);
  src.split('.').forEach((o, i) => (b[16 + i] = Number(o)));
  [127, 0, 0, 1].forEach((o, i) => (b[20 + i] = o));
  b.writeUInt16BE(srcPort, 24);
  b.writeUInt16BE(dstPort, 26);
  return b;
}

function rawBytes(data: Buffer, ms = 2000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(data));
    let text = '';
    const timer = setTimeout(() => finish(false), ms);
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
  });
}

t.test('v1: the header\'s source address is the client\'s', async (t) => {
  const r = await rawExchange(port, 'PROXY TCP4 203.0.113.7 127.0.0.1 51000 80\r\nGET /v1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  t.match(r.text, /^HTTP\/1\.1 200 [^]*xff=203\.0\.113\.7$/, `expected 200 with x-forwarded-for 203.0.113.7; got ${JSON.stringify(r.text.slice(-80))}`);
});

t.test('TLS listener: the header before the ClientHello, in the same segment or not; HTTP/1.1 and h2 after the handshake', async (t) => {
  const through = (header: string | Buffer, alpn: string[], sameSegment: boolean): Promise<string> => new Promise((resolve, reject) => {
    const raw = net.connect(remora.ports.tls, '127.0.0.1', () => {
      // Corked: the header and the ClientHello leave in one write.
      if (sameSegment) raw.cork();
      raw.write(header);
      const conn = tls.connect({ socket: raw, servername: 'remora.test', ca: readFileSync(pki.file('ca.pem')), ALPNProtocols: alpn }, () => {
        if (conn.alpnProtocol === 'h2') {
          const session = http2.connect('https://remora.test', { createConnection: () => conn });
          const stream = session.request({ ':path': '/tls-h2' });
          let body = '';
          stream.on('data', (d: Buffer) => (body += d.toString()));
          stream.on('end', () => { session.close(); resolve(`h2 ${body}`); });
          stream.on('error', reject);
          return;
        }
        conn.write('GET /tls HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
        let text = '';
        conn.on('data', (d: Buffer) => (text += d.toString('latin1')));
        conn.on('close', () => resolve(text));
      });
      if (sameSegment) process.nextTick(() => raw.uncork());
      conn.on('error', reject);
    });
    raw.on('error', reject);
  });
  const v1 = await through('PROXY TCP4 192.0.2.44 127.0.0.1 50000 443\r\n', ['http/1.1'], true);
  t.match(v1, /^HTTP\/1\.1 200 [^]*xff=192\.0\.2\.44$/, `expected 200 with x-forwarded-for 192.0.2.44; got ${JSON.stringify(v1.slice(-80))}`);
  const v2 = await through(v2Header('198.51.100.20', 40001, 443), ['http/1.1'], false);
  t.match(v2, /xff=198\.51\.100\.20$/, `expected x-forwarded-for 198.51.100.20 from a v2 header; got ${JSON.stringify(v2.slice(-80))}`);
  const h2 = await through('PROXY TCP4 192.0.2.45 127.0.0.1 50001 443\r\n', ['h2'], false);
  t.equal(h2, 'h2 xff=192.0.2.45', 'h2 by ALPN after the header: the header\'s source in x-forwarded-for');
  const none = await new Promise<boolean>((resolve) => {
    const conn = tls.connect({ port: remora.ports.tls, host: '127.0.0.1', servername: 'remora.test', ca: readFileSync(pki.file('ca.pem')) }, () => resolve(true));
    conn.on('error', () => resolve(false));
    conn.on('close', () => resolve(false));
  });
  t.equal(none, false, 'a TLS client without a PROXY header: no handshake completes');
});

t.test('v2 (binary): the same, and IPv6 sources through v1', async (t) => {
  const r = await rawBytes(Buffer.concat([v2Header('198.51.100.9', 40000, 80), Buffer.from('GET /v2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')]));
  t.match(r.text, /xff=198\.51\.100\.9$/, `expected x-forwarded-for 198.51.100.9; got ${JSON.stringify(r.text.slice(-60))}`);
  const six = await rawExchange(port, 'PROXY TCP6 2001:db8::7 ::1 51000 80\r\nGET /v6 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  t.match(six.text, /xff=2001:db8::7$/, `expected x-forwarded-for 2001:db8::7; got ${JSON.stringify(six.text.slice(-60))}`);
});

async function h2AfterHeader(t: Test, listenerPort: number, source: string): Promise<string> {
  const socket = net.connect(listenerPort, '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write(`PROXY TCP4 ${source} 127.0.0.1 5000 80\r\n`);
  const session = http2.connect(`http://127.0.0.1:${listenerPort}`, { createConnection: () => socket });
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  return new Promise<string>((resolve, reject) => {
    const req = session.request({ ':path': '/h2' });
    let text = '';
    let status = 0;
    req.on('response', (headers) => (status = Number(headers[':status'])));
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => resolve(status === 200 ? text : `status ${status}: ${text}`));
    req.on('error', reject);
    req.end();
  });
}

t.test('h2c after the header, on a listener serving both versions and on an HTTP/2-only one', async (t) => {
  t.equal(await h2AfterHeader(t, port, '192.0.2.44'), 'xff=192.0.2.44', 'codec_type auto: an HTTP/2 request carries the PROXY source');
  t.equal(await h2AfterHeader(t, remora.ports.h2only, '192.0.2.45'), 'xff=192.0.2.45', 'codec_type http2: the same');
});

t.test('no header, a malformed one, or none in time: closed, nothing forwarded', async (t) => {
  const before = seen.length;
  for (const [what, data] of [
    ['plain HTTP without a header', 'GET /none HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a malformed v1 header', 'PROXY TCP4 not-an-ip 127.0.0.1 1 2\r\nGET /bad HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a v1 line without its end', `PROXY TCP4 ${'1'.repeat(120)}`],
  ]) {
    const r = await rawExchange(port, data, 3000);
    t.ok(r.closed, `${what}: the connection is closed`);
    t.equal(r.text, '', `${what}: nothing is answered (got ${JSON.stringify(r.text.slice(0, 60))})`);
  }
  const silent = await rawExchange(port, '', 3000);
  t.ok(silent.closed, 'a client that sends nothing is dropped after request_headers_timeout_ms');
  t.equal(seen.length, before, 'the upstream saw none of them');
});

t.test('HAProxy in front with send-proxy and send-proxy-v2', { skip: spawnable('haproxy') ? false : 'haproxy not installed' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'remora-proxy-protocol-'));
  const children: ChildProcess[] = [];
  t.teardown(() => {
    for (const c of children) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });
  for (const mode of ['send-proxy', 'send-proxy-v2']) {
    const front = await freePort();
    const cfg = join(dir, `${mode}.cfg`);
    writeFileSync(cfg, `global\n  maxconn 100\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n`
      + `frontend fe\n  bind 127.0.0.1:${front}\n  default_backend be\nbackend be\n  server remora 127.0.0.1:${port} ${mode}\n`);
    const child = spawn('haproxy', ['-f', cfg, '-db'], { stdio: 'ignore' });
    children.push(child);
    await waitUntil(`haproxy (${mode}) listening`, async () => (await request(front, { path: `/${mode}`, agent: false }).catch(() => null))?.status === 200);
    const r = await request(front, { path: `/${mode}/check`, agent: false });
    t.equal(r.status, 200, `${mode}: a request through HAProxy is served`);
    t.equal(r.text, 'xff=127.0.0.1', `${mode}: the client address HAProxy saw (127.0.0.1) reaches the upstream`);
  }
});

function spawnable(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, cmd)));
}
