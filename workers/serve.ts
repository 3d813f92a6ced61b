// Worker entry: piscina runs `serve` once per worker as a long-lived task that resolves
// only when the main thread says stop. It applies config snapshots, runs the listeners
// (strict HTTP/1 codec on node:http/https; uWS where a listener chooses it), answers stats
// requests, and on an uncaught error closes every socket before the thread exits (else
// uWS aborts the whole process), so the main thread can start a replacement.

import { getHeapStatistics } from 'node:v8';
import { resourceLimits, threadId } from 'node:worker_threads';
import type { ConfigSnapshot, Listener, TlsMaterialSet } from '../src/config/types.js';
import { servesTls } from '../src/config/listener-chains.js';
import { createLogger } from '../src/core/log.js';
import { setErrorReporter } from '../src/core/report.js';
import type { FromWorker, ServeTask, ToWorker } from '../src/shared/messages.js';
import { loadUws } from '../src/uws/uws.js';
import { ConnectionGauge } from './connection-gauge.js';
import { WorkerContext } from './context.js';
import { Http1Listener } from './http1-listener.js';
import { servesListener, sharedPortsAvailable } from './listen-socket.js';
import { TcpListener } from './tcp-listener.js';
import { hasTlsMaterial, TlsListener, tlsListenerKey } from './tls-listener.js';
import { UwsListener } from './uws-listener.js';

/** Listener fields the pipeline reads from each snapshot; any other change needs a new
 *  server (its options and front-end settings, the server header of its local replies
 *  included, are fixed when it is made). */
const PIPELINE_FIELDS = new Set(['name', 'address', 'port', 'virtual_hosts', 'access_log', 'rate_limits', 'authorization',
  'generate_traceparent', 'forward_client_cert_details', 'tls', 'tcp_proxy', 'filter_chains', 'http_filter_chains', 'upgrade_configs']);

/** A listener that forwards bytes (tcp_proxy / filter_chains) rather than HTTP. */
function isTcpListener(l: Listener): boolean {
  return l.tcp_proxy !== undefined || l.filter_chains.length > 0;
}

/** What must stay the same for a running listener to be kept across a reload. */
function serverKey(l: Listener, boundPort: number): string {
  const fields = Object.entries(l).filter(([k]) => !PIPELINE_FIELDS.has(k));
  const kind = isTcpListener(l) ? 'tcp' : servesTls(l) ? tlsListenerKey(l) : 'plain';
  return `${l.name}|${l.address}|${boundPort}|${kind}|${JSON.stringify(fields)}`;
}

/** A bound listener of this worker. */
interface ServedListener {
  listen(): Promise<boolean>;
  stopListening(): void;
  closeAll(): void;
}

const live = new Map<string, ServedListener>();

function closeEverything(): void {
  for (const l of live.values()) {
    try {
      l.closeAll();
    } catch {
      // keep closing the others
    }
  }
  live.clear();
}

