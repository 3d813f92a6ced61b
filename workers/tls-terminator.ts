// TLS termination for a TCP listener's filter chain (`filter_chains[].tls`): a node:tls
// server that never listens, handed each connection the chain takes (its ClientHello,
// read to pick the chain, put back first). The handshake is Remora's, with the chain's
// certificate and, with `ca_file`, a client certificate that must verify (else the
// handshake fails and the connection closes); the decrypted connection then goes to the
// chain's tcp_proxy. Certificates rotate in place, as on TLS listeners.

import type { Socket } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import type { ListenerTlsConfig, TlsMaterial } from '../src/config/types.js';
import { reportError } from '../src/core/report.js';
import { contextOptions, HANDSHAKE_TIMEOUT_MS, keepSessions } from './tls-server-options.js';
import { SniCertificates } from './sni-certificates.js';

export class TlsTerminator {
  private readonly server: tls.Server;
  private revision: number;

  /** The additional certificates, picked by SNI. */
  private readonly sni = new SniCertificates();

  constructor(
    private readonly config: ListenerTlsConfig,
    material: TlsMaterial,
    /** The additional certificates' material. */
    extra: readonly TlsMaterial[],
    /** A connection whose handshake succeeded. */
    onSecure: (socket: TLSSocket) => void,
  ) {
    this.revision = material.revision;
    this.sni.update(config, material, extra);
    this.server = tls.createServer({
      ...contextOptions(config, material),
      ...(config.additional_certificates.length > 0 ? { SNICallback: this.sni.callback } : {}),
      requestCert: config.ca_file !== undefined,
      rejectUnauthorized: config.require_client_certificate,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    });
    if (config.session_resumption === 'cache') keepSessions(this.server);
    this.server.on('secureConnection', (socket: TLSSocket) => {
      try {
        onSecure(socket);
      } catch (err) {
        reportError(err, 'starting a TLS-terminated TCP connection');
        socket.destroy();
      }
    });
    // A failed handshake (a refused client certificate, a timeout, not TLS at all): the
    // connection closes, as Envoy closes it.
    this.server.on('tlsClientError', (_err: Error, socket: TLSSocket) => socket.destroy());
  }

  /** Starts the handshake on a connection (its first bytes put back, paused). */
  accept(socket: Socket): void {
    this.server.emit('connection', socket);
  }

  /** New files: new handshakes use them, open connections keep theirs. */
  rotate(material: TlsMaterial, extra: readonly TlsMaterial[]): void {
    this.sni.update(this.config, material, extra);
    if (material.revision === this.revision) return;
    this.server.setSecureContext(contextOptions(this.config, material));
    this.revision = material.revision;
  }
}
