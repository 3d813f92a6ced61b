// The request head sent upstream, built from the downstream request (Envoy's router
// does the same work in its header finalisation): hop-by-hop and Connection-listed
// headers dropped, Remora's and Envoy's control headers consumed, Host (or the route's
// host_rewrite), x-forwarded-for/-proto/-host, x-forwarded-client-cert per the
// listener's mode, x-request-id, a new traceparent when asked, the route's header edits,
// and the body framing header. Pure: strings in, one string out; the route's edits were
// compiled when the snapshot was applied (src/router/route-table.ts).

import type { XfccMode } from '../config/types.js';
import type { PeerIdentity } from '../tls/peer-identity.js';
import { connectionTokens, isHopByHop } from './headers.js';
import type { BodyFraming } from './request-facts.js';
import { TRACE_HEADERS } from '../tracing/propagation.js';
import { applyRegexRewrite, type CompiledRegexRewrite } from '../router/regex-rewrite.js';

/** What the head builder reads from the downstream request. */
export interface UpstreamRequestInput {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  /** Flat [name, value, ...], lower-case names. */
  readonly headers: readonly string[];
  readonly remoteAddress: string;
  readonly peer: PeerIdentity | null;
}

/** The route's part (a CompiledRoute fits). */
export interface UpstreamRouteHead {
  readonly prefixRewrite: string | null;
  readonly regexRewrite: CompiledRegexRewrite | null;
  /** The matched prefix, replaced by prefixRewrite. */
  readonly pathValue: string;
  readonly hostRewrite: string | null;
  readonly requestHeadersToRemove: ReadonlySet<string> | null;
  /** Flat [name, value, ...]. */
  readonly requestHeadersToAdd: readonly string[];
}

/** The listener's part (a ListenerRuntime fits). */
export interface UpstreamListenerHead {
  readonly scheme: 'http' | 'https';
  readonly xfcc: XfccMode;
}

/** What the request's own head said (request-facts.ts). */
export interface UpstreamFraming {
  readonly host: string;
  readonly contentLength: number;
  readonly connection: string | null;
  readonly framing: BodyFraming;
}

/** Whether to start a W3C trace for this request: the listener generates traceparents,
 *  the request carries none, and the route does not remove it. */
export function startsTrace(generate: boolean, remove: ReadonlySet<string> | null, headers: readonly string[]): boolean {
  if (!generate || (remove !== null && remove.has('traceparent'))) return false;
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'traceparent') return false;
  return true;
}

/** The upstream request head, ending in CRLFCRLF. `traceparent`: the one to add (see
 *  startsTrace), or null. `traced`: the listener traces, so the request's trace-context
 *  headers are left out (each attempt writes its own; tracestate stays). `hostRewrite`:
 *  the picked weighted cluster's, over the route's. */
