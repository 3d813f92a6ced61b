// Unit tests for the benchmark suite's pure logic (bench/lib/suite-plan.ts, suite-report.ts, svg.ts,
// peers.ts, remora-config.ts, closed-loop.ts, conn-loop.ts, harness.ts statistics):
// options, CPU layout and scenario planning, statistics against the baseline, memory and
// soak statistics, target checks, Markdown tables, SVG output, peer and Remora config
// generation. No benchmark runs here and nothing asserts a speed.

import t from 'tap';
import { median, spread } from '../../bench/lib/harness.js';
import { autocannonWorkersFor } from '../../bench/lib/closed-loop.js';
import { requestHead } from '../../bench/lib/conn-loop.js';
import { parsePidStat, parseProcStat, shareOf } from '../../bench/lib/host-load.js';
import { haproxyConfig, nginxConfig } from '../../bench/lib/peers.js';
import { ALL_OFF, benchRemoraConfig, metricSum, sanityOf } from '../../bench/lib/remora-config.js';
import {
  FEATURE_VARIANTS,
  defaultWorkers,
  numberList,
  pairedSpread,
  planLayout,
  planSteps,
  progressLine,
  proxyCores,
  ratioSpread,
  resolveOptions,
  soakGrowth,
  summarizeClosed,
  summarizeConnections,
  summarizeLatency,
  summarizeMemory,
  workerTargets,
  type LatencyRound,
  type StepResult,
} from '../../bench/lib/suite-plan.js';
import { checkTargets, stepTable, stepTitle, targetsTable } from '../../bench/lib/suite-report.js';
import { barChart, niceStep } from '../../bench/lib/svg.js';

t.test('options: defaults, --quick, overrides and errors', async (t) => {
  const full = resolveOptions({}, 2, true);
  t.same(full.groups, ['latency', 'throughput', 'payload', 'body', 'connections', 'features', 'workers', 'memory']);
  t.same(full.rates, [1000, 5000]);
  t.same(full.connections, [10, 50, 200]);
  t.same(full.sizes, [100, 4096, 65536, 1048576]);
  t.same(full.bodySizes, [4096]);
  t.equal(full.lanes, 16);
  t.same(full.workers, [1, 2]);
  t.equal(full.soak, false, 'no soak unless asked');
  t.equal(full.soakSeconds, 600);
  t.equal(full.soakRate, 1000);
  t.equal(full.autocannonWorkers, 'auto');
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

  const soak = resolveOptions({ scenarios: 'latency', 'soak-seconds': '30', 'autocannon-workers': '3', 'body-sizes': '1024,4096', lanes: '4' }, 2, true);
  t.equal(soak.soak, true, '--soak-seconds implies --soak');
  t.equal(soak.soakSeconds, 30);
  t.same(soak.groups, ['latency', 'memory'], 'the soak brings the memory scenario');
  t.equal(soak.autocannonWorkers, 3);
  t.same(soak.bodySizes, [1024, 4096]);
  t.equal(soak.lanes, 4);
  t.equal(resolveOptions({ quick: true, soak: true }, 2, true).soakSeconds, 20, '--quick shortens the soak');
  t.throws(() => resolveOptions({ 'autocannon-workers': '-1' }, 2, true), /--autocannon-workers/);
  t.throws(() => resolveOptions({ 'autocannon-workers': 'many' }, 2, true), /--autocannon-workers/);
  t.throws(() => resolveOptions({ 'soak-seconds': '0' }, 2, true), /--soak-seconds/);
  t.throws(() => resolveOptions({ scenarios: 'latency,bogus' }, 2, true), /bogus/);
  t.throws(() => resolveOptions({ rates: '1000,x' }, 2, true), /--rates/);
  t.throws(() => resolveOptions({ duration: '0' }, 2, true), /--duration/);
  t.same(numberList(' 1, 2 ,3 ', 'x'), [1, 2, 3]);
  t.same(defaultWorkers(1), [1]);
  t.same(defaultWorkers(2), [1, 2]);
  t.same(defaultWorkers(16), [1, 2, 4, 8, 16]);
  t.same(defaultWorkers(6), [1, 2, 4, 6]);
});

