// One proxied request, from arrival to the last byte back (Envoy's router filter with
// its downstream request): read the head → listener filters → route → route filters →
// pick an endpoint → one UpstreamAttempt per try (upstream-attempt.ts), retries decided
// by RetryState → stream the response back → record its StreamInfo. Protocol-agnostic on
// both sides: it talks to a Downstream (the strict HTTP/1 codec on node:http, or uWS:
// workers/downstream.ts) and to attempts; heads are built by src/http/, the request body
// flows through request-body.ts and is framed by the connection.
//
// The lifecycle is one phase (ExchangePhase); every method that relies on a phase says so
// with a switch or an early return on it.
// Long file: it is the one state machine of a request; every transition is here, and what
// stands alone (heads, filters, retry state, attempts, body flow, recording) is not.

import { randomUUID } from 'node:crypto';
import { ResponseFlag } from '../src/core/flags.js';
import { PENDING_OVERFLOW } from '../src/filters/breaker-admission.js';
import { runFilters, type LocalReply } from '../src/filters/request-filter.js';
import { readRequestFacts, underscoreHeaders, type BodyFraming } from '../src/http/request-facts.js';
import { grpcLocalReplyHeaders, grpcStatusFor, grpcStatusOf, grpcTimeoutMs } from '../src/http/grpc.js';
import { asksHealthCheckFail, isBodylessStatus, localReplyHeaders, writeResponseHead } from '../src/http/response-head.js';
import { reasonPhrase } from '../src/http/status.js';
import { newTraceparent } from '../src/http/trace-context.js';
import { buildUpstreamRequestHead, startsTrace, withAttemptCount, withHost } from '../src/http/upstream-request-head.js';
import { redirectLocation } from '../src/router/redirect.js';
import { pickTarget, type CompiledRoute } from '../src/router/route-table.js';
import { ClusterCounter, ListenerCounter } from '../src/stats/stat-names.js';
import type { ClusterRuntime } from '../src/upstream/cluster.js';
import type { UpstreamFailure } from '../src/upstream/connection.js';
import type { EndpointPool } from '../src/upstream/pool.js';
import { AttemptFailure, headerMs } from '../src/upstream/retry-policy.js';
import { RetryState } from '../src/upstream/retry-state.js';
import type { ListenerRuntime, RoutePolicy, WorkerContext } from './context.js';
import type { Downstream, DownstreamEvents, DownstreamRequest } from './downstream.js';
import { NO_BODY, RequestBody } from './request-body.js';
import { shadowHost, startShadows, type ShadowRequest } from './shadow-request.js';
import { countKeepAliveRetry, recordRequest } from './request-stats.js';
import { StreamInfo } from './stream-info.js';
import type { RequestTrace } from './tracing.js';
import { UpstreamAttempt, type AttemptOwner } from './upstream-attempt.js';
import { clearDeadline, setDeadline, type DeadlineEntry, type DeadlineList } from './deadlines.js';

/** Where a request is. 'headers': being read, checked and routed (synchronous, in
 *  begin); 'waiting_upstream': an attempt is queued for a connection or waits for its
 *  response head (the request body may still be streaming); 'backoff': between a failed
 *  attempt and the retry; 'responding': the response head went to the client and its
 *  body streams; 'done': answered, recorded, every resource given back. */
export type ExchangePhase = 'headers' | 'waiting_upstream' | 'backoff' | 'responding' | 'done';

const EMPTY = new Uint8Array(0);

