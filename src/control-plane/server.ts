// The reference control plane in one call: load and watch the directory of group
// configs, serve ADS on `listen` and the management API on `management`; with `ca`, the
// mesh CA too, on the ADS server (src/control-plane/mesh-ca.ts, loaded only then); with
// `tls` as well, the ADS port speaks TLS with a certificate from that CA (tls.ts) and
// serves each node only the group its caller's identity may have (xds-access.ts).
// `remora control-plane` (src/cli/control-plane-command.ts) and the tests use it.

import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../core/log.js';
import { loadXdsProtos } from '../xds/protos.js';
import * as xdsResources from '../xds/encode.js';
import { defaultControlPlaneIdentity, parseSpiffeId } from '../core/spiffe.js';
import { AdsService, type AdsGuard, type NodeStatus } from './ads.js';
import { ControlPlaneTls } from './tls.js';
import { listenOwned, type OwnedListener } from './listener.js';
import { XdsAccess } from './xds-access.js';
import type { MeshCa, MeshCaOptions } from './mesh-ca.js';
import { loadControlPlaneProtos, managementHandlers, pushSnapshot, type PushOutcome } from './management.js';
import { SnapshotStore, type GroupInfo, type XdsTranslator } from './snapshots.js';

export { NO_GROUP_VERSION, type NackRecord, type NodeStatus, type TypeStatus } from './ads.js';
export { loadControlPlaneProtos, meshCaStatsMessage, nodeMessage, type ControlPlaneProtos, type PushOutcome } from './management.js';
export { DEFAULT_GROUP, GRPC_GROUP_PREFIX, PUSH_ORDER, type GroupInfo, type Snapshot, type XdsTranslator } from './snapshots.js';

export const DEFAULT_LISTEN = '127.0.0.1:18000';
export const DEFAULT_MANAGEMENT = '127.0.0.1:18001';

export interface ControlPlaneOptions {
  /** Directory of group configs (`<group>.yaml|.yml|.json`). */
  readonly configDir: string;
  /** ADS address, HOST:PORT (port 0 picks one). Default 127.0.0.1:18000. */
  readonly listen?: string;
  /** Management API address, HOST:PORT (port 0 picks one). Default 127.0.0.1:18001. */
  readonly management?: string;
  readonly log: Logger;
  /** Serve every cluster as EDS. Default true. */
  readonly edsForAllClusters?: boolean;
  /** Debounce of directory events. Default 200 ms. */
  readonly debounceMs?: number;
  /** Periodic full rescan of the directory. Default 10000 ms; 0 = off. */
  readonly rescanIntervalMs?: number;
  /** The config → xDS translation. Default: src/xds/encode.ts. */
  readonly translator?: XdsTranslator;
  /** Serve the mesh CA (remora.control.v1.MeshCertificateService) on the ADS port. */
  readonly ca?: MeshCaOptions;
  /** TLS on the ADS port (needs `ca`): the server certificate is the mesh CA's, for
   *  `serverIdentity`; xDS callers must prove an identity. */
  readonly tls?: ControlPlaneTlsOptions;
}

export interface ControlPlaneTlsOptions {
  /** The control plane's SPIFFE ID. Default spiffe://<td>/ns/remora-system/sa/remora-control-plane. */
  readonly serverIdentity?: string;
  /** Lifetime of the server certificate, seconds (renewed at half). Default 24 h. */
  readonly certTtlSeconds?: number;
  /** Lines `<group> <spiffe-id>` naming who may be served a group (xds-access.ts). */
  readonly accessFile?: string;
}

export interface RunningControlPlane {
  /** The ADS port bound. */
  readonly listenPort: number;
  /** The management API port bound. */
  readonly managementPort: number;
  /** DiscoveryResponse.control_plane.identifier of this replica. */
  readonly identifier: string;
  /** The mesh CA (trust domain, CA certificate, authentication methods, issuance and
   *  refusal counts), when `ca` was given. */
  readonly meshCa: Pick<MeshCa, 'trustDomain' | 'caCertPem' | 'authnMethods' | 'stats'> | null;
  /** With TLS: the server's SPIFFE ID and its certificate's expiry. */
  readonly tls: Pick<ControlPlaneTls, 'serverIdentity' | 'notAfter' | 'renewals'> | null;
  /** xDS streams refused since start, by reason (with TLS). */
  xdsRefusals(): Record<string, number>;
  /** Groups with their current snapshot (null while a group has no valid config). */
  groups(): GroupInfo[];
  /** What ListNodes returns, as plain objects. `group` filters. */
  listNodes(group?: string): NodeStatus[];
  /** What PushSnapshot does, without gRPC. */
  pushSnapshot(group: string, configText: string): PushOutcome;
  /** Re-reads the directory now (otherwise done on watch events and periodically). */
  rescan(): void;
  /** Ends every ADS stream with UNAVAILABLE (nodes reconnect elsewhere), stops both
   *  servers and the watch. Idempotent. */
  stop(): Promise<void>;
}

