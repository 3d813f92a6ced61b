// One keep-alive HTTP/1.1 connection to an upstream endpoint, owned by an EndpointPool.
// It carries one exchange at a time: writes the request head and body, parses the
// response, and tells the pool whether it can be reused. The exchange on the other side
// (an UpstreamSink) never sees the socket.

import net from 'node:net';
import tls from 'node:tls';
import { reportError } from '../core/report.js';
import type { BodyFraming } from '../http/request-facts.js';
import { ProtocolError, ResponseParser, type ResponseHandler } from './http1-parser.js';
import type { EndpointTls } from './upstream-tls.js';
import { applyKeepalive } from '../core/tcp-keepalive.js';

/** 64 KiB read buffer shared by this thread's upstream connections (see constructor). */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** How an attempt failed: no connection; none in time; the connection or stream broke;
 *  a response that could not be parsed; an HTTP/2 stream the upstream refused (never
 *  processed). */
export type UpstreamFailure = 'connect' | 'connect_timeout' | 'reset' | 'protocol' | 'refused';

/** What a connection talks to while it carries a request. */
export interface UpstreamSink extends ResponseHandler {
  /** Runs `fn` with downstream writes batched (one uWS cork per socket read). */
  cork(fn: () => void): void;
  /** The exchange failed after its request was (at least partly) written.
   *  `reusedNoResponse`: the connection had served a response before, and no byte of this
   *  one's response arrived. That is the keep-alive race (the upstream closed the idle
   *  connection as it was reused) OR an application that read the request and dropped
   *  the connection: the two cannot be told apart, so the request may have been acted
   *  on. Only the exchange decides whether it may be sent again (idempotent methods). */
  onUpstreamError(failure: UpstreamFailure, reusedNoResponse: boolean, detail: string): void;
  /** The request body may be written again after writeBody returned false. */
  onUpstreamDrain(): void;
  /** Trailers after the body (HTTP/2), before onComplete; flat, lower-case names. */
  onTrailers(trailers: string[]): void;
}

/** What an attempt holds while it carries a request: an HTTP/1.1 connection of its own,
 *  or one stream of an HTTP/2 connection (http2-connection.ts). */
export interface UpstreamChannel {
  /** Sends the request head (see UpstreamConnection.start); false when nothing could be
   *  sent because the connection is already gone. */
  start(sink: UpstreamSink, head: string, isHead: boolean, bodyMode: BodyFraming): boolean;
  writeBody(chunk: Buffer): boolean;
  endBody(): void;
  pause(): void;
  resume(): void;
  /** Abandons the request mid-flight. */
  destroy(): void;
}

/** The pool side of a connection (kept small so connection.ts does not import pool.ts). */
export interface ConnectionOwner {
  release(conn: UpstreamConnection): void;
  forget(conn: UpstreamConnection): void;
}

export class UpstreamConnection implements UpstreamChannel {
  readonly socket: net.Socket;
  private readonly parser = new ResponseParser();
  /** start() holds the head (corked) for the body bytes that follow it; see start. */
  private headHeld = false;
  private sink: UpstreamSink | null = null;
  private connected = false;
  private closed = false;
  /** The upstream ended its side (FIN read): nothing more may be sent on it. */
  private peerEnded = false;
  private left = false;
  private requestWritten = false;
  private responseDone = false;
  private chunkedBody = false;
  private data: Buffer | null = null;
  private parseError: unknown = null;
  /** The pool's TLS state; null for plaintext connections. */
  private readonly tls: EndpointTls | null;
  /** Responses completed on this connection (the pool closes it at max_requests_per_connection). */
  served = 0;
  /** performance.now() when it went idle; used by the idle sweep. */
  idleSince = 0;
  /** performance.now() after which the upstream's Keep-Alive hint says it is gone; 0 = none. */
  expiresAt = 0;

