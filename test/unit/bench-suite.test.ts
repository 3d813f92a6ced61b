// Unit tests for the benchmark suite's pure logic (bench/lib/suite-plan.ts, svg.ts,
// peers.ts, harness.ts statistics): options and scenario planning, statistics against
// the direct baseline, target checks, SVG output and peer config generation. No
// benchmark runs here and nothing asserts a speed.

import t from 'tap';
import { median, spread } from '../../bench/lib/harness.js';
import { haproxyConfig, nginxConfig } from '../../bench/lib/peers.js';
import {
  checkTargets,
  defaultWorkers,
  numberList,
  pairedSpread,
  planSteps,
  progressLine,
  ratioSpread,
  resolveOptions,
  stepTable,
  summarizeClosed,
  summarizeLatency,
  targetsTable,
  type LatencyRound,
  type StepResult,
} from '../../bench/lib/suite-plan.js';
import { barChart, niceStep } from '../../bench/lib/svg.js';

t.test('options: defaults, --quick, overrides and errors', async (t) => {
  const full = resolveOptions({}, 2, true);
  t.same(full.groups, ['latency', 'throughput', 'payload', 'workers']);
  t.same(full.rates, [1000, 5000]);
  t.same(full.connections, [10, 50, 200]);
  t.same(full.sizes, [100, 4096, 65536]);
  t.same(full.workers, [1, 2]);
  t.equal(full.rounds, 3);
  t.equal(full.pin, true);
  t.equal(full.peers, true);

  const quick = resolveOptions({ quick: true }, 2, true);
  t.equal(quick.rounds, 1);
  t.ok(quick.duration < full.duration, 'shorter runs');
  t.ok(quick.connections.length < full.connections.length, 'fewer scenarios');

  const o = resolveOptions({ quick: true, scenarios: 'workers,latency', duration: '2', rounds: '4', rates: '500', workers: '1,3', 'no-pin': true, 'no-peers': true }, 2, true);
  t.same(o.groups, ['latency', 'workers'], 'suite order kept');
  t.equal(o.duration, 2);
  t.equal(o.rounds, 4);
  t.same(o.rates, [500]);
  t.same(o.workers, [1, 3]);
  t.equal(o.pin, false);
  t.equal(o.peers, false);
  t.equal(resolveOptions({}, 2, false).pin, false, 'no pinning where it is impossible');

  t.throws(() => resolveOptions({ scenarios: 'latency,bogus' }, 2, true), /bogus/);
  t.throws(() => resolveOptions({ rates: '1000,x' }, 2, true), /--rates/);
  t.throws(() => resolveOptions({ duration: '0' }, 2, true), /--duration/);
  t.same(numberList(' 1, 2 ,3 ', 'x'), [1, 2, 3]);
  t.same(defaultWorkers(1), [1]);
  t.same(defaultWorkers(2), [1, 2]);
  t.same(defaultWorkers(16), [1, 2, 4, 8, 16]);
  t.same(defaultWorkers(6), [1, 2, 4, 6]);
});

t.test('planning: steps per scenario, targets, estimates and progress', async (t) => {
  const o = resolveOptions({ duration: '2', rounds: '2', warmup: '1' }, 2, true);
  const steps = planSteps(o, ['remora', 'nginx']);
  t.same(
    steps.map((s) => s.id),
    ['latency-1000', 'latency-5000', 'throughput-c10', 'throughput-c50', 'throughput-c200', 'payload-100', 'payload-4096', 'payload-65536', 'workers-1', 'workers-2'],
  );
  t.same(steps[0].targets, ['direct', 'remora', 'nginx']);
  t.equal(steps[0].tool, 'open-loop');
  t.equal(steps[2].tool, 'autocannon');
  t.same(steps[5].targets, ['direct', 'remora'], 'payload: direct and Remora only');
  t.same(steps[9].targets, ['direct', 'remora-2w']);
  // latency-1000: 3 targets × 2 rounds × (2 s + 0.5 s discarded) + 3 warm-ups of 1 s
  t.equal(steps[0].estimateS, 18);
  // latency-5000: warmed already
  t.equal(steps[1].estimateS, 15);
  // throughput-c10: 3 × 2 × 2 + 3 warm-ups (autocannon is a new tool)
  t.equal(steps[2].estimateS, 15);
  t.equal(steps[3].estimateS, 12);
  // workers-1: 2 × 2 × 2 + 1 warm-up (remora-1w; direct warmed) + 1 s start
  t.equal(steps[8].estimateS, 10);

  const total = steps.reduce((s, x) => s + x.estimateS, 0);
  t.equal(progressLine(steps, 0), `scenario 1/10: latency-1000 — ~${Math.ceil(total)}s left`);
  t.match(progressLine(steps, 9), /^scenario 10\/10: workers-2 — ~10s left$/);

  const only = planSteps(resolveOptions({ scenarios: 'throughput', connections: '50' }, 2, true), ['remora']);
  t.same(only.map((s) => s.id), ['throughput-c50']);
});

