// Unit tests for bench/lib/flamegraph.ts, the CPU-profile aggregation and flame graph that
// bench/profile.ts reports with: self and total time per frame, frames merged across
// profile nodes, (idle) kept out of busy shares, the time window, and an SVG with one
// <rect> per kept frame, widths ∝ samples, well-formed and escaped. Synthetic profiles
// only: nothing here runs a benchmark.

import t, { type Test } from 'tap';
import {
  categoryOf,
  flameGraphSvg,
  frameName,
  layoutFlame,
  parseCpuProfile,
  summarize,
  topFrames,
  type CallFrame,
  type CpuProfile,
  type FrameStat,
  type ProfileNode,
} from '../../bench/lib/flamegraph.js';

const WORKER = 'file:///app/dist/workers/exchange.js';
const SRC = 'file:///app/dist/src/upstream/http1-parser.js';

function cf(functionName: string, url = '', lineNumber = -1): CallFrame {
  return { functionName, url, lineNumber, columnNumber: 0, scriptId: '0' };
}

function node(id: number, frame: CallFrame, children: number[] = []): ProfileNode {
  return { id, callFrame: frame, hitCount: 0, children };
}

/** root ─┬ (program) 2
 *        ├ (idle) 3
 *        ├ (garbage collector) 4
 *        ├ handle exchange.js:10 5 ─┬ parse http1-parser.js:3 6 ── handle exchange.js:10 9 (recursion)
 *        │                           └ writev (native) 7
 *        └ handle exchange.js:10 8 (same frame, another node: merges with 5)
 *  Samples (leaf ids, one every 100 µs): idle ×4, program ×1, gc ×1, handle(5) ×2,
 *  parse ×3, writev ×2, handle(8) ×1, handle(9) ×1: 15 samples, 11 busy. */
function synthetic(): CpuProfile {
  const nodes = [
    node(1, cf('(root)'), [2, 3, 4, 5, 8]),
    node(2, cf('(program)')),
    node(3, cf('(idle)')),
    node(4, cf('(garbage collector)')),
    node(5, cf('handle', WORKER, 9), [6, 7]),
    node(6, cf('parse', SRC, 2), [9]),
    node(7, cf('writev')),
    node(8, cf('handle', WORKER, 9)),
    node(9, cf('handle', WORKER, 9)),
  ];
  const samples = [3, 3, 5, 6, 6, 7, 2, 4, 3, 5, 6, 7, 8, 9, 3];
  return { nodes, startTime: 1_000_000, endTime: 1_000_000 + 100 * (samples.length + 1), samples, timeDeltas: samples.map(() => 100) };
}

function stat(frames: readonly FrameStat[], name: string): FrameStat {
  const f = frames.find((x) => x.name === name);
  if (f === undefined) throw new Error(`no frame ${name} in ${frames.map((x) => x.name).join(', ')}`);
  return f;
}

t.test('frameName and categoryOf', async (t) => {
  t.equal(frameName(cf('handle', WORKER, 9)), 'handle exchange.js:10', 'basename and 1-based line');
  t.equal(frameName(cf('', 'node:internal/stream_base_commons', 122)), '(anonymous) node:internal/stream_base_commons:123', 'node: keeps its specifier');
  t.equal(frameName(cf('writev')), 'writev (native)');
  t.equal(frameName(cf('(garbage collector)')), '(garbage collector)');
  t.equal(categoryOf(cf('handle', WORKER, 9)), 'remora');
  t.equal(categoryOf(cf('parse', SRC, 2)), 'remora');
  t.equal(categoryOf(cf('emit', 'node:events', 1)), 'node');
  t.equal(categoryOf(cf('App', 'file:///app/node_modules/uWebSockets.js/uws.js', 1)), 'deps');
  t.equal(categoryOf(cf('writev')), 'native');
  t.equal(categoryOf(cf('(program)')), 'vm');
  t.equal(categoryOf(cf('(idle)')), 'idle');
  t.equal(categoryOf(cf('main', 'file:///app/bin/remora.js', 1)), 'other');
});

