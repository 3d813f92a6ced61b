// Admin handlers for statistics: Prometheus exposition, /stats in text or JSON with a
// regex filter, /server_info, run-time log level, and counter reset. Everything is
// read from the workers' shared stats slabs through the StatsReader.

import { REMORA_VERSION } from '../core/version.js';
import type { ConfigSnapshot } from '../config/types.js';
import type { Logger } from '../core/log.js';
import type { StatsReader } from '../stats/reader.js';
import {
  ClusterCounter,
  ClusterGauge,
  ClusterHistogram,
  FLAGS,
  ListenerCounter,
  ListenerGauge,
  ListenerHistogram,
  STATUS_CLASSES,
  RESILIENCE_COUNTERS,
} from '../stats/stat-names.js';
import { quantiles, type Metrics } from './metrics.js';
import type { WorkerPool } from './worker-pool.js';
import type { Resilience } from './resilience.js';

export interface StatsContext {
  readonly pool: WorkerPool;
  readonly log: Logger;
  readonly reader: StatsReader;
  readonly metrics: Metrics;
  readonly resilience: Resilience;
  readonly startedAt: number;
  snapshot(): ConfigSnapshot;
}

/** [status, body, content type?]: a string body is text, anything else JSON. */
export type AdminReply = [number, unknown, string?];

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Envoy-style flat stat names with their values. */
function flatStats(ctx: StatsContext): { counters: [string, number][]; histograms: [string, Record<string, number>][] } {
  const r = ctx.reader;
  r.fold();
  const slots = ctx.snapshot().statSlots;
  const counters: [string, number][] = [];
  const histograms: [string, Record<string, number>][] = [];
  for (const [name, slot] of Object.entries(slots.listeners)) {
    const p = `listener.${name}.`;
    STATUS_CLASSES.forEach((c, i) => counters.push([`${p}downstream_rq_${c}`, r.listenerCounter(slot, ListenerCounter.Rq1xx + i)]));
    counters.push([`${p}downstream_rq_active`, r.listenerGauge(slot, ListenerGauge.RqActive)]);
    counters.push([`${p}downstream_cx_active`, r.listenerGauge(slot, ListenerGauge.CxActive)]);
    counters.push([`${p}downstream_cx_total`, r.listenerCounter(slot, ListenerCounter.CxTotal)]);
    counters.push([`${p}downstream_cx_overflow`, r.listenerCounter(slot, ListenerCounter.CxOverflow)]);
    counters.push([`${p}downstream_rq_protocol_error`, r.listenerCounter(slot, ListenerCounter.RqProtocolError)]);
    counters.push([`${p}downstream_bytes_received`, r.listenerCounter(slot, ListenerCounter.BytesIn)]);
    counters.push([`${p}downstream_bytes_sent`, r.listenerCounter(slot, ListenerCounter.BytesOut)]);
    counters.push([`${p}ratelimit.shadow`, r.listenerCounter(slot, ListenerCounter.RateLimitShadow)]);
    counters.push([`${p}ssl.fail_verify_no_cert`, r.listenerCounter(slot, ListenerCounter.TlsNoCert)]);
    counters.push([`${p}ssl.fail_verify_error`, r.listenerCounter(slot, ListenerCounter.TlsVerifyFailed)]);
    counters.push([`${p}ssl.connection_error`, r.listenerCounter(slot, ListenerCounter.TlsOtherError)]);
    FLAGS.forEach((f, i) => counters.push([`${p}response_flag.${f}`, r.listenerCounter(slot, ListenerCounter.FlagBase + i)]));
    histograms.push([`${p}downstream_rq_time`, quantiles(r.listenerHistogram(slot, ListenerHistogram.Downstream))]);
  }
  for (const [name, slot] of Object.entries(slots.clusters)) {
    const p = `cluster.${name}.`;
    STATUS_CLASSES.forEach((c, i) => counters.push([`${p}upstream_rq_${c}`, r.clusterCounter(slot, ClusterCounter.Rq1xx + i)]));
    counters.push([`${p}upstream_cx_total`, r.clusterCounter(slot, ClusterCounter.CxTotal)]);
    counters.push([`${p}upstream_cx_active`, r.clusterGauge(slot, ClusterGauge.CxActive)]);
    counters.push([`${p}upstream_cx_connect_fail`, r.clusterCounter(slot, ClusterCounter.CxConnectFail)]);
    counters.push([`${p}upstream_rq_pending_active`, r.clusterGauge(slot, ClusterGauge.RqPending)]);
    counters.push([`${p}upstream_rq_timeout`, r.clusterCounter(slot, ClusterCounter.RqTimeout)]);
    counters.push([`${p}upstream_cx_reset`, r.clusterCounter(slot, ClusterCounter.Resets)]);
    counters.push([`${p}upstream_protocol_error`, r.clusterCounter(slot, ClusterCounter.ProtocolErrors)]);
    counters.push([`${p}upstream_keepalive_retry`, r.clusterCounter(slot, ClusterCounter.KeepAliveRetries)]);
    for (const [counter, statName] of RESILIENCE_COUNTERS) counters.push([`${p}${statName}`, r.clusterCounter(slot, counter)]);
    histograms.push([`${p}upstream_rq_time`, quantiles(r.clusterHistogram(slot, ClusterHistogram.Upstream))]);
    histograms.push([`${p}proxy_overhead`, quantiles(r.clusterHistogram(slot, ClusterHistogram.Overhead))]);
  }
  return { counters, histograms };
}

