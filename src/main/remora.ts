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

export interface RunningRemora {
  readonly snapshot: ConfigSnapshot;
  readonly adminPort: number;
  stop(graceMs?: number): Promise<void>;
}

export async function startRemora(config: RemoraConfig, log: Logger): Promise<RunningRemora> {
  const boundPorts = await resolvePorts(config.listeners);
  const snapshot: ConfigSnapshot = { version: 1, config, boundPorts };
  const pool = new WorkerPool(config.workers, snapshot, log);
  let admin: http.Server;
  try {
    admin = await startAdmin(
      {
        pool,
        log,
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
        admin.close();
        await pool.stop(graceMs);
      })();
      return stopped;
    },
  };
}
