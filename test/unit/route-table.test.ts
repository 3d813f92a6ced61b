// Unit tests for the route table (route-table.ts), built from configs that went through
// validateConfig so defaults are filled as in production: virtual-host selection by
// Host, path/method/header matching, first-match order, weighted targets, and the
// precomputed route data (rewrites, timeout, direct response).

import t from 'tap';
import { validateConfig } from '../../src/config/validate.js';
import type { Listener } from '../../src/config/types.js';
import { pickTarget, RouteTable, type RouteInput } from '../../src/router/route-table.js';

type Raw = Record<string, unknown>;

/** A validated listener whose routes all forward to clusters named after strings. */
function listener(virtualHosts: Raw[], clusters: string[] = ['a', 'b', 'c']): Listener {
  const result = validateConfig(
    {
      workers: 1,
      listeners: [{ name: 'main', port: 8080, virtual_hosts: virtualHosts }],
      clusters: clusters.map((name, i) => ({ name, endpoints: [{ address: '127.0.0.1', port: 9000 + i }] })),
    },
    { defaultWorkers: 1 },
  );
  if (!result.ok) throw new Error(`test config invalid: ${JSON.stringify(result.errors)}`);
  return result.config.listeners[0];
}

/** A route table whose cluster handles are the cluster names. */
function table(virtualHosts: Raw[]): RouteTable<string> {
  return new RouteTable<string>(listener(virtualHosts), (name) => name);
}

/** A vhost with one catch-all route to `cluster`. */
function vhost(name: string, domains: string[], cluster = 'a'): Raw {
  return { name, domains, routes: [{ name: `${name}-r`, match: { prefix: '/' }, route: { cluster } }] };
}

function req(partial: Partial<RouteInput>): RouteInput {
  return { host: 'any.local', method: 'GET', path: '/', headers: [], query: '', ...partial };
}

/** Name of the vhost chosen for `host`, or null. */
function vhostFor(rt: RouteTable<string>, host: string): string | null {
  return rt.match(req({ host }))?.vhostName ?? null;
}

t.test('virtual host selection', async (t) => {
  const rt = table([
    vhost('exact', ['api.local']),
    vhost('exact-port', ['api.local:8443']),
    vhost('ipv6', ['[::1]']),
    vhost('short-suffix', ['*.example.com']),
    vhost('long-suffix', ['*.api.example.com']),
    vhost('exact-in-suffix', ['www.api.example.com']),
    vhost('default', ['*']),
  ]);
  t.equal(vhostFor(rt, 'api.local'), 'exact', 'an exact domain matches its host');
  t.equal(vhostFor(rt, 'API.Local'), 'exact', 'host matching is case-insensitive');
  t.equal(vhostFor(rt, 'api.local:8080'), 'exact', 'a domain without a port matches the host on any port');
  t.equal(vhostFor(rt, 'api.local:8443'), 'exact-port', 'a domain with a port matches that host:port first');
  t.equal(vhostFor(rt, '[::1]:8080'), 'ipv6', 'a bracketed IPv6 host has its port stripped');
  t.equal(vhostFor(rt, 'a.example.com'), 'short-suffix', '*.example.com matches a direct subdomain');
  t.equal(vhostFor(rt, 'a.b.example.com'), 'short-suffix', '*.example.com matches a deeper subdomain');
  t.equal(vhostFor(rt, 'a.example.com:81'), 'short-suffix', 'suffix matching ignores the port');
  t.equal(vhostFor(rt, 'x.api.example.com'), 'long-suffix', 'the longest matching suffix wins');
  t.equal(vhostFor(rt, 'www.api.example.com'), 'exact-in-suffix', 'an exact domain beats any suffix');
  t.equal(vhostFor(rt, 'example.com'), 'default', '*.example.com does not match example.com itself');
  t.equal(vhostFor(rt, 'other.test'), 'default', 'an unknown host falls back to the * vhost');
  t.equal(vhostFor(rt, ''), 'default', 'a missing Host falls back to the * vhost');

  const noDefault = table([vhost('exact', ['api.local']), vhost('suffix', ['*.example.com'])]);
  t.equal(noDefault.match(req({ host: 'other.test' })), null, 'no matching vhost and no * vhost gives null');
  t.equal(noDefault.match(req({ host: 'api.local.evil' })), null, 'an exact domain is not a prefix match');
});

