// The admin listener, on the main thread (loopback by default): readiness, liveness,
// the effective config, cluster and worker state. Never on the traffic path. Reads are
// GET; anything that changes state is POST.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ConfigSnapshot } from '../config/types.js';
import type { Logger } from '../core/log.js';
import type { CertStore } from './cert-store.js';
import type { Lifecycle } from './lifecycle.js';
import type { ConfigSourceInfo } from './remora.js';
import {
  loggingHandler,
  metricsHandler,
  resetCountersHandler,
  serverInfoHandler,
  showLogLevelHandler,
  statsHandler,
  type AdminReply,
  type StatsContext,
} from './admin-stats.js';

export interface AdminContext extends StatsContext {
  readonly faultInjection: boolean;
  readonly lifecycle: Lifecycle;
  /** The config source when it is not a file (xDS), or null. */
  readonly source: ConfigSourceInfo | null;
  /** TLS files in use (listeners and clusters), their expiry and rotations. */
  readonly certs: CertStore;
  /** Graceful stop (remora.ts): `delay` waits drain.delay_ms; `exit` false only stops accepting. */
  shutdown(reason: string, delay: boolean, exit?: boolean): Promise<void>;
}

/** What the probes server answers (read-only, safe to expose to the pod network). */
export const PROBE_PATHS: readonly string[] = ['/ready', '/live', '/metrics'];

type Handler = (ctx: AdminContext, url: URL) => Promise<AdminReply> | AdminReply;

const GET: Record<string, Handler> = {
  '/metrics': metricsHandler,
  '/stats/prometheus': metricsHandler,
  '/stats': statsHandler,
  '/server_info': serverInfoHandler,
  '/logging': showLogLevelHandler,
  '/ready': (ctx) => {
    const r = ctx.lifecycle.readiness(ctx.pool.notListening(ctx.snapshot().version));
    return r.ready ? [200, 'LIVE\n'] : [503, `NOT READY: ${r.reason}\n`];
  },
  '/live': () => [200, 'OK\n'],
  '/config_dump': (ctx) => {
    const snap = ctx.snapshot();
    const lc = ctx.lifecycle;
    return [
      200,
      {
        version: snap.version,
        bound_ports: snap.boundPorts,
        reloads: lc.reloads,
        last_reload_at: lc.lastReloadAt,
        rejections: lc.rejections,
        last_rejection: lc.lastRejection,
        ...(ctx.source !== null ? ctx.source.describe() : {}),
        config: snap.config,
      },
    ];
  },
  '/certs': (ctx) => {
    const earliest = ctx.certs.earliestExpirySeconds();
    return [
      200,
      {
        earliest_expiry_seconds: earliest,
        rotations: ctx.certs.rotations,
        certificates: ctx.certs.certificates(),
        files: ctx.certs.status(),
        ...(ctx.source?.identity !== undefined ? { mesh_identity: ctx.source.identity() } : {}),
      },
    ];
  },
  '/clusters': async (ctx) => {
    const replies = await ctx.pool.stats();
    const snap = ctx.snapshot();
    const res = ctx.resilience;
    const checks = res.healthChecks();
    const clusters = snap.config.clusters.map((c) => ({
      name: c.name,
      lb_policy: c.lb_policy,
      circuit_breakers: res.breakers(c),
      outlier_detection: c.outlier_detection !== undefined ? { ejected_now: res.detector.activeEjections(c.name) } : null,
      endpoints: c.endpoints.map((ep) => {
        const key = `${ep.address}:${ep.port}`;
        let active = 0;
        let connections = 0;
        let idle = 0;
        let queued = 0;
        for (const r of replies) {
          const state = r.clusters[c.name]?.find((e) => e.endpoint === key);
          if (state === undefined) continue;
          active += state.active;
          connections += state.connections;
          idle += state.idle;
          queued += state.queued;
        }
        return {
          address: ep.address,
          port: ep.port,
          ...res.endpointHealth(c.name, ep.address, ep.port, checks),
          active_requests: active,
          connections,
          idle_connections: idle,
          queued_requests: queued,
        };
      }),
    }));
    return [200, { version: snap.version, clusters, rate_limit_table: res.keyedTable() }];
  },
  '/workers': async (ctx) => {
    const replies = await ctx.pool.stats();
    return [
      200,
      {
        uptime_s: Math.round((Date.now() - ctx.startedAt) / 1000),
        workers: ctx.pool.slots.map((s) => {
          const r = replies.find((x) => x.slot === s.slot);
          return { slot: s.slot, state: s.state, thread_id: s.threadId, version: s.version, restarts: s.restarts, inflight: r?.inflight ?? null, stats: r?.stats ?? null };
        }),
      },
    ];
  },
};