export class Exchange implements DownstreamEvents, AttemptOwner, DeadlineEntry {
  private phase: ExchangePhase = 'headers';
  /** What logs and stats read; filled as the request goes. */
  readonly info: StreamInfo;
  readonly isHeadRequest: boolean;
  /** The request body's flow towards the attempts (NO_BODY without one). */
  private body: RequestBody = NO_BODY;
  /** Copies of this request on their way to mirror clusters (null: none). */
  private shadows: ShadowRequest[] | null = null;
  private listener: ListenerRuntime | null = null;
  /** Set when a route matched (from 'headers' on). */
  private route: CompiledRoute<ClusterRuntime, RoutePolicy> | null = null;
  /** Set when the request is to be forwarded (from 'waiting_upstream' on). */
  private retry: RetryState | null = null;
  /** The try in flight (queued, sent or receiving); null in 'backoff' and before. */
  private attempt: UpstreamAttempt | null = null;
  /** The endpoints earlier attempts went to (a retry avoids them, Envoy's previous_hosts);
   *  null until the first retry. */
  private triedPools: EndpointPool[] | null = null;
  /** The request head without x-remora-attempt-count (requestHead adds it). */
  private head = '';
  /** The route timeout (route timeout_ms, or a trusted x-envoy-upstream-rq-timeout-ms /
   *  x-remora-upstream-rq-timeout-ms); runs from the end of the request body to the
   *  response head, across retries. */
  private timeoutMs = 0;
  // The route timeout's place in its deadline list (deadlines.ts).
  deadlineAt = 0;
  deadlinePrev: DeadlineEntry | null = null;
  deadlineNext: DeadlineEntry | null = null;
  deadlineList: DeadlineList | null = null;
  private backoffTimer: NodeJS.Timeout | null = null;
  /** Response body length the upstream announced; -1 = unknown (close-delimited or chunked). */
  private responseLength = -1;
  /** The upstream's trailers (HTTP/2), passed on when the response completes. */
  private trailers: string[] | null = null;
  /** A gRPC request (content-type application/grpc…): local replies are gRPC-shaped. */
  private grpc = false;
  /** The request's trace when its listener traces (workers/tracing.ts), else null. */
  private trace: RequestTrace | null = null;
  /** The backoff before the attempt about to start (ms; for its span). */
  private backoffMs = 0;

  constructor(
    private readonly ctx: WorkerContext,
    private readonly ds: Downstream,
    private readonly req: DownstreamRequest,
  ) {
    this.info = new StreamInfo(req);
    this.isHeadRequest = req.method === 'HEAD'; // a refused HEAD gets no body either
  }

