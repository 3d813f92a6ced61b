// Unit tests for the connection settings and health checks real control planes send
// (Envoy Gateway writes each): a listener's socket_options (TCP keepalive), a cluster's
// upstream_connection_options and max_requests_per_connection (HttpProtocolOptions' and
// the deprecated Cluster field), DNS clusters as a cluster_type (DnsCluster), TCP health
// checks and HTTP checks with `receive` (translate-listener-wide.ts, translate-cluster.ts,
// translate-dns.ts, translate-protocol.ts); and each native setting through Remora's own
// encoding and back (encode.ts, encode-common.ts).

import t from 'tap';
import { translateXds, type XdsTranslateResult } from '../../src/xds/translate.js';
import { TypeUrl } from '../../src/xds/protos.js';
import type { Cluster, RemoraConfig } from '../../src/config/types.js';
import { EG_CLUSTER, EG_ROUTE_CONFIG, egAssignment, egCluster, egListener, egRoutes } from '../helpers/envoy-gateway.js';
import { baseOf, errorsOf, overTheWire, protos, valid, wire, type Obj } from '../helpers/xds.js';

/** Envoy Gateway's resources with `edit` applied to its listener and cluster, put on the
 *  wire and translated as the sidecar does. */
function translate(edit: (r: { listener: Obj; cluster: Obj }) => void): XdsTranslateResult {
  const r = { listener: egListener({ port: 0, underscores: 'ALLOW' }), cluster: egCluster() };
  edit(r);
  return translateXds({}, {
    listeners: wire(TypeUrl.Listener, new Map([[String(r.listener.name), r.listener]])),
    routes: wire(TypeUrl.RouteConfiguration, new Map([[EG_ROUTE_CONFIG, egRoutes()]])),
    clusters: wire(TypeUrl.Cluster, new Map([[String(r.cluster.name), r.cluster]])),
    endpoints: wire(TypeUrl.ClusterLoadAssignment, new Map([[EG_CLUSTER, egAssignment(9000)]])),
  }, { ads: true });
}

const noEffect = (r: XdsTranslateResult): Record<string, number> => (r.ok ? Object.fromEntries(r.noEffect) : {});
const clusterOf = (r: XdsTranslateResult, name = EG_CLUSTER): Cluster | undefined => (r.ok ? r.config.clusters.find((c) => c.name === name) : undefined);
const option = (level: number, name: number, value: number): Obj => ({ level: String(level), name: String(name), int_value: String(value) });

t.test('listener socket_options: SO_KEEPALIVE and TCP_KEEPIDLE become tcp_keepalive; the rest of keepalive is counted', async (t) => {
  // Envoy Gateway's: keepalive on, probes 7 (TCP_KEEPCNT), idle 60 s.
  const r = translate((x) => {
    x.listener.socket_options = [option(1, 9, 1), option(6, 6, 7), option(6, 4, 60)];
  });
  t.same(errorsOf(r), []);
  t.same(r.ok ? r.config.listeners[0].tcp_keepalive : undefined, { time_s: 60 }, 'keepalive on, first probe after 60 s');
  t.equal(noEffect(r)['Listener.socket_options TCP_KEEPCNT'], 1, 'the probe count is counted without effect');

  const off = translate((x) => {
    x.listener.socket_options = [option(1, 9, 0), option(6, 4, 60)];
  });
  t.equal(off.ok ? off.config.listeners[0].tcp_keepalive : 'no config', undefined, 'SO_KEEPALIVE 0: no keepalive');

  const other = translate((x) => {
    x.listener.socket_options = [option(0, 19, 1)]; // IP_FREEBIND
  });
  t.match(errorsOf(other).join('\n'), /socket_options\[0\]: level 0 name 19 is not supported/, 'an option Remora cannot set is rejected by path');
  const bytes = translate((x) => {
    x.listener.socket_options = [{ level: '1', name: '9', buf_value: Buffer.from([1, 0, 0, 0]) }];
  });
  t.match(errorsOf(bytes).join('\n'), /socket_options\[0\]\.buf_value: is not supported/);
});

