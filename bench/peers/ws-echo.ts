// A WebSocket echo upstream for bench/tunnels.ts: uWebSockets.js (native, so it is not the
// limit in front of a proxy) sends every message back as it came (same opcode, no
// compression). No idle timeout and no pings: the load generator (bench/peers/ws-load.ts)
// counts echoed bytes and expects nothing else on the wire. Prints its port on stdout.
//
//   node dist/bench/peers/ws-echo.js [port, 0]

import { loadUws } from '../../src/uws/uws.js';

const port = Number(process.argv[2] ?? '0');
const uws = loadUws();
uws
  .App()
  .ws('/*', {
    compression: uws.DISABLED,
    maxPayloadLength: 16 * 2 ** 20,
    maxBackpressure: 64 * 2 ** 20,
    idleTimeout: 0,
    sendPingsAutomatically: false,
    message: (ws, message, isBinary) => {
      ws.send(message, isBinary);
    },
  })
  .listen('127.0.0.1', port, (socket) => {
    if (socket === false) {
      process.stderr.write('ws-echo: cannot listen\n');
      process.exit(1);
    }
    process.stdout.write(`${uws.us_socket_local_port(socket)}\n`);
  });
