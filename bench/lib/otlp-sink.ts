// An OTLP/HTTP collector stand-in for benchmarks: accepts POST /v1/traces, reads and
// drops the body, answers 200 with an empty ExportTraceServiceResponse, and counts the
// bytes. Cheap on purpose: the benchmark prices the proxy's tracing, not a collector.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OtlpSink {
  /** http://127.0.0.1:<port>/v1/traces */
  readonly endpoint: string;
  /** Export requests and body bytes received so far. */
  stats(): { requests: number; bytes: number };
  close(): Promise<void>;
}

export async function startOtlpSink(): Promise<OtlpSink> {
  let requests = 0;
  let bytes = 0;
  const server = http.createServer((req, res) => {
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      requests++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 });
      res.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}/v1/traces`,
    stats: () => ({ requests, bytes }),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
