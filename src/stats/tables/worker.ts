// Cells describing one worker, at the end of its slab: the table that declares them.
// Unlike listener and cluster blocks, the worker block is one flat list: a cell's index
// is its row number (WorkerCell), whatever its kind. The worker stores them (heartbeat
// and loop delay once a second, its open connections as they change); the main thread
// reads them per worker (label `worker`; GET /workers), never summed.

import type { StatRow } from './table.js';

const LOOP_DELAY_HELP = 'Event-loop delay per worker over its last full second.';
const LOOP_DELAY_DOC = 'event-loop delay per worker over its last full second (stored by the worker in shared memory)';

export const WORKER_ROWS = [
  /** Event-loop delay over the last second, µs (exported in seconds). */
  { handle: 'LoopDelayP50', kind: 'gauge', stats: null, prom: 'remora_worker_event_loop_delay_seconds',
    labels: { stat: 'p50' }, help: LOOP_DELAY_HELP, doc: LOOP_DELAY_DOC },
  { handle: 'LoopDelayP99', kind: 'gauge', stats: null, prom: 'remora_worker_event_loop_delay_seconds',
    labels: { stat: 'p99' }, help: LOOP_DELAY_HELP, doc: LOOP_DELAY_DOC },
  { handle: 'LoopDelayMax', kind: 'gauge', stats: null, prom: 'remora_worker_event_loop_delay_seconds',
    labels: { stat: 'max' }, help: LOOP_DELAY_HELP, doc: LOOP_DELAY_DOC },
  /** Seconds since the epoch at the last store: the worker's heartbeat (exported as an age). */
  { handle: 'Heartbeat', kind: 'gauge', stats: null, prom: 'remora_worker_heartbeat_age_seconds',
    help: 'Seconds since each worker last stored its heartbeat (about 1 when healthy).',
    doc: 'seconds since the worker last stored its heartbeat (≈1 when healthy; -1 before the first)' },
  /** Open client connections of this worker, all listeners (max_downstream_connections). */
  { handle: 'CxActive', kind: 'gauge', stats: null, prom: null,
    help: 'Open client connections of this worker, all listeners (checked against worker_limits.max_downstream_connections).',
    doc: 'open client connections of the worker, all listeners (what `worker_limits.max_downstream_connections` is checked against; not exported)' },
  /** One past the highest listener and cluster slot whose stats were ever written in
   *  this slab: a replacement worker zeroes the gauges below them only. */
  { handle: 'ListenerSlotsUsed', kind: 'gauge', stats: null, prom: null,
    help: 'One past the highest listener slot whose stats were written in this slab.',
    doc: 'one past the highest listener slot whose stats were ever written in this slab (a replacement worker zeroes the gauges below it only; not exported)' },
  { handle: 'ClusterSlotsUsed', kind: 'gauge', stats: null, prom: null,
    help: 'One past the highest cluster slot whose stats were written in this slab.',
    doc: 'one past the highest cluster slot whose stats were ever written in this slab (a replacement worker zeroes the gauges below it only; not exported)' },
] as const satisfies readonly StatRow[];

type WorkerHandle = (typeof WORKER_ROWS)[number]['handle'];

/** Worker cell name → its index in the worker block. */
export const WorkerCell: Readonly<Record<WorkerHandle, number>> = Object.fromEntries(
  WORKER_ROWS.map((row, i) => [row.handle, i]),
) as Record<WorkerHandle, number>;

export const WORKER_CELLS = WORKER_ROWS.length;
