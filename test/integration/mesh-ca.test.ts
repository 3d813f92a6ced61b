// The mesh CA end to end: the reference control plane with --ca-dir (in process, its
// minimum validity lowered to 5 s, a test-only option) and the sidecar's identity client
// asking for 10-second certificates renewed at half-life. The files appear with the
// identity and pass `openssl verify`; a renewal writes a new certificate (new serial)
// before the old one expires; with the control plane stopped the files stay, retries are
// logged, a warning comes below 20 % of the lifetime and an error at expiry, and after a
// restart it renews; a restarted client uses valid files without asking. Then through a
// real `remora run` in xDS mode with xds.mesh_identity: the certificate is in place when
// Remora is ready, it is asked for over the ADS connection (same peer address), renewed,
// shown in /config_dump; and a sidecar that starts while no control plane answers starts
// anyway after initial_fetch_timeout_ms and gets its certificate when the CA is back.
// Last, the whole mesh hop: the control plane serves an mTLS listener on the identity
// files; a caller with a certificate from the mesh CA gets through with XFCC, one from
// another CA is refused, and across the next renewal (under load) new handshakes present
// the renewed certificate with no failed request.
// Authentication, with real CreateCertificate calls: with Kubernetes service-account
// tokens (a JWKS of test keys), service account A's token asking for B's SPIFFE ID is
// refused (PERMISSION_DENIED, nothing issued) and A's token for A gets a certificate,
// also through the sidecar's identity client reading a token_file; the counts come back
// from the management API's GetMeshCaStats. With no authenticator every request is
// refused; with --insecure-allow-any-identity any identity is issued, and logged as
// insecure. `remora run` above authenticates with a bootstrap token (token_file). The
// command line's CA and TLS flags, with their usage errors. (TLS on the control plane:
// control-plane-tls.test.ts.)
//
// Everything on 127.0.0.1, port 0 (the control plane on a fixed free port so that it can
// come back on it); processes ended by pid, temp directories removed.

import t, { type Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import https from 'node:https';
import { join } from 'node:path';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import type { CaAuthnOptions } from '../../src/control-plane/ca-authn.js';
import { loadControlPlaneProtos, startControlPlane, type RunningControlPlane } from '../../src/control-plane/server.js';
import { MeshIdentityClient } from '../../src/control/mesh-identity.js';
import { EC_P256, generateEcKeyPair, loadX509, uriSans } from '../../src/control/mesh-pki.js';
import { loadMeshCaService } from '../../src/control/remora-protos.js';
import { freePort } from '../../src/main/ports.js';
import { TestPki } from '../helpers/certs.js';
import { jwks, saClaims, sha256Hex, signJwt, testKey } from '../helpers/jwt.js';
import { admin, BIN, startRemora, startUpstream, waitUntil } from '../helpers/remora.js';

const ID = 'spiffe://cluster.local/ns/web/sa/frontend';

type Line = Record<string, unknown> & { msg: string; level: number };

/** A pino logger whose lines are kept, parsed. */
function capture(): { log: Logger; lines: Line[]; count(re: RegExp, level?: number): number } {
  const lines: Line[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  return { log, lines, count: (re, level) => lines.filter((l) => re.test(l.msg) && (level === undefined || l.level === level)).length };
}

const certIn = (dir: string): X509Certificate => new X509Certificate(readFileSync(join(dir, 'cert.pem')));

/** `openssl verify -CAfile ca.pem cert.pem` → its output (throws when it fails). */
function opensslVerify(caFile: string, certFile: string): string {
  return execFileSync('openssl', ['verify', '-CAfile', caFile, certFile], { encoding: 'utf8' }).trim();
}

function groupConfig(upstream: number): string {
  return JSON.stringify({
    listeners: [{ name: 'main', address: '127.0.0.1', port: 0, virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'all', match: { prefix: '/' }, route: { cluster: 'app' } }] }] }],
    clusters: [{ name: 'app', endpoints: [{ address: '127.0.0.1', port: upstream }] }],
  });
}

/** The tests about issuance and renewal run the CA in its demo mode (any identity). */
const ANY: CaAuthnOptions = { insecureAllowAnyIdentity: true };

async function controlPlane(groups: string, caDir: string, port: number, log: Logger, authn: CaAuthnOptions = ANY): Promise<RunningControlPlane> {
  return startControlPlane({ configDir: groups, listen: `127.0.0.1:${port}`, management: '127.0.0.1:0', log, rescanIntervalMs: 0, ca: { dir: caDir, minTtlSeconds: 5, ...authn } });
}

