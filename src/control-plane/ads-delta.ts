// Incremental (delta) xDS on the reference control plane's ADS server: the parts of
// DeltaAggregatedResources that differ from state of the world (ads.ts keeps the streams,
// nodes, groups, ACKs and NACKs for both). Per stream and type the server knows what the
// node subscribes to (`*` for every resource of the type, or names) and which version of
// each resource the node holds: what it said in initial_resource_versions when the
// stream opened, then what was sent to it. A response carries only the resources whose
// version differs from the node's, and removed_resources for those the node holds that
// are gone (or, subscribed by name, do not exist); nothing is sent when nothing differs,
// but for the first answer of a type on a stream. A resource's version is the first 16
// hex digits of the SHA-256 of its encoding: the same on every replica.

import { createHash } from 'node:crypto';
import type { AnyMessage } from '../xds/protos.js';

/** A DeltaDiscoveryRequest as proto-loader decodes it (only set fields present). */
export interface DeltaRequest {
  node?: { id?: string; cluster?: string };
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

/** What the server knows of one type on one delta stream. */
export interface DeltaTypeState {
  wildcard: boolean;
  readonly names: Set<string>;
  /** Resource name → the version the node holds. */
  readonly known: Map<string, string>;
}

export interface DeltaResponseBody {
  readonly resources: { name: string; version: string; resource: AnyMessage }[];
  readonly removed: string[];
}

const versions = new WeakMap<AnyMessage, string>();

/** The version of an encoded resource (cached per snapshot object). */
export function resourceVersion(any: AnyMessage): string {
  let v = versions.get(any);
  if (v === undefined) {
    v = createHash('sha256').update(any.value).digest('hex').slice(0, 16);
    versions.set(any, v);
  }
  return v;
}

/** The state of a type on its first request: a wildcard subscription when the request
 *  names `*`, or names nothing for a type that is wildcard by default (LDS, CDS: the
 *  legacy form); the versions the node says it holds. */
export function firstDeltaState(req: DeltaRequest, wildcardByDefault: boolean): DeltaTypeState {
  const subscribe = req.resource_names_subscribe ?? [];
  const state: DeltaTypeState = { wildcard: subscribe.includes('*') || (subscribe.length === 0 && wildcardByDefault), names: new Set(), known: new Map() };
  for (const n of subscribe) if (n !== '*') state.names.add(n);
  for (const [name, version] of Object.entries(req.initial_resource_versions ?? {})) state.known.set(name, version);
  return state;
}

/** Applies a later request's subscription changes; whether anything changed. */
export function changeSubscription(state: DeltaTypeState, req: DeltaRequest): boolean {
  let changed = false;
  for (const n of req.resource_names_subscribe ?? []) {
    if (n === '*') {
      changed ||= !state.wildcard;
      state.wildcard = true;
    } else if (!state.names.has(n)) {
      state.names.add(n);
      changed = true;
    }
  }
  for (const n of req.resource_names_unsubscribe ?? []) {
    if (n === '*') {
      changed ||= state.wildcard;
      state.wildcard = false;
    } else if (state.names.delete(n)) {
      changed = true;
      // The node forgets it; subscribing again must send it again.
      state.known.delete(n);
    }
  }
  return changed;
}

/** What to send for `all` (the group's resources of the type): resources whose version the
 *  node does not hold, and names it holds that are gone. Null when there is nothing and
 *  `force` is false. Updates `known` to what the node will hold. */
export function deltaResponse(state: DeltaTypeState, all: ReadonlyMap<string, AnyMessage>, force: boolean): DeltaResponseBody | null {
  const wanted = state.wildcard ? [...all.keys(), ...[...state.names].filter((n) => !all.has(n))] : [...state.names];
  const resources: DeltaResponseBody['resources'] = [];
  const removed: string[] = [];
  for (const name of new Set(wanted)) {
    const r = all.get(name);
    if (r === undefined) {
      if (state.known.delete(name) || (!state.wildcard && force)) removed.push(name);
      continue;
    }
    const version = resourceVersion(r);
    if (state.known.get(name) === version) continue;
    state.known.set(name, version);
    resources.push({ name, version, resource: r });
  }
  // Held but no longer wanted at all (a wildcard dropped, or the resource gone).
  for (const name of [...state.known.keys()]) {
    if (!all.has(name) || (!state.wildcard && !state.names.has(name))) {
      state.known.delete(name);
      if (!removed.includes(name)) removed.push(name);
    }
  }
  if (resources.length === 0 && removed.length === 0 && !force) return null;
  return { resources, removed };
}
