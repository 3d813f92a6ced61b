// Config schema: listeners and everything under them — inbound TLS, access log, local
// rate limits, authorization, virtual hosts, routes (match, action, retry policy) and
// header edits and matchers. One module (not one per object) because each module costs
// about a millisecond to load at startup (docs/config.md, "Config schema").

import * as v from 'valibot';
import { isIP } from 'node:net';
import { cidrProblem } from '../../router/cidr.js';
import { isValidHeaderValue } from '../../http/headers.js';
import { AccessLogSchema } from './access-log.js';
import { ListenerTracingSchema, RouteTracingSchema } from './tracing.js';
import { TcpKeepaliveSchema } from './socket.js';
import { bool, dedupe, field, filePath, HOST_RE, int, list, ms, name, nameProblem, num, obj, oneOf, str, TOKEN_RE } from './fields.js';

// ---------------------------------------------------------------------------
// Header names, header edits (HeaderValue) and header matchers.

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

/** A header name's problem; `modifiable`: it is added or removed, not only read. */
export function headerNameProblem(name: string, modifiable: boolean): string | undefined {
  if (!TOKEN_RE.test(name)) return `"${name}" is not a valid header name (RFC 7230 token: letters, digits and !#$%&'*+-.^_\`|~)`;
  const lower = name.toLowerCase();
  if (modifiable && PROTECTED_HEADERS.has(lower)) return `"${lower}" cannot be added or removed: ${PROTECTED_HEADERS.get(lower)}`;
  return undefined;
}

const lower = (s: string): string => s.toLowerCase();
const TYPE = 'header name (RFC 7230 token)';
const PRESENT = 'must be true (omit the matcher to accept any request)';

/** A header name field (of an object); lower-cased. */
export const headerName = (doc: string, modifiable: boolean) =>
  str(doc, { type: TYPE, check: (s: string) => headerNameProblem(s, modifiable), normalize: lower });

/** A list of header names; lower-cased. */
export const headerNames = (doc: string, modifiable: boolean, scope: string) =>
  list(v.pipe(v.string('must be a string (a header name)'), v.metadata({ check: (s: string) => headerNameProblem(s, modifiable), normalize: lower })),
    doc, { type: modifiable ? 'list of header names' : 'list of header names (RFC 7230 tokens)', scope });

export const HeaderValueSchema = obj({
  name: headerName('Lower-cased.', true),
  value: str('Header value.', {
    type: 'string without CR, LF or NUL',
    check: (s: string) => (/[\r\n\0]/.test(s) ? 'must not contain CR, LF or NUL characters' : undefined),
  }),
}, 'A header added to a request or response.');

export const HeaderMatcherSchema = obj({
  name: headerName('Header to test; lower-cased.', false),
  exact: v.optional(str('Value equals this.', { scope: 'header value', default: '—' })),
  regex: v.optional(str('Value matches.', { type: 'JavaScript regular expression', scope: 'header value', default: '—', check: regexProblem })),
  present: v.optional(v.pipe(v.boolean(PRESENT), v.description('Header is present, whatever its value.'),
    v.metadata({ type: '`true`', default: '—', check: (b: boolean) => (b ? undefined : PRESENT) }))),
}, 'One request header test. Exactly one of `exact`, `regex` and `present` is set.');

export const QueryParameterMatcherSchema = obj({
  name: str('Query parameter name, after percent-decoding (case-sensitive).', { type: 'string, non-empty', check: (s: string) => (s === '' ? 'must not be empty' : undefined) }),
  exact: v.optional(str('Its value equals this (after percent-decoding).', { scope: 'parameter value', default: '—' })),
  regex: v.optional(str('Its value matches, as a whole.', { type: 'JavaScript regular expression', scope: 'parameter value', default: '—', check: regexProblem })),
  present: v.optional(v.pipe(v.boolean(PRESENT), v.description('The parameter is in the query, with or without a value.'),
    v.metadata({ type: '`true`', default: '—', check: (b: boolean) => (b ? undefined : PRESENT) }))),
}, 'One query parameter test (Envoy\'s `query_parameters`): the first occurrence of the name is tested, `a=1&a=2` tests `1`. Exactly one of `exact`, `regex` and `present` is set.');

/** Whether `s` compiles as a JavaScript regular expression. */
export function regexProblem(s: string): string | undefined {
  try {
    new RegExp(s);
    return undefined;
  } catch (e) {
    return `invalid regular expression: ${(e as Error).message}`;
  }
}

// ---------------------------------------------------------------------------
// Per-request policies shared by listeners and routes: local rate limits, authorization by peer identity; the access log.

/** Tokens of a bucket: at most this many. */
const MAX_TOKENS = 1_000_000_000;

export const RateLimitKeySchema = obj({
  headers: v.optional(headerNames('Headers whose values make up the key, in order. Lower-cased. Any header may be read, `host` included.', false, 'request headers'), []),
  client_ip: v.optional(bool('Include the client\'s IP address in the key.'), false),
}, 'Per-key buckets of a rate limit: each distinct key gets its own bucket. A key must name at least one header or set `client_ip: true`. A request that lacks one of the key\'s headers is not limited by that rate limit (as in Envoy).');

export const RateLimitSchema = obj({
  name: name('Name in stats and logs.', 'unique within its listener\'s or route\'s list'),
  max_tokens: int(1, MAX_TOKENS, 'Bucket capacity and initial fill.', { scope: 'tokens' }),
  tokens_per_fill: v.optional(int(1, MAX_TOKENS, 'Tokens added every fill interval, capped at `max_tokens` (Envoy\'s default of 1: a drained bucket admits one request per interval).', { scope: 'tokens per fill' }), 1),
  fill_interval_ms: ms(50, 'Milliseconds between fills.'),
  key: v.optional(field(RateLimitKeySchema, 'Per-key buckets: each distinct key gets its own bucket.', { default: 'unset (one bucket for all requests)', scope: 'per key' })),
  shadow: v.optional(bool('Shadow mode: count would-be rejections, admit every request.'), false),
}, 'A local rate limit: a token bucket shared by all workers of the process (not per worker).');

