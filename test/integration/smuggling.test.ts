// Request smuggling and desynchronisation, tried as an attacker would: raw bytes on a
// socket to a real Remora (2 workers), on a plain and on a TLS listener, with an upstream
// that records exactly what reached it (tests/helpers/recording-upstream.ts: every byte,
// and every request a real HTTP server took from them). Each case names what the client
// must get (statuses in order, and whether the connection closed) and the exact list of
// requests the upstream may receive. Cases are the ones seen against the uWS codec.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import t from 'tap';
import { TestPki } from '../helpers/certs.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';
import { startRemora } from '../helpers/remora.js';

const pki = new TestPki('smuggling');
t.teardown(() => pki.remove());
pki.ca('ca');
pki.leaf('server', 'ca', { dns: 'proxy.test' });

const upstream = await startRecordingUpstream();
t.teardown(() => upstream.close());

const routes = [
  { name: 'private', match: { prefix: '/private' }, direct_response: { status: 403, body: 'private' } },
  { name: 'all', match: { prefix: '/' }, route: { cluster: 'up' } },
];
const listener = (name: string, extra: Record<string, unknown>) => ({
  name,
  address: '127.0.0.1',
  port: 0,
  virtual_hosts: [{ name: 'all', domains: ['*'], routes }],
  ...extra,
});
const remora = await startRemora({
  workers: 2,
  admin: { address: '127.0.0.1', port: 0 },
  listeners: [
    listener('plain', {}),
    listener('tls', { tls: { cert_file: pki.file('server.pem'), key_file: pki.file('server.key') } }),
  ],
  clusters: [{ name: 'up', connect_timeout_ms: 500, endpoints: [{ address: '127.0.0.1', port: upstream.port }] }],
});
t.teardown(() => remora.stop());

interface Seen {
  statuses: number[];
  closed: boolean;
  text: string;
}

/** Opens a connection (plain or TLS), writes `parts` (the second after `gapMs`), and
 *  reads until the server closes it or nothing more came for a while. */
function exchange(kind: 'plain' | 'tls', parts: string[], gapMs: number): Promise<Seen> {
  return new Promise((resolve) => {
    const port = remora.ports[kind];
    const socket: net.Socket =
      kind === 'plain'
        ? net.connect(port, '127.0.0.1')
        : tls.connect({ port, host: '127.0.0.1', servername: 'proxy.test', ca: readFileSync(pki.file('ca.pem')) });
    let text = '';
    let done = false;
    let quiet: NodeJS.Timeout | null = null;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      if (quiet !== null) clearTimeout(quiet);
      clearTimeout(limit);
      socket.destroy();
      const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
      resolve({ statuses, closed, text });
    };
    const limit = setTimeout(() => finish(false), 3000);
    const settle = (): void => {
      if (quiet !== null) clearTimeout(quiet);
      quiet = setTimeout(() => finish(false), 700);
    };
    socket.once(kind === 'plain' ? 'connect' : 'secureConnect', () => {
      socket.write(Buffer.from(parts[0], 'latin1'));
      if (parts.length > 1) {
        setTimeout(() => {
          if (!done && !socket.destroyed) socket.write(Buffer.from(parts[1], 'latin1'));
          settle();
        }, gapMs);
      } else {
        settle();
      }
    });
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (parts.length === 1 || quiet !== null) settle();
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
  });
}

interface Case {
  name: string;
  parts: string[];
  gapMs?: number;
  /** Statuses the client must get, in order. */
  statuses: number[];
  /** Whether the connection must be closed by Remora afterwards. */
  closed: boolean;
  /** Requests the upstream must receive whole: "METHOD url body". */
  upstream: string[];
}

