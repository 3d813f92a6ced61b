// What Remora checks in a request head after the HTTP/1 codec has framed it (RFC 9112 §3,
// RFC 9110 §7.2): the request target's form, exactly one valid Host, the authority of an
// absolute-form target, the header count, Transfer-Encoding, Expect. llhttp (the codec)
// has already refused bad syntax (token characters, obs-fold, bare CR, chunk framing);
// these are the rules a parser leaves to the server. Pure functions, no I/O: the front
// end turns a refusal into a response and a closed connection.

/** Why a head is refused: the status to answer, and a short reason for the body and log. */
export interface HeadRefusal {
  readonly status: 400 | 417 | 431 | 501;
  readonly reason: string;
}

/** A head that passed: the target split into path and query, lower-case header names,
 *  and the authority requests are routed by (the absolute-form target's, else Host). */
export interface CheckedHead {
  readonly path: string;
  readonly query: string;
  /** Flat [name, value, ...], lower-case names, in arrival order; Host rewritten to the
   *  target's authority for an absolute-form target, Expect: 100-continue removed. */
  readonly headers: string[];
}

export interface HeadLimits {
  /** Most header fields accepted (431 above). */
  readonly maxHeaders: number;
}

/** Checks a framed head. `rawHeaders` is Node's flat list with names as sent. */
export function checkRequestHead(
  method: string,
  target: string,
  httpMinor: number,
  rawHeaders: readonly string[],
  limits: HeadLimits,
): CheckedHead | HeadRefusal {
  const count = rawHeaders.length >> 1;
  if (count > limits.maxHeaders) return { status: 431, reason: `more than ${limits.maxHeaders} request headers` };

  let path: string;
  let query = '';
  let authority: string | null = null;
  const c0 = target.charCodeAt(0);
  if (c0 === 0x2f /* / */) {
    const q = target.indexOf('?');
    path = q === -1 ? target : target.slice(0, q);
    if (q !== -1) query = target.slice(q + 1);
  } else if (target === '*') {
    if (method !== 'OPTIONS') return { status: 400, reason: 'asterisk-form target is for OPTIONS only' };
    path = '*';
  } else if (method === 'CONNECT') {
    return { status: 501, reason: 'CONNECT is not supported' };
  } else {
    const abs = splitAbsoluteForm(target);
    if (abs === null) return { status: 400, reason: 'invalid request target' };
    authority = abs.authority;
    path = abs.path;
    query = abs.query;
  }
  if (!isValidTarget(path) || !isValidTarget(query)) return { status: 400, reason: 'invalid character in request target' };

  const headers = new Array<string>(rawHeaders.length);
  let hostAt = -1;
  let te: string | null = null;
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    const value = rawHeaders[i + 1];
    switch (name) {
      case 'host':
        if (hostAt !== -1) return { status: 400, reason: 'more than one host header' };
        if (!isValidHost(value)) return { status: 400, reason: 'invalid host header' };
        hostAt = n;
        break;
      case 'transfer-encoding':
        te = te === null ? value : `${te}, ${value}`;
        break;
      case 'expect':
        if (value.toLowerCase() !== '100-continue') return { status: 417, reason: `expectation "${value}" not supported` };
        // The codec answered 100 Continue itself (HTTP/1.1; a 1.0 client does not wait for
        // it, RFC 9110 §10.1.1): the upstream is not asked again (Envoy does the same).
        continue;
    }
    headers[n++] = name;
    headers[n++] = value;
  }
  headers.length = n;

  if (te !== null) {
    // RFC 9112 §6.1: a 1.0 message with Transfer-Encoding is faulty; only chunked is known.
    if (httpMinor === 0) return { status: 400, reason: 'transfer-encoding in an HTTP/1.0 request' };
    if (te.trim().toLowerCase() !== 'chunked') return { status: 501, reason: `transfer-encoding "${te}" not supported` };
  }
  if (authority !== null) {
    // RFC 9112 §3.2.2: the target's authority wins; Host is replaced by it.
    if (!isValidHost(authority)) return { status: 400, reason: 'invalid authority in request target' };
    if (hostAt === -1) {
      if (httpMinor >= 1) return { status: 400, reason: 'missing host header' };
      headers.push('host', authority);
    } else {
      headers[hostAt + 1] = authority;
    }
  } else if (hostAt === -1) {
    if (httpMinor >= 1) return { status: 400, reason: 'missing host header' };
  }
  return { path, query, headers };
}

