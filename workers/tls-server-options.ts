// The options every TLS server of a worker is built with (a TLS listener's, a TCP filter
// chain's, and their additional certificates' secure contexts): the certificate, key and
// client CAs, the TLS versions, renegotiation off, session resumption as configured, and
// the handshake deadline.

import { constants as cryptoConstants } from 'node:crypto';
import type tls from 'node:tls';
import type { ListenerTlsConfig, TlsMaterial } from '../src/config/types.js';
import { reportError } from '../src/core/report.js';
import { NO_RENEGOTIATION } from '../src/upstream/upstream-tls.js';

/** Time a client has to finish its TLS handshake. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/** Sessions a listener with session_resumption `cache` keeps per worker, to resume by id. */
const SESSION_CACHE_SIZE = 2048;

/** Stateful resumption for a listener without session tickets (Envoy resumes such
 *  sessions from its TLS library's cache; Node's server keeps none unless asked): the
 *  newest sessions of this worker, by id. OpenSSL still checks each one's lifetime. */
export function keepSessions(server: tls.Server): void {
  const sessions = new Map<string, Buffer>();
  server.on('newSession', (id: Buffer, data: Buffer, done: () => void) => {
    try {
      sessions.set(id.toString('hex'), data);
      if (sessions.size > SESSION_CACHE_SIZE) sessions.delete(sessions.keys().next().value!);
    } catch (err) {
      reportError(err, 'keeping a TLS session');
    }
    done();
  });
  server.on('resumeSession', (id: Buffer, done: (err: Error | null, data: Buffer | null) => void) => {
    done(null, sessions.get(id.toString('hex')) ?? null);
  });
}

/** The secure context of a listener's (or a TCP filter chain's) `tls` with `material`. */
export function contextOptions(t: ListenerTlsConfig, material: TlsMaterial) {
  return {
    cert: material.cert,
    key: material.key,
    ...(material.ca !== undefined ? { ca: material.ca } : {}),
    minVersion: t.min_version,
    maxVersion: 'TLSv1.3' as const,
    // Without stateless tickets OpenSSL resumes from the server's session cache instead.
    secureOptions: t.session_resumption === 'tickets' ? NO_RENEGOTIATION : NO_RENEGOTIATION | cryptoConstants.SSL_OP_NO_TICKET,
    honorCipherOrder: true,
  };
}
