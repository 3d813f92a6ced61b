// Secrets over ADS (SDS) in the translation (src/xds/translate-secret.ts, sds.ts,
// resources.ts): a listener whose certificate and a cluster whose certificate and CA
// come from Secrets, in the shapes Envoy Gateway and go-control-plane send
// (tls_certificate_sds_secret_configs, validation_context_sds_secret_config,
// combined_validation_context with SAN matchers): the Secrets referenced are found, a
// resource waits while its Secret is missing, the tls blocks name the files the Secrets
// are written to, those files are written once (an identical resend writes nothing) with
// the key at mode 0600, file-based Secrets are used in place; Secrets from an SDS server
// the bootstrap names (Istio's sds-grpc, the istio-agent's socket) keyed apart from ADS
// ones; and the rejections by path: an SDS server the bootstrap does not name, one that
// is not gRPC state of the world, a key that does not fit its certificate, a Secret of
// the wrong kind, a generic secret.

import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toXdsResources } from '../../src/xds/encode.js';
import { TypeUrl, type AnyMessage } from '../../src/xds/protos.js';
import { missingResources, referencedSecrets } from '../../src/xds/resources.js';
import { parseSecretKey, secretKey, secretLabel, secretPaths, writeSecretFiles } from '../../src/xds/sds.js';
import { translateXds } from '../../src/xds/translate.js';
import { validateBootstrap } from '../../src/config/validate.js';
import { TestPki } from '../helpers/certs.js';
import { arr, baseOf, errorsOf, obj, protos, rewire, valid, type Obj } from '../helpers/xds.js';

const pki = new TestPki('remora-sds-');
pki.ca('mesh');
pki.leaf('server', 'mesh', { dns: 'app.local' });
pki.leaf('other', 'mesh', { dns: 'other.local' });
const dir = mkdtempSync(join(tmpdir(), 'remora-sds-dir-'));
t.teardown(() => {
  pki.remove();
  rmSync(dir, { recursive: true, force: true });
});
const pem = (name: string): string => readFileSync(pki.file(name), 'utf8');

const ADS = { ads: {}, resource_api_version: 'V3' };
const CONFIG = valid({
  listeners: [{
    name: 'in', address: '127.0.0.1', port: 0, tls: { cert_file: '/x/cert.pem', key_file: '/x/key.pem' },
    virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }] }],
  }],
  clusters: [{ name: 'up', endpoints: [{ address: '127.0.0.1', port: 9 }], tls: { ca_file: '/x/ca.pem', cert_file: '/x/c.pem', key_file: '/x/k.pem' } }],
});

/** The listener and cluster with their TLS contexts edited by `edit`. */
function withSecrets(editListener: (c: Obj) => void, editCluster: (c: Obj) => void, secrets: Obj[] = []) {
  const set = rewire(toXdsResources(CONFIG, { edsForAllClusters: false }));
  const l = set.listeners.get('in')!;
  const lts = obj(arr(l.filter_chains)[0].transport_socket);
  const down = protos.decodeAny(lts.typed_config as AnyMessage).message;
  editListener(obj(down.common_tls_context));
  lts.typed_config = protos.encodeAny(TypeUrl.DownstreamTlsContext, down);
  const c = set.clusters.get('up')!;
  const cts = obj(c.transport_socket);
  const up = protos.decodeAny(cts.typed_config as AnyMessage).message;
  editCluster(obj(up.common_tls_context));
  cts.typed_config = protos.encodeAny(TypeUrl.UpstreamTlsContext, up);
  const wired = rewire(set);
  const secretMap = new Map(secrets.map((s) => [String(s.name), protos.decodeAny(protos.encodeAny(TypeUrl.Secret, s)).message]));
  return { ...wired, secrets: secretMap };
}

const certSecret = (name: string, leaf: string, key = leaf): Obj => ({
  name, tls_certificate: { certificate_chain: { inline_string: pem(`${leaf}.pem`) }, private_key: { inline_bytes: Buffer.from(pem(`${key}.key`)) } },
});
const caSecret = (name: string): Obj => ({ name, validation_context: { trusted_ca: { inline_string: pem('mesh.pem') } } });

