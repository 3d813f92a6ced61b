// uWS implementation of the Downstream seam: one object per request wrapping a uWS
// HttpResponse. It hides uWS's rules: never touch a response after onAborted, feed
// known-length bodies through tryEnd and retry the unsent rest on onWritable.

import type { HttpResponse } from '../src/uws/uws.js';
import type { Downstream, DownstreamEvents } from './downstream.js';
import { statusLine } from '../src/http/status.js';
import { reportError } from '../src/core/report.js';

export class UwsDownstream implements Downstream {
  aborted = false;
  readonly writesDate = true;
  private events: DownstreamEvents | null = null;
  /** Unsent remainder of a tryEnd chunk while backpressured. */
  private pendingChunk: Uint8Array | null = null;
  private pendingOffset = 0; // response write offset where pendingChunk starts
  private pendingTotal = -1;
  private writableHooked = false;

  constructor(private readonly res: HttpResponse) {
    res.onAborted(this.handleAborted);
  }

  /** Starts delivering the request body to `events` (only when the request has one). */
  listen(events: DownstreamEvents, hasBody: boolean): void {
    this.events = events;
    // Closures are made only when needed: most requests have no body and never block.
    if (hasBody) this.res.onData((ab, isLast) => this.handleData(ab, isLast));
  }

  cork(fn: () => void): void {
    if (this.aborted) return;
    this.res.cork(fn);
  }

  writeStatus(status: number, reason: string): void {
    if (!this.aborted) this.res.writeStatus(statusLine(status, reason));
  }

  writeHeader(name: string, value: string): void {
    if (this.aborted) return;
    // Header strings hold one character per byte; uWS would encode them as UTF-8.
    this.res.writeHeader(name, isAscii(value) ? value : Buffer.from(value, 'latin1'));
  }

  write(chunk: Uint8Array, totalSize: number): boolean {
    if (this.aborted) return true;
    if (totalSize < 0) {
      const ok = this.res.write(chunk); // uWS buffers whatever it could not send
      if (!ok) this.hookWritable();
      return ok;
    }
    const offset = this.res.getWriteOffset();
    const [ok] = this.res.tryEnd(chunk, totalSize);
    if (ok) return true;
    // tryEnd did not take all of it: keep a copy of the rest for onWritable.
    this.pendingChunk = Uint8Array.prototype.slice.call(chunk) as Uint8Array;
    this.pendingOffset = offset;
    this.pendingTotal = totalSize;
    this.hookWritable();
    return false;
  }

  writeTrailers(_trailers: readonly string[]): void {
    // This uWS build cannot send trailers: they are dropped (docs/protocols.md).
  }

  end(): void {
    if (!this.aborted) this.res.end();
  }

  endWithoutBody(reportedLength: number): void {
    if (this.aborted) return;
    // This uWS build takes endWithoutBody(n > 0) as a promise of n body bytes still to
    // come: the response never completes and the next request on the connection aborts
    // it. So the length goes out as a plain header and uWS is told there is no body.
    if (reportedLength >= 0) this.res.writeHeader('content-length', String(reportedLength));
    this.res.endWithoutBody();
  }

  respond(
    status: number,
    reason: string,
    headers: readonly string[],
    body: string,
    closeConnection: boolean,
    headOnly: boolean,
  ): void {
    if (this.aborted) return;
    this.res.cork(() => {
      this.res.writeStatus(statusLine(status, reason));
      for (let i = 0; i < headers.length; i += 2) this.res.writeHeader(headers[i], headers[i + 1]);
      if (!headOnly) {
        this.res.end(body, closeConnection);
      } else if (closeConnection) {
        // uWS has no "no body, close" without writing its own Content-Length (see
        // endWithoutBody): announce 0; the connection ends after this head anyway.
        this.res.endWithoutBody(0, true);
      } else {
        this.res.writeHeader('content-length', String(Buffer.byteLength(body)));
        this.res.endWithoutBody();
      }
    });
  }

  close(): void {
    if (this.aborted) return;
    this.aborted = true; // uWS calls onAborted too, but this side no longer writes
    // The pipeline chose to close: uWS's onAborted (called from inside res.close()) must
    // not reach it as a client abort, or the exchange records DC instead of its reason.
    this.events = null;
    this.res.close();
  }

  pauseRequestBody(): void {
    if (!this.aborted) this.res.pause();
  }

  resumeRequestBody(): void {
    if (!this.aborted) this.res.resume();
  }

  private hookWritable(): void {
    if (this.writableHooked) return;
    this.writableHooked = true;
    this.res.onWritable((offset) => this.handleWritable(offset));
  }

  private handleWritable(offset: number): boolean {
    try {
      if (this.aborted) return true;
      const chunk = this.pendingChunk;
      if (chunk !== null) {
        const [ok] = this.res.tryEnd(chunk.subarray(offset - this.pendingOffset), this.pendingTotal);
        if (!ok) return false;
        this.pendingChunk = null;
      }
      this.events?.onDrain();
      return true;
    } catch (err) {
      reportError(err, 'uWS callback');
      return true;
    }
  }

  private readonly handleAborted = (): void => {
    this.aborted = true;
    try {
      this.events?.onAbort();
    } catch (err) {
      reportError(err, 'uWS callback');
    }
  };

  private handleData(ab: ArrayBuffer, isLast: boolean): void {
    try {
      // uWS reuses `ab` after this call returns: copy it.
      const copy = Buffer.allocUnsafe(ab.byteLength);
      copy.set(new Uint8Array(ab));
      this.events?.onRequestBody(copy, isLast);
    } catch (err) {
      reportError(err, 'uWS callback');
    }
  }
}

function isAscii(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0x7f) return false;
  return true;
}
