// Unit tests for the xDS translation (src/xds/translate.ts) and its inverse
// (src/xds/encode.ts): Remora configs survive toXdsResources → encodeAny →
// decodeAny → translateXds unchanged; unsupported fields are rejected with the resource
// name and the field path; validateConfig's errors point at the xDS field; missing
// RDS/EDS resources are "not ready", not errors; Envoy's defaults and Durations.

import t from 'tap';
import type { RemoraConfig } from '../../src/config/types.js';
import { edsClusters, missingResources, referencedRoutes, type XdsResourceSet } from '../../src/xds/resources.js';
import { formatRejection, translateXds, type XdsTranslateResult } from '../../src/xds/translate.js';
import { grpcApiListener, toXdsResources } from '../../src/xds/encode.js';
import { TypeUrl, type AnyMessage } from '../../src/xds/protos.js';
import { arr, baseOf, errorsOf, hcmOf, obj, overTheWire, protos, rewire, setHcm, valid, type MutableSet, type Obj } from '../helpers/xds.js';

/** A result without its count of fields accepted without effect (noEffect, which
 *  test/unit/xds-no-effect.test.ts checks): what those fields must leave unchanged. */
const effect = (r: XdsTranslateResult): unknown => (r.ok ? { ...r, noEffect: undefined } : r);


// ---------------------------------------------------------------------------
// Configs

/** docs/config.md's complete example (file paths aside). */
const DOCS_EXAMPLE = {
  workers: 4,
  admin: { address: '127.0.0.1', port: 9901 },
  listeners: [{
    name: 'ingress',
    address: '0.0.0.0',
    port: 8080,
    access_log: { path: 'stdout', sample_ratio: 0.1 },
    generate_traceparent: true,
    rate_limits: [{ name: 'ingress-total', max_tokens: 1000, fill_interval_ms: 1000 }],
    virtual_hosts: [
      {
        name: 'api',
        domains: ['api.example.com', 'api.example.com:8443', '*.api.example.com'],
        routes: [
          {
            name: 'users',
            match: {
              prefix: '/users/',
              methods: ['GET', 'POST'],
              headers: [{ name: 'x-tenant', exact: 'acme' }, { name: 'x-debug', present: true }],
            },
            route: {
              cluster: 'users',
              prefix_rewrite: '/',
              host_rewrite: 'users.internal',
              timeout_ms: 5000,
              retry_policy: { retry_on: ['connect-failure', 'gateway-error'], num_retries: 2 },
            },
            rate_limits: [{ name: 'per-tenant', max_tokens: 50, fill_interval_ms: 1000, key: { headers: ['x-tenant'] } }],
            request_headers_to_add: [{ name: 'x-proxied-by', value: 'remora' }],
            request_headers_to_remove: ['x-internal-token'],
            response_headers_to_add: [{ name: 'x-served-by', value: 'remora' }],
            response_headers_to_remove: ['server'],
          },
          {
            name: 'canary',
            match: { regex: '^/v[0-9]+/orders(/.*)?$' },
            route: { weighted_clusters: [{ cluster: 'orders', weight: 9 }, { cluster: 'orders-canary', weight: 1, host_rewrite: 'canary.orders.internal' }] },
          },
          { name: 'health', match: { path: '/healthz' }, direct_response: { status: 200, body: 'ok\n' } },
          { name: 'moved', match: { prefix: '/old/' }, redirect: { scheme: 'https', host: 'shop.example', port: 8443, prefix_rewrite: '/new/', response_code: 302 } },
          { name: 'landing', match: { path: '/start' }, redirect: { path: '/landing', strip_query: true } },
          { name: 'versions', match: { prefix: '/versioned/' }, redirect: { regex_rewrite: { pattern: '^/versioned/(v[0-9]+)/', substitution: '/\\1/' } } },
          { name: 'api-v', match: { prefix: '/api/v' }, route: { cluster: 'orders', regex_rewrite: { pattern: '^/api/(v[0-9]+)/', substitution: '/\\1/' }, request_mirror_policies: [{ cluster: 'orders-canary', percent: 12.5 }] } },
        ],
      },
      {
        name: 'default',
        domains: ['*'],
        routes: [{ match: { prefix: '/' }, direct_response: { status: 404, body: 'no such host\n' } }],
      },
    ],
  }],
  clusters: [
    {
      name: 'users',
      lb_policy: 'least_request',
      connect_timeout_ms: 500,
      idle_timeout_ms: 30000,
      max_connections_per_endpoint: 256,
      circuit_breakers: { max_requests: 500 },
      outlier_detection: {},
      health_check: { path: '/healthz' },
      endpoints: [{ address: '10.0.0.11', port: 3000 }, { address: '10.0.0.12', port: 3000 }],
    },
    { name: 'orders', endpoints: [{ address: 'orders.internal', port: 8080 }] },
    { name: 'orders-canary', endpoints: [{ address: '::1', port: 8081 }] },
  ],
};

/** Everything else the translation carries: retries in full, shadow and several
 *  per-route limits, budgets, every outlier and health-check field, odd header values. */
const RESILIENCE = {
  workers: 2,
  drain: { delay_ms: 100, timeout_ms: 2000 },
  probes: { address: '0.0.0.0', port: 9902 },
  listeners: [
    {
      name: 'edge',
      port: 8081,
      max_request_headers_kb: 32,
      rate_limits: [
        { name: 'total', max_tokens: 2000, tokens_per_fill: 1000, fill_interval_ms: 1000 },
        { name: 'per-client', max_tokens: 20, fill_interval_ms: 1500, key: { headers: ['x-api-key'], client_ip: true }, shadow: true },
      ],
      virtual_hosts: [{
        name: 'svc',
        domains: ['svc.local'],
        routes: [
          {
            name: 'orders',
            match: { path: '/orders', methods: ['PUT'], headers: [{ name: 'x-version', regex: 'v[12]' }] },
            route: {
              cluster: 'orders',
              timeout_ms: 0,
              max_request_body_bytes: 1048576,
              retry_policy: {
                retry_on: ['5xx', 'reset', 'retriable-4xx', 'retriable-status-codes'],
                num_retries: 3,
                per_try_timeout_ms: 250,
                retriable_status_codes: [503, 429],
                base_interval_ms: 10,
                max_interval_ms: 1500,
                allow_request_headers: true,
                retry_non_idempotent_on_reset: true,
                buffer_limit_bytes: 4096,
              },
            },
            rate_limits: [
              { name: 'a', max_tokens: 5, fill_interval_ms: 100 },
              { name: 'b', max_tokens: 7, tokens_per_fill: 2, fill_interval_ms: 2000, shadow: true, key: { headers: [], client_ip: true } },
            ],
            request_headers_to_add: [{ name: 'x-discount', value: '100%' }, { name: 'x-empty', value: '' }],
          },
          {
            match: { prefix: '/' },
            route: { cluster: 'orders', retry_policy: { retry_on: [], allow_request_headers: true } },
            rate_limits: [{ name: 'c', max_tokens: 1, fill_interval_ms: 50 }],
          },
        ],
      }],
    },
    {
      name: 'second',
      address: '::1',
      port: 8082,
      virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { regex: '.*' }, route: { cluster: 'orders' } }] }],
    },
  ],
  clusters: [{
    name: 'orders',
    lb_policy: 'random',
    connect_timeout_ms: 1250,
    panic_threshold_percent: 0,
    circuit_breakers: {
      max_connections: 10,
      max_pending_requests: 20,
      max_requests: 30,
      max_retries: 0,
      retry_budget: { budget_percent: 12.5, min_retry_concurrency: 1 },
    },
    outlier_detection: {
      consecutive_5xx: 0,
      consecutive_gateway_failure: 3,
      interval_ms: 1500,
      base_ejection_time_ms: 10000,
      max_ejection_time_ms: 60000,
      max_ejection_percent: 50,
      probation_requests: 3,
      success_rate_minimum_hosts: 0,
      success_rate_request_volume: 20,
      success_rate_stdev_factor: 2.5,
    },
    health_check: {
      path: '/ready',
      host: 'orders.internal',
      interval_ms: 2000,
      timeout_ms: 750,
      healthy_threshold: 1,
      unhealthy_threshold: 5,
      expected_statuses: [[200, 300], [404, 405]],
    },
    endpoints: [{ address: '127.0.0.1', port: 9001 }, { address: '127.0.0.2', port: 9002 }],
  }],
};

/** TLS both ways, every XFCC mode, and authorization on listeners and routes with exact,
 *  prefix and `*` patterns (validation reads no files, so the paths need not exist). */
const ID = { cert_file: '/id/cert.pem', key_file: '/id/key.pem', ca_file: '/id/ca.pem' };
const ALL_VHOST = [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }];
const MTLS = {
  listeners: [
    {
      name: 'inbound',
      port: 15006,
      tls: { ...ID, min_version: 'TLSv1.3' },
      authorization: { allow: ['spiffe://cluster.local/ns/payments/*', 'spiffe://cluster.local/ns/ops/sa/admin'], deny: ['spiffe://cluster.local/ns/payments/sa/batch'] },
      rate_limits: [{ name: 'total', max_tokens: 100, fill_interval_ms: 1000 }],
      virtual_hosts: [{
        name: 'app',
        domains: ['*'],
        routes: [
          {
            name: 'admin',
            match: { prefix: '/admin' },
            route: { cluster: 'app' },
            authorization: { allow: ['spiffe://cluster.local/ns/ops/sa/admin'] },
            rate_limits: [{ name: 'admin', max_tokens: 5, fill_interval_ms: 1000 }],
          },
          { name: 'internal', match: { prefix: '/internal' }, route: { cluster: 'app' }, authorization: { allow: ['*'], deny: ['spiffe://cluster.local/ns/test/*'] } },
          { match: { prefix: '/' }, route: { cluster: 'backend' } },
        ],
      }],
    },
    {
      name: 'optional-certs',
      port: 15007,
      tls: { ...ID, require_client_certificate: false },
      forward_client_cert_details: 'append_forward',
      authorization: { deny: ['*'] },
      virtual_hosts: ALL_VHOST,
    },
    { name: 'tls-only', port: 15008, tls: { cert_file: ID.cert_file, key_file: ID.key_file }, forward_client_cert_details: 'forward_only', virtual_hosts: ALL_VHOST },
    { name: 'plain', port: 15009, forward_client_cert_details: 'always_forward_only', virtual_hosts: ALL_VHOST },
    { name: 'plain-set', port: 15010, forward_client_cert_details: 'sanitize_set', virtual_hosts: ALL_VHOST },
  ],
  clusters: [
    { name: 'app', endpoints: [{ address: '127.0.0.1', port: 8080 }] },
    {
      name: 'backend',
      endpoints: [{ address: 'backend.app.svc', port: 8443 }],
      tls: { ...ID, sni: 'backend.app.svc', verify_subject_alt_names: ['spiffe://cluster.local/ns/app/sa/backend', 'backend.app.svc'], min_version: 'TLSv1.3' },
    },
    { name: 'public', endpoints: [{ address: '10.0.0.9', port: 443 }], tls: { ca_file: '/etc/ssl/ca.pem' } },
  ],
};

/** A listener with every front-end setting away from its default (round trip). */
const FRONT_END = {
  listeners: [{
    name: 'in', port: 0, codec: 'uws', max_request_headers_count: 50, normalize_path: false, merge_slashes: true,
    path_with_escaped_slashes_action: 'reject_request', request_headers_timeout_ms: 5000, idle_timeout_ms: 30000, max_connections: 100,
    max_requests_per_connection: 1000, server_name: 'edge', server_header_transformation: 'pass_through',
    virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'api' } }] }],
  }],
  clusters: [{ name: 'api', endpoints: [{ address: '127.0.0.1', port: 9000 }] }],
};

/** HTTP/2 and gRPC: listeners per codec_type with their HTTP/2 settings and PING
 *  keepalive (one over TLS), HTTP/2 clusters (with keepalive, over TLS, with gRPC health
 *  checks), a `downstream` cluster, gRPC deadlines (capped, uncapped) and gRPC retry
 *  conditions (round trip). */
const GRPC = {
  listeners: [
    {
      name: 'grpc-in', port: 0, codec_type: 'http2',
      http2_protocol_options: {
        max_concurrent_streams: 1000, initial_stream_window_size: 1_048_576, initial_connection_window_size: 4_194_304,
        connection_keepalive: { interval_ms: 30_000, timeout_ms: 2000 },
      },
      virtual_hosts: [{
        name: 'v',
        domains: ['*'],
        routes: [
          {
            name: 'capped',
            match: { prefix: '/echo.Echo/' },
            route: {
              cluster: 'grpc', grpc_timeout_header_max_ms: 3000,
              retry_policy: { retry_on: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted'] },
            },
          },
          { match: { prefix: '/' }, route: { cluster: 'grpc', grpc_timeout_header_max_ms: 0 } },
        ],
      }],
    },
    { name: 'h1-in', port: 0, codec_type: 'http1', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'web' } }] }] },
    {
      name: 'grpc-tls', port: 0, codec_type: 'http2', tls: { cert_file: ID.cert_file, key_file: ID.key_file },
      virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'grpc-tls' } }] }],
    },
  ],
  clusters: [
    {
      name: 'grpc', protocol: 'http2',
      http2_protocol_options: { max_concurrent_streams: 50, initial_stream_window_size: 131_072, initial_connection_window_size: 2_097_152, connection_keepalive: { interval_ms: 10_000 } },
      health_check: { grpc: {} },
      endpoints: [{ address: '127.0.0.1', port: 50051 }],
    },
    { name: 'web', protocol: 'http1', endpoints: [{ address: '127.0.0.1', port: 8080 }] },
    {
      name: 'grpc-tls', protocol: 'http2', tls: { ca_file: ID.ca_file, sni: 'grpc.internal' },
      health_check: { grpc: { service_name: 'echo.Echo', authority: 'grpc.internal' }, interval_ms: 3000 },
      endpoints: [{ address: '127.0.0.1', port: 50052 }],
    },
    {
      name: 'sniffed', protocol: 'downstream', tls: { ca_file: ID.ca_file },
      http2_protocol_options: { max_concurrent_streams: 1000, connection_keepalive: { interval_ms: 60_000, timeout_ms: 10_000 } },
      endpoints: [{ address: '127.0.0.1', port: 8443 }],
    },
  ],
};

const MINIMAL = {
  listeners: [{ name: 'in', port: 0, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'api' } }] }] }],
  clusters: [{ name: 'api', endpoints: [{ address: '127.0.0.1', port: 9000 }] }],
};

// ---------------------------------------------------------------------------
// Round trips

t.test('round trip: Remora → xDS → Remora gives the same config', async (t) => {
  for (const [name, raw] of [['docs example', DOCS_EXAMPLE], ['resilience', RESILIENCE], ['mtls', MTLS], ['minimal', MINIMAL], ['front end', FRONT_END], ['grpc', GRPC]] as const) {
    for (const eds of [true, false]) {
      const config = valid(raw);
      const set = overTheWire(config, eds);
      t.same(missingResources(set), { routes: [], endpoints: [], secrets: [] }, `${name} (eds ${eds}): nothing missing`);
      const back = translateXds(baseOf(config), set);
      t.same(errorsOf(back), [], `${name} (eds ${eds}): no rejections`);
      if (back.ok) t.strictSame(back.config, config, `${name} (eds ${eds}): same config`);
    }
  }
});

