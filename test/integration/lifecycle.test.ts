// Lifecycle end to end: readiness (workers, first health-check round, manual override,
// probes server), wait-ready, graceful drain under load that loses no request, hot
// reload under load (file change and SIGHUP) with zero failures, invalid reloads that
// keep serving, /quitquitquit, the hung-worker watchdog, the memory limit, and the
// limits that protect the sidecar (431, 413, slow headers).

import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { admin, BIN, rawExchange, request, routesConfig, startRemora, startUpstream, type Reply, waitUntil } from '../helpers/remora.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const until = (what: string, fn: () => Promise<boolean>, ms = 5000) => waitUntil(what, fn, ms, 25);

/** An upstream that answers after `delayMs` with its name and the request's path. */
async function upstream(name: string, delayMs = 0) {
  return startUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': name });
        res.end(`${name} ${req.url}`);
      }, delayMs);
    });
  });
}

const oneRoute = (port: number, extra: Record<string, unknown> = {}, route: Record<string, unknown> = {}) => ({
  ...routesConfig([{ name: 'r', match: { prefix: '/' }, route: { cluster: 'c', ...route } }], [{ name: 'c', endpoints: [{ address: '127.0.0.1', port }] }], { workers: 2 }),
  ...extra,
});

/** Outcome of one request of a load loop. */
type Outcome = { kind: 'ok'; body: string } | { kind: 'refused' } | { kind: 'lost'; why: string };

/** Sends requests on a keep-alive agent until `stop()`; classifies each one: a complete
 *  200, never accepted (connection refused, or reset on a fresh connection before any
 *  response byte), or lost (anything else: reset on a reused connection, cut body,
 *  non-200). Never retries. */
function loadLoop(port: number, lanes: number, path = '/load') {
  const agent = new http.Agent({ keepAlive: true, maxSockets: lanes });
  const outcomes: Outcome[] = [];
  let running = true;
  const one = (): Promise<Outcome> =>
    new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(res.statusCode === 200 && res.complete ? { kind: 'ok', body } : { kind: 'lost', why: `status ${res.statusCode}, complete ${res.complete}` }));
        res.on('error', (err) => resolve({ kind: 'lost', why: `response error ${err.message}` }));
        res.on('aborted', () => resolve({ kind: 'lost', why: 'response aborted' }));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        const fresh = !req.reusedSocket;
        // Refused, or reset/broken on a brand-new connection before any response: the
        // listener had stopped accepting and the kernel dropped what was queued.
        if (err.code === 'ECONNREFUSED' || (fresh && (err.code === 'ECONNRESET' || err.code === 'EPIPE'))) resolve({ kind: 'refused' });
        else resolve({ kind: 'lost', why: `${err.code ?? err.message} on a ${fresh ? 'fresh' : 'reused'} connection` });
      });
      req.end();
    });
  const lane = async (): Promise<void> => {
    while (running) {
      const o = await one();
      outcomes.push(o);
      if (o.kind === 'refused') await sleep(20);
    }
  };
  const done = Promise.all(Array.from({ length: lanes }, lane));
  return {
    outcomes,
    async stop() {
      running = false;
      await done;
      agent.destroy();
    },
  };
}

const count = (outcomes: Outcome[], kind: Outcome['kind']) => outcomes.filter((o) => o.kind === kind).length;
const lostReasons = (outcomes: Outcome[]) => [...new Set(outcomes.flatMap((o) => (o.kind === 'lost' ? [o.why] : [])))].join('; ');

