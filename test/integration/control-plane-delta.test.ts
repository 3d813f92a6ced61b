// Incremental (delta) xDS on the reference control plane (src/control-plane/ads-delta.ts):
// a raw grpc-js DeltaAggregatedResources client gets every listener and cluster of its
// group on a wildcard subscription, each with a version; an edit of the group file that
// changes one cluster's endpoints sends that one endpoint list and nothing else; a
// cluster taken out of the file comes back in removed_resources; a new stream that says
// which versions it holds (initial_resource_versions) gets only what differs; a NACK is
// recorded (ListNodes). Then Remora's own sidecar with xds.api_type delta against it:
// traffic, and an endpoint change applied. Everything on 127.0.0.1 port 0.

import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { startControlPlane } from '../../src/control-plane/server.js';
import { loadXdsProtos, TypeUrl, type ProtoObject } from '../../src/xds/protos.js';
import { request, startRemora, startUpstream, waitUntil } from '../helpers/remora.js';

const xds = loadXdsProtos();

const group = (appPort: number, extra: boolean): string => JSON.stringify({
  listeners: [{ name: 'inbound', address: '127.0.0.1', port: 0, virtual_hosts: [{ name: 'app', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] }],
  clusters: [
    { name: 'app', endpoints: [{ address: '127.0.0.1', port: appPort }] },
    ...(extra ? [{ name: 'extra', endpoints: [{ address: '127.0.0.1', port: 9 }] }] : []),
  ],
});

interface DeltaResponse { type_url: string; nonce: string; system_version_info: string; resources: { name: string; version: string }[]; removed_resources: string[] }

/** A raw delta stream: send requests, read responses in order. */
function deltaStream(port: number) {
  const client = new xds.ads(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    DeltaAggregatedResources(): grpc.ClientDuplexStream<ProtoObject, DeltaResponse>;
  };
  const stream = client.DeltaAggregatedResources();
  const inbox: DeltaResponse[] = [];
  const waiters: (() => void)[] = [];
  stream.on('data', (r: DeltaResponse) => {
    // Empty repeated fields are not decoded (proto-loader, defaults off).
    inbox.push({ ...r, resources: r.resources ?? [], removed_resources: r.removed_resources ?? [] });
    for (const w of waiters.splice(0)) w();
  });
  stream.on('error', () => {});
  return {
    send: (req: ProtoObject) => stream.write(req),
    async next(typeUrl: string, ms = 5000): Promise<DeltaResponse> {
      const deadline = Date.now() + ms;
      for (;;) {
        const i = inbox.findIndex((r) => r.type_url === typeUrl);
        if (i >= 0) return inbox.splice(i, 1)[0];
        if (Date.now() > deadline) throw new Error(`no ${typeUrl} response in ${ms} ms`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
    },
    pending: () => inbox.length,
    close() {
      stream.cancel();
      client.close();
    },
  };
}

t.test('the control plane serves delta xDS', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'remora-cp-delta-'));
  const file = join(dir, 'web.json');
  writeFileSync(file, group(8080, true));
  const cp = await startControlPlane({ configDir: dir, listen: '127.0.0.1:0', management: '127.0.0.1:0', log: pino({ level: 'silent' }), rescanIntervalMs: 0, debounceMs: 20 });
  const s = deltaStream(cp.listenPort);
  t.teardown(async () => {
    s.close();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  s.send({ node: { id: 'n1', cluster: 'web' }, type_url: TypeUrl.Cluster, resource_names_subscribe: ['*'] });
  const cds = await s.next(TypeUrl.Cluster);
  t.same(cds.resources.map((r) => r.name).sort(), ['app', 'extra'], 'a wildcard subscription gets every cluster');
  t.ok(cds.resources.every((r) => /^[0-9a-f]{16}$/.test(r.version)), 'each with its version');
  s.send({ type_url: TypeUrl.Cluster, response_nonce: cds.nonce });
  s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: ['app', 'extra'] });
  const eds = await s.next(TypeUrl.ClusterLoadAssignment);
  t.same(eds.resources.map((r) => r.name).sort(), ['app', 'extra'], 'endpoint lists by name');
  s.send({ type_url: TypeUrl.ClusterLoadAssignment, response_nonce: eds.nonce });
  const appEds = eds.resources.find((r) => r.name === 'app')!.version;

  // One endpoint changes: only that endpoint list is sent.
  writeFileSync(file, group(8081, true));
  cp.rescan();
  const eds2 = await s.next(TypeUrl.ClusterLoadAssignment);
  t.same(eds2.resources.map((r) => r.name), ['app'], 'an endpoint change sends that endpoint list only');
  t.not(eds2.resources[0].version, appEds, 'with a new version');
  t.same(eds2.removed_resources, [], 'and removes nothing');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(s.pending(), 0, 'no cluster response: the clusters did not change');
  s.send({ type_url: TypeUrl.ClusterLoadAssignment, response_nonce: eds2.nonce, error_detail: { code: 3, message: 'test rejects it' } });
  const nackOf = () => cp.listNodes()[0]?.types.find((x) => x.typeUrl === TypeUrl.ClusterLoadAssignment)?.lastNack?.errorMessage;
  await waitUntil('the NACK to be recorded', async () => nackOf() === 'test rejects it', 5000);
  t.equal(nackOf(), 'test rejects it', 'a NACK is recorded (ListNodes)');

  // A cluster goes: it is removed by name.
  writeFileSync(file, group(8081, false));
  cp.rescan();
  const cds2 = await s.next(TypeUrl.Cluster);
  t.same([cds2.resources.length, cds2.removed_resources], [0, ['extra']], 'a cluster taken out comes back in removed_resources');
  const eds3 = await s.next(TypeUrl.ClusterLoadAssignment);
  t.same(eds3.removed_resources, ['extra'], 'and its endpoint list too');

  // A new stream that holds the current versions gets nothing it has.
  const current = new Map(cds.resources.map((r) => [r.name, r.version]));
  const fresh = deltaStream(cp.listenPort);
  t.teardown(() => fresh.close());
  fresh.send({ node: { id: 'n2', cluster: 'web' }, type_url: TypeUrl.Cluster, resource_names_subscribe: ['*'], initial_resource_versions: Object.fromEntries(current) });
  const again = await fresh.next(TypeUrl.Cluster);
  t.same([again.resources.map((r) => r.name), again.removed_resources], [[], ['extra']], 'a stream holding the current versions gets only the removal');
});

