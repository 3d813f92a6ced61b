// Who is on the other end of an mTLS connection, read once per connection from the
// verified client certificate: the identity used by authorization and access logs (the
// SPIFFE URI SAN, else the first DNS SAN, else the subject) and this hop's element of
// x-forwarded-client-cert in Envoy's format (By, Hash, Subject, URI, DNS).

import { createHash } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { subjectAltNames } from '../upstream/upstream-tls.js';

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
  const uris: string[] = [];
  const dns: string[] = [];
  for (const san of subjectAltNames(cert)) {
    if (san.startsWith('URI:')) uris.push(san.slice(4));
    else if (san.startsWith('DNS:')) dns.push(san.slice(4));
  }
  const subject = subjectString(cert.subject);
  const id = uris[0] ?? dns[0] ?? subject;
  let xfcc = '';
  if (localIdentity !== '') xfcc += `By=${xfccValue(localIdentity)};`;
  xfcc += `Hash=${createHash('sha256').update(cert.raw).digest('hex')}`;
  if (subject !== '') xfcc += `;Subject=${xfccValue(subject)}`;
  // Envoy sends one URI (the first) and every DNS SAN as its own DNS= pair.
  if (uris.length > 0) xfcc += `;URI=${xfccValue(uris[0])}`;
  for (const d of dns) xfcc += `;DNS=${xfccValue(d)}`;
  return { id, xfcc };
}

/** The subject as an RFC 2253-style string, most specific attribute first ("CN=a,O=b"). */
export function subjectString(subject: PeerCertificate['subject'] | undefined): string {
  if (subject === undefined || subject === null) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(subject)) {
    for (const v of Array.isArray(value) ? value : [value]) parts.push(`${key}=${escapeRdn(String(v))}`);
  }
  return parts.reverse().join(',');
}

function escapeRdn(v: string): string {
  return v.replace(/([,+"\\<>;])/g, '\\$1');
}

/** Values with `,;=` or quotes are quoted, quotes escaped (Envoy's XFCC rules). */
function xfccValue(v: string): string {
  return /[,;="\s]/.test(v) ? `"${v.replace(/(["\\])/g, '\\$1')}"` : v;
}
