// A route's RouteMatch → Remora's raw `match` (part of src/xds/translate-route.ts): the
// path specifier (prefix, path or an RE2 regex), header matchers (exact, regex,
// present), query parameter matchers (exact, regex, present), and a `:method` header
// matcher as the route's method list.

import { asArr, asObj, asStr, isSet, wrappedBool, type Obj } from './read.js';
import { sub, type Ctx, type Loc } from './translate-context.js';
import type { Fields } from './translate-fields.js';

/** RouteMatch → `out` (the route's raw `match`). */
/** A regular expression no path matches (an empty negative lookahead fails everywhere). */
const NEVER = '(?!)';

export function routeMatch(ctx: Ctx, m: Obj, loc: Loc, out: Fields): void {
  ctx.only(m, loc, ['prefix', 'path', 'safe_regex', 'path_separated_prefix', 'case_sensitive', 'headers', 'query_parameters']);
  if (wrappedBool(m.case_sensitive) === false) ctx.reject(sub(loc, 'case_sensitive'), 'false is not supported: Remora matches paths case-sensitively');
  out.here(loc);
  // path_specifier is a oneof, so an explicit "" is on the wire; prefix "" matches every path.
  const unreachable = (['prefix', 'path'] as const).find((k) => typeof m[k] === 'string' && m[k] !== '' && m[k] !== '*' && !String(m[k]).startsWith('/'));
  if (unreachable !== undefined) {
    // Envoy accepts a prefix or path without its leading "/", and it never matches (every
    // request path starts with one): kept as a route that matches nothing.
    out.set('regex', NEVER, sub(loc, unreachable));
    ctx.noEffect(sub(loc, unreachable), `RouteConfiguration.virtual_hosts.routes.match.${unreachable} without a leading / (never matches)`);
  } else if (m.prefix !== undefined) out.set('prefix', m.prefix === '' ? '/' : m.prefix, sub(loc, 'prefix'));
  else if (m.path !== undefined) out.set('path', m.path, sub(loc, 'path'));
  else if (m.safe_regex !== undefined) out.set('regex', regexMatcher(ctx, m.safe_regex, sub(loc, 'safe_regex')), sub(loc, 'safe_regex.regex'));
  else if (m.path_separated_prefix !== undefined) out.set('regex', separatedPrefix(ctx, m.path_separated_prefix, sub(loc, 'path_separated_prefix')), sub(loc, 'path_separated_prefix'));
  const headers: Obj[] = [];
  let methodsAt: Loc | undefined;
  asArr(m.headers).forEach((v, i) => {
    const hl = sub(loc, `headers[${i}]`);
    const h = asObj(v) ?? {};
    const matcher = headerMatcher(ctx, h, hl);
    if (matcher === undefined) return;
    if (h.name === ':method') {
      if (methodsAt !== undefined) ctx.reject(hl, `only one :method matcher is supported (first at ${methodsAt.path})`);
      methodsAt = hl;
      const methods = methodList(ctx, matcher, hl);
      out.set('methods', methods, hl);
      methods.forEach((_, k) => out.mark(`.methods[${k}]`, hl));
      return;
    }
    out.mark(`.headers[${headers.length}]`, hl);
    out.mark(`.headers[${headers.length}].name`, sub(hl, 'name'));
    headers.push(matcher);
  });
  out.raw.headers = headers;
  const queries: Obj[] = [];
  asArr(m.query_parameters).forEach((v, i) => {
    const ql = sub(loc, `query_parameters[${i}]`);
    const matcher = queryMatcher(ctx, asObj(v) ?? {}, ql);
    if (matcher === undefined) return;
    out.mark(`.query_parameters[${queries.length}]`, ql);
    out.mark(`.query_parameters[${queries.length}].name`, sub(ql, 'name'));
    queries.push(matcher);
  });
  if (queries.length > 0) out.raw.query_parameters = queries;
}

/** QueryParameterMatcher → {name, exact | regex | present}: string_match exact (case
 *  sensitive) or safe_regex, or present_match true; undefined when rejected. */
