// Unit tests for config validation (validate.ts) and loading (load.ts): defaults,
// one test per kind of mistake (exact path + message), error collection, immutability.

import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { validateConfig } from '../../src/config/validate.js';
import { formatErrors, loadConfigFile, parseConfigText } from '../../src/config/load.js';
import type { ConfigError, RemoraConfig } from '../../src/config/types.js';

/** A valid config exercising most features; only `workers` and a few optionals are set. */
function base(): Record<string, unknown> {
  return {
    workers: 2,
    listeners: [
      {
        name: 'main',
        port: 8080,
        virtual_hosts: [
          {
            name: 'api',
            domains: ['api.local', 'API.example.com:8080'],
            routes: [
              {
                name: 'users',
                match: {
                  prefix: '/users/',
                  methods: ['get', 'POST'],
                  headers: [{ name: 'X-Tenant', exact: 'a' }, { name: 'x-debug', present: true }],
                },
                route: { cluster: 'backend', prefix_rewrite: '/', host_rewrite: 'users.internal' },
                request_headers_to_add: [{ name: 'X-Via', value: 'remora' }],
              },
              { match: { path: '/health' }, direct_response: { status: 200, body: 'ok' } },
              {
                match: { regex: '^/v[0-9]+/.*$' },
                route: { weighted_clusters: [{ cluster: 'backend', weight: 3 }, { cluster: 'api', weight: 1 }], timeout_ms: 0 },
                response_headers_to_remove: ['Server'],
              },
            ],
          },
          {
            name: 'fallback',
            domains: ['*', '*.local'],
            routes: [{ match: { prefix: '/' }, route: { cluster: 'api' } }],
          },
        ],
      },
    ],
    clusters: [
      { name: 'backend', endpoints: [{ address: '127.0.0.1', port: 3000 }, { address: 'backend.svc', port: 3001 }] },
      { name: 'api', lb_policy: 'least_request', connect_timeout_ms: 250, endpoints: [{ address: '::1', port: 4000 }] },
    ],
  };
}

/** Sets (or, with `undefined`, deletes) the value at an error-style path like `a.b[0].c`. */
function set(root: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.replace(/\[(\d+)\]/g, '.$1').split('.');
  let cur = root as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) cur = cur[k] as Record<string, unknown>;
  const last = keys[keys.length - 1];
  if (value === undefined) delete cur[last];
  else cur[last] = value;
}

function withChanges(changes: Record<string, unknown>): Record<string, unknown> {
  const c = base();
  for (const [path, value] of Object.entries(changes)) set(c, path, value);
  return c;
}

function errorsOf(raw: unknown): ConfigError[] {
  const r = validateConfig(raw, { defaultWorkers: 4 });
  if (r.ok) throw new Error('expected validation to fail');
  return r.errors;
}

function configOf(raw: unknown): RemoraConfig {
  const r = validateConfig(raw, { defaultWorkers: 4 });
  if (!r.ok) throw new Error(formatErrors('test', r.errors));
  return r.config;
}

const R = 'listeners[0].virtual_hosts[0].routes';

