// Per-endpoint transports (Envoy's transport_socket_matches, Istio's automatic mTLS) in
// the translation (src/xds/translate-transport-match.ts, translate-endpoints.ts), the
// choice per endpoint (src/upstream/transport-match.ts) and the config checks: Istio's
// two entries become the cluster's one `tls` plus an entry list, endpoint metadata under
// `envoy.transport_socket_match` (the endpoint's own, else its locality's) is kept per
// endpoint, a cluster whose only transport is an entry's gets a plaintext default,
// entries with different TLS settings and non-string values are rejected by path, and a
// config encoded to xDS comes back the same (Istio's ALPN list on its TLS settings too);
// Istio's upstream metadata exchange filter on its clusters is accepted without effect
// (Remora never offers istio-peer-exchange, the only ALPN it acts on), any other refused.

import t from 'tap';
import { toXdsResources } from '../../src/xds/encode.js';
import { TypeUrl } from '../../src/xds/protos.js';
import { translateXds } from '../../src/xds/translate.js';
import { missingResources, referencedSecrets } from '../../src/xds/resources.js';
import { endpointUsesTls } from '../../src/upstream/transport-match.js';
import { validateConfig } from '../../src/config/validate.js';
import type { Cluster } from '../../src/config/types.js';
import { CLUSTER_METADATA_EXCHANGE } from '../helpers/istio.js';
import { arr, baseOf, errorsOf, obj, protos, rewire, valid, type Obj } from '../helpers/xds.js';

const CONFIG = valid({
  listeners: [{
    name: 'out', address: '127.0.0.1', port: 0,
    virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|9080||reviews.default.svc.cluster.local' } }] }],
  }],
  clusters: [{
    name: 'outbound|9080||reviews.default.svc.cluster.local',
    endpoints: [{ address: '10.244.0.15', port: 9080 }, { address: '10.244.0.16', port: 9080 }, { address: '10.244.0.17', port: 9080 }],
    tls: { ca_file: '/etc/mesh/root.pem', cert_file: '/etc/mesh/cert.pem', key_file: '/etc/mesh/key.pem', verify_subject_alt_names: ['spiffe://cluster.local/ns/default/sa/reviews'] },
  }],
});
const NAME = 'outbound|9080||reviews.default.svc.cluster.local';
const struct = (o: Record<string, unknown>): Obj => ({
  fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'string' ? { stringValue: v } : typeof v === 'number' ? { numberValue: v } : { boolValue: v }])),
});
const RAW_BUFFER = { name: 'envoy.transport_sockets.raw_buffer', typed_config: protos.encodeAny(TypeUrl.RawBuffer, {}) };

/** The cluster as Istio writes it with automatic mTLS: no transport_socket, two entries;
 *  the endpoint list: the first two with sidecars (tlsMode istio), the third without. */
function istioSet(edit: (cluster: Obj, lbEndpoints: Obj[]) => void = () => {}) {
  const r = toXdsResources(CONFIG, { edsForAllClusters: true });
  const cluster = structuredClone(r.clusters.get(NAME)!) as Obj;
  const tls = cluster.transport_socket;
  delete cluster.transport_socket;
  cluster.transport_socket_matches = [
    { name: 'tlsMode-istio', match: struct({ tlsMode: 'istio' }), transport_socket: tls },
    { name: 'tlsMode-disabled', match: {}, transport_socket: RAW_BUFFER },
  ];
  const cla = structuredClone(r.endpoints.get(NAME)!) as Obj;
  const lbs = arr(obj(arr(cla.endpoints)[0]).lb_endpoints);
  for (const e of lbs.slice(0, 2)) {
    e.metadata = { filter_metadata: { istio: struct({ workload: 'reviews-v1;default;reviews;v1;Kubernetes' }), 'envoy.transport_socket_match': struct({ tlsMode: 'istio' }) } };
  }
  edit(cluster, lbs);
  return rewire({ listeners: r.listeners, routes: r.routes, clusters: new Map([[NAME, cluster]]), endpoints: new Map([[NAME, cla]]) });
}

t.test('Istio\'s automatic mTLS: one TLS setting, an entry list, per-endpoint metadata', async (t) => {
  const r = translateXds(baseOf(CONFIG), istioSet());
  if (!r.ok) return t.fail(errorsOf(r).join('\n'));
  const c = r.config.clusters[0];
  t.same(c.tls, CONFIG.clusters[0].tls, 'the cluster\'s tls: the tlsMode-istio entry\'s settings');
  t.same(c.transport_socket_matches, [
    { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, tls: true },
    { name: 'tlsMode-disabled', match: {}, tls: false },
  ]);
  t.same(c.endpoints.map((e) => e.transport_socket_match), [{ tlsMode: 'istio' }, { tlsMode: 'istio' }, undefined], 'the metadata the entries read, per endpoint');
  t.same(c.endpoints.map((e) => endpointUsesTls(c, e)), [true, true, false], 'endpoints with a sidecar over TLS, the other in plaintext');
  t.equal(r.noEffect.get('ClusterLoadAssignment.endpoints.lb_endpoints.metadata'), 1, 'the istio namespace is still counted as without effect');
});