t.test('summarize: self and total per merged frame, idle out of busy', async (t) => {
  const s = summarize(synthetic());
  t.equal(s.samples, 15, 'every sample counted');
  t.equal(s.idleSamples, 4);
  t.equal(s.busySamples, 11, 'busy = all − idle');
  t.equal(s.gcSamples, 1);
  t.equal(s.us, 1500, 'each sample weighs 100 µs (the last: the mean interval)');
  t.equal(s.busyUs, 1100);
  t.equal(s.idleUs, 400);
  t.equal(s.gcUs, 100);
  t.equal(s.windowed, false, 'no window asked for');

  const handle = stat(s.frames, 'handle exchange.js:10');
  t.equal(handle.selfSamples, 4, 'self: node 5 (2) + node 8 (1) + node 9 (1), merged by frame');
  t.equal(handle.totalSamples, 9, 'total: every sample under either handle node, recursion counted once');
  t.equal(handle.selfUs, 400);
  t.equal(handle.totalUs, 900);
  const parse = stat(s.frames, 'parse http1-parser.js:3');
  t.equal(parse.selfSamples, 3);
  t.equal(parse.totalSamples, 4, 'its own 3 + the recursive handle above it');
  t.equal(stat(s.frames, 'writev (native)').selfSamples, 2);
  t.equal(stat(s.frames, '(program)').totalSamples, 1);
  t.notOk(s.frames.some((f) => f.name === '(idle)'), 'idle is no frame of busy time');
  t.notOk(s.frames.some((f) => f.name === '(root)' || f.name === 'all'), 'the root is no frame');

  t.equal(s.root.samples, 11, 'the tree holds busy samples only');
  t.same(
    s.root.children.map((c) => [c.name, c.samples, c.selfSamples]).sort(),
    [
      ['(garbage collector)', 1, 1],
      ['(program)', 1, 1],
      ['handle exchange.js:10', 9, 3],
    ],
    'nodes 5 and 8 merged into one child of the root; (idle) dropped',
  );
  const h = s.root.children.find((c) => c.name === 'handle exchange.js:10')!;
  t.same(h.children.map((c) => [c.name, c.samples]).sort(), [
    ['parse http1-parser.js:3', 4],
    ['writev (native)', 2],
  ]);

  t.same(
    topFrames(s, 2, 'self').map((f) => f.name),
    ['handle exchange.js:10', 'parse http1-parser.js:3'],
    'top by self time',
  );
  t.same(
    topFrames(s, 3, 'total').map((f) => [f.name, f.totalSamples]),
    [
      ['handle exchange.js:10', 9],
      ['parse http1-parser.js:3', 4],
      ['writev (native)', 2],
    ],
    'top by total time',
  );
});

t.test('summarize: only samples inside the window; none inside: the whole profile', async (t) => {
  const p = synthetic();
  // Sample i is at startTime + 100 (i + 1): samples 3..7 (0-based) are in [1_000_400, 1_000_900).
  const w = summarize(p, { fromUs: 1_000_400, toUs: 1_000_900 });
  t.equal(w.windowed, true);
  t.equal(w.samples, 5, 'samples 3..7: parse, parse, writev, program, gc');
  t.equal(w.idleSamples, 0);
  t.equal(stat(w.frames, 'parse http1-parser.js:3').selfSamples, 2);
  t.equal(w.fromUs, 1_000_400);
  t.equal(w.toUs, 1_000_800);
  const none = summarize(p, { fromUs: 0, toUs: 10 });
  t.equal(none.windowed, false, 'a window that misses the profile falls back to all of it');
  t.equal(none.samples, 15);
});

t.test('summarize: a profile without samples uses hitCount', async (t) => {
  const p = synthetic();
  const hits: Record<number, number> = { 3: 2, 5: 1, 6: 3 };
  const nodes = p.nodes.map((n) => ({ ...n, hitCount: hits[n.id] ?? 0 }));
  const s = summarize({ nodes, startTime: 0, endTime: 600 });
  t.equal(s.samples, 6);
  t.equal(s.busySamples, 4);
  t.equal(stat(s.frames, 'handle exchange.js:10').totalSamples, 4);
});

t.test('parseCpuProfile rejects what is not a profile', async (t) => {
  t.equal(parseCpuProfile(JSON.stringify(synthetic())).nodes.length, 9);
  t.throws(() => parseCpuProfile('{"nodes": 3}'), /not a CPU profile/);
  t.throws(() => parseCpuProfile(JSON.stringify({ ...synthetic(), timeDeltas: [1] })), /same length/);
});

