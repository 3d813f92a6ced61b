// FrameBoundary (workers/websocket-framing.ts) on frames made by a real WebSocket
// implementation (`ws`'s Sender, masked and unmasked, every length form: 7-bit, 16-bit
// and 64-bit), fed whole, byte by byte and in random pieces; and the close frames Remora
// writes, read back by `ws`'s Receiver.

import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';
import t from 'tap';
import { closeFrame, FrameBoundary, GOING_AWAY } from '../../workers/websocket-framing.js';

// ws's frame writer and reader (exported by the package, not described by @types/ws).
interface FrameOptions { fin: boolean; mask: boolean; opcode: number; readOnly: boolean; rsv1: boolean }
const { Receiver, Sender } = createRequire(import.meta.url)('ws') as {
  Receiver: new (options: { isServer: boolean }) => Writable;
  Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] };
};

/** The bytes `ws` writes for `payload` (a binary frame). */
function frameOf(payload: Buffer, mask: boolean, fin = true): Buffer {
  const list = Sender.frame(payload, { fin, mask, opcode: 2, readOnly: false, rsv1: false });
  return Buffer.concat(list);
}

const sizes = [0, 1, 125, 126, 127, 65535, 65536, 200_000];

t.test('a boundary after each whole frame, never inside one', async (t) => {
  for (const mask of [false, true]) {
    for (const size of sizes) {
      const frame = frameOf(randomBytes(size), mask);
      const b = new FrameBoundary();
      b.feed(frame);
      t.ok(b.atBoundary, `${mask ? 'masked' : 'unmasked'} ${size} B frame fed whole: at a boundary`);
      const c = new FrameBoundary();
      let inside = 0;
      const step = size > 1000 ? 997 : 1;
      for (let i = 0; i < frame.length; i += step) {
        c.feed(frame.subarray(i, Math.min(frame.length, i + step)));
        if (i + step < frame.length && c.atBoundary) inside++;
      }
      t.equal(inside, 0, `${mask ? 'masked' : 'unmasked'} ${size} B frame in pieces of ${step}: never at a boundary before its end`);
      t.ok(c.atBoundary, 'at a boundary after its last byte');
    }
  }
});

t.test('a stream of frames in random pieces: boundaries exactly between frames', async (t) => {
  const frames = Array.from({ length: 200 }, (_, i) => frameOf(randomBytes([3, 130, 70_000][i % 3]), i % 2 === 0, i % 5 !== 0));
  const stream = Buffer.concat(frames);
  const ends = new Set<number>();
  let at = 0;
  for (const f of frames) ends.add((at += f.length));
  const b = new FrameBoundary();
  let offset = 0;
  const wrong: number[] = [];
  while (offset < stream.length) {
    const n = 1 + Math.floor(Math.random() * 3000);
    b.feed(stream.subarray(offset, Math.min(stream.length, offset + n)));
    offset = Math.min(stream.length, offset + n);
    if (b.atBoundary !== ends.has(offset)) wrong.push(offset);
  }
  t.same(wrong, [], 'atBoundary is true exactly at the end of a frame');
});

t.test('the close frames Remora writes are read by ws as 1001', async (t) => {
  for (const masked of [false, true]) {
    const code = await new Promise<number>((resolve, reject) => {
      // A server reads masked frames (isServer: true), a client unmasked ones.
      const r = new Receiver({ isServer: masked });
      r.on('conclude', (c: number) => resolve(c));
      r.on('error', reject);
      r.write(closeFrame(GOING_AWAY, masked));
    });
    t.equal(code, 1001, `${masked ? 'masked (to an upstream)' : 'unmasked (to a client)'} close frame: code 1001`);
  }
});
