// Who is on the other end of an mTLS connection, read once per connection from the
// verified client certificate: the identity used by authorization and access logs (the
// SPIFFE URI SAN, else the first DNS SAN, else the subject) and this hop's element of
// x-forwarded-client-cert in Envoy's format (By, Hash, Subject, URI, DNS).

import { createHash } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { certificateIdentity, sansOfType, subjectString } from './certificates.js';

export interface PeerIdentity {
  /** The identity patterns are matched against. */
  readonly id: string;
  /** This hop's XFCC element, ready to send (By=…;Hash=…;Subject="…";URI=…;DNS=…). */
  readonly xfcc: string;
}

/** The identity of a verified peer certificate; `localIdentity` is the listener's own
 *  (its certificate's URI SAN), sent as XFCC's By. Null for an empty certificate. */
export function peerIdentity(cert: PeerCertificate, localIdentity: string): PeerIdentity | null {
  if (cert.raw === undefined || cert.raw.length === 0) return null;
  const uris = sansOfType(cert.subjectaltname, 'URI');
  const dns = sansOfType(cert.subjectaltname, 'DNS');
  const subject = subjectString(cert.subject);
  const id = certificateIdentity(cert);
  let xfcc = '';
  if (localIdentity !== '') xfcc += `By=${xfccValue(localIdentity)};`;
  xfcc += `Hash=${createHash('sha256').update(cert.raw).digest('hex')}`;
  if (subject !== '') xfcc += `;Subject=${xfccValue(subject)}`;
  // Envoy sends one URI (the first) and every DNS SAN as its own DNS= pair.
  if (uris.length > 0) xfcc += `;URI=${xfccValue(uris[0])}`;
  for (const d of dns) xfcc += `;DNS=${xfccValue(d)}`;
  return { id, xfcc };
}

/** Values with `,;=` or quotes are quoted, quotes escaped (Envoy's XFCC rules). */
function xfccValue(v: string): string {
  return /[,;="\s]/.test(v) ? `"${v.replace(/(["\\])/g, '\\$1')}"` : v;
}
