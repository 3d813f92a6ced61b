// Unit tests for the gRPC access log encoding (workers/access-log-grpc-entry.ts,
// src/access-log/als-message.ts, src/access-log/proto-writer.ts): finished requests
// written as HTTPAccessLogEntry records, framed in a StreamAccessLogsMessage with the
// identifier, and decoded with Envoy's own protos (@grpc/proto-loader), field by field:
// the common properties (addresses, times, cluster, flags, route, attempts), the
// protocol, the request's and the response's properties. Also: long values that need
// multi-byte lengths and varints, and batches of several workers concatenated.

import t from 'tap';
import type { ClusterRuntime } from '../../src/upstream/cluster.js';
import { encodeIdentifier, streamMessage } from '../../src/access-log/als-message.js';
import { ProtoWriter } from '../../src/access-log/proto-writer.js';
import { writeHttpEntry } from '../../workers/access-log-grpc-entry.js';
import type { DownstreamRequest } from '../../workers/downstream.js';
import { StreamInfo } from '../../workers/stream-info.js';
import { decodeStreamMessage, type AlsObj } from '../helpers/als-server.js';

const NODE = { id: 'sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local', cluster: 'payments', userAgentVersion: '1.2.3' };

function requestOf(over: Partial<DownstreamRequest> = {}): DownstreamRequest {
  return {
    method: 'POST',
    path: '/v1/users',
    query: 'limit=10',
    headers: ['host', 'api.local', 'user-agent', 'curl/8.5.0', 'x-forwarded-for', '10.1.1.1', 'referer', 'https://app.local/', 'x-tenant', 'acme'],
    remoteAddress: '10.0.0.7',
    http2: false,
    peer: null,
    refusal: null,
    ...over,
  };
}

function proxied(over: Partial<DownstreamRequest> = {}): StreamInfo {
  const info = new StreamInfo(requestOf(over));
  info.requestId = 'req-1';
  info.status = 200;
  info.upstreamStatus = 200;
  info.attempts = 2;
  info.bytesIn = 11;
  info.bytesOut = 512;
  info.durationUs = 1_017_834;
  info.upstreamStartedAt = info.startedAt + 2.5;
  info.routeName = 'users';
  info.cluster = { name: 'backend' } as ClusterRuntime;
  info.upstreamHost = '10.0.0.11:3000';
  info.retryExhausted = true;
  return info;
}

function local(): StreamInfo {
  const info = new StreamInfo(requestOf({ headers: ['host', 'x.local'], query: '', method: 'GET', path: '/nowhere' }));
  info.requestId = 'req-2';
  info.status = 404;
  info.flag = 'NR';
  info.durationUs = 250;
  return info;
}

/** Entries encoded by one writer, framed as the main thread frames them, decoded. */
function roundTrip(infos: readonly StreamInfo[], scheme = 'http', nowMs = 1_700_000_000_123, identifier = true): AlsObj {
  const w = new ProtoWriter(16);
  for (const info of infos) writeHttpEntry(w, info, scheme, nowMs);
  return decodeStreamMessage(streamMessage(identifier ? encodeIdentifier(NODE, 'edge-log') : null, [w.take()]));
}

const entriesOf = (m: AlsObj): AlsObj[] => (m.http_logs as { log_entry: AlsObj[] }).log_entry;
const o = (v: unknown): AlsObj => v as AlsObj;