/** Envoy Gateway's listener shape and Istio's cluster shape, over ADS. */
const gatewayListener = (c: Obj): void => {
  delete c.tls_certificates;
  c.tls_certificate_sds_secret_configs = [{ name: 'default/app-cert', sds_config: ADS }];
};
const istioCluster = (c: Obj): void => {
  delete c.tls_certificates;
  delete c.validation_context;
  c.tls_certificate_sds_secret_configs = [{ name: 'default', sds_config: ADS }];
  c.combined_validation_context = {
    default_validation_context: { match_subject_alt_names: [{ exact: 'spiffe://cluster.local/ns/app/sa/up' }] },
    validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: ADS },
  };
};

t.test('Secrets referenced, warming while missing, files once received', async (t) => {
  const none = withSecrets(gatewayListener, istioCluster);
  t.same(referencedSecrets(none.listeners.get('in')!), ['default/app-cert'], 'the listener names its Secret');
  t.same(referencedSecrets(none.clusters.get('up')!).sort(), ['ROOTCA', 'default'], 'the cluster names its two');
  t.same(missingResources(none).secrets.sort(), ['ROOTCA', 'default', 'default/app-cert'], 'all missing at first');
  const waiting = translateXds(baseOf(CONFIG), none, { ads: true, sdsDir: dir });
  t.ok(waiting.ok, `accepted while the Secrets are missing (${errorsOf(waiting).join('; ')})`);
  if (waiting.ok) {
    t.same(waiting.warming, { listeners: ['in'], clusters: ['up'] }, 'both warm');
    t.same(waiting.config.listeners, [], 'and are left out of the config');
  }

  const set = withSecrets(gatewayListener, istioCluster, [certSecret('default/app-cert', 'server'), certSecret('default', 'other'), caSecret('ROOTCA')]);
  t.same(missingResources(set).secrets, [], 'nothing missing');
  const r = translateXds(baseOf(CONFIG), set, { ads: true, sdsDir: dir });
  if (!r.ok) return t.fail(errorsOf(r).join('\n'));
  t.same(r.warming, { listeners: [], clusters: [] });
  const app = secretPaths(dir, 'default/app-cert');
  t.match(r.config.listeners[0].tls, { cert_file: app.cert, key_file: app.key }, 'the listener reads the Secret\'s files');
  t.match(r.config.clusters[0].tls, {
    cert_file: secretPaths(dir, 'default').cert, key_file: secretPaths(dir, 'default').key, ca_file: secretPaths(dir, 'ROOTCA').ca,
    verify_subject_alt_names: ['spiffe://cluster.local/ns/app/sa/up'],
  }, 'the cluster: its certificate, the root CA and the default validation context\'s SAN');

  const written = writeSecretFiles(dir, set.secrets);
  t.equal(written.length, 5, `two certificates, two keys, one CA written (${written.length})`);
  t.equal(readFileSync(app.cert, 'utf8'), pem('server.pem'), 'the certificate as sent');
  t.equal(readFileSync(app.key, 'utf8'), pem('server.key'), 'the key as sent (inline_bytes)');
  t.equal((statSync(app.key).mode & 0o777).toString(8), '600', 'the key file is 0600');
  t.equal((statSync(app.dir).mode & 0o777).toString(8), '700', 'its directory 0700');
  t.same(writeSecretFiles(dir, set.secrets), [], 'an identical resend writes nothing');
  const rotated = withSecrets(gatewayListener, istioCluster, [certSecret('default/app-cert', 'other'), certSecret('default', 'other'), caSecret('ROOTCA')]);
  t.same(writeSecretFiles(dir, rotated.secrets), [app.key, app.cert], 'a new version rewrites its files only, key first');
});

t.test('file-based Secrets are read in place', async (t) => {
  const files: Obj = {
    name: 'default/app-cert',
    tls_certificate: { certificate_chain: { filename: pki.file('server.pem') }, private_key: { filename: pki.file('server.key') } },
  };
  const set = withSecrets(gatewayListener, (c) => c, [files]);
  const r = translateXds(baseOf(CONFIG), set, { ads: true, sdsDir: dir });
  if (!r.ok) return t.fail(errorsOf(r).join('\n'));
  t.match(r.config.listeners[0].tls, { cert_file: pki.file('server.pem'), key_file: pki.file('server.key') });
});

