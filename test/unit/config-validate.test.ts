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
const RP = `${R}[0].route.retry_policy`;
const LRL = 'listeners[0].rate_limits';
const C0 = 'clusters[0]';
/** A valid rate limit, with `extra` merged in (`undefined` deletes a field). */
const rl = (extra: Record<string, unknown> = {}): Record<string, unknown> =>
  Object.fromEntries(Object.entries({ name: 'global', max_tokens: 100, fill_interval_ms: 1000, ...extra }).filter(([, v]) => v !== undefined));
const MS = 'must be an integer 1..3600000 (milliseconds)';

t.test('valid config: defaults filled in, input normalised', async (t) => {
  const input = base();
  const snapshot = JSON.stringify(input);
  const cfg = configOf(input);
  t.equal(JSON.stringify(input), snapshot, 'input not modified');
  t.strictSame(cfg, {
    workers: 2,
    admin: { address: '127.0.0.1', port: 9901, allow_remote: false },
    drain: { delay_ms: 5000, timeout_ms: 20000 },
    worker_limits: { heartbeat_timeout_ms: 10000, memory_limit_mb: 0, young_generation_mb: 16, idle_heap_trim_after_ms: 30000, max_downstream_connections: 0 },
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
                  query_parameters: [],
                },
                route: { timeout_ms: 15000, max_request_body_bytes: 0, cluster_not_found_status: 503, cluster: 'backend', prefix_rewrite: '/', host_rewrite: 'users.internal' },
                request_headers_to_add: [{ name: 'x-via', value: 'remora' }],
                request_headers_to_remove: [],
                response_headers_to_add: [],
                response_headers_to_remove: [],
                rate_limits: [],
                upgrade_configs: [],
              },
              {
                // Unnamed routes: <vhost>/<hash of the match> (validate.ts defaultRouteName).
                name: 'api/048bfee9',
                match: { path: '/health', methods: [], headers: [], query_parameters: [] },
                direct_response: { status: 200, body: 'ok' },
                request_headers_to_add: [],
                request_headers_to_remove: [],
                response_headers_to_add: [],
                response_headers_to_remove: [],
                rate_limits: [],
                upgrade_configs: [],
              },
              {
                name: 'api/689def4a',
                match: { regex: '^/v[0-9]+/.*$', methods: [], headers: [], query_parameters: [] },
                route: { timeout_ms: 0, max_request_body_bytes: 0, cluster_not_found_status: 503, weighted_clusters: [{ cluster: 'backend', weight: 3 }, { cluster: 'api', weight: 1 }] },
                request_headers_to_add: [],
                request_headers_to_remove: [],
                response_headers_to_add: [],
                response_headers_to_remove: ['server'],
                rate_limits: [],
                upgrade_configs: [],
              },
            ],
            include_request_attempt_count: false,
          },
          {
            name: 'fallback',
            domains: ['*', '*.local'],
            routes: [
              {
                name: 'fallback/6d901645',
                match: { prefix: '/', methods: [], headers: [], query_parameters: [] },
                route: { timeout_ms: 15000, max_request_body_bytes: 0, cluster_not_found_status: 503, cluster: 'api' },
                request_headers_to_add: [],
                request_headers_to_remove: [],
                response_headers_to_add: [],
                response_headers_to_remove: [],
                rate_limits: [],
                upgrade_configs: [],
              },
            ],
            include_request_attempt_count: false,
          },
        ],
        generate_traceparent: false,
        max_request_headers_kb: 60,
        rate_limits: [],
        filter_chains: [],
        http_filter_chains: [],
        upgrade_configs: [],
        forward_client_cert_details: 'sanitize',
        codec: 'strict',
        proxy_protocol: false,
        codec_type: 'auto',
        http2_protocol_options: { max_concurrent_streams: 100, initial_stream_window_size: 65535, initial_connection_window_size: 1048576 },
        max_request_headers_count: 100,
        headers_with_underscores_action: 'allow',
        normalize_path: true,
        merge_slashes: false,
        path_with_escaped_slashes_action: 'keep_unchanged',
        request_headers_timeout_ms: 10000,
        idle_timeout_ms: 60000,
        max_connections: 0,
        max_requests_per_connection: 0,
        server_name: 'remora',
        server_header_transformation: 'overwrite',
      },
    ],
    clusters: [
      {
        name: 'backend',
        lb_policy: 'round_robin',
        endpoints: [{ address: '127.0.0.1', port: 3000 }, { address: 'backend.svc', port: 3001 }],
        connect_timeout_ms: 1000,
        idle_timeout_ms: 60000,
        max_requests_per_connection: 0,
        max_connections_per_endpoint: 1024,
        circuit_breakers: { max_connections: 1024, max_pending_requests: 1024, max_requests: 1024, max_retries: 3 },
        panic_threshold_percent: 50,
        protocol: 'http1',
        http2_protocol_options: { max_concurrent_streams: 100, initial_stream_window_size: 65535, initial_connection_window_size: 1048576 },
      },
      {
        name: 'api',
        lb_policy: 'least_request',
        endpoints: [{ address: '::1', port: 4000 }],
        connect_timeout_ms: 250,
        idle_timeout_ms: 60000,
        max_requests_per_connection: 0,
        max_connections_per_endpoint: 1024,
        circuit_breakers: { max_connections: 1024, max_pending_requests: 1024, max_requests: 1024, max_retries: 3 },
        panic_threshold_percent: 50,
        protocol: 'http1',
        http2_protocol_options: { max_concurrent_streams: 100, initial_stream_window_size: 65535, initial_connection_window_size: 1048576 },
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

  const grpc = configOf(withChanges({ 'listeners[0].access_log': { grpc: { cluster: 'api', log_name: 'edge' } } })).listeners[0];
  t.strictSame(grpc.access_log, { grpc: { cluster: 'api', log_name: 'edge', buffer_size_bytes: 16_384, flush_interval_ms: 1000 }, sample_ratio: 1 },
    'a gRPC service alone, with Envoy\'s buffering defaults');
  const both = configOf(withChanges({ 'listeners[0].access_log': { path: 'stdout', grpc: { cluster: 'api', log_name: 'edge', buffer_size_bytes: 0 } } })).listeners[0];
  t.strictSame(both.access_log, { path: 'stdout', grpc: { cluster: 'api', log_name: 'edge', buffer_size_bytes: 0, flush_interval_ms: 1000 }, sample_ratio: 1 }, 'a file and a service');
});