t.test('statistics: median, spread, paired differences and ratios', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 2, 3]), 2.5);
  t.same(spread([10, 30, 20], 0), { median: 20, min: 10, max: 30 });
  t.same(pairedSpread([110, 130, 90], [100, 100, 100]), { median: 10, min: -10, max: 30 });
  t.same(ratioSpread([50, 60], [100, 100]), { median: 0.55, min: 0.5, max: 0.6 });
  t.equal(ratioSpread([50], [0]), null, 'no ratio against a zero baseline');

  const r = (p50: number, p99: number): LatencyRound => ({ p50, p90: p50, p99, p999: p99, requests: 100, errors: 0 });
  const rows = summarizeLatency({ direct: [r(100, 200), r(120, 260)], remora: [r(150, 400), r(180, 420)] }, ['direct', 'remora']);
  t.equal(rows[0].added, null);
  t.same(rows[1].added!.p50, { median: 55, min: 50, max: 60 });
  t.same(rows[1].added!.p99, { median: 180, min: 160, max: 200 });
  t.equal(rows[1].absolute.p50, 165);
  t.equal(rows[1].requests, 200);

  const closed = summarizeClosed(
    { direct: [{ rps: 1000, errors: 0 }, { rps: 2000, errors: 0 }], 'remora-2w': [{ rps: 800, errors: 1, rssPeakMb: 90 }, { rps: 1000, errors: 0, rssPeakMb: 95 }] },
    ['direct', 'remora-2w'],
    2,
  );
  t.same(closed[1].rps, { median: 900, min: 800, max: 1000 });
  t.same(closed[1].vsDirect, { median: 0.65, min: 0.5, max: 0.8 });
  t.same(closed[1].perCore, { median: 450, min: 400, max: 500 });
  t.equal(closed[1].rssPeakMb, 95);
  t.equal(closed[1].errors, 1);
  t.equal(closed[0].perCore, null);
  t.match(stepTable({ id: 'workers-2', group: 'workers', tool: 'autocannon', param: 2, closed }).join('\n'), /\| remora-2w \| 900 \(800–1000\) \| 0\.65 \(0\.5–0\.8\) \| 450 \(400–500\) \| 95 \| 1 \|/);
});

function latencyResult(rate: number, remora: [number, number], nginx?: number): StepResult {
  const row = (target: string, p50: number, p99: number) => ({
    target,
    requests: 1,
    errors: 0,
    absolute: { p50, p90: p50, p99, p999: p99 },
    added: { p50: spread([p50]), p90: spread([p50]), p99: spread([p99]), p999: spread([p99]) },
  });
  return { id: `latency-${rate}`, group: 'latency', tool: 'open-loop', param: rate, latency: [row('remora', ...remora), ...(nginx !== undefined ? [row('nginx', nginx, 0)] : [])] };
}

function closedResult(group: 'throughput' | 'workers', param: number, rows: Record<string, number>, rss: number | null = null): StepResult {
  return {
    id: `${group}-${param}`,
    group,
    tool: 'autocannon',
    param,
    closed: Object.entries(rows).map(([target, rps]) => ({ target, rps: spread([rps]), vsDirect: null, perCore: null, rssPeakMb: target === 'direct' ? null : rss, errors: 0 })),
  };
}

