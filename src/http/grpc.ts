// gRPC over HTTP as a proxy sees it (the gRPC HTTP/2 protocol spec): recognising a gRPC
// request, reading its `grpc-timeout`, and answering one locally the way a gRPC client
// understands — HTTP 200 with a trailers-only response whose `grpc-status` says what
// happened (Envoy's mapping from HTTP status, with an upstream timeout as
// DEADLINE_EXCEEDED) and `grpc-message` saying why.

import { ResponseFlag } from '../core/flags.js';

/** gRPC status codes Remora answers with. */
export const GrpcStatus = {
  Unknown: 2,
  DeadlineExceeded: 4,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  Unauthenticated: 16,
} as const;

/** Whether a content-type value is gRPC's (`application/grpc`, `application/grpc+proto`, …). */
export function isGrpcContentType(value: string): boolean {
  return value.startsWith('application/grpc') && (value.length === 16 || value.charCodeAt(16) === 0x2b /* + */ || value.charCodeAt(16) === 0x3b /* ; */);
}

/** The gRPC status for a local reply of HTTP `status` with response flag `flag`
 *  (Envoy's Grpc::Utility::httpToGrpcStatus; an upstream timeout is a deadline). */
export function grpcStatusFor(status: number, flag: string): number {
  if (flag === ResponseFlag.UpstreamRequestTimeout) return GrpcStatus.DeadlineExceeded;
  switch (status) {
    case 400:
      return GrpcStatus.Internal;
    case 401:
      return GrpcStatus.Unauthenticated;
    case 403:
      return GrpcStatus.PermissionDenied;
    case 404:
      return GrpcStatus.Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.Unavailable;
    default:
      return GrpcStatus.Unknown;
  }
}

/** `grpc-message` encoding: bytes outside printable ASCII, and `%`, percent-encoded. */
export function grpcMessage(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Headers of a trailers-only gRPC local reply (sent with HTTP status 200). */
export function grpcLocalReplyHeaders(
  status: number,
  flag: string,
  reason: string,
  flags: string,
  requestId: string,
  extra: readonly string[] | null,
  routeAdd: readonly string[] | null,
): string[] {
  const headers = [
    'content-type', 'application/grpc',
    'grpc-status', String(grpcStatusFor(status, flag)),
    'grpc-message', grpcMessage(reason),
    'x-remora-flags', flags,
    'x-request-id', requestId,
  ];
  if (extra !== null) for (let i = 0; i < extra.length; i++) headers.push(extra[i]);
  if (routeAdd !== null) for (let i = 0; i < routeAdd.length; i++) headers.push(routeAdd[i]);
  return headers;
}

/** The grpc-status in a flat header list, or -1 when there is none (or it is not a number). */
export function grpcStatusOf(headers: readonly string[]): number {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] === 'grpc-status') {
      const n = Number(headers[i + 1]);
      return Number.isInteger(n) && n >= 0 ? n : -1;
    }
  }
  return -1;
}

/** A `grpc-timeout` value (`1..8 digits` + unit H, M, S, m, u, n) in whole milliseconds,
 *  rounded up; null when malformed (ignored, as Envoy does). */
export function grpcTimeoutMs(value: string): number | null {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value.trim());
  if (m === null) return null;
  const n = Number(m[1]);
  switch (m[2]) {
    case 'H':
      return n * 3_600_000;
    case 'M':
      return n * 60_000;
    case 'S':
      return n * 1000;
    case 'm':
      return n;
    case 'u':
      return Math.ceil(n / 1000);
    default:
      return Math.ceil(n / 1_000_000);
  }
}
