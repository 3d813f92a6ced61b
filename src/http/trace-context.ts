// Trace context: starting a W3C trace (a new `traceparent` for a request that has none)
// and reading the trace id a request carries (W3C `traceparent`, else B3 `x-b3-traceid`)
// for the access log; new trace and span ids for tracing (src/tracing/). Ids come from a
// pooled buffer of random bytes, refilled rarely.

import { randomFillSync } from 'node:crypto';

/** Bytes per traceparent: 16 (trace id) + 8 (parent/span id). */
const ID_BYTES = 24;
/** Refilled with random bytes when used up: one crypto call per 170 traces. */
const pool = Buffer.alloc(ID_BYTES * 170);
let offset = pool.length;

const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

/** A new sampled traceparent, `00-<32 hex trace id>-<16 hex span id>-01`; neither id is
 *  all zeros (the W3C spec makes those invalid). */
export function newTraceparent(): string {
  return `00-${newTraceId()}-${newSpanId()}-01`;
}

/** `bytes` random bytes from the pool as lower-case hex, never all zeros (`zero`). */
function randomHex(bytes: number, zero: string): string {
  for (;;) {
    if (offset + bytes > pool.length) {
      randomFillSync(pool);
      offset = 0;
    }
    const id = pool.toString('hex', offset, offset + bytes);
    offset += bytes;
    if (id !== zero) return id;
  }
}

/** A new trace id: 32 lower-case hex digits, not all zeros. */
export function newTraceId(): string {
  return randomHex(16, ZERO_TRACE_ID);
}

/** A new span id: 16 lower-case hex digits, not all zeros. */
export function newSpanId(): string {
  return randomHex(8, ZERO_SPAN_ID);
}

/** True when the flat [name, value, ...] header list (lower-case names) has a traceparent. */
export function hasTraceparent(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'traceparent') return true;
  return false;
}

const TRACEPARENT_RE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(?:-|$)/;
const B3_TRACE_ID_RE = /^(?:[0-9a-f]{16}){1,2}$/;

/** The trace id of a `traceparent` value, or null when it is not a valid one (version
 *  ff, all-zero ids, wrong shape; a future version may carry more fields after a `-`). */
export function traceIdOfTraceparent(value: string): string | null {
  const m = TRACEPARENT_RE.exec(value);
  if (m === null || m[1] === 'ff' || m[2] === ZERO_TRACE_ID || m[3] === ZERO_SPAN_ID) return null;
  if (m[1] === '00' && value.length !== 55) return null; // version 00 has exactly four fields
  return m[2];
}

/** A B3 trace id: 16 or 32 lower-case hex digits. */
export function isB3TraceId(value: string): boolean {
  return B3_TRACE_ID_RE.test(value);
}

/** The trace id a request carries: from its first `traceparent` if there is one (null
 *  when that one is invalid), else from `x-b3-traceid` (16 or 32 lower-case hex digits),
 *  else null. `headers` is the flat [name, value, ...] list with lower-case names. */
export function traceIdOfRequest(headers: readonly string[]): string | null {
  let b3: string | null = null;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    if (name === 'traceparent') return traceIdOfTraceparent(headers[i + 1]);
    if (name === 'x-b3-traceid' && b3 === null) b3 = headers[i + 1];
  }
  return b3 !== null && isB3TraceId(b3) ? b3 : null;
}
