// The stat tables as Markdown: the generated part of docs/metrics.md, between marker
// comments, so the page cannot drift from what /stats and /metrics expose.
// test/unit/stat-tables.test.ts fails when the page differs from renderStatTables();
// `npm run gen:metrics-docs` (src/stats/gen-metrics-docs.ts) rewrites it.

import { PROMETHEUS_BUCKETS_US } from './stat-names.js';
import { CLUSTER_ROWS } from './tables/cluster.js';
import { LISTENER_ROWS } from './tables/listener.js';
import { families, type StatRow } from './tables/table.js';
import { MAIN_THREAD_METRICS } from './tables/main-thread.js';
import { WORKER_ROWS } from './tables/worker.js';

export const BEGIN_MARK = '<!-- BEGIN GENERATED from src/stats/tables/ by `npm run gen:metrics-docs`; do not edit by hand -->';
export const END_MARK = '<!-- END GENERATED -->';

const code = (s: string): string => '`' + s + '`';

/** The /stats column: a family's own summary, else each row's name. */
function statsCell(rows: readonly StatRow[]): string {
  if (rows[0].docStats !== undefined) return rows[0].docStats;
  const names = rows.map((r) => r.stats).filter((n): n is string => n !== null);
  return names.length === 0 ? '—' : names.map(code).join(', ');
}

/** The label names of a family: the component's, then each constant label's. */
function labelCell(component: string, rows: readonly StatRow[]): string {
  const names = [component];
  for (const row of rows) for (const k of Object.keys(row.labels ?? {})) if (!names.includes(k)) names.push(k);
  return names.join(', ');
}

/** One Markdown table for a component: a line per Prometheus family, then a line per
 *  row that is not exported. `statsPrefix` null: a component /stats does not show. */
function componentTable(component: string, statsPrefix: string | null, rows: readonly StatRow[]): string {
  const stats = statsPrefix !== null;
  const lines = stats
    ? [`| Metric | Type | Labels | /stats name (${code(statsPrefix)}) | Meaning |`, '|---|---|---|---|---|']
    : ['| Metric | Type | Labels | Meaning |', '|---|---|---|---|'];
  const line = (metric: string, kind: string, labels: string, statsCol: string, meaning: string): void => {
    lines.push(stats ? `| ${metric} | ${kind} | ${labels} | ${statsCol} | ${meaning} |` : `| ${metric} | ${kind} | ${labels} | ${meaning} |`);
  };
  for (const f of families(rows)) {
    const first = f.rows[0];
    line(code(f.name), f.kind, labelCell(component, f.rows), statsCell(f.rows), first.doc ?? first.help);
  }
  for (const row of rows) {
    if (row.prom !== null) continue;
    line(`— (cell ${code(row.handle)})`, row.kind, component, row.stats === null ? '—' : code(row.stats), row.doc ?? row.help);
  }
  return lines.join('\n');
}

/** The main thread's own families (not in the slab). */
function mainThreadTable(): string {
  const lines = ['| Metric | Type | Labels | Meaning |', '|---|---|---|---|'];
  for (const [name, m] of Object.entries(MAIN_THREAD_METRICS)) {
    lines.push(`| ${code(name)} | ${m.kind} | ${m.labels.length === 0 ? '—' : m.labels.join(', ')} | ${m.doc} |`);
  }
  return lines.join('\n');
}

/** The generated part of docs/metrics.md, markers excluded. */
export function renderStatTables(): string {
  return [
    '### Per listener',
    '',
    'One block per listener in each worker\'s slab, summed over workers.',
    '',
    componentTable('listener', 'listener.<name>.', LISTENER_ROWS),
    '',
    '### Per cluster',
    '',
    'One block per cluster in each worker\'s slab (shared by its endpoint pools), summed over workers.',
    '',
    componentTable('cluster', 'cluster.<name>.', CLUSTER_ROWS),
    '',
    '### Per worker',
    '',
    'The worker\'s own cells at the end of its slab, one series per worker slot (never summed).',
    '',
    componentTable('worker', null, WORKER_ROWS),
    '',
    '### Main thread',
    '',
    'State the main thread holds (or reads from the shared resilience state) at scrape time.',
    '',
    mainThreadTable(),
    '',
    `Histogram buckets (seconds): ${PROMETHEUS_BUCKETS_US.map((us) => String(us / 1e6)).join(', ')}.`,
  ].join('\n');
}

/** `doc` with the text between the markers replaced by `generated`. Throws when the
 *  markers are missing or out of order. */
export function spliceGenerated(doc: string, generated: string): string {
  const begin = doc.indexOf(BEGIN_MARK);
  const end = doc.indexOf(END_MARK);
  if (begin < 0 || end < begin) throw new Error(`docs/metrics.md: expected the lines ${BEGIN_MARK} and ${END_MARK}, in that order`);
  return doc.slice(0, begin + BEGIN_MARK.length) + '\n' + generated + '\n' + doc.slice(end);
}
