// How busy the host was with work other than the benchmark's own, per scenario: the
// suite's "Host noise" section. Linux only (reads /proc); elsewhere every figure is null.
//
// Busy CPU = user + nice + system ticks from /proc/stat (irq and softirq left out: on
// loopback most of it is the benchmark's own packets, which no process is charged for).
// Own CPU = utime + stime of this process and every descendant (upstream, Remoras, peers,
// nginx workers), tracked every second so that processes stopped within a scenario still
// count up to their last second. Other = busy − own, as a share of all cores' time.

import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { round } from './harness.js';

export interface CpuTicks {
  /** ms, performance.now(). */
  readonly at: number;
  /** All CPUs, USER_HZ ticks. */
  readonly total: number;
  readonly busy: number;
  readonly steal: number;
  /** This process and its descendants, USER_HZ ticks (accumulated, exits included). */
  readonly own: number;
}

export interface HostShare {
  /** Shares of all cores' time over the interval, %. */
  readonly ownPct: number;
  readonly otherPct: number;
  readonly stealPct: number;
}

/** Shares between two snapshots; null when either is missing or no time passed. */
export function shareOf(a: CpuTicks | null, b: CpuTicks | null): HostShare | null {
  if (a === null || b === null || !(b.total > a.total)) return null;
  const total = b.total - a.total;
  const own = Math.max(0, b.own - a.own);
  const busy = Math.max(0, b.busy - a.busy);
  return {
    ownPct: round((Math.min(own, busy) / total) * 100, 1),
    otherPct: round((Math.max(0, busy - own) / total) * 100, 1),
    stealPct: round(((b.steal - a.steal) / total) * 100, 1),
  };
}

/** user nice system idle iowait irq softirq steal from the first line of /proc/stat. */
export function parseProcStat(text: string): { total: number; busy: number; steal: number } | null {
  const line = text.split('\n')[0] ?? '';
  if (!line.startsWith('cpu ')) return null;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  if (f.length < 8 || f.some((x) => !Number.isFinite(x))) return null;
  return { total: f.slice(0, 8).reduce((s, x) => s + x, 0), busy: f[0] + f[1] + f[2], steal: f[7] };
}

/** pid, ppid and utime + stime from /proc/<pid>/stat (the command may hold spaces and parens). */
export function parsePidStat(text: string): { pid: number; ppid: number; ticks: number } | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const rest = text.slice(close + 2).split(' ');
  // rest[0] = state (field 3), ppid field 4, utime field 14, stime field 15
  const pid = Number.parseInt(text, 10);
  const ppid = Number(rest[1]);
  const ticks = Number(rest[11]) + Number(rest[12]);
  return Number.isFinite(pid) && Number.isFinite(ppid) && Number.isFinite(ticks) ? { pid, ppid, ticks } : null;
}

let clockTicks: number | null = null;

/** USER_HZ, the unit of /proc's CPU times (getconf CLK_TCK; 100 where that fails). */
export function clockTicksPerSecond(): number {
  if (clockTicks === null) {
    const n = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim());
    clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** utime + stime (clock ticks) of `root` and of every process descended from it, by pid,
 *  read from /proc (all threads of each process included). */
export function processTreeTicks(root: number): Map<number, number> {
  const stats: { pid: number; ppid: number; ticks: number }[] = [];
  for (const name of readdirSync('/proc')) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    try {
      const s = parsePidStat(readFileSync(`/proc/${name}/stat`, 'utf8'));
      if (s !== null) stats.push(s);
    } catch {
      // gone
    }
  }
  const children = new Map<number, number[]>();
  for (const s of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s.pid]);
  const tree = new Set<number>([root]);
  const queue = [root];
  while (queue.length > 0) for (const c of children.get(queue.pop()!) ?? []) if (!tree.has(c)) tree.add(c), queue.push(c);
  const out = new Map<number, number>();
  for (const s of stats) if (tree.has(s.pid)) out.set(s.pid, s.ticks);
  return out;
}

/** Tracks the CPU of this process tree and the host, one reading a second. */
export class HostLoad {
  private readonly last = new Map<number, number>();
  private accumulated = 0;
  private readonly timer: NodeJS.Timeout | null;
  private readonly ok: boolean;

  constructor(everyMs = 1000) {
    this.ok = process.platform === 'linux' && this.readHost() !== null;
    this.timer = this.ok ? setInterval(() => this.poll(), everyMs) : null;
    this.timer?.unref();
    if (this.ok) this.poll();
  }

  private readHost(): { total: number; busy: number; steal: number } | null {
    try {
      return parseProcStat(readFileSync('/proc/stat', 'utf8'));
    } catch {
      return null;
    }
  }

  /** Adds the ticks each descendant used since the last poll. */
  private poll(): void {
    for (const [pid, ticks] of processTreeTicks(process.pid)) {
      const before = this.last.get(pid);
      // A pid first seen now counts from zero only if it is new; our own process counts from its start.
      this.accumulated += before === undefined ? (pid === process.pid ? 0 : ticks) : Math.max(0, ticks - before);
      this.last.set(pid, ticks);
    }
  }

  snapshot(): CpuTicks | null {
    if (!this.ok) return null;
    this.poll();
    const h = this.readHost();
    return h === null ? null : { at: performance.now(), ...h, own: this.accumulated };
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }
}
