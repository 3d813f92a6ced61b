// TLS over xDS → Remora (part of src/xds/translate.ts): a listener filter chain's
// `transport_socket` with a DownstreamTlsContext becomes the listener's `tls`, a cluster's
// with an UpstreamTlsContext the cluster's `tls`, and the HttpConnectionManager's
// forward_client_cert_details its XFCC mode. Remora reads certificates from files and
// watches them, so only `filename` data sources are accepted, and Secrets over ADS
// (translate-secret.ts: their inline data is written to files); inline data in the
// context itself and certificate providers are rejected with their path, as is every TLS knob Remora does
// not have (cipher suites, session tickets, OCSP, CRLs, …). `alpn_protocols` is accepted
// where Remora's own ALPN offer (from the listener's codec_type or the cluster's
// protocol, which the caller reads after TLS) honours it. docs/xds.md has the table;
// src/xds/encode-common.ts writes the same fields.

import { ALPN_H1, ALPN_H2, LISTENER_ALPN, RAW_BUFFER_SOCKET, TLS_TRANSPORT_SOCKET } from './names.js';
import { TypeUrl } from './protos.js';
import { asArr, asObj, asStr, isSet, wrappedBool, type Obj } from './read.js';
import { sub, type Ctx, type Loc } from './translate-context.js';
import { Fields } from './translate-fields.js';
import type { UpstreamProtocol } from './translate-protocol.js';
import { sdsCertificate, sdsValidation } from './translate-secret.js';

type CodecType = keyof typeof LISTENER_ALPN;

/** The raw `tls` of a listener or cluster, with marks relative to it (`.cert_file`). */
export type TlsPart = Fields;

/** A TLS context read: the raw `tls`, and its `alpn_protocols` when set, which the caller
 *  checks (listenerAlpn, clusterAlpn) once it knows the HTTP versions. */
export interface TlsResult {
  readonly part: TlsPart;
  readonly alpn?: Alpn;
}

export interface Alpn {
  readonly protocols: readonly string[];
  readonly loc: Loc;
}

const FILES_ONLY = 'only filename data sources are supported (Remora reads and watches the files)';
const NO_SDS = 'certificate providers are not supported: Remora reads certificates from files (filename data sources, or Secrets over ADS) and watches them';
const EXACT_ONLY = 'only exact matches are supported';
/** CommonTlsContext fields that produce certificates instead of naming files or Secrets. */
const PROVIDERS = ['tls_certificate_provider_instance', 'tls_certificate_certificate_provider',
  'tls_certificate_certificate_provider_instance', 'validation_context_certificate_provider', 'validation_context_certificate_provider_instance'];
/** CommonTlsContext fields that take certificates from Secrets (SDS over ADS, translate-secret.ts). */
const SDS = ['tls_certificate_sds_secret_configs', 'validation_context_sds_secret_config', 'combined_validation_context'];
const COMMON_SDS = [...PROVIDERS, ...SDS];
const VERSIONS: Readonly<Record<string, string>> = { TLSv1_2: 'TLSv1.2', TLSv1_3: 'TLSv1.3' };
const XFCC_FORBIDDEN = ['cert', 'chain'];
const SAN_MATCHERS = ['match_typed_subject_alt_names', 'match_subject_alt_names'];

/** A listener filter chain's transport_socket → the listener's raw `tls`. Envoy's default
 *  for require_client_certificate (false) applies when it is unset. */
