// ClusterLoadAssignment → a cluster's raw endpoints (part of src/xds/translate.ts), for
// EDS and for a STATIC cluster's inline load_assignment. Remora has one priority level and
// no endpoint weights; endpoints Envoy would send no traffic are left out. What control
// planes add that changes nothing with one priority level and no locality weighting
// (overprovisioning_factor, locality, metadata, an endpoint's health_check_config naming
// its own address) is accepted; docs/xds.md says why for each. The metadata a cluster's
// transport_socket_matches read (`envoy.transport_socket_match`: the endpoint's own, else
// its locality's) becomes the endpoint's transport_socket_match.

import { asArr, asNum, asObj, asStr, isSet, wrapped, type Obj } from './read.js';
import { socketAddress, sub, type Ctx, type Loc } from './translate-context.js';
import { Fields, type Mark } from './translate-fields.js';
import { endpointTransportMatch } from './translate-transport-match.js';
import { TRANSPORT_SOCKET_MATCH_METADATA } from './names.js';

/** Endpoint metadata namespaces read here: what the cluster's transport_socket_matches compare. */
const READ_METADATA = [TRANSPORT_SOCKET_MATCH_METADATA];

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
  ctx.only(cla, loc, ['cluster_name', 'endpoints', 'policy']);
  const policy = asObj(cla.policy);
  if (policy !== undefined) assignmentPolicy(ctx, policy, sub(loc, 'policy'));
  const endpoints: Obj[] = [];
  const marks: Mark[] = [];
  asArr(cla.endpoints).forEach((v, i) => {
    const gl = sub(loc, `endpoints[${i}]`);
    const group = asObj(v) ?? {};
    ctx.only(group, gl, ['locality', 'lb_endpoints', 'load_balancing_weight', 'priority', 'metadata']);
    ctx.extensions(group, gl, [], 'ClusterLoadAssignment.endpoints.metadata', READ_METADATA);
    const groupMatch = endpointTransportMatch(ctx, group, gl);
    if (isSet(group.priority)) ctx.reject(sub(gl, 'priority'), `${asNum(group.priority)} is not supported: Remora has no priority levels (0 only)`);
    const locality = asObj(group.locality);
    if (locality !== undefined) ctx.only(locality, sub(gl, 'locality'), ['region', 'zone', 'sub_zone']);
    for (const k of ['locality', 'load_balancing_weight']) if (isSet(group[k])) ctx.noEffect(gl, `ClusterLoadAssignment.endpoints.${k}`);
    asArr(group.lb_endpoints).forEach((e, j) => {
      const el = sub(gl, `lb_endpoints[${j}]`);
      const lbe = asObj(e) ?? {};
      ctx.only(lbe, el, ['endpoint', 'health_status', 'load_balancing_weight', 'metadata']);
      ctx.extensions(lbe, el, [], 'ClusterLoadAssignment.endpoints.lb_endpoints.metadata', READ_METADATA);
      const match = endpointTransportMatch(ctx, lbe, el) ?? groupMatch;
      const weight = wrapped(lbe.load_balancing_weight);
      if (weight !== undefined && weight !== 1) {
        ctx.reject(sub(el, 'load_balancing_weight'), `${weight} is not supported: Remora has no endpoint weights yet (1 or unset)`);
      }
      if (LEFT_OUT_HEALTH.includes(asStr(lbe.health_status) ?? '')) return;
      const epl = sub(el, 'endpoint');
      const ep = asObj(lbe.endpoint) ?? {};
      ctx.only(ep, epl, ['address', 'health_check_config', 'hostname']);
      // Envoy reads an endpoint's hostname only for auto_host_rewrite (rejected on routes)
      // and its access logs: routing, balancing and health checks never see it.
      if (isSet(ep.hostname)) ctx.noEffect(sub(epl, 'hostname'), 'ClusterLoadAssignment.endpoints.lb_endpoints.endpoint.hostname');
      const sa = socketAddress(ctx, ep.address, sub(epl, 'address'));
      if (sa === undefined) return;
      const hc = asObj(ep.health_check_config);
      if (hc !== undefined) healthCheckConfig(ctx, hc, sub(epl, 'health_check_config'), sa);
      const out = new Fields({}, marks, `[${endpoints.length}]`).here(el);
      out.set('address', sa.address, sa.addressLoc);
      out.set('port', sa.port, sa.portLoc);
      if (typeof hc?.hostname === 'string' && hc.hostname !== '') out.set('health_check_host', hc.hostname, sub(epl, 'health_check_config.hostname'));
      if (match !== undefined) out.set('transport_socket_match', match, el);
      endpoints.push(out.raw);
    });
  });
  // None left (all UNHEALTHY, DRAINING or TIMEOUT), or none sent (a service scaled to
  // zero): the cluster has no endpoints and answers 503 UH, as Envoy's does.
  marks.push(['', sub(loc, 'endpoints')]);
  return { endpoints, marks };
}

