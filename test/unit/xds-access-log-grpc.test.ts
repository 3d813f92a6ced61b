// Unit tests for the gRPC access log in the xDS translation (src/xds/translate-access-log.ts):
// an HttpConnectionManager's HttpGrpcAccessLogConfig (go-control-plane's sample listener
// has one) becomes the listener's `access_log.grpc` — log name, envoy_grpc cluster,
// buffer size and flush interval — alone or with a file logger; fields that only choose
// more to log are accepted without effect and counted; google_grpc, a second gRPC logger,
// a gRPC logger on a TcpProxy, an unknown cluster (outside ADS) and V2 are rejected by
// path. The Remora extension access_log carries `grpc` both ways.

import t from 'tap';
import { translateXds, type XdsTranslateResult } from '../../src/xds/translate.js';
import { TypeUrl, type AnyMessage } from '../../src/xds/protos.js';
import { arr, baseOf, errorsOf, hcmOf, obj, overTheWire, protos, setHcm, valid, wire, type Obj } from '../helpers/xds.js';

const LISTENER = { name: 'in', port: 0, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'api' } }] }] };
const CLUSTERS = [{ name: 'api', endpoints: [{ address: '127.0.0.1', port: 9000 }] }, { name: 'als', endpoints: [{ address: '127.0.0.1', port: 9001 }] }];
const MINIMAL = valid({ listeners: [LISTENER], clusters: CLUSTERS });
const TL = 'Listener "in" filter_chains[0].filters[0].typed_config';

const grpcLog = (common: Obj, extra: Obj = {}): Obj => ({
  name: 'envoy.access_loggers.http_grpc',
  typed_config: protos.encodeAny(TypeUrl.HttpGrpcAccessLog, { common_config: common, ...extra }),
});
const file = (path: string): Obj => ({ name: 'envoy.access_loggers.file', typed_config: protos.encodeAny(TypeUrl.FileAccessLog, { path }) });
/** go-control-plane's sample: log name, envoy_grpc cluster, V3. */
const SAMPLE = { log_name: 'echo', grpc_service: { envoy_grpc: { cluster_name: 'als' } }, transport_api_version: 'V3' };

function withLogs(logs: Obj[], ads = false): XdsTranslateResult {
  const set = overTheWire(MINIMAL, false);
  const l = set.listeners.get('in') as Obj;
  const hcm = hcmOf(l);
  hcm.access_log = logs;
  setHcm(l, hcm);
  if (ads) set.clusters.delete('als');
  return translateXds(baseOf(MINIMAL), { ...set, listeners: wire(TypeUrl.Listener, set.listeners) }, ads ? { ads: true } : undefined);
}

const logOf = (...logs: Obj[]): unknown => {
  const r = withLogs(logs);
  return r.ok ? r.config.listeners[0].access_log : errorsOf(r);
};

t.test('HttpGrpcAccessLogConfig → access_log.grpc, with Remora\'s buffering defaults', async (t) => {
  t.strictSame(logOf(grpcLog(SAMPLE)), {
    grpc: { log_name: 'echo', cluster: 'als', buffer_size_bytes: 16_384, flush_interval_ms: 1000 }, sample_ratio: 1,
  }, 'go-control-plane\'s sample logger');
  t.strictSame(logOf(grpcLog({ ...SAMPLE, buffer_flush_interval: { nanos: 250_000_000 }, buffer_size_bytes: { value: 0 } })), {
    grpc: { log_name: 'echo', buffer_size_bytes: 0, flush_interval_ms: 250, cluster: 'als' }, sample_ratio: 1,
  }, 'buffer_size_bytes and buffer_flush_interval are the workers\' batching');
  t.strictSame(logOf(file('/dev/stdout'), grpcLog(SAMPLE)), {
    path: 'stdout', grpc: { log_name: 'echo', cluster: 'als', buffer_size_bytes: 16_384, flush_interval_ms: 1000 }, sample_ratio: 1,
  }, 'a file logger and a gRPC logger: both');
});

t.test('fields that choose what more to log are accepted without effect, and counted', async (t) => {
  const r = withLogs([grpcLog({ ...SAMPLE, filter_state_objects_to_log: ['x'], grpc_service: { envoy_grpc: { cluster_name: 'als', authority: 'als.local' }, timeout: { seconds: 5 } } },
    { additional_request_headers_to_log: ['x-tenant'], additional_response_headers_to_log: ['x-cache'] })]);
  t.same(errorsOf(r), []);
  if (!r.ok) return;
  t.strictSame(r.config.listeners[0].access_log?.grpc, { log_name: 'echo', cluster: 'als', buffer_size_bytes: 16_384, flush_interval_ms: 1000 });
  const inert = [...r.noEffect.keys()].filter((k) => /Grpc/.test(k)).sort();
  t.strictSame(inert, [
    'HttpGrpcAccessLogConfig.additional_request_headers_to_log', 'HttpGrpcAccessLogConfig.additional_response_headers_to_log',
    'HttpGrpcAccessLogConfig.common_config.filter_state_objects_to_log', 'HttpGrpcAccessLogConfig.common_config.grpc_service.envoy_grpc.authority',
    'HttpGrpcAccessLogConfig.common_config.grpc_service.timeout',
  ]);
});

