// Pinned trust end to end: the sidecar's identity client against real control planes
// with mesh CAs (in process, their minimum validity lowered to 5 s, a test-only option).
// A rogue control plane with its own CA on the same address (standing in for DNS
// spoofing or an on-path attacker) is refused: ca.pem and cert.pem stay those of the
// first CA, the refusal is logged and counted. With trust_bundle_file naming another CA,
// nothing is accepted from the first contact; with both roots in the trust bundle (the
// documented rotation procedure) a move to the new CA goes through.

import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { startControlPlane, type RunningControlPlane } from '../../src/control-plane/server.js';
import { MeshIdentityClient } from '../../src/control/mesh-identity.js';
import { freePort } from '../../src/main/ports.js';
import { waitUntil } from '../helpers/remora.js';

const ID = 'spiffe://cluster.local/ns/web/sa/frontend';

type Line = Record<string, unknown> & { msg: string; level: number };

function capture(): { log: Logger; lines: Line[] } {
  const lines: Line[] = [];
  return { log: pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) }), lines };
}

function layout(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  mkdirSync(join(dir, 'groups'));
  return { dir, groups: join(dir, 'groups'), caA: join(dir, 'ca-a'), caB: join(dir, 'ca-b'), idDir: join(dir, 'identity') };
}

/** A control plane whose CA (in `caDir`, created when absent) signs any identity: the
 *  attacker's, or a test's stand-in for an authenticated one. */
function controlPlane(groups: string, caDir: string, port: number): Promise<RunningControlPlane> {
  return startControlPlane({ configDir: groups, listen: `127.0.0.1:${port}`, management: '127.0.0.1:0', log: capture().log, rescanIntervalMs: 0,
    ca: { dir: caDir, minTtlSeconds: 5, insecureAllowAnyIdentity: true } });
}

const read = (file: string): string => readFileSync(file, 'utf8');

/** An identity client for ID with 6-second certificates renewed at half-life, retrying
 *  within half a second, against the control plane on `port`. */
function identityClient(idDir: string, port: number, log: Logger, trustBundleFile?: string): MeshIdentityClient {
  return new MeshIdentityClient({
    identity: { spiffe_id: ID, dir: idDir, lifetime_seconds: 6, renew_fraction: 0.5, ...(trustBundleFile !== undefined ? { trust_bundle_file: trustBundleFile } : {}) },
    servers: [`127.0.0.1:${port}`],
    log,
    initialBackoffMs: 200,
    maxBackoffMs: 500,
  });
}

t.test('a rogue control plane cannot replace the pinned CA', async (t) => {
  const { dir, groups, caA, caB, idDir } = layout('remora-mesh-trust-rogue-');
  const port = await freePort();
  let cp = await controlPlane(groups, caA, port);
  const log = capture();
  const client = identityClient(idDir, port, log.log);
  t.teardown(async () => {
    client.close();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  client.start();
  t.equal(await client.whenReady(10_000), true, 'a certificate from the real CA');
  const caPem = read(join(idDir, 'ca.pem'));
  t.equal(caPem, read(join(caA, 'ca.pem')), 'ca.pem is the real CA');
  const certPem = read(join(idDir, 'cert.pem'));
  t.match(log.lines.map((l) => l.msg).join('\n'), /pinning the first CA bundle received \(trust on first use\)/);

  // The rogue takes over the address; the next renewal reaches it.
  await cp.stop();
  cp = await controlPlane(groups, caB, port);
  await waitUntil('the renewal refused', async () => client.status().trust_refusals >= 1, 15_000);
  t.equal(read(join(idDir, 'ca.pem')), caPem, 'ca.pem unchanged');
  t.equal(read(join(idDir, 'cert.pem')), certPem, 'cert.pem unchanged');
  t.equal(client.status().trust_source, 'ca.pem');
  const refusal = log.lines.find((l) => /REFUSED the issued certificate/.test(l.msg));
  t.ok(refusal, `the refusal is logged as an error; saw: ${log.lines.map((l) => l.msg).join(' | ')}`);
  t.equal(refusal?.level, 50);
  t.match(String(client.status().last_error?.message), /does not chain to the pinned roots/);
});

t.test('trust_bundle_file: only its roots, from the first contact; both roots for a rotation', async (t) => {
  const { dir, groups, caA, caB, idDir } = layout('remora-mesh-trust-bundle-');
  const port = await freePort();
  // Create both CAs (a control plane creates its CA when the directory is empty).
  await (await controlPlane(groups, caB, port)).stop();
  let cp = await controlPlane(groups, caA, port);
  const bundle = join(dir, 'trust.pem');
  writeFileSync(bundle, read(join(caB, 'ca.pem')));
  const client = identityClient(idDir, port, capture().log, bundle);
  t.teardown(async () => {
    client.close();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  client.start();
  t.equal(await client.whenReady(3000), false, 'CA A is not in the trust bundle: no certificate');
  t.ok(client.status().trust_refusals >= 1);
  t.equal(client.status().trust_source, 'trust_bundle_file');

  // Rotation step 1: the trust bundle holds both roots (the ConfigMap updated first).
  writeFileSync(bundle, read(join(caA, 'ca.pem')) + read(join(caB, 'ca.pem')));
  t.equal(await client.whenReady(10_000), true, 'A is trusted now');
  t.equal(read(join(idDir, 'ca.pem')), read(join(caA, 'ca.pem')));
  // Step 2: the control plane moves to CA B; the next renewal is accepted.
  await cp.stop();
  cp = await controlPlane(groups, caB, port);
  await waitUntil('a certificate from CA B', async () => read(join(idDir, 'ca.pem')) === read(join(caB, 'ca.pem')), 15_000);
  // Step 3: A leaves the trust bundle; B keeps working.
  writeFileSync(bundle, read(join(caB, 'ca.pem')));
  const before = client.status().last_renewal_at;
  await waitUntil('a renewal after A left the bundle', async () => client.status().last_renewal_at !== before, 15_000);
  t.equal(read(join(idDir, 'ca.pem')), read(join(caB, 'ca.pem')), 'still CA B');
});
