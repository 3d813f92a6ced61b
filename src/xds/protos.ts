// Envoy's xDS v3 protos, loaded from @grpc/grpc-js-xds (which ships Envoy's API, xds,
// googleapis and protoc-gen-validate protos) with @grpc/proto-loader: no .proto file is
// copied into Remora, and the files are found through the package's own location, so
// this works from src/xds/ (tests) and dist/src/xds/ (built) alike. Extensions newer than
// that API snapshot are declared by Remora under proto/envoy/ (Envoy's wire format, the
// same package names). One place decides
// the decoding options, so every module sees the same object shapes: field names as in
// the .proto (snake_case), 64-bit integers and enums as strings, no defaults filled in
// and no oneof marker fields, so every key of a decoded object is a field that was set
// (the translation NACKs fields it does not support). `google.protobuf.Any` values are
// decoded and encoded here by type URL.

import { createRequire } from 'node:module';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoRoot } from '../control/remora-protos.js';

/** Type URLs of the resources Remora speaks. */
export const TypeUrl = {
  Listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  RouteConfiguration: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  Cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  ClusterLoadAssignment: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  HttpConnectionManager: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  Router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  LocalRateLimit: 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
  Rbac: 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
  RbacPerRoute: 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute',
  DownstreamTlsContext: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  UpstreamTlsContext: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  /** SDS: a certificate and key, or a validation context, delivered over ADS. */
  Secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
  /** A cluster's upstream HTTP version and options (typed_extension_protocol_options). */
  HttpProtocolOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  /** The retry host predicate `envoy.retry_host_predicates.previous_hosts` (no fields). */
  PreviousHostsPredicate: 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
  /** HttpConnectionManager extensions: HTTP filters accepted as having no effect by
   *  themselves, access loggers, the request ID extension (translate-listener-hcm.ts). */
  Cors: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors',
  Fault: 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
  GrpcStats: 'type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig',
  FileAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
  StdoutAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
  HttpGrpcAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig',
  UuidRequestId: 'type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig',
  /** The listener filter `envoy.filters.listener.proxy_protocol` (a listener's proxy_protocol). */
  ProxyProtocol: 'type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol',
  /** TCP listeners (translate-listener-tcp.ts): the tcp_proxy network filter, the
   *  network RBAC filter (accepted without rules), the plaintext transport socket. */
  TcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  NetworkRbac: 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
  RawBuffer: 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
  /** The listener filter `envoy.filters.listener.tls_inspector` (written before TCP chains that match on the ClientHello). */
  TlsInspector: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  HttpInspector: 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
  /** A cluster's transport socket `envoy.transport_sockets.upstream_proxy_protocol` (its send_proxy_protocol). */
  UpstreamProxyProtocol: 'type.googleapis.com/envoy.extensions.transport_sockets.proxy_protocol.v3.ProxyProtocolUpstreamTransport',
  /** HttpConnectionManager tracing providers: OpenTelemetry (spans exported over OTLP
   *  to its cluster) and Zipkin (Istio's default; its sampling and B3 headers apply). */
  OpenTelemetryTracer: 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig',
  ZipkinTracer: 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig',
  /** A config by type URL and Struct (Istio wraps its own filters' configs in these). */
  TypedStruct: 'type.googleapis.com/xds.type.v3.TypedStruct',
  UdpaTypedStruct: 'type.googleapis.com/udpa.type.v1.TypedStruct',
  /** A DNS cluster's typed_dns_resolver_config (envoy.network.dns_resolver.cares). */
  CaresDnsResolver: 'type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig',
  /** A Cluster's cluster_type `envoy.cluster.dns` (proto/envoy/: newer than the loaded API). */
  DnsCluster: 'type.googleapis.com/envoy.extensions.clusters.dns.v3.DnsCluster',
} as const;

/** An `Any` as proto-loader presents it. */
export interface AnyMessage {
  readonly type_url: string;
  readonly value: Buffer | Uint8Array;
}

/** Decoded message objects are plain data in proto-loader's shape. */
export type ProtoObject = Record<string, unknown>;

const DNS_CLUSTER_PROTO = 'envoy/extensions/clusters/dns/v3/dns_cluster.proto';

const FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/secret/v3/sds.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/filters/listener/proxy_protocol/v3/proxy_protocol.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/transport_sockets/proxy_protocol/v3/upstream_proxy_protocol.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/grpc_stats/v3/config.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/extensions/access_loggers/grpc/v3/als.proto',
  'envoy/extensions/request_id/uuid/v3/uuid.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
  'envoy/config/trace/v3/zipkin.proto',
  'xds/type/v3/typed_struct.proto',
  'envoy/extensions/network/dns_resolver/cares/v3/cares_dns_resolver.proto',
  'udpa/type/v1/typed_struct.proto',
  'envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto',
  'envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto',
  'envoy/extensions/load_balancing_policies/random/v3/random.proto',
  // Remora's own declaration (proto/envoy/), for what the package's API snapshot predates.
  DNS_CLUSTER_PROTO,
];

export const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: false, oneofs: false };

export interface XdsProtos {
  readonly definition: protoLoader.PackageDefinition;
  /** envoy.service.discovery.v3.AggregatedDiscoveryService, for grpc-js clients and servers. */
  readonly ads: grpc.ServiceClientConstructor;
  /** envoy.service.secret.v3.SecretDiscoveryService: Secrets from a server of their own
   *  (xds.sds_servers; Istio's istio-agent socket). */
  readonly sds: grpc.ServiceClientConstructor;
  /** Decodes an Any by its type URL; throws for a type not loaded. */
  decodeAny(any: AnyMessage): { typeUrl: string; message: ProtoObject };
  /** Encodes `message` of the type named by `typeUrl` as an Any. */
  encodeAny(typeUrl: string, message: ProtoObject): AnyMessage;
}

let cached: XdsProtos | null = null;

/** Loads the protos once per thread (about 0.3 s). */
export function loadXdsProtos(): XdsProtos {
  if (cached !== null) return cached;
  const require = createRequire(import.meta.url);
  const deps = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  const includeDirs = [...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(deps, d)), protoRoot(DNS_CLUSTER_PROTO)];
  const definition = protoLoader.loadSync(FILES, { ...LOADER_OPTIONS, includeDirs });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    envoy: {
      service: {
        discovery: { v3: { AggregatedDiscoveryService: grpc.ServiceClientConstructor } };
        secret: { v3: { SecretDiscoveryService: grpc.ServiceClientConstructor } };
      };
    };
  };
  const typeOf = (typeUrl: string): protoLoader.MessageTypeDefinition<ProtoObject, ProtoObject> => {
    const name = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
    const t = definition[name] as protoLoader.MessageTypeDefinition<ProtoObject, ProtoObject> | undefined;
    if (t === undefined || !('deserialize' in t)) throw new Error(`unsupported resource type ${typeUrl}`);
    return t;
  };
  cached = {
    definition,
    ads: pkg.envoy.service.discovery.v3.AggregatedDiscoveryService,
    sds: pkg.envoy.service.secret.v3.SecretDiscoveryService,
    decodeAny(any) {
      const t = typeOf(any.type_url);
      return { typeUrl: any.type_url, message: t.deserialize(Buffer.from(any.value)) as ProtoObject };
    },
    encodeAny(typeUrl, message) {
      return { type_url: typeUrl, value: typeOf(typeUrl).serialize(message) };
    },
  };
  return cached;
}
