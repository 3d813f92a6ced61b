// The client side of a byte tunnel (byte-tunnel.ts): a TCP or TLS socket (an HTTP/1.1
// upgrade, a TCP proxy connection) or an HTTP/2 stream (a WebSocket opened with extended
// CONNECT, RFC 8441). Both are Duplex streams with the same data, drain, end and timeout
// events, write/end and pause/resume (an HTTP/2 stream that is not read stops its
// WINDOW_UPDATEs, which is its backpressure); they differ in how a reset is told and
// made, and in how a side is closed once what it was given is sent. These functions hide
// that difference. The upstream side is always a socket.

import { constants, type Http2Stream } from 'node:http2';
import { Socket } from 'node:net';

const { NGHTTP2_NO_ERROR, NGHTTP2_CANCEL, NGHTTP2_CONNECT_ERROR } = constants;

/** What a tunnel can join to an upstream socket. */
export type TunnelSide = Socket | Http2Stream;

/** Whether `side`'s 'close' came from a reset (`hadError`: what a socket's 'close' passes;
 *  an HTTP/2 stream passes nothing and keeps the RST_STREAM code instead). */
export function closedByReset(side: TunnelSide, hadError: boolean | undefined): boolean {
  if (side instanceof Socket) return hadError === true;
  const code = side.rstCode;
  return code !== undefined && code !== NGHTTP2_NO_ERROR;
}

/** Resets `side` now: a socket is destroyed; an HTTP/2 stream gets RST_STREAM (CANCEL when
 *  Remora cuts it, CONNECT_ERROR when its upstream connection was reset, RFC 9113 §8.5). */
export function resetSide(side: TunnelSide, upstreamReset = false): void {
  if (side.destroyed) return;
  if (side instanceof Socket) side.destroy();
  else side.close(upstreamReset ? NGHTTP2_CONNECT_ERROR : NGHTTP2_CANCEL);
}

/** Closes `side` once what it was given is sent (what it would still send has nowhere to
 *  go): a socket's FIN then close; an HTTP/2 stream's END_STREAM, then RST_STREAM NO_ERROR
 *  (RFC 9113 §8.1) if the client has not ended its half by then. */
export function closeWhenFlushed(side: TunnelSide): void {
  if (side.destroyed) return;
  if (side instanceof Socket) {
    side.destroySoon();
    return;
  }
  if (!side.writableEnded) side.end();
  if (side.writableFinished) resetIfOpen(side);
  else side.once('finish', () => resetIfOpen(side));
}

function resetIfOpen(stream: Http2Stream): void {
  if (!stream.destroyed && !stream.closed) stream.close(NGHTTP2_NO_ERROR);
}
