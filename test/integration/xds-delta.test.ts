// Incremental (delta) xDS end to end: a sidecar with xds.api_type delta against a
// scripted DeltaAggregatedResources server (test/helpers/xds.ts). The first requests
// subscribe to `*` for listeners and clusters and carry the node; the listener's
// RouteConfiguration is subscribed to by name; a response carrying one cluster changes
// that one and leaves the others as they were; removed_resources removes a cluster (its
// route answers 503 NC); an invalid resource is NACKed by name with the response's nonce
// while the rest applies; after the stream is dropped the sidecar reconnects and tells
// the server, in initial_resource_versions, the version of every resource it holds, and
// keeps serving meanwhile; a route configuration no longer referenced is unsubscribed.
// Everything on 127.0.0.1, port 0; processes ended by pid.

import t from 'tap';
import { TypeUrl } from '../../src/xds/protos.js';
import { namedUpstream, request, startRemora, waitUntil, type RemoraProcess } from '../helpers/remora.js';
import { startScriptedAds, twoClusterResources, type Obj } from '../helpers/xds.js';

const message = (req: Obj): string => String((req.error_detail as Obj | undefined)?.message ?? '');

t.test('delta xDS: wildcard and named subscriptions, partial updates, removals, NACKs, reconnect with versions', async (t) => {
  const [a, b, c] = await Promise.all([namedUpstream('a'), namedUpstream('b'), namedUpstream('c')]);
  const ads = await startScriptedAds({ delta: true });
  let sidecar: RemoraProcess | null = null;
  t.teardown(async () => {
    await sidecar?.stop();
    await ads.close();
    await Promise.all([a.close(), b.close(), c.close()]);
  });
  const r1 = twoClusterResources(a.port, b.port);
  const r2 = twoClusterResources(a.port, c.port);

  const starting = startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    xds: { servers: [`127.0.0.1:${ads.port}`], node: { id: 'sidecar-delta', cluster: 'web' }, initial_fetch_timeout_ms: 60_000, api_type: 'delta' },
  });
  starting.catch(() => {});
  const lds = await ads.waitFor((q) => q.type_url === TypeUrl.Listener);
  const cds = await ads.waitFor((q) => q.type_url === TypeUrl.Cluster);
  t.same(lds.resource_names_subscribe, ['*'], 'listeners: a wildcard subscription');
  t.same(cds.resource_names_subscribe, ['*'], 'clusters: a wildcard subscription');
  t.equal((ads.requests[0].node as Obj | undefined)?.id, 'sidecar-delta', 'the first request carries the node');

  const c1 = ads.pushDelta(TypeUrl.Cluster, 's1', [
    { name: 'a', version: 'a1', resource: r1.a },
    { name: 'b', version: 'b1', resource: r1.b },
  ]);
  t.equal(message(await ads.answer(c1)), '', 'clusters ACKed');
  ads.pushDelta(TypeUrl.Listener, 's1', [{ name: 'main', version: 'l1', resource: r1.listener }]);
  const rds = await ads.waitFor((q) => q.type_url === TypeUrl.RouteConfiguration);
  t.same(rds.resource_names_subscribe, ['main'], 'the route configuration is subscribed to by name');
  ads.pushDelta(TypeUrl.RouteConfiguration, 's1', [{ name: 'main', version: 'r1', resource: r1.routes }]);
  sidecar = await starting;
  const port = sidecar.ports.main;
  const upstream = async (path: string) => {
    const res = await request(port, { path, agent: false });
    return res.status === 200 ? String(res.headers['x-upstream']) : `${res.status} ${String(res.headers['x-remora-flags'])}`;
  };
  t.equal(await upstream('/'), 'a', 'traffic to a');
  t.equal(await upstream('/b'), 'b', 'and to b');

  // Only b changes (to upstream c): a is not in the response and stays.
  const c2 = ads.pushDelta(TypeUrl.Cluster, 's2', [{ name: 'b', version: 'b2', resource: r2.b }]);
  t.equal(message(await ads.answer(c2)), '', 'a response with one cluster is ACKed');
  t.equal(await upstream('/b'), 'c', 'that cluster changed');
  t.equal(await upstream('/'), 'a', 'the cluster left out of the response is unchanged');

  // An invalid resource: NACKed by name, with the response's nonce; the rest applies.
  const bad = structuredClone(r1.a) as Obj;
  bad.name = 'bad';
  bad.lb_subset_config = { fallback_policy: 'ANY_ENDPOINT' };
  const c3 = ads.pushDelta(TypeUrl.Cluster, 's3', [{ name: 'bad', version: 'x1', resource: bad }, { name: 'b', version: 'b3', resource: r1.b }]);
  const nack = await ads.answer(c3);
  t.match(message(nack), /Cluster "bad" lb_subset_config/, `the NACK names the invalid cluster (${message(nack)})`);
  t.equal(nack.response_nonce, c3, 'and answers that response');
  t.equal(await upstream('/b'), 'b', 'the valid cluster of the same response is applied');

  // removed_resources: cluster b goes; its route answers 503 NC.
  const c4 = ads.pushDelta(TypeUrl.Cluster, 's4', [], ['b']);
  t.equal(message(await ads.answer(c4)), '', 'a removal is ACKed');
  t.equal(await upstream('/b'), '503 NC', 'the removed cluster\'s route answers 503 NC');
  t.equal(await upstream('/'), 'a', 'the other cluster serves');

  // The stream drops: traffic goes on; the new stream says which versions the sidecar holds.
  const before = ads.requests.length;
  ads.dropStreams();
  const again = await ads.waitFor((q) => ads.requests.indexOf(q) >= before && q.type_url === TypeUrl.Cluster, 15_000);
  t.same(again.resource_names_subscribe, ['*'], 'the new stream subscribes again');
  t.same(again.initial_resource_versions, { a: 'a1' }, 'with the version of each cluster it holds (b was removed)');
  const againLds = await ads.waitFor((q) => ads.requests.indexOf(q) >= before && q.type_url === TypeUrl.Listener, 15_000);
  t.same(againLds.initial_resource_versions, { main: 'l1' }, 'and of each listener');
  const againRds = await ads.waitFor((q) => ads.requests.indexOf(q) >= before && q.type_url === TypeUrl.RouteConfiguration, 15_000);
  t.same([againRds.resource_names_subscribe, againRds.initial_resource_versions], [['main'], { main: 'r1' }], 'and of its route configuration');
  t.equal(await upstream('/'), 'a', 'traffic flows while it reconnects');

  // The listener now uses another route configuration: "main" is unsubscribed.
  const listener2 = structuredClone(r1.listener) as Obj;
  const { protos } = await import('../helpers/xds.js');
  const filter = ((((listener2.filter_chains as Obj[])[0].filters as Obj[])[0]));
  const hcm = protos.decodeAny(filter.typed_config as never).message;
  (hcm.rds as Obj).route_config_name = 'main-v2';
  filter.typed_config = protos.encodeAny(TypeUrl.HttpConnectionManager, hcm);
  ads.pushDelta(TypeUrl.Listener, 's5', [{ name: 'main', version: 'l2', resource: listener2 }]);
  const change = await ads.waitFor((q) => q.type_url === TypeUrl.RouteConfiguration && Array.isArray(q.resource_names_subscribe) && (q.resource_names_subscribe as string[]).includes('main-v2'));
  t.same(change.resource_names_subscribe, ['main-v2'], 'the new route configuration is subscribed to');
  const routesV2 = structuredClone(r1.routes) as Obj;
  routesV2.name = 'main-v2';
  ads.pushDelta(TypeUrl.RouteConfiguration, 's6', [{ name: 'main-v2', version: 'r2', resource: routesV2 }]);
  const dropped = await ads.waitFor((q) => q.type_url === TypeUrl.RouteConfiguration && Array.isArray(q.resource_names_unsubscribe) && (q.resource_names_unsubscribe as string[]).length > 0);
  t.same(dropped.resource_names_unsubscribe, ['main'], 'and the old one, no longer referenced, unsubscribed');
  await waitUntil('the new routes to apply', async () => (await upstream('/')) === 'a', 5000);
  t.equal(await upstream('/'), 'a', 'traffic through the new route configuration');
});