t.test('toXdsResources: shapes', async (t) => {
  const config = valid(DOCS_EXAMPLE);
  const r = toXdsResources(config, { edsForAllClusters: true });
  t.same([...r.listeners.keys()], ['ingress']);
  t.same([...r.routes.keys()], ['ingress'], 'one route configuration per listener, named after it');
  t.same([...r.endpoints.keys()], ['users', 'orders', 'orders-canary']);
  t.equal(r.clusters.get('users')?.type, 'EDS');
  const listener = r.listeners.get('ingress') as Obj;
  t.same(referencedRoutes(listener), ['ingress']);
  const hcm = hcmOf(listener);
  t.same(obj(hcm.rds).route_config_name, 'ingress');
  const filters = arr(hcm.http_filters);
  t.equal(filters[filters.length - 1].name, 'envoy.filters.http.router', 'router last');
  t.same(edsClusters(r.clusters.values()), ['users', 'orders', 'orders-canary']);
  const statik = toXdsResources(config, { edsForAllClusters: false });
  t.equal(statik.endpoints.size, 0);
  t.equal(statik.clusters.get('users')?.type, 'STATIC');
  t.same(edsClusters(statik.clusters.values()), []);
});

t.test('grpcApiListener: an api_listener whose HCM uses RDS over ADS and the router', async (t) => {
  const l = protos.decodeAny(protos.encodeAny(TypeUrl.Listener, grpcApiListener('echo', 'echo-routes'))).message;
  t.equal(l.name, 'echo');
  const hcm = protos.decodeAny(obj(l.api_listener).api_listener as AnyMessage).message;
  t.same(hcm.rds, { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: 'echo-routes' });
  t.same(arr(hcm.http_filters).map((f) => [f.name, obj(f.typed_config).type_url]), [['envoy.filters.http.router', TypeUrl.Router]]);
  t.same(referencedRoutes(l), ['echo-routes']);
});

// ---------------------------------------------------------------------------
// Rejections: resource name and field path in every message

t.test('rejects an unsupported http filter', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const l = set.listeners.get('in') as Obj;
  const hcm = hcmOf(l);
  hcm.http_filters = [
    { name: 'rl', typed_config: protos.encodeAny(TypeUrl.LocalRateLimit, { stat_prefix: 'rl' }) },
    { name: 'envoy.filters.http.ext_authz', typed_config: { type_url: 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz', value: Buffer.alloc(0) } },
    ...arr(hcm.http_filters),
  ];
  setHcm(l, hcm);
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'Listener "in" filter_chains[0].filters[0].typed_config.http_filters[1]: unsupported http filter envoy.filters.http.ext_authz',
  ]);
  // is_optional: a client may skip a filter it does not support (the xDS rule).
  arr(hcm.http_filters)[1].is_optional = true;
  setHcm(l, hcm);
  t.same(errorsOf(translateXds({}, rewire(set))), []);
});

t.test('rejects the router anywhere but last, and a missing router', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const l = set.listeners.get('in') as Obj;
  const hcm = hcmOf(l);
  const router = arr(hcm.http_filters)[0];
  hcm.http_filters = [router, { name: 'rl', typed_config: protos.encodeAny(TypeUrl.LocalRateLimit, { stat_prefix: 'rl' }) }];
  setHcm(l, hcm);
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'Listener "in" filter_chains[0].filters[0].typed_config.http_filters[0]: the router filter must be the last http filter',
  ]);
  hcm.http_filters = [];
  setHcm(l, hcm);
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'Listener "in" filter_chains[0].filters[0].typed_config.http_filters: the last http filter must be the router (envoy.filters.http.router)',
  ]);
});

t.test('rejects an unsupported cluster field', async (t) => {
  const set = overTheWire(valid({ ...MINIMAL }));
  const c = set.clusters.get('api') as Obj;
  c.lb_subset_config = { fallback_policy: 'ANY_ENDPOINT' };
  c.lrs_server = { self: {} };
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'Cluster "api" lb_subset_config: field not supported by Remora',
    'Cluster "api" lrs_server: field not supported by Remora',
  ]);
});

t.test('rejects an api_listener', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  set.listeners.set('in', grpcApiListener('in', 'in'));
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'Listener "in" api_listener: api_listener is for gRPC clients; Remora needs address + filter_chains',
  ]);
});

t.test('rejects endpoint weights other than 1, and priorities', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const cla = set.endpoints.get('api') as Obj;
  const group = arr(cla.endpoints)[0];
  arr(group.lb_endpoints).push({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 9001 } } }, load_balancing_weight: { value: 1 } });
  arr(group.lb_endpoints)[0].load_balancing_weight = { value: 5 };
  arr(cla.endpoints).push({ priority: 1, lb_endpoints: [] });
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'ClusterLoadAssignment "api" endpoints[0].lb_endpoints[0].load_balancing_weight: 5 is not supported: Remora has no endpoint weights yet (1 or unset)',
    'ClusterLoadAssignment "api" endpoints[1].priority: 1 is not supported: Remora has no priority levels (0 only)',
  ]);
});

t.test('rejects two filter chains, and two network filters', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const l = set.listeners.get('in') as Obj;
  const chain = arr(l.filter_chains)[0];
  l.filter_chains = [chain, chain];
  t.same(errorsOf(translateXds({}, rewire(set))), ['Listener "in" filter_chains[1]: an HTTP listener takes at most one filter chain without server_names (got 2): each would take every connection; only tcp_proxy listeners pick chains by transport or ALPN']);
  l.filter_chains = [{ filters: [...arr(chain.filters), { name: 'envoy.filters.network.tcp_proxy' }] }];
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'Listener "in" filter_chains[0].filters[1]: Remora needs exactly one network filter, envoy.filters.network.http_connection_manager (got 2)',
  ]);
});

t.test('rejects an unknown lb policy and cluster type', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const c = set.clusters.get('api') as Obj;
  c.lb_policy = 'MAGLEV';
  t.same(errorsOf(translateXds({}, rewire(set))), ['Cluster "api" lb_policy: MAGLEV is not supported (ROUND_ROBIN, LEAST_REQUEST or RANDOM)']);
  c.lb_policy = 'LEAST_REQUEST';
  // Every DiscoveryType (STATIC, STRICT_DNS, LOGICAL_DNS, EDS, ORIGINAL_DST) is handled;
  // a cluster_type extension other than DNS clusters' is refused by name.
  c.cluster_type = { name: 'envoy.clusters.aggregate' };
  t.same(errorsOf(translateXds({}, rewire(set))), ['Cluster "api" cluster_type: envoy.clusters.aggregate is not supported: the only cluster_type Remora runs is envoy.cluster.dns (DnsCluster)']);
});

t.test('ORIGINAL_DST (Istio\'s PassthroughCluster): accepted with no endpoints, counted', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const c = set.clusters.get('api') as Obj;
  delete c.eds_cluster_config;
  delete c.load_assignment;
  Object.assign(c, { type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', upstream_bind_config: { source_address: { address: '127.0.0.6', port_value: 0 } } });
  set.endpoints.delete('api');
  const r = translateXds({}, rewire(set));
  t.same(errorsOf(r), [], 'accepted');
  t.same(r.ok ? r.config.clusters.find((x) => x.name === 'api')?.endpoints : null, [], 'with no endpoints: nothing to forward to without traffic capture');
  t.same(r.ok ? [r.noEffect.get('Cluster.type ORIGINAL_DST (no original destination: no endpoints)'), r.noEffect.get('Cluster.upstream_bind_config')] : null, [1, 1], 'counted as accepted without effect');
  c.lb_policy = 'CLUSTER_PROVIDED';
  c.type = 'STATIC';
  const errors = errorsOf(translateXds({}, rewire(set))).join('\n');
  t.match(errors, /lb_policy: CLUSTER_PROVIDED is not supported/, 'CLUSTER_PROVIDED only with ORIGINAL_DST');
  t.match(errors, /upstream_bind_config: field not supported/, 'upstream_bind_config too');
});

const OMIT_CANARY = 'type.googleapis.com/envoy.extensions.retry.host.omit_canary_hosts.v3.OmitCanaryHostsPredicate';

t.test('rejects route-level fields outside the subset, precisely', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const rc = set.routes.get('in') as Obj;
  const route = arr(arr(rc.virtual_hosts)[0].routes)[0];
  obj(route.route).retry_policy = {
    retry_on: '5xx,retriable-headers',
    retry_host_predicate: [{ name: 'envoy.retry_host_predicates.omit_canary_hosts', typed_config: { type_url: OMIT_CANARY, value: new Uint8Array(0) } }],
  };
  obj(route.match).query_parameters = [{ name: 'q', string_match: { suffix: 'x' } }];
  route.request_headers_to_add = [
    { header: { key: 'x-client', value: '%DOWNSTREAM_REMOTE_ADDRESS%' } },
    { header: { key: 'x-a', value: 'b' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
  ];
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'RouteConfiguration "in" virtual_hosts[0].routes[0].match.query_parameters[0].string_match.suffix: field not supported by Remora',
    'RouteConfiguration "in" virtual_hosts[0].routes[0].route.retry_policy.retry_on: "retriable-headers" is not supported (Remora retries on 5xx, gateway-error, reset, '
      + 'connect-failure, retriable-4xx, retriable-status-codes, refused-stream, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable)',
    'RouteConfiguration "in" virtual_hosts[0].routes[0].route.retry_policy.retry_host_predicate[0].typed_config: envoy.extensions.retry.host.omit_canary_hosts.v3.OmitCanaryHostsPredicate '
      + 'is not supported (only envoy.retry_host_predicates.previous_hosts: Remora\'s retries avoid the previous attempt\'s endpoint, and choose by nothing else)',
    'RouteConfiguration "in" virtual_hosts[0].routes[0].request_headers_to_add[0].header.value: uses Envoy\'s %COMMAND% substitution; Remora adds values literally (write %% for a literal %)',
    'RouteConfiguration "in" virtual_hosts[0].routes[0].request_headers_to_add[1].append_action: OVERWRITE_IF_EXISTS_OR_ADD is not supported: Remora appends (APPEND_IF_EXISTS_OR_ADD)',
  ]);
});

t.test('redirect: Envoy\'s RedirectAction as control planes write it', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const rc = set.routes.get('in') as Obj;
  const routes = arr(arr(rc.virtual_hosts)[0].routes);
  const first = routes[0];
  const redirects: Obj[] = [
    { match: { prefix: '/a/' }, redirect: { https_redirect: true, response_code: 'PERMANENT_REDIRECT' } },
    { match: { path: '/b' }, redirect: { prefix_rewrite: '/c', strip_query: true } },
    { match: { prefix: '/d/' }, redirect: { scheme_redirect: 'http', host_redirect: 'e.example', port_redirect: 8080, path_redirect: '/f?g=1', response_code: 'SEE_OTHER' } },
  ];
  rc.virtual_hosts = [{ ...arr(rc.virtual_hosts)[0], routes: [...redirects, first] }];
  const r = translateXds({}, rewire(set));
  t.same(errorsOf(r), []);
  if (r.ok) {
    t.same(r.config.listeners[0].virtual_hosts[0].routes.slice(0, 3).map((route) => route.redirect), [
      { scheme: 'https', response_code: 308, strip_query: false },
      { path: '/c', response_code: 301, strip_query: true },
      { scheme: 'http', host: 'e.example', port: 8080, path: '/f?g=1', response_code: 303, strip_query: false },
    ], 'https_redirect → scheme; prefix_rewrite under a path match → path; codes by name');
  }
  // Envoy Gateway's redirect of a path-separated prefix, and a route action's regex_rewrite.
  rc.virtual_hosts = [{ ...arr(rc.virtual_hosts)[0], routes: [
    { match: { path_separated_prefix: '/redirect' }, redirect: { regex_rewrite: { pattern: { google_re2: {}, regex: '^/redirect\\/*' }, substitution: '/' } } },
    { match: { prefix: '/' }, route: { ...obj(first.route), regex_rewrite: { pattern: { regex: '^/api/(v[0-9]+)/' }, substitution: '/\\1/' } } },
  ] }];
  const rw = translateXds({}, rewire(set));
  t.same(errorsOf(rw), []);
  if (rw.ok) {
    const [redirect, action] = rw.config.listeners[0].virtual_hosts[0].routes;
    t.same(redirect.redirect?.regex_rewrite, { pattern: '^/redirect\\/*', substitution: '/' }, 'a redirect\'s regex_rewrite');
    t.same(action.route?.regex_rewrite, { pattern: '^/api/(v[0-9]+)/', substitution: '/\\1/' }, 'a route action\'s, the substitution in RE2\'s syntax');
  }
  rc.virtual_hosts = [{ ...arr(rc.virtual_hosts)[0], routes: [{ match: { prefix: '/' }, route: { ...obj(first.route), request_mirror_policies: [
    { cluster: 'api', runtime_fraction: { default_value: { numerator: 25, denominator: 'TEN_THOUSAND' }, runtime_key: 'mirror.api' }, trace_sampled: { value: true } },
    { cluster: 'api' },
  ] } }] }];
  const mirrored = translateXds({}, rewire(set));
  t.same(errorsOf(mirrored), []);
  if (mirrored.ok) {
    t.same(mirrored.config.listeners[0].virtual_hosts[0].routes[0].route?.request_mirror_policies, [{ cluster: 'api', percent: 0.25 }, { cluster: 'api', percent: 100 }],
      'request_mirror_policies: runtime_fraction\'s default value as a percent (100 when unset)');
  }
  rc.virtual_hosts = [{ ...arr(rc.virtual_hosts)[0], routes: [{ match: { prefix: '/' }, redirect: { regex_rewrite: { pattern: { regex: '^/(x)' }, substitution: '/\\2' } } }] }];
  t.same(errorsOf(translateXds({}, rewire(set))), ['RouteConfiguration "in" virtual_hosts[0].routes[0].redirect.regex_rewrite.substitution: substitution uses \\2, but the pattern has 1 capture group']);
});

t.test('rejects a per-route limit that would replace a listener-wide bucket', async (t) => {
  const set = overTheWire(valid({
    ...MINIMAL,
    listeners: [{ ...MINIMAL.listeners[0], rate_limits: [{ name: 'total', max_tokens: 10, fill_interval_ms: 1000 }] }],
  }));
  const rc = set.routes.get('in') as Obj;
  const route = arr(arr(rc.virtual_hosts)[0].routes)[0];
  const limit = { stat_prefix: 'r', token_bucket: { max_tokens: 1, fill_interval: { seconds: 1 } }, filter_enabled: { default_value: { numerator: 100 } } };
  route.typed_per_filter_config = {
    'remora.local_ratelimit.total': protos.encodeAny(TypeUrl.LocalRateLimit, limit),
    nowhere: protos.encodeAny(TypeUrl.LocalRateLimit, limit),
  };
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'RouteConfiguration "in" virtual_hosts[0].routes[0].typed_per_filter_config["remora.local_ratelimit.total"]: would replace the token bucket of Listener "in"\'s filter "remora.local_ratelimit.total" for this route; Remora applies listener and route limits together: put per-route limits on a local rate limit filter without token_bucket',
    'RouteConfiguration "in" virtual_hosts[0].routes[0].typed_per_filter_config["nowhere"]: Listener "in" has no local rate limit http filter named "nowhere"',
  ]);
});

t.test('rejects partial rate-limit enablement and unknown Remora extensions; other metadata namespaces are ignored', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const l = set.listeners.get('in') as Obj;
  const hcm = hcmOf(l);
  hcm.http_filters = [
    {
      name: 'rl',
      typed_config: protos.encodeAny(TypeUrl.LocalRateLimit, {
        stat_prefix: 'rl',
        token_bucket: { max_tokens: 5, fill_interval: { seconds: 1 } },
        filter_enabled: { default_value: { numerator: 50 } },
        filter_enforced: { default_value: { numerator: 5000, denominator: 'TEN_THOUSAND' } },
      }),
    },
    ...arr(hcm.http_filters),
  ];
  setHcm(l, hcm);
  l.metadata = { filter_metadata: { istio: { fields: { x: { stringValue: 'y' } } }, remora: { fields: { colour: { stringValue: 'red' } } } } };
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'Listener "in" filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.filter_enabled: must be 100% (got 50%); Remora has no partial enablement',
    'Listener "in" filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.filter_enforced: must be 100% (enforce) or 0% (shadow: count only), got 50%',
    'Listener "in" metadata.filter_metadata.remora.colour: unknown Remora extension (allowed here: access_log, generate_traceparent, rate_limit_keys, codec, max_connections)',
  ]);
});