t.test('upstream_connection_options.tcp_keepalive and max_requests_per_connection on a cluster', async (t) => {
  const r = translate((x) => {
    x.cluster.upstream_connection_options = { tcp_keepalive: { keepalive_probes: { value: 3 }, keepalive_time: { value: 1200 }, keepalive_interval: { value: 60 } } };
    x.cluster.typed_extension_protocol_options = {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': protos.encodeAny(TypeUrl.HttpProtocolOptions, {
        common_http_protocol_options: { max_requests_per_connection: { value: 100 } },
        explicit_http_config: { http_protocol_options: {} },
      }),
    };
  });
  t.same(errorsOf(r), []);
  const c = clusterOf(r);
  t.same(c?.tcp_keepalive, { time_s: 1200 }, 'keepalive_time is the idle time');
  t.equal(c?.max_requests_per_connection, 100);
  t.same([noEffect(r)['TcpKeepalive.keepalive_probes'], noEffect(r)['TcpKeepalive.keepalive_interval']], [1, 1], 'probes and interval counted without effect');

  const deprecated = translate((x) => {
    x.cluster.max_requests_per_connection = { value: 5 };
  });
  t.equal(clusterOf(deprecated)?.max_requests_per_connection, 5, 'the deprecated Cluster field still applies');
  const happy = translate((x) => {
    x.cluster.upstream_connection_options = { set_local_interface_name_on_upstream_connections: true };
  });
  t.match(errorsOf(happy).join('\n'), /upstream_connection_options\.set_local_interface_name_on_upstream_connections: field not supported/);
});

t.test('a DnsCluster cluster_type is a STRICT_DNS or LOGICAL_DNS cluster', async (t) => {
  const dnsCluster = (settings: Obj): Obj => ({
    name: 'modules', connect_timeout: { seconds: 10 }, dns_lookup_family: 'V4_PREFERRED',
    cluster_type: { name: 'envoy.cluster.dns', typed_config: protos.encodeAny(TypeUrl.DnsCluster, settings) },
    load_assignment: { cluster_name: 'modules', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'localhost', port_value: 443 } } } }] }] },
  });
  // Envoy Gateway's: logical (the unset zero value), V4_PREFERRED, 30 s refresh, TTL respected.
  const r = translate((x) => {
    x.cluster = dnsCluster({ dns_lookup_family: 'V4_PREFERRED', dns_refresh_rate: { seconds: 30 }, respect_dns_ttl: true });
  });
  t.same(errorsOf(r), []);
  t.same(clusterOf(r, 'modules')?.dns, { type: 'logical', refresh_rate_ms: 30_000, respect_ttl: true, lookup_family: 'v4_preferred', ...pick(clusterOf(r, 'modules')?.dns) },
    'the DnsCluster\'s settings, logical by default');
  t.equal(noEffect(r)['Cluster.dns_lookup_family (with cluster_type envoy.cluster.dns)'], 1, 'the Cluster\'s own DNS field is ignored, as by Envoy');
  const strict = translate((x) => {
    x.cluster = dnsCluster({ dns_discovery_type: 'STRICT' });
  });
  t.equal(clusterOf(strict, 'modules')?.dns?.type, 'strict');
  const other = translate((x) => {
    x.cluster = { ...dnsCluster({}), cluster_type: { name: 'envoy.clusters.aggregate', typed_config: { type_url: 'type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig', value: Buffer.alloc(0) } } };
  });
  t.match(errorsOf(other).join('\n'), /cluster_type: .* is not supported: the only cluster_type Remora runs is envoy\.cluster\.dns/);
});

/** The defaults filled in by validation, for comparing the fields the test sets. */
function pick(dns: Cluster['dns']): Obj {
  const { type: _t, refresh_rate_ms: _r, respect_ttl: _s, lookup_family: _l, ...rest } = (dns ?? {}) as Obj;
  return rest;
}

