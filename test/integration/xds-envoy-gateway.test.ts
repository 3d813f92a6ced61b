// A fresh sidecar bootstrapping from what Envoy Gateway pushes, end to end: delta ADS,
// as Envoy Gateway's bootstrap asks for (DELTA_GRPC), from a scripted server
// (test/helpers/xds.ts) sending Envoy Gateway-shaped resources (test/helpers/envoy-gateway.ts)
// with go-control-plane's per-resource versions: the EDS cluster of an HTTPRoute rule
// (LEAST_REQUEST as lb_policy and as load_balancing_policy, circuit breakers, locality
// weighting, buffer limit, ignore_health_on_host_removal) and its ClusterLoadAssignment;
// the Gateway's HTTP listener, whose HttpConnectionManager is its default_filter_chain,
// with the settings Envoy Gateway writes (path normalisation and merging,
// UNESCAPE_AND_REDIRECT, PASS_THROUGH server header, HTTP/2 options, use_remote_address,
// its stdout access log, the router with suppress_envoy_headers, drain_type,
// per-connection buffer limit); the RouteConfiguration with ignore_port_in_host_matching,
// Envoy Gateway's metadata and a route-level WebSocket upgrade. Envoy Gateway's default
// headers_with_underscores_action (REJECT_REQUEST) answers such a request 400 DPE; the
// listener as a ClientTrafficPolicy allowing such headers writes it passes them on.
// Traffic for www.example.com (any port) reaches the backend, other hosts get 404, the
// path settings apply, a WebSocket is proxied, the access log line is Envoy Gateway's,
// /config_dump counts the fields without effect, and once the route table comes without
// virtual hosts (its route detached) every request answers 404 NR.
import t from 'tap';
import WebSocket from 'ws';
import { TypeUrl } from '../../src/xds/protos.js';
import { EG_CLUSTER, EG_LISTENER, EG_ROUTE, EG_ROUTE_CONFIG, egAssignment, egCluster, egListener, egRoutes } from '../helpers/envoy-gateway.js';
import { resourceVersion } from '../helpers/go-control-plane.js';
import { admin, request, startRemora, type RemoraProcess } from '../helpers/remora.js';
import { startWsUpstream } from '../helpers/ws-upstream.js';
import { startScriptedAds, type Obj } from '../helpers/xds.js';

const message = (req: Obj): string => String((req.error_detail as Obj | undefined)?.message ?? '');
const subscribes = (typeUrl: string, name: string) => (q: Obj): boolean =>
  q.type_url === typeUrl && (q.resource_names_subscribe as string[] | undefined)?.includes(name) === true;
/** One resource of a delta response, versioned as go-control-plane's cache does. */
const delta = (typeUrl: string, name: string, resource: Obj) => ({ name, version: resourceVersion(typeUrl, resource), resource });

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string>;
}

