// Unit tests for src/http/trace-context.ts: generated traceparents (shape, uniqueness,
// never all-zero ids) and reading a request's trace id (W3C first, then B3).

import t from 'tap';
import {
  hasTraceparent,
  isB3TraceId,
  newTraceparent,
  traceIdOfRequest,
  traceIdOfTraceparent,
} from '../../src/http/trace-context.js';

const SHAPE = /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/;
const VALID = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

t.test('newTraceparent: W3C version 00, sampled, random, parseable', async (t) => {
  const seenTraces = new Set<string>();
  const seenSpans = new Set<string>();
  const n = 1000; // more than one refill of the random pool
  for (let i = 0; i < n; i++) {
    const tp = newTraceparent();
    if (!SHAPE.test(tp)) t.fail(`expected ${SHAPE}, got ${tp}`);
    const [, traceId, spanId] = tp.split('-');
    seenTraces.add(traceId);
    seenSpans.add(spanId);
    if (traceId === '0'.repeat(32) || spanId === '0'.repeat(16)) t.fail(`all-zero id in ${tp}`);
    if (traceIdOfTraceparent(tp) !== traceId) t.fail(`generated ${tp} does not parse back to its trace id`);
  }
  t.equal(seenTraces.size, n, 'every trace id differs');
  t.equal(seenSpans.size, n, 'every span id differs');
});

t.test('traceIdOfTraceparent', async (t) => {
  t.equal(traceIdOfTraceparent(VALID), '4bf92f3577b34da6a3ce929d0e0e4736');
  t.equal(traceIdOfTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00'), '4bf92f3577b34da6a3ce929d0e0e4736', 'unsampled is still valid');
  t.equal(traceIdOfTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra'), '4bf92f3577b34da6a3ce929d0e0e4736', 'a future version may carry more fields');
  for (const bad of [
    '',
    'garbage',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01', // all-zero trace id
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', // all-zero parent id
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', // version ff is invalid
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', // upper case
    '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01', // short trace id
    `${VALID}-extra`, // version 00 has exactly four fields
  ]) {
    t.equal(traceIdOfTraceparent(bad), null, `invalid: ${JSON.stringify(bad)}`);
  }
});

t.test('traceIdOfRequest: traceparent first, then x-b3-traceid', async (t) => {
  const b3 = '80f198ee56343ba864fe8b2a57d3eff7';
  t.equal(traceIdOfRequest(['host', 'a', 'traceparent', VALID, 'x-b3-traceid', b3]), '4bf92f3577b34da6a3ce929d0e0e4736');
  t.equal(traceIdOfRequest(['x-b3-traceid', b3, 'traceparent', VALID]), '4bf92f3577b34da6a3ce929d0e0e4736', 'order does not matter');
  t.equal(traceIdOfRequest(['host', 'a', 'x-b3-traceid', b3]), b3, 'B3 128-bit');
  t.equal(traceIdOfRequest(['x-b3-traceid', 'a3ce929d0e0e4736']), 'a3ce929d0e0e4736', 'B3 64-bit');
  t.equal(traceIdOfRequest(['x-b3-traceid', 'not-hex']), null, 'invalid B3 id');
  t.equal(traceIdOfRequest(['traceparent', 'bad', 'x-b3-traceid', b3]), null, 'an invalid traceparent is not replaced by B3');
  t.equal(traceIdOfRequest(['host', 'a']), null, 'none');
  t.ok(isB3TraceId(b3));
  t.notOk(isB3TraceId(`${b3}0`));
});

t.test('hasTraceparent', async (t) => {
  t.ok(hasTraceparent(['host', 'a', 'traceparent', VALID]));
  t.notOk(hasTraceparent(['host', 'traceparent']), 'a value equal to "traceparent" is not a header named so');
  t.notOk(hasTraceparent([]));
});
