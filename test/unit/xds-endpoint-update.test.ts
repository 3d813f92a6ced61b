// Unit tests for endpoint-only xDS updates (src/xds/translate.ts endpointChanges and
// translateEndpointUpdate): an update that changes only ClusterLoadAssignments is
// recognised (by object), translated alone to exactly the clusters a whole translation
// gives, rejected with the same errors naming the assignment, bounded by the endpoint cap
// over every cluster, and its fields without effect counted as the whole set's would be.

import t from 'tap';
import { endpointChanges, formatRejection, translateEndpointUpdate, translateXds } from '../../src/xds/translate.js';
import { MAX_ENDPOINTS } from '../../src/shared/limits.js';
import { TypeUrl } from '../../src/xds/protos.js';
import { arr, baseOf, obj, overTheWire, protos, valid, type MutableSet, type Obj } from '../helpers/xds.js';

const EPS = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ address: '127.0.0.1', port: from + i }));
const CONFIG = valid({
  listeners: [{
    name: 'in', port: 0, virtual_hosts: [{
      name: 'v', domains: ['*'], routes: [
        { name: 'a', match: { prefix: '/a' }, route: { cluster: 'api' } },
        { name: 'b', match: { prefix: '/' }, route: { cluster: 'web' } },
      ],
    }],
  }],
  clusters: [
    { name: 'api', endpoints: EPS(9000, 3), health_check: { path: '/healthz' }, outlier_detection: { consecutive_5xx: 3 } },
    { name: 'web', endpoints: EPS(9100, 2) },
  ],
});
const BASE = baseOf(CONFIG);
const OPTS = { ads: true } as const;

/** A ClusterLoadAssignment for `cluster` with these ports, as the wire delivers it. */
function assignment(cluster: string, ports: readonly number[], extra: Obj = {}): Obj {
  const cla = {
    cluster_name: cluster,
    endpoints: [{ lb_endpoints: ports.map((port) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } })) }],
    ...extra,
  };
  return protos.decodeAny(protos.encodeAny(TypeUrl.ClusterLoadAssignment, cla)).message;
}

function applied(): { set: MutableSet; result: Extract<ReturnType<typeof translateXds>, { ok: true }> } {
  const set = overTheWire(CONFIG);
  const result = translateXds(BASE, set, OPTS);
  if (!result.ok) throw new Error(`the test set does not translate: ${JSON.stringify(result.errors)}`);
  return { set, result };
}

t.test('only assignments changed: recognised by object, anything else is not', async (t) => {
  const { set } = applied();
  t.same(endpointChanges(set, { ...set }), new Map(), 'the same set: no change');
  const next = { ...set, endpoints: new Map(set.endpoints).set('api', assignment('api', [9000, 9005])) };
  const changes = endpointChanges(set, next);
  t.same([...(changes?.keys() ?? [])], ['api'], 'one assignment changed: that one');
  t.equal(changes?.get('api')?.before, set.endpoints.get('api'), 'with the version in effect');
  t.same([...(endpointChanges(set, { ...next, clusters: new Map(set.clusters) })?.keys() ?? [])], ['api'], 'a copied map holding the same objects changes nothing');
  const cluster = new Map(set.clusters);
  cluster.set('web', { ...set.clusters.get('web')! });
  t.equal(endpointChanges(set, { ...next, clusters: cluster }), null, 'a cluster changed too: not endpoint-only');
  const routes = new Map(set.routes);
  routes.set('in', { ...set.routes.get('in')! });
  t.equal(endpointChanges(set, { ...set, routes }), null, 'a route configuration changed: not endpoint-only');
  const fewer = new Map(set.endpoints);
  fewer.delete('web');
  t.equal(endpointChanges(set, { ...set, endpoints: fewer }), null, 'an assignment removed: not endpoint-only');
  t.equal(endpointChanges(set, { ...set, endpoints: new Map(set.endpoints).set('new', assignment('new', [1])) }), null, 'an assignment added: not endpoint-only');
});

