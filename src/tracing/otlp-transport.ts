// One OTLP export request on the wire, for the exporter (src/tracing/otlp-exporter.ts):
// OTLP/gRPC through @grpc/grpc-js (TraceService/Export with identity serializers, the
// body is already protobuf) or OTLP/HTTP through node:http(s), and the answer classified
// as OTLP's spec does: success (with the partial-success count of rejected spans),
// retryable (gRPC CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE,
// UNAVAILABLE, DATA_LOSS; HTTP 429, 502, 503, 504; connection errors and timeouts, with
// Retry-After when the server sent one) or not (anything else). Nothing here throws.
// @grpc/grpc-js is loaded when a gRPC transport is made, not with this module: a sidecar
// that does not export spans over gRPC (or at all) never loads it.

import type * as Grpc from '@grpc/grpc-js';
import http from 'node:http';
import https from 'node:https';
import { loadGrpc } from '../core/grpc-module.js';

export type OtlpProtocol = 'grpc' | 'http/protobuf' | 'http/json';

/** How one try ended. */
export type SendResult =
  | { readonly kind: 'ok'; /** Spans the collector rejected (partial success). */ readonly rejected: number; readonly message: string }
  | { readonly kind: 'retry'; readonly reason: string; /** From Retry-After; null when none. */ readonly retryAfterMs: number | null }
  | { readonly kind: 'fail'; readonly reason: string };

export interface OtlpTransport {
  /** Sends one ExportTraceServiceRequest; `done` runs exactly once, unless the returned
   *  cancel function runs first (then never). */
  send(body: Uint8Array | string, timeoutMs: number, done: (r: SendResult) => void): () => void;
  /** Releases connections; a try in flight is cut. */
  close(): void;
}

const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
/** gRPC status codes retried: CANCELLED 1, DEADLINE_EXCEEDED 4, RESOURCE_EXHAUSTED 8,
 *  ABORTED 10, OUT_OF_RANGE 11, UNAVAILABLE 14, DATA_LOSS 15. */
const RETRYABLE_GRPC = new Set<number>([1, 4, 8, 10, 11, 14, 15]);
const RETRYABLE_HTTP = new Set([429, 502, 503, 504]);
/** Response bytes read at most (a success body is a few bytes; an error page may not be). */
const MAX_RESPONSE_BYTES = 64 * 1024;

/** A transport for `protocol` to `endpoint`, or an error message when the endpoint is
 *  not an http(s) URL. */
