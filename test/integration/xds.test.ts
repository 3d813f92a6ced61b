// The sidecar fed by the reference control plane over xDS, end to end: the initial
// config, a route change, a new cluster and an endpoint change applied under steady
// traffic with zero failed requests; an update the sidecar cannot apply NACKed with the
// field's name while traffic stays on the old version; the control plane stopped
// (traffic continues, the sidecar reconnects and catches up); failover to the second
// address of the list; a restart from the persisted config while no control plane
// answers; and mTLS over xDS: an inbound mTLS listener with authorization and XFCC and an
// upstream TLS cluster, served as transport sockets and RBAC filters and enforced by the
// sidecar. Everything on 127.0.0.1, port 0; processes ended by pid.

import http from 'node:http';
import https from 'node:https';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { pino } from 'pino';
import { startControlPlane, type RunningControlPlane } from '../../src/control-plane/server.js';
import { toXdsResources, grpcApiListener } from '../../src/xds/encode.js';
import { freePort } from '../../src/main/ports.js';
import { admin, BIN, namedUpstream, request, startRemora, waitUntil } from '../helpers/remora.js';
import { TestPki } from '../helpers/certs.js';
import { deadPort } from '../helpers/dead-port.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const silent = pino({ level: 'silent' });

const until = (what: string, fn: () => Promise<boolean>, ms = 8000) => waitUntil(what, fn, ms, 50);

/** A group config: listener "main" (port 0) → cluster a; options add a route header, a
 *  second cluster on /b, or one the sidecar must reject. */
function groupConfig(o: { a: number[]; b?: number; header?: string; nackMe?: number; listenerPort?: number }): string {
  const routes: unknown[] = [];
  if (o.b !== undefined) routes.push({ name: 'to-b', match: { prefix: '/b' }, route: { cluster: 'b' } });
  if (o.nackMe !== undefined) routes.push({ name: 'to-bad', match: { prefix: '/bad' }, route: { cluster: 'nack-me' } });
  routes.push({
    name: 'to-a',
    match: { prefix: '/' },
    route: { cluster: 'a' },
    ...(o.header !== undefined ? { response_headers_to_add: [{ name: 'x-version', value: o.header }] } : {}),
  });
  const clusters: unknown[] = [{ name: 'a', endpoints: o.a.map((port) => ({ address: '127.0.0.1', port })) }];
  if (o.b !== undefined) clusters.push({ name: 'b', endpoints: [{ address: '127.0.0.1', port: o.b }] });
  if (o.nackMe !== undefined) clusters.push({ name: 'nack-me', endpoints: [{ address: '127.0.0.1', port: o.nackMe }] });
  return JSON.stringify({
    listeners: [{ name: 'main', address: '127.0.0.1', port: o.listenerPort ?? 0, virtual_hosts: [{ name: 'all', domains: ['*'], routes }] }],
    clusters,
  });
}

/** The default translation, except that a cluster named "nack-me" carries a field Remora
 *  does not support: the sidecar must NACK it. */
const translator = {
  toXdsResources(config: Parameters<typeof toXdsResources>[0], opts: Parameters<typeof toXdsResources>[1]) {
    const r = toXdsResources(config, opts);
    const bad = r.clusters.get('nack-me');
    if (bad !== undefined) r.clusters.set('nack-me', { ...bad, lb_subset_config: { fallback_policy: 'ANY_ENDPOINT' } });
    return r;
  },
  grpcApiListener,
};

function bootstrap(servers: string[], persist: string, timeoutMs = 10_000) {
  return {
    workers: 2,
    admin: { address: '127.0.0.1', port: 0 },
    xds: { servers, node: { id: 'sidecar-1', cluster: 'web' }, persist_path: persist, initial_fetch_timeout_ms: timeoutMs },
  };
}

