// Turning a request head a front end has framed into what the pipeline reads
// (DownstreamRequest): the checks a parser leaves to the server (src/http/request-head.ts)
// and path normalisation, the same for HTTP/1 and HTTP/2. A head that fails them still
// becomes a request, carrying its refusal, so the pipeline answers and logs it as any
// other.

import type { Listener } from '../src/config/types.js';
import { normalizePath, type PathNormalization } from '../src/http/path-normalize.js';
import { checkRequestHead, isRefusal, type HeadLimits } from '../src/http/request-head.js';
import type { PeerIdentity } from '../src/tls/peer-identity.js';
import type { DownstreamRequest, RequestRefusal } from './downstream.js';

export class RequestReader {
  private readonly limits: HeadLimits;
  private readonly normalization: PathNormalization | null;

  constructor(config: Listener) {
    this.limits = { maxHeaders: config.max_request_headers_count };
    const normalizes = config.normalize_path || config.merge_slashes || config.path_with_escaped_slashes_action !== 'keep_unchanged';
    this.normalization = normalizes ? config : null;
  }

  /** The request for a head: `rawHeaders` flat [name, value, ...] as they came. */
  read(method: string, target: string, httpMinor: number, rawHeaders: readonly string[], remoteAddress: string, peer: PeerIdentity | null, http2 = false): DownstreamRequest {
    const head = checkRequestHead(method, target, httpMinor, rawHeaders, this.limits);
    let refusal: RequestRefusal | null = null;
    let path: string;
    let query = '';
    let headers: string[];
    if (isRefusal(head)) {
      refusal = head;
      const q = target.indexOf('?');
      path = q === -1 ? target : target.slice(0, q);
      headers = lowerCased(rawHeaders);
    } else {
      path = head.path;
      query = head.query;
      headers = head.headers;
      if (this.normalization !== null) {
        const n = normalizePath(path, this.normalization);
        if (n.kind === 'reject') {
          refusal = { status: 400, reason: n.reason };
        } else {
          if (n.kind === 'redirect') refusal = { status: 307, reason: 'path with escaped slashes', location: n.path + (query === '' ? '' : `?${query}`) };
          path = n.path;
        }
      }
    }
    return { method, path, query, headers, remoteAddress, http2, peer, refusal };
  }
}

/** A raw header list with lower-case names (for a refused head, logged as sent). */
function lowerCased(raw: readonly string[]): string[] {
  const out = new Array<string>(raw.length);
  for (let i = 0; i < raw.length; i += 2) {
    out[i] = raw[i].toLowerCase();
    out[i + 1] = raw[i + 1];
  }
  return out;
}
