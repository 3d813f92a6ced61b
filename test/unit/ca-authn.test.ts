// Unit tests for the mesh CA's authentication (src/control-plane/ca-authn*.ts): JWTs
// signed here with RSA and EC test keys published as a JWKS file, verified for every
// refusal reason (missing, malformed, alg none and HS256, unknown kid, bad signature,
// expired, not yet valid, issuer, audience, no service account, another identity) and
// for success (RS256, PS256, ES256, no kid, the sub fallback, the 60 s leeway); the JWKS
// and the bootstrap tokens re-read when they change; bootstrap tokens per identity; no
// authenticator; the insecure mode with and without the shared token; the option rules.

import t, { type Test } from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { authnOptionsProblem, looksLikeJwt, type AuthzOutcome, type CaAuthn, type CaAuthnOptions } from '../../src/control-plane/ca-authn.js';
import { openCaAuthn } from '../../src/control-plane/ca-authn-open.js';
import { parseJwks } from '../../src/control-plane/ca-authn-jwt.js';
import { parseBootstrapTokens } from '../../src/control-plane/ca-authn-bootstrap.js';
import { parseSpiffeId } from '../../src/core/spiffe.js';
import { jwks, replaceFile, saClaims, sha256Hex, signJwt, testKey } from '../helpers/jwt.js';

const silent = pino({ level: 'silent' });
const TD = 'cluster.local';
const ISS = 'https://kubernetes.default.svc.cluster.local';
const A = 'spiffe://cluster.local/ns/web/sa/frontend';
const B = 'spiffe://cluster.local/ns/payments/sa/api';

const rsa = testKey('rsa-1', 'RS256');
const pss = testKey('pss-1', 'PS256');
const ec = testKey('ec-1', 'ES256');
const attacker = testKey('rsa-1', 'RS256'); // same kid as the real key, another key

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'remora-ca-authn-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const idOf = (s: string) => {
  const id = parseSpiffeId(s);
  if (!id.ok) throw new Error(id.problem);
  return id;
};

/** Expects an admission for `identity`; names what it saw otherwise. */
function admitted(t: Test, o: AuthzOutcome, identity: string, what: string, principal?: string): void {
  if (!o.ok) {
    t.fail(`${what}: expected a certificate for ${identity}, saw ${o.code} ${o.reason}: ${o.message}`);
    return;
  }
  t.equal(o.identity, identity, `${what}: admitted for ${identity}`);
  if (principal !== undefined) t.equal(o.principal.name, principal, `${what}: principal`);
}

/** Expects a refusal with `code` and `reason`; names what it saw otherwise. */
function refusedWith(t: Test, o: AuthzOutcome, code: string, reason: string, what: string, re?: RegExp): void {
  if (o.ok) {
    t.fail(`${what}: expected ${code} ${reason}, saw an admission of ${o.principal.name} for ${o.identity}`);
    return;
  }
  t.equal(`${o.code} ${o.reason}`, `${code} ${reason}`, `${what}: expected ${code} ${reason} (message: ${o.message})`);
  if (re !== undefined) t.match(o.message, re, `${what}: the message says why`);
}

function k8sCa(t: Test, extra: CaAuthnOptions = {}): { authn: CaAuthn; dir: string; jwksFile: string } {
  const dir = tempDir(t);
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, jwks([rsa, pss, ec]));
  return { authn: openCaAuthn({ jwksFile, jwtIssuer: ISS, ...extra }, TD, silent), dir, jwksFile };
}

