// The second validation pass for a cluster's `dns` block (what its schema cannot say):
// the failure backoff's maximum defaults to 10 × its base (Envoy) and is at least the
// base. A DNS cluster may list IP literals: they are used as they are, never queried.

import { at, type SchemaWalk } from './schema/walk.js';
import type { Cluster } from './types.js';

type Draft<T> = { -readonly [K in keyof T]: T[K] };

export function checkClusterDns(w: SchemaWalk, c: Draft<Cluster>, path: string): void {
  const f = c.dns?.failure_refresh_rate as Draft<NonNullable<NonNullable<Cluster['dns']>['failure_refresh_rate']>> | undefined;
  if (f === undefined) return;
  const p = at(at(path, 'dns'), 'failure_refresh_rate');
  if (!w.given(f, 'max_ms')) f.max_ms = Math.min(10 * f.base_ms, 3_600_000);
  else if (!w.erred(at(p, 'base_ms')) && !w.erred(at(p, 'max_ms')) && f.max_ms < f.base_ms) w.err(at(p, 'max_ms'), `must be at least base_ms (${f.base_ms})`);
}
