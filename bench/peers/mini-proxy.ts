// The least HTTP proxy the front-end benchmark (bench/front-ends.ts) compares with: each
// client connection gets one upstream connection, a request head is rewritten upstream
// as a fixed GET, and the upstream's 100-byte response is answered with a fixed head and
// its body. No routing, no checks, no stats: what is left is the front end's own price
// when the response is written from another socket's callback, as a proxy writes it.
// Only for the benchmark's GETs with 100-byte responses that arrive in one read.
//
//   node-http: node:http's server in front (as Remora's strict front end).
//   llhttp:    llhttp through Node's parser binding on a net socket, the response
//              written straight to the socket.
//
// argv: <upstream port> <mode>. Prints the bound port on stdout once listening.

import http, { type ServerResponse } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { requestParser } from './parser-binding.js';

const upstreamPort = Number(process.argv[2]);
const mode = process.argv[3];
const RESPONSE_HEADERS = ['content-type', 'text/plain', 'content-length', '100'];
const RESPONSE_HEAD = 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\n';
const listening = (server: net.Server): void => void process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
const requestHead = (url: string): string => `GET ${url} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-forwarded-for: 127.0.0.1\r\n\r\n`;

/** An upstream connection that hands each response's body to `onBody`. */
function connectUpstream(onBody: (body: Buffer) => void): Socket {
  const upstream = net.connect({ port: upstreamPort, host: '127.0.0.1', noDelay: true });
  upstream.on('data', (chunk: Buffer) => onBody(Buffer.from(chunk.subarray(chunk.indexOf('\r\n\r\n') + 4))));
  upstream.on('error', () => upstream.destroy());
  return upstream;
}

if (mode === 'node-http') {
  const server = http.createServer({ noDelay: true }, (req, res) => {
    const socket = req.socket as Socket & { upstream?: Socket; waiting?: ServerResponse | null };
    if (socket.upstream === undefined) {
      const upstream = connectUpstream((body) => {
        const waiting = socket.waiting!;
        socket.waiting = null;
        waiting.writeHead(200, 'OK', RESPONSE_HEADERS);
        waiting.end(body);
      });
      socket.upstream = upstream;
      socket.on('close', () => upstream.destroy());
    }
    socket.waiting = res;
    socket.upstream.write(requestHead(req.url ?? '/'), 'latin1');
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => listening(server));
} else if (mode === 'llhttp') {
  const server = net.createServer({ noDelay: true }, (socket) => {
    const upstream = connectUpstream((body) => {
      socket.cork();
      socket.write(RESPONSE_HEAD, 'latin1');
      socket.write(body);
      socket.uncork();
    });
    const parser = requestParser((url) => upstream.write(requestHead(url), 'latin1'));
    socket.on('data', (chunk: Buffer) => {
      if (parser.execute(chunk) instanceof Error) socket.destroy();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      upstream.destroy();
      parser.close();
    });
  });
  server.listen(0, '127.0.0.1', () => listening(server));
} else {
  throw new Error(`mode must be node-http or llhttp, not ${String(mode)}`);
}
process.on('SIGTERM', () => process.exit(0));
