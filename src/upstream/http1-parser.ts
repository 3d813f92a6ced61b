// Incremental HTTP/1.1 response parser for upstream connections.
// Feeds on socket chunks, calls back with the head, body slices (views into the input,
// valid only during the call) and completion. Body framing follows RFC 9112 §6.3:
// no body for HEAD/1xx/204/304, chunked, Content-Length, or read-until-close.
// The head is read in one pass over its bytes; its strings are cut from one Latin-1 decoding.
// Written for Remora's upstream client (see connection.ts); longer than most modules
// because a protocol codec reads best in one place.

import { isTokenChar, parseContentLength } from '../http/headers.js';

export interface ResponseHandler {
  /** `headers` is flat: [name0, value0, name1, value1, ...], names lower-case.
   *  `bodyLength`: exact length, or -1 when chunked / delimited by close. */
  onHead(status: number, reason: string, headers: string[], bodyLength: number): void;
  onBody(chunk: Buffer): void;
  onComplete(): void;
}

const enum State {
  Head,
  Fixed,
  ChunkSize,
  ChunkExt,
  ChunkSizeLf,
  ChunkData,
  ChunkDataCr,
  ChunkDataLf,
  Trailers,
  UntilClose,
  Done,
}

const MAX_HEAD_BYTES = 64 * 1024;
const MAX_CHUNK_SIZE_DIGITS = 12;
const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Why a response could not be parsed; becomes a 502 with flag UPE. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

export class ResponseParser {
  private state = State.Done;
  private handler: ResponseHandler | null = null;
  private expectBody = true;
  private pending: Buffer | null = null; // partial head or trailer bytes
  private remaining = 0;
  private sizeDigits = 0;
  /** Whether the connection may carry another request after this response. */
  keepAlive = true;
  /** Upstream's `Keep-Alive: timeout=N` hint in ms, or 0 when it sent none. */
  keepAliveTimeoutMs = 0;
  /** Bytes of the response seen so far (head included). */
  bytesSeen = 0;
  status = 0;

  /** Prepares for the response to one request. `isHead`: the request was HEAD. */
  start(handler: ResponseHandler, isHead: boolean): void {
    this.handler = handler;
    this.expectBody = !isHead;
    this.state = State.Head;
    this.pending = null;
    this.remaining = 0;
    this.keepAlive = true;
    this.keepAliveTimeoutMs = 0;
    this.bytesSeen = 0;
    this.status = 0;
  }

  get done(): boolean {
    return this.state === State.Done;
  }

  /** True when the body runs until the connection closes; close then completes it. */
  get endsAtClose(): boolean {
    return this.state === State.UntilClose;
  }

  /** Ends a close-delimited body. */
  finishAtClose(): void {
    if (this.state !== State.UntilClose) return;
    this.state = State.Done;
    this.handler?.onComplete();
  }

