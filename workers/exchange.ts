// One proxied request, from arrival to the last byte back: validate → route → pick
// endpoint → forward → stream the response → record. Front-end agnostic: it talks to a
// Downstream (uWS today) and to an UpstreamConnection from the endpoint's pool.

import { randomUUID } from 'node:crypto';
import { ResponseFlag } from '../src/core/flags.js';
import {
  connectionTokens,
  isHopByHop,
  isValidHeaderValue,
  parseContentLength,
} from '../src/http/headers.js';
import { reasonPhrase } from '../src/http/status.js';
import { httpDate } from '../src/http/date.js';
import { hasTraceparent, newTraceparent } from '../src/http/trace-context.js';
import { pickTarget, type CompiledRoute } from '../src/router/route-table.js';
import type { CompiledRateLimit } from '../src/filters/rate-limit.js';
import type { XfccMode } from '../src/config/types.js';
import type { PeerIdentity } from '../src/tls/peer-identity.js';
import type { ClusterRuntime } from '../src/upstream/cluster.js';
import { AttemptFailure, headerMs, isIdempotent, retryLimit, type CompiledRetryPolicy } from '../src/upstream/retry-policy.js';
import type { UpstreamConnection, UpstreamFailure, UpstreamSink } from '../src/upstream/connection.js';
import type { EndpointPool, PoolClient } from '../src/upstream/pool.js';
import type { Downstream, DownstreamEvents, DownstreamRequest } from './downstream.js';
import type { ListenerRuntime, RoutePolicy, WorkerContext } from './context.js';
import { ClusterCounter, ListenerCounter } from '../src/stats/stat-names.js';

const enum BodyMode {
  None = 'none',
  Fixed = 'fixed',
  Chunked = 'chunked',
}

/** Request bodies up to this size are kept so that an idempotent request that hit a
 *  keep-alive connection the upstream had just closed can be sent again. */
const REPLAY_LIMIT_BYTES = 64 * 1024;
/** Body bytes held while waiting for an upstream connection before pausing the client. */
const PENDING_LIMIT_BYTES = 1024 * 1024;
const EMPTY = new Uint8Array(0);
/** Response header an upstream sets to be marked unhealthy at once (active health
 *  checking must be on for its cluster); never forwarded to the client. */
const IMMEDIATE_HC_FAIL = 'x-remora-immediate-health-check-fail';
const UPSTREAM_SERVICE_TIME = 'x-remora-upstream-service-time';
const OVERLOADED_HEADERS: readonly string[] = ['x-remora-overloaded', 'true'];

export class Exchange implements DownstreamEvents, UpstreamSink, PoolClient {
  flag: string = ResponseFlag.None;
  status = 0;
  cancelled = false;
  requestId = '';
  private route: CompiledRoute<ClusterRuntime, RoutePolicy> | null = null;
  private pool: EndpointPool | null = null;
  /** The endpoint the previous attempt failed on (a retry avoids it). */
  private previousPool: EndpointPool | null = null;
  /** Retry policy of this request (route policy with allowed header overrides), or null. */
  private retry: CompiledRetryPolicy | null = null;
  /** Retries made so far. */
  private retries = 0;
  /** Holding one of the cluster's max_requests / max_retries resources. */
  private holdsRequest = false;
  private holdsRetry = false;
  /** A retriable response is being read and thrown away before the retry. */
  private discarding = false;
  private backoffTimer: NodeJS.Timeout | null = null;
  private perTryTimer: NodeJS.Timeout | null = null;
  /** The request failed and a retry was wanted but num_retries was used up (flag URX). */
  retryExhausted = false;
  /** A retry was wanted but max_retries or the retry budget refused it (flag UO, as
   *  Envoy sets for RetryStatus::NoOverflow). */
  retryOverflow = false;
  /** Attempts written to an upstream connection (the first, retries, and a keep-alive
   *  resend); the access log's `attempts`. */
  attempts = 0;
  /** The route timeout for this request (route timeout_ms, or a trusted
   *  x-envoy-upstream-rq-timeout-ms / x-remora-upstream-rq-timeout-ms). */
  private timeoutMs = 0;
  private clusterRuntime: ClusterRuntime | null = null;
  private listener: ListenerRuntime | null = null;
  /** Status of the upstream's response head, 0 when none arrived. */
  upstreamStatus = 0;
  /** The traceparent Remora generated and sent upstream (listener generate_traceparent),
   *  or null (off, the request carried one, or nothing was forwarded). */
  generatedTraceparent: string | null = null;
  private conn: UpstreamConnection | null = null;
  /** The request head without x-remora-attempt-count; each attempt after the first (and
   *  the first too with include_request_attempt_count) gets it added. */
  private firstHead = '';
  private isHead = false;
  private bodyMode = BodyMode.None;
  private requestBodyDone = true;
  private pendingBody: Buffer[] | null = null;
  private pendingBytes = 0;
  private retained: Buffer[] | null = null;
  private retainedBytes = 0;
  /** Body bytes kept for a resend (keep-alive race, retries). */
  private retainLimit = REPLAY_LIMIT_BYTES;
  private requestPaused = false;
  private upstreamPaused = false;
  /** An idempotent request was sent once more after the keep-alive race (at most once). */
  private resent = false;
  private headSent = false;
  private finished = false;
  private responseLength = -1;
  private timer: NodeJS.Timeout | null = null;
  private upstreamStartedAt = 0;
  readonly startedAt = performance.now();
  // Accounting read by the recorders (stats, access log) when the exchange finishes.
  /** Request body bytes received from the client. */
  bytesIn = 0;
  /** Response body bytes sent to the client (proxied responses). */
  bytesOut = 0;
  /** Microseconds from arrival to finish. */
  durationUs = 0;
  /** Microseconds from the upstream request's start to its end; -1 if none was made. */
  upstreamUs = -1;

