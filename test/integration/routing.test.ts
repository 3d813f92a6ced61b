// Routing end to end through the real proxy: virtual hosts by Host, prefix / exact /
// regex paths, method and header matchers, prefix_rewrite, regex_rewrite and host_rewrite as the
// upstream sees them, direct responses, redirects, 404 NR, and a per-route timeout (504 UT).

import t from 'tap';
import type http from 'node:http';
import { namedUpstream, request, startRemora, startUpstream, type Reply } from '../helpers/remora.js';
import { runProgram } from '../helpers/tcp-peers.js';

/** What the echo upstream saw: request line pieces and a few headers. */
interface Seen {
  method: string;
  url: string;
  host: string;
  forwardedHost: string;
}

/** An upstream that answers with a JSON description of the request it received. */
function echoUpstream() {
  return startUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      const seen: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        host: req.headers.host ?? '',
        forwardedHost: String(req.headers['x-forwarded-host'] ?? ''),
      };
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'echo' });
      res.end(JSON.stringify(seen));
    });
  });
}

/** An upstream that answers only after `delayMs` (for timeouts). */
function slowUpstream(delayMs: number) {
  const timers = new Set<NodeJS.Timeout>();
  const handler: http.RequestListener = (req, res) => {
    req.resume();
    const timer = setTimeout(() => {
      timers.delete(timer);
      res.writeHead(200, { 'x-upstream': 'slow' });
      res.end('slow');
    }, delayMs);
    timers.add(timer);
  };
  return startUpstream(handler).then((up) => ({
    ...up,
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      await up.close();
    },
  }));
}

const cluster = (name: string, port: number) => ({ name, endpoints: [{ address: '127.0.0.1', port }] });
const to = (c: string, extra: Record<string, unknown> = {}) => ({ cluster: c, ...extra });

