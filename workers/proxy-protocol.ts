// The PROXY protocol (HAProxy's, versions 1 and 2) on a listener (`proxy_protocol: true`,
// Envoy's envoy.filters.listener.proxy_protocol): an L4 load balancer in front of Remora
// opens each connection with a header naming the client it carries; Remora reads it
// before anything else and uses that address as the client's (x-forwarded-for, rate
// limits by client IP, access logs). A connection that does not start with a valid header
// is closed: behind such a balancer, anything else is not from it.

import { isIP, type Socket } from 'node:net';
import { readConnectionStart, type StartVerdict } from './connection-start.js';

/** The addresses a PROXY header named: the client's, and the one it connected to. */
export interface ProxiedAddresses {
  readonly source: string;
  readonly sourcePort: number;
  readonly dest: string;
  readonly destPort: number;
}

/** What a connection's PROXY header named, per connection (LOCAL / UNKNOWN: nothing). */
const proxied = new WeakMap<Socket, ProxiedAddresses>();

/** The PROXY header's addresses of a connection, or null (none read, or LOCAL). A TLS
 *  socket made over a connection whose header was read: the header belongs to the TCP
 *  socket under it (node:tls keeps it as `_parent`). */
export function proxiedAddresses(socket: Socket): ProxiedAddresses | null {
  return proxied.get(socket) ?? proxied.get((socket as { _parent?: Socket })._parent ?? socket) ?? null;
}

/** The client address of a connection: the PROXY header's source, else the peer's. */
export function clientAddress(socket: Socket): string {
  return proxiedAddresses(socket)?.source ?? socket.remoteAddress ?? '';
}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** A v1 header is at most 107 bytes, CRLF included. */
const V1_MAX = 107;

/** What reading the start of a connection found: more bytes needed, a bad header, or a
 *  header of `length` bytes naming `source` (null: LOCAL / UNKNOWN, the peer's own). */
export type ProxyHeader = { kind: 'partial' } | { kind: 'invalid'; reason: string } | { kind: 'ok'; length: number; source: string | null; addresses: ProxiedAddresses | null };

/** Parses the PROXY header at the start of `buf`. */
export function parseProxyHeader(buf: Buffer): ProxyHeader {
  const n = Math.min(buf.length, V2_SIGNATURE.length);
  if (buf.compare(V2_SIGNATURE, 0, n, 0, n) === 0) return buf.length < 16 ? { kind: 'partial' } : parseV2(buf);
  const m = Math.min(buf.length, V1_PREFIX.length);
  if (buf.compare(V1_PREFIX, 0, m, 0, m) === 0) return buf.length < V1_PREFIX.length ? { kind: 'partial' } : parseV1(buf);
  return { kind: 'invalid', reason: 'no PROXY protocol header' };
}

function parseV1(buf: Buffer): ProxyHeader {
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end === -1) return buf.length >= V1_MAX ? { kind: 'invalid', reason: 'PROXY v1 header longer than 107 bytes' } : { kind: 'partial' };
  const parts = buf.toString('latin1', 0, end).split(' ');
  if (parts[1] === 'UNKNOWN') return { kind: 'ok', length: end + 2, source: null, addresses: null };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) return { kind: 'invalid', reason: 'malformed PROXY v1 header' };
  const [, family, src, dst, srcPort, dstPort] = parts;
  const ipOk = family === 'TCP4' ? /^(\d{1,3}\.){3}\d{1,3}$/.test(src) : /^[0-9a-fA-F:.]+$/.test(src) && src.includes(':');
  const portOk = (p: string) => /^\d{1,5}$/.test(p) && Number(p) <= 65535;
  if (!ipOk || !portOk(srcPort) || !portOk(dstPort)) return { kind: 'invalid', reason: 'malformed PROXY v1 header' };
  const source = family === 'TCP6' ? canonicalIpv6(src) : src;
  const addresses = { source, sourcePort: Number(srcPort), dest: family === 'TCP6' ? canonicalIpv6(dst) : dst, destPort: Number(dstPort) };
  return { kind: 'ok', length: end + 2, source, addresses };
}

