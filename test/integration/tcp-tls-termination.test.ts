// TLS termination on a TCP listener's filter chains (`filter_chains[].tls`), in a real
// Remora process: a chain picked by SNI terminates TLS with its own certificate and the
// upstream (a recorder) receives the client's bytes decrypted; a chain with `ca_file`
// refuses a client without a certificate signed by it (the handshake fails) and serves
// one with; another SNI still passes through untouched (the upstream gets the
// ClientHello); `openssl s_client` is a client too; and a rotated certificate is served
// by the next handshake.

import { copyFileSync, readFileSync } from 'node:fs';
import tls from 'node:tls';
import t from 'tap';
import { TestPki } from '../helpers/certs.js';
import { startRemora, waitUntil } from '../helpers/remora.js';
import { runProgram, startEcho, startRecorder } from '../helpers/tcp-peers.js';

const pki = new TestPki('tcp-tls-termination');
t.teardown(() => pki.remove());
pki.ca('ca');
pki.leaf('term.example', 'ca', { dns: 'term.example' });
pki.leaf('term2.example', 'ca', { dns: 'term.example' }); // the rotation's replacement
pki.leaf('mtls.example', 'ca', { dns: 'mtls.example' });
pki.leaf('client', 'ca', { uri: 'spiffe://test/client' });
pki.ca('other-ca');
pki.leaf('stranger', 'other-ca', { uri: 'spiffe://test/stranger' });
// The chain's certificate files, rewritten to rotate.
copyFileSync(pki.file('term.example.pem'), pki.file('served.pem'));
copyFileSync(pki.file('term.example.key'), pki.file('served.key'));

/** Connects with TLS, writes `send`, and resolves what came back before `ms` (or the
 *  handshake error). */
function tlsExchange(port: number, servername: string, send: string, client?: 'client' | 'stranger', ms = 1500): Promise<{ ok: boolean; got: string; serial?: string; error?: string }> {
  return new Promise((resolve) => {
    let got = '';
    const socket = tls.connect({
      host: '127.0.0.1', port, servername, ca: readFileSync(pki.file('ca.pem')),
      ...(client !== undefined ? { cert: readFileSync(pki.file(`${client}.pem`)), key: readFileSync(pki.file(`${client}.key`)) } : {}),
    });
    const finish = (r: { ok: boolean; got: string; serial?: string; error?: string }): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: socket.authorized, got, serial: socket.getPeerCertificate()?.serialNumber }), ms);
    socket.on('secureConnect', () => socket.write(send));
    socket.on('data', (d: Buffer) => (got += d.toString()));
    socket.on('error', (err) => finish({ ok: false, got, error: err.message }));
  });
}

t.test('filter chains terminate TLS: decrypted bytes upstream, client certificates, passthrough beside, rotation', async (t) => {
  const echo = await startEcho();
  const recorder = await startRecorder('passthrough');
  const remora = await startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [{
      name: 'tcp', address: '127.0.0.1', port: 0,
      filter_chains: [
        { name: 'term', match: { server_names: ['term.example'] }, tcp_proxy: { cluster: 'echo' }, tls: { cert_file: pki.file('served.pem'), key_file: pki.file('served.key') } },
        { name: 'mtls', match: { server_names: ['mtls.example'] }, tcp_proxy: { cluster: 'echo' },
          tls: { cert_file: pki.file('mtls.example.pem'), key_file: pki.file('mtls.example.key'), ca_file: pki.file('ca.pem') } },
        { name: 'pass', match: { server_names: ['pass.example'] }, tcp_proxy: { cluster: 'recorder' } },
      ],
    }],
    clusters: [
      { name: 'echo', endpoints: [{ address: '127.0.0.1', port: echo.port }] },
      { name: 'recorder', endpoints: [{ address: '127.0.0.1', port: recorder.port }] },
    ],
  });
  t.teardown(async () => {
    await remora.stop();
    await Promise.all([echo.close(), recorder.close()]);
  });
  const port = remora.ports.tcp;

  const term = await tlsExchange(port, 'term.example', 'hello through TLS');
  t.ok(term.ok, `the handshake with the chain's certificate verifies against the CA (${term.error ?? 'ok'})`);
  t.equal(term.got, 'hello through TLS', 'the echo upstream got the bytes decrypted and its answer came back encrypted');

  const anonymous = await tlsExchange(port, 'mtls.example', 'x');
  t.equal(anonymous.got, '', `a client without a certificate gets nothing through the mTLS chain (${anonymous.error ?? 'no error'})`);
  const stranger = await tlsExchange(port, 'mtls.example', 'x', 'stranger');
  t.equal(stranger.got, '', 'nor one whose certificate another CA signed');
  const client = await tlsExchange(port, 'mtls.example', 'with a certificate', 'client');
  t.equal(client.got, 'with a certificate', 'a client certificate the chain\'s CA signed goes through');

  await tlsExchange(port, 'pass.example', 'opaque', undefined, 500);
  await waitUntil('the passthrough upstream got bytes', async () => (recorder.seen[0]?.length ?? 0) > 0);
  const seen = recorder.seen[0];
  t.equal(seen[0], 0x16, `the passthrough chain's upstream got the ClientHello itself (first byte 0x16, saw 0x${seen[0]?.toString(16)})`);

  const openssl = await runProgram('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'term.example', '-CAfile', pki.file('ca.pem'), '-verify_return_error', '-brief'],
    { ms: 5000 });
  t.match(openssl.out, /Verification: OK/, `openssl s_client completes a verified handshake with the chain (${openssl.out.slice(0, 200)})`);

  const before = term.serial;
  copyFileSync(pki.file('term2.example.pem'), pki.file('served.pem'));
  copyFileSync(pki.file('term2.example.key'), pki.file('served.key'));
  await waitUntil('the next handshake serves the rotated certificate', async () => {
    const r = await tlsExchange(port, 'term.example', 'again', undefined, 300);
    return r.serial !== undefined && r.serial !== before && r.got === 'again';
  }, 10_000, 200);
  t.pass('rotated in place, without a restart');
});