t.test('Kubernetes service-account tokens: accepted for their own identity', async (t) => {
  const { authn } = k8sCa(t);
  const now = Date.now();
  const check = (token: string, id = A) => authn.check(`Bearer ${token}`, idOf(id), now);
  admitted(t, check(signJwt(rsa, saClaims('web', 'frontend'))), A, 'RS256 with kid', 'system:serviceaccount:web:frontend');
  admitted(t, check(signJwt(pss, saClaims('web', 'frontend'))), A, 'PS256');
  admitted(t, check(signJwt(ec, saClaims('web', 'frontend'))), A, 'ES256');
  admitted(t, check(signJwt(ec, saClaims('web', 'frontend'), { kid: undefined })), A, 'no kid: every key of the type tried');
  t.equal(authn.check(`bearer ${signJwt(rsa, saClaims('web', 'frontend'))}`, idOf(A), now).ok, true, 'lowercase "bearer"');
  const { 'kubernetes.io': _k8s, ...subOnly } = saClaims('payments', 'api');
  admitted(t, check(signJwt(rsa, subOnly), B), B, 'sub system:serviceaccount:<ns>:<sa> when there is no kubernetes.io claim', 'system:serviceaccount:payments:api');
  admitted(t, check(signJwt(rsa, saClaims('web', 'frontend', { aud: ['https://kubernetes.default.svc', 'remora-ca'] }))), A, 'aud is a list including remora-ca');
  admitted(t, check(signJwt(rsa, saClaims('web', 'frontend', { aud: 'remora-ca' }))), A, 'aud is a string');
  const nowS = Math.floor(now / 1000);
  admitted(t, check(signJwt(rsa, { ...saClaims('web', 'frontend'), exp: nowS - 30 })), A, 'expired 30 s ago: within the 60 s leeway');
  admitted(t, check(signJwt(rsa, { ...saClaims('web', 'frontend'), nbf: nowS + 30 })), A, 'nbf 30 s ahead: within the leeway');
  const withPod = authn.check(`Bearer ${signJwt(rsa, saClaims('web', 'frontend', { pod: 'frontend-abc' }))}`, idOf(A), now);
  t.same(withPod.ok ? withPod.principal.detail : null, { pod: 'frontend-abc' }, 'the pod is kept for the log');
  t.same(authn.methods, ['kubernetes-jwt'], 'methods');
});

t.test('Kubernetes service-account tokens: every refusal reason', async (t) => {
  const { authn } = k8sCa(t, { jwtAudience: 'remora-ca' });
  const now = Date.now();
  const nowS = Math.floor(now / 1000);
  const check = (authorization: string | undefined, id = A) => authn.check(authorization, idOf(id), now);
  const bearer = (claims: unknown, key = rsa, header: Record<string, unknown> = {}) => `Bearer ${signJwt(key, claims, header)}`;
  const good = saClaims('web', 'frontend');

  refusedWith(t, check(undefined), 'UNAUTHENTICATED', 'missing_token', 'no authorization', /authorization: Bearer/);
  refusedWith(t, check(''), 'UNAUTHENTICATED', 'missing_token', 'empty authorization');
  refusedWith(t, check(`Basic ${Buffer.from('a:b').toString('base64')}`), 'UNAUTHENTICATED', 'malformed_token', 'Basic scheme', /must be "Bearer <token>"/);
  refusedWith(t, check('Bearer not-a-jwt'), 'UNAUTHENTICATED', 'malformed_token', 'an opaque token with only a JWKS configured', /not a JWT/);
  refusedWith(t, check(bearer(good, rsa, { alg: 'none' })), 'UNAUTHENTICATED', 'unsupported_algorithm', 'alg none', /"none"/);
  refusedWith(t, check(bearer(good, rsa, { alg: 'HS256' })), 'UNAUTHENTICATED', 'unsupported_algorithm', 'HS256 keyed with the public key', /"HS256"/);
  refusedWith(t, check(bearer(good, rsa, { kid: 'rotated-away' })), 'UNAUTHENTICATED', 'unknown_key', 'a kid the JWKS does not have', /kid "rotated-away"/);
  refusedWith(t, check(bearer(good, rsa, { kid: 'ec-1' })), 'UNAUTHENTICATED', 'unsupported_algorithm', 'RS256 with the kid of an EC key', /cannot verify RS256/);
  refusedWith(t, check(bearer(good, attacker)), 'UNAUTHENTICATED', 'bad_signature', 'signed by another key with the right kid', /does not verify/);
  refusedWith(t, check(bearer(good, attacker, { kid: undefined })), 'UNAUTHENTICATED', 'bad_signature', 'signed by another key, no kid');
  const real = signJwt(rsa, good).split('.');
  const forged = `${real[0]}.${Buffer.from(JSON.stringify(saClaims('payments', 'api'))).toString('base64url')}.${real[2]}`;
  refusedWith(t, check(`Bearer ${forged}`, B), 'UNAUTHENTICATED', 'bad_signature', 'claims swapped under a real signature');
  refusedWith(t, check(bearer({ ...good, exp: nowS - 61 })), 'UNAUTHENTICATED', 'expired', 'expired 61 s ago', /expired at/);
  refusedWith(t, check(bearer({ ...good, nbf: nowS + 120 })), 'UNAUTHENTICATED', 'not_yet_valid', 'nbf 2 minutes ahead', /not valid before/);
  const { exp: _exp, ...noExp } = good;
  refusedWith(t, check(bearer(noExp)), 'UNAUTHENTICATED', 'malformed_token', 'no exp', /exp/);
  refusedWith(t, check(bearer({ ...good, iss: 'https://evil.example' })), 'UNAUTHENTICATED', 'wrong_issuer', 'another issuer', /evil\.example/);
  refusedWith(t, check(bearer({ ...good, aud: ['https://kubernetes.default.svc'] })), 'UNAUTHENTICATED', 'wrong_audience', 'the API server audience only', /remora-ca/);
  refusedWith(t, check(bearer({ ...good, aud: undefined })), 'UNAUTHENTICATED', 'wrong_audience', 'no audience');
  const { 'kubernetes.io': _k, sub: _s, ...anonymous } = good;
  refusedWith(t, check(bearer({ ...anonymous, sub: 'alice' })), 'PERMISSION_DENIED', 'no_service_account', 'a valid token of a user, not a service account');
  refusedWith(t, check(bearer({ ...good, sub: 'system:serviceaccount:payments:api' })), 'UNAUTHENTICATED', 'malformed_token', 'sub and kubernetes.io disagree', /disagree/);
  refusedWith(t, check(bearer(good), B), 'PERMISSION_DENIED', 'identity_mismatch', "A's token asking for B's ID", /system:serviceaccount:web:frontend.*"spiffe:\/\/cluster\.local\/ns\/web\/sa\/frontend", not for "spiffe:\/\/cluster\.local\/ns\/payments\/sa\/api"/);
  refusedWith(t, check(bearer(good), 'spiffe://cluster.local/ns/web/sa/frontend/extra'), 'PERMISSION_DENIED', 'identity_mismatch', 'a longer path under the same service account');
  refusedWith(t, check(bearer(good), 'spiffe://cluster.local/web/frontend'), 'PERMISSION_DENIED', 'identity_mismatch', 'another path shape');
  refusedWith(t, check(`Bearer x${'a'.repeat(20_000)}.e30.`), 'UNAUTHENTICATED', 'malformed_token', 'a huge token');
});

