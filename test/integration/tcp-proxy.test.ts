// TCP listeners (`tcp_proxy`) in a real Remora process with two workers: bytes both ways,
// 16 MB each way through a slow reader (backpressure, checksums), half-close both ways,
// redis-benchmark against redis-server and pgbench against PostgreSQL through Remora, a
// refused upstream (UF) and max_connect_attempts, circuit_breakers.max_connections (UO),
// the idle timeout and the maximum duration, the access log line, the PROXY protocol
// received (proxy_protocol: true) and sent (send_proxy_protocol v1 and v2), weighted
// clusters, a reload under an open connection and SIGTERM with one open.
//
// An upstream that never accepts is a listening socket with a backlog of 1 in a process
// whose event loop is blocked, its accept queue filled first: further connects hang until
// Remora's connect_timeout_ms.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { admin, startRemora, waitUntil } from '../helpers/remora.js';
import {
  closeOf, exchange, openSocket, postgresBin, readUntil, runProgram, skipUnless, startEcho, startGreeter, startPostgres, startRecorder, startRedis,
  stat, which,
} from '../helpers/tcp-peers.js';
import { deadPort } from '../helpers/dead-port.js';

const dir = mkdtempSync(join(tmpdir(), 'remora-tcp-proxy-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const accessLog = join(dir, 'access.log');

const echo = await startEcho();
const greeter = await startGreeter('hello from upstream\n');
const recPlain = await startRecorder('plain');
const recV1 = await startRecorder('v1');
const recV2 = await startRecorder('v2');
const w1 = await startRecorder('w1');
const w2 = await startRecorder('w2');
const downPort = await deadPort(); // nothing listens there: connection refused

/** A port that is listened on and never accepts: backlog 1, the event loop blocked. */
const stuck = spawn(process.execPath, ['-e', `
  const s = require('node:net').createServer();
  s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => process.stdout.write(s.address().port + '\\n', () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)));
`], { stdio: ['ignore', 'pipe', 'inherit'] });
t.teardown(() => { stuck.kill('SIGKILL'); });
const stuckPort = await new Promise<number>((resolve) => stuck.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
// Fill its accept queue: these connect (the kernel completes them) and are never accepted.
const fillers = await Promise.all([0, 1].map(() => new Promise<net.Socket>((resolve) => {
  const c = net.connect(stuckPort, '127.0.0.1', () => resolve(c));
})));
t.teardown(() => { for (const c of fillers) c.destroy(); });
for (const p of [echo, greeter, recPlain, recV1, recV2, w1, w2]) t.teardown(() => p.close());

const ep = (port: number) => ({ address: '127.0.0.1', port });
const listener = (name: string, tcp: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  name, address: '127.0.0.1', port: 0, access_log: { path: accessLog }, tcp_proxy: tcp, ...extra,
});

const config = {
  workers: 2,
  admin: { address: '127.0.0.1', port: 0 },
  drain: { delay_ms: 0, timeout_ms: 2000 },
  listeners: [
    listener('echo', { cluster: 'echo' }),
    listener('first', { cluster: 'greeter' }),
    listener('dead', { cluster: 'dead' }),
    listener('stuck', { cluster: 'stuck' }),
    listener('retry', { cluster: 'halfdead', max_connect_attempts: 2 }),
    listener('one', { cluster: 'one' }),
    listener('idle', { cluster: 'echo', idle_timeout_ms: 300 }),
    listener('short', { cluster: 'echo', max_downstream_connection_duration_ms: 400 }),
    listener('ppin', { cluster: 'plain' }, { proxy_protocol: true, request_headers_timeout_ms: 1000 }),
    listener('ppchain', { cluster: 'v1' }, { proxy_protocol: true, request_headers_timeout_ms: 1000 }),
    listener('pp1', { cluster: 'v1' }),
    listener('pp2', { cluster: 'v2' }),
    listener('weighted', { weighted_clusters: [{ cluster: 'w1', weight: 1 }, { cluster: 'w2', weight: 1 }] }),
  ],
  clusters: [
    { name: 'echo', endpoints: [ep(echo.port)] },
    { name: 'greeter', endpoints: [ep(greeter.port)] },
    { name: 'dead', connect_timeout_ms: 500, endpoints: [ep(downPort)] },
    { name: 'stuck', connect_timeout_ms: 300, endpoints: [ep(stuckPort)] },
    { name: 'halfdead', connect_timeout_ms: 500, endpoints: [ep(downPort), ep(echo.port)] },
    { name: 'one', circuit_breakers: { max_connections: 1 }, endpoints: [ep(echo.port)] },
    { name: 'plain', endpoints: [ep(recPlain.port)] },
    { name: 'v1', send_proxy_protocol: 'v1', endpoints: [ep(recV1.port)] },
    { name: 'v2', send_proxy_protocol: 'v2', endpoints: [ep(recV2.port)] },
    { name: 'w1', endpoints: [ep(w1.port)] },
    { name: 'w2', endpoints: [ep(w2.port)] },
  ],
};
const remora = await startRemora(config);
t.teardown(() => remora.stop());
const port = remora.ports;

interface TcpLogLine {
  kind: string; client: string; filter_chain: string; server_name: string | null; cluster: string; upstream: string;
  attempts: number; flags: string; bytes_in: number; bytes_out: number; duration_us: number; termination: string; listener: string; worker: number;
}

/** The access log's TCP lines of `listenerName`, in order. */
function logLines(listenerName: string): TcpLogLine[] {
  let text = '';
  try {
    text = readFileSync(accessLog, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as TcpLogLine).filter((l) => l.kind === 'tcp' && l.listener === listenerName);
}

/** Waits until `listenerName` has logged `n` lines; returns them. */
async function waitLines(listenerName: string, n: number, ms = 5000): Promise<TcpLogLine[]> {
  await waitUntil(`${n} access log lines of listener ${listenerName} (have ${logLines(listenerName).length})`, async () => logLines(listenerName).length >= n, ms);
  return logLines(listenerName);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

t.test('echo: bytes both ways, then the upstream\'s reply after the client\'s FIN', async (t) => {
  const r = await exchange(port.echo, 'hello');
  t.equal(r.data.toString(), 'helloafter FIN: 5 bytes', `expected the echo and the reply sent after the client's FIN; got ${JSON.stringify(r.data.toString())}`);
  t.ok(r.ended, 'the upstream\'s FIN reaches the client (a clean end, not a reset)');
  t.equal(r.error, null, `no socket error (got ${r.error})`);
  const [line] = await waitLines('echo', 1);
  t.match(line, {
    kind: 'tcp', client: '127.0.0.1', filter_chain: '-', server_name: null, cluster: 'echo', upstream: `127.0.0.1:${echo.port}`,
    attempts: 1, flags: '-', bytes_in: 5, bytes_out: 5 + 'after FIN: 5 bytes'.length, termination: 'downstream',
  }, `access log line: ${JSON.stringify(line)}`);
  t.ok(line.duration_us > 0, `duration_us is positive (${line.duration_us})`);
  t.match(line.worker, Number, 'the worker is named');
});

t.test('16 MB each way through a client that stops reading for a while (backpressure)', async (t) => {
  const payload = randomBytes(16 * 1024 * 1024);
  const before = { rx: await stat(remora.adminPort, 'listener.echo.downstream_cx_rx_bytes_total'), tx: await stat(remora.adminPort, 'cluster.echo.upstream_cx_tx_bytes_total') };
  const s = await openSocket(port.echo);
  s.pause();
  s.write(payload);
  s.end();
  // Nothing is read for 700 ms: the echo coming back fills the buffers on its way (Remora
  // pauses the upstream side while the client's side cannot take more), then flows again.
  await new Promise((r) => setTimeout(r, 700));
  const trailer = `after FIN: ${payload.length} bytes`;
  const got = await readUntil(s, (b) => b.length >= payload.length + trailer.length, 60_000);
  const end = await closeOf(s);
  t.equal(got.length, payload.length + trailer.length, `expected ${payload.length} echoed bytes and the trailer, got ${got.length}`);
  t.equal(sha(got.subarray(0, payload.length)), sha(payload), 'the 16 MB came back unchanged (SHA-256 equal)');
  t.equal(got.subarray(payload.length).toString(), trailer, 'the upstream counted every byte sent');
  t.ok(end.ended, 'a clean FIN at the end');
  await waitLines('echo', 2);
  const line = logLines('echo')[1];
  t.equal(line.bytes_in, payload.length, `access log bytes_in ${payload.length} (got ${line.bytes_in})`);
  t.equal(line.bytes_out, payload.length + trailer.length, `access log bytes_out (got ${line.bytes_out})`);
  const rx = (await stat(remora.adminPort, 'listener.echo.downstream_cx_rx_bytes_total')) - before.rx;
  const tx = (await stat(remora.adminPort, 'cluster.echo.upstream_cx_tx_bytes_total')) - before.tx;
  t.equal(rx, payload.length, `listener downstream_cx_rx_bytes_total grew by ${payload.length} (got ${rx})`);
  t.equal(tx, payload.length, `cluster upstream_cx_tx_bytes_total grew by ${payload.length} (got ${tx})`);
});

t.test('the upstream closes first: the client gets its bytes, then FIN', async (t) => {
  const r = await exchange(port.first, [], { end: false });
  t.equal(r.data.toString(), 'hello from upstream\n', `expected the greeting; got ${JSON.stringify(r.data.toString())}`);
  t.ok(r.ended, 'the client sees a FIN after the bytes');
  t.ok(r.closed, 'and the connection closes');
  const [line] = await waitLines('first', 1);
  t.equal(line.termination, 'upstream', `termination: the upstream ended first (got ${line.termination})`);
  t.equal(line.bytes_out, 'hello from upstream\n'.length, `bytes_out (got ${line.bytes_out})`);
});

t.test('a refused upstream: the client is closed, flag UF, upstream_cx_connect_fail', async (t) => {
  const r = await exchange(port.dead, 'anyone there?', { end: false });
  t.ok(r.closed, 'the client\'s connection is closed');
  t.equal(r.data.length, 0, `nothing is sent back (got ${JSON.stringify(r.data.toString())})`);
  const [line] = await waitLines('dead', 1);
  t.match(line, { flags: 'UF', termination: 'refused', cluster: 'dead', upstream: `127.0.0.1:${downPort}`, attempts: 1, bytes_in: 0 }, `access log line: ${JSON.stringify(line)}`);
  t.equal(await stat(remora.adminPort, 'cluster.dead.upstream_cx_connect_fail'), 1, 'cluster.dead.upstream_cx_connect_fail = 1');
  t.equal(await stat(remora.adminPort, 'listener.dead.response_flag.UF'), 1, 'listener.dead.response_flag.UF = 1');
});

t.test('an upstream that never accepts: closed after connect_timeout_ms, flag UF', async (t) => {
  const started = Date.now();
  const r = await exchange(port.stuck, 'anyone there?', { end: false });
  const took = Date.now() - started;
  t.ok(r.closed, 'the client\'s connection is closed');
  t.ok(took >= 250 && took < 3000, `closed after about connect_timeout_ms (300 ms; took ${took} ms)`);
  t.equal(r.data.length, 0, `nothing is sent back (got ${JSON.stringify(r.data.toString())})`);
  const [line] = await waitLines('stuck', 1);
  t.match(line, { flags: 'UF', termination: 'refused', cluster: 'stuck', attempts: 1 }, `access log line: ${JSON.stringify(line)}`);
  t.equal(await stat(remora.adminPort, 'cluster.stuck.upstream_cx_connect_fail'), 1, 'cluster.stuck.upstream_cx_connect_fail = 1 (a timeout counts as a connect failure)');
});

t.test('max_connect_attempts: 2 with a dead and a live endpoint: every connection gets through', async (t) => {
  for (let i = 0; i < 6; i++) {
    const r = await exchange(port.retry, `try ${i}`);
    t.equal(r.data.toString(), `try ${i}after FIN: ${`try ${i}`.length} bytes`, `connection ${i} reaches the live endpoint (got ${JSON.stringify(r.data.toString())})`);
  }
  const lines = await waitLines('retry', 6);
  t.ok(lines.every((l) => l.flags === '-' && l.upstream === `127.0.0.1:${echo.port}`), `every line: no flag, upstream the live one (${JSON.stringify(lines.map((l) => [l.attempts, l.flags, l.upstream]))})`);
  const retried = lines.filter((l) => l.attempts === 2).length;
  t.ok(retried >= 1, `at least one connection tried the dead endpoint first (attempts 2 in ${retried} of 6)`);
  t.equal(await stat(remora.adminPort, 'cluster.halfdead.upstream_cx_connect_fail'), retried, `upstream_cx_connect_fail = connections retried (${retried})`);
});

t.test('circuit_breakers.max_connections: 1: a second client is closed, flag UO, upstream_cx_overflow', async (t) => {
  const a = await openSocket(port.one);
  a.write('first');
  await readUntil(a, (b) => b.toString() === 'first');
  const b = await exchange(port.one, 'second', { end: false });
  t.ok(b.closed, 'the second concurrent client is closed');
  t.equal(b.data.length, 0, `the second gets nothing (got ${JSON.stringify(b.data.toString())})`);
  const [line] = await waitLines('one', 1);
  t.match(line, { flags: 'UO', termination: 'refused', cluster: 'one' }, `access log line of the refused client: ${JSON.stringify(line)}`);
  t.equal(await stat(remora.adminPort, 'cluster.one.upstream_cx_overflow'), 1, 'cluster.one.upstream_cx_overflow = 1');
  t.equal(await stat(remora.adminPort, 'listener.one.response_flag.UO'), 1, 'listener.one.response_flag.UO = 1');
  a.write(' still works');
  await readUntil(a, (x) => x.toString() === ' still works');
  a.end();
  await closeOf(a);
  await waitLines('one', 2);
  const c = await exchange(port.one, 'third');
  t.equal(c.data.toString(), 'thirdafter FIN: 5 bytes', `once the first closed, a new client gets through (got ${JSON.stringify(c.data.toString())})`);
});

t.test('idle_timeout_ms: 300 closes a quiet connection; max_downstream_connection_duration_ms: 400 a busy one', async (t) => {
  const s = await openSocket(port.idle);
  s.write('ping');
  await readUntil(s, (b) => b.toString() === 'ping');
  const closed = await closeOf(s, 5000);
  t.ok(closed.afterMs >= 250 && closed.afterMs < 2500, `closed about 300 ms after the last byte (after ${closed.afterMs} ms)`);
  const [line] = await waitLines('idle', 1);
  t.equal(line.termination, 'idle_timeout', `termination idle_timeout (got ${line.termination})`);
  t.equal(await stat(remora.adminPort, 'listener.idle.idle_timeout'), 1, 'listener.idle.idle_timeout = 1');

  const busy = await openSocket(port.short);
  const started = Date.now();
  const timer = setInterval(() => busy.write('x'), 50);
  const end = await closeOf(busy, 5000).finally(() => clearInterval(timer));
  const after = Date.now() - started;
  t.ok(after >= 350 && after < 2500, `a connection busy every 50 ms is still closed at 400 ms (after ${after} ms; ended ${end.ended})`);
  const [short] = await waitLines('short', 1);
  t.equal(short.termination, 'max_duration', `termination max_duration (got ${short.termination})`);
});

t.test('tcp.downstream_cx_active follows open connections', async (t) => {
  const name = 'listener.echo.tcp.downstream_cx_active';
  const base = await stat(remora.adminPort, name);
  const socks = await Promise.all([0, 1, 2].map(() => openSocket(port.echo)));
  for (const s of socks) {
    s.write('x');
    await readUntil(s, (b) => b.length === 1);
  }
  t.equal(await stat(remora.adminPort, name) - base, 3, `${name} is 3 higher with three open`);
  for (const s of socks) s.end();
  await Promise.all(socks.map((s) => closeOf(s)));
  await waitUntil(`${name} back to ${base}`, async () => (await stat(remora.adminPort, name)) === base);
  t.pass(`${name} back to ${base} once they closed`);
});

t.test('proxy_protocol: true on a TCP listener: the header is consumed, its source logged', async (t) => {
  const r = await exchange(port.ppin, 'PROXY TCP4 203.0.113.7 198.51.100.1 51000 80\r\nhello', { wait: (b) => b.toString() === 'plain\nhello' });
  t.equal(r.data.toString(), 'plain\nhello', `the upstream got the bytes after the header (got ${JSON.stringify(r.data.toString())})`);
  t.equal(recPlain.seen.at(-1)?.toString('latin1'), 'hello', `the upstream did not see the PROXY header (saw ${JSON.stringify(recPlain.seen.at(-1)?.toString('latin1'))})`);
  const [line] = await waitLines('ppin', 1);
  t.equal(line.client, '203.0.113.7', `the access log names the header's source (got ${line.client})`);
  const accepted = recPlain.accepted();
  const none = await exchange(port.ppin, 'hello without a header\r\n', { end: false, ms: 3000 });
  t.ok(none.closed, 'a connection without a header is closed');
  t.equal(none.data.length, 0, 'and gets nothing');
  t.equal(recPlain.accepted(), accepted, 'no upstream connection was made for it');
});

/** The v2 header for 127.0.0.1:`src` → 127.0.0.1:`dst`. */
function v2Header(src: number, dst: number): Buffer {
  const b = Buffer.alloc(28);
  Buffer.from('0d0a0d0a000d0a515549540a', 'hex').copy(b, 0);
  b[12] = 0x21; // version 2, PROXY
  b[13] = 0x11; // TCP over IPv4
  b.writeUInt16BE(12, 14);
  Buffer.from([127, 0, 0, 1, 127, 0, 0, 1]).copy(b, 16);
  b.writeUInt16BE(src, 24);
  b.writeUInt16BE(dst, 26);
  return b;
}

t.test('send_proxy_protocol v1 and v2: the upstream\'s first bytes name the client', async (t) => {
  for (const [version, listenerPort, rec] of [['v1', port.pp1, recV1], ['v2', port.pp2, recV2]] as const) {
    const s = await openSocket(listenerPort);
    const clientPort = s.localPort!;
    s.write('payload');
    await readUntil(s, (b) => b.toString().endsWith('payload'));
    s.end();
    await closeOf(s);
    const seen = rec.seen.at(-1) ?? Buffer.alloc(0);
    const header = version === 'v1' ? Buffer.from(`PROXY TCP4 127.0.0.1 127.0.0.1 ${clientPort} ${listenerPort}\r\n`) : v2Header(clientPort, listenerPort);
    t.equal(seen.toString('hex'), Buffer.concat([header, Buffer.from('payload')]).toString('hex'),
      `${version}: the upstream sees the header for 127.0.0.1:${clientPort} → 127.0.0.1:${listenerPort}, then the payload (saw ${JSON.stringify(seen.toString('latin1'))})`);
  }
});

t.test('proxy_protocol in and send_proxy_protocol out: the header sent names the header received', async (t) => {
  const r = await exchange(port.ppchain, 'PROXY TCP4 203.0.113.7 198.51.100.1 51000 80\r\nhi', { wait: (b) => b.toString().endsWith('hi') });
  t.match(r.data.toString(), /^v1\n[^]*hi$/, `the bytes went through (got ${JSON.stringify(r.data.toString())})`);
  const sent = (recV1.seen.at(-1) ?? Buffer.alloc(0)).toString('latin1');
  t.match(sent, /^PROXY TCP4 203\.0\.113\.7 /, `the source address is the one the client's header named (sent ${JSON.stringify(sent)})`);
});

t.test('proxy_protocol in and out: the source port (and destination) of the received header are passed on',
  async (t) => {
    await exchange(port.ppchain, 'PROXY TCP4 203.0.113.7 198.51.100.1 51000 80\r\nhi', { wait: (b) => b.toString().endsWith('hi') });
    const sent = (recV1.seen.at(-1) ?? Buffer.alloc(0)).toString('latin1');
    t.match(sent, /^PROXY TCP4 203\.0\.113\.7 198\.51\.100\.1 51000 80\r\nhi$/, `Envoy passes the received addresses on (sent ${JSON.stringify(sent)})`);
    await exchange(port.ppchain, 'PROXY TCP6 2001:db8::7 2001:db8::1 51000 80\r\nhi', { wait: (b) => b.toString().endsWith('hi') });
    const six = (recV1.seen.at(-1) ?? Buffer.alloc(0)).toString('latin1');
    t.match(six, /^PROXY TCP6 2001:db8::7 /, `an IPv6 client behind the balancer is named, not UNKNOWN (sent ${JSON.stringify(six)})`);
  });

t.test('weighted_clusters: 200 connections over two clusters, both get some', async (t) => {
  const counts = { w1: 0, w2: 0, other: 0 };
  for (let batch = 0; batch < 10; batch++) {
    const replies = await Promise.all(Array.from({ length: 20 }, () => exchange(port.weighted, [], { end: false, wait: (b) => b.includes(0x0a) })));
    for (const r of replies) {
      const name = r.data.toString().trim();
      if (name === 'w1' || name === 'w2') counts[name]++;
      else counts.other++;
    }
  }
  t.equal(counts.other, 0, `every connection reached one of them (${JSON.stringify(counts)})`);
  t.ok(counts.w1 >= 50 && counts.w2 >= 50, `weights 1:1 → both well used (${JSON.stringify(counts)}; each < 50 has odds below 1e-12)`);
  t.equal(w1.accepted() + w2.accepted(), 200, `the upstreams accepted 200 connections (${w1.accepted()} + ${w2.accepted()})`);
});

t.test('a reload keeps open TCP connections; new ones follow the new config', async (t) => {
  const open = await openSocket(port.echo);
  open.write('before ');
  await readUntil(open, (b) => b.toString() === 'before ');
  const version = async (): Promise<number> => (JSON.parse((await admin(remora.adminPort, '/server_info')).text) as { config_version: number }).config_version;
  const v = await version();
  const next = JSON.parse(readFileSync(remora.configFile, 'utf8')) as typeof config;
  next.listeners = next.listeners.map((l) => (l.name === 'echo' ? { ...l, tcp_proxy: { cluster: 'greeter' } } : l));
  writeFileSync(remora.configFile, JSON.stringify(next));
  process.kill(remora.pid, 'SIGHUP');
  await waitUntil(`config version ${v + 1}`, async () => (await version()) === v + 1, 10_000);
  const fresh = await exchange(port.echo, [], { end: false });
  t.equal(fresh.data.toString(), 'hello from upstream\n', `a new connection goes to the new cluster (greeter; got ${JSON.stringify(fresh.data.toString())})`);
  open.write('and after');
  const got = await readUntil(open, (b) => b.toString() === 'and after', 5000).catch((err: Error) => err);
  t.equal(got instanceof Error ? got.message : got.toString(), 'and after', 'the connection opened before the reload still echoes');
  open.end();
  const tail = await readUntil(open, (b) => b.toString().endsWith('bytes'), 5000).catch((err: Error) => err);
  t.equal(tail instanceof Error ? tail.message : tail.toString(), 'after FIN: 16 bytes', 'and half-closes as before');
  await closeOf(open);
});

t.test('SIGTERM with an open TCP connection: exits within the drain timeout', async (t: Test) => {
  const s = await openSocket(port.weighted);
  await readUntil(s, (b) => b.includes(0x0a));
  const closed = closeOf(s, 10_000);
  const started = Date.now();
  const exit = await remora.stop(15_000);
  const took = Date.now() - started;
  t.equal(exit.code, 0, `exit code 0 (got ${exit.code}, signal ${exit.signal})`);
  t.ok(took < 2000 + 3000, `exited ${took} ms after SIGTERM (drain timeout 2000 ms)`);
  const c = await closed;
  t.ok(c.afterMs <= took + 500, `the open connection was closed by then (${c.afterMs} ms)`);
});

// ---------------------------------------------------------------------------
// Real TCP servers and their benchmarks through Remora, each with its own Remora.

async function remoraFor(t: Test, upstreamPort: number) {
  const r = await startRemora({
    workers: 2,
    admin: { address: '127.0.0.1', port: 0 },
    listeners: [{ name: 'tcp', address: '127.0.0.1', port: 0, tcp_proxy: { cluster: 'db' } }],
    clusters: [{ name: 'db', endpoints: [ep(upstreamPort)] }],
  });
  t.teardown(() => r.stop());
  return r;
}

const redisMissing = ['redis-server', 'redis-benchmark', 'redis-cli'].filter((c) => which(c) === null);
t.test('redis-benchmark through Remora against redis-server', { skip: skipUnless(redisMissing, 'redis-server redis-tools'), timeout: 120_000 }, async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const r = await remoraFor(t, redis.port);
  const bench = await runProgram('redis-benchmark', ['-h', '127.0.0.1', '-p', String(r.ports.tcp), '-t', 'set,get,lpush', '-n', '20000', '-c', '20', '-q'], { ms: 90_000 });
  t.equal(bench.code, 0, `redis-benchmark exits 0 (got ${bench.code}; output ${JSON.stringify(bench.out.slice(-400))})`);
  for (const cmd of ['SET', 'GET', 'LPUSH']) t.match(bench.out, new RegExp(`${cmd}: [\\d.]+ requests per second`), `${cmd} completed`);
  t.notMatch(bench.out, /error|ERR|Connection reset|refused/i, `no errors in redis-benchmark's output (${JSON.stringify(bench.out.slice(-400))})`);
  const cli = (p: number, ...args: string[]) => runProgram('redis-cli', ['-h', '127.0.0.1', '-p', String(p), ...args], { ms: 10_000 });
  t.equal((await cli(redis.port, 'LLEN', 'mylist')).out.trim(), '20000', 'directly: LLEN mylist = 20000 (every LPUSH through Remora arrived once)');
  t.equal((await cli(r.ports.tcp, 'SET', 'remora:key', 'through-remora')).out.trim(), 'OK', 'SET through Remora');
  t.equal((await cli(redis.port, 'GET', 'remora:key')).out.trim(), 'through-remora', 'readable directly from redis-server');
});

const pgMissing = [['initdb', postgresBin('initdb')], ['postgres', postgresBin('postgres')], ['pgbench', which('pgbench') ?? postgresBin('pgbench')]]
  .filter(([, path]) => path === null).map(([name]) => name as string);
t.test('pgbench through Remora against PostgreSQL', { skip: skipUnless(pgMissing, 'postgresql'), timeout: 180_000 }, async (t) => {
  const pg = await startPostgres();
  t.teardown(() => pg.stop());
  const r = await remoraFor(t, pg.port);
  const pgbench = which('pgbench') ?? postgresBin('pgbench')!;
  const common = ['-h', '127.0.0.1', '-p', String(r.ports.tcp), '-U', 'postgres'];
  const init = await runProgram(pgbench, ['-i', '-q', ...common, 'postgres'], { ms: 120_000 });
  t.equal(init.code, 0, `pgbench -i through Remora exits 0 (got ${init.code}; ${JSON.stringify(init.out.slice(-400))})`);
  const run = await runProgram(pgbench, ['-c', '4', '-t', '200', ...common, 'postgres'], { ms: 120_000 });
  t.equal(run.code, 0, `pgbench -c 4 -t 200 exits 0 (got ${run.code}; ${JSON.stringify(run.out.slice(-600))})`);
  t.match(run.out, /number of transactions actually processed: 800\/800/, `800 of 800 transactions (${JSON.stringify(run.out.slice(-600))})`);
  const failed = /number of failed transactions: (\d+)/.exec(run.out);
  if (failed !== null) t.equal(failed[1], '0', 'pgbench: 0 failed transactions');
  const psql = which('psql') ?? postgresBin('psql');
  if (psql !== null) {
    const direct = await runProgram(psql, ['-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', '-tAc', 'select count(*) from pgbench_history', 'postgres'], { ms: 20_000 });
    t.equal(direct.out.trim(), '800', `directly: 800 rows in pgbench_history (got ${JSON.stringify(direct.out.trim())})`);
  }
});
