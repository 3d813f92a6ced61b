// Unit tests for DNS clusters over xDS (src/xds/translate-dns.ts, encode-dns.ts): Remora's
// DNS clusters survive toXdsResources → the wire → translateXds; an Envoy STRICT_DNS or
// LOGICAL_DNS Cluster (c-ares resolvers, the deprecated dns_resolvers and
// dns_resolution_config) is translated; what Remora cannot do is rejected by path.

import t from 'tap';
import { translateXds } from '../../src/xds/translate.js';
import { TypeUrl } from '../../src/xds/protos.js';
import { missingResources } from '../../src/xds/resources.js';
import { baseOf, errorsOf, overTheWire, protos, rewire, valid, type Obj } from '../helpers/xds.js';

const listeners = [{ name: 'in', port: 0, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'api' } }] }] }];

const DNS = {
  listeners,
  clusters: [
    {
      name: 'api',
      endpoints: [{ address: 'api-a.internal', port: 8080 }, { address: 'api-b.internal', port: 8081 }, { address: '10.0.0.7', port: 8082 }],
      dns: {
        type: 'strict', refresh_rate_ms: 2500, respect_ttl: true, min_refresh_rate_ms: 1000, failure_refresh_rate: { base_ms: 500, max_ms: 8000 },
        lookup_family: 'v4_preferred', resolvers: ['10.0.0.10:53', '[fd00::a]:5353'], query_timeout_ms: 800, query_tries: 2,
      },
    },
    { name: 'legacy', endpoints: [{ address: 'legacy.internal', port: 80 }], dns: { type: 'logical' } },
  ],
};

t.test('round trip: DNS clusters → xDS → the same config (EDS for the others or not)', async (t) => {
  for (const eds of [true, false]) {
    const config = valid(DNS);
    const set = overTheWire(config, eds);
    t.equal(set.clusters.get('api')?.type, 'STRICT_DNS');
    t.equal(set.clusters.get('legacy')?.type, 'LOGICAL_DNS');
    t.equal(set.endpoints.size, 0, 'DNS clusters list their host names inline, never over EDS');
    t.same(missingResources(set), { routes: [], endpoints: [], secrets: [] });
    const back = translateXds(baseOf(config), set);
    t.same(errorsOf(back), [], `eds ${eds}: no rejections`);
    if (back.ok) t.strictSame(back.config, config, `eds ${eds}: same config`);
  }
});

/** An Envoy STRICT_DNS cluster as a control plane writes it, with `extra` fields. */
function envoyCluster(extra: Obj, type = 'STRICT_DNS', hosts = ['svc.ns.svc.cluster.local']): Obj {
  return {
    name: 'api',
    type,
    connect_timeout: { seconds: 1 },
    load_assignment: {
      cluster_name: 'api',
      endpoints: [{ lb_endpoints: hosts.map((h) => ({ endpoint: { address: { socket_address: { address: h, port_value: 8080 } } } })) }],
    },
    ...extra,
  };
}

function translateCluster(c: Obj) {
  const set = overTheWire(valid({ listeners, clusters: [{ name: 'api', endpoints: [] }] }), false);
  set.clusters.set('api', c);
  return translateXds({}, rewire(set));
}

const cares = (resolvers: Obj[], more: Obj = {}): Obj => ({
  name: 'envoy.network.dns_resolver.cares',
  typed_config: protos.encodeAny(TypeUrl.CaresDnsResolver, { resolvers, ...more }),
});
const addr = (address: string, port?: number): Obj => ({ socket_address: { address, ...(port !== undefined ? { port_value: port } : {}) } });