t.test('target checks: met, missed, not measured', async (t) => {
  const none = checkTargets([]);
  t.equal(none.length, 7);
  t.ok(none.every((c) => c.verdict === 'not measured'), 'nothing measured');

  const checks = checkTargets([
    latencyResult(1000, [80, 400], 100),
    latencyResult(5000, [120, 700], 100),
    closedResult('throughput', 50, { direct: 20000, remora: 15000, nginx: 14000, 'http-proxy': 5000, 'fastify-proxy': 5100 }),
    closedResult('workers', 2, { direct: 20000, 'remora-2w': 18000 }, 101),
  ]);
  const v = Object.fromEntries(checks.map((c) => [c.target, c.verdict]));
  t.equal(v['p99 added ≤ 0.5 ms at 1,000 req/s'], 'met');
  t.equal(v['p99 added ≤ 0.5 ms at 5,000 req/s'], 'missed');
  t.equal(v["median added latency ≤ nginx's"], 'missed', '5000 req/s: 120 > 100');
  t.equal(v['1-worker throughput ≥ nginx with 1 worker'], 'met');
  t.equal(v['throughput ≥ 3× node http-proxy'], 'met');
  t.equal(v['throughput ≥ 3× @fastify/http-proxy'], 'missed', '15000 < 3 × 5100');
  t.equal(v['RSS ≤ 100 MB with 2 workers under load'], 'missed');
  t.match(targetsTable(checks).join('\n'), /\| p99 added ≤ 0\.5 ms at 1,000 req\/s \| \*\*met\*\* \| remora \+400 µs/);

  const noPeers = checkTargets([latencyResult(1000, [80, 400]), closedResult('throughput', 50, { direct: 1, remora: 1 })]);
  t.equal(noPeers.find((c) => c.target.startsWith('1-worker'))!.verdict, 'not measured', 'no nginx, not measured');
});

t.test('SVG bar chart: well-formed, one <rect> per bar', async (t) => {
  const svg = barChart({
    title: 'Latency <test> & co',
    unit: 'µs',
    series: ['p50', 'p90', 'p99'],
    groups: [
      { label: 'direct', values: [100, 150, 300] },
      { label: 'remora', values: [-20, 250, null] },
    ],
  });
  t.ok(svg.startsWith('<svg'), 'starts with <svg');
  t.ok(svg.trimEnd().endsWith('</svg>'), 'ends with </svg>');
  t.equal(svg.match(/<rect /g)?.length, 5, 'one rect per non-null bar');
  t.notMatch(svg, /<test>/, 'text is escaped');
  t.match(svg, /Latency &lt;test&gt; &amp; co/);
  t.notMatch(svg, /NaN|undefined/);
  // every opened tag is closed or self-closed
  const open = (svg.match(/<(svg|text|rect|title)\b/g) ?? []).length;
  const closed = (svg.match(/<\/(svg|text|rect|title)>/g) ?? []).length;
  t.equal(open, closed, 'balanced tags');
  for (const h of svg.matchAll(/height="([-\d.]+)"/g)) t.ok(Number(h[1]) >= 0, 'no negative heights');
  t.equal(barChart({ title: 'empty', unit: 'x', series: ['a'], groups: [] }).match(/<rect /g), null, 'an empty chart has no bars');
  t.equal(niceStep(100), 20);
  t.equal(niceStep(7), 2);
});

t.test('peer configs: nginx and HAProxy', async (t) => {
  const o = { port: 18080, upstreamPort: 19090, workers: 2, dir: '/tmp/x' };
  const nginx = nginxConfig(o);
  t.match(nginx, /worker_processes 2;/);
  t.match(nginx, /listen 127\.0\.0\.1:18080;/);
  t.match(nginx, /server 127\.0\.0\.1:19090; keepalive 128;/);
  t.match(nginx, /daemon off;/);
  t.match(nginx, /pid \/tmp\/x\/nginx\.pid;/);
  t.equal((nginx.match(/{/g) ?? []).length, (nginx.match(/}/g) ?? []).length, 'balanced braces');
  const haproxy = haproxyConfig(o);
  t.match(haproxy, /nbthread 2/);
  t.match(haproxy, /bind 127\.0\.0\.1:18080/);
  t.match(haproxy, /server s1 127\.0\.0\.1:19090/);
  t.match(haproxy, /http-reuse always/);
});
