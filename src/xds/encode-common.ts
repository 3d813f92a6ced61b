// The pieces the encoder's listener, route and cluster parts share (src/xds/encode.ts,
// encode-route.ts): wire helpers (Duration, wrappers, the Struct metadata that carries
// Remora-only fields, Any), the HTTP filter names Remora writes, local rate limits, RBAC
// rules, upgrade configs, and TLS transport sockets, in the shapes src/xds/translate*.ts
// reads back.

import type { Authorization, Listener, ListenerTlsConfig, RateLimit, TlsVersion, UpgradeConfig, UpstreamTlsConfig } from '../config/types.js';
import { ANY_IDENTITY_REGEX, REMORA_METADATA, TLS_TRANSPORT_SOCKET } from './names.js';
import { loadXdsProtos, TypeUrl, type AnyMessage, type ProtoObject } from './protos.js';

/** HTTP filter names: one per listener-wide rate limit, and per-route slots (a route's
 *  n-th rate limit is the per-route config of slot n, which has no bucket of its own). */
export const LISTENER_LIMIT_FILTER = 'remora.local_ratelimit.';
export const ROUTE_LIMIT_SLOT = 'remora.route_local_ratelimit.';
/** RBAC HTTP filters, DENY before ALLOW (Envoy's filter has one action): the listener's
 *  rules, and per-route slots without rules of their own that carry a route's rules. */
export const LISTENER_RBAC = { deny: 'remora.rbac.deny', allow: 'remora.rbac.allow' } as const;
export const ROUTE_RBAC_SLOT = { deny: 'remora.route_rbac.deny', allow: 'remora.route_rbac.allow' } as const;
const RBAC_POLICY = 'remora';
export const RBAC_ACTIONS = ['deny', 'allow'] as const;
/** XFCC modes that add this hop's element to the header. */
export const XFCC_SETS: readonly string[] = ['sanitize_set', 'append_forward'];

export const ADS = { ads: {}, resource_api_version: 'V3' };

/** Milliseconds → google.protobuf.Duration. */
export function duration(ms: number): ProtoObject {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

export const u32 = (value: number): ProtoObject => ({ value });
const percent = (p: number): ProtoObject => ({ default_value: { numerator: p, denominator: 'HUNDRED' } });
export const encode = (typeUrl: string, message: ProtoObject): AnyMessage => loadXdsProtos().encodeAny(typeUrl, message);

/** Plain data → google.protobuf.Struct (protobufjs names Value's fields in camelCase). */
function toValue(v: unknown): ProtoObject {
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  if (typeof v === 'object' && v !== null) return { structValue: toStruct(v as Record<string, unknown>) };
  return { nullValue: 'NULL_VALUE' };
}

export function toStruct(o: Record<string, unknown>): ProtoObject {
  return { fields: Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined).map(([k, v]) => [k, toValue(v)])) };
}

/** `metadata` carrying Remora-only fields; nothing when there are none. */
export function metadata(ext: Record<string, unknown>): ProtoObject {
  const set = Object.entries(ext).filter(([, v]) => v !== undefined);
  return set.length === 0 ? {} : { metadata: { filter_metadata: { [REMORA_METADATA]: toStruct(Object.fromEntries(set)) } } };
}

/** A listener's or route's upgrade_configs (the HCM's, a route action's): `enabled` only
 *  when false (Envoy's unset is true, as Remora's). */
export function upgradeConfigs(list: readonly UpgradeConfig[]): ProtoObject[] {
  return list.map((u) => ({ upgrade_type: u.upgrade_type, ...(u.enabled ? {} : { enabled: { value: false } }) }));
}

/** Rate limit keys by name, for the `rate_limit_keys` extension. */
export function rateLimitKeys(limits: readonly RateLimit[]): Record<string, unknown> | undefined {
  const keyed = limits.filter((r) => r.key !== undefined);
  if (keyed.length === 0) return undefined;
  return Object.fromEntries(keyed.map((r) => [r.name, { headers: [...(r.key?.headers ?? [])], client_ip: r.key?.client_ip ?? false }]));
}

/** A LocalRateLimit with a token bucket, enabled for every request; enforced unless shadow. */
export function localRateLimit(r: RateLimit): ProtoObject {
  return {
    stat_prefix: r.name,
    token_bucket: { max_tokens: r.max_tokens, tokens_per_fill: u32(r.tokens_per_fill), fill_interval: duration(r.fill_interval_ms) },
    filter_enabled: percent(100),
    filter_enforced: percent(r.shadow ? 0 : 100),
  };
}

