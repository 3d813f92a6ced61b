// A route's redirect (Envoy's RedirectAction): compiled once per config snapshot, and the
// Location of one request built from it. Pure; the exchange answers with the status and
// this header (workers/exchange.ts).

import type { Redirect } from '../config/types.js';
import { portStart } from '../http/host-port.js';
import { applyRegexRewrite, compileRegexRewrite, type CompiledRegexRewrite } from './regex-rewrite.js';

export interface CompiledRedirect {
  readonly status: number;
  /** The new scheme, or null: the request's. */
  readonly scheme: string | null;
  readonly host: string | null;
  /** ":<port>", or '' when the port is not replaced. */
  readonly port: string;
  readonly path: string | null;
  /** `path` carries its own query, which replaces the request's (strip_query ignored). */
  readonly pathHasQuery: boolean;
  readonly prefixRewrite: string | null;
  readonly regexRewrite: CompiledRegexRewrite | null;
  readonly stripQuery: boolean;
}

export function compileRedirect(r: Redirect): CompiledRedirect {
  return {
    status: r.response_code,
    scheme: r.scheme ?? null,
    host: r.host ?? null,
    port: r.port !== undefined ? `:${r.port}` : '',
    path: r.path ?? null,
    pathHasQuery: r.path?.includes('?') ?? false,
    prefixRewrite: r.prefix_rewrite ?? null,
    regexRewrite: r.regex_rewrite !== undefined ? compileRegexRewrite(r.regex_rewrite) : null,
    stripQuery: r.strip_query,
  };
}

/** The request's Host without its port when the port is replaced, or when the scheme
 *  changes and the port is the old scheme's default (Envoy's processRequestHost). */
function requestHost(host: string, oldScheme: string, newScheme: string, newPort: string): string {
  const colon = portStart(host);
  if (colon < 0) return host;
  const port = host.slice(colon);
  const drop = newPort !== '' || (newScheme !== oldScheme && ((oldScheme === 'https' && port === ':443') || (oldScheme === 'http' && port === ':80')));
  return drop ? host.slice(0, colon) : host;
}

/**
 * The Location for a request: `scheme` is the request's (its listener's), `host` its Host
 * header, `path` without the query, `query` without '?', `matchedPrefix` the route's
 * prefix (for prefix_rewrite).
 */
export function redirectLocation(r: CompiledRedirect, scheme: string, host: string, path: string, query: string, matchedPrefix: string): string {
  const newScheme = r.scheme ?? scheme;
  const newHost = r.host ?? requestHost(host, scheme, newScheme, r.port);
  let target: string;
  if (r.pathHasQuery) return `${newScheme}://${newHost}${r.port}${r.path!}`;
  if (r.path !== null) target = r.path;
  else if (r.prefixRewrite !== null) target = r.prefixRewrite + path.slice(matchedPrefix.length);
  else if (r.regexRewrite !== null) target = applyRegexRewrite(r.regexRewrite, path);
  else target = path;
  if (!target.startsWith('/')) target = `/${target}`;
  const q = r.stripQuery || query === '' ? '' : `?${query}`;
  return `${newScheme}://${newHost}${r.port}${target}${q}`;
}