t.test('layout: cores for generators, upstream and proxies; autocannon workers', async (t) => {
  const two = planLayout(2, true, 'auto');
  t.equal(two.generator, '0', 'on 2 cores the generator shares core 0');
  t.equal(two.upstream, 0);
  t.equal(two.generatorOwnCores, 0);
  t.equal(two.autocannonWorkers, 0, 'no worker threads on a shared core');
  t.match(two.autocannonWhy, /shares core 0/);
  t.equal(proxyCores(two, 1), 1);
  t.equal(proxyCores(two, 2), null, '2 workers do not fit next to core 0');

  const sixteen = planLayout(16, true, 'auto');
  t.equal(sixteen.generator, '12-15', 'the top quarter of the cores');
  t.equal(sixteen.generatorOwnCores, 4);
  t.equal(sixteen.autocannonWorkers, 4, 'one autocannon worker per generator core');
  t.equal(sixteen.maxPinnedWorkers, 11);
  t.equal(proxyCores(sixteen, 8), '1-8');
  t.equal(proxyCores(sixteen, 12), null);
  t.equal(planLayout(4, true, 'auto').generator, '2-3', 'at least 2 generator cores');
  t.equal(planLayout(4, true, 'auto').maxPinnedWorkers, 1);

  t.equal(planLayout(2, true, 3).autocannonWorkers, 3, 'an explicit count wins');
  const free = planLayout(8, false, 'auto');
  t.equal(free.generator, null);
  t.equal(proxyCores(free, 1), null, 'nothing pinned without pinning');
  t.equal(free.autocannonWorkers, 2);
  t.equal(planLayout(2, false, 'auto').autocannonWorkers, 0);

  t.equal(autocannonWorkersFor(50, 0), 0);
  t.equal(autocannonWorkersFor(50, 4), 2, 'largest count ≤ 4 dividing 50');
  t.equal(autocannonWorkersFor(200, 4), 4);
  t.equal(autocannonWorkersFor(10, 3), 2);
  t.equal(autocannonWorkersFor(3, 8), 3, 'never more threads than connections');
});

