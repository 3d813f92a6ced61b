// Open connections per listener, counted in each worker's stats slab (the
// downstream_cx_active gauge) and summed over every worker's slab to enforce a listener's
// max_connections. A replacement worker starts its gauges at zero, so connections of a
// worker that died are not counted forever.
//
// Looseness: workers that accept at the same instant each see the others' counts before
// their own add lands, so the limit may be overshot by at most (workers - 1).

import { gaugeOffset, LAYOUT, LISTENER_SHAPE } from '../src/stats/shapes.js';
import { ListenerCounter, ListenerGauge } from '../src/stats/stat-names.js';

export class ConnectionGauge {
  private readonly slabs: Uint32Array[];
  private readonly own: Uint32Array;

  constructor(slabs: readonly SharedArrayBuffer[], ownSlot: number) {
    this.slabs = slabs.map((s) => new Uint32Array(s));
    this.own = this.slabs[ownSlot];
  }

  /** Counts a new connection on listener `slot`; false (nothing counted but the
   *  overflow) when the listener already has `limit` (> 0) open. */
  tryOpen(slot: number, limit: number): boolean {
    const base = LAYOUT.listenerBase(slot);
    const cell = base + gaugeOffset(LISTENER_SHAPE, ListenerGauge.CxActive);
    if (limit > 0) {
      let open = 0;
      for (const slab of this.slabs) open += Atomics.load(slab, cell) | 0;
      if (open >= limit) {
        Atomics.add(this.own, base + ListenerCounter.CxOverflow, 1);
        return false;
      }
    }
    Atomics.add(this.own, cell, 1);
    Atomics.add(this.own, base + ListenerCounter.CxTotal, 1);
    return true;
  }

  closed(slot: number): void {
    const cell = LAYOUT.listenerBase(slot) + gaugeOffset(LISTENER_SHAPE, ListenerGauge.CxActive);
    if (Atomics.load(this.own, cell) > 0) Atomics.sub(this.own, cell, 1);
  }
}
