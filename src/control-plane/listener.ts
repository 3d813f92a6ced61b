// The control plane's listening sockets. A grpc.Server binds its own ports and, when
// force-shut down, destroys the HTTP/2 sessions it knows of; a connection still in its
// TLS handshake (or one that has not sent the HTTP/2 preface) is no session yet, so it
// stayed open until Node's handshake timeout, two minutes after stop(). Here the port is
// a plain net.Server we own: every accepted socket is tracked and handed to grpc-js
// through a connection injector (the same HTTP/2 or TLS server grpc-js would have bound),
// and close() destroys whatever is still open after grpc-js has shut down.

import * as net from 'node:net';
import type * as grpc from '@grpc/grpc-js';

export interface OwnedListener {
  /** The port bound (useful when port 0 was asked for). */
  readonly port: number;
  /** Stops accepting and destroys every connection still open. Call after the grpc
   *  server's forceShutdown, which has already closed the sessions it knows of. */
  close(): Promise<void>;
}

/** Splits `HOST:PORT` or `[IPv6]:PORT` (already checked by checkAddress). */
function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at);
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(address.slice(at + 1)) };
}

/** Listens on `address` and serves `server`'s services there with `credentials`.
 *  Rejects (binding nothing) when the address cannot be bound. */
export function listenOwned(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<OwnedListener> {
  const { host, port } = splitAddress(address);
  const injector = server.createConnectionInjector(credentials);
  const sockets = new Set<net.Socket>();
  const listener = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // A reset before grpc-js attaches its own handlers must not become an uncaught error.
    socket.on('error', () => undefined);
    injector.injectConnection(socket);
  });
  return new Promise((resolve, reject) => {
    listener.once('error', (err) => {
      injector.destroy();
      reject(err);
    });
    listener.listen({ host, port }, () => {
      const bound = listener.address() as net.AddressInfo;
      resolve({
        port: bound.port,
        close: () =>
          new Promise<void>((done) => {
            injector.destroy();
            for (const socket of sockets) socket.destroy();
            if (!listener.listening) return done();
            listener.close(() => done());
          }),
      });
    });
  });
}
