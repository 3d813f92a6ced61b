// HTTP/2 attack resistance, each attack on raw frames against one Remora (1 worker, so
// the numbers are per worker; plain listener, codec_type auto) in front of a recording
// HTTP/1.1 upstream: rapid reset (CVE-2023-44487), CONTINUATION flood (CVE-2024-27316),
// SETTINGS and PING floods from a client that never reads, empty DATA frames, an
// oversized header list and more streams than max_concurrent_streams. For each, Remora's
// process CPU time and RSS are measured around the attack, the requests reaching the
// upstream are counted, a well-behaved client (node:http2 and HTTP/1.1, alternating)
// must get all of its 200s in time while the attack runs, and once the attacker hangs up
// Remora must let go of its connection. The measurements are printed as comments (CPU
// ms, RSS delta, upstream requests, how the connection ended) so they can be quoted.
// One known limit makes "let go" fail for a connection nghttp2 itself ends (a header
// block it cannot decode): that check is TODO (reported, not failing); the connection is
// let go after idle_timeout_ms.
//
// Bounds are loose on purpose (a noisy 2-core VM runs this beside other work) but catch
// an unbounded problem: hundreds of MB held, tens of seconds of CPU, a starved client.
// What the defences are (nghttp2's and node:http2's): docs/protocols.md.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import t, { type Test } from 'tap';
import { END_HEADERS, END_STREAM, ERROR_NAMES, FRAME, frame, headerBlock, headersFrame, RawH2, REFUSED, requestFields, type Teardowns } from '../helpers/raw-h2.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';
import { rssOf, simpleConfig, startRemora } from '../helpers/remora.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MB = 1024 * 1024;
const KiB = 1024;
const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;

/** Bounds asserted for every attack (CPU bounds are per case). */
const RSS_GROWTH_MAX = 50 * MB;
const GOOD_REQUESTS = 20;
/** Each of the good client's requests must be answered within this (some cases more). */
const GOOD_DEADLINE_MS = 1000;
/** Once the attacker closed its socket, Remora must have closed its side within this. */
const RELEASE_MS = 2000;

/** Known limit, reported as TODO (see the check that uses it). */
const NGHTTP2_GOAWAY_TODO =
  'after nghttp2 ends a session with its own GOAWAY, node:http2 stops reading the socket and never destroys it: ' +
  'Remora holds the connection until idle_timeout_ms';

// ---------------------------------------------------------------------------
// The upstream and the proxy.

const rec = await startRecordingUpstream();
t.teardown(() => rec.close());
const remora = await startRemora(simpleConfig([rec.port], { workers: 1 }));
t.teardown(() => remora.stop());
const port = remora.ports.main;

// ---------------------------------------------------------------------------
// Measurements.

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every Linux ABI
 *  Node runs on). */
const CLK_TCK = 100;

/** CPU time (user + system, all threads) of `pid` so far, in milliseconds. */
function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm)": state is field 3, utime 14, stime 15 (proc(5)).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

const usage = () => ({ cpuMs: cpuMsOf(remora.pid), rss: rssOf(remora.pid) });

/** Requests the upstream saw begin whose target starts with `prefix` (request heads in its
 *  bytes), whole or not. */
function upstreamHeads(prefix: string): number {
  const text = Buffer.concat(rec.raw).toString('latin1');
  let n = 0;
  for (let i = text.indexOf(` ${prefix}`); i !== -1; i = text.indexOf(` ${prefix}`, i + 1)) n++;
  return n;
}

/** Remora's side of each connection on its listener (not LISTEN nor TIME_WAIT), from
 *  /proc/net/tcp: the peer's port → TCP state. */
function remoraConnections(): Map<number, string> {
  const STATES: Record<string, string> = { '01': 'ESTABLISHED', '03': 'SYN_RECV', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2', '07': 'CLOSE', '08': 'CLOSE_WAIT', '09': 'LAST_ACK', '0B': 'CLOSING' };
  const out = new Map<number, string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4 || parseInt(cols[1].split(':')[1], 16) !== port) continue;
    const state = STATES[cols[3]];
    if (state !== undefined) out.set(parseInt(cols[2].split(':')[1], 16), state);
  }
  return out;
}

/** Waits up to `ms` for Remora to close its side of the connection from `peerPort`;
 *  resolves its state then (null: closed) and after how long. */
