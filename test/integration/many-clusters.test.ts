// A mesh-sized config end to end: a real `remora run` with 5,000 clusters of 10
// endpoints each (one route per cluster, two workers) starts, forwards a request to the
// last cluster (stats slot 4,999: slots follow config order on a first config) and
// exports that cluster's stats in /metrics. Only the last cluster has a live endpoint;
// the others point at 127.0.0.1 ports nothing listens on, and no request goes there.

import t from 'tap';
import { admin, namedUpstream, request, routesConfig, startRemora } from '../helpers/remora.js';
import { PROMETHEUS_SKIP_REASON, prometheusInstalled, prometheusRequired, promtoolCheckMetrics } from '../helpers/prometheus.js';

const CLUSTERS = 5000;
const ENDPOINTS = 10;

t.test('5,000 clusters: starts, routes to the last cluster, exports its stats', async (t) => {
  const up = await namedUpstream('last');
  const last = `svc-${CLUSTERS - 1}`;
  const clusters = Array.from({ length: CLUSTERS }, (_, i) => ({
    name: `svc-${i}`,
    connect_timeout_ms: 500,
    endpoints:
      i === CLUSTERS - 1
        ? [{ address: '127.0.0.1', port: up.port }]
        : Array.from({ length: ENDPOINTS }, (_, e) => ({ address: '127.0.0.1', port: 1 + e })), // nothing listens there
  }));
  const routes = clusters.map((c) => ({ name: c.name, match: { prefix: `/${c.name}/` }, route: { cluster: c.name } }));
  const started = Date.now();
  const remora = await startRemora(routesConfig(routes, clusters, { workers: 2 }));
  t.comment(`ready after ${Date.now() - started} ms`);
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });

  const reply = await request(remora.ports.main, { path: `/${last}/hello`, agent: false });
  t.equal(reply.status, 200, `a request to ${last} answered 200 (saw ${reply.status}: ${reply.text.slice(0, 200)})`);
  t.equal(reply.headers['x-upstream'], 'last', 'it reached the live endpoint of the last cluster');

  const scrapeStart = Date.now();
  const metrics = await admin(remora.adminPort, '/metrics');
  t.comment(`/metrics: ${metrics.body.length} bytes in ${Date.now() - scrapeStart} ms`);
  t.equal(metrics.status, 200, '/metrics answers 200');
  const text = metrics.text;
  const series = `remora_upstream_requests_total{cluster="${last}",status_class="2xx"} 1`;
  t.ok(text.includes(`\n${series}\n`), `/metrics has ${series}`);
  t.ok(text.includes(`remora_upstream_request_duration_seconds_count{cluster="${last}"} 1\n`), `/metrics has the duration histogram of ${last}`);
  t.ok(text.includes(`remora_cluster_endpoints{cluster="${last}",state="healthy"} 1\n`), `/metrics has the endpoint states of ${last}`);
  t.ok(text.includes('remora_upstream_requests_total{cluster="svc-0",status_class="2xx"} 0\n'), 'and the series of a cluster without traffic');
  const perCluster = text.split('\n').filter((l) => l.startsWith('remora_upstream_requests_total{')).length;
  t.equal(perCluster, CLUSTERS * 5, `one remora_upstream_requests_total series per cluster and status class (saw ${perCluster})`);

  const workers = JSON.parse((await admin(remora.adminPort, '/workers')).text) as { workers: { stats: { responses2xx: number } }[] };
  t.equal(workers.workers.reduce((n, w) => n + w.stats.responses2xx, 0), 1, '/workers counts the one 2xx response');

  if (!prometheusInstalled()) {
    t.notOk(prometheusRequired(), 'promtool must be installed when REMORA_REQUIRE_PROMETHEUS=1');
    t.comment(`promtool check skipped: ${PROMETHEUS_SKIP_REASON}`);
  } else {
    const check = await promtoolCheckMetrics(text);
    t.equal(check.code, 0, `promtool check metrics accepts the 5,000-cluster exposition: ${check.output.slice(0, 500)}`);
  }
});
