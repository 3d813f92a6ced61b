// Request mirroring (request_mirror_policies) through the real proxy: the copy reaches
// the shadow cluster with the same method, path, query, headers and body and `-shadow`
// added to the Host; the client's answer comes from the route's own cluster and never
// waits for the copy or suffers from it (a shadow that never answers, one whose endpoint
// is down); a copy whose client request was cut is cut too; percent 0 copies nothing.

import t from 'tap';
import net from 'node:net';
import { deadPort } from '../helpers/dead-port.js';
import { namedUpstream, request, startRemora, startUpstream } from '../helpers/remora.js';

interface Seen {
  method: string;
  url: string;
  host: string;
  requestId: string;
  body: string;
  complete: boolean;
}

/** An upstream that records each request (body included) and answers after `delayMs`
 *  (never, with -1). */
async function recordingUpstream(delayMs: number) {
  const seen: Seen[] = [];
  const waiters: (() => void)[] = [];
  const up = await startUpstream((req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (d: string) => (body += d));
    const record = (complete: boolean): void => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', host: req.headers.host ?? '', requestId: String(req.headers['x-request-id'] ?? ''), body, complete });
      for (const w of waiters.splice(0)) w();
    };
    req.on('aborted', () => record(false));
    req.on('end', () => {
      record(true);
      if (delayMs < 0) return;
      setTimeout(() => {
        res.writeHead(200);
        res.end('shadow answer');
      }, delayMs);
    });
  });
  const next = (n: number, ms = 5000): Promise<Seen[]> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`expected ${n} mirrored request(s), saw ${seen.length}: ${JSON.stringify(seen)}`)), ms);
      const check = (): void => {
        if (seen.length >= n) {
          clearTimeout(timer);
          resolve(seen.slice(0, n));
        } else waiters.push(check);
      };
      check();
    });
  return { ...up, seen, next };
}

t.test('mirrored requests', async (t) => {
  const main = await namedUpstream('main');
  const shadow = await recordingUpstream(0);
  const silent = await recordingUpstream(-1);
  const dead = await deadPort();
  const remora = await startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [{
      name: 'main', address: '127.0.0.1', port: 0,
      virtual_hosts: [{ name: 'all', domains: ['*'], routes: [
        { match: { prefix: '/copy/' }, route: { cluster: 'main', request_mirror_policies: [{ cluster: 'shadow' }] } },
        { match: { prefix: '/silent/' }, route: { cluster: 'main', timeout_ms: 60_000, request_mirror_policies: [{ cluster: 'silent' }, { cluster: 'dead' }] } },
        { match: { prefix: '/never/' }, route: { cluster: 'main', request_mirror_policies: [{ cluster: 'shadow', percent: 0 }] } },
      ] }],
    }],
    clusters: [
      { name: 'main', endpoints: [{ address: '127.0.0.1', port: main.port }] },
      { name: 'shadow', endpoints: [{ address: '127.0.0.1', port: shadow.port }] },
      { name: 'silent', endpoints: [{ address: '127.0.0.1', port: silent.port }] },
      { name: 'dead', endpoints: [{ address: '127.0.0.1', port: dead }] },
    ],
  });
  t.teardown(async () => {
    await remora.stop();
    await Promise.all([main.close(), shadow.close(), silent.close()]);
  });
  const port = remora.ports.main;

  const get = await request(port, { path: '/copy/a?b=1', headers: { host: 'shop.example:8080', 'x-request-id': 'rid-1' } });
  t.same([get.status, get.text], [200, 'main'], 'the client is answered by the route\'s cluster');
  const [first] = await shadow.next(1);
  t.same(first, { method: 'GET', url: '/copy/a?b=1', host: 'shop.example-shadow:8080', requestId: 'rid-1', body: '', complete: true },
    'the copy: same method, path, query and request id; -shadow before the Host\'s port');

  const body = 'x'.repeat(200_000);
  const post = await request(port, { method: 'POST', path: '/copy/upload', headers: { host: 'shop.example' }, body });
  t.same([post.status, post.text], [200, 'main'], 'a POST of 200 kB is answered by the route\'s cluster');
  const [, second] = await shadow.next(2);
  t.same([second.method, second.host, second.body.length, second.body === body, second.complete], ['POST', 'shop.example-shadow', body.length, true, true], 'the whole body is copied');

  const started = Date.now();
  const quick = await request(port, { path: '/silent/x', headers: { host: 'shop.example' } });
  t.same([quick.status, quick.text], [200, 'main'], 'a shadow that never answers and one that is down change nothing for the client');
  t.ok(Date.now() - started < 2000, `the client did not wait for the copies (${Date.now() - started} ms)`);
  await silent.next(1);

  // A client request cut mid-body: the copy is cut too (the shadow sees it aborted).
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((r) => sock.once('connect', () => r()));
  sock.write('POST /copy/cut HTTP/1.1\r\nhost: shop.example\r\ncontent-length: 100\r\n\r\npartial');
  await new Promise((r) => setTimeout(r, 300));
  sock.destroy();
  const [, , cut] = await shadow.next(3);
  t.same([cut.url, cut.complete], ['/copy/cut', false], 'the copy of a request cut mid-body is cut, never completed');

  for (let i = 0; i < 5; i++) t.equal((await request(port, { path: '/never/x' })).text, 'main', `request ${i + 1} on a percent-0 route answered`);
  await new Promise((r) => setTimeout(r, 200));
  t.equal(shadow.seen.filter((s) => s.url.startsWith('/never/')).length, 0, 'percent 0 copies nothing');
});
