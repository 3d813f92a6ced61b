// Unit tests for src/tracing/otlp-exporter.ts against a real OTLP receiver on 127.0.0.1
// (test/helpers/otlp-receiver.ts): each protocol delivers what workers encoded, headers
// arrive, retryable answers are retried (with Retry-After honoured) and others dropped and
// counted, the queue stays within its bound while the collector is slow or down, a
// shutdown flushes within its deadline, and failures warn at most once per 30 s.

import t, { type Test } from 'tap';
import type { Logger } from '../../src/core/log.js';
import { encodeSpansJson, encodeSpansProto } from '../../src/tracing/otlp-encode.js';
import { OtlpExporter, type OtlpExporterOptions, type OtlpProtocol, type SpanBatch } from '../../src/tracing/otlp-exporter.js';
import { SpanKind, SpanStatus, type SpanRecord } from '../../src/tracing/span.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';

const PROTOCOLS: OtlpProtocol[] = ['grpc', 'http/protobuf', 'http/json'];
const T0 = 1_700_000_000_000_000;

let seq = 0;
function spans(n: number, name = 'GET /orders'): SpanRecord[] {
  return Array.from({ length: n }, () => {
    const i = ++seq;
    return {
      traceId: i.toString(16).padStart(32, '0'),
      spanId: i.toString(16).padStart(16, '0'),
      parentSpanId: '',
      traceState: '',
      name,
      kind: SpanKind.Server,
      startUs: T0 + i,
      endUs: T0 + i + 250,
      attributes: ['http.response.status_code', 200, 'http.request.method', 'GET'],
      status: SpanStatus.Unset,
      statusMessage: '',
    };
  });
}

const batch = (s: SpanRecord[], dropped = 0): SpanBatch => ({ count: s.length, proto: encodeSpansProto(s), json: encodeSpansJson(s), dropped });

interface LogLine {
  level: string;
  obj: unknown;
  msg: string;
}

function recordingLog(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (obj: unknown, msg?: string) => lines.push({ level, obj, msg: msg ?? (typeof obj === 'string' ? obj : '') });
  const log = { warn: at('warn'), info: at('info'), error: at('error'), debug: at('debug') } as unknown as Logger;
  return { log, lines };
}

