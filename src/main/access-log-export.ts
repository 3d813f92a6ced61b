// The main thread's end of gRPC access logs: workers post batches of encoded
// HTTPAccessLogEntry records per (cluster, log_name) (workers/access-log-grpc.ts); this
// keeps one AlsStream per pair named by the config's listeners, points it at its
// cluster's endpoints (HTTP/2, TLS when the cluster has `tls`) whenever the config, its
// DNS answers, its endpoints or its TLS files change, and stops the streams last on
// shutdown so the final entries still leave. A pair no longer named stops its stream
// and keeps its counts, so the metrics only grow.

import type * as grpc from '@grpc/grpc-js';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { encodeIdentifier, type AlsNode } from '../access-log/als-message.js';
import { AlsStream, type AlsCounters, type AlsTarget } from '../access-log/als-stream.js';
import { dataPlaneCluster, dialAddress } from '../config/dns-endpoints.js';
import type { Cluster, ConfigSnapshot, TlsMaterial } from '../config/types.js';
import type { Logger } from '../core/log.js';
import { loadGrpc } from '../core/grpc-module.js';
import { REMORA_VERSION } from '../core/version.js';
import { serverIdentityCheck } from '../upstream/upstream-tls.js';
import type { FromWorker } from '../shared/messages.js';

export interface AccessLogStreamCounters {
  readonly cluster: string;
  readonly logName: string;
  readonly counters: AlsCounters;
}

export class AccessLogExport {
  private readonly streams = new Map<string, AlsStream>();
  private readonly node: AlsNode;

  constructor(
    private readonly log: Logger,
    node: { readonly id: string; readonly cluster: string } | undefined,
    first: ConfigSnapshot,
  ) {
    this.node = { id: node?.id ?? hostname(), cluster: node?.cluster ?? '', userAgentVersion: REMORA_VERSION };
    this.apply(first);
  }

  /** Starts, repoints or stops the streams for `snapshot`'s listeners. */
  apply(snapshot: ConfigSnapshot): void {
    const config = snapshot.config;
    const wanted = new Set<string>();
    for (const l of config.listeners) {
      const g = l.access_log?.grpc;
      if (g === undefined) continue;
      const key = `${g.cluster}\n${g.log_name}`;
      if (wanted.has(key)) continue;
      wanted.add(key);
      let stream = this.streams.get(key);
      if (stream === undefined || stream.stopped) {
        stream = new AlsStream(g.cluster, g.log_name, encodeIdentifier(this.node, g.log_name), this.log, stream?.counters());
        this.streams.set(key, stream);
      }
      const written = config.clusters.find((c) => c.name === g.cluster);
      const target = written === undefined ? null : targetOf(dataPlaneCluster(written, snapshot.resolved), snapshot.tls.clusters[g.cluster]);
      if (target === null && !stream.warnedNoTarget) {
        stream.warnedNoTarget = true;
        this.log.warn({ cluster: g.cluster, logName: g.log_name }, 'access log cluster has no endpoint yet; entries wait (within the cap)');
      }
      if (target !== null) stream.warnedNoTarget = false;
      stream.setTarget(target);
    }
    for (const [key, stream] of this.streams) if (!wanted.has(key) && !stream.stopped) void stream.stop(2000);
  }

  onWorkerMessage(msg: FromWorker): void {
    if (msg.type !== 'access_logs') return;
    const key = `${msg.cluster}\n${msg.logName}`;
    let stream = this.streams.get(key);
    if (stream === undefined) {
      // A worker's entries for a log the main thread never had (should not happen): counted.
      stream = new AlsStream(msg.cluster, msg.logName, new Uint8Array(0), this.log);
      void stream.stop(0);
      this.streams.set(key, stream);
    }
    stream.submit(msg.count, msg.entries, msg.dropped);
  }

  /** Counts per stream since start, for /metrics. */
  counters(): AccessLogStreamCounters[] {
    return [...this.streams.values()].map((s) => ({ cluster: s.cluster, logName: s.logName, counters: s.counters() }));
  }

  /** Sends what is queued (within `deadlineMs`), then stops every stream. */
  async shutdown(deadlineMs: number): Promise<void> {
    await Promise.all([...this.streams.values()].map((s) => s.stop(deadlineMs)));
  }
}

/** The grpc-js target for a cluster: all its endpoints when they are IP literals of one
 *  family (pick_first: the first that answers), else its first endpoint by name; null
 *  without endpoints. */
function targetOf(cluster: Cluster, material: TlsMaterial | undefined): AlsTarget | null {
  const eps = cluster.endpoints.map((e) => ({ host: dialAddress(e), port: e.port }));
  if (eps.length === 0) return null;
  let target: string;
  if (eps.every((e) => isIP(e.host) === 4)) target = `ipv4:${eps.map((e) => `${e.host}:${e.port}`).join(',')}`;
  else if (eps.every((e) => isIP(e.host) === 6)) target = `ipv6:${eps.map((e) => `[${e.host}]:${e.port}`).join(',')}`;
  else target = `dns:${isIP(eps[0].host) === 6 ? `[${eps[0].host}]` : eps[0].host}:${eps[0].port}`;
  const options: grpc.ChannelOptions = {
    'grpc.initial_reconnect_backoff_ms': 250,
    'grpc.max_reconnect_backoff_ms': 10_000,
    'grpc.keepalive_time_ms': 60_000,
    'grpc.primary_user_agent': `remora/${REMORA_VERSION}`,
  };
  const tls = cluster.tls;
  if (tls === undefined) return { key: target, target, credentials: loadGrpc().credentials.createInsecure(), options };
  const sni = tls.sni;
  const sans = tls.verify_subject_alt_names;
  if (sni !== undefined) {
    options['grpc.ssl_target_name_override'] = sni;
    options['grpc.default_authority'] = sni;
  }
  // As the data plane verifies: the SANs listed, else the SNI name, else the chain only.
  const verify = serverIdentityCheck(tls, sni);
  const pem = (s: string | undefined): Buffer | null => (s === undefined ? null : Buffer.from(s));
  const credentials = loadGrpc().credentials.createSsl(pem(material?.ca), pem(material?.key), pem(material?.cert), { checkServerIdentity: verify });
  return { key: `${target} tls ${material?.revision ?? 0} ${sni ?? ''} ${sans.join(',')}`, target, credentials, options };
}
