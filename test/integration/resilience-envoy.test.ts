// The five deviations from Envoy of issue 22, each through a real Remora with an upstream
// built for it: max_requests counts outstanding requests (queued ones are pending),
// tokens_per_fill defaults to 1, a health check answered with an unexpected status fails
// the endpoint at once and no_traffic_interval applies until traffic, x-envoy-* control
// headers are honoured from trusted routes and never forwarded (nor are x-remora-*),
// and a route's rate-limit bucket follows its identity across a reload that inserts a
// route above it. Also: a retry refused by max_retries is flagged UO, one refused by
// num_retries URX (Envoy's RetryStatus::NoOverflow vs NoRetryLimitExceeded).

import http from 'node:http';
import { writeFileSync } from 'node:fs';
import t from 'tap';
import { admin, request, routesConfig, startRemora, startUpstream } from '../helpers/remora.js';
import { deadPort } from '../helpers/dead-port.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what: string, cond: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await sleep(20);
  }
}

/** An upstream that records what it saw and answers after `delayMs`. */
async function recording(opts: { delayMs?: number; status?: (path: string, n: number) => number } = {}) {
  const state = { inflight: 0, maxInflight: 0, seen: [] as http.IncomingHttpHeaders[], paths: [] as string[], health: 200, healthChecks: 0 };
  const perPath = new Map<string, number>();
  const up = await startUpstream((req, res) => {
    req.resume();
    if (req.url === '/health') {
      state.healthChecks++;
      res.writeHead(state.health);
      res.end();
      return;
    }
    const path = req.url ?? '';
    const n = (perPath.get(path) ?? 0) + 1;
    perPath.set(path, n);
    state.seen.push(req.headers);
    state.paths.push(path);
    state.inflight++;
    state.maxInflight = Math.max(state.maxInflight, state.inflight);
    req.on('end', () => {
      setTimeout(() => {
        state.inflight--;
        res.writeHead(opts.status?.(path, n) ?? 200, { 'content-type': 'text/plain' });
        res.end(path);
      }, opts.delayMs ?? 0);
    });
  });
  return { ...up, state };
}


function cluster(name: string, port: number, extra: Record<string, unknown> = {}) {
  return { name, connect_timeout_ms: 500, endpoints: [{ address: '127.0.0.1', port }], ...extra };
}

const countBy = (statuses: number[]): Record<number, number> => {
  const out: Record<number, number> = {};
  for (const s of statuses) out[s] = (out[s] ?? 0) + 1;
  return out;
};

t.test('max_requests counts outstanding requests; queued ones wait as pending (Envoy)', async (t) => {
  const up = await recording({ delayMs: 150 });
  const remora = await startRemora(
    routesConfig(
      [
        { name: 'one', match: { prefix: '/one/' }, route: { cluster: 'one' } },
        { name: 'many', match: { prefix: '/many/' }, route: { cluster: 'many' } },
      ],
      [
        cluster('one', up.port, { circuit_breakers: { max_connections: 1, max_pending_requests: 100, max_requests: 2 } }),
        cluster('many', up.port, { circuit_breakers: { max_connections: 100, max_pending_requests: 100, max_requests: 2 } }),
      ],
    ),
  );
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const port = remora.ports.main;
  // One connection: six requests queue as pending and are served one after another.
  const queued = await Promise.all(Array.from({ length: 6 }, (_, i) => request(port, { path: `/one/${i}`, agent: false })));
  t.same(countBy(queued.map((r) => r.status)), { 200: 6 }, `expected all 6 served from the queue (Envoy), got ${JSON.stringify(countBy(queued.map((r) => r.status)))}`);
  t.equal(up.state.maxInflight, 1, `expected one request at a time on the single connection, saw ${up.state.maxInflight}`);

  // Connections to spare: the third outstanding request overflows max_requests.
  up.state.maxInflight = 0;
  const burst = await Promise.all(Array.from({ length: 6 }, (_, i) => request(port, { path: `/many/${i}`, agent: false })));
  const counts = countBy(burst.map((r) => r.status));
  t.same(counts, { 200: 2, 503: 4 }, `expected 2 served and 4 refused by max_requests 2, got ${JSON.stringify(counts)}`);
  const refused = burst.filter((r) => r.status === 503);
  t.ok(refused.every((r) => r.headers['x-remora-flags'] === 'UO'), `expected flag UO on every refusal, got ${refused.map((r) => r.headers['x-remora-flags']).join(',')}`);
  t.ok(up.state.maxInflight <= 2, `expected at most 2 outstanding at the upstream, saw ${up.state.maxInflight}`);
});

