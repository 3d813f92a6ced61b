// Unit tests for the FIFO queue of endpoint pools (src/core/ring-buffer.ts): order across
// growth and wrap-around, an empty queue, and storage allocated on the first push only.

import t from 'tap';
import { RingBuffer } from '../../src/core/ring-buffer.js';

t.test('first in, first out across wrap-around and growth', async (t) => {
  const q = new RingBuffer<number>(4);
  t.equal(q.shift(), undefined, 'an empty queue gives undefined');
  const out: number[] = [];
  for (let i = 0; i < 3; i++) q.push(i);
  out.push(q.shift()!, q.shift()!); // head moves: the next pushes wrap around
  for (let i = 3; i < 20; i++) q.push(i); // grows twice, from a wrapped state
  t.equal(q.length, 18, `18 queued (saw ${q.length})`);
  while (q.length > 0) out.push(q.shift()!);
  t.same(out, Array.from({ length: 20 }, (_, i) => i), 'every item once, in order');
  t.equal(q.shift(), undefined, 'empty again');
});

t.test('storage is allocated on the first push, with the capacity asked for', async (t) => {
  const q = new RingBuffer<string>(8);
  const storage = (): unknown[] => (q as unknown as { items: unknown[] }).items;
  const before = storage();
  t.equal(before.length, 0, 'nothing allocated before a push');
  t.equal(storage(), (new RingBuffer<string>() as unknown as { items: unknown[] }).items, 'unused queues share one empty storage');
  q.push('a');
  t.equal(storage().length, 8, `the first push allocates the capacity (saw ${storage().length})`);
  t.equal(q.shift(), 'a');
  const one = new RingBuffer<number>(1);
  for (let i = 0; i < 5; i++) one.push(i);
  t.same([one.shift(), one.shift(), one.shift(), one.shift(), one.shift(), one.shift()], [0, 1, 2, 3, 4, undefined], 'a capacity of 1 grows as needed');
});