t.test('a proxied request: every field Remora fills, as Envoy\'s protos read it', async (t) => {
  const m = roundTrip([proxied()]);
  t.same(m.identifier, {
    node: { id: NODE.id, cluster: 'payments', user_agent_name: 'remora', user_agent_version: '1.2.3' },
    log_name: 'edge-log',
  }, 'the identifier: node and log name');
  const [e] = entriesOf(m);
  const c = o(e.common_properties);
  t.same(c.downstream_remote_address, { socket_address: { address: '10.0.0.7' } }, 'the client address');
  t.same(c.upstream_remote_address, { socket_address: { address: '10.0.0.11', port_value: 3000 } }, 'the endpoint');
  // Ended at 1_700_000_000.123 s after 1.017834 s: started at 1_699_999_999.105166 s.
  t.same(c.start_time, { seconds: '1699999999', nanos: 105_166_000 }, 'the start time');
  t.same(c.time_to_first_upstream_tx_byte, { nanos: 2_500_000 }, 'when the last attempt got its connection');
  t.same(c.time_to_last_upstream_rx_byte, { seconds: '1', nanos: 17_834_000 });
  t.same(c.time_to_last_downstream_tx_byte, { seconds: '1', nanos: 17_834_000 });
  t.same(c.duration, { seconds: '1', nanos: 17_834_000 });
  t.equal(c.upstream_cluster, 'backend');
  t.equal(c.route_name, 'users');
  t.equal(c.upstream_request_attempt_count, 2);
  t.equal(c.stream_id, 'req-1');
  t.equal(c.access_log_type, 'DownstreamEnd');
  t.same(c.response_flags, { upstream_retry_limit_exceeded: true }, 'URX: retries ran out');
  t.equal(e.protocol_version, 'HTTP11');
  const r = o(e.request);
  t.equal(r.request_method, 'POST');
  t.equal(r.scheme, 'http');
  t.equal(r.authority, 'api.local');
  t.equal(r.path, '/v1/users?limit=10', 'the path with its query, as :path');
  t.equal(r.user_agent, 'curl/8.5.0');
  t.equal(r.referer, 'https://app.local/');
  t.equal(r.forwarded_for, '10.1.1.1');
  t.equal(r.request_id, 'req-1');
  t.equal(r.request_body_bytes, '11');
  t.ok(Number(r.request_headers_bytes) > 60, 'the request head\'s size');
  const s = o(e.response);
  t.same(s.response_code, { value: 200 });
  t.equal(s.response_body_bytes, '512');
  t.equal(s.response_code_details, 'via_upstream');
});

t.test('a local reply, over HTTP/2 on a TLS listener, without an identifier', async (t) => {
  const info = local();
  (info.request as { http2: boolean }).http2 = true;
  const m = roundTrip([info], 'https', 1_700_000_000_000, false);
  t.equal(m.identifier, undefined, 'later messages carry no identifier');
  const [e] = entriesOf(m);
  const c = o(e.common_properties);
  t.same(c.response_flags, { no_route_found: true }, 'NR');
  t.equal(c.upstream_cluster, undefined, 'no cluster');
  t.equal(c.upstream_remote_address, undefined, 'no endpoint');
  t.equal(c.time_to_first_upstream_tx_byte, undefined, 'nothing went upstream');
  t.equal(c.route_name, undefined, 'no route matched');
  t.equal(e.protocol_version, 'HTTP2');
  t.equal(o(e.request).request_method, 'GET');
  t.equal(o(e.request).scheme, 'https');
  t.same(o(e.response).response_code, { value: 404 });
  t.equal(o(e.response).response_code_details, 'route_not_found');
  t.equal(o(e.response).response_body_bytes, undefined, 'no body bytes counted');
});

t.test('long values: multi-byte lengths, IPv6 endpoints, several entries and batches', async (t) => {
  const long = 'x'.repeat(70_000);
  const a = proxied({ path: `/${long}`, query: '' });
  a.upstreamHost = '[2001:db8::1]:8443';
  a.bytesOut = 2 ** 40; // a varint beyond 32 bits
  const w1 = new ProtoWriter(16);
  writeHttpEntry(w1, a, 'http', 1_700_000_000_000);
  writeHttpEntry(w1, local(), 'http', 1_700_000_000_000);
  const w2 = new ProtoWriter();
  writeHttpEntry(w2, proxied(), 'http', 1_700_000_000_000);
  const m = decodeStreamMessage(streamMessage(encodeIdentifier(NODE, 'l'), [w1.take(), w2.take()]));
  const entries = entriesOf(m);
  t.equal(entries.length, 3, 'two batches, concatenated, are one list');
  t.equal(o(entries[0].request).path, `/${long}`);
  t.same(o(entries[0].common_properties).upstream_remote_address, { socket_address: { address: '2001:db8::1', port_value: 8443 } });
  t.equal(o(entries[0].response).response_body_bytes, String(2 ** 40));
  t.equal(o(entries[1].response).response_code_details, 'route_not_found');
  t.equal(o(entries[2].request).authority, 'api.local');
  t.equal(w1.length, 0, 'take() starts the writer over');
});
