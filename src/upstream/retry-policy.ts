// A route's retry policy compiled for the hot path (Envoy's router retry semantics):
// which failures are retried, how many times, with what backoff, and the per-request
// overrides from `x-remora-retry-on` / `x-remora-max-retries` when the route allows them.

import type { CircuitBreakers, RetryOn, RetryPolicy } from '../config/types.js';

/** Retry conditions as bits. */
export const RetryBit = {
  Status5xx: 1,
  GatewayError: 2,
  Reset: 4,
  ConnectFailure: 8,
  Retriable4xx: 16,
  RetriableStatusCodes: 32,
} as const;

const BIT_OF: Readonly<Record<RetryOn, number>> = {
  '5xx': RetryBit.Status5xx,
  'gateway-error': RetryBit.GatewayError,
  reset: RetryBit.Reset,
  'connect-failure': RetryBit.ConnectFailure,
  'retriable-4xx': RetryBit.Retriable4xx,
  'retriable-status-codes': RetryBit.RetriableStatusCodes,
};

/** What went wrong with one attempt, for the retry decision. */
export const enum AttemptFailure {
  ConnectFailure = 1,
  Reset = 2,
  /** The per-try timeout fired before response headers. */
  PerTryTimeout = 3,
}

/** Methods that may be sent twice without changing the result (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Maximum x-remora-max-retries a request may ask for. */
export const MAX_REQUEST_RETRIES = 10;

export class CompiledRetryPolicy {
  readonly bits: number;
  readonly numRetries: number;
  readonly perTryTimeoutMs: number;
  readonly statusCodes: ReadonlySet<number>;
  readonly baseMs: number;
  readonly maxMs: number;
  readonly allowRequestHeaders: boolean;
  readonly retryNonIdempotentOnReset: boolean;
  readonly bufferLimitBytes: number;

  constructor(p: RetryPolicy, bits?: number, numRetries?: number) {
    this.bits = bits ?? p.retry_on.reduce((acc, on) => acc | BIT_OF[on], 0);
    this.numRetries = numRetries ?? p.num_retries;
    this.perTryTimeoutMs = p.per_try_timeout_ms;
    this.statusCodes = new Set(p.retriable_status_codes);
    this.baseMs = p.base_interval_ms;
    this.maxMs = p.max_interval_ms;
    this.allowRequestHeaders = p.allow_request_headers;
    this.retryNonIdempotentOnReset = p.retry_non_idempotent_on_reset;
    this.bufferLimitBytes = p.buffer_limit_bytes;
    this.source = p;
  }

  private readonly source: RetryPolicy;

  /** The policy with a request's header overrides applied: `retryOn` (comma-separated
   *  names; unknown names ignored, as Envoy does) adds conditions, `maxRetries` replaces
   *  num_retries. Null values leave the route's setting. */
  withOverrides(retryOn: string | null, maxRetries: string | null): CompiledRetryPolicy {
    let bits = this.bits;
    if (retryOn !== null) {
      for (const raw of retryOn.split(',')) {
        const bit = BIT_OF[raw.trim() as RetryOn];
        if (bit !== undefined) bits |= bit;
      }
    }
    let n = this.numRetries;
    if (maxRetries !== null) {
      // Plain decimal digits only; anything else is ignored, as Envoy does.
      const text = maxRetries.trim();
      if (/^\d+$/.test(text)) n = Math.min(Number(text), MAX_REQUEST_RETRIES);
    }
    return new CompiledRetryPolicy(this.source, bits, n);
  }

  /** Whether a response with `status` is retried. */
  retriesStatus(status: number): boolean {
    const b = this.bits;
    if (status >= 500) {
      if ((b & RetryBit.Status5xx) !== 0) return true;
      if ((b & RetryBit.GatewayError) !== 0 && status >= 502 && status <= 504) return true;
    }
    // Envoy's retriable-4xx is 409 Conflict only.
    if (status === 409 && (b & RetryBit.Retriable4xx) !== 0) return true;
    return (b & RetryBit.RetriableStatusCodes) !== 0 && this.statusCodes.has(status);
  }

  /** Whether an attempt that failed before its response headers is retried. */
  retriesFailure(failure: AttemptFailure, method: string): boolean {
    const b = this.bits;
    switch (failure) {
      case AttemptFailure.ConnectFailure:
        // Nothing reached the upstream: always safe to send again.
        return (b & (RetryBit.ConnectFailure | RetryBit.GatewayError | RetryBit.Status5xx | RetryBit.Reset)) !== 0;
      case AttemptFailure.Reset:
        if ((b & (RetryBit.Reset | RetryBit.GatewayError | RetryBit.Status5xx)) === 0) return false;
        return this.retryNonIdempotentOnReset || IDEMPOTENT.has(method);
      case AttemptFailure.PerTryTimeout:
        if ((b & (RetryBit.Reset | RetryBit.GatewayError | RetryBit.Status5xx)) === 0) return false;
        return this.retryNonIdempotentOnReset || IDEMPOTENT.has(method);
    }
  }

  /** Fully jittered exponential backoff before retry number `retry` (1 = first retry):
   *  a uniform random wait in [0, min(max, base × 2^(retry−1))]. */
  backoffMs(retry: number): number {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(retry - 1, 30));
    return Math.random() * ceiling;
  }
}

/** Retries a cluster may have in flight, process-wide: max_retries, or with a retry
 *  budget budget_percent of the requests in flight (at least min_retry_concurrency). */
export function retryLimit(breakers: CircuitBreakers, requestsInFlight: number): number {
  const budget = breakers.retry_budget;
  if (budget === undefined) return breakers.max_retries;
  return Math.max(budget.min_retry_concurrency, Math.floor((budget.budget_percent / 100) * requestsInFlight));
}