/** `HOST:PORT` or `[IPv6]:PORT`; returns the string grpc-js binds, or throws. */
export function checkAddress(what: string, address: string): string {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(address);
  if (m === null || Number(m[2]) > 65535) throw new Error(`${what} must be HOST:PORT or [IPv6]:PORT (got "${address}")`);
  return address;
}

/** Stops a server after `graceMs`: time for the statuses just written (UNAVAILABLE on
 *  every ADS stream) and unary calls in flight to go out. Then forceShutdown, which
 *  destroys every HTTP/2 session: a graceful tryShutdown only half-closes idle ones and
 *  waits for the client to close its side, which an idle client may never do, and the
 *  process would not exit. Last, the listener destroys connections that were no session
 *  yet (a TLS handshake in progress), which forceShutdown does not see. */
async function shutdown(server: grpc.Server, listener: OwnedListener, graceMs: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, graceMs));
  server.forceShutdown();
  await listener.close();
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<RunningControlPlane> {
  const { log } = opts;
  const listen = checkAddress('listen', opts.listen ?? DEFAULT_LISTEN);
  const management = checkAddress('management', opts.management ?? DEFAULT_MANAGEMENT);
  const xds = loadXdsProtos();
  const control = loadControlPlaneProtos();
  const translator: XdsTranslator = opts.translator ?? xdsResources;
  // The CA first: a bad CA directory fails the start before anything is bound.
  const meshCa = opts.ca !== undefined ? await (await import('./mesh-ca.js')).MeshCa.open(opts.ca, log) : null;
  let tls: ControlPlaneTls | null = null;
  let guard: AdsGuard | null = null;
  if (opts.tls !== undefined) {
    if (meshCa === null) throw new Error('TLS on the control plane needs the mesh CA (--ca-dir): the server certificate is issued by it');
    const ca = meshCa;
    const access = new XdsAccess(opts.tls.accessFile, ca.trustDomain, log);
    const serverIdentity = opts.tls.serverIdentity ?? defaultControlPlaneIdentity(ca.trustDomain);
    const id = parseSpiffeId(serverIdentity);
    if (!id.ok) throw new Error(`--server-identity: ${id.problem}`);
    if (id.trustDomain !== ca.trustDomain) throw new Error(`--server-identity "${serverIdentity}" is not in the trust domain "${ca.trustDomain}"`);
    tls = await ControlPlaneTls.start(ca, serverIdentity, log, opts.tls.certTtlSeconds);
    guard = { authenticate: (call) => ca.authenticateCall(call), check: (ids, group) => access.check(ids, group) };
  } else if (meshCa !== null) {
    log.warn('the ADS port is plaintext (no --tls): tokens, certificates and configs cross the network in the clear and xDS is served to anyone who asks; use --tls outside local development');
  }

  const store = new SnapshotStore({
    dir: opts.configDir,
    log,
    translator,
    edsForAllClusters: opts.edsForAllClusters,
    debounceMs: opts.debounceMs,
    rescanIntervalMs: opts.rescanIntervalMs,
  });
  const ads = new AdsService(store, log, guard);
  // Load before binding: once the ADS port accepts connections (the readiness probe),
  // every valid group file is served.
  store.start();
  if (store.list().length === 0) log.warn({ dir: opts.configDir }, 'no group files (*.yaml, *.yml, *.json) in the config directory');

  const adsServer = new grpc.Server({
    // Find dead sidecars: ping idle connections; allow clients' own keepalive pings.
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  });
  adsServer.addService(xds.ads.service, ads.handlers());
  if (meshCa !== null) adsServer.addService(meshCa.service(), meshCa.handlers());
  const mgmtServer = new grpc.Server();
  mgmtServer.addService(control.ControlPlane.service, managementHandlers(store, ads, log, meshCa));

  let adsListener: OwnedListener | null = null;
  let mgmtListener: OwnedListener;
  try {
    adsListener = await listenOwned(adsServer, listen, tls?.credentials() ?? grpc.ServerCredentials.createInsecure());
    mgmtListener = await listenOwned(mgmtServer, management, grpc.ServerCredentials.createInsecure());
  } catch (err) {
    store.stop();
    tls?.close();
    adsServer.forceShutdown();
    mgmtServer.forceShutdown();
    await adsListener?.close();
    throw err;
  }
  const ownedAds = adsListener;

  let stopping: Promise<void> | null = null;
  return {
    listenPort: ownedAds.port,
    managementPort: mgmtListener.port,
    identifier: ads.identifier,
    meshCa,
    tls,
    xdsRefusals: () => ads.refusalCounts(),
    groups: () => store.list(),
    listNodes: (group) => ads.nodes(group),
    pushSnapshot: (group, text) => pushSnapshot(store, ads, log, group, text),
    rescan: () => store.rescan(),
    stop: () => {
      stopping ??= (async () => {
        store.stop();
        tls?.close();
        ads.closeAll('control plane shutting down');
        await Promise.all([shutdown(adsServer, ownedAds, 200), shutdown(mgmtServer, mgmtListener, 200)]);
        if (meshCa !== null) log.info({ mesh_ca: meshCa.stats() }, 'mesh CA counts since start');
        log.info('control plane stopped');
      })();
      return stopping;
    },
  };
}
