// Inbound mTLS through the real proxy (2 workers): certificates made with the openssl
// CLI; real TLS clients (Node tls/https, curl, openssl s_client). Clients without a
// certificate, with one from another CA, with an expired one and with a disallowed
// identity are refused, each with its own error; an allowed identity reaches the app with
// Envoy's XFCC; a forged XFCC never reaches the app; the certificate rotates on disk
// under load with no failed request; a broken replacement is refused and the old one
// keeps serving; /certs and the expiry gauge report it.
import { execFile, execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import tls from 'node:tls';
import t from 'tap';
import { TestPki } from '../helpers/certs.js';
import { admin, startRemora, startUpstream, waitUntil } from '../helpers/remora.js';

const SERVER_ID = 'spiffe://cluster.local/ns/app/sa/backend';
const PAYMENTS_ID = 'spiffe://cluster.local/ns/payments/sa/api';
const pki = new TestPki('mtls');
t.teardown(() => pki.remove());
pki.ca('mesh-ca');
pki.ca('other-ca');
pki.leaf('server', 'mesh-ca', { dns: 'backend.local', uri: SERVER_ID });
pki.leaf('server2', 'mesh-ca', { dns: 'backend.local', uri: SERVER_ID });
pki.leaf('payments', 'mesh-ca', { uri: PAYMENTS_ID });
pki.leaf('batch', 'mesh-ca', { uri: 'spiffe://cluster.local/ns/batch/sa/job' });
pki.leaf('stranger', 'other-ca', { uri: PAYMENTS_ID });
pki.leaf('expired', 'mesh-ca', { uri: PAYMENTS_ID, expired: true });
const pem = (name: string) => readFileSync(pki.file(`${name}.pem`));
const key = (name: string) => readFileSync(pki.file(`${name}.key`));
// The files Remora serves from; replaced by rename, as Kubernetes and cert-manager do.
writeFileSync(pki.file('live-cert.pem'), pem('server'));
writeFileSync(pki.file('live-key.pem'), key('server'));

/** The app: answers with the headers it received. */
const appSaw: string[] = [];
const app = await startUpstream((req, res) => {
  appSaw.push(req.url ?? '');
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.headers));
  });
});
t.teardown(() => app.close());

const remora = await startRemora({
  workers: 2,
  admin: { address: '127.0.0.1', port: 0 },
  listeners: [
    {
      name: 'inbound',
      address: '127.0.0.1',
      port: 0,
      tls: { cert_file: pki.file('live-cert.pem'), key_file: pki.file('live-key.pem'), ca_file: pki.file('mesh-ca.pem') },
      authorization: { allow: ['spiffe://cluster.local/ns/payments/*', 'spiffe://cluster.local/ns/batch/*'], deny: ['spiffe://cluster.local/ns/batch/sa/job'] },
      // In the certificates' directory on purpose: a busy file next to them must not
      // postpone the rotation check (it once did).
      access_log: { path: pki.file('access.log') },
      virtual_hosts: [
        {
          name: 'app',
          domains: ['*'],
          routes: [
            { name: 'admin-only', match: { prefix: '/admin' }, route: { cluster: 'app' }, authorization: { allow: ['spiffe://cluster.local/ns/ops/sa/admin'] } },
            { name: 'all', match: { prefix: '/' }, route: { cluster: 'app' } },
          ],
        },
      ],
    },
  ],
  clusters: [{ name: 'app', endpoints: [{ address: '127.0.0.1', port: app.port }] }],
}, { REMORA_FAULT_INJECTION: '1' });
t.teardown(() => remora.stop());
const port = remora.ports.inbound;

interface MtlsReply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** One request on a fresh mTLS connection, presenting client certificate `client` (or none). */
function mtlsRequest(client: string | null, opts: { path?: string; headers?: Record<string, string>; agent?: https.Agent } = {}): Promise<MtlsReply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: opts.path ?? '/',
        servername: 'backend.local',
        ca: pem('mesh-ca'),
        ...(client !== null ? { cert: pem(client), key: key(client) } : {}),
        headers: opts.headers,
        agent: opts.agent ?? false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** What a client presenting `client` (or no certificate) gets: status and body, or the
 *  connection error. */
