// TLS on the control plane end to end, and the attacks it stops. The reference control
// plane runs with --tls (in process; its CA's minimum validity lowered to 5 s, a
// test-only option) and Kubernetes service-account tokens checked against a JWKS of test
// keys, as a cluster's issuer would publish them.
// - A real `remora run` sidecar with xds.tls (the CA's ca.pem given out of band) and a
//   projected-token file: it verifies the control plane's SPIFFE ID, gets its
//   certificate, is served its group over TLS and proxies traffic; with its token gone,
//   its next renewal is authenticated by its current certificate (mTLS).
// - Anonymous xDS (TLS, no certificate, no token) is refused UNAUTHENTICATED; plaintext
//   to the TLS port gets nothing; the frontend's token or certificate claiming the
//   payments group is refused PERMISSION_DENIED, and gets it once --xds-access lists it.
// - A rogue control plane with its own CA, and one with a certificate from the mesh CA
//   for another SPIFFE ID (a workload posing as the control plane), are refused by the
//   sidecar's transport before anything is exchanged: its files stay, the refusals are
//   reported.
// Everything on 127.0.0.1; processes ended by pid, temp directories removed.

import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { nodeMessage, startControlPlane, type ControlPlaneOptions, type RunningControlPlane } from '../../src/control-plane/server.js';
import { ControlPlaneTransport } from '../../src/control/control-plane-tls.js';
import { MeshIdentityClient } from '../../src/control/mesh-identity.js';
import { uriSans } from '../../src/control/mesh-pki.js';
import { freePort } from '../../src/main/ports.js';
import { loadXdsProtos, TypeUrl } from '../../src/xds/protos.js';
import { jwks, saClaims, signJwt, testKey } from '../helpers/jwt.js';
import { reportLingeringHandles } from '../helpers/lingering-handles.js';
import { admin, request, startRemora, startUpstream, waitUntil } from '../helpers/remora.js';

const ISS = 'https://kubernetes.default.svc.cluster.local';
const FRONTEND = 'spiffe://cluster.local/ns/web/sa/frontend';
const CP_ID = 'spiffe://cluster.local/ns/remora-system/sa/remora-control-plane';

type Line = Record<string, unknown> & { msg: string; level: number };

function capture(): { log: Logger; lines: Line[] } {
  const lines: Line[] = [];
  return { log: pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) }), lines };
}

// This file once passed and then did not exit: say what stays open if that recurs.
t.teardown(() => reportLingeringHandles('control-plane-tls.test'));

const clusterKey = testKey('cluster-key-1', 'RS256');
const tokenFor = (ns: string, sa: string): string => signJwt(clusterKey, saClaims(ns, sa, { iss: ISS }));

function layout(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const groups = join(dir, 'groups');
  mkdirSync(groups);
  writeFileSync(join(dir, 'jwks.json'), jwks([clusterKey]));
  return { dir, groups, caDir: join(dir, 'ca'), idDir: join(dir, 'identity'), jwksFile: join(dir, 'jwks.json') };
}

function groupConfig(upstream: number, body = 'app'): string {
  return JSON.stringify({
    listeners: [{ name: 'main', address: '127.0.0.1', port: 0, virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'all', match: { prefix: '/' }, direct_response: { status: 200, body } }] }] }],
    clusters: [{ name: 'app', endpoints: [{ address: '127.0.0.1', port: upstream }] }],
  });
}

function tlsControlPlane(l: ReturnType<typeof layout>, log: Logger, extra: Partial<ControlPlaneOptions> = {}, port = 0): Promise<RunningControlPlane> {
  return startControlPlane({
    configDir: l.groups, listen: `127.0.0.1:${port}`, management: '127.0.0.1:0', log, rescanIntervalMs: 0,
    ca: { dir: l.caDir, minTtlSeconds: 5, jwksFile: l.jwksFile, jwtIssuer: ISS },
    tls: {},
    ...extra,
  });
}

type AdsOutcome = { ok: true; resources: number; version: string } | { ok: false; code: string; details: string };