t.test('valid config: defaults filled in, input normalised', async (t) => {
  const input = base();
  const snapshot = JSON.stringify(input);
  const cfg = configOf(input);
  t.equal(JSON.stringify(input), snapshot, 'input not modified');
  t.strictSame(cfg, {
    workers: 2,
    admin: { address: '127.0.0.1', port: 9901 },
    stats: { enabled: true },
    listeners: [
      {
        name: 'main',
        address: '127.0.0.1',
        port: 8080,
        virtual_hosts: [
          {
            name: 'api',
            domains: ['api.local', 'api.example.com:8080'],
            routes: [
              {
                name: 'users',
                match: {
                  prefix: '/users/',
                  methods: ['GET', 'POST'],
                  headers: [{ name: 'x-tenant', exact: 'a' }, { name: 'x-debug', present: true }],
                },
                route: { timeout_ms: 15000, cluster: 'backend', prefix_rewrite: '/', host_rewrite: 'users.internal' },
                request_headers_to_add: [{ name: 'x-via', value: 'remora' }],
                request_headers_to_remove: [],
                response_headers_to_add: [],
                response_headers_to_remove: [],
              },
              {
                name: 'api/1',
                match: { path: '/health', methods: [], headers: [] },
                direct_response: { status: 200, body: 'ok' },
                request_headers_to_add: [],
                request_headers_to_remove: [],
                response_headers_to_add: [],
                response_headers_to_remove: [],
              },
              {
                name: 'api/2',
                match: { regex: '^/v[0-9]+/.*$', methods: [], headers: [] },
                route: { timeout_ms: 0, weighted_clusters: [{ cluster: 'backend', weight: 3 }, { cluster: 'api', weight: 1 }] },
                request_headers_to_add: [],
                request_headers_to_remove: [],
                response_headers_to_add: [],
                response_headers_to_remove: ['server'],
              },
            ],
          },
          {
            name: 'fallback',
            domains: ['*', '*.local'],
            routes: [
              {
                name: 'fallback/0',
                match: { prefix: '/', methods: [], headers: [] },
                route: { timeout_ms: 15000, cluster: 'api' },
                request_headers_to_add: [],
                request_headers_to_remove: [],
                response_headers_to_add: [],
                response_headers_to_remove: [],
              },
            ],
          },
        ],
        generate_traceparent: false,
      },
    ],
    clusters: [
      {
        name: 'backend',
        lb_policy: 'round_robin',
        endpoints: [{ address: '127.0.0.1', port: 3000 }, { address: 'backend.svc', port: 3001 }],
        connect_timeout_ms: 1000,
        idle_timeout_ms: 60000,
        max_connections_per_endpoint: 1024,
      },
      {
        name: 'api',
        lb_policy: 'least_request',
        endpoints: [{ address: '::1', port: 4000 }],
        connect_timeout_ms: 250,
        idle_timeout_ms: 60000,
        max_connections_per_endpoint: 1024,
      },
    ],
  });
});

t.test('workers default: opts.defaultWorkers, else availableParallelism()', async (t) => {
  const raw = withChanges({ workers: undefined });
  t.equal(configOf(raw).workers, 4);
  const r = validateConfig(raw);
  t.ok(r.ok);
  if (r.ok) t.equal(r.config.workers, Math.min(256, availableParallelism()));
});

t.test('minimal config: a listener with a direct response, no clusters', async (t) => {
  const cfg = configOf({
    listeners: [{ name: 'l', port: 0, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 204 } }] }] }],
  });
  t.strictSame(cfg.clusters, []);
  t.strictSame(cfg.listeners[0].virtual_hosts[0].routes[0].direct_response, { status: 204, body: '' });
});

t.test('access_log and generate_traceparent', async (t) => {
  const off = configOf(base()).listeners[0];
  t.notOk('access_log' in off, 'no access_log unless configured');
  t.equal(off.generate_traceparent, false, 'generate_traceparent defaults to false');

  const file = configOf(withChanges({ 'listeners[0].access_log': { path: 'logs/access.log' }, 'listeners[0].generate_traceparent': true })).listeners[0];
  t.strictSame(file.access_log, { path: 'logs/access.log', sample_ratio: 1 }, 'sample_ratio defaults to 1; a relative path is kept as written');
  t.equal(file.generate_traceparent, true);

  for (const ratio of [0, 0.25, 1]) {
    const l = configOf(withChanges({ 'listeners[0].access_log': { path: 'stdout', sample_ratio: ratio } })).listeners[0];
    t.strictSame(l.access_log, { path: 'stdout', sample_ratio: ratio }, `sample_ratio ${ratio} accepted`);
  }
  t.ok(Object.isFrozen(file.access_log), 'access_log is frozen');
});

