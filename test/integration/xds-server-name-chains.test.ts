// An HTTPS listener whose filter chains are picked by server name, over ADS, as Envoy
// Gateway writes one for a Gateway with several HTTPS hosts on one port: each chain has
// `filter_chain_match.server_names`, its certificate from an SDS Secret and its own
// RouteConfiguration over RDS. A fresh sidecar (`remora run`, xDS bootstrap) asks for both
// Secrets and both route configurations, ACKs, and serves each host name its certificate
// and its routes (whatever the Host); a name no chain lists is refused, as in Envoy. A
// chain whose HttpConnectionManager differs from the first in more than its routes is
// NACKed by name. Real certificates from openssl; everything on 127.0.0.1.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type tls from 'node:tls';
import t from 'tap';
import { toXdsResources } from '../../src/xds/encode.js';
import { TypeUrl, type AnyMessage } from '../../src/xds/protos.js';
import { TestPki } from '../helpers/certs.js';
import { startRemora, type RemoraProcess } from '../helpers/remora.js';
import { arr, obj, protos, startScriptedAds, valid, type Obj } from '../helpers/xds.js';

const message = (req: Obj): string => String((req.error_detail as Obj | undefined)?.message ?? '');

t.test('chains by server name from ADS: each host its certificate (SDS) and routes (RDS)', async (t) => {
  const pki = new TestPki('remora-xds-sni-chains-');
  pki.ca('ca');
  pki.leaf('foo', 'ca', { dns: 'foo.example' });
  pki.leaf('bar', 'ca', { dns: '*.bar.example' });
  const dir = mkdtempSync(join(tmpdir(), 'remora-xds-sni-chains-dir-'));
  const ads = await startScriptedAds();
  let sidecar: RemoraProcess | null = null;
  t.teardown(async () => {
    await sidecar?.stop();
    await ads.close();
    pki.remove();
    rmSync(dir, { recursive: true, force: true });
  });
  const pem = (f: string): string => readFileSync(pki.file(f), 'utf8');
  const secret = (name: string, leaf: string): Obj => ({ name, tls_certificate: { certificate_chain: { inline_string: pem(`${leaf}.pem`) }, private_key: { inline_string: pem(`${leaf}.key`) } } });

  // Route configurations named after Remora listeners: each answers every request with
  // its host's name (both name their virtual host and route `all`, as a control plane may).
  const answering = (name: string, body: string): Obj => ({
    name, address: '127.0.0.1', port: 0, tls: { cert_file: '/unused/cert.pem', key_file: '/unused/key.pem' },
    virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'all', match: { prefix: '/' }, direct_response: { status: 200, body } }] }],
  });
  const r = toXdsResources(valid({ listeners: [answering('foo-routes', 'foo'), answering('bar-routes', 'bar')], clusters: [] }), { edsForAllClusters: false });
  const listener = structuredClone(r.listeners.get('foo-routes')!) as Obj;
  listener.name = 'https-443';
  const chain = (serverName: string, secretName: string, routes: string): Obj => {
    const c = structuredClone(arr(listener.filter_chains)[0]);
    c.filter_chain_match = { server_names: [serverName] };
    const ts = obj(c.transport_socket);
    const context = protos.decodeAny(ts.typed_config as AnyMessage).message;
    const common = obj(context.common_tls_context);
    delete common.tls_certificates;
    common.tls_certificate_sds_secret_configs = [{ name: secretName, sds_config: { ads: {}, resource_api_version: 'V3' } }];
    ts.typed_config = protos.encodeAny(TypeUrl.DownstreamTlsContext, context);
    const filter = arr(c.filters)[0];
    const hcm = protos.decodeAny(filter.typed_config as AnyMessage).message;
    hcm.rds = { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: routes };
    delete hcm.route_config;
    filter.typed_config = protos.encodeAny(TypeUrl.HttpConnectionManager, hcm);
    return c;
  };
  listener.filter_chains = [chain('foo.example', 'gateway/foo-cert', 'https-443/foo'), chain('*.bar.example', 'gateway/bar-cert', 'https-443/bar')];
  const routeConfig = (from: string, name: string): Obj => ({ ...structuredClone(r.routes.get(from)!), name });

  const starting = startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    xds: { servers: [`127.0.0.1:${ads.port}`], node: { id: 'gateway-1', cluster: 'gateway' }, initial_fetch_timeout_ms: 60_000, sds_dir: dir },
  });
  starting.catch(() => {});
  await ads.waitFor((q) => q.type_url === TypeUrl.Listener);
  ads.push(TypeUrl.Cluster, 'c1', []);
  const l1 = ads.push(TypeUrl.Listener, 'l1', [listener]);
  const routesAsked = await ads.waitFor((q) => q.type_url === TypeUrl.RouteConfiguration && (q.resource_names as string[]).length === 2);
  t.same([...(routesAsked.resource_names as string[])].sort(), ['https-443/bar', 'https-443/foo'], 'the sidecar asks for each chain\'s route configuration');
  const secretsAsked = await ads.waitFor((q) => q.type_url === TypeUrl.Secret && (q.resource_names as string[]).length === 2);
  t.same([...(secretsAsked.resource_names as string[])].sort(), ['gateway/bar-cert', 'gateway/foo-cert'], 'and for each chain\'s Secret');
  ads.push(TypeUrl.RouteConfiguration, 'r1', [routeConfig('foo-routes', 'https-443/foo'), routeConfig('bar-routes', 'https-443/bar')]);
  const s1 = ads.push(TypeUrl.Secret, 's1', [secret('gateway/foo-cert', 'foo'), secret('gateway/bar-cert', 'bar')]);
  t.equal(message(await ads.answer(s1)), '', 'the Secrets are ACKed');
  t.equal(message(await ads.answer(l1)), '', 'the listener is ACKed');
  sidecar = await starting;
  const port = sidecar.ports['https-443'];

  const ca = readFileSync(pki.file('ca.pem'));
  const get = (servername: string, host: string): Promise<string> =>
    new Promise((resolve) => {
      const req = https.get({ host: '127.0.0.1', port, path: '/', headers: { host }, servername, ca, agent: false }, (res) => {
        const cn = String((res.socket as tls.TLSSocket).getPeerCertificate().subject?.CN ?? '');
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(`${res.statusCode} ${body} (${cn})`));
      });
      req.on('error', (err: Error & { code?: string }) => resolve(`error ${err.code ?? err.message}`));
    });
  t.same([await get('foo.example', 'foo.example'), await get('a.bar.example', 'foo.example'), await get('other.example', 'other.example')],
    ['200 foo (foo)', '200 bar (bar)', 'error ECONNRESET'],
    'expected each server name to get its chain\'s certificate (verified) and routes, and a name no chain lists to be refused');

  // A chain whose connection manager differs in more than its routes is NACKed by name.
  const odd = structuredClone(listener);
  const filter = arr(arr(odd.filter_chains)[1].filters)[0];
  const hcm = protos.decodeAny(filter.typed_config as AnyMessage).message;
  hcm.max_request_headers_kb = { value: 30 };
  filter.typed_config = protos.encodeAny(TypeUrl.HttpConnectionManager, hcm);
  const nack = await ads.answer(ads.push(TypeUrl.Listener, 'l2', [odd]));
  t.match(message(nack), /Listener "https-443" filter_chains\[1\]\.filters\[0\]\.typed_config: differs from filter_chains\[0\]\.filters\[0\]\.typed_config's HttpConnectionManager in max_request_headers_kb/,
    `expected a NACK naming the chain and the field (${message(nack)})`);
  t.equal(await get('foo.example', 'foo.example'), '200 foo (foo)', 'the accepted listener keeps serving');
});
