// Config validation: turns parsed YAML/JSON (plain data) into the immutable RemoraConfig
// of types.ts, filling in defaults and collecting EVERY problem as a ConfigError with a
// precise path (`clusters[2].endpoints[0].port`). Bad input never throws.

import { MAX_BUCKETS, MAX_CLUSTERS, MAX_ENDPOINTS, MAX_LISTENERS } from '../shared/limits.js';
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { parseSpiffeId } from '../core/spiffe.js';
import type {
  AccessLogConfig, AdminConfig, DrainConfig, ProbesConfig, WorkerLimitsConfig, XdsBootstrap, MeshIdentityBootstrap,
  StatsConfig, CircuitBreakers, Cluster, ConfigError, DirectResponse, Endpoint, HeaderMatcher, HeaderValue,
  HealthCheck, LbPolicy, Listener, OutlierDetection, RateLimit, RateLimitKey, RemoraConfig, RetryBudget,
  RetryOn, RetryPolicy, Route, RouteAction, RouteMatch, TlsVersion, UpstreamTlsConfig, VirtualHost, WeightedCluster,
  Authorization, ListenerTlsConfig, XfccMode, ListenerCodec, EscapedSlashesAction, ServerHeaderTransformation,
} from './types.js';
import { isValidHeaderValue } from '../http/headers.js';

export type ValidateResult = { ok: true; config: RemoraConfig } | { ok: false; errors: ConfigError[] };

type Obj = Record<string, unknown>;