async function connectionGone(peerPort: number, ms: number): Promise<{ state: string | null; ms: number }> {
  const started = performance.now();
  let state = remoraConnections().get(peerPort) ?? null;
  while (state !== null && performance.now() - started < ms) {
    await sleep(50);
    state = remoraConnections().get(peerPort) ?? null;
  }
  return { state, ms: performance.now() - started };
}

// ---------------------------------------------------------------------------
// The well-behaved client.

/** `p`, or 'timeout' after `ms`. */
function withDeadline<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)))]).finally(() => clearTimeout(timer));
}

function h2Get(session: http2.ClientHttp2Session, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = session.request({ ':method': 'GET', ':path': path });
    let status = 0;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.resume();
    req.on('end', () => resolve(status));
    req.on('error', () => resolve(-1));
  });
}

function h1Get(path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(-1));
    });
    req.on('error', () => resolve(-1));
    req.end();
  });
}

interface GoodResult {
  /** One line per request that did not get 200 within the deadline. */
  failures: string[];
  /** Each request's time to its answer (or to the deadline), ms. */
  latencies: number[];
}

/** GOOD_REQUESTS GETs, one after another 20 ms apart, alternating a node:http2 session
 *  (one connection, opened as the attack starts) and a fresh HTTP/1.1 connection each. */
async function goodClient(t: Teardowns, name: string, deadlineMs: number): Promise<GoodResult> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  t.teardown(() => session.destroy());
  const failures: string[] = [];
  const latencies: number[] = [];
  for (let i = 0; i < GOOD_REQUESTS; i++) {
    const kind = i % 2 === 0 ? 'h2' : 'http/1.1';
    const path = `/good/${name}/${i}`;
    const started = performance.now();
    const status = await withDeadline(kind === 'h2' ? h2Get(session, path) : h1Get(path), deadlineMs);
    const ms = performance.now() - started;
    latencies.push(ms);
    if (status !== 200) failures.push(`#${i} ${kind}: ${status} after ${ms.toFixed(0)} ms`);
    await sleep(20);
  }
  session.destroy();
  return { failures, latencies };
}

// ---------------------------------------------------------------------------
// One attack, measured.

interface Bounds {
  /** Remora's CPU time for the attack (and the good client's 20 requests). */
  cpuMs: number;
  /** Each good request's deadline. */
  goodMs?: number;
}

interface Measured<R> {
  result: R;
  good: GoodResult;
  cpuMs: number;
  rssDelta: number;
  rssAfter: number;
}

/** Runs `attack` and the good client together, then measures Remora once it settled. */
async function measure<R>(t: Teardowns, name: string, bounds: Bounds, attack: () => Promise<R>): Promise<Measured<R>> {
  rec.clear();
  const before = usage();
  const [result, good] = await Promise.all([attack(), goodClient(t, name, bounds.goodMs ?? GOOD_DEADLINE_MS)]);
  await sleep(300); // what the attack queued in Remora is processed
  const after = usage();
  return { result, good, cpuMs: after.cpuMs - before.cpuMs, rssDelta: after.rss - before.rss, rssAfter: after.rss };
}

/** The assertions every case makes, with their numbers as a comment. */
function checkBounds<R>(t: Test, what: string, m: Measured<R>, bounds: Bounds): void {
  const goodMs = bounds.goodMs ?? GOOD_DEADLINE_MS;
  const slowest = Math.max(...m.good.latencies);
  const sorted = [...m.good.latencies].sort((a, b) => a - b);
  t.comment(
    `${what}: Remora CPU ${m.cpuMs.toFixed(0)} ms, RSS ${m.rssDelta >= 0 ? '+' : ''}${mb(m.rssDelta)} (now ${mb(m.rssAfter)}); ` +
      `good client ${GOOD_REQUESTS - m.good.failures.length}/${GOOD_REQUESTS} × 200, median ${sorted[GOOD_REQUESTS >> 1].toFixed(0)} ms, slowest ${slowest.toFixed(0)} ms (#${m.good.latencies.indexOf(slowest)})`,
  );
  t.ok(m.cpuMs < bounds.cpuMs, `expected Remora's CPU time for the attack below ${bounds.cpuMs} ms, it used ${m.cpuMs.toFixed(0)} ms`);
  t.ok(m.rssDelta < RSS_GROWTH_MAX, `expected RSS growth below ${mb(RSS_GROWTH_MAX)}, it grew ${mb(m.rssDelta)}`);
  t.same(m.good.failures, [], `expected the good client's ${GOOD_REQUESTS} requests all 200 within ${goodMs} ms during the attack`);
}