t.test("validateConfig's errors point at the xDS resource and field", async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const rc = set.routes.get('in') as Obj;
  const route = arr(arr(rc.virtual_hosts)[0].routes)[0];
  obj(route.route).cluster = 'nope';
  obj(route.match).prefix = '/api?v=1'; // a query in a prefix
  const cla = set.endpoints.get('api') as Obj;
  obj(obj(obj(arr(arr(cla.endpoints)[0].lb_endpoints)[0].endpoint).address).socket_address).port_value = 0;
  const c = set.clusters.get('api') as Obj;
  c.outlier_detection = { base_ejection_time: { seconds: 60 }, max_ejection_time: { seconds: 10 } };
  t.same(errorsOf(translateXds({ workers: 0 }, rewire(set))), [
    '"bootstrap" workers: must be an integer 1..256',
    'RouteConfiguration "in" virtual_hosts[0].routes[0].match.prefix: must not contain "?" (matching ignores the query string)',
    'RouteConfiguration "in" virtual_hosts[0].routes[0].route.cluster: unknown cluster "nope" (defined: api)',
    'ClusterLoadAssignment "api" endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value: must be an integer 1..65535',
    'Cluster "api" outlier_detection.max_ejection_time: must be at least base_ejection_time_ms (60000)',
  ]);
});

t.test('names are taken as control planes write them; whitespace is refused', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const c = set.clusters.get('api') as Obj;
  set.clusters = new Map([['api/v1', { ...c, name: 'api/v1', eds_cluster_config: { eds_config: { ads: {} }, service_name: 'api' } }]]);
  const route = arr(arr((set.routes.get('in') as Obj).virtual_hosts)[0].routes)[0];
  obj(route.route).cluster = 'api/v1';
  route.name = 'bad name';
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'RouteConfiguration "in" virtual_hosts[0].routes[0].name: must contain only visible ASCII characters (no spaces or control characters)',
  ], 'a cluster named "api/v1" (Envoy Gateway\'s style) is accepted');
});

// ---------------------------------------------------------------------------
// Endpoints: health status

t.test('UNHEALTHY, DRAINING and TIMEOUT endpoints are left out', async (t) => {
  const config = valid({ ...MINIMAL, clusters: [{ name: 'api', endpoints: [1, 2, 3, 4, 5].map((i) => ({ address: `10.0.0.${i}`, port: 80 })) }] });
  const set = overTheWire(config);
  const lbs = arr(arr((set.endpoints.get('api') as Obj).endpoints)[0].lb_endpoints);
  lbs[0].health_status = 'UNHEALTHY';
  lbs[1].health_status = 'DRAINING';
  lbs[2].health_status = 'HEALTHY';
  lbs[3].health_status = 'TIMEOUT';
  lbs[4].health_status = 'DEGRADED';
  const r = translateXds({}, rewire(set));
  t.same(errorsOf(r), []);
  if (r.ok) t.same(r.config.clusters[0].endpoints, [{ address: '10.0.0.3', port: 80 }, { address: '10.0.0.5', port: 80 }]);
  for (const lb of lbs) lb.health_status = 'DRAINING';
  const drained = translateXds({}, rewire(set));
  t.same(errorsOf(drained), [], 'all of them draining: accepted');
  if (drained.ok) t.same(drained.config.clusters[0].endpoints, [], 'the cluster has no endpoints (503 UH)');
  (set.endpoints.get('api') as Obj).endpoints = [];
  const zero = translateXds({}, rewire(set));
  t.same(errorsOf(zero), [], 'an empty endpoint list (a service scaled to zero) is accepted');
  if (zero.ok) t.same(zero.config.clusters[0].endpoints, []);
});

// ---------------------------------------------------------------------------
// Warming: missing RDS / EDS is "not ready", never a rejection

t.test('missingResources and warming', async (t) => {
  const config = valid({
    listeners: [
      MINIMAL.listeners[0],
      { name: 'other', port: 0, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'b' } }] }] },
    ],
    clusters: [MINIMAL.clusters[0], { name: 'b', endpoints: [{ address: '127.0.0.1', port: 9001 }] }],
  });
  const full = overTheWire(config);
  t.same(missingResources(full), { routes: [], endpoints: [], secrets: [] });

  const noRoutes = { ...full, routes: new Map() };
  t.same(missingResources(noRoutes), { routes: ['in', 'other'], endpoints: [], secrets: [] });
  const noEndpoints = { ...full, endpoints: new Map([['api', full.endpoints.get('api') as Obj]]) };
  t.same(missingResources(noEndpoints), { routes: [], endpoints: ['b'], secrets: [] });

  // What has arrived is still checked, and what waits is left out.
  const r = translateXds({}, noEndpoints);
  t.same(errorsOf(r), []);
  if (r.ok) {
    t.same(r.config.clusters.map((c) => c.name), ['api'], 'the EDS cluster without endpoints is left out');
    t.same(r.config.listeners.map((l) => l.name), ['in'], 'the listener routing to it waits too');
  }
  const r2 = translateXds({}, { ...full, routes: new Map([['other', full.routes.get('other') as Obj]]) });
  t.ok(r2.ok && r2.config.listeners.map((l) => l.name).join() === 'other', 'a listener whose RDS is missing is left out');
  const broken = { ...noEndpoints, clusters: new Map([...full.clusters].map(([k, c]) => [k, { ...c, lb_policy: 'RING_HASH' }])) };
  t.same(errorsOf(translateXds({}, broken)).length, 2, 'a real problem is a rejection even while warming');
});

// ---------------------------------------------------------------------------
// Durations and Envoy's defaults

t.test('durations: seconds and nanos to milliseconds; sub-millisecond is rejected', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const c = set.clusters.get('api') as Obj;
  c.connect_timeout = { seconds: 1, nanos: 500_000_000 };
  const route = arr(arr((set.routes.get('in') as Obj).virtual_hosts)[0].routes)[0];
  obj(route.route).timeout = { seconds: 90, nanos: 5_000_000 };
  const r = translateXds({}, rewire(set));
  t.ok(r.ok);
  if (r.ok) {
    t.equal(r.config.clusters[0].connect_timeout_ms, 1500);
    t.equal(r.config.listeners[0].virtual_hosts[0].routes[0].route?.timeout_ms, 90_005);
  }
  c.connect_timeout = { seconds: 0, nanos: 250_000 };
  t.same(errorsOf(translateXds({}, rewire(set))), ['Cluster "api" connect_timeout: must be a whole number of milliseconds (got 0s and 250000ns)']);
});

t.test("Envoy's defaults apply where a field is unset", async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const c = set.clusters.get('api') as Obj;
  delete c.connect_timeout;
  c.outlier_detection = { consecutive_gateway_failure: { value: 3 } };
  c.health_checks = [{ http_health_check: { path: '/h' } }];
  const l = set.listeners.get('in') as Obj;
  const hcm = hcmOf(l);
  hcm.http_filters = [
    {
      name: 'rl',
      typed_config: protos.encodeAny(TypeUrl.LocalRateLimit, {
        stat_prefix: 'rl',
        token_bucket: { max_tokens: 5, fill_interval: { seconds: 1 } },
        filter_enabled: { default_value: { numerator: 100 } },
      }),
    },
    ...arr(hcm.http_filters),
  ];
  setHcm(l, hcm);
  const r = translateXds({}, rewire(set));
  t.same(errorsOf(r), []);
  if (!r.ok) return;
  const cl = r.config.clusters[0];
  t.equal(cl.connect_timeout_ms, 5000, 'connect_timeout: 5 s');
  t.equal(cl.outlier_detection?.consecutive_gateway_failure, 0, 'enforcing_consecutive_gateway_failure defaults to 0: not enforced');
  t.equal(cl.outlier_detection?.consecutive_5xx, 5);
  t.same(cl.health_check?.expected_statuses, [[200, 201]], 'expected_statuses: 200 only');
  t.same(r.config.listeners[0].rate_limits, [{ name: 'rl', max_tokens: 5, tokens_per_fill: 1, fill_interval_ms: 1000, shadow: true }],
    'tokens_per_fill 1; filter_enforced unset = 0% = shadow');
});

t.test("HealthCheck: Envoy's interval, jitter and retriable-status fields are translated", async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const c = set.clusters.get('api') as Obj;
  c.health_checks = [{
    timeout: { seconds: 1 },
    interval: { seconds: 5 },
    unhealthy_threshold: { value: 3 },
    healthy_threshold: { value: 2 },
    no_traffic_interval: { seconds: 30 },
    no_traffic_healthy_interval: { seconds: 90 },
    unhealthy_interval: { seconds: 10 },
    unhealthy_edge_interval: { seconds: 2 },
    healthy_edge_interval: { seconds: 1 },
    interval_jitter: { nanos: 500_000_000 },
    interval_jitter_percent: 10,
    initial_jitter: { seconds: 3 },
    http_health_check: { path: '/h', retriable_statuses: [{ start: 500, end: 503 }] },
  }];
  const r = translateXds({}, rewire(set));
  t.same(errorsOf(r), []);
  if (!r.ok) return;
  t.match(r.config.clusters[0].health_check, {
    interval_ms: 5000,
    timeout_ms: 1000,
    no_traffic_interval_ms: 30_000,
    no_traffic_healthy_interval_ms: 90_000,
    unhealthy_interval_ms: 10_000,
    unhealthy_edge_interval_ms: 2000,
    healthy_edge_interval_ms: 1000,
    interval_jitter_ms: 500,
    interval_jitter_percent: 10,
    initial_jitter_ms: 3000,
    retriable_statuses: [[500, 503]],
  }, 'every HealthCheck interval field maps to its _ms twin');

  c.health_checks = [{ timeout: { seconds: 1 }, interval: { seconds: 5 }, http_health_check: { path: '/h' } }];
  const d = translateXds({}, rewire(set));
  t.ok(d.ok);
  if (d.ok) {
    t.match(d.config.clusters[0].health_check, { no_traffic_interval_ms: 60_000, unhealthy_interval_ms: 5000, healthy_edge_interval_ms: 5000, retriable_statuses: [] },
      "unset: Envoy's defaults (no_traffic_interval 60 s, the others follow interval)");
  }
});

t.test('Envoy header values: %% is a literal %, an empty value is skipped', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const route = arr(arr((set.routes.get('in') as Obj).virtual_hosts)[0].routes)[0];
  route.request_headers_to_add = [
    { header: { key: 'x-a', value: '50%%' } },
    { header: { key: 'x-b', value: '' } },
    { header: { key: 'x-c', value: '' }, keep_empty_value: true, append: { value: true } },
  ];
  const r = translateXds({}, rewire(set));
  t.ok(r.ok);
  if (r.ok) t.same(r.config.listeners[0].virtual_hosts[0].routes[0].request_headers_to_add, [{ name: 'x-a', value: '50%' }, { name: 'x-c', value: '' }]);
});

t.test('inline route_config and route-level extras', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const l = set.listeners.get('in') as Obj;
  const hcm = hcmOf(l);
  delete hcm.rds;
  hcm.route_config = set.routes.get('in');
  setHcm(l, hcm);
  set.routes = new Map();
  t.same(referencedRoutes(l), []);
  t.same(missingResources(rewire(set)), { routes: [], endpoints: [], secrets: [] });
  const r = translateXds({}, rewire(set));
  t.same(errorsOf(r), []);
  t.ok(r.ok && r.config.listeners[0].virtual_hosts[0].routes[0].route?.cluster === 'api');
  // Problems inside an inline route config are the listener's.
  const inline = obj(hcm.route_config);
  obj(arr(arr(inline.virtual_hosts)[0].routes)[0].route).cluster = 'nope';
  setHcm(l, hcm);
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'Listener "in" filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.cluster: unknown cluster "nope" (defined: api)',
  ]);
});

t.test('errors in Remora extensions point into the metadata', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const l = set.listeners.get('in') as Obj;
  l.metadata = { filter_metadata: { remora: { fields: { access_log: { structValue: { fields: { path: { stringValue: '' } } } } } } } };
  const c = set.clusters.get('api') as Obj;
  c.metadata = { filter_metadata: { remora: { fields: { idle_timeout_ms: { numberValue: 1.5 } } } } };
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'Listener "in" metadata.filter_metadata.remora.access_log.path: must not be empty (use "stdout" or a file path)',
    'Cluster "api" metadata.filter_metadata.remora.idle_timeout_ms: must be an integer 0..3600000 (milliseconds)',
  ]);
});

// ---------------------------------------------------------------------------
// TLS, XFCC and authorization (RBAC)

/** A listener's or cluster's transport socket, decoded; `setSocket` puts an edited one back. */
function socketOf(o: Obj): Obj {
  const ts = obj(o.filter_chains !== undefined ? arr(o.filter_chains)[0].transport_socket : o.transport_socket);
  return protos.decodeAny(ts.typed_config as AnyMessage).message;
}
function setSocket(o: Obj, context: Obj): void {
  const typeUrl = o.filter_chains !== undefined ? TypeUrl.DownstreamTlsContext : TypeUrl.UpstreamTlsContext;
  const ts = { name: 'envoy.transport_sockets.tls', typed_config: protos.encodeAny(typeUrl, context) };
  if (o.filter_chains !== undefined) arr(o.filter_chains)[0].transport_socket = ts;
  else o.transport_socket = ts;
}
const rbac = (rules: Obj | undefined): AnyMessage => protos.encodeAny(TypeUrl.Rbac, rules === undefined ? {} : { rules });
const policy = (...principals: Obj[]): Obj => ({ permissions: [{ any: true }], principals });
const named = (name: Obj): Obj => ({ authenticated: { principal_name: name } });
const L = 'Listener "in" filter_chains[0]';
const HF = `${L}.filters[0].typed_config.http_filters`;

t.test('toXdsResources: transport sockets, XFCC, and RBAC filters in Remora\'s order', async (t) => {
  const r = toXdsResources(valid(MTLS), { edsForAllClusters: true });
  const inbound = r.listeners.get('inbound') as Obj;
  t.equal(obj(arr(inbound.filter_chains)[0].transport_socket).name, 'envoy.transport_sockets.tls');
  t.same(socketOf(inbound), {
    common_tls_context: {
      alpn_protocols: ['h2', 'http/1.1'],
      tls_params: { tls_minimum_protocol_version: 'TLSv1_3' },
      tls_certificates: [{ certificate_chain: { filename: '/id/cert.pem' }, private_key: { filename: '/id/key.pem' } }],
      validation_context: { trusted_ca: { filename: '/id/ca.pem' } },
    },
    require_client_certificate: { value: true },
  });
  const hcm = hcmOf(inbound);
  t.equal(hcm.forward_client_cert_details, 'SANITIZE_SET', 'the default of an mTLS listener, written out');
  t.same(hcm.set_current_client_cert_details, { subject: { value: true }, uri: true, dns: true }, 'what Remora sets, so that Envoy sets it too');
  t.same(arr(hcm.http_filters).map((f) => f.name), [
    'remora.rbac.deny', 'remora.rbac.allow', 'remora.local_ratelimit.total',
    'remora.route_rbac.deny', 'remora.route_rbac.allow', 'remora.route_local_ratelimit.0', 'envoy.filters.http.router',
  ]);
  const allow = protos.decodeAny(arr(hcm.http_filters)[1].typed_config as AnyMessage).message;
  t.same(allow, {
    rules: {
      action: 'ALLOW',
      policies: {
        remora: {
          permissions: [{ any: true }],
          principals: [named({ prefix: 'spiffe://cluster.local/ns/payments/' }), named({ exact: 'spiffe://cluster.local/ns/ops/sa/admin' })],
        },
      },
    },
  });
  t.same(protos.decodeAny(arr(hcm.http_filters)[3].typed_config as AnyMessage).message, {}, 'a route slot has no rules of its own');
  const routes = arr(arr((r.routes.get('inbound') as Obj).virtual_hosts)[0].routes);
  const internal = obj(routes[1].typed_per_filter_config);
  t.same(Object.keys(internal), ['remora.route_rbac.deny', 'remora.route_rbac.allow']);
  const wrapper = protos.decodeAny(internal['remora.route_rbac.allow'] as AnyMessage).message;
  t.equal(wrapper.is_optional, true);
  const perRoute = protos.decodeAny(wrapper.config as AnyMessage).message;
  t.same(obj(obj(obj(obj(perRoute.rbac).rules).policies).remora).principals, [named({ safe_regex: { regex: '.+' } })], '* is any verified identity');
  t.same(Object.keys(obj(routes[2].typed_per_filter_config)), []);

  const plain = r.listeners.get('plain') as Obj;
  t.equal(arr(plain.filter_chains)[0].transport_socket, undefined);
  t.equal(hcmOf(plain).set_current_client_cert_details, undefined);
  t.same(socketOf(r.clusters.get('backend') as Obj), {
    common_tls_context: {
      alpn_protocols: ['http/1.1'],
      tls_params: { tls_minimum_protocol_version: 'TLSv1_3' },
      tls_certificates: [{ certificate_chain: { filename: '/id/cert.pem' }, private_key: { filename: '/id/key.pem' } }],
      validation_context: {
        trusted_ca: { filename: '/id/ca.pem' },
        match_typed_subject_alt_names: [
          { san_type: 'URI', matcher: { exact: 'spiffe://cluster.local/ns/app/sa/backend' } },
          { san_type: 'DNS', matcher: { exact: 'backend.app.svc' } },
        ],
      },
    },
    sni: 'backend.app.svc',
  });
  t.equal(r.clusters.get('app')?.transport_socket, undefined);
});

