// The sidecar's xDS v3 client (main thread): one Aggregated Discovery Service stream to
// a control plane, state of the world or incremental (delta: DeltaAggregatedResources,
// xds.api_type), with the protocol's rules — the node on the first
// request, per-type version_info and response_nonce, an ACK with the new version, a NACK
// with the previous version and an error_detail saying exactly what was rejected, and
// subscriptions to the RouteConfiguration (RDS) and ClusterLoadAssignment (EDS) names
// that listeners and clusters reference. The stream reconnects with jittered exponential
// backoff, moving through the list of control-plane addresses (failover between
// replicas). Envoy's ADS semantics (docs/xds.md "ADS semantics"): each resource of a
// response is accepted or rejected on its own (the NACK names each rejected one, which
// keeps its previous version), what is accepted is applied, and only then is the
// response ACKed or NACKed; an identical resend changes nothing. What a set means is the
// caller's (XdsSink: check, apply). The same state machine serves a Secret Discovery
// Service stream to an SDS server of its own (`service: 'sds'`, src/main/sds-streams.ts).
// Long file: it is the one state machine of the ADS stream; the per-resource acceptance,
// the apply that precedes each ACK and the subscriptions all read and write the same
// per-type state, so they stay together.

import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../core/log.js';
import { loadXdsProtos, TypeUrl, type AnyMessage, type ProtoObject } from '../xds/protos.js';
import { unknownFields } from '../xds/unknown-fields.js';

/** The resource types, in the order a control plane is asked for them. */
export const RESOURCE_TYPES = [TypeUrl.Listener, TypeUrl.Cluster, TypeUrl.RouteConfiguration, TypeUrl.ClusterLoadAssignment, TypeUrl.Secret] as const;
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
  /** TLS and credentials for each new connection (xds.tls); default plaintext. */
  readonly transport?: XdsTransport;
  /** Incremental xDS (DeltaAggregatedResources) instead of state of the world. */
  readonly delta?: boolean;
  /** `sds`: a Secret Discovery Service stream (StreamSecrets, state of the world) that
   *  carries Secrets only, to a server of their own (xds.sds_servers); its subscriptions
   *  are the sink's `references().secrets`, re-read on resubscribe(). Default `ads`. */
  readonly service?: 'ads' | 'sds';
}

/** How a connection to the control plane is secured (src/control/control-plane-tls.ts). */
export interface XdsTransport {
  /** For a new connection to `server`: its credentials, the metadata of its stream (a
   *  bearer token, when there is no client certificate) and its channel options (the TLS
   *  server name). Throws when they cannot be built (a root bundle that cannot be read):
   *  the attempt fails and is retried like a lost stream. */
  connection(server: string): XdsConnection;
}

export interface XdsConnection {
  readonly credentials: grpc.ChannelCredentials;
  readonly metadata: grpc.Metadata;
  readonly options: grpc.ChannelOptions;
}

/** Resources of each type as last received (decoded), by name. */
export type ResourceMaps = Record<ResourceType, ReadonlyMap<string, ProtoObject>>;

/** A problem with one resource (its type URL and name; "" for the whole set). */
export interface ResourceRejection {
  readonly typeUrl: string;
  readonly name: string;
  /** The NACK's wording: `Listener "in" filter_chains[0]: ...`. */
  readonly text: string;
}

/** What the caller decides for the resources accepted so far. */
export interface XdsSink {
  /** Names of RDS route configs, EDS clusters and SDS secrets the set references. */
  references(maps: ResourceMaps): { routes: readonly string[]; endpoints: readonly string[]; secrets: readonly string[] };
  /** The problems of a set, by resource ([] when it can be applied). Applies nothing. */
  check(maps: ResourceMaps): ResourceRejection[];
  /** Applies a set that check() passed (what of it is complete: warming resources wait
   *  for what they reference); resolves once the workers run it, with the resources that
   *  could not be applied after all (a listener whose port is taken). Those are taken out
   *  of the set and apply() is called again with what is left. */
  apply(maps: ResourceMaps): Promise<ResourceRejection[]>;
}

/** One response and what becomes of it (ACK or NACK), sent after the batch is applied. */
interface Outcome {
  readonly typeUrl: ResourceType;
  readonly version: string;
  readonly nonce: string;
  readonly stream: DiscoveryStream | null;
  readonly rejections: ResourceRejection[];
}

