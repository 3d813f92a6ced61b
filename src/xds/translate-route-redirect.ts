// A route's RedirectAction → Remora's raw `redirect` (part of src/xds/translate-route.ts).
// `https_redirect` and `scheme_redirect` become `scheme`; a `prefix_rewrite` under a
// `path` match replaces the whole path, as Envoy applies it, so it becomes `path`.
// `regex_rewrite` keeps RE2's substitution syntax (Remora's too).

import { REDIRECT_CODES } from '../config/schema/listener.js';
import { asNum, asStr, isSet, type Obj } from './read.js';
import { sub, type Ctx, type Loc } from './translate-context.js';
import type { Fields } from './translate-fields.js';
import { regexRewrite } from './translate-route-match.js';

/** RedirectAction.RedirectResponseCode, by name (proto3 JSON) and by number. */
const CODE_NAMES = ['MOVED_PERMANENTLY', 'FOUND', 'SEE_OTHER', 'TEMPORARY_REDIRECT', 'PERMANENT_REDIRECT'] as const;

export function redirectCodeName(status: number): string {
  return CODE_NAMES[(REDIRECT_CODES as readonly number[]).indexOf(status)];
}

/** `pathMatch`: the route matches an exact `path`. */
export function redirectAction(ctx: Ctx, d: Obj, loc: Loc, out: Fields, pathMatch: boolean): void {
  ctx.only(d, loc, ['https_redirect', 'scheme_redirect', 'host_redirect', 'port_redirect', 'path_redirect', 'prefix_rewrite', 'regex_rewrite', 'response_code', 'strip_query']);
  out.here(loc);
  if (d.https_redirect === true) out.set('scheme', 'https', sub(loc, 'https_redirect'));
  else if (isSet(d.scheme_redirect)) out.set('scheme', asStr(d.scheme_redirect), sub(loc, 'scheme_redirect'));
  if (isSet(d.host_redirect)) out.set('host', asStr(d.host_redirect), sub(loc, 'host_redirect'));
  if (isSet(d.port_redirect)) out.set('port', asNum(d.port_redirect), sub(loc, 'port_redirect'));
  if (isSet(d.path_redirect)) out.set('path', asStr(d.path_redirect), sub(loc, 'path_redirect'));
  if (isSet(d.prefix_rewrite)) out.set(pathMatch ? 'path' : 'prefix_rewrite', asStr(d.prefix_rewrite), sub(loc, 'prefix_rewrite'));
  if (d.regex_rewrite !== undefined) regexRewrite(ctx, d.regex_rewrite, sub(loc, 'regex_rewrite'), out, 'regex_rewrite');
  if (isSet(d.response_code)) {
    const code = d.response_code;
    const i = typeof code === 'number' ? code : CODE_NAMES.indexOf(String(code) as (typeof CODE_NAMES)[number]);
    if (i >= 0 && i < REDIRECT_CODES.length) out.set('response_code', REDIRECT_CODES[i], sub(loc, 'response_code'));
    else ctx.reject(sub(loc, 'response_code'), `${String(code)} is not a redirect response code`);
  }
  if (d.strip_query === true) out.set('strip_query', true, sub(loc, 'strip_query'));
}
