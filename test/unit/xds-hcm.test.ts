// Unit tests for the HttpConnectionManager settings and HTTP filters that real control
// planes send (src/xds/translate-listener-hcm.ts): Istio- and Envoy-Gateway-shaped
// HCMs, written here from the shapes those projects generate, are accepted; the settings
// accepted as having no effect give the same config as their absence; the ones that map
// onto a listener field map; the others are rejected by path.

import t from 'tap';
import { translateXds, type XdsTranslateResult } from '../../src/xds/translate.js';
import { Ctx } from '../../src/xds/translate-context.js';
import { translateListener } from '../../src/xds/translate-listener.js';
import { TypeUrl, type AnyMessage } from '../../src/xds/protos.js';
import { arr, baseOf, errorsOf, hcmOf, obj, overTheWire as overTheWireEds, protos, setHcm, valid, wire, type Obj } from '../helpers/xds.js';

/** MINIMAL's resources without EDS (clusters carry their endpoints). */
const overTheWire = (config: Parameters<typeof overTheWireEds>[0]) => overTheWireEds(config, false);

/** A result without its count of fields accepted without effect (noEffect, which
 *  test/unit/xds-no-effect.test.ts checks): what those fields must leave unchanged. */
const effect = (r: XdsTranslateResult): unknown => (r.ok ? { ...r, noEffect: undefined } : r);


const LISTENER = { name: 'in', port: 0, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'api' } }] }] };
const CLUSTERS = [{ name: 'api', endpoints: [{ address: '127.0.0.1', port: 9000 }] }];
const MINIMAL = valid({ listeners: [LISTENER], clusters: CLUSTERS });

/** `hcm` after `edit`, on the listener; throws when a field set by `edit` does not survive
 *  encoding (a misspelt field would, silently, and the test would prove nothing). */
function editHcm(l: Obj, edit: (hcm: Obj) => void): void {
  const hcm = hcmOf(l);
  edit(hcm);
  setHcm(l, hcm);
  const lost = Object.keys(hcm).filter((k) => hcm[k] !== undefined && !(k in hcmOf(l)) && JSON.stringify(hcm[k]) !== '[]');
  if (lost.length > 0) throw new Error(`not HttpConnectionManager fields, or not encoded: ${lost.join(', ')}`);
}

/** MINIMAL's resources with its HCM changed by `edit`, translated. */
function withHcm(edit: (hcm: Obj) => void): XdsTranslateResult {
  const set = overTheWire(MINIMAL);
  editHcm(set.listeners.get('in') as Obj, edit);
  return translateXds(baseOf(MINIMAL), { ...set, listeners: wire(TypeUrl.Listener, set.listeners) });
}

/** The listener part of MINIMAL's listener with its HCM changed by `edit`. */
function listenerPart(edit: (hcm: Obj) => void): ReturnType<typeof translateListener> {
  const l = overTheWire(MINIMAL).listeners.get('in') as Obj;
  editHcm(l, edit);
  return translateListener(new Ctx(), 'in', protos.decodeAny(protos.encodeAny(TypeUrl.Listener, l)).message);
}

const TL = 'Listener "in" filter_chains[0].filters[0].typed_config';
const any = (typeUrl: string, bytes: number[] = []): AnyMessage => ({ type_url: typeUrl, value: Buffer.from(bytes) });
const typedStruct = (typeUrl: string, inner: string, fields: Obj): AnyMessage => protos.encodeAny(typeUrl, { type_url: inner, value: { fields } });
const str = (s: string): Obj => ({ stringValue: s });
const ROUTER = { name: 'envoy.filters.http.router', typed_config: protos.encodeAny(TypeUrl.Router, {}) };
const ROUTER_GW = { name: 'envoy.filters.http.router', typed_config: protos.encodeAny(TypeUrl.Router, { suppress_envoy_headers: true }) };

