// The alternative Remora did not take for WebSocket, kept to measure the choice
// (docs/protocols.md, "WebSocket and other upgrades"): a proxy that terminates each client
// WebSocket with uWebSockets.js and re-originates it to the upstream with the `ws` client,
// passing every message across (backpressure: a side over 1 MiB buffered stops reading
// the other; close codes passed on). Remora instead tunnels the bytes after the 101.
// bench/tunnels.ts runs it beside Remora with `--modes`; prints its port on stdout.
//
//   node dist/bench/peers/ws-terminator.js <upstream port> [listen port, 0]

import WebSocket from 'ws';
import { loadUws } from '../../src/uws/uws.js';

const upstreamPort = Number(process.argv[2]);
const port = Number(process.argv[3] ?? '0');
const uws = loadUws();
const HIGH_WATER = 2 ** 20;

interface Pair {
  upstream: WebSocket;
  /** Messages from the client before the upstream connection opened. */
  early: { data: Buffer; binary: boolean }[];
  open: boolean;
  closed: boolean;
}

uws
  .App()
  .ws<Pair>('/*', {
    compression: uws.DISABLED,
    maxPayloadLength: 16 * 2 ** 20,
    maxBackpressure: 64 * 2 ** 20,
    idleTimeout: 0,
    sendPingsAutomatically: false,
    open: (ws) => {
      const pair = ws.getUserData();
      pair.early = [];
      pair.open = false;
      pair.closed = false;
      const up = new WebSocket(`ws://127.0.0.1:${upstreamPort}/`, { perMessageDeflate: false });
      pair.upstream = up;
      up.on('open', () => {
        pair.open = true;
        for (const m of pair.early) up.send(m.data, { binary: m.binary });
        pair.early = [];
      });
      up.on('message', (data: Buffer, binary: boolean) => {
        if (pair.closed) return;
        ws.send(data, binary);
        // uWS buffers what the client cannot take yet: stop reading the upstream meanwhile.
        if (ws.getBufferedAmount() > HIGH_WATER) up.pause();
      });
      up.on('close', (code: number) => {
        if (!pair.closed) {
          pair.closed = true;
          ws.end(code === 1005 ? 1000 : code);
        }
      });
      up.on('error', () => {
        if (!pair.closed) {
          pair.closed = true;
          ws.end(1011);
        }
      });
    },
    message: (ws, message, isBinary) => {
      const pair = ws.getUserData();
      // uWS reuses the message's memory after this call: copy it.
      const data = Buffer.from(message.slice(0));
      if (!pair.open) {
        pair.early.push({ data, binary: isBinary });
        return;
      }
      pair.upstream.send(data, { binary: isBinary });
    },
    drain: (ws) => {
      if (ws.getBufferedAmount() < HIGH_WATER) ws.getUserData().upstream.resume();
    },
    close: (ws, code) => {
      const pair = ws.getUserData();
      if (pair.closed) return;
      pair.closed = true;
      pair.upstream.close(code === 1005 || code === 1006 ? 1000 : code);
    },
  })
  .listen('127.0.0.1', port, (socket) => {
    if (socket === false) {
      process.stderr.write('ws-terminator: cannot listen\n');
      process.exit(1);
    }
    process.stdout.write(`${uws.us_socket_local_port(socket)}\n`);
  });
