// Who may ask the mesh CA for which SPIFFE ID (docs/mesh-ca.md, "Authentication"): the
// interface every authenticator implements, the refusal reasons (stable tokens, counted
// by the CA and written in its logs), the options and their rules, and CaAuthn, which
// routes a request's `authorization: Bearer <token>` to the authenticator for it and
// checks the SPIFFE ID asked for against the identities the token proves. Istio's way:
// the caller proves who it is, and is issued certificates for that identity only.
//
// Two phases, so that an unauthenticated caller costs no CSR parsing: authenticate()
// the token first (→ a Principal with the identities it may hold), then authorize() the
// SPIFFE ID read from the CSR. check() does both. The implementations are
// ca-authn-jwt.ts (Kubernetes service-account tokens), ca-authn-bootstrap.ts (a token
// per identity) and ca-authn-shared-token.ts (the insecure mode's shared secret);
// ca-authn-open.ts builds a CaAuthn from options. This file imports none of them.

/** How a principal was authenticated. `insecure`: --insecure-allow-any-identity;
 *  `mtls-certificate`: a client certificate the mesh CA issued (caller.ts). */
export type AuthnMethod = 'kubernetes-jwt' | 'bootstrap-token' | 'mtls-certificate' | 'insecure';

/** Why a request was refused: the label of remora_ca_requests_refused_total and the
 *  `reason` of the CA's log lines. The authentication reasons, then the CA's own. */
export type RefusalReason =
  | 'no_authenticator' // the CA runs with no authenticator and without --insecure-allow-any-identity
  | 'missing_token' // no authorization metadata
  | 'malformed_token' // not "Bearer <token>", a JWT that does not decode, a claim of the wrong type
  | 'unsupported_algorithm' // alg none, HS*, or an algorithm the key cannot do
  | 'unknown_key' // no JWKS key has the token's kid (or no key fits its algorithm)
  | 'bad_signature'
  | 'expired' // exp (plus leeway) has passed
  | 'not_yet_valid' // nbf (minus leeway) is still ahead
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'unknown_token' // a bootstrap (or shared) token that matches no line
  | 'no_service_account' // a valid JWT that names no Kubernetes service account
  | 'identity_mismatch' // a valid credential, for another SPIFFE ID
  | 'invalid_request' // the CSR or validity_seconds (INVALID_ARGUMENT)
  | 'wrong_trust_domain' // a SPIFFE ID of another trust domain
  | 'group_not_allowed' // ADS: the caller's identity may not be served the node group it claims
  | 'internal_error'; // signing failed

/** The gRPC status a refusal is answered with (names of grpc.status). */
export type RefusalCode = 'UNAUTHENTICATED' | 'PERMISSION_DENIED' | 'INVALID_ARGUMENT' | 'INTERNAL';

export interface Refusal {
  readonly ok: false;
  readonly code: RefusalCode;
  readonly reason: RefusalReason;
  /** For the caller and the log: which rule failed, never a secret. */
  readonly message: string;
}

export const refuse = (code: RefusalCode, reason: RefusalReason, message: string): Refusal => ({ ok: false, code, reason, message });
export const unauthenticated = (reason: RefusalReason, message: string): Refusal => refuse('UNAUTHENTICATED', reason, message);

/** Who the caller proved to be. */
export interface Principal {
  readonly method: AuthnMethod;
  /** For logs: `system:serviceaccount:<ns>:<sa>`, `bootstrap-token sha256:<12 hex>`,
   *  `certificate <serial>`, `shared-token` or `anonymous`. Never the token itself. */
  readonly name: string;
  /** The SPIFFE IDs it may be issued certificates for; null = any (insecure mode only). */
  readonly identities: readonly string[] | null;
  /** Extra log fields (the pod of a Kubernetes token, ...). */
  readonly detail?: Readonly<Record<string, string>>;
}

export type AuthnOutcome = { readonly ok: true; readonly principal: Principal } | Refusal;
export type AuthzOutcome = { readonly ok: true; readonly principal: Principal; readonly identity: string } | Refusal;

/** One kind of credential. `token` is what followed "Bearer "; `nowMs` the clock. */
export interface Authenticator {
  readonly method: AuthnMethod;
  authenticate(token: string, nowMs: number): AuthnOutcome;
}

/** A SPIFFE ID as src/core/spiffe.ts parses it. */
export interface SpiffeIdParts {
  readonly trustDomain: string;
  readonly path: string;
}

export interface CaAuthnOptions {
  /** A JWKS file (the cluster's service-account issuer keys). Re-read when it changes. */
  readonly jwksFile?: string;
  /** The `iss` a Kubernetes token must carry; required with jwksFile. */
  readonly jwtIssuer?: string;
  /** The audience a Kubernetes token must include. Default remora-ca. */
  readonly jwtAudience?: string;
  /** Lines `<spiffe-id> <sha256-hex-of-token>`. Re-read when it changes. */
  readonly bootstrapTokensFile?: string;
  /** Demos only: sign any identity for anyone (with tokenFile: anyone holding it). */
  readonly insecureAllowAnyIdentity?: boolean;
  /** A shared secret (the file's content, trimmed): only with insecureAllowAnyIdentity,
   *  where it gates who may ask. It binds no identity. */
  readonly tokenFile?: string;
}

export const DEFAULT_JWT_AUDIENCE = 'remora-ca';
/** Clock skew allowed on a token's exp and nbf, seconds. */
export const JWT_LEEWAY_S = 60;