// Istio's filters: their configs are Istio's own protos, which Remora does not load.
const METADATA_EXCHANGE = {
  name: 'istio.metadata_exchange',
  typed_config: typedStruct(TypeUrl.UdpaTypedStruct, 'type.googleapis.com/io.istio.http.peer_metadata.Config', {
    upstream_discovery: { listValue: { values: [{ structValue: { fields: { istio_headers: { structValue: { fields: {} } } } } }] } },
    upstream_propagation: { listValue: { values: [{ structValue: { fields: { istio_headers: { structValue: { fields: {} } } } } }] } },
  }),
};
const ISTIO_ALPN = { name: 'istio.alpn', typed_config: any('type.googleapis.com/istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig', [0x0a, 0x00]) };
const ISTIO_STATS = { name: 'istio.stats', typed_config: any('type.googleapis.com/stats.PluginConfig', [0x08, 0x01]) };
const GRPC_STATS = {
  name: 'envoy.filters.http.grpc_stats',
  typed_config: protos.encodeAny(TypeUrl.GrpcStats, { emit_filter_state: true, stats_for_all_methods: { value: false } }),
};
const FAULT = { name: 'envoy.filters.http.fault', typed_config: protos.encodeAny(TypeUrl.Fault, {}) };
const CORS = { name: 'envoy.filters.http.cors', typed_config: protos.encodeAny(TypeUrl.Cors, {}) };
const ISTIO_FILTERS = [METADATA_EXCHANGE, GRPC_STATS, ISTIO_ALPN, FAULT, CORS, ISTIO_STATS, ROUTER];

const ISTIO_TRACING = {
  client_sampling: { value: 100 },
  random_sampling: { value: 1 },
  overall_sampling: { value: 100 },
  custom_tags: [
    {
      tag: 'istio.authorization.dry_run.allow_policy.name',
      metadata: { kind: { request: {} }, metadata_key: { key: 'envoy.filters.http.rbac', path: [{ key: 'istio_dry_run_allow_shadow_effective_policy_id' }] } },
    },
    { tag: 'istio.canonical_service', literal: { value: 'productpage' } },
    { tag: 'istio.mesh_id', literal: { value: 'cluster.local' } },
  ],
};
const STDOUT_JSON_LOG = {
  name: 'envoy.access_loggers.file',
  typed_config: protos.encodeAny(TypeUrl.FileAccessLog, {
    path: '/dev/stdout',
    log_format: { json_format: { fields: { method: str('%REQ(:METHOD)%'), response_code: str('%RESPONSE_CODE%') } } },
  }),
};

/** An Istio outbound sidecar HCM (the listener for port 9080), minus upgrade_configs
 *  (below). */
function istioOutbound(hcm: Obj): void {
  Object.assign(hcm, {
    stat_prefix: 'outbound_0.0.0.0_9080',
    codec_type: 'AUTO',
    use_remote_address: { value: false },
    stream_idle_timeout: { seconds: 0 },
    normalize_path: { value: true },
    path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
    request_id_extension: { typed_config: protos.encodeAny(TypeUrl.UuidRequestId, { use_request_id_for_trace_sampling: { value: true } }) },
    tracing: ISTIO_TRACING,
    access_log: [STDOUT_JSON_LOG],
    http_filters: ISTIO_FILTERS,
  });
}

// ---------------------------------------------------------------------------
// Control planes' HCMs

t.test('an Istio outbound sidecar HCM is accepted: the access log maps, the rest has no effect', async (t) => {
  const r = withHcm(istioOutbound);
  t.same(errorsOf(r), []);
  const l = r.ok ? r.config.listeners[0] : undefined;
  t.strictSame(l?.access_log, { path: 'stdout', sample_ratio: 1, json_format: { method: '%REQ(:METHOD)%', response_code: '%RESPONSE_CODE%' } },
    'FileAccessLog /dev/stdout → stdout, with its json_format');
  t.equal(l?.normalize_path, true);
  t.equal(l?.path_with_escaped_slashes_action, 'keep_unchanged');
  t.equal(l?.generate_traceparent, false, 'tracing starts no traces');

  // Without what has no effect: the same config, but for the access log.
  const bare = withHcm((hcm) => {
    istioOutbound(hcm);
    for (const k of ['use_remote_address', 'stream_idle_timeout', 'request_id_extension', 'tracing', 'access_log']) delete hcm[k];
    hcm.http_filters = [ROUTER];
  });
  t.ok(bare.ok && r.ok);
  if (bare.ok && r.ok) {
    t.strictSame({ ...r.config, listeners: [{ ...r.config.listeners[0], access_log: undefined }] },
      { ...bare.config, listeners: [{ ...bare.config.listeners[0], access_log: undefined }] }, 'the same config otherwise');
  }

  const part = listenerPart(istioOutbound);
  t.same([...(part?.inertFilters ?? [])], [
    ['istio.metadata_exchange', 'istio.metadata_exchange'], ['envoy.filters.http.grpc_stats', 'grpc_stats'], ['istio.alpn', 'istio.alpn'],
    ['envoy.filters.http.fault', 'fault'], ['envoy.filters.http.cors', 'cors'], ['istio.stats', 'istio.stats'],
  ], 'the filters accepted as having no effect, by name, for the route translation');
});