  /** Runs the pipeline up to the point where it waits for I/O ('headers' phase). */
  begin(listener: ListenerRuntime, listen: (events: DownstreamEvents, hasBody: boolean) => void): void {
    this.ctx.inflight++;
    this.listener = listener;
    listener.stats.requestStarted();
    const req = this.req;
    const info = this.info;
    const refusal = req.refusal;
    if (refusal !== null) return this.reject(refusal.status, refusal.reason, refusal.location !== undefined ? ['location', refusal.location] : null);
    if (underscoreHeaders(listener.underscoreHeaders, req.headers)) return this.reject(400, 'header name with an underscore', null);
    const facts = readRequestFacts(req.method, req.path, req.query, req.headers, listener.maxRequestHeadersBytes);
    info.requestId = facts.requestId;
    this.grpc = facts.grpc;
    if (facts.refusal !== null) return this.reject(facts.refusal.status, facts.refusal.reason, null);
    if (info.requestId === '') info.requestId = randomUUID();

    let reply = runFilters(listener.filters, req);
    if (reply !== null) return this.reply(reply);
    const route = listener.table.match({ host: facts.host, method: req.method, path: req.path, headers: req.headers, query: req.query });
    if (route === null) return this.localReply(404, ResponseFlag.NoRoute, 'no route matched', false);
    this.route = route;
    info.routeName = route.name;
    const policy = route.policy;
    const tracer = listener.tracer;
    if (tracer !== null) {
      const trace = tracer.start(req.headers, policy.sampling ?? tracer.sampling);
      trace.host = facts.host;
      this.trace = trace;
      info.traceId = trace.traceId;
    }
    reply = runFilters(policy.filters, req);
    if (reply !== null) return this.reply(reply);
    if (route.direct !== null) return this.localReply(route.direct.status, ResponseFlag.DirectResponse, route.direct.body, false, true);
    const redirect = route.redirect;
    if (redirect !== null) {
      const location = redirectLocation(redirect, listener.scheme, facts.host, req.path, req.query, route.pathValue);
      return this.localReply(redirect.status, ResponseFlag.DirectResponse, '', false, true, ['location', location]);
    }
    const bodyLimit = route.maxRequestBodyBytes;
    if (bodyLimit > 0 && facts.contentLength > bodyLimit) {
      return this.localReply(413, ResponseFlag.DownstreamProtocolError, `request body larger than ${bodyLimit} bytes`, true);
    }

    const target = pickTarget(route);
    const cluster = target.cluster;
    if (cluster === null) return this.localReply(route.clusterNotFoundStatus, ResponseFlag.NoClusterFound, 'cluster not found', false);
    info.cluster = cluster;
    this.timeoutMs = route.timeoutMs;
    let retryPolicy = policy.retry;
    if (retryPolicy !== null && retryPolicy.allowRequestHeaders) {
      if (facts.retryOn !== null || facts.maxRetries !== null || facts.perTryTimeout !== null) {
        retryPolicy = retryPolicy.withOverrides(facts.retryOn, facts.maxRetries, facts.perTryTimeout);
      }
      this.timeoutMs = headerMs(facts.rqTimeout) ?? this.timeoutMs;
    }
    if (route.grpcTimeoutMax !== null && facts.grpcTimeout !== null) {
      // The client's gRPC deadline, capped by the route (0: no cap).
      const ms = grpcTimeoutMs(facts.grpcTimeout);
      if (ms !== null) this.timeoutMs = route.grpcTimeoutMax > 0 && (ms === 0 || ms > route.grpcTimeoutMax) ? route.grpcTimeoutMax : ms;
    }
    const hasBody = facts.hasBody;
    this.retry = new RetryState(retryPolicy, hasBody);
    const pool = cluster.pick();
    if (pool === null) return this.localReply(503, ResponseFlag.NoHealthyUpstream, 'no healthy upstream', false);

    // A traced request's context is written per attempt (requestHead); otherwise the
    // listener may start a W3C trace of its own (generate_traceparent).
    const traced = this.trace !== null;
    const traceparent = !traced && startsTrace(listener.generateTraceparent, route.requestHeadersToRemove, req.headers) ? newTraceparent() : null;
    info.generatedTraceparent = traceparent;
    this.head = buildUpstreamRequestHead(req, facts, route, listener, info.requestId, traceparent, traced, target.hostRewrite);
    if (route.mirrors.length > 0) {
      const shadowHead = withHost(this.head, shadowHost(target.hostRewrite ?? route.hostRewrite ?? facts.host));
      this.shadows = startShadows(route.mirrors, shadowHead, facts.framing, this.isHeadRequest, req.http2, this.timeoutMs);
    }
    if (hasBody) this.body = new RequestBody(facts.framing);
    this.phase = 'waiting_upstream';
    listen(this, hasBody);
    if (!hasBody) this.startTimer();
    this.startAttempt(cluster, pool, false);
  }

  /** Starts a try at `pool`'s endpoint (`fresh`: on a new connection). */
  private startAttempt(cluster: ClusterRuntime, pool: EndpointPool, fresh: boolean): void {
    const attempt = new UpstreamAttempt(this, cluster, pool);
    attempt.backoffMs = this.backoffMs;
    this.backoffMs = 0;
    this.attempt = attempt;
    this.info.upstreamHost = pool.key;
    this.phase = 'waiting_upstream';
    if (!attempt.dispatch(fresh)) this.reply(PENDING_OVERFLOW);
  }

  // ---- AttemptOwner ----

  /** How the request body is framed upstream ('none' without one). */
  get framing(): BodyFraming {
    return this.body.framing;
  }

  get downstreamHttp2(): boolean {
    return this.req.http2;
  }

  requestHead(attempt: UpstreamAttempt): string {
    const n = this.info.attempts + 1;
    // Every attempt after the first says which it is (Envoy's x-envoy-attempt-count); the
    // first too when the virtual host sets include_request_attempt_count.
    const head = n > 1 || this.route!.includeAttemptCount ? withAttemptCount(this.head, n) : this.head;
    const trace = this.trace;
    // Each attempt is a span of its own: its id is the parent the upstream sees.
    return trace === null ? head : `${head.slice(0, -2)}${trace.attemptHeaders(attempt)}\r\n`;
  }

