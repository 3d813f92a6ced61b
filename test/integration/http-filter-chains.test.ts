// HTTPS filter chains picked by server name (`http_filter_chains`), in a real Remora
// process: each chain serves its own certificate and routes its connections by its own
// table, whatever their Host; a name no chain lists (or no name at all) gets the
// listener's own certificate and routes; without those, such a handshake is refused and
// a client without SNI is closed. HTTP/2 (ALPN h2) and curl pick the same way. Each chain
// verifies client certificates against its own CAs. A reload that changes a chain's
// routes keeps the server and its open connections.

import { readFileSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import t from 'tap';
import { TestPki } from '../helpers/certs.js';
import { admin, namedUpstream, startRemora, waitUntil } from '../helpers/remora.js';
import { runProgram } from '../helpers/tcp-peers.js';

const pki = new TestPki('http-filter-chains');
t.teardown(() => pki.remove());
pki.ca('ca');
pki.leaf('default.example', 'ca', { dns: 'default.example' });
pki.leaf('foo.example', 'ca', { dns: 'foo.example' });
pki.leaf('bar.example', 'ca', { dns: '*.bar.example' });
pki.leaf('client', 'ca', { uri: 'spiffe://test/client' });
pki.ca('other-ca');
pki.leaf('stranger', 'other-ca', { uri: 'spiffe://test/stranger' });
const ca = readFileSync(pki.file('ca.pem'));
const pair = (name: string) => ({ cert_file: pki.file(`${name}.pem`), key_file: pki.file(`${name}.key`) });
const everything = (cluster: string) => [{ name: `${cluster}-vh`, domains: ['*'], routes: [{ name: `${cluster}-all`, match: { prefix: '/' }, route: { cluster } }] }];

/** The certificate CN and the body of `GET /` with `host`, over a connection that names
 *  `servername` (none: no SNI); or the error. */
function get(port: number, servername: string | undefined, host: string, client?: 'client' | 'stranger'): Promise<{ cn: string; status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = https.get({
      host: '127.0.0.1', port, path: '/', headers: { host }, ca, agent: false, checkServerIdentity: () => undefined,
      servername: servername ?? '',
      ...(client !== undefined ? { cert: readFileSync(pki.file(`${client}.pem`)), key: readFileSync(pki.file(`${client}.key`)) } : {}),
    }, (res) => {
      const cn = String((res.socket as tls.TLSSocket).getPeerCertificate().subject?.CN ?? '');
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ cn, status: res.statusCode ?? 0, body }));
    });
    req.on('error', (err: Error & { code?: string }) => resolve({ error: err.code ?? err.message }));
  });
}

t.test('each chain its certificate and its routes; the listener\'s own for other names', async (t) => {
  const ups = await Promise.all(['default', 'foo', 'bar'].map((n) => namedUpstream(n)));
  const remora = await startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [{
      name: 'https', address: '127.0.0.1', port: 0,
      tls: pair('default.example'),
      virtual_hosts: everything('default'),
      http_filter_chains: [
        { name: 'foo', server_names: ['foo.example'], tls: pair('foo.example'), virtual_hosts: everything('foo') },
        { name: 'bar', server_names: ['*.bar.example'], tls: pair('bar.example'), virtual_hosts: everything('bar') },
      ],
    }],
    clusters: ['default', 'foo', 'bar'].map((name, i) => ({ name, endpoints: [{ address: '127.0.0.1', port: ups[i].port }] })),
  });
  t.teardown(async () => {
    await remora.stop();
    await Promise.all(ups.map((u) => u.close()));
  });
  const port = remora.ports.https;
  const seen = [];
  for (const [sni, host] of [['foo.example', 'foo.example'], ['foo.example', 'x.bar.example'], ['x.bar.example', 'x.bar.example'], ['a.b.bar.example', 'foo.example'],
    ['other.example', 'foo.example'], [undefined, 'foo.example'], ['bar.example', 'bar.example']] as const) {
    seen.push([sni ?? '(no SNI)', host, await get(port, sni, host)]);
  }
  t.same(seen, [
    ['foo.example', 'foo.example', { cn: 'foo.example', status: 200, body: 'foo' }],
    ['foo.example', 'x.bar.example', { cn: 'foo.example', status: 200, body: 'foo' }],
    ['x.bar.example', 'x.bar.example', { cn: 'bar.example', status: 200, body: 'bar' }],
    ['a.b.bar.example', 'foo.example', { cn: 'bar.example', status: 200, body: 'bar' }],
    ['other.example', 'foo.example', { cn: 'default.example', status: 200, body: 'default' }],
    ['(no SNI)', 'foo.example', { cn: 'default.example', status: 200, body: 'default' }],
    ['bar.example', 'bar.example', { cn: 'default.example', status: 200, body: 'default' }],
  ], 'expected the chain of the server name (exact, then wildcard) to pick certificate and routes, whatever the Host; the listener\'s own otherwise');

  // HTTP/2 by ALPN takes the same chain.
  const h2 = await new Promise<string>((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: 'x.bar.example', checkServerIdentity: () => undefined });
    session.on('error', reject);
    const stream = session.request({ ':path': '/', ':authority': 'foo.example' });
    let body = '';
    stream.on('data', (d: Buffer) => (body += d.toString()));
    stream.on('end', () => {
      session.close();
      resolve(body);
    });
    stream.on('error', reject);
  });
  t.equal(h2, 'bar', 'an HTTP/2 connection naming x.bar.example is routed by the bar chain');

  const curl = await runProgram('curl', ['-sS', '--cacert', pki.file('ca.pem'), '--resolve', `foo.example:${port}:127.0.0.1`, `https://foo.example:${port}/`], { ms: 10_000 });
  t.equal(curl.out, 'foo', `curl https://foo.example verifies the chain's certificate and reaches its upstream (${curl.out.slice(0, 200)})`);
});