// Each case: changes applied to base(), and the exact list of expected [path, message substring].
const mistakes: [string, Record<string, unknown>, [string, string][]][] = [
  ['endpoint port out of range', { 'clusters[0].endpoints[0].port': 70000 },
    [['clusters[0].endpoints[0].port', 'must be an integer 1..65535']]],
  ['unknown key with did-you-mean', { [`${R}[1].matc`]: { path: '/health' }, [`${R}[1].match`]: undefined },
    [[`${R}[1].matc`, 'unknown key (did you mean "match"?)'], [`${R}[1].match`, 'is required']]],
  ['unknown key without a close match', { banana: 1 },
    [['banana', 'unknown key (allowed: workers, admin, stats, listeners, clusters)']]],
  ['unknown cluster reference', { [`${R}[0].route.cluster`]: 'bakend' },
    [[`${R}[0].route.cluster`, 'unknown cluster "bakend" (defined: backend, api)']]],
  ['duplicate cluster names', { 'clusters[2]': { name: 'api', endpoints: [{ address: 'a', port: 1 }] } },
    [['clusters[2].name', 'duplicate cluster name "api" (first used at clusters[1].name)']]],
  ['bad regex', { [`${R}[2].match.regex`]: '^/v[0-9+/' },
    [[`${R}[2].match.regex`, 'invalid regular expression: ']]],
  ['match with both prefix and path', { [`${R}[0].match.path`]: '/users' },
    [[`${R}[0].match`, 'must set exactly one of "prefix", "path" or "regex", not "prefix" and "path"']]],
  ['match with none of prefix/path/regex', { [`${R}[0].match`]: { methods: ['GET'] } },
    [[`${R}[0].match`, 'must set exactly one of "prefix", "path" or "regex"']]],
  ['route with both route and direct_response', { [`${R}[1].route`]: { cluster: 'backend' } },
    [[`${R}[1]`, 'must set exactly one of "route" or "direct_response"']]],
  ['route action with both cluster and weighted_clusters', { [`${R}[0].route.weighted_clusters`]: [{ cluster: 'api', weight: 1 }] },
    [[`${R}[0].route`, 'must set exactly one of "cluster" or "weighted_clusters"']]],
  ['weighted weights all zero', { [`${R}[2].route.weighted_clusters[0].weight`]: 0, [`${R}[2].route.weighted_clusters[1].weight`]: 0 },
    [[`${R}[2].route.weighted_clusters`, 'weights must add up to more than 0']]],
  ['negative weight', { [`${R}[2].route.weighted_clusters[1].weight`]: -1 },
    [[`${R}[2].route.weighted_clusters[1].weight`, 'must be an integer 0..']]],
  ['prefix_rewrite with a path match', { [`${R}[0].match`]: { path: '/users' } },
    [[`${R}[0].route.prefix_rewrite`, 'only allowed with a "prefix" match (this route uses "path")']]],
  ['bad lb_policy', { 'clusters[1].lb_policy': 'least_conn' },
    [['clusters[1].lb_policy', 'must be one of round_robin, least_request, random']]],
  ['empty endpoints', { 'clusters[0].endpoints': [] },
    [['clusters[0].endpoints', 'must list at least one endpoint']]],
  ['listener with no virtual hosts', { 'listeners[0].virtual_hosts': [] },
    [['listeners[0].virtual_hosts', 'must list at least one virtual host']]],
  ['no listeners', { listeners: undefined },
    [['listeners', 'must list at least one listener']]],
  ['removing content-length', { [`${R}[2].response_headers_to_remove`]: ['Content-Length'] },
    [[`${R}[2].response_headers_to_remove[0]`, '"content-length" cannot be added or removed: message framing']]],
  ['adding host', { [`${R}[0].request_headers_to_add[0].name`]: 'Host' },
    [[`${R}[0].request_headers_to_add[0].name`, 'use route.host_rewrite']]],
  ['header value with CR/LF', { [`${R}[0].request_headers_to_add[0].value`]: 'a\r\nX-Evil: 1' },
    [[`${R}[0].request_headers_to_add[0].value`, 'must not contain CR, LF or NUL']]],
  ['invalid header name', { [`${R}[0].match.headers[0].name`]: 'X Tenant' },
    [[`${R}[0].match.headers[0].name`, 'not a valid header name']]],
  ['header matcher with exact and present', { [`${R}[0].match.headers[0].present`]: true },
    [[`${R}[0].match.headers[0]`, 'must set exactly one of "exact", "regex" or "present"']]],
  ['header matcher present: false', { [`${R}[0].match.headers[1].present`]: false },
    [[`${R}[0].match.headers[1].present`, 'must be true']]],
  ['duplicate domain in two vhosts', { 'listeners[0].virtual_hosts[1].domains[1]': 'API.local' },
    [['listeners[0].virtual_hosts[1].domains[1]', 'duplicate domain "api.local" (first used at listeners[0].virtual_hosts[0].domains[0])']]],
  ['two catch-all vhosts', { 'listeners[0].virtual_hosts[2]': { name: 'other', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 404 } }] } },
    [['listeners[0].virtual_hosts[2].domains[0]', 'only one virtual host may use "*"']]],
  ['invalid domain', { 'listeners[0].virtual_hosts[0].domains[0]': 'api*.local' },
    [['listeners[0].virtual_hosts[0].domains[0]', 'a wildcard is only allowed as "*" or a leading "*."']]],
  ['empty domains', { 'listeners[0].virtual_hosts[0].domains': [] },
    [['listeners[0].virtual_hosts[0].domains', 'must list at least one domain']]],
  ['workers 0', { workers: 0 }, [['workers', 'must be an integer 1..256']]],
  ['admin.address not an ip', { admin: { address: 'not an ip' } },
    [['admin.address', 'must be an IP address']]],
  ['listener port out of range', { 'listeners[0].port': -1 },
    [['listeners[0].port', 'must be an integer 0..65535']]],
  ['endpoint address with scheme', { 'clusters[0].endpoints[1].address': 'http://x' },
    [['clusters[0].endpoints[1].address', 'without a scheme']]],
  ['endpoint address with a port', { 'clusters[0].endpoints[1].address': 'backend.svc:3001' },
    [['clusters[0].endpoints[1].address', 'use the "port" field']]],
  ['endpoint address with spaces', { 'clusters[0].endpoints[1].address': 'backend svc' },
    [['clusters[0].endpoints[1].address', 'must not contain whitespace']]],
  ['invalid cluster name', { 'clusters[1].name': 'my api', [`${R}[2].route.weighted_clusters[1].cluster`]: 'my api', 'listeners[0].virtual_hosts[1].routes[0].route.cluster': 'backend' },
    [['clusters[1].name', 'must contain only letters, digits']]],
  ['duplicate route names in a listener', { [`${R}[1].name`]: 'users' },
    [[`${R}[1].name`, 'duplicate route name "users" (first used at listeners[0].virtual_hosts[0].routes[0].name)']]],
  ['prefix without leading slash', { [`${R}[0].match.prefix`]: 'users/' },
    [[`${R}[0].match.prefix`, 'must start with "/"']]],
  ['invalid method', { [`${R}[0].match.methods`]: ['GET', 'GE T'] },
    [[`${R}[0].match.methods[1]`, 'must be an HTTP method name']]],
  ['direct_response status out of range', { [`${R}[1].direct_response.status`]: 99 },
    [[`${R}[1].direct_response.status`, 'must be an integer 200..599']]],
  ['connect_timeout_ms 0', { 'clusters[0].connect_timeout_ms': 0 },
    [['clusters[0].connect_timeout_ms', 'must be an integer 1..3600000 (milliseconds)']]],
  ['timeout too large', { [`${R}[0].route.timeout_ms`]: 3_600_001 },
    [[`${R}[0].route.timeout_ms`, 'must be an integer 0..3600000 (milliseconds)']]],
  ['host_rewrite with whitespace', { [`${R}[0].route.host_rewrite`]: 'a b' },
    [[`${R}[0].route.host_rewrite`, 'non-empty host name without whitespace']]],
  ['wrong type', { 'listeners[0].name': 5 }, [['listeners[0].name', 'must be a string']]],
  ['access_log not an object', { 'listeners[0].access_log': 'stdout' },
    [['listeners[0].access_log', 'must be an object (mapping)']]],
  ['access_log without path', { 'listeners[0].access_log': { sample_ratio: 0.5 } },
    [['listeners[0].access_log.path', 'is required (a string)']]],
  ['access_log path not a string', { 'listeners[0].access_log': { path: 1 } },
    [['listeners[0].access_log.path', 'must be a string']]],
  ['access_log path empty', { 'listeners[0].access_log': { path: '' } },
    [['listeners[0].access_log.path', 'must not be empty (use "stdout" or a file path)']]],
  ['access_log path is a directory', { 'listeners[0].access_log': { path: '/var/log/' } },
    [['listeners[0].access_log.path', 'must name a file, not a directory']]],
  ['access_log path with NUL', { 'listeners[0].access_log': { path: 'a\0b' } },
    [['listeners[0].access_log.path', 'must not contain NUL characters']]],
  ['sample_ratio above 1', { 'listeners[0].access_log': { path: 'stdout', sample_ratio: 1.5 } },
    [['listeners[0].access_log.sample_ratio', 'must be a number 0..1']]],
  ['sample_ratio negative', { 'listeners[0].access_log': { path: 'stdout', sample_ratio: -0.1 } },
    [['listeners[0].access_log.sample_ratio', 'must be a number 0..1']]],
  ['sample_ratio not a number', { 'listeners[0].access_log': { path: 'stdout', sample_ratio: '50%' } },
    [['listeners[0].access_log.sample_ratio', 'must be a number 0..1']]],
  ['sample_ratio NaN', { 'listeners[0].access_log': { path: 'stdout', sample_ratio: NaN } },
    [['listeners[0].access_log.sample_ratio', 'must be a number 0..1']]],
  ['unknown access_log key', { 'listeners[0].access_log': { path: 'stdout', sample_rate: 0.5 } },
    [['listeners[0].access_log.sample_rate', 'unknown key (did you mean "sample_ratio"?)']]],
  ['access_log several mistakes', { 'listeners[0].access_log': { path: '', sample_ratio: 2, format: 'json' } },
    [['listeners[0].access_log.format', 'unknown key (allowed: path, sample_ratio)'],
      ['listeners[0].access_log.path', 'must not be empty'],
      ['listeners[0].access_log.sample_ratio', 'must be a number 0..1']]],
  ['generate_traceparent not a boolean', { 'listeners[0].generate_traceparent': 'yes' },
    [['listeners[0].generate_traceparent', 'must be true or false']]],
  ['unknown listener key near generate_traceparent', { 'listeners[0].generate_traceparents': true },
    [['listeners[0].generate_traceparents', 'unknown key (did you mean "generate_traceparent"?)']]],
  ['duplicate listener name and address:port', { 'listeners[1]': { name: 'main', port: 8080, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 404 } }] }] } },
    [['listeners[1].name', 'duplicate listener name "main"'], ['listeners[1].port', 'duplicate address and port "127.0.0.1:8080"']]],
];

