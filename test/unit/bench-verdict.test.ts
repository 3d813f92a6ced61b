// Unit tests for the benchmark suite's generator-bound rule (bench/lib/verdict.ts) and how
// the suite applies it (bench/lib/suite-plan.ts statistics, bench/lib/suite-report.ts
// target checks and tables): a closed-loop figure whose direct baseline of the same rounds
// ran under 1.5× its req/s is generator-bound and no verdict uses it. No benchmark runs
// here and nothing asserts a speed.

import t from 'tap';
import { summarizeClosed, summarizeConnections, type ClosedRound, type StepResult } from '../../bench/lib/suite-plan.js';
import { checkTargets, generatorBoundFigures, stepTable, targetsTable, wrkTable } from '../../bench/lib/suite-report.js';
import {
  GENERATOR_HEADROOM_MIN,
  NOT_JUDGED_BOUND,
  NOT_JUDGED_NO_BASELINE,
  generatorHeadroom,
  headroomCell,
  verdictOf,
  worstHeadroom,
} from '../../bench/lib/verdict.js';

t.test('generatorHeadroom: bound, not bound, missing baseline, exactly 1.5×', async (t) => {
  t.equal(GENERATOR_HEADROOM_MIN, 1.5);
  t.same(generatorHeadroom(9935, 10081), { state: 'generator-bound', ratio: 0.99 }, 'direct no faster than the proxy: bound');
  t.same(generatorHeadroom(14000, 10000), { state: 'generator-bound', ratio: 1.4 }, '1.4× is under 1.5×: bound');
  t.same(generatorHeadroom(53000, 15000), { state: 'judged', ratio: 3.53 }, '3.5×: not bound');
  t.same(generatorHeadroom(15000, 10000), { state: 'judged', ratio: 1.5 }, 'exactly 1.5×: enough headroom');
  t.same(generatorHeadroom(14999, 10000), { state: 'generator-bound', ratio: 1.5 }, 'a hair under 1.5× is bound (the ratio shown is rounded)');
  t.same(generatorHeadroom(null, 10000), { state: 'no-baseline', ratio: null }, 'no direct run');
  t.same(generatorHeadroom(undefined, 10000), { state: 'no-baseline', ratio: null });
  t.same(generatorHeadroom(0, 10000), { state: 'no-baseline', ratio: null }, 'a direct run that served nothing is no baseline');
  t.same(generatorHeadroom(Number.NaN, 10000), { state: 'no-baseline', ratio: null });
  t.same(generatorHeadroom(1000, 0), { state: 'judged', ratio: null }, 'a target that served nothing was not held back by the generator');
});

t.test('worstHeadroom and verdictOf: unjudged checks never decide', async (t) => {
  const bound = generatorHeadroom(10000, 10000);
  const ok = generatorHeadroom(30000, 10000);
  const none = generatorHeadroom(null, 10000);
  t.equal(worstHeadroom([ok, ok]), 'judged');
  t.equal(worstHeadroom([ok, bound]), 'generator-bound', 'either figure bound binds the comparison');
  t.equal(worstHeadroom([none, ok]), 'no-baseline');
  t.equal(worstHeadroom([none, bound]), 'generator-bound', 'bound wins over no baseline');
  t.equal(worstHeadroom([ok, null]), 'no-baseline', 'null (the baseline row itself) has no headroom');

  t.same(verdictOf([]), { verdict: 'not measured', detail: '' });
  t.equal(verdictOf([{ ok: true, text: 'a', headroom: 'judged' }]).verdict, 'met');
  t.equal(verdictOf([{ ok: false, text: 'a', headroom: 'judged' }]).verdict, 'missed');
  const allBound = verdictOf([{ ok: true, text: 'c50: 10081 vs 8678 req/s', headroom: 'generator-bound' }]);
  t.equal(allBound.verdict, NOT_JUDGED_BOUND);
  t.equal(allBound.verdict, 'not judged: generator-bound');
  t.match(allBound.detail, /c50: 10081 vs 8678 req\/s \[generator-bound, not judged\]/);
  t.equal(verdictOf([{ ok: true, text: 'a', headroom: 'no-baseline' }]).verdict, NOT_JUDGED_NO_BASELINE);
  t.equal(verdictOf([{ ok: false, text: 'a', headroom: 'no-baseline' }, { ok: false, text: 'b', headroom: 'generator-bound' }]).verdict, NOT_JUDGED_BOUND);
  const mixed = verdictOf([
    { ok: false, text: 'c10', headroom: 'generator-bound' },
    { ok: true, text: 'c50', headroom: 'judged' },
  ]);
  t.equal(mixed.verdict, 'met', 'a bound miss does not count against a judged pass');
  t.match(mixed.detail, /c10 \[generator-bound, not judged\]; c50$/);
  t.equal(verdictOf([{ ok: true, text: 'c10', headroom: 'generator-bound' }, { ok: false, text: 'c50', headroom: 'judged' }]).verdict, 'missed', 'nor a bound pass for a judged miss');

  t.equal(headroomCell(null), 'baseline');
  t.equal(headroomCell(ok), 'no');
  t.equal(headroomCell(bound), '**generator-bound**');
  t.equal(headroomCell(none), 'no baseline');
});