/** What is wrong with a combination of options (as command-line flags), or null. */
export function authnOptionsProblem(o: CaAuthnOptions): string | null {
  if (o.jwtIssuer !== undefined && o.jwksFile === undefined) return '--ca-jwt-issuer needs --ca-jwks FILE';
  if (o.jwtAudience !== undefined && o.jwksFile === undefined) return '--ca-jwt-audience needs --ca-jwks FILE';
  if (o.jwksFile !== undefined && (o.jwtIssuer === undefined || o.jwtIssuer === '')) {
    return '--ca-jwks needs --ca-jwt-issuer ISSUER (the cluster\'s service-account issuer: kubectl get --raw /.well-known/openid-configuration, field "issuer")';
  }
  if (o.jwtAudience === '') return '--ca-jwt-audience is empty';
  const authenticated = o.jwksFile !== undefined || o.bootstrapTokensFile !== undefined;
  if (o.insecureAllowAnyIdentity === true && authenticated) {
    return '--insecure-allow-any-identity cannot be combined with --ca-jwks or --ca-bootstrap-tokens: it would let every caller past them';
  }
  if (o.tokenFile !== undefined && o.insecureAllowAnyIdentity !== true) {
    return '--ca-token-file is one shared secret that proves no identity: every holder could ask for every identity. It works only with --insecure-allow-any-identity (demos); '
      + 'to authenticate callers use --ca-jwks with --ca-jwt-issuer (Kubernetes service-account tokens) or --ca-bootstrap-tokens FILE (a token per identity)';
  }
  return null;
}

/** The token of "Bearer <token>" (scheme case-insensitive), or null. */
export function bearerToken(authorization: string): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return m === null ? null : m[1];
}

/** Three base64url segments whose first decodes to a JSON object with an `alg`: a JWT
 *  (JWS compact form) as far as routing goes; the JWT verifier checks the rest. */
export function looksLikeJwt(token: string): boolean {
  const parts = token.split('.');
  if (parts.length !== 3 || !/^[A-Za-z0-9_-]+$/.test(parts[0])) return false;
  try {
    const header: unknown = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    return typeof header === 'object' && header !== null && 'alg' in header;
  } catch {
    return false;
  }
}

/** The authenticators a CA runs with. */
export interface CaAuthnParts {
  readonly jwt?: Authenticator;
  readonly bootstrap?: Authenticator;
  /** Set only with `insecure`: the shared token gating who may ask. */
  readonly sharedToken?: Authenticator;
  readonly insecure: boolean;
}

export class CaAuthn {
  constructor(private readonly parts: CaAuthnParts) {}

  /** The methods configured, for logs and the management API. */
  get methods(): AuthnMethod[] {
    const { jwt, bootstrap, insecure } = this.parts;
    return [...(jwt ? [jwt.method] : []), ...(bootstrap ? [bootstrap.method] : []), ...(insecure ? ['insecure' as const] : [])];
  }

  get insecure(): boolean {
    return this.parts.insecure;
  }

  /** Phase one: who is the caller? `authorization` is the request's metadata value. */
  authenticate(authorization: string | undefined, nowMs: number): AuthnOutcome {
    const { jwt, bootstrap, sharedToken, insecure } = this.parts;
    if (insecure) {
      if (sharedToken === undefined) return { ok: true, principal: { method: 'insecure', name: 'anonymous', identities: null } };
      const token = this.token(authorization);
      return typeof token === 'string' ? sharedToken.authenticate(token, nowMs) : token;
    }
    if (jwt === undefined && bootstrap === undefined) {
      return refuse('PERMISSION_DENIED', 'no_authenticator', 'this CA has no authenticator configured (--ca-jwks or --ca-bootstrap-tokens) and signs nothing');
    }
    const token = this.token(authorization);
    if (typeof token !== 'string') return token;
    if (jwt !== undefined && looksLikeJwt(token)) return jwt.authenticate(token, nowMs);
    if (bootstrap !== undefined) return bootstrap.authenticate(token, nowMs);
    return unauthenticated('malformed_token', 'the bearer token is not a JWT (this CA accepts Kubernetes service-account tokens only)');
  }

  /** Phase two: may `principal` have a certificate for `id`? */
  authorize(principal: Principal, id: SpiffeIdParts): AuthzOutcome {
    const identity = `spiffe://${id.trustDomain}${id.path}`;
    if (principal.identities === null || principal.identities.includes(identity)) return { ok: true, principal, identity };
    const proven = principal.identities.length === 1 ? `"${principal.identities[0]}"` : `[${principal.identities.map((i) => `"${i}"`).join(', ')}]`;
    return refuse('PERMISSION_DENIED', 'identity_mismatch', `the credential (${principal.name}) is for ${proven}, not for "${identity}"`);
  }

  /** Both phases. */
  check(authorization: string | undefined, id: SpiffeIdParts, nowMs: number): AuthzOutcome {
    const authn = this.authenticate(authorization, nowMs);
    return authn.ok ? this.authorize(authn.principal, id) : authn;
  }

  private token(authorization: string | undefined): string | Refusal {
    if (authorization === undefined || authorization === '') {
      return unauthenticated('missing_token', 'this CA requires gRPC metadata "authorization: Bearer <token>" (a sidecar sends xds.mesh_identity.token_file)');
    }
    return bearerToken(authorization) ?? unauthenticated('malformed_token', 'the authorization metadata must be "Bearer <token>"');
  }
}
