// encodeProxyHeader (workers/proxy-protocol.ts), the header Remora sends to a cluster with
// send_proxy_protocol: v1 text and v2 binary byte for byte (HAProxy's proxy-protocol.txt),
// IPv4, IPv6 (with `::` expanded), IPv4-mapped IPv6 sent as IPv4, mixed families and
// non-IP addresses as v1 UNKNOWN / v2 LOCAL; and each one read back by parseProxyHeader.

import { isIP } from 'node:net';
import t from 'tap';
import { encodeProxyHeader, parseProxyHeader } from '../../workers/proxy-protocol.js';

const SIG = '0d0a0d0a000d0a515549540a';

/** An IPv6 address in full (8 groups of 4 hex digits), for comparing spellings. */
function expand6(a: string): string {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, null];
  const left = head === '' ? [] : head.split(':');
  const right = tail === null || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((g) => g.padStart(4, '0').toLowerCase()).join(':');
}

t.test('v1: TCP4, TCP6, mapped IPv4 as TCP4', async (t) => {
  const cases: [string, string, number, string, number, string][] = [
    ['IPv4', '192.0.2.7', 51000, '127.0.0.1', 6379, 'PROXY TCP4 192.0.2.7 127.0.0.1 51000 6379\r\n'],
    ['IPv6', '2001:db8::7', 443, '::1', 8443, 'PROXY TCP6 2001:db8::7 ::1 443 8443\r\n'],
    ['mapped IPv4 both', '::ffff:127.0.0.1', 40000, '::ffff:127.0.0.2', 80, 'PROXY TCP4 127.0.0.1 127.0.0.2 40000 80\r\n'],
    ['mapped source, IPv4 destination', '::ffff:10.1.2.3', 1, '10.0.0.1', 65535, 'PROXY TCP4 10.1.2.3 10.0.0.1 1 65535\r\n'],
    ['ports 0', '1.2.3.4', 0, '5.6.7.8', 0, 'PROXY TCP4 1.2.3.4 5.6.7.8 0 0\r\n'],
  ];
  for (const [what, src, sp, dst, dp, want] of cases) {
    const got = encodeProxyHeader('v1', src, sp, dst, dp).toString('latin1');
    t.equal(got, want, `${what}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
  }
});

t.test('v2: the binary header byte for byte', async (t) => {
  const v4 = encodeProxyHeader('v2', '192.0.2.7', 51000, '127.0.0.1', 6379).toString('hex');
  t.equal(v4, `${SIG}2111000c` + 'c0000207' + '7f000001' + 'c738' + '18eb', `IPv4: expected PROXY/STREAM over AF_INET with 12 address bytes, got ${v4}`);
  const v6 = encodeProxyHeader('v2', '2001:db8::7', 443, '::1', 8443).toString('hex');
  t.equal(v6, `${SIG}21210024` + '20010db8000000000000000000000007' + '00000000000000000000000000000001' + '01bb' + '20fb',
    `IPv6: expected PROXY/STREAM over AF_INET6 with 36 address bytes, got ${v6}`);
  const full = encodeProxyHeader('v2', 'fe80:1:2:3:4:5:6:7', 1, '1::', 2).toString('hex');
  t.equal(full.slice(32, 96), 'fe800001000200030004000500060007' + '00010000000000000000000000000000', `IPv6 with 8 groups and a trailing "::" (got ${full.slice(32, 96)})`);
  const mapped = encodeProxyHeader('v2', '::ffff:127.0.0.1', 40000, '::ffff:127.0.0.1', 80).toString('hex');
  t.equal(mapped, `${SIG}2111000c7f0000017f0000019c400050`, `mapped IPv4 goes as AF_INET (got ${mapped})`);
});

t.test('mixed families and non-IP addresses: v1 UNKNOWN, v2 LOCAL', async (t) => {
  for (const [src, dst] of [['192.0.2.1', '::1'], ['2001:db8::1', '127.0.0.1'], ['::ffff:192.0.2.1', '2001:db8::2'], ['', '127.0.0.1'], ['localhost', '127.0.0.1']]) {
    const v1 = encodeProxyHeader('v1', src, 1000, dst, 80).toString('latin1');
    t.equal(v1, 'PROXY UNKNOWN\r\n', `${JSON.stringify(src)} → ${JSON.stringify(dst)}: expected v1 UNKNOWN, got ${JSON.stringify(v1)}`);
    const v2 = encodeProxyHeader('v2', src, 1000, dst, 80).toString('hex');
    t.equal(v2, `${SIG}20000000`, `${JSON.stringify(src)} → ${JSON.stringify(dst)}: expected v2 LOCAL/UNSPEC with no address (got ${v2})`);
  }
});

t.test('round trip: parseProxyHeader reads what encodeProxyHeader wrote', async (t) => {
  const pairs: [string, string][] = [
    ['203.0.113.9', '127.0.0.1'], ['::ffff:127.0.0.1', '::ffff:127.0.0.1'], ['2001:db8:85a3::8a2e:370:7334', '2001:db8::1'],
    ['::1', '::1'], ['fe80:1:2:3:4:5:6:7', '::'], ['192.0.2.1', '::1'],
  ];
  const trailer = Buffer.from('GET / HTTP/1.1\r\n\r\n');
  for (const version of ['v1', 'v2'] as const) {
    for (const [src, dst] of pairs) {
      const header = encodeProxyHeader(version, src, 51234, dst, 443);
      const what = `${version} ${src} → ${dst}`;
      const parsed = parseProxyHeader(Buffer.concat([header, trailer]));
      if (parsed.kind !== 'ok') {
        t.fail(`${what}: expected ok, got ${JSON.stringify(parsed)} for ${header.toString('hex')}`);
        continue;
      }
      t.equal(parsed.length, header.length, `${what}: the header's length (${header.length}) is consumed, not the bytes after it (got ${parsed.length})`);
      const plainSrc = src.startsWith('::ffff:') ? src.slice(7) : src;
      const mixed = isIP(plainSrc) !== isIP(dst.startsWith('::ffff:') ? dst.slice(7) : dst);
      if (mixed) {
        t.equal(parsed.source, null, `${what}: mixed families read back as no address (the peer's own)`);
      } else if (isIP(plainSrc) === 6) {
        t.equal(expand6(parsed.source ?? ''), expand6(plainSrc), `${what}: source ${plainSrc} (read ${parsed.source})`);
      } else {
        t.equal(parsed.source, plainSrc, `${what}: source ${plainSrc} (read ${parsed.source})`);
      }
      // Every prefix is 'partial', never 'invalid' (a reader waits for the rest).
      for (let n = 1; n < header.length; n++) {
        const p = parseProxyHeader(header.subarray(0, n));
        if (p.kind !== 'partial') {
          t.fail(`${what}: the first ${n} of ${header.length} bytes should be partial, got ${JSON.stringify(p)}`);
          break;
        }
      }
    }
  }
});

t.test('IPv6 with an embedded IPv4 tail other than ::ffff: (IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96)', async (t) => {
  const v2 = encodeProxyHeader('v2', '64:ff9b::c000:207', 1, '64:ff9b::192.0.2.7', 2).toString('hex');
  t.equal(v2.slice(32, 64), v2.slice(64, 96), `64:ff9b::192.0.2.7 is the same address as 64:ff9b::c000:207 (src ${v2.slice(32, 64)}, dst ${v2.slice(64, 96)})`);
});