// Each case: changes applied to base(), and the exact list of expected [path, message substring].
const mistakes: [string, Record<string, unknown>, [string, string][]][] = [
  ['endpoint port out of range', { 'clusters[0].endpoints[0].port': 70000 },
    [['clusters[0].endpoints[0].port', 'must be an integer 1..65535']]],
  ['unknown key with did-you-mean', { [`${R}[1].matc`]: { path: '/health' }, [`${R}[1].match`]: undefined },
    [[`${R}[1].matc`, 'unknown key (did you mean "match"?)'], [`${R}[1].match`, 'is required']]],
  ['unknown key without a close match', { banana: 1 },
    [['banana', 'unknown key (allowed: workers, admin, probes, drain, worker_limits, stats, tracing, listeners, clusters)']]],
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
    [[`${R}[1]`, 'must set exactly one of "route", "direct_response" or "redirect", not "route" and "direct_response"']]],
  ['redirect with prefix_rewrite on a path match, and with path too', { [`${R}[1]`]: { match: { path: '/health' }, redirect: { path: '/a', prefix_rewrite: '/b/' } } },
    [[`${R}[1].redirect`, 'set at most one of "path", "prefix_rewrite" and "regex_rewrite", not "path" and "prefix_rewrite"'], [`${R}[1].redirect.prefix_rewrite`, 'only allowed with a "prefix" match (this route uses "path")']]],
  ['redirect with a bad code, scheme, host and path', { [`${R}[1]`]: { match: { prefix: '/' }, redirect: { response_code: 304, scheme: 'ht tp', host: 'a/b', path: 'x' } } },
    [[`${R}[1].redirect.scheme`, 'must be a URL scheme such as "https"'], [`${R}[1].redirect.host`, 'must be a host name (optionally with :port), without whitespace, "/", "?" or "#"'],
      [`${R}[1].redirect.path`, 'must start with "/"'], [`${R}[1].redirect.response_code`, 'must be 301, 302, 303, 307 or 308']]],
  ['route action with prefix_rewrite and regex_rewrite, and a substitution naming a missing group', { [`${R}[0].route.regex_rewrite`]: { pattern: '^/(a)', substitution: '/\\3' } },
    [[`${R}[0].route`, 'set at most one of "prefix_rewrite" and "regex_rewrite", not "prefix_rewrite" and "regex_rewrite"'],
      [`${R}[0].route.regex_rewrite.substitution`, 'substitution uses \\3, but the pattern has 1 capture group']]],
  ['redirect with path and regex_rewrite, the pattern invalid', { [`${R}[1]`]: { match: { prefix: '/' }, redirect: { path: '/a', regex_rewrite: { pattern: '(', substitution: '/' } } } },
    [[`${R}[1].redirect.regex_rewrite.pattern`, 'invalid regular expression: '], [`${R}[1].redirect`, 'set at most one of "path", "prefix_rewrite" and "regex_rewrite", not "path" and "regex_rewrite"']]],
  ['a mirror policy naming an unknown cluster, and a percent over 100', { [`${R}[0].route.request_mirror_policies`]: [{ cluster: 'shadow' }, { cluster: 'api', percent: 101 }] },
    [[`${R}[0].route.request_mirror_policies[1].percent`, 'must be a number 0..100'], [`${R}[0].route.request_mirror_policies[0].cluster`, 'unknown cluster "shadow" (defined: backend, api)']]],
  ['redirect route with upgrade_configs', { [`${R}[1]`]: { match: { prefix: '/' }, redirect: { scheme: 'https' }, upgrade_configs: [{ upgrade_type: 'websocket' }] } },
    [[`${R}[1].upgrade_configs`, 'needs "route": a redirect route answers every request itself, upgrades included']]],
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
  ['admin off loopback without allow_remote', { admin: { address: '0.0.0.0' } }, [['admin.address', 'stays on loopback unless "allow_remote: true"']]],
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
    [['clusters[1].name', 'must contain only visible ASCII characters']]],

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
  ['access_log without path or grpc', { 'listeners[0].access_log': { sample_ratio: 0.5 } },
    [['listeners[0].access_log', 'must set "path" (a file or stdout), "grpc" (a gRPC access log service), or both']]],
  ['access_log grpc to an unknown cluster', { 'listeners[0].access_log': { grpc: { cluster: 'als', log_name: 'edge' } } },
    [['listeners[0].access_log.grpc.cluster', 'unknown cluster "als" (defined: backend, api)']]],
  ['access_log grpc without log_name, format without path', { 'listeners[0].access_log': { grpc: { cluster: 'api' }, format: '%DURATION%' } },
    [['listeners[0].access_log.grpc.log_name', 'is required'],
      ['listeners[0].access_log.format', 'needs "path": a format shapes the lines written to a file or stdout, not the gRPC entries']]],
  ['access_log grpc on a TCP listener', { 'listeners[0].virtual_hosts': undefined, 'listeners[0].tcp_proxy': { cluster: 'api' }, 'listeners[0].access_log': { grpc: { cluster: 'api', log_name: 'x' } } },
    [['listeners[0].access_log.grpc', 'is for HTTP listeners: Remora sends HTTPAccessLogEntry records, not TCP connections (log those with "path")']]],
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
  ['access_log several mistakes', { 'listeners[0].access_log': { path: '', sample_ratio: 2, format: '%JSON%', encoding: 'json' } },
    [['listeners[0].access_log.encoding', 'unknown key (allowed: path, grpc, sample_ratio, format, json_format)'],
      ['listeners[0].access_log.path', 'must not be empty'],
      ['listeners[0].access_log.sample_ratio', 'must be a number 0..1'],
      ['listeners[0].access_log.format', 'unknown operator %JSON% at position 0']]],
  ['generate_traceparent not a boolean', { 'listeners[0].generate_traceparent': 'yes' },
    [['listeners[0].generate_traceparent', 'must be true or false']]],
  ['unknown listener key near generate_traceparent', { 'listeners[0].generate_traceparents': true },
    [['listeners[0].generate_traceparents', 'unknown key (did you mean "generate_traceparent"?)']]],
  ['duplicate listener name and address:port', { 'listeners[1]': { name: 'main', port: 8080, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 404 } }] }] } },
    [['listeners[1].name', 'duplicate listener name "main"'], ['listeners[1].port', 'duplicate address and port "127.0.0.1:8080"']]],
  // retry_policy
  ['retry_policy not an object', { [RP]: 3 }, [[RP, 'must be an object (mapping)']]],
  ['unknown route action key near retry_policy', { [`${R}[0].route.retry_polcy`]: {} },
    [[`${R}[0].route.retry_polcy`, 'unknown key (did you mean "retry_policy"?)']]],
  ['unknown retry_policy key', { [RP]: { num_retris: 2 } },
    [[`${RP}.num_retris`, 'unknown key (did you mean "num_retries"?)']]],
  ['retry_on with an unknown condition', { [RP]: { retry_on: ['5xx', '503', 7] } },
    [[`${RP}.retry_on[1]`, 'must be one of 5xx, gateway-error, reset, connect-failure, retriable-4xx, retriable-status-codes'],
      [`${RP}.retry_on[2]`, 'must be one of 5xx, gateway-error']]],
  ['retry_on not a list', { [RP]: { retry_on: '5xx' } }, [[`${RP}.retry_on`, 'must be a list']]],
  ['num_retries above 10', { [RP]: { num_retries: 11 } }, [[`${RP}.num_retries`, 'must be an integer 0..10']]],
  ['num_retries not an integer', { [RP]: { num_retries: 1.5 } }, [[`${RP}.num_retries`, 'must be an integer 0..10']]],
  ['per_try_timeout_ms negative', { [RP]: { per_try_timeout_ms: -1 } },
    [[`${RP}.per_try_timeout_ms`, 'must be an integer 0..3600000 (milliseconds)']]],
  ['retriable_status_codes out of range', { [RP]: { retry_on: ['retriable-status-codes'], retriable_status_codes: [503, 600, '409', 99] } },
    [[`${RP}.retriable_status_codes[1]`, 'must be an integer 100..599'], [`${RP}.retriable_status_codes[2]`, 'must be an integer 100..599'],
      [`${RP}.retriable_status_codes[3]`, 'must be an integer 100..599']]],
  ['retriable-status-codes without codes', { [RP]: { retry_on: ['5xx', 'retriable-status-codes'] } },
    [[`${RP}.retriable_status_codes`, 'must list at least one status code when retry_on includes "retriable-status-codes"']]],
  ['retriable-status-codes with an empty list', { [RP]: { retry_on: ['retriable-status-codes'], retriable_status_codes: [] } },
    [[`${RP}.retriable_status_codes`, 'must list at least one status code']]],
  ['base_interval_ms 0', { [RP]: { base_interval_ms: 0 } }, [[`${RP}.base_interval_ms`, MS]]],
  ['max_interval_ms below base_interval_ms', { [RP]: { base_interval_ms: 100, max_interval_ms: 99 } },
    [[`${RP}.max_interval_ms`, 'must be at least base_interval_ms (100)']]],
  ['max_interval_ms too large', { [RP]: { max_interval_ms: 3_600_001 } }, [[`${RP}.max_interval_ms`, MS]]],
  ['allow_request_headers not a boolean', { [RP]: { allow_request_headers: 'yes' } },
    [[`${RP}.allow_request_headers`, 'must be true or false']]],
  ['retry_non_idempotent_on_reset not a boolean', { [RP]: { retry_non_idempotent_on_reset: 1 } },
    [[`${RP}.retry_non_idempotent_on_reset`, 'must be true or false']]],
  ['buffer_limit_bytes above 16 MiB', { [RP]: { buffer_limit_bytes: 16_777_217 } },
    [[`${RP}.buffer_limit_bytes`, 'must be an integer 0..16777216']]],
  // rate_limits
  ['rate_limits not a list', { [LRL]: { name: 'a' } }, [[LRL, 'must be a list']]],
  ['rate limit not an object', { [LRL]: ['global'] }, [[`${LRL}[0]`, 'must be an object (mapping)']]],
  ['unknown listener key near rate_limits', { 'listeners[0].rate_limit': [] },
    [['listeners[0].rate_limit', 'unknown key (did you mean "rate_limits"?)']]],
  ['unknown route key near rate_limits', { [`${R}[0].ratelimits`]: [] },
    [[`${R}[0].ratelimits`, 'unknown key (did you mean "rate_limits"?)']]],
  ['unknown rate limit key', { [LRL]: [rl({ fill_intervall_ms: 5 })] },
    [[`${LRL}[0].fill_intervall_ms`, 'unknown key (did you mean "fill_interval_ms"?)']]],
  ['rate limit without a name', { [LRL]: [rl({ name: undefined })] }, [[`${LRL}[0].name`, 'is required (a string)']]],
  ['rate limit with an invalid name', { [LRL]: [rl({ name: 'per ip' })] }, [[`${LRL}[0].name`, 'must contain only visible ASCII characters']]],
  ['duplicate rate limit names in a listener', { [LRL]: [rl(), rl({ name: 'other' }), rl()] },
    [[`${LRL}[2].name`, `duplicate rate limit name "global" (first used at ${LRL}[0].name)`]]],
  ['duplicate rate limit names in a route', { [`${R}[0].rate_limits`]: [rl(), rl()] },
    [[`${R}[0].rate_limits[1].name`, `duplicate rate limit name "global" (first used at ${R}[0].rate_limits[0].name)`]]],
  ['max_tokens missing', { [LRL]: [rl({ max_tokens: undefined })] },
    [[`${LRL}[0].max_tokens`, 'is required (an integer 1..1000000000)']]],
  ['max_tokens 0', { [LRL]: [rl({ max_tokens: 0 })] }, [[`${LRL}[0].max_tokens`, 'must be an integer 1..1000000000']]],
  ['max_tokens too large', { [LRL]: [rl({ max_tokens: 1_000_000_001 })] }, [[`${LRL}[0].max_tokens`, 'must be an integer 1..1000000000']]],
  ['tokens_per_fill 0', { [LRL]: [rl({ tokens_per_fill: 0 })] }, [[`${LRL}[0].tokens_per_fill`, 'must be an integer 1..1000000000']]],
  ['fill_interval_ms missing', { [LRL]: [rl({ fill_interval_ms: undefined })] },
    [[`${LRL}[0].fill_interval_ms`, 'is required (an integer 50..3600000 (milliseconds))']]],
  ['fill_interval_ms below 50', { [LRL]: [rl({ fill_interval_ms: 49 })] },
    [[`${LRL}[0].fill_interval_ms`, 'must be an integer 50..3600000 (milliseconds)']]],
  ['rate limit key empty', { [LRL]: [rl({ key: {} })] }, [[`${LRL}[0].key`, 'must name at least one header or set client_ip: true']]],
  ['rate limit key with no headers and client_ip false', { [LRL]: [rl({ key: { headers: [], client_ip: false } })] },
    [[`${LRL}[0].key`, 'must name at least one header or set client_ip: true']]],
  ['rate limit key not an object', { [LRL]: [rl({ key: 'x-user' })] }, [[`${LRL}[0].key`, 'must be an object (mapping)']]],
  ['rate limit key headers not a list', { [LRL]: [rl({ key: { headers: 'x-user' } })] }, [[`${LRL}[0].key.headers`, 'must be a list']]],
  ['rate limit key with an invalid header name', { [LRL]: [rl({ key: { headers: ['x-user', 'X User', 5] } })] },
    [[`${LRL}[0].key.headers[1]`, '"X User" is not a valid header name'], [`${LRL}[0].key.headers[2]`, 'must be a string (a header name)']]],
  ['rate limit key client_ip not a boolean', { [LRL]: [rl({ key: { client_ip: 'yes' } })] },
    [[`${LRL}[0].key.client_ip`, 'must be true or false']]],
  ['unknown rate limit key field', { [LRL]: [rl({ key: { header: ['x-user'] } })] },
    [[`${LRL}[0].key.header`, 'unknown key (did you mean "headers"?)'], [`${LRL}[0].key`, 'must name at least one header or set client_ip: true']]],
  ['shadow not a boolean', { [LRL]: [rl({ shadow: 'no' })] }, [[`${LRL}[0].shadow`, 'must be true or false']]],
  ['rate limit on a direct_response route', { [`${R}[1].rate_limits`]: [rl({ max_tokens: -5 })] },
    [[`${R}[1].rate_limits[0].max_tokens`, 'must be an integer 1..1000000000']]],
  // circuit_breakers
  ['circuit_breakers not an object', { [`${C0}.circuit_breakers`]: [] }, [[`${C0}.circuit_breakers`, 'must be an object (mapping)']]],
  ['unknown circuit_breakers key', { [`${C0}.circuit_breakers`]: { max_connection: 5 } },
    [[`${C0}.circuit_breakers.max_connection`, 'unknown key (did you mean "max_connections"?)']]],
  ['circuit breaker thresholds out of range',
    { [`${C0}.circuit_breakers`]: { max_connections: 0, max_pending_requests: 0, max_requests: 1_000_000_001, max_retries: -1 } },
    [[`${C0}.circuit_breakers.max_connections`, 'must be an integer 1..1000000000'],
      [`${C0}.circuit_breakers.max_pending_requests`, 'must be an integer 1..1000000000'],
      [`${C0}.circuit_breakers.max_requests`, 'must be an integer 1..1000000000'],
      [`${C0}.circuit_breakers.max_retries`, 'must be an integer 0..1000000000']]],
  ['retry_budget not an object', { [`${C0}.circuit_breakers`]: { retry_budget: 20 } },
    [[`${C0}.circuit_breakers.retry_budget`, 'must be an object (mapping)']]],
  ['retry_budget out of range', { [`${C0}.circuit_breakers`]: { retry_budget: { budget_percent: 100.5, min_retry_concurrency: 1_000_001 } } },
    [[`${C0}.circuit_breakers.retry_budget.budget_percent`, 'must be a number 0..100'],
      [`${C0}.circuit_breakers.retry_budget.min_retry_concurrency`, 'must be an integer 0..1000000']]],
  ['unknown retry_budget key', { [`${C0}.circuit_breakers`]: { retry_budget: { percent: 5 } } },
    [[`${C0}.circuit_breakers.retry_budget.percent`, 'unknown key (allowed: budget_percent, min_retry_concurrency)']]],
  // outlier_detection
  ['outlier_detection not an object', { [`${C0}.outlier_detection`]: true }, [[`${C0}.outlier_detection`, 'must be an object (mapping)']]],
  ['unknown outlier_detection key', { [`${C0}.outlier_detection`]: { consecutive_5xxx: 3 } },
    [[`${C0}.outlier_detection.consecutive_5xxx`, 'unknown key (did you mean "consecutive_5xx"?)']]],
  ['outlier_detection values out of range', { [`${C0}.outlier_detection`]: {
    consecutive_5xx: 1001, consecutive_gateway_failure: -1, interval_ms: 99, base_ejection_time_ms: 0, max_ejection_percent: 101,
    probation_requests: 0, success_rate_minimum_hosts: 10_001, success_rate_request_volume: 0, success_rate_stdev_factor: -0.1,
  } },
  [[`${C0}.outlier_detection.base_ejection_time_ms`, MS],
    [`${C0}.outlier_detection.consecutive_5xx`, 'must be an integer 0..1000'],
    [`${C0}.outlier_detection.consecutive_gateway_failure`, 'must be an integer 0..1000'],
    [`${C0}.outlier_detection.interval_ms`, 'must be an integer 100..3600000 (milliseconds)'],
    [`${C0}.outlier_detection.max_ejection_percent`, 'must be an integer 0..100'],
    [`${C0}.outlier_detection.probation_requests`, 'must be an integer 1..1000'],
    [`${C0}.outlier_detection.success_rate_minimum_hosts`, 'must be an integer 0..10000'],
    [`${C0}.outlier_detection.success_rate_request_volume`, 'must be an integer 1..1000000'],
    [`${C0}.outlier_detection.success_rate_stdev_factor`, 'must be a number 0..100']]],
  ['max_ejection_time_ms below base_ejection_time_ms', { [`${C0}.outlier_detection`]: { base_ejection_time_ms: 60_000, max_ejection_time_ms: 59_999 } },
    [[`${C0}.outlier_detection.max_ejection_time_ms`, 'must be at least base_ejection_time_ms (60000)']]],
  ['success_rate_stdev_factor not a number', { [`${C0}.outlier_detection`]: { success_rate_stdev_factor: '1.9' } },
    [[`${C0}.outlier_detection.success_rate_stdev_factor`, 'must be a number 0..100']]],
  // health_check
  ['health_check not an object', { [`${C0}.health_check`]: '/healthz' }, [[`${C0}.health_check`, 'must be an object (mapping)']]],
  ['health_check without path or grpc', { [`${C0}.health_check`]: { interval_ms: 1000 } },
    [[`${C0}.health_check`, 'needs "path" (an HTTP check), "grpc" (a gRPC health check) or "tcp" (a TCP check)']]],
  ['health_check with both path and grpc', { [`${C0}.health_check`]: { path: '/h', grpc: {} } },
    [[`${C0}.health_check.grpc`, 'cannot be combined with "path": a check is HTTP, gRPC or TCP']]],
  ['codec_type http2 on a uws listener', { 'listeners[0].codec': 'uws', 'listeners[0].codec_type': 'http2' },
    [['listeners[0].codec_type', 'must be "http1" or "auto" with codec "uws" (the uWS front end speaks HTTP/1.1 only)']]],
  ['cluster protocol unknown', { [`${C0}.protocol`]: 'h3' },
    [[`${C0}.protocol`, 'must be one of http1, http2, downstream']]],
  ['health_check path without a leading slash', { [`${C0}.health_check`]: { path: 'healthz' } },
    [[`${C0}.health_check.path`, 'must start with "/"']]],
  ['health_check path with whitespace', { [`${C0}.health_check`]: { path: '/health z' } },
    [[`${C0}.health_check.path`, 'must not contain whitespace']]],
  ['health_check host empty', { [`${C0}.health_check`]: { path: '/', host: '' } },
    [[`${C0}.health_check.host`, 'must be a non-empty host name without whitespace']]],
  ['health_check host with whitespace', { [`${C0}.health_check`]: { path: '/', host: 'a b' } },
    [[`${C0}.health_check.host`, 'must be a non-empty host name without whitespace']]],
  ['health_check values out of range', { [`${C0}.health_check`]: { path: '/', interval_ms: 99, timeout_ms: 0, healthy_threshold: 0, unhealthy_threshold: 101 } },
    [[`${C0}.health_check.interval_ms`, 'must be an integer 100..3600000 (milliseconds)'],
      [`${C0}.health_check.timeout_ms`, MS],
      [`${C0}.health_check.healthy_threshold`, 'must be an integer 1..100'],
      [`${C0}.health_check.unhealthy_threshold`, 'must be an integer 1..100']]],
  ['health_check expected_statuses not pairs', { [`${C0}.health_check`]: {
    path: '/', expected_statuses: [[200, 300], [300, 200], [99, 200], [200, 601], [200], '200-300', [200.5, 300], [204, 204], [200, 300, 400]],
  } },
  [1, 2, 3, 4, 5, 6, 7, 8].map((i) => [`${C0}.health_check.expected_statuses[${i}]`,
    'must be a [start, end) pair of status codes with 100 <= start < end <= 600'] as [string, string])],
  ['health_check expected_statuses empty', { [`${C0}.health_check`]: { path: '/', expected_statuses: [] } },
    [[`${C0}.health_check.expected_statuses`, 'must list at least one [start, end) range']]],
  ['health_check expected_statuses not a list', { [`${C0}.health_check`]: { path: '/', expected_statuses: 200 } },
    [[`${C0}.health_check.expected_statuses`, 'must be a list']]],
  ['unknown health_check key', { [`${C0}.health_check`]: { path: '/', intervall_ms: 1000 } },
    [[`${C0}.health_check.intervall_ms`, 'unknown key (did you mean "interval_ms"?)']]],
  // panic threshold and cluster keys
  ['panic_threshold_percent above 100', { [`${C0}.panic_threshold_percent`]: 101 },
    [[`${C0}.panic_threshold_percent`, 'must be an integer 0..100']]],
  ['unknown cluster key near health_check', { [`${C0}.health_checks`]: { path: '/' } },
    [[`${C0}.health_checks`, 'unknown key (did you mean "health_check"?)']]],
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

