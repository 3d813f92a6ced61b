// Helpers of the xDS translation tests: a validated config, its bootstrap part, its
// resources as a sidecar receives them (encoded as Anys and decoded again), a hand-edited
// set put back on the wire, the HttpConnectionManager of a listener, read and written, and
// a scripted ADS server (startScriptedAds) for tests of the sidecar's xDS client.

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

/** Envoy resources from a Remora config: listener "main" (port 0, RDS "main") routing
 *  /b to cluster b and everything else to cluster a; clusters a and b (static), and a
 *  as an EDS cluster with its assignment. */
export function twoClusterResources(aPort: number, bPort: number) {
  const config = valid({
    listeners: [{
      name: 'main', address: '127.0.0.1', port: 0,
      virtual_hosts: [{ name: 'all', domains: ['*'], routes: [
        { name: 'to-b', match: { prefix: '/b' }, route: { cluster: 'b' } },
        { name: 'to-a', match: { prefix: '/' }, route: { cluster: 'a' } },
      ] }],
    }],
    clusters: [
      { name: 'a', endpoints: [{ address: '127.0.0.1', port: aPort }] },
      { name: 'b', endpoints: [{ address: '127.0.0.1', port: bPort }] },
    ],
  });
  const fixed = toXdsResources(config, { edsForAllClusters: false });
  const eds = toXdsResources(config, { edsForAllClusters: true });
  return {
    listener: fixed.listeners.get('main')!,
    routes: fixed.routes.get('main')!,
    a: fixed.clusters.get('a')!,
    b: fixed.clusters.get('b')!,
    aEds: eds.clusters.get('a')!,
    aAssignment: eds.endpoints.get('a')!,
  };
}

/** A scripted ADS server: the test decides each response (type, version, resources, even
 *  duplicates, raw Anys, or resources a real control plane would not send) and reads every request
 *  the sidecar sends back (ACKs, NACKs, subscriptions). A stream opened later gets the
 *  last response of each type when it first asks for that type. */
export interface ScriptedAds {
  readonly port: number;
  /** Every DiscoveryRequest received, in order. */
  readonly requests: Obj[];
  /** Sends a response on every open stream; returns its nonce. */
  push(typeUrl: string, version: string, resources: readonly Obj[]): string;
  /** The request that answers `nonce` (an ACK, or a NACK with error_detail). */
  answer(nonce: string, ms?: number): Promise<Obj>;
  /** The first request (received already or to come) that `match` accepts. */
  waitFor(match: (req: Obj) => boolean, ms?: number): Promise<Obj>;
  /** The last request of `typeUrl` received. */
  last(typeUrl: string): Obj | undefined;
  /** Delta only: sends a DeltaDiscoveryResponse (each resource with its own version, and
   *  the names removed) on every open stream; returns its nonce. */
  pushDelta(typeUrl: string, systemVersion: string, resources: readonly { name: string; version: string; resource: Obj }[], removed?: readonly string[]): string;
  /** Ends every open stream with UNAVAILABLE (the sidecar reconnects). */
  dropStreams(): void;
  close(): Promise<void>;
}

/** `delta`: serve DeltaAggregatedResources (the test pushes with pushDelta) instead of
 *  StreamAggregatedResources. `sdsSocket`: serve the Secret Discovery Service
 *  (StreamSecrets, as Istio's istio-agent does) on that Unix socket instead (`port` is 0). */
export async function startScriptedAds(opts: { delta?: boolean; sdsSocket?: string } = {}): Promise<ScriptedAds> {
  const grpc = await import('@grpc/grpc-js');
  const requests: Obj[] = [];
  const streams = new Set<import('@grpc/grpc-js').ServerDuplexStream<Obj, Obj>>();
  const lastResponse = new Map<string, { version: string; resources: readonly Obj[] }>();
  const waiters: { match: (req: Obj) => boolean; resolve: (r: Obj) => void }[] = [];
  let nonces = 0;
  const respond = (stream: import('@grpc/grpc-js').ServerDuplexStream<Obj, Obj>, typeUrl: string, version: string, resources: readonly Obj[]): string => {
    const nonce = String(++nonces);
    // A resource given as an Any of this type goes out byte for byte (a test's hand-made bytes).
    const encode = (r: Obj): unknown => (r.type_url === typeUrl && r.value instanceof Uint8Array ? r : protos.encodeAny(typeUrl, r));
    stream.write({ version_info: version, type_url: typeUrl, nonce, resources: resources.map(encode) });
    return nonce;
  };
  const server = new grpc.Server();
  const sds = opts.sdsSocket !== undefined;
  const method = sds ? 'StreamSecrets' : opts.delta === true ? 'DeltaAggregatedResources' : 'StreamAggregatedResources';
  server.addService(sds ? protos.sds.service : protos.ads.service, {
    [method]: (stream: import('@grpc/grpc-js').ServerDuplexStream<Obj, Obj>) => {
      streams.add(stream);
      const asked = new Set<string>();
      stream.on('data', (req: Obj) => {
        requests.push(req);
        for (const w of waiters.slice()) {
          if (w.match(req)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(req);
          }
        }
        const typeUrl = String(req.type_url);
        const last = lastResponse.get(typeUrl);
        if (!asked.has(typeUrl) && last !== undefined && opts.delta !== true) respond(stream, typeUrl, last.version, last.resources);
        asked.add(typeUrl);
      });
      stream.on('error', () => streams.delete(stream));
      stream.on('end', () => {
        streams.delete(stream);
        stream.end();
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(sds ? `unix:${opts.sdsSocket}` : '127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const ads: ScriptedAds = {
    port,
    requests,
    push(typeUrl, version, resources) {
      lastResponse.set(typeUrl, { version, resources });
      let nonce = '';
      for (const s of streams) nonce = respond(s, typeUrl, version, resources);
      return nonce;
    },
    answer(nonce, ms = 10_000) {
      return ads.waitFor((r) => nonce !== '' && String(r.response_nonce ?? '') === nonce, ms);
    },
    waitFor(match, ms = 10_000) {
      const found = requests.find(match);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching xDS request in ${ms} ms`)), ms);
        waiters.push({ match, resolve: (r) => (clearTimeout(timer), resolve(r)) });
      });
    },
    last(typeUrl) {
      return requests.filter((r) => r.type_url === typeUrl).at(-1);
    },
    pushDelta(typeUrl, systemVersion, resources, removed = []) {
      let nonce = '';
      for (const st of streams) {
        nonce = String(++nonces);
        st.write({
          system_version_info: systemVersion, type_url: typeUrl, nonce, removed_resources: [...removed],
          resources: resources.map((r) => ({ name: r.name, version: r.version, resource: protos.encodeAny(typeUrl, r.resource) })),
        });
      }
      return nonce;
    },
    dropStreams() {
      for (const st of [...streams]) {
        streams.delete(st);
        st.emit('error', { code: grpc.status.UNAVAILABLE, details: 'dropped by the test' });
      }
    },
    close() {
      server.forceShutdown();
      return Promise.resolve();
    },
  };
  return ads;
}
