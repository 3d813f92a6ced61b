// Unit tests for the main thread's access log stream (src/access-log/als-stream.ts)
// without a service: entries wait while the cluster has no endpoint, within the bounds
// (10,000 entries, 16 MiB), beyond which batches are dropped and counted `queue_full`;
// a worker's own drops are counted `worker_buffer_full`; stopping drops what waits
// (`unconfigured`), and a stopped stream takes nothing more.

import { pino } from 'pino';
import t from 'tap';
import { AlsStream, MAX_QUEUED_ENTRIES } from '../../src/access-log/als-stream.js';

const silent = pino({ level: 'silent' });

t.test('bounded by entries and bytes; drops counted by reason', async (t) => {
  const s = new AlsStream('als', 'edge', new Uint8Array(0), silent);
  s.setTarget(null);
  s.submit(MAX_QUEUED_ENTRIES - 1, new Uint8Array(100), 3);
  s.submit(1, new Uint8Array(10), 0);
  s.submit(5, new Uint8Array(10), 0);
  let c = s.counters();
  t.equal(c.queued, MAX_QUEUED_ENTRIES, 'up to the entry bound');
  t.equal(c.dropped.queue_full, 5, 'the batch beyond it is dropped');
  t.equal(c.dropped.worker_buffer_full, 3, 'the worker\'s own drops');

  const big = new AlsStream('als', 'big', new Uint8Array(0), silent);
  big.submit(1, new Uint8Array(10 * 1024 * 1024), 0);
  big.submit(1, new Uint8Array(7 * 1024 * 1024), 0);
  t.equal(big.counters().queued, 1, 'the byte bound');
  t.equal(big.counters().dropped.queue_full, 1);

  await s.stop(0);
  c = s.counters();
  t.equal(c.queued, 0);
  t.equal(c.dropped.unconfigured, MAX_QUEUED_ENTRIES, 'what waited when it stopped');
  t.ok(s.stopped);
  s.submit(2, new Uint8Array(10), 0);
  t.equal(s.counters().dropped.unconfigured, MAX_QUEUED_ENTRIES + 2, 'a stopped stream takes nothing');
  t.equal(c.sent, 0);
  await big.stop(0);
});

t.test('a stream replacing a stopped one keeps its counts', async (t) => {
  const a = new AlsStream('als', 'edge', new Uint8Array(0), silent);
  a.submit(4, new Uint8Array(10), 1);
  await a.stop(0);
  const b = new AlsStream('als', 'edge', new Uint8Array(0), silent, a.counters());
  t.same(b.counters().dropped, { worker_buffer_full: 1, queue_full: 0, stream_failed: 0, unconfigured: 4 });
  t.equal(b.counters().queued, 0);
  await b.stop(0);
});