t.test("an Envoy control plane's TLS, XFCC and RBAC: Envoy's defaults where fields are unset", async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const l = set.listeners.get('in') as Obj;
  // What go-control-plane sends: no zero values (SANITIZE, ALLOW, TLS_AUTO), no require_client_certificate.
  setSocket(l, {
    common_tls_context: {
      tls_params: { tls_maximum_protocol_version: 'TLSv1_3' },
      tls_certificates: [{ certificate_chain: { filename: '/c.pem' }, private_key: { filename: '/k.pem' } }],
      validation_context: { trusted_ca: { filename: '/ca.pem' }, trust_chain_verification: 'VERIFY_TRUST_CHAIN' },
      alpn_protocols: ['http/1.1'],
    },
  });
  const hcm = hcmOf(l);
  hcm.http_filters = [
    { name: 'envoy.filters.http.rbac', typed_config: rbac({ policies: { b: policy(named({ exact: 'spiffe://td/b' })), a: policy(named({ prefix: 'spiffe://td/ns/a/' })) } }) },
    { name: 'per-route', typed_config: rbac(undefined) },
    ...arr(hcm.http_filters),
  ];
  setHcm(l, hcm);
  const route = arr(arr((set.routes.get('in') as Obj).virtual_hosts)[0].routes)[0];
  route.typed_per_filter_config = {
    'per-route': protos.encodeAny(TypeUrl.RbacPerRoute, { rbac: { rules: { action: 'DENY', policies: { x: policy(named({ exact: 'spiffe://td/x' })) } } } }),
  };
  const c = set.clusters.get('api') as Obj;
  setSocket(c, {
    common_tls_context: { validation_context: { trusted_ca: { filename: '/ca.pem' }, match_subject_alt_names: [{ exact: 'api.internal' }] } },
  });
  let r = translateXds({}, rewire(set));
  t.same(errorsOf(r), []);
  if (!r.ok) return;
  const listener = r.config.listeners[0];
  t.same(listener.tls, { cert_file: '/c.pem', key_file: '/k.pem', additional_certificates: [], ca_file: '/ca.pem', require_client_certificate: false, min_version: 'TLSv1.2', session_resumption: 'tickets' },
    'require_client_certificate unset = false (Envoy), though a file would default it to true');
  t.equal(listener.forward_client_cert_details, 'sanitize', 'unset = SANITIZE (Envoy), though a file would default to sanitize_set here');
  t.same(listener.authorization, { allow: ['spiffe://td/b', 'spiffe://td/ns/a/*'], deny: [] }, 'action unset = ALLOW; policies merged in order');
  t.same(listener.virtual_hosts[0].routes[0].authorization, { allow: [], deny: ['spiffe://td/x'] });
  t.same(r.config.clusters[0].tls, { ca_file: '/ca.pem', verify_subject_alt_names: ['api.internal'], min_version: 'TLSv1.2' });

  // authenticated: {} is Remora's "*" only where every client has a verified certificate.
  hcm.http_filters = [{ name: 'rbac', typed_config: rbac({ action: 'DENY', policies: { all: policy({ authenticated: {} }) } }) }, ...arr(hcm.http_filters).slice(1)];
  setHcm(l, hcm);
  t.same(errorsOf(translateXds({}, rewire(set))), [
    `${HF}[0].typed_config.rules.policies["all"].principals[0].authenticated: without principal_name this matches TLS clients that sent no certificate, but the listener does not require one; Remora's "*" (any verified identity) is principal_name.safe_regex ".+"`,
  ]);
  const tls = socketOf(l);
  tls.require_client_certificate = { value: true };
  setSocket(l, tls);
  r = translateXds({}, rewire(set));
  t.same(errorsOf(r), []);
  t.same(r.ok && r.config.listeners[0].authorization, { allow: [], deny: ['*'] });
});

t.test('TLS fields outside the subset are rejected with their path', async (t) => {
  const set = overTheWire(valid(MTLS));
  const l = set.listeners.get('tls-only') as Obj;
  setSocket(l, {
    common_tls_context: {
      tls_params: { tls_minimum_protocol_version: 'TLSv1_1', tls_maximum_protocol_version: 'TLSv1_2', cipher_suites: ['ECDHE-RSA-AES128-GCM-SHA256'] },
      tls_certificates: [{ certificate_chain: { inline_string: '-----BEGIN CERTIFICATE-----' }, private_key: { filename: '/k.pem' }, password: { inline_string: 'x' } }],
      validation_context_sds_secret_config: { name: 'ca' },
      alpn_protocols: ['istio-peer-exchange', 'h2', 'http/1.1'],
    },
    session_ticket_keys: { keys: [{ filename: '/t' }] },
    ocsp_staple_policy: 'MUST_STAPLE',
  });
  const TS = 'Listener "tls-only" filter_chains[0].transport_socket.typed_config';
  t.same(errorsOf(translateXds({}, rewire(set))), [
    `${TS}.session_ticket_keys: field not supported by Remora`,
    `${TS}.ocsp_staple_policy: MUST_STAPLE is not supported: Remora staples no OCSP responses (LENIENT_STAPLING or unset)`,
    `${TS}.common_tls_context.tls_params.cipher_suites: is not supported: Remora uses Node's default cipher list (forward-secret AEAD suites first)`,
    `${TS}.common_tls_context.tls_params.tls_minimum_protocol_version: TLSv1_1 is not supported: Remora accepts TLS 1.2 at least (TLSv1_2 or TLSv1_3)`,
    `${TS}.common_tls_context.tls_params.tls_maximum_protocol_version: TLSv1_2 is not supported: Remora allows up to TLS 1.3 (TLSv1_3 or unset)`,
    `${TS}.common_tls_context.tls_certificates[0].password: field not supported by Remora`,
    `${TS}.common_tls_context.tls_certificates[0].certificate_chain.inline_string: only filename data sources are supported (Remora reads and watches the files)`,
    `${TS}.common_tls_context.validation_context_sds_secret_config.sds_config: must be ads ({ads: {}}) or an api_config_source naming an SDS server of the bootstrap (xds.sds_servers)`,
    `${TS}.common_tls_context.alpn_protocols: ["istio-peer-exchange","h2","http/1.1"] is not what Remora offers: with codec_type AUTO it offers ["h2","http/1.1"] by ALPN (accepted: ["h2","http/1.1"], ["h2"], ["http/1.1"] or unset)`,
  ]);
  setSocket(l, {
    common_tls_context: {
      tls_certificate_sds_secret_configs: [{ name: 'default' }],
      validation_context: { trusted_ca: { filename: '/ca.pem' }, match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: 'spiffe://x' } }], crl: { filename: '/crl' } },
    },
  });
  t.same(errorsOf(translateXds({}, rewire(set))), [
    `${TS}.common_tls_context.tls_certificate_sds_secret_configs[0].sds_config: must be ads ({ads: {}}) or an api_config_source naming an SDS server of the bootstrap (xds.sds_servers)`,
    `${TS}.common_tls_context.validation_context.crl: field not supported by Remora`,
    `${TS}.common_tls_context.validation_context.match_typed_subject_alt_names: is not supported on a listener: Remora accepts every client certificate signed by trusted_ca; restrict callers with the RBAC filter`,
  ]);
  setSocket(l, { common_tls_context: { validation_context: { trusted_ca: { filename: '/ca.pem' } } } });
  t.same(errorsOf(translateXds({}, rewire(set))), [
    `${TS}.common_tls_context.tls_certificates: needs a certificate (certificate_chain and private_key filenames, or a Secret): a TLS listener serves at least one`,
  ]);
  arr(l.filter_chains)[0].transport_socket = { name: 'envoy.transport_sockets.alts', typed_config: { type_url: 'type.googleapis.com/envoy.extensions.transport_sockets.alts.v3.Alts', value: Buffer.alloc(0) } };
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'Listener "tls-only" filter_chains[0].transport_socket: unsupported transport socket envoy.transport_sockets.alts: Remora supports envoy.transport_sockets.tls with DownstreamTlsContext only',
  ]);
  // A value validateConfig refuses points at the xDS field it came from.
  setSocket(l, { common_tls_context: { tls_certificates: [{ certificate_chain: { filename: '/c.pem' }, private_key: { filename: '/k.pem' } }] }, require_client_certificate: { value: true } });
  t.same(errorsOf(translateXds({}, rewire(set))), [
    `${TS}.require_client_certificate: needs "ca_file" (the CAs that client certificates are verified against)`,
  ]);
});

t.test('upstream TLS: trusted_ca required, URI and DNS exact SAN matchers only', async (t) => {
  const set = overTheWire(valid(MTLS));
  const c = set.clusters.get('backend') as Obj;
  setSocket(c, {
    common_tls_context: {
      tls_certificates: [{ certificate_chain: { filename: '/c.pem' } }],
      validation_context: {
        match_typed_subject_alt_names: [
          { san_type: 'EMAIL', matcher: { exact: 'a@b' } },
          { san_type: 'URI', matcher: { prefix: 'spiffe://td/' } },
          { san_type: 'URI', matcher: { exact: 'backend' } },
          { san_type: 'DNS', matcher: { exact: 'spiffe://td/x' } },
          { san_type: 'URI', matcher: { exact: 'spiffe://td/x', ignore_case: true } },
          { san_type: 'DNS', matcher: { exact: 'Backend.App.Svc', ignore_case: true } },
        ],
        system_root_certs: {},
      },
    },
    max_session_keys: { value: 0 },
  });
  const TS = 'Cluster "backend" transport_socket.typed_config';
  const VC = `${TS}.common_tls_context.validation_context`;
  t.same(errorsOf(translateXds({}, rewire(set))), [
    `${TS}.max_session_keys: field not supported by Remora`,
    `${TS}.common_tls_context.tls_certificates[0].private_key.filename: is required`,
    `${VC}.system_root_certs: is not supported: Remora trusts trusted_ca only`,
    `${VC}.trusted_ca: is required: Remora always verifies the upstream certificate, against this CA file only`,
    `${VC}.match_typed_subject_alt_names[0].san_type: EMAIL is not supported: Remora checks URI and DNS SANs (URI or DNS)`,
    `${VC}.match_typed_subject_alt_names[1].matcher.prefix: only exact matches are supported (Remora compares subject alt names whole)`,
    `${VC}.match_typed_subject_alt_names[2].matcher.exact: "backend" is not a URI (no scheme): Remora matches a name without ":" against DNS SANs`,
    `${VC}.match_typed_subject_alt_names[3].matcher.exact: "spiffe://td/x" is not a DNS name: Remora matches a name with ":" against URI SANs`,
    `${VC}.match_typed_subject_alt_names[4].matcher.ignore_case: is not supported here: Remora compares URI SANs exactly (DNS names case-insensitively)`,
  ]);
  setSocket(c, { common_tls_context: { validation_context: { trusted_ca: { filename: '/ca.pem' } } }, sni: '10.0.0.1' });
  t.same(errorsOf(translateXds({}, rewire(set))), [`${TS}.sni: must be a host name (SNI cannot carry an IP address), got "10.0.0.1"`]);
});

t.test('XFCC: Cert and Chain cannot be set; an unknown mode is refused', async (t) => {
  const set = overTheWire(valid(MTLS));
  const l = set.listeners.get('inbound') as Obj;
  const hcm = hcmOf(l);
  hcm.set_current_client_cert_details = { subject: { value: true }, cert: true, chain: true, dns: true };
  setHcm(l, hcm);
  const H = 'Listener "inbound" filter_chains[0].filters[0].typed_config';
  const why = 'is not supported: Remora sets By, Hash, Subject, URI and DNS in x-forwarded-client-cert, never the certificate itself';
  t.same(errorsOf(translateXds({}, rewire(set))), [`${H}.set_current_client_cert_details.cert: ${why}`, `${H}.set_current_client_cert_details.chain: ${why}`]);
  hcm.set_current_client_cert_details = { uri: true };
  hcm.forward_client_cert_details = 'FORWARD_ONLY';
  setHcm(l, hcm);
  const r = translateXds({}, rewire(set));
  t.same(errorsOf(r), [], 'a subset of what Remora sets is accepted');
  t.equal(r.ok && r.config.listeners[0].forward_client_cert_details, 'forward_only');
  hcm.forward_client_cert_details = 9; // a value this proto does not define
  setHcm(l, hcm);
  t.same(errorsOf(translateXds({}, rewire(set))), [
    `${H}.forward_client_cert_details: must be one of sanitize, sanitize_set, forward_only, append_forward, always_forward_only`,
  ]);
});

t.test("RBAC principals nested as Istio writes them (or_ids inside a single-id and_ids) are flattened", async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const l = set.listeners.get('in') as Obj;
  const hcm = hcmOf(l);
  const istio = {
    and_ids: { ids: [{ or_ids: { ids: [named({ exact: 'spiffe://td/ns/a/sa/x' }), named({ prefix: 'spiffe://td/ns/b/' })] } }] },
  };
  hcm.http_filters = [{ name: 'rbac', typed_config: rbac({ policies: { ns: policy(istio) } }) }, ...arr(hcm.http_filters)];
  setHcm(l, hcm);
  let r = translateXds({}, rewire(set));
  t.same(errorsOf(r), []);
  if (r.ok) t.same(r.config.listeners[0].authorization, { allow: ['spiffe://td/ns/a/sa/x', 'spiffe://td/ns/b/*'], deny: [] }, 'expected both identities, in order');
  const two = { and_ids: { ids: [named({ exact: 'spiffe://td/a' }), named({ exact: 'spiffe://td/b' })] } };
  hcm.http_filters = [{ name: 'rbac', typed_config: rbac({ policies: { p: policy(two) } }) }, ...arr(hcm.http_filters).slice(1)];
  setHcm(l, hcm);
  r = translateXds({}, rewire(set));
  t.same(errorsOf(r), [
    `${HF}[0].typed_config.rules.policies["p"].principals[0].and_ids.ids: with more than one principal cannot be expressed: Remora matches one identity against a list of patterns`,
  ]);
});

