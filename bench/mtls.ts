// Price of Remora's inbound mTLS front end, measured in one run against the same upstream:
// Remora's TLS listener (Node's https server in one worker, client certificates required)
// against nginx with the same certificates (`ssl_verify_client on`) and against Remora's
// plain uWS listener (the cost reference).
//
//   npm run bench:mtls -- [--quick] [--rounds 5] [--duration 5] [--warmup 2]
//                         [--connections 16] [--workers 1] [--size 100]
//                         [--no-resumption] [--no-pin] [--out DIR]
//
//   keep-alive  closed loop over `connections` keep-alive connections (TLS ones present
//               the client certificate once): remora-tls, nginx-tls, remora-plain
//   handshake   a new TLS connection per request (full handshake with the client
//               certificate, no session offered), one request each, `Connection: close`,
//               `connections` lanes: remora-tls, nginx-tls
//   resumed     the same, each lane offering the session of its last connection (TLS 1.3
//               ticket): remora-tls, nginx-tls (left out with --no-resumption)
//
// The generator is bench/lib/conn-loop.ts (one thread, tls.connect, one request in flight
// per connection); its own CPU share is reported per case, because on a 2-core host it
// shares core 0 with the upstream and a TLS client costs about what a TLS server does.
// Layout as the suite (lib/suite-plan.ts planLayout): the upstream (bench/upstream-uws.ts)
// and this process (lowest priority) on core 0, Remoras and nginx on core 1 (1..w for w
// workers when there are enough cores, unpinned otherwise). Each round runs every case and
// target in turn (interleaved), after a warm-up per case and target.
// Certificates: an EC P-256 CA, a server certificate (DNS SAN + spiffe:// URI SAN) and a
// client certificate (spiffe:// URI SAN), made with the openssl CLI in a temp dir that is
// removed at the end, with the configs and nginx's files.
// Writes <out>/mtls-<timestamp>.{json,md} (out: bench/results).

import { readFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { TestPki } from '../test/helpers/certs.js';
import { runConnLoop, type ConnLoopResult, type ConnLoopTls, type ConnMode } from './lib/conn-loop.js';
import {
  MACHINE,
  Processes,
  ROOT,
  canPin,
  commandLine,
  hasBinary,
  log,
  pinSelf,
  revision,
  round,
  rssMb,
  runMain,
  showSpread,
  spread,
  startRemora,
  startUpstream,
  writeConfig,
  writeResults,
  type Spread,
} from './lib/harness.js';
import { HostLoad, shareOf } from './lib/host-load.js';
import { peerMissing, startPeer } from './lib/peers.js';
import { ALL_OFF, benchRemoraConfig, scrapeSanity, type Features } from './lib/remora-config.js';
import { planLayout, proxyCores, ratioSpread } from './lib/suite-plan.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string', default: '16' },
    workers: { type: 'string', default: '1' },
    size: { type: 'string', default: '100' },
    'no-resumption': { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
  strict: true,
});

function num(name: string, v: string | undefined, fallback: number, integer: boolean, min: number): number {
  const x = v === undefined ? fallback : Number(v);
  if (!Number.isFinite(x) || x < min || (integer && !Number.isInteger(x))) throw new Error(`--${name}: expected ${integer ? 'an integer' : 'a number'} ≥ ${min}, got ${v}`);
  return x;
}

const quick = args.quick;
const rounds = num('rounds', args.rounds, quick ? 1 : 5, true, 1);
const duration = num('duration', args.duration, quick ? 1 : 5, false, 0.1);
const warmup = num('warmup', args.warmup, quick ? 0.5 : 2, false, 0);
const lanes = num('connections', args.connections, 16, true, 1);
const workers = num('workers', args.workers, 1, true, 1);
const size = num('size', args.size, 100, true, 0);
const pin = canPin(args['no-pin']);
const layout = planLayout(os.availableParallelism(), pin, 0);
const procs = new Processes(pin);
const pki = new TestPki('bench-mtls');

/** The server certificate's DNS SAN: the clients' SNI and the name they verify. */
const SERVER_NAME = 'remora.bench';
const SERVER_ID = 'spiffe://bench.local/ns/bench/sa/remora';
const CLIENT_ID = 'spiffe://bench.local/ns/bench/sa/client';