t.test('Remora\'s sidecar in delta mode against the reference control plane', async (t) => {
  const [a, b] = await Promise.all([startUpstream((_q, r) => r.end('a')), startUpstream((_q, r) => r.end('b'))]);
  const dir = mkdtempSync(join(tmpdir(), 'remora-cp-delta-run-'));
  const file = join(dir, 'web.json');
  writeFileSync(file, group(a.port, false));
  const cp = await startControlPlane({ configDir: dir, listen: '127.0.0.1:0', management: '127.0.0.1:0', log: pino({ level: 'silent' }), rescanIntervalMs: 0, debounceMs: 20 });
  const sidecar = await startRemora({
    workers: 1,
    admin: { address: '127.0.0.1', port: 0 },
    xds: { servers: [`127.0.0.1:${cp.listenPort}`], node: { id: 'delta-1', cluster: 'web' }, initial_fetch_timeout_ms: 10_000, api_type: 'delta' },
  });
  t.teardown(async () => {
    await sidecar.stop();
    await cp.stop();
    await Promise.all([a.close(), b.close()]);
    rmSync(dir, { recursive: true, force: true });
  });
  t.equal((await request(sidecar.ports.inbound, { agent: false })).text, 'a', 'traffic on the config served over delta xDS');
  writeFileSync(file, group(b.port, false));
  cp.rescan();
  await waitUntil('the endpoint change', async () => (await request(sidecar.ports.inbound, { agent: false })).text === 'b', 10_000, 100);
  t.pass('an endpoint change reaches the sidecar');
  t.ok(cp.listNodes()[0]?.types.every((x) => x.lastNack === null), 'nothing NACKed');
});
