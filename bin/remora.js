#!/usr/bin/env node
// Entry point for the `remora` command; the code lives in dist/ (npm run build, which
// `npm ci` and `npm install` run through the "prepare" script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/src/cli/remora.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  // A checkout that was never built: one line to act on, not a module-loader stack trace.
  process.stderr.write('remora: not built yet: run npm run build (dist/src/cli/remora.js is missing)\n');
  process.exit(1);
}
const { main } = await import(entry.href);

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`remora: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 1;
  },
);
