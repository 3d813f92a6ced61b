// Access logs: one line per finished request (and per TCP proxy connection) for each
// listener that configures `access_log`. Lines go out through pino's asynchronous
// destination (SonicBoom), one per worker per distinct path ("stdout" = fd 1), so a worker
// never waits on the disk. The default line is Remora's JSON, of a fixed shape, built by
// hand on the hot path (no pino logger per line); a `format` or `json_format` is compiled
// per snapshot (access-log-format.ts). Sampling: a `sample_ratio` share of requests is
// logged, error responses always.

import { resolve } from 'node:path';
import { pino } from 'pino';
import { servesTls } from '../src/config/listener-chains.js';
import type { Listener } from '../src/config/types.js';
import type { Logger } from '../src/core/log.js';
import { compileAccessLogFormat, type AccessLogFormat } from './access-log-format.js';
import { traceIdOf, type ConnectionRecord } from './access-log-operators.js';
import { isoTime } from './access-log-time.js';
import type { GrpcLogTarget } from './access-log-grpc.js';
import type { StreamInfo } from './stream-info.js';

export type { ConnectionRecord } from './access-log-operators.js';

type SonicBoom = ReturnType<typeof pino.destination>;

/** Bytes waiting to be written beyond which new lines are dropped: a stalled disk must not
 *  use up the worker's memory. */
const MAX_PENDING_BYTES = 16 * 1024 * 1024;
/** Writes to a pipe of at most PIPE_BUF bytes are atomic, so stdout writes of whole lines
 *  from several workers never interleave. */
const PIPE_BUF = 4096;
/** How long stopping waits for buffered lines to be written. */
const CLOSE_TIMEOUT_MS = 1000;
/** At most one error message per destination in this interval. */
const ERROR_LOG_INTERVAL_MS = 10_000;

const quote = JSON.stringify;

/** Bytes of log lines gathered before one write to a file. */
const FILE_BATCH_BYTES = 8 * 1024; // sonic-boom needs it below its 16 KiB maxWrite

/** One file (or stdout) in one worker; shared by the listeners that name the same path. */
class Destination {
  private readonly boom: SonicBoom;
  /** The file is open (stdout always is). */
  private opened: boolean;
  /** The file could not be opened: lines are dropped (until a snapshot reopens it). */
  private broken = false;
  private closed = false;
  private dropped = 0;
  private lastErrorAt = -Infinity;

  constructor(
    /** "stdout" or an absolute path. */
    readonly target: string,
    private readonly log: Logger,
  ) {
    this.opened = target === 'stdout';
    this.boom =
      target === 'stdout'
        ? pino.destination({ dest: 1, sync: false, minLength: 0, maxWrite: PIPE_BUF, maxLength: MAX_PENDING_BYTES })
        : // Files: lines are batched up to FILE_BATCH_BYTES per write (the worker flushes
          // whatever is left once a second), so a busy proxy makes few write syscalls.
          pino.destination({ dest: target, sync: false, mkdir: true, minLength: FILE_BATCH_BYTES, maxLength: MAX_PENDING_BYTES });
    if (!this.opened) this.boom.once('ready', this.onReady);
    this.boom.on('error', this.onError);
    this.boom.on('drop', this.onDrop);
  }

  /** True when the file could not be opened; a new snapshot then tries again. */
  get isBroken(): boolean {
    return this.broken;
  }

  write(line: string): void {
    if (this.broken || this.closed) return;
    this.boom.write(line);
  }

  /** Starts writing whatever is buffered (asynchronously). */
  flush(): void {
    if (this.broken || this.closed || !this.opened) return;
    try {
      this.boom.flush();
    } catch {
      // a flush already in progress; the next tick takes the rest
    }
  }

  /** Writes what is buffered now, synchronously (a worker about to die). */
  flushSync(): void {
    if (this.broken || this.closed || !this.opened) return;
    try {
      this.boom.flushSync();
    } catch {
      // nothing more can be done for these lines
    }
  }

  /** Writes what is buffered, then closes the file (never fd 1). Resolves when done or
   *  after CLOSE_TIMEOUT_MS; never rejects. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    if (this.dropped > 0) this.log.warn({ accessLog: this.target, dropped: this.dropped }, 'access log lines dropped');
    if (this.broken) return Promise.resolve(); // never opened: SonicBoom would wait for it forever
    return new Promise((done) => {
      const timer = setTimeout(done, CLOSE_TIMEOUT_MS);
      this.boom.once('close', () => {
        clearTimeout(timer);
        done();
      });
      try {
        this.boom.end();
      } catch (err) {
        clearTimeout(timer);
        this.report(err, 'closing the access log failed');
        done();
      }
    });
  }

  /** Reports an error, at most once per ERROR_LOG_INTERVAL_MS. */
  report(err: unknown, msg: string): void {
    const now = performance.now();
    if (now - this.lastErrorAt < ERROR_LOG_INTERVAL_MS) return;
    this.lastErrorAt = now;
    this.log.error({ err, accessLog: this.target }, msg);
  }