t.test('tokens_per_fill defaults to 1: a drained bucket admits one request per fill', async (t) => {
  const up = await recording();
  const remora = await startRemora(
    routesConfig([{ name: 'rl', match: { prefix: '/' }, route: { cluster: 'c' }, rate_limits: [{ name: 'b', max_tokens: 5, fill_interval_ms: 1500 }] }], [cluster('c', up.port)]),
  );
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const port = remora.ports.main;
  const first = [];
  for (let i = 0; i < 6; i++) first.push((await request(port, { path: `/a${i}`, agent: false })).status);
  t.same(first, [200, 200, 200, 200, 200, 429], `a full bucket admits max_tokens 5, got ${first.join(',')}`);
  // Poll until the next fill admits a request, then the bucket must be empty again.
  let admittedAt = 0;
  await waitUntil('the next fill', async () => {
    const s = (await request(port, { path: '/poll', agent: false })).status;
    if (s === 200) admittedAt = Date.now();
    return s === 200;
  }, 4000);
  const after = [];
  for (let i = 0; i < 4; i++) after.push((await request(port, { path: `/b${i}`, agent: false })).status);
  t.ok(Date.now() - admittedAt < 1000, 'the follow-up requests ran within the same fill interval');
  t.same(after, [429, 429, 429, 429], `one fill added one token (Envoy's default), so the next 4 are refused: got ${after.join(',')}`);
});

t.test('health checks: an unexpected status fails the endpoint at once; no_traffic_interval until traffic', async (t) => {
  const up = await recording();
  const remora = await startRemora(
    routesConfig(
      [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'hc' } }],
      // panic_threshold_percent 0: an unhealthy only endpoint gets no traffic (503 UH) instead of panic routing.
      [cluster('hc', up.port, { panic_threshold_percent: 0, health_check: { path: '/health', interval_ms: 100, timeout_ms: 500, unhealthy_threshold: 5, healthy_threshold: 1 } })],
    ),
  );
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const port = remora.ports.main;
  const health = async () => {
    const body = JSON.parse((await admin(remora.adminPort, '/clusters')).text) as { clusters: { name: string; endpoints: { health: string }[] }[] };
    return body.clusters.find((c) => c.name === 'hc')?.endpoints[0]?.health ?? 'none';
  };
  await waitUntil('healthy after the first check', async () => (await health()) === 'healthy');
  // No traffic yet: the default no_traffic_interval (60 s) applies, not interval_ms.
  const idleChecks = up.state.healthChecks;
  await sleep(800);
  t.equal(up.state.healthChecks, idleChecks, `expected no check in 800 ms before any traffic (no_traffic_interval 60 s), saw ${up.state.healthChecks - idleChecks}`);

  t.equal((await request(port, { path: '/traffic', agent: false })).status, 200, 'traffic flows');
  await sleep(600);
  const busy = up.state.healthChecks - idleChecks;
  t.ok(busy >= 3, `once the cluster has traffic, checks run every interval_ms (100): expected ≥ 3 in 600 ms, saw ${busy}`);

  up.state.health = 503;
  const failedAt = up.state.healthChecks;
  await waitUntil('unhealthy', async () => (await health()) === 'unhealthy', 2000);
  const answered503 = up.state.healthChecks - failedAt;
  t.ok(answered503 <= 2, `unhealthy at the first 503 despite unhealthy_threshold 5 (checks answered 503 so far: ${answered503})`);
  const refused = await request(port, { path: '/while-unhealthy', agent: false });
  t.equal(refused.status, 503, `expected 503 while the only endpoint is unhealthy, got ${refused.status}`);
  t.equal(refused.headers['x-remora-flags'], 'UH', `expected flag UH, got ${refused.headers['x-remora-flags']}`);
  t.equal(up.state.paths.includes('/while-unhealthy'), false, 'no traffic reached the unhealthy endpoint');
  up.state.health = 200;
  await waitUntil('healthy again', async () => (await health()) === 'healthy', 3000);
  t.pass('one passing check (healthy_threshold 1) brings it back');
});

