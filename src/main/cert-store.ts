// TLS files on the main thread: reads every certificate, key and CA bundle that the
// config names, checks them (parses, key matches certificate, not expired), hands the
// PEM text to workers in the config snapshot, and watches the files. When files change
// (a Kubernetes Secret update, cert-manager, the mesh identity client), the new set is
// checked the same way: a good one goes to every worker (new handshakes use it, open
// connections keep theirs); a broken or mismatched one is refused loudly and the old
// one keeps serving. Also the source of /certs and the expiry gauges.

import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import tls from 'node:tls';
import type { ConfigError, ListenerTlsConfig, RemoraConfig, TlsMaterial, TlsMaterialSet } from '../config/types.js';
import type { Logger } from '../core/log.js';
import { certificateIdentity, sansOfType, splitPemCertificates } from '../tls/certificates.js';
import { additionalCertificateKey, chainTlsKey } from '../tls/chain-key.js';

/** How often files are checked besides file-system events (which miss some swaps). */
const POLL_MS = 2000;
/** File events come in bursts (key, then certificate): the check runs this long after
 *  the first event of a burst. (Not reset by later events: a directory that is written
 *  to all the time, say a log next to the certificates, would postpone it forever.) */
const DEBOUNCE_MS = 150;

export interface CertificateInfo {
  readonly owner: string; // "listener inbound" / "cluster payments"
  readonly role: 'server' | 'client' | 'ca';
  readonly file: string;
  readonly subject: string;
  readonly identity: string;
  readonly subject_alt_names: string;
  readonly issuer: string;
  readonly serial: string;
  readonly not_before: string;
  readonly not_after: string;
  readonly seconds_until_expiry: number;
  readonly days_until_expiry: number;
}

interface Files {
  readonly cert?: string;
  readonly key?: string;
  readonly ca?: string;
}

interface Owner {
  readonly kind: 'listeners' | 'clusters';
  readonly name: string;
  /** Config path of the tls block, for errors. */
  readonly path: string;
  readonly files: Files;
  material: TlsMaterial;
  hash: string;
  certs: ParsedCert[];
  loadedAt: string;
  lastError: string | null;
  lastErrorAt: string | null;
}

interface ParsedCert {
  readonly role: CertificateInfo['role'];
  readonly file: string;
  readonly cert: X509Certificate;
  readonly notAfterMs: number;
}

export interface RotationCounts {
  applied: number;
  rejected: number;
}

export class CertStore {
  private owners: Owner[] = [];
  private revision = 0;
  private watchers = new Map<string, FSWatcher>();
  private stamps = new Map<string, string>();
  /** Per watched directory, the names of the files in use there. */
  private dirNames = new Map<string, Set<string>>();
  private readonly poller: NodeJS.Timeout;
  private timer: NodeJS.Timeout | null = null;
  readonly rotations: RotationCounts = { applied: 0, rejected: 0 };

  constructor(
    private readonly log: Logger,
    /** Called with the whole new set after any owner's files rotated. */
    private readonly onRotate: (tls: TlsMaterialSet) => void,
  ) {
    this.poller = setInterval(() => this.poll(), POLL_MS);
    this.poller.unref();
  }

  /** Reads and checks every TLS file `config` names. On success the store serves and
   *  watches this set; on failure nothing changes and the errors name config paths. */
  load(config: RemoraConfig): { ok: true; tls: TlsMaterialSet } | { ok: false; errors: ConfigError[] } {
    const next: Owner[] = [];
    const errors: ConfigError[] = [];
    const add = (kind: Owner['kind'], name: string, path: string, files: Files, role: 'server' | 'client'): void => {
      const previous = this.owners.find((o) => o.kind === kind && o.name === name);
      try {
        const read = readFiles(files, path);
        const hash = hashOf(read);
        if (previous !== undefined && previous.hash === hash && sameFiles(previous.files, files)) {
          next.push({ ...previous, files, path });
          return;
        }
        const { material, certs } = check(read, files, role, ++this.revision);
        next.push({ kind, name, path, files, material, hash, certs, loadedAt: new Date().toISOString(), lastError: null, lastErrorAt: null });
      } catch (err) {
        errors.push(err instanceof FileError ? { path: err.path, message: err.message } : { path, message: String(err) });
      }
    };
    const server = (key: string, path: string, t: ListenerTlsConfig): void => {
      add('listeners', key, path, { cert: t.cert_file, key: t.key_file, ca: t.ca_file }, 'server');
      t.additional_certificates.forEach((c, k) => {
        add('listeners', additionalCertificateKey(key, k), `${path}.additional_certificates[${k}]`, { cert: c.cert_file, key: c.key_file }, 'server');
      });
    };
    config.listeners.forEach((l, i) => {
      if (l.tls !== undefined) server(l.name, `listeners[${i}].tls`, l.tls);
      l.filter_chains.forEach((fc, j) => {
        if (fc.tls !== undefined) server(chainTlsKey(l.name, fc.name), `listeners[${i}].filter_chains[${j}].tls`, fc.tls);
      });
      l.http_filter_chains.forEach((fc, j) => server(chainTlsKey(l.name, fc.name), `listeners[${i}].http_filter_chains[${j}].tls`, fc.tls));
    });
    config.clusters.forEach((c, i) => {
      if (c.tls !== undefined) {
        add('clusters', c.name, `clusters[${i}].tls`, { cert: c.tls.cert_file, key: c.tls.key_file, ca: c.tls.ca_file }, 'client');
      }
    });
    if (errors.length > 0) return { ok: false, errors };
    this.owners = next;
    this.rewatch();
    return { ok: true, tls: this.set() };
  }

