// A TLS (mTLS) listener of one worker, on Node's https server: the uWS build we can load
// cannot read a client certificate, so listeners with `tls:` are served here and feed
// the same pipeline through NodeDownstream. The client certificate is verified by the
// TLS handshake (when ca_file is set), and its identity is read once per connection.
//
// Node 20 cannot bind one port from several worker threads (no SO_REUSEPORT for its
// servers), so each TLS listener is served by one worker, picked by a hash of its name
// (stable across reloads); on Node ≥ 22.12 every worker binds it with reusePort.
// Certificates rotate in place with setSecureContext: new handshakes use the new ones,
// open connections keep theirs.

import { createHash } from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Listener, TlsMaterial } from '../src/config/types.js';
import { peerIdentity, type PeerIdentity } from '../src/tls/peer-identity.js';
import { NO_RENEGOTIATION } from '../src/upstream/upstream-tls.js';
import type { WorkerContext } from './context.js';
import type { DownstreamRequest } from './downstream.js';
import { NodeDownstream } from './node-downstream.js';
import { startExchange } from './start-exchange.js';

/** uWS's fixed header and idle timeouts, kept the same on this front end. */
const TIMEOUT_MS = 10_000;

const [NODE_MAJOR, NODE_MINOR] = process.versions.node.split('.').map(Number);
/** `reusePort` for net servers arrived in Node 22.12 and 23.1. */
export const REUSE_PORT = NODE_MAJOR > 23 || (NODE_MAJOR === 23 && NODE_MINOR >= 1) || (NODE_MAJOR === 22 && NODE_MINOR >= 12);

/** Whether worker `slot` of `workers` serves TLS listener `name`. */
export function servesTlsListener(name: string, slot: number, workers: number): boolean {
  if (REUSE_PORT) return true;
  return createHash('sha256').update(name).digest().readUInt32BE(0) % workers === slot;
}

/** What must match for a running TLS listener to be kept across a reload (certificates
 *  rotate in place; these server options need a new server). */
export function tlsListenerKey(l: Listener): string {
  const t = l.tls!;
  return `tls:${t.ca_file !== undefined}:${t.require_client_certificate}:${t.min_version}:${l.max_request_headers_kb}`;
}

export class TlsListener {
  private readonly server: https.Server;
  private revision: number;
  private ownIdentity: string;
  /** Identity per connection, read at its first request. */
  private readonly peers = new WeakMap<TLSSocket, PeerIdentity | null>();

  constructor(
    readonly config: Listener,
    readonly port: number,
    private readonly ctx: WorkerContext,
    material: TlsMaterial,
  ) {
    const tls = config.tls!;
    this.revision = material.revision;
    this.ownIdentity = material.identity;
    this.server = https.createServer(
      {
        ...contextOptions(config, material),
        requestCert: tls.ca_file !== undefined,
        // Verification always runs; a refused certificate is handled in onSecure (Node's
        // own rejection closes the connection silently, with no reason anywhere).
        rejectUnauthorized: false,
        ALPNProtocols: ['http/1.1'],
        handshakeTimeout: TIMEOUT_MS,
        // Node answers 431 itself above this; keep it above the pipeline's own check.
        maxHeaderSize: config.max_request_headers_kb * 1024 + 1024,
        keepAliveTimeout: TIMEOUT_MS,
        headersTimeout: TIMEOUT_MS,
        requestTimeout: 0, // route timeouts apply; a long upload may take its time
        noDelay: true,
      },
      this.handle,
    );
    this.server.on('tlsClientError', this.onTlsClientError);
    if (tls.require_client_certificate) this.server.on('secureConnection', this.onSecure);
    this.server.on('error', (err) => this.ctx.log.error({ err, listener: config.name }, 'TLS listener error'));
  }

  /** Binds; resolves false when the address cannot be bound. */
  listen(): Promise<boolean> {
    return new Promise((resolve) => {
      const onError = (): void => resolve(false);
      this.server.once('error', onError);
      const options = { host: this.config.address, port: this.port, exclusive: !REUSE_PORT, ...(REUSE_PORT ? { reusePort: true } : {}) };
      this.server.listen(options, () => {
        this.server.off('error', onError);
        resolve(true);
      });
    });
  }

  /** New files: new handshakes use them, open connections keep their session. */
  rotate(material: TlsMaterial): void {
    if (material.revision === this.revision) return;
    this.server.setSecureContext(contextOptions(this.config, material));
    this.revision = material.revision;
    this.ownIdentity = material.identity;
  }

  /** Stops accepting; open keep-alive connections go on until closeAll(). */
  stopListening(): void {
    if (this.server.listening) this.server.close();
  }

  /** Closes the listen socket and every connection. */
  closeAll(): void {
    this.stopListening();
    this.server.closeAllConnections();
  }

  private readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    try {
      const socket = req.socket as TLSSocket;
      if (!socket.authorized && this.config.tls!.require_client_certificate) return refuse(socket, res);
      const ds = new NodeDownstream(req, res);
      const raw = req.rawHeaders;
      const headers: string[] = new Array<string>(raw.length);
      for (let i = 0; i < raw.length; i += 2) {
        headers[i] = raw[i].toLowerCase();
        headers[i + 1] = raw[i + 1];
      }
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const request: DownstreamRequest = {
        method: req.method ?? 'GET',
        path: q === -1 ? url : url.slice(0, q),
        query: q === -1 ? '' : url.slice(q + 1),
        headers,
        remoteAddress: socket.remoteAddress ?? '',
        peer: this.peerOf(socket),
      };
      startExchange(this.ctx, this.config.name, ds, request, (events, hasBody) => ds.listen(events, hasBody));
    } catch (err) {
      this.ctx.log.error({ err }, 'reading a request failed');
      res.destroy();
    }
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

function refuse(socket: TLSSocket, res: ServerResponse): void {
  const r = refusal(socket);
  const body = r.missing ? 'client certificate required\n' : `client certificate refused: ${r.code}\n`;
  res.writeHead(400, 'Bad Request', ['content-type', 'text/plain', 'content-length', String(body.length), 'connection', 'close']);
  res.end(body);
}

function contextOptions(config: Listener, material: TlsMaterial) {
  return {
    cert: material.cert,
    key: material.key,
    ...(material.ca !== undefined ? { ca: material.ca } : {}),
    minVersion: config.tls!.min_version,
    maxVersion: 'TLSv1.3' as const,
    secureOptions: NO_RENEGOTIATION,
    honorCipherOrder: true,
  };
}
