// Secrets (SDS over ADS) in the translation (part of src/xds/translate.ts; sds.ts has
// the files): a Secret received is checked on its own (a certificate with its key, or a
// validation context's CA; PEM that parses and a key that fits the certificate), so a
// bad one is NACKed by name; a TLS context that names a Secret through
// `*_sds_secret_config(s)` gets the Secret's files as cert_file, key_file or ca_file.
// A Secret comes over ADS (`sds_config: {ads: {}}`) or from an SDS server of its own
// named in the bootstrap (`api_config_source` with one `envoy_grpc.cluster_name` that
// xds.sds_servers lists: Istio's `sds-grpc`, the istio-agent's socket); other sources
// (a file-based SDS config, a server the bootstrap does not name) are rejected with their
// path. A Secret not received yet makes the resource that names it wait (Envoy's warming).

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { TypeUrl } from './protos.js';
import { asObj, asStr, isSet, type Obj } from './read.js';
import { dataSource, secretKey, secretLabel, secretPaths } from './sds.js';
import { grpcServer, root, sub, type Ctx, type GrpcServerRole, type Loc } from './translate-context.js';
import type { Fields } from './translate-fields.js';

const SOURCES = 'must be ads ({ads: {}}) or an api_config_source naming an SDS server of the bootstrap (xds.sds_servers)';
const SAN_MATCHERS = ['match_typed_subject_alt_names', 'match_subject_alt_names'];

