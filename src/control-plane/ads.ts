// The ADS side of the control plane: envoy.service.discovery.v3.AggregatedDiscoveryService
// over grpc-js, state of the world (StreamAggregatedResources) and incremental
// (DeltaAggregatedResources: what differs is in ads-delta.ts; nodes, groups, the guard,
// ACKs and NACKs are shared). Per stream and per type URL
// it keeps the subscription, the latest response sent (version, nonce) and what the node
// ACKed or NACKed.
//
// The protocol's rules, as implemented:
// - A request with an empty response_nonce (the first of its type on the stream, or a
//   re-subscription) is answered at once with the group's current resources.
// - A request whose response_nonce is not the latest nonce sent for its type is stale
//   (a response crossed it on the wire) and is ignored; the node answers the newer
//   response, with its full subscription again.
// - A request with the latest nonce is an ACK, or a NACK when error_detail is set. A NACK
//   is recorded on the stream and logged at warn with the node, type, version and the
//   node's error. It is answered only when its subscription changed (otherwise the same
//   resources would be rejected again): the next snapshot is the fix.
// - A new snapshot of a node's group is pushed for every type the node subscribed to, in
//   the order clusters, endpoints, listeners, routes (make before break), each with the
//   snapshot's version and a fresh nonce.
// - LDS and CDS with no names (or "*") are wildcard; RDS and EDS carry names, and only
//   the named resources that exist are sent.
// - With a guard (the control plane runs TLS): a stream whose caller proves no identity
//   (no client certificate the mesh CA issued, no valid token) is ended UNAUTHENTICATED
//   as it opens; a node is served its group only when that identity may have it
//   (xds-access.ts), else the stream is ended PERMISSION_DENIED, also when a later
//   snapshot would move it to a group it may not have. Refusals are counted by reason.

import { hostname } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../core/log.js';
import { TypeUrl, type AnyMessage } from '../xds/protos.js';
import type { Principal, RefusalReason } from './ca-authn.js';
import type { AdsGuard, DiscoveryRequest, NackRecord, NodeStatus, TypeStatus } from './ads-types.js';
import { RefusalLogLimiter } from './mesh-ca-stats.js';
import { changeSubscription, deltaResponse, firstDeltaState, type DeltaRequest, type DeltaTypeState } from './ads-delta.js';
import { DEFAULT_GROUP, PUSH_ORDER, WILDCARD_TYPES, type SnapshotStore } from './snapshots.js';

export type { AdsGuard, NackRecord, NodeStatus, TypeStatus } from './ads-types.js';

/** Version sent to a node whose group does not exist (with empty resource sets). */
export const NO_GROUP_VERSION = '0';

const KNOWN_TYPES: ReadonlySet<string> = new Set(PUSH_ORDER);
const SHORT: Record<string, string> = {
  [TypeUrl.Listener]: 'LDS',
  [TypeUrl.RouteConfiguration]: 'RDS',
  [TypeUrl.Cluster]: 'CDS',
  [TypeUrl.ClusterLoadAssignment]: 'EDS',
};

interface TypeState {
  names: string[];
  versionSent: string;
  nonceSent: string;
  sentAt: Date | null;
  resourcesSent: number;
  versionAcked: string;
  ackedAt: Date | null;
  lastNack: NackRecord | null;
  nackCount: number;
  /** Delta streams: the subscription and what the node holds. */
  delta: DeltaTypeState | null;
}

interface Stream {
  readonly id: string;
  readonly call: grpc.ServerDuplexStream<DiscoveryRequest, unknown>;
  readonly peer: string;
  readonly connectedSince: Date;
  principal: Principal | null;
  node: { id: string; cluster: string } | null;
  group: string | null;
  readonly types: Map<string, TypeState>;
  /** DeltaAggregatedResources (else StreamAggregatedResources). */
  readonly delta: boolean;
  closed: boolean;
}

/** A type's state on its first request: nothing sent, ACKed or NACKed yet. */
const newTypeState = (names: string[], delta: DeltaTypeState | null): TypeState => ({
  names, versionSent: '', nonceSent: '', sentAt: null, resourcesSent: 0, versionAcked: '', ackedAt: null, lastNack: null, nackCount: 0, delta,
});

const isWildcard = (typeUrl: string, names: readonly string[]): boolean =>
  names.includes('*') || (names.length === 0 && WILDCARD_TYPES.has(typeUrl));

const sameNames = (a: readonly string[], b: readonly string[]): boolean => {
  if (a.length !== b.length) return false;
  const sa = [...a].sort();
  const sb = [...b].sort();
  return sa.every((x, i) => x === sb[i]);
};

