// Access logs and traceparent generation through the real proxy: JSON lines in a file
// (generated and client-supplied request ids, the fields and their values), sampling
// that still logs every error, a log on stdout, lines flushed when Remora stops, and
// W3C traceparent generation (added when missing, passed unchanged when present, never
// added when the listener does not ask for it).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { request, startRemora, startUpstream } from '../helpers/remora.js';
import { deadPort } from '../helpers/dead-port.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Line {
  time: string;
  request_id: string;
  method: string;
  path: string;
  authority: string | null;
  status: number;
  flags: string;
  route: string;
  upstream: string;
  attempts: number;
  attempt_us: number[] | null;
  bytes_in: number;
  bytes_out: number;
  duration_us: number;
  upstream_us: number | null;
  user_agent: string | null;
  trace_id: string | null;
  listener: string;
  worker: number;
}

/** What the echo upstream saw. */
interface Echo {
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

const dir = mkdtempSync(join(tmpdir(), 'remora-access-log-'));
// A directory that does not exist yet: the destination creates it (mkdir: true).
const sharedLog = join(dir, 'nested', 'dir', 'access.log');
const halfLog = join(dir, 'half.log');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** Parsed lines of a JSON-lines text; fails on a line that is not JSON. */
function parseLines(text: string): Line[] {
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      try {
        return JSON.parse(l) as Line;
      } catch {
        throw new Error(`access log line is not JSON: ${JSON.stringify(l)}`);
      }
    });
}