/** Steady keep-alive load; counts complete 200s and everything else. */
function steadyLoad(port: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  let running = true;
  let ok = 0;
  const failures: string[] = [];
  const lane = async () => {
    while (running) {
      try {
        const r = await request(port, { path: '/load', agent });
        if (r.status === 200) ok++;
        else failures.push(`status ${r.status} ${r.text.trim()}`);
      } catch (err) {
        failures.push((err as NodeJS.ErrnoException).code ?? String(err));
      }
    }
  };
  const lanes = Array.from({ length: 4 }, lane);
  return {
    get ok() {
      return ok;
    },
    failures,
    async stop() {
      running = false;
      await Promise.all(lanes);
      agent.destroy();
    },
  };
}

async function dump(adminPort: number) {
  return JSON.parse((await admin(adminPort, '/config_dump')).text) as {
    version: number;
    xds: { connected: boolean; started_from: string; nacks: number; types: Record<string, { version: string; last_nack: { message: string } | null }> };
  };
}

t.test('a sidecar configured by the control plane: updates under traffic, NACK, outage, failover, persisted restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'remora-xds-'));
  const persist = join(dir, 'last-config.json');
  const groups = join(dir, 'groups');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(groups);
  const [a1, a2, b, bad] = await Promise.all([namedUpstream('a1'), namedUpstream('a2'), namedUpstream('b'), namedUpstream('bad')]);
  writeFileSync(join(groups, 'web.json'), groupConfig({ a: [a1.port] }));
  const adsPort = await freePort();
  let cp: RunningControlPlane | null = await startControlPlane({ configDir: groups, listen: `127.0.0.1:${adsPort}`, management: '127.0.0.1:0', log: silent, translator, debounceMs: 50 });
  let sidecar = await startRemora(bootstrap([`127.0.0.1:${adsPort}`], persist));
  t.teardown(async () => {
    await sidecar.stop();
    await cp?.stop();
    await Promise.all([a1, a2, b, bad].map((u) => u.close()));
    rmSync(dir, { recursive: true, force: true });
  });
  const port = sidecar.ports.main;
  t.ok(port > 0, `the listener from the control plane is bound (port ${port})`);
  const first = await request(port, { agent: false });
  t.equal(first.headers['x-upstream'], 'a1', 'traffic reaches cluster a from the initial xDS config');
  let d = await dump(sidecar.adminPort);
  t.equal(d.xds.connected, true, '/config_dump shows the control-plane connection');
  t.equal(d.xds.started_from, 'control-plane', 'and where the first config came from');

  // Updates under steady traffic.
  const load = steadyLoad(port);
  await until('load running', async () => load.ok >= 20);
  writeFileSync(join(groups, 'web.json'), groupConfig({ a: [a1.port], header: 'v2' }));
  await until('route change applied', async () => (await request(port, { agent: false })).headers['x-version'] === 'v2');
  t.pass('a route change is applied');
  writeFileSync(join(groups, 'web.json'), groupConfig({ a: [a1.port], header: 'v3', b: b.port }));
  await until('new cluster applied', async () => (await request(port, { path: '/b/x', agent: false })).headers['x-upstream'] === 'b');
  t.pass('a new cluster (and the route to it) is applied');
  writeFileSync(join(groups, 'web.json'), groupConfig({ a: [a2.port], header: 'v4', b: b.port }));
  await until('endpoint change applied', async () => (await request(port, { agent: false })).headers['x-upstream'] === 'a2');
  t.pass('an endpoint change is applied');
  await sleep(200);
  await load.stop();
  t.ok(load.ok >= 50, `requests kept flowing during the updates (${load.ok})`);
  t.same(load.failures, [], 'no request failed across the three updates');

  // An update the sidecar cannot take: NACKed with the field's name, old version serves.
  writeFileSync(join(groups, 'web.json'), groupConfig({ a: [a2.port], header: 'v5', b: b.port, nackMe: bad.port }));
  await until('NACK recorded', async () => (await dump(sidecar.adminPort)).xds.nacks >= 1);
  d = await dump(sidecar.adminPort);
  const nack = d.xds.types.Cluster?.last_nack?.message ?? '';
  t.match(nack, /nack-me.*lb_subset_config/, `the sidecar's NACK names the cluster and the field (${nack})`);
  const nodes = cp.listNodes();
  const cdsStatus = JSON.stringify(nodes);
  t.match(cdsStatus, /lb_subset_config/, 'the control plane shows the NACK for the node');
  // Envoy's ADS semantics: only the bad cluster is rejected. The route configuration of
  // the same push is valid on its own and applied (a route to the rejected cluster would
  // answer 503 NC: test/integration/xds-ads.test.ts; docs/xds.md, ADS semantics).
  await until('route configuration v5 applied', async () => (await request(port, { agent: false })).headers['x-version'] === 'v5');
  t.pass('the valid resources of the push are applied (route configuration v5), traffic flows');
  t.match((await admin(sidecar.adminPort, '/metrics')).text, /remora_xds_updates_total\{result="nack"\} [1-9]/, 'the NACK is counted in /metrics');

  // A listener moved onto a port another process holds: NACKed by the listener's name
  // (the workers' SO_REUSEPORT sockets would otherwise share the port silently).
  const squatter = http.createServer();
  await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
  const busy = (squatter.address() as import('node:net').AddressInfo).port;
  writeFileSync(join(groups, 'web.json'), groupConfig({ a: [a2.port], header: 'v5', b: b.port, listenerPort: busy }));
  await until('port NACK recorded', async () => ((await dump(sidecar.adminPort)).xds.types.Listener?.last_nack?.message ?? '').includes(String(busy)));
  const portNack = (await dump(sidecar.adminPort)).xds.types.Listener?.last_nack?.message ?? '';
  t.match(portNack, new RegExp(`Listener "main" port: cannot bind 127\\.0\\.0\\.1:${busy}`), `the NACK names the listener and the busy port (${portNack})`);
  // (The route configuration of the same push is a resource of its own and valid: it may apply.)
  t.equal((await request(port, { agent: false })).status, 200, 'traffic continues on the old port');
  t.equal(JSON.parse((await admin(sidecar.adminPort, '/config_dump')).text).bound_ports.main, port, '/config_dump still shows the old port bound');
  await new Promise<void>((r) => squatter.close(() => r()));

  // Outage: traffic continues; the sidecar reconnects and catches up.
  writeFileSync(join(groups, 'web.json'), groupConfig({ a: [a2.port], header: 'v6', b: b.port }));
  await until('v6 applied', async () => (await request(port, { agent: false })).headers['x-version'] === 'v6');
  await cp.stop();
  cp = null;
  await until('disconnected', async () => !(await dump(sidecar.adminPort)).xds.connected);
  const during = await Promise.all(Array.from({ length: 10 }, () => request(port, { agent: false })));
  t.ok(during.every((r) => r.status === 200 && r.headers['x-version'] === 'v6'), 'with the control plane down, traffic flows on the last config');
  t.equal((await admin(sidecar.adminPort, '/ready')).status, 200, '/ready stays 200 (it is about serving)');
  t.match((await admin(sidecar.adminPort, '/metrics')).text, /remora_xds_connected 0/, 'remora_xds_connected is 0');
  writeFileSync(join(groups, 'web.json'), groupConfig({ a: [a1.port], header: 'v7', b: b.port }));
  cp = await startControlPlane({ configDir: groups, listen: `127.0.0.1:${adsPort}`, management: '127.0.0.1:0', log: silent, translator, debounceMs: 50 });
  await until('reconnected and caught up', async () => (await request(port, { agent: false })).headers['x-version'] === 'v7', 40_000);
  t.pass('after the control plane returns, the sidecar reconnects and applies what changed meanwhile');
  t.ok(existsSync(persist), 'the applied config was persisted');

  // Failover: a second sidecar whose first address is dead.
  const dead = await deadPort();
  const second = await startRemora(bootstrap([`127.0.0.1:${dead}`, `127.0.0.1:${adsPort}`], join(dir, 'second.json')));
  t.teardown(() => second.stop());
  t.equal((await request(second.ports.main, { agent: false })).headers['x-version'], 'v7', 'a sidecar fails over to the second control-plane address');
  await second.stop();

  // Restart while no control plane answers: the persisted config serves.
  await sidecar.stop();
  await cp.stop();
  cp = null;
  sidecar = await startRemora(bootstrap([`127.0.0.1:${adsPort}`], persist, 800));
  t.match(sidecar.output(), /"source":"xds \(persisted\)"/, 'with no control plane, the sidecar starts from the persisted config');
  const fromDisk = await request(sidecar.ports.main, { agent: false });
  t.equal(fromDisk.status, 200, 'and serves traffic');
  t.equal(fromDisk.headers['x-version'], 'v7', 'with the last applied version');
});

