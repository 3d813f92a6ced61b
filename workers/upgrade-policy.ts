// Which HTTP/1.1 upgrades a request may make (Envoy's upgrade_configs): the listener's list
// of enabled types, overridden per type by the matched route's own list (`enabled: false`
// refuses a type the listener allows, `true` allows one it does not list). Compiled once
// per snapshot (workers/context.ts); the upgrade pipeline (upgrade-exchange.ts) asks
// upgradeAllowed once per upgrade request. `Upgrade: h2c` never gets here: the strict
// codec serves it as a plain HTTP/1.1 request (upgrade-h2c.ts).

import type { UpgradeConfig } from '../src/config/types.js';

const NO_UPGRADES: ReadonlySet<string> = new Set();

/** The types a listener's upgrade_configs enable (names are lower-cased by the schema). */
export function compileListenerUpgrades(configs: readonly UpgradeConfig[]): ReadonlySet<string> {
  if (configs.length === 0) return NO_UPGRADES;
  const out = new Set<string>();
  for (const c of configs) {
    if (c.enabled) out.add(c.upgrade_type);
    else out.delete(c.upgrade_type);
  }
  return out;
}

/** A route's overrides by type; null when it has none (the listener decides). */
export function compileRouteUpgrades(configs: readonly UpgradeConfig[]): ReadonlyMap<string, boolean> | null {
  if (configs.length === 0) return null;
  const out = new Map<string, boolean>();
  for (const c of configs) out.set(c.upgrade_type, c.enabled);
  return out;
}

/** Whether an upgrade to `type` (lower-case) may go upstream: the route's entry for the
 *  type when it has one, else the listener's. */
export function upgradeAllowed(listener: ReadonlySet<string>, route: ReadonlyMap<string, boolean> | null, type: string): boolean {
  const override = route === null ? undefined : route.get(type);
  return override !== undefined ? override : listener.has(type);
}

/** The request's `Upgrade` value as sent, trimmed ('' when it has none), from a flat
 *  [name, value, ...] list with lower-case names; repeated fields are joined. Its
 *  lower-cased form is the type the policy looks up: several protocols offered in one
 *  value are compared as a whole, as Envoy does. */
export function upgradeValue(headers: readonly string[]): string {
  let value = '';
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] === 'upgrade') value = value === '' ? headers[i + 1].trim() : `${value}, ${headers[i + 1].trim()}`;
  }
  return value;
}
