// The process's lifecycle as operators and orchestrators see it: starting → serving →
// draining → stopped, the manual health-check override, and the readiness answer
// (/ready) that combines them with the workers' state and the first round of active
// health checks. Also records config reloads and rejections for /config_dump and
// metrics. Main thread only.

import type { ConfigError } from '../config/types.js';

export type Phase = 'starting' | 'serving' | 'draining' | 'stopped';

export interface Readiness {
  readonly ready: boolean;
  /** Why not ready ('' when ready). */
  readonly reason: string;
}

export interface Rejection {
  readonly at: string;
  readonly source: string;
  readonly errors: readonly ConfigError[];
}

export class Lifecycle {
  phase: Phase = 'starting';
  /** POST /healthcheck/fail sets it, /healthcheck/ok clears it. */
  healthCheckFailed = false;
  /** True once every active health check had its first result (or none is configured). */
  firstHealthRoundDone = false;
  readonly startedAt = Date.now();
  /** Milliseconds from process start to the first time everything was ready. */
  startupMs = -1;
  reloads = 0;
  rejections = 0;
  lastRejection: Rejection | null = null;
  lastReloadAt: string | null = null;

  /** `workers`: null when every worker listens with the current config, else why not. */
  readiness(workers: string | null): Readiness {
    if (this.phase === 'draining' || this.phase === 'stopped') return { ready: false, reason: `${this.phase}` };
    if (this.healthCheckFailed) return { ready: false, reason: 'health check failed by POST /healthcheck/fail' };
    if (workers !== null) return { ready: false, reason: workers };
    if (!this.firstHealthRoundDone) return { ready: false, reason: 'waiting for the first round of active health checks' };
    // The first ready answer is the end of startup, whoever asks first (/ready, /metrics
    // or the main thread's own poll): remora_startup_seconds never lags /ready.
    if (this.startupMs < 0) this.served(Math.round(performance.timeOrigin));
    return { ready: true, reason: '' };
  }

  /** Marks startup complete (once), measured from the process start. */
  served(processStartMs: number): void {
    if (this.phase === 'starting') this.phase = 'serving';
    if (this.startupMs < 0) this.startupMs = Date.now() - processStartMs;
  }

  rejected(source: string, errors: readonly ConfigError[]): void {
    this.rejections++;
    this.lastRejection = { at: new Date().toISOString(), source, errors };
  }

  reloaded(): void {
    this.reloads++;
    this.lastReloadAt = new Date().toISOString();
  }
}
