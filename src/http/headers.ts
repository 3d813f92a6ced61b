// HTTP/1.1 header rules shared by the downstream and upstream sides: which headers are
// hop-by-hop (never forwarded), and which names and values are legal.

/** Headers that describe one connection, never the message (RFC 9110 §7.6.1), plus
 *  everything a proxy must not pass on. `proxy-*` is handled by prefix. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
]);

/** True for a lower-case header name a proxy must drop. */
export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-');
}

/** Lower-case names listed in a Connection header value (`close, x-foo`). */
export function connectionTokens(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(',')) {
    const token = part.trim().toLowerCase();
    if (token.length > 0) out.push(token);
  }
  return out;
}

// RFC 9110 token characters, as a lookup table for speed.
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TOKEN[c.charCodeAt(0)] = 1;
}

/** True for the char code of an RFC 9110 token character (what a header name is made of). */
export function isTokenChar(c: number): boolean {
  return c < 128 && TOKEN[c] === 1;
}

/** Field values may hold visible characters, space, tab and obs-text; never CR, LF, NUL
 *  or other controls (request smuggling and header injection). Values arrive decoded
 *  from UTF-8 and leave encoded as UTF-8, so any code point from 0x80 up is obs-text
 *  on the wire and allowed. */
export function isValidHeaderValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return false;
  }
  return true;
}

/** Parses a Content-Length value: digits only, else -1. */
export function parseContentLength(value: string): number {
  if (value.length === 0 || value.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

/** A UTF-8 string (a config value, or what uWS decoded) as the bytes a header carries:
 *  the Latin-1 "binary" string of its UTF-8 encoding, since header strings inside Remora
 *  hold one character per byte. ASCII, the common case, is returned as it is. */
export function headerBytes(value: string): string {
  for (let i = 0; i < value.length; i++) {
    if (value.charCodeAt(i) > 0x7f) return Buffer.from(value, 'utf8').toString('latin1');
  }
  return value;
}

