// A WebSocket upstream for the upgrade tests: a `ws` server on a node:http server that
// echoes every message (text stays text), picks `chat.v2` when offered, closes /close-me
// with 4001, drops /drop-me without a close frame, refuses /refuse-<status> with that
// status (and /refuse-chunked with a chunked 401, its connection left open), and answers
// plain requests with what it saw as JSON. It records every handshake's headers and how
// every WebSocket ended.

import http from 'node:http';
import type net from 'node:net';
import { WebSocketServer } from 'ws';

export interface WsUpstream {
  readonly port: number;
  /** The upgrade requests' headers, in order. */
  readonly seenHeads: http.IncomingHttpHeaders[];
  /** How each WebSocket ended, as the upstream saw it (1006: no close frame). */
  readonly closesSeen: { url: string; code: number; reason: string }[];
  close(): Promise<void>;
}

/** Records into `record`'s lists when given (several upstreams, one record). */
export async function startWsUpstream(perMessageDeflate: boolean, record?: Pick<WsUpstream, 'seenHeads' | 'closesSeen'>): Promise<WsUpstream> {
  const seenHeads = record?.seenHeads ?? [];
  const closesSeen = record?.closesSeen ?? [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }));
    });
  });
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate,
    handleProtocols: (protocols) => (protocols.has('chat.v2') ? 'chat.v2' : false),
  });
  wss.on('connection', (ws, req) => {
    ws.on('close', (code, reason) => closesSeen.push({ url: req.url ?? '', code, reason: reason.toString() }));
    if (req.url === '/close-me') {
      ws.close(4001, 'server-bye');
      return;
    }
    if (req.url === '/drop-me') {
      setTimeout(() => ws.terminate(), 50);
      return;
    }
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  server.on('upgrade', (req, socket, head) => {
    seenHeads.push(req.headers);
    if (req.url === '/refuse-chunked') {
      // Chunked, and the connection left open: the answer ends with its last chunk.
      socket.write('HTTP/1.1 401 Unauthorized\r\ntransfer-encoding: chunked\r\nwww-authenticate: Bearer\r\n\r\n5\r\nhello\r\n7\r\n, again\r\n0\r\n\r\n');
      return;
    }
    const m = /^\/refuse-(\d{3})/.exec(req.url ?? '');
    if (m !== null) {
      const body = `refused with ${m[1]}`;
      socket.end(`HTTP/1.1 ${m[1]} Refused\r\ncontent-type: text/plain\r\nx-why: test\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    seenHeads,
    closesSeen,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
