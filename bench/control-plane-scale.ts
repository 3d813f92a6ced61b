// The reference control plane serving many sidecars from one process: how long a push
// takes to reach all of them, and what it costs, state of the world against delta.
//
//   npm run bench:control-plane -- [--sidecars 1000] [--clusters 100]
//                                  [--endpoints-per-cluster 10] [--pushes 10]
//                                  [--connections 50] [--modes sotw,delta] [--no-pin]
//
// `remora control-plane` runs as a child process (dist, 127.0.0.1 port 0, pinned to core
// 1) serving one group, "bench": one listener, `clusters` clusters of
// `endpoints-per-cluster` endpoints each, every cluster served as EDS. This process
// (core 0) plays the sidecars: `sidecars` ADS streams over `connections` HTTP/2
// connections (grpc-js channels with their own subchannel pools), each a node of the
// group that subscribes to every listener and cluster, then to every route configuration
// and endpoint list they name, and ACKs every response, as Remora's xDS client does.
// Each push is a PushSnapshot on the management API that moves the last endpoint of one
// cluster; t0 is taken before the call, so the control plane's translation and encoding
// count. A push is done when every stream has received that cluster's new endpoint list.
// Reported per mode: the time for all sidecars to get their first complete config; per
// push the time until the median, 99th percentile and last sidecar had it (medians over
// the pushes); the bytes of resources each sidecar received per push; the control
// plane's CPU time per push (utime + stime from /proc) and its RSS. The sidecar side
// (decoding, ACKs) shares one process, so times are upper bounds for the control plane.
// Writes bench/results/control-plane-scale-<timestamp>.{json,md}.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { loadControlPlaneProtos } from '../src/control-plane/management.js';
import { loadXdsProtos, TypeUrl, type ProtoObject } from '../src/xds/protos.js';
import { MACHINE, Processes, ROOT, canPin, commandLine, log, median, percentile, pinSelf, revision, round, rssMb, runMain, sleep, waitForOutput, writeResults } from './lib/harness.js';

const { values: args } = parseArgs({
  options: {
    sidecars: { type: 'string', default: '1000' },
    clusters: { type: 'string', default: '100' },
    'endpoints-per-cluster': { type: 'string', default: '10' },
    pushes: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    modes: { type: 'string', default: 'sotw,delta' },
    'no-pin': { type: 'boolean', default: false },
  },
});
const SIDECARS = Number(args.sidecars);
const CLUSTERS = Number(args.clusters);
const PER_CLUSTER = Number(args['endpoints-per-cluster']);
const PUSHES = Number(args.pushes);
const CONNECTIONS = Number(args.connections);
const MODES = String(args.modes).split(',') as ('sotw' | 'delta')[];
const pin = canPin(args['no-pin'] === true);
const procs = new Processes(pin);
const dir = mkdtempSync(join(os.tmpdir(), 'remora-cp-scale-'));

/** The group's config; push `i` moves the last endpoint of cluster c<i % clusters>. */
function groupConfig(push: number): string {
  const moved = push % CLUSTERS;
  const clusters = Array.from({ length: CLUSTERS }, (_, c) => ({
    name: `c${c}`,
    endpoints: Array.from({ length: PER_CLUSTER }, (_, e) => ({ address: '127.0.0.1', port: 20_000 + c * PER_CLUSTER + e + (c === moved && e === PER_CLUSTER - 1 ? 5000 + push : 0) })),
  }));
  const routes = clusters.map((c) => ({ name: c.name, match: { prefix: `/${c.name}/` }, route: { cluster: c.name } }));
  return JSON.stringify({ listeners: [{ name: 'main', address: '127.0.0.1', port: 15001, virtual_hosts: [{ name: 'all', domains: ['*'], routes }] }], clusters });
}

interface Sidecar {
  /** EDS version last received per cluster, and when. */
  readonly edsAt: Map<string, { version: string; at: number }>;
  bytes: number;
  complete: number | null;
}

const xds = loadXdsProtos();

