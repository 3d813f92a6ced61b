// HTTP/1.1 responses written straight to a connection node:http has let go of: an upgrade
// request arrives through the server's 'upgrade' event with the raw socket and no
// ServerResponse, so its local replies (403 upgrade_failed, 404, 503...) and an upstream's
// refusal of the upgrade (a 400, a 401 with a body) are written here. Every such response
// closes the connection (`connection: close`); what came after the request is not read.

import type { Socket } from 'node:net';
import { httpDate } from '../src/http/date.js';
import type { HeaderSink } from '../src/http/response-head.js';

/** A response head being built as text (Latin-1: header strings hold one byte per char). */
export class RawResponseHead implements HeaderSink {
  private text: string;

  constructor(status: number, reason: string) {
    this.text = `HTTP/1.1 ${status} ${reason}\r\n`;
  }

  writeHeader(name: string, value: string): void {
    this.text += `${name}: ${value}\r\n`;
  }

  /** The head, ending in the empty line. */
  finish(): Buffer {
    return Buffer.from(`${this.text}\r\n`, 'latin1');
  }
}

/** Writes a whole local reply and closes the connection once it is sent. `headers` flat
 *  [name, value, ...]; `serverName` the listener's `server` (null: none); `headOnly`: a
 *  HEAD request (the length is announced, no body sent). */
export function writeLocalReply(
  socket: Socket,
  status: number,
  reason: string,
  headers: readonly string[],
  body: string,
  serverName: string | null,
  headOnly: boolean,
): void {
  if (socket.destroyed) return;
  const head = new RawResponseHead(status, reason);
  for (let i = 0; i < headers.length; i += 2) head.writeHeader(headers[i], headers[i + 1]);
  head.writeHeader('content-length', String(Buffer.byteLength(body)));
  head.writeHeader('date', httpDate());
  if (serverName !== null) head.writeHeader('server', serverName);
  head.writeHeader('connection', 'close');
  const bytes = head.finish();
  socket.end(headOnly || body.length === 0 ? bytes : Buffer.concat([bytes, Buffer.from(body, 'utf8')]));
  socket.destroySoon();
}
