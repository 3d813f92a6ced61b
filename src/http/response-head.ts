// The response head a client gets: the upstream's headers filtered and rewritten
// (hop-by-hop and Connection-listed headers dropped, Content-Length left to the front
// end's framing, `date` and `server` per server_header_transformation, the route's
// response_headers_to_add/remove, x-remora-upstream-service-time), and the headers of
// Remora's own local replies. The per-route, per-listener decisions are compiled once
// per snapshot into a ResponseHeadPolicy; the request path only walks the headers.

import { httpDate } from './date.js';
import { connectionTokens, headerBytes, isHopByHop, parseContentLength } from './headers.js';

/** Response header an upstream sets to be marked unhealthy at once (active health
 *  checking must be on for its cluster); never forwarded to the client. */
export const IMMEDIATE_HC_FAIL = 'x-remora-immediate-health-check-fail';
export const UPSTREAM_SERVICE_TIME = 'x-remora-upstream-service-time';

export type ServerHeaderMode = 'overwrite' | 'append_if_absent' | 'pass_through';

/** Where the head goes (a Downstream fits). */
export interface HeaderSink {
  writeHeader(name: string, value: string): void;
}

/** A route's response header edits with its listener's `server` settings, compiled once
 *  per snapshot. */
export interface ResponseHeadPolicy {
  readonly remove: ReadonlySet<string> | null;
  /** Flat [name, value, ...], values as header bytes. */
  readonly add: readonly string[];
  /** server_header_transformation overwrite: the upstream's `server` is dropped. */
  readonly dropUpstreamServer: boolean;
  /** Written when the upstream sent no `server` (kept one); null = never. */
  readonly serverName: string | null;
  /** Write the proxy's `date` when the upstream sent none (the route does not remove it). */
  readonly addDate: boolean;
  readonly addServiceTime: boolean;
}

export interface HeaderValueConfig {
  readonly name: string;
  readonly value: string;
}

/** Compiles a route's response_headers_to_add/remove with its listener's server_name and
 *  server_header_transformation. */
export function compileResponseHeadPolicy(
  add: readonly HeaderValueConfig[],
  remove: readonly string[],
  serverName: string,
  mode: ServerHeaderMode,
): ResponseHeadPolicy {
  const removed = remove.length > 0 ? new Set(remove) : null;
  const kept = (name: string): boolean => removed === null || !removed.has(name);
  return {
    remove: removed,
    add: add.flatMap((h) => [h.name, headerBytes(h.value)]),
    dropUpstreamServer: mode === 'overwrite',
    serverName: mode !== 'pass_through' && kept('server') ? serverName : null,
    addDate: kept('date'),
    addServiceTime: kept(UPSTREAM_SERVICE_TIME),
  };
}

/** Writes the client's response headers for an upstream response with `headers` (flat,
 *  lower-case names) to `sink`. `writesDate`: the front end writes its own `date`;
 *  `draining`: ask the client to close; `serviceTimeMs`: upstream time so far. Returns
 *  the upstream's Content-Length (-1 when none), which a HEAD response announces. */
export function writeResponseHead(
  sink: HeaderSink,
  headers: readonly string[],
  p: ResponseHeadPolicy,
  writesDate: boolean,
  draining: boolean,
  serviceTimeMs: number,
): number {
  let dropped: string[] | null = null;
  let contentLength = -1;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] === 'connection') dropped = connectionTokens(headers[i + 1]);
  }
  const remove = p.remove;
  let sawDate = writesDate;
  let sawServer = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    if (name === 'content-length') {
      contentLength = parseContentLength(headers[i + 1]);
      continue; // the front end writes its own framing
    }
    if (isHopByHop(name)) continue;
    if (dropped !== null && dropped.includes(name)) continue;
    if (remove !== null && remove.has(name)) continue;
    if (name === 'date') {
      if (sawDate) continue;
      sawDate = true;
    } else if (name === 'server') {
      if (p.dropUpstreamServer) continue;
      sawServer = true;
    } else if (name === IMMEDIATE_HC_FAIL) {
      continue;
    }
    sink.writeHeader(name, headers[i + 1]);
  }
  const add = p.add;
  for (let i = 0; i < add.length; i += 2) sink.writeHeader(add[i], add[i + 1]);
  // An upstream without a clock gets the proxy's date (RFC 9110 §6.6.1), unless the
  // route removes date; the server header follows server_header_transformation.
  if (!sawDate && p.addDate) sink.writeHeader('date', httpDate());
  if (!sawServer && p.serverName !== null) sink.writeHeader('server', p.serverName);
  // Draining: tell the client not to reuse this connection.
  if (draining) sink.writeHeader('connection', 'close');
  if (p.addServiceTime) sink.writeHeader(UPSTREAM_SERVICE_TIME, String(serviceTimeMs));
  return contentLength;
}

/** True when the upstream asked to be marked unhealthy (x-remora-immediate-health-check-fail). */
export function asksHealthCheckFail(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === IMMEDIATE_HC_FAIL) return true;
  return false;
}

/** Statuses whose responses never have a body (RFC 9110 §15.3.5, §15.4.5). */
export function isBodylessStatus(status: number): boolean {
  return status === 204 || status === 304;
}

/** Headers of a local reply. A direct_response route's reply is plain (content-type and
 *  the route's response_headers_to_add); Remora's own replies say why (x-remora-flags)
 *  and for which request, plus `extra` and the matched route's additions, if any. */
export function localReplyHeaders(
  direct: boolean,
  flags: string,
  requestId: string,
  extra: readonly string[] | null,
  routeAdd: readonly string[] | null,
): string[] {
  const headers = direct
    ? ['content-type', 'text/plain']
    : ['content-type', 'text/plain; charset=utf-8', 'x-remora-flags', flags, 'x-request-id', requestId];
  if (extra !== null) for (let i = 0; i < extra.length; i++) headers.push(extra[i]);
  if (routeAdd !== null) for (let i = 0; i < routeAdd.length; i++) headers.push(routeAdd[i]);
  return headers;
}
