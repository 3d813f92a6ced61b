// What the pipeline reads from a downstream request head before routing it: Host,
// framing (Content-Length / Transfer-Encoding), Connection tokens, x-request-id and the
// retry/timeout control headers, with the checks that make a head unforwardable (bad
// values, conflicting lengths, unknown transfer codings, too many header bytes). Pure:
// one pass over the flat header list; the caller turns a refusal into a local reply.

import { isGrpcContentType } from './grpc.js';
import { isValidHeaderValue, parseContentLength } from './headers.js';

/** How a message body is framed on the upstream wire: none, Content-Length, chunked. The
 *  head builder writes the matching header and the connection frames the bytes; the
 *  request lifecycle only asks whether there is a body. */
export type BodyFraming = 'none' | 'fixed' | 'chunked';

/** A head that cannot be forwarded: answered with `status` (flag DPE), connection closed. */
export interface FactsRefusal {
  readonly status: number;
  readonly reason: string;
}

export class RequestFacts {
  /** The Host header ('' when absent). */
  host = '';
  /** Content-Length, or -1 when absent. */
  contentLength = -1;
  framing: BodyFraming = 'none';
  /** Connection header values joined with ", ", or null. */
  connection: string | null = null;
  /** The client's x-request-id, or '' (the caller makes one). Set as far as the scan got
   *  when the head is refused. */
  requestId = '';
  // Control headers (x-remora-* and Envoy's x-envoy-* names), honoured when the route's
  // retry policy sets allow_request_headers; never forwarded (upstream-request-head.ts).
  retryOn: string | null = null;
  maxRetries: string | null = null;
  perTryTimeout: string | null = null;
  rqTimeout: string | null = null;
  /** A gRPC request (content-type application/grpc…). */
  grpc = false;
  /** The request's grpc-timeout, honoured when the route sets grpc_timeout_header_max_ms. */
  grpcTimeout: string | null = null;
  /** Why the head cannot be forwarded, or null. */
  refusal: FactsRefusal | null = null;

  get hasBody(): boolean {
    return this.framing !== 'none';
  }
}

/** Reads `headers` (flat [name, value, ...], lower-case names). `maxHeadBytes`: the
 *  listener's max_request_headers_kb in bytes, counted over the request line and
 *  headers as they came (": " and CRLFs included). */
export function readRequestFacts(method: string, path: string, query: string, headers: readonly string[], maxHeadBytes: number): RequestFacts {
  const f = new RequestFacts();
  let transferEncoding: string | null = null;
  let headBytes = method.length + path.length + query.length + 12;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    const value = headers[i + 1];
    headBytes += name.length + value.length + 4;
    if (!isValidHeaderValue(value)) return refuse(f, 400, `invalid value in header ${name}`);
    switch (name) {
      case 'host':
        if (f.host !== '' && f.host !== value) return refuse(f, 400, 'more than one host header');
        f.host = value;
        break;
      case 'content-length': {
        const n = parseContentLength(value);
        if (n < 0) return refuse(f, 400, 'invalid content-length');
        if (f.contentLength >= 0 && n !== f.contentLength) return refuse(f, 400, 'conflicting content-length headers');
        f.contentLength = n;
        break;
      }
      case 'transfer-encoding':
        transferEncoding = transferEncoding === null ? value : `${transferEncoding}, ${value}`;
        break;
      case 'connection':
        f.connection = f.connection === null ? value : `${f.connection}, ${value}`;
        break;
      case 'x-request-id':
        f.requestId = value;
        break;
      case 'x-remora-retry-on':
      case 'x-envoy-retry-on':
        f.retryOn = f.retryOn === null ? value : `${f.retryOn},${value}`;
        break;
      case 'x-remora-max-retries':
      case 'x-envoy-max-retries':
        f.maxRetries = value;
        break;
      case 'x-remora-upstream-rq-timeout-ms':
      case 'x-envoy-upstream-rq-timeout-ms':
        f.rqTimeout = value;
        break;
      case 'content-type':
        if (isGrpcContentType(value)) f.grpc = true;
        break;
      case 'grpc-timeout':
        f.grpcTimeout = value;
        break;
      case 'x-remora-upstream-rq-per-try-timeout-ms':
      case 'x-envoy-upstream-rq-per-try-timeout-ms':
        f.perTryTimeout = value;
        break;
    }
  }
  if (headBytes > maxHeadBytes) return refuse(f, 431, `request headers larger than ${maxHeadBytes / 1024} KiB`);
  if (transferEncoding !== null) {
    if (f.contentLength >= 0) return refuse(f, 400, 'both content-length and transfer-encoding');
    if (transferEncoding.trim().toLowerCase() !== 'chunked') return refuse(f, 501, `transfer-encoding "${transferEncoding}" not supported`);
    f.framing = 'chunked';
  } else if (f.contentLength > 0) {
    f.framing = 'fixed';
  }
  return f;
}

function refuse(f: RequestFacts, status: number, reason: string): RequestFacts {
  f.refusal = { status, reason };
  return f;
}

/**
 * The listener's headers_with_underscores_action on a request's flat header list:
 * 'allow' leaves it; 'drop_header' removes (in place) every header whose name contains
 * `_`; 'reject_request' leaves it and returns true when there is one (the caller answers
 * 400). Costs one scan of the names, and nothing more when none has an underscore.
 */
export function underscoreHeaders(action: 'allow' | 'reject_request' | 'drop_header', headers: string[]): boolean {
  if (action === 'allow') return false;
  let first = -1;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i].includes('_')) {
      first = i;
      break;
    }
  }
  if (first < 0) return false;
  if (action === 'reject_request') return true;
  let out = first;
  for (let i = first; i < headers.length; i += 2) {
    if (headers[i].includes('_')) continue;
    headers[out] = headers[i];
    headers[out + 1] = headers[i + 1];
    out += 2;
  }
  headers.length = out;
  return false;
}
