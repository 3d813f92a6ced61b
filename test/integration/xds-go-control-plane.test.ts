// A fresh sidecar bootstrapping from go-control-plane's example snapshot, end to end, in
// both ADS variants its server speaks, with its cache's versioning: state of the world
// (every response of the snapshot carries its version, "1", which each ACK echoes) and
// delta (each resource versioned by the SHA-256 of its encoding, the snapshot version as
// system_version_info; after a reconnect the sidecar tells the server those versions in
// initial_resource_versions, so an unchanged snapshot is not resent). The resources
// (test/helpers/go-control-plane.ts): listener_0, whose HttpConnectionManager takes
// local_route from an api_config_source naming the bootstrap's xds_cluster (fetched on the
// ADS stream, counted without effect), local_route sending "/" to example_proxy_cluster
// with the upstream's host name as Host, and example_proxy_cluster, LOGICAL_DNS, V4_ONLY,
// connect_timeout 5s, whose `localhost` a test DNS server (test/helpers/dns-server.ts)
// resolves. Every response is ACKed and traffic reaches the upstream.
// Everything on 127.0.0.1, port 0; processes ended by pid.

import t, { type Test } from 'tap';
import { TypeUrl } from '../../src/xds/protos.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import {
  GCP_CLUSTER, GCP_LISTENER, GCP_ROUTE, GCP_UPSTREAM_HOST, gcpCluster, gcpListener, gcpRoutes, resourceVersion,
} from '../helpers/go-control-plane.js';
import { admin, request, startRemora, startUpstream, waitUntil, type RemoraProcess } from '../helpers/remora.js';
import { startScriptedAds, type Obj, type ScriptedAds } from '../helpers/xds.js';

const message = (req: Obj): string => String((req.error_detail as Obj | undefined)?.message ?? '');
const names = (q: Obj, key: 'resource_names' | 'resource_names_subscribe'): string[] => (q[key] as string[] | undefined) ?? [];
const API_CONFIG_SOURCE = 'ConfigSource.api_config_source (fetched on the ADS stream)';

/** The upstream (answers with the Host it got) and a DNS server that resolves `localhost`. */
async function fixtures(t: Test): Promise<{ port: number; hosts: string[]; dns: TestDnsServer }> {
  const hosts: string[] = [];
  const up = await startUpstream((req, res) => {
    hosts.push(String(req.headers.host));
    req.resume();
    res.end('example upstream');
  });
  const dns = await startDnsServer();
  dns.set(GCP_UPSTREAM_HOST, ['127.0.0.1']);
  t.teardown(async () => {
    await dns.close();
    await up.close();
  });
  return { port: up.port, hosts, dns };
}

function startSidecar(ads: ScriptedAds, apiType: 'sotw' | 'delta'): Promise<RemoraProcess> {
  const starting = startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    xds: { servers: [`127.0.0.1:${ads.port}`], node: { id: 'test-id', cluster: 'test-cluster' }, initial_fetch_timeout_ms: 60_000, ...(apiType === 'delta' ? { api_type: 'delta' } : {}) },
  });
  starting.catch(() => {});
  return starting;
}

/** Traffic through listener_0 reaches the upstream as `localhost` once the cluster's name
 *  has resolved (until then its requests answer 503 UH). */
async function trafficFlows(t: Test, sidecar: RemoraProcess, hosts: string[]): Promise<void> {
  const port = sidecar.ports[GCP_LISTENER];
  let last = '';
  await waitUntil('traffic through listener_0', async () => {
    try {
      const r = await request(port, { path: '/docs', headers: { host: 'example.test' }, agent: false });
      last = `${r.status} ${r.text}`;
    } catch (err) {
      last = `${err instanceof Error ? err.message : String(err)}; sidecar output:\n${sidecar.output().slice(-2000)}`;
    }
    return last.startsWith('200 ');
  }, 10_000).catch(() => {});
  t.equal(last, '200 example upstream', 'a request through listener_0 reaches the upstream');
  t.equal(hosts.at(-1), GCP_UPSTREAM_HOST, 'with the route\'s host_rewrite_literal as Host');
  const clusters = JSON.parse((await admin(sidecar.adminPort, '/clusters')).text) as { clusters: { name: string; dns?: { type: string; names: { hostname: string; addresses: string[] | null }[] } }[] };
  const dns = clusters.clusters.find((c) => c.name === GCP_CLUSTER)?.dns;
  t.same(dns && { type: dns.type, names: dns.names.map((n) => ({ hostname: n.hostname, addresses: n.addresses })) },
    { type: 'logical', names: [{ hostname: GCP_UPSTREAM_HOST, addresses: ['127.0.0.1'] }] }, 'the LOGICAL_DNS cluster resolved localhost (V4_ONLY)');
  const dump = JSON.parse((await admin(sidecar.adminPort, '/config_dump')).text) as { xds: { fields_without_effect: Record<string, number> } };
  t.equal(dump.xds.fields_without_effect[API_CONFIG_SOURCE], 1, 'the api_config_source naming xds_cluster is counted as accepted without effect');
}

