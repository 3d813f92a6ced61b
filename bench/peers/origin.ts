// An origin server for the front-end benchmark (bench/front-ends.ts): answers every
// request with 200 and 100 bytes, through one of three HTTP/1 server stacks, so their
// cost per request can be compared with no proxying at all.
//
//   node-http: node:http's server (llhttp, IncomingMessage, ServerResponse), as Remora's
//              strict front end uses it.
//   llhttp:    the same llhttp parser through Node's own binding (`_http_common`'s
//              HTTPParser) on a net socket, the response written straight to the socket:
//              what a front end without node:http's objects would pay.
//   uws:       uWebSockets.js (its own parser, its own event loop integration).
//
// argv: <mode>. Prints the bound port on stdout once listening.

import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { loadUws } from '../../src/uws/uws.js';
import { requestParser } from './parser-binding.js';

const BODY = Buffer.alloc(100, 'a');
const HEAD = 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\n';
const mode = process.argv[2];
const listening = (port: number): void => void process.stdout.write(`${port}\n`);

/** node:http's parser binding (not a public API; present in Node 20 and 24). */
if (mode === 'node-http') {
  const server = http.createServer({ noDelay: true }, (_req, res) => {
    res.writeHead(200, 'OK', ['content-type', 'text/plain', 'content-length', '100']);
    res.end(BODY);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => listening((server.address() as AddressInfo).port));
} else if (mode === 'llhttp') {
  const server = net.createServer({ noDelay: true }, (socket) => {
    const parser = requestParser(() => {
      socket.cork();
      socket.write(HEAD, 'latin1');
      socket.write(BODY);
      socket.uncork();
    });
    socket.on('data', (chunk: Buffer) => {
      if (parser.execute(chunk) instanceof Error) socket.destroy();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => parser.close());
  });
  server.listen(0, '127.0.0.1', () => listening((server.address() as AddressInfo).port));
} else if (mode === 'uws') {
  const uWS = loadUws();
  uWS.App()
    .any('/*', (res) => {
      res.cork(() => {
        res.writeStatus('200 OK').writeHeader('content-type', 'text/plain').end(BODY);
      });
    })
    .listen('127.0.0.1', 0, (token) => {
      if (token === false) throw new Error('uWS could not listen');
      listening(uWS.us_socket_local_port(token));
    });
} else {
  throw new Error(`mode must be node-http, llhttp or uws, not ${String(mode)}`);
}
process.on('SIGTERM', () => process.exit(0));
