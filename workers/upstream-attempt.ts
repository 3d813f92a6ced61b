// One try of a request at one endpoint (Envoy's UpstreamRequest): it waits in the
// endpoint's pool for a connection, takes the cluster's max_requests resource, writes
// the request head through the connection, runs the per-try timer, and passes the
// response (or the failure) to its owner, the exchange. A retry is a new attempt; an
// attempt that is over ignores whatever its connection still reports.

import type { LocalReply } from '../src/filters/request-filter.js';
import { admitOutstandingRequest, releaseOutstandingRequest } from '../src/filters/breaker-admission.js';
import type { BodyFraming } from '../src/http/request-facts.js';
import type { ClusterRuntime } from '../src/upstream/cluster.js';
import type { UpstreamChannel, UpstreamFailure, UpstreamSink } from '../src/upstream/connection.js';
import type { EndpointPool, PoolClient } from '../src/upstream/pool.js';

/** Where an attempt is: waiting for a connection; request written, waiting for the
 *  response head; passing the response on; reading a retriable response to throw it
 *  away; over. */
type AttemptPhase = 'queued' | 'sent' | 'receiving' | 'discarding' | 'done';

/** The request an attempt carries and where it reports (the exchange). */
export interface AttemptOwner {
  /** The head for the try about to be written (attempt count and trace context
   *  included as needed). */
  requestHead(attempt: UpstreamAttempt): string;
  /** The client's request came over HTTP/2. */
  readonly downstreamHttp2: boolean;
  readonly isHeadRequest: boolean;
  readonly framing: BodyFraming;
  /** Downstream writes batched while the connection's read is handled. */
  cork(fn: () => void): void;
  /** The connection it was given was already closed: it asks for a fresh one. */
  onStaleConnection(attempt: UpstreamAttempt): void;
  /** The cluster refused it a max_requests resource. */
  onAttemptRefused(attempt: UpstreamAttempt, reply: LocalReply): void;
  /** The head is written: the owner sends the body it holds. */
  onAttemptStarted(attempt: UpstreamAttempt): void;
  onAttemptHead(attempt: UpstreamAttempt, status: number, reason: string, headers: string[], bodyLength: number): void;
  onAttemptBody(chunk: Buffer): void;
  onAttemptTrailers(trailers: string[]): void;
  onAttemptComplete(attempt: UpstreamAttempt): void;
  /** A response being thrown away ended (or broke off): the retry may start. */
  onAttemptDiscarded(attempt: UpstreamAttempt): void;
  onAttemptError(attempt: UpstreamAttempt, failure: UpstreamFailure, reusedNoResponse: boolean, detail: string): void;
  onAttemptDrain(): void;
  onAttemptPerTryTimeout(attempt: UpstreamAttempt): void;
  /** The attempt is over, whatever ended it (end() was called): timings and spans. */
  onAttemptEnded(attempt: UpstreamAttempt): void;
  /** A timer callback threw. */
  fail(err: unknown): void;
}

export class UpstreamAttempt implements UpstreamSink, PoolClient {
  private phase: AttemptPhase = 'queued';
  private conn: UpstreamChannel | null = null;
  private perTryTimer: NodeJS.Timeout | null = null;
  /** Holding one of the cluster's max_requests resources (from connection to end). */
  private holdsRequest = false;
  /** The response side is paused because the client is not reading. */
  private responsePaused = false;
  /** performance.now() when the head was written; 0 before. */
  startedAt = 0;
  /** performance.now() when it was dispatched (asked its pool for a connection). */
  createdAt = 0;
  /** The upstream's response status; 0 until a head arrives. */
  status = 0;
  /** What broke it before a usable response ('' when nothing did): an UpstreamFailure
   *  or `per_try_timeout`. */
  failure = '';
  /** Tracing: this attempt's span id ('' when not traced). */
  spanId = '';
  /** The backoff (ms) waited before this attempt; 0 for the first. */
  backoffMs = 0;

  constructor(
    private readonly owner: AttemptOwner,
    readonly cluster: ClusterRuntime,
    readonly pool: EndpointPool,
  ) {}

  /** Asks the pool for a connection (`fresh`: a new one, never an idle one). False when
   *  it would have to wait and the cluster's max_pending_requests is reached. */
  dispatch(fresh: boolean): boolean {
    this.createdAt = performance.now();
    this.pool.active++;
    return this.pool.acquire(this, fresh);
  }

  /** PoolClient: a `protocol: downstream` pool speaks the client's HTTP version. */
  get downstreamHttp2(): boolean {
    return this.owner.downstreamHttp2;
  }

  /** PoolClient: the pool skips an attempt that is over. */
  get cancelled(): boolean {
    return this.phase === 'done';
  }

  /** The request head is written on a connection (body bytes may be). */
  get connected(): boolean {
    return this.conn !== null;
  }

