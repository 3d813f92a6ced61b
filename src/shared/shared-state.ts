// Layout of the process-wide resilience state: ONE SharedArrayBuffer that every worker
// and the main thread map, holding circuit-breaker resources per cluster, health and
// outlier counters per endpoint, token buckets per rate limit, and the per-key rate-limit
// table. (Per-worker counters and heartbeats live in the stats slabs, stats-layout.ts.)
// This is the only module that does offset arithmetic on this buffer.
//
// Who writes what (one writer per decision word):
// - Workers add/subtract resource counts (CAS-free add-then-check, see ResourceLimit),
//   count per-endpoint outcomes, and take tokens (CAS loops in token-bucket.ts).
// - The main thread writes endpoint state words (ejected, unhealthy, probation) and
//   bumps the cluster's health generation so workers rebuild their healthy lists.
//
// Slots for clusters, endpoints and buckets are handed out by name (SlotRegistry), so a
// name keeps its state across config reloads.

import { MAX_BUCKETS, MAX_CLUSTERS, MAX_ENDPOINTS, KEYED_BUCKET_ENTRIES } from './limits.js';

/** Per-cluster cells: circuit-breaker resources in use, across all workers. */
export const ClusterCell = {
  RqActive: 0,
  RqPending: 1,
  CxActive: 2,
  RetriesActive: 3,
  /** Bumped by the main thread whenever an endpoint's state word in this cluster changes. */
  HealthGeneration: 4,
} as const;
export const CLUSTER_CELLS = 8;

/** The circuit-breaker resources, in ClusterCell order. */
export const RESOURCES = ['requests', 'pending', 'connections', 'retries'] as const;
export type ResourceName = (typeof RESOURCES)[number];

/** Per-endpoint cells. */
export const EndpointCell = {
  /** EndpointState bits; written only by the main thread. */
  State: 0,
  /** Consecutive 5xx / gateway failures; workers add on failure, store 0 on success. */
  Consecutive5xx: 1,
  ConsecutiveGateway: 2,
  /** Requests and successes since the main thread last took them (success-rate). */
  RqTotal: 3,
  RqSuccess: 4,
  /** Requests in flight to this endpoint, all workers. */
  RqActive: 5,
  /** Trial requests left while on probation; workers take one by CAS. */
  ProbationTokens: 6,
} as const;
export const ENDPOINT_CELLS = 8;

/** Bits of EndpointCell.State. Zero = healthy. */
export const EndpointState = {
  /** Failed active health checks. */
  Unhealthy: 1,
  /** Ejected by outlier detection. */
  Ejected: 2,
  /** Back from an ejection on probation: only trial requests (ProbationTokens). */
  Probation: 4,
  /** Active health checking is on and the first check has not finished. */
  Pending: 8,
} as const;

/** Cells of one token bucket (token-bucket.ts). */
export const BUCKET_CELLS = 2;
/** Cells of one per-key table entry (keyed-buckets.ts). */
export const KEYED_ENTRY_CELLS = 6;

/** Process-wide counters of the per-key table. */
export const GlobalCell = {
  KeyedInserts: 0,
  KeyedEvictions: 1,
  KeyedLive: 2,
} as const;
export const GLOBAL_CELLS = 8;

/** Offsets of every region, computed once. */
export class SharedStateLayout {
  readonly clusterStart = 0;
  readonly endpointStart = MAX_CLUSTERS * CLUSTER_CELLS;
  readonly bucketStart = this.endpointStart + MAX_ENDPOINTS * ENDPOINT_CELLS;
  readonly globalStart = this.bucketStart + MAX_BUCKETS * BUCKET_CELLS;
  readonly keyedStart = this.globalStart + GLOBAL_CELLS;
  readonly keyedEntries = KEYED_BUCKET_ENTRIES;
  readonly cells = this.keyedStart + KEYED_BUCKET_ENTRIES * KEYED_ENTRY_CELLS;

  cluster(slot: number): number {
    return this.clusterStart + slot * CLUSTER_CELLS;
  }

  endpoint(slot: number): number {
    return this.endpointStart + slot * ENDPOINT_CELLS;
  }

  bucket(slot: number): number {
    return this.bucketStart + slot * BUCKET_CELLS;
  }

  allocate(): SharedArrayBuffer {
    return new SharedArrayBuffer(this.cells * 4);
  }
}

export const SHARED_LAYOUT = new SharedStateLayout();

/**
 * One circuit-breaker resource of one cluster (Envoy's ResourceManager entry), shared by
 * all workers. `tryAcquire` adds first and checks after: an acquire that finds the count
 * already at the limit takes its increment back. So the number of holders NEVER exceeds
 * `max` (no overshoot); under contention at the limit, up to (workers − 1) callers can be
 * refused spuriously for the instant another caller's increment is visible.
 */
export class ResourceLimit {
  constructor(
    private readonly cells: Int32Array,
    private readonly index: number,
  ) {}

  tryAcquire(max: number): boolean {
    if (Atomics.add(this.cells, this.index, 1) < max) return true;
    Atomics.sub(this.cells, this.index, 1);
    return false;
  }

  /** Takes one unconditionally (Envoy creates a connection to an endpoint that has none
   *  even past max_connections, else its requests would wait forever). */
  acquire(): void {
    Atomics.add(this.cells, this.index, 1);
  }

  release(): void {
    Atomics.sub(this.cells, this.index, 1);
  }

