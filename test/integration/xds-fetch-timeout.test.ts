// ConfigSource.initial_fetch_timeout end to end, as Envoy applies it: a sidecar whose
// listener's RouteConfiguration and cluster's ClusterLoadAssignment never arrive (a
// scripted ADS server that holds them back, test/helpers/xds.ts) starts serving once
// their 1-second timeouts expire: the listener answers 404 NR (no routes), logged; the
// route configuration, when it comes, routes to the cluster, which answers 503 UH (no
// endpoints) until its assignment comes too. Everything on 127.0.0.1, port 0; processes
// ended by pid.

import t from 'tap';
import { TypeUrl } from '../../src/xds/protos.js';
import { namedUpstream, request, startRemora, type RemoraProcess } from '../helpers/remora.js';
import { hcmOf, obj, setHcm, startScriptedAds, twoClusterResources, type Obj } from '../helpers/xds.js';

const message = (req: Obj): string => String((req.error_detail as Obj | undefined)?.message ?? '');

t.test('initial_fetch_timeout: a listener serves without routes, a cluster without endpoints, until they arrive', async (t) => {
  const [a, b] = await Promise.all([namedUpstream('a'), namedUpstream('b')]);
  const ads = await startScriptedAds();
  let sidecar: RemoraProcess | null = null;
  t.teardown(async () => {
    await sidecar?.stop();
    await ads.close();
    await Promise.all([a.close(), b.close()]);
  });
  const r = twoClusterResources(a.port, b.port);
  const ONE_SECOND = { seconds: 1 };
  const listener = structuredClone(r.listener);
  const hcm = hcmOf(listener);
  obj(obj(hcm.rds).config_source).initial_fetch_timeout = ONE_SECOND;
  setHcm(listener, hcm);
  const aEds = structuredClone(r.aEds);
  obj(obj(aEds.eds_cluster_config).eds_config).initial_fetch_timeout = ONE_SECOND;

  const startedAt = Date.now();
  const starting = startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    xds: { servers: [`127.0.0.1:${ads.port}`], node: { id: 'sidecar-fetch-timeout', cluster: 'web' }, initial_fetch_timeout_ms: 60_000 },
  });
  starting.catch(() => {});
  await ads.waitFor((q) => q.type_url === TypeUrl.Cluster);
  const cds = ads.push(TypeUrl.Cluster, 'c1', [aEds, r.b]);
  t.equal(message(await ads.answer(cds)), '', 'clusters ACKed (the EDS one warms)');
  const lds = ads.push(TypeUrl.Listener, 'l1', [listener]);
  t.equal(message(await ads.answer(lds)), '', 'the listener ACKed (it warms: no routes yet)');
  await ads.waitFor((q) => q.type_url === TypeUrl.RouteConfiguration && (q.resource_names as string[] | undefined)?.includes('main') === true);
  sidecar = await starting;
  const waited = Date.now() - startedAt;
  t.ok(waited >= 1000, `it serves only once the 1-s timeouts expired (after ${waited} ms)`);
  const port = sidecar.ports.main;
  const answer = async (path: string): Promise<string> => {
    const res = await request(port, { path, agent: false });
    return res.status === 200 ? res.text : `${res.status} ${String(res.headers['x-remora-flags'])}`;
  };
  t.equal(await answer('/'), '404 NR', 'without its RouteConfiguration the listener answers 404 NR');
  t.match(sidecar.output(), /RouteConfiguration \\?"main\\?" did not arrive within its initial_fetch_timeout/, 'logged');

  const rds = ads.push(TypeUrl.RouteConfiguration, 'r1', [r.routes]);
  t.equal(message(await ads.answer(rds)), '', 'the route configuration, late, is ACKed');
  t.equal(await answer('/b'), 'b', 'and applied: a static cluster answers');
  t.equal(await answer('/'), '503 UH', 'the EDS cluster has no endpoints yet: 503 UH');
  const eds = ads.push(TypeUrl.ClusterLoadAssignment, 'e1', [r.aAssignment]);
  t.equal(message(await ads.answer(eds)), '', 'its assignment, late, is ACKed');
  t.equal(await answer('/'), 'a', 'and applied');
});
