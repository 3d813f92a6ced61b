// Unit tests for the suite's wrk cross-check (bench/lib/wrk.ts, planSteps with wrk): the
// report parser, the POST body script, wrk's CPU from its shell's /proc/<pid>/stat, the
// planned wrk targets, and runWrk end to end against a stand-in `wrk` (a shell script on
// PATH that burns a little CPU and prints a wrk report), since wrk itself may be missing.

import t from 'tap';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { planSteps, resolveOptions } from '../../bench/lib/suite-plan.js';
import { childTicks, parseWrk, runWrk, wrkPostScript } from '../../bench/lib/wrk.js';

const REPORT = `Running 5s test @ http://127.0.0.1:40001/payload/4096/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.12ms  320.11us   9.87ms   90.12%
    Req/Sec    44.21k     2.01k   47.90k    72.00%
  219876 requests in 5.00s, 30.12MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  43975.20
Transfer/sec:      6.02MB
`;

t.test('parseWrk: req/s, requests and errors', async (t) => {
  t.same(parseWrk(REPORT), { rps: 43975, requests: 219876, errors: 7, errorText: 'Non-2xx or 3xx responses: 4; Socket errors: connect 0, read 2, write 0, timeout 1' });
  const clean = parseWrk(REPORT.replace(/ {2}Socket errors.*\n {2}Non-2xx.*\n/, ''));
  t.equal(clean.errors, 0);
  t.equal(clean.errorText, '');
  t.ok(Number.isNaN(parseWrk('unable to connect to 127.0.0.1:1 Connection refused').rps), 'no report, no req/s');
});

t.test('wrkPostScript: a POST with an n-byte body', async (t) => {
  const lua = wrkPostScript(4096);
  t.match(lua, /^wrk\.method = "POST"$/m);
  t.match(lua, /^wrk\.body = string\.rep\("x", 4096\)$/m);
  t.match(lua, /Content-Type/);
});

t.test('childTicks: cutime + cstime from /proc/<pid>/stat, a command with spaces and parens', async (t) => {
  const fields = Array.from({ length: 50 }, (_, i) => String(i + 3)); // field n holds n
  t.equal(childTicks(`123 (sh (x) y) ${fields.join(' ')}`), 16 + 17);
  t.equal(childTicks(''), null, 'no /proc: no figure');
  t.equal(childTicks('123 (sh) S 1'), null, 'a truncated line');
});

t.test('planSteps: wrk joins throughput, payload and body when installed', async (t) => {
  const o = resolveOptions({ duration: '2', rounds: '2', warmup: '1' }, 2, true);
  const proxies = ['remora', 'remora-uws', 'nginx', 'http-proxy'];
  const without = planSteps(o, proxies);
  t.ok(without.every((s) => s.wrkTargets.length === 0), 'no wrk: no cross-check anywhere');
  const steps = planSteps(o, proxies, true);
  const by = Object.fromEntries(steps.map((s) => [s.id, s]));
  for (const id of ['throughput-c10', 'throughput-c200', 'payload-1048576', 'body-4096']) t.same(by[id].wrkTargets, ['direct', 'remora', 'nginx'], `${id}: direct, Remora and the native peers that run`);
  for (const id of ['latency-1000', 'connections-l16', 'features', 'workers-1', 'memory']) t.same(by[id].wrkTargets, [], `${id}: no wrk`);
  const w = Object.fromEntries(without.map((s) => [s.id, s]));
  // throughput-c50 (warmed already): 5 autocannon + 3 wrk runs × 2 rounds × 2 s
  t.equal(w['throughput-c50'].estimateS, 20);
  t.equal(by['throughput-c50'].estimateS, 32, 'the estimate counts the wrk runs');
});

t.test('runWrk: the report, wrk\'s own CPU, and a failure that rejects', { skip: process.platform !== 'linux' && 'reads /proc' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'remora-fake-wrk-'));
  const oldPath = process.env.PATH;
  t.teardown(() => {
    process.env.PATH = oldPath;
    rmSync(dir, { recursive: true, force: true });
  });
  const fake = join(dir, 'wrk');
  // Records its argv, burns some CPU in the shell itself (no forks), prints a report.
  writeFileSync(
    fake,
    `#!/bin/sh\necho "$@" > "${join(dir, 'argv')}"\ni=0\nwhile [ $i -lt 200000 ]; do i=$((i + 1)); done\ncat <<'EOF'\n${REPORT}EOF\n`,
  );
  chmodSync(fake, 0o755);
  process.env.PATH = `${dir}${delimiter}${oldPath ?? ''}`;

  const script = join(dir, 'post.lua');
  writeFileSync(script, wrkPostScript(10));
  const r = await runWrk({ port: 40001, path: '/payload/4096/', seconds: 1, connections: 10, script });
  t.equal(r.rps, 43975);
  t.equal(r.errors, 7);
  t.ok(r.wallS > 0, `wall ${r.wallS} s`);
  t.ok(r.cpuPct !== null && r.cpuPct > 0 && r.cpuPct <= 200, `wrk's CPU measured: ${r.cpuPct} % of one core (CPU seconds ÷ wall seconds)`);
  t.equal(readFileSync(join(dir, 'argv'), 'utf8').trim(), `-t1 -c10 -d1s -s ${script} http://127.0.0.1:40001/payload/4096/`, 'one thread, the connections, the path, the script');

  writeFileSync(fake, '#!/bin/sh\necho "unable to connect" >&2\nexit 1\n');
  await t.rejects(runWrk({ port: 40001, seconds: 1 }), /wrk on port 40001 exited 1: unable to connect/);
  rmSync(fake);
  // Only `sh` on PATH, so that a wrk installed on this machine is not found either.
  symlinkSync('/bin/sh', join(dir, 'sh'));
  process.env.PATH = dir;
  await t.rejects(runWrk({ port: 40001, seconds: 1 }), /wrk on port 40001 exited 127/, 'wrk missing: rejects, never hangs');
});
