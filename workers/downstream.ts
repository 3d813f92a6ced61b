// The seam between a front end (the strict HTTP/1 codec on node:http/https, uWS where
// chosen, HTTP/2 on node:http2) and the request pipeline. The pipeline only sees this interface.

import type { PeerIdentity } from '../src/tls/peer-identity.js';

/** Everything the pipeline needs from the request, read once when it arrives. */
export interface DownstreamRequest {
  readonly method: string; // upper-case
  readonly path: string; // raw path, no query
  readonly query: string; // raw query without '?', '' when none
  /** Flat [name, value, ...], lower-case names, in arrival order. */
  readonly headers: string[];
  readonly remoteAddress: string;
  /** The request came over HTTP/2 (else HTTP/1.x). */
  readonly http2: boolean;
  /** The verified client certificate's identity (mTLS listeners); null without one. */
  readonly peer: PeerIdentity | null;
  /** The front end refused the head (bad Host, target, header count, path...): the
   *  pipeline answers with this and closes the connection; null for a good head. */
  readonly refusal: RequestRefusal | null;
}

/** A head the front end will not let through, and how to answer it. */
export interface RequestRefusal {
  readonly status: number;
  readonly reason: string;
  /** For a redirect (307): where to. */
  readonly location?: string;
}

/** Response side of one downstream exchange. Calls after `aborted` turns true are no-ops. */
export interface Downstream {
  readonly aborted: boolean;
  /** The front end writes `date` itself (uWS): the pipeline must not write one. */
  readonly writesDate: boolean;
  /** Runs fn with writes batched into one syscall. */
  cork(fn: () => void): void;
  writeStatus(status: number, reason: string): void;
  writeHeader(name: string, value: string): void;
  /** Writes body bytes. `totalSize` is the whole body's length, or -1 when unknown (the
   *  front end then frames it chunked). Returns false when the front end holds data it
   *  could not send yet; `onDrain` is called when it has. The chunk may be reused by the
   *  caller after the call returns. */
  write(chunk: Uint8Array, totalSize: number): boolean;
  /** Trailers to send after a body of unknown length (flat [name, value, ...], lower-case
   *  names); called before end(). Front ends that cannot carry them drop them (uWS;
   *  HTTP/1.1 sends them only on a chunked response). */
  writeTrailers(trailers: readonly string[]): void;
  /** Ends a body of unknown length. */
  end(): void;
  /** Ends a response that has no body: `reportedLength` is the Content-Length to
   *  announce (HEAD), or -1 for none (204, 304). */
  endWithoutBody(reportedLength: number): void;
  /** Status, headers and a small whole body in one go (local replies). `headOnly`:
   *  announce the body's length but send no body (a HEAD request). */
  respond(
    status: number,
    reason: string,
    headers: readonly string[],
    body: string,
    closeConnection: boolean,
    headOnly: boolean,
  ): void;
  /** Drops the connection: used when a response cannot be completed honestly. */
  close(): void;
  pauseRequestBody(): void;
  resumeRequestBody(): void;
}

/** What the pipeline hands the front end to hear back from it. */
export interface DownstreamEvents {
  onAbort(): void;
  onDrain(): void;
  /** A piece of the request body; the buffer is the pipeline's to keep. */
  onRequestBody(chunk: Buffer, isLast: boolean): void;
  /** The request body broke its framing (the codec will read nothing more of it). */
  onRequestBodyError(reason: string): void;
}