  onAttemptEnded(attempt: UpstreamAttempt): void {
    try {
      const now = performance.now();
      const info = this.info;
      info.noteAttempt(Math.round((now - attempt.createdAt) * 1000));
      const trace = this.trace;
      if (trace !== null && trace.sampled) {
        trace.tracer.endClient(trace, attempt, this.req.method, attempt.cluster.name, attempt.pool.key, info.attemptsEnded, now);
      }
    } catch (err) {
      this.ctx.log.error({ err, requestId: this.info.requestId }, 'recording an upstream attempt failed');
    }
  }

  onStaleConnection(attempt: UpstreamAttempt): void {
    countKeepAliveRetry(attempt.cluster);
  }

  onAttemptRefused(_attempt: UpstreamAttempt, reply: LocalReply): void {
    if (this.phase === 'waiting_upstream') this.reply(reply);
  }

  onAttemptStarted(attempt: UpstreamAttempt): void {
    const info = this.info;
    info.attempts++;
    info.upstreamStartedAt = attempt.startedAt;
    // The per-try timeout starts once the attempt has its connection and the whole
    // request (Envoy's order), so an attempt never times out while queued in a pool.
    if (this.body.done) attempt.startPerTryTimer(this.retry!.perTryTimeoutMs);
    this.body.startOn(attempt, this.ds);
  }

  onAttemptHead(attempt: UpstreamAttempt, status: number, reason: string, headers: string[], bodyLength: number): void {
    if (this.phase !== 'waiting_upstream') return;
    const retry = this.retry!;
    const cluster = attempt.cluster;
    const info = this.info;
    retry.releaseRetry(cluster);
    info.upstreamStatus = status;
    if (this.grpc) info.grpcStatus = grpcStatusOf(headers);
    this.ctx.endpointOutcome(cluster, attempt.pool, status >= 500, status >= 502 && status <= 504);
    if ((retry.retriesStatus(status) || retry.retriesGrpc(headers)) && retry.mayRetry(this.body.exists, cluster)) {
      cluster.stats.retriedResponse(status, Math.round((performance.now() - attempt.startedAt) * 1000));
      // Read the rest of this response and throw it away; the retry starts when it ends.
      attempt.discard();
      return;
    }
    if (retry.retries > 0) cluster.stats.count(ClusterCounter.RqRetrySuccess);
    this.phase = 'responding';
    // The route timeout ends with the response headers; the body may take its time.
    this.clearTimer();
    info.status = status;
    this.responseLength = bodyLength;
    const ds = this.ds;
    ds.writeStatus(status, reason);
    if (cluster.config.health_check !== undefined && asksHealthCheckFail(headers)) this.ctx.immediateHealthCheckFail(attempt.pool);
    const serviceMs = Math.round(performance.now() - attempt.startedAt);
    const contentLength = writeResponseHead(ds, headers, this.route!.policy.responseHead, ds.writesDate, this.ctx.draining, serviceMs);
    if (this.isHeadRequest) {
      ds.endWithoutBody(contentLength);
    } else if (bodyLength === 0) {
      if (isBodylessStatus(status)) ds.endWithoutBody(-1);
      else ds.write(EMPTY, 0);
    }
  }

  onAttemptBody(chunk: Buffer): void {
    if (this.phase !== 'responding') return;
    this.info.bytesOut += chunk.length;
    if (!this.ds.write(chunk, this.responseLength)) this.attempt?.pauseResponse();
  }

  onAttemptTrailers(trailers: string[]): void {
    if (this.phase !== 'responding') return;
    this.trailers = trailers;
    if (this.grpc) this.info.grpcStatus = grpcStatusOf(trailers);
  }

  onAttemptComplete(_attempt: UpstreamAttempt): void {
    if (this.phase !== 'responding') return;
    if (this.responseLength < 0 && !this.isHeadRequest && !isBodylessStatus(this.info.status)) {
      if (this.trailers !== null) this.ds.writeTrailers(this.trailers);
      this.ds.end();
    }
    this.finish(this.info.flag);
  }

  onAttemptDiscarded(attempt: UpstreamAttempt): void {
    if (this.phase === 'waiting_upstream') this.scheduleRetry(attempt);
  }

