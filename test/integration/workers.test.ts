// Worker pool end to end: connections spread over two workers, and a crashed worker is
// replaced while the other keeps serving, without the process aborting.

import t from 'tap';
import { admin, namedUpstream, request, simpleConfig, startRemora } from '../helpers/remora.js';

interface WorkerView {
  slot: number;
  state: string;
  thread_id: number;
  restarts: number;
  stats: { requests: number } | null;
}

async function workers(adminPort: number): Promise<WorkerView[]> {
  const r = await admin(adminPort, '/workers');
  if (r.status !== 200) throw new Error(`GET /workers: expected 200, got ${r.status} ${r.text}`);
  return (JSON.parse(r.text) as { workers: WorkerView[] }).workers;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 50 ms until it returns true or `ms` passes. */
async function until(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(50);
  }
  return false;
}

t.test('connections spread over two workers', async (t) => {
  const up = await namedUpstream('a');
  const remora = await startRemora(simpleConfig([up.port], { workers: 2 }));
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const failures: string[] = [];
  for (let i = 0; i < 40; i++) {
    const r = await request(remora.ports.main, { path: `/c/${i}`, agent: false }); // a new connection each
    if (r.status !== 200) failures.push(`request ${i}: ${r.status}`);
  }
  t.same(failures, [], 'all 40 requests on separate connections succeed');
  const ws = await workers(remora.adminPort);
  t.equal(ws.length, 2, 'two worker slots');
  const served = ws.map((w) => w.stats?.requests ?? 0);
  t.equal(served[0] + served[1], 40, `the workers served the 40 requests between them (${served.join(' + ')})`);
  t.ok(served.every((n) => n >= 1), `each worker served at least one request (${served.join(', ')})`);
  t.not(ws[0].thread_id, ws[1].thread_id, 'the workers are different threads');
});

t.test('without SO_REUSEPORT (neither Node reusePort nor the binary), each listener is served by one worker', async (t) => {
  const up = await namedUpstream('a');
  const remora = await startRemora(simpleConfig([up.port], { workers: 2 }), { REMORA_FAULT_INJECTION: 'no_reuseport' });
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  for (let i = 0; i < 10; i++) {
    const r = await request(remora.ports.main, { path: `/f/${i}`, agent: false });
    t.equal(r.status, 200, `request ${i} served`);
  }
  const served = (await workers(remora.adminPort)).map((w) => w.stats?.requests ?? 0);
  t.same([...served].sort(), [0, 10], `one worker served them all (${served.join(', ')})`);
  t.match(remora.output(), /cannot share a port between worker threads/, 'a warning says so');
});

t.test('a crashed worker is replaced and service continues', async (t) => {
  const up = await namedUpstream('a');
  const remora = await startRemora(simpleConfig([up.port], { workers: 2 }), { REMORA_FAULT_INJECTION: '1' });
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const port = remora.ports.main;
  const before = await workers(remora.adminPort);
  t.same(before.map((w) => [w.state, w.restarts]), [['listening', 0], ['listening', 0]], 'both workers listen, no restarts yet');
  const oldThread = before[0].thread_id;

  // Traffic on fresh connections throughout, from two loops.
  let phase: 'before' | 'crash' | 'after' = 'before';
  const ok = { before: 0, crash: 0, after: 0 };
  const errors = { before: [] as string[], crash: [] as string[], after: [] as string[] };
  let running = true;
  const loop = async (): Promise<void> => {
    while (running) {
      const p = phase;
      try {
        const r = await request(port, { path: '/load', agent: false });
        if (r.status === 200 && r.text === 'a') ok[p]++;
        else errors[p].push(`status ${r.status}: ${r.text.trim()}`);
      } catch (err) {
        // A request still in flight when the crash was triggered belongs to the crash
        // window, even if it started just before it.
        const charged = p === 'before' && phase !== 'before' ? 'crash' : p;
        errors[charged].push((err as NodeJS.ErrnoException).code ?? String(err));
      }
    }
  };
  const loops = [loop(), loop()];
  await until(async () => ok.before >= 20, 5000);

  phase = 'crash';
  const crashedAt = Date.now();
  const crash = await admin(remora.adminPort, '/debug/crash_worker?slot=0', 'POST');
  t.equal(crash.status, 200, `POST /debug/crash_worker?slot=0 is accepted (${crash.text.trim()})`);
  const replaced = await until(async () => {
    const w = (await workers(remora.adminPort))[0];
    return w.restarts >= 1 && w.state === 'listening';
  }, 10_000);
  const replacedAfterMs = Date.now() - crashedAt;
  t.ok(replaced, 'slot 0 shows restarts ≥ 1 and state listening again');
  t.ok(replacedAfterMs < 1500, `the replacement listens within about a second (${replacedAfterMs} ms, admin polling included)`);
  const ready = await until(async () => (await admin(remora.adminPort, '/ready')).status === 200, 5000);
  t.ok(ready, '/ready answers 200 again');

  await sleep(200); // settle: connections the dying worker owned are gone by now
  // The slot's counters live in its stats slab and survive the restart: the replacement's
  // own traffic is what they gain from here.
  const countAtReplacement = (await workers(remora.adminPort))[0].stats?.requests ?? 0;
  phase = 'after';
  await until(async () => ok.after >= 100, 10_000);
  running = false;
  await Promise.all(loops);

  t.ok(ok.before >= 20, `requests succeeded before the crash (${ok.before})`);
  t.same(errors.before, [], 'no errors before the crash');
  t.ok(ok.crash >= 1, `requests kept succeeding through the other worker while slot 0 was replaced (${ok.crash} ok, ${errors.crash.length} errors)`);
  t.ok(errors.crash.length <= 10, `only a few connections failed during the crash (${errors.crash.length}: ${[...new Set(errors.crash)].join(', ')})`);
  t.ok(ok.after >= 100, `requests succeed after the replacement (${ok.after})`);
  t.same(errors.after, [], 'no errors after the replacement settled');

  const after = await workers(remora.adminPort);
  t.not(after[0].thread_id, oldThread, 'slot 0 runs on a new thread');
  t.equal(after[1].restarts, 0, 'slot 1 was never restarted');
  const servedAfter = (after[0].stats?.requests ?? 0) - countAtReplacement;
  t.ok(servedAfter >= 1, `the replacement worker serves traffic (slot 0 counted ${servedAfter} requests after it came up)`);
  t.equal(remora.child.exitCode, null, 'the process is still running (it did not abort)');
  t.match(remora.output(), /worker died; starting a replacement/, 'the crash is logged');

  const stopped = await remora.stop();
  t.same(stopped, { code: 0, signal: null }, 'SIGTERM after a worker crash still exits with code 0');
});
