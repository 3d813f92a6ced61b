// What is known about one request once it is over, or as far as it got (Envoy's
// StreamInfo): what was asked, how it was answered (status, response flags), bytes,
// timings, attempts, where it went. The exchange fills it; the access log and the stats
// recording read it and nothing else, so neither depends on the request lifecycle.

import { ResponseFlag } from '../src/core/flags.js';
import type { ClusterRuntime } from '../src/upstream/cluster.js';
import type { DownstreamRequest } from './downstream.js';

export class StreamInfo {
  /** performance.now() when the request arrived. */
  readonly startedAt = performance.now();
  /** The client's x-request-id, or the one Remora made. */
  requestId = '';
  /** Status sent to the client; 0 when none was. */
  status = 0;
  /** The response flag (ResponseFlag); see `flags` for the full list. */
  flag: string = ResponseFlag.None;
  /** Status of the upstream's response head, 0 when none arrived. */
  upstreamStatus = 0;
  /** gRPC requests: the grpc-status of the response (headers, trailers or Remora's own
   *  reply); -1 when none was seen or the request is not gRPC. */
  grpcStatus = -1;
  /** A retry was wanted but num_retries was used up (URX). */
  retryExhausted = false;
  /** A retry was wanted but max_retries or the retry budget refused it (UO). */
  retryOverflow = false;
  /** Attempts written to an upstream connection (the first, retries, and a keep-alive
   *  resend); the access log's `attempts`. */
  attempts = 0;
  /** Request body bytes received from the client. */
  bytesIn = 0;
  /** Response body bytes sent to the client (proxied responses). */
  bytesOut = 0;
  /** Microseconds from arrival to finish. */
  durationUs = 0;
  /** performance.now() when the last attempt got its connection; 0 = none did. */
  upstreamStartedAt = 0;
  /** Microseconds from the last attempt's start to the end; -1 if none was made. */
  upstreamUs = -1;
  /** The traceparent Remora generated and sent upstream (listener generate_traceparent),
   *  or null (off, the request carried one, or nothing was forwarded). */
  generatedTraceparent: string | null = null;
  /** The trace this request belongs to when the listener traces (32 hex digits; the
   *  client's trace id, or a new one), else ''. */
  traceId = '';
  /** Upstream attempts that ended (noteAttempt). */
  attemptsEnded = 0;
  /** The first attempt's duration (µs), and the later ones' (null until a second ends):
   *  one number per request without retries, no array. */
  private firstAttemptUs = 0;
  private laterAttemptsUs: number[] | null = null;
  /** Matched route name, or '' when none matched. */
  routeName = '';
  /** Cluster the request was sent to, or null (no route, direct response, rejected). */
  cluster: ClusterRuntime | null = null;
  /** Upstream endpoint `address:port` the request went to last, or ''. */
  upstreamHost = '';

  constructor(
    /** What the client asked for (method, path, headers, address, peer identity). */
    readonly request: DownstreamRequest,
  ) {}

  /** Response flags for logs: the flag, plus UO when a retry was refused by max_retries
   *  or the retry budget and URX when num_retries ran out (Envoy's two outcomes). */
  get flags(): string {
    if (!this.retryExhausted && !this.retryOverflow) return this.flag;
    let out = this.flag === ResponseFlag.None ? '' : this.flag;
    if (this.retryOverflow && this.flag !== ResponseFlag.UpstreamOverflow) out = out === '' ? ResponseFlag.UpstreamOverflow : `${out},${ResponseFlag.UpstreamOverflow}`;
    if (this.retryExhausted) out = out === '' ? ResponseFlag.UpstreamRetryLimitExceeded : `${out},${ResponseFlag.UpstreamRetryLimitExceeded}`;
    return out;
  }

  /** Notes an upstream attempt's duration (µs), in the order attempts end. */
  noteAttempt(us: number): void {
    if (this.attemptsEnded++ === 0) this.firstAttemptUs = us;
    else (this.laterAttemptsUs ??= []).push(us);
  }

  /** Microseconds each upstream attempt took, in order, from its dispatch to its end
   *  (response complete, failure, timeout or given up); null when none ended. A new array
   *  per call: for the access log. */
  get attemptTimes(): number[] | null {
    if (this.attemptsEnded === 0) return null;
    const later = this.laterAttemptsUs;
    return later === null ? [this.firstAttemptUs] : [this.firstAttemptUs, ...later];
  }

  /** Marks the request over: durations from `now` (performance.now()). */
  end(now: number): void {
    this.durationUs = Math.round((now - this.startedAt) * 1000);
    if (this.upstreamStartedAt > 0) this.upstreamUs = Math.round((now - this.upstreamStartedAt) * 1000);
  }
}
