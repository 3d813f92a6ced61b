// Trace context on the wire: reading the parent context a request carries (W3C
// `traceparent`/`tracestate`, B3 single `b3` and B3 multi `x-b3-*`) and writing the
// context of an upstream attempt in the formats asked for. Pure string work on the flat
// [name, value, ...] header list; one pass over the headers per request.

import type { PropagatorName } from '../config/types.js';

/** A sampling decision carried by the parent: -1 none (defer), 0 not sampled, 1 sampled. */
export type ParentSampled = -1 | 0 | 1;

/** What a request's headers say about its trace. */
export interface ParentContext {
  /** 32 hex digits ('' when the request carries no usable trace id). */
  traceId: string;
  /** The caller's span id (16 hex digits), '' when none. */
  spanId: string;
  sampled: ParentSampled;
  /** W3C tracestate, passed on unchanged ('' when none). */
  traceState: string;
  /** The request came with B3 headers (single or multi): they are written back upstream. */
  b3: 'single' | 'multi' | null;
  /** The request had a traceparent header (valid or not): one is written back upstream. */
  traceparent: boolean;
  /** `x-remora-force-trace` or `x-envoy-force-trace` was sent: trace it. */
  forced: boolean;
  /** The `x-client-trace-id` value ('' when none): traced per client_sampling. */
  clientTraceId: string;
}

/** Trace-context headers, dropped from the upstream head when the listener traces (the
 *  attempt writes its own). tracestate is kept as it came. */
