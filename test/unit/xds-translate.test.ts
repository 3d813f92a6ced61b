// Unit tests for the xDS translation (src/config/xds-translate.ts) and its inverse
// (src/control/xds-resources.ts): Remora configs survive toXdsResources → encodeAny →
// decodeAny → translateXds unchanged; unsupported fields are rejected with the resource
// name and the field path; validateConfig's errors point at the xDS field; missing
// RDS/EDS resources are "not ready", not errors; Envoy's defaults and Durations.

import t from 'tap';
import { validateConfig } from '../../src/config/validate.js';
import type { RemoraConfig } from '../../src/config/types.js';
import {
  edsClusters, formatRejection, missingResources, referencedRoutes, translateXds, type XdsResourceSet, type XdsTranslateResult,
} from '../../src/config/xds-translate.js';
import { grpcApiListener, toXdsResources } from '../../src/control/xds-resources.js';
import { loadXdsProtos, TypeUrl, type AnyMessage, type ProtoObject } from '../../src/control/xds-protos.js';

type Obj = ProtoObject;
interface MutableSet {
  listeners: Map<string, Obj>;
  routes: Map<string, Obj>;
  clusters: Map<string, Obj>;
  endpoints: Map<string, Obj>;
}

const protos = loadXdsProtos();

function valid(raw: unknown): RemoraConfig {
  const r = validateConfig(raw, { defaultWorkers: 2 });
  if (!r.ok) throw new Error(`test config invalid: ${JSON.stringify(r.errors)}`);
  return r.config;
}

/** The bootstrap part of a config (what a sidecar's file holds besides `xds`). */
function baseOf(c: RemoraConfig): Record<string, unknown> {
  return { workers: c.workers, admin: c.admin, ...(c.probes ? { probes: c.probes } : {}), drain: c.drain, worker_limits: c.worker_limits, stats: c.stats };
}

/** Resources as a sidecar receives them: encoded as Anys and decoded again. */
function overTheWire(config: RemoraConfig, edsForAllClusters = true): MutableSet {
  const r = toXdsResources(config, { edsForAllClusters });
  const wire = (typeUrl: string, m: Map<string, Obj>): Map<string, Obj> =>
    new Map([...m].map(([k, v]) => [k, protos.decodeAny(protos.encodeAny(typeUrl, v)).message]));
  return {
    listeners: wire(TypeUrl.Listener, r.listeners),
    routes: wire(TypeUrl.RouteConfiguration, r.routes),
    clusters: wire(TypeUrl.Cluster, r.clusters),
    endpoints: wire(TypeUrl.ClusterLoadAssignment, r.endpoints),
  };
}

/** Re-encodes and decodes a hand-edited set, as the wire would deliver it. */
function rewire(set: MutableSet): XdsResourceSet {
  const wire = (typeUrl: string, m: Map<string, Obj>): Map<string, Obj> =>
    new Map([...m].map(([k, v]) => [k, protos.decodeAny(protos.encodeAny(typeUrl, v)).message]));
  return {
    listeners: wire(TypeUrl.Listener, set.listeners),
    routes: wire(TypeUrl.RouteConfiguration, set.routes),
    clusters: wire(TypeUrl.Cluster, set.clusters),
    endpoints: wire(TypeUrl.ClusterLoadAssignment, set.endpoints),
  };
}

const obj = (v: unknown): Obj => v as Obj;
const arr = (v: unknown): Obj[] => v as Obj[];

/** The HttpConnectionManager of a listener, decoded; `setHcm` puts an edited one back. */
function hcmOf(listener: Obj): Obj {
  const tc = obj(arr(arr(listener.filter_chains)[0].filters)[0].typed_config) as unknown as AnyMessage;
  return protos.decodeAny(tc).message;
}
function setHcm(listener: Obj, hcm: Obj): void {
  arr(arr(listener.filter_chains)[0].filters)[0].typed_config = protos.encodeAny(TypeUrl.HttpConnectionManager, hcm);
}

function errorsOf(result: XdsTranslateResult): string[] {
  return result.ok ? [] : result.errors.map(formatRejection);
}

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
            route: { weighted_clusters: [{ cluster: 'orders', weight: 9 }, { cluster: 'orders-canary', weight: 1 }] },
          },
          { name: 'health', match: { path: '/healthz' }, direct_response: { status: 200, body: 'ok\n' } },
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

const MINIMAL = {
  listeners: [{ name: 'in', port: 0, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'api' } }] }] }],
  clusters: [{ name: 'api', endpoints: [{ address: '127.0.0.1', port: 9000 }] }],
};

// ---------------------------------------------------------------------------
// Round trips

