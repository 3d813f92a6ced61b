// The benchmark suite end to end in its smallest form: `node dist/bench/suite.js --quick`
// with every scenario (latency, throughput, payload up to 1 MB, POST bodies, new
// connection vs keep-alive, features on/off, worker scaling, memory with a 3 s soak), no
// peers, against the bundled uWS upstream. Checks that it writes a JSON result with
// non-zero req/s and no errors in every scenario, every closed-loop figure with its direct
// baseline, the generator's CPU and the generator-bound rule applied to the verdicts, the
// Markdown report (saying whether wrk cross-checked) and the SVG charts, then deletes
// everything it wrote. About a minute and a half; asserts no speed. Not part
// of `npm test`: run it with `npm run bench:smoke` (.ci/run runs it after the suite).

import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoPath } from '../helpers/repo-root.js';

const SUITE = repoPath('dist/bench/suite.js');

interface Spread {
  median: number;
}

interface Headroom {
  state: 'judged' | 'generator-bound' | 'no-baseline';
  ratio: number | null;
}

interface Row {
  target: string;
  errors: number;
  requests?: number;
  rps?: Spread;
  vsBase?: Spread | null;
  direct?: Spread | null;
  headroom?: Headroom | null;
  generatorCpuPct?: Spread | null;
  rounds?: { rps: number; directRps: number | null; generatorCpuPct: number | null }[];
}

interface ConnRow {
  target: string;
  newRps: Spread;
  keepAliveRps: Spread;
  newErrors: number;
  keepAliveErrors: number;
  newDirect: Spread | null;
  newHeadroom: Headroom | null;
  keepAliveHeadroom: Headroom | null;
  newCpuPct: Spread | null;
  keepAliveCpuPct: Spread | null;
}

interface Scenario {
  id: string;
  group: string;
  note?: string;
  latency?: Row[];
  closed?: Row[];
  wrk?: Row[];
  wrkText?: string;
  connections?: ConnRow[];
  memory?: { idleMb: number; peakMb: number; rps: Spread; errors: number; samples: number };
  soak?: { growthMb: number; samples: number; requests: number; errors: number };
  variants?: Record<string, { sanity: { requests_in_metrics: number; rate_limit_table_entries: number; spans_exported: number; spans_dropped: number } | null; access_log_mb: number | null }>;
}

