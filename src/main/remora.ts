// A running Remora: resolves ports, starts the worker pool and the admin server, and
// stops them in the order uWS needs (workers close their sockets before the process
// exits; a plain exit with live uWS sockets aborts the process).

import type http from 'node:http';
import type { ConfigSnapshot, RemoraConfig } from '../config/types.js';
import { RemoraError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { serverPort, startAdmin } from './admin.js';
import { resolvePorts } from './ports.js';
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
  /** Applies a new, already validated config as the next version. Listeners and
   *  clusters that keep their names keep their state (stats, breakers, health, buckets).
   *  Resolves true when every worker serves it. The worker count cannot change. */
  reload(config: RemoraConfig): Promise<boolean>;
  stop(graceMs?: number): Promise<void>;
}

export async function startRemora(config: RemoraConfig, log: Logger): Promise<RunningRemora> {
  const resilience = new Resilience(log);
  const listenerSlots = new SlotRegistry(MAX_LISTENERS);
  const clusterSlots = new SlotRegistry(MAX_CLUSTERS, (slot) => resilience.clearClusterSlot(slot));
  const build = async (version: number, next: RemoraConfig, previous: ConfigSnapshot | null): Promise<ConfigSnapshot> => {
    // A listener that keeps its name, address and port keeps the port it bound (port 0).
    const keep = next.listeners.filter((l) => {
      const old = previous?.config.listeners.find((o) => o.name === l.name);
      return old !== undefined && old.address === l.address && old.port === l.port;
    });
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
    };
  };
  let snapshot = await build(1, config, null);
  resilience.applied(config, snapshot.statSlots.clusters, snapshot.stateSlots);
  const pool = new WorkerPool(config.workers, snapshot, log, resilience.buffer, resilience.epochMs);
  pool.subscribe((_slot, msg) => resilience.onWorkerMessage(msg));
  const reader = new StatsReader(pool.slabs);
  reader.setSlots(Object.values(snapshot.statSlots.listeners), Object.values(snapshot.statSlots.clusters));
  // 32-bit cells must be folded before they can wrap; once a second is far more often.
  const folder = setInterval(() => reader.fold(), 1000);
  folder.unref();
  const metrics = new Metrics({ reader, pool, snapshot: () => snapshot, resilience });
  let admin: http.Server;
  try {
    admin = await startAdmin(
      {
        pool,
        log,
        reader,
        metrics,
        snapshot: () => snapshot,
        resilience,
        startedAt: Date.now(),
        faultInjection: process.env.REMORA_FAULT_INJECTION === '1',
      },
      config.admin.address,
      config.admin.port,
    );
  } catch (err) {
    resilience.stop();
    await pool.stop(0);
    throw new RemoraError('REMORA_ERR_LISTEN', `admin cannot bind ${config.admin.address}:${config.admin.port}: ${String(err)}`);
  }
  try {
    await pool.start();
  } catch (err) {
    admin.close();
    resilience.stop();
    await pool.stop(0);
    if (err instanceof RemoraError) throw err;
    throw new RemoraError('REMORA_ERR_WORKER', err instanceof Error ? err.message : String(err), { cause: err });
  }
  let stopped: Promise<void> | null = null;
  let reloading: Promise<boolean> = Promise.resolve(true);
  return {
    get snapshot() {
      return snapshot;
    },
    adminPort: serverPort(admin),
    reload(next: RemoraConfig) {
      const run = async (): Promise<boolean> => {
        const nextSnapshot = await build(snapshot.version + 1, { ...next, workers: snapshot.config.workers }, snapshot);
        reader.fold(); // counts of slots about to be reused are taken first
        reader.setSlots(Object.values(nextSnapshot.statSlots.listeners), Object.values(nextSnapshot.statSlots.clusters));
        snapshot = nextSnapshot;
        resilience.applied(next, snapshot.statSlots.clusters, snapshot.stateSlots);
        const ok = await pool.apply(snapshot);
        log.info({ version: snapshot.version, allWorkers: ok }, ok ? 'config applied' : 'config sent; not every worker confirmed it');
        return ok;
      };
      reloading = reloading.then(run, run);
      return reloading;
    },
    stop(graceMs = 5000) {
      stopped ??= (async () => {
        clearInterval(folder);
        resilience.stop();
        admin.close();
        await pool.stop(graceMs);
      })();
      return stopped;
    },
  };
}
