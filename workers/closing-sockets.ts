// Connections a front end has decided to close: after a refused request (a framing error,
// a bad head, a local reply with `connection: close`) nothing more that arrives on the
// connection is read as a request, even bytes already buffered in the same read. The
// response in progress is finished, then the connection ends.

import type { Socket } from 'node:net';

const closing = new WeakSet<Socket>();

export function markClosing(socket: Socket): void {
  closing.add(socket);
}

export function isClosing(socket: Socket): boolean {
  return closing.has(socket);
}
