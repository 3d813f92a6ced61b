// Pinned trust for the sidecar's mesh identity: which CA roots the sidecar accepts from
// the control plane. The anchors are the roots given out of band
// (`mesh_identity.trust_bundle_file`, e.g. a ConfigMap), else the CA bundle already in
// the identity directory (ca.pem, pinned on first use). A reply from a control plane is
// accepted only when its certificate chains to an anchor and every certificate of its new
// CA bundle is an anchor, is signed by one, or is the self-signed twin (same subject and
// key) of one that is: CA rotation by cross-signing works; a different CA (a rogue or
// spoofed control plane) is refused and the current files stay. docs/mesh-ca.md.

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { issuedByOneOf, splitPemCertificates } from './mesh-pki.js';

export interface Anchors {
  readonly certs: readonly X509Certificate[];
  /** Where they came from; 'none' on first contact without a trust bundle. */
  readonly source: 'trust_bundle_file' | 'ca.pem' | 'none';
}

/** The certificates of a PEM file; [] when it does not exist. Throws when it exists but
 *  holds no certificate or one that does not parse. */
function readPem(file: string): X509Certificate[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const certs = splitPemCertificates(text).map((p) => new X509Certificate(p));
  if (certs.length === 0) throw new Error(`${file} holds no PEM certificate`);
  return certs;
}

/** The roots trusted now: the trust bundle file when configured (read each time, so a
 *  rotated ConfigMap applies), else the bundle pinned in ca.pem, else none yet. */
export function currentAnchors(trustBundleFile: string | undefined, caFile: string): Anchors {
  if (trustBundleFile !== undefined) {
    const certs = readPem(trustBundleFile);
    if (certs.length === 0) throw new Error(`trust_bundle_file ${trustBundleFile} does not exist`);
    return { certs, source: 'trust_bundle_file' };
  }
  let certs: X509Certificate[] = [];
  try {
    certs = readPem(caFile);
  } catch {
    certs = []; // an unreadable ca.pem pins nothing; the next bundle is trusted on first use
  }
  return certs.length > 0 ? { certs, source: 'ca.pem' } : { certs: [], source: 'none' };
}

const same = (a: X509Certificate, b: X509Certificate): boolean => a.fingerprint256 === b.fingerprint256;
const twin = (a: X509Certificate, b: X509Certificate): boolean =>
  a.subject === b.subject && a.publicKey.export({ format: 'der', type: 'spki' }).equals(b.publicKey.export({ format: 'der', type: 'spki' }));

/** Why `leaf` does not chain to an anchor through `intermediates` (at most 8 links);
 *  null when it does. */
export function chainProblem(leaf: X509Certificate, intermediates: readonly X509Certificate[], anchors: readonly X509Certificate[]): string | null {
  let cert = leaf;
  for (let depth = 0; depth < 8; depth++) {
    if (anchors.some((a) => same(a, cert)) || issuedByOneOf(cert, anchors)) return null;
    const next = intermediates.find((c) => !same(c, cert) && issuedByOneOf(cert, [c]));
    if (next === undefined) break;
    cert = next;
  }
  return `does not chain to the pinned roots (${anchors.map((a) => a.subject.replace(/\n/g, ', ')).join('; ')})`;
}

/** Why a CA bundle from the control plane may not replace the pinned one; null when every
 *  certificate in it is an anchor, is signed by one, or is the self-signed twin of one
 *  that is (a cross-signed new root). */
export function bundleProblem(bundle: readonly X509Certificate[], anchors: readonly X509Certificate[]): string | null {
  const vouched = bundle.filter((c) => anchors.some((a) => same(a, c)) || issuedByOneOf(c, anchors));
  for (const c of bundle) {
    if (vouched.includes(c) || vouched.some((v) => twin(v, c))) continue;
    return `holds ${c.subject.replace(/\n/g, ', ')} (SHA-256 ${c.fingerprint256}), which is neither a pinned root nor signed by one`;
  }
  return null;
}
