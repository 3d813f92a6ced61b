// The control plane's snapshots: one per node group, from a directory of Remora config
// files (`<group>.yaml|.yml|.json`) or from the management API's PushSnapshot. Each
// snapshot is a validated RemoraConfig translated once into xDS resources and encoded
// once as `Any`s, so serving any number of nodes costs no translation.
//
// The directory is watched like src/main/config-watch.ts watches a config file: every
// event (including Kubernetes' `..data` symlink swap) schedules a debounced rescan of the
// whole directory, and a file whose content hash changed is loaded. A file that fails
// validation or translation is rejected whole (every error logged) and its group keeps
// serving its last good snapshot. A slow periodic rescan covers file systems whose
// watch events get lost.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { extname, join } from 'node:path';
import { parseConfigText } from '../config/load.js';
import type { ConfigError, RemoraConfig } from '../config/types.js';
import { validateConfig } from '../config/validate.js';
import type { Logger } from '../core/log.js';
import { loadXdsProtos, TypeUrl, type AnyMessage, type ProtoObject } from '../xds/protos.js';

/** The translation of a config into xDS resources: src/xds/encode.ts
 *  (injectable for tests). */
export interface XdsTranslator {
  toXdsResources(
    config: RemoraConfig,
    opts: { edsForAllClusters: boolean },
  ): {
    listeners: Map<string, ProtoObject>;
    routes: Map<string, ProtoObject>;
    clusters: Map<string, ProtoObject>;
    endpoints: Map<string, ProtoObject>;
  };
  grpcApiListener(name: string, routeConfigName: string): ProtoObject;
}

/** The four resource types served, in the order a snapshot is pushed: clusters and their
 *  endpoints before the listeners and routes that use them (Envoy's ADS ordering). */
export const PUSH_ORDER: readonly string[] = [
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Listener,
  TypeUrl.RouteConfiguration,
];

/** LDS and CDS subscriptions with no names are wildcard (all resources of the type). */
export const WILDCARD_TYPES: ReadonlySet<string> = new Set([TypeUrl.Listener, TypeUrl.Cluster]);

/** The fallback group, served to nodes whose cluster and id match no group. */
export const DEFAULT_GROUP = 'default';

/** Group names: what a file name or PushSnapshot may use. */
export const GROUP_NAME = /^[A-Za-z0-9._-]{1,128}$/;

/** Groups whose name starts with this serve gRPC API listeners (proxyless gRPC clients). */
export const GRPC_GROUP_PREFIX = 'grpc-';

const EXTENSIONS = ['.yaml', '.yml', '.json']; // also the precedence when two files name one group

export interface Snapshot {
  readonly group: string;
  /** The first 16 hex digits of `hash`: every replica that loads the same text serves
   *  the same version, so a sidecar that fails over to another replica sees no change. */
  readonly version: string;
  /** sha256 of the source text. */
  readonly hash: string;
  /** The file it was loaded from, or "PushSnapshot". */
  readonly source: string;
  readonly createdAt: Date;
  readonly config: RemoraConfig;
  /** Type URL → resource name → the resource encoded as an Any. */
  readonly resources: ReadonlyMap<string, ReadonlyMap<string, AnyMessage>>;
}

export interface GroupInfo {
  readonly name: string;
  /** The file backing the group (null: created by PushSnapshot). */
  readonly file: string | null;
  readonly snapshot: Snapshot | null;
  /** The errors of the latest rejected content, until good content arrives. */
  readonly lastErrors: readonly ConfigError[] | null;
}

export type AcceptResult =
  | { ok: true; snapshot: Snapshot; changed: boolean }
  | { ok: false; errors: ConfigError[] };

interface GroupState {
  name: string;
  file: string | null;
  snapshot: Snapshot | null;
  /** Hash of the latest content seen (valid or not), so one bad save is logged once. */
  seenHash: string | null;
  lastErrors: ConfigError[] | null;
  /** The encodings of its snapshot's resources (buildResources). */
  encodings: EncodingCache;
}

