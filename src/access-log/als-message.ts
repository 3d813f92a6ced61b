// StreamAccessLogsMessage framing (envoy/service/accesslog/v3/als.proto) for the main
// thread: workers send encoded HTTPAccessLogEntries bodies (a run of `log_entry` fields,
// workers/access-log-grpc-entry.ts); several such bodies concatenated are still one, so
// batches of several workers go out in one message without being decoded. The first
// message of a stream carries the identifier (the node and the log name).

import { ProtoWriter } from './proto-writer.js';

/** The node Remora presents (Envoy's bootstrap node): the xDS node, else the host name. */
export interface AlsNode {
  readonly id: string;
  readonly cluster: string;
  readonly userAgentVersion: string;
}

/** StreamAccessLogsMessage.identifier (field 1), encoded as a whole field. */
export function encodeIdentifier(node: AlsNode, logName: string): Uint8Array {
  const w = new ProtoWriter(256);
  const id = w.begin(1);
  const n = w.begin(1); // Identifier.node: config.core.v3.Node
  w.string(1, node.id);
  w.string(2, node.cluster);
  w.string(6, 'remora'); // user_agent_name
  w.string(7, node.userAgentVersion); // user_agent_version
  w.end(n);
  w.string(2, logName);
  w.end(id);
  return w.take();
}

/** A StreamAccessLogsMessage: the identifier (first message of a stream, else null) and
 *  http_logs (field 2) holding the entries of every part, in order. */
export function streamMessage(identifier: Uint8Array | null, parts: readonly Uint8Array[]): Buffer {
  let body = 0;
  for (const p of parts) body += p.length;
  const head = (identifier?.length ?? 0) + 1 + varintSize(body);
  const out = Buffer.allocUnsafe(head + body);
  let pos = 0;
  if (identifier !== null) {
    out.set(identifier, 0);
    pos = identifier.length;
  }
  out[pos++] = (2 << 3) | 2;
  let v = body;
  while (v > 127) {
    out[pos++] = (v & 127) | 128;
    v >>>= 7;
  }
  out[pos++] = v;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

function varintSize(v: number): number {
  return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : v < 268435456 ? 4 : 5;
}
