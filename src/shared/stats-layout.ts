// Layout of the per-worker stats slab: a SharedArrayBuffer of 32-bit cells that one
// worker writes (Atomics.add/store) and the main thread reads (Atomics.load, or plain
// tear-free reads where it folds counters, src/stats/reader.ts). This is the only
// module that does offset arithmetic. The slab holds one block per listener slot, one
// per cluster slot, then the worker's own cells; the sizes come from the stat tables
// (src/stats/tables/, through src/stats/shapes.ts). Slots are handed out by name
// (SlotRegistry), lowest first, so a name keeps its cells across config versions and
// the blocks above the highest slot ever used are never touched: the slab is sized for
// MAX_CLUSTERS (about 6 MiB), but only the pages of used slots become resident.
//
// Counter cells wrap at 2^32; the main thread folds deltas into 64-bit totals at least
// once a second (src/stats/reader.ts), which is safe while a cell grows by less than
// 2^32 per second. Gauge cells hold a signed value (read as `value | 0`).

import { MAX_CLUSTERS, MAX_LISTENERS } from './limits.js';

// The worker cells are declared with the other stat tables (the only import from
// src/stats here, a leaf module); re-exported where workers have always taken them.
export { WORKER_CELLS, WorkerCell } from '../stats/tables/worker.js';

/** Cell counts of one listener or cluster block. Inside a block: counters first, then
 *  gauges, then the histograms one after another. */
export interface BlockShape {
  readonly counters: number;
  readonly gauges: number;
  readonly histograms: number;
  /** Cells per histogram: one per recording bucket, one overflow, one sum (µs). */
  readonly histogramCells: number;
}

export class StatsLayout {
  readonly listenerBlock: number;
  readonly clusterBlock: number;
  readonly clusterStart: number;
  /** Start of the worker block: WorkerCell values the worker itself stores. */
  readonly workerStart: number;
  /** Total 32-bit cells in one worker's slab. */
  readonly cells: number;

  constructor(
    readonly listener: BlockShape,
    readonly cluster: BlockShape,
    /** Cells of the worker block (WorkerCell). */
    readonly workerCells: number,
  ) {
    this.listenerBlock = blockSize(listener);
    this.clusterBlock = blockSize(cluster);
    this.clusterStart = MAX_LISTENERS * this.listenerBlock;
    this.workerStart = this.clusterStart + MAX_CLUSTERS * this.clusterBlock;
    this.cells = this.workerStart + workerCells;
  }

  listenerBase(slot: number): number {
    return slot * this.listenerBlock;
  }

  clusterBase(slot: number): number {
    return this.clusterStart + slot * this.clusterBlock;
  }

  /** A zeroed slab for one worker slot. */
  allocate(): SharedArrayBuffer {
    return new SharedArrayBuffer(this.cells * 4);
  }
}

function blockSize(shape: BlockShape): number {
  return shape.counters + shape.gauges + shape.histograms * shape.histogramCells;
}

/** Hands out slot numbers by name; a name keeps its slot while it is in use. A freed
 *  slot goes to the back of a FIFO free list, so it is reused as late as possible
 *  (requests still finishing on an old config may touch it for a while); `onReuse` runs
 *  before a freed slot is given to a new name, so its owner can zero the old state. */
export class SlotRegistry {
  private readonly slots = new Map<string, number>();
  private readonly free: number[] = [];
  private next = 0;

  constructor(
    private readonly capacity: number,
    private readonly onReuse: (slot: number) => void = () => {},
  ) {}

  /** Slots for exactly `names`: existing names keep theirs, new names get a never-used
   *  slot while there is one, else the longest-free one. Names no longer present give
   *  theirs back. Throws if capacity is exceeded (the validator prevents that). */
  assign(names: readonly string[]): Record<string, number> {
    const wanted = new Set(names);
    for (const [name, slot] of this.slots) {
      if (!wanted.has(name)) {
        this.slots.delete(name);
        this.free.push(slot);
      }
    }
    const out: Record<string, number> = {};
    for (const name of names) out[name] = this.slotOf(name);
    return out;
  }

  /** Like assign() for part of the names: `gone` give their slots back unless also in
   *  `added`, `added` get theirs (existing names keep them). Returns the slots of `added`;
   *  names in neither list are untouched. */
  replace(gone: readonly string[], added: readonly string[]): Record<string, number> {
    const wanted = new Set(added);
    for (const name of gone) {
      const slot = this.slots.get(name);
      if (slot === undefined || wanted.has(name)) continue;
      this.slots.delete(name);
      this.free.push(slot);
    }
    const out: Record<string, number> = {};
    for (const name of added) out[name] = this.slotOf(name);
    return out;
  }

  /** The slot of `name`, given one if it has none. */
  private slotOf(name: string): number {
    let slot = this.slots.get(name);
    if (slot !== undefined) return slot;
    if (this.next < this.capacity) {
      slot = this.next++;
    } else {
      slot = this.free.shift();
      if (slot === undefined) throw new Error(`more than ${this.capacity} slots needed`);
      this.onReuse(slot);
    }
    this.slots.set(name, slot);
    return slot;
  }

  get used(): ReadonlyMap<string, number> {
    return this.slots;
  }
}
