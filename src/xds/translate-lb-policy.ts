// A cluster's load_balancing_policy (part of src/xds/translate-cluster.ts): the extension
// form of lb_policy that Envoy Gateway writes on every cluster, and that takes precedence
// over lb_policy in Envoy. Its policies are tried in order and the first one Remora runs
// is used, as Envoy uses the first one it supports: round_robin, least_request (two
// choices, Remora's least_request) and random. A policy of another type (ring hash,
// Maglev, weighted round robin, a custom one) is passed over; a list with none Remora
// runs is rejected. Settings that would change the choice (slow start, zone-aware
// routing, least_request's full scan or another choice_count) are rejected; those that
// cannot here (locality weighting with every endpoint in one set, active_request_bias
// with every endpoint of weight 1) are accepted without effect.

import { asArr, asObj, asStr, wrapped, type Obj } from './read.js';
import { sub, type Ctx, type Loc } from './translate-context.js';

/** The Remora lb_policy of each policy type Remora runs. */
const POLICIES: Readonly<Record<string, string>> = {
  'type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin': 'round_robin',
  'type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest': 'least_request',
  'type.googleapis.com/envoy.extensions.load_balancing_policies.random.v3.Random': 'random',
};

/** Remora's least_request: the less busy of two random endpoints. */
const CHOICE_COUNT = 2;

/** The lb_policy load_balancing_policy picks; undefined when rejected. */
export function loadBalancingPolicy(ctx: Ctx, v: unknown, loc: Loc): string | undefined {
  const p = asObj(v) ?? {};
  ctx.only(p, loc, ['policies']);
  const policies = asArr(p.policies);
  const passed: string[] = [];
  for (const [i, entry] of policies.entries()) {
    const pl = sub(loc, `policies[${i}]`);
    const e = asObj(entry) ?? {};
    ctx.only(e, pl, ['typed_extension_config']);
    const tl = sub(pl, 'typed_extension_config');
    const tc = asObj(e.typed_extension_config) ?? {};
    ctx.only(tc, tl, ['name', 'typed_config']);
    const typeUrl = asStr(asObj(tc.typed_config)?.type_url) ?? '';
    const policy = POLICIES[typeUrl];
    if (policy === undefined) {
      passed.push(typeUrl.slice(typeUrl.lastIndexOf('/') + 1) || String(tc.name ?? '(no type)'));
      continue;
    }
    const config = ctx.decode(tc.typed_config, sub(tl, 'typed_config'));
    if (config === undefined) return undefined;
    policySettings(ctx, config.message, sub(tl, 'typed_config'), policy);
    if (passed.length > 0) ctx.noEffect(loc, 'Cluster.load_balancing_policy (policies before the first one Remora runs)');
    return policy;
  }
  ctx.reject(sub(loc, 'policies'), `none of these is supported: ${passed.join(', ') || '(empty)'} (Remora runs round_robin, least_request and random)`);
  return undefined;
}

function policySettings(ctx: Ctx, m: Obj, loc: Loc, policy: string): void {
  ctx.only(m, loc, policy === 'least_request'
    ? ['choice_count', 'active_request_bias', 'slow_start_config', 'locality_lb_config', 'enable_full_scan', 'selection_method']
    : policy === 'round_robin' ? ['slow_start_config', 'locality_lb_config'] : ['locality_lb_config']);
  if (asObj(m.slow_start_config) !== undefined) ctx.reject(sub(loc, 'slow_start_config'), 'is not supported: Remora sends a new endpoint its full share at once');
  const locality = asObj(m.locality_lb_config);
  if (locality !== undefined) {
    const ll = sub(loc, 'locality_lb_config');
    ctx.only(locality, ll, ['locality_weighted_lb_config', 'zone_aware_lb_config']);
    if (asObj(locality.zone_aware_lb_config) !== undefined) ctx.reject(sub(ll, 'zone_aware_lb_config'), 'is not supported: Remora has no zone-aware routing');
    // As common_lb_config.locality_weighted_lb_config: every locality's endpoints are one set.
    if (asObj(locality.locality_weighted_lb_config) !== undefined) ctx.noEffect(ll, 'Cluster.load_balancing_policy locality_weighted_lb_config');
  }
  if (policy !== 'least_request') return;
  const choices = wrapped(m.choice_count);
  if (choices !== undefined && choices !== CHOICE_COUNT) ctx.reject(sub(loc, 'choice_count'), `${choices} is not supported: Remora picks the less busy of ${CHOICE_COUNT} endpoints (2 or unset)`);
  const fullScan = asObj(m.enable_full_scan)?.value === true || (asStr(m.selection_method) ?? 'N_CHOICES') !== 'N_CHOICES';
  if (fullScan) ctx.reject(sub(loc, m.selection_method !== undefined ? 'selection_method' : 'enable_full_scan'), 'a full scan is not supported: Remora picks the less busy of two random endpoints');
  // The bias scales endpoint weights by their requests in flight; every Remora endpoint
  // has weight 1, and with equal weights Envoy ignores it too.
  if (asObj(m.active_request_bias) !== undefined) ctx.noEffect(loc, 'Cluster.load_balancing_policy least_request active_request_bias');
}
