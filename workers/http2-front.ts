// The HTTP/2 front end of a listener (plain h2c with prior knowledge, or h2 by ALPN on
// TLS): a node:http2 server that never listens itself; the listener hands it the
// connections whose preface (or ALPN) says HTTP/2. nghttp2 enforces RFC 9113 framing:
// pseudo-headers, connection-specific headers and content-length against DATA are
// refused before a stream reaches Remora; a field with CR/LF/NUL in its value is dropped
// (never forwarded). Each stream
// becomes a request with a Host from :authority and, for a body of unknown length,
// `transfer-encoding: chunked` (its framing towards an HTTP/1.1 upstream), then goes
// through the same head checks as HTTP/1 (request-reader.ts) and the same pipeline.
// SETTINGS_ENABLE_CONNECT_PROTOCOL is advertised: a stream with `:method CONNECT` and
// `:protocol` (WebSocket over HTTP/2, RFC 8441) is made the HTTP/1.1 upgrade request it
// stands for (extended-connect.ts) and goes through the upgrade pipeline
// (upgrade-exchange.ts, upgrade-client-h2.ts) under the same policy (upgrade_configs);
// a plain CONNECT is refused (501) as before.
//
// Bounds against abusive clients come from node:http2 and the listener's settings:
// concurrent streams, flow-control windows, header list size and count, session memory
// (10 MB), invalid frames and rejected streams (rapid reset); see docs/protocols.md.

import http2, { type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Listener } from '../src/config/types.js';
import { reportError } from '../src/core/report.js';
import { keepHttp2Alive } from '../src/http/http2-keepalive.js';
import type { PeerIdentity } from '../src/tls/peer-identity.js';
import type { WorkerContext } from './context.js';
import { Http2Downstream } from './http2-downstream.js';
import { clientAddress } from './proxy-protocol.js';
import { RequestReader } from './request-reader.js';
import { startExchange } from './start-exchange.js';
import { upgradeRequestFields } from './extended-connect.js';
import { Http2UpgradeClient } from './upgrade-client-h2.js';
import { UpgradeExchange, type UpgradeHost } from './upgrade-exchange.js';

/** The HTTP/2 connection preface a client with prior knowledge starts with (RFC 9113 §3.4). */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Whether the first bytes of a connection are (the start of) the HTTP/2 preface. */
export function startsWithPreface(chunk: Buffer): boolean {
  const n = Math.min(chunk.length, H2_PREFACE.length);
  return n > 0 && chunk.compare(H2_PREFACE, 0, n, 0, n) === 0;
}

/** A connection whose client reset more than half of at least this many streams before
 *  their response is closed at once (Envoy's premature reset limit, against the rapid
 *  reset attack: each reset stream cost Remora a request, the client almost nothing). */
const PREMATURE_RESET_MIN_STREAMS = 500;

/** What the front end keeps per client connection. */
interface SessionState {
  readonly remoteAddress: string;
  readonly peer: PeerIdentity | null;
  /** The runtime (route table) its requests use: the listener's, or its HTTPS filter
   *  chain's (WorkerContext.listener). */
  readonly routes: string;
  /** Why requests on this connection are refused (an unverified client certificate). */
  readonly refusal: string | null;
  served: number;
  /** Streams the client reset before their response started. */
  prematureResets: number;
}

export class Http2Front {
  private readonly server: Http2Server;
  private readonly reader: RequestReader;
  private readonly serverName: string | null;
  private readonly sessions = new Map<Http2Session, SessionState>();
  /** The connection being handed to the server (its 'session' event comes synchronously). */
  private accepting: { socket: Socket; peer: PeerIdentity | null; refusal: string | null; routes: string } | null = null;
  private closing = false;
  /** Extended CONNECT requests under way and open tunnels, closed by closeAll(). */
  private readonly upgrades = new Set<UpgradeExchange>();
  private readonly upgradeHost: UpgradeHost;