const PATTERN = 'must be a non-empty identity pattern without whitespace, e.g. "spiffe://cluster.local/ns/payments/*"';

function patternProblem(p: string): string | undefined {
  if (p === '' || /\s/.test(p)) return PATTERN;
  const star = p.indexOf('*');
  if (star !== -1 && star !== p.length - 1) return `"${p}": "*" is only allowed at the end (a prefix match)`;
  return undefined;
}

const patterns = (doc: string) =>
  v.optional(list(v.pipe(v.string(PATTERN), v.metadata({ check: patternProblem })), doc, { type: 'list of patterns' }), []);

export const AuthorizationSchema = obj({
  allow: patterns('When non-empty, the identity must match one.'),
  deny: patterns('An identity that matches one is refused, whatever `allow` says.'),
}, 'Allow/deny by peer identity (the SPIFFE URI SAN of the client certificate, else its first DNS SAN, else its subject). A pattern is exact, or ends in `*` for a prefix; `*` alone is any verified identity. Deny wins; when `allow` is non-empty the identity must match it. At least one list must be given.');

// ---------------------------------------------------------------------------
// Virtual hosts, routes, their matches and actions, and retry policies.

const METHOD = 'must be an HTTP method name such as GET or POST';

/** A `prefix` or `path` match: starts with "/", no query. */
function pathProblem(s: string): string | undefined {
  if (!s.startsWith('/')) return 'must start with "/"';
  if (s.includes('?')) return 'must not contain "?" (matching ignores the query string)';
  return undefined;
}

export const RouteMatchSchema = obj({
  prefix: v.optional(str('Path starts with this (case-sensitive).', { type: 'string starting with `/`', scope: 'path without query', default: '—', check: pathProblem })),
  path: v.optional(str('Path equals this exactly.', { type: 'string starting with `/`', scope: 'path without query', default: '—', check: pathProblem })),
  regex: v.optional(str('Path matches the expression.', { type: 'JavaScript regular expression', scope: 'path without query', default: '—', check: regexProblem })),
  methods: v.optional(list(v.pipe(v.string(METHOD), v.metadata({
    check: (m: string) => (/^[A-Z]+$/.test(m.toUpperCase()) ? undefined : METHOD),
    normalize: (m: string) => m.toUpperCase(),
  })), 'Request method is one of these. Upper-cased.', { type: 'list of method names', default: '`[]` (any)', normalize: dedupe }), []),
  headers: v.optional(list(HeaderMatcherSchema, 'All must match.', { scope: 'request headers' }), []),
  query_parameters: v.optional(list(QueryParameterMatcherSchema, 'All must match.', { scope: 'the request\'s query string' }), []),
}, 'Which requests a route takes, matched against the path without its query. Exactly one of `prefix`, `path` and `regex` is set.');

export const WeightedClusterSchema = obj({
  cluster: str('A cluster name.', { type: 'cluster name' }),
  weight: int(0, 1_000_000, 'Relative weight; the weights of a route need not sum to 100 (total > 0).'),
  host_rewrite: v.optional(str('Host header sent upstream when this cluster is picked; replaces the route\'s `host_rewrite` (Envoy\'s per-cluster `host_rewrite_literal`).', {
    type: 'string, no whitespace', default: 'the route\'s',
    check: (s: string) => (/^\S+$/.test(s) ? undefined : 'must be a non-empty host name without whitespace'),
  })),
}, 'One cluster of a weighted split.');

