// One StreamAccessLogs call (envoy.service.accesslog.v3.AccessLogService) per cluster and
// log name, on the main thread, over @grpc/grpc-js: the workers' batches queue here
// (at most MAX_QUEUED_ENTRIES and MAX_QUEUED_BYTES; beyond, dropped and counted) and go out as
// StreamAccessLogsMessages, the first of each stream with the identifier. The stream
// opens once the channel is ready (grpc-js reconnects with its own backoff while the
// service is down); a stream that ends or fails is opened again after a backoff
// (250 ms doubling to 10 s, reset by a successful write). Entries written to a stream
// that then fails are lost (counted `stream_failed`), as in Envoy. No callback throws.

import type * as grpc from '@grpc/grpc-js';
import { loadGrpc } from '../core/grpc-module.js';
import type { Logger } from '../core/log.js';
import { RingBuffer } from '../core/ring-buffer.js';
import { streamMessage } from './als-message.js';

const METHOD = '/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs';
/** Entries held per stream while the service is down or slow, and their bytes (an entry
 *  with a long path or long headers can take tens of KiB). */
export const MAX_QUEUED_ENTRIES = 10_000;
const MAX_QUEUED_BYTES = 16 * 1024 * 1024;
/** Bytes of entries put in one message at most. */
const MAX_MESSAGE_BYTES = 1024 * 1024;
const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 10_000;
/** How long one wait for a ready channel lasts before it starts again. */
const READY_WAIT_MS = 30_000;
/** At most one warning per stream in this interval. */
const WARN_INTERVAL_MS = 30_000;

/** Where a stream goes: a grpc-js target and its credentials; `key` tells targets apart. */
export interface AlsTarget {
  readonly key: string;
  readonly target: string;
  readonly credentials: grpc.ChannelCredentials;
  readonly options: grpc.ChannelOptions;
}

export type AlsDropReason = 'worker_buffer_full' | 'queue_full' | 'stream_failed' | 'unconfigured';

export interface AlsCounters {
  sent: number;
  dropped: Record<AlsDropReason, number>;
  /** Streams opened, and streams that ended with an error. */
  streams: { opened: number; failed: number };
  /** Entries held now. */
  queued: number;
}

type Phase = 'unconfigured' | 'connecting' | 'open' | 'backoff' | 'stopped';

interface Batch {
  readonly count: number;
  readonly entries: Uint8Array;
}

/** One call's writes not yet confirmed; what is left when the call ends was lost. */
interface CallState {
  inflight: number;
  done: boolean;
}

const identity = (b: Buffer): Buffer => b;

export class AlsStream {
  private phase: Phase = 'unconfigured';
  private target: AlsTarget | null = null;
  private client: grpc.Client | null = null;
  private call: grpc.ClientWritableStream<Buffer> | null = null;
  private state: CallState | null = null;
  private first = true;
  private blocked = false;
  private readonly queue = new RingBuffer<Batch>();
  private queuedBytes = 0;
  /** stop() has begun: the stream takes nothing more and is not started again. */
  private stopping = false;
  private backoffMs = BACKOFF_FIRST_MS;
  private timer: NodeJS.Timeout | null = null;
  private lastWarnAt = -Infinity;
  private readonly c: AlsCounters;
  /** The owner said once that the cluster has no endpoint (until it has one). */
  warnedNoTarget = false;

  constructor(
    readonly cluster: string,
    readonly logName: string,
    /** The encoded identifier (als-message.ts) sent first on every stream. */
    private readonly identifier: Uint8Array,
    private readonly log: Logger,
    /** The counts of the stream this one replaces (the same log, named again). */
    previous?: AlsCounters,
  ) {
    this.c = {
      sent: previous?.sent ?? 0,
      dropped: { worker_buffer_full: 0, queue_full: 0, stream_failed: 0, unconfigured: 0, ...previous?.dropped },
      streams: { opened: previous?.streams.opened ?? 0, failed: previous?.streams.failed ?? 0 },
      queued: 0,
    };
  }

  /** stop() was called: the stream is ending, or over. */
  get stopped(): boolean {
    return this.stopping || this.phase === 'stopped';
  }

  /** Where to stream (null: the cluster has no endpoint now; entries wait, within the
   *  cap). A different target closes the current channel. */
  setTarget(target: AlsTarget | null): void {
    if (this.phase === 'stopped') return;
    if (target !== null && this.target !== null && target.key === this.target.key) return;
    this.drop();
    this.target = target;
    if (target === null) {
      this.phase = 'unconfigured';
      return;
    }
    this.client = new (loadGrpc().Client)(target.target, target.credentials, target.options);
    this.backoffMs = BACKOFF_FIRST_MS;
    this.connect();
  }

  /** A worker's batch. */
  submit(count: number, entries: Uint8Array, dropped: number): void {
    const c = this.c;
    c.dropped.worker_buffer_full += dropped;
    if (count === 0) return;
    if (this.phase === 'stopped') {
      c.dropped.unconfigured += count;
      return;
    }
    if (c.queued + count > MAX_QUEUED_ENTRIES || this.queuedBytes + entries.length > MAX_QUEUED_BYTES) {
      c.dropped.queue_full += count;
      return;
    }
    this.queue.push({ count, entries });
    c.queued += count;
    this.queuedBytes += entries.length;
    this.pump();
  }

  counters(): AlsCounters {
    return this.c;
  }

