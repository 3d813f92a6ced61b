// A TLS (mTLS) listener of one worker, on Node's https server with the strict HTTP/1
// codec (http1-front.ts) and HTTP/2 (http2-front.ts), chosen per connection by ALPN
// (`h2` / `http/1.1`, as codec_type allows; a client that offers neither gets HTTP/1.1):
// the uWS build we can load cannot read a client certificate.
// The client certificate is verified by the TLS handshake (when ca_file is set), and its
// identity is read once per connection. Every worker binds the port with SO_REUSEPORT
// (listen-socket.ts). Certificates rotate in place with setSecureContext: new handshakes
// use the new ones, open connections keep theirs.
// HTTPS filter chains (`http_filter_chains`) are picked per connection by the server name
// the client sent: the SNI callback hands the handshake the chain's certificate (and client
// CAs), and the connection's requests are routed by the chain's route table (its runtime
// in WorkerContext, under the chain's key). A name no chain lists gets the listener's own
// certificate and routes, or, without them, a refused handshake.

import https from 'node:https';
import type { Socket } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { reportError } from '../src/core/report.js';
import { asksForClientCertificates, serverTls } from '../src/config/listener-chains.js';
import type { HttpFilterChain, Listener, ListenerTlsConfig, TlsMaterial } from '../src/config/types.js';
import { ServerNames } from '../src/router/server-names.js';
import { chainTlsKey } from '../src/tls/chain-key.js';
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
 *  rotate in place; these server options, how many certificates each chain has and the
 *  chains' server names need a new server; the chains' routes do not). */
export function tlsListenerKey(l: Listener): string {
  const t = serverTls(l)!;
  const certificates = [l.tls, ...l.http_filter_chains.map((c) => c.tls)].map((c) => c?.additional_certificates.length ?? '-').join(',');
  const chains = l.http_filter_chains.length === 0 ? '' : `:${JSON.stringify(l.http_filter_chains.map((c) => [c.name, c.server_names]))}`;
  return `tls:${asksForClientCertificates(l)}:${t.require_client_certificate}:${t.min_version}:${t.session_resumption}:${certificates}${chains}`;
}

type SniCallback = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void;

/** An HTTPS filter chain as the server uses it. */
class ServedChain {
  /** Its route table's runtime key (WorkerContext.listener). */
  readonly key: string;
  /** Its certificate's context (with its client CAs): handed to the handshake. */
  context: tls.SecureContext | null = null;
  /** Its additional certificates. */
  readonly sni = new SniCertificates();
  identity = '';
  private revision = -1;

  constructor(listener: string, readonly config: HttpFilterChain) {
    this.key = chainTlsKey(listener, config.name);
  }

  /** New material (when it changed): a new context for new handshakes. */
  update(all: Readonly<Record<string, TlsMaterial>>): void {
    const material = all[this.key];
    if (material === undefined) return;
    this.sni.update(this.config.tls, material, additionalMaterial(this.config.tls, this.key, all));
    if (material.revision === this.revision) return;
    this.context = tls.createSecureContext(contextOptions(this.config.tls, material));
    this.identity = material.identity;
    this.revision = material.revision;
  }
}

/** Whether every TLS file the listener needs has been loaded (its own and each chain's):
 *  a TLS listener without its material is not served (it never falls back to plain HTTP). */