for (const [title, changes, expected] of mistakes) {
  t.test(`mistake: ${title}`, async (t) => {
    const errors = errorsOf(withChanges(changes));
    t.strictSame(errors.map((e) => e.path), expected.map(([path]) => path), 'exactly these error paths');
    for (const [path, message] of expected) {
      const e = errors.find((x) => x.path === path);
      if (e) t.ok(e.message.includes(message), `${path}: "${e.message}" includes "${message}"`);
    }
  });
}

t.test('root-level mistakes use (root)', async (t) => {
  t.strictSame(errorsOf(null), [{ path: '(root)', message: 'config is empty; expected an object with "listeners" and "clusters"' }]);
  t.strictSame(errorsOf([1, 2]), [{ path: '(root)', message: 'must be an object (mapping)' }]);
});

t.test('several mistakes are all reported', async (t) => {
  const errors = errorsOf(withChanges({
    workers: 0,
    'clusters[0].endpoints[0].port': 70000,
    'clusters[1].lb_policy': 'fastest',
    [`${R}[0].route.cluster`]: 'bakend',
    [`${R}[2].match.regex`]: '(',
    'listeners[0].virtual_hosts[1].domainz': ['x'],
  }));
  t.strictSame(errors.map((e) => e.path).sort(), [
    'clusters[0].endpoints[0].port',
    'clusters[1].lb_policy',
    'listeners[0].virtual_hosts[1].domainz',
    `${R}[0].route.cluster`,
    `${R}[2].match.regex`,
    'workers',
  ].sort());
  t.match(errors.find((e) => e.path.endsWith('domainz'))?.message, 'did you mean "domains"?');
});

