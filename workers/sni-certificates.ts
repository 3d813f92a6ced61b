// Several certificates on one TLS server (a listener's, or a TCP filter chain's
// `additional_certificates`): each client gets the certificate whose DNS SANs match the
// server name it sent (SNI), as Envoy picks among a context's certificates: an exact name
// first, then a `*.` wildcard for one label; a client that sent no name, or one that no
// certificate names, gets `cert_file`'s. A secure context per certificate is built when the
// material arrives or rotates, never per connection.

import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import type { ListenerTlsConfig, TlsMaterial } from '../src/config/types.js';
import { sansOfType } from '../src/tls/certificates.js';
import { additionalCertificateKey } from '../src/tls/chain-key.js';
import { contextOptions } from './tls-server-options.js';

type SniCallback = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void;

export class SniCertificates {
  private exact = new Map<string, tls.SecureContext>();
  private wildcard = new Map<string, tls.SecureContext>();
  private revisions = '';

  /** `extra`: the additional certificates' material, in config order. */
  update(config: ListenerTlsConfig, extra: readonly TlsMaterial[]): void {
    const revisions = extra.map((m) => m.revision).join(',');
    if (revisions === this.revisions) return;
    const exact = new Map<string, tls.SecureContext>();
    const wildcard = new Map<string, tls.SecureContext>();
    for (const material of extra) {
      const context = tls.createSecureContext(contextOptions(config, material));
      for (const name of dnsNames(material.cert ?? '')) {
        const lower = name.toLowerCase();
        // The first certificate naming a name keeps it, as config order decides in Envoy.
        if (lower.startsWith('*.')) {
          if (!wildcard.has(lower.slice(2))) wildcard.set(lower.slice(2), context);
        } else if (!exact.has(lower)) exact.set(lower, context);
      }
    }
    this.exact = exact;
    this.wildcard = wildcard;
    this.revisions = revisions;
  }

  /** The server's SNICallback: undefined (the server's own, `cert_file`'s) when no
   *  additional certificate names `servername`. */
  readonly callback: SniCallback = (servername, cb) => {
    const name = servername.toLowerCase();
    const dot = name.indexOf('.');
    cb(null, this.exact.get(name) ?? (dot > 0 ? this.wildcard.get(name.slice(dot + 1)) : undefined));
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
