// The standard benchmark suite: one command, every scenario against a direct-to-upstream
// baseline measured in the same run, rounds interleaved, medians with min–max.
//
//   npm run bench -- [--quick] [--scenarios latency,throughput,payload,workers]
//                    [--duration S] [--rounds N] [--warmup S] [--rates 1000,5000]
//                    [--connections 10,50,200] [--sizes 100,4096,65536] [--workers 1,2]
//                    [--no-pin] [--no-peers] [--out DIR]
//
// Scenarios (bench/README.md has the targets they are checked against):
//   latency     fixed rate, each of --rates: p50/p90/p99/p99.9 added µs (bench/lib/open-loop.ts)
//   throughput  closed loop, autocannon with each of --connections, pipelining 1
//   payload     closed loop, 50 connections, each response size of --sizes (direct and Remora)
//   workers     closed loop, 50 connections, Remora with each of --workers (req/s, per core, RSS)
// Targets: direct, Remora (1 worker), and when installed (not --no-peers) nginx (1
// worker), HAProxy (1 thread), node http-proxy and @fastify/http-proxy.
// Layout as bench/latency.ts: load generator (this process, lowest priority) and upstreams
// on core 0, proxies on core 1 (Remora with w workers on cores 1..w when there are enough).
// Writes <out>/suite-<timestamp>.{json,md} and suite-<timestamp>-*.svg (out: bench/results).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { runOpenLoop } from './lib/open-loop.js';
import {
  MACHINE,
  Processes,
  ROOT,
  canPin,
  commandLine,
  log,
  pinSelf,
  round,
  rssMb,
  runMain,
  sleep,
  stampOf,
  startRemora,
  startUpstream,
  writeConfig,
  writeResults,
} from './lib/harness.js';
import { PEERS, peerMissing, startPeer } from './lib/peers.js';
import { barChart } from './lib/svg.js';
import {
  checkTargets,
  planSteps,
  progressLine,
  resolveOptions,
  stepTable,
  stepTitle,
  summarizeClosed,
  summarizeLatency,
  targetsTable,
  type ClosedRound,
  type LatencyRound,
  type Step,
  type StepResult,
} from './lib/suite-plan.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    scenarios: { type: 'string' },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    rates: { type: 'string' },
    connections: { type: 'string' },
    sizes: { type: 'string' },
    workers: { type: 'string' },
    'no-pin': { type: 'boolean' },
    'no-peers': { type: 'boolean' },
    out: { type: 'string' },
  },
  strict: true,
});

const cores = os.availableParallelism();
const opts = resolveOptions(args, cores, canPin(false));
const procs = new Processes(opts.pin);
const tmp = mkdtempSync(join(os.tmpdir(), 'remora-suite-'));
/** Closed-loop connections for the payload and workers scenarios. */
const FIXED_CONNECTIONS = 50;

interface Endpoint {
  readonly port: number;
  readonly path: string;
  readonly pid: number | null;
}

/** Remora's config: `/` to the 100-byte upstream, `/payload/<size>/` to the one per size. */
function remoraConfig(workers: number, upstreams: ReadonlyMap<number, number>): object {
  const sized = [...upstreams].map(([size, port]) => ({ size, port }));
  return {
    workers,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [
      {
        name: 'bench',
        address: '127.0.0.1',
        port: 0,
        virtual_hosts: [
          {
            name: 'all',
            domains: ['*'],
            routes: [
              ...sized.map(({ size }) => ({ name: `s${size}`, match: { prefix: `/payload/${size}/` }, route: { cluster: `s${size}` } })),
              { name: 'all', match: { prefix: '/' }, route: { cluster: 'up' } },
            ],
          },
        ],
      },
    ],
    clusters: [
      { name: 'up', endpoints: [{ address: '127.0.0.1', port: upstreams.get(100) ?? [...upstreams.values()][0] }] },
      ...sized.map(({ size, port }) => ({ name: `s${size}`, endpoints: [{ address: '127.0.0.1', port }] })),
    ],
  };
}

/** Remora with `w` workers: cores 1..w when pinned and there are enough, else unpinned. */
function remoraCores(w: number): number | string | null {
  if (w === 1) return 1;
  return w <= cores - 1 ? `1-${w}` : null;
}

async function drive(e: Endpoint, connections: number, seconds: number): Promise<ClosedRound> {
  let peak: number | null = null;
  const sample = (): void => {
    if (e.pid === null) return;
    const mb = rssMb(e.pid);
    if (mb !== null && (peak === null || mb > peak)) peak = mb;
  };
  const timer = setInterval(sample, 250);
  try {
    const r = await autocannon({ url: `http://127.0.0.1:${e.port}${e.path}`, connections, pipelining: 1, duration: seconds });
    sample();
    return { rps: r.requests.average, errors: r.errors + r.timeouts + r.non2xx, rssPeakMb: peak };
  } finally {
    clearInterval(timer);
  }
}

const warmed = new Set<string>();