t.test('retry_policy: absent by default; defaults filled in', async (t) => {
  t.notOk('retry_policy' in (configOf(base()).listeners[0].virtual_hosts[0].routes[0].route ?? {}), 'no retry_policy unless configured');
  const policyOf = (p: unknown) => configOf(withChanges({ [RP]: p })).listeners[0].virtual_hosts[0].routes[0].route?.retry_policy;
  t.strictSame(policyOf({}), {
    retry_on: [],
    num_retries: 1,
    per_try_timeout_ms: 0,
    retriable_status_codes: [],
    base_interval_ms: 25,
    max_interval_ms: 250,
    allow_request_headers: false,
    retry_non_idempotent_on_reset: false,
    buffer_limit_bytes: 65536,
  });
  t.match(policyOf({ base_interval_ms: 100 }), { base_interval_ms: 100, max_interval_ms: 1000 }, 'max_interval_ms defaults to 10 × base');
  t.match(policyOf({ base_interval_ms: 100, max_interval_ms: 100 }), { max_interval_ms: 100 }, 'max_interval_ms may equal base');
  t.strictSame(policyOf({ retry_on: ['5xx', 'reset', '5xx'] })?.retry_on, ['5xx', 'reset'], 'duplicate conditions dropped');
  t.strictSame(policyOf({ retriable_status_codes: [409] })?.retriable_status_codes, [409], 'codes kept without retriable-status-codes');
});