t.test("an Envoy STRICT_DNS cluster: Envoy's defaults, c-ares resolvers", async (t) => {
  let r = translateCluster(envoyCluster({}));
  t.same(errorsOf(r), []);
  if (r.ok) {
    t.same(r.config.clusters[0].endpoints, [{ address: 'svc.ns.svc.cluster.local', port: 8080 }]);
    t.match(r.config.clusters[0].dns, { type: 'strict', refresh_rate_ms: 5000, respect_ttl: false, lookup_family: 'auto', resolvers: [], failure_refresh_rate: undefined });
  }
  r = translateCluster(envoyCluster({
    dns_refresh_rate: { seconds: 10 }, respect_dns_ttl: true, dns_lookup_family: 'V4_ONLY',
    dns_failure_refresh_rate: { base_interval: { nanos: 200_000_000 } },
    typed_dns_resolver_config: cares([addr('10.96.0.10', 53), addr('fd00::10')]),
    dns_resolvers: [addr('192.0.2.1', 53)], // ignored: typed_dns_resolver_config wins (Envoy)
  }));
  t.same(errorsOf(r), []);
  if (r.ok) {
    t.match(r.config.clusters[0].dns, {
      type: 'strict', refresh_rate_ms: 10_000, respect_ttl: true, lookup_family: 'v4_only',
      failure_refresh_rate: { base_ms: 200, max_ms: 2000 }, resolvers: ['10.96.0.10:53', '[fd00::10]:53'],
    });
  }
  r = translateCluster(envoyCluster({ dns_resolvers: [addr('192.0.2.1', 5353)] }));
  t.same(r.ok ? r.config.clusters[0].dns?.resolvers : null, ['192.0.2.1:5353'], 'deprecated dns_resolvers');
  r = translateCluster(envoyCluster({ dns_resolution_config: { resolvers: [addr('192.0.2.2', 53)], dns_resolver_options: { no_default_search_domain: true } } }));
  t.same(r.ok ? r.config.clusters[0].dns?.resolvers : null, ['192.0.2.2:53'], 'deprecated dns_resolution_config');
  r = translateCluster(envoyCluster({}, 'LOGICAL_DNS'));
  t.same(r.ok ? r.config.clusters[0].dns?.type : null, 'logical');
});

t.test('DNS settings Remora cannot honour are rejected by path', async (t) => {
  t.same(errorsOf(translateCluster(envoyCluster({ use_tcp_for_dns_lookups: true }))), [
    'Cluster "api" use_tcp_for_dns_lookups: is not supported: Remora\'s resolver (node:dns) asks over UDP, and over TCP only for a truncated answer',
  ]);
  t.same(errorsOf(translateCluster(envoyCluster({ typed_dns_resolver_config: cares([addr('dns.example', 53)], { use_resolvers_as_fallback: true }) }))), [
    'Cluster "api" typed_dns_resolver_config.typed_config.use_resolvers_as_fallback: is not supported: Remora asks the resolvers listed, or the system\'s when none are',
    'Cluster "api" typed_dns_resolver_config.typed_config.resolvers[0].socket_address.address: must be an IP address (a DNS server), got "dns.example"',
  ]);
  t.same(errorsOf(translateCluster(envoyCluster({ dns_lookup_family: 'V4_ONLY', dns_failure_refresh_rate: { base_interval: { seconds: 2 }, max_interval: { seconds: 1 } } }))), [
    'Cluster "api" dns_failure_refresh_rate.max_interval: must be at least base_ms (2000)',
  ], "validateConfig's error points at the xDS field");
  t.same(errorsOf(translateCluster(envoyCluster({}, 'LOGICAL_DNS', ['a.internal', 'b.internal']))), [
    'Cluster "api" load_assignment: LOGICAL_DNS needs exactly one endpoint (got 2)',
  ]);
  t.same(errorsOf(translateCluster({ ...envoyCluster({}), type: 'STATIC', metadata: { filter_metadata: { remora: { fields: { dns_query_tries: { number_value: 2 } } } } } })), [
    'Cluster "api" metadata.filter_metadata.remora.dns_query_tries: only for STRICT_DNS and LOGICAL_DNS clusters',
  ]);
});