const POST: Record<string, Handler> = {
  '/logging': loggingHandler,
  '/healthcheck/fail': (ctx) => {
    ctx.lifecycle.healthCheckFailed = true;
    ctx.log.warn('readiness failed by POST /healthcheck/fail');
    return [200, 'OK: /ready now answers 503 (POST /healthcheck/ok to undo)\n'];
  },
  '/healthcheck/ok': (ctx) => {
    ctx.lifecycle.healthCheckFailed = false;
    ctx.log.info('readiness restored by POST /healthcheck/ok');
    return [200, 'OK\n'];
  },
  '/drain_listeners': (ctx) => {
    void ctx.shutdown('POST /drain_listeners', true, false);
    return [200, 'OK: draining; listeners stop accepting after drain.delay_ms\n'];
  },
  '/quitquitquit': (ctx) => {
    // Answer first; the drain starts right after.
    setImmediate(() => void ctx.shutdown('POST /quitquitquit', false));
    return [200, 'OK: draining and exiting\n'];
  },
  '/debug/hang_worker': (ctx, url) => {
    if (!ctx.faultInjection) return [404, 'fault injection is off (set REMORA_FAULT_INJECTION=1)\n'];
    const slot = Number(url.searchParams.get('slot') ?? '0');
    return ctx.pool.hang(slot) ? [200, `hanging worker ${slot}\n`] : [404, `no live worker ${slot}\n`];
  },
  '/reset_counters': resetCountersHandler,
  '/debug/crash_worker': (ctx, url) => {
    if (!ctx.faultInjection) return [404, 'fault injection is off (set REMORA_FAULT_INJECTION=1)\n'];
    const slot = Number(url.searchParams.get('slot') ?? '0');
    return ctx.pool.crash(slot) ? [200, `crashing worker ${slot}\n`] : [404, `no live worker ${slot}\n`];
  },
};

/** Starts the admin server, or with `only` a server that answers just those GET paths
 *  (the probes server). */
export function startAdmin(ctx: AdminContext, address: string, port: number, only: readonly string[] | null = null): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const table = req.method === 'POST' && only === null ? POST : req.method === 'GET' || req.method === 'HEAD' ? GET : null;
    const handler = only === null || only.includes(url.pathname) ? table?.[url.pathname] : undefined;
    let result: Promise<AdminReply>;
    if (handler !== undefined) {
      result = Promise.resolve().then(() => handler(ctx, url));
    } else if (only !== null) {
      result = Promise.resolve([404, `probes answer only GET ${only.join(', ')}\n`]);
    } else if (GET[url.pathname] !== undefined || POST[url.pathname] !== undefined) {
      result = Promise.resolve([405, `method ${req.method} not allowed on ${url.pathname}\n`]);
    } else {
      const paths = [...Object.keys(GET).map((p) => `GET ${p}`), ...Object.keys(POST).map((p) => `POST ${p}`)];
      result = Promise.resolve([404, `unknown admin path; available:\n${paths.join('\n')}\n`]);
    }
    result
      .then(([status, body, contentType]) => {
        const text = typeof body === 'string' ? body : JSON.stringify(body, null, 2) + '\n';
        res.writeHead(status, { 'content-type': contentType ?? (typeof body === 'string' ? 'text/plain' : 'application/json') });
        res.end(text);
      })
      .catch((err: unknown) => {
        ctx.log.error({ err }, 'admin request failed');
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('admin error\n');
      });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve(server));
  });
}

export function serverPort(server: http.Server): number {
  return (server.address() as AddressInfo).port;
}
