// Starts and supervises the workers through piscina: one long-lived `serve` task per
// worker slot, each with its own MessagePort. A serve task that rejects means its
// worker died; the slot gets a new serve task (piscina brings up a new thread) while
// the other workers keep serving. A worker that dies during startup fails start()
// instead (a broken build or config would otherwise restart forever); replacements
// that keep dying before they listen are restarted with an increasing delay.

import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { ConfigSnapshot, TlsMaterialSet } from '../config/types.js';
import { RemoraError } from '../core/errors.js';
import { LAYOUT } from '../stats/shapes.js';
import type { Logger } from '../core/log.js';
import type { FromWorker, ServeTask, ToWorker, WorkerStatsReply } from '../shared/messages.js';

const SERVE_FILE = fileURLToPath(new URL('../../workers/serve.js', import.meta.url));
const RESTART_DELAY_MS = 100;
const MAX_RESTART_DELAY_MS = 5000;

export type SlotState = 'starting' | 'listening' | 'failed' | 'restarting' | 'stopped';

export interface WorkerSlot {
  readonly slot: number;
  state: SlotState;
  threadId: number;
  version: number;
  /** The snapshot's endpointsRevision this worker runs (endpoint-only updates). */
  endpointsRevision: number;
  restarts: number;
  port: MessagePort | null;
}

export class WorkerPool {
  readonly slots: WorkerSlot[];
  /** One stats slab per slot, allocated here and kept when a slot's worker is replaced. */
  readonly slabs: SharedArrayBuffer[];
  private readonly piscina: Piscina;
  private snapshot: ConfigSnapshot;
  private stopping = false;
  /** True once every slot has listened; before that a dying worker fails start(). */
  private started = false;
  private onStartFailure: ((err: Error) => void) | null = null;
  /** Per slot: deaths since the slot last listened (drives the restart delay). */
  private readonly deathStreak: number[];
  private nextStatsId = 1;
  private readonly statsWaiters = new Map<number, (reply: WorkerStatsReply) => void>();
  private readonly listeners: ((slot: WorkerSlot, msg: FromWorker) => void)[] = [];

  constructor(
    count: number,
    snapshot: ConfigSnapshot,
    private readonly log: Logger,
    /** Process-wide resilience state and rate-limit epoch, handed to every worker. */
    private readonly sharedState: SharedArrayBuffer,
    private readonly epochMs: number,
    /** worker_limits.young_generation_mb (0: V8's own limit). */
    youngGenerationMb = 0,
  ) {
    this.snapshot = snapshot;
    this.piscina = new Piscina({
      filename: SERVE_FILE,
      minThreads: count,
      maxThreads: count,
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      // 'sync' parks idle workers in Atomics.wait, which would freeze a uWS event loop.
      atomics: 'disabled',
      ...(youngGenerationMb > 0 ? { resourceLimits: { maxYoungGenerationSizeMb: youngGenerationMb } } : {}),
    });
    this.slots = Array.from({ length: count }, (_, slot) => ({
      slot,
      state: 'starting' as SlotState,
      threadId: -1,
      version: 0,
      endpointsRevision: 0,
      restarts: 0,
      port: null,
    }));
    this.deathStreak = this.slots.map(() => 0);
    this.slabs = this.slots.map(() => LAYOUT.allocate());
  }