t.test('an Istio inbound HCM (metadata exchange in an xds TypedStruct, XFCC, server name)', async (t) => {
  const r = withHcm((hcm) => {
    istioOutbound(hcm);
    Object.assign(hcm, {
      stat_prefix: 'inbound_0.0.0.0_9080',
      server_name: 'istio-envoy',
      forward_client_cert_details: 'APPEND_FORWARD',
      delayed_close_timeout: { seconds: 1 },
      http_protocol_options: {},
      set_current_client_cert_details: { subject: { value: true }, dns: true, uri: true },
      http_filters: [
        { ...METADATA_EXCHANGE, typed_config: typedStruct(TypeUrl.TypedStruct, 'type.googleapis.com/io.istio.http.peer_metadata.Config', {}) },
        GRPC_STATS, FAULT, CORS, ISTIO_STATS, ROUTER,
      ],
    });
  });
  t.same(errorsOf(r), []);
  const l = r.ok ? r.config.listeners[0] : undefined;
  t.equal(l?.server_name, 'istio-envoy');
  t.equal(l?.forward_client_cert_details, 'append_forward');
});

t.test("Istio's upgrade_configs (websocket) is the listener's upgrade_configs", async (t) => {
  const r = withHcm((hcm) => {
    istioOutbound(hcm);
    hcm.upgrade_configs = [{ upgrade_type: 'websocket' }];
  });
  t.same(errorsOf(r), []);
  t.strictSame(r.ok ? r.config.listeners[0].upgrade_configs : undefined, [{ upgrade_type: 'websocket', enabled: true }]);
});

/** An Envoy Gateway listener's HCM (translator output shape). */
function envoyGateway(hcm: Obj): void {
  Object.assign(hcm, {
    stat_prefix: 'http-10080',
    use_remote_address: { value: true },
    normalize_path: { value: true },
    merge_slashes: true,
    path_with_escaped_slashes_action: 'UNESCAPE_AND_REDIRECT',
    server_header_transformation: 'PASS_THROUGH',
    scheme_header_transformation: { match_upstream: true },
    common_http_protocol_options: { headers_with_underscores_action: 'REJECT_REQUEST' },
    http2_protocol_options: { max_concurrent_streams: { value: 100 }, initial_stream_window_size: { value: 65536 }, initial_connection_window_size: { value: 1048576 } },
    access_log: [{
      name: 'envoy.access_loggers.file',
      typed_config: protos.encodeAny(TypeUrl.FileAccessLog, {
        path: '/dev/stdout',
        log_format: { text_format_source: { inline_string: '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%\n' } },
      }),
    }],
    http_filters: [ROUTER_GW],
  });
}

t.test('an Envoy Gateway HCM maps, headers_with_underscores_action REJECT_REQUEST included', async (t) => {
  const strict = withHcm(envoyGateway);
  t.same(errorsOf(strict), []);
  t.equal(strict.ok ? strict.config.listeners[0].headers_with_underscores_action : null, 'reject_request', 'REJECT_REQUEST is the listener\'s reject_request');
  const r = withHcm((hcm) => {
    envoyGateway(hcm);
    hcm.common_http_protocol_options = { headers_with_underscores_action: 'ALLOW' };
  });
  t.same(errorsOf(r), []);
  const l = r.ok ? r.config.listeners[0] : undefined;
  t.equal(l?.merge_slashes, true);
  t.equal(l?.path_with_escaped_slashes_action, 'unescape_and_redirect');
  t.equal(l?.server_header_transformation, 'pass_through');
  t.strictSame(l?.access_log, { path: 'stdout', sample_ratio: 1, format: '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%\n' });
  t.equal(l?.http2_protocol_options.initial_stream_window_size, 65536);
});

