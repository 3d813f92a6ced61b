// Envoy's RBAC HTTP filter → Remora's authorization (part of src/xds/translate.ts).
// Remora authorizes by the verified peer identity alone: a policy's permissions may only
// be `any: true`, and its principals only `authenticated.principal_name` matchers, which
// become patterns: `exact` → the identity, `prefix` → `prefix*`, `safe_regex ".+"` → `*`
// (any verified identity, as Istio writes it). Envoy's filter has one action, so a
// listener has at most one DENY and one ALLOW filter with rules; a route's rules are the
// per-route config (RBACPerRoute) of an RBAC filter that has no rules of its own, because
// Envoy's per-route config REPLACES the filter's rules while Remora checks listener and
// route authorization together (the scheme of the per-route rate limits). docs/xds.md
// explains the mapping; src/xds/encode-common.ts writes it.

import { ANY_IDENTITY_REGEX } from './names.js';
import { asArr, asObj, asStr, isSet, type Obj } from './read.js';
import { sub, type Ctx, type Loc } from './translate-context.js';
import { Fields } from './translate-fields.js';

export type RbacAction = 'allow' | 'deny';

/** One RBAC rule set: its action and the identity patterns of all its policies. */
export interface RbacRules {
  readonly action: RbacAction;
  readonly patterns: { readonly pattern: string; readonly loc: Loc }[];
  /** `authenticated: {}` principals (no principal_name): Remora's `*` only where every
   *  connection has a verified client certificate, which the listener decides. */
  readonly anyAuthenticated: Loc[];
  readonly loc: Loc;
}

const PERMISSIONS_ONLY_ANY = 'only any: true is supported: Remora authorizes by peer identity alone (no header, path, port or other request rules)';
const PRINCIPAL_AUTHENTICATED_ONLY = 'only authenticated.principal_name (alone, or inside or_ids / a single-id and_ids) is supported: Remora authorizes by the identity of the verified client certificate';
const ANY_PRINCIPAL = 'any also matches clients without a certificate, which Remora\'s patterns never do: use authenticated.principal_name '
  + `(exact, prefix, or safe_regex "${ANY_IDENTITY_REGEX}" for any verified identity)`;
const NAME_MATCHERS = `exact, prefix or safe_regex "${ANY_IDENTITY_REGEX}" (any verified identity)`;

/** An RBAC filter config (envoy.extensions.filters.http.rbac.v3.RBAC) → its rules; null
 *  when it has none (Envoy then enforces nothing: a slot for per-route rules); undefined
 *  when rejected. */
export function rbacConfig(ctx: Ctx, msg: Obj, loc: Loc): RbacRules | null | undefined {
  for (const k of ['shadow_rules', 'shadow_matcher']) {
    if (isSet(msg[k])) ctx.reject(sub(loc, k), 'is not supported: Remora has no shadow mode for authorization');
  }
  ctx.only(msg, loc, ['rules', 'rules_stat_prefix', 'shadow_rules', 'shadow_matcher']);
  const rules = asObj(msg.rules);
  return rules === undefined ? null : rbacRules(ctx, rules, sub(loc, 'rules'));
}

function rbacRules(ctx: Ctx, r: Obj, loc: Loc): RbacRules | undefined {
  ctx.only(r, loc, ['action', 'policies']);
  const action = asStr(r.action) ?? 'ALLOW'; // the proto3 zero value
  if (action !== 'ALLOW' && action !== 'DENY') {
    ctx.reject(sub(loc, 'action'), `${action} is not supported (ALLOW or DENY)`);
    return undefined;
  }
  const out: RbacRules = { action: action === 'ALLOW' ? 'allow' : 'deny', patterns: [], anyAuthenticated: [], loc };
  const policies = Object.entries(asObj(r.policies) ?? {});
  if (action === 'ALLOW' && policies.length === 0) {
    ctx.reject(sub(loc, 'policies'), 'an ALLOW rule set without policies refuses every request, which Remora cannot express (an empty allow list admits everyone)');
  }
  for (const [name, v] of policies) {
    const pl = sub(loc, `policies["${name}"]`);
    const p = asObj(v) ?? {};
    for (const k of ['condition', 'checked_condition']) {
      if (isSet(p[k])) ctx.reject(sub(pl, k), 'is not supported: Remora authorizes by peer identity alone (no CEL conditions)');
    }
    ctx.only(p, pl, ['permissions', 'principals', 'condition', 'checked_condition']);
    const permissions = asArr(p.permissions);
    if (permissions.length === 0) ctx.reject(sub(pl, 'permissions'), 'needs at least one permission (any: true)');
    permissions.forEach((perm, i) => permission(ctx, asObj(perm) ?? {}, sub(pl, `permissions[${i}]`)));
    const principals = asArr(p.principals);
    if (principals.length === 0) ctx.reject(sub(pl, 'principals'), 'needs at least one principal');
    principals.forEach((pr, i) => principal(ctx, asObj(pr) ?? {}, sub(pl, `principals[${i}]`), out));
  }
  return out;
}

function permission(ctx: Ctx, p: Obj, loc: Loc): void {
  const others = Object.entries(p).filter(([k, v]) => k !== 'any' && isSet(v));
  for (const [k] of others) ctx.reject(sub(loc, k), PERMISSIONS_ONLY_ANY);
  if (p.any !== true && others.length === 0) ctx.reject(sub(loc, 'any'), 'must be true (the only permission Remora supports)');
}

/** A principal → a pattern in `out`. `or_ids` (any of its ids) adds each of them, and an
 *  `and_ids` of a single id is that id: the nesting Istio writes
 *  (`and_ids: [{or_ids: [authenticated…]}]`). An `and_ids` of several ids cannot be
 *  expressed by a list of identity patterns. */
