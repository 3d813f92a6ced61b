// Unit tests for the upstream HTTP/1.1 response parser (http1-parser.ts): framing by
// Content-Length, chunked (extensions, trailers) and close; inputs split at every byte
// boundary; bodiless responses; interim responses; the smuggling-relevant errors;
// keep-alive bookkeeping; header names and values as read (case, trimming, obs-text),
// malformed header and status lines, control characters anywhere in the head.

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

/** The message of the ProtocolError that parsing `pieces` throws, or 'no error'. */
function errorOf(pieces: readonly (string | Buffer)[]): string {
  try {
    parse(pieces);
  } catch (err) {
    return err instanceof ProtocolError ? err.message : `not a ProtocolError: ${String(err)}`;
  }
  return 'no error';
}

/** The headers of a 204 whose head holds `lines` (CRLF-joined after the status line). */
function headersOf(...lines: string[]): string[] {
  const { rec } = parse([Buffer.from(['HTTP/1.1 204 No Content', ...lines].join('\r\n') + '\r\n\r\n', 'latin1')]);
  return rec.heads[0].headers;
}

const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

t.test('header names are lower-cased, values trimmed of SP and HTAB only at their ends', async (t) => {
  t.same(headersOf('Content-Type: text/plain', 'X-REQUEST-ID: Abc', 'x-MiXeD-cAsE: v', 'already-lower: w'),
    ['content-type', 'text/plain', 'x-request-id', 'Abc', 'x-mixed-case', 'v', 'already-lower', 'w'],
    'Title-Case, UPPER and mixed names come out lower-case, lower-case ones as they are; values keep their case');
  t.same(headersOf('X-A:  \t a  b\tc \t ', 'X-B:value', 'X-C:\tv'), ['x-a', 'a  b\tc', 'x-b', 'value', 'x-c', 'v'],
    'leading and trailing SP/HTAB are trimmed, inner SP/HTAB kept, no space after the colon is fine');
  t.same(headersOf('X-Empty:', 'X-Blank: \t  ', 'X-After: 1'), ['x-empty', '', 'x-blank', '', 'x-after', '1'],
    'an empty or all-whitespace value is the empty string');
  t.same(headersOf("!#$%&'*+-.^_`|~09AZaz: token"), ["!#$%&'*+-.^_`|~09azaz", 'token'], 'every token character is a name character');
  t.same(headersOf('X-Colons: a:b: c:'), ['x-colons', 'a:b: c:'], 'colons after the first belong to the value');
});

t.test('obs-text (0x80-0xFF) in values passes through as Latin-1; 0xA0 at the ends is trimmed as before', async (t) => {
  let high = '';
  for (let c = 0x80; c <= 0xff; c++) high += String.fromCharCode(c);
  const all = headersOf(`X-High: <${high}>`);
  t.equal(hex(all[1]), hex(`<${high}>`), 'every byte 0x80-0xFF comes through unchanged, one character per byte');
  t.same(headersOf('X-Nbsp: \xa0 v\xa0w \xa0\t\xa0'), ['x-nbsp', 'v\xa0w'],
    '0xA0 at either end is stripped with SP/HTAB (String.prototype.trim did so), an inner 0xA0 is kept');
  t.same(headersOf('X-Nel: \x85v\x85'), ['x-nel', '\x85v\x85'], '0x85 at the ends is kept (trim never stripped it)');
  t.same(headersOf('X-Utf8: caf\xc3\xa9 '), ['x-utf8', 'caf\xc3\xa9'], 'UTF-8 bytes stay as their Latin-1 characters');
});

t.test('malformed header lines', async (t) => {
  const head = (line: string): string[] => [`HTTP/1.1 200 OK\r\n${line}\r\nContent-Length: 0\r\n\r\n`];
  t.equal(errorOf(head('no colon here')), 'invalid header line', 'a line without a colon → invalid header line');
  t.equal(errorOf(head(': value')), 'invalid header line', 'a colon at position 0 (empty name) → invalid header line');
  t.equal(errorOf(head(':')), 'invalid header line', 'a lone colon → invalid header line');
  t.equal(errorOf(head('X-A : v')), 'invalid header name', 'a space before the colon → invalid header name');
  t.equal(errorOf(head(' X-A: v')), 'invalid header name', 'a leading space (obs-fold) → invalid header name');
  t.equal(errorOf(head('X(A): v')), 'invalid header name', 'a separator in the name → invalid header name');
  t.equal(errorOf(head('X\xc0A: v')), 'invalid header name', 'a byte over 0x7F in the name → invalid header name');
  t.equal(errorOf(head('X A b')), 'invalid header line', 'a bad name character and no colon → invalid header line');
  t.equal(errorOf(['HTTP/1.1 200 OK\r\nContent-Length: 0\r\nlast-line-without-colon\r\n\r\n']), 'invalid header line',
    'the last line of the head without a colon → invalid header line');
});

