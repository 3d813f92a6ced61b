#!/usr/bin/env node
// Entry point for the `remora` command; the code lives in dist/ (npm run build).
import { main } from '../dist/src/cli/remora.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`remora: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 1;
  },
);
