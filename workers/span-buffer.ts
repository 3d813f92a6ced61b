// A worker's finished spans on their way to the main thread's exporter: held in a
// bounded list (beyond max_queue_size they are dropped and counted), encoded to OTLP in
// batches of max_export_batch_size — when a batch is full (on the next turn of the event
// loop, never inside the request that filled it) or every schedule_delay_ms — and
// posted to the main thread with the encoded bytes transferred, not copied.

import { encodeSpansJson, encodeSpansProto } from '../src/tracing/otlp-encode.js';
import type { TracingSettings } from '../src/tracing/settings.js';
import type { SpanRecord } from '../src/tracing/span.js';
import type { Logger } from '../src/core/log.js';
import type { SpanBatchMessage } from '../src/shared/messages.js';

export class SpanBuffer {
  private spans: SpanRecord[] = [];
  private dropped = 0;
  private maxQueue = 2048;
  private batch = 512;
  private json = false;
  private timer: NodeJS.Timeout | null = null;
  private delayMs = 0;
  private flushQueued = false;

  constructor(
    private readonly post: (msg: SpanBatchMessage, transfer: ArrayBuffer[]) => void,
    private readonly log: Logger,
  ) {}

  /** A new snapshot's settings (null: tracing is off; what is held is sent first). */
  configure(settings: TracingSettings | null): void {
    if (settings === null) {
      this.flush();
      if (this.timer !== null) clearInterval(this.timer);
      this.timer = null;
      this.delayMs = 0;
      return;
    }
    if (this.json !== (settings.protocol === 'http/json')) this.flush(); // held spans go in the encoding they were meant for
    this.maxQueue = settings.maxQueueSize;
    this.batch = settings.maxExportBatchSize;
    this.json = settings.protocol === 'http/json';
    if (this.delayMs !== settings.scheduleDelayMs) {
      if (this.timer !== null) clearInterval(this.timer);
      this.delayMs = settings.scheduleDelayMs;
      this.timer = setInterval(this.onTimer, this.delayMs);
      this.timer.unref();
    }
  }

  add(span: SpanRecord): void {
    const spans = this.spans;
    if (spans.length >= this.maxQueue) {
      this.dropped++;
      return;
    }
    spans.push(span);
    if (spans.length >= this.batch && !this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.onFull);
    }
  }

  /** Encodes and posts everything held, in batches. Never throws. */
  flush(): void {
    try {
      while (this.spans.length > 0 || this.dropped > 0) {
        const all = this.spans;
        const part = all.length > this.batch ? all.slice(0, this.batch) : all;
        this.spans = all.length > this.batch ? all.slice(this.batch) : [];
        const dropped = this.dropped;
        this.dropped = 0;
        if (part.length === 0) {
          this.post({ type: 'spans', count: 0, proto: null, json: null, dropped }, []);
          continue;
        }
        if (this.json) {
          this.post({ type: 'spans', count: part.length, proto: null, json: encodeSpansJson(part), dropped }, []);
        } else {
          const proto = encodeSpansProto(part);
          const transfer = proto.byteOffset === 0 && proto.byteLength === proto.buffer.byteLength ? [proto.buffer as ArrayBuffer] : [];
          this.post({ type: 'spans', count: part.length, proto, json: null, dropped }, transfer);
        }
      }
    } catch (err) {
      this.spans = [];
      this.log.error({ err }, 'encoding spans failed; they are dropped');
    }
  }

  close(): void {
    this.flush();
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private readonly onFull = (): void => {
    this.flushQueued = false;
    this.flush();
  };

  private readonly onTimer = (): void => {
    this.flush();
  };
}