/** Opens an ADS stream as node (id, cluster) and asks for listeners: the first response,
 *  or how the stream ended. */
function adsAsk(port: number, credentials: grpc.ChannelCredentials, cluster: string, opts: { token?: string; channel?: grpc.ChannelOptions } = {}): Promise<AdsOutcome> {
  const { ads: Ads } = loadXdsProtos();
  const client = new Ads(`127.0.0.1:${port}`, credentials, opts.channel ?? {}) as unknown as grpc.Client & {
    StreamAggregatedResources(md: grpc.Metadata, o: grpc.CallOptions): grpc.ClientDuplexStream<object, { resources?: unknown[]; version_info?: string }>;
  };
  const md = new grpc.Metadata();
  if (opts.token !== undefined) md.set('authorization', `Bearer ${opts.token}`);
  return new Promise<AdsOutcome>((resolve) => {
    const stream = client.StreamAggregatedResources(md, { deadline: Date.now() + 8000 });
    stream.on('data', (res) => {
      resolve({ ok: true, resources: res.resources?.length ?? 0, version: res.version_info ?? '' });
      stream.cancel();
    });
    stream.on('error', (err: grpc.ServiceError) => resolve({ ok: false, code: grpc.status[err.code], details: err.details }));
    stream.write({ node: { id: `probe-${cluster}`, cluster }, type_url: TypeUrl.Listener, resource_names: [] });
  }).finally(() => client.close());
}

/** TLS credentials that trust the mesh CA and accept the control plane's SPIFFE ID. */
function meshCredentials(caPem: Buffer, client?: { key: Buffer; cert: Buffer }): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(caPem, client?.key ?? null, client?.cert ?? null, {
    checkServerIdentity: (_host, cert) => (cert.subjectaltname?.includes(`URI:${CP_ID}`) ? undefined : new Error(`not ${CP_ID}`)),
  });
}
const SNI = { 'grpc.ssl_target_name_override': 'remora-control-plane' };

t.test('a sidecar over TLS: verified control plane, its own group only, renewal on its certificate', async (t) => {
  const l = layout('remora-cp-tls-');
  const app = await startUpstream((_req, res) => res.end('from app'));
  writeFileSync(join(l.groups, 'frontend.json'), groupConfig(app.port, 'frontend config'));
  writeFileSync(join(l.groups, 'payments.json'), groupConfig(app.port, 'payments config'));
  const cpLog = capture();
  const cp = await tlsControlPlane(l, cpLog.log);
  const caPem = readFileSync(join(l.caDir, 'ca.pem'));
  const rootFile = join(l.dir, 'mesh-root.pem'); // the out-of-band copy (a ConfigMap)
  writeFileSync(rootFile, caPem);
  const tokenFile = join(l.dir, 'token');
  writeFileSync(tokenFile, `${tokenFor('web', 'frontend')}\n`);
  const sidecar = await startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    xds: {
      servers: [`127.0.0.1:${cp.listenPort}`],
      node: { id: 'frontend-1', cluster: 'frontend' },
      initial_fetch_timeout_ms: 10_000,
      tls: { ca_file: rootFile },
      mesh_identity: { spiffe_id: FRONTEND, dir: l.idDir, lifetime_seconds: 6, renew_fraction: 0.5, token_file: tokenFile },
    },
  });
  t.teardown(async () => {
    await sidecar.stop();
    await cp.stop();
    await app.close();
    rmSync(l.dir, { recursive: true, force: true });
  });

  // The control plane's own certificate: from the mesh CA, for its SPIFFE ID.
  t.equal(cp.tls?.serverIdentity, CP_ID, 'the control plane serves under its default SPIFFE ID');
  const served = await request(sidecar.ports.main, { path: '/' });
  t.equal(served.status, 200, `traffic through the config served over TLS (saw ${served.status})`);
  t.equal(served.text, 'frontend config', 'the frontend group, as node.cluster named it');
  const nodes = cp.listNodes();
  t.equal(nodes.length, 1, 'one ADS stream');
  t.equal(nodes[0]?.group, 'frontend');
  t.match(String(nodes[0]?.principal), /^(system:serviceaccount:web:frontend|certificate )/, `the stream's caller is known (${String(nodes[0]?.principal)})`);
  t.equal(nodes[0] && nodeMessage(nodes[0]).principal, nodes[0]?.principal, 'ListNodes carries it');
  const dump = async () => JSON.parse((await admin(sidecar.adminPort, '/config_dump')).text) as {
    xds: { tls?: { server_spiffe_id: string; client_credential: string } };
    mesh_identity?: { serial: string; trust_source: string; last_renewal_at: string };
  };
  const first = await dump();
  t.equal(first.xds.tls?.server_spiffe_id, CP_ID, '/config_dump shows the server identity verified');
  t.equal(first.mesh_identity?.trust_source, 'trust_bundle_file', 'xds.tls.ca_file pins the mesh identity too');
  t.same(uriSans(new X509Certificate(readFileSync(join(l.idDir, 'cert.pem')))), [FRONTEND], 'the sidecar holds its certificate');

  // The token goes away (a projected token's file unreadable): the next renewal is
  // authenticated by the certificate the sidecar holds, over mTLS.
  rmSync(tokenFile);
  const serial = first.mesh_identity?.serial;
  await waitUntil('a renewal without the token', async () => (await dump()).mesh_identity?.serial !== serial, 15_000, 200);
  const byCert = cpLog.lines.filter((l) => l.msg === 'mesh certificate issued' && l.authn === 'mtls-certificate');
  t.ok(byCert.length >= 1, `a certificate issued on the strength of the current one (issuances: ${cpLog.lines.filter((l) => l.msg === 'mesh certificate issued').map((l) => l.authn).join(', ')})`);
  t.equal(byCert[0]?.identity, FRONTEND, 'for the same identity');
  t.equal((await dump()).xds.tls?.client_credential, 'certificate', 'the sidecar now presents its certificate');
  t.equal((await request(sidecar.ports.main, { path: '/' })).status, 200, 'traffic still flows');
});

