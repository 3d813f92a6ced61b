// HTTP/2 towards a cluster's endpoint (`protocol: http2`): one Http2Connection is a
// client session (h2c with prior knowledge, or h2 by ALPN over the cluster's TLS) that
// carries up to max_concurrent_streams requests at once, lowered by the upstream's own
// SETTINGS; an Http2StreamChannel is one request on it, the HTTP/2 counterpart of an
// UpstreamConnection carrying one exchange. The pool (pool.ts) hands out channels and
// opens connections when every one is full.
//
// The request head the exchange built for HTTP/1.1 is translated: the request line
// becomes :method/:path/:scheme, Host becomes :authority, connection-specific headers
// are dropped (RFC 9113 §8.2.2), and `te: trailers` is kept for gRPC. A stream the
// upstream refused (REFUSED_STREAM, or beyond the last stream id of its GOAWAY) was
// never processed and is reported as 'refused', which the exchange may resend whatever
// the method; other resets are 'reset'. An exchange that gives up resets its stream
// (CANCEL): the connection and its other streams go on.

import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { reportError } from '../core/report.js';
import { isGrpcContentType } from '../http/grpc.js';
import { parseContentLength } from '../http/headers.js';
import { addHeader, isConnectionSpecific } from '../http/http2-headers.js';
import { keepHttp2Alive, type Http2KeepaliveSettings } from '../http/http2-keepalive.js';
import type { BodyFraming } from '../http/request-facts.js';
import { reasonPhrase } from '../http/status.js';
import type { UpstreamChannel, UpstreamSink } from './connection.js';
import { H2_ALPN, type EndpointTls } from './upstream-tls.js';
import { applyKeepalive } from '../core/tcp-keepalive.js';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_FLAG_END_STREAM } = http2.constants;

/** What a connection tells its pool. */
export interface Http2ConnectionOwner {
  /** A stream of `conn` ended: its place may go to a waiting request. */
  streamEnded(conn: Http2Connection): void;
  /** `conn` closed (or failed to connect); it carries nothing more. */
  connectionClosed(conn: Http2Connection): void;
}

export interface Http2Settings {
  readonly maxConcurrentStreams: number;
  readonly initialStreamWindow: number;
  readonly initialConnectionWindow: number;
  /** PING keepalive; null for none. */
  readonly keepalive: Http2KeepaliveSettings | null;
  /** Streams a connection carries in all before it takes no more (0: no limit). */
  readonly maxRequests?: number;
}

export class Http2Connection {
  readonly session: ClientHttp2Session;
  /** Streams reserved or open on it. */
  streams = 0;
  /** Streams it has been given in all (channel()). */
  private started = 0;
  /** Stream limit: ours, lowered by the upstream's SETTINGS_MAX_CONCURRENT_STREAMS. */
  maxStreams: number;
  /** Whether the connection (and TLS handshake) ever succeeded. */
  wasConnected = false;
  /** No new streams: GOAWAY received, closing or closed. */
  draining = false;
  /** performance.now() when its last stream ended; used by the idle sweep. */
  idleSince = performance.now();
  private connectTimer: NodeJS.Timeout | null;
  private closedReported = false;
  /** Why it failed before connecting ('connect' or 'connect_timeout'), with the detail. */
  connectFailure: { failure: 'connect' | 'connect_timeout'; detail: string } | null = null;

