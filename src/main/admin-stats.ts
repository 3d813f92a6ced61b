// Admin handlers for statistics: Prometheus exposition, /stats in text or JSON with a
// regex filter, /server_info, run-time log level, and counter reset. Everything is
// read from the workers' shared stats slabs through the StatsReader; /stats names and
// order come from the stat tables (src/stats/tables/).

import { REMORA_VERSION } from '../core/version.js';
import type { ConfigSnapshot } from '../config/types.js';
import type { Logger } from '../core/log.js';
import type { StatsReader } from '../stats/reader.js';
import { CLUSTER_ROWS } from '../stats/tables/cluster.js';
import { matchNames } from './admin/stats-filter.js';
import { LISTENER_ROWS } from '../stats/tables/listener.js';
import { kindIndexes, type StatKind, type StatRow } from '../stats/tables/table.js';
import { quantiles, type Metrics } from './metrics.js';
import type { WorkerPool } from './worker-pool.js';
import type { Resilience } from './resilience.js';
import type { DnsClusters } from './dns-resolver.js';

export interface StatsContext {
  readonly pool: WorkerPool;
  readonly log: Logger;
  readonly reader: StatsReader;
  readonly metrics: Metrics;
  readonly resilience: Resilience;
  /** DNS clusters' resolutions (counters, per-name state). */
  readonly dns: DnsClusters;
  readonly startedAt: number;
  snapshot(): ConfigSnapshot;
}

/** [status, body, content type?]: a string or Buffer body is sent as it is (text),
 *  anything else as JSON. */
export type AdminReply = [number, unknown, string?];

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** A /stats line of a table: its name after the component prefix, and how to read it. */
interface StatsEntry {
  readonly name: string;
  readonly kind: StatKind;
  /** Offset among the rows of its kind (the handle's value). */
  readonly index: number;
}

/** The rows of a table that /stats shows, in table order, with their handle values. */
function statsEntries(rows: readonly StatRow[]): StatsEntry[] {
  const index = kindIndexes(rows);
  const out: StatsEntry[] = [];
  rows.forEach((row, i) => {
    if (row.stats !== null) out.push({ name: row.stats, kind: row.kind, index: index[i] });
  });
  return out;
}

const LISTENER_STATS = statsEntries(LISTENER_ROWS);
const CLUSTER_STATS = statsEntries(CLUSTER_ROWS);

/** Envoy-style flat stat names with their values: counters and gauges in table order,
 *  then the histograms. */
function flatStats(ctx: StatsContext): { counters: [string, number][]; histograms: [string, Record<string, number>][] } {
  const r = ctx.reader;
  r.fold();
  const slots = ctx.snapshot().statSlots;
  const counters: [string, number][] = [];
  const histograms: [string, Record<string, number>][] = [];
  for (const [name, slot] of Object.entries(slots.listeners)) {
    const p = `listener.${name}.`;
    for (const e of LISTENER_STATS) {
      if (e.kind === 'counter') counters.push([p + e.name, r.listenerCounter(slot, e.index)]);
      else if (e.kind === 'gauge') counters.push([p + e.name, r.listenerGauge(slot, e.index)]);
      else histograms.push([p + e.name, quantiles(r.listenerHistogram(slot, e.index))]);
    }
  }
  for (const [name, slot] of Object.entries(slots.clusters)) {
    const p = `cluster.${name}.`;
    for (const e of CLUSTER_STATS) {
      if (e.kind === 'counter') counters.push([p + e.name, r.clusterCounter(slot, e.index)]);
      else if (e.kind === 'gauge') counters.push([p + e.name, r.clusterGauge(slot, e.index)]);
      else histograms.push([p + e.name, quantiles(r.clusterHistogram(slot, e.index))]);
    }
    // A DNS cluster's resolutions (main thread), under Envoy's names.
    const dns = ctx.dns.countsOf(name);
    if (dns !== undefined) for (const k of ['attempt', 'success', 'failure', 'empty'] as const) counters.push([`${p}update_${k}`, dns[k]]);
  }
  return { counters, histograms };
}

export async function metricsHandler(ctx: StatsContext): Promise<AdminReply> {
  return [200, await ctx.metrics.scrape(), ctx.metrics.contentType];
}

export async function statsHandler(ctx: StatsContext, url: URL): Promise<AdminReply> {
  if (!ctx.snapshot().config.stats.enabled) return [200, 'stats are disabled (stats.enabled: false in the config)\n'];
  let { counters: c, histograms: h } = flatStats(ctx);
  const pattern = url.searchParams.get('filter');
  if (pattern !== null) {
    // Matched off the main thread, time-limited (admin/stats-filter.ts).
    const names = [...c.map(([n]) => n), ...h.map(([n]) => n)];
    const result = await matchNames(pattern, names);
    if (!result.ok) return [result.status, `${result.message}\n`];
    const histogramsAt = c.length; // names holds the counters, then the histograms
    c = c.filter((_, i) => result.keep[i]);
    h = h.filter((_, i) => result.keep[histogramsAt + i]);
  }
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