t.test('listener filters: the TLS and HTTP inspectors are accepted (by name or type), others (but proxy_protocol) NACKed', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const l = set.listeners.get('in') as Obj;
  l.listener_filters = [{ name: 'envoy.filters.listener.tls_inspector' }, { name: 'envoy.filters.listener.http_inspector' }];
  t.same(errorsOf(translateXds({}, rewire(set))), [], 'expected Istio\'s inspectors to be accepted');
  l.listener_filters = [{ name: 'envoy.filters.listener.original_src' }];
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'Listener "in" listener_filters[0]: "envoy.filters.listener.original_src" is not supported (only envoy.filters.listener.tls_inspector and envoy.filters.listener.http_inspector, '
      + 'which only help pick a filter chain, envoy.filters.listener.original_dst, which only matters to redirected connections, and envoy.filters.listener.proxy_protocol)',
  ]);
  l.listener_filters = [
    { name: 'tls', typed_config: protos.encodeAny(TypeUrl.TlsInspector, { enable_ja3_fingerprinting: { value: true } }) },
    { name: 'http', typed_config: { type_url: TypeUrl.HttpInspector, value: new Uint8Array(0) } },
  ];
  t.same(errorsOf(translateXds({}, rewire(set))), [], 'recognised by type URL under other names');
});

t.test('RBAC outside the subset is rejected with its path', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const l = set.listeners.get('in') as Obj;
  const hcm = hcmOf(l);
  const router = arr(hcm.http_filters).slice(-1);
  hcm.http_filters = [
    {
      name: 'a',
      typed_config: protos.encodeAny(TypeUrl.Rbac, {
        rules: {
          policies: {
            p: {
              permissions: [{ any: true }, { header: { name: ':path', string_match: { prefix: '/admin' } } }],
              principals: [
                { any: true },
                { remote_ip: { address_prefix: '10.0.0.0', prefix_len: { value: 8 } } },
                named({ suffix: '/sa/api' }),
                named({ safe_regex: { regex: 'spiffe://.*' } }),
                named({ exact: 'spiffe://td/*' }),
                named({ prefix: 'spiffe://td/', ignore_case: true }),
                named({ exact: 'has space' }),
              ],
              condition: { id: 1 },
            },
          },
        },
        shadow_rules: { action: 'DENY' },
      }),
    },
    { name: 'b', typed_config: rbac({ action: 'LOG', policies: {} }) },
    { name: 'c', typed_config: rbac({ action: 'ALLOW', policies: {} }) },
    ...router,
  ];
  setHcm(l, hcm);
  const P = `${HF}[0].typed_config.rules.policies["p"]`;
  t.same(errorsOf(translateXds({}, rewire(set))), [
    `${HF}[0].typed_config.shadow_rules: is not supported: Remora has no shadow mode for authorization`,
    `${P}.condition: is not supported: Remora authorizes by peer identity alone (no CEL conditions)`,
    `${P}.permissions[1].header: only any: true is supported: Remora authorizes by peer identity alone (no header, path, port or other request rules)`,
    `${P}.principals[0].any: any also matches clients without a certificate, which Remora's patterns never do: use authenticated.principal_name (exact, prefix, or safe_regex ".+" for any verified identity)`,
    `${P}.principals[1].remote_ip: only authenticated.principal_name (alone, or inside or_ids / a single-id and_ids) is supported: Remora authorizes by the identity of the verified client certificate`,
    `${P}.principals[2].authenticated.principal_name.suffix: is not supported (exact, prefix or safe_regex ".+" (any verified identity))`,
    `${P}.principals[3].authenticated.principal_name.safe_regex.regex: "spiffe://.*" is not supported: only ".+" (any verified identity, Remora's "*"); use exact or prefix`,
    `${P}.principals[4].authenticated.principal_name.exact: "spiffe://td/*": "*" cannot be expressed (Remora reads "*" as a prefix wildcard)`,
    `${P}.principals[5].authenticated.principal_name.ignore_case: is not supported: Remora compares identities case-sensitively`,
    `${HF}[1].typed_config.rules.action: LOG is not supported (ALLOW or DENY)`,
    `${HF}[2].typed_config.rules.policies: an ALLOW rule set without policies refuses every request, which Remora cannot express (an empty allow list admits everyone)`,
    `${HF}[2]: a second RBAC rule set with action ALLOW: Remora has one allow list per listener (first at filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.rules)`,
  ]);
  // What validateConfig refuses in a pattern points at the principal.
  hcm.http_filters = [{ name: 'a', typed_config: rbac({ policies: { p: policy(named({ exact: 'has space' })) } }) }, ...router];
  setHcm(l, hcm);
  t.same(errorsOf(translateXds({}, rewire(set))), [
    `${HF}[0].typed_config.rules.policies["p"].principals[0].authenticated.principal_name.exact: must be a non-empty identity pattern without whitespace, e.g. "spiffe://cluster.local/ns/payments/*"`,
  ]);
});

t.test('per-route RBAC belongs to an RBAC filter without rules', async (t) => {
  const set = overTheWire(valid(MTLS));
  const rc = set.routes.get('inbound') as Obj;
  const routes = arr(arr(rc.virtual_hosts)[0].routes);
  const perRoute = (action: string): AnyMessage =>
    protos.encodeAny(TypeUrl.RbacPerRoute, { rbac: { rules: { action, policies: { p: policy(named({ exact: 'spiffe://td/x' })) } } } });
  routes[2].typed_per_filter_config = {
    'remora.rbac.allow': perRoute('ALLOW'),
    nowhere: perRoute('DENY'),
    'remora.route_rbac.deny': protos.encodeAny(TypeUrl.RbacPerRoute, {}),
    'remora.route_rbac.allow': perRoute('DENY'),
  };
  const R = 'RouteConfiguration "inbound" virtual_hosts[0].routes[2].typed_per_filter_config';
  t.same(errorsOf(translateXds({}, rewire(set))), [
    `${R}["remora.rbac.allow"]: would replace the rules of Listener "inbound"'s RBAC filter "remora.rbac.allow" for this route; Remora applies listener and route authorization together: put per-route RBAC on an RBAC filter without rules`,
    `${R}["nowhere"]: Listener "inbound" has no RBAC http filter named "nowhere"`,
  ]);
  routes[2].typed_per_filter_config = { 'remora.route_rbac.deny': perRoute('DENY'), 'remora.route_rbac.allow': perRoute('DENY') };
  t.same(errorsOf(translateXds({}, rewire(set))), [
    `${R}["remora.route_rbac.allow"]: a second RBAC rule set with action DENY: Remora has one deny list per route (first at virtual_hosts[0].routes[2].typed_per_filter_config["remora.route_rbac.deny"].rbac.rules)`,
  ]);
  // RBACPerRoute without rules on a slot: Envoy enforces nothing there, nor does Remora.
  routes[2].typed_per_filter_config = { 'remora.route_rbac.deny': protos.encodeAny(TypeUrl.RbacPerRoute, {}) };
  const r = translateXds({}, rewire(set));
  t.same(errorsOf(r), []);
  t.equal(r.ok && r.config.listeners[0].virtual_hosts[0].routes[2].authorization, undefined);
});

t.test("HttpConnectionManager front-end fields as Istio and Envoy set them", async (t) => {
  const config = valid(MINIMAL);
  const set = overTheWire(config);
  const l = set.listeners.get('in') as Obj;
  setHcm(l, {
    ...hcmOf(l),
    normalize_path: { value: true },
    merge_slashes: true,
    path_with_escaped_slashes_action: 'UNESCAPE_AND_REDIRECT',
    server_name: 'istio-envoy',
    server_header_transformation: 'APPEND_IF_ABSENT',
    request_headers_timeout: { seconds: 0 },
    common_http_protocol_options: { idle_timeout: { seconds: 3600 }, max_headers_count: { value: 200 }, max_requests_per_connection: { value: 10 } },
  });
  const back = translateXds(baseOf(config), rewire(set));
  t.same(errorsOf(back), [], 'accepted');
  if (!back.ok) return;
  const got = back.config.listeners[0];
  t.match(got, {
    normalize_path: true, merge_slashes: true, path_with_escaped_slashes_action: 'unescape_and_redirect', server_name: 'istio-envoy',
    server_header_transformation: 'append_if_absent', request_headers_timeout_ms: 3_600_000, idle_timeout_ms: 3_600_000,
    max_request_headers_count: 200, max_requests_per_connection: 10,
  });
  setHcm(l, { ...hcmOf(l), common_http_protocol_options: { max_connection_duration: { seconds: 60 } } });
  const refused = translateXds(baseOf(config), rewire(set));
  t.match(errorsOf(refused).join('\n'), /common_http_protocol_options\.max_connection_duration/, 'an unsupported option is NACKed by its path');
});

// ---------------------------------------------------------------------------
// HTTP/2 and gRPC

const HPO = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const TL = `${L}.filters[0].typed_config`;
/** A cluster's HttpProtocolOptions, as an Any under Envoy's key. */
const protocolOptions = (options: Obj): Obj => ({ [HPO]: protos.encodeAny(TypeUrl.HttpProtocolOptions, options) });
const firstRoute = (set: MutableSet): Obj => arr(arr((set.routes.get('in') as Obj).virtual_hosts)[0].routes)[0];

t.test('toXdsResources: codec_type, HTTP/2 settings, an HTTP/2 cluster and gRPC deadlines as Envoy reads them', async (t) => {
  const r = toXdsResources(valid(GRPC), { edsForAllClusters: true });
  const hcm = hcmOf(r.listeners.get('grpc-in') as Obj);
  t.equal(hcm.codec_type, 'HTTP2');
  t.same(hcm.http2_protocol_options, {
    max_concurrent_streams: { value: 1000 }, initial_stream_window_size: { value: 1_048_576 }, initial_connection_window_size: { value: 4_194_304 },
    connection_keepalive: { interval: { seconds: 30, nanos: 0 }, timeout: { seconds: 2, nanos: 0 }, interval_jitter: { value: 0 } },
  }, 'keepalive without jitter, as Remora PINGs (Envoy\'s unset jitter is 15 %)');
  const clusterOf = (name: string): Obj => protos.decodeAny(protos.encodeAny(TypeUrl.Cluster, r.clusters.get(name) as Obj)).message;
  const optionsOf = (c: Obj): Obj => protos.decodeAny(obj(obj(c.typed_extension_protocol_options)[HPO]) as unknown as AnyMessage).message;
  const grpc = clusterOf('grpc');
  const any = obj(obj(grpc.typed_extension_protocol_options)[HPO]) as unknown as AnyMessage;
  t.equal(any.type_url, TypeUrl.HttpProtocolOptions, 'filed under Envoy\'s key, with its type');
  t.same(optionsOf(grpc), {
    explicit_http_config: {
      http2_protocol_options: {
        max_concurrent_streams: { value: 50 }, initial_stream_window_size: { value: 131_072 }, initial_connection_window_size: { value: 2_097_152 },
        connection_keepalive: { interval: { seconds: 10, nanos: 0 }, timeout: { seconds: 5, nanos: 0 }, interval_jitter: { value: 0 } },
      },
    },
  });
  t.same(arr(grpc.health_checks)[0].grpc_health_check, {}, 'service_name "" (the whole server) and the cluster name as authority: Envoy\'s defaults, nothing on the wire');
  t.equal(arr(grpc.health_checks)[0].http_health_check, undefined);
  const grpcTls = clusterOf('grpc-tls');
  t.same(arr(grpcTls.health_checks)[0].grpc_health_check, { service_name: 'echo.Echo', authority: 'grpc.internal' });
  t.same(obj(socketOf(grpcTls).common_tls_context).alpn_protocols, ['h2'], 'an HTTP/2 cluster offers h2');
  const sniffed = clusterOf('sniffed');
  t.same(optionsOf(sniffed), {
    use_downstream_protocol_config: {
      http2_protocol_options: {
        max_concurrent_streams: { value: 1000 }, initial_stream_window_size: { value: 65_535 }, initial_connection_window_size: { value: 1_048_576 },
        connection_keepalive: { interval: { seconds: 60, nanos: 0 }, timeout: { seconds: 10, nanos: 0 }, interval_jitter: { value: 0 } },
      },
    },
  }, 'protocol downstream: use_downstream_protocol_config with its HTTP/2 settings');
  t.equal(obj(socketOf(sniffed).common_tls_context).alpn_protocols, undefined, 'downstream: h2 or http/1.1 per connection, which no one list says');
  t.same(obj(socketOf(r.listeners.get('grpc-tls') as Obj).common_tls_context).alpn_protocols, ['h2'], 'codec_type HTTP2 over TLS offers h2 only');
  t.equal(r.clusters.get('web')?.typed_extension_protocol_options, undefined, 'HTTP/1.1 is the default: nothing written');
  const routes = arr(arr((r.routes.get('grpc-in') as Obj).virtual_hosts)[0].routes).map((x) => obj(x.route));
  t.same(routes.map((x) => x.max_stream_duration), [{ grpc_timeout_header_max: { seconds: 3, nanos: 0 } }, { grpc_timeout_header_max: { seconds: 0, nanos: 0 } }]);
  t.equal(obj(routes[0].retry_policy).retry_on, 'connect-failure,refused-stream,unavailable,cancelled,deadline-exceeded,internal,resource-exhausted');
  t.equal(arr(arr((r.routes.get('h1-in') as Obj).virtual_hosts)[0].routes).map((x) => obj(x.route))[0].max_stream_duration, undefined,
    'no grpc_timeout_header_max_ms: no max_stream_duration (grpc-timeout ignored)');
});

t.test('HttpConnectionManager codec_type and http2_protocol_options (Istio and Envoy shapes)', async (t) => {
  const config = valid(MINIMAL);
  const set = overTheWire(config);
  const l = set.listeners.get('in') as Obj;
  const base = hcmOf(l);
  delete base.codec_type;
  delete base.http2_protocol_options;
  const translate = (hcm: Obj): XdsTranslateResult => {
    setHcm(l, { ...base, ...hcm });
    return translateXds(baseOf(config), rewire(set));
  };
  for (const [codec, want] of [['AUTO', 'auto'], ['HTTP1', 'http1'], ['HTTP2', 'http2']] as const) {
    const r = translate({ codec_type: codec });
    t.same(errorsOf(r), [], `${codec} accepted`);
    t.equal(r.ok && r.config.listeners[0].codec_type, want, `${codec} → ${want}`);
  }
  const unset = translate({});
  t.same(unset.ok && unset.config.listeners[0].http2_protocol_options, { max_concurrent_streams: 100, initial_stream_window_size: 65_535, initial_connection_window_size: 1_048_576 },
    "unset: Remora's defaults (Envoy's recommendation for untrusted clients), not Envoy's 2^31-1 streams and 256 MiB windows");
  t.equal(unset.ok && unset.config.listeners[0].codec_type, 'auto');

  // Envoy's edge recommendation plus flood limits and the default HPACK table size.
  const r = translate({
    codec_type: 'AUTO',
    http2_protocol_options: {
      max_concurrent_streams: { value: 100 }, initial_stream_window_size: { value: 65_536 }, initial_connection_window_size: { value: 1_048_576 },
      hpack_table_size: { value: 4096 }, max_outbound_frames: { value: 10_000 }, max_outbound_control_frames: { value: 1000 },
      max_consecutive_inbound_frames_with_empty_payload: { value: 1 }, max_inbound_priority_frames_per_stream: { value: 100 },
      max_inbound_window_update_frames_per_data_frame_sent: { value: 10 },
    },
  });
  t.same(errorsOf(r), [], 'flood limits and hpack_table_size 4096 accepted');
  t.same(r.ok && r.config.listeners[0].http2_protocol_options, { max_concurrent_streams: 100, initial_stream_window_size: 65_536, initial_connection_window_size: 1_048_576 });
  const partial = translate({ http2_protocol_options: { max_concurrent_streams: { value: 1_073_741_824 } } });
  t.same(partial.ok && partial.config.listeners[0].http2_protocol_options, { max_concurrent_streams: 1_073_741_824, initial_stream_window_size: 65_535, initial_connection_window_size: 1_048_576 },
    'fields left unset keep their defaults');

  t.same(errorsOf(translate({
    codec_type: 'HTTP3',
    http2_protocol_options: {
      hpack_table_size: { value: 0 }, allow_connect: true, allow_metadata: true,
      custom_settings_parameters: [{ identifier: { value: 9 }, value: { value: 1 } }], override_stream_error_on_invalid_http_message: { value: true },
    },
  })), [
    `${TL}.codec_type: HTTP3 is not supported: Remora serves HTTP/1.1 and HTTP/2 (AUTO, HTTP1 or HTTP2)`,
    `${TL}.http2_protocol_options.allow_connect: field not supported by Remora`,
    `${TL}.http2_protocol_options.allow_metadata: field not supported by Remora`,
    `${TL}.http2_protocol_options.custom_settings_parameters: field not supported by Remora`,
    `${TL}.http2_protocol_options.override_stream_error_on_invalid_http_message: field not supported by Remora`,
    `${TL}.http2_protocol_options.hpack_table_size: 0 is not supported: Remora's HPACK table is 4096 bytes (4096 or unset)`,
  ]);
  // validateConfig's ranges are reported at the xDS field.
  t.same(errorsOf(translate({ http2_protocol_options: { initial_stream_window_size: { value: 1024 } } })).length, 1);
  t.match(errorsOf(translate({ http2_protocol_options: { initial_stream_window_size: { value: 1024 } } }))[0], `${TL}.http2_protocol_options.initial_stream_window_size:`);
  // A uWS listener serves HTTP/1.1 only.
  l.metadata = { filter_metadata: { remora: { fields: { codec: { stringValue: 'uws' } } } } };
  t.match(errorsOf(translate({ codec_type: 'HTTP2' })), [`${TL}.codec_type: must be "http1" or "auto" with codec "uws"`]);
});