t.test('tcp_health_check and http_health_check.receive', async (t) => {
  const check = (hc: Obj): Obj => ({ timeout: { seconds: 1 }, interval: { seconds: 3 }, unhealthy_threshold: { value: 3 }, healthy_threshold: { value: 1 }, ...hc });
  // Envoy Gateway's two forms of a payload: hex text and bytes.
  const tcp = translate((x) => {
    x.cluster.health_checks = [check({ tcp_health_check: { send: { text: '70696E67' }, receive: [{ binary: Buffer.from('pong') }] } })];
  });
  t.same(errorsOf(tcp), []);
  t.same(clusterOf(tcp)?.health_check?.tcp, { send: '70696e67', receive: ['706f6e67'] }, 'hex text and bytes, both as hex');
  const connectOnly = translate((x) => {
    x.cluster.health_checks = [check({ tcp_health_check: {} })];
  });
  t.same(clusterOf(connectOnly)?.health_check?.tcp, { receive: [] }, 'no payloads: connect only');

  const http = translate((x) => {
    x.cluster.health_checks = [check({ http_health_check: { path: '/healthz', receive: [{ text: '6f6b' }], response_buffer_size: { value: '128' } } })];
  });
  t.same(errorsOf(http), []);
  t.same([clusterOf(http)?.health_check?.receive, clusterOf(http)?.health_check?.response_buffer_size], [['6f6b'], 128]);
  const badHex = translate((x) => {
    x.cluster.health_checks = [check({ tcp_health_check: { receive: [{ text: 'xyz' }] } })];
  });
  t.match(errorsOf(badHex).join('\n'), /tcp_health_check\.receive\[0\]\.text: must be hex digits/);
  const both = translate((x) => {
    x.cluster.health_checks = [check({ http_health_check: { path: '/' }, tcp_health_check: {} })];
  });
  t.match(errorsOf(both).join('\n'), /tcp_health_check: not allowed together with http_health_check/);
});

t.test('native settings through Remora\'s own encoding and back', async (t) => {
  const config: RemoraConfig = valid({
    listeners: [{ name: 'in', port: 8080, tcp_keepalive: { time_s: 30 }, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'svc' } }] }] }],
    clusters: [
      { name: 'svc', endpoints: [{ address: '127.0.0.1', port: 9000 }], tcp_keepalive: { time_s: 45 }, max_requests_per_connection: 10,
        health_check: { tcp: { send: '70696e67', receive: ['706f6e67'] } } },
      { name: 'web', endpoints: [{ address: '127.0.0.1', port: 9001 }], tcp_keepalive: {}, health_check: { path: '/healthz', receive: ['6f6b'], response_buffer_size: 256 } },
    ],
  });
  const back = translateXds(baseOf(config), overTheWire(config, false));
  t.same(errorsOf(back), []);
  if (!back.ok) return;
  t.same(back.config.listeners[0].tcp_keepalive, { time_s: 30 });
  const svc = back.config.clusters.find((c) => c.name === 'svc');
  const web = back.config.clusters.find((c) => c.name === 'web');
  t.same([svc?.tcp_keepalive, svc?.max_requests_per_connection, svc?.health_check?.tcp], [{ time_s: 45 }, 10, { send: '70696e67', receive: ['706f6e67'] }]);
  t.same([web?.tcp_keepalive, web?.health_check?.receive, web?.health_check?.response_buffer_size], [{}, ['6f6b'], 256]);
});

t.test('an endpoint\'s health_check_config.hostname is its health_check_host, both ways', async (t) => {
  const assignment = egAssignment(9000);
  const lbe = ((assignment.endpoints as Obj[])[0].lb_endpoints as Obj[])[0];
  (lbe.endpoint as Obj).health_check_config = { hostname: 'backend-0.health.internal' };
  const r = translateXds({}, {
    listeners: wire(TypeUrl.Listener, new Map([['l', { ...egListener({ port: 0, underscores: 'ALLOW' }), name: 'l' }]])),
    routes: wire(TypeUrl.RouteConfiguration, new Map([[EG_ROUTE_CONFIG, egRoutes()]])),
    clusters: wire(TypeUrl.Cluster, new Map([[EG_CLUSTER, egCluster()]])),
    endpoints: wire(TypeUrl.ClusterLoadAssignment, new Map([[EG_CLUSTER, assignment]])),
  }, { ads: true });
  t.same(errorsOf(r), []);
  t.equal(clusterOf(r)?.endpoints[0].health_check_host, 'backend-0.health.internal');
  const config: RemoraConfig = valid({
    listeners: [{ name: 'in', port: 8080, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'svc' } }] }] }],
    clusters: [{ name: 'svc', endpoints: [{ address: '127.0.0.1', port: 9000, health_check_host: 'h.internal' }], health_check: { path: '/healthz' } }],
  });
  const back = translateXds(baseOf(config), overTheWire(config, false));
  t.equal(back.ok ? back.config.clusters[0].endpoints[0].health_check_host : undefined, 'h.internal', 'through Remora\'s encoding and back');
});

