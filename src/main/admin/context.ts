// What every admin handler is given: the stats context (admin-stats.ts) plus the
// lifecycle, the config source, the TLS files and the way to ask Remora to stop. Kept
// apart from src/main/context.ts because it names Metrics, and metrics.ts imports that
// leaf (one module holding both would be an import cycle).

import type { CertStore } from '../cert-store.js';
import type { ConfigSourceInfo, RemoraControl } from '../context.js';
import type { Lifecycle } from '../lifecycle.js';
import type { AdminReply, StatsContext } from '../admin-stats.js';

export type { AdminReply } from '../admin-stats.js';

export interface AdminContext extends StatsContext, RemoraControl {
  /** REMORA_FAULT_INJECTION=1: the /debug/* handlers act (tests only). */
  readonly faultInjection: boolean;
  readonly lifecycle: Lifecycle;
  /** The config source when it is not a file (xDS), or null. */
  readonly source: ConfigSourceInfo | null;
  /** TLS files in use (listeners and clusters), their expiry and rotations. */
  readonly certs: CertStore;
}

/** One admin path: the reply to a request, from the context and the request URL. */
export type AdminHandler = (ctx: AdminContext, url: URL) => Promise<AdminReply> | AdminReply;
