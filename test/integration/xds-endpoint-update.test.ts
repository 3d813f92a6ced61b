// Endpoint-only xDS updates end to end: a sidecar (2 workers) against a scripted
// state-of-the-world ADS server (test/helpers/xds.ts). A ClusterLoadAssignment that
// changes alone is applied without a new config version: every worker reports the next
// endpoints revision in /workers, traffic moves to the new endpoints, the pool of an
// endpoint that stays keeps its upstream connection, /config_dump shows the new list. An
// invalid assignment is NACKed by name and the endpoints in use keep serving; an empty one
// (scaled to zero) answers 503 UH; an identical resend changes nothing; a cluster change
// still reloads (a new version), and endpoint updates after it are applied in place again.
// Everything on 127.0.0.1, port 0; processes ended by pid.

import http from 'node:http';
import t from 'tap';
import { TypeUrl } from '../../src/xds/protos.js';
import { admin, namedUpstream, request, startRemora, waitUntil, type RemoraProcess } from '../helpers/remora.js';
import { startScriptedAds, twoClusterResources, type Obj } from '../helpers/xds.js';

const message = (req: Obj): string => String((req.error_detail as Obj | undefined)?.message ?? '');

/** Cluster a's assignment with one endpoint per port. */
function assignment(ports: readonly number[], weight?: number): Obj {
  return {
    cluster_name: 'a',
    endpoints: [{
      lb_endpoints: ports.map((port) => ({
        endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } },
        ...(weight !== undefined ? { load_balancing_weight: { value: weight } } : {}),
      })),
    }],
  };
}

interface WorkersReply {
  workers: { state: string; version: number; endpoints_revision: number; heap_used_mb: number | null; heap_total_mb: number | null }[];
}

