// The strict HTTP/1 codec's front end, shared by plain and TLS listeners: a node:http (or
// https) server whose parser, llhttp, frames every request strictly (RFC 9112: chunked
// coding with extensions and trailers, one Content-Length, no obs-fold, CRLF only), plus
// the checks a parser leaves to the server (src/http/request-head.ts), path normalisation,
// connection limits and timeouts. What reaches the pipeline has been framed by code that
// refuses what it cannot frame; after any refusal the connection is closed and nothing
// more of it is read (closing-sockets.ts). A `Connection: upgrade` request leaves the
// HTTP pipeline through node:http's 'upgrade' event: h2c is served as plain HTTP/1.1
// (upgrade-h2c.ts), any other type goes to the upgrade pipeline (upgrade-exchange.ts),
// whose open exchanges and tunnels this front end closes in closeUpgrades().

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Listener } from '../src/config/types.js';
import { ResponseFlag } from '../src/core/flags.js';
import { reportError } from '../src/core/report.js';
import { httpDate } from '../src/http/date.js';
import { reasonPhrase } from '../src/http/status.js';
import type { PeerIdentity } from '../src/tls/peer-identity.js';
import { isClosing, markClosing } from './closing-sockets.js';
import type { ConnectionGauge } from './connection-gauge.js';
import type { WorkerContext } from './context.js';
import { NodeDownstream } from './node-downstream.js';
import { clientAddress } from './proxy-protocol.js';
import { RequestReader } from './request-reader.js';
import { startExchange } from './start-exchange.js';
import { SocketUpgradeClient } from './upgrade-client.js';
import { UpgradeExchange, type UpgradeHost } from './upgrade-exchange.js';
import { isH2cUpgrade, serveWithoutH2c } from './upgrade-h2c.js';
import { upgradeValue } from './upgrade-policy.js';
import { writeLocalReply } from './upgrade-reply.js';
import { keepaliveServerOptions } from '../src/core/tcp-keepalive.js';

/** Options every strict-codec server of a listener gets. */
export function http1ServerOptions(l: Listener) {
  return {
    // Node answers 431 itself above this; keep it above the pipeline's own check, which
    // names the limit in its reply.
    maxHeaderSize: l.max_request_headers_kb * 1024 + 1024,
    // Host is checked by request-head.ts (with the absolute-form rule), not by Node.
    requireHostHeader: false,
    keepAliveTimeout: l.idle_timeout_ms,
    headersTimeout: l.request_headers_timeout_ms,
    requestTimeout: 0, // route timeouts apply; a long upload may take its time
    // How often Node checks the headers timeout: often enough that it holds to ~1 s.
    connectionsCheckingInterval: Math.min(1000, l.request_headers_timeout_ms),
    noDelay: true,
    ...keepaliveServerOptions(l.tcp_keepalive),
    insecureHTTPParser: false,
  };
}

/** llhttp error codes that mean something other than a plain 400. */
const CODEC_STATUS: Readonly<Record<string, number>> = {
  HPE_HEADER_OVERFLOW: 431,
  HPE_INVALID_TRANSFER_ENCODING: 501,
  HPE_INVALID_METHOD: 501, // RFC 9110 §9.1: an unknown method
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};

export class Http1Front {
  private readonly reader: RequestReader;
  private readonly serverName: string | null;
  private server: Server | null = null;
  /** Upgrade requests under way and open tunnels, closed by closeUpgrades(). */
  private readonly upgrades = new Set<UpgradeExchange>();
  private readonly upgradeHost: UpgradeHost;

