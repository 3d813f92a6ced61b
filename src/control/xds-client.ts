// The sidecar's xDS v3 client (main thread): one state-of-the-world Aggregated Discovery
// Service stream to a control plane, with the protocol's rules — the node on the first
// request, per-type version_info and response_nonce, an ACK with the new version, a NACK
// with the previous version and an error_detail saying exactly what was rejected, and
// subscriptions to the RouteConfiguration (RDS) and ClusterLoadAssignment (EDS) names
// that listeners and clusters reference. The stream reconnects with jittered exponential
// backoff, moving through the list of control-plane addresses (failover between
// replicas). What to do with a complete set of resources is the caller's: `apply`
// answers null (accepted) or the rejection message (NACK).

import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../core/log.js';
import { loadXdsProtos, TypeUrl, type AnyMessage, type ProtoObject } from '../xds/protos.js';

/** The four resource types, in the order a control plane is asked for them. */
export const RESOURCE_TYPES = [TypeUrl.Listener, TypeUrl.Cluster, TypeUrl.RouteConfiguration, TypeUrl.ClusterLoadAssignment] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];

export interface XdsNode {
  readonly id: string;
  readonly cluster: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface XdsClientOptions {
  /** Control-plane addresses, HOST:PORT, tried in order (failover). */
  readonly servers: readonly string[];
  readonly node: XdsNode;
  readonly log: Logger;
  /** Reconnect backoff: full jitter in [0, min(max, initial × 2^n)]. */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

/** Resources of each type as last received (decoded), by name. */
export type ResourceMaps = Record<ResourceType, ReadonlyMap<string, ProtoObject>>;

/** What the caller decides for a complete set. */
export interface XdsSink {
  /** Names of RDS route configs and EDS clusters the current set references. */
  references(maps: ResourceMaps): { routes: readonly string[]; endpoints: readonly string[] };
  /** Checks what arrived so far while something referenced is still missing (warming):
   *  null when fine, else the error message for the NACK. Applies nothing. */
  check(maps: ResourceMaps): string | null;
  /** Applies a set in which nothing referenced is missing: null when accepted, else the
   *  error message for the NACK. */
  apply(maps: ResourceMaps): string | null;
}

interface TypeState {
  /** Resources last accepted (ACKed), by name. */
  accepted: Map<string, ProtoObject>;
  acceptedVersion: string;
  /** Nonce of the last response of this type on the current stream. */
  nonce: string;
  /** Names subscribed (RDS/EDS); null = wildcard (LDS/CDS). */
  names: string[] | null;
  lastNack: { version: string; message: string; at: string } | null;
}

export interface XdsClientState {
  readonly connected: boolean;
  readonly server: string | null;
  readonly connectedSince: string | null;
  readonly lastUpdateAt: string | null;
  readonly reconnects: number;
  readonly nacks: number;
  readonly acks: number;
  readonly types: Record<string, { version: string; resources: number; last_nack: { version: string; message: string; at: string } | null }>;
}

type DiscoveryStream = grpc.ClientDuplexStream<ProtoObject, ProtoObject>;

export class XdsClient {
  private readonly protos = loadXdsProtos();
  private readonly types = new Map<ResourceType, TypeState>();
  private stream: DiscoveryStream | null = null;
  private client: grpc.Client | null = null;
  private serverIndex = 0;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private sentNode = false;
  private connected = false;
  private connectedSince: string | null = null;
  private lastUpdateAt: string | null = null;
  private reconnects = 0;
  nacks = 0;
  acks = 0;

  constructor(
    private readonly opts: XdsClientOptions,
    private readonly sink: XdsSink,
  ) {
    for (const t of RESOURCE_TYPES) {
      const wildcard = t === TypeUrl.Listener || t === TypeUrl.Cluster;
      this.types.set(t, { accepted: new Map(), acceptedVersion: '', nonce: '', names: wildcard ? null : [], lastNack: null });
    }
  }

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.stream?.cancel();
    this.client?.close();
    this.stream = null;
    this.client = null;
  }

  state(): XdsClientState {
    const types: XdsClientState['types'] = {};
    for (const [t, s] of this.types) {
      types[t.slice(t.lastIndexOf('.') + 1)] = { version: s.acceptedVersion, resources: s.accepted.size, last_nack: s.lastNack };
    }
    return {
      connected: this.connected,
      server: this.connected ? this.opts.servers[this.serverIndex] : null,
      connectedSince: this.connectedSince,
      lastUpdateAt: this.lastUpdateAt,
      reconnects: this.reconnects,
      nacks: this.nacks,
      acks: this.acks,
      types,
    };
  }

  private connect(): void {
    if (this.stopped) return;
    const server = this.opts.servers[this.serverIndex];
    const Ads = this.protos.ads;
    const client = new Ads(server, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      StreamAggregatedResources(): DiscoveryStream;
    };
    this.client = client;
    const stream = client.StreamAggregatedResources();
    this.stream = stream;
    this.sentNode = false;
    for (const s of this.types.values()) s.nonce = '';
    stream.on('data', (res: ProtoObject) => {
      try {
        if (!this.connected) {
          this.connected = true;
          this.connectedSince = new Date().toISOString();
          this.attempt = 0;
          this.opts.log.info({ server }, 'xDS stream connected');
        }
        this.onResponse(res);
      } catch (err) {
        this.opts.log.error({ err }, 'xDS response handling failed');
      }
    });
    stream.on('error', (err: grpc.ServiceError) => {
      if (!this.stopped) this.opts.log.warn({ server, code: err.code, err: err.details }, 'xDS stream failed');
    });
    stream.on('close', () => this.onClosed(stream));
    stream.on('end', () => this.onClosed(stream));
    // Initial requests: every type, with what this sidecar already runs (a control plane
    // that sees the versions can skip resending them).
    for (const t of RESOURCE_TYPES) {
      const s = this.types.get(t)!;
      if (s.names !== null && s.names.length === 0) continue;
      this.send(t, s.acceptedVersion, '', null);
    }
  }

  private onClosed(stream: DiscoveryStream): void {
    if (this.stream !== stream) return;
    this.stream = null;
    this.client?.close();
    this.client = null;
    const wasConnected = this.connected;
    this.connected = false;
    if (this.stopped) return;
    if (wasConnected) this.opts.log.warn({ server: this.opts.servers[this.serverIndex] }, 'xDS stream lost; serving the last applied config');
    // Next address, and back off before going round again.
    this.serverIndex = (this.serverIndex + 1) % this.opts.servers.length;
    const initial = this.opts.initialBackoffMs ?? 500;
    const max = this.opts.maxBackoffMs ?? 30_000;
    const ceiling = Math.min(max, initial * 2 ** Math.min(this.attempt, 20));
    this.attempt++;
    this.reconnects++;
    const delay = Math.random() * ceiling;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay); // not unref'd: at startup it is what keeps the process waiting for a config
  }

