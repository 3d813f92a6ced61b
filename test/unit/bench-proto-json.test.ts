// Unit tests for bench/lib/proto-json.ts, the proto3 JSON reader of the xDS corpus
// benchmark: both spellings of field names, nested messages, maps of Structs (endpoint
// metadata), Durations and wrappers, Anys written with "@type" (encoded, and read back by
// the same decoder the sidecar uses), an Any of a type the protos lack and an unknown
// field (left out and listed, never guessed).

import t from 'tap';
import { ProtoJson, type ConversionProblem } from '../../bench/lib/proto-json.js';
import { loadXdsProtos, TypeUrl } from '../../src/xds/protos.js';
import { fromStruct } from '../../src/xds/read.js';

const protos = loadXdsProtos();
const json = new ProtoJson(protos);
/** `v` converted, put on the wire as `typeUrl` and decoded, as the sidecar receives it. */
function roundTrip(typeUrl: string, v: unknown): { message: Record<string, unknown>; problems: ConversionProblem[] } {
  const problems: ConversionProblem[] = [];
  const converted = json.message(typeUrl, v, problems);
  return { message: protos.decodeAny(protos.encodeAny(typeUrl, converted)).message, problems };
}

t.test('a cluster as a config dump writes it (lowerCamel, "@type", Durations, wrappers, an Any)', async (t) => {
  const { message, problems } = roundTrip(TypeUrl.Cluster, {
    '@type': 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
    name: 'outbound|9080||reviews',
    type: 'EDS',
    connectTimeout: '1.500s',
    edsClusterConfig: { edsConfig: { ads: {}, resourceApiVersion: 'V3' }, serviceName: 'reviews' },
    circuitBreakers: { thresholds: [{ maxRetries: 1024 }] },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicitHttpConfig: { http2ProtocolOptions: {} },
      },
    },
  });
  t.same(problems, []);
  t.same([message.name, message.type, message.connect_timeout], ['outbound|9080||reviews', 'EDS', { seconds: '1', nanos: 500_000_000 }]);
  t.same((message.circuit_breakers as { thresholds: { max_retries: unknown }[] }).thresholds[0].max_retries, { value: 1024 }, 'a wrapper from a bare number');
  const options = (message.typed_extension_protocol_options as Record<string, { type_url: string; value: Uint8Array }>)['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
  const decoded = protos.decodeAny(options).message;
  t.ok((decoded.explicit_http_config as Record<string, unknown>).http2_protocol_options !== undefined, 'the Any inside a map is encoded as its "@type"');
});

t.test('endpoint metadata (a map of Structs) comes through as the translation reads it', async (t) => {
  const { message, problems } = roundTrip(TypeUrl.ClusterLoadAssignment, {
    cluster_name: 'reviews',
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.7', port_value: 9080 } } },
      metadata: { filter_metadata: { 'envoy.transport_socket_match': { tlsMode: 'istio' } } } }] }],
  });
  t.same(problems, []);
  const lbe = ((message.endpoints as Record<string, unknown>[])[0].lb_endpoints as Record<string, unknown>[])[0];
  const meta = (lbe.metadata as { filter_metadata: Record<string, unknown> }).filter_metadata['envoy.transport_socket_match'];
  t.same(fromStruct(meta as Record<string, unknown>), { tlsMode: 'istio' }, 'expected the string value, not an empty Value');
});

t.test('what the loaded protos lack is left out and listed', async (t) => {
  const problems: ConversionProblem[] = [];
  const message = json.message(TypeUrl.Listener, {
    name: 'l',
    notAField: 1,
    listener_filters: [{ name: 'x', typed_config: { '@type': 'type.googleapis.com/example.v1.Unknown', a: 1 } }],
  }, problems);
  t.same(problems.map((p) => p.path), ['notAField', 'listener_filters[0].typed_config']);
  const any = (message.listener_filters as { typed_config: { type_url: string; value: Uint8Array } }[])[0].typed_config;
  t.same([any.type_url, any.value.length], ['type.googleapis.com/example.v1.Unknown', 0], 'an unknown Any keeps its type URL, without bytes');
});
