// Unit tests for the access-log formats in the xDS translation (src/xds/
// translate-listener-hcm.ts, logFormat): a file or stdout logger's format — log_format's
// text_format_source (inline string or bytes), text_format or json_format, and
// FileAccessLog's deprecated format / json_format / typed_json_format — becomes the
// listener's `format` or `json_format`; Istio's default formats are accepted; what cannot
// be honoured is rejected by path, and an unknown operator is reported at the field it
// came from. The Remora extension access_log carries the formats both ways.

import t from 'tap';
import { translateXds, type XdsTranslateResult } from '../../src/xds/translate.js';
import { TypeUrl } from '../../src/xds/protos.js';
import { baseOf, errorsOf, hcmOf, overTheWire, protos, setHcm, valid, wire, type Obj } from '../helpers/xds.js';

const LISTENER = { name: 'in', port: 0, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'api' } }] }] };
const CLUSTERS = [{ name: 'api', endpoints: [{ address: '127.0.0.1', port: 9000 }] }];
const MINIMAL = valid({ listeners: [LISTENER], clusters: CLUSTERS });
const TL = 'Listener "in" filter_chains[0].filters[0].typed_config';
const AL = `${TL}.access_log[0].typed_config`;

/** Istio's default text format (meshConfig.accessLogFormat unset). */
const ISTIO_TEXT = '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% '
  + '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% '
  + '%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" '
  + '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% '
  + '%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

/** Istio's default JSON format (meshConfig.accessLogEncoding: JSON). */
const ISTIO_JSON: Record<string, string> = {
  start_time: '%START_TIME%', route_name: '%ROUTE_NAME%', method: '%REQ(:METHOD)%', path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%', response_code: '%RESPONSE_CODE%', response_flags: '%RESPONSE_FLAGS%', response_code_details: '%RESPONSE_CODE_DETAILS%',
  connection_termination_details: '%CONNECTION_TERMINATION_DETAILS%', bytes_received: '%BYTES_RECEIVED%', bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%', upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%', x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
  user_agent: '%REQ(USER-AGENT)%', request_id: '%REQ(X-REQUEST-ID)%', authority: '%REQ(:AUTHORITY)%', upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER_RAW%', upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%', downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%', requested_server_name: '%REQUESTED_SERVER_NAME%',
  upstream_transport_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
};

const struct = (fields: Record<string, unknown>): Obj => ({
  fields: Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, typeof v === 'string' ? { stringValue: v } : typeof v === 'number' ? { numberValue: v } : { structValue: { fields: {} } }])),
});

const file = (fields: Obj): Obj => ({ name: 'envoy.access_loggers.file', typed_config: protos.encodeAny(TypeUrl.FileAccessLog, { path: '/dev/stdout', ...fields }) });
const stdout = (fields: Obj): Obj => ({ name: 'envoy.access_loggers.stdout', typed_config: protos.encodeAny(TypeUrl.StdoutAccessLog, fields) });

/** MINIMAL with its HCM's access_log set to `logs`, translated. */
function withLogs(...logs: Obj[]): XdsTranslateResult {
  const set = overTheWire(MINIMAL, false);
  const l = set.listeners.get('in') as Obj;
  const hcm = hcmOf(l);
  hcm.access_log = logs;
  setHcm(l, hcm);
  return translateXds(baseOf(MINIMAL), { ...set, listeners: wire(TypeUrl.Listener, set.listeners) });
}

const logOf = (...logs: Obj[]): unknown => {
  const r = withLogs(...logs);
  return r.ok ? r.config.listeners[0].access_log : errorsOf(r);
};