const NAME_RE = /^[A-Za-z0-9_.:-]+$/;
const ROUTE_NAME_RE = /^[A-Za-z0-9_.:/-]+$/;
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/; // RFC 7230 token (header field name)
const METHOD_RE = /^[A-Z]+$/;
const LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
const HOST_RE = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`);
const MAX_TIMEOUT_MS = 3_600_000;
const MAX_WEIGHT = 1_000_000;
const MAX_CONNECTIONS = 1_000_000;
const LB_POLICIES: readonly LbPolicy[] = ['round_robin', 'least_request', 'random'];
const RETRY_ON: readonly RetryOn[] = ['5xx', 'gateway-error', 'reset', 'connect-failure', 'retriable-4xx', 'retriable-status-codes'];
const MAX_RETRIES = 10;
const MAX_BUFFER_LIMIT_BYTES = 16 * 1024 * 1024;
const MAX_TOKENS = 1_000_000_000;
const MAX_CIRCUIT_BREAKER = 1_000_000_000;

/** Headers the proxy owns; routes may not add or remove them. Value: why. */
const PROTECTED_HEADERS: ReadonlyMap<string, string> = new Map([
  ['host', 'the proxy sets it; use route.host_rewrite to change it'],
  ['connection', 'hop-by-hop header managed by the proxy'],
  ['keep-alive', 'hop-by-hop header managed by the proxy'],
  ['upgrade', 'hop-by-hop header managed by the proxy'],
  ['te', 'hop-by-hop header managed by the proxy'],
  ['trailer', 'hop-by-hop header managed by the proxy'],
  ['transfer-encoding', 'message framing is managed by the proxy'],
  ['content-length', 'message framing is managed by the proxy'],
]);

const ROOT_KEYS = ['workers', 'admin', 'probes', 'drain', 'worker_limits', 'stats', 'listeners', 'clusters'];
const XDS_KEYS = ['servers', 'node', 'persist_path', 'initial_fetch_timeout_ms', 'mesh_identity'];
const MESH_IDENTITY_KEYS = ['spiffe_id', 'dir', 'lifetime_seconds', 'renew_fraction', 'token_file'];
/** 15 days: the longest certificate the reference mesh CA grants. */
const MAX_CERT_LIFETIME_S = 15 * 86_400;
const XDS_NODE_KEYS = ['id', 'cluster', 'metadata'];
const PROBES_KEYS = ['address', 'port'];
const DRAIN_KEYS = ['delay_ms', 'timeout_ms'];
const WORKER_LIMITS_KEYS = ['heartbeat_timeout_ms', 'memory_limit_mb', 'max_downstream_connections'];
const STATS_KEYS = ['enabled'];
const ADMIN_KEYS = ['address', 'port', 'allow_remote'];
const LISTENER_KEYS = ['name', 'address', 'port', 'virtual_hosts', 'access_log', 'generate_traceparent', 'max_request_headers_kb', 'rate_limits',
  'tls', 'forward_client_cert_details', 'authorization', 'codec', 'max_request_headers_count', 'normalize_path', 'merge_slashes',
  'path_with_escaped_slashes_action', 'request_headers_timeout_ms', 'idle_timeout_ms', 'max_connections', 'max_requests_per_connection',
  'server_name', 'server_header_transformation'];
const CODECS: readonly ListenerCodec[] = ['strict', 'uws'];
const ESCAPED_SLASHES_ACTIONS: readonly EscapedSlashesAction[] = ['keep_unchanged', 'reject_request', 'unescape_and_redirect', 'unescape_and_forward'];
const SERVER_HEADER_TRANSFORMATIONS: readonly ServerHeaderTransformation[] = ['overwrite', 'append_if_absent', 'pass_through'];
const LISTENER_TLS_KEYS = ['cert_file', 'key_file', 'ca_file', 'require_client_certificate', 'min_version'];
const AUTHORIZATION_KEYS = ['allow', 'deny'];
const XFCC_MODES: readonly XfccMode[] = ['sanitize', 'sanitize_set', 'forward_only', 'append_forward', 'always_forward_only'];
const ACCESS_LOG_KEYS = ['path', 'sample_ratio'];
const VHOST_KEYS = ['name', 'domains', 'routes', 'include_request_attempt_count'];
const ROUTE_KEYS = ['name', 'match', 'route', 'direct_response', 'request_headers_to_add',
  'request_headers_to_remove', 'response_headers_to_add', 'response_headers_to_remove', 'rate_limits', 'authorization'];
const MATCH_KEYS = ['prefix', 'path', 'regex', 'methods', 'headers'];
const HEADER_MATCHER_KEYS = ['name', 'exact', 'regex', 'present'];
const ACTION_KEYS = ['cluster', 'weighted_clusters', 'prefix_rewrite', 'host_rewrite', 'timeout_ms', 'retry_policy', 'max_request_body_bytes'];
const RETRY_POLICY_KEYS = ['retry_on', 'num_retries', 'per_try_timeout_ms', 'retriable_status_codes', 'base_interval_ms',
  'max_interval_ms', 'allow_request_headers', 'retry_non_idempotent_on_reset', 'buffer_limit_bytes'];
const RATE_LIMIT_KEYS = ['name', 'max_tokens', 'tokens_per_fill', 'fill_interval_ms', 'key', 'shadow'];
const RATE_LIMIT_KEY_KEYS = ['headers', 'client_ip'];
const WEIGHTED_KEYS = ['cluster', 'weight'];
const DIRECT_KEYS = ['status', 'body'];
const HEADER_VALUE_KEYS = ['name', 'value'];
const CLUSTER_KEYS = ['name', 'lb_policy', 'endpoints', 'connect_timeout_ms', 'idle_timeout_ms',
  'max_connections_per_endpoint', 'circuit_breakers', 'outlier_detection', 'health_check', 'panic_threshold_percent', 'tls'];
const TLS_KEYS = ['ca_file', 'cert_file', 'key_file', 'sni', 'verify_subject_alt_names', 'min_version'];
const TLS_VERSIONS: readonly TlsVersion[] = ['TLSv1.2', 'TLSv1.3'];
const CIRCUIT_BREAKER_KEYS = ['max_connections', 'max_pending_requests', 'max_requests', 'max_retries', 'retry_budget'];
const RETRY_BUDGET_KEYS = ['budget_percent', 'min_retry_concurrency'];
const OUTLIER_KEYS = ['consecutive_5xx', 'consecutive_gateway_failure', 'interval_ms', 'base_ejection_time_ms',
  'max_ejection_time_ms', 'max_ejection_percent', 'probation_requests', 'success_rate_minimum_hosts',
  'success_rate_request_volume', 'success_rate_stdev_factor'];
const HEALTH_CHECK_KEYS = ['path', 'host', 'interval_ms', 'timeout_ms', 'healthy_threshold', 'unhealthy_threshold',
  'expected_statuses', 'retriable_statuses', 'no_traffic_interval_ms', 'no_traffic_healthy_interval_ms', 'unhealthy_interval_ms',
  'unhealthy_edge_interval_ms', 'healthy_edge_interval_ms', 'interval_jitter_ms', 'interval_jitter_percent', 'initial_jitter_ms'];
const ENDPOINT_KEYS = ['address', 'port'];

// ---------------------------------------------------------------------------
// Generic helpers. Field readers always return a value (a placeholder after an
// error) so that callers stay simple; the result is discarded if any error exists.

class Ctx {
  readonly errors: ConfigError[] = [];
  err(path: string, message: string): void {
    this.errors.push({ path: path === '' ? '(root)' : path, message });
  }
}

const at = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);
const has = (o: Obj, key: string): boolean => o[key] !== undefined;

function isObj(v: unknown): v is Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

function unknownKeyMessage(key: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDist = 3;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k);
    if (d < bestDist) { best = k; bestDist = d; }
  }
  return best !== undefined
    ? `unknown key (did you mean "${best}"?)`
    : `unknown key (allowed: ${known.join(', ')})`;
}

/** Checks `v` is a mapping and reports its unknown keys. */
function object(ctx: Ctx, v: unknown, path: string, known: readonly string[]): Obj | undefined {
  if (!isObj(v)) {
    ctx.err(path, 'must be an object (mapping)');
    return undefined;
  }
  for (const key of Object.keys(v)) {
    if (!known.includes(key)) ctx.err(at(path, key), unknownKeyMessage(key, known));
  }
  return v;
}

/** A list field (missing = empty unless required); `emptyMessage` rejects an empty list. */
function list(ctx: Ctx, o: Obj, key: string, path: string, opt: { required?: boolean; emptyMessage?: string } = {}): unknown[] {
  const v = o[key];
  const p = at(path, key);
  if (v === undefined) {
    if (opt.required) ctx.err(p, opt.emptyMessage ?? 'is required');
    return [];
  }
  if (!Array.isArray(v)) {
    ctx.err(p, 'must be a list');
    return [];
  }
  if (v.length === 0 && opt.emptyMessage !== undefined) ctx.err(p, opt.emptyMessage);
  return v;
}

function str(ctx: Ctx, o: Obj, key: string, path: string, def?: string): string {
  const v = o[key];
  if (v === undefined && def !== undefined) return def;
  if (v === undefined) ctx.err(at(path, key), 'is required (a string)');
  else if (typeof v !== 'string') ctx.err(at(path, key), 'must be a string');
  return typeof v === 'string' ? v : '';
}

function int(ctx: Ctx, o: Obj, key: string, path: string, min: number, max: number, def?: number, unit = ''): number {
  const v = o[key];
  if (v === undefined && def !== undefined) return def;
  const range = `an integer ${min}..${max}${unit}`;
  if (v === undefined) ctx.err(at(path, key), `is required (${range})`);
  else if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) ctx.err(at(path, key), `must be ${range}`);
  return typeof v === 'number' ? v : 0;
}

function bool(ctx: Ctx, o: Obj, key: string, path: string, def: boolean): boolean {
  const v = o[key];
  if (v === undefined) return def;
  if (typeof v !== 'boolean') ctx.err(at(path, key), 'must be true or false');
  return v === true;
}

/** A number (not necessarily an integer) in min..max. */
function num(ctx: Ctx, o: Obj, key: string, path: string, min: number, max: number, def: number): number {
  const v = o[key];
  if (v === undefined) return def;
  if (typeof v !== 'number' || !(v >= min && v <= max)) ctx.err(at(path, key), `must be a number ${min}..${max}`);
  return typeof v === 'number' ? v : def;
}

/** A duration in milliseconds, min..MAX_TIMEOUT_MS; required when `def` is undefined. */
function timeout(ctx: Ctx, o: Obj, key: string, path: string, min: number, def?: number): number {
  return int(ctx, o, key, path, min, MAX_TIMEOUT_MS, def, ' (milliseconds)');
}

/** A required identifier (listener, cluster, vhost, route name). Route names may also
 *  contain "/" (their default is `<vhost>/<match hash>`, so a config written back by
 *  Remora, e.g. the persisted xDS config, must validate again). */
function name(ctx: Ctx, o: Obj, key: string, path: string, def?: string, slash = false): string {
  const v = str(ctx, o, key, path, def);
  if (typeof o[key] !== 'string') return v;
  if (v === '') ctx.err(at(path, key), 'must not be empty');
  else if (!(slash ? ROUTE_NAME_RE : NAME_RE).test(v)) {
    ctx.err(at(path, key), `must contain only letters, digits, "_", ".", ":"${slash ? ', "/"' : ''} and "-"`);
  }
  return v;
}

/** A bind address: an IP literal or `localhost`. */
function bindAddress(ctx: Ctx, o: Obj, key: string, path: string, def: string): string {
  const v = str(ctx, o, key, path, def);
  if (typeof o[key] === 'string' && v !== 'localhost' && isIP(v) === 0) {
    ctx.err(at(path, key), `must be an IP address (e.g. 127.0.0.1, 0.0.0.0, ::1) or "localhost", got "${v}"`);
  }
  return v;
}

function compileRegex(ctx: Ctx, o: Obj, key: string, path: string): string {
  const v = str(ctx, o, key, path);
  if (typeof o[key] !== 'string') return v;
  try {
    new RegExp(v);
  } catch (e) {
    ctx.err(at(path, key), `invalid regular expression: ${(e as Error).message}`);
  }
  return v;
}

/** Reports `what` if it was seen before in `seen`; records it otherwise. */
function noDuplicate(ctx: Ctx, seen: Map<string, string>, value: string, path: string, what: string): void {
  const first = seen.get(value);
  if (first !== undefined) ctx.err(path, `duplicate ${what} "${value}" (first used at ${first})`);
  else seen.set(value, path);
}

function exactlyOne(ctx: Ctx, o: Obj, keys: readonly string[], path: string): string | undefined {
  const set = keys.filter((k) => has(o, k));
  const quoted = keys.map((k) => `"${k}"`);
  const names = `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`;
  if (set.length === 0) ctx.err(path, `must set exactly one of ${names}`);
  else if (set.length > 1) ctx.err(path, `must set exactly one of ${names}, not ${set.map((k) => `"${k}"`).join(' and ')}`);
  return set.length === 1 ? set[0] : undefined;
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    for (const child of Object.values(v)) deepFreeze(child);
    Object.freeze(v);
  }
  return v;
}

// ---------------------------------------------------------------------------
// Headers

function headerName(ctx: Ctx, o: Obj, path: string, modifiable: boolean): string {
  const v = str(ctx, o, 'name', path);
  return checkHeaderName(ctx, v, typeof o.name === 'string', at(path, 'name'), modifiable);
}

function checkHeaderName(ctx: Ctx, v: string, isString: boolean, path: string, modifiable: boolean): string {
  if (!isString) return v;
  const lower = v.toLowerCase();
  if (!TOKEN_RE.test(v)) ctx.err(path, `"${v}" is not a valid header name (RFC 7230 token: letters, digits and !#$%&'*+-.^_\`|~)`);
  else if (modifiable && PROTECTED_HEADERS.has(lower)) {
    ctx.err(path, `"${lower}" cannot be added or removed: ${PROTECTED_HEADERS.get(lower)}`);
  }
  return lower;
}

function headersToAdd(ctx: Ctx, o: Obj, key: string, path: string): HeaderValue[] {
  return list(ctx, o, key, path).flatMap((item, i) => {
    const p = `${at(path, key)}[${i}]`;
    const h = object(ctx, item, p, HEADER_VALUE_KEYS);
    if (!h) return [];
    const hname = headerName(ctx, h, p, true);
    const value = str(ctx, h, 'value', p);
    if (/[\r\n\0]/.test(value)) ctx.err(at(p, 'value'), 'must not contain CR, LF or NUL characters');
    return [{ name: hname, value }];
  });
}