/** Istio's SdsSecretConfig: `name` from the bootstrap cluster `server` (the istio-agent's socket). */
const fromServer = (name: string, server = 'sds-grpc', api: Obj = {}): Obj => ({
  name,
  sds_config: {
    api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', set_node_on_first_message_only: true, grpc_services: [{ envoy_grpc: { cluster_name: server } }], ...api },
    initial_fetch_timeout: { seconds: 0 }, resource_api_version: 'V3',
  },
});
const agentListener = (c: Obj): void => {
  delete c.tls_certificates;
  c.tls_certificate_sds_secret_configs = [fromServer('default')];
};
const agentCluster = (c: Obj): void => {
  istioCluster(c);
  c.tls_certificate_sds_secret_configs = [fromServer('default')];
  obj(c.combined_validation_context).validation_context_sds_secret_config = fromServer('ROOTCA');
};

t.test('Secrets from an SDS server of the bootstrap (Istio\'s sds-grpc): keyed apart from ADS Secrets, warming, their own files', async (t) => {
  const servers = new Set(['sds-grpc']);
  const none = withSecrets(agentListener, agentCluster);
  const agent = (name: string): string => secretKey('sds-grpc', name);
  t.same(referencedSecrets(none.clusters.get('up')!).sort(), [agent('ROOTCA'), agent('default')].sort(), 'the cluster names its two, with their server');
  t.same(parseSecretKey(agent('default')), { server: 'sds-grpc', name: 'default' });
  t.equal(secretLabel(agent('default')), 'Secret "default" from sds-grpc');
  t.equal(secretLabel('default'), 'Secret "default"');
  const waiting = translateXds(baseOf(CONFIG), none, { ads: true, sdsDir: dir, sdsServers: servers });
  t.ok(waiting.ok, `accepted while the Secrets are missing (${errorsOf(waiting).join('; ')})`);
  if (waiting.ok) t.same(waiting.warming, { listeners: ['in'], clusters: ['up'] }, 'both warm');

  // An ADS Secret of the same name is another Secret: it does not end the wait.
  const adsNamesake = withSecrets(agentListener, agentCluster, [certSecret('default', 'server'), caSecret('ROOTCA')]);
  t.same(missingResources(adsNamesake).secrets.sort(), [agent('ROOTCA'), agent('default')].sort(), 'ADS Secrets named alike do not count');

  const received = withSecrets(agentListener, agentCluster);
  const secrets = new Map([[agent('default'), protos.decodeAny(protos.encodeAny(TypeUrl.Secret, certSecret('default', 'server'))).message],
    [agent('ROOTCA'), protos.decodeAny(protos.encodeAny(TypeUrl.Secret, caSecret('ROOTCA'))).message]]);
  const set = { ...received, secrets };
  t.same(missingResources(set).secrets, [], 'nothing missing once the server sent them');
  const r = translateXds(baseOf(CONFIG), set, { ads: true, sdsDir: dir, sdsServers: servers });
  if (!r.ok) return t.fail(errorsOf(r).join('\n'));
  const paths = secretPaths(dir, agent('default'));
  t.not(paths.dir, secretPaths(dir, 'default').dir, 'a directory apart from an ADS Secret named alike');
  t.match(r.config.listeners[0].tls, { cert_file: paths.cert, key_file: paths.key }, 'the listener reads the server\'s Secret\'s files');
  t.match(r.config.clusters[0].tls, { cert_file: paths.cert, ca_file: secretPaths(dir, agent('ROOTCA')).ca, verify_subject_alt_names: ['spiffe://cluster.local/ns/app/sa/up'] });
});

