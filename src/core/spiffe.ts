// SPIFFE IDs (spiffe://<trust-domain>/<path>), checked by the rules of the SPIFFE ID
// standard: a lowercase trust domain of letters, digits, '.', '-' and '_'; a path of
// non-empty segments of letters, digits, '.', '-' and '_' (no '.' or '..' segment, no
// trailing '/'); no port, user info, query or fragment; at most 2048 bytes. A workload's
// ID must have a path. Used by the bootstrap validation, the mesh CA and the sidecar's
// identity client, so all three accept the same IDs.

const MAX_ID_BYTES = 2048;
const MAX_TRUST_DOMAIN = 255;
const TRUST_DOMAIN_RE = /^[a-z0-9._-]+$/;
const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;

export type SpiffeIdResult = { ok: true; trustDomain: string; path: string } | { ok: false; problem: string };

/** Why `td` is not a SPIFFE trust domain, or null when it is one. */
export function trustDomainProblem(td: string): string | null {
  if (td === '') return 'the trust domain is empty';
  if (td.length > MAX_TRUST_DOMAIN) return `the trust domain is longer than ${MAX_TRUST_DOMAIN} characters`;
  if (!TRUST_DOMAIN_RE.test(td)) return `the trust domain "${td}" may only hold lowercase letters, digits, ".", "-" and "_"`;
  return null;
}

/** Parses the SPIFFE ID of a workload (the path is required). */
export function parseSpiffeId(id: string): SpiffeIdResult {
  const fail = (problem: string): SpiffeIdResult => ({ ok: false, problem });
  if (Buffer.byteLength(id) > MAX_ID_BYTES) return fail(`a SPIFFE ID is at most ${MAX_ID_BYTES} bytes`);
  if (!id.startsWith('spiffe://')) return fail(`"${id}" is not a SPIFFE ID (spiffe://<trust-domain>/<path>)`);
  const rest = id.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const tdProblem = trustDomainProblem(trustDomain);
  if (tdProblem !== null) return fail(`"${id}": ${tdProblem}`);
  if (slash === -1 || slash === rest.length - 1) return fail(`"${id}" has no path (a workload's SPIFFE ID is spiffe://<trust-domain>/<path>)`);
  const path = rest.slice(slash);
  for (const segment of path.slice(1).split('/')) {
    if (segment === '') return fail(`"${id}": the path has an empty segment (a "//" or a trailing "/")`);
    if (segment === '.' || segment === '..') return fail(`"${id}": the path may not have a "." or ".." segment`);
    if (!SEGMENT_RE.test(segment)) return fail(`"${id}": path segments may only hold letters, digits, ".", "-" and "_"`);
  }
  return { ok: true, trustDomain, path };
}

/** The SPIFFE ID the reference control plane serves under unless told otherwise, and
 *  what sidecars expect of it by default (`--server-identity`, xds.tls.server_spiffe_id). */
export const defaultControlPlaneIdentity = (trustDomain: string): string => `spiffe://${trustDomain}/ns/remora-system/sa/remora-control-plane`;
