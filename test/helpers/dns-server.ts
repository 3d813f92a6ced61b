// A tiny authoritative DNS server for tests: UDP on 127.0.0.1, port 0. It answers A and
// AAAA questions from records the test sets (and changes while it runs), with their
// TTLs; a name can be made to answer NXDOMAIN, SERVFAIL or nothing at all, and every
// question is counted. Only what node:dns's Resolver (c-ares) sends is understood: one
// question per query, no EDNS needed (an OPT record is ignored).

import dgram from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import type { DnsLookup, DnsRecord } from '../../src/main/dns-query.js';
import type { RemoraConfig } from '../../src/config/types.js';
import { validateConfig } from '../../src/config/validate.js';

export type NameMode = 'answer' | 'nxdomain' | 'servfail' | 'drop';

export interface DnsRecordSpec {
  readonly address: string;
  /** Seconds; default 300. */
  readonly ttl?: number;
}

export interface TestDnsServer {
  readonly port: number;
  /** `127.0.0.1:<port>`, for a cluster's `dns.resolvers`. */
  readonly address: string;
  /** Sets the A/AAAA records of `name` (the family comes from each address) and makes it
   *  answer again. An empty list: an answer with no records (NODATA). */
  set(name: string, records: readonly (string | DnsRecordSpec)[]): void;
  /** How `name` answers from now on. */
  mode(name: string, mode: NameMode): void;
  /** Questions for `name` (any type) so far; without a name, all questions. */
  queries(name?: string): number;
  close(): Promise<void>;
}

const TYPE_A = 1;
const TYPE_AAAA = 28;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;

interface Question {
  readonly id: number;
  readonly name: string;
  readonly type: number;
  /** The question section's bytes, echoed in the answer. */
  readonly question: Buffer;
  readonly rd: boolean;
}

function parseQuery(msg: Buffer): Question | null {
  if (msg.length < 12 || msg.readUInt16BE(4) < 1) return null;
  const labels: string[] = [];
  let at = 12;
  for (;;) {
    if (at >= msg.length) return null;
    const len = msg[at];
    if (len === 0) break;
    if (len > 63 || at + 1 + len > msg.length) return null;
    labels.push(msg.subarray(at + 1, at + 1 + len).toString('latin1'));
    at += 1 + len;
  }
  at += 1;
  if (at + 4 > msg.length) return null;
  const type = msg.readUInt16BE(at);
  return { id: msg.readUInt16BE(0), name: labels.join('.').toLowerCase(), type, question: msg.subarray(12, at + 4), rd: (msg[2] & 1) === 1 };
}

function addressBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split('.').map(Number));
  // Expand "::" and write 8 groups.
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function response(q: Question, rcode: number, records: readonly DnsRecordSpec[]): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  header[2] = 0x84 | (q.rd ? 1 : 0); // QR, AA, RD echoed
  header[3] = rcode;
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(records.length, 6);
  const answers = records.map((r) => {
    const data = addressBytes(r.address);
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
    rr.writeUInt16BE(q.type, 2);
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(r.ttl ?? 300, 6);
    rr.writeUInt16BE(data.length, 10);
    return Buffer.concat([rr, data]);
  });
  return Buffer.concat([header, q.question, ...answers]);
}

export async function startDnsServer(): Promise<TestDnsServer> {
  const socket = dgram.createSocket('udp4');
  const records = new Map<string, DnsRecordSpec[]>();
  const modes = new Map<string, NameMode>();
  const counts = new Map<string, number>();
  let total = 0;
  socket.on('message', (msg, rinfo) => {
    const q = parseQuery(msg);
    if (q === null) return;
    total++;
    counts.set(q.name, (counts.get(q.name) ?? 0) + 1);
    const mode = modes.get(q.name) ?? 'answer';
    if (mode === 'drop') return;
    const known = records.get(q.name);
    let reply: Buffer;
    if (mode === 'servfail') reply = response(q, RCODE_SERVFAIL, []);
    else if (mode === 'nxdomain' || known === undefined) reply = response(q, RCODE_NXDOMAIN, []);
    else {
      const want = q.type === TYPE_A ? isIPv4 : q.type === TYPE_AAAA ? isIPv6 : () => false;
      reply = response(q, 0, known.filter((r) => want(r.address)));
    }
    socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const port = socket.address().port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    set(name, list) {
      records.set(name.toLowerCase(), list.map((r) => (typeof r === 'string' ? { address: r } : r)));
      modes.set(name.toLowerCase(), 'answer');
    },
    mode(name, mode) {
      modes.set(name.toLowerCase(), mode);
    },
    queries(name) {
      return name === undefined ? total : (counts.get(name.toLowerCase()) ?? 0);
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/** A fake DNS side for resolveName (src/main/dns-query.ts): per `A name` / `AAAA name`,
 *  records or an error code (ENOTFOUND when absent); `asked` records every query. */
export function fakeLookup(table: Record<string, DnsRecord[] | string>): DnsLookup & { asked: string[] } {
  const asked: string[] = [];
  const answer = async (key: string): Promise<DnsRecord[]> => {
    asked.push(key);
    const v = table[key] ?? 'ENOTFOUND';
    if (typeof v === 'string') throw Object.assign(new Error(v), { code: v });
    return v;
  };
  return { asked, resolve4: (n) => answer(`A ${n}`), resolve6: (n) => answer(`AAAA ${n}`), cancel: () => {} };
}

/** A validated config with one DNS cluster `c` (defaults filled in) and a listener
 *  routing to it. */
export function dnsClusterConfig(dns: Record<string, unknown>, endpoints: { address: string; port: number }[]): RemoraConfig {
  const r = validateConfig({
    listeners: [{ name: 'l', address: '127.0.0.1', port: 0, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c' } }] }] }],
    clusters: [{ name: 'c', endpoints, dns }],
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.config;
}