/** Closes the attacker's socket and checks that Remora lets go of the connection. */
async function checkReleased(t: Test, what: string, conn: RawH2, todo?: string): Promise<void> {
  const peer = conn.localPort;
  conn.destroy();
  const gone = await connectionGone(peer, RELEASE_MS);
  const others = [...remoraConnections().values()];
  t.comment(
    `${what}: after the attacker closed its socket, Remora ${gone.state ? `still holds it (${gone.state}) after ${gone.ms.toFixed(0)} ms` : `closed its side within ${gone.ms.toFixed(0)} ms`}` +
      `; other connections Remora holds: ${others.length === 0 ? 'none' : others.join(', ')}`,
  );
  t.equal(gone.state, null, `expected Remora to close its side of the attack connection within ${RELEASE_MS} ms`, todo ? { todo } : {});
}

/** How an attack connection ended, in words. */
function ending(conn: RawH2): string {
  const g = conn.goaway();
  const parts: string[] = [];
  if (g) parts.push(`GOAWAY ${ERROR_NAMES[g.code] ?? g.code} (last stream ${g.lastStream})`);
  if (conn.closed) parts.push(conn.error ? `socket closed (${conn.error})` : 'socket closed');
  return parts.length > 0 ? parts.join(', ') : 'still open';
}

/** An outcome from RawH2.outcome with the error code named. */
const named = (outcome: string) => outcome.replace(/^(reset|goaway) (\d+)$/, (_, kind: string, code: string) => `${kind} ${ERROR_NAMES[Number(code)] ?? code}`);

/** Opens an attack connection; a reading one waits for Remora's SETTINGS (and ACKs it). */
async function openAttacker(t: Teardowns, read = true): Promise<RawH2> {
  const conn = await RawH2.open(port, t, { read });
  if (read) {
    const deadline = Date.now() + 2000;
    while (!conn.frames.some((f) => f.type === FRAME.SETTINGS) && Date.now() < deadline) await sleep(5);
  } else {
    await sleep(50);
  }
  return conn;
}

/** Writes `batches` one after another, stopping when the connection is gone; resolves how
 *  many were handed to the kernel (which buffers a few MB: not all were read by Remora). */
async function writeBatches(conn: RawH2, batches: Buffer[]): Promise<number> {
  let written = 0;
  for (const b of batches) {
    if (conn.closed || !(await conn.write(b))) break;
    written++;
  }
  return written;
}

/** Waits up to `ms` for the connection to end (socket closed or GOAWAY). */
async function settle(conn: RawH2, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!conn.closed && conn.goaway() === null && Date.now() < deadline) await sleep(20);
}

// ---------------------------------------------------------------------------

t.test('baseline: a well-formed h2c connection, then the client hangs up (FIN, no GOAWAY)', async (t) => {
  // Not an attack: what "Remora lets go of a connection the client closed" means below.
  const conn = await openAttacker(t);
  await conn.write(headersFrame(1, requestFields('GET', '/good/baseline'), true));
  const outcome = await conn.outcome(1);
  t.equal(outcome, 'status 200', 'expected 200 for a well-formed request');
  await checkReleased(t, 'baseline', conn);
});

t.test('rapid reset (CVE-2023-44487): 20,000 × HEADERS + RST_STREAM(CANCEL) on one connection', async (t) => {
  // nghttp2 lets a connection reset 1,000 streams at once (then 33/s) before it answers
  // GOAWAY; node:http2 has already handed Remora a stream for each HEADERS it read, so the
  // worker does the work of ~1,000-2,000 requests in a few long turns of its event loop.
  // Measured on a 2-core VM: 450-610 ms of CPU; the good client's slowest request (its
  // h2 connection, opened as the burst arrives) 0.4-1.0 s, hence 3 s for this case.
  const STREAMS = 20_000;
  const PER_BATCH = 1000;
  const bounds = { cpuMs: 5000, goodMs: 3000 };
  const block = headerBlock(requestFields('GET', '/attack/rr'));
  const cancel = Buffer.alloc(4);
  cancel.writeUInt32BE(8);
  const batches: Buffer[] = [];
  for (let b = 0; b < STREAMS / PER_BATCH; b++) {
    const frames: Buffer[] = [];
    for (let i = b * PER_BATCH; i < (b + 1) * PER_BATCH; i++) {
      const id = 2 * i + 1;
      frames.push(frame(FRAME.HEADERS, END_HEADERS | END_STREAM, id, block), frame(FRAME.RST_STREAM, 0, id, cancel));
    }
    batches.push(Buffer.concat(frames));
  }
  const conn = await openAttacker(t);
  const m = await measure(t, 'rapid-reset', bounds, async () => {
    const started = performance.now();
    const written = await writeBatches(conn, batches);
    await settle(conn, 1000);
    return { written: written * PER_BATCH, ms: performance.now() - started };
  });
  const upstream = upstreamHeads('/attack/rr');
  const answered = conn.frames.filter((f) => f.type === FRAME.HEADERS).length;
  t.comment(`rapid reset: ${m.result.written} streams written in ${m.result.ms.toFixed(0)} ms; connection: ${ending(conn)}; ${answered} responses; ${upstream} requests reached the upstream`);
  checkBounds(t, 'rapid reset', m, bounds);
  t.ok(conn.goaway() !== null || conn.closed, `expected Remora to end the connection (GOAWAY or close); connection: ${ending(conn)}`);
  t.ok(upstream < STREAMS / 10, `expected far fewer upstream requests than the ${STREAMS} streams, got ${upstream}`);
  // After its GOAWAY, node:http2 stops reading the socket and never destroys it: Remora
  // notices neither the attacker's FIN nor anything else, and the connection (socket and
  // session) stays until idle_timeout_ms (60 s) closes it.
  await checkReleased(t, 'rapid reset', conn);
});

