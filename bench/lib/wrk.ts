// wrk, the native closed-loop generator, for benchmarks where autocannon (a Node.js
// process) would be the limit: one thread, 50 connections, its req/s parsed from the
// report. Pinned to core 0 with taskset when `pin` is set (the proxy runs on core 1).

import { spawnSync } from 'node:child_process';
import { log } from './harness.js';

/** wrk's req/s for `seconds` on 127.0.0.1:`port`; `script` (a wrk Lua file) sets a POST
 *  body. Non-2xx responses and socket errors are logged. */
export function wrkRps(port: number, seconds: number, pin: boolean, script: string | null = null): number {
  const argv = ['-t1', '-c50', `-d${seconds}s`, ...(script !== null ? ['-s', script] : []), `http://127.0.0.1:${port}/`];
  const out = pin ? spawnSync('taskset', ['-c', '0', 'wrk', ...argv], { encoding: 'utf8' }) : spawnSync('wrk', argv, { encoding: 'utf8' });
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out.stdout ?? '');
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: .*/.exec(out.stdout ?? '');
  if (errors !== null) log(`wrk on ${port}: ${errors[0]}`);
  return m ? Math.round(Number(m[1])) : 0;
}
