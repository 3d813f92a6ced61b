// Upstream and downstream failures through the real proxy: connect refused, route
// timeout, resets before and during the body, malformed responses, a client that goes
// away, the keep-alive race, and the proxy's own replies (direct response, no route).
import http from 'node:http';
import t from 'tap';
import { admin, request, routesConfig, startRemora, startUpstream } from '../helpers/remora.js';
import { RawConn, startRawUpstream, until } from '../helpers/raw-http.js';
import { deadPort } from '../helpers/dead-port.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


// Holds every request unanswered and records when its socket closes.
const held: { path: string; closed: boolean }[] = [];
const hold = await startUpstream((req) => {
  const entry = { path: req.url ?? '', closed: false };
  held.push(entry);
  req.socket.once('close', () => (entry.closed = true));
  req.resume();
});

// Misbehaving upstream, by path.
const faulty = await startRawUpstream((socket, head) => {
  const path = head.split(' ')[1];
  switch (path) {
    case '/midbody/length':
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789');
      setTimeout(() => socket.destroy(), 50);
      break;
    case '/midbody/chunked':
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n');
      setTimeout(() => socket.destroy(), 50);
      break;
    case '/closedelim':
      // No length, no chunking: the body legitimately ends when the connection closes.
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close');
      setTimeout(() => socket.end(), 50);
      break;
    case '/dribble': {
      // Headers at once, then the body slowly: 5 × 2 bytes, 150 ms apart (750 ms in all).
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n');
      let sent = 0;
      const timer = setInterval(() => {
        if (socket.destroyed) return clearInterval(timer);
        socket.write(String(sent).repeat(2));
        if (++sent === 5) clearInterval(timer);
      }, 150);
      break;
    }
    case '/inject/lf':
    case '/inject/cr':
    case '/inject/nul':
    case '/inject/reason': {
      // Header injection attempts: a bare LF / CR / NUL inside a field value or the reason.
      const evil = { lf: '\n', cr: '\r', nul: '\x00', reason: '\n' }[path.slice(8) as 'lf' | 'cr' | 'nul' | 'reason'];
      const head =
        path === '/inject/reason'
          ? `HTTP/1.1 200 OK${evil}Set-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok`
          : `HTTP/1.1 200 OK\r\nX-A: a${evil}Set-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok`;
      socket.write(head, 'latin1');
      break;
    }
    case '/early/fin':
      socket.destroy();
      break;
    case '/early/rst':
      socket.resetAndDestroy();
      break;
    case '/garbage':
      socket.write('SSH-2.0-OpenSSH_9.6\r\nnonsense\r\n\r\n');
      break;
    default:
      socket.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
  }
});

// The keep-alive race, made deterministic: every connection answers its first request
// (keep-alive, no Connection: close) and closes without answering any later one, as an
// upstream does when its idle timeout fires just as a reused connection's request lands.
const raceBodies: string[] = [];
const race = await startRawUpstream((socket, head, body, index) => {
  if (index > 0) {
    socket.destroy();
    return;
  }
  raceBodies.push(body.toString());
  const reply = `${head.split(' ')[1]} ${body.toString()}`;
  socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(reply)}\r\n\r\n${reply}`);
});

// An upstream that closes every connection right after its first response is flushed,
// again without Connection: close.
const fin = await startRawUpstream((socket, head) => {
  const reply = head.split(' ')[1];
  socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(reply)}\r\n\r\n${reply}`, () => socket.end());
});

const refusedPort = await deadPort();
const cluster = (name: string, port: number) => ({
  name,
  connect_timeout_ms: 500,
  endpoints: [{ address: '127.0.0.1', port }],
});

const remora = await startRemora(
  routesConfig(
    [
      { name: 'refused', match: { prefix: '/refused' }, route: { cluster: 'refused' } },
      { name: 'slow', match: { prefix: '/slow' }, route: { cluster: 'hold', timeout_ms: 300 } },
      { name: 'hold', match: { prefix: '/hold' }, route: { cluster: 'hold' } },
      { name: 'race', match: { prefix: '/race' }, route: { cluster: 'race' } },
      { name: 'fin', match: { prefix: '/fin' }, route: { cluster: 'fin' } },
      { name: 'health', match: { path: '/healthz' }, direct_response: { status: 200, body: 'ok\n' } },
      { name: 'teapot', match: { path: '/teapot' }, direct_response: { status: 418 } },
      { name: 'dribble', match: { path: '/dribble' }, route: { cluster: 'faulty', timeout_ms: 300 } },
      {
        name: 'faulty',
        match: { regex: '/(midbody/.*|closedelim|early/.*|garbage|inject/.*)' },
        route: { cluster: 'faulty' },
      },
      // Nothing else matches: other paths get 404 NR.
    ],
    [
      cluster('refused', refusedPort),
      cluster('hold', hold.port),
      cluster('faulty', faulty.port),
      cluster('race', race.port),
      cluster('fin', fin.port),
    ],
  ),
);
const port = remora.ports.main;