/** An identity pattern → an RBAC principal: `*` (any verified identity) → the regex `.+`,
 *  as Istio writes it (`authenticated: {}` would also match TLS clients without a certificate). */
function principal(pattern: string): ProtoObject {
  const name = pattern === '*'
    ? { safe_regex: { regex: ANY_IDENTITY_REGEX } }
    : pattern.endsWith('*') ? { prefix: pattern.slice(0, -1) } : { exact: pattern };
  return { authenticated: { principal_name: name } };
}

/** One policy: every request (`any`) from one of the patterns' identities. */
export function rbacRules(action: 'allow' | 'deny', patterns: readonly string[]): ProtoObject {
  return { action: action.toUpperCase(), policies: { [RBAC_POLICY]: { permissions: [{ any: true }], principals: patterns.map(principal) } } };
}

export const hasRules = (a: Authorization | undefined, action: 'allow' | 'deny'): boolean => (a?.[action].length ?? 0) > 0;

const tlsVersion = (v: TlsVersion): string => v.replace('.', '_'); // TLSv1.2 → TLSv1_2

/** Files only: Remora reads and watches them. A SAN with a scheme (`:`) is a URI, else a
 *  DNS name. `alpn`: the protocols Remora offers, so that an Envoy offers the same. */
function commonTlsContext(
  t: { cert_file?: string; key_file?: string; ca_file?: string; min_version: TlsVersion; additional_certificates?: readonly { cert_file: string; key_file: string }[] },
  sans: readonly string[],
  alpn: readonly string[] | undefined,
): ProtoObject {
  const pair = (c: { cert_file: string; key_file: string }): ProtoObject => ({ certificate_chain: { filename: c.cert_file }, private_key: { filename: c.key_file } });
  return {
    ...(alpn !== undefined ? { alpn_protocols: [...alpn] } : {}),
    tls_params: { tls_minimum_protocol_version: tlsVersion(t.min_version) },
    tls_certificates: t.cert_file !== undefined && t.key_file !== undefined
      ? [pair({ cert_file: t.cert_file, key_file: t.key_file }), ...(t.additional_certificates ?? []).map(pair)]
      : [],
    ...(t.ca_file !== undefined
      ? {
        validation_context: {
          trusted_ca: { filename: t.ca_file },
          match_typed_subject_alt_names: sans.map((s) => ({ san_type: s.includes(':') ? 'URI' : 'DNS', matcher: { exact: s } })),
        },
      }
      : {}),
  };
}

export function downstreamTlsSocket(t: ListenerTlsConfig, alpn: readonly string[]): ProtoObject {
  return {
    name: TLS_TRANSPORT_SOCKET,
    typed_config: encode(TypeUrl.DownstreamTlsContext, {
      common_tls_context: commonTlsContext(t, [], alpn),
      require_client_certificate: { value: t.require_client_certificate },
      ...(t.session_resumption === 'tickets' ? {} : { disable_stateless_session_resumption: true }),
      ...(t.session_resumption === 'none' ? { disable_stateful_session_resumption: true } : {}),
    }),
  };
}

export function upstreamTlsSocket(t: UpstreamTlsConfig, alpn: readonly string[] | undefined): ProtoObject {
  return {
    name: TLS_TRANSPORT_SOCKET,
    typed_config: encode(TypeUrl.UpstreamTlsContext, {
      common_tls_context: commonTlsContext(t, t.verify_subject_alt_names, t.alpn_protocols ?? alpn),
      ...(t.sni !== undefined ? { sni: t.sni } : {}),
    }),
  };
}

/** A listener's tcp_keepalive as Envoy's socket options: SO_KEEPALIVE, and TCP_KEEPIDLE
 *  when its time is set (Linux's numbers, as the socket options carry them). */
export function listenerSocketOptions(l: Listener): ProtoObject {
  if (l.tcp_keepalive === undefined) return {};
  const time = l.tcp_keepalive.time_s;
  return {
    socket_options: [
      { description: 'SO_KEEPALIVE', level: '1', name: '9', int_value: '1' },
      ...(time !== undefined ? [{ description: 'TCP_KEEPIDLE', level: '6', name: '4', int_value: String(time) }] : []),
    ],
  };
}