type TargetName = 'remora-tls' | 'nginx-tls' | 'remora-plain';
type CaseName = 'keep-alive' | 'handshake' | 'resumed';

interface Target {
  readonly name: TargetName;
  readonly port: number;
  readonly pid: number | undefined;
  readonly tls: boolean;
  /** Remora's admin port; null for nginx. */
  readonly adminPort: number | null;
}

interface Case {
  readonly name: CaseName;
  readonly mode: ConnMode;
  readonly resume: boolean;
  readonly targets: readonly TargetName[];
  readonly what: string;
}

const CASES: readonly Case[] = [
  { name: 'keep-alive', mode: 'keep-alive', resume: false, targets: ['remora-tls', 'nginx-tls', 'remora-plain'], what: `${lanes} keep-alive connections, closed loop` },
  { name: 'handshake', mode: 'new', resume: false, targets: ['remora-tls', 'nginx-tls'], what: `a full mTLS handshake per request (no session offered), ${lanes} lanes` },
  ...(args['no-resumption'] ? [] : [{ name: 'resumed', mode: 'new', resume: true, targets: ['remora-tls', 'nginx-tls'], what: `a new connection per request resuming the lane's last session, ${lanes} lanes` } as const]),
];

/** Ratios reported per case: [numerator, denominator]. */
const RATIOS: readonly (readonly [TargetName, TargetName])[] = [
  ['remora-tls', 'nginx-tls'],
  ['remora-tls', 'remora-plain'],
];

/** One case and target in one round: conn-loop's figures (req/s rounded; cpuPct is the
 *  generator's own CPU, % of one core) and the host's other load. */
interface RoundResult extends Omit<ConnLoopResult, 'mode' | 'mean'> {
  /** CPU used by processes outside the benchmark, % of all cores (null off Linux). */
  readonly hostOtherPct: number | null;
}

function clientTls(resume: boolean): ConnLoopTls {
  return { ca: readFileSync(pki.file('ca.pem')), cert: readFileSync(pki.file('client.pem')), key: readFileSync(pki.file('client.key')), servername: SERVER_NAME, resume };
}

async function drive(t: Target, c: Case, seconds: number, hostLoad: HostLoad | null): Promise<RoundResult> {
  const before = hostLoad?.snapshot() ?? null;
  const { mode: _mode, mean: _mean, ...r } = await runConnLoop({ port: t.port, mode: c.mode, lanes, durationMs: seconds * 1000, ...(t.tls ? { tls: clientTls(c.resume) } : {}) });
  return { ...r, rps: round(r.rps), hostOtherPct: shareOf(before, hostLoad?.snapshot() ?? null)?.otherPct ?? null };
}

interface Probe {
  readonly status: number | null;
  readonly error: string | null;
  readonly protocol: string | null;
  readonly cipher: string | null;
}

/** One GET on a fresh TLS connection, with or without the client certificate. */
function probe(port: number, withCert: boolean): Promise<Probe> {
  const tls = clientTls(false);
  return new Promise((resolve) => {
    const req = https.get(
      { host: '127.0.0.1', port, path: '/', servername: tls.servername, ca: tls.ca, ...(withCert ? { cert: tls.cert, key: tls.key } : {}), agent: false, timeout: 5000 },
      (res) => {
        const s = res.socket as TLSSocket;
        const seen = { protocol: s.getProtocol(), cipher: s.getCipher()?.name ?? null };
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, error: null, ...seen }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: null, error: err.code ?? err.message, protocol: null, cipher: null }));
  });
}

function showProbe(p: Probe): string {
  return p.status !== null ? `HTTP ${p.status}` : `refused in the handshake (${p.error})`;
}

function makeCertificates(): void {
  pki.ca('ca');
  pki.leaf('server', 'ca', { dns: SERVER_NAME, uri: SERVER_ID, usage: 'serverAuth' });
  pki.leaf('client', 'ca', { uri: CLIENT_ID, usage: 'clientAuth' });
}

