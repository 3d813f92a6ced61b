// Test issuer of Kubernetes-like service-account tokens: key pairs made with node:crypto,
// their public halves published as a JWKS (what `kubectl get --raw /openid/v1/jwks`
// returns), and JWTs signed here (RS*, PS*, ES*, or anything else for the negative
// cases: alg none, HS256, a header or payload that is not JSON). Used by the mesh CA's
// unit and integration tests.

import { constants, createHash, createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';

export interface TestKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** A key pair for `alg` (RS256/PS256: RSA 2048; ES256: P-256; ES384: P-384). */
export function testKey(kid: string, alg: 'RS256' | 'PS256' | 'ES256' | 'ES384', bits = 2048): TestKey {
  const pair = alg.startsWith('ES')
    ? generateKeyPairSync('ec', { namedCurve: alg === 'ES256' ? 'P-256' : 'P-384' })
    : generateKeyPairSync('rsa', { modulusLength: bits });
  return { kid, alg, ...pair };
}

/** The JWKS of the keys' public halves (`use: sig`; `kid`, and `alg` unless withAlg is false). */
export function jwks(keys: readonly TestKey[], withAlg = true): string {
  return JSON.stringify({
    keys: keys.map((k) => ({ ...k.publicKey.export({ format: 'jwk' }), use: 'sig', kid: k.kid, ...(withAlg ? { alg: k.alg } : {}) })),
  });
}

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** A JWS compact token over `claims`, signed with `key` by `header.alg` (default the
 *  key's alg). `header.kid` defaults to the key's kid; pass kid: undefined to omit it. */
export function signJwt(key: TestKey, claims: unknown, header: Record<string, unknown> = {}): string {
  const h: Record<string, unknown> = { alg: key.alg, kid: key.kid, ...header };
  for (const k of Object.keys(h)) if (h[k] === undefined) delete h[k];
  const data = `${b64(h)}.${b64(claims)}`;
  const alg = String(h.alg);
  const hash = `sha${alg.slice(2)}`;
  let sig: Buffer;
  if (alg.startsWith('RS')) sig = sign(hash, Buffer.from(data), { key: key.privateKey, padding: constants.RSA_PKCS1_PADDING });
  else if (alg.startsWith('PS')) sig = sign(hash, Buffer.from(data), { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(alg.slice(2)) / 8 });
  else if (alg.startsWith('ES')) sig = sign(hash, Buffer.from(data), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  // The classic confusion attack: HMAC keyed with the issuer's PUBLIC key (PEM).
  else if (alg.startsWith('HS')) sig = createHmac(hash, key.publicKey.export({ format: 'pem', type: 'spki' })).update(data).digest();
  else sig = Buffer.alloc(0); // alg none
  return `${data}.${sig.toString('base64url')}`;
}

/** Claims of a projected service-account token for ns/sa, valid from now for `ttlS`. */
export function saClaims(
  ns: string,
  sa: string,
  opts: { iss?: string; aud?: string | string[]; nowS?: number; ttlS?: number; pod?: string } = {},
): Record<string, unknown> {
  const now = opts.nowS ?? Math.floor(Date.now() / 1000);
  return {
    aud: opts.aud ?? ['remora-ca'],
    exp: now + (opts.ttlS ?? 3600),
    iat: now,
    nbf: now,
    iss: opts.iss ?? 'https://kubernetes.default.svc.cluster.local',
    'kubernetes.io': {
      namespace: ns,
      pod: { name: opts.pod ?? `${sa}-7f9c`, uid: '00000000-0000-0000-0000-000000000001' },
      serviceaccount: { name: sa, uid: '00000000-0000-0000-0000-000000000002' },
    },
    sub: `system:serviceaccount:${ns}:${sa}`,
  };
}

/** sha256 hex of a token, as a bootstrap-tokens line wants it. */
export const sha256Hex = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Replaces a file the way a Kubernetes volume update does: a new file renamed over it. */
export function replaceFile(path: string, content: string): void {
  writeFileSync(`${path}.new`, content);
  renameSync(`${path}.new`, path);
}
