// Path rewrites by regular expression (src/router/regex-rewrite.ts): RE2's ReplaceAll
// substitution syntax, every match replaced, problems named.

import t from 'tap';
import { applyRegexRewrite, compileRegexRewrite, regexRewriteProblem } from '../../src/router/regex-rewrite.js';

const rewrite = (pattern: string, substitution: string, path: string): string => applyRegexRewrite(compileRegexRewrite({ pattern, substitution }), path);

t.test('substitutions', async (t) => {
  t.equal(rewrite('^/api/(v[0-9]+)/', '/\\1/', '/api/v2/users'), '/v2/users', 'a capture group');
  t.equal(rewrite('o', '0', '/foo/boo'), '/f00/b00', 'every match, not the first only (ReplaceAll)');
  t.equal(rewrite('^/(a)(b)', '/\\2\\1\\0', '/abc'), '/ba/abc', 'groups in any order; \\0 is the whole match');
  t.equal(rewrite('^/x', '/\\\\y$1$&', '/x'), '/\\y$1$&', '\\\\ is a backslash; $ is plain text');
  t.equal(rewrite('^/redirect\\/*', '/', '/redirect//a'), '/a', 'Envoy Gateway\'s pattern for a path-separated prefix');
  t.equal(rewrite('^/(a)?b', '/[\\1]', '/b'), '/[]', 'a group that did not take part gives ""');
});

t.test('problems', async (t) => {
  t.equal(regexRewriteProblem({ pattern: '^/(a)', substitution: '\\2' }), 'substitution uses \\2, but the pattern has 1 capture group');
  t.equal(regexRewriteProblem({ pattern: '^/a', substitution: '\\n' }), 'substitution has a backslash that is not followed by a digit or a backslash (write \\\\ for one)');
  t.equal(regexRewriteProblem({ pattern: '^/a', substitution: 'x\\' }), 'substitution has a backslash that is not followed by a digit or a backslash (write \\\\ for one)', 'a trailing backslash');
  t.equal(regexRewriteProblem({ pattern: '^/(a)(b)', substitution: '\\1\\2' }), undefined);
});
