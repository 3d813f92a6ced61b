// A TCP listener of one worker (`tcp_proxy` / `filter_chains`): accepts connections beside
// the other workers (SO_REUSEPORT, listen-socket.ts), reads the PROXY header first when the
// listener asks for one, reads the TLS ClientHello when a filter chain picks by SNI, ALPN
// or transport (without terminating TLS: the bytes are put back and go upstream as they
// came), and hands each connection to a TcpProxySession. A listener's chains follow config
// snapshots without a rebind; connections keep the chain they started with.

import net, { type Socket } from 'node:net';
import type { Listener } from '../src/config/types.js';
import { reportError } from '../src/core/report.js';
import { FilterChainTable, type ConnectionFacts } from '../src/router/filter-chains.js';
import { ListenerCounter } from '../src/stats/stat-names.js';
import { MAX_CLIENT_HELLO, readClientHello } from '../src/tls/client-hello.js';
import type { ConnectionGauge } from './connection-gauge.js';
import { readConnectionStart } from './connection-start.js';
import type { WorkerContext } from './context.js';
import { listenShared } from './listen-socket.js';
import { readProxyHeader } from './proxy-protocol.js';
import { TcpProxySession } from './tcp-proxy.js';
import { keepaliveServerOptions } from '../src/core/tcp-keepalive.js';

/** What a connection says when no chain looks at its first bytes. */
const UNINSPECTED: ConnectionFacts = { transport: 'raw_buffer', serverName: '', alpn: [] };

export class TcpListener {
  private readonly server: net.Server;
  private chains: FilterChainTable;
  private readonly sessions = new Set<TcpProxySession>();
  /** Connections still being read (PROXY header, ClientHello). */
  private readonly starting = new Set<Socket>();

  constructor(
    public config: Listener,
    readonly port: number,
    private readonly ctx: WorkerContext,
    private readonly statSlot: number,
    private readonly connections: ConnectionGauge,
  ) {
    this.chains = new FilterChainTable(config.filter_chains, config.tcp_proxy);
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true, ...keepaliveServerOptions(config.tcp_keepalive) });
    this.server.on('connection', this.onConnection);
    this.server.on('error', (err) => ctx.log.error({ err, listener: config.name }, 'listener error'));
  }

  /** A new snapshot's chains for this listener (same address and port). */
  update(config: Listener): void {
    this.config = config;
    this.chains = new FilterChainTable(config.filter_chains, config.tcp_proxy);
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
    const chain = chains.pick(facts);
    if (chain === null) {
      listener?.stats.count(ListenerCounter.NoFilterChainMatch);
      socket.destroy();
      return;
    }
    const session = new TcpProxySession(this.ctx, listener, socket, chain, facts.serverName, (s) => this.sessions.delete(s));
    this.sessions.add(session);
    session.start();
  }
}
