// The benchmark suite's SVG charts (bench/suite.ts): one bar chart per latency rate, per
// closed-loop scenario (autocannon medians), req/s per core against workers, new
// connection vs keep-alive, features against all-off, and memory. Pure: results in, SVG
// text out.

import { barChart } from './svg.js';
import type { StepResult } from './suite-plan.js';

/** "remora-2w" → "remora" (workers scenario names). */
function baseName(t: string): string {
  return t.replace(/-\d+w$/, '');
}

export function charts(results: readonly StepResult[]): { name: string; svg: string }[] {
  const out: { name: string; svg: string }[] = [];
  for (const r of results.filter((x) => x.latency)) {
    out.push({
      name: `latency-${r.param}`,
      svg: barChart({
        title: `Latency at ${r.param} req/s (open-loop, median of rounds)`,
        unit: 'µs',
        series: ['p50', 'p90', 'p99'],
        groups: r.latency!.map((x) => ({ label: x.target, values: [x.absolute.p50, x.absolute.p90, x.absolute.p99] })),
      }),
    });
  }
  const closedChart = (group: string, title: string, label: (r: StepResult) => string): void => {
    const rs = results.filter((x) => x.group === group && x.closed);
    if (rs.length === 0) return;
    const series = [...new Set(rs.flatMap((r) => r.closed!.map((x) => baseName(x.target))))];
    out.push({
      name: group,
      svg: barChart({ title, unit: 'req/s', series, groups: rs.map((r) => ({ label: label(r), values: series.map((s) => r.closed!.find((x) => baseName(x.target) === s)?.rps.median ?? null) })) }),
    });
  };
  closedChart('throughput', 'Closed-loop throughput by connections (autocannon)', (r) => `${r.param} conns`);
  closedChart('payload', 'Throughput by response size (autocannon, 50 connections)', (r) => `${r.param} B`);
  closedChart('body', 'POST throughput by body size (autocannon, 50 connections)', (r) => `POST ${r.param} B`);
  closedChart('workers', 'Throughput vs workers (autocannon, 50 connections)', (r) => `${r.param} worker(s)`);
  const ws = results.filter((x) => x.group === 'workers' && x.closed);
  if (ws.length > 0) {
    out.push({
      name: 'workers-per-core',
      svg: barChart({
        title: 'Remora req/s per core vs workers (autocannon, 50 connections)',
        unit: 'req/s per core',
        series: ['remora', 'nginx', 'haproxy'],
        groups: ws.map((r) => ({ label: `${r.param} worker(s)`, values: ['remora', 'nginx', 'haproxy'].map((s) => r.closed!.find((x) => x.target === `${s}-${r.param}w`)?.perCore?.median ?? null) })),
      }),
    });
  }
  const conn = results.find((x) => x.connections);
  if (conn) {
    out.push({
      name: 'connections',
      svg: barChart({
        title: `New connection per request vs keep-alive (conn-loop, ${conn.param} lanes)`,
        unit: 'req/s',
        series: ['new connection', 'keep-alive'],
        groups: conn.connections!.map((x) => ({ label: x.target, values: [x.newRps.median, x.keepAliveRps.median] })),
      }),
    });
  }
  const feat = results.find((x) => x.group === 'features' && x.closed);
  if (feat) {
    out.push({
      name: 'features',
      svg: barChart({
        title: 'Features: req/s relative to all-off (median of per-round ratios)',
        unit: '× all-off',
        series: ['ratio'],
        groups: feat.closed!.filter((x) => x.target !== 'direct').map((x) => ({ label: x.target, values: [x.vsBase?.median ?? 1] })),
      }),
    });
  }
  const mem = results.find((x) => x.memory)?.memory;
  if (mem) {
    out.push({
      name: 'memory',
      svg: barChart({
        title: `Remora RSS, ${mem.workers} workers (target ≤ 100 MB under load)`,
        unit: 'MB',
        series: ['RSS'],
        groups: [
          { label: 'idle', values: [mem.idleMb] },
          { label: 'under load (median)', values: [mem.loadMedianMb] },
          { label: 'under load (peak)', values: [mem.peakMb] },
        ],
      }),
    });
  }
  return out;
}