async function warm(kind: string, name: string, e: Endpoint, rate: number): Promise<void> {
  const key = `${kind}:${name}:${e.port}${e.path}`; // as planSteps counts them (per target, tool, path)
  if (opts.warmup <= 0 || warmed.has(key)) return;
  warmed.add(key);
  if (kind === 'open-loop') await runOpenLoop({ port: e.port, path: e.path, rate, durationMs: opts.warmup * 1000, connections: opts.openLoopConnections, warmupMs: 0 });
  else await drive(e, FIXED_CONNECTIONS, opts.warmup);
}

async function latencyStep(step: Step, targets: ReadonlyMap<string, Endpoint>): Promise<StepResult> {
  const raw: Record<string, LatencyRound[]> = Object.fromEntries(step.targets.map((t) => [t, []]));
  for (const t of step.targets) await warm('open-loop', t, targets.get(t)!, step.param);
  for (let r = 0; r < opts.rounds; r++) {
    for (const t of step.targets) {
      const e = targets.get(t)!;
      raw[t].push(await runOpenLoop({ port: e.port, path: e.path, rate: step.param, durationMs: opts.duration * 1000, connections: opts.openLoopConnections }));
    }
  }
  return { id: step.id, group: step.group, tool: step.tool, param: step.param, latency: summarizeLatency(raw, step.targets) };
}

async function closedStep(step: Step, targets: ReadonlyMap<string, Endpoint>, connections: number, perCore: number | null, note?: string): Promise<StepResult> {
  const raw: Record<string, ClosedRound[]> = Object.fromEntries(step.targets.map((t) => [t, []]));
  for (const t of step.targets) await warm('autocannon', t, targets.get(t)!, 0);
  for (let r = 0; r < opts.rounds; r++) {
    for (const t of step.targets) raw[t].push(await drive(targets.get(t)!, connections, opts.duration));
  }
  return { id: step.id, group: step.group, tool: step.tool, param: step.param, closed: summarizeClosed(raw, step.targets, perCore), ...(note ? { note } : {}) };
}

async function runStep(step: Step, base: ReadonlyMap<string, Endpoint>, upstreams: ReadonlyMap<number, number>): Promise<StepResult> {
  switch (step.group) {
    case 'latency':
      return latencyStep(step, base);
    case 'throughput':
      return closedStep(step, base, step.param, null);
    case 'payload': {
      const path = `/payload/${step.param}/`;
      const remora = base.get('remora')!;
      const targets = new Map<string, Endpoint>([
        ['direct', { port: upstreams.get(step.param)!, path, pid: null }],
        ['remora', { ...remora, path }],
      ]);
      return closedStep(step, targets, FIXED_CONNECTIONS, null);
    }
    case 'workers': {
      const w = step.param;
      const where = remoraCores(w);
      const remora = await startRemora(procs, where, writeConfig(tmp, `remora-${w}w`, remoraConfig(w, upstreams)));
      try {
        const targets = new Map<string, Endpoint>([
          ['direct', base.get('direct')!],
          [step.targets[1], { port: remora.listeners.bench, path: '/', pid: remora.pid }],
        ]);
        const note = opts.pin ? (where === null ? `unpinned: ${w} workers need ${w + 1} cores, ${cores} here` : `pinned to cores ${where}`) : 'unpinned';
        return await closedStep(step, targets, FIXED_CONNECTIONS, w, note);
      } finally {
        process.kill(remora.pid, 'SIGTERM');
        await sleep(300);
      }
    }
  }
}

function charts(results: readonly StepResult[]): { name: string; svg: string }[] {
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
    const series = [...new Set(rs.flatMap((r) => r.closed!.map((x) => x.target)))];
    out.push({
      name: group,
      svg: barChart({ title, unit: 'req/s', series, groups: rs.map((r) => ({ label: label(r), values: series.map((s) => r.closed!.find((x) => x.target === s)?.rps.median ?? null) })) }),
    });
  };
  closedChart('throughput', 'Closed-loop throughput by connections (autocannon)', (r) => `${r.param} conns`);
  closedChart('payload', 'Throughput by response size (autocannon, 50 connections)', (r) => `${r.param} B`);
  const ws = results.filter((x) => x.group === 'workers' && x.closed);
  if (ws.length > 0) {
    out.push({
      name: 'workers',
      svg: barChart({
        title: 'Remora throughput vs workers (autocannon, 50 connections)',
        unit: 'req/s',
        series: ['remora req/s', 'remora req/s per core', 'direct req/s'],
        groups: ws.map((r) => {
          const remora = r.closed!.find((x) => x.target !== 'direct');
          const direct = r.closed!.find((x) => x.target === 'direct');
          return { label: `${r.param} worker(s)`, values: [remora?.rps.median ?? null, remora?.perCore?.median ?? null, direct?.rps.median ?? null] };
        }),
      }),
    });
  }
  return out;
}

