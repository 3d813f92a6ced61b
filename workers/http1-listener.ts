// A plain (cleartext) listener of one worker on the strict HTTP/1 codec: a node:http
// server fed by http1-front.ts, bound beside the other workers with SO_REUSEPORT
// (listen-socket.ts). The default for every listener without `tls`.

import http from 'node:http';
import type { Listener } from '../src/config/types.js';
import type { ConnectionGauge } from './connection-gauge.js';
import type { WorkerContext } from './context.js';
import { Http1Front, http1ServerOptions } from './http1-front.js';
import { listenShared } from './listen-socket.js';

export class Http1Listener {
  private readonly server: http.Server;

  constructor(
    readonly config: Listener,
    readonly port: number,
    ctx: WorkerContext,
    statSlot: number,
    connections: ConnectionGauge,
  ) {
    this.server = http.createServer(http1ServerOptions(config));
    new Http1Front(config, statSlot, ctx, connections, null, null).attach(this.server);
    this.server.on('error', (err) => ctx.log.error({ err, listener: config.name }, 'listener error'));
  }

  /** Binds; resolves false when the address cannot be bound. */
  listen(): Promise<boolean> {
    return listenShared(this.server, this.config.address, this.port);
  }

  /** Stops accepting; open keep-alive connections go on until closeAll(). */
  stopListening(): void {
    if (this.server.listening) this.server.close();
  }

  /** Closes the listen socket and every connection. */
  closeAll(): void {
    this.stopListening();
    this.server.closeAllConnections();
  }
}
