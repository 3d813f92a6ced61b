// The shared secret of --ca-token-file, kept for demos: with --insecure-allow-any-identity
// only, it gates who may ask the mesh CA (the request's bearer token must equal the
// file's content, trimmed, read for every request so a rotated token applies at once).
// It proves membership, not identity: every holder may ask for every SPIFFE ID, which is
// why it cannot be used without the insecure flag (ca-authn.ts, authnOptionsProblem).

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from '../core/log.js';
import { unauthenticated, type AuthnOutcome, type Authenticator } from './ca-authn.js';

export class SharedTokenAuthenticator implements Authenticator {
  readonly method = 'insecure' as const;

  /** Throws when the file is unreadable or empty. */
  constructor(private readonly path: string, private readonly log: Logger) {
    if (readToken(path) === '') throw new Error(`--ca-token-file ${path} is empty`);
  }

  authenticate(token: string): AuthnOutcome {
    let expected: string;
    try {
      expected = readToken(this.path);
    } catch (err) {
      this.log.error({ err, file: this.path }, 'cannot read the CA token file');
      return unauthenticated('unknown_token', 'the CA cannot check tokens now (its token file is unreadable)');
    }
    const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
    if (!timingSafeEqual(digest(token), digest(expected)) || expected === '') {
      return unauthenticated('unknown_token', "the bearer token is not the CA's shared token (--ca-token-file)");
    }
    return { ok: true, principal: { method: this.method, name: 'shared-token', identities: null } };
  }
}

function readToken(file: string): string {
  return readFileSync(file, 'utf8').trim();
}