async function startTargets(upstreamPort: number): Promise<{ targets: Target[]; skipped: string[] }> {
  const cores = proxyCores(layout, workers);
  const remora = async (name: TargetName, f: Features): Promise<Target> => {
    const r = await startRemora(procs, cores, writeConfig(pki.dir, name, benchRemoraConfig(f, upstreamPort, workers)));
    return { name, port: r.listeners.bench, pid: r.pid, tls: f.tls !== undefined, adminPort: r.adminPort };
  };
  const tls = { cert_file: pki.file('server.pem'), key_file: pki.file('server.key'), ca_file: pki.file('ca.pem') };
  // Stats on (Remora's default) in both: what a deployment runs.
  const targets = [await remora('remora-tls', { ...ALL_OFF, stats: true, tls }), await remora('remora-plain', { ...ALL_OFF, stats: true })];
  const skipped: string[] = [];
  const missing = peerMissing('nginx');
  if (missing === null) {
    const n = await startPeer(procs, cores, 'nginx', upstreamPort, workers, pki.dir, { cert: tls.cert_file, key: tls.key_file, ca: tls.ca_file });
    targets.splice(1, 0, { name: 'nginx-tls', port: n.port, pid: n.pid, tls: true, adminPort: null });
  } else {
    skipped.push(`nginx-tls: ${missing}`);
  }
  return { targets, skipped };
}

interface TargetSummary {
  readonly target: TargetName;
  readonly rps: Spread;
  readonly p50_us: Spread;
  readonly p99_us: Spread;
  readonly generator_cpu_pct: Spread;
  readonly requests: number;
  readonly errors: number;
  readonly error_kinds: Record<string, number>;
  readonly connections: number;
  /** Share of TLS connections that resumed a session, %; null for plaintext. */
  readonly resumed_pct: number | null;
}

interface RatioSummary {
  readonly name: string;
  readonly per_round: number[];
  readonly spread: Spread | null;
}

interface CaseSummary {
  readonly case: CaseName;
  readonly what: string;
  readonly targets: TargetSummary[];
  readonly ratios: RatioSummary[];
}

type Raw = Record<CaseName, Partial<Record<TargetName, RoundResult[]>>>;

function summarizeCase(c: Case, rows: Partial<Record<TargetName, RoundResult[]>>, tlsOf: (t: TargetName) => boolean): CaseSummary {
  const targets: TargetSummary[] = [];
  for (const [target, rs] of Object.entries(rows) as [TargetName, RoundResult[]][]) {
    const errorKinds: Record<string, number> = {};
    for (const r of rs) for (const [k, n] of Object.entries(r.errorKinds)) errorKinds[k] = (errorKinds[k] ?? 0) + n;
    const connections = rs.reduce((s, r) => s + r.connections, 0);
    targets.push({
      target,
      rps: spread(rs.map((r) => r.rps), 0),
      p50_us: spread(rs.map((r) => r.p50), 0),
      p99_us: spread(rs.map((r) => r.p99), 0),
      generator_cpu_pct: spread(rs.map((r) => r.cpuPct), 0),
      requests: rs.reduce((s, r) => s + r.requests, 0),
      errors: rs.reduce((s, r) => s + r.errors, 0),
      error_kinds: errorKinds,
      connections,
      resumed_pct: tlsOf(target) && connections > 0 ? round((rs.reduce((s, r) => s + r.resumed, 0) / connections) * 100, 1) : null,
    });
  }
  const ratios = RATIOS.flatMap(([a, b]) => {
    const xs = rows[a]?.map((r) => r.rps);
    const base = rows[b]?.map((r) => r.rps);
    if (xs === undefined || base === undefined) return [];
    return [{ name: `${a}/${b}`, per_round: xs.map((x, i) => round(x / base[i], 3)), spread: ratioSpread(xs, base, 3) }];
  });
  return { case: c.name, what: c.what, targets, ratios };
}

