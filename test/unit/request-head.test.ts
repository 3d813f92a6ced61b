// Unit tests for the request-head checks (src/http/request-head.ts): target forms, Host
// rules (RFC 9110 §7.2, RFC 9112 §3.2), header count, Transfer-Encoding and Expect.
import t, { type Test } from 'tap';
import { checkRequestHead, isRefusal, isValidHost, type CheckedHead } from '../../src/http/request-head.js';

const LIMITS = { maxHeaders: 10 };
const check = (method: string, target: string, raw: string[], minor = 1) => checkRequestHead(method, target, minor, raw, LIMITS);

function ok(t: Test, head: ReturnType<typeof check>, what: string): CheckedHead {
  if (isRefusal(head)) {
    t.fail(`${what}: expected the head to pass; refused ${head.status} ${head.reason}`);
    return { path: '', query: '', headers: [] };
  }
  t.pass(what);
  return head;
}

t.test('origin-form targets split into path and query; names lower-cased', async (t) => {
  const h = ok(t, check('GET', '/a/b?x=1&y', ['Host', 'a', 'X-Foo', 'Bar']), 'origin form');
  t.equal(h.path, '/a/b');
  t.equal(h.query, 'x=1&y');
  t.same(h.headers, ['host', 'a', 'x-foo', 'Bar']);
});

t.test('absolute form: the authority wins over Host', async (t) => {
  const h = ok(t, check('GET', 'http://b.test:81/p?q', ['Host', 'a']), 'absolute form');
  t.equal(h.path, '/p');
  t.equal(h.query, 'q');
  t.same(h.headers, ['host', 'b.test:81'], 'expected Host replaced by the target authority');
  const bare = ok(t, check('GET', 'HTTP://b.test', ['Host', 'a']), 'scheme is case-insensitive; empty path');
  t.equal(bare.path, '/', 'an empty path is /');
  for (const target of ['ftp://b/x', 'http://user@b/x', 'http:///x', 'x', 'b.test:80']) {
    const r = check('GET', target, ['Host', 'a']);
    t.ok(isRefusal(r) && r.status === 400, `${target} → 400`);
  }
});

t.test('asterisk form is OPTIONS only; CONNECT is not supported', async (t) => {
  t.equal(ok(t, check('OPTIONS', '*', ['Host', 'a']), 'OPTIONS *').path, '*');
  const get = check('GET', '*', ['Host', 'a']);
  t.ok(isRefusal(get) && get.status === 400, 'GET * → 400');
  const connect = check('CONNECT', 'a:443', ['Host', 'a']);
  t.ok(isRefusal(connect) && connect.status === 501, 'CONNECT → 501');
});

t.test('exactly one valid Host', async (t) => {
  const refused = (raw: string[], minor = 1) => {
    const r = check('GET', '/', raw, minor);
    return isRefusal(r) && r.status === 400;
  };
  t.ok(refused([]), 'missing Host on HTTP/1.1 → 400');
  ok(t, check('GET', '/', [], 0), 'missing Host on HTTP/1.0 is fine');
  t.ok(refused(['Host', 'a', 'Host', 'a']), 'two identical Hosts → 400');
  t.ok(refused(['Host', 'a', 'host', 'b']), 'two different Hosts → 400');
  for (const bad of ['', 'a b', 'a, b', 'u@a', 'a/b', 'a:x', 'a:123456', '[::1', '[zz]', 'é']) t.ok(refused(['Host', bad]), `Host ${JSON.stringify(bad)} → 400`);
  for (const good of ['a', 'a.example:8080', '127.0.0.1', '[::1]:443', 'a:', 'xn--bcher-kva.example']) t.ok(isValidHost(good), `Host ${good} is valid`);
});

t.test('target characters', async (t) => {
  for (const bad of ['/a b', '/a%zz', '/a%2', '/a\x7f', '/a#frag']) {
    const r = check('GET', bad, ['Host', 'a']);
    t.ok(isRefusal(r) && r.status === 400, `${JSON.stringify(bad)} → 400`);
  }
  ok(t, check('GET', '/a%2Fb?q={"x":[1]}|^', ['Host', 'a']), 'pct-encoding and the query characters real clients send');
});

t.test('header count, Transfer-Encoding, Expect', async (t) => {
  const many = ['Host', 'a'];
  for (let i = 0; i < 10; i++) many.push(`x-${i}`, 'v');
  const r431 = check('GET', '/', many);
  t.ok(isRefusal(r431) && r431.status === 431, '11 headers with a limit of 10 → 431');
  const te = (v: string, minor = 1) => check('POST', '/', ['Host', 'a', 'Transfer-Encoding', v], minor);
  ok(t, te('chunked'), 'TE chunked passes');
  ok(t, te('Chunked'), 'TE is case-insensitive');
  for (const v of ['gzip, chunked', 'identity', 'chunked, identity']) {
    const r = te(v);
    t.ok(isRefusal(r) && r.status === 501, `TE ${v} → 501`);
  }
  const ten = te('chunked', 0);
  t.ok(isRefusal(ten) && ten.status === 400, 'TE in an HTTP/1.0 request → 400');
  const cont = ok(t, check('POST', '/', ['Host', 'a', 'Expect', '100-continue']), 'Expect: 100-continue passes');
  t.same(cont.headers, ['host', 'a'], 'Expect is answered by the proxy, not forwarded');
  const other = check('POST', '/', ['Host', 'a', 'Expect', 'magic']);
  t.ok(isRefusal(other) && other.status === 417, 'another expectation → 417');
});
