// The gRPC access log service end to end: a real Remora whose listener logs to a cluster
// served by a @grpc/grpc-js AccessLogService (test/helpers/als-server.ts, decoding with
// Envoy's protos). Requests through the proxy — a GET, a POST with a body, a request no
// route matches — arrive as HTTPAccessLogEntry records with their method, path,
// authority, response code, body sizes, route and cluster, on one stream whose first
// message names the node and the log; /metrics counts them. When the service is down at
// first, the proxy keeps serving, and the entries held meanwhile arrive once it is up.
// Over mutual TLS, with the cluster's CA, client certificate and verified SAN.

import { hostname } from 'node:os';
import t from 'tap';
import { admin, request, startRemora, startUpstream, waitUntil } from '../helpers/remora.js';
import { deadPort } from '../helpers/dead-port.js';
import { startAlsServer, type AlsObj } from '../helpers/als-server.js';
import { TestPki } from '../helpers/certs.js';
import { readFileSync } from 'node:fs';

const o = (v: unknown): AlsObj => (v ?? {}) as AlsObj;

function configWith(upstreamPort: number, alsPort: number, logName: string, alsTls?: Record<string, unknown>) {
  return {
    workers: 2,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [{
      name: 'main', address: '127.0.0.1', port: 0,
      access_log: { grpc: { cluster: 'als', log_name: logName, flush_interval_ms: 100 } },
      virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'api', match: { prefix: '/api' }, route: { cluster: 'up' } }] }],
    }],
    clusters: [
      { name: 'up', connect_timeout_ms: 500, endpoints: [{ address: '127.0.0.1', port: upstreamPort }] },
      { name: 'als', connect_timeout_ms: 500, endpoints: [{ address: '127.0.0.1', port: alsPort }], ...(alsTls !== undefined ? { tls: alsTls } : {}) },
    ],
  };
}

async function echoUpstream() {
  return startUpstream((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`seen ${Buffer.concat(chunks).length} bytes of ${req.method} ${req.url}`);
    });
  });
}

const pathOf = (e: AlsObj): string => String(o(e.request).path);

t.test('requests arrive as HTTPAccessLogEntry records on one stream, the first message naming node and log', async (t) => {
  const als = await startAlsServer();
  t.teardown(() => als.close());
  const up = await echoUpstream();
  t.teardown(() => up.close());
  const remora = await startRemora(configWith(up.port, als.port, 'edge-log'));
  t.teardown(() => remora.stop());
  const port = remora.ports.main;

  const get = await request(port, { path: '/api/hello?x=1', headers: { 'user-agent': 'als-test/1', 'x-request-id': 'rid-get' } });
  t.equal(get.status, 200);
  const post = await request(port, { method: 'POST', path: '/api/items', body: 'hello world', headers: { 'x-request-id': 'rid-post' } });
  t.equal(post.status, 200);
  const missing = await request(port, { path: '/nowhere', headers: { 'x-request-id': 'rid-404' } });
  t.equal(missing.status, 404);

  await waitUntil('three entries at the service', async () => als.entries().length >= 3, 10_000);
  const entries = als.entries();
  t.equal(entries.length, 3, 'one entry per request');
  const byPath = new Map(entries.map((e) => [pathOf(e), e]));

  const g = byPath.get('/api/hello?x=1');
  t.ok(g, 'the GET');
  t.equal(o(g?.request).request_method, 'GET');
  t.equal(o(g?.request).authority, `127.0.0.1:${port}`);
  t.equal(o(g?.request).scheme, 'http');
  t.equal(o(g?.request).user_agent, 'als-test/1');
  t.equal(o(g?.request).request_id, 'rid-get');
  t.same(o(g?.response).response_code, { value: 200 });
  t.equal(Number(o(g?.response).response_body_bytes), Buffer.byteLength(get.text), 'response body bytes');
  t.equal(o(g?.response).response_code_details, 'via_upstream');
  t.equal(o(g?.common_properties).route_name, 'api');
  t.equal(o(g?.common_properties).upstream_cluster, 'up');
  t.same(o(g?.common_properties).upstream_remote_address, { socket_address: { address: '127.0.0.1', port_value: up.port } });
  t.equal(o(o(g?.common_properties).downstream_remote_address).socket_address !== undefined, true, 'the client address');
  t.equal(g?.protocol_version, 'HTTP11');

  const p = byPath.get('/api/items');
  t.equal(o(p?.request).request_method, 'POST');
  t.equal(o(p?.request).request_body_bytes, '11', 'request body bytes');
  t.equal(Number(o(p?.response).response_body_bytes), Buffer.byteLength(post.text));

  const n = byPath.get('/nowhere');
  t.same(o(n?.response).response_code, { value: 404 });
  t.same(o(n?.common_properties).response_flags, { no_route_found: true }, 'NR');
  t.equal(o(n?.response).response_code_details, 'route_not_found');
  t.equal(o(n?.common_properties).upstream_cluster, undefined, 'no cluster for a request no route matched');

  // Two workers, one stream: the main thread holds the one call per (cluster, log_name).
  t.equal(als.streams.length, 1, 'one stream');
  const [first, ...rest] = als.streams[0].messages;
  t.same(first.identifier, { node: { id: hostname(), user_agent_name: 'remora', user_agent_version: o(o(first.identifier).node).user_agent_version }, log_name: 'edge-log' },
    'the first message names the node (the host name without xDS) and the log');
  t.ok(rest.every((m) => m.identifier === undefined), 'later messages carry no identifier');

  const metrics = (await admin(remora.adminPort, '/metrics')).text;
  t.match(metrics, /remora_access_log_grpc_entries_sent_total\{cluster="als",log_name="edge-log"\} 3/, 'sent entries counted');
  t.match(metrics, /remora_access_log_grpc_streams_total\{cluster="als",log_name="edge-log",result="opened"\} 1/);
});

