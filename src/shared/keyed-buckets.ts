// A fixed-size table of per-key token buckets in shared memory, used by every worker at
// once (Atomics only, no locks): rate limits with a `key` (client IP, header values) get
// one bucket per distinct key, found by hashing (limitId, key).
//
// Memory bound: `entries` × KEYED_ENTRY_CELLS (6) × 4 bytes = entries × 24 bytes
// (1.5 MiB for KEYED_BUCKET_ENTRIES = 65536), fixed at startup; the table never grows.
//
// An entry is identified by two independent 32-bit hashes of (limitId, key): FNV-1a
// (finalized with murmur3's fmix32, so the slot bits depend on every input bit) and a
// murmur3-style hash with another seed. Two different keys share a bucket only when both
// hashes collide (about 2^-64 per pair that probe the same window). A hash of 0 is
// mapped to 1.
//
// Open addressing: a key's entry is one of the PROBE_WINDOW (8) entries from
// `hash1 & (entries − 1)`. Entries go Empty → Writing → Ready and, when reused,
// Ready → Writing → Ready; never back to Empty. A new key takes the first Empty entry of
// its window (KeyedLive + 1). When the window is full it reuses one: first an entry whose
// bucket would be full again by now (idle long enough to refill: reusing it changes
// nothing for its old key, so it is not counted as an eviction), else the entry used
// least recently (LastUsed, seconds) — an LRU eviction within the window, counted in
// GlobalCell.KeyedEvictions. Every new entry counts in GlobalCell.KeyedInserts.
// The "full again by now" test uses the caller's params and LastUsed: exact when the old
// entry belongs to a limit with the same params (one keyed limit, or limits of one shape),
// an estimate otherwise; a wrong estimate only changes which entry is reused and whether
// the reuse is counted, since a reused entry's key starts over with a full bucket either way.
//
// Races (all bounded; none corrupts the table):
// - Two threads inserting the same key at once: a thread that meets an entry being
//   written spins briefly for it to be published, then compares it; only when the writer
//   stays descheduled past the spin can both create an entry for the key, which is at most
//   one extra bucket per racing thread (overshoot of one bucket each), until LRU drops
//   the later one (lookups find the first one in probe order).
// - A claim CAS that loses (another thread took that entry) looks up once more and tries
//   once more; if there is still no entry, the request is ADMITTED without a bucket (fail
//   open: one request per lost race; tryTake then returns maxTokens − 1, as a fresh bucket).
// - A reader that matched an entry just before another thread reused it for another key
//   charges its one request to that key's fresh bucket.
// - An entry stays Writing forever only if its writer thread dies between claiming and
//   publishing it; its window then has one entry less (lookups spin past it).

import { BucketCell, tryTake as takeToken, type BucketParams } from './token-bucket.js';
import { GLOBAL_CELLS, GlobalCell, KEYED_ENTRY_CELLS } from './shared-state.js';

/** Cell offsets within one table entry. Tokens and Tick form a token bucket
 *  (token-bucket.ts, base = entry + Tokens). */
export const KeyedEntryCell = {
  /** EntryState. */
  State: 0,
  Hash1: 1,
  Hash2: 2,
  Tokens: 3,
  Tick: 4,
  /** Seconds (the caller's clock) of the last take; written only when it changes. */
  LastUsed: 5,
} as const;

export const EntryState = { Empty: 0, Writing: 1, Ready: 2 } as const;

/** Entries probed from a key's home slot. */
export const PROBE_WINDOW = 8;
/** Loads of a Writing entry's state before giving up on it (its writer stores 6 cells). */
const PUBLISH_SPINS = 1024;

if (KEYED_ENTRY_CELLS !== 6) throw new Error(`keyed-buckets.ts expects KEYED_ENTRY_CELLS = 6, layout says ${KEYED_ENTRY_CELLS}`);
if (KeyedEntryCell.Tokens + BucketCell.Tokens !== KeyedEntryCell.Tokens || KeyedEntryCell.Tokens + BucketCell.Tick !== KeyedEntryCell.Tick) {
  throw new Error('keyed-buckets.ts: entry cells Tokens, Tick do not match the token bucket layout');
}

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 16777619;
const M_C1 = 0xcc9e2d51 | 0;
const M_C2 = 0x1b873593 | 0;
const M_SEED = 0x9747b28c | 0;

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b | 0);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35 | 0);
  return h ^ (h >>> 16);
}

function fnvByte(h: number, byte: number): number {
  return Math.imul(h ^ byte, FNV_PRIME);
}

function murmurBlock(h: number, k: number): number {
  k = Math.imul(k, M_C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, M_C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + (0xe6546b64 | 0)) | 0;
}

function fnvUnit(h: number, unit: number): number {
  return fnvByte(fnvByte(h, unit & 0xff), unit >>> 8);
}