export function buildUpstreamRequestHead(
  req: UpstreamRequestInput,
  facts: UpstreamFraming,
  route: UpstreamRouteHead,
  listener: UpstreamListenerHead,
  requestId: string,
  traceparent: string | null,
  traced = false,
  hostRewrite: string | null = null,
): string {
  let path = req.path;
  if (route.prefixRewrite !== null) path = route.prefixRewrite + path.slice(route.pathValue.length);
  else if (route.regexRewrite !== null) path = applyRegexRewrite(route.regexRewrite, path);
  const host = facts.host;
  let head = `${req.method} ${path}${req.query.length > 0 ? '?' + req.query : ''} HTTP/1.1\r\nhost: ${hostRewrite ?? route.hostRewrite ?? host}\r\n`;
  const dropped = facts.connection !== null ? connectionTokens(facts.connection) : null;
  const remove = route.requestHeadersToRemove;
  let forwardedFor = '';
  let clientXfcc = '';
  let hasRequestId = false;
  const headers = req.headers;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    switch (name) {
      case 'host':
      case 'content-length':
      case 'x-forwarded-proto':
      case 'x-forwarded-host':
      // Envoy's router control headers: consumed (when trusted), never forwarded.
      case 'x-envoy-retry-on':
      case 'x-envoy-retry-grpc-on':
      case 'x-envoy-max-retries':
      case 'x-envoy-upstream-rq-timeout-ms':
      case 'x-envoy-upstream-rq-per-try-timeout-ms':
      case 'x-envoy-retriable-status-codes':
      case 'x-envoy-retriable-header-names':
      case 'x-envoy-hedge-on-per-try-timeout':
      case 'x-envoy-upstream-rq-timeout-alt-response':
        continue;
      case 'x-forwarded-for':
        forwardedFor = forwardedFor === '' ? headers[i + 1] : `${forwardedFor}, ${headers[i + 1]}`;
        continue;
      case 'x-forwarded-client-cert':
        clientXfcc = clientXfcc === '' ? headers[i + 1] : `${clientXfcc},${headers[i + 1]}`;
        continue;
      case 'x-request-id':
        hasRequestId = true;
        break;
    }
    // x-remora-* request headers are Remora's control headers (retry, timeout, attempt
    // count): consumed or ignored here, never passed upstream.
    if (name.startsWith('x-remora-')) continue;
    if (traced && TRACE_HEADERS.has(name)) continue;
    if (isHopByHop(name)) continue;
    if (dropped !== null && dropped.includes(name)) continue;
    if (remove !== null && remove.has(name)) continue;
    head += `${name}: ${headers[i + 1]}\r\n`;
  }
  const client = req.remoteAddress;
  head += `x-forwarded-for: ${forwardedFor === '' ? client : `${forwardedFor}, ${client}`}\r\n`;
  head += `x-forwarded-proto: ${listener.scheme}\r\nx-forwarded-host: ${host}\r\n`;
  const xfcc = forwardedClientCert(listener.xfcc, clientXfcc, req.peer);
  if (xfcc !== '' && (remove === null || !remove.has('x-forwarded-client-cert'))) head += `x-forwarded-client-cert: ${xfcc}\r\n`;
  if (!hasRequestId) head += `x-request-id: ${requestId}\r\n`;
  if (traceparent !== null) head += `traceparent: ${traceparent}\r\n`;
  const add = route.requestHeadersToAdd;
  for (let i = 0; i < add.length; i += 2) head += `${add[i]}: ${add[i + 1]}\r\n`;
  if (facts.framing === 'fixed') head += `content-length: ${facts.contentLength}\r\n`;
  else if (facts.framing === 'chunked') head += 'transfer-encoding: chunked\r\n';
  return head + '\r\n';
}

/** `head` with x-remora-attempt-count: `attempt` added (Envoy's x-envoy-attempt-count):
 *  every attempt after the first carries it, the first too when the virtual host sets
 *  include_request_attempt_count. */
export function withAttemptCount(head: string, attempt: number): string {
  return `${head.slice(0, -2)}x-remora-attempt-count: ${attempt}\r\n\r\n`;
}

/** `head` with another Host (a mirrored request's shadow host): the builder writes Host
 *  on the line after the request line, and nowhere else. */
export function withHost(head: string, host: string): string {
  const start = head.indexOf('\r\n') + 2;
  return `${head.slice(0, start)}host: ${host}${head.slice(head.indexOf('\r\n', start))}`;
}

/** `head` with the upgrade kept (an upgrade request on its own upstream connection,
 *  workers/upgrade-exchange.ts): `connection: upgrade` and the client's `upgrade` value,
 *  which the builder drops as hop-by-hop. Sec-WebSocket-* and any other end-to-end
 *  headers of the handshake went through as they are. */
export function withUpgrade(head: string, upgrade: string): string {
  return `${head.slice(0, -2)}connection: upgrade\r\nupgrade: ${upgrade}\r\n\r\n`;
}

/** The x-forwarded-client-cert value to send upstream ('' = none), Envoy's rules: the
 *  modes that forward or set the header do so only for a client with a verified
 *  certificate; otherwise the client's header is dropped. */
export function forwardedClientCert(mode: XfccMode, fromClient: string, peer: PeerIdentity | null): string {
  switch (mode) {
    case 'sanitize':
      return '';
    case 'always_forward_only':
      return fromClient;
    case 'forward_only':
      return peer === null ? '' : fromClient;
    case 'sanitize_set':
      return peer === null ? '' : peer.xfcc;
    case 'append_forward':
      return peer === null ? '' : fromClient === '' ? peer.xfcc : `${fromClient},${peer.xfcc}`;
  }
}
