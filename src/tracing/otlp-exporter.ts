// The main thread's OTLP exporter: workers hand in batches of spans already encoded
// (src/tracing/otlp-encode.ts); this queues them, merges queued batches into export
// requests of at most maxBatchSpans spans, sends one request at a time as soon as there
// is something to send (workers already batch, so no timer of its own), and retries as
// OTLP says (src/tracing/otlp-transport.ts decides what is retryable): exponential
// backoff with full jitter (ceiling 100 ms doubling to 5 s, Retry-After honoured up to
// 30 s), a request given up after 5 tries or once its oldest span waited 30 s.
//
// Bounded: the exporter holds at most maxQueueSpans spans, waiting or being retried;
// beyond, new batches are dropped and counted, so a collector that is down or slow (each
// try is cut after timeoutMs) never grows memory. Never on a request's path; never throws
// into its caller; logs at most one warning per 30 s about failures, with counts.

import type { Logger } from '../core/log.js';
import { RingBuffer } from '../core/ring-buffer.js';
import { exportRequestJson, exportRequestProto } from './otlp-encode.js';
import { createTransport, type OtlpProtocol, type OtlpTransport, type SendResult } from './otlp-transport.js';

export type { OtlpProtocol };

export interface OtlpExporterOptions {
  protocol: OtlpProtocol;
  /** http(s)://host:port[/path]. HTTP protocols: the full URL posted to (as
   *  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). gRPC: host:port from it (the scheme's default
   *  port when none), TLS when https. */
  endpoint: string;
  /** gRPC metadata or HTTP headers sent with every export request. */
  headers: Readonly<Record<string, string>>;
  /** One try not answered within this is cut and retried (milliseconds, per try). */
  timeoutMs: number;
  resource: Readonly<Record<string, string>>;
  scope: { name: string; version: string };
  /** Spans the exporter holds (waiting or being retried) at most; beyond, new batches
   *  are dropped and counted. */
  maxQueueSpans: number;
  /** Spans per export request at most (a single larger batch is sent alone). */
  maxBatchSpans: number;
  log: Logger;
}

/** Spans from a worker: `count` spans encoded for the protocol (`proto` for gRPC and
 *  http/protobuf, `json` for http/json; the other may be null), and `dropped` spans the
 *  worker dropped because its own queue was full. */
export interface SpanBatch {
  count: number;
  proto: Uint8Array | null;
  json: string | null;
  dropped: number;
}

export type DropReason = 'worker_queue_full' | 'export_queue_full' | 'export_failed' | 'rejected';
export type RequestResult = 'success' | 'failure' | 'retry';

export interface OtlpExporterCounters {
  /** Spans the collector accepted. */
  exported: number;
  dropped: Record<DropReason, number>;
  /** Tries by outcome: success, retry (a retryable failure, tried again or given up),
   *  failure (not retryable). */
  requests: Record<RequestResult, number>;
  /** Spans held now, waiting or in the request being sent or retried. */
  queuedSpans: number;
}

const MAX_TRIES = 5;
const MAX_AGE_MS = 30_000;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5_000;
const MAX_RETRY_AFTER_MS = 30_000;
const WARN_EVERY_MS = 30_000;

/** A queued batch. */
interface Entry {
  readonly count: number;
  readonly part: Uint8Array | string;
  /** performance.now() when it was queued. */
  readonly at: number;
}

/** One export request: the batches it carries, its body, the tries made so far. */
class ExportRequest {
  tries = 0;
  constructor(
    readonly count: number,
    /** JSON (http/json) or protobuf (gRPC, http/protobuf). */
    readonly body: Uint8Array | string,
    /** When its oldest batch was queued. */
    readonly since: number,
  ) {}
}

/** idle: nothing in flight, no timer; sending: a try in flight; waiting: backing off
 *  (the request to retry in `current`, or none when it was given up); stopped: shut down. */
type Phase = 'idle' | 'sending' | 'waiting' | 'stopped';