function headersToRemove(ctx: Ctx, o: Obj, key: string, path: string): string[] {
  return list(ctx, o, key, path).map((item, i) => {
    const p = `${at(path, key)}[${i}]`;
    if (typeof item !== 'string') ctx.err(p, 'must be a string (a header name)');
    return checkHeaderName(ctx, typeof item === 'string' ? item : '', typeof item === 'string', p, true);
  });
}

function headerMatcher(ctx: Ctx, v: unknown, path: string): HeaderMatcher | undefined {
  const o = object(ctx, v, path, HEADER_MATCHER_KEYS);
  if (!o) return undefined;
  const hname = headerName(ctx, o, path, false);
  const kind = exactlyOne(ctx, o, ['exact', 'regex', 'present'], path);
  if (kind === 'exact') return { name: hname, exact: str(ctx, o, 'exact', path) };
  if (kind === 'regex') return { name: hname, regex: compileRegex(ctx, o, 'regex', path) };
  if (kind === 'present' && o.present !== true) {
    ctx.err(at(path, 'present'), 'must be true (omit the matcher to accept any request)');
  }
  return { name: hname, present: true };
}

// ---------------------------------------------------------------------------
// Listeners, virtual hosts, routes

/** What a listener's virtual hosts and routes must be unique against. */
interface ListenerScope {
  readonly clusterNames: readonly string[];
  readonly domains: Map<string, string>;
  readonly vhostNames: Map<string, string>;
  readonly routeNames: Map<string, string>;
}

type MatchKind = 'prefix' | 'path' | 'regex';

function validateListener(ctx: Ctx, v: unknown, path: string, clusterNames: readonly string[]): Listener | undefined {
  const o = object(ctx, v, path, LISTENER_KEYS);
  if (!o) return undefined;
  const lname = name(ctx, o, 'name', path);
  const address = bindAddress(ctx, o, 'address', path, '127.0.0.1');
  const port = int(ctx, o, 'port', path, 0, 65535);
  const scope: ListenerScope = { clusterNames, domains: new Map(), vhostNames: new Map(), routeNames: new Map() };
  const virtual_hosts = list(ctx, o, 'virtual_hosts', path, { required: true, emptyMessage: 'must list at least one virtual host' })
    .flatMap((vh, i) => validateVirtualHost(ctx, vh, `${at(path, 'virtual_hosts')}[${i}]`, scope) ?? []);
  const access_log = has(o, 'access_log') ? validateAccessLog(ctx, o.access_log, at(path, 'access_log')) : undefined;
  const generate_traceparent = bool(ctx, o, 'generate_traceparent', path, false);
  const max_request_headers_kb = int(ctx, o, 'max_request_headers_kb', path, 1, 8192, 60, ' (KiB)');
  const rate_limits = rateLimits(ctx, o, path);
  const tls = has(o, 'tls') ? validateListenerTls(ctx, o.tls, at(path, 'tls')) : undefined;
  const verifiesClients = tls !== undefined && tls.ca_file !== undefined;
  const forward_client_cert_details = oneOf(ctx, o, 'forward_client_cert_details', path, XFCC_MODES, verifiesClients ? 'sanitize_set' : 'sanitize');
  const authorization = has(o, 'authorization') ? validateAuthorization(ctx, o.authorization, at(path, 'authorization')) : undefined;
  const codec = oneOf(ctx, o, 'codec', path, CODECS, 'strict');
  if (codec === 'uws' && tls !== undefined) ctx.err(at(path, 'codec'), 'must be "strict" on a TLS listener (uWS cannot read client certificates)');
  const server_name = str(ctx, o, 'server_name', path, 'remora');
  if (typeof o.server_name === 'string' && (server_name.length === 0 || !isValidHeaderValue(server_name))) {
    ctx.err(at(path, 'server_name'), 'must be a non-empty header value (visible characters and spaces)');
  }
  return {
    name: lname,
    address,
    port,
    virtual_hosts,
    ...(access_log ? { access_log } : {}),
    generate_traceparent,
    max_request_headers_kb,
    rate_limits,
    ...(tls ? { tls } : {}),
    forward_client_cert_details,
    ...(authorization ? { authorization } : {}),
    codec,
    max_request_headers_count: int(ctx, o, 'max_request_headers_count', path, 1, 8192, 100),
    normalize_path: bool(ctx, o, 'normalize_path', path, true),
    merge_slashes: bool(ctx, o, 'merge_slashes', path, false),
    path_with_escaped_slashes_action: oneOf(ctx, o, 'path_with_escaped_slashes_action', path, ESCAPED_SLASHES_ACTIONS, 'keep_unchanged'),
    request_headers_timeout_ms: int(ctx, o, 'request_headers_timeout_ms', path, 100, 3_600_000, 10_000, ' (ms)'),
    idle_timeout_ms: int(ctx, o, 'idle_timeout_ms', path, 100, 86_400_000, 60_000, ' (ms)'),
    max_connections: int(ctx, o, 'max_connections', path, 0, 1_000_000, 0),
    max_requests_per_connection: int(ctx, o, 'max_requests_per_connection', path, 0, 1_000_000_000, 0),
    server_name,
    server_header_transformation: oneOf(ctx, o, 'server_header_transformation', path, SERVER_HEADER_TRANSFORMATIONS, 'overwrite'),
  };
}

/** A string field that must be one of `allowed` (`def` when absent, or when invalid: the
 *  error is recorded and the config rejected anyway). */
function oneOf<T extends string>(ctx: Ctx, o: Obj, key: string, path: string, allowed: readonly T[], def: T): T {
  const v = str(ctx, o, key, path, def);
  if (!(allowed as readonly string[]).includes(v)) {
    ctx.err(at(path, key), `must be one of ${allowed.join(', ')}`);
    return def;
  }
  return v as T;
}

function validateListenerTls(ctx: Ctx, v: unknown, path: string): ListenerTlsConfig | undefined {
  const o = object(ctx, v, path, LISTENER_TLS_KEYS);
  if (!o) return undefined;
  const cert_file = filePath(ctx, o, 'cert_file', path);
  const key_file = filePath(ctx, o, 'key_file', path);
  const ca_file = has(o, 'ca_file') ? filePath(ctx, o, 'ca_file', path) : undefined;
  const require_client_certificate = bool(ctx, o, 'require_client_certificate', path, ca_file !== undefined);
  if (require_client_certificate && ca_file === undefined) {
    ctx.err(at(path, 'require_client_certificate'), 'needs "ca_file" (the CAs that client certificates are verified against)');
  }
  return { cert_file, key_file, ...(ca_file !== undefined ? { ca_file } : {}), require_client_certificate, min_version: tlsVersion(ctx, o, path) };
}

function tlsVersion(ctx: Ctx, o: Obj, path: string): TlsVersion {
  return oneOf(ctx, o, 'min_version', path, TLS_VERSIONS, 'TLSv1.2');
}

/** `allow`/`deny` lists of identity patterns: exact, or a prefix ending in `*`. */
function validateAuthorization(ctx: Ctx, v: unknown, path: string): Authorization | undefined {
  const o = object(ctx, v, path, AUTHORIZATION_KEYS);
  if (!o) return undefined;
  const patterns = (key: string): string[] =>
    list(ctx, o, key, path).flatMap((item, i) => {
      const p = `${at(path, key)}[${i}]`;
      if (typeof item !== 'string' || item === '' || /\s/.test(item)) {
        ctx.err(p, 'must be a non-empty identity pattern without whitespace, e.g. "spiffe://cluster.local/ns/payments/*"');
        return [];
      }
      if (item.indexOf('*') !== -1 && item.indexOf('*') !== item.length - 1) {
        ctx.err(p, `"${item}": "*" is only allowed at the end (a prefix match)`);
        return [];
      }
      return [item];
    });
  const allow = patterns('allow');
  const deny = patterns('deny');
  if (!has(o, 'allow') && !has(o, 'deny')) ctx.err(path, 'must list at least one "allow" or "deny" pattern');
  return { allow, deny };
}

