// Unit tests for bench/lib/gc-log.ts, the helpers of the GC-trace benchmark: parsing
// `node --trace-gc` lines apart from Remora's JSON log lines, splitting a stream into
// timed lines, placing pauses on the generator's clock, telling the main thread's isolate
// from the worker's, and relating request samples to the pauses. No process runs here.

import t from 'tap';
import {
  LineSplitter,
  Samples,
  TRACE_ROUNDING_MS,
  assignRoles,
  chanceOfOverlap,
  classifyLine,
  expectedOverlap,
  gcEndMs,
  gcFamily,
  isolateClock,
  isolateTraces,
  latencyStats,
  logHistogram,
  nearestPause,
  overlapFlags,
  overlapShare,
  overlapsPause,
  pausesIn,
  slowest,
  summarizePauses,
  timeBuckets,
  type ArrivedGc,
  type GcLine,
  type GcPause,
} from '../../bench/lib/gc-log.js';
import { quantileSorted } from '../../bench/lib/harness.js';

const SCAVENGE = '[2865:0x7f6034000f00]       46 ms: Scavenge 3.2 (3.2) -> 2.8 (4.2) MB, 1.68 / 0.00 ms  (average mu = 1.000, current mu = 1.000) allocation failure; ';
const MARK_COMPACT =
  '[2865:0x2f105c00]     1111 ms: Mark-Compact 23.2 (55.0) -> 10.6 (45.2) MB, 3.90 / 0.10 ms  (+ 3.4 ms in 10 steps since start of marking, biggest step 2.4 ms, walltime since start of marking 13 ms) (average mu = 1.000, current mu = 1.000) finalize incremental marking via task; GC in old space requested';
/** Newer V8 adds "pooled: N MB, " and a kind suffix. */
const NEWER = '[77:0x5555aaaa0000]   12345 ms: Mark-Compact (reduce) 40.1 (43.2) -> 38.4 (43.4) MB, pooled: 0 MB, 12.25 / 0.00 ms  (average mu = 0.990, current mu = 0.950) low memory notification; GC in old space requested';

function gc(text: string): GcLine {
  const l = classifyLine(text);
  if (l.type !== 'gc') throw new Error(`expected a GC line, got ${l.type}: ${text}`);
  return l.gc;
}

t.test('classifyLine: a Scavenge line', async (t) => {
  t.same(gc(SCAVENGE), {
    pid: 2865,
    isolate: '0x7f6034000f00',
    traceMs: 46,
    kind: 'Scavenge',
    family: 'scavenge',
    heapBeforeMb: 3.2,
    heapAfterMb: 2.8,
    pauseMs: 1.68,
    externalMs: 0,
    incremental: null,
    reason: 'allocation failure',
  });
});

t.test('classifyLine: a Mark-Compact line with incremental marking', async (t) => {
  const g = gc(MARK_COMPACT);
  t.equal(g.kind, 'Mark-Compact');
  t.equal(g.family, 'mark-compact');
  t.equal(g.pauseMs, 3.9);
  t.equal(g.externalMs, 0.1);
  t.same(g.incremental, { ms: 3.4, steps: 10, biggestStepMs: 2.4, wallMs: 13 });
  t.equal(g.reason, 'finalize incremental marking via task; GC in old space requested');
});

t.test('classifyLine: newer V8 format (kind suffix, pooled memory before the pause)', async (t) => {
  const g = gc(NEWER);
  t.equal(g.kind, 'Mark-Compact (reduce)');
  t.equal(g.family, 'mark-compact');
  t.equal(g.pauseMs, 12.25, 'the pause, not the pooled MB');
  t.equal(g.traceMs, 12345);
  t.equal(g.reason, 'low memory notification; GC in old space requested');
});

t.test('classifyLine: log lines, prefixed non-GC lines and anything else', async (t) => {
  t.same(classifyLine('{"level":30,"msg":"remora ready","admin":1234}'), { type: 'log', text: '{"level":30,"msg":"remora ready","admin":1234}' });
  t.equal(classifyLine('[1:0x1]       10 ms: Memory reducer: started GC #1').type, 'gc-other');
  t.equal(classifyLine('(node:123) Warning: something').type, 'other');
  t.equal(classifyLine(`${SCAVENGE}\r`).type, 'gc', 'a trailing CR is dropped');
});

