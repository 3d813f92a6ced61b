// Unit tests for what the pipeline reads from a request head (src/http/request-facts.ts):
// framing, Host, control headers, and the refusals.

import t from 'tap';
import { readRequestFacts, underscoreHeaders } from '../../src/http/request-facts.js';

const read = (headers: string[], max = 64 * 1024) => readRequestFacts('GET', '/', '', headers, max);

t.test('facts of a plain head', async (t) => {
  const f = read(['host', 'a', 'x-request-id', 'id', 'connection', 'close', 'x-envoy-retry-on', '5xx', 'x-remora-retry-on', 'reset', 'x-envoy-max-retries', '3']);
  t.equal(f.refusal, null);
  t.equal(f.host, 'a');
  t.equal(f.requestId, 'id');
  t.equal(f.connection, 'close');
  t.equal(f.retryOn, '5xx,reset');
  t.equal(f.maxRetries, '3');
  t.equal(f.framing, 'none');
  t.notOk(f.hasBody);
});

t.test('framing', async (t) => {
  t.equal(read(['content-length', '5']).framing, 'fixed');
  t.equal(read(['content-length', '0']).framing, 'none');
  t.equal(read(['transfer-encoding', 'chunked']).framing, 'chunked');
});

t.test('refusals', async (t) => {
  const cases: [string[], number, string][] = [
    [['x', 'a\u0001'], 400, 'invalid value in header x'],
    [['host', 'a', 'host', 'b'], 400, 'more than one host header'],
    [['content-length', 'x'], 400, 'invalid content-length'],
    [['content-length', '1', 'content-length', '2'], 400, 'conflicting content-length headers'],
    [['content-length', '1', 'transfer-encoding', 'chunked'], 400, 'both content-length and transfer-encoding'],
    [['transfer-encoding', 'gzip'], 501, 'transfer-encoding "gzip" not supported'],
  ];
  for (const [headers, status, reason] of cases) {
    const f = read(headers);
    t.same(f.refusal, { status, reason }, reason);
  }
  t.same(read(['x', 'y'.repeat(2000)], 1024).refusal, { status: 431, reason: 'request headers larger than 1 KiB' });
  t.equal(read(['x-request-id', 'mine', 'host', 'a', 'host', 'b']).requestId, 'mine', 'the id read before the refusal is kept');
});

t.test('headers_with_underscores_action', async (t) => {
  const head = (): string[] => ['host', 'a', 'x_user', 'mallory', 'x-user', 'alice', 'my_other', 'v', 'accept', '*/*'];
  const allow = head();
  t.equal(underscoreHeaders('allow', allow), false, 'allow: never refuses');
  t.same(allow, head(), 'allow: the list is untouched');
  const reject = head();
  t.equal(underscoreHeaders('reject_request', reject), true, 'reject_request: a name with _ refuses the request');
  t.same(reject, head(), 'and leaves the list as it was');
  t.equal(underscoreHeaders('reject_request', ['host', 'a', 'x-user', 'b']), false, 'no underscore: not refused');
  const drop = head();
  t.equal(underscoreHeaders('drop_header', drop), false, 'drop_header: never refuses');
  t.same(drop, ['host', 'a', 'x-user', 'alice', 'accept', '*/*'], 'every header named with _ is dropped, the rest kept in order');
  const onlyUnderscores = ['a_b', '1', 'c_d', '2'];
  underscoreHeaders('drop_header', onlyUnderscores);
  t.same(onlyUnderscores, [], 'all of them dropped');
});
