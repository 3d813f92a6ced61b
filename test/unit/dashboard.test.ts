// The Grafana dashboard (deploy/grafana/remora-dashboard.json) against docs/metrics.md:
// it parses as a Grafana dashboard (uid, title, schemaVersion, unique panel ids, a grid
// that fits 24 columns without overlaps, every query on the datasource variable), and
// every PromQL expression, template-variable query included, names only metrics listed
// in the docs table (names ending in * admit a prefix; histograms only through their
// _bucket/_sum/_count series). Where promtool is installed, every expression is also
// parsed by Prometheus itself (`promtool check rules`).

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prometheusInstalled } from '../helpers/prometheus.js';
import { repoPath } from '../helpers/repo-root.js';

const root = (p: string): string => repoPath(p);

interface Target {
  refId?: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query: string | { query: string };
  definition?: string;
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
}

// ---- the metric catalogue from docs/metrics.md

interface Catalogue {
  /** Series names a query may use. */
  names: Set<string>;
  /** Prefixes from `name_*` rows. */
  prefixes: string[];
  /** Histogram base names (not a series of their own). */
  histograms: Set<string>;
}

/** Reads the table rows "| `name`[, `name`…] | type | labels | meaning |" of docs/metrics.md;
 *  a name ending in `*` is a prefix. */
function catalogue(markdown: string): Catalogue {
  const names = new Set<string>();
  const prefixes: string[] = [];
  const histograms = new Set<string>();
  for (const line of markdown.split('\n')) {
    const m = /^\|([^|]*)\|\s*([a-z]*)\s*\|/.exec(line);
    if (!m) continue;
    const [, cell, type] = m;
    for (const [, name] of cell.matchAll(/`([a-zA-Z_:][a-zA-Z0-9_:]*\*?)`/g)) {
      if (name.endsWith('*')) prefixes.push(name.slice(0, -1));
      else if (type === 'histogram') {
        histograms.add(name);
        for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
      } else names.add(name);
    }
  }
  return { names, prefixes, histograms };
}

function known(cat: Catalogue, name: string): boolean {
  return cat.names.has(name) || cat.prefixes.some((p) => name.startsWith(p));
}

// ---- metric names in a PromQL expression

const KEYWORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless', 'inf', 'nan', 'atan2',
]);

/**
 * The metric names a PromQL expression selects: identifiers left after removing strings,
 * label matchers {…}, ranges […], grouping label lists (by (…) etc.), Grafana variables,
 * and numbers/durations; function and aggregation names (followed by "(") and keywords
 * are not metrics.
 */
function metricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ');
  const out: string[] = [];
  for (const m of s.matchAll(/(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const rest = s.slice(m.index! + m[0].length);
    if (/^\s*\(/.test(rest)) continue;
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    out.push(m[0]);
  }
  return out;
}

/** The series selector inside a Grafana `label_values(selector, label)` variable query. */
function variableExpr(query: string): string {
  const m = /^\s*label_values\((.*),\s*[a-zA-Z_]\w*\s*\)\s*$/.exec(query) ?? /^\s*query_result\((.*)\)\s*$/.exec(query);
  if (m) return m[1];
  if (/^\s*label_values\(\s*[a-zA-Z_]\w*\s*\)\s*$/.test(query)) return '';
  return query;
}

// ---- the files

const docs = readFileSync(root('docs/metrics.md'), 'utf8');
const cat = catalogue(docs);
const dashboardText = readFileSync(root('deploy/grafana/remora-dashboard.json'), 'utf8');
let dashboard: Dashboard;
try {
  dashboard = JSON.parse(dashboardText) as Dashboard;
} catch (err) {
  t.fail(`deploy/grafana/remora-dashboard.json is not valid JSON: ${String(err)}`);
  throw err;
}

/** Every panel, those nested in collapsed rows included. */
function allPanels(list: Panel[]): Panel[] {
  return list.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}
const panels = allPanels(dashboard.panels);
const queries: { where: string; expr: string }[] = [];
for (const p of panels) {
  for (const target of p.targets ?? []) {
    if (target.expr !== undefined) queries.push({ where: `panel "${p.title}" ${target.refId ?? ''}`.trim(), expr: target.expr });
  }
}
for (const v of dashboard.templating.list.filter((x) => x.type === 'query')) {
  const q = typeof v.query === 'string' ? v.query : v.query.query;
  queries.push({ where: `variable $${v.name}`, expr: variableExpr(q) });
}

t.test('the metric catalogue parsed from docs/metrics.md', async (t) => {
  t.ok(cat.names.size >= 20, `many metric names (${cat.names.size})`);
  t.ok(cat.names.has('remora_downstream_requests_total'), 'a counter is listed');
  t.ok(cat.names.has('remora_downstream_request_duration_seconds_bucket'), 'a histogram gives its _bucket series');
  t.notOk(cat.names.has('remora_downstream_request_duration_seconds'), 'but not its bare name');
  t.ok(cat.names.has('remora_process_resident_memory_bytes'), 'process metrics are listed by name');
  t.notOk(cat.prefixes.includes('remora_'), 'no prefix admits every remora_ name');
  t.same(
    [...cat.histograms].sort(),
    ['remora_downstream_request_duration_seconds', 'remora_downstream_tunnel_duration_seconds', 'remora_proxy_overhead_seconds', 'remora_upstream_request_duration_seconds'],
    'four histograms',
  );
});

t.test('metricNames() finds the metrics of a PromQL expression and nothing else', async (t) => {
  t.same(
    metricNames('histogram_quantile(0.99, sum by (le, listener) (rate(a_bucket{job=~"$job", x="by(y)"}[1m])))'),
    ['a_bucket'],
    'functions, grouping labels, matchers, strings and ranges are skipped',
  );
  t.same(
    metricNames('sum(rate(a_total{s="5xx"}[$__rate_interval])) / sum without (x) (rate(b_total[5m] offset 1h)) > 1e-3'),
    ['a_total', 'b_total'],
    'a ratio: both sides, offsets and numbers skipped',
  );
  t.same(metricNames('a / on (x) group_left (y) b'), ['a', 'b'], 'vector matching label lists are skipped');
  t.same(metricNames('up == bool 1 and c'), ['up', 'c'], 'keywords are skipped, bare metric names are found');
  t.same(metricNames('max(remora_config_version{job=~"${job}"})'), ['remora_config_version'], '${var} in a matcher');
  t.equal(variableExpr('label_values(m{job=~"$job"}, instance)'), 'm{job=~"$job"}', 'label_values(selector, label) gives the selector');
  t.notOk(known(cat, 'remora_downstream_request_total'), 'a misspelt name is not in the catalogue');
  t.ok(known(cat, 'process_resident_memory_bytes'), 'a standard process_ metric is in the catalogue');
  t.notOk(known(cat, 'process_virtual_memory_bytes'), 'one Remora does not export is not');
  t.ok(known(cat, 'remora_process_resident_memory_bytes'), 'a remora_process_ metric is');
});

t.test('the dashboard is a Grafana dashboard', async (t) => {
  t.equal(dashboard.uid, 'remora-overview', 'uid is set');
  t.equal(dashboard.title, 'Remora', 'title is set');
  t.ok(dashboard.schemaVersion >= 36 && dashboard.schemaVersion <= 41, `schemaVersion ${dashboard.schemaVersion}`);

  const ds = dashboard.templating.list.find((v) => v.type === 'datasource');
  t.ok(ds, 'there is a datasource template variable');
  t.equal(ds?.query, 'prometheus', 'of type prometheus');
  const dsRef = `\${${ds?.name ?? 'datasource'}}`;
  for (const name of ['job', 'instance', 'listener', 'cluster']) {
    t.ok(dashboard.templating.list.some((v) => v.name === name), `a $${name} variable`);
  }

  const ids = panels.map((p) => p.id);
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const cells = new Map<string, string>();
  let overlaps = 0;
  let outside = 0;
  for (const p of panels) {
    const g = p.gridPos;
    if (g.x < 0 || g.w < 1 || g.x + g.w > 24 || g.h < 1) outside++;
    for (let y = g.y; y < g.y + g.h; y++) {
      for (let x = g.x; x < g.x + g.w; x++) {
        const key = `${x},${y}`;
        if (cells.has(key)) overlaps++;
        cells.set(key, p.title);
      }
    }
  }
  t.equal(outside, 0, 'every panel fits the 24-column grid');
  t.equal(overlaps, 0, 'no two panels overlap');

  for (const p of panels.filter((x) => x.type !== 'row')) {
    const targets = p.targets ?? [];
    t.ok(targets.length > 0, `panel "${p.title}" has queries`);
    t.equal(p.datasource?.uid, dsRef, `panel "${p.title}" uses the datasource variable`);
    const refIds = targets.map((x) => x.refId);
    t.equal(new Set(refIds).size, refIds.length, `panel "${p.title}" has unique refIds`);
    t.ok(targets.every((x) => x.datasource?.uid === dsRef && typeof x.expr === 'string' && x.expr.length > 0), `panel "${p.title}" queries are PromQL on ${dsRef}`);
  }
});

t.test('every PromQL expression names only metrics listed in docs/metrics.md', async (t) => {
  t.ok(queries.length >= 20, `${queries.length} expressions`);
  const used = new Set<string>();
  for (const { where, expr } of queries) {
    const names = metricNames(expr);
    t.ok(names.length > 0, `${where} selects at least one metric`);
    for (const name of names) {
      used.add(name);
      if (cat.histograms.has(name)) t.fail(`${where}: histogram ${name} used without _bucket/_sum/_count in ${expr}`);
      else t.ok(known(cat, name), `${where}: ${name}`, known(cat, name) ? {} : { expr, listed: [...cat.names] });
    }
  }
  // The panels the dashboard exists for (see deploy/grafana/README.md).
  const required = [
    'remora_downstream_requests_total',
    'remora_downstream_response_flags_total',
    'remora_downstream_request_duration_seconds_bucket',
    'remora_proxy_overhead_seconds_bucket',
    'remora_upstream_connections_active',
    'remora_upstream_connections_total',
    'remora_upstream_connect_failures_total',
    'remora_upstream_timeouts_total',
    'remora_upstream_pending_requests',
    'remora_worker_event_loop_delay_seconds',
    'remora_worker_restarts_total',
    'remora_process_resident_memory_bytes',
    'remora_process_cpu_seconds_total',
    'remora_circuit_breaker_open',
    'remora_upstream_pending_overflows_total',
    'remora_upstream_retried_responses_total',
    'remora_upstream_retry_successes_total',
    'remora_upstream_retry_limit_exceeded_total',
    'remora_outlier_ejections_total',
    'remora_health_checks_total',
    'remora_downstream_rate_limit_shadow_total',
    'remora_xds_updates_total',
    'remora_xds_connected',
    'remora_tls_earliest_expiry_seconds',
    'remora_trace_spans_exported_total',
    'remora_trace_spans_dropped_total',
    'remora_trace_export_queue_spans',
  ];
  for (const name of required) t.ok(used.has(name), `the dashboard charts ${name}`);
  const quantileExprs = queries.filter((q) => q.expr.includes('histogram_quantile'));
  t.ok(quantileExprs.length >= 6, 'latency and overhead quantiles come from histogram_quantile');
  for (const q of quantileExprs) t.match(q.expr, /rate\(\w+_bucket\{[^}]*\}\[1m\]\)/, `${q.where}: histogram_quantile over rate(..._bucket[1m])`);
});

t.test('promtool parses every expression', { skip: prometheusInstalled() ? false : 'promtool not installed' }, async (t) => {
  // Grafana's variables replaced by what Grafana would send, then checked as recording rules.
  const concrete = (expr: string): string =>
    expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m').replace(/\$\{?(\w+)\}?/g, '.*');
  const rules = queries
    .filter((q) => !q.where.startsWith('variable'))
    .map((q, i) => `      - record: dashboard:expr_${i}\n        expr: ${JSON.stringify(concrete(q.expr))}`);
  const dir = mkdtempSync(join(tmpdir(), 'remora-dash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'rules.yml');
  writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
  const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8', timeout: 30_000 });
  t.equal(r.status, 0, `promtool check rules accepts all ${rules.length} panel expressions`, { output: `${r.stdout}${r.stderr}` });
});
