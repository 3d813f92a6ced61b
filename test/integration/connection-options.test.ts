// Health check payloads, upstream connection limits and TCP keepalive, through the real
// proxy: TCP health checks (send and fuzzy in-order receive, connect only) against real
// TCP servers; HTTP checks whose body must hold expected bytes; a cluster's
// max_requests_per_connection seen as new connections at a recording upstream; and
// tcp_keepalive on a listener's accepted sockets and a cluster's upstream sockets, read
// from the kernel's own table (/proc/net/tcp: the keepalive timer and its time left).

import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import { admin, request, routesConfig, startRemora, startUpstream, waitUntil } from '../helpers/remora.js';
import { startPeer } from '../helpers/tcp-peers.js';

/** Health of each endpoint of `cluster`, by port. */
async function healthByPort(adminPort: number, cluster: string): Promise<Map<number, string>> {
  const body = JSON.parse((await admin(adminPort, '/clusters')).text) as { clusters: { name: string; endpoints: { port: number; health: string }[] }[] };
  return new Map(body.clusters.find((c) => c.name === cluster)!.endpoints.map((e) => [e.port, e.health]));
}

const fastChecks = { interval_ms: 100, no_traffic_interval_ms: 100, timeout_ms: 500, unhealthy_threshold: 1, healthy_threshold: 1 };

t.test('TCP health checks: send, fuzzy in-order receive, connect only', async (t) => {
  // "pong" after a timestamp: the blocks "ti" and "pong" are found in order, not next to each other.
  const answer = { text: 'time=17 pong\n' };
  const sent: string[] = [];
  const good = await startPeer((s) => s.on('data', (d: Buffer) => {
    sent.push(d.toString());
    s.write(answer.text);
  }));
  const wrong = await startPeer((s) => s.on('data', () => s.write('pong time=17\n'))); // blocks out of order
  const silent = await startPeer(() => { /* accepts, never answers */ });
  const closed = await startPeer(() => {});
  const closedPort = closed.port;
  await closed.close();
  const config = routesConfig(
    [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'svc' } }],
    [
      {
        name: 'svc',
        endpoints: [good, wrong, silent].map((p) => ({ address: '127.0.0.1', port: p.port })),
        health_check: { tcp: { send: Buffer.from('ping').toString('hex'), receive: ['7469', Buffer.from('pong').toString('hex')] }, ...fastChecks },
      },
      {
        name: 'connect-only',
        endpoints: [silent, { port: closedPort }].map((p) => ({ address: '127.0.0.1', port: p.port })),
        health_check: { tcp: {}, ...fastChecks },
      },
    ],
  );
  const remora = await startRemora(config);
  t.teardown(async () => {
    await remora.stop();
    await Promise.all([good.close(), wrong.close(), silent.close()]);
  });
  await waitUntil('every endpoint checked', async () => {
    const all = [...(await healthByPort(remora.adminPort, 'svc')).values(), ...(await healthByPort(remora.adminPort, 'connect-only')).values()];
    return all.every((h) => h === 'healthy' || h === 'unhealthy');
  });
  const svc = await healthByPort(remora.adminPort, 'svc');
  t.equal(svc.get(good.port), 'healthy', 'the endpoint that answers "ping" with "…ti…pong" passes');
  t.equal(svc.get(wrong.port), 'unhealthy', 'blocks present but out of order fail');
  t.equal(svc.get(silent.port), 'unhealthy', 'no answer within timeout_ms fails');
  t.equal(sent[0], 'ping', `the check sent the send bytes (saw ${JSON.stringify(sent[0])})`);
  const co = await healthByPort(remora.adminPort, 'connect-only');
  t.equal(co.get(silent.port), 'healthy', 'connect only: a connection accepted passes');
  t.equal(co.get(closedPort), 'unhealthy', 'connect only: a refused connection fails');

  answer.text = 'busy\n';
  await waitUntil('the good endpoint turns unhealthy once its answer lacks the blocks', async () => (await healthByPort(remora.adminPort, 'svc')).get(good.port) === 'unhealthy');
  answer.text = 'pong ti\n'.replace('pong ti', 'ti pong');
  await waitUntil('and healthy again once it matches', async () => (await healthByPort(remora.adminPort, 'svc')).get(good.port) === 'healthy');
});

t.test('HTTP health checks with receive: the body must hold the blocks, in order', async (t) => {
  const body = { ok: 'status: ok', degraded: 'status: degraded' };
  const ok = await startUpstream((_req, res) => res.end(body.ok));
  const degraded = await startUpstream((_req, res) => res.end(body.degraded));
  const far = await startUpstream((_req, res) => res.end(`${'x'.repeat(200)}ok`)); // beyond response_buffer_size
  const config = routesConfig(
    [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'svc' } }],
    [{
      name: 'svc',
      panic_threshold_percent: 0, // two of three out: still route around them
      endpoints: [ok, degraded, far].map((u) => ({ address: '127.0.0.1', port: u.port })),
      health_check: { path: '/healthz', receive: [Buffer.from('status').toString('hex'), Buffer.from('ok').toString('hex')], response_buffer_size: 64, ...fastChecks },
    }],
  );
  const remora = await startRemora(config);
  t.teardown(async () => {
    await remora.stop();
    await Promise.all([ok.close(), degraded.close(), far.close()]);
  });
  await waitUntil('every endpoint checked', async () => [...(await healthByPort(remora.adminPort, 'svc')).values()].every((h) => h !== 'unchecked' && h !== 'unknown'));
  const h = await healthByPort(remora.adminPort, 'svc');
  t.equal(h.get(ok.port), 'healthy', '"status: ok" holds "status" then "ok"');
  t.equal(h.get(degraded.port), 'unhealthy', '"status: degraded" lacks "ok" after "status"');
  t.equal(h.get(far.port), 'unhealthy', 'a match past response_buffer_size bytes does not count');
  for (let i = 0; i < 5; i++) {
    const r = await request(remora.ports.main, { path: '/' });
    t.equal(r.text, body.ok, 'traffic goes to the healthy endpoint only');
  }
});