  private send(typeUrl: ResourceType, version: string, nonce: string, error: string | null): void {
    const s = this.types.get(typeUrl)!;
    const req: ProtoObject = {
      version_info: version,
      type_url: typeUrl,
      response_nonce: nonce,
      resource_names: s.names ?? [],
    };
    if (!this.sentNode) {
      const node = this.opts.node;
      req.node = {
        id: node.id,
        cluster: node.cluster,
        user_agent_name: 'remora',
        ...(node.metadata !== undefined
          ? { metadata: { fields: Object.fromEntries(Object.entries(node.metadata).map(([k, v]) => [k, { stringValue: v }])) } }
          : {}),
      };
      this.sentNode = true;
    }
    if (error !== null) req.error_detail = { code: grpc.status.INVALID_ARGUMENT, message: error };
    this.stream?.write(req);
  }

  private onResponse(res: ProtoObject): void {
    const typeUrl = String(res.type_url) as ResourceType;
    const s = this.types.get(typeUrl);
    if (s === undefined) return; // a type we never asked for
    const version = String(res.version_info ?? '');
    const nonce = String(res.nonce ?? '');
    s.nonce = nonce;
    let received: Map<string, ProtoObject>;
    try {
      received = new Map();
      for (const any of (res.resources as AnyMessage[] | undefined) ?? []) {
        const { typeUrl: actual, message } = this.protos.decodeAny(any);
        if (actual !== typeUrl) throw new Error(`resource of type ${actual} in a ${typeUrl} response`);
        const name = String(typeUrl === TypeUrl.ClusterLoadAssignment ? message.cluster_name : message.name);
        received.set(name, message);
      }
    } catch (err) {
      this.nack(typeUrl, s, version, nonce, `cannot decode: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    // RDS and EDS responses carry only what was asked for: merge by name.
    const maps = this.currentMaps();
    maps[typeUrl] = received;
    const refs = this.sink.references(maps);
    const missing = [...refs.routes.filter((n) => !maps[TypeUrl.RouteConfiguration].has(n)), ...refs.endpoints.filter((n) => !maps[TypeUrl.ClusterLoadAssignment].has(n))];
    this.subscribe(TypeUrl.RouteConfiguration, refs.routes);
    this.subscribe(TypeUrl.ClusterLoadAssignment, refs.endpoints);
    if (missing.length > 0) {
      // Warming: what arrived must be valid on its own (else NACK now); keep it, ACK it,
      // and wait for what it references (make before break: the running config is
      // untouched until the set is complete).
      const problem = this.sink.check(maps);
      if (problem !== null) {
        this.nack(typeUrl, s, version, nonce, problem);
        return;
      }
      s.accepted = received;
      s.acceptedVersion = version;
      this.acks++;
      this.send(typeUrl, version, nonce, null);
      this.opts.log.info({ type: typeUrl, version, waitingFor: missing }, 'xDS resources warming: waiting for what they reference');
      return;
    }
    const error = this.sink.apply(maps);
    if (error !== null) {
      this.nack(typeUrl, s, version, nonce, error);
      return;
    }
    s.accepted = received;
    s.acceptedVersion = version;
    this.lastUpdateAt = new Date().toISOString();
    this.acks++;
    this.send(typeUrl, version, nonce, null);
  }

  private nack(typeUrl: ResourceType, s: TypeState, version: string, nonce: string, message: string): void {
    this.nacks++;
    s.lastNack = { version, message, at: new Date().toISOString() };
    this.opts.log.error({ type: typeUrl, version, error: message }, 'xDS update rejected (NACK); the running config keeps serving');
    this.send(typeUrl, s.acceptedVersion, nonce, message);
  }

  /** Changes the RDS/EDS names asked for; a new request goes out when they changed. */
  private subscribe(typeUrl: ResourceType, names: readonly string[]): void {
    const s = this.types.get(typeUrl)!;
    const sorted = [...new Set(names)].sort();
    if (s.names !== null && sorted.length === s.names.length && sorted.every((n, i) => n === s.names![i])) return;
    s.names = sorted;
    this.send(typeUrl, s.acceptedVersion, s.nonce, null);
  }

  private currentMaps(): ResourceMaps {
    const out = {} as Record<ResourceType, Map<string, ProtoObject>>;
    for (const [t, s] of this.types) out[t] = new Map(s.accepted);
    return out;
  }
}
