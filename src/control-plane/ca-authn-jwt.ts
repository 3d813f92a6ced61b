// The mesh CA's Kubernetes authenticator: a pod's projected service-account token (a
// JWT the API server signs) proves its namespace and service account, and so the one
// SPIFFE ID it may have: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
// Verified offline with node:crypto against the issuer's public keys, a JWKS file
// (`kubectl get --raw /openid/v1/jwks`), re-read when it changes (reloaded-file.ts).
//
// The rules: JWS compact form, at most 16 KiB; alg RS256/384/512, PS256/384/512 or
// ES256/384/512 (`none` and HS* refused: a public key is no HMAC secret); no `crit`
// header; the key picked by `kid` (every key of the algorithm's type tried when the
// token has none); a key's own `alg`, when it has one, must be the token's; RSA keys of
// 2048 bits or more. Then `exp` (required) and `nbf` with 60 s of leeway, `iss` equal to
// --ca-jwt-issuer, `aud` containing --ca-jwt-audience, and the service account from the
// `kubernetes.io` claim (`namespace`, `serviceaccount.name`), else from
// `sub: system:serviceaccount:<ns>:<sa>`. Istio's istiod does the same through the
// TokenReview API; reading the JWKS instead needs no API server access and no RBAC.

import { constants, createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { Logger } from '../core/log.js';
import { parseSpiffeId } from '../core/spiffe.js';
import { ReloadedFile } from './reloaded-file.js';
import {
  JWT_LEEWAY_S, refuse, unauthenticated, type AuthnOutcome, type Authenticator, type Refusal,
} from './ca-authn.js';

/** A token larger than this is refused unread. */
const MAX_TOKEN_BYTES = 16 * 1024;
const MIN_RSA_BITS = 2048;

interface AlgSpec {
  readonly kty: 'RSA' | 'EC';
  readonly hash: 'sha256' | 'sha384' | 'sha512';
  /** EC: the JWK curve; the signature is r || s, twice the coordinate size. */
  readonly crv?: 'P-256' | 'P-384' | 'P-521';
  /** RSA: PKCS#1 v1.5, or PSS with the salt as long as the hash (RFC 7518 3.5). */
  readonly pss?: number;
}

const ALGS: Readonly<Record<string, AlgSpec>> = {
  RS256: { kty: 'RSA', hash: 'sha256' },
  RS384: { kty: 'RSA', hash: 'sha384' },
  RS512: { kty: 'RSA', hash: 'sha512' },
  PS256: { kty: 'RSA', hash: 'sha256', pss: 32 },
  PS384: { kty: 'RSA', hash: 'sha384', pss: 48 },
  PS512: { kty: 'RSA', hash: 'sha512', pss: 64 },
  ES256: { kty: 'EC', hash: 'sha256', crv: 'P-256' },
  ES384: { kty: 'EC', hash: 'sha384', crv: 'P-384' },
  ES512: { kty: 'EC', hash: 'sha512', crv: 'P-521' },
};

/** One verification key of the JWKS. */
export interface JwksKey {
  readonly kid: string | undefined;
  readonly kty: 'RSA' | 'EC';
  readonly crv: string | undefined;
  /** The key's own `alg`, when the JWKS names one. */
  readonly alg: string | undefined;
  readonly key: KeyObject;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** A JWKS document → its usable signature keys (RSA ≥ 2048 bits, EC P-256/384/521).
 *  Throws when it is not a JWKS or holds no usable key, naming the keys skipped. */
export function parseJwks(text: string): JwksKey[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!isObject(doc) || !Array.isArray(doc.keys)) throw new Error('not a JWKS: expected {"keys": [...]} (kubectl get --raw /openid/v1/jwks)');
  const keys: JwksKey[] = [];
  const skipped: string[] = [];
  doc.keys.forEach((jwk: unknown, i: number) => {
    const name = `keys[${i}]${isObject(jwk) && typeof jwk.kid === 'string' ? ` (kid ${jwk.kid})` : ''}`;
    if (!isObject(jwk)) return void skipped.push(`${name}: not an object`);
    if (jwk.use !== undefined && jwk.use !== 'sig') return void skipped.push(`${name}: use is "${String(jwk.use)}", not "sig"`);
    if (jwk.kty !== 'RSA' && jwk.kty !== 'EC') return void skipped.push(`${name}: kty ${String(jwk.kty)} (RSA or EC only)`);
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    } catch (err) {
      return void skipped.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const bits = key.asymmetricKeyDetails?.modulusLength;
    if (jwk.kty === 'RSA' && (bits ?? 0) < MIN_RSA_BITS) return void skipped.push(`${name}: RSA key of ${bits ?? '?'} bits (at least ${MIN_RSA_BITS})`);
    keys.push({ kid: str(jwk.kid), kty: jwk.kty, crv: str(jwk.crv), alg: str(jwk.alg), key });
  });
  if (keys.length === 0) throw new Error(`no usable signature key (RSA or EC)${skipped.length > 0 ? `: ${skipped.join('; ')}` : ''}`);
  return keys;
}

export interface JwtAuthenticatorOptions {
  readonly jwksFile: string;
  readonly issuer: string;
  readonly audience: string;
  /** The CA's trust domain: the SPIFFE IDs tokens prove are in it. */
  readonly trustDomain: string;
  readonly log: Logger;
}

export class JwtAuthenticator implements Authenticator {
  readonly method = 'kubernetes-jwt' as const;
  private readonly jwks: ReloadedFile<JwksKey[]>;

  /** Throws when the JWKS file cannot be read or holds no usable key. */
  constructor(private readonly opts: JwtAuthenticatorOptions) {
    const log = opts.log;
    try {
      this.jwks = new ReloadedFile(opts.jwksFile, parseJwks, log, '--ca-jwks', (keys) => log.info({ kids: keys.map((k) => k.kid ?? null) }, 'JWKS keys now in use'));
    } catch (err) {
      throw new Error(`--ca-jwks ${opts.jwksFile}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** The kids of the keys in use (null: a key without kid). */
  kids(): (string | null)[] {
    return this.jwks.current().map((k) => k.kid ?? null);
  }

  authenticate(token: string, nowMs: number): AuthnOutcome {
    if (Buffer.byteLength(token) > MAX_TOKEN_BYTES) return unauthenticated('malformed_token', `the token is larger than ${MAX_TOKEN_BYTES} bytes`);
    const parts = token.split('.');
    if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) return unauthenticated('malformed_token', 'the token is not a JWT (three base64url parts)');
    const header = decodeJson(parts[0]);
    if (header === null) return unauthenticated('malformed_token', "the JWT's header is not a JSON object");
    const alg = header.alg;
    if (typeof alg !== 'string') return unauthenticated('malformed_token', "the JWT's header has no alg");
    const spec = ALGS[alg];
    if (spec === undefined) return unauthenticated('unsupported_algorithm', `the JWT's alg is ${JSON.stringify(alg)}; RS256, ES256, PS256 (and their 384/512 forms) only`);
    if (header.crit !== undefined) return unauthenticated('malformed_token', "the JWT's header has crit extensions, which this CA does not implement");
    const kid = header.kid;
    if (kid !== undefined && typeof kid !== 'string') return unauthenticated('malformed_token', "the JWT's kid is not a string");

    const all = this.jwks.current();
    const byKid = kid === undefined ? all : all.filter((k) => k.kid === kid);
    if (byKid.length === 0) return unauthenticated('unknown_key', `no key of --ca-jwks has kid "${kid}" (the cluster's keys changed? refresh the JWKS)`);
    const fitting = byKid.filter((k) => k.kty === spec.kty && (spec.crv === undefined || k.crv === spec.crv) && (k.alg === undefined || k.alg === alg));
    if (fitting.length === 0) {
      return unauthenticated(kid === undefined ? 'unknown_key' : 'unsupported_algorithm', kid === undefined ? `no key of --ca-jwks can verify ${alg}` : `the key "${kid}" cannot verify ${alg}`);
    }
    const data = Buffer.from(`${parts[0]}.${parts[1]}`);
    const signature = Buffer.from(parts[2], 'base64url');
    if (!fitting.some((k) => verifies(spec, k.key, data, signature))) {
      return unauthenticated('bad_signature', `the JWT's signature does not verify with ${kid === undefined ? `any ${spec.kty} key` : `the key "${kid}"`} of --ca-jwks`);
    }

    const claims = decodeJson(parts[1]);
    if (claims === null) return unauthenticated('malformed_token', "the JWT's payload is not a JSON object");
    return this.claimsOutcome(claims, nowMs);
  }

  private claimsOutcome(claims: Record<string, unknown>, nowMs: number): AuthnOutcome {
    const now = nowMs / 1000;
    const { exp, nbf, iss, aud } = claims;
    if (typeof exp !== 'number') return unauthenticated('malformed_token', 'the JWT has no numeric exp claim (tokens that never expire are refused)');
    if (now > exp + JWT_LEEWAY_S) return unauthenticated('expired', `the JWT expired at ${isoSeconds(exp)}`);
    if (nbf !== undefined && typeof nbf !== 'number') return unauthenticated('malformed_token', "the JWT's nbf claim is not a number");
    if (typeof nbf === 'number' && now < nbf - JWT_LEEWAY_S) return unauthenticated('not_yet_valid', `the JWT is not valid before ${isoSeconds(nbf)}`);
    if (iss !== this.opts.issuer) return unauthenticated('wrong_issuer', `the JWT's issuer is ${JSON.stringify(iss ?? null)}; this CA accepts ${JSON.stringify(this.opts.issuer)} (--ca-jwt-issuer)`);
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
    if (!audiences.includes(this.opts.audience)) {
      return unauthenticated('wrong_audience', `the JWT's audience ${JSON.stringify(aud ?? null)} does not include "${this.opts.audience}" (a projected token with audience: ${this.opts.audience})`);
    }
    const sa = serviceAccount(claims);
    if ('ok' in sa) return sa;
    const identity = `spiffe://${this.opts.trustDomain}/ns/${sa.namespace}/sa/${sa.name}`;
    const parsed = parseSpiffeId(identity);
    if (!parsed.ok) return unauthenticated('malformed_token', `the service account does not make a SPIFFE ID: ${parsed.problem}`);
    return {
      ok: true,
      principal: {
        method: this.method,
        name: `system:serviceaccount:${sa.namespace}:${sa.name}`,
        identities: [identity],
        ...(sa.pod !== undefined ? { detail: { pod: sa.pod } } : {}),
      },
    };
  }
}

/** The token's service account: the `kubernetes.io` claim, else `sub`; both must agree. */
function serviceAccount(claims: Record<string, unknown>): { namespace: string; name: string; pod?: string } | Refusal {
  const k8s = claims['kubernetes.io'];
  const m = typeof claims.sub === 'string' ? /^system:serviceaccount:([^:]+):([^:]+)$/.exec(claims.sub) : null;
  const fromSub = m === null ? null : { namespace: m[1], name: m[2] };
  if (k8s !== undefined) {
    if (!isObject(k8s)) return unauthenticated('malformed_token', 'the JWT\'s "kubernetes.io" claim is not an object');
    const namespace = k8s.namespace;
    const account = k8s.serviceaccount;
    const name = isObject(account) ? account.name : undefined;
    if (typeof namespace !== 'string' || typeof name !== 'string') {
      return unauthenticated('malformed_token', 'the JWT\'s "kubernetes.io" claim lacks namespace or serviceaccount.name');
    }
    if (fromSub !== null && (fromSub.namespace !== namespace || fromSub.name !== name)) {
      return unauthenticated('malformed_token', `the JWT's sub (${String(claims.sub)}) and its "kubernetes.io" claim (${namespace}/${name}) disagree`);
    }
    const pod = isObject(k8s.pod) ? str(k8s.pod.name) : undefined;
    return { namespace, name, ...(pod !== undefined ? { pod } : {}) };
  }
  if (fromSub !== null) return fromSub;
  return refuse('PERMISSION_DENIED', 'no_service_account', `the JWT names no Kubernetes service account (no "kubernetes.io" claim; sub ${JSON.stringify(claims.sub ?? null)})`);
}

function verifies(spec: AlgSpec, key: KeyObject, data: Buffer, signature: Buffer): boolean {
  try {
    if (spec.kty === 'EC') return verify(spec.hash, data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    if (spec.pss !== undefined) return verify(spec.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: spec.pss }, signature);
    return verify(spec.hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
  } catch {
    return false;
  }
}

function decodeJson(part: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return isObject(v) ? v : null;
  } catch {
    return null;
  }
}

function isoSeconds(s: number): string {
  const d = new Date(s * 1000);
  return Number.isNaN(d.getTime()) ? String(s) : d.toISOString();
}
