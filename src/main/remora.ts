// A running Remora: resolves ports, starts the worker pool and the admin server, and
// stops them in the order uWS needs (workers close their sockets before the process
// exits; a plain exit with live uWS sockets aborts the process).

import type http from 'node:http';
import type { ConfigError, ConfigSnapshot, RemoraConfig, TlsMaterialSet } from '../config/types.js';
import { formatErrors } from '../config/load.js';
import { CertStore } from './cert-store.js';
import { RemoraError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { PROBE_PATHS, serverPort, startAdmin, type AdminContext } from './admin.js';
import { Lifecycle } from './lifecycle.js';
import { WorkerCell } from '../shared/stats-layout.js';
import { busyListenerPorts, heldPorts, resolvePorts } from './ports.js';
import { WorkerPool } from './worker-pool.js';
import { MAX_CLUSTERS, MAX_LISTENERS } from '../shared/limits.js';
import { SlotRegistry } from '../shared/stats-layout.js';
import { StatsReader } from '../stats/reader.js';
import { Metrics } from './metrics.js';
import { Resilience } from './resilience.js';

export interface RunningRemora {
  /** The config being served (changes on reload). */
  readonly snapshot: ConfigSnapshot;
  readonly adminPort: number;
  /** Port of the probes server, or null when none is configured. */
  readonly probesPort: number | null;
  readonly lifecycle: Lifecycle;
  /** Resolves when Remora has stopped, whatever stopped it (signal, /quitquitquit). */
  readonly finished: Promise<void>;
  /** Records a config that failed validation (the running config keeps serving). */
  rejected(source: string, errors: readonly ConfigError[]): void;
  /** Graceful stop (see docs/operations.md); `delay` waits drain.delay_ms first; with
   *  `exit` false listeners only stop accepting (POST /drain_listeners). */
  shutdown(reason: string, delay: boolean, exit?: boolean): Promise<void>;
  /** Applies a new, already validated config as the next version. Listeners and
   *  clusters that keep their names keep their state (stats, breakers, health, buckets).
   *  Resolves true when every worker serves it. The worker count cannot change. */
  reload(config: RemoraConfig): Promise<boolean>;
  /** Stops now: listeners close, in-flight requests get `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Where the config comes from, when not a file (xDS): shown in /config_dump and /metrics. */
export interface ConfigSourceInfo {
  describe(): Record<string, unknown>;
  /** The mesh identity client's state (xDS mode with mesh_identity), for /certs. */
  identity?(): unknown;
  metrics(): { connected: number; nacks: number; acks: number; reconnects: number; configAgeS: number };
}

export async function startRemora(config: RemoraConfig, log: Logger, source: ConfigSourceInfo | null = null): Promise<RunningRemora> {
  const resilience = new Resilience(log);
  const listenerSlots = new SlotRegistry(MAX_LISTENERS);
  const clusterSlots = new SlotRegistry(MAX_CLUSTERS, (slot) => resilience.clearClusterSlot(slot));
  // Rotated TLS files reach the workers without a new config version.
  let onRotate: (tls: TlsMaterialSet) => void = () => {};
  const certs = new CertStore(log, (tls) => onRotate(tls));
  const build = async (version: number, next: RemoraConfig, previous: ConfigSnapshot | null): Promise<ConfigSnapshot> => {
    // A listener that keeps its name, address and port keeps the port it bound (port 0).
    const keep = next.listeners.filter((l) => {
      const old = previous?.config.listeners.find((o) => o.name === l.name);
      return old !== undefined && old.address === l.address && old.port === l.port;
    });
    // Every listener, so that errors name its index in the config (kept ones are held).
    const busy = await busyListenerPorts(next.listeners, heldPorts(previous));
    if (busy.length > 0) throw new PortsRejected(busy);
    const loaded = certs.load(next);
    if (!loaded.ok) throw new TlsFilesRejected(loaded.errors);
    const boundPorts = await resolvePorts(next.listeners.filter((l) => !keep.includes(l)));
    for (const l of keep) boundPorts[l.name] = previous!.boundPorts[l.name];
    return {
      version,
      config: next,
      boundPorts,
      statSlots: {
        listeners: listenerSlots.assign(next.listeners.map((l) => l.name)),
        clusters: clusterSlots.assign(next.clusters.map((c) => c.name)),
      },
      stateSlots: resilience.assign(next),
      tls: loaded.tls,
    };
  };
  let snapshot: ConfigSnapshot;
  try {
    snapshot = await build(1, config, null);
  } catch (err) {
    certs.close();
    if (err instanceof TlsFilesRejected) throw new RemoraError('REMORA_ERR_CONFIG_INVALID', formatErrors('TLS files', err.errors));
    if (err instanceof PortsRejected) throw new RemoraError('REMORA_ERR_LISTEN', err.errors.map((e) => e.message).join('; '));
    throw err;
  }
  resilience.applied(config, snapshot.statSlots.clusters, snapshot.stateSlots, snapshot.tls.clusters);
  const pool = new WorkerPool(config.workers, snapshot, log, resilience.buffer, resilience.epochMs);
  pool.subscribe((_slot, msg) => resilience.onWorkerMessage(msg));
  const reader = new StatsReader(pool.slabs);
  reader.setSlots(Object.values(snapshot.statSlots.listeners), Object.values(snapshot.statSlots.clusters));
  // 32-bit cells must be folded before they can wrap; once a second is far more often.
  const folder = setInterval(() => reader.fold(), 1000);
  folder.unref();
  const lifecycle = new Lifecycle();
  const metrics = new Metrics({ reader, pool, snapshot: () => snapshot, resilience, lifecycle, source, certs });
  onRotate = (tls) => {
    snapshot = { ...snapshot, tls };
    pool.updateTls(tls);
    resilience.tlsRotated(tls.clusters);
  };
  let stopped: Promise<void> | null = null;
  let draining: Promise<void> | null = null;
  let resolveFinished: () => void = () => {};
  const finished = new Promise<void>((resolve) => (resolveFinished = resolve));
  const servers: http.Server[] = [];

  const stop = (graceMs: number): Promise<void> => {
    stopped ??= (async () => {
      lifecycle.phase = 'draining';
      clearInterval(folder);
      clearInterval(watchdog);
      resilience.stop();
      certs.close();
      for (const server of servers) server.close();
      await pool.stop(graceMs);
      lifecycle.phase = 'stopped';
      log.flush();
      resolveFinished();
    })();
    return stopped;
  };

  /** Graceful stop: /ready 503 at once; with `delay`, listeners keep accepting for
   *  drain.delay_ms; then they stop and in-flight requests get drain.timeout_ms. */
  const shutdown = (reason: string, delay: boolean, exit = true): Promise<void> => {
    if (draining === null) {
      const { delay_ms, timeout_ms } = snapshot.config.drain;
      lifecycle.phase = 'draining';
      pool.drain();
      log.info({ reason, delayMs: delay ? delay_ms : 0, timeoutMs: timeout_ms }, 'draining');
      draining = (async () => {
        if (delay && delay_ms > 0) await new Promise((r) => setTimeout(r, delay_ms));
        if (!exit) {
          pool.stopListening();
          log.info('listeners stopped accepting (drain_listeners); still serving open connections');
          return;
        }
        await stop(timeout_ms);
      })();
    }
    return draining;
  };

  const adminCtx: AdminContext = {
    pool,
    log,
    reader,
    metrics,
    snapshot: () => snapshot,
    resilience,
    certs,
    lifecycle,
    source,
    startedAt: Date.now(),
    faultInjection: process.env.REMORA_FAULT_INJECTION === '1',
    shutdown,
  };
  let admin: http.Server;
  try {
    admin = await startAdmin(adminCtx, config.admin.address, config.admin.port);
    servers.push(admin);
  } catch (err) {
    resilience.stop();
    await pool.stop(0);
    throw new RemoraError('REMORA_ERR_LISTEN', `admin cannot bind ${config.admin.address}:${config.admin.port}: ${String(err)}`);
  }
  let probes: http.Server | null = null;
  if (config.probes !== undefined) {
    try {
      probes = await startAdmin(adminCtx, config.probes.address, config.probes.port, PROBE_PATHS);
      servers.push(probes);
    } catch (err) {
      admin.close();
      resilience.stop();
      await pool.stop(0);
      throw new RemoraError('REMORA_ERR_LISTEN', `probes cannot bind ${config.probes.address}:${config.probes.port}: ${String(err)}`);
    }
  }
  try {
    await pool.start();
  } catch (err) {
    for (const server of servers) server.close();
    resilience.stop();
    await pool.stop(0);
    if (err instanceof RemoraError) throw err;
    throw new RemoraError('REMORA_ERR_WORKER', err instanceof Error ? err.message : String(err), { cause: err });
  }
  void resilience.checker.firstRound().then(() => {
    lifecycle.firstHealthRoundDone = true;
    log.info('first round of active health checks done');
  });
  const markServing = setInterval(() => {
    // readiness() marks the end of startup the first time it answers ready.
    if (lifecycle.readiness(pool.notListening(snapshot.version)).ready) {
      clearInterval(markServing);
      log.info({ startupMs: lifecycle.startupMs }, 'ready: serving with every worker');
    }
  }, 20);
  markServing.unref();

  // Watchdog: a worker whose heartbeat stopped is stuck in JavaScript. This uWS build
  // cannot end one thread that holds sockets without aborting the process, so (as
  // Envoy's watchdog kill does) the process ends and its supervisor restarts it.
  const watchdog = setInterval(() => {
    const limit = snapshot.config.worker_limits.heartbeat_timeout_ms;
    if (limit <= 0 || stopped !== null) return;
    const now = Math.floor(Date.now() / 1000);
    for (const slot of pool.slots) {
      if (slot.state !== 'listening') continue;
      const beat = reader.workerCell(slot.slot, WorkerCell.Heartbeat);
      if (beat === 0 || (now - beat) * 1000 < limit) continue;
      log.fatal({ worker: slot.slot, threadId: slot.threadId, heartbeatAgeS: now - beat, limitMs: limit }, 'worker unresponsive: ending the process so its supervisor restarts it');
      log.flush();
      pool.stopListening();
      setTimeout(() => process.kill(process.pid, 'SIGKILL'), 500);
      clearInterval(watchdog);
      return;
    }
  }, 1000);
  watchdog.unref();

  let reloading: Promise<boolean> = Promise.resolve(true);
  return {
    get snapshot() {
      return snapshot;
    },
    adminPort: serverPort(admin),
    probesPort: probes !== null ? serverPort(probes) : null,
    lifecycle,
    finished,
    reload(next: RemoraConfig) {
      const run = async (): Promise<boolean> => {
        let nextSnapshot: ConfigSnapshot;
        try {
          nextSnapshot = await build(snapshot.version + 1, { ...next, workers: snapshot.config.workers }, snapshot);
        } catch (err) {
          if (err instanceof PortsRejected) {
            lifecycle.rejected('listener ports', err.errors);
            log.error({ errors: err.errors }, 'config rejected: a listener port is in use; the running config keeps serving');
            return false;
          }
          if (!(err instanceof TlsFilesRejected)) throw err;
          lifecycle.rejected('TLS files', err.errors);
          log.error({ errors: err.errors }, 'config rejected: its TLS files do not load; the running config keeps serving');
          return false;
        }
        reader.fold(); // counts of slots about to be reused are taken first
        reader.setSlots(Object.values(nextSnapshot.statSlots.listeners), Object.values(nextSnapshot.statSlots.clusters));
        snapshot = nextSnapshot;
        resilience.applied(next, snapshot.statSlots.clusters, snapshot.stateSlots, snapshot.tls.clusters);
        const ok = await pool.apply(snapshot);
        lifecycle.reloaded();
        log.info({ version: snapshot.version, allWorkers: ok }, ok ? 'config applied' : 'config sent; not every worker confirmed it');
        return ok;
      };
      reloading = reloading.then(run, run);
      return reloading;
    },
    rejected(source: string, errors: readonly ConfigError[]) {
      lifecycle.rejected(source, errors);
      log.error({ source, errors }, 'config rejected; the running config keeps serving');
    },
    shutdown,
    stop(graceMs = 5000) {
      return stop(graceMs);
    },
  };
}

/** A config whose TLS files cannot be used (errors by config path). */
class TlsFilesRejected extends Error {
  constructor(readonly errors: readonly ConfigError[]) {
    super('TLS files rejected');
  }
}

/** A config with a listener on a port something else holds (errors by config path). */
class PortsRejected extends Error {
  constructor(readonly errors: readonly ConfigError[]) {
    super('listener ports in use');
  }
}