t.test('CONTINUATION flood (CVE-2024-27316): HEADERS without END_HEADERS, then up to 10 MB of CONTINUATION', async (t) => {
  const TOTAL = 10 * MB;
  const bounds = { cpuMs: 2000 };
  // Header fields of 1 KiB each, back to back, 16 KiB per frame (SETTINGS_MAX_FRAME_SIZE).
  const fields = Array.from({ length: 16 }, (_, i) => [`x-flood-${i}`, 'v'.repeat(1000)] as [string, string]);
  const cont = frame(FRAME.CONTINUATION, 0, 1, headerBlock(fields).subarray(0, 16 * KiB));
  const batch = Buffer.concat(Array.from({ length: 64 }, () => cont)); // 1 MB
  const batches = Array.from({ length: Math.ceil(TOTAL / batch.length) }, () => batch);
  const conn = await openAttacker(t);
  const m = await measure(t, 'continuation', bounds, async () => {
    await conn.write(frame(FRAME.HEADERS, 0, 1, headerBlock(requestFields('GET', '/attack/continuation'))));
    const written = await writeBatches(conn, batches);
    await settle(conn, 1000);
    return { bytes: written * batch.length };
  });
  const reset = conn.frames.find((f) => f.type === FRAME.RST_STREAM && f.stream === 1);
  const upstream = upstreamHeads('/attack/continuation');
  t.comment(
    `CONTINUATION flood: ${mb(m.result.bytes)} of ${mb(TOTAL)} handed to the kernel before the connection ended; connection: ${ending(conn)}` +
      `${reset ? `; stream 1 reset ${ERROR_NAMES[reset.payload.readUInt32BE(0)]}` : ''}; ${upstream} requests reached the upstream`,
  );
  checkBounds(t, 'CONTINUATION flood', m, bounds);
  t.ok(conn.closed || conn.goaway() !== null, `expected the connection ended by Remora; connection: ${ending(conn)}`);
  t.ok(m.result.bytes < TOTAL, `expected the connection closed before all ${mb(TOTAL)} were taken, ${mb(m.result.bytes)} were`);
  t.equal(upstream, 0, 'expected nothing of the unfinished header block at the upstream');
  await checkReleased(t, 'CONTINUATION flood', conn);
});

/** `count` copies of `unit` from a client that never reads its socket. */
async function floodNotReading(t: Test, name: string, unit: Buffer, count: number, bounds: Bounds): Promise<void> {
  const PER_BATCH = 10_000;
  const batch = Buffer.concat(Array.from({ length: PER_BATCH }, () => unit));
  const batches = Array.from({ length: Math.ceil(count / PER_BATCH) }, () => batch);
  const conn = await openAttacker(t, false);
  const m = await measure(t, name.replace(/\W+/g, '-'), bounds, async () => {
    // Writes stall if Remora stops reading without closing: give up after 3 s then.
    const written = await Promise.race([writeBatches(conn, batches), sleep(3000).then(() => -1)]);
    await settle(conn, 500);
    return { frames: written === -1 ? -1 : written * PER_BATCH, pending: conn.pendingBytes };
  });
  // Read what Remora sent (ACKs, then maybe a GOAWAY), unless the socket was reset.
  conn.startReading();
  await sleep(300);
  const acks = conn.frames.filter((f) => f.type === unit[3] && f.flags & 0x1).length;
  const sent = m.result.frames === -1 ? `writes stalled for 3 s (${mb(m.result.pending)} still queued in the attacker)` : `${m.result.frames} frames handed to the kernel`;
  t.comment(`${name}: ${sent}; connection: ${ending(conn)}; ${acks} ACKs read afterwards`);
  checkBounds(t, name, m, bounds);
  t.ok(conn.closed || conn.goaway() !== null, `expected Remora to end the connection; connection: ${ending(conn)}`);
  await checkReleased(t, name, conn);
}

