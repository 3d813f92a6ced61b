// Upstream TLS and mTLS per cluster through the real proxy: certificates made at test
// time with the openssl CLI (a CA, a server certificate with a DNS and a SPIFFE URI SAN,
// a client certificate, and an unrelated CA), a Node https upstream that requires and
// verifies the client certificate, identity checks by SAN, unreadable TLS files, and
// pooled keep-alive connections with TLS session resumption.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type tls from 'node:tls';
import t from 'tap';
import { TestPki } from '../helpers/certs.js';
import { admin, BIN, request, routesConfig, startRemora, waitUntil, withTestDrain } from '../helpers/remora.js';

const SPIFFE = 'spiffe://cluster.local/ns/app/sa/backend';
const pki = new TestPki('upstream-tls');
const file = (name: string) => pki.file(name);
pki.ca('mesh-ca');
pki.ca('other-ca');
pki.leaf('backend', 'mesh-ca', { dns: 'upstream.local', uri: SPIFFE, usage: 'serverAuth' });
pki.leaf('remora-client', 'mesh-ca', { uri: 'spiffe://cluster.local/ns/app/sa/frontend', usage: 'clientAuth' });
pki.leaf('remora-client-next', 'mesh-ca', { uri: 'spiffe://cluster.local/ns/app/sa/frontend', usage: 'clientAuth' });
// The rotating cluster's client certificate, replaced during a test (by rename).
writeFileSync(file('rotating.pem'), readFileSync(file('remora-client.pem')));
writeFileSync(file('rotating.key'), readFileSync(file('remora-client.key')));
t.teardown(() => pki.remove());

/** An mTLS upstream: client certificate required and verified against the mesh CA. It
 *  answers with the client certificate's CN and whether the TLS session was resumed. */
