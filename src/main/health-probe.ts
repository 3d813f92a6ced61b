// One active health check probe: `GET <path>` on an endpoint over a keep-alive agent
// (its body searched for the `receive` blocks when there are some), with a deadline,
// one retry when a pooled connection turns out to have been closed by the upstream, and
// a result that says why it failed (timeout, network, status). The scheduling and the
// verdicts live in health-checker.ts.

import http from 'node:http';
import https from 'node:https';
import type { HealthCheck } from '../config/types.js';
import { containsInOrder, payloadBytes } from './health-payload.js';

export type FailureKind = 'timeout' | 'network' | 'status';

export interface ProbeResult {
  readonly pass: boolean;
  readonly status: number;
  readonly error: string;
  readonly kind: FailureKind | null;
}

export interface ProbeTarget {
  readonly address: string;
  readonly port: number;
  readonly agent: http.Agent;
  /** Whether `agent` is an https.Agent. */
  readonly tls: boolean;
}

/** A running probe; cancel() ends it without a result (endpoint removed, stop). */
export interface RunningProbe {
  cancel(): void;
}

const USER_AGENT = 'remora-health-check';
/** Errors that mean a reused keep-alive connection had been closed by the upstream. */
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE']);

/** Whether `status` falls in one of the [start, end) ranges. */
export function statusExpected(status: number, ranges: HealthCheck['expected_statuses']): boolean {
  for (const [start, end] of ranges) if (status >= start && status < end) return true;
  return false;
}

export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== undefined && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** Starts one probe; `done` is called exactly once unless the probe is cancelled. */
export function probe(target: ProbeTarget, settings: HealthCheck, done: (result: ProbeResult) => void): RunningProbe {
  let finished = false;
  let current: http.ClientRequest | null = null;
  const deadline = setTimeout(() => {
    finish({ pass: false, status: 0, error: `timeout after ${settings.timeout_ms} ms`, kind: 'timeout' });
  }, settings.timeout_ms);
  deadline.unref();

  function finish(result: ProbeResult): void {
    if (finished) return;
    finished = true;
    clearTimeout(deadline);
    const req = current;
    current = null;
    // A timed-out request (or one whose body broke) must not leave its socket in use.
    if (req !== null && result.kind !== null) req.destroy();
    done(result);
  }

  const send = (retried: boolean): void => {
    const req = (target.tls ? https : http).request({
      host: target.address,
      port: target.port,
      method: 'GET',
      path: settings.path,
      agent: target.agent,
      headers: { host: settings.host, 'user-agent': USER_AGENT, connection: 'keep-alive' },
    });
    current = req;
    req.on('socket', (socket) => {
      // The main thread's other work keeps the process alive; checks never should.
      socket.unref();
    });
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      res.on('error', (err: Error) => {
        finish({ pass: false, status, error: `response error: ${describeError(err)}`, kind: 'network' });
      });
      res.on('aborted', () => {
        finish({ pass: false, status, error: 'response aborted', kind: 'network' });
      });
      // With `receive`, the body's first response_buffer_size bytes are kept to search.
      const body: Buffer[] = [];
      let kept = 0;
      res.on('end', () => {
        const pass = statusExpected(status, settings.expected_statuses);
        if (pass && settings.receive.length > 0 && !containsInOrder(Buffer.concat(body), payloadBytes(settings.receive))) {
          finish({ pass: false, status, error: `status ${status}, but the body's first ${settings.response_buffer_size} bytes lack the expected payload`, kind: 'status' });
          return;
        }
        finish({ pass, status, error: pass ? '' : `status ${status}`, kind: pass ? null : 'status' });
      });
      if (settings.receive.length > 0) {
        res.on('data', (chunk: Buffer) => {
          if (kept >= settings.response_buffer_size) return;
          const part = chunk.subarray(0, settings.response_buffer_size - kept);
          body.push(part);
          kept += part.length;
        });
      } else res.resume();
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (finished || current !== req) return;
      // A pooled connection the upstream closed while idle: try once on a new one.
      if (!retried && req.reusedSocket && err.code !== undefined && STALE_SOCKET_CODES.has(err.code)) {
        try {
          send(true);
        } catch (e) {
          finish({ pass: false, status: 0, error: describeError(e), kind: 'network' });
        }
        return;
      }
      finish({ pass: false, status: 0, error: describeError(err), kind: 'network' });
    });
    req.end();
  };

  try {
    send(false);
  } catch (err) {
    finish({ pass: false, status: 0, error: describeError(err), kind: 'network' });
  }
  return {
    cancel(): void {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      const req = current;
      current = null;
      if (req !== null) req.destroy();
    },
  };
}