t.test('readiness: probes server, manual override, first health-check round, wait-ready', async (t) => {
  // The first health check answers late enough that the process is ready (workers
  // listening, the ready line written) well before it: a slow start on a busy host must
  // not see the first round done already.
  let healthDelay = 4000;
  const up = await startUpstream((req, res) => {
    req.resume();
    setTimeout(() => res.end('ok'), req.url === '/health' ? healthDelay : 0);
  });
  const config = {
    ...routesConfig(
      [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'c' } }],
      [{ name: 'c', endpoints: [{ address: '127.0.0.1', port: up.port }], health_check: { path: '/health', interval_ms: 200, timeout_ms: 10_000 } }],
      { workers: 2 },
    ),
    probes: { address: '127.0.0.1', port: 0 },
  };
  const remora = await startRemora(config);
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const readyLine = JSON.parse(await remora.waitFor(/\{[^\n]*"msg":"remora ready"[^\n]*\}/)) as { probes?: number };
  const probes = readyLine.probes!;
  t.ok(probes > 0, `the ready line names the probes port (${probes})`);
  const first = await admin(probes, '/ready');
  t.equal(first.status, 503, 'before the first health-check round /ready is 503');
  t.match(first.text, /first round of active health checks/, `and says why (${first.text.trim()})`);
  healthDelay = 0;
  await until('ready after the first round', async () => (await admin(probes, '/ready')).status === 200, 10_000);
  t.pass('/ready turns 200 once the first round of health checks finished');
  t.equal((await admin(probes, '/live')).status, 200, 'the probes server answers /live');
  t.match((await admin(probes, '/metrics')).text, /remora_startup_seconds \d/, 'the probes server answers /metrics, with the startup time');
  t.equal((await admin(probes, '/config_dump')).status, 404, 'the probes server does not expose other admin paths');
  t.equal((await admin(probes, '/quitquitquit', 'POST')).status, 404, 'nor any POST');

  t.equal((await admin(remora.adminPort, '/healthcheck/fail', 'POST')).status, 200, 'POST /healthcheck/fail accepted');
  t.equal((await admin(probes, '/ready')).status, 503, '/ready is 503 after /healthcheck/fail');
  t.equal((await request(remora.ports.main, { agent: false })).status, 200, 'traffic is still served (it only flips readiness)');
  await admin(remora.adminPort, '/healthcheck/ok', 'POST');
  t.equal((await admin(probes, '/ready')).status, 200, '/ready is 200 again after /healthcheck/ok');

  const ok = spawnSync(process.execPath, [BIN, 'wait-ready', '--admin', `127.0.0.1:${remora.adminPort}`, '--timeout', '5'], { encoding: 'utf8' });
  t.equal(ok.status, 0, `wait-ready exits 0 when ready (stderr: ${ok.stderr.trim()})`);
  const closed = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const started = Date.now();
  const fail = spawnSync(process.execPath, [BIN, 'wait-ready', '--admin', `127.0.0.1:${closed}`, '--timeout', '1'], { encoding: 'utf8' });
  t.equal(fail.status, 1, 'wait-ready exits 1 when nothing answers before the timeout');
  t.match(fail.stderr, /not ready after 1 s/, `and says so (${fail.stderr.trim()})`);
  t.ok(Date.now() - started < 5000, 'it gives up after about the timeout');
});

t.test('SIGTERM drains under load: no request is lost', async (t) => {
  const up = await upstream('a', 30);
  const remora = await startRemora(oneRoute(up.port, { drain: { delay_ms: 800, timeout_ms: 5000 } }));
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const load = loadLoop(remora.ports.main, 8);
  await until('some load', async () => count(load.outcomes, 'ok') >= 50);
  const sentAt = Date.now();
  process.kill(remora.pid, 'SIGTERM');
  await sleep(100);
  t.equal((await admin(remora.adminPort, '/ready')).status, 503, '/ready is 503 right after SIGTERM');
  const exit = await new Promise<{ code: number | null; signal: string | null }>((resolve) => remora.child.once('exit', (code, signal) => resolve({ code, signal })));
  const tookMs = Date.now() - sentAt;
  await sleep(100);
  await load.stop();
  const outcomes = load.outcomes;
  t.same(exit, { code: 0, signal: null }, 'the process exits 0');
  t.ok(tookMs >= 800, `it kept serving for the drain delay first (exit after ${tookMs} ms)`);
  t.equal(count(outcomes, 'lost'), 0, `no request was lost (${count(outcomes, 'ok')} completed, ${count(outcomes, 'refused')} never accepted; lost: ${lostReasons(outcomes)})`);
  t.ok(count(outcomes, 'ok') >= 100, `requests kept completing during the drain (${count(outcomes, 'ok')})`);
  t.match(remora.output(), /"msg":"draining"/, 'the drain is logged');
});

t.test('POST /quitquitquit drains and exits 0 (how a Job ends its sidecar)', async (t) => {
  const up = await upstream('a');
  const remora = await startRemora(oneRoute(up.port, { drain: { delay_ms: 10_000, timeout_ms: 5000 } }));
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const started = Date.now();
  const reply = await admin(remora.adminPort, '/quitquitquit', 'POST');
  t.equal(reply.status, 200, 'POST /quitquitquit is accepted');
  const exit = await new Promise<number | null>((resolve) => remora.child.once('exit', (code) => resolve(code)));
  t.equal(exit, 0, 'exit code 0');
  t.ok(Date.now() - started < 5000, `it does not wait for the drain delay (${Date.now() - started} ms)`);
});

