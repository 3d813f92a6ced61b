// Access-log formats through the real proxy: a listener logging Envoy's default text
// format, one logging a json_format (types kept, a retried request's attempt durations, a
// local reply's nulls), and a TCP proxy listener whose connection lines use its format.
// Requests go through Remora to a real upstream; the lines are read from the log files.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { rawExchange, request, startRemora } from '../helpers/remora.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';

const ENVOY_DEFAULT = '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% '
  + '%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
  + '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

const JSON_FORMAT = {
  start: '%START_TIME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  code: '%RESPONSE_CODE%',
  flags: '%RESPONSE_FLAGS%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  attempts: '%UPSTREAM_REQUEST_ATTEMPT_COUNT%',
  attempt_ms: '%UPSTREAM_ATTEMPT_DURATIONS%',
  cluster: '%UPSTREAM_CLUSTER%',
  route: '%ROUTE_NAME%',
  request_id: '%REQ(X-REQUEST-ID)%',
  tenant: '%REQ(X-TENANT):4%',
  service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
  summary: '%REQ(:METHOD)% %RESPONSE_CODE% via %UPSTREAM_HOST%',
  client: '%DOWNSTREAM_REMOTE_ADDRESS%',
};
const TCP_FORMAT = '%DOWNSTREAM_REMOTE_ADDRESS% %UPSTREAM_CLUSTER% %UPSTREAM_HOST% %BYTES_RECEIVED% %BYTES_SENT% %CONNECTION_TERMINATION_DETAILS% %RESPONSE_CODE% %REQ(:METHOD)%';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dir = mkdtempSync(join(tmpdir(), 'remora-access-log-format-'));
const textLog = join(dir, 'text.log');
const jsonLog = join(dir, 'json.log');
const tcpLog = join(dir, 'tcp.log');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function readLines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Polls `file` (lines are written asynchronously, within about a second) for a line. */
async function waitForLine(file: string, pick: (line: string) => boolean, ms = 5000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = readLines(file).find(pick);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for a line in ${file}; it has:\n${readLines(file).join('\n')}`);
    await sleep(50);
  }
}

// 200 "ok" for everything; /flaky answers 503 to every other request (so a retry succeeds).
let flaky = 0;
const upstream = await startRecordingUpstream((req, res) => {
  if (req.url.startsWith('/flaky') && flaky++ % 2 === 0) {
    res.writeHead(503, { 'content-length': '4' });
    res.end('down');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
  res.end('ok');
});

const remora = await startRemora({
  workers: 1,
  admin: { address: '127.0.0.1', port: 0 },
  listeners: [
    {
      name: 'text', address: '127.0.0.1', port: 0,
      access_log: { path: textLog, format: ENVOY_DEFAULT },
      virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'all', match: { prefix: '/' }, route: { cluster: 'up' } }] }],
    },
    {
      name: 'json', address: '127.0.0.1', port: 0,
      access_log: { path: jsonLog, json_format: JSON_FORMAT },
      virtual_hosts: [{
        name: 'all', domains: ['*'], routes: [
          { name: 'flaky', match: { prefix: '/flaky' }, route: { cluster: 'up', retry_policy: { retry_on: ['5xx'], num_retries: 1, base_interval_ms: 1 } } },
          { name: 'items', match: { prefix: '/items' }, route: { cluster: 'up' } },
        ],
      }],
    },
    { name: 'tcp', address: '127.0.0.1', port: 0, tcp_proxy: { cluster: 'up' }, access_log: { path: tcpLog, format: TCP_FORMAT } },
  ],
  clusters: [{ name: 'up', connect_timeout_ms: 500, endpoints: [{ address: '127.0.0.1', port: upstream.port }] }],
});
t.teardown(async () => {
  await remora.stop();
  await upstream.close();
});

const noAgent = new http.Agent({ keepAlive: false });
t.teardown(() => noAgent.destroy());

t.test("format: Envoy's default format, as Envoy prints it", async (t) => {
  const port = remora.ports.text;
  const reply = await request(port, {
    method: 'POST',
    path: '/items?x=1',
    headers: { 'user-agent': 'remora-it/1.0', 'x-request-id': 'fmt-text-1', 'x-forwarded-for': '203.0.113.9', 'content-type': 'text/plain' },
    body: 'hello',
  });
  t.equal(reply.status, 200, 'expected 200 from the upstream');
  const line = await waitForLine(textLog, (l) => l.includes('"fmt-text-1"'));
  const m = /^\[([^\]]+)\] "POST \/items\?x=1 HTTP\/1\.1" 200 - 5 2 (\d+) - "203\.0\.113\.9" "remora-it\/1\.0" "fmt-text-1" "([^"]+)" "([^"]+)"$/.exec(line);
  t.ok(m, `the line has Envoy's shape: ${line}`);
  if (m === null) return;
  t.match(m[1], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'START_TIME is ISO 8601 with milliseconds');
  t.ok(Math.abs(Date.parse(m[1]) - Date.now()) < 60_000, 'about now');
  t.ok(Number(m[2]) < 10_000, `DURATION ${m[2]} ms`);
  t.equal(m[3], `127.0.0.1:${port}`, ':AUTHORITY is the Host header');
  t.equal(m[4], `127.0.0.1:${upstream.port}`, 'UPSTREAM_HOST');
  t.ok(readFileSync(textLog, 'utf8').endsWith('\n'), 'lines end with a newline');
});