  onAttemptError(attempt: UpstreamAttempt, failure: UpstreamFailure, reusedNoResponse: boolean, detail: string): void {
    const retry = this.retry!;
    const cluster = attempt.cluster;
    switch (this.phase) {
      case 'waiting_upstream':
        break;
      case 'responding':
        // Never let a cut-off response look complete: drop the client connection (HTTP/2:
        // reset the stream).
        this.ds.close();
        this.finish(failure === 'protocol' ? ResponseFlag.UpstreamProtocolError : ResponseFlag.UpstreamConnectionTermination);
        return;
      case 'headers':
      case 'backoff':
      case 'done':
        return;
    }
    const hasBody = this.body.exists;
    if (reusedNoResponse && retry.mayResendAfterKeepAliveRace(this.req.method, hasBody, this.body.done)) {
      // The keep-alive race (the upstream closed an idle connection as we reused it) looks
      // exactly like an application that read the request and dropped the connection; see
      // RetryState for when the request goes out once more, on a fresh connection.
      countKeepAliveRetry(cluster);
      attempt.end();
      this.takeReplay(retry);
      this.startAttempt(cluster, attempt.pool, true);
      return;
    }
    if (failure === 'refused' && retry.mayResendRefused(hasBody, this.body.done)) {
      // An HTTP/2 upstream refused the stream (or GOAWAY left it unprocessed): it goes out
      // once more on a new connection, whatever the method.
      attempt.end();
      this.takeReplay(retry);
      this.startAttempt(cluster, attempt.pool, true);
      return;
    }
    retry.releaseRetry(cluster);
    // A failure before any response counts against the endpoint as a 5xx and a gateway
    // error (Envoy maps local-origin failures the same way).
    this.ctx.endpointOutcome(cluster, attempt.pool, true, true);
    const kind = failureKind(failure);
    if (kind !== 0 && retry.retriesFailure(kind, this.req.method) && retry.mayRetry(hasBody, cluster)) {
      this.scheduleRetry(attempt);
      return;
    }
    switch (failure) {
      case 'connect':
      case 'connect_timeout':
        return this.localReply(503, ResponseFlag.UpstreamConnectFailure, `upstream connect error: ${detail}`, false);
      case 'reset':
        return this.localReply(503, ResponseFlag.UpstreamConnectionTermination, `upstream reset before response headers: ${detail}`, false);
      case 'refused':
        return this.localReply(503, ResponseFlag.UpstreamRemoteReset, `upstream refused the stream: ${detail}`, false);
      case 'protocol':
        return this.localReply(502, ResponseFlag.UpstreamProtocolError, `bad upstream response: ${detail}`, false);
    }
  }

  onAttemptDrain(): void {
    this.body.onUpstreamDrain(this.ds);
  }

  onAttemptPerTryTimeout(attempt: UpstreamAttempt): void {
    if (this.phase !== 'waiting_upstream') return;
    const retry = this.retry!;
    const cluster = attempt.cluster;
    attempt.end(); // its connection is dropped
    cluster.stats.count(ClusterCounter.RqPerTryTimeout);
    retry.releaseRetry(cluster);
    this.ctx.endpointOutcome(cluster, attempt.pool, true, true);
    if (retry.retriesFailure(AttemptFailure.PerTryTimeout, this.req.method) && retry.mayRetry(this.body.exists, cluster)) {
      this.scheduleRetry(attempt);
      return;
    }
    this.localReply(504, ResponseFlag.UpstreamRequestTimeout, 'upstream per-try timeout', false);
  }

  cork(fn: () => void): void {
    if (this.ds.aborted) fn();
    else this.ds.cork(fn);
  }

  // ---- DownstreamEvents ----