export interface SnapshotStoreOptions {
  readonly dir: string;
  readonly log: Logger;
  readonly translator: XdsTranslator;
  /** Serve every cluster as EDS (endpoints in ClusterLoadAssignments). Default true. */
  readonly edsForAllClusters?: boolean;
  /** Debounce of directory events. Default 200 ms. */
  readonly debounceMs?: number;
  /** Periodic full rescan (missed watch events). Default 10000 ms; 0 = off. */
  readonly rescanIntervalMs?: number;
}

const sha256 = (text: string | Buffer): string => createHash('sha256').update(text).digest('hex');

/** `payments.yaml` → `payments`; null for files that are not group files. */
export function groupOfFile(name: string): string | null {
  if (name.startsWith('.')) return null; // dot files and Kubernetes' ..data / ..<timestamp>
  const ext = extname(name).toLowerCase();
  if (!EXTENSIONS.includes(ext)) return null;
  const group = name.slice(0, -ext.length);
  return GROUP_NAME.test(group) ? group : null;
}

/** A group's resources as last encoded, by type and name, with the JSON text of the
 *  message they came from: a resource whose message is the same again is not encoded
 *  again (JSON text is several times cheaper to produce than protobuf encoding, and a
 *  push usually changes few resources). */
export type EncodingCache = Map<string, { readonly json: string; readonly any: AnyMessage }>;

/** Translates a config into the resources of a snapshot, encoded as Anys (`cache` keeps
 *  the encodings of the group's previous snapshot and is updated). Throws when the
 *  translation fails. */
export function buildResources(
  translator: XdsTranslator,
  group: string,
  config: RemoraConfig,
  edsForAllClusters: boolean,
  cache: EncodingCache = new Map(),
): Map<string, Map<string, AnyMessage>> {
  const protos = loadXdsProtos();
  const r = translator.toXdsResources(config, { edsForAllClusters });
  const listeners = group.startsWith(GRPC_GROUP_PREFIX) ? apiListeners(translator, r.listeners) : r.listeners;
  const used = new Set<string>();
  const encodeOne = (typeUrl: string, name: string, msg: ProtoObject): AnyMessage => {
    const key = `${typeUrl} ${name}`;
    used.add(key);
    const json = JSON.stringify(msg);
    const cached = cache.get(key);
    if (cached !== undefined && cached.json === json) return cached.any;
    const any = protos.encodeAny(typeUrl, msg);
    cache.set(key, { json, any });
    return any;
  };
  const encode = (typeUrl: string, m: Map<string, ProtoObject>): Map<string, AnyMessage> =>
    new Map([...m].map(([name, msg]) => [name, encodeOne(typeUrl, name, msg)]));
  const out = new Map([
    [TypeUrl.Listener, encode(TypeUrl.Listener, listeners)],
    [TypeUrl.RouteConfiguration, encode(TypeUrl.RouteConfiguration, r.routes)],
    [TypeUrl.Cluster, encode(TypeUrl.Cluster, r.clusters)],
    [TypeUrl.ClusterLoadAssignment, encode(TypeUrl.ClusterLoadAssignment, r.endpoints)],
  ]);
  for (const key of cache.keys()) if (!used.has(key)) cache.delete(key);
  return out;
}

/** For a `grpc-` group: each Remora HTTP listener becomes a gRPC API listener of the same
 *  name whose HttpConnectionManager fetches the listener's route configuration over RDS, so
 *  a gRPC client resolving `xds:///<listener name>` gets the listener's routes. TCP
 *  listeners (no HttpConnectionManager) mean nothing to a gRPC client and are left out. */
function apiListeners(translator: XdsTranslator, listeners: Map<string, ProtoObject>): Map<string, ProtoObject> {
  const out = new Map<string, ProtoObject>();
  for (const [name, listener] of listeners) {
    const route = routeConfigNameOf(listener);
    if (route === null) continue;
    out.set(name, translator.grpcApiListener(name, route));
  }
  return out;
}

/** The `rds.route_config_name` of a listener's HttpConnectionManager, whether its
 *  typed_config is an encoded Any ({type_url, value}) or an object with "@type". */
