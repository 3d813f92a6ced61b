// Secrets from an SDS server of its own, end to end, in Istio's shape: a sidecar (`remora
// run`, xDS bootstrap with sds_servers naming `sds-grpc`, a Unix socket) gets its
// listeners and clusters from a scripted ADS server, and its workload certificate
// (`default`) and trust bundle (`ROOTCA`) from a scripted Secret Discovery Service on the
// socket (StreamSecrets, what the istio-agent serves), as Istio's sidecars do. The
// inbound listener requires client certificates (mutual TLS) and the outbound cluster
// presents the workload certificate to an upstream that requires one. Checked: the
// sidecar asks the SDS server for exactly the names its resources use, with its node;
// nothing serves until they arrive; then both directions work with the Secrets'
// certificates; a new `default` rotates both; a bad Secret is NACKed by name on the SDS
// stream and the current one keeps serving; an SdsSecretConfig naming a server the
// bootstrap lacks is NACKed on the ADS stream. Then Istio's automatic mTLS: a cluster
// with `tlsMode-istio` and `tlsMode-disabled` transport_socket_matches and two endpoints,
// one with a sidecar (metadata `tlsMode: istio`, reached over mutual TLS) and one without
// (plaintext), both health-checked each in its own transport and both serving. Both TLS
// contexts carry Istio's ALPN list: every TLS connection offers `istio`, then the version
// it speaks, as an Istio sidecar does (never istio-peer-exchange, whose metadata exchange
// framing Remora does not speak); the clusters carry Istio's metadata exchange filter. Real certificates from openssl, a real
// HTTPS upstream; everything on 127.0.0.1 and a socket in a temp directory.

import http from 'node:http';
import https from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import t from 'tap';
import { toXdsResources } from '../../src/xds/encode.js';
import { TypeUrl, type AnyMessage } from '../../src/xds/protos.js';
import { TestPki } from '../helpers/certs.js';
import { CLUSTER_METADATA_EXCHANGE } from '../helpers/istio.js';
import { admin, startRemora, waitUntil, type RemoraProcess } from '../helpers/remora.js';
import { arr, obj, protos, startScriptedAds, valid, type Obj } from '../helpers/xds.js';

const REVIEWS = 'outbound|9080||reviews.default.svc.cluster.local';
/** What Istio writes on its mutual-TLS clusters (metadata exchange on, HTTP/1.1). */
const ISTIO_ALPN = ['istio-peer-exchange', 'istio'];
const message = (req: Obj): string => String((req.error_detail as Obj | undefined)?.message ?? '');

/** Istio's SdsSecretConfig: the Secret `name` from the bootstrap's SDS server `server`. */
const fromSds = (name: string, server = 'sds-grpc'): Obj => ({
  name,
  sds_config: {
    api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', set_node_on_first_message_only: true, grpc_services: [{ envoy_grpc: { cluster_name: server } }] },
    initial_fetch_timeout: { seconds: 0 },
    resource_api_version: 'V3',
  },
});

/** Replaces the common_tls_context of a transport socket's TLS context (decoded, edited, encoded). */
function editTls(ts: Obj, typeUrl: string, edit: (context: Obj) => void): void {
  const context = protos.decodeAny(ts.typed_config as AnyMessage).message;
  edit(context);
  ts.typed_config = protos.encodeAny(typeUrl, context);
}