t.test('the JWKS is re-read when it changes (key rotation); a broken file keeps the last good keys', async (t) => {
  const { authn, jwksFile } = k8sCa(t);
  const next = testKey('rsa-2', 'RS256');
  const check = (key = rsa) => authn.check(`Bearer ${signJwt(key, saClaims('web', 'frontend'))}`, idOf(A), Date.now());
  refusedWith(t, check(next), 'UNAUTHENTICATED', 'unknown_key', 'the new key before the JWKS has it');
  replaceFile(jwksFile, jwks([rsa, next]));
  admitted(t, check(next), A, 'the new key once the JWKS has it');
  admitted(t, check(rsa), A, 'the old key while both are published');
  replaceFile(jwksFile, jwks([next]));
  refusedWith(t, check(rsa), 'UNAUTHENTICATED', 'unknown_key', 'the old key once it is removed');
  replaceFile(jwksFile, '{"keys": [');
  admitted(t, check(next), A, 'a JWKS that does not parse: the last good keys stay');
  replaceFile(jwksFile, JSON.stringify({ keys: [] }));
  admitted(t, check(next), A, 'a JWKS with no keys: the last good keys stay');
});

t.test('parseJwks keeps signature keys only', async (t) => {
  const small = testKey('small', 'RS256', 1024);
  const keys = parseJwks(JSON.stringify({
    keys: [
      { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' },
      { ...JSON.parse(jwks([ec])).keys[0], use: 'enc' },
      JSON.parse(jwks([small])).keys[0],
      JSON.parse(jwks([rsa], false)).keys[0],
    ],
  }));
  t.same(keys.map((k) => `${k.kid}:${k.kty}:${k.alg ?? '-'}`), ['rsa-1:RSA:-'], 'oct, use:enc and a 1024-bit RSA key skipped');
  t.throws(() => parseJwks('{}'), /not a JWKS/, 'not a JWKS');
  t.throws(() => parseJwks('{"keys":[{"kty":"oct","k":"eA"}]}'), /no usable signature key.*kty oct/, 'no usable key, saying why');
  const dir = tempDir(t);
  writeFileSync(join(dir, 'empty.json'), '{"keys":[]}');
  t.throws(() => openCaAuthn({ jwksFile: join(dir, 'empty.json'), jwtIssuer: ISS }, TD, silent), /--ca-jwks .*empty\.json: no usable signature key/, 'an empty JWKS stops the start');
  t.throws(() => openCaAuthn({ jwksFile: join(dir, 'missing.json'), jwtIssuer: ISS }, TD, silent), /--ca-jwks .*missing\.json: ENOENT/, 'a missing JWKS stops the start');
  // An Ed25519 key (OKP) is not a kind this CA verifies.
  const ed = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
  t.throws(() => parseJwks(JSON.stringify({ keys: [ed] })), /kty OKP/, 'OKP keys skipped');
});

t.test('bootstrap tokens: a token per identity', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'tokens');
  const tokenA = 'a'.repeat(32) + '1';
  const tokenB = 'b'.repeat(32) + '2';
  writeFileSync(file, `# identity  sha256(token)\n\n${A} ${sha256Hex(tokenA)}\n${B} ${sha256Hex(tokenB).toUpperCase()}   # upper-case hex is fine\n`);
  const authn = openCaAuthn({ bootstrapTokensFile: file }, TD, silent);
  const now = Date.now();
  admitted(t, authn.check(`Bearer ${tokenA}`, idOf(A), now), A, "A's token for A", `bootstrap-token sha256:${sha256Hex(tokenA).slice(0, 12)}`);
  admitted(t, authn.check(`Bearer ${tokenB}`, idOf(B), now), B, "B's token for B");
  refusedWith(t, authn.check(`Bearer ${tokenA}`, idOf(B), now), 'PERMISSION_DENIED', 'identity_mismatch', "A's token for B", /not for "spiffe:\/\/cluster\.local\/ns\/payments\/sa\/api"/);
  refusedWith(t, authn.check('Bearer guessed', idOf(A), now), 'UNAUTHENTICATED', 'unknown_token', 'an unknown token');
  refusedWith(t, authn.check(undefined, idOf(A), now), 'UNAUTHENTICATED', 'missing_token', 'no token');

  // A second token for A (rotation), then the first removed: re-read on change.
  const tokenA2 = 'c'.repeat(33);
  replaceFile(file, `${A} ${sha256Hex(tokenA)}\n${A} ${sha256Hex(tokenA2)}\n`);
  admitted(t, authn.check(`Bearer ${tokenA2}`, idOf(A), now), A, 'the added token');
  admitted(t, authn.check(`Bearer ${tokenA}`, idOf(A), now), A, 'the old token, still listed');
  refusedWith(t, authn.check(`Bearer ${tokenB}`, idOf(B), now), 'UNAUTHENTICATED', 'unknown_token', "B's token once its line is gone");
  replaceFile(file, `${A} ${sha256Hex(tokenA2)}\n`);
  refusedWith(t, authn.check(`Bearer ${tokenA}`, idOf(A), now), 'UNAUTHENTICATED', 'unknown_token', 'the old token once removed');
  replaceFile(file, `${A} not-a-hash\n`);
  admitted(t, authn.check(`Bearer ${tokenA2}`, idOf(A), now), A, 'a bad edit keeps the last good lines');

  t.throws(() => parseBootstrapTokens(`${A}\nspiffe://other.td/ns/x/sa/y ${sha256Hex('x')}\n${A} abc\nnot-an-id ${sha256Hex('x')}\n`, TD),
    /line 1: expected.*; line 2: .*not in this CA's trust domain.*; line 3: the hash must be 64 hex digits.*; line 4: .*not a SPIFFE ID/, 'every bad line named');
});