/** Opens one simulated sidecar's stream, state of the world or delta. */
function openSidecar(client: grpc.Client, id: number, delta: boolean, clusterCount: number): Sidecar {
  const sc: Sidecar = { edsAt: new Map(), bytes: 0, complete: null };
  const c = client as unknown as Record<string, () => grpc.ClientDuplexStream<ProtoObject, ProtoObject>>;
  const stream = delta ? c.DeltaAggregatedResources() : c.StreamAggregatedResources();
  stream.on('error', () => {});
  const asked = new Set<string>();
  const send = (typeUrl: string, names: string[], nonce: string, version: string, first: boolean): void => {
    const node = first && asked.size === 0 ? { node: { id: `sidecar-${id}`, cluster: 'bench' } } : {};
    stream.write(delta
      ? { ...node, type_url: typeUrl, response_nonce: nonce, ...(first ? { resource_names_subscribe: names } : {}) }
      : { ...node, type_url: typeUrl, response_nonce: nonce, version_info: version, resource_names: names });
    asked.add(typeUrl);
  };
  const names = new Map<string, string[]>();
  stream.on('data', (res: ProtoObject) => {
    const typeUrl = String(res.type_url);
    const now = performance.now();
    const items = ((res.resources as ProtoObject[] | undefined) ?? []).map((r) => (delta ? (r.resource as ProtoObject) : r));
    const version = String((delta ? res.system_version_info : res.version_info) ?? '');
    for (const any of items) sc.bytes += (any.value as Uint8Array).length;
    if (typeUrl === TypeUrl.ClusterLoadAssignment) {
      for (const any of items) {
        const cla = xds.decodeAny(any as never).message;
        sc.edsAt.set(String(cla.cluster_name), { version, at: now });
      }
      if (sc.complete === null && sc.edsAt.size === clusterCount) sc.complete = now;
    }
    send(typeUrl, names.get(typeUrl) ?? (delta ? ['*'] : []), String(res.nonce), version, false);
    // Follow what listeners and clusters name, once.
    if (typeUrl === TypeUrl.Cluster && !names.has(TypeUrl.ClusterLoadAssignment)) {
      const cls = items.map((a) => String(xds.decodeAny(a as never).message.name));
      names.set(TypeUrl.ClusterLoadAssignment, cls);
      send(TypeUrl.ClusterLoadAssignment, cls, '', '', true);
    }
    if (typeUrl === TypeUrl.Listener && !names.has(TypeUrl.RouteConfiguration)) {
      names.set(TypeUrl.RouteConfiguration, ['main']);
      send(TypeUrl.RouteConfiguration, ['main'], '', '', true);
    }
  });
  send(TypeUrl.Cluster, delta ? ['*'] : [], '', '', true);
  send(TypeUrl.Listener, delta ? ['*'] : [], '', '', true);
  return sc;
}

function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // clock ticks: 100 Hz
}