t.test('max_requests_per_connection: an upstream connection carries at most that many requests', async (t) => {
  const connections = new Set<string>();
  const up = await startUpstream((req, res) => {
    connections.add(`${req.socket.remotePort}`);
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const config = routesConfig(
    [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'svc' } }],
    [{ name: 'svc', endpoints: [{ address: '127.0.0.1', port: up.port }], max_requests_per_connection: 2 }],
  );
  const remora = await startRemora(config);
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  for (let i = 0; i < 6; i++) {
    const r = await request(remora.ports.main, { path: `/r${i}`, method: i % 2 === 0 ? 'GET' : 'POST', body: i % 2 === 0 ? undefined : 'body' });
    t.equal(r.status, 200, `request ${i} answered`);
  }
  t.equal(connections.size, 3, `6 requests one after another reached the upstream over 3 connections (saw ${connections.size})`);
  const stats = (await admin(remora.adminPort, '/stats?filter=max_requests')).text;
  t.match(stats, /^cluster\.svc\.upstream_cx_max_requests: 3$/m, `each connection closed at its limit is counted (saw ${stats.trim()})`);
});

/** The kernel's row of the TCP socket from local port `local` to remote port `remote`:
 *  its timer (2: keepalive) and seconds until it fires. */
function socketTimer(local: number, remote: number): { timer: number; seconds: number } | null {
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 6) continue;
      const lp = parseInt(f[1].split(':')[1], 16);
      const rp = parseInt(f[2].split(':')[1], 16);
      if (lp !== local || rp !== remote) continue;
      const [timer, when] = f[5].split(':');
      return { timer: parseInt(timer, 16), seconds: parseInt(when, 16) / 100 }; // clock ticks (USER_HZ 100)
    }
  }
  return null;
}

t.test('tcp_keepalive on a listener\'s accepted sockets and a cluster\'s upstream sockets', { skip: process.platform !== 'linux' && 'reads /proc/net/tcp' }, async (t) => {
  let upstreamPeer = 0;
  const up = await startUpstream((req, res) => {
    upstreamPeer = req.socket.remotePort!;
    res.end('ok');
  });
  const config = {
    ...routesConfig(
      [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'svc' } }],
      [{ name: 'svc', endpoints: [{ address: '127.0.0.1', port: up.port }], tcp_keepalive: { time_s: 45 } }],
    ),
  };
  config.listeners[0] = { ...config.listeners[0], tcp_keepalive: { time_s: 30 } } as typeof config.listeners[0];
  config.listeners.push({ name: 'plain', address: '127.0.0.1', port: 0, virtual_hosts: config.listeners[0].virtual_hosts });
  const remora = await startRemora(config);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(async () => {
    agent.destroy();
    await remora.stop();
    await up.close();
  });
  const localPortOf = (port: number): Promise<number> => new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      const local = (req.socket as net.Socket).localPort!;
      res.resume();
      res.on('end', () => resolve(local));
    });
    req.on('error', reject);
  });
  const clientPort = await localPortOf(remora.ports.main);
  const down = socketTimer(remora.ports.main, clientPort);
  t.ok(down !== null, 'Remora\'s side of the client connection is in /proc/net/tcp');
  t.equal(down?.timer, 2, `its keepalive timer runs (timer ${down?.timer}; 0 is none)`);
  t.ok(down !== null && down.seconds > 20 && down.seconds <= 30, `and fires within time_s 30 (in ${down?.seconds} s)`);
  const upstream = socketTimer(upstreamPeer, up.port);
  t.equal(upstream?.timer, 2, `the upstream connection's keepalive timer runs (timer ${upstream?.timer})`);
  t.ok(upstream !== null && upstream.seconds > 35 && upstream.seconds <= 45, `and fires within time_s 45 (in ${upstream?.seconds} s)`);
  const plainClient = await localPortOf(remora.ports.plain);
  const plain = socketTimer(remora.ports.plain, plainClient);
  t.equal(plain?.timer, 0, `a listener without tcp_keepalive sets no keepalive timer (timer ${plain?.timer})`);
});

t.test('an endpoint\'s health_check_host is the Host of its checks', async (t) => {
  const hosts = new Map<number, Set<string>>();
  const record = (name: number) => (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (req.url === '/healthz') hosts.get(name)!.add(String(req.headers.host));
    res.end('ok');
  };
  const own = await startUpstream((req, res) => record(own.port)(req, res));
  const plain = await startUpstream((req, res) => record(plain.port)(req, res));
  hosts.set(own.port, new Set());
  hosts.set(plain.port, new Set());
  const config = routesConfig(
    [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'svc' } }],
    [{
      name: 'svc',
      endpoints: [{ address: '127.0.0.1', port: own.port, health_check_host: 'backend-0.health.internal' }, { address: '127.0.0.1', port: plain.port }],
      health_check: { path: '/healthz', host: 'svc.internal', ...fastChecks },
    }],
  );
  const remora = await startRemora(config);
  t.teardown(async () => {
    await remora.stop();
    await Promise.all([own.close(), plain.close()]);
  });
  await waitUntil('both endpoints checked', async () => hosts.get(own.port)!.size > 0 && hosts.get(plain.port)!.size > 0);
  t.same([...hosts.get(own.port)!], ['backend-0.health.internal'], 'the endpoint with its own health_check_host is checked with it');
  t.same([...hosts.get(plain.port)!], ['svc.internal'], 'the other with the check\'s host');
});