  private readonly onReady = (): void => {
    this.opened = true;
  };

  private readonly onError = (err: Error): void => {
    try {
      if (!this.opened) {
        this.broken = true;
        this.report(err, 'access log cannot be opened; its lines are dropped');
      } else {
        this.report(err, 'writing the access log failed');
      }
    } catch {
      // an error handler must not throw
    }
  };

  private readonly onDrop = (): void => {
    if (this.dropped++ === 0) {
      try {
        this.log.warn({ accessLog: this.target, maxPendingBytes: MAX_PENDING_BYTES }, 'access log writes are behind; dropping lines');
      } catch {
        // an event handler must not throw
      }
    }
  };
}

/** A listener's access log in one snapshot: sampling, the line format and where records
 *  go (a file or stdout, a gRPC log, or both). */
export class AccessLogSink {
  /** sample_ratio ≥ 1: every request is logged, no random draw. */
  private readonly all: boolean;
  private readonly ratio: number;
  /** `,"listener":…,"worker":…}\n`, the same for every line. */
  private readonly suffix: string;

  constructor(
    /** The file or stdout; null when the listener logs to a gRPC service only. */
    private readonly dest: Destination | null,
    sampleRatio: number,
    listener: string,
    worker: number,
    /** The configured `format` / `json_format`; null for Remora's JSON line. */
    private readonly format: AccessLogFormat | null = null,
    /** The gRPC access log service's buffer (HTTP requests only); null without one. */
    private readonly grpc: GrpcLogTarget | null = null,
  ) {
    this.all = sampleRatio >= 1;
    this.ratio = sampleRatio;
    this.suffix = `,"listener":${quote(listener)},"worker":${worker}}\n`;
  }

  /** Logs a finished request: a sampled share, and every error response (status ≥ 500,
   *  a response flag other than "-" and "DR", or a gRPC status other than OK) and every request that took more than
   *  one upstream attempt. Never throws. */
  write(info: StreamInfo): void {
    const flag = info.flag;
    if (!this.all && info.status < 500 && (flag === '-' || flag === 'DR') && info.attempts <= 1 && !info.retryExhausted && !info.retryOverflow
      && info.grpcStatus <= 0 && !(Math.random() < this.ratio)) return;
    const grpc = this.grpc;
    if (grpc !== null) grpc.log.add(info, grpc.scheme);
    const dest = this.dest;
    if (dest === null) return;
    try {
      dest.write(this.format !== null ? this.format.http(info) : this.line(info));
    } catch (err) {
      dest.report(err, 'writing an access log line failed');
    }
  }

  /** Logs a finished TCP proxy connection: a sampled share, and every one with a
   *  response flag (UF, UO, UH, NR…). Never throws. */
  writeConnection(c: ConnectionRecord): void {
    const dest = this.dest;
    if (dest === null || (!this.all && c.flags === '-' && !(Math.random() < this.ratio))) return;
    try {
      if (this.format !== null) {
        dest.write(this.format.tcp(c));
        return;
      }
      const time = isoTime(Date.now() - c.durationUs / 1000);
      dest.write(
        `{"time":"${time}","kind":"tcp","client":${quote(c.client)},"filter_chain":${c.chain === '' ? '"-"' : quote(c.chain)}` +
        `,"server_name":${c.serverName === '' ? 'null' : quote(c.serverName)},"cluster":${c.cluster === '' ? '"-"' : quote(c.cluster)}` +
        `,"upstream":${c.upstream === '' ? '"-"' : quote(c.upstream)},"attempts":${c.attempts},"flags":"${c.flags}"` +
        `,"bytes_in":${c.bytesIn},"bytes_out":${c.bytesOut},"duration_us":${c.durationUs},"termination":"${c.termination}"` +
        this.suffix,
      );
    } catch (err) {
      dest.report(err, 'writing an access log line failed');
    }
  }

