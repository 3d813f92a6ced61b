// Envoy's ADS semantics in the sidecar's xDS client, end to end, against a scripted ADS
// server (test/helpers/xds.ts) that sends exactly what each case needs: clusters before
// any listener (accepted; the sidecar starts once a listener has its routes); a response
// mixing a valid and an invalid listener (the valid one applied, the NACK names the
// other and carries the previous version); a route to a cluster not sent yet (503 NC,
// then 200 once it arrives); a cluster removed while a route still names it (503 NC);
// an empty endpoint list (503 UH); a resource not asked for (ignored, no NACK); an identical resend (ACK, no reload); a name sent
// twice (NACKed, the previous version stays); an invalid new version of an accepted
// cluster (the previous one keeps serving); a listener on a port another process holds
// (NACKed, after the check that runs before applying); a route whose
// cluster_not_found_response_code is NOT_FOUND (404 NC); a field the protos do not know
// (accepted, listed, counted); and subscriptions that follow
// only what was accepted. Everything on 127.0.0.1, port 0; processes ended by pid.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { TypeUrl } from '../../src/xds/protos.js';
import { admin, namedUpstream, request, startRemora, waitUntil, type RemoraProcess } from '../helpers/remora.js';
import { protos, startScriptedAds, twoClusterResources, type Obj } from '../helpers/xds.js';

const until = (what: string, fn: () => Promise<boolean>, ms = 8000) => waitUntil(what, fn, ms, 50);

/** A copy of `l` named `name`; `protocol: UDP` makes it one Remora must reject. */
function listenerLike(l: Obj, name: string, o: { invalid?: boolean; port?: number; rds?: string } = {}): Obj {
  const copy = structuredClone(l);
  copy.name = name;
  const sa = (copy.address as Obj).socket_address as Obj;
  if (o.invalid === true) sa.protocol = 'UDP';
  if (o.port !== undefined) sa.port_value = o.port;
  if (o.rds !== undefined) {
    // The listener's HCM names another RouteConfiguration.
    const filter = ((copy.filter_chains as Obj[])[0].filters as Obj[])[0];
    const hcm = protos.decodeAny(filter.typed_config as never).message;
    (hcm.rds as Obj).route_config_name = o.rds;
    filter.typed_config = protos.encodeAny(TypeUrl.HttpConnectionManager, hcm);
  }
  return copy;
}

const message = (req: Obj): string => String((req.error_detail as Obj | undefined)?.message ?? '');