/** Responses arriving within this long are checked and then applied together (a push is
 *  a burst of CDS, EDS, LDS and RDS: one reload instead of four). */
const COALESCE_MS = 10;

interface TypeState {
  /** Resources accepted (ACKed, or accepted from a response that was NACKed for others), by name. */
  accepted: Map<string, ProtoObject>;
  /** The encoded bytes each accepted resource came as: an identical resend is recognised
   *  without checking anything. */
  acceptedBytes: Map<string, Uint8Array>;
  /** version_info of the last response accepted whole (ACKed). */
  acceptedVersion: string;
  /** Nonce of the last response of this type on the current stream. */
  nonce: string;
  /** Names subscribed (RDS/EDS); null = wildcard (LDS/CDS). */
  names: string[] | null;
  lastNack: { version: string; message: string; at: string } | null;
  /** Delta: the version of each accepted resource, sent back as initial_resource_versions
   *  when the stream is opened again (the server then sends only what changed). */
  versions: Map<string, string>;
  /** Delta: the names the server knows this stream subscribes to; null before the first
   *  request of the type on the stream. */
  sentNames: Set<string> | null;
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
  /** Fields Remora's protos lack, per resource (`Listener "in"` → paths like `#87`). */
  readonly unknown_fields: Record<string, string[]>;
}

type DiscoveryStream = grpc.ClientDuplexStream<ProtoObject, ProtoObject>;

const kindOf = (typeUrl: string): string => typeUrl.slice(typeUrl.lastIndexOf('.') + 1);

export class XdsClient {
  private readonly protos = loadXdsProtos();
  private readonly types = new Map<ResourceType, TypeState>();
  /** The types this stream carries, in the order they are asked for. */
  private readonly typeList: readonly ResourceType[];
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
  /** Responses not handled yet, and whether the loop that handles them runs. */
  private readonly inbox: { res: ProtoObject; stream: DiscoveryStream }[] = [];
  private handling = false;
  /** reapply() was called: the next batch applies even if no response changed anything. */
  private reapplyWanted = false;
  nacks = 0;
  acks = 0;
  /** Unknown fields of the latest version of each resource received, by `Kind "name"`. */
  private readonly unknown = new Map<string, string[]>();
  /** Unknown fields seen since start (each resource version counted). */
  unknownFieldsSeen = 0;

  constructor(
    private readonly opts: XdsClientOptions,
    private readonly sink: XdsSink,
  ) {
    this.typeList = opts.service === 'sds' ? [TypeUrl.Secret] : RESOURCE_TYPES;
    for (const t of this.typeList) {
      const wildcard = t === TypeUrl.Listener || t === TypeUrl.Cluster;
      this.types.set(t, {
        accepted: new Map(), acceptedBytes: new Map(), acceptedVersion: '', nonce: '', names: wildcard ? null : [], lastNack: null,
        versions: new Map(), sentNames: null,
      });
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
      types[kindOf(t)] = { version: s.acceptedVersion, resources: s.accepted.size, last_nack: s.lastNack };
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
      unknown_fields: Object.fromEntries(this.unknown),
    };
  }

  /** Applies what is accepted again, in turn with responses: the sink's reading of it
   *  changed (a resource's initial_fetch_timeout expired). */
  reapply(): void {
    if (this.stopped) return;
    this.reapplyWanted = true;
    if (!this.handling) void this.handleInbox();
  }

  /** Reads the sink's references again and changes the subscriptions to match (an SDS
   *  stream: what the ADS resources name from its server changed). */
  resubscribe(): void {
    if (!this.stopped) this.follow();
  }

  /** Reconnects now when no stream is up (a client certificate just arrived). */
  retryNow(): void {
    if (this.stopped || this.stream !== null || this.retryTimer === null) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.attempt = 0;
    this.connect();
  }