  private line(info: StreamInfo): string {
    const req = info.request;
    const headers = req.headers;
    let authority: string | null = null;
    let userAgent: string | null = null;
    for (let i = 0; i < headers.length; i += 2) {
      switch (headers[i]) {
        case 'host':
          authority ??= headers[i + 1];
          break;
        case 'user-agent':
          userAgent ??= headers[i + 1];
          break;
      }
    }
    const traceId = traceIdOf(info);
    const times = info.attemptTimes;
    const path = req.query.length > 0 ? `${req.path}?${req.query}` : req.path;
    const route = info.routeName;
    const upstream = info.upstreamHost;
    // The time the request arrived (wall clock), to the millisecond.
    const time = isoTime(Date.now() - info.durationUs / 1000);
    return (
      `{"time":"${time}","request_id":${quote(info.requestId)},"method":${quote(req.method)},"path":${quote(path)}` +
      `,"authority":${authority === null ? 'null' : quote(authority)},"status":${info.status},"flags":"${info.flags}"` +
      `,"route":${route === '' ? '"-"' : quote(route)},"upstream":${upstream === '' ? '"-"' : quote(upstream)},"attempts":${info.attempts}` +
      `,"attempt_us":${times === null ? 'null' : `[${times.join(',')}]`}` +
      `,"bytes_in":${info.bytesIn},"bytes_out":${info.bytesOut},"duration_us":${info.durationUs}` +
      `,"upstream_us":${info.upstreamUs < 0 ? 'null' : info.upstreamUs}` +
      `,"user_agent":${userAgent === null ? 'null' : quote(userAgent)},"trace_id":${traceId === null ? 'null' : `"${traceId}"`}` +
      `,"peer":${req.peer === null ? 'null' : quote(req.peer.id)},"grpc_status":${info.grpcStatus < 0 ? 'null' : info.grpcStatus}` +
      this.suffix
    );
  }
}

/** The access log destinations of one worker, compiled per config snapshot. */
export class AccessLogs {
  /** Key: "stdout" or the absolute path. */
  private destinations = new Map<string, Destination>();

  constructor(
    private readonly worker: number,
    private readonly log: Logger,
  ) {}

  /** Sinks for the listeners that have an access log (by listener name). Opens the paths
   *  that are new, keeps the ones still named, and closes the others (lines of requests
   *  still in flight for a removed log are dropped). */
  compile(listeners: readonly Listener[], grpc: ReadonlyMap<string, GrpcLogTarget> = new Map()): Map<string, AccessLogSink> {
    const sinks = new Map<string, AccessLogSink>();
    const used = new Map<string, Destination>();
    for (const l of listeners) {
      const config = l.access_log;
      if (config === undefined) continue;
      const target = grpc.get(l.name) ?? null;
      const dest = config.path === undefined ? null : this.destination(config.path, l.name, used);
      if (dest === null && target === null) continue;
      let format: AccessLogFormat | null = null;
      try {
        if (dest !== null) format = compileAccessLogFormat(config, { scheme: servesTls(l) ? 'https' : 'http', proxyProtocol: l.proxy_protocol });
      } catch (err) {
        // Validation refuses a format that does not compile; this is a last resort.
        this.log.error({ err, listener: l.name }, 'cannot compile the access log format; the listener logs Remora\'s JSON line');
      }
      sinks.set(l.name, new AccessLogSink(dest, config.sample_ratio, l.name, this.worker, format, target));
    }
    for (const [target, dest] of this.destinations) {
      if (!used.has(target)) void dest.close();
    }
    this.destinations = used;
    return sinks;
  }

  /** The destination for `path` (opened when new or broken, kept in `used`); null when it
   *  cannot be set up. */
  private destination(path: string, listener: string, used: Map<string, Destination>): Destination | null {
    const target = path === 'stdout' ? 'stdout' : resolve(path);
    let dest = used.get(target) ?? this.destinations.get(target);
    if (dest === undefined || dest.isBroken) {
      try {
        dest = new Destination(target, this.log);
      } catch (err) {
        this.log.error({ err, listener, accessLog: target }, 'cannot set up the access log; the listener runs without one');
        return null;
      }
    }
    used.set(target, dest);
    return dest;
  }

  /** Called once a second by the worker: nothing waits longer than that to be written. */
  flush(): void {
    for (const dest of this.destinations.values()) dest.flush();
  }

  /** Writes buffered lines synchronously (before a crashing worker exits). */
  flushSync(): void {
    for (const dest of this.destinations.values()) dest.flushSync();
  }

  /** Writes buffered lines and closes every destination; resolves within about a second
   *  and never rejects. */
  async close(): Promise<void> {
    const all = [...this.destinations.values()];
    this.destinations = new Map();
    await Promise.all(all.map((d) => d.close()));
  }
}
