// What each access-log format operator (src/config/log-format.ts) prints, for the two
// records a line is made from: a finished HTTP request (StreamInfo) and a finished TCP
// proxy connection (ConnectionRecord). Each operator becomes a getter once per snapshot;
// per line only the getters run. A getter returns null for "not known", which a text
// format prints as `-` and a JSON value that is one operator as `null` (Envoy's rule).

import { hostname } from 'node:os';
import { GRPC_STATUS_FORMATS } from '../src/config/log-format.js';
import { traceIdOfRequest } from '../src/http/trace-context.js';
import { compileTimeFormat, isoTime } from './access-log-time.js';
import type { StreamInfo } from './stream-info.js';

/** One TCP proxy connection, for its access log line. */
export interface ConnectionRecord {
  /** The client's address (the PROXY header's source when the listener reads one). */
  readonly client: string;
  /** The filter chain's name; '' for the listener's own tcp_proxy. */
  readonly chain: string;
  readonly serverName: string;
  readonly cluster: string;
  /** `address:port` of the endpoint last tried; '' when none was. */
  readonly upstream: string;
  readonly attempts: number;
  readonly flags: string;
  /** Bytes from the client, and to it. */
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationUs: number;
  /** What ended it: `downstream` or `upstream` closed, `idle_timeout`, `max_duration`,
   *  `error` (a reset), `refused` (never connected upstream), `drain`. */
  readonly termination: string;
}

/** A value an operator prints: text, a number (stays a number in JSON), or null (`-`). */
export type Value = string | number | null;
export type Getter<R> = (r: R) => Value;

/** What a listener's getters may read besides the record, fixed per snapshot. */
export interface FormatContext {
  /** `:scheme` of its requests: https on a TLS listener. */
  readonly scheme: 'http' | 'https';
  /** The listener reads a PROXY protocol header: the client address is the header's, so
   *  the DIRECT address operators (the socket's peer) are not known. */
  readonly proxyProtocol: boolean;
}

/** What an operator gives a record type. */
export type OperatorGetter<R> = (name: string, arg: string | null, ctx: FormatContext) => Getter<R>;

const none = (): null => null;
const HOSTNAME = hostname();
const orNull = (s: string): string | null => (s === '' ? null : s);

/** gRPC status names by code: Envoy's CAMEL_STRING and SNAKE_STRING. */
const GRPC_CAMEL = ['OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied',
  'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated'];
const GRPC_SNAKE = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

/** An endpoint key (`address:port`, `[v6]:port`: endpointKey) → the address. */
function withoutPort(hostPort: string): string {
  const colon = hostPort.lastIndexOf(':');
  if (colon === -1) return hostPort;
  return hostPort.charCodeAt(0) === 0x5b /* [ */ ? hostPort.slice(1, colon - 1) : hostPort.slice(0, colon);
}

function portOf(hostPort: string): number | null {
  const colon = hostPort.lastIndexOf(':');
  const port = colon === -1 ? NaN : Number(hostPort.slice(colon + 1));
  return Number.isInteger(port) ? port : null;
}

/** Operators that read nothing of the record. */
function constant(name: string, arg: string | null): Getter<unknown> | undefined {
  switch (name) {
    case 'HOSTNAME': return () => HOSTNAME;
    case 'ENVIRONMENT': {
      const value = process.env[arg ?? ''] ?? null;
      return () => value;
    }
    default: return undefined;
  }
}

/** `%START_TIME%` / `%START_TIME(FORMAT)%` of a record that began `durationUs` ago. */
function startTime<R extends { readonly durationUs: number }>(arg: string | null): Getter<R> {
  const format = arg === null || arg === '' ? isoTime : compileTimeFormat(arg);
  return (r) => format(Date.now() - r.durationUs / 1000);
}

// ---------------------------------------------------------------------------
// HTTP requests

/** The trace a request belongs to: the one tracing put it in, else the traceparent Remora
 *  generated, else the request's `traceparent`, else its B3 `x-b3-traceid`; null for none. */
export function traceIdOf(info: StreamInfo): string | null {
  if (info.traceId !== '') return info.traceId;
  const generated = info.generatedTraceparent;
  if (generated !== null) return generated.slice(3, 35);
  return traceIdOfRequest(info.request.headers);
}

function header(name: string): (info: StreamInfo) => string | null {
  return (info) => {
    const h = info.request.headers;
    for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
    return null;
  };
}

/** One name of `%REQ(NAME?ALT)%`: a pseudo-header or a request header. */
function requestField(name: string, ctx: FormatContext, withQuery: boolean): (info: StreamInfo) => string | null {
  switch (name) {
    case ':method': return (info) => info.request.method;
    case ':path': return withQuery ? (info) => (info.request.query === '' ? info.request.path : `${info.request.path}?${info.request.query}`) : (info) => info.request.path;
    case ':authority': return header('host');
    case ':scheme': return () => ctx.scheme;
    // The id Remora used: the client's, or the one it made and sent upstream (as Envoy,
    // whose request headers have it by the time the line is written).
    case 'x-request-id': return (info) => orNull(info.requestId);
    default: {
      if (name.startsWith(':')) return none;
      const get = header(name);
      if (withQuery) return get;
      return (info) => {
        const v = get(info);
        const q = v === null ? -1 : v.indexOf('?');
        return q === -1 ? v : v!.slice(0, q);
      };
    }
  }
}