t.test('anonymous and misattributed xDS is refused; --xds-access grants a group', async (t) => {
  const l = layout('remora-cp-tls-authz-');
  writeFileSync(join(l.groups, 'frontend.json'), groupConfig(1, 'frontend'));
  writeFileSync(join(l.groups, 'payments.json'), groupConfig(1, 'payments'));
  const accessFile = join(l.dir, 'xds-access');
  writeFileSync(accessFile, '# nothing listed yet\n');
  const cp = await tlsControlPlane(l, capture().log, { tls: { accessFile } });
  t.teardown(async () => {
    await cp.stop();
    rmSync(l.dir, { recursive: true, force: true });
  });
  const caPem = readFileSync(join(l.caDir, 'ca.pem'));
  const creds = meshCredentials(caPem);

  const anonymous = await adsAsk(cp.listenPort, creds, 'payments', { channel: SNI });
  t.same(anonymous.ok ? 'resources' : anonymous.code, 'UNAUTHENTICATED', `no certificate, no token: expected UNAUTHENTICATED, saw ${JSON.stringify(anonymous)}`);
  const plaintext = await adsAsk(cp.listenPort, grpc.credentials.createInsecure(), 'payments');
  t.notOk(plaintext.ok, `plaintext to the TLS port gets nothing (saw ${JSON.stringify(plaintext)})`);
  const forged = await adsAsk(cp.listenPort, creds, 'payments', { channel: SNI, token: signJwt(testKey('cluster-key-1', 'RS256'), saClaims('payments', 'payments', { iss: ISS })) });
  t.same(forged.ok ? 'resources' : forged.code, 'UNAUTHENTICATED', 'a token signed by another key: UNAUTHENTICATED');

  const frontendToken = tokenFor('web', 'frontend');
  const claim = await adsAsk(cp.listenPort, creds, 'payments', { channel: SNI, token: frontendToken });
  t.same(claim.ok ? 'resources' : claim.code, 'PERMISSION_DENIED', `the frontend's token claiming cluster payments: expected PERMISSION_DENIED, saw ${JSON.stringify(claim)}`);
  if (!claim.ok) t.match(claim.details, /spiffe:\/\/cluster\.local\/ns\/web\/sa\/frontend.*not "payments"/, 'the refusal names the identity and the group');
  const own = await adsAsk(cp.listenPort, creds, 'frontend', { channel: SNI, token: frontendToken });
  t.same(own.ok && own.resources, 1, `the frontend's token for its own group gets its listener (saw ${JSON.stringify(own)})`);

  // The same with a certificate from the mesh CA instead of a token (mTLS).
  const idClient = new MeshIdentityClient({
    identity: { spiffe_id: FRONTEND, dir: l.idDir, lifetime_seconds: 600, renew_fraction: 0.5, token_file: join(l.dir, 'token') },
    servers: [`127.0.0.1:${cp.listenPort}`],
    log: capture().log,
    transport: new ControlPlaneTransport({ ca_file: join(l.caDir, 'ca.pem') }, undefined, capture().log),
  });
  writeFileSync(join(l.dir, 'token'), frontendToken);
  t.teardown(() => idClient.close());
  idClient.start();
  t.equal(await idClient.whenReady(10_000), true, 'a certificate for the frontend, over TLS');
  const mine = { key: readFileSync(join(l.idDir, 'key.pem')), cert: readFileSync(join(l.idDir, 'cert.pem')) };
  const mtls = meshCredentials(caPem, mine);
  const certClaim = await adsAsk(cp.listenPort, mtls, 'payments', { channel: SNI });
  t.same(certClaim.ok ? 'resources' : certClaim.code, 'PERMISSION_DENIED', `the frontend's certificate claiming payments: expected PERMISSION_DENIED, saw ${JSON.stringify(certClaim)}`);
  const certOwn = await adsAsk(cp.listenPort, mtls, 'frontend', { channel: SNI });
  t.same(certOwn.ok && certOwn.resources, 1, 'its certificate for its own group: served');
  const viaDefault = await adsAsk(cp.listenPort, mtls, 'no-such-group', { channel: SNI });
  t.same(viaDefault.ok && viaDefault.resources, 0, 'a group that does not exist and no default: empty sets, nothing leaked');

  // The access file grants payments to the frontend (re-read when it changes).
  writeFileSync(accessFile, `payments ${FRONTEND}\n`);
  const granted = await adsAsk(cp.listenPort, mtls, 'payments', { channel: SNI });
  t.same(granted.ok && granted.resources, 1, `listed in --xds-access: served (saw ${JSON.stringify(granted)})`);
  const refusals = cp.xdsRefusals();
  t.ok((refusals.missing_token ?? 0) >= 1 && (refusals.group_not_allowed ?? 0) >= 2, `refusals counted by reason (${JSON.stringify(refusals)})`);
});

