// The Prometheus test helper (test/helpers/prometheus.ts) proved against a hand-written
// exposition served by a tiny node:http server: promtool accepts it and rejects broken
// ones, a real Prometheus scrapes it (also on a non-default metrics_path), and PromQL
// sees the counter and the histogram. Skipped where prometheus/promtool are not
// installed, unless REMORA_REQUIRE_PROMETHEUS=1 (set by .ci/run).

import t from 'tap';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import {
  PROMETHEUS_SKIP_REASON,
  prometheusInstalled,
  prometheusRequired,
  promtoolCheckMetrics,
  startPrometheus,
} from '../helpers/prometheus.js';

/** A valid exposition: a labelled counter and a histogram. */
function exposition(requests200: number): string {
  return [
    '# HELP demo_requests_total Requests handled, by status code.',
    '# TYPE demo_requests_total counter',
    `demo_requests_total{code="200"} ${requests200}`,
    'demo_requests_total{code="500"} 3',
    '# HELP demo_request_duration_seconds Request duration.',
    '# TYPE demo_request_duration_seconds histogram',
    'demo_request_duration_seconds_bucket{le="0.005"} 10',
    'demo_request_duration_seconds_bucket{le="0.1"} 40',
    'demo_request_duration_seconds_bucket{le="+Inf"} 45',
    'demo_request_duration_seconds_sum 1.5',
    'demo_request_duration_seconds_count 45',
    '',
  ].join('\n');
}