// ---------------------------------------------------------------------------
// Settings one by one

t.test('settings accepted as having no effect give the same config as their absence', async (t) => {
  const baseline = withHcm(() => {});
  t.ok(baseline.ok);
  const cases: [string, Obj][] = [
    ['use_remote_address true', { use_remote_address: { value: true } }],
    ['use_remote_address false', { use_remote_address: { value: false } }],
    ['internal_address_config', { internal_address_config: { unix_sockets: true, cidr_ranges: [{ address_prefix: '10.0.0.0', prefix_len: { value: 8 } }] } }],
    ['preserve_external_request_id', { preserve_external_request_id: true }],
    ['generate_request_id true', { generate_request_id: { value: true } }],
    ['add_user_agent false', { add_user_agent: { value: false } }],
    ['xff_num_trusted_hops 0, skip_xff_append false', { xff_num_trusted_hops: 0, skip_xff_append: false }],
    ['request_id_extension (UUID)', { request_id_extension: { typed_config: protos.encodeAny(TypeUrl.UuidRequestId, { pack_trace_reason: { value: false } }) } }],
    ['request_id_extension without typed_config', { request_id_extension: {} }],
    ['tracing', { tracing: ISTIO_TRACING }],
    ['stream_idle_timeout 0s, request_timeout 0s', { stream_idle_timeout: { seconds: 0 }, request_timeout: {} }],
    ['delayed_close_timeout, drain_timeout', { delayed_close_timeout: { seconds: 1 }, drain_timeout: { seconds: 5 } }],
    ['upgrade_configs: CONNECT and h2c disabled', { upgrade_configs: [{ upgrade_type: 'CONNECT', enabled: { value: false } }, { upgrade_type: 'h2c', enabled: { value: false } }] }],
    ['local_reply_config empty', { local_reply_config: {} }],
    ['http_protocol_options', { http_protocol_options: { accept_http_10: true, allow_absolute_url: { value: true } } }],
    ['scheme_header_transformation match_upstream', { scheme_header_transformation: { match_upstream: true } }],
    ['headers_with_underscores_action ALLOW', { common_http_protocol_options: { headers_with_underscores_action: 'ALLOW' } }],
    ['router: suppress_envoy_headers, start_child_span, dynamic_stats', {
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: protos.encodeAny(TypeUrl.Router, { suppress_envoy_headers: true, start_child_span: true, dynamic_stats: { value: false } }) }],
    }],
  ];
  for (const [name, fields] of cases) {
    // The encoder writes common_http_protocol_options (idle timeout, header count): add to it.
    const r = withHcm((hcm) => Object.assign(hcm, fields, fields.common_http_protocol_options === undefined ? {}
      : { common_http_protocol_options: { ...obj(hcm.common_http_protocol_options), ...obj(fields.common_http_protocol_options) } }));
    t.same(errorsOf(r), [], `${name}: accepted`);
    t.strictSame(effect(r), effect(baseline), `${name}: no effect`);
  }
});

