// A test OTLP collector on 127.0.0.1: OTLP/gRPC (TraceService/Export) and OTLP/HTTP
// (POST /v1/traces, protobuf or JSON), each on its own port 0. Protobuf bodies are decoded
// with OpenTelemetry's own generated code (@opentelemetry/otlp-transformer's root.js,
// protobufjs generated from opentelemetry-proto), never with Remora's encoder, so a test
// checks Remora's bytes against an independent reader. Spans come back normalized
// (ReceivedSpan); a mode (setMode, script) makes it fail, stall or reject like a real
// collector under trouble.

import grpc from '@grpc/grpc-js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';

// --- The official decoder -----------------------------------------------------------------
// root.d.ts types the root as a bare protobufjs Root; these are the parts used here.

/** protobufjs's Long (int64/fixed64 fields decode to it when the `long` package is there). */
interface LongLike {
  toString(): string;
}
type Int64 = number | LongLike;

// This generated code leaves a field that is absent null (its prototype default).
interface PbAnyValue {
  /** Which oneof member is set (protobufjs's oneof getter). */
  readonly value?: 'stringValue' | 'boolValue' | 'intValue' | 'doubleValue' | 'arrayValue' | 'kvlistValue' | 'bytesValue';
  stringValue: string | null;
  boolValue: boolean | null;
  intValue: Int64 | null;
  doubleValue: number | null;
}
interface PbKeyValue {
  key: string | null;
  value: PbAnyValue | null;
}
interface PbSpan {
  traceId: Uint8Array | null;
  spanId: Uint8Array | null;
  traceState: string | null;
  parentSpanId: Uint8Array | null;
  name: string | null;
  kind: number | null;
  startTimeUnixNano: Int64 | null;
  endTimeUnixNano: Int64 | null;
  attributes: PbKeyValue[];
  status: { code: number | null; message: string | null } | null;
}
interface PbRequest {
  resourceSpans: {
    resource: { attributes: PbKeyValue[] } | null;
    scopeSpans: { scope: { name: string | null; version: string | null } | null; spans: PbSpan[] }[];
  }[];
}
interface PbType<T> {
  decode(bytes: Uint8Array): T;
  encode(message: object): { finish(): Uint8Array };
}

const root = createRequire(import.meta.url)('@opentelemetry/otlp-transformer/build/src/generated/root.js') as {
  opentelemetry: {
    proto: {
      collector: { trace: { v1: { ExportTraceServiceRequest: PbType<PbRequest>; ExportTraceServiceResponse: PbType<object> } } };
      trace: { v1: { Span: PbType<PbSpan> } };
    };
  };
};
const TraceV1 = root.opentelemetry.proto.collector.trace.v1;

/** The official protobufjs types (for tests that decode bytes themselves). */
export const OtlpProto = { ExportTraceServiceRequest: TraceV1.ExportTraceServiceRequest, ExportTraceServiceResponse: TraceV1.ExportTraceServiceResponse, Span: root.opentelemetry.proto.trace.v1.Span };

// --- Normalized spans ---------------------------------------------------------------------

export type ReceivedProtocol = 'grpc' | 'http/protobuf' | 'http/json';
export type ReceivedValue = string | number | boolean;

/** A span as received, the same whichever encoding it came in. */
export interface ReceivedSpan {
  /** Lower-case hex ('' when absent). */
  traceId: string;
  spanId: string;
  parentSpanId: string;
  traceState: string;
  name: string;
  kind: number;
  /** Nanoseconds since the Unix epoch. */
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  /** int64 values as numbers. */
  attributes: Record<string, ReceivedValue>;
  /** The attribute value types, by key: 'string' | 'bool' | 'int' | 'double'. */
  attributeTypes: Record<string, string>;
  status: { code: number; message: string };
  resource: Record<string, ReceivedValue>;
  scope: { name: string; version: string };
  protocol: ReceivedProtocol;
}

