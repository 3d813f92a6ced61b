// A fresh sidecar bootstrapping from what Istio pushes, end to end: a scripted ADS server
// (test/helpers/xds.ts) sends Istio-shaped resources (test/helpers/istio.ts and below):
// an outbound EDS cluster named `outbound|9080||reviews.default.svc.cluster.local` with
// Istio's circuit breakers, metadata, alt_stat_name and metadata exchange filter, BlackHoleCluster, PassthroughCluster and
// InboundPassthroughCluster; the endpoint list with overprovisioning_factor, locality,
// Istio metadata and an empty health_check_config; virtualOutbound (use_original_dst), the
// per-port listeners behind it (bind_to_port: false) and a bound outbound HTTP listener;
// the route configuration "9080" with Istio's retry policy. Every response is ACKed,
// traffic reaches the service through the bound listener, the unbound listeners are
// listed and not served, and the fields without effect are counted.
// Everything on 127.0.0.1, port 0; processes ended by pid.

import net from 'node:net';
import t from 'tap';
import { TypeUrl } from '../../src/xds/protos.js';
import { admin, request, startRemora, startUpstream, type RemoraProcess } from '../helpers/remora.js';
import { any, address, CLUSTER_METADATA_EXCHANGE, hcm, OUTBOUND_HTTP, OUTBOUND_TCP, rds, VIRTUAL_OUTBOUND } from '../helpers/istio.js';
import { startScriptedAds, type Obj } from '../helpers/xds.js';

const REVIEWS = 'outbound|9080||reviews.default.svc.cluster.local';
const message = (req: Obj): string => String((req.error_detail as Obj | undefined)?.message ?? '');
const MAX = { value: 4294967295 };
const BREAKERS = { thresholds: [{ max_connections: MAX, max_pending_requests: MAX, max_requests: MAX, max_retries: MAX, track_remaining: true }] };
const istioMetadata = (fields: Obj): Obj => ({ filter_metadata: { istio: { fields } } });
const str = (s: string): Obj => ({ stringValue: s });


function clusters(): Obj[] {
  return [
    {
      name: REVIEWS, type: 'EDS', connect_timeout: { seconds: 10 }, lb_policy: 'LEAST_REQUEST', circuit_breakers: BREAKERS,
      eds_cluster_config: { eds_config: { ads: {}, initial_fetch_timeout: {}, resource_api_version: 'V3' }, service_name: REVIEWS },
      common_lb_config: { locality_weighted_lb_config: {} },
      metadata: istioMetadata({ default_original_port: { numberValue: 9080 } }),
      alt_stat_name: 'outbound_9080__reviews_default_svc_cluster_local',
      filters: [CLUSTER_METADATA_EXCHANGE],
    },
    { name: 'BlackHoleCluster', type: 'STATIC', connect_timeout: { seconds: 10 } },
    { name: 'PassthroughCluster', type: 'ORIGINAL_DST', connect_timeout: { seconds: 10 }, lb_policy: 'CLUSTER_PROVIDED', circuit_breakers: BREAKERS },
    {
      name: 'InboundPassthroughCluster', type: 'ORIGINAL_DST', connect_timeout: { seconds: 10 }, lb_policy: 'CLUSTER_PROVIDED', circuit_breakers: BREAKERS,
      upstream_bind_config: { source_address: address('127.0.0.6', 0) }, cleanup_interval: { seconds: 315576000000 },
    },
  ];
}

function assignment(port: number): Obj {
  return {
    cluster_name: REVIEWS,
    endpoints: [{
      locality: { region: 'us-east1', zone: 'us-east1-b' },
      load_balancing_weight: { value: 1 },
      lb_endpoints: [{
        endpoint: { address: address('127.0.0.1', port), health_check_config: {} },
        health_status: 'HEALTHY',
        metadata: {
          filter_metadata: {
            istio: { fields: { workload: str('reviews-v1;default;reviews;v1;Kubernetes') } },
            'envoy.transport_socket_match': { fields: { tlsMode: str('istio') } },
          },
        },
        load_balancing_weight: { value: 1 },
      }],
    }],
    policy: { overprovisioning_factor: { value: 140 } },
  };
}

const ROUTES = {
  name: '9080',
  validate_clusters: {},
  virtual_hosts: [{
    name: 'reviews.default.svc.cluster.local:9080',
    domains: ['reviews.default.svc.cluster.local', 'reviews', '*'],
    include_request_attempt_count: true,
    routes: [{
      name: 'default',
      match: { prefix: '/' },
      decorator: { operation: 'reviews.default.svc.cluster.local:9080/*' },
      route: {
        cluster: REVIEWS,
        timeout: {},
        max_grpc_timeout: {},
        retry_policy: {
          retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
          retriable_status_codes: [503],
          num_retries: { value: 2 },
          retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: any(TypeUrl.PreviousHostsPredicate) }],
          host_selection_retry_max_attempts: '5',
        },
      },
    }],
  }, {
    // Istio names the route of every virtual host "default": one route table, many.
    name: 'ratings.default.svc.cluster.local:9080',
    domains: ['ratings.default.svc.cluster.local', 'ratings'],
    routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster: REVIEWS, timeout: {} } }],
  }],
};

