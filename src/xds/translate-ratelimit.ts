// Envoy's local rate limit HTTP filter → Remora's rate limits (part of
// src/xds/translate.ts): a LocalRateLimit with a token bucket, as a listener's filter or
// as a route's per-route config, becomes one raw rate limit; its key (which headers or
// the client address to count by) comes from the `rate_limit_keys` Remora extension of
// the listener or route. Remora refuses with 429, always enabled; enforced or shadow.

import { asNum, asObj, asStr, isObj, isSet, wrapped, type Obj } from './read.js';
import { extPath, sub, type Ctx, type Loc } from './translate-context.js';
import { Fields } from './translate-fields.js';

/** Envoy's default where it differs from Remora's file default. */
const ENVOY_TOKENS_PER_FILL = 1;

/** envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit → a raw rate limit
 *  (marks relative to it); null when it has no token bucket (a filter that only carries
 *  per-route limits). */
export function localRateLimit(ctx: Ctx, msg: Obj, loc: Loc): Fields | null {
  ctx.only(msg, loc, ['stat_prefix', 'status', 'token_bucket', 'filter_enabled', 'filter_enforced', 'always_consume_default_token_bucket']);
  // It only matters with descriptors, which Remora rejects.
  if (isSet(msg.always_consume_default_token_bucket)) ctx.noEffect(loc, 'LocalRateLimit.always_consume_default_token_bucket');
  const status = asObj(msg.status);
  if (status !== undefined && status.code !== 'TooManyRequests') {
    ctx.reject(sub(loc, 'status'), `${String(status.code ?? 'Empty')} is not supported: Remora refuses with 429 (TooManyRequests)`);
  }
  const bucket = asObj(msg.token_bucket);
  if (bucket === undefined) return null;
  const bl = sub(loc, 'token_bucket');
  ctx.only(bucket, bl, ['max_tokens', 'tokens_per_fill', 'fill_interval']);
  const enabled = ctx.percent(msg.filter_enabled, sub(loc, 'filter_enabled'));
  if (enabled !== 100) {
    const got = enabled === undefined ? 'unset (0% in Envoy: the limiter is off)' : `${enabled}%`;
    ctx.reject(sub(loc, 'filter_enabled'), `must be 100% (got ${got}); Remora has no partial enablement`);
  }
  const enforced = ctx.percent(msg.filter_enforced, sub(loc, 'filter_enforced')) ?? 0;
  if (enforced !== 0 && enforced !== 100) {
    ctx.reject(sub(loc, 'filter_enforced'), `must be 100% (enforce) or 0% (shadow: count only), got ${enforced}%`);
  }
  const fill = ctx.ms(bucket.fill_interval, sub(bl, 'fill_interval'));
  const out = new Fields().here(loc);
  out.set('name', asStr(msg.stat_prefix) ?? '', sub(loc, 'stat_prefix'));
  out.set('max_tokens', asNum(bucket.max_tokens), sub(bl, 'max_tokens'));
  out.set('tokens_per_fill', wrapped(bucket.tokens_per_fill) ?? ENVOY_TOKENS_PER_FILL, sub(bl, 'tokens_per_fill'));
  out.fill('fill_interval_ms', fill, sub(bl, 'fill_interval'));
  out.raw.shadow = enforced === 0;
  return out;
}

/** `rate_limit_keys` extension: rate limit name → key ({headers, client_ip}). */
export function applyRateLimitKeys(ctx: Ctx, ext: Obj, loc: Loc, limits: readonly Fields[], where: string): void {
  const keys = ext.rate_limit_keys;
  if (keys === undefined) return;
  const kl = extPath(loc, 'rate_limit_keys');
  if (!isObj(keys)) {
    ctx.reject(kl, 'must be a struct: rate limit name → { headers, client_ip }');
    return;
  }
  for (const [name, key] of Object.entries(keys)) {
    const limit = limits.find((l) => l.raw.name === name);
    if (limit === undefined) ctx.reject(sub(kl, name), `no local rate limit with stat_prefix "${name}" on this ${where}`);
    else limit.set('key', key, sub(kl, name));
  }
}