t.test('Cluster: HTTP/2 from HttpProtocolOptions (Istio) or the deprecated http2_protocol_options', async (t) => {
  const config = valid(MINIMAL);
  const set = overTheWire(config);
  const c = set.clusters.get('api') as Obj;
  const translate = (fields: Obj): XdsTranslateResult => {
    delete c.typed_extension_protocol_options;
    delete c.http2_protocol_options;
    delete c.metadata;
    Object.assign(c, fields);
    return translateXds(baseOf(config), rewire(set));
  };
  const cluster = (r: XdsTranslateResult): RemoraConfig['clusters'][number] | undefined => (r.ok ? r.config.clusters[0] : undefined);

  // Istio's outbound cluster for a gRPC (or http2) port.
  const istio = translate({ typed_extension_protocol_options: protocolOptions({ explicit_http_config: { http2_protocol_options: {} } }) });
  t.same(errorsOf(istio), []);
  t.match(cluster(istio), { protocol: 'http2', http2_protocol_options: { max_concurrent_streams: 100, initial_stream_window_size: 65_535, initial_connection_window_size: 1_048_576 } });

  // A DestinationRule's connection pool: idle timeout and stream limit.
  const tuned = translate({
    typed_extension_protocol_options: protocolOptions({
      common_http_protocol_options: { idle_timeout: { seconds: 300 } },
      explicit_http_config: { http2_protocol_options: { max_concurrent_streams: { value: 1_073_741_824 }, initial_connection_window_size: { value: 2_097_152 } } },
    }),
  });
  t.same(errorsOf(tuned), []);
  t.match(cluster(tuned), { protocol: 'http2', idle_timeout_ms: 300_000, http2_protocol_options: { max_concurrent_streams: 1_073_741_824, initial_connection_window_size: 2_097_152 } });
  const noIdle = translate({ typed_extension_protocol_options: protocolOptions({ common_http_protocol_options: { idle_timeout: {} }, explicit_http_config: {} }) });
  t.same(errorsOf(noIdle), []);
  t.match(cluster(noIdle), { protocol: 'http1', idle_timeout_ms: 0 }, "empty explicit_http_config is HTTP/1.1; idle_timeout 0s disables it (Envoy's and Remora's 0)");

  const h1 = translate({ typed_extension_protocol_options: protocolOptions({ explicit_http_config: { http_protocol_options: {} } }) });
  t.same(errorsOf(h1), []);
  t.equal(cluster(h1)?.protocol, 'http1');

  const legacy = translate({ http2_protocol_options: { max_concurrent_streams: { value: 10 } } });
  t.same(errorsOf(legacy), []);
  t.match(cluster(legacy), { protocol: 'http2', http2_protocol_options: { max_concurrent_streams: 10 } });
  const legacyEmpty = translate({ http2_protocol_options: {} });
  t.equal(cluster(legacyEmpty)?.protocol, 'http2', 'the deprecated field\'s presence alone means HTTP/2');

  const C = 'Cluster "api"';
  const T = `${C} typed_extension_protocol_options["${HPO}"]`;
  const auto = translate({ typed_extension_protocol_options: protocolOptions({ auto_config: { http2_protocol_options: { max_concurrent_streams: { value: 50 } } } }) });
  t.same(errorsOf(auto), [], 'auto_config: the version by ALPN');
  t.match(cluster(auto), { protocol: 'auto', http2_protocol_options: { max_concurrent_streams: 50 } });
  t.same(errorsOf(translate({ typed_extension_protocol_options: protocolOptions({ auto_config: { http3_protocol_options: {} } }) })), [
    `${T}.auto_config.http3_protocol_options: field not supported by Remora`,
  ]);
  t.same(errorsOf(translate({ typed_extension_protocol_options: protocolOptions({ common_http_protocol_options: { idle_timeout: { seconds: 1 } } }) })), [
    `${T}.explicit_http_config: is required (Envoy requires one of explicit_http_config, use_downstream_protocol_config, auto_config)`,
  ]);
  t.same(errorsOf(translate({
    typed_extension_protocol_options: protocolOptions({
      common_http_protocol_options: { max_requests_per_connection: { value: 1 }, max_connection_duration: { seconds: 60 } },
      upstream_http_protocol_options: { auto_sni: true },
      explicit_http_config: { http_protocol_options: { accept_http_10: true } },
    }),
  })), [
    `${T}.upstream_http_protocol_options: field not supported by Remora`,
    `${T}.explicit_http_config.http_protocol_options.accept_http_10: field not supported by Remora`,
    `${T}.common_http_protocol_options.max_connection_duration: field not supported by Remora`,
  ]);
  t.same(errorsOf(translate({
    http2_protocol_options: {},
    typed_extension_protocol_options: {
      ...protocolOptions({ explicit_http_config: { http2_protocol_options: { allow_connect: true } } }),
      'envoy.filters.network.thrift_proxy': { type_url: 'type.googleapis.com/envoy.extensions.filters.network.thrift_proxy.v3.ThriftProtocolOptions', value: Buffer.alloc(0) },
    },
  })), [
    `${C} typed_extension_protocol_options["envoy.filters.network.thrift_proxy"]: type.googleapis.com/envoy.extensions.filters.network.thrift_proxy.v3.ThriftProtocolOptions is not supported (only ${HPO})`,
    `${C} http2_protocol_options: not allowed together with typed_extension_protocol_options["${HPO}"] (Envoy refuses both too); set its explicit_http_config.http2_protocol_options`,
    `${T}.explicit_http_config.http2_protocol_options.allow_connect: field not supported by Remora`,
  ]);
  t.same(errorsOf(translate({
    typed_extension_protocol_options: protocolOptions({ common_http_protocol_options: { idle_timeout: { seconds: 5 } }, explicit_http_config: {} }),
    metadata: { filter_metadata: { remora: { fields: { idle_timeout_ms: { numberValue: 1000 } } } } },
  })), [
    `${C} metadata.filter_metadata.remora.idle_timeout_ms: is also set by the HttpProtocolOptions' common_http_protocol_options.idle_timeout; set one`,
  ]);
});

t.test('HTTP/2 PING keepalive: connection_keepalive on listeners and clusters', async (t) => {
  const config = valid(MINIMAL);
  const set = overTheWire(config);
  const l = set.listeners.get('in') as Obj;
  const base = hcmOf(l);
  const c = set.clusters.get('api') as Obj;
  const translate = (listenerKa: Obj | undefined, clusterKa?: Obj): XdsTranslateResult => {
    setHcm(l, { ...base, http2_protocol_options: listenerKa === undefined ? {} : { connection_keepalive: listenerKa } });
    c.typed_extension_protocol_options = protocolOptions({ explicit_http_config: { http2_protocol_options: clusterKa === undefined ? {} : { connection_keepalive: clusterKa } } });
    return translateXds(baseOf(config), rewire(set));
  };
  const kaOf = (r: XdsTranslateResult): unknown[] => (r.ok ? [r.config.listeners[0].http2_protocol_options.connection_keepalive, r.config.clusters[0].http2_protocol_options.connection_keepalive] : []);

  // Envoy's documented shape (interval and the required timeout) on the listener; on the
  // cluster a sub-second timeout, with jitter explicitly off.
  const r = translate({ interval: { seconds: 30 }, timeout: { seconds: 5 } }, { interval: { seconds: 10 }, timeout: { nanos: 500_000_000 }, interval_jitter: { value: 0 } });
  t.same(errorsOf(r), []);
  t.same(kaOf(r), [{ interval_ms: 30_000, timeout_ms: 5000 }, { interval_ms: 10_000, timeout_ms: 500 }]);
  const noTimeout = translate({ interval: { seconds: 20 } });
  t.same(errorsOf(noTimeout), []);
  t.same(kaOf(noTimeout)[0], { interval_ms: 20_000, timeout_ms: 5000 }, "timeout unset (Envoy requires it): Remora's 5 s");
  // Envoy sends no interval PINGs when interval is 0 or unset: Remora's unset (no PINGs).
  for (const ka of [{ interval: {}, timeout: { seconds: 5 } }, { timeout: { seconds: 5 } }, {}]) {
    const off = translate(ka, ka);
    t.same(errorsOf(off), []);
    t.same(kaOf(off), [undefined, undefined], `${JSON.stringify(ka)}: no keepalive`);
  }

  const K = `${TL}.http2_protocol_options.connection_keepalive`;
  const CK = `Cluster "api" typed_extension_protocol_options["${HPO}"].explicit_http_config.http2_protocol_options.connection_keepalive`;
  t.same(errorsOf(translate(
    { interval: { seconds: 30 }, timeout: { seconds: 5 }, interval_jitter: { value: 15 }, connection_idle_interval: { seconds: 60 } },
    { interval: { seconds: 30 }, timeout: { seconds: 5 }, connection_idle_interval: {} },
  )), [
    `${K}.interval_jitter: 15% is not supported: Remora sends PINGs at a fixed interval (0 or unset)`,
    `${K}.connection_idle_interval: 60000 ms is not supported: Remora PINGs at the fixed interval only, not before reusing an idle connection (0 or unset)`,
  ], 'jitter and idle PINGs rejected by path; connection_idle_interval 0 (off) accepted');
  // validateConfig's ranges are reported at the xDS field.
  t.match(errorsOf(translate({ interval: { seconds: 30 }, timeout: {} })), [`${K}.timeout:`]);
  t.match(errorsOf(translate(undefined, { interval: { nanos: 1_500_000 } })), [`${CK}.interval: must be a whole number of milliseconds`]);
});

t.test('Cluster: use_downstream_protocol_config (Istio, ports whose protocol it sniffs) is protocol downstream', async (t) => {
  const config = valid(MINIMAL);
  const set = overTheWire(config);
  const c = set.clusters.get('api') as Obj;
  delete c.metadata; // the encoder's idle_timeout_ms extension: Istio's idle timeout is in the options
  const translate = (options: Obj): XdsTranslateResult => {
    c.typed_extension_protocol_options = protocolOptions(options);
    return translateXds(baseOf(config), rewire(set));
  };
  const cluster = (r: XdsTranslateResult): RemoraConfig['clusters'][number] | undefined => (r.ok ? r.config.clusters[0] : undefined);

  // Istio's outbound cluster for an unnamed port: both versions, its stream limit, its idle timeout.
  const istio = translate({
    common_http_protocol_options: { idle_timeout: { seconds: 3600 } },
    use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: { max_concurrent_streams: { value: 1_073_741_824 } } },
  });
  t.same(errorsOf(istio), []);
  t.match(cluster(istio), {
    protocol: 'downstream', idle_timeout_ms: 3_600_000,
    http2_protocol_options: { max_concurrent_streams: 1_073_741_824, initial_stream_window_size: 65_535, initial_connection_window_size: 1_048_576 },
  });
  const bare = translate({ use_downstream_protocol_config: {} });
  t.same(errorsOf(bare), []);
  t.match(cluster(bare), { protocol: 'downstream', http2_protocol_options: { max_concurrent_streams: 100 } }, "no http2_protocol_options: Remora's HTTP/2 defaults");

  const T = `Cluster "api" typed_extension_protocol_options["${HPO}"]`;
  t.same(errorsOf(translate({
    use_downstream_protocol_config: {
      http_protocol_options: { header_key_format: { proper_case_words: {} } },
      http2_protocol_options: { allow_connect: true },
      http3_protocol_options: {},
    },
  })), [
    `${T}.use_downstream_protocol_config.http3_protocol_options: field not supported by Remora`,
    `${T}.use_downstream_protocol_config.http_protocol_options.header_key_format: field not supported by Remora`,
    `${T}.use_downstream_protocol_config.http2_protocol_options.allow_connect: field not supported by Remora`,
  ]);
  t.same(errorsOf(translate({ explicit_http_config: { http2_protocol_options: {} }, use_downstream_protocol_config: {} })), [
    `${T}.use_downstream_protocol_config: not allowed together with explicit_http_config (Envoy takes one of explicit_http_config, use_downstream_protocol_config, auto_config)`,
  ]);
});

t.test('HealthCheck: grpc_health_check → health_check.grpc; tcp and custom checks rejected', async (t) => {
  const config = valid(MINIMAL);
  const set = overTheWire(config);
  const c = set.clusters.get('api') as Obj;
  const translate = (check: Obj): XdsTranslateResult => {
    c.health_checks = [check];
    return translateXds(baseOf(config), rewire(set));
  };
  const checkOf = (r: XdsTranslateResult): RemoraConfig['clusters'][number]['health_check'] => (r.ok ? r.config.clusters[0].health_check : undefined);

  // Envoy's documented gRPC health check, with the intervals a control plane writes.
  const named = translate({
    timeout: { seconds: 1 }, interval: { seconds: 10 }, unhealthy_threshold: { value: 2 }, healthy_threshold: { value: 1 },
    grpc_health_check: { service_name: 'grpc.health.v1.Health', authority: 'api.internal' },
  });
  t.same(errorsOf(named), []);
  const check = checkOf(named);
  t.match(check, { grpc: { service_name: 'grpc.health.v1.Health', authority: 'api.internal' }, interval_ms: 10_000, timeout_ms: 1000, unhealthy_threshold: 2, healthy_threshold: 1, host: 'api' });
  t.equal(check?.path, undefined, 'no HTTP path');
  const whole = translate({ timeout: { seconds: 1 }, interval: { seconds: 5 }, grpc_health_check: {} });
  t.same(errorsOf(whole), []);
  t.same(checkOf(whole)?.grpc, { service_name: '' }, "service_name unset: the server as a whole; authority unset: the check's host, the cluster name (Envoy's default too)");
  t.equal(checkOf(whole)?.host, 'api');

  const H = 'Cluster "api" health_checks[0]';
  t.same(errorsOf(translate({ grpc_health_check: { service_name: 's', initial_metadata: [{ header: { key: 'x-token', value: 't' } }] } })), [
    `${H}.grpc_health_check.initial_metadata: is not supported: Remora sends no metadata with a gRPC health check`,
  ]);
  t.same(errorsOf(translate({ http_health_check: { path: '/h' }, grpc_health_check: {} })), [
    `${H}.grpc_health_check: not allowed together with http_health_check (Envoy takes one health checker)`,
  ]);
  t.same(errorsOf(translate({ tcp_health_check: { send: { text: '00' } } })), [], 'a TCP check is accepted (xds-connection-options.test.ts)');
  t.same(errorsOf(translate({ custom_health_check: { name: 'redis' }, grpc_health_check: {} })), [
    `${H}.custom_health_check: only http_health_check, grpc_health_check and tcp_health_check are supported`,
  ]);
  // validateConfig's rules are reported at the xDS field.
  t.match(errorsOf(translate({ grpc_health_check: { authority: 'a b' } })), [`${H}.grpc_health_check.authority: must be a non-empty host name without whitespace`]);

  // A check's own host is its gRPC authority: the encoder writes it as `authority`.
  const hosted = valid({ ...MINIMAL, clusters: [{ ...MINIMAL.clusters[0], health_check: { grpc: {}, host: 'api.internal' } }] });
  const back = translateXds(baseOf(hosted), overTheWire(hosted));
  t.same(errorsOf(back), []);
  t.match(back.ok && back.config.clusters[0].health_check, { grpc: { service_name: '', authority: 'api.internal' }, host: 'api' }, 'the same :authority on the wire');
});