/** A temp directory with groups/ (the control plane's configs), and where ca/ and
 *  identity/ will be. */
function layout(prefix: string): { dir: string; groups: string; caDir: string; idDir: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  mkdirSync(join(dir, 'groups'));
  return { dir, groups: join(dir, 'groups'), caDir: join(dir, 'ca'), idDir: join(dir, 'identity') };
}

t.test('renewal settings that would loop (lifetime 600 s, renew_fraction 0.05) are bounded by the floor', async (t) => {
  // The CA backdates notBefore by 60 s, so 5 % of the lifetime falls before the issue: without
  // the floor the sidecar asked again at once, about 45 certificates a second.
  const { dir, groups, caDir, idDir } = layout('remora-mesh-ca-spin-');
  const port = await freePort();
  const cpLog = capture();
  const cp = await controlPlane(groups, caDir, port, cpLog.log);
  const client = new MeshIdentityClient({
    identity: { spiffe_id: ID, dir: idDir, lifetime_seconds: 600, renew_fraction: 0.05 },
    servers: [`127.0.0.1:${port}`],
    log: capture().log,
  });
  t.teardown(async () => {
    client.close();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  client.start();
  t.equal(await client.whenReady(10_000), true, 'a certificate is in place');
  await new Promise((r) => setTimeout(r, 3000));
  t.equal(cpLog.count(/^mesh certificate issued$/), 1, `one certificate in 3 s, not a loop (${cpLog.count(/^mesh certificate issued$/)} issued)`);
  const next = Date.parse(client.status().next_renewal_at!) - Date.now();
  t.ok(next > 50_000 && next <= 60_000, `the next renewal is a tenth of the 600 s lifetime after the issue (~60 s; in ${Math.round(next / 1000)} s)`);
});

t.test('identity client: issue, renew, outage (files stay, retries, warning, expiry), restart', async (t) => {
  const { dir, groups, caDir, idDir } = layout('remora-mesh-ca-');
  const port = await freePort();
  const cpLog = capture();
  let cp: RunningControlPlane | null = await controlPlane(groups, caDir, port, cpLog.log);
  const idLog = capture();
  const opts = {
    identity: { spiffe_id: ID, dir: idDir, lifetime_seconds: 10, renew_fraction: 0.5 },
    servers: [`127.0.0.1:${port}`],
    log: idLog.log,
    // Retries at most 0.4 s apart: each warning threshold (20, 10, 5 % left of 11 s) sees one.
    initialBackoffMs: 200,
    maxBackoffMs: 400,
  };
  let client = new MeshIdentityClient(opts);
  t.teardown(async () => {
    client.close();
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  client.start();

  t.equal(await client.whenReady(10_000), true, 'a certificate is in place');
  const first = certIn(idDir);
  t.same(uriSans(first), [ID], 'cert.pem is for the identity');
  t.equal(opensslVerify(join(idDir, 'ca.pem'), join(idDir, 'cert.pem')), `${join(idDir, 'cert.pem')}: OK`, 'openssl verify -CAfile ca.pem cert.pem');
  t.equal(readFileSync(join(idDir, 'ca.pem'), 'utf8'), readFileSync(join(caDir, 'ca.pem'), 'utf8'), 'ca.pem is the CA certificate');
  t.equal((statSync(join(idDir, 'key.pem')).mode & 0o777).toString(8), '600', 'key.pem mode');
  t.equal((statSync(join(caDir, 'ca.key')).mode & 0o777).toString(8), '600', 'the generated ca.key mode');
  const span = Date.parse(first.validTo) - Date.parse(first.validFrom);
  t.ok(span >= 10_000 && span <= 12_000, `lifetime about 10 s plus the backdate: saw ${span} ms`);
  let st = client.status();
  t.equal(st.serial, first.serialNumber, 'status: serial');
  t.equal(st.source, 'issued', 'status: source');
  const renewAt = Date.parse(first.validFrom) + span / 2;
  t.ok(Math.abs(Date.parse(st.next_renewal_at!) - renewAt) < 1000, `status: next renewal at half-life, expected ~${new Date(renewAt).toISOString()}, saw ${st.next_renewal_at}`);
  t.equal(cpLog.count(/^mesh certificate issued$/), 1, 'the CA logged the issuance');
  const issuedLine = cpLog.lines.find((l) => l.msg === 'mesh certificate issued')!;
  t.equal(issuedLine.identity, ID, 'the issuance log names the identity');
  t.equal(issuedLine.serial, first.serialNumber, 'and the serial');

  // Renewal at half-life, before expiry.
  await waitUntil('a renewal', async () => certIn(idDir).serialNumber !== first.serialNumber, 20_000, 100);
  const renewedAt = Date.now();
  const second = certIn(idDir);
  t.ok(renewedAt < Date.parse(first.validTo), `renewed before the first certificate expired (${new Date(renewedAt).toISOString()} < ${first.validTo})`);
  t.not(second.serialNumber, first.serialNumber, `a new serial (${first.serialNumber} → ${second.serialNumber})`);
  t.match(opensslVerify(join(idDir, 'ca.pem'), join(idDir, 'cert.pem')), /: OK$/, 'the renewed certificate verifies');
  t.same(cp.meshCa?.stats(), { issued: 2, issuedByIdentity: { [ID]: 2 }, refused: {} }, 'the CA counted two issuances, by identity');

  // Outage: the files stay; retries are logged; warnings at 20/10/5 %, an error at expiry.
  const keyBefore = readFileSync(join(idDir, 'key.pem'), 'utf8');
  await cp.stop();
  cp = null;
  await waitUntil('failed renewals', async () => client.status().consecutive_failures >= 2, 20_000, 100);
  t.equal(certIn(idDir).serialNumber, second.serialNumber, 'cert.pem stays in place while the CA is down');
  t.equal(readFileSync(join(idDir, 'key.pem'), 'utf8'), keyBefore, 'key.pem too');
  st = client.status();
  t.match(st.last_error?.message ?? '', /UNAVAILABLE|DEADLINE/, `status: last_error (${st.last_error?.message})`);
  t.ok(idLog.count(/renewal failed; the current certificate stays in place, retrying/) >= 2, 'each retry is logged');
  await waitUntil('the expiry error', async () => idLog.count(/EXPIRED/, 50) === 1, 20_000, 100);
  const warnings = idLog.lines.filter((l) => l.level === 40 && /lifetime left/.test(l.msg)).map((l) => l.msg);
  t.same(warnings, [
    'mesh certificate has less than 20% of its lifetime left and cannot be renewed',
    'mesh certificate has less than 10% of its lifetime left and cannot be renewed',
    'mesh certificate has less than 5% of its lifetime left and cannot be renewed',
  ], `one warning per threshold, not per retry (${client.status().consecutive_failures} failures so far)`);

  // The CA comes back (same port, same CA directory): the client renews.
  cp = await controlPlane(groups, caDir, port, cpLog.log);
  await waitUntil('a renewal after the restart', async () => certIn(idDir).serialNumber !== second.serialNumber, 30_000, 100);
  t.match(opensslVerify(join(caDir, 'ca.pem'), join(idDir, 'cert.pem')), /: OK$/, 'renewed by the same CA after the restart');
  t.equal(client.status().last_error, null, 'status: last_error cleared');
  t.equal(client.status().consecutive_failures, 0, 'status: failures reset');

  // A restarted client uses the valid files as they are.
  const serial = certIn(idDir).serialNumber;
  client.close();
  const issuedBefore = cp.meshCa!.stats().issued;
  client = new MeshIdentityClient(opts);
  client.start();
  t.equal(await client.whenReady(0), true, 'ready at once from the files');
  st = client.status();
  t.equal(st.source, 'files', 'status: source files');
  t.equal(st.serial, serial, 'status: the serial of cert.pem');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(cp.meshCa!.stats().issued, issuedBefore, 'no new certificate was asked for');
});

t.test('remora run with xds.mesh_identity', async (t) => {
  const { dir, groups, caDir, idDir } = layout('remora-mesh-ca-run-');
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  writeFileSync(join(groups, 'web.json'), groupConfig(upstream.port));
  const port = await freePort();
  const cpLog = capture();
  // A bootstrap token for the sidecar's identity: the sidecar sends token_file's content.
  const token = 'b0075742a9'.repeat(4);
  writeFileSync(join(dir, 'token'), `${token}\n`);
  writeFileSync(join(dir, 'bootstrap-tokens'), `# the sidecar's identity\n${ID} ${sha256Hex(token)}\n`);
  const authn: CaAuthnOptions = { bootstrapTokensFile: join(dir, 'bootstrap-tokens') };
  let cp: RunningControlPlane | null = await controlPlane(groups, caDir, port, cpLog.log, authn);
  const bootstrap = (timeoutMs: number) => ({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    xds: {
      servers: [`127.0.0.1:${port}`],
      node: { id: 'sidecar-1', cluster: 'web' },
      persist_path: join(dir, 'last-config.json'),
      initial_fetch_timeout_ms: timeoutMs,
      mesh_identity: { spiffe_id: ID, dir: idDir, lifetime_seconds: 10, renew_fraction: 0.5, token_file: join(dir, 'token') },
    },
  });
  let sidecar = await startRemora(bootstrap(10_000));
  t.teardown(async () => {
    await sidecar.stop();
    await cp?.stop();
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // The startup waited for the certificate: it is there once Remora is ready.
  t.ok(existsSync(join(idDir, 'cert.pem')), 'cert.pem exists when Remora is ready');
  const first = certIn(idDir);
  t.same(uriSans(first), [ID], 'for the bootstrap identity');
  t.match(opensslVerify(join(idDir, 'ca.pem'), join(idDir, 'cert.pem')), /: OK$/, 'openssl verify passes');
  const dump = async () => JSON.parse((await admin(sidecar.adminPort, '/config_dump')).text) as { mesh_identity?: { serial: string; identity: string } };
  t.equal((await dump()).mesh_identity?.serial, first.serialNumber, '/config_dump shows the mesh identity status');
  const certs = JSON.parse((await admin(sidecar.adminPort, '/certs')).text) as { mesh_identity?: { serial: string; identity: string; next_renewal_at: string } };
  t.equal(certs.mesh_identity?.serial, first.serialNumber, '/certs shows it too');
  t.equal(certs.mesh_identity?.identity, ID, '/certs: the identity');

  // Over the ADS connection: the CA saw the request from the peer of the ADS stream.
  const issued = cpLog.lines.find((l) => l.msg === 'mesh certificate issued');
  const nodes = cp.listNodes();
  t.equal(nodes.length, 1, 'one ADS stream');
  t.equal(issued?.peer, nodes[0]?.peer, `the certificate request came over the ADS connection (CA peer ${String(issued?.peer)}, ADS peer ${nodes[0]?.peer})`);
  t.equal(issued?.principal, `bootstrap-token sha256:${sha256Hex(token).slice(0, 12)}`, `authenticated by its bootstrap token (principal ${String(issued?.principal)})`);

  // Renewed under the running proxy.
  await waitUntil('a renewal', async () => (await dump()).mesh_identity?.serial !== first.serialNumber, 20_000, 200);
  t.not(certIn(idDir).serialNumber, first.serialNumber, 'cert.pem renewed');
  t.match(sidecar.output(), /"msg":"mesh certificate written"/, 'the sidecar logged it');

  // Start with no control plane and no files: Remora starts after initial_fetch_timeout_ms
  // (from the persisted config) and the certificate arrives when the CA is back.
  await sidecar.stop();
  await cp.stop();
  cp = null;
  rmSync(idDir, { recursive: true, force: true });
  sidecar = await startRemora(bootstrap(800));
  t.match(sidecar.output(), /no mesh certificate yet: starting without it/, 'started without a certificate, and said so');
  t.notOk(existsSync(join(idDir, 'cert.pem')), 'no cert.pem yet');
  cp = await controlPlane(groups, caDir, port, cpLog.log, authn);
  await waitUntil('the certificate once the CA is back', async () => existsSync(join(idDir, 'cert.pem')), 30_000, 200);
  t.same(uriSans(certIn(idDir)), [ID], 'issued once the control plane is back');
});

t.test('an mTLS listener on the mesh identity files: callers verified by the mesh CA, and each renewal served without a failed request', async (t) => {
  const { dir, groups, caDir, idDir } = layout('remora-mesh-ca-mtls-');
  const CALLER = 'spiffe://cluster.local/ns/payments/sa/api';
  const app = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => res.end(String(req.headers['x-forwarded-client-cert'] ?? '')));
  });
  const tlsFiles = { cert_file: join(idDir, 'cert.pem'), key_file: join(idDir, 'key.pem'), ca_file: join(idDir, 'ca.pem') };
  writeFileSync(join(groups, 'web.json'), JSON.stringify({
    listeners: [{
      name: 'inbound', address: '127.0.0.1', port: 0, tls: tlsFiles,
      authorization: { allow: ['spiffe://cluster.local/ns/payments/*'] },
      virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'all', match: { prefix: '/' }, route: { cluster: 'app' } }] }],
    }],
    clusters: [{ name: 'app', endpoints: [{ address: '127.0.0.1', port: app.port }] }],
  }));
  const port = await freePort();
  const cp = await controlPlane(groups, caDir, port, capture().log);
  const sidecar = await startRemora({
    workers: 2,
    admin: { address: '127.0.0.1', port: 0 },
    xds: {
      servers: [`127.0.0.1:${port}`],
      node: { id: 'sidecar-mtls', cluster: 'web' },
      initial_fetch_timeout_ms: 10_000,
      mesh_identity: { spiffe_id: ID, dir: idDir, lifetime_seconds: 10, renew_fraction: 0.5 },
    },
  });
  // A caller with a certificate from the same mesh CA (signed here with its key).
  const pki = new TestPki('mesh-caller');
  writeFileSync(pki.file('mesh.pem'), readFileSync(join(caDir, 'ca.pem')));
  writeFileSync(pki.file('mesh.key'), readFileSync(join(caDir, 'ca.key')));
  pki.leaf('payments', 'mesh', { uri: CALLER });
  pki.ca('other');
  pki.leaf('stranger', 'other', { uri: CALLER });
  t.teardown(async () => {
    await sidecar.stop();
    await cp.stop();
    await app.close();
    pki.remove();
    rmSync(dir, { recursive: true, force: true });
  });
  const inbound = sidecar.ports.inbound;
  const client = (name: string) => ({ ca: readFileSync(join(idDir, 'ca.pem')), cert: readFileSync(pki.file(`${name}.pem`)), key: readFileSync(pki.file(`${name}.key`)) });
  const call = (name: string, agent: https.Agent | false = false) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: inbound, path: '/', agent, ...client(name), checkServerIdentity: () => undefined }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('error', reject);
      req.end();
    });
  const servedSerial = () =>
    new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: inbound, ...client('payments'), checkServerIdentity: () => undefined }, () => {
        resolve(s.getPeerCertificate().serialNumber);
        s.destroy();
      });
      s.on('error', reject);
    });

  const first = certIn(idDir).serialNumber;
  t.equal(await servedSerial(), first, 'the listener serves the certificate the mesh CA issued');
  const ok = await call('payments');
  t.equal(ok.status, 200, `expected 200 for ${CALLER}, saw ${ok.status}`);
  t.match(ok.text, new RegExp(`^By=${ID};Hash=[0-9a-f]{64};Subject="O=remora-test,CN=payments";URI=${CALLER}$`), 'the app sees XFCC with our SPIFFE ID as By and the caller\'s URI');
  const stranger = await call('stranger');
  t.equal(stranger.status, 400, 'a caller from another CA is refused');

  // Traffic (keep-alive and new connections) across the next renewal.
  const keepAlive = new https.Agent({ keepAlive: true, maxSockets: 2 });
  let running = true;
  const failures: string[] = [];
  let done = 0;
  const loop = async (agent: https.Agent | false): Promise<void> => {
    while (running) {
      try {
        const r = await call('payments', agent);
        if (r.status !== 200) failures.push(`status ${r.status}`);
        done++;
      } catch (err) {
        failures.push(String(err));
      }
    }
  };
  const loops = [loop(keepAlive), loop(false)];
  let served = first;
  await waitUntil('new handshakes to present the renewed certificate', async () => {
    const onDisk = certIn(idDir).serialNumber;
    served = await servedSerial();
    return onDisk !== first && served === onDisk;
  }, 25_000, 250).catch(() => {});
  running = false;
  await Promise.all(loops);
  keepAlive.destroy();
  t.not(served, first, 'a renewed certificate is served');
  t.equal(served, certIn(idDir).serialNumber, 'it is the one the identity client wrote');
  t.same(failures, [], `no failed request across the renewal (${done} requests)`);
});

