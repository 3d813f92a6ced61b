// Configs as control planes write them, through the real proxy: an Istio cluster name
// (`outbound|9080||reviews.default.svc.cluster.local`), Envoy Gateway route and listener
// names with `/` — traffic flows, and the names come out as sent in /stats, /config_dump
// and /metrics (label values escaped; promtool accepts the scrape where installed); and a
// service scaled to zero (a cluster with no endpoints): 503 UH until endpoints come back.

import { writeFileSync } from 'node:fs';
import t from 'tap';
import { prometheusInstalled, promtoolCheckMetrics } from '../helpers/prometheus.js';
import { admin, request, startRemora, startUpstream, waitUntil } from '../helpers/remora.js';

const CLUSTER = 'outbound|9080||reviews.default.svc.cluster.local';
const LISTENER = 'httproute/default/eg/rule/0';

t.test('Istio and Envoy Gateway names: traffic, /stats, /config_dump and /metrics', async (t) => {
  const up = await startUpstream((_req, res) => res.end('reviews'));
  const remora = await startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [{
      name: LISTENER, address: '127.0.0.1', port: 0,
      virtual_hosts: [{ name: 'reviews.default.svc.cluster.local:9080', domains: ['*'], routes: [{ name: 'default/reviews"v1"', match: { prefix: '/' }, route: { cluster: CLUSTER } }] }],
    }],
    clusters: [{ name: CLUSTER, endpoints: [{ address: '127.0.0.1', port: up.port }] }],
  });
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const reply = await request(remora.ports[LISTENER], { path: '/reviews/1' });
  t.equal(reply.text, 'reviews', 'a request is routed to the cluster with the Istio name');

  const stats = (await admin(remora.adminPort, '/stats')).text;
  t.match(stats, `cluster.${CLUSTER}.upstream_rq_2xx: 1`, '/stats shows the cluster name as sent');
  const dump = JSON.parse((await admin(remora.adminPort, '/config_dump')).text) as unknown;
  t.match(JSON.stringify(dump), JSON.stringify(CLUSTER), '/config_dump shows it as sent');

  const metrics = (await admin(remora.adminPort, '/metrics')).text;
  t.match(metrics, `remora_upstream_requests_total{cluster="${CLUSTER}",status_class="2xx"} 1`, '/metrics carries it as a label value');
  t.match(metrics, `listener="${LISTENER}"`, 'and the listener name');
  if (prometheusInstalled()) {
    const check = await promtoolCheckMetrics(metrics);
    t.equal(check.code, 0, `promtool accepts the scrape: ${check.output}`);
  }
});

t.test('a service scaled to zero: a cluster with no endpoints answers 503 UH, then serves when endpoints return', async (t) => {
  const up = await startUpstream((_req, res) => res.end('back'));
  const config = (endpoints: unknown[]) => ({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    drain: { delay_ms: 0, timeout_ms: 5000 },
    listeners: [{ name: 'main', address: '127.0.0.1', port: 0, virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'svc' } }] }] }],
    clusters: [{ name: 'svc', endpoints }],
  });
  const remora = await startRemora(config([]));
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const port = remora.ports.main;
  const empty = await request(port, { path: '/' });
  t.equal(empty.status, 503, 'no endpoints: 503');
  t.equal(empty.headers['x-remora-flags'], 'UH', 'flag UH (no healthy upstream)');
  // Scaled up again: the endpoint is back (a file reload, as an EDS update would be).
  writeFileSync(remora.configFile, JSON.stringify(config([{ address: '127.0.0.1', port: up.port }])));
  process.kill(remora.pid, 'SIGHUP');
  await waitUntil('the endpoint serves', async () => (await request(port, { path: '/' })).status === 200);
  t.equal((await request(port, { path: '/' })).text, 'back', 'requests reach the endpoint again');
  writeFileSync(remora.configFile, JSON.stringify(config([])));
  process.kill(remora.pid, 'SIGHUP');
  await waitUntil('scaled to zero again', async () => (await request(port, { path: '/' })).status === 503);
  t.pass('and back to 503 UH when it goes to zero');
});