t.test('path matching: prefix, exact path, whole-path regex', async (t) => {
  const rt = table([
    {
      name: 'v',
      domains: ['*'],
      routes: [
        { name: 'exact', match: { path: '/exact' }, route: { cluster: 'a' } },
        { name: 'regex', match: { regex: '/v[0-9]+' }, route: { cluster: 'a' } },
        { name: 'alt', match: { regex: 'x|/y' }, route: { cluster: 'a' } },
        { name: 'prefix', match: { prefix: '/api' }, route: { cluster: 'a' } },
      ],
    },
  ]);
  const route = (path: string): string | null => rt.match(req({ path }))?.name ?? null;
  t.equal(route('/exact'), 'exact', 'path matches the exact path');
  t.equal(route('/exact/'), null, 'path does not match a longer path');
  t.equal(route('/exac'), null, 'path does not match a shorter path');
  t.equal(route('/v12'), 'regex', 'regex matches the whole path');
  t.equal(route('/v1/x'), null, 'regex must match the whole path, not a prefix of it');
  t.equal(route('/a/v1'), null, 'regex must match the whole path, not a suffix of it');
  t.equal(route('/y'), 'alt', 'an alternation is anchored as a whole');
  t.equal(route('/yy'), null, 'anchoring wraps the alternation (no "x|/y" leak)');
  t.equal(route('/api'), 'prefix', 'prefix matches the prefix itself');
  t.equal(route('/apis'), 'prefix', 'prefix has no segment boundary');
  t.equal(route('/api/x/y'), 'prefix', 'prefix matches longer paths');
  t.equal(route('/API'), null, 'prefix matching is case-sensitive');
  t.equal(route('/other'), null, 'no route matches an unrelated path');
});

t.test('method matching', async (t) => {
  const rt = table([
    {
      name: 'v',
      domains: ['*'],
      routes: [
        { name: 'read', match: { prefix: '/', methods: ['get', 'HEAD'] }, route: { cluster: 'a' } },
        { name: 'write', match: { prefix: '/', methods: ['POST'] }, route: { cluster: 'b' } },
      ],
    },
  ]);
  const route = (method: string): string | null => rt.match(req({ method }))?.name ?? null;
  t.equal(route('GET'), 'read', 'GET matches a route listing "get" (methods are upper-cased)');
  t.equal(route('HEAD'), 'read', 'HEAD matches the read route');
  t.equal(route('POST'), 'write', 'POST skips the read route and matches the write route');
  t.equal(route('DELETE'), null, 'a method no route lists matches nothing');
});

t.test('header matching', async (t) => {
  const rt = table([
    {
      name: 'v',
      domains: ['*'],
      routes: [
        { name: 'exact', match: { prefix: '/e', headers: [{ name: 'X-Tenant', exact: 'acme' }] }, route: { cluster: 'a' } },
        { name: 'regex', match: { prefix: '/r', headers: [{ name: 'x-version', regex: 'v[0-9]+' }] }, route: { cluster: 'a' } },
        { name: 'present', match: { prefix: '/p', headers: [{ name: 'x-debug', present: true }] }, route: { cluster: 'a' } },
        {
          name: 'both',
          match: { prefix: '/b', headers: [{ name: 'x-a', exact: '1' }, { name: 'x-b', present: true }] },
          route: { cluster: 'a' },
        },
      ],
    },
  ]);
  const route = (path: string, headers: string[]): string | null => rt.match(req({ path, headers }))?.name ?? null;
  t.equal(route('/e', ['x-tenant', 'acme']), 'exact', 'exact matches an equal value (name lower-cased by validation)');
  t.equal(route('/e', ['x-tenant', 'acme2']), null, 'exact does not match a longer value');
  t.equal(route('/e', ['x-tenant', 'ACME']), null, 'exact value matching is case-sensitive');
  t.equal(route('/e', []), null, 'exact fails when the header is absent');
  t.equal(route('/e', ['x-other', 'acme', 'x-tenant', 'acme']), 'exact', 'the header may be anywhere in the list');
  t.equal(route('/e', ['x-tenant', 'nope', 'x-tenant', 'acme']), 'exact', 'any of a repeated header may match');
  t.equal(route('/r', ['x-version', 'v42']), 'regex', 'regex matches the whole value');
  t.equal(route('/r', ['x-version', 'v42-beta']), null, 'regex must match the whole value, not a prefix');
  t.equal(route('/r', ['x-version', 'prev1']), null, 'regex must match the whole value, not a suffix');
  t.equal(route('/r', []), null, 'regex fails when the header is absent');
  t.equal(route('/p', ['x-debug', '']), 'present', 'present matches even an empty value');
  t.equal(route('/p', []), null, 'present fails when the header is absent');
  t.equal(route('/b', ['x-a', '1', 'x-b', 'z']), 'both', 'all matchers hold: the route matches');
  t.equal(route('/b', ['x-a', '1']), null, 'one matcher failing fails the route');
});

