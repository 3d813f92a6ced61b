// Several certificates on one TLS server, picked by SNI (`tls.additional_certificates`),
// in a real Remora process: an HTTPS listener serves a.example's certificate to clients
// that name a.example, the wildcard *.b.example's to x.b.example, and cert_file's to a
// client without SNI, with a name no certificate has, or with exact.b.example (cert_file
// names it exactly, which beats the other certificate's wildcard); requests go through on each; a
// TCP filter chain that terminates TLS picks the same way; `openssl s_client
// -servername` sees the same certificates. With `ca_file`, a client certificate is
// verified whichever certificate SNI picked.

import { readFileSync } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import t from 'tap';
import { TestPki } from '../helpers/certs.js';
import { namedUpstream, startRemora } from '../helpers/remora.js';
import { runProgram, startEcho } from '../helpers/tcp-peers.js';

const pki = new TestPki('tls-sni-certificates');
t.teardown(() => pki.remove());
pki.ca('ca');
// cert_file's also names one host under the wildcard: an exact name wins over a wildcard,
// whichever certificate has it.
pki.leaf('default.example', 'ca', { dns: 'default.example,DNS:exact.b.example' });
pki.leaf('a.example', 'ca', { dns: 'a.example' });
pki.leaf('b.example', 'ca', { dns: '*.b.example' });
const ca = readFileSync(pki.file('ca.pem'));
const pair = (name: string) => ({ cert_file: pki.file(`${name}.pem`), key_file: pki.file(`${name}.key`) });

/** The subject CN of the certificate served to a client sending `servername` (none: no SNI). */
function servedTo(port: number, servername: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, ...(servername !== undefined ? { servername } : {}), checkServerIdentity: () => undefined });
    socket.once('secureConnect', () => {
      const cn = String(socket.getPeerCertificate().subject?.CN ?? '');
      socket.destroy();
      resolve(cn);
    });
    socket.once('error', reject);
  });
}

t.test('certificates by SNI on an HTTPS listener and a TCP chain', async (t) => {
  const app = await namedUpstream('app');
  const echo = await startEcho();
  const remora = await startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [
      {
        name: 'https', address: '127.0.0.1', port: 0,
        tls: { ...pair('default.example'), additional_certificates: [pair('a.example'), pair('b.example')] },
        virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'app' } }] }],
      },
      {
        name: 'tcp', address: '127.0.0.1', port: 0,
        filter_chains: [{ name: 'term', tcp_proxy: { cluster: 'echo' }, tls: { ...pair('default.example'), additional_certificates: [pair('a.example')] } }],
      },
    ],
    clusters: [
      { name: 'app', endpoints: [{ address: '127.0.0.1', port: app.port }] },
      { name: 'echo', endpoints: [{ address: '127.0.0.1', port: echo.port }] },
    ],
  });
  t.teardown(async () => {
    await remora.stop();
    await Promise.all([app.close(), echo.close()]);
  });
  const port = remora.ports.https;
  const cases: [string | undefined, string][] = [
    ['a.example', 'a.example'], ['x.b.example', 'b.example'], ['exact.b.example', 'default.example'], ['y.x.b.example', 'default.example'], [undefined, 'default.example'], ['other.example', 'default.example'],
  ];
  const served: [string | undefined, string][] = [];
  for (const [name] of cases) served.push([name, await servedTo(port, name)]);
  t.same(served, cases, 'expected each server name to get its certificate (exact, one-label wildcard, else cert_file\'s)');

  for (const host of ['a.example', 'x.b.example', 'default.example']) {
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port, path: '/', servername: host, headers: { host }, ca, agent: false }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
    });
    t.equal(body, 'app', `a request to ${host} verifies its certificate and goes through`);
  }

  t.equal(await servedTo(remora.ports.tcp, 'a.example'), 'a.example', 'a TCP chain that terminates TLS picks by SNI too');
  t.equal(await servedTo(remora.ports.tcp, 'z.example'), 'default.example', 'and serves cert_file\'s otherwise');

  const openssl = await runProgram('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'x.b.example', '-CAfile', pki.file('ca.pem'), '-brief'], { ms: 5000 });
  t.match(openssl.out, /Peer certificate: CN = b\.example/, `openssl s_client -servername x.b.example sees the wildcard certificate (${openssl.out.slice(0, 160)})`);
});

t.test('a client certificate is verified whichever certificate SNI picked', async (t) => {
  pki.leaf('client', 'ca', { uri: 'spiffe://test/client' });
  pki.ca('other-ca');
  pki.leaf('stranger', 'other-ca', { uri: 'spiffe://test/stranger' });
  const echo = await startEcho();
  const remora = await startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [{
      name: 'mtls', address: '127.0.0.1', port: 0,
      filter_chains: [{ name: 'term', tcp_proxy: { cluster: 'echo' }, tls: { ...pair('default.example'), ca_file: pki.file('ca.pem'), additional_certificates: [pair('a.example')] } }],
    }],
    clusters: [{ name: 'echo', endpoints: [{ address: '127.0.0.1', port: echo.port }] }],
  });
  t.teardown(async () => {
    await remora.stop();
    await echo.close();
  });
  /** What the echo sent back through the chain for a client presenting `who`'s certificate
   *  (it echoes, then reports the bytes it got once the client ends). */
  const through = (servername: string, who: 'client' | 'stranger'): Promise<string> =>
    new Promise((resolve) => {
      let got = '';
      const socket = tls.connect({
        host: '127.0.0.1', port: remora.ports.mtls, servername, ca,
        cert: readFileSync(pki.file(`${who}.pem`)), key: readFileSync(pki.file(`${who}.key`)), checkServerIdentity: () => undefined,
      });
      socket.once('secureConnect', () => socket.end('ping'));
      socket.on('data', (d: Buffer) => (got += d.toString()));
      socket.on('error', () => socket.destroy());
      socket.once('close', () => resolve(got));
      setTimeout(() => socket.destroy(), 2000).unref();
    });
  for (const name of ['a.example', 'default.example']) {
    t.equal(await through(name, 'client'), 'pingafter FIN: 4 bytes', `with SNI ${name}, a certificate the chain's CA signed goes through`);
    t.equal(await through(name, 'stranger'), '', `with SNI ${name}, one from another CA does not`);
  }
});
