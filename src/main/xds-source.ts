// xDS mode of `remora run`: the config comes from a control plane. Connects the xDS
// client, waits for the first complete set of resources (or, after
// initial_fetch_timeout_ms, starts from the config persisted by an earlier run), starts
// Remora, and from then on turns every accepted update into a reload, which the xDS
// client awaits before it ACKs (Envoy's ADS semantics: docs/xds.md). While the control
// plane is unreachable, traffic keeps flowing on the last applied config. Every applied
// config is persisted (write to a temp file, then rename) when persist_path is set, and
// the fields its resources set that Remora accepts without effect are kept, per field, for
// /metrics (remora_xds_fields_without_effect) and /config_dump (xds.fields_without_effect).
// With xds.mesh_identity, the sidecar's certificate is obtained from the control plane's
// mesh CA and renewed (src/control/mesh-identity.ts, loaded only then); startup waits for
// it, within the same initial_fetch_timeout_ms, so listeners that read its files find them.
// With xds.tls, both speak TLS to a control plane verified by its SPIFFE ID and the
// out-of-band roots, presenting the mesh certificate once there is one
// (src/control/control-plane-tls.ts); the first certificate triggers a reconnect of a
// stream that was refused for want of it.
// Until Remora starts, the admin (and probes) port answer /live and /ready with the
// reason for the wait (src/main/xds-waiting.ts); Remora's admin server takes them over.
// An update that changes only ClusterLoadAssignments is translated and applied alone
// (translateEndpointUpdate, RunningRemora.updateEndpoints): no new config version, work
// proportional to the change. With xds.sds_servers, Secrets may also come from SDS servers
// of their own (src/main/sds-streams.ts): they join the set translated here. Long file:
// the startup sequence and the sink's apply rules (first config, warming, endpoint-only,
// whole) read best in one place.

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyListenerPorts, heldPorts } from './ports.js';
import { uwsCodecErrors } from '../uws/uws.js';
import { edsClusters, missingResources, referencedRoutes, secretNames, type MissingResources, type XdsResourceSet } from '../xds/resources.js';
import { parseSecretKey, secretLabel, writeSecretFiles } from '../xds/sds.js';
import { SdsStreams } from './sds-streams.js';
import {
  endpointChanges,
  formatRejection,
  translateEndpointUpdate,
  translateXds,
  type EdsBasis,
  type EndpointUpdateResult,
  type XdsRejection,
  type XdsTranslateResult,
} from '../xds/translate.js';
import { validateConfig } from '../config/validate.js';
import type { RemoraConfig, XdsBootstrap } from '../config/types.js';
import type { Logger } from '../core/log.js';
import { TypeUrl } from '../xds/protos.js';
import { XdsClient, type ResourceMaps, type ResourceRejection } from '../control/xds-client.js';
import type { MeshIdentityClient } from '../control/mesh-identity.js';
import { ControlPlaneTransport } from '../control/control-plane-tls.js';
import { startRemora, type RunningRemora } from './remora.js';
import { validateBootstrapBase } from '../config/bootstrap-base.js';
import { formatErrors } from '../config/load.js';
import { RemoraError } from '../core/errors.js';
import { XdsWaiting } from './xds-waiting.js';

export interface XdsRun {
  readonly remora: RunningRemora;
  readonly client: XdsClient;
  /** Where the running config came from first: 'control-plane' or 'persisted'. */
  readonly startedFrom: 'control-plane' | 'persisted';
  /** The mesh identity client (xds.mesh_identity), else null. Its status() is what an
   *  admin endpoint shows; it is closed when Remora finishes. */
  readonly identity: MeshIdentityClient | null;
}

/**
 * Starts Remora from the control plane. Resolves null when `stop` aborts the wait for the
 * first config (SIGTERM, POST /quitquitquit on the waiting admin server): nothing is left
 * running then. Rejects with a RemoraError when the bootstrap's process fields are
 * invalid, a port cannot be bound, or Remora cannot start.
 */
