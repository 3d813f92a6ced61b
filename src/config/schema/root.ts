// Config schema: the root of a config file, its process-wide blocks (admin, probes, drain,
// worker limits, stats), and the `xds` block of a bootstrap file (listeners and clusters
// from a control plane; the sidecar's mesh identity, docs/mesh-ca.md).

import * as v from 'valibot';
import { parseSpiffeId } from '../../core/spiffe.js';
import { MAX_CLUSTERS, MAX_LISTENERS } from '../../shared/limits.js';
import { bool, field, int, list, ms, num, obj, oneOf, str } from './fields.js';
import { ClusterSchema } from './cluster.js';
import { bindAddress, ListenerSchema } from './listener.js';
import { TracingSchema } from './tracing.js';

export const AdminSchema = obj({
  address: v.optional(bindAddress('Bind address. A non-loopback address is refused unless `allow_remote` is `true`.'), '127.0.0.1'),
  port: v.optional(int(0, 65535, 'Bind port; `0` picks a free port.'), 9901),
  allow_remote: v.optional(bool('Allow a non-loopback `address`. Admin can stop the proxy (`/quitquitquit`), fail its health checks and dump its config; to expose only `/ready`, `/live` and `/metrics`, use [`probes`](#probes) instead.'), false),
}, 'The admin HTTP server. Loopback-only by default.');

export const ProbesSchema = obj({
  address: v.optional(bindAddress('Bind address (probes come from outside the pod).'), '0.0.0.0'),
  port: int(0, 65535, 'Bind port; `0` picks one (the ready log line names it as `probes`).'),
}, 'A read-only HTTP server for kubelet/load-balancer probes: GET /ready, /live and /metrics only, so they can be reached without exposing the admin API.');

export const DrainSchema = obj({
  delay_ms: v.optional(ms(0, 'After `/ready` turns 503, listeners keep accepting this long so load balancers stop sending first. SIGTERM and `/drain_listeners` wait it; SIGINT and `/quitquitquit` do not.'), 5000),
  timeout_ms: v.optional(ms(0, 'Then in-flight requests get this long; what is left is cut and logged.'), 20_000),
}, 'Graceful stop (SIGTERM, POST /quitquitquit, POST /drain_listeners).');

export const WorkerLimitsSchema = obj({
  heartbeat_timeout_ms: v.optional(ms(0, 'A worker that has not stored its heartbeat (every second) for this long is stuck; the process ends (SIGKILL) for its supervisor to restart it — see [operations.md](operations.md#worker-failures). `0` turns the watchdog off.', {
    type: '`0` or 3000..3600000', scope: 'ms, per worker',
    check: (n: number) => (n > 0 && n < 3000 ? 'must be 0 (off) or at least 3000 (workers store their heartbeat once a second)' : undefined),
  }), 10_000),
  memory_limit_mb: v.optional(int(0, 65536, 'A worker above it drains and is replaced.', { unit: 'MiB', default: '`0` (none)', scope: 'MiB of V8 heap, per worker' }), 0),
  young_generation_mb: v.optional(int(0, 1024, 'The most a worker\'s V8 young generation (where short-lived objects go) may grow to (the Worker `resourceLimits.maxYoungGenerationSizeMb`). V8 grows it with the allocation rate and seldom gives it back: a large config applied, or a burst of traffic, leaves each worker holding tens of MB. A small value trades that memory for more frequent minor garbage collections: the default, 16, holds about 11 MB less per busy worker than V8\'s own limit at no measurable CPU cost, while 8 cost 5–12 % more CPU per request ([performance.md](performance.md#memory-footprint-2026-12-03)). `0`: V8\'s own limit (48 MiB on 64-bit). Read when the workers start: a change needs a restart.',
    { unit: 'MiB', default: '`16`', scope: 'per worker, from start' }), 16),
  idle_heap_trim_after_ms: v.optional(ms(0, 'A worker that was busy and has then been quiet this long (its event loop under 2 % busy, looked at once a second) runs one full garbage collection, which gives back the young generation and the garbage a burst of traffic left; V8 keeps both in an idle worker. 2 workers went from 104 MB resident after a burst to 92 MB ([performance.md](performance.md#given-back-when-traffic-stops-2026-12-05)). The price is paid by the next burst: for its first seconds a worker spends more CPU per request (40 % more over the first 2 s at the median of the runs measured) while its young generation grows back, so keep this well above the gaps between your bursts. `0`: never.', {
    type: '`0` or 10000..', scope: 'ms, per worker',
    check: (n: number) => (n > 0 && n < 10_000 ? 'must be 0 (off) or at least 10000 (sooner, V8 may still see the burst\'s allocation rate and keep the young generation)' : undefined),
  }), 30_000),
  max_downstream_connections: v.optional(int(0, 10_000_000, 'A new connection beyond it is closed at once, counted as its listener\'s `downstream_cx_overflow` (Envoy\'s `global_downstream_max_connections`). Workers accepting at the same instant may overshoot by at most workers − 1.',
    { default: '`0` (none)', scope: 'open client connections, every listener and worker of the process' }), 0),
}, 'Limits that protect the sidecar itself.');

