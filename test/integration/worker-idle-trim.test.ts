// A worker gives back what a burst of traffic left once it is quiet (workers/idle-heap-trim.ts),
// through the real proxy: two Remoras with one worker each take the same burst (POSTs
// with 8 KB bodies, 32 at a time, 3 s), one with worker_limits.idle_heap_trim_after_ms
// 10000 (the least it takes) and one with 0 (never). The first logs one collection some seconds after the
// burst, with its heap reserved and in use falling, and /workers shows the smaller
// heap; the second logs none. Traffic flows after the collection. 127.0.0.1, port 0;
// processes ended by pid.

import t from 'tap';
import http from 'node:http';
import { admin, request, routesConfig, startRemora, startUpstream, waitUntil, type RemoraProcess } from '../helpers/remora.js';

const TRIMMED = /\{[^\n]*"msg":"worker heap collected once idle"[^\n]*\}/;

interface WorkersReply {
  workers: { heap_used_mb: number; heap_total_mb: number }[];
}

async function heapTotal(remora: RemoraProcess): Promise<number> {
  return (JSON.parse((await admin(remora.adminPort, '/workers')).text) as WorkersReply).workers[0].heap_total_mb;
}

/** `lanes` keep-alive loops of POSTs with `body` for `ms`; resolves the responses seen. */
async function burst(port: number, ms: number, lanes: number, body: Buffer): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: lanes });
  const until = Date.now() + ms;
  let done = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (Date.now() < until) {
        const reply = await request(port, { method: 'POST', path: '/', body, agent });
        if (reply.status === 200) done++;
      }
    }),
  );
  agent.destroy();
  return done;
}

t.test('one collection once quiet for idle_heap_trim_after_ms after a burst; none with 0', async (t) => {
  const up = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => res.end('x'.repeat(2048)));
  });
  const config = (afterMs: number) => ({
    ...routesConfig([{ match: { prefix: '/' }, route: { cluster: 'up' } }], [{ name: 'up', endpoints: [{ address: '127.0.0.1', port: up.port }] }], { workers: 1 }),
    worker_limits: { idle_heap_trim_after_ms: afterMs },
  });
  const on = await startRemora(config(10_000), { REMORA_LOG_LEVEL: 'debug' });
  const off = await startRemora(config(0), { REMORA_LOG_LEVEL: 'debug' });
  t.teardown(async () => {
    await on.stop();
    await off.stop();
    await up.close();
  });

  const body = Buffer.alloc(8192, 'b');
  const [servedOn, servedOff] = await Promise.all([burst(on.ports.main, 3000, 32, body), burst(off.ports.main, 3000, 32, body)]);
  t.ok(servedOn > 200 && servedOff > 200, `the bursts were served (${servedOn} and ${servedOff} responses)`);
  const afterBurst = await heapTotal(on);

  // 10 s of quiet looks, plus room for a look that a loaded host made busy (V8 tasks).
  const line = await on.waitFor(TRIMMED, 40_000);
  const seen = JSON.parse(line) as { heap_total_mb: [number, number]; heap_used_mb: [number, number]; ms: number };
  t.ok(seen.heap_used_mb[1] < seen.heap_used_mb[0], `the heap in use fell: ${seen.heap_used_mb.join(' → ')} MB`);
  t.ok(seen.heap_total_mb[1] < seen.heap_total_mb[0], `the heap reserved fell: ${seen.heap_total_mb.join(' → ')} MB (${seen.ms} ms)`);
  let now = afterBurst;
  await waitUntil(`/workers shows a smaller heap than the ${afterBurst} MB after the burst`, async () => (now = await heapTotal(on)) < afterBurst, 5000, 200);
  t.pass(`/workers: ${afterBurst} → ${now} MB reserved`);
  const lines = [...on.output().matchAll(new RegExp(TRIMMED.source, 'g'))].map((m) => m[0]);
  t.equal(lines.length, 1, `one collection for the burst (saw ${lines.join(' ')})`);

  t.notOk(TRIMMED.test(off.output()), 'idle_heap_trim_after_ms 0: no collection in the same time');
  t.equal((await request(on.ports.main, { path: '/' })).status, 200, 'traffic flows after the collection');
});
