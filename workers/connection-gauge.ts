// Open connections per listener and per worker, counted in each worker's stats slab (the
// downstream_cx_active gauge, and a worker cell) and summed over every worker's slab to
// enforce a listener's max_connections and the process's max_downstream_connections. A replacement worker starts its gauges at zero, so connections of a
// worker that died are not counted forever.
//
// Looseness: workers that accept at the same instant each see the others' counts before
// their own add lands, so the limit may be overshot by at most (workers - 1).

import { gaugeOffset, LAYOUT, LISTENER_SHAPE } from '../src/stats/shapes.js';
import { ListenerCounter, ListenerGauge } from '../src/stats/stat-names.js';
import { WorkerCell } from '../src/shared/stats-layout.js';

/** This worker's open connections over all listeners (what the process limit sums). */
const PROCESS_CELL = LAYOUT.workerStart + WorkerCell.CxActive;

export class ConnectionGauge {
  private readonly slabs: Uint32Array[];
  private readonly own: Uint32Array;

  constructor(slabs: readonly SharedArrayBuffer[], ownSlot: number) {
    this.slabs = slabs.map((s) => new Uint32Array(s));
    this.own = this.slabs[ownSlot];
  }

  /** Counts a new connection on listener `slot`; false (nothing counted but the
   *  overflow) when the listener already has `limit` (> 0) open, or the process
   *  `processLimit` (> 0, worker_limits.max_downstream_connections). */
  tryOpen(slot: number, limit: number, processLimit: number): boolean {
    const base = LAYOUT.listenerBase(slot);
    const cell = base + gaugeOffset(LISTENER_SHAPE, ListenerGauge.CxActive);
    if ((limit > 0 && this.sum(cell) >= limit) || (processLimit > 0 && this.sum(PROCESS_CELL) >= processLimit)) {
      Atomics.add(this.own, base + ListenerCounter.CxOverflow, 1);
      return false;
    }
    Atomics.add(this.own, cell, 1);
    Atomics.add(this.own, PROCESS_CELL, 1);
    Atomics.add(this.own, base + ListenerCounter.CxTotal, 1);
    return true;
  }

  closed(slot: number): void {
    const cell = LAYOUT.listenerBase(slot) + gaugeOffset(LISTENER_SHAPE, ListenerGauge.CxActive);
    if (Atomics.load(this.own, cell) > 0) Atomics.sub(this.own, cell, 1);
    if (Atomics.load(this.own, PROCESS_CELL) > 0) Atomics.sub(this.own, PROCESS_CELL, 1);
  }

  /** `cell` added up over every worker's slab. */
  private sum(cell: number): number {
    let open = 0;
    for (const slab of this.slabs) open += Atomics.load(slab, cell) | 0;
    return open;
  }
}