  /** Every certificate in use, soonest expiry first (the /certs admin endpoint). */
  certificates(now = Date.now()): CertificateInfo[] {
    const out: CertificateInfo[] = [];
    for (const o of this.owners) {
      for (const c of o.certs) out.push(describe(ownerLabel(o), c, now));
    }
    return out.sort((a, b) => a.seconds_until_expiry - b.seconds_until_expiry);
  }

  /** Per owner: when its files were last loaded and the last refused rotation. */
  status(): { owner: string; loaded_at: string; revision: number; last_error: string | null; last_error_at: string | null }[] {
    return this.owners.map((o) => ({
      owner: ownerLabel(o),
      loaded_at: o.loadedAt,
      revision: o.material.revision,
      last_error: o.lastError,
      last_error_at: o.lastErrorAt,
    }));
  }

  /** Seconds until the earliest certificate in use expires (negative once expired);
   *  null when there is none. */
  earliestExpirySeconds(now = Date.now()): number | null {
    let min = Infinity;
    for (const o of this.owners) for (const c of o.certs) min = Math.min(min, c.notAfterMs);
    return min === Infinity ? null : Math.floor((min - now) / 1000);
  }

  close(): void {
    clearInterval(this.poller);
    if (this.timer !== null) clearTimeout(this.timer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private set(): TlsMaterialSet {
    const listeners: Record<string, TlsMaterial> = {};
    const clusters: Record<string, TlsMaterial> = {};
    for (const o of this.owners) (o.kind === 'listeners' ? listeners : clusters)[o.name] = o.material;
    return { listeners, clusters };
  }

  private files(): string[] {
    const all = new Set<string>();
    for (const o of this.owners) for (const f of [o.files.cert, o.files.key, o.files.ca]) if (f !== undefined) all.add(f);
    return [...all];
  }

  /** Watches the directory of every file (Kubernetes swaps a symlink in the directory,
   *  which a watch on the file itself would miss). */
  private rewatch(): void {
    const files = this.files();
    const dirNames = new Map<string, Set<string>>();
    for (const f of files) {
      const names = dirNames.get(dirname(f)) ?? new Set<string>();
      names.add(basename(f));
      dirNames.set(dirname(f), names);
    }
    this.dirNames = dirNames;
    for (const [dir, w] of this.watchers) {
      if (!dirNames.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of dirNames.keys()) {
      if (this.watchers.has(dir)) continue;
      try {
        // Only our files' names matter, and Kubernetes' "..data" swap (any "..name").
        const w = watch(dir, (_event, name) => {
          if (name === null || this.dirNames.get(dir)?.has(name) === true || name.startsWith('..')) this.schedule();
        });
        w.on('error', () => {
          w.close();
          this.watchers.delete(dir); // the poll goes on; a later load watches again
        });
        this.watchers.set(dir, w);
      } catch {
        // a directory that cannot be watched is still polled
      }
    }
    this.stamps = new Map(files.map((f) => [f, stamp(f)]));
  }

  private poll(): void {
    for (const [file, old] of this.stamps) {
      if (stamp(file) !== old) {
        this.schedule();
        return;
      }
    }
  }

  private schedule(): void {
    if (this.timer !== null) return; // a check is already coming
    this.timer = setTimeout(() => {
      this.timer = null;
      this.recheck();
    }, DEBOUNCE_MS);
    this.timer.unref();
  }

  /** Re-reads every owner's files; applies the ones that changed and check out. */
  private recheck(): void {
    this.stamps = new Map(this.files().map((f) => [f, stamp(f)]));
    let changed = false;
    for (const o of this.owners) {
      let read: Files;
      try {
        read = readFiles(o.files, o.path);
      } catch (err) {
        this.refuse(o, err, 'unreadable'); // mid-swap, or deleted: the next event decides
        continue;
      }
      const hash = hashOf(read);
      if (hash === o.hash) continue;
      try {
        const { material, certs } = check(read, o.files, o.kind === 'listeners' ? 'server' : 'client', ++this.revision);
        o.hash = hash;
        o.material = material;
        o.certs = certs;
        o.loadedAt = new Date().toISOString();
        o.lastError = null;
        changed = true;
        this.rotations.applied++;
        const leaf = certs.find((c) => c.role !== 'ca');
        this.log.info(
          { owner: `${o.kind} ${o.name}`, revision: material.revision, serial: leaf?.cert.serialNumber, notAfter: leaf?.cert.validTo },
          'TLS certificates rotated: new handshakes use them',
        );
      } catch (err) {
        o.hash = hash; // the same broken files are reported once, not every poll
        this.refuse(o, err, 'refused');
      }
    }
    if (changed) this.onRotate(this.set());
  }

  private refuse(o: Owner, err: unknown, what: string): void {
    const message = err instanceof Error ? err.message : String(err);
    if (o.lastError === message) return;
    o.lastError = message;
    o.lastErrorAt = new Date().toISOString();
    if (what === 'refused') this.rotations.rejected++;
    this.log.error(
      { owner: `${o.kind} ${o.name}`, error: message, keptRevision: o.material.revision },
      `TLS files ${what}: the certificates already loaded keep serving`,
    );
  }
}

/** "listener inbound" / "cluster payments", as /certs names an owner. */
function ownerLabel(o: Owner): string {
  return `${o.kind === 'listeners' ? 'listener' : 'cluster'} ${o.name}`;
}

class FileError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

function readFiles(files: Files, path: string): Files {
  const read = (file: string | undefined, field: string): string | undefined => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new FileError(`${path}.${field}`, `cannot read "${file}"${code !== undefined ? ` (${code})` : ''}`);
    }
  };
  return { cert: read(files.cert, 'cert_file'), key: read(files.key, 'key_file'), ca: read(files.ca, 'ca_file') };
}

function hashOf(read: Files): string {
  return createHash('sha256')
    .update(read.cert ?? '')
    .update('\0')
    .update(read.key ?? '')
    .update('\0')
    .update(read.ca ?? '')
    .digest('hex');
}

function sameFiles(a: Files, b: Files): boolean {
  return a.cert === b.cert && a.key === b.key && a.ca === b.ca;
}

/** Checks one owner's PEM text; throws with the file and the reason. */
function check(read: Files, files: Files, role: 'server' | 'client', revision: number): { material: TlsMaterial; certs: ParsedCert[] } {
  const certs: ParsedCert[] = [];
  let identity = '';
  if (read.cert !== undefined) {
    const chain = parseBundle(read.cert, files.cert!);
    const leaf = chain[0];
    if (Date.parse(leaf.validTo) <= Date.now()) {
      throw new Error(`certificate "${files.cert}" expired at ${leaf.validTo}`);
    }
    let key;
    try {
      key = createPrivateKey(read.key!);
    } catch (err) {
      throw new Error(`key "${files.key}" cannot be read as a PEM private key: ${(err as Error).message}`);
    }
    if (!leaf.checkPrivateKey(key)) {
      throw new Error(`key "${files.key}" does not belong to certificate "${files.cert}" (a pair from different issuances?)`);
    }
    certs.push({ role, file: files.cert!, cert: leaf, notAfterMs: Date.parse(leaf.validTo) });
    identity = sansOfType(leaf.subjectAltName, 'URI')[0] ?? '';
  }
  if (read.ca !== undefined) {
    for (const ca of parseBundle(read.ca, files.ca!)) certs.push({ role: 'ca', file: files.ca!, cert: ca, notAfterMs: Date.parse(ca.validTo) });
  }
  try {
    tls.createSecureContext({ cert: read.cert, key: read.key, ca: read.ca });
  } catch (err) {
    throw new Error(`TLS files cannot be used together: ${(err as Error).message}`);
  }
  return {
    material: {
      revision,
      ...(read.cert !== undefined ? { cert: read.cert } : {}),
      ...(read.key !== undefined ? { key: read.key } : {}),
      ...(read.ca !== undefined ? { ca: read.ca } : {}),
      identity,
    },
    certs,
  };
}

function parseBundle(pem: string, file: string): X509Certificate[] {
  const blocks = splitPemCertificates(pem);
  if (blocks.length === 0) throw new Error(`"${file}" holds no PEM certificate`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new Error(`"${file}": certificate ${i + 1} cannot be parsed: ${(err as Error).message}`);
    }
  });
}

function stamp(file: string): string {
  try {
    const s = statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

function describe(owner: string, c: ParsedCert, now: number): CertificateInfo {
  const seconds = Math.floor((c.notAfterMs - now) / 1000);
  return {
    owner,
    role: c.role,
    file: c.file,
    subject: c.cert.subject.replace(/\n/g, ', '),
    // The same identity authorization and access logs use for a peer.
    identity: certificateIdentity(c.cert.toLegacyObject()),
    subject_alt_names: c.cert.subjectAltName ?? '',
    issuer: c.cert.issuer.replace(/\n/g, ', '),
    serial: c.cert.serialNumber,
    not_before: new Date(c.cert.validFrom).toISOString(),
    not_after: new Date(c.notAfterMs).toISOString(),
    seconds_until_expiry: seconds,
    days_until_expiry: Math.floor((seconds / 86400) * 10) / 10,
  };
}