/**
 * Writes the two 32-bit hashes of (limitId, key) into out[0] (slot and first check) and
 * out[1] (second check); neither is ever 0. Allocates nothing.
 */
export function hashKey(limitId: number, key: string, out: Int32Array): void {
  // limitId as 4 bytes (FNV) and as the first 4-byte block (murmur3).
  let a = FNV_OFFSET;
  a = fnvByte(a, limitId & 0xff);
  a = fnvByte(a, (limitId >>> 8) & 0xff);
  a = fnvByte(a, (limitId >>> 16) & 0xff);
  a = fnvByte(a, limitId >>> 24);
  let b = murmurBlock(M_SEED, limitId | 0);
  // The key's UTF-16 units: two bytes each for FNV, two units per block for murmur3.
  const n = key.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const u0 = key.charCodeAt(i);
    const u1 = key.charCodeAt(i + 1);
    a = fnvUnit(fnvUnit(a, u0), u1);
    b = murmurBlock(b, u0 | (u1 << 16));
  }
  if (i < n) {
    const u = key.charCodeAt(i);
    a = fnvUnit(a, u);
    let k = Math.imul(u, M_C1);
    k = (k << 15) | (k >>> 17);
    b ^= Math.imul(k, M_C2);
  }
  a = fmix32(a);
  b = fmix32(b ^ (4 + n * 2));
  out[0] = a === 0 ? 1 : a;
  out[1] = b === 0 ? 1 : b;
}

/** The shared per-key bucket table. One instance per thread over the same cells. */
export class KeyedBuckets {
  private readonly mask: number;
  private readonly window: number;
  private readonly hashes = new Int32Array(2);
  /** Set by find(): the first Empty entry of the window, or -1. */
  private emptyAt = -1;

  /**
   * @param cells the shared Int32Array (SharedStateLayout)
   * @param start index of the first entry (layout.keyedStart)
   * @param entries number of entries, a power of two (layout.keyedEntries)
   * @param globalBase index of the GlobalCell block (layout.globalStart)
   */
  constructor(
    private readonly cells: Int32Array,
    private readonly start: number,
    readonly entries: number,
    private readonly globalBase: number,
  ) {
    if (!Number.isInteger(entries) || entries < 1 || (entries & (entries - 1)) !== 0) {
      throw new Error(`keyed bucket entries must be a power of two, got ${entries}`);
    }
    if (start < 0 || start + entries * KEYED_ENTRY_CELLS > cells.length) {
      throw new Error(`keyed bucket table [${start}, ${start + entries * KEYED_ENTRY_CELLS}) does not fit ${cells.length} cells`);
    }
    if (globalBase < 0 || globalBase + GLOBAL_CELLS > cells.length) {
      throw new Error(`global cells at ${globalBase} do not fit ${cells.length} cells`);
    }
    this.mask = entries - 1;
    this.window = Math.min(PROBE_WINDOW, entries);
  }

  /**
   * Takes one token from the bucket of (limitId, key), creating it full if absent.
   * Returns the tokens left (>= 0), or -1 when empty. `tick` is currentTick() for the
   * limit's fill interval; `nowSec` is whole seconds on a clock shared by all threads
   * (for LRU). Fails open (admits, returning maxTokens − 1) when racing inserts leave no
   * entry for the key; see the module comment.
   */
  tryTake(limitId: number, key: string, params: BucketParams, tick: number, nowSec: number): number {
    const hs = this.hashes;
    hashKey(limitId, key, hs);
    const h1 = hs[0];
    const h2 = hs[1];
    for (let attempt = 0; attempt < 2; attempt++) {
      let entry = this.find(h1, h2);
      if (entry < 0) entry = this.insert(h1, h2, params, tick, nowSec);
      if (entry >= 0) {
        const lastUsed = entry + KeyedEntryCell.LastUsed;
        // Store only on change: most takes in a second would bounce the cache line.
        if (Atomics.load(this.cells, lastUsed) !== nowSec) Atomics.store(this.cells, lastUsed, nowSec);
        return takeToken(this.cells, entry + KeyedEntryCell.Tokens, params, tick);
      }
    }
    return Math.max(0, params.maxTokens - 1);
  }

  /** New entries so far (GlobalCell.KeyedInserts). */
  get inserts(): number {
    return Atomics.load(this.cells, this.globalBase + GlobalCell.KeyedInserts);
  }

  /** Entries reused by LRU before their bucket had refilled (GlobalCell.KeyedEvictions). */
  get evictions(): number {
    return Atomics.load(this.cells, this.globalBase + GlobalCell.KeyedEvictions);
  }

  /** Entries in use: ever claimed, since entries are reused, never emptied (GlobalCell.KeyedLive). */
  get live(): number {
    return Atomics.load(this.cells, this.globalBase + GlobalCell.KeyedLive);
  }