export async function startFromXds(bootstrap: XdsBootstrap, rawBase: Record<string, unknown>, log: Logger, stop?: AbortSignal): Promise<XdsRun | null> {
  const startedAt = Date.now();
  const checked = validateBootstrapBase(rawBase);
  if (!checked.ok) throw new RemoraError('REMORA_ERR_CONFIG_INVALID', formatErrors('bootstrap', checked.errors));
  const quit = new AbortController();
  const stopped = new Promise<'stopped'>((resolve) => {
    const onAbort = (): void => resolve('stopped');
    quit.signal.addEventListener('abort', onAbort, { once: true });
    stop?.addEventListener('abort', onAbort, { once: true });
    if (stop?.aborted) onAbort();
  });
  let lastError: string | null = null;
  /** Before the first config: what the wait is for (the /ready reason). */
  let waitingFor: string | null = null;
  // Created right after the waiting servers bind, before any request can be handled.
  let client!: XdsClient;
  let sds!: SdsStreams;
  let identity: MeshIdentityClient | null = null;
  const transport = bootstrap.tls !== undefined ? new ControlPlaneTransport(bootstrap.tls, bootstrap.mesh_identity, log.child({ component: 'xds-tls' })) : undefined;
  const tlsStatus = (): Record<string, unknown> => (transport !== undefined ? { tls: transport.status() } : {});
  const sdsStatus = (): Record<string, unknown> => (Object.keys(bootstrap.sds_servers).length > 0 ? { sds_servers: sds.state() } : {});
  const waiting = await XdsWaiting.start(
    checked.base,
    {
      reason: () => waitReason(bootstrap, client, lastError, waitingFor),
      describe: () => ({
        phase: 'waiting_for_first_config',
        waiting_since: new Date(startedAt).toISOString(),
        xds: { servers: bootstrap.servers, node: bootstrap.node, ...client.state(), last_error: lastError, ...tlsStatus(), ...sdsStatus() },
        ...(identity !== null ? { mesh_identity: identity.status() } : {}),
      }),
      metrics: () => {
        const s = client.state();
        return { connected: s.connected ? 1 : 0, reconnects: s.reconnects };
      },
    },
    log,
    () => quit.abort(),
  );
  // Remora binds where the waiting servers listen (with port 0: the port they got).
  const { admin, probes } = checked.base;
  const base: Record<string, unknown> = {
    ...rawBase,
    admin: { ...admin, port: waiting.adminPort },
    ...(probes !== undefined ? { probes: { ...probes, port: waiting.probesPort } } : {}),
  };
  log.info(
    { admin: waiting.adminPort, ...(waiting.probesPort !== null ? { probes: waiting.probesPort } : {}), servers: bootstrap.servers },
    'waiting for the first config from the control plane: /live answers 200, /ready 503 until it arrives',
  );
  // From here on, a failure must not leave the waiting servers holding the process open.
  try {
    let remora: RunningRemora | null = null;
    let appliedAt = 0;
    /** The newest config applied (or, before Remora runs, handed to it to start with). */
    let latest: RemoraConfig | null = null;
    /** The fields accepted without effect in the resources `latest` came from (per field,
     *  how many resources set it): /metrics and /config_dump show them. */
    let noEffect: ReadonlyMap<string, number> = new Map();
    /** Listeners of those resources accepted and not bound (bind_to_port: false). */
    let notBound: readonly string[] = [];
    let firstConfig: (config: RemoraConfig) => void = () => {};
    const first = new Promise<RemoraConfig>((resolve) => (firstConfig = resolve));
    /** Resolves once Remora runs (true) or could not start (false). */
    let markStarted: (ok: boolean) => void = () => {};
    const started = new Promise<boolean>((resolve) => (markStarted = resolve));

    /** The resources in effect and what their translation left for endpoint-only updates;
     *  null before the first config runs, and while something waits for what it
     *  references (warming), when every update is translated whole. */
    let applied: { set: XdsResourceSet; eds: EdsBasis } | null = null;
    /** Persists `latest` within PERSIST_COALESCE_MS (and when Remora finishes): endpoint
     *  updates in quick succession write the file once, off the path to the ACK. */
    let persistTimer: NodeJS.Timeout | null = null;
    const persistNow = (): void => {
      if (persistTimer !== null) clearTimeout(persistTimer);
      persistTimer = null;
      if (latest !== null) persist(bootstrap, latest, log);
    };
    const persistSoon = (): void => {
      persistTimer ??= setTimeout(persistNow, PERSIST_COALESCE_MS);
    };
    /** The last check()'s translation: apply() of the same set uses it. */
    let checked: { set: XdsResourceSet; translation: Translation } | null = null;
    /** A set translated: whole, or (when it changes only ClusterLoadAssignments of the
     *  set in effect) just those and the clusters that read them. */
    const translate = (set: XdsResourceSet): Translation => {
      const changes = applied !== null && latest !== null && remora !== null ? endpointChanges(applied.set, set) : null;
      const translation: Translation = changes !== null
        ? { kind: 'endpoints', result: translateEndpointUpdate(applied!.eds, latest!, noEffect, changes) }
        : { kind: 'whole', result: translateXds(base, set, translateOpts) };
      checked = { set, translation };
      return translation;
    };
    const sdsDir = bootstrap.sds_dir ?? defaultSdsDir(bootstrap);
    sds = new SdsStreams(bootstrap.sds_servers, bootstrap.node, sdsDir, log.child({ component: 'sds' }), () => client.reapply());
    const toSet = (maps: ResourceMaps): XdsResourceSet => ({
      listeners: maps[TypeUrl.Listener],
      routes: maps[TypeUrl.RouteConfiguration],
      clusters: maps[TypeUrl.Cluster],
      endpoints: maps[TypeUrl.ClusterLoadAssignment],
      secrets: sds.withSecrets(maps[TypeUrl.Secret]),
    });
    /** RouteConfigurations / ClusterLoadAssignments whose initial_fetch_timeout expired
     *  before they arrived (the translation serves without them), and the timers running
     *  for those still awaited (`routes <name>`, `endpoints <name>`). */
    const gaveUp = { routes: new Set<string>(), endpoints: new Set<string>() };
    const fetchTimers = new Map<string, NodeJS.Timeout>();
    const translateOpts = { ads: true, sdsDir, sdsServers: sds.names, gaveUp };
    /** Starts the initial_fetch_timeout of each resource `set` references and lacks;
     *  forgets those that arrived. When one expires, what references it is applied
     *  without it (Envoy: the listener or cluster ends its warming) and it is logged.
     *  Returns what `set` lacks. */
    const watchFetches = (set: XdsResourceSet, timeouts: { routes: ReadonlyMap<string, number>; endpoints: ReadonlyMap<string, number> }): MissingResources => {
      const missing = missingResources(set);
      for (const kind of ['routes', 'endpoints'] as const) {
        const lacking = new Set(missing[kind]);
        for (const name of gaveUp[kind]) if (!lacking.has(name)) gaveUp[kind].delete(name);
        for (const [key, timer] of fetchTimers) {
          if (key.startsWith(`${kind} `) && !lacking.has(key.slice(kind.length + 1))) {
            clearTimeout(timer);
            fetchTimers.delete(key);
          }
        }
        for (const name of lacking) {
          const ms = timeouts[kind].get(name);
          const key = `${kind} ${name}`;
          if (ms === undefined || gaveUp[kind].has(name) || fetchTimers.has(key)) continue;
          const timer = setTimeout(() => {
            fetchTimers.delete(key);
            gaveUp[kind].add(name);
            const what = kind === 'routes' ? `RouteConfiguration "${name}"` : `ClusterLoadAssignment "${name}"`;
            const effect = kind === 'routes' ? 'its listeners serve without routes (404 NR)' : 'its clusters have no endpoints (503 UH)';
            log.warn({ resource: what, initialFetchTimeoutMs: ms }, `${what} did not arrive within its initial_fetch_timeout: ${effect} until it does`);
            client.reapply();
          }, ms);
          timer.unref();
          fetchTimers.set(key, timer);
        }
      }
      return missing;
    };
    const rejection = (e: XdsRejection): ResourceRejection => ({ typeUrl: e.typeUrl, name: e.name, text: formatRejection(e) });
    /** A problem found at a config path (`listeners[2].codec`): that listener's resource. */
    const atListener = (config: RemoraConfig, path: string, message: string): ResourceRejection => {
      const l = config.listeners[Number(/^listeners\[(\d+)\]/.exec(path)?.[1] ?? -1)];
      return l === undefined
        ? { typeUrl: '', name: '', text: `${path}: ${message}` }
        : { typeUrl: TypeUrl.Listener, name: l.name, text: `Listener "${l.name}" ${path.replace(/^listeners\[\d+\]\.?/, '')}: ${message}` };
    };

    client = new XdsClient(
      { servers: bootstrap.servers, node: bootstrap.node, log: tapStreamErrors(log, (e) => (lastError = e)), transport, delta: bootstrap.api_type === 'delta' },
      {
        references(maps) {
          const routes = [...maps[TypeUrl.Listener].values()].flatMap((l) => referencedRoutes(l));
          const secrets = secretNames(toSet(maps));
          sds.want(secrets); // those of SDS servers of their own are asked there
          return { routes, endpoints: edsClusters(maps[TypeUrl.Cluster].values()), secrets: secrets.filter((k) => parseSecretKey(k).server === null) };
        },
        check(maps) {
          const { kind, result } = translate(toSet(maps));
          if (!result.ok) return result.errors.map(rejection);
          return kind === 'endpoints' ? [] : uwsCodecErrors(result.config.listeners).map((e) => atListener(result.config, e.path, e.message));
        },
        async apply(maps) {
          const set = toSet(maps);
          const translation = checked !== null && sameSet(checked.set, set) ? checked.translation : translate(set);
          checked = null;
          if (translation.kind === 'endpoints') {
            // Only endpoint lists changed: the clusters that read them move to them in
            // place, with no new config version (work proportional to the change).
            const update = translation.result;
            if (!update.ok) return update.errors.map(rejection);
            if (update.clusters.length > 0) {
              const ok = await remora!.updateEndpoints(update.config, update.clusters).catch((err: unknown) => {
                log.error({ err }, 'applying the endpoint update failed');
                return false;
              });
              if (!ok) return [{ typeUrl: '', name: '', text: 'the workers did not apply the endpoint update (see the log); the running endpoints keep serving' }];
            }
            applied = { set, eds: applied!.eds };
            latest = update.config;
            noEffect = update.noEffect;
            persistSoon();
            appliedAt = Date.now();
            return [];
          }
          const result = translation.result;
          if (!result.ok) return result.errors.map(rejection);
          const lacking = watchFetches(set, result.fetchTimeouts);
          const basis = result.warming.listeners.length === 0 && result.warming.clusters.length === 0 ? { set, eds: result.eds } : null;
          // Secrets' certificates to their files first: a new config reads them, a running
          // one rotates to them (the files are watched).
          try {
            const written = writeSecretFiles(sdsDir, set.secrets ?? new Map());
            if (written.length > 0) log.info({ dir: sdsDir, files: written.length }, 'SDS secrets written');
          } catch (err) {
            return [{ typeUrl: TypeUrl.Secret, name: '', text: `cannot write the secrets under xds.sds_dir ${sdsDir}: ${err instanceof Error ? err.message : String(err)}` }];
          }
          let config = result.config;
          // Apply, then ACK: a listener on a port another process holds is NACKed by name
          // before anything is applied (workers bind with SO_REUSEPORT and would share it).
          const busy = await busyListenerPorts(config.listeners, heldPorts(remora?.snapshot ?? null));
          if (busy.length > 0) {
            return busy.map((e) => atListener(config, e.path, e.message.slice(Math.max(0, e.message.indexOf('cannot bind')))));
          }
          if (remora === null) {
            // The first config: at least one listener, and nothing referenced missing
            // (every listener has its routes, every EDS cluster its endpoints).
            const missing = { ...lacking, routes: lacking.routes.filter((n) => !gaveUp.routes.has(n)), endpoints: lacking.endpoints.filter((n) => !gaveUp.endpoints.has(n)) };
            if (config.listeners.length === 0 || missing.routes.length > 0 || missing.endpoints.length > 0 || missing.secrets.length > 0) {
              const names = [
                ...missing.routes.map((n) => `RouteConfiguration "${n}"`),
                ...missing.endpoints.map((n) => `ClusterLoadAssignment "${n}"`),
                ...missing.secrets.map(secretLabel),
              ];
              waitingFor = config.listeners.length === 0 && set.listeners.size === 0
                ? 'no listener yet'
                : config.listeners.length === 0 && names.length === 0 && result.notBound.length > 0
                  ? `no listener to bind (${result.notBound.length} accepted with bind_to_port: false)`
                  : `waiting for ${names.join(', ') || 'a listener'}`;
              log.info({ waitingFor }, 'xDS resources accepted; not serving yet');
              return [];
            }
            waitingFor = null;
            latest = config;
            applied = basis;
            noEffect = result.noEffect;
            notBound = result.notBound;
            persist(bootstrap, config, log);
            appliedAt = Date.now();
            firstConfig(config);
            return (await started) ? [] : [{ typeUrl: '', name: '', text: 'Remora could not start with this config (see its log)' }];
          }
          config = keepWarmingAsApplied(config, result.warming, latest);
          if (latest !== null && sameResources(config, latest)) { // nothing changed: no reload
            // These resources are in effect now (fields without effect, listeners not bound too).
            noEffect = result.noEffect;
            notBound = result.notBound;
            applied = basis;
            return [];
          }
          const ok = await remora.reload(config).catch((err: unknown) => {
            log.error({ err }, 'applying the xDS update failed');
            return false;
          });
          if (!ok) return [{ typeUrl: '', name: '', text: 'the workers did not apply the update (see the log); the running config keeps serving' }];
          latest = config;
          applied = basis;
          noEffect = result.noEffect;
            notBound = result.notBound;
          persist(bootstrap, config, log);
          appliedAt = Date.now();
          return [];
        },
      },
    );
    client.start();

    if (bootstrap.mesh_identity !== undefined) {
      const { MeshIdentityClient } = await import('../control/mesh-identity.js');
      const conf = bootstrap.mesh_identity;
      identity = new MeshIdentityClient({
        // The out-of-band roots of xds.tls pin the CA too, unless trust_bundle_file is given.
        identity: conf.trust_bundle_file === undefined && bootstrap.tls !== undefined ? { ...conf, trust_bundle_file: bootstrap.tls.ca_file } : conf,
        servers: bootstrap.servers,
        currentServer: () => client.state().server,
        log: log.child({ component: 'mesh-identity' }),
        transport,
        onIssued: () => client.retryNow(),
      });
      identity.start();
    }

    /** Ends a wait stopped by a signal or POST /quitquitquit: nothing stays running. */
    const abandon = (): null => {
      client.stop();
      sds.stop();
      identity?.close();
      waiting.close();
      log.info('stopped while waiting for the first config');
      return null;
    };

    let startedFrom: XdsRun['startedFrom'] = 'control-plane';
    let config: RemoraConfig;
    const timedOut = Symbol('timeout');
    let fetchTimer: NodeJS.Timeout | undefined;
    const winner = await Promise.race([first, stopped, new Promise<typeof timedOut>((r) => (fetchTimer = setTimeout(() => r(timedOut), bootstrap.initial_fetch_timeout_ms)))]);
    clearTimeout(fetchTimer);
    if (winner === 'stopped') return abandon();
    if (winner !== timedOut) {
      config = winner;
    } else {
      const persisted = loadPersisted(bootstrap, base, log);
      if (persisted !== null) {
        log.warn({ file: bootstrap.persist_path }, 'no control plane answered in time; starting from the persisted config');
        config = persisted;
        startedFrom = 'persisted';
      } else {
        log.warn({ servers: bootstrap.servers }, 'no config yet: waiting for the control plane');
        const next = await Promise.race([first, stopped]);
        if (next === 'stopped') return abandon();
        config = next;
      }
    }
    if (identity !== null) {
      const left = Math.max(0, bootstrap.initial_fetch_timeout_ms - (Date.now() - startedAt));
      const got = await Promise.race([identity.whenReady(left), stopped]);
      if (got === 'stopped') return abandon();
      if (!got) {
        log.warn(
          { identity: bootstrap.mesh_identity!.spiffe_id, dir: bootstrap.mesh_identity!.dir },
          'no mesh certificate yet: starting without it (it is written to the directory as soon as the CA issues it)',
        );
      }
    }
    waiting.handOver();
    try {
      remora = await startRemora(config, log, {
        node: { id: bootstrap.node.id, cluster: bootstrap.node.cluster },
        describe: () => ({
          xds: {
            ...client.state(), started_from: startedFrom, config_age_s: appliedAt > 0 ? Math.round((Date.now() - appliedAt) / 1000) : null, ...tlsStatus(), ...sdsStatus(),
            fields_without_effect: Object.fromEntries(noEffect),
            listeners_not_bound: notBound,
          },
          ...(identity !== null ? { mesh_identity: identity.status() } : {}),
        }),
        ...(identity !== null ? { identity: () => identity!.status() } : {}),
        metrics: () => {
          const s = client.state();
          return {
            connected: s.connected ? 1 : 0, nacks: s.nacks, acks: s.acks, reconnects: s.reconnects,
            configAgeS: appliedAt > 0 ? (Date.now() - appliedAt) / 1000 : -1, unknownFields: client.unknownFieldsSeen, fieldsWithoutEffect: noEffect,
          };
        },
      });
    } catch (err) {
      markStarted(false);
      client.stop();
      sds.stop();
      identity?.close();
      throw err;
    } finally {
      // The servers Remora took over are its own now; any other one closes.
      waiting.close();
    }
    // A stop asked for while Remora started: it drains (and `finished` resolves) as usual.
    if (quit.signal.aborted || stop?.aborted === true) void remora.shutdown('stopped while starting', false);
    // A config the control plane completed while Remora started from the persisted one
    // goes in now; the xDS client ACKs it once it runs.
    if (latest !== null && latest !== config) {
      const next: RemoraConfig = latest;
      const ok = await remora.reload(next).catch(() => false);
      if (!ok) {
        latest = config; // the persisted one, which no resources of this run describe
        applied = null;
        noEffect = new Map();
        notBound = [];
      }
    } else latest = config;
    markStarted(true);
    void remora.finished.then(() => {
      if (persistTimer !== null) persistNow();
      for (const timer of fetchTimers.values()) clearTimeout(timer);
      client.stop();
      sds.stop();
      identity?.close();
    });
    return { remora, client, startedFrom, identity };
  } catch (err) {
    waiting.close();
    throw err;
  }
}

