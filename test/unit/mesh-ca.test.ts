// Unit tests for the mesh CA's signing rules (src/control-plane/mesh-ca.ts) and SPIFFE ID
// parsing (src/core/spiffe.ts): a good CSR gets a certificate with its URI SAN only,
// CA:false, the key usages, a 16-byte serial, backdated notBefore, verifying with the
// CA's public key; validity clamped to 10 min .. 15 days; another trust domain, two URI
// SANs, a DNS SAN, no SAN and a tampered CSR refused, counted by reason; the caller
// authenticated before the CSR is read (no authenticator: nothing signed; a Kubernetes
// token: its own identity only; the insecure mode's shared token); issuances counted by
// identity; the CA created once (key mode 0600) and loaded again; half a CA refused; the
// bootstrap's xds.mesh_identity validated by path. The authenticators themselves:
// ca-authn.test.ts.

import t, { type Test } from 'tap';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { MeshCa, MAX_CERT_TTL_S, MIN_CERT_TTL_S, type SignOutcome } from '../../src/control-plane/mesh-ca.js';
import { EC_P256, generateEcKeyPair, loadX509 } from '../../src/control/mesh-pki.js';
import { parseSpiffeId } from '../../src/core/spiffe.js';
import { renewalAt } from '../../src/control/mesh-identity.js';
import { validateBootstrap } from '../../src/config/validate.js';
import { jwks, saClaims, signJwt, testKey } from '../helpers/jwt.js';

const silent = pino({ level: 'silent' });
const ID = 'spiffe://cluster.local/ns/payments/sa/api';
/** These tests are about signing rules, not callers: any identity for anyone. */
const ANY = { insecureAllowAnyIdentity: true } as const;

async function csrPem(names: { type: 'url' | 'dns'; value: string }[] | null): Promise<string> {
  const x509 = await loadX509();
  const keys = await generateEcKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: EC_P256,
    extensions: names === null ? [] : [new x509.SubjectAlternativeNameExtension(names)],
  });
  return csr.toString('pem');
}

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'remora-mesh-ca-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function issued(t: Test, o: SignOutcome): Extract<SignOutcome, { ok: true }> {
  if (!o.ok) {
    t.fail(`expected a certificate, saw ${grpc.status[o.code]}: ${o.message}`);
    throw new Error('refused');
  }
  return o;
}

function refused(t: Test, o: SignOutcome, code: grpc.status, re: RegExp, what: string): void {
  if (o.ok) {
    t.fail(`${what}: expected ${grpc.status[code]}, saw a certificate for ${o.identity}`);
    return;
  }
  t.equal(grpc.status[o.code], grpc.status[code], `${what}: status (message: ${o.message})`);
  t.match(o.message, re, `${what}: message`);
}

t.test('SPIFFE IDs', async (t) => {
  t.same(parseSpiffeId(ID), { ok: true, trustDomain: 'cluster.local', path: '/ns/payments/sa/api' });
  for (const [id, re] of [
    ['https://cluster.local/ns/x', /not a SPIFFE ID/],
    ['spiffe://Cluster.local/ns/x', /lowercase/],
    ['spiffe://cluster.local', /no path/],
    ['spiffe://cluster.local/', /no path/],
    ['spiffe://cluster.local/ns//x', /empty segment/],
    ['spiffe://cluster.local/ns/x/', /empty segment/],
    ['spiffe://cluster.local/ns/../x', /"\." or "\.\."/],
    ['spiffe://cluster.local/ns/x?y=1', /path segments/],
    ['spiffe://cluster.local:443/ns/x', /trust domain/],
  ] as const) {
    const r = parseSpiffeId(id);
    t.notOk(r.ok, `${id} refused`);
    if (!r.ok) t.match(r.problem, re, `${id}: ${r.problem}`);
  }
});

t.test('a CA is created once, with its key mode 0600, and loaded again', async (t) => {
  const dir = tempDir(t);
  const ca = await MeshCa.open({ dir, ...ANY }, silent);
  const keyMode = statSync(join(dir, 'ca.key')).mode & 0o777;
  t.equal(keyMode.toString(8), '600', 'ca.key mode');
  const caCert = new X509Certificate(readFileSync(join(dir, 'ca.pem')));
  t.ok(caCert.ca, 'ca.pem is a CA certificate');
  t.equal(ca.caCertPem, caCert.toString(), 'caCertPem is ca.pem');
  const again = await MeshCa.open({ dir, ...ANY }, silent);
  t.equal(again.caCertPem, ca.caCertPem, 'reopened: the same CA, not a new one');
  const o = issued(t, await again.sign(await csrPem([{ type: 'url', value: ID }]), 0, undefined));
  t.ok(new X509Certificate(o.certChainPem[0]).verify(caCert.publicKey), 'the reopened CA signs with the same key');

  const half = tempDir(t);
  writeFileSync(join(half, 'ca.pem'), readFileSync(join(dir, 'ca.pem')));
  await t.rejects(MeshCa.open({ dir: half }, silent), /ca\.pem but no ca\.key/, 'half a CA refused');
  const other = tempDir(t);
  await MeshCa.open({ dir: other }, silent);
  writeFileSync(join(other, 'ca.pem'), readFileSync(join(dir, 'ca.pem')));
  await t.rejects(MeshCa.open({ dir: other }, silent), /is not the key of the first certificate/, 'a key that does not match ca.pem refused');
  await t.rejects(MeshCa.open({ dir: tempDir(t), trustDomain: 'Bad Domain' }, silent), /trust domain/, 'a bad trust domain refused');
  await t.rejects(MeshCa.open({ dir: tempDir(t), defaultTtlSeconds: 16 * 86_400 }, silent), /--cert-ttl/, 'a default TTL over 15 days refused');
});