async function startTlsUpstream() {
  const state = { handshakes: 0, resumed: 0, sockets: new Set<net.Socket>(), healthStatus: 200, healthCheckClients: [] as string[] };
  const server = https.createServer(
    {
      key: readFileSync(file('backend.key')),
      cert: readFileSync(file('backend.pem')),
      ca: readFileSync(file('mesh-ca.pem')),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const socket = req.socket as tls.TLSSocket;
      req.resume();
      if (req.url === '/health') {
        state.healthCheckClients.push(String(socket.getPeerCertificate().subject?.CN));
        res.writeHead(state.healthStatus);
        res.end();
        return;
      }
      req.on('end', () => {
        const body = JSON.stringify({
          client: socket.getPeerCertificate().subject?.CN ?? null,
          reused: socket.isSessionReused(),
          protocol: socket.getProtocol(),
        });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(body);
      });
    },
  );
  server.on('secureConnection', (s: tls.TLSSocket) => {
    state.handshakes++;
    if (s.isSessionReused()) state.resumed++;
    state.sockets.add(s);
    s.on('close', () => state.sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    state,
    /** Closes every connection (as an upstream closing idle keep-alive connections). */
    dropConnections: () => {
      for (const s of state.sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of state.sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

const upstream = await startTlsUpstream();
const pooled = await startTlsUpstream();
const rotating = await startTlsUpstream();
const checked = await startTlsUpstream();
t.teardown(() => checked.close());
t.teardown(() => rotating.close());
t.teardown(() => upstream.close());
t.teardown(() => pooled.close());

const clientCert = { cert_file: file('remora-client.pem'), key_file: file('remora-client.key') };
const cluster = (name: string, port: number, tlsConfig: Record<string, unknown>) => ({
  name,
  connect_timeout_ms: 2000,
  endpoints: [{ address: '127.0.0.1', port }],
  tls: tlsConfig,
});
const clusters = [
  cluster('mtls', upstream.port, { ca_file: file('mesh-ca.pem'), ...clientCert, sni: 'upstream.local' }),
  cluster('wrong-san', upstream.port, {
    ca_file: file('mesh-ca.pem'), ...clientCert, verify_subject_alt_names: ['spiffe://cluster.local/ns/app/sa/impostor'],
  }),
  cluster('spiffe', upstream.port, { ca_file: file('mesh-ca.pem'), ...clientCert, verify_subject_alt_names: [SPIFFE] }),
  cluster('wrong-sni', upstream.port, { ca_file: file('mesh-ca.pem'), ...clientCert, sni: 'elsewhere.local' }),
  cluster('other-ca', upstream.port, { ca_file: file('other-ca.pem'), ...clientCert, sni: 'upstream.local' }),
  cluster('no-client-cert', upstream.port, { ca_file: file('mesh-ca.pem'), sni: 'upstream.local' }),
  cluster('pooled', pooled.port, { ca_file: file('mesh-ca.pem'), ...clientCert, verify_subject_alt_names: [SPIFFE] }),
  {
    ...cluster('checked', checked.port, { ca_file: file('mesh-ca.pem'), ...clientCert, verify_subject_alt_names: [SPIFFE] }),
    health_check: { path: '/health', interval_ms: 200, timeout_ms: 1000, healthy_threshold: 1, unhealthy_threshold: 2 },
    panic_threshold_percent: 0,
  },
  {
    ...cluster('checked-impostor', checked.port, {
      ca_file: file('mesh-ca.pem'), ...clientCert, verify_subject_alt_names: ['spiffe://cluster.local/ns/app/sa/impostor'],
    }),
    health_check: { path: '/health', interval_ms: 200, timeout_ms: 1000, healthy_threshold: 1, unhealthy_threshold: 2 },
    panic_threshold_percent: 0,
  },
  cluster('rotating', rotating.port, { ca_file: file('mesh-ca.pem'), cert_file: file('rotating.pem'), key_file: file('rotating.key'), sni: 'upstream.local' }),
];
const routes = clusters.map((c) => ({ name: c.name, match: { prefix: `/${c.name}/` }, route: { cluster: c.name } }));
const remora = await startRemora(routesConfig(routes, clusters));
t.teardown(() => remora.stop());
const port = remora.ports.main;

t.test('mTLS end to end: 200 and the upstream saw Remora\'s client certificate', async (t) => {
  const res = await request(port, { path: '/mtls/x', agent: false });
  t.equal(res.status, 200, `expected 200 through the mTLS cluster, got ${res.status}: ${res.text}`);
  const body = JSON.parse(res.text) as { client: string; protocol: string };
  t.equal(body.client, 'remora-client', 'expected the upstream to have verified the client certificate');
  t.equal(body.protocol, 'TLSv1.3', 'expected TLS 1.3 to be negotiated (preferred)');
});

t.test('the right SPIFFE ID in verify_subject_alt_names → 200', async (t) => {
  const res = await request(port, { path: '/spiffe/x', agent: false });
  t.equal(res.status, 200, `expected 200 with the server's SPIFFE ID expected, got ${res.status}: ${res.text}`);
});

t.test('an unexpected server identity → 503 UF naming the SAN mismatch', async (t) => {
  const res = await request(port, { path: '/wrong-san/x', agent: false });
  t.equal(res.status, 503, 'expected 503 when the server certificate lacks the expected SAN');
  t.equal(res.headers['x-remora-flags'], 'UF', 'expected flag UF (connect failure)');
  t.match(res.text, /identity mismatch/, 'expected the detail to say the identity did not match');
  t.match(res.text, /spiffe:\/\/cluster\.local\/ns\/app\/sa\/impostor/, 'expected the detail to name the expected SAN');
  t.match(res.text, new RegExp(SPIFFE.replace(/[/.]/g, '\\$&')), 'expected the detail to name the SANs presented');
});

t.test('an SNI name the certificate does not cover → 503 UF (host name verification)', async (t) => {
  const res = await request(port, { path: '/wrong-sni/x', agent: false });
  t.equal(res.status, 503, 'expected 503 when the certificate does not match the SNI name');
  t.equal(res.headers['x-remora-flags'], 'UF', 'expected flag UF');
  t.match(res.text, /TLS handshake failed/, 'expected a TLS detail');
});

t.test('a CA that did not sign the server certificate → 503 UF', async (t) => {
  const res = await request(port, { path: '/other-ca/x', agent: false });
  t.equal(res.status, 503, 'expected 503 when the server certificate is not trusted');
  t.equal(res.headers['x-remora-flags'], 'UF', 'expected flag UF');
  t.match(res.text, /TLS handshake failed: .*certificate/i, 'expected the TLS verification error in the detail');
});

t.test('no client certificate configured → the upstream refuses → 503 UF', async (t) => {
  const res = await request(port, { path: '/no-client-cert/x', agent: false });
  t.equal(res.status, 503, 'expected 503 when the upstream requires a client certificate');
  t.equal(res.headers['x-remora-flags'], 'UF', 'expected flag UF (the TLS alert arrives before any response)');
  t.match(res.text, /TLS handshake failed/, 'expected a TLS detail');
});

t.test('unreadable TLS files → Remora refuses to start, naming each file by config path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'remora-upstream-tls-bad-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bad = [cluster('missing-file', upstream.port, { ca_file: join(dir, 'does-not-exist.pem'), ...clientCert })];
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify(withTestDrain(routesConfig([{ match: { prefix: '/' }, route: { cluster: 'missing-file' } }], bad))));
  const run = spawnSync(process.execPath, [BIN, 'run', '--config', configFile], { encoding: 'utf8', timeout: 15_000 });
  t.equal(run.status, 1, `expected exit status 1, saw ${run.status} (stderr: ${run.stderr})`);
  t.match(run.stderr, /clusters\[0\]\.tls\.ca_file: cannot read ".*does-not-exist\.pem" \(ENOENT\)/, 'expected the error to name the config path and the file');
});

t.test('pooled TLS connections are reused, and a new one resumes the TLS session', async (t) => {
  for (let i = 0; i < 5; i++) {
    const res = await request(port, { path: `/pooled/${i}`, agent: false });
    t.equal(res.status, 200, `expected 200 for request ${i}`);
  }
  t.equal(pooled.state.handshakes, 1, 'expected 5 sequential requests to share one pooled TLS connection');
  // The upstream closes its idle connections; the next request needs a new one.
  pooled.dropConnections();
  await new Promise((r) => setTimeout(r, 200));
  const res = await request(port, { path: '/pooled/again', agent: false });
  t.equal(res.status, 200, `expected 200 after the upstream closed the pooled connection: ${res.text}`);
  t.equal(pooled.state.handshakes, 2, 'expected one new TLS connection');
  t.equal(JSON.parse(res.text).reused, true, 'expected the new connection to resume the TLS session');
  t.equal(pooled.state.resumed, 1, 'expected the upstream to see one resumed session');
});

t.test('a rotated client certificate is used for new upstream connections; pooled ones keep theirs', async (t) => {
  const before = await request(port, { path: '/rotating/a', agent: false });
  t.equal(JSON.parse(before.text).client, 'remora-client', 'expected the first client certificate');
  for (const ext of ['key', 'pem']) {
    writeFileSync(file(`next.${ext}`), readFileSync(file(`remora-client-next.${ext}`)));
    renameSync(file(`next.${ext}`), file(`rotating.${ext}`));
  }
  await remora.waitFor(/"owner":"clusters rotating"[^\n]*TLS certificates rotated/, 8000);
  const pooledStill = await request(port, { path: '/rotating/b', agent: false });
  t.equal(JSON.parse(pooledStill.text).client, 'remora-client', 'expected the open pooled connection to keep its certificate');
  rotating.dropConnections();
  await new Promise((r) => setTimeout(r, 200));
  const after = await request(port, { path: '/rotating/c', agent: false });
  t.equal(JSON.parse(after.text).client, 'remora-client-next', 'expected a new connection to present the rotated certificate');
});

t.test('active health checks over mTLS: Remora\'s client certificate, the server identity checked, an endpoint removed and restored', async (t) => {
  const health = async (): Promise<string> => {
    const body = JSON.parse((await admin(remora.adminPort, '/clusters')).text) as { clusters: { name: string; endpoints: { health: string }[] }[] };
    return body.clusters.find((c) => c.name === 'checked')?.endpoints[0]?.health ?? 'none';
  };
  await waitUntil('the TLS endpoint checked healthy', async () => (await health()) === 'healthy', 5000, 50);
  t.ok(checked.state.healthCheckClients.length > 0, 'expected health checks to reach the mTLS upstream');
  t.same([...new Set(checked.state.healthCheckClients)], ['remora-client'], 'expected every check to present Remora\'s client certificate');
  t.equal((await request(port, { path: '/checked/a', agent: false })).status, 200, 'expected traffic while healthy');
  checked.state.healthStatus = 503;
  await waitUntil('the endpoint marked unhealthy', async () => (await health()) === 'unhealthy', 5000, 50);
  const refused = await request(port, { path: '/checked/b', agent: false });
  t.equal(refused.status, 503, 'expected 503 while the only endpoint is unhealthy');
  t.equal(refused.headers['x-remora-flags'], 'UH', 'expected flag UH');
  checked.state.healthStatus = 200;
  await waitUntil('the endpoint healthy again', async () => (await health()) === 'healthy', 5000, 50);
  t.equal((await request(port, { path: '/checked/c', agent: false })).status, 200, 'expected traffic again');
});

t.test('a health check to a server with an unexpected identity fails, naming the mismatch', async (t) => {
  type View = { clusters: { name: string; endpoints: { health: string; health_check: { last_error: string | null } | null }[] }[] };
  let ep: View['clusters'][number]['endpoints'][number] | undefined;
  await waitUntil('the impostor endpoint checked', async () => {
    const body = JSON.parse((await admin(remora.adminPort, '/clusters')).text) as View;
    ep = body.clusters.find((c) => c.name === 'checked-impostor')?.endpoints[0];
    return ep?.health === 'unhealthy';
  }, 5000, 50).catch(() => {});
  t.equal(ep?.health, 'unhealthy', 'expected the endpoint unhealthy');
  t.match(ep?.health_check?.last_error ?? '', /identity mismatch/, 'expected the last error to name the identity mismatch');
});
