// The uWS codec (`codec: uws`), opt-in: one uWS App per listener, bound to the same
// address and port in every worker (the kernel spreads connections). uWS 20.30's parser
// can be desynchronised (docs/architecture.md): use it only where every client is trusted.
// The request
// handler copies what it needs out of uWS's short-lived request object and hands the
// rest to an Exchange; every callback catches its errors, because an uncaught error in
// a uWS worker aborts the whole process.

import type { Listener } from '../src/config/types.js';
import { headerBytes } from '../src/http/headers.js';
import { arrayBufferText, loadUws, type HttpRequest, type HttpResponse, type ListenSocket, type TemplatedApp } from '../src/uws/uws.js';
import type { WorkerContext } from './context.js';
import type { DownstreamRequest } from './downstream.js';
import { startExchange } from './start-exchange.js';
import { UwsDownstream } from './uws-downstream.js';

// One module-level callback collects headers for whichever request is being read (uWS
// calls handlers one at a time), instead of a new closure per request.
let collecting: string[] = [];
function collectHeader(name: string, value: string): void {
  collecting.push(name, headerBytes(value)); // header strings hold one character per byte
}

export class UwsListener {
  private socket: ListenSocket | null = null;
  private readonly app: TemplatedApp;

  constructor(
    readonly config: Listener,
    readonly port: number,
    private readonly ctx: WorkerContext,
  ) {
    this.app = loadUws().App();
    this.app.any('/*', this.handle);
  }

  /** Binds; resolves false when the address cannot be bound. */
  listen(): Promise<boolean> {
    return new Promise((resolve) => {
      this.app.listen(this.config.address, this.port, (socket) => {
        this.socket = socket === false ? null : socket;
        resolve(socket !== false);
      });
    });
  }

  /** Stops accepting; open keep-alive connections go on until closeAll(). */
  stopListening(): void {
    if (this.socket !== null) {
      loadUws().us_listen_socket_close(this.socket);
      this.socket = null;
    }
  }

  /** Closes the listen socket and every connection (required before a worker exits). */
  closeAll(): void {
    this.stopListening();
    (this.app as TemplatedApp & { close(): void }).close();
  }

  private readonly handle = (res: HttpResponse, req: HttpRequest): void => {
    try {
      const ds = new UwsDownstream(res);
      const headers: string[] = [];
      collecting = headers;
      req.forEach(collectHeader);
      const request: DownstreamRequest = {
        method: req.getCaseSensitiveMethod(),
        path: req.getUrl(),
        query: req.getQuery() ?? '',
        headers,
        remoteAddress: arrayBufferText(res.getRemoteAddressAsText()),
        http2: false,
        peer: null,
        refusal: null,
      };
      startExchange(this.ctx, this.config.name, ds, request, (events, hasBody) => ds.listen(events, hasBody));
    } catch (err) {
      this.ctx.log.error({ err }, 'reading a request failed');
      try {
        res.close();
      } catch {
        // already gone
      }
    }
  };
}