t.test('a text format maps to format, from each place Envoy takes one', async (t) => {
  const want = { path: 'stdout', sample_ratio: 1, format: ISTIO_TEXT };
  t.strictSame(logOf(file({ log_format: { text_format_source: { inline_string: ISTIO_TEXT } } })), want, 'log_format.text_format_source.inline_string (Istio)');
  t.strictSame(logOf(stdout({ log_format: { text_format_source: { inline_bytes: Buffer.from(ISTIO_TEXT) } } })), want, 'inline_bytes, on a StdoutAccessLog');
  t.strictSame(logOf(file({ log_format: { text_format: ISTIO_TEXT } })), want, 'log_format.text_format');
  t.strictSame(logOf(file({ format: ISTIO_TEXT })), want, 'FileAccessLog.format (deprecated)');
  t.strictSame(logOf(file({ log_format: { text_format_source: { inline_string: '%RESPONSE_CODE%' }, content_type: 'text/plain', json_format_options: { sort_properties: true } } })),
    { path: 'stdout', sample_ratio: 1, format: '%RESPONSE_CODE%' }, 'content_type and json_format_options have no effect on a file line');
  t.strictSame(logOf(file({})), { path: 'stdout', sample_ratio: 1 }, 'no format: Remora\'s JSON line');
});

t.test('a JSON format maps to json_format, a Struct of format strings', async (t) => {
  const want = { path: 'stdout', sample_ratio: 1, json_format: ISTIO_JSON };
  t.strictSame(logOf(file({ log_format: { json_format: struct(ISTIO_JSON) } })), want, 'log_format.json_format (Istio)');
  t.strictSame(logOf(file({ json_format: struct(ISTIO_JSON) })), want, 'FileAccessLog.json_format (deprecated)');
  t.strictSame(logOf(file({ typed_json_format: struct(ISTIO_JSON) })), want, 'FileAccessLog.typed_json_format (deprecated)');
  const formatter = { name: 'envoy.formatter.req_without_query', typed_config: protos.encodeAny(TypeUrl.UdpaTypedStruct, { type_url: 'type.googleapis.com/envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery', value: { fields: {} } }) };
  t.strictSame(logOf(stdout({ log_format: { json_format: struct({ path: '%REQ_WITHOUT_QUERY(:PATH)%' }), formatters: [formatter] } })),
    { path: 'stdout', sample_ratio: 1, json_format: { path: '%REQ_WITHOUT_QUERY(:PATH)%' } }, 'formatters are accepted: operators are checked by name');
});

t.test('what a format cannot be is rejected by path; an unknown operator at its field', async (t) => {
  t.same(logOf(file({ log_format: { json_format: struct({ ok: '%DURATION%', nested: {}, n: 5 }) } })), [
    `${AL}.log_format.json_format.nested: is not supported: Remora's json_format values are format strings (not a nested object, number or boolean)`,
    `${AL}.log_format.json_format.n: is not supported: Remora's json_format values are format strings (not a nested object, number or boolean)`,
  ]);
  t.same(logOf(file({ log_format: { text_format_source: { filename: '/etc/envoy/format.txt' } } })), [
    `${AL}.log_format.text_format_source.filename: is not supported: Remora takes the format inline (inline_string or inline_bytes)`,
  ]);
  t.same(logOf(file({ log_format: { text_format: '%DURATION%', omit_empty_values: true } })), [
    `${AL}.log_format.omit_empty_values: is not supported: Remora prints "-" (text) or null (JSON) for a value it does not have`,
  ]);
  t.same(logOf(file({ log_format: { text_format_source: { inline_string: '[%START_TIME%] %RESPONSE_CODES%\n' } } })), [
    `${AL}.log_format.text_format_source.inline_string: unknown operator %RESPONSE_CODES% at position 15`,
  ], 'validateConfig\'s error, at the field the format came from');
  t.same(logOf(file({ log_format: { json_format: struct({ code: '%RESPONSE_CODE%', who: '%DOWNSTREAM_PEER_URI_SANS%' }) } })), [
    `${AL}.log_format.json_format.who: unknown operator %DOWNSTREAM_PEER_URI_SANS% at position 0`,
  ]);
});

t.test('the Remora extension access_log carries format and json_format, Remora → xDS → Remora', async (t) => {
  for (const accessLog of [{ path: 'stdout', format: ISTIO_TEXT }, { path: '/var/log/in.log', sample_ratio: 0.5, json_format: ISTIO_JSON }]) {
    const config = valid({ listeners: [{ ...LISTENER, access_log: accessLog }], clusters: CLUSTERS });
    const back = translateXds(baseOf(config), overTheWire(config, false));
    t.same(errorsOf(back), []);
    if (back.ok) t.strictSame(back.config, config, Object.keys(accessLog).join(', '));
  }
});