function validateAccessLog(ctx: Ctx, v: unknown, path: string): AccessLogConfig | undefined {
  const o = object(ctx, v, path, ACCESS_LOG_KEYS);
  if (!o) return undefined;
  const file = str(ctx, o, 'path', path);
  if (typeof o.path === 'string') {
    const p = at(path, 'path');
    if (file === '') ctx.err(p, 'must not be empty (use "stdout" or a file path)');
    else if (file.includes('\0')) ctx.err(p, 'must not contain NUL characters');
    else if (file.endsWith('/')) ctx.err(p, 'must name a file, not a directory');
  }
  return { path: file, sample_ratio: num(ctx, o, 'sample_ratio', path, 0, 1, 1) };
}

function domainProblem(d: string): string | undefined {
  const bad = `"${d}" is not a valid domain: use "*", "*.suffix", or a host name with an optional ":port"`;
  if (d === '*') return undefined;
  if (d.startsWith('*.')) return HOST_RE.test(d.slice(2)) ? undefined : bad;
  if (d.includes('*')) return `"${d}": a wildcard is only allowed as "*" or a leading "*."`;
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:]+))(?::(\d{1,5}))?$/.exec(d);
  if (!m) return bad;
  if (m[3] !== undefined && (Number(m[3]) < 1 || Number(m[3]) > 65535)) return `"${d}": port must be 1..65535`;
  if (m[1] !== undefined) return isIP(m[1]) === 6 ? undefined : bad;
  return HOST_RE.test(m[2]) ? undefined : bad;
}

function validateVirtualHost(ctx: Ctx, v: unknown, path: string, scope: ListenerScope): VirtualHost | undefined {
  const o = object(ctx, v, path, VHOST_KEYS);
  if (!o) return undefined;
  const vname = name(ctx, o, 'name', path);
  if (typeof o.name === 'string') noDuplicate(ctx, scope.vhostNames, vname, at(path, 'name'), 'virtual host name');
  const domains = list(ctx, o, 'domains', path, { required: true, emptyMessage: 'must list at least one domain' })
    .map((d, i) => {
      const p = `${at(path, 'domains')}[${i}]`;
      if (typeof d !== 'string') {
        ctx.err(p, 'must be a string');
        return '';
      }
      const lower = d.toLowerCase();
      const problem = domainProblem(lower);
      if (problem !== undefined) ctx.err(p, problem);
      else if (lower === '*' && scope.domains.has('*')) {
        ctx.err(p, `only one virtual host may use "*" (already used at ${scope.domains.get('*')})`);
      } else noDuplicate(ctx, scope.domains, lower, p, 'domain');
      return lower;
    });
  const routes = list(ctx, o, 'routes', path, { required: true, emptyMessage: 'must list at least one route' })
    .flatMap((r, i) => validateRoute(ctx, r, `${at(path, 'routes')}[${i}]`, vname, scope) ?? []);
  const include_request_attempt_count = bool(ctx, o, 'include_request_attempt_count', path, false);
  return { name: vname, domains, routes, include_request_attempt_count };
}

/** The name of a route that has none: `<vhost>/<first 8 hex digits of a SHA-256 of its
 *  match>`, so that state kept by route name (rate-limit buckets, stats) follows the
 *  route's identity, not its position: inserting a route above it changes nothing. Two
 *  unnamed routes with the same match in one listener get `-2`, `-3`... in order. */
function defaultRouteName(vhost: string, m: RouteMatch, taken: ReadonlyMap<string, string>): string {
  const identity = JSON.stringify([
    m.prefix ?? null,
    m.path ?? null,
    m.regex ?? null,
    [...m.methods].sort(),
    m.headers.map((h) => [h.name, h.exact ?? null, h.regex ?? null, h.present ?? null]),
  ]);
  const base = `${vhost}/${createHash('sha256').update(identity).digest('hex').slice(0, 8)}`;
  let candidate = base;
  for (let n = 2; taken.has(candidate); n++) candidate = `${base}-${n}`;
  return candidate;
}

function validateRoute(ctx: Ctx, v: unknown, path: string, vname: string, scope: ListenerScope): Route | undefined {
  const o = object(ctx, v, path, ROUTE_KEYS);
  if (!o) return undefined;
  const named = has(o, 'name');
  const given = named ? name(ctx, o, 'name', path, undefined, true) : '';
  let match: RouteMatch = { methods: [], headers: [] };
  let kind: MatchKind | undefined;
  if (!has(o, 'match')) ctx.err(at(path, 'match'), 'is required (set one of "prefix", "path" or "regex")');
  else ({ match, kind } = validateMatch(ctx, o.match, at(path, 'match')));
  const rname = named ? given : defaultRouteName(vname, match, scope.routeNames);
  noDuplicate(ctx, scope.routeNames, rname, named ? at(path, 'name') : path, 'route name');
  const action = exactlyOne(ctx, o, ['route', 'direct_response'], path);
  const route = action === 'route' ? validateAction(ctx, o.route, at(path, 'route'), kind, scope) : undefined;
  const direct = action === 'direct_response' ? validateDirect(ctx, o.direct_response, at(path, 'direct_response')) : undefined;
  return {
    name: rname,
    match,
    ...(route ? { route } : {}),
    ...(direct ? { direct_response: direct } : {}),
    request_headers_to_add: headersToAdd(ctx, o, 'request_headers_to_add', path),
    request_headers_to_remove: headersToRemove(ctx, o, 'request_headers_to_remove', path),
    response_headers_to_add: headersToAdd(ctx, o, 'response_headers_to_add', path),
    response_headers_to_remove: headersToRemove(ctx, o, 'response_headers_to_remove', path),
    rate_limits: rateLimits(ctx, o, path),
    ...(has(o, 'authorization') ? { authorization: validateAuthorization(ctx, o.authorization, at(path, 'authorization')) } : {}),
  };
}

function validateMatch(ctx: Ctx, v: unknown, path: string): { match: RouteMatch; kind?: MatchKind } {
  const o = object(ctx, v, path, MATCH_KEYS);
  if (!o) return { match: { methods: [], headers: [] } };
  const kind = exactlyOne(ctx, o, ['prefix', 'path', 'regex'], path) as MatchKind | undefined;
  const methods = [...new Set(list(ctx, o, 'methods', path).map((m, i) => {
    const upper = typeof m === 'string' ? m.toUpperCase() : '';
    if (!METHOD_RE.test(upper)) ctx.err(`${at(path, 'methods')}[${i}]`, 'must be an HTTP method name such as GET or POST');
    return upper;
  }))];
  const headers = list(ctx, o, 'headers', path)
    .flatMap((h, i) => headerMatcher(ctx, h, `${at(path, 'headers')}[${i}]`) ?? []);
  const match: RouteMatch = { methods, headers };
  if (kind === 'regex') return { match: { regex: compileRegex(ctx, o, 'regex', path), ...match }, kind };
  if (kind === 'prefix' || kind === 'path') {
    const s = str(ctx, o, kind, path);
    if (typeof o[kind] === 'string') {
      if (!s.startsWith('/')) ctx.err(at(path, kind), 'must start with "/"');
      else if (s.includes('?')) ctx.err(at(path, kind), 'must not contain "?" (matching ignores the query string)');
    }
    return { match: { [kind]: s, ...match }, kind };
  }
  return { match };
}

