// The mesh CA's bootstrap tokens, for workloads outside Kubernetes: a token per SPIFFE
// ID. The file (--ca-bootstrap-tokens) holds lines `<spiffe-id> <sha256-hex-of-token>`
// ('#' starts a comment; blank lines are fine; an ID may have several lines, so a new
// token can be added before the old one is removed), and is re-read when it changes
// (reloaded-file.ts). Only hashes are stored: the file reveals no token. A request's
// token is hashed and compared with every line in constant time (timingSafeEqual, no
// early exit); the lines it matches are the identities it proves.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../core/log.js';
import { parseSpiffeId } from '../core/spiffe.js';
import { fieldLines, ReloadedFile } from './reloaded-file.js';
import { unauthenticated, type AuthnOutcome, type Authenticator } from './ca-authn.js';

export interface BootstrapEntry {
  readonly identity: string;
  readonly digest: Buffer;
}

/** The file's text → its entries. Throws naming every bad line. */
export function parseBootstrapTokens(text: string, trustDomain: string): BootstrapEntry[] {
  const entries: BootstrapEntry[] = [];
  const problems: string[] = [];
  fieldLines(text, (fields, where) => {
    if (fields.length !== 2) return void problems.push(`${where}: expected "<spiffe-id> <sha256-hex-of-token>", saw ${fields.length} field(s)`);
    const [identity, hex] = fields;
    const id = parseSpiffeId(identity);
    if (!id.ok) return void problems.push(`${where}: ${id.problem}`);
    if (id.trustDomain !== trustDomain) return void problems.push(`${where}: "${identity}" is not in this CA's trust domain "${trustDomain}"`);
    if (!/^[0-9a-fA-F]{64}$/.test(hex)) return void problems.push(`${where}: the hash must be 64 hex digits (sha256 of the token: printf %s "$TOKEN" | sha256sum)`);
    entries.push({ identity, digest: Buffer.from(hex, 'hex') });
  });
  if (problems.length > 0) throw new Error(problems.join('; '));
  return entries;
}

export class BootstrapTokenAuthenticator implements Authenticator {
  readonly method = 'bootstrap-token' as const;
  private readonly file: ReloadedFile<BootstrapEntry[]>;

  /** Throws when the file cannot be read or has a bad line. */
  constructor(path: string, trustDomain: string, log: Logger) {
    try {
      this.file = new ReloadedFile(path, (text) => parseBootstrapTokens(text, trustDomain), log, '--ca-bootstrap-tokens');
    } catch (err) {
      throw new Error(`--ca-bootstrap-tokens ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Lines in use. */
  get size(): number {
    return this.file.current().length;
  }

  authenticate(token: string): AuthnOutcome {
    const digest = createHash('sha256').update(token).digest();
    const identities: string[] = [];
    // Every line, whatever matched before: the time taken does not say which line did.
    for (const e of this.file.current()) {
      if (timingSafeEqual(digest, e.digest) && !identities.includes(e.identity)) identities.push(e.identity);
    }
    if (identities.length === 0) return unauthenticated('unknown_token', 'the bearer token matches no line of the CA\'s bootstrap tokens');
    return { ok: true, principal: { method: this.method, name: `bootstrap-token sha256:${digest.toString('hex').slice(0, 12)}`, identities } };
  }
}