t.test('rate_limits: empty by default; defaults filled in', async (t) => {
  const cfg = configOf(base());
  t.strictSame(cfg.listeners[0].rate_limits, []);
  t.strictSame(cfg.listeners[0].virtual_hosts[0].routes[1].rate_limits, []);

  const l = configOf(withChanges({
    [LRL]: [
      rl(),
      rl({ name: 'per-user', key: { headers: ['X-User', 'Host'] } }),
      rl({ name: 'per-ip', max_tokens: 10, tokens_per_fill: 2, key: { client_ip: true }, shadow: true }),
    ],
    [`${R}[1].rate_limits`]: [rl()],
  })).listeners[0];
  t.strictSame(l.rate_limits, [
    { name: 'global', max_tokens: 100, tokens_per_fill: 1, fill_interval_ms: 1000, shadow: false },
    { name: 'per-user', max_tokens: 100, tokens_per_fill: 1, fill_interval_ms: 1000, key: { headers: ['x-user', 'host'], client_ip: false }, shadow: false },
    { name: 'per-ip', max_tokens: 10, tokens_per_fill: 2, fill_interval_ms: 1000, key: { headers: [], client_ip: true }, shadow: true },
  ], 'tokens_per_fill defaults to 1 (Envoy); key headers lower-cased (host may be read)');
  t.strictSame(l.virtual_hosts[0].routes[1].rate_limits,
    [{ name: 'global', max_tokens: 100, tokens_per_fill: 1, fill_interval_ms: 1000, shadow: false }],
    'a direct_response route may have rate limits; names need only be unique within their list');
});