t.test('JWKS and bootstrap tokens together: a JWT goes to the JWT verifier, anything else to the bootstrap tokens', async (t) => {
  const dir = tempDir(t);
  const tokens = join(dir, 'tokens');
  const opaque = 'f00d'.repeat(16);
  writeFileSync(tokens, `${B} ${sha256Hex(opaque)}\n`);
  const { authn } = k8sCa(t, { bootstrapTokensFile: tokens });
  const now = Date.now();
  t.same(authn.methods, ['kubernetes-jwt', 'bootstrap-token'], 'both methods');
  admitted(t, authn.check(`Bearer ${signJwt(rsa, saClaims('web', 'frontend'))}`, idOf(A), now), A, 'a Kubernetes token');
  admitted(t, authn.check(`Bearer ${opaque}`, idOf(B), now), B, 'a bootstrap token');
  refusedWith(t, authn.check(`Bearer ${signJwt(attacker, saClaims('payments', 'api'))}`, idOf(B), now), 'UNAUTHENTICATED', 'bad_signature', 'a forged JWT does not fall through to the bootstrap tokens');
  t.ok(looksLikeJwt(signJwt(rsa, {})), 'looksLikeJwt: a JWT');
  t.notOk(looksLikeJwt(opaque), 'looksLikeJwt: hex');
  t.notOk(looksLikeJwt('a.b.c'), 'looksLikeJwt: three parts whose header is not JSON');
});

