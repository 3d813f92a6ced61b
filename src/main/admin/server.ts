// The admin listener, on the main thread (loopback by default): routing of the admin
// paths to their handlers (one module per concept in this folder), method checks, the
// reply encoding, the browser guard (request-guard.ts), and the read-only probes server.
// Never on the traffic path. Reads are GET; anything that changes state is POST.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  loggingHandler,
  metricsHandler,
  resetCountersHandler,
  serverInfoHandler,
  showLogLevelHandler,
  statsHandler,
} from '../admin-stats.js';
import { clustersHandler } from './clusters.js';
import { certsHandler, configDumpHandler } from './config-dump.js';
import type { AdminContext, AdminHandler, AdminReply } from './context.js';
import { adminRefusal } from './request-guard.js';
import { drainListenersHandler, healthCheckFailHandler, healthCheckOkHandler, liveHandler, quitHandler, readyHandler } from './lifecycle.js';
import { crashWorkerHandler, hangWorkerHandler, workersHandler } from './workers.js';

/** What the probes server answers (read-only, safe to expose to the pod network). */
export const PROBE_PATHS: readonly string[] = ['/ready', '/live', '/metrics'];

// The order of each table is the order of the 404 reply's list of paths.
const GET: Readonly<Record<string, AdminHandler>> = {
  '/metrics': metricsHandler,
  '/stats/prometheus': metricsHandler,
  '/stats': statsHandler,
  '/server_info': serverInfoHandler,
  '/logging': showLogLevelHandler,
  '/ready': readyHandler,
  '/live': liveHandler,
  '/config_dump': configDumpHandler,
  '/certs': certsHandler,
  '/clusters': clustersHandler,
  '/workers': workersHandler,
};

const POST: Readonly<Record<string, AdminHandler>> = {
  '/logging': loggingHandler,
  '/healthcheck/fail': healthCheckFailHandler,
  '/healthcheck/ok': healthCheckOkHandler,
  '/drain_listeners': drainListenersHandler,
  '/quitquitquit': quitHandler,
  '/debug/hang_worker': hangWorkerHandler,
  '/reset_counters': resetCountersHandler,
  '/debug/crash_worker': crashWorkerHandler,
};

/** The table's handler for `path`; never an inherited property (`/constructor` is an
 *  unknown path, not Object's constructor). */
function own(table: Readonly<Record<string, AdminHandler>>, path: string): AdminHandler | undefined {
  return Object.hasOwn(table, path) ? table[path] : undefined;
}

/** The reply to an unknown admin path (built once: the tables are fixed). */
const UNKNOWN_PATH: AdminReply = [
  404,
  `unknown admin path; available:\n${[...Object.keys(GET).map((p) => `GET ${p}`), ...Object.keys(POST).map((p) => `POST ${p}`)].join('\n')}\n`,
];

/** Listening servers that startAdmin adopts instead of binding, by `address:port`. */
const handedOver = new Map<string, http.Server>();

/** Offers a server that already listens on `address:port` to the next startAdmin for
 *  exactly that address and port (which then answers on it with the full handlers). Used
 *  by the xDS waiting phase (src/main/xds-waiting.ts), which serves /live and /ready
 *  before Remora exists. Returns a function that withdraws the offer: true when it was
 *  still unclaimed (the caller still owns the server). */
export function handOverServer(address: string, port: number, server: http.Server): () => boolean {
  const key = `${address}:${port}`;
  handedOver.set(key, server);
  return () => handedOver.get(key) === server && handedOver.delete(key);
}

/** Starts the admin server, or with `only` a server that answers just those GET paths
 *  (the probes server); a server handed over for the same address and port is adopted. */
export function startAdmin(ctx: AdminContext, address: string, port: number, only: readonly string[] | null = null): Promise<http.Server> {
  const probesOnly: AdminReply | null = only !== null ? [404, `probes answer only GET ${only.join(', ')}\n`] : null;
  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://admin');
    // The admin server keeps browsers out (request-guard.ts); the probes server answers
    // read-only paths to whoever the pod network lets in.
    const refusal = only === null ? adminRefusal(req.method, req.headers) : null;
    if (refusal !== null) {
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end(`admin: ${refusal}\n`);
      return;
    }
    const table = req.method === 'POST' && only === null ? POST : req.method === 'GET' || req.method === 'HEAD' ? GET : null;
    const handler = table !== null && (only === null || only.includes(url.pathname)) ? own(table, url.pathname) : undefined;
    let result: Promise<AdminReply>;
    if (handler !== undefined) {
      result = Promise.resolve().then(() => handler(ctx, url));
    } else if (probesOnly !== null) {
      result = Promise.resolve(probesOnly);
    } else if (own(GET, url.pathname) !== undefined || own(POST, url.pathname) !== undefined) {
      result = Promise.resolve([405, `method ${req.method} not allowed on ${url.pathname}\n`]);
    } else {
      result = Promise.resolve(UNKNOWN_PATH);
    }
    result
      .then(([status, body, contentType]) => {
        const raw = typeof body === 'string' || Buffer.isBuffer(body); // a Buffer: /metrics
        res.writeHead(status, { 'content-type': contentType ?? (raw ? 'text/plain' : 'application/json') });
        res.end(raw ? body : JSON.stringify(body, null, 2) + '\n');
      })
      .catch((err: unknown) => {
        ctx.log.error({ err }, 'admin request failed');
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('admin error\n');
      });
  };
  const held = handedOver.get(`${address}:${port}`);
  if (held !== undefined) {
    // Take over a server that already listens there (the xDS waiting phase): same socket,
    // so a probe never meets a closed port; open keep-alive connections get these
    // handlers from their next request on.
    handedOver.delete(`${address}:${port}`);
    held.removeAllListeners('request');
    held.on('request', handle);
    return Promise.resolve(held);
  }
  const server = http.createServer(handle);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve(server));
  });
}

export function serverPort(server: http.Server): number {
  return (server.address() as AddressInfo).port;
}
