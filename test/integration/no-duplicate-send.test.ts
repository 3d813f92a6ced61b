// A request is never sent twice unasked (issue 22), through a real Remora: an upstream
// that reads a request (body included) and then drops the reused keep-alive connection
// without answering. That looks exactly like the keep-alive race, so only an idempotent
// request without a retry policy is sent once more on a fresh connection; a POST goes to
// the retry policy (`reset` + `retry_non_idempotent_on_reset` to retry it), and a retry
// policy is never topped up with a hidden attempt. Every attempt carries
// x-remora-attempt-count (the virtual host sets include_request_attempt_count) and shows
// in the access log and the cluster stats. Arrivals are counted at the upstream.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { admin, request, routesConfig, startRemora } from '../helpers/remora.js';
import { startRawUpstream, until } from '../helpers/raw-http.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Paths containing "/drop-reused/" are read in full, then their connection is dropped
// without an answer when it is not the connection's first request; "/drop-always/" drops
// every time. Everything else gets 200 with "<path> <body>" (keep-alive).
const upstream = await startRawUpstream((socket, head, body, index) => {
  const path = head.split(' ')[1];
  if (path.includes('/drop-always/') || (path.includes('/drop-reused/') && index > 0)) {
    socket.destroy();
    return;
  }
  const reply = `${path} ${body.toString()}`;
  socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(reply)}\r\n\r\n${reply}`);
});

const dir = mkdtempSync(join(tmpdir(), 'remora-nodup-'));
const logFile = join(dir, 'access.log');
const config = routesConfig(
  [
    { name: 'plain', match: { prefix: '/plain/' }, route: { cluster: 'up' } },
    { name: 'reset', match: { prefix: '/reset/' }, route: { cluster: 'up', retry_policy: { retry_on: ['reset'], num_retries: 1, base_interval_ms: 1 } } },
    {
      name: 'optin',
      match: { prefix: '/optin/' },
      route: { cluster: 'up', retry_policy: { retry_on: ['reset'], num_retries: 1, base_interval_ms: 1, retry_non_idempotent_on_reset: true } },
    },
  ],
  // One connection per endpoint: the warm-up's connection is the one the next request reuses.
  [{ name: 'up', connect_timeout_ms: 500, max_connections_per_endpoint: 1, endpoints: [{ address: '127.0.0.1', port: upstream.port }] }],
) as { listeners: { virtual_hosts: Record<string, unknown>[]; access_log?: unknown }[] };
config.listeners[0].virtual_hosts[0].include_request_attempt_count = true;
config.listeners[0].access_log = { path: logFile };
const remora = await startRemora(config);
const port = remora.ports.main;

t.teardown(async () => {
  await remora.stop();
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Heads that reached the upstream for `path`. */
const arrivals = (path: string): string[] => upstream.heads.filter((h) => h.split(' ')[1] === path);
const attemptHeader = (head: string): string | null => /\r\nx-remora-attempt-count: (\d+)\r\n/i.exec(head)?.[1] ?? null;

/** Puts one answered keep-alive connection into the pool, so the next request reuses it. */
async function warm(): Promise<void> {
  const res = await request(port, { path: '/plain/warm', agent: false });
  if (res.status !== 200) throw new Error(`warm-up: expected 200, got ${res.status} ${res.text}`);
  await sleep(20);
}

async function stat(name: string): Promise<number> {
  const reply = await admin(remora.adminPort, `/stats?filter=${encodeURIComponent(name)}`);
  const m = new RegExp(`^${name.replace(/\./g, '\\.')}: (\\d+)$`, 'm').exec(reply.text);
  return m === null ? -1 : Number(m[1]);
}

interface LogLine {
  path: string;
  method: string;
  status: number;
  flags: string;
  attempts: number;
}

async function logLine(path: string): Promise<LogLine | undefined> {
  let found: LogLine | undefined;
  await until(() => {
    let text = '';
    try {
      text = readFileSync(logFile, 'utf8');
    } catch {
      return false;
    }
    found = text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogLine).find((l) => l.path === path);
    return found !== undefined;
  }, 3000);
  return found;
}

t.test('no retry policy: six POSTs with a body that the upstream read and dropped each arrive once', async (t) => {
  for (let i = 0; i < 6; i++) {
    await warm();
    const path = `/plain/drop-reused/body-${i}`;
    const res = await request(port, { method: 'POST', path, body: `order-${i}`, agent: false });
    t.equal(res.status, 503, `POST ${i}: expected 503, got ${res.status} ${res.text}`);
    t.equal(res.headers['x-remora-flags'], 'UC', `POST ${i}: expected flag UC (upstream connection terminated), got ${res.headers['x-remora-flags']}`);
    t.equal(arrivals(path).length, 1, `POST ${i}: expected exactly 1 arrival at the upstream, saw ${arrivals(path).length}`);
  }
});

t.test('no retry policy: a POST without a body arrives once', async (t) => {
  await warm();
  const path = '/plain/drop-reused/empty';
  const res = await request(port, { method: 'POST', path, agent: false });
  t.equal(res.status, 503, `expected 503, got ${res.status}`);
  t.equal(arrivals(path).length, 1, `expected 1 arrival, saw ${arrivals(path).length}`);
  t.equal(attemptHeader(arrivals(path)[0]), '1', 'the first attempt says it is attempt 1 (include_request_attempt_count)');
  const line = await logLine(path);
  t.match(line, { status: 503, flags: 'UC', attempts: 1 }, `access log: one attempt, flag UC (got ${JSON.stringify(line)})`);
});

t.test('no retry policy: an idempotent GET is sent once more, on a fresh connection, and says so', async (t) => {
  const resendsBefore = await stat('cluster.up.upstream_keepalive_retry');
  await warm();
  const path = '/plain/drop-reused/get';
  const res = await request(port, { path, agent: false });
  t.equal(res.status, 200, `expected 200 from the resend, got ${res.status} ${res.text}`);
  const seen = arrivals(path);
  t.equal(seen.length, 2, `expected 2 arrivals (the dropped one and the resend), saw ${seen.length}`);
  t.same(seen.map(attemptHeader), ['1', '2'], 'x-remora-attempt-count 1 then 2');
  t.equal(await stat('cluster.up.upstream_keepalive_retry'), resendsBefore + 1, 'the resend is counted (upstream_keepalive_retry)');
  const line = await logLine(path);
  t.match(line, { status: 200, attempts: 2 }, `access log shows 2 attempts (got ${JSON.stringify(line)})`);
});

t.test('retry_on reset without the opt-in: a POST is not retried (it may have been processed)', async (t) => {
  for (const body of ['payload', '']) {
    await warm();
    const path = `/reset/drop-reused/post-${body === '' ? 'empty' : 'body'}`;
    const res = await request(port, { method: 'POST', path, body, agent: false });
    t.equal(res.status, 503, `expected 503 (${body === '' ? 'no body' : 'body'}), got ${res.status}`);
    t.equal(arrivals(path).length, 1, `expected 1 arrival (${body === '' ? 'no body' : 'body'}), saw ${arrivals(path).length}`);
  }
});

t.test('retry_on reset + retry_non_idempotent_on_reset: the POST is retried once, with its body', async (t) => {
  for (const body of ['payload', '']) {
    const retriesBefore = await stat('cluster.up.upstream_rq_retry');
    await warm();
    const path = `/optin/drop-reused/post-${body === '' ? 'empty' : 'body'}`;
    const res = await request(port, { method: 'POST', path, body, agent: false });
    t.equal(res.status, 200, `expected 200 from the retry, got ${res.status} ${res.text}`);
    t.equal(res.text, `${path} ${body}`, 'the retry carried the body');
    const seen = arrivals(path);
    t.equal(seen.length, 2, `expected 2 arrivals, saw ${seen.length}`);
    t.same(seen.map(attemptHeader), ['1', '2'], 'x-remora-attempt-count 1 then 2');
    t.equal(await stat('cluster.up.upstream_rq_retry'), retriesBefore + 1, 'the retry is counted (upstream_rq_retry)');
  }
});

t.test('num_retries: 1 means at most 2 arrivals: no hidden attempt on top of the policy', async (t) => {
  for (const [method, prefix] of [['GET', '/reset'], ['POST', '/optin']] as const) {
    await warm();
    const path = `${prefix}/drop-always/${method}`;
    const res = await request(port, { method, path, body: method === 'POST' ? 'x' : undefined, agent: false });
    t.equal(res.status, 503, `${method}: expected 503 after the retry failed too, got ${res.status}`);
    t.equal(res.headers['x-remora-flags'], 'UC,URX', `${method}: expected flags UC,URX (retries exhausted), got ${res.headers['x-remora-flags']}`);
    t.equal(arrivals(path).length, 2, `${method}: expected exactly 2 arrivals (1 + num_retries), saw ${arrivals(path).length}`);
    const line = await logLine(path);
    t.match(line, { attempts: 2, flags: 'UC,URX' }, `${method}: access log shows both attempts (got ${JSON.stringify(line)})`);
  }
});
