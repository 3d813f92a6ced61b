// 1,000 WebSocket connections open at once through one Remora worker: every one upgraded
// and echoing, the listener's upgrades gauge at 1,000, the process's memory bounded while
// they are open (what a tunnel costs: two sockets and their buffers, no per-frame state),
// and everything given back when they close (the gauge at 0, no connection left upstream).

import http from 'node:http';
import t from 'tap';
import WebSocket, { WebSocketServer } from 'ws';
import { admin, rssOf, startRemora, waitUntil } from '../helpers/remora.js';

const SOCKETS = 1000;
/** Memory a tunnel may cost Remora, on average: far above the ~10 KiB two idle sockets
 *  and their JS objects take, far below what a leak of the 4 KiB messages would show. */
const PER_TUNNEL_BUDGET = 64 * 1024;

const upstreamServer = http.createServer();
const wss = new WebSocketServer({ server: upstreamServer, perMessageDeflate: false });
let upstreamOpen = 0;
wss.on('connection', (ws) => {
  upstreamOpen++;
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('close', () => upstreamOpen--);
});
await new Promise<void>((resolve) => upstreamServer.listen(0, '127.0.0.1', resolve));
t.teardown(() => new Promise<void>((resolve) => {
  wss.close();
  upstreamServer.closeAllConnections();
  upstreamServer.close(() => resolve());
}));
const upstreamPort = (upstreamServer.address() as { port: number }).port;

const remora = await startRemora({
  workers: 1,
  admin: { address: '127.0.0.1', port: 0 },
  listeners: [{
    name: 'ws', address: '127.0.0.1', port: 0, upgrade_configs: [{ upgrade_type: 'websocket' }],
    virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'up' } }] }],
  }],
  clusters: [{ name: 'up', circuit_breakers: { max_connections: 5000 }, endpoints: [{ address: '127.0.0.1', port: upstreamPort }] }],
});
t.teardown(() => remora.stop());

async function stat(name: string): Promise<number> {
  const text = (await admin(remora.adminPort, `/stats?filter=${encodeURIComponent(name)}`)).text;
  const m = new RegExp(`^${name.replace(/\./g, '\\.')}: (\\d+)$`, 'm').exec(text);
  return m === null ? -1 : Number(m[1]);
}

function open(i: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${remora.ports.ws}/s/${i}`, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function echo(ws: WebSocket, payload: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    ws.once('message', (data: Buffer) => resolve(Buffer.compare(data, payload) === 0));
    ws.send(payload);
  });
}

t.test(`${SOCKETS} WebSockets open at once: all echo, memory bounded, all given back`, async (t) => {
  const before = rssOf(remora.pid);
  const sockets: WebSocket[] = [];
  // In batches of 100, so the accept queue and the upstream's are never what limits.
  for (let i = 0; i < SOCKETS; i += 100) {
    sockets.push(...(await Promise.all(Array.from({ length: 100 }, (_, j) => open(i + j)))));
  }
  t.equal(sockets.length, SOCKETS, `${SOCKETS} upgrades through one worker`);
  const payload = Buffer.alloc(4096, 7);
  const echoed = await Promise.all(sockets.map((ws) => echo(ws, payload)));
  t.equal(echoed.filter(Boolean).length, SOCKETS, 'every socket echoed a 4 KiB message intact');
  t.equal(await stat('listener.ws.downstream_cx_upgrades_active'), SOCKETS, `downstream_cx_upgrades_active is ${SOCKETS} while they are open`);
  t.equal(upstreamOpen, SOCKETS, `the upstream holds ${SOCKETS} connections, one per tunnel`);
  const during = rssOf(remora.pid);
  const perTunnel = (during - before) / SOCKETS;
  t.ok(perTunnel < PER_TUNNEL_BUDGET,
    `RSS grew ${((during - before) / 2 ** 20).toFixed(1)} MiB for ${SOCKETS} tunnels (${Math.round(perTunnel)} B each; budget ${PER_TUNNEL_BUDGET} B)`);

  await Promise.all(sockets.map((ws) => new Promise<void>((resolve) => {
    ws.once('close', () => resolve());
    ws.close(1000, 'done');
  })));
  await waitUntil('every tunnel closed', async () => (await stat('listener.ws.downstream_cx_upgrades_active')) === 0 && upstreamOpen === 0);
  t.equal(await stat('listener.ws.downstream_cx_upgrades_total'), SOCKETS, `downstream_cx_upgrades_total counts ${SOCKETS}`);
  t.equal(await stat('cluster.up.upstream_cx_active'), 0, 'no upstream connection left open');
});