t.test('the first matching route wins', async (t) => {
  const rt = table([
    {
      name: 'v',
      domains: ['*'],
      routes: [
        { name: 'specific', match: { prefix: '/api/users' }, route: { cluster: 'a' } },
        { name: 'general', match: { prefix: '/api' }, route: { cluster: 'b' } },
        { name: 'shadowed', match: { prefix: '/api/users/admin' }, route: { cluster: 'c' } },
        { name: 'fallback', match: { prefix: '/' }, route: { cluster: 'c' } },
      ],
    },
  ]);
  const route = (path: string): string | null => rt.match(req({ path }))?.name ?? null;
  t.equal(route('/api/users/1'), 'specific', 'the earlier, more specific route wins');
  t.equal(route('/api/orders'), 'general', 'the next route takes what the first does not');
  t.equal(route('/api/users/admin'), 'specific', 'a later route is shadowed by an earlier match');
  t.equal(route('/x'), 'fallback', 'the catch-all takes the rest');
});

t.test('compiled route data: rewrites, timeout, direct response, header edits', async (t) => {
  const rt = table([
    {
      name: 'v',
      domains: ['*'],
      routes: [
        {
          name: 'rw',
          match: { prefix: '/old/' },
          route: { cluster: 'a', prefix_rewrite: '/new/', host_rewrite: 'internal.local', timeout_ms: 250 },
          request_headers_to_add: [{ name: 'X-Via', value: 'remora' }],
          request_headers_to_remove: ['X-Secret'],
          response_headers_to_add: [{ name: 'x-served-by', value: 'r' }],
          response_headers_to_remove: ['server'],
        },
        { name: 'direct', match: { path: '/health' }, direct_response: { status: 418, body: 'teapot' } },
        { name: 'plain', match: { prefix: '/' }, route: { cluster: 'b' } },
      ],
    },
  ]);
  const rw = rt.match(req({ path: '/old/x' }));
  t.ok(rw, 'the rewrite route matches');
  t.equal(rw!.prefixRewrite, '/new/', 'prefix_rewrite is on the compiled route');
  t.equal(rw!.pathValue, '/old/', 'the matched prefix is kept for the rewrite');
  t.equal(rw!.hostRewrite, 'internal.local', 'host_rewrite is on the compiled route');
  t.equal(rw!.timeoutMs, 250, 'timeout_ms is on the compiled route');
  t.same(rw!.requestHeadersToAdd, ['x-via', 'remora'], 'request headers to add are flat, names lower-cased');
  t.ok(rw!.requestHeadersToRemove?.has('x-secret'), 'request headers to remove are a lower-cased set');
  t.same(rw!.responseHeadersToAdd, ['x-served-by', 'r'], 'response headers to add are flat');
  t.ok(rw!.responseHeadersToRemove?.has('server'), 'response headers to remove are a set');
  t.equal(rw!.direct, null, 'a proxy route has no direct response');
  t.equal(pickTarget(rw!).cluster, 'a', 'the single target is the cluster');

  const direct = rt.match(req({ path: '/health' }));
  t.same(direct?.direct, { status: 418, body: 'teapot' }, 'direct_response status and body are compiled');
  t.equal(direct?.targets.length, 0, 'a direct route has no targets');

  const plain = rt.match(req({ path: '/x' }));
  t.equal(plain?.prefixRewrite, null, 'no prefix_rewrite gives null');
  t.equal(plain?.hostRewrite, null, 'no host_rewrite gives null');
  t.equal(plain?.timeoutMs, 15_000, 'timeout_ms defaults to 15000');
  t.equal(plain?.requestHeadersToRemove, null, 'no removals gives null (hot path skips the check)');
  t.equal(plain?.name, 'plain', 'the route keeps its name');
  t.equal(plain?.vhostName, 'v', 'the route knows its vhost');
});

