// Load balancing end to end through the real proxy (one worker, so one balancer):
// round robin exact order, least_request avoiding a busy endpoint, weighted clusters
// following their weights, random reaching every endpoint.

import t from 'tap';
import http from 'node:http';
import { namedUpstream, request, simpleConfig, startRemora, startUpstream, type Reply } from '../helpers/remora.js';

type Upstream = Awaited<ReturnType<typeof namedUpstream>>;

/** Starts `names.length` named upstreams; they are closed at teardown. */
async function upstreams(t: { teardown(fn: () => unknown): void }, ...names: string[]): Promise<Upstream[]> {
  const ups = await Promise.all(names.map((n) => namedUpstream(n)));
  t.teardown(() => Promise.all(ups.map((u) => u.close())));
  return ups;
}

/** Issues `total` requests with at most `concurrency` in flight; counts x-upstream. */
async function spread(
  port: number,
  total: number,
  concurrency: number,
  opts: { path?: string; agent?: http.Agent } = {},
): Promise<{ counts: Record<string, number>; failures: string[] }> {
  const counts: Record<string, number> = {};
  const failures: string[] = [];
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (issued < total) {
      issued++;
      try {
        const r = await request(port, { path: opts.path ?? '/', agent: opts.agent });
        if (r.status !== 200) failures.push(`status ${r.status}: ${r.text.trim()}`);
        const name = String(r.headers['x-upstream']);
        counts[name] = (counts[name] ?? 0) + 1;
      } catch (err) {
        failures.push(String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { counts, failures };
}

const pct = (n: number, total: number): string => `${((n / total) * 100).toFixed(2)}%`;

t.test('round robin: 300 requests over 3 upstreams, exactly 100 each, in order', async (t) => {
  const ups = await upstreams(t, 'a', 'b', 'c');
  const remora = await startRemora(simpleConfig(ups.map((u) => u.port), { workers: 1, lb: 'round_robin' }));
  t.teardown(() => remora.stop());
  const seq: string[] = [];
  for (let i = 0; i < 300; i++) {
    const r = await request(remora.ports.main, { path: `/rr/${i}` });
    seq.push(r.status === 200 ? r.text : `status ${r.status}`);
  }
  const counts = { a: 0, b: 0, c: 0 } as Record<string, number>;
  for (const s of seq) counts[s] = (counts[s] ?? 0) + 1;
  t.same(counts, { a: 100, b: 100, c: 100 }, 'each upstream gets exactly 100 of 300 requests');
  const mismatch = seq.findIndex((s, i) => s !== ['a', 'b', 'c'][i % 3]);
  t.equal(mismatch, -1, `the order is a,b,c,a,b,c,... (starts ${seq.slice(0, 6).join(',')}; first deviation at index ${mismatch})`);
});

t.test('least_request prefers the idle endpoint', async (t) => {
  // Two upstreams that hold the requests they get while `holding` says so (`held` keeps
  // the functions that answer them). In phase 2 only the requests slow already holds
  // stay held; anything new is answered at once, so a misrouted request cannot hang.
  const held: Record<'slow' | 'fast', (() => void)[]> = { slow: [], fast: [] };
  const holding = { slow: true, fast: true };
  const arrivals = { slow: 0, fast: 0 };
  const make = (name: 'slow' | 'fast') =>
    startUpstream((req, res) => {
      req.resume();
      arrivals[name]++;
      const answer = (): void => {
        res.writeHead(200, { 'x-upstream': name, 'content-length': String(name.length) });
        res.end(name);
      };
      if (holding[name]) held[name].push(answer);
      else answer();
    });
  const release = (name: 'slow' | 'fast'): void => {
    for (const answer of held[name].splice(0)) answer();
  };
  const [slow, fast] = await Promise.all([make('slow'), make('fast')]);
  const remora = await startRemora(simpleConfig([slow.port, fast.port], { workers: 1, lb: 'least_request' }));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  t.teardown(async () => {
    release('slow');
    release('fast');
    agent.destroy();
    await remora.stop();
    await Promise.all([slow.close(), fast.close()]);
  });
  const port = remora.ports.main;

  // Phase 1: with both holding, send 8 requests one by one (each after the previous one
  // reached an upstream). P2C keeps the two balanced, so "slow" ends up with several.
  const phase1: Promise<Reply>[] = [];
  for (let i = 0; i < 8; i++) {
    const before = arrivals.slow + arrivals.fast;
    phase1.push(request(port, { path: `/hold/${i}`, agent }));
    const deadline = Date.now() + 5000;
    while (arrivals.slow + arrivals.fast === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  }
  t.equal(arrivals.slow + arrivals.fast, 8, 'all 8 held requests reached an upstream');
  t.ok(arrivals.slow >= 3, `slow holds several requests (${arrivals.slow} of 8)`);

  // Phase 2: "fast" answers from now on. With slow busy, new requests (2 at a time, so
  // fast never has as many in flight) should all go to fast.
  holding.fast = false;
  holding.slow = false;
  release('fast');
  const slowBusy = held.slow.length;
  const { counts, failures } = await spread(port, 100, 2, { path: '/p2', agent });
  t.same(failures, [], 'every request during phase 2 succeeds');
  const toFast = counts.fast ?? 0;
  t.ok(toFast >= 90, `with ${slowBusy} requests held by slow, ≥ 90% of new requests go to fast (got ${toFast} of 100)`);
  t.equal(held.slow.length, slowBusy, 'slow was still busy with its held requests throughout phase 2');

  release('slow');
  const held1 = await Promise.all(phase1);
  t.ok(held1.every((r) => r.status === 200), 'the held requests complete once released');
});

t.test('weighted clusters follow their weights (95/5 and 50/50 over 10,000 requests each)', async (t) => {
  const ups = await upstreams(t, 'heavy', 'light', 'left', 'right');
  const config = simpleConfig([ups[0].port], { workers: 1 });
  const cluster = (name: string, port: number) => ({ name, endpoints: [{ address: '127.0.0.1', port }] });
  const vhost = config.listeners[0].virtual_hosts[0] as { routes: unknown[] };
  vhost.routes = [
    {
      name: 'w95',
      match: { prefix: '/w95' },
      route: { weighted_clusters: [{ cluster: 'heavy', weight: 95 }, { cluster: 'light', weight: 5 }] },
    },
    {
      name: 'w50',
      match: { prefix: '/w50' },
      route: { weighted_clusters: [{ cluster: 'left', weight: 1 }, { cluster: 'right', weight: 1 }] },
    },
  ];
  (config as { clusters: unknown[] }).clusters = [
    cluster('heavy', ups[0].port),
    cluster('light', ups[1].port),
    cluster('left', ups[2].port),
    cluster('right', ups[3].port),
  ];
  const remora = await startRemora(config);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  t.teardown(async () => {
    agent.destroy();
    await remora.stop();
  });
  const n = 10_000;
  const w95 = await spread(remora.ports.main, n, 32, { path: '/w95', agent });
  t.same(w95.failures.slice(0, 5), [], 'every 95/5 request succeeds');
  const heavy = w95.counts.heavy ?? 0;
  const light = w95.counts.light ?? 0;
  t.equal(heavy + light, n, 'all 95/5 requests went to heavy or light');
  t.ok(Math.abs(heavy / n - 0.95) <= 0.02, `heavy gets 95% ± 2pp (got ${pct(heavy, n)})`);
  t.ok(Math.abs(light / n - 0.05) <= 0.02, `light gets 5% ± 2pp (got ${pct(light, n)})`);

  const w50 = await spread(remora.ports.main, n, 32, { path: '/w50', agent });
  t.same(w50.failures.slice(0, 5), [], 'every 50/50 request succeeds');
  const left = w50.counts.left ?? 0;
  const right = w50.counts.right ?? 0;
  t.equal(left + right, n, 'all 50/50 requests went to left or right');
  t.ok(Math.abs(left / n - 0.5) <= 0.02, `left gets 50% ± 2pp (got ${pct(left, n)})`);
  t.ok(Math.abs(right / n - 0.5) <= 0.02, `right gets 50% ± 2pp (got ${pct(right, n)})`);
});

t.test('random spreads over all endpoints', async (t) => {
  const ups = await upstreams(t, 'r1', 'r2', 'r3');
  const remora = await startRemora(simpleConfig(ups.map((u) => u.port), { workers: 1, lb: 'random' }));
  t.teardown(() => remora.stop());
  const n = 600;
  const { counts, failures } = await spread(remora.ports.main, n, 4);
  t.same(failures, [], 'every request succeeds');
  t.equal((counts.r1 ?? 0) + (counts.r2 ?? 0) + (counts.r3 ?? 0), n, 'every request went to one of the endpoints');
  for (const name of ['r1', 'r2', 'r3']) {
    const c = counts[name] ?? 0;
    // Expected 200 each (sd ≈ 11.5); 120 is ~7 sd away.
    t.ok(c >= 120, `${name} gets a fair share of ${n} (≥ 120; got ${c})`);
  }
});