t.test('gcFamily', async (t) => {
  t.equal(gcFamily('Scavenge'), 'scavenge');
  t.equal(gcFamily('Scavenge (interleaved)'), 'scavenge');
  t.equal(gcFamily('Minor Mark-Sweep'), 'minor-mark-sweep');
  t.equal(gcFamily('Mark-sweep'), 'mark-compact');
  t.equal(gcFamily('Mark-Compact (reduce)'), 'mark-compact');
  t.equal(gcFamily('Something new'), 'other');
});

t.test('LineSplitter: lines split across chunks take the chunk that ends them', async (t) => {
  const s = new LineSplitter();
  const got: [string, number][] = [];
  const at = (ms: number) => (line: string) => got.push([line, ms]);
  s.push('one\ntw', at(1));
  s.push('o\nthr', at(2));
  s.push('ee', at(3));
  s.end(at(4));
  t.same(got, [
    ['one', 1],
    ['two', 2],
    ['three', 4],
  ]);
});

function arrived(isolate: string, traceMs: number, arrivalMs: number, pauseMs = 1, kind = 'Scavenge'): ArrivedGc {
  return { pid: 1, isolate, traceMs, kind, family: gcFamily(kind), pauseMs, externalMs: 0, heapBeforeMb: 0, heapAfterMb: 0, incremental: null, reason: 'test', arrivalMs };
}

t.test('isolateClock and gcEndMs: arrival time, bounded by the trace', async (t) => {
  // An isolate that started at 1000 on the generator's clock; true ends at 1010.4,
  // 1020.6 and 1031.0 (trace prints 10, 21, 31); arrivals 0.05 ms later, one held up 3 ms.
  const lines = [arrived('0xa', 10, 1010.45), arrived('0xa', 21, 1020.65), arrived('0xa', 31, 1034.0)];
  const c = isolateClock('0xa', lines);
  t.equal(round3(c.startMs), round3(1020.65 - 21 + TRACE_ROUNDING_MS), 'min(arrival − trace) + 0.5');
  t.ok(Math.abs(c.startMs - 1000) <= 0.5, `start within the rounding of the true one, got ${c.startMs}`);
  t.equal(c.lateLines, 1, 'the held-up line is late');
  t.equal(c.firstArrivalMs, 1010.45);
  t.equal(gcEndMs(lines[0], c.startMs), 1010.45, 'a prompt line ends at its arrival');
  t.equal(round3(gcEndMs(lines[2], c.startMs)), round3(c.startMs + 31 + 0.5), 'a held-up line ends at the trace bound');
  t.ok(gcEndMs(lines[2], c.startMs) - 1031.0 <= 1, 'no more than a ms after the true end');
  t.throws(() => isolateClock('0xb', []));
});

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

t.test('isolateTraces and assignRoles: main started first, worker has the most pauses in the window', async (t) => {
  // main starts at 0 (low address), worker at 500 (high), a helper thread at 600.
  const lines: ArrivedGc[] = [
    arrived('0x7f00000000', 100, 600.1), // worker prints first
    arrived('0x2f105c00', 800, 800.2),
    arrived('0x7f00000000', 1500, 2000.1, 2),
    arrived('0x7f00000000', 1600, 2100.1, 0.5),
    arrived('0x7f00000000', 1700, 2200.1, 3),
    arrived('0x7f80000000', 1500, 2100.3),
  ];
  const traces = isolateTraces(lines);
  t.equal(traces.size, 3);
  const w = traces.get('0x7f00000000')!;
  t.same(
    w.pauses.map((p) => round3(p.endMs - p.startMs)),
    [1, 2, 0.5, 3],
    'each pause is [end − pause, end]',
  );
  t.ok(
    w.pauses.every((p, i) => i === 0 || p.startMs >= w.pauses[i - 1].startMs),
    'sorted by start',
  );
  const roles = assignRoles(traces, 1900, 2300);
  t.equal(roles.main, '0x2f105c00', 'earliest start, though not the first to print');
  t.equal(roles.worker, '0x7f00000000');
  t.same(roles.others, ['0x7f80000000']);
  t.equal(roles.firstPrinted, '0x7f00000000');
  t.equal(roles.lowestAddress, '0x2f105c00');
  t.same(assignRoles(new Map(), 0, 1), { main: null, worker: null, others: [], firstPrinted: null, lowestAddress: null });
});