function caseLines(c: Case, s: CaseSummary, rows: Partial<Record<TargetName, RoundResult[]>>): string[] {
  const unit = c.mode === 'new' ? 'handshakes/s (= req/s)' : 'req/s';
  const names = s.targets.map((t) => t.target);
  const n = rows[names[0]]?.length ?? 0;
  const perRound = Array.from({ length: n }, (_, i) => {
    const cells = names.map((t) => `${rows[t]![i].rps} / ${rows[t]![i].p50} / ${rows[t]![i].p99}`);
    const shares = names.map((t) => rows[t]![i].hostOtherPct).filter((x): x is number => x !== null);
    const host = shares.length > 0 ? Math.max(...shares) : null;
    return `| ${i + 1} | ${cells.join(' | ')} | ${s.ratios.map((r) => r.per_round[i]).join(' | ')}${s.ratios.length > 0 ? ' |' : ''} ${host ?? '-'} |`;
  });
  return [
    `## ${c.name}: ${c.what} (conn-loop)`,
    '',
    `| target | ${unit} median (min–max) | p50 µs | p99 µs | generator CPU % of a core | requests | errors | TLS sessions resumed |`,
    '|---|---|---|---|---|---|---|---|',
    ...s.targets.map(
      (t) =>
        `| ${t.target} | ${showSpread(t.rps)} | ${showSpread(t.p50_us)} | ${showSpread(t.p99_us)} | ${showSpread(t.generator_cpu_pct)} | ${t.requests} | ${t.errors}${t.errors > 0 ? ` (${Object.entries(t.error_kinds).map(([k, v]) => `${k}: ${v}`).join(', ')})` : ''} | ${t.resumed_pct === null ? '-' : `${t.resumed_pct} %`} |`,
    ),
    '',
    ...s.ratios.map((r) => `${r.name} (${unit}, paired per round): ${r.spread === null ? '-' : `**${showSpread(r.spread)}**`} (median (min–max)).  `),
    '',
    `Per round (req/s / p50 µs / p99 µs; host: CPU of processes outside the benchmark, % of all cores, the highest over the round's targets):`,
    '',
    `| round | ${names.join(' | ')} | ${s.ratios.map((r) => r.name).join(' | ')}${s.ratios.length > 0 ? ' |' : ''} host other % |`,
    `|---|${names.map(() => '---|').join('')}${s.ratios.map(() => '---|').join('')}---|`,
    ...perRound,
    '',
  ];
}

