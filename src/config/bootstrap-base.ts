// The process-wide fields of an xDS bootstrap (workers, admin, probes, drain,
// worker_limits, stats), checked on their own: validateBootstrap checks only the keys
// and the `xds` block, because these fields are validated with the listeners and
// clusters once the control plane sends them (translateXds). `remora validate` and the
// xDS waiting phase (src/main/xds-waiting.ts, which serves the admin and probes ports
// before any listener exists) need them before that.

import type { ConfigError, RemoraConfig } from './types.js';
import { validateConfig } from './validate.js';

/** The bootstrap's root fields that become part of every config (translateXds takes
 *  them from the bootstrap; the rest comes from the control plane). */
const BASE_KEYS = ['workers', 'admin', 'probes', 'drain', 'worker_limits', 'stats', 'tracing'];

/** The process-wide fields `base` sets, as raw config (other keys are not read). */
export function bootstrapBaseFields(base: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const key of BASE_KEYS) if (base[key] !== undefined) raw[key] = base[key];
  return raw;
}

/** A stand-in listener that only makes the file a complete config (port 0 never clashes
 *  with the admin or probes port); errors never point at it. */
const STAND_IN_LISTENER = {
  name: 'bootstrap-check',
  address: '127.0.0.1',
  port: 0,
  virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 503 } }] }],
};

export type BootstrapBase = Pick<RemoraConfig, 'workers' | 'admin' | 'probes' | 'drain' | 'worker_limits' | 'stats'>;

/** The bootstrap's process-wide fields with their defaults, or their errors by path. */
export function validateBootstrapBase(base: Readonly<Record<string, unknown>>): { ok: true; base: BootstrapBase } | { ok: false; errors: ConfigError[] } {
  const result = validateConfig({ ...bootstrapBaseFields(base), listeners: [STAND_IN_LISTENER], clusters: [] });
  if (!result.ok) return { ok: false, errors: result.errors };
  const { workers, admin, probes, drain, worker_limits, stats } = result.config;
  return { ok: true, base: { workers, admin, probes, drain, worker_limits, stats } };
}