t.test('planning: steps per scenario, targets, estimates and progress', async (t) => {
  const o = resolveOptions({ duration: '2', rounds: '2', warmup: '1' }, 2, true);
  const steps = planSteps(o, ['remora', 'nginx', 'http-proxy']);
  t.same(steps.map((s) => s.id), [
    'latency-1000',
    'latency-5000',
    'throughput-c10',
    'throughput-c50',
    'throughput-c200',
    'payload-100',
    'payload-4096',
    'payload-65536',
    'payload-1048576',
    'body-4096',
    'connections-l16',
    'features',
    'workers-1',
    'workers-2',
    'memory',
  ]);
  const by = Object.fromEntries(steps.map((s) => [s.id, s]));
  t.same(by['latency-1000'].targets, ['direct', 'remora', 'nginx', 'http-proxy']);
  t.equal(by['latency-1000'].tool, 'open-loop');
  t.equal(by['throughput-c10'].tool, 'autocannon');
  t.same(by['payload-1048576'].targets, ['direct', 'remora', 'nginx', 'http-proxy'], 'peers in the payload scenario');
  t.same(by['body-4096'].targets, ['direct', 'remora', 'nginx', 'http-proxy'], 'and with request bodies');
  t.equal(by['connections-l16'].tool, 'conn-loop');
  t.same(by['features'].targets, [...FEATURE_VARIANTS, 'direct'], 'the variants, then direct for the generator-bound rule');
  t.equal(by['features'].targets[0], 'all-off', 'the baseline first');
  t.same(by['workers-1'].targets, ['direct', 'remora-1w', 'nginx-1w', 'http-proxy-1w'], 'Node peers at 1 worker');
  t.same(by['workers-2'].targets, ['direct', 'remora-2w', 'nginx-2w'], 'only scaling peers beyond');
  t.same(by['memory'].targets, ['remora-2w']);
  // latency-1000: 4 targets × 2 rounds × (2 s + 0.5 s discarded) + 4 warm-ups of 1 s
  t.equal(by['latency-1000'].estimateS, 24);
  // latency-5000: warmed already
  t.equal(by['latency-5000'].estimateS, 20);
  // throughput-c10: 4 × 2 × 2 + 4 warm-ups (autocannon is a new tool)
  t.equal(by['throughput-c10'].estimateS, 20);
  t.equal(by['throughput-c50'].estimateS, 16);
  t.equal(by['payload-100'].estimateS, 16, 'warmed with autocannon already');
  // body: POST warms again
  t.equal(by['body-4096'].estimateS, 20);
  // connections: 4 × 2 rounds × 2 modes × 2 s + 4 warm-ups
  t.equal(by['connections-l16'].estimateS, 36);
  // features: 9 × 2 × 2 + 8 warm-ups (direct warmed) + 8 starts
  t.equal(by['features'].estimateS, 52);
  // workers-1: 4 × 2 × 2 + 3 warm-ups (direct warmed) + 3 starts
  t.equal(by['workers-1'].estimateS, 22);
  // memory: 1 s start + 2 s idle + 2 rounds × 2 s
  t.equal(by['memory'].estimateS, 7);

  const total = steps.reduce((s, x) => s + x.estimateS, 0);
  t.equal(progressLine(steps, 0), `scenario 1/15: latency-1000 — ~${Math.ceil(total)}s left`);
  t.match(progressLine(steps, 14), /^scenario 15\/15: memory — ~7s left$/);

  const only = planSteps(resolveOptions({ scenarios: 'throughput', connections: '50' }, 2, true), ['remora']);
  t.same(only.map((s) => s.id), ['throughput-c50']);
  const soak = planSteps(resolveOptions({ scenarios: 'memory', soak: true, warmup: '2', 'soak-seconds': '60' }, 2, true), ['remora']);
  t.same(soak.map((s) => s.id), ['memory', 'memory-soak']);
  t.equal(soak[1].tool, 'open-loop');
  t.equal(soak[1].estimateS, 62.5, 'warm-up + soak + the discarded half second');
  t.same(workerTargets(4, ['remora', 'haproxy', 'fastify-proxy']), ['direct', 'remora-4w', 'haproxy-4w']);
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
  t.same(closed[1].vsBase, { median: 0.65, min: 0.5, max: 0.8 });
  t.same(closed[1].perCore, { median: 450, min: 400, max: 500 });
  t.equal(closed[1].rssPeakMb, 95);
  t.equal(closed[1].errors, 1);
  t.equal(closed[0].perCore, null);
  t.match(stepTable({ id: 'workers-2', group: 'workers', tool: 'autocannon', param: 2, closed }).join('\n'), /\| remora-2w \| 900 \(800–1000\) \| 0\.65 \(0\.5–0\.8\) \| 450 \(400–500\) \| 95 \| 1 \|/);
});