t.test('Istio-shaped mTLS with certificates from an SDS server of its own (sds-grpc on a Unix socket)', async (t) => {
  const pki = new TestPki('remora-sds-server-');
  pki.ca('root');
  pki.leaf('workload-v1', 'root', { uri: 'spiffe://cluster.local/ns/default/sa/app', dns: 'app.local' });
  pki.leaf('workload-v2', 'root', { uri: 'spiffe://cluster.local/ns/default/sa/app', dns: 'app.local' });
  pki.leaf('backend', 'root', { uri: 'spiffe://cluster.local/ns/default/sa/backend' });
  pki.leaf('caller', 'root', { uri: 'spiffe://cluster.local/ns/default/sa/caller' });
  const dir = mkdtempSync(join(tmpdir(), 'remora-sds-server-dir-'));
  const pem = (f: string): string => readFileSync(pki.file(f), 'utf8');

  // The upstream: HTTPS requiring a client certificate from the mesh CA; it answers with
  // the SANs and serial of the certificate the caller presented.
  // It records what each client offered by ALPN and, as an Istio sidecar's inbound
  // listener does, takes the connection on its mTLS chain only if `istio` is among them,
  // and selects by its own list (h2, http/1.1) what it speaks.
  const offered = new Set<string>();
  const upstream = https.createServer(
    {
      cert: pem('backend.pem'), key: pem('backend.key'), ca: pem('root.pem'), requestCert: true, rejectUnauthorized: true,
      ALPNCallback: ({ protocols }: { protocols: string[] }) => {
        offered.add(protocols.join(','));
        return protocols.includes('istio') ? protocols.find((p) => p === 'http/1.1') : undefined;
      },
    },
    (req, res) => {
      const peer = (req.socket as tls.TLSSocket).getPeerCertificate();
      // One request per connection: each is a new handshake (pooled connections keep the
      // certificate they were opened with across a rotation).
      res.setHeader('connection', 'close');
      res.end(`${peer.subjectaltname ?? ''} serial=${peer.serialNumber}`);
    },
  );
  upstream.on('secureConnection', (s: tls.TLSSocket) => {
    if (s.alpnProtocol === false) offered.add('(none)'); // the client offered nothing
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamPort = (upstream.address() as { port: number }).port;
  // An endpoint without a sidecar: plaintext HTTP.
  const plain = http.createServer((req, res) => res.end(req.url === '/healthz' ? 'ok' : 'plaintext'));
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  const plainPort = (plain.address() as { port: number }).port;

  const ads = await startScriptedAds();
  const sdsServer = await startScriptedAds({ sdsSocket: join(dir, 'sds.sock') });
  let sidecar: RemoraProcess | null = null;
  t.teardown(async () => {
    await sidecar?.stop();
    await ads.close();
    await sdsServer.close();
    await new Promise((r) => upstream.close(r));
    await new Promise((r) => plain.close(r));
    pki.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  // Native shapes first, then Istio's TLS contexts in place of their files.
  const config = valid({
    listeners: [{
      name: 'inbound', address: '127.0.0.1', port: 0,
      tls: { cert_file: '/unused/cert.pem', key_file: '/unused/key.pem', ca_file: '/unused/ca.pem', require_client_certificate: true },
      virtual_hosts: [{
        name: 'all', domains: ['*'], routes: [
          { match: { prefix: '/backend' }, route: { cluster: 'outbound|443||backend.default.svc.cluster.local' } },
          { match: { prefix: '/reviews' }, route: { cluster: REVIEWS } },
          { match: { prefix: '/' }, direct_response: { status: 200, body: 'hello' } },
        ],
      }],
    }],
    clusters: [{
      name: 'outbound|443||backend.default.svc.cluster.local', endpoints: [{ address: '127.0.0.1', port: upstreamPort }],
      tls: { ca_file: '/unused/ca.pem', verify_subject_alt_names: ['spiffe://cluster.local/ns/default/sa/backend'] },
    }, {
      name: REVIEWS,
      endpoints: [{ address: '127.0.0.1', port: upstreamPort, transport_socket_match: { tlsMode: 'istio' } }, { address: '127.0.0.1', port: plainPort }],
      tls: { ca_file: '/unused/ca.pem', verify_subject_alt_names: ['spiffe://cluster.local/ns/default/sa/backend'] },
      transport_socket_matches: [{ name: 'tlsMode-istio', match: { tlsMode: 'istio' }, tls: true }, { name: 'tlsMode-disabled', tls: false }],
      health_check: { path: '/healthz', interval_ms: 200, timeout_ms: 1000, healthy_threshold: 1, unhealthy_threshold: 1 },
    }],
  });
  const r = toXdsResources(config, { edsForAllClusters: false });
  const listener = structuredClone(r.listeners.get('inbound')!) as Obj;
  editTls(obj(arr(listener.filter_chains)[0].transport_socket), TypeUrl.DownstreamTlsContext, (c) => {
    c.common_tls_context = {
      tls_certificate_sds_secret_configs: [fromSds('default')],
      combined_validation_context: { default_validation_context: {}, validation_context_sds_secret_config: fromSds('ROOTCA') },
    };
  });
  /** Istio's outbound mTLS context: the agent's certificate and trust bundle, the peer's
   *  SPIFFE ID, Istio's ALPN list. */
  const outboundMtls = (c: Obj): void => {
    c.common_tls_context = {
      alpn_protocols: ISTIO_ALPN,
      tls_certificate_sds_secret_configs: [fromSds('default')],
      combined_validation_context: {
        default_validation_context: { match_subject_alt_names: [{ exact: 'spiffe://cluster.local/ns/default/sa/backend' }] },
        validation_context_sds_secret_config: fromSds('ROOTCA'),
      },
    };
  };
  const cluster = structuredClone(r.clusters.get('outbound|443||backend.default.svc.cluster.local')!) as Obj;
  cluster.filters = [CLUSTER_METADATA_EXCHANGE];
  editTls(obj(cluster.transport_socket), TypeUrl.UpstreamTlsContext, outboundMtls);
  // Istio's shape: no transport_socket of the cluster's own, the TLS entry from the agent.
  const reviews = structuredClone(r.clusters.get(REVIEWS)!) as Obj;
  delete reviews.transport_socket;
  reviews.filters = [CLUSTER_METADATA_EXCHANGE];
  editTls(obj(arr(reviews.transport_socket_matches)[0].transport_socket), TypeUrl.UpstreamTlsContext, outboundMtls);
  const workload = (leaf: string, key = leaf): Obj => ({
    name: 'default',
    tls_certificate: { certificate_chain: { inline_string: pem(`${leaf}.pem`) }, private_key: { inline_string: pem(`${key}.key`) } },
  });
  const rootCa = { name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: pem('root.pem') } } };

  const starting = startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    xds: {
      servers: [`127.0.0.1:${ads.port}`], node: { id: 'sidecar~10.0.0.1~app.default~default.svc.cluster.local', cluster: 'app.default' },
      initial_fetch_timeout_ms: 60_000, sds_dir: join(dir, 'secrets'), sds_servers: { 'sds-grpc': `unix:${join(dir, 'sds.sock')}` },
    },
  });
  starting.catch(() => {});
  await ads.waitFor((q) => q.type_url === TypeUrl.Listener);
  const c1 = ads.push(TypeUrl.Cluster, 'c1', [cluster, reviews]);
  const l1 = ads.push(TypeUrl.Listener, 'l1', [listener]);
  ads.push(TypeUrl.RouteConfiguration, 'r1', [r.routes.get('inbound')!]);
  t.equal(message(await ads.answer(c1)), '', 'the cluster is ACKed while its Secrets are on their way');
  t.equal(message(await ads.answer(l1)), '', 'the listener is ACKed while its Secrets are on their way');

  const ask = await sdsServer.waitFor((q) => q.type_url === TypeUrl.Secret && arr(q.resource_names).length === 2);
  t.same(ask.resource_names, ['ROOTCA', 'default'], 'the sidecar asks the SDS server for the names its listener and cluster use');
  t.equal(obj(sdsServer.requests[0].node).id, 'sidecar~10.0.0.1~app.default~default.svc.cluster.local', 'with its node on the first request');
  t.notOk(ads.requests.some((q) => q.type_url === TypeUrl.Secret && arr(q.resource_names).length > 0), 'and does not ask the ADS server for them');

  const s1 = sdsServer.push(TypeUrl.Secret, 's1', [workload('workload-v1'), rootCa]);
  t.equal(message(await sdsServer.answer(s1)), '', 'the Secrets are ACKed on the SDS stream');
  sidecar = await starting;
  const port = sidecar.ports.inbound;

  const caller = { ca: pem('root.pem'), cert: pem('caller.pem'), key: pem('caller.key'), servername: 'app.local' };
  const get = (path: string, client: Partial<typeof caller> = caller) =>
    new Promise<string>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, path, agent: false, ...client }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve(`${res.statusCode} ${body}`));
      });
      req.on('error', reject);
      req.end();
    });
  const servedSerial = () =>
    new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, ...caller }, () => {
        resolve(s.getPeerCertificate().serialNumber);
        s.destroy();
      });
      s.on('error', reject);
    });
  const serial = (leaf: string): string => new X509Certificate(readFileSync(pki.file(`${leaf}.pem`))).serialNumber;

  t.equal(await get('/'), '200 hello', 'inbound: a caller with a mesh certificate is served');
  t.equal(await servedSerial(), serial('workload-v1'), 'inbound: the listener presents the workload certificate `default`');
  const anonymous = await get('/', { ca: caller.ca, servername: caller.servername }).catch((err: Error) => `refused: ${err.message}`);
  t.match(anonymous, /^refused|^4/, `inbound: a caller without a certificate is refused (${anonymous})`);
  t.equal(
    await get('/backend'),
    `200 DNS:app.local, URI:spiffe://cluster.local/ns/default/sa/app serial=${serial('workload-v1')}`,
    'outbound: the upstream sees the workload certificate `default` as the client certificate',
  );

  // Rotation: a new `default` reaches both directions; nothing else is sent again.
  const s2 = sdsServer.push(TypeUrl.Secret, 's2', [workload('workload-v2'), rootCa]);
  t.equal(message(await sdsServer.answer(s2)), '', 'the new workload certificate is ACKed');
  await waitUntil('new handshakes to present the rotated certificate', async () => (await servedSerial()) === serial('workload-v2'), 10_000, 100);
  await waitUntil('the upstream to see the rotated client certificate', async () => (await get('/backend')).endsWith(`serial=${serial('workload-v2')}`), 10_000, 100);

  // A Secret whose key does not fit: NACKed by name on the SDS stream, v2 keeps serving.
  const bad = sdsServer.push(TypeUrl.Secret, 's3', [workload('workload-v1', 'workload-v2'), rootCa]);
  const nack = await sdsServer.answer(bad);
  t.match(message(nack), /Secret "default" tls_certificate\.private_key: is not the key of certificate_chain/, `a bad Secret is NACKed by name (${message(nack)})`);
  t.equal(nack.version_info, 's2', 'the NACK carries the version kept');
  t.equal(await servedSerial(), serial('workload-v2'), 'the current certificate keeps serving');
  t.equal(await get('/'), '200 hello');

  // A TLS context naming an SDS server the bootstrap does not list: the cluster is NACKed.
  const stray = structuredClone(cluster);
  stray.name = 'outbound|443||other.default.svc.cluster.local';
  editTls(obj(stray.transport_socket), TypeUrl.UpstreamTlsContext, (c) => {
    obj(c.common_tls_context).tls_certificate_sds_secret_configs = [fromSds('default', 'other-sds')];
  });
  const c2 = ads.push(TypeUrl.Cluster, 'c2', [cluster, reviews, stray]);
  const nack2 = await ads.answer(c2);
  t.match(message(nack2), /Cluster "outbound\|443\|\|other\.default\.svc\.cluster\.local" transport_socket.*envoy_grpc\.cluster_name: "other-sds" is not an SDS server of the bootstrap \(xds\.sds_servers; it names "sds-grpc"\)/,
    `an unknown SDS server is NACKed with its path (${message(nack2)})`);
  t.equal(await get('/backend').then((s) => s.slice(0, 3)), '200', 'the cluster applied before keeps serving');

  // Istio's automatic mTLS: the endpoint with a sidecar over mutual TLS, the other in
  // plaintext; both pass their health checks (each in its own transport), so both serve.
  const seen = new Set<string>();
  await waitUntil('both reviews endpoints to answer', async () => {
    const out = await get('/reviews');
    seen.add(out.startsWith('200 DNS:app.local') ? 'mtls' : out);
    return seen.size === 2;
  }, 10_000, 20);
  t.same([...seen].sort(), ['200 plaintext', 'mtls'], 'one endpoint over mutual TLS with the workload certificate, the other in plaintext');
  // Several health-check rounds later (one failure would eject), both still serve.
  await new Promise((r) => setTimeout(r, 800));
  const later = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const out = await get('/reviews');
    later.add(out.startsWith('200 DNS:app.local') ? 'mtls' : out);
  }
  t.same([...later].sort(), ['200 plaintext', 'mtls'], 'both pass their health checks, each in its own transport');
  t.same([...offered], ['istio,http/1.1'], 'every connection to the upstream (requests and health checks) offered "istio", then the version it speaks (never istio-peer-exchange)');
  const dump = JSON.parse((await admin(sidecar.adminPort, '/config_dump')).body.toString()) as { config: { clusters: { name: string; transport_socket_matches?: unknown }[] } };
  t.same(dump.config.clusters.find((c) => c.name === REVIEWS)?.transport_socket_matches, [
    { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, tls: true }, { name: 'tlsMode-disabled', match: {}, tls: false },
  ], '/config_dump shows the entries');
});
