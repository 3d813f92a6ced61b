// Structure rules for src/ and workers/ that review alone lets drift: no import cycles
// (type-only imports included: a cycle of types is still two modules that cannot be read
// apart), and no module over the size limit unless its header says why it is long.
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { REPO_ROOT } from '../helpers/repo-root.js';

const ROOT = REPO_ROOT;
const TREES = ['src', 'workers'];
/** STYLE: "Around 400 lines is a good size"; a little slack before the rule bites. */
const MAX_LINES = 450;
/** A longer module says why in its header comment with this phrase. */
const LONG_MARK = 'Long file:';

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

const files = TREES.flatMap((tree) => sources(join(ROOT, tree)));
const IMPORT = /^\s*(?:import|export)\b[^'"]*?\bfrom\s+['"](\.[^'"]+)['"]|^\s*import\s+['"](\.[^'"]+)['"]/gm;

/** Relative imports of one module, resolved to source paths ('.js' → '.ts'). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    out.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
  }
  return out;
}

/** Strongly connected components with more than one module (Tarjan), as relative paths. */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(relative(ROOT, w));
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

t.test('no import cycle in src/ or workers/', async (t) => {
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  const selfImports = files.filter((f) => graph.get(f)!.includes(f)).map((f) => relative(ROOT, f));
  t.same(selfImports, [], 'no module imports itself');
  t.same(cycles(graph), [], 'expected no import cycles; each entry lists the modules of one cycle');
});

t.test(`modules over ${MAX_LINES} lines say why in their header`, async (t) => {
  const unexplained: string[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n').length;
    if (lines <= MAX_LINES) continue;
    const header = text.slice(0, text.search(/^(?!\/\/)/m));
    if (!header.includes(LONG_MARK)) unexplained.push(`${relative(ROOT, file)} (${lines} lines)`);
  }
  t.same(unexplained, [], `expected each to be split or to carry "${LONG_MARK} <reason>" in its top comment`);
});

t.test('the checker sees imports (it cannot pass by reading nothing)', async (t) => {
  t.ok(files.length > 50, `found ${files.length} modules`);
  const edges = files.reduce((n, f) => n + importsOf(f).length, 0);
  t.ok(edges > 100, `found ${edges} relative imports`);
  const ring = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]);
  t.equal(cycles(ring).length, 1, 'a three-module ring is one cycle');
});
