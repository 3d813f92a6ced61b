// Several certificates on one TLS server (a listener's, or a TCP filter chain's
// `additional_certificates`): each client gets the certificate whose DNS SANs match the
// server name it sent (SNI), as Envoy picks among a context's certificates: an exact name
// first, then a `*.` wildcard for one label, each time the first certificate in config
// order (`cert_file`'s, then the additional ones) that names it; a client that sent no
// name, or one that no certificate names, gets `cert_file`'s. A secure context per
// certificate is built when the material arrives or rotates, never per connection.

import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import type { ListenerTlsConfig, TlsMaterial } from '../src/config/types.js';
import { sansOfType } from '../src/tls/certificates.js';
import { additionalCertificateKey } from '../src/tls/chain-key.js';
import { contextOptions } from './tls-server-options.js';

type SniCallback = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void;

/** A name's certificate: an additional one's context, or null for the server's own
 *  (`cert_file`'s, which the server already uses when the callback gives none). */
type Pick = tls.SecureContext | null;

export class SniCertificates {
  private exact = new Map<string, Pick>();
  private wildcard = new Map<string, Pick>();
  private revisions = '';

  /** `primary`: `cert_file`'s material; `extra`: the additional certificates', in config
   *  order. */
  update(config: ListenerTlsConfig, primary: TlsMaterial, extra: readonly TlsMaterial[]): void {
    const revisions = [primary, ...extra].map((m) => m.revision).join(',');
    if (revisions === this.revisions) return;
    const exact = new Map<string, Pick>();
    const wildcard = new Map<string, Pick>();
    const add = (pem: string | undefined, context: Pick): void => {
      for (const name of dnsNames(pem ?? '')) {
        const lower = name.toLowerCase();
        // The first certificate naming a name keeps it, as config order decides in Envoy.
        if (lower.startsWith('*.')) {
          if (!wildcard.has(lower.slice(2))) wildcard.set(lower.slice(2), context);
        } else if (!exact.has(lower)) exact.set(lower, context);
      }
    };
    if (extra.length > 0) add(primary.cert, null);
    // A context picked by SNI replaces the server's for the handshake, client CAs included:
    // each carries cert_file's (ca_file), so a client certificate is verified whichever
    // certificate the client gets.
    const ca = primary.ca;
    for (const material of extra) add(material.cert, tls.createSecureContext(contextOptions(config, { ...material, ca })));
    this.exact = exact;
    this.wildcard = wildcard;
    this.revisions = revisions;
  }

  /** The server's SNICallback: undefined (the server's own, `cert_file`'s) unless an
   *  additional certificate is the best match for `servername`. */
  readonly callback: SniCallback = (servername, cb) => {
    const name = servername.toLowerCase();
    let pick = this.exact.get(name);
    if (pick === undefined) {
      const dot = name.indexOf('.');
      if (dot > 0) pick = this.wildcard.get(name.slice(dot + 1));
    }
    cb(null, pick ?? undefined);
  };
}

/** The DNS SANs of a PEM chain's first certificate. */
function dnsNames(pem: string): string[] {
  try {
    return sansOfType(new X509Certificate(pem).subjectAltName, 'DNS');
  } catch {
    return []; // the cert store checked it; nothing to name
  }
}

/** The additional certificates' material of the TLS config at `key` (cert store keys). */
export function additionalMaterial(config: ListenerTlsConfig, key: string, all: Readonly<Record<string, TlsMaterial>>): TlsMaterial[] {
  const out: TlsMaterial[] = [];
  config.additional_certificates.forEach((_, i) => {
    const m = all[additionalCertificateKey(key, i)];
    if (m !== undefined) out.push(m);
  });
  return out;
}
