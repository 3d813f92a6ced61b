// Unit tests for the shared per-key bucket table (keyed-buckets.ts): hashing, one bucket
// per (limitId, key), LRU eviction within a full probe window (counted), reuse of idle
// refilled entries (not counted), the live/inserts counters, failing open when no entry
// can be claimed, and real worker threads racing on one key.

import t from 'tap';
import { EntryState, KeyedBuckets, KeyedEntryCell, PROBE_WINDOW, hashKey } from '../../src/shared/keyed-buckets.js';
import { GLOBAL_CELLS, KEYED_ENTRY_CELLS } from '../../src/shared/shared-state.js';
import { BucketCell } from '../../src/shared/token-bucket.js';
import { CONTROL_CELLS, WorkerGang, type BucketWorkerJob } from '../helpers/bucket-worker.js';

const WORKERS = 4;

interface Table {
  readonly cells: Int32Array;
  readonly table: KeyedBuckets;
  readonly start: number;
  readonly globalBase: number;
}

function newTable(entries: number, prefix = 0): Table {
  const globalBase = prefix;
  const start = globalBase + GLOBAL_CELLS;
  const buffer = new SharedArrayBuffer((start + entries * KEYED_ENTRY_CELLS) * 4);
  const cells = new Int32Array(buffer);
  return { cells, table: new KeyedBuckets(cells, start, entries, globalBase), start, globalBase };
}

const hashes = new Int32Array(2);

/** `count` keys whose home slot in a table of `entries` is `home`. */
function keysWithHome(limitId: number, home: number, count: number, entries: number): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) {
    const key = `client-${i}`;
    hashKey(limitId, key, hashes);
    if ((hashes[0] & (entries - 1)) === home) keys.push(key);
  }
  return keys;
}

/** The slot holding (limitId, key), or -1. */
function slotOf(tb: Table, entries: number, limitId: number, key: string): number {
  hashKey(limitId, key, hashes);
  for (let slot = 0; slot < entries; slot++) {
    const e = tb.start + slot * KEYED_ENTRY_CELLS;
    if (tb.cells[e + KeyedEntryCell.State] === EntryState.Ready && tb.cells[e + KeyedEntryCell.Hash1] === hashes[0] && tb.cells[e + KeyedEntryCell.Hash2] === hashes[1]) {
      return slot;
    }
  }
  return -1;
}

t.test('hashKey gives two non-zero hashes that depend on limitId and key', async (t) => {
  const a = new Int32Array(2);
  const b = new Int32Array(2);
  hashKey(1, '10.0.0.1', a);
  hashKey(1, '10.0.0.1', b);
  t.same([...a], [...b], `the same (limitId, key) hashes the same: ${[...a]} vs ${[...b]}`);
  hashKey(2, '10.0.0.1', b);
  t.ok(a[0] !== b[0] && a[1] !== b[1], `another limitId changes both hashes: ${[...a]} vs ${[...b]}`);
  hashKey(1, '10.0.0.2', b);
  t.ok(a[0] !== b[0] && a[1] !== b[1], `another key changes both hashes: ${[...a]} vs ${[...b]}`);
  hashKey(1, '', b);
  t.ok(b[0] !== 0 && b[1] !== 0, `the empty key hashes to non-zero values: got ${[...b]}`);

  // Spread over 256 slots and no full (h1, h2) collisions among 50000 similar keys.
  const slots = new Array<number>(256).fill(0);
  const pairs = new Set<string>();
  let zero = 0;
  for (let i = 0; i < 50_000; i++) {
    hashKey(3, `192.168.${i >> 8}.${i & 255}`, b);
    if (b[0] === 0 || b[1] === 0) zero++;
    slots[b[0] & 255]++;
    pairs.add(`${b[0]},${b[1]}`);
  }
  t.equal(zero, 0, `no zero hash: expected 0, got ${zero}`);
  t.equal(pairs.size, 50_000, `50000 keys give 50000 distinct hash pairs: got ${pairs.size}`);
  const min = Math.min(...slots);
  const max = Math.max(...slots);
  t.ok(min > 195 * 0.6 && max < 195 * 1.4, `keys spread evenly over slots (mean 195): got min ${min}, max ${max}`);
});