function options(rx: OtlpReceiver, protocol: OtlpProtocol, over: Partial<OtlpExporterOptions> = {}): OtlpExporterOptions {
  return {
    protocol,
    endpoint: protocol === 'grpc' ? rx.grpcEndpoint : rx.httpEndpoint,
    headers: {},
    timeoutMs: 2000,
    resource: { 'service.name': 'checkout', 'k8s.pod.name': 'checkout-0' },
    scope: { name: 'remora', version: '0.1.0' },
    maxQueueSpans: 2048,
    maxBatchSpans: 512,
    log: recordingLog().log,
    ...over,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}

let rx: OtlpReceiver;
t.before(async () => {
  rx = await startOtlpReceiver({ grpc: true, http: true });
});
t.teardown(() => rx.close());
t.beforeEach(() => {
  rx.setMode('ok');
  rx.script([]);
  rx.requests.length = 0;
});

/** An exporter stopped at the end of the current test. */
function exporter(t: Test, opts: OtlpExporterOptions): OtlpExporter {
  const e = new OtlpExporter(opts);
  t.teardown(() => e.shutdown(0));
  return e;
}

for (const protocol of PROTOCOLS) {
  t.test(`${protocol}: delivers every span with resource, scope and headers`, async (t) => {
    const before = rx.spans().length;
    const e = exporter(t, options(rx, protocol, { headers: { 'x-api-key': 'secret-1', authorization: 'Bearer abc' } }));
    const sent = [...spans(3), ...spans(2, 'POST /pay')];
    e.submit(batch(sent.slice(0, 3)));
    e.submit(batch(sent.slice(3)));
    const got = (await rx.waitForSpans(before + 5)).slice(before);
    t.same(got.map((s) => s.spanId), sent.map((s) => s.spanId), 'all spans, in order');
    t.same(got.map((s) => s.name), ['GET /orders', 'GET /orders', 'GET /orders', 'POST /pay', 'POST /pay']);
    t.ok(got.every((s) => s.protocol === protocol), `arrived over ${protocol}`);
    t.same(got[0].resource, { 'service.name': 'checkout', 'k8s.pod.name': 'checkout-0' });
    t.same(got[0].scope, { name: 'remora', version: '0.1.0' });
    t.same(got[0].attributes, { 'http.response.status_code': 200, 'http.request.method': 'GET' });
    t.equal(got[0].startTimeUnixNano, BigInt(sent[0].startUs) * 1000n);
    for (const r of rx.requests) {
      t.equal(r.headers['x-api-key'], 'secret-1', 'custom header arrives');
      t.equal(r.headers.authorization, 'Bearer abc');
      if (protocol !== 'grpc') t.equal(r.headers['content-type'], protocol === 'http/json' ? 'application/json' : 'application/x-protobuf');
    }
    await until(() => e.counters().exported === 5);
    const c = e.counters();
    t.equal(c.queuedSpans, 0);
    t.equal(c.requests.success, rx.requests.length);
    t.same(c.dropped, { worker_queue_full: 0, export_queue_full: 0, export_failed: 0, rejected: 0 });
  });
}

t.test('queued batches merge into requests of at most maxBatchSpans', async (t) => {
  const e = exporter(t, options(rx, 'http/protobuf', { maxBatchSpans: 6 }));
  const before = rx.spans().length;
  for (let i = 0; i < 5; i++) e.submit(batch(spans(3)));
  await rx.waitForSpans(before + 15);
  await until(() => e.counters().exported === 15);
  const sizes = rx.requests.map((r) => r.spans);
  t.same(sizes, [3, 6, 6], 'the first batch goes at once; the rest merge while it is in flight');
  t.equal(e.counters().requests.success, 3);
});

for (const protocol of ['grpc', 'http/protobuf'] as const) {
  t.test(`${protocol}: retries UNAVAILABLE / 503, then delivers`, async (t) => {
    rx.script(['unavailable', 'unavailable']);
    const e = exporter(t, options(rx, protocol));
    const before = rx.spans().length;
    e.submit(batch(spans(4)));
    await rx.waitForSpans(before + 4);
    await until(() => e.counters().exported === 4);
    t.same(rx.requests.map((r) => r.mode), ['unavailable', 'unavailable', 'ok']);
    t.same(e.counters().requests, { success: 1, failure: 0, retry: 2 });
    t.equal(e.counters().dropped.export_failed, 0);
  });

  t.test(`${protocol}: a non-retryable answer drops the request at once, counted`, async (t) => {
    const { log, lines } = recordingLog();
    rx.script(['invalid']);
    const e = exporter(t, options(rx, protocol, { log }));
    const before = rx.spans().length;
    e.submit(batch(spans(3)));
    e.submit(batch(spans(2)));
    await rx.waitForSpans(before + 2);
    await until(() => e.counters().exported === 2);
    t.same(rx.requests.map((r) => r.mode), ['invalid', 'ok'], 'not retried');
    const c = e.counters();
    t.equal(c.dropped.export_failed, 3);
    t.same(c.requests, { success: 1, failure: 1, retry: 0 });
    const warn = lines.filter((l) => l.level === 'warn');
    t.equal(warn.length, 1, 'one warning');
    t.match(warn[0].obj, { spans_dropped: { export_failed: 3 }, last_error: protocol === 'grpc' ? /INVALID_ARGUMENT/ : /HTTP 400/ });
    t.ok(lines.some((l) => l.level === 'info' && /recovered/.test(l.msg)), 'recovery logged');
  });
}

t.test('Retry-After is honoured', async (t) => {
  rx.script([{ kind: 'unavailable', retryAfterS: 1 }]);
  const e = exporter(t, options(rx, 'http/protobuf'));
  const before = rx.spans().length;
  e.submit(batch(spans(1)));
  await rx.waitForSpans(before + 1, 4000);
  const [first, second] = rx.requests;
  t.ok(second.at - first.at >= 950, `retried after ${Math.round(second.at - first.at)} ms (Retry-After: 1; the backoff alone would be ≤ 100 ms)`);
  t.equal(e.counters().requests.retry, 1);
});

t.test('partial success: rejected spans are counted, the rest exported', async (t) => {
  for (const protocol of PROTOCOLS) {
    rx.script([{ kind: 'ok', rejected: 2 }]);
    const e = new OtlpExporter(options(rx, protocol));
    e.submit(batch(spans(5)));
    await until(() => e.counters().requests.success === 1);
    const c = e.counters();
    t.equal(c.exported, 3, `${protocol}: exported`);
    t.equal(c.dropped.rejected, 2, `${protocol}: rejected`);
    await e.shutdown(1000);
  }
});

t.test('a collector that stays down: 5 tries, then the request is given up', async (t) => {
  rx.setMode('down'); // HTTP: the connection is closed without an answer
  const e = exporter(t, options(rx, 'http/protobuf'));
  e.submit(batch(spans(4)));
  await until(() => e.counters().dropped.export_failed === 4, 8000);
  t.equal(rx.requests.length, 5, 'five tries');
  t.same(e.counters().requests, { success: 0, failure: 0, retry: 5 });
  t.equal(e.counters().queuedSpans, 0);
});

t.test('a slow collector: each try is cut after timeoutMs and retried', async (t) => {
  rx.script([{ kind: 'slow', delayMs: 1500 }]);
  const e = exporter(t, options(rx, 'grpc', { timeoutMs: 150 }));
  const before = rx.spans().length;
  e.submit(batch(spans(2)));
  await rx.waitForSpans(before + 2, 3000);
  await until(() => e.counters().exported === 2);
  t.same(e.counters().requests, { success: 1, failure: 0, retry: 1 }, 'DEADLINE_EXCEEDED retried');
});

for (const protocol of ['grpc', 'http/json'] as const) {
  t.test(`${protocol}: the queue stays within maxQueueSpans while the collector is slow`, async (t) => {
    rx.setMode({ kind: 'slow', delayMs: 100 });
    const e = exporter(t, options(rx, protocol, { maxQueueSpans: 20, maxBatchSpans: 10 }));
    const before = rx.spans().length;
    let max = 0;
    for (let i = 0; i < 40; i++) {
      e.submit(batch(spans(5), 1));
      max = Math.max(max, e.counters().queuedSpans);
      if (i % 10 === 9) await sleep(60);
    }
    t.ok(max <= 20, `held at most ${max} spans`);
    await until(() => e.counters().queuedSpans === 0, 5000);
    const c = e.counters();
    t.ok(c.dropped.export_queue_full > 0, `dropped ${c.dropped.export_queue_full} spans when full`);
    t.equal(c.dropped.worker_queue_full, 40, 'the workers\' own drops are counted');
    t.equal(c.exported + c.dropped.export_queue_full, 200, 'every span exported or counted');
    t.equal(rx.spans().length - before, c.exported);
  });
}

t.test('shutdown flushes what is queued, then resolves', async (t) => {
  rx.setMode({ kind: 'slow', delayMs: 50 });
  const e = new OtlpExporter(options(rx, 'http/protobuf', { maxBatchSpans: 4 }));
  const before = rx.spans().length;
  for (let i = 0; i < 5; i++) e.submit(batch(spans(4)));
  await e.shutdown(5000);
  t.equal(rx.spans().length - before, 20, 'every span delivered before shutdown resolved');
  t.equal(e.counters().exported, 20);
  t.equal(e.counters().queuedSpans, 0);
  e.submit(batch(spans(1)));
  t.equal(e.counters().dropped.export_failed, 1, 'a batch after shutdown is counted, not sent');
  await e.shutdown(1000); // twice is fine
});

t.test('shutdown gives up at its deadline when the collector is down', async (t) => {
  rx.setMode('unavailable');
  const { log, lines } = recordingLog();
  const e = new OtlpExporter(options(rx, 'grpc', { log }));
  for (let i = 0; i < 3; i++) e.submit(batch(spans(10)));
  const start = performance.now();
  await e.shutdown(300);
  const took = performance.now() - start;
  t.ok(took < 1000, `resolved after ${Math.round(took)} ms`);
  const c = e.counters();
  t.equal(c.exported, 0);
  t.equal(c.dropped.export_failed, 30, 'what was left is counted');
  t.equal(c.queuedSpans, 0);
  t.ok(lines.some((l) => l.level === 'warn'), 'warned');
});

t.test('warns at most once per 30 s, with counts', async (t) => {
  rx.setMode('invalid');
  const { log, lines } = recordingLog();
  const e = exporter(t, options(rx, 'http/protobuf', { log }));
  for (let i = 0; i < 10; i++) {
    e.submit(batch(spans(2)));
    await sleep(2);
  }
  await until(() => e.counters().dropped.export_failed === 20);
  t.equal(lines.filter((l) => l.level === 'warn').length, 1, 'one warning for ten failures');
});

t.test('update: keeps the queue, sends with the new settings', async (t) => {
  rx.setMode('unavailable');
  const e = exporter(t, options(rx, 'http/protobuf', { headers: { 'x-tenant': 'a' } }));
  e.submit(batch(spans(3)));
  await until(() => rx.requests.length >= 1);
  e.update(options(rx, 'grpc', { headers: { 'x-tenant': 'b' } }));
  e.submit(batch(spans(2)));
  rx.setMode('ok');
  await until(() => e.counters().exported === 5, 6000);
  const last = rx.requests[rx.requests.length - 1];
  t.equal(last.protocol, 'grpc', 'the new protocol');
  t.equal(last.headers['x-tenant'], 'b', 'the new headers');

});

t.test('update: protobuf batches cannot go as JSON; dropped and counted', async (t) => {
  rx.script([{ kind: 'unavailable', retryAfterS: 1 }]); // a pause long enough to update in
  const e = exporter(t, options(rx, 'http/protobuf'));
  e.submit(batch(spans(4)));
  await until(() => e.counters().requests.retry === 1);
  e.update(options(rx, 'http/json'));
  const before = rx.spans().length;
  e.submit(batch(spans(1)));
  await rx.waitForSpans(before + 1, 4000);
  await until(() => e.counters().exported === 1);
  t.equal(e.counters().dropped.export_failed, 4, 'the protobuf request was dropped when the protocol became JSON');
  t.same(rx.requests.map((r) => r.protocol), ['http/protobuf', 'http/json']);
});

t.test('never throws: a bad endpoint, batches without the needed encoding', async (t) => {
  const { log, lines } = recordingLog();
  const bad = exporter(t, { ...options(rx, 'http/protobuf'), endpoint: 'not a url', log });
  bad.submit(batch(spans(2)));
  t.equal(bad.counters().dropped.export_failed, 2);
  t.ok(lines.some((l) => l.level === 'error' && /not a URL/.test(l.msg)), 'logged once at construction');
  const e = exporter(t, options(rx, 'http/json'));
  e.submit({ count: 3, proto: encodeSpansProto(spans(3)), json: null, dropped: 0 });
  t.equal(e.counters().dropped.export_failed, 3, 'a batch not encoded for the protocol is counted');
  e.submit({ count: 0, proto: null, json: null, dropped: 9 });
  t.equal(e.counters().dropped.worker_queue_full, 9);
});
