// A route action's request_mirror_policies → Remora's (part of src/xds/translate-route.ts):
// each `{cluster, percent}` from the cluster and runtime_fraction's default value.

import { asObj, asStr, isSet } from './read.js';
import { sub, type Ctx, type Loc } from './translate-context.js';
import { Fields } from './translate-fields.js';

/** request_mirror_policies → the route action's, each `{cluster, percent}`; the shadow
 *  host suffix is always added (disabling it is rejected), trace_sampled has no effect. */
export function mirrorPolicies(ctx: Ctx, list: unknown[], loc: Loc): Fields[] {
  return list.map((v, i) => {
    const ml = sub(loc, `[${i}]`);
    const m = asObj(v) ?? {};
    ctx.only(m, ml, ['cluster', 'runtime_fraction', 'trace_sampled']);
    if (isSet(m.trace_sampled)) ctx.noEffect(sub(ml, 'trace_sampled'), 'RouteConfiguration.virtual_hosts.routes.route.request_mirror_policies.trace_sampled');
    const out = new Fields().here(ml);
    out.set('cluster', asStr(m.cluster), sub(ml, 'cluster'));
    out.take('percent', ctx.percent(m.runtime_fraction, sub(ml, 'runtime_fraction')), sub(ml, 'runtime_fraction'));
    return out;
  });
}
