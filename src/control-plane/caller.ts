// Who is calling the control plane: the identity a gRPC call proves, for the mesh CA
// (which identity may it be issued?) and for ADS (which group may it be served?). Two
// credentials count, as Istio's istiod counts them:
// - a client certificate presented over TLS that the mesh CA issued (verified by the TLS
//   handshake against the CA, unexpired): the SPIFFE ID in its URI SAN. This is how a
//   sidecar renews and how it speaks xDS once it holds a certificate (mTLS);
// - the bearer token of the call's `authorization` metadata, as ca-authn.ts checks it:
//   a Kubernetes service-account token or a bootstrap token, before the first
//   certificate.
// A call with both is credited with the identities of both (a token that fails falls
// back to the certificate alone, so a sidecar whose projected token went stale still
// renews on its certificate). A call with neither gets ca-authn.ts's refusal.

import type * as grpc from '@grpc/grpc-js';
import { parseSpiffeId } from '../core/spiffe.js';
import { sansOfType } from '../tls/certificates.js';
import type { AuthnOutcome, CaAuthn, Principal } from './ca-authn.js';

/** The calls the control plane serves: unary (CA) and bidirectional streams (ADS). */
export type ServerCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'metadata' | 'getAuthContext'>;

/** The SPIFFE IDs of `trustDomain` in the verified client certificate of the call's TLS
 *  connection; [] without TLS, without a certificate, or with one the handshake did not
 *  verify (grpc-js reports only authorized peers). */
export function peerSpiffeIds(call: ServerCall, trustDomain: string): { ids: string[]; serial: string | null } {
  const cert = call.getAuthContext()?.sslPeerCertificate;
  if (cert === undefined) return { ids: [], serial: null };
  const ids = sansOfType(cert.subjectaltname, 'URI').filter((uri) => {
    const id = parseSpiffeId(uri);
    return id.ok && id.trustDomain === trustDomain;
  });
  return { ids, serial: cert.serialNumber ?? null };
}

/** The call's `authorization` metadata value, if any. */
export function authorizationOf(call: ServerCall): string | undefined {
  const value = call.metadata.get('authorization')[0];
  return typeof value === 'string' ? value : undefined;
}

/** Authenticates a call by its token and its client certificate (module comment). */
export function authenticateCall(call: ServerCall, authn: CaAuthn, trustDomain: string, nowMs: number): AuthnOutcome {
  const peer = peerSpiffeIds(call, trustDomain);
  const certPrincipal: Principal | null = peer.ids.length > 0
    ? { method: 'mtls-certificate', name: `certificate ${peer.serial ?? '?'}`, identities: peer.ids }
    : null;
  const authorization = authorizationOf(call);
  if (authorization !== undefined && authorization !== '') {
    const byToken = authn.authenticate(authorization, nowMs);
    if (byToken.ok) {
      const { principal } = byToken;
      if (certPrincipal === null || principal.identities === null) return byToken;
      const identities = [...new Set([...principal.identities, ...peer.ids])];
      return { ok: true, principal: { ...principal, identities } };
    }
    return certPrincipal !== null ? { ok: true, principal: certPrincipal } : byToken;
  }
  if (certPrincipal !== null) return { ok: true, principal: certPrincipal };
  return authn.authenticate(undefined, nowMs);
}