t.test('result is a fresh, deeply frozen object', async (t) => {
  const input = base();
  const cfg = configOf(input);
  t.not(cfg, input);
  t.not(cfg.listeners, input.listeners);
  const route = cfg.listeners[0].virtual_hosts[0].routes[0];
  for (const o of [cfg, cfg.admin, cfg.listeners, cfg.listeners[0], route, route.match, route.match.methods,
    route.match.headers[0], route.route, cfg.clusters[0].endpoints[0]]) {
    t.ok(o !== undefined && Object.isFrozen(o), 'frozen');
  }
  t.throws(() => { (cfg as { workers: number }).workers = 9; }, TypeError);
  t.throws(() => { (route.match.methods as string[]).push('PUT'); }, TypeError);
});

t.test('parseConfigText', async (t) => {
  const ok = parseConfigText('workers: 2\nlisteners: []\n', 'c.yaml');
  t.strictSame(ok, { ok: true, raw: { workers: 2, listeners: [] } });

  const syntax = parseConfigText('listeners:\n  - name: a\n    port: [1,\n', 'c.yaml');
  t.equal(syntax.ok, false);
  if (!syntax.ok) {
    t.equal(syntax.errors[0].path, '(file)');
    t.match(syntax.errors[0].message, /invalid YAML: .*line \d+, column \d+/);
  }

  const dup = parseConfigText('workers: 1\nadmin: {}\nworkers: 2\n', 'c.yml');
  t.strictSame(dup, { ok: false, errors: [{ path: '(file)', message: 'invalid YAML: Map keys must be unique at line 3, column 1' }] });

  const json = parseConfigText('{\n  "workers": 1,\n}', 'c.json');
  t.equal(json.ok, false);
  if (!json.ok) t.match(json.errors[0].message, /invalid JSON: .*line 3, column 1/);
  t.strictSame(parseConfigText('{"workers": 1}', 'C.JSON'), { ok: true, raw: { workers: 1 } });
});

