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
import { hasTraceparent, newTraceparent } from '../src/http/trace-context.js';
import { pickTarget, type CompiledRoute } from '../src/router/route-table.js';
import type { CompiledRateLimit } from '../src/filters/rate-limit.js';
import type { XfccMode } from '../src/config/types.js';
import type { PeerIdentity } from '../src/tls/peer-identity.js';
import type { ClusterRuntime } from '../src/upstream/cluster.js';
import { AttemptFailure, retryLimit, type CompiledRetryPolicy } from '../src/upstream/retry-policy.js';
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

/** Request bodies up to this size are kept so that a request that hit a keep-alive
 *  connection the upstream had just closed can be sent again. */
const REPLAY_LIMIT_BYTES = 64 * 1024;
/** Body bytes held while waiting for an upstream connection before pausing the client. */
const PENDING_LIMIT_BYTES = 1024 * 1024;
const EMPTY = new Uint8Array(0);
/** Response header an upstream sets to be marked unhealthy at once (active health
 *  checking must be on for its cluster); never forwarded to the client. */
const IMMEDIATE_HC_FAIL = 'x-remora-immediate-health-check-fail';
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
  /** The request failed and a retry was wanted but not allowed (flag URX). */
  retryExhausted = false;
  private clusterRuntime: ClusterRuntime | null = null;
  private listener: ListenerRuntime | null = null;
  /** Status of the upstream's response head, 0 when none arrived. */
  upstreamStatus = 0;
  /** The traceparent Remora generated and sent upstream (listener generate_traceparent),
   *  or null (off, the request carried one, or nothing was forwarded). */
  generatedTraceparent: string | null = null;
  private conn: UpstreamConnection | null = null;
  private upstreamHead = '';
  /** The head of the first attempt; retries add x-remora-attempt-count to it. */
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
  private retriedFresh = false;
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
    const headers = req.headers;
    let host = '';
    let contentLength = -1;
    let transferEncoding: string | null = null;
    let connection: string | null = null;
    let retryOn: string | null = null;
    let maxRetries: string | null = null;
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
          retryOn = value;
          break;
        case 'x-remora-max-retries':
          maxRetries = value;
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
    if (!cluster.resources.requests.tryAcquire(cluster.config.circuit_breakers.max_requests)) {
      cluster.stats.count(ClusterCounter.RqOverflow);
      return this.localReply(503, ResponseFlag.UpstreamOverflow, 'upstream overflow: max_requests reached', false, false, OVERLOADED_HEADERS);
    }
    this.holdsRequest = true;
    const retry = policy.retry;
    if (retry !== null) {
      this.retry = retry.allowRequestHeaders && (retryOn !== null || maxRetries !== null) ? retry.withOverrides(retryOn, maxRetries) : retry;
    }
    const pool = cluster.pick();
    if (pool === null) return this.localReply(503, ResponseFlag.NoHealthyUpstream, 'no healthy upstream', false);

    this.upstreamHead = this.firstHead = this.buildHead(host, contentLength, connection);
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

  /** Response flags for logs: the flag, plus URX when retries ran out. */
  get flags(): string {
    if (!this.retryExhausted) return this.flag;
    return this.flag === ResponseFlag.None ? ResponseFlag.UpstreamRetryLimitExceeded : `${this.flag},${ResponseFlag.UpstreamRetryLimitExceeded}`;
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
    this.conn = conn;
    // The per-try timeout starts once the attempt has its connection and the whole
    // request (Envoy's order), so an attempt never times out while queued in a pool.
    if (this.requestBodyDone) this.startPerTryTimer();
    this.upstreamStartedAt = performance.now();
    conn.start(this, this.upstreamHead, this.isHead, this.bodyMode);
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
    const conn = this.conn;
    this.conn = null;
    conn?.destroy();
    if (this.headSent) {
      this.ds.close();
      this.finish(ResponseFlag.DownstreamProtocolError);
      return;
    }
    this.endAttempt();
    this.localReply(413, ResponseFlag.DownstreamProtocolError, `request body larger than ${limit} bytes`, true);
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
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i];
      if (name === 'content-length') {
        headContentLength = parseContentLength(headers[i + 1]);
        continue; // the front end writes its own framing
      }
      if (name === 'date' || isHopByHop(name)) continue; // uWS writes Date itself
      if (dropped !== null && dropped.includes(name)) continue;
      if (remove !== null && remove.has(name)) continue;
      if (name === IMMEDIATE_HC_FAIL) {
        if (cluster.config.health_check !== undefined) this.ctx.immediateHealthCheckFail(pool);
        continue;
      }
      ds.writeHeader(name, headers[i + 1]);
    }
    const add = route.responseHeadersToAdd;
    for (let i = 0; i < add.length; i += 2) ds.writeHeader(add[i], add[i + 1]);
    // Draining: tell the client not to reuse this connection.
    if (this.ctx.draining) ds.writeHeader('connection', 'close');
    ds.writeHeader('x-remora-upstream-service-time', String(Math.round(performance.now() - this.upstreamStartedAt)));
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

  onUpstreamError(failure: UpstreamFailure, retriable: boolean, detail: string): void {
    this.conn = null;
    if (this.finished) return;
    if (this.discarding) {
      // The retriable response broke off while being thrown away: retry all the same.
      this.discarding = false;
      this.scheduleRetry();
      return;
    }
    if (retriable && !this.retriedFresh && !this.headSent && this.canReplay()) {
      // The keep-alive race: the upstream closed an idle connection as we reused it.
      this.retriedFresh = true;
      this.ctx.stats.keepAliveRaceRetries++;
      this.clusterRuntime?.stats.count(ClusterCounter.KeepAliveRetries);
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
        case 'x-remora-attempt-count':
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
    const limit = retryLimit(cluster.config.circuit_breakers, cluster.resources.requests.used);
    if (!cluster.resources.retries.tryAcquire(limit)) {
      this.retryExhausted = true;
      cluster.stats.count(ClusterCounter.RqRetryOverflow);
      return false;
    }
    this.holdsRetry = true;
    return true;
  }

  /** Gives up the current attempt and starts the next one after a jittered backoff. */
  private scheduleRetry(): void {
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
      // Tell the upstream which attempt this is (Envoy's x-envoy-attempt-count).
      this.upstreamHead = `${this.firstHead.slice(0, -2)}x-remora-attempt-count: ${this.retries + 1}\r\n\r\n`;
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
    const ms = this.route?.timeoutMs ?? 0;
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
  private reject(status: number, reason: string, flag: string = ResponseFlag.DownstreamProtocolError): void {
    // Refused while the headers were still being read: no id was taken or made yet.
    if (this.requestId === '') this.requestId = randomUUID();
    this.localReply(status, flag, reason, true);
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
    if (this.holdsRequest) {
      this.holdsRequest = false;
      this.clusterRuntime!.resources.requests.release();
    }
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
