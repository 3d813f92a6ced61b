// Unit tests for the upstream HTTP/1.1 response parser (http1-parser.ts): framing by
// Content-Length, chunked (extensions, trailers) and close; inputs split at every byte
// boundary; bodiless responses; interim responses; the smuggling-relevant errors;
// keep-alive bookkeeping.

import t from 'tap';
import { ProtocolError, ResponseParser, type ResponseHandler } from '../../src/upstream/http1-parser.js';

interface Recorded {
  heads: { status: number; reason: string; headers: string[]; bodyLength: number }[];
  body: string;
  completes: number;
}

/** A handler that records everything; body slices are copied (they are views). */
function recorder(): ResponseHandler & { rec: Recorded } {
  const rec: Recorded = { heads: [], body: '', completes: 0 };
  return {
    rec,
    onHead(status, reason, headers, bodyLength) {
      rec.heads.push({ status, reason, headers: [...headers], bodyLength });
    },
    onBody(chunk) {
      rec.body += Buffer.from(chunk).toString('latin1');
    },
    onComplete() {
      rec.completes++;
    },
  };
}

/** Feeds `pieces` to a fresh parser; returns the parser and what it reported. */
function parse(pieces: readonly (string | Buffer)[], isHead = false): { parser: ResponseParser; rec: Recorded } {
  const parser = new ResponseParser();
  const h = recorder();
  parser.start(h, isHead);
  for (const p of pieces) parser.execute(typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
  return { parser, rec: h.rec };
}

const bytes = (s: string): string[] => [...s];

/** Every way of cutting `s` in two (plus the whole and the byte-by-byte feed). */
function splits(s: string): string[][] {
  const out: string[][] = [[s], bytes(s)];
  for (let i = 1; i < s.length; i++) out.push([s.slice(0, i), s.slice(i)]);
  return out;
}

/** Cuts `s` into three at every pair of boundaries (covers states spanning 2 chunks). */
function splits3(s: string): string[][] {
  const out: string[][] = [];
  for (let i = 1; i < s.length - 1; i++) {
    for (let j = i + 1; j < s.length; j++) out.push([s.slice(0, i), s.slice(i, j), s.slice(j)]);
  }
  return out;
}

t.test('Content-Length body split into 1-byte chunks', async (t) => {
  const msg = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world';
  const { parser, rec } = parse(bytes(msg));
  t.equal(rec.heads.length, 1, 'one head');
  t.equal(rec.heads[0].status, 200, 'status 200');
  t.equal(rec.heads[0].reason, 'OK', 'reason phrase');
  t.equal(rec.heads[0].bodyLength, 11, 'bodyLength is the Content-Length');
  t.same(rec.heads[0].headers, ['content-type', 'text/plain', 'content-length', '11'], 'headers flat, names lower-case');
  t.equal(rec.body, 'hello world', 'the whole body arrives');
  t.equal(rec.completes, 1, 'complete exactly once');
  t.ok(parser.done, 'parser is done');
  t.ok(parser.keepAlive, 'HTTP/1.1 defaults to keep-alive');
  t.equal(parser.bytesSeen, msg.length, 'bytesSeen counts every byte');
});

t.test('Content-Length split at every byte boundary', async (t) => {
  const msg = 'HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A: b\r\n\r\nabcde';
  let bad = 0;
  for (const pieces of [...splits(msg), ...splits3(msg)]) {
    const { parser, rec } = parse(pieces);
    if (rec.heads.length !== 1 || rec.heads[0].status !== 201 || rec.body !== 'abcde' || rec.completes !== 1 || !parser.done) {
      bad++;
      t.fail(`split ${JSON.stringify(pieces)} parsed wrongly: ${JSON.stringify(rec)}`);
    }
  }
  t.equal(bad, 0, 'every split gives one 201 head, body "abcde", one completion');
});

t.test('chunked with extensions and trailers, split at every byte boundary', async (t) => {
  const msgs = [
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '5;ext=1\r\nhello\r\n6 ; name="v"\r\n world\r\nA\r\n0123456789\r\n0;last=yes\r\nX-Trailer: t\r\nX-Other: o\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\na\r\n0123456789\r\n0\r\n\r\n',
  ];
  for (const msg of msgs) {
    let bad = 0;
    const all = [...splits(msg), ...splits3(msg)];
    for (const pieces of all) {
      const { parser, rec } = parse(pieces);
      const ok =
        rec.heads.length === 1 &&
        rec.heads[0].bodyLength === -1 &&
        rec.body === 'hello world0123456789' &&
        rec.completes === 1 &&
        parser.done;
      if (!ok) {
        bad++;
        if (bad <= 3) t.fail(`split ${JSON.stringify(pieces)} parsed wrongly: ${JSON.stringify(rec)}`);
      }
    }
    t.equal(bad, 0, `all ${all.length} splits decode "hello world0123456789" and complete once (${msg.includes('X-Trailer') ? 'with' : 'without'} trailers)`);
  }
});

t.test('head split across chunks, body in the same chunk as the end of the head', async (t) => {
  const { rec } = parse(['HTTP/1.1 200 OK\r\nConte', 'nt-Length: 3\r\n\r', '\nabc']);
  t.equal(rec.heads.length, 1, 'one head');
  t.equal(rec.heads[0].bodyLength, 3, 'Content-Length read across the split');
  t.equal(rec.body, 'abc', 'body right after a head split inside CRLFCRLF');
  t.equal(rec.completes, 1, 'complete once');
});

t.test('HEAD, 204 and 304 responses have no body', async (t) => {
  {
    const { parser, rec } = parse(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n'], true);
    t.equal(rec.heads[0].bodyLength, 0, 'HEAD: bodyLength 0 despite Content-Length: 10');
    t.equal(rec.completes, 1, 'HEAD: complete right after the head');
    t.ok(parser.done, 'HEAD: parser done');
    t.throws(() => parser.execute(Buffer.from('0123456789')), ProtocolError, 'HEAD: body bytes after the head are a protocol error');
  }
  {
    const { parser, rec } = parse(['HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n']);
    t.equal(rec.heads[0].status, 204, '204 status');
    t.equal(rec.heads[0].bodyLength, 0, '204: bodyLength 0');
    t.equal(rec.completes, 1, '204: complete');
    t.ok(parser.done && parser.keepAlive, '204: done, connection reusable');
  }
  {
    const { parser, rec } = parse(['HTTP/1.1 304 Not Modified\r\nContent-Length: 42\r\nETag: "x"\r\n\r\n']);
    t.equal(rec.heads[0].bodyLength, 0, '304: bodyLength 0 despite Content-Length: 42');
    t.equal(rec.completes, 1, '304: complete');
    t.ok(parser.done, '304: done');
  }
});

t.test('interim 1xx responses are skipped', async (t) => {
  const msg = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
  for (const pieces of [[msg], bytes(msg)]) {
    const { parser, rec } = parse(pieces);
    t.equal(rec.heads.length, 1, `only the final head is reported (${pieces.length} chunks)`);
    t.equal(rec.heads[0].status, 200, `final status is 200 (${pieces.length} chunks)`);
    t.equal(rec.body, 'ok', `body of the final response (${pieces.length} chunks)`);
    t.equal(parser.status, 200, 'parser.status is the final status');
  }
  t.throws(() => parse(['HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n']), ProtocolError, '101 is a protocol error');
});

t.test('framing errors are ProtocolErrors', async (t) => {
  const cases: [string, string[]][] = [
    ['conflicting Content-Length', ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello']],
    ['Content-Length list', ['HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello']],
    ['negative Content-Length', ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n']],
    ['Transfer-Encoding with Content-Length', ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n']],
    ['Content-Length with Transfer-Encoding', ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n']],
    ['bytes after a Content-Length body (same chunk)', ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokX']],
    ['bytes after a Content-Length body (next chunk)', ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 'HTTP/1.1 200 OK\r\n']],
    ['bytes after a chunked body', ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nX']],
    ['bytes after a 204', ['HTTP/1.1 204 No Content\r\n\r\nX']],
    ['invalid chunk size', ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n']],
    ['missing CRLF after chunk data', ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX']],
    ['invalid status line', ['HTTP/2 200 OK\r\n\r\n']],
    ['header line without colon', ['HTTP/1.1 200 OK\r\nbroken\r\n\r\n']],
    ['status code with a letter', ['HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n']],
    ['two-digit status code', ['HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n']],
    ['four-digit status code', ['HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n']],
    ['HTTP/1.2', ['HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n']],
    ['no space after the version', ['HTTP/1.1\t200 OK\r\nContent-Length: 0\r\n\r\n']],
    ['status code below 100', ['HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n']],
    ['a 70 KB head in one chunk (limit 64 KiB)', [`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70_000)}\r\nContent-Length: 0\r\n\r\n`]],
    ['a 70 KB head in pieces', ['HTTP/1.1 200 OK\r\nX-Big: ', 'a'.repeat(35_000), 'a'.repeat(35_000), '\r\nContent-Length: 0\r\n\r\n']],
  ];
  for (const [what, pieces] of cases) {
    t.throws(() => parse(pieces), ProtocolError, `${what} → ProtocolError`);
  }
  for (const line of ['HTTP/1.1 200 OK', 'HTTP/1.1 200 ', 'HTTP/1.1 200', 'HTTP/1.0 404 Not Found']) {
    const ok = parse([`${line}\r\nContent-Length: 0\r\n\r\n`]);
    t.equal(ok.rec.heads.length, 1, `status line ${JSON.stringify(line)} is accepted`);
  }
  const obs = parse([Buffer.from('HTTP/1.1 200 OK\r\nX-V: \xe9t\xe9 \xc3\xa9\r\nContent-Length: 0\r\n\r\n', 'latin1')]);
  t.equal(Buffer.from(obs.rec.heads[0].headers[1], 'latin1').toString('hex'), Buffer.from('\xe9t\xe9 \xc3\xa9', 'latin1').toString('hex'),
    'header value bytes (invalid UTF-8 included) come through one character per byte, never rewritten');
  const same = parse(['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok']);
  t.equal(same.rec.body, 'ok', 'a repeated identical Content-Length is accepted');
});

t.test('keep-alive bookkeeping', async (t) => {
  {
    const { parser } = parse(['HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n']);
    t.equal(parser.keepAliveTimeoutMs, 5000, 'Keep-Alive: timeout=5 → 5000 ms');
    t.ok(parser.keepAlive, 'keep-alive with a timeout hint stays reusable');
  }
  {
    const { parser } = parse(['HTTP/1.1 200 OK\r\nKeep-Alive: max=100, Timeout=7\r\nContent-Length: 0\r\n\r\n']);
    t.equal(parser.keepAliveTimeoutMs, 7000, 'the timeout parameter is found anywhere, case-insensitively');
  }
  {
    const { parser } = parse(['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']);
    t.equal(parser.keepAliveTimeoutMs, 0, 'no Keep-Alive header → hint 0');
  }
  {
    const { parser } = parse(['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok']);
    t.equal(parser.keepAlive, false, 'Connection: close → keepAlive false');
  }
  {
    const { parser } = parse(['HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n']);
    t.equal(parser.keepAlive, false, 'close anywhere in Connection wins');
  }
  {
    const { parser } = parse(['HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n']);
    t.equal(parser.keepAlive, false, 'HTTP/1.0 without keep-alive → keepAlive false');
  }
  {
    const { parser } = parse(['HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n']);
    t.equal(parser.keepAlive, true, 'HTTP/1.0 with Connection: keep-alive → keepAlive true');
  }
});

t.test('a body without framing runs until the connection closes', async (t) => {
  const { parser, rec } = parse(['HTTP/1.1 200 OK\r\n\r\nsome', ' data']);
  t.equal(rec.heads[0].bodyLength, -1, 'bodyLength -1 (delimited by close)');
  t.ok(parser.endsAtClose, 'parser waits for close');
  t.equal(parser.keepAlive, false, 'the connection cannot be reused');
  t.equal(rec.completes, 0, 'not complete before close');
  parser.finishAtClose();
  t.equal(rec.completes, 1, 'close completes the response');
  t.equal(rec.body, 'some data', 'all bytes are body');
  t.ok(parser.done, 'parser done after close');
});

t.test('start() resets the parser for the next response on the connection', async (t) => {
  const parser = new ResponseParser();
  const first = recorder();
  parser.start(first, false);
  parser.execute(Buffer.from('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=3\r\nContent-Length: 1\r\n\r\na'));
  const second = recorder();
  parser.start(second, false);
  parser.execute(Buffer.from('HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\n'));
  t.equal(first.rec.body, 'a', 'first body');
  t.equal(second.rec.heads[0].status, 404, 'second status');
  t.equal(second.rec.body, 'b', 'second body');
  t.equal(parser.keepAliveTimeoutMs, 0, 'the keep-alive hint is per response');
  t.equal(second.rec.completes, 1, 'second completes once');
});