  onRequestBody(chunk: Buffer, isLast: boolean): void {
    if (this.phase === 'done') return;
    const info = this.info;
    info.bytesIn += chunk.length;
    const bodyLimit = this.route!.maxRequestBodyBytes;
    if (bodyLimit > 0 && info.bytesIn > bodyLimit) return this.cutRequest(413, `request body larger than ${bodyLimit} bytes`);
    const attempt = this.attempt;
    const body = this.body;
    if (chunk.length > 0) {
      this.retry!.retain(chunk);
      body.push(chunk, attempt, this.ds);
    }
    const shadows = this.shadows;
    if (shadows !== null) for (let i = 0; i < shadows.length; i++) shadows[i].body(chunk, isLast);
    if (isLast) {
      body.done = true;
      if (attempt !== null && attempt.connected) attempt.endBody();
      this.startTimer();
      if (attempt !== null) attempt.startPerTryTimer(this.retry!.perTryTimeoutMs);
    }
  }

  /** The codec found the request body malformed mid-way (chunk framing): the upstream
   *  request is cut, so the upstream never takes a partial body for a whole one. */
  onRequestBodyError(reason: string): void {
    if (this.phase === 'done') return;
    this.listener?.stats.count(ListenerCounter.RqProtocolError);
    this.cutRequest(400, reason);
  }

  onAbort(): void {
    // An upstream request nobody waits for is cancelled, not finished (finish ends the
    // attempt, dropping its connection).
    if (this.phase !== 'done') this.finish(ResponseFlag.DownstreamConnectionTermination);
  }

  onDrain(): void {
    this.attempt?.resumeResponse();
  }

  // ---- failures and timers ----

  /** Internal failure while handling the request: answer 500 if still possible. */
  fail(err: unknown): void {
    this.ctx.log.error({ err, requestId: this.info.requestId }, 'request handling failed');
    switch (this.phase) {
      case 'done':
        return;
      case 'responding':
        this.ds.close();
        this.finish(ResponseFlag.LocalReset);
        return;
      default:
        this.localReply(500, ResponseFlag.LocalReset, 'internal error', true);
    }
  }

  /** Cuts the upstream request (its connection is closed), answers `status` (or closes,
   *  if the response already started) and drops the client connection: a body over the
   *  route's limit (413) or with broken framing (400). */
  private cutRequest(status: number, reason: string): void {
    if (this.phase === 'responding') {
      this.ds.close();
      this.finish(ResponseFlag.DownstreamProtocolError);
      return;
    }
    this.localReply(status, ResponseFlag.DownstreamProtocolError, reason, true);
  }

  /** Gives up the attempt and starts the next one after a jittered backoff. */
  private scheduleRetry(attempt: UpstreamAttempt): void {
    const retry = this.retry!;
    attempt.end();
    this.attempt = null;
    (this.triedPools ??= []).push(attempt.pool);
    const delay = retry.beginRetry();
    this.backoffMs = delay;
    attempt.cluster.stats.count(ClusterCounter.RqRetry);
    this.takeReplay(retry);
    this.phase = 'backoff';
    this.backoffTimer = setTimeout(Exchange.onBackoffDone, delay, this);
  }

  /** The body kept for a resend becomes what the next attempt writes first. */
  private takeReplay(retry: RetryState): void {
    const replay = retry.replayBody();
    if (replay !== null) this.body.replace(replay, retry.replayedBytes);
  }

  // Timer handlers are static (the exchange comes as the timer's argument): no closure
  // per request.
  private static onBackoffDone(this: void, ex: Exchange): void {
    ex.backoffTimer = null;
    if (ex.phase !== 'backoff') return;
    try {
      const cluster = ex.info.cluster!;
      const pool = cluster.pick(ex.triedPools);
      if (pool === null) {
        ex.localReply(503, ResponseFlag.NoHealthyUpstream, 'no healthy upstream', false);
        return;
      }
      ex.startAttempt(cluster, pool, false);
    } catch (err) {
      ex.fail(err);
    }
  }

  /** The route timeout passed (its deadline list calls this; deadlines.ts). */
  onDeadline(): void {
    try {
      switch (this.phase) {
        case 'waiting_upstream':
        case 'backoff':
          this.localReply(504, ResponseFlag.UpstreamRequestTimeout, 'upstream request timeout', false);
          return;
        case 'responding':
          this.ds.close();
          this.finish(ResponseFlag.UpstreamRequestTimeout);
          return;
        case 'headers':
        case 'done':
          return;
      }
    } catch (err) {
      this.ctx.log.error({ err, requestId: this.info.requestId }, 'timeout handling failed');
    }
  }