export function downstreamTls(ctx: Ctx, v: unknown, loc: Loc): TlsResult | undefined {
  const t = tlsContext(ctx, v, loc, TypeUrl.DownstreamTlsContext);
  if (t === undefined) return undefined;
  const [d, tl] = t;
  if (isSet(d.session_ticket_keys_sds_secret_config)) ctx.reject(sub(tl, 'session_ticket_keys_sds_secret_config'), NO_SDS);
  ctx.only(d, tl, ['common_tls_context', 'require_client_certificate', 'ocsp_staple_policy', 'session_ticket_keys_sds_secret_config',
    'disable_stateless_session_resumption', 'disable_stateful_session_resumption']);
  if (isSet(d.ocsp_staple_policy) && d.ocsp_staple_policy !== 'LENIENT_STAPLING') {
    ctx.reject(sub(tl, 'ocsp_staple_policy'), `${String(d.ocsp_staple_policy)} is not supported: Remora staples no OCSP responses (LENIENT_STAPLING or unset)`);
  }
  const part = new Fields().here(tl);
  const cl = sub(tl, 'common_tls_context');
  const common = asObj(d.common_tls_context) ?? {};
  const vc = commonTlsContext(ctx, common, cl, part, true);
  if (asArr(common.tls_certificates).length === 0 && !COMMON_SDS.some((k) => isSet(common[k]))) {
    ctx.reject(sub(cl, 'tls_certificates'), 'needs a certificate (certificate_chain and private_key filenames, or a Secret): a TLS listener serves at least one');
  }
  if (vc !== undefined) {
    const vl = sub(cl, 'validation_context');
    for (const k of SAN_MATCHERS) {
      if (isSet(vc[k])) ctx.reject(sub(vl, k), 'is not supported on a listener: Remora accepts every client certificate signed by trusted_ca; restrict callers with the RBAC filter');
    }
  }
  part.set('require_client_certificate', wrappedBool(d.require_client_certificate) ?? false, sub(tl, 'require_client_certificate'));
  // Envoy resumes from tickets unless told not to, and then from its session cache.
  if (d.disable_stateless_session_resumption === true) {
    const none = d.disable_stateful_session_resumption === true;
    part.set('session_resumption', none ? 'none' : 'cache', sub(tl, none ? 'disable_stateful_session_resumption' : 'disable_stateless_session_resumption'));
  } else if (d.disable_stateful_session_resumption === true) {
    // With tickets on Remora keeps no session cache: what Envoy then does too.
    ctx.noEffect(tl, 'DownstreamTlsContext.disable_stateful_session_resumption (with session tickets)');
  }
  return { part, ...alpnOf(common, cl) };
}

/** A cluster's transport_socket → the cluster's raw `tls`. trusted_ca is required: Remora
 *  always verifies the upstream (Envoy without a validation context verifies nothing). */
export function upstreamTls(ctx: Ctx, v: unknown, loc: Loc): TlsResult | undefined {
  const t = tlsContext(ctx, v, loc, TypeUrl.UpstreamTlsContext);
  if (t === undefined) return undefined;
  const [u, tl] = t;
  ctx.only(u, tl, ['common_tls_context', 'sni']);
  const part = new Fields().here(tl);
  if (isSet(u.sni)) part.set('sni', u.sni, sub(tl, 'sni'));
  const cl = sub(tl, 'common_tls_context');
  const common = asObj(u.common_tls_context) ?? {};
  const vc = commonTlsContext(ctx, common, cl, part, false);
  const vl = sub(cl, 'validation_context');
  if (vc?.trusted_ca === undefined) {
    ctx.reject(sub(vl, 'trusted_ca'), 'is required: Remora always verifies the upstream certificate, against this CA file only');
  }
  if (vc !== undefined) subjectAltNames(ctx, vc, vl, part);
  return { part, ...alpnOf(common, cl) };
}

/** A listener's alpn_protocols against what its TLS server offers for `codecType`
 *  (LISTENER_ALPN). Accepted, in any order: with `auto`, ["h2", "http/1.1"], ["h2"] or
 *  ["http/1.1"] (AUTO serves both versions in Envoy and in Remora; the list only decides
 *  which one a client offering both gets, and Remora gives it h2, Istio's choice too);
 *  with `http1` ["http/1.1"], with `http2` ["h2"]. Anything else names a version the codec
 *  does not speak (Envoy would agree on it, then fail), or a protocol Remora does not
 *  offer (Istio's "istio-peer-exchange"). */
export function listenerAlpn(ctx: Ctx, alpn: Alpn, codecType: CodecType): void {
  const offer = LISTENER_ALPN[codecType];
  const accepted = codecType === 'auto' ? [offer, [ALPN_H2], [ALPN_H1]] : [offer];
  if (accepted.some((a) => sameSet(a, alpn.protocols))) return;
  ctx.reject(alpn.loc, `${JSON.stringify(alpn.protocols)} is not what Remora offers: with codec_type ${codecType.toUpperCase()} it offers ${JSON.stringify(offer)} by ALPN`
    + ` (accepted: ${accepted.map((a) => JSON.stringify(a)).join(', ')} or unset)`);
}

