// Reading a TLS ClientHello without terminating TLS (Envoy's tls_inspector): whether a
// connection starts with TLS at all, the server name it asks for (SNI) and the protocols
// it offers by ALPN. A TCP listener's filter chains pick on these (TLS passthrough by
// SNI); the bytes read are put back and go upstream unchanged.

/** What the first bytes of a connection say. */
export type ClientHelloResult =
  /** Not enough bytes yet to decide. */
  | { readonly kind: 'more' }
  /** Not a TLS handshake (Envoy's transport protocol `raw_buffer`). */
  | { readonly kind: 'raw' }
  /** A ClientHello: SNI ('' when none, lower-cased) and ALPN ids ([] when none). */
  | { readonly kind: 'tls'; readonly serverName: string; readonly alpn: readonly string[] };

const MORE: ClientHelloResult = { kind: 'more' };
const RAW: ClientHelloResult = { kind: 'raw' };
/** A handshake record whose ClientHello cannot be read is still TLS, with nothing known. */
const TLS_UNKNOWN: ClientHelloResult = { kind: 'tls', serverName: '', alpn: [] };

const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const EXT_ALPN = 0x0010;
/** A ClientHello larger than this is not waited for (Envoy reads at most 64 KiB too). */
export const MAX_CLIENT_HELLO = 64 * 1024;

/** Examines the bytes read so far from a connection. */
export function readClientHello(buf: Buffer): ClientHelloResult {
  if (buf.length === 0) return MORE;
  if (buf[0] !== RECORD_HANDSHAKE) return RAW;
  if (buf.length < 3) return MORE;
  // SSLv3 / TLS record versions are 0x03 0x00..0x04.
  if (buf[1] !== 0x03 || buf[2] > 0x04) return RAW;
  // The handshake message may span several records: join their fragments.
  const fragments: Buffer[] = [];
  let offset = 0;
  let have = 0;
  let need = -1; // the ClientHello's length with its 4-byte header, once known
  while (need < 0 || have < need) {
    if (buf.length < offset + 5) return buf.length >= MAX_CLIENT_HELLO ? TLS_UNKNOWN : MORE;
    if (buf[offset] !== RECORD_HANDSHAKE) return TLS_UNKNOWN;
    const length = buf.readUInt16BE(offset + 3);
    if (buf.length < offset + 5 + length) return buf.length >= MAX_CLIENT_HELLO ? TLS_UNKNOWN : MORE;
    fragments.push(buf.subarray(offset + 5, offset + 5 + length));
    have += length;
    offset += 5 + length;
    if (need < 0 && have >= 4) {
      const first = fragments.length === 1 ? fragments[0] : Buffer.concat(fragments);
      if (first[0] !== HANDSHAKE_CLIENT_HELLO) return TLS_UNKNOWN;
      need = 4 + first.readUIntBE(1, 3);
      if (need > MAX_CLIENT_HELLO) return TLS_UNKNOWN;
    }
  }
  const hello = fragments.length === 1 ? fragments[0] : Buffer.concat(fragments);
  return parseClientHello(hello.subarray(4, need));
}

/** The body of a ClientHello (after its 4-byte handshake header). */
function parseClientHello(b: Buffer): ClientHelloResult {
  let p = 2 + 32; // client_version, random
  if (p + 1 > b.length) return TLS_UNKNOWN;
  p += 1 + b[p]; // session_id
  if (p + 2 > b.length) return TLS_UNKNOWN;
  p += 2 + b.readUInt16BE(p); // cipher_suites
  if (p + 1 > b.length) return TLS_UNKNOWN;
  p += 1 + b[p]; // compression_methods
  if (p + 2 > b.length) return TLS_UNKNOWN; // no extensions
  const end = Math.min(b.length, p + 2 + b.readUInt16BE(p));
  p += 2;
  let serverName = '';
  let alpn: string[] = [];
  while (p + 4 <= end) {
    const type = b.readUInt16BE(p);
    const length = b.readUInt16BE(p + 2);
    const body = b.subarray(p + 4, Math.min(end, p + 4 + length));
    p += 4 + length;
    if (type === EXT_SERVER_NAME) serverName = readServerName(body);
    else if (type === EXT_ALPN) alpn = readAlpn(body);
  }
  return { kind: 'tls', serverName, alpn };
}

/** server_name_list: the first host_name entry. */
function readServerName(b: Buffer): string {
  if (b.length < 2) return '';
  const end = Math.min(b.length, 2 + b.readUInt16BE(0));
  for (let p = 2; p + 3 <= end; ) {
    const type = b[p];
    const length = b.readUInt16BE(p + 1);
    if (p + 3 + length > end) break;
    if (type === 0) return b.toString('latin1', p + 3, p + 3 + length).toLowerCase();
    p += 3 + length;
  }
  return '';
}

/** protocol_name_list. */
function readAlpn(b: Buffer): string[] {
  const out: string[] = [];
  if (b.length < 2) return out;
  const end = Math.min(b.length, 2 + b.readUInt16BE(0));
  for (let p = 2; p + 1 <= end; ) {
    const length = b[p];
    if (length === 0 || p + 1 + length > end) break;
    out.push(b.toString('latin1', p + 1, p + 1 + length));
    p += 1 + length;
  }
  return out;
}
