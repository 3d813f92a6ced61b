// The local rate limit filter: takes a token from each of a listener's (or route's)
// limits; the first enforcing limit that has none left answers 429, flag RL, with
// Retry-After and the x-ratelimit-* headers. Shadow-mode refusals are only counted.

import { ResponseFlag } from '../core/flags.js';
import type { CompiledRateLimit, RateLimiter } from './rate-limit.js';
import type { FilterRequest, LocalReply, RequestFilter } from './request-filter.js';

export class RateLimitFilter implements RequestFilter {
  constructor(
    private readonly limiter: RateLimiter,
    private readonly limits: readonly CompiledRateLimit[],
    /** Called once per shadow-mode limit that would have refused the request. */
    private readonly onShadowHit: () => void,
  ) {}

  decide(req: FilterRequest): LocalReply | null {
    const limiter = this.limiter;
    const now = Date.now();
    const refused = limiter.check(this.limits, req, now);
    for (let i = limiter.shadowHits; i > 0; i--) this.onShadowHit();
    if (refused === null) return null;
    const reset = String(limiter.secondsToNextFill(refused, now));
    return {
      status: 429,
      flag: ResponseFlag.RateLimited,
      body: `rate limited by ${refused.name}`,
      headers: ['retry-after', reset, 'x-ratelimit-limit', String(refused.params.maxTokens), 'x-ratelimit-remaining', '0', 'x-ratelimit-reset', reset],
    };
  }
}