t.test('distinct keys get distinct buckets; the same key shares one', async (t) => {
  const tb = newTable(64);
  const params = { maxTokens: 3, tokensPerFill: 3, fillIntervalMs: 1000 };
  const a = [0, 1, 2, 3].map(() => tb.table.tryTake(7, 'alice', params, 0, 100));
  t.same(a, [2, 1, 0, -1], `one key drains its own bucket of 3: expected 2,1,0,-1, got ${a.join(',')}`);
  const b = tb.table.tryTake(7, 'bob', params, 0, 100);
  t.equal(b, 2, `another key has its own full bucket: expected 2 left, got ${b}`);
  const other = tb.table.tryTake(8, 'alice', params, 0, 100);
  t.equal(other, 2, `the same key under another limitId is a separate bucket: expected 2 left, got ${other}`);
  const again = tb.table.tryTake(7, 'alice', params, 0, 100);
  t.equal(again, -1, `the first key's bucket is still empty: expected -1, got ${again}`);
  const refilled = tb.table.tryTake(7, 'alice', params, 1, 101);
  t.equal(refilled, 2, `its bucket refills at the next tick: expected 2 left, got ${refilled}`);
  t.equal(tb.table.inserts, 3, `3 buckets inserted (alice@7, bob@7, alice@8): got ${tb.table.inserts}`);
  t.equal(tb.table.live, 3, `3 entries live: got ${tb.table.live}`);
  t.equal(tb.table.evictions, 0, `no evictions: got ${tb.table.evictions}`);
  t.equal(tb.cells[tb.globalBase], tb.table.inserts, 'the getters read the GlobalCell counters');
  const slot = slotOf(tb, 64, 7, 'alice');
  const lastUsed = tb.cells[tb.start + slot * KEYED_ENTRY_CELLS + KeyedEntryCell.LastUsed];
  t.equal(lastUsed, 101, `LastUsed follows the latest take: expected 101, got ${lastUsed}`);
  const tokens = tb.cells[tb.start + slot * KEYED_ENTRY_CELLS + KeyedEntryCell.Tokens + BucketCell.Tokens];
  t.equal(tokens, 2, `the entry's Tokens cell holds the bucket: expected 2, got ${tokens}`);
});

t.test('a full probe window evicts its least recently used entry, counted', async (t) => {
  const entries = 16;
  const tb = newTable(entries);
  // Refilling one token takes a minute, so nothing here counts as idle-refilled.
  const params = { maxTokens: 10, tokensPerFill: 1, fillIntervalMs: 60_000 };
  const keys = keysWithHome(1, 0, PROBE_WINDOW + 1, entries);
  for (let i = 0; i < PROBE_WINDOW; i++) tb.table.tryTake(1, keys[i], params, 0, 100 + i);
  t.equal(tb.table.live, 8, `8 keys with home slot 0 fill slots 0..7: expected 8 live, got ${tb.table.live}`);
  const placed = keys.slice(0, PROBE_WINDOW).map((k) => slotOf(tb, entries, 1, k));
  t.same(placed, [0, 1, 2, 3, 4, 5, 6, 7], `they sit in probe order: got ${placed.join(',')}`);

  const ninth = tb.table.tryTake(1, keys[8], params, 0, 108);
  t.equal(ninth, 9, `a 9th colliding key gets a fresh bucket: expected 9 left, got ${ninth}`);
  t.equal(tb.table.evictions, 1, `that evicted one entry: expected 1 eviction, got ${tb.table.evictions}`);
  t.equal(slotOf(tb, entries, 1, keys[0]), -1, 'the least recently used key (used at 100) is gone');
  t.equal(slotOf(tb, entries, 1, keys[8]), 0, `the new key took its slot 0: got ${slotOf(tb, entries, 1, keys[8])}`);
  t.equal(tb.table.live, 8, `eviction reuses an entry: expected 8 live, got ${tb.table.live}`);
  t.equal(tb.table.inserts, 9, `9 inserts: got ${tb.table.inserts}`);

  const kept = tb.table.tryTake(1, keys[1], params, 0, 109);
  t.equal(kept, 8, `key 1 still has its own bucket (9 left, one more taken): expected 8, got ${kept}`);
  t.equal(tb.table.inserts, 9, `touching key 1 inserted nothing: got ${tb.table.inserts} inserts`);

  // key 0 comes back: now key 2 (used at 102) is the oldest, since key 1 was used at 109.
  const back = tb.table.tryTake(1, keys[0], params, 0, 110);
  t.equal(back, 9, `an evicted key starts over with a full bucket: expected 9, got ${back}`);
  t.equal(slotOf(tb, entries, 1, keys[2]), -1, 'key 2 (used at 102) was evicted, not key 1 (used at 109)');
  t.not(slotOf(tb, entries, 1, keys[1]), -1, 'key 1 survived');
  t.equal(tb.table.evictions, 2, `expected 2 evictions, got ${tb.table.evictions}`);
  t.equal(tb.table.inserts, 10, `expected 10 inserts, got ${tb.table.inserts}`);
  t.equal(tb.table.live, 8, `expected 8 live, got ${tb.table.live}`);
});