/** ClusterLoadAssignment.policy. overprovisioning_factor scales a priority level's or
 *  locality's health before traffic spills to the next level or is split between healthy
 *  and degraded hosts; with Remora's one level (priority 0 only), no locality weighting
 *  and no degraded tier, it changes nothing, and Envoy's panic threshold does not use it.
 *  Dropping requests (drop_overloads) and expiring endpoints (endpoint_stale_after) would
 *  change traffic: rejected. */
function assignmentPolicy(ctx: Ctx, p: Obj, loc: Loc): void {
  if (isSet(p.drop_overloads)) ctx.reject(sub(loc, 'drop_overloads'), 'is not supported: Remora does not drop requests by category');
  if (isSet(p.endpoint_stale_after)) ctx.reject(sub(loc, 'endpoint_stale_after'), 'is not supported: Remora keeps endpoints until the next assignment');
  ctx.only(p, loc, ['overprovisioning_factor', 'drop_overloads', 'endpoint_stale_after']);
  if (wrapped(p.overprovisioning_factor) === 0) ctx.reject(sub(loc, 'overprovisioning_factor'), 'must be greater than 0 (Envoy refuses 0)');
  else if (isSet(p.overprovisioning_factor)) ctx.noEffect(loc, 'ClusterLoadAssignment.policy.overprovisioning_factor');
}

/** An endpoint's health_check_config: Remora health-checks an endpoint at its own address
 *  and port, with the cluster's check. So the config is accepted when it leaves that as
 *  it is (empty, as Istio sends it, or naming the same address and port); another port or
 *  address, or no active check for this endpoint are rejected. Its `hostname` (the Host
 *  or gRPC authority of this endpoint's checks) is the endpoint's health_check_host. */
function healthCheckConfig(ctx: Ctx, hc: Obj, loc: Loc, endpoint: { address: string; port: number }): void {
  ctx.only(hc, loc, ['port_value', 'address', 'hostname', 'disable_active_health_check']);
  if (hc.disable_active_health_check === true) {
    ctx.reject(sub(loc, 'disable_active_health_check'), 'is not supported: Remora health-checks every endpoint of a cluster that has a health check');
  }
  let address = endpoint.address;
  let port = endpoint.port;
  let at = sub(loc, 'port_value');
  if (hc.address !== undefined) {
    const sa = socketAddress(ctx, hc.address, sub(loc, 'address'));
    if (sa === undefined) return;
    ({ address, port } = sa);
    at = sub(loc, 'address');
  }
  if (isSet(hc.port_value)) {
    port = asNum(hc.port_value);
    at = sub(loc, 'port_value');
  }
  if (address !== endpoint.address || port !== endpoint.port) {
    ctx.reject(at, `would health-check ${address}:${port} instead of the endpoint (${endpoint.address}:${endpoint.port}); Remora checks the endpoint's own address and port`);
  } else ctx.noEffect(loc, 'ClusterLoadAssignment.endpoints.lb_endpoints.endpoint.health_check_config');
}