t.test('settings that would change traffic are rejected by path', async (t) => {
  t.same(errorsOf(withHcm((hcm) => Object.assign(hcm, {
    xff_num_trusted_hops: 1,
    skip_xff_append: true,
    generate_request_id: { value: false },
    add_user_agent: { value: true },
    via: 'remora',
    strip_any_host_port: true,
    strip_matching_host_port: true,
    request_id_extension: { typed_config: any('type.googleapis.com/example.v1.SequentialRequestId') },
    stream_idle_timeout: { seconds: 300 },
    request_timeout: { seconds: 30 },
    upgrade_configs: [{ upgrade_type: 'websocket' }, { upgrade_type: 'CONNECT', enabled: { value: true } }, { upgrade_type: 'h2c' }],
    local_reply_config: { mappers: [{ filter: { status_code_filter: { comparison: { op: 'EQ', value: { default_value: 503, runtime_key: 'k' } } } }, status_code: { value: 500 } }], body_format: {} },
    http_protocol_options: {
      allow_absolute_url: { value: false }, default_host_for_http_10: 'example.com', header_key_format: { proper_case_words: {} },
      enable_trailers: true, allow_chunked_length: true, send_fully_qualified_url: true,
    },
    scheme_header_transformation: { scheme_to_overwrite: 'https' },
  }))), [
    `${TL}.scheme_header_transformation.scheme_to_overwrite: field not supported by Remora`,
    `${TL}.http_protocol_options.send_fully_qualified_url: field not supported by Remora`,
    `${TL}.http_protocol_options.allow_absolute_url: false is not supported: Remora accepts an absolute-form request target and routes it by its authority`,
    `${TL}.http_protocol_options.default_host_for_http_10: is not supported: Remora gives no Host to an HTTP/1.0 request that has none`,
    `${TL}.http_protocol_options.header_key_format: is not supported: Remora sends HTTP/1 header names in lower case`,
    `${TL}.http_protocol_options.enable_trailers: true is not supported: Remora does not pass HTTP/1 trailers on`,
    `${TL}.http_protocol_options.allow_chunked_length: true is not supported: Remora refuses (400) a request with both Content-Length and Transfer-Encoding: chunked`,
    `${TL}.xff_num_trusted_hops: 1 is not supported: Remora takes the client's address from the connection, never from x-forwarded-for (0 or unset only)`,
    `${TL}.skip_xff_append: true is not supported: Remora always appends the downstream address to x-forwarded-for`,
    `${TL}.generate_request_id: false is not supported: Remora gives every request without an x-request-id a new UUID`,
    `${TL}.add_user_agent: true is not supported: Remora adds no user-agent or x-envoy-downstream-service-* headers`,
    `${TL}.via: is not supported: Remora adds no Via header`,
    `${TL}.strip_any_host_port: true is not supported: Remora routes by the Host header as received, port included, and sends it upstream so`,
    `${TL}.strip_matching_host_port: true is not supported: Remora routes by the Host header as received, port included, and sends it upstream so`,
    `${TL}.request_id_extension.typed_config: example.v1.SequentialRequestId is not supported: Remora's request IDs are UUIDs (UuidRequestIdConfig only)`,
    `${TL}.stream_idle_timeout: 300000 ms is not supported: Remora has no per-stream idle timeout; a stream waits as long as its route's timeouts allow (0s or unset only)`,
    `${TL}.request_timeout: 30000 ms is not supported: Remora has no timeout for receiving a whole request; a route's timeout_ms starts once it is received (0s or unset only)`,
    `${TL}.upgrade_configs[1]: CONNECT upgrades are not supported: Remora refuses CONNECT requests (Envoy proxies them with this upgrade type) (only enabled: false is accepted)`,
    `${TL}.upgrade_configs[2]: h2c upgrades are not supported: Remora serves a request with Upgrade: h2c over HTTP/1.1 and never switches it (Envoy with this entry would pass the upgrade on) (only enabled: false is accepted)`,
    `${TL}.local_reply_config.mappers: is not supported: Remora's local replies are its own (only an empty local_reply_config is accepted)`,
    `${TL}.local_reply_config.body_format: is not supported: Remora's local replies are its own (only an empty local_reply_config is accepted)`,
  ]);
  const dropping = withHcm((hcm) => Object.assign(hcm, { common_http_protocol_options: { headers_with_underscores_action: 'DROP_HEADER' } }));
  t.equal(dropping.ok ? dropping.config.listeners[0].headers_with_underscores_action : null, 'drop_header', 'DROP_HEADER is the listener\'s drop_header');
  t.same(errorsOf(withHcm((hcm) => Object.assign(hcm, { stream_idle_timeout: { nanos: 500 } }))), [
    `${TL}.stream_idle_timeout: must be a whole number of milliseconds (got 0s and 500ns)`,
  ], 'Durations are checked also where only 0 is accepted');
});

t.test('common_http_protocol_options.idle_timeout maps to idle_timeout_ms (0s: a day)', async (t) => {
  for (const [d, ms] of [[{ seconds: 300 }, 300_000], [{}, 86_400_000]] as const) {
    const r = withHcm((hcm) => Object.assign(hcm, { common_http_protocol_options: { idle_timeout: d } }));
    t.equal(r.ok ? r.config.listeners[0].idle_timeout_ms : undefined, ms);
  }
});

// ---------------------------------------------------------------------------
// Access logs

