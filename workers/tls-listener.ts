// A TLS (mTLS) listener of one worker, on Node's https server with the strict HTTP/1
// codec (http1-front.ts) and HTTP/2 (http2-front.ts), chosen per connection by ALPN
// (`h2` / `http/1.1`, as codec_type allows; a client that offers neither gets HTTP/1.1):
// the uWS build we can load cannot read a client certificate.
// The client certificate is verified by the TLS handshake (when ca_file is set), and its
// identity is read once per connection. Every worker binds the port with SO_REUSEPORT
// (listen-socket.ts). Certificates rotate in place with setSecureContext: new handshakes
// use the new ones, open connections keep theirs.

import https from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { reportError } from '../src/core/report.js';
import type { Listener, TlsMaterial } from '../src/config/types.js';
import { peerIdentity, type PeerIdentity } from '../src/tls/peer-identity.js';
import type { ConnectionGauge } from './connection-gauge.js';
import type { WorkerContext } from './context.js';
import { Http1Front, http1ServerOptions } from './http1-front.js';
import { Http2Front } from './http2-front.js';
import { listenShared } from './listen-socket.js';
import { readProxyHeader } from './proxy-protocol.js';
import { additionalMaterial, SniCertificates } from './sni-certificates.js';
import { contextOptions, HANDSHAKE_TIMEOUT_MS, keepSessions } from './tls-server-options.js';


/** What must match for a running TLS listener to be kept across a reload (certificates
 *  rotate in place; these server options need a new server). */
export function tlsListenerKey(l: Listener): string {
  const t = l.tls!;
  return `tls:${t.ca_file !== undefined}:${t.require_client_certificate}:${t.min_version}:${t.session_resumption}`;
}

/** ALPN protocols offered, in order of preference. */
function alpnProtocols(l: Listener): string[] {
  switch (l.codec_type) {
    case 'http1':
      return ['http/1.1'];
    case 'http2':
      return ['h2'];
    case 'auto':
      return ['h2', 'http/1.1'];
  }
}

export class TlsListener {
  private readonly server: https.Server;
  private readonly h2: Http2Front | null;
  private readonly http1: Http1Front;
  /** node:https's own handler of a handshaken connection (HTTP/1). */
  private readonly serveHttp1: (this: https.Server, socket: TLSSocket) => void;
  private revision: number;
  private ownIdentity: string;
  /** The additional certificates, picked by SNI. */
  private readonly sni = new SniCertificates();
  /** Identity per connection, read at its first request. */
  private readonly peers = new WeakMap<TLSSocket, PeerIdentity | null>();

  constructor(
    readonly config: Listener,
    readonly port: number,
    private readonly ctx: WorkerContext,
    material: TlsMaterial,
    statSlot: number,
    connections: ConnectionGauge,
    /** Every listener's material (its additional certificates are looked up there). */
    all: Readonly<Record<string, TlsMaterial>>,
  ) {
    const tls = config.tls!;
    this.revision = material.revision;
    this.ownIdentity = material.identity;
    this.sni.update(tls, material, additionalMaterial(tls, config.name, all));
    this.server = https.createServer({
      ...contextOptions(config.tls!, material),
      ...http1ServerOptions(config),
      ...(tls.additional_certificates.length > 0 ? { SNICallback: this.sni.callback } : {}),
      requestCert: tls.ca_file !== undefined,
      // Verification always runs; a refused certificate is handled in onSecure (Node's
      // own rejection closes the connection silently, with no reason anywhere).
      rejectUnauthorized: false,
      ALPNProtocols: alpnProtocols(config),
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    });
    if (tls.session_resumption === 'cache') keepSessions(this.server);
    this.serveHttp1 = this.server.listeners('secureConnection')[0] as (this: https.Server, socket: TLSSocket) => void;
    this.h2 = config.codec_type === 'http1' ? null : new Http2Front(config, ctx);
    if (this.h2 !== null) {
      this.server.removeListener('secureConnection', this.serveHttp1);
      this.server.on('secureConnection', this.onHandshaken);
    }
    const refuseUnverified = tls.require_client_certificate ? this.refuseUnverified : null;
    this.http1 = new Http1Front(config, statSlot, ctx, connections, (socket) => this.peerOf(socket as TLSSocket), refuseUnverified);
    this.http1.attach(this.server);
    if (config.proxy_protocol) {
      // Each connection starts with a PROXY header, before the ClientHello: read it, then
      // hand the raw socket (the bytes after the header put back) to the TLS server.
      const wrap = this.server.listeners('connection') as ((this: https.Server, socket: Socket) => void)[];
      this.server.removeAllListeners('connection');
      const handshake = (socket: Socket): void => {
        try {
          if (socket.destroyed) return;
          for (const listener of wrap) listener.call(this.server, socket);
        } catch (err) {
          reportError(err, 'starting a TLS handshake');
          socket.destroy();
        }
      };
      this.server.on('connection', (socket: Socket) => readProxyHeader(socket, config.request_headers_timeout_ms, handshake));
    }
    this.server.on('tlsClientError', this.onTlsClientError);
    if (tls.require_client_certificate) this.server.on('secureConnection', this.onSecure);
    this.server.on('error', (err) => this.ctx.log.error({ err, listener: config.name }, 'TLS listener error'));
  }

