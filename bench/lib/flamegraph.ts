// CPU profiles in the Chrome DevTools format (what `node --cpu-prof` writes, one file per
// thread) turned into what bench/profile.ts reports: time per frame (self and total),
// busy versus idle, the garbage collector's share, and a dependency-free SVG flame graph
// (root at the bottom, width ∝ samples). Pure: no I/O, unit-tested in
// test/unit/flamegraph.test.ts.
//
// A frame is a function name plus file basename:line (1-based), so the same function
// reached through different profile nodes (V8 keeps one node per call path and sometimes
// per script id) merges into one frame. `(idle)` samples (the thread waiting in its event
// loop) count towards "all" but never towards "busy": busy percentages describe where the
// thread's CPU went, and the flame graph draws busy samples only.

import { escapeXml } from './svg.js';

export interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  /** 0-based, -1 for pseudo-frames. */
  readonly lineNumber: number;
  readonly columnNumber?: number;
  readonly scriptId?: string;
}

export interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly hitCount?: number;
  readonly children?: readonly number[];
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  /** Microseconds on the monotonic clock (the one process.hrtime reads). */
  readonly startTime: number;
  readonly endTime: number;
  /** The leaf node id of each sample. */
  readonly samples?: readonly number[];
  /** Microseconds from the previous sample (the first: from startTime). */
  readonly timeDeltas?: readonly number[];
}

/** remora: dist/src, dist/workers; node: node: internals; deps: node_modules (uWS's JS
 *  wrapper, piscina, pino, …); native: functions without a script (V8 builtins, C++
 *  callbacks such as uWS's); vm: V8 pseudo-frames ((program), (garbage collector));
 *  idle: (idle); other: any other script. */
export type Category = 'remora' | 'node' | 'deps' | 'native' | 'vm' | 'idle' | 'other';

export const IDLE = '(idle)';
export const GC = '(garbage collector)';

/** Parses a .cpuprofile's text, checking the fields the aggregation reads. */
export function parseCpuProfile(text: string): CpuProfile {
  const p = JSON.parse(text) as Partial<CpuProfile> | null;
  if (p === null || typeof p !== 'object' || !Array.isArray(p.nodes) || typeof p.startTime !== 'number' || typeof p.endTime !== 'number') {
    throw new Error('not a CPU profile: expected an object with nodes[], startTime and endTime');
  }
  for (const n of p.nodes) {
    if (typeof n?.id !== 'number' || typeof n.callFrame?.functionName !== 'string' || typeof n.callFrame.url !== 'string') {
      throw new Error(`not a CPU profile: node ${JSON.stringify(n).slice(0, 120)} lacks id or callFrame`);
    }
  }
  if ((p.samples === undefined) !== (p.timeDeltas === undefined) || (p.samples !== undefined && p.samples.length !== p.timeDeltas!.length)) {
    throw new Error('not a CPU profile: samples and timeDeltas must both be present with the same length');
  }
  return p as CpuProfile;
}

function isPseudo(cf: CallFrame): boolean {
  return cf.url === '' && cf.functionName.startsWith('(') && cf.functionName.endsWith(')');
}

/** "fn file.js:12" (basename, 1-based line); node: internals keep their whole specifier;
 *  pseudo-frames are their name alone; a function without a script is "fn (native)". */