export function createTransport(protocol: OtlpProtocol, endpoint: string, headers: Readonly<Record<string, string>>): OtlpTransport | string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return `"${endpoint}" is not a URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `"${endpoint}": the scheme must be http or https`;
  return protocol === 'grpc' ? new GrpcTransport(url, headers) : new HttpTransport(url, headers, protocol === 'http/json' ? 'application/json' : 'application/x-protobuf');
}

/** ExportTracePartialSuccess in an ExportTraceServiceResponse (protobuf): field 1
 *  {rejected_spans = 1 (int64), error_message = 2}. Zero when absent or unreadable. */
export function partialSuccessProto(b: Uint8Array): { rejected: number; message: string } {
  const out = { rejected: 0, message: '' };
  try {
    walk(b, 0, b.length, (field, value, start, end) => {
      if (field !== 1 || typeof value !== 'number' || start < 0) return;
      walk(b, start, end, (f, v, s, e) => {
        if (f === 1 && typeof v === 'number' && s < 0) out.rejected = v;
        else if (f === 2 && s >= 0) out.message = Buffer.from(b.buffer, b.byteOffset + s, e - s).toString('utf8');
      });
    });
  } catch {
    return { rejected: 0, message: '' };
  }
  return out;
}

/** Calls `on` for each field of the message in b[from, to): varints as `value` (start -1),
 *  length-delimited as the byte range [start, end). Throws on malformed input. */
function walk(b: Uint8Array, from: number, to: number, on: (field: number, value: number, start: number, end: number) => void): void {
  let p = from;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (p >= to) throw new Error('truncated');
      const byte = b[p++];
      v += (byte & 127) * mul;
      mul *= 128;
      if (byte < 128) return v;
    }
    throw new Error('varint too long');
  };
  while (p < to) {
    const key = varint();
    const field = Math.floor(key / 8);
    switch (key & 7) {
      case 0:
        on(field, varint(), -1, -1);
        break;
      case 1:
        p += 8;
        break;
      case 2: {
        const len = varint();
        if (p + len > to) throw new Error('truncated');
        on(field, len, p, p + len);
        p += len;
        break;
      }
      case 5:
        p += 4;
        break;
      default:
        throw new Error('unsupported wire type');
    }
  }
}

/** partialSuccess in an OTLP/JSON response body. */
function partialSuccessJson(text: string): { rejected: number; message: string } {
  try {
    const ps = (JSON.parse(text) as { partialSuccess?: { rejectedSpans?: string | number; errorMessage?: string } } | null)?.partialSuccess;
    const n = Number(ps?.rejectedSpans ?? 0);
    return { rejected: Number.isFinite(n) && n > 0 ? n : 0, message: typeof ps?.errorMessage === 'string' ? ps.errorMessage : '' };
  } catch {
    return { rejected: 0, message: '' };
  }
}

/** Retry-After: delay-seconds or an HTTP-date; null when absent or unreadable. */
function retryAfterMs(v: string | undefined): number | null {
  if (v === undefined || v.trim() === '') return null;
  const s = Number(v);
  if (Number.isFinite(s)) return s >= 0 ? s * 1000 : null;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

class HttpTransport implements OtlpTransport {
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;

  constructor(
    private readonly url: URL,
    private readonly headers: Readonly<Record<string, string>>,
    private readonly contentType: string,
  ) {
    const tls = url.protocol === 'https:';
    this.agent = tls ? new https.Agent({ keepAlive: true, maxSockets: 1 }) : new http.Agent({ keepAlive: true, maxSockets: 1 });
    this.request = tls ? https.request : http.request;
  }

  send(body: Uint8Array | string, timeoutMs: number, done: (r: SendResult) => void): () => void {
    let finished = false;
    const finish = (r: SendResult): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      done(r);
    };
    let req: http.ClientRequest;
    try {
      req = this.request(this.url, {
        method: 'POST',
        agent: this.agent,
        headers: { ...this.headers, 'content-type': this.contentType, 'content-length': String(typeof body === 'string' ? Buffer.byteLength(body) : body.length) },
      });
    } catch (err) {
      // A header value node:http refuses, say: every try would fail the same way.
      queueMicrotask(() => finish({ kind: 'fail', reason: `request not sent: ${(err as Error).message}` }));
      return () => (finished = true);
    }
    const timer = setTimeout(() => {
      req.destroy();
      finish({ kind: 'retry', reason: `no answer within ${timeoutMs} ms`, retryAfterMs: null });
    }, timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'retry', reason: err.code ?? err.message, retryAfterMs: null }));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < MAX_RESPONSE_BYTES) chunks.push(c);
        size += c.length;
      });
      res.on('error', (err: Error) => finish({ kind: 'retry', reason: err.message, retryAfterMs: null }));
      res.on('close', () => finish({ kind: 'retry', reason: 'the response was cut', retryAfterMs: null })); // after 'end': a no-op
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        const text = Buffer.concat(chunks);
        if (status >= 200 && status < 300) {
          const ps = this.contentType === 'application/json' ? partialSuccessJson(text.toString('utf8')) : partialSuccessProto(text);
          finish({ kind: 'ok', rejected: ps.rejected, message: ps.message });
        } else if (RETRYABLE_HTTP.has(status)) {
          finish({ kind: 'retry', reason: `HTTP ${status}`, retryAfterMs: retryAfterMs(res.headers['retry-after']) });
        } else {
          const detail = text.subarray(0, 200).toString('utf8').replace(/\s+/g, ' ').trim();
          finish({ kind: 'fail', reason: `HTTP ${status}${detail === '' ? '' : `: ${detail}`}` });
        }
      });
    });
    req.end(body);
    return () => {
      finished = true;
      clearTimeout(timer);
      req.destroy();
    };
  }

  close(): void {
    this.agent.destroy();
  }
}

class GrpcTransport implements OtlpTransport {
  private readonly client: Grpc.Client;
  private readonly metadata: Grpc.Metadata;

  constructor(url: URL, headers: Readonly<Record<string, string>>) {
    const grpc = loadGrpc();
    const tls = url.protocol === 'https:';
    const port = url.port !== '' ? url.port : tls ? '443' : '80';
    this.client = new grpc.Client(`${url.hostname}:${port}`, tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure());
    this.metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(headers)) {
      try {
        const key = k.toLowerCase();
        if (key.endsWith('-bin')) this.metadata.set(key, Buffer.from(v, 'base64'));
        else this.metadata.set(key, v);
      } catch {
        // a key gRPC refuses (reserved or malformed) is left out
      }
    }
  }

  send(body: Uint8Array | string, timeoutMs: number, done: (r: SendResult) => void): () => void {
    let finished = false;
    const buf = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    const identity = (b: Buffer): Buffer => b;
    const grpc = loadGrpc();
    let call: Grpc.ClientUnaryCall;
    try {
      call = this.client.makeUnaryRequest(EXPORT_PATH, identity, identity, buf, this.metadata.clone(), { deadline: Date.now() + timeoutMs }, (err, value) => {
        if (finished) return;
        finished = true;
        if (err === null || err === undefined) {
          const ps = value === undefined ? { rejected: 0, message: '' } : partialSuccessProto(value);
          done({ kind: 'ok', rejected: ps.rejected, message: ps.message });
        } else if (RETRYABLE_GRPC.has(err.code)) {
          done({ kind: 'retry', reason: `gRPC ${grpc.status[err.code]}: ${err.details}`, retryAfterMs: null });
        } else {
          done({ kind: 'fail', reason: `gRPC ${grpc.status[err.code] ?? err.code}: ${err.details}` });
        }
      });
    } catch (err) {
      queueMicrotask(() => {
        if (finished) return;
        finished = true;
        done({ kind: 'fail', reason: `request not sent: ${(err as Error).message}` });
      });
      return () => (finished = true);
    }
    return () => {
      finished = true;
      call.cancel();
    };
  }

  close(): void {
    this.client.close();
  }
}
