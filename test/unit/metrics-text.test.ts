// Unit tests for the byte-written part of /metrics (src/main/metrics-text.ts): values
// are written as the text format reads them, the buffer grows past its first size, the
// traffic series carry what workers recorded (counters, gauges, cumulative histogram
// buckets), and the per-cluster breaker and endpoint families agree with what
// Resilience reports for /clusters.

import t from 'tap';
import { validateConfig } from '../../src/config/validate.js';
import { createLogger } from '../../src/core/log.js';
import { ExpositionBuffer, expositionLabels, writeClusterState, writeTraffic } from '../../src/main/metrics-text.js';
import { Resilience } from '../../src/main/resilience.js';
import { StatsReader } from '../../src/stats/reader.js';
import { SlabClusterStats, StatsRecorder } from '../../src/stats/recorder.js';
import { LAYOUT } from '../../src/stats/shapes.js';
import { ClusterCounter, PROMETHEUS_BUCKETS_US } from '../../src/stats/stat-names.js';

/** Value of one series in an exposition (`remora_x{a="b"}`), or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  return undefined;
}

t.test('values are written as String() writes them, integers digit by digit', async (t) => {
  const values = [0, 7, 10, -3, 1_000_000, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 0.5, 1e-7, 2 ** 53 + 2, 1e21, -0, NaN, Infinity];
  const out = new ExpositionBuffer(0);
  for (const v of values) out.value(v);
  t.equal(out.finish().toString(), values.map((v) => `${String(v)}\n`).join(''), 'one line per value');
});

t.test('the buffer grows past its first size and keeps what was written', async (t) => {
  const out = new ExpositionBuffer(16);
  let expected = '';
  for (let i = 0; i < 20_000; i++) {
    const label = `remora_x{cluster="svc-${i}",é="ü"} `;
    out.text(label);
    out.bytes(Buffer.from('ab'.repeat(i % 50)));
    out.value(i * 3);
    expected += `${label}${'ab'.repeat(i % 50)}${i * 3}\n`;
  }
  t.equal(out.finish().toString('utf8'), expected, `${Buffer.byteLength(expected)} bytes, UTF-8 kept`);
});

t.test('traffic series carry what a worker recorded, summed over workers', async (t) => {
  const slabs = [LAYOUT.allocate(), LAYOUT.allocate()];
  const slots = { listeners: { main: 0 }, clusters: { 'svc-a': 0, 'svc-b': 4000 } };
  for (const slab of slabs) {
    const b = new SlabClusterStats(new StatsRecorder(slab), 4000);
    b.upstreamResponse(200, 3000, 3500); // 3 ms upstream
    b.upstreamResponse(503, 2_000_000, 2_000_100); // 2 s upstream
    b.connectionOpened();
    b.count(ClusterCounter.CxConnectFail);
  }
  const reader = new StatsReader(slabs);
  reader.setSlots([0], [0, 4000]);
  reader.fold();
  const out = new ExpositionBuffer(1024);
  writeTraffic(out, reader, expositionLabels({ version: 1, statSlots: slots }));
  const text = out.finish().toString();
  t.equal(sample(text, 'remora_upstream_requests_total{cluster="svc-b",status_class="2xx"}'), 2, '2xx over both workers');
  t.equal(sample(text, 'remora_upstream_requests_total{cluster="svc-b",status_class="5xx"}'), 2, '5xx over both workers');
  t.equal(sample(text, 'remora_upstream_requests_total{cluster="svc-a",status_class="2xx"}'), 0, 'a cluster without traffic reads 0');
  t.equal(sample(text, 'remora_upstream_connections_active{cluster="svc-b"}'), 2, 'a gauge, summed');
  t.equal(sample(text, 'remora_upstream_connect_failures_total{cluster="svc-b"}'), 2, 'a counter, summed');
  const bucket = (le: string): number | undefined => sample(text, `remora_upstream_request_duration_seconds_bucket{cluster="svc-b",le="${le}"}`);
  const below3ms = PROMETHEUS_BUCKETS_US.filter((us) => us < 3000).map((us) => String(us / 1e6));
  for (const le of below3ms) t.equal(bucket(le), 0, `nothing at or below ${le} s`);
  t.equal(bucket('0.005'), 2, 'the two 3 ms responses by 5 ms');
  t.equal(bucket('+Inf'), 4, 'all four by +Inf');
  t.equal(sample(text, 'remora_upstream_request_duration_seconds_count{cluster="svc-b"}'), 4, '_count');
  t.equal(sample(text, 'remora_upstream_request_duration_seconds_sum{cluster="svc-b"}'), 4.006, '_sum in seconds');
  t.match(text, /^# HELP remora_upstream_requests_total [^\n]+\n# TYPE remora_upstream_requests_total counter\n/m, 'a family starts with HELP and TYPE');
});

t.test('breaker and endpoint families agree with /clusters', async (t) => {
  const raw = {
    workers: 1,
    listeners: [{ name: 'main', port: 0, virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'svc-a' } }] }] }],
    clusters: [
      { name: 'svc-a', endpoints: [{ address: '127.0.0.1', port: 1 }, { address: '127.0.0.1', port: 2 }], circuit_breakers: { max_connections: 5 } },
      { name: 'svc-b', endpoints: [{ address: '127.0.0.1', port: 3 }], outlier_detection: {} },
    ],
  };
  const result = validateConfig(raw, { defaultWorkers: 1 });
  if (!result.ok) throw new Error(`test config invalid: ${JSON.stringify(result.errors)}`);
  const config = result.config;
  const res = new Resilience(createLogger({ component: 'test' }, 'silent'));
  t.teardown(() => res.stop());
  const statSlots = { listeners: { main: 0 }, clusters: { 'svc-a': 0, 'svc-b': 1 } };
  res.applied(config, statSlots.clusters, res.assign(config));
  const out = new ExpositionBuffer(0);
  writeClusterState(out, config.clusters, res, expositionLabels({ version: 1, statSlots }));
  const text = out.finish().toString();
  for (const c of config.clusters) {
    for (const [resource, b] of Object.entries(res.breakers(c))) {
      t.equal(sample(text, `remora_circuit_breaker_remaining{cluster="${c.name}",resource="${resource}"}`), b.remaining, `${c.name} ${resource}: remaining ${b.remaining}`);
      t.equal(sample(text, `remora_circuit_breaker_open{cluster="${c.name}",resource="${resource}"}`), b.open ? 1 : 0, `${c.name} ${resource}: open`);
    }
  }
  t.equal(sample(text, 'remora_circuit_breaker_remaining{cluster="svc-a",resource="connections"}'), 5, 'the configured limit');
  t.equal(sample(text, 'remora_cluster_endpoints{cluster="svc-a",state="healthy"}'), 2, 'two healthy endpoints');
  t.equal(sample(text, 'remora_cluster_endpoints{cluster="svc-b",state="healthy"}'), 1, 'one healthy endpoint');
  t.equal(sample(text, 'remora_cluster_endpoints{cluster="svc-b",state="ejected"}'), 0, 'none ejected');
  t.equal(sample(text, 'remora_outlier_ejections_active{cluster="svc-b"}'), 0, 'a cluster with outlier detection has the family');
  t.equal(sample(text, 'remora_outlier_ejections_active{cluster="svc-a"}'), undefined, 'a cluster without it has none');
});
