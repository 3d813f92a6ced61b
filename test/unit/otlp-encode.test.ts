// Unit tests for src/tracing/otlp-encode.ts: what Remora encodes is read back with
// OpenTelemetry's own generated decoder (test/helpers/otlp-receiver.ts) and compared field
// by field; the protobuf bytes of a span equal those of the official encoder; OTLP/JSON
// parses to the shape the spec asks for (hex ids, integer enums, int64 as strings).

import t from 'tap';
import { encodeSpansJson, encodeSpansProto, exportRequestJson, exportRequestProto } from '../../src/tracing/otlp-encode.js';
import { SpanKind, SpanStatus, type SpanRecord } from '../../src/tracing/span.js';
import { decodeJson, decodeProto, OtlpProto, type ReceivedSpan } from '../helpers/otlp-receiver.js';

const SCOPE = { name: 'remora', version: '0.1.0' };
const RESOURCE = { 'service.name': 'checkout', 'k8s.pod.name': 'checkout-7d9f-xkq2p' };

const T0 = 1_700_000_000_123_456; // µs

function span(over: Partial<SpanRecord> = {}): SpanRecord {
  return {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    parentSpanId: '',
    traceState: '',
    name: 'GET /api',
    kind: SpanKind.Server,
    startUs: T0,
    endUs: T0 + 1234,
    attributes: [],
    status: SpanStatus.Unset,
    statusMessage: '',
    ...over,
  };
}

/** A long string: over the JS-converted length, over 127 bytes (a 2-byte length). */
const LONG = 'x'.repeat(300) + 'é';
const UNICODE = 'héllo wörld — 日本語 🚀'; // 2-, 3- and 4-byte UTF-8
const ATTRS: (string | number | boolean)[] = [
  'http.request.method', 'GET',
  'empty', '',
  'unicode', UNICODE,
  'unicode.long', UNICODE.repeat(5),
  'long', LONG,
  'bool.true', true,
  'bool.false', false,
  'int.zero', 0,
  'int', 200,
  'int.big', 2 ** 40 + 7,
  'int.max_safe', Number.MAX_SAFE_INTEGER,
  'int.neg', -1,
  'int.neg.big', -(2 ** 53 - 1),
  'int.unsafe', 2 ** 60,
  'double', 3.25,
  'double.neg', -0.5,
  'double.tiny', 5e-324,
  'double.huge', 1e300, // an integer in JS, but past int64: a double
  'ключ', 'значение',
];

/** What the decoder should read for `s`. */
function expected(s: SpanRecord, protocol: ReceivedSpan['protocol']): ReceivedSpan {
  const attributes: Record<string, string | number | boolean> = {};
  const attributeTypes: Record<string, string> = {};
  for (let i = 0; i + 1 < s.attributes.length; i += 2) {
    const [k, v] = [s.attributes[i] as string, s.attributes[i + 1]];
    attributes[k] = v;
    attributeTypes[k] = typeof v === 'string' ? 'string' : typeof v === 'boolean' ? 'bool' : Number.isInteger(v) && Math.abs(v) < 2 ** 63 ? 'int' : 'double';
  }
  return {
    traceId: s.traceId,
    spanId: s.spanId,
    parentSpanId: s.parentSpanId,
    traceState: s.traceState,
    name: s.name,
    kind: s.kind,
    startTimeUnixNano: BigInt(s.startUs) * 1000n,
    endTimeUnixNano: BigInt(s.endUs) * 1000n,
    attributes,
    attributeTypes,
    status: { code: s.status, message: s.statusMessage },
    resource: RESOURCE,
    scope: SCOPE,
    protocol,
  };
}

