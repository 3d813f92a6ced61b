// The benchmark suite's verdicts and Markdown (bench/suite.ts): the targets of
// bench/README.md checked against a run's results, with the generator-bound rule of
// verdict.ts applied to every closed-loop figure (autocannon and the wrk cross-check), the
// list of generator-bound figures, and each scenario's tables. Pure, unit-tested in
// test/unit/bench-suite.test.ts and test/unit/bench-verdict.test.ts.

import { round, showSpread, type Spread } from './harness.js';
import {
  FEATURE_COST_MAX,
  SOAK_GROWTH_MAX_MB,
  TRACING_COST_MAX,
  type ClosedRow,
  type LatencyRow,
  type StepResult,
} from './suite-plan.js';
import { headroomCell, verdictOf, worstHeadroom, type Check, type Headroom, type Verdict } from './verdict.js';

export type { Verdict } from './verdict.js';

// ---- targets ------------------------------------------------------------------------

export interface TargetCheck {
  readonly target: string;
  readonly verdict: Verdict;
  readonly detail: string;
}

function latencyRow(results: readonly StepResult[], rate: number, target: string): LatencyRow | undefined {
  return results.find((r) => r.group === 'latency' && r.param === rate)?.latency?.find((row) => row.target === target);
}

/** "+12" / "-3": a difference with its sign. */
export function signed(x: number): string {
  return x >= 0 ? `+${x}` : String(x);
}

/** " (direct 1.02×)": the headroom behind a closed-loop comparison, for the detail. */
function headroomText(figures: readonly (ClosedRow | undefined)[]): string {
  const parts = figures.flatMap((f) => (f?.headroom?.ratio !== null && f?.headroom?.ratio !== undefined ? [`${f.target} ${f.headroom.ratio}×`] : []));
  return parts.length > 0 ? `; direct ÷ ${parts.join(', ')}` : '';
}