t.test('x-envoy-retry-on / max-retries / upstream-rq-timeout-ms are honoured from trusted routes and never forwarded', async (t) => {
  // /flaky/*: 503 twice, then 200. /slow/*: answers after 600 ms.
  const up = await recording({ status: (path, n) => (path.startsWith('/flaky/') && n <= 2 ? 503 : 200) });
  const slow = await recording({ delayMs: 600 });
  const trusting = { retry_on: [], num_retries: 0, base_interval_ms: 1, allow_request_headers: true };
  const remora = await startRemora(
    routesConfig(
      [
        { name: 'trusted', match: { prefix: '/flaky/' }, route: { cluster: 'c', retry_policy: trusting } },
        { name: 'trusted-slow', match: { prefix: '/slow/trusted' }, route: { cluster: 'slow', retry_policy: trusting } },
        { name: 'untrusted-slow', match: { prefix: '/slow/' }, route: { cluster: 'slow' } },
        { name: 'untrusted', match: { prefix: '/' }, route: { cluster: 'c' } },
      ],
      [cluster('c', up.port), cluster('slow', slow.port)],
    ),
  );
  t.teardown(async () => {
    await remora.stop();
    await up.close();
    await slow.close();
  });
  const port = remora.ports.main;
  const control = {
    'x-envoy-retry-on': '5xx',
    'x-envoy-max-retries': '2',
    'x-envoy-upstream-rq-per-try-timeout-ms': '5000',
    'x-remora-retry-on': 'reset',
    'x-remora-anything': 'x',
    'x-envoy-retry-grpc-on': 'cancelled',
  };
  const res = await request(port, { path: '/flaky/a', headers: control, agent: false });
  t.equal(res.status, 200, `x-envoy-retry-on: 5xx with x-envoy-max-retries: 2 gets past two 503s, got ${res.status}`);
  t.equal(up.state.paths.filter((p) => p === '/flaky/a').length, 3, 'three attempts reached the upstream');
  const leaked = up.state.seen.flatMap((h) => Object.keys(h).filter((k) => (k.startsWith('x-envoy-') || k.startsWith('x-remora-')) && k !== 'x-remora-attempt-count'));
  t.same(leaked, [], `no x-envoy-* or x-remora-* control header reaches the upstream, saw ${leaked.join(',')}`);

  const timed = await request(port, { path: '/slow/trusted', headers: { 'x-envoy-upstream-rq-timeout-ms': '150' }, agent: false });
  t.equal(timed.status, 504, `x-envoy-upstream-rq-timeout-ms: 150 on a trusted route times out a 600 ms upstream, got ${timed.status}`);
  t.equal(timed.headers['x-remora-flags'], 'UT', 'flag UT');

  const ignored = await request(port, { path: '/slow/untrusted', headers: { 'x-envoy-upstream-rq-timeout-ms': '150', 'x-envoy-retry-on': '5xx' }, agent: false });
  t.equal(ignored.status, 200, `an untrusted route ignores the timeout header, got ${ignored.status}`);
  const flakyUntrusted = await request(port, { path: '/flaky/', headers: { 'x-envoy-retry-on': '5xx' }, agent: false });
  t.ok(flakyUntrusted.status === 200 || flakyUntrusted.status === 503, 'an untrusted request is answered');
  const slowLeaked = slow.state.seen.flatMap((h) => Object.keys(h).filter((k) => k.startsWith('x-envoy-')));
  t.same(slowLeaked, [], `untrusted control headers are stripped too, saw ${slowLeaked.join(',')}`);
});

t.test("a route's rate-limit bucket follows the route, not its position, across a reload", async (t) => {
  const up = await recording();
  const makeConfig = (insertAbove: boolean) =>
    routesConfig(
      [
        ...(insertAbove ? [{ match: { prefix: '/new/' }, route: { cluster: 'c' } }] : []),
        // Unnamed: its default name is derived from its match, not its index.
        { match: { prefix: '/' }, route: { cluster: 'c' }, rate_limits: [{ name: 'b', max_tokens: 3, fill_interval_ms: 60_000 }] },
      ],
      [cluster('c', up.port)],
    );
  const remora = await startRemora(makeConfig(false));
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const port = remora.ports.main;
  const before = [];
  for (let i = 0; i < 4; i++) before.push((await request(port, { path: `/x${i}`, agent: false })).status);
  t.same(before, [200, 200, 200, 429], `the bucket of 3 is drained: got ${before.join(',')}`);

  writeFileSync(remora.configFile, JSON.stringify(makeConfig(true)));
  process.kill(remora.pid, 'SIGHUP');
  await waitUntil('config version 2', async () => (JSON.parse((await admin(remora.adminPort, '/config_dump')).text) as { version: number }).version === 2);
  t.equal((await request(port, { path: '/new/a', agent: false })).status, 200, 'the inserted route is in effect');
  const after = (await request(port, { path: '/y', agent: false })).status;
  t.equal(after, 429, `the route's bucket kept its state although the route moved from index 0 to 1 (expected 429, got ${after})`);
});

t.test('a retry refused by max_retries is flagged UO; one refused by num_retries URX (Envoy)', async (t) => {
  const dead = await deadPort();
  const policy = { retry_on: ['connect-failure'], num_retries: 1, base_interval_ms: 1 };
  const remora = await startRemora(
    routesConfig(
      [
        { name: 'overflow', match: { prefix: '/overflow' }, route: { cluster: 'no-retries', retry_policy: policy } },
        { name: 'exhausted', match: { prefix: '/exhausted' }, route: { cluster: 'dead', retry_policy: policy } },
      ],
      [cluster('no-retries', dead, { circuit_breakers: { max_retries: 0 } }), cluster('dead', dead)],
    ),
  );
  t.teardown(() => remora.stop());
  const port = remora.ports.main;
  const overflow = await request(port, { path: '/overflow', agent: false });
  t.equal(overflow.status, 503, `expected 503, got ${overflow.status}`);
  t.equal(overflow.headers['x-remora-flags'], 'UF,UO', `max_retries 0 refuses the retry: expected UF,UO, got ${overflow.headers['x-remora-flags']}`);
  const exhausted = await request(port, { path: '/exhausted', agent: false });
  t.equal(exhausted.headers['x-remora-flags'], 'UF,URX', `num_retries used up: expected UF,URX, got ${exhausted.headers['x-remora-flags']}`);
});

// Keep node:http's default agent from holding the process open.
t.teardown(() => http.globalAgent.destroy());