  /** Consumes one socket chunk. Throws ProtocolError on malformed input, including bytes
   *  after the end of the response (an upstream may not answer what was not asked). */
  execute(buf: Buffer): void {
    this.bytesSeen += buf.length;
    let pos = 0;
    const len = buf.length;
    while (pos < len) {
      switch (this.state) {
        case State.Head: {
          pos = this.readHead(buf, pos);
          break;
        }
        case State.Fixed: {
          const n = Math.min(this.remaining, len - pos);
          this.remaining -= n;
          const chunk = buf.subarray(pos, pos + n);
          pos += n;
          if (this.remaining === 0) this.state = State.Done;
          this.handler!.onBody(chunk);
          if (this.state === State.Done) this.handler!.onComplete();
          break;
        }
        case State.UntilClose: {
          this.handler!.onBody(pos === 0 ? buf : buf.subarray(pos));
          pos = len;
          break;
        }
        case State.ChunkSize: {
          const c = buf[pos++];
          const digit = hexValue(c);
          if (digit >= 0) {
            if (++this.sizeDigits > MAX_CHUNK_SIZE_DIGITS) throw new ProtocolError('chunk size too large');
            this.remaining = this.remaining * 16 + digit;
          } else if (this.sizeDigits === 0) {
            throw new ProtocolError('invalid chunk size');
          } else if (c === 0x0d) {
            this.state = State.ChunkSizeLf;
          } else if (c === 0x3b || c === 0x20 || c === 0x09) {
            this.state = State.ChunkExt; // chunk extensions are ignored
          } else {
            throw new ProtocolError('invalid chunk size');
          }
          break;
        }
        case State.ChunkExt: {
          const cr = buf.indexOf(0x0d, pos);
          if (cr < 0) {
            pos = len;
          } else {
            pos = cr + 1;
            this.state = State.ChunkSizeLf;
          }
          break;
        }
        case State.ChunkSizeLf: {
          if (buf[pos++] !== 0x0a) throw new ProtocolError('invalid chunk size line');
          if (this.remaining === 0) {
            this.state = State.Trailers;
            this.pending = null;
          } else {
            this.state = State.ChunkData;
          }
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, len - pos);
          this.remaining -= n;
          const chunk = buf.subarray(pos, pos + n);
          pos += n;
          if (this.remaining === 0) this.state = State.ChunkDataCr;
          this.handler!.onBody(chunk);
          break;
        }
        case State.ChunkDataCr: {
          if (buf[pos++] !== 0x0d) throw new ProtocolError('missing CRLF after chunk data');
          this.state = State.ChunkDataLf;
          break;
        }
        case State.ChunkDataLf: {
          if (buf[pos++] !== 0x0a) throw new ProtocolError('missing CRLF after chunk data');
          this.state = State.ChunkSize;
          this.sizeDigits = 0;
          this.remaining = 0;
          break;
        }
        case State.Trailers: {
          pos = this.readTrailers(buf, pos);
          break;
        }
        case State.Done: {
          throw new ProtocolError('unexpected data after the end of the response');
        }
      }
    }
  }

  /** Accumulates the head until CRLFCRLF, then parses it. Returns the new position. */
  private readHead(buf: Buffer, pos: number): number {
    let data = buf;
    let from = pos;
    if (this.pending !== null) {
      data = Buffer.concat([this.pending, buf.subarray(pos)]);
      from = 0;
    }
    const end = data.indexOf(CRLFCRLF, from);
    if (end < 0) {
      if (data.length - from > MAX_HEAD_BYTES) throw new ProtocolError('response head too large');
      this.pending = Buffer.from(data.subarray(from)); // copy: the input is reused by the caller
      return buf.length;
    }
    if (end - from > MAX_HEAD_BYTES) throw new ProtocolError('response head too large');
    const headEnd = end + 4;
    const consumedFromBuf = this.pending !== null ? headEnd - this.pending.length + pos : headEnd;
    this.pending = null;
    this.parseHead(data, from, end);
    return consumedFromBuf;
  }

  /** Parses the head in data[start, end) (its final CRLFCRLF excluded) in one pass over
   *  its lines, read by index: control characters, the status line, then each header's
   *  name and value. Bytes are read from the Buffer (faster than charCodeAt); strings are
   *  cut from its Latin-1 decoding, where character i is byte start + i. */
  private parseHead(data: Buffer, start: number, end: number): void {
    // Latin-1: one character per byte, so any byte from 0x80 up (obs-text, valid UTF-8
    // or not) reaches the client exactly as it came; the front ends write header strings
    // back out as Latin-1.
    const text = data.toString('latin1', start, end);
    const statusEnd = lineEnd(data, start, end);
    const statusLength = statusEnd - start;
    // RFC 9112 §4: HTTP/1.0 or HTTP/1.1, SP, exactly three digits, then SP and a reason
    // (possibly empty) or nothing.
    const minor = text.charCodeAt(7) - 48;
    if (statusLength < 12 || !text.startsWith('HTTP/1.') || (minor !== 0 && minor !== 1) || text.charCodeAt(8) !== 0x20) {
      throw headError(text, 'invalid status line');
    }
    const c0 = text.charCodeAt(9);
    const c1 = text.charCodeAt(10);
    const c2 = text.charCodeAt(11);
    if (!isDigit(c0) || !isDigit(c1) || !isDigit(c2)) throw headError(text, 'invalid status code');
    if (statusLength > 12 && text.charCodeAt(12) !== 0x20) throw headError(text, 'invalid status line');
    const status = (c0 - 48) * 100 + (c1 - 48) * 10 + (c2 - 48);
    if (status < 100) throw headError(text, 'invalid status code');
    const reason = statusLength > 13 ? text.slice(13, statusLength) : '';

    const headers: string[] = [];
    let contentLength = -1;
    let chunked = false;
    let hasTransferEncoding = false;
    let keepAlive = minor >= 1;
    let keepAliveTimeoutMs = -1; // kept from a head whose lines all parse
    // `pos` is the CR ending the previous line; every line but the last ends in CRLF.
    for (let pos = statusEnd; pos < end; ) {
      const lineStart = pos + 2;
      // The name: token characters up to the colon; lower-cased only if it needs it.
      let colon = lineStart;
      let upper = false;
      for (; colon < end; colon++) {
        const k = NAME_CHAR[data[colon]];
        if (k === NameChar.Token) continue;
        if (k === NameChar.Colon) break;
        if (k === NameChar.Invalid) throw headerLineError(text, lineStart - start);
        upper = true;
      }
      if (colon === lineStart || colon === end) throw headerLineError(text, lineStart - start);
      pos = lineEnd(data, colon + 1, end);
      const rawName = text.slice(lineStart - start, colon - start);
      const name = upper ? rawName.toLowerCase() : rawName;
      // The value without the whitespace around it (what String.prototype.trim strips).
      let from = colon + 1;
      let to = pos;
      while (from < to && isTrimmed(data[from])) from++;
      while (to > from && isTrimmed(data[to - 1])) to--;
      const value = text.slice(from - start, to - start);
      switch (name.length) {
        case 14: {
          if (name !== 'content-length') break;
          const n = parseContentLength(value);
          if (n < 0 || (contentLength >= 0 && n !== contentLength)) throw headError(text, 'invalid content-length');
          contentLength = n;
          break;
        }
        case 17: {
          if (name !== 'transfer-encoding') break;
          hasTransferEncoding = true;
          chunked = value.toLowerCase().endsWith('chunked');
          break;
        }
        case 10: {
          if (name === 'connection') {
            const v = value.toLowerCase();
            if (v.includes('close')) keepAlive = false;
            else if (v.includes('keep-alive')) keepAlive = true;
          } else if (name === 'keep-alive') {
            const m = /timeout=(\d+)/i.exec(value);
            if (m) keepAliveTimeoutMs = parseInt(m[1], 10) * 1000;
          }
          break;
        }
      }
      headers.push(name, value);
    }
    if (keepAliveTimeoutMs >= 0) this.keepAliveTimeoutMs = keepAliveTimeoutMs;
    if (hasTransferEncoding && contentLength >= 0) {
      throw new ProtocolError('both transfer-encoding and content-length');
    }

    if (status < 200) {
      // 100 Continue and other interim responses are dropped; 101 would switch
      // protocols, which this client never asks for.
      if (status === 101) throw new ProtocolError('unexpected 101 switching protocols');
      this.state = State.Head;
      return;
    }

    this.status = status;
    this.keepAlive = keepAlive;
    const noBody = !this.expectBody || status === 204 || status === 304;
    if (noBody) {
      this.state = State.Done;
      this.handler!.onHead(status, reason, headers, 0);
      this.handler!.onComplete();
      return;
    }
    if (hasTransferEncoding) {
      if (chunked) {
        this.state = State.ChunkSize;
        this.sizeDigits = 0;
        this.remaining = 0;
      } else {
        this.state = State.UntilClose;
        this.keepAlive = false;
      }
      this.handler!.onHead(status, reason, headers, -1);
      return;
    }
    if (contentLength >= 0) {
      this.remaining = contentLength;
      this.state = contentLength === 0 ? State.Done : State.Fixed;
      this.handler!.onHead(status, reason, headers, contentLength);
      if (contentLength === 0) this.handler!.onComplete();
      return;
    }
    this.state = State.UntilClose;
    this.keepAlive = false;
    this.handler!.onHead(status, reason, headers, -1);
  }

  /** Skips trailer fields (not forwarded) up to the empty line that ends the message. */
  private readTrailers(buf: Buffer, pos: number): number {
    const data = this.pending !== null ? Buffer.concat([this.pending, buf.subarray(pos)]) : buf.subarray(pos);
    // The trailer section is empty (CRLF) or fields followed by CRLFCRLF.
    if (data.length >= 2 && data[0] === 0x0d && data[1] === 0x0a) {
      return this.finishTrailers(buf, pos, data, 2);
    }
    const end = data.indexOf(CRLFCRLF);
    if (end < 0) {
      if (data.length > MAX_HEAD_BYTES) throw new ProtocolError('trailers too large');
      this.pending = Buffer.from(data);
      return buf.length;
    }
    return this.finishTrailers(buf, pos, data, end + 4);
  }

  private finishTrailers(buf: Buffer, pos: number, data: Buffer, used: number): number {
    const fromPending = this.pending !== null ? this.pending.length : 0;
    this.pending = null;
    this.state = State.Done;
    this.handler!.onComplete();
    return pos + (used - fromPending);
  }
}

