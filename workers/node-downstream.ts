// node:http(s) implementation of the Downstream seam: the strict HTTP/1 codec's (plain
// and TLS listeners, http1-front.ts). One object per request wrapping Node's request and
// response: it gathers status and headers and writes them with the first body bytes,
// ends a known-length body when its last byte is written (as uWS's tryEnd does), copies
// each chunk it is given (the pipeline reuses its read buffer), and turns Node's events
// into the pipeline's onAbort / onDrain / onRequestBody.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { reportError } from '../src/core/report.js';
import { httpDate } from '../src/http/date.js';
import { markClosing } from './closing-sockets.js';
import type { Downstream, DownstreamEvents } from './downstream.js';

const NO_BYTES = Buffer.alloc(0);

export class NodeDownstream implements Downstream {
  aborted = false;
  readonly writesDate = false;
  private events: DownstreamEvents | null = null;
  private status = 200;
  private reason = '';
  /** Flat [name, value, ...] until the head is written. */
  private headers: string[] = [];
  private headWritten = false;
  private written = 0;
  private drainHooked = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    /** Added to local replies (proxied responses get theirs from the pipeline). */
    private readonly serverName: string | null,
  ) {
    // The pipeline writes `date` (the upstream's, or its own unless a route removes it).
    res.sendDate = false;
    res.on('close', this.handleClose);
  }

  /** Starts delivering the request body to `events` (only when the request has one). */
  listen(events: DownstreamEvents, hasBody: boolean): void {
    this.events = events;
    if (!hasBody) return;
    this.req.on('data', (chunk: Buffer) => this.deliver(chunk, false));
    this.req.on('end', () => this.deliver(NO_BYTES, true));
  }

  cork(fn: () => void): void {
    if (this.aborted) return;
    this.res.cork();
    try {
      fn();
    } finally {
      this.res.uncork();
    }
  }

  writeStatus(status: number, reason: string): void {
    this.status = status;
    this.reason = reason;
  }

  writeHeader(name: string, value: string): void {
    this.headers.push(name, value);
  }

  write(chunk: Uint8Array, totalSize: number): boolean {
    if (this.aborted) return true;
    if (!this.headWritten) this.writeHead(totalSize);
    if (totalSize >= 0) {
      this.written += chunk.length;
      if (this.written >= totalSize) {
        this.res.end(Buffer.from(chunk));
        return true;
      }
    }
    const ok = this.res.write(Buffer.from(chunk));
    if (!ok) this.hookDrain();
    return ok;
  }

  writeTrailers(trailers: readonly string[]): void {
    if (this.aborted || trailers.length === 0) return;
    // Node sends them only on a chunked response (a body of unknown length).
    if (!this.headWritten) this.writeHead(-1);
    const pairs: [string, string][] = [];
    for (let i = 0; i < trailers.length; i += 2) pairs.push([trailers[i], trailers[i + 1]]);
    this.res.addTrailers(pairs);
  }

  end(): void {
    if (this.aborted) return;
    if (!this.headWritten) this.writeHead(-1);
    this.res.end();
  }

  endWithoutBody(reportedLength: number): void {
    if (this.aborted) return;
    // Node sends no body for HEAD, 204 and 304, and keeps a Content-Length it was given.
    if (reportedLength >= 0) this.headers.push('content-length', String(reportedLength));
    this.writeHead(-2);
    this.res.end();
  }

  respond(
    status: number,
    reason: string,
    headers: readonly string[],
    body: string,
    closeConnection: boolean,
    _headOnly: boolean, // Node leaves the body out of a response to HEAD by itself
  ): void {
    if (this.aborted || this.headWritten) return;
    this.status = status;
    this.reason = reason;
    this.headers = [...headers, 'content-length', String(Buffer.byteLength(body))];
    this.headers.push('date', httpDate());
    if (this.serverName !== null) this.headers.push('server', this.serverName);
    if (closeConnection) {
      this.headers.push('connection', 'close');
      // Requests already read behind this one on the connection are not served.
      markClosing(this.req.socket);
    }
    this.writeHead(-2);
    this.res.end(body);
  }

  close(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.events = null; // the pipeline chose this: not a client abort
    this.res.destroy();
  }

  /** The codec refused the rest of this request's body. */
  failRequestBody(reason: string): void {
    markClosing(this.req.socket);
    if (this.aborted || this.res.writableFinished) {
      // Already answered (an upstream that replied before the body ended): just close.
      this.req.socket.destroy();
      return;
    }
    try {
      this.events?.onRequestBodyError(reason);
    } catch (err) {
      reportError(err, 'downstream body error callback');
    }
  }

  pauseRequestBody(): void {
    if (!this.aborted) this.req.pause();
  }

  resumeRequestBody(): void {
    if (!this.aborted) this.req.resume();
  }

  /** `totalSize` ≥ 0 announces the length, -1 frames the body chunked, -2 leaves framing
   *  to the headers given. */
  private writeHead(totalSize: number): void {
    this.headWritten = true;
    if (totalSize >= 0) this.headers.push('content-length', String(totalSize));
    this.res.writeHead(this.status, this.reason, this.headers);
  }

  private hookDrain(): void {
    if (this.drainHooked) return;
    this.drainHooked = true;
    this.res.on('drain', this.handleDrain);
  }

  private readonly handleDrain = (): void => {
    try {
      if (!this.aborted) this.events?.onDrain();
    } catch (err) {
      reportError(err, 'downstream drain callback');
    }
  };

  private readonly handleClose = (): void => {
    if (this.aborted || this.res.writableFinished) return;
    this.aborted = true;
    try {
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