/** Serves `body()` on each path in `paths`, 404 elsewhere; counts scrapes. */
async function metricsServer(paths: string[], body: () => string) {
  let scrapes = 0;
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && paths.includes(req.url ?? '')) {
      scrapes++;
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(body());
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    scrapes: () => scrapes,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

if (!prometheusInstalled() && !prometheusRequired()) {
  t.plan(0, PROMETHEUS_SKIP_REASON);
} else {
  if (!prometheusInstalled()) {
    t.fail(`REMORA_REQUIRE_PROMETHEUS=1 but ${PROMETHEUS_SKIP_REASON}`);
  }

  t.test('promtool check metrics', async (t) => {
    const good = await promtoolCheckMetrics(exposition(42));
    t.equal(good.code, 0, `a valid exposition with a counter and a histogram passes (output: ${good.output.trim() || 'none'})`);

    const dupHelp = await promtoolCheckMetrics(
      '# HELP a_total One.\n# TYPE a_total counter\n# HELP a_total Two.\na_total 1\n',
    );
    t.not(dupHelp.code, 0, 'a second HELP line for one metric is rejected');
    t.match(dupHelp.output, /second HELP/, 'and promtool says why');

    const dupType = await promtoolCheckMetrics(
      '# HELP a_total One.\n# TYPE a_total counter\na_total 1\n# TYPE a_total counter\n',
    );
    t.not(dupType.code, 0, 'a TYPE line after the samples (a duplicate TYPE) is rejected');

    const badName = await promtoolCheckMetrics('# HELP bad-name_total x\n# TYPE bad-name_total counter\nbad-name_total 1\n');
    t.not(badName.code, 0, 'an invalid metric name is rejected');
    t.match(badName.output, /invalid metric name/, 'and promtool says why');

    const badValue = await promtoolCheckMetrics('# HELP a_total x\n# TYPE a_total counter\na_total one\n');
    t.not(badValue.code, 0, 'a non-numeric sample value is rejected');

    const lint = await promtoolCheckMetrics('# HELP requests Requests.\n# TYPE requests counter\nrequests 1\n');
    t.equal(lint.code, 3, 'a counter without the _total suffix parses but fails lint (exit 3)');
    t.match(lint.output, /_total/, 'and the lint message names the suffix');
  });

  t.test('Prometheus scrapes a node:http target and answers PromQL', async (t) => {
    let requests200 = 42;
    const target = await metricsServer(['/metrics', '/stats/prometheus'], () => exposition(requests200));
    t.teardown(() => target.close());
    const prom = await startPrometheus([
      { job: 'demo', port: target.port },
      { job: 'demo_stats', port: target.port, path: '/stats/prometheus' },
    ]);
    t.teardown(() => prom.stop());
    t.ok(prom.port > 0 && prom.pid > 0, `prometheus runs (pid ${prom.pid}, port ${prom.port})`);

    await prom.waitForTargetsUp(15_000);
    const targets = await prom.targets();
    t.same(
      targets.map((x) => [x.labels.job, x.health, new URL(x.scrapeUrl).pathname]).sort(),
      [
        ['demo', 'up', '/metrics'],
        ['demo_stats', 'up', '/stats/prometheus'],
      ],
      'both targets are up, each on its own metrics_path',
    );
    t.ok(target.scrapes() >= 2, `the server was scraped (${target.scrapes()} times)`);

    const up = await prom.query('up');
    t.same(up.map((s) => [s.metric.job, s.value]).sort(), [['demo', 1], ['demo_stats', 1]], 'up is 1 for both jobs');

    const counter = await prom.query('demo_requests_total{job="demo",code="200"}');
    t.equal(counter.length, 1, 'one series for the 200 counter');
    t.equal(counter[0].value, 42, "the query returns the counter's value");
    t.equal(counter[0].metric.__name__, 'demo_requests_total', 'with its metric name');
    t.equal(counter[0].metric.instance, `127.0.0.1:${target.port}`, 'and the instance label of the target');

    const sum = await prom.query('sum(demo_requests_total{job="demo"})');
    t.equal(sum[0]?.value, 45, 'an aggregation over both codes gives 42 + 3');

    const count = await prom.query('demo_request_duration_seconds_count{job="demo"}');
    t.equal(count[0]?.value, 45, 'the histogram _count is scraped');
    const p50 = await prom.query('histogram_quantile(0.5, demo_request_duration_seconds_bucket{job="demo"})');
    // rank 22.5 falls in (0.005, 0.1] holding 30 observations: 0.005 + 12.5/30 * 0.095.
    t.ok(Math.abs((p50[0]?.value ?? NaN) - (0.005 + (12.5 / 30) * 0.095)) < 1e-9, `histogram_quantile interpolates the buckets (${p50[0]?.value})`);

    const scalar = await prom.query('scalar(sum(demo_requests_total{job="demo"}))');
    t.same(scalar.map((s) => [s.metric, s.value]), [[{}, 45]], 'a scalar result comes back as one unlabelled sample');

    requests200 = 50;
    const fresh = await prom.waitForQuery('demo_requests_total{job="demo",code="200"}', (r) => r[0]?.value === 50, 10_000);
    t.equal(fresh[0].value, 50, 'a later scrape picks up the new counter value (waitForQuery)');

    await t.rejects(prom.query('sum(('), { message: /bad_data|parse error/ }, 'a malformed PromQL query rejects with the error from Prometheus');

    const { pid, dir } = prom;
    await prom.stop();
    t.notOk(alive(pid), 'stop() ends the prometheus process');
    t.notOk(existsSync(dir), 'stop() removes the temp dir');
    await prom.stop();
    t.pass('stop() twice is harmless');
  });

  t.test('waitForTargetsUp rejects when a target cannot be scraped', async (t) => {
    const target = await metricsServer(['/metrics'], () => exposition(1));
    t.teardown(() => target.close());
    const prom = await startPrometheus([
      { job: 'ok', port: target.port },
      { job: 'wrong_path', port: target.port, path: '/nothing-here' },
    ]);
    t.teardown(() => prom.stop());
    await t.rejects(prom.waitForTargetsUp(9000), { message: /wrong_path http:\S+\/nothing-here: down \(.*404/ }, 'the error names the target that is down and its last scrape error (404)');
    t.equal((await prom.targets()).find((x) => x.labels.job === 'ok')?.health, 'up', 'while the other target is up');
  });
}
