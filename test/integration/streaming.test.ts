// 200 MB bodies both ways through the real proxy while the other side reads slowly at
// first: the proxy must stream with backpressure, so its RSS stays bounded. Bodies are a
// repeating pseudo-random pattern, generated and checked on the fly (the test never
// holds a whole body).
import http from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import t from 'tap';
import { request, rssOf, simpleConfig, startRemora, startUpstream } from '../helpers/remora.js';

const TOTAL = 200 * 1024 * 1024;
const MB = 1024 * 1024;
/** Allowed RSS growth of the proxy process over its warmed-up baseline. Streaming with
 *  backpressure measured +30..45 MB on Node 20 and +70..85 MB on Node 24 (garbage between
 *  GCs, whatever the body's size); a proxy that buffers instead of pausing the fast side
 *  grows with the body: +100..120 MB for 100 MB. With a 200 MB body the bound sits
 *  between the two on both runtimes. */
const RSS_ALLOWANCE = 130 * MB;
/** Per-test limit: a stalled stream fails here rather than at tap's file timeout. */
const TEST_TIMEOUT_MS = 45_000;
/** How long the slow side holds off reading before it drains. */
const SLOW_START_MS = 1500;

// The pattern: PERIOD pseudo-random bytes, repeated. PERIOD is prime so that chunk
// boundaries never line up with it; DOUBLE lets any window of up to PERIOD bytes be a
// single view.
const PERIOD = 65521;
const DOUBLE = Buffer.alloc(PERIOD * 2);
{
  let x = 0x2545f491;
  for (let i = 0; i < PERIOD; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    DOUBLE[i] = DOUBLE[i + PERIOD] = x & 0xff;
  }
}

/** Yields `total` pattern bytes as views (no copies). */
function* patternChunks(total: number): Generator<Buffer> {
  const chunk = 64 * 1024 - 16; // < PERIOD
  for (let pos = 0; pos < total; pos += chunk) {
    const off = pos % PERIOD;
    yield DOUBLE.subarray(off, off + Math.min(chunk, total - pos));
  }
}

/** Checks a stream of bytes against the pattern. */
class PatternCheck {
  bytes = 0;
  mismatchAt = -1;
  feed(buf: Buffer): void {
    for (let i = 0; i < buf.length && this.mismatchAt < 0; ) {
      const off = (this.bytes + i) % PERIOD;
      const n = Math.min(PERIOD, buf.length - i);
      if (!buf.subarray(i, i + n).equals(DOUBLE.subarray(off, off + n))) this.mismatchAt = this.bytes + i;
      i += n;
    }
    this.bytes += buf.length;
  }
}