t.test('access_log: a file or stdout logger maps to the listener access log; the rest is rejected by path', async (t) => {
  const file = (path: string, extra: Obj = {}): Obj => ({ name: 'envoy.access_loggers.file', typed_config: protos.encodeAny(TypeUrl.FileAccessLog, { path, ...extra }) });
  const stdout = { name: 'envoy.access_loggers.stdout', typed_config: protos.encodeAny(TypeUrl.StdoutAccessLog, { log_format: { text_format_source: { inline_string: '%RESPONSE_CODE%\n' } } }) };
  const logOf = (logs: Obj[]): unknown => {
    const r = withHcm((hcm) => Object.assign(hcm, { access_log: logs }));
    return r.ok ? r.config.listeners[0].access_log : errorsOf(r);
  };
  t.strictSame(logOf([file('/var/log/remora/in.log', { format: '%START_TIME%\n' })]), { path: '/var/log/remora/in.log', sample_ratio: 1, format: '%START_TIME%\n' });
  t.strictSame(logOf([stdout]), { path: 'stdout', sample_ratio: 1, format: '%RESPONSE_CODE%\n' });
  t.same(logOf([file('')]), [`${TL}.access_log[0].typed_config.path: must not be empty (use "stdout" or a file path)`],
    'validateConfig\'s errors point at the logger');
  const otel = { name: 'envoy.access_loggers.open_telemetry', typed_config: any('type.googleapis.com/envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig') };
  t.same(logOf([{ ...file('/dev/stdout'), filter: { response_flag_filter: { flags: ['NR'] } } }, file('/tmp/b.log'), otel]), [
    `${TL}.access_log[0].filter: is not supported: Remora logs every request (errors always, others per sample_ratio) and selects none by filter`,
    `${TL}.access_log[1]: a second file or stdout access log is not supported: Remora writes one per listener`,
    `${TL}.access_log[2].typed_config: type.googleapis.com/envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig is not supported: `
      + 'Remora writes its access log to a file or stdout (FileAccessLog, StdoutAccessLog) or to a gRPC access log service (HttpGrpcAccessLogConfig)',
  ]);

  // The Remora extension sets it too: one of the two.
  const set = overTheWire(valid({ listeners: [{ ...LISTENER, access_log: { path: 'stdout', sample_ratio: 0.5 } }], clusters: CLUSTERS }));
  const l = set.listeners.get('in') as Obj;
  const hcm = hcmOf(l);
  hcm.access_log = [file('/dev/stdout')];
  setHcm(l, hcm);
  t.same(errorsOf(translateXds(baseOf(MINIMAL), { ...set, listeners: wire(TypeUrl.Listener, set.listeners) })), [
    `${TL}.access_log: and the Remora extension access_log (metadata.filter_metadata.remora.access_log) are both set: set one`,
  ]);
});

// ---------------------------------------------------------------------------
// HTTP filters