function near(t: Test, actual: number, expected: number, what: string): void {
  t.ok(Math.abs(actual - expected) < 1e-6, `${what}: expected ${expected}, saw ${actual}`);
}

/** Checks that every tag opened is closed in order (a small well-formedness check). */
function tagBalance(svg: string): string | null {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = m;
    if (selfClosing === '/') continue;
    if (closing === '') stack.push(name);
    else if (stack.pop() !== name) return `</${name}> closes ${stack.length > 0 ? stack[stack.length - 1] : 'nothing'}`;
  }
  return stack.length === 0 ? null : `unclosed: ${stack.join(', ')}`;
}

t.test('flame graph: one <rect> per kept frame, widths ∝ samples, tiny frames dropped', async (t) => {
  // 1999 busy samples: main 1500 (499 self, "a<b>&\"c\"" 1000, tiny 1), other 499; 300 idle.
  const nodes = [
    node(1, cf('(root)'), [2, 3, 6]),
    node(2, cf('main', WORKER, 0), [4, 5]),
    node(3, cf('other', SRC, 0)),
    node(4, cf('a<b>&"c"', WORKER, 1)),
    node(5, cf('tiny', WORKER, 2)),
    node(6, cf('(idle)')),
  ];
  const samples = [...Array<number>(499).fill(2), ...Array<number>(1000).fill(4), 5, ...Array<number>(499).fill(3), ...Array<number>(300).fill(6)];
  const s = summarize({ nodes, startTime: 0, endTime: samples.length * 10, samples, timeDeltas: samples.map(() => 10) });
  t.equal(s.busySamples, 1999);
  const width = 1000;
  const rects = layoutFlame(s.root, width, 0.001);
  t.same(
    rects.map((r) => [r.name, r.depth, r.samples]),
    [
      ['all', 0, 1999],
      ['main exchange.js:1', 1, 1500],
      ['a<b>&"c" exchange.js:2', 2, 1000],
      ['other http1-parser.js:1', 1, 499],
    ],
    'tiny (1 of 1999 samples, under 0.1 %) dropped; children by name, depth-first',
  );
  const byName = new Map(rects.map((r) => [r.name, r]));
  near(t, byName.get('all')!.width, width, 'the root spans the plot');
  near(t, byName.get('main exchange.js:1')!.width, (1500 / 1999) * width, 'main: 1500 of 1999 samples');
  near(t, byName.get('other http1-parser.js:1')!.x, (1500 / 1999) * width, 'siblings laid left to right');
  near(t, byName.get('a<b>&"c" exchange.js:2')!.x, 0, "a first child starts at its parent's x");
  near(t, byName.get('a<b>&"c" exchange.js:2')!.width, (1000 / 1999) * width, 'a<b>: 1000 of 1999 samples');

  const svg = flameGraphSvg(s.root, { title: 'profile <get>', subtitle: 'a & b', width, allSamples: s.samples });
  const rectTags = [...svg.matchAll(/<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"/g)];
  t.equal(rectTags.length, rects.length, 'one <rect> per kept frame');
  t.equal((svg.match(/<rect\b/g) ?? []).length, rects.length, 'no other <rect>');
  t.same(
    rectTags.map((m) => Number(m[2])),
    rects.map((r) => Number(r.width.toFixed(2))),
    'each rect as wide as its share of the samples',
  );
  t.equal(tagBalance(svg), null, 'every tag closed, in order');
  t.equal((svg.match(/<title>/g) ?? []).length, rects.length, 'a <title> per frame');
  for (const m of svg.matchAll(/<title>([^]*?)<\/title>/g)) t.notOk(/[<>]/.test(m[1]), `no raw < or > in title: ${m[1]}`);
  t.match(svg, /a&lt;b&gt;&amp;&quot;c&quot; exchange\.js:2: 1000 samples, 50\.03 % of busy, 43\.50 % of all samples/, 'title: frame, samples, % of busy and of all');
  t.match(svg, /profile &lt;get&gt;/, 'title escaped');
});
