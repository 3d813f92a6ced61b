// Request deadlines without a Node timer per request. A route's requests share its
// timeout, so their deadlines come in the order they were set: one FIFO per timeout value
// (an intrusive doubly-linked list through the entries themselves, so setting and
// clearing a deadline allocates nothing and costs a few field writes) and one Node timer
// per list, armed for its first deadline. A cleared deadline is unlinked at once; the
// timer of a list that emptied is left to fire once, find nothing and stop, rather than
// being cleared and made again for the next request. Per request this replaces a Timeout
// object that lived as long as the request (garbage the young generation copies) and the
// bookkeeping of Node's timer lists (docs/performance.md).
//
// Deadlines of other values (a timeout from `x-envoy-upstream-rq-timeout-ms` or
// `grpc-timeout`) get a list of their own; a list is dropped when its timer finds it
// empty. One table per worker thread (module state is per isolate).

import { performance } from 'node:perf_hooks';
import { reportError } from '../src/core/report.js';

/** What a deadline is set on: the list links and due time live in the entry itself. */
export interface DeadlineEntry {
  deadlineAt: number;
  deadlinePrev: DeadlineEntry | null;
  deadlineNext: DeadlineEntry | null;
  deadlineList: DeadlineList | null;
  /** Called once when the deadline passes (not after clearDeadline). */
  onDeadline(): void;
}

export class DeadlineList {
  head: DeadlineEntry | null = null;
  private tail: DeadlineEntry | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly ms: number,
    private readonly table: Map<number, DeadlineList>,
  ) {}

  add(e: DeadlineEntry, now: number): void {
    e.deadlineAt = now + this.ms;
    e.deadlineList = this;
    e.deadlinePrev = this.tail;
    e.deadlineNext = null;
    if (this.tail === null) this.head = e;
    else this.tail.deadlineNext = e;
    this.tail = e;
    if (this.timer === null) this.timer = setTimeout(DeadlineList.fire, this.ms, this);
  }

  remove(e: DeadlineEntry): void {
    const prev = e.deadlinePrev;
    const next = e.deadlineNext;
    if (prev === null) this.head = next;
    else prev.deadlineNext = next;
    if (next === null) this.tail = prev;
    else next.deadlinePrev = prev;
    e.deadlinePrev = null;
    e.deadlineNext = null;
    e.deadlineList = null;
  }

  /** The timer: ends every entry that is due, then waits for the next one, or drops the
   *  list when it is empty. Node's timers run on the event loop's cached clock, which
   *  can be a little behind performance.now(): an entry found not yet due is waited for. */
  private static fire(this: void, list: DeadlineList): void {
    list.timer = null;
    const now = performance.now();
    let e = list.head;
    while (e !== null && e.deadlineAt <= now) {
      list.remove(e);
      try {
        e.onDeadline();
      } catch (err) {
        reportError(err, 'request deadline');
      }
      e = list.head;
    }
    if (e !== null) {
      if (list.timer === null) list.timer = setTimeout(DeadlineList.fire, Math.max(1, Math.ceil(e.deadlineAt - now)), list);
    } else if (list.timer === null) {
      list.table.delete(list.ms);
    }
  }
}

const lists = new Map<number, DeadlineList>();

/** Sets `e`'s deadline `ms` from now (it must not have one). */
export function setDeadline(e: DeadlineEntry, ms: number): void {
  let list = lists.get(ms);
  if (list === undefined) {
    list = new DeadlineList(ms, lists);
    lists.set(ms, list);
  }
  list.add(e, performance.now());
}

/** Clears `e`'s deadline, if it has one. */
export function clearDeadline(e: DeadlineEntry): void {
  e.deadlineList?.remove(e);
}

/** Lists with a timer or entries (for tests). */
export function deadlineLists(): number {
  return lists.size;
}