t.teardown(async () => {
  await remora.stop();
  await Promise.all([hold.close(), faulty.close(), race.close(), fin.close()]);
});

/** GET through node:http on a fresh connection; reports how the response ended. */
function outcome(path: string): Promise<{ status: number; body: string; complete: boolean; error: string | null }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      let error: string | null = null;
      res.setEncoding('latin1');
      res.on('data', (d: string) => (body += d));
      res.on('error', (err) => (error = err.message));
      res.on('aborted', () => (error ??= 'aborted'));
      res.on('close', () => resolve({ status: res.statusCode!, body, complete: res.complete, error }));
    });
    req.on('error', reject);
  });
}

t.test('connect refused → 503 UF', async (t) => {
  const res = await request(port, { path: '/refused' });
  t.equal(res.status, 503, 'expected 503 when the upstream refuses the connection');
  t.equal(res.headers['x-remora-flags'], 'UF', 'expected flag UF (upstream connect failure)');
});

t.test('route timeout → 504 UT and the upstream request is cancelled', async (t) => {
  held.length = 0;
  const started = Date.now();
  const res = await request(port, { path: '/slow/one' });
  t.equal(res.status, 504, 'expected 504 after the 300 ms route timeout');
  t.equal(res.headers['x-remora-flags'], 'UT', 'expected flag UT (upstream request timeout)');
  t.ok(Date.now() - started >= 250, 'expected the 504 not before the timeout');
  t.equal(held.length, 1, 'expected the request to have reached the upstream once');
  t.ok(await until(() => held[0]?.closed === true, 2000), 'expected the upstream connection closed after the timeout');
});

t.test('the route timeout ends with the response headers: a slow body is not cut off', async (t) => {
  const res = await outcome('/dribble');
  t.equal(res.status, 200, 'expected 200 (headers came before the 300 ms timeout)');
  t.equal(res.complete, true, 'expected the body, streamed for 750 ms, to complete despite the 300 ms route timeout');
  t.equal(res.body, '0011223344', 'expected the whole slow body');
});

t.test('upstream reset mid-body → client never sees a complete response', async (t) => {
  const before = await workerStats();
  for (const framing of ['length', 'chunked']) {
    const res = await outcome(`/midbody/${framing}`);
    t.equal(res.status, 200, `expected the upstream status to have been passed on (${framing})`);
    t.equal(res.complete, false, `expected an incomplete response when the upstream dies mid-body (${framing})`);
    t.ok(res.error !== null, `expected node:http to report the cut-off response as an error (${framing})`);
    t.ok(res.body.length < 1000, `expected fewer body bytes than announced (${framing}), got ${res.body.length}`);
  }
  const after = await workerStats();
  t.equal(flagDelta(before, after, 'UC'), 2, 'expected both cut-off responses recorded with flag UC');
  t.equal(flagDelta(before, after, 'DC'), 0, 'expected no cut-off response recorded as a client abort (DC)');
});

t.test('close-delimited upstream body completes at close', async (t) => {
  const res = await outcome('/closedelim');
  t.equal(res.status, 200, 'expected 200');
  t.equal(res.complete, true, 'expected a complete response (the close ends this body legitimately)');
  t.equal(res.body, 'until-close', 'expected the whole close-delimited body');
});

t.test('upstream closes before response headers → 503 UC', async (t) => {
  for (const how of ['fin', 'rst']) {
    const res = await request(port, { path: `/early/${how}` });
    t.equal(res.status, 503, `expected 503 when the upstream closes before answering (${how})`);
    t.equal(res.headers['x-remora-flags'], 'UC', `expected flag UC (upstream connection termination) (${how})`);
  }
});

t.test('malformed upstream response → 502 UPE', async (t) => {
  const res = await request(port, { path: '/garbage' });
  t.equal(res.status, 502, 'expected 502 for a garbage status line');
  t.equal(res.headers['x-remora-flags'], 'UPE', 'expected flag UPE (upstream protocol error)');
});