t.test('without a default chain, a name no chain lists is refused', async (t) => {
  const foo = await namedUpstream('foo');
  const remora = await startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [{
      name: 'https', address: '127.0.0.1', port: 0,
      http_filter_chains: [{ name: 'foo', server_names: ['foo.example'], tls: pair('foo.example'), virtual_hosts: everything('foo') }],
    }],
    clusters: [{ name: 'foo', endpoints: [{ address: '127.0.0.1', port: foo.port }] }],
  });
  t.teardown(async () => {
    await remora.stop();
    await foo.close();
  });
  const port = remora.ports.https;
  t.same(await get(port, 'foo.example', 'anything'), { cn: 'foo.example', status: 200, body: 'foo' }, 'expected the chain to serve its name');
  const other = await get(port, 'other.example', 'foo.example');
  t.ok('error' in other, `expected a handshake naming other.example to fail, saw ${JSON.stringify(other)}`);
  const none = await get(port, undefined, 'foo.example');
  t.ok('error' in none, `expected a connection without SNI to be closed, saw ${JSON.stringify(none)}`);
});

t.test('each chain verifies client certificates against its own CAs', async (t) => {
  const ups = await Promise.all(['foo', 'bar'].map((n) => namedUpstream(n)));
  const remora = await startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [{
      name: 'mtls', address: '127.0.0.1', port: 0,
      http_filter_chains: [
        { name: 'foo', server_names: ['foo.example'], tls: { ...pair('foo.example'), ca_file: pki.file('ca.pem') }, virtual_hosts: everything('foo') },
        { name: 'bar', server_names: ['*.bar.example'], tls: { ...pair('bar.example'), ca_file: pki.file('other-ca.pem') }, virtual_hosts: everything('bar') },
      ],
    }],
    clusters: ['foo', 'bar'].map((name, i) => ({ name, endpoints: [{ address: '127.0.0.1', port: ups[i].port }] })),
  });
  t.teardown(async () => {
    await remora.stop();
    await Promise.all(ups.map((u) => u.close()));
  });
  const port = remora.ports.mtls;
  t.same(await get(port, 'foo.example', 'foo.example', 'client'), { cn: 'foo.example', status: 200, body: 'foo' }, 'expected foo\'s CA to admit the client');
  t.same(await get(port, 'x.bar.example', 'x.bar.example', 'stranger'), { cn: 'bar.example', status: 200, body: 'bar' }, 'expected bar\'s CA to admit the stranger');
  const refused = await get(port, 'x.bar.example', 'x.bar.example', 'client');
  t.match(refused, { status: 400, body: /client certificate refused/ }, 'expected bar\'s chain to refuse a certificate from foo\'s CA');
  const noCert = await get(port, 'foo.example', 'foo.example');
  t.match(noCert, { status: 400, body: /client certificate required/ }, 'expected a client without a certificate to be refused');
});

t.test('a reload that changes a chain\'s routes keeps the server and its connections', async (t) => {
  const ups = await Promise.all(['foo', 'bar'].map((n) => namedUpstream(n)));
  const config = (cluster: string) => ({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [{
      name: 'https', address: '127.0.0.1', port: 0,
      http_filter_chains: [{ name: 'foo', server_names: ['foo.example'], tls: pair('foo.example'), virtual_hosts: everything(cluster) }],
    }],
    clusters: ['foo', 'bar'].map((name, i) => ({ name, endpoints: [{ address: '127.0.0.1', port: ups[i].port }] })),
  });
  const remora = await startRemora(config('foo'));
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(async () => {
    agent.destroy();
    await remora.stop();
    await Promise.all(ups.map((u) => u.close()));
  });
  const sockets: unknown[] = [];
  const get = (): Promise<string> => new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port: remora.ports.https, path: '/', servername: 'foo.example', ca, agent }, (res) => {
      sockets.push(res.socket);
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
  t.equal(await get(), 'foo');
  // The port stays: the reloaded config names the port the listener got.
  const next = config('bar');
  next.listeners[0].port = remora.ports.https;
  writeFileSync(remora.configFile, JSON.stringify(next));
  process.kill(remora.pid, 'SIGHUP');
  await waitUntil('the reload applied by the worker', async () => {
    const w = JSON.parse((await admin(remora.adminPort, '/workers')).text) as { workers: { version: number }[] };
    return w.workers.every((x) => x.version === 2);
  }, 10_000, 50);
  t.equal(await get(), 'bar', 'expected the chain\'s new routes on the connection opened before the reload');
  t.equal(sockets.length, 2);
  t.ok(sockets[0] === sockets[1], 'expected the same TLS connection to carry both requests');
});