t.test('rejections, by path', async (t) => {
  const at = 'Listener "in" filter_chains[0].transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].sds_config';
  const errors = (server: string, api: Obj, servers = new Set(['sds-grpc'])): string[] =>
    errorsOf(translateXds(baseOf(CONFIG), withSecrets((c) => {
      delete c.tls_certificates;
      c.tls_certificate_sds_secret_configs = [fromServer('default', server, api)];
    }, (c) => c), { ads: true, sdsDir: dir, sdsServers: servers }));
  t.same(errors('sds-grpc', {}, new Set()), [`${at}.api_config_source.grpc_services[0].envoy_grpc.cluster_name: "sds-grpc" is not an SDS server of the bootstrap (xds.sds_servers; it names none)`],
    'a server the bootstrap does not list');
  t.same(errors('other', {}), [`${at}.api_config_source.grpc_services[0].envoy_grpc.cluster_name: "other" is not an SDS server of the bootstrap (xds.sds_servers; it names "sds-grpc")`]);
  t.same(errors('sds-grpc', { api_type: 'DELTA_GRPC' }), [`${at}.api_config_source.api_type: DELTA_GRPC is not supported (a gRPC SDS server: GRPC, state of the world)`], 'incremental SDS');
  t.same(errors('sds-grpc', { grpc_services: [{ google_grpc: { target_uri: 'unix:/x' } }] }), [
    `${at}.api_config_source.grpc_services[0].google_grpc: is not supported: name the SDS server by its bootstrap cluster (envoy_grpc.cluster_name)`,
  ]);
  t.same(errors('sds-grpc', { refresh_delay: { seconds: 1 } }), [`${at}.api_config_source.refresh_delay: field not supported by Remora`]);
  const fileBased = withSecrets((c) => {
    delete c.tls_certificates;
    c.tls_certificate_sds_secret_configs = [{ name: 'default', sds_config: { path_config_source: { path: '/etc/sds.yaml' } } }];
  }, (c) => c);
  t.same(errorsOf(translateXds(baseOf(CONFIG), fileBased, { ads: true, sdsDir: dir })), [
    `${at}: must be ads ({ads: {}}) or an api_config_source naming an SDS server of the bootstrap (xds.sds_servers)`,
  ], 'a file-based SDS config');

  const bad = withSecrets(gatewayListener, (c) => c, [certSecret('default/app-cert', 'server', 'other')]);
  t.match(errorsOf(translateXds(baseOf(CONFIG), bad, { ads: true, sdsDir: dir })).join('\n'),
    /Secret "default\/app-cert" tls_certificate\.private_key: is not the key of certificate_chain/, 'a key that does not fit: the Secret is NACKed by name');

  const wrongKind = withSecrets(gatewayListener, (c) => c, [caSecret('default/app-cert')]);
  t.match(errorsOf(translateXds(baseOf(CONFIG), wrongKind, { ads: true, sdsDir: dir })).join('\n'),
    /tls_certificate_sds_secret_configs\[0\]\.name: Secret "default\/app-cert" holds no tls_certificate/, 'a CA Secret named as a certificate');

  const generic = withSecrets((c) => c, (c) => c, [{ name: 'token', generic_secret: { secret: { inline_string: 'x' } } }]);
  t.match(errorsOf(translateXds(baseOf(CONFIG), generic, { ads: true, sdsDir: dir })).join('\n'), /Secret "token" generic_secret: field not supported/, 'a generic secret');

  const both = withSecrets((c) => {
    c.tls_certificate_sds_secret_configs = [{ name: 'x', sds_config: ADS }];
  }, (c) => c);
  t.match(errorsOf(translateXds(baseOf(CONFIG), both, { ads: true, sdsDir: dir })).join('\n'), /not allowed together with tls_certificates \(Envoy takes one of them\)/, 'a file certificate and a Secret: one or the other');
});

t.test('xds.sds_servers in the bootstrap: Unix sockets or HOST:PORT, each bad one by path', async (t) => {
  const boot = (sds: unknown) => validateBootstrap({ xds: { servers: ['cp:18000'], node: { id: 'n', cluster: 'c' }, sds_servers: sds } });
  const ok = boot({ 'sds-grpc': 'unix:/var/run/secrets/workload-spiffe-uds/socket', agent: 'unix:///run/agent.sock', remote: 'sds.local:15012', v6: '[fd00::1]:8234' });
  t.ok(ok.ok, `sockets and host:port accepted (${ok.ok ? '' : JSON.stringify(ok.errors)})`);
  const bad = boot({ relative: 'unix:run/sds.sock', scheme: 'grpc://sds:1', spaces: 'unix:/a b', number: 7 });
  t.same(bad.ok ? [] : bad.errors.map((e) => `${e.path}: ${e.message}`).sort(), [
    'xds.sds_servers.number: must be a string (`unix:PATH` or `HOST:PORT`)',
    'xds.sds_servers.relative: must be unix:/absolute/path or HOST:PORT, got "unix:run/sds.sock"',
    'xds.sds_servers.scheme: must be unix:/absolute/path or HOST:PORT, got "grpc://sds:1"',
    'xds.sds_servers.spaces: must be unix:/absolute/path or HOST:PORT, got "unix:/a b"',
  ]);
});
