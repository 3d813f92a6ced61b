// Unit tests for who the control plane serves what: the caller's identity from its token
// and its verified client certificate (src/control-plane/caller.ts) with fake calls, the
// ADS group rules (src/control-plane/xds-access.ts: the Kubernetes convention, the access
// file, its re-read and its errors by line), the sidecar's expected server identity and
// the xds.tls block of the bootstrap, validated by path.

import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { authenticateCall, peerSpiffeIds, type ServerCall } from '../../src/control-plane/caller.js';
import { openCaAuthn } from '../../src/control-plane/ca-authn-open.js';
import { conventionalGroups, parseXdsAccess, XdsAccess } from '../../src/control-plane/xds-access.js';
import { expectedServerIdentity } from '../../src/control/control-plane-tls.js';
import { validateBootstrap } from '../../src/config/validate.js';
import { replaceFile, sha256Hex } from '../helpers/jwt.js';

const silent = pino({ level: 'silent' });
const TD = 'cluster.local';
const FRONTEND = 'spiffe://cluster.local/ns/web/sa/frontend';
const API = 'spiffe://cluster.local/ns/payments/sa/api';

/** A call with `authorization` metadata and, when given, a verified peer certificate. */
function call(opts: { authorization?: string; sans?: string; serial?: string } = {}): ServerCall {
  const metadata = new grpc.Metadata();
  if (opts.authorization !== undefined) metadata.set('authorization', opts.authorization);
  const auth = opts.sans !== undefined ? { transportSecurityType: 'ssl', sslPeerCertificate: { subjectaltname: opts.sans, serialNumber: opts.serial ?? 'AB12' } } : {};
  return { metadata, getAuthContext: () => auth } as unknown as ServerCall;
}

t.test('the caller: token, client certificate, both, neither', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'remora-caller-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tokens = join(dir, 'tokens');
  writeFileSync(tokens, `${API} ${sha256Hex('api-token')}\n`);
  const authn = openCaAuthn({ bootstrapTokensFile: tokens }, TD, silent);
  const now = Date.now();

  t.same(peerSpiffeIds(call({ sans: `DNS:x.example, URI:${FRONTEND}, URI:spiffe://other.domain/ns/a/sa/b` }), TD), { ids: [FRONTEND], serial: 'AB12' }, 'only SPIFFE IDs of the trust domain');
  t.same(peerSpiffeIds(call(), TD), { ids: [], serial: null }, 'no TLS peer certificate: none');

  const byCert = authenticateCall(call({ sans: `URI:${FRONTEND}` }), authn, TD, now);
  t.same(byCert.ok && byCert.principal, { method: 'mtls-certificate', name: 'certificate AB12', identities: [FRONTEND] }, 'a certificate alone authenticates');
  const byToken = authenticateCall(call({ authorization: 'Bearer api-token' }), authn, TD, now);
  t.same(byToken.ok && byToken.principal.identities, [API], 'a token alone');
  const both = authenticateCall(call({ authorization: 'Bearer api-token', sans: `URI:${FRONTEND}` }), authn, TD, now);
  t.same(both.ok && both.principal.identities, [API, FRONTEND], 'both: the identities of both');
  const staleToken = authenticateCall(call({ authorization: 'Bearer expired-or-unknown', sans: `URI:${FRONTEND}` }), authn, TD, now);
  t.same(staleToken.ok && staleToken.principal.method, 'mtls-certificate', 'a token that fails falls back to the certificate');
  const badToken = authenticateCall(call({ authorization: 'Bearer nope' }), authn, TD, now);
  t.same(badToken.ok ? 'ok' : badToken.reason, 'unknown_token', 'a bad token alone: its refusal');
  const neither = authenticateCall(call(), authn, TD, now);
  t.same(neither.ok ? 'ok' : [neither.code, neither.reason], ['UNAUTHENTICATED', 'missing_token'], 'neither: UNAUTHENTICATED');
  const foreign = authenticateCall(call({ sans: 'URI:spiffe://other.domain/ns/web/sa/frontend' }), authn, TD, now);
  t.notOk(foreign.ok, 'a certificate of another trust domain proves nothing');
});

