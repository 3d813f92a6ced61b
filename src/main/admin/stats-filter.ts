// `/stats?filter=REGEX` without letting a pattern hang the main thread. A JavaScript
// regex can backtrack for minutes on a pattern like `^(?:[a-z_0-9.]+)+!`, and the main
// thread also answers /ready and handles SIGTERM. So the names are matched in a
// short-lived worker thread that is terminated after a time limit (V8 interrupts a
// running regex), with at most two such workers at a time. Compiling the pattern (which
// cannot hang) happens here first, so a syntax error is a plain 400.

import { Worker } from 'node:worker_threads';

/** How long one filter may run before /stats gives up (ms). */
export const FILTER_TIME_LIMIT_MS = 1000;
const MAX_RUNNING = 2;

// A CommonJS script (Worker eval): test every name, post the booleans back.
const MATCHER = `const { parentPort, workerData } = require('node:worker_threads');
const re = new RegExp(workerData.pattern);
parentPort.postMessage(workerData.names.map((name) => re.test(name)));`;

let running = 0;

export type FilterResult = { ok: true; keep: boolean[] } | { ok: false; status: number; message: string };

/** Which of `names` match `pattern` (a JavaScript regex, unanchored, as Envoy's filter). */
export function matchNames(pattern: string, names: readonly string[], limitMs = FILTER_TIME_LIMIT_MS): Promise<FilterResult> {
  try {
    new RegExp(pattern);
  } catch (err) {
    return Promise.resolve({ ok: false, status: 400, message: `invalid filter regex: ${err instanceof Error ? err.message : String(err)}` });
  }
  if (running >= MAX_RUNNING) {
    return Promise.resolve({ ok: false, status: 503, message: `${MAX_RUNNING} stats filters are already running; try again` });
  }
  running++;
  return new Promise<FilterResult>((resolve) => {
    let settled = false;
    const worker = new Worker(MATCHER, { eval: true, workerData: { pattern, names } });
    const settle = (result: FilterResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      running--;
      resolve(result);
      void worker.terminate();
    };
    const timer = setTimeout(
      () => settle({ ok: false, status: 400, message: `filter regex ran longer than ${limitMs} ms and was stopped (catastrophic backtracking?); simplify it` }),
      limitMs,
    );
    worker.once('message', (keep: boolean[]) => settle({ ok: true, keep }));
    worker.once('error', (err) => settle({ ok: false, status: 500, message: `stats filter failed: ${err.message}` }));
    worker.once('exit', () => settle({ ok: false, status: 500, message: 'stats filter worker exited' }));
  });
}
