// readClientHello (src/tls/client-hello.ts) on ClientHellos captured from real clients at
// test time (Node's tls.connect and `openssl s_client` against a TCP server that keeps the
// first bytes): SNI and ALPN read, fed one byte at a time ('more' until the last byte), the
// handshake split over two TLS records, no SNI, plain text, garbage after 0x16.

import { spawn } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import t from 'tap';
import { readClientHello, type ClientHelloResult } from '../../src/tls/client-hello.js';

/** The first TLS record a client sends to a server that never answers. */
async function capture(connect: (port: number) => () => void): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  let stop = (): void => {};
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no complete TLS record within 10 s')), 10_000);
      server.on('connection', (s) => {
        let buf = Buffer.alloc(0);
        s.on('data', (d: Buffer) => {
          buf = Buffer.concat([buf, d]);
          if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
            clearTimeout(timer);
            resolve(buf.subarray(0, 5 + buf.readUInt16BE(3)));
            s.destroy();
          }
        });
        s.on('error', () => {});
      });
      stop = connect(port);
    });
  } finally {
    stop();
    server.close();
  }
}

function nodeHello(opts: tls.ConnectionOptions): Promise<Buffer> {
  return capture((port) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
    s.on('error', () => {});
    return () => s.destroy();
  });
}

function opensslHello(args: string[]): Promise<Buffer> {
  return capture((port) => {
    const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], { stdio: ['pipe', 'ignore', 'ignore'] });
    child.on('error', () => {});
    return () => {
      if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    };
  });
}

const hellos = {
  node: await nodeHello({ servername: 'Api.Example.COM', ALPNProtocols: ['h2', 'http/1.1'] }),
  nodeNoSni: await nodeHello({ ALPNProtocols: ['http/1.1'] }),
  nodeTls12: await nodeHello({ servername: 'old.example', maxVersion: 'TLSv1.2' }),
  openssl: await opensslHello(['-servername', 'x.b.example', '-alpn', 'h2,http/1.1']),
  opensslNoSni: await opensslHello(['-noservername']),
};

const tlsResult = (serverName: string, alpn: string[]): ClientHelloResult => ({ kind: 'tls', serverName, alpn });

/** What each captured hello must read as. */
const expected: Record<keyof typeof hellos, ClientHelloResult> = {
  node: tlsResult('api.example.com', ['h2', 'http/1.1']),
  nodeNoSni: tlsResult('', ['http/1.1']),
  nodeTls12: tlsResult('old.example', []),
  openssl: tlsResult('x.b.example', ['h2', 'http/1.1']),
  opensslNoSni: tlsResult('', []),
};

/** Re-frames a single-record ClientHello as two records, the handshake split at `at`. */
function twoRecords(hello: Buffer, at: number): Buffer {
  const body = hello.subarray(5);
  const record = (fragment: Buffer): Buffer => {
    const header = Buffer.from([0x16, hello[1], hello[2], 0, 0]);
    header.writeUInt16BE(fragment.length, 3);
    return Buffer.concat([header, fragment]);
  };
  return Buffer.concat([record(body.subarray(0, at)), record(body.subarray(at))]);
}

/** Feeds `buf` as a reader would (the bytes so far), one byte more each time: the first
 *  length at which the answer is not 'more', and that answer. */
function byteByByte(buf: Buffer): { at: number; result: ClientHelloResult } {
  for (let n = 0; n < buf.length; n++) {
    const r = readClientHello(buf.subarray(0, n));
    if (r.kind !== 'more') return { at: n, result: r };
  }
  return { at: buf.length, result: readClientHello(buf) };
}

t.test('real ClientHellos: SNI (lower-cased) and ALPN in the client\'s order', async (t) => {
  for (const [name, hello] of Object.entries(hellos) as [keyof typeof hellos, Buffer][]) {
    t.equal(hello[0], 0x16, `${name}: captured a handshake record (first byte 0x${hello[0].toString(16)})`);
    t.strictSame(readClientHello(hello), expected[name], `${name}: expected ${JSON.stringify(expected[name])}, got ${JSON.stringify(readClientHello(hello))}`);
  }
});

t.test('one byte at a time: \'more\' until the last byte, then the same answer', async (t) => {
  for (const [name, hello] of Object.entries(hellos) as [keyof typeof hellos, Buffer][]) {
    const { at, result } = byteByByte(hello);
    t.equal(at, hello.length, `${name}: 'more' for every prefix shorter than ${hello.length} bytes (first answer at ${at}: ${JSON.stringify(result)})`);
    t.strictSame(result, expected[name], `${name}: complete → ${JSON.stringify(expected[name])}`);
  }
});