t.test('EDS updates apply in place: no new version, pools that stay keep their connections, NACKs, scale to zero', async (t) => {
  const [a, b, c] = await Promise.all([namedUpstream('a'), namedUpstream('b'), namedUpstream('c')]);
  let aConnections = 0;
  a.server.on('connection', () => aConnections++);
  const ads = await startScriptedAds();
  const r = twoClusterResources(a.port, b.port);
  let sidecar: RemoraProcess | null = null;
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(async () => {
    keepAlive.destroy();
    await sidecar?.stop();
    await ads.close();
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  const starting = startRemora({
    workers: 2,
    admin: { address: '127.0.0.1', port: 0 },
    xds: { servers: [`127.0.0.1:${ads.port}`], node: { id: 'sidecar-eds', cluster: 'web' }, initial_fetch_timeout_ms: 60_000 },
  });
  starting.catch(() => {});
  await ads.waitFor((q) => q.type_url === TypeUrl.Cluster);
  ads.push(TypeUrl.Cluster, 'c1', [r.aEds, r.b]);
  await ads.waitFor((q) => q.type_url === TypeUrl.ClusterLoadAssignment);
  ads.push(TypeUrl.ClusterLoadAssignment, 'e1', [assignment([a.port])]);
  ads.push(TypeUrl.Listener, 'l1', [r.listener]);
  await ads.waitFor((q) => q.type_url === TypeUrl.RouteConfiguration);
  ads.push(TypeUrl.RouteConfiguration, 'r1', [r.routes]);
  sidecar = await starting;
  const { adminPort } = sidecar;
  const port = sidecar.ports.main;

  const workers = async (): Promise<WorkersReply['workers']> => (JSON.parse((await admin(adminPort, '/workers')).text) as WorkersReply).workers;
  const started = await workers();
  const version = started[0].version;
  t.same(started.map((w) => [w.state, w.version, w.endpoints_revision]), [['listening', version, 0], ['listening', version, 0]], 'two workers on one version, endpoints revision 0');
  t.ok(started.every((w) => (w.heap_used_mb ?? 0) > 0 && (w.heap_total_mb ?? 0) >= (w.heap_used_mb ?? 0)), `each worker reports its V8 heap (${JSON.stringify(started.map((w) => [w.heap_used_mb, w.heap_total_mb]))})`);
  /** Every worker runs config `v` with endpoints revision `rev`. */
  const runs = (v: number, rev: number) =>
    waitUntil(`every worker on version ${v}, endpoints revision ${rev}`, async () => (await workers()).every((w) => w.version === v && w.endpoints_revision === rev), 8000, 20);
  /** Who answers `/` (its name, or status and flags), on a fresh connection or the one kept-alive connection. */
  const who = async (kept = false): Promise<string> => {
    const res = await request(port, { path: '/', agent: kept ? keepAlive : false });
    return res.status === 200 ? res.text : `${res.status} ${String(res.headers['x-remora-flags'])}`;
  };
  const seen = async (n: number, kept = false): Promise<string[]> => {
    const names = new Set<string>();
    for (let i = 0; i < n; i++) names.add(await who(kept));
    return [...names].sort();
  };

  t.same(await seen(3, true), ['a'], 'traffic to a, over one kept-alive connection');
  t.equal(aConnections, 1, 'one upstream connection to a');

  // One endpoint added: applied in place.
  const e2 = ads.push(TypeUrl.ClusterLoadAssignment, 'e2', [assignment([a.port, c.port])]);
  t.equal(message(await ads.answer(e2)), '', 'the assignment with a new endpoint is ACKed');
  await runs(version, 1);
  t.pass('every worker runs endpoints revision 1 on the same config version');
  t.same(await seen(8, true), ['a', 'c'], 'traffic reaches both endpoints');
  t.equal(aConnections, 1, 'the endpoint that stayed kept its pooled upstream connection');
  const dump = JSON.parse((await admin(adminPort, '/config_dump')).text) as { version: number; config: { clusters: { name: string; endpoints: { port: number }[] }[] } };
  t.equal(dump.version, version, '/config_dump: the same version');
  t.same(dump.config.clusters.find((cl) => cl.name === 'a')?.endpoints.map((ep) => ep.port), [a.port, c.port], '/config_dump: the new endpoint list');

  // Invalid: NACKed by name; the endpoints in use keep serving.
  const e3 = ads.push(TypeUrl.ClusterLoadAssignment, 'e3', [assignment([c.port], 3)]);
  const nack = await ads.answer(e3);
  t.match(message(nack), /ClusterLoadAssignment "a" .*load_balancing_weight/, `the NACK names the assignment and field (${message(nack)})`);
  t.equal(nack.version_info, 'e2', 'and carries the version in effect');
  t.same((await workers()).map((w) => w.endpoints_revision), [1, 1], 'nothing applied');
  t.same(await seen(6), ['a', 'c'], 'the endpoints in use keep serving');

  // An identical resend changes nothing.
  const e4 = ads.push(TypeUrl.ClusterLoadAssignment, 'e4', [assignment([a.port, c.port])]);
  t.equal(message(await ads.answer(e4)), '', 'an identical resend is ACKed');
  t.same((await workers()).map((w) => [w.version, w.endpoints_revision]), [[version, 1], [version, 1]], 'and applies nothing');

  // Scaled to zero, then back.
  const e5 = ads.push(TypeUrl.ClusterLoadAssignment, 'e5', [assignment([])]);
  t.equal(message(await ads.answer(e5)), '', 'an empty assignment is ACKed');
  await runs(version, 2);
  t.equal(await who(), '503 UH', 'a cluster with no endpoints answers 503 UH');
  const e6 = ads.push(TypeUrl.ClusterLoadAssignment, 'e6', [assignment([c.port])]);
  t.equal(message(await ads.answer(e6)), '', 'endpoints again');
  await runs(version, 3);
  t.same(await seen(6), ['c'], 'traffic to the one endpoint left');

  // A cluster change reloads (a new version); endpoint updates after it are in place again.
  const bMoved = structuredClone(r.b);
  ((((bMoved.load_assignment as Obj).endpoints as Obj[])[0].lb_endpoints as Obj[])[0].endpoint as Obj).address = { socket_address: { address: '127.0.0.1', port_value: c.port } };
  const c2 = ads.push(TypeUrl.Cluster, 'c2', [r.aEds, bMoved]);
  t.equal(message(await ads.answer(c2)), '', 'a cluster change is ACKed');
  await runs(version + 1, 0);
  t.pass('a cluster change is a new config version');
  t.equal((await request(port, { path: '/b', agent: false })).text, 'c', 'and applied');
  const e7 = ads.push(TypeUrl.ClusterLoadAssignment, 'e7', [assignment([a.port])]);
  t.equal(message(await ads.answer(e7)), '', 'the next endpoint update is ACKed');
  await runs(version + 1, 1);
  t.same(await seen(4), ['a'], 'applied in place on the new version');
});
