// Prometheus metrics end to end: counters summed over workers from shared memory, histogram
// counts, bounded label cardinality, promtool on a scrape under traffic, a real Prometheus
// server scraping Remora, and the /stats, /server_info, /logging, /reset_counters admin paths.
import t from 'tap';
import http from 'node:http';
import { admin, namedUpstream, request, simpleConfig, startRemora, type RemoraProcess } from '../helpers/remora.js';
import {
  PROMETHEUS_SKIP_REASON,
  prometheusInstalled,
  prometheusRequired,
  promtoolCheckMetrics,
  startPrometheus,
} from '../helpers/prometheus.js';

/** Value of one series in an exposition, e.g. `remora_x{a="b"}`; 0 when absent. */
function sample(text: string, series: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return 0;
}

function seriesCount(text: string): number {
  return text.split('\n').filter((l) => l.startsWith('remora_') && !l.startsWith('remora_process') && !l.startsWith('remora_nodejs')).length;
}

async function scrape(remora: RemoraProcess): Promise<string> {
  return (await admin(remora.adminPort, '/metrics')).text;
}

/** Sends `n` requests on fresh connections (so both workers get some), `concurrency` at a time. */
async function send(port: number, n: number, path: (i: number) => string, headers: (i: number) => Record<string, string> = () => ({})) {
  const agent = new http.Agent({ keepAlive: false, maxSockets: 16 });
  let next = 0;
  const statuses: number[] = [];
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < n) {
        const i = next++;
        statuses.push((await request(port, { path: path(i), headers: headers(i), agent })).status);
      }
    }),
  );
  agent.destroy();
  return statuses;
}

t.test('metrics add up over two workers, stay bounded, and pass promtool', async (t) => {
  const up = await namedUpstream('a');
  const config = simpleConfig([up.port], { workers: 2 });
  const remora = await startRemora(config);
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const port = remora.ports.main;

  const statuses = await send(port, 400, (i) => `/n/${i}`);
  t.equal(statuses.filter((s) => s === 200).length, 400, 'all 400 requests answered 200');
  const workers = JSON.parse((await admin(remora.adminPort, '/workers')).text) as { workers: { stats: { requests: number } }[] };
  t.ok(
    workers.workers.every((w) => w.stats.requests > 0),
    `both workers served requests (saw ${workers.workers.map((w) => w.stats.requests).join(', ')})`,
  );

  let text = await scrape(remora);
  t.equal(sample(text, 'remora_downstream_requests_total{listener="main",status_class="2xx"}'), 400, '2xx counter = 400 requests sent');
  t.equal(sample(text, 'remora_upstream_requests_total{cluster="up",status_class="2xx"}'), 400, 'upstream 2xx = 400');
  t.equal(sample(text, 'remora_downstream_request_duration_seconds_count{listener="main"}'), 400, 'downstream histogram count = 400');
  t.equal(sample(text, 'remora_upstream_request_duration_seconds_count{cluster="up"}'), 400, 'upstream histogram count = 400');
  t.equal(sample(text, 'remora_proxy_overhead_seconds_count{cluster="up"}'), 400, 'overhead histogram count = 400');
  t.equal(
    sample(text, 'remora_downstream_request_duration_seconds_bucket{listener="main",le="+Inf"}'),
    400,
    '+Inf bucket = count',
  );
  t.ok(sample(text, 'remora_upstream_connections_total{cluster="up"}') >= 2, 'upstream connections were opened');
  t.equal(sample(text, 'remora_downstream_requests_active{listener="main"}'), 0, 'nothing in flight after the run');

  // Cardinality: 10,000 distinct paths and user ids add no series.
  const before = seriesCount(text);
  await send(port, 10_000, (i) => `/user/${i}/item/${i * 7}`, (i) => ({ 'x-user-id': `user-${i}` }));
  text = await scrape(remora);
  t.equal(seriesCount(text), before, `series count stays ${before} after 10,000 distinct paths and user ids`);
  t.equal(sample(text, 'remora_downstream_requests_total{listener="main",status_class="2xx"}'), 10_400, '2xx counter = 10,400');
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds']) {
    const standard = sample(text, name);
    t.ok(standard > 0, `${name} is exported under Prometheus' standard name (saw ${standard})`);
  }
  t.equal(sample(text, 'process_start_time_seconds'), sample(text, 'remora_process_start_time_seconds'), 'the same value as its remora_ name');

  if (!prometheusInstalled()) {
    t.notOk(prometheusRequired(), 'promtool must be installed when REMORA_REQUIRE_PROMETHEUS=1');
    t.comment(`promtool check skipped: ${PROMETHEUS_SKIP_REASON}`);
  } else {
    // A scrape taken while traffic flows.
    const traffic = send(port, 500, (i) => `/t/${i}`);
    const during = await scrape(remora);
    await traffic;
    const check = await promtoolCheckMetrics(during);
    t.equal(check.code, 0, `promtool check metrics accepts a scrape under traffic: ${check.output}`);
  }
});

