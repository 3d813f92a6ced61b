// The WebSocket load generator of bench/tunnels.ts, one process (the benchmark starts one
// or more, each with its share of the sockets, so that it is not measured inside the
// process that drives it). Plain `net` sockets and hand-made frames: each socket does
// the HTTP/1.1 upgrade, then sends binary messages of `size` bytes, masked as a client
// must (one pre-masked frame built once: no allocation per message), keeping `window`
// messages in flight (1 = closed loop: the next message leaves when the echo of the last
// one is back). Echoes are counted by bytes: the echo upstream (bench/peers/ws-echo.ts)
// sends exactly one unmasked frame of the same size back per message and nothing else;
// the first byte of each socket's first echo is checked.
//
//   node dist/bench/peers/ws-load.js '{"port":N,"connections":50,"size":64,"window":1,"startAt":<epoch ms>,"durationMs":5000}'
//
// Sockets connect and warm up until `startAt`, messages are counted for `durationMs`
// from then, and one JSON line goes to stdout: messages, measured seconds, this process's
// CPU over the window (% of one core), sockets upgraded, sockets that failed (the first
// few failures described).

import net from 'node:net';
import { randomBytes } from 'node:crypto';

interface Options {
  readonly port: number;
  readonly connections: number;
  readonly size: number;
  readonly window: number;
  readonly startAt: number;
  readonly durationMs: number;
}

export interface WsLoadResult {
  readonly messages: number;
  readonly seconds: number;
  /** This process's CPU time over the measured window, % of one core. */
  readonly cpuPct: number;
  readonly upgraded: number;
  /** Sockets that failed. */
  readonly errors: number;
  readonly errorSamples: readonly string[];
}

const o = JSON.parse(process.argv[2] ?? '{}') as Options;

/** A client frame: FIN + binary, masked with one random key, payload of `size` bytes. */
function clientFrame(size: number): Buffer {
  const header = size < 126 ? 2 : size < 65536 ? 4 : 10;
  const frame = Buffer.alloc(header + 4 + size);
  frame[0] = 0x82;
  if (size < 126) frame[1] = 0x80 | size;
  else if (size < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(size, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(size), 2);
  }
  const mask = randomBytes(4);
  mask.copy(frame, header);
  for (let i = 0; i < size; i++) frame[header + 4 + i] = (0x61 + (i % 26)) ^ mask[i & 3];
  return frame;
}

/** Bytes of the server's (unmasked) echo frame of a `size`-byte message. */
function echoLength(size: number): number {
  return (size < 126 ? 2 : size < 65536 ? 4 : 10) + size;
}

const FRAME = clientFrame(o.size);
const ECHO = echoLength(o.size);
const batches = new Map<number, Buffer>();
/** `n` copies of FRAME in one buffer (for a window above 1), built once per n. */
function framesOf(n: number): Buffer {
  let b = batches.get(n);
  if (b === undefined) {
    b = Buffer.concat(Array.from({ length: n }, () => FRAME));
    batches.set(n, b);
  }
  return b;
}
const HANDSHAKE =
  `GET / HTTP/1.1\r\nHost: 127.0.0.1:${o.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`;

type Phase = 'warmup' | 'measure' | 'done';
let phase: Phase = 'warmup';
let counted = 0;
let upgraded = 0;
/** Sockets that failed (each counted once, by its first failure). */
let errors = 0;
const errorSamples: string[] = [];
const sockets: net.Socket[] = [];

function open(): void {
  const socket = net.connect({ port: o.port, host: '127.0.0.1', noDelay: true });
  sockets.push(socket);
  let head = '';
  let upgradedHere = false;
  let checked = false;
  let pending = 0;
  let failed = false;
  const fail = (what: string): void => {
    if (failed) return;
    failed = true;
    errors++;
    if (errorSamples.length < 5) errorSamples.push(what);
  };
  socket.on('connect', () => socket.write(HANDSHAKE));
  const onFrames = (chunk: Buffer, from: number): void => {
    if (!checked && chunk.length > from) {
      checked = true;
      if (chunk[from] !== 0x82) {
        fail(`unexpected first frame byte 0x${chunk[from].toString(16)}`);
        socket.destroy();
        return;
      }
    }
    pending += chunk.length - from;
    if (pending < ECHO) return;
    const echoed = Math.floor(pending / ECHO);
    pending -= echoed * ECHO;
    if (phase === 'measure') counted += echoed;
    // As many messages leave as came back, in one write (echoed ≤ window).
    if (phase !== 'done') socket.write(echoed === 1 ? FRAME : framesOf(echoed));
  };
  socket.on('data', (chunk: Buffer) => {
    if (upgradedHere) {
      onFrames(chunk, 0);
      return;
    }
    head += chunk.toString('latin1');
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    const status = head.slice(0, head.indexOf('\r\n'));
    if (!/^HTTP\/1\.1 101 /.test(status)) {
      fail(`upgrade refused: ${status}`);
      socket.destroy();
      return;
    }
    upgradedHere = true;
    upgraded++;
    const rest = Buffer.byteLength(head, 'latin1') - (end + 4);
    socket.write(o.window === 1 ? FRAME : framesOf(o.window));
    if (rest > 0) onFrames(chunk, chunk.length - rest);
  });
  socket.on('error', (err) => fail(`socket: ${err.message}`));
  socket.on('close', () => {
    if (phase !== 'done') fail(upgradedHere ? 'closed during the run' : 'closed before the upgrade');
  });
}

for (let i = 0; i < o.connections; i++) open();

let cpu0 = process.cpuUsage();
let t0 = performance.now();
setTimeout(() => {
  phase = 'measure';
  cpu0 = process.cpuUsage();
  t0 = performance.now();
  setTimeout(() => {
    phase = 'done';
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const result: WsLoadResult = {
      messages: counted,
      seconds: Math.round(wall) / 1000,
      cpuPct: Math.round(((cpu.user + cpu.system) / 1000 / wall) * 1000) / 10,
      upgraded,
      errors,
      errorSamples,
    };
    for (const s of sockets) s.destroy();
    process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
  }, o.durationMs);
}, Math.max(0, o.startAt - Date.now()));
