// node:http2 implementation of the Downstream seam: one HTTP/2 stream of a client
// connection (http2-front.ts). It gathers status and headers and sends them with the
// first body bytes (or alone, for a response without a body), drops what HTTP/2 forbids
// (connection-specific headers, RFC 9113 §8.2.2), ends a known-length body with its last
// byte, sends trailers after a body of unknown length, and turns the stream's events into
// the pipeline's onAbort / onDrain / onRequestBody. A stream the client resets is an
// abort; nghttp2 resets one whose DATA does not add up to its content-length. An
// extended CONNECT stream (upgrade-client-h2.ts) uses it for its replies, and respondOpen
// for the 200 that turns it into a tunnel.

import type { OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { constants } from 'node:http2';
import { reportError } from '../src/core/report.js';
import { httpDate } from '../src/http/date.js';
import { addHeader, isConnectionSpecific } from '../src/http/http2-headers.js';
import type { Downstream, DownstreamEvents } from './downstream.js';

const NO_BYTES = Buffer.alloc(0);
const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR } = constants;

export class Http2Downstream implements Downstream {
  aborted = false;
  readonly writesDate = false;
  private events: DownstreamEvents | null = null;
  private headers: OutgoingHttpHeaders = Object.create(null) as OutgoingHttpHeaders;
  private headWritten = false;
  private written = 0;
  private trailers: OutgoingHttpHeaders | null = null;
  private drainHooked = false;
  /** Set by the front end: called once the stream is over; `prematureReset`: the client
   *  reset it before any response was sent. */
  onFinished: ((prematureReset: boolean) => void) | null = null;

  constructor(
    private readonly stream: ServerHttp2Stream,
    /** Added to local replies (proxied responses get theirs from the pipeline). */
    private readonly serverName: string | null,
  ) {
    stream.on('close', this.handleClose);
    stream.on('error', noop); // reported through 'close' (rstCode); must not go uncaught
  }

  /** Starts delivering the request body to `events` (only when the request has one). */
  listen(events: DownstreamEvents, hasBody: boolean): void {
    this.events = events;
    if (!hasBody) return;
    this.stream.on('data', (chunk: Buffer) => this.deliver(chunk, false));
    this.stream.on('end', () => this.deliver(NO_BYTES, true));
  }

  cork(fn: () => void): void {
    // One HTTP/2 connection carries many streams; nghttp2 batches frames by itself.
    if (!this.aborted) fn();
  }

  writeStatus(status: number, _reason: string): void {
    this.headers[':status'] = status; // HTTP/2 has no reason phrase
  }

  writeHeader(name: string, value: string): void {
    // The pipeline may write `connection: close` while draining: HTTP/2 says it with GOAWAY.
    if (!isConnectionSpecific(name)) addHeader(this.headers, name, value);
  }

  write(chunk: Uint8Array, totalSize: number): boolean {
    if (this.aborted) return true;
    if (!this.headWritten) {
      if (totalSize === 0) {
        // No body at all: the headers end the stream (a gRPC trailers-only response
        // must be one HEADERS frame with END_STREAM).
        this.writeHead(0, true);
        return true;
      }
      this.writeHead(totalSize, false);
    }
    if (totalSize >= 0) {
      this.written += chunk.length;
      if (this.written >= totalSize) {
        this.stream.end(Buffer.from(chunk));
        return true;
      }
    }
    const ok = this.stream.write(Buffer.from(chunk));
    if (!ok) this.hookDrain();
    return ok;
  }

  writeTrailers(trailers: readonly string[]): void {
    if (this.aborted || trailers.length === 0) return;
    const t = Object.create(null) as OutgoingHttpHeaders;
    for (let i = 0; i < trailers.length; i += 2) {
      if (!isConnectionSpecific(trailers[i])) addHeader(t, trailers[i], trailers[i + 1]);
    }
    this.trailers = t;
  }

  end(): void {
    if (this.aborted) return;
    if (!this.headWritten) this.writeHead(-1, false);
    this.stream.end();
  }

  endWithoutBody(reportedLength: number): void {
    if (this.aborted) return;
    if (reportedLength >= 0) this.headers['content-length'] = reportedLength;
    this.writeHead(-2, true);
  }