t.test('statistics: features against all-off, connections, memory and soak', async (t) => {
  const feats = summarizeClosed(
    { 'all-off': [{ rps: 1000, errors: 0 }, { rps: 800, errors: 0 }, { rps: 1000, errors: 0 }], 'all-on': [{ rps: 900, errors: 0 }, { rps: 800, errors: 2 }, { rps: 850, errors: 0 }] },
    ['all-off', 'all-on'],
    null,
    'all-off',
  );
  t.equal(feats[0].vsBase, null, 'the baseline has no ratio');
  t.same(feats[1].vsBase, { median: 0.9, min: 0.85, max: 1 }, 'ratios paired per round');
  t.match(stepTable({ id: 'features', group: 'features', tool: 'autocannon', param: 50, base: 'all-off', closed: feats }).join('\n'), /\| target \| req\/s \| vs all-off \| errors \|/);

  const conn = summarizeConnections(
    {
      direct: [{ newRps: 4000, keepAliveRps: 10000, newErrors: 0, keepAliveErrors: 0 }, { newRps: 5000, keepAliveRps: 10000, newErrors: 0, keepAliveErrors: 0 }],
      remora: [{ newRps: 2000, keepAliveRps: 8000, newErrors: 1, keepAliveErrors: 0 }, { newRps: 3000, keepAliveRps: 6000, newErrors: 0, keepAliveErrors: 2 }],
    },
    ['direct', 'remora'],
  );
  t.same(conn[0].newVsKeepAlive, { median: 0.45, min: 0.4, max: 0.5 });
  t.equal(conn[0].newVsDirect, null);
  t.same(conn[1].newRps, { median: 2500, min: 2000, max: 3000 });
  t.same(conn[1].newVsKeepAlive, { median: 0.375, min: 0.25, max: 0.5 });
  t.same(conn[1].newVsDirect, { median: 0.55, min: 0.5, max: 0.6 });
  t.same(conn[1].keepAliveVsDirect, { median: 0.7, min: 0.6, max: 0.8 });
  t.equal(conn[1].newErrors, 1);
  t.equal(conn[1].keepAliveErrors, 2);
  const connTable = stepTable({ id: 'connections-l16', group: 'connections', tool: 'conn-loop', param: 16, connections: conn }).join('\n');
  t.match(connTable, /\| remora \| 2500 \(2000–3000\) \| 7000 \(6000–8000\) \| 0\.375 \(0\.25–0\.5\) \| 0\.55 \(0\.5–0\.6\) \| 0\.7 \(0\.6–0\.8\) \| 1 \/ 2 \|/);

  const mem = summarizeMemory(2, [60, 61, 62], [
    { rps: 9000, errors: 0, rssMb: [70, 80, 75] },
    { rps: 10000, errors: 1, rssMb: [76, 90, 78] },
  ]);
  t.equal(mem.idleMb, 61);
  t.equal(mem.peakMb, 90);
  t.same(mem.peakPerRound, { median: 85, min: 80, max: 90 });
  t.equal(mem.loadMedianMb, 77);
  t.equal(mem.samples, 9);
  t.equal(mem.errors, 1);
  t.match(stepTable({ id: 'memory', group: 'memory', tool: 'autocannon', param: 2, memory: mem }).join('\n'), /\| 2 workers \| 61 \| 77 \| 90 \| 85 \(80–90\) \| 9500 \(9000–10000\) \| 1 \|/);

  // 10 minutes at one sample per second: flat with a GC sawtooth, then a leak.
  const flat = Array.from({ length: 600 }, (_, i) => ({ t: i, mb: 80 + (i % 7) }));
  const g = soakGrowth(flat);
  t.equal(g.windowS, 60);
  t.equal(g.growthMb, 0, 'a sawtooth is not growth');
  t.ok(Math.abs(g.slopeMbPerMin) < 0.05, 'and has no slope');
  t.equal(g.minMb, 80);
  t.equal(g.maxMb, 86);
  const leak = soakGrowth(Array.from({ length: 600 }, (_, i) => ({ t: i, mb: 80 + i / 60 })));
  t.ok(leak.growthMb > 8 && leak.growthMb < 10, `1 MB/min over 10 min: ${leak.growthMb} MB`);
  t.equal(leak.slopeMbPerMin, 1);
  const short = soakGrowth(Array.from({ length: 31 }, (_, i) => ({ t: i, mb: 50 + (i >= 20 ? 6 : 0) })));
  t.equal(short.windowS, 10, 'a third of a short soak');
  t.equal(short.growthMb, 6);
  t.equal(soakGrowth([]).samples, 0);
  t.ok(Number.isNaN(soakGrowth([]).growthMb), 'no samples, no growth figure');

  t.match(stepTitle({ id: 'body-4096', group: 'body', tool: 'autocannon', param: 4096, toolText: 'autocannon, 50 connections, pipelining 1, one thread' }), /POST 4096 B.*autocannon, 50 connections/);
  t.match(stepTitle({ id: 'memory-soak', group: 'memory', tool: 'open-loop', param: 2 }), /soak/);
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
  const raw = Object.fromEntries(Object.entries(rows).map(([target, rps]) => [target, [{ rps, errors: 0, rssPeakMb: target === 'direct' ? null : rss }]]));
  return { id: `${group}-${param}`, group, tool: 'autocannon', param, closed: summarizeClosed(raw, Object.keys(rows)) };
}

t.test('target checks: met, missed, not measured', async (t) => {
  const none = checkTargets([]);
  t.equal(none.length, 12);
  t.ok(none.every((c) => c.verdict === 'not measured'), 'nothing measured');

  const checks = checkTargets([
    latencyResult(1000, [80, 400], 100),
    latencyResult(5000, [120, 700], 100),
    closedResult('throughput', 50, { direct: 40000, remora: 15000, nginx: 14000, 'http-proxy': 5000, 'fastify-proxy': 5100 }),
    closedResult('workers', 2, { direct: 20000, 'remora-2w': 18000 }, 101),
  ]);
  const v = Object.fromEntries(checks.map((c) => [c.target, c.verdict]));
  t.equal(v['p99 added ≤ 0.5 ms at 1,000 req/s'], 'met');
  t.equal(v['p99 added ≤ 0.5 ms at 5,000 req/s'], 'missed');
  t.equal(v["median added latency ≤ nginx's"], 'missed', '5000 req/s: 120 > 100');
  t.equal(v['1-worker throughput ≥ nginx with 1 worker'], 'met');
  t.equal(v['throughput ≥ 3× node http-proxy'], 'met');
  t.equal(v['throughput ≥ 3× @fastify/http-proxy'], 'missed', '15000 < 3 × 5100');
  t.equal(v['RSS ≤ 100 MB with 2 workers under load'], 'missed', 'from the workers scenario when memory did not run');
  t.equal(v['feature cost ≤ 10 % with everything on'], 'not measured');
  t.equal(v['no RSS growth over the soak (≤ 5 MB)'], 'not measured');
  t.match(targetsTable(checks).join('\n'), /\| p99 added ≤ 0\.5 ms at 1,000 req\/s \| \*\*met\*\* \| remora \+400 µs/);

  // Direct at 3000 req/s: every variant has the generator headroom to be judged.
  const judged = { state: 'judged', ratio: 3 } as const;
  const row = (target: string, rps: number, vsBase: { median: number; min: number; max: number } | null) => ({
    target,
    rps: spread([rps]),
    vsBase,
    perCore: null,
    rssPeakMb: null,
    errors: 0,
    direct: spread([3000]),
    headroom: judged,
    generatorCpuPct: null,
    rounds: [],
  });
  const features = (ratio: [number, number, number]): StepResult => ({
    id: 'features',
    group: 'features',
    tool: 'autocannon',
    param: 50,
    base: 'all-off',
    closed: [
      row('all-off', 1000, null),
      row('all-on', 900, { median: ratio[0], min: ratio[1], max: ratio[2] }),
      row('tracing-1', 980, { median: 0.98, min: 0.96, max: 0.99 }),
      row('tracing-100', 800, { median: 0.8, min: 0.78, max: 0.83 }),
    ],
  });
  const memory: StepResult = { id: 'memory', group: 'memory', tool: 'autocannon', param: 2, memory: summarizeMemory(2, [60], [{ rps: 1, errors: 0, rssMb: [70, 99.5] }]) };
  const soak = (first: number, last: number): StepResult => ({
    id: 'memory-soak',
    group: 'memory',
    tool: 'open-loop',
    param: 2,
    soak: { seconds: 600, rate: 1000, windowS: 60, firstMb: first, lastMb: last, growthMb: last - first, slopeMbPerMin: 0, minMb: first, maxMb: last, samples: 600, requests: 1, errors: 0 },
  });
  const w = Object.fromEntries(checkTargets([features([0.93, 0.85, 0.99]), memory, soak(80, 84), closedResult('workers', 2, { direct: 1, 'remora-2w': 1 }, 150)]).map((c) => [c.target, c]));
  t.equal(w['feature cost ≤ 10 % with everything on'].verdict, 'met');
  t.match(w['feature cost ≤ 10 % with everything on'].detail, /0\.93 \(0\.85–0\.99\).*cost 7 %.*noisy/);
  t.equal(w['tracing cost ≤ 3 % at 1 % sampling'].verdict, 'met');
  t.match(w['tracing cost ≤ 3 % at 1 % sampling'].detail, /tracing-1 \/ all-off req\/s per round 0\.98 \(0\.96–0\.99\) \(cost 2 %\); noisy/);
  t.equal(w['tracing cost ≤ 15 % at 100 % sampling'].verdict, 'missed', '20 % > 15 %');
  t.equal(w['RSS ≤ 100 MB with 2 workers under load'].verdict, 'met', 'the memory scenario wins over the workers one');
  t.match(w['RSS ≤ 100 MB with 2 workers under load'].detail, /peak 99\.5 MB \(idle 60 MB/);
  t.equal(w['no RSS growth over the soak (≤ 5 MB)'].verdict, 'met');
  t.match(w['no RSS growth over the soak (≤ 5 MB)'].detail, /80 → 84 MB \(\+4 MB/);
  const x = Object.fromEntries(checkTargets([features([0.89, 0.8, 0.95]), soak(80, 86)]).map((c) => [c.target, c.verdict]));
  t.equal(x['feature cost ≤ 10 % with everything on'], 'missed');
  t.equal(x['no RSS growth over the soak (≤ 5 MB)'], 'missed');

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
  t.match(nginx, /access_log off;/);
  t.match(nginx, /proxy_max_temp_file_size 0;/, 'large responses are not spooled to disk');
  t.equal((nginx.match(/{/g) ?? []).length, (nginx.match(/}/g) ?? []).length, 'balanced braces');
  const haproxy = haproxyConfig(o);
  t.match(haproxy, /nbthread 2/);
  t.match(haproxy, /bind 127\.0\.0\.1:18080/);
  t.match(haproxy, /server s1 127\.0\.0\.1:19090/);
  t.match(haproxy, /http-reuse always/);
  t.notMatch(nginx, /ssl/, 'plaintext unless asked');

  const mtls = nginxConfig({ ...o, tls: { cert: '/c/server.pem', key: '/c/server.key', ca: '/c/ca.pem' } });
  t.match(mtls, /listen 127\.0\.0\.1:18080 ssl;/);
  t.match(mtls, /ssl_certificate \/c\/server\.pem; ssl_certificate_key \/c\/server\.key;/);
  t.match(mtls, /ssl_client_certificate \/c\/ca\.pem; ssl_verify_client on;/);
  t.match(mtls, /server 127\.0\.0\.1:19090; keepalive 128;/, 'same upstream pool');
  t.equal((mtls.match(/{/g) ?? []).length, (mtls.match(/}/g) ?? []).length, 'balanced braces');
  t.notMatch(nginxConfig({ ...o, tls: { cert: '/c/s.pem', key: '/c/s.key' } }), /ssl_verify_client/, 'no CA: no client certificates asked');
});

t.test('Remora variant configs and /metrics sanity', async (t) => {
  const off = benchRemoraConfig(ALL_OFF, 19090) as Record<string, any>;
  t.same(off.stats, { enabled: false });
  t.equal(off.workers, 1);
  const listener = off.listeners[0];
  t.equal(listener.name, 'bench');
  t.equal(listener.access_log, undefined);
  t.equal(listener.rate_limits, undefined);
  t.equal(off.clusters[0].outlier_detection, undefined);
  t.same(off.clusters[0].endpoints, [{ address: '127.0.0.1', port: 19090 }]);
  t.equal(listener.virtual_hosts[0].routes[0].route.retry_policy, undefined);

  const on = benchRemoraConfig({ stats: true, accessLog: '/tmp/a.log', rateLimit: true, outlier: true, retry: true, traceparent: true }, 19090, 2) as Record<string, any>;
  t.equal(on.stats, undefined, 'stats on is the default, left out');
  t.equal(on.workers, 2);
  const l = on.listeners[0];
  t.same(l.access_log, { path: '/tmp/a.log' });
  t.equal(l.generate_traceparent, true);
  t.same(l.rate_limits, [{ name: 'all', max_tokens: 1_000_000_000, fill_interval_ms: 1000 }]);
  const route = l.virtual_hosts[0].routes[0];
  t.same(route.rate_limits, [{ name: 'per-ip', max_tokens: 1_000_000_000, fill_interval_ms: 1000, key: { client_ip: true } }]);
  t.same(route.route.retry_policy, { retry_on: ['5xx', 'reset', 'connect-failure'], num_retries: 2 });
  t.same(on.clusters[0].outlier_detection, {});
  t.equal(l.tls, undefined, 'plaintext (uWS) unless asked');

  const tls = { cert_file: '/c/server.pem', key_file: '/c/server.key', ca_file: '/c/ca.pem' };
  const mtls = benchRemoraConfig({ ...ALL_OFF, stats: true, tls }, 19090) as Record<string, any>;
  t.same(mtls.listeners[0].tls, tls, 'the listener gets the tls block as given');

  const text = [
    '# HELP remora_downstream_requests_total x',
    'remora_downstream_requests_total{listener="bench",code="2xx"} 10',
    'remora_downstream_requests_total{listener="bench",code="5xx"} 2',
    'remora_downstream_requests_total_other 99',
    'remora_rate_limit_table_entries 1',
  ].join('\n');
  t.equal(metricSum(text, 'remora_downstream_requests_total'), 12, 'labels summed, other families ignored');
  const s = sanityOf(text);
  t.equal(s.requests_in_metrics, 12);
  t.equal(s.rate_limit_table_entries, 1);
  t.equal(s.retries, 0);
});

t.test('conn-loop request heads', async (t) => {
  t.equal(requestHead('new', '/x', 'h'), 'GET /x HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n');
  t.equal(requestHead('keep-alive'), 'GET / HTTP/1.1\r\nhost: bench\r\n\r\n');
});

t.test('host noise: /proc parsing and CPU shares', async (t) => {
  t.same(parseProcStat('cpu  100 5 50 800 10 3 2 30 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n'), { total: 1000, busy: 155, steal: 30 });
  t.equal(parseProcStat('intr 1 2 3'), null);
  const stat = '4242 (node (worker) x) S 4200 4242 4200 0 -1 4194560 1 0 0 0 70 30 0 0 20 0 11 0 1000 1 1 1';
  t.same(parsePidStat(stat), { pid: 4242, ppid: 4200, ticks: 100 }, 'command with spaces and parentheses');
  t.equal(parsePidStat('garbage'), null);
  const a = { at: 0, total: 1000, busy: 400, steal: 10, own: 300 };
  const b = { at: 1000, total: 1200, busy: 550, steal: 14, own: 400 };
  t.same(shareOf(a, b), { ownPct: 50, otherPct: 25, stealPct: 2 });
  t.same(shareOf(a, { ...b, own: 900 }), { ownPct: 75, otherPct: 0, stealPct: 2 }, 'own never exceeds busy');
  t.equal(shareOf(null, b), null);
  t.equal(shareOf(b, b), null, 'no time passed');
});
