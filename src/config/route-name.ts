// The default name of a route that has none, derived from what it matches (so state kept
// by route name follows the route's identity, not its position in the list).

import { createHash } from 'node:crypto';
import type { RouteMatch } from './types.js';

/** The name of a route that has none: `<vhost>/<first 8 hex digits of a SHA-256 of its
 *  match>`, so that state kept by route name (rate-limit buckets, stats) follows the
 *  route's identity, not its position: inserting a route above it changes nothing. Two
 *  unnamed routes with the same match in one listener get `-2`, `-3`... in order. */
export function defaultRouteName(vhost: string, m: RouteMatch, taken: ReadonlyMap<string, string>): string {
  const identity = JSON.stringify([
    m.prefix ?? null,
    m.path ?? null,
    m.regex ?? null,
    [...m.methods].sort(),
    // (query parameters only when there are some: names of routes without stay as they were)
    ...[m.headers, m.query_parameters].filter((list, i) => i === 0 || list.length > 0)
      .map((list) => list.filter((h) => h !== undefined).map((h) => [h.name, h.exact ?? null, h.regex ?? null, h.present ?? null])),
  ]);
  const base = `${vhost}/${createHash('sha256').update(identity).digest('hex').slice(0, 8)}`;
  let candidate = base;
  for (let n = 2; taken.has(candidate); n++) candidate = `${base}-${n}`;
  return candidate;
}
