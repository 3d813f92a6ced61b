// A mirrored copy of a request (Envoy's request_mirror_policies, "shadowing"): the same
// head, with `-shadow` added to the host, and the same body, sent to another cluster; the
// answer is read and thrown away, and nothing that happens to the copy reaches the client
// or the original request. It takes the shadow cluster's circuit-breaker resources like
// any request (a full cluster drops the copy), and ends at the route's timeout. The body
// is held while the copy waits for a connection, up to a limit: past it, or when the
// client's request ends before its last byte, the copy is abandoned (its upstream request
// cut, so a partial body is never taken for a whole one).

import type { LocalReply } from '../src/filters/request-filter.js';
import type { BodyFraming } from '../src/http/request-facts.js';
import type { ClusterRuntime } from '../src/upstream/cluster.js';
import type { UpstreamFailure } from '../src/upstream/connection.js';
import { reportError } from '../src/core/report.js';
import { portStart } from '../src/http/host-port.js';
import { UpstreamAttempt, type AttemptOwner } from './upstream-attempt.js';

/** Body bytes a copy may hold (waiting for a connection, or pushed back) before it is
 *  abandoned: the client is never slowed down for a copy. */
const HELD_LIMIT_BYTES = 1024 * 1024;

/** `host` with `-shadow` added before its port, as Envoy writes a shadow's authority. */
export function shadowHost(host: string): string {
  const port = portStart(host);
  return port < 0 ? `${host}-shadow` : `${host.slice(0, port)}-shadow${host.slice(port)}`;
}

export class ShadowRequest implements AttemptOwner {
  private attempt: UpstreamAttempt | null = null;
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** The connection pushed back: bytes wait in `held` until it drains. */
  private blocked = false;
  private bodyDone: boolean;
  /** The end of the body is written upstream. */
  private bodyEnded = false;
  private over = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly cluster: ClusterRuntime,
    private readonly head: string,
    readonly framing: BodyFraming,
    readonly isHeadRequest: boolean,
    readonly downstreamHttp2: boolean,
    private readonly timeoutMs: number,
  ) {
    this.bodyDone = framing === 'none';
  }

  /** Sends the copy: false when the cluster has no endpoint to take it. */
  start(): boolean {
    const pool = this.cluster.pick();
    if (pool === null) return false;
    const attempt = new UpstreamAttempt(this, this.cluster, pool);
    this.attempt = attempt;
    if (!attempt.dispatch(false)) {
      this.end();
      return false;
    }
    if (this.timeoutMs > 0 && !this.over) this.timer = setTimeout(ShadowRequest.onTimeout, this.timeoutMs, this);
    return true;
  }

  /** A chunk of the client's body (it may be empty on the last call). */
  body(chunk: Buffer, isLast: boolean): void {
    if (this.over) return;
    if (chunk.length > 0) {
      const attempt = this.attempt;
      if (attempt !== null && attempt.connected && !this.blocked) {
        if (!attempt.writeBody(chunk)) this.blocked = true;
      } else {
        this.held.push(chunk);
        this.heldBytes += chunk.length;
        if (this.heldBytes > HELD_LIMIT_BYTES) return this.end();
      }
    }
    if (isLast) {
      this.bodyDone = true;
      this.flush();
    }
  }

  /** The client's request is over: a copy whose body did not all arrive is cut. */
  requestEnded(): void {
    if (!this.bodyDone) this.end();
  }

  // ---- AttemptOwner ----

  requestHead(): string {
    return this.head;
  }

  cork(fn: () => void): void {
    fn();
  }

  onStaleConnection(): void {
    // The attempt asks for a fresh connection by itself.
  }

  onAttemptRefused(_attempt: UpstreamAttempt, _reply: LocalReply): void {
    this.end();
  }

  onAttemptStarted(): void {
    this.flush();
  }

  onAttemptHead(attempt: UpstreamAttempt, status: number): void {
    const us = Math.round((performance.now() - attempt.startedAt) * 1000);
    this.cluster.stats.upstreamResponse(status, us, us);
  }

  onAttemptBody(): void {
    // Read and dropped.
  }

  onAttemptTrailers(): void {
    // Dropped.
  }

  onAttemptComplete(): void {
    this.end();
  }

  onAttemptDiscarded(): void {
    this.end();
  }

  onAttemptError(_attempt: UpstreamAttempt, _failure: UpstreamFailure): void {
    this.end();
  }

  onAttemptDrain(): void {
    this.blocked = false;
    this.flush();
  }

  onAttemptPerTryTimeout(): void {
    this.end();
  }

  onAttemptEnded(): void {
    // Nothing to record beyond the cluster's response counts.
  }

  fail(err: unknown): void {
    reportError(err, 'mirrored request');
    this.end();
  }

  /** Writes what is held while the connection takes it, then ends the body if it is all
   *  there. */
  private flush(): void {
    const attempt = this.attempt;
    if (attempt === null || !attempt.connected || this.over) return;
    while (this.held.length > 0 && !this.blocked) {
      const chunk = this.held.shift()!;
      this.heldBytes -= chunk.length;
      if (!attempt.writeBody(chunk)) this.blocked = true;
    }
    if (this.held.length === 0 && this.bodyDone && !this.bodyEnded && this.framing !== 'none') {
      this.bodyEnded = true;
      attempt.endBody();
    }
  }

  private end(): void {
    if (this.over) return;
    this.over = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.held = [];
    this.attempt?.end();
  }

  private static onTimeout(this: void, shadow: ShadowRequest): void {
    shadow.timer = null;
    shadow.end();
  }
}

/** Starts the copies a request's route asks for (each mirror by its percent); null when
 *  none was sent. `head`: the request's upstream head with the shadow host. */
export function startShadows(
  mirrors: readonly { readonly cluster: ClusterRuntime | null; readonly percent: number }[],
  head: string,
  framing: BodyFraming,
  isHeadRequest: boolean,
  downstreamHttp2: boolean,
  timeoutMs: number,
): ShadowRequest[] | null {
  let out: ShadowRequest[] | null = null;
  for (const m of mirrors) {
    if (m.cluster === null || (m.percent < 100 && Math.random() * 100 >= m.percent)) continue;
    const shadow = new ShadowRequest(m.cluster, head, framing, isHeadRequest, downstreamHttp2, timeoutMs);
    if (shadow.start()) (out ??= []).push(shadow);
  }
  return out;
}