t.test('mTLS over xDS: TLS listener, authorization and XFCC in, TLS cluster out', async (t) => {
  const pki = new TestPki('xds-mtls');
  const SERVER_ID = 'spiffe://cluster.local/ns/app/sa/inbound';
  const PAYMENTS_ID = 'spiffe://cluster.local/ns/payments/sa/api';
  pki.ca('mesh-ca');
  pki.leaf('server', 'mesh-ca', { uri: SERVER_ID, dns: 'inbound.local' });
  pki.leaf('payments', 'mesh-ca', { uri: PAYMENTS_ID });
  pki.leaf('batch', 'mesh-ca', { uri: 'spiffe://cluster.local/ns/payments/sa/batch' });
  pki.leaf('app', 'mesh-ca', { uri: 'spiffe://cluster.local/ns/app/sa/app' });
  const pem = (name: string) => readFileSync(pki.file(`${name}.pem`));
  // The app behind the sidecar speaks TLS and answers with the headers it received.
  const app = https.createServer({ cert: pem('app'), key: readFileSync(pki.file('app.key')) }, (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.headers));
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  const appPort = (app.address() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), 'remora-xds-mtls-'));
  writeFileSync(join(dir, 'web.json'), JSON.stringify({
    listeners: [{
      name: 'inbound',
      address: '127.0.0.1',
      port: 0,
      tls: { cert_file: pki.file('server.pem'), key_file: pki.file('server.key'), ca_file: pki.file('mesh-ca.pem') },
      authorization: { allow: ['spiffe://cluster.local/ns/payments/*'], deny: ['spiffe://cluster.local/ns/payments/sa/batch'] },
      virtual_hosts: [{
        name: 'app',
        domains: ['*'],
        routes: [
          { name: 'admin', match: { prefix: '/admin' }, route: { cluster: 'app' }, authorization: { allow: ['spiffe://cluster.local/ns/ops/*'] } },
          { name: 'all', match: { prefix: '/' }, route: { cluster: 'app' } },
        ],
      }],
    }],
    clusters: [{
      name: 'app',
      endpoints: [{ address: '127.0.0.1', port: appPort }],
      tls: { ca_file: pki.file('mesh-ca.pem'), verify_subject_alt_names: ['spiffe://cluster.local/ns/app/sa/app'] },
    }],
  }));
  const adsPort = await freePort();
  const cp = await startControlPlane({ configDir: dir, listen: `127.0.0.1:${adsPort}`, management: '127.0.0.1:0', log: silent, debounceMs: 50 });
  const sidecar = await startRemora({ ...bootstrap([`127.0.0.1:${adsPort}`], join(dir, 'last.json')), workers: 1 });
  t.teardown(async () => {
    await sidecar.stop();
    await cp.stop();
    await new Promise((resolve) => app.close(resolve));
    rmSync(dir, { recursive: true, force: true });
    pki.remove();
  });

  const call = (client: string, path: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port: sidecar.ports.inbound, path, ca: pem('mesh-ca'), cert: pem(client), key: readFileSync(pki.file(`${client}.key`)), agent: false, servername: 'inbound.local' },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, text }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  const ok = await call('payments', '/orders');
  t.equal(ok.status, 200, `an allowed identity is served over the TLS cluster (${ok.text.slice(0, 200)})`);
  const xfcc = String((JSON.parse(ok.text) as Record<string, string>)['x-forwarded-client-cert']);
  t.match(xfcc, new RegExp(`^By=${SERVER_ID};Hash=[0-9a-f]{64};Subject="[^"]+";URI=${PAYMENTS_ID}$`), 'XFCC sanitize_set came through xDS');
  t.equal((await call('batch', '/orders')).status, 403, "the listener's deny pattern came through xDS");
  t.equal((await call('payments', '/admin')).status, 403, "the route's allow list came through xDS");
  t.equal((await dump(sidecar.adminPort)).xds.nacks, 0, 'nothing was NACKed');
});

