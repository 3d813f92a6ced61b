// One full V8 garbage collection that gives memory back, for the thread that calls it:
// the main thread after start and after config changes (src/main/heap-trim.ts), a worker
// once it is quiet after a burst of traffic (workers/idle-heap-trim.ts). Node offers no
// API for it: the `gc` function comes from a fresh V8 context made while --expose-gc is
// set, and the flag is cleared again at once, so the globals of the calling thread's own
// context stay as they were. V8 flags are process-wide: an isolate created in that
// instant (a worker starting) would find a global `gc`, which Remora's code never calls.

import v8 from 'node:v8';
import vm from 'node:vm';

type GcFunction = (options?: { type: 'major' | 'minor'; execution?: 'sync'; flavor?: 'last-resort' }) => void;
export type FullGc = () => void;

/** V8's `gc` function for this thread, or null where this runtime will not hand it out. */
function gcFunction(): GcFunction | null {
  const own = (globalThis as { gc?: unknown }).gc;
  if (typeof own === 'function') return own as GcFunction; // started with --expose-gc
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    return typeof gc === 'function' ? (gc as GcFunction) : null;
  } catch {
    return null;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}

let gcOfThread: GcFunction | null | undefined;
let fullGc: FullGc | null | undefined;

/** This thread's `gc`, made once (module state is per isolate). */
function threadGc(): GcFunction | null {
  if (gcOfThread === undefined) gcOfThread = gcFunction();
  return gcOfThread;
}

/** A minor collection (a scavenge of the young generation), or null. Cheap: what it is
 *  for is the allocation sample V8 takes at every collection (see idle-heap-trim.ts). */
export function minorGcFunction(): FullGc | null {
  const gc = threadGc();
  return gc === null ? null : () => gc({ type: 'minor' });
}

/** A full collection that gives memory back, or null. `gc` differs by V8 version (measured
 *  here): on Node 22 and 24 the options form is V8's "last resort" collection, which also
 *  compacts and shrinks the young generation at once, while a bare `gc()` there may not
 *  collect the old generation; on Node 20 the options form does not collect it and a bare
 *  `gc()` is the full collection (after which V8's memory reducer shrinks the young
 *  generation some 15–20 s later). So both, in that order: each runtime gets its full
 *  collection, and the other call is a cheap one on a small heap. Made once per thread
 *  (module state is per isolate): the main thread makes it before it starts any worker. */
export function fullGcFunction(): FullGc | null {
  if (fullGc === undefined) {
    const gc = threadGc();
    fullGc = gc === null ? null : () => {
      gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
      gc();
    };
  }
  return fullGc;
}