function routeConfigNameOf(listener: ProtoObject): string | null {
  const protos = loadXdsProtos();
  const chains = [
    ...((listener.filter_chains as ProtoObject[] | undefined) ?? []),
    ...(listener.default_filter_chain ? [listener.default_filter_chain as ProtoObject] : []),
  ];
  for (const chain of chains) {
    for (const filter of (chain.filters as ProtoObject[] | undefined) ?? []) {
      const tc = filter.typed_config as ProtoObject | undefined;
      if (!tc) continue;
      let hcm: ProtoObject | null = null;
      if (tc.type_url === TypeUrl.HttpConnectionManager && tc.value !== undefined) {
        hcm = protos.decodeAny({ type_url: tc.type_url, value: tc.value as Uint8Array }).message;
      } else if (tc['@type'] === TypeUrl.HttpConnectionManager) {
        hcm = tc;
      }
      const rds = hcm?.rds as ProtoObject | undefined;
      if (typeof rds?.route_config_name === 'string' && rds.route_config_name !== '') return rds.route_config_name;
    }
  }
  return null;
}

/**
 * The groups and their snapshots. `onChange(group)` runs after a group got a new
 * snapshot or was created (a new file, or PushSnapshot to a new name).
 */
export class SnapshotStore {
  private readonly groups = new Map<string, GroupState>();
  private readonly listeners: ((group: string) => void)[] = [];
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private interval: NodeJS.Timeout | null = null;
  private readonly eds: boolean;
  private readonly debounceMs: number;
  private readonly rescanIntervalMs: number;

  constructor(private readonly opts: SnapshotStoreOptions) {
    this.eds = opts.edsForAllClusters ?? true;
    this.debounceMs = opts.debounceMs ?? 200;
    this.rescanIntervalMs = opts.rescanIntervalMs ?? 10_000;
  }

  onChange(fn: (group: string) => void): void {
    this.listeners.push(fn);
  }

