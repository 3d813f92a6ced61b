// Helpers of the xDS translation tests: a validated config, its bootstrap part, its
// resources as a sidecar receives them (encoded as Anys and decoded again), a hand-edited
// set put back on the wire, and the HttpConnectionManager of a listener, read and written.

import { validateConfig } from '../../src/config/validate.js';
import type { RemoraConfig } from '../../src/config/types.js';
import type { XdsResourceSet } from '../../src/xds/resources.js';
import { formatRejection, type XdsTranslateResult } from '../../src/xds/translate.js';
import { toXdsResources } from '../../src/xds/encode.js';
import { loadXdsProtos, TypeUrl, type AnyMessage, type ProtoObject } from '../../src/xds/protos.js';

export type Obj = ProtoObject;

/** A resource set whose maps tests edit in place. */
export interface MutableSet {
  listeners: Map<string, Obj>;
  routes: Map<string, Obj>;
  clusters: Map<string, Obj>;
  endpoints: Map<string, Obj>;
}

export const protos = loadXdsProtos();

export function valid(raw: unknown): RemoraConfig {
  const r = validateConfig(raw, { defaultWorkers: 2 });
  if (!r.ok) throw new Error(`test config invalid: ${JSON.stringify(r.errors)}`);
  return r.config;
}

/** The bootstrap part of a config (what a sidecar's file holds besides `xds`). */
export function baseOf(c: RemoraConfig): Record<string, unknown> {
  return { workers: c.workers, admin: c.admin, ...(c.probes ? { probes: c.probes } : {}), drain: c.drain, worker_limits: c.worker_limits, stats: c.stats };
}

/** Each resource of `m` encoded as an Any of `typeUrl` and decoded again. */
export const wire = (typeUrl: string, m: ReadonlyMap<string, Obj>): Map<string, Obj> =>
  new Map([...m].map(([k, v]) => [k, protos.decodeAny(protos.encodeAny(typeUrl, v)).message]));

/** Resources as a sidecar receives them: encoded as Anys and decoded again. */
export function overTheWire(config: RemoraConfig, edsForAllClusters = true): MutableSet {
  return rewire(toXdsResources(config, { edsForAllClusters }));
}

/** Re-encodes and decodes a hand-edited set, as the wire would deliver it. */
export function rewire(set: MutableSet | XdsResourceSet): MutableSet {
  return {
    listeners: wire(TypeUrl.Listener, set.listeners),
    routes: wire(TypeUrl.RouteConfiguration, set.routes),
    clusters: wire(TypeUrl.Cluster, set.clusters),
    endpoints: wire(TypeUrl.ClusterLoadAssignment, set.endpoints),
  };
}

export const obj = (v: unknown): Obj => v as Obj;
export const arr = (v: unknown): Obj[] => v as Obj[];

/** The HttpConnectionManager of a listener, decoded; `setHcm` puts an edited one back. */
export function hcmOf(listener: Obj): Obj {
  const tc = obj(arr(arr(listener.filter_chains)[0].filters)[0].typed_config) as unknown as AnyMessage;
  return protos.decodeAny(tc).message;
}
export function setHcm(listener: Obj, hcm: Obj): void {
  arr(arr(listener.filter_chains)[0].filters)[0].typed_config = protos.encodeAny(TypeUrl.HttpConnectionManager, hcm);
}

/** A translation's errors as formatted for a NACK ([] when it succeeded). */
export function errorsOf(result: XdsTranslateResult): string[] {
  return result.ok ? [] : result.errors.map(formatRejection);
}
