// The reference control plane (src/control-plane/) driven by a raw grpc-js ADS client:
// the group of a node chosen by node.cluster, LDS and CDS wildcard, RDS and EDS by name,
// ACK and NACK (shown by ListNodes with the node's message, logged at warn), a stale
// nonce ignored, a changed file pushed on the open stream within a second, an invalid
// file and an invalid PushSnapshot rejected with every error by path, a node of no group
// sent empty sets and moved when a "default" group appears, a grpc- group serving API
// listeners, and a real xDS client (@grpc/grpc-js-xds) whose call through xds:///inbound
// reaches the backend; then `remora control-plane` itself in a child process: the ready
// line, and SIGTERM ends the ADS streams with UNAVAILABLE and exits 0.
//
// Everything listens on 127.0.0.1 port 0; the child is ended by its pid.

import t from 'tap';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoPath } from '../helpers/repo-root.js';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { loadXdsProtos, TypeUrl, type AnyMessage, type ProtoObject } from '../../src/xds/protos.js';
import { loadControlPlaneProtos, startControlPlane, type RunningControlPlane } from '../../src/control-plane/server.js';

const LDS = TypeUrl.Listener;
const RDS = TypeUrl.RouteConfiguration;
const CDS = TypeUrl.Cluster;
const EDS = TypeUrl.ClusterLoadAssignment;

const xds = loadXdsProtos();
const control = loadControlPlaneProtos();

// ---- configs ----------------------------------------------------------------------------

const groupConfig = (endpointPort: number, extraCluster = false): string => `
listeners:
  - name: inbound
    address: 127.0.0.1
    port: 15006
    virtual_hosts:
      - name: app
        domains: ["*"]
        routes:
          - match: { prefix: / }
            route: { cluster: app, timeout_ms: 2000 }
clusters:
  - name: app
    endpoints:
      - { address: 127.0.0.1, port: ${endpointPort} }
${extraCluster ? '  - name: extra\n    endpoints:\n      - { address: 127.0.0.1, port: 9999 }\n' : ''}`;

const INVALID = `
listeners:
  - name: inbound
    port: 70000
    virtual_hosts:
      - name: app
        domains: ["*"]
        routes:
          - match: { prefix: / }
            route: { cluster: nowhere }
clusters:
  - name: app
    endpoints: [{ address: 127.0.0.1, port: 8080 }]
`;

/** Each client owns its connections: close() ends them at once (the global subchannel
 *  pool would keep them open after the test). */
const LOCAL_POOL = { 'grpc.use_local_subchannel_pool': 1 };

// ---- a raw ADS client ---------------------------------------------------------------------

interface Response {
  version_info: string;
  type_url: string;
  nonce: string;
  resources: AnyMessage[];
  control_plane?: { identifier?: string };
}

class Ads {
  readonly client: grpc.Client;
  readonly call: grpc.ClientDuplexStream<ProtoObject, Response>;
  private readonly queue: Response[] = [];
  private wake: (() => void) | null = null;
  private sentNode = false;
  error: grpc.ServiceError | null = null;
  readonly ended: Promise<grpc.ServiceError | null>;

