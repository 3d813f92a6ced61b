// A small protobuf writer for the gRPC access log service's messages (Remora encodes them
// itself, as it does OTLP: no generated code on the hot path). One growing buffer that is
// reused: a worker writes entries into it as requests finish and takes the bytes out per
// batch. A nested message reserves one byte for its length and moves its body when the
// length needs more (rare: most nested messages here are under 128 bytes).

const TWO_32 = 4294967296;

export const enum Wire {
  Varint = 0,
  Fixed64 = 1,
  Len = 2,
}

export class ProtoWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialBytes = 4096) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Bytes written since the last take(). */
  get length(): number {
    return this.pos;
  }

  /** A varint field; 0 is not written (proto3's default). `v`: a non-negative integer
   *  below 2^53. */
  uint(field: number, v: number): void {
    if (v <= 0) return;
    this.room(20);
    this.tag(field, Wire.Varint);
    this.varint(v);
  }

  bool(field: number, v: boolean): void {
    if (!v) return;
    this.room(6);
    this.tag(field, Wire.Varint);
    this.buf[this.pos++] = 1;
  }

  double(field: number, v: number): void {
    if (v === 0) return;
    this.room(14);
    this.tag(field, Wire.Fixed64);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /** A string field; '' is not written. */
  string(field: number, s: string): void {
    if (s === '') return;
    const n = Buffer.byteLength(s);
    this.room(n + 10);
    this.tag(field, Wire.Len);
    this.varint(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }

  /** A bytes (or already encoded message) field, written even when empty. */
  bytes(field: number, b: Uint8Array): void {
    this.room(b.length + 10);
    this.tag(field, Wire.Len);
    this.varint(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Starts a nested message field; end() with what this returns closes it. */
  begin(field: number): number {
    this.room(6);
    this.tag(field, Wire.Len);
    this.buf[this.pos] = 0;
    return this.pos++;
  }

  /** Ends the nested message begun at `start`: writes its length, moving the body when
   *  the length takes more than the one byte reserved. */
  end(start: number): void {
    const len = this.pos - start - 1;
    if (len < 128) {
      this.buf[start] = len;
      return;
    }
    const extra = varintSize(len) - 1;
    this.room(extra);
    this.buf.copyWithin(start + 1 + extra, start + 1, this.pos);
    this.pos += extra;
    let p = start;
    let v = len;
    while (v > 127) {
      this.buf[p++] = (v & 127) | 128;
      v >>>= 7;
    }
    this.buf[p] = v;
  }

  /** Drops what was written from `mark` on (an entry that failed half way). */
  truncate(mark: number): void {
    this.pos = Math.min(mark, this.pos);
  }

  /** A copy of the bytes written (its own ArrayBuffer, transferable), and starts over. */
  take(): Uint8Array {
    const out = new Uint8Array(this.pos);
    out.set(this.buf.subarray(0, this.pos));
    this.pos = 0;
    return out;
  }

  private tag(field: number, wire: Wire): void {
    this.varint(field * 8 + wire);
  }

  private varint(v: number): void {
    const b = this.buf;
    let p = this.pos;
    if (v >= TWO_32) {
      // Low 7-bit groups from the exact value, then the rest (v < 2^53).
      const hi = Math.floor(v / TWO_32);
      let lo = v - hi * TWO_32;
      for (let i = 0; i < 4; i++) {
        b[p++] = (lo & 127) | 128;
        lo = Math.floor(lo / 128);
      }
      // 28 bits written; 4 bits of lo remain, joined with hi.
      let rest = lo + hi * 16;
      while (rest > 127) {
        b[p++] = (rest % 128) | 128;
        rest = Math.floor(rest / 128);
      }
      b[p++] = rest;
      this.pos = p;
      return;
    }
    while (v > 127) {
      b[p++] = (v & 127) | 128;
      v >>>= 7;
    }
    b[p++] = v;
    this.pos = p;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}

function varintSize(v: number): number {
  return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : v < 268435456 ? 4 : 5;
}