export class OtlpExporter {
  private opts: OtlpExporterOptions;
  private transport: OtlpTransport | null = null;
  /** A transport replaced while a try was in flight on it: closed when that try ends. */
  private retiring: OtlpTransport | null = null;
  private phase: Phase = 'idle';
  private readonly queue = new RingBuffer<Entry>();
  /** The queue's head when it did not fit in the last request (RingBuffer has no peek). */
  private held: Entry | null = null;
  private queueSpans = 0;
  private current: ExportRequest | null = null;
  private cancelTry: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Retryable failures in a row (the backoff exponent); 0 after a success. */
  private failuresInRow = 0;
  private readonly counts: OtlpExporterCounters = {
    exported: 0,
    dropped: { worker_queue_full: 0, export_queue_full: 0, export_failed: 0, rejected: 0 },
    requests: { success: 0, failure: 0, retry: 0 },
    queuedSpans: 0,
  };
  // Rate-limited warnings: what happened since the last one.
  private lastWarnAt = -Infinity;
  private pending = { failedTries: 0, dropped: { export_queue_full: 0, export_failed: 0, rejected: 0 }, lastError: '' };
  private warned = false;
  private stopping: { deadline: number; timer: NodeJS.Timeout; resolve: () => void; promise: Promise<void> } | null = null;

  constructor(opts: OtlpExporterOptions) {
    this.opts = opts;
    this.transport = this.connect(opts);
  }

  /** Queues a worker's batch (or drops and counts it when the queue is full); sends at
   *  once when nothing is in flight. */
  submit(batch: SpanBatch): void {
    try {
      if (batch.dropped > 0) this.counts.dropped.worker_queue_full += batch.dropped;
      if (batch.count <= 0) return;
      const part = this.wantsJson() ? batch.json : batch.proto;
      if (this.phase === 'stopped' || this.transport === null || part === null) {
        this.drop('export_failed', batch.count, this.phase === 'stopped' ? 'exporter stopped' : this.transport === null ? 'no usable endpoint' : `batch not encoded for ${this.opts.protocol}`);
        return;
      }
      if (this.heldSpans() + batch.count > this.opts.maxQueueSpans) {
        this.drop('export_queue_full', batch.count, '');
        return;
      }
      this.queue.push({ count: batch.count, part, at: performance.now() });
      this.queueSpans += batch.count;
      this.pump();
    } catch (err) {
      this.opts.log.error({ err }, 'tracing: exporter failed to queue a batch');
    }
  }

  /** Takes a new config. The queue is kept when its batches suit the new protocol
   *  (protobuf for gRPC and http/protobuf, JSON for http/json), else dropped and counted;
   *  a try in flight finishes on the old connection. A smaller maxQueueSpans applies to
   *  batches submitted from now on. */
  update(opts: OtlpExporterOptions): void {
    try {
      const old = this.opts;
      this.opts = opts;
      if (this.phase === 'stopped') return;
      if ((old.protocol === 'http/json') !== (opts.protocol === 'http/json')) this.dropQueued('protocol changed encoding');
      if (old.protocol !== opts.protocol || old.endpoint !== opts.endpoint || JSON.stringify(old.headers) !== JSON.stringify(opts.headers)) {
        if (this.phase === 'sending' && this.retiring === null) this.retiring = this.transport;
        else this.transport?.close();
        this.transport = this.connect(opts);
        if (this.transport === null) this.dropQueued('no usable endpoint');
      }
      this.pump();
    } catch (err) {
      this.opts.log.error({ err }, 'tracing: exporter failed to take a new config');
    }
  }

  counters(): OtlpExporterCounters {
    const c = this.counts;
    return { exported: c.exported, dropped: { ...c.dropped }, requests: { ...c.requests }, queuedSpans: this.heldSpans() };
  }

