// Cost of a Prometheus scrape, and memory over time, on a config with many clusters.
//
//   npm run bench:scrape -- [--workers 2] [--clusters 100] [--requests 5000] [--scrapes 50]
//                           [--soak-seconds 0] [--soak-rate 1000] [--no-pin]
//
// Remora (`workers` workers, pinned to core 1) runs one listener with `clusters` routes
// (prefix /cN/ → cluster cN), each cluster two endpoints on the one uWS upstream (core
// 0, with this process). autocannon (10 connections) first sends `requests` requests
// cycling over every cluster; then `scrapes` sequential GET /metrics on the admin over
// a keep-alive connection, timed client-side (performance.now(), to the last byte):
// median, p90, max ms, the exposition's size and its series count.
// With --soak-seconds N: autocannon holds `soak-rate` req/s (overallRate) over all
// clusters for N s while Remora's RSS (/proc/<pid>/status VmRSS) is sampled every
// second and /metrics scraped every 5 s (fresh connection each); reported: RSS at 0/25/50/75/100% of the run
// and the slope (MB/min) of a least-squares fit over its second half.
// Writes bench/results/scrape-<timestamp>.{json,md}.

import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon, { type RequestSpec } from 'autocannon';
import {
  MACHINE,
  Processes,
  canPin,
  commandLine,
  httpGet,
  log,
  median,
  percentile,
  pinSelf,
  round,
  rssMb,
  runMain,
  startRemora,
  startUpstream,
  writeConfig,
  writeResults,
  type RemoraProcess,
} from './lib/harness.js';

const { values: args } = parseArgs({
  options: {
    workers: { type: 'string', default: '2' },
    clusters: { type: 'string', default: '100' },
    requests: { type: 'string', default: '5000' },
    scrapes: { type: 'string', default: '50' },
    'soak-seconds': { type: 'string', default: '0' },
    'soak-rate': { type: 'string', default: '1000' },
    'no-pin': { type: 'boolean', default: false },
  },
  strict: true,
});

const workers = Number(args.workers);
const clusters = Number(args.clusters);
const soakSeconds = Number(args['soak-seconds']);
const soakRate = Number(args['soak-rate']);
const pin = canPin(args['no-pin']);
const procs = new Processes(pin);
const tmp = mkdtempSync(join(os.tmpdir(), 'remora-scrape-'));
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function remoraConfig(upstreamPort: number): object {
  const names = Array.from({ length: clusters }, (_, i) => `c${i}`);
  const endpoint = { address: '127.0.0.1', port: upstreamPort };
  return {
    workers,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [
      {
        name: 'bench',
        address: '127.0.0.1',
        port: 0,
        virtual_hosts: [{ name: 'all', domains: ['*'], routes: names.map((n) => ({ name: n, match: { prefix: `/${n}/` }, route: { cluster: n } })) }],
      },
    ],
    clusters: names.map((name) => ({ name, endpoints: [endpoint, endpoint] })),
  };
}

/** One request per cluster; each autocannon connection cycles through them. */
function spreadRequests(): RequestSpec[] {
  return Array.from({ length: clusters }, (_, i) => ({ method: 'GET', path: `/c${i}/x` }));
}

interface Load {
  readonly requests: number;
  readonly rps: number;
  readonly bad: number;
}

async function load(port: number, opts: { amount?: number; duration?: number; overallRate?: number }): Promise<Load> {
  const r = await autocannon({ url: `http://127.0.0.1:${port}/`, connections: 10, requests: spreadRequests(), ...opts });
  return { requests: r.requests.total, rps: round(r.requests.average), bad: r.errors + r.timeouts + r.non2xx };
}

interface Scrape {
  readonly ms: number;
  readonly bytes: number;
  readonly body: string;
}

/** One timed GET /metrics, over the keep-alive agent or (false) a fresh connection. */
async function scrape(adminPort: number, via: http.Agent | false = agent): Promise<Scrape> {
  const t0 = performance.now();
  const { status, body } = await httpGet(adminPort, '/metrics', via);
  const ms = performance.now() - t0;
  if (status !== 200) throw new Error(`/metrics answered ${status}`);
  return { ms, bytes: Buffer.byteLength(body), body };
}