t.test('the Secrets of a TLS entry are asked for, and the cluster waits for them', async (t) => {
  const sds = { name: 'default', sds_config: { ads: {}, resource_api_version: 'V3' } };
  const set = istioSet((c) => {
    const ts = obj(arr(c.transport_socket_matches)[0].transport_socket);
    const context = protos.decodeAny(ts.typed_config as never).message;
    const common = obj(context.common_tls_context);
    delete common.tls_certificates;
    common.tls_certificate_sds_secret_configs = [sds];
    ts.typed_config = protos.encodeAny(TypeUrl.UpstreamTlsContext, context);
  });
  t.same(referencedSecrets(set.clusters.get(NAME)!), ['default'], 'the entry\'s Secret is referenced (subscribed to)');
  t.same(missingResources(set).secrets, ['default'], 'and missing until it arrives');
});

t.test('an endpoint without metadata of its own takes its locality\'s', async (t) => {
  const set = istioSet();
  const cla = set.endpoints.get(NAME)!;
  const group = obj(arr(cla.endpoints)[0]);
  for (const e of arr(group.lb_endpoints)) delete e.metadata;
  group.metadata = { filter_metadata: { 'envoy.transport_socket_match': struct({ tlsMode: 'istio' }) } };
  const r = translateXds(baseOf(CONFIG), rewire(set));
  if (!r.ok) return t.fail(errorsOf(r).join('\n'));
  t.same(r.config.clusters[0].endpoints.map((e) => endpointUsesTls(r.config.clusters[0], e)), [true, true, true]);
});

t.test('a TLS entry and no transport_socket of the cluster\'s own: the others are plaintext', async (t) => {
  const r = translateXds(baseOf(CONFIG), istioSet((c) => {
    c.transport_socket_matches = [arr(c.transport_socket_matches)[0]];
  }));
  if (!r.ok) return t.fail(errorsOf(r).join('\n'));
  const c = r.config.clusters[0];
  t.same(c.transport_socket_matches, [
    { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, tls: true },
    { name: 'transport_socket (unset: plaintext)', match: {}, tls: false },
  ], 'a last entry says what Envoy\'s default would be: plaintext');
  t.same(c.endpoints.map((e) => endpointUsesTls(c, e)), [true, true, false]);
});

t.test('with the cluster\'s own transport_socket, unmatched endpoints use it', async (t) => {
  const r = translateXds(baseOf(CONFIG), istioSet((c) => {
    const entries = arr(c.transport_socket_matches);
    c.transport_socket = entries[0].transport_socket;
    c.transport_socket_matches = [{ name: 'legacy', match: struct({ tlsMode: 'disabled' }), transport_socket: RAW_BUFFER }];
  }));
  if (!r.ok) return t.fail(errorsOf(r).join('\n'));
  const c = r.config.clusters[0];
  t.same(c.endpoints.map((e) => endpointUsesTls(c, e)), [true, true, true], 'no endpoint says tlsMode disabled: all TLS');
  t.same(endpointUsesTls(c, { transport_socket_match: { tlsMode: 'disabled', other: 'x' } }), false, 'one that does is plaintext');
});

t.test('rejections, by path', async (t) => {
  const at = `Cluster "${NAME}" transport_socket_matches`;
  const two = istioSet((c) => {
    const entries = arr(c.transport_socket_matches);
    const other = structuredClone(entries[0]);
    other.name = 'other-ca';
    const ts = obj(other.transport_socket);
    const context = protos.decodeAny(ts.typed_config as never).message;
    obj(obj(context.common_tls_context).validation_context).trusted_ca = { filename: '/etc/other/root.pem' };
    ts.typed_config = protos.encodeAny(TypeUrl.UpstreamTlsContext, context);
    c.transport_socket_matches = [entries[0], other, entries[1]];
  });
  t.same(errorsOf(translateXds(baseOf(CONFIG), two)), [
    `${at}[1].transport_socket: differs from the TLS settings of transport_socket_matches[0]: a Remora cluster has one set of TLS settings, which every TLS entry uses`,
  ]);
  const numbers = istioSet((c, lbs) => {
    obj(arr(c.transport_socket_matches)[0]).match = struct({ tlsMode: 'istio', version: 2 });
    lbs[0].metadata = { filter_metadata: { 'envoy.transport_socket_match': struct({ tlsMode: 'istio', mtls: true }) } };
  });
  t.same(errorsOf(translateXds(baseOf(CONFIG), numbers)).sort(), [
    `${at}[0].match.version: 2 is not supported: Remora matches string values only`,
    `ClusterLoadAssignment "${NAME}" endpoints[0].lb_endpoints[0].metadata.filter_metadata["envoy.transport_socket_match"].mtls: true is not supported: Remora matches string values only`,
  ].sort());
  const bare = istioSet((c) => {
    c.transport_socket_matches = [{ match: {} }];
  });
  t.same(errorsOf(translateXds(baseOf(CONFIG), bare)), [`${at}[0].name: is required`, `${at}[0].transport_socket: is required`]);
});