function validateAction(ctx: Ctx, v: unknown, path: string, kind: MatchKind | undefined, scope: ListenerScope): RouteAction | undefined {
  const o = object(ctx, v, path, ACTION_KEYS);
  if (!o) return undefined;
  const target = exactlyOne(ctx, o, ['cluster', 'weighted_clusters'], path);
  const action: { -readonly [K in keyof RouteAction]: RouteAction[K] } = {
    timeout_ms: timeout(ctx, o, 'timeout_ms', path, 0, 15_000),
    max_request_body_bytes: int(ctx, o, 'max_request_body_bytes', path, 0, Number.MAX_SAFE_INTEGER, 0, ' (bytes)'),
  };
  if (target === 'cluster') action.cluster = clusterRef(ctx, o, path, scope);
  if (target === 'weighted_clusters') action.weighted_clusters = weightedClusters(ctx, o, path, scope);
  if (has(o, 'prefix_rewrite')) {
    action.prefix_rewrite = str(ctx, o, 'prefix_rewrite', path);
    if (kind !== undefined && kind !== 'prefix') {
      ctx.err(at(path, 'prefix_rewrite'), `only allowed with a "prefix" match (this route uses "${kind}")`);
    }
  }
  if (has(o, 'host_rewrite')) {
    action.host_rewrite = str(ctx, o, 'host_rewrite', path);
    if (typeof o.host_rewrite === 'string' && !/^\S+$/.test(action.host_rewrite)) {
      ctx.err(at(path, 'host_rewrite'), 'must be a non-empty host name without whitespace');
    }
  }
  if (has(o, 'retry_policy')) {
    const retry_policy = validateRetryPolicy(ctx, o.retry_policy, at(path, 'retry_policy'));
    if (retry_policy) action.retry_policy = retry_policy;
  }
  return action;
}

function validateRetryPolicy(ctx: Ctx, v: unknown, path: string): RetryPolicy | undefined {
  const o = object(ctx, v, path, RETRY_POLICY_KEYS);
  if (!o) return undefined;
  const retry_on = [...new Set(list(ctx, o, 'retry_on', path).flatMap((r, i) => {
    if (typeof r === 'string' && (RETRY_ON as readonly string[]).includes(r)) return [r as RetryOn];
    ctx.err(`${at(path, 'retry_on')}[${i}]`, `must be one of ${RETRY_ON.join(', ')}`);
    return [];
  }))];
  const retriable_status_codes = list(ctx, o, 'retriable_status_codes', path).map((c, i) => {
    if (typeof c !== 'number' || !Number.isInteger(c) || c < 100 || c > 599) {
      ctx.err(`${at(path, 'retriable_status_codes')}[${i}]`, 'must be an integer 100..599');
    }
    return typeof c === 'number' ? c : 0;
  });
  const codesOmitted = o.retriable_status_codes === undefined || (Array.isArray(o.retriable_status_codes) && o.retriable_status_codes.length === 0);
  if (retry_on.includes('retriable-status-codes') && codesOmitted) {
    ctx.err(at(path, 'retriable_status_codes'), 'must list at least one status code when retry_on includes "retriable-status-codes"');
  }
  const before = ctx.errors.length;
  const base_interval_ms = timeout(ctx, o, 'base_interval_ms', path, 1, 25);
  const max_interval_ms = timeout(ctx, o, 'max_interval_ms', path, 1, 10 * base_interval_ms);
  if (ctx.errors.length === before && max_interval_ms < base_interval_ms) {
    ctx.err(at(path, 'max_interval_ms'), `must be at least base_interval_ms (${base_interval_ms})`);
  }
  return {
    retry_on,
    num_retries: int(ctx, o, 'num_retries', path, 0, MAX_RETRIES, 1),
    per_try_timeout_ms: timeout(ctx, o, 'per_try_timeout_ms', path, 0, 0),
    retriable_status_codes,
    base_interval_ms,
    max_interval_ms,
    allow_request_headers: bool(ctx, o, 'allow_request_headers', path, false),
    retry_non_idempotent_on_reset: bool(ctx, o, 'retry_non_idempotent_on_reset', path, false),
    buffer_limit_bytes: int(ctx, o, 'buffer_limit_bytes', path, 0, MAX_BUFFER_LIMIT_BYTES, 65_536),
  };
}

// ---------------------------------------------------------------------------
// Rate limits (listeners and routes)

/** The `rate_limits` list of a listener or route; names unique within the list. */
function rateLimits(ctx: Ctx, o: Obj, path: string): RateLimit[] {
  const seen = new Map<string, string>();
  return list(ctx, o, 'rate_limits', path).flatMap((item, i) => {
    const p = `${at(path, 'rate_limits')}[${i}]`;
    const r = object(ctx, item, p, RATE_LIMIT_KEYS);
    if (!r) return [];
    const rname = name(ctx, r, 'name', p);
    if (typeof r.name === 'string') noDuplicate(ctx, seen, rname, at(p, 'name'), 'rate limit name');
    const max_tokens = int(ctx, r, 'max_tokens', p, 1, MAX_TOKENS);
    // Envoy's default: one token per fill (not a full bucket).
    const tokens_per_fill = int(ctx, r, 'tokens_per_fill', p, 1, MAX_TOKENS, 1);
    const fill_interval_ms = timeout(ctx, r, 'fill_interval_ms', p, 50);
    const key = has(r, 'key') ? rateLimitKey(ctx, r.key, at(p, 'key')) : undefined;
    const shadow = bool(ctx, r, 'shadow', p, false);
    return [{ name: rname, max_tokens, tokens_per_fill, fill_interval_ms, ...(key ? { key } : {}), shadow }];
  });
}

/** A rate limit's key; a placeholder (still a key) after an error. */
function rateLimitKey(ctx: Ctx, v: unknown, path: string): RateLimitKey {
  const o = object(ctx, v, path, RATE_LIMIT_KEY_KEYS);
  if (!o) return { headers: [], client_ip: false };
  const headers = list(ctx, o, 'headers', path).map((h, i) => {
    const p = `${at(path, 'headers')}[${i}]`;
    if (typeof h !== 'string') ctx.err(p, 'must be a string (a header name)');
    // Reading a header is fine even for those the proxy manages (host, ...): not `modifiable`.
    return checkHeaderName(ctx, typeof h === 'string' ? h : '', typeof h === 'string', p, false);
  });
  const client_ip = bool(ctx, o, 'client_ip', path, false);
  const noHeaders = o.headers === undefined || (Array.isArray(o.headers) && o.headers.length === 0);
  if (noHeaders && (o.client_ip === undefined || o.client_ip === false)) {
    ctx.err(path, 'must name at least one header or set client_ip: true');
  }
  return { headers, client_ip };
}

function clusterRef(ctx: Ctx, o: Obj, path: string, scope: ListenerScope): string {
  const c = str(ctx, o, 'cluster', path);
  if (typeof o.cluster === 'string' && !scope.clusterNames.includes(c)) {
    const defined = scope.clusterNames.length ? `defined: ${scope.clusterNames.join(', ')}` : 'no clusters are defined';
    ctx.err(at(path, 'cluster'), `unknown cluster "${c}" (${defined})`);
  }
  return c;
}

function weightedClusters(ctx: Ctx, o: Obj, path: string, scope: ListenerScope): WeightedCluster[] {
  const p = at(path, 'weighted_clusters');
  const seen = new Map<string, string>();
  const items = list(ctx, o, 'weighted_clusters', path, { emptyMessage: 'must list at least one cluster' })
    .flatMap((item, i) => {
      const ip = `${p}[${i}]`;
      const w = object(ctx, item, ip, WEIGHTED_KEYS);
      if (!w) return [];
      const cluster = clusterRef(ctx, w, ip, scope);
      if (typeof w.cluster === 'string') noDuplicate(ctx, seen, cluster, at(ip, 'cluster'), 'cluster');
      return [{ cluster, weight: int(ctx, w, 'weight', ip, 0, MAX_WEIGHT) }];
    });
  const total = items.reduce((sum, w) => sum + w.weight, 0);
  if (items.length > 0 && total <= 0) ctx.err(p, 'weights must add up to more than 0');
  return items;
}

function validateDirect(ctx: Ctx, v: unknown, path: string): DirectResponse | undefined {
  const o = object(ctx, v, path, DIRECT_KEYS);
  if (!o) return undefined;
  return { status: int(ctx, o, 'status', path, 200, 599), body: str(ctx, o, 'body', path, '') };
}

// ---------------------------------------------------------------------------
// Clusters

function endpointAddressProblem(a: string): string | undefined {
  if (a === '') return 'must not be empty';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(a)) return `must be a bare address without a scheme (got "${a}"); put the port in "port"`;
  if (/\s/.test(a)) return 'must not contain whitespace';
  if (a.startsWith('[')) return 'write IPv6 addresses without brackets (e.g. ::1)';
  if (isIP(a) !== 0) return undefined;
  if (a.includes(':')) return 'must not include a port; use the "port" field';
  return HOST_RE.test(a.toLowerCase()) ? undefined : `"${a}" is not an IP address or a valid host name`;
}