function request(arg: string, ctx: FormatContext, withQuery: boolean): Getter<StreamInfo> {
  const [first, alt] = arg.toLowerCase().split('?').map((n) => requestField(n, ctx, withQuery));
  if (alt === undefined) return first;
  return (info) => first(info) ?? alt(info);
}

function grpcStatus(format: string): Getter<StreamInfo> {
  if (format === 'NUMBER') return (info) => (info.grpcStatus < 0 ? null : info.grpcStatus);
  const names = format === 'SNAKE_STRING' ? GRPC_SNAKE : GRPC_CAMEL;
  return (info) => (info.grpcStatus < 0 ? null : names[info.grpcStatus] ?? info.grpcStatus);
}

/** What an operator prints for a finished HTTP request. */
export const httpOperator: OperatorGetter<StreamInfo> = (name, arg, ctx) => {
  const c = constant(name, arg);
  if (c !== undefined) return c;
  switch (name) {
    case 'START_TIME': return startTime(arg);
    case 'REQ': return request(arg ?? '', ctx, true);
    case 'REQ_WITHOUT_QUERY': return request(arg ?? '', ctx, false);
    case 'PROTOCOL': return (info) => (info.request.http2 ? 'HTTP/2' : 'HTTP/1.1');
    case 'RESPONSE_CODE': return (info) => info.status;
    case 'RESPONSE_FLAGS': return (info) => info.flags;
    case 'RESPONSE_CODE_DETAILS': return (info) => (info.upstreamStatus !== 0 && info.status === info.upstreamStatus ? 'via_upstream' : null);
    case 'BYTES_RECEIVED': return (info) => info.bytesIn;
    case 'BYTES_SENT': return (info) => info.bytesOut;
    case 'DURATION': return (info) => Math.floor(info.durationUs / 1000);
    case 'UPSTREAM_HOST':
    case 'UPSTREAM_REMOTE_ADDRESS': return (info) => orNull(info.upstreamHost);
    case 'UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT': return (info) => (info.upstreamHost === '' ? null : withoutPort(info.upstreamHost));
    case 'UPSTREAM_REMOTE_PORT': return (info) => portOf(info.upstreamHost);
    case 'UPSTREAM_CLUSTER':
    case 'UPSTREAM_CLUSTER_RAW': return (info) => info.cluster?.name ?? null;
    case 'UPSTREAM_REQUEST_ATTEMPT_COUNT': return (info) => info.attempts;
    case 'UPSTREAM_ATTEMPT_DURATIONS': return (info) => {
      const times = info.attemptTimes;
      if (times === null) return null;
      let out = `${Math.floor(times[0] / 1000)}`;
      for (let i = 1; i < times.length; i++) out += `,${Math.floor(times[i] / 1000)}`;
      return out;
    };
    case 'DOWNSTREAM_REMOTE_ADDRESS':
    case 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT': return (info) => orNull(info.request.remoteAddress);
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS':
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT': return ctx.proxyProtocol ? none : (info) => orNull(info.request.remoteAddress);
    case 'DOWNSTREAM_PEER_URI_SAN': return (info) => {
      const peer = info.request.peer;
      return peer !== null && peer.id.includes('://') ? peer.id : null;
    };
    case 'ROUTE_NAME': return (info) => orNull(info.routeName);
    case 'GRPC_STATUS': return grpcStatus(arg ?? GRPC_STATUS_FORMATS[0]);
    case 'GRPC_STATUS_NUMBER': return grpcStatus('NUMBER');
    case 'TRACE_ID': return traceIdOf;
    case 'REQUEST_ID':
    case 'STREAM_ID': return (info) => orNull(info.requestId);
    default: return none; // the TCP-only operators, and Envoy's that Remora has nothing for
  }
};

// ---------------------------------------------------------------------------
// TCP proxy connections

/** What an operator prints for a finished TCP proxy connection: the connection's
 *  operators; a request's print `-`, and `%RESPONSE_CODE%` 0 (as in Envoy). */
export const tcpOperator: OperatorGetter<ConnectionRecord> = (name, arg, ctx) => {
  const c = constant(name, arg);
  if (c !== undefined) return c;
  switch (name) {
    case 'START_TIME': return startTime(arg);
    case 'RESPONSE_CODE': return () => 0;
    case 'RESPONSE_FLAGS': return (r) => r.flags;
    case 'BYTES_RECEIVED': return (r) => r.bytesIn;
    case 'BYTES_SENT': return (r) => r.bytesOut;
    case 'DURATION': return (r) => Math.floor(r.durationUs / 1000);
    case 'UPSTREAM_HOST':
    case 'UPSTREAM_REMOTE_ADDRESS': return (r) => orNull(r.upstream);
    case 'UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT': return (r) => (r.upstream === '' ? null : withoutPort(r.upstream));
    case 'UPSTREAM_REMOTE_PORT': return (r) => portOf(r.upstream);
    case 'UPSTREAM_CLUSTER':
    case 'UPSTREAM_CLUSTER_RAW': return (r) => orNull(r.cluster);
    case 'UPSTREAM_REQUEST_ATTEMPT_COUNT': return (r) => r.attempts;
    case 'DOWNSTREAM_REMOTE_ADDRESS':
    case 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT': return (r) => orNull(r.client);
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS':
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT': return ctx.proxyProtocol ? none : (r) => orNull(r.client);
    case 'REQUESTED_SERVER_NAME': return (r) => orNull(r.serverName);
    case 'FILTER_CHAIN_NAME': return (r) => orNull(r.chain);
    case 'CONNECTION_TERMINATION_DETAILS': return (r) => orNull(r.termination);
    default: return none;
  }
};