t.test('what Remora cannot do is rejected by path', async (t) => {
  const CL = `${TL}.access_log[0].typed_config.common_config`;
  t.same(logOf(grpcLog({ log_name: 'echo', grpc_service: { google_grpc: { target_uri: 'als:9001', stat_prefix: 'als' } } })), [
    `${CL}.grpc_service.google_grpc: is not supported: name the access log service by its cluster (envoy_grpc.cluster_name)`,
  ], 'google_grpc: envoy_grpc is what is supported');
  t.same(logOf(grpcLog({ ...SAMPLE, transport_api_version: 'V2' })), [`${CL}.transport_api_version: V2 is not supported: Remora speaks envoy.service.accesslog.v3 (V3)`]);
  t.same(logOf(grpcLog({ ...SAMPLE, grpc_service: { envoy_grpc: { cluster_name: 'nope' } } })), [
    `${CL}.grpc_service.envoy_grpc.cluster_name: unknown cluster "nope" (defined: api, als)`,
  ], 'validateConfig\'s error, at the field the cluster came from');
  t.same(logOf(grpcLog({ ...SAMPLE, log_name: '' })), [`${CL}.log_name: must not be empty`]);
  t.same(logOf(grpcLog(SAMPLE), grpcLog({ ...SAMPLE, log_name: 'other' })), [
    `${TL}.access_log[1]: a second gRPC access log is not supported: Remora streams to one service per listener`,
  ]);
  t.same(logOf({ name: 'x', typed_config: { type_url: 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.TcpGrpcAccessLogConfig', value: Buffer.alloc(0) } }), [
    `${TL}.access_log[0].typed_config: type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.TcpGrpcAccessLogConfig is not supported: `
      + 'Remora writes its access log to a file or stdout (FileAccessLog, StdoutAccessLog) or to a gRPC access log service (HttpGrpcAccessLogConfig)',
  ]);
});

t.test('over ADS the service\'s cluster may come later (the stream waits for it)', async (t) => {
  const r = withLogs([grpcLog(SAMPLE)], true);
  t.same(errorsOf(r), []);
  if (r.ok) t.equal(r.config.listeners[0].access_log?.grpc?.cluster, 'als');
});

t.test('a TcpProxy\'s gRPC logger is rejected: Remora sends HTTP entries only', async (t) => {
  const config = valid({ listeners: [{ name: 'tcp', port: 0, tcp_proxy: { cluster: 'api' } }], clusters: CLUSTERS });
  const set = overTheWire(config, false);
  const l = set.listeners.get('tcp') as Obj;
  const filter = arr(obj(l.default_filter_chain).filters)[0];
  const proxy = protos.decodeAny(obj(filter.typed_config) as unknown as AnyMessage).message;
  proxy.access_log = [grpcLog(SAMPLE)];
  filter.typed_config = protos.encodeAny(TypeUrl.TcpProxy, proxy);
  const r = translateXds(baseOf(config), { ...set, listeners: wire(TypeUrl.Listener, set.listeners) });
  t.same(errorsOf(r), [
    `Listener "tcp" default_filter_chain.filters[0].typed_config.access_log[0].typed_config: type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig is not supported: `
      + 'Remora writes its access log of TCP connections to a file or stdout (FileAccessLog, StdoutAccessLog)',
  ]);
});

t.test('the Remora extension access_log carries grpc, Remora → xDS → Remora', async (t) => {
  for (const accessLog of [
    { grpc: { cluster: 'als', log_name: 'edge', buffer_size_bytes: 0, flush_interval_ms: 200 } },
    { path: 'stdout', sample_ratio: 0.5, grpc: { cluster: 'als', log_name: 'edge' } },
  ]) {
    const config = valid({ listeners: [{ ...LISTENER, access_log: accessLog }], clusters: CLUSTERS });
    const back = translateXds(baseOf(config), overTheWire(config, false));
    t.same(errorsOf(back), []);
    if (back.ok) t.strictSame(back.config, config, Object.keys(accessLog).join(', '));
  }
});