function validateEndpoint(ctx: Ctx, v: unknown, path: string): Endpoint | undefined {
  const o = object(ctx, v, path, ENDPOINT_KEYS);
  if (!o) return undefined;
  const address = str(ctx, o, 'address', path);
  const problem = typeof o.address === 'string' ? endpointAddressProblem(address) : undefined;
  if (problem !== undefined) ctx.err(at(path, 'address'), problem);
  return { address, port: int(ctx, o, 'port', path, 1, 65535) };
}

function validateCluster(ctx: Ctx, v: unknown, path: string): Cluster | undefined {
  const o = object(ctx, v, path, CLUSTER_KEYS);
  if (!o) return undefined;
  const cname = name(ctx, o, 'name', path);
  const lb = oneOf(ctx, o, 'lb_policy', path, LB_POLICIES, 'round_robin');
  const endpoints = list(ctx, o, 'endpoints', path, { required: true, emptyMessage: 'must list at least one endpoint' })
    .flatMap((e, i) => validateEndpoint(ctx, e, `${at(path, 'endpoints')}[${i}]`) ?? []);
  const outlier_detection = has(o, 'outlier_detection')
    ? validateOutlierDetection(ctx, o.outlier_detection, at(path, 'outlier_detection')) : undefined;
  const health_check = has(o, 'health_check') ? validateHealthCheck(ctx, o.health_check, at(path, 'health_check'), cname) : undefined;
  const tls = has(o, 'tls') ? validateUpstreamTls(ctx, o.tls, at(path, 'tls')) : undefined;
  return {
    name: cname,
    lb_policy: lb,
    endpoints,
    connect_timeout_ms: timeout(ctx, o, 'connect_timeout_ms', path, 1, 1000),
    idle_timeout_ms: timeout(ctx, o, 'idle_timeout_ms', path, 0, 60_000),
    max_connections_per_endpoint: int(ctx, o, 'max_connections_per_endpoint', path, 1, MAX_CONNECTIONS, 1024),
    circuit_breakers: validateCircuitBreakers(ctx, o, path),
    ...(outlier_detection ? { outlier_detection } : {}),
    ...(health_check ? { health_check } : {}),
    panic_threshold_percent: int(ctx, o, 'panic_threshold_percent', path, 0, 100, 50),
    ...(tls ? { tls } : {}),
  };
}

/** A file path: non-empty, no NUL. Whether it can be read is checked when a worker applies the config. */
function filePath(ctx: Ctx, o: Obj, key: string, path: string): string {
  const v = str(ctx, o, key, path);
  if (typeof o[key] === 'string' && (v === '' || v.includes('\0'))) ctx.err(at(path, key), 'must be a non-empty file path without NUL characters');
  return v;
}

function validateUpstreamTls(ctx: Ctx, v: unknown, path: string): UpstreamTlsConfig | undefined {
  const o = object(ctx, v, path, TLS_KEYS);
  if (!o) return undefined;
  const ca_file = filePath(ctx, o, 'ca_file', path);
  const hasCert = has(o, 'cert_file');
  const hasKey = has(o, 'key_file');
  if (hasCert !== hasKey) {
    ctx.err(at(path, hasCert ? 'key_file' : 'cert_file'), `is required with "${hasCert ? 'cert_file' : 'key_file'}" (a client certificate needs both)`);
  }
  const cert_file = hasCert ? filePath(ctx, o, 'cert_file', path) : undefined;
  const key_file = hasKey ? filePath(ctx, o, 'key_file', path) : undefined;
  let sni: string | undefined;
  if (has(o, 'sni')) {
    sni = str(ctx, o, 'sni', path);
    if (typeof o.sni === 'string' && (isIP(sni) !== 0 || !HOST_RE.test(sni.toLowerCase()))) {
      ctx.err(at(path, 'sni'), `must be a host name (SNI cannot carry an IP address), got "${sni}"`);
    }
  }
  const sanPath = at(path, 'verify_subject_alt_names');
  const verify_subject_alt_names = list(ctx, o, 'verify_subject_alt_names', path).flatMap((item, i) => {
    if (typeof item !== 'string' || item === '' || /[\s,]/.test(item)) {
      ctx.err(`${sanPath}[${i}]`, 'must be a non-empty string without whitespace or commas (a URI SAN such as "spiffe://cluster.local/ns/app/sa/backend" or a DNS name)');
      return [];
    }
    return [item];
  });
  const min_version = tlsVersion(ctx, o, path);
  return {
    ca_file,
    ...(cert_file !== undefined ? { cert_file } : {}),
    ...(key_file !== undefined ? { key_file } : {}),
    ...(sni !== undefined ? { sni } : {}),
    verify_subject_alt_names,
    min_version,
  };
}

function validateCircuitBreakers(ctx: Ctx, cluster: Obj, path: string): CircuitBreakers {
  const defaults = (): CircuitBreakers => ({ max_connections: 1024, max_pending_requests: 1024, max_requests: 1024, max_retries: 3 });
  if (!has(cluster, 'circuit_breakers')) return defaults();
  const p = at(path, 'circuit_breakers');
  const o = object(ctx, cluster.circuit_breakers, p, CIRCUIT_BREAKER_KEYS);
  if (!o) return defaults();
  const retry_budget = has(o, 'retry_budget') ? validateRetryBudget(ctx, o.retry_budget, at(p, 'retry_budget')) : undefined;
  return {
    max_connections: int(ctx, o, 'max_connections', p, 1, MAX_CIRCUIT_BREAKER, 1024),
    max_pending_requests: int(ctx, o, 'max_pending_requests', p, 1, MAX_CIRCUIT_BREAKER, 1024),
    max_requests: int(ctx, o, 'max_requests', p, 1, MAX_CIRCUIT_BREAKER, 1024),
    max_retries: int(ctx, o, 'max_retries', p, 0, MAX_CIRCUIT_BREAKER, 3),
    ...(retry_budget ? { retry_budget } : {}),
  };
}

function validateRetryBudget(ctx: Ctx, v: unknown, path: string): RetryBudget | undefined {
  const o = object(ctx, v, path, RETRY_BUDGET_KEYS);
  if (!o) return undefined;
  return {
    budget_percent: num(ctx, o, 'budget_percent', path, 0, 100, 20),
    min_retry_concurrency: int(ctx, o, 'min_retry_concurrency', path, 0, 1_000_000, 3),
  };
}

function validateOutlierDetection(ctx: Ctx, v: unknown, path: string): OutlierDetection | undefined {
  const o = object(ctx, v, path, OUTLIER_KEYS);
  if (!o) return undefined;
  const before = ctx.errors.length;
  const base_ejection_time_ms = timeout(ctx, o, 'base_ejection_time_ms', path, 1, 30_000);
  // Envoy: the default maximum is 300 s, or base_ejection_time when that is larger.
  const max_ejection_time_ms = timeout(ctx, o, 'max_ejection_time_ms', path, 1, Math.max(300_000, base_ejection_time_ms));
  if (ctx.errors.length === before && max_ejection_time_ms < base_ejection_time_ms) {
    ctx.err(at(path, 'max_ejection_time_ms'), `must be at least base_ejection_time_ms (${base_ejection_time_ms})`);
  }
  return {
    consecutive_5xx: int(ctx, o, 'consecutive_5xx', path, 0, 1000, 5),
    consecutive_gateway_failure: int(ctx, o, 'consecutive_gateway_failure', path, 0, 1000, 5),
    interval_ms: timeout(ctx, o, 'interval_ms', path, 100, 10_000),
    base_ejection_time_ms,
    max_ejection_time_ms,
    max_ejection_percent: int(ctx, o, 'max_ejection_percent', path, 0, 100, 10),
    probation_requests: int(ctx, o, 'probation_requests', path, 1, 1000, 1),
    success_rate_minimum_hosts: int(ctx, o, 'success_rate_minimum_hosts', path, 0, 10_000, 5),
    success_rate_request_volume: int(ctx, o, 'success_rate_request_volume', path, 1, 1_000_000, 100),
    success_rate_stdev_factor: num(ctx, o, 'success_rate_stdev_factor', path, 0, 100, 1.9),
  };
}

