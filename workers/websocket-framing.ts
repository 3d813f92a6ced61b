// Where a WebSocket byte stream is (RFC 6455 §5.2): at a frame boundary or inside a frame.
// A tunnel never parses messages, but it follows frame headers in both directions so that,
// when Remora must close a WebSocket itself (drain, a stopping worker), it can put a close
// frame `1001 Going Away` between two frames instead of cutting the connection (a close
// frame written into the middle of another would corrupt the stream). Control frames may
// come between the fragments of a message, so any frame boundary will do. Extensions such
// as permessage-deflate change payloads, never the frame headers read here.

import { randomBytes } from 'node:crypto';

/** Follows one direction of a WebSocket stream, a chunk at a time. */
export class FrameBoundary {
  /** Header bytes of the frame being read (2 to 14). */
  private readonly head = new Uint8Array(14);
  private headLength = 0;
  /** Payload bytes of the current frame still to come. */
  private payloadLeft = 0;

  /** True between frames (the next byte, if any, starts a frame header). */
  get atBoundary(): boolean {
    return this.headLength === 0 && this.payloadLeft === 0;
  }

  /** Takes the next bytes of the stream. */
  feed(chunk: Uint8Array): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.payloadLeft > 0) {
        const take = Math.min(this.payloadLeft, n - i);
        this.payloadLeft -= take;
        i += take;
        continue;
      }
      const head = this.head;
      head[this.headLength++] = chunk[i++];
      if (this.headLength < 2) continue;
      const length7 = head[1] & 0x7f;
      const extended = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
      const size = 2 + extended + ((head[1] & 0x80) !== 0 ? 4 : 0);
      if (this.headLength < size) continue;
      let payload = length7;
      if (length7 === 126) payload = (head[2] << 8) | head[3];
      else if (length7 === 127) {
        // 64-bit length: exact up to 2^53, far above anything a peer could send.
        payload = 0;
        for (let b = 2; b < 10; b++) payload = payload * 256 + head[b];
      }
      this.headLength = 0;
      this.payloadLeft = payload;
    }
  }
}

/** A close frame with `code` and no reason: unmasked as a server sends it, or masked (with
 *  a random key) as a client must. */
export function closeFrame(code: number, masked: boolean): Buffer {
  if (!masked) return Buffer.from([0x88, 0x02, code >> 8, code & 0xff]);
  const key = randomBytes(4); // RFC 6455 §5.3: an unpredictable masking key
  return Buffer.from([0x88, 0x82, key[0], key[1], key[2], key[3], (code >> 8) ^ key[0], (code & 0xff) ^ key[1]]);
}

/** RFC 6455 §7.4.1: the endpoint is going away (a server shutting down). */
export const GOING_AWAY = 1001;
