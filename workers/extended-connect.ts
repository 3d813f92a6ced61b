// WebSocket (and any other upgrade type) over HTTP/2: extended CONNECT (RFC 8441), turned
// into the HTTP/1.1 upgrade it stands for, as Envoy does. The front end advertises
// SETTINGS_ENABLE_CONNECT_PROTOCOL (http2-front.ts); a stream with `:method CONNECT` and
// `:protocol <type>` becomes `GET <:path>` with `Host` from `:authority`, `Connection:
// upgrade` and `Upgrade: <type>`, and goes through the upgrade pipeline
// (upgrade-exchange.ts) to an HTTP/1.1 upstream. For WebSocket the handshake's key and
// accept are HTTP/1.1 only (RFC 8441 §5): the upstream gets a fresh random
// Sec-WebSocket-Key, and its 101 becomes a 200 without Sec-WebSocket-Accept (and without
// the connection-specific headers HTTP/2 forbids). Pure functions: header lists in, out.

import { randomBytes } from 'node:crypto';

/** The request's fields as the HTTP/1.1 upgrade request (flat [name, value, ...], lower-
 *  case names; pseudo-headers dropped, `host` from :authority first). `protocol`: the
 *  :protocol value as sent. */
export function upgradeRequestFields(raw: readonly string[], protocol: string): string[] {
  const out: string[] = [];
  let authority: string | null = null;
  const websocket = protocol.toLowerCase() === 'websocket';
  let hasVersion = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.charCodeAt(0) === 0x3a /* : */) {
      if (name === ':authority') authority = raw[i + 1];
      continue;
    }
    switch (name) {
      case 'host':
        if (authority !== null) continue; // :authority wins (RFC 9113 §8.3.1)
        break;
      case 'content-length': // a tunnel has no request body of its own
      case 'sec-websocket-key': // HTTP/1.1 only: a fresh one is sent (below)
      case 'sec-websocket-accept':
        continue;
      case 'sec-websocket-version':
        hasVersion = true;
        break;
    }
    out.push(name, raw[i + 1]);
  }
  if (authority !== null) {
    for (let i = out.length - 2; i >= 0; i -= 2) if (out[i] === 'host') out.splice(i, 2);
    out.unshift('host', authority);
  }
  out.push('connection', 'upgrade', 'upgrade', protocol);
  if (websocket) {
    out.push('sec-websocket-key', randomBytes(16).toString('base64'));
    // RFC 8441 §5 has the client send it; RFC 6455's only version otherwise.
    if (!hasVersion) out.push('sec-websocket-version', '13');
  }
  return out;
}

/** Fields of an upstream's 101 that the client's 200 does not carry: HTTP/1.1's
 *  connection management (HTTP/2 forbids it), the 101's empty framing, and WebSocket's
 *  accept, which answers the key only the upstream saw. */
const NOT_CARRIED: ReadonlySet<string> = new Set([
  'connection', 'upgrade', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'content-length', 'sec-websocket-accept',
]);

/** The headers of the 200 that tells an HTTP/2 client its extended CONNECT was accepted:
 *  the upstream's 101 head (`head`, status line to the empty line) less what HTTP/2 does
 *  not carry (flat, lower-case names; the chosen Sec-WebSocket-Protocol and
 *  -Extensions, cookies and the rest are kept, as Envoy keeps them). */
export function switchedResponseFields(head: Buffer): string[] {
  const lines = head.toString('latin1').split('\r\n');
  const out: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error('malformed header line in the 101 head');
    const name = line.slice(0, colon).toLowerCase();
    if (NOT_CARRIED.has(name)) continue;
    out.push(name, line.slice(colon + 1).trim());
  }
  return out;
}