export class AdsService {
  private readonly streams = new Map<string, Stream>();
  private streamCounter = 0;
  private nonceCounter = 0;
  private readonly refusals = new Map<RefusalReason, number>();
  private readonly refusalLogs = new RefusalLogLimiter();
  /** Identifies this replica in every response (DiscoveryResponse.control_plane). */
  readonly identifier = `remora-control-plane/${hostname()}/${process.pid}`;

  constructor(
    private readonly store: SnapshotStore,
    private readonly log: Logger,
    private readonly guard: AdsGuard | null = null,
  ) {
    store.onChange((group) => this.onSnapshot(group));
  }

  /** Streams refused since start, by reason (with a guard). */
  refusalCounts(): Record<string, number> {
    return Object.fromEntries([...this.refusals].sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  /** The handlers to pass to grpc.Server#addService with the ADS service definition. */
  handlers(): grpc.UntypedServiceImplementation {
    return {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, unknown>) => this.open(call, false),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, unknown>) => this.open(call, true),
    };
  }

  /** The group a node is served: the group named after node.cluster, else node.id, else
   *  "default"; null when none of them exists. */
  groupFor(node: { id: string; cluster: string }): string | null {
    for (const name of [node.cluster, node.id, DEFAULT_GROUP]) {
      if (name !== '' && this.store.has(name)) return name;
    }
    return null;
  }

  nodes(group?: string): NodeStatus[] {
    const out: NodeStatus[] = [];
    for (const s of this.streams.values()) {
      if (s.node === null) continue;
      if (group !== undefined && group !== '' && s.group !== group) continue;
      out.push({
        streamId: s.id,
        id: s.node.id,
        cluster: s.node.cluster,
        group: s.group,
        connectedSince: s.connectedSince,
        peer: s.peer,
        principal: s.principal?.name ?? null,
        types: [...s.types].map(([typeUrl, t]) => ({
          typeUrl,
          resourceNames: t.delta === null ? [...t.names] : t.delta.wildcard ? [] : [...t.delta.names],
          versionSent: t.versionSent,
          nonceSent: t.nonceSent,
          sentAt: t.sentAt,
          resourcesSent: t.resourcesSent,
          versionAcked: t.versionAcked,
          ackedAt: t.ackedAt,
          lastNack: t.lastNack,
          nackCount: t.nackCount,
        })),
      });
    }
    return out;
  }

  /** Ends every stream with UNAVAILABLE, so nodes reconnect (to another replica). */
  closeAll(reason: string): void {
    for (const s of [...this.streams.values()]) this.end(s, grpc.status.UNAVAILABLE, reason);
  }

  private open(call: grpc.ServerDuplexStream<DiscoveryRequest, unknown>, delta: boolean): void {
    const stream: Stream = {
      delta,
      id: String(++this.streamCounter),
      call,
      peer: call.getPeer(),
      connectedSince: new Date(),
      principal: null,
      node: null,
      group: null,
      types: new Map(),
      closed: false,
    };
    this.streams.set(stream.id, stream);
    if (this.guard !== null) {
      const authn = this.guard.authenticate(call);
      if (!authn.ok) {
        const code = authn.code === 'PERMISSION_DENIED' ? grpc.status.PERMISSION_DENIED : grpc.status.UNAUTHENTICATED;
        this.refuse(stream, code, authn.reason, `xDS needs a client certificate from the mesh CA or a valid token: ${authn.message}`);
        return;
      }
      stream.principal = authn.principal;
    }
    call.on('data', (req: DiscoveryRequest) => {
      try {
        this.onRequest(stream, req);
      } catch (err) {
        this.log.error({ err, stream: stream.id, node: stream.node?.id }, 'ADS request handling failed');
        this.end(stream, grpc.status.INTERNAL, `control plane error: ${(err as Error).message}`);
      }
    });
    const gone = (why: string): void => {
      if (!this.streams.delete(stream.id)) return;
      stream.closed = true;
      if (stream.node !== null) this.log.info({ stream: stream.id, node: stream.node.id, group: stream.group, why }, 'node disconnected');
    };
    call.on('end', () => {
      gone('stream ended');
      if (!call.writableEnded) call.end();
    });
    call.on('cancelled', () => gone('cancelled'));
    call.on('error', (err: Error) => gone(`error: ${err.message}`));
    call.on('close', () => gone('closed'));
  }