interface Exposition {
  readonly series: number;
  readonly families: number;
  /** Clusters whose remora_upstream_requests_total is above zero. */
  readonly clusters_with_traffic: number;
}

function inspect(body: string): Exposition {
  let series = 0;
  let families = 0;
  const busy = new Set<string>();
  for (const line of body.split('\n')) {
    if (line.startsWith('# TYPE ')) families++;
    if (line === '' || line.startsWith('#')) continue;
    series++;
    const m = /^remora_upstream_requests_total\{.*cluster="([^"]+)".*\} (\S+)$/.exec(line);
    if (m && Number(m[2]) > 0) busy.add(m[1]);
  }
  return { series, families, clusters_with_traffic: busy.size };
}

interface ScrapeTimes {
  readonly median_ms: number;
  readonly p90_ms: number;
  readonly max_ms: number;
  readonly first_ms: number;
}

function times(ms: readonly number[]): ScrapeTimes {
  return { median_ms: round(median(ms), 2), p90_ms: round(percentile(ms, 90), 2), max_ms: round(Math.max(...ms), 2), first_ms: round(ms[0], 2) };
}

async function scrapeSeries(adminPort: number, n: number): Promise<{ ms: number[]; bytes: number; exposition: Exposition }> {
  const ms: number[] = [];
  let last: Scrape | undefined;
  for (let i = 0; i < n; i++) {
    last = await scrape(adminPort);
    ms.push(last.ms);
  }
  if (last === undefined) throw new Error('--scrapes must be at least 1');
  return { ms, bytes: last.bytes, exposition: inspect(last.body) };
}

interface RssSample {
  readonly t_s: number;
  readonly rss_mb: number;
}

/** Least-squares slope of RSS against time, in MB per minute. */
function slopeMbPerMin(samples: readonly RssSample[]): number {
  const n = samples.length;
  if (n < 2) return NaN;
  const mt = samples.reduce((a, s) => a + s.t_s, 0) / n;
  const mr = samples.reduce((a, s) => a + s.rss_mb, 0) / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.t_s - mt) * (s.rss_mb - mr);
    den += (s.t_s - mt) ** 2;
  }
  return den === 0 ? NaN : (num / den) * 60;
}

function nearest(samples: readonly RssSample[], t: number): RssSample {
  return samples.reduce((best, s) => (Math.abs(s.t_s - t) < Math.abs(best.t_s - t) ? s : best));
}

interface Soak {
  readonly seconds: number;
  readonly rate: number;
  readonly load: Load;
  readonly rss_at: Record<string, number>;
  readonly slope_second_half_mb_per_min: number;
  /** Null when the soak was shorter than one scrape interval. */
  readonly scrape: ScrapeTimes | null;
  readonly samples: RssSample[];
  readonly scrape_ms: number[];
  readonly scrape_errors: string[];
}

async function soak(remora: RemoraProcess, port: number): Promise<Soak> {
  const samples: RssSample[] = [];
  const scrapeMs: number[] = [];
  const t0 = performance.now();
  const sample = (): void => {
    const rss = rssMb(remora.pid);
    if (rss !== null) samples.push({ t_s: round((performance.now() - t0) / 1000, 2), rss_mb: rss });
  };
  sample();
  const rssTimer = setInterval(sample, 1000);
  // A fresh connection per scrape: 5 s apart, a kept-alive one would race the admin
  // server's keep-alive timeout.
  const pending: Promise<void>[] = [];
  const errors: string[] = [];
  const scrapeTimer = setInterval(() => {
    pending.push(scrape(remora.adminPort, false).then((s) => void scrapeMs.push(s.ms), (err: unknown) => void errors.push(String(err))));
  }, 5000);
  const result = await load(port, { duration: soakSeconds, overallRate: soakRate });
  sample();
  clearInterval(rssTimer);
  clearInterval(scrapeTimer);
  await Promise.all(pending);
  const rssAt = Object.fromEntries([0, 25, 50, 75, 100].map((p) => [`${p}%`, nearest(samples, (p / 100) * soakSeconds).rss_mb]));
  const slope = slopeMbPerMin(samples.filter((s) => s.t_s >= soakSeconds / 2));
  return { seconds: soakSeconds, rate: soakRate, load: result, rss_at: rssAt, slope_second_half_mb_per_min: round(slope, 3), scrape: scrapeMs.length > 0 ? times(scrapeMs) : null, samples, scrape_ms: scrapeMs, scrape_errors: errors };
}