export const StatsSchema = obj({
  enabled: v.optional(bool('Workers count into shared memory (see [metrics.md](metrics.md)). `false` makes recording a no-op; `/metrics` then has only process and worker metrics. Meant for measuring the price of stats; leave it on.',
    { scope: 'every worker' }), true),
}, 'Request, connection and latency statistics for `/metrics` and `/stats`.');

export const RootSchema = obj({
  workers: int(1, 256, 'Worker threads; every worker serves every listener.', { conditional: true, default: '`os.availableParallelism()`', scope: 'process' }),
  admin: v.optional(field(AdminSchema, 'The admin HTTP server.', { default: 'see Admin', scope: 'process' }), {}),
  probes: v.optional(field(ProbesSchema, 'A read-only server for kubelet and Prometheus: `GET /ready`, `/live`, `/metrics` only.', { default: 'unset (none)', scope: 'process' })),
  drain: v.optional(field(DrainSchema, 'Graceful stop on SIGTERM / `/quitquitquit` / `/drain_listeners`.', { default: '`{ delay_ms: 5000, timeout_ms: 20000 }`', scope: 'process' }), {}),
  worker_limits: v.optional(field(WorkerLimitsSchema, 'Watchdog, memory limit, process-wide connection limit.',
    { default: '`{ heartbeat_timeout_ms: 10000, memory_limit_mb: 0, young_generation_mb: 16, idle_heap_trim_after_ms: 30000, max_downstream_connections: 0 }`', scope: 'every worker' }), {}),
  stats: v.optional(field(StatsSchema, 'Request, connection and latency statistics for `/metrics` and `/stats`.', { default: '`{ enabled: true }`', scope: 'process' }), {}),
  tracing: v.optional(field(TracingSchema, 'Spans exported over OTLP; every HTTP listener traces ([observability.md](observability.md#tracing)).', { default: 'unset (no tracing)', scope: 'process' })),
  listeners: list(ListenerSchema, 'Ports Remora accepts traffic on.',
    { type: `list of [Listener](#listener) (at most ${MAX_LISTENERS})`, scope: 'process', nonEmpty: 'must list at least one listener' }),
  clusters: v.optional(list(ClusterSchema, 'Upstream services that routes forward to.', { type: `list of [Cluster](#cluster) (at most ${MAX_CLUSTERS})`, scope: 'process' }), []),
}, 'A Remora config file (without `xds`).');

// ---------------------------------------------------------------------------
// xDS bootstrap

const notEmpty = (s: string): string | undefined => (s === '' ? 'must not be empty' : undefined);

/** 15 days: the longest certificate the reference mesh CA grants. */
const MAX_CERT_LIFETIME_S = 15 * 86_400;

