// A plain (cleartext) listener of one worker: a node:http server with the strict HTTP/1
// codec (http1-front.ts) and, unless codec_type says http1, the HTTP/2 front end
// (http2-front.ts) on the same port. With `auto` the first bytes of each connection
// decide (Envoy's codec_type AUTO): the HTTP/2 preface goes to HTTP/2, anything else to
// HTTP/1. With `proxy_protocol`, each connection's PROXY header is read first
// (proxy-protocol.ts). Bound beside the other workers with SO_REUSEPORT (listen-socket.ts).
// The default for every listener without `tls`.

import http from 'node:http';
import type { Socket } from 'node:net';
import type { Listener } from '../src/config/types.js';
import { reportError } from '../src/core/report.js';
import type { ConnectionGauge } from './connection-gauge.js';
import type { WorkerContext } from './context.js';
import { Http1Front, http1ServerOptions } from './http1-front.js';
import { Http2Front, startsWithPreface } from './http2-front.js';
import { listenShared } from './listen-socket.js';
import { readConnectionStart } from './connection-start.js';
import { readProxyHeader } from './proxy-protocol.js';

type ConnectionListener = (this: http.Server, socket: Socket) => void;

export class Http1Listener {
  private readonly server: http.Server;
  private readonly http1: Http1Front;
  private readonly h2: Http2Front | null;
  /** node:http's own connection handler, called for connections that speak HTTP/1. */
  private readonly serveHttp1: ConnectionListener;

  constructor(
    readonly config: Listener,
    readonly port: number,
    ctx: WorkerContext,
    statSlot: number,
    connections: ConnectionGauge,
  ) {
    this.server = http.createServer(http1ServerOptions(config));
    // node:http registers its connection handler when the server is made: it is taken
    // off and called only for connections that turn out to be HTTP/1.
    this.serveHttp1 = this.server.listeners('connection')[0] as ConnectionListener;
    this.http1 = new Http1Front(config, statSlot, ctx, connections, null, null);
    this.http1.attach(this.server);
    this.h2 = config.codec_type === 'http1' ? null : new Http2Front(config, ctx);
    const dispatch = config.codec_type === 'http1' ? this.onHttp1Connection : config.codec_type === 'http2' ? this.onHttp2Connection : this.onConnection;
    if (config.proxy_protocol) {
      // Each connection starts with a PROXY header; the front ends get what follows it.
      this.server.removeListener('connection', this.serveHttp1);
      this.server.on('connection', (socket: Socket) => {
        if (!socket.destroyed) readProxyHeader(socket, config.request_headers_timeout_ms, dispatch);
      });
    } else if (this.h2 !== null) {
      this.server.removeListener('connection', this.serveHttp1);
      this.server.on('connection', dispatch);
    }
    this.server.on('error', (err) => ctx.log.error({ err, listener: config.name }, 'listener error'));
  }

  /** Binds; resolves false when the address cannot be bound. */
  listen(): Promise<boolean> {
    return listenShared(this.server, this.config.address, this.port);
  }

  /** Stops accepting; open keep-alive connections go on until closeAll(), HTTP/2 ones
   *  are told GOAWAY (their open streams finish). */
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

  /** node:http's handler; then the socket flows (it may come paused from the PROXY step). */
  private readonly onHttp1Connection = (socket: Socket): void => {
    if (socket.destroyed) return;
    this.serveHttp1.call(this.server, socket);
    socket.resume();
  };

  private readonly onHttp2Connection = (socket: Socket): void => {
    try {
      if (!socket.destroyed) this.h2!.accept(socket);
    } catch (err) {
      reportError(err, 'accepting an HTTP/2 connection');
      socket.destroy();
    }
  };

  /** codec_type auto: reads the first bytes, puts them back, and hands the connection to
   *  the front end they belong to (node:http2 reads the socket itself; node:http through
   *  the stream). A client that sends nothing within the request headers timeout is
   *  dropped. */
  private readonly onConnection = (socket: Socket): void => {
    if (socket.destroyed) return;
    readConnectionStart(socket, this.config.request_headers_timeout_ms, () => 0, (s, start) => {
      if (startsWithPreface(start)) this.onHttp2Connection(s);
      else this.onHttp1Connection(s);
    }, 'reading a connection preface');
  };
}
