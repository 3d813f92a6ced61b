// The reading side of the xDS translation (src/xds/translate.ts and its translate-*.ts
// parts): where a problem is (resource, field path), and Ctx, which collects rejections
// and decodes Anys, Durations, percentages and the Remora metadata extensions, counts
// the fields accepted without effect (noEffect: per field, the resources that set one)
// and lists the listeners accepted without being bound (unbound);
// plus the readers several resource types share (names, socket addresses, config sources).
// Plain-data accessors are in src/xds/read.ts, the writing side in translate-fields.ts.

import { REMORA_METADATA } from './names.js';
import { loadXdsProtos } from './protos.js';
import type { SdsSource } from './sds.js';
import { asArr, asNum, asObj, asStr, fromStruct, isObj, isSet, type Obj } from './read.js';

/** One rejected field. `message` says what is wrong; `formatRejection` adds where. */
export interface XdsRejection {
  readonly typeUrl: string;
  /** The resource's name ("" for problems of the whole set, "bootstrap" for the base). */
  readonly name: string;
  /** Field path inside the resource, e.g. `filter_chains[0].filters[0].typed_config.http_filters[1]`. */
  readonly path: string;
  readonly message: string;
}

export const UNSUPPORTED = 'field not supported by Remora';

/** `Listener "in" filter_chains[0]: message` — the form used in NACKs and logs. */
export function formatRejection(r: XdsRejection): string {
  const kind = r.typeUrl === '' ? '' : `${r.typeUrl.slice(r.typeUrl.lastIndexOf('.') + 1)} `;
  return `${kind}"${r.name}"${r.path === '' ? '' : ` ${r.path}`}: ${r.message}`;
}

// ---------------------------------------------------------------------------
// Where a problem is: a resource and a field path inside it.

export interface Loc {
  readonly typeUrl: string;
  readonly name: string;
  readonly path: string;
}

export const root = (typeUrl: string, name: string): Loc => ({ typeUrl, name, path: '' });

/** `sub(loc, 'a')`, `sub(loc, 0)`, `sub(loc, 'a[0].b')`, `sub(loc, '["key"]')`. */
export function sub(loc: Loc, key: string | number): Loc {
  const k = typeof key === 'number' ? `[${key}]` : key;
  const path = loc.path === '' ? k.replace(/^\./, '') : k.startsWith('[') ? `${loc.path}${k}` : `${loc.path}.${k}`;
  return { ...loc, path };
}

/** Where an HttpConnectionManager's tracing provider sends spans (the first one read
 *  becomes the root `tracing` block when the bootstrap has none). */
export interface TracingProvider {
  readonly cluster: string;
  readonly protocol: 'grpc' | 'http/protobuf';
  readonly serviceName: string | undefined;
  readonly timeoutMs: number | undefined;
}

/** One translation's rejections (deduplicated) and the readers that reject as they go. */
export class Ctx {
  readonly errors: XdsRejection[] = [];
  /** The first OpenTelemetry tracing provider an HttpConnectionManager names. */
  tracingProvider: TracingProvider | null = null;
  /** Resources (`<type URL> <name>`) that name a Secret not received yet: they warm. */
  readonly waitingForSecrets = new Set<string>();
  /** Listeners accepted and not bound (`bind_to_port: false`, see bindsPort in
   *  resources.ts), by name, in the order read: in no config, so not served. */
  readonly unbound: string[] = [];
  /** Per RouteConfiguration and ClusterLoadAssignment name, how long the resources that
   *  reference it wait for it (ConfigSource.initial_fetch_timeout, ms; the shortest when
   *  several do). Absent: wait as long as it takes (0s). */
  readonly fetchTimeouts = { routes: new Map<string, number>(), endpoints: new Map<string, number>() };
  private readonly seen = new Set<string>();
  /** Fields accepted without effect: field name → resources (`<type URL> <name>`) setting it. */
  private readonly inert = new Map<string, Set<string>>();
  readonly protos = loadXdsProtos();

  /** The Secrets received and where their files go (null: no SDS, every Secret missing). */
  constructor(readonly sds: SdsSource | null = null) {}

  /** The Secret `name`, or undefined when not received (the resource of `loc` then waits). */
  secret(name: string, loc: Loc): Obj | undefined {
    const s = this.sds?.secrets.get(name);
    if (s === undefined) this.waitingForSecrets.add(`${loc.typeUrl} ${loc.name}`);
    return s;
  }