t.test('a real Prometheus server scrapes Remora', { skip: prometheusInstalled() ? false : PROMETHEUS_SKIP_REASON }, async (t) => {
  const up = await namedUpstream('a');
  const remora = await startRemora(simpleConfig([up.port], { workers: 2 }));
  const prom = await startPrometheus([{ job: 'remora', port: remora.adminPort, path: '/metrics' }]);
  t.teardown(async () => {
    await prom.stop();
    await remora.stop();
    await up.close();
  });
  await send(remora.ports.main, 123, (i) => `/p/${i}`);
  await prom.waitForTargetsUp(20_000);
  const result = await prom.waitForQuery(
    'sum(remora_downstream_requests_total{job="remora",status_class="2xx"})',
    (s) => s.length === 1 && s[0].value === 123,
    20_000,
  );
  t.equal(result[0].value, 123, 'PromQL sum over the scraped counter equals the 123 requests sent');
});

t.test('/stats, /server_info, /logging and /reset_counters', async (t) => {
  const up = await namedUpstream('a');
  const remora = await startRemora(simpleConfig([up.port]));
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  for (let i = 0; i < 20; i++) await request(remora.ports.main, { path: `/s/${i}` });

  const text = (await admin(remora.adminPort, '/stats')).text;
  t.match(text, /^listener\.main\.downstream_rq_2xx: 20$/m, 'text /stats has the 2xx count');
  t.match(text, /^cluster\.up\.upstream_rq_time: count=20 P50=\d+us P90=\d+us P99=\d+us P99\.9=\d+us$/m, 'percentiles in /stats');

  const json = JSON.parse((await admin(remora.adminPort, '/stats?format=json&filter=^cluster\\.')).text) as {
    stats: { name: string; value: number }[];
    histograms: { name: string; count: number; p99_us: number }[];
  };
  t.ok(json.stats.length > 0 && json.stats.every((s) => s.name.startsWith('cluster.')), 'filter keeps only cluster stats');
  t.equal(json.stats.find((s) => s.name === 'cluster.up.upstream_rq_2xx')?.value, 20, 'json upstream_rq_2xx = 20');
  const hist = json.histograms.find((h) => h.name === 'cluster.up.upstream_rq_time');
  t.equal(hist?.count, 20, 'json histogram count = 20');
  t.ok((hist?.p99_us ?? 0) > 0, 'p99 is positive');
  t.equal((await admin(remora.adminPort, '/stats?filter=(')).status, 400, 'a bad filter regex is a 400');

  const info = JSON.parse((await admin(remora.adminPort, '/server_info')).text) as Record<string, unknown>;
  t.equal(info.config_version, 1, 'server_info has the config version');
  t.equal(info.workers, 1, 'server_info has the worker count');

  t.equal((await admin(remora.adminPort, '/logging?level=debug', 'GET')).text.includes('log level: info'), true, 'GET /logging only shows the level');
  t.equal((await admin(remora.adminPort, '/logging?level=debug', 'POST')).status, 200, 'POST /logging sets the level');
  t.match(JSON.parse((await admin(remora.adminPort, '/server_info')).text).log_level, 'debug', 'level is now debug');
  t.equal((await admin(remora.adminPort, '/logging?level=loud', 'POST')).status, 400, 'unknown level is a 400');

  t.equal((await admin(remora.adminPort, '/reset_counters', 'POST')).status, 200, 'reset_counters answers 200');
  const after = (await admin(remora.adminPort, '/stats')).text;
  t.match(after, /^listener\.main\.downstream_rq_2xx: 0$/m, 'counters are zero after the reset');
  await request(remora.ports.main, { path: '/again' });
  t.match((await admin(remora.adminPort, '/stats')).text, /^listener\.main\.downstream_rq_2xx: 1$/m, 'and count again from zero');
});

t.test('stats.enabled: false records nothing and leaves traffic series out', async (t) => {
  const up = await namedUpstream('a');
  const remora = await startRemora({ ...simpleConfig([up.port]), stats: { enabled: false } });
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  for (let i = 0; i < 5; i++) t.equal((await request(remora.ports.main, { path: '/x' })).status, 200, 'request still served');
  const text = await scrape(remora);
  t.notMatch(text, /remora_downstream_requests_total/, 'no downstream request series');
  t.match(text, /remora_config_version 1/, 'process-level series remain');
  t.match((await admin(remora.adminPort, '/stats')).text, /stats are disabled/, '/stats says why it is empty');
});