  /** The entry index of (h1, h2), or -1; sets emptyAt. The key, if present, lies before
   *  the first Empty entry of its window (entries never become Empty again). */
  private find(h1: number, h2: number): number {
    const c = this.cells;
    let slot = h1 & this.mask;
    this.emptyAt = -1;
    for (let i = 0; i < this.window; i++, slot = (slot + 1) & this.mask) {
      const e = this.start + slot * KEYED_ENTRY_CELLS;
      let state = Atomics.load(c, e + KeyedEntryCell.State);
      if (state === EntryState.Empty) {
        this.emptyAt = e;
        return -1;
      }
      // Being written, perhaps for this very key: give the writer a moment to publish.
      for (let spin = 0; state === EntryState.Writing && spin < PUBLISH_SPINS; spin++) {
        state = Atomics.load(c, e + KeyedEntryCell.State);
      }
      if (state !== EntryState.Ready) continue;
      if (Atomics.load(c, e + KeyedEntryCell.Hash1) === h1 && Atomics.load(c, e + KeyedEntryCell.Hash2) === h2) return e;
    }
    return -1;
  }

  /** Claims an entry for (h1, h2) and publishes it with a full bucket; -1 when the claim
   *  lost a race or the whole window is being written. */
  private insert(h1: number, h2: number, params: BucketParams, tick: number, nowSec: number): number {
    const c = this.cells;
    let e = this.emptyAt;
    if (e >= 0) {
      if (Atomics.compareExchange(c, e + KeyedEntryCell.State, EntryState.Empty, EntryState.Writing) !== EntryState.Empty) return -1;
      Atomics.add(c, this.globalBase + GlobalCell.KeyedLive, 1);
    } else {
      e = this.pickVictim(h1, params, nowSec);
      if (e < 0) return -1;
      if (Atomics.compareExchange(c, e + KeyedEntryCell.State, EntryState.Ready, EntryState.Writing) !== EntryState.Ready) return -1;
      // Another thread may have put this very key here since find() looked: keep it.
      if (Atomics.load(c, e + KeyedEntryCell.Hash1) === h1 && Atomics.load(c, e + KeyedEntryCell.Hash2) === h2) {
        Atomics.store(c, e + KeyedEntryCell.State, EntryState.Ready);
        return e;
      }
      // Judged again now that the entry is ours (the candidate may have changed hands).
      if (!this.refilled(e, params, nowSec)) Atomics.add(c, this.globalBase + GlobalCell.KeyedEvictions, 1);
    }
    Atomics.store(c, e + KeyedEntryCell.Hash1, h1);
    Atomics.store(c, e + KeyedEntryCell.Hash2, h2);
    Atomics.store(c, e + KeyedEntryCell.Tokens + BucketCell.Tokens, params.maxTokens);
    Atomics.store(c, e + KeyedEntryCell.Tokens + BucketCell.Tick, tick);
    Atomics.store(c, e + KeyedEntryCell.LastUsed, nowSec);
    Atomics.store(c, e + KeyedEntryCell.State, EntryState.Ready);
    Atomics.add(c, this.globalBase + GlobalCell.KeyedInserts, 1);
    return e;
  }

  /** The Ready entry of h1's window to reuse: the
   *  longest-idle one whose bucket has refilled, else the least recently used; -1 if none
   *  is Ready. */
  private pickVictim(h1: number, params: BucketParams, nowSec: number): number {
    const c = this.cells;
    let slot = h1 & this.mask;
    let best = -1;
    let bestAge = 0;
    let bestRefilled = false;
    for (let i = 0; i < this.window; i++, slot = (slot + 1) & this.mask) {
      const e = this.start + slot * KEYED_ENTRY_CELLS;
      if (Atomics.load(c, e + KeyedEntryCell.State) !== EntryState.Ready) continue;
      const age = (nowSec - Atomics.load(c, e + KeyedEntryCell.LastUsed)) | 0;
      const refilled = this.refilled(e, params, nowSec);
      if (best < 0 || (refilled && !bestRefilled) || (refilled === bestRefilled && age > bestAge)) {
        best = e;
        bestAge = age;
        bestRefilled = refilled;
      }
    }
    return best;
  }

  /** Whether the entry's bucket, left alone since LastUsed, would be full by nowSec
   *  (under `params`; see the module comment). */
  private refilled(e: number, params: BucketParams, nowSec: number): boolean {
    const c = this.cells;
    // Both clocks are whole seconds, so a whole second less is surely idle.
    const idleSec = ((nowSec - Atomics.load(c, e + KeyedEntryCell.LastUsed)) | 0) - 1;
    if (idleSec < 0) return false;
    const deficit = params.maxTokens - Atomics.load(c, e + KeyedEntryCell.Tokens + BucketCell.Tokens);
    if (deficit <= 0) return true;
    if (params.tokensPerFill <= 0) return false;
    return idleSec * 1000 >= Math.ceil(deficit / params.tokensPerFill) * params.fillIntervalMs;
  }
}