/** The targets of bench/README.md, each checked against this run's results. */
export function checkTargets(results: readonly StepResult[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  for (const rate of [1000, 5000]) {
    const row = latencyRow(results, rate, 'remora');
    const name = `p99 added ≤ 0.5 ms at ${rate.toLocaleString('en-US')} req/s`;
    if (!row?.added) out.push({ target: name, verdict: 'not measured', detail: `no latency run at ${rate} req/s` });
    else out.push({ target: name, verdict: row.added.p99.median <= 500 ? 'met' : 'missed', detail: `remora ${signed(row.added.p99.median)} µs (${row.added.p99.min}–${row.added.p99.max})` });
  }
  {
    // Open loop: the generator sends at a fixed rate, so the generator-bound rule (a
    // closed-loop one) does not apply.
    const checks = results
      .filter((r) => r.group === 'latency')
      .flatMap((r): Check[] => {
        const remora = r.latency?.find((x) => x.target === 'remora')?.added;
        const nginx = r.latency?.find((x) => x.target === 'nginx')?.added;
        return remora && nginx ? [{ ok: remora.p50.median <= nginx.p50.median, text: `${r.param} req/s: remora ${signed(remora.p50.median)} µs, nginx ${signed(nginx.p50.median)} µs`, headroom: 'judged' }] : [];
      });
    const c = verdictOf(checks);
    out.push({ target: "median added latency ≤ nginx's", verdict: c.verdict, detail: c.detail || 'needs a latency run with nginx' });
  }
  const closedPairs = (peer: string, factor: number, tool: 'autocannon' | 'wrk'): { verdict: Verdict; detail: string } =>
    verdictOf(
      results
        .filter((r) => r.group === 'throughput')
        .flatMap((r): Check[] => {
          const rows = tool === 'wrk' ? r.wrk : r.closed;
          const remora = rows?.find((x) => x.target === 'remora');
          const other = rows?.find((x) => x.target === peer);
          if (!remora || !other) return [];
          const ratio = other.rps.median > 0 ? round(remora.rps.median / other.rps.median, 2) : Infinity;
          return [
            {
              ok: remora.rps.median >= factor * other.rps.median,
              text: `c${r.param}: ${remora.rps.median} vs ${other.rps.median} req/s (${ratio}×${headroomText([remora, other])})`,
              headroom: worstHeadroom([remora.headroom, other.headroom]),
            },
          ];
        }),
    );
  {
    const c = closedPairs('nginx', 1, 'autocannon');
    out.push({ target: '1-worker throughput ≥ nginx with 1 worker', verdict: c.verdict, detail: c.detail || 'needs a throughput run with nginx' });
    const w = closedPairs('nginx', 1, 'wrk');
    out.push({ target: '1-worker throughput ≥ nginx with 1 worker (wrk)', verdict: w.verdict, detail: w.detail || 'needs wrk and a throughput run with nginx' });
  }
  for (const peer of ['http-proxy', 'fastify-proxy']) {
    const c = closedPairs(peer, 3, 'autocannon');
    const label = peer === 'http-proxy' ? 'node http-proxy' : '@fastify/http-proxy';
    out.push({ target: `throughput ≥ 3× ${label}`, verdict: c.verdict, detail: c.detail || `needs a throughput run with ${label}` });
  }
  // Throughput cost of a feature variant against all-off, per round; judged only when
  // neither the variant nor all-off is generator-bound (a capped generator hides a cost).
  const features = results.find((r) => r.group === 'features')?.closed;
  const featureCost = (variant: string, max: number, name: string): void => {
    const row = features?.find((x) => x.target === variant);
    const off = features?.find((x) => x.target === 'all-off');
    if (!row?.vsBase) {
      out.push({ target: name, verdict: 'not measured', detail: 'needs the features scenario' });
      return;
    }
    const limit = 1 - max;
    const noisy = row.vsBase.min < limit && row.vsBase.max > limit ? '; noisy: rounds on both sides of the target' : '';
    const c = verdictOf([
      {
        ok: row.vsBase.median >= limit,
        text: `${variant} / all-off req/s per round ${showSpread(row.vsBase)} (cost ${round((1 - row.vsBase.median) * 100, 1)} %)${noisy}${headroomText([off, row])}`,
        headroom: worstHeadroom([off?.headroom ?? null, row.headroom]),
      },
    ]);
    out.push({ target: name, verdict: c.verdict, detail: c.detail });
  };
  featureCost('all-on', FEATURE_COST_MAX, `feature cost ≤ ${FEATURE_COST_MAX * 100} % with everything on`);
  featureCost('tracing-1', TRACING_COST_MAX[0], `tracing cost ≤ ${TRACING_COST_MAX[0] * 100} % at 1 % sampling`);
  featureCost('tracing-100', TRACING_COST_MAX[1], `tracing cost ≤ ${TRACING_COST_MAX[1] * 100} % at 100 % sampling`);
  {
    // RSS is not a throughput figure: the generator-bound rule does not apply.
    const name = 'RSS ≤ 100 MB with 2 workers under load';
    const mem = results.find((r) => r.id === 'memory')?.memory;
    const fallback = results.find((r) => r.group === 'workers' && r.param === 2)?.closed?.find((x) => x.target === 'remora-2w');
    if (mem && Number.isFinite(mem.peakMb)) out.push({ target: name, verdict: mem.peakMb <= 100 ? 'met' : 'missed', detail: `peak ${mem.peakMb} MB (idle ${mem.idleMb} MB; ${mem.samples} samples every 100 ms)` });
    else if (fallback && fallback.rssPeakMb !== null) out.push({ target: name, verdict: fallback.rssPeakMb <= 100 ? 'met' : 'missed', detail: `peak ${fallback.rssPeakMb} MB (workers scenario; no memory scenario)` });
    else out.push({ target: name, verdict: 'not measured', detail: 'needs the memory scenario' });
  }
  {
    const name = `no RSS growth over the soak (≤ ${SOAK_GROWTH_MAX_MB} MB)`;
    const soak = results.find((r) => r.id === 'memory-soak')?.soak;
    if (!soak || !Number.isFinite(soak.growthMb)) out.push({ target: name, verdict: 'not measured', detail: 'needs --soak' });
    else
      out.push({
        target: name,
        verdict: soak.growthMb <= SOAK_GROWTH_MAX_MB ? 'met' : 'missed',
        detail: `${soak.seconds} s at ${soak.rate} req/s: ${soak.firstMb} → ${soak.lastMb} MB (${signed(soak.growthMb)} MB, medians of the first and last ${soak.windowS} s; slope ${soak.slopeMbPerMin} MB/min)`,
      });
  }
  return out;
}

/** Every generator-bound figure of a run, one entry per scenario and tool:
 *  "throughput-c50 (autocannon): remora 1.02×, nginx 1.1×" (direct ÷ target). */
export function generatorBoundFigures(results: readonly StepResult[]): string[] {
  const bound = (rows: readonly { target: string; h: Headroom | null }[]): string[] =>
    rows.filter((x) => x.h?.state === 'generator-bound').map((x) => `${x.target} ${x.h!.ratio ?? '-'}×`);
  const out: string[] = [];
  for (const r of results) {
    const tool = r.tool;
    if (r.closed) {
      const b = bound(r.closed.map((x) => ({ target: x.target, h: x.headroom })));
      if (b.length > 0) out.push(`${r.id} (${tool}): ${b.join(', ')}`);
    }
    if (r.wrk) {
      const b = bound(r.wrk.map((x) => ({ target: x.target, h: x.headroom })));
      if (b.length > 0) out.push(`${r.id} (wrk): ${b.join(', ')}`);
    }
    if (r.connections) {
      const b = bound(r.connections.flatMap((x) => [{ target: `${x.target} new`, h: x.newHeadroom }, { target: `${x.target} keep-alive`, h: x.keepAliveHeadroom }]));
      if (b.length > 0) out.push(`${r.id} (${tool}): ${b.join(', ')}`);
    }
  }
  return out;
}

// ---- Markdown -----------------------------------------------------------------------

function cell(s: Spread | null): string {
  return s === null ? '-' : showSpread(s);
}

/** The generator columns every closed-loop row ends with. */
const GENERATOR_HEAD = ' direct req/s | direct ÷ target | generator CPU % | generator-bound |';

function generatorCells(direct: Spread | null, h: Headroom | null, cpu: Spread | null): string {
  return ` ${cell(direct)} | ${h?.ratio ?? '-'} | ${cell(cpu)} | ${headroomCell(h)} |`;
}

function closedTable(rows: readonly ClosedRow[], base: string, workers: boolean): string[] {
  return [
    `| target | req/s | vs ${base} |${workers ? ' req/s per core | peak RSS MB |' : ''} errors |${GENERATOR_HEAD}`,
    `|---|---|---|${workers ? '---|---|' : ''}---|---|---|---|---|`,
    ...rows.map((x) => `| ${x.target} | ${cell(x.rps)} | ${cell(x.vsBase)} |${workers ? ` ${cell(x.perCore)} | ${x.rssPeakMb ?? '-'} |` : ''} ${x.errors} |${generatorCells(x.direct, x.headroom, x.generatorCpuPct)}`),
  ];
}

export function stepTable(r: StepResult): string[] {
  if (r.latency) {
    return [
      '| target | p50 µs | p99 µs | added p50 µs | added p90 µs | added p99 µs | added p99.9 µs | requests | errors |',
      '|---|---|---|---|---|---|---|---|---|',
      ...r.latency.map(
        (x) =>
          `| ${x.target} | ${x.absolute.p50} | ${x.absolute.p99} | ${cell(x.added?.p50 ?? null)} | ${cell(x.added?.p90 ?? null)} | ${cell(x.added?.p99 ?? null)} | ${cell(x.added?.p999 ?? null)} | ${x.requests} | ${x.errors} |`,
      ),
    ];
  }
  if (r.connections) {
    return [
      '| target | new connection req/s | keep-alive req/s | new / keep-alive | new vs direct | keep-alive vs direct | errors (new / keep-alive) | direct req/s (new / keep-alive) | generator CPU % (new / keep-alive) | generator-bound (new / keep-alive) |',
      '|---|---|---|---|---|---|---|---|---|---|',
      ...r.connections.map(
        (x) =>
          `| ${x.target} | ${cell(x.newRps)} | ${cell(x.keepAliveRps)} | ${cell(x.newVsKeepAlive)} | ${cell(x.newVsDirect)} | ${cell(x.keepAliveVsDirect)} | ${x.newErrors} / ${x.keepAliveErrors} | ${cell(x.newDirect)} / ${cell(x.keepAliveDirect)} | ${cell(x.newCpuPct)} / ${cell(x.keepAliveCpuPct)} | ${headroomCell(x.newHeadroom)} / ${headroomCell(x.keepAliveHeadroom)} |`,
      ),
    ];
  }
  if (r.memory) {
    const m = r.memory;
    return [
      '| Remora | idle RSS MB (median) | RSS under load MB (median) | peak RSS MB | peak per round MB | req/s | errors |',
      '|---|---|---|---|---|---|---|',
      `| ${m.workers} workers | ${m.idleMb} | ${m.loadMedianMb} | ${m.peakMb} | ${cell(m.peakPerRound)} | ${cell(m.rps)} | ${m.errors} |`,
    ];
  }
  if (r.soak) {
    const s = r.soak;
    return [
      '| duration | rate | first window MB | last window MB | growth MB | slope MB/min | min–max MB | samples | requests | errors |',
      '|---|---|---|---|---|---|---|---|---|---|',
      `| ${s.seconds} s | ${s.rate} req/s | ${s.firstMb} | ${s.lastMb} | ${s.growthMb} | ${s.slopeMbPerMin} | ${s.minMb}–${s.maxMb} | ${s.samples} | ${s.requests} | ${s.errors} |`,
    ];
  }
  return closedTable(r.closed ?? [], r.base ?? 'direct', r.group === 'workers');
}

/** The wrk cross-check's table (same columns, baseline direct), or nothing. */
export function wrkTable(r: StepResult): string[] {
  if (!r.wrk || r.wrk.length === 0) return [];
  return [`wrk cross-check, same rounds (${r.wrkText ?? 'wrk'}):`, '', ...closedTable(r.wrk, 'direct', false)];
}

export function stepTitle(r: StepResult): string {
  const tool = r.toolText ?? r.tool;
  switch (r.group) {
    case 'latency':
      return `Latency at ${r.param} req/s (${tool}, µs)`;
    case 'throughput':
      return `Closed-loop throughput, ${r.param} connections (${tool})`;
    case 'payload':
      return `Payload: ${r.param} B responses (${tool})`;
    case 'body':
      return `Request bodies: POST ${r.param} B, 100 B responses (${tool})`;
    case 'connections':
      return `New connection per request vs keep-alive, ${r.param} lanes (${tool})`;
    case 'features':
      return `Features on vs off, Remora 1 worker (${tool})`;
    case 'workers':
      return `${r.param} worker(s) (${tool})`;
    case 'memory':
      return r.id === 'memory-soak' ? `Memory: RSS over a soak, Remora ${r.param} workers (${tool})` : `Memory: RSS idle and under load, Remora ${r.param} workers (${tool})`;
  }
}

export function targetsTable(checks: readonly TargetCheck[]): string[] {
  return ['| target | verdict | measured |', '|---|---|---|', ...checks.map((c) => `| ${c.target} | **${c.verdict}** | ${c.detail} |`)];
}