/** Endpoint-only updates are persisted at most this often. */
const PERSIST_COALESCE_MS = 1000;

/** A resource set translated for check() and apply(): whole, or only its endpoint
 *  changes (src/xds/translate.ts). */
type Translation = { readonly kind: 'whole'; readonly result: XdsTranslateResult } | { readonly kind: 'endpoints'; readonly result: EndpointUpdateResult };

/** The same maps (by object) of every type. */
function sameSet(a: XdsResourceSet, b: XdsResourceSet): boolean {
  return a.listeners === b.listeners && a.routes === b.routes && a.clusters === b.clusters && a.endpoints === b.endpoints && a.secrets === b.secrets;
}

/**
 * Make before break, per resource (Envoy's warming): a listener waiting for its new
 * RouteConfiguration, or a cluster for its new ClusterLoadAssignment, keeps serving with
 * the version applied before, if there was one. (Not when a listener now in the config
 * took its address and port.)
 */
function keepWarmingAsApplied(config: RemoraConfig, warming: { readonly listeners: readonly string[]; readonly clusters: readonly string[] }, applied: RemoraConfig | null): RemoraConfig {
  if (applied === null || (warming.listeners.length === 0 && warming.clusters.length === 0)) return config;
  const taken = new Set(config.listeners.filter((l) => l.port !== 0).map((l) => `${l.address}:${l.port}`));
  const warmingListeners = new Set(warming.listeners);
  const warmingClusters = new Set(warming.clusters);
  const listeners = applied.listeners.filter((l) => warmingListeners.has(l.name) && (l.port === 0 || !taken.has(`${l.address}:${l.port}`)));
  const clusters = applied.clusters.filter((c) => warmingClusters.has(c.name));
  if (listeners.length === 0 && clusters.length === 0) return config;
  return Object.freeze({
    ...config,
    listeners: Object.freeze([...config.listeners, ...listeners]),
    clusters: Object.freeze([...config.clusters, ...clusters]),
  });
}