  /** Sends what is held for at most `deadlineMs` milliseconds (retries included), then
   *  drops the rest (counted as export_failed) and closes the connection. */
  shutdown(deadlineMs: number): Promise<void> {
    if (this.stopping !== null) return this.stopping.promise;
    if (this.phase === 'stopped') return Promise.resolve();
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    const timer = setTimeout(() => this.stop(), Math.max(0, deadlineMs));
    this.stopping = { deadline: performance.now() + deadlineMs, timer, resolve, promise };
    this.pump();
    return promise;
  }

  // ---------------------------------------------------------------------------------------

  private connect(opts: OtlpExporterOptions): OtlpTransport | null {
    let t: OtlpTransport | string;
    try {
      t = createTransport(opts.protocol, opts.endpoint, opts.headers);
    } catch (err) {
      t = (err as Error).message;
    }
    if (typeof t !== 'string') return t;
    opts.log.error({ endpoint: opts.endpoint }, `tracing: cannot export spans: ${t}; spans are dropped`);
    return null;
  }

  private wantsJson(): boolean {
    return this.opts.protocol === 'http/json';
  }

  private heldSpans(): number {
    return this.queueSpans + (this.current?.count ?? 0);
  }

  /** Starts the next try when nothing is in flight or waiting; finishes a shutdown once
   *  nothing is left. */
  private pump(): void {
    if (this.phase !== 'idle') return this.maybeStopped();
    if (this.current !== null && (this.transport === null || (typeof this.current.body === 'string') !== this.wantsJson())) {
      // The protocol changed encoding (or lost its endpoint) while this request waited.
      this.drop('export_failed', this.current.count, this.transport === null ? 'no usable endpoint' : 'protocol changed encoding');
      this.current = null;
    }
    if (this.transport === null) return this.maybeStopped();
    if (this.current === null) this.current = this.nextRequest();
    const req = this.current;
    if (req === null) return this.maybeStopped();
    req.tries++;
    this.phase = 'sending';
    const transport = this.transport;
    const remaining = this.stopping === null ? Infinity : this.stopping.deadline - performance.now();
    this.cancelTry = transport.send(req.body, Math.max(1, Math.min(this.opts.timeoutMs, remaining)), (r) => this.onResult(req, transport, r));
  }

  /** Merges queued batches, oldest first, into one request of at most maxBatchSpans. */
  private nextRequest(): ExportRequest | null {
    const parts: (Uint8Array | string)[] = [];
    let count = 0;
    let since = Infinity;
    for (;;) {
      const e = this.held ?? this.queue.shift();
      this.held = null;
      if (e === undefined) break;
      if (count > 0 && count + e.count > this.opts.maxBatchSpans) {
        this.held = e;
        break;
      }
      parts.push(e.part);
      count += e.count;
      since = Math.min(since, e.at);
      this.queueSpans -= e.count;
    }
    if (count === 0) return null;
    const { resource, scope } = this.opts;
    const body = this.wantsJson() ? exportRequestJson(resource, scope, parts as string[]) : exportRequestProto(resource, scope, parts as Uint8Array[]);
    return new ExportRequest(count, body, since);
  }