t.test('POST /quitquitquit while the workers start: a clean exit 0', async (t) => {
  // It used to end the process with exit 1 (ReferenceError: the watchdog timer did not
  // exist yet). The workers are slowed by a preload that runs in every worker thread
  // before Remora's code, so the admin server answers while they are still starting.
  const up = await upstream('a');
  const dir = mkdtempSync(join(tmpdir(), 'remora-quit-starting-'));
  const preload = join(dir, 'slow-workers.cjs');
  writeFileSync(preload, "if (!require('node:worker_threads').isMainThread) { const end = Date.now() + 1500; while (Date.now() < end); }\n");
  const adminPort = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(oneRoute(up.port, { admin: { address: '127.0.0.1', port: adminPort }, drain: { delay_ms: 0, timeout_ms: 5000 } })));
  const child = spawn(process.execPath, ['--require', preload, BIN, 'run', '--config', file], {
    env: { ...process.env, REMORA_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
    await up.close();
  });

  let reply: Reply | null = null;
  const deadline = Date.now() + 10_000;
  while (reply === null && Date.now() < deadline && child.exitCode === null) {
    reply = await admin(adminPort, '/quitquitquit', 'POST').catch(() => null);
    if (reply === null) await sleep(5);
  }
  t.equal(reply?.status, 200, 'POST /quitquitquit is accepted as soon as the admin port answers');
  const exit = await exited;
  t.same(exit, { code: 0, signal: null }, `the process exits 0 (output:\n${out})`);
  t.notMatch(out, /ReferenceError|TypeError/, 'no error on the way out');
  t.notMatch(out, /"msg":"remora ready"/, 'it was never announced ready: the stop came while the workers started');
  t.match(out, /"msg":"draining"[^]*"msg":"stopped"/, 'the drain and the stop are logged');
});

t.test('hot reload under load: 20 reloads by file change and SIGHUP, zero failures; bad configs keep serving', async (t) => {
  const a = await upstream('a');
  const b = await upstream('b');
  const config = (i: number) =>
    oneRoute(i % 2 === 0 ? a.port : b.port, {}, {}) as ReturnType<typeof oneRoute> & { listeners: { virtual_hosts: { routes: Record<string, unknown>[] }[] }[] };
  const withVersion = (i: number) => {
    const c = config(i);
    c.listeners[0].virtual_hosts[0].routes[0].response_headers_to_add = [{ name: 'x-config', value: `v${i}` }];
    return c;
  };
  const remora = await startRemora(withVersion(0));
  t.teardown(async () => {
    await remora.stop();
    await Promise.all([a.close(), b.close()]);
  });
  const load = loadLoop(remora.ports.main, 4);
  await until('some load', async () => count(load.outcomes, 'ok') >= 20);
  for (let i = 1; i <= 20; i++) {
    writeFileSync(remora.configFile, JSON.stringify(withVersion(i)));
    if (i % 2 === 0) process.kill(remora.pid, 'SIGHUP');
    await until(`version ${i + 1} applied by every worker`, async () => {
      const w = JSON.parse((await admin(remora.adminPort, '/workers')).text) as { workers: { version: number }[] };
      return w.workers.every((x) => x.version === i + 1);
    });
    const r = await request(remora.ports.main, { agent: false });
    if (r.headers['x-config'] !== `v${i}`) t.fail(`after reload ${i} a new request sees v${i} (saw ${String(r.headers['x-config'])})`);
  }
  const last = await request(remora.ports.main, { agent: false });
  t.equal(last.headers['x-config'], 'v20', 'routing follows the last config');
  t.equal(last.headers['x-upstream'], 'a', 'and its cluster (v20 points at upstream a)');

  // A bad file: rejected, counted, shown; the running config keeps serving.
  writeFileSync(remora.configFile, JSON.stringify({ ...withVersion(21), listeners: 'oops' }));
  await until('rejection recorded', async () => {
    const dump = JSON.parse((await admin(remora.adminPort, '/config_dump')).text) as { rejections: number };
    return dump.rejections === 1;
  });
  const dump = JSON.parse((await admin(remora.adminPort, '/config_dump')).text) as { version: number; last_rejection: { errors: { path: string }[] } };
  t.equal(dump.version, 21, 'the version did not change');
  t.ok(dump.last_rejection.errors.some((e) => e.path === 'listeners'), `/config_dump shows the rejection by path (${JSON.stringify(dump.last_rejection.errors)})`);
  t.match((await admin(remora.adminPort, '/metrics')).text, /remora_config_rejections_total 1/, 'the rejection is counted in /metrics');
  await sleep(200);
  await load.stop();
  const outcomes = load.outcomes;
  t.equal(count(outcomes, 'lost') + count(outcomes, 'refused'), 0, `no request failed across 20 reloads and a rejection (${count(outcomes, 'ok')} ok; ${lostReasons(outcomes)})`);
  t.equal((await request(remora.ports.main, { agent: false })).headers['x-config'], 'v20', 'still serving v20 after the rejection');
});

