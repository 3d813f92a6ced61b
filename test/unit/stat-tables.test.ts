// The stat tables (src/stats/tables/) drive the slab layout, the worker handles,
// /stats, /metrics and docs/metrics.md: this checks that the tables are well formed,
// that handles and layout agree with them, that the Prometheus names and labels
// dashboards rely on are all still there, that docs/metrics.md is regenerated, and
// that the per-worker view of /workers reads what workers record.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { MAX_CLUSTERS, MAX_LISTENERS } from '../../src/shared/limits.js';
import { WorkerCell as LayoutWorkerCell } from '../../src/shared/stats-layout.js';
import { BEGIN_MARK, END_MARK, renderStatTables, spliceGenerated } from '../../src/stats/metrics-doc.js';
import { StatsReader } from '../../src/stats/reader.js';
import { SlabClusterStats, SlabListenerStats, StatsRecorder } from '../../src/stats/recorder.js';
import { CLUSTER_SHAPE, HISTOGRAM_CELLS, LAYOUT, LISTENER_SHAPE } from '../../src/stats/shapes.js';
import {
  CLUSTER_COUNTERS,
  ClusterCounter,
  ClusterGauge,
  ClusterHistogram,
  FLAGS,
  LISTENER_COUNTERS,
  ListenerCounter,
  ListenerGauge,
  ListenerHistogram,
} from '../../src/stats/stat-names.js';
import { CLUSTER_ROWS } from '../../src/stats/tables/cluster.js';
import { LISTENER_ROWS } from '../../src/stats/tables/listener.js';
import { MAIN_THREAD_METRICS } from '../../src/stats/tables/main-thread.js';
import { families, type StatRow } from '../../src/stats/tables/table.js';
import { WORKER_CELLS, WORKER_ROWS, WorkerCell } from '../../src/stats/tables/worker.js';
import { workerStatsView } from '../../src/stats/worker-view.js';
import { REPO_ROOT } from '../helpers/repo-root.js';

const ROOT = REPO_ROOT;
const TABLES: [string, readonly StatRow[]][] = [
  ['listener', LISTENER_ROWS],
  ['cluster', CLUSTER_ROWS],
  ['worker', WORKER_ROWS],
];

t.test('docs/metrics.md has the tables the code declares', async (t) => {
  const doc = readFileSync(resolve(ROOT, 'docs/metrics.md'), 'utf8');
  t.ok(doc.includes(BEGIN_MARK) && doc.includes(END_MARK), 'docs/metrics.md keeps its generated-section markers');
  t.equal(
    spliceGenerated(doc, renderStatTables()),
    doc,
    'docs/metrics.md is stale: run `npm run gen:metrics-docs` (builds, then rewrites the part between the markers) and commit the result',
  );
});

t.test('each table is well formed', async (t) => {
  const promNames = new Set<string>();
  for (const [component, rows] of TABLES) {
    const handles = rows.map((r) => r.handle);
    t.equal(new Set(handles).size, handles.length, `${component}: handles are unique`);
    const stats = rows.map((r) => r.stats).filter((s) => s !== null);
    t.equal(new Set(stats).size, stats.length, `${component}: /stats names are unique`);
    for (const f of families(rows)) {
      t.notOk(promNames.has(f.name), `${f.name} is one family, declared by adjacent rows of one table`);
      promNames.add(f.name);
      t.match(f.name, /^remora_[a-z0-9_]+$/, `${f.name}: a remora_ name`);
      if (f.kind === 'counter') t.match(f.name, /_total$/, `${f.name}: a counter ends in _total`);
      t.ok(f.rows.every((r) => r.kind === f.kind && r.help === f.help), `${f.name}: its rows share kind and help`);
      if (f.kind === 'histogram') t.equal(f.rows.length, 1, `${f.name}: a histogram family is one row`);
      const keys = f.rows.map((r) => Object.keys(r.labels ?? {}).join(','));
      t.equal(new Set(keys).size, 1, `${f.name}: its rows have the same label names`);
      const values = f.rows.map((r) => JSON.stringify(r.labels ?? {}));
      t.equal(new Set(values).size, f.rows.length, `${f.name}: its rows differ by label values`);
    }
  }
  for (const name of Object.keys(MAIN_THREAD_METRICS)) {
    t.notOk(promNames.has(name), `${name} is declared once`);
    promNames.add(name);
  }
});