const rounds = (...xs: [number, number][]): ClosedRound[] => xs.map(([rps, cpu]) => ({ rps, errors: 0, generatorCpuPct: cpu }));

t.test('closed-loop rows carry the direct baseline per round, the generator CPU and the rule', async (t) => {
  const rows = summarizeClosed(
    { direct: rounds([9900, 99], [10100, 100]), remora: rounds([10000, 98], [10200, 99]), nginx: rounds([5000, 60], [5200, 62]) },
    ['direct', 'remora', 'nginx'],
  );
  t.equal(rows[0].direct, null, 'direct has no baseline of its own');
  t.equal(rows[0].headroom, null);
  t.same(rows[0].generatorCpuPct, { median: 100, min: 99, max: 100 });
  t.same(rows[1].direct, { median: 10000, min: 9900, max: 10100 });
  t.same(rows[1].headroom, { state: 'generator-bound', ratio: 0.99 });
  t.same(rows[1].rounds, [
    { rps: 10000, directRps: 9900, generatorCpuPct: 98 },
    { rps: 10200, directRps: 10100, generatorCpuPct: 99 },
  ], 'every round keeps the direct figure of the same round');
  t.same(rows[2].headroom, { state: 'judged', ratio: 1.96 });
  const table = stepTable({ id: 'throughput-c50', group: 'throughput', tool: 'autocannon', param: 50, closed: rows }).join('\n');
  t.match(table, /\| target \| req\/s \| vs direct \| errors \| direct req\/s \| direct ÷ target \| generator CPU % \| generator-bound \|/);
  t.match(table, /\| direct \| 10000 \(9900–10100\) \| - \| 0 \| - \| - \| 100 \(99–100\) \| baseline \|/);
  t.match(table, /\| remora \| 10100 \(10000–10200\) \| 1\.01 \(1\.01–1\.01\) \| 0 \| 10000 \(9900–10100\) \| 0\.99 \| 99 \(98–99\) \| \*\*generator-bound\*\* \|/);
  t.match(table, /\| nginx \| 5100 \(5000–5200\) \| 0\.51 .* \| 1\.96 \| 61 \(60–62\) \| no \|/);

  const noDirect = summarizeClosed({ remora: rounds([1000, 50]) }, ['remora']);
  t.equal(noDirect[0].headroom!.state, 'no-baseline', 'a step without direct cannot judge its figures');

  // features: the ratio baseline is all-off, the generator baseline is direct.
  const feats = summarizeClosed({ 'all-off': rounds([4000, 70]), 'all-on': rounds([3600, 66]), direct: rounds([12000, 100]) }, ['all-off', 'all-on', 'direct'], null, 'all-off');
  t.equal(feats[0].vsBase, null);
  t.same(feats[1].vsBase, { median: 0.9, min: 0.9, max: 0.9 });
  t.equal(feats[2].vsBase, null, 'direct has no ratio to all-off');
  t.same(feats[0].headroom, { state: 'judged', ratio: 3 });

  const conn = summarizeConnections(
    {
      direct: [{ newRps: 3000, keepAliveRps: 18000, newErrors: 0, keepAliveErrors: 0, newCpuPct: 100, keepAliveCpuPct: 97 }],
      remora: [{ newRps: 2500, keepAliveRps: 8000, newErrors: 0, keepAliveErrors: 0, newCpuPct: 90, keepAliveCpuPct: 60 }],
    },
    ['direct', 'remora'],
  );
  t.same(conn[1].newDirect, { median: 3000, min: 3000, max: 3000 });
  t.equal(conn[1].newHeadroom!.state, 'generator-bound', '3000 < 1.5 × 2500');
  t.equal(conn[1].keepAliveHeadroom!.state, 'judged', '18000 ≥ 1.5 × 8000');
  t.same(conn[1].newCpuPct, { median: 90, min: 90, max: 90 });
  const connTable = stepTable({ id: 'connections-l16', group: 'connections', tool: 'conn-loop', param: 16, connections: conn }).join('\n');
  t.match(connTable, /\| remora \|.*\| 3000 \(3000–3000\) \/ 18000 \(18000–18000\) \| 90 \(90–90\) \/ 60 \(60–60\) \| \*\*generator-bound\*\* \/ no \|/);
});

