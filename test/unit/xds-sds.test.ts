// Secrets over ADS (SDS) in the translation (src/xds/translate-secret.ts, sds.ts,
// resources.ts): a listener whose certificate and a cluster whose certificate and CA
// come from Secrets, in the shapes Envoy Gateway and go-control-plane send
// (tls_certificate_sds_secret_configs, validation_context_sds_secret_config,
// combined_validation_context with SAN matchers): the Secrets referenced are found, a
// resource waits while its Secret is missing, the tls blocks name the files the Secrets
// are written to, those files are written once (an identical resend writes nothing) with
// the key at mode 0600, file-based Secrets are used in place; and the rejections by path:
// a Secret from a separate SDS server (Istio's istio-agent socket), a key that does not
// fit its certificate, a Secret of the wrong kind, a generic secret.

import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toXdsResources } from '../../src/xds/encode.js';
import { TypeUrl, type AnyMessage } from '../../src/xds/protos.js';
import { missingResources, referencedSecrets } from '../../src/xds/resources.js';
import { secretPaths, writeSecretFiles } from '../../src/xds/sds.js';
import { translateXds } from '../../src/xds/translate.js';
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

t.test('rejections, by path', async (t) => {
  const istioAgent = withSecrets((c) => {
    delete c.tls_certificates;
    c.tls_certificate_sds_secret_configs = [{
      name: 'default',
      sds_config: { api_config_source: { api_type: 'GRPC', grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }] }, resource_api_version: 'V3' },
    }];
  }, (c) => c);
  t.match(errorsOf(translateXds(baseOf(CONFIG), istioAgent, { ads: true, sdsDir: dir })).join('\n'),
    /Listener "in" filter_chains\[0\]\.transport_socket\.typed_config\.common_tls_context\.tls_certificate_sds_secret_configs\[0\]\.sds_config: only Secrets over ADS/,
    'a separate SDS server (Istio\'s agent socket) is refused with its path');

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
  t.match(errorsOf(translateXds(baseOf(CONFIG), both, { ads: true, sdsDir: dir })).join('\n'), /Remora uses one certificate/, 'a file certificate and a Secret: one too many');
});