t.test('no authenticator: every request refused; insecure mode: any identity', async (t) => {
  const none = openCaAuthn({}, TD, silent);
  refusedWith(t, none.check(`Bearer ${signJwt(rsa, saClaims('web', 'frontend'))}`, idOf(A), Date.now()), 'PERMISSION_DENIED', 'no_authenticator', 'no authenticator', /no authenticator configured/);
  t.same(none.methods, [], 'no methods');

  const open = openCaAuthn({ insecureAllowAnyIdentity: true }, TD, silent);
  admitted(t, open.check(undefined, idOf(B), Date.now()), B, 'insecure: no token, any identity', 'anonymous');
  t.same(open.methods, ['insecure'], 'methods: insecure');

  const dir = tempDir(t);
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 's3cret\n');
  const gated = openCaAuthn({ insecureAllowAnyIdentity: true, tokenFile }, TD, silent);
  refusedWith(t, gated.check(undefined, idOf(A), Date.now()), 'UNAUTHENTICATED', 'missing_token', 'insecure + shared token: none sent');
  refusedWith(t, gated.check('Bearer wrong', idOf(A), Date.now()), 'UNAUTHENTICATED', 'unknown_token', 'insecure + shared token: a wrong one');
  admitted(t, gated.check('Bearer s3cret', idOf(A), Date.now()), A, 'insecure + shared token: A', 'shared-token');
  admitted(t, gated.check('Bearer s3cret', idOf(B), Date.now()), B, 'insecure + shared token: B too (it binds no identity)');
  writeFileSync(tokenFile, 'rotated');
  refusedWith(t, gated.check('Bearer s3cret', idOf(A), Date.now()), 'UNAUTHENTICATED', 'unknown_token', 'the old shared token after rotation');
  writeFileSync(join(dir, 'empty'), '\n');
  t.throws(() => openCaAuthn({ insecureAllowAnyIdentity: true, tokenFile: join(dir, 'empty') }, TD, silent), /--ca-token-file .* is empty/, 'an empty shared token file');
});

t.test('option rules', async (t) => {
  t.match(authnOptionsProblem({ tokenFile: '/t' }), /--ca-token-file is one shared secret .* only with --insecure-allow-any-identity.*--ca-jwks.*--ca-bootstrap-tokens/, '--ca-token-file alone');
  t.match(authnOptionsProblem({ insecureAllowAnyIdentity: true, jwksFile: '/j', jwtIssuer: ISS }), /cannot be combined/, 'insecure with --ca-jwks');
  t.match(authnOptionsProblem({ insecureAllowAnyIdentity: true, bootstrapTokensFile: '/b' }), /cannot be combined/, 'insecure with --ca-bootstrap-tokens');
  t.match(authnOptionsProblem({ jwksFile: '/j' }), /--ca-jwks needs --ca-jwt-issuer/, '--ca-jwks without an issuer');
  t.match(authnOptionsProblem({ jwtIssuer: ISS }), /--ca-jwt-issuer needs --ca-jwks/, 'an issuer without --ca-jwks');
  t.match(authnOptionsProblem({ jwtAudience: 'x' }), /--ca-jwt-audience needs --ca-jwks/, 'an audience without --ca-jwks');
  t.equal(authnOptionsProblem({ jwksFile: '/j', jwtIssuer: ISS, bootstrapTokensFile: '/b' }), null, 'JWKS and bootstrap tokens together');
  t.equal(authnOptionsProblem({ insecureAllowAnyIdentity: true, tokenFile: '/t' }), null, 'insecure with a shared token');
  t.equal(authnOptionsProblem({}), null, 'nothing: allowed (the CA refuses everything, and says so)');
  t.throws(() => openCaAuthn({ tokenFile: '/t' }, TD, silent), /--ca-token-file is one shared secret/, 'openCaAuthn applies the rules');
});
