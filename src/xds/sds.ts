// SDS over ADS (docs/xds.md "Secrets (SDS)"): Secrets arrive on the ADS stream like any
// other resource, but Remora's TLS reads certificates from files and watches them
// (src/main/cert-store.ts). So a Secret's inline certificate, key and CA are written to
// files under the bootstrap's `xds.sds_dir`, one directory per Secret (named by a hash of
// the Secret's name, which may hold any character), and the translated `tls` blocks name
// those files. A new version of a Secret rewrites its files (each to a temp file, then
// renamed, key first), and the file watch rotates the certificate in place: new
// handshakes get it, open connections keep theirs, nothing is dropped. A Secret whose
// data source is a `filename` is used where it is, nothing is written. The translation
// computes the paths (secretPaths) and reads nothing; the sidecar writes the files
// (writeSecretFiles) before it applies a config that uses them. Secrets from an SDS server
// of their own (xds.sds_servers: Istio's istio-agent) are keyed with the server's name
// (secretKey) and handled the same way.

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFilesAtomically } from '../control/mesh-pki.js';
import { asObj, asStr, type Obj } from './read.js';

/** The Secrets received and where their files go (the translation's view of SDS). */
export interface SdsSource {
  /** By key (secretKey): ADS Secrets by name, those of an SDS server with its name too. */
  readonly secrets: ReadonlyMap<string, Obj>;
  readonly dir: string;
  /** The SDS servers of the bootstrap (xds.sds_servers), by name: what an SdsSecretConfig's
   *  api_config_source may name. Absent: none. */
  readonly servers?: ReadonlySet<string>;
}

/** Between an SDS server's name and a Secret's name in a key (never in either name as
 *  control planes write them). */
const SEPARATOR = '\u0000';

/** How a Secret is keyed in a resource set's `secrets`: an ADS Secret by its name, one
 *  from an SDS server of its own (xds.sds_servers) by the server's name and its name, so
 *  that Istio's `default` from `sds-grpc` and a `default` over ADS stay apart. */
export function secretKey(server: string | null, name: string): string {
  return server === null ? name : `${server}${SEPARATOR}${name}`;
}

/** The SDS server (null: ADS) and the name of a Secret's key. */
export function parseSecretKey(key: string): { server: string | null; name: string } {
  const at = key.indexOf(SEPARATOR);
  return at < 0 ? { server: null, name: key } : { server: key.slice(0, at), name: key.slice(at + 1) };
}

/** A Secret's key as logs and NACKs show it: `Secret "default" from sds-grpc`. */
export function secretLabel(key: string): string {
  const { server, name } = parseSecretKey(key);
  return server === null ? `Secret "${name}"` : `Secret "${name}" from ${server}`;
}

/** The SDS server an SdsSecretConfig's `sds_config` names: null for ADS, the cluster name
 *  of `api_config_source.grpc_services[0].envoy_grpc` otherwise (undefined: neither;
 *  translate-secret.ts rejects it). */
export function sdsServerOf(sdsConfig: unknown): string | null | undefined {
  const c = asObj(sdsConfig);
  if (c === undefined) return undefined;
  if (asObj(c.ads) !== undefined) return null;
  const api = asObj(c.api_config_source);
  const services = api?.grpc_services;
  const first = Array.isArray(services) ? asObj(services[0]) : undefined;
  const cluster = asStr(asObj(first?.envoy_grpc)?.cluster_name);
  return cluster !== undefined && cluster !== '' ? cluster : undefined;
}

export interface SecretPaths {
  readonly dir: string;
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** Where the inline parts of the Secret `name` are written under `dir`. */
export function secretPaths(dir: string, name: string): SecretPaths {
  const d = join(dir, createHash('sha256').update(name).digest('hex').slice(0, 16));
  return { dir: d, cert: join(d, 'cert.pem'), key: join(d, 'key.pem'), ca: join(d, 'ca.pem') };
}

/** The DataSource kinds a Secret may use: inline (written to a file) or a file. */
export type DataSourceContent = { kind: 'inline'; data: Buffer } | { kind: 'file'; path: string } | { kind: 'unsupported'; field: string } | { kind: 'empty' };

export function dataSource(v: unknown): DataSourceContent {
  const d = asObj(v) ?? {};
  const filename = asStr(d.filename);
  if (filename !== undefined && filename !== '') return { kind: 'file', path: filename };
  if (d.inline_bytes instanceof Uint8Array && d.inline_bytes.length > 0) return { kind: 'inline', data: Buffer.from(d.inline_bytes) };
  const s = asStr(d.inline_string);
  if (s !== undefined && s !== '') return { kind: 'inline', data: Buffer.from(s) };
  if (asStr(d.environment_variable) !== undefined && d.environment_variable !== '') return { kind: 'unsupported', field: 'environment_variable' };
  return { kind: 'empty' };
}

/** The inline parts of one Secret, as files: [path, content, mode]. */
function inlineFiles(dir: string, name: string, secret: Obj): { path: string; content: Buffer; mode: number }[] {
  const p = secretPaths(dir, name);
  const out: { path: string; content: Buffer; mode: number }[] = [];
  const add = (v: unknown, path: string, mode: number): void => {
    const ds = dataSource(v);
    if (ds.kind === 'inline') out.push({ path, content: ds.data, mode });
  };
  const cert = asObj(secret.tls_certificate);
  // The key first: a reader that sees the new certificate sees its key.
  if (cert !== undefined) {
    add(cert.private_key, p.key, 0o600);
    add(cert.certificate_chain, p.cert, 0o644);
  }
  add(asObj(secret.validation_context)?.trusted_ca, p.ca, 0o644);
  return out;
}

/** Writes the inline parts of `secrets` under `dir` (created, mode 0700); a file whose
 *  content is already the same is left alone, so an identical resend rotates nothing.
 *  Returns the paths written. */
export function writeSecretFiles(dir: string, secrets: ReadonlyMap<string, Obj>): string[] {
  const written: string[] = [];
  for (const [name, secret] of secrets) {
    const files = inlineFiles(dir, name, secret).filter((f) => {
      try {
        return !readFileSync(f.path).equals(f.content);
      } catch {
        return true;
      }
    });
    if (files.length === 0) continue;
    mkdirSync(secretPaths(dir, name).dir, { recursive: true, mode: 0o700 });
    writeFilesAtomically(files.map((f) => ({ path: f.path, content: f.content.toString('utf8'), mode: f.mode })));
    written.push(...files.map((f) => f.path));
  }
  return written;
}