t.test('the clusters an endpoint update gives are those a whole translation gives', async (t) => {
  const { set, result } = applied();
  for (const ports of [[9000, 9001, 9007], [], [9200]]) {
    const endpoints = new Map(set.endpoints).set('api', assignment('api', ports));
    const next = { ...set, endpoints };
    const update = translateEndpointUpdate(result.eds, result.config, result.noEffect, endpointChanges(set, next)!);
    const whole = translateXds(BASE, next, OPTS);
    if (!update.ok || !whole.ok) {
      t.fail(`expected both to translate; saw ${JSON.stringify(update.ok ? [] : update.errors)} / ${JSON.stringify(whole.ok ? [] : whole.errors)}`);
      continue;
    }
    t.same(update.clusters, ['api'], `[${ports.join(', ')}]: the cluster reading the assignment is named`);
    t.same(update.config, whole.config, `[${ports.join(', ')}]: the config equals the whole translation's`);
    t.equal(update.config.clusters.find((c) => c.name === 'web'), result.config.clusters.find((c) => c.name === 'web'), 'the other cluster is the same object');
  }
});

t.test('a bad assignment is rejected by name and field, as a whole translation rejects it', async (t) => {
  const { set, result } = applied();
  const bad = assignment('api', [9000]);
  obj(arr(arr(bad.endpoints)[0].lb_endpoints)[0]).load_balancing_weight = { value: 3 };
  const next = { ...set, endpoints: new Map(set.endpoints).set('api', bad) };
  const update = translateEndpointUpdate(result.eds, result.config, result.noEffect, endpointChanges(set, next)!);
  const whole = translateXds(BASE, next, OPTS);
  t.notOk(update.ok, 'the update is rejected');
  const text = update.ok ? [] : update.errors.map(formatRejection);
  t.same(text, whole.ok ? ['(whole translation accepted it)'] : whole.errors.map(formatRejection), 'with the errors of the whole translation');
  t.match(text.join('\n'), /ClusterLoadAssignment "api".*load_balancing_weight/, 'naming the assignment and field');
  const renamed = { ...set, endpoints: new Map(set.endpoints).set('web', assignment('elsewhere', [9100])) };
  const mismatch = translateEndpointUpdate(result.eds, result.config, result.noEffect, endpointChanges(set, renamed)!);
  t.match(mismatch.ok ? '' : mismatch.errors.map(formatRejection).join('\n'), /cluster_name.*"elsewhere" does not match the resource name "web"/, 'an assignment whose cluster_name differs from its name is rejected');
});

t.test('the endpoint cap counts every cluster', async (t) => {
  const { set, result } = applied();
  const ports = Array.from({ length: MAX_ENDPOINTS - 2 + 1 }, (_, i) => 1 + (i % 60000));
  const big = assignment('api', ports);
  const next = { ...set, endpoints: new Map(set.endpoints).set('api', big) };
  const update = translateEndpointUpdate(result.eds, result.config, result.noEffect, endpointChanges(set, next)!);
  t.notOk(update.ok, `${ports.length} + 2 endpoints of the other cluster are over the cap`);
  t.match(update.ok ? '' : update.errors.map(formatRejection).join('\n'), new RegExp(`ClusterLoadAssignment "api".*at most ${MAX_ENDPOINTS} endpoints`), 'named by assignment');
});

t.test('fields without effect are counted as the whole set counts them', async (t) => {
  const { set, result } = applied();
  const policy = { policy: { overprovisioning_factor: { value: 140 } } };
  const withPolicy = { ...set, endpoints: new Map(set.endpoints).set('api', assignment('api', [9000], policy)) };
  const first = translateEndpointUpdate(result.eds, result.config, result.noEffect, endpointChanges(set, withPolicy)!);
  const whole = translateXds(BASE, withPolicy, OPTS);
  t.same(first.ok ? [...first.noEffect] : null, whole.ok ? [...whole.noEffect] : [], 'a field without effect added: counted');
  const both = { ...withPolicy, endpoints: new Map(withPolicy.endpoints).set('web', assignment('web', [9100], policy)) };
  if (!first.ok) return;
  const second = translateEndpointUpdate(result.eds, first.config, first.noEffect, endpointChanges(withPolicy, both)!);
  const wholeBoth = translateXds(BASE, both, OPTS);
  t.same(second.ok ? [...second.noEffect] : null, wholeBoth.ok ? [...wholeBoth.noEffect] : [], 'in a second assignment: two resources');
  const dropped = { ...both, endpoints: new Map(both.endpoints).set('api', assignment('api', [9000])) };
  if (!second.ok) return;
  const third = translateEndpointUpdate(result.eds, second.config, second.noEffect, endpointChanges(both, dropped)!);
  const wholeDropped = translateXds(BASE, dropped, OPTS);
  t.same(third.ok ? [...third.noEffect] : null, wholeDropped.ok ? [...wholeDropped.noEffect] : [], 'taken out of one again: one resource');
});