t.test('HTTP filters with no effect on their own are accepted; those that would act are rejected by path', async (t) => {
  const filters = (...f: Obj[]): XdsTranslateResult => withHcm((hcm) => {
    hcm.http_filters = [...f, ROUTER];
  });
  const HF = `${TL}.http_filters`;
  t.same(errorsOf(filters(
    { name: 'fault-qualifiers', typed_config: protos.encodeAny(TypeUrl.Fault, { max_active_faults: { value: 10 }, headers: [{ name: 'x-fault', present_match: true }] }) },
    { name: 'any-name-for-stats', typed_config: ISTIO_STATS.typed_config },
  )), [], 'a fault filter without faults; Istio\'s filters are recognised by type URL, not name');
  t.same(errorsOf(filters({
    name: 'envoy.filters.http.fault',
    typed_config: protos.encodeAny(TypeUrl.Fault, {
      delay: { fixed_delay: { seconds: 1 }, percentage: { numerator: 10 } },
      abort: { http_status: 503, percentage: { numerator: 1 } },
    }),
  })), [
    `${HF}[0].typed_config.delay: is not supported: Remora injects no faults, so it would forward what this filter delays, aborts or slows`,
    `${HF}[0].typed_config.abort: is not supported: Remora injects no faults, so it would forward what this filter delays, aborts or slows`,
  ]);
  const GRPC_WEB = { name: 'envoy.filters.http.grpc_web', typed_config: any('type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb') };
  const WASM_STATS = {
    name: 'istio.stats',
    typed_config: typedStruct(TypeUrl.UdpaTypedStruct, 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm', { config: { structValue: { fields: {} } } }),
  };
  t.same(errorsOf(filters(GRPC_WEB, WASM_STATS)), [
    `${HF}[0]: unsupported http filter envoy.filters.http.grpc_web: Remora does not translate gRPC-Web, so its requests would reach the upstream as they came`,
    `${HF}[1]: unsupported http filter istio.stats`,
  ], 'gRPC-Web; an Istio name on a Wasm filter (its type decides)');
  t.same(errorsOf(filters({ ...GRPC_WEB, is_optional: true })), [], 'is_optional: skipped, as xDS allows');

  // Older Istio releases: the same filters as Envoy's built-in ("null VM") Wasm plugins.
  const nullVm = (name: string, code: string, runtime: string): Obj => ({
    name,
    typed_config: typedStruct(TypeUrl.UdpaTypedStruct, 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm', {
      config: {
        structValue: {
          fields: {
            root_id: str('stats_outbound'),
            vm_config: { structValue: { fields: { runtime: str(runtime), code: { structValue: { fields: { local: { structValue: { fields: { inline_string: str(code) } } } } } } } } },
          },
        },
      },
    }),
  });
  t.same(errorsOf(filters(nullVm('istio.metadata_exchange', 'envoy.wasm.metadata_exchange', 'envoy.wasm.runtime.null'),
    nullVm('istio.stats', 'envoy.wasm.stats', 'envoy.wasm.runtime.null'))), []);
  t.same(errorsOf(filters(nullVm('istio.stats', 'envoy.wasm.stats', 'envoy.wasm.runtime.v8'), nullVm('x', 'envoy.wasm.other', 'envoy.wasm.runtime.null'))), [
    `${HF}[0]: unsupported http filter istio.stats`,
    `${HF}[1]: unsupported http filter x`,
  ], 'real Wasm code, or another built-in plugin, is rejected');
  t.same(errorsOf(withHcm((hcm) => {
    hcm.http_filters = [{ name: 'envoy.filters.http.router', typed_config: protos.encodeAny(TypeUrl.Router, { suppress_envoy_headers: true, strict_check_headers: ['x-envoy-max-retries'] }) }];
  })), [`${HF}[0].typed_config.strict_check_headers: field not supported by Remora`]);
});

t.test('listener_filters: envoy.filters.listener.proxy_protocol is the listener\'s proxy_protocol, both ways', async (t) => {
  const config = valid({ listeners: [{ ...LISTENER, proxy_protocol: true }], clusters: CLUSTERS });
  const set = overTheWire(config);
  const l = set.listeners.get('in') as Obj;
  t.match(arr(l.listener_filters)[0], { name: 'envoy.filters.listener.proxy_protocol' }, 'the encoder writes the listener filter');
  const back = translateXds(baseOf(config), { ...set, listeners: wire(TypeUrl.Listener, set.listeners) });
  t.same(errorsOf(back), []);
  if (back.ok) t.equal(back.config.listeners[0].proxy_protocol, true, 'and it translates back');
  // Istio's shape: tls_inspector next to it, no typed_config options.
  l.listener_filters = [{ name: 'envoy.filters.listener.tls_inspector' }, { name: 'envoy.filters.listener.proxy_protocol', typed_config: protos.encodeAny(TypeUrl.ProxyProtocol, {}) }];
  const istio = translateXds(baseOf(config), { ...set, listeners: wire(TypeUrl.Listener, set.listeners) });
  t.same(errorsOf(istio), []);
  l.listener_filters = [{ name: 'envoy.filters.listener.original_src' }];
  const other = errorsOf(translateXds(baseOf(config), { ...set, listeners: wire(TypeUrl.Listener, set.listeners) }));
  t.match(other[0], /listener_filters\[0\]: "envoy.filters.listener.original_src" is not supported/, 'another listener filter is still refused');
  l.listener_filters = [{ name: 'envoy.filters.listener.original_dst' }];
  const originalDst = translateXds(baseOf(config), { ...set, listeners: wire(TypeUrl.Listener, set.listeners) });
  t.same(errorsOf(originalDst), [], 'the original-destination filter is accepted: it only matters to redirected connections');
  t.equal(originalDst.ok ? originalDst.noEffect.get('ListenerFilter envoy.filters.listener.original_dst') : undefined, 1, 'and counted');
});
