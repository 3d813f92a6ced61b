// Secrets over ADS end to end: a sidecar (`remora run`, xDS bootstrap with sds_dir)
// against a scripted ADS server (test/helpers/xds.ts) serves a TLS listener whose
// certificate is a Secret. The listener waits until the Secret arrives (the sidecar asks
// for it by name), then serves it; a new version of the Secret rotates the certificate:
// new handshakes get it while a keep-alive connection opened before keeps working, with
// no failed request; an identical resend changes nothing; a Secret whose key does not fit
// its certificate is NACKed by name and the current certificate keeps serving. Real
// certificates from openssl; everything on 127.0.0.1; processes ended by pid.

import https from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { toXdsResources } from '../../src/xds/encode.js';
import { TypeUrl, type AnyMessage } from '../../src/xds/protos.js';
import { TestPki } from '../helpers/certs.js';
import { startRemora, waitUntil, type RemoraProcess } from '../helpers/remora.js';
import { arr, obj, protos, startScriptedAds, valid, type Obj } from '../helpers/xds.js';

const message = (req: Obj): string => String((req.error_detail as Obj | undefined)?.message ?? '');

t.test('a TLS listener on a Secret: warming, serving, rotation without a dropped connection, a bad Secret NACKed', async (t) => {
  const pki = new TestPki('remora-xds-sds-');
  pki.ca('ca');
  pki.leaf('v1', 'ca', { dns: 'app.local' });
  pki.leaf('v2', 'ca', { dns: 'app.local' });
  const dir = mkdtempSync(join(tmpdir(), 'remora-xds-sds-dir-'));
  const ads = await startScriptedAds();
  let sidecar: RemoraProcess | null = null;
  t.teardown(async () => {
    await sidecar?.stop();
    await ads.close();
    pki.remove();
    rmSync(dir, { recursive: true, force: true });
  });
  const pem = (f: string): string => readFileSync(pki.file(f), 'utf8');
  const secret = (leaf: string, key = leaf): Obj => ({
    name: 'gateway/app-cert',
    tls_certificate: { certificate_chain: { inline_string: pem(`${leaf}.pem`) }, private_key: { inline_string: pem(`${key}.key`) } },
  });

  // A listener answering "hello" over TLS, its certificate the Secret gateway/app-cert.
  const config = valid({
    listeners: [{
      name: 'main', address: '127.0.0.1', port: 0, tls: { cert_file: '/unused/cert.pem', key_file: '/unused/key.pem' },
      virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: 'hello' } }] }],
    }],
    clusters: [],
  });
  const r = toXdsResources(config, { edsForAllClusters: false });
  const listener = structuredClone(r.listeners.get('main')!) as Obj;
  const ts = obj(arr(listener.filter_chains)[0].transport_socket);
  const context = protos.decodeAny(ts.typed_config as AnyMessage).message;
  const common = obj(context.common_tls_context);
  delete common.tls_certificates;
  common.tls_certificate_sds_secret_configs = [{ name: 'gateway/app-cert', sds_config: { ads: {}, resource_api_version: 'V3' } }];
  ts.typed_config = protos.encodeAny(TypeUrl.DownstreamTlsContext, context);

  const starting = startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    xds: { servers: [`127.0.0.1:${ads.port}`], node: { id: 'gateway-1', cluster: 'gateway' }, initial_fetch_timeout_ms: 60_000, sds_dir: dir },
  });
  starting.catch(() => {});
  await ads.waitFor((q) => q.type_url === TypeUrl.Listener);
  ads.push(TypeUrl.Cluster, 'c1', []);
  ads.push(TypeUrl.Listener, 'l1', [listener]);
  ads.push(TypeUrl.RouteConfiguration, 'r1', [r.routes.get('main')!]);
  const ask = await ads.waitFor((q) => q.type_url === TypeUrl.Secret && (q.resource_names as string[]).includes('gateway/app-cert'));
  t.same(ask.resource_names, ['gateway/app-cert'], 'the sidecar asks for the Secret its listener names');
  const s1 = ads.push(TypeUrl.Secret, 's1', [secret('v1')]);
  t.equal(message(await ads.answer(s1)), '', 'the Secret is ACKed');
  sidecar = await starting;
  const port = sidecar.ports.main;

  const ca = readFileSync(pki.file('ca.pem'));
  const servedSerial = () =>
    new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'app.local' }, () => {
        resolve(s.getPeerCertificate().serialNumber);
        s.destroy();
      });
      s.on('error', reject);
    });
  const serial = (leaf: string): string => new X509Certificate(readFileSync(pki.file(`${leaf}.pem`))).serialNumber;
  t.equal(await servedSerial(), serial('v1'), 'the listener serves the Secret\'s certificate');

  // A keep-alive connection, and steady new connections, across the rotation.
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca, servername: 'app.local' });
  t.teardown(() => agent.destroy());
  const agentSockets: unknown[] = [];
  const get = (a: https.Agent | false) =>
    new Promise<string>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, path: '/', agent: a, ca, servername: 'app.local' }, (res) => {
        if (a !== false) agentSockets.push(res.socket);
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve(`${res.statusCode} ${body}`));
      });
      req.on('error', reject);
      req.end();
    });
  t.equal(await get(agent), '200 hello', 'a request on the keep-alive connection');
  const failures: string[] = [];
  let done = 0;
  let loading = true;
  const load = (async () => {
    while (loading) {
      const out = await get(false).catch((err: Error) => err.message);
      if (out !== '200 hello') failures.push(out);
      done++;
    }
  })();

  const s2 = ads.push(TypeUrl.Secret, 's2', [secret('v2')]);
  t.equal(message(await ads.answer(s2)), '', 'the new version is ACKed');
  await waitUntil('new handshakes to present the rotated certificate', async () => (await servedSerial()) === serial('v2'), 10_000, 100);
  t.equal(await get(agent), '200 hello', 'the keep-alive connection opened before the rotation still works');
  t.equal(agentSockets.length, 2);
  t.ok(agentSockets[0] === agentSockets[1], 'on the same TLS connection, not a new one');
  loading = false;
  await load;
  t.same(failures, [], `no failed request across the rotation (${done} requests on new connections)`);

  const same = ads.push(TypeUrl.Secret, 's3', [secret('v2')]);
  t.equal(message(await ads.answer(same)), '', 'an identical resend is ACKed');
  const bad = ads.push(TypeUrl.Secret, 's4', [secret('v1', 'v2')]);
  const nack = await ads.answer(bad);
  t.match(message(nack), /Secret "gateway\/app-cert" tls_certificate\.private_key: is not the key of certificate_chain/, `a key that does not fit is NACKed by name (${message(nack)})`);
  t.equal(nack.version_info, 's3', 'the NACK carries the version kept');
  t.equal(await servedSerial(), serial('v2'), 'the current certificate keeps serving');
});
