// The retry state of one request (Envoy's RetryStateImpl): how many retries were made,
// whether another may come (retries left, the body can be sent again, the cluster's
// retry limit has room), the backoff before it, the replay buffer that lets a request
// body be sent again, and the one transparent resend after the keep-alive race. Each try
// is its own object (workers/upstream-attempt.ts); this outlives them.

import type { CircuitBreakers } from '../config/types.js';
import { ClusterCounter } from '../stats/stat-names.js';
import { AttemptFailure, isIdempotent, retryLimit, type CompiledRetryPolicy } from './retry-policy.js';

/** Request bodies up to this size are kept so that an idempotent request that hit a
 *  keep-alive connection the upstream had just closed can be sent again; a retry policy's
 *  buffer_limit_bytes raises it. */
export const REPLAY_LIMIT_BYTES = 64 * 1024;

/** What the retry state needs of a cluster (a ClusterRuntime fits). */
export interface RetryCluster {
  readonly config: { readonly circuit_breakers: CircuitBreakers };
  readonly resources: {
    readonly requests: { readonly used: number };
    readonly pending: { readonly used: number };
    readonly retries: { tryAcquire(max: number): boolean; release(): void };
  };
  readonly stats: { count(counter: number): void };
}

export class RetryState {
  /** Retries made so far. */
  retries = 0;
  /** A retry was wanted but num_retries was used up (flag URX). */
  exhausted = false;
  /** A retry was wanted but max_retries or the retry budget refused it (flag UO, as
   *  Envoy sets for RetryStatus::NoOverflow). */
  overflow = false;
  /** Holding one of the cluster's max_retries resources: from the yes of mayRetry until
   *  the retry's attempt has its answer (or the request ends). */
  private holdsRetry = false;
  /** The idempotent request was sent once more after the keep-alive race (at most once). */
  private resent = false;
  /** Body chunks kept for a resend; null when none is kept (no body, or it grew too big). */
  private replay: Buffer[] | null;
  private replayBytes = 0;
  private readonly replayLimit: number;

  constructor(
    /** The request's policy (the route's with allowed header overrides), or null. */
    readonly policy: CompiledRetryPolicy | null,
    hasBody: boolean,
  ) {
    this.replay = hasBody ? [] : null;
    this.replayLimit = policy !== null ? Math.max(REPLAY_LIMIT_BYTES, policy.bufferLimitBytes) : REPLAY_LIMIT_BYTES;
  }

  /** Per-try timeout in milliseconds; 0 = none. */
  get perTryTimeoutMs(): number {
    return this.policy?.perTryTimeoutMs ?? 0;
  }

  /** Keeps a request body chunk for a resend, until the body is too big to keep. */
  retain(chunk: Buffer): void {
    if (this.replay === null) return;
    this.replayBytes += chunk.length;
    if (this.replayBytes <= this.replayLimit) this.replay.push(chunk);
    else this.replay = null; // too big to send again: no retry, no keep-alive race resend
  }

  /** The body to send again (a copy of the kept chunks), or null when there is none. */
  replayBody(): Buffer[] | null {
    return this.replay !== null && this.replay.length > 0 ? this.replay.slice() : null;
  }

  /** Bytes of the kept body. */
  get replayedBytes(): number {
    return this.replayBytes;
  }

  /** Whether the response `status` is retried by the policy. */
  retriesStatus(status: number): boolean {
    return this.policy !== null && this.policy.retriesStatus(status);
  }

  /** Whether a failure before response headers is retried by the policy for `method`. */
  /** Whether a response with these headers is retried for its grpc-status (a
   *  trailers-only gRPC response); only read when the policy has a gRPC condition. */
  retriesGrpc(headers: readonly string[]): boolean {
    const p = this.policy;
    if (p === null || !p.retriesGrpc) return false;
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i] === 'grpc-status') return p.retriesGrpcStatus(Number(headers[i + 1]));
    }
    return false;
  }

  retriesFailure(failure: AttemptFailure, method: string): boolean {
    return this.policy !== null && this.policy.retriesFailure(failure, method);
  }

  /** Whether another attempt may be made: retries left, the body can be sent again, and
   *  the cluster's retry limit (max_retries or the retry budget, shared by all workers)
   *  has room. Takes the retry resource when it says yes; marks URX (retries used up) or
   *  UO (limit reached) when it says no. */
  mayRetry(hasBody: boolean, cluster: RetryCluster): boolean {
    const policy = this.policy;
    if (policy === null) return false;
    if (this.retries >= policy.numRetries) {
      if (policy.numRetries > 0) {
        this.exhausted = true;
        cluster.stats.count(ClusterCounter.RqRetryLimitExceeded);
      }
      return false;
    }
    if (hasBody && (this.replay === null || this.replayBytes > policy.bufferLimitBytes)) return false;
    const resources = cluster.resources;
    const limit = retryLimit(cluster.config.circuit_breakers, resources.requests.used + resources.pending.used);
    if (!resources.retries.tryAcquire(limit)) {
      this.overflow = true;
      cluster.stats.count(ClusterCounter.RqRetryOverflow);
      return false;
    }
    this.holdsRetry = true;
    return true;
  }

  /** Counts the retry mayRetry allowed and returns its jittered backoff in milliseconds. */
  beginRetry(): number {
    this.retries++;
    return this.policy!.backoffMs(this.retries);
  }

  /** The current attempt has its answer, failed, or the request ended: gives back the
   *  retry resource, if held. */
  releaseRetry(cluster: RetryCluster): void {
    if (this.holdsRetry) {
      this.holdsRetry = false;
      cluster.resources.retries.release();
    }
  }

  /** A stream an HTTP/2 upstream refused was never processed: it is sent once more,
   *  whatever the method, when its whole body can be, unless the route's policy retries
   *  refused streams itself (refused-stream). Says yes at most once. */
  mayResendRefused(hasBody: boolean, bodyDone: boolean): boolean {
    if (this.resent || (this.policy !== null && this.policy.retriesFailure(AttemptFailure.RefusedStream, ''))) return false;
    if (hasBody && (this.replay === null || !bodyDone)) return false;
    this.resent = true;
    return true;
  }

  /** After the keep-alive race (a reused connection failed before any response byte): an
   *  idempotent request on a route without a retry policy may be sent once more on a
   *  fresh connection if its whole body can be (nginx does the same); a route with a
   *  policy leaves the decision to it. Says yes at most once. */
  mayResendAfterKeepAliveRace(method: string, hasBody: boolean, bodyDone: boolean): boolean {
    if (this.policy !== null || this.resent || !isIdempotent(method)) return false;
    if (hasBody && (this.replay === null || !bodyDone)) return false;
    this.resent = true;
    return true;
  }
}