  /** Loads the directory once (throws when it cannot be read), then watches it. */
  start(): void {
    if (!statSync(this.opts.dir).isDirectory()) throw new Error(`${this.opts.dir} is not a directory`);
    this.scan('startup');
    try {
      this.watcher = watch(this.opts.dir, () => this.schedule());
      this.watcher.on('error', (err) => this.opts.log.warn({ err, dir: this.opts.dir }, 'config directory watch failed; periodic rescans continue'));
    } catch (err) {
      this.opts.log.warn({ err, dir: this.opts.dir }, 'cannot watch the config directory; periodic rescans continue');
    }
    if (this.rescanIntervalMs > 0) {
      this.interval = setInterval(() => this.scan('periodic rescan'), this.rescanIntervalMs);
      this.interval.unref();
    }
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.interval !== null) clearInterval(this.interval);
    this.timer = this.interval = null;
  }

  has(group: string): boolean {
    return this.groups.has(group);
  }

  get(group: string): GroupInfo | undefined {
    return this.groups.get(group);
  }

  list(): GroupInfo[] {
    return [...this.groups.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Validates `text` (YAML or JSON) and makes it the group's next snapshot. */
  push(group: string, text: string): AcceptResult {
    if (!GROUP_NAME.test(group)) {
      return { ok: false, errors: [{ path: 'group', message: `"${group}" is not a group name (letters, digits, ".", "_", "-"; at most 128)` }] };
    }
    // JSON is YAML too, but the JSON parser is about 80× faster on a large config.
    const parsed = parseConfigText(text, text.trimStart().startsWith('{') ? `${group}.json` : `${group}.yaml`);
    const validated = parsed.ok ? validateConfig(parsed.raw) : parsed;
    if (!validated.ok) return { ok: false, errors: validated.errors };
    const state = this.groups.get(group) ?? this.newGroup(group, null);
    return this.accept(state, validated.config, sha256(text), 'PushSnapshot');
  }

  /** Re-reads the directory now (normally done on watch events and periodically). */
  rescan(trigger = 'rescan'): void {
    this.scan(trigger);
  }

  private schedule(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.scan('file change');
    }, this.debounceMs);
    this.timer.unref();
  }

  private scan(trigger: string): void {
    const { dir, log } = this.opts;
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (err) {
      log.warn({ err, dir }, 'cannot read the config directory; groups keep their snapshots');
      return;
    }
    // Group → file, by extension precedence.
    const files = new Map<string, string>();
    for (const ext of EXTENSIONS) {
      for (const name of names) {
        const group = groupOfFile(name);
        if (group === null || extname(name).toLowerCase() !== ext) continue;
        const file = join(dir, name);
        try {
          if (!statSync(file).isFile()) continue; // follows Kubernetes' symlinks
        } catch {
          continue; // mid-swap: the next event decides
        }
        const taken = files.get(group);
        if (taken !== undefined) {
          log.warn({ group, used: taken, ignored: file }, 'two files name the same group; the first by extension (.yaml, .yml, .json) is used');
          continue;
        }
        files.set(group, file);
      }
    }
    for (const [group, file] of files) this.loadFile(group, file, trigger);
    for (const state of this.groups.values()) {
      if (state.file !== null && !files.has(state.name)) {
        log.warn(
          { group: state.name, file: state.file, version: state.snapshot?.version ?? null },
          'group file removed; the group keeps serving its last snapshot until the control plane restarts',
        );
        state.file = null;
        state.seenHash = null;
      }
    }
  }

  private loadFile(group: string, file: string, trigger: string): void {
    const { log } = this.opts;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      log.warn({ err, group, file }, 'cannot read group file; the next change retries');
      return;
    }
    const hash = sha256(text);
    let state = this.groups.get(group);
    if (state !== undefined && state.seenHash === hash) {
      state.file = file;
      return;
    }
    const created = state === undefined;
    state ??= this.newGroup(group, file);
    state.file = file;
    state.seenHash = hash;
    const parsed = parseConfigText(text, file);
    const validated = parsed.ok ? validateConfig(parsed.raw) : parsed;
    if (!validated.ok) {
      this.reject(state, file, trigger, validated.errors);
      if (created) this.emit(group); // the group exists now (nodes of it wait for a valid snapshot)
      return;
    }
    const result = this.accept(state, validated.config, hash, file, trigger);
    if (!result.ok && created) this.emit(group);
  }

  private newGroup(name: string, file: string | null): GroupState {
    const state: GroupState = { name, file, snapshot: null, seenHash: null, lastErrors: null, encodings: new Map() };
    this.groups.set(name, state);
    return state;
  }

  private reject(state: GroupState, source: string, trigger: string, errors: ConfigError[]): void {
    state.lastErrors = errors;
    this.opts.log.error(
      {
        group: state.name,
        source,
        trigger,
        errors: errors.map((e) => `${e.path}: ${e.message}`),
        serving: state.snapshot?.version ?? null,
      },
      `group config rejected (${errors.length} error${errors.length === 1 ? '' : 's'}); the group keeps its last good snapshot`,
    );
  }

  private accept(state: GroupState, config: RemoraConfig, hash: string, source: string, trigger = 'PushSnapshot'): AcceptResult {
    if (state.snapshot !== null && state.snapshot.hash === hash) {
      state.lastErrors = null;
      return { ok: true, snapshot: state.snapshot, changed: false };
    }
    let resources: Map<string, Map<string, AnyMessage>>;
    try {
      resources = buildResources(this.opts.translator, state.name, config, this.eds, state.encodings);
    } catch (err) {
      const errors = [{ path: '(xds)', message: `cannot translate to xDS resources: ${(err as Error).message}` }];
      this.reject(state, source, trigger, errors);
      return { ok: false, errors };
    }
    const snapshot: Snapshot = {
      group: state.name,
      version: hash.slice(0, 16),
      hash,
      source,
      createdAt: new Date(),
      config,
      resources,
    };
    state.snapshot = snapshot;
    state.lastErrors = null;
    const counts = Object.fromEntries([...resources].map(([t, m]) => [t.slice(t.lastIndexOf('.') + 1), m.size]));
    this.opts.log.info({ group: state.name, version: snapshot.version, source, trigger, resources: counts }, 'snapshot ready');
    this.emit(state.name);
    return { ok: true, snapshot, changed: true };
  }

  private emit(group: string): void {
    for (const fn of this.listeners) {
      try {
        fn(group);
      } catch (err) {
        this.opts.log.error({ err, group }, 'snapshot listener failed');
      }
    }
  }
}