const hex = (b: Uint8Array | null | undefined): string => (b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex') : '');
const bigintOf = (v: Int64 | string | null | undefined): bigint => (v === undefined || v === null ? 0n : BigInt(v.toString()));

function pbAttributes(kvs: readonly PbKeyValue[]): [Record<string, ReceivedValue>, Record<string, string>] {
  const values: Record<string, ReceivedValue> = {};
  const types: Record<string, string> = {};
  for (const kv of kvs) {
    const v = kv.value;
    const key = kv.key ?? '';
    switch (v?.value) {
      case 'stringValue':
        [values[key], types[key]] = [v.stringValue ?? '', 'string'];
        break;
      case 'boolValue':
        [values[key], types[key]] = [v.boolValue ?? false, 'bool'];
        break;
      case 'intValue':
        [values[key], types[key]] = [Number((v.intValue ?? 0).toString()), 'int'];
        break;
      case 'doubleValue':
        [values[key], types[key]] = [v.doubleValue ?? 0, 'double'];
        break;
      default:
        types[key] = `unsupported:${String(v?.value)}`;
    }
  }
  return [values, types];
}

/** The spans of a decoded protobuf ExportTraceServiceRequest, normalized. */
export function normalizeProto(req: PbRequest, protocol: ReceivedProtocol): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of req.resourceSpans ?? []) {
    const [resource] = pbAttributes(rs.resource?.attributes ?? []);
    for (const ss of rs.scopeSpans ?? []) {
      const scope = { name: ss.scope?.name ?? '', version: ss.scope?.version ?? '' };
      for (const s of ss.spans ?? []) {
        const [attributes, attributeTypes] = pbAttributes(s.attributes ?? []);
        out.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          traceState: s.traceState ?? '',
          name: s.name ?? '',
          kind: s.kind ?? 0,
          startTimeUnixNano: bigintOf(s.startTimeUnixNano),
          endTimeUnixNano: bigintOf(s.endTimeUnixNano),
          attributes,
          attributeTypes,
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          resource,
          scope,
          protocol,
        });
      }
    }
  }
  return out;
}

/** Decodes protobuf bytes with the official decoder and normalizes the spans. */
export function decodeProto(body: Uint8Array, protocol: ReceivedProtocol = 'http/protobuf'): ReceivedSpan[] {
  return normalizeProto(TraceV1.ExportTraceServiceRequest.decode(body), protocol);
}

interface JsonKeyValue {
  key: string;
  value?: { stringValue?: string; boolValue?: boolean; intValue?: string | number; doubleValue?: number | string };
}
interface JsonSpan {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  traceState?: string;
  name?: string;
  kind?: number;
  startTimeUnixNano?: string | number;
  endTimeUnixNano?: string | number;
  attributes?: JsonKeyValue[];
  status?: { code?: number; message?: string };
}
interface JsonRequest {
  resourceSpans?: { resource?: { attributes?: JsonKeyValue[] }; scopeSpans?: { scope?: { name?: string; version?: string }; spans?: JsonSpan[] }[] }[];
}

function jsonAttributes(kvs: readonly JsonKeyValue[]): [Record<string, ReceivedValue>, Record<string, string>] {
  const values: Record<string, ReceivedValue> = {};
  const types: Record<string, string> = {};
  for (const { key, value: v = {} } of kvs) {
    if (v.stringValue !== undefined) [values[key], types[key]] = [v.stringValue, 'string'];
    else if (v.boolValue !== undefined) [values[key], types[key]] = [v.boolValue, 'bool'];
    else if (v.intValue !== undefined) [values[key], types[key]] = [Number(v.intValue), 'int'];
    else if (v.doubleValue !== undefined) [values[key], types[key]] = [Number(v.doubleValue), 'double'];
    else types[key] = 'unsupported';
  }
  return [values, types];
}

/** Parses an OTLP/JSON ExportTraceServiceRequest (ids as hex) and normalizes the spans. */
export function decodeJson(body: string): ReceivedSpan[] {
  const req = JSON.parse(body) as JsonRequest;
  const out: ReceivedSpan[] = [];
  for (const rs of req.resourceSpans ?? []) {
    const [resource] = jsonAttributes(rs.resource?.attributes ?? []);
    for (const ss of rs.scopeSpans ?? []) {
      const scope = { name: ss.scope?.name ?? '', version: ss.scope?.version ?? '' };
      for (const s of ss.spans ?? []) {
        const [attributes, attributeTypes] = jsonAttributes(s.attributes ?? []);
        out.push({
          traceId: (s.traceId ?? '').toLowerCase(),
          spanId: (s.spanId ?? '').toLowerCase(),
          parentSpanId: (s.parentSpanId ?? '').toLowerCase(),
          traceState: s.traceState ?? '',
          name: s.name ?? '',
          kind: s.kind ?? 0,
          startTimeUnixNano: bigintOf(s.startTimeUnixNano),
          endTimeUnixNano: bigintOf(s.endTimeUnixNano),
          attributes,
          attributeTypes,
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          resource,
          scope,
          protocol: 'http/json',
        });
      }
    }
  }
  return out;
}