  private connect(): void {
    if (this.stopped) return;
    const server = this.opts.servers[this.serverIndex];
    const sds = this.opts.service === 'sds';
    const Service = sds ? this.protos.sds : this.protos.ads;
    let conn: XdsConnection;
    try {
      conn = this.opts.transport?.connection(server) ?? { credentials: grpc.credentials.createInsecure(), metadata: new grpc.Metadata(), options: {} };
    } catch (err) {
      this.opts.log.warn({ server, code: grpc.status.UNAVAILABLE, err: err instanceof Error ? err.message : String(err) }, 'xDS stream failed');
      this.backOff();
      return;
    }
    const client = new Service(server, conn.credentials, conn.options) as unknown as grpc.Client & {
      StreamAggregatedResources(metadata: grpc.Metadata): DiscoveryStream;
      DeltaAggregatedResources(metadata: grpc.Metadata): DiscoveryStream;
      StreamSecrets(metadata: grpc.Metadata): DiscoveryStream;
    };
    this.client = client;
    const stream = sds
      ? client.StreamSecrets(conn.metadata)
      : this.opts.delta === true ? client.DeltaAggregatedResources(conn.metadata) : client.StreamAggregatedResources(conn.metadata);
    this.stream = stream;
    this.sentNode = false;
    for (const s of this.types.values()) {
      s.nonce = '';
      s.sentNames = null;
    }
    stream.on('data', (res: ProtoObject) => {
      if (!this.connected) {
        this.connected = true;
        this.connectedSince = new Date().toISOString();
        this.attempt = 0;
        this.opts.log.info({ server }, 'xDS stream connected');
      }
      this.inbox.push({ res, stream });
      if (!this.handling) void this.handleInbox();
    });
    stream.on('error', (err: grpc.ServiceError) => {
      if (!this.stopped) this.opts.log.warn({ server, code: err.code, err: err.details }, 'xDS stream failed');
    });
    stream.on('close', () => this.onClosed(stream));
    stream.on('end', () => this.onClosed(stream));
    // Initial requests: every type, with what this sidecar already runs (a control plane
    // that sees the versions can skip resending them).
    for (const t of this.typeList) {
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
    this.backOff();
  }

  /** Next address, and back off before going round again. */
  private backOff(): void {
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
    const req: ProtoObject = this.opts.delta === true
      ? deltaRequest(typeUrl, s, nonce)
      : { version_info: version, type_url: typeUrl, response_nonce: nonce, resource_names: s.names ?? [] };
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

  /**
   * Handles responses one batch at a time: each response of the batch is checked and its
   * valid resources accepted (accept), then the batch is applied once (the workers run it),
   * and only then is each response ACKed or NACKed. Responses that arrive meanwhile wait
   * for the next batch.
   */
  private async handleInbox(): Promise<void> {
    this.handling = true;
    try {
      while ((this.inbox.length > 0 || this.reapplyWanted) && !this.stopped) {
        await new Promise((r) => setTimeout(r, COALESCE_MS));
        const batch = this.inbox.splice(0);
        const again = this.reapplyWanted;
        this.reapplyWanted = false;
        const before = new Map([...this.types].map(([t, s]) => [t, { accepted: s.accepted, bytes: s.acceptedBytes }]));
        const outcomes: Outcome[] = [];
        let changed = false;
        for (const { res, stream } of batch) {
          try {
            const r = this.accept(res, stream);
            if (r === null) continue;
            outcomes.push(r.outcome);
            changed ||= r.changed;
          } catch (err) {
            this.opts.log.error({ err }, 'xDS response handling failed');
          }
        }
        if (changed || again) {
          await this.applyAccepted(before, outcomes);
          this.lastUpdateAt = new Date().toISOString();
        }
        this.follow();
        for (const o of outcomes) this.answer(o);
      }
    } catch (err) {
      this.opts.log.error({ err }, 'xDS response handling failed');
    } finally {
      this.handling = false;
    }
  }

  /**
   * Checks one response and accepts what is valid of it (Envoy's rules): each resource is
   * accepted or rejected on its own; a rejected one keeps its previous version in use (or
   * stays absent); names sent twice in one response are rejected; a response identical to
   * what was accepted changes nothing. Listener and Cluster responses are the whole set
   * (a name left out is removed); RouteConfiguration and ClusterLoadAssignment responses
   * update the names they carry. Null for a type never asked for.
   */
  private accept(res: ProtoObject, stream: DiscoveryStream): { outcome: Outcome; changed: boolean } | null {
    const typeUrl = String(res.type_url) as ResourceType;
    const s = this.types.get(typeUrl);
    if (s === undefined) return null;
    const delta = this.opts.delta === true;
    const version = String((delta ? res.system_version_info : res.version_info) ?? '');
    const nonce = String(res.nonce ?? '');
    if (stream === this.stream) s.nonce = nonce;
    const rejections: ResourceRejection[] = [];
    const outcome: Outcome = { typeUrl, version, nonce, stream, rejections };
    const kind = kindOf(typeUrl);
    const received = new Map<string, { message: ProtoObject; bytes: Uint8Array; version: string }>();
    const copies = new Map<string, number>();
    try {
      // State of the world: Anys. Delta: Resource wrappers (name, version, resource).
      const items = delta
        ? ((res.resources as ProtoObject[] | undefined) ?? []).map((r) => ({ any: r.resource as AnyMessage, version: String(r.version ?? ''), name: String(r.name ?? '') }))
        : ((res.resources as AnyMessage[] | undefined) ?? []).map((any) => ({ any, version: version, name: '' }));
      for (const item of items) {
        if (item.any === undefined || item.any === null) throw new Error(`resource "${item.name}" has no resource`);
        const { typeUrl: actual, message } = this.protos.decodeAny(item.any);
        if (actual !== typeUrl) throw new Error(`resource of type ${actual} in a ${typeUrl} response`);
        const name = String(typeUrl === TypeUrl.ClusterLoadAssignment ? message.cluster_name : message.name);
        if (delta && item.name !== '' && item.name !== name) throw new Error(`resource "${item.name}" holds a ${kind} named "${name}"`);
        copies.set(name, (copies.get(name) ?? 0) + 1);
        received.set(name, { message, bytes: item.any.value, version: item.version });
      }
    } catch (err) {
      rejections.push({ typeUrl, name: '', text: `cannot decode: ${err instanceof Error ? err.message : String(err)}` });
      return { outcome, changed: false };
    }
    // RouteConfigurations, ClusterLoadAssignments and Secrets are asked for by name: one
    // not asked for is ignored, as Envoy ignores it (neither applied nor checked, so a
    // control plane that sends a Secret for a filter Remora does not run gets no NACK).
    if (s.names !== null) {
      const asked = new Set(s.names);
      const ignored = [...received.keys()].filter((name) => !asked.has(name));
      for (const name of ignored) received.delete(name);
      if (ignored.length > 0) this.opts.log.debug({ type: kindOf(typeUrl), ignored }, 'resources not asked for ignored');
    }
    // A state-of-the-world LDS/CDS response is the whole set; anything else (RDS/EDS, and
    // every delta response) updates the names it carries, and delta names its removals.
    const whole = s.names === null && !delta;
    const next = whole ? new Map<string, ProtoObject>() : new Map(s.accepted);
    const nextBytes = whole ? new Map<string, Uint8Array>() : new Map(s.acceptedBytes);
    const removed = delta ? ((res.removed_resources as string[] | undefined) ?? []).filter((n) => next.has(n) && !received.has(n)) : [];
    for (const name of removed) {
      next.delete(name);
      nextBytes.delete(name);
    }
    /** Names this response adds or changes (what a problem can be blamed on). */
    const fresh = new Set<string>();
    /** Names this response resends as they are. */
    const unchanged = new Set<string>();
    for (const [name, r] of received) {
      const n = copies.get(name) ?? 1;
      if (n > 1) {
        rejections.push({ typeUrl, name, text: `${kind} "${name}": sent ${n} times in one response (a name must be unique; the previous version stays)` });
        const prev = s.accepted.get(name);
        if (prev !== undefined) {
          next.set(name, prev);
          nextBytes.set(name, s.acceptedBytes.get(name)!);
        } else {
          next.delete(name);
          nextBytes.delete(name);
        }
        continue;
      }
      const old = s.acceptedBytes.get(name);
      if (old !== undefined && Buffer.from(old).equals(r.bytes)) {
        // Unchanged: the message in effect stays (the same object, so the sink sees at a
        // glance what an update changed: only EDS, say).
        next.set(name, s.accepted.get(name)!);
        nextBytes.set(name, old);
        unchanged.add(name);
        continue;
      }
      next.set(name, r.message);
      nextBytes.set(name, r.bytes);
      fresh.add(name);
      this.noteUnknownFields(typeUrl, name, r.bytes);
    }
    if (fresh.size === 0 && sameNames(next, s.accepted)) return { outcome, changed: false }; // identical: nothing to check or apply
    const maps = this.currentMaps();
    maps[typeUrl] = next;
    /** Names sent back to their previous version: if that one fails too, it goes. */
    const reverted = new Set<string>();
    const revert = (name: string): void => {
      const prev = s.accepted.get(name);
      if (fresh.has(name) && prev !== undefined) {
        reverted.add(name);
        next.set(name, prev);
        nextBytes.set(name, s.acceptedBytes.get(name)!);
      } else {
        reverted.delete(name);
        next.delete(name);
        nextBytes.delete(name);
      }
      fresh.delete(name);
    };
    // Reject what is invalid, one resource at a time, until the rest passes.
    for (;;) {
      const problems = this.sink.check(maps);
      if (problems.length === 0) break;
      const own = problems.filter((p) => p.typeUrl === typeUrl && next.has(p.name));
      const ownFresh = own.filter((p) => fresh.has(p.name) || reverted.has(p.name));
      if (ownFresh.length > 0 || (own.length > 0 && fresh.size === 0)) {
        const blamed = ownFresh.length > 0 ? ownFresh : own;
        for (const p of blamed) rejections.push(p);
        for (const name of new Set(blamed.map((p) => p.name))) revert(name);
      } else if (fresh.size > 0) {
        // A problem elsewhere (a route configuration, the whole set) that this response's
        // changes caused: they are all rejected, each naming it.
        const why = problems.map((p) => p.text).join('; ');
        for (const name of [...fresh]) {
          rejections.push({ typeUrl, name, text: `${kind} "${name}": not applied, since with this update: ${why}` });
          revert(name);
        }
      } else {
        // Nothing of this response to blame: it is rejected whole, nothing changes.
        rejections.push(...problems);
        return { outcome, changed: false };
      }
    }
    const changed = fresh.size > 0 || !sameNames(next, s.accepted);
    s.accepted = next;
    s.acceptedBytes = nextBytes;
    if (delta) {
      for (const name of removed) s.versions.delete(name);
      for (const [name, r] of received) if (nextBytes.get(name) === r.bytes || (unchanged.has(name) && next.has(name))) s.versions.set(name, r.version);
    }
    this.follow();
    return { outcome, changed };
  }

  /**
   * Applies what was accepted. A resource the sink could not apply after all (a listener
   * whose port another process holds) goes back to its version before the batch (or
   * away) and is NACKed with the response of its type; the rest is applied again.
   */
  private async applyAccepted(before: Map<ResourceType, { accepted: Map<string, ProtoObject>; bytes: Map<string, Uint8Array> }>, outcomes: Outcome[]): Promise<void> {
    for (let round = 0; round < 100; round++) {
      let failed: ResourceRejection[];
      try {
        failed = await this.sink.apply(this.currentMaps());
      } catch (err) {
        failed = [{ typeUrl: '', name: '', text: `the update could not be applied: ${err instanceof Error ? err.message : String(err)}` }];
      }
      if (failed.length === 0) return;
      for (const f of failed) {
        const s = this.types.get(f.typeUrl as ResourceType);
        const was = before.get(f.typeUrl as ResourceType);
        if (s === undefined || was === undefined || !s.accepted.has(f.name)) {
          // Not one resource's fault: the whole batch goes back, every response NACKed.
          for (const [t, st] of this.types) {
            st.accepted = before.get(t)!.accepted;
            st.acceptedBytes = before.get(t)!.bytes;
          }
          for (const o of outcomes) o.rejections.push(f);
          await this.sink.apply(this.currentMaps()).catch(() => []);
          return;
        }
        const prev = was.accepted.get(f.name);
        if (prev !== undefined && prev !== s.accepted.get(f.name)) {
          s.accepted = new Map(s.accepted).set(f.name, prev);
          s.acceptedBytes = new Map(s.acceptedBytes).set(f.name, was.bytes.get(f.name)!);
        } else {
          s.accepted = new Map(s.accepted);
          s.accepted.delete(f.name);
          s.acceptedBytes = new Map(s.acceptedBytes);
          s.acceptedBytes.delete(f.name);
        }
        const owner = [...outcomes].reverse().find((o) => o.typeUrl === f.typeUrl) ?? outcomes[outcomes.length - 1];
        owner?.rejections.push(f);
      }
    }
  }

  /** Sends the ACK or NACK of one response (on the stream it came on). A NACK carries the
   *  version last accepted whole, and names each rejected resource. */
  private answer(o: Outcome): void {
    const s = this.types.get(o.typeUrl)!;
    if (o.rejections.length === 0) {
      s.acceptedVersion = o.version;
      this.acks++;
      if (o.stream === this.stream) this.send(o.typeUrl, o.version, o.nonce, null);
      return;
    }
    const message = o.rejections.map((r) => r.text).join('; ');
    this.nacks++;
    s.lastNack = { version: o.version, message, at: new Date().toISOString() };
    this.opts.log.error(
      { type: o.typeUrl, version: o.version, rejected: [...new Set(o.rejections.map((r) => r.name))], error: message },
      'xDS update rejected (NACK); the rest of it is applied, and rejected resources keep their previous version',
    );
    if (o.stream === this.stream) this.send(o.typeUrl, s.acceptedVersion, o.nonce, message);
  }

  /** Subscriptions follow what is accepted: the RouteConfigurations,
   *  ClusterLoadAssignments and Secrets that accepted listeners and clusters reference (a rejected
   *  resource's references are not asked for); ones no longer referenced are dropped. */
  private follow(): void {
    const refs = this.sink.references(this.currentMaps());
    if (this.opts.service !== 'sds') {
      this.subscribe(TypeUrl.RouteConfiguration, refs.routes);
      this.subscribe(TypeUrl.ClusterLoadAssignment, refs.endpoints);
    }
    this.subscribe(TypeUrl.Secret, refs.secrets);
  }

  /** Changes the RDS/EDS names asked for; a new request goes out when they changed, and
   *  resources of names no longer asked for are forgotten. */
  private subscribe(typeUrl: ResourceType, names: readonly string[]): void {
    const s = this.types.get(typeUrl)!;
    const sorted = [...new Set(names)].sort();
    if (s.names !== null && sorted.length === s.names.length && sorted.every((n, i) => n === s.names![i])) return;
    s.names = sorted;
    const keep = new Set(sorted);
    if ([...s.accepted.keys()].some((n) => !keep.has(n))) {
      s.accepted = new Map([...s.accepted].filter(([n]) => keep.has(n)));
      s.acceptedBytes = new Map([...s.acceptedBytes].filter(([n]) => keep.has(n)));
      for (const n of [...s.versions.keys()]) if (!keep.has(n)) s.versions.delete(n);
    }
    // Delta: a subscription change carries no nonce (it answers no response).
    this.send(typeUrl, s.acceptedVersion, this.opts.delta === true ? '' : s.nonce, null);
  }

  /** Fields this Remora does not know are accepted as Envoy accepts them by default, and
   *  made visible: a warning per resource version, and /config_dump's `unknown_fields`. */
  private noteUnknownFields(typeUrl: ResourceType, name: string, bytes: Uint8Array): void {
    const key = `${kindOf(typeUrl)} "${name}"`;
    const fields = unknownFields(typeUrl, bytes);
    if (fields.length === 0) {
      this.unknown.delete(key);
      return;
    }
    this.unknown.set(key, fields);
    this.unknownFieldsSeen += fields.length;
    this.opts.log.warn({ type: kindOf(typeUrl), name, fields }, `${key} has fields this Remora does not know (${fields.join(', ')}): accepted without them`);
  }

  private currentMaps(): ResourceMaps {
    const out = {} as Record<ResourceType, ReadonlyMap<string, ProtoObject>>;
    for (const [t, s] of this.types) out[t] = s.accepted;
    return out;
  }
}

/** A DeltaDiscoveryRequest: the first of its type on a stream subscribes to every name
 *  (`*` for LDS/CDS) with the versions accepted so far; later ones ACK or NACK `nonce`
 *  and carry the subscription's changes since the last request. */
function deltaRequest(typeUrl: ResourceType, s: TypeState, nonce: string): ProtoObject {
  const want = s.names ?? ['*'];
  const req: ProtoObject = { type_url: typeUrl, response_nonce: nonce };
  if (s.sentNames === null) {
    req.resource_names_subscribe = want;
    if (s.versions.size > 0) req.initial_resource_versions = Object.fromEntries(s.versions);
  } else {
    const sent = s.sentNames;
    const subscribe = want.filter((n) => !sent.has(n));
    const wanted = new Set(want);
    const unsubscribe = [...sent].filter((n) => !wanted.has(n));
    if (subscribe.length > 0) req.resource_names_subscribe = subscribe;
    if (unsubscribe.length > 0) req.resource_names_unsubscribe = unsubscribe;
  }
  s.sentNames = new Set(want);
  return req;
}

function sameNames(a: ReadonlyMap<string, unknown>, b: ReadonlyMap<string, unknown>): boolean {
  if (a.size !== b.size) return false;
  for (const k of a.keys()) if (!b.has(k)) return false;
  return true;
}