export const MeshIdentitySchema = obj({
  spiffe_id: str('The identity asked for: `spiffe://<trust-domain>/<path>`.', {
    type: 'SPIFFE ID',
    check: (s: string) => { const id = parseSpiffeId(s); return id.ok ? undefined : id.problem; },
  }),
  dir: str('Where `key.pem`, `cert.pem` and `ca.pem` are written (created when missing).', { type: 'directory path', check: notEmpty }),
  lifetime_seconds: v.optional(int(1, MAX_CERT_LIFETIME_S, 'Lifetime asked for; the CA may clamp it (the reference CA grants 600 .. 1296000).', { unit: 'seconds', scope: 'seconds' }), 86_400),
  renew_fraction: v.optional(num(0.05, 0.9, 'Renew once this fraction of the certificate\'s lifetime has passed.'), 0.5),
  token_file: v.optional(str('Its content (trimmed) is sent as `authorization: Bearer <token>`; read for every request, so a rotated token applies at once.', { type: 'path', check: notEmpty })),
  trust_bundle_file: v.optional(str('CA roots given out of band (PEM, e.g. from a ConfigMap), read at every renewal: the certificate must chain to one of them, and the CA bundle the control plane sends is written to `ca.pem` only when each of its certificates is one of these roots, is signed by one, or is the self-signed twin of one that is (a cross-signed new root). Without it, the first bundle received is pinned in `ca.pem` (trust on first use) and later bundles must chain to it the same way. A control plane with another CA is refused; the current files stay.',
    { type: 'path', default: 'unset (pinned on first use)', check: notEmpty })),
}, 'A certificate for this sidecar\'s SPIFFE identity from the control plane\'s mesh CA, written to files in `dir` and renewed before it expires (docs/mesh-ca.md).');

export const XdsTlsSchema = obj({
  ca_file: str('Roots the control plane\'s certificate must chain to, given out of band (PEM: the mesh CA\'s `ca.pem` from a ConfigMap or Secret), read at every connection. Also the pinned roots of `mesh_identity` when it has no `trust_bundle_file`.',
    { type: 'path', check: notEmpty }),
  server_spiffe_id: v.optional(str('The SPIFFE ID the control plane\'s certificate must carry (its URI SAN); host names are not checked.', {
    type: 'SPIFFE ID',
    default: '`spiffe://<trust domain of mesh_identity, else cluster.local>/ns/remora-system/sa/remora-control-plane`',
    check: (s: string) => { const id = parseSpiffeId(s); return id.ok ? undefined : id.problem; },
  })),
  cert_file: v.optional(str('A client certificate (PEM chain) for mTLS, when the certificate comes from elsewhere than `mesh_identity` (SPIRE, cert-manager); with `mesh_identity` its `cert.pem` is used. Needs `key_file`.', { type: 'path', check: notEmpty })),
  key_file: v.optional(str('The key of `cert_file`.', { type: 'path', check: notEmpty })),
}, 'TLS to the control plane: the server verified by its SPIFFE ID and out-of-band roots; this sidecar\'s certificate presented once it has one (mTLS), its token before that.');

/** The rules between xds.tls's fields and mesh_identity that the schema cannot say. */
export function xdsTlsErrors(xds: { tls?: { cert_file?: string; key_file?: string }; mesh_identity?: unknown }): { path: string; message: string }[] {
  const tls = xds.tls;
  if (tls === undefined) return [];
  const errors: { path: string; message: string }[] = [];
  if ((tls.cert_file === undefined) !== (tls.key_file === undefined)) {
    const [set, missing] = tls.cert_file === undefined ? ['key_file', 'cert_file'] : ['cert_file', 'key_file'];
    errors.push({ path: `xds.tls.${set}`, message: `needs xds.tls.${missing}` });
  }
  if (tls.cert_file !== undefined && xds.mesh_identity !== undefined) {
    errors.push({ path: 'xds.tls.cert_file', message: 'must not be set with xds.mesh_identity, whose certificate is presented' });
  }
  return errors;
}

