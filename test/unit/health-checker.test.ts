// Unit tests for the active health checker (src/main/health-checker.ts) against real
// node:http servers on 127.0.0.1: first results, thresholds, timeouts, connect errors,
// expected status ranges, request shape, failNow, update() and the view/stats numbers.

import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Cluster, HealthCheck } from '../../src/config/types.js';
import { createLogger } from '../../src/core/log.js';
import { HealthChecker, type HealthTarget, type HealthVerdict } from '../../src/main/health-checker.js';

const log = createLogger({ component: 'health-checker-test' }, 'silent');

interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly host: string;
  readonly userAgent: string;
  readonly status: number;
}

/** A health endpoint whose answer can be changed; 0 = never answer. Records requests. */
interface HealthServer {
  readonly port: number;
  status: number;
  readonly seen: SeenRequest[];
  /** Requests answered with `status` so far. */
  count(status: number): number;
  close(): Promise<void>;
}

async function healthServer(status: number): Promise<HealthServer> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const answer = hs.status;
    seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      host: req.headers.host ?? '',
      userAgent: req.headers['user-agent'] ?? '',
      status: answer,
    });
    req.resume();
    if (answer === 0) return; // hang
    res.writeHead(answer, { 'content-type': 'text/plain' });
    res.end('health body that the checker must read and discard\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let closed = false;
  const hs: HealthServer = {
    port: (server.address() as AddressInfo).port,
    status,
    seen,
    count: (s) => seen.filter((r) => r.status === s).length,
    close: () => {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  return hs;
}

/** A port with nothing listening: one a server had and gave up. */
async function deadPort(): Promise<number> {
  const s = await healthServer(200);
  const port = s.port;
  await s.close();
  return port;
}

function healthCheck(name: string, hc: Partial<HealthCheck> = {}): HealthCheck {
  const interval = hc.interval_ms ?? 50;
  return {
    path: '/healthz',
    host: name,
    interval_ms: interval,
    timeout_ms: 1000,
    healthy_threshold: 2,
    unhealthy_threshold: 3,
    expected_statuses: [[200, 300]],
    retriable_statuses: [],
    receive: [],
    response_buffer_size: 1024,
    no_traffic_interval_ms: interval,
    no_traffic_healthy_interval_ms: interval,
    unhealthy_interval_ms: interval,
    unhealthy_edge_interval_ms: interval,
    healthy_edge_interval_ms: interval,
    interval_jitter_ms: 0,
    interval_jitter_percent: 0,
    initial_jitter_ms: 0,
    ...hc,
  };
}

function cluster(name: string, ports: number[], hc: Partial<HealthCheck> | null = {}): Cluster {
  return {
    name,
    lb_policy: 'round_robin',
    protocol: 'http1',
    http2_protocol_options: { max_concurrent_streams: 100, initial_stream_window_size: 65_535, initial_connection_window_size: 1_048_576 },
    endpoints: ports.map((port) => ({ address: '127.0.0.1', port })),
    connect_timeout_ms: 1000,
    idle_timeout_ms: 60000,
    max_connections_per_endpoint: 1024,
    max_requests_per_connection: 0,
    circuit_breakers: { max_connections: 1024, max_pending_requests: 1024, max_requests: 1024, max_retries: 3 },
    panic_threshold_percent: 50,
    ...(hc === null ? {} : { health_check: healthCheck(name, hc) }),
  };
}

/** Stable slots per `cluster|address:port`, as the shared state hands them out. */
function slotAllocator(): (cluster: string, address: string, port: number) => number {
  const slots = new Map<string, number>();
  return (cluster, address, port) => {
    const key = `${cluster}|${address}:${port}`;
    let slot = slots.get(key);
    if (slot === undefined) {
      slot = slots.size;
      slots.set(key, slot);
    }
    return slot;
  };
}

interface Change {
  readonly target: HealthTarget;
  readonly verdict: HealthVerdict;
  readonly reason: string;
  /** Extra data the test captured when the change was reported. */
  readonly note: string;
}

function recorder(note: (target: HealthTarget, verdict: HealthVerdict) => string = () => '') {
  const changes: Change[] = [];
  const checker = new HealthChecker(log, (target, verdict, reason) => {
    changes.push({ target, verdict, reason, note: note(target, verdict) });
  });
  return { checker, changes };
}

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('first result decides at once: 200 → healthy, 503 → unhealthy', async (t) => {
  const good = await healthServer(200);
  const bad = await healthServer(503);
  const { checker, changes } = recorder();
  t.teardown(async () => {
    checker.stop();
    await good.close();
    await bad.close();
  });
  const slotOf = slotAllocator();
  checker.update([cluster('good', [good.port]), cluster('bad', [bad.port])], slotOf);
  await checker.firstRound();
  const byCluster = new Map(changes.map((c) => [c.target.cluster, c]));
  t.equal(changes.length, 2, `one change per endpoint after the first round (seen ${changes.length})`);
  t.equal(byCluster.get('good')?.verdict, 'healthy', `200 endpoint: expected healthy, seen ${byCluster.get('good')?.verdict}`);
  t.equal(byCluster.get('bad')?.verdict, 'unhealthy', `503 endpoint: expected unhealthy, seen ${byCluster.get('bad')?.verdict}`);
  t.match(byCluster.get('bad')?.reason, /status 503/, `reason names the status (seen "${byCluster.get('bad')?.reason}")`);
  t.equal(byCluster.get('good')?.target.slot, slotOf('good', '127.0.0.1', good.port), 'the target carries the slot slotOf gave');
  t.equal(byCluster.get('good')?.target.port, good.port, 'the target carries the port');
  t.equal(good.count(200), 1, `one check each after the first round (good server saw ${good.seen.length})`);
});

t.test('thresholds: unhealthy after exactly 3 failures, healthy after exactly 2 passes', async (t) => {
  const srv = await healthServer(200);
  // When each change is reported, note how many 503 / 200 answers the server gave.
  const { checker, changes } = recorder(() => `${srv.count(503)}/${srv.count(200)}`);
  t.teardown(async () => {
    checker.stop();
    await srv.close();
  });
  // 503 is listed as retriable, so it counts toward the threshold (an unlisted one fails at once).
  checker.update([cluster('flip', [srv.port], { unhealthy_threshold: 3, healthy_threshold: 2, retriable_statuses: [[503, 504]] })], slotAllocator());
  await checker.firstRound();
  t.equal(changes[0]?.verdict, 'healthy', `first verdict: expected healthy, seen ${changes[0]?.verdict}`);

  await sleep(150); // a few passing checks in a healthy state: no new changes
  t.equal(changes.length, 1, `passes while healthy report nothing (seen ${changes.length} changes)`);

  srv.status = 503;
  await waitFor('the unhealthy verdict', () => changes.length >= 2);
  t.equal(changes[1]?.verdict, 'unhealthy', `expected unhealthy, seen ${changes[1]?.verdict}`);
  t.equal(changes[1]?.note.split('/')[0], '3', `unhealthy exactly at the 3rd 503 (server had answered ${changes[1]?.note.split('/')[0]} 503s)`);
  t.match(changes[1]?.reason, /^3 consecutive failures: status 503$/, `reason (seen "${changes[1]?.reason}")`);

  const okBefore = srv.count(200);
  srv.status = 200;
  await waitFor('the healthy verdict', () => changes.length >= 3);
  t.equal(changes[2]?.verdict, 'healthy', `expected healthy, seen ${changes[2]?.verdict}`);
  const oksAfterFlip = Number(changes[2]?.note.split('/')[1]) - okBefore;
  t.equal(oksAfterFlip, 2, `healthy exactly at the 2nd 200 after the flip (seen ${oksAfterFlip})`);
  t.equal(changes[2]?.reason, '2 consecutive passes', `reason (seen "${changes[2]?.reason}")`);

  await sleep(150);
  t.equal(changes.length, 3, `no further changes while the server stays healthy (seen ${changes.length})`);
  const v = checker.view()[0];
  t.equal(v?.healthy, true, 'view says healthy');
  t.equal(v?.consecutiveFailures, 0, 'no failures counted after passes');
  t.ok((v?.consecutivePasses ?? 0) >= 2, `consecutive passes ≥ 2 (seen ${v?.consecutivePasses})`);
});

t.test('a server that never answers → unhealthy with a timeout reason', async (t) => {
  const srv = await healthServer(0);
  const { checker, changes } = recorder();
  t.teardown(async () => {
    checker.stop();
    await srv.close();
  });
  checker.update([cluster('slow', [srv.port], { timeout_ms: 200, interval_ms: 50 })], slotAllocator());
  const started = Date.now();
  await checker.firstRound();
  const took = Date.now() - started;
  t.equal(changes[0]?.verdict, 'unhealthy', `expected unhealthy, seen ${changes[0]?.verdict}`);
  t.match(changes[0]?.reason, /timeout after 200 ms/, `reason (seen "${changes[0]?.reason}")`);
  t.ok(took >= 190, `the verdict waited for the timeout (took ${took} ms, expected ≥ 200)`);
  const s = checker.stats();
  t.equal(s.timeouts, 1, `one timeout counted (seen ${s.timeouts})`);
  t.equal(s.failures, 1, `one failure counted (seen ${s.failures})`);
  t.equal(checker.view()[0]?.lastStatus, 0, 'no status seen');
});

t.test('connect refused → unhealthy with a network error', async (t) => {
  const port = await deadPort();
  const { checker, changes } = recorder();
  t.teardown(() => checker.stop());
  checker.update([cluster('dead', [port])], slotAllocator());
  await checker.firstRound();
  t.equal(changes[0]?.verdict, 'unhealthy', `expected unhealthy, seen ${changes[0]?.verdict}`);
  t.match(changes[0]?.reason, /ECONNREFUSED/, `reason names the error (seen "${changes[0]?.reason}")`);
  const s = checker.stats();
  t.equal(s.networkErrors, 1, `one network error counted (seen ${s.networkErrors})`);
  t.equal(s.timeouts + s.badStatus, 0, 'no timeouts or bad statuses');
});

t.test('expected_statuses ranges are [start, end)', async (t) => {
  const notFound = await healthServer(404);
  const notAllowed = await healthServer(405);
  const noContent = await healthServer(204);
  const { checker, changes } = recorder();
  t.teardown(async () => {
    checker.stop();
    await notFound.close();
    await notAllowed.close();
    await noContent.close();
  });
  const ranges: HealthCheck['expected_statuses'] = [
    [200, 300],
    [404, 405],
  ];
  checker.update(
    [
      cluster('s404', [notFound.port], { expected_statuses: ranges }),
      cluster('s405', [notAllowed.port], { expected_statuses: ranges }),
      cluster('s204', [noContent.port], { expected_statuses: ranges }),
    ],
    slotAllocator(),
  );
  await checker.firstRound();
  const verdict = (c: string) => changes.find((x) => x.target.cluster === c)?.verdict;
  t.equal(verdict('s404'), 'healthy', `404 within [404, 405): expected healthy, seen ${verdict('s404')}`);
  t.equal(verdict('s405'), 'unhealthy', `405 is the end of [404, 405): expected unhealthy, seen ${verdict('s405')}`);
  t.equal(verdict('s204'), 'healthy', `204 within [200, 300): expected healthy, seen ${verdict('s204')}`);
});

t.test('requests are GET <path> with the configured Host and the user agent', async (t) => {
  const srv = await healthServer(200);
  const { checker } = recorder();
  t.teardown(async () => {
    checker.stop();
    await srv.close();
  });
  checker.update([cluster('shape', [srv.port], { path: '/ready?deep=1', host: 'health.internal' })], slotAllocator());
  await checker.firstRound();
  const r = srv.seen[0];
  t.equal(r?.method, 'GET', `method (seen ${r?.method})`);
  t.equal(r?.url, '/ready?deep=1', `path (seen ${r?.url})`);
  t.equal(r?.host, 'health.internal', `Host header (seen ${r?.host})`);
  t.equal(r?.userAgent, 'remora-health-check', `User-Agent (seen ${r?.userAgent})`);
});

t.test('checks reuse one keep-alive connection', async (t) => {
  const sockets = new Set<unknown>();
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    sockets.add(req.socket);
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { checker } = recorder();
  t.teardown(async () => {
    checker.stop();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  });
  checker.update([cluster('ka', [(server.address() as AddressInfo).port])], slotAllocator());
  await waitFor('5 checks', () => requests >= 5);
  t.equal(sockets.size, 1, `${requests} checks over one connection (seen ${sockets.size} connections)`);
});

t.test('a reused connection the upstream dropped is retried once on a new one', async (t) => {
  // Each connection answers one request, then resets on the next (a keep-alive
  // connection closed by the upstream just as the check reuses it).
  const perSocket = new WeakMap<object, number>();
  let connections = 0;
  let answered = 0;
  const server = http.createServer((req, res) => {
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    if (n > 1) {
      req.socket.destroy();
      return;
    }
    answered++;
    res.end('ok');
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { checker, changes } = recorder();
  t.teardown(async () => {
    checker.stop();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  });
  checker.update([cluster('reset', [(server.address() as AddressInfo).port])], slotAllocator());
  await waitFor('4 finished checks', () => (checker.view()[0]?.checks ?? 0) >= 4);
  const s = checker.stats();
  t.equal(s.failures, 0, `no check failed (${JSON.stringify(s)})`);
  t.ok(connections >= 4 && answered >= 4, `each check got a fresh connection (${connections} connections, ${answered} answers)`);
  t.same(
    changes.map((c) => c.verdict),
    ['healthy'],
    `only the first verdict (seen ${changes.map((c) => c.verdict).join(',')})`,
  );
});

t.test('failNow marks unhealthy at once; healthy_threshold passes bring it back', async (t) => {
  const srv = await healthServer(200);
  const { checker, changes } = recorder();
  t.teardown(async () => {
    checker.stop();
    await srv.close();
  });
  const slotOf = slotAllocator();
  checker.update([cluster('fn', [srv.port], { healthy_threshold: 3 })], slotOf);
  await checker.firstRound();
  const slot = slotOf('fn', '127.0.0.1', srv.port);

  checker.failNow(slot + 100, 'not checked');
  t.equal(changes.length, 1, `failNow on an unchecked slot is a no-op (seen ${changes.length} changes)`);

  checker.failNow(slot, 'upstream said so');
  t.equal(changes.length, 2, `failNow reports synchronously (seen ${changes.length} changes)`);
  t.equal(changes[1]?.verdict, 'unhealthy', `expected unhealthy, seen ${changes[1]?.verdict}`);
  t.match(changes[1]?.reason, /upstream said so/, `reason carries the caller's reason (seen "${changes[1]?.reason}")`);
  const checksAtFail = checker.view()[0]?.checks ?? 0;
  t.equal(checker.view()[0]?.healthy, false, 'view says unhealthy right away');

  checker.failNow(slot, 'again');
  t.equal(changes.length, 2, `failNow on an unhealthy endpoint reports nothing new (seen ${changes.length})`);

  await waitFor('the healthy verdict', () => changes.length >= 3);
  const checksAfter = (checker.view()[0]?.checks ?? 0) - checksAtFail;
  t.equal(changes[2]?.verdict, 'healthy', `expected healthy, seen ${changes[2]?.verdict}`);
  t.equal(checksAfter, 3, `healthy after exactly healthy_threshold = 3 passes (seen ${checksAfter})`);
  t.equal(changes[2]?.reason, '3 consecutive passes', `reason (seen "${changes[2]?.reason}")`);
});

t.test('update(): endpoints that stay keep state, new ones start, removed ones stop', async (t) => {
  const a = await healthServer(200);
  const b = await healthServer(200);
  const c = await healthServer(503);
  const { checker, changes } = recorder();
  t.teardown(async () => {
    checker.stop();
    checker.stop(); // idempotent
    await a.close();
    await b.close();
    await c.close();
  });
  const slotOf = slotAllocator();

  const idle = new HealthChecker(log, () => {});
  idle.update([cluster('nohc', [a.port], null)], slotOf);
  await idle.firstRound(); // nothing checked: resolves at once
  t.same(idle.view(), [], 'a cluster without health_check is not checked');
  idle.stop();

  checker.update([cluster('u', [a.port, b.port])], slotOf);
  await checker.firstRound();
  t.equal(changes.length, 2, `two first results (seen ${changes.length})`);
  await waitFor('a few checks of a', () => a.seen.length >= 3);
  const aSlot = slotOf('u', '127.0.0.1', a.port);
  const aChecksBefore = checker.view().find((v) => v.slot === aSlot)?.checks ?? 0;

  // a stays (new path from the next check), b goes, c (503) comes.
  checker.update([cluster('u', [a.port, c.port], { path: '/v2' })], slotOf);
  const bSeen = b.seen.length;
  const aKept = checker.view().find((v) => v.slot === aSlot);
  t.equal(aKept?.checks, aChecksBefore, `a keeps its check count across update() (${aChecksBefore} before, ${aKept?.checks} after)`);
  t.equal(aKept?.healthy, true, 'a keeps its verdict across update()');
  await checker.firstRound();
  const cChange = changes.find((x) => x.target.port === c.port);
  t.equal(cChange?.verdict, 'unhealthy', `the new 503 endpoint gets its first result (seen ${cChange?.verdict})`);
  t.equal(changes.length, 3, `only the new endpoint reported; a kept its verdict (seen ${changes.length} changes)`);
  const aView = checker.view().find((v) => v.slot === aSlot);
  t.equal(aView?.healthy, true, 'a is still healthy');
  await waitFor('a check of a with the new path', () => a.seen.some((r) => r.url === '/v2'));
  t.same(
    checker.view().map((v) => v.endpoint),
    [`127.0.0.1:${a.port}`, `127.0.0.1:${c.port}`],
    'view lists a and c, not b',
  );
  await sleep(200);
  t.ok(b.seen.length <= bSeen + 1, `b is no longer checked (${bSeen} requests at removal, ${b.seen.length} after 200 ms)`);

  // Removing the cluster's health_check stops every check.
  checker.update([cluster('u', [a.port, c.port], null)], slotOf);
  const aSeen = a.seen.length;
  const cSeen = c.seen.length;
  await sleep(50);
  const aSettled = a.seen.length;
  const cSettled = c.seen.length;
  await sleep(250);
  t.ok(aSettled <= aSeen + 1 && cSettled <= cSeen + 1, 'at most a request already sent arrives after the update');
  t.equal(a.seen.length, aSettled, `a sees no more checks (${aSettled} then ${a.seen.length})`);
  t.equal(c.seen.length, cSettled, `c sees no more checks (${cSettled} then ${c.seen.length})`);
  t.same(checker.view(), [], 'view is empty');
  await checker.firstRound(); // nothing checked any more: resolves at once
});

t.test('update() with `only`: the clusters named change, the others keep being checked', async (t) => {
  const a = await healthServer(200);
  const b = await healthServer(200);
  const c = await healthServer(200);
  const { checker } = recorder();
  t.teardown(async () => {
    checker.stop();
    await Promise.all([a.close(), b.close(), c.close()]);
  });
  const slotOf = slotAllocator();
  checker.update([cluster('one', [a.port]), cluster('two', [b.port])], slotOf);
  await checker.firstRound();
  const bSlot = slotOf('two', '127.0.0.1', b.port);
  const bChecks = checker.view().find((v) => v.slot === bSlot)?.checks ?? 0;
  // An endpoint update of cluster one alone: a goes, c comes; cluster two is not passed.
  checker.update([cluster('one', [c.port])], slotOf, {}, new Set(['one']));
  t.same(
    checker.view().map((v) => `${v.cluster} ${v.endpoint}`).sort(),
    [`one 127.0.0.1:${c.port}`, `two 127.0.0.1:${b.port}`].sort(),
    'cluster one checks its new endpoint only; cluster two is still checked',
  );
  t.ok((checker.view().find((v) => v.slot === bSlot)?.checks ?? 0) >= bChecks, 'cluster two keeps its state');
  await checker.firstRound();
  await waitFor('a check of c', () => c.seen.length >= 1);
  const aSeen = a.seen.length;
  await sleep(200);
  t.ok(a.seen.length <= aSeen + 1, `the removed endpoint is no longer checked (${aSeen} then ${a.seen.length})`);
});

t.test('view() and stats() report sensible numbers', async (t) => {
  const ok = await healthServer(200);
  const bad = await healthServer(500);
  const { checker, changes } = recorder();
  t.teardown(async () => {
    checker.stop();
    await ok.close();
    await bad.close();
  });
  const slotOf = slotAllocator();
  const before = Date.now();
  checker.update([cluster('ok', [ok.port]), cluster('bad', [bad.port])], slotOf);
  t.same(
    checker.view().map((v) => [v.healthy, v.checks, v.lastCheckedAt, v.lastStatus, v.lastError]),
    [
      [null, 0, 0, 0, ''],
      [null, 0, 0, 0, ''],
    ],
    'before any check: no result, no counts',
  );
  await checker.firstRound();
  await waitFor('four checks of each', () => checker.view().every((v) => v.checks >= 4));
  checker.stop(); // freeze the numbers
  const views = checker.view();
  t.same(views, [], 'stop() drops every endpoint');

  const s = checker.stats();
  t.equal(s.failures, s.timeouts + s.networkErrors + s.badStatus, `failures = timeouts + network + status (${JSON.stringify(s)})`);
  t.ok(s.successes >= 4 && s.badStatus >= 4, `≥ 4 passes and ≥ 4 bad statuses (${JSON.stringify(s)})`);
  t.equal(s.timeouts + s.networkErrors, 0, 'no timeouts or network errors');
  t.ok(s.attempts >= s.successes + s.failures && s.attempts <= s.successes + s.failures + 2, `attempts = finished + in flight (${JSON.stringify(s)})`);
  t.equal(s.changes, changes.length, `changes counts the reported verdicts (${s.changes} vs ${changes.length})`);
  t.equal(s.changes, 2, `only the two first results changed anything (seen ${s.changes})`);
  t.ok(Date.now() >= before, 'clock sanity');
});

t.test('view() while running shows per-endpoint state', async (t) => {
  const ok = await healthServer(200);
  const bad = await healthServer(500);
  const { checker } = recorder();
  t.teardown(async () => {
    checker.stop();
    await ok.close();
    await bad.close();
  });
  const slotOf = slotAllocator();
  const before = Date.now();
  checker.update([cluster('ok', [ok.port]), cluster('bad', [bad.port])], slotOf);
  await checker.firstRound();
  await waitFor('three checks of each', () => checker.view().every((v) => v.checks >= 3));
  const [vOk, vBad] = checker.view();
  t.equal(vOk?.slot, slotOf('ok', '127.0.0.1', ok.port), 'views are ordered by slot');
  t.equal(vOk?.cluster, 'ok', 'cluster name');
  t.equal(vOk?.endpoint, `127.0.0.1:${ok.port}`, `endpoint is address:port (seen ${vOk?.endpoint})`);
  t.equal(vOk?.healthy, true, 'ok is healthy');
  t.equal(vOk?.lastStatus, 200, `ok last status (seen ${vOk?.lastStatus})`);
  t.equal(vOk?.lastError, '', 'ok has no error');
  t.ok((vOk?.consecutivePasses ?? 0) >= 3 && vOk?.consecutiveFailures === 0, `ok counts passes (seen ${vOk?.consecutivePasses}/${vOk?.consecutiveFailures})`);
  t.ok((vOk?.lastCheckedAt ?? 0) >= before && (vOk?.lastCheckedAt ?? 0) <= Date.now(), 'lastCheckedAt is a recent epoch ms');
  t.equal(vBad?.healthy, false, 'bad is unhealthy');
  t.equal(vBad?.lastStatus, 500, `bad last status (seen ${vBad?.lastStatus})`);
  t.equal(vBad?.lastError, 'status 500', `bad last error (seen "${vBad?.lastError}")`);
  t.ok((vBad?.consecutiveFailures ?? 0) >= 3 && vBad?.consecutivePasses === 0, `bad counts failures (seen ${vBad?.consecutiveFailures}/${vBad?.consecutivePasses})`);
});

t.test('a status neither expected nor retriable fails a healthy endpoint at once (Envoy)', async (t) => {
  const srv = await healthServer(200);
  const { checker, changes } = recorder(() => `${srv.count(503)}`);
  t.teardown(async () => {
    checker.stop();
    await srv.close();
  });
  checker.update([cluster('now', [srv.port], { unhealthy_threshold: 5 })], slotAllocator());
  await checker.firstRound();
  srv.status = 503;
  await waitFor('the unhealthy verdict', () => changes.length >= 2);
  t.equal(changes[1]?.verdict, 'unhealthy', `expected unhealthy, seen ${changes[1]?.verdict}`);
  t.equal(changes[1]?.note, '1', `unhealthy at the first 503 despite unhealthy_threshold 5 (server had answered ${changes[1]?.note} 503s)`);
  t.match(changes[1]?.reason, /^unexpected status: status 503$/, `reason (seen "${changes[1]?.reason}")`);
});

t.test('intervals: no_traffic_interval until the cluster has traffic, unhealthy_interval while unhealthy', async (t) => {
  const srv = await healthServer(200);
  let traffic = false;
  const changes: HealthVerdict[] = [];
  const checker = new HealthChecker(log, (_target, verdict) => changes.push(verdict), () => traffic);
  t.teardown(async () => {
    checker.stop();
    await srv.close();
  });
  checker.update(
    [cluster('idle', [srv.port], { interval_ms: 50, no_traffic_interval_ms: 400, no_traffic_healthy_interval_ms: 400, unhealthy_interval_ms: 300, unhealthy_edge_interval_ms: 300 })],
    slotAllocator(),
  );
  await checker.firstRound();
  await sleep(600);
  const quiet = srv.seen.length;
  t.ok(quiet >= 2 && quiet <= 3, `without traffic checks run every 400 ms: expected 2-3 in the first 600 ms, seen ${quiet}`);

  traffic = true;
  checker.trafficStarted('idle');
  await sleep(400);
  const busy = srv.seen.length - quiet;
  t.ok(busy >= 5, `with traffic checks run every 50 ms (brought forward at once): expected at least 5 in 400 ms, seen ${busy}`);

  srv.status = 500;
  await waitFor('the unhealthy verdict', () => changes.length >= 2);
  const atUnhealthy = srv.seen.length;
  await sleep(700);
  const whileUnhealthy = srv.seen.length - atUnhealthy;
  t.ok(whileUnhealthy >= 1 && whileUnhealthy <= 3, `unhealthy endpoints are checked every 300 ms: expected 1-3 checks in 700 ms, seen ${whileUnhealthy}`);
});

t.test('jitter: interval_jitter_ms and interval_jitter_percent lengthen the wait', async (t) => {
  const srv = await healthServer(200);
  const { checker } = recorder();
  t.teardown(async () => {
    checker.stop();
    await srv.close();
  });
  checker.update([cluster('jit', [srv.port], { interval_ms: 100, interval_jitter_ms: 200, interval_jitter_percent: 100 })], slotAllocator());
  await checker.firstRound();
  await sleep(1000);
  // Each wait is 100 + U(0,100) + U(0,200) ms: 250 ms on average, so about 4 checks in 1 s
  // (without jitter there would be about 10).
  const n = srv.seen.length;
  t.ok(n >= 3 && n <= 8, `expected 3-8 checks in 1 s with jitter (10 without), seen ${n}`);
});