t.test('signing rules', async (t) => {
  const dir = tempDir(t);
  const ca = await MeshCa.open({ dir, ...ANY }, silent);
  const caCert = new X509Certificate(ca.caCertPem);

  await t.test('a good CSR gets a certificate for its URI SAN', async (t) => {
    const before = Date.now();
    const o = issued(t, await ca.sign(await csrPem([{ type: 'url', value: ID }]), 0, undefined));
    t.equal(o.certChainPem.length, 1, 'chain: the leaf only (the CA is a root)');
    t.equal(o.caBundlePem, ca.caCertPem, 'the bundle is the CA certificate');
    const cert = new X509Certificate(o.certChainPem[0]);
    t.ok(cert.verify(caCert.publicKey), 'verifies with the CA public key');
    t.ok(cert.checkIssued(caCert), 'issuer is the CA subject');
    t.equal(cert.issuer, caCert.subject, 'issuer name');
    t.equal(cert.subjectAltName, `URI:${ID}`, 'the URI SAN, only');
    t.notOk(cert.subject, `empty subject, as SPIFFE X.509-SVIDs have (saw ${JSON.stringify(cert.subject)})`);
    t.equal(cert.ca, false, 'CA:false');
    t.same([...(cert.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'extendedKeyUsage serverAuth + clientAuth');
    t.equal(cert.serialNumber.length, 32, `16-byte serial (${cert.serialNumber})`);
    t.equal(cert.serialNumber, o.serial, 'the serial reported is the certificate\'s');
    const notBefore = Date.parse(cert.validFrom);
    const notAfter = Date.parse(cert.validTo);
    t.ok(Math.abs(notBefore - (before - 60_000)) < 3000, `notBefore about 60 s back: expected ~${new Date(before - 60_000).toISOString()}, saw ${cert.validFrom}`);
    t.ok(Math.abs(notAfter - (before + 86_400_000)) < 3000, `default validity 24 h: expected ~${new Date(before + 86_400_000).toISOString()}, saw ${cert.validTo}`);
    const text = new (await loadX509()).X509Certificate(o.certChainPem[0]);
    t.ok(text.getExtension('2.5.29.17')?.critical, 'the SAN is critical (the subject is empty)');
    const ku = text.getExtension('2.5.29.15');
    t.ok(ku?.critical, 'keyUsage critical');
    t.equal((ku as unknown as { usages: number }).usages, 1 | 4, 'keyUsage digitalSignature + keyEncipherment');
    const serials = new Set<string>([o.serial]);
    for (let i = 0; i < 3; i++) serials.add(issued(t, await ca.sign(await csrPem([{ type: 'url', value: ID }]), 0, undefined)).serial);
    t.equal(serials.size, 4, 'serials are random: four certificates, four serials');
  });

  await t.test('validity clamped to 10 minutes .. 15 days', async (t) => {
    for (const [asked, granted] of [
      [30 * 86_400, MAX_CERT_TTL_S],
      [MAX_CERT_TTL_S + 1, MAX_CERT_TTL_S],
      [3600, 3600],
      [60, MIN_CERT_TTL_S],
      [1, MIN_CERT_TTL_S],
    ] as const) {
      const now = Date.now();
      const o = issued(t, await ca.sign(await csrPem([{ type: 'url', value: ID }]), asked, undefined));
      const seen = (o.notAfter.getTime() - now) / 1000;
      t.ok(Math.abs(seen - granted) < 3, `asked ${asked} s: expected ${granted} s, saw ${seen.toFixed(1)} s`);
    }
    refused(t, await ca.sign(await csrPem([{ type: 'url', value: ID }]), -5, undefined), grpc.status.INVALID_ARGUMENT, /validity_seconds/, 'negative validity');
  });

  await t.test('requests refused', async (t) => {
    refused(t, await ca.sign(await csrPem([{ type: 'url', value: 'spiffe://other.domain/ns/x/sa/y' }]), 0, undefined),
      grpc.status.PERMISSION_DENIED, /trust domain "other\.domain".*"cluster\.local" only/, 'another trust domain');
    refused(t, await ca.sign(await csrPem([{ type: 'url', value: ID }, { type: 'url', value: 'spiffe://cluster.local/ns/x/sa/admin' }]), 0, undefined),
      grpc.status.INVALID_ARGUMENT, /exactly one URI/, 'two URI SANs');
    refused(t, await ca.sign(await csrPem([{ type: 'url', value: ID }, { type: 'dns', value: 'api.payments' }]), 0, undefined),
      grpc.status.INVALID_ARGUMENT, /exactly one URI.*DNS:api\.payments/, 'a URI and a DNS SAN');
    refused(t, await ca.sign(await csrPem(null), 0, undefined), grpc.status.INVALID_ARGUMENT, /one subjectAltName extension/, 'no SAN');
    refused(t, await ca.sign(await csrPem([{ type: 'url', value: 'https://example.com/x' }]), 0, undefined),
      grpc.status.INVALID_ARGUMENT, /not a SPIFFE ID/, 'a URI that is not a SPIFFE ID');
    refused(t, await ca.sign('not a csr', 0, undefined), grpc.status.INVALID_ARGUMENT, /PEM certificate request/, 'not PEM');

    // Tampered: the SAN changed after signing (ns/payments → ns/paymentz): the signature
    // no longer covers what is asked for.
    const x509 = await loadX509();
    const der = Buffer.from(new x509.Pkcs10CertificateRequest(await csrPem([{ type: 'url', value: ID }])).rawData);
    const at = der.indexOf('ns/payments');
    t.ok(at > 0, 'the SAN is in the DER');
    der[at + 'ns/payment'.length] = 'z'.charCodeAt(0);
    const tampered = new x509.Pkcs10CertificateRequest(der).toString('pem');
    refused(t, await ca.sign(tampered, 0, undefined), grpc.status.INVALID_ARGUMENT, /signature does not verify/, 'a tampered CSR');
    t.same(ca.stats().refused, { invalid_request: 7, wrong_trust_domain: 1 }, 'refusals counted by reason');
  });
});

t.test('who may ask: no authenticator, a Kubernetes token, the insecure mode with a shared token', async (t) => {
  const dir = tempDir(t);
  const csr = await csrPem([{ type: 'url', value: ID }]);

  const closed = await MeshCa.open({ dir: join(dir, 'ca') }, silent);
  t.same(closed.authnMethods, [], 'no authenticator');
  refused(t, await closed.sign(csr, 0, 'Bearer anything'), grpc.status.PERMISSION_DENIED, /no authenticator configured/, 'no authenticator: refused');
  refused(t, await closed.sign('not a csr', -1, undefined), grpc.status.PERMISSION_DENIED, /no authenticator configured/, 'no authenticator: refused before the request is read');
  t.same(closed.stats(), { issued: 0, issuedByIdentity: {}, refused: { no_authenticator: 2 } }, 'counted as no_authenticator');

  const key = testKey('k1', 'ES256');
  writeFileSync(join(dir, 'jwks.json'), jwks([key]));
  const iss = 'https://kubernetes.default.svc.cluster.local';
  const k8s = await MeshCa.open({ dir: join(dir, 'ca'), jwksFile: join(dir, 'jwks.json'), jwtIssuer: iss }, silent);
  const api = `Bearer ${signJwt(key, saClaims('payments', 'api', { iss }))}`;
  const other = `Bearer ${signJwt(key, saClaims('web', 'frontend', { iss }))}`;
  refused(t, await k8s.sign('not a csr', 0, undefined), grpc.status.UNAUTHENTICATED, /authorization: Bearer/, 'no token: refused before the CSR is read');
  refused(t, await k8s.sign('not a csr', 0, `Bearer ${signJwt(key, saClaims('payments', 'api', { iss: 'https://evil' }))}`), grpc.status.UNAUTHENTICATED, /issuer/, 'a bad token: refused before the CSR is read');
  const o = issued(t, await k8s.sign(csr, 0, api));
  t.equal(o.principal.name, 'system:serviceaccount:payments:api', 'the principal');
  refused(t, await k8s.sign(csr, 0, other), grpc.status.PERMISSION_DENIED, /system:serviceaccount:web:frontend.*not for "spiffe:\/\/cluster\.local\/ns\/payments\/sa\/api"/, "another service account's token");
  refused(t, await k8s.sign(await csrPem([{ type: 'url', value: 'spiffe://other.domain/ns/payments/sa/api' }]), 0, api), grpc.status.PERMISSION_DENIED, /trust domain/, 'the same path in another trust domain');
  issued(t, await k8s.sign(await csrPem([{ type: 'url', value: ID }]), 0, api));
  t.same(k8s.stats(), {
    issued: 2,
    issuedByIdentity: { [ID]: 2 },
    refused: { identity_mismatch: 1, missing_token: 1, wrong_issuer: 1, wrong_trust_domain: 1 },
  }, 'issued by identity, refused by reason');

  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 's3cret-token\n');
  const gated = await MeshCa.open({ dir: join(dir, 'ca'), insecureAllowAnyIdentity: true, tokenFile }, silent);
  refused(t, await gated.sign(csr, 0, undefined), grpc.status.UNAUTHENTICATED, /requires gRPC metadata "authorization: Bearer/, 'no token');
  refused(t, await gated.sign(csr, 0, 'Bearer wrong'), grpc.status.UNAUTHENTICATED, /not the CA's shared token/, 'a wrong token');
  refused(t, await gated.sign(csr, 0, 's3cret-token'), grpc.status.UNAUTHENTICATED, /must be "Bearer <token>"/, 'no Bearer scheme');
  t.equal(issued(t, await gated.sign(csr, 0, 'Bearer s3cret-token')).principal.name, 'shared-token', 'the shared token: principal');
  writeFileSync(tokenFile, 'rotated');
  refused(t, await gated.sign(csr, 0, 'Bearer s3cret-token'), grpc.status.UNAUTHENTICATED, /not the CA's shared token/, 'the old token after rotation');
  issued(t, await gated.sign(csr, 0, 'Bearer rotated'));
  t.same(gated.stats(), { issued: 2, issuedByIdentity: { [ID]: 2 }, refused: { malformed_token: 1, missing_token: 1, unknown_token: 2 } }, 'stats');
  await t.rejects(MeshCa.open({ dir: join(dir, 'ca'), tokenFile }, silent), /--ca-token-file is one shared secret/, '--ca-token-file without --insecure-allow-any-identity refused');
});

t.test('xds.mesh_identity in the bootstrap', async (t) => {
  const boot = (mesh: unknown) => validateBootstrap({ xds: { servers: ['127.0.0.1:18000'], node: { id: 'n', cluster: 'c' }, mesh_identity: mesh } });
  const ok = boot({ spiffe_id: ID, dir: '/var/run/remora/identity' });
  if (!ok.ok) t.fail(`expected valid, saw ${JSON.stringify(ok.errors)}`);
  else t.same(ok.xds.mesh_identity, { spiffe_id: ID, dir: '/var/run/remora/identity', lifetime_seconds: 86_400, renew_fraction: 0.5 }, 'defaults');
  const bad = boot({ spiffe_id: 'spiffe://cluster.local', dir: '', lifetime_seconds: 0, renew_fraction: 1, token_file: '', extra: 1 });
  t.notOk(bad.ok, 'invalid block refused');
  if (!bad.ok) {
    t.same(bad.errors.map((e) => e.path).sort(), [
      'xds.mesh_identity.dir', 'xds.mesh_identity.extra', 'xds.mesh_identity.lifetime_seconds',
      'xds.mesh_identity.renew_fraction', 'xds.mesh_identity.spiffe_id', 'xds.mesh_identity.token_file',
    ], `errors by path: ${JSON.stringify(bad.errors)}`);
  }
  const missing = boot({});
  t.same(missing.ok ? [] : missing.errors.map((e) => e.path).sort(), ['xds.mesh_identity.dir', 'xds.mesh_identity.spiffe_id'], 'required fields');
});

t.test('renewalAt: at the fraction of the lifetime, never sooner than a tenth of what is left', async (t) => {
  const now = 1_000_000_000;
  const s = 1000;
  // A day-long certificate backdated 60 s, renewed at half-life: the plan stands.
  t.equal(renewalAt({ notBefore: now - 60 * s, notAfter: now + 86_400 * s }, 0.5, now), now - 60 * s + 0.5 * 86_460 * s, 'half-life of a day');
  // lifetime 600 s, renew_fraction 0.05, backdated 60 s: the plan (27 s before the issue)
  // would renew at once, again and again; the floor is a tenth of the 600 s left.
  const spin = renewalAt({ notBefore: now - 60 * s, notAfter: now + 600 * s }, 0.05, now);
  t.equal(spin, now + 60 * s, `the renewal waits 60 s after the issue (got ${(spin - now) / s} s)`);
  // A 20 s test certificate at half-life: the plan (9 s) is later than the floor (2 s).
  t.equal(renewalAt({ notBefore: now - 2 * s, notAfter: now + 20 * s }, 0.5, now), now + 9 * s, 'half-life of a 20 s certificate');
  // Past its due time when it arrives (a CA that grants less than asked): the floor.
  t.equal(renewalAt({ notBefore: now - 500 * s, notAfter: now + 100 * s }, 0.5, now), now + 10 * s, 'a tenth of the 100 s left');
});
