// IP address ranges (`10.0.0.0/8`, `fd00::/8`) as a filter chain matches a connection's
// addresses by them (Envoy's CidrRange): parsed once per config; a match compares the
// address's bytes with the range's prefix. IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`,
// what a dual-stack socket reports) are matched as the IPv4 address they carry.

import { isIP } from 'node:net';

export interface Cidr {
  readonly bytes: Uint8Array;
  readonly prefixLen: number;
}

/** Why `s` is not a range (`address/len`, or a bare address: all its bits), or undefined. */
export function cidrProblem(s: string): string | undefined {
  return parseCidr(s) === null ? `"${s}" is not an IP range: use an address with a prefix length, such as 10.0.0.0/8 or fd00::/8` : undefined;
}

/** `address/len` (a bare address: /32 or /128); null when it is not one. */
export function parseCidr(s: string): Cidr | null {
  const slash = s.indexOf('/');
  const address = slash < 0 ? s : s.slice(0, slash);
  const bytes = addressBytes(address);
  if (bytes === null) return null;
  const max = bytes.length * 8;
  if (slash < 0) return { bytes, prefixLen: max };
  const len = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(len) || Number(len) > max) return null;
  return { bytes, prefixLen: Number(len) };
}

/** An address's bytes (4 for IPv4, and for IPv4-mapped IPv6; 16 for IPv6); null for
 *  anything else. */
export function addressBytes(address: string): Uint8Array | null {
  const v = isIP(address);
  if (v === 4) return Uint8Array.from(address.split('.').map(Number));
  if (v !== 6) return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return addressBytes(mapped[1]);
  const [head, tail = ''] = address.includes('::') ? address.split('::') : [address, undefined];
  const groups = (part: string | undefined): string[] => (part === undefined || part === '' ? [] : part.split(':'));
  let words = [...groups(head), ...groups(tail)];
  // An embedded IPv4 tail (::1.2.3.4) is two words.
  const last = words[words.length - 1];
  if (last !== undefined && last.includes('.')) {
    const b = last.split('.').map(Number);
    words = [...words.slice(0, -1), ((b[0] << 8) | b[1]).toString(16), ((b[2] << 8) | b[3]).toString(16)];
  }
  const head16 = groups(head).length;
  const fill = address.includes('::') ? 8 - words.length : 0;
  const all = address.includes('::') ? [...words.slice(0, head16), ...Array<string>(fill).fill('0'), ...words.slice(head16)] : words;
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    const n = parseInt(w, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  return out;
}

/** Whether `address` (its bytes) is in `range`. */
export function cidrContains(range: Cidr, address: Uint8Array): boolean {
  if (range.bytes.length !== address.length) return false;
  const whole = range.prefixLen >> 3;
  for (let i = 0; i < whole; i++) if (range.bytes[i] !== address[i]) return false;
  const rest = range.prefixLen & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (range.bytes[whole] & mask) === (address[whole] & mask);
}
