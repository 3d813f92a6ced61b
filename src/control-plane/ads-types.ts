// The shapes the ADS server (ads.ts) reads and reports: a DiscoveryRequest as decoded,
// what ListNodes returns per stream and type, NACK records, and the guard that decides
// who may be served what (with TLS).

import type { AuthnOutcome } from './ca-authn.js';
import type { ServerCall } from './caller.js';

/** A DiscoveryRequest as proto-loader decodes it (only set fields present). */
export interface DiscoveryRequest {
  version_info?: string;
  node?: { id?: string; cluster?: string };
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

export interface NackRecord {
  /** The version the node rejected (sent with `nonce`). */
  readonly version: string;
  readonly nonce: string;
  readonly errorMessage: string;
  readonly errorCode: number;
  readonly time: Date;
  /** The NACK's version_info: the version the node keeps running. */
  readonly versionKept: string;
}

export interface TypeStatus {
  readonly typeUrl: string;
  /** Empty = wildcard. */
  readonly resourceNames: readonly string[];
  readonly versionSent: string;
  readonly nonceSent: string;
  readonly sentAt: Date | null;
  readonly resourcesSent: number;
  readonly versionAcked: string;
  readonly ackedAt: Date | null;
  readonly lastNack: NackRecord | null;
  readonly nackCount: number;
}

/** Who may be served what (with TLS): the caller's identity, then its group. */
export interface AdsGuard {
  authenticate(call: ServerCall): AuthnOutcome;
  /** Null when `identities` (null: any) may be served `group`, else why not. */
  check(identities: readonly string[] | null, group: string): string | null;
}

export interface NodeStatus {
  readonly streamId: string;
  readonly id: string;
  readonly cluster: string;
  /** The group served; null when none matched (empty resource sets are sent). */
  readonly group: string | null;
  readonly connectedSince: Date;
  readonly peer: string;
  /** Who the caller proved to be (with TLS), e.g. `certificate 1A2B…`; null without. */
  readonly principal: string | null;
  readonly types: readonly TypeStatus[];
}

