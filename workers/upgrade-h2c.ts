// `Upgrade: h2c` (RFC 7540 §3.2, removed in RFC 9113) is ignored, as Envoy ignores it: the
// request is served as the plain HTTP/1.1 request it also is (curl --http2 against a plain
// listener sends one). node:http hands every `Connection: upgrade` request to its
// 'upgrade' event once a listener for it exists, with the parser already detached, so the
// strict codec puts the head back without the upgrade (Upgrade, HTTP2-Settings and their
// Connection tokens dropped) in front of the bytes that followed it, and gives the
// connection to node:http again: llhttp frames it, its body and whatever is pipelined
// behind it exactly as on any connection. (Node ≥ 22.21 / 24.9 can decline an upgrade up
// front with `shouldUpgradeCallback`, but on Node 24.22 a request pipelined behind a
// declined h2c upgrade is never served, so every runtime takes this path.)

import http, { type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** The request's Upgrade is h2c (the value compared whole, case-insensitively). */
export function isH2cUpgrade(req: IncomingMessage): boolean {
  const value = req.headers.upgrade;
  return value !== undefined && value.trim().toLowerCase() === 'h2c';
}

/** The request head as it came, without the h2c upgrade. Header lines are rebuilt from
 *  what llhttp accepted (names and values as sent, whitespace around values trimmed). */
export function headWithoutH2c(req: IncomingMessage): Buffer {
  let head = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.${req.httpVersionMinor}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (name === 'upgrade' || name === 'http2-settings') continue;
    let value = raw[i + 1];
    if (name === 'connection') {
      value = value
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t.length > 0 && !/^(?:upgrade|http2-settings)$/i.test(t))
        .join(', ');
      if (value === '') continue;
    }
    head += `${raw[i]}: ${value}\r\n`;
  }
  return Buffer.from(`${head}\r\n`, 'latin1');
}

type ConnectionListener = (this: http.Server, socket: Socket) => void;

/** node:http's handler of a new connection (the one http.Server and https.Server install
 *  at creation); exported by node:http for servers built on it. */
const serveConnection = (http as unknown as { _connectionListener: ConnectionListener })._connectionListener;

/** Serves the h2c request on `socket` as a plain HTTP/1.1 request: `rest` is what the
 *  client sent after the head (node's `head` argument of 'upgrade'). */
export function serveWithoutH2c(server: http.Server, req: IncomingMessage, socket: Socket, rest: Buffer): void {
  const head = headWithoutH2c(req);
  socket.unshift(rest.length > 0 ? Buffer.concat([head, rest]) : head);
  serveConnection.call(server, socket);
  socket.resume();
}