t.test('handles and layout follow the tables', async (t) => {
  t.same([ListenerCounter.Rq1xx, ListenerCounter.Rq2xx, ListenerCounter.Rq3xx, ListenerCounter.Rq4xx, ListenerCounter.Rq5xx], [0, 1, 2, 3, 4]);
  t.same([ClusterCounter.Rq1xx, ClusterCounter.Rq2xx, ClusterCounter.Rq3xx, ClusterCounter.Rq4xx, ClusterCounter.Rq5xx], [0, 1, 2, 3, 4]);
  const counters = LISTENER_ROWS.filter((r) => r.kind === 'counter');
  FLAGS.forEach((f, i) => t.equal(counters[ListenerCounter.FlagBase + i].stats, `response_flag.${f}`, `FlagBase + ${i} is flag ${f}`));
  t.equal(LISTENER_COUNTERS, counters.length);
  t.equal(CLUSTER_COUNTERS, CLUSTER_ROWS.filter((r) => r.kind === 'counter').length);
  const byKind = (rows: readonly StatRow[], kind: string) => rows.filter((r) => r.kind === kind).map((r) => r.handle);
  t.same(Object.keys(ListenerGauge), byKind(LISTENER_ROWS, 'gauge'));
  t.same(Object.keys(ListenerHistogram), byKind(LISTENER_ROWS, 'histogram'));
  t.same(Object.keys(ClusterGauge), byKind(CLUSTER_ROWS, 'gauge'));
  t.same(Object.keys(ClusterHistogram), byKind(CLUSTER_ROWS, 'histogram'));
  t.same(Object.values(ListenerGauge), byKind(LISTENER_ROWS, 'gauge').map((_, i) => i), 'gauge handles count from 0');
  t.equal(LayoutWorkerCell, WorkerCell, 'src/shared/stats-layout.ts re-exports the worker table');
  t.same(Object.values(WorkerCell), WORKER_ROWS.map((_, i) => i), 'a worker cell is its row number');
  const block = (s: typeof LISTENER_SHAPE) => s.counters + s.gauges + s.histograms * HISTOGRAM_CELLS;
  t.equal(LAYOUT.listenerBlock, block(LISTENER_SHAPE));
  t.equal(LAYOUT.clusterBlock, block(CLUSTER_SHAPE));
  t.equal(LAYOUT.cells, MAX_LISTENERS * LAYOUT.listenerBlock + MAX_CLUSTERS * LAYOUT.clusterBlock + WORKER_CELLS);
});

t.test('the Prometheus families and labels dashboards use are all declared', async (t) => {
  // Renaming one of these breaks dashboards and alerts: do not edit this list to pass.
  const stable: Record<string, string> = {
    remora_downstream_requests_total: 'listener,status_class',
    remora_downstream_response_flags_total: 'listener,flag',
    remora_downstream_tls_handshake_errors_total: 'listener,reason',
    remora_downstream_requests_active: 'listener',
    remora_downstream_connections_active: 'listener',
    remora_downstream_connections_total: 'listener',
    remora_downstream_connection_overflows_total: 'listener',
    remora_downstream_protocol_errors_total: 'listener',
    remora_downstream_bytes_received_total: 'listener',
    remora_downstream_bytes_sent_total: 'listener',
    remora_downstream_rate_limit_shadow_total: 'listener',
    remora_downstream_request_duration_seconds: 'listener',
    remora_upstream_requests_total: 'cluster,status_class',
    remora_upstream_connections_total: 'cluster',
    remora_upstream_connections_active: 'cluster',
    remora_upstream_connect_failures_total: 'cluster',
    remora_upstream_pending_requests: 'cluster',
    remora_upstream_timeouts_total: 'cluster',
    remora_upstream_resets_total: 'cluster',
    remora_upstream_protocol_errors_total: 'cluster',
    remora_upstream_keepalive_retries_total: 'cluster',
    remora_upstream_connection_overflows_total: 'cluster',
    remora_upstream_pending_overflows_total: 'cluster',
    remora_upstream_request_overflows_total: 'cluster',
    remora_upstream_retries_total: 'cluster',
    remora_upstream_retry_successes_total: 'cluster',
    remora_upstream_retry_overflows_total: 'cluster',
    remora_upstream_retry_limit_exceeded_total: 'cluster',
    remora_upstream_per_try_timeouts_total: 'cluster',
    remora_outlier_threshold_reached_total: 'cluster',
    remora_upstream_request_duration_seconds: 'cluster',
    remora_proxy_overhead_seconds: 'cluster',
    remora_worker_event_loop_delay_seconds: 'worker,stat',
    remora_worker_heartbeat_age_seconds: 'worker',
  };
  const declared: Record<string, string> = {};
  for (const [component, rows] of TABLES) {
    for (const f of families(rows)) declared[f.name] = [component, ...Object.keys(f.rows[0].labels ?? {})].join(',');
  }
  for (const [name, labels] of Object.entries(stable)) t.equal(declared[name], labels, `${name} {${labels}}`);
  // /stats names Envoy users look for, and the Remora-only ones tests and runbooks use.
  const statsNames = new Set(TABLES.flatMap(([, rows]) => rows.map((r) => r.stats)));
  for (const name of [
    'downstream_rq_2xx', 'downstream_rq_active', 'downstream_cx_total', 'ratelimit.shadow', 'ssl.fail_verify_no_cert',
    'response_flag.UO', 'downstream_rq_time', 'upstream_rq_5xx', 'upstream_cx_connect_fail', 'upstream_rq_pending_active',
    'upstream_cx_destroy_remote_with_active_rq', 'upstream_cx_protocol_error', 'upstream_keepalive_retry', 'upstream_rq_retry',
    'upstream_rq_time', 'proxy_overhead',
  ]) {
    t.ok(statsNames.has(name), `/stats has ${name}`);
  }
});

