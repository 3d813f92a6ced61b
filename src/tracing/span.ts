// A finished span as a worker records it: ids in lower-case hex (as they travel in
// headers), times in microseconds since the Unix epoch, attributes as a flat
// [key, value, ...] list. Encoded to OTLP (protobuf or JSON) in batches off the request
// path (src/tracing/otlp-encode.ts), never one by one.

/** OTLP span kinds Remora records. */
export const enum SpanKind {
  Server = 2,
  Client = 3,
}

/** OTLP status codes. */
export const enum SpanStatus {
  Unset = 0,
  Ok = 1,
  Error = 2,
}

/** An attribute value: a string, an integer (int64 in OTLP; a JS number that is an
 *  integer), a double (a number that is not one) or a boolean. */
export type AttributeValue = string | number | boolean;

export interface SpanRecord {
  /** 32 lower-case hex digits, never all zeros. */
  readonly traceId: string;
  /** 16 lower-case hex digits, never all zeros. */
  readonly spanId: string;
  /** 16 hex digits, or '' for a root span. */
  readonly parentSpanId: string;
  /** The W3C tracestate passed with the context ('' when none). */
  readonly traceState: string;
  readonly name: string;
  readonly kind: SpanKind;
  /** Microseconds since the Unix epoch. */
  readonly startUs: number;
  readonly endUs: number;
  /** Flat [key, value, key, value, ...]: keys are strings. */
  readonly attributes: readonly (string | AttributeValue)[];
  readonly status: SpanStatus;
  /** Status message (only with SpanStatus.Error; '' when none). */
  readonly statusMessage: string;
}

/** Microseconds since the Unix epoch for a performance.now() reading. */
export function epochUs(perfNow: number): number {
  return Math.round((performance.timeOrigin + perfNow) * 1000);
}
