// Where the repository is, for tests that read its files (bin/, deploy/, docs/, dist/,
// package.json). Found by walking up from this module to the directory that holds
// package.json, so it is the same whether the test runs compiled from dist/test/ (what
// `npm test` does) or from test/ under a TypeScript loader.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** Absolute path of the repository root (the directory holding package.json). */
export const REPO_ROOT = findRoot();

/** Absolute path of a file or folder given relative to the repository root. */
export const repoPath = (...parts: string[]): string => join(REPO_ROOT, ...parts);