t.test('a rogue control plane is refused before anything is exchanged', async (t) => {
  const real = layout('remora-cp-tls-real-');
  const rogue = layout('remora-cp-tls-rogue-');
  writeFileSync(join(real.groups, 'frontend.json'), groupConfig(1));
  writeFileSync(join(rogue.groups, 'frontend.json'), groupConfig(1));
  const port = await freePort();
  let cp = await tlsControlPlane(real, capture().log, {}, port);
  const rootFile = join(real.dir, 'mesh-root.pem');
  writeFileSync(rootFile, readFileSync(join(real.caDir, 'ca.pem')));
  const tokenFile = join(real.dir, 'token');
  writeFileSync(tokenFile, tokenFor('web', 'frontend'));
  const log = capture();
  const identity = { spiffe_id: FRONTEND, dir: real.idDir, lifetime_seconds: 6, renew_fraction: 0.5, token_file: tokenFile, trust_bundle_file: rootFile };
  const transport = new ControlPlaneTransport({ ca_file: rootFile }, identity, log.log);
  const client = new MeshIdentityClient({ identity, servers: [`127.0.0.1:${port}`], log: log.log, transport, initialBackoffMs: 200, maxBackoffMs: 500 });
  t.teardown(async () => {
    client.close();
    await cp.stop();
    rmSync(real.dir, { recursive: true, force: true });
    rmSync(rogue.dir, { recursive: true, force: true });
  });
  client.start();
  t.equal(await client.whenReady(10_000), true, 'a certificate from the real control plane');
  const files = () => ['cert.pem', 'ca.pem'].map((f) => readFileSync(join(real.idDir, f), 'utf8')).join('');
  const before = files();

  // A control plane with its own CA takes the address.
  await cp.stop();
  cp = await tlsControlPlane(rogue, capture().log, {}, port);
  const failuresBefore = client.status().consecutive_failures;
  await waitUntil('a renewal attempt refused', async () => client.status().consecutive_failures > failuresBefore, 15_000, 100);
  t.match(String(client.status().last_error?.message), /certificate|UNAVAILABLE/i, `the TLS handshake failed (${client.status().last_error?.message})`);
  t.equal(files(), before, 'cert.pem and ca.pem stay those of the real CA');

  // A workload holding a certificate from the real mesh CA poses as the control plane:
  // the chain verifies, the SPIFFE ID does not.
  await cp.stop();
  cp = await tlsControlPlane(real, capture().log, { tls: { serverIdentity: FRONTEND } }, port);
  await waitUntil('the impostor refused by SPIFFE ID', async () => transport.status().server_identity_refusals >= 1, 15_000, 100);
  t.equal(transport.status().server_identity_refusals >= 1, true, 'counted');
  t.match(String(transport.status().last_refusal?.message), /presented a certificate for \[spiffe:\/\/cluster\.local\/ns\/web\/sa\/frontend\], not spiffe:\/\/cluster\.local\/ns\/remora-system\/sa\/remora-control-plane/);
  t.ok(log.lines.some((x) => /control plane REFUSED/.test(x.msg) && x.level === 50), 'logged as an error');
  t.equal(files(), before, 'the files stay');

  // The real control plane is back: renewals resume.
  await cp.stop();
  cp = await tlsControlPlane(real, capture().log, {}, port);
  await waitUntil('a renewal from the real control plane', async () => files() !== before, 15_000, 100);
  t.same(uriSans(new X509Certificate(readFileSync(join(real.idDir, 'cert.pem')))), [FRONTEND]);
});