/** True when `head` is a refusal. */
export function isRefusal(head: CheckedHead | HeadRefusal): head is HeadRefusal {
  return (head as HeadRefusal).status !== undefined;
}

/** `http://authority/path?query` (scheme case-insensitive) → parts; null when malformed. */
function splitAbsoluteForm(target: string): { authority: string; path: string; query: string } | null {
  const sep = target.indexOf('://');
  if (sep === -1) return null;
  const scheme = target.slice(0, sep).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return null;
  const rest = target.slice(sep + 3);
  let end = rest.length;
  for (let i = 0; i < rest.length; i++) {
    const c = rest.charCodeAt(i);
    if (c === 0x2f || c === 0x3f || c === 0x23) {
      end = i;
      break;
    }
  }
  const authority = rest.slice(0, end);
  if (authority.length === 0 || authority.includes('@')) return null;
  const tail = rest.slice(end);
  const q = tail.indexOf('?');
  const pathPart = q === -1 ? tail : tail.slice(0, q);
  return { authority, path: pathPart.length === 0 ? '/' : pathPart, query: q === -1 ? '' : tail.slice(q + 1) };
}

// RFC 3986 characters allowed in a path or query (pchar / "/" / "?"), plus "%" for
// pct-encoded triplets (checked separately).
const TARGET = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/?%") {
  TARGET[c.charCodeAt(0)] = 1;
}
// Characters real clients send unescaped in queries though RFC 3986 lists them as
// unsafe; nginx and Envoy pass them on.
for (const c of '"<>[\\]^`{|}') TARGET[c.charCodeAt(0)] = 2;

const HEX = new Uint8Array(128);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;

/** Visible ASCII only, and every `%` starts a valid pct-encoding. */
function isValidTarget(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || TARGET[c] === 0) return false;
    if (c === 0x25 && (HEX[s.charCodeAt(i + 1)] !== 1 || HEX[s.charCodeAt(i + 2)] !== 1)) return false;
  }
  return true;
}

// reg-name characters (unreserved / sub-delims / pct-encoded), minus "," which would make
// `Host: a, b` look like one name.
const REG_NAME = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+;=%") {
  REG_NAME[c.charCodeAt(0)] = 1;
}

/** RFC 9110 §7.2 Host: `uri-host [ ":" port ]`, non-empty, no userinfo, no path. */
export function isValidHost(value: string): boolean {
  if (value.length === 0 || value.length > 255) return false;
  let i = 0;
  if (value.charCodeAt(0) === 0x5b /* [ */) {
    const close = value.indexOf(']');
    if (close < 2) return false;
    for (let j = 1; j < close; j++) {
      const c = value.charCodeAt(j);
      const ok = (c >= 0x30 && c <= 0x3a) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46) || c === 0x2e;
      if (!ok) return false;
    }
    i = close + 1;
  } else {
    for (; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c === 0x3a) break;
      if (c > 127 || REG_NAME[c] === 0) return false;
    }
    if (i === 0) return false;
  }
  if (i === value.length) return true;
  if (value.charCodeAt(i) !== 0x3a) return false;
  // Port: digits only, may be empty (RFC 3986 allows "host:").
  const port = value.length - i - 1;
  if (port > 5) return false;
  for (let j = i + 1; j < value.length; j++) {
    const c = value.charCodeAt(j);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}
