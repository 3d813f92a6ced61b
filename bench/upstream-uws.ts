// Benchmark upstream: a uWS server answering every request with a fixed-size body.
// argv: [default size, 100] [port, 0]. Prints its port on stdout. Not part of the proxy.
//
// - `GET /payload/<n>/...` answers with an n-byte body (n ≤ 64 MiB), anything else with
//   the default size, so one upstream serves every payload size and every proxy in front
//   of it (Remora, nginx, HAProxy, the Node peers) is measured against the same process.
// - A request with a body (content-length > 0 or transfer-encoding) is read to its end
//   before the answer (the bytes are counted and dropped), so POST benchmarks measure the
//   body crossing the proxy, not an early answer racing it.

import { loadUws, type HttpResponse } from '../src/uws/uws.js';

const defaultSize = Number(process.argv[2] ?? '100');
const port = Number(process.argv[3] ?? '0');
const MAX_SIZE = 64 * 2 ** 20;
const bodies = new Map<number, Buffer>();

function bodyOf(size: number): Buffer {
  let b = bodies.get(size);
  if (b === undefined) {
    b = Buffer.alloc(size, 'x');
    bodies.set(size, b);
  }
  return b;
}

/** The response size for a request path: /payload/<n>/ → n, else the default. */
function sizeOf(url: string): number {
  if (!url.startsWith('/payload/')) return defaultSize;
  const n = Number.parseInt(url.slice(9), 10);
  return Number.isFinite(n) && n >= 0 && n <= MAX_SIZE ? n : defaultSize;
}

function answer(res: HttpResponse, body: Buffer): void {
  res.cork(() => {
    res.writeStatus('200 OK').writeHeader('content-type', 'text/plain').end(body);
  });
}

const uws = loadUws();
uws
  .App()
  .any('/*', (res, req) => {
    const body = bodyOf(sizeOf(req.getUrl()));
    const length = req.getHeader('content-length');
    const hasBody = (length !== '' && length !== '0') || req.getHeader('transfer-encoding') !== '';
    if (!hasBody) {
      answer(res, body);
      return;
    }
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    res.onData((_chunk, isLast) => {
      if (isLast && !aborted) answer(res, body);
    });
  })
  .listen('127.0.0.1', port, (socket) => {
    if (socket === false) {
      process.stderr.write('bench upstream: cannot listen\n');
      process.exit(1);
    }
    process.stdout.write(`${uws.us_socket_local_port(socket)}\n`);
  });
