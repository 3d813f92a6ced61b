// The sidecar's side of TLS to the control plane (xds.tls; docs/control-plane.md, "TLS"):
// credentials for the ADS stream and the mesh CA's calls. The server must present a
// certificate that chains to the roots of ca_file, a bundle given to the sidecar out of
// band (a ConfigMap or Secret), and that carries the expected SPIFFE ID as a URI SAN
// (server_spiffe_id; host names are not checked, as SPIFFE certificates have none). A
// control plane with another CA, or another identity, is refused before a byte of xDS
// or a CSR is exchanged, and counted. Once the sidecar holds an unexpired certificate
// (mesh_identity's files, or cert_file/key_file), it presents it (mTLS): the control
// plane then knows who it is without a token, and renews its certificate on it. Before
// that, the ADS stream carries the mesh identity's token as `authorization: Bearer`.
// Every file is read again for each new connection, so rotated roots, certificates and
// tokens apply at the next one.

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { MeshIdentityBootstrap, XdsTlsBootstrap } from '../config/types.js';
import type { Logger } from '../core/log.js';
import { defaultControlPlaneIdentity, parseSpiffeId } from '../core/spiffe.js';
import { sansOfType } from '../tls/certificates.js';
import type { XdsConnection, XdsTransport } from './xds-client.js';

/** The control plane's SPIFFE ID when xds.tls names none (src/control-plane/tls.ts). */
export function expectedServerIdentity(tls: XdsTlsBootstrap, identity: MeshIdentityBootstrap | undefined): string {
  if (tls.server_spiffe_id !== undefined) return tls.server_spiffe_id;
  const id = identity !== undefined ? parseSpiffeId(identity.spiffe_id) : null;
  const trustDomain = id !== null && id.ok ? id.trustDomain : 'cluster.local';
  return defaultControlPlaneIdentity(trustDomain);
}

/** Server name sent (SNI) when a control-plane address is an IP literal, where SNI may
 *  not carry the address. */
const SNI_FOR_IP = 'remora-control-plane';

export interface ControlPlaneTlsStatus {
  readonly server_spiffe_id: string;
  readonly ca_file: string;
  /** What this sidecar presents now: its certificate, else its token, else nothing. */
  readonly client_credential: 'certificate' | 'token' | 'none';
  /** Control planes refused because their certificate had another SPIFFE ID. */
  readonly server_identity_refusals: number;
  readonly last_refusal: { readonly message: string; readonly at: string } | null;
}

export class ControlPlaneTransport implements XdsTransport {
  readonly serverSpiffeId: string;
  private identityRefusals = 0;
  private lastRefusal: { message: string; at: string } | null = null;
  private expiredLogged: string | null = null;

  constructor(
    private readonly tls: XdsTlsBootstrap,
    private readonly identity: MeshIdentityBootstrap | undefined,
    private readonly log: Logger,
  ) {
    this.serverSpiffeId = expectedServerIdentity(tls, identity);
  }

  /** The credentials, stream metadata and channel options of a new connection; the root
   *  bundle, the client certificate and the token are read once for it. */
  connection(server: string): XdsConnection {
    let roots: Buffer;
    try {
      roots = readFileSync(this.tls.ca_file);
    } catch (err) {
      throw new Error(`xds.tls.ca_file ${this.tls.ca_file} cannot be read: ${err instanceof Error ? err.message : String(err)}`);
    }
    const client = this.clientCertificate();
    const metadata = new grpc.Metadata();
    const token = client === null ? this.token() : null;
    if (token !== null) metadata.set('authorization', `Bearer ${token}`);
    // An IP literal address gets a fixed server name (SNI may not carry an address).
    const host = server.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
    return {
      credentials: grpc.credentials.createSsl(roots, client?.key ?? null, client?.cert ?? null, { checkServerIdentity: this.checkServer }),
      metadata,
      options: isIP(host) !== 0 ? { 'grpc.ssl_target_name_override': SNI_FOR_IP } : {},
    };
  }

  status(): ControlPlaneTlsStatus {
    return {
      server_spiffe_id: this.serverSpiffeId,
      ca_file: this.tls.ca_file,
      client_credential: this.clientCertificate() !== null ? 'certificate' : this.token() !== null ? 'token' : 'none',
      server_identity_refusals: this.identityRefusals,
      last_refusal: this.lastRefusal,
    };
  }

  /** Replaces Node's host-name check: the chain was verified against ca_file already;
   *  the certificate must carry the expected SPIFFE ID. */
  private readonly checkServer = (host: string, cert: PeerCertificate): Error | undefined => {
    const uris = sansOfType(cert.subjectaltname, 'URI');
    if (uris.includes(this.serverSpiffeId)) return undefined;
    const message = `the control plane at ${host} presented a certificate for [${uris.join(', ')}], not ${this.serverSpiffeId} (xds.tls.server_spiffe_id)`;
    this.identityRefusals++;
    this.lastRefusal = { message, at: new Date().toISOString() };
    this.log.error({ host, presented: uris, expected: this.serverSpiffeId }, `control plane REFUSED: ${message}`);
    return new Error(message);
  };

  /** The client certificate and key to present, when there is an unexpired one. */
  private clientCertificate(): { cert: Buffer; key: Buffer } | null {
    const files = this.identity !== undefined
      ? { cert: join(this.identity.dir, 'cert.pem'), key: join(this.identity.dir, 'key.pem') }
      : this.tls.cert_file !== undefined && this.tls.key_file !== undefined ? { cert: this.tls.cert_file, key: this.tls.key_file } : null;
    if (files === null) return null;
    let cert: Buffer;
    let key: Buffer;
    try {
      cert = readFileSync(files.cert);
      key = readFileSync(files.key);
    } catch {
      return null; // none yet: the mesh identity has not been issued one
    }
    try {
      const leaf = new X509Certificate(cert);
      if (Date.parse(leaf.validTo) <= Date.now()) {
        if (this.expiredLogged !== leaf.serialNumber) {
          this.expiredLogged = leaf.serialNumber;
          this.log.warn({ file: files.cert, not_after: leaf.validTo }, 'the client certificate for the control plane has expired; connecting without it');
        }
        return null;
      }
    } catch {
      return null;
    }
    return { cert, key };
  }

  private token(): string | null {
    const file = this.identity?.token_file;
    if (file === undefined) return null;
    try {
      const token = readFileSync(file, 'utf8').trim();
      return token === '' ? null : token;
    } catch {
      return null;
    }
  }
}
