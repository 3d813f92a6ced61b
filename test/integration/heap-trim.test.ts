// The main thread gives back the garbage a large config change leaves (src/main/heap-trim.ts),
// in a real `remora run`: one full collection a few seconds after start, logged with the
// heap in use before and after; after a reload to 100 clusters with 20,000 endpoints,
// another look, which collects when the heap grew by 8 MB since (V8 may have collected
// on its own in between, and then it says none was needed); traffic flows on the new
// config. 127.0.0.1 only; the process is ended by its pid and its files removed by the
// helper.

import t from 'tap';
import { writeFileSync } from 'node:fs';
import { request, simpleConfig, startRemora, startUpstream, withTestDrain } from '../helpers/remora.js';

const COLLECTED = /\{[^\n]*"msg":"main thread heap collected after a config change"[^\n]*\}/;
const NOT_NEEDED = /\{[^\n]*"msg":"main thread heap: no collection needed after a config change"[^\n]*\}/;

function collections(output: string): { heap_used_mb: [number, number]; ms: number }[] {
  return [...output.matchAll(new RegExp(COLLECTED.source, 'g'))].map((m) => JSON.parse(m[0]) as { heap_used_mb: [number, number]; ms: number });
}

t.test('a collection after start and after a reload to 20,000 endpoints', async (t) => {
  const app = await startUpstream((_req, res) => res.end('app'));
  t.teardown(() => app.close());
  const remora = await startRemora(simpleConfig([app.port]), { REMORA_LOG_LEVEL: 'debug' });
  t.teardown(() => remora.stop());

  await remora.waitFor(COLLECTED, 10_000);
  t.equal(collections(remora.output()).length, 1, 'one collection a few seconds after start');

  // 100 clusters of 200 endpoints each (addresses that are never connected to: no route
  // leads to them), and the route to the app unchanged.
  const config = simpleConfig([app.port]) as { clusters: unknown[] };
  for (let c = 0; c < 100; c++) {
    const endpoints = Array.from({ length: 200 }, (_, i) => ({ address: `127.0.${1 + c}.${1 + (i % 250)}`, port: 20000 + i }));
    config.clusters.push({ name: `big-${c}`, endpoints });
  }
  writeFileSync(remora.configFile, JSON.stringify(withTestDrain(config)));
  process.kill(remora.pid, 'SIGHUP');
  await remora.waitFor(/"version":2[^\n]*"msg":"config applied"/, 20_000);
  const looked = (): boolean => collections(remora.output()).length >= 2 || NOT_NEEDED.test(remora.output());
  const deadline = Date.now() + 15_000;
  while (!looked() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const seen = collections(remora.output());
  t.ok(looked(), `a look at the heap once the reload was applied (collections: ${JSON.stringify(seen)})`);
  if (seen.length >= 2) {
    const [before, after] = seen[1].heap_used_mb;
    t.ok(before > after, `it collected: the heap in use fell, saw ${before} → ${after} MB`);
  } else {
    t.comment(`no collection needed: ${NOT_NEEDED.exec(remora.output())?.[0]}`);
  }
  t.equal((await request(remora.ports.main, { path: '/' })).status, 200, 'traffic flows on the new config');
});
