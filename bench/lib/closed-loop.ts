// Closed-loop load with autocannon (pipelining 1), shared by the suite, features.ts and
// resilience.ts. `workers` > 0 runs autocannon's own worker threads (its `workers`
// option) and splits the connections between them; 0 drives from this thread. The result
// gives this process's CPU over the run (process.cpuUsage(): every thread, autocannon's
// worker threads included): the generator's own load, which tells whether it was the limit.

import autocannon from 'autocannon';

export interface ClosedLoopOptions {
  readonly port: number;
  readonly path?: string;
  readonly connections: number;
  readonly seconds: number;
  /** autocannon worker threads; 0 or absent: none (this thread). */
  readonly workers?: number;
  readonly method?: 'GET' | 'POST';
  /** Request body (a string: it crosses to autocannon's worker threads intact). */
  readonly body?: string;
}

export interface ClosedLoopResult {
  /** Mean req/s over the run (autocannon's requests.average). */
  readonly rps: number;
  readonly total: number;
  /** Errors + timeouts + non-2xx. */
  readonly errors: number;
  /** This process's CPU over the run, % of one core (user + system ÷ wall time, every
   *  thread: above 100 with worker threads on several cores). */
  readonly cpuPct: number;
}

/** The largest thread count ≤ `max` that divides `connections` (autocannon gives each
 *  worker floor(connections / workers) connections), or 0 for no worker threads. */
export function autocannonWorkersFor(connections: number, max: number): number {
  if (max < 1) return 0;
  for (let k = Math.min(max, connections); k >= 1; k--) if (connections % k === 0) return k;
  return 0;
}

export async function closedLoop(o: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const workers = autocannonWorkersFor(o.connections, o.workers ?? 0);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await autocannon({
    url: `http://127.0.0.1:${o.port}${o.path ?? '/'}`,
    connections: o.connections,
    pipelining: 1,
    duration: o.seconds,
    ...(workers > 0 ? { workers } : {}),
    ...(o.method ? { method: o.method } : {}),
    ...(o.body !== undefined ? { body: o.body, headers: { 'content-type': 'application/octet-stream' } } : {}),
  });
  const cpu = process.cpuUsage(cpu0);
  const wallS = (performance.now() - t0) / 1000;
  const cpuPct = wallS > 0 ? Math.round((cpu.user + cpu.system) / 1e4 / wallS) : 0;
  return { rps: r.requests.average, total: r.requests.total, errors: r.errors + r.timeouts + r.non2xx, cpuPct };
}
