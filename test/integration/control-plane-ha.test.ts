// Control-plane failover under load, with TLS and short-lived mesh certificates: three
// replicas of the reference control plane run as real processes (test/helpers/
// control-plane-process.ts) on one mesh CA directory and one group directory, with TLS
// on the ADS port and Kubernetes service-account (JWT) authentication. One sidecar
// (`remora run`, xDS bootstrap listing the three) verifies them with the CA's ca.pem,
// gets 6-second certificates for spiffe://cluster.local/ns/web/sa/frontend renewed at
// half-life, and carries steady traffic to an upstream. The replica the sidecar is
// connected to is SIGKILLed, then after two renewal periods the one it moved to: this
// proves that no request fails across either crash, that the sidecar ends up on the last
// replica, that certificates keep being renewed (new serials after each crash, the last
// ones issued by the survivor) and that no sample of /config_dump ever shows an expired
// certificate. Everything on 127.0.0.1; processes ended by pid, temp directories removed.

import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/main/ports.js';
import { jwks, saClaims, signJwt, testKey } from '../helpers/jwt.js';
import { admin, request, startRemora, startUpstream, waitUntil, type RemoraProcess } from '../helpers/remora.js';
import { repoPath } from '../helpers/repo-root.js';

const ID = 'spiffe://cluster.local/ns/web/sa/frontend';
const ISS = 'https://kubernetes.default.svc.cluster.local';
const REPLICA_SCRIPT = repoPath('dist/test/helpers/control-plane-process.js');
/** Two renewal periods of a 6-second certificate renewed at half-life, and a margin. */
const PHASE_MS = 8500;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Replica {
  readonly name: string;
  readonly address: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** stderr so far: the replica's pino log lines. */
  log(): string;
  exited: Promise<void>;
}

/** Starts one replica; resolves once it printed `ready <port>`. */
async function startReplica(name: string, opts: Record<string, unknown>, port: number): Promise<Replica> {
  const child = spawn(process.execPath, [REPLICA_SCRIPT, JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`replica ${name} not ready after 30 s; stderr:\n${err}`)), 30_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (/^ready \d+$/m.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`replica ${name} exited before it was ready (code ${child.exitCode}); stderr:\n${err}`));
    });
  });
  const replica: Replica = { name, address: `127.0.0.1:${port}`, child, pid: child.pid!, log: () => err, exited };
  try {
    await ready;
  } catch (e) {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
    await exited;
    throw e;
  }
  const m = /^ready (\d+)$/m.exec(out);
  if (Number(m?.[1]) !== port) throw new Error(`replica ${name} bound ${m?.[1]}, not ${port}`);
  return replica;
}

const alive = (r: Replica): boolean => r.child.exitCode === null && r.child.signalCode === null;

/** Ends a replica by pid: SIGTERM (SIGKILL after 3 s) unless told to crash it. */
async function endReplica(r: Replica, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!alive(r)) return r.exited;
  process.kill(r.pid, signal);
  const timer = setTimeout(() => {
    if (alive(r)) process.kill(r.pid, 'SIGKILL');
  }, 3000);
  await r.exited;
  clearTimeout(timer);
}

interface Dump {
  xds?: { connected?: boolean; server?: string | null };
  mesh_identity?: { serial: string | null; not_after: string | null; last_renewal_at: string | null; consecutive_failures: number };
}

interface Sample {
  readonly at: number;
  readonly serial: string | null;
  readonly notAfter: string | null;
  readonly server: string | null;
  readonly failures: number;
}