  /** Sends what is queued while the stream is open (within `deadlineMs`), ends the call
   *  and stops; entries still held are dropped (`unconfigured`). Resolves, never rejects. */
  async stop(deadlineMs: number): Promise<void> {
    if (this.stopping || this.phase === 'stopped') return;
    this.stopping = true;
    const call = this.call;
    const state = this.state;
    if (this.phase === 'open' && call !== null && state !== null) {
      this.pump();
      const until = Date.now() + deadlineMs;
      while ((this.queue.length > 0 || state.inflight > 0) && !state.done && Date.now() < until) await sleep(10);
    }
    this.phase = 'stopped';
    this.c.dropped.unconfigured += this.c.queued;
    while (this.queue.shift() !== undefined) { /* dropped */ }
    this.c.queued = 0;
    this.queuedBytes = 0;
    this.drop();
  }

  /** Waits for the channel to be ready, then opens the stream. */
  private connect(): void {
    const client = this.client;
    if (client === null) return;
    this.phase = 'connecting';
    try {
      client.waitForReady(Date.now() + READY_WAIT_MS, (err) => {
        if (this.client !== client || this.phase !== 'connecting') return;
        if (err !== undefined) {
          this.warn(err, 'the access log service is not reachable; entries wait (within the cap)');
          this.retryLater();
          return;
        }
        try {
          this.open(client);
        } catch (e) {
          this.warn(e, 'cannot open the access log stream');
          this.retryLater();
        }
      });
    } catch (err) {
      this.warn(err, 'cannot connect to the access log service');
      this.retryLater();
    }
  }

  private open(client: grpc.Client): void {
    const state: CallState = { inflight: 0, done: false };
    let call: grpc.ClientWritableStream<Buffer>;
    try {
      call = client.makeClientStreamRequest<Buffer, Buffer>(METHOD, identity, identity, new (loadGrpc().Metadata)(), {}, (err) => this.ended(call, state, err));
    } catch (err) {
      this.warn(err, 'cannot open the access log stream');
      this.retryLater();
      return;
    }
    call.on('error', () => {}); // the callback above reports it
    call.on('drain', () => {
      if (this.call !== call) return;
      this.blocked = false;
      this.pump();
    });
    this.call = call;
    this.state = state;
    this.first = true;
    this.blocked = false;
    this.phase = 'open';
    this.c.streams.opened++;
    this.log.info({ cluster: this.cluster, logName: this.logName }, 'access log stream open');
    this.pump();
  }

  /** Writes queued batches while the stream takes them. */
  private pump(): void {
    const call = this.call;
    const state = this.state;
    if (this.phase !== 'open' || call === null || state === null) return;
    try {
      while (!this.blocked && this.queue.length > 0) {
        const parts: Uint8Array[] = [];
        let bytes = 0;
        let count = 0;
        while (this.queue.length > 0 && (parts.length === 0 || bytes < MAX_MESSAGE_BYTES)) {
          const b = this.queue.shift()!;
          parts.push(b.entries);
          bytes += b.entries.length;
          count += b.count;
        }
        this.c.queued -= count;
        this.queuedBytes -= bytes;
        const msg = streamMessage(this.first ? this.identifier : null, parts);
        this.first = false;
        state.inflight += count;
        const ok = call.write(msg, (err: Error | null | undefined) => {
          if (state.done) return;
          state.inflight -= count;
          if (err !== null && err !== undefined) this.c.dropped.stream_failed += count;
          else {
            this.c.sent += count;
            this.backoffMs = BACKOFF_FIRST_MS;
          }
        });
        if (!ok) this.blocked = true;
      }
    } catch (err) {
      this.warn(err, 'writing to the access log stream failed');
      this.abandon(call, state);
    }
  }

  /** The call ended (the service answered, or an error): open another later. */
  private ended(call: grpc.ClientWritableStream<Buffer>, state: CallState, err: grpc.ServiceError | null): void {
    if (state.done) return;
    state.done = true;
    this.c.dropped.stream_failed += state.inflight;
    state.inflight = 0;
    if (this.call !== call) return;
    this.call = null;
    this.state = null;
    if (this.phase === 'stopped') return;
    if (err !== null) {
      this.c.streams.failed++;
      this.warn(err, 'the access log stream ended; opening another');
    }
    this.retryLater();
  }

  /** Gives up on a call that failed under us. */
  private abandon(call: grpc.ClientWritableStream<Buffer>, state: CallState): void {
    this.ended(call, state, null);
    try {
      call.cancel();
    } catch {
      // already over
    }
  }

  private retryLater(): void {
    if (this.phase === 'stopped') return;
    this.phase = 'backoff';
    const ms = this.backoffMs * (0.8 + Math.random() * 0.4);
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.phase === 'backoff') this.connect();
    }, ms);
    this.timer.unref();
  }

  /** Ends the call and closes the channel (a new target, or stopping). */
  private drop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const call = this.call;
    const state = this.state;
    this.call = null;
    this.state = null;
    if (call !== null && state !== null) {
      try {
        call.end();
      } catch {
        // already over
      }
    }
    const client = this.client;
    this.client = null;
    if (client !== null) {
      // Closing the channel at once would cancel the call before its last messages leave.
      setTimeout(() => {
        try {
          client.close();
        } catch {
          // already closed
        }
      }, 1000).unref();
    }
  }

  private warn(err: unknown, msg: string): void {
    const now = performance.now();
    if (now - this.lastWarnAt < WARN_INTERVAL_MS) return;
    this.lastWarnAt = now;
    try {
      const e = err as { code?: unknown; details?: unknown; message?: unknown };
      this.log.warn({ cluster: this.cluster, logName: this.logName, code: e?.code, details: e?.details ?? e?.message }, msg);
    } catch {
      // logging must not throw out of a callback
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