t.test('npm run bench -- --quick covers every scenario and writes JSON, Markdown and SVG', { timeout: 180_000 }, async (t) => {
  t.ok(existsSync(SUITE), 'dist/bench/suite.js is built (npm run bench:smoke builds first)');
  const out = mkdtempSync(join(tmpdir(), 'remora-bench-quick-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));

  const started = Date.now();
  const child = spawn(process.execPath, [SUITE, '--quick', '--no-peers', '--duration', '1', '--soak-seconds', '3', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stdout.resume();
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.equal(code, 0, `suite exits 0${code === 0 ? '' : `: ${stderr}`}`);
  t.match(stderr, /scenario 1\/\d+: latency-1000 — ~\d+s left/, 'progress on stderr');
  t.comment(`--quick with every scenario took ${Math.round((Date.now() - started) / 1000)} s`);

  const files = readdirSync(out);
  const json = files.find((f) => /^suite-.*\.json$/.test(f));
  const md = files.find((f) => /^suite-.*\.md$/.test(f));
  t.ok(json, 'JSON result written');
  t.ok(md, 'Markdown report written');
  if (!json || !md) return;

  const result = JSON.parse(readFileSync(join(out, json), 'utf8')) as {
    scenarios: Scenario[];
    targets: { target: string; verdict: string }[];
    generator: { headroom_min: number; wrk_installed: boolean; generator_bound: string[] };
  };
  t.same(result.scenarios.map((s) => s.id), [
    'latency-1000',
    'latency-5000',
    'throughput-c50',
    'payload-100',
    'payload-1048576',
    'body-4096',
    'connections-l8',
    'features',
    'workers-1',
    'workers-2',
    'memory',
    'memory-soak',
  ]);
  for (const s of result.scenarios) {
    t.notMatch(s.note ?? '', /^failed/, `${s.id} did not fail`);
    for (const r of [...(s.latency ?? []), ...(s.closed ?? [])]) t.equal(r.errors, 0, `${s.id} ${r.target}: no errors`);
    for (const r of s.latency ?? []) t.ok(r.requests! > 0, `${s.id} ${r.target}: requests measured`);
    for (const r of s.closed ?? []) t.ok(r.rps!.median > 0, `${s.id} ${r.target}: non-zero req/s`);
  }
  const by = Object.fromEntries(result.scenarios.map((s) => [s.id, s]));

  // Every closed-loop figure: the direct baseline of its rounds, the generator's CPU, the rule.
  for (const s of result.scenarios.filter((x) => ['throughput', 'payload', 'body', 'features', 'workers'].includes(x.group))) {
    for (const r of [...(s.closed ?? []), ...(s.wrk ?? [])]) {
      t.ok(r.generatorCpuPct !== null && r.generatorCpuPct!.median > 0, `${s.id} ${r.target}: generator CPU ${r.generatorCpuPct?.median} %`);
      if (r.target === 'direct') continue;
      t.ok(r.direct !== null && r.direct!.median > 0, `${s.id} ${r.target}: direct baseline ${r.direct?.median} req/s`);
      t.ok(r.headroom && r.headroom.state !== 'no-baseline', `${s.id} ${r.target}: ${r.headroom?.state} (direct ÷ target ${r.headroom?.ratio})`);
      t.ok(r.rounds!.every((x) => x.directRps !== null && x.directRps > 0), `${s.id} ${r.target}: direct of every round kept`);
    }
  }
  for (const r of by['connections-l8'].connections ?? []) t.ok(r.newCpuPct !== null && r.keepAliveCpuPct !== null, `connections ${r.target}: generator CPU in both modes`);
  t.same(by['connections-l8'].connections!.filter((r) => r.target !== 'direct').map((r) => r.newDirect !== null && r.newHeadroom !== null && r.keepAliveHeadroom !== null), [true, true], 'connections rows carry direct and the rule');
  t.equal(result.generator.headroom_min, 1.5);
  t.comment(`generator-bound: ${result.generator.generator_bound.join('; ') || 'none'}; wrk ${result.generator.wrk_installed ? 'installed' : 'not installed'}`);
  if (!result.generator.wrk_installed) t.ok(result.scenarios.every((s) => s.wrk === undefined), 'no wrk, no wrk figures');
  else t.ok(by['throughput-c50'].wrk!.length >= 2 || /wrk failed/.test(by['throughput-c50'].wrkText ?? ''), 'wrk cross-checked throughput (or said why not)');
  t.same(by['throughput-c50'].closed!.map((r) => r.target), ['direct', 'remora', 'remora-uws'], 'both codecs measured beside direct');
  t.same(by['payload-1048576'].closed!.map((r) => r.target), ['direct', 'remora', 'remora-uws'], '1 MB responses through Remora');
  t.same(by['body-4096'].closed!.map((r) => r.target), ['direct', 'remora', 'remora-uws'], 'POST bodies through Remora');

  for (const r of by['connections-l8'].connections ?? []) {
    t.ok(r.newRps.median > 0 && r.keepAliveRps.median > 0, `connections ${r.target}: non-zero req/s in both modes`);
    t.equal(r.newErrors + r.keepAliveErrors, 0, `connections ${r.target}: no errors`);
  }
  t.equal(by['connections-l8'].connections?.length, 3, 'direct, remora and remora-uws measured with new connections');

  const features = by['features'];
  t.same(features.closed!.map((r) => r.target), ['all-off', 'stats', 'access-log', 'rate-limit', 'outlier', 'all-on', 'tracing-1', 'tracing-100', 'direct']);
  t.equal(features.closed![0].vsBase, null, 'all-off is the baseline');
  t.ok(features.closed!.slice(1, -1).every((r) => r.vsBase!.median > 0), 'every variant has a ratio to all-off');
  t.equal(features.closed!.at(-1)!.vsBase, null, 'direct is measured for the generator-bound rule, not as a variant');
  const v = features.variants!;
  t.equal(v['all-off'].sanity!.requests_in_metrics, 0, 'all-off records nothing');
  t.ok(v['stats'].sanity!.requests_in_metrics > 0, 'stats on records requests');
  t.ok(v['access-log'].access_log_mb !== null, 'the access-log variant wrote a log');
  t.equal(v['all-on'].sanity!.rate_limit_table_entries, 1, 'all-on: one per-IP bucket');
  t.ok(v['tracing-100'].sanity!.spans_exported > 0, `tracing-100 exported spans (${v['tracing-100'].sanity!.spans_exported})`);
  t.equal(v['tracing-100'].sanity!.spans_dropped, 0, 'tracing-100 dropped none');

  const mem = by['memory'].memory!;
  t.ok(mem.idleMb > 0 && mem.peakMb >= mem.idleMb * 0.5, `memory: idle ${mem.idleMb} MB, peak ${mem.peakMb} MB`);
  t.ok(mem.rps.median > 0, 'memory: load ran');
  t.equal(mem.errors, 0, 'memory: no errors');
  const soak = by['memory-soak'].soak!;
  t.ok(soak.samples >= 3, `soak: ${soak.samples} RSS samples`);
  t.ok(soak.requests > 0, 'soak: requests made');
  t.equal(soak.errors, 0, 'soak: no errors');
  t.ok(Number.isFinite(soak.growthMb), 'soak: a growth figure');

  t.equal(result.targets.length, 12, 'every target checked');
  for (const name of ['feature cost ≤ 10 % with everything on', 'tracing cost ≤ 3 % at 1 % sampling', 'tracing cost ≤ 15 % at 100 % sampling', 'RSS ≤ 100 MB with 2 workers under load', 'no RSS growth over the soak (≤ 5 MB)']) {
    t.not(result.targets.find((x) => x.target === name)?.verdict, 'not measured', `${name}: measured`);
  }
  const allOff = features.closed!.find((r) => r.target === 'all-off')!;
  const allOn = features.closed!.find((r) => r.target === 'all-on')!;
  const costVerdict = result.targets.find((x) => x.target === 'feature cost ≤ 10 % with everything on')!.verdict;
  if (allOff.headroom?.state === 'generator-bound' || allOn.headroom?.state === 'generator-bound') t.equal(costVerdict, 'not judged: generator-bound', 'a generator-bound feature ratio is not judged');
  else t.match(costVerdict, /^(met|missed)$/, 'a feature ratio with generator headroom is judged');
  const report = readFileSync(join(out, md), 'utf8');
  t.match(report, /## Targets/);
  t.match(report, /## Host noise/);
  t.match(report, /nginx: skipped \(--no-peers\)/);
  t.match(report, /Circuit breakers are always on/);
  t.match(report, /conn-loop/);
  t.match(report, /\| direct req\/s \| direct ÷ target \| generator CPU % \| generator-bound \|/, 'closed-loop tables carry the generator columns');
  t.match(report, /is \*\*generator-bound\*\*/, 'the rule is stated');
  t.match(report, result.generator.wrk_installed ? /wrk cross-check, same rounds|wrk failed/ : /- \*\*wrk\*\*: not installed/, 'the report says whether wrk cross-checked');
  const svgs = files.filter((f) => f.endsWith('.svg'));
  for (const name of ['latency-1000', 'payload', 'body', 'connections', 'features', 'workers', 'memory']) t.ok(svgs.some((f) => f.endsWith(`-${name}.svg`)), `${name} chart written`);
  for (const svg of svgs) t.ok(readFileSync(join(out, svg), 'utf8').startsWith('<svg'), `${svg} is SVG`);
});