t.test('cluster resilience: circuit breaker defaults; outlier detection and health checks off unless configured', async (t) => {
  const c = configOf(base()).clusters[0];
  t.strictSame(c.circuit_breakers, { max_connections: 1024, max_pending_requests: 1024, max_requests: 1024, max_retries: 3 });
  t.notOk('outlier_detection' in c, 'no outlier_detection unless configured');
  t.notOk('health_check' in c, 'no health_check unless configured');
  t.equal(c.panic_threshold_percent, 50);

  const d = configOf(withChanges({
    [`${C0}.circuit_breakers`]: { max_requests: 10, retry_budget: {} },
    [`${C0}.outlier_detection`]: {},
    [`${C0}.health_check`]: { path: '/healthz' },
    [`${C0}.panic_threshold_percent`]: 0,
  })).clusters[0];
  t.strictSame(d.circuit_breakers, {
    max_connections: 1024, max_pending_requests: 1024, max_requests: 10, max_retries: 3,
    retry_budget: { budget_percent: 20, min_retry_concurrency: 3 },
  });
  t.strictSame(d.outlier_detection, {
    consecutive_5xx: 5,
    consecutive_gateway_failure: 5,
    interval_ms: 10000,
    base_ejection_time_ms: 30000,
    max_ejection_time_ms: 300000,
    max_ejection_percent: 10,
    probation_requests: 1,
    success_rate_minimum_hosts: 5,
    success_rate_request_volume: 100,
    success_rate_stdev_factor: 1.9,
  });
  t.strictSame(d.health_check, {
    path: '/healthz',
    host: 'backend',
    interval_ms: 5000,
    timeout_ms: 1000,
    healthy_threshold: 2,
    unhealthy_threshold: 3,
    expected_statuses: [[200, 300]],
    retriable_statuses: [],
    receive: [],
    response_buffer_size: 1024,
    no_traffic_interval_ms: 60000,
    no_traffic_healthy_interval_ms: 60000,
    unhealthy_interval_ms: 5000,
    unhealthy_edge_interval_ms: 5000,
    healthy_edge_interval_ms: 5000,
    interval_jitter_ms: 0,
    interval_jitter_percent: 0,
    initial_jitter_ms: 0,
  }, 'host defaults to the cluster name; intervals default as in Envoy');
  t.equal(d.panic_threshold_percent, 0, '0 disables panic mode');

  const long = configOf(withChanges({ [`${C0}.outlier_detection`]: { base_ejection_time_ms: 600_000 } })).clusters[0];
  t.match(long.outlier_detection, { base_ejection_time_ms: 600000, max_ejection_time_ms: 600000 },
    'max_ejection_time_ms defaults to base_ejection_time_ms when that exceeds 300000 (Envoy)');
});