export async function metricsHandler(ctx: StatsContext): Promise<AdminReply> {
  return [200, await ctx.metrics.scrape(), ctx.metrics.contentType];
}

export function statsHandler(ctx: StatsContext, url: URL): AdminReply {
  if (!ctx.snapshot().config.stats.enabled) return [200, 'stats are disabled (stats.enabled: false in the config)\n'];
  let filter: RegExp | null = null;
  const pattern = url.searchParams.get('filter');
  if (pattern !== null) {
    try {
      filter = new RegExp(pattern);
    } catch (err) {
      return [400, `invalid filter regex: ${err instanceof Error ? err.message : String(err)}\n`];
    }
  }
  const { counters, histograms } = flatStats(ctx);
  const keep = <T>(rows: [string, T][]): [string, T][] => (filter === null ? rows : rows.filter(([n]) => filter!.test(n)));
  const c = keep(counters);
  const h = keep(histograms);
  if (url.searchParams.get('format') === 'json') {
    return [200, { stats: c.map(([name, value]) => ({ name, value })), histograms: h.map(([name, q]) => ({ name, ...q })) }];
  }
  const lines = c.map(([n, v]) => `${n}: ${v}`);
  for (const [n, q] of h) lines.push(`${n}: count=${q.count} P50=${q.p50_us}us P90=${q.p90_us}us P99=${q.p99_us}us P99.9=${q.p999_us}us`);
  return [200, lines.join('\n') + '\n'];
}

export function serverInfoHandler(ctx: StatsContext): AdminReply {
  const snap = ctx.snapshot();
  return [
    200,
    {
      version: REMORA_VERSION,
      node: process.version,
      pid: process.pid,
      uptime_s: Math.round((Date.now() - ctx.startedAt) / 1000),
      workers: ctx.pool.slots.length,
      workers_listening: ctx.pool.slots.filter((s) => s.state === 'listening').length,
      config_version: snap.version,
      log_level: ctx.log.level,
    },
  ];
}

export function showLogLevelHandler(ctx: StatsContext): AdminReply {
  return [200, `log level: ${ctx.log.level}\nset with POST /logging?level=(${LOG_LEVELS.join('|')})\n`];
}

export function loggingHandler(ctx: StatsContext, url: URL): AdminReply {
  const level = url.searchParams.get('level');
  if (level === null) return showLogLevelHandler(ctx);
  if (!LOG_LEVELS.includes(level)) return [400, `unknown level "${level}"; one of ${LOG_LEVELS.join(', ')}\n`];
  ctx.log.level = level;
  ctx.pool.setLogLevel(level);
  ctx.log.info({ level }, 'log level changed');
  return [200, `log level: ${level}\n`];
}

export function resetCountersHandler(ctx: StatsContext): AdminReply {
  ctx.reader.reset();
  return [200, 'counters reset\n'];
}
