// The benchmark suite end to end in its smallest form: `node dist/bench/suite.js --quick`
// with latency and throughput only, no peers, against the bundled uWS upstream. Checks
// that it writes a JSON result with non-zero req/s and no errors, the Markdown report
// and at least one SVG chart, then deletes everything it wrote. Asserts no speed.

import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SUITE = fileURLToPath(new URL('../../dist/bench/suite.js', import.meta.url));

interface Row {
  target: string;
  errors: number;
  requests?: number;
  rps?: { median: number };
}

t.test('npm run bench -- --quick writes JSON, Markdown and SVG results', { timeout: 90_000 }, async (t) => {
  t.ok(existsSync(SUITE), 'dist/bench/suite.js is built (npm test builds first)');
  const out = mkdtempSync(join(tmpdir(), 'remora-bench-quick-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));

  const child = spawn(process.execPath, [SUITE, '--quick', '--no-peers', '--duration', '1', '--scenarios', 'latency,throughput', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stdout.resume();
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.equal(code, 0, `suite exits 0${code === 0 ? '' : `: ${stderr}`}`);
  t.match(stderr, /scenario 1\/\d+: latency-1000 — ~\d+s left/, 'progress on stderr');

  const files = readdirSync(out);
  const json = files.find((f) => /^suite-.*\.json$/.test(f));
  const md = files.find((f) => /^suite-.*\.md$/.test(f));
  t.ok(json, 'JSON result written');
  t.ok(md, 'Markdown report written');
  t.ok(files.some((f) => f.endsWith('.svg')), 'at least one SVG chart written');
  if (!json || !md) return;

  const result = JSON.parse(readFileSync(join(out, json), 'utf8')) as {
    scenarios: { id: string; group: string; latency?: Row[]; closed?: Row[] }[];
    targets: { verdict: string }[];
  };
  t.same(result.scenarios.map((s) => s.id), ['latency-1000', 'latency-5000', 'throughput-c50']);
  const throughput = result.scenarios.find((s) => s.group === 'throughput')!;
  t.same(throughput.closed!.map((r) => r.target), ['direct', 'remora']);
  for (const r of throughput.closed!) t.ok(r.rps!.median > 0, `${r.target}: non-zero req/s`);
  for (const s of result.scenarios) {
    for (const r of [...(s.latency ?? []), ...(s.closed ?? [])]) t.equal(r.errors, 0, `${s.id} ${r.target}: no errors`);
    for (const r of s.latency ?? []) t.ok(r.requests! > 0, `${s.id} ${r.target}: requests measured`);
  }
  t.equal(result.targets.length, 7, 'every target checked');
  const report = readFileSync(join(out, md), 'utf8');
  t.match(report, /## Targets/);
  t.match(report, /nginx: skipped \(--no-peers\)/);
  for (const svg of files.filter((f) => f.endsWith('.svg'))) t.ok(readFileSync(join(out, svg), 'utf8').startsWith('<svg'), `${svg} is SVG`);
});
