// Raw HTTP/2 frames for tests, for what node:http2 refuses to send: a frame encoder,
// request header blocks (HPACK "literal header field without indexing, new name", no
// Huffman), a reader of a response's :status, and RawH2, a client connection that writes
// frames by hand and records every frame it receives. Used by the hostile-frame and
// attack tests (test/integration/http2*.test.ts). Also listenHttp2, which starts a
// node:http2 upstream on port 0 and ends its sessions at teardown.

import type http2 from 'node:http2';
import net from 'node:net';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the helpers need of a tap test. */
export type Teardowns = { teardown(fn: () => unknown): void };

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, CONTINUATION: 9 } as const;
export const END_STREAM = 0x1;
export const END_HEADERS = 0x4;
/** SETTINGS and PING acknowledgement flag. */
export const ACK = 0x1;

/** The client connection preface (RFC 9113 §3.4), without the SETTINGS frame. */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Error codes (RFC 9113 §7) by number, for messages. */
export const ERROR_NAMES: Record<number, string> = {
  0: 'NO_ERROR',
  1: 'PROTOCOL_ERROR',
  2: 'INTERNAL_ERROR',
  3: 'FLOW_CONTROL_ERROR',
  4: 'SETTINGS_TIMEOUT',
  5: 'STREAM_CLOSED',
  6: 'FRAME_SIZE_ERROR',
  7: 'REFUSED_STREAM',
  8: 'CANCEL',
  9: 'COMPRESSION_ERROR',
  10: 'CONNECT_ERROR',
  11: 'ENHANCE_YOUR_CALM',
  12: 'INADEQUATE_SECURITY',
  13: 'HTTP_1_1_REQUIRED',
};

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK integer with an `prefix`-bit prefix whose first byte carries `first` above it. */
function hpackInt(value: number, prefix: number, first = 0): Buffer {
  const max = (1 << prefix) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  out.push(rest);
  return Buffer.from(out);
}

/** "Literal header field without indexing, new name" (RFC 7541 §6.2.2), no Huffman; any
 *  lengths (names and values longer than 126 bytes use the multi-byte integer form). */
export function literal(name: string, value: string): Buffer {
  const n = Buffer.from(name, 'latin1');
  const v = Buffer.from(value, 'latin1');
  return Buffer.concat([Buffer.from([0x00]), hpackInt(n.length, 7), n, hpackInt(v.length, 7), v]);
}

/** The header block of `fields`, all literals. */
export function headerBlock(fields: [string, string][]): Buffer {
  return Buffer.concat(fields.map(([n, v]) => literal(n, v)));
}

export function headersFrame(stream: number, fields: [string, string][], endStream: boolean): Buffer {
  return frame(FRAME.HEADERS, END_HEADERS | (endStream ? END_STREAM : 0), stream, headerBlock(fields));
}

/** A request head; `extra` fields follow the pseudo-headers. */
export const requestFields = (method: string, path: string, extra: [string, string][] = [], authority = '127.0.0.1'): [string, string][] => [
  [':method', method],
  [':scheme', 'http'],
  [':path', path],
  [':authority', authority],
  ...extra,
];

/** :status of a response header block: the static-table forms nghttp2 writes, literal
 *  or Huffman-coded digits; null for anything else. */
export function statusOf(block: Buffer): number | null {
  let i = 0;
  while (i < block.length && (block[i] & 0xe0) === 0x20) {
    // Dynamic table size update (5-bit prefix integer).
    if ((block[i] & 0x1f) === 0x1f) while (block[++i] & 0x80);
    i++;
  }
  const b = block[i];
  const STATIC: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };
  if (b & 0x80) return STATIC[b & 0x7f] ?? null;
  const nameIndex = (b & 0xc0) === 0x40 ? b & 0x3f : b & 0x0f;
  if (nameIndex < 8 || nameIndex > 14) return null;
  const huffman = (block[i + 1] & 0x80) !== 0;
  const value = block.subarray(i + 2, i + 2 + (block[i + 1] & 0x7f));
  const text = huffman ? huffmanDigits(value) : value.toString('latin1');
  return /^\d{3}$/.test(text) ? Number(text) : null;
}

/** Decodes a Huffman-coded string of digits (RFC 7541 codes: 0-2 are 5 bits, 3-9 are 6). */
function huffmanDigits(buf: Buffer): string {
  const bit = (k: number) => (buf[k >> 3] >> (7 - (k & 7))) & 1;
  const total = buf.length * 8;
  let out = '';
  for (let k = 0; k + 5 <= total; ) {
    let code = 0;
    for (let j = 0; j < 5; j++) code = (code << 1) | bit(k + j);
    if (code <= 2) {
      out += String(code);
      k += 5;
      continue;
    }
    if (k + 6 > total) break;
    code = (code << 1) | bit(k + 5);
    if (code < 0x19 || code > 0x1f) break; // padding (ones) or not a digit
    out += String(code - 0x19 + 3);
    k += 6;
  }
  return out;
}

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** A client connection that writes frames by hand and records every frame received.
 *  By default it acknowledges SETTINGS and PING as a client must (`{ ackPings: false }`:
 *  PINGs go unanswered, a peer that has vanished); with `{ read: false }`
 *  it reads nothing (the socket is paused: what Remora sends piles up in the kernel's
 *  buffers) until `startReading()`. */