/** `remora run --config` on an xDS bootstrap, without waiting for "remora ready": the
 *  waiting phase is what is under test. Resolves once it logs the wait (with its ports). */
async function startWaitingSidecar(config: unknown, dir: string) {
  const file = join(dir, `bootstrap-${Date.now()}.json`);
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(process.execPath, [BIN, 'run', '--config', file], {
    env: { ...process.env, REMORA_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() }));
  });
  const line = (re: RegExp) => out.split('\n').find((l) => re.test(l));
  await until('the sidecar logs that it waits for the first config', async () => line(/waiting for the first config/) !== undefined || child.exitCode !== null, 15_000);
  const waitingLine = line(/waiting for the first config/);
  if (waitingLine === undefined) throw new Error(`the sidecar exited before waiting; output:\n${out}`);
  const logged = JSON.parse(waitingLine) as { admin: number; probes?: number };
  return {
    child,
    exited,
    admin: logged.admin,
    probes: logged.probes,
    output: () => out,
    line,
    /** SIGTERM; SIGKILL after 8 s (the test then fails on the signal). */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid!, 'SIGTERM');
        const timer = setTimeout(() => child.exitCode === null && process.kill(child.pid!, 'SIGKILL'), 8000);
        const r = await exited;
        clearTimeout(timer);
        return r;
      }
      return exited;
    },
  };
}