  constructor(
    private readonly ctx: WorkerContext,
    private readonly ds: Downstream,
    private readonly req: DownstreamRequest,
  ) {}

  /** Runs the pipeline up to the point where it waits for I/O. */
  begin(listener: ListenerRuntime, listen: (events: DownstreamEvents, hasBody: boolean) => void): void {
    this.ctx.inflight++;
    this.listener = listener;
    listener.stats.requestStarted();
    const table = listener.table;
    const req = this.req;
    this.isHead = req.method === 'HEAD'; // before any reject: a refused HEAD gets no body either
    const refusal = req.refusal;
    if (refusal !== null) {
      return this.reject(refusal.status, refusal.reason, ResponseFlag.DownstreamProtocolError, refusal.location !== undefined ? ['location', refusal.location] : null);
    }
    const headers = req.headers;
    let host = '';
    let contentLength = -1;
    let transferEncoding: string | null = null;
    let connection: string | null = null;
    // Control headers (x-remora-* and Envoy's x-envoy-* names), honoured when the
    // route's retry policy sets allow_request_headers; never forwarded (buildHead).
    let retryOn: string | null = null;
    let maxRetries: string | null = null;
    let perTryTimeout: string | null = null;
    let rqTimeout: string | null = null;
    // Request line and headers, as they came (": " and CRLFs counted), against
    // max_request_headers_kb.
    let headBytes = req.method.length + req.path.length + req.query.length + 12;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i];
      const value = headers[i + 1];
      headBytes += name.length + value.length + 4;
      if (!isValidHeaderValue(value)) return this.reject(400, `invalid value in header ${name}`);
      switch (name) {
        case 'host':
          if (host !== '' && host !== value) return this.reject(400, 'more than one host header');
          host = value;
          break;
        case 'content-length': {
          const n = parseContentLength(value);
          if (n < 0) return this.reject(400, 'invalid content-length');
          if (contentLength >= 0 && n !== contentLength) return this.reject(400, 'conflicting content-length headers');
          contentLength = n;
          break;
        }
        case 'transfer-encoding':
          transferEncoding = transferEncoding === null ? value : `${transferEncoding}, ${value}`;
          break;
        case 'connection':
          connection = connection === null ? value : `${connection}, ${value}`;
          break;
        case 'x-request-id':
          this.requestId = value;
          break;
        case 'x-remora-retry-on':
        case 'x-envoy-retry-on':
          retryOn = retryOn === null ? value : `${retryOn},${value}`;
          break;
        case 'x-remora-max-retries':
        case 'x-envoy-max-retries':
          maxRetries = value;
          break;
        case 'x-remora-upstream-rq-timeout-ms':
        case 'x-envoy-upstream-rq-timeout-ms':
          rqTimeout = value;
          break;
        case 'x-remora-upstream-rq-per-try-timeout-ms':
        case 'x-envoy-upstream-rq-per-try-timeout-ms':
          perTryTimeout = value;
          break;
      }
    }
    if (headBytes > listener.maxRequestHeadersBytes) {
      return this.reject(431, `request headers larger than ${listener.maxRequestHeadersBytes / 1024} KiB`, ResponseFlag.DownstreamProtocolError);
    }
    if (transferEncoding !== null) {
      if (contentLength >= 0) return this.reject(400, 'both content-length and transfer-encoding');
      if (transferEncoding.trim().toLowerCase() !== 'chunked') {
        return this.reject(501, `transfer-encoding "${transferEncoding}" not supported`);
      }
      this.bodyMode = BodyMode.Chunked;
    } else if (contentLength > 0) {
      this.bodyMode = BodyMode.Fixed;
    }
    if (this.requestId === '') this.requestId = randomUUID();

    const peerId = req.peer === null ? '' : req.peer.id;
    if (listener.authorization !== null && !listener.authorization.permits(peerId)) return this.denied();
    if (listener.rateLimits !== null && this.rateLimited(listener.rateLimits)) return;
    const route = table.match({ host, method: req.method, path: req.path, headers });
    if (route === null) return this.localReply(404, ResponseFlag.NoRoute, 'no route matched', false);
    this.route = route;
    const policy = route.policy;
    if (policy.authorization !== null && !policy.authorization.permits(peerId)) return this.denied();
    if (policy.rateLimits !== null && this.rateLimited(policy.rateLimits)) return;
    if (route.direct !== null) {
      this.flag = ResponseFlag.DirectResponse;
      return this.localReply(route.direct.status, ResponseFlag.DirectResponse, route.direct.body, false, true);
    }
    const bodyLimit = route.maxRequestBodyBytes;
    if (bodyLimit > 0 && contentLength > bodyLimit) {
      return this.localReply(413, ResponseFlag.DownstreamProtocolError, `request body larger than ${bodyLimit} bytes`, true);
    }
    const cluster = pickTarget(route);
    this.clusterRuntime = cluster;
    // max_requests is taken when an attempt gets its connection (onConnection), as
    // Envoy's pool does: requests waiting for a connection count as pending only.
    this.timeoutMs = route.timeoutMs;
    const retry = policy.retry;
    if (retry !== null) {
      this.retry = retry;
      if (retry.allowRequestHeaders) {
        if (retryOn !== null || maxRetries !== null || perTryTimeout !== null) this.retry = retry.withOverrides(retryOn, maxRetries, perTryTimeout);
        this.timeoutMs = headerMs(rqTimeout) ?? this.timeoutMs;
      }
    }
    const pool = cluster.pick();
    if (pool === null) return this.localReply(503, ResponseFlag.NoHealthyUpstream, 'no healthy upstream', false);

    this.firstHead = this.buildHead(host, contentLength, connection);
    const hasBody = this.bodyMode !== BodyMode.None;
    this.requestBodyDone = !hasBody;
    if (hasBody) {
      this.retained = [];
      if (this.retry !== null) this.retainLimit = Math.max(REPLAY_LIMIT_BYTES, this.retry.bufferLimitBytes);
    }
    listen(this, hasBody);
    if (!hasBody) this.startTimer();
    this.dispatch(pool);
  }

  /** Sends the request (again) to `pool`'s endpoint. */
  private dispatch(pool: EndpointPool): void {
    this.pool = pool;
    pool.active++;
    if (!pool.acquire(this)) {
      this.localReply(503, ResponseFlag.UpstreamOverflow, 'upstream overflow: max_pending_requests reached', false, false, OVERLOADED_HEADERS);
    }
  }

  /** Checks rate limits; answers 429 and returns true when one refuses the request. */
  /** Refused by an authorization policy: 403, flag RBAC (Envoy's RBAC filter's reply). */
  private denied(): void {
    this.localReply(403, ResponseFlag.AuthorizationDenied, 'RBAC: access denied', false);
  }

  private rateLimited(limits: readonly CompiledRateLimit[]): boolean {
    const ctx = this.ctx;
    const now = Date.now();
    const refused = ctx.rateLimiter.check(limits, this.req, now);
    for (let i = ctx.rateLimiter.shadowHits; i > 0; i--) this.listener!.stats.count(ListenerCounter.RateLimitShadow);
    if (refused === null) return false;
    const reset = String(ctx.rateLimiter.secondsToNextFill(refused, now));
    this.localReply(429, ResponseFlag.RateLimited, `rate limited by ${refused.name}`, false, false, [
      'retry-after', reset,
      'x-ratelimit-limit', String(refused.params.maxTokens),
      'x-ratelimit-remaining', '0',
      'x-ratelimit-reset', reset,
    ]);
    return true;
  }

  /** What the client asked for (method, path, headers, address). */
  get request(): DownstreamRequest {
    return this.req;
  }

  /** Matched route name, or '' when none matched. */
  get routeName(): string {
    return this.route?.name ?? '';
  }

  /** Upstream endpoint `address:port` the request went to last, or ''. */
  get endpoint(): string {
    return (this.pool ?? this.previousPool)?.key ?? '';
  }

  /** Response flags for logs: the flag, plus UO when a retry was refused by max_retries
   *  or the retry budget and URX when num_retries ran out (Envoy's two outcomes). */
  get flags(): string {
    if (!this.retryExhausted && !this.retryOverflow) return this.flag;
    let out = this.flag === ResponseFlag.None ? '' : this.flag;
    if (this.retryOverflow && this.flag !== ResponseFlag.UpstreamOverflow) out = out === '' ? ResponseFlag.UpstreamOverflow : `${out},${ResponseFlag.UpstreamOverflow}`;
    if (this.retryExhausted) out = out === '' ? ResponseFlag.UpstreamRetryLimitExceeded : `${out},${ResponseFlag.UpstreamRetryLimitExceeded}`;
    return out;
  }

  /** Cluster the request was sent to, or null (no route, direct response, rejected). */
  get cluster(): ClusterRuntime | null {
    return this.clusterRuntime;
  }

  // ---- PoolClient ----

  onConnection(conn: UpstreamConnection): void {
    if (this.finished || this.pool === null) {
      if (this.pool !== null) this.pool.release(conn);
      else conn.destroy();
      return;
    }
    const cluster = this.clusterRuntime!;
    if (!this.holdsRequest) {
      // max_requests counts outstanding requests: those on a connection (Envoy's
      // attachStreamToClient). Queued ones were limited by max_pending_requests.
      if (!cluster.resources.requests.tryAcquire(cluster.config.circuit_breakers.max_requests)) {
        this.pool.release(conn); // the connection goes to the next waiting request
        cluster.stats.count(ClusterCounter.RqOverflow);
        this.localReply(503, ResponseFlag.UpstreamOverflow, 'upstream overflow: max_requests reached', false, false, OVERLOADED_HEADERS);
        return;
      }
      this.holdsRequest = true;
    }
    const n = this.attempts + 1;
    // Every attempt after the first says which it is (Envoy's x-envoy-attempt-count); the
    // first too when the virtual host sets include_request_attempt_count.
    const head = n > 1 || this.route!.includeAttemptCount ? `${this.firstHead.slice(0, -2)}x-remora-attempt-count: ${n}\r\n\r\n` : this.firstHead;
    if (!conn.start(this, head, this.isHead, this.bodyMode)) {
      // The connection was seen closed before anything was written: the request provably
      // never reached the upstream, so it goes out on a fresh connection, any method.
      this.ctx.stats.keepAliveRaceRetries++;
      cluster.stats.count(ClusterCounter.KeepAliveRetries);
      this.pool.acquire(this, true);
      return;
    }
    this.attempts = n;
    this.conn = conn;
    // The per-try timeout starts once the attempt has its connection and the whole
    // request (Envoy's order), so an attempt never times out while queued in a pool.
    if (this.requestBodyDone) this.startPerTryTimer();
    this.upstreamStartedAt = performance.now();
    if (this.pendingBody !== null) {
      const pending = this.pendingBody;
      this.pendingBody = null;
      this.pendingBytes = 0;
      let ok = true;
      for (const chunk of pending) ok = conn.writeBody(chunk);
      if (!ok) this.pauseRequest();
      else if (this.requestPaused) this.resumeRequest();
    }
    if (this.requestBodyDone && this.bodyMode !== BodyMode.None) conn.endBody();
  }

  onPoolClosed(): void {
    if (this.finished) return;
    this.onUpstreamError('connect', false, 'the endpoint left the config');
  }

  // ---- DownstreamEvents ----

  onRequestBody(chunk: Buffer, isLast: boolean): void {
    if (this.finished) return;
    this.bytesIn += chunk.length;
    const bodyLimit = this.route!.maxRequestBodyBytes;
    if (bodyLimit > 0 && this.bytesIn > bodyLimit) return this.bodyTooLarge(bodyLimit);
    if (chunk.length > 0) {
      if (this.retained !== null) {
        this.retainedBytes += chunk.length;
        if (this.retainedBytes <= this.retainLimit) this.retained.push(chunk);
        else this.retained = null; // too big to send again: no retry, no keep-alive race resend
      }
      if (this.conn !== null) {
        if (!this.conn.writeBody(chunk)) this.pauseRequest();
      } else {
        (this.pendingBody ??= []).push(chunk);
        this.pendingBytes += chunk.length;
        if (this.pendingBytes > PENDING_LIMIT_BYTES) this.pauseRequest();
      }
    }
    if (isLast) {
      this.requestBodyDone = true;
      this.conn?.endBody();
      this.startTimer();
      if (this.conn !== null) this.startPerTryTimer();
    }
  }

  /** A chunked body went over the route's limit: cut the upstream request, answer 413
   *  (or close, if the response already started) and drop the connection. */
  private bodyTooLarge(limit: number): void {
    this.cutRequest(413, `request body larger than ${limit} bytes`);
  }

  /** The codec found the request body malformed mid-way (chunk framing): the upstream
   *  request is cut, so the upstream never takes a partial body for a whole one. */
  onRequestBodyError(reason: string): void {
    if (this.finished) return;
    this.listener?.stats.count(ListenerCounter.RqProtocolError);
    this.cutRequest(400, reason);
  }

  /** Cuts the upstream request (its connection is closed), answers `status` (or closes,
   *  if the response already started) and drops the client connection. */
  private cutRequest(status: number, reason: string): void {
    const conn = this.conn;
    this.conn = null;
    conn?.destroy();
    if (this.headSent) {
      this.ds.close();
      this.finish(ResponseFlag.DownstreamProtocolError);
      return;
    }
    this.endAttempt();
    this.localReply(status, ResponseFlag.DownstreamProtocolError, reason, true);
  }

  onAbort(): void {
    if (this.finished) return;
    this.cancelled = true;
    this.ctx.stats.downstreamResets++;
    const conn = this.conn;
    this.conn = null;
    conn?.destroy(); // an upstream request nobody waits for is cancelled, not finished
    this.finish(ResponseFlag.DownstreamConnectionTermination);
  }

  onDrain(): void {
    if (this.upstreamPaused) {
      this.upstreamPaused = false;
      this.conn?.resume();
    }
  }

  // ---- UpstreamSink ----

  cork(fn: () => void): void {
    if (this.ds.aborted) fn();
    else this.ds.cork(fn);
  }

  onHead(status: number, reason: string, headers: string[], bodyLength: number): void {
    if (this.finished) return;
    this.endAttempt();
    const cluster = this.clusterRuntime!;
    const pool = this.pool!;
    this.upstreamStatus = status;
    this.ctx.endpointOutcome(cluster, pool, status >= 500, status >= 502 && status <= 504);
    const retry = this.retry;
    if (retry !== null && retry.retriesStatus(status) && this.mayRetry()) {
      // Read the rest of this response and throw it away; the retry starts when it ends.
      this.discarding = true;
      return;
    }
    if (this.retries > 0) cluster.stats.count(ClusterCounter.RqRetrySuccess);
    const ds = this.ds;
    const route = this.route!;
    this.headSent = true;
    if (this.timer !== null) {
      // The route timeout ends with the response headers; the body may take its time.
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.status = status;
    this.responseLength = bodyLength;
    ds.writeStatus(status, reason);
    let dropped: string[] | null = null;
    let headContentLength = -1;
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i] === 'connection') dropped = connectionTokens(headers[i + 1]);
    }
    const remove = route.responseHeadersToRemove;
    const listener = this.listener!;
    let sawDate = ds.writesDate; // uWS writes its own
    let sawServer = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i];
      if (name === 'content-length') {
        headContentLength = parseContentLength(headers[i + 1]);
        continue; // the front end writes its own framing
      }
      if (isHopByHop(name)) continue;
      if (dropped !== null && dropped.includes(name)) continue;
      if (remove !== null && remove.has(name)) continue;
      if (name === 'date') {
        if (sawDate) continue;
        sawDate = true;
      } else if (name === 'server') {
        if (listener.serverHeader === 'overwrite') continue;
        sawServer = true;
      }
      if (name === IMMEDIATE_HC_FAIL) {
        if (cluster.config.health_check !== undefined) this.ctx.immediateHealthCheckFail(pool);
        continue;
      }
      ds.writeHeader(name, headers[i + 1]);
    }
    const add = route.responseHeadersToAdd;
    for (let i = 0; i < add.length; i += 2) ds.writeHeader(add[i], add[i + 1]);
    // An upstream without a clock gets the proxy's date (RFC 9110 §6.6.1), unless the
    // route removes date; the server header follows server_header_transformation.
    if (!sawDate && (remove === null || !remove.has('date'))) ds.writeHeader('date', httpDate());
    if (!sawServer && listener.serverHeader !== 'pass_through' && (remove === null || !remove.has('server'))) {
      ds.writeHeader('server', listener.serverName);
    }
    // Draining: tell the client not to reuse this connection.
    if (this.ctx.draining) ds.writeHeader('connection', 'close');
    if (remove === null || !remove.has(UPSTREAM_SERVICE_TIME)) {
      ds.writeHeader(UPSTREAM_SERVICE_TIME, String(Math.round(performance.now() - this.upstreamStartedAt)));
    }
    if (this.isHead) {
      ds.endWithoutBody(headContentLength);
    } else if (bodyLength === 0) {
      if (status === 204 || status === 304) ds.endWithoutBody(-1);
      else ds.write(EMPTY, 0);
    }
  }

  onBody(chunk: Buffer): void {
    if (this.finished || this.discarding) return;
    this.bytesOut += chunk.length;
    if (!this.ds.write(chunk, this.responseLength) && !this.upstreamPaused) {
      this.upstreamPaused = true;
      this.conn?.pause();
    }
  }

  onComplete(): void {
    if (this.finished) return;
    this.conn = null;
    if (this.discarding) {
      this.discarding = false;
      this.scheduleRetry();
      return;
    }
    if (this.responseLength < 0 && !this.isHead && this.status !== 204 && this.status !== 304) this.ds.end();
    this.finish(this.flag);
  }

  onUpstreamError(failure: UpstreamFailure, reusedNoResponse: boolean, detail: string): void {
    this.conn = null;
    if (this.finished) return;
    if (this.discarding) {
      // The retriable response broke off while being thrown away: retry all the same.
      this.discarding = false;
      this.scheduleRetry();
      return;
    }
    if (reusedNoResponse && this.retry === null && !this.resent && !this.headSent && isIdempotent(this.req.method) && this.canReplay()) {
      // The keep-alive race (the upstream closed an idle connection as we reused it) looks
      // exactly like an application that read the request and dropped the connection. An
      // idempotent request may be sent once more on a fresh connection without a retry
      // policy (nginx does the same); any other goes to the retry policy below, and a
      // route with a policy leaves the decision to it (no attempt on top of num_retries).
      this.resent = true;
      this.ctx.stats.keepAliveRaceRetries++;
      this.clusterRuntime!.stats.count(ClusterCounter.KeepAliveRetries);
      this.releaseRequest();
      if (this.retained !== null && this.retained.length > 0) {
        this.pendingBody = this.retained.slice();
        this.pendingBytes = this.retainedBytes;
      }
      this.pool!.acquire(this, true);
      return;
    }
    this.endAttempt();
    if (this.headSent) {
      // Never let a cut-off response look complete: drop the client connection.
      this.ds.close();
      this.finish(failure === 'protocol' ? ResponseFlag.UpstreamProtocolError : ResponseFlag.UpstreamConnectionTermination);
      return;
    }
    // A failure before any response counts against the endpoint as a 5xx and a gateway
    // error (Envoy maps local-origin failures the same way).
    if (this.pool !== null) this.ctx.endpointOutcome(this.clusterRuntime!, this.pool, true, true);
    const kind = failure === 'reset' ? AttemptFailure.Reset : failure === 'protocol' ? 0 : AttemptFailure.ConnectFailure;
    const retry = this.retry;
    if (retry !== null && kind !== 0 && retry.retriesFailure(kind, this.req.method) && this.mayRetry()) {
      this.scheduleRetry();
      return;
    }
    switch (failure) {
      case 'connect':
      case 'connect_timeout':
        return this.localReply(503, ResponseFlag.UpstreamConnectFailure, `upstream connect error: ${detail}`, false);
      case 'reset':
        return this.localReply(
          503,
          ResponseFlag.UpstreamConnectionTermination,
          `upstream reset before response headers: ${detail}`,
          false,
        );
      case 'protocol':
        return this.localReply(502, ResponseFlag.UpstreamProtocolError, `bad upstream response: ${detail}`, false);
    }
  }

  onUpstreamDrain(): void {
    if (this.requestPaused && this.pendingBody === null) this.resumeRequest();
  }

  // ---- internals ----

  /** Internal failure while handling the request: answer 500 if still possible. */
  fail(err: unknown): void {
    this.ctx.log.error({ err, requestId: this.requestId }, 'request handling failed');
    const conn = this.conn;
    this.conn = null;
    conn?.destroy();
    if (this.finished) return;
    if (this.headSent) {
      this.ds.close();
      this.finish(ResponseFlag.LocalReset);
    } else {
      this.localReply(500, ResponseFlag.LocalReset, 'internal error', true);
    }
  }

  private canReplay(): boolean {
    if (this.bodyMode === BodyMode.None) return true;
    return this.retained !== null && this.requestBodyDone;
  }

  private buildHead(host: string, contentLength: number, connection: string | null): string {
    const req = this.req;
    const route = this.route!;
    let path = req.path;
    if (route.prefixRewrite !== null) path = route.prefixRewrite + path.slice(route.pathValue.length);
    let head = `${req.method} ${path}${req.query.length > 0 ? '?' + req.query : ''} HTTP/1.1\r\nhost: ${
      route.hostRewrite ?? host
    }\r\n`;
    const dropped = connection !== null ? connectionTokens(connection) : null;
    const remove = route.requestHeadersToRemove;
    let forwardedFor = '';
    let clientXfcc = '';
    let hasRequestId = false;
    const headers = req.headers;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i];
      switch (name) {
        case 'host':
        case 'content-length':
        case 'x-forwarded-proto':
        case 'x-forwarded-host':
        // Envoy's router control headers: consumed (when trusted), never forwarded.
        case 'x-envoy-retry-on':
        case 'x-envoy-retry-grpc-on':
        case 'x-envoy-max-retries':
        case 'x-envoy-upstream-rq-timeout-ms':
        case 'x-envoy-upstream-rq-per-try-timeout-ms':
        case 'x-envoy-retriable-status-codes':
        case 'x-envoy-retriable-header-names':
        case 'x-envoy-hedge-on-per-try-timeout':
        case 'x-envoy-upstream-rq-timeout-alt-response':
          continue;
        case 'x-forwarded-for':
          forwardedFor = forwardedFor === '' ? headers[i + 1] : `${forwardedFor}, ${headers[i + 1]}`;
          continue;
        case 'x-forwarded-client-cert':
          clientXfcc = clientXfcc === '' ? headers[i + 1] : `${clientXfcc},${headers[i + 1]}`;
          continue;
        case 'x-request-id':
          hasRequestId = true;
          break;
      }
      // x-remora-* request headers are Remora's control headers (retry, timeout, attempt
      // count): consumed or ignored here, never passed upstream.
      if (name.startsWith('x-remora-')) continue;
      if (isHopByHop(name)) continue;
      if (dropped !== null && dropped.includes(name)) continue;
      if (remove !== null && remove.has(name)) continue;
      head += `${name}: ${headers[i + 1]}\r\n`;
    }
    const client = req.remoteAddress;
    head += `x-forwarded-for: ${forwardedFor === '' ? client : `${forwardedFor}, ${client}`}\r\n`;
    head += `x-forwarded-proto: ${this.listener!.scheme}\r\nx-forwarded-host: ${host}\r\n`;
    const xfcc = forwardedClientCert(this.listener!.xfcc, clientXfcc, req.peer);
    if (xfcc !== '' && (remove === null || !remove.has('x-forwarded-client-cert'))) head += `x-forwarded-client-cert: ${xfcc}\r\n`;
    if (!hasRequestId) head += `x-request-id: ${this.requestId}\r\n`;
    if (this.listener!.generateTraceparent && !hasTraceparent(headers) && (remove === null || !remove.has('traceparent'))) {
      // Start a W3C trace (the request carries none).
      this.generatedTraceparent = newTraceparent();
      head += `traceparent: ${this.generatedTraceparent}\r\n`;
    }
    const add = route.requestHeadersToAdd;
    for (let i = 0; i < add.length; i += 2) head += `${add[i]}: ${add[i + 1]}\r\n`;
    if (this.bodyMode === BodyMode.Fixed) head += `content-length: ${contentLength}\r\n`;
    else if (this.bodyMode === BodyMode.Chunked) head += 'transfer-encoding: chunked\r\n';
    return head + '\r\n';
  }

  // ---- retries ----

  /** The attempt is over: give back its max_requests resource (the next attempt takes it
   *  again when it has a connection). */
  private releaseRequest(): void {
    if (this.holdsRequest) {
      this.holdsRequest = false;
      this.clusterRuntime!.resources.requests.release();
    }
  }

  /** The current attempt has its answer (or failed): stop its per-try timer and give
   *  back the retry resource it held. */
  private endAttempt(): void {
    if (this.perTryTimer !== null) {
      clearTimeout(this.perTryTimer);
      this.perTryTimer = null;
    }
    if (this.holdsRetry) {
      this.holdsRetry = false;
      this.clusterRuntime!.resources.retries.release();
    }
  }

  /** Whether another attempt may be made: retries left, the body can be sent again, and
   *  the cluster's retry limit (max_retries or the retry budget, shared by all workers)
   *  has room. Takes the retry resource when it says yes; marks URX when it says no. */
  private mayRetry(): boolean {
    const retry = this.retry!;
    const cluster = this.clusterRuntime!;
    if (this.retries >= retry.numRetries) {
      if (retry.numRetries > 0) {
        this.retryExhausted = true;
        cluster.stats.count(ClusterCounter.RqRetryLimitExceeded);
      }
      return false;
    }
    if (this.bodyMode !== BodyMode.None && (this.retained === null || this.retainedBytes > retry.bufferLimitBytes)) return false;
    const resources = cluster.resources;
    const limit = retryLimit(cluster.config.circuit_breakers, resources.requests.used + resources.pending.used);
    if (!resources.retries.tryAcquire(limit)) {
      this.retryOverflow = true;
      cluster.stats.count(ClusterCounter.RqRetryOverflow);
      return false;
    }
    this.holdsRetry = true;
    return true;
  }

  /** Gives up the current attempt and starts the next one after a jittered backoff. */
  private scheduleRetry(): void {
    this.releaseRequest();
    const pool = this.pool;
    if (pool !== null) {
      pool.active--;
      this.previousPool = pool;
      this.pool = null;
    }
    this.retries++;
    this.clusterRuntime!.stats.count(ClusterCounter.RqRetry);
    if (this.retained !== null && this.retained.length > 0) {
      this.pendingBody = this.retained.slice();
      this.pendingBytes = this.retainedBytes;
    }
    this.backoffTimer = setTimeout(Exchange.onBackoffDone, this.retry!.backoffMs(this.retries), this);
  }

  // Timer handlers are static (the exchange comes as the timer's argument): no closure
  // per request.
  private static onBackoffDone(this: void, ex: Exchange): void {
    ex.onBackoffDoneFired();
  }

  private onBackoffDoneFired(): void {
    try {
      this.backoffTimer = null;
      if (this.finished) return;
      const pool = this.clusterRuntime!.pick(this.previousPool);
      if (pool === null) {
        this.endAttempt();
        this.localReply(503, ResponseFlag.NoHealthyUpstream, 'no healthy upstream', false);
        return;
      }
      this.dispatch(pool);
    } catch (err) {
      this.fail(err);
    }
  }


  private startPerTryTimer(): void {
    const ms = this.retry?.perTryTimeoutMs ?? 0;
    if (ms > 0 && this.perTryTimer === null && !this.finished) this.perTryTimer = setTimeout(Exchange.onPerTryTimeout, ms, this);
  }

  // Timer handlers are static (the exchange comes as the timer's argument): no closure
  // per request.
  private static onPerTryTimeout(this: void, ex: Exchange): void {
    ex.onPerTryTimeoutFired();
  }

  private onPerTryTimeoutFired(): void {
    try {
      this.perTryTimer = null;
      if (this.finished || this.headSent) return;
      const conn = this.conn;
      this.conn = null;
      conn?.destroy();
      this.discarding = false;
      const cluster = this.clusterRuntime!;
      cluster.stats.count(ClusterCounter.RqPerTryTimeout);
      this.endAttempt();
      if (this.pool !== null) this.ctx.endpointOutcome(cluster, this.pool, true, true);
      if (this.retry!.retriesFailure(AttemptFailure.PerTryTimeout, this.req.method) && this.mayRetry()) {
        this.scheduleRetry();
        return;
      }
      this.localReply(504, ResponseFlag.UpstreamRequestTimeout, 'upstream per-try timeout', false);
    } catch (err) {
      this.fail(err);
    }
  }


  private startTimer(): void {
    const ms = this.timeoutMs;
    if (ms > 0 && this.timer === null && !this.finished && !this.headSent) this.timer = setTimeout(Exchange.onTimeout, ms, this);
  }

  // Timer handlers are static (the exchange comes as the timer's argument): no closure
  // per request.
  private static onTimeout(this: void, ex: Exchange): void {
    ex.onTimeoutFired();
  }

  private onTimeoutFired(): void {
    try {
      this.timer = null;
      if (this.finished) return;
      const conn = this.conn;
      this.conn = null;
      conn?.destroy();
      if (this.headSent) {
        this.ds.close();
        this.finish(ResponseFlag.UpstreamRequestTimeout);
      } else {
        this.localReply(504, ResponseFlag.UpstreamRequestTimeout, 'upstream request timeout', false);
      }
    } catch (err) {
      this.ctx.log.error({ err, requestId: this.requestId }, 'timeout handling failed');
    }
  }


  private pauseRequest(): void {
    if (this.requestPaused) return;
    this.requestPaused = true;
    this.ds.pauseRequestBody();
  }

  private resumeRequest(): void {
    this.requestPaused = false;
    this.ds.resumeRequestBody();
  }

  /** A request that must not be forwarded: 400 (or 501) and close the connection. */
  private reject(status: number, reason: string, flag: string = ResponseFlag.DownstreamProtocolError, extraHeaders: readonly string[] | null = null): void {
    // Refused while the headers were still being read: no id was taken or made yet.
    if (this.requestId === '') this.requestId = randomUUID();
    if (flag === ResponseFlag.DownstreamProtocolError) this.listener?.stats.count(ListenerCounter.RqProtocolError);
    this.localReply(status, flag, reason, true, false, extraHeaders);
  }

  private localReply(
    status: number,
    flag: string,
    body: string,
    close: boolean,
    direct = false,
    extraHeaders: readonly string[] | null = null,
  ): void {
    this.status = status;
    this.flag = flag;
    const headers = direct
      ? ['content-type', 'text/plain']
      : ['content-type', 'text/plain; charset=utf-8', 'x-remora-flags', this.flags, 'x-request-id', this.requestId];
    if (extraHeaders !== null) for (let i = 0; i < extraHeaders.length; i++) headers.push(extraHeaders[i]);
    if (!direct && this.route !== null) {
      const add = this.route.responseHeadersToAdd;
      for (let i = 0; i < add.length; i++) headers.push(add[i]);
    }
    this.ds.respond(status, reasonPhrase(status), headers, direct ? body : `${body}\n`, close || this.ctx.draining, this.isHead);
    this.finish(flag);
  }

  private finish(flag: string): void {
    if (this.finished) return;
    this.finished = true;
    this.cancelled = true;
    this.flag = flag;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.backoffTimer !== null) {
      clearTimeout(this.backoffTimer);
      this.backoffTimer = null;
    }
    this.endAttempt();
    this.releaseRequest();
    if (this.pool !== null) this.pool.active--;
    const now = performance.now();
    this.durationUs = Math.round((now - this.startedAt) * 1000);
    if (this.upstreamStartedAt > 0) this.upstreamUs = Math.round((now - this.upstreamStartedAt) * 1000);
    this.ctx.inflight--;
    const cluster = this.clusterRuntime;
    if (cluster !== null) {
      if (flag === ResponseFlag.UpstreamRequestTimeout) cluster.stats.count(ClusterCounter.RqTimeout);
      else if (flag === ResponseFlag.UpstreamConnectionTermination) cluster.stats.count(ClusterCounter.Resets);
      else if (flag === ResponseFlag.UpstreamProtocolError) cluster.stats.count(ClusterCounter.ProtocolErrors);
    }
    if (this.listener !== null) this.ctx.record(this, this.listener);
  }
}

/** The x-forwarded-client-cert value to send upstream ('' = none), Envoy's rules: the
 *  modes that forward or set the header do so only for a client with a verified
 *  certificate; otherwise the client's header is dropped. */
function forwardedClientCert(mode: XfccMode, fromClient: string, peer: PeerIdentity | null): string {
  switch (mode) {
    case 'sanitize':
      return '';
    case 'always_forward_only':
      return fromClient;
    case 'forward_only':
      return peer === null ? '' : fromClient;
    case 'sanitize_set':
      return peer === null ? '' : peer.xfcc;
    case 'append_forward':
      return peer === null ? '' : fromClient === '' ? peer.xfcc : `${fromClient},${peer.xfcc}`;
  }
}
