// The upstream's answer to an upgrade request, read from its dedicated connection
// (upgrade-exchange.ts): AnswerHeadReader finds where the answer's head ends and what it
// is — 101 (the tunnel starts with the bytes after it), an interim 1xx (skipped), or a
// final status; AnswerForwarder passes a final answer (the upstream refused the upgrade:
// 400, 401, 426...) to the client: headers edited as for any response and `connection:
// close`, the body with its length, or up to the close when the upstream chunked it or
// delimited it by closing (the client connection ends with the answer either way).
// The client may be an HTTP/1.1 connection or an HTTP/2 stream: the answer goes to an
// AnswerSink (upgrade-client.ts), which writes it in the client's version.

import type { Socket } from 'node:net';
import { isBodylessStatus, writeResponseHead, type ResponseHeadPolicy } from '../src/http/response-head.js';
import { ResponseParser, type ResponseHandler } from '../src/upstream/http1-parser.js';
import type { AnswerSink } from './upgrade-client.js';

/** What the bytes read so far say: wait for more; switched (the 101 head, and what came
 *  after it); a final answer (its bytes from the status line on); or unreadable. */
export type AnswerStart =
  | { readonly kind: 'more' }
  | { readonly kind: 'switch'; readonly head: Buffer; readonly rest: Buffer }
  | { readonly kind: 'final'; readonly bytes: Buffer }
  | { readonly kind: 'bad'; readonly detail: string };

const MORE: AnswerStart = { kind: 'more' };
const CRLFCRLF = Buffer.from('\r\n\r\n');
/** The answer's head, interim ones included, must fit in this. */
const MAX_HEAD_BYTES = 64 * 1024;

export class AnswerHeadReader {
  private pending: Buffer | null = null;

  /** Takes the next chunk from the upstream. */
  push(chunk: Buffer): AnswerStart {
    let buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    for (;;) {
      const end = buf.indexOf(CRLFCRLF);
      if (end < 0) {
        if (buf.length > MAX_HEAD_BYTES) return { kind: 'bad', detail: 'response head too large' };
        this.pending = buf;
        return MORE;
      }
      const status = statusOf(buf);
      if (status < 0) return { kind: 'bad', detail: 'invalid status line' };
      if (status === 101) return { kind: 'switch', head: buf.subarray(0, end + 4), rest: buf.subarray(end + 4) };
      if (status >= 200) return { kind: 'final', bytes: buf };
      buf = buf.subarray(end + 4); // 100 Continue, 103 Early Hints: not passed on
      if (buf.length === 0) return MORE;
    }
  }
}

/** Hears how a forwarded answer goes. */
export interface ForwardOwner {
  onForwardHead(status: number): void;
  onForwardBody(bytes: number): void;
  /** The whole answer was written; the client connection is closing. */
  onForwardDone(): void;
}

export class AnswerForwarder implements ResponseHandler {
  private readonly parser = new ResponseParser();
  /** The head went to the client (after that a failure can only cut the connection). */
  headSent = false;

  constructor(
    private readonly sink: AnswerSink,
    private readonly upstream: Socket,
    /** The route's response header edits. */
    private readonly policy: ResponseHeadPolicy,
    private readonly isHeadRequest: boolean,
    /** performance.now() when the request went upstream (x-remora-upstream-service-time). */
    private readonly sentAt: number,
    private readonly owner: ForwardOwner,
  ) {}

  /** Starts with the answer's first bytes. Throws ProtocolError on a malformed answer. */
  start(bytes: Buffer): void {
    this.parser.start(this, this.isHeadRequest);
    this.parser.execute(bytes);
  }

  /** More of the answer. Throws ProtocolError on a malformed answer. */
  push(chunk: Buffer): void {
    this.parser.execute(chunk);
  }

  /** The upstream closed: true when that completed the answer (a close-delimited body). */
  upstreamClosed(): boolean {
    if (!this.parser.endsAtClose) return false;
    this.parser.finishAtClose();
    return true;
  }

  onHead(status: number, reason: string, headers: string[], bodyLength: number): void {
    this.owner.onForwardHead(status);
    const sink = this.sink;
    sink.startHead(status, reason);
    const serviceMs = Math.round(performance.now() - this.sentAt);
    // `draining` true: the head says `connection: close`, as the connection ends with it
    // (an HTTP/2 sink drops it: the stream ends, not the connection).
    const contentLength = writeResponseHead(sink, headers, this.policy, false, true, serviceMs);
    // Otherwise (chunked or close-delimited upstream) the body runs to the close.
    this.headSent = true;
    if (this.isHeadRequest || isBodylessStatus(status)) sink.endHead(contentLength, true);
    else sink.endHead(bodyLength, false);
  }

  onBody(chunk: Buffer): void {
    this.owner.onForwardBody(chunk.length);
    if (!this.sink.writeBody(chunk, this.resumeUpstream)) this.upstream.pause();
  }

  private readonly resumeUpstream = (): void => {
    this.upstream.resume();
  };

  onComplete(): void {
    this.sink.finish();
    this.owner.onForwardDone();
  }
}

/** The status of an HTTP/1.x status line at the start of `buf`, or -1. */
function statusOf(buf: Buffer): number {
  // "HTTP/1.1 101" is 12 bytes; the caller found the head's end after them.
  if (buf.length < 12 || buf.toString('latin1', 0, 7) !== 'HTTP/1.' || buf[8] !== 0x20) return -1;
  let status = 0;
  for (let i = 9; i < 12; i++) {
    const d = buf[i] - 48;
    if (d < 0 || d > 9) return -1;
    status = status * 10 + d;
  }
  return status >= 100 ? status : -1;
}
