// Open-loop (fixed-rate) HTTP/1.1 load generator with microsecond latency.
// Requests are scheduled at t0 + i/rate; latency runs from the scheduled send time to
// the last byte of the response, so a stalled server is charged for the requests it
// delayed (coordinated omission corrected). Keep-alive connections, one request in
// flight per connection; if none is free at a send time the request waits (and its
// wait counts). Uses Remora's own response parser for framing.

import net from 'node:net';
import * as hdr from 'hdr-histogram-js';
import { ResponseParser, type ResponseHandler } from '../../src/upstream/http1-parser.js';

export interface OpenLoopOptions {
  readonly port: number;
  readonly rate: number; // requests per second
  readonly durationMs: number;
  readonly connections: number;
  readonly path?: string;
  readonly warmupMs?: number;
  /** Called for each measured request that succeeded, when its response completes:
   *  `sentAtMs` is its scheduled send time (performance.now() clock, ms), `latencyUs` its
   *  latency in µs (the histogram records it rounded to whole µs). */
  readonly onSample?: (sentAtMs: number, latencyUs: number) => void;
}

/** Microseconds. */
export interface LatencyPercentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

export interface LatencySummary extends LatencyPercentiles {
  readonly requests: number;
  readonly errors: number;
  readonly achievedRate: number;
}

class Conn implements ResponseHandler {
  readonly socket: net.Socket;
  private readonly parser = new ResponseParser();
  scheduledAt = 0;
  busy = false;
  onDone: (conn: Conn, ok: boolean) => void = () => {};

  constructor(port: number) {
    this.socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    this.socket.on('data', (buf) => {
      try {
        this.parser.execute(buf);
      } catch {
        this.finish(false);
      }
    });
    this.socket.on('error', () => this.finish(false));
  }

  send(head: string, scheduledAt: number): void {
    this.busy = true;
    this.scheduledAt = scheduledAt;
    this.parser.start(this, false);
    this.socket.write(head);
  }

  onHead(): void {}
  onBody(): void {}
  onComplete(): void {
    this.finish(true);
  }

  private finish(ok: boolean): void {
    if (!this.busy) return;
    this.busy = false;
    this.onDone(this, ok);
  }
}

export async function runOpenLoop(opts: OpenLoopOptions): Promise<LatencySummary> {
  const head = `GET ${opts.path ?? '/'} HTTP/1.1\r\nhost: bench\r\n\r\n`;
  const conns = Array.from({ length: opts.connections }, () => new Conn(opts.port));
  await Promise.all(conns.map((c) => new Promise((r) => c.socket.once('connect', r))));

  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const free: Conn[] = conns.slice();
  const waiting: number[] = []; // scheduled times of requests waiting for a connection
  let waitHead = 0;
  let completed = 0;
  let errors = 0;
  const warmupMs = opts.warmupMs ?? 500;
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + opts.durationMs;
  const intervalMs = 1000 / opts.rate;
  let nextSend = start;

  const onSample = opts.onSample;
  const done = (conn: Conn, ok: boolean): void => {
    const now = performance.now();
    if (conn.scheduledAt >= measureFrom) {
      if (ok) {
        const us = (now - conn.scheduledAt) * 1000;
        histogram.recordValue(Math.max(1, Math.round(us)));
        onSample?.(conn.scheduledAt, us);
        completed++;
      } else {
        errors++;
      }
    }
    if (waitHead < waiting.length) conn.send(head, waiting[waitHead++]);
    else free.push(conn);
  };
  for (const c of conns) c.onDone = done;

  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      while (nextSend <= now && nextSend < end) {
        const conn = free.pop();
        if (conn !== undefined) conn.send(head, nextSend);
        else waiting.push(nextSend);
        nextSend += intervalMs;
      }
      if (nextSend >= end) {
        const drain = (): void => {
          if (free.length === conns.length || performance.now() > end + 5000) resolve();
          else setTimeout(drain, 5);
        };
        drain();
        return;
      }
      // setImmediate keeps the schedule tight (timers have ~1 ms granularity).
      setImmediate(tick);
    };
    tick();
  });
  for (const c of conns) c.socket.destroy();
  return {
    requests: completed,
    errors,
    achievedRate: completed / (opts.durationMs / 1000),
    p50: histogram.getValueAtPercentile(50),
    p90: histogram.getValueAtPercentile(90),
    p99: histogram.getValueAtPercentile(99),
    p999: histogram.getValueAtPercentile(99.9),
    max: histogram.maxValue,
    mean: Math.round(histogram.mean),
  };
}