t.test('a full config using every feature is valid', async (t) => {
  const raw = withChanges({
    [RP]: {
      retry_on: ['5xx', 'gateway-error', 'reset', 'connect-failure', 'retriable-4xx', 'retriable-status-codes'],
      num_retries: 3,
      per_try_timeout_ms: 2000,
      retriable_status_codes: [409, 429],
      base_interval_ms: 50,
      max_interval_ms: 2000,
      allow_request_headers: true,
      retry_non_idempotent_on_reset: true,
      buffer_limit_bytes: 0,
    },
    [LRL]: [rl({ name: 'all', max_tokens: 1000, tokens_per_fill: 100, fill_interval_ms: 50 }),
      rl({ name: 'tenant-ip', key: { headers: ['X-Tenant'], client_ip: true }, shadow: true })],
    [`${R}[0].rate_limits`]: [rl({ name: 'users' })],
    [`${R}[1].rate_limits`]: [rl({ name: 'health', key: { client_ip: true } })],
    [`${C0}.circuit_breakers`]: {
      max_connections: 100, max_pending_requests: 50, max_requests: 200, max_retries: 0,
      retry_budget: { budget_percent: 12.5, min_retry_concurrency: 0 },
    },
    [`${C0}.outlier_detection`]: {
      consecutive_5xx: 0, consecutive_gateway_failure: 3, interval_ms: 100, base_ejection_time_ms: 1000, max_ejection_time_ms: 1000,
      max_ejection_percent: 100, probation_requests: 2, success_rate_minimum_hosts: 0, success_rate_request_volume: 1, success_rate_stdev_factor: 0,
    },
    [`${C0}.health_check`]: {
      path: '/healthz?full=1', host: 'backend.internal', interval_ms: 100, timeout_ms: 1, healthy_threshold: 1, unhealthy_threshold: 100,
      expected_statuses: [[100, 600], [204, 205]],
    },
    [`${C0}.panic_threshold_percent`]: 100,
    'clusters[1].health_check': { path: '/' },
  });
  const r = validateConfig(raw, { defaultWorkers: 4 });
  if (!r.ok) t.fail(formatErrors('full', r.errors));
  else {
    const c = r.config.clusters[0];
    t.match(c, { circuit_breakers: { retry_budget: { budget_percent: 12.5 } }, health_check: { host: 'backend.internal', expected_statuses: [[100, 600], [204, 205]] } });
    t.equal(r.config.clusters[1].health_check?.host, 'api');
    t.strictSame(r.config.listeners[0].rate_limits[1].key, { headers: ['x-tenant'], client_ip: true });
    t.ok(Object.isFrozen(c.health_check?.expected_statuses[0]), 'nested config is frozen');
    t.ok(Object.isFrozen(r.config.listeners[0].rate_limits[1].key?.headers), 'rate limit key is frozen');
  }
});