t.test('a hung worker ends the process (watchdog), as Envoy does', async (t) => {
  const up = await upstream('a');
  const remora = await startRemora(oneRoute(up.port, { worker_limits: { heartbeat_timeout_ms: 3000 } }), { REMORA_FAULT_INJECTION: '1' });
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const hang = await admin(remora.adminPort, '/debug/hang_worker?slot=1', 'POST');
  t.equal(hang.status, 200, 'POST /debug/hang_worker accepted');
  const started = Date.now();
  const exit = await new Promise<{ code: number | null; signal: string | null }>((resolve) => remora.child.once('exit', (code, signal) => resolve({ code, signal })));
  t.equal(exit.signal, 'SIGKILL', `the process ended itself with SIGKILL for its supervisor to restart (saw ${JSON.stringify(exit)})`);
  t.ok(Date.now() - started < 8000, `within the heartbeat timeout and a few seconds (${Date.now() - started} ms)`);
  t.match(remora.output(), /worker unresponsive/, 'the reason is logged');
});

t.test('a worker over its memory limit restarts cleanly', async (t) => {
  const up = await upstream('a');
  const remora = await startRemora(oneRoute(up.port, { worker_limits: { memory_limit_mb: 1 } }));
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  await remora.waitFor(/worker over its memory limit/, 5000);
  await remora.waitFor(/replacement worker listening/, 5000);
  t.pass('the worker drained, exited and was replaced');
  t.equal(remora.child.exitCode, null, 'the process keeps running');
});

t.test('limits: 431 for big headers, 413 for big bodies, slow headers are cut', async (t) => {
  const up = await upstream('a');
  const config = oneRoute(up.port, {}, { max_request_body_bytes: 1000 });
  (config.listeners[0] as Record<string, unknown>).max_request_headers_kb = 8;
  const remora = await startRemora(config);
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const port = remora.ports.main;
  const big = await request(port, { agent: false, headers: { 'x-big': 'a'.repeat(9000) } });
  t.equal(big.status, 431, `headers over max_request_headers_kb get 431 (saw ${big.status})`);
  const raw = await rawExchange(port, `GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(9000)}\r\n\r\n`);
  t.ok(raw.closed && raw.text.startsWith('HTTP/1.1 431'), `the 431 closes the connection (closed ${raw.closed}: ${raw.text.split('\r\n')[0]})`);
  t.equal((await request(port, { agent: false, headers: { 'x-big': 'a'.repeat(6000) } })).status, 200, 'headers under the limit pass');

  const fixed = await request(port, { agent: false, method: 'POST', body: 'x'.repeat(2000) });
  t.equal(fixed.status, 413, `a Content-Length body over max_request_body_bytes gets 413 (saw ${fixed.status})`);
  const chunked = await new Promise<Reply>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.from(text), text }));
    });
    req.on('error', reject);
    req.write('y'.repeat(600));
    setTimeout(() => req.end('y'.repeat(600)), 50);
  });
  t.equal(chunked.status, 413, `a chunked body going over the limit gets 413 (saw ${chunked.status})`);
  t.equal((await request(port, { agent: false, method: 'POST', body: 'z'.repeat(900) })).status, 200, 'a body under the limit passes');

  // Slowloris: headers trickling in are cut after uWS's 10 s request timeout.
  const startedAt = Date.now();
  const closedAfter = await new Promise<number>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nhost: x\r\n'));
    const drip = setInterval(() => s.write('x-slow: 1\r\n'), 2000);
    s.on('close', () => {
      clearInterval(drip);
      resolve(Date.now() - startedAt);
    });
    s.on('error', () => {});
    setTimeout(() => s.destroy(), 20_000);
  });
  t.ok(closedAfter < 15_000, `a connection trickling headers is closed (after ${closedAfter} ms)`);
  t.equal((await request(port, { agent: false })).status, 200, 'and the proxy serves normally');
});

t.teardown(() => http.globalAgent.destroy());
