// Request path normalisation, as Envoy's HttpConnectionManager offers it, so that routing
// and authorization see the path an upstream will act on: `/public/../private/x` and
// `/public/%2e%2e/private/x` are `/private/x`. Per listener, computed once per request,
// before routing; the normalised path is also what is forwarded.
//
//   normalize_path      RFC 3986 §6.2.2: percent-decode unreserved characters, upper-case
//                       the remaining escapes, remove dot segments (§5.2.4).
//   merge_slashes       `//a///b` → `/a/b`.
//   escaped_slashes     what to do with %2F / %5C (Envoy's path_with_escaped_slashes_action):
//                       keep_unchanged, reject_request (400), unescape_and_redirect (307 to
//                       the unescaped path), unescape_and_forward.

export type EscapedSlashesAction = 'keep_unchanged' | 'reject_request' | 'unescape_and_redirect' | 'unescape_and_forward';

export interface PathNormalization {
  readonly normalize_path: boolean;
  readonly merge_slashes: boolean;
  readonly path_with_escaped_slashes_action: EscapedSlashesAction;
}

/** The outcome: a path to route and forward, a redirect, or a refusal. */
export type NormalizedPath =
  | { readonly kind: 'ok'; readonly path: string }
  | { readonly kind: 'redirect'; readonly path: string }
  | { readonly kind: 'reject'; readonly reason: string };

const UNRESERVED = new Uint8Array(128);
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~') UNRESERVED[c.charCodeAt(0)] = 1;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** True when nothing in `path` can change under any option (the common case: no `%`,
 *  no `.` segment, no `//`), so the request path is used as it is. */
function isPlain(path: string): boolean {
  let prev = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 || c === 0x5c) return false; // % or backslash
    if (c === 0x2e && prev === 0x2f) return false; // "/."
    if (c === 0x2f && prev === 0x2f) return false; // "//"
    prev = c;
  }
  return true;
}

export function normalizePath(path: string, opts: PathNormalization): NormalizedPath {
  if (path === '*' || isPlain(path)) return { kind: 'ok', path };
  let p = path;
  let redirect = false;
  const action = opts.path_with_escaped_slashes_action;
  if (action !== 'keep_unchanged' && /%2f|%5c/i.test(p)) {
    if (action === 'reject_request') return { kind: 'reject', reason: 'escaped slash in path' };
    p = p.replace(/%2f/gi, '/').replace(/%5c/gi, '\\');
    redirect = action === 'unescape_and_redirect';
  }
  if (opts.normalize_path) {
    p = decodeUnreserved(p);
    p = removeDotSegments(p);
  }
  if (opts.merge_slashes) p = p.replace(/\/{2,}/g, '/');
  if (redirect) return { kind: 'redirect', path: p };
  return { kind: 'ok', path: p };
}

/** Decodes %XX of unreserved characters and upper-cases the hex digits of the others. */
function decodeUnreserved(p: string): string {
  if (!p.includes('%')) return p;
  let out = '';
  let from = 0;
  for (let i = 0; i < p.length; i++) {
    if (p.charCodeAt(i) !== 0x25) continue;
    const h = hexValue(p.charCodeAt(i + 1));
    const l = hexValue(p.charCodeAt(i + 2));
    if (h < 0 || l < 0) continue; // the codec refused such targets already
    const byte = h * 16 + l;
    out += p.slice(from, i);
    out += byte < 128 && UNRESERVED[byte] === 1 ? String.fromCharCode(byte) : p.slice(i, i + 3).toUpperCase();
    from = i + 3;
    i += 2;
  }
  return out + p.slice(from);
}

/** RFC 3986 §5.2.4 on an absolute path. */
export function removeDotSegments(p: string): string {
  if (!p.includes('.')) return p;
  const segments = p.split('/');
  const out: string[] = [];
  // segments[0] is '' (the path starts with '/').
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i];
    const last = i === segments.length - 1;
    if (s === '.') {
      if (last) out.push('');
    } else if (s === '..') {
      out.pop();
      if (last) out.push('');
    } else {
      out.push(s);
    }
  }
  return '/' + out.join('/');
}