t.test('the service down at first: the proxy keeps serving, held entries arrive once it is up', async (t) => {
  const alsPort = await deadPort();
  const up = await echoUpstream();
  t.teardown(() => up.close());
  const remora = await startRemora(configWith(up.port, alsPort, 'late-log'));
  t.teardown(() => remora.stop());
  const port = remora.ports.main;

  for (let i = 0; i < 20; i++) {
    const r = await request(port, { path: `/api/while-down/${i}` });
    t.equal(r.status, 200, `request ${i} served while the service is down`);
  }
  await new Promise((r) => setTimeout(r, 500)); // the workers hand them over; the main thread holds them
  const queued = (await admin(remora.adminPort, '/metrics')).text;
  t.match(queued, /remora_access_log_grpc_queue_entries\{cluster="als",log_name="late-log"\} 20/, 'the main thread holds the 20 entries');

  const als = await startAlsServer(alsPort);
  t.teardown(() => als.close());
  await waitUntil('the held entries at the service', async () => als.entries().length >= 20, 15_000, 50);
  const after = await request(port, { path: '/api/after' });
  t.equal(after.status, 200);
  await waitUntil('the entry of a request made after reconnecting', async () => als.entries().some((e) => pathOf(e) === '/api/after'), 10_000);
  const paths = als.entries().map(pathOf);
  for (let i = 0; i < 20; i++) t.ok(paths.includes(`/api/while-down/${i}`), `entry ${i} arrived after reconnecting`);
  t.equal(paths.length, 21, 'each once');
  t.equal(o(o(als.streams[0].messages[0].identifier)).log_name, 'late-log', 'the stream starts with the identifier');
  const metrics = (await admin(remora.adminPort, '/metrics')).text;
  t.match(metrics, /remora_access_log_grpc_entries_sent_total\{cluster="als",log_name="late-log"\} 21/);
  t.notMatch(metrics, /remora_access_log_grpc_entries_dropped_total\{[^}]*\} [1-9]/, 'nothing dropped');
});

t.test('over mutual TLS: the cluster\'s CA, client certificate and SAN', async (t) => {
  const pki = new TestPki('als');
  t.teardown(() => pki.remove());
  pki.ca('ca');
  pki.leaf('als', 'ca', { dns: 'als.local', uri: 'spiffe://cluster.local/ns/obs/sa/als' });
  pki.leaf('sidecar', 'ca', { uri: 'spiffe://cluster.local/ns/app/sa/app' });
  const read = (f: string): Buffer => readFileSync(pki.file(f));
  const als = await startAlsServer(0, { cert: read('als.pem'), key: read('als.key'), ca: read('ca.pem') });
  t.teardown(() => als.close());
  const up = await echoUpstream();
  t.teardown(() => up.close());
  const remora = await startRemora(configWith(up.port, als.port, 'tls-log', {
    ca_file: pki.file('ca.pem'), cert_file: pki.file('sidecar.pem'), key_file: pki.file('sidecar.key'),
    verify_subject_alt_names: ['spiffe://cluster.local/ns/obs/sa/als'],
  }));
  t.teardown(() => remora.stop());
  const r = await request(remora.ports.main, { path: '/api/secure' });
  t.equal(r.status, 200);
  await waitUntil('the entry over TLS', async () => als.entries().length >= 1, 10_000);
  t.equal(pathOf(als.entries()[0]), '/api/secure', 'the entry arrived over mutual TLS');

  // A service whose certificate has none of the SANs asked for gets nothing.
  const wrong = await startRemora(configWith(up.port, als.port, 'wrong-san', {
    ca_file: pki.file('ca.pem'), cert_file: pki.file('sidecar.pem'), key_file: pki.file('sidecar.key'),
    verify_subject_alt_names: ['spiffe://cluster.local/ns/obs/sa/impostor'],
  }));
  t.teardown(() => wrong.stop());
  t.equal((await request(wrong.ports.main, { path: '/api/unverified' })).status, 200, 'the proxy serves anyway');
  await new Promise((r) => setTimeout(r, 1500));
  t.notOk(als.entries().some((e) => pathOf(e) === '/api/unverified'), 'no entry to a service that fails verification');
  t.match((await admin(wrong.adminPort, '/metrics')).text, /remora_access_log_grpc_queue_entries\{cluster="als",log_name="wrong-san"\} 1/, 'the entry waits');
});