t.test('ADS semantics: per-resource NACKs, warming, NC, removals, apply-then-ACK, identical resends, duplicates, subscriptions', async (t) => {
  const [a, b] = await Promise.all([namedUpstream('a'), namedUpstream('b')]);
  const ads = await startScriptedAds();
  const r = twoClusterResources(a.port, b.port);
  let sidecar: RemoraProcess | null = null;
  const squatter = http.createServer();
  t.teardown(async () => {
    await sidecar?.stop();
    await ads.close();
    await Promise.all([a.close(), b.close()]);
    squatter.close();
  });

  // A sidecar that waits for its first config (startRemora resolves when it serves).
  const starting = startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    xds: { servers: [`127.0.0.1:${ads.port}`], node: { id: 'sidecar-ads', cluster: 'web' }, initial_fetch_timeout_ms: 60_000 },
  });
  starting.catch(() => {});
  await ads.waitFor((q) => q.type_url === TypeUrl.Cluster);

  // Clusters before any listener: accepted (ACK), nothing served yet.
  const cds1 = ads.push(TypeUrl.Cluster, 'c1', [r.a]);
  const cdsAck = await ads.answer(cds1);
  t.equal(message(cdsAck), '', `clusters sent before any listener are ACKed (${message(cdsAck)})`);
  t.equal(cdsAck.version_info, 'c1', 'with their version');

  // One response, a valid and an invalid listener: the valid one is accepted (and warms
  // for its routes), the NACK names only the invalid one and carries the previous version.
  const lds1 = ads.push(TypeUrl.Listener, 'l1', [r.listener, listenerLike(r.listener, 'bad', { invalid: true })]);
  const ldsNack = await ads.answer(lds1);
  t.match(message(ldsNack), /Listener "bad" address\.socket_address\.protocol/, `the NACK names the invalid listener and its field (${message(ldsNack)})`);
  t.notMatch(message(ldsNack), /Listener "main"/, 'and not the valid one');
  t.equal(ldsNack.version_info, '', 'a NACK carries the previous accepted version (none yet)');
  const rdsAsk = await ads.waitFor((q) => q.type_url === TypeUrl.RouteConfiguration && (q.resource_names as string[]).includes('main'));
  t.same(rdsAsk.resource_names, ['main'], 'the RouteConfiguration of the accepted listener is asked for, and nothing for the rejected one beyond it');
  // Routes to a (known) and b (not sent yet).
  ads.push(TypeUrl.RouteConfiguration, 'r1', [r.routes]);
  sidecar = await starting;
  const port = sidecar.ports.main;
  t.ok(port > 0, 'the sidecar serves once a listener has its routes');
  t.same(Object.keys(sidecar.ports), ['main'], 'only the valid listener is served');
  t.equal((await request(port, { agent: false })).headers['x-upstream'], 'a', 'traffic reaches cluster a');
  let toB = await request(port, { path: '/b', agent: false });
  t.equal(toB.status, 503, 'a route to a cluster CDS has not sent answers 503');
  t.equal(toB.headers['x-remora-flags'], 'NC', 'with flag NC');

  // The cluster arrives: the same route answers 200.
  const cds2 = ads.push(TypeUrl.Cluster, 'c2', [r.a, r.b]);
  t.equal(message(await ads.answer(cds2)), '', 'the new cluster is ACKed');
  toB = await request(port, { path: '/b', agent: false });
  t.equal(toB.headers['x-upstream'], 'b', 'and, ACKed only once applied, the route to it answers 200 at once');

  // Removal in any order: a cluster a route still names can go; its route answers NC.
  const cds3 = ads.push(TypeUrl.Cluster, 'c3', [r.b]);
  t.equal(message(await ads.answer(cds3)), '', 'removing a cluster still routed to is ACKed');
  const toA = await request(port, { agent: false });
  t.equal(toA.status, 503, 'its route answers 503');
  t.equal(toA.headers['x-remora-flags'], 'NC', 'with flag NC');

  // Scaled to zero: an EDS cluster with an empty assignment answers 503 UH.
  const cds4 = ads.push(TypeUrl.Cluster, 'c4', [r.aEds, r.b]);
  await ads.waitFor((q) => q.type_url === TypeUrl.ClusterLoadAssignment && (q.resource_names as string[]).includes('a'));
  const eds1 = ads.push(TypeUrl.ClusterLoadAssignment, 'e1', [{ ...r.aAssignment, endpoints: [] }]);
  t.equal(message(await ads.answer(cds4)), '', 'the EDS cluster is ACKed');
  t.equal(message(await ads.answer(eds1)), '', 'an empty endpoint list is ACKed');
  const empty = await request(port, { agent: false });
  t.equal(empty.status, 503, 'a cluster without endpoints answers 503');
  t.equal(empty.headers['x-remora-flags'], 'UH', 'with flag UH');
  const eds2 = ads.push(TypeUrl.ClusterLoadAssignment, 'e2', [r.aAssignment]);
  t.equal(message(await ads.answer(eds2)), '', 'the endpoints back: ACKed');
  t.equal((await request(port, { agent: false })).headers['x-upstream'], 'a', 'and served');
  // A resource nobody asked for (an assignment Remora would reject: priority 7) is
  // ignored, as Envoy ignores it: the response is ACKed, nothing changes.
  const stray = { cluster_name: 'not-asked-for', endpoints: [{ priority: 7, lb_endpoints: [] }] };
  const eds3 = ads.push(TypeUrl.ClusterLoadAssignment, 'e3', [r.aAssignment, stray]);
  t.equal(message(await ads.answer(eds3)), '', 'a response with a resource not asked for is ACKed: that one is ignored, not checked');
  t.equal((await request(port, { agent: false })).headers['x-upstream'], 'a', 'and the cluster serves as before');

  // An identical resend: ACKed, no reload.
  const versionOf = async () => (JSON.parse((await admin(sidecar!.adminPort, '/config_dump')).text) as { version: number }).version;
  const before = await versionOf();
  const cds5 = ads.push(TypeUrl.Cluster, 'c4', [r.aEds, r.b]);
  const same = await ads.answer(cds5);
  t.equal(message(same), '', 'an identical resend is ACKed');
  t.equal(same.version_info, 'c4', 'with its version');
  t.equal(await versionOf(), before, `and changes nothing: the config version stays ${before}`);

  // A name sent twice: NACKed by name; the previous version stays, the rest applies.
  const bMoved = structuredClone(r.b);
  (((((bMoved.load_assignment as Obj).endpoints as Obj[])[0].lb_endpoints as Obj[])[0].endpoint as Obj).address as Obj).socket_address = { address: '127.0.0.1', port_value: a.port };
  const cds6 = ads.push(TypeUrl.Cluster, 'c6', [r.aEds, r.b, bMoved]);
  const dup = await ads.answer(cds6);
  t.match(message(dup), /Cluster "b": sent 2 times in one response/, `a duplicate name is NACKed by name (${message(dup)})`);
  t.equal(dup.version_info, 'c4', 'the NACK carries the previous accepted version');
  t.equal((await request(port, { path: '/b', agent: false })).headers['x-upstream'], 'b', 'the previous version of the duplicated cluster keeps serving');

  // An invalid new version of an accepted cluster: NACKed; the previous one keeps serving.
  const bBad = { ...r.b, lb_subset_config: { fallback_policy: 'ANY_ENDPOINT' } };
  const cds7 = ads.push(TypeUrl.Cluster, 'c7', [r.aEds, bBad]);
  const bad = await ads.answer(cds7);
  t.match(message(bad), /Cluster "b" lb_subset_config/, `an invalid cluster is NACKed with its field (${message(bad)})`);
  t.equal((await request(port, { path: '/b', agent: false })).headers['x-upstream'], 'b', 'its previous version keeps serving');

  // A listener on a port another process holds: NACKed by name before anything is
  // applied (apply, then ACK); the other listeners keep serving.
  await new Promise<void>((res) => squatter.listen(0, '127.0.0.1', res));
  const busy = (squatter.address() as AddressInfo).port;
  const lds2 = ads.push(TypeUrl.Listener, 'l2', [r.listener, listenerLike(r.listener, 'taken', { port: busy })]);
  const portNack = await ads.answer(lds2);
  t.match(message(portNack), new RegExp(`Listener "taken" port: cannot bind 127\\.0\\.0\\.1:${busy}`), `the NACK names the listener and the busy port (${message(portNack)})`);
  t.notMatch(message(portNack), /Listener "main"/, 'and only that listener');
  t.equal((await request(port, { agent: false })).headers['x-upstream'], 'a', 'traffic continues on the listener that binds');

  // cluster_not_found_response_code: a route to a cluster that is not known answers the
  // status it names, still with flag NC.
  const routes404 = structuredClone(r.routes);
  const toGone = (((routes404.virtual_hosts as Obj[])[0].routes as Obj[])[1].route as Obj);
  toGone.cluster = 'gone';
  toGone.cluster_not_found_response_code = 'NOT_FOUND';
  const rds2 = ads.push(TypeUrl.RouteConfiguration, 'r2', [routes404]);
  t.equal(message(await ads.answer(rds2)), '', 'a route with cluster_not_found_response_code NOT_FOUND is ACKed');
  const gone = await request(port, { agent: false });
  t.same([gone.status, gone.headers['x-remora-flags']], [404, 'NC'], `a request to the unknown cluster: 404, flag NC (saw ${gone.status} ${String(gone.headers['x-remora-flags'])})`);
  const rds3 = ads.push(TypeUrl.RouteConfiguration, 'r3', [r.routes]);
  t.equal(message(await ads.answer(rds3)), '', 'the routes back');

  // A field this Remora's protos do not know: accepted without it (Envoy's default),
  // listed in /config_dump and counted in /metrics.
  const bAny = protos.encodeAny(TypeUrl.Cluster, r.b);
  const bUnknown = { type_url: bAny.type_url, value: Buffer.concat([Buffer.from(bAny.value), Buffer.from([0xf8, 0xf0, 0x04, 0x01])]) }; // field 9999 = varint 1
  const cds8 = ads.push(TypeUrl.Cluster, 'c8', [r.aEds, bUnknown as unknown as Obj]);
  t.equal(message(await ads.answer(cds8)), '', 'a cluster with an unknown field is ACKed');
  const dumped = JSON.parse((await admin(sidecar.adminPort, '/config_dump')).text) as { xds: { unknown_fields: Record<string, string[]> } };
  t.same(dumped.xds.unknown_fields, { 'Cluster "b"': ['#9999'] }, '/config_dump names the field');
  t.match((await admin(sidecar.adminPort, '/metrics')).text, /^remora_xds_unknown_fields_total 1$/m, 'and /metrics counts it');
  // Fields accepted without effect, per field: the encoder's locality on every assignment.
  t.match((await admin(sidecar.adminPort, '/metrics')).text, /^remora_xds_fields_without_effect\{field="ClusterLoadAssignment\.endpoints\.locality"\} [1-9]\d*$/m,
    '/metrics counts the fields without effect of the applied resources');
  t.equal((await request(port, { path: '/b', agent: false })).headers['x-upstream'], 'b', 'the cluster serves');

  // Subscriptions follow what is accepted: a rejected listener's RouteConfiguration is not
  // asked for.
  const lds3 = ads.push(TypeUrl.Listener, 'l3', [r.listener, listenerLike(r.listener, 'ghostly', { invalid: true, rds: 'ghost' })]);
  t.match(message(await ads.answer(lds3)), /Listener "ghostly"/, 'the listener is NACKed');
  await new Promise((res) => setTimeout(res, 200));
  const asked = ads.requests.filter((q) => q.type_url === TypeUrl.RouteConfiguration).flatMap((q) => q.resource_names as string[]);
  t.notOk(asked.includes('ghost'), `the RouteConfiguration only the rejected listener names is never subscribed to (asked: ${[...new Set(asked)].join(', ')})`);
  t.equal((await request(port, { agent: false })).headers['x-upstream'], 'a', 'and traffic flows');
});