/** Header name bytes: token characters (upper-case ones apart), the colon, the rest. */
const enum NameChar {
  Invalid,
  Token,
  Upper,
  Colon,
}
const NAME_CHAR = new Uint8Array(256);
for (let c = 0; c < 128; c++) {
  if (isTokenChar(c)) NAME_CHAR[c] = c >= 0x41 && c <= 0x5a ? NameChar.Upper : NameChar.Token;
}
NAME_CHAR[0x3a] = NameChar.Colon;

const CONTROL_CHARACTER = 'control character in response head';

/** Where the line starting at `pos` ends: the index of its CRLF, or `end` (the end of the
 *  head). Throws on a control character other than HTAB in the line, as hasBadControl would. */
function lineEnd(head: Buffer, pos: number, end: number): number {
  for (let i = pos; i < end; i++) {
    const c = head[i];
    if (c < 0x20 || c === 0x7f) {
      if (c === 0x0d && i + 1 < end && head[i + 1] === 0x0a) return i;
      if (c !== 0x09) throw new ProtocolError(CONTROL_CHARACTER);
    }
  }
  return end;
}

/** The error for a head found bad before all of it was scanned: a control character
 *  anywhere in the head is reported first, whatever else is wrong. */
function headError(text: string, message: string): ProtocolError {
  return new ProtocolError(hasBadControl(text) ? CONTROL_CHARACTER : message);
}

/** The error for a header line (from `start`) whose name is not all token characters
 *  up to a colon: no colon, or one at the start, makes it no header line at all. */
function headerLineError(text: string, start: number): ProtocolError {
  let stop = text.indexOf('\r\n', start);
  if (stop < 0) stop = text.length;
  const colon = text.indexOf(':', start);
  return headError(text, colon <= start || colon >= stop ? 'invalid header line' : 'invalid header name');
}

/** What String.prototype.trim() strips from a value that got past lineEnd: SP, HTAB, and
 *  0xA0 (obs-text, but NBSP to trim(), which this parser used before; kept as it was). */
function isTrimmed(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0xa0;
}

/** True when a head holds a control character other than HTAB or a CR LF pair: a bare
 *  CR or LF (which many clients take as a line end), NUL, DEL. Passed on, they would
 *  let an upstream inject header lines into the client's response. */
function hasBadControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x20) {
      if (c === 0x7f) return true;
    } else if (c === 0x0d && text.charCodeAt(i + 1) === 0x0a) {
      i++;
    } else if (c !== 0x09) {
      return true;
    }
  }
  return false;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}
