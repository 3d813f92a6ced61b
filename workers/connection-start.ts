// Reading the first bytes of a connection before a front end takes it: the PROXY protocol
// header (proxy-protocol.ts) and the HTTP/2 preface that tells h2c from HTTP/1.1
// (http1-listener.ts). What was read and not consumed is put back into the socket, which
// the next step gets paused; a connection that says nothing conclusive in time is closed.

import type { Socket } from 'node:net';
import { reportError } from '../src/core/report.js';

/** What the start of a connection read so far says: wait for more bytes, close the
 *  connection, or go on having consumed this many bytes. */
export type StartVerdict = 'more' | 'reject' | number;

/** Reads `socket` until `examine` (given everything read so far) decides; then puts back
 *  the bytes it did not consume and calls `next` with the socket, paused (a front end that
 *  reads through the stream resumes it), and those bytes. */
export function readConnectionStart(
  socket: Socket,
  timeoutMs: number,
  examine: (start: Buffer) => StartVerdict,
  next: (socket: Socket, rest: Buffer) => void,
  what: string,
): void {
  let buf: Buffer = Buffer.alloc(0);
  const onTimeout = (): void => {
    socket.destroy();
  };
  const onData = (chunk: Buffer): void => {
    try {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const verdict = examine(buf);
      if (verdict === 'more') return;
      socket.removeListener('data', onData);
      socket.removeListener('timeout', onTimeout);
      socket.setTimeout(0);
      if (verdict === 'reject') {
        socket.destroy();
        return;
      }
      socket.pause();
      const rest = buf.subarray(verdict);
      if (rest.length > 0) socket.unshift(rest);
      next(socket, rest);
    } catch (err) {
      reportError(err, what);
      socket.destroy();
    }
  };
  socket.setTimeout(timeoutMs);
  socket.once('timeout', onTimeout);
  socket.on('data', onData);
  socket.resume(); // paused by an earlier step (the PROXY header), or not yet flowing
}