t.test('go-control-plane\'s example snapshot over state-of-the-world ADS: version "1" ACKed for every type, traffic flows', async (t) => {
  const { port, hosts, dns } = await fixtures(t);
  const ads = await startScriptedAds();
  let sidecar: RemoraProcess | null = null;
  t.teardown(async () => {
    await sidecar?.stop();
    await ads.close();
  });
  const starting = startSidecar(ads, 'sotw');
  // The snapshot's types, in the order Envoy asks for them: clusters first, then listeners,
  // then the route configuration the listener names.
  await ads.waitFor((q) => q.type_url === TypeUrl.Cluster);
  const cds = ads.push(TypeUrl.Cluster, '1', [gcpCluster(port, dns.address)]);
  await ads.waitFor((q) => q.type_url === TypeUrl.Listener);
  const lds = ads.push(TypeUrl.Listener, '1', [gcpListener(0)]);
  for (const [what, nonce] of [['clusters', cds], ['listeners', lds]] as const) {
    const ack = await ads.answer(nonce);
    t.same({ error: message(ack), version: ack.version_info }, { error: '', version: '1' }, `${what}: ACKed with the snapshot version`);
  }
  const asked = await ads.waitFor((q) => q.type_url === TypeUrl.RouteConfiguration && names(q, 'resource_names').includes(GCP_ROUTE));
  t.same(names(asked, 'resource_names'), [GCP_ROUTE], 'local_route is subscribed to on the ADS stream (the api_config_source names the same server)');
  const rds = ads.push(TypeUrl.RouteConfiguration, '1', [gcpRoutes()]);
  const ack = await ads.answer(rds);
  t.same({ error: message(ack), version: ack.version_info }, { error: '', version: '1' }, 'routes: ACKed with the snapshot version');
  sidecar = await starting;
  await trafficFlows(t, sidecar, hosts);
});

t.test('go-control-plane\'s example snapshot over delta ADS: hashed resource versions, ACKed, traffic flows, versions resent on reconnect', async (t) => {
  const { port, hosts, dns } = await fixtures(t);
  const ads = await startScriptedAds({ delta: true });
  let sidecar: RemoraProcess | null = null;
  t.teardown(async () => {
    await sidecar?.stop();
    await ads.close();
  });
  const starting = startSidecar(ads, 'delta');
  const snapshot = { cluster: gcpCluster(port, dns.address), listener: gcpListener(0), routes: gcpRoutes() };
  const version = {
    [GCP_CLUSTER]: resourceVersion(TypeUrl.Cluster, snapshot.cluster),
    [GCP_LISTENER]: resourceVersion(TypeUrl.Listener, snapshot.listener),
    [GCP_ROUTE]: resourceVersion(TypeUrl.RouteConfiguration, snapshot.routes),
  };
  await ads.waitFor((q) => q.type_url === TypeUrl.Cluster && names(q, 'resource_names_subscribe').includes('*'));
  const cds = ads.pushDelta(TypeUrl.Cluster, '1', [{ name: GCP_CLUSTER, version: version[GCP_CLUSTER], resource: snapshot.cluster }]);
  await ads.waitFor((q) => q.type_url === TypeUrl.Listener && names(q, 'resource_names_subscribe').includes('*'));
  const lds = ads.pushDelta(TypeUrl.Listener, '1', [{ name: GCP_LISTENER, version: version[GCP_LISTENER], resource: snapshot.listener }]);
  t.equal(message(await ads.answer(cds)), '', 'clusters: ACKed');
  t.equal(message(await ads.answer(lds)), '', 'listeners: ACKed');
  await ads.waitFor((q) => q.type_url === TypeUrl.RouteConfiguration && names(q, 'resource_names_subscribe').includes(GCP_ROUTE));
  const rds = ads.pushDelta(TypeUrl.RouteConfiguration, '1', [{ name: GCP_ROUTE, version: version[GCP_ROUTE], resource: snapshot.routes }]);
  t.equal(message(await ads.answer(rds)), '', 'routes: ACKed');
  sidecar = await starting;
  await trafficFlows(t, sidecar, hosts);

  // A new stream: the sidecar says which versions it holds, as go-control-plane's delta
  // server needs to skip what has not changed.
  const before = ads.requests.length;
  ads.dropStreams();
  const resumed = async (typeUrl: string): Promise<unknown> =>
    (await ads.waitFor((q) => ads.requests.indexOf(q) >= before && q.type_url === typeUrl, 15_000)).initial_resource_versions;
  t.same(await resumed(TypeUrl.Cluster), { [GCP_CLUSTER]: version[GCP_CLUSTER] }, 'on reconnect, initial_resource_versions carries the cluster\'s hash');
  t.same(await resumed(TypeUrl.Listener), { [GCP_LISTENER]: version[GCP_LISTENER] }, 'and the listener\'s');
  t.same(await resumed(TypeUrl.RouteConfiguration), { [GCP_ROUTE]: version[GCP_ROUTE] }, 'and the route configuration\'s');
  const r = await request(sidecar.ports[GCP_LISTENER], { path: '/', agent: false });
  t.equal(r.status, 200, 'traffic keeps flowing meanwhile');
});