function validateHealthCheck(ctx: Ctx, v: unknown, path: string, clusterName: string): HealthCheck | undefined {
  const o = object(ctx, v, path, HEALTH_CHECK_KEYS);
  if (!o) return undefined;
  const hcPath = str(ctx, o, 'path', path);
  if (typeof o.path === 'string') {
    if (!hcPath.startsWith('/')) ctx.err(at(path, 'path'), 'must start with "/"');
    else if (/\s/.test(hcPath)) ctx.err(at(path, 'path'), 'must not contain whitespace');
  }
  const host = str(ctx, o, 'host', path, clusterName);
  if (typeof o.host === 'string' && !/^\S+$/.test(host)) {
    ctx.err(at(path, 'host'), 'must be a non-empty host name without whitespace');
  }
  const expected_statuses = !has(o, 'expected_statuses')
    ? [[200, 300] as const]
    : statusRanges(ctx, o, 'expected_statuses', path, 'must list at least one [start, end) range');
  const retriable_statuses = !has(o, 'retriable_statuses') ? [] : statusRanges(ctx, o, 'retriable_statuses', path);
  // Envoy's intervals: each defaults to the one it refines.
  const interval_ms = timeout(ctx, o, 'interval_ms', path, 100, 5000);
  const no_traffic_interval_ms = timeout(ctx, o, 'no_traffic_interval_ms', path, 100, 60_000);
  const unhealthy_interval_ms = timeout(ctx, o, 'unhealthy_interval_ms', path, 100, interval_ms);
  return {
    path: hcPath,
    host,
    interval_ms,
    timeout_ms: timeout(ctx, o, 'timeout_ms', path, 1, 1000),
    healthy_threshold: int(ctx, o, 'healthy_threshold', path, 1, 100, 2),
    unhealthy_threshold: int(ctx, o, 'unhealthy_threshold', path, 1, 100, 3),
    expected_statuses,
    retriable_statuses,
    no_traffic_interval_ms,
    no_traffic_healthy_interval_ms: timeout(ctx, o, 'no_traffic_healthy_interval_ms', path, 100, no_traffic_interval_ms),
    unhealthy_interval_ms,
    unhealthy_edge_interval_ms: timeout(ctx, o, 'unhealthy_edge_interval_ms', path, 100, unhealthy_interval_ms),
    healthy_edge_interval_ms: timeout(ctx, o, 'healthy_edge_interval_ms', path, 100, interval_ms),
    interval_jitter_ms: timeout(ctx, o, 'interval_jitter_ms', path, 0, 0),
    interval_jitter_percent: int(ctx, o, 'interval_jitter_percent', path, 0, 100, 0, ' (percent)'),
    initial_jitter_ms: timeout(ctx, o, 'initial_jitter_ms', path, 0, 0),
  };
}

/** A list of [start, end) status ranges (expected_statuses, retriable_statuses). */
function statusRanges(ctx: Ctx, o: Obj, key: string, path: string, emptyMessage?: string): (readonly [number, number])[] {
  const p = at(path, key);
  return list(ctx, o, key, path, emptyMessage !== undefined ? { emptyMessage } : {}).flatMap((r, i) => {
    const ok = Array.isArray(r) && r.length === 2 && r.every((n) => typeof n === 'number' && Number.isInteger(n))
      && 100 <= r[0] && r[0] < r[1] && r[1] <= 600;
    if (!ok) {
      ctx.err(`${p}[${i}]`, 'must be a [start, end) pair of status codes with 100 <= start < end <= 600');
      return [];
    }
    return [[r[0], r[1]] as const];
  });
}

// ---------------------------------------------------------------------------
// Root

function validateAdmin(ctx: Ctx, root: Obj): AdminConfig {
  const def = { address: '127.0.0.1', port: 9901, allow_remote: false };
  if (!has(root, 'admin')) return def;
  const o = object(ctx, root.admin, 'admin', ADMIN_KEYS);
  if (!o) return def;
  const address = bindAddress(ctx, o, 'address', 'admin', '127.0.0.1');
  const allow_remote = bool(ctx, o, 'allow_remote', 'admin', false);
  if (!allow_remote && typeof o.address === 'string' && isIP(address) !== 0 && !isLoopback(address)) {
    ctx.err('admin.address', `"${address}" is not a loopback address: admin can stop the proxy and dump its config, so it stays on loopback unless "allow_remote: true" is set (use "probes" to expose /ready, /live and /metrics)`);
  }
  return { address, port: int(ctx, o, 'port', 'admin', 0, 65535, 9901), allow_remote };
}

function isLoopback(address: string): boolean {
  return address === '::1' || address === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(address);
}

function validateProbes(ctx: Ctx, root: Obj): ProbesConfig | undefined {
  if (!has(root, 'probes')) return undefined;
  const o = object(ctx, root.probes, 'probes', PROBES_KEYS);
  if (!o) return undefined;
  return { address: bindAddress(ctx, o, 'address', 'probes', '0.0.0.0'), port: int(ctx, o, 'port', 'probes', 0, 65535) };
}

function validateDrain(ctx: Ctx, root: Obj): DrainConfig {
  const def = { delay_ms: 5000, timeout_ms: 20_000 };
  if (!has(root, 'drain')) return def;
  const o = object(ctx, root.drain, 'drain', DRAIN_KEYS);
  if (!o) return def;
  return { delay_ms: timeout(ctx, o, 'delay_ms', 'drain', 0, def.delay_ms), timeout_ms: timeout(ctx, o, 'timeout_ms', 'drain', 0, def.timeout_ms) };
}

function validateWorkerLimits(ctx: Ctx, root: Obj): WorkerLimitsConfig {
  const def = { heartbeat_timeout_ms: 10_000, memory_limit_mb: 0, max_downstream_connections: 0 };
  if (!has(root, 'worker_limits')) return def;
  const o = object(ctx, root.worker_limits, 'worker_limits', WORKER_LIMITS_KEYS);
  if (!o) return def;
  const heartbeat = timeout(ctx, o, 'heartbeat_timeout_ms', 'worker_limits', 0, def.heartbeat_timeout_ms);
  if (heartbeat > 0 && heartbeat < 3000) ctx.err('worker_limits.heartbeat_timeout_ms', 'must be 0 (off) or at least 3000 (workers store their heartbeat once a second)');
  return {
    heartbeat_timeout_ms: heartbeat,
    memory_limit_mb: int(ctx, o, 'memory_limit_mb', 'worker_limits', 0, 65536, 0, ' (MiB)'),
    max_downstream_connections: int(ctx, o, 'max_downstream_connections', 'worker_limits', 0, 10_000_000, 0),
  };
}

function validateStats(ctx: Ctx, root: Obj): StatsConfig {
  if (!has(root, 'stats')) return { enabled: true };
  const o = object(ctx, root.stats, 'stats', STATS_KEYS);
  if (!o) return { enabled: true };
  return { enabled: bool(ctx, o, 'enabled', 'stats', true) };
}

/** Listener names and (address, port) pairs must be unique, also against the admin server. */
function checkListenerUniqueness(ctx: Ctx, listeners: readonly Listener[], rawListeners: readonly unknown[], admin: AdminConfig): void {
  const names = new Map<string, string>();
  const binds = new Map<string, string>();
  if (admin.port !== 0) binds.set(`${admin.address}:${admin.port}`, 'admin');
  let li = 0;
  rawListeners.forEach((raw, i) => {
    if (!isObj(raw)) return;
    const l = listeners[li++];
    const path = `listeners[${i}]`;
    if (typeof raw.name === 'string') noDuplicate(ctx, names, l.name, at(path, 'name'), 'listener name');
    if (typeof raw.port === 'number' && l.port !== 0) {
      noDuplicate(ctx, binds, `${l.address}:${l.port}`, at(path, 'port'), 'address and port');
    }
  });
}