t.test('a fresh sidecar bootstraps from Envoy Gateway-shaped resources over delta xDS: every response answered, traffic flows', async (t) => {
  const up = await startWsUpstream(false);
  const ads = await startScriptedAds({ delta: true });
  let sidecar: RemoraProcess | null = null;
  t.teardown(async () => {
    await sidecar?.stop();
    await ads.close();
    await up.close();
  });

  const starting = startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    xds: {
      servers: [`127.0.0.1:${ads.port}`], api_type: 'delta', initial_fetch_timeout_ms: 60_000,
      node: { id: 'default/eg-envoy-default-eg-5d8c7bfb8c-x2x9z.envoy-gateway-system', cluster: 'default/eg' },
    },
  });
  starting.catch(() => {});
  await ads.waitFor(subscribes(TypeUrl.Cluster, '*'));
  await ads.waitFor(subscribes(TypeUrl.Listener, '*'));

  const cds = ads.pushDelta(TypeUrl.Cluster, '1', [delta(TypeUrl.Cluster, EG_CLUSTER, egCluster())]);
  t.equal(message(await ads.answer(cds)), '', 'the cluster is ACKed');
  await ads.waitFor(subscribes(TypeUrl.ClusterLoadAssignment, EG_CLUSTER));
  const eds = ads.pushDelta(TypeUrl.ClusterLoadAssignment, '1', [delta(TypeUrl.ClusterLoadAssignment, EG_CLUSTER, egAssignment(up.port))]);
  t.equal(message(await ads.answer(eds)), '', 'its endpoints are ACKed');

  // Envoy Gateway's default rejects requests with underscores in header names.
  const strict = ads.pushDelta(TypeUrl.Listener, '1', [delta(TypeUrl.Listener, EG_LISTENER, egListener({ port: 0, underscores: 'REJECT_REQUEST' }))]);
  t.equal(message(await ads.answer(strict)), '', 'the listener with Envoy Gateway\'s default (REJECT_REQUEST) is ACKed');
  await ads.waitFor(subscribes(TypeUrl.RouteConfiguration, EG_ROUTE_CONFIG));
  const rds = ads.pushDelta(TypeUrl.RouteConfiguration, '2', [delta(TypeUrl.RouteConfiguration, EG_ROUTE_CONFIG, egRoutes())]);
  t.equal(message(await ads.answer(rds)), '', 'the route configuration is ACKed');
  sidecar = await starting;
  const port = sidecar.ports[EG_LISTENER];
  const refused = await request(port, { path: '/', headers: { host: 'www.example.com', x_tenant: 'a' }, agent: false });
  t.same([refused.status, refused.headers['x-remora-flags'], refused.headers.connection], [400, 'DPE', 'close'], 'REJECT_REQUEST: a header name with an underscore gets 400 DPE and a closed connection');
  t.equal((await request(port, { path: '/', headers: { host: 'www.example.com', 'x-tenant': 'a' }, agent: false })).status, 200, 'without one the request goes through');

  // A ClientTrafficPolicy with withUnderscoresAction: Allow writes ALLOW.
  const allowing = egListener({ port: 0, underscores: 'ALLOW' });
  const lds = ads.pushDelta(TypeUrl.Listener, '2', [delta(TypeUrl.Listener, EG_LISTENER, allowing)]);
  t.equal(message(await ads.answer(lds)), '', 'the listener allowing underscores is ACKed');
  t.ok(port > 0, `the listener is bound, served from its default_filter_chain (port ${port})`);

  const seen = async (path: string, host: string, headers: Record<string, string> = {}): Promise<{ status: number; server?: string; location?: string; upstream?: Seen }> => {
    const r = await request(port, { path, headers: { host, ...headers }, agent: false });
    const upstream = r.status === 200 ? (JSON.parse(r.text) as Seen) : undefined;
    const server = r.headers.server;
    return { status: r.status, server: Array.isArray(server) ? server.join(', ') : server, location: r.headers.location, upstream };
  };
  const home = await seen('/', 'www.example.com', { x_tenant: 'a' });
  t.equal(home.status, 200, 'www.example.com reaches the backend');
  t.equal(home.upstream?.headers.x_tenant, 'a', 'a header with an underscore is passed on (ALLOW)');
  t.equal(home.server, undefined, 'PASS_THROUGH: no server header of the proxy\'s own (the backend sends none)');
  t.equal((await seen('/', 'www.example.com:8080')).status, 200, 'any port in Host matches (ignore_port_in_host_matching)');
  t.equal((await seen('/', 'other.example.com')).status, 404, 'another host has no virtual host: 404');
  t.equal((await seen('//a//b', 'www.example.com')).upstream?.url, '/a/b', 'merge_slashes: //a//b goes upstream as /a/b');
  const escaped = await seen('/a%2Fb', 'www.example.com');
  t.same({ status: escaped.status, location: escaped.location }, { status: 307, location: '/a/b' }, 'UNESCAPE_AND_REDIRECT: /a%2Fb is redirected to /a/b');

  const echoed = await new Promise<string>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`, { headers: { host: 'www.example.com' }, perMessageDeflate: false });
    ws.on('open', () => ws.send('hello'));
    ws.on('message', (data: Buffer) => {
      resolve(data.toString());
      ws.close();
    });
    ws.on('error', reject);
  });
  t.equal(echoed, 'hello', 'a WebSocket is proxied (the route\'s upgrade_configs)');

  // (The first lines are those of the requests refused before routing: no route name.)
  const line = await sidecar.waitFor(new RegExp(`\\{"start_time":"[^\\n]*"route_name":"${EG_ROUTE.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"[^\\n]*\\}`));
  t.match(line, `"route_name":"${EG_ROUTE}"`, 'the access log line is Envoy Gateway\'s format, on stdout');
  t.match(line, `"upstream_cluster":"${EG_CLUSTER}"`, 'with the upstream cluster');

  const dump = JSON.parse((await admin(sidecar.adminPort, '/config_dump')).text) as { xds: { fields_without_effect: Record<string, number> } };
  const inert = dump.xds.fields_without_effect;
  for (const field of [
    'Listener.drain_type', 'Listener.max_connections_to_accept_per_socket_event', 'Listener.access_log', 'HttpConnectionManager.use_remote_address',
    'Router.suppress_envoy_headers', 'Cluster.per_connection_buffer_limit_bytes', 'Cluster.ignore_health_on_host_removal', 'Cluster.dns_lookup_family',
    'Cluster.common_lb_config.locality_weighted_lb_config', 'ClusterLoadAssignment.endpoints.locality', 'RouteConfiguration.virtual_hosts.metadata',
    'RouteConfiguration.virtual_hosts.routes.metadata', 'Cluster.lb_policy (load_balancing_policy is used)',
  ]) {
    t.ok((inert[field] ?? 0) > 0, `${field} counted as accepted without effect (${inert[field] ?? 0})`);
  }

  // Its route detached: Envoy Gateway sends the route table without virtual hosts.
  const detached = ads.pushDelta(TypeUrl.RouteConfiguration, '3', [delta(TypeUrl.RouteConfiguration, EG_ROUTE_CONFIG, { ...egRoutes(), virtual_hosts: [] })]);
  t.equal(message(await ads.answer(detached)), '', 'a route table without virtual hosts is ACKed');
  const none = await request(port, { path: '/', headers: { host: 'www.example.com' }, agent: false });
  t.same([none.status, none.headers['x-remora-flags']], [404, 'NR'], 'and every request answers 404 NR, as from Envoy');
});