t.test('SETTINGS flood: 100,000 SETTINGS frames from a client that never reads', async (t) => {
  await floodNotReading(t, 'SETTINGS flood', frame(FRAME.SETTINGS, 0, 0), 100_000, { cpuMs: 2000 });
});

t.test('PING flood: 100,000 PING frames from a client that never reads', async (t) => {
  await floodNotReading(t, 'PING flood', frame(FRAME.PING, 0, 0, Buffer.alloc(8, 7)), 100_000, { cpuMs: 2000 });
});

t.test('empty DATA flood: a POST, then 100,000 zero-length DATA frames without END_STREAM', async (t) => {
  const COUNT = 100_000;
  const PER_BATCH = 10_000;
  const bounds = { cpuMs: 2000 };
  const batch = Buffer.concat(Array.from({ length: PER_BATCH }, () => frame(FRAME.DATA, 0, 1)));
  const batches = Array.from({ length: COUNT / PER_BATCH }, () => batch);
  const conn = await openAttacker(t);
  const m = await measure(t, 'empty-data', bounds, async () => {
    await conn.write(headersFrame(1, requestFields('POST', '/attack/data'), false));
    const written = await writeBatches(conn, batches);
    await settle(conn, 1000);
    return { frames: written * PER_BATCH };
  });
  const upstream = upstreamHeads('/attack/data');
  t.comment(`empty DATA flood: ${m.result.frames} frames handed to the kernel; connection: ${ending(conn)}; ${upstream} request(s) reached the upstream, ${rec.aborted.length} cut (${JSON.stringify(rec.aborted)})`);
  checkBounds(t, 'empty DATA flood', m, bounds);
  t.ok(conn.closed || conn.goaway() !== null, `expected Remora to end the connection (too many invalid frames); connection: ${ending(conn)}`);
  t.ok(upstream <= 1, `expected at most the one POST at the upstream, got ${upstream}`);
  t.equal(rec.requests.filter((r) => r.url === '/attack/data').length, 0, 'expected no complete POST at the upstream (its body never ended)');
  await checkReleased(t, 'empty DATA flood', conn);
});

t.test('oversized header list (limit 60 KiB): one 100 KiB value, and 80 fields of 1 KiB', async (t) => {
  const bounds = { cpuMs: 2000 };
  /** A header block split over HEADERS + CONTINUATION frames of 16 KiB. */
  const split = (stream: number, block: Buffer): Buffer => {
    const frames: Buffer[] = [];
    for (let off = 0; off < block.length; off += 16 * KiB) {
      const last = off + 16 * KiB >= block.length;
      const type = off === 0 ? FRAME.HEADERS : FRAME.CONTINUATION;
      frames.push(frame(type, (last ? END_HEADERS : 0) | (off === 0 ? END_STREAM : 0), stream, block.subarray(off, off + 16 * KiB)));
    }
    return Buffer.concat(frames);
  };
  // One field over 64 KiB is past nghttp2's HPACK limit: COMPRESSION_ERROR, a connection
  // error. 80 fields stay under it, each small: node:http2 resets the stream once the list
  // passes SETTINGS_MAX_HEADER_LIST_SIZE; the connection lives on.
  const cases = [
    { name: 'one 100 KiB value', path: '/attack/big-value', extra: [['x-big', 'b'.repeat(100 * KiB)]] as [string, string][], todo: NGHTTP2_GOAWAY_TODO },
    { name: '80 fields of 1 KiB', path: '/attack/many-fields', extra: Array.from({ length: 80 }, (_, i) => [`x-field-${i}`, 'f'.repeat(KiB)] as [string, string]), todo: '' },
  ];
  const m = await measure(t, 'headers', bounds, async () => {
    const outcomes: { name: string; outcome: string; next: string; ending: string; conn: RawH2; todo: string }[] = [];
    for (const c of cases) {
      const conn = await openAttacker(t);
      await conn.write(split(1, headerBlock(requestFields('GET', c.path, c.extra))));
      const outcome = await conn.outcome(1, 2000);
      // The same connection, if it is still open, serves a well-formed request.
      await conn.write(headersFrame(3, requestFields('GET', '/good/headers-after'), true));
      const next = await conn.outcome(3, 2000);
      outcomes.push({ name: c.name, outcome, next, ending: ending(conn), conn, todo: c.todo });
    }
    return outcomes;
  });
  for (const o of m.result) {
    t.comment(`oversized header list, ${o.name}: ${named(o.outcome)}; the next request on that connection: ${named(o.next)}; connection: ${o.ending}`);
    t.match(o.outcome, REFUSED, `${o.name}: expected the stream refused (reset, GOAWAY, closed or 4xx), got ${named(o.outcome)}`);
  }
  const upstream = upstreamHeads('/attack/big-value') + upstreamHeads('/attack/many-fields');
  t.comment(`oversized header list: ${upstream} requests reached the upstream`);
  t.equal(upstream, 0, 'expected no oversized request at the upstream');
  checkBounds(t, 'oversized header list', m, bounds);
  for (const o of m.result) await checkReleased(t, `oversized header list, ${o.name}`, o.conn, o.todo);
});