  /** Starts the route timeout (once: after the request body, before the response head). */
  private startTimer(): void {
    const ms = this.timeoutMs;
    if (ms <= 0 || this.deadlineList !== null) return;
    if (this.phase === 'waiting_upstream' || this.phase === 'backoff') setDeadline(this, ms);
  }

  private clearTimer(): void {
    if (this.deadlineList !== null) clearDeadline(this);
  }

  // ---- answering ----

  /** A head that must not be forwarded: 400 (or 431, 501...), flag DPE, connection closed. */
  private reject(status: number, reason: string, extraHeaders: readonly string[] | null): void {
    // Refused while the headers were still being read: no id was taken or made yet.
    if (this.info.requestId === '') this.info.requestId = randomUUID();
    this.listener?.stats.count(ListenerCounter.RqProtocolError);
    this.localReply(status, ResponseFlag.DownstreamProtocolError, reason, true, false, extraHeaders);
  }

  /** A filter's (or admission's) reply. */
  private reply(r: LocalReply): void {
    this.localReply(r.status, r.flag, r.body, false, false, r.headers);
  }

  private localReply(status: number, flag: string, body: string, close: boolean, direct = false, extraHeaders: readonly string[] | null = null): void {
    const info = this.info;
    info.status = status;
    info.flag = flag;
    this.copyRetryOutcome();
    const route = this.route;
    const routeAdd = route === null ? null : route.responseHeadersToAdd;
    if (this.grpc && !direct) {
      // A gRPC client reads the outcome from grpc-status, not the HTTP status (Envoy
      // answers gRPC requests the same way): 200 with a trailers-only response.
      const headers = grpcLocalReplyHeaders(status, flag, body, info.flags, info.requestId, extraHeaders, routeAdd);
      info.grpcStatus = grpcStatusFor(status, flag);
      this.ds.respond(200, 'OK', headers, '', close || this.ctx.draining, this.isHeadRequest);
      this.finish(flag);
      return;
    }
    const headers = localReplyHeaders(direct, info.flags, info.requestId, extraHeaders, routeAdd);
    this.ds.respond(status, reasonPhrase(status), headers, direct ? body : `${body}\n`, close || this.ctx.draining, this.isHeadRequest);
    this.finish(flag);
  }

  private copyRetryOutcome(): void {
    const retry = this.retry;
    if (retry === null) return;
    this.info.retryExhausted = retry.exhausted;
    this.info.retryOverflow = retry.overflow;
  }

  /** Ends the request: timers stopped, the attempt ended, resources given back, recorded. */
  private finish(flag: string): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    const info = this.info;
    info.flag = flag;
    this.clearTimer();
    if (this.backoffTimer !== null) {
      clearTimeout(this.backoffTimer);
      this.backoffTimer = null;
    }
    this.attempt?.end();
    const shadows = this.shadows;
    if (shadows !== null) for (let i = 0; i < shadows.length; i++) shadows[i].requestEnded();
    const cluster = info.cluster;
    if (this.retry !== null && cluster !== null) this.retry.releaseRetry(cluster);
    this.copyRetryOutcome();
    info.end(performance.now());
    this.ctx.inflight--;
    const listener = this.listener;
    if (listener === null) return;
    recordRequest(info, listener);
    const tracer = listener.tracer;
    if (tracer === null) return;
    // A request answered before it was routed (refused, 404, a listener filter) is
    // traced with the listener's sampling.
    let trace = this.trace;
    if (trace === null) {
      trace = tracer.start(this.req.headers, tracer.sampling);
      info.traceId = trace.traceId;
    }
    if (trace.sampled) tracer.endServer(trace, info, listener.scheme);
  }
}

/** A failure before the response head, as the retry policy names it (0: never retried). */
function failureKind(failure: UpstreamFailure): AttemptFailure | 0 {
  switch (failure) {
    case 'connect':
    case 'connect_timeout':
      return AttemptFailure.ConnectFailure;
    case 'reset':
      return AttemptFailure.Reset;
    case 'refused':
      return AttemptFailure.RefusedStream;
    case 'protocol':
      return 0;
  }
}
