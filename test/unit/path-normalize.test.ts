// Unit tests for path normalisation (src/http/path-normalize.ts), Envoy's options.
import t from 'tap';
import { normalizePath, removeDotSegments, type PathNormalization } from '../../src/http/path-normalize.js';

const DEFAULTS: PathNormalization = { normalize_path: true, merge_slashes: false, path_with_escaped_slashes_action: 'keep_unchanged' };
const norm = (p: string, o: Partial<PathNormalization> = {}) => normalizePath(p, { ...DEFAULTS, ...o });

t.test('RFC 3986 dot segments (§5.2.4 examples)', async (t) => {
  const cases: [string, string][] = [
    ['/a/b/c/./../../g', '/a/g'],
    ['/mid/content=5/../6', '/mid/6'],
    ['/public/../private/x', '/private/x'],
    ['/..', '/'],
    ['/../../x', '/x'],
    ['/a/.', '/a/'],
    ['/a/..', '/'],
    ['/a/b/', '/a/b/'],
    ['/a/.b/..c', '/a/.b/..c'],
  ];
  for (const [input, want] of cases) t.equal(removeDotSegments(input), want, `${input} → ${want}`);
});

t.test('percent-decoding of unreserved characters, then dot segments', async (t) => {
  t.same(norm('/public/%2e%2E/private/x'), { kind: 'ok', path: '/private/x' });
  t.same(norm('/a%7eb%41'), { kind: 'ok', path: '/a~bA' });
  t.same(norm('/a%2fb%3a'), { kind: 'ok', path: '/a%2Fb%3A' }, 'reserved escapes stay, upper-cased');
  t.same(norm('/plain/path'), { kind: 'ok', path: '/plain/path' });
  t.same(norm('*'), { kind: 'ok', path: '*' });
  t.same(norm('/a/../b', { normalize_path: false }), { kind: 'ok', path: '/a/../b' }, 'off: unchanged');
});

t.test('merge_slashes', async (t) => {
  t.same(norm('//a///b/', { merge_slashes: true }), { kind: 'ok', path: '/a/b/' });
  t.same(norm('//a///b/'), { kind: 'ok', path: '//a///b/' }, 'off by default');
});

t.test('path_with_escaped_slashes_action', async (t) => {
  t.same(norm('/a%2F..%2Fb'), { kind: 'ok', path: '/a%2F..%2Fb' }, 'keep_unchanged');
  t.same(norm('/a%2fb', { path_with_escaped_slashes_action: 'reject_request' }), { kind: 'reject', reason: 'escaped slash in path' });
  t.same(norm('/a%2F..%2Fb', { path_with_escaped_slashes_action: 'unescape_and_forward' }), { kind: 'ok', path: '/b' });
  t.same(norm('/a%5Cb', { path_with_escaped_slashes_action: 'unescape_and_forward' }), { kind: 'ok', path: '/a\\b' });
  t.same(norm('/x/%2F..%2Fy', { path_with_escaped_slashes_action: 'unescape_and_redirect' }), { kind: 'redirect', path: '/x/y' });
});
