// What the mesh CA counts and how often it logs refusals. Issuances are counted by SPIFFE
// ID and refusals by reason (ca-authn.ts, RefusalReason): the management API's
// GetMeshCaStats and RunningControlPlane.meshCa.stats() return them, and the control
// plane logs them when it stops. The number of identities counted is bounded (a caller
// in insecure mode could ask for any number of IDs): past MAX_IDENTITIES, new ones are
// counted under "_other". Refusal log lines are limited per reason: REFUSAL_LOGS_PER_MINUTE
// a minute, and the next line logged says how many were left out.

import type { RefusalReason } from './ca-authn.js';

export const MAX_IDENTITIES = 10_000;
export const OTHER_IDENTITY = '_other';
export const REFUSAL_LOGS_PER_MINUTE = 20;
const WINDOW_MS = 60_000;

export interface MeshCaStats {
  /** Certificates issued since start. */
  readonly issued: number;
  /** Certificates issued since start, by SPIFFE ID. */
  readonly issuedByIdentity: Readonly<Record<string, number>>;
  /** Requests refused since start, by reason (missing_token, identity_mismatch, ...). */
  readonly refused: Readonly<Record<string, number>>;
}

export class MeshCaCounters {
  private issued = 0;
  private readonly byIdentity = new Map<string, number>();
  private readonly byReason = new Map<RefusalReason, number>();

  issue(identity: string): void {
    this.issued++;
    const key = this.byIdentity.has(identity) || this.byIdentity.size < MAX_IDENTITIES ? identity : OTHER_IDENTITY;
    this.byIdentity.set(key, (this.byIdentity.get(key) ?? 0) + 1);
  }

  refuse(reason: RefusalReason): void {
    this.byReason.set(reason, (this.byReason.get(reason) ?? 0) + 1);
  }

  snapshot(): MeshCaStats {
    return {
      issued: this.issued,
      issuedByIdentity: Object.fromEntries([...this.byIdentity].sort(([a], [b]) => (a < b ? -1 : 1))),
      refused: Object.fromEntries([...this.byReason].sort(([a], [b]) => (a < b ? -1 : 1))),
    };
  }
}

/** Per reason: the first REFUSAL_LOGS_PER_MINUTE refusals of each minute are logged. */
export class RefusalLogLimiter {
  private readonly windows = new Map<RefusalReason, { start: number; logged: number; suppressed: number }>();

  constructor(private readonly perWindow = REFUSAL_LOGS_PER_MINUTE) {}

  /** null: do not log this one. Otherwise how many of this reason were left out since
   *  the last line. */
  admit(reason: RefusalReason, nowMs: number): number | null {
    let w = this.windows.get(reason);
    if (w === undefined || nowMs - w.start >= WINDOW_MS) {
      const suppressed = w?.suppressed ?? 0;
      w = { start: nowMs, logged: 0, suppressed: 0 };
      this.windows.set(reason, w);
      w.logged++;
      return suppressed;
    }
    if (w.logged >= this.perWindow) {
      w.suppressed++;
      return null;
    }
    w.logged++;
    return 0;
  }
}