  /** Binds; resolves false when the address cannot be bound. */
  listen(): Promise<boolean> {
    return listenShared(this.server, this.config.address, this.port);
  }

  /** New files: new handshakes use them, open connections keep their session. */
  rotate(material: TlsMaterial, all: Readonly<Record<string, TlsMaterial>>): void {
    this.sni.update(this.config.tls!, material, additionalMaterial(this.config.tls!, this.config.name, all));
    if (material.revision === this.revision) return;
    this.server.setSecureContext(contextOptions(this.config.tls!, material));
    this.revision = material.revision;
    this.ownIdentity = material.identity;
  }

  /** Stops accepting; open keep-alive connections go on until closeAll(). */
  stopListening(): void {
    if (this.server.listening) this.server.close();
    this.h2?.goAway();
  }

  /** Closes the listen socket and every connection. */
  closeAll(): void {
    this.stopListening();
    this.server.closeAllConnections();
    this.http1.closeUpgrades();
    this.h2?.closeAll();
  }

  /** A connection past its handshake goes to the front end its ALPN protocol names. */
  private readonly onHandshaken = (socket: TLSSocket): void => {
    try {
      if (socket.alpnProtocol !== 'h2') {
        this.serveHttp1.call(this.server, socket);
        return;
      }
      let refused: string | null = null;
      if (this.config.tls!.require_client_certificate && !socket.authorized) {
        const r = refusal(socket);
        refused = r.missing ? 'client certificate required' : `client certificate refused: ${r.code}`;
      }
      this.h2!.accept(socket, refused === null ? this.peerOf(socket) : null, refused);
    } catch (err) {
      reportError(err, 'accepting a TLS connection');
      socket.destroy();
    }
  };

  /** Why a connection's client certificate was refused (each of its requests gets 400
   *  saying so), or null when it was not. */
  private readonly refuseUnverified = (s: Socket): string | null => {
    const socket = s as TLSSocket;
    if (socket.authorized) return null;
    const r = refusal(socket);
    return r.missing ? 'client certificate required' : `client certificate refused: ${r.code}`;
  };

  private peerOf(socket: TLSSocket): PeerIdentity | null {
    let peer = this.peers.get(socket);
    if (peer !== undefined) return peer;
    // Only a certificate the handshake verified counts (with require_client_certificate
    // false, a client may present one that failed verification).
    peer = socket.authorized ? peerIdentity(socket.getPeerCertificate(), this.ownIdentity) : null;
    this.peers.set(socket, peer);
    return peer;
  }

  /** A client whose certificate is missing or did not verify: counted and logged now;
   *  its requests get 400 naming the reason (as nginx does), and the connection closes. */
  private readonly onSecure = (socket: TLSSocket): void => {
    try {
      if (socket.authorized) return;
      const r = refusal(socket);
      this.ctx.tlsHandshakeFailed(this.config.name, r.code, r.missing ? 'the client sent no certificate' : 'the client certificate did not verify');
    } catch (err) {
      this.ctx.log.error({ err }, 'checking a client certificate failed');
      socket.destroy();
    }
  };

  private readonly onTlsClientError = (err: Error & { code?: string }): void => {
    // A client whose handshake failed (protocol version, ciphers, not TLS at all). Missing
    // or unverified client certificates complete the handshake and are seen in onSecure.
    try {
      this.ctx.tlsHandshakeFailed(this.config.name, err.code ?? 'ERR_TLS', err.message);
    } catch (e) {
      this.ctx.log.error({ err: e }, 'counting a refused TLS handshake failed');
    }
  };
}

/** Why a connection's client certificate is not accepted (for one that is not authorized). */
function refusal(socket: TLSSocket): { missing: boolean; code: string } {
  const missing = Object.keys(socket.getPeerCertificate()).length === 0;
  return { missing, code: missing ? 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' : String(socket.authorizationError ?? 'CERT_UNTRUSTED') };
}