/** Samples the proxy's RSS every 100 ms until stopped; returns the maximum. */
function sampleRss(pid: number): { stop(): number } {
  let max = rssOf(pid);
  const timer = setInterval(() => {
    try {
      max = Math.max(max, rssOf(pid));
    } catch {
      // process gone; the test fails elsewhere
    }
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      return max;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const up = await startUpstream((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (req.method === 'POST' && url.pathname === '/upload') {
    // Slow reader at first: the proxy has to hold off the client meanwhile.
    req.pause();
    const check = new PatternCheck();
    setTimeout(() => {
      req.on('data', (c: Buffer) => check.feed(c));
      req.on('end', () => {
        const body = JSON.stringify({ bytes: check.bytes, mismatchAt: check.mismatchAt, te: req.headers['transfer-encoding'] ?? null, cl: req.headers['content-length'] ?? null });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      req.resume();
    }, SLOW_START_MS);
    return;
  }
  if (url.pathname === '/download') {
    req.resume();
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/octet-stream' };
    if (url.searchParams.get('framing') === 'length') headers['content-length'] = TOTAL;
    res.writeHead(200, headers);
    pipeline(Readable.from(patternChunks(TOTAL)), res).catch(() => undefined);
    return;
  }
  req.resume();
  res.end('ok');
});
const remora = await startRemora(simpleConfig([up.port]));
t.teardown(async () => {
  await remora.stop();
  await up.close();
});
const port = remora.ports.main;

// Warm up (worker, pools, JIT) before taking the baseline.
for (let i = 0; i < 5; i++) await request(port, { path: '/warm' });
const baseline = rssOf(remora.pid);
t.comment(`proxy baseline RSS ${(baseline / MB).toFixed(1)} MB`);

function upload(framing: 'length' | 'chunked'): Promise<{ status: number; result: { bytes: number; mismatchAt: number; te: string | null; cl: string | null } }> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/octet-stream' };
    if (framing === 'length') headers['content-length'] = TOTAL;
    else headers['transfer-encoding'] = 'chunked';
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/upload', headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode!, result: JSON.parse(text) });
        } catch {
          reject(new Error(`expected a JSON result from the upstream, got ${res.statusCode}: ${text}`));
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    pipeline(Readable.from(patternChunks(TOTAL)), req).catch(reject);
  });
}

function download(framing: 'length' | 'chunked'): Promise<{ status: number; headers: http.IncomingHttpHeaders; check: PatternCheck; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/download?framing=${framing}`, agent: false }, (res) => {
      const check = new PatternCheck();
      res.pause(); // slow reader at first
      setTimeout(() => {
        res.on('data', (c: Buffer) => check.feed(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, check, complete: res.complete }));
        res.resume();
      }, SLOW_START_MS);
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

for (const framing of ['length', 'chunked'] as const) {
  t.test(`200 MB upload (${framing === 'length' ? 'Content-Length' : 'Transfer-Encoding: chunked'}) with bounded RSS`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
    await sleep(200);
    const rss = sampleRss(remora.pid);
    const { status, result } = await upload(framing);
    const max = rss.stop();
    t.comment(`proxy max RSS ${(max / MB).toFixed(1)} MB`);
    t.equal(status, 200, 'expected 200 from the upstream');
    t.equal(result.bytes, TOTAL, `expected the upstream to receive all ${TOTAL} bytes`);
    t.equal(result.mismatchAt, -1, 'expected every byte to match the pattern (first mismatch offset shown)');
    if (framing === 'length') t.equal(result.cl, String(TOTAL), 'expected the upstream request framed by Content-Length');
    else t.equal(result.te, 'chunked', 'expected the upstream request framed chunked');
    t.ok(
      max < baseline + RSS_ALLOWANCE,
      `expected proxy RSS below ${((baseline + RSS_ALLOWANCE) / MB).toFixed(0)} MB (baseline ${(baseline / MB).toFixed(0)} MB + ${RSS_ALLOWANCE / MB} MB); measured max ${(max / MB).toFixed(1)} MB`,
    );
  });
}

for (const framing of ['length', 'chunked'] as const) {
  t.test(`200 MB download (${framing === 'length' ? 'Content-Length' : 'chunked, no length'}), slow client, bounded RSS`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
    await sleep(200);
    const rss = sampleRss(remora.pid);
    const { status, headers, check, complete } = await download(framing);
    const max = rss.stop();
    t.comment(`proxy max RSS ${(max / MB).toFixed(1)} MB`);
    t.equal(status, 200, 'expected 200');
    if (framing === 'length') t.equal(headers['content-length'], String(TOTAL), 'expected the Content-Length passed on');
    else t.equal(headers['transfer-encoding'], 'chunked', 'expected a chunked response when the upstream sent no length');
    t.ok(complete, 'expected a complete response message');
    t.equal(check.bytes, TOTAL, `expected all ${TOTAL} bytes`);
    t.equal(check.mismatchAt, -1, 'expected every byte to match the pattern (first mismatch offset shown)');
    t.ok(
      max < baseline + RSS_ALLOWANCE,
      `expected proxy RSS below ${((baseline + RSS_ALLOWANCE) / MB).toFixed(0)} MB (baseline ${(baseline / MB).toFixed(0)} MB + ${RSS_ALLOWANCE / MB} MB); measured max ${(max / MB).toFixed(1)} MB`,
    );
  });
}