async function refusal(client: string | null): Promise<string> {
  try {
    const res = await mtlsRequest(client, { path: '/refused' });
    return `${res.status} ${res.headers.connection ?? ''}: ${res.text.trim()}`;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

/** The serial number of the certificate a new handshake presents. */
function servedSerial(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'backend.local', ca: pem('mesh-ca'), cert: pem('payments'), key: key('payments') }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

const serialOf = (name: string) => new X509Certificate(pem(name)).serialNumber;

t.test('an allowed identity reaches the app with XFCC in Envoy\'s format', async (t) => {
  const res = await mtlsRequest('payments', { path: '/orders' });
  t.equal(res.status, 200, `expected 200 for ${PAYMENTS_ID}, saw ${res.status}`);
  const seen = JSON.parse(res.text) as Record<string, string>;
  const der = new X509Certificate(pem('payments')).raw;
  const hash = createHash('sha256').update(der).digest('hex');
  t.equal(
    seen['x-forwarded-client-cert'],
    `By=${SERVER_ID};Hash=${hash};Subject="O=remora-test,CN=payments";URI=${PAYMENTS_ID}`,
    'expected the app to see By (our identity), Hash (of the client certificate), Subject and URI',
  );
  t.equal(seen['x-forwarded-proto'], 'https', 'expected x-forwarded-proto https on a TLS listener');
});

t.test('a forged XFCC from the client never reaches the app', async (t) => {
  const forged = 'By=spiffe://evil;URI=spiffe://cluster.local/ns/ops/sa/admin';
  const res = await mtlsRequest('payments', { headers: { 'x-forwarded-client-cert': forged } });
  t.equal(res.status, 200, 'expected 200');
  const xfcc = (JSON.parse(res.text) as Record<string, string>)['x-forwarded-client-cert'];
  t.notMatch(xfcc, /evil|ops\/sa\/admin/, `expected the forged element to be removed, saw ${xfcc}`);
  t.match(xfcc, new RegExp(`URI=${PAYMENTS_ID}$`), 'expected only the verified identity');
});

// As nginx does: the handshake completes, every request on the connection gets 400 naming
// the reason, and the connection closes; nothing reaches the app.
t.test('a client without a certificate is refused with 400 "client certificate required"', async (t) => {
  t.equal(await refusal(null), '400 close: client certificate required', 'expected 400 and a closed connection');
});

t.test('a client certificate from another CA is refused, naming the reason', async (t) => {
  t.equal(await refusal('stranger'), '400 close: client certificate refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'expected 400 naming the verification error');
  const line = await remora.waitFor(/\{[^\n]*"code":"UNABLE_TO_VERIFY_LEAF_SIGNATURE"[^\n]*"msg":"TLS handshake refused"[^\n]*\}/, 5000);
  t.match(line, /"listener":"inbound"/, 'expected a log line naming the listener');
});

t.test('an expired client certificate is refused, naming the reason', async (t) => {
  t.equal(await refusal('expired'), '400 close: client certificate refused: CERT_HAS_EXPIRED', 'expected 400 naming the expiry');
  await remora.waitFor(/"code":"CERT_HAS_EXPIRED"[^\n]*"msg":"TLS handshake refused"/, 5000);
});

t.test('refused clients are counted per listener and reason, and never reach the app', async (t) => {
  t.equal(appSaw.filter((p) => p === '/refused').length, 0, 'expected no refused request at the app');
  const stats = (await admin(remora.adminPort, '/stats')).text;
  const count = (name: string) => Number(new RegExp(`listener\\.inbound\\.ssl\\.${name}: (\\d+)`).exec(stats)?.[1] ?? -1);
  t.equal(count('fail_verify_no_cert'), 1, 'expected 1 handshake without a client certificate');
  t.equal(count('fail_verify_error'), 2, 'expected 2 client certificates that failed verification (other CA, expired)');
  const metrics = (await admin(remora.adminPort, '/metrics')).text;
  t.match(metrics, /remora_downstream_tls_handshake_errors_total\{listener="inbound",reason="verify_failed"\} 2/, 'expected the Prometheus series by reason');
});

t.test('a disallowed identity gets 403 with flag RBAC, and it is counted', async (t) => {
  const denied = await mtlsRequest('batch');
  t.equal(denied.status, 403, `expected 403 for the denied spiffe://cluster.local/ns/batch/sa/job, saw ${denied.status}`);
  t.equal(denied.headers['x-remora-flags'], 'RBAC', 'expected flag RBAC');
  t.match(denied.text, /RBAC: access denied/, 'expected Envoy\'s RBAC body');
  const route = await mtlsRequest('payments', { path: '/admin/users' });
  t.equal(route.status, 403, `expected the route policy to refuse payments on /admin, saw ${route.status}`);
  let counted = 'none';
  await waitUntil('2 RBAC denials in /metrics', async () => {
    const metrics = await admin(remora.adminPort, '/metrics');
    counted = /remora_downstream_response_flags_total\{listener="inbound",flag="RBAC"\} (\d+)/.exec(metrics.text)?.[1] ?? 'none';
    return counted === '2';
  }).catch(() => {});
  t.equal(counted, '2', `expected 2 RBAC denials counted, saw ${counted}`);
});

t.test('the access log names the peer identity, also for refused requests', async (t) => {
  let lines: { path: string; peer: string | null; flags: string; status: number }[] = [];
  await waitUntil('access log lines for /orders and the RBAC denial', async () => {
    try {
      lines = readFileSync(pki.file('access.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    } catch {
      return false;
    }
    // Each worker writes its own lines (TLS listeners run on every worker): wait for both.
    return lines.some((l) => l.flags === 'RBAC' && l.path === '/') && lines.some((l) => l.path === '/orders');
  }, 5000).catch(() => {});
  t.equal(lines.find((l) => l.path === '/orders')?.peer, PAYMENTS_ID, 'expected the caller\'s SPIFFE ID in "peer"');
  const denied = lines.find((l) => l.flags === 'RBAC' && l.path === '/');
  t.equal(denied?.peer, 'spiffe://cluster.local/ns/batch/sa/job', 'expected the refused caller\'s identity logged');
  t.equal(denied?.status, 403, 'expected status 403 logged');
});

t.test('curl with a client certificate reaches the app; openssl s_client sees TLS 1.3, ALPN http/1.1, a verified chain', async (t) => {
  const curl = await new Promise<{ code: number; out: string }>((resolve) => {
    execFile(
      'curl',
      ['-sS', '--resolve', `backend.local:${port}:127.0.0.1`, '--cacert', pki.file('mesh-ca.pem'), '--cert', pki.file('payments.pem'),
        '--key', pki.file('payments.key'), `https://backend.local:${port}/curl`],
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : Number((err as { code?: number }).code ?? 1), out: stdout + stderr }),
    );
  });
  t.equal(curl.code, 0, `expected curl to succeed, saw exit ${curl.code}${curl.code !== 0 ? `: ${curl.out}` : ''}`);
  t.match(curl.out, /"x-forwarded-client-cert":"By=spiffe/, 'expected the app\'s echo of the XFCC header');
  const text = execFileSync(
    'sh',
    ['-c', `openssl s_client -connect 127.0.0.1:${port} -servername backend.local -CAfile ${pki.file('mesh-ca.pem')} ` +
      `-cert ${pki.file('payments.pem')} -key ${pki.file('payments.key')} -alpn http/1.1 </dev/null 2>&1`],
    { encoding: 'utf8', timeout: 10_000 },
  );
  t.match(text, /New, TLSv1\.3, Cipher is TLS_/, 'expected a TLS 1.3 session');
  t.match(text, /ALPN protocol: http\/1\.1/, 'expected ALPN http/1.1');
  t.match(text, /Verify return code: 0 \(ok\)/, 'expected the server chain to verify against the mesh CA');
});

t.test('TLS 1.1 is refused (TLS 1.2 is the minimum)', async (t) => {
  const text = execFileSync(
    'sh',
    ['-c', `openssl s_client -connect 127.0.0.1:${port} -tls1_1 -cert ${pki.file('payments.pem')} -key ${pki.file('payments.key')} </dev/null 2>&1 || true`],
    { encoding: 'utf8', timeout: 10_000 },
  );
  t.match(text, /alert protocol version/, 'expected the "protocol version" alert');
  t.match(text, /Cipher is \(NONE\)/, 'expected no session');
});

t.test('TLS 1.2 renegotiation is refused', async (t) => {
  const text = execFileSync(
    'sh',
    ['-c', `(sleep 0.5; printf 'R\\n'; sleep 0.5) | openssl s_client -connect 127.0.0.1:${port} -tls1_2 -CAfile ${pki.file('mesh-ca.pem')} ` +
      `-cert ${pki.file('payments.pem')} -key ${pki.file('payments.key')} 2>&1 || true`],
    { encoding: 'utf8', timeout: 10_000 },
  );
  t.match(text, /New, TLSv1\.2/, 'expected a TLS 1.2 session first');
  t.match(text, /RENEGOTIATING[\s\S]*no renegotiation/, 'expected the server to refuse the renegotiation');
});

t.test('/certs lists the listener certificate with its identity and expiry; the gauge shows the earliest expiry', async (t) => {
  const certs = (await admin(remora.adminPort, '/certs')).text;
  const body = JSON.parse(certs) as { earliest_expiry_seconds: number; certificates: { owner: string; role: string; identity: string; days_until_expiry: number; serial: string }[] };
  const server = body.certificates.find((c) => c.owner === 'listener inbound' && c.role === 'server');
  t.ok(server !== undefined, 'expected the listener\'s certificate in /certs');
  t.equal(server?.identity, SERVER_ID, 'expected its SPIFFE identity');
  t.equal(server?.serial, serialOf('server'), 'expected its serial');
  t.ok(server !== undefined && server.days_until_expiry > 1 && server.days_until_expiry <= 2, `expected about 2 days to expiry, saw ${server?.days_until_expiry}`);
  const metrics = (await admin(remora.adminPort, '/metrics')).text;
  const m = /^remora_tls_earliest_expiry_seconds (\d+)/m.exec(metrics);
  t.ok(m !== null && Math.abs(Number(m[1]) - body.earliest_expiry_seconds) <= 5, `expected the gauge to match /certs (${body.earliest_expiry_seconds}), saw ${m?.[1]}`);
});

t.test('rotation under load: zero failed requests, new handshakes present the new certificate, open connections go on', async (t) => {
  t.equal(await servedSerial(), serialOf('server'), 'expected the first certificate before rotation');
  const keepAlive = new https.Agent({ keepAlive: true, maxSockets: 2 });
  t.teardown(() => keepAlive.destroy());
  let running = true;
  const failures: string[] = [];
  let done = 0;
  // Keep-alive and fresh-connection traffic while the files change.
  const loop = async (fresh: boolean): Promise<void> => {
    while (running) {
      try {
        const res = await mtlsRequest('payments', { path: '/load', ...(fresh ? {} : { agent: keepAlive }) });
        if (res.status !== 200) failures.push(`status ${res.status}`);
        done++;
      } catch (err) {
        failures.push(String(err));
      }
    }
  };
  const loops = [loop(false), loop(false), loop(true)];
  await new Promise((r) => setTimeout(r, 300));
  // Key first, then certificate, each by rename (the way a mounted Secret changes).
  writeFileSync(pki.file('next-key.pem'), key('server2'));
  renameSync(pki.file('next-key.pem'), pki.file('live-key.pem'));
  writeFileSync(pki.file('next-cert.pem'), pem('server2'));
  renameSync(pki.file('next-cert.pem'), pki.file('live-cert.pem'));
  await waitUntil('new handshakes present the rotated certificate', async () => (await servedSerial()) === serialOf('server2'), 8000, 100);
  await new Promise((r) => setTimeout(r, 300));
  running = false;
  await Promise.all(loops);
  t.same(failures, [], `expected no failed requests across the rotation (${done} done)`);
  t.ok(done > 20, `expected traffic during the rotation, saw ${done} requests`);
  const certs = JSON.parse((await admin(remora.adminPort, '/certs')).text) as { rotations: { applied: number } };
  t.ok(certs.rotations.applied >= 1, 'expected the rotation counted as applied');
});

t.test('a broken replacement (key from another pair) is refused loudly; the old certificate keeps serving', async (t) => {
  const before = await servedSerial();
  writeFileSync(pki.file('next-key.pem'), key('batch'));
  renameSync(pki.file('next-key.pem'), pki.file('live-key.pem'));
  await remora.waitFor(/TLS files refused: the certificates already loaded keep serving/, 8000);
  t.match(remora.output(), /does not belong to certificate/, 'expected the log to say the key does not match');
  t.equal(await servedSerial(), before, 'expected the previous certificate to keep serving');
  const res = await mtlsRequest('payments');
  t.equal(res.status, 200, 'expected traffic to keep flowing');
  const certs = JSON.parse((await admin(remora.adminPort, '/certs')).text) as { rotations: { rejected: number }; files: { owner: string; last_error: string | null }[] };
  t.ok(certs.rotations.rejected >= 1, 'expected the refusal counted');
  t.match(certs.files.find((f) => f.owner === 'listener inbound')?.last_error ?? '', /does not belong/, 'expected /certs to show the last error');
  const metrics = (await admin(remora.adminPort, '/metrics')).text;
  t.match(metrics, /remora_tls_rotations_total\{result="rejected"\} [1-9]/, 'expected the rejected rotation in /metrics');
  // Put the matching key back: the next check applies it again.
  writeFileSync(pki.file('next-key.pem'), key('server2'));
  renameSync(pki.file('next-key.pem'), pki.file('live-key.pem'));
});

t.test('a crashed worker is replaced and the TLS listener serves again (whichever worker held it)', async (t) => {
  for (const slot of [0, 1]) {
    const crash = await admin(remora.adminPort, `/debug/crash_worker?slot=${slot}`, 'POST');
    t.equal(crash.status, 200, `expected worker ${slot} to be crashed`);
    let last = '';
    await waitUntil(`the TLS listener to answer after worker ${slot} crashed`, async () => {
      await new Promise((r) => setTimeout(r, 100));
      const ready = await admin(remora.adminPort, '/ready');
      if (ready.status !== 200) return false;
      last = await refusal('payments');
      return last.startsWith('200');
    }, 10_000, 100).catch(() => {});
    t.match(last, /^200/, `expected 200 after worker ${slot} was replaced, saw ${last.slice(0, 60)}`);
  }
});