t.test('loadConfigFile', async (t) => {
  const dir = t.testdir({});
  const good = join(dir, 'good.json');
  writeFileSync(good, JSON.stringify(base()));
  const r = loadConfigFile(good);
  t.ok(r.ok);

  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'workers: 0\nlisteners: []\n');
  t.strictSame(loadConfigFile(bad), { ok: false, errors: [
    { path: 'workers', message: 'must be an integer 1..256' },
    { path: 'listeners', message: 'must list at least one listener' },
  ] });

  const missing = loadConfigFile(join(dir, 'nope.yaml'));
  t.equal(missing.ok, false);
  if (!missing.ok) t.match(missing.errors[0], { path: '(file)', message: /cannot read .*nope\.yaml: file not found/ });

  const empty = join(dir, 'empty.yaml');
  writeFileSync(empty, '');
  t.match(loadConfigFile(empty), { ok: false, errors: [{ path: '(root)', message: /config is empty/ }] });
});

t.test('formatErrors', async (t) => {
  t.equal(formatErrors('config.yaml', [
    { path: 'clusters[2].endpoints[0].port', message: 'must be an integer 1..65535' },
    { path: 'workers', message: 'must be an integer 1..256' },
  ]), 'config.yaml: 2 errors\n  clusters[2].endpoints[0].port: must be an integer 1..65535\n  workers: must be an integer 1..256');
  t.equal(formatErrors('c.json', [{ path: '(file)', message: 'x' }]), 'c.json: 1 error\n  (file): x');
});

t.test('listener and cluster counts are capped by the stats slab capacity', async (t) => {
  const { MAX_CLUSTERS } = await import('../../src/shared/limits.js');
  const clusters = Array.from({ length: MAX_CLUSTERS + 1 }, (_, i) => ({ name: `c${i}`, endpoints: [{ address: '127.0.0.1', port: 8080 }] }));
  const raw = {
    listeners: [{ name: 'l', port: 0, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c0' } }] }] }],
    clusters,
  };
  const result = validateConfig(raw, { defaultWorkers: 1 });
  t.equal(result.ok, false, `${MAX_CLUSTERS + 1} clusters are rejected`);
  if (!result.ok) t.match(result.errors, [{ path: 'clusters', message: `at most ${MAX_CLUSTERS} clusters` }], 'error names the limit');
});

t.test('stats.enabled', async (t) => {
  const base = {
    listeners: [{ name: 'l', port: 0, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200 } }] }] }],
  };
  const off = validateConfig({ ...base, stats: { enabled: false } }, { defaultWorkers: 1 });
  t.equal(off.ok && off.config.stats.enabled, false, 'stats.enabled: false is kept');
  const bad = validateConfig({ ...base, stats: { enabled: 'no', extra: 1 } }, { defaultWorkers: 1 });
  t.equal(bad.ok, false, 'bad stats block rejected');
  if (!bad.ok) {
    t.same(bad.errors.map((e) => e.path).sort(), ['stats.enabled', 'stats.extra'], 'both stats errors listed by path');
  }
});