function readLines(file: string): Line[] {
  try {
    return parseLines(readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Polls `file` (lines are written asynchronously) until `pick` finds what it wants. */
async function waitForLines<T>(file: string, pick: (lines: Line[]) => T | undefined, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const lines = readLines(file);
    const found = pick(lines);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for access log lines in ${file}; it has:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`);
    await sleep(50);
  }
}

const byRequestId = (id: string) => (lines: Line[]) => lines.find((l) => l.request_id === id);


// Answers every request with what it received, as JSON.
const echo = await startUpstream((req, res) => {
  req.resume();
  req.on('end', () => {
    const body = JSON.stringify({ url: req.url ?? '', headers: req.headers } satisfies Echo);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
const downPort = await deadPort();

function listener(name: string, extra: Record<string, unknown>, routes?: unknown[]) {
  return {
    name,
    address: '127.0.0.1',
    port: 0,
    ...extra,
    virtual_hosts: [
      { name: 'all', domains: ['*'], routes: routes ?? [{ name: `${name}-echo`, match: { prefix: '/' }, route: { cluster: 'echo' } }] },
    ],
  };
}

const remora = await startRemora({
  workers: 2,
  admin: { address: '127.0.0.1', port: 0 },
  listeners: [
    // Every request logged, traces started.
    listener('full', { access_log: { path: sharedLog }, generate_traceparent: true }, [
      { name: 'local', match: { prefix: '/local' }, direct_response: { status: 200, body: 'local' } },
      { name: 'echo', match: { prefix: '/' }, route: { cluster: 'echo' } },
    ]),
    // Same file, only errors logged.
    listener('sampled', { access_log: { path: sharedLog, sample_ratio: 0 } }, [
      { name: 'ok', match: { prefix: '/ok' }, route: { cluster: 'echo' } },
      { name: 'dead', match: { prefix: '/dead' }, route: { cluster: 'dead' } },
    ]),
    listener('half', { access_log: { path: halfLog, sample_ratio: 0.5 } }),
    listener('out', { access_log: { path: 'stdout' } }),
    listener('plain', {}),
    // A path that cannot be opened (a directory): the listener serves, its lines are dropped.
    listener('broken', { access_log: { path: dir } }),
  ],
  clusters: [
    { name: 'echo', connect_timeout_ms: 500, endpoints: [{ address: '127.0.0.1', port: echo.port }] },
    { name: 'dead', connect_timeout_ms: 500, endpoints: [{ address: '127.0.0.1', port: downPort }] },
  ],
});
t.teardown(async () => {
  await remora.stop();
  await echo.close();
});

const noAgent = new http.Agent({ keepAlive: false });
t.teardown(() => noAgent.destroy());

async function echoed(port: number, path: string, headers: Record<string, string> = {}): Promise<Echo> {
  const reply = await request(port, { path, headers });
  if (reply.status !== 200) throw new Error(`expected 200 from the echo upstream, got ${reply.status}: ${reply.text}`);
  return JSON.parse(reply.text) as Echo;
}

t.test('a proxied request: one JSON line with every field', async (t) => {
  const port = remora.ports.full;
  const body = 'hello access log';
  const reply = await request(port, {
    method: 'POST',
    path: '/echo/a?x=1&y=%20',
    headers: { 'user-agent': 'remora-test/1.0', 'content-type': 'text/plain', 'x-request-id': 'client-id-1' },
    body,
  });
  t.equal(reply.status, 200, 'expected 200 from the echo upstream');
  const line = await waitForLines(sharedLog, byRequestId('client-id-1'));
  t.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'time is ISO 8601');
  t.ok(Math.abs(Date.parse(line.time) - Date.now()) < 60_000, `time ${line.time} is about now`);
  t.equal(line.method, 'POST');
  t.equal(line.path, '/echo/a?x=1&y=%20', 'path with its query');
  t.equal(line.authority, `127.0.0.1:${port}`, 'authority is the Host header');
  t.equal(line.status, 200);
  t.equal(line.flags, '-');
  t.equal(line.route, 'echo');
  t.equal(line.upstream, `127.0.0.1:${echo.port}`);
  t.equal(line.attempts, 1, 'one upstream attempt');
  t.ok(line.attempt_us !== null && line.attempt_us.length === 1 && line.attempt_us[0] > 0 && line.attempt_us[0] <= line.duration_us,
    `attempt_us ${JSON.stringify(line.attempt_us)}: one attempt, within duration_us`);
  t.equal(line.bytes_in, Buffer.byteLength(body), 'bytes_in is the request body length');
  t.equal(line.bytes_out, reply.body.length, 'bytes_out is the response body length');
  t.ok(line.duration_us > 0 && line.duration_us < 10_000_000, `duration_us ${line.duration_us} plausible`);
  t.ok(line.upstream_us !== null && line.upstream_us > 0 && line.upstream_us <= line.duration_us, `upstream_us ${line.upstream_us} within duration_us ${line.duration_us}`);
  t.equal(line.user_agent, 'remora-test/1.0');
  t.match(line.trace_id, /^[0-9a-f]{32}$/, 'a generated trace id');
  t.equal(line.listener, 'full');
  t.ok(line.worker === 0 || line.worker === 1, `worker ${line.worker} is a worker slot`);
  t.same(
    Object.keys(line),
    ['time', 'request_id', 'method', 'path', 'authority', 'status', 'flags', 'route', 'upstream', 'attempts', 'attempt_us', 'bytes_in', 'bytes_out',
      'duration_us', 'upstream_us', 'user_agent', 'trace_id', 'peer', 'grpc_status', 'listener', 'worker'],
    'exactly these fields, in this order',
  );
});

t.test('generated request ids are logged as the client and upstream saw them', async (t) => {
  const port = remora.ports.full;
  // The upstream reports the id Remora generated for it.
  const seen = await echoed(port, '/rid');
  const upstreamId = String(seen.headers['x-request-id']);
  t.match(upstreamId, UUID, 'expected a generated UUID upstream');
  const line = await waitForLines(sharedLog, byRequestId(upstreamId));
  t.equal(line.path, '/rid');
  t.equal(line.user_agent, null, 'no user-agent header: null');

  // A local reply carries its id back to the client.
  const local = await request(port, { path: '/local', headers: { 'user-agent': 'x' } });
  t.equal(local.status, 200, 'expected the direct response');
  const direct = await waitForLines(sharedLog, (lines) => lines.find((l) => l.path === '/local'));
  t.match(direct.request_id, UUID, 'a direct response has a generated request id too');
  t.equal(direct.flags, 'DR');
  t.equal(direct.route, 'local');
  t.equal(direct.upstream, '-', 'no upstream for a direct response');
  t.equal(direct.attempts, 0, 'no upstream attempt for a direct response');
  t.equal(direct.attempt_us, null, 'attempt_us null without an upstream attempt');
  t.equal(direct.upstream_us, null, 'upstream_us null without an upstream request');
  t.equal(direct.trace_id, null, 'no trace started for a request that is not forwarded');
});

t.test('sample_ratio 0: no 2xx lines, but 503 UF and 404 NR are always logged', async (t) => {
  const port = remora.ports.sampled;
  for (let i = 0; i < 5; i++) {
    const ok = await request(port, { path: '/ok', headers: { 'x-request-id': `sampled-ok-${i}` } });
    t.equal(ok.status, 200, 'expected 200 through the sampled listener');
  }
  const uf = await request(port, { path: '/dead/x', headers: { 'x-request-id': 'sampled-uf' }, agent: noAgent });
  t.equal(uf.status, 503, 'expected 503 from the dead cluster');
  t.equal(uf.headers['x-remora-flags'], 'UF');
  const nr = await request(port, { path: '/nowhere' });
  t.equal(nr.status, 404, 'expected 404 for no route');
  const nrId = String(nr.headers['x-request-id']);
  t.match(nrId, UUID, 'the 404 carries the generated request id');

  const ufLine = await waitForLines(sharedLog, byRequestId('sampled-uf'));
  t.match(ufLine, { status: 503, flags: 'UF', route: 'dead', upstream: `127.0.0.1:${downPort}`, listener: 'sampled', trace_id: null });
  const nrLine = await waitForLines(sharedLog, byRequestId(nrId));
  t.match(nrLine, { status: 404, flags: 'NR', route: '-', upstream: '-', upstream_us: null, path: '/nowhere', listener: 'sampled' });
  // The 2xx requests finished before the errors; give another worker's writes time anyway.
  await sleep(200);
  const okLines = readLines(sharedLog).filter((l) => l.request_id.startsWith('sampled-ok-'));
  t.same(okLines, [], 'expected no line for a 2xx request with sample_ratio 0');
  t.notOk(readLines(sharedLog).some((l) => l.listener === 'sampled' && l.status < 400), 'no successful request of the sampled listener logged');
});

t.test('sample_ratio 0.5 logs about half of the successful requests', async (t) => {
  const n = 200;
  for (let i = 0; i < n; i++) await request(remora.ports.half, { path: `/half/${i}` });
  await sleep(300); // lines are written asynchronously
  const logged = readLines(halfLog).filter((l) => /^\/half\/\d+$/.test(l.path)).length;
  // Binomial(200, 0.5): 50..150 is more than 7 standard deviations either way.
  t.ok(logged >= 50 && logged <= 150, `expected about ${n / 2} of ${n} requests logged, got ${logged}`);
});

t.test('an access log that cannot be opened: requests are served, the error is logged', async (t) => {
  const reply = await request(remora.ports.broken, { path: '/broken' });
  t.equal(reply.status, 200, 'expected the listener to keep serving');
  await remora.waitFor(/"msg":"access log cannot be opened; its lines are dropped"/);
});

t.test('access_log path "stdout": lines appear in the process output', async (t) => {
  const reply = await request(remora.ports.out, { path: '/to-stdout?q=1', headers: { 'x-request-id': 'stdout-line-1' } });
  t.equal(reply.status, 200);
  const raw = await remora.waitFor(/\{[^\n]*"request_id":"stdout-line-1"[^\n]*\}/);
  const line = JSON.parse(raw) as Line;
  t.match(line, { listener: 'out', path: '/to-stdout?q=1', status: 200, flags: '-', route: 'out-echo', trace_id: null });
  t.notOk(readLines(sharedLog).some((l) => l.request_id === 'stdout-line-1'), 'the stdout listener does not write to the file');
});

t.test('generate_traceparent: a request without one gets a new trace', async (t) => {
  const seen = await echoed(remora.ports.full, '/trace/new', { 'x-request-id': 'trace-new' });
  const tp = String(seen.headers.traceparent);
  const m = TRACEPARENT.exec(tp);
  t.ok(m, `expected a valid traceparent upstream, got ${tp}`);
  if (m === null) return;
  t.not(m[1], '0'.repeat(32), 'trace id is not all zeros');
  t.not(m[2], '0'.repeat(16), 'span id is not all zeros');
  t.equal(seen.headers.tracestate, undefined, 'no tracestate is made up');
  const line = await waitForLines(sharedLog, byRequestId('trace-new'));
  t.equal(line.trace_id, m[1], 'the access log has the generated trace id');

  const again = await echoed(remora.ports.full, '/trace/new2');
  t.not(TRACEPARENT.exec(String(again.headers.traceparent))?.[1], m[1], 'another request starts another trace');
});

t.test('generate_traceparent: an incoming traceparent and tracestate pass unchanged', async (t) => {
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const tracestate = 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE';
  const seen = await echoed(remora.ports.full, '/trace/kept', { traceparent, tracestate, 'x-request-id': 'trace-kept' });
  t.equal(seen.headers.traceparent, traceparent, 'traceparent forwarded unchanged, once');
  t.equal(seen.headers.tracestate, tracestate, 'tracestate forwarded unchanged');
  const line = await waitForLines(sharedLog, byRequestId('trace-kept'));
  t.equal(line.trace_id, '4bf92f3577b34da6a3ce929d0e0e4736', 'the incoming trace id is logged');

  // B3 headers are not a W3C trace: a traceparent is still started, and the log shows
  // the trace id that was sent upstream.
  const b3 = await echoed(remora.ports.full, '/trace/b3', { 'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7', 'x-request-id': 'trace-b3' });
  const generated = TRACEPARENT.exec(String(b3.headers.traceparent));
  t.ok(generated, 'a B3-only request still gets a traceparent');
  t.equal(b3.headers['x-b3-traceid'], '80f198ee56343ba864fe8b2a57d3eff7', 'B3 headers pass unchanged');
  const b3Line = await waitForLines(sharedLog, byRequestId('trace-b3'));
  t.equal(b3Line.trace_id, generated?.[1], 'the log has the trace id that was sent upstream');
});

t.test('without generate_traceparent nothing is added; B3 trace id is logged', async (t) => {
  const plain = await echoed(remora.ports.plain, '/trace/none');
  t.equal(plain.headers.traceparent, undefined, 'expected no traceparent from a listener without generate_traceparent');
  t.equal(plain.headers.tracestate, undefined, 'expected no tracestate');

  // The stdout listener logs but does not generate: B3 is what its log can show.
  await echoed(remora.ports.out, '/trace/b3-only', { 'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7', 'x-request-id': 'b3-only' });
  const raw = await remora.waitFor(/\{[^\n]*"request_id":"b3-only"[^\n]*\}/);
  t.equal((JSON.parse(raw) as Line).trace_id, '80f198ee56343ba864fe8b2a57d3eff7', 'B3 trace id logged when there is no traceparent');
});

t.test('every line in the file is whole JSON (two workers, two listeners, one file)', async (t) => {
  await Promise.all(Array.from({ length: 40 }, (_, i) => request(remora.ports.full, { path: `/burst/${i}`, agent: noAgent })));
  const lines = await waitForLines(sharedLog, (all) => {
    const burst = all.filter((l) => l.path.startsWith('/burst/'));
    return burst.length >= 40 ? all : undefined;
  });
  t.ok(lines.length >= 40, `${lines.length} lines, all parsed as JSON`);
});

t.test('lines still buffered are written when Remora stops', async (t) => {
  const file = join(dir, 'stop.log');
  const r = await startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [listener('main', { access_log: { path: file } })],
    clusters: [{ name: 'echo', endpoints: [{ address: '127.0.0.1', port: echo.port }] }],
  });
  t.teardown(() => r.stop());
  const n = 30;
  await Promise.all(Array.from({ length: n }, (_, i) => request(r.ports.main, { path: `/stop/${i}`, agent: noAgent })));
  const exit = await r.stop();
  t.equal(exit.code, 0, 'expected a clean exit');
  const lines = readLines(file).filter((l) => l.path.startsWith('/stop/'));
  t.equal(lines.length, n, `expected all ${n} lines in the file after the stop`);
});