const SPANS: SpanRecord[] = [
  span({ attributes: ATTRS, traceState: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE' }),
  span({
    spanId: 'a1b2c3d4e5f60718',
    parentSpanId: '00f067aa0ba902b7',
    kind: SpanKind.Client,
    name: 'router checkout egress',
    status: SpanStatus.Error,
    statusMessage: 'upstream reset: connection refused 🙁',
    attributes: ['server.address', '10.0.0.7', 'server.port', 8080, 'retry', true],
  }),
  span({ spanId: 'ffffffffffffffff', traceId: 'ffffffffffffffffffffffffffffffff', status: SpanStatus.Ok, name: '', startUs: 1, endUs: 2 ** 52 }),
  span({ spanId: '0000000000000001', attributes: ['k', 'v', 'dangling'] }), // odd list: the key without a value is left out
];

t.test('protobuf round trip through the official decoder: every field', async (t) => {
  const body = exportRequestProto(RESOURCE, SCOPE, [encodeSpansProto(SPANS)]);
  const got = decodeProto(body);
  t.equal(got.length, SPANS.length);
  SPANS.forEach((s, i) => t.same(got[i], expected(s, 'http/protobuf'), `span ${i}`));
  t.equal(got[0].attributes['int.unsafe'], 2 ** 60, 'an integer past 2^53 stays an int64');
  t.equal(got[0].attributeTypes['double.huge'], 'double');
  t.same(Object.keys(got[3].attributes), ['k'], 'a dangling key is dropped');
  // Absent fields stay absent (proto3 defaults), not empty messages.
  const raw = OtlpProto.ExportTraceServiceRequest.decode(body).resourceSpans[0].scopeSpans[0].spans;
  t.equal(raw[0].status, null, 'no Status message for an unset status without message');
  t.notOk(Object.hasOwn(raw[0], 'parentSpanId'), 'no parent_span_id on a root span');
  t.notOk(Object.hasOwn(raw[1], 'traceState'), 'no trace_state when none');
  t.ok(Object.hasOwn(raw[0], 'traceState'), 'trace_state when given');
});

t.test('negative and large integers are int64 two\'s complement varints', async (t) => {
  for (const v of [-1, -2, -128, -(2 ** 31), -(2 ** 32), -(2 ** 53 - 1), 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 62, -(2 ** 62)]) {
    const [s] = decodeProto(exportRequestProto({}, SCOPE, [encodeSpansProto([span({ attributes: ['v', v] })])]));
    t.equal(s.attributes.v, v, `${v}`);
    t.equal(s.attributeTypes.v, 'int', `${v} is an int`);
  }
  const [s] = decodeProto(exportRequestProto({}, SCOPE, [encodeSpansProto([span({ attributes: ['v', -1] })])]));
  t.ok(s, 'decodes');
  const bytes = encodeSpansProto([span({ attributes: ['v', -1] })]);
  const hexed = Buffer.from(bytes).toString('hex');
  t.ok(hexed.includes('18ffffffffffffffffff01'), 'int_value -1 is ten bytes: ff×9 01');
});

t.test('bytes equal the official encoder\'s for the same span', async (t) => {
  const s = SPANS[0];
  const attrs = [];
  for (let i = 0; i < s.attributes.length; i += 2) {
    const v = s.attributes[i + 1];
    const value =
      typeof v === 'string' ? { stringValue: v }
      : typeof v === 'boolean' ? { boolValue: v }
      : Number.isInteger(v) && Math.abs(v) < 2 ** 63 ? { intValue: BigInt(v).toString() }
      : { doubleValue: v };
    attrs.push({ key: s.attributes[i], value });
  }
  const official = OtlpProto.Span.encode({
    traceId: Buffer.from(s.traceId, 'hex'),
    spanId: Buffer.from(s.spanId, 'hex'),
    traceState: s.traceState,
    name: s.name,
    kind: s.kind,
    startTimeUnixNano: (BigInt(s.startUs) * 1000n).toString(),
    endTimeUnixNano: (BigInt(s.endUs) * 1000n).toString(),
    attributes: attrs,
  }).finish();
  const ours = encodeSpansProto([s]);
  // Ours is a ScopeSpans.spans entry: tag 0x12, the length (2 bytes here), the Span.
  t.equal(ours[0], 0x12);
  t.same(Buffer.from(ours.subarray(3)).toString('hex'), Buffer.from(official).toString('hex'));
});

t.test('parts from several batches concatenate into one request', async (t) => {
  const a = encodeSpansProto(SPANS.slice(0, 2));
  const b = encodeSpansProto(SPANS.slice(2));
  const empty = encodeSpansProto([]);
  t.equal(empty.length, 0, 'no spans, no bytes');
  t.equal(a.buffer.byteLength, a.length, 'a part owns its ArrayBuffer (transferable)');
  const got = decodeProto(exportRequestProto(new Map(Object.entries(RESOURCE)), SCOPE, [a, empty, b]));
  t.same(got.map((s) => s.spanId), SPANS.map((s) => s.spanId), 'all spans, in order');
  t.same(got[0].resource, RESOURCE, 'resource from a Map');
  t.same(decodeProto(exportRequestProto(RESOURCE, SCOPE, [])), [], 'a request without spans decodes');
});

t.test('big spans and big batches: multi-byte lengths and buffer growth', async (t) => {
  const attributes: (string | number)[] = [];
  for (let i = 0; i < 400; i++) attributes.push(`attr.${i}`, i % 2 ? i : 'v'.repeat(i));
  const big = span({ attributes }); // ~80 KB: a 3-byte span length, past the 64 KiB scratch
  const many = Array.from({ length: 3000 }, (_, i) => span({ spanId: i.toString(16).padStart(16, '0'), attributes: ATTRS }));
  const got = decodeProto(exportRequestProto(RESOURCE, SCOPE, [encodeSpansProto([big]), encodeSpansProto(many)]));
  t.equal(got.length, 3001);
  t.same(got[0], expected(big, 'http/protobuf'));
  t.same(got[3000], expected(many[2999], 'http/protobuf'));
  // The scratch buffer is reused: a later small batch is not polluted by the big one.
  t.same(decodeProto(exportRequestProto(RESOURCE, SCOPE, [encodeSpansProto([SPANS[1]])])), [expected(SPANS[1], 'http/protobuf')]);
});

t.test('lone surrogates become U+FFFD, as Buffer and TextEncoder write them', async (t) => {
  const [s] = decodeProto(exportRequestProto({}, SCOPE, [encodeSpansProto([span({ name: 'a\ud800b', attributes: ['k', '\udc00'] })])]));
  t.equal(s.name, 'a\ufffdb');
  t.equal(s.attributes.k, '\ufffd');
});

t.test('OTLP/JSON: the spec\'s shape, and the same spans as protobuf', async (t) => {
  const text = exportRequestJson(RESOURCE, SCOPE, [encodeSpansJson(SPANS.slice(0, 2)), '', encodeSpansJson(SPANS.slice(2))]);
  const doc = JSON.parse(text);
  const ss = doc.resourceSpans[0].scopeSpans[0];
  t.same(ss.scope, SCOPE);
  t.same(doc.resourceSpans[0].resource.attributes[0], { key: 'service.name', value: { stringValue: 'checkout' } });
  const [root, client] = ss.spans;
  t.equal(root.traceId, '4bf92f3577b34da6a3ce929d0e0e4736', 'trace id as lower-case hex, not base64');
  t.equal(root.spanId, '00f067aa0ba902b7');
  t.notOk('parentSpanId' in root, 'no parentSpanId on a root span');
  t.equal(client.parentSpanId, '00f067aa0ba902b7');
  t.equal(root.kind, 2, 'kind as an integer');
  t.equal(client.kind, 3);
  t.equal(root.startTimeUnixNano, '1700000000123456000', 'time as a decimal string of nanoseconds');
  t.equal(root.endTimeUnixNano, '1700000000124690000');
  t.same(client.status, { message: 'upstream reset: connection refused 🙁', code: 2 }, 'status code as an integer');
  t.notOk('status' in root, 'no status when unset');
  const byKey = Object.fromEntries(root.attributes.map((a: { key: string; value: unknown }) => [a.key, a.value]));
  t.same(byKey['int.neg'], { intValue: '-1' }, 'int64 as a decimal string');
  t.same(byKey['int.unsafe'], { intValue: '1152921504606846976' }, 'past 2^53: exact digits, no exponent');
  t.same(byKey['double'], { doubleValue: 3.25 });
  t.same(byKey['bool.false'], { boolValue: false });
  t.same(byKey['empty'], { stringValue: '' });
  t.same(byKey['unicode'], { stringValue: UNICODE });
  t.same(
    decodeJson(text),
    SPANS.map((s) => expected(s, 'http/json')),
    'JSON and protobuf carry the same spans',
  );
  t.equal(encodeSpansJson([]), '', 'no spans: an empty part');
  t.same(JSON.parse(exportRequestJson({}, SCOPE, [])).resourceSpans[0].scopeSpans[0].spans, [], 'a request without spans parses');
  const special = JSON.parse(exportRequestJson({}, SCOPE, [encodeSpansJson([span({ attributes: ['nan', NaN, 'inf', Infinity, 'ninf', -Infinity] })])]));
  t.same(special.resourceSpans[0].scopeSpans[0].spans[0].attributes.map((a: { value: unknown }) => a.value), [
    { doubleValue: 'NaN' },
    { doubleValue: 'Infinity' },
    { doubleValue: '-Infinity' },
  ], 'non-finite doubles as the proto3 JSON strings');
});