function parseV2(buf: Buffer): ProxyHeader {
  const verCmd = buf[12];
  if (verCmd >> 4 !== 2) return { kind: 'invalid', reason: 'PROXY v2 header with an unknown version' };
  const length = 16 + buf.readUInt16BE(14);
  if (buf.length < length) return { kind: 'partial' };
  const cmd = verCmd & 0x0f;
  if (cmd === 0) return { kind: 'ok', length, source: null, addresses: null }; // LOCAL: the balancer's own connection
  if (cmd !== 1) return { kind: 'invalid', reason: 'PROXY v2 header with an unknown command' };
  const family = buf[13] >> 4;
  if (family === 1 && length >= 16 + 12) {
    const source = `${buf[16]}.${buf[17]}.${buf[18]}.${buf[19]}`;
    const dest = `${buf[20]}.${buf[21]}.${buf[22]}.${buf[23]}`;
    return { kind: 'ok', length, source, addresses: { source, sourcePort: buf.readUInt16BE(24), dest, destPort: buf.readUInt16BE(26) } };
  }
  if (family === 2 && length >= 16 + 36) {
    const source = readIpv6(buf, 16);
    return { kind: 'ok', length, source, addresses: { source, sourcePort: buf.readUInt16BE(48), dest: readIpv6(buf, 32), destPort: buf.readUInt16BE(50) } };
  }
  if (family === 0) return { kind: 'ok', length, source: null, addresses: null }; // UNSPEC
  return { kind: 'invalid', reason: 'PROXY v2 header with an unsupported address family' };
}

/** Reads the PROXY header of `socket`, then calls `next` with the socket (paused, the
 *  bytes after the header put back); closes the socket on a bad header or none within
 *  `timeoutMs`. */
export function readProxyHeader(socket: Socket, timeoutMs: number, next: (socket: Socket) => void): void {
  let addresses: ProxiedAddresses | null = null;
  const examine = (start: Buffer): StartVerdict => {
    const h = parseProxyHeader(start);
    if (h.kind === 'partial') return 'more';
    if (h.kind === 'invalid') return 'reject';
    addresses = h.addresses;
    return h.length;
  };
  readConnectionStart(socket, timeoutMs, examine, (s) => {
    if (addresses !== null) proxied.set(s, addresses);
    next(s);
  }, 'reading a PROXY protocol header');
}

/** An IPv6 address (16 bytes at `offset`) in its canonical short form. */
function readIpv6(buf: Buffer, offset: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(offset + 2 * i).toString(16));
  return canonicalIpv6(groups.join(':'));
}

/** RFC 5952's form (`::1`, not `0:0:0:0:0:0:0:1`), so that one client has one spelling
 *  in x-forwarded-for and rate-limit keys whichever header version named it. */
function canonicalIpv6(address: string): string {
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return address;
  }
}

/** An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) as plain IPv4. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** The PROXY header Remora sends to a cluster with `send_proxy_protocol` (v1 text or
 *  v2 binary), naming the client (`source`) and the address it connected to. Addresses
 *  of two families, or ones that are not IP literals, give v1 `UNKNOWN` / v2 `LOCAL`. */
export function encodeProxyHeader(version: 'v1' | 'v2', source: string, sourcePort: number, dest: string, destPort: number): Buffer {
  const src = unmapped(source);
  const dst = unmapped(dest);
  const family = isIP(src) === isIP(dst) ? isIP(src) : 0;
  if (version === 'v1') {
    if (family === 0) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
    return Buffer.from(`PROXY TCP${family} ${src} ${dst} ${sourcePort} ${destPort}\r\n`, 'latin1');
  }
  const addrLength = family === 4 ? 12 : family === 6 ? 36 : 0;
  const out = Buffer.alloc(16 + addrLength);
  V2_SIGNATURE.copy(out, 0);
  out[12] = family === 0 ? 0x20 : 0x21; // version 2, LOCAL or PROXY
  out[13] = family === 4 ? 0x11 : family === 6 ? 0x21 : 0x00; // TCP over IPv4 / IPv6, or UNSPEC
  out.writeUInt16BE(addrLength, 14);
  if (family === 4) {
    src.split('.').forEach((b, i) => (out[16 + i] = Number(b)));
    dst.split('.').forEach((b, i) => (out[20 + i] = Number(b)));
    out.writeUInt16BE(sourcePort, 24);
    out.writeUInt16BE(destPort, 26);
  } else if (family === 6) {
    writeIpv6(out, 16, src);
    writeIpv6(out, 32, dst);
    out.writeUInt16BE(sourcePort, 48);
    out.writeUInt16BE(destPort, 50);
  }
  return out;
}

/** Writes the 16 bytes of an IPv6 literal (`::` expanded, a dotted IPv4 tail as its two
 *  groups) at `offset`. */
function writeIpv6(out: Buffer, offset: number, literal: string): void {
  const dotted = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(literal);
  const hex = (a: string, b: string): string => ((Number(a) << 8) | Number(b)).toString(16);
  const address = dotted === null ? literal : `${dotted[1]}${hex(dotted[2], dotted[3])}:${hex(dotted[4], dotted[5])}`;
  const [head, tail] = address.includes('::') ? address.split('::') : [address, null];
  const left = head === '' ? [] : head.split(':');
  const right = tail === null || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right];
  for (let i = 0; i < 8; i++) out.writeUInt16BE(parseInt(groups[i], 16) & 0xffff, offset + 2 * i);
}