  get used(): number {
    return Math.max(0, Atomics.load(this.cells, this.index));
  }
}

/** The four resources of one cluster. */
export class ClusterResources {
  readonly requests: ResourceLimit;
  readonly pending: ResourceLimit;
  readonly connections: ResourceLimit;
  readonly retries: ResourceLimit;
  private readonly generationIndex: number;

  constructor(
    private readonly cells: Int32Array,
    slot: number,
  ) {
    const base = SHARED_LAYOUT.cluster(slot);
    this.requests = new ResourceLimit(cells, base + ClusterCell.RqActive);
    this.pending = new ResourceLimit(cells, base + ClusterCell.RqPending);
    this.connections = new ResourceLimit(cells, base + ClusterCell.CxActive);
    this.retries = new ResourceLimit(cells, base + ClusterCell.RetriesActive);
    this.generationIndex = base + ClusterCell.HealthGeneration;
  }

  /** Changes whenever an endpoint of the cluster changes state (main thread bumps it). */
  get healthGeneration(): number {
    return Atomics.load(this.cells, this.generationIndex);
  }

  bumpHealthGeneration(): void {
    Atomics.add(this.cells, this.generationIndex, 1);
  }
}

/** What a worker reads and counts for one endpoint. */
export class EndpointCells {
  private readonly base: number;

  constructor(
    private readonly cells: Int32Array,
    readonly slot: number,
  ) {
    this.base = SHARED_LAYOUT.endpoint(slot);
  }

  get state(): number {
    return Atomics.load(this.cells, this.base + EndpointCell.State);
  }

  get active(): number {
    return Math.max(0, Atomics.load(this.cells, this.base + EndpointCell.RqActive));
  }

  requestStarted(): void {
    Atomics.add(this.cells, this.base + EndpointCell.RqActive, 1);
  }

  requestFinished(): void {
    Atomics.sub(this.cells, this.base + EndpointCell.RqActive, 1);
  }

  /** Counts one outcome; returns the consecutive counts after it (for the threshold
   *  check) packed as two numbers in `out`. */
  outcome(is5xx: boolean, isGateway: boolean, out: Int32Array): void {
    const c = this.cells;
    const b = this.base;
    Atomics.add(c, b + EndpointCell.RqTotal, 1);
    if (!is5xx && !isGateway) {
      Atomics.add(c, b + EndpointCell.RqSuccess, 1);
      // Plain loads first: most of the time both are already 0, and a store would bounce
      // the cache line between cores.
      if (Atomics.load(c, b + EndpointCell.Consecutive5xx) !== 0) Atomics.store(c, b + EndpointCell.Consecutive5xx, 0);
      if (Atomics.load(c, b + EndpointCell.ConsecutiveGateway) !== 0) Atomics.store(c, b + EndpointCell.ConsecutiveGateway, 0);
      out[0] = 0;
      out[1] = 0;
      return;
    }
    out[0] = is5xx ? Atomics.add(c, b + EndpointCell.Consecutive5xx, 1) + 1 : 0;
    if (isGateway) out[1] = Atomics.add(c, b + EndpointCell.ConsecutiveGateway, 1) + 1;
    else {
      Atomics.store(c, b + EndpointCell.ConsecutiveGateway, 0);
      out[1] = 0;
    }
  }

  /** Takes one probation trial; false when none is left. */
  takeTrial(): boolean {
    const i = this.base + EndpointCell.ProbationTokens;
    for (;;) {
      const left = Atomics.load(this.cells, i);
      if (left <= 0) return false;
      if (Atomics.compareExchange(this.cells, i, left, left - 1) === left) return true;
    }
  }
}

/** The main thread's writer for endpoint decisions (the only writer of State). */
export class EndpointStateWriter {
  constructor(private readonly cells: Int32Array) {}

  state(slot: number): number {
    return Atomics.load(this.cells, SHARED_LAYOUT.endpoint(slot) + EndpointCell.State);
  }

  setState(slot: number, state: number, probationTokens = 0): void {
    const base = SHARED_LAYOUT.endpoint(slot);
    Atomics.store(this.cells, base + EndpointCell.ProbationTokens, probationTokens);
    Atomics.store(this.cells, base + EndpointCell.State, state);
  }

  /** Takes (and zeroes) the request and success counts since the last call. */
  takeVolume(slot: number): { total: number; success: number } {
    const base = SHARED_LAYOUT.endpoint(slot);
    return {
      total: Atomics.exchange(this.cells, base + EndpointCell.RqTotal, 0),
      success: Atomics.exchange(this.cells, base + EndpointCell.RqSuccess, 0),
    };
  }

  resetConsecutive(slot: number): void {
    const base = SHARED_LAYOUT.endpoint(slot);
    Atomics.store(this.cells, base + EndpointCell.Consecutive5xx, 0);
    Atomics.store(this.cells, base + EndpointCell.ConsecutiveGateway, 0);
  }

  read(slot: number, cell: number): number {
    return Atomics.load(this.cells, SHARED_LAYOUT.endpoint(slot) + cell);
  }

  /** Zeroes every cell of a slot about to be given to a new endpoint. */
  clear(slot: number): void {
    const base = SHARED_LAYOUT.endpoint(slot);
    for (let i = 0; i < ENDPOINT_CELLS; i++) Atomics.store(this.cells, base + i, 0);
  }
}