  /** Starts every slot; resolves when all listen on `snapshot`. Rejects with a
   *  RemoraError on a bind failure (REMORA_ERR_LISTEN) or when a worker dies before the
   *  pool is up (REMORA_ERR_WORKER). */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (err: RemoraError): void => {
        this.off(check);
        this.onStartFailure = null;
        reject(err);
      };
      const check = (slot: WorkerSlot, msg: FromWorker): void => {
        if (msg.type === 'listen_failed') {
          const where = `${msg.address}:${msg.port}`;
          fail(new RemoraError('REMORA_ERR_LISTEN', `listener ${msg.listener} cannot bind ${where} (in use or not permitted)`));
        } else if (this.allListening(this.snapshot.version)) {
          this.off(check);
          this.onStartFailure = null;
          this.started = true;
          resolve();
        }
      };
      this.onStartFailure = (err) =>
        fail(new RemoraError('REMORA_ERR_WORKER', `worker failed to start: ${err.message}`, { cause: err }));
      this.listeners.push(check);
      for (const slot of this.slots) this.runSlot(slot);
    });
  }

  /** True when every worker listens with config `version`. */
  allListening(version: number): boolean {
    return this.slots.every((s) => s.state === 'listening' && s.version === version);
  }

  /** Null when every worker listens with config `version`; else which do not. */
  notListening(version: number): string | null {
    const waiting = this.slots.filter((s) => s.state !== 'listening' || s.version !== version);
    if (waiting.length === 0) return null;
    return waiting
      .map((s) => `worker ${s.slot} ${s.state} v${s.version}${s.restarts > 0 ? ` (${s.restarts} restarts)` : ''}`)
      .join(', ');
  }

  /** Draining: every worker closes each connection after its next response. */
  drain(): void {
    for (const s of this.slots) this.send(s, { type: 'drain' });
  }

  /** Every worker stops accepting connections (open ones keep being served). */
  stopListening(): void {
    for (const s of this.slots) this.send(s, { type: 'stop_listening' });
  }

  /** Fault injection (tests): blocks one worker's event loop forever. */
  hang(slot: number): boolean {
    const s = this.slots[slot];
    if (s === undefined || s.port === null) return false;
    this.send(s, { type: 'hang' });
    return true;
  }

  /** Asks every live worker for its counters and pool state. */
  async stats(endpoints = true, timeoutMs = 1000): Promise<WorkerStatsReply[]> {
    const replies = this.slots
      .filter((s) => s.port !== null)
      .map(
        (s) =>
          new Promise<WorkerStatsReply | null>((resolve) => {
            const id = this.nextStatsId++;
            const timer = setTimeout(() => {
              this.statsWaiters.delete(id);
              resolve(null);
            }, timeoutMs);
            this.statsWaiters.set(id, (reply) => {
              clearTimeout(timer);
              resolve(reply);
            });
            this.send(s, { type: 'stats', id, endpoints });
          }),
      );
    return (await Promise.all(replies)).filter((r): r is WorkerStatsReply => r !== null);
  }

  /** Changes every worker's process-log level. */
  setLogLevel(level: string): void {
    for (const s of this.slots) this.send(s, { type: 'log_level', level });
  }

  /** Fault injection (tests): makes one worker throw an uncaught error. */
  crash(slot: number): boolean {
    const s = this.slots[slot];
    if (s === undefined || s.port === null) return false;
    this.send(s, { type: 'crash' });
    return true;
  }

  /** Stops every worker: listeners close, in-flight requests get `graceMs` to finish. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    for (const s of this.slots) if (s.port !== null) this.send(s, { type: 'stop', graceMs });
    const deadline = Date.now() + graceMs + 2000;
    while (this.slots.some((s) => s.state !== 'stopped' && s.port !== null) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await this.piscina.destroy();
  }

  private runSlot(slot: WorkerSlot): void {
    const { port1, port2 } = new MessageChannel();
    slot.port = port1;
    slot.state = slot.restarts > 0 ? 'restarting' : 'starting';
    port1.on('message', (msg: FromWorker) => this.onMessage(slot, msg));
    const task: ServeTask = {
      slot: slot.slot,
      snapshot: this.snapshot,
      port: port2,
      statsSlab: this.slabs[slot.slot],
      allStatsSlabs: this.slabs,
      sharedState: this.sharedState,
      epochMs: this.epochMs,
    };
    this.piscina
      .run(task, { transferList: [port2] })
      .then(() => {
        slot.state = 'stopped';
        port1.close();
      })
      .catch((err: unknown) => {
        port1.close();
        slot.port = null;
        if (this.stopping) {
          slot.state = 'stopped';
          return;
        }
        if (!this.started) {
          slot.state = 'failed';
          this.onStartFailure?.(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        slot.state = 'restarting';
        slot.restarts++;
        const streak = this.deathStreak[slot.slot]++;
        const delay = Math.min(RESTART_DELAY_MS * 2 ** streak, MAX_RESTART_DELAY_MS);
        this.log.error({ err, worker: slot.slot, restarts: slot.restarts, delayMs: delay }, 'worker died; starting a replacement');
        setTimeout(() => {
          if (!this.stopping) this.runSlot(slot);
        }, delay);
      });
  }

  private onMessage(slot: WorkerSlot, msg: FromWorker): void {
    switch (msg.type) {
      case 'listening':
        slot.state = 'listening';
        this.deathStreak[slot.slot] = 0;
        slot.threadId = msg.threadId;
        slot.version = msg.version;
        slot.endpointsRevision = msg.endpointsRevision;
        if (slot.restarts > 0) this.log.info({ worker: slot.slot, threadId: msg.threadId }, 'replacement worker listening');
        break;
      case 'listen_failed':
        slot.state = 'failed';
        break;
      case 'endpoints_applied':
        slot.endpointsRevision = msg.revision;
        break;
      case 'stats': {
        const waiter = this.statsWaiters.get(msg.id);
        this.statsWaiters.delete(msg.id);
        waiter?.(msg);
        break;
      }
    }
    for (const l of this.listeners.slice()) l(slot, msg);
  }

  /** Calls `fn` for every message a worker sends. */
  subscribe(fn: (slot: WorkerSlot, msg: FromWorker) => void): void {
    this.listeners.push(fn);
  }

  /** Sends a new config snapshot to every worker; resolves when all listen with it. */
  apply(snapshot: ConfigSnapshot, timeoutMs = 10_000): Promise<boolean> {
    this.snapshot = snapshot;
    for (const s of this.slots) this.send(s, { type: 'config', snapshot });
    return this.until(() => this.allListening(snapshot.version), timeoutMs);
  }

  /** An endpoint-only update: `snapshot` (same version, the next endpointsRevision) is
   *  kept for replacement workers; the workers get just the named clusters. Resolves when
   *  every worker runs it. */
  updateClusters(snapshot: ConfigSnapshot, names: readonly string[], timeoutMs = 10_000): Promise<boolean> {
    this.snapshot = snapshot;
    const revision = snapshot.endpointsRevision ?? 0;
    const wanted = new Set(names);
    const clusters = snapshot.config.clusters.filter((c) => wanted.has(c.name));
    const endpointSlots: Record<string, Readonly<Record<string, number>>> = {};
    for (const c of clusters) endpointSlots[c.name] = snapshot.stateSlots.endpoints[c.name] ?? {};
    for (const s of this.slots) this.send(s, { type: 'cluster_endpoints', revision, clusters, endpointSlots });
    return this.until(() => this.allListening(snapshot.version) && this.slots.every((s) => s.endpointsRevision >= revision), timeoutMs);
  }

  /** Resolves true once `done()` holds after a worker's message, false after `timeoutMs`. */
  private until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.off(check);
        resolve(false);
      }, timeoutMs);
      const check = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        this.off(check);
        resolve(true);
      };
      this.listeners.push(check);
    });
  }

  /** Rotated TLS material: kept for replacement workers and sent to every worker. */
  updateTls(tls: TlsMaterialSet): void {
    this.snapshot = { ...this.snapshot, tls };
    for (const s of this.slots) this.send(s, { type: 'tls', tls });
  }

  /** New DNS answers (same config version): kept for replacement workers and sent to
   *  every worker. */
  updateEndpoints(snapshot: ConfigSnapshot): void {
    const resolved = snapshot.resolved ?? {};
    this.snapshot = { ...this.snapshot, resolved, stateSlots: snapshot.stateSlots };
    for (const s of this.slots) this.send(s, { type: 'endpoints', resolved, endpointSlots: snapshot.stateSlots.endpoints });
  }

  private off(fn: (slot: WorkerSlot, msg: FromWorker) => void): void {
    const i = this.listeners.indexOf(fn);
    if (i >= 0) this.listeners.splice(i, 1);
  }

  private send(slot: WorkerSlot, msg: ToWorker): void {
    slot.port?.postMessage(msg);
  }
}