t.test('control characters anywhere in the head are rejected first', async (t) => {
  const controls: [string, string][] = [['bare LF', '\n'], ['bare CR', '\r'], ['NUL', '\x00'], ['DEL', '\x7f'], ['VT', '\x0b'], ['ESC', '\x1b']];
  for (const [what, c] of controls) {
    const inValue = [`HTTP/1.1 200 OK\r\nX-A: a${c}b\r\nContent-Length: 0\r\n\r\n`];
    t.equal(errorOf(inValue), 'control character in response head', `${what} in a value → control character in response head`);
    const inName = [`HTTP/1.1 200 OK\r\nX-${c}A: b\r\nContent-Length: 0\r\n\r\n`];
    t.equal(errorOf(inName), 'control character in response head', `${what} in a name → control character in response head`);
    const atValueEnd = [`HTTP/1.1 200 OK\r\nX-A: b${c}\r\nContent-Length: 0\r\n\r\n`];
    t.equal(errorOf(atValueEnd), 'control character in response head', `${what} at the end of a value → control character in response head`);
    const inReason = [`HTTP/1.1 200 O${c}K\r\nContent-Length: 0\r\n\r\n`];
    t.equal(errorOf(inReason), 'control character in response head', `${what} in the reason → control character in response head`);
  }
  t.equal(errorOf(['HTTP/1.1 200 OK\r\r\nContent-Length: 0\r\n\r\n']), 'control character in response head', 'CR CR LF → control character');
  t.equal(errorOf(['HTTP/1.1 200 OK\r\nbroken\r\nX-A: \x00\r\n\r\n']), 'control character in response head',
    'a control character after a bad header line wins over invalid header line');
  t.equal(errorOf(['HTTP/1.1 2x0 OK\r\nX-A: \x7f\r\n\r\n']), 'control character in response head',
    'a control character after a bad status line wins over invalid status code');
  t.equal(errorOf(['HTTP/1.1 200 OK\r\nContent-Length: x\r\nX-A: a\nb\r\n\r\n']), 'control character in response head',
    'a control character after a bad Content-Length wins over invalid content-length');
  t.same(headersOf('X-Tab: a\tb'), ['x-tab', 'a\tb'], 'HTAB inside a value is allowed');
});

t.test('many headers, in order', async (t) => {
  const lines: string[] = [];
  const want: string[] = [];
  for (let i = 0; i < 200; i++) {
    lines.push(`X-Header-${i}: value ${i}`);
    want.push(`x-header-${i}`, `value ${i}`);
  }
  t.same(headersOf(...lines), want, '200 headers come out in order, names lower-cased, values trimmed');
});

t.test('a head that starts inside a chunk, whole or split, parses the same', async (t) => {
  const msg = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Fine\r\nX-Title: \t v \r\nCONTENT-LENGTH: 2\r\nX-Last:w\r\n\r\nok';
  let bad = 0;
  for (const pieces of splits(msg)) {
    const { rec } = parse(pieces);
    const h = rec.heads[0];
    if (rec.heads.length !== 1 || h.reason !== 'Fine' || JSON.stringify(h.headers) !== '["x-title","v","content-length","2","x-last","w"]' || rec.body !== 'ok') {
      bad++;
      if (bad <= 3) t.fail(`split ${JSON.stringify(pieces)} parsed wrongly: ${JSON.stringify(rec)}`);
    }
  }
  t.equal(bad, 0, 'every split gives the same reason, headers and body for the head after the 100');
});

