// Reading and writing trace context (src/tracing/propagation.ts) and the sampling
// decision of a listener (workers/tracing.ts): W3C traceparent/tracestate, B3 single and
// multi (64- and 128-bit ids, sampling-only forms, debug), invalid headers ignored, the
// configured order deciding between formats, force and client headers, parent-based
// and ratio sampling, and the headers an upstream attempt carries.

import t from 'tap';
import { extractParent, injectionLines } from '../../src/tracing/propagation.js';
import { resolveTracing } from '../../src/tracing/settings.js';
import { ListenerTracer, type Sampling } from '../../workers/tracing.js';
import type { SpanBuffer } from '../../workers/span-buffer.js';
import type { SpanRecord } from '../../src/tracing/span.js';
import type { TracingConfig } from '../../src/config/types.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

t.test('W3C traceparent and tracestate', async (t) => {
  const p = extractParent(['traceparent', `00-${TRACE}-${SPAN}-01`, 'tracestate', 'a=1', 'tracestate', 'b=2'], ['tracecontext']);
  t.same({ traceId: p.traceId, spanId: p.spanId, sampled: p.sampled, traceState: p.traceState, b3: p.b3 }, { traceId: TRACE, spanId: SPAN, sampled: 1, traceState: 'a=1,b=2', b3: null });
  t.equal(extractParent(['traceparent', `00-${TRACE}-${SPAN}-00`], ['tracecontext']).sampled, 0, 'flags 00: not sampled');
  for (const bad of [`ff-${TRACE}-${SPAN}-01`, `00-${'0'.repeat(32)}-${SPAN}-01`, `00-${TRACE}-${'0'.repeat(16)}-01`, `00-${TRACE}-${SPAN}-01-extra`, `00-${TRACE.toUpperCase()}-${SPAN}-01`, 'garbage']) {
    const q = extractParent(['traceparent', bad], ['tracecontext']);
    t.equal(q.traceId, '', `invalid traceparent ${bad} gives no parent`);
    t.equal(q.traceparent, true, 'but it is known one came (a new one is written back)');
  }
  t.equal(extractParent(['traceparent', `01-${TRACE}-${SPAN}-01-future`], ['tracecontext']).traceId, TRACE, 'a later version may carry more fields');
});

t.test('B3 single and multi', async (t) => {
  let p = extractParent(['b3', `${TRACE}-${SPAN}-1-${'1'.repeat(16)}`], ['tracecontext']);
  t.same([p.traceId, p.spanId, p.sampled, p.b3], [TRACE, SPAN, 1, 'single'], 'b3 single, read though not configured (fallback)');
  p = extractParent(['b3', `a3ce929d0e0e4736-${SPAN}`], ['b3']);
  t.same([p.traceId, p.sampled], [`0000000000000000a3ce929d0e0e4736`, -1], '64-bit id padded; no sampling state: deferred');
  t.same([extractParent(['b3', '0'], ['b3']).sampled, extractParent(['b3', 'd'], ['b3']).sampled], [0, 1], 'sampling-only b3');
  p = extractParent(['x-b3-traceid', TRACE, 'x-b3-spanid', SPAN, 'x-b3-sampled', '0'], ['b3multi']);
  t.same([p.traceId, p.spanId, p.sampled, p.b3], [TRACE, SPAN, 0, 'multi']);
  t.equal(extractParent(['x-b3-traceid', TRACE, 'x-b3-spanid', SPAN, 'x-b3-flags', '1'], ['b3multi']).sampled, 1, 'debug flag: sampled');
  t.equal(extractParent(['x-b3-traceid', 'xyz', 'x-b3-spanid', SPAN], ['b3multi']).traceId, '', 'invalid B3 id ignored');
});

t.test('the configured order decides between formats', async (t) => {
  const headers = ['traceparent', `00-${TRACE}-${SPAN}-01`, 'x-b3-traceid', 'a'.repeat(32), 'x-b3-spanid', 'b'.repeat(16), 'x-b3-sampled', '0'];
  t.equal(extractParent(headers, ['tracecontext', 'b3multi']).traceId, TRACE);
  t.equal(extractParent(headers, ['b3multi', 'tracecontext']).traceId, 'a'.repeat(32));
});

t.test('force and client trace headers', async (t) => {
  t.equal(extractParent(['x-remora-force-trace', '1'], ['tracecontext']).forced, true);
  t.equal(extractParent(['x-envoy-force-trace', 'true'], ['tracecontext']).forced, true);
  t.equal(extractParent(['x-client-trace-id', 'abc'], ['tracecontext']).clientTraceId, 'abc');
  t.equal(extractParent(['host', 'x', 'accept', '*/*'], ['tracecontext']).traceId, '', 'no trace headers: no parent');
});

