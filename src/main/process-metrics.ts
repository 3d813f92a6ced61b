// Process metrics of the Remora process, under Prometheus' standard process_* names (what
// dashboards built for any Prometheus client expect) and again with the remora_ prefix,
// computed at scrape time from cheap sources: process.cpuUsage(), process.memoryUsage(),
// /proc/self/fd, and the main thread's event-loop delay.
// prom-client's collectDefaultMetrics gives more series than a sidecar needs and costs
// several milliseconds per scrape; these few cost well under one.

import { readdirSync, readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface ProcessSample {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly value: number;
}

/** remora_process_* families that also go out without the prefix (the names Prometheus'
 *  own process collector uses: process_cpu_seconds_total, process_resident_memory_bytes,
 *  process_heap_bytes, process_open_fds, process_max_fds, process_start_time_seconds). */
const STANDARD = new Set(['remora_process_cpu_seconds_total', 'remora_process_resident_memory_bytes', 'remora_process_heap_bytes',
  'remora_process_open_fds', 'remora_process_max_fds', 'remora_process_start_time_seconds']);

const START_TIME_S = Math.round(Date.now() / 1000 - process.uptime());
const MAX_FDS = readMaxFds();
const LOOP_RESOLUTION_MS = 20;

export class ProcessMetrics {
  private readonly loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });

  constructor() {
    this.loop.enable();
  }

  collect(): ProcessSample[] {
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    // The histogram holds whole timer periods; the part above the period is the lag.
    const lagP99 = Math.max(0, this.loop.percentile(99) / 1e9 - LOOP_RESOLUTION_MS / 1000);
    this.loop.reset();
    const out: ProcessSample[] = [
      { name: 'remora_process_cpu_seconds_total', help: 'User and system CPU time of the process (all threads).', type: 'counter', value: (cpu.user + cpu.system) / 1e6 },
      { name: 'remora_process_cpu_user_seconds_total', help: 'User CPU time of the process.', type: 'counter', value: cpu.user / 1e6 },
      { name: 'remora_process_cpu_system_seconds_total', help: 'System CPU time of the process.', type: 'counter', value: cpu.system / 1e6 },
      { name: 'remora_process_resident_memory_bytes', help: 'Resident set size of the process.', type: 'gauge', value: mem.rss },
      { name: 'remora_process_heap_bytes', help: 'V8 heap size of the main thread.', type: 'gauge', value: mem.heapTotal },
      { name: 'remora_process_start_time_seconds', help: 'Start time of the process, seconds since the epoch.', type: 'gauge', value: START_TIME_S },
      { name: 'remora_nodejs_eventloop_lag_p99_seconds', help: 'Main-thread event-loop delay, p99 since the previous scrape.', type: 'gauge', value: lagP99 },
    ];
    const fds = countOpenFds();
    if (fds >= 0) out.push({ name: 'remora_process_open_fds', help: 'Open file descriptors.', type: 'gauge', value: fds });
    if (MAX_FDS > 0) out.push({ name: 'remora_process_max_fds', help: 'Limit on open file descriptors.', type: 'gauge', value: MAX_FDS });
    // The same values under the standard names of Prometheus' process collector.
    for (const s of out.slice()) {
      if (STANDARD.has(s.name)) out.push({ ...s, name: s.name.slice('remora_'.length) });
    }
    return out;
  }
}

function countOpenFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

function readMaxFds(): number {
  try {
    const m = /Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}
