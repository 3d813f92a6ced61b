// ClusterLoadAssignment → a cluster's raw endpoints (part of src/xds/translate.ts), for
// EDS and for a STATIC cluster's inline load_assignment. Remora has one priority level and
// no endpoint weights; endpoints Envoy would send no traffic are left out.

import { asArr, asNum, asObj, asStr, isSet, wrapped, type Obj } from './read.js';
import { socketAddress, sub, type Ctx, type Loc } from './translate-context.js';
import { Fields, type Mark } from './translate-fields.js';

/** Endpoints in these states are left out (Envoy sends them no traffic). */
const LEFT_OUT_HEALTH = ['UNHEALTHY', 'DRAINING', 'TIMEOUT'];

export interface EndpointsPart {
  readonly endpoints: Obj[];
  /** Relative to the endpoint list: `[0].port`. */
  readonly marks: Mark[];
}

/** A ClusterLoadAssignment (EDS, or a STATIC cluster's load_assignment) → raw endpoints.
 *  UNHEALTHY, DRAINING and TIMEOUT endpoints are left out; locality and its weight are
 *  informational (Envoy ignores locality weights without locality-weighted balancing). */
export function translateEndpoints(ctx: Ctx, cla: Obj, loc: Loc): EndpointsPart {
  ctx.only(cla, loc, ['cluster_name', 'endpoints']);
  const endpoints: Obj[] = [];
  const marks: Mark[] = [];
  let leftOut = 0;
  asArr(cla.endpoints).forEach((v, i) => {
    const gl = sub(loc, `endpoints[${i}]`);
    const group = asObj(v) ?? {};
    ctx.only(group, gl, ['locality', 'lb_endpoints', 'load_balancing_weight', 'priority']);
    if (isSet(group.priority)) ctx.reject(sub(gl, 'priority'), `${asNum(group.priority)} is not supported: Remora has no priority levels (0 only)`);
    const locality = asObj(group.locality);
    if (locality !== undefined) ctx.only(locality, sub(gl, 'locality'), ['region', 'zone', 'sub_zone']);
    asArr(group.lb_endpoints).forEach((e, j) => {
      const el = sub(gl, `lb_endpoints[${j}]`);
      const lbe = asObj(e) ?? {};
      ctx.only(lbe, el, ['endpoint', 'health_status', 'load_balancing_weight']);
      const weight = wrapped(lbe.load_balancing_weight);
      if (weight !== undefined && weight !== 1) {
        ctx.reject(sub(el, 'load_balancing_weight'), `${weight} is not supported: Remora has no endpoint weights yet (1 or unset)`);
      }
      if (LEFT_OUT_HEALTH.includes(asStr(lbe.health_status) ?? '')) {
        leftOut++;
        return;
      }
      const epl = sub(el, 'endpoint');
      const ep = asObj(lbe.endpoint) ?? {};
      ctx.only(ep, epl, ['address']);
      const sa = socketAddress(ctx, ep.address, sub(epl, 'address'));
      if (sa === undefined) return;
      const out = new Fields({}, marks, `[${endpoints.length}]`).here(el);
      out.set('address', sa.address, sa.addressLoc);
      out.set('port', sa.port, sa.portLoc);
      endpoints.push(out.raw);
    });
  });
  if (endpoints.length === 0 && leftOut > 0) {
    ctx.reject(sub(loc, 'endpoints'), `all ${leftOut} endpoints are UNHEALTHY, DRAINING or TIMEOUT; Remora needs at least one endpoint per cluster`);
  }
  marks.push(['', sub(loc, 'endpoints')]);
  return { endpoints, marks };
}