t.test('too many streams: 100 open POSTs, then 900 more on the same connection (max_concurrent_streams 100)', async (t) => {
  const STREAMS = 1000;
  const LIMIT = 100;
  const bounds = { cpuMs: 3000 };
  const open = (from: number, to: number) => Buffer.concat(Array.from({ length: to - from }, (_, k) => headersFrame(2 * (from + k) + 1, requestFields('POST', `/attack/streams/${from + k}`), false)));
  const conn = await openAttacker(t);
  const m = await measure(t, 'streams', bounds, async () => {
    // First as many as allowed, held open (no END_STREAM): each becomes an upstream request.
    await conn.write(open(0, LIMIT));
    const deadline = Date.now() + 3000;
    while (upstreamHeads('/attack/streams/') < LIMIT && !conn.closed && Date.now() < deadline) await sleep(20);
    const admitted = upstreamHeads('/attack/streams/');
    // Then 900 more, beyond the limit.
    await conn.write(open(LIMIT, STREAMS));
    await settle(conn, 1000);
    await sleep(300);
    return { admitted, total: upstreamHeads('/attack/streams/') };
  });
  const resets = new Map<string, number>();
  for (const f of conn.frames) if (f.type === FRAME.RST_STREAM) resets.set(ERROR_NAMES[f.payload.readUInt32BE(0)], (resets.get(ERROR_NAMES[f.payload.readUInt32BE(0)]) ?? 0) + 1);
  const refused = resets.get('REFUSED_STREAM') ?? 0;
  t.comment(
    `too many streams: ${m.result.admitted} requests open at the upstream after the first ${LIMIT} streams, ${m.result.total} after all ${STREAMS}; ` +
      `resets received ${JSON.stringify(Object.fromEntries(resets))}; connection: ${ending(conn)}; upstream requests cut: ${rec.aborted.length}`,
  );
  checkBounds(t, 'too many streams', m, bounds);
  t.equal(m.result.admitted, LIMIT, `expected the first ${LIMIT} streams to reach the upstream as open requests`);
  t.ok(m.result.total <= LIMIT, `expected at most ${LIMIT} requests at the upstream, got ${m.result.total}`);
  t.ok(refused >= STREAMS - LIMIT || conn.goaway() !== null || conn.closed, `expected the streams beyond ${LIMIT} refused or the connection ended; ${refused} refused, connection: ${ending(conn)}`);
  await checkReleased(t, 'too many streams', conn);
  await sleep(200);
  const cut = rec.aborted.filter((line) => line.startsWith('POST /attack/streams/')).length;
  t.comment(`too many streams: ${cut} upstream requests cut once the connection was gone`);
  t.equal(cut, m.result.total, 'expected every upstream request of the attack connection ended (cut) once it was gone');
});

t.test('afterwards: Remora still serves h2c and HTTP/1.1', async (t) => {
  const good = await goodClient(t, 'after', GOOD_DEADLINE_MS);
  t.same(good.failures, [], 'expected all 200');
  t.comment(`afterwards: Remora RSS ${mb(rssOf(remora.pid))}`);
});