  respond(
    status: number,
    _reason: string,
    headers: readonly string[],
    body: string,
    _closeConnection: boolean, // one stream ends, not the connection (the front end GOAWAYs when it must)
    headOnly: boolean,
  ): void {
    if (this.aborted || this.headWritten) return;
    const h = Object.create(null) as OutgoingHttpHeaders;
    h[':status'] = status;
    for (let i = 0; i < headers.length; i += 2) {
      if (!isConnectionSpecific(headers[i])) addHeader(h, headers[i], headers[i + 1]);
    }
    const length = Buffer.byteLength(body);
    if (status !== 204 && status !== 304) h['content-length'] = length;
    h.date = httpDate();
    if (this.serverName !== null) h.server = this.serverName;
    this.headers = h;
    const empty = headOnly || length === 0 || status === 204 || status === 304;
    this.writeHead(-2, empty);
    if (!empty) this.stream.end(body);
  }

  /** Sends the head (`headers` flat [name, value, ...]) and leaves the stream open both
   *  ways for the caller, who writes to the stream itself from then on (an extended
   *  CONNECT the upstream accepted: the stream becomes a tunnel, whose close is no abort).
   *  Throws when HTTP/2 cannot carry a header. */
  respondOpen(status: number, headers: readonly string[]): void {
    if (this.aborted || this.headWritten) return;
    const h = Object.create(null) as OutgoingHttpHeaders;
    h[':status'] = status;
    for (let i = 0; i < headers.length; i += 2) {
      if (!isConnectionSpecific(headers[i])) addHeader(h, headers[i], headers[i + 1]);
    }
    this.stream.respond(h, { endStream: false });
    this.headWritten = true;
    this.events = null;
  }

  close(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.events = null; // the pipeline chose this: not a client abort
    // The response cannot be completed honestly: the stream is reset, never ended cleanly.
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_INTERNAL_ERROR);
  }

  /** The stream is reset because its connection goes (the pipeline is told: an abort). */
  cancel(): void {
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
  }

  pauseRequestBody(): void {
    if (!this.aborted) this.stream.pause();
  }

  resumeRequestBody(): void {
    if (!this.aborted) this.stream.resume();
  }

  /** `totalSize` ≥ 0 announces the length; -1: unknown (trailers may follow, so the stream
   *  waits for them); -2: the headers as given. `endStream`: no body at all. */
  private writeHead(totalSize: number, endStream: boolean): void {
    this.headWritten = true;
    const h = this.headers;
    if (h[':status'] === undefined) h[':status'] = 200;
    if (totalSize >= 0) h['content-length'] = totalSize;
    const waitForTrailers = totalSize === -1 && !endStream;
    try {
      this.stream.respond(h, { endStream, waitForTrailers });
    } catch (err) {
      // A header HTTP/2 cannot carry (an upstream's invalid name or value): the response
      // cannot be passed on as it is.
      reportError(err, 'HTTP/2 response head');
      this.close();
      return;
    }
    if (waitForTrailers) this.stream.once('wantTrailers', this.sendTrailers);
  }

  private readonly sendTrailers = (): void => {
    try {
      // An empty set ends the stream with an empty DATA frame (node:http2).
      this.stream.sendTrailers(this.trailers ?? {});
    } catch (err) {
      reportError(err, 'HTTP/2 trailers');
      this.close();
    }
  };

  private hookDrain(): void {
    if (this.drainHooked) return;
    this.drainHooked = true;
    this.stream.on('drain', this.handleDrain);
  }

  private readonly handleDrain = (): void => {
    try {
      if (!this.aborted) this.events?.onDrain();
    } catch (err) {
      reportError(err, 'downstream drain callback');
    }
  };

  private readonly handleClose = (): void => {
    try {
      this.onFinished?.(!this.headWritten && this.stream.rstCode !== 0);
      // A stream that closed before its response was sent whole: the client reset it (or
      // its connection went).
      if (this.aborted || (this.headWritten && this.stream.rstCode === 0 && this.stream.writableFinished)) return;
      this.aborted = true;
      this.events?.onAbort();
    } catch (err) {
      reportError(err, 'downstream close callback');
    }
  };

  private deliver(chunk: Buffer, isLast: boolean): void {
    try {
      this.events?.onRequestBody(chunk, isLast);
    } catch (err) {
      reportError(err, 'downstream body callback');
    }
  }
}

function noop(): void {}
