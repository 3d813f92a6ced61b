// Tracing end to end: real Remora processes send spans over OTLP to a test collector
// that decodes them with OpenTelemetry's own generated protobuf code (test/helpers/
// otlp-receiver.ts). A trace through two sidecars (client sidecar → server sidecar → app)
// with a retry: one trace id, parent/child links across both processes, attributes,
// retries as sibling attempts; B3 in and out over OTLP/JSON; sampling shares over 10,000
// requests; a collector that is down: requests unaffected, drops counted, export resumes.

import http from 'node:http';
import t from 'tap';
import { Pool } from 'undici';
import { startOtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { admin, request, routesConfig, startRemora, startUpstream, waitUntil, type RemoraProcess } from '../helpers/remora.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER = '00f067aa0ba902b7';

/** An app that records each request's headers; `/flaky` answers 503 on every odd call. */
async function app() {
  const seen: http.IncomingHttpHeaders[] = [];
  let flaky = 0;
  const up = await startUpstream((req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on('end', () => {
      if (req.url === '/flaky' && flaky++ % 2 === 0) {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('try again');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  return { ...up, seen };
}

const cluster = (name: string, port: number, extra: Record<string, unknown> = {}) => ({ name, connect_timeout_ms: 1000, endpoints: [{ address: '127.0.0.1', port }], ...extra });

function config(tracing: Record<string, unknown>, upstreamPort: number, opts: { route?: Record<string, unknown>; listener?: Record<string, unknown> } = {}) {
  const c = routesConfig([{ name: 'all', match: { prefix: '/' }, route: { cluster: 'up', ...(opts.route ?? {}) } }], [cluster('up', upstreamPort)]);
  return { ...c, tracing, listeners: [{ ...c.listeners[0], ...(opts.listener ?? {}) }] };
}

const byId = (spans: readonly ReceivedSpan[]) => new Map(spans.map((s) => [s.spanId, s]));
const service = (s: ReceivedSpan) => String(s.resource['service.name']);

async function metric(r: RemoraProcess, name: string): Promise<number> {
  const text = (await admin(r.adminPort, '/metrics')).text;
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

t.test('a trace through two sidecars, with a retry', async (t) => {
  const collector = await startOtlpReceiver({ grpc: true, http: true });
  const upstream = await app();
  const server = await startRemora(config({ service_name: 'server-sidecar', otlp: { endpoint: collector.grpcEndpoint, protocol: 'grpc', schedule_delay_ms: 100 } }, upstream.port));
  const client = await startRemora(config({ service_name: 'client-sidecar', otlp: { endpoint: collector.httpEndpoint, protocol: 'http/protobuf', schedule_delay_ms: 100 } },
    server.ports.main, { route: { retry_policy: { retry_on: ['5xx'], num_retries: 2, base_interval_ms: 20 } } }));
  t.teardown(async () => {
    await client.stop();
    await server.stop();
    await upstream.close();
    await collector.close();
  });

  const reply = await request(client.ports.main, { path: '/flaky', headers: { traceparent: `00-${TRACE}-${CALLER}-01`, tracestate: 'vendor=1', 'user-agent': 'trace-test/1' } });
  t.equal(reply.status, 200, 'the retry succeeded');
  const spans = await collector.waitForSpans(7, 10_000);
  t.equal(spans.length, 7, `client sidecar: server span + 2 attempts; server sidecar: 2 × (server span + attempt); got ${spans.map((s) => `${service(s)}:${s.name}`).join(', ')}`);
  t.same([...new Set(spans.map((s) => s.traceId))], [TRACE], 'one trace id, the caller\'s');
  const ids = byId(spans);
  const cServer = spans.filter((s) => service(s) === 'client-sidecar' && s.kind === 2);
  const cClient = spans.filter((s) => service(s) === 'client-sidecar' && s.kind === 3).sort((a, b) => Number(a.startTimeUnixNano - b.startTimeUnixNano));
  const sServer = spans.filter((s) => service(s) === 'server-sidecar' && s.kind === 2);
  const sClient = spans.filter((s) => service(s) === 'server-sidecar' && s.kind === 3);
  t.same([cServer.length, cClient.length, sServer.length, sClient.length], [1, 2, 2, 2]);
  t.equal(cServer[0].parentSpanId, CALLER, 'the client sidecar\'s server span is the caller\'s child');
  t.equal(cServer[0].traceState, 'vendor=1', 'tracestate kept');
  for (const c of cClient) t.equal(c.parentSpanId, cServer[0].spanId, 'attempts are children of the server span (siblings)');
  for (const s of sServer) t.ok(cClient.some((c) => c.spanId === s.parentSpanId), 'each server-sidecar span is the child of one client-sidecar attempt');
  t.not(sServer[0].parentSpanId, sServer[1].parentSpanId, 'one per attempt');
  for (const c of sClient) t.equal(ids.get(c.parentSpanId)?.kind, 2, 'the server sidecar\'s attempts are children of its server spans');
  // The app saw the server sidecar's attempt span as its parent.
  const parents = upstream.seen.map((h) => String(h.traceparent).split('-')[2]);
  t.same(parents.sort(), sClient.map((s) => s.spanId).sort(), 'the app got each attempt\'s span id in traceparent');
  t.ok(upstream.seen.every((h) => h.tracestate === 'vendor=1'), 'tracestate passed on');

  const a = cServer[0].attributes;
  t.match(a, {
    'http.request.method': 'GET', 'url.path': '/flaky', 'url.scheme': 'http', 'http.response.status_code': 200, 'user_agent.original': 'trace-test/1',
    'remora.route': 'all', 'remora.cluster': 'up', 'remora.retry_count': 1, 'remora.listener': 'main', 'network.protocol.version': '1.1',
  });
  t.equal(cServer[0].attributeTypes['http.response.status_code'], 'int');
  t.equal(cServer[0].name, 'GET all');
  t.equal(a['remora.request_id'], sServer[0].attributes['remora.request_id'], 'the request id travels with the trace');
  t.match(cClient[0].attributes, { 'http.response.status_code': 503, 'error.type': '503', 'server.address': '127.0.0.1', 'server.port': server.ports.main });
  t.equal(cClient[0].status.code, 2, 'the 503 attempt is an error');
  t.match(cClient[1].attributes, { 'http.response.status_code': 200, 'http.request.resend_count': 1 });
  t.ok(Number(cClient[1].attributes['remora.retry.backoff_ms']) >= 0, 'the backoff before the retry is on its span');
  t.ok(cClient[1].startTimeUnixNano >= cClient[0].endTimeUnixNano, 'the retry starts after the first attempt ended');
  t.ok(cServer[0].startTimeUnixNano <= cClient[0].startTimeUnixNano && cServer[0].endTimeUnixNano >= cClient[1].endTimeUnixNano, 'the server span covers its attempts');
  t.same(new Set(spans.filter((s) => service(s) === 'client-sidecar').map((s) => s.protocol)), new Set(['http/protobuf']));
  t.same(new Set(spans.filter((s) => service(s) === 'server-sidecar').map((s) => s.protocol)), new Set(['grpc']));
  t.equal(spans[0].scope.name, 'remora');
  t.ok(await metric(client, 'remora_trace_spans_exported_total') >= 3, 'exported spans counted');
});

t.test('OTLP/JSON, B3 in and out, custom tags, a 404 traced', async (t) => {
  const collector = await startOtlpReceiver({ http: true });
  const upstream = await app();
  const remora = await startRemora(config(
    { service_name: 'json-sidecar', resource_attributes: { 'deployment.environment': 'test' }, otlp: { endpoint: collector.httpEndpoint, protocol: 'http/json', schedule_delay_ms: 100, headers: { 'x-api-key': 'k1' } } },
    upstream.port,
    { listener: { tracing: { custom_tags: [{ tag: 'team', literal: 'payments' }, { tag: 'tenant', request_header: 'x-tenant', default_value: 'none' }] } } },
  ), { POD_NAME: 'pod-1', POD_NAMESPACE: 'shop' });
  t.teardown(async () => {
    await remora.stop();
    await upstream.close();
    await collector.close();
  });
  const b3Trace = 'a3ce929d0e0e4736';
  const r = await request(remora.ports.main, { path: '/b3', headers: { 'x-b3-traceid': b3Trace, 'x-b3-spanid': CALLER, 'x-b3-sampled': '1', 'x-tenant': 'acme' } });
  t.equal(r.status, 200);
  const h = upstream.seen[0];
  const padded = `0000000000000000${b3Trace}`;
  t.equal(h['x-b3-traceid'], padded, 'B3 written back (128-bit)');
  t.match(String(h['x-b3-spanid']), /^[0-9a-f]{16}$/);
  t.not(h['x-b3-spanid'], CALLER, 'a new span id: the attempt\'s');
  t.equal(h['x-b3-sampled'], '1');
  t.equal(String(h.traceparent).split('-')[1], padded, 'and traceparent, the configured format');
  await request(remora.ports.main, { path: '/nothing', headers: { host: 'x' }, method: 'GET' }).catch(() => undefined);
  const spans = await collector.waitForSpans(2, 10_000);
  const server = spans.find((s) => s.kind === 2 && s.attributes['url.path'] === '/b3')!;
  t.ok(server, 'server span arrived over OTLP/JSON');
  t.equal(server.protocol, 'http/json');
  t.equal(server.traceId, padded);
  t.equal(server.parentSpanId, CALLER);
  t.match(server.attributes, { team: 'payments', tenant: 'acme' });
  t.match(server.resource, { 'service.name': 'json-sidecar', 'deployment.environment': 'test', 'k8s.pod.name': 'pod-1', 'k8s.namespace.name': 'shop' });
  t.equal(collector.requests[0].headers['x-api-key'], 'k1', 'export headers sent');
  const client = spans.find((s) => s.kind === 3)!;
  t.equal(client.spanId, h['x-b3-spanid'], 'the client span is the one the upstream saw');
});

t.test('sampling shares over 10,000 requests, forced and client traces', async (t) => {
  const collector = await startOtlpReceiver({ http: true });
  const upstream = await startUpstream((req, res) => {
    req.resume();
    res.end('ok');
  });
  const c = routesConfig([
    { name: 'sampled', match: { prefix: '/ten' }, route: { cluster: 'up' } },
    { name: 'never', match: { prefix: '/never' }, route: { cluster: 'up' }, tracing: { random_sampling: 0 } },
  ], [cluster('up', upstream.port)]);
  const remora = await startRemora({
    ...c,
    tracing: { otlp: { endpoint: collector.httpEndpoint, schedule_delay_ms: 100, max_queue_size: 20_000 } },
    listeners: [{ ...c.listeners[0], tracing: { random_sampling: 10 } }],
  });
  t.teardown(async () => {
    await remora.stop();
    await upstream.close();
    await collector.close();
  });
  const pool = new Pool(`http://127.0.0.1:${remora.ports.main}`, { connections: 16, pipelining: 1 });
  const N = 10_000;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < N) {
      next++;
      const r = await pool.request({ path: '/ten', method: 'GET' });
      await r.body.dump();
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await pool.request({ path: '/never', method: 'GET', headers: { 'x-remora-force-trace': '1' } }).then((r) => r.body.dump());
  await pool.request({ path: '/never', method: 'GET', headers: { 'x-client-trace-id': 'cli-42' } }).then((r) => r.body.dump());
  for (let i = 0; i < 20; i++) await pool.request({ path: '/never', method: 'GET' }).then((r) => r.body.dump());
  await pool.close();
  // Expected 1,000 sampled (σ = 30): 4σ either way.
  await waitUntil('spans of the sampled share exported', async () => collector.spans().filter((s) => s.kind === 2).length >= 880 + 2, 15_000);
  await new Promise((r) => setTimeout(r, 500));
  const servers = collector.spans().filter((s) => s.kind === 2);
  const ten = servers.filter((s) => s.attributes['remora.route'] === 'sampled').length;
  t.ok(ten >= 880 && ten <= 1120, `10 % of ${N} requests within 4σ of 1,000: ${ten}`);
  const never = servers.filter((s) => s.attributes['remora.route'] === 'never');
  t.equal(never.length, 2, 'on a route sampling 0 %: only the forced and the client-traced request');
  t.ok(never.some((s) => s.attributes['remora.client_trace_id'] === 'cli-42'));
  t.equal(collector.spans().filter((s) => s.kind === 3).length, servers.length, 'one attempt span per sampled request');
  t.equal(await metric(remora, 'remora_trace_spans_dropped_total'), 0, 'nothing dropped');
});

t.test('a collector that is down: requests unaffected, drops counted, export resumes', async (t) => {
  const collector = await startOtlpReceiver({ grpc: true });
  collector.setMode('unavailable');
  const upstream = await startUpstream((req, res) => {
    req.resume();
    res.end('ok');
  });
  const remora = await startRemora(config({ otlp: { endpoint: collector.grpcEndpoint, protocol: 'grpc', schedule_delay_ms: 50, max_queue_size: 64, max_export_batch_size: 32, timeout_ms: 500 } }, upstream.port));
  t.teardown(async () => {
    await remora.stop();
    await upstream.close();
    await collector.close();
  });
  const pool = new Pool(`http://127.0.0.1:${remora.ports.main}`, { connections: 8 });
  let ok = 0;
  const worker = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const r = await pool.request({ path: '/', method: 'GET' });
      await r.body.dump();
      if (r.statusCode === 200) ok++;
    }
  };
  await Promise.all(Array.from({ length: 8 }, () => worker(250)));
  t.equal(ok, 2000, 'every request answered 200 while the collector refused');
  await waitUntil('drops counted', async () => (await metric(remora, 'remora_trace_spans_dropped_total')) > 0, 5000);
  const queued = await metric(remora, 'remora_trace_export_queue_spans');
  t.ok(queued <= 64, `the exporter holds at most max_queue_size spans: ${queued}`);
  t.ok(collector.requests.length > 0, 'export was tried');
  collector.setMode('ok');
  const before = collector.spans().length;
  await worker(10);
  await pool.close();
  await waitUntil('export resumed', async () => collector.spans().length > before, 10_000);
  // The collector has them; the exporter counts them once its answer is read.
  await waitUntil('exported spans counted', async () => (await metric(remora, 'remora_trace_spans_exported_total')) > 0, 5000);
  t.pass('export resumed and counted');
});

t.test('quick mode: --otlp-endpoint turns tracing on', async (t) => {
  const collector = await startOtlpReceiver({ grpc: true });
  const upstream = await startUpstream((req, res) => {
    req.resume();
    res.end('ok');
  });
  const { spawn } = await import('node:child_process');
  const { BIN } = await import('../helpers/remora.js');
  const { freePort } = await import('../../src/main/ports.js');
  const port = await freePort('127.0.0.1');
  const adminPort = await freePort('127.0.0.1');
  const child = spawn(process.execPath, [BIN, 'run', '--listen', `127.0.0.1:${port}`, '--upstream', `127.0.0.1:${upstream.port}`, '--admin', `127.0.0.1:${adminPort}`,
    '--workers', '1', '--otlp-endpoint', collector.grpcEndpoint, '--otlp-protocol', 'grpc', '--service-name', 'quick'], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, OTEL_BSP_SCHEDULE_DELAY: '100' } });
  t.teardown(async () => {
    if (child.exitCode === null) {
      process.kill(child.pid!, 'SIGINT'); // drains without the delay load balancers need
      await new Promise((r) => child.on('exit', r));
    }
    await upstream.close();
    await collector.close();
  });
  await waitUntil('quick mode listening', async () => (await request(port, { agent: false }).catch(() => null))?.status === 200, 15_000);
  const spans = await collector.waitForSpans(2, 10_000);
  t.equal(spans[0].resource['service.name'], 'quick');
});