  constructor(
    private readonly config: Listener,
    /** Stats slot of the listener (stable while its name is). */
    private readonly statSlot: number,
    private readonly ctx: WorkerContext,
    private readonly connections: ConnectionGauge,
    /** The verified client identity of a TLS connection; null on plain listeners. */
    private readonly peerOf: ((socket: Socket) => PeerIdentity | null) | null,
    /** TLS listeners that require a client certificate: why a connection's certificate
     *  was refused (the body of the 400 each of its requests gets), or null when it was
     *  not. */
    private readonly refusal: ((socket: Socket) => string | null) | null,
    /** TLS listeners with HTTPS filter chains: the runtime (route table) a connection's
     *  requests use, by the chain its server name picked; null: the listener's own. */
    private readonly routesOf: ((socket: Socket) => string) | null = null,
  ) {
    this.reader = new RequestReader(config);
    const serverName = config.server_header_transformation === 'pass_through' ? null : config.server_name;
    this.serverName = serverName;
    const upgrades = this.upgrades;
    this.upgradeHost = {
      serverName,
      idleTimeoutMs: config.idle_timeout_ms,
      opened: (ex) => upgrades.add(ex),
      closed: (ex) => upgrades.delete(ex),
    };
  }

  /** Wires the server's events to this front end. */
  attach(server: Server): void {
    server.maxHeadersCount = this.config.max_request_headers_count + 1; // one more: over the limit is seen, not cut
    server.on('request', this.onRequest);
    // Expect: 100-continue is answered after the head checks pass (not before, as Node
    // would by itself); other expectations get 417 from the checks.
    server.on('checkContinue', this.onRequest);
    server.on('checkExpectation', this.onRequest);
    server.on('clientError', this.onClientError);
    server.on('connection', this.onConnection);
    server.on('upgrade', this.onUpgrade);
    this.server = server;
  }

  /** Closes every upgrade request under way and every tunnel (the worker is stopping;
   *  node:http's closeAllConnections no longer knows these connections). */
  closeUpgrades(): void {
    for (const ex of [...this.upgrades]) {
      try {
        ex.destroy();
      } catch (err) {
        reportError(err, 'closing an upgraded connection');
      }
    }
    this.upgrades.clear();
  }

  private readonly onConnection = (socket: Socket): void => {
    try {
      if (!this.connections.tryOpen(this.statSlot, this.config.max_connections, this.ctx.maxDownstreamConnections)) {
        socket.destroy();
        return;
      }
      const slot = this.statSlot;
      socket.once('close', () => {
        try {
          this.connections.closed(slot);
        } catch (err) {
          reportError(err, 'connection close');
        }
      });
    } catch (err) {
      reportError(err, 'accepting a connection');
      socket.destroy();
    }
  };