/** Checks a Secret received (rejections under its own name). */
export function checkSecret(ctx: Ctx, key: string, secret: Obj): void {
  const loc = root(TypeUrl.Secret, key);
  if (asStr(secret.name) !== undefined && secret.name !== '' && secret.name !== key) ctx.reject(sub(loc, 'name'), `"${String(secret.name)}" does not match the resource name "${key}"`);
  ctx.only(secret, loc, ['name', 'tls_certificate', 'validation_context']);
  const cert = asObj(secret.tls_certificate);
  const vc = asObj(secret.validation_context);
  if (cert === undefined && vc === undefined) {
    ctx.reject(loc, 'holds neither tls_certificate nor validation_context (generic secrets and session ticket keys are not supported)');
    return;
  }
  if (cert !== undefined) {
    const cl = sub(loc, 'tls_certificate');
    ctx.only(cert, cl, ['certificate_chain', 'private_key']);
    const chain = pem(ctx, cert.certificate_chain, sub(cl, 'certificate_chain'));
    const key = pem(ctx, cert.private_key, sub(cl, 'private_key'));
    if (chain !== null && key !== null) {
      try {
        if (!new X509Certificate(chain).checkPrivateKey(createPrivateKey(key))) ctx.reject(sub(cl, 'private_key'), 'is not the key of certificate_chain');
      } catch (err) {
        ctx.reject(cl, `does not parse: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
  if (vc !== undefined) {
    const vl = sub(loc, 'validation_context');
    ctx.only(vc, vl, ['trusted_ca', ...SAN_MATCHERS]);
    const ca = pem(ctx, vc.trusted_ca, sub(vl, 'trusted_ca'));
    if (ca !== null) {
      try {
        new X509Certificate(ca); // eslint-disable-line no-new
      } catch (err) {
        ctx.reject(sub(vl, 'trusted_ca'), `does not parse: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}

/** A DataSource's PEM text (inline, or read from its file when that exists); null when
 *  rejected or when a named file cannot be read here (it is checked when applied). */
function pem(ctx: Ctx, v: unknown, loc: Loc): string | null {
  const ds = dataSource(v);
  if (ds.kind === 'unsupported') ctx.reject(sub(loc, ds.field), 'is not supported: inline_bytes, inline_string or filename');
  else if (ds.kind === 'empty') ctx.reject(loc, 'is required');
  else if (ds.kind === 'inline') return ds.data.toString('utf8');
  else {
    try {
      return readFileSync(ds.path, 'utf8');
    } catch {
      return null;
    }
  }
  return null;
}

/** An SdsSecretConfig → the Secret's key (secretKey), or undefined (rejected). */
function secretName(ctx: Ctx, v: unknown, loc: Loc): string | undefined {
  const c = asObj(v) ?? {};
  ctx.only(c, loc, ['name', 'sds_config']);
  const name = asStr(c.name) ?? '';
  if (name === '') ctx.reject(sub(loc, 'name'), 'is required');
  const sl = sub(loc, 'sds_config');
  const source = asObj(c.sds_config);
  const api = asObj(source?.api_config_source);
  if (source === undefined || (asObj(source.ads) === undefined && api === undefined)) {
    ctx.reject(sl, SOURCES);
    return undefined;
  }
  ctx.only(source, sl, ['ads', 'api_config_source', 'resource_api_version', 'initial_fetch_timeout']);
  if (isSet(source.resource_api_version) && source.resource_api_version !== 'V3') ctx.reject(sub(sl, 'resource_api_version'), 'only V3 is supported');
  // Remora's warming waits for a Secret as long as it takes.
  if (isSet(source.initial_fetch_timeout)) ctx.noEffect(loc, 'SdsSecretConfig.sds_config.initial_fetch_timeout');
  const server = api === undefined ? null : sdsServer(ctx, api, sub(sl, 'api_config_source'));
  return name === '' || server === undefined ? undefined : secretKey(server, name);
}

/** Secrets' sources: Remora's SDS streams are gRPC, state of the world (StreamSecrets,
 *  what the istio-agent serves). */
const SDS_SERVER: GrpcServerRole = { server: 'SDS server', types: ['GRPC'], typesText: 'GRPC, state of the world', has: "one of the bootstrap's xds.sds_servers" };

/** An SdsSecretConfig's api_config_source → the SDS server it names (xds.sds_servers), or
 *  undefined (rejected). A name the bootstrap does not list is rejected, not read as the
 *  ADS server as an RDS or EDS source's is: a Secret's server is usually a node agent of
 *  its own (Istio's), and the resource would otherwise wait for it forever, unexplained. */
function sdsServer(ctx: Ctx, api: Obj, loc: Loc): string | undefined {
  const cluster = grpcServer(ctx, api, loc, SDS_SERVER);
  if (cluster === undefined) return undefined;
  const known = ctx.sds?.servers ?? new Set<string>();
  if (!known.has(cluster)) {
    const listed = known.size === 0 ? 'it names none' : `it names ${[...known].map((n) => `"${n}"`).join(', ')}`;
    ctx.reject(sub(loc, 'grpc_services[0].envoy_grpc.cluster_name'), `"${cluster}" is not an SDS server of the bootstrap (xds.sds_servers; ${listed})`);
    return undefined;
  }
  return cluster;
}

/** tls_certificate_sds_secret_configs[0] → cert_file and key_file in `part`. */
export function sdsCertificate(ctx: Ctx, v: unknown, loc: Loc, part: Fields): void {
  const key = secretName(ctx, v, loc);
  if (key === undefined) return;
  const secret = ctx.secret(key, loc);
  const paths = secretPaths(ctx.sds?.dir ?? '', key);
  if (secret === undefined) {
    part.set('cert_file', paths.cert, loc); // stand-ins while it warms
    part.set('key_file', paths.key, loc);
    return;
  }
  const cert = asObj(secret.tls_certificate);
  if (cert === undefined) {
    ctx.reject(sub(loc, 'name'), `${secretLabel(key)} holds no tls_certificate`);
    return;
  }
  part.set('cert_file', fileOf(cert.certificate_chain, paths.cert), loc);
  part.set('key_file', fileOf(cert.private_key, paths.key), loc);
}

/** validation_context_sds_secret_config (alone, or in combined_validation_context with
 *  `defaults`) → ca_file in `part`; returns the validation context to read SAN matchers
 *  from (the defaults' over the Secret's). */
export function sdsValidation(ctx: Ctx, v: unknown, loc: Loc, part: Fields, defaults?: Obj): Obj | undefined {
  const key = secretName(ctx, v, loc);
  if (key === undefined) return undefined;
  const secret = ctx.secret(key, loc);
  const paths = secretPaths(ctx.sds?.dir ?? '', key);
  if (secret === undefined) {
    part.set('ca_file', paths.ca, loc);
    return { ...defaults, trusted_ca: { filename: paths.ca } };
  }
  const vc = asObj(secret.validation_context);
  if (vc === undefined) {
    ctx.reject(sub(loc, 'name'), `${secretLabel(key)} holds no validation_context`);
    return undefined;
  }
  part.set('ca_file', fileOf(vc.trusted_ca, paths.ca), loc);
  const merged: Obj = { ...vc, trusted_ca: { filename: fileOf(vc.trusted_ca, paths.ca) } };
  for (const k of SAN_MATCHERS) if (defaults !== undefined && isSet(defaults[k])) merged[k] = defaults[k];
  return merged;
}

/** The file a Secret's DataSource ends up in: its own `filename`, or where sds.ts writes it. */
const fileOf = (v: unknown, written: string): string => {
  const ds = dataSource(v);
  return ds.kind === 'file' ? ds.path : written;
};
