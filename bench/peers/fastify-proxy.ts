// Peer for the benchmark suite: fastify + @fastify/http-proxy (undici, keep-alive pool)
// in front of one upstream. argv: <upstream port> [listen port, default 0]. Prints the
// bound port on stdout once listening.

import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';

const upstreamPort = Number(process.argv[2]);
const port = Number(process.argv[3] ?? '0');
const app = Fastify({ logger: false, keepAliveTimeout: 60_000 });
await app.register(proxy, {
  upstream: `http://127.0.0.1:${upstreamPort}`,
  undici: { connections: 128, pipelining: 1, keepAliveTimeout: 60_000 },
});
const address = await app.listen({ host: '127.0.0.1', port });
process.stdout.write(`${new URL(address).port}\n`);
process.on('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
