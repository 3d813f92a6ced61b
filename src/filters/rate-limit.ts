// Local rate limits (Envoy's local_ratelimit, shared by every worker of the process):
// each configured limit is a token bucket in the shared state; a limit with a `key` has
// one bucket per distinct key in the shared per-key table. Compiled when a snapshot is
// applied; the request path only looks up header values and takes a token.

import { listenerVirtualHosts, type RoutedListener } from '../config/listener-chains.js';
import type { RateLimit } from '../config/types.js';
import { KeyedBuckets } from '../shared/keyed-buckets.js';
import { SHARED_LAYOUT } from '../shared/shared-state.js';
import { currentTick, initBucket, tryTake, type BucketParams } from '../shared/token-bucket.js';

/** Shared-state bucket name of a limit: `listener:<listener>:<limit>` or
 *  `route:<listener>/<route>:<limit>`, plus its bucket settings. Buckets keep their
 *  tokens across reloads by it; a limit whose settings change starts a fresh, full
 *  bucket (stored fill ticks are only meaningful for the interval they were made with). */
export function rateLimitSlotName(listener: string, route: string | null, limit: RateLimit): string {
  const where = route === null ? `listener:${listener}` : `route:${listener}/${route}`;
  return `${where}:${limit.name}#${limit.max_tokens}/${limit.tokens_per_fill}/${limit.fill_interval_ms}`;
}

/** Every rate limit of a config with its bucket name. */
export function allRateLimits(
  listeners: readonly (RoutedListener<{ readonly routes: readonly { readonly name: string; readonly rate_limits: readonly RateLimit[] }[] }> & { readonly name: string; readonly rate_limits: readonly RateLimit[] })[],
): { readonly slotName: string; readonly limit: RateLimit }[] {
  const out: { slotName: string; limit: RateLimit }[] = [];
  for (const l of listeners) {
    for (const limit of l.rate_limits) out.push({ slotName: rateLimitSlotName(l.name, null, limit), limit });
    for (const vh of listenerVirtualHosts(l)) {
      for (const r of vh.routes) {
        for (const limit of r.rate_limits) out.push({ slotName: rateLimitSlotName(l.name, r.name, limit), limit });
      }
    }
  }
  return out;
}

/** Main thread: fills the bucket of a limit that just got its slot. */
export function initRateLimitBucket(cells: Int32Array, slot: number, limit: RateLimit, epochMs: number, nowMs: number): void {
  const params = paramsOf(limit);
  initBucket(cells, SHARED_LAYOUT.bucket(slot), params, currentTick(nowMs, epochMs, params.fillIntervalMs));
}

function paramsOf(limit: RateLimit): BucketParams {
  return { maxTokens: limit.max_tokens, tokensPerFill: limit.tokens_per_fill, fillIntervalMs: limit.fill_interval_ms };
}

export interface CompiledRateLimit {
  readonly name: string;
  readonly params: BucketParams;
  /** Bucket slot; for a keyed limit, its id in the per-key table. */
  readonly slot: number;
  readonly base: number;
  /** Key headers (lower-case), or null for one bucket for all requests. */
  readonly keyHeaders: readonly string[] | null;
  readonly keyClientIp: boolean;
  readonly shadow: boolean;
}

/** What a limit looks at in a request. */
export interface RateLimitInput {
  /** Flat [name, value, ...], names lower-case. */
  readonly headers: readonly string[];
  readonly remoteAddress: string;
}

/** Per worker: takes tokens for requests. */
export class RateLimiter {
  private readonly keyed: KeyedBuckets;
  /** Tokens left in the bucket that admitted the last request (x-ratelimit-remaining). */
  lastRemaining = 0;
  /** Shadow-mode limits that would have refused the request of the last check(). */
  shadowHits = 0;

  constructor(
    private readonly cells: Int32Array,
    private readonly epochMs: number,
  ) {
    this.keyed = new KeyedBuckets(cells, SHARED_LAYOUT.keyedStart, SHARED_LAYOUT.keyedEntries, SHARED_LAYOUT.globalStart);
  }

  /** Compiles the limits of one listener or route; null when there are none. */
  compile(limits: readonly RateLimit[], slotNameOf: (limit: RateLimit) => string, slots: Readonly<Record<string, number>>): CompiledRateLimit[] | null {
    if (limits.length === 0) return null;
    return limits.map((limit) => {
      const slot = slots[slotNameOf(limit)];
      if (slot === undefined) throw new Error(`rate limit ${limit.name} has no shared-state slot`);
      const keyHeaders = limit.key !== undefined ? limit.key.headers : null;
      return {
        name: limit.name,
        params: paramsOf(limit),
        slot,
        base: SHARED_LAYOUT.bucket(slot),
        keyHeaders: limit.key !== undefined ? keyHeaders : null,
        keyClientIp: limit.key?.client_ip ?? false,
        shadow: limit.shadow,
      };
    });
  }

  /** The first enforcing limit that refuses the request, or null when all admit.
   *  Shadow-mode limits that would have refused it are counted in `shadowHits`. */
  check(limits: readonly CompiledRateLimit[], req: RateLimitInput, nowMs: number): CompiledRateLimit | null {
    this.shadowHits = 0;
    for (let i = 0; i < limits.length; i++) {
      const limit = limits[i];
      const tick = currentTick(nowMs, this.epochMs, limit.params.fillIntervalMs);
      let left: number;
      if (limit.keyHeaders === null && !limit.keyClientIp) {
        left = tryTake(this.cells, limit.base, limit.params, tick);
      } else {
        const key = requestKey(limit, req);
        if (key === null) continue; // no key header: this limit does not apply (Envoy)
        left = this.keyed.tryTake(limit.slot, key, limit.params, tick, Math.floor(nowMs / 1000));
      }
      if (left >= 0) {
        this.lastRemaining = left;
        continue;
      }
      if (limit.shadow) {
        this.shadowHits++;
        continue;
      }
      return limit;
    }
    return null;
  }

  /** Seconds until the limit's next fill (Retry-After, x-ratelimit-reset), at least 1. */
  secondsToNextFill(limit: CompiledRateLimit, nowMs: number): number {
    const interval = limit.params.fillIntervalMs;
    const intoPeriod = (nowMs - this.epochMs) % interval;
    return Math.max(1, Math.ceil((interval - intoPeriod) / 1000));
  }
}

/** The key of a request for a keyed limit, or null when a key header is missing. */
function requestKey(limit: CompiledRateLimit, req: RateLimitInput): string | null {
  let key = '';
  const names = limit.keyHeaders;
  if (names !== null) {
    const headers = req.headers;
    for (let k = 0; k < names.length; k++) {
      let value: string | null = null;
      for (let i = 0; i < headers.length; i += 2) {
        if (headers[i] === names[k]) {
          value = headers[i + 1];
          break;
        }
      }
      if (value === null) return null;
      key = k === 0 ? value : `${key}\n${value}`;
    }
  }
  if (limit.keyClientIp) key = key === '' ? req.remoteAddress : `${key}\n${req.remoteAddress}`;
  return key;
}
