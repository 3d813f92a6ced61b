// Unit tests for request deadlines (workers/deadlines.ts): each entry's deadline passes
// no earlier than its timeout after it was set and in the order set; a cleared one never
// passes; entries of different timeouts keep their own lists; a deadline set while
// others are passing (a timed-out request followed by the next) gets its full timeout;
// an error thrown by one entry does not stop the rest; an emptied list is dropped.

import t from 'tap';
import { performance } from 'node:perf_hooks';
import { clearDeadline, deadlineLists, setDeadline, type DeadlineEntry, type DeadlineList } from '../../workers/deadlines.js';
import { setErrorReporter } from '../../src/core/report.js';

class Entry implements DeadlineEntry {
  deadlineAt = 0;
  deadlinePrev: DeadlineEntry | null = null;
  deadlineNext: DeadlineEntry | null = null;
  deadlineList: DeadlineList | null = null;
  passedAt = -1;
  readonly setAt = performance.now();
  constructor(
    readonly name: string,
    private readonly order: string[],
    private readonly then: (() => void) | null = null,
  ) {}
  onDeadline(): void {
    this.passedAt = performance.now();
    this.order.push(this.name);
    this.then?.();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

t.test('deadlines pass in order, after their timeout; cleared ones never', async (t) => {
  const order: string[] = [];
  const entries = ['a', 'b', 'c', 'd', 'e'].map((name) => new Entry(name, order));
  for (const e of entries) {
    setDeadline(e, 80);
    await sleep(5);
  }
  clearDeadline(entries[1]);
  clearDeadline(entries[3]);
  t.equal(entries[1].deadlineList, null, 'a cleared entry leaves its list');
  await sleep(200);
  t.same(order, ['a', 'c', 'e'], `expected a, c, e in that order; saw ${order.join(', ')}`);
  for (const e of [entries[0], entries[2], entries[4]]) {
    const waited = e.passedAt - e.setAt;
    t.ok(waited >= 79, `${e.name}: expected ≥ 80 ms after it was set, saw ${waited.toFixed(1)} ms`);
    t.ok(waited < 180, `${e.name}: expected soon after 80 ms, saw ${waited.toFixed(1)} ms`);
  }
  await sleep(20);
  t.equal(deadlineLists(), 0, 'the emptied list is dropped');
});

t.test('different timeouts keep their own lists', async (t) => {
  const order: string[] = [];
  const long = new Entry('long', order);
  const short = new Entry('short', order);
  setDeadline(long, 120);
  setDeadline(short, 30);
  t.equal(deadlineLists(), 2, 'two lists');
  await sleep(200);
  t.same(order, ['short', 'long'], `expected short before long, saw ${order.join(', ')}`);
});

t.test('a deadline set while others pass gets its full timeout', async (t) => {
  const order: string[] = [];
  let next: Entry | null = null;
  const first = new Entry('first', order, () => {
    next = new Entry('next', order);
    setDeadline(next, 60);
  });
  setDeadline(first, 60);
  await sleep(90);
  t.same(order, ['first'], 'the first has passed, the one set from it not yet');
  await sleep(80);
  t.same(order, ['first', 'next'], 'then the next');
  const n = next as Entry | null;
  t.ok(n !== null && n.passedAt - n.setAt >= 59, `the next waited its own 60 ms (saw ${n === null ? '-' : (n.passedAt - n.setAt).toFixed(1)} ms)`);
});

t.test('a list emptied by clears and refilled waits for the new deadline', async (t) => {
  const order: string[] = [];
  const gone = new Entry('gone', order);
  setDeadline(gone, 60);
  clearDeadline(gone);
  await sleep(30);
  const later = new Entry('later', order);
  setDeadline(later, 60);
  await sleep(45); // past the first entry's time, before the second's
  t.same(order, [], 'nothing passes at the cleared entry\'s time');
  await sleep(60);
  t.same(order, ['later'], 'the refilled list passes its own entry');
});

t.test('an error from one entry does not stop the others', async (t) => {
  const reported: string[] = [];
  setErrorReporter((_err, where) => reported.push(where));
  const order: string[] = [];
  const bad = new Entry('bad', order, () => {
    throw new Error('boom');
  });
  const good = new Entry('good', order);
  setDeadline(bad, 20);
  setDeadline(good, 20);
  await sleep(80);
  t.same(order, ['bad', 'good'], 'both passed');
  t.same(reported, ['request deadline'], 'the error was reported');
});