// ---- authentication ---------------------------------------------------------------------

const ISS = 'https://kubernetes.default.svc.cluster.local';
const OTHER_ID = 'spiffe://cluster.local/ns/payments/sa/api';

type CaCallResult = { ok: true; chain: string[]; bundle: string } | { ok: false; code: string; details: string };
type CaGrpcClient = grpc.Client & {
  CreateCertificate(req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { cert_chain_pem: string[]; ca_bundle_pem: string }) => void): void;
};

async function csrFor(id: string): Promise<string> {
  const x509 = await loadX509();
  const keys = await generateEcKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: EC_P256, extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: id }])] });
  return csr.toString('pem');
}

/** One real CreateCertificate call to the ADS port. */
function createCertificate(client: CaGrpcClient, csrPem: string, token?: string): Promise<CaCallResult> {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve) => {
    client.CreateCertificate({ csr_pem: csrPem, validity_seconds: '3600' }, md, { deadline: Date.now() + 10_000 }, (err, res) => {
      if (err) resolve({ ok: false, code: grpc.status[err.code], details: err.details });
      else resolve({ ok: true, chain: res?.cert_chain_pem ?? [], bundle: res?.ca_bundle_pem ?? '' });
    });
  });
}

function caClient(t: Test, port: number): CaGrpcClient {
  const Client = loadMeshCaService();
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as CaGrpcClient;
  t.teardown(() => client.close());
  return client;
}

