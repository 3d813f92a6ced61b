// Header rules of HTTP/2 (RFC 9113 §8.2.2) shared by both sides of Remora: the
// connection-specific fields an HTTP/2 message must not carry (what an HTTP/1.1 message
// may), and node:http2's header objects, where a repeated field is an array.

import type { OutgoingHttpHeaders } from 'node:http2';

/** Fields that describe one HTTP/1.1 connection, never sent in HTTP/2 (`te` apart: it may
 *  say `trailers`, so each side decides on it). */
export function isConnectionSpecific(name: string): boolean {
  switch (name) {
    case 'connection':
    case 'keep-alive':
    case 'proxy-connection':
    case 'transfer-encoding':
    case 'upgrade':
      return true;
    default:
      return false;
  }
}

/** Adds `name: value` to a node:http2 header object, repeated names as arrays. */
export function addHeader(headers: OutgoingHttpHeaders, name: string, value: string): void {
  const had = headers[name];
  if (had === undefined) headers[name] = value;
  else if (Array.isArray(had)) had.push(value);
  else headers[name] = [String(had), value];
}