t.test('a TCP filter chain\'s tls, through Remora\'s own encoding and back', async (t) => {
  const config: RemoraConfig = valid({
    listeners: [{ name: 'tcp', port: 9443, filter_chains: [
      { name: 'term', match: { server_names: ['a.example'] }, tcp_proxy: { cluster: 'svc' }, tls: { cert_file: '/c.pem', key_file: '/k.pem', ca_file: '/ca.pem', session_resumption: 'cache' } },
      { name: 'pass', match: { server_names: ['b.example'] }, tcp_proxy: { cluster: 'svc' } },
    ] }],
    clusters: [{ name: 'svc', endpoints: [{ address: '127.0.0.1', port: 9000 }] }],
  });
  const back = translateXds(baseOf(config), overTheWire(config, false));
  t.same(errorsOf(back), []);
  t.same(back.ok ? back.config.listeners[0].filter_chains.map((fc) => fc.tls) : null, config.listeners[0].filter_chains.map((fc) => fc.tls), 'the terminating chain keeps its tls, the other has none');
});

t.test('a listener\'s several certificates: the first is cert_file, the others additional_certificates, both ways', async (t) => {
  const certs = (n: number): Obj[] => Array.from({ length: n }, (_, i) => ({ certificate_chain: { filename: `/c${i}.pem` }, private_key: { filename: `/k${i}.pem` } }));
  const withCerts = (list: Obj[]) => translate((x) => {
    x.listener = {
      ...x.listener,
      default_filter_chain: {
        ...(x.listener.default_filter_chain as Obj),
        transport_socket: { name: 'envoy.transport_sockets.tls', typed_config: protos.encodeAny(TypeUrl.DownstreamTlsContext, { common_tls_context: { tls_certificates: list } }) },
      },
    };
  });
  const r = withCerts(certs(3));
  t.same(errorsOf(r), []);
  const tls = r.ok ? r.config.listeners[0].tls : undefined;
  t.same([tls?.cert_file, tls?.key_file, tls?.additional_certificates], ['/c0.pem', '/k0.pem', [{ cert_file: '/c1.pem', key_file: '/k1.pem' }, { cert_file: '/c2.pem', key_file: '/k2.pem' }]]);

  const upstream = translate((x) => {
    x.cluster.transport_socket = { name: 'envoy.transport_sockets.tls', typed_config: protos.encodeAny(TypeUrl.UpstreamTlsContext, { common_tls_context: { tls_certificates: certs(2), validation_context: { trusted_ca: { filename: '/ca.pem' } } } }) };
  });
  t.match(errorsOf(upstream).join('\n'), /tls_certificates\[1\]: a client presents one certificate/, 'a cluster presents one');

  const config: RemoraConfig = valid({
    listeners: [{ name: 'in', port: 8443, tls: { cert_file: '/c0.pem', key_file: '/k0.pem', additional_certificates: [{ cert_file: '/c1.pem', key_file: '/k1.pem' }] },
      virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'svc' } }] }] }],
    clusters: [{ name: 'svc', endpoints: [{ address: '127.0.0.1', port: 9000 }] }],
  });
  const back = translateXds(baseOf(config), overTheWire(config, false));
  t.same(back.ok ? back.config.listeners[0].tls?.additional_certificates : null, [{ cert_file: '/c1.pem', key_file: '/k1.pem' }], 'through Remora\'s own encoding and back');
});
