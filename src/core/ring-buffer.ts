// A growable FIFO queue on a ring buffer: O(1) push and shift without Array#shift's
// copying (undici's fixed queue does the same). Its storage is allocated on the first
// push: a process holds one per endpoint pool per queue, most of them never used.

/** The storage of every queue that has never held anything (never written to). */
const NONE: readonly never[] = Object.freeze([]);

export class RingBuffer<T> {
  private items: (T | undefined)[] = NONE as never[];
  private head = 0;
  private count = 0;

  constructor(private readonly capacity = 16) {}

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) % this.items.length] = item;
    this.count++;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.items.length;
    this.count--;
    return item;
  }

  private grow(): void {
    const next = new Array<T | undefined>(Math.max(this.capacity, this.items.length * 2));
    for (let i = 0; i < this.count; i++) next[i] = this.items[(this.head + i) % this.items.length];
    this.items = next;
    this.head = 0;
  }
}