  constructor(
    private readonly config: Listener,
    private readonly ctx: WorkerContext,
  ) {
    const o = config.http2_protocol_options;
    this.reader = new RequestReader(config);
    this.serverName = config.server_header_transformation === 'pass_through' ? null : config.server_name;
    const upgrades = this.upgrades;
    this.upgradeHost = {
      serverName: this.serverName,
      idleTimeoutMs: config.idle_timeout_ms,
      opened: (ex) => upgrades.add(ex),
      closed: (ex) => upgrades.delete(ex),
    };
    this.server = http2.createServer({
      settings: {
        maxConcurrentStreams: o.max_concurrent_streams,
        initialWindowSize: o.initial_stream_window_size,
        maxHeaderListSize: config.max_request_headers_kb * 1024 + 1024,
        enablePush: false,
        // Always: whether a type may be upgraded is decided per request by the listener's
        // and the route's upgrade_configs (a route may enable one the listener does not
        // list, and routes change with each snapshot); a refused one gets 403, as over
        // HTTP/1.1. Without it clients would fall back to HTTP/1.1 for WebSocket.
        enableConnectProtocol: true,
      },
      // HPACK-decoded fields beyond the count limit: the stream is refused by nghttp2
      // (the pipeline's own check names the limit for counts just above it).
      maxHeaderListPairs: config.max_request_headers_count + 8,
      maxSendHeaderBlockLength: 256 * 1024,
    });
    this.server.on('session', this.onSession);
    this.server.on('stream', this.onStream);
    this.server.on('sessionError', noop);
  }

