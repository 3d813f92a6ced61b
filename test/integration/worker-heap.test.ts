// Workers' V8 heap settings through the real proxy: worker_limits.young_generation_mb
// caps each worker's young generation from the start (/workers shows the limit the
// workers run with, and their heap in use and reserved); unset, the default 16 MiB
// applies, and 0 leaves V8's own limit (shown too); a reload that changes it is applied to nothing but logged, since the
// workers keep the limit they started with. 127.0.0.1, port 0; processes ended by pid.

import { writeFileSync } from 'node:fs';
import t from 'tap';
import { admin, routesConfig, startRemora, startUpstream, waitUntil } from '../helpers/remora.js';

interface WorkersReply {
  workers: { version: number; heap_used_mb: number; heap_total_mb: number; young_generation_limit_mb: number }[];
}

t.test('worker_limits.young_generation_mb: set at start, shown per worker, fixed across reloads', async (t) => {
  const up = await startUpstream((_req, res) => res.end('ok'));
  const config = (young?: number) => ({
    ...routesConfig([{ match: { prefix: '/' }, route: { cluster: 'up' } }], [{ name: 'up', endpoints: [{ address: '127.0.0.1', port: up.port }] }], { workers: 2 }),
    ...(young !== undefined ? { worker_limits: { young_generation_mb: young } } : {}),
  });
  const plain = await startRemora(config());
  const v8own = await startRemora(config(0));
  const capped = await startRemora(config(4));
  t.teardown(async () => {
    await plain.stop();
    await v8own.stop();
    await capped.stop();
    await up.close();
  });
  const workers = async (port: number): Promise<WorkersReply['workers']> => (JSON.parse((await admin(port, '/workers')).text) as WorkersReply).workers;

  t.same((await workers(plain.adminPort)).map((w) => w.young_generation_limit_mb), [16, 16], 'unset: the default, 16 MiB, in every worker');
  const own = (await workers(v8own.adminPort)).map((w) => w.young_generation_limit_mb);
  t.ok(own.every((mb) => mb > 16 && mb === own[0]), `0: V8's own limit, the same in every worker (${own.join(', ')} MiB)`);
  const limited = await workers(capped.adminPort);
  t.same(limited.map((w) => w.young_generation_limit_mb), [4, 4], 'set: every worker runs with 4 MiB');
  t.ok(limited.every((w) => w.heap_used_mb > 0 && w.heap_total_mb >= w.heap_used_mb), `heap in use and reserved reported (${JSON.stringify(limited.map((w) => [w.heap_used_mb, w.heap_total_mb]))})`);

  writeFileSync(capped.configFile, JSON.stringify({ ...config(16), admin: { address: '127.0.0.1', port: capped.adminPort } }));
  process.kill(capped.pid, 'SIGHUP');
  await capped.waitFor(/young_generation_mb takes effect at the next start/);
  t.pass('a reload that changes it says it takes effect at the next start');
  await waitUntil('the reload applied', async () => (await workers(capped.adminPort)).every((w) => w.version === 2), 8000, 50);
  t.same((await workers(capped.adminPort)).map((w) => w.young_generation_limit_mb), [4, 4], 'the workers keep the limit they started with');
});