  /** Writes request body bytes; false: wait for the owner's onAttemptDrain. */
  writeBody(chunk: Buffer): boolean {
    return this.conn === null ? true : this.conn.writeBody(chunk);
  }

  endBody(): void {
    this.conn?.endBody();
  }

  /** The client cannot take more: stop reading the response. */
  pauseResponse(): void {
    if (this.responsePaused) return;
    this.responsePaused = true;
    this.conn?.pause();
  }

  resumeResponse(): void {
    if (!this.responsePaused) return;
    this.responsePaused = false;
    this.conn?.resume();
  }

  /** The response head was retriable: read the rest and throw it away. */
  discard(): void {
    if (this.phase === 'receiving') this.phase = 'discarding';
  }

  /** Starts the per-try timeout, once the request is written and has a connection. */
  startPerTryTimer(ms: number): void {
    if (ms > 0 && this.perTryTimer === null && this.phase === 'sent') this.perTryTimer = setTimeout(UpstreamAttempt.onPerTryTimeout, ms, this);
  }

  /** Ends the attempt: stops its timer, drops its connection if it still has one (an
   *  upstream request nobody waits for is cancelled), gives back max_requests and its
   *  place in the endpoint's active count. Idempotent. */
  end(): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    if (this.perTryTimer !== null) {
      clearTimeout(this.perTryTimer);
      this.perTryTimer = null;
    }
    const conn = this.conn;
    this.conn = null;
    conn?.destroy();
    if (this.holdsRequest) {
      this.holdsRequest = false;
      releaseOutstandingRequest(this.cluster);
    }
    this.pool.active--;
    this.owner.onAttemptEnded(this);
  }

  // ---- PoolClient ----

  onConnection(conn: UpstreamChannel): void {
    if (this.phase !== 'queued') {
      this.pool.giveBack(conn);
      return;
    }
    if (!this.holdsRequest) {
      const refused = admitOutstandingRequest(this.cluster);
      if (refused !== null) {
        this.pool.giveBack(conn); // the connection goes to the next waiting request
        this.owner.onAttemptRefused(this, refused);
        return;
      }
      this.holdsRequest = true;
    }
    const owner = this.owner;
    if (!conn.start(this, owner.requestHead(this), owner.isHeadRequest, owner.framing)) {
      // The connection was seen closed before anything was written: the request provably
      // never reached the upstream, so it goes out on a fresh connection, any method.
      owner.onStaleConnection(this);
      this.pool.acquire(this, true);
      return;
    }
    this.conn = conn;
    this.phase = 'sent';
    this.startedAt = performance.now();
    owner.onAttemptStarted(this);
  }

  onPoolClosed(): void {
    if (this.phase === 'done') return;
    this.failure = 'connect';
    this.owner.onAttemptError(this, 'connect', false, 'the endpoint left the config');
  }

  // ---- UpstreamSink ----

  cork(fn: () => void): void {
    this.owner.cork(fn);
  }

  onHead(status: number, reason: string, headers: string[], bodyLength: number): void {
    if (this.phase !== 'sent') return;
    this.phase = 'receiving';
    this.status = status;
    if (this.perTryTimer !== null) {
      clearTimeout(this.perTryTimer);
      this.perTryTimer = null;
    }
    this.owner.onAttemptHead(this, status, reason, headers, bodyLength);
  }

  onBody(chunk: Buffer): void {
    if (this.phase === 'receiving') this.owner.onAttemptBody(chunk);
  }

  onTrailers(trailers: string[]): void {
    if (this.phase === 'receiving') this.owner.onAttemptTrailers(trailers);
  }

  onComplete(): void {
    const phase = this.phase;
    if (phase !== 'receiving' && phase !== 'discarding') return;
    this.conn = null; // the connection goes back to its pool by itself
    if (phase === 'discarding') this.owner.onAttemptDiscarded(this);
    else this.owner.onAttemptComplete(this);
  }

  onUpstreamError(failure: UpstreamFailure, reusedNoResponse: boolean, detail: string): void {
    this.conn = null;
    if (this.phase !== 'done' && this.phase !== 'discarding') this.failure = failure;
    switch (this.phase) {
      case 'done':
        return;
      case 'discarding':
        // The retriable response broke off while being thrown away: retry all the same.
        this.owner.onAttemptDiscarded(this);
        return;
      default:
        this.owner.onAttemptError(this, failure, reusedNoResponse, detail);
    }
  }

  onUpstreamDrain(): void {
    if (this.phase !== 'done') this.owner.onAttemptDrain();
  }

  // The timer handler is static (the attempt comes as the timer's argument): no closure
  // per try.
  private static onPerTryTimeout(this: void, attempt: UpstreamAttempt): void {
    attempt.perTryTimer = null;
    if (attempt.phase !== 'sent') return;
    attempt.failure = 'per_try_timeout';
    try {
      attempt.owner.onAttemptPerTryTimeout(attempt);
    } catch (err) {
      attempt.owner.fail(err);
    }
  }
}