t.test('several mistakes in the new sections are all reported', async (t) => {
  const errors = errorsOf(withChanges({
    [RP]: { num_retries: 11, retry_on: ['retriable-status-codes'], base_interval_ms: 0 },
    [LRL]: [rl({ fill_interval_ms: 10 }), rl({ key: {} })],
    [`${R}[1].rate_limits`]: [{ name: 'x' }],
    [`${C0}.circuit_breakers`]: { max_requests: 0, retry_budgett: {} },
    [`${C0}.outlier_detection`]: { max_ejection_percent: 200 },
    'clusters[1].health_check': { path: 'nope', expected_statuses: [[300, 200]] },
    'clusters[1].panic_threshold_percent': -1,
  }));
  t.strictSame(errors.map((e) => e.path).sort(), [
    `${RP}.retriable_status_codes`,
    `${RP}.base_interval_ms`,
    `${RP}.num_retries`,
    `${LRL}[0].fill_interval_ms`,
    `${LRL}[1].name`,
    `${LRL}[1].key`,
    `${R}[1].rate_limits[0].max_tokens`,
    `${R}[1].rate_limits[0].fill_interval_ms`,
    `${C0}.circuit_breakers.retry_budgett`,
    `${C0}.circuit_breakers.max_requests`,
    `${C0}.outlier_detection.max_ejection_percent`,
    'clusters[1].health_check.path',
    'clusters[1].health_check.expected_statuses[0]',
    'clusters[1].panic_threshold_percent',
  ].sort());
  t.match(errors.find((e) => e.path.endsWith('retry_budgett'))?.message, 'did you mean "retry_budget"?');
});

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

t.test('listener tls, forward_client_cert_details and authorization', async (t) => {
  const listenerWith = (extra: Record<string, unknown>, routeExtra: Record<string, unknown> = {}) => {
    const cfg = base();
    const l = (cfg.listeners as Record<string, unknown>[])[0];
    Object.assign(l, extra);
    const routes = ((l.virtual_hosts as Record<string, unknown>[])[0].routes as Record<string, unknown>[]);
    Object.assign(routes[0], routeExtra);
    return cfg;
  };
  const mtls = configOf(listenerWith({ tls: { cert_file: '/c.pem', key_file: '/k.pem', ca_file: '/ca.pem' } })).listeners[0];
  t.same(mtls.tls, { cert_file: '/c.pem', key_file: '/k.pem', additional_certificates: [], ca_file: '/ca.pem', require_client_certificate: true, min_version: 'TLSv1.2', session_resumption: 'tickets' },
    'expected client certificates required by default when ca_file is set');
  t.equal(mtls.forward_client_cert_details, 'sanitize_set', 'expected XFCC sanitize_set by default on an mTLS listener');
  const plainTls = configOf(listenerWith({ tls: { cert_file: '/c.pem', key_file: '/k.pem' } })).listeners[0];
  t.equal(plainTls.tls?.require_client_certificate, false, 'expected no client certificate without ca_file');
  t.equal(plainTls.forward_client_cert_details, 'sanitize', 'expected sanitize without client certificates');
  const errors = errorsOf(
    listenerWith(
      {
        tls: { cert_file: '', require_client_certificate: true, min_version: 'SSLv3' },
        forward_client_cert_details: 'forward',
        authorization: { allow: ['spiffe://a/*/b', ''], deny: 'x' },
      },
      { authorization: {} },
    ),
  );
  const L = 'listeners[0]';
  t.same(
    errors.map((e) => e.path).sort(),
    [
      `${L}.tls.cert_file`, `${L}.tls.key_file`, `${L}.tls.require_client_certificate`, `${L}.tls.min_version`,
      `${L}.forward_client_cert_details`, `${L}.authorization.allow[0]`, `${L}.authorization.allow[1]`, `${L}.authorization.deny`,
      `${R}[0].authorization`,
    ].sort(),
    'expected every TLS and authorization error listed by path',
  );
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

t.test('endpoints over all clusters are capped by the shared-state capacity', async (t) => {
  const { MAX_ENDPOINTS } = await import('../../src/shared/limits.js');
  const endpoints = (n: number) => Array.from({ length: n }, (_, i) => ({ address: '127.0.0.1', port: 1 + (i % 65535) }));
  const half = Math.floor(MAX_ENDPOINTS / 2);
  const raw = (extra: number) => ({
    listeners: [{ name: 'l', port: 0, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'a' } }] }] }],
    clusters: [{ name: 'a', endpoints: endpoints(half) }, { name: 'b', endpoints: endpoints(MAX_ENDPOINTS - half + extra) }],
  });
  t.ok(validateConfig(raw(0), { defaultWorkers: 1 }).ok, `${MAX_ENDPOINTS} endpoints are accepted`);
  const over = validateConfig(raw(1), { defaultWorkers: 1 });
  t.equal(over.ok, false, `${MAX_ENDPOINTS + 1} endpoints are rejected`);
  if (!over.ok) t.strictSame(over.errors, [{ path: 'clusters', message: `at most ${MAX_ENDPOINTS} endpoints over all clusters (got ${MAX_ENDPOINTS + 1})` }]);
});