t.test('bare CR / LF / NUL in an upstream head → 502 UPE, nothing injected', async (t) => {
  for (const kind of ['lf', 'cr', 'nul', 'reason']) {
    const conn = await RawConn.open(port);
    t.teardown(() => conn.destroy());
    conn.write(`GET /inject/${kind} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const res = await conn.readResponse();
    t.equal(res.status, 502, `expected 502 for a control character in the upstream head (${kind})`);
    t.equal(res.headers['x-remora-flags'], 'UPE', `expected flag UPE (${kind})`);
    t.notMatch(res.head, /evil/, `expected no trace of the injected header in the response head (${kind})`);
  }
});

t.test('client abort cancels the upstream request', async (t) => {
  held.length = 0;
  const before = await workerStats();
  const req = http.get({ host: '127.0.0.1', port, path: '/hold/abort', agent: false });
  req.on('error', () => undefined);
  t.ok(await until(() => held.length === 1, 3000), 'expected the request to reach the upstream');
  req.destroy();
  t.ok(await until(() => held[0].closed, 2000), 'expected the upstream request socket closed within 2 s of the client abort');
  const after = await workerStats();
  t.equal(flagDelta(before, after, 'DC'), 1, 'expected the abort recorded with flag DC');
  t.equal(after.downstreamResets - before.downstreamResets, 1, 'expected the abort counted in downstreamResets');
});

t.test('keep-alive race: an idempotent request on a connection the upstream just closed is retried once', async (t) => {
  const before = await raceRetries();
  const first = await request(port, { path: '/race/1', agent: false });
  t.equal(first.status, 200, 'expected the first request to succeed');
  await sleep(100);
  const second = await request(port, { path: '/race/2', agent: false });
  t.equal(second.status, 200, `expected the second request to succeed on a fresh connection, got ${second.status} ${second.text}`);
  t.equal(second.text, '/race/2 ', 'expected the answer to the second request');
  t.equal(race.sockets.length, 2, 'expected a second upstream connection for the retry');

  // A PUT (idempotent) with a body is replayed with its body.
  await sleep(100);
  const put = await request(port, { method: 'PUT', path: '/race/3', body: 'payload', agent: false });
  t.equal(put.status, 200, `expected the PUT to succeed after a retry, got ${put.status} ${put.text}`);
  t.equal(put.text, '/race/3 payload', 'expected the replayed PUT to carry its body');
  t.equal(await raceRetries(), before + 2, 'expected the worker to count two keep-alive race retries');

  // A POST is not: the upstream may have read and acted on it (issue 22). Without a retry
  // policy it fails with 503 UC, sent once (test/integration/no-duplicate-send.test.ts).
  await sleep(100);
  const sockets = race.sockets.length;
  const post = await request(port, { method: 'POST', path: '/race/4', body: 'payload', agent: false });
  t.equal(post.status, 503, `expected the POST on a dropped connection to fail, got ${post.status} ${post.text}`);
  t.equal(post.headers['x-remora-flags'], 'UC', 'expected flag UC');
  t.equal(race.sockets.length, sockets, 'expected no new upstream connection for the POST (it was not sent again)');
  t.equal(await raceRetries(), before + 2, 'expected no keep-alive race retry for the POST');
});

t.test('upstream closes idle connections right after each response', async (t) => {
  for (let i = 0; i < 3; i++) {
    const res = await request(port, { path: `/fin/${i}`, agent: false });
    t.equal(res.status, 200, `expected request ${i} to succeed although the upstream closed the previous connection`);
    t.equal(res.text, `/fin/${i}`, `expected the answer to request ${i}`);
    await sleep(100);
  }
});

t.test('direct response and no route', async (t) => {
  const health = await request(port, { path: '/healthz' });
  t.equal(health.status, 200, 'expected the direct response status');
  t.equal(health.text, 'ok\n', 'expected the direct response body');
  const teapot = await request(port, { path: '/teapot' });
  t.equal(teapot.status, 418, 'expected a direct response status without a body');
  t.equal(teapot.text, '', 'expected an empty direct response body by default');

  const none = await request(port, { path: '/nowhere' });
  t.equal(none.status, 404, 'expected 404 when no route matches');
  t.equal(none.headers['x-remora-flags'], 'NR', 'expected flag NR (no route)');

  // HEAD on local replies: no body, and the connection stays usable.
  const conn = await RawConn.open(port);
  t.teardown(() => conn.destroy());
  for (const path of ['/healthz', '/nowhere']) {
    conn.write(`HEAD ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const head = await conn.readResponse({ noBody: true });
    t.equal(head.status, path === '/healthz' ? 200 : 404, `expected the local reply status for HEAD ${path}`);
    await sleep(200);
    t.equal(conn.buffered.length, 0, `expected no body after HEAD ${path}, got ${JSON.stringify(conn.buffered.toString('latin1'))}`);
  }
  conn.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  const after = await conn.readResponse();
  t.equal(after.body.toString(), 'ok\n', 'expected a GET after the HEADs on the same connection to be answered');
});

interface Stats {
  keepAliveRaceRetries: number;
  downstreamResets: number;
  flags: Record<string, number>;
}

/** The (single) worker's counters, from the admin API. */
async function workerStats(): Promise<Stats> {
  const res = await admin(remora.adminPort, '/workers');
  const body = JSON.parse(res.text) as { workers: { stats: Stats | null }[] };
  const stats = body.workers[0]?.stats;
  if (!stats) throw new Error(`expected worker stats from /workers, got ${res.text}`);
  return stats;
}

function flagDelta(before: Stats, after: Stats, flag: string): number {
  return (after.flags[flag] ?? 0) - (before.flags[flag] ?? 0);
}

async function raceRetries(): Promise<number> {
  return (await workerStats()).keepAliveRaceRetries;
}
