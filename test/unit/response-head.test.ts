// Unit tests for the client's response head (src/http/response-head.ts): filtering of the
// upstream's headers, date/server per server_header_transformation, the route's edits,
// the service-time header, and local reply headers.

import t from 'tap';
import { asksHealthCheckFail, compileResponseHeadPolicy, isBodylessStatus, localReplyHeaders, writeResponseHead } from '../../src/http/response-head.js';

function written(headers: string[], policy = compileResponseHeadPolicy([], [], 'remora', 'overwrite'), writesDate = false, draining = false) {
  const out: string[] = [];
  const cl = writeResponseHead({ writeHeader: (n, v) => out.push(n, v) }, headers, policy, writesDate, draining, 7);
  return { out, cl, get: (n: string) => out.filter((_, i) => i % 2 === 0 && out[i] === n).length };
}

t.test('hop-by-hop, Connection-listed and content-length are dropped; content-length returned', async (t) => {
  const r = written(['content-length', '12', 'connection', 'x-hop', 'x-hop', '1', 'transfer-encoding', 'chunked', 'x-remora-immediate-health-check-fail', 'true', 'x-ok', '1', 'date', 'D']);
  t.equal(r.cl, 12);
  t.same(r.out, ['x-ok', '1', 'date', 'D', 'server', 'remora', 'x-remora-upstream-service-time', '7']);
});

t.test('server_header_transformation', async (t) => {
  const up = ['server', 'up', 'date', 'D'];
  t.same(written(up, compileResponseHeadPolicy([], [], 'r', 'overwrite')).out.slice(0, 6), ['date', 'D', 'server', 'r', 'x-remora-upstream-service-time', '7']);
  t.same(written(up, compileResponseHeadPolicy([], [], 'r', 'append_if_absent')).out.slice(0, 4), ['server', 'up', 'date', 'D']);
  t.equal(written(['date', 'D'], compileResponseHeadPolicy([], [], 'r', 'append_if_absent')).get('server'), 1);
  t.equal(written(['date', 'D'], compileResponseHeadPolicy([], [], 'r', 'pass_through')).get('server'), 0);
});

t.test('date: the proxy adds one unless the front end writes it or the route removes it', async (t) => {
  t.equal(written([]).get('date'), 1);
  t.equal(written([], undefined, true).get('date'), 0);
  t.equal(written(['date', 'a', 'date', 'b']).get('date'), 1, 'one date only');
  t.equal(written([], compileResponseHeadPolicy([], ['date'], 'r', 'overwrite')).get('date'), 0);
});

t.test('route edits, draining, service time removal', async (t) => {
  const p = compileResponseHeadPolicy([{ name: 'x-add', value: 'v' }], ['x-gone', 'server', 'x-remora-upstream-service-time'], 'r', 'overwrite');
  const r = written(['x-gone', '1', 'date', 'D'], p, false, true);
  t.same(r.out, ['date', 'D', 'x-add', 'v', 'connection', 'close']);
});

t.test('helpers', async (t) => {
  t.ok(asksHealthCheckFail(['x-remora-immediate-health-check-fail', 'true']));
  t.notOk(asksHealthCheckFail(['x', 'y']));
  t.ok(isBodylessStatus(204) && isBodylessStatus(304) && !isBodylessStatus(200));
  t.same(localReplyHeaders(true, 'DR', 'id', null, ['x-a', '1']), ['content-type', 'text/plain', 'x-a', '1']);
  t.same(localReplyHeaders(false, 'NR', 'id', ['e', '2'], null), ['content-type', 'text/plain; charset=utf-8', 'x-remora-flags', 'NR', 'x-request-id', 'id', 'e', '2']);
});