function soakLines(s: Soak): string[] {
  const at = s.rss_at;
  const sc = s.scrape === null ? '-' : `${s.scrape.median_ms} / ${s.scrape.p90_ms} / ${s.scrape.max_ms}`;
  return [
    `## Soak: ${s.rate} req/s for ${s.seconds} s (sent ${s.load.requests}, ${s.load.bad} errors/timeouts/non-2xx)`,
    '',
    '| RSS MB at 0% | 25% | 50% | 75% | 100% | slope, second half (MB/min) | scrape ms under load: median / p90 / max |',
    '|---|---|---|---|---|---|---|',
    `| ${at['0%']} | ${at['25%']} | ${at['50%']} | ${at['75%']} | ${at['100%']} | ${s.slope_second_half_mb_per_min} | ${sc} (${s.scrape_ms.length} scrapes, ${s.scrape_errors.length} failed) |`,
    '',
  ];
}

async function main(): Promise<void> {
  if (pin) pinSelf(0);
  const upstreamPort = await startUpstream(procs, 0);
  const remora = await startRemora(procs, 1, writeConfig(tmp, 'remora-scrape', remoraConfig(upstreamPort)));
  const port = remora.listeners.bench;
  const rssIdle = rssMb(remora.pid);
  log(`remora ${workers} workers, ${clusters} clusters on :${port}, admin :${remora.adminPort}; pinning ${pin ? 'on' : 'off'}`);
  log(`traffic: ${args.requests} requests over ${clusters} clusters`);
  const traffic = await load(port, { amount: Number(args.requests) });
  const rssAfterTraffic = rssMb(remora.pid);
  log(`scrapes: ${args.scrapes} sequential GET /metrics`);
  const scrapes = await scrapeSeries(remora.adminPort, Number(args.scrapes));
  const rssAfterScrapes = rssMb(remora.pid);
  if (soakSeconds > 0) log(`soak: ${soakRate} req/s for ${soakSeconds}s`);
  const soakResult = soakSeconds > 0 ? await soak(remora, port) : null;

  const when = new Date().toISOString();
  const command = commandLine('bench:scrape');
  const t = times(scrapes.ms);
  const rss = { idle: rssIdle, after_traffic: rssAfterTraffic, after_scrapes: rssAfterScrapes };
  const result = { when, command, machine: MACHINE, pinned: pin, workers, clusters, endpoints_per_cluster: 2, traffic, scrape: { ...t, bytes: scrapes.bytes, ...scrapes.exposition, raw_ms: scrapes.ms }, rss_mb: rss, soak: soakResult };
  const lines = [
    `# Scrape cost and memory — ${when}`,
    '',
    `Command: \`${command}\`  `,
    `Machine: ${MACHINE}; pinning ${pin ? 'Remora on core 1, upstream + autocannon + scraper on core 0' : 'off'}  `,
    `Remora ${workers} workers, ${clusters} clusters × 2 endpoints, ${clusters} prefix routes. Traffic first: ${traffic.requests} requests (${traffic.bad} errors/non-2xx), ${scrapes.exposition.clusters_with_traffic}/${clusters} clusters reached.`,
    '',
    `## ${scrapes.ms.length} sequential scrapes of /metrics (keep-alive, client-side time to last byte)`,
    '',
    '| median ms | p90 ms | max ms | first ms | exposition bytes | series | metric families | RSS MB idle / after traffic / after scrapes |',
    '|---|---|---|---|---|---|---|---|',
    `| ${t.median_ms} | ${t.p90_ms} | ${t.max_ms} | ${t.first_ms} | ${scrapes.bytes} | ${scrapes.exposition.series} | ${scrapes.exposition.families} | ${rss.idle} / ${rss.after_traffic} / ${rss.after_scrapes} |`,
    '',
    ...(soakResult ? soakLines(soakResult) : []),
  ];
  writeResults('scrape', when, result, lines);
}

runMain(main, () => {
  agent.destroy();
  procs.stopAll();
  rmSync(tmp, { recursive: true, force: true });
});
