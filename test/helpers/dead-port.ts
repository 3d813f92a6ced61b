// A port on 127.0.0.1 that nothing listens on and nothing is about to bind, for tests of
// refused connections (503 UF, a control plane that is down). A port bound once and
// closed is not enough: with many test processes at once, the kernel hands the same
// port to the next `listen(0)` or outgoing connection (the ephemeral range), and
// Remora's own listeners pick theirs below it (src/main/ports.ts freePort). So the port
// comes from above the ephemeral range, where neither ever picks, and is checked free.

import { readFileSync } from 'node:fs';
import net from 'node:net';

/** Ports nobody picks automatically: above the ephemeral range, else a low band below
 *  the range freePort uses. */
const RANGE: readonly [number, number] = (() => {
  let high = 60999;
  try {
    high = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[1]) || high;
  } catch {
    // not Linux: the default range
  }
  return 65535 - high >= 500 ? [high + 1, 65535] : [10000, 19999];
})();

export async function deadPort(): Promise<number> {
  const [from, to] = RANGE;
  for (let i = 0; i < 50; i++) {
    const port = from + Math.floor(Math.random() * (to - from + 1));
    if (await isFree(port)) return port;
  }
  throw new Error(`no free port in ${from}-${to} on 127.0.0.1`);
}

/** Whether `port` can be bound on 127.0.0.1 (it is closed again at once). */
function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