const POST = 'POST /a HTTP/1.1\r\nHost: a\r\n';
const CHUNKED = `${POST}Transfer-Encoding: chunked\r\n\r\n`;
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n';
const cases: Case[] = [
  // 1. Chunk trailers are trailer fields, not the next request.
  { name: 'trailer lines after the last chunk (same read)', parts: [`${CHUNKED}5\r\nhello\r\n0\r\nX:GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n`], statuses: [200], closed: false, upstream: ['POST /a hello'] },
  { name: 'trailer lines after the last chunk (0.5 s later)', parts: [`${CHUNKED}5\r\nhello\r\n0\r\n`, 'X:GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'], gapMs: 500, statuses: [200], closed: false, upstream: ['POST /a hello'] },
  // 2. Chunk extensions are skipped, never read as size digits.
  { name: 'chunk extension "1;a" is a 1-byte chunk', parts: [`${CHUNKED}1;a\r\nX\r\n0\r\n\r\nGET /victim HTTP/1.1\r\nHost: a\r\nCookie: s=1\r\n\r\n`], statuses: [200, 200], closed: false, upstream: ['POST /a X', 'GET /victim '] },
  { name: 'valid chunk extension with a value is served', parts: [`${CHUNKED}5;foo=bar\r\nhello\r\n0\r\n\r\n`], statuses: [200], closed: false, upstream: ['POST /a hello'] },
  // 3. A header with an empty name hides nothing: the head is refused.
  { name: 'empty header name', parts: [`${POST}: x\r\nContent-Length: 5\r\n\r\nhello${SMUGGLED}`], statuses: [400], closed: true, upstream: [] },
  // 4. A refused request stops the connection: the pipelined request is never read.
  { name: 'conflicting Content-Length, then a pipelined request', parts: [`${POST}Content-Length: 5\r\nContent-Length: 48\r\n\r\nhello${SMUGGLED}`], statuses: [400], closed: true, upstream: [] },
  { name: 'duplicate Host, then a pipelined request', parts: [`GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n${SMUGGLED}`], statuses: [400], closed: true, upstream: [] },
  { name: 'Transfer-Encoding: identity, then a pipelined request', parts: [`${POST}Transfer-Encoding: identity\r\n\r\n${SMUGGLED}`], statuses: [501], closed: true, upstream: [] },
  { name: 'Transfer-Encoding: chunked, identity', parts: [`${POST}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${SMUGGLED}`], statuses: [501], closed: true, upstream: [] },
  { name: 'Content-Length and Transfer-Encoding together', parts: [`${POST}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`], statuses: [400], closed: true, upstream: [] },
  // 5. Chunk sizes are strict.
  { name: 'leading space in a chunk size', parts: [`${CHUNKED} 5\r\nhello\r\n0\r\n\r\n${SMUGGLED}`], statuses: [400], closed: true, upstream: [] },
  { name: 'no CRLF after chunk data', parts: [`${CHUNKED}5\r\nhelloXX0\r\n\r\n${SMUGGLED}`], statuses: [400], closed: true, upstream: [] },
  { name: 'junk after a chunk size ("5 xyz")', parts: [`${CHUNKED}5 xyz\r\nhello\r\n0\r\n\r\n${SMUGGLED}`], statuses: [400], closed: true, upstream: [] },
  { name: 'non-hex chunk size "g"', parts: [`${CHUNKED}g\r\nhello\r\n0\r\n\r\n${SMUGGLED}`], statuses: [400], closed: true, upstream: [] },
  { name: 'non-hex chunk size "@"', parts: [`${CHUNKED}@\r\nhello\r\n0\r\n\r\n${SMUGGLED}`], statuses: [400], closed: true, upstream: [] },
  { name: 'bare LF after a chunk size', parts: [`${CHUNKED}5\nhello\r\n0\r\n\r\n${SMUGGLED}`], statuses: [400], closed: true, upstream: [] },
  // 6. What used to get no answer at all gets a definite one.
  { name: 'HTTP/1.0 request', parts: ['GET /ten HTTP/1.0\r\n\r\n'], statuses: [200], closed: true, upstream: ['GET /ten '] },
  { name: 'missing Host', parts: [`GET /x HTTP/1.1\r\n\r\n${SMUGGLED}`], statuses: [400], closed: true, upstream: [] },
  { name: 'absolute-form target', parts: ['GET http://b.test/abs?q=1 HTTP/1.1\r\nHost: a\r\n\r\n'], statuses: [200], closed: false, upstream: ['GET /abs?q=1 '] },
  { name: 'obs-fold', parts: [`GET /x HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n${SMUGGLED}`], statuses: [400], closed: true, upstream: [] },
  { name: 'whitespace before the colon', parts: [`GET /x HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello${SMUGGLED}`], statuses: [400], closed: true, upstream: [] },
  { name: 'bare CR line ending', parts: [`GET /x HTTP/1.1\rHost: a\r\n\r\n${SMUGGLED}`], statuses: [400], closed: true, upstream: [] },
  { name: 'control character in a value', parts: [`GET /x HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n${SMUGGLED}`], statuses: [400], closed: true, upstream: [] },
  { name: '120 headers (limit 100)', parts: [`GET /x HTTP/1.1\r\nHost: a\r\n${Array.from({ length: 120 }, (_, i) => `X-${i}: y\r\n`).join('')}\r\n${SMUGGLED}`], statuses: [431], closed: true, upstream: [] },
  // 7. Invalid but once forwarded.
  { name: 'duplicate identical Host', parts: ['GET /x HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n'], statuses: [400], closed: true, upstream: [] },
  { name: 'Host with userinfo', parts: ['GET /x HTTP/1.1\r\nHost: user@a\r\n\r\n'], statuses: [400], closed: true, upstream: [] },
  { name: 'Host with a path', parts: ['GET /x HTTP/1.1\r\nHost: a/b\r\n\r\n'], statuses: [400], closed: true, upstream: [] },
  { name: 'empty Host', parts: ['GET /x HTTP/1.1\r\nHost: \r\n\r\n'], statuses: [400], closed: true, upstream: [] },
  { name: 'two hosts in one Host', parts: ['GET /x HTTP/1.1\r\nHost: a, b\r\n\r\n'], statuses: [400], closed: true, upstream: [] },
  { name: 'non-ASCII bytes in the target', parts: ['GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n'], statuses: [400], closed: true, upstream: [] },
  { name: 'overlong UTF-8 in the target', parts: ['GET /a\xc0\xafb HTTP/1.1\r\nHost: a\r\n\r\n'], statuses: [400], closed: true, upstream: [] },
  { name: 'DEL in the target', parts: ['GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n'], statuses: [400], closed: true, upstream: [] },
  // 8. Routing sees the normalised path, so "no route" and per-route policy cannot be
  // walked around with dot segments.
  { name: 'dot segments into a protected prefix', parts: ['GET /public/../private/x HTTP/1.1\r\nHost: a\r\n\r\n'], statuses: [403], closed: false, upstream: [] },
  { name: 'encoded dot segments into a protected prefix', parts: ['GET /public/%2e%2E/private/x HTTP/1.1\r\nHost: a\r\n\r\n'], statuses: [403], closed: false, upstream: [] },
  { name: 'dot segments are resolved before forwarding', parts: ['GET /public/./a/../b%7e HTTP/1.1\r\nHost: a\r\n\r\n'], statuses: [200], closed: false, upstream: ['GET /public/b~ '] },
];