t.test('default route names follow the match, not the position: <vhost>/<hash>', async (t) => {
  const a = { match: { path: '/a' }, route: { cluster: 'a' } };
  const rest = { match: { prefix: '/' }, route: { cluster: 'b' } };
  const rt = table([{ name: 'web', domains: ['*'], routes: [a, rest] }]);
  const nameA = rt.match(req({ path: '/a' }))?.name ?? '';
  const nameRest = rt.match(req({ path: '/b' }))?.name ?? '';
  t.match(nameA, /^web\/[0-9a-f]{8}$/, `an unnamed route is named <vhost>/<8 hex digits>, got ${nameA}`);
  t.not(nameA, nameRest, 'different matches get different names');
  // A route inserted above keeps the others' names (and so their rate-limit buckets).
  const moved = table([{ name: 'web', domains: ['*'], routes: [{ match: { path: '/new' }, route: { cluster: 'a' } }, a, rest] }]);
  t.equal(moved.match(req({ path: '/a' }))?.name, nameA, `inserting a route above keeps the name: expected ${nameA}`);
  t.equal(moved.match(req({ path: '/b' }))?.name, nameRest, `inserting a route above keeps the name: expected ${nameRest}`);
  // The same match twice: the second gets a suffix; methods are part of the identity.
  const names = listener([{ name: 'web', domains: ['*'], routes: [a, a, { match: { path: '/a', methods: ['GET'] }, route: { cluster: 'a' } }] }])
    .virtual_hosts[0].routes.map((r) => r.name);
  t.equal(names[0], nameA, 'the first of two equal matches has the plain hash name');
  t.equal(names[1], `${nameA}-2`, `the second of two equal matches gets -2, got ${names[1]}`);
  t.match(names[2], /^web\/[0-9a-f]{8}$/, 'a route with methods has a name of its own');
  t.not(names[2], nameA, 'methods change the identity');
});

t.test('weighted targets: pickTarget follows the weights', async (t) => {
  const rt = table([
    {
      name: 'v',
      domains: ['*'],
      routes: [
        {
          name: 'w',
          match: { prefix: '/w' },
          route: { weighted_clusters: [{ cluster: 'a', weight: 95 }, { cluster: 'b', weight: 5 }] },
        },
        {
          name: 'z',
          match: { prefix: '/z' },
          route: { weighted_clusters: [{ cluster: 'a', weight: 1 }, { cluster: 'b', weight: 0 }, { cluster: 'c', weight: 3 }] },
        },
      ],
    },
  ]);
  const n = 100_000;
  const count = (path: string): Record<string, number> => {
    const route = rt.match(req({ path }))!;
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const c = pickTarget(route).cluster ?? '(none)';
      counts[c] = (counts[c] ?? 0) + 1;
    }
    return counts;
  };
  const w = count('/w');
  t.ok(Math.abs(w.a / n - 0.95) < 0.01, `95/5: cluster a gets 95% ± 1pp (got ${((w.a / n) * 100).toFixed(2)}%)`);
  t.ok(Math.abs(w.b / n - 0.05) < 0.01, `95/5: cluster b gets 5% ± 1pp (got ${((w.b / n) * 100).toFixed(2)}%)`);

  const z = count('/z');
  t.equal(z.b, undefined, 'a weight-0 cluster is never picked');
  t.ok(Math.abs(z.a / n - 0.25) < 0.01, `1/0/3: cluster a gets 25% ± 1pp (got ${((z.a / n) * 100).toFixed(2)}%)`);
  t.ok(Math.abs(z.c / n - 0.75) < 0.01, `1/0/3: cluster c gets 75% ± 1pp (got ${((z.c / n) * 100).toFixed(2)}%)`);
  const zr = rt.match(req({ path: '/z' }))!;
  t.equal(zr.totalWeight, 4, 'total weight sums the weights');
  t.same(zr.targets.map((x) => x.cluster), ['a', 'c'], 'weight-0 clusters are left out of the targets');
});