  constructor(
    private readonly owner: Http2ConnectionOwner,
    host: string,
    port: number,
    connectTimeoutMs: number,
    private readonly settings: Http2Settings,
    private readonly tlsState: EndpointTls | null,
    private readonly keepaliveMs: number | null = null,
  ) {
    this.maxStreams = settings.maxConcurrentStreams;
    const authority = `${tlsState === null ? 'http' : 'https'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
    const tlsError = tlsState?.cluster.error ?? null;
    this.session = http2.connect(authority, {
      settings: { enablePush: false, initialWindowSize: settings.initialStreamWindow },
      createConnection: () => this.socket(host, port),
    });
    this.connectTimer = setTimeout(this.onConnectTimeout, connectTimeoutMs);
    this.session.on('connect', this.onConnect);
    this.session.on('remoteSettings', this.onRemoteSettings);
    this.session.on('goaway', this.onGoaway);
    this.session.on('error', this.onError);
    this.session.on('close', this.onClose);
    if (settings.keepalive !== null) keepHttp2Alive(this.session, settings.keepalive, this.onDead);
    if (tlsError !== null) process.nextTick(() => this.session.destroy(new Error(tlsError)));
  }

  /** May carry another stream now. */
  get hasRoom(): boolean {
    return !this.draining && !this.spent && !this.session.closed && !this.session.destroyed && this.streams < this.maxStreams;
  }

  /** It has been given max_requests_per_connection streams: it takes no more. */
  get spent(): boolean {
    const max = this.settings.maxRequests ?? 0;
    return max > 0 && this.started >= max;
  }

  /** Closes it once its streams are done (idle sweep, endpoint removed). */
  close(): void {
    this.draining = true;
    if (!this.session.closed) this.session.close();
  }

  destroy(): void {
    this.draining = true;
    if (!this.session.destroyed) this.session.destroy();
  }

  /** A new channel for one request (the caller reserved its place: streams++). */
  channel(): Http2StreamChannel {
    this.started++;
    return new Http2StreamChannel(this);
  }

  /** Called by a channel whose stream is over (or was never opened). */
  streamDone(): void {
    this.streams--;
    if (this.streams === 0) this.idleSince = performance.now();
    this.owner.streamEnded(this);
  }

  private socket(host: string, port: number): net.Socket {
    const tlsState = this.tlsState;
    if (tlsState === null || tlsState.cluster.error !== null) {
      const plain = net.connect({ host, port, noDelay: true });
      applyKeepalive(plain, this.keepaliveMs);
      return plain;
    }
    const socket = tls.connect({ ...tlsState.connectOptions(host, port), ALPNProtocols: tlsState.alpn(H2_ALPN) });
    socket.setNoDelay(true);
    applyKeepalive(socket, this.keepaliveMs);
    socket.on('session', tlsState.onSession);
    return socket;
  }

  private readonly onConnect = (): void => {
    this.wasConnected = true;
    this.clearConnectTimer();
    const window = this.settings.initialConnectionWindow;
    try {
      if (window > 65_535) this.session.setLocalWindowSize(window);
    } catch (err) {
      reportError(err, 'HTTP/2 upstream connection window');
    }
  };

  /** An unanswered PING: no new streams; the session is destroyed next. */
  private readonly onDead = (): void => {
    this.draining = true;
  };

  private readonly onRemoteSettings = (s: http2.Settings): void => {
    const peer = s.maxConcurrentStreams;
    this.maxStreams = peer === undefined ? this.settings.maxConcurrentStreams : Math.min(this.settings.maxConcurrentStreams, peer);
  };

  private readonly onGoaway = (): void => {
    // Streams above its last stream id are refused by nghttp2 (REFUSED_STREAM); those
    // below finish. No new ones here.
    this.draining = true;
  };

  private readonly onConnectTimeout = (): void => {
    this.connectTimer = null;
    if (this.wasConnected) return;
    this.connectFailure = { failure: 'connect_timeout', detail: 'connect timeout' };
    this.destroy();
  };

  private readonly onError = (err: Error): void => {
    this.draining = true;
    if (!this.wasConnected && this.connectFailure === null) {
      const tlsFailure = this.tlsState !== null && this.tlsState.cluster.error === null;
      if (tlsFailure) this.tlsState!.session = undefined; // never resume a session that failed
      this.connectFailure = { failure: 'connect', detail: tlsFailure ? `TLS handshake failed: ${err.message}` : err.message };
    }
  };

  private readonly onClose = (): void => {
    this.draining = true;
    this.clearConnectTimer();
    if (!this.wasConnected && this.connectFailure === null) this.connectFailure = { failure: 'connect', detail: 'upstream closed the connection' };
    if (this.closedReported) return;
    this.closedReported = true;
    try {
      this.owner.connectionClosed(this);
    } catch (err) {
      reportError(err, 'HTTP/2 upstream connection close');
    }
  };

  private clearConnectTimer(): void {
    if (this.connectTimer !== null) {
      clearTimeout(this.connectTimer);
      this.connectTimer = null;
    }
  }
}

/** One request on an HTTP/2 connection. */
export class Http2StreamChannel implements UpstreamChannel {
  private stream: ClientHttp2Stream | null = null;
  private sink: UpstreamSink | null = null;
  private released = false;
  private gotHead = false;
  private completed = false;
  private chunk: Buffer | null = null;

  constructor(private readonly conn: Http2Connection) {}

  start(sink: UpstreamSink, head: string, _isHead: boolean, framing: BodyFraming): boolean {
    const session = this.conn.session;
    if (this.conn.draining || session.closed || session.destroyed) {
      this.release();
      return false;
    }
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(requestHeaders(head), { endStream: framing === 'none' });
    } catch {
      // The session went away between the check and the request: nothing was sent.
      this.release();
      return false;
    }
    this.sink = sink;
    this.stream = stream;
    stream.on('response', this.onResponse);
    stream.on('data', this.onData);
    stream.on('trailers', this.onTrailers);
    stream.on('end', this.onEnd);
    stream.on('drain', this.onDrain);
    stream.on('error', noop); // reported through 'close'
    stream.on('close', this.onClose);
    return true;
  }

  writeBody(chunk: Buffer): boolean {
    const stream = this.stream;
    if (stream === null || stream.destroyed) return true;
    return stream.write(chunk);
  }

  endBody(): void {
    const stream = this.stream;
    if (stream !== null && !stream.destroyed) stream.end();
  }

  pause(): void {
    this.stream?.pause();
  }

  resume(): void {
    this.stream?.resume();
  }

  /** The exchange gave up on it: the stream is reset (CANCEL), the connection stays. */
  destroy(): void {
    this.sink = null;
    const stream = this.stream;
    if (stream !== null && !stream.destroyed) stream.close(NGHTTP2_CANCEL);
    else if (stream === null) this.release();
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.conn.streamDone();
  }

  private readonly onResponse = (headers: IncomingHttpHeaders, flags: number): void => {
    try {
      const sink = this.sink;
      if (sink === null) return;
      this.gotHead = true;
      const status = Number(headers[':status']);
      const flat = flatten(headers);
      // nghttp2 checks DATA against a content-length, so it can frame the response (a
      // response with one carries no trailers that matter to anyone).
      const length = headers['content-length'];
      const bodyLength = (flags & NGHTTP2_FLAG_END_STREAM) !== 0 ? 0 : length !== undefined ? parseContentLength(length) : -1;
      this.head = { status, headers: flat, bodyLength };
      sink.cork(this.runHead);
    } catch (err) {
      reportError(err, 'HTTP/2 upstream response');
    }
  };

  private head: { status: number; headers: string[]; bodyLength: number } | null = null;

  private readonly runHead = (): void => {
    const h = this.head!;
    this.head = null;
    // HTTP/2 has no reason phrase: an HTTP/1.1 client gets the standard one.
    this.sink?.onHead(h.status, reasonPhrase(h.status), h.headers, h.bodyLength);
  };

  private readonly runBody = (): void => {
    this.sink?.onBody(this.chunk!);
  };

  private readonly onData = (chunk: Buffer): void => {
    try {
      if (this.sink === null) return;
      this.chunk = chunk;
      this.sink.cork(this.runBody);
      this.chunk = null;
    } catch (err) {
      reportError(err, 'HTTP/2 upstream body');
    }
  };

  private readonly onTrailers = (headers: IncomingHttpHeaders): void => {
    try {
      this.sink?.onTrailers(flatten(headers));
    } catch (err) {
      reportError(err, 'HTTP/2 upstream trailers');
    }
  };

  private readonly onEnd = (): void => {
    try {
      const sink = this.sink;
      if (sink === null || !this.gotHead || this.completed) return;
      this.completed = true;
      this.sink = null;
      sink.cork(sink.onComplete.bind(sink));
    } catch (err) {
      reportError(err, 'HTTP/2 upstream end');
    }
  };

  private readonly onDrain = (): void => {
    try {
      this.sink?.onUpstreamDrain();
    } catch (err) {
      reportError(err, 'HTTP/2 upstream drain');
    }
  };

  private readonly onClose = (): void => {
    try {
      this.release();
      const sink = this.sink;
      this.sink = null;
      if (sink === null || this.completed) return;
      const stream = this.stream!;
      const conn = this.conn;
      if (!conn.wasConnected) {
        const f = conn.connectFailure ?? { failure: 'connect' as const, detail: 'upstream connection failed' };
        sink.onUpstreamError(f.failure, false, f.detail);
      } else if (stream.rstCode === NGHTTP2_REFUSED_STREAM && !this.gotHead) {
        sink.onUpstreamError('refused', false, 'the upstream refused the stream');
      } else {
        sink.onUpstreamError('reset', false, stream.rstCode !== undefined && stream.rstCode !== 0 ? `stream reset (HTTP/2 error ${stream.rstCode})` : 'upstream closed the stream');
      }
    } catch (err) {
      reportError(err, 'HTTP/2 upstream stream close');
    }
  };
}

/** The HTTP/1.1-style head the exchange built, as HTTP/2 request headers. */
export function requestHeaders(head: string): OutgoingHttpHeaders {
  // :scheme comes from the session (http or https).
  const lines = head.split('\r\n');
  const first = lines[0];
  const sp1 = first.indexOf(' ');
  const sp2 = first.lastIndexOf(' ');
  const h = Object.create(null) as OutgoingHttpHeaders;
  h[':method'] = first.slice(0, sp1);
  h[':path'] = first.slice(sp1 + 1, sp2);
  let grpc = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line.length === 0) continue;
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    const value = line.slice(colon + 2);
    if (name === 'host') {
      h[':authority'] = value;
      continue;
    }
    if (name === 'te' || isConnectionSpecific(name)) continue;
    if (name === 'content-type' && isGrpcContentType(value)) grpc = true;
    addHeader(h, name, value);
  }
  // gRPC servers may insist on it (the HTTP/1.1 head drops `te` as hop-by-hop).
  if (grpc) h.te = 'trailers';
  return h;
}

/** Node's header object as Remora's flat [name, value, ...] list, pseudo-headers left out. */
function flatten(headers: IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const name in headers) {
    if (name.charCodeAt(0) === 0x3a) continue;
    const v = headers[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const one of v) out.push(name, one);
    else out.push(name, String(v));
  }
  return out;
}

function noop(): void {}