function pause(startMs: number, pauseMs: number, kind = 'Scavenge', incremental: GcPause['incremental'] = null): GcPause {
  return { kind, family: gcFamily(kind), startMs, endMs: startMs + pauseMs, pauseMs, reason: '', incremental };
}

t.test('pausesIn and summarizePauses: counts, total and max by kind, incremental marking', async (t) => {
  const ps = [pause(0, 1), pause(10, 2), pause(20, 5, 'Mark-Compact', { ms: 3, steps: 7, biggestStepMs: 1, wallMs: 9 }), pause(40, 1)];
  t.same(
    pausesIn(ps, 10.5, 20).map((p) => p.startMs),
    [10, 20],
    'pauses touching the window count',
  );
  const s = summarizePauses(ps);
  t.equal(s.count, 4);
  t.equal(s.totalMs, 9);
  t.equal(s.maxMs, 5);
  t.same(
    s.byKind.map((k) => [k.kind, k.count, k.totalMs, k.maxMs]),
    [
      ['Mark-Compact', 1, 5, 5],
      ['Scavenge', 3, 4, 2],
    ],
    'most time first',
  );
  t.equal(s.incrementalSteps, 7);
  t.equal(s.incrementalMs, 3);
  t.same(summarizePauses([]), { count: 0, totalMs: 0, maxMs: 0, byKind: [], incrementalSteps: 0, incrementalMs: 0 });
});

t.test('Samples grow and latencyStats are exact nearest-rank', async (t) => {
  const s = new Samples(2);
  for (let i = 1; i <= 1000; i++) s.add(i, i); // sent at i ms, i µs
  t.equal(s.count, 1000);
  t.equal(s.sentMs(999), 1000);
  t.equal(s.doneMs(999), 1001, 'sent + latency');
  const st = latencyStats(s);
  t.same([st.p50, st.p90, st.p99, st.p999, st.max, st.mean], [500, 900, 990, 999, 1000, 500.5]);
  t.ok(Number.isNaN(latencyStats(new Samples()).p50), 'no samples, no percentiles');
  t.equal(quantileSorted([1, 2, 3, 4], 0.5), 2);
});

t.test('overlapsPause: edges, slack, and the pause before the last one', async (t) => {
  const ps = [pause(10, 2), pause(20, 1)];
  t.ok(overlapsPause(ps, 11, 11.5), 'inside');
  t.ok(overlapsPause(ps, 5, 10), 'ends as the pause starts');
  t.ok(overlapsPause(ps, 12, 15), 'starts as the pause ends');
  t.notOk(overlapsPause(ps, 12.1, 19.9), 'between pauses');
  t.ok(overlapsPause(ps, 12.5, 19.5, 1), 'within the slack of both');
  t.notOk(overlapsPause(ps, 0, 9), 'before every pause');
  t.notOk(overlapsPause([], 0, 100));
  // Estimated intervals may overlap slightly: a long one followed by one that starts inside it.
  t.ok(overlapsPause([pause(0, 10), pause(5, 0.1)], 8, 8.5), 'covered by the earlier, longer pause');
});

t.test('overlapFlags and overlapShare: above-p99 share against the base rate', async (t) => {
  const s = new Samples();
  s.add(0, 500); // [0, 0.5] no
  s.add(9, 3000); // [9, 12] yes
  s.add(13, 200); // no
  s.add(19.5, 1000); // [19.5, 20.5] yes
  const flags = overlapFlags(s, [pause(10, 2), pause(20, 1)]);
  t.same([...flags], [0, 1, 0, 1]);
  t.same(overlapShare(s, flags), { requests: 4, overlapping: 2, share: 0.5 });
  t.same(overlapShare(s, flags, 900), { requests: 2, overlapping: 2, share: 1 }, 'strictly above the threshold');
  t.ok(Number.isNaN(overlapShare(s, flags, 1e9).share), 'none above: NaN share');
});