  constructor(
    private readonly owner: ConnectionOwner,
    host: string,
    port: number,
    connectTimeoutMs: number,
    tlsState: EndpointTls | null = null,
    keepaliveMs: number | null = null,
  ) {
    this.tls = tlsState;
    // Reads land in one buffer shared by every connection of this thread (no Buffer per
    // read): each read is parsed and handed on synchronously, and everything that keeps
    // bytes past the call (parser head buffer, uWS backpressure) copies them.
    const onread = { buffer: READ_BUFFER, callback: this.onRead };
    if (tlsState === null) {
      this.socket = net.connect({ host, port, noDelay: true, onread });
      this.socket.on('connect', this.onConnect);
    } else if (tlsState.cluster.error !== null) {
      // The cluster's TLS files could not be loaded: fail like a refused connect.
      const socket = new net.Socket();
      this.socket = socket;
      const detail = tlsState.cluster.error;
      process.nextTick(() => socket.destroy(new Error(detail)));
    } else {
      // TLSSocket takes `onread` too (decrypted bytes land in the shared buffer; Node's
      // type definitions just do not list it for tls.connect).
      const options: tls.ConnectionOptions & { onread: typeof onread } = { ...tlsState.connectOptions(host, port), onread };
      const socket = tls.connect(options);
      socket.setNoDelay(true);
      this.socket = socket;
      socket.on('secureConnect', this.onConnect);
      socket.on('session', tlsState.onSession);
    }
    applyKeepalive(this.socket, keepaliveMs);
    this.socket.setTimeout(connectTimeoutMs);
    this.socket.on('timeout', guard(this.onTimeout));
    this.socket.on('drain', guard(this.onDrain));
    this.socket.on('error', guard(this.onError));
    this.socket.on('end', guard(this.onEnd));
    this.socket.on('close', guard(this.onClose));
  }

  /** Whether the TCP connect (and TLS handshake) ever succeeded (a close before it is a
   *  connect failure). */
  get wasConnected(): boolean {
    return this.connected;
  }

  /** Closed, or the upstream has ended its side: not usable for another request. */
  get isClosed(): boolean {
    return this.closed || this.peerEnded || this.socket.destroyed;
  }

  /** Starts a request on this connection: `head` is the full request head, ending in
   *  CRLFCRLF. `bodyMode`: 'none', 'fixed' (Content-Length in head) or 'chunked' (this
   *  connection frames each body chunk).
   *  Returns false, writing nothing, when the connection is already seen closed (the
   *  upstream ended it while it sat idle): the request provably did not reach the
   *  upstream and may be sent on another connection, whatever its method. */
  start(sink: UpstreamSink, head: string, isHead: boolean, bodyMode: BodyFraming): boolean {
    if (this.isClosed) {
      if (!this.closed) this.socket.destroy(); // its close event makes the pool forget it
      return false;
    }
    this.sink = sink;
    this.requestWritten = bodyMode === 'none';
    this.responseDone = false;
    this.chunkedBody = bodyMode === 'chunked';
    this.parser.start(this, isHead);
    // With a body, the head waits (corked) for the first body bytes, which usually came
    // in the same read from the client: head and body leave in one writev. A body that
    // is not there by the end of this turn of the event loop does not hold the head.
    if (bodyMode !== 'none') {
      this.socket.cork();
      this.headHeld = true;
      setImmediate(UpstreamConnection.releaseHead, this);
    }
    // Header strings are Latin-1 ("binary") strings, one character per byte, as the
    // codecs decode them: written back as Latin-1, every byte goes out as it came in.
    this.socket.write(head, 'latin1');
    return true;
  }

  /** Sends a request head held by start (and what was written after it). */
  private releaseHeadNow(): void {
    if (!this.headHeld) return;
    this.headHeld = false;
    this.socket.uncork();
  }

  private static releaseHead(conn: UpstreamConnection): void {
    conn.releaseHeadNow();
  }

  /** Writes a piece of the request body; false means wait for onUpstreamDrain. */
  writeBody(chunk: Buffer): boolean {
    if (this.closed) return true;
    const socket = this.socket;
    let ok: boolean;
    if (!this.chunkedBody) ok = socket.write(chunk);
    else {
      // Size line, data and CRLF in one writev.
      socket.cork();
      socket.write(chunk.length.toString(16) + '\r\n', 'latin1');
      socket.write(chunk);
      ok = socket.write('\r\n', 'latin1');
      socket.uncork();
    }
    this.releaseHeadNow();
    return ok;
  }