  private onResult(req: ExportRequest, transport: OtlpTransport, r: SendResult): void {
    this.cancelTry = null;
    if (transport === this.retiring) {
      transport.close();
      this.retiring = null;
    }
    if (this.phase !== 'sending' || req !== this.current) return; // stopped meanwhile
    this.phase = 'idle';
    switch (r.kind) {
      case 'ok': {
        this.counts.requests.success++;
        const rejected = Math.min(req.count, r.rejected);
        this.counts.exported += req.count - rejected;
        if (rejected > 0) this.drop('rejected', rejected, r.message === '' ? 'collector rejected spans' : `collector rejected spans: ${r.message}`);
        this.current = null;
        this.failuresInRow = 0;
        if (this.warned) {
          this.warned = false;
          this.opts.log.info('tracing: span export recovered');
        }
        break;
      }
      case 'fail':
        this.counts.requests.failure++;
        this.current = null;
        this.drop('export_failed', req.count, r.reason);
        break;
      case 'retry': {
        this.counts.requests.retry++;
        this.failuresInRow++;
        const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.failuresInRow - 1, 16));
        const delay = Math.max(Math.random() * ceiling, Math.min(r.retryAfterMs ?? 0, MAX_RETRY_AFTER_MS));
        const at = performance.now() + delay;
        const tooOld = at - req.since > MAX_AGE_MS || (this.stopping !== null && at >= this.stopping.deadline);
        if (req.tries >= MAX_TRIES || tooOld) {
          this.current = null;
          this.drop('export_failed', req.count, `${r.reason} (gave up after ${req.tries} ${req.tries === 1 ? 'try' : 'tries'})`);
        } else {
          this.note(r.reason);
        }
        // Wait even when the request was given up: the collector asked for a pause.
        this.phase = 'waiting';
        this.timer = setTimeout(() => {
          this.timer = null;
          if (this.phase !== 'waiting') return;
          this.phase = 'idle';
          this.pump();
        }, delay);
        this.timer.unref();
        this.maybeStopped();
        return;
      }
    }
    this.pump();
  }

  /** Drops every queued batch (not the request in flight), counted as export_failed. */
  private dropQueued(why: string): void {
    let n = 0;
    for (let e = this.held ?? this.queue.shift(); e !== undefined; e = this.queue.shift()) n += e.count;
    this.held = null;
    this.queueSpans = 0;
    if (n > 0) this.drop('export_failed', n, why);
  }

  private drop(reason: DropReason, spans: number, why: string): void {
    this.counts.dropped[reason] += spans;
    if (reason !== 'worker_queue_full') this.pending.dropped[reason] += spans;
    this.note(why);
  }

  /** Records a failure and warns when the last warning is 30 s old. */
  private note(why: string): void {
    const p = this.pending;
    if (why !== '') p.lastError = why;
    p.failedTries = this.counts.requests.failure + this.counts.requests.retry;
    const now = performance.now();
    if (now - this.lastWarnAt < WARN_EVERY_MS) return;
    this.flushWarning(now);
  }

  private flushWarning(now: number): void {
    const p = this.pending;
    const dropped = p.dropped.export_queue_full + p.dropped.export_failed + p.dropped.rejected;
    if (dropped === 0 && p.lastError === '') return;
    this.lastWarnAt = now;
    this.warned = true;
    this.opts.log.warn(
      {
        endpoint: this.opts.endpoint,
        protocol: this.opts.protocol,
        spans_dropped: { ...p.dropped },
        failed_tries_total: p.failedTries,
        queued_spans: this.heldSpans(),
        last_error: p.lastError,
      },
      'tracing: span export is failing (counts since the last warning; at most one warning per 30 s)',
    );
    this.pending = { failedTries: p.failedTries, dropped: { export_queue_full: 0, export_failed: 0, rejected: 0 }, lastError: '' };
  }

  /** During a shutdown: resolves it once nothing is held. */
  private maybeStopped(): void {
    if (this.stopping !== null && this.heldSpans() === 0 && this.phase !== 'sending') this.stop();
  }

  /** Ends a shutdown: cuts the try in flight, drops what is left, closes connections. */
  private stop(): void {
    const s = this.stopping;
    if (this.phase === 'stopped') return;
    this.phase = 'stopped';
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.cancelTry?.();
    this.cancelTry = null;
    const left = this.heldSpans();
    this.dropQueued('shutdown deadline');
    if (this.current !== null) {
      this.counts.dropped.export_failed += this.current.count;
      this.pending.dropped.export_failed += this.current.count;
      this.current = null;
    }
    if (left > 0) {
      this.pending.lastError = `shutdown deadline passed with ${left} spans unsent`;
      this.flushWarning(performance.now());
    }
    this.transport?.close();
    this.retiring?.close();
    this.transport = null;
    this.retiring = null;
    if (s !== null) {
      clearTimeout(s.timer);
      s.resolve();
    }
  }
}