/** What Remora offers a cluster's endpoints by ALPN, per `protocol`: each connection
 *  names the one version it speaks (src/upstream/upstream-tls.ts, http2-connection.ts). */
const CLUSTER_OFFER: Readonly<Record<UpstreamProtocol, string>> = {
  http1: JSON.stringify([ALPN_H1]),
  http2: JSON.stringify([ALPN_H2]),
  downstream: `${JSON.stringify([ALPN_H2])} on its HTTP/2 connections and ${JSON.stringify([ALPN_H1])} on its HTTP/1.1 connections`,
  auto: `${JSON.stringify([ALPN_H2, ALPN_H1])} on its first handshake with each endpoint, then the version chosen`,
};

/** Istio's own ALPN protocols: its sidecars pick their mutual-TLS filter chain by them. */
const ISTIO_ALPN = ['istio', 'istio-peer-exchange', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2'];
/** Istio's metadata exchange: a peer that selects it starts the connection with its own
 *  framing, which Remora does not speak, so Remora never offers it. */
const ISTIO_PEER_EXCHANGE = 'istio-peer-exchange';

/** A cluster's alpn_protocols against what Remora offers its endpoints for `protocol`
 *  (CLUSTER_OFFER). Accepted, in any order: ["h2"] or ["h2", "http/1.1"] with `http2` and
 *  `downstream` (an upstream that can pick h2 gets h2, as from Envoy), ["http/1.1"] with
 *  `http1`, ["h2", "http/1.1"] with `auto` (the choice is the endpoint's). A list with
 *  Istio's protocols (not with `auto`, whose version the ALPN choice decides): its Istio
 *  names but istio-peer-exchange are returned, to be offered before the version each
 *  connection speaks (`tls.alpn_protocols`), what Istio's own sidecars offer on HTTP
 *  connections (`istio`, then the version); istio-peer-exchange is counted as without
 *  effect. */
export function clusterAlpn(ctx: Ctx, alpn: Alpn, protocol: UpstreamProtocol): readonly string[] | undefined {
  const accepted = protocol === 'http1' ? [[ALPN_H1]] : protocol === 'auto' ? [[ALPN_H2, ALPN_H1]] : [[ALPN_H2], [ALPN_H2, ALPN_H1]];
  if (accepted.some((a) => sameSet(a, alpn.protocols))) return undefined;
  const istio = alpn.protocols.filter((p) => ISTIO_ALPN.includes(p));
  if (istio.length > 0 && protocol !== 'auto' && new Set(alpn.protocols).size === alpn.protocols.length
    && alpn.protocols.every((p) => ISTIO_ALPN.includes(p) || p === ALPN_H2 || p === ALPN_H1)) {
    if (istio.includes(ISTIO_PEER_EXCHANGE)) ctx.noEffect(alpn.loc, 'UpstreamTlsContext.alpn_protocols istio-peer-exchange (not offered)');
    const offered = istio.filter((p) => p !== ISTIO_PEER_EXCHANGE);
    return offered.length > 0 ? offered : undefined;
  }
  ctx.reject(alpn.loc, `${JSON.stringify(alpn.protocols)} is not what Remora offers: with protocol ${protocol} it offers ${CLUSTER_OFFER[protocol]} by ALPN`
    + ` (accepted: ${accepted.map((a) => JSON.stringify(a)).join(', ')}${protocol !== 'auto' ? ', unset, or Istio\'s protocols (with h2 or http/1.1), offered before the version spoken' : ' or unset'})`);
  return undefined;
}

/** The same protocols, each once, in any order (the server picks by its own order: Remora
 *  on a listener, the upstream on a cluster). */
const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && new Set(b).size === b.length && a.every((x) => b.includes(x));

/** A common_tls_context's alpn_protocols, when set (an empty list is unset). */
function alpnOf(common: Obj, loc: Loc): { alpn?: Alpn } {
  const protocols = asArr(common.alpn_protocols).map(String);
  return protocols.length === 0 ? {} : { alpn: { protocols, loc: sub(loc, 'alpn_protocols') } };
}

/** The HttpConnectionManager's XFCC fields → the listener's forward_client_cert_details in `out`.
 *  Unset is Envoy's default, SANITIZE (the proto3 zero value, which senders do not encode).
 *  set_current_client_cert_details may ask for Subject, URI and DNS, which Remora always
 *  sets; Cert and Chain it does not send. */
export function forwardClientCert(ctx: Ctx, hcm: Obj, loc: Loc, out: Fields): void {
  const sc = asObj(hcm.set_current_client_cert_details);
  if (sc !== undefined) {
    const sl = sub(loc, 'set_current_client_cert_details');
    for (const k of XFCC_FORBIDDEN) {
      if (sc[k] === true) ctx.reject(sub(sl, k), 'is not supported: Remora sets By, Hash, Subject, URI and DNS in x-forwarded-client-cert, never the certificate itself');
    }
    ctx.only(sc, sl, ['subject', 'uri', 'dns', ...XFCC_FORBIDDEN]);
  }
  const mode = hcm.forward_client_cert_details === undefined ? 'sanitize' : String(hcm.forward_client_cert_details).toLowerCase();
  out.set('forward_client_cert_details', mode, sub(loc, 'forward_client_cert_details'));
}

/** Whether a transport_socket is `envoy.transport_sockets.raw_buffer` (plaintext: what an
 *  unset one means), by its type; its config has no fields. */
export function rawBufferSocket(ctx: Ctx, v: unknown, loc: Loc): boolean {
  const ts = asObj(v) ?? {};
  // Named only, without a typed_config (Istio 1.9's `tlsMode-disabled` match): Envoy
  // finds the extension by its name.
  if (ts.typed_config === undefined && ts.name === RAW_BUFFER_SOCKET) return true;
  if (asStr(asObj(ts.typed_config)?.type_url) !== TypeUrl.RawBuffer) return false;
  ctx.only(ts, loc, ['name', 'typed_config']);
  const msg = ctx.decode(ts.typed_config, sub(loc, 'typed_config'))?.message;
  if (msg !== undefined) ctx.only(msg, sub(loc, 'typed_config'), []);
  return true;
}

/** A transport_socket's decoded TLS context and its location; undefined when rejected. */
function tlsContext(ctx: Ctx, v: unknown, loc: Loc, typeUrl: string): [Obj, Loc] | undefined {
  const ts = asObj(v) ?? {};
  ctx.only(ts, loc, ['name', 'typed_config']);
  const tl = sub(loc, 'typed_config');
  const type = asStr(asObj(ts.typed_config)?.type_url);
  const context = typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
  if (type === undefined) {
    ctx.reject(tl, `is required (${context})`);
    return undefined;
  }
  if (type !== typeUrl) {
    ctx.reject(loc, `unsupported transport socket ${asStr(ts.name) ?? type}: Remora supports ${TLS_TRANSPORT_SOCKET} with ${context} only`);
    return undefined;
  }
  const msg = ctx.decode(ts.typed_config, tl)?.message;
  return msg === undefined ? undefined : [msg, tl];
}

/** common_tls_context → cert_file, key_file, ca_file and min_version in `part.raw` (and
 *  additional_certificates when `many`: a server's); returns the validation context, whose
 *  SAN matchers are the caller's (alpn_protocols too). */
function commonTlsContext(ctx: Ctx, c: Obj, loc: Loc, part: TlsPart, many: boolean): Obj | undefined {
  for (const k of PROVIDERS) if (isSet(c[k])) ctx.reject(sub(loc, k), NO_SDS);
  ctx.only(c, loc, ['tls_params', 'tls_certificates', 'validation_context', 'alpn_protocols', ...COMMON_SDS]);
  const params = asObj(c.tls_params);
  if (params !== undefined) tlsParams(ctx, params, sub(loc, 'tls_params'), part);

  const certs = asArr(c.tls_certificates);
  const sdsCerts = asArr(c.tls_certificate_sds_secret_configs);
  if (certs.length > 0 && sdsCerts.length > 0) {
    ctx.reject(sub(loc, 'tls_certificate_sds_secret_configs[0]'), 'not allowed together with tls_certificates (Envoy takes one of them)');
  } else if (certs.length + sdsCerts.length > 1 && !many) {
    ctx.reject(sub(loc, certs.length > 1 ? 'tls_certificates[1]' : 'tls_certificate_sds_secret_configs[1]'), 'a client presents one certificate (one entry)');
  }
  // The first certificate is cert_file/key_file; a server's others are additional
  // certificates, picked by SNI (Envoy picks among a context's certificates the same way).
  const sds = sdsCerts.length > 0;
  const list = sds ? sdsCerts : certs;
  const extra: Fields[] = [];
  list.forEach((v, i) => {
    if (i > 0 && !many) return;
    const el = sub(loc, `${sds ? 'tls_certificate_sds_secret_configs' : 'tls_certificates'}[${i}]`);
    const into = i === 0 ? part : new Fields().here(el);
    if (sds) sdsCertificate(ctx, v, el, into);
    else {
      const cert = asObj(v) ?? {};
      ctx.only(cert, el, ['certificate_chain', 'private_key']);
      fileField(ctx, cert.certificate_chain, sub(el, 'certificate_chain'), 'cert_file', into);
      fileField(ctx, cert.private_key, sub(el, 'private_key'), 'key_file', into);
    }
    if (i > 0) extra.push(into);
  });
  if (extra.length > 0) part.list('additional_certificates', extra);
  const fromSecret = sdsValidationContext(ctx, c, loc, part);
  if (fromSecret !== null) return fromSecret;

  const vc = asObj(c.validation_context);
  if (vc === undefined) return undefined;
  const vl = sub(loc, 'validation_context');
  if (isSet(vc.ca_certificate_provider_instance)) ctx.reject(sub(vl, 'ca_certificate_provider_instance'), NO_SDS);
  if (isSet(vc.system_root_certs)) ctx.reject(sub(vl, 'system_root_certs'), 'is not supported: Remora trusts trusted_ca only');
  ctx.only(vc, vl, ['trusted_ca', 'trust_chain_verification', 'ca_certificate_provider_instance', 'system_root_certs', ...SAN_MATCHERS]);
  if (isSet(vc.trust_chain_verification) && vc.trust_chain_verification !== 'VERIFY_TRUST_CHAIN') {
    ctx.reject(sub(vl, 'trust_chain_verification'), `${String(vc.trust_chain_verification)} is not supported: Remora always verifies the chain`);
  }
  if (vc.trusted_ca !== undefined) fileField(ctx, vc.trusted_ca, sub(vl, 'trusted_ca'), 'ca_file', part);
  return vc;
}

function tlsParams(ctx: Ctx, p: Obj, loc: Loc, part: TlsPart): void {
  if (isSet(p.cipher_suites)) ctx.reject(sub(loc, 'cipher_suites'), "is not supported: Remora uses Node's default cipher list (forward-secret AEAD suites first)");
  ctx.only(p, loc, ['tls_minimum_protocol_version', 'tls_maximum_protocol_version', 'cipher_suites']);
  const min = asStr(p.tls_minimum_protocol_version);
  if (min !== undefined && VERSIONS[min] !== undefined) part.set('min_version', VERSIONS[min], sub(loc, 'tls_minimum_protocol_version'));
  else if (min !== undefined && min !== 'TLS_AUTO') {
    ctx.reject(sub(loc, 'tls_minimum_protocol_version'), `${min} is not supported: Remora accepts TLS 1.2 at least (TLSv1_2 or TLSv1_3)`);
  }
  const max = asStr(p.tls_maximum_protocol_version);
  if (max !== undefined && max !== 'TLS_AUTO' && max !== 'TLSv1_3') {
    ctx.reject(sub(loc, 'tls_maximum_protocol_version'), `${max} is not supported: Remora allows up to TLS 1.3 (TLSv1_3 or unset)`);
  }
}

/** validation_context_sds_secret_config, or combined_validation_context (its default
 *  validation context plus a Secret's CA) → ca_file; the validation context to read SAN
 *  matchers from, undefined when rejected, null when the context names no Secret. */
function sdsValidationContext(ctx: Ctx, c: Obj, loc: Loc, part: TlsPart): Obj | undefined | null {
  const combined = asObj(c.combined_validation_context);
  const direct = c.validation_context_sds_secret_config;
  const set = [isSet(c.validation_context) && 'validation_context', isSet(direct) && 'validation_context_sds_secret_config', combined !== undefined && 'combined_validation_context'].filter(Boolean);
  if (set.length > 1) ctx.reject(sub(loc, String(set[1])), `is set with ${String(set[0])}: one validation context`);
  if (isSet(direct)) return sdsValidation(ctx, direct, sub(loc, 'validation_context_sds_secret_config'), part);
  if (combined === undefined) return null;
  const cl = sub(loc, 'combined_validation_context');
  ctx.only(combined, cl, ['default_validation_context', 'validation_context_sds_secret_config']);
  const defaults = asObj(combined.default_validation_context) ?? {};
  const dl = sub(cl, 'default_validation_context');
  ctx.only(defaults, dl, SAN_MATCHERS);
  if (!isSet(combined.validation_context_sds_secret_config)) {
    ctx.reject(sub(cl, 'validation_context_sds_secret_config'), 'is required');
    return undefined;
  }
  return sdsValidation(ctx, combined.validation_context_sds_secret_config, sub(cl, 'validation_context_sds_secret_config'), part, defaults);
}

/** A DataSource that must name a file → `part.raw[key]`. */
function fileField(ctx: Ctx, v: unknown, loc: Loc, key: string, part: TlsPart): void {
  const d = asObj(v) ?? {};
  const others = Object.entries(d).filter(([k, x]) => k !== 'filename' && isSet(x));
  for (const [k] of others) ctx.reject(sub(loc, k), FILES_ONLY);
  const file = asStr(d.filename) ?? '';
  if (file === '') {
    if (others.length === 0) ctx.reject(sub(loc, 'filename'), 'is required');
    return;
  }
  part.set(key, file, sub(loc, 'filename'));
}

/** match_typed_subject_alt_names (URI or DNS, exact) and the older match_subject_alt_names
 *  (exact) → verify_subject_alt_names. Remora matches each name against URI SANs exactly
 *  and DNS SANs case-insensitively; it tells them apart by the URI's scheme (a `:`). */
function subjectAltNames(ctx: Ctx, vc: Obj, loc: Loc, part: TlsPart): void {
  const names: string[] = [];
  const add = (name: string | undefined, at: Loc): void => {
    if (name === undefined) return;
    part.mark(`.verify_subject_alt_names[${names.length}]`, at);
    names.push(name);
  };
  asArr(vc.match_typed_subject_alt_names).forEach((v, i) => {
    const ml = sub(loc, `match_typed_subject_alt_names[${i}]`);
    const m = asObj(v) ?? {};
    ctx.only(m, ml, ['san_type', 'matcher']);
    const type = asStr(m.san_type) ?? 'SAN_TYPE_UNSPECIFIED';
    if (type !== 'URI' && type !== 'DNS') {
      ctx.reject(sub(ml, 'san_type'), `${type} is not supported: Remora checks URI and DNS SANs (URI or DNS)`);
      return;
    }
    const el = sub(ml, 'matcher.exact');
    const name = exactMatcher(ctx, m.matcher, sub(ml, 'matcher'), type === 'DNS');
    if (name !== undefined && type === 'URI' && !name.includes(':')) {
      ctx.reject(el, `"${name}" is not a URI (no scheme): Remora matches a name without ":" against DNS SANs`);
    } else if (name !== undefined && type === 'DNS' && name.includes(':')) {
      ctx.reject(el, `"${name}" is not a DNS name: Remora matches a name with ":" against URI SANs`);
    } else add(name, el);
  });
  asArr(vc.match_subject_alt_names).forEach((v, i) => {
    const ml = sub(loc, `match_subject_alt_names[${i}]`);
    add(exactMatcher(ctx, v, ml, false), sub(ml, 'exact'));
  });
  if (names.length > 0) part.raw.verify_subject_alt_names = names;
}

/** A StringMatcher that may only be `exact`; its value, or undefined when rejected. */
function exactMatcher(ctx: Ctx, v: unknown, loc: Loc, ignoreCaseAllowed: boolean): string | undefined {
  const m = asObj(v) ?? {};
  const others = ['prefix', 'suffix', 'safe_regex', 'contains', 'custom'].filter((k) => isSet(m[k]));
  for (const k of others) ctx.reject(sub(loc, k), `${EXACT_ONLY} (Remora compares subject alt names whole)`);
  ctx.only(m, loc, ['exact', 'ignore_case', ...others]);
  if (m.ignore_case === true && !ignoreCaseAllowed) {
    ctx.reject(sub(loc, 'ignore_case'), 'is not supported here: Remora compares URI SANs exactly (DNS names case-insensitively)');
  }
  const exact = asStr(m.exact) ?? '';
  if (exact === '') {
    if (others.length === 0) ctx.reject(sub(loc, 'exact'), 'is required');
    return undefined;
  }
  return exact;
}