t.test('encoded to xDS and translated back: the same cluster, endpoints and ALPN list', async (t) => {
  const written = valid({
    ...CONFIG,
    clusters: [{
      ...CONFIG.clusters[0],
      tls: { ...CONFIG.clusters[0].tls, alpn_protocols: ['istio'] },
      transport_socket_matches: [{ name: 'tlsMode-istio', match: { tlsMode: 'istio' }, tls: true }, { name: 'tlsMode-disabled', tls: false }],
      endpoints: [{ address: '10.244.0.15', port: 9080, transport_socket_match: { tlsMode: 'istio' } }, { address: '10.244.0.17', port: 9080 }],
    }],
  });
  for (const eds of [false, true]) {
    const r = translateXds(baseOf(written), rewire(toXdsResources(written, { edsForAllClusters: eds })));
    if (!r.ok) return t.fail(errorsOf(r).join('\n'));
    const back = r.config.clusters[0] as Cluster;
    t.same(back.transport_socket_matches, written.clusters[0].transport_socket_matches, `entries (${eds ? 'EDS' : 'inline'})`);
    t.same(back.endpoints, written.clusters[0].endpoints, `endpoints with their metadata (${eds ? 'EDS' : 'inline'})`);
    t.same(back.tls, written.clusters[0].tls, 'tls, with Istio\'s ALPN list');
  }
});

t.test('a config file: an entry selecting TLS needs the cluster\'s tls', async (t) => {
  const r = validateConfig({
    listeners: [{ name: 'l', address: '127.0.0.1', port: 0, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c' } }] }] }],
    clusters: [{ name: 'c', endpoints: [{ address: '127.0.0.1', port: 1, transport_socket_match: { tlsMode: 7 } }], transport_socket_matches: [{ name: 'x', tls: true }, { name: '', tls: false }] }],
  });
  t.same(r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`).sort(), [
    'clusters[0].endpoints[0].transport_socket_match.tlsMode: must be a string',
    'clusters[0].transport_socket_matches[0].tls: needs the cluster\'s "tls" (the TLS settings an entry selects)',
    'clusters[0].transport_socket_matches[1].name: must not be empty',
  ]);
  const auto = validateConfig({
    listeners: [{ name: 'l', address: '127.0.0.1', port: 0, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c' } }] }] }],
    clusters: [
      { name: 'c', protocol: 'auto', endpoints: [{ address: '127.0.0.1', port: 1 }], tls: { ca_file: '/ca.pem', alpn_protocols: ['istio'] } },
      { name: 'd', endpoints: [{ address: '127.0.0.1', port: 1 }], tls: { ca_file: '/ca.pem', alpn_protocols: ['istio-peer-exchange', 'istio', 'h2'] } },
    ],
  });
  t.same(auto.ok ? [] : auto.errors.map((e) => `${e.path}: ${e.message}`), [
    'clusters[0].tls.alpn_protocols: cannot be set with protocol auto (the endpoint\'s ALPN choice decides its version)',
    'clusters[1].tls.alpn_protocols[0]: "istio-peer-exchange" is Istio\'s metadata exchange, which Remora does not speak: a peer that selected it would start the connection with its own framing',
    'clusters[1].tls.alpn_protocols[2]: "h2" is offered by the connections that speak it, always last; list only what comes before',
  ]);
});

t.test('what else Istio writes on every cluster: alt_stat_name, accepted without effect', async (t) => {
  const r = translateXds(baseOf(CONFIG), istioSet((c) => {
    c.alt_stat_name = 'outbound_9080__reviews_default_svc_cluster_local';
  }));
  t.same(r.ok ? r.noEffect.get('Cluster.alt_stat_name') : errorsOf(r), 1);
});

t.test('cluster filters: Istio\'s metadata exchange accepted without effect, any other rejected', async (t) => {
  const mx = (typedConfig: Obj): Obj => ({ name: 'istio.metadata_exchange', typed_config: typedConfig });
  const typedStruct = CLUSTER_METADATA_EXCHANGE.typed_config as unknown as Obj;
  const direct = { type_url: 'type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange', value: Buffer.from([0x0a, 0x13, ...Buffer.from('istio-peer-exchange')]) };
  for (const [what, config] of [['in a TypedStruct (Istio 1.2x)', typedStruct], ['as its own message (older Istio)', direct]] as const) {
    const r = translateXds(baseOf(CONFIG), istioSet((c) => {
      c.filters = [mx(config as Obj)];
    }));
    t.same(r.ok ? r.noEffect.get('Cluster.filters istio.metadata_exchange') : errorsOf(r), 1, `${what}: counted as without effect`);
  }
  const other = translateXds(baseOf(CONFIG), istioSet((c) => {
    c.filters = [{ name: 'envoy.filters.network.upstream.acme', typed_config: { type_url: 'type.googleapis.com/acme.Filter', value: Buffer.alloc(0) } }];
  }));
  t.same(errorsOf(other), [
    `Cluster "${NAME}" filters[0]: unsupported upstream network filter envoy.filters.network.upstream.acme: Remora runs no filters on upstream connections (Istio's istio.metadata_exchange is accepted)`,
  ]);
});
