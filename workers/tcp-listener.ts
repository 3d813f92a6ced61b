// A TCP listener of one worker (`tcp_proxy` / `filter_chains`): accepts connections beside
// the other workers (SO_REUSEPORT, listen-socket.ts), reads the PROXY header first when the
// listener asks for one, reads the TLS ClientHello when a filter chain picks by SNI, ALPN
// or transport (the bytes are put back: they go upstream as they came, or to the chain's
// TLS termination, tls-terminator.ts), picks the chain by those and by the connection's
// addresses, and hands each connection to a TcpProxySession. A
// listener's chains follow config snapshots without a rebind; connections keep the chain
// they started with.

import net, { type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Listener } from '../src/config/types.js';
import { reportError } from '../src/core/report.js';
import { FilterChainTable, type ChainTarget, type ConnectionAddresses, type ConnectionFacts } from '../src/router/filter-chains.js';
import { ListenerCounter } from '../src/stats/stat-names.js';
import { MAX_CLIENT_HELLO, readClientHello } from '../src/tls/client-hello.js';
import type { ConnectionGauge } from './connection-gauge.js';
import { readConnectionStart } from './connection-start.js';
import type { WorkerContext } from './context.js';
import { listenShared } from './listen-socket.js';
import { proxiedAddresses, readProxyHeader } from './proxy-protocol.js';
import { TcpProxySession } from './tcp-proxy.js';
import { keepaliveServerOptions } from '../src/core/tcp-keepalive.js';
import type { TlsMaterial } from '../src/config/types.js';
import { chainTlsKey } from '../src/tls/chain-key.js';
import { TlsTerminator } from './tls-terminator.js';
import { additionalMaterial } from './sni-certificates.js';

/** What a connection says when no chain looks at its first bytes. */
const UNINSPECTED: ConnectionFacts = { transport: 'raw_buffer', serverName: '', alpn: [] };

export class TcpListener {
  private readonly server: net.Server;
  private chains: FilterChainTable;
  /** Chains that terminate TLS, by name (built with the chains; rotated in place). */
  private terminators = new Map<string, TlsTerminator>();
  /** The names of the chains with `tls`, whether or not their terminator could be built. */
  private tlsChains = new Set<string>();
  private readonly sessions = new Set<TcpProxySession>();
  /** Connections still being read (PROXY header, ClientHello). */
  private readonly starting = new Set<Socket>();