  private onRequest(stream: Stream, req: DiscoveryRequest): void {
    if (stream.node === null) {
      if (req.node === undefined || (!req.node.id && !req.node.cluster)) {
        this.end(stream, grpc.status.INVALID_ARGUMENT, 'the first DiscoveryRequest of a stream must carry node (id and/or cluster)');
        return;
      }
      stream.node = { id: req.node.id ?? '', cluster: req.node.cluster ?? '' };
      stream.group = this.groupFor(stream.node);
      if (!this.mayServe(stream, stream.group)) return;
      this.log.info({ stream: stream.id, node: stream.node.id, cluster: stream.node.cluster, group: stream.group, peer: stream.peer }, 'node connected');
      if (stream.group === null) {
        this.log.warn(
          { stream: stream.id, node: stream.node.id, cluster: stream.node.cluster },
          `no group file matches the node's cluster or id and there is no ${DEFAULT_GROUP} group: it is sent empty resource sets`,
        );
      }
    }
    const typeUrl = req.type_url ?? '';
    if (!KNOWN_TYPES.has(typeUrl)) {
      this.log.warn({ stream: stream.id, node: stream.node.id, type_url: typeUrl }, 'request for a resource type this control plane does not serve; ignored');
      return;
    }
    if (stream.delta) {
      this.onDeltaRequest(stream, typeUrl, req as DeltaRequest);
      return;
    }
    const names = req.resource_names ?? [];
    const nonce = req.response_nonce ?? '';
    let sub = stream.types.get(typeUrl);
    if (nonce === '') {
      // Initial request of this type (also after a reconnect: the node may carry the
      // version it runs; it is answered with the current snapshot either way).
      if (sub === undefined) {
        sub = newTypeState(names, null);
        stream.types.set(typeUrl, sub);
      }
      sub.names = names;
      this.send(stream, typeUrl);
      return;
    }
    if (sub === undefined || nonce !== sub.nonceSent) {
      this.log.debug({ stream: stream.id, node: stream.node.id, type_url: typeUrl, nonce, latest: sub?.nonceSent ?? null }, 'stale nonce; request ignored');
      return;
    }
    this.recordAnswer(stream, typeUrl, sub, req.version_info ?? '', nonce, req.error_detail);
    if (!sameNames(sub.names, names)) {
      sub.names = names;
      this.send(stream, typeUrl);
    }
  }

  /** Records an ACK, or a NACK (logged at warn), of the response `nonce` answered. */
  private recordAnswer(stream: Stream, typeUrl: string, sub: TypeState, version: string, nonce: string, errorDetail: DiscoveryRequest['error_detail']): void {
    if (stream.node === null) return;
    if (errorDetail !== undefined) {
      const nack: NackRecord = {
        version: sub.versionSent,
        nonce,
        errorMessage: errorDetail.message ?? '',
        errorCode: errorDetail.code ?? 0,
        time: new Date(),
        versionKept: version,
      };
      sub.lastNack = nack;
      sub.nackCount++;
      this.log.warn(
        { stream: stream.id, node: stream.node.id, cluster: stream.node.cluster, group: stream.group, type_url: typeUrl, type: SHORT[typeUrl],
          version: nack.version, version_kept: version, nonce, error: nack.errorMessage, code: nack.errorCode },
        `xDS NACK: node "${stream.node.id}" rejected ${SHORT[typeUrl]} version ${nack.version}: ${nack.errorMessage}`,
      );
    } else {
      sub.versionAcked = version;
      sub.ackedAt = new Date();
      this.log.debug({ stream: stream.id, node: stream.node.id, type: SHORT[typeUrl], version }, 'ACK');
    }
  }

  /** A DeltaDiscoveryRequest: the first of a type opens its subscription (with the
   *  versions the node holds) and is answered; later ones ACK or NACK the latest
   *  response, and change the subscription (answered when it changed). */
  private onDeltaRequest(stream: Stream, typeUrl: string, req: DeltaRequest): void {
    let sub = stream.types.get(typeUrl);
    const nonce = req.response_nonce ?? '';
    if (sub === undefined) {
      sub = newTypeState([], firstDeltaState(req, WILDCARD_TYPES.has(typeUrl)));
      stream.types.set(typeUrl, sub);
      this.sendDelta(stream, typeUrl, true);
      return;
    }
    // A delta NACK carries no version: the node keeps the one it ACKed last.
    if (nonce !== '' && nonce === sub.nonceSent) this.recordAnswer(stream, typeUrl, sub, req.error_detail ? sub.versionAcked : sub.versionSent, nonce, req.error_detail);
    if (changeSubscription(sub.delta!, req)) this.sendDelta(stream, typeUrl, false);
  }

  /** A group got a new snapshot (or was created): re-resolve every node's group, push to
   *  those of the group and to those that move to another group. */
  private onSnapshot(group: string): void {
    for (const s of this.streams.values()) {
      if (s.node === null) continue;
      const next = this.groupFor(s.node);
      if (!this.mayServe(s, next)) continue;
      if (next !== s.group) {
        this.log.info({ stream: s.id, node: s.node.id, from: s.group, to: next }, 'node moves to another group');
        s.group = next;
      } else if (next !== group) {
        continue;
      }
      this.pushAll(s);
    }
  }