export const RETRY_ON = ['5xx', 'gateway-error', 'reset', 'connect-failure', 'retriable-4xx', 'retriable-status-codes', 'refused-stream',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable'] as const;

export const RetryPolicySchema = obj({
  retry_on: v.optional(list(v.picklist(RETRY_ON), 'Conditions a failed attempt is retried on (Envoy\'s `retry_on` names). `refused-stream`: an HTTP/2 upstream reset the stream with REFUSED_STREAM (it never processed it; any method). The gRPC names (`cancelled`, `deadline-exceeded`, `internal`, `resource-exhausted`, `unavailable`) retry a response whose headers carry that `grpc-status` (a trailers-only gRPC response, as an error without a message body is sent). May be empty when only request headers enable retries (`allow_request_headers`). A condition listed twice counts once.',
    { type: `list of ${RETRY_ON.map((r) => `\`${r}\``).join(', ')}`, scope: 'per attempt', normalize: dedupe }), []),
  num_retries: v.optional(int(0, 10, 'Retries after the first attempt (Envoy\'s default).', { scope: 'per request' }), 1),
  per_try_timeout_ms: v.optional(ms(0, 'Timeout of each attempt, until its response headers. `0` = none; the route\'s `timeout_ms` still covers all attempts together.', { scope: 'ms, per attempt' }), 0),
  retriable_status_codes: v.optional(list(int(100, 599, 'A status code.'), 'Status codes retried under `retriable-status-codes`. Must not be empty when `retry_on` includes `retriable-status-codes`.',
    { type: 'list of integers 100..599' }), []),
  base_interval_ms: v.optional(ms(1, 'Backoff base. Backoff is Envoy\'s fully jittered exponential: retry n (1 = first retry) waits min(`max_interval_ms`, random[0, (2^n − 1) × `base_interval_ms`)): 0–25, 0–75, 0–175 ms, then up to 250 ms with the defaults.'), 25),
  max_interval_ms: ms(1, 'Backoff cap; at least `base_interval_ms`.', { type: 'integer 1..3600000, ≥ `base_interval_ms`', conditional: true, default: '10 × `base_interval_ms`' }),
  allow_request_headers: v.optional(bool('Trust the request\'s control headers: `x-remora-retry-on` / `x-envoy-retry-on` (add conditions), `x-remora-max-retries` / `x-envoy-max-retries` (replace `num_retries`, at most 10), `x-remora-upstream-rq-timeout-ms` / `x-envoy-upstream-rq-timeout-ms` (replace the route\'s `timeout_ms`; `0` = none) and `x-remora-upstream-rq-per-try-timeout-ms` / `x-envoy-upstream-rq-per-try-timeout-ms` (replace `per_try_timeout_ms`). Malformed values are ignored. Trusted or not, these headers (every `x-remora-*` request header, and Envoy\'s router headers) are never forwarded upstream.',
    { scope: 'per request' }), false),
  retry_non_idempotent_on_reset: v.optional(bool('Retry non-idempotent methods (POST, PATCH, ...) after an upstream reset or a per-try timeout, when the request may already have been processed. `true` is Envoy\'s behaviour (Envoy retries every method); the default keeps a POST from being sent twice. Connect failures and retriable statuses are retried for every method whatever this is.'), false),
  buffer_limit_bytes: v.optional(int(0, 16 * 1024 * 1024, 'A request body is kept for replay up to this size; a larger body is streamed and that request is not retried.', { scope: 'bytes, per request' }), 65_536),
}, 'Retries of a route. Retries in flight are also limited per cluster by the cluster\'s `circuit_breakers` (`max_retries`, or `retry_budget` when set).');

export const RegexRewriteSchema = obj({
  pattern: str('Every match in the path (without the query) is replaced.', { type: 'JavaScript regular expression', check: regexProblem }),
  substitution: str('What replaces each match; `\\1` … `\\9` insert a capture group and `\\0` the whole match (Envoy\'s RE2 syntax), `\\\\` a backslash.', { type: 'string' }),
}, 'A path rewrite by regular expression (Envoy\'s `regex_rewrite`): `{pattern: "^/api/(v[0-9]+)/", substitution: "/\\1/"}` sends `/api/v2/users` as `/v2/users`. The query is kept.');

export const MirrorPolicySchema = obj({
  cluster: str('The cluster the copies go to.', { type: 'cluster name' }),
  percent: v.optional(num(0, 100, 'The share of requests copied, chosen at random per request.', { type: 'number 0..100' }), 100),
}, 'A copy of the route\'s requests sent to another cluster (Envoy\'s `request_mirror_policies`, "shadowing"): the same method, path, headers and body, with `-shadow` added to the Host (`api:8080` → `api-shadow:8080`). Its answer is thrown away and nothing that happens to it reaches the client: the client\'s response never waits for it. It is counted in the shadow cluster\'s response stats, takes that cluster\'s circuit-breaker resources like any request (a full cluster drops the copy), and ends at the route\'s `timeout_ms`. Up to 1 MiB of body is held for a copy that waits for a connection or is pushed back; past that, or when the client\'s request ends before its body does, the copy is cut.');

export const RouteActionSchema = obj({
  cluster: v.optional(str('Forward to this cluster.', { type: 'cluster name', default: '—' })),
  weighted_clusters: v.optional(list(WeightedClusterSchema, 'Pick a cluster at random in proportion to the weights (integers 0..1000000, total > 0).',
    { type: 'list of `{cluster, weight}`', scope: 'per request', default: '—', nonEmpty: 'must list at least one cluster' })),
  prefix_rewrite: v.optional(str('Replace the matched prefix in the upstream path. Only with a `prefix` match.')),
  regex_rewrite: v.optional(field(RegexRewriteSchema, 'Rewrite the upstream path by regular expression. Not with `prefix_rewrite`.', { default: '—' })),
  request_mirror_policies: v.optional(list(MirrorPolicySchema, 'Copy requests to other clusters (traffic shadowing). Not on upgrade requests.', { scope: 'requests this route forwards', default: 'unset (no copies)' })),
  host_rewrite: v.optional(str('Host header sent upstream.', {
    type: 'string, no whitespace',
    check: (s: string) => (/^\S+$/.test(s) ? undefined : 'must be a non-empty host name without whitespace'),
  })),
  timeout_ms: v.optional(ms(0, 'From the moment the whole client request has been received (at once for a request without a body) until the upstream\'s response headers arrive; then 504, flag UT. `0` disables. A body that is still streaming is not cut off by it.',
    { scope: 'ms, per request' }), 15_000),
  retry_policy: v.optional(field(RetryPolicySchema, 'Retries. Without it the route makes no retries and the retry request headers are ignored.', { default: 'unset (no retries)', scope: 'this route' })),
  max_request_body_bytes: v.optional(int(0, Number.MAX_SAFE_INTEGER, 'Larger request bodies get 413 and a closed connection (Content-Length: before forwarding; chunked: when passed, cutting the upstream request).',
    { unit: 'bytes', type: 'integer ≥ 0', default: '`0` (no limit)', scope: 'bytes, per request' }), 0),
  cluster_not_found_status: v.optional(int(404, 503, 'Status answered, with flag `NC`, when the cluster named is not known (not in the config, or not yet received from the control plane); Envoy\'s `cluster_not_found_response_code`.',
    { type: '`503`, `404` or `500`', scope: 'this route', check: (n: number) => ([503, 404, 500].includes(n) ? undefined : 'must be 503, 404 or 500') }), 503),
  grpc_timeout_header_max_ms: v.optional(ms(0, 'Honour a gRPC client\'s deadline: a request\'s `grpc-timeout` header replaces `timeout_ms`, capped at this value (`0`: no cap; a `grpc-timeout` of 0 means no timeout). Unset: `grpc-timeout` is ignored and `timeout_ms` applies (Envoy\'s `max_stream_duration.grpc_timeout_header_max`, formerly `max_grpc_timeout`).',
    { default: 'unset (`grpc-timeout` ignored)', scope: 'ms, per request' })),
}, 'Forward upstream. Exactly one of `cluster` and `weighted_clusters` is set.');

export const DirectResponseSchema = obj({
  status: int(200, 599, 'Response status.'),
  body: v.optional(str('Response body.'), ''),
}, 'Answer without an upstream.');

/** A redirect's path: starts with "/" (a query after "?" replaces the request's). */
function redirectPathProblem(s: string): string | undefined {
  return s.startsWith('/') ? undefined : 'must start with "/"';
}

export const REDIRECT_CODES = [301, 302, 303, 307, 308] as const;

export const RedirectSchema = obj({
  scheme: v.optional(str('Scheme of the new URL (Envoy\'s `scheme_redirect`; `https` is `https_redirect`). Unset: the request\'s (`https` on a TLS listener, else `http`). Lower-cased.',
    { type: 'scheme (`http`, `https`, …)', default: 'the request\'s', check: (s: string) => (/^[a-z][a-z0-9+.-]*$/i.test(s) ? undefined : 'must be a URL scheme such as "https"'), normalize: lower })),
  host: v.optional(str('Host (and optional `:port`) of the new URL. Unset: the request\'s Host, without its port when `port` is set or when the scheme changes and the port was the old scheme\'s default (80, 443), as in Envoy.',
    { type: 'host, no whitespace or `/`', default: 'the request\'s', check: (s: string) => (/^[^\s/?#]+$/.test(s) ? undefined : 'must be a host name (optionally with :port), without whitespace, "/", "?" or "#"') })),
  port: v.optional(int(1, 65535, 'Port of the new URL, after the host.', { default: '—' })),
  path: v.optional(str('Path of the new URL. With a `?query`, that query replaces the request\'s and `strip_query` does not apply; without one, the request\'s query is kept (unless `strip_query`).',
    { type: 'string starting with `/`', default: 'the request\'s', check: redirectPathProblem })),
  prefix_rewrite: v.optional(str('Replace the matched prefix of the request\'s path in the new URL (the rest of the path and the query are kept). Only with a `prefix` match; not with `path`.',
    { type: 'string', default: '—' })),
  regex_rewrite: v.optional(field(RegexRewriteSchema, 'Rewrite the request\'s path (without the query) by regular expression for the new URL. Not with `path` or `prefix_rewrite`.', { default: '—' })),
  response_code: v.optional(int(301, 308, 'Status of the redirect.', { type: '`301`, `302`, `303`, `307` or `308`', check: (n: number) => ((REDIRECT_CODES as readonly number[]).includes(n) ? undefined : 'must be 301, 302, 303, 307 or 308') }), 301),
  strip_query: v.optional(bool('Leave the request\'s query out of the new URL.'), false),
}, 'Answer with a redirect (Envoy\'s `redirect` route action): the status and a `Location` built from the request\'s URL with the parts set here replaced, an empty body, response flag `DR`. Response headers to add still apply.');

/** An Upgrade protocol (RFC 9110 §7.8): a token, optionally `/` and a version token. */
function upgradeTypeProblem(s: string): string | undefined {
  const [name, version, ...rest] = s.split('/');
  const ok = TOKEN_RE.test(name) && (version === undefined || TOKEN_RE.test(version)) && rest.length === 0;
  return ok ? undefined : `"${s}" is not an upgrade protocol (a token, or token/version such as "websocket" or "spdy/3.1")`;
}

export const UpgradeConfigSchema = obj({
  upgrade_type: str('The `Upgrade` header value this entry is for, compared case-insensitively: `websocket`, or any other token a client and upstream agree on (Envoy\'s `upgrade_type`). Lower-cased.',
    { type: 'protocol (`name` or `name/version`)', check: upgradeTypeProblem, normalize: lower }),
  enabled: v.optional(bool('On a route: `false` refuses this upgrade on the route even where the listener allows it, `true` allows it where the listener does not list it.'), true),
}, 'An HTTP/1.1 protocol upgrade (Envoy\'s `upgrade_configs`): a request with `Connection: upgrade` and this `Upgrade` is routed and checked like any request; when the upstream answers `101 Switching Protocols` the answer goes back unchanged and the connection becomes a byte tunnel both ways ([protocols.md](protocols.md#websocket-and-other-upgrades)).');

export const RouteSchema = obj({
  name: str('Used in logs, metrics and as the key of the route\'s rate-limit buckets. The default is the first 8 hex digits of a SHA-256 of the route\'s `match` (path, methods, header matchers), so a route keeps its name, and its rate-limit state, when routes are inserted or removed around it; a second unnamed route with the same match gets `-2`. Name a route to keep its state across changes of its match. May contain `/`.',
    { type: 'name', scope: 'unique within the listener', conditional: true, default: '`<vhost>/<hash>`', check: nameProblem }),
  match: field(RouteMatchSchema, 'Which requests this route takes.', { required: 'is required (set one of "prefix", "path" or "regex")' }),
  route: v.optional(field(RouteActionSchema, 'Forward upstream. Exactly one of `route`, `direct_response` and `redirect`.', { default: '—' })),
  direct_response: v.optional(field(DirectResponseSchema, 'Answer without an upstream.', { default: '—' })),
  redirect: v.optional(field(RedirectSchema, 'Answer with a redirect to another URL.', { default: '—' })),
  request_headers_to_add: v.optional(list(HeaderValueSchema, 'Appended to the upstream request.', { scope: 'request sent upstream' }), []),
  request_headers_to_remove: v.optional(headerNames('Removed from the upstream request.', true, 'request sent upstream'), []),
  response_headers_to_add: v.optional(list(HeaderValueSchema, 'Appended to the downstream response.', { scope: 'response to the client' }), []),
  response_headers_to_remove: v.optional(headerNames('Removed from the downstream response.', true, 'response to the client'), []),
  rate_limits: v.optional(list(RateLimitSchema, 'Local rate limits checked after the route matched; all must admit the request. Names unique within the list. Allowed with `direct_response` too.',
    { scope: 'requests this route matched' }), []),
  authorization: v.optional(field(AuthorizationSchema, 'Checked after the listener\'s authorization, when this route matched; refused → `403`, flag `RBAC`.',
    { default: 'unset (anyone)', scope: 'requests this route matched' })),
  tracing: v.optional(field(RouteTracingSchema, 'Sampling of this route\'s requests.', { default: 'unset (the listener\'s)', scope: 'requests this route matched' })),
  upgrade_configs: v.optional(list(UpgradeConfigSchema, 'Per-route override of the listener\'s `upgrade_configs`, by upgrade type.', { default: '`[]` (the listener\'s)', scope: 'upgrade requests this route matched' }), []),
}, 'One route of a virtual host: a match and what to do with the requests it takes.');

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

export const VirtualHostSchema = obj({
  name: name('Used in default route names and logs.', 'unique within the listener'),
  domains: list(v.pipe(v.string(), v.metadata({ check: (d: string) => domainProblem(d.toLowerCase()), normalize: (d: string) => d.toLowerCase() })),
    '`*`, `*.suffix`, or a host name with optional `:port`. Lower-cased.',
    { type: 'list of domain', scope: 'unique across the listener\'s vhosts', nonEmpty: 'must list at least one domain' }),
  routes: list(RouteSchema, 'Tried in order; the first match wins.', { scope: 'this vhost', nonEmpty: 'must list at least one route' }),
  include_request_attempt_count: v.optional(bool('Send `x-remora-attempt-count: 1` on the first attempt too (Envoy\'s field of the same name). Retries and keep-alive resends carry `x-remora-attempt-count: N` whatever this is.',
    { scope: 'per attempt' }), false),
}, 'Host-based routing table of a listener.');

// ---------------------------------------------------------------------------
// Listeners and their inbound TLS.

export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;

/** A bind address: an IP literal or `localhost`. */
export const bindAddress = (doc: string) =>
  str(doc, {
    type: 'IP literal or `localhost`',
    check: (s: string) => (s !== 'localhost' && isIP(s) === 0 ? `must be an IP address (e.g. 127.0.0.1, 0.0.0.0, ::1) or "localhost", got "${s}"` : undefined),
  });

export const SESSION_RESUMPTION = ['tickets', 'cache', 'none'] as const;

export const ListenerTlsSchema = obj({
  cert_file: filePath('Server certificate chain (PEM, leaf first). Its first URI SAN is this hop\'s identity (`By` in XFCC).'),
  key_file: filePath('Private key (PEM) of `cert_file`.'),
  additional_certificates: v.optional(list(obj({
    cert_file: filePath('Certificate chain (PEM, leaf first).'),
    key_file: filePath('Private key (PEM) of `cert_file`.'),
  }, 'One more certificate of the same server.'), 'More certificates, each served to clients whose SNI one of its DNS SANs names (an exact name first, then a `*.` wildcard, looked up among all the certificates, `cert_file`\'s included; the first listed, `cert_file` first, wins a tie); `cert_file` serves a client without SNI or with a name none of them has (Envoy picks among a context\'s certificates the same way). For a gateway serving several host names on one port.',
    { default: '`[]`', scope: 'handshakes of this listener' }), []),
  ca_file: v.optional(filePath('CAs trusted to sign client certificates. When set, clients are asked for a certificate.')),
  require_client_certificate: bool('Refuse clients without a certificate that verifies against `ca_file`: each request on such a connection gets `400` naming the reason (`client certificate required`, `client certificate refused: CERT_HAS_EXPIRED`, …) and the connection closes; nothing is forwarded. `false`: a client may come without one (it then has no identity for `authorization`). Needs `ca_file`.',
    { conditional: true, default: '`true` when `ca_file` is set' }),
  min_version: v.optional(oneOf(TLS_VERSIONS, 'Lowest TLS version accepted.'), 'TLSv1.2'),
  session_resumption: v.optional(oneOf(SESSION_RESUMPTION, 'How a client resumes a TLS session without a full handshake. `tickets`: session tickets (RFC 5077, and TLS 1.3 tickets that hold the session), so the server keeps nothing. `cache`: no such tickets (Envoy\'s `disable_stateless_session_resumption`); sessions resume from a cache of the newest 2,048 sessions in each worker (TLS 1.2 session IDs, TLS 1.3 tickets that only name a cached session). `none`: every connection does a full handshake (with `disable_stateful_session_resumption` too).'), 'tickets'),
}, 'Inbound TLS (and mTLS when `ca_file` is set). Files are read and checked by the main thread, watched, and hot-swapped when they change (docs/tls.md).');

export const XFCC_MODES = ['sanitize', 'sanitize_set', 'forward_only', 'append_forward', 'always_forward_only'] as const;
export const CODECS = ['strict', 'uws'] as const;
export const CODEC_TYPES = ['auto', 'http1', 'http2'] as const;

export const Http2KeepaliveSchema = obj({
  interval_ms: ms(1, 'A PING is sent this often on every HTTP/2 connection.', { scope: 'ms, per connection' }),
  timeout_ms: v.optional(ms(1, 'A PING not acknowledged within this closes the connection.', { scope: 'ms, per PING' }), 5000),
}, 'HTTP/2 PING keepalive (Envoy\'s `connection_keepalive`): finds dead peers and silently dropped connections (a NAT or load balancer that forgot them) long before TCP would.');

export const ListenerHttp2Schema = obj({
  max_concurrent_streams: v.optional(int(1, 2_147_483_647, 'Streams a client may have open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused with REFUSED_STREAM.', { scope: 'per connection' }), 100),
  initial_stream_window_size: v.optional(int(65_535, 2_147_483_647, 'Flow-control window of each stream: request body bytes a client may send before Remora has passed them on (SETTINGS_INITIAL_WINDOW_SIZE).', { unit: 'bytes', scope: 'bytes, per stream' }), 65_535),
  initial_connection_window_size: v.optional(int(65_535, 2_147_483_647, 'Flow-control window of the whole connection.', { unit: 'bytes', scope: 'bytes, per connection' }), 1_048_576),
  connection_keepalive: v.optional(field(Http2KeepaliveSchema, 'PING clients; close a connection whose PING goes unanswered.', { default: 'unset (no PINGs)', scope: 'per connection' })),
}, 'HTTP/2 settings of a listener (Envoy\'s `http2_protocol_options`). The defaults are Envoy\'s recommendation for untrusted clients (100 streams, 64 KiB per stream, 1 MiB per connection): memory a client can make Remora hold stays small.');
export const ESCAPED_SLASHES_ACTIONS = ['keep_unchanged', 'reject_request', 'unescape_and_redirect', 'unescape_and_forward'] as const;
export const SERVER_HEADER_TRANSFORMATIONS = ['overwrite', 'append_if_absent', 'pass_through'] as const;
export const UNDERSCORE_HEADER_ACTIONS = ['allow', 'reject_request', 'drop_header'] as const;

export const TcpProxySchema = obj({
  cluster: v.optional(str('Every connection goes to this cluster.', { type: 'cluster name', default: '—' })),
  weighted_clusters: v.optional(list(WeightedClusterSchema, 'Each connection goes to one of these clusters, at random in proportion to the weights (total > 0).',
    { type: 'list of `{cluster, weight}`', scope: 'per connection', default: '—', nonEmpty: 'must list at least one cluster' })),
  idle_timeout_ms: v.optional(ms(0, 'No byte in either direction for this long closes both sides (Envoy\'s `idle_timeout`, 1 h by default). `0`: never.', { scope: 'ms, per connection' }), 3_600_000),
  max_connect_attempts: v.optional(int(1, 10, 'Upstream connects tried per connection before it is closed (Envoy\'s field); each retry goes to another endpoint when there is one.', { scope: 'per connection' }), 1),
  max_downstream_connection_duration_ms: v.optional(ms(0, 'A connection open this long is closed, whatever it carries (Envoy\'s field). `0`: no limit.', { scope: 'ms, per connection' }), 0),
}, 'Forward a connection\'s bytes to a cluster, both ways (Envoy\'s `envoy.filters.network.tcp_proxy`): the cluster\'s load balancing, connect timeout, `circuit_breakers.max_connections`, outlier detection and TLS apply. Exactly one of `cluster` / `weighted_clusters`. See [protocols.md](protocols.md#tcp-proxy).');

export const TRANSPORT_PROTOCOLS = ['tls', 'raw_buffer'] as const;
export const SOURCE_TYPES = ['any', 'same_ip_or_loopback', 'external'] as const;

/** An IP range (`10.0.0.0/8`, `fd00::/8`; a bare address is all its bits, written `/32` or `/128`). */
const cidr = (what: string) => v.pipe(v.string(`must be a string (${what})`), v.metadata({
  check: cidrProblem,
  normalize: (s: string) => (s.includes('/') ? s : `${s}/${s.includes(':') ? 128 : 32}`),
}));

function serverNameProblem(s: string): string | undefined {
  const host = s.startsWith('*.') ? s.slice(2) : s;
  return HOST_RE.test(host) ? undefined : `"${s}" is not a server name: use a host name or "*.suffix"`;
}

export const FilterChainMatchSchema = obj({
  server_names: v.optional(list(v.pipe(v.string('must be a string (a server name)'), v.metadata({ check: (s: string) => serverNameProblem(s.toLowerCase()), normalize: lower })),
    'The TLS ClientHello\'s SNI is one of these: an exact name, or `*.suffix` for any name under it (the longest suffix wins). Lower-cased.', { type: 'list of server names', default: '`[]` (any)' }), []),
  transport_protocol: v.optional(oneOf(TRANSPORT_PROTOCOLS, '`tls`: the connection starts with a TLS ClientHello; `raw_buffer`: it does not (Envoy\'s values, from its `tls_inspector`).', { default: 'any' })),
  application_protocols: v.optional(list(v.pipe(v.string('must be a string (an ALPN protocol id)'), v.metadata({ check: (s: string) => (s.length > 0 && s.length < 256 ? undefined : 'must be 1..255 characters') })),
    'One of the protocols the ClientHello offers by ALPN is one of these (`h2`, `http/1.1`, …).', { type: 'list of ALPN ids', default: '`[]` (any)' }), []),
  destination_prefix_ranges: v.optional(list(cidr('an IP range'), 'The address the connection reached (the PROXY header\'s destination when the listener reads one) is in one of these (Envoy\'s `prefix_ranges`).', { type: 'list of IP ranges', default: '`[]` (any)' }), []),
  direct_source_prefix_ranges: v.optional(list(cidr('an IP range'), 'The peer\'s own address (never the PROXY header\'s) is in one of these.', { type: 'list of IP ranges', default: '`[]` (any)' }), []),
  source_type: v.optional(oneOf(SOURCE_TYPES, '`same_ip_or_loopback`: the client (the PROXY header\'s source, else the peer) is on a loopback address or the address the connection reached; `external`: it is not.'), 'any'),
  source_prefix_ranges: v.optional(list(cidr('an IP range'), 'The client\'s address (the PROXY header\'s source, else the peer\'s) is in one of these.', { type: 'list of IP ranges', default: '`[]` (any)' }), []),
  source_ports: v.optional(list(int(1, 65535, 'A client port.'), 'The client\'s port is one of these.', { type: 'list of ports', default: '`[]` (any)' }), []),
}, 'What a connection must look like for a filter chain to take it. Envoy\'s order decides between chains, criterion by criterion, each time keeping the chains that match most specifically and falling back to those that leave the criterion out: `destination_prefix_ranges` (the longest matching range), the server name (exact, then the longest `*.suffix`), `transport_protocol`, `application_protocols`, `direct_source_prefix_ranges`, `source_type`, `source_prefix_ranges`, `source_ports`. A criterion left out matches anything.');

export const FilterChainSchema = obj({
  name: name('Used in logs and access logs.', 'unique within the listener'),
  match: v.optional(field(FilterChainMatchSchema, 'Which connections this chain takes.', { default: '`{}` (any; the same as the listener\'s own `tcp_proxy`)' }), {}),
  tcp_proxy: field(TcpProxySchema, 'Where this chain\'s connections go.', { required: 'is required (a filter chain forwards its connections with tcp_proxy)' }),
  tls: v.optional(field(ListenerTlsSchema, 'Terminate TLS on this chain\'s connections (Envoy\'s DownstreamTlsContext on a tcp_proxy chain): the handshake is Remora\'s, and the decrypted bytes go upstream. With `ca_file`, clients present a certificate that verifies, or the handshake fails. See [tls.md](tls.md).', { default: 'unset (TLS passes through)', scope: 'connections of this chain' })),
}, 'One way of handling a TCP listener\'s connections, picked by what the connection\'s first bytes say and by its addresses (Envoy\'s `filter_chains` with `filter_chain_match`). Without `tls` TLS is not terminated: the ClientHello is read and the whole connection, ClientHello included, goes upstream (TLS passthrough by SNI).');

export const HttpFilterChainSchema = obj({
  name: name('Used in logs and in the TLS material\'s name (`/certs`).', 'unique within the listener'),
  server_names: list(v.pipe(v.string('must be a string (a server name)'), v.metadata({ check: (s: string) => serverNameProblem(s.toLowerCase()), normalize: lower })),
    'The TLS ClientHello\'s SNI is one of these: an exact name, or `*.suffix` for any name under it. An exact name beats a wildcard, the longest `*.suffix` beats a shorter one (Envoy\'s order). Lower-cased; each name belongs to one chain.',
    { type: 'list of server names', nonEmpty: 'must list at least one server name (the listener\'s own `tls` and `virtual_hosts` are the chain for every other name)' }),
  tls: field(ListenerTlsSchema, 'This chain\'s certificates (and `additional_certificates`) and client CAs. `require_client_certificate`, `min_version` and `session_resumption` are the same on every chain of the listener and its own `tls` (they belong to the TLS server).',
    { required: 'is required (a chain picked by server name serves TLS)', scope: 'handshakes with one of its server names' }),
  virtual_hosts: list(VirtualHostSchema, 'This chain\'s routing tables: requests on its connections are routed here only, whatever their Host (Envoy routes by the chain\'s route configuration). Virtual host and route names are unique across the listener; domains within the chain.',
    { scope: 'requests on this chain\'s connections', nonEmpty: 'must list at least one virtual host' }),
}, 'One HTTPS filter chain of an HTTP listener, picked per connection by the server name the client sent (SNI), as Envoy picks an HttpConnectionManager\'s filter chain by `filter_chain_match.server_names`: its own certificate and its own route table. Everything else (codec, filters, rate limits, authorization, access log, timeouts) is the listener\'s.');

export const ListenerSchema = obj({
  name: name('Used in logs, metrics and the admin API.', 'unique among listeners'),
  address: v.optional(bindAddress('Bind address (`0.0.0.0` / `::` for all interfaces).'), '127.0.0.1'),
  port: int(0, 65535, 'Bind port. `0` lets the OS pick; all workers then share the port the first worker got.'),
  virtual_hosts: v.optional(list(VirtualHostSchema, 'Host-based routing tables of an HTTP listener. An HTTP listener lists at least one; a TCP listener (`tcp_proxy` / `filter_chains`) none.', { scope: 'this listener', default: '`[]`' }), []),
  tcp_proxy: v.optional(field(TcpProxySchema, 'Make this a TCP listener: connections are forwarded as bytes. With `filter_chains`, this is the default chain: connections that match no chain (Envoy\'s `default_filter_chain`); without it they are closed.', { default: 'unset (an HTTP listener)', scope: 'connections of this listener' })),
  filter_chains: v.optional(list(FilterChainSchema, 'TCP listener: chains picked per connection by its TLS ClientHello (SNI, ALPN) or its absence, and by its addresses. Names unique.', { default: '`[]`', scope: 'connections of this listener' }), []),
  http_filter_chains: v.optional(list(HttpFilterChainSchema, 'HTTPS listener: chains picked per connection by SNI, each with its own certificates and routes (Envoy Gateway\'s HTTPS listeners, one chain per host name). The listener\'s own `tls` and `virtual_hosts`, when set, are the default chain: connections whose server name no chain lists (or that send none). Without them such a connection\'s handshake is refused, as Envoy closes a connection no chain takes. See [tls.md](tls.md#filter-chains-by-server-name).',
    { default: '`[]`', scope: 'connections of this listener' }), []),
  upgrade_configs: v.optional(list(UpgradeConfigSchema, 'HTTP/1.1 upgrades allowed on this listener (`[{upgrade_type: websocket}]` for WebSocket); routes may override per type. An upgrade request of a type not allowed gets `403` (Envoy\'s `upgrade_failed`); `Upgrade: h2c` is ignored (the request is served over HTTP/1.1, as Envoy does). strict codec only.', { default: '`[]` (no upgrades)', scope: 'upgrade requests of this listener' }), []),
  access_log: v.optional(field(AccessLogSchema, 'One record per request: a line (Remora\'s JSON, or a `format` / `json_format`) in a file or on stdout, and/or an entry streamed to a gRPC access log service; see [operations.md](operations.md#access-logs).', { default: 'unset (no access log)', scope: 'this listener' })),
  generate_traceparent: v.optional(bool('When a request has no `traceparent` header, start a W3C trace: send `traceparent: 00-<32 hex trace id>-<16 hex span id>-01` (random, never all zeros) upstream and log its trace id. A request that has one keeps it (and its `tracestate`) unchanged.',
    { scope: 'requests forwarded upstream' }), false),
  tracing: v.optional(field(ListenerTracingSchema, 'Sampling and custom tags of this listener\'s spans (needs the root `tracing` block).', { default: 'unset (traced with the root block\'s settings when there is one)', scope: 'requests of this listener' })),
  max_request_headers_kb: v.optional(int(1, 8192, 'Request line plus headers above this get 431 and a closed connection (Envoy\'s default size).', { unit: 'KiB', scope: 'KiB, per request' }), 60),
  rate_limits: v.optional(list(RateLimitSchema, 'Local rate limits; all must admit the request. Names unique within the list.', { scope: 'every request of this listener, before routing' }), []),
  tls: v.optional(field(ListenerTlsSchema, 'Serve TLS, and mutual TLS when `ca_file` is set. See [tls.md](tls.md).', { default: 'unset (plain HTTP)', scope: 'this listener' })),
  forward_client_cert_details: oneOf(XFCC_MODES, 'Envoy\'s modes. `sanitize`: the client\'s XFCC is removed. `sanitize_set`: removed, then this hop\'s element (By, Hash, Subject, URI, DNS) is set. `append_forward`: this hop\'s element appended to the client\'s. `forward_only`: the client\'s forwarded unchanged. These three act only when the client presented a verified certificate; otherwise they sanitize. `always_forward_only`: forwarded unchanged, always.',
    { conditional: true, default: '`sanitize_set` on a listener that verifies client certificates, else `sanitize`', scope: '`x-forwarded-client-cert` sent upstream' }),
  authorization: v.optional(field(AuthorizationSchema, 'Allow/deny by the client certificate\'s identity; refused → `403`, flag `RBAC`.', { default: 'unset (anyone)', scope: 'every request, before routing' })),
  codec: v.optional(oneOf(CODECS, 'The HTTP/1 front end. `strict`: llhttp through Node\'s http server, safe against request smuggling (see [architecture.md](architecture.md#the-http1-front-end)). `uws`: uWebSockets.js, faster but its parser can be desynchronised by hostile bytes — only for clients you trust completely; Node 20 only (no build for Node 22 or 24, where a config asking for it is rejected). TLS listeners are always `strict`.',
    { scope: 'this listener' }), 'strict'),
  codec_type: v.optional(oneOf(CODEC_TYPES, 'HTTP versions served (Envoy\'s `codec_type`). `auto`: a plain listener takes HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on the same port, the connection preface decides; a TLS listener offers `h2` and `http/1.1` by ALPN. `http1` / `http2`: only that version. A `uws` codec listener serves HTTP/1.1 only (`auto` means `http1` there; `http2` is refused).',
    { scope: 'this listener' }), 'auto'),
  proxy_protocol: v.optional(bool('Every connection starts with a PROXY protocol header (HAProxy\'s v1 text or v2 binary), as an L4 load balancer sends it (Envoy\'s `envoy.filters.listener.proxy_protocol`). Its source address becomes the client\'s: `x-forwarded-for`, rate limits by client IP, access logs. A connection without a valid header within `request_headers_timeout_ms` is closed. Strict-codec listeners, plain or TLS (the header comes before the ClientHello), and TCP listeners (it is not forwarded; see `send_proxy_protocol` on a cluster).',
    { scope: 'this listener' }), false),
  http2_protocol_options: v.optional(field(ListenerHttp2Schema, 'HTTP/2 settings.', { default: 'all defaults', scope: 'every HTTP/2 connection to this listener' }), {}),
  max_request_headers_count: v.optional(int(1, 8192, 'More fields → `431` and a closed connection (Envoy\'s `max_headers_count`).', { scope: 'header fields, per request' }), 100),
  headers_with_underscores_action: v.optional(oneOf(UNDERSCORE_HEADER_ACTIONS, 'What a request header whose name contains `_` gets (Envoy\'s `headers_with_underscores_action`): passed on; the request answered `400` (flag DPE) and its connection closed (over HTTP/2 the stream ends with the 400, where Envoy resets it); or the header dropped before routing. Such names are legal, but some servers read `x_user` and `x-user` as one header, which lets a client smuggle a value past a proxy that checks only the dashed name.',
    { scope: 'request headers from clients of this listener' }), 'allow'),
  normalize_path: v.optional(bool('RFC 3986 normalisation: unreserved characters percent-decoded, other escapes upper-cased, dot segments removed (`/a/../b` → `/b`, `/a/%2e%2e/b` → `/b`). Routing, authorization and the upstream all see the normalised path. Envoy\'s default is off; Remora\'s is on, so that `/public/../private` cannot walk around a route.',
    { scope: 'every request, before routing' }), true),
  merge_slashes: v.optional(bool('`//a///b` → `/a/b` (Envoy\'s `merge_slashes`).', { scope: 'every request' }), false),
  path_with_escaped_slashes_action: v.optional(oneOf(ESCAPED_SLASHES_ACTIONS, 'Envoy\'s action of the same name: keep them as they are, answer `400`, answer `307` to the unescaped path, or unescape and route.',
    { scope: 'paths with `%2F`, `%5C`' }), 'keep_unchanged'),
  request_headers_timeout_ms: v.optional(int(100, 3_600_000, 'The request line and headers must arrive within this long, else `408` and the connection closes (Envoy\'s `request_headers_timeout`; nginx\'s `client_header_timeout` is 60 s). strict codec only.',
    { unit: 'ms', scope: 'ms, per connection' }), 10_000),
  idle_timeout_ms: v.optional(int(100, 86_400_000, 'A keep-alive connection with no request in flight closes after this long. Responses announce it (`Keep-Alive: timeout=60`), so clients stop reusing a connection before Remora closes it. Envoy\'s `idle_timeout` defaults to an hour; nginx\'s `keepalive_timeout` is 75 s. strict codec only.',
    { unit: 'ms', scope: 'ms, per connection' }), 60_000),
  max_connections: v.optional(int(0, 1_000_000, 'A new connection beyond it is closed at once, counted as `downstream_cx_overflow`. Workers accepting at the same instant may overshoot by at most workers − 1.',
    { default: '`0` (no limit)', scope: 'open connections to this listener, over all workers' }), 0),
  tcp_keepalive: v.optional(field(TcpKeepaliveSchema, 'TCP keepalive on every accepted connection (Envoy\'s listener `socket_options` SO_KEEPALIVE and TCP_KEEPIDLE). strict codec and TCP listeners.', { default: 'unset (off)', scope: 'each connection to this listener' })),
  max_requests_per_connection: v.optional(int(0, 1_000_000_000, 'The last allowed request is answered with `connection: close` and the connection ends (Envoy\'s `max_requests_per_connection`).',
    { default: '`0` (no limit)', scope: 'requests per connection' }), 0),
  server_name: v.optional(str('The `server` header (Envoy\'s `server_name`).', {
    type: 'header value', scope: 'responses',
    check: (s: string) => (s.length === 0 || !isValidHeaderValue(s) ? 'must be a non-empty header value (visible characters and spaces)' : undefined),
  }), 'remora'),
  server_header_transformation: v.optional(oneOf(SERVER_HEADER_TRANSFORMATIONS, 'Envoy\'s modes: always `server_name`; the upstream\'s `server` when it sent one, else `server_name`; the upstream\'s or none. A route\'s `response_headers_to_remove: [server]` removes it altogether.',
    { scope: 'responses' }), 'overwrite'),
}, 'A port Remora accepts traffic on, with its routing tables and per-listener policies.');