t.test('TLS alpn_protocols: accepted where Remora offers the same versions, else rejected with what it offers', async (t) => {
  const config = valid(MINIMAL);
  const set = overTheWire(config);
  const l = set.listeners.get('in') as Obj;
  const base = hcmOf(l);
  delete base.codec_type;
  const c = set.clusters.get('api') as Obj;
  const CERT = { tls_certificates: [{ certificate_chain: { filename: '/c.pem' }, private_key: { filename: '/k.pem' } }] };
  const CA = { validation_context: { trusted_ca: { filename: '/ca.pem' } } };
  const translate = (codec: string | undefined, listenerAlpn: string[], clusterOptions: Obj | undefined, clusterAlpn: string[]): XdsTranslateResult => {
    setHcm(l, { ...base, ...(codec !== undefined ? { codec_type: codec } : {}) });
    setSocket(l, { common_tls_context: { ...CERT, alpn_protocols: listenerAlpn } });
    setSocket(c, { common_tls_context: { ...CA, alpn_protocols: clusterAlpn } });
    delete c.typed_extension_protocol_options;
    if (clusterOptions !== undefined) c.typed_extension_protocol_options = protocolOptions(clusterOptions);
    return translateXds(baseOf(config), rewire(set));
  };
  const H2 = { explicit_http_config: { http2_protocol_options: {} } };
  const DOWNSTREAM = { use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} } };

  // Istio's inbound listener (AUTO, ["h2","http/1.1"]); its TLS origination to an HTTP/2
  // service (["h2"]); Envoy's docs' lists ("h2,http/1.1" for both versions, "http/1.1").
  for (const [codec, la, options, ca, want] of [
    [undefined, ['h2', 'http/1.1'], undefined, ['http/1.1'], ['auto', 'http1']],
    ['AUTO', ['h2'], H2, ['h2'], ['auto', 'http2']],
    ['AUTO', ['http/1.1'], H2, ['h2', 'http/1.1'], ['auto', 'http2']],
    ['AUTO', ['http/1.1', 'h2'], DOWNSTREAM, ['h2', 'http/1.1'], ['auto', 'downstream']],
    ['HTTP1', ['http/1.1'], DOWNSTREAM, ['h2'], ['http1', 'downstream']],
    ['HTTP2', ['h2'], { explicit_http_config: {} }, ['http/1.1'], ['http2', 'http1']],
  ] as const) {
    const r = translate(codec, [...la], options, [...ca]);
    t.same(errorsOf(r), [], `listener ${codec ?? 'unset'} ${JSON.stringify(la)}, cluster ${JSON.stringify(ca)}: accepted`);
    t.same(r.ok ? [r.config.listeners[0].codec_type, r.config.clusters[0].protocol] : [], want);
  }

  const A = `${L}.transport_socket.typed_config.common_tls_context.alpn_protocols`;
  const CA_ = 'Cluster "api" transport_socket.typed_config.common_tls_context.alpn_protocols';
  t.same(errorsOf(translate('HTTP1', ['h2', 'http/1.1'], undefined, ['h2', 'http/1.1'])), [
    `${A}: ["h2","http/1.1"] is not what Remora offers: with codec_type HTTP1 it offers ["http/1.1"] by ALPN (accepted: ["http/1.1"] or unset)`,
    `${CA_}: ["h2","http/1.1"] is not what Remora offers: with protocol http1 it offers ["http/1.1"] by ALPN (accepted: ["http/1.1"], unset, or Istio's protocols (with h2 or http/1.1), offered before the version spoken)`,
  ]);
  // Istio's in-mesh lists name its own protocols: a cluster offers them as they are (its
  // peers pick their mTLS chain by them) and speaks its own version; a listener does not.
  t.same(errorsOf(translate('HTTP2', ['h2', 'http/1.1'], H2, ['istio', 'h2'])), [
    `${A}: ["h2","http/1.1"] is not what Remora offers: with codec_type HTTP2 it offers ["h2"] by ALPN (accepted: ["h2"] or unset)`,
  ]);
  // What an Istio sidecar offers on an HTTP connection (its istio.alpn filter): `istio`,
  // then the version. Never istio-peer-exchange (its metadata exchange framing).
  for (const [options, list, protocol] of [[undefined, ['istio-peer-exchange', 'istio'], 'http1'], [H2, ['istio-peer-exchange', 'istio', 'h2'], 'http2']] as const) {
    const r = translate('AUTO', ['h2', 'http/1.1'], options, [...list]);
    t.same(r.ok ? [r.config.clusters[0].protocol, r.config.clusters[0].tls?.alpn_protocols, r.noEffect.get('UpstreamTlsContext.alpn_protocols istio-peer-exchange (not offered)')] : errorsOf(r),
      [protocol, ['istio'], 1], `${JSON.stringify(list)}: "istio" offered before the version, ${protocol} spoken; istio-peer-exchange counted as not offered`);
  }
  t.same(errorsOf(translate('AUTO', ['h2', 'http/1.1'], undefined, ['istio', 'acme'])), [
    `${CA_}: ["istio","acme"] is not what Remora offers: with protocol http1 it offers ["http/1.1"] by ALPN (accepted: ["http/1.1"], unset, or Istio's protocols (with h2 or http/1.1), offered before the version spoken)`,
  ], 'a name neither Istio\'s nor an HTTP version');
  t.same(errorsOf(translate('AUTO', ['h2', 'http/1.1'], { auto_config: {} }, ['istio-peer-exchange', 'istio'])), [
    `${CA_}: ["istio-peer-exchange","istio"] is not what Remora offers: with protocol auto it offers ["h2","http/1.1"] on its first handshake with each endpoint, then the version chosen by ALPN (accepted: ["h2","http/1.1"] or unset)`,
  ], 'not on an auto cluster, whose version the ALPN choice decides');
  t.same(errorsOf(translate(undefined, ['istio-peer-exchange', 'h2', 'http/1.1'], DOWNSTREAM, ['http/1.1'])), [
    `${A}: ["istio-peer-exchange","h2","http/1.1"] is not what Remora offers: with codec_type AUTO it offers ["h2","http/1.1"] by ALPN (accepted: ["h2","http/1.1"], ["h2"], ["http/1.1"] or unset)`,
    `${CA_}: ["http/1.1"] is not what Remora offers: with protocol downstream it offers ["h2"] on its HTTP/2 connections and ["http/1.1"] on its HTTP/1.1 connections by ALPN (accepted: ["h2"], ["h2","http/1.1"], unset, or Istio's protocols (with h2 or http/1.1), offered before the version spoken)`,
  ]);
  t.same(errorsOf(translate('AUTO', ['h2', 'h2'], undefined, ['http/1.1'])).length, 1, 'a repeated protocol is rejected');
  // A rejected version choice or codec is reported once, without an ALPN complaint.
  t.same(errorsOf(translate('HTTP3', ['h3'], { auto_config: { http3_protocol_options: {} } }, ['h2', 'http/1.1'])), [
    `${TL}.codec_type: HTTP3 is not supported: Remora serves HTTP/1.1 and HTTP/2 (AUTO, HTTP1 or HTTP2)`,
    `Cluster "api" typed_extension_protocol_options["${HPO}"].auto_config.http3_protocol_options: field not supported by Remora`,
  ]);
  t.same(errorsOf(translate('AUTO', ['h2', 'http/1.1'], { auto_config: {} }, ['h2', 'http/1.1'])), [], 'auto_config with ["h2","http/1.1"]');
  t.same(errorsOf(translate('AUTO', ['h2', 'http/1.1'], { auto_config: {} }, ['h2'])), [
    `Cluster "api" transport_socket.typed_config.common_tls_context.alpn_protocols: ["h2"] is not what Remora offers: with protocol auto it offers ["h2","http/1.1"] on its first handshake with each endpoint, then the version chosen by ALPN (accepted: ["h2","http/1.1"] or unset)`,
  ], 'auto_config offers both');
});

t.test('Route: gRPC deadlines from max_stream_duration (Istio) or max_grpc_timeout; Istio\'s default retry_on', async (t) => {
  const config = valid(MINIMAL);
  const set = overTheWire(config);
  const action = obj(firstRoute(set).route);
  const translate = (fields: Obj): XdsTranslateResult => {
    for (const k of ['max_stream_duration', 'max_grpc_timeout', 'grpc_timeout_offset', 'retry_policy']) delete action[k];
    Object.assign(action, fields);
    return translateXds(baseOf(config), rewire(set));
  };
  const routeOf = (r: XdsTranslateResult): NonNullable<RemoraConfig['listeners'][number]['virtual_hosts'][number]['routes'][number]['route']> | undefined =>
    (r.ok ? r.config.listeners[0].virtual_hosts[0].routes[0].route : undefined);

  // What Istio writes on every HTTP route: no stream limit, grpc-timeout honoured uncapped.
  const istio = translate({ max_stream_duration: { max_stream_duration: { seconds: 0 }, grpc_timeout_header_max: { seconds: 0 } } });
  t.same(errorsOf(istio), []);
  t.equal(routeOf(istio)?.grpc_timeout_header_max_ms, 0, 'grpc_timeout_header_max 0s → 0 (no cap)');
  const capped = translate({ max_stream_duration: { grpc_timeout_header_max: { seconds: 5, nanos: 500_000_000 }, grpc_timeout_header_offset: {} } });
  t.same(errorsOf(capped), []);
  t.equal(routeOf(capped)?.grpc_timeout_header_max_ms, 5500);
  const onlyLimit = translate({ max_stream_duration: { max_stream_duration: {} } });
  t.equal(routeOf(onlyLimit)?.grpc_timeout_header_max_ms, undefined, 'max_stream_duration without grpc_timeout_header_max: grpc-timeout ignored');
  const legacy = translate({ max_grpc_timeout: { seconds: 2 }, grpc_timeout_offset: { seconds: 0 } });
  t.same(errorsOf(legacy), []);
  t.equal(routeOf(legacy)?.grpc_timeout_header_max_ms, 2000, 'the deprecated max_grpc_timeout');
  const none = translate({});
  t.equal(routeOf(none)?.grpc_timeout_header_max_ms, undefined, 'unset: grpc-timeout ignored');

  const R = 'RouteConfiguration "in" virtual_hosts[0].routes[0].route';
  t.same(errorsOf(translate({
    max_grpc_timeout: { seconds: 1 },
    grpc_timeout_offset: { nanos: 50_000_000 },
    max_stream_duration: { max_stream_duration: { seconds: 30 }, grpc_timeout_header_offset: { seconds: 1 }, grpc_timeout_header_max: { seconds: 10 } },
  })), [
    `${R}.grpc_timeout_offset: 50 ms is not supported: Remora does not shorten a grpc-timeout (0 or unset)`,
    `${R}.max_grpc_timeout: not allowed together with max_stream_duration (Envoy would ignore it); use max_stream_duration.grpc_timeout_header_max`,
    `${R}.max_stream_duration.max_stream_duration: 30000 ms is not supported: Remora has no limit on a stream's duration (0 or unset)`,
    `${R}.max_stream_duration.grpc_timeout_header_offset: 1000 ms is not supported: Remora does not shorten a grpc-timeout (0 or unset)`,
  ]);

  // Istio's default retry policy conditions (its retry_host_predicate is not supported).
  const retries = translate({
    retry_policy: { retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', num_retries: { value: 2 }, retriable_status_codes: [503] },
  });
  t.same(errorsOf(retries), []);
  t.same(routeOf(retries)?.retry_policy?.retry_on, ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes']);
  const grpcCodes = translate({ retry_policy: { retry_on: 'deadline-exceeded,internal,resource-exhausted' } });
  t.same(routeOf(grpcCodes)?.retry_policy?.retry_on, ['deadline-exceeded', 'internal', 'resource-exhausted']);
});

// ---------------------------------------------------------------------------
// Fields Istio, Envoy Gateway and go-control-plane send (issue 21): each translated,
// accepted as having no effect, or rejected by path. Shapes written from what those
// control planes generate; names kept to Remora's name rules.

/** A google.protobuf.Struct of strings, as metadata travels. */
const struct = (o: Record<string, string>): Obj => ({ fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, { stringValue: v }])) });
const PREVIOUS_HOSTS = { name: 'envoy.retry_host_predicates.previous_hosts', typed_config: protos.encodeAny(TypeUrl.PreviousHostsPredicate, {}) };
/** Istio's default retry policy, on every HTTP route it writes. */
const ISTIO_RETRY = {
  retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
  num_retries: { value: 2 },
  retry_host_predicate: [PREVIOUS_HOSTS],
  host_selection_retry_max_attempts: '5',
  retriable_status_codes: [503],
};
const RC = 'RouteConfiguration "in"';
const EP = 'ClusterLoadAssignment "api" endpoints[0].lb_endpoints[0]';
const filterConfig = (typeUrl: string, isOptional: boolean): AnyMessage =>
  protos.encodeAny(FILTER_CONFIG, { config: { type_url: typeUrl, value: new Uint8Array(0) }, is_optional: isOptional });
const FILTER_CONFIG = 'type.googleapis.com/envoy.config.route.v3.FilterConfig';
const CORS_POLICY = 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy';

