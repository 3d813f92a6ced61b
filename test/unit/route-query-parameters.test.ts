// Unit tests for routes matched on query parameters (route-table.ts, Envoy's
// `query_parameters`): exact, whole-value regex and present matchers, percent-decoding of
// names and values, the first occurrence of a repeated name, a name without "=", and
// every matcher required; the validation of a matcher; and Envoy's QueryParameterMatcher
// through the xDS translation and Remora's own encoding (translate-route-match.ts,
// encode-route.ts).

import t from 'tap';
import { validateConfig } from '../../src/config/validate.js';
import type { Listener } from '../../src/config/types.js';
import { RouteTable } from '../../src/router/route-table.js';
import { translateXds } from '../../src/xds/translate.js';
import { baseOf, errorsOf, overTheWire, rewire, valid, type Obj } from '../helpers/xds.js';

type Raw = Record<string, unknown>;

function config(routes: Raw[]) {
  return {
    workers: 1,
    listeners: [{ name: 'main', port: 8080, virtual_hosts: [{ name: 'all', domains: ['*'], routes }] }],
    clusters: [{ name: 'a', endpoints: [{ address: '127.0.0.1', port: 9000 }] }],
  };
}

function listener(routes: Raw[]): Listener {
  const r = validateConfig(config(routes), { defaultWorkers: 1 });
  if (!r.ok) throw new Error(`test config invalid: ${JSON.stringify(r.errors.slice(0, 3))}`);
  return r.config.listeners[0];
}

const to = (name: string, query: Raw[]): Raw => ({ name, match: { prefix: '/', query_parameters: query }, route: { cluster: 'a' } });

t.test('query parameter matchers pick the route', async (t) => {
  const table = new RouteTable<string>(listener([
    to('debug', [{ name: 'debug', exact: 'yes' }]),
    to('version', [{ name: 'v', regex: '[0-9]+' }]),
    to('both', [{ name: 'a b', exact: 'x/y' }, { name: 'flag', present: true }]),
    to('flag', [{ name: 'flag', present: true }]),
    { name: 'rest', match: { prefix: '/' }, route: { cluster: 'a' } },
  ]), (n) => n);
  const pick = (query: string): string | null => table.match({ host: 'h', method: 'GET', path: '/p', headers: [], query })?.name ?? null;
  const cases: [string, string][] = [
    ['debug=yes', 'debug'],
    ['debug=YES', 'rest'], // values are case-sensitive
    ['x=1&debug=yes', 'debug'],
    ['debug=no&debug=yes', 'rest'], // the first occurrence is tested
    ['v=12', 'version'],
    ['v=12a', 'rest'], // the regex matches the whole value
    ['a%20b=x%2Fy&flag', 'both'], // names and values percent-decoded; "flag" without "="
    ['a%20b=x%2Fy', 'rest'], // every matcher must match
    ['flag=', 'flag'],
    ['flagged=1', 'rest'],
    ['', 'rest'],
    ['debug=%E0%A4%A', 'rest'], // not valid percent-encoding: compared as sent
  ];
  t.same(cases.map(([q]) => [q, pick(q)]), cases, 'expected each query to get its route');
});

t.test('a matcher needs exactly one of exact, regex and present', async (t) => {
  const r = validateConfig(config([to('r', [{ name: 'q' }, { name: 'q', exact: 'a', present: true }, { name: '', exact: 'a' }])]), { defaultWorkers: 1 });
  const errors = r.ok ? [] : r.errors.map((e) => e.path);
  const base = 'listeners[0].virtual_hosts[0].routes[0].match.query_parameters';
  t.same(errors.sort(), [`${base}[0]`, `${base}[1]`, `${base}[2].name`].sort(), `expected errors at each bad matcher (saw ${JSON.stringify(r.ok ? [] : r.errors)})`);
});

t.test('Envoy\'s QueryParameterMatcher, both ways', async (t) => {
  const c = valid(config([to('r', [{ name: 'debug', exact: 'yes' }, { name: 'v', regex: '[0-9]+' }, { name: 'flag', present: true }]), { name: 'rest', match: { prefix: '/' }, route: { cluster: 'a' } }]));
  const set = overTheWire(c, false);
  const back = translateXds(baseOf(c), set);
  t.same(errorsOf(back), []);
  t.same(back.ok ? back.config.listeners[0].virtual_hosts[0].routes[0].match.query_parameters : null, c.listeners[0].virtual_hosts[0].routes[0].match.query_parameters,
    'exact, regex and present survive Remora\'s encoding and the translation');
  t.same(back.ok ? back.config.listeners[0].virtual_hosts[0].routes[1].match.query_parameters : null, [], 'a route without stays without');

  const routeOf = (s: ReturnType<typeof rewire>): Obj => ((s.routes.get('main') ?? [...s.routes.values()][0]).virtual_hosts as Obj[])[0].routes as unknown as Obj;
  const edit = (q: Obj[]) => {
    const s = overTheWire(c, false);
    ((routeOf(s) as unknown as Obj[])[0].match as Obj).query_parameters = q;
    return errorsOf(translateXds(baseOf(c), rewire(s)));
  };
  t.match(edit([{ name: 'q', string_match: { exact: 'a', ignore_case: true } }]).join('\n'), /query_parameters\[0\]\.string_match\.ignore_case: true is not supported/);
  t.match(edit([{ name: 'q', string_match: { prefix: 'a' } }]).join('\n'), /query_parameters\[0\]\.string_match\.prefix: field not supported/);
  t.match(edit([{ name: 'q' }]).join('\n'), /query_parameters\[0\]: needs string_match or present_match: true/);
});