function principal(ctx: Ctx, p: Obj, loc: Loc, out: RbacRules, depth = 0): void {
  for (const k of ['or_ids', 'and_ids'] as const) {
    const set = asObj(p[k]);
    if (set === undefined) continue;
    const sl = sub(loc, k);
    const others = Object.entries(p).filter(([key, v]) => key !== k && isSet(v));
    for (const [key] of others) ctx.reject(sub(loc, key), `cannot be set together with ${k}`);
    ctx.only(set, sl, ['ids']);
    const ids = asArr(set.ids);
    if (depth >= 4) ctx.reject(sl, 'is nested too deeply (at most 4 levels)');
    else if (ids.length === 0) ctx.reject(sub(sl, 'ids'), 'needs at least one principal');
    else if (k === 'and_ids' && ids.length > 1) {
      ctx.reject(sub(sl, 'ids'), 'with more than one principal cannot be expressed: Remora matches one identity against a list of patterns');
    } else ids.forEach((id, i) => principal(ctx, asObj(id) ?? {}, sub(sl, `ids[${i}]`), out, depth + 1));
    return;
  }
  const others = Object.entries(p).filter(([k, v]) => k !== 'authenticated' && isSet(v));
  for (const [k] of others) ctx.reject(sub(loc, k), k === 'any' ? ANY_PRINCIPAL : PRINCIPAL_AUTHENTICATED_ONLY);
  const a = asObj(p.authenticated);
  if (a === undefined) {
    if (others.length === 0) ctx.reject(sub(loc, 'authenticated'), 'is required');
    return;
  }
  const al = sub(loc, 'authenticated');
  ctx.only(a, al, ['principal_name']);
  const m = asObj(a.principal_name);
  if (m === undefined) {
    out.anyAuthenticated.push(al);
    out.patterns.push({ pattern: '*', loc: al });
    return;
  }
  const ml = sub(al, 'principal_name');
  const unsupported = ['suffix', 'contains', 'custom'].filter((k) => isSet(m[k]));
  for (const k of unsupported) ctx.reject(sub(ml, k), `is not supported (${NAME_MATCHERS})`);
  if (m.ignore_case === true) ctx.reject(sub(ml, 'ignore_case'), 'is not supported: Remora compares identities case-sensitively');
  ctx.only(m, ml, ['exact', 'prefix', 'safe_regex', 'ignore_case', 'suffix', 'contains', 'custom']);
  const literal = (k: 'exact' | 'prefix'): string | undefined => {
    const s = asStr(m[k]);
    if (s === undefined) return undefined;
    if (s === '' || s.includes('*')) {
      const why = s === '' ? 'must not be empty' : `"${s}": "*" cannot be expressed (Remora reads "*" as a prefix wildcard)`;
      ctx.reject(sub(ml, k), why);
      return undefined;
    }
    return s;
  };
  const exact = literal('exact');
  const prefix = literal('prefix');
  const re = asObj(m.safe_regex);
  if (exact !== undefined) out.patterns.push({ pattern: exact, loc: sub(ml, 'exact') });
  else if (prefix !== undefined) out.patterns.push({ pattern: `${prefix}*`, loc: sub(ml, 'prefix') });
  else if (re !== undefined) {
    const rl = sub(ml, 'safe_regex');
    ctx.only(re, rl, ['regex', 'google_re2']);
    if (re.regex === ANY_IDENTITY_REGEX) out.patterns.push({ pattern: '*', loc: rl });
    else ctx.reject(sub(rl, 'regex'), `"${String(re.regex ?? '')}" is not supported: only "${ANY_IDENTITY_REGEX}" (any verified identity, Remora's "*"); use exact or prefix`);
  } else if (m.exact === undefined && m.prefix === undefined && unsupported.length === 0) ctx.reject(ml, `needs ${NAME_MATCHERS}`);
}

/** Adds `rules` to `into`, which holds one rule set per action; a second one of an action
 *  is rejected at `at` (two allow lists would both have to match: not expressible). */
export function collectRules(ctx: Ctx, into: Partial<Record<RbacAction, RbacRules>>, rules: RbacRules, at: Loc, scope: string): void {
  const first = into[rules.action];
  if (first === undefined) into[rules.action] = rules;
  else ctx.reject(at, `a second RBAC rule set with action ${rules.action.toUpperCase()}: Remora has one ${rules.action} list per ${scope} (first at ${first.loc.path})`);
}

/** A listener's or route's DENY and ALLOW rules → raw `authorization` (undefined when
 *  there are no patterns), with marks relative to it. `everyClientVerified`:
 *  the listener has no TLS, or requires a verified client certificate; only then does
 *  Envoy's `authenticated: {}` mean what Remora's `*` means. */
export function authorization(
  ctx: Ctx,
  rules: Partial<Record<RbacAction, RbacRules>>,
  everyClientVerified: boolean,
): Fields | undefined {
  const out = new Fields({ allow: [], deny: [] });
  for (const action of ['allow', 'deny'] as const) {
    const r = rules[action];
    if (r === undefined) continue;
    if (!everyClientVerified) {
      for (const at of r.anyAuthenticated) {
        ctx.reject(at, 'without principal_name this matches TLS clients that sent no certificate, but the listener does not require one; '
          + `Remora's "*" (any verified identity) is principal_name.safe_regex "${ANY_IDENTITY_REGEX}"`);
      }
    }
    out.set(action, r.patterns.map((p) => p.pattern), r.loc);
    r.patterns.forEach((p, i) => out.mark(`.${action}[${i}]`, p.loc));
  }
  if (asArr(out.raw.allow).length === 0 && asArr(out.raw.deny).length === 0) return undefined;
  return out.here((rules.deny ?? rules.allow)!.loc);
}