  private readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    try {
      const socket = req.socket;
      // A request refused before this one on the connection: nothing after it counts.
      if (isClosing(socket)) return;
      const refused = this.refusal === null ? null : this.refusal(socket);
      if (refused !== null) {
        markClosing(socket);
        const body = `${refused}\n`;
        res.writeHead(400, 'Bad Request', ['content-type', 'text/plain', 'content-length', String(Buffer.byteLength(body)), 'connection', 'close']);
        res.end(body);
        return;
      }
      const method = req.method ?? 'GET';
      const request = this.reader.read(method, req.url ?? '/', req.httpVersionMinor, req.rawHeaders, clientAddress(socket),
        this.peerOf === null ? null : this.peerOf(socket));
      if (request.refusal === null && res._expect_continue === true) res.writeContinue();
      const ds = new NodeDownstream(req, res, this.serverName);
      const previous = lastRequest.get(socket);
      const served = previous === undefined ? 1 : previous.served + 1;
      lastRequest.set(socket, { req, ds, served });
      if (served === this.config.max_requests_per_connection) {
        // The last request this connection may carry: answered with `connection: close`,
        // then the connection ends (Envoy's max_requests_per_connection).
        res.shouldKeepAlive = false;
        markClosing(socket);
      }
      const routes = this.routesOf === null ? this.config.name : this.routesOf(socket);
      startExchange(this.ctx, routes, ds, request, (events, hasBody) => ds.listen(events, hasBody));
    } catch (err) {
      this.ctx.log.error({ err }, 'reading a request failed');
      res.destroy();
    }
  };

  /** A `Connection: upgrade` request: node:http has let go of the connection (`head`:
   *  what the client sent after the request head, in the same read). */
  private readonly onUpgrade = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    try {
      if (isClosing(socket)) {
        socket.destroy();
        return;
      }
      // Pipelined behind a request whose response is still being sent: it waits for that
      // response to end (its own answer, or the tunnel's bytes, must not interleave).
      const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
      if (inFlight !== null && inFlight !== undefined) {
        inFlight.once('close', () => {
          if (socket.destroyed) return;
          this.onUpgrade(req, socket, head);
        });
        return;
      }
      if (isH2cUpgrade(req)) {
        serveWithoutH2c(this.server!, req, socket, head);
        return;
      }
      const refused = this.refusal === null ? null : this.refusal(socket);
      if (refused !== null) {
        markClosing(socket);
        writeLocalReply(socket, 400, 'Bad Request', ['content-type', 'text/plain'], `${refused}\n`, null, false);
        return;
      }
      const listener = this.ctx.listener(this.routesOf === null ? this.config.name : this.routesOf(socket));
      if (listener === undefined) {
        writeLocalReply(socket, 503, 'Service Unavailable', ['content-type', 'text/plain'], 'listener is being removed\n', this.serverName, false);
        return;
      }
      const request = this.reader.read(req.method ?? 'GET', req.url ?? '/', req.httpVersionMinor, req.rawHeaders, clientAddress(socket),
        this.peerOf === null ? null : this.peerOf(socket));
      markClosing(socket);
      const upgrade = upgradeValue(request.headers);
      const ex = new UpgradeExchange(this.ctx, this.upgradeHost, new SocketUpgradeClient(socket), request, head, upgrade, upgrade.toLowerCase());
      try {
        ex.begin(listener);
      } catch (err) {
        ex.fail(err);
      }
    } catch (err) {
      this.ctx.log.error({ err }, 'handling an upgrade request failed');
      socket.destroy();
    }
  };

  /** llhttp refused the bytes (or the head did not arrive in time): answer once, close,
   *  read nothing more. */
  private readonly onClientError = (err: Error & { code?: string; reason?: string }, socket: Socket): void => {
    try {
      markClosing(socket);
      const code = err.code ?? '';
      const reason = err.reason ?? ''; // llhttp's own words
      if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
        socket.destroy();
        return;
      }
      const last = lastRequest.get(socket);
      if (last !== undefined && !last.req.complete) {
        // The body of the request being forwarded broke its framing: the exchange cuts the
        // upstream request (its connection is closed with the request unfinished, so the
        // upstream never takes a partial body for a whole one), answers 400 if it can,
        // and the connection closes.
        last.ds.failRequestBody(`malformed request body: ${reason === '' ? code : reason}`);
        return;
      }
      // A response still on its way (the bad bytes followed a good request): it is
      // finished, then the connection ends; the bad request gets no answer of its own,
      // which would interleave with it.
      const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
      if (inFlight !== null && inFlight !== undefined) {
        this.ctx.codecRefused(this.config.name, 0);
        inFlight.once('close', () => socket.destroySoon());
        return;
      }
      // llhttp files "Transfer-Encoding with Content-Length" under the TE code: that one is
      // a malformed request (400), not an unknown coding (501).
      const status = reason.includes('Content-Length') ? 400 : (CODEC_STATUS[code] ?? 400);
      this.ctx.codecRefused(this.config.name, status);
      const body = status === 408 ? 'request headers not received in time\n' : `${reason === '' ? 'malformed request' : reason}\n`;
      const server = this.serverName === null ? '' : `server: ${this.serverName}\r\n`;
      // As every local reply: the flag and a request id the client can quote.
      socket.end(
        `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\ndate: ${httpDate()}\r\n${server}content-type: text/plain\r\n` +
          `x-remora-flags: ${ResponseFlag.DownstreamProtocolError}\r\nx-request-id: ${randomUUID()}\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        'latin1',
      );
      socket.destroySoon();
    } catch (e) {
      reportError(e, 'codec error reply');
      socket.destroy();
    }
  };
}

/** The request each connection is reading or last read (a framing error in its body
 *  cuts its exchange), and how many requests the connection has carried. */
const lastRequest = new WeakMap<Socket, { req: IncomingMessage; ds: NodeDownstream; served: number }>();

declare module 'node:http' {
  interface ServerResponse {
    /** Set by Node when the request carried `Expect: 100-continue`. */
    _expect_continue?: boolean;
  }
}
