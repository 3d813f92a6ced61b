// Admin handlers for the worker threads: GET /workers (each slot's state, thread,
// config version, endpoints revision (endpoint-only updates), restarts, requests in
// flight, V8 heap in MB, and its counters read from its stats slab) and the fault
// injection that tests use
// (POST /debug/hang_worker, /debug/crash_worker; only with REMORA_FAULT_INJECTION=1).

import { workerStatsView } from '../../stats/worker-view.js';
import type { AdminHandler } from './context.js';

export const workersHandler: AdminHandler = async (ctx) => {
  const replies = await ctx.pool.stats(false); // (in-flight counts; not every endpoint's pools)
  return [
    200,
    {
      uptime_s: Math.round((Date.now() - ctx.startedAt) / 1000),
      workers: ctx.pool.slots.map((s) => {
        const r = replies.find((x) => x.slot === s.slot);
        const heap = r !== undefined
          ? { heap_used_mb: mb(r.heap.used), heap_total_mb: mb(r.heap.total), young_generation_limit_mb: r.heap.youngLimitMb }
          : { heap_used_mb: null, heap_total_mb: null, young_generation_limit_mb: null };
        return { slot: s.slot, state: s.state, thread_id: s.threadId, version: s.version, endpoints_revision: s.endpointsRevision, restarts: s.restarts, inflight: r?.inflight ?? null, ...heap, stats: workerStatsView(ctx.reader, s.slot) };
      }),
    },
  ];
};

const mb = (bytes: number): number => Math.round(bytes / 104857.6) / 10;

const FAULT_INJECTION_OFF: [number, string] = [404, 'fault injection is off (set REMORA_FAULT_INJECTION=1)\n'];

export const hangWorkerHandler: AdminHandler = (ctx, url) => {
  if (!ctx.faultInjection) return FAULT_INJECTION_OFF;
  const slot = Number(url.searchParams.get('slot') ?? '0');
  return ctx.pool.hang(slot) ? [200, `hanging worker ${slot}\n`] : [404, `no live worker ${slot}\n`];
};

export const crashWorkerHandler: AdminHandler = (ctx, url) => {
  if (!ctx.faultInjection) return FAULT_INJECTION_OFF;
  const slot = Number(url.searchParams.get('slot') ?? '0');
  return ctx.pool.crash(slot) ? [200, `crashing worker ${slot}\n`] : [404, `no live worker ${slot}\n`];
};