async function main(): Promise<void> {
  if (!hasBinary('openssl')) throw new Error('the openssl CLI is needed to make the certificates');
  if (layout.generator !== null) pinSelf(layout.generator);
  os.setPriority(19);
  const revStart = revision();
  makeCertificates();
  const upstreamPort = await startUpstream(procs, layout.upstream ?? 0, size);
  const { targets, skipped } = await startTargets(upstreamPort);
  const byName = new Map(targets.map((t) => [t.name, t]));
  const cases = CASES.map((c) => ({ ...c, targets: c.targets.filter((t) => byName.has(t)) }));
  const runs = cases.reduce((s, c) => s + c.targets.length, 0);
  log(`targets ${targets.map((t) => `${t.name}:${t.port}`).join(' ')}; ${layout.text}; ~${Math.ceil(runs * (warmup + rounds * duration))}s to go`);
  for (const s of skipped) log(`skipped ${s}`);

  const probes: Record<string, { with_cert: Probe; without_cert: Probe }> = {};
  for (const t of targets.filter((x) => x.tls)) {
    probes[t.name] = { with_cert: await probe(t.port, true), without_cert: await probe(t.port, false) };
    const p = probes[t.name];
    if (p.with_cert.status !== 200) throw new Error(`${t.name}: a request with the client certificate got ${showProbe(p.with_cert)}`);
    if (p.without_cert.status !== null && p.without_cert.status < 300) throw new Error(`${t.name}: a request without a client certificate was served (${p.without_cert.status})`);
  }

  const hostLoad = new HostLoad();
  for (const c of cases) {
    for (const name of c.targets) {
      if (warmup <= 0) break;
      log(`warm-up ${c.name} ${name} for ${warmup}s`);
      await drive(byName.get(name)!, c, warmup, null);
    }
  }
  const raw = Object.fromEntries(cases.map((c) => [c.name, Object.fromEntries(c.targets.map((t) => [t, []]))])) as unknown as Raw;
  const whole = hostLoad.snapshot();
  for (let i = 0; i < rounds; i++) {
    for (const c of cases) {
      for (const name of c.targets) {
        const r = await drive(byName.get(name)!, c, duration, hostLoad);
        raw[c.name][name]!.push(r);
        log(`round ${i + 1}/${rounds} ${c.name} ${name}: ${r.rps} req/s, p50 ${r.p50} µs, p99 ${r.p99} µs, generator ${r.cpuPct} % of a core${r.errors > 0 ? `, ${r.errors} errors` : ''}`);
      }
    }
  }
  const host = shareOf(whole, hostLoad.snapshot());
  hostLoad.stop();

  const summaries = cases.map((c) => summarizeCase(c, raw[c.name], (t) => byName.get(t)!.tls));
  const sanity: Record<string, { requests_in_metrics: number; rss_mb_end: number | null }> = {};
  for (const t of targets) {
    if (t.adminPort !== null) sanity[t.name] = { requests_in_metrics: (await scrapeSanity(t.adminPort)).requests_in_metrics, rss_mb_end: t.pid === undefined ? null : rssMb(t.pid) };
  }
  const rev = revision();

  const when = new Date().toISOString();
  const command = commandLine('bench:mtls');
  const result = {
    when,
    command,
    revision: rev,
    revision_start: revStart,
    machine: MACHINE,
    pinned: pin,
    layout: layout.text,
    quick,
    rounds,
    duration_s: duration,
    warmup_s: warmup,
    connections: lanes,
    workers,
    body_bytes: size,
    certificates: { ca: 'EC P-256, self-signed', server: { dns: SERVER_NAME, uri: SERVER_ID }, client: { uri: CLIENT_ID } },
    skipped,
    probes,
    host_over_measurement: host,
    sanity,
    summary: summaries,
    raw,
  };
  const lines = [
    `# mTLS: Remora's TLS listener vs nginx and Remora's plain listener — ${when}`,
    '',
    `Command: \`${command}\`${quick ? ' (**quick: a smoke check, not a measurement**)' : ''}  `,
    `Machine: ${MACHINE}; ${layout.text}  `,
    `Remora revision: ${rev}${rev !== revStart ? ` (at the start: ${revStart})` : ''}  `,
    `Remora ${workers} worker${workers > 1 ? 's' : ''} (stats on, the default), nginx ${workers} worker process${workers > 1 ? 'es' : ''}, both with keep-alive to the same upstream (bench/upstream-uws.ts, ${size}-byte responses). ${rounds} round${rounds > 1 ? 's' : ''} of ${duration} s per case and target, interleaved, after a ${warmup} s warm-up each.  `,
    `Generator: bench/lib/conn-loop.ts, one thread, one request in flight per connection, tls.connect with one client context (the client certificate, the CA, SNI ${SERVER_NAME}, the server's name verified).  `,
    `Certificates: EC P-256 CA; server certificate DNS:${SERVER_NAME} + URI:${SERVER_ID}; client certificate URI:${CLIENT_ID}; made with openssl at the start, removed at the end.`,
    ...(skipped.length > 0 ? ['', `Skipped: ${skipped.join('; ')}.`] : []),
    '',
    '## Checks',
    '',
    '| target | with the client certificate | without one | protocol, cipher |',
    '|---|---|---|---|',
    ...Object.entries(probes).map(([t, p]) => `| ${t} | ${showProbe(p.with_cert)} | ${showProbe(p.without_cert)} | ${p.with_cert.protocol ?? '-'}, ${p.with_cert.cipher ?? '-'} |`),
    '',
    ...Object.entries(sanity).map(([t, s]) => `${t}: ${s.requests_in_metrics} requests in /metrics (warm-ups and checks included), RSS ${s.rss_mb_end ?? '-'} MB at the end.  `),
    '',
    ...cases.flatMap((c, i) => caseLines(c, summaries[i], raw[c.name])),
    '## Reading it',
    '',
    '- remora-tls/nginx-tls above 1: Remora\'s TLS listener served more than nginx with the same certificates; remora-tls/remora-plain is what the TLS front end (Node\'s https server and TLS) costs against the uWS plaintext path (below 1).',
    '- The generator runs in one thread and pays for TLS too (a full handshake costs the client about what it costs the server). Where its CPU nears 100 % of a core, or it shares that core with the upstream (the layout above), it may be what limits the figure, and ratios understate the difference between targets.',
    `- Host: processes outside the benchmark used ${host === null ? '-' : `${host.otherPct} % of all cores (steal ${host.stealPct} %)`} over the measured rounds; the per-round column shows where.`,
  ];
  writeResults('mtls', when, result, lines, args.out ?? join(ROOT, 'bench/results'));
}

runMain(main, () => {
  procs.stopAll();
  pki.remove();
});