t.test('routing through the real proxy', async (t) => {
  const [a, b, c, echo, slow] = await Promise.all([
    namedUpstream('a'),
    namedUpstream('b'),
    namedUpstream('c'),
    echoUpstream(),
    slowUpstream(3000),
  ]);
  const config = {
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [
      {
        name: 'main',
        address: '127.0.0.1',
        port: 0,
        virtual_hosts: [
          {
            name: 'api',
            domains: ['api.local'],
            routes: [
              { name: 'exact', match: { path: '/exact' }, route: to('b') },
              { name: 'regex', match: { regex: '/v[0-9]+/items' }, route: to('c') },
              { name: 'rewrite', match: { prefix: '/old/' }, route: to('echo', { prefix_rewrite: '/new/' }) },
              { name: 'strip', match: { prefix: '/strip' }, route: to('echo', { prefix_rewrite: '' }) },
              { name: 'versioned', match: { prefix: '/api/' }, route: to('echo', { regex_rewrite: { pattern: '^/api/(v[0-9]+)/(\\w+)', substitution: '/\\2/\\1' } }) },
              { name: 'host', match: { prefix: '/host/' }, route: to('echo', { host_rewrite: 'internal.svc:8080' }) },
              {
                name: 'weighted-host', match: { prefix: '/canary/' },
                route: { weighted_clusters: [{ cluster: 'echo', weight: 1, host_rewrite: 'canary.internal' }, { cluster: 'a', weight: 0 }], host_rewrite: 'route.internal' },
              },
              { name: 'echo', match: { prefix: '/echo/' }, route: to('echo') },
              { name: 'post-only', match: { prefix: '/m', methods: ['POST', 'PUT'] }, route: to('b') },
              { name: 'canary', match: { prefix: '/h', headers: [{ name: 'X-Canary', exact: 'yes' }] }, route: to('c') },
              { name: 'beta', match: { prefix: '/h', headers: [{ name: 'x-beta', present: true }] }, route: to('b') },
              { name: 'direct', match: { path: '/direct' }, direct_response: { status: 201, body: 'made here' } },
              {
                name: 'direct-headers',
                match: { path: '/direct-headers' },
                direct_response: { status: 200, body: 'edited' },
                response_headers_to_add: [{ name: 'x-served-by', value: 'remora' }, { name: 'cache-control', value: 'no-store' }],
              },
              { name: 'slow', match: { prefix: '/slow' }, route: to('slow', { timeout_ms: 300 }) },
              { name: 'rest', match: { prefix: '/' }, route: to('a') },
            ],
          },
          { name: 'api-admin-port', domains: ['api.local:9999'], routes: [{ match: { prefix: '/' }, route: to('c') }] },
          { name: 'web', domains: ['*.web.local'], routes: [{ match: { prefix: '/' }, route: to('c') }] },
          { name: 'strict', domains: ['strict.local'], routes: [{ match: { path: '/only' }, route: to('a') }] },
        ],
      },
    ],
    clusters: [
      cluster('a', a.port),
      cluster('b', b.port),
      cluster('c', c.port),
      cluster('echo', echo.port),
      cluster('slow', slow.port),
    ],
  };
  const remora = await startRemora(config);
  t.teardown(async () => {
    await remora.stop();
    await Promise.all([a, b, c, echo, slow].map((u) => u.close()));
  });
  const port = remora.ports.main;
  const send = (host: string, path: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> =>
    request(port, { path, method: opts.method, headers: { host, ...(opts.headers ?? {}) } });
  const upstreamOf = (r: Reply): string => String(r.headers['x-upstream'] ?? `(status ${r.status}: ${r.text.trim()})`);
  const echoOf = (r: Reply): Seen => {
    if (r.status !== 200 || r.headers['x-upstream'] !== 'echo') throw new Error(`expected the echo upstream, got ${r.status} ${r.text}`);
    return JSON.parse(r.text) as Seen;
  };

  t.test('virtual hosts by Host', async (t) => {
    t.equal(upstreamOf(await send('api.local', '/x')), 'a', 'api.local → api vhost → a');
    t.equal(upstreamOf(await send('API.LOCAL', '/x')), 'a', 'Host is matched case-insensitively');
    t.equal(upstreamOf(await send('api.local:1234', '/x')), 'a', 'a port in Host is ignored for a domain without one');
    t.equal(upstreamOf(await send('api.local:9999', '/x')), 'c', 'api.local:9999 matches the domain with that port');
    t.equal(upstreamOf(await send('shop.web.local', '/x')), 'c', '*.web.local matches a subdomain');
    t.equal(upstreamOf(await send('a.b.web.local', '/x')), 'c', '*.web.local matches a deeper subdomain');
    const bare = await send('web.local', '/x');
    t.equal(bare.status, 404, '*.web.local does not match web.local itself → 404');
    t.equal(bare.headers['x-remora-flags'], 'NR', 'the 404 carries flag NR');
  });

  t.test('prefix, exact and regex paths', async (t) => {
    t.equal(upstreamOf(await send('api.local', '/exact')), 'b', 'exact path → b');
    t.equal(upstreamOf(await send('api.local', '/exact?q=1')), 'b', 'exact path ignores the query string');
    t.equal(upstreamOf(await send('api.local', '/exact/more')), 'a', 'a longer path is not an exact match → fallback a');
    t.equal(upstreamOf(await send('api.local', '/v2/items')), 'c', 'regex matches the whole path → c');
    t.equal(upstreamOf(await send('api.local', '/v2/items/9')), 'a', 'regex does not match a longer path → fallback a');
    t.equal(upstreamOf(await send('api.local', '/x/v2/items')), 'a', 'regex is anchored at the start → fallback a');
    t.equal(upstreamOf(await send('api.local', '/echo/deep/path')), 'echo', 'prefix matches deeper paths');
  });

  t.test('method matching', async (t) => {
    t.equal(upstreamOf(await send('api.local', '/m', { method: 'POST' })), 'b', 'POST matches the POST/PUT route');
    t.equal(upstreamOf(await send('api.local', '/m', { method: 'PUT' })), 'b', 'PUT matches the POST/PUT route');
    t.equal(upstreamOf(await send('api.local', '/m')), 'a', 'GET skips the POST/PUT route → fallback a');
  });

  t.test('header matching', async (t) => {
    t.equal(upstreamOf(await send('api.local', '/h', { headers: { 'x-canary': 'yes' } })), 'c', 'x-canary: yes → c');
    t.equal(upstreamOf(await send('api.local', '/h', { headers: { 'X-Canary': 'yes' } })), 'c', 'header names match case-insensitively');
    t.equal(upstreamOf(await send('api.local', '/h', { headers: { 'x-canary': 'yes please' } })), 'a', 'exact needs the whole value → fallback a');
    t.equal(upstreamOf(await send('api.local', '/h', { headers: { 'x-beta': '' } })), 'b', 'x-beta present (empty value) → b');
    t.equal(
      upstreamOf(await send('api.local', '/h', { headers: { 'x-canary': 'no', 'x-beta': '1' } })),
      'b',
      'the first route failing its header lets the next one match → b',
    );
    t.equal(upstreamOf(await send('api.local', '/h')), 'a', 'no matching headers → fallback a');
  });

  t.test('prefix_rewrite: the upstream sees the rewritten path, query kept', async (t) => {
    const r1 = echoOf(await send('api.local', '/old/a/b?x=1&y=two'));
    t.equal(r1.url, '/new/a/b?x=1&y=two', '/old/a/b?x=1&y=two → /new/a/b?x=1&y=two');
    const r2 = echoOf(await send('api.local', '/old/'));
    t.equal(r2.url, '/new/', 'the bare prefix rewrites to the new prefix');
    const r3 = echoOf(await send('api.local', '/strip/z?k=v'));
    t.equal(r3.url, '/z?k=v', 'an empty prefix_rewrite strips the prefix');
    const r4 = echoOf(await send('api.local', '/echo/p?q=%20x'));
    t.equal(r4.url, '/echo/p?q=%20x', 'without a rewrite the path and raw query pass unchanged');
    t.equal(r4.host, 'api.local', 'without host_rewrite the upstream sees the original Host');
    t.equal(echoOf(await send('api.local', '/canary/x')).host, 'canary.internal', 'a weighted cluster\'s host_rewrite wins over the route\'s');
    const r5 = echoOf(await send('api.local', '/api/v2/users/7?full=1'));
    t.equal(r5.url, '/users/v2/7?full=1', 'regex_rewrite: /api/v2/users/7 → /users/v2/7, query kept');
  });

  t.test('host_rewrite: the upstream sees the new Host', async (t) => {
    const seen = echoOf(await send('api.local', '/host/x'));
    t.equal(seen.host, 'internal.svc:8080', 'Host is replaced by host_rewrite');
    t.equal(seen.forwardedHost, 'api.local', 'x-forwarded-host keeps the original Host');
    t.equal(seen.url, '/host/x', 'the path is unchanged');
  });

  t.test('direct_response', async (t) => {
    const r = await send('api.local', '/direct');
    t.equal(r.status, 201, 'direct response status');
    t.equal(r.text, 'made here', 'direct response body, as configured');
    t.equal(r.headers['x-upstream'], undefined, 'no upstream was involved');
    const head = await send('api.local', '/direct', { method: 'HEAD' });
    t.equal(head.status, 201, 'HEAD gets the direct status');
    t.equal(head.text, '', 'HEAD gets no body');
  });

  t.test('direct_response carries the route response_headers_to_add', async (t) => {
    const r = await send('api.local', '/direct-headers');
    t.equal(r.status, 200, 'direct response status');
    t.equal(r.text, 'edited', 'direct response body');
    t.equal(r.headers['x-served-by'], 'remora', 'x-served-by added by the route');
    t.equal(r.headers['cache-control'], 'no-store', 'cache-control added by the route');
    t.equal(r.headers['x-remora-flags'], undefined, 'a direct response stays plain: no flags header');
    const head = await send('api.local', '/direct-headers', { method: 'HEAD' });
    t.equal(head.headers['x-served-by'], 'remora', 'HEAD gets the added header too');
  });

  t.test('no route → 404 with x-remora-flags: NR', async (t) => {
    const noHost = await send('nowhere.test', '/');
    t.equal(noHost.status, 404, 'unknown Host without a * vhost → 404');
    t.equal(noHost.headers['x-remora-flags'], 'NR', 'flag NR for an unknown Host');
    const noPath = await send('strict.local', '/other');
    t.equal(noPath.status, 404, 'known vhost, no matching route → 404');
    t.equal(noPath.headers['x-remora-flags'], 'NR', 'flag NR for an unmatched path');
    t.equal(upstreamOf(await send('strict.local', '/only')), 'a', 'the vhost still routes its one path');
  });

  t.test('per-route timeout_ms → 504 UT', async (t) => {
    const started = Date.now();
    const r = await send('api.local', '/slow');
    const elapsed = Date.now() - started;
    t.equal(r.status, 504, 'a slow upstream past timeout_ms 300 gives 504');
    t.equal(r.headers['x-remora-flags'], 'UT', 'flag UT (upstream request timeout)');
    t.ok(elapsed < 2500, `the 504 comes well before the upstream's 3000 ms answer (took ${elapsed} ms)`);
    t.equal(upstreamOf(await send('api.local', '/x')), 'a', 'the proxy keeps serving after a timeout');
  });
});

t.test('routes by query parameter, through the real proxy and curl', async (t) => {
  const a = await namedUpstream('a');
  const b = await namedUpstream('b');
  const remora = await startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [{
      name: 'main', address: '127.0.0.1', port: 0,
      virtual_hosts: [{ name: 'all', domains: ['*'], routes: [
        { name: 'debug', match: { prefix: '/', query_parameters: [{ name: 'debug', exact: 'yes' }] }, route: { cluster: 'b' } },
        { name: 'rest', match: { prefix: '/' }, route: { cluster: 'a' } },
      ] }],
    }],
    clusters: [
      { name: 'a', endpoints: [{ address: '127.0.0.1', port: a.port }] },
      { name: 'b', endpoints: [{ address: '127.0.0.1', port: b.port }] },
    ],
  });
  t.teardown(async () => {
    await remora.stop();
    await Promise.all([a.close(), b.close()]);
  });
  const via = async (path: string): Promise<string> => (await request(remora.ports.main, { path })).text;
  t.equal(await via('/x?debug=yes'), 'b', 'debug=yes goes to b');
  t.equal(await via('/x?page=2&debug=yes'), 'b', 'wherever it is in the query');
  t.equal(await via('/x?debug=no'), 'a', 'another value does not');
  t.equal(await via('/x'), 'a', 'nor no query');
  // Asynchronously: the upstreams answer from this process.
  const curl = await runProgram('curl', ['-s', '-g', `http://127.0.0.1:${remora.ports.main}/x?%64ebug=%79es`], { ms: 10_000 });
  t.equal(curl.out, 'b', 'curl with a percent-encoded name and value is routed by the decoded ones');
});