t.test('framing headers are recognised in any case', async (t) => {
  {
    const { rec } = parse(['HTTP/1.1 200 OK\r\nCONTENT-LENGTH: 3\r\nContent-length: 3\r\n\r\nabc']);
    t.equal(rec.heads[0].bodyLength, 3, 'equal Content-Length headers in different cases → bodyLength 3');
    t.equal(rec.body, 'abc', 'body read by the Content-Length');
  }
  t.equal(errorOf(['HTTP/1.1 200 OK\r\ncontent-length: 3\r\nCONTENT-LENGTH: 4\r\n\r\nabc']), 'invalid content-length',
    'unequal Content-Length headers → invalid content-length');
  t.equal(errorOf(['HTTP/1.1 200 OK\r\nContent-Length: 3 \t\r\n\r\nabc']), 'no error', 'Content-Length with trailing whitespace is accepted');
  t.equal(errorOf(['HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc']), 'invalid content-length', 'Content-Length with a sign → invalid content-length');
  t.equal(errorOf(['HTTP/1.1 200 OK\r\nTRANSFER-ENCODING: chunked\r\ncontent-length: 3\r\n\r\n']), 'both transfer-encoding and content-length',
    'Transfer-Encoding and Content-Length together → both transfer-encoding and content-length');
  {
    const { rec } = parse(['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n2\r\nok\r\n0\r\n\r\n']);
    t.equal(rec.heads[0].bodyLength, -1, 'Transfer-Encoding ending in CHUNKED → bodyLength -1');
    t.equal(rec.body, 'ok', 'the body is decoded as chunked');
    t.equal(rec.completes, 1, 'and completes at the last chunk');
  }
  {
    const { parser } = parse(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n2\r\nok']);
    t.ok(parser.endsAtClose, 'Transfer-Encoding not ending in chunked → body runs until close');
    t.equal(parser.keepAlive, false, 'and the connection is not reused');
  }
  {
    const { parser } = parse(['HTTP/1.1 200 OK\r\nKEEP-ALIVE: TIMEOUT=9\r\nContent-Length: 0\r\n\r\n']);
    t.equal(parser.keepAliveTimeoutMs, 9000, 'KEEP-ALIVE: TIMEOUT=9 → 9000 ms');
  }
  {
    const { parser } = parse(['HTTP/1.1 200 OK\r\nCONNECTION: CLOSE\r\nContent-Length: 0\r\n\r\n']);
    t.equal(parser.keepAlive, false, 'CONNECTION: CLOSE → keepAlive false');
  }
  {
    const { parser } = parse(['HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n']);
    t.equal(parser.keepAlive, true, 'HTTP/1.0 with Connection: Keep-Alive → keepAlive true');
  }
  {
    const { parser } = parse(['HTTP/1.1 200 OK\r\nConnection: upgrade\r\nContent-Length: 0\r\n\r\n']);
    t.equal(parser.keepAlive, true, 'HTTP/1.1 with a Connection naming neither close nor keep-alive stays keep-alive');
  }
  t.same(headersOf('Connectiox: close', 'Keep-Alivf: timeout=3'), ['connectiox', 'close', 'keep-alivf', 'timeout=3'],
    'names of the same length as framing headers are plain headers');
});

t.test('status line errors and reasons', async (t) => {
  const cases: [string, string][] = [
    ['HTTP/2 200 OK', 'invalid status line'],
    ['HTTP/1.2 200 OK', 'invalid status line'],
    ['http/1.1 200 OK', 'invalid status line'],
    ['HTTP/1.1\t200 OK', 'invalid status line'],
    ['HTTP/1.1 200', 'no error'],
    ['HTTP/1.1 20', 'invalid status line'],
    ['HTTP/1.1 2000 OK', 'invalid status line'],
    ['HTTP/1.1 200\tOK', 'invalid status line'],
    ['HTTP/1.1 2x0 OK', 'invalid status code'],
    ['HTTP/1.1 -20 OK', 'invalid status code'],
    ['HTTP/1.1 099 Odd', 'invalid status code'],
    [' HTTP/1.1 200 OK', 'invalid status line'],
    ['', 'invalid status line'],
  ];
  for (const [line, want] of cases) {
    t.equal(errorOf([`${line}\r\nContent-Length: 0\r\n\r\n`]), want, `status line ${JSON.stringify(line)} → ${want}`);
  }
  t.equal(errorOf(['\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']), 'invalid status line', 'an empty line before the status line → invalid status line');
  const { rec } = parse(['HTTP/1.1 599  Spaced \xe9 Reason \r\nContent-Length: 0\r\n\r\n']);
  t.equal(rec.heads[0].status, 599, 'status 599 is read');
  t.equal(rec.heads[0].reason, ' Spaced \xe9 Reason ', 'the reason is everything after the second space, untrimmed');
  t.equal(parse(['HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n']).rec.heads[0].reason, '', 'a space and no reason → empty reason');
});