// --- The receiver ----------------------------------------------------------------------

/** How the receiver answers an export request.
 *  ok: success (with `rejected` > 0: a partial success rejecting that many spans);
 *  unavailable: gRPC UNAVAILABLE / HTTP 503 (retryable), with Retry-After when given;
 *  invalid: gRPC INVALID_ARGUMENT / HTTP 400 (not retryable);
 *  slow: success after `delayMs` (nothing recorded when the client gave up first);
 *  down: HTTP closes the connection without answering; gRPC answers UNAVAILABLE. */
export type ReceiverMode =
  | { kind: 'ok'; rejected?: number }
  | { kind: 'unavailable'; retryAfterS?: number }
  | { kind: 'invalid' }
  | { kind: 'slow'; delayMs: number }
  | { kind: 'down' };

/** One export request as it arrived. */
export interface ReceivedRequest {
  protocol: ReceivedProtocol;
  /** gRPC metadata or HTTP headers, keys lower-case (first value of each). */
  headers: Record<string, string>;
  /** Spans in it (decoded whatever the answer). */
  spans: number;
  /** performance.now() at arrival. */
  at: number;
  /** The mode that answered it. */
  mode: ReceiverMode['kind'];
}

export interface OtlpReceiver {
  /** 0 when not started. */
  readonly grpcPort: number;
  readonly httpPort: number;
  /** http://127.0.0.1:<port> for gRPC, http://127.0.0.1:<port>/v1/traces for HTTP. */
  readonly grpcEndpoint: string;
  readonly httpEndpoint: string;
  /** Spans accepted (answered with success), in arrival order. */
  spans(): ReceivedSpan[];
  /** Every export request received, whatever the answer. */
  readonly requests: ReceivedRequest[];
  /** The mode for requests not covered by a script. */
  setMode(mode: ReceiverMode | ReceiverMode['kind']): void;
  /** The next requests are answered by these modes, in order, then setMode's again. */
  script(modes: readonly (ReceiverMode | ReceiverMode['kind'])[]): void;
  /** Resolves once at least `n` spans were accepted; rejects after `timeoutMs`. */
  waitForSpans(n: number, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

const modeOf = (m: ReceiverMode | ReceiverMode['kind']): ReceiverMode => (typeof m === 'string' ? ({ kind: m, delayMs: 1000 } as ReceiverMode) : m);

export async function startOtlpReceiver(opts: { grpc?: boolean; http?: boolean } = { grpc: true, http: true }): Promise<OtlpReceiver> {
  const accepted: ReceivedSpan[] = [];
  const requests: ReceivedRequest[] = [];
  const waiters = new Set<() => void>();
  let mode: ReceiverMode = { kind: 'ok' };
  let scripted: ReceiverMode[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const nextMode = (): ReceiverMode => scripted.shift() ?? mode;
  const accept = (spans: ReceivedSpan[]): void => {
    accepted.push(...spans);
    for (const w of [...waiters]) w();
  };
  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const responseBytes = (rejected: number | undefined): Buffer =>
    Buffer.from(TraceV1.ExportTraceServiceResponse.encode(rejected ? { partialSuccess: { rejectedSpans: rejected, errorMessage: 'test rejects' } } : {}).finish());

  // gRPC
  let grpcServer: grpc.Server | null = null;
  let grpcPort = 0;
  if (opts.grpc) {
    grpcServer = new grpc.Server();
    const identity = (b: Buffer): Buffer => b;
    grpcServer.addService(
      {
        Export: {
          path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
          requestStream: false,
          responseStream: false,
          requestSerialize: identity,
          requestDeserialize: identity,
          responseSerialize: identity,
          responseDeserialize: identity,
        },
      },
      {
        Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          let spans: ReceivedSpan[];
          try {
            spans = decodeProto(call.request, 'grpc');
          } catch (err) {
            callback({ code: grpc.status.INVALID_ARGUMENT, details: `undecodable: ${String(err)}` });
            return;
          }
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(call.metadata.getMap())) headers[k] = String(v);
          const m = nextMode();
          requests.push({ protocol: 'grpc', headers, spans: spans.length, at: performance.now(), mode: m.kind });
          switch (m.kind) {
            case 'ok':
              accept(spans);
              callback(null, responseBytes(m.rejected));
              return;
            case 'unavailable':
            case 'down':
              callback({ code: grpc.status.UNAVAILABLE, details: 'test collector unavailable' });
              return;
            case 'invalid':
              callback({ code: grpc.status.INVALID_ARGUMENT, details: 'test collector rejects' });
              return;
            case 'slow':
              later(m.delayMs, () => {
                if (call.cancelled) return;
                accept(spans);
                callback(null, responseBytes(undefined));
              });
          }
        },
      },
    );
    grpcPort = await new Promise<number>((resolve, reject) =>
      grpcServer!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
  }

  // HTTP
  let httpServer: http.Server | null = null;
  let httpPort = 0;
  if (opts.http) {
    httpServer = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method !== 'POST' || req.url !== '/v1/traces') {
          res.writeHead(404).end();
          return;
        }
        const type = (req.headers['content-type'] ?? '').split(';')[0].trim();
        const json = type === 'application/json';
        if (!json && type !== 'application/x-protobuf') {
          res.writeHead(415).end();
          return;
        }
        let spans: ReceivedSpan[];
        try {
          const body = Buffer.concat(chunks);
          spans = json ? decodeJson(body.toString('utf8')) : decodeProto(body, 'http/protobuf');
        } catch (err) {
          res.writeHead(400, { 'content-type': 'text/plain' }).end(`undecodable: ${String(err)}`);
          return;
        }
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v[0] : String(v);
        const m = nextMode();
        requests.push({ protocol: json ? 'http/json' : 'http/protobuf', headers, spans: spans.length, at: performance.now(), mode: m.kind });
        const ok = (rejected: number | undefined): void => {
          accept(spans);
          if (json) res.writeHead(200, { 'content-type': 'application/json' }).end(rejected ? JSON.stringify({ partialSuccess: { rejectedSpans: String(rejected), errorMessage: 'test rejects' } }) : '{}');
          else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(responseBytes(rejected));
        };
        switch (m.kind) {
          case 'ok':
            ok(m.rejected);
            return;
          case 'unavailable':
            res.writeHead(503, m.retryAfterS !== undefined ? { 'retry-after': String(m.retryAfterS) } : {}).end('unavailable');
            return;
          case 'invalid':
            res.writeHead(400, { 'content-type': 'text/plain' }).end('rejected');
            return;
          case 'down':
            req.socket.destroy();
            return;
          case 'slow':
            later(m.delayMs, () => {
              if (res.destroyed || req.socket.destroyed) return;
              ok(undefined);
            });
        }
      });
    });
    await new Promise<void>((resolve) => httpServer!.listen(0, '127.0.0.1', resolve));
    httpPort = (httpServer.address() as AddressInfo).port;
  }

  return {
    grpcPort,
    httpPort,
    grpcEndpoint: `http://127.0.0.1:${grpcPort}`,
    httpEndpoint: `http://127.0.0.1:${httpPort}/v1/traces`,
    spans: () => accepted.slice(),
    requests,
    setMode(m) {
      mode = modeOf(m);
    },
    script(modes) {
      scripted = modes.map(modeOf);
    },
    waitForSpans(n, timeoutMs = 5000) {
      if (accepted.length >= n) return Promise.resolve(accepted.slice());
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (accepted.length < n) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(accepted.slice());
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`waited ${timeoutMs} ms for ${n} spans; got ${accepted.length} (${requests.length} requests)`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      grpcServer?.forceShutdown();
      if (httpServer) {
        httpServer.closeAllConnections();
        await new Promise<void>((resolve) => httpServer!.close(() => resolve()));
      }
    },
  };
}
