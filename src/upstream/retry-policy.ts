// A route's retry policy compiled for the hot path (Envoy's router retry semantics):
// which failures are retried, how many times, with what backoff, and the per-request
// overrides from `x-remora-retry-on` / `x-remora-max-retries` (or Envoy's
// `x-envoy-retry-on` / `x-envoy-max-retries` / `x-envoy-upstream-rq-per-try-timeout-ms`)
// when the route allows them.

import type { CircuitBreakers, RetryOn, RetryPolicy } from '../config/types.js';

/** Retry conditions as bits. */
export const RetryBit = {
  Status5xx: 1,
  GatewayError: 2,
  Reset: 4,
  ConnectFailure: 8,
  Retriable4xx: 16,
  RetriableStatusCodes: 32,
  RefusedStream: 64,
  GrpcCancelled: 128,
  GrpcDeadlineExceeded: 256,
  GrpcInternal: 512,
  GrpcResourceExhausted: 1024,
  GrpcUnavailable: 2048,
} as const;

/** Every gRPC condition: a policy without one never looks at grpc-status. */
const GRPC_BITS = RetryBit.GrpcCancelled | RetryBit.GrpcDeadlineExceeded | RetryBit.GrpcInternal | RetryBit.GrpcResourceExhausted | RetryBit.GrpcUnavailable;

const BIT_OF: Readonly<Record<RetryOn, number>> = {
  '5xx': RetryBit.Status5xx,
  'gateway-error': RetryBit.GatewayError,
  reset: RetryBit.Reset,
  'connect-failure': RetryBit.ConnectFailure,
  'retriable-4xx': RetryBit.Retriable4xx,
  'retriable-status-codes': RetryBit.RetriableStatusCodes,
  'refused-stream': RetryBit.RefusedStream,
  cancelled: RetryBit.GrpcCancelled,
  'deadline-exceeded': RetryBit.GrpcDeadlineExceeded,
  internal: RetryBit.GrpcInternal,
  'resource-exhausted': RetryBit.GrpcResourceExhausted,
  unavailable: RetryBit.GrpcUnavailable,
};

/** gRPC status code → its retry condition bit (Envoy's retry_on gRPC names). */
function grpcBit(code: number): number {
  switch (code) {
    case 1:
      return RetryBit.GrpcCancelled;
    case 4:
      return RetryBit.GrpcDeadlineExceeded;
    case 8:
      return RetryBit.GrpcResourceExhausted;
    case 13:
      return RetryBit.GrpcInternal;
    case 14:
      return RetryBit.GrpcUnavailable;
    default:
      return 0;
  }
}

/** What went wrong with one attempt, for the retry decision. */
export const enum AttemptFailure {
  ConnectFailure = 1,
  Reset = 2,
  /** The per-try timeout fired before response headers. */
  PerTryTimeout = 3,
  /** An HTTP/2 upstream refused the stream (REFUSED_STREAM, or beyond a GOAWAY's last
   *  stream id): provably not processed. */
  RefusedStream = 4,
}

/** Methods that may be sent twice without changing the result (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Whether `method` is idempotent (RFC 9110 §9.2.2): sending it twice has the effect
 *  of sending it once. */
export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}

/** A request header value in milliseconds: plain decimal digits, else null (ignored, as
 *  Envoy ignores a malformed x-envoy-upstream-rq-timeout-ms). */
export function headerMs(value: string | null): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (!/^\d{1,9}$/.test(text)) return null;
  return Number(text);
}

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

  constructor(p: RetryPolicy, bits?: number, numRetries?: number, perTryTimeoutMs?: number) {
    this.bits = bits ?? p.retry_on.reduce((acc, on) => acc | BIT_OF[on], 0);
    this.numRetries = numRetries ?? p.num_retries;
    this.perTryTimeoutMs = perTryTimeoutMs ?? p.per_try_timeout_ms;
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
   *  num_retries, `perTryTimeout` (milliseconds, digits only) replaces per_try_timeout_ms.
   *  Null values leave the route's setting. */
  withOverrides(retryOn: string | null, maxRetries: string | null, perTryTimeout: string | null = null): CompiledRetryPolicy {
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
    return new CompiledRetryPolicy(this.source, bits, n, headerMs(perTryTimeout) ?? this.perTryTimeoutMs);
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

  /** Whether the policy retries any gRPC status (so grpc-status is worth reading). */
  get retriesGrpc(): boolean {
    return (this.bits & GRPC_BITS) !== 0;
  }

  /** Whether a response whose headers carry `grpc-status: code` is retried. */
  retriesGrpcStatus(code: number): boolean {
    const bit = grpcBit(code);
    return bit !== 0 && (this.bits & bit) !== 0;
  }

  /** Whether an attempt that failed before its response headers is retried. After a
   *  reset or a per-try timeout the upstream may have acted on the request, so only
   *  idempotent methods are retried unless retry_non_idempotent_on_reset (Envoy retries
   *  every method; that option gives Envoy's behaviour). */
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
      case AttemptFailure.RefusedStream:
        // Never processed: any method (Envoy retries it under refused-stream only).
        return (b & RetryBit.RefusedStream) !== 0;
    }
  }

  /** Fully jittered exponential backoff before retry number `retry` (1 = first retry),
   *  Envoy's JitteredExponentialBackOffStrategy: a uniform random wait in
   *  [0, (2^retry − 1) × base), then capped at max. With the defaults (25 ms, 250 ms):
   *  0–25 ms, 0–75 ms, 0–175 ms, then up to 250 ms. */
  backoffMs(retry: number): number {
    const range = (2 ** Math.min(retry, 30) - 1) * this.baseMs;
    return Math.min(Math.random() * range, this.maxMs);
  }
}

/** Retries a cluster may have in flight, process-wide: max_retries, or with a retry
 *  budget budget_percent of the active requests (Envoy: outstanding plus pending
 *  requests), at least min_retry_concurrency. */
export function retryLimit(breakers: CircuitBreakers, activeRequests: number): number {
  const budget = breakers.retry_budget;
  if (budget === undefined) return breakers.max_retries;
  return Math.max(budget.min_retry_concurrency, Math.floor((budget.budget_percent / 100) * activeRequests));
}
