// The client of an upgrade request that came as an HTTP/2 extended CONNECT (RFC 8441,
// extended-connect.ts): one stream of a client connection. Remora's replies and an
// upstream's refusal are HTTP/2 responses on the stream (through its Http2Downstream, so
// they are written as any other response), and the stream ends with them; the upstream's
// 101 becomes a 200 that leaves the stream open, and the stream itself is then the
// tunnel's client side (byte-tunnel.ts): DATA both ways, END_STREAM for FIN, RST_STREAM
// for a reset. The connection and its other streams are not touched.

import type { ServerHttp2Stream } from 'node:http2';
import { reasonPhrase } from '../src/http/status.js';
import type { DownstreamEvents } from './downstream.js';
import { switchedResponseFields } from './extended-connect.js';
import type { Http2Downstream } from './http2-downstream.js';
import type { AnswerSink, UpgradeClient } from './upgrade-client.js';

export class Http2UpgradeClient implements UpgradeClient, DownstreamEvents {
  private onGone: (() => void) | null = null;
  /** Called once when a forwarded answer's body can be written again. */
  drained: (() => void) | null = null;

  constructor(
    readonly side: ServerHttp2Stream,
    private readonly ds: Http2Downstream,
  ) {
    ds.listen(this, false);
  }

  get gone(): boolean {
    return this.side.destroyed || this.ds.aborted;
  }

  watch(fn: () => void): void {
    this.onGone = fn;
  }

  unwatch(): void {
    this.onGone = null;
  }

  reply(status: number, headers: readonly string[], body: string, serverName: string | null, headOnly: boolean): void {
    // The Http2Downstream adds date and server itself (its serverName is the listener's).
    void serverName;
    // The stream ends with it: nghttp2 resets a stream whose response ended before its
    // request did (RST_STREAM NO_ERROR), so the client stops sending.
    this.ds.respond(status, reasonPhrase(status), headers, body, false, headOnly);
  }

  switched(head: Buffer): number {
    this.ds.respondOpen(200, switchedResponseFields(head));
    if (this.ds.aborted) throw new Error('the stream was closed before its 200');
    return 200;
  }

  answerSink(): AnswerSink {
    return new StreamAnswerSink(this.ds, this);
  }

  cut(): void {
    this.ds.close();
  }

  // ---- DownstreamEvents (from the Http2Downstream) ----

  onAbort(): void {
    const fn = this.onGone;
    this.onGone = null;
    fn?.();
  }

  onDrain(): void {
    const fn = this.drained;
    this.drained = null;
    fn?.();
  }

  onRequestBody(): void {
    // Never: the stream is read only once it is a tunnel.
  }

  onRequestBodyError(): void {}
}

/** An upstream's final answer as an HTTP/2 response on the stream. */
class StreamAnswerSink implements AnswerSink {
  private length = -1;
  private written = false;
  private ended = false;

  constructor(
    private readonly ds: Http2Downstream,
    private readonly client: Http2UpgradeClient,
  ) {}

  startHead(status: number, reason: string): void {
    this.ds.writeStatus(status, reason);
  }

  writeHeader(name: string, value: string): void {
    this.ds.writeHeader(name, value);
  }

  endHead(length: number, bodyless: boolean): void {
    this.length = length;
    if (bodyless) {
      this.ended = true;
      this.ds.endWithoutBody(length);
    }
  }

  writeBody(chunk: Buffer, onDrain: () => void): boolean {
    if (this.ended || chunk.length === 0) return true;
    this.written = true;
    if (this.ds.write(chunk, this.length)) return true;
    this.client.drained = onDrain;
    return false;
  }

  finish(): void {
    if (!this.ended) {
      this.ended = true;
      if (!this.written) this.ds.endWithoutBody(this.length);
      else if (this.length < 0) this.ds.end();
      // A known length ended the stream with its last byte.
    }
  }
}
