// The control plane's management API: remora.control.v1.ControlPlane, defined in
// proto/remora/control/v1/control.proto and loaded with @grpc/proto-loader (keepCase).
// ListNodes reports every connected ADS stream with the version each type was sent,
// ACKed and NACKed; PushSnapshot validates a config and makes it a group's next snapshot;
// GetMeshCaStats returns the mesh CA's counts (issued by identity, refused by reason).

import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import { formatErrors } from '../config/load.js';
import { loadRemoraService } from '../control/remora-protos.js';
import type { Logger } from '../core/log.js';
import type { AdsService, NodeStatus } from './ads.js';
import type { MeshCa } from './mesh-ca.js';
import type { SnapshotStore } from './snapshots.js';

const PROTO_FILE = 'remora/control/v1/control.proto';

export interface ControlPlaneProtos {
  readonly definition: protoLoader.PackageDefinition;
  /** remora.control.v1.ControlPlane, for grpc-js clients and servers. */
  readonly ControlPlane: grpc.ServiceClientConstructor;
}

let cached: ControlPlaneProtos | null = null;

export function loadControlPlaneProtos(): ControlPlaneProtos {
  if (cached !== null) return cached;
  const { definition, service } = loadRemoraService(PROTO_FILE, 'ControlPlane');
  cached = { definition, ControlPlane: service };
  return cached;
}

const timestamp = (d: Date | null): { seconds: string; nanos: number } | null =>
  d === null ? null : { seconds: String(Math.floor(d.getTime() / 1000)), nanos: (d.getTime() % 1000) * 1e6 };

/** A NodeStatus as a remora.control.v1.Node message. */
export function nodeMessage(n: NodeStatus): Record<string, unknown> {
  return {
    id: n.id,
    cluster: n.cluster,
    group: n.group ?? '',
    connected_since: timestamp(n.connectedSince),
    peer: n.peer,
    principal: n.principal ?? '',
    stream_id: n.streamId,
    types: n.types.map((t) => ({
      type_url: t.typeUrl,
      resource_names: t.resourceNames,
      version_sent: t.versionSent,
      nonce_sent: t.nonceSent,
      sent_at: timestamp(t.sentAt),
      resources_sent: t.resourcesSent,
      version_acked: t.versionAcked,
      acked_at: timestamp(t.ackedAt),
      last_nack:
        t.lastNack === null
          ? null
          : {
              version: t.lastNack.version,
              nonce: t.lastNack.nonce,
              error_message: t.lastNack.errorMessage,
              error_code: t.lastNack.errorCode,
              time: timestamp(t.lastNack.time),
              version_kept: t.lastNack.versionKept,
            },
      nack_count: t.nackCount,
    })),
  };
}

export type PushOutcome =
  | { ok: true; group: string; version: string; changed: boolean; nodesPushed: number }
  | { ok: false; message: string };

/** PushSnapshot's logic, shared by the gRPC handler and RunningControlPlane.pushSnapshot. */
export function pushSnapshot(store: SnapshotStore, ads: AdsService, log: Logger, group: string, text: string): PushOutcome {
  const result = store.push(group, text);
  if (!result.ok) {
    const message = formatErrors(`PushSnapshot group "${group}"`, result.errors);
    log.warn({ group, errors: result.errors.map((e) => `${e.path}: ${e.message}`) }, 'PushSnapshot rejected');
    return { ok: false, message };
  }
  const nodesPushed = result.changed ? ads.countNodes(group) : 0;
  log.info({ group, version: result.snapshot.version, changed: result.changed, nodes: nodesPushed }, 'PushSnapshot accepted');
  return { ok: true, group, version: result.snapshot.version, changed: result.changed, nodesPushed };
}

/** What the mesh CA part of the management API reads. */
export type MeshCaView = Pick<MeshCa, 'trustDomain' | 'authnMethods' | 'stats'>;

/** A GetMeshCaStats answer as a remora.control.v1.MeshCaStats message. */
export function meshCaStatsMessage(ca: MeshCaView | null): Record<string, unknown> {
  if (ca === null) return { enabled: false, trust_domain: '', authn_methods: [], issued_total: 0, issued_by_identity: {}, refused_by_reason: {} };
  const s = ca.stats();
  return { enabled: true, trust_domain: ca.trustDomain, authn_methods: ca.authnMethods, issued_total: s.issued, issued_by_identity: s.issuedByIdentity, refused_by_reason: s.refused };
}

export function managementHandlers(store: SnapshotStore, ads: AdsService, log: Logger, meshCa: MeshCaView | null = null): grpc.UntypedServiceImplementation {
  return {
    GetMeshCaStats: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      callback(null, meshCaStatsMessage(meshCa));
    },
    ListNodes: (call: grpc.ServerUnaryCall<{ group?: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      callback(null, { nodes: ads.nodes(call.request.group ?? '').map(nodeMessage) });
    },
    PushSnapshot: (
      call: grpc.ServerUnaryCall<{ group?: string; config_yaml?: string }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      const outcome = pushSnapshot(store, ads, log, call.request.group ?? '', call.request.config_yaml ?? '');
      if (!outcome.ok) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: outcome.message });
        return;
      }
      callback(null, { group: outcome.group, version: outcome.version, changed: outcome.changed, nodes_pushed: outcome.nodesPushed });
    },
  };
}
