// Peer for the codec benchmark: the least a Node.js proxy can do per request. Each client
// connection gets its own upstream connection and bytes are copied both ways, with no
// HTTP parsing, no routing and no headers added: the same four system calls per
// keep-alive request as a proxy (read the request, write it upstream, read the response,
// write it back), paid through Node's net sockets. A Node.js HTTP proxy that makes those
// calls cannot spend less per request, so its rate is the ceiling for one.
//
// argv: <upstream port> [listen port, default 0] [mode: data | onread, default data]
//   data:   both sides read with 'data' events (Node's stream machinery), as socket.pipe.
//   onread: the upstream side reads into one static buffer (net.connect's `onread`), the
//           way Remora's upstream connections read; the client side as in `data`.
// Prints the bound port on stdout once listening.

import net, { type AddressInfo, type Socket } from 'node:net';

const upstreamPort = Number(process.argv[2]);
const port = Number(process.argv[3] ?? '0');
const mode = process.argv[4] ?? 'data';
if (mode !== 'data' && mode !== 'onread') throw new Error(`mode must be data or onread, not ${mode}`);
const readBuffer = Buffer.allocUnsafe(64 * 1024);

function connectUpstream(client: Socket): Socket {
  if (mode === 'data') return net.connect({ port: upstreamPort, host: '127.0.0.1', noDelay: true });
  return net.connect({
    port: upstreamPort,
    host: '127.0.0.1',
    noDelay: true,
    onread: {
      buffer: readBuffer,
      // The buffer is read into again on the next read: a write that does not complete at
      // once would send later bytes, so the chunk is copied (a few hundred bytes here).
      // Returning false pauses the upstream until the client drains.
      callback: (n: number, buf: Uint8Array): boolean => client.write(Buffer.from(buf.subarray(0, n))),
    },
  });
}

const server = net.createServer({ noDelay: true }, (client) => {
  const upstream = connectUpstream(client);
  // Backpressure as socket.pipe applies it: a full side pauses the other until it drains.
  client.on('data', (chunk: Buffer) => {
    if (!upstream.write(chunk)) client.pause();
  });
  upstream.on('drain', () => client.resume());
  if (mode === 'data') {
    upstream.on('data', (chunk: Buffer) => {
      if (!client.write(chunk)) upstream.pause();
    });
  }
  client.on('drain', () => upstream.resume());
  const close = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', close);
  client.on('close', close);
  upstream.on('close', close);
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