export default async function serve(task: ServeTask): Promise<{ slot: number; stopped: true }> {
  // Fault injection for tests: a worker that cannot start.
  if (process.env.REMORA_FAULT_INJECTION === 'worker_start') throw new Error('injected worker startup failure');
  const { slot } = task;
  const port = task.port;
  const log = createLogger({ worker: slot, threadId });
  setErrorReporter((err, where) => log.error({ err }, `error in ${where}`));
  const post = (msg: FromWorker, transfer?: ArrayBuffer[]): void => port.postMessage(msg, transfer);
  const ctx = new WorkerContext(slot, log, task.statsSlab, task.sharedState, task.epochMs, post);
  const connections = new ConnectionGauge(task.allStatsSlabs, slot);
  if (slot === 0 && !sharedPortsAvailable()) {
    log.warn('this runtime cannot share a port between worker threads (Node < 22.12 without the node-unix-socket binary for this platform): each listener is served by one worker');
  }

  // Over its memory limit (worker_limits.memory_limit_mb) the worker stops accepting,
  // lets its requests finish (5 s at most), closes its sockets and exits; the pool
  // starts a replacement. (A hard V8 limit would kill the thread with its uWS sockets
  // open, which aborts the whole process.)
  ctx.onMemoryLimit = (usedMb, limitMb) => {
    log.error({ usedMb, limitMb }, 'worker over its memory limit; draining and restarting it');
    for (const l of live.values()) l.stopListening();
    const deadline = Date.now() + 5000;
    const poll = setInterval(() => {
      if (ctx.inflight > 0 && Date.now() < deadline) return;
      clearInterval(poll);
      closeEverything();
      ctx.accessLogs.flushSync();
      ctx.grpcLogs.close();
      log.flush();
      setImmediate(() => process.exit(71));
    }, 20);
  };

  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught error in worker; closing its sockets and exiting');
    closeEverything();
    ctx.accessLogs.flushSync(); // buffered access log lines, before the thread goes
    ctx.grpcLogs.close();
    log.flush();
    setImmediate(() => process.exit(70));
  });

  /** New material for running TLS listeners (clusters take theirs in ctx.apply or
   *  ctx.applyTls). */
  const rotateListeners = (tls: TlsMaterialSet): void => {
    for (const l of live.values()) {
      if (l instanceof TlsListener) l.rotate(tls.listeners);
      else if (l instanceof TcpListener) l.rotate(tls.listeners);
    }
  };

  const apply = async (snapshot: ConfigSnapshot): Promise<void> => {
    ctx.apply(snapshot);
    const wanted = new Map<string, Listener>();
    for (const l of snapshot.config.listeners) {
      // uWS shares ports itself; Node servers need SO_REUSEPORT (listen-socket.ts).
      if (l.codec !== 'uws' && !servesListener(l.name, slot, snapshot.config.workers)) continue;
      wanted.set(serverKey(l, snapshot.boundPorts[l.name] ?? l.port), l);
    }
    // Listeners that go (or change) release their ports before new ones bind.
    for (const [key, listener] of live) {
      if (!wanted.has(key)) {
        listener.stopListening();
        live.delete(key);
      }
    }
    rotateListeners(snapshot.tls);
    let ok = true;
    for (const [key, l] of wanted) {
      const running = live.get(key);
      if (running instanceof TcpListener) running.update(l, snapshot.tls.listeners);
      if (running !== undefined) continue;
      const boundPort = snapshot.boundPorts[l.name] ?? l.port;
      const statSlot = snapshot.statSlots.listeners[l.name];
      let listener: ServedListener | null;
      if (isTcpListener(l)) {
        listener = new TcpListener(l, boundPort, ctx, statSlot, connections, snapshot.tls.listeners);
      } else if (servesTls(l)) {
        // A TLS listener without its material never falls back to plain HTTP.
        listener = hasTlsMaterial(l, snapshot.tls.listeners) ? new TlsListener(l, boundPort, ctx, statSlot, connections, snapshot.tls.listeners) : null;
      } else if (l.codec === 'uws') {
        loadUws();
        listener = new UwsListener(l, boundPort, ctx);
      } else {
        listener = new Http1Listener(l, boundPort, ctx, statSlot, connections);
      }
      if (listener !== null && (await listener.listen())) {
        live.set(key, listener);
      } else {
        ok = false;
        post({ type: 'listen_failed', slot, version: snapshot.version, listener: l.name, address: l.address, port: boundPort });
      }
    }
    if (ok) post({ type: 'listening', slot, threadId, version: snapshot.version, endpointsRevision: snapshot.endpointsRevision ?? 0 });
  };

  return new Promise((resolve) => {
    port.on('message', (msg: ToWorker) => {
      try {
        switch (msg.type) {
          case 'config':
            apply(msg.snapshot).catch((err) => log.error({ err }, 'applying config failed'));
            break;
          case 'stats':
            post({
              type: 'stats',
              id: msg.id,
              slot,
              threadId,
              version: ctx.version,
              inflight: ctx.inflight,
              heap: heapNow(),
              clusters: msg.endpoints ? ctx.clusterState() : {},
            });
            break;
          case 'drain':
            ctx.draining = true;
            break;
          case 'stop_listening':
            for (const l of live.values()) l.stopListening();
            break;
          case 'stop': {
            ctx.draining = true;
            for (const l of live.values()) l.stopListening();
            const deadline = Date.now() + msg.graceMs;
            const poll = setInterval(() => {
              if (ctx.inflight > 0 && Date.now() < deadline) return;
              clearInterval(poll);
              if (ctx.inflight > 0) log.warn({ inflight: ctx.inflight, graceMs: msg.graceMs }, 'drain timeout: cutting requests still in flight');
              closeEverything();
              ctx.close();
              port.close();
              log.flush();
              // Buffered access log lines are written before the task ends (the pool then
              // ends the thread); close() settles within about a second and never rejects.
              const stopped = (): void => resolve({ slot, stopped: true });
              ctx.accessLogs.close().then(stopped, stopped);
            }, 20);
            break;
          }
          case 'tls':
            rotateListeners(msg.tls);
            ctx.applyTls(msg.tls);
            break;
          case 'endpoints':
            ctx.applyEndpoints(msg.resolved, msg.endpointSlots);
            break;
          case 'cluster_endpoints':
            ctx.applyClusterEndpoints(msg.revision, msg.clusters, msg.endpointSlots);
            post({ type: 'endpoints_applied', revision: msg.revision });
            break;
          case 'log_level':
            log.level = msg.level;
            break;
          case 'crash':
            // Fault injection for tests: an error no handler catches.
            setTimeout(() => {
              throw new Error('injected worker crash');
            }, 0);
            break;
          case 'hang':
            // Fault injection for tests: a worker that never returns to its event loop.
            setTimeout(() => {
              for (;;);
            }, 0);
            break;
        }
      } catch (err) {
        log.error({ err }, 'worker message handling failed');
      }
    });
    apply(task.snapshot).catch((err) => log.error({ err }, 'applying config failed'));
  });
}

/** This thread's V8 heap: in use and reserved, in bytes, and its young generation's
 *  limit in MiB (worker_limits.young_generation_mb, else V8's own). */
function heapNow(): { used: number; total: number; youngLimitMb: number } {
  const h = getHeapStatistics();
  return { used: h.used_heap_size, total: h.total_heap_size, youngLimitMb: resourceLimits.maxYoungGenerationSizeMb ?? 0 }; // (0: not known)
}