async function main(): Promise<void> {
  if (opts.pin) pinSelf(0);
  os.setPriority(19);
  const sizes = opts.groups.includes('payload') ? opts.sizes : [];
  const upstreams = new Map<number, number>();
  for (const size of [100, ...sizes]) if (!upstreams.has(size)) upstreams.set(size, await startUpstream(procs, 0, size));
  const needsBase = opts.groups.some((g) => g !== 'workers');
  const base = new Map<string, Endpoint>([['direct', { port: upstreams.get(100)!, path: '/', pid: null }]]);
  if (needsBase) {
    const remora = await startRemora(procs, 1, writeConfig(tmp, 'remora', remoraConfig(1, upstreams)));
    base.set('remora', { port: remora.listeners.bench, path: '/', pid: remora.pid });
  }
  const peers: Record<string, string> = {};
  const wantPeers = opts.groups.includes('latency') || opts.groups.includes('throughput');
  for (const name of PEERS) {
    if (!opts.peers) peers[name] = 'skipped (--no-peers)';
    else if (!wantPeers) peers[name] = 'not used by the chosen scenarios';
    else {
      const missing = peerMissing(name);
      if (missing !== null) peers[name] = `skipped: ${missing}`;
      else {
        try {
          const p = await startPeer(procs, 1, name, upstreams.get(100)!, 1, tmp);
          base.set(name, { port: p.port, path: '/', pid: p.pid ?? null });
          peers[name] = 'measured (1 worker/thread, keep-alive to the upstream)';
        } catch (err) {
          peers[name] = `skipped: failed to start (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`;
        }
      }
    }
  }
  const proxies = [...base.keys()].filter((k) => k !== 'direct');
  const steps = planSteps(opts, proxies);
  log(`suite: ${steps.length} scenarios, targets ${['direct', ...proxies].join(', ')}; pinning ${opts.pin ? 'on' : 'off'}`);
  for (const [name, state] of Object.entries(peers)) if (!state.startsWith('measured')) log(`  ${name}: ${state}`);

  const results: StepResult[] = [];
  const started = Date.now();
  for (let i = 0; i < steps.length; i++) {
    log(progressLine(steps, i));
    try {
      results.push(await runStep(steps[i], base, upstreams));
    } catch (err) {
      log(`  ${steps[i].id} failed: ${err instanceof Error ? err.message : String(err)}`);
      results.push({ id: steps[i].id, group: steps[i].group, tool: steps[i].tool, param: steps[i].param, note: `failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}` });
    }
  }
  const rss = Object.fromEntries(proxies.map((p) => [p, rssMb(base.get(p)!.pid ?? -1)]));
  const checks = checkTargets(results);

  const when = new Date().toISOString();
  const stamp = stampOf(when);
  const dir = opts.out ?? join(ROOT, 'bench/results');
  const command = commandLine('bench');
  const svgs = charts(results);
  const lines: string[] = [
    `# Benchmark suite — ${when}`,
    '',
    `Command: \`${command}\`  `,
    `Machine: ${MACHINE}; pinning ${opts.pin ? 'proxies on core 1 (Remora with w workers on cores 1..w when there are enough), load generator + upstreams on core 0' : 'off'}  `,
    `${opts.rounds} round(s) of ${opts.duration} s per target, interleaved, after a ${opts.warmup} s warm-up per target and tool; ${round((Date.now() - started) / 1000, 0)} s in all.  `,
    'Every figure is a median over rounds with the min–max in brackets; "added" and "vs direct" are paired per round with the direct-to-upstream baseline of the same run.',
    `Tools: **open-loop** = bench/lib/open-loop.ts (fixed rate, ${opts.openLoopConnections} keep-alive connections, µs from the scheduled send time, coordinated omission corrected); **closed-loop** = autocannon (pipelining 1).`,
    'Speed figures from a 2-core host rank targets only roughly: the generator shares core 0 with the upstream.',
    ...(opts.quick ? ['', '**--quick run**: one short round per target, barely warmed up; a smoke check of the suite, not a measurement. Target verdicts below follow these figures only.'] : []),
    '',
    '## Targets (bench/README.md)',
    '',
    ...targetsTable(checks),
    '',
    '## Peers',
    '',
    ...Object.entries(peers).map(([n, s]) => `- ${n}: ${s}`),
    '',
  ];
  for (const r of results) {
    lines.push(`## ${r.id}: ${stepTitle(r)}`, '');
    if (r.note) lines.push(`_${r.note}_`, '');
    if (r.latency || r.closed) lines.push(...stepTable(r), '');
  }
  if (svgs.length > 0) {
    lines.push('## Charts', '');
    for (const c of svgs) lines.push(`![${c.name}](suite-${stamp}-${c.name}.svg)`, '');
  }
  lines.push(`RSS at the end, MB: ${Object.entries(rss).map(([k, v]) => `${k} ${v ?? '-'}`).join(', ') || '-'}`);
  const result = { when, command, machine: MACHINE, pinned: opts.pin, options: opts, peers, targets: checks, scenarios: results, rss_mb_end: rss, charts: svgs.map((c) => `suite-${stamp}-${c.name}.svg`) };
  const files = writeResults('suite', when, result, lines, dir);
  for (const c of svgs) {
    const f = join(dir, `suite-${stamp}-${c.name}.svg`);
    writeFileSync(f, c.svg);
    files.push(f);
  }
  log(`wrote ${files.map((f) => basename(f)).join(', ')} in ${dir}`);
}

runMain(main, () => {
  procs.stopAll();
  rmSync(tmp, { recursive: true, force: true });
});