export function validateConfig(raw: unknown, opts: { defaultWorkers?: number } = {}): ValidateResult {
  const ctx = new Ctx();
  if (raw === null || raw === undefined) {
    return { ok: false, errors: [{ path: '(root)', message: 'config is empty; expected an object with "listeners" and "clusters"' }] };
  }
  const root = object(ctx, raw, '', ROOT_KEYS);
  if (!root) return { ok: false, errors: ctx.errors };

  const defaultWorkers = opts.defaultWorkers ?? Math.min(256, Math.max(1, availableParallelism()));
  const workers = int(ctx, root, 'workers', '', 1, 256, defaultWorkers);
  const admin = validateAdmin(ctx, root);
  const probes = validateProbes(ctx, root);
  const drain = validateDrain(ctx, root);
  const worker_limits = validateWorkerLimits(ctx, root);
  const stats = validateStats(ctx, root);

  const rawClusters = list(ctx, root, 'clusters', '');
  const clusterNames = [...new Set(rawClusters.flatMap((c) => (isObj(c) && typeof c.name === 'string' ? [c.name] : [])))];

  const rawListeners = list(ctx, root, 'listeners', '', { required: true, emptyMessage: 'must list at least one listener' });
  const listeners = rawListeners.flatMap((l, i) => validateListener(ctx, l, `listeners[${i}]`, clusterNames) ?? []);
  checkListenerUniqueness(ctx, listeners, rawListeners, admin);

  const seenClusters = new Map<string, string>();
  const clusters = rawClusters.flatMap((c, i) => {
    const cluster = validateCluster(ctx, c, `clusters[${i}]`);
    if (cluster && isObj(c) && typeof c.name === 'string') {
      noDuplicate(ctx, seenClusters, cluster.name, `clusters[${i}].name`, 'cluster name');
    }
    return cluster ?? [];
  });

  // Stats slabs are sized for these at startup (src/shared/limits.ts).
  if (rawListeners.length > MAX_LISTENERS) ctx.err('listeners', `at most ${MAX_LISTENERS} listeners (got ${rawListeners.length})`);
  if (rawClusters.length > MAX_CLUSTERS) ctx.err('clusters', `at most ${MAX_CLUSTERS} clusters (got ${rawClusters.length})`);
  // Shared state (src/shared/shared-state.ts) has a slot per endpoint and per unkeyed rate limit.
  const endpointCount = rawClusters.reduce<number>((n, c) => n + (isObj(c) && Array.isArray(c.endpoints) ? c.endpoints.length : 0), 0);
  if (endpointCount > MAX_ENDPOINTS) ctx.err('clusters', `at most ${MAX_ENDPOINTS} endpoints over all clusters (got ${endpointCount})`);
  const unkeyed = (limits: readonly RateLimit[]): number => limits.filter((r) => r.key === undefined).length;
  const bucketCount = listeners.reduce((n, l) => n + unkeyed(l.rate_limits)
    + l.virtual_hosts.reduce((m, vh) => m + vh.routes.reduce((k, r) => k + unkeyed(r.rate_limits), 0), 0), 0);
  if (bucketCount > MAX_BUCKETS) {
    ctx.err('listeners', `at most ${MAX_BUCKETS} rate limits without a key over all listeners and routes (got ${bucketCount})`);
  }

  if (ctx.errors.length > 0) return { ok: false, errors: ctx.errors };
  return { ok: true, config: deepFreeze({ workers, admin, ...(probes ? { probes } : {}), drain, worker_limits, stats, listeners, clusters }) };
}

export type BootstrapResult =
  | { ok: true; xds: XdsBootstrap; base: Record<string, unknown> }
  | { ok: false; errors: ConfigError[] };

/** A bootstrap file for xDS mode: the usual root fields (workers, admin, probes, drain,
 *  worker_limits, stats) plus `xds`; listeners and clusters come from the control plane.
 *  `base` is the raw root without `xds`, which translateXds completes and validates. */
/** xds.mesh_identity (docs/mesh-ca.md). */
function validateMeshIdentity(ctx: Ctx, v: unknown): MeshIdentityBootstrap | undefined {
  const path = 'xds.mesh_identity';
  const o = object(ctx, v, path, MESH_IDENTITY_KEYS);
  if (!o) return undefined;
  const spiffe_id = str(ctx, o, 'spiffe_id', path);
  if (typeof o.spiffe_id === 'string') {
    const id = parseSpiffeId(spiffe_id);
    if (!id.ok) ctx.err(at(path, 'spiffe_id'), id.problem);
  }
  const dir = str(ctx, o, 'dir', path);
  if (typeof o.dir === 'string' && dir === '') ctx.err(at(path, 'dir'), 'must not be empty');
  const lifetime_seconds = int(ctx, o, 'lifetime_seconds', path, 1, MAX_CERT_LIFETIME_S, 86_400, ' (seconds)');
  const renew_fraction = num(ctx, o, 'renew_fraction', path, 0.05, 0.9, 0.5);
  const token_file = has(o, 'token_file') ? str(ctx, o, 'token_file', path) : undefined;
  if (token_file === '') ctx.err(at(path, 'token_file'), 'must not be empty');
  return { spiffe_id, dir, lifetime_seconds, renew_fraction, ...(token_file !== undefined ? { token_file } : {}) };
}

export function validateBootstrap(raw: unknown): BootstrapResult {
  const ctx = new Ctx();
  if (!isObj(raw)) return { ok: false, errors: [{ path: '(root)', message: 'must be an object (mapping)' }] };
  const { xds: rawXds, ...base } = raw;
  for (const key of ['listeners', 'clusters']) {
    if (has(raw, key)) ctx.err(key, 'must not be set with "xds": listeners and clusters come from the control plane');
  }
  for (const key of Object.keys(base)) {
    if (!ROOT_KEYS.includes(key)) ctx.err(key, unknownKeyMessage(key, [...ROOT_KEYS, 'xds']));
  }
  const o = object(ctx, rawXds, 'xds', XDS_KEYS);
  if (!o) return { ok: false, errors: ctx.errors };
  const servers = list(ctx, o, 'servers', 'xds', { required: true, emptyMessage: 'must list at least one control-plane address' }).map((v, i) => {
    const path = `xds.servers[${i}]`;
    if (typeof v !== 'string' || !/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:.]+\]:\d{1,5}$/.test(v)) ctx.err(path, 'must be HOST:PORT');
    return typeof v === 'string' ? v : '';
  });
  const node = object(ctx, o.node, 'xds.node', XDS_NODE_KEYS);
  let metadata: Record<string, string> = {};
  if (node && has(node, 'metadata')) {
    const m = object(ctx, node.metadata, 'xds.node.metadata', Object.keys(isObj(node.metadata) ? node.metadata : {}));
    if (m) {
      for (const [k, v] of Object.entries(m)) {
        if (typeof v !== 'string') ctx.err(`xds.node.metadata.${k}`, 'must be a string');
      }
      metadata = Object.fromEntries(Object.entries(m).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
    }
  }
  const id = node ? str(ctx, node, 'id', 'xds.node') : '';
  const cluster = node ? str(ctx, node, 'cluster', 'xds.node') : '';
  if (node && typeof node.id === 'string' && id === '') ctx.err('xds.node.id', 'must not be empty');
  const persist = has(o, 'persist_path') ? str(ctx, o, 'persist_path', 'xds') : undefined;
  const initial_fetch_timeout_ms = timeout(ctx, o, 'initial_fetch_timeout_ms', 'xds', 0, 10_000);
  const mesh_identity = has(o, 'mesh_identity') ? validateMeshIdentity(ctx, o.mesh_identity) : undefined;
  if (ctx.errors.length > 0) return { ok: false, errors: ctx.errors };
  const xds: XdsBootstrap = deepFreeze({
    servers,
    node: { id, cluster, metadata },
    ...(persist !== undefined ? { persist_path: persist } : {}),
    initial_fetch_timeout_ms,
    ...(mesh_identity !== undefined ? { mesh_identity } : {}),
  });
  return { ok: true, xds, base };
}