/** The same listeners and clusters (an identical resend, or an update that only touched
 *  resources still warming): nothing to reload. */
function sameResources(a: RemoraConfig, b: RemoraConfig): boolean {
  return JSON.stringify(a.listeners) === JSON.stringify(b.listeners) && JSON.stringify(a.clusters) === JSON.stringify(b.clusters);
}

/** Where Secrets' files go without xds.sds_dir: next to persist_path (so that a config
 *  persisted and started from names files that are still there), else a directory of
 *  this process under the temp directory. */
function defaultSdsDir(bootstrap: XdsBootstrap): string {
  return bootstrap.persist_path !== undefined ? `${bootstrap.persist_path}.sds` : join(tmpdir(), `remora-sds-${process.pid}`);
}

function persist(bootstrap: XdsBootstrap, config: RemoraConfig, log: Logger): void {
  const file = bootstrap.persist_path;
  if (file === undefined) return;
  try {
    const { workers: _w, admin: _a, probes: _p, drain: _d, worker_limits: _l, stats: _s, ...resources } = config;
    writeFileSync(`${file}.tmp`, JSON.stringify({ saved_at: new Date().toISOString(), listeners: resources.listeners, clusters: resources.clusters }));
    renameSync(`${file}.tmp`, file);
  } catch (err) {
    log.warn({ err, file }, 'cannot persist the applied xDS config');
  }
}