t.test('the per-worker view reads what a worker recorded in its slab', async (t) => {
  const slabs = [LAYOUT.allocate(), LAYOUT.allocate()];
  const rec = new StatsRecorder(slabs[1]);
  const a = new SlabListenerStats(rec, 0);
  const b = new SlabListenerStats(rec, MAX_LISTENERS - 1);
  const uc = FLAGS.indexOf('UC');
  a.requestFinished(200, -1, 10, 20, 100);
  a.requestFinished(204, -1, 0, 0, 100);
  b.requestFinished(302, -1, 0, 0, 100);
  b.requestFinished(404, FLAGS.indexOf('NR'), 0, 0, 100);
  a.requestFinished(503, uc, 0, 0, 100);
  a.requestFinished(101, -1, 0, 0, 100);
  const cluster = new SlabClusterStats(rec, MAX_CLUSTERS - 1);
  cluster.count(ClusterCounter.KeepAliveRetries);
  new SlabClusterStats(rec, 0).count(ClusterCounter.KeepAliveRetries);
  a.requestFinished(0, FLAGS.indexOf('DC'), 0, 0, 100); // the client went away before any response
  rec.storeWorker({ p50_us: 10, p99_us: 200, max_us: 3000 });

  const reader = new StatsReader(slabs);
  t.same(workerStatsView(reader, 1), {
    requests: 7,
    responses2xx: 2,
    responses3xx: 1,
    responses4xx: 1,
    responses5xx: 1,
    downstreamResets: 1,
    keepAliveRaceRetries: 2,
    flags: { NR: 1, UC: 1, DC: 1 },
    event_loop_delay: { p50_us: 10, p99_us: 200, max_us: 3000 },
  });
  const idle = workerStatsView(reader, 0);
  t.equal(idle.requests, 0, 'the other worker recorded nothing');
  t.same(idle.flags, {}, 'flags never seen are left out');
});

t.test('handle objects have fast properties (a dictionary-mode handle is a hash lookup per count)', async (t) => {
  // %HasFastProperties needs --allow-natives-syntax: checked in a child process on the
  // built module, the one workers load.
  const script = `
    const m = await import(${JSON.stringify(pathToFileURL(resolve(REPO_ROOT, 'dist/src/stats/stat-names.js')).href)});
    const w = await import(${JSON.stringify(pathToFileURL(resolve(REPO_ROOT, 'dist/src/stats/tables/worker.js')).href)});
    const all = { ...m, WorkerCell: w.WorkerCell };
    const names = ['ListenerCounter', 'ListenerGauge', 'ListenerHistogram', 'ClusterCounter', 'ClusterGauge', 'ClusterHistogram', 'WorkerCell'];
    console.log(JSON.stringify(names.filter((n) => !%HasFastProperties(all[n]))));`;
  const out = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], { encoding: 'utf8' });
  t.equal(out.status, 0, `the check ran (${out.stderr.trim()})`);
  t.same(JSON.parse(out.stdout.trim() || 'null'), [], 'expected no handle object in dictionary mode; these are');
});