function queryMatcher(ctx: Ctx, q: Obj, loc: Loc): Obj | undefined {
  ctx.only(q, loc, ['name', 'string_match', 'present_match']);
  const name = q.name;
  const s = asObj(q.string_match);
  if (s !== undefined) {
    const sl = sub(loc, 'string_match');
    ctx.only(s, sl, ['exact', 'safe_regex', 'ignore_case']);
    if (s.ignore_case === true) {
      ctx.reject(sub(sl, 'ignore_case'), 'true is not supported: Remora compares query parameter values case-sensitively');
      return undefined;
    }
    if (s.exact !== undefined) return { name, exact: s.exact };
    if (s.safe_regex !== undefined) return { name, regex: regexMatcher(ctx, s.safe_regex, sub(sl, 'safe_regex')) };
    if (!Object.values(s).some(isSet)) ctx.reject(sl, 'needs exact or safe_regex'); // else rejected above
    return undefined;
  }
  if (q.present_match === true) return { name, present: true };
  ctx.reject(loc, 'needs string_match or present_match: true');
  return undefined;
}

/** A `:method` matcher → methods: exact `GET`, or a regex like `GET|POST`. */
function methodList(ctx: Ctx, matcher: Obj, loc: Loc): string[] {
  if (typeof matcher.exact === 'string') return [matcher.exact];
  const re = typeof matcher.regex === 'string' ? /^\^?\(?((?:[A-Z]+\|)*[A-Z]+)\)?\$?$/.exec(matcher.regex) : null;
  if (re === null) {
    ctx.reject(loc, 'a :method matcher must be an exact method or a regex listing methods (GET|POST)');
    return [];
  }
  return re[1].split('|');
}

/** path_separated_prefix (Envoy Gateway's PathPrefix matches): the prefix, then the end
 *  of the path or a "/" — `/api` takes `/api` and `/api/v1`, not `/apis`. Written as the
 *  equivalent regex (Remora matches the path without its query, as Envoy does here). */
function separatedPrefix(ctx: Ctx, v: unknown, loc: Loc): string {
  const p = typeof v === 'string' ? v : '';
  // Envoy's own check: no query or fragment, and no trailing "/".
  if (!/^[^?#]+[^?#/]$/.test(p)) {
    ctx.reject(loc, `"${p}" must not be empty, end with "/" or contain "?" or "#"`);
    return '';
  }
  return `${p.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&')}(?:/.*)?`; // matched against the whole path
}

/** A RegexMatchAndSubstitute (`regex_rewrite` of a route action or a redirect) → `{pattern,
 *  substitution}` under `key` of `out`; the substitution keeps RE2's syntax (`\1`). */
export function regexRewrite(ctx: Ctx, v: unknown, loc: Loc, out: Fields, key: string): void {
  const r = asObj(v) ?? {};
  ctx.only(r, loc, ['pattern', 'substitution']);
  const rewrite = out.nest(key).here(loc);
  rewrite.set('pattern', regexMatcher(ctx, r.pattern, sub(loc, 'pattern')), sub(loc, 'pattern.regex'));
  rewrite.set('substitution', asStr(r.substitution) ?? '', sub(loc, 'substitution'));
}

function regexMatcher(ctx: Ctx, v: unknown, loc: Loc): string {
  const r = asObj(v) ?? {};
  ctx.only(r, loc, ['google_re2', 'regex']);
  const re2 = asObj(r.google_re2);
  if (re2 !== undefined) ctx.only(re2, sub(loc, 'google_re2'), []);
  return asStr(r.regex) ?? '';
}

/** HeaderMatcher → {name, exact | regex | present}; undefined when rejected. */
function headerMatcher(ctx: Ctx, h: Obj, loc: Loc): Obj | undefined {
  ctx.only(h, loc, ['name', 'exact_match', 'safe_regex_match', 'present_match', 'string_match']);
  const name = h.name;
  if (h.exact_match !== undefined) return { name, exact: h.exact_match };
  if (h.safe_regex_match !== undefined) return { name, regex: regexMatcher(ctx, h.safe_regex_match, sub(loc, 'safe_regex_match')) };
  if (h.present_match === false) {
    ctx.reject(sub(loc, 'present_match'), 'false (match when the header is absent) is not supported');
    return undefined;
  }
  const s = asObj(h.string_match);
  if (s !== undefined) {
    const sl = sub(loc, 'string_match');
    ctx.only(s, sl, ['exact', 'safe_regex']);
    if (s.exact !== undefined) return { name, exact: s.exact };
    if (s.safe_regex !== undefined) return { name, regex: regexMatcher(ctx, s.safe_regex, sub(sl, 'safe_regex')) };
    if (!Object.values(s).some(isSet)) ctx.reject(sl, 'needs exact or safe_regex'); // else rejected above
    return undefined;
  }
  return { name, present: true }; // present_match: true, or no specifier (Envoy: present)
}
