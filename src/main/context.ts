// The types shared by the running Remora (remora.ts) and the modules it hands itself to:
// the admin server, metrics, the config watcher and the xDS source. A leaf: it imports
// only types from leaves, so none of those modules needs to import remora.ts.

import type { ConfigError, ConfigSnapshot, RemoraConfig } from '../config/types.js';
import type { Lifecycle } from './lifecycle.js';

/** Where the config comes from, when not a file (xDS): shown in /config_dump and /metrics. */
export interface ConfigSourceInfo {
  describe(): Record<string, unknown>;
  /** The node Remora presents to its control plane (xDS mode): also what it sends to
   *  gRPC access log services. */
  readonly node?: { readonly id: string; readonly cluster: string };
  /** The mesh identity client's state (xDS mode with mesh_identity), for /certs. */
  identity?(): unknown;
  /** `fieldsWithoutEffect`: per field accepted without effect, how many resources of the
   *  applied config set it (translateXds' noEffect). */
  metrics(): {
    connected: number; nacks: number; acks: number; reconnects: number; configAgeS: number; unknownFields: number;
    fieldsWithoutEffect: ReadonlyMap<string, number>;
  };
}

/** What the admin server may ask of the running Remora (POST /drain_listeners,
 *  /quitquitquit). */
export interface RemoraControl {
  /** Graceful stop: `delay` waits drain.delay_ms first; `exit` false only stops accepting. */
  shutdown(reason: string, delay: boolean, exit?: boolean): Promise<void>;
}

export interface RunningRemora extends RemoraControl {
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
  /** Applies `config`, which differs from the running one only in the endpoint lists of
   *  the clusters named in `clusters` (an EDS update): no new version; only those
   *  clusters change in the workers (pools of endpoints that stay keep their
   *  connections). Resolves true when every worker runs them. */
  updateEndpoints(config: RemoraConfig, clusters: readonly string[]): Promise<boolean>;
  /** Stops now: listeners close, in-flight requests get `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}
