// The second validation pass for a listener's `access_log` (what its schema cannot say):
// a file (`path`), a gRPC service (`grpc`) or both; a format only with a file; the gRPC
// service's cluster defined; gRPC entries for HTTP requests only.

import { at, nameList, type SchemaWalk } from './schema/walk.js';
import type { Listener } from './types.js';

export function checkAccessLog(w: SchemaWalk, l: Listener, path: string, clusterNames: ReadonlySet<string>, allowMissingClusters: boolean): void {
  const log = l.access_log;
  if (log === undefined) return;
  const p = at(path, 'access_log');
  if (w.given(log, 'format') && w.given(log, 'json_format')) {
    w.err(p, 'must set at most one of "format" (a text line) and "json_format" (a JSON object), not both');
  }
  if (!w.given(log, 'path') && !w.given(log, 'grpc')) {
    w.err(p, 'must set "path" (a file or stdout), "grpc" (a gRPC access log service), or both');
    return;
  }
  if (!w.given(log, 'path')) {
    for (const k of ['format', 'json_format'] as const) if (w.given(log, k)) w.err(at(p, k), 'needs "path": a format shapes the lines written to a file or stdout, not the gRPC entries');
  }
  const grpc = log.grpc;
  if (grpc === undefined) return;
  const gp = at(p, 'grpc');
  if (w.given(l, 'tcp_proxy') || l.filter_chains.length > 0) {
    w.err(gp, 'is for HTTP listeners: Remora sends HTTPAccessLogEntry records, not TCP connections (log those with "path")');
  }
  const cp = at(gp, 'cluster');
  if (w.wrong(cp) || allowMissingClusters || clusterNames.has(grpc.cluster)) return;
  const defined = clusterNames.size > 0 ? `defined: ${nameList(clusterNames)}` : 'no clusters are defined';
  w.err(cp, `unknown cluster "${grpc.cluster}" (${defined})`);
}