/** GetMeshCaStats on the management API, its counters as numbers. */
async function managementStats(port: number): Promise<{ enabled: boolean; trust_domain: string; authn_methods: string[]; issued_total: number; issued_by_identity: Record<string, number>; refused_by_reason: Record<string, number> }> {
  const { ControlPlane } = loadControlPlaneProtos();
  const client = new ControlPlane(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    GetMeshCaStats(req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void): void;
  };
  try {
    const res = await new Promise<Record<string, unknown>>((resolve, reject) =>
      client.GetMeshCaStats({}, { deadline: Date.now() + 10_000 }, (err, r) => (err ? reject(err) : resolve(r))));
    const nums = (m: unknown): Record<string, number> => Object.fromEntries(Object.entries((m ?? {}) as Record<string, string>).map(([k, v]) => [k, Number(v)]));
    return {
      enabled: res.enabled as boolean,
      trust_domain: res.trust_domain as string,
      authn_methods: res.authn_methods as string[],
      issued_total: Number(res.issued_total),
      issued_by_identity: nums(res.issued_by_identity),
      refused_by_reason: nums(res.refused_by_reason),
    };
  } finally {
    client.close();
  }
}

t.test('Kubernetes service-account tokens: A gets its own SPIFFE ID, never B\'s', async (t) => {
  const { dir, groups, caDir, idDir } = layout('remora-mesh-ca-jwt-');
  const clusterKey = testKey('cluster-key-1', 'RS256');
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, jwks([clusterKey]));
  const cpLog = capture();
  const cp = await startControlPlane({
    configDir: groups, listen: '127.0.0.1:0', management: '127.0.0.1:0', log: cpLog.log, rescanIntervalMs: 0,
    ca: { dir: caDir, jwksFile, jwtIssuer: ISS },
  });
  t.teardown(async () => {
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const client = caClient(t, cp.listenPort);
  const caCert = new X509Certificate(cp.meshCa!.caCertPem);
  // ID is spiffe://cluster.local/ns/web/sa/frontend: service account A.
  const tokenA = signJwt(clusterKey, saClaims('web', 'frontend', { iss: ISS, pod: 'frontend-5d8f' }));

  const denied = await createCertificate(client, await csrFor(OTHER_ID), tokenA);
  t.same(denied.ok ? 'a certificate' : denied.code, 'PERMISSION_DENIED', `A's token asking for B's ID: expected PERMISSION_DENIED, saw ${denied.ok ? 'a certificate' : `${denied.code}: ${denied.details}`}`);
  if (!denied.ok) t.match(denied.details, /system:serviceaccount:web:frontend.*not for "spiffe:\/\/cluster\.local\/ns\/payments\/sa\/api"/, 'the refusal says whose token and which ID');
  t.equal(cp.meshCa!.stats().issued, 0, 'no certificate issued');
  t.equal(cpLog.count(/^mesh certificate issued$/), 0, 'no issuance logged');
  const refusal = cpLog.lines.find((l) => l.msg.startsWith('certificate request refused'));
  t.equal(refusal?.reason, 'identity_mismatch', `the refusal is logged with its reason (saw ${String(refusal?.reason)})`);
  t.equal(refusal?.principal, 'system:serviceaccount:web:frontend', 'and the principal');
  t.match(String(refusal?.peer), /127\.0\.0\.1/, 'and the peer');

  const granted = await createCertificate(client, await csrFor(ID), tokenA);
  if (!granted.ok) t.fail(`A's token for A's ID: expected a certificate, saw ${granted.code}: ${granted.details}`);
  else {
    const cert = new X509Certificate(granted.chain[0]);
    t.same(uriSans(cert), [ID], 'the certificate is for A');
    t.ok(cert.verify(caCert.publicKey), 'signed by the mesh CA');
  }
  const line = cpLog.lines.find((l) => l.msg === 'mesh certificate issued');
  t.same(
    line && { identity: line.identity, principal: line.principal, authn: line.authn, pod: line.pod, level: line.level },
    { identity: ID, principal: 'system:serviceaccount:web:frontend', authn: 'kubernetes-jwt', pod: 'frontend-5d8f', level: 30 },
    'the issuance is logged with identity, principal and pod, at info',
  );
  t.match(String(line?.peer), /127\.0\.0\.1/, 'and the peer');

  const none = await createCertificate(client, await csrFor(ID));
  t.equal(none.ok ? 'a certificate' : none.code, 'UNAUTHENTICATED', 'no token: UNAUTHENTICATED');
  const forged = await createCertificate(client, await csrFor(ID), signJwt(testKey('cluster-key-1', 'RS256'), saClaims('web', 'frontend', { iss: ISS })));
  t.equal(forged.ok ? 'a certificate' : forged.code, 'UNAUTHENTICATED', 'a token signed by another key under the same kid: UNAUTHENTICATED');
  const expired = await createCertificate(client, await csrFor(ID), signJwt(clusterKey, saClaims('web', 'frontend', { iss: ISS, nowS: Math.floor(Date.now() / 1000) - 7200 })));
  t.equal(expired.ok ? 'a certificate' : expired.code, 'UNAUTHENTICATED', 'an expired token: UNAUTHENTICATED');

  // The sidecar's identity client with a projected-token file: A's identity is issued;
  // the same token for B's identity is refused and nothing is written.
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${tokenA}\n`);
  const idA = new MeshIdentityClient({
    identity: { spiffe_id: ID, dir: idDir, lifetime_seconds: 600, renew_fraction: 0.5, token_file: tokenFile },
    servers: [`127.0.0.1:${cp.listenPort}`],
    log: capture().log,
  });
  const idDirB = join(dir, 'identity-b');
  const idB = new MeshIdentityClient({
    identity: { spiffe_id: OTHER_ID, dir: idDirB, lifetime_seconds: 600, renew_fraction: 0.5, token_file: tokenFile },
    servers: [`127.0.0.1:${cp.listenPort}`],
    log: capture().log,
    initialBackoffMs: 200,
    maxBackoffMs: 400,
  });
  t.teardown(() => {
    idA.close();
    idB.close();
  });
  idA.start();
  idB.start();
  t.equal(await idA.whenReady(10_000), true, 'the identity client got A\'s certificate with the token file');
  t.same(uriSans(certIn(idDir)), [ID], 'cert.pem is for A');
  t.equal(await idB.whenReady(1500), false, 'the identity client asking for B with A\'s token has no certificate');
  t.match(idB.status().last_error?.message ?? '', /PERMISSION_DENIED|7 /, `its last error is the refusal (${idB.status().last_error?.message})`);
  t.notOk(existsSync(join(idDirB, 'cert.pem')), 'nothing written for B');
  idB.close();

  // The counts: in stats() and over the management API.
  const stats = cp.meshCa!.stats();
  t.same(stats.issuedByIdentity, { [ID]: 2 }, 'issued by identity: A twice (the call and the identity client), B never');
  t.ok((stats.refused.identity_mismatch ?? 0) >= 2, `refused identity_mismatch: the call and the identity client's tries (${stats.refused.identity_mismatch})`);
  t.equal(stats.refused.missing_token, 1, 'refused missing_token: 1');
  t.equal(stats.refused.bad_signature, 1, 'refused bad_signature: 1');
  t.equal(stats.refused.expired, 1, 'refused expired: 1');
  const m = await managementStats(cp.managementPort);
  const now = cp.meshCa!.stats();
  t.same(m, {
    enabled: true, trust_domain: 'cluster.local', authn_methods: ['kubernetes-jwt'],
    issued_total: now.issued, issued_by_identity: now.issuedByIdentity, refused_by_reason: now.refused,
  }, 'GetMeshCaStats returns the same counts');
});

t.test('no authenticator: every request refused; --insecure-allow-any-identity: issued, and logged as insecure', async (t) => {
  const { dir, groups, caDir } = layout('remora-mesh-ca-modes-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  const closedLog = capture();
  const closed = await startControlPlane({ configDir: groups, listen: '127.0.0.1:0', management: '127.0.0.1:0', log: closedLog.log, rescanIntervalMs: 0, ca: { dir: caDir } });
  t.teardown(() => closed.stop());
  const a = await createCertificate(caClient(t, closed.listenPort), await csrFor(ID), 'whatever');
  t.same(a.ok ? 'a certificate' : [a.code, /no authenticator/.test(a.details)], ['PERMISSION_DENIED', true], `no authenticator: expected PERMISSION_DENIED naming it, saw ${a.ok ? 'a certificate' : `${a.code}: ${a.details}`}`);
  t.same(closed.meshCa!.stats(), { issued: 0, issuedByIdentity: {}, refused: { no_authenticator: 1 } }, 'counted as no_authenticator');
  t.equal(closedLog.count(/EVERY certificate request will be refused/, 50), 1, 'an error at start says so');
  t.same((await managementStats(closed.managementPort)).authn_methods, [], 'GetMeshCaStats: no methods');
  await closed.stop();

  const openLog = capture();
  const open = await startControlPlane({ configDir: groups, listen: '127.0.0.1:0', management: '127.0.0.1:0', log: openLog.log, rescanIntervalMs: 0, ca: { dir: caDir, insecureAllowAnyIdentity: true } });
  t.teardown(() => open.stop());
  const b = await createCertificate(caClient(t, open.listenPort), await csrFor(OTHER_ID));
  if (!b.ok) t.fail(`insecure: expected a certificate, saw ${b.code}: ${b.details}`);
  else t.same(uriSans(new X509Certificate(b.chain[0])), [OTHER_ID], 'insecure: any identity, no token');
  t.equal(openLog.count(/^INSECURE mesh CA/, 40), 1, 'a warning at start');
  const line = openLog.lines.find((l) => l.msg === 'mesh certificate issued');
  t.same(line && [line.level, line.insecure, line.principal], [40, true, 'anonymous'], 'the issuance is logged at warn, as insecure');
});

t.test('remora control-plane: the CA flags', async (t) => {
  const run = (...args: string[]) => spawnSync(process.execPath, [BIN, 'control-plane', ...args], { encoding: 'utf8', timeout: 30_000 });
  const help = run('--help');
  t.equal(help.status, 0, '--help exits 0');
  for (const flag of ['--ca-jwks', '--ca-jwt-issuer', '--ca-jwt-audience', '--ca-bootstrap-tokens', '--insecure-allow-any-identity', '--ca-token-file']) {
    t.ok(help.stdout.includes(flag), `--help names ${flag}`);
  }
  const shared = run('--config-dir', '/nonexistent', '--ca-dir', '/nonexistent-ca', '--ca-token-file', '/t');
  t.equal(shared.status, 2, `--ca-token-file alone is a usage error (exit ${shared.status})`);
  t.match(shared.stderr, /--ca-token-file is one shared secret that proves no identity.*--insecure-allow-any-identity/, `it says why: ${shared.stderr}`);
  const noIssuer = run('--config-dir', '/nonexistent', '--ca-dir', '/nonexistent-ca', '--ca-jwks', '/j');
  t.equal(noIssuer.status, 2, '--ca-jwks without --ca-jwt-issuer: usage error');
  t.match(noIssuer.stderr, /--ca-jwks needs --ca-jwt-issuer/, 'it says so');
  const both = run('--config-dir', '/nonexistent', '--ca-dir', '/nonexistent-ca', '--ca-bootstrap-tokens', '/b', '--insecure-allow-any-identity');
  t.equal(both.status, 2, 'insecure with bootstrap tokens: usage error');
  const stray = run('--config-dir', '/nonexistent', '--ca-jwks', '/j');
  t.match(stray.stderr, /--ca-jwks needs --ca-dir/, 'CA flags need --ca-dir');
  for (const flag of ['--tls', '--server-identity', '--xds-access']) t.ok(help.stdout.includes(flag), `--help names ${flag}`);
  const tlsAlone = run('--config-dir', '/nonexistent', '--tls');
  t.equal(tlsAlone.status, 2, '--tls without --ca-dir: usage error');
  t.match(tlsAlone.stderr, /--tls needs --ca-dir/, 'it says so');
  const noTls = run('--config-dir', '/nonexistent', '--ca-dir', '/nonexistent-ca', '--server-identity', 'spiffe://cluster.local/cp');
  t.match(noTls.stderr, /--server-identity needs --tls/, '--server-identity needs --tls');
});
