// Reading certificates the way Node presents them, in one place for every reader: the
// upstream identity check, the identity of mTLS clients, /certs (src/main/cert-store.ts)
// and the mesh CA and identity client. Node joins subject alt names with ", " and
// JSON-quotes values with special characters; a peer certificate's subject is an object
// (X509Certificate#toLegacyObject gives the same shape for a parsed certificate).

import type { PeerCertificate } from 'node:tls';

/** The PEM certificates in `text`, in order. */
export function splitPemCertificates(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((pem) => `${pem}\n`) ?? [];
}

/** Subject alt names as `TYPE:value` strings ("DNS:a.b", "URI:spiffe://…"), from Node's
 *  `subjectaltname` text. */
export function subjectAltNames(raw: string | undefined): string[] {
  if (raw === undefined || raw === '') return [];
  const out: string[] = [];
  const re = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (let m = re.exec(raw); m !== null && m[0] !== ''; m = re.exec(raw)) {
    let value = m[2];
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        // keep it as written
      }
    }
    out.push(`${m[1]}:${value}`);
  }
  return out;
}

/** The values of the SANs of one type ("URI", "DNS"), in order. */
export function sansOfType(raw: string | undefined, type: 'URI' | 'DNS'): string[] {
  const prefix = `${type}:`;
  return subjectAltNames(raw)
    .filter((san) => san.startsWith(prefix))
    .map((san) => san.slice(prefix.length));
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

/** The identity Remora gives a certificate (authorization, logs, /certs): its first URI
 *  SAN (a SPIFFE ID), else its first DNS SAN, else its subject. */
export function certificateIdentity(cert: Pick<PeerCertificate, 'subject' | 'subjectaltname'>): string {
  const sans = subjectAltNames(cert.subjectaltname);
  const uri = sans.find((s) => s.startsWith('URI:'));
  if (uri !== undefined) return uri.slice(4);
  const dns = sans.find((s) => s.startsWith('DNS:'));
  return dns !== undefined ? dns.slice(4) : subjectString(cert.subject);
}

function escapeRdn(v: string): string {
  return v.replace(/([,+"\\<>;])/g, '\\$1');
}