async function runMode(mode: 'sotw' | 'delta'): Promise<Record<string, unknown>> {
  const groups = mkdtempSync(join(dir, `${mode}-`));
  writeFileSync(join(groups, 'bench.json'), groupConfig(0));
  const cp = procs.start(1, process.execPath, [join(ROOT, 'bin/remora.js'), 'control-plane', '--config-dir', groups, '--listen', '127.0.0.1:0', '--management', '127.0.0.1:0']);
  const ready = await waitForOutput(cp, /"listen":(\d+),"management":(\d+)/);
  const [adsPort, mgmtPort] = [Number(ready[1]), Number(ready[2])];
  const clients = Array.from({ length: CONNECTIONS }, () => new xds.ads(`127.0.0.1:${adsPort}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
  const mgmt = new (loadControlPlaneProtos().ControlPlane)(`127.0.0.1:${mgmtPort}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    PushSnapshot(req: object, cb: (err: grpc.ServiceError | null, res: { version: string }) => void): void;
  };
  const t0 = performance.now();
  const sidecars = Array.from({ length: SIDECARS }, (_, i) => openSidecar(clients[i % CONNECTIONS], i, mode === 'delta', CLUSTERS));
  while (sidecars.some((s) => s.complete === null)) {
    if (performance.now() - t0 > 120_000) throw new Error(`${mode}: ${sidecars.filter((s) => s.complete === null).length} sidecars without a complete config after 120 s`);
    await sleep(20);
  }
  const connectMs = Math.max(...sidecars.map((s) => s.complete! - t0));
  await sleep(1000);
  const pushes: { p50: number; p99: number; max: number; bytes: number; cpuMs: number }[] = [];
  for (let i = 1; i <= PUSHES; i++) {
    const cluster = `c${i % CLUSTERS}`;
    for (const s of sidecars) s.bytes = 0;
    const cpu0 = cpuMs(cp.pid!);
    const start = performance.now();
    const version = await new Promise<string>((resolve, reject) => mgmt.PushSnapshot({ group: 'bench', config_yaml: groupConfig(i) }, (err, res) => (err ? reject(err) : resolve(res.version))));
    const got = (s: Sidecar): boolean => s.edsAt.get(cluster)?.version === version;
    while (!sidecars.every(got)) {
      if (performance.now() - start > 60_000) throw new Error(`${mode}: push ${i} not everywhere after 60 s`);
      await sleep(5);
    }
    await sleep(300); // the rest of the push (other types) and the ACKs
    const times = sidecars.map((s) => s.edsAt.get(cluster)!.at - start);
    pushes.push({ p50: percentile(times, 50), p99: percentile(times, 99), max: Math.max(...times), bytes: median(sidecars.map((s) => s.bytes)), cpuMs: cpuMs(cp.pid!) - cpu0 });
    log(`${mode} push ${i}: p50 ${round(pushes.at(-1)!.p50)} ms, p99 ${round(pushes.at(-1)!.p99)} ms, max ${round(pushes.at(-1)!.max)} ms, ${pushes.at(-1)!.bytes} B per sidecar`);
    await sleep(500);
  }
  const rss = rssMb(cp.pid!);
  for (const c of clients) c.close();
  mgmt.close();
  process.kill(cp.pid!, 'SIGINT');
  await sleep(500);
  return {
    mode,
    connect_all_ms: round(connectMs),
    push_p50_ms: round(median(pushes.map((p) => p.p50)), 1),
    push_p99_ms: round(median(pushes.map((p) => p.p99)), 1),
    push_last_ms: round(median(pushes.map((p) => p.max)), 1),
    bytes_per_sidecar_per_push: median(pushes.map((p) => p.bytes)),
    control_plane_cpu_ms_per_push: round(median(pushes.map((p) => p.cpuMs))),
    control_plane_rss_mb: rss === null ? null : round(rss, 1),
    pushes,
  };
}

runMain(async () => {
  if (pin) pinSelf(0);
  const when = new Date().toISOString();
  const results = [];
  for (const mode of MODES) results.push(await runMode(mode));
  const lines = [
    `# Control plane: ${SIDECARS} sidecars from one process`,
    '',
    `${when}, revision ${revision()}, ${MACHINE}. Command: \`${commandLine('bench:control-plane')}\`.`,
    `Group: ${CLUSTERS} clusters × ${PER_CLUSTER} endpoints (EDS), 1 listener, ${CLUSTERS} routes; ${SIDECARS} ADS streams over ${CONNECTIONS} connections; ${PUSHES} pushes, each moving one endpoint. Control plane on core 1, sidecars on core 0${pin ? '' : ' (not pinned)'}.`,
    '',
    '| mode | all sidecars configured | push p50 | push p99 | push, last sidecar | bytes per sidecar per push | control-plane CPU per push | control-plane RSS |',
    '|---|---|---|---|---|---|---|---|',
    ...results.map((r) => `| ${String(r.mode)} | ${String(r.connect_all_ms)} ms | ${String(r.push_p50_ms)} ms | ${String(r.push_p99_ms)} ms | ${String(r.push_last_ms)} ms | ${String(r.bytes_per_sidecar_per_push)} B | ${String(r.control_plane_cpu_ms_per_push)} ms | ${String(r.control_plane_rss_mb)} MB |`),
    '',
    'Push times: from the PushSnapshot call to the moment each sidecar had the moved endpoint list (medians over the pushes of each statistic). The sidecars share this process, so their decoding and ACKs are in the times.',
  ];
  writeResults('control-plane-scale', when, { when, revision: revision(), machine: MACHINE, command: commandLine('bench:control-plane'), sidecars: SIDECARS, clusters: CLUSTERS, endpoints_per_cluster: PER_CLUSTER, connections: CONNECTIONS, results }, lines);
}, () => {
  procs.stopAll();
  rmSync(dir, { recursive: true, force: true });
});
