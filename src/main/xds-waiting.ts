// The xDS waiting phase: from `remora run` with a bootstrap until the first config (from
// the control plane, or the persisted one) starts Remora. Meanwhile the admin port (and
// the probes port, when the bootstrap names one) already answer: GET /live 200, so a
// liveness probe lets the sidecar wait instead of restarting it in a loop; GET /ready
// 503 with the reason; GET /config_dump the xDS state; GET /metrics the xDS gauges; and
// POST /quitquitquit stops the wait. When Remora starts, its admin server takes over
// these very sockets (handOver(): no close-then-bind gap, no port another process could
// take in between, and with port 0 the port stays the one already announced).

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BootstrapBase } from '../config/bootstrap-base.js';
import { RemoraError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { handOverServer, PROBE_PATHS } from './admin/server.js';
import { adminRefusal } from './admin/request-guard.js';

/** What the waiting servers show, read at each request. */
export interface WaitingStatus {
  /** Why /ready is not 200 yet: one line. */
  reason(): string;
  /** The body of /config_dump. */
  describe(): Record<string, unknown>;
  /** The xDS gauges /metrics shows meanwhile (the names the full server uses). */
  metrics(): { connected: number; reconnects: number };
}

interface Bound {
  readonly server: http.Server;
  readonly address: string;
  readonly port: number;
  withdraw: (() => boolean) | null;
}

type Reply = readonly [status: number, body: string, contentType?: string];

const ADMIN_PATHS = 'GET /live, /ready, /config_dump, /metrics; POST /quitquitquit';

export class XdsWaiting {
  private closed = false;

  private constructor(
    private readonly admin: Bound,
    private readonly probes: Bound | null,
  ) {}

  /** Binds the admin server (and the probes server) of `base`; `onQuit` is called on
   *  POST /quitquitquit. Rejects with REMORA_ERR_LISTEN when a port cannot be bound. */
  static async start(base: BootstrapBase, status: WaitingStatus, log: Logger, onQuit: () => void): Promise<XdsWaiting> {
    const handler = (probesOnly: boolean) => (req: http.IncomingMessage, res: http.ServerResponse) => {
      const path = new URL(req.url ?? '/', 'http://admin').pathname;
      let reply: Reply;
      // The same browser guard as the full admin server (admin/request-guard.ts).
      const refusal = probesOnly ? null : adminRefusal(req.method, req.headers);
      try {
        reply = refusal !== null ? [403, `admin: ${refusal}\n`] : answer(req.method ?? 'GET', path, probesOnly, status, onQuit);
      } catch (err) {
        log.error({ err }, 'admin request failed');
        reply = [500, 'admin error\n'];
      }
      res.writeHead(reply[0], { 'content-type': reply[2] ?? 'text/plain' });
      res.end(reply[1]);
    };
    const admin = await bind(handler(false), base.admin.address, base.admin.port, 'admin');
    let probes: Bound | null = null;
    if (base.probes !== undefined) {
      try {
        probes = await bind(handler(true), base.probes.address, base.probes.port, 'probes');
      } catch (err) {
        admin.server.close();
        throw err;
      }
    }
    return new XdsWaiting(admin, probes);
  }

  get adminPort(): number {
    return this.admin.port;
  }

  get probesPort(): number | null {
    return this.probes?.port ?? null;
  }

  /** Offers the bound servers to Remora's startAdmin (src/main/admin/server.ts): the
   *  config Remora starts with must name these ports (adminPort, probesPort). */
  handOver(): void {
    for (const b of this.bound()) b.withdraw ??= handOverServer(b.address, b.port, b.server);
  }

  /** Ends the waiting phase: closes the servers Remora did not take over. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const b of this.bound()) {
      const stillOurs = b.withdraw === null || b.withdraw();
      if (!stillOurs) continue;
      b.server.close();
      b.server.closeAllConnections();
    }
  }

  private bound(): Bound[] {
    return this.probes !== null ? [this.admin, this.probes] : [this.admin];
  }
}

function answer(method: string, path: string, probesOnly: boolean, status: WaitingStatus, onQuit: () => void): Reply {
  const get = method === 'GET' || method === 'HEAD';
  if (probesOnly && (!get || !PROBE_PATHS.includes(path))) return [404, `probes answer only GET ${PROBE_PATHS.join(', ')}\n`];
  if (get && path === '/live') return [200, 'OK\n'];
  if (get && path === '/ready') return [503, `NOT READY: ${status.reason()}\n`];
  if (get && (path === '/metrics' || path === '/stats/prometheus')) return [200, metricsText(status.metrics()), 'text/plain; version=0.0.4; charset=utf-8'];
  if (get && path === '/config_dump') return [200, JSON.stringify(status.describe(), null, 2) + '\n', 'application/json'];
  if (method === 'POST' && path === '/quitquitquit') {
    setImmediate(onQuit);
    return [200, 'OK: stopping (no config was being served yet)\n'];
  }
  return [503, `remora is waiting for its first config from the control plane; available meanwhile: ${ADMIN_PATHS}\n`];
}

function metricsText(m: { connected: number; reconnects: number }): string {
  return [
    '# HELP remora_xds_connected 1 while the xDS stream to a control plane is up.',
    '# TYPE remora_xds_connected gauge',
    `remora_xds_connected ${m.connected}`,
    '# HELP remora_xds_reconnects_total xDS streams re-established after a loss.',
    '# TYPE remora_xds_reconnects_total counter',
    `remora_xds_reconnects_total ${m.reconnects}`,
    '',
  ].join('\n');
}

function bind(handler: http.RequestListener, address: string, port: number, what: string): Promise<Bound> {
  const server = http.createServer(handler);
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new RemoraError('REMORA_ERR_LISTEN', `${what} cannot bind ${address}:${port}: ${String(err)}`)));
    server.listen(port, address, () => resolve({ server, address, port: (server.address() as AddressInfo).port, withdraw: null }));
  });
}
