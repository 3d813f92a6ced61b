// xDS mode of `remora run`: the config comes from a control plane. Connects the xDS
// client, waits for the first complete set of resources (or, after
// initial_fetch_timeout_ms, starts from the config persisted by an earlier run), starts
// Remora, and from then on turns every accepted update into a reload. While the control
// plane is unreachable, traffic keeps flowing on the last applied config. Every applied
// config is persisted (write to a temp file, then rename) when persist_path is set.
// With xds.mesh_identity, the sidecar's certificate is obtained from the control plane's
// mesh CA and renewed (src/control/mesh-identity.ts, loaded only then); startup waits for
// it, within the same initial_fetch_timeout_ms, so listeners that read its files find them.

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { busyListenerPortsSync, heldPorts } from './ports.js';
import { edsClusters, referencedRoutes, type XdsResourceSet } from '../xds/resources.js';
import { formatRejection, translateXds } from '../xds/translate.js';
import { validateConfig } from '../config/validate.js';
import type { RemoraConfig, XdsBootstrap } from '../config/types.js';
import type { Logger } from '../core/log.js';
import { TypeUrl } from '../xds/protos.js';
import { XdsClient, type ResourceMaps } from '../control/xds-client.js';
import type { MeshIdentityClient } from '../control/mesh-identity.js';
import { startRemora, type RunningRemora } from './remora.js';

/** A control plane sends an update as a burst of responses (CDS, EDS, LDS, RDS): each is
 *  checked (and ACKed or NACKed) at once, but the reload waits this long for the rest of
 *  the burst, so one push is one reload instead of four. */
const COALESCE_MS = 10;

export interface XdsRun {
  readonly remora: RunningRemora;
  readonly client: XdsClient;
  /** Where the running config came from first: 'control-plane' or 'persisted'. */
  readonly startedFrom: 'control-plane' | 'persisted';
  /** The mesh identity client (xds.mesh_identity), else null. Its status() is what an
   *  admin endpoint shows; it is closed when Remora finishes. */
  readonly identity: MeshIdentityClient | null;
}

export async function startFromXds(bootstrap: XdsBootstrap, base: Record<string, unknown>, log: Logger): Promise<XdsRun> {
  const startedAt = Date.now();
  let remora: RunningRemora | null = null;
  let appliedAt = 0;
  /** The newest accepted config (an update may arrive while Remora starts). */
  let latest: RemoraConfig | null = null;
  let firstConfig: (config: RemoraConfig) => void = () => {};
  const first = new Promise<RemoraConfig>((resolve) => (firstConfig = resolve));

  const toSet = (maps: ResourceMaps): XdsResourceSet => ({
    listeners: maps[TypeUrl.Listener],
    routes: maps[TypeUrl.RouteConfiguration],
    clusters: maps[TypeUrl.Cluster],
    endpoints: maps[TypeUrl.ClusterLoadAssignment],
  });

  const client = new XdsClient(
    { servers: bootstrap.servers, node: bootstrap.node, log },
    {
      references(maps) {
        const routes = [...maps[TypeUrl.Listener].values()].flatMap((l) => referencedRoutes(l));
        return { routes, endpoints: edsClusters(maps[TypeUrl.Cluster].values()) };
      },
      check(maps) {
        const result = translateXds(base, toSet(maps));
        return result.ok ? null : result.errors.map(formatRejection).join('; ');
      },
      apply(maps) {
        const result = translateXds(base, toSet(maps));
        if (!result.ok) return result.errors.map(formatRejection).join('; ');
        const config = result.config;
        if (remora !== null) {
          // A listener moved onto a port someone else holds is NACKed by name, before
          // anything is applied (workers bind with SO_REUSEPORT and would share it).
          const busy = busyListenerPortsSync(config.listeners, heldPorts(remora.snapshot));
          if (busy.length > 0) return busy.join('; ');
        }
        persist(bootstrap, config, log);
        appliedAt = Date.now();
        latest = config;
        if (remora === null) firstConfig(config);
        else queueReload(config);
        return null;
      },
    },
  );
  client.start();

  let identity: MeshIdentityClient | null = null;
  if (bootstrap.mesh_identity !== undefined) {
    const { MeshIdentityClient } = await import('../control/mesh-identity.js');
    identity = new MeshIdentityClient({
      identity: bootstrap.mesh_identity,
      servers: bootstrap.servers,
      currentServer: () => client.state().server,
      log: log.child({ component: 'mesh-identity' }),
    });
    identity.start();
  }

  // Reloads: the newest accepted config wins; one reload at a time.
  let pending: RemoraConfig | null = null;
  let reloadTimer: NodeJS.Timeout | null = null;
  let reloading = false;
  const drainReloads = async (): Promise<void> => {
    reloadTimer = null;
    if (reloading || remora === null) return;
    reloading = true;
    while (pending !== null) {
      const next = pending;
      pending = null;
      await remora.reload(next).catch((err: unknown) => log.error({ err }, 'applying the xDS update failed'));
    }
    reloading = false;
  };
  const queueReload = (config: RemoraConfig): void => {
    pending = config;
    if (reloadTimer === null && !reloading) reloadTimer = setTimeout(() => void drainReloads(), COALESCE_MS);
  };

  let startedFrom: XdsRun['startedFrom'] = 'control-plane';
  let config: RemoraConfig;
  const timedOut = Symbol('timeout');
  const winner = await Promise.race([first, new Promise<typeof timedOut>((r) => setTimeout(() => r(timedOut), bootstrap.initial_fetch_timeout_ms).unref())]);
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
      config = await first;
    }
  }
  if (identity !== null && !(await identity.whenReady(Math.max(0, bootstrap.initial_fetch_timeout_ms - (Date.now() - startedAt))))) {
    log.warn(
      { identity: bootstrap.mesh_identity!.spiffe_id, dir: bootstrap.mesh_identity!.dir },
      'no mesh certificate yet: starting without it (it is written to the directory as soon as the CA issues it)',
    );
  }
  try {
    remora = await startRemora(config, log, {
      describe: () => ({
        xds: { ...client.state(), started_from: startedFrom, config_age_s: appliedAt > 0 ? Math.round((Date.now() - appliedAt) / 1000) : null },
        ...(identity !== null ? { mesh_identity: identity.status() } : {}),
      }),
      ...(identity !== null ? { identity: () => identity!.status() } : {}),
      metrics: () => {
        const s = client.state();
        return { connected: s.connected ? 1 : 0, nacks: s.nacks, acks: s.acks, reconnects: s.reconnects, configAgeS: appliedAt > 0 ? (Date.now() - appliedAt) / 1000 : -1 };
      },
    });
  } catch (err) {
    client.stop();
    identity?.close();
    throw err;
  }
  // An update that arrived while Remora started goes in now.
  if (latest !== null && latest !== config) queueReload(latest);
  void remora.finished.then(() => {
    client.stop();
    identity?.close();
  });
  return { remora, client, startedFrom, identity };
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