t.test('Istio route table: retry host predicate, decorator, metadata, validate_clusters: false, attempt count', async (t) => {
  const config = valid(MINIMAL);
  const set = overTheWire(config);
  // An outbound route table as Istio pushes it for reviews:9080.
  set.routes.set('in', {
    name: 'in',
    validate_clusters: { value: false },
    virtual_hosts: [{
      name: 'reviews.default.svc.cluster.local:9080',
      domains: ['reviews.default.svc.cluster.local', 'reviews.default.svc.cluster.local:9080', 'reviews', 'reviews:9080', '10.96.0.12', '10.96.0.12:9080'],
      include_request_attempt_count: true,
      routes: [{
        name: 'default',
        match: { prefix: '/' },
        route: {
          cluster: 'api',
          timeout: { seconds: 0 },
          retry_policy: ISTIO_RETRY,
          max_stream_duration: { max_stream_duration: { seconds: 0 }, grpc_timeout_header_max: { seconds: 0 } },
        },
        decorator: { operation: 'reviews.default.svc.cluster.local:9080/*' },
        metadata: { filter_metadata: { istio: struct({ config: '/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews' }) } },
      }],
    }],
  });
  const r = translateXds(baseOf(config), rewire(set));
  t.same(errorsOf(r), []);
  const vh = r.ok ? r.config.listeners[0].virtual_hosts[0] : undefined;
  t.equal(vh?.include_request_attempt_count, true);
  t.same(vh?.domains, ['reviews.default.svc.cluster.local', 'reviews.default.svc.cluster.local:9080', 'reviews', 'reviews:9080', '10.96.0.12', '10.96.0.12:9080']);
  const route = vh?.routes[0].route;
  t.equal(route?.cluster, 'api');
  t.equal(route?.timeout_ms, 0);
  t.equal(route?.grpc_timeout_header_max_ms, 0);
  t.same(route?.retry_policy?.retry_on, ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes']);
  t.equal(route?.retry_policy?.num_retries, 2);
  t.same(route?.retry_policy?.retriable_status_codes, [503]);

  // The same without the predicate, the attempts and the decorator gives the same config:
  // they change nothing Remora does.
  const plain = overTheWire(config);
  const rc = obj(set.routes.get('in'));
  const bare = structuredClone(rc);
  const bareRoute = arr(arr(bare.virtual_hosts)[0].routes)[0];
  delete bareRoute.decorator;
  delete bareRoute.metadata;
  delete obj(obj(bareRoute.route).retry_policy).retry_host_predicate;
  delete obj(obj(bareRoute.route).retry_policy).host_selection_retry_max_attempts;
  delete bare.validate_clusters;
  plain.routes.set('in', bare);
  t.same(effect(translateXds(baseOf(config), rewire(plain))), effect(r), 'previous_hosts, host_selection_retry_max_attempts, decorator, foreign metadata and validate_clusters: no effect');
  obj(bare).validate_clusters = { value: true };
  t.same(effect(translateXds(baseOf(config), rewire(plain))), effect(r), 'validate_clusters: true');

  // A previous_hosts predicate named without typed_config is recognised by its name.
  const policy = obj(obj(arr(arr(rc.virtual_hosts)[0].routes)[0].route).retry_policy);
  policy.retry_host_predicate = [{ name: 'envoy.retry_host_predicates.previous_hosts' }, PREVIOUS_HOSTS];
  t.same(errorsOf(translateXds(baseOf(config), rewire(set))), []);

  // validate_clusters: false does not make a route to an undefined cluster acceptable.
  obj(arr(arr(rc.virtual_hosts)[0].routes)[0].route).cluster = 'ratings';
  t.same(errorsOf(translateXds(baseOf(config), rewire(set))), [
    `${RC} virtual_hosts[0].routes[0].route.cluster: unknown cluster "ratings" (defined: api)`,
  ]);
});

t.test('retry host selection: predicates other than previous_hosts are rejected by path', async (t) => {
  const config = valid(MINIMAL);
  const set = overTheWire(config);
  obj(firstRoute(set).route).retry_policy = {
    retry_on: '5xx',
    retry_host_predicate: [
      PREVIOUS_HOSTS,
      { name: 'envoy.retry_host_predicates.omit_host_metadata', typed_config: { type_url: 'type.googleapis.com/envoy.extensions.retry.host.omit_host_metadata.v3.OmitHostMetadataConfig', value: new Uint8Array(0) } },
      { name: 'envoy.retry_host_predicates.omit_canary_hosts' },
    ],
    host_selection_retry_max_attempts: '-1',
  };
  const P = `${RC} virtual_hosts[0].routes[0].route.retry_policy`;
  t.same(errorsOf(translateXds(baseOf(config), rewire(set))), [
    `${P}.retry_host_predicate[1].typed_config: envoy.extensions.retry.host.omit_host_metadata.v3.OmitHostMetadataConfig is not supported `
      + '(only envoy.retry_host_predicates.previous_hosts: Remora\'s retries avoid the previous attempt\'s endpoint, and choose by nothing else)',
    `${P}.retry_host_predicate[2]: envoy.retry_host_predicates.omit_canary_hosts is not supported (only envoy.retry_host_predicates.previous_hosts)`,
    `${P}.host_selection_retry_max_attempts: -1 must not be negative`,
  ]);
});

t.test('Envoy Gateway route table: ignore_port_in_host_matching, metadata, optional per-filter configs (refused for a CORS filter the listener runs)', async (t) => {
  const config = valid(MINIMAL);
  const set = overTheWire(config);
  const gatewayRoutes = (domains: string[]): Obj => ({
    name: 'in',
    ignore_port_in_host_matching: true,
    metadata: { filter_metadata: { 'envoy-gateway': struct({ kind: 'Gateway', name: 'eg', namespace: 'default' }) } },
    virtual_hosts: [{
      name: 'default-eg-http-www_example_com', // Envoy Gateway writes default/eg/http/www_example_com: Remora's name rules (issue 21 item 2)
      domains,
      metadata: { filter_metadata: { 'envoy-gateway': struct({ kind: 'HTTPRoute', name: 'backend', namespace: 'default' }) } },
      typed_per_filter_config: { 'envoy.filters.http.cors': filterConfig(CORS_POLICY, true) },
      routes: [{
        name: 'httproute/default/backend/rule/0/match/0/www_example_com',
        match: { prefix: '/' },
        route: { cluster: 'api' },
        metadata: { filter_metadata: { 'envoy-gateway': struct({ kind: 'HTTPRoute', name: 'backend', namespace: 'default' }) } },
        typed_per_filter_config: { 'envoy.filters.http.cors': filterConfig(CORS_POLICY, true) },
      }],
    }],
  });
  set.routes.set('in', gatewayRoutes(['www.example.com', '*.example.org']));
  const r = translateXds(baseOf(config), rewire(set));
  t.same(errorsOf(r), []);
  const vh = r.ok ? r.config.listeners[0].virtual_hosts[0] : undefined;
  t.same(vh?.domains, ['www.example.com', '*.example.org'], 'Remora matches these whatever port Host carries, as Envoy does with the flag');
  t.equal(vh?.routes[0].name, 'httproute/default/backend/rule/0/match/0/www_example_com');
  t.equal(vh?.routes[0].route?.cluster, 'api');

  // A domain with a port never matches in Envoy with the flag; Remora would match it.
  set.routes.set('in', gatewayRoutes(['www.example.com', 'www.example.com:8080', '[::1]:80', '[::1]']));
  t.same(errorsOf(translateXds(baseOf(config), rewire(set))), [
    `${RC} virtual_hosts[0].domains[1]: "www.example.com:8080" has a port, which Envoy never matches with ignore_port_in_host_matching (it strips the port from Host); `
      + 'Remora would match it: remove the port or ignore_port_in_host_matching',
    `${RC} virtual_hosts[0].domains[2]: "[::1]:80" has a port, which Envoy never matches with ignore_port_in_host_matching (it strips the port from Host); `
      + 'Remora would match it: remove the port or ignore_port_in_host_matching',
  ]);
  // Without the flag, ports in domains are Remora's as ever.
  const withPorts = gatewayRoutes(['www.example.com', 'www.example.com:8080']);
  delete withPorts.ignore_port_in_host_matching;
  set.routes.set('in', withPorts);
  t.same(errorsOf(translateXds(baseOf(config), rewire(set))), []);

  // The same optional CORS policies with the listener running a CORS filter (accepted as
  // inert on its own): Envoy would apply them, so they are refused where they are.
  set.routes.set('in', gatewayRoutes(['www.example.com']));
  const listener = set.listeners.get('in') as Obj;
  const hcm = hcmOf(listener);
  hcm.http_filters = [{ name: 'envoy.filters.http.cors', typed_config: protos.encodeAny(TypeUrl.Cors, {}) }, ...arr(hcm.http_filters)];
  setHcm(listener, hcm);
  const runsCors = (at: string): string => `${RC} ${at}.typed_per_filter_config["envoy.filters.http.cors"]: Listener "in" runs the cors filter "envoy.filters.http.cors", `
    + 'which Remora accepts only as doing nothing on its own; this per-route config would make it act in Envoy (is_optional or not), and Remora would ignore it';
  t.same(errorsOf(translateXds(baseOf(config), rewire(set))), [runsCors('virtual_hosts[0]'), runsCors('virtual_hosts[0].routes[0]')]);
  setHcm(listener, { ...hcm, http_filters: arr(hcm.http_filters).slice(1) });

  // Per-filter configs above the route: only optional ones for filters Remora does not run.
  const rc = gatewayRoutes(['www.example.com']);
  const vhost = arr(rc.virtual_hosts)[0];
  rc.typed_per_filter_config = { 'envoy.filters.http.cors': filterConfig(CORS_POLICY, true) };
  vhost.typed_per_filter_config = {
    'envoy.filters.http.cors': filterConfig(CORS_POLICY, false),
    'envoy.filters.http.ext_authz': { type_url: 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute', value: new Uint8Array(0) },
    'remora.route_local_ratelimit.0': filterConfig(TypeUrl.LocalRateLimit, true),
  };
  arr(vhost.routes)[0].typed_per_filter_config = { 'envoy.filters.http.cors': filterConfig(CORS_POLICY, false) };
  set.routes.set('in', rc);
  const V = `${RC} virtual_hosts[0]`;
  t.same(errorsOf(translateXds(baseOf(config), rewire(set))), [
    `${V}.typed_per_filter_config["envoy.filters.http.cors"]: per-route config of an unsupported http filter (${CORS_POLICY}); only a FilterConfig with is_optional: true is accepted (and ignored)`,
    `${V}.typed_per_filter_config["envoy.filters.http.ext_authz"]: per-route config of an unsupported http filter `
      + '(type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute); only a FilterConfig with is_optional: true is accepted (and ignored)',
    `${V}.typed_per_filter_config["remora.route_local_ratelimit.0"]: is only supported on routes (Remora reads per-route local rate limits and RBAC there)`,
    `${V}.routes[0].typed_per_filter_config["envoy.filters.http.cors"].config: per-route config of an unsupported http filter (${CORS_POLICY})`,
  ]);
});

t.test('metadata: namespaces other than remora are ignored at every level; remora keeps its rules', async (t) => {
  const config = valid(MINIMAL);
  const set = overTheWire(config);
  const c = set.clusters.get('api') as Obj;
  c.metadata = {
    filter_metadata: {
      istio: { fields: { services: { listValue: { values: [{ structValue: struct({ host: 'reviews.default.svc.cluster.local', name: 'reviews', namespace: 'default' }) }] } } } },
      remora: { fields: { idle_timeout_ms: { numberValue: 30000 } } },
    },
    typed_filter_metadata: { 'envoy.filters.http.lua': { type_url: 'type.googleapis.com/google.protobuf.Struct', value: new Uint8Array(0) } },
  };
  const l = set.listeners.get('in') as Obj;
  l.metadata = { filter_metadata: { 'envoy-gateway': struct({ kind: 'Gateway' }) } };
  const r = translateXds(baseOf(config), rewire(set));
  t.same(errorsOf(r), []);
  t.equal(r.ok ? r.config.clusters[0].idle_timeout_ms : undefined, 30000, 'the remora namespace still applies');

  c.metadata = { typed_filter_metadata: { remora: { type_url: 'type.googleapis.com/google.protobuf.Struct', value: new Uint8Array(0) } } };
  const rc = set.routes.get('in') as Obj;
  rc.metadata = { filter_metadata: { remora: struct({ colour: 'red' }) } };
  t.same(errorsOf(translateXds(baseOf(config), rewire(set))), [
    `${RC} metadata.filter_metadata.remora.colour: unknown Remora extension (there are none here)`,
    'Cluster "api" metadata.typed_filter_metadata["remora"]: Remora reads its fields from filter_metadata.remora (a Struct)',
  ]);
});

/** An endpoint list as Istio pushes it: one locality, overprovisioning 140, each endpoint
 *  with Istio's workload metadata, its mTLS mode and an empty health_check_config. */
function istioAssignment(): Obj {
  const endpoint = (ip: string, workload: string): Obj => ({
    endpoint: { address: { socket_address: { address: ip, port_value: 9080 } }, health_check_config: {} },
    health_status: 'HEALTHY',
    metadata: { filter_metadata: { istio: struct({ workload }), 'envoy.transport_socket_match': struct({ tlsMode: 'istio' }) } },
    load_balancing_weight: { value: 1 },
  });
  return {
    cluster_name: 'api',
    endpoints: [{
      locality: { region: 'us-central1', zone: 'us-central1-a' },
      lb_endpoints: [endpoint('10.244.0.15', 'reviews-v1;default;reviews;v1;Kubernetes'), endpoint('10.244.0.16', 'reviews-v2;default;reviews;v2;Kubernetes')],
      load_balancing_weight: { value: 2 },
    }],
    policy: { overprovisioning_factor: { value: 140 } },
  };
}

t.test('Istio endpoint list: overprovisioning_factor, locality, endpoint metadata and an empty health_check_config', async (t) => {
  const config = valid(MINIMAL);
  const set = overTheWire(config);
  set.endpoints.set('api', istioAssignment());
  const r = translateXds(baseOf(config), rewire(set));
  t.same(errorsOf(r), []);
  const istio = { tlsMode: 'istio' };
  t.same(r.ok ? r.config.clusters[0].endpoints : undefined, [{ address: '10.244.0.15', port: 9080, transport_socket_match: istio }, { address: '10.244.0.16', port: 9080, transport_socket_match: istio }],
    'the metadata a cluster\'s transport_socket_matches read is kept');

  // A health_check_config that names the endpoint's own address and port changes nothing.
  const same = istioAssignment();
  const lb0 = arr(arr(same.endpoints)[0].lb_endpoints)[0];
  obj(lb0.endpoint).health_check_config = { port_value: 9080, address: { socket_address: { address: '10.244.0.15', port_value: 1 } } };
  set.endpoints.set('api', same);
  t.same(errorsOf(translateXds(baseOf(config), rewire(set))), [], 'port_value overrides the address\'s port, as in Envoy');
});

t.test('endpoint list fields that would change traffic are rejected by path', async (t) => {
  const config = valid(MINIMAL);
  const set = overTheWire(config);
  const cla = istioAssignment();
  cla.policy = {
    overprovisioning_factor: { value: 0 },
    drop_overloads: [{ category: 'throttle', drop_percentage: { numerator: 10 } }],
    endpoint_stale_after: { seconds: 30 },
    weighted_priority_health: true,
  };
  const lbs = arr(arr(cla.endpoints)[0].lb_endpoints);
  obj(lbs[0].endpoint).health_check_config = { port_value: 15021, hostname: 'reviews.health', disable_active_health_check: true };
  obj(lbs[1].endpoint).health_check_config = { address: { socket_address: { address: '10.244.0.99', port_value: 9080 } } };
  lbs[1].metadata = { filter_metadata: { remora: struct({ weight: '2' }) } };
  set.endpoints.set('api', cla);
  const E1 = 'ClusterLoadAssignment "api" endpoints[0].lb_endpoints[1]';
  t.same(errorsOf(translateXds(baseOf(config), rewire(set))), [
    'ClusterLoadAssignment "api" policy.drop_overloads: is not supported: Remora does not drop requests by category',
    'ClusterLoadAssignment "api" policy.endpoint_stale_after: is not supported: Remora keeps endpoints until the next assignment',
    'ClusterLoadAssignment "api" policy.weighted_priority_health: field not supported by Remora',
    'ClusterLoadAssignment "api" policy.overprovisioning_factor: must be greater than 0 (Envoy refuses 0)',
    `${EP}.endpoint.health_check_config.disable_active_health_check: is not supported: Remora health-checks every endpoint of a cluster that has a health check`,
    `${EP}.endpoint.health_check_config.port_value: would health-check 10.244.0.15:15021 instead of the endpoint (10.244.0.15:9080); Remora checks the endpoint's own address and port`,
    `${E1}.metadata.filter_metadata.remora.weight: unknown Remora extension (there are none here)`,
    `${E1}.endpoint.health_check_config.address: would health-check 10.244.0.99:9080 instead of the endpoint (10.244.0.16:9080); Remora checks the endpoint's own address and port`,
  ]);
});