t.test('injection lines', async (t) => {
  t.equal(injectionLines({ tracecontext: true, b3: false, b3multi: false }, TRACE, SPAN, 'c'.repeat(16), true), `traceparent: 00-${TRACE}-${SPAN}-01\r\n`);
  t.equal(injectionLines({ tracecontext: false, b3: true, b3multi: true }, TRACE, SPAN, 'c'.repeat(16), false),
    `x-b3-traceid: ${TRACE}\r\nx-b3-spanid: ${SPAN}\r\nx-b3-parentspanid: ${'c'.repeat(16)}\r\nx-b3-sampled: 0\r\nb3: ${TRACE}-${SPAN}-0-${'c'.repeat(16)}\r\n`);
});

/** A tracer over a root block; spans land in `spans`. */
function tracer(root: Partial<TracingConfig>, listener: Record<string, unknown> = {}): { tr: ListenerTracer; spans: SpanRecord[] } {
  const spans: SpanRecord[] = [];
  const buffer = { add: (s: SpanRecord) => spans.push(s) } as unknown as SpanBuffer;
  const settings = resolveTracing({ otlp: {}, ...root } as TracingConfig, {});
  const tr = new ListenerTracer(settings, { enabled: true, custom_tags: [], max_path_tag_length: 256, ...listener } as never, 'main', buffer, {});
  return { tr, spans };
}

const share = (tr: ListenerTracer, headers: (i: number) => string[], sampling?: Sampling, n = 4000): number => {
  let sampled = 0;
  for (let i = 0; i < n; i++) if (tr.start(headers(i), sampling ?? tr.sampling).sampled) sampled++;
  return sampled / n;
};

t.test('sampling decisions', async (t) => {
  const on = tracer({}).tr;
  t.equal(share(on, () => []), 1, 'parentbased_always_on: every new trace');
  t.equal(share(on, () => ['traceparent', `00-${TRACE}-${SPAN}-00`]), 0, 'an unsampled parent is kept');
  t.equal(share(tracer({ sampler: 'always_on' }).tr, () => ['traceparent', `00-${TRACE}-${SPAN}-00`]), 1, 'always_on ignores the parent');
  const tenth = tracer({ sampler: 'parentbased_traceidratio', sampler_arg: 0.1 }).tr;
  const s = share(tenth, () => []);
  t.ok(s > 0.08 && s < 0.12, `ratio 0.1 over 4000 new traces: ${s}`);
  t.equal(share(tenth, () => ['traceparent', `00-${TRACE}-${SPAN}-01`]), 1, 'a sampled parent is kept whatever the ratio');
  const same = tenth.start(['traceparent', `00-${TRACE}-${SPAN}-01`], { random: 0.5, client: 1, overall: 1 });
  t.equal(same.traceId, TRACE, 'the parent\'s trace id is kept');
  const off = tracer({ sampler: 'always_off' }).tr;
  t.equal(share(off, () => ['x-remora-force-trace', '1']), 1, 'forced');
  t.equal(share(off, () => ['x-client-trace-id', 'x']), 1, 'client_sampling 100 %');
  const half = tracer({ sampler: 'always_off' }, { client_sampling: 50 }).tr;
  const c = share(half, () => ['x-client-trace-id', 'x']);
  t.ok(c > 0.45 && c < 0.55, `client_sampling 50 %: ${c}`);
  const overall = tracer({}, { overall_sampling: 25 }).tr;
  const o = share(overall, () => ['x-remora-force-trace', '1']);
  t.ok(o > 0.21 && o < 0.29, `overall_sampling 25 % bounds even forced traces: ${o}`);
  const listener = tracer({}, { random_sampling: 20 }).tr;
  const r = share(listener, () => []);
  t.ok(r > 0.17 && r < 0.23, `listener random_sampling 20 %: ${r}`);
  const route = listener.routeSampling({ random_sampling: 0 });
  t.same(route, { random: 0, client: 1, overall: 1 }, 'a route overrides only what it sets');
  t.equal(share(listener, () => [], route!), 0, 'route random_sampling 0');
});

t.test('each attempt gets its own span id under the server span', async (t) => {
  const { tr } = tracer({}, {});
  const trace = tr.start(['traceparent', `00-${TRACE}-${SPAN}-01`], tr.sampling);
  const a = { spanId: '', createdAt: 0, status: 0, failure: '', backoffMs: 0 };
  const b = { spanId: '', createdAt: 0, status: 0, failure: '', backoffMs: 0 };
  const first = trace.attemptHeaders(a);
  const second = trace.attemptHeaders(b);
  t.match(first, new RegExp(`^traceparent: 00-${TRACE}-[0-9a-f]{16}-01\\r\\n$`));
  t.not(a.spanId, b.spanId);
  t.not(a.spanId, trace.spanId);
  t.ok(first.includes(a.spanId) && second.includes(b.spanId));
  const b3 = tr.start(['x-b3-traceid', TRACE, 'x-b3-spanid', SPAN, 'x-b3-sampled', '1'], tr.sampling);
  t.match(b3.attemptHeaders(a), /traceparent: .*\r\nx-b3-traceid: .*\r\nx-b3-spanid: .*\r\nx-b3-parentspanid: .*\r\nx-b3-sampled: 1\r\n$/, 'B3 in, B3 written back as well');
});