  /** Connected nodes served `group`. */
  countNodes(group: string): number {
    let n = 0;
    for (const s of this.streams.values()) if (s.node !== null && s.group === group) n++;
    return n;
  }

  private pushAll(stream: Stream): void {
    for (const typeUrl of PUSH_ORDER) {
      if (!stream.types.has(typeUrl)) continue;
      if (stream.delta) this.sendDelta(stream, typeUrl, false);
      else this.send(stream, typeUrl);
    }
  }

  /** A DeltaDiscoveryResponse with what differs from what the node holds (ads-delta.ts);
   *  nothing when nothing does, unless `first`. */
  private sendDelta(stream: Stream, typeUrl: string, first: boolean): void {
    if (stream.closed) return;
    const sub = stream.types.get(typeUrl)!;
    let version = NO_GROUP_VERSION;
    let all: ReadonlyMap<string, AnyMessage> = new Map();
    if (stream.group !== null) {
      const snapshot = this.store.get(stream.group)?.snapshot ?? null;
      if (snapshot === null) return; // no valid config yet: the node waits
      version = snapshot.version;
      all = snapshot.resources.get(typeUrl) ?? all;
    }
    const body = deltaResponse(sub.delta!, all, first);
    if (body === null) return;
    const nonce = String(++this.nonceCounter);
    Object.assign(sub, { versionSent: version, nonceSent: nonce, sentAt: new Date(), resourcesSent: body.resources.length });
    stream.call.write({
      system_version_info: version,
      type_url: typeUrl,
      nonce,
      resources: body.resources,
      removed_resources: body.removed,
      control_plane: { identifier: this.identifier },
    });
    this.log.debug({ stream: stream.id, node: stream.node?.id, type: SHORT[typeUrl], version, nonce, resources: body.resources.length, removed: body.removed.length }, 'sent (delta)');
  }

  private send(stream: Stream, typeUrl: string): void {
    if (stream.closed) return;
    const sub = stream.types.get(typeUrl)!;
    let version = NO_GROUP_VERSION;
    let resources: AnyMessage[] = [];
    if (stream.group !== null) {
      const snapshot = this.store.get(stream.group)?.snapshot ?? null;
      if (snapshot === null) {
        // The group's file exists but never held a valid config: nothing to send yet.
        // The node keeps what it runs; the first valid snapshot is pushed.
        this.log.warn({ stream: stream.id, node: stream.node?.id, group: stream.group, type: SHORT[typeUrl] }, 'group has no valid snapshot yet; the node waits');
        return;
      }
      version = snapshot.version;
      const all = snapshot.resources.get(typeUrl) ?? new Map<string, AnyMessage>();
      if (isWildcard(typeUrl, sub.names)) {
        resources = [...all.values()];
      } else {
        for (const name of new Set(sub.names)) {
          const r = all.get(name);
          if (r !== undefined) resources.push(r);
        }
      }
    }
    const nonce = String(++this.nonceCounter);
    sub.versionSent = version;
    sub.nonceSent = nonce;
    sub.sentAt = new Date();
    sub.resourcesSent = resources.length;
    stream.call.write({
      version_info: version,
      resources,
      type_url: typeUrl,
      nonce,
      control_plane: { identifier: this.identifier },
    });
    this.log.debug({ stream: stream.id, node: stream.node?.id, type: SHORT[typeUrl], version, nonce, resources: resources.length }, 'sent');
  }

  /** With a guard: whether the stream's caller may be served `group`; ends it
   *  PERMISSION_DENIED when not. */
  private mayServe(stream: Stream, group: string | null): boolean {
    if (this.guard === null || group === null) return true;
    const problem = this.guard.check(stream.principal?.identities ?? [], group);
    if (problem === null) return true;
    this.refuse(stream, grpc.status.PERMISSION_DENIED, 'group_not_allowed', `node "${stream.node?.id ?? ''}" (cluster "${stream.node?.cluster ?? ''}"): ${problem}`);
    return false;
  }

  private refuse(stream: Stream, code: grpc.status, reason: RefusalReason, message: string): void {
    this.refusals.set(reason, (this.refusals.get(reason) ?? 0) + 1);
    const suppressed = this.refusalLogs.admit(reason, Date.now());
    if (suppressed !== null) {
      this.log.warn(
        { stream: stream.id, peer: stream.peer, principal: stream.principal?.name, code: grpc.status[code], reason, ...(suppressed > 0 ? { suppressed_since_last: suppressed } : {}) },
        `xDS stream refused: ${message}`,
      );
    }
    this.end(stream, code, message);
  }

  private end(stream: Stream, code: grpc.status, details: string): void {
    if (stream.closed) return;
    stream.closed = true;
    this.streams.delete(stream.id);
    stream.call.emit('error', { code, details });
  }
}