t.test('an xDS sidecar waiting for its first config answers /live and /ready (with the reason) until it arrives', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'remora-xds-wait-'));
  const groups = join(dir, 'groups');
  mkdirSync(groups);
  const up = await namedUpstream('a1');
  writeFileSync(join(groups, 'web.json'), groupConfig({ a: [up.port] }));
  const adsPort = await freePort(); // nothing listens there yet
  let cp: RunningControlPlane | null = null;
  const config = {
    ...bootstrap([`127.0.0.1:${adsPort}`], join(dir, 'never-written.json')),
    workers: 1,
    probes: { address: '127.0.0.1', port: 0 },
    drain: { delay_ms: 0, timeout_ms: 2000 },
  };
  const sidecar = await startWaitingSidecar({ ...config, xds: { ...config.xds, persist_path: undefined } }, dir);
  t.teardown(async () => {
    await sidecar.stop();
    await cp?.stop();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  });
  t.ok(sidecar.admin > 0 && sidecar.probes !== undefined && sidecar.probes > 0, `the wait is logged with the admin and probes ports (${sidecar.admin}, ${sidecar.probes})`);

  const live = await admin(sidecar.admin, '/live');
  t.equal(live.status, 200, `/live answers 200 while waiting (got ${live.status} ${live.text})`);
  const ready = await admin(sidecar.admin, '/ready');
  t.equal(ready.status, 503, `/ready answers 503 while waiting (got ${ready.status})`);
  t.match(ready.text, new RegExp(`waiting for the first config from the control plane \\(xds: connecting to 127\\.0\\.0\\.1:${adsPort}`), `/ready names the wait and the address (${ready.text.trim()})`);
  await until('/ready shows the last connection error', async () => (await admin(sidecar.admin, '/ready')).text.includes('last error:'));
  t.pass(`/ready gives the last connection error (${(await admin(sidecar.admin, '/ready')).text.trim()})`);
  t.equal((await admin(sidecar.probes!, '/live')).status, 200, 'the probes server answers /live 200 too');
  const probesReady = await admin(sidecar.probes!, '/ready');
  t.equal(probesReady.status, 503, `and /ready 503 (${probesReady.text.trim()})`);
  t.equal((await admin(sidecar.probes!, '/config_dump')).status, 404, 'the probes server still answers only the probe paths');
  const waitingDump = JSON.parse((await admin(sidecar.admin, '/config_dump')).text) as { phase: string; xds: { connected: boolean; servers: string[] } };
  t.equal(waitingDump.phase, 'waiting_for_first_config', '/config_dump shows the waiting phase');
  const rebound = await request(sidecar.admin, { path: '/config_dump', headers: { host: 'evil.example' }, agent: false });
  t.equal(rebound.status, 403, `while waiting too, a Host that is not an IP or localhost is refused (${rebound.status} ${rebound.text.trim()})`);
  t.same([waitingDump.xds.connected, waitingDump.xds.servers], [false, [`127.0.0.1:${adsPort}`]], 'and the xDS state');
  t.match((await admin(sidecar.admin, '/metrics')).text, /remora_xds_connected 0/, '/metrics shows remora_xds_connected 0');

  // The control plane comes up: the same ports go over to the full admin server, and no
  // probe meets a closed port on the way.
  const refused: string[] = [];
  let probing = true;
  const prober = (async () => {
    while (probing) {
      for (const port of [sidecar.admin, sidecar.probes!]) {
        try {
          await admin(port, '/live');
        } catch (err) {
          refused.push(`${port}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        }
      }
      await sleep(5);
    }
  })();
  cp = await startControlPlane({ configDir: groups, listen: `127.0.0.1:${adsPort}`, management: '127.0.0.1:0', log: silent, translator, debounceMs: 50 });
  await until('/ready answers 200 once the first config is served', async () => (await admin(sidecar.admin, '/ready')).status === 200, 40_000);
  probing = false;
  await prober;
  t.same(refused, [], 'no /live probe failed while the admin and probes ports changed hands');
  t.equal((await admin(sidecar.probes!, '/ready')).status, 200, 'the probes server answers /ready 200 too');
  const readyLine = JSON.parse(sidecar.line(/"msg":"remora ready"/) ?? '{}') as { admin?: number; probes?: number; listeners?: Record<string, number> };
  t.same([readyLine.admin, readyLine.probes], [sidecar.admin, sidecar.probes], 'Remora serves admin and probes on the ports of the waiting phase');
  const traffic = await request(readyLine.listeners!.main, { agent: false });
  t.equal(traffic.headers['x-upstream'], 'a1', 'traffic flows on the config from the control plane');
  const dumped = await dump(sidecar.admin);
  t.same([dumped.xds.connected, dumped.xds.started_from], [true, 'control-plane'], '/config_dump is the full one now');
  const stopped = await sidecar.stop();
  t.same([stopped.code, stopped.signal], [0, null], 'SIGTERM then drains and exits 0');
});

t.test('SIGTERM while an xDS sidecar waits for its first config exits 0 at once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'remora-xds-wait-stop-'));
  const sidecar = await startWaitingSidecar({ ...bootstrap([`127.0.0.1:${await freePort()}`], join(dir, 'none.json')), workers: 1 }, dir);
  t.teardown(async () => {
    await sidecar.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  t.equal((await admin(sidecar.admin, '/live')).status, 200, '/live answers while waiting');
  const sent = Date.now();
  const stopped = await sidecar.stop();
  t.same([stopped.code, stopped.signal], [0, null], `it exits 0 on SIGTERM (got code ${stopped.code}, signal ${stopped.signal}; output:\n${sidecar.output()})`);
  t.ok(stopped.at - sent < 3000, `and promptly (${stopped.at - sent} ms)`);
  await t.rejects(admin(sidecar.admin, '/live'), 'the admin port is closed afterwards');
});

t.teardown(() => http.globalAgent.destroy());