export const TRACE_HEADERS: ReadonlySet<string> = new Set(['traceparent', 'b3', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags']);

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const ZERO32 = '0'.repeat(32);
const ZERO16 = '0'.repeat(16);
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-|$)/;

/** A B3 trace id (16 or 32 hex digits) as 32 hex digits, or '' when invalid. */
function b3TraceId(s: string): string {
  const id = s.length === 16 ? ZERO16 + s : s;
  return HEX32.test(id) && id !== ZERO32 ? id : '';
}

function b3Sampled(s: string | null, flags: string | null): ParentSampled {
  if (flags === '1') return 1; // debug: sampled
  if (s === null) return -1;
  if (s === '1' || s === 'true' || s === 'd') return 1;
  if (s === '0' || s === 'false') return 0;
  return -1;
}

/** Reads a W3C traceparent into `out`; false when it is not a valid one. */
function readTraceparent(value: string, out: ParentContext): boolean {
  const m = TRACEPARENT.exec(value);
  if (m === null || m[1] === 'ff' || m[2] === ZERO32 || m[3] === ZERO16) return false;
  if (m[1] === '00' && value.length !== 55) return false;
  out.traceId = m[2];
  out.spanId = m[3];
  out.sampled = (parseInt(m[4], 16) & 1) === 1 ? 1 : 0;
  return true;
}

/** Reads a B3 single header (`{trace}-{span}[-{sampled}[-{parent}]]`, or only a
 *  sampling state: `0`, `1`, `d`); false when it is not valid. */
function readB3Single(value: string, out: ParentContext): boolean {
  if (value.length === 1) {
    const s = b3Sampled(value, null);
    if (s === -1) return false;
    out.sampled = s;
    out.b3 = 'single';
    return true;
  }
  const parts = value.split('-');
  if (parts.length < 2 || parts.length > 4) return false;
  const traceId = b3TraceId(parts[0]);
  if (traceId === '' || !HEX16.test(parts[1]) || parts[1] === ZERO16) return false;
  out.traceId = traceId;
  out.spanId = parts[1];
  out.sampled = parts.length > 2 ? b3Sampled(parts[2], null) : -1;
  out.b3 = 'single';
  return true;
}

/** The parent context of a request, reading the formats in `order` first (the
 *  configured propagators), then the others; the first valid one wins. Sampling-only
 *  B3 (`b3: 0`, `x-b3-sampled: 1` without ids) gives a decision and no ids. */
export function extractParent(headers: readonly string[], order: readonly PropagatorName[]): ParentContext {
  let traceparent: string | null = null;
  let tracestate: string | null = null;
  let b3: string | null = null;
  let b3Trace: string | null = null;
  let b3Span: string | null = null;
  let b3SampledValue: string | null = null;
  let b3Flags: string | null = null;
  let forced = false;
  let clientTraceId = '';
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    // Trace headers are rare among a request's headers: one length and first-letter
    // test rules most names out.
    const c = name.charCodeAt(0);
    if (c !== 116 && c !== 98 && c !== 120) continue; // t, b, x
    switch (name) {
      case 'traceparent':
        traceparent ??= headers[i + 1];
        break;
      case 'tracestate':
        tracestate = tracestate === null ? headers[i + 1] : `${tracestate},${headers[i + 1]}`;
        break;
      case 'b3':
        b3 ??= headers[i + 1];
        break;
      case 'x-b3-traceid':
        b3Trace ??= headers[i + 1];
        break;
      case 'x-b3-spanid':
        b3Span ??= headers[i + 1];
        break;
      case 'x-b3-sampled':
        b3SampledValue ??= headers[i + 1];
        break;
      case 'x-b3-flags':
        b3Flags ??= headers[i + 1];
        break;
      case 'x-remora-force-trace':
      case 'x-envoy-force-trace':
        forced = true;
        break;
      case 'x-client-trace-id':
        if (clientTraceId === '') clientTraceId = headers[i + 1];
        break;
    }
  }
  const out: ParentContext = { traceId: '', spanId: '', sampled: -1, traceState: '', b3: null, traceparent: traceparent !== null, forced, clientTraceId };
  if (traceparent === null && b3 === null && b3Trace === null && b3SampledValue === null && b3Flags === null) return out;
  const tryFormat = (p: PropagatorName): boolean => {
    switch (p) {
      case 'tracecontext':
        if (traceparent === null || !readTraceparent(traceparent.trim(), out)) return false;
        if (tracestate !== null) out.traceState = tracestate;
        return true;
      case 'b3':
        return b3 !== null && readB3Single(b3.trim().toLowerCase(), out);
      case 'b3multi': {
        if (b3Trace === null) {
          const s = b3Sampled(b3SampledValue, b3Flags);
          if (s === -1) return false;
          out.sampled = s;
          out.b3 = 'multi';
          return true;
        }
        const traceId = b3TraceId(b3Trace.trim().toLowerCase());
        const spanId = b3Span === null ? '' : b3Span.trim().toLowerCase();
        if (traceId === '' || !HEX16.test(spanId) || spanId === ZERO16) return false;
        out.traceId = traceId;
        out.spanId = spanId;
        out.sampled = b3Sampled(b3SampledValue, b3Flags);
        out.b3 = 'multi';
        return true;
      }
    }
  };
  for (const p of order) if (tryFormat(p)) return out;
  for (const p of ALL) if (!order.includes(p) && tryFormat(p)) return out;
  return out;
}

const ALL: readonly PropagatorName[] = ['tracecontext', 'b3', 'b3multi'];

/** Which headers an upstream attempt carries. */
export interface Injection {
  readonly tracecontext: boolean;
  readonly b3: boolean;
  readonly b3multi: boolean;
}

/** The header lines (each ending in CRLF) that carry an attempt's context upstream:
 *  `spanId` is the attempt's (client) span, `parentId` the request's (server) span. */
export function injectionLines(inject: Injection, traceId: string, spanId: string, parentId: string, sampled: boolean): string {
  let out = '';
  if (inject.tracecontext) out += `traceparent: 00-${traceId}-${spanId}-${sampled ? '01' : '00'}\r\n`;
  if (inject.b3multi) out += `x-b3-traceid: ${traceId}\r\nx-b3-spanid: ${spanId}\r\nx-b3-parentspanid: ${parentId}\r\nx-b3-sampled: ${sampled ? '1' : '0'}\r\n`;
  if (inject.b3) out += `b3: ${traceId}-${spanId}-${sampled ? '1' : '0'}-${parentId}\r\n`;
  return out;
}