t.test('round trip: Remora → xDS → Remora gives the same config', async (t) => {
  for (const [name, raw] of [['docs example', DOCS_EXAMPLE], ['resilience', RESILIENCE], ['minimal', MINIMAL]] as const) {
    for (const eds of [true, false]) {
      const config = valid(raw);
      const set = overTheWire(config, eds);
      t.same(missingResources(set), { routes: [], endpoints: [] }, `${name} (eds ${eds}): nothing missing`);
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
  c.transport_socket = { name: 'envoy.transport_sockets.tls' };
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'Cluster "api" lb_subset_config: field not supported by Remora',
    'Cluster "api" transport_socket: field not supported by Remora',
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
  t.same(errorsOf(translateXds({}, rewire(set))), ['Listener "in" filter_chains[1]: Remora needs exactly one filter chain (got 2)']);
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
  c.type = 'STRICT_DNS';
  t.same(errorsOf(translateXds({}, rewire(set))), ['Cluster "api" type: STRICT_DNS is not supported (STATIC or EDS)']);
});

t.test('rejects route-level fields outside the subset, precisely', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const rc = set.routes.get('in') as Obj;
  const route = arr(arr(rc.virtual_hosts)[0].routes)[0];
  obj(route.route).retry_policy = { retry_on: '5xx,refused-stream', retry_host_predicate: [{ name: 'x' }] };
  obj(route.match).query_parameters = [{ name: 'q' }];
  route.request_headers_to_add = [
    { header: { key: 'x-client', value: '%DOWNSTREAM_REMOTE_ADDRESS%' } },
    { header: { key: 'x-a', value: 'b' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
  ];
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'RouteConfiguration "in" virtual_hosts[0].routes[0].match.query_parameters: field not supported by Remora',
    'RouteConfiguration "in" virtual_hosts[0].routes[0].route.retry_policy.retry_host_predicate: field not supported by Remora',
    'RouteConfiguration "in" virtual_hosts[0].routes[0].route.retry_policy.retry_on: "refused-stream" is not supported (Remora retries on 5xx, gateway-error, reset, connect-failure, retriable-4xx, retriable-status-codes)',
    'RouteConfiguration "in" virtual_hosts[0].routes[0].request_headers_to_add[0].header.value: uses Envoy\'s %COMMAND% substitution; Remora adds values literally (write %% for a literal %)',
    'RouteConfiguration "in" virtual_hosts[0].routes[0].request_headers_to_add[1].append_action: OVERWRITE_IF_EXISTS_OR_ADD is not supported: Remora appends (APPEND_IF_EXISTS_OR_ADD)',
  ]);
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

t.test('rejects partial rate-limit enablement and foreign metadata', async (t) => {
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
    'Listener "in" metadata.filter_metadata["istio"]: metadata namespace not used by Remora (only "remora")',
    'Listener "in" metadata.filter_metadata.remora.colour: unknown Remora extension (allowed here: access_log, generate_traceparent, rate_limit_keys)',
  ]);
});

t.test("validateConfig's errors point at the xDS resource and field", async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const rc = set.routes.get('in') as Obj;
  const route = arr(arr(rc.virtual_hosts)[0].routes)[0];
  obj(route.route).cluster = 'nope';
  obj(route.match).prefix = 'api/'; // no leading slash
  const cla = set.endpoints.get('api') as Obj;
  obj(obj(obj(arr(arr(cla.endpoints)[0].lb_endpoints)[0].endpoint).address).socket_address).port_value = 0;
  const c = set.clusters.get('api') as Obj;
  c.outlier_detection = { base_ejection_time: { seconds: 60 }, max_ejection_time: { seconds: 10 } };
  t.same(errorsOf(translateXds({ workers: 0 }, rewire(set))), [
    '"bootstrap" workers: must be an integer 1..256',
    'RouteConfiguration "in" virtual_hosts[0].routes[0].match.prefix: must start with "/"',
    'RouteConfiguration "in" virtual_hosts[0].routes[0].route.cluster: unknown cluster "nope" (defined: api)',
    'ClusterLoadAssignment "api" endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value: must be an integer 1..65535',
    'Cluster "api" outlier_detection.max_ejection_time: must be at least base_ejection_time_ms (60000)',
  ]);
});

t.test('cluster and route names must satisfy Remora\'s name rules', async (t) => {
  const set = overTheWire(valid(MINIMAL));
  const c = set.clusters.get('api') as Obj;
  set.clusters = new Map([['api/v1', { ...c, name: 'api/v1', eds_cluster_config: { eds_config: { ads: {} }, service_name: 'api' } }]]);
  const route = arr(arr((set.routes.get('in') as Obj).virtual_hosts)[0].routes)[0];
  obj(route.route).cluster = 'api/v1';
  route.name = 'bad name';
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'RouteConfiguration "in" virtual_hosts[0].routes[0].name: must contain only letters, digits, "_", ".", ":", "/" and "-"',
    'Cluster "api/v1" name: must contain only letters, digits, "_", ".", ":" and "-"',
  ]);
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
  t.same(errorsOf(translateXds({}, rewire(set))), [
    'ClusterLoadAssignment "api" endpoints: all 5 endpoints are UNHEALTHY, DRAINING or TIMEOUT; Remora needs at least one endpoint per cluster',
  ]);
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
  t.same(missingResources(full), { routes: [], endpoints: [] });

  const noRoutes = { ...full, routes: new Map() };
  t.same(missingResources(noRoutes), { routes: ['in', 'other'], endpoints: [] });
  const noEndpoints = { ...full, endpoints: new Map([['api', full.endpoints.get('api') as Obj]]) };
  t.same(missingResources(noEndpoints), { routes: [], endpoints: ['b'] });

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
  t.same(missingResources(rewire(set)), { routes: [], endpoints: [] });
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
