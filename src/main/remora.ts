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

export interface RunningRemora {
  readonly snapshot: ConfigSnapshot;
  readonly adminPort: number;
  stop(graceMs?: number): Promise<void>;
}

export async function startRemora(config: RemoraConfig, log: Logger): Promise<RunningRemora> {
  const boundPorts = await resolvePorts(config.listeners);
  const listenerSlots = new SlotRegistry(MAX_LISTENERS);
  const clusterSlots = new SlotRegistry(MAX_CLUSTERS);
  const snapshot: ConfigSnapshot = {
    version: 1,
    config,
    boundPorts,
    statSlots: {
      listeners: listenerSlots.assign(config.listeners.map((l) => l.name)),
      clusters: clusterSlots.assign(config.clusters.map((c) => c.name)),
    },
  };
  const pool = new WorkerPool(config.workers, snapshot, log);
  const reader = new StatsReader(pool.slabs);
  reader.setSlots(Object.values(snapshot.statSlots.listeners), Object.values(snapshot.statSlots.clusters));
  // 32-bit cells must be folded before they can wrap; once a second is far more often.
  const folder = setInterval(() => reader.fold(), 1000);
  folder.unref();
  const metrics = new Metrics({ reader, pool, snapshot: () => snapshot });
  let admin: http.Server;
  try {
    admin = await startAdmin(
      {
        pool,
        log,
        reader,
        metrics,
        snapshot: () => snapshot,
        startedAt: Date.now(),
        faultInjection: process.env.REMORA_FAULT_INJECTION === '1',
      },
      config.admin.address,
      config.admin.port,
    );
  } catch (err) {
    await pool.stop(0);
    throw new RemoraError('REMORA_ERR_LISTEN', `admin cannot bind ${config.admin.address}:${config.admin.port}: ${String(err)}`);
  }
  try {
    await pool.start();
  } catch (err) {
    admin.close();
    await pool.stop(0);
    if (err instanceof RemoraError) throw err;
    throw new RemoraError('REMORA_ERR_WORKER', err instanceof Error ? err.message : String(err), { cause: err });
  }
  let stopped: Promise<void> | null = null;
  return {
    snapshot,
    adminPort: serverPort(admin),
    stop(graceMs = 5000) {
      stopped ??= (async () => {
        clearInterval(folder);
        admin.close();
        await pool.stop(graceMs);
      })();
      return stopped;
    },
  };
}