t.test('the ClientHello split over two TLS records', async (t) => {
  for (const [name, hello] of Object.entries(hellos) as [keyof typeof hellos, Buffer][]) {
    const bodyLength = hello.length - 5;
    // Inside the 4-byte handshake header, just after it, in the middle, one byte before the end.
    for (const at of [2, 4, 40, Math.floor(bodyLength / 2), bodyLength - 1]) {
      const split = twoRecords(hello, at);
      t.strictSame(readClientHello(split), expected[name], `${name} split at ${at}: expected ${JSON.stringify(expected[name])}, got ${JSON.stringify(readClientHello(split))}`);
      const first = readClientHello(split.subarray(0, 5 + at));
      t.equal(first.kind, 'more', `${name} split at ${at}: the first record alone is 'more' (got ${first.kind})`);
    }
    const split = twoRecords(hello, Math.floor(bodyLength / 2));
    const { at, result } = byteByByte(split);
    t.equal(at, split.length, `${name} in two records: 'more' until its last byte (first answer at ${at} of ${split.length})`);
    t.strictSame(result, expected[name], `${name} in two records, byte by byte: same answer`);
  }
  // Bytes after the ClientHello (the client's next record, early data) change nothing.
  const trailing = Buffer.concat([hellos.node, Buffer.from([0x14, 0x03, 0x03, 0x00, 0x01, 0x01])]);
  t.strictSame(readClientHello(trailing), expected.node, 'a record after the ClientHello is not read');
});

t.test('not TLS: plain text is raw_buffer at once', async (t) => {
  for (const text of ['GET / HTTP/1.1\r\nHost: a\r\n\r\n', 'G', '*1\r\n$4\r\nPING\r\n', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n', 'SSH-2.0-OpenSSH_9.2\r\n']) {
    const r = readClientHello(Buffer.from(text, 'latin1'));
    t.strictSame(r, { kind: 'raw' }, `${JSON.stringify(text.slice(0, 12))}: expected raw, got ${JSON.stringify(r)}`);
  }
  t.strictSame(readClientHello(Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01])), { kind: 'raw' }, 'an SSLv2-style hello is not read as TLS');
  t.strictSame(readClientHello(Buffer.alloc(0)), { kind: 'more' }, 'no bytes yet: more');
});

t.test('0x16 followed by garbage', async (t) => {
  const cases: [string, Buffer, ClientHelloResult['kind']][] = [
    ['0x16 alone', Buffer.from([0x16]), 'more'],
    ['0x16 0x03', Buffer.from([0x16, 0x03]), 'more'],
    ['0x16 then text', Buffer.concat([Buffer.from([0x16]), Buffer.from('GET / HTTP/1.1\r\n')]), 'raw'],
    ['record version 3.9', Buffer.from([0x16, 0x03, 0x09, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00]), 'raw'],
    ['record version 2.1', Buffer.from([0x16, 0x02, 0x01, 0x00, 0x04]), 'raw'],
  ];
  for (const [what, buf, kind] of cases) {
    const r = readClientHello(buf);
    t.equal(r.kind, kind, `${what}: expected ${kind}, got ${JSON.stringify(r)}`);
  }
  const unknown = { kind: 'tls', serverName: '', alpn: [] };
  // A handshake record that holds no readable ClientHello is still TLS, with nothing known.
  const serverHello = Buffer.from([0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00]);
  t.strictSame(readClientHello(serverHello), unknown, 'a ServerHello (type 2): tls, nothing known');
  const truncated = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x06, 0x01, 0x00, 0x00, 0x02, 0x03, 0x03]);
  t.strictSame(readClientHello(truncated), unknown, 'a ClientHello whose body ends after client_version: tls, nothing known');
  const alert = Buffer.concat([twoRecords(hellos.node, 40).subarray(0, 45), Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])]);
  t.strictSame(readClientHello(alert), unknown, 'an alert record where the ClientHello\'s second fragment should be: tls, nothing known');
  const huge = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x01, 0x00, 0x01]);
  t.strictSame(readClientHello(huge), unknown, 'a ClientHello announcing 64 KiB + 1 is not waited for');
  // Random garbage after a valid record header: whatever it is, an answer and never a throw.
  let seed = 7;
  const rand = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
  for (let i = 0; i < 300; i++) {
    const body = Buffer.from(Array.from({ length: 4 + (i % 200) }, rand));
    body[0] = 0x01;
    const rec = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, body.length >> 8, body.length & 0xff]), body]);
    let r: ClientHelloResult | Error;
    try {
      r = readClientHello(rec);
    } catch (err) {
      r = err as Error;
    }
    if (r instanceof Error || !['more', 'tls'].includes(r.kind)) {
      t.fail(`random ClientHello body #${i} (${rec.toString('hex')}): expected tls or more, got ${r instanceof Error ? r.stack : JSON.stringify(r)}`);
      return;
    }
  }
  t.pass('300 random ClientHello bodies: an answer each, no exception');
});