t.test('which groups an identity is served', async (t) => {
  t.same(conventionalGroups(FRONTEND, TD), ['frontend', 'frontend.web'], 'by convention: <sa> and <sa>.<ns>');
  t.same(conventionalGroups('spiffe://cluster.local/workload/x', TD), [], 'not a Kubernetes-shaped ID: none');
  t.same(conventionalGroups('spiffe://other.domain/ns/web/sa/frontend', TD), [], 'another trust domain: none');

  const open = new XdsAccess(undefined, TD, silent);
  t.equal(open.check([FRONTEND], 'frontend'), null, 'its service account');
  t.equal(open.check([FRONTEND], 'frontend.web'), null, 'its service account and namespace');
  t.equal(open.check([FRONTEND], 'default'), null, 'the default group: anyone authenticated');
  t.match(String(open.check([FRONTEND], 'api')), /"spiffe:\/\/cluster\.local\/ns\/web\/sa\/frontend" may be served .* not "api"/, 'another group: refused with the reason');
  t.match(String(open.check([], 'frontend')), /not "frontend"/, 'no identity: nothing but default');
  t.equal(open.check(null, 'api'), null, 'the insecure CA mode (no identity bound): any group');

  const dir = mkdtempSync(join(tmpdir(), 'remora-xds-access-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'access');
  writeFileSync(file, `# gateways\napi ${FRONTEND}\nshared *\n`);
  const listed = new XdsAccess(file, TD, silent);
  t.equal(listed.check([FRONTEND], 'api'), null, 'listed: served');
  t.match(String(listed.check([API], 'api')), /served to "spiffe:\/\/cluster\.local\/ns\/web\/sa\/frontend" only \(--xds-access\)/, 'a listed group is served to the listed identities only, even the one the convention would name');
  t.equal(listed.check([API], 'shared'), null, '"*": any identity');
  t.equal(listed.check([FRONTEND], 'frontend'), null, 'groups not listed keep the convention');
  replaceFile(file, `api ${API}\n`);
  t.match(String(listed.check([FRONTEND], 'api')), /only/, 'the file is re-read when it changes');
  t.equal(listed.check([API], 'api'), null);
  replaceFile(file, 'api not-a-spiffe-id\n');
  t.equal(listed.check([API], 'api'), null, 'a bad rewrite keeps the last good rules');

  t.throws(() => parseXdsAccess(`api\nweb spiffe://other.domain/ns/a/sa/b\nx y z\nok ${API}\n`, TD), /line 1: expected .*line 2: .*not in the trust domain.*line 3: expected/, 'every bad line named');
  t.throws(() => new XdsAccess(join(dir, 'missing'), TD, silent), /--xds-access .*missing/, 'a missing file stops the start');
});

t.test('xds.tls in the bootstrap', async (t) => {
  const boot = (tls: unknown, extra: Record<string, unknown> = {}) => validateBootstrap({ xds: { servers: ['cp:18000'], node: { id: 'n', cluster: 'c' }, tls, ...extra } });
  const ok = boot({ ca_file: '/etc/remora/mesh-root/ca.pem' });
  t.ok(ok.ok, `a ca_file is enough (${ok.ok ? '' : JSON.stringify(ok.errors)})`);
  const bad = boot({ ca_file: '', server_spiffe_id: 'https://cp', cert_file: '/c.pem', extra: true });
  t.same(bad.ok ? [] : bad.errors.map((e) => e.path).sort(), ['xds.tls.ca_file', 'xds.tls.cert_file', 'xds.tls.extra', 'xds.tls.server_spiffe_id'], `errors by path (${bad.ok ? '' : JSON.stringify(bad.errors)})`);
  const withIdentity = boot({ ca_file: '/ca.pem', cert_file: '/c.pem', key_file: '/k.pem' }, { mesh_identity: { spiffe_id: FRONTEND, dir: '/id' } });
  t.match(withIdentity.ok ? '' : JSON.stringify(withIdentity.errors), /xds\.tls\.cert_file.*must not be set with xds\.mesh_identity/, 'cert_file with mesh_identity: refused');
  t.same(boot({}).ok ? [] : (boot({}) as { errors: { path: string }[] }).errors.map((e) => e.path), ['xds.tls.ca_file'], 'ca_file is required');

  t.equal(expectedServerIdentity({ ca_file: '/ca' }, undefined), 'spiffe://cluster.local/ns/remora-system/sa/remora-control-plane', 'the default server identity');
  t.equal(expectedServerIdentity({ ca_file: '/ca' }, { spiffe_id: 'spiffe://prod.example/ns/a/sa/b', dir: '/d', lifetime_seconds: 600, renew_fraction: 0.5 }),
    'spiffe://prod.example/ns/remora-system/sa/remora-control-plane', 'in the mesh identity\'s trust domain');
  t.equal(expectedServerIdentity({ ca_file: '/ca', server_spiffe_id: 'spiffe://x/cp' }, undefined), 'spiffe://x/cp', 'as configured');
});
