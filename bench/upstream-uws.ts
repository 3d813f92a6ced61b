// Benchmark upstream: a uWS server answering every request with a fixed-size body
// (100 bytes by default). Prints its port on stdout. Not part of the proxy.

import { loadUws } from '../src/uws/uws.js';

const size = Number(process.argv[2] ?? '100');
const port = Number(process.argv[3] ?? '0');
const body = Buffer.alloc(size, 'x');
const uws = loadUws();
uws
  .App()
  .any('/*', (res) => {
    res.cork(() => {
      res.writeStatus('200 OK').writeHeader('content-type', 'text/plain').end(body);
    });
  })
  .listen('127.0.0.1', port, (socket) => {
    if (socket === false) {
      process.stderr.write('bench upstream: cannot listen\n');
      process.exit(1);
    }
    process.stdout.write(`${uws.us_socket_local_port(socket)}\n`);
  });
