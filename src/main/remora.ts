// A running Remora: resolves ports, starts the worker pool and the admin server, and
// stops them in the order uWS needs (workers close their sockets before the process
// exits; a plain exit with live uWS sockets aborts the process). Every way out (a start
// that fails, stop(), a drain that ends in a stop) releases everything through one
// dispose().
// Long file: every step of the lifecycle (start, reload, endpoint, DNS and TLS updates,
// drain, stop) is here in order, each handing its work to the module that owns it.

import type http from 'node:http';
import type { Cluster, ConfigError, ConfigSnapshot, RemoraConfig, TlsMaterialSet } from '../config/types.js';
import { formatErrors } from '../config/load.js';
import { CertStore } from './cert-store.js';
import { HeapTrim } from './heap-trim.js';
import { dataPlaneCluster, dataPlaneConfig } from '../config/dns-endpoints.js';
import { DnsClusters } from './dns-resolver.js';
import { RemoraError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { AdminContext } from './admin/context.js';
import { PROBE_PATHS, serverPort, startAdmin } from './admin/server.js';
import type { ConfigSourceInfo, RunningRemora } from './context.js';
import { Lifecycle } from './lifecycle.js';
import { WorkerCell } from '../shared/stats-layout.js';
import { busyListenerPorts, heldPorts, resolvePorts } from './ports.js';
import { uwsCodecErrors } from '../uws/uws.js';
import { WorkerPool } from './worker-pool.js';
import { MAX_CLUSTERS, MAX_LISTENERS } from '../shared/limits.js';
import { SlotRegistry } from '../shared/stats-layout.js';
import { StatsReader } from '../stats/reader.js';
import { Metrics } from './metrics.js';
import { Resilience } from './resilience.js';
import { TraceExport } from './trace-export.js';
import { AccessLogExport } from './access-log-export.js';

export type { ConfigSourceInfo, RunningRemora } from './context.js';

/** Starts Remora on `config`: resolves once every worker listens, or once a stop that
 *  came while it started (POST /quitquitquit) has finished (`lifecycle.phase` is then
 *  'stopped' and `finished` is resolved). Rejects with a RemoraError when it cannot start. */
export async function startRemora(config: RemoraConfig, log: Logger, source: ConfigSourceInfo | null = null): Promise<RunningRemora> {
  const remora = await Remora.create(config, log, source);
  await remora.start();
  return remora;
}

export class Remora implements RunningRemora {
  readonly lifecycle = new Lifecycle();
  readonly finished: Promise<void>;
  private resolveFinished: () => void = () => {};
  private current: ConfigSnapshot;
  private readonly resilience: Resilience;
  private readonly pool: WorkerPool;
  private readonly reader: StatsReader;
  /** Spans from the workers to the OTLP collector. */
  private readonly traces: TraceExport;
  private readonly accessLogs: AccessLogExport;
  private readonly adminCtx: AdminContext;
  /** Admin and probes servers, once bound. */
  private readonly servers: http.Server[] = [];
  private adminServerPort = -1;
  private probesServerPort: number | null = null;
  // Every timer exists from construction, so that any exit path can clear it (a stop can
  // come through the admin server before the workers are up).
  private readonly folder: NodeJS.Timeout;
  private readonly markServing: NodeJS.Timeout;
  private readonly watchdog: NodeJS.Timeout;
  private readonly heapTrim: HeapTrim;
  /** stop()'s run, once called: from then on Remora only winds down. */
  private stopping: Promise<void> | null = null;
  /** shutdown()'s run, once called. */
  private draining: Promise<void> | null = null;
  private disposed: Promise<void> | null = null;
  /** Reloads run one after the other. */
  private reloading: Promise<boolean> = Promise.resolve(true);

  /** Builds the first snapshot (ports, TLS files) and everything that serves it; nothing
   *  listens before start(). */
  static async create(config: RemoraConfig, log: Logger, source: ConfigSourceInfo | null = null): Promise<Remora> {
    const snapshots = new Snapshots(log);
    let first: ConfigSnapshot;
    try {
      first = await snapshots.build(1, config, null);
    } catch (err) {
      snapshots.close();
      if (err instanceof TlsFilesRejected) throw new RemoraError('REMORA_ERR_CONFIG_INVALID', formatErrors('TLS files', err.errors));
      if (err instanceof ListenersRejected) {
        if (err.what === 'listener codec') throw new RemoraError('REMORA_ERR_CONFIG_INVALID', formatErrors('listeners', err.errors));
        throw new RemoraError('REMORA_ERR_LISTEN', err.errors.map((e) => e.message).join('; '));
      }
      throw err;
    }
    return new Remora(first, snapshots, log, source);
  }

  private constructor(
    first: ConfigSnapshot,
    private readonly snapshots: Snapshots,
    private readonly log: Logger,
    private readonly source: ConfigSourceInfo | null,
  ) {
    this.finished = new Promise<void>((resolve) => (this.resolveFinished = resolve));
    this.current = first;
    const { resilience, certs } = snapshots;
    this.resilience = resilience;
    resilience.applied(dataPlaneConfig(first.config, first.resolved), first.statSlots.clusters, first.stateSlots, first.tls.clusters);
    this.heapTrim = new HeapTrim(log); // before the workers start (heap-trim.ts)
    this.pool = new WorkerPool(first.config.workers, first, log, resilience.buffer, resilience.epochMs, first.config.worker_limits.young_generation_mb);
    this.pool.subscribe((_slot, msg) => resilience.onWorkerMessage(msg));
    const traces = new TraceExport(log);
    this.traces = traces;
    traces.apply(first.config);
    const accessLogs = (this.accessLogs = new AccessLogExport(log, source?.node, first));
    this.pool.subscribe((_slot, msg) => { traces.onWorkerMessage(msg); accessLogs.onWorkerMessage(msg); });
    this.reader = new StatsReader(this.pool.slabs);
    this.reader.setSlots(Object.values(first.statSlots.listeners), Object.values(first.statSlots.clusters));
    snapshots.onRotate = (tls) => this.tlsRotated(tls);
    snapshots.onDnsChange = () => this.dnsChanged();
    const snapshot = (): ConfigSnapshot => this.current;
    const dns = snapshots.dns;
    const metrics = new Metrics({ reader: this.reader, pool: this.pool, snapshot, resilience, lifecycle: this.lifecycle, source, certs, traces, accessLogs, dns });
    this.adminCtx = {
      pool: this.pool,
      log,
      reader: this.reader,
      metrics,
      snapshot,
      resilience,
      dns,
      certs,
      lifecycle: this.lifecycle,
      source,
      startedAt: Date.now(),
      faultInjection: process.env.REMORA_FAULT_INJECTION === '1',
      shutdown: (reason, delay, exit) => this.shutdown(reason, delay, exit),
    };
    // 32-bit cells must be folded before they can wrap; once a second is far more often.
    this.folder = setInterval(() => this.reader.fold(), 1000);
    this.folder.unref();
    this.markServing = setInterval(() => this.pollReady(), 20);
    this.markServing.unref();
    this.watchdog = setInterval(() => this.checkHeartbeats(), 1000);
    this.watchdog.unref();
    snapshots.dns.configure(first.config);
  }

  get snapshot(): ConfigSnapshot {
    return this.current;
  }

  get adminPort(): number {
    return this.adminServerPort;
  }

  get probesPort(): number | null {
    return this.probesServerPort;
  }

  /** Binds the admin (and probes) server, then starts every worker. Resolves when all
   *  listen, or when a stop requested meanwhile has finished. */
  async start(): Promise<void> {
    const { admin, probes } = this.current.config;
    try {
      const server = await startAdmin(this.adminCtx, admin.address, admin.port);
      this.servers.push(server);
      this.adminServerPort = serverPort(server);
    } catch (err) {
      await this.dispose(0);
      throw new RemoraError('REMORA_ERR_LISTEN', `admin cannot bind ${admin.address}:${admin.port}: ${String(err)}`);
    }
    // From here admin requests come in: POST /quitquitquit can stop Remora at any await.
    if (probes !== undefined) {
      try {
        const server = await startAdmin(this.adminCtx, probes.address, probes.port, PROBE_PATHS);
        this.servers.push(server);
        this.probesServerPort = serverPort(server);
        if (this.stopping !== null) server.close(); // bound after dispose() closed the others
      } catch (err) {
        if (this.stopping !== null) return this.finished;
        await this.dispose(0);
        throw new RemoraError('REMORA_ERR_LISTEN', `probes cannot bind ${probes.address}:${probes.port}: ${String(err)}`);
      }
    }
    if (this.stopping !== null) return this.finished;
    try {
      // A pool stopped while it starts never reports all listening: stop ends the wait.
      await Promise.race([this.pool.start(), this.finished]);
    } catch (err) {
      if (this.stopping !== null) return this.finished;
      await this.dispose(0);
      if (err instanceof RemoraError) throw err;
      throw new RemoraError('REMORA_ERR_WORKER', err instanceof Error ? err.message : String(err), { cause: err });
    }
    if (this.stopping !== null) return this.finished;
    void this.resilience.checker.firstRound().then(() => {
      this.lifecycle.firstHealthRoundDone = true;
      this.log.info('first round of active health checks done');
    });
  }

  /** Applies a new, already validated config as the next version (RunningRemora.reload). */
  reload(next: RemoraConfig): Promise<boolean> {
    // Applied or rejected, building it left garbage (heap-trim.ts).
    const run = (): Promise<boolean> => this.applyNext(next).finally(() => this.heapTrim.changed());
    this.reloading = this.reloading.then(run, run);
    return this.reloading;
  }

  /** An endpoint-only update (RunningRemora.updateEndpoints), in turn with reloads. */
  updateEndpoints(next: RemoraConfig, clusters: readonly string[]): Promise<boolean> {
    const run = (): Promise<boolean> => this.applyEndpoints(next, clusters).finally(() => this.heapTrim.changed());
    this.reloading = this.reloading.then(run, run);
    return this.reloading;
  }

  rejected(source: string, errors: readonly ConfigError[]): void {
    this.lifecycle.rejected(source, errors);
    this.heapTrim.changed();
    this.log.error({ source, errors }, 'config rejected; the running config keeps serving');
  }

  /** Graceful stop: /ready 503 at once; with `delay`, listeners keep accepting for
   *  drain.delay_ms; then they stop and in-flight requests get drain.timeout_ms. With
   *  `exit` false listeners only stop accepting (POST /drain_listeners). */
  shutdown(reason: string, delay: boolean, exit = true): Promise<void> {
    if (this.draining === null) {
      const { delay_ms, timeout_ms } = this.current.config.drain;
      this.lifecycle.phase = 'draining';
      this.pool.drain();
      this.log.info({ reason, delayMs: delay ? delay_ms : 0, timeoutMs: timeout_ms }, 'draining');
      this.draining = (async () => {
        if (delay && delay_ms > 0) await new Promise((r) => setTimeout(r, delay_ms));
        if (!exit) {
          this.pool.stopListening();
          this.log.info('listeners stopped accepting (drain_listeners); still serving open connections');
          return;
        }
        await this.stop(timeout_ms);
      })();
    }
    return this.draining;
  }

  /** Stops now: listeners close, in-flight requests get `graceMs`. */
  stop(graceMs = 5000): Promise<void> {
    this.stopping ??= (async () => {
      this.lifecycle.phase = 'draining';
      await this.dispose(graceMs);
      this.lifecycle.phase = 'stopped';
      this.log.flush();
      this.resolveFinished();
    })();
    return this.stopping;
  }

  /** Releases everything (once): timers, health checks, TLS file watchers, the admin
   *  servers, then the workers (they close their sockets before the process may exit). */
  private dispose(graceMs: number): Promise<void> {
    this.disposed ??= (async () => {
      clearInterval(this.folder);
      clearInterval(this.markServing);
      clearInterval(this.watchdog);
      this.heapTrim.close();
      this.snapshots.close();
      for (const server of this.servers) server.close();
      await this.pool.stop(graceMs);
      // Workers sent their last spans as they stopped: they leave now, or are given up.
      await Promise.all([this.traces.shutdown(2000), this.accessLogs.shutdown(2000)]);
    })();
    return this.disposed;
  }

  private async applyNext(next: RemoraConfig): Promise<boolean> {
    if (this.stopping !== null) return false; // its workers and TLS watchers are gone
    let nextSnapshot: ConfigSnapshot;
    try {
      // The worker count and their heap limits are fixed when the workers start.
      const started = this.current.config;
      if (next.worker_limits.young_generation_mb !== started.worker_limits.young_generation_mb) {
        this.log.warn({ running: started.worker_limits.young_generation_mb, asked: next.worker_limits.young_generation_mb }, 'worker_limits.young_generation_mb takes effect at the next start');
      }
      const fixed = { workers: started.workers, worker_limits: { ...next.worker_limits, young_generation_mb: started.worker_limits.young_generation_mb } };
      nextSnapshot = await this.snapshots.build(this.current.version + 1, { ...next, ...fixed }, this.current);
    } catch (err) {
      if (err instanceof ListenersRejected) {
        this.lifecycle.rejected(err.what, err.errors);
        const why = err.what === 'listener ports' ? 'a listener port is in use' : 'a listener asks for a codec this runtime lacks';
        this.log.error({ errors: err.errors }, `config rejected: ${why}; the running config keeps serving`);
        return false;
      }
      if (!(err instanceof TlsFilesRejected)) throw err;
      this.lifecycle.rejected('TLS files', err.errors);
      this.log.error({ errors: err.errors }, 'config rejected: its TLS files do not load; the running config keeps serving');
      return false;
    }
    this.reader.fold(); // counts of slots about to be reused are taken first
    this.reader.setSlots(Object.values(nextSnapshot.statSlots.listeners), Object.values(nextSnapshot.statSlots.clusters));
    this.current = nextSnapshot;
    this.resilience.applied(dataPlaneConfig(next, nextSnapshot.resolved), nextSnapshot.statSlots.clusters, nextSnapshot.stateSlots, nextSnapshot.tls.clusters);
    this.snapshots.dns.configure(nextSnapshot.config);
    this.traces.apply(nextSnapshot.config);
    this.accessLogs.apply(nextSnapshot);
    const ok = await this.pool.apply(nextSnapshot);
    this.lifecycle.reloaded();
    this.log.info({ version: this.current.version, allWorkers: ok }, ok ? 'config applied' : 'config sent; not every worker confirmed it');
    return ok;
  }

  /** The clusters named changed only their endpoints: the same version, new endpoint
   *  slots, health checks and outlier detection follow, and the workers update just those
   *  clusters. */
  private async applyEndpoints(next: RemoraConfig, clusters: readonly string[]): Promise<boolean> {
    if (this.stopping !== null) return false;
    const config: RemoraConfig = { ...next, workers: this.current.config.workers };
    const { resolved, tls } = this.current;
    const named = new Set(clusters);
    const changed = (c: RemoraConfig): Cluster[] => c.clusters.filter((x) => named.has(x.name)).map((x) => dataPlaneCluster(x, resolved));
    const stateSlots = this.resilience.endpointsChanged(changed(this.current.config), changed(config), this.current.stateSlots, tls.clusters);
    this.current = { ...this.current, config, stateSlots, endpointsRevision: (this.current.endpointsRevision ?? 0) + 1 };
    this.accessLogs.apply(this.current);
    const ok = await this.pool.updateClusters(this.current, clusters);
    this.log.debug({ clusters: clusters.length, allWorkers: ok }, 'endpoints updated');
    return ok;
  }

  /** New DNS answers reach health checks, outlier detection and the workers without a
   *  new config version (endpoint slots are kept by `cluster|address:port`). */
  private dnsChanged(): void {
    if (this.stopping !== null) return;
    this.current = this.snapshots.withDns(this.current);
    const { config, resolved, statSlots, stateSlots, tls } = this.current;
    this.resilience.applied(dataPlaneConfig(config, resolved), statSlots.clusters, stateSlots, tls.clusters);
    this.pool.updateEndpoints(this.current);
    this.accessLogs.apply(this.current);
  }

  /** Rotated TLS files reach the workers without a new config version. */
  private tlsRotated(tls: TlsMaterialSet): void {
    this.current = { ...this.current, tls };
    this.pool.updateTls(tls);
    this.resilience.tlsRotated(tls.clusters);
    this.accessLogs.apply(this.current);
  }

  /** Every 20 ms until the first ready answer, which marks the end of startup. */
  private pollReady(): void {
    // readiness() marks the end of startup the first time it answers ready.
    if (this.lifecycle.readiness(this.pool.notListening(this.current.version)).ready) {
      clearInterval(this.markServing);
      this.log.info({ startupMs: this.lifecycle.startupMs }, 'ready: serving with every worker');
      this.heapTrim.changed(); // loading and compiling the first config left garbage too
    }
  }

  /** Watchdog: a worker whose heartbeat stopped is stuck in JavaScript. This uWS build
   *  cannot end one thread that holds sockets without aborting the process, so (as
   *  Envoy's watchdog kill does) the process ends and its supervisor restarts it. */
  private checkHeartbeats(): void {
    const limit = this.current.config.worker_limits.heartbeat_timeout_ms;
    if (limit <= 0 || this.stopping !== null) return;
    const now = Math.floor(Date.now() / 1000);
    for (const slot of this.pool.slots) {
      if (slot.state !== 'listening') continue;
      const beat = this.reader.workerCell(slot.slot, WorkerCell.Heartbeat);
      if (beat === 0 || (now - beat) * 1000 < limit) continue;
      this.log.fatal({ worker: slot.slot, threadId: slot.threadId, heartbeatAgeS: now - beat, limitMs: limit }, 'worker unresponsive: ending the process so its supervisor restarts it');
      this.log.flush();
      this.pool.stopListening();
      setTimeout(() => process.kill(process.pid, 'SIGKILL'), 500);
      clearInterval(this.watchdog);
      return;
    }
  }
}

/** Builds config snapshots, and owns what outlives one: the stat-slot registries, the TLS
 *  files in use (CertStore) and the shared resilience state. A listener that keeps its
 *  name, address and port keeps the port it bound (port 0). */
class Snapshots {
  readonly resilience: Resilience;
  readonly certs: CertStore;
  /** Where rotated TLS files go (the running Remora, once it exists). */
  onRotate: (tls: TlsMaterialSet) => void = () => {};
  /** DNS clusters' resolutions, and where their changes go. */
  readonly dns: DnsClusters;
  onDnsChange: () => void = () => {};
  private readonly listenerSlots = new SlotRegistry(MAX_LISTENERS);
  private readonly clusterSlots: SlotRegistry;

  constructor(log: Logger) {
    const resilience = new Resilience(log);
    this.resilience = resilience;
    this.clusterSlots = new SlotRegistry(MAX_CLUSTERS, (slot) => resilience.clearClusterSlot(slot));
    this.certs = new CertStore(log, (tls) => this.onRotate(tls));
    this.dns = new DnsClusters(log, () => this.onDnsChange());
  }

  /** Rejects with ListenersRejected or TlsFilesRejected when `next` cannot be served. */
  async build(version: number, next: RemoraConfig, previous: ConfigSnapshot | null): Promise<ConfigSnapshot> {
    const keep = next.listeners.filter((l) => {
      const old = previous?.config.listeners.find((o) => o.name === l.name);
      return old !== undefined && old.address === l.address && old.port === l.port;
    });
    // Every listener, so that errors name its index in the config (kept ones are held).
    const codecs = uwsCodecErrors(next.listeners);
    if (codecs.length > 0) throw new ListenersRejected('listener codec', codecs);
    const busy = await busyListenerPorts(next.listeners, heldPorts(previous));
    if (busy.length > 0) throw new ListenersRejected('listener ports', busy);
    const loaded = this.certs.load(next);
    if (!loaded.ok) throw new TlsFilesRejected(loaded.errors);
    const boundPorts = await resolvePorts(next.listeners.filter((l) => !keep.includes(l)));
    for (const l of keep) boundPorts[l.name] = previous!.boundPorts[l.name];
    const resolved = this.dns.resolved(next);
    return {
      version,
      config: next,
      boundPorts,
      statSlots: {
        listeners: this.listenerSlots.assign(next.listeners.map((l) => l.name)),
        clusters: this.clusterSlots.assign(next.clusters.map((c) => c.name)),
      },
      stateSlots: this.resilience.assign(dataPlaneConfig(next, resolved)),
      tls: loaded.tls,
      resolved,
    };
  }

  /** `snapshot` with the DNS clusters' latest answers (same version). */
  withDns(snapshot: ConfigSnapshot): ConfigSnapshot {
    const resolved = this.dns.resolved(snapshot.config);
    return { ...snapshot, resolved, stateSlots: this.resilience.assign(dataPlaneConfig(snapshot.config, resolved)) };
  }

  /** Stops health checks and resilience timers, and the TLS file watchers. */
  close(): void {
    this.dns.stop();
    this.resilience.stop();
    this.certs.close();
  }
}

/** A config whose TLS files cannot be used (errors by config path). */
class TlsFilesRejected extends Error {
  constructor(readonly errors: readonly ConfigError[]) {
    super('TLS files rejected');
  }
}

/** A config with a listener this process cannot serve (errors by config path): on a port
 *  something else holds, or with a codec this runtime lacks. */
class ListenersRejected extends Error {
  constructor(
    readonly what: 'listener ports' | 'listener codec',
    readonly errors: readonly ConfigError[],
  ) {
    super(what === 'listener ports' ? 'listener ports in use' : 'listener codec unavailable');
  }
}