/** An SDS server's address: a Unix socket (`unix:/path`, `unix:///path`) or HOST:PORT. */
function sdsServerProblem(s: string): string | undefined {
  if (/^unix:(\/\/)?\/[^\s]+$/.test(s)) return undefined;
  if (/^[^\s:/]+:\d{1,5}$|^\[[0-9a-fA-F:.]+\]:\d{1,5}$/.test(s)) return undefined;
  return `must be unix:/absolute/path or HOST:PORT, got "${s}"`;
}

export const XdsNodeSchema = obj({
  id: str('This sidecar\'s node id (shown by the control plane).', { check: notEmpty }),
  cluster: str('The node group: the reference control plane serves `<cluster>.yaml` from its directory.'),
  metadata: v.optional(field(v.pipe(v.record(v.string(), v.string()), v.readonly()), 'Sent as the node\'s metadata.', { type: 'map of strings' }), {}),
}, 'The node this sidecar presents to the control plane.');

export const XdsSchema = obj({
  servers: list(v.pipe(v.string('must be HOST:PORT'), v.metadata({
    check: (s: string) => (/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:.]+\]:\d{1,5}$/.test(s) ? undefined : 'must be HOST:PORT'),
  })), 'Control-plane addresses, tried in order; on a lost stream the next one is tried after a jittered exponential backoff (0.5 s doubling to 30 s).',
  { type: 'list of `HOST:PORT`', nonEmpty: 'must list at least one control-plane address' }),
  node: field(XdsNodeSchema, 'This sidecar as the control plane sees it.'),
  api_type: v.optional(oneOf(['sotw', 'delta'] as const, 'The ADS variant: `sotw` (state of the world, StreamAggregatedResources: every response of LDS/CDS is the whole set) or `delta` (incremental, DeltaAggregatedResources: a response carries only what changed and names what was removed; after a reconnect the sidecar says which versions it holds, so nothing unchanged is sent again). Envoy\'s `ads_config.api_type` GRPC and DELTA_GRPC.'), 'sotw'),
  persist_path: v.optional(str('The last applied config is saved here (temp file + rename) after every update.', { type: 'file path' })),
  initial_fetch_timeout_ms: v.optional(ms(0, 'At startup, after this long without a complete config from the control plane, Remora starts from `persist_path` if it holds a valid config (else it keeps waiting).'), 10_000),
  sds_dir: v.optional(str('Where the certificates, keys and CAs of Secrets received over ADS (SDS) are written, one directory per Secret, key files mode 0600; listeners and clusters read them from there, and a new version of a Secret rotates them in place.',
    { type: 'directory path', default: '`<persist_path>.sds`, else `remora-sds-<pid>` in the temp directory', check: notEmpty })),
  sds_servers: v.optional(field(v.pipe(v.record(v.string(), v.pipe(v.string('must be a string (`unix:PATH` or `HOST:PORT`)'), v.metadata({ check: sdsServerProblem }))), v.readonly()),
    'SDS servers of their own, by the name an SdsSecretConfig\'s `api_config_source` gives them (`grpc_services[0].envoy_grpc.cluster_name`; Istio\'s `sds-grpc`, the istio-agent\'s Unix socket). Remora keeps one Secret Discovery Service stream (StreamSecrets, plaintext, state of the world) to each server that a listener or cluster asks for a Secret, subscribed to the names asked for; what it receives is written under `sds_dir` like a Secret over ADS. An SdsSecretConfig naming a server not listed here is rejected.',
    { type: 'map of name → `unix:PATH` or `HOST:PORT`', default: 'none' }), {}),
  mesh_identity: v.optional(field(MeshIdentitySchema, 'A certificate for this sidecar\'s SPIFFE identity from the control plane\'s mesh CA (docs/mesh-ca.md).', { default: 'unset (none)' })),
  tls: v.optional(field(XdsTlsSchema, 'Speak TLS to the control plane (for `remora control-plane --tls`): xDS and certificate requests then cross the network encrypted, to a verified server.', { default: 'unset (plaintext)' })),
}, 'The `xds` block of a bootstrap file: listeners and clusters come from a control plane instead of the file.');
