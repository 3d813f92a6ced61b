// The hosts file for DNS clusters (main thread): names in it (`/etc/hosts` by default)
// are answered from it before DNS is asked, as Envoy's c-ares resolver does. Lines are
// `address name [aliases...]`, `#` starts a comment; IPv4 and IPv6 addresses; names
// match case-insensitively, and a name on several lines gets every address (file order).
// The file is parsed once and read again when its modification time, size or inode
// changes (checked at most once per resolution). `localhost` and names under
// `.localhost` answer the loopback address of the family asked when the file has none
// (RFC 6761, as c-ares does), so they never reach DNS. An unreadable file counts as an
// empty one: every name goes to DNS.

import { readFile, stat } from 'node:fs/promises';
import { isIP, SocketAddress } from 'node:net';
import type { Logger } from '../core/log.js';

export const DEFAULT_HOSTS_PATH = '/etc/hosts';

/** Addresses of one name in the hosts file, by family, in file order. */
export interface HostsEntry {
  readonly v4: readonly string[];
  readonly v6: readonly string[];
}

/** A parsed hosts file: lower-case name (no trailing dot) → its addresses. */
export type HostsTable = ReadonlyMap<string, HostsEntry>;

export const EMPTY_HOSTS: HostsTable = new Map();

/** A name as the table keys it: lower case, without a trailing dot. */
export function hostsKey(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** The canonical text of an address (IPv6 compressed, lower case), or null for anything
 *  that is not an IP literal (a scoped IPv6 address `fe80::1%eth0` included). */
function canonicalAddress(text: string): { address: string; v6: boolean } | null {
  if (text.includes('%')) return null;
  switch (isIP(text)) {
    case 4:
      return { address: text, v6: false };
    case 6:
      return { address: new SocketAddress({ address: text, family: 'ipv6' }).address, v6: true };
    default:
      return null;
  }
}

/** Parses hosts-file text. A line whose first field is not an IP address, or that names
 *  nothing, is skipped. */
export function parseHosts(text: string): HostsTable {
  const table = new Map<string, { v4: string[]; v6: string[] }>();
  for (const raw of text.split('\n')) {
    const hash = raw.indexOf('#');
    const fields = (hash === -1 ? raw : raw.slice(0, hash)).trim().split(/\s+/);
    if (fields.length < 2) continue;
    const addr = canonicalAddress(fields[0]);
    if (addr === null) continue;
    for (let i = 1; i < fields.length; i++) {
      const key = hostsKey(fields[i]);
      if (key === '') continue;
      let entry = table.get(key);
      if (entry === undefined) table.set(key, (entry = { v4: [], v6: [] }));
      const list = addr.v6 ? entry.v6 : entry.v4;
      if (!list.includes(addr.address)) list.push(addr.address);
    }
  }
  return table;
}

/** `localhost` and names under `.localhost` (RFC 6761 section 6.3). */
export function isLocalhost(key: string): boolean {
  return key === 'localhost' || key.endsWith('.localhost');
}

/** The addresses of `name` of one family from the hosts file; for a localhost name the
 *  file has none of, the loopback address. null: not there, ask DNS. */
export function hostsAddresses(table: HostsTable, name: string, v6: boolean): readonly string[] | null {
  const key = hostsKey(name);
  const entry = table.get(key);
  const list = entry === undefined ? [] : v6 ? entry.v6 : entry.v4;
  if (list.length > 0) return list;
  if (isLocalhost(key)) return [v6 ? '::1' : '127.0.0.1'];
  return null;
}

/** One hosts file, shared by every DNS target of a process. */
export class HostsFile {
  private table: HostsTable = EMPTY_HOSTS;
  /** mtime (ns), size and inode of the version parsed; '' before any. */
  private version = '';
  private inFlight: Promise<HostsTable> | null = null;
  private unreadable = false;
  private parses = 0;

  constructor(
    readonly path: string,
    private readonly log: Logger,
  ) {}

  /** How many times the file was parsed (for tests). */
  get parseCount(): number {
    return this.parses;
  }

  /** The table now: the file is stat'ed and, when it changed, read and parsed again.
   *  Calls while one is in flight share it. Never rejects. */
  current(): Promise<HostsTable> {
    if (this.inFlight === null) {
      this.inFlight = this.refresh().finally(() => {
        this.inFlight = null;
      });
    }
    return this.inFlight;
  }

  private async refresh(): Promise<HostsTable> {
    try {
      const st = await stat(this.path, { bigint: true });
      const version = `${st.mtimeNs}/${st.size}/${st.ino}`;
      if (version !== this.version) {
        const text = await readFile(this.path, 'utf8');
        this.table = parseHosts(text);
        this.version = version;
        this.parses++;
      }
      this.unreadable = false;
    } catch (err) {
      if (!this.unreadable) {
        const code = (err as { code?: unknown }).code;
        this.log.debug({ path: this.path, error: typeof code === 'string' ? code : String(err) }, 'hosts file not readable; DNS clusters ask DNS only');
      }
      this.unreadable = true;
      this.table = EMPTY_HOSTS;
      this.version = '';
    }
    return this.table;
  }
}