t.test('idle entries whose bucket has refilled are reused first, not counted as evictions', async (t) => {
  const entries = 16;
  const tb = newTable(entries);
  const params = { maxTokens: 10, tokensPerFill: 1, fillIntervalMs: 60_000 };
  const keys = keysWithHome(1, 0, PROBE_WINDOW + 1, entries);
  // Key 0 is the least recently used and drained: 10 minutes to refill.
  for (let i = 0; i < 10; i++) tb.table.tryTake(1, keys[0], params, 0, 100);
  t.equal(tb.table.tryTake(1, keys[0], params, 0, 100), -1, 'key 0 is drained');
  // Keys 1..7 took one token each at 130: one minute to refill.
  for (let i = 1; i < PROBE_WINDOW; i++) tb.table.tryTake(1, keys[i], params, 0, 130);

  // At 195 keys 1..7 have been idle over a minute (full again); key 0 has not refilled.
  const fresh = tb.table.tryTake(1, keys[8], params, 0, 195);
  t.equal(fresh, 9, `the new key gets a full bucket: expected 9, got ${fresh}`);
  t.equal(tb.table.evictions, 0, `reusing a refilled entry is no eviction: expected 0, got ${tb.table.evictions}`);
  t.equal(slotOf(tb, entries, 1, keys[8]), 1, `the refilled entry at slot 1 was reused, not LRU slot 0: got ${slotOf(tb, entries, 1, keys[8])}`);
  t.equal(slotOf(tb, entries, 1, keys[1]), -1, 'key 1 (refilled) is gone');
  const drained = tb.table.tryTake(1, keys[0], params, 0, 196);
  t.equal(drained, -1, `key 0 kept its drained bucket: expected -1, got ${drained}`);
  t.equal(tb.table.inserts, 9, `expected 9 inserts, got ${tb.table.inserts}`);
  t.equal(tb.table.live, 8, `expected 8 live, got ${tb.table.live}`);

  // Not yet idle a full minute: an LRU eviction again, and it is counted.
  const tb2 = newTable(entries);
  for (let i = 0; i < PROBE_WINDOW; i++) tb2.table.tryTake(1, keys[i], params, 0, 100);
  tb2.table.tryTake(1, keys[8], params, 0, 160);
  t.equal(tb2.table.evictions, 1, `59 s idle of the 60 s needed: expected 1 counted eviction, got ${tb2.table.evictions}`);
  const tb3 = newTable(entries);
  for (let i = 0; i < PROBE_WINDOW; i++) tb3.table.tryTake(1, keys[i], params, 0, 100);
  tb3.table.tryTake(1, keys[8], params, 0, 161);
  t.equal(tb3.table.evictions, 0, `60 s surely idle: expected no counted eviction, got ${tb3.table.evictions}`);
});

t.test('a window with no entry to claim fails open', async (t) => {
  const entries = 16;
  const tb = newTable(entries);
  const params = { maxTokens: 5, tokensPerFill: 5, fillIntervalMs: 1000 };
  // Every entry of slot 0's window is being written (as if by stalled threads).
  for (let slot = 0; slot < PROBE_WINDOW; slot++) tb.cells[tb.start + slot * KEYED_ENTRY_CELLS + KeyedEntryCell.State] = EntryState.Writing;
  const [key] = keysWithHome(1, 0, 1, entries);
  const results = [0, 1, 2, 3, 4, 5, 6].map(() => tb.table.tryTake(1, key, params, 0, 100));
  t.ok(results.every((r) => r === 4), `every take is admitted as by a fresh bucket: expected all 4, got ${results.join(',')}`);
  t.equal(tb.table.inserts, 0, `nothing was inserted: got ${tb.table.inserts}`);
});

t.test('the constructor rejects a bad geometry', async (t) => {
  const cells = new Int32Array(new SharedArrayBuffer((GLOBAL_CELLS + 16 * KEYED_ENTRY_CELLS) * 4));
  t.throws(() => new KeyedBuckets(cells, GLOBAL_CELLS, 12, 0), /power of two/, 'entries 12 is refused');
  t.throws(() => new KeyedBuckets(cells, GLOBAL_CELLS, 32, 0), /does not fit/, 'a table past the end is refused');
  t.doesNotThrow(() => new KeyedBuckets(cells, GLOBAL_CELLS, 16, 0), '16 entries fit');
});

t.test('worker threads hammering one key share one bucket', async (t) => {
  const gang = WorkerGang.start(WORKERS);
  t.teardown(() => gang.close());
  const entries = 64;
  const globalBase = CONTROL_CELLS;
  const start = globalBase + GLOBAL_CELLS;
  const params = { maxTokens: 500, tokensPerFill: 0, fillIntervalMs: 1000 };
  for (let round = 0; round < 3; round++) {
    const buffer = new SharedArrayBuffer((start + entries * KEYED_ENTRY_CELLS) * 4);
    const job: BucketWorkerJob = { kind: 'keyed', start, entries, globalBase, limitId: 9, key: `hot-${round}`, params, takes: 5_000 };
    const admitted = await gang.run(buffer, Array.from({ length: WORKERS }, () => job));
    const total = admitted.reduce((a, b) => a + b, 0);
    t.ok(total >= 500 && total <= 500 + WORKERS - 1, `round ${round}: expected 500 to ${500 + WORKERS - 1} admitted (insert race), got ${total} (${admitted.join('/')})`);
    const table = new KeyedBuckets(new Int32Array(buffer), start, entries, globalBase);
    t.ok(table.inserts >= 1 && table.inserts <= WORKERS, `round ${round}: 1 to ${WORKERS} inserts for one key, got ${table.inserts}`);
    t.equal(table.evictions, 0, `round ${round}: no evictions in a near-empty table, got ${table.evictions}`);
  }
});
