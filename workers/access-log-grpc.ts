// A worker's gRPC access log entries on their way to the main thread (which streams them
// to the access log service, src/main/access-log-export.ts): per (cluster, log_name) one
// buffer of encoded HTTPAccessLogEntry records, written as requests finish and posted —
// the bytes transferred, not copied — once they reach the log's buffer_size_bytes (on the
// next turn of the event loop, never inside the request that filled it) or every
// flush_interval_ms. Beyond MAX_HELD_BYTES (the main thread not taking them) entries are
// dropped and counted. A listener without `grpc` has no buffer and pays nothing.

import { servesTls } from '../src/config/listener-chains.js';
import type { Listener } from '../src/config/types.js';
import type { Logger } from '../src/core/log.js';
import { ProtoWriter } from '../src/access-log/proto-writer.js';
import type { AccessLogBatchMessage } from '../src/shared/messages.js';
import { writeHttpEntry } from './access-log-grpc-entry.js';
import type { StreamInfo } from './stream-info.js';

/** Encoded entries one log holds in a worker before it drops new ones: a batch stays well
 *  below the 4 MiB a gRPC server takes in one message by default. */
const MAX_HELD_BYTES = 2 * 1024 * 1024;

type Post = (msg: AccessLogBatchMessage, transfer: ArrayBuffer[]) => void;

/** One (cluster, log_name) in one worker. */
export class GrpcLog {
  private readonly writer = new ProtoWriter();
  private count = 0;
  private dropped = 0;
  private flushQueued = false;
  private timer: NodeJS.Timeout | null = null;
  private intervalMs = 0;
  bufferBytes = 0;

  get interval(): number {
    return this.intervalMs;
  }

  constructor(
    readonly cluster: string,
    readonly logName: string,
    private readonly post: Post,
    private readonly log: Logger,
  ) {}

  /** Sets the flush interval (a new snapshot's). */
  every(ms: number): void {
    if (ms === this.intervalMs) return;
    if (this.timer !== null) clearInterval(this.timer);
    this.intervalMs = ms;
    this.timer = setInterval(this.flush, ms);
    this.timer.unref();
  }

  /** Encodes one finished request. Never throws. */
  add(info: StreamInfo, scheme: string): void {
    const w = this.writer;
    if (w.length >= MAX_HELD_BYTES) {
      this.dropped++;
      return;
    }
    const mark = w.length;
    try {
      writeHttpEntry(w, info, scheme, Date.now());
    } catch (err) {
      w.truncate(mark);
      this.dropped++;
      this.log.error({ err, logName: this.logName }, 'encoding an access log entry failed; it is dropped');
      return;
    }
    this.count++;
    if (w.length >= this.bufferBytes && !this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.onFull);
    }
  }

  /** Posts what is held (and the count dropped) to the main thread. Never throws. */
  readonly flush = (): void => {
    if (this.count === 0 && this.dropped === 0) return;
    try {
      const entries = this.writer.take();
      const msg: AccessLogBatchMessage = { type: 'access_logs', cluster: this.cluster, logName: this.logName, count: this.count, entries, dropped: this.dropped };
      this.count = 0;
      this.dropped = 0;
      this.post(msg, [entries.buffer as ArrayBuffer]);
    } catch (err) {
      this.count = 0;
      this.log.error({ err, logName: this.logName }, 'handing access log entries to the main thread failed; they are dropped');
    }
  };

  /** Posts what is held and stops the timer. */
  close(): void {
    this.flush();
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private readonly onFull = (): void => {
    this.flushQueued = false;
    this.flush();
  };
}

/** What a listener's access log sink sends its requests to. */
export interface GrpcLogTarget {
  readonly log: GrpcLog;
  /** The listener's scheme (request.scheme of its entries). */
  readonly scheme: string;
}

/** A worker's gRPC logs, compiled per snapshot. */
export class GrpcLogs {
  private logs = new Map<string, GrpcLog>();

  constructor(
    private readonly post: Post,
    private readonly log: Logger,
  ) {}

  /** Targets for the listeners whose access log has `grpc`, by listener name. Logs no
   *  longer named post what they hold and stop. */
  compile(listeners: readonly Listener[]): Map<string, GrpcLogTarget> {
    const out = new Map<string, GrpcLogTarget>();
    const used = new Map<string, GrpcLog>();
    for (const l of listeners) {
      const g = l.access_log?.grpc;
      if (g === undefined) continue;
      const key = `${g.cluster}\n${g.log_name}`;
      let log = used.get(key);
      if (log === undefined) {
        log = this.logs.get(key) ?? new GrpcLog(g.cluster, g.log_name, this.post, this.log);
        log.bufferBytes = g.buffer_size_bytes;
        log.every(g.flush_interval_ms);
        used.set(key, log);
      } else {
        // Listeners sharing a log: the smaller buffer and the shorter interval.
        log.bufferBytes = Math.min(log.bufferBytes, g.buffer_size_bytes);
        log.every(Math.min(log.interval, g.flush_interval_ms));
      }
      out.set(l.name, { log, scheme: servesTls(l) ? 'https' : 'http' });
    }
    for (const [key, log] of this.logs) if (!used.has(key)) log.close();
    this.logs = used;
    return out;
  }

  /** Posts everything held (a stopping worker). */
  close(): void {
    for (const log of this.logs.values()) log.close();
    this.logs = new Map();
  }
}
