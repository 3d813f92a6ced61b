// The client's request body on its way upstream (flow control only; framing is the
// connection's): each chunk goes to the attempt that has a connection, or is held until
// one has; the client is paused when the upstream pushes back or too much is held, and
// resumed when the upstream drains. A request without a body shares NO_BODY, which
// nothing changes.

import type { BodyFraming } from '../src/http/request-facts.js';
import type { Downstream } from './downstream.js';
import type { UpstreamAttempt } from './upstream-attempt.js';

/** Body bytes held while waiting for an upstream connection before pausing the client. */
const PENDING_LIMIT_BYTES = 1024 * 1024;

export class RequestBody {
  /** The whole body has arrived (from the start for a request without one). */
  done: boolean;
  /** Chunks received while no attempt had a connection (or kept for a resend), written
   *  first when one has. */
  private pending: Buffer[] | null = null;
  private pendingBytes = 0;
  /** The client is paused (upstream backpressure, or too much held). */
  private paused = false;

  constructor(readonly framing: BodyFraming) {
    this.done = framing === 'none';
  }

  get exists(): boolean {
    return this.framing !== 'none';
  }

  /** A chunk from the client (not empty). */
  push(chunk: Buffer, attempt: UpstreamAttempt | null, ds: Downstream): void {
    if (attempt !== null && attempt.connected) {
      if (!attempt.writeBody(chunk)) this.pause(ds);
      return;
    }
    (this.pending ??= []).push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes > PENDING_LIMIT_BYTES) this.pause(ds);
  }

  /** `attempt` has just got its connection: what is held goes out, then the end of the
   *  body if it has arrived. */
  startOn(attempt: UpstreamAttempt, ds: Downstream): void {
    const pending = this.pending;
    if (pending !== null) {
      this.pending = null;
      this.pendingBytes = 0;
      let ok = true;
      for (let i = 0; i < pending.length; i++) ok = attempt.writeBody(pending[i]);
      if (!ok) this.pause(ds);
      else if (this.paused) this.resume(ds);
    }
    if (this.done && this.framing !== 'none') attempt.endBody();
  }

  /** The next attempt sends `chunks` (the body kept for a resend) first. */
  replace(chunks: Buffer[], bytes: number): void {
    this.pending = chunks;
    this.pendingBytes = bytes;
  }

  /** The upstream connection can take more. */
  onUpstreamDrain(ds: Downstream): void {
    if (this.paused && this.pending === null) this.resume(ds);
  }

  private pause(ds: Downstream): void {
    if (this.paused) return;
    this.paused = true;
    ds.pauseRequestBody();
  }

  private resume(ds: Downstream): void {
    this.paused = false;
    ds.resumeRequestBody();
  }
}

/** The body of every request without one: done from the start, never written to. */
export const NO_BODY: RequestBody = Object.freeze(new RequestBody('none')) as RequestBody;
