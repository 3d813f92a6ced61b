// A route's RetryPolicy → Remora's raw `retry_policy` (part of src/xds/translate-route.ts):
// conditions, retry count, per-try timeout, retriable statuses, backoff, and the host
// selection fields Istio writes on every route. Remora's retries always avoid the
// endpoint of the attempt just before (src/upstream/cluster.ts `pick(avoid)`), which is
// what Envoy's `previous_hosts` predicate asks for; no other predicate is supported.
// Also the cap a listener's buffer limit puts on its routes' retry buffers (attachRoutes).

import { RETRY_ON } from '../config/schema/listener.js';
import { TypeUrl } from './protos.js';
import { asArr, asNum, asObj, asStr, isSet, wrapped, type Obj } from './read.js';
import { sub, type Ctx, type Loc } from './translate-context.js';
import type { Fields, Mark } from './translate-fields.js';

/** The config's retry conditions (Envoy's names), as a list any string can be looked up in. */
const RETRY_CONDITIONS: readonly string[] = RETRY_ON;

/** The one retry host predicate Remora's behaviour matches, by extension name (a
 *  predicate without typed_config is recognised by it, as Envoy does). */
const PREVIOUS_HOSTS = 'envoy.retry_host_predicates.previous_hosts';

export function retryPolicy(ctx: Ctx, rp: Obj, loc: Loc, out: Fields): void {
  ctx.only(rp, loc, ['retry_on', 'num_retries', 'per_try_timeout', 'retriable_status_codes', 'retry_back_off',
    'retry_host_predicate', 'host_selection_retry_max_attempts']);
  out.here(loc);
  const on = (asStr(rp.retry_on) ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const cond of on) {
    if (!RETRY_CONDITIONS.includes(cond)) ctx.reject(sub(loc, 'retry_on'), `"${cond}" is not supported (Remora retries on ${RETRY_CONDITIONS.join(', ')})`);
  }
  out.set('retry_on', on, sub(loc, 'retry_on'));
  out.take('num_retries', wrapped(rp.num_retries), sub(loc, 'num_retries'));
  out.take('per_try_timeout_ms', ctx.ms(rp.per_try_timeout, sub(loc, 'per_try_timeout')), sub(loc, 'per_try_timeout'));
  if (rp.retriable_status_codes !== undefined) out.set('retriable_status_codes', asArr(rp.retriable_status_codes), sub(loc, 'retriable_status_codes'));
  const back = asObj(rp.retry_back_off);
  if (back !== undefined) {
    const bl = sub(loc, 'retry_back_off');
    ctx.only(back, bl, ['base_interval', 'max_interval']);
    const base = ctx.ms(back.base_interval, sub(bl, 'base_interval'));
    const max = ctx.ms(back.max_interval, sub(bl, 'max_interval'));
    out.fill('base_interval_ms', base, sub(bl, 'base_interval'));
    out.fill('max_interval_ms', max, sub(bl, 'max_interval'));
  }
  hostSelection(ctx, rp, loc);
}

/**
 * retry_host_predicate and host_selection_retry_max_attempts: nothing to write, since
 * Remora always picks another endpoint than the previous attempt's when the cluster has
 * one (it takes the next one in the list; it never gives up, so the number of selection
 * attempts does not apply). `previous_hosts` is accepted; Envoy's predicate avoids every
 * earlier attempt's host, Remora only the last one (docs/xds.md says when that differs).
 * Other predicates (omit_canary_hosts, omit_host_metadata) would choose endpoints by
 * metadata that Remora ignores, so they are rejected.
 */
function hostSelection(ctx: Ctx, rp: Obj, loc: Loc): void {
  asArr(rp.retry_host_predicate).forEach((v, i) => {
    const pl = sub(loc, `retry_host_predicate[${i}]`);
    const p = asObj(v) ?? {};
    ctx.only(p, pl, ['name', 'typed_config']);
    const type = asStr(asObj(p.typed_config)?.type_url);
    if (type === undefined) {
      if (p.name !== PREVIOUS_HOSTS) ctx.reject(pl, `${String(p.name ?? 'a predicate without typed_config')} is not supported (only ${PREVIOUS_HOSTS})`);
      return;
    }
    const tl = sub(pl, 'typed_config');
    if (type !== TypeUrl.PreviousHostsPredicate) {
      ctx.reject(tl, `${type.slice(type.lastIndexOf('/') + 1)} is not supported (only ${PREVIOUS_HOSTS}: Remora's retries avoid the previous attempt's endpoint, and choose by nothing else)`);
      return;
    }
    const msg = ctx.decode(p.typed_config, tl)?.message;
    if (msg !== undefined) ctx.only(msg, tl, []);
  });
  const max = rp.host_selection_retry_max_attempts;
  if (isSet(max) && asNum(max) < 0) ctx.reject(sub(loc, 'host_selection_retry_max_attempts'), `${asNum(max)} must not be negative`);
  else if (isSet(max)) ctx.noEffect(loc, 'RouteConfiguration.virtual_hosts.routes.route.retry_policy.host_selection_retry_max_attempts');
}

/** Envoy buffers a request's body for retries up to the lower of the route's
 *  per_request_buffer_limit_bytes and the listener's per_connection_buffer_limit_bytes
 *  (the listener's alone when the route sets none): a larger body is streamed and the
 *  request is not retried, as in Remora. So each retrying route of the listener gets the
 *  lower of the two as its retry policy's buffer_limit_bytes (marked at the listener's
 *  field when that is the one applied). */
export function capRetryBuffers(vhosts: Obj[], marks: Mark[], limit: { readonly bytes: number; readonly loc: Loc }): void {
  vhosts.forEach((vh, v) => asArr(vh.routes).forEach((r, i) => {
    const retry = asObj(asObj(asObj(r)?.route)?.retry_policy);
    if (retry === undefined) return;
    const own = retry.buffer_limit_bytes;
    if (typeof own === 'number' && own <= limit.bytes) return;
    const path = `[${v}].routes[${i}].route.retry_policy.buffer_limit_bytes`;
    const at = marks.findIndex(([p]) => p === path);
    if (at >= 0) marks.splice(at, 1);
    retry.buffer_limit_bytes = limit.bytes;
    marks.push([path, limit.loc]);
  }));
}
