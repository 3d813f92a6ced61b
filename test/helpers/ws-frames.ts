// WebSocket frames by hand (RFC 6455 §5), for tests that carry WebSocket over a byte
// stream no WebSocket library opens (an HTTP/2 extended CONNECT stream): an encoder of
// masked client frames, and FrameReader, which gathers a server's (unmasked) frames from
// the chunks it is fed and hands them out one at a time.

import { randomBytes } from 'node:crypto';

export const OP = { CONTINUATION: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 } as const;

export interface Frame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** One client frame: FIN set, masked with a random key. */
export function clientFrame(opcode: number, payload: Buffer | string, fin = true): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const n = data.length;
  const lengthBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + lengthBytes + 4);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (lengthBytes === 0) head[1] = 0x80 | n;
  else if (lengthBytes === 2) {
    head[1] = 0x80 | 126;
    head.writeUInt16BE(n, 2);
  } else {
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  const mask = randomBytes(4);
  mask.copy(head, 2 + lengthBytes);
  const masked = Buffer.alloc(n);
  for (let i = 0; i < n; i++) masked[i] = data[i] ^ mask[i & 3];
  return Buffer.concat([head, masked]);
}

/** A close frame's payload: the code, then the reason. */
export function closePayload(code: number, reason = ''): Buffer {
  const out = Buffer.alloc(2 + Buffer.byteLength(reason));
  out.writeUInt16BE(code, 0);
  out.write(reason, 2, 'utf8');
  return out;
}

/** Reads frames from the chunks pushed to it (server frames: an unmasked one expected,
 *  a masked one unmasked all the same). */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly frames: Frame[] = [];
  private waiting: ((f: Frame) => void) | null = null;
  /** Bytes pushed so far. */
  received = 0;

  push(chunk: Buffer): void {
    this.received += chunk.length;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      const f = this.parse();
      if (f === null) return;
      const w = this.waiting;
      if (w !== null) {
        this.waiting = null;
        w(f);
      } else {
        this.frames.push(f);
      }
    }
  }

  /** The next frame (waits for it). */
  next(): Promise<Frame> {
    const f = this.frames.shift();
    if (f !== undefined) return Promise.resolve(f);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  private parse(): Frame | null {
    const b = this.buf;
    if (b.length < 2) return null;
    const masked = (b[1] & 0x80) !== 0;
    let n = b[1] & 0x7f;
    let at = 2;
    if (n === 126) {
      if (b.length < 4) return null;
      n = b.readUInt16BE(2);
      at = 4;
    } else if (n === 127) {
      if (b.length < 10) return null;
      n = Number(b.readBigUInt64BE(2));
      at = 10;
    }
    const maskAt = at;
    if (masked) at += 4;
    if (b.length < at + n) return null;
    const payload = Buffer.from(b.subarray(at, at + n));
    if (masked) for (let i = 0; i < n; i++) payload[i] ^= b[maskAt + (i & 3)];
    this.buf = b.subarray(at + n);
    return { fin: (b[0] & 0x80) !== 0, opcode: b[0] & 0x0f, payload };
  }
}
