// h2load (Debian's nghttp2-client), the native HTTP/2 load generator: a closed loop for
// throughput (`-c` connections × `-m` streams each), and a fixed rate (`--rps` per client)
// whose per-request times (`--log-file`) give latency percentiles. gRPC unary calls are
// POSTs of a gRPC-framed message with the gRPC headers. Pinned to core 0 when `pin`.

import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { log, percentile } from './harness.js';

export interface H2Request {
  /** Path requested, e.g. `/` or `/bench.Echo/Unary`. */
  readonly path: string;
  /** A gRPC call: the message (bytes) is framed and POSTed with the gRPC headers. */
  readonly grpcMessage?: Buffer;
}

/** Writes the gRPC frame of `message` under `dir` and returns h2load's arguments for it. */
function requestArgs(dir: string, r: H2Request): string[] {
  if (r.grpcMessage === undefined) return [];
  const frame = Buffer.alloc(5 + r.grpcMessage.length);
  frame.writeUInt32BE(r.grpcMessage.length, 1);
  r.grpcMessage.copy(frame, 5);
  const file = join(dir, 'grpc-request.bin');
  writeFileSync(file, frame);
  return ['-d', file, '-H', 'content-type: application/grpc', '-H', 'te: trailers'];
}

function run(pin: boolean, argv: string[]): string {
  const out = pin ? spawnSync('taskset', ['-c', '0', 'h2load', ...argv], { encoding: 'utf8' }) : spawnSync('h2load', argv, { encoding: 'utf8' });
  return `${out.stdout ?? ''}${out.stderr ?? ''}`;
}

/** Closed loop: req/s over `seconds` with `clients` connections × `streams` each. */
export function h2loadRps(dir: string, port: number, r: H2Request, seconds: number, pin: boolean, clients = 10, streams = 10, extra: string[] = []): number {
  const out = run(pin, ['-c', String(clients), '-m', String(streams), '-D', String(seconds), '--warm-up-time=1', ...extra, ...requestArgs(dir, r), `http://127.0.0.1:${port}${r.path}`]);
  const m = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out);
  const failed = /requests: .* (\d+) failed, (\d+) errored/.exec(out);
  if (failed !== null && (failed[1] !== '0' || failed[2] !== '0')) log(`h2load on ${port}${r.path}: ${failed[0]}`);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  if (codes !== null && (codes[3] !== '0' || codes[4] !== '0')) log(`h2load on ${port}${r.path}: ${codes[0]}`);
  return m ? Math.round(Number(m[1])) : 0;
}

export interface H2Latency {
  readonly p50: number;
  readonly p99: number;
  readonly count: number;
}

/** Fixed rate: `rate` req/s in total over `clients` connections for `seconds`; request
 *  times in µs from h2load's per-request log. */
export function h2loadLatency(dir: string, port: number, r: H2Request, seconds: number, rate: number, pin: boolean, clients = 4): H2Latency {
  const logFile = join(dir, `h2load-${port}.log`);
  writeFileSync(logFile, '');
  run(pin, ['-c', String(clients), '-m', '1', '--rps', String(Math.max(1, Math.round(rate / clients))), '-D', String(seconds),
    `--log-file=${logFile}`, ...requestArgs(dir, r), `http://127.0.0.1:${port}${r.path}`]);
  const times = readFileSync(logFile, 'utf8').split('\n').filter((l) => l !== '').map((l) => Number(l.split('\t')[2])).filter((x) => Number.isFinite(x));
  return { p50: percentile(times, 50), p99: percentile(times, 99), count: times.length };
}