t.test('redirect routes answer with a Location built as Envoy builds it', async (t) => {
  const a = await namedUpstream('a');
  const remora = await startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [{
      name: 'main', address: '127.0.0.1', port: 0,
      upgrade_configs: [{ upgrade_type: 'websocket' }],
      virtual_hosts: [{ name: 'all', domains: ['*'], routes: [
        { match: { prefix: '/secure/' }, redirect: { scheme: 'https' } },
        { match: { prefix: '/moved/' }, redirect: { host: 'new.example', port: 8443, response_code: 308 } },
        { match: { prefix: '/old/' }, redirect: { prefix_rewrite: '/new/', response_code: 302 } },
        { match: { path: '/fixed' }, redirect: { path: '/landing', strip_query: true, response_code: 303 } },
        { match: { path: '/with-query' }, redirect: { path: '/landing?from=old', strip_query: true, response_code: 307 } },
        { match: { path: '/keep' }, redirect: { path: '/landing' }, response_headers_to_add: [{ name: 'x-why', value: 'moved' }] },
        { match: { prefix: '/docs/' }, redirect: { regex_rewrite: { pattern: '^/docs/(\\d+)\\.(\\d+)/', substitution: '/docs/v\\1/' } } },
        { match: { prefix: '/new/' }, route: { cluster: 'a' } },
      ] }],
    }],
    clusters: [{ name: 'a', endpoints: [{ address: '127.0.0.1', port: a.port }] }],
  });
  t.teardown(async () => {
    await remora.stop();
    await a.close();
  });
  const port = remora.ports.main;
  const redirect = async (path: string, host: string, method = 'GET'): Promise<[number, string, string]> => {
    const r = await request(port, { path, method, headers: { host } });
    return [r.status, String(r.headers.location), r.text];
  };
  t.same(await redirect('/secure/a?b=1', 'shop.example'), [301, 'https://shop.example/secure/a?b=1', ''], 'scheme only: 301 (the default), host, path and query kept');
  t.same(await redirect('/secure/a', 'shop.example:80'), [301, 'https://shop.example/secure/a', ''], 'the old scheme\'s default port is dropped when the scheme changes');
  t.same(await redirect('/secure/a', 'shop.example:8080'), [301, 'https://shop.example:8080/secure/a', ''], 'another port is kept');
  t.same(await redirect('/secure/a', '[::1]:80'), [301, 'https://[::1]/secure/a', ''], 'an IPv6 host loses its default port too');
  t.same(await redirect('/moved/x?y', 'shop.example:8080'), [308, 'http://new.example:8443/moved/x?y', ''], 'host and port replaced');
  t.same(await redirect('/old/page?q=1', 'shop.example'), [302, 'http://shop.example/new/page?q=1', ''], 'prefix_rewrite replaces the matched prefix, keeps the query');
  t.same(await redirect('/fixed?q=1', 'shop.example'), [303, 'http://shop.example/landing', ''], 'path with strip_query');
  t.same(await redirect('/with-query?q=1', 'shop.example'), [307, 'http://shop.example/landing?from=old', ''], 'a path with its own query replaces the request\'s; strip_query does not apply');
  t.same(await redirect('/docs/1.2/intro?x', 'shop.example'), [301, 'http://shop.example/docs/v1/intro?x', ''], 'regex_rewrite of the path, query kept');
  const keep = await request(port, { path: '/keep?q=1', headers: { host: 'shop.example' } });
  t.equal(keep.headers.location, 'http://shop.example/landing?q=1', 'path without a query keeps the request\'s');
  t.equal(keep.headers['x-why'], 'moved', 'the route\'s response headers are added');
  t.equal(keep.headers['content-length'], '0', 'empty body, content-length 0');
  t.same(await redirect('/fixed', 'shop.example', 'HEAD'), [303, 'http://shop.example/landing', ''], 'HEAD gets the same redirect');
  const upgrade = await request(port, { path: '/secure/ws', headers: { host: 'shop.example', connection: 'upgrade', upgrade: 'websocket' }, agent: false });
  t.same([upgrade.status, upgrade.headers.location], [301, 'https://shop.example/secure/ws'], 'a WebSocket upgrade request gets the redirect too');
  // curl follows the redirect through the proxy to the route it names.
  const curl = await runProgram('curl', ['-s', '-L', '-w', ' %{http_code} %{num_redirects}', `http://127.0.0.1:${port}/old/page`], { ms: 10_000 });
  t.equal(curl.out, 'a 200 1', 'curl -L follows /old/page to /new/page, served by the upstream');
});
