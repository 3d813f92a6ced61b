// The bundled demo upstream: a tiny HTTP server that answers every request with JSON
// describing what it received (method, path, headers, body size), so a newcomer can
// see what Remora forwards. Not part of the proxy.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DemoUpstream {
  readonly name: string;
  readonly port: number;
  close(): Promise<void>;
}

export function startDemoUpstream(name: string, port: number, host = '127.0.0.1'): Promise<DemoUpstream> {
  const server = http.createServer((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on('end', () => {
      const body = JSON.stringify(
        { server: name, method: req.method, path: req.url, headers: req.headers, body_bytes: bytes },
        null,
        2,
      );
      res.writeHead(200, { 'content-type': 'application/json', 'x-demo-server': name });
      res.end(body + '\n');
    });
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      resolve({
        name,
        port: (server.address() as AddressInfo).port,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}