t.test('json_format: numbers stay numbers, a retried request has two attempt durations, a local reply has nulls', async (t) => {
  const port = remora.ports.json;
  const ok = await request(port, { path: '/items/1', headers: { 'x-request-id': 'fmt-json-1', 'x-tenant': 'acme-corporation' } });
  t.equal(ok.status, 200, 'expected 200 from the upstream');
  const line = await waitForLine(jsonLog, (l) => l.includes('"fmt-json-1"'));
  const first = JSON.parse(line) as Record<string, unknown>;
  t.same(Object.keys(first), Object.keys(JSON_FORMAT), 'the keys given, in order');
  t.match(first.start, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.match(first, {
    method: 'GET', path: '/items/1', protocol: 'HTTP/1.1', code: 200, flags: '-', bytes_sent: 2, attempts: 1, cluster: 'up', route: 'items',
    request_id: 'fmt-json-1', tenant: 'acme', service_time: null, summary: `GET 200 via 127.0.0.1:${upstream.port}`, client: '127.0.0.1',
  });
  t.type(first.duration, 'number');
  t.match(first.attempt_ms, /^\d+$/, 'one attempt duration, in ms');

  const retried = await request(port, { path: '/flaky/a', headers: { 'x-request-id': 'fmt-json-2' }, agent: noAgent });
  t.equal(retried.status, 200, 'the retry succeeded');
  const second = JSON.parse(await waitForLine(jsonLog, (l) => l.includes('"fmt-json-2"'))) as Record<string, unknown>;
  t.equal(second.attempts, 2, 'two attempts');
  t.match(second.attempt_ms, /^\d+,\d+$/, 'two attempt durations, in order');
  t.equal(second.route, 'flaky');

  const none = await request(port, { path: '/nowhere', headers: { 'x-request-id': 'fmt-json-3' } });
  t.equal(none.status, 404, 'no route');
  const third = JSON.parse(await waitForLine(jsonLog, (l) => l.includes('"fmt-json-3"'))) as Record<string, unknown>;
  t.match(third, { code: 404, flags: 'NR', attempts: 0, attempt_ms: null, cluster: null, route: null, tenant: null, summary: 'GET 404 via -' });
});

t.test('a TCP proxy listener writes its connection lines in its format', async (t) => {
  const port = remora.ports.tcp;
  const request = 'GET /over-tcp HTTP/1.1\r\nHost: tcp.local\r\nConnection: close\r\n\r\n';
  const { text } = await rawExchange(port, request);
  t.match(text, /^HTTP\/1\.1 200/, 'the upstream answered through the tunnel');
  const line = await waitForLine(tcpLog, () => true);
  const m = /^127\.0\.0\.1 up (\S+) (\d+) (\d+) (upstream|downstream) 0 -$/.exec(line);
  t.ok(m, `the connection's line: ${line}`);
  if (m === null) return;
  t.equal(m[1], `127.0.0.1:${upstream.port}`);
  t.equal(Number(m[2]), Buffer.byteLength(request), 'BYTES_RECEIVED: the bytes from the client');
  t.equal(Number(m[3]), Buffer.byteLength(text, 'latin1'), 'BYTES_SENT: the bytes to it');
});