t.test('nearestPause: during, before, after, none', async (t) => {
  const ps = [pause(10, 2, 'Scavenge'), pause(50, 4, 'Mark-Compact')];
  t.same(nearestPause(ps, 11, 13), { pause: ps[0], distanceMs: 0, relation: 'during' });
  t.same(nearestPause(ps, 15, 16), { pause: ps[0], distanceMs: 3, relation: 'before' }, 'the pause ended 3 ms before the request');
  t.same(nearestPause(ps, 40, 45), { pause: ps[1], distanceMs: 5, relation: 'after' }, 'the pause started 5 ms after the request');
  t.same(nearestPause(ps, 0, 1), { pause: ps[0], distanceMs: 9, relation: 'after' });
  t.same(nearestPause(ps, 100, 101), { pause: ps[1], distanceMs: 46, relation: 'before' });
  t.equal(nearestPause([], 0, 1), null);
});

t.test('slowest, logHistogram and timeBuckets', async (t) => {
  const s = new Samples();
  const lat = [150, 90, 1000, 12000, 140];
  lat.forEach((us, i) => s.add(i * 10, us));
  t.same(slowest(s, 2), [3, 2]);
  t.same(slowest(s, 10).length, 5);
  const flags = Uint8Array.from([0, 0, 1, 1, 0]);
  const bins = logHistogram(s, flags, 1);
  t.same(
    bins.map((b) => [b.loUs, b.hiUs, b.count, b.overlapping]),
    [
      [10, 100, 1, 0],
      [100, 1000, 2, 0],
      [1000, 10000, 1, 1],
      [10000, 100000, 1, 1],
    ],
    'one bin per decade, 1000 µs starts its decade',
  );
  t.equal(
    logHistogram(s, flags, 10).reduce((n, b) => n + b.count, 0),
    5,
    'every request in some bin',
  );
  t.same(logHistogram(new Samples(), new Uint8Array(0)), []);
  t.same(timeBuckets(s, 0, 20), [
    { startMs: 0, count: 2, minUs: 90, maxUs: 150 },
    { startMs: 20, count: 2, minUs: 1000, maxUs: 12000 },
    { startMs: 40, count: 1, minUs: 140, maxUs: 140 },
  ]);
});

t.test('chanceOfOverlap and expectedOverlap: what a request that long meets by chance', async (t) => {
  // Window [0, 100]; pauses [10, 12] and [50, 51].
  const ps = [pause(10, 2), pause(50, 1)];
  t.equal(chanceOfOverlap(ps, 0, 0, 100), 0.03, 'a point in time: the pauses\' share of the window');
  t.equal(chanceOfOverlap(ps, 5, 0, 100), 0.13, 'sent in [5, 12] or [45, 51]');
  t.equal(chanceOfOverlap(ps, 40, 0, 100), 0.51, 'the widened intervals [-30, 12] (clipped to 0) and [10, 51] merge: [0, 51]');
  t.equal(chanceOfOverlap(ps, 0, 0, 100, 1), 0.07, 'slack widens each pause by 1 ms either side');
  t.equal(chanceOfOverlap([], 5, 0, 100), 0);
  t.ok(Number.isNaN(chanceOfOverlap(ps, 1, 5, 5)), 'an empty window');
  const s = new Samples();
  s.add(0, 100); // 0.1 ms
  s.add(20, 5000); // 5 ms
  s.add(60, 40000); // 40 ms
  t.equal(round3(expectedOverlap(s, ps, 1000, 0, 100)), round3((0.13 + 0.51) / 2), 'the mean over the requests above the threshold');
  t.ok(Number.isNaN(expectedOverlap(s, ps, 1e9, 0, 100)), 'none above: NaN');
});
