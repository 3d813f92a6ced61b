// Unit tests for bench/lib/footprint-report.ts, the memory footprint benchmark's figures
// and report (bench/footprint.ts): /proc/<pid>/status parsing, median and max per field,
// Remora minus the floor, the admin /workers reply, the --workers list, the targets'
// verdicts and the Markdown tables. Synthetic figures only: nothing here runs a benchmark.

import t from 'tap';
import {
  IDLE_TARGET_MB,
  LOAD_TARGET_MB,
  checkTargets,
  heapMb,
  likeFloor,
  minus,
  overFloor,
  parseProcStatus,
  parseWorkerCounts,
  parseWorkersReply,
  runLines,
  spreadOf,
  summaryLines,
  targetLines,
  type FloorRun,
  type MemSample,
  type RemoraRun,
  type WorkerCountRun,
} from '../../bench/lib/footprint-report.js';

const STATUS = [
  'Name:\tnode',
  'VmPeak:\t 1234567 kB',
  'VmRSS:\t   88064 kB',
  'RssAnon:\t   52224 kB',
  'RssFile:\t   35840 kB',
  'RssShmem:\t       0 kB',
  'Threads:\t12',
].join('\n');

const mem = (rss: number, anon: number, file: number): MemSample => ({ rss, anon, file, shmem: 0 });

function remora(over: Partial<RemoraRun> = {}): RemoraRun {
  return {
    start: mem(104, 68, 36),
    steadyIdle: mem(86, 50, 36),
    load: { spread: spreadOf([mem(95, 59, 36), mem(97, 61, 36), mem(99, 62, 37)]), rps: 9000, errors: 0 },
    afterLoad: mem(88, 52, 36),
    heapsIdle: [
      { worker: 0, usedMb: 6.1, totalMb: 10.1 },
      { worker: 1, usedMb: 6.2, totalMb: 10.1 },
    ],
    heapsAfterLoad: [
      { worker: 0, usedMb: 7, totalMb: 12 },
      { worker: 1, usedMb: 7.1, totalMb: 12 },
    ],
    uwsMapped: false,
    ...over,
  };
}

const floors: FloorRun[] = [
  { kind: 'http', start: mem(61, 23, 38), steady: mem(56, 18, 38), heaps: [{ worker: 0, usedMb: 2.5, totalMb: 4 }], error: null },
  { kind: 'uws', start: mem(63, 23.5, 39.5), steady: mem(58.3, 18.4, 39.9), heaps: [], error: null },
];

const run = (workers: number, r: RemoraRun = remora(), f: FloorRun[] = floors): WorkerCountRun => ({ workers, floors: f, remora: r });

t.test('parseProcStatus: kB lines to MB with one decimal', async (t) => {
  t.same(parseProcStatus(STATUS), { rss: 86, anon: 51, file: 35, shmem: 0 });
  t.same(parseProcStatus('VmRSS:\t 1000 kB\n'), { rss: 1, anon: 0, file: 0, shmem: 0 }, 'no Rss* split: 0 for them');
  t.equal(parseProcStatus('Name:\tkthreadd\nState:\tS\n'), null, 'no VmRSS: null');
  t.same(parseProcStatus('VmRSS:\t 1536 kB\nRssAnon:\t 512 kB\nRssFile:\t 1024 kB\nRssShmem:\t 0 kB\n'), { rss: 1.5, anon: 0.5, file: 1, shmem: 0 });
});

t.test('spreadOf and minus: per field, rounded', async (t) => {
  t.equal(spreadOf([]), null, 'no samples: null');
  const s = spreadOf([mem(90, 60, 30), mem(100, 55, 45), mem(95, 70, 25), mem(92, 58, 34)]);
  t.same(s, { median: mem(93.5, 59, 32), max: mem(100, 70, 45), samples: 4 }, 'each column on its own (the max anon and max file come from different samples)');
  t.same(minus(mem(86, 50.3, 35.7), mem(56, 18.1, 37.9)), { rss: 30, anon: 32.2, file: -2.2, shmem: 0 }, 'negative where Remora has less');
});

t.test('heapMb rounds as the admin /workers endpoint does', async (t) => {
  t.equal(heapMb(10.1 * 1024 * 1024), 10.1);
  t.equal(heapMb(17_600_000), 16.8);
  t.equal(heapMb(0), 0);
});