  constructor(
    public config: Listener,
    readonly port: number,
    private readonly ctx: WorkerContext,
    private readonly statSlot: number,
    private readonly connections: ConnectionGauge,
    /** TLS material by TlsMaterialSet key (chainTlsKey). */
    tls: Readonly<Record<string, TlsMaterial>>,
  ) {
    this.chains = new FilterChainTable(config.filter_chains, config.tcp_proxy);
    this.buildTerminators(tls);
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true, ...keepaliveServerOptions(config.tcp_keepalive) });
    this.server.on('connection', this.onConnection);
    this.server.on('error', (err) => ctx.log.error({ err, listener: config.name }, 'listener error'));
  }

  /** A new snapshot's chains for this listener (same address and port). */
  update(config: Listener, tls: Readonly<Record<string, TlsMaterial>>): void {
    this.config = config;
    this.chains = new FilterChainTable(config.filter_chains, config.tcp_proxy);
    this.buildTerminators(tls);
  }

  /** New TLS files of chains that terminate TLS: new handshakes use them. */
  rotate(tls: Readonly<Record<string, TlsMaterial>>): void {
    for (const fc of this.config.filter_chains) {
      const t = this.terminators.get(fc.name);
      const key = chainTlsKey(this.config.name, fc.name);
      if (t !== undefined && tls[key] !== undefined) t.rotate(tls[key], additionalMaterial(fc.tls!, key, tls));
    }
  }

  /** A terminator per chain with `tls` and its material; a chain whose material is
   *  missing gets none, and its connections are closed (never passed through). */
  private buildTerminators(tls: Readonly<Record<string, TlsMaterial>>): void {
    const next = new Map<string, TlsTerminator>();
    for (const fc of this.config.filter_chains) {
      if (fc.tls === undefined) continue;
      const key = chainTlsKey(this.config.name, fc.name);
      const material = tls[key];
      if (material !== undefined) next.set(fc.name, new TlsTerminator(fc.tls, material, additionalMaterial(fc.tls, key, tls), (s) => this.startSession(s, fc.name)));
    }
    this.terminators = next;
    this.tlsChains = new Set(this.config.filter_chains.filter((fc) => fc.tls !== undefined).map((fc) => fc.name));
  }

  listen(): Promise<boolean> {
    return listenShared(this.server, this.config.address, this.port);
  }

  /** Stops accepting; open connections go on until they end or closeAll(). */
  stopListening(): void {
    if (this.server.listening) this.server.close();
  }

  closeAll(): void {
    this.stopListening();
    for (const s of this.starting) s.destroy();
    for (const session of [...this.sessions]) session.destroy();
  }

  private readonly onConnection = (socket: Socket): void => {
    try {
      const config = this.config;
      if (!this.connections.tryOpen(this.statSlot, config.max_connections, this.ctx.maxDownstreamConnections)) {
        socket.destroy();
        return;
      }
      socket.once('close', () => {
        this.connections.closed(this.statSlot);
        this.starting.delete(socket);
      });
      socket.on('error', () => {}); // a reset before the session takes the socket
      this.starting.add(socket);
      if (config.proxy_protocol) readProxyHeader(socket, config.request_headers_timeout_ms, this.afterProxyHeader);
      else this.afterProxyHeader(socket);
    } catch (err) {
      reportError(err, 'accepting a TCP connection');
      socket.destroy();
    }
  };

  private readonly afterProxyHeader = (socket: Socket): void => {
    if (socket.destroyed) return;
    const chains = this.chains;
    if (!chains.needsInspection) return this.proxy(socket, chains, UNINSPECTED);
    let facts: ConnectionFacts = UNINSPECTED;
    readConnectionStart(socket, this.config.request_headers_timeout_ms, (start) => {
      const hello = readClientHello(start);
      if (hello.kind === 'more') return start.length >= MAX_CLIENT_HELLO ? 0 : 'more';
      if (hello.kind === 'tls') facts = { transport: 'tls', serverName: hello.serverName, alpn: hello.alpn };
      return 0; // nothing is consumed: the ClientHello goes upstream too
    }, (s) => this.proxy(s, chains, facts), 'reading a TLS ClientHello');
  };

  private proxy(socket: Socket, chains: FilterChainTable, facts: ConnectionFacts): void {
    this.starting.delete(socket);
    if (socket.destroyed) return;
    const listener = this.ctx.listener(this.config.name);
    const chain = chains.pick(facts, chains.needsAddresses ? addressesOf(socket) : undefined);
    if (chain === null) {
      listener?.stats.count(ListenerCounter.NoFilterChainMatch);
      socket.destroy();
      return;
    }
    if (this.tlsChains.has(chain.name)) {
      const terminator = this.terminators.get(chain.name);
      if (terminator === undefined) {
        socket.destroy(); // its certificate is not loaded: never pass the connection through
        return;
      }
      this.starting.add(socket); // until the handshake is done
      terminator.accept(socket);
      return;
    }
    this.run(socket, chain, facts.serverName);
  }

  /** A connection whose TLS a chain terminated: its tcp_proxy carries the decrypted bytes. */
  private startSession(socket: TLSSocket, chainName: string): void {
    const raw = (socket as TLSSocket & { _parent?: Socket })._parent;
    if (raw !== undefined) this.starting.delete(raw);
    const chain = this.chains.byName(chainName);
    if (chain === null || socket.destroyed) {
      socket.destroy();
      return;
    }
    this.run(socket, chain, typeof socket.servername === 'string' ? socket.servername : '');
  }

  private run(socket: Socket, chain: ChainTarget, serverName: string): void {
    const session = new TcpProxySession(this.ctx, this.ctx.listener(this.config.name), socket, chain, serverName, (s) => this.sessions.delete(s));
    this.sessions.add(session);
    session.start();
  }
}

/** A connection's addresses as its chain is picked by them: the PROXY header's, when the
 *  listener read one, for the client and the destination; the peer's own as direct. */
function addressesOf(socket: Socket): ConnectionAddresses {
  const proxied = proxiedAddresses(socket);
  const peer = socket.remoteAddress ?? '';
  return {
    destination: proxied?.dest ?? socket.localAddress ?? '',
    directSource: peer,
    source: proxied?.source ?? peer,
    sourcePort: proxied?.sourcePort ?? socket.remotePort ?? 0,
  };
}