for (const kind of ['plain', 'tls'] as const) {
  t.test(`${kind} listener`, async (t) => {
    for (const c of cases) {
      upstream.clear();
      const seen = await exchange(kind, c.parts, c.gapMs ?? 0);
      // Whatever the upstream will get has arrived by the time the client saw its answer;
      // a short wait catches a smuggled request forwarded late.
      await new Promise((r) => setTimeout(r, 100));
      // Pipelined requests go upstream on separate connections: their order may differ.
      const got = upstream.requests.map((r) => `${r.method} ${r.url} ${r.body}`).sort();
      t.same(seen.statuses, c.statuses, `${c.name}: expected statuses ${JSON.stringify(c.statuses)}; client got ${JSON.stringify(seen.text.slice(0, 400))}`);
      t.equal(seen.closed, c.closed, `${c.name}: expected the connection ${c.closed ? 'closed' : 'kept open'}; it was ${seen.closed ? 'closed' : 'open'}`);
      t.same(got, [...c.upstream].sort(), `${c.name}: expected the upstream to receive ${JSON.stringify(c.upstream)}; it received ${JSON.stringify(got)} (raw: ${JSON.stringify(Buffer.concat(upstream.raw).toString('latin1').slice(0, 600))})`);
    }
  });
}

t.test('the absolute-form authority replaces Host upstream', async (t) => {
  upstream.clear();
  const seen = await exchange('plain', ['GET http://b.test:8080/abs HTTP/1.1\r\nHost: a\r\n\r\n'], 0);
  t.same(seen.statuses, [200], 'expected 200');
  const hosts = upstream.requests[0]?.headers.filter((_, i, h) => i % 2 === 1 && h[i - 1].toLowerCase() === 'host');
  t.same(hosts, ['b.test:8080'], `expected the upstream to see Host b.test:8080 only; saw ${JSON.stringify(upstream.requests[0]?.headers)}`);
});