t.test('three control-plane replicas with TLS: two crashes under load, no failed request, certificates renewed throughout', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'remora-cp-ha-'));
  const groups = join(dir, 'groups');
  const caDir = join(dir, 'ca');
  const idDir = join(dir, 'identity');
  mkdirSync(groups);

  const replicas: Replica[] = [];
  let sidecar: RemoraProcess | null = null;
  const upstream = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  let running = true;
  let sampling = true;
  const tasks: Promise<void>[] = [];
  t.teardown(async () => {
    running = false;
    sampling = false;
    await Promise.all(tasks);
    await sidecar?.stop();
    await Promise.all(replicas.map((r) => endReplica(r)));
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // Kubernetes-like service-account tokens: a JWKS for the replicas, a token for ns web /
  // sa frontend (audience remora-ca) for the sidecar.
  const clusterKey = testKey('cluster-key-1', 'RS256');
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, jwks([clusterKey]));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${signJwt(clusterKey, saClaims('web', 'frontend', { iss: ISS, aud: ['remora-ca'] }))}\n`);

  writeFileSync(join(groups, 'frontend.json'), JSON.stringify({
    listeners: [{ name: 'main', address: '127.0.0.1', port: 0, virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'all', match: { prefix: '/' }, route: { cluster: 'app' } }] }] }],
    clusters: [{ name: 'app', endpoints: [{ address: '127.0.0.1', port: upstream.port }] }],
  }));

  // The replicas: the first creates the CA (ca.key, ca.pem), the other two share it.
  const ports = [await freePort(), await freePort(), await freePort()];
  const options = (port: number) => ({
    configDir: groups,
    listen: `127.0.0.1:${port}`,
    management: '127.0.0.1:0',
    rescanIntervalMs: 0,
    ca: { dir: caDir, minTtlSeconds: 5, jwksFile, jwtIssuer: ISS },
    tls: {},
  });
  // Each one joins `replicas` as soon as it is up, so that teardown ends it whatever fails next.
  const start = async (i: number): Promise<void> => void replicas.push(await startReplica(`cp-${i}`, options(ports[i]), ports[i]));
  await start(0);
  const [r1, r2] = await Promise.allSettled([start(1), start(2)]);
  for (const r of [r1, r2]) if (r.status === 'rejected') throw r.reason;
  replicas.sort((a, b) => a.name.localeCompare(b.name));

  sidecar = await startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    xds: {
      servers: replicas.map((r) => r.address),
      node: { id: 'sidecar-ha', cluster: 'frontend' },
      initial_fetch_timeout_ms: 15_000,
      tls: { ca_file: join(caDir, 'ca.pem') },
      mesh_identity: { spiffe_id: ID, dir: idDir, lifetime_seconds: 6, renew_fraction: 0.5, token_file: tokenFile },
    },
  });
  const adminPort = sidecar.adminPort;
  const port = sidecar.ports.main;
  t.ok(port > 0, `the listener from the control plane is bound (port ${port})`);
  const dump = async (): Promise<Dump> => JSON.parse((await admin(adminPort, '/config_dump')).text) as Dump;
  const first = await dump();
  t.ok(first.mesh_identity?.serial, `a mesh certificate when ready (serial ${first.mesh_identity?.serial})`);
  t.equal((await request(port, { agent: false })).status, 200, 'a request through the sidecar gets 200');

  // Load for the whole test: keep-alive loops and one on new connections.
  const failures: string[] = [];
  let done = 0;
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const loop = async (agent: http.Agent | false): Promise<void> => {
    while (running) {
      try {
        const r = await request(port, { agent });
        if (r.status !== 200) failures.push(`status ${r.status} at ${new Date().toISOString()}`);
        done++;
      } catch (err) {
        failures.push(`${err instanceof Error ? err.message : String(err)} at ${new Date().toISOString()}`);
      }
      await sleep(3);
    }
  };
  for (const agent of [keepAlive, keepAlive, keepAlive, false as const]) tasks.push(loop(agent));

  // The sampler: what /config_dump shows about the certificate and the xDS server.
  const samples: Sample[] = [];
  const samplerErrors: string[] = [];
  tasks.push((async () => {
    while (sampling) {
      try {
        const d = await dump();
        const m = d.mesh_identity;
        samples.push({ at: Date.now(), serial: m?.serial ?? null, notAfter: m?.not_after ?? null, server: d.xds?.server ?? null, failures: m?.consecutive_failures ?? 0 });
      } catch (err) {
        samplerErrors.push(err instanceof Error ? err.message : String(err));
      }
      await sleep(300);
    }
  })());
  const serialsUpTo = (at: number): Set<string> => new Set(samples.filter((s) => s.at <= at && s.serial !== null).map((s) => s.serial!));
  const connectedTo = async (): Promise<string | null> => (await dump()).xds?.server ?? null;
  const byAddress = (address: string | null): Replica | undefined => replicas.find((r) => r.address === address);

  await waitUntil('the sidecar connected to a replica', async () => byAddress(await connectedTo()) !== undefined, 10_000, 100);
  await sleep(1000); // a few samples before the first crash

  // Crash 1: the replica the sidecar is connected to.
  const victim1 = byAddress(await connectedTo())!;
  const kill1At = Date.now();
  process.kill(victim1.pid, 'SIGKILL');
  await victim1.exited;
  t.comment(`SIGKILLed ${victim1.name} (${victim1.address}, pid ${victim1.pid}), the replica the sidecar was connected to`);
  await sleep(PHASE_MS);

  let server2: string | null = null;
  await waitUntil('the sidecar reconnected to another replica', async () => {
    server2 = await connectedTo();
    return server2 !== null && server2 !== victim1.address;
  }, 10_000, 100);
  const victim2 = byAddress(server2)!;
  t.not(victim2.address, victim1.address, `after the first crash the sidecar moved to ${victim2.name} (${victim2.address})`);

  // Crash 2: the replica it moved to.
  const kill2At = Date.now();
  process.kill(victim2.pid, 'SIGKILL');
  await victim2.exited;
  t.comment(`SIGKILLed ${victim2.name} (${victim2.address}, pid ${victim2.pid})`);
  await sleep(PHASE_MS);
  const survivor = replicas.find((r) => r !== victim1 && r !== victim2)!;
  let finalServer: string | null = null;
  await waitUntil('the sidecar connected to the last replica', async () => (finalServer = await connectedTo()) === survivor.address, 10_000, 100).catch(() => {});
  const endAt = Date.now();

  const after = await request(port, { agent: false });
  running = false;
  sampling = false;
  await Promise.all(tasks.splice(0));
  keepAlive.destroy();

  // Requests.
  t.equal(after.status, 200, `a request after the second crash: expected 200, saw ${after.status}`);
  t.ok(done > 200, `steady load ran (${done} requests)`);
  t.same(failures.slice(0, 10), [], `failed requests: expected 0, saw ${failures.length} of ${done + failures.length}`);

  // Failover.
  t.equal(finalServer, survivor.address, `the sidecar is connected to the last replica: expected ${survivor.name} (${survivor.address}), saw ${finalServer}`);
  t.ok(alive(survivor), `${survivor.name} still runs`);

  // Renewals in each phase: new serials after each crash (renewed at half of 6 s, about
  // 2.7 s apart: two or more in each phase).
  const before = serialsUpTo(kill1At);
  const upTo2 = serialsUpTo(kill2At);
  const all = serialsUpTo(endAt);
  const phase1 = [...upTo2].filter((s) => !before.has(s));
  const phase2 = [...all].filter((s) => !upTo2.has(s));
  t.ok(before.size >= 1, `serials before the first crash: ${[...before].join(', ')}`);
  t.ok(phase1.length >= 2, `new serials between the crashes: expected 2 or more, saw ${phase1.length} (${phase1.join(', ')})`);
  t.ok(phase2.length >= 2, `new serials after the second crash: expected 2 or more, saw ${phase2.length} (${phase2.join(', ')})`);
  const issued = (r: Replica): Set<string> => new Set(r.log().split('\n').flatMap((line) => {
    try {
      const l = JSON.parse(line) as { msg?: string; serial?: string };
      return l.msg === 'mesh certificate issued' && typeof l.serial === 'string' ? [l.serial] : [];
    } catch {
      return [];
    }
  }));
  const issuedBy = new Map(replicas.map((r) => [r, issued(r)]));
  t.same([...before, ...phase1, ...phase2].filter((s) => replicas.every((r) => !issuedBy.get(r)!.has(s))), [], 'every serial the sidecar showed was logged as issued by a replica');
  const fromSurvivor = phase2.filter((s) => issuedBy.get(survivor)!.has(s));
  t.ok(fromSurvivor.length >= 1, `the renewals after the second crash came from the survivor ${survivor.name} (${fromSurvivor.length} of ${phase2.length} new serials)`);

  // Never an expired certificate.
  const expired = samples.filter((s) => s.notAfter === null || Date.parse(s.notAfter) <= s.at);
  t.same(expired.map((s) => `${s.serial} not_after ${s.notAfter} sampled at ${new Date(s.at).toISOString()}`), [], `no sample saw an expired certificate (${samples.length} samples)`);
  t.ok(samples.length >= 40, `the sampler ran through the test (${samples.length} samples, every ~300 ms)`);
  t.same(samplerErrors, [], '/config_dump answered every sample');
  t.comment(`max consecutive renewal failures seen: ${Math.max(0, ...samples.map((s) => s.failures))}; servers seen: ${[...new Set(samples.map((s) => s.server))].join(', ')}`);
});