t.test('a fresh sidecar bootstraps from Istio-shaped resources: every response ACKed, traffic flows', async (t) => {
  const attempts: (string | undefined)[] = [];
  const up = await startUpstream((req, res) => {
    attempts.push(req.headers['x-remora-attempt-count'] as string | undefined);
    req.resume();
    res.end('reviews v1');
  });
  const ads = await startScriptedAds();
  let sidecar: RemoraProcess | null = null;
  t.teardown(async () => {
    await sidecar?.stop();
    await ads.close();
    await up.close();
  });
  // Bound here on 127.0.0.1, port 0 (tests never take a fixed port): the outbound HTTP
  // listener of a sidecar without capture, and virtualOutbound.
  const bound = { name: '127.0.0.1_9080', address: address('127.0.0.1', 0), traffic_direction: 'OUTBOUND', filter_chains: [{ filters: [hcm(rds('9080'))] }] };
  const outbound = { ...VIRTUAL_OUTBOUND, address: address('127.0.0.1', 0) };

  const starting = startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    xds: { servers: [`127.0.0.1:${ads.port}`], node: { id: 'sidecar~10.0.0.7~reviews-v1.default~default.svc.cluster.local', cluster: 'reviews.default' }, initial_fetch_timeout_ms: 60_000 },
  });
  starting.catch(() => {});
  await ads.waitFor((q) => q.type_url === TypeUrl.Cluster);
  const cds = ads.push(TypeUrl.Cluster, '2026-12-03T15:00:00Z/1', clusters());
  t.equal(message(await ads.answer(cds)), '', 'clusters: ACKed');
  await ads.waitFor((q) => q.type_url === TypeUrl.ClusterLoadAssignment && (q.resource_names as string[] | undefined)?.includes(REVIEWS) === true);
  const eds = ads.push(TypeUrl.ClusterLoadAssignment, '2026-12-03T15:00:00Z/1', [assignment(up.port)]);
  const lds = ads.push(TypeUrl.Listener, '2026-12-03T15:00:00Z/1', [outbound, OUTBOUND_HTTP, OUTBOUND_TCP, bound]);
  await ads.waitFor((q) => q.type_url === TypeUrl.RouteConfiguration && (q.resource_names as string[] | undefined)?.includes('9080') === true);
  const rdsNonce = ads.push(TypeUrl.RouteConfiguration, '2026-12-03T15:00:00Z/1', [ROUTES]);
  for (const [what, nonce] of [['endpoints', eds], ['listeners', lds], ['routes', rdsNonce]] as const) {
    t.equal(message(await ads.answer(nonce)), '', `${what}: ACKed`);
  }
  t.same(ads.last(TypeUrl.RouteConfiguration)?.resource_names, ['9080'], 'only the bound listener\'s routes are subscribed to');
  sidecar = await starting;

  const reply = await request(sidecar.ports['127.0.0.1_9080'], { path: '/reviews/1', headers: { host: 'reviews:9080' }, agent: false });
  t.equal(`${reply.status} ${reply.text}`, '200 reviews v1', 'traffic through the bound listener reaches the service');
  t.same(attempts, ['1'], 'with the attempt count (include_request_attempt_count: x-remora-attempt-count)');
  const ratings = await request(sidecar.ports['127.0.0.1_9080'], { path: '/ratings/1', headers: { host: 'ratings:9080' }, agent: false });
  t.equal(ratings.status, 200, 'a second virtual host whose route is also named "default" serves too');

  // virtualOutbound, addressed directly, takes its default chain to PassthroughCluster,
  // which has no original destination to go to: the connection is closed.
  const closed = await new Promise<string>((resolve) => {
    const s = net.connect(sidecar!.ports.virtualOutbound, '127.0.0.1');
    s.on('data', () => {});
    s.on('close', () => resolve('closed'));
    s.on('error', () => resolve('closed'));
    setTimeout(() => {
      s.destroy();
      resolve('still open');
    }, 3000);
  });
  t.equal(closed, 'closed', 'a connection to virtualOutbound is closed (nowhere to pass it through)');

  const dump = JSON.parse((await admin(sidecar.adminPort, '/config_dump')).text) as { xds: { listeners_not_bound: string[]; fields_without_effect: Record<string, number> }; config: { listeners: { name: string }[] } };
  t.same(dump.xds.listeners_not_bound.sort(), ['0.0.0.0_9080', '10.96.0.1_443'], 'the per-port listeners are listed as not bound');
  t.same(dump.config.listeners.map((l) => l.name).sort(), ['127.0.0.1_9080', 'virtualOutbound'], 'and are not in the config the workers run');
  const inert = dump.xds.fields_without_effect;
  for (const field of ['Listener.bind_to_port', 'Listener.use_original_dst', 'ClusterLoadAssignment.policy.overprovisioning_factor', 'Cluster.type ORIGINAL_DST (no original destination: no endpoints)', 'Cluster.upstream_bind_config',
    'Cluster.alt_stat_name', 'Cluster.filters istio.metadata_exchange', 'Cluster.cleanup_interval']) {
    t.ok((inert[field] ?? 0) > 0, `${field} counted as accepted without effect (${inert[field] ?? 0})`);
  }
});