t.test('rate limits without a key are capped by the shared bucket capacity', async (t) => {
  const { MAX_BUCKETS } = await import('../../src/shared/limits.js');
  const limits = (n: number, prefix: string, key?: unknown) =>
    Array.from({ length: n }, (_, i) => ({ name: `${prefix}${i}`, max_tokens: 1, fill_interval_ms: 1000, ...(key ? { key } : {}) }));
  const onListener = Math.floor(MAX_BUCKETS / 2);
  const raw = (onRoute: number, keyed: number) => ({
    listeners: [{
      name: 'l', port: 0, rate_limits: [...limits(onListener, 'l'), ...limits(keyed, 'k', { client_ip: true })],
      virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200 }, rate_limits: limits(onRoute, 'r') }] }],
    }],
  });
  t.ok(validateConfig(raw(MAX_BUCKETS - onListener, 10), { defaultWorkers: 1 }).ok,
    `${MAX_BUCKETS} unkeyed rate limits (over listeners and routes) are accepted; keyed ones do not count`);
  const over = validateConfig(raw(MAX_BUCKETS - onListener + 1, 0), { defaultWorkers: 1 });
  t.equal(over.ok, false, `${MAX_BUCKETS + 1} unkeyed rate limits are rejected`);
  if (!over.ok) {
    t.strictSame(over.errors, [{ path: 'listeners', message: `at most ${MAX_BUCKETS} rate limits without a key over all listeners and routes (got ${MAX_BUCKETS + 1})` }]);
  }
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

t.test('listener front-end settings: enums, ranges and the TLS codec rule, every error by path', async (t) => {
  const r = validateConfig({
    listeners: [{
      name: 'l', port: 0, codec: 'fast', path_with_escaped_slashes_action: 'decode', server_header_transformation: 'drop',
      idle_timeout_ms: 5, max_request_headers_count: 0, server_name: 'bad\nname',
      virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200 } }] }],
    }, {
      name: 't', port: 0, codec: 'uws', tls: { cert_file: '/c.pem', key_file: '/k.pem' },
      virtual_hosts: [{ name: 'v2', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200 } }] }],
    }],
    clusters: [],
  }, { defaultWorkers: 1 });
  t.notOk(r.ok, 'rejected');
  const paths = r.ok ? [] : r.errors.map((e) => e.path);
  for (const p of ['listeners[0].codec', 'listeners[0].path_with_escaped_slashes_action', 'listeners[0].server_header_transformation',
    'listeners[0].idle_timeout_ms', 'listeners[0].max_request_headers_count', 'listeners[0].server_name', 'listeners[1].codec']) {
    t.ok(paths.includes(p), `expected an error at ${p}; got ${JSON.stringify(paths)}`);
  }
});

t.test('schema walker and second pass: errors listed by listener and cluster, one error per wrong enum', async (t) => {
  const errors = errorsOf(withChanges({
    'clusters[1].lb_policy': 5,
    'clusters[0].endpoints[0].port': 0,
    [`${R}[0].route.cluster`]: 'nope',
    [`${R}[2].match.regex`]: '(',
    workers: 300,
  }));
  t.strictSame(errors.map((e) => e.path), [
    'workers',
    `${R}[2].match.regex`,
    `${R}[0].route.cluster`,
    'clusters[0].endpoints[0].port',
    'clusters[1].lb_policy',
  ], 'root fields, then each listener (schema errors, then references), then each cluster');
  t.equal(errors.find((e) => e.path === 'clusters[1].lb_policy')?.message, 'must be one of round_robin, least_request, random');
});

t.test('conditional defaults are filled in by the second pass', async (t) => {
  const cfg = configOf(withChanges({
    'listeners[0].tls': { cert_file: '/c.pem', key_file: '/k.pem', ca_file: '/ca.pem' },
    [RP]: { base_interval_ms: 40 },
    [`${C0}.outlier_detection`]: { base_ejection_time_ms: 400_000 },
    [`${C0}.health_check`]: { path: '/h', interval_ms: 700, unhealthy_interval_ms: 900 },
  }));
  const l = cfg.listeners[0];
  t.equal(l.tls?.require_client_certificate, true);
  t.equal(l.forward_client_cert_details, 'sanitize_set');
  t.equal(l.virtual_hosts[0].routes[0].route?.retry_policy?.max_interval_ms, 400);
  t.equal(cfg.clusters[0].outlier_detection?.max_ejection_time_ms, 400_000);
  t.match(cfg.clusters[0].health_check, { host: 'backend', unhealthy_interval_ms: 900, unhealthy_edge_interval_ms: 900, healthy_edge_interval_ms: 700 });
  t.equal(Object.keys(cfg)[0], 'workers', 'a conditional default keeps its place among the keys');
});

t.test('names as control planes write them are accepted (Istio, Envoy Gateway)', async (t) => {
  const istio = 'outbound|9080||reviews.default.svc.cluster.local';
  const c = configOf(withChanges({
    'clusters[1].name': istio,
    'listeners[0].virtual_hosts[0].routes[2].route.weighted_clusters[1].cluster': istio,
    'listeners[0].virtual_hosts[1].routes[0].route.cluster': 'backend',
    'listeners[0].name': 'httproute/default/eg/rule/0',
  }));
  t.equal(c.clusters[1].name, istio);
  t.equal(c.listeners[0].name, 'httproute/default/eg/rule/0');
});

t.test('worker_limits.idle_heap_trim_after_ms: 0 or at least 10 s', async (t) => {
  const withTrim = (ms: number) => ({ ...base(), worker_limits: { idle_heap_trim_after_ms: ms } });
  t.equal(configOf(withTrim(0)).worker_limits.idle_heap_trim_after_ms, 0, '0 (never) is accepted');
  t.equal(configOf(withTrim(10_000)).worker_limits.idle_heap_trim_after_ms, 10_000, '10000 is accepted');
  const errors = errorsOf(withTrim(5000));
  t.equal(errors.length, 1, `one error for 5000 (saw ${JSON.stringify(errors)})`);
  t.equal(errors[0]?.path, 'worker_limits.idle_heap_trim_after_ms', 'named by its path');
  t.match(errors[0]?.message ?? '', /must be 0 \(off\) or at least 10000/, 'saying what it must be');
});