t.test('stop() closes connections that have not finished their TLS handshake', async (t) => {
  const l = layout('remora-cp-tls-stop-');
  writeFileSync(join(l.groups, 'frontend.json'), groupConfig(1));
  const cp = await tlsControlPlane(l, capture().log);
  t.teardown(() => rmSync(l.dir, { recursive: true, force: true }));
  // One connection that sent the first bytes of a ClientHello and stalls, one that sent
  // nothing, one to the management port that sent nothing.
  const open = (port: number, bytes: Buffer | null) =>
    new Promise<Socket>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => {
        if (bytes !== null) s.write(bytes);
        resolve(s);
      });
      s.once('error', reject);
    });
  const stalled = [
    await open(cp.listenPort, Buffer.from([0x16, 0x03, 0x01, 0x02])),
    await open(cp.listenPort, null),
    await open(cp.managementPort, null),
  ];
  const closed = stalled.map((s) => new Promise<number>((resolve) => {
    s.on('error', () => undefined);
    s.once('close', () => resolve(Date.now()));
    s.resume(); // read, so that the server's FIN is seen
  }));
  t.teardown(() => stalled.forEach((s) => s.destroy()));
  await new Promise((resolve) => setTimeout(resolve, 200));
  const stopAt = Date.now();
  await cp.stop();
  const deadline = new Promise<string>((resolve) => setTimeout(() => resolve('still open 3 s after stop()'), 3000).unref());
  const outcomes = await Promise.all(closed.map((c) => Promise.race([c.then((at) => `closed ${at - stopAt} ms after stop() began`), deadline])));
  t.same(outcomes.map((o) => o.startsWith('closed')), [true, true, true], `every stalled connection closed by stop(), expected within 3 s: ${outcomes.join('; ')}`);
});