function loadPersisted(bootstrap: XdsBootstrap, base: Record<string, unknown>, log: Logger): RemoraConfig | null {
  const file = bootstrap.persist_path;
  if (file === undefined || !existsSync(file)) return null;
  try {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { listeners?: unknown; clusters?: unknown };
    const result = validateConfig({ ...base, listeners: saved.listeners, clusters: saved.clusters });
    if (result.ok) return result.config;
    log.error({ file, errors: result.errors }, 'the persisted config is not valid; ignoring it');
  } catch (err) {
    log.error({ err, file }, 'cannot read the persisted config');
  }
  return null;
}

/** The /ready reason while no config is served yet. */
function waitReason(bootstrap: XdsBootstrap, client: XdsClient, lastError: string | null, waitingFor: string | null): string {
  const s = client.state();
  const where = s.connected
    ? `connected to ${s.server}, waiting for a complete set of resources${waitingFor !== null ? ` (${waitingFor})` : ''}`
    : `connecting to ${bootstrap.servers.join(', ')}`;
  const nacks = Object.entries(s.types).flatMap(([type, t]) => (t.last_nack !== null ? [`${type}: ${t.last_nack.message}`] : []));
  return (
    `waiting for the first config from the control plane (xds: ${where}` +
    (lastError !== null ? `; last error: ${lastError}` : '') +
    (nacks.length > 0 ? `; last NACK: ${nacks.join('; ')}` : '') +
    ')'
  );
}

/** The logger given to the XdsClient, which reports a failed stream only by logging it
 *  ('xDS stream failed' with `server` and `err`): this keeps the last such error for the
 *  /ready reason. (XdsClientState could carry it instead; src/control/xds-client.ts.) */
function tapStreamErrors(log: Logger, onError: (text: string) => void): Logger {
  return new Proxy(log, {
    get(target, prop) {
      if (prop === 'warn') {
        return (obj: unknown, ...rest: unknown[]) => {
          if (typeof obj === 'object' && obj !== null && rest[0] === 'xDS stream failed') {
            const o = obj as { server?: unknown; err?: unknown };
            onError(`${String(o.server)}: ${String(o.err).replace(/\s*Resolution note:\s*$/, '')}`); // (grpc-js's empty trailer)
          }
          return (target.warn as (...args: unknown[]) => void)(obj, ...rest);
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