export function hasTlsMaterial(l: Listener, all: Readonly<Record<string, TlsMaterial>>): boolean {
  return (l.tls === undefined || all[l.name] !== undefined) && l.http_filter_chains.every((c) => all[chainTlsKey(l.name, c.name)] !== undefined);
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
  /** The HTTPS filter chains by server name; null without chains. */
  private readonly chains: ServerNames<ServedChain> | null;
  /** The chains, in config order. */
  private readonly chainList: readonly ServedChain[];
  /** The listener's own `tls` and routes take names no chain lists. */
  private readonly hasDefault: boolean;
  /** The TLS settings of the server (the same on every chain). */
  private readonly tls: ListenerTlsConfig;

  constructor(
    readonly config: Listener,
    readonly port: number,
    private readonly ctx: WorkerContext,
    statSlot: number,
    connections: ConnectionGauge,
    /** Every listener's material (the listener's own, its chains' and additional
     *  certificates' are looked up there; hasTlsMaterial said they are all there). */
    all: Readonly<Record<string, TlsMaterial>>,
  ) {
    const tls = serverTls(config)!;
    this.tls = tls;
    this.hasDefault = config.tls !== undefined;
    this.chainList = config.http_filter_chains.map((c) => new ServedChain(config.name, c));
    for (const c of this.chainList) c.update(all);
    this.chains = this.chainList.length === 0 ? null : new ServerNames(this.chainList.map((c) => ({ names: c.config.server_names, value: c })));
    // The server's own context: the listener's certificate, else (only chains) the first
    // chain's, which a client that sent no server name completes its handshake with before
    // its connection is closed (onHandshaken).
    const material = this.baseMaterial(all)!;
    this.revision = material.revision;
    this.ownIdentity = material.identity;
    if (this.hasDefault) this.sni.update(tls, material, additionalMaterial(tls, config.name, all));
    const sniNeeded = this.chains !== null || tls.additional_certificates.length > 0;
    this.server = https.createServer({
      ...contextOptions(tls, material),
      ...http1ServerOptions(config),
      ...(sniNeeded ? { SNICallback: this.chains !== null ? this.pickChain : this.sni.callback } : {}),
      requestCert: asksForClientCertificates(config),
      // Verification always runs; a refused certificate is handled in onSecure (Node's
      // own rejection closes the connection silently, with no reason anywhere).
      rejectUnauthorized: false,
      ALPNProtocols: alpnProtocols(config),
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    });
    if (tls.session_resumption === 'cache') keepSessions(this.server);
    this.serveHttp1 = this.server.listeners('secureConnection')[0] as (this: https.Server, socket: TLSSocket) => void;
    this.h2 = config.codec_type === 'http1' ? null : new Http2Front(config, ctx);
    if (this.h2 !== null || this.chains !== null) {
      this.server.removeListener('secureConnection', this.serveHttp1);
      this.server.on('secureConnection', this.onHandshaken);
    }
    const refuseUnverified = tls.require_client_certificate ? this.refuseUnverified : null;
    const routesOf = this.chains === null ? null : (socket: Socket): string => this.chainOf(socket as TLSSocket)?.key ?? config.name;
    this.http1 = new Http1Front(config, statSlot, ctx, connections, (socket) => this.peerOf(socket as TLSSocket), refuseUnverified, routesOf);
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

  /** The material of the server's own context: the listener's, else its first chain's. */
  private baseMaterial(all: Readonly<Record<string, TlsMaterial>>): TlsMaterial | undefined {
    return all[this.hasDefault ? this.config.name : this.chainList[0].key];
  }

  /** New files: new handshakes use them, open connections keep their session. */
  rotate(all: Readonly<Record<string, TlsMaterial>>): void {
    for (const c of this.chainList) c.update(all);
    const material = this.baseMaterial(all);
    if (material === undefined) return;
    if (this.hasDefault) this.sni.update(this.tls, material, additionalMaterial(this.tls, this.config.name, all));
    if (material.revision === this.revision) return;
    this.server.setSecureContext(contextOptions(this.tls, material));
    this.revision = material.revision;
    this.ownIdentity = material.identity;
  }

  /** The SNI callback with chains: the chain's certificate (or its additional one that
   *  names the client's server name best); a name no chain lists gets the listener's own
   *  certificates, or, without them, a refused handshake (Envoy closes a connection no
   *  filter chain takes). */
  private readonly pickChain: SniCallback = (servername, cb) => {
    try {
      const chain = this.chains!.pick(servername.toLowerCase());
      if (chain === null) {
        if (this.hasDefault) this.sni.callback(servername, cb);
        else cb(new Error(`no filter chain takes server name "${servername}"`));
        return;
      }
      chain.sni.callback(servername, (err, picked) => cb(err, picked ?? chain.context ?? undefined));
    } catch (err) {
      cb(err instanceof Error ? err : new Error(String(err)));
    }
  };

  /** The chain a connection's server name picked; null: the listener's own (or no SNI). */
  private chainOf(socket: TLSSocket): ServedChain | null {
    const name = socket.servername;
    return typeof name === 'string' && name !== '' ? this.chains!.pick(name.toLowerCase()) : null;
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

  /** A connection past its handshake goes to the front end its ALPN protocol names. With
   *  chains and no default chain, one that sent no server name is closed: no chain takes
   *  it (a name no chain lists was refused in the handshake). */
  private readonly onHandshaken = (socket: TLSSocket): void => {
    try {
      const chain = this.chains === null ? null : this.chainOf(socket);
      if (this.chains !== null && chain === null && !this.hasDefault) {
        this.ctx.tlsHandshakeFailed(this.config.name, 'ERR_NO_FILTER_CHAIN', 'the client sent no server name, and no filter chain takes such a connection');
        socket.destroy();
        return;
      }
      if (socket.alpnProtocol !== 'h2' || this.h2 === null) {
        this.serveHttp1.call(this.server, socket);
        return;
      }
      let refused: string | null = null;
      if (this.tls.require_client_certificate && !socket.authorized) {
        const r = refusal(socket);
        refused = r.missing ? 'client certificate required' : `client certificate refused: ${r.code}`;
      }
      this.h2.accept(socket, refused === null ? this.peerOf(socket) : null, refused, chain?.key ?? this.config.name);
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
    const own = this.chains === null ? this.ownIdentity : (this.chainOf(socket)?.identity ?? this.ownIdentity);
    peer = socket.authorized ? peerIdentity(socket.getPeerCertificate(), own) : null;
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
