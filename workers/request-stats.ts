// Recording a finished request: its access log line and the listener's and cluster's
// stats in the worker's shared slab (which /stats, /metrics and the admin /workers view
// read). Reads the request's StreamInfo only.

import { ResponseFlag } from '../src/core/flags.js';
import { ClusterCounter, FLAGS, ListenerCounter } from '../src/stats/stat-names.js';
import type { ClusterRuntime } from '../src/upstream/cluster.js';
import type { ListenerRuntime } from './context.js';
import type { StreamInfo } from './stream-info.js';

/** Response flag → index into FLAGS (the listener's flag counters). */
const FLAG_INDEX = new Map<string, number>(FLAGS.map((f, i) => [f, i]));
const URX_INDEX = FLAGS.indexOf(ResponseFlag.UpstreamRetryLimitExceeded);
const UO_INDEX = FLAGS.indexOf(ResponseFlag.UpstreamOverflow);

/** Counts a finished request and writes its access log line, if the listener has one. */
export function recordRequest(info: StreamInfo, listener: ListenerRuntime): void {
  const cluster = info.cluster;
  const flag = info.flag;
  if (cluster !== null) {
    if (flag === ResponseFlag.UpstreamRequestTimeout) cluster.stats.count(ClusterCounter.RqTimeout);
    else if (flag === ResponseFlag.UpstreamConnectionTermination) cluster.stats.count(ClusterCounter.Resets);
    else if (flag === ResponseFlag.UpstreamProtocolError) cluster.stats.count(ClusterCounter.ProtocolErrors);
  }
  // Access log: one branch for a listener without one; write() never throws.
  const accessLog = listener.accessLog;
  if (accessLog !== null) accessLog.write(info);

  listener.stats.requestFinished(info.status, FLAG_INDEX.get(flag) ?? -1, info.bytesIn, info.bytesOut, info.durationUs);
  if (info.retryExhausted) listener.stats.count(ListenerCounter.FlagBase + URX_INDEX);
  if (info.retryOverflow && flag !== ResponseFlag.UpstreamOverflow) listener.stats.count(ListenerCounter.FlagBase + UO_INDEX);
  if (cluster !== null && info.upstreamStatus > 0) {
    cluster.stats.upstreamResponse(info.upstreamStatus, info.upstreamUs, info.durationUs);
    if (info.grpcStatus >= 0) cluster.stats.grpcResponse(info.grpcStatus);
  }
}

/** A request goes out again on a fresh connection: the one it was given had been closed
 *  by the upstream (seen before writing, or the keep-alive race). */
export function countKeepAliveRetry(cluster: ClusterRuntime): void {
  cluster.stats.count(ClusterCounter.KeepAliveRetries);
}
