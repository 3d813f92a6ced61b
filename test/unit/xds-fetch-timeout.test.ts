// Unit tests for ConfigSource.initial_fetch_timeout in the translation (src/xds/
// translate-context.ts configSource, translateXds `fetchTimeouts` and `gaveUp`): read as
// Envoy reads it (unset: 15 s; 0s: no timeout; the shortest when several resources name
// one), and, once it expired, a listener without its RouteConfiguration serves every
// request 404 (no route) and a cluster without its ClusterLoadAssignment has no endpoints,
// instead of both waiting; the resource replaces them when it arrives.

import t from 'tap';
import { translateXds } from '../../src/xds/translate.js';
import { DEFAULT_FETCH_TIMEOUT_MS } from '../../src/xds/translate-context.js';
import { TypeUrl } from '../../src/xds/protos.js';
import { arr, baseOf, errorsOf, hcmOf, obj, overTheWire, protos, setHcm, valid, type MutableSet, type Obj } from '../helpers/xds.js';

const CONFIG = valid({
  listeners: [{ name: 'in', port: 0, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ name: 'all', match: { prefix: '/' }, route: { cluster: 'api' } }] }] }],
  clusters: [{ name: 'api', endpoints: [{ address: '127.0.0.1', port: 9000 }] }],
});
const BASE = baseOf(CONFIG);

/** The set with the listener's RDS and the cluster's EDS config sources given `timeout`
 *  (undefined: unset). */
function withTimeouts(timeout: Obj | undefined): MutableSet {
  const set = overTheWire(CONFIG);
  const listener = set.listeners.get('in')!;
  const hcm = hcmOf(listener);
  const source = obj(obj(hcm.rds).config_source);
  if (timeout === undefined) delete source.initial_fetch_timeout;
  else source.initial_fetch_timeout = timeout;
  setHcm(listener, hcm);
  const cluster = set.clusters.get('api')!;
  const eds = obj(obj(cluster.eds_cluster_config).eds_config);
  if (timeout === undefined) delete eds.initial_fetch_timeout;
  else eds.initial_fetch_timeout = timeout;
  // As received: encoded and decoded again.
  set.listeners.set('in', protos.decodeAny(protos.encodeAny(TypeUrl.Listener, listener)).message);
  set.clusters.set('api', protos.decodeAny(protos.encodeAny(TypeUrl.Cluster, cluster)).message);
  return set;
}

t.test('initial_fetch_timeout is read as Envoy reads it', async (t) => {
  for (const [label, timeout, want] of [
    ['unset', undefined, DEFAULT_FETCH_TIMEOUT_MS],
    ['2.5 s', { seconds: 2, nanos: 500_000_000 }, 2500],
    ['0s (Istio)', {}, undefined],
  ] as const) {
    const r = translateXds(BASE, withTimeouts(timeout), { ads: true });
    t.same(errorsOf(r), [], `${label}: accepted`);
    if (!r.ok) continue;
    t.equal(r.fetchTimeouts.routes.get('in'), want, `${label}: the listener's RouteConfiguration waits ${want ?? 'as long as it takes'}`);
    t.equal(r.fetchTimeouts.endpoints.get('api'), want, `${label}: the cluster's ClusterLoadAssignment too`);
  }
  t.equal(DEFAULT_FETCH_TIMEOUT_MS, 15_000, "Envoy's default is 15 s");
});

t.test('expired: the listener serves without routes and the cluster without endpoints, until they arrive', async (t) => {
  const set = withTimeouts({ seconds: 1 });
  const missing: MutableSet = { ...set, routes: new Map(), endpoints: new Map() };
  const waiting = translateXds(BASE, missing, { ads: true });
  t.same(waiting.ok ? waiting.warming : null, { listeners: ['in'], clusters: ['api'] }, 'before the timeout: both warm');
  t.same(waiting.ok ? [waiting.config.listeners.length, waiting.config.clusters.length] : null, [0, 0], 'and neither is in the config');

  const gaveUp = { routes: new Set(['in']), endpoints: new Set(['api']) };
  const expired = translateXds(BASE, missing, { ads: true, gaveUp });
  t.same(errorsOf(expired), [], 'after it: accepted');
  if (!expired.ok) return;
  t.same(expired.warming, { listeners: [], clusters: [] }, 'nothing warms');
  t.same(expired.config.clusters.map((c) => [c.name, c.endpoints]), [['api', []]], 'the cluster has no endpoints (503 UH)');
  const routes = expired.config.listeners[0]?.virtual_hosts.flatMap((vh) => vh.routes) ?? [];
  t.equal(routes.length, 1, 'the listener has one route');
  t.notOk(routes.some((r) => r.match.prefix === '/' || (r.match.path !== undefined && !r.match.path.includes(' '))), 'which no request path can match (404 NR)');

  const arrived = translateXds(BASE, set, { ads: true, gaveUp });
  t.same(arrived.ok ? arrived.config.clusters.map((c) => c.endpoints.length) : null, [1], 'once the resources arrive they are used');
  t.same(arrived.ok ? arr(arrived.config.listeners[0].virtual_hosts.flatMap((vh) => vh.routes)).map((r) => r.name) : null, ['all'], 'routes too');
});