  reject(loc: Loc, message: string): void {
    const r: XdsRejection = { typeUrl: loc.typeUrl, name: loc.name, path: loc.path, message };
    const key = formatRejection(r);
    if (this.seen.has(key)) return; // a route configuration shared by two listeners
    this.seen.add(key);
    this.errors.push(r);
  }

  /**
   * Records a field that is set and accepted without effect in Remora's model (docs/xds.md
   * says why for each). `field` is a stable name: `<Envoy message>.<field path>` without
   * indexes (`HttpConnectionManager.use_remote_address`), or `HttpFilter <filter>`,
   * `NetworkFilter <filter>`, `ListenerFilter <filter>` for a filter that has none. Call it
   * only for a field that is set: an unset one is not counted.
   */
  noEffect(loc: Loc, field: string): void {
    const resources = this.inert.get(field) ?? new Set<string>();
    resources.add(`${loc.typeUrl} ${loc.name}`);
    this.inert.set(field, resources);
  }

  /** Per field accepted without effect, how many resources set it (sorted by field). */
  noEffectCounts(): ReadonlyMap<string, number> {
    return new Map([...this.inert].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([f, r]) => [f, r.size]));
  }

  /** Rejects every set field of `o` that is not in `allowed`. */
  only(o: Obj, loc: Loc, allowed: readonly string[]): void {
    for (const [k, v] of Object.entries(o)) {
      if (!allowed.includes(k) && isSet(v)) this.reject(sub(loc, k), UNSUPPORTED);
    }
  }

  /** Decodes an Any; undefined (rejected) when it cannot be. */
  decode(v: unknown, loc: Loc): { typeUrl: string; message: Obj } | undefined {
    const any = asObj(v);
    const typeUrl = asStr(any?.type_url);
    if (any === undefined || typeUrl === undefined || typeUrl === '') {
      this.reject(loc, 'is required (a typed config)');
      return undefined;
    }
    const value = any.value instanceof Uint8Array ? any.value : new Uint8Array(0);
    try {
      return this.protos.decodeAny({ type_url: typeUrl, value });
    } catch (err) {
      this.reject(loc, `cannot decode ${typeUrl}: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  /** A Duration in whole milliseconds; undefined when unset or rejected. */
  ms(v: unknown, loc: Loc): number | undefined {
    const d = asObj(v);
    if (d === undefined) return undefined;
    this.only(d, loc, ['seconds', 'nanos']);
    const seconds = asNum(d.seconds);
    const nanos = asNum(d.nanos);
    if (seconds < 0 || nanos < 0) {
      this.reject(loc, 'must not be negative');
      return undefined;
    }
    if (nanos % 1_000_000 !== 0) {
      this.reject(loc, `must be a whole number of milliseconds (got ${seconds}s and ${nanos}ns)`);
      return undefined;
    }
    return seconds * 1000 + nanos / 1_000_000;
  }

  /** A RuntimeFractionalPercent as a percentage; undefined when unset. Remora has no
   *  runtime, so a runtime_key never overrides the default value. */
  percent(v: unknown, loc: Loc): number | undefined {
    const o = asObj(v);
    if (o === undefined) return undefined;
    this.only(o, loc, ['default_value', 'runtime_key']);
    const d = asObj(o.default_value) ?? {};
    this.only(d, sub(loc, 'default_value'), ['numerator', 'denominator']);
    const denominator = d.denominator === 'TEN_THOUSAND' ? 10_000 : d.denominator === 'MILLION' ? 1_000_000 : 100;
    return (asNum(d.numerator) * 100) / denominator;
  }

  /**
   * The `remora` Struct of a resource's metadata, with only `allowed` keys (none: the
   * resource has no Remora extensions, and a `remora` namespace is rejected).
   *
   * Other namespaces (`istio`, `envoy-gateway`, `envoy.filters.http.lua`, `envoy.lb`,
   * ...) are accepted and ignored: in Envoy, metadata is read only by what a namespace
   * names (a filter, subset or canary balancing, access log or header formatters), and
   * Remora rejects each of those consumers where it is configured. So metadata alone
   * changes no traffic. The same holds for `typed_filter_metadata`, except under `remora`,
   * which Remora reads only as a Struct in `filter_metadata`. Such a namespace is counted
   * as `field` (noEffect), the metadata field's name (`Listener.metadata`), unless the
   * caller reads it itself (`read`: an endpoint's `envoy.transport_socket_match`).
   */
  extensions(o: Obj, loc: Loc, allowed: readonly string[], field: string, read: readonly string[] = []): Obj {
    const m = asObj(o.metadata);
    if (m === undefined) return {};
    const ml = sub(loc, 'metadata');
    this.only(m, ml, ['filter_metadata', 'typed_filter_metadata']);
    const namespaces = [...Object.keys(asObj(m.filter_metadata) ?? {}), ...Object.keys(asObj(m.typed_filter_metadata) ?? {})];
    if (namespaces.some((n) => n !== REMORA_METADATA && !read.includes(n))) this.noEffect(loc, field);
    if (asObj(m.typed_filter_metadata)?.[REMORA_METADATA] !== undefined) {
      this.reject(sub(ml, `typed_filter_metadata["${REMORA_METADATA}"]`), `Remora reads its fields from filter_metadata.${REMORA_METADATA} (a Struct)`);
    }
    const s = asObj(asObj(m.filter_metadata)?.[REMORA_METADATA]);
    if (s === undefined) return {};
    const ext = fromStruct(s);
    for (const k of Object.keys(ext)) {
      if (!allowed.includes(k)) {
        this.reject(sub(ml, `filter_metadata.${REMORA_METADATA}.${k}`), allowed.length === 0
          ? 'unknown Remora extension (there are none here)'
          : `unknown Remora extension (allowed here: ${allowed.join(', ')})`);
      }
    }
    return ext;
  }
}

// ---------------------------------------------------------------------------
// Readers several resource types share

/** Rejects a resource name that disagrees with the key it is stored under. */
export function checkName(ctx: Ctx, name: unknown, key: string, loc: Loc): void {
  if (name !== undefined && name !== key) ctx.reject(sub(loc, 'name'), `"${String(name)}" does not match the resource name "${key}"`);
}

/** Where a Remora extension of the resource at `loc` is. */
export const extPath = (loc: Loc, key: string): Loc => sub(loc, `metadata.filter_metadata.${REMORA_METADATA}.${key}`);

/** `address.socket_address` → address and port (`protocol` TCP only). */
export function socketAddress(ctx: Ctx, v: unknown, loc: Loc): { address: string; port: number; addressLoc: Loc; portLoc: Loc } | undefined {
  const a = asObj(v);
  const sl = sub(loc, 'socket_address');
  const s = asObj(a?.socket_address);
  if (a === undefined || s === undefined) {
    ctx.reject(sl, 'is required');
    return undefined;
  }
  ctx.only(a, loc, ['socket_address']);
  ctx.only(s, sl, ['address', 'port_value', 'protocol']);
  if (isSet(s.protocol) && s.protocol !== 'TCP') ctx.reject(sub(sl, 'protocol'), `${String(s.protocol)} is not supported (TCP only)`);
  return { address: asStr(s.address) ?? '', port: asNum(s.port_value), addressLoc: sub(sl, 'address'), portLoc: sub(sl, 'port_value') };
}

/** Envoy's initial_fetch_timeout when a ConfigSource does not set one. */
export const DEFAULT_FETCH_TIMEOUT_MS = 15_000;

/** ApiConfigSource api_types that name a gRPC management server (state of the world or
 *  delta, a stream of its own or aggregated); REST polling is not one. */
const GRPC_API_TYPES = ['GRPC', 'DELTA_GRPC', 'AGGREGATED_GRPC', 'AGGREGATED_DELTA_GRPC'];

/**
 * A ConfigSource for RDS/EDS (Remora fetches everything over its one ADS stream) of the
 * RouteConfiguration or ClusterLoadAssignment `name`: its initial_fetch_timeout is
 * recorded (ctx.fetchTimeouts) as Envoy reads it: unset is 15 s, `0s` is no timeout
 * (Istio's choice: wait however long it takes). When it expires with the resource still
 * missing, the listener serves without routes (404 NR) or the cluster without endpoints
 * (503 UH), until the resource arrives (src/main/xds-source.ts).
 *
 * `ads: {}` is Remora's way. An `api_config_source` naming one gRPC management server by
 * its bootstrap cluster (go-control-plane's example: `envoy_grpc.cluster_name:
 * xds_cluster`) is read as the server Remora already talks to, the only one it has
 * (`xds.servers`): the resource is fetched on the ADS stream, counted as
 * `ConfigSource.api_config_source (fetched on the ADS stream)`. A server that serves it
 * only on a stream of its own leaves the resource missing, as above.
 */
export function configSource(ctx: Ctx, v: unknown, loc: Loc, kind: 'routes' | 'endpoints', name: string): void {
  const cs = asObj(v);
  const api = asObj(cs?.api_config_source);
  if (cs === undefined || (!isObj(cs.ads) && api === undefined)) {
    ctx.reject(loc, 'must be { ads: {} } (or an api_config_source naming one gRPC management server): Remora receives every resource on its ADS stream');
    return;
  }
  ctx.only(cs, loc, ['ads', 'api_config_source', 'resource_api_version', 'initial_fetch_timeout']);
  if (api !== undefined && !isObj(cs.ads)) {
    const al = sub(loc, 'api_config_source');
    if (grpcServer(ctx, api, al, MANAGEMENT_SERVER) !== undefined) ctx.noEffect(al, 'ConfigSource.api_config_source (fetched on the ADS stream)');
  }
  if (isSet(cs.resource_api_version) && cs.resource_api_version !== 'AUTO' && cs.resource_api_version !== 'V3') {
    ctx.reject(sub(loc, 'resource_api_version'), `${String(cs.resource_api_version)} is not supported (V3)`);
  }
  const ms = cs.initial_fetch_timeout !== undefined ? ctx.ms(cs.initial_fetch_timeout, sub(loc, 'initial_fetch_timeout')) ?? 0 : DEFAULT_FETCH_TIMEOUT_MS;
  if (ms <= 0 || name === '') return;
  const timeouts = ctx.fetchTimeouts[kind];
  timeouts.set(name, Math.min(ms, timeouts.get(name) ?? ms));
}

/** What an ApiConfigSource may name: its kind of server, the API types it speaks, and
 *  what Remora has of them. */
export interface GrpcServerRole {
  readonly server: string;
  readonly types: readonly string[];
  /** How a rejection names the types it accepts. */
  readonly typesText: string;
  readonly has: string;
}

/** RDS and EDS sources (see configSource): the ADS server is the only one Remora has. */
const MANAGEMENT_SERVER: GrpcServerRole = { server: 'management server', types: GRPC_API_TYPES, typesText: 'GRPC or DELTA_GRPC', has: "Remora has one, its bootstrap's xds.servers" };

/** An ApiConfigSource that names one gRPC server by its bootstrap cluster: the cluster's
 *  name, or undefined when rejected. A Google gRPC target, several servers, REST polling
 *  and the settings of a stream of its own (request timeouts, rate limits, validators)
 *  are rejected. (set_node_on_first_message_only is what Remora does either way.) */
export function grpcServer(ctx: Ctx, api: Obj, loc: Loc, role: GrpcServerRole): string | undefined {
  ctx.only(api, loc, ['api_type', 'transport_api_version', 'grpc_services', 'set_node_on_first_message_only']);
  const type = asStr(api.api_type) ?? 'DEPRECATED_AND_UNAVAILABLE_DO_NOT_USE';
  if (!role.types.includes(type)) ctx.reject(sub(loc, 'api_type'), `${type} is not supported (a gRPC ${role.server}: ${role.typesText})`);
  if (isSet(api.transport_api_version) && api.transport_api_version !== 'AUTO' && api.transport_api_version !== 'V3') {
    ctx.reject(sub(loc, 'transport_api_version'), `${String(api.transport_api_version)} is not supported (V3)`);
  }
  const services = asArr(api.grpc_services);
  if (services.length !== 1) {
    ctx.reject(sub(loc, 'grpc_services'), `must name exactly one ${role.server} (got ${services.length}): ${role.has}`);
    return undefined;
  }
  const gl = sub(loc, 'grpc_services[0]');
  const service = asObj(services[0]) ?? {};
  if (isSet(service.google_grpc)) {
    ctx.reject(sub(gl, 'google_grpc'), `is not supported: name the ${role.server} by its bootstrap cluster (envoy_grpc.cluster_name)`);
    return undefined;
  }
  ctx.only(service, gl, ['envoy_grpc']);
  const envoyGrpc = asObj(service.envoy_grpc) ?? {};
  ctx.only(envoyGrpc, sub(gl, 'envoy_grpc'), ['cluster_name']);
  const name = asStr(envoyGrpc.cluster_name) ?? '';
  if (name === '') {
    ctx.reject(sub(gl, 'envoy_grpc.cluster_name'), 'is required');
    return undefined;
  }
  return name;
}