  /** Serves `socket` (already counted by the listener) as an HTTP/2 connection; `routes`:
   *  the runtime its requests are routed by (its filter chain's; the listener's by default). */
  accept(socket: Socket, peer: PeerIdentity | null = null, refusal: string | null = null, routes = this.config.name): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    // The listener's node:http server allows half-open sockets; HTTP/2 has no use for them,
    // and node:http2 never ends one whose client closed: it would stay in CLOSE_WAIT.
    socket.allowHalfOpen = false;
    this.accepting = { socket, peer, refusal, routes };
    try {
      this.server.emit('connection', socket);
    } finally {
      this.accepting = null;
    }
  }

  /** Every connection is told GOAWAY: its open streams finish, no new ones start. */
  goAway(): void {
    this.closing = true;
    for (const session of this.sessions.keys()) if (!session.closed) session.close();
  }

  /** Closes every connection now (the tunnels first, so that each is recorded as closed
   *  by Remora). */
  closeAll(): void {
    this.closing = true;
    for (const ex of [...this.upgrades]) {
      try {
        ex.destroy();
      } catch (err) {
        reportError(err, 'closing an HTTP/2 tunnel');
      }
    }
    this.upgrades.clear();
    for (const session of this.sessions.keys()) session.destroy();
    this.sessions.clear();
  }

  private readonly onSession = (session: ServerHttp2Session): void => {
    try {
      const a = this.accepting;
      const state: SessionState = {
        remoteAddress: a === null ? '' : clientAddress(a.socket), peer: a?.peer ?? null, refusal: a?.refusal ?? null, routes: a?.routes ?? this.config.name, served: 0, prematureResets: 0,
      };
      this.sessions.set(session, state);
      session.on('close', () => this.sessions.delete(session));
      session.on('error', noop); // the session closes; its streams abort
      const window = this.config.http2_protocol_options.initial_connection_window_size;
      session.on('connect', () => {
        try {
          if (window > 65_535) session.setLocalWindowSize(window);
        } catch (err) {
          reportError(err, 'HTTP/2 connection window');
        }
      });
      const keepalive = this.config.http2_protocol_options.connection_keepalive;
      if (keepalive !== undefined) keepHttp2Alive(session, keepalive);
      // A connection with nothing happening for idle_timeout_ms is closed gracefully.
      session.setTimeout(this.config.idle_timeout_ms, () => {
        if (!session.closed) session.close();
      });
    } catch (err) {
      reportError(err, 'accepting an HTTP/2 connection');
      session.destroy();
    }
  };

  private readonly onStream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]): void => {
    try {
      // A stream nghttp2 reset in the same read as its HEADERS (DATA beyond its
      // content-length) is destroyed before this event, its session already detached, and
      // its 'error' still to come: it must not go uncaught (it would end the worker).
      stream.on('error', noop);
      if (stream.destroyed) return;
      const session = stream.session;
      const state = session === undefined ? undefined : this.sessions.get(session);
      if (state === undefined) {
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      const ds = new Http2Downstream(stream, this.serverName);
      if (state.refusal !== null) {
        ds.respond(400, 'Bad Request', ['content-type', 'text/plain'], `${state.refusal}\n`, true, false);
        session!.close();
        return;
      }
      state.served++;
      const limit = this.config.max_requests_per_connection;
      if (limit > 0 && state.served >= limit && !session!.closed) {
        // The last stream this connection may carry (Envoy's max_requests_per_connection).
        session!.close();
      }
      ds.onFinished = (prematureReset) => this.streamFinished(session!, state, prematureReset);
      const method = String(headers[':method'] ?? '');
      const target = String(headers[':path'] ?? '');
      const protocol = headers[':protocol'];
      if (method === 'CONNECT' && protocol !== undefined) {
        this.upgrade(ds, stream, target, String(protocol), rawHeaders, state);
        return;
      }
      const endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      const request = this.reader.read(method, target, 1, requestFields(rawHeaders, endStream), state.remoteAddress, state.peer, true);
      startExchange(this.ctx, state.routes, ds, request, (events, hasBody) => ds.listen(events, hasBody));
    } catch (err) {
      this.ctx.log.error({ err }, 'reading an HTTP/2 request failed');
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    }
  };

  /** An extended CONNECT (RFC 8441): the HTTP/1.1 upgrade request it stands for, `GET
   *  <:path>` with Upgrade: <:protocol>, through the upgrade pipeline. */
  private upgrade(ds: Http2Downstream, stream: ServerHttp2Stream, target: string, protocol: string, rawHeaders: readonly string[], state: SessionState): void {
    const listener = this.ctx.listener(state.routes);
    if (listener === undefined) {
      ds.respond(503, 'Service Unavailable', ['content-type', 'text/plain'], 'listener is being removed\n', false, false);
      return;
    }
    const request = this.reader.read('GET', target, 1, upgradeRequestFields(rawHeaders, protocol), state.remoteAddress, state.peer, true);
    const client = new Http2UpgradeClient(stream, ds);
    const ex = new UpgradeExchange(this.ctx, this.upgradeHost, client, request, EMPTY, protocol, protocol.toLowerCase());
    try {
      ex.begin(listener);
    } catch (err) {
      ex.fail(err);
    }
  }

  /** A stream is over: a connection resetting too many streams early is closed; while the
   *  worker drains, the connection is told GOAWAY. */
  private streamFinished(session: Http2Session, state: SessionState, prematureReset: boolean): void {
    if (session.destroyed) return;
    if (prematureReset && ++state.prematureResets * 2 > state.served && state.served >= PREMATURE_RESET_MIN_STREAMS) {
      this.ctx.log.warn({ listener: this.config.name, remote: state.remoteAddress, streams: state.served, resets: state.prematureResets },
        'HTTP/2 client reset most of its streams before their response (rapid reset): connection closed');
      session.destroy();
      return;
    }
    if ((this.ctx.draining || this.closing) && !session.closed) session.close();
  }
}

/** The request's fields as an HTTP/1.1 head would carry them: pseudo-headers dropped,
 *  `host` from :authority (which wins over a Host field, RFC 9113 §8.3.1), and
 *  `transfer-encoding: chunked` for a body without content-length (nghttp2 refuses a
 *  client's own transfer-encoding). */
function requestFields(raw: readonly string[], endStream: boolean): string[] {
  const out: string[] = [];
  let authority: string | null = null;
  let hasLength = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.charCodeAt(0) === 0x3a /* : */) {
      if (name === ':authority') authority = raw[i + 1];
      continue;
    }
    if (name === 'content-length') hasLength = true;
    out.push(name, raw[i + 1]);
  }
  if (authority !== null) {
    for (let i = out.length - 2; i >= 0; i -= 2) if (out[i] === 'host') out.splice(i, 2);
    out.unshift('host', authority);
  }
  if (!endStream && !hasLength) out.push('transfer-encoding', 'chunked');
  return out;
}

const EMPTY = Buffer.alloc(0);

function noop(): void {}
