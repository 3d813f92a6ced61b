// Unit tests for the main thread's collection after start and config changes
// (src/main/heap-trim.ts): V8's real full collection, handed out without exposing gc to
// this context or to later workers, frees garbage; and the schedule around it (once
// changes stop; the first look always, later ones only when the heap in use grew enough
// since the last collection; once per burst), with the heap figures and the collector
// given by the test, since V8 may collect on its own at any time.

import t from 'tap';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import { pino, type Logger } from 'pino';
import { fullGcFunction } from '../../src/core/full-gc.js';
import { HeapTrim, TRIM_GROWTH_BYTES } from '../../src/main/heap-trim.js';

type Line = { msg: string; heap_used_mb?: [number, number] };
const MB = 1048576;

function capture(): { log: Logger; lines: Line[] } {
  const lines: Line[] = [];
  return { log: pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) }), lines };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A heap whose figure the test sets, and a collector that brings it down to `live`. */
function fakeHeap(used: number) {
  const heap = { used, live: used, collections: 0 };
  const gc = () => {
    heap.collections++;
    heap.used = heap.live;
  };
  return { heap, gc, read: () => heap.used };
}

t.test('the real collector frees garbage, and gc stays hidden everywhere else', async (t) => {
  const gc = fullGcFunction();
  if (gc === null) return t.fail('this runtime did not hand out the full-collection function');
  let garbage: { a: string; b: number[] }[] | null = [];
  for (let i = 0; i < 400_000; i++) garbage.push({ a: `item-${i}`, b: [i, i + 1] });
  const withGarbage = v8.getHeapStatistics().used_heap_size;
  garbage = null;
  gc();
  const after = v8.getHeapStatistics().used_heap_size;
  t.ok(withGarbage - after >= 20 * MB, `expected ≥ 20 MB freed, saw ${(withGarbage / MB).toFixed(1)} → ${(after / MB).toFixed(1)} MB`);
  t.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'the main context still has no global gc');
  const inWorker = await new Promise<string>((resolve, reject) => {
    const w = new Worker('require("node:worker_threads").parentPort.postMessage(typeof globalThis.gc)', { eval: true });
    w.once('message', (m: string) => resolve(m));
    w.once('error', reject);
  });
  t.equal(inWorker, 'undefined', 'a worker started afterwards has no global gc either');
});

t.test('a burst of changes: one collection, after the last change and the delay', async (t) => {
  const { log, lines } = capture();
  const { heap, gc, read } = fakeHeap(30 * MB);
  const trim = new HeapTrim(log, 150, gc, read);
  t.teardown(() => trim.close());
  heap.used = 120 * MB; // a whole update's garbage
  for (let k = 0; k < 5; k++) {
    trim.changed();
    await sleep(50);
  }
  t.equal(heap.collections, 0, `nothing collected while changes keep coming (saw ${heap.collections})`);
  await sleep(300);
  t.equal(heap.collections, 1, `one collection after the burst (saw ${heap.collections})`);
  t.equal(trim.trims, 1);
  const line = lines.find((l) => l.msg === 'main thread heap collected after a config change');
  t.same(line?.heap_used_mb, [120, 30], `logged with the heap before and after (saw ${JSON.stringify(lines)})`);
});

t.test('the first look collects; later ones only after enough growth', async (t) => {
  const { log, lines } = capture();
  const { heap, gc, read } = fakeHeap(30 * MB);
  const trim = new HeapTrim(log, 20, gc, read);
  t.teardown(() => trim.close());
  trim.changed();
  await sleep(100);
  t.equal(heap.collections, 1, `the first look (after start) collects whatever the heap (saw ${heap.collections})`);
  heap.used = 30 * MB + TRIM_GROWTH_BYTES - 1;
  trim.changed();
  await sleep(100);
  t.equal(heap.collections, 1, `${((TRIM_GROWTH_BYTES - 1) / MB).toFixed(1)} MB of growth since: no collection (saw ${heap.collections})`);
  heap.used = 30 * MB + TRIM_GROWTH_BYTES;
  heap.live = 34 * MB; // what this collection will find live
  trim.changed();
  await sleep(100);
  t.equal(heap.collections, 2, `${TRIM_GROWTH_BYTES / MB} MB: collected (saw ${heap.collections})`);
  // Growth now counts from the 34 MB found live, not from the 30 MB before.
  heap.used = 34 * MB + TRIM_GROWTH_BYTES / 2;
  trim.changed();
  await sleep(100);
  t.equal(heap.collections, 2, `half the threshold above what was live after the last collection (though ${((heap.used - 30 * MB) / MB).toFixed(0)} MB above the one before): no collection (saw ${heap.collections})`);
  t.equal(lines.length, 2, 'one log line per collection');
});

t.test('without a collector, or once closed, nothing runs', async (t) => {
  const none = new HeapTrim(capture().log, 10, null, () => 500 * MB);
  t.equal(none.available, false);
  none.changed();
  const { heap, gc, read } = fakeHeap(10 * MB);
  const closed = new HeapTrim(capture().log, 30, gc, read);
  heap.used = 100 * MB;
  closed.changed();
  closed.close();
  await sleep(100);
  closed.changed(); // a reload finishing after the stop
  await sleep(100);
  t.equal(none.trims, 0, 'no collector: no collection');
  t.equal(heap.collections, 0, 'closed before the delay, or changed after closing: no collection');
});