t.test('parseWorkersReply: slot and heap fields; null where a worker did not answer', async (t) => {
  const body = JSON.stringify({
    uptime_s: 20,
    workers: [
      { slot: 0, state: 'ready', heap_used_mb: 6.1, heap_total_mb: 10.1, stats: {} },
      { slot: 1, state: 'starting', heap_used_mb: null, heap_total_mb: null },
    ],
  });
  t.same(parseWorkersReply(body), [
    { worker: 0, usedMb: 6.1, totalMb: 10.1 },
    { worker: 1, usedMb: null, totalMb: null },
  ]);
  t.throws(() => parseWorkersReply('{"uptime_s": 3}'), /expected \{"workers"/, 'another shape is an error');
  t.throws(() => parseWorkersReply('not json'), SyntaxError);
});

t.test('parseWorkerCounts: distinct counts in order; anything else is an error naming the input', async (t) => {
  t.same(parseWorkerCounts('1,2,4'), [1, 2, 4]);
  t.same(parseWorkerCounts(' 2 , 1,2'), [2, 1], 'spaces allowed, duplicates dropped');
  for (const bad of ['', '0', '1,,2', '1.5', 'two', '257', '-1']) t.throws(() => parseWorkerCounts(bad), { message: new RegExp(`got "${bad}"`) }, `rejects "${bad}"`);
});

t.test('likeFloor and overFloor: the floor whose listener Remora ran', async (t) => {
  t.equal(likeFloor(run(2))?.kind, 'http', 'uWS not mapped into Remora: the node:http floor');
  t.equal(likeFloor(run(2, remora({ uwsMapped: true })))?.kind, 'uws', 'uWS mapped: the uWS floor');
  const noUws: FloorRun[] = [floors[0], { kind: 'uws', start: null, steady: null, heaps: [], error: 'no build' }];
  t.equal(likeFloor(run(2, remora({ uwsMapped: true }), noUws))?.kind, 'http', 'the wanted floor did not measure: another one that did');
  t.equal(likeFloor(run(2, remora(), [])), null, 'no floor: null');
  t.same(overFloor(remora(), floors[0]), { rss: 30, anon: 32, file: -2, shmem: 0 });
  t.equal(overFloor(remora({ steadyIdle: null }), floors[0]), null);
});

t.test('checkTargets: steady idle and peak under load with 2 workers', async (t) => {
  const [idle, load] = checkTargets([run(1), run(2)]);
  t.equal(idle.verdict, 'not met', `86 MB idle > ${IDLE_TARGET_MB} MB`);
  t.match(idle.detail, /steady idle 86 MB; the start sample, 1 s after ready, was 104 MB; idle after load 88 MB/);
  t.equal(load.verdict, 'not met', `peak 99 MB > ${LOAD_TARGET_MB} MB`);
  t.match(load.detail, /peak 99 MB \(median 97 MB over 3 samples, 9000 req\/s\)/);

  const small = remora({ steadyIdle: mem(75, 40, 35), load: { spread: spreadOf([mem(80, 45, 35), mem(90, 55, 35)]), rps: 1, errors: 0 } });
  t.same(
    checkTargets([run(2, small)]).map((c) => c.verdict),
    ['met', 'met'],
    'exactly at the limits is met',
  );
  t.same(
    checkTargets([run(1), run(4)]).map((c) => c.verdict),
    ['not measured', 'not measured'],
    'no 2-worker run',
  );
  t.same(
    checkTargets([run(2, remora({ steadyIdle: null, load: { spread: null, rps: 0, errors: 0 } }))]).map((c) => c.verdict),
    ['not measured', 'not measured'],
    'missing samples are not measured, never met',
  );
});

t.test('Markdown: targets, summary and per-worker tables', async (t) => {
  const tl = targetLines(checkTargets([run(2)])).join('\n');
  t.match(tl, /idle VmRSS ≤ 75 MB with 2 workers: \*\*not met\*\*/);
  t.match(tl, /VmRSS under load ≤ 90 MB with 2 workers: \*\*not met\*\* — peak 99 MB/);

  const sl = summaryLines([run(2)]);
  t.equal(sl.find((l) => l.startsWith('| 2 |')), '| 2 | 56 (node:http floor) | 104 | 86 | **+30** (+32 / -2) | 97 / 99 | 88 |');

  const rl = runLines(run(2), 20, 10, 50);
  const text = rl.join('\n');
  t.equal(rl[0], '## 2 workers');
  t.ok(rl.includes('| node:http floor, steady (20 s) | 56 | 18 | 38 |'), 'floor steady row');
  t.ok(rl.includes('| Remora, start (1 s after ready) | 104 | 68 | 36 |'), 'start row');
  t.ok(rl.includes('| Remora, under load, max | 99 | 62 | 37 |'), 'load max row');
  t.ok(rl.includes('| **Remora over the node:http floor** (steady idle − floor steady) | +30 | +32 | -2 |'), 'the like-for-like floor in bold');
  t.ok(rl.includes('| Remora over the uWS floor (steady idle − floor steady) | +27.7 | +31.6 | -3.9 |'), 'the other floor plain');
  t.ok(rl.includes('| 0 | 6.1 / 10.1 | 7 / 12 | 2.5 / 4 | - |'), 'heap row: Remora idle, after load, each floor');
  t.ok(rl.includes('| 1 | 6.2 / 10.1 | 7.1 / 12 | - | - |'), 'a worker a floor did not report: -');
  t.match(text, /9000 req\/s, 0 errors, 3 samples/);
  t.match(text, /not mapped into Remora, so the node:http floor is the like-for-like one/);

  const failed = runLines(run(1, remora(), [floors[0], { kind: 'uws', start: null, steady: null, heaps: [], error: 'exited (1) before floor ready' }]), 20, 10, 50);
  t.equal(failed[0], '## 1 worker');
  t.ok(failed.includes('| uWS floor | - | - | - |'), 'a floor that did not start has an empty row');
  t.ok(failed.includes('uWS floor: not measured: exited (1) before floor ready.  '), 'and says why');
  t.notOk(failed.some((l) => l.includes('over the uWS floor')), 'and no difference row');
});