export function frameName(cf: CallFrame): string {
  if (isPseudo(cf)) return cf.functionName;
  const fn = cf.functionName === '' ? '(anonymous)' : cf.functionName;
  if (cf.url === '') return `${fn} (native)`;
  const file = cf.url.startsWith('node:') ? cf.url : (cf.url.split(/[?#]/)[0].split('/').pop() ?? cf.url);
  return `${fn} ${file}:${cf.lineNumber + 1}`;
}

export function categoryOf(cf: CallFrame): Category {
  if (isPseudo(cf)) return cf.functionName === IDLE ? 'idle' : 'vm';
  if (cf.url.startsWith('node:')) return 'node';
  if (cf.url.includes('/node_modules/')) return 'deps';
  if (cf.url.includes('/dist/src/') || cf.url.includes('/dist/workers/')) return 'remora';
  if (cf.url === '') return 'native';
  return 'other';
}

/** One frame of the merged stack tree: `samples` inclusive, `selfSamples` as the leaf. */
export interface FlameNode {
  readonly name: string;
  readonly category: Category;
  samples: number;
  selfSamples: number;
  readonly children: FlameNode[];
}

export interface FrameStat {
  readonly name: string;
  readonly category: Category;
  /** Samples with this frame as the leaf, and their time (µs). */
  readonly selfSamples: number;
  readonly selfUs: number;
  /** Samples with this frame anywhere on the stack (once per sample, recursion or not). */
  readonly totalSamples: number;
  readonly totalUs: number;
}

export interface ProfileSummary {
  /** Merged busy stacks: the root's `samples` is `busySamples`; no (idle) child. */
  readonly root: FlameNode;
  /** Every frame with busy samples but (root), by self time (µs), largest first. */
  readonly frames: readonly FrameStat[];
  readonly samples: number;
  readonly idleSamples: number;
  readonly busySamples: number;
  /** Samples whose leaf is (garbage collector). */
  readonly gcSamples: number;
  /** Time the samples stand for, µs (each sample: until the next one). */
  readonly us: number;
  readonly idleUs: number;
  readonly busyUs: number;
  readonly gcUs: number;
  /** True when only the samples inside the requested window were counted; false when
   *  no window was asked for or none of the profile's samples fell inside it. */
  readonly windowed: boolean;
  /** First and last counted sample, µs on the profile's clock. */
  readonly fromUs: number;
  readonly toUs: number;
}

export interface TimeWindow {
  readonly fromUs: number;
  readonly toUs: number;
}

/** Each sample's time stamp (µs) and weight (µs until the next sample; the last one: the
 *  mean interval). Without samples, one pseudo-sample per hit. */
function expandSamples(p: CpuProfile): { ids: number[]; ts: number[]; weights: number[] } {
  if (p.samples === undefined || p.timeDeltas === undefined) {
    const ids = p.nodes.flatMap((n) => Array<number>(n.hitCount ?? 0).fill(n.id));
    const step = ids.length > 0 ? (p.endTime - p.startTime) / ids.length : 0;
    return { ids, ts: ids.map((_, i) => p.startTime + i * step), weights: ids.map(() => step) };
  }
  const ids = p.samples.slice();
  const ts: number[] = [];
  let t = p.startTime;
  for (const d of p.timeDeltas) ts.push((t += d));
  const mean = ts.length > 1 ? Math.max(0, (ts[ts.length - 1] - ts[0]) / (ts.length - 1)) : 0;
  const weights = ts.map((x, i) => (i + 1 < ts.length ? Math.max(0, ts[i + 1] - x) : mean));
  return { ids, ts, weights };
}

/** Aggregates `p` (only samples with fromUs ≤ t < toUs when `window` is given and any
 *  sample falls inside it). */
export function summarize(p: CpuProfile, window?: TimeWindow): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const rootNode = p.nodes.find((n) => !parent.has(n.id));
  if (rootNode === undefined) throw new Error('CPU profile without a root node');

  // Merged tree, and for each profile node its merged node and the distinct frames on its
  // path (for total time: a recursive frame counts once per sample).
  const root: FlameNode = { name: 'all', category: 'vm', samples: 0, selfSamples: 0, children: [] };
  const merged = new Map<number, FlameNode>([[rootNode.id, root]]);
  const pathFrames = new Map<number, readonly string[]>([[rootNode.id, []]]);
  const childIndex = new Map<FlameNode, Map<string, FlameNode>>();
  const category = new Map<string, Category>();
  const stack: number[] = [rootNode.id];
  while (stack.length > 0) {
    const id = stack.pop()!;
    const at = merged.get(id)!;
    const frames = pathFrames.get(id)!;
    for (const cid of byId.get(id)?.children ?? []) {
      const c = byId.get(cid);
      if (c === undefined || merged.has(cid)) continue;
      const name = frameName(c.callFrame);
      let index = childIndex.get(at);
      if (index === undefined) childIndex.set(at, (index = new Map()));
      let m = index.get(name);
      if (m === undefined) {
        m = { name, category: categoryOf(c.callFrame), samples: 0, selfSamples: 0, children: [] };
        category.set(name, m.category);
        index.set(name, m);
        at.children.push(m);
      }
      merged.set(cid, m);
      pathFrames.set(cid, frames.includes(name) ? frames : [...frames, name]);
      stack.push(cid);
    }
  }

  const all = expandSamples(p);
  const inWindow = (t: number): boolean => window === undefined || (t >= window.fromUs && t < window.toUs);
  const windowed = window !== undefined && all.ts.some(inWindow);
  const self = new Map<string, { samples: number; us: number }>();
  const total = new Map<string, { samples: number; us: number }>();
  let samples = 0, idleSamples = 0, gcSamples = 0, us = 0, idleUs = 0, gcUs = 0;
  let fromUs = Infinity, toUs = -Infinity;
  for (let i = 0; i < all.ids.length; i++) {
    if (windowed && !inWindow(all.ts[i])) continue;
    const node = byId.get(all.ids[i]);
    const m = merged.get(all.ids[i]);
    if (node === undefined || m === undefined) continue;
    const w = all.weights[i];
    samples++;
    us += w;
    fromUs = Math.min(fromUs, all.ts[i]);
    toUs = Math.max(toUs, all.ts[i]);
    if (m.name === IDLE) {
      idleSamples++;
      idleUs += w;
      continue;
    }
    if (m.name === GC) {
      gcSamples++;
      gcUs += w;
    }
    m.selfSamples++;
    if (m !== root) {
      const s = self.get(m.name) ?? { samples: 0, us: 0 };
      s.samples++;
      s.us += w;
      self.set(m.name, s);
    }
    for (const f of pathFrames.get(node.id) ?? []) {
      const t = total.get(f) ?? { samples: 0, us: 0 };
      t.samples++;
      t.us += w;
      total.set(f, t);
    }
  }

  // Inclusive counts bottom-up; frames that never ran (busy) leave the tree.
  const fill = (n: FlameNode): number => {
    n.samples = n.selfSamples;
    for (const c of n.children) n.samples += fill(c);
    const kept = n.children.filter((c) => c.samples > 0 && c.name !== IDLE);
    n.children.length = 0;
    n.children.push(...kept);
    return n.samples;
  };
  fill(root);

  const frames: FrameStat[] = [...total.entries()]
    .filter(([name]) => name !== IDLE)
    .map(([name, t]) => {
      const s = self.get(name) ?? { samples: 0, us: 0 };
      return { name, category: category.get(name) ?? 'other', selfSamples: s.samples, selfUs: s.us, totalSamples: t.samples, totalUs: t.us };
    })
    .sort((a, b) => b.selfUs - a.selfUs || b.totalUs - a.totalUs || (a.name < b.name ? -1 : 1));

  const busySamples = samples - idleSamples;
  return {
    root,
    frames,
    samples,
    idleSamples,
    busySamples,
    gcSamples,
    us,
    idleUs,
    busyUs: us - idleUs,
    gcUs,
    windowed,
    fromUs: samples > 0 ? fromUs : p.startTime,
    toUs: samples > 0 ? toUs : p.endTime,
  };
}

/** The `n` frames with the most self (or total) time, largest first. */
export function topFrames(s: ProfileSummary, n: number, by: 'self' | 'total'): FrameStat[] {
  const key = by === 'self' ? (f: FrameStat) => f.selfUs : (f: FrameStat) => f.totalUs;
  return s.frames
    .filter((f) => key(f) > 0)
    .slice()
    .sort((a, b) => key(b) - key(a) || (a.name < b.name ? -1 : 1))
    .slice(0, n);
}

export interface FlameRect {
  readonly name: string;
  readonly category: Category;
  readonly samples: number;
  readonly depth: number;
  /** Pixels from the plot's left edge. */
  readonly x: number;
  readonly width: number;
}

/** Lays `root` out over `width` px: children left to right by name, each as wide as its
 *  share of the root's samples; a frame under `minFraction` of the root is dropped with
 *  everything above it. The root is always kept (depth 0). */
export function layoutFlame(root: FlameNode, width: number, minFraction = 0.001): FlameRect[] {
  const out: FlameRect[] = [];
  if (root.samples <= 0) return out;
  const scale = width / root.samples;
  const visit = (n: FlameNode, depth: number, x: number): void => {
    out.push({ name: n.name, category: n.category, samples: n.samples, depth, x, width: n.samples * scale });
    let cx = x;
    for (const c of n.children.slice().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (c.samples / root.samples >= minFraction) visit(c, depth + 1, cx);
      cx += c.samples * scale;
    }
  };
  visit(root, 0, 0);
  return out;
}

export interface FlameGraphOptions {
  readonly title: string;
  /** A second line under the title (rate, window, CPU per request, …). */
  readonly subtitle?: string;
  /** Plot width in px (default 1200). */
  readonly width?: number;
  /** Frames narrower than this share of the busy samples are dropped (default 0.001). */
  readonly minFraction?: number;
  /** All samples, idle included, for the "% of all" in each title; absent: busy only. */
  readonly allSamples?: number;
}

const CATEGORY_HUE: Record<Category, readonly [number, number, number]> = {
  // [hue, saturation %, lightness %]
  remora: [18, 85, 58],
  node: [110, 45, 52],
  deps: [205, 60, 58],
  native: [275, 45, 62],
  vm: [0, 0, 68],
  idle: [0, 0, 85],
  other: [50, 70, 55],
};

export const CATEGORY_LABEL: Record<Category, string> = {
  remora: "Remora's code (dist/src, dist/workers)",
  node: 'Node internals (node:)',
  deps: 'node_modules (uWS wrapper, …)',
  native: 'native (V8 builtins, C++ callbacks)',
  vm: 'V8 pseudo-frames ((program), (garbage collector))',
  idle: 'idle',
  other: 'other scripts',
};

/** A stable colour per frame: its category's hue, nudged by a hash of the name so that
 *  neighbours differ. */
function colorOf(r: FlameRect): string {
  if (r.depth === 0) return 'hsl(0,0%,80%)';
  if (r.name === GC) return 'hsl(0,60%,55%)';
  const [h, s, l] = CATEGORY_HUE[r.category];
  let hash = 0;
  for (let i = 0; i < r.name.length; i++) hash = (hash * 31 + r.name.charCodeAt(i)) >>> 0;
  const dh = s === 0 ? 0 : (hash % 21) - 10;
  const dl = (((hash >>> 8) % 11) - 5) * (s === 0 ? 0.5 : 1);
  return `hsl(${h + dh},${s}%,${l + dl}%)`;
}

function pct(part: number, whole: number): string {
  return whole > 0 ? ((part / whole) * 100).toFixed(2) : '0';
}

const FRAME_H = 17;
const CHAR_W = 6.6; // monospace at 11 px

/** The flame graph as a standalone SVG. The only <rect> elements are the frames (the
 *  legend uses circles), one per kept frame, each with a <title>. */
export function flameGraphSvg(root: FlameNode, o: FlameGraphOptions): string {
  const plotW = o.width ?? 1200;
  const left = 10;
  const top = o.subtitle !== undefined ? 56 : 40;
  const bottom = 44;
  const rects = layoutFlame(root, plotW, o.minFraction ?? 0.001);
  const maxDepth = rects.reduce((d, r) => Math.max(d, r.depth), 0);
  const width = plotW + 2 * left;
  const height = top + (maxDepth + 1) * FRAME_H + bottom;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="11">`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15" font-family="sans-serif">${escapeXml(o.title)}</text>`,
  ];
  if (o.subtitle !== undefined) out.push(`<text x="${width / 2}" y="38" text-anchor="middle" font-family="sans-serif">${escapeXml(o.subtitle)}</text>`);
  for (const r of rects) {
    const x = (left + r.x).toFixed(2);
    const y = top + (maxDepth - r.depth) * FRAME_H;
    const label = r.depth === 0 ? `all (busy samples: ${r.samples})` : r.name;
    const all = o.allSamples !== undefined ? `, ${pct(r.samples, o.allSamples)} % of all samples (idle included)` : '';
    const tip = `${label}: ${r.samples} samples, ${pct(r.samples, root.samples)} % of busy${all} [${r.category}]`;
    out.push(`<rect x="${x}" y="${y}" width="${r.width.toFixed(2)}" height="${FRAME_H - 1}" fill="${colorOf(r)}" rx="2"><title>${escapeXml(tip)}</title></rect>`);
    const fit = Math.floor((r.width - 6) / CHAR_W);
    if (fit >= 5) {
      const text = label.length <= fit ? label : `${label.slice(0, fit - 2)}..`;
      out.push(`<text x="${(left + r.x + 3).toFixed(2)}" y="${y + FRAME_H - 5}" pointer-events="none">${escapeXml(text)}</text>`);
    }
  }
  const shown = (['remora', 'node', 'deps', 'native', 'vm', 'other'] as const).filter((c) => rects.some((r) => r.depth > 0 && r.category === c));
  let lx = left;
  const ly = height - 16;
  for (const c of shown) {
    const fill = colorOf({ name: '', category: c, samples: 0, depth: 1, x: 0, width: 0 });
    out.push(`<circle cx="${lx + 5}" cy="${ly - 4}" r="5" fill="${fill}"/>`);
    out.push(`<text x="${lx + 14}" y="${ly}" font-family="sans-serif">${escapeXml(CATEGORY_LABEL[c])}</text>`);
    lx += 30 + Math.ceil(CATEGORY_LABEL[c].length * 6.2);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