  constructor(
    port: number,
    private readonly node: { id: string; cluster: string },
  ) {
    this.client = new xds.ads(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), LOCAL_POOL);
    this.call = (this.client as unknown as { StreamAggregatedResources(): grpc.ClientDuplexStream<ProtoObject, Response> }).StreamAggregatedResources();
    this.call.on('data', (r: Response) => {
      this.queue.push(r);
      this.wake?.();
    });
    this.ended = new Promise((resolve) => {
      this.call.on('error', (err: grpc.ServiceError) => {
        this.error = err;
        this.wake?.();
        resolve(err);
      });
      this.call.on('end', () => resolve(null));
    });
  }

  request(typeUrl: string, o: { names?: string[]; version?: string; nonce?: string; error?: { code: number; message: string } } = {}): void {
    const req: ProtoObject = { type_url: typeUrl, resource_names: o.names ?? [], version_info: o.version ?? '', response_nonce: o.nonce ?? '' };
    if (o.error) req.error_detail = o.error;
    if (!this.sentNode) req.node = this.node; // like gRPC's xDS client: on the first request only
    this.sentNode = true;
    this.call.write(req);
  }

  ack(r: Response, names: string[] = []): void {
    this.request(r.type_url, { names, version: r.version_info, nonce: r.nonce });
  }

  async next(ms = 3000): Promise<Response> {
    const deadline = Date.now() + ms;
    while (this.queue.length === 0) {
      if (this.error) throw this.error;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no DiscoveryResponse within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
    return this.queue.shift()!;
  }

  /** The next `n` responses, by type URL. */
  async nextByType(n: number, ms = 3000): Promise<Map<string, Response>> {
    const out = new Map<string, Response>();
    for (let i = 0; i < n; i++) {
      const r = await this.next(ms);
      out.set(r.type_url, r);
    }
    return out;
  }

  pending(): number {
    return this.queue.length;
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

const decode = (r: Response): ProtoObject[] => (r.resources ?? []).map((a) => xds.decodeAny(a).message);
const names = (r: Response): string[] => decode(r).map((m) => String(m.name ?? m.cluster_name)).sort();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The RDS name a listener's HttpConnectionManager asks for. */
function rdsName(listener: ProtoObject): string {
  for (const chain of (listener.filter_chains as ProtoObject[] | undefined) ?? []) {
    for (const f of (chain.filters as ProtoObject[] | undefined) ?? []) {
      const tc = f.typed_config as AnyMessage | undefined;
      if (tc?.type_url !== TypeUrl.HttpConnectionManager) continue;
      const hcm = xds.decodeAny(tc).message;
      const rds = hcm.rds as { route_config_name?: string } | undefined;
      if (rds?.route_config_name) return rds.route_config_name;
    }
  }
  throw new Error(`listener ${String(listener.name)} has no RDS route config name`);
}

/** Endpoint ports of a ClusterLoadAssignment. */
function endpointPorts(cla: ProtoObject): number[] {
  const ports: number[] = [];
  for (const l of (cla.endpoints as ProtoObject[] | undefined) ?? []) {
    for (const e of (l.lb_endpoints as ProtoObject[] | undefined) ?? []) {
      const sa = ((e.endpoint as ProtoObject | undefined)?.address as ProtoObject | undefined)?.socket_address as ProtoObject | undefined;
      if (sa) ports.push(Number(sa.port_value));
    }
  }
  return ports;
}

// ---- management client ---------------------------------------------------------------------

interface NodeMsg {
  id: string;
  cluster: string;
  group: string;
  stream_id: string;
  types: {
    type_url: string;
    resource_names: string[];
    version_sent: string;
    version_acked: string;
    nack_count: number;
    last_nack: { version: string; nonce: string; error_message: string; error_code: number; version_kept: string; time: { seconds: string } | null } | null;
  }[];
}

function mgmt(port: number) {
  const client = new control.ControlPlane(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), LOCAL_POOL) as unknown as grpc.Client & {
    ListNodes(req: object, cb: (err: grpc.ServiceError | null, res: { nodes: NodeMsg[] }) => void): void;
    PushSnapshot(req: object, cb: (err: grpc.ServiceError | null, res: { group: string; version: string; changed: boolean; nodes_pushed: number }) => void): void;
  };
  return {
    client,
    listNodes: (group = ''): Promise<NodeMsg[]> =>
      new Promise((resolve, reject) => client.ListNodes({ group }, (err, res) => (err ? reject(err) : resolve(res.nodes)))),
    push: (group: string, config_yaml: string) =>
      new Promise<{ err: grpc.ServiceError | null; res: { version: string; changed: boolean; nodes_pushed: number } | null }>((resolve) =>
        client.PushSnapshot({ group, config_yaml }, (err, res) => resolve({ err, res: err ? null : res })),
      ),
  };
}

// ---- the tests -------------------------------------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), 'remora-cp-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'payments.yaml'), groupConfig(8080));
writeFileSync(join(dir, 'grpc-greeter.yaml'), groupConfig(50051));
writeFileSync(join(dir, 'README.txt'), 'not a group file');

const logLines: Record<string, unknown>[] = [];
const log = pino({ level: 'info' }, { write: (s: string) => void logLines.push(JSON.parse(s) as Record<string, unknown>) });

let cp: RunningControlPlane;
const clients: { close(): void }[] = [];
t.before(async () => {
  cp = await startControlPlane({
    configDir: dir,
    listen: '127.0.0.1:0',
    management: '127.0.0.1:0',
    log,
    rescanIntervalMs: 0,
  });
});
t.teardown(async () => {
  for (const c of clients) c.close();
  await cp?.stop();
});

t.test('a payments node: LDS, CDS, RDS, EDS, ACKs, NACK, stale nonce, file change, invalid file, PushSnapshot', async (t) => {
  const versionOf = (group: string): string | undefined => cp.groups().find((g) => g.name === group)?.snapshot?.version;
  t.same(cp.groups().map((g) => g.name), ['grpc-greeter', 'payments'], 'two groups from the directory (README.txt ignored)');
  const v1 = versionOf('payments')!;
  t.match(v1, /^[0-9a-f]{16}$/, 'a version from the content: 16 hex digits of its SHA-256');
  t.equal(v1, createHash('sha256').update(readFileSync(join(dir, 'payments.yaml'), 'utf8')).digest('hex').slice(0, 16), 'the version is the text\'s');
  // A second replica on the same files serves the same versions: a sidecar that fails
  // over between them sees no change.
  const replica = await startControlPlane({ configDir: dir, listen: '127.0.0.1:0', management: '127.0.0.1:0', log: pino({ level: 'silent' }), rescanIntervalMs: 0 });
  t.same(replica.groups().map((g) => [g.name, g.snapshot?.version]), cp.groups().map((g) => [g.name, g.snapshot?.version]), 'another replica: the same versions');
  await replica.stop();
  const ads = new Ads(cp.listenPort, { id: 'payments-7f9c', cluster: 'payments' });
  const m = mgmt(cp.managementPort);
  clients.push(ads, { close: () => m.client.close() });

  // LDS wildcard → the group's listener.
  ads.request(LDS);
  const lds = await ads.next();
  t.equal(lds.type_url, LDS);
  t.equal(lds.version_info, v1, 'LDS at the group\'s version');
  t.ok(lds.nonce, 'a nonce');
  t.equal(lds.control_plane?.identifier, cp.identifier, 'control_plane.identifier names the replica');
  t.same(names(lds), ['inbound'], 'the payments listener');
  const routeName = rdsName(decode(lds)[0]);
  ads.ack(lds);

  // CDS wildcard → clusters.
  ads.request(CDS);
  const cds = await ads.next();
  t.equal(cds.type_url, CDS);
  t.same(names(cds), ['app'], 'cluster app');
  ads.ack(cds);

  // RDS and EDS by name.
  ads.request(RDS, { names: [routeName] });
  const rds = await ads.next();
  t.same(names(rds), [routeName], `route configuration ${routeName}`);
  ads.ack(rds, [routeName]);
  ads.request(EDS, { names: ['app', 'not-a-cluster'] });
  const eds = await ads.next();
  t.same(names(eds), ['app'], 'only the named resources that exist');
  t.same(endpointPorts(decode(eds)[0]), [8080], 'endpoint 127.0.0.1:8080');
  ads.ack(eds, ['app', 'not-a-cluster']);
  await sleep(100);
  t.equal(ads.pending(), 0, 'ACKs get no response');

  let [node] = await m.listNodes();
  t.equal(node?.id, 'payments-7f9c');
  t.equal(node?.cluster, 'payments');
  t.equal(node?.group, 'payments');
  t.same(
    node?.types.map((x) => [x.type_url, x.version_sent, x.version_acked, x.last_nack]).sort(),
    [CDS, EDS, LDS, RDS].map((u) => [u, v1, v1, null]),
    'every type sent and ACKed at the first version, no NACK',
  );

  // The file changes: its version pushed on the open stream, clusters first.
  const changedAt = Date.now();
  writeFileSync(join(dir, 'payments.yaml'), groupConfig(8081, true));
  const first = await ads.next(1000);
  const pushed = new Map([[first.type_url, first], ...(await ads.nextByType(3, 1000))]);
  t.ok(Date.now() - changedAt < 1000, `pushed ${Date.now() - changedAt} ms after the write`);
  t.equal(first.type_url, CDS, 'CDS first (make before break)');
  t.same([...pushed.keys()], [CDS, EDS, LDS, RDS], 'order CDS, EDS, LDS, RDS');
  const v2 = versionOf('payments')!;
  t.not(v2, v1, 'new content, new version');
  for (const r of pushed.values()) t.equal(r.version_info, v2, `${r.type_url.split('.').pop()} at the second version`);
  t.same(names(pushed.get(CDS)!), ['app', 'extra'], 'the new cluster');
  t.same(endpointPorts(decode(pushed.get(EDS)!)[0]), [8081], 'the new endpoint');
  t.equal(new Set([...pushed.values()].map((r) => r.nonce)).size, 4, 'a fresh nonce each');

  // A stale nonce (the version-1 LDS nonce) is ignored.
  ads.request(LDS, { version: v1, nonce: lds.nonce });
  // ACK three types, NACK EDS version 2.
  for (const u of [CDS, LDS, RDS]) ads.ack(pushed.get(u)!, u === RDS ? [routeName] : []);
  const e2 = pushed.get(EDS)!;
  ads.request(EDS, { names: ['app', 'extra'], version: v1, nonce: e2.nonce, error: { code: 3, message: 'clusters[0].endpoints[0]: port 8081 refused by policy' } });
  // The NACK changed the EDS subscription (extra added): answered with the same version.
  const eds2 = await ads.next();
  t.equal(eds2.type_url, EDS, 'a subscription change is answered');
  t.same(names(eds2), ['app', 'extra']);
  t.equal(eds2.version_info, v2);
  await sleep(150);
  t.equal(ads.pending(), 0, 'the stale request and the ACKs get no response');

  [node] = await m.listNodes('payments');
  const byType = new Map(node!.types.map((x) => [x.type_url, x]));
  const edsState = byType.get(EDS)!;
  t.equal(edsState.version_acked, v1, 'EDS: still the first version ACKed');
  t.equal(edsState.nack_count, 1);
  t.equal(edsState.last_nack?.version, v2, 'the NACKed version');
  t.equal(edsState.last_nack?.nonce, e2.nonce, 'the NACKed nonce');
  t.equal(edsState.last_nack?.error_message, 'clusters[0].endpoints[0]: port 8081 refused by policy', "the node's error");
  t.equal(edsState.last_nack?.error_code, 3);
  t.equal(edsState.last_nack?.version_kept, v1);
  t.ok(Number(edsState.last_nack?.time?.seconds) > 0, 'the NACK time');
  t.same([byType.get(LDS)?.version_acked, byType.get(CDS)?.version_acked, byType.get(RDS)?.version_acked], [v2, v2, v2], 'the others ACKed the second version');
  const nackLog = logLines.find((l) => l.level === 40 && String(l.msg).startsWith('xDS NACK'));
  t.match(nackLog, { node: 'payments-7f9c', type: 'EDS', type_url: EDS, version: v2, error: 'clusters[0].endpoints[0]: port 8081 refused by policy' }, 'the NACK is logged at warn with node, type, version and error');
  t.same(await m.listNodes('nobody'), [], 'ListNodes filters by group');

  // An invalid file: every error logged, nothing pushed, version 2 kept.
  writeFileSync(join(dir, 'payments.yaml'), INVALID);
  await sleep(600);
  t.equal(ads.pending(), 0, 'an invalid file pushes nothing');
  const rejected = logLines.find((l) => l.level === 50 && l.group === 'payments' && String(l.msg).startsWith('group config rejected'));
  const errors = (rejected?.errors as string[] | undefined) ?? [];
  t.ok(errors.some((e) => e.startsWith('listeners[0].port:')), `the port error logged (${errors.join('; ')})`);
  t.ok(errors.some((e) => e.includes('nowhere')), 'the unknown cluster logged');
  t.equal(versionOf('payments'), v2, 'the group keeps the second version');

  // PushSnapshot: invalid → INVALID_ARGUMENT listing the errors by path; valid → its version pushed.
  const bad = await m.push('payments', INVALID);
  t.equal(bad.err?.code, grpc.status.INVALID_ARGUMENT, 'INVALID_ARGUMENT');
  t.match(bad.err?.details, /listeners\[0\]\.port: /, 'the port error by path');
  t.match(bad.err?.details, /listeners\[0\]\.virtual_hosts\[0\]\.routes\[0\]\.route\.cluster: .*nowhere/, 'the route error by path');
  t.equal(ads.pending(), 0, 'nothing pushed');
  t.equal((await m.push('bad/name', groupConfig(1))).err?.code, grpc.status.INVALID_ARGUMENT, 'a bad group name is INVALID_ARGUMENT');
  const good = await m.push('payments', groupConfig(8082));
  const v3 = createHash('sha256').update(groupConfig(8082)).digest('hex').slice(0, 16);
  t.same(good.res, { group: 'payments', version: v3, changed: true, nodes_pushed: 1 }, 'the pushed text\'s version, pushed to one node');
  const third = await ads.nextByType(4, 1000);
  t.same([...third.values()].map((r) => r.version_info), [v3, v3, v3, v3], 'that version of every type on the stream');
  t.same(names(third.get(EDS)!), ['app'], "EDS: the subscribed names that exist ('extra' is gone)");
  t.same(endpointPorts(decode(third.get(EDS)!)[0]), [8082]);
  const same = await m.push('payments', groupConfig(8082));
  t.same(same.res, { group: 'payments', version: v3, changed: false, nodes_pushed: 0 }, 'the same content again: no new version');
  // The file is fixed with the content pushed: identical to the snapshot, no new version.
  writeFileSync(join(dir, 'payments.yaml'), groupConfig(8082));
  await sleep(500);
  t.equal(ads.pending(), 0, 'a file identical to the current snapshot pushes nothing');
  t.equal(versionOf('payments'), v3);
});

t.test('a node of no group gets empty sets, and moves to "default" when it appears', async (t) => {
  const ads = new Ads(cp.listenPort, { id: 'stray-1', cluster: 'nobody' });
  clients.push(ads);
  ads.request(LDS);
  ads.request(CDS);
  const first = await ads.nextByType(2);
  for (const r of first.values()) {
    t.equal(r.version_info, '0', `${r.type_url.split('.').pop()}: version 0`);
    t.same(r.resources ?? [], [], 'no resources (an empty repeated field is absent)');
    ads.ack(r);
  }
  t.ok(
    logLines.some((l) => l.level === 40 && l.node === 'stray-1' && /no group file matches/.test(String(l.msg))),
    'a warning says the node matched no group',
  );
  const [node] = cp.listNodes().filter((n) => n.id === 'stray-1');
  t.equal(node?.group, null, 'ListNodes: no group');

  const pushed = cp.pushSnapshot('default', groupConfig(7000));
  t.match(pushed, { ok: true, version: /^[0-9a-f]{16}$/, nodesPushed: 1 }, 'PushSnapshot default reaches the stray node');
  const moved = await ads.nextByType(2, 1000);
  t.same(names(moved.get(LDS)!), ['inbound'], 'the default group listener');
  t.equal(moved.get(CDS)?.version_info, pushed.ok ? pushed.version : '?');
});

t.test('a grpc- group serves gRPC API listeners', async (t) => {
  const ads = new Ads(cp.listenPort, { id: 'greeter-client', cluster: 'grpc-greeter' });
  clients.push(ads);
  ads.request(LDS, { names: ['inbound'] });
  const lds = await ads.next();
  const [listener] = decode(lds);
  t.equal(listener?.name, 'inbound', 'named after the Remora listener (xds:///inbound)');
  t.ok(listener?.api_listener, 'an API listener');
  t.notOk(listener?.address, 'no socket address');
  const hcm = xds.decodeAny((listener!.api_listener as { api_listener: AnyMessage }).api_listener).message;
  const route = (hcm.rds as { route_config_name: string }).route_config_name;
  ads.ack(lds, ['inbound']);
  ads.request(RDS, { names: [route] });
  t.same(names(await ads.next()), [route], 'its route configuration over RDS');
});

t.test('a real xDS client (@grpc/grpc-js-xds) resolves xds:///inbound from a grpc- group and its call reaches the backend', async (t) => {
  // The backend is the control plane's own management API: the call lists the nodes, the
  // gRPC client among them.
  const pushed = cp.pushSnapshot(
    'grpc-interop',
    `listeners:
  - name: inbound
    port: 0
    virtual_hosts:
      - name: all
        domains: ["*"]
        routes:
          - match: { prefix: / }
            route: { cluster: management }
clusters:
  - name: management
    endpoints: [{ address: 127.0.0.1, port: ${cp.managementPort} }]
`,
  );
  t.match(pushed, { ok: true, version: /^[0-9a-f]{16}$/ });
  const grpcXds = await import('@grpc/grpc-js-xds');
  grpcXds.register();
  const bootstrap = {
    xds_servers: [{ server_uri: `127.0.0.1:${cp.listenPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: 'grpc-client-1', cluster: 'grpc-interop', locality: {} },
  };
  const client = new control.ControlPlane('xds:///inbound', grpc.credentials.createInsecure(), {
    'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrap),
  }) as unknown as grpc.Client & { ListNodes(req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: { nodes: NodeMsg[] }) => void): void };
  clients.push({ close: () => client.close() });
  const res = await new Promise<{ nodes: NodeMsg[] }>((resolve, reject) =>
    client.ListNodes({ group: 'grpc-interop' }, { deadline: Date.now() + 10_000 }, (err, r) => (err ? reject(err) : resolve(r))),
  );
  const me = res.nodes.find((n) => n.id === 'grpc-client-1');
  t.ok(me, 'the call reached the management API, which lists the gRPC client');
  t.same(
    me?.types.map((x) => [x.type_url, x.version_sent, x.last_nack]).sort(),
    [CDS, EDS, LDS, RDS].map((u) => [u, pushed.ok ? pushed.version : '?', null]),
    'the gRPC client subscribed to all four types and NACKed nothing',
  );
  client.close();
});

t.test('remora control-plane: ready line, SIGTERM ends the streams with UNAVAILABLE and exits 0', async (t) => {
  const usage = await runCli(['--listen', '127.0.0.1:0']);
  t.equal(usage.code, 2, 'no --config-dir: usage error, exit 2');
  t.match(usage.stderr, /--config-dir/);

  // The built module (npm test builds first), so the child needs no TypeScript loader.
  const entry = pathToFileURL(repoPath('dist/src/cli/control-plane-command.js')).href;
  const script = `import { controlPlaneCommand } from ${JSON.stringify(entry)};\nprocess.exitCode = await controlPlaneCommand(process.argv.slice(2));\n`;
  writeFileSync(join(dir, '.run.mjs'), script);
  const child = spawn(process.execPath, [...process.execArgv, join(dir, '.run.mjs'), '--config-dir', dir, '--listen', '127.0.0.1:0', '--management', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, REMORA_LOG_LEVEL: 'info' },
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  type Ready = { listen: number; management: number; groups: Record<string, string | null> };
  const readyLine = async (): Promise<Ready> => {
    while (Date.now() < deadline && child.exitCode === null) {
      const line = /\{[^\n]*"msg":"control plane ready"[^\n]*\}/.exec(stdout);
      if (line) return JSON.parse(line[0]) as Ready;
      await sleep(50);
    }
    throw new Error(`no ready line; stdout:\n${stdout}\nstderr:\n${stderr}`);
  };
  const ready = await readyLine();
  t.ok(ready.listen > 0 && ready.management > 0, `ports ${ready.listen}, ${ready.management}`);
  t.same(Object.keys(ready.groups).sort(), ['grpc-greeter', 'payments'], 'the groups loaded from the directory');
  t.ok(Object.values(ready.groups).every((v) => /^[0-9a-f]{16}$/.test(String(v))), `with their content versions: ${JSON.stringify(ready.groups)}`);

  const ads = new Ads(ready.listen, { id: 'p-2', cluster: 'payments' });
  clients.push(ads);
  ads.request(CDS);
  t.same(names(await ads.next(5000)), ['app']);
  const m = mgmt(ready.management);
  clients.push({ close: () => m.client.close() });
  t.same((await m.listNodes()).map((n) => n.id), ['p-2'], 'ListNodes on the child');

  process.kill(child.pid!, 'SIGTERM');
  const err = await ads.ended;
  t.equal(err?.code, grpc.status.UNAVAILABLE, 'the stream ends with UNAVAILABLE');
  t.equal(await exited, 0, 'exit 0');
  t.match(stdout, /"msg":"control plane stopped"/);
});

/** Runs the command in-process for usage errors (they return before starting anything). */
async function runCli(argv: string[]): Promise<{ code: number; stderr: string }> {
  const { controlPlaneCommand } = await import('../../src/cli/control-plane-command.js');
  let stderr = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await controlPlaneCommand(argv), stderr };
  } finally {
    process.stderr.write = write;
  }
}