export class RawH2 {
  readonly frames: Frame[] = [];
  closed = false;
  /** The socket error that ended the connection, if one did (ECONNRESET, EPIPE, ...). */
  error: string | null = null;
  /** Bytes received, frames or not. */
  received = 0;
  private buf: Buffer = Buffer.alloc(0);
  private reading = false;

  private constructor(
    private readonly socket: net.Socket,
    read: boolean,
    private readonly ackPings: boolean,
  ) {
    socket.on('close', () => (this.closed = true));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.error ??= err.code ?? err.message;
      this.closed = true;
    });
    if (read) this.startReading();
    else socket.pause();
  }

  static open(port: number, t: Teardowns, opts: { read?: boolean; ackPings?: boolean } = {}): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.off('error', reject);
        socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
        resolve(new RawH2(socket, opts.read ?? true, opts.ackPings ?? true));
      });
      t.teardown(() => socket.destroy());
      socket.once('error', reject);
    });
  }

  /** Reads (and acknowledges) from now on. */
  startReading(): void {
    if (this.reading) return;
    this.reading = true;
    this.socket.on('data', (d: Buffer) => {
      this.received += d.length;
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      while (this.buf.length >= 9) {
        const len = this.buf.readUIntBE(0, 3);
        if (this.buf.length < 9 + len) break;
        const f = { type: this.buf[3], flags: this.buf[4], stream: this.buf.readUInt32BE(5) & 0x7fffffff, payload: Buffer.from(this.buf.subarray(9, 9 + len)) };
        this.buf = this.buf.subarray(9 + len);
        this.frames.push(f);
        if (this.socket.destroyed) continue;
        if (f.type === FRAME.SETTINGS && (f.flags & ACK) === 0) this.socket.write(frame(FRAME.SETTINGS, ACK, 0));
        if (f.type === FRAME.PING && (f.flags & ACK) === 0 && this.ackPings) this.socket.write(frame(FRAME.PING, ACK, 0, f.payload));
      }
    });
    this.socket.resume();
  }

  /** Writes `data`; resolves once it is handed to the kernel (false: the socket is gone). */
  write(data: Buffer): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.socket.destroyed || !this.socket.writable) return resolve(false);
      this.socket.write(data, (err) => resolve(!err));
    });
  }

  /** Bytes written by the application and not yet handed to the kernel. */
  get pendingBytes(): number {
    return this.socket.writableLength;
  }

  /** This end's port (tells the connection apart on the server's side). */
  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** The GOAWAY received, if any: its error code and last stream id. */
  goaway(): { code: number; lastStream: number } | null {
    const f = this.frames.find((x) => x.type === FRAME.GOAWAY);
    return f ? { code: f.payload.readUInt32BE(4), lastStream: f.payload.readUInt32BE(0) & 0x7fffffff } : null;
  }

  /** What became of `stream`: `reset <code>`, `goaway <code>`, `status <n>`, `closed`, or
   *  `nothing` after `ms`. */
  async outcome(stream: number, ms = 3000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      for (const f of this.frames) {
        if (f.type === FRAME.RST_STREAM && f.stream === stream) return `reset ${f.payload.readUInt32BE(0)}`;
        if (f.type === FRAME.GOAWAY) return `goaway ${f.payload.readUInt32BE(4)}`;
        if (f.type === FRAME.HEADERS && f.stream === stream) {
          let block = f.payload;
          if (f.flags & 0x8) block = block.subarray(1, block.length - block[0]);
          if (f.flags & 0x20) block = block.subarray(5);
          return `status ${statusOf(block) ?? `unknown (block ${block.subarray(0, 8).toString('hex')})`}`;
        }
      }
      if (this.closed) return 'closed';
      if (Date.now() > deadline) return 'nothing';
      await sleep(20);
    }
  }
}

/** A refusal: the stream reset, the connection ended, or a 4xx response. */
export const REFUSED = /^(reset \d+|goaway \d+|closed|status 4\d\d)$/;

/** Listens on 127.0.0.1:0 with `server` and returns its port; at teardown every open
 *  session is destroyed (close() alone waits for clients) and the server closed. */
export async function listenHttp2(server: http2.Http2Server, t: Teardowns): Promise<number> {
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  );
  return (server.address() as net.AddressInfo).port;
}