function throughput(c: number, autocannon: Record<string, number>, wrk?: Record<string, number>): StepResult {
  const raw = (x: Record<string, number>) => Object.fromEntries(Object.entries(x).map(([k, rps]) => [k, rounds([rps, 99])]));
  return {
    id: `throughput-c${c}`,
    group: 'throughput',
    tool: 'autocannon',
    param: c,
    closed: summarizeClosed(raw(autocannon), Object.keys(autocannon)),
    ...(wrk ? { wrk: summarizeClosed(raw(wrk), Object.keys(wrk)), wrkText: 'wrk, 1 thread, 50 connections' } : {}),
  };
}

t.test('targets: generator-bound figures are not judged; the wrk cross-check is', async (t) => {
  // The observed case: every target at the generator's ceiling under autocannon, while wrk
  // drives the same upstream five times faster.
  const results = [
    throughput(50, { direct: 9935, remora: 10081, nginx: 8678, 'http-proxy': 3470, 'fastify-proxy': 3055 }, { direct: 53000, remora: 15000, nginx: 31000 }),
  ];
  const checks = checkTargets(results);
  const by = Object.fromEntries(checks.map((c) => [c.target, c]));
  t.equal(by['1-worker throughput ≥ nginx with 1 worker'].verdict, 'not judged: generator-bound', 'not "met" from figures the generator set');
  t.match(by['1-worker throughput ≥ nginx with 1 worker'].detail, /c50: 10081 vs 8678 req\/s \(1\.16×; direct ÷ remora 0\.99×, nginx 1\.14×\) \[generator-bound, not judged\]/);
  t.equal(by['1-worker throughput ≥ nginx with 1 worker (wrk)'].verdict, 'missed', 'wrk has the headroom: 15000 < 31000');
  t.match(by['1-worker throughput ≥ nginx with 1 worker (wrk)'].detail, /c50: 15000 vs 31000 req\/s/);
  t.equal(by['throughput ≥ 3× node http-proxy'].verdict, 'not judged: generator-bound', 'remora bound binds the comparison');
  t.match(targetsTable(checks).join('\n'), /\| 1-worker throughput ≥ nginx with 1 worker \| \*\*not judged: generator-bound\*\* \|/);

  const bound = generatorBoundFigures(results);
  t.same(bound, ['throughput-c50 (autocannon): remora 0.99×, nginx 1.14×'], 'the Node peers (2.9× and 3.3× headroom) and every wrk figure are judged');

  const table = wrkTable(results[0]).join('\n');
  t.match(table, /^wrk cross-check, same rounds \(wrk, 1 thread, 50 connections\):/);
  t.match(table, /\| remora \| 15000 \(15000–15000\) \| 0\.283 .* \| 3\.53 \| 99 \(99–99\) \| no \|/);
  t.same(wrkTable(throughput(50, { direct: 1 })), [], 'no wrk, no table');

  const noWrk = Object.fromEntries(checkTargets([throughput(50, { direct: 40000, remora: 15000, nginx: 14000 })]).map((c) => [c.target, c]));
  t.equal(noWrk['1-worker throughput ≥ nginx with 1 worker'].verdict, 'met', 'judged when direct had 2.6× headroom');
  t.equal(noWrk['1-worker throughput ≥ nginx with 1 worker (wrk)'].verdict, 'not measured');
  t.match(noWrk['1-worker throughput ≥ nginx with 1 worker (wrk)'].detail, /needs wrk/);

  const features = (direct: number | null): StepResult => {
    const raw: Record<string, ClosedRound[]> = { 'all-off': rounds([10000, 99]), 'all-on': rounds([9950, 99]), 'tracing-1': rounds([9990, 99]), 'tracing-100': rounds([9900, 99]) };
    if (direct !== null) raw.direct = rounds([direct, 99]);
    return { id: 'features', group: 'features', tool: 'autocannon', param: 50, base: 'all-off', closed: summarizeClosed(raw, Object.keys(raw), null, 'all-off') };
  };
  const capped = Object.fromEntries(checkTargets([features(10100)]).map((c) => [c.target, c]));
  t.equal(capped['feature cost ≤ 10 % with everything on'].verdict, 'not judged: generator-bound', 'a capped generator hides a feature cost');
  t.equal(capped['tracing cost ≤ 15 % at 100 % sampling'].verdict, 'not judged: generator-bound');
  t.equal(Object.fromEntries(checkTargets([features(null)]).map((c) => [c.target, c.verdict]))['feature cost ≤ 10 % with everything on'], 'not judged: no direct baseline');
  t.equal(Object.fromEntries(checkTargets([features(30000)]).map((c) => [c.target, c.verdict]))['feature cost ≤ 10 % with everything on'], 'met', 'judged with headroom');
});
