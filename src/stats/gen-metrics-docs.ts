// `npm run gen:metrics-docs`: rewrites the generated tables of docs/metrics.md (between
// its marker comments) from the stat tables. Run from the repository root; an optional
// argument names another file.

import { readFileSync, writeFileSync } from 'node:fs';
import { renderStatTables, spliceGenerated } from './metrics-doc.js';

const file = process.argv[2] ?? 'docs/metrics.md';
try {
  const before = readFileSync(file, 'utf8');
  const after = spliceGenerated(before, renderStatTables());
  if (after === before) {
    console.log(`${file}: up to date`);
  } else {
    writeFileSync(file, after);
    console.log(`${file}: tables regenerated`);
  }
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
}