  /** The request body is complete. */
  endBody(): void {
    if (this.closed) return;
    if (this.chunkedBody) this.socket.write('0\r\n\r\n', 'latin1');
    this.releaseHeadNow();
    this.requestWritten = true;
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Abandons the connection (the exchange gave up on it mid-flight). */
  destroy(): void {
    this.sink = null;
    if (!this.closed) this.socket.destroy();
  }

  // ResponseHandler: the parser calls these; they pass through to the sink.
  onHead(status: number, reason: string, headers: string[], bodyLength: number): void {
    this.sink?.onHead(status, reason, headers, bodyLength);
  }

  onBody(chunk: Buffer): void {
    this.sink?.onBody(chunk);
  }

  onComplete(): void {
    this.responseDone = true;
    this.sink?.onComplete();
  }

  private readonly onConnect = (): void => {
    this.connected = true;
    this.socket.setTimeout(0);
  };

  private readonly onTimeout = (): void => {
    if (!this.connected) this.fail('connect_timeout', 'connect timeout');
  };

  private readonly runParse = (): void => {
    try {
      this.parser.execute(this.data!);
    } catch (err) {
      this.parseError = err;
    }
  };

  private readonly onRead = (nread: number, buf: Uint8Array): boolean => {
    try {
      this.onData(Buffer.from(buf.buffer, buf.byteOffset, nread));
    } catch (err) {
      reportError(err, 'upstream connection');
    }
    return true;
  };

  private onData(buf: Buffer): void {
    const sink = this.sink;
    if (sink === null) {
      // Bytes while idle: the upstream is confused; this connection cannot be trusted.
      this.socket.destroy();
      return;
    }
    this.data = buf;
    sink.cork(this.runParse);
    this.data = null;
    if (this.parseError !== null) {
      const err = this.parseError;
      this.parseError = null;
      const detail = err instanceof ProtocolError ? err.message : String(err);
      this.fail('protocol', detail);
      return;
    }
    if (this.responseDone && this.sink === sink) this.finish();
  }

  private readonly finishAtClose = (): void => {
    this.parser.finishAtClose();
  };

  private readonly onDrain = (): void => {
    this.sink?.onUpstreamDrain();
  };

  private readonly onError = (err: Error): void => {
    if (this.tls !== null) return this.onTlsError(err);
    this.fail(this.connected ? 'reset' : 'connect', err.message);
  };

  /** TLS errors: a failed handshake is a connect failure; so is a TLS alert on a fresh
   *  connection before any response byte (with TLS 1.3 the client finishes its handshake
   *  first, and a server that rejects the client certificate says so in an alert after). */
  private onTlsError(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const handshake = !this.connected
      || (this.served === 0 && this.parser.bytesSeen === 0 && code.startsWith('ERR_SSL_'));
    if (handshake) {
      this.tls!.session = undefined; // never resume a session that led to a failure
      this.connected = false;
      this.fail('connect', `TLS handshake failed: ${err.message}`);
      return;
    }
    this.fail('reset', err.message);
  }

  /** The upstream sent FIN. While idle the connection is dropped at once; during an
   *  exchange the response may still end at close (no framing), so close decides. */
  private readonly onEnd = (): void => {
    this.peerEnded = true;
    if (this.sink === null && !this.closed) this.socket.destroy();
  };

  private readonly onClose = (): void => {
    this.closed = true;
    if (this.sink !== null && this.parser.endsAtClose) {
      this.sink.cork(this.finishAtClose);
    }
    if (this.sink !== null && !this.responseDone) {
      this.fail(this.connected ? 'reset' : 'connect', 'upstream closed the connection');
      return;
    }
    this.sink = null;
    this.leave();
  };

  /** Response complete: hand the connection back if it can carry another request. */
  private finish(): void {
    this.sink = null;
    this.served++;
    // An upstream that answered before reading the whole request body leaves the
    // connection in an unknown state: close it rather than reuse it.
    if (this.closed || !this.parser.keepAlive || !this.requestWritten) {
      this.socket.destroy();
      this.leave();
      return;
    }
    const now = performance.now();
    this.idleSince = now;
    this.expiresAt = this.parser.keepAliveTimeoutMs > 0 ? now + this.parser.keepAliveTimeoutMs - 1000 : 0;
    this.owner.release(this);
  }

  /** Tells the pool, once, that this connection is gone. */
  private leave(): void {
    if (this.left) return;
    this.left = true;
    this.owner.forget(this);
  }

  private fail(failure: UpstreamFailure, detail: string): void {
    const sink = this.sink;
    this.sink = null;
    const reusedNoResponse = this.served > 0 && this.parser.bytesSeen === 0 && failure !== 'protocol';
    if (!this.closed) this.socket.destroy();
    this.closed = true;
    this.leave();
    sink?.onUpstreamError(failure, reusedNoResponse, detail);
  }
}

/** Socket event handlers must never throw into Node's event emitter: in a uWS worker an
 *  uncaught error takes the whole process down. */
function guard<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
  return (...args: A) => {
    try {
      fn(...args);
    } catch (err) {
      reportError(err, 'upstream connection');
    }
  };
}
