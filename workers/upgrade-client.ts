// The client side of an upgrade request, as the upgrade pipeline (upgrade-exchange.ts)
// sees it: how Remora's own answers and an upstream's refusal reach the client, how the
// client is told the upstream switched protocols, and the byte stream the tunnel then
// joins to the upstream. Two kinds: an HTTP/1.1 connection node:http let go of (here,
// SocketUpgradeClient: answers written as raw HTTP/1.1, the 101 head passed on byte for
// byte, the socket itself tunnelled) and an HTTP/2 stream opened with extended CONNECT
// (upgrade-client-h2.ts: answers as HTTP/2 responses, a 200 for the switch, the stream
// tunnelled).

import type { Socket } from 'node:net';
import type { HeaderSink } from '../src/http/response-head.js';
import { reasonPhrase } from '../src/http/status.js';
import type { TunnelSide } from './tunnel-side.js';
import { RawResponseHead, writeLocalReply } from './upgrade-reply.js';

/** Where an upstream's final (non-101) answer goes (upgrade-answer.ts): the head is
 *  started, its headers written (the HeaderSink), ended; then the body, then finish. */
export interface AnswerSink extends HeaderSink {
  startHead(status: number, reason: string): void;
  /** The head is complete: `length` is the Content-Length to announce (-1: none; the body
   *  then runs to finish()); `bodyless`: no body follows (HEAD, 204, 304). */
  endHead(length: number, bodyless: boolean): void;
  /** Body bytes. False: the client cannot take more for now; `onDrain` is called once
   *  when it can. */
  writeBody(chunk: Buffer, onDrain: () => void): boolean;
  /** The whole answer was given: the client's side of the exchange ends. */
  finish(): void;
}

export interface UpgradeClient {
  /** What the tunnel joins to the upstream once it switched protocols. */
  readonly side: TunnelSide;
  /** Closed or reset. */
  readonly gone: boolean;
  /** `fn` is called once when the client goes before the exchange is over (until
   *  unwatch(): the tunnel watches from then on). */
  watch(fn: () => void): void;
  unwatch(): void;
  /** A whole response from Remora; the client's side of the exchange ends with it.
   *  `headers` flat [name, value, ...]. */
  reply(status: number, headers: readonly string[], body: string, serverName: string | null, headOnly: boolean): void;
  /** The upstream switched protocols (`head`: its 101 head, status line to the empty
   *  line): the client is told so. Returns the status the client got. Throws when the
   *  head cannot be passed on (the caller answers 502). */
  switched(head: Buffer): number;
  /** Where a final answer of the upstream goes. */
  answerSink(): AnswerSink;
  /** Cuts the client off now (a reset). */
  cut(): void;
}

/** An HTTP/1.1 upgrade request's connection, which node:http has let go of. */
export class SocketUpgradeClient implements UpgradeClient {
  private onGone: (() => void) | null = null;

  constructor(readonly side: Socket) {}

  get gone(): boolean {
    return this.side.destroyed;
  }

  watch(fn: () => void): void {
    this.onGone = fn;
    this.side.on('error', noop); // 'close' follows and decides
    this.side.on('close', this.handleClose);
  }

  unwatch(): void {
    this.onGone = null;
    this.side.removeListener('error', noop);
    this.side.removeListener('close', this.handleClose);
  }

  reply(status: number, headers: readonly string[], body: string, serverName: string | null, headOnly: boolean): void {
    writeLocalReply(this.side, status, reasonPhrase(status), headers, body, serverName, headOnly);
  }

  switched(head: Buffer): number {
    // Byte for byte: status, Sec-WebSocket-Accept, the chosen protocol and extensions.
    this.side.write(head);
    return 101;
  }

  answerSink(): AnswerSink {
    return new SocketAnswerSink(this.side);
  }

  cut(): void {
    this.side.destroy();
  }

  private readonly handleClose = (): void => {
    const fn = this.onGone;
    this.onGone = null;
    fn?.();
  };
}

/** An answer written as raw HTTP/1.1; the connection closes after it. */
class SocketAnswerSink implements AnswerSink {
  private head: RawResponseHead | null = null;

  constructor(private readonly socket: Socket) {}

  startHead(status: number, reason: string): void {
    this.head = new RawResponseHead(status, reason);
  }

  writeHeader(name: string, value: string): void {
    this.head!.writeHeader(name, value);
  }

  endHead(length: number, _bodyless: boolean): void {
    const head = this.head!;
    if (length >= 0) head.writeHeader('content-length', String(length));
    this.head = null;
    this.socket.write(head.finish());
  }

  writeBody(chunk: Buffer, onDrain: () => void): boolean {
    if (this.socket.write(chunk)) return true;
    this.socket.once('drain', onDrain);
    return false;
  }

  finish(): void {
    this.socket.end();
    this.socket.destroySoon();
  }
}

function noop(): void {}
