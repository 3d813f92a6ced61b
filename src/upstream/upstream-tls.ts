// Upstream TLS for one cluster, as one worker sees it: the SecureContext (built once per
// applied config, not per connection), the server identity check, and per endpoint the
// TLS session kept for resumption by the next connection of that endpoint's pool.
//
// Safe defaults: TLS 1.2 at least (1.3 preferred: it is the highest offered), Node's
// default (modern) cipher list, renegotiation refused, the configured CA bundle only
// (no system roots), certificate verification always on.

import { constants as cryptoConstants } from 'node:crypto';
import { isIP } from 'node:net';
import tls from 'node:tls';
import type { TlsMaterial, UpstreamTlsConfig } from '../config/types.js';
import { subjectAltNames } from '../tls/certificates.js';

/** What a connection offers by ALPN for the version it speaks (after the cluster's
 *  alpn_protocols, if any: offeredAlpn). */
export const HTTP1_ALPN: readonly string[] = ['http/1.1'];
export const H2_ALPN: readonly string[] = ['h2'];

/** No renegotiation, either direction (a TLS 1.2 renegotiation request is refused). */
export const NO_RENEGOTIATION = cryptoConstants.SSL_OP_NO_RENEGOTIATION;

/** A cluster's TLS settings, compiled when a worker applies a config snapshot or rotated
 *  files (the PEM text comes from the main thread, src/main/cert-store.ts). */
export class ClusterTls {
  /** The material's revision (0 when there was none). */
  readonly revision: number;
  /** The compiled context; null when `error` is set. */
  readonly secureContext: tls.SecureContext | null;
  /** Why the TLS settings could not be loaded (unreadable file, bad PEM, key/cert
   *  mismatch); every connection of the cluster then fails with it (503 UF). */
  readonly error: string | null;

  constructor(
    readonly clusterName: string,
    readonly config: UpstreamTlsConfig,
    material: TlsMaterial | undefined,
  ) {
    this.revision = material?.revision ?? 0;
    let context: tls.SecureContext | null = null;
    let error: string | null = null;
    try {
      if (material === undefined) throw new Error('its files were not loaded');
      context = tls.createSecureContext({
        ca: material.ca,
        ...(material.cert !== undefined ? { cert: material.cert, key: material.key } : {}),
        minVersion: config.min_version,
        maxVersion: 'TLSv1.3',
        secureOptions: NO_RENEGOTIATION,
      });
    } catch (err) {
      error = `cluster "${clusterName}" TLS settings cannot be used: ${err instanceof Error ? err.message : String(err)}`;
    }
    this.secureContext = context;
    this.error = error;
  }

  /** The TLS state of one endpoint's pool (its SNI name, identity check and session cache). */
  forEndpoint(address: string): EndpointTls {
    return new EndpointTls(this, serverName(this.config, address));
  }
}

/** Per pool: connect options shared by all its connections and the last TLS session. */
export class EndpointTls {
  /** The session of the last successful handshake, offered for resumption. */
  session: Buffer | undefined = undefined;
  readonly checkServerIdentity: (host: string, cert: tls.PeerCertificate) => Error | undefined;

  constructor(
    readonly cluster: ClusterTls,
    readonly servername: string | undefined,
  ) {
    this.checkServerIdentity = serverIdentityCheck(cluster.config, servername);
  }

  /** What a connection offers by ALPN: the cluster's alpn_protocols (Istio's peers pick
   *  their mTLS chain by `istio`), then `own`, the version it speaks. */
  alpn(own: readonly string[]): string[] {
    return offeredAlpn(this.cluster.config, own);
  }

  /** Options for tls.connect (the caller adds its own read handling). */
  connectOptions(host: string, port: number): tls.ConnectionOptions {
    return {
      host,
      port,
      ...(this.servername !== undefined ? { servername: this.servername } : {}),
      secureContext: this.cluster.secureContext!,
      ...(this.session !== undefined ? { session: this.session } : {}),
      checkServerIdentity: this.checkServerIdentity,
      minVersion: this.cluster.config.min_version,
      ALPNProtocols: this.alpn(HTTP1_ALPN),
      rejectUnauthorized: true,
    };
  }

  readonly onSession = (session: Buffer): void => {
    this.session = session;
  };
}

/** The cluster's alpn_protocols, then `own` (the version a connection speaks). */
export function offeredAlpn(config: UpstreamTlsConfig, own: readonly string[]): string[] {
  return config.alpn_protocols === undefined ? [...own] : [...config.alpn_protocols, ...own];
}

/** The SNI name for `address`: the configured one, else the address when it is a host name. */
export function serverName(config: UpstreamTlsConfig, address: string): string | undefined {
  return config.sni ?? (isIP(address) === 0 ? address : undefined);
}

/** How the server certificate's identity is checked: the expected SANs when configured,
 *  else host name verification against the SNI name, else CA verification only (an IP
 *  endpoint without SNI). */
export function serverIdentityCheck(
  config: UpstreamTlsConfig,
  servername: string | undefined,
): (host: string, cert: tls.PeerCertificate) => Error | undefined {
  const expected = config.verify_subject_alt_names;
  if (expected.length > 0) return (_host, cert) => checkSubjectAltNames(expected, cert);
  if (servername !== undefined) return (_host, cert) => tls.checkServerIdentity(servername, cert);
  return () => undefined;
}

/** Options for an https request or agent to `address` with a cluster's TLS settings
 *  (the active health checker's connections: same checks as the data path). `own`: the
 *  version the checks speak, offered by ALPN unless the cluster's alpn_protocols are. */
export function clientTlsOptions(config: UpstreamTlsConfig, material: TlsMaterial, address: string, own: readonly string[] = HTTP1_ALPN): tls.ConnectionOptions {
  const servername = serverName(config, address);
  return {
    ca: material.ca,
    ...(material.cert !== undefined ? { cert: material.cert, key: material.key } : {}),
    ...(servername !== undefined ? { servername } : {}),
    checkServerIdentity: serverIdentityCheck(config, servername),
    minVersion: config.min_version,
    maxVersion: 'TLSv1.3',
    secureOptions: NO_RENEGOTIATION,
    ALPNProtocols: offeredAlpn(config, own),
    rejectUnauthorized: true,
  };
}

/** The server certificate must present one of `expected` as a URI or DNS SAN (exact match;
 *  DNS names compare case-insensitively). */
export function checkSubjectAltNames(expected: readonly string[], cert: tls.PeerCertificate): Error | undefined {
  const sans = subjectAltNames(cert.subjectaltname);
  for (const san of sans) {
    const colon = san.indexOf(':');
    const type = san.slice(0, colon);
    const value = san.slice(colon + 1);
    for (const want of expected) {
      if (type === 'URI' && value === want) return undefined;
      if (type === 'DNS' && value.toLowerCase() === want.toLowerCase()) return undefined;
    }
  }
  const err = new Error(
    `upstream TLS identity mismatch: the server certificate's subject alt names (${sans.join(', ') || 'none'}) ` +
      `match none of verify_subject_alt_names (${expected.join(', ')})`,
  ) as Error & { code: string };
  err.code = 'ERR_TLS_CERT_ALTNAME_INVALID';
  return err;
}
