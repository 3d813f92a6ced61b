// Unit tests for the request lifecycle (workers/exchange.ts) with a fake downstream, a
// fake endpoint pool and fake upstream connections: no sockets, no worker. Each test
// drives the exchange through the seams (DownstreamEvents from the client side, the
// attempt's UpstreamSink/PoolClient from the upstream side) and checks what the client
// got, the StreamInfo the recorders read, and that every resource was given back.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { Redirect, RetryPolicy } from '../../src/config/types.js';
import { compileResponseHeadPolicy } from '../../src/http/response-head.js';
import { compileRedirect } from '../../src/router/redirect.js';
import { CompiledRetryPolicy } from '../../src/upstream/retry-policy.js';
import { FLAGS } from '../../src/stats/stat-names.js';
import type { UpstreamSink } from '../../src/upstream/connection.js';
import type { PoolClient } from '../../src/upstream/pool.js';
import type { ListenerRuntime, WorkerContext } from '../../workers/context.js';
import type { Downstream, DownstreamEvents, DownstreamRequest } from '../../workers/downstream.js';
import { Exchange } from '../../workers/exchange.js';
import { REPO_ROOT } from '../helpers/repo-root.js';

// ---- fakes ----

class FakeDownstream implements Downstream {
  aborted = false;
  readonly writesDate = false;
  status = 0;
  headers: string[] = [];
  body = '';
  ended = false;
  closed = false;
  paused = false;
  replies: { status: number; headers: readonly string[]; body: string; close: boolean }[] = [];
  cork(fn: () => void): void {
    fn();
  }
  writeStatus(status: number): void {
    this.status = status;
  }
  writeHeader(name: string, value: string): void {
    this.headers.push(name, value);
  }
  write(chunk: Uint8Array, totalSize: number): boolean {
    this.body += Buffer.from(chunk).toString();
    if (totalSize >= 0 && this.body.length >= totalSize) this.ended = true;
    return true;
  }
  trailers: string[] = [];
  writeTrailers(trailers: readonly string[]): void {
    this.trailers.push(...trailers);
  }
  end(): void {
    this.ended = true;
  }
  endWithoutBody(): void {
    this.ended = true;
  }
  respond(status: number, _reason: string, headers: readonly string[], body: string, close: boolean): void {
    this.status = status;
    this.replies.push({ status, headers, body, close });
    this.ended = true;
  }
  close(): void {
    this.closed = true;
  }
  pauseRequestBody(): void {
    this.paused = true;
  }
  resumeRequestBody(): void {
    this.paused = false;
  }
  header(name: string): string | undefined {
    const all = this.replies.length > 0 ? this.replies[0].headers : this.headers;
    for (let i = 0; i < all.length; i += 2) if (all[i] === name) return all[i + 1];
    return undefined;
  }
}

class FakeConnection {
  sink: UpstreamSink | null = null;
  head = '';
  body = '';
  bodyEnded = false;
  destroyed = false;
  start(sink: UpstreamSink, head: string): boolean {
    this.sink = sink;
    this.head = head;
    return true;
  }
  writeBody(chunk: Buffer): boolean {
    this.body += chunk.toString();
    return true;
  }
  endBody(): void {
    this.bodyEnded = true;
  }
  pause(): void {}
  resume(): void {}
  destroy(): void {
    this.destroyed = true;
    this.sink = null;
  }
  /** The upstream answers 200 with `body`. */
  respond(status: number, body: string): void {
    const sink = this.sink!;
    sink.onHead(status, 'OK', ['content-type', 'text/plain'], body.length);
    if (body.length > 0) sink.onBody(Buffer.from(body));
    sink.onComplete();
  }
}

/** A pool that hands out a new fake connection per acquire (`autoConnect`), or queues. */
class FakePool {
  active = 0;
  readonly key = '10.0.0.1:80';
  autoConnect = true;
  clients: PoolClient[] = [];
  conns: FakeConnection[] = [];
  released = 0;
  acquire(client: PoolClient): boolean {
    this.clients.push(client);
    if (this.autoConnect) {
      const conn = new FakeConnection();
      this.conns.push(conn);
      client.onConnection(conn as never);
    }
    return true;
  }
  giveBack(): void {
    this.released++;
  }
  readonly cells = { slot: 0 };
}

class FakeLimit {
  used = 0;
  tryAcquire(max: number): boolean {
    if (this.used >= max) return false;
    this.used++;
    return true;
  }
  acquire(): void {
    this.used++;
  }
  release(): void {
    this.used--;
  }
}

function fakeCluster(pool: FakePool) {
  const counts = new Map<number, number>();
  /** Statuses of the responses that were retried (retriedResponse). */
  const retried: number[] = [];
  return {
    name: 'c',
    config: { circuit_breakers: { max_connections: 100, max_pending_requests: 100, max_requests: 100, max_retries: 3 } },
    resources: { requests: new FakeLimit(), pending: new FakeLimit(), retries: new FakeLimit(), connections: new FakeLimit() },
    counts,
    retried,
    stats: {
      count(c: number): void {
        counts.set(c, (counts.get(c) ?? 0) + 1);
      },
      gauge(): void {},
      connectionOpened(): void {},
      connectionClosed(): void {},
      upstreamResponse(): void {},
      retriedResponse(status: number): void {
        retried.push(status);
      },
    },
    pick: (): FakePool => pool,
  };
}

function retryPolicy(over: Partial<RetryPolicy>): CompiledRetryPolicy {
  return new CompiledRetryPolicy({
    retry_on: [],
    num_retries: 1,
    per_try_timeout_ms: 0,
    retriable_status_codes: [],
    base_interval_ms: 1,
    max_interval_ms: 2,
    allow_request_headers: false,
    retry_non_idempotent_on_reset: false,
    buffer_limit_bytes: 65536,
    ...over,
  });
}

interface Setup {
  retry?: CompiledRetryPolicy | null;
  timeoutMs?: number;
  maxRequestBodyBytes?: number;
  noRoute?: boolean;
  direct?: { status: number; body: string };
  redirect?: Redirect;
  responseHeadersToAdd?: { name: string; value: string }[];
}

function harness(setup: Setup = {}) {
  const pool = new FakePool();
  const cluster = fakeCluster(pool);
  const add = setup.responseHeadersToAdd ?? [];
  const route = {
    name: 'r',
    targets: [{ cluster, upTo: 1 }],
    totalWeight: 1,
    prefixRewrite: null,
    regexRewrite: null,
    mirrors: [],
    pathValue: '/',
    hostRewrite: null,
    timeoutMs: setup.timeoutMs ?? 0,
    includeAttemptCount: false,
    maxRequestBodyBytes: setup.maxRequestBodyBytes ?? 0,
    direct: setup.direct ?? null,
    redirect: setup.redirect !== undefined ? compileRedirect(setup.redirect) : null,
    requestHeadersToAdd: [],
    requestHeadersToRemove: null,
    responseHeadersToAdd: add.flatMap((h) => [h.name, h.value]),
    responseHeadersToRemove: null,
    policy: {
      retry: setup.retry ?? null,
      filters: [],
      responseHead: compileResponseHeadPolicy(add, [], 'remora', 'overwrite'),
      upgrades: null,
      sampling: null,
    },
  };
  const listenerCounts: number[] = [];
  /** What the listener's stats recorded per finished request: status and response flag. */
  const finished: { status: number; flag: string }[] = [];
  const listener = {
    name: 'l',
    table: { match: () => (setup.noRoute === true ? null : route) },
    filters: [],
    stats: {
      requestStarted(): void {},
      requestFinished: (status: number, flagIndex: number) => finished.push({ status, flag: flagIndex < 0 ? '' : FLAGS[flagIndex] }),
      count: (c: number) => listenerCounts.push(c),
    },
    accessLog: null,
    generateTraceparent: false,
    maxRequestHeadersBytes: 64 * 1024,
    xfcc: 'sanitize',
    scheme: 'http',
    serverName: 'remora',
    serverHeader: 'overwrite',
    upgrades: new Set(),
    tracer: null,
  } as unknown as ListenerRuntime;
  const outcomes: boolean[] = [];
  const ctx = {
    inflight: 0,
    draining: false,
    log: { error(): void {} },
    endpointOutcome: (_c: unknown, _p: unknown, is5xx: boolean) => outcomes.push(is5xx),
    immediateHealthCheckFail(): void {},
  };
  const ds = new FakeDownstream();
  let events: DownstreamEvents | null = null;
  const start = (method: string, headers: string[] = ['host', 'a']): Exchange => {
    const req: DownstreamRequest = { method, path: '/p', query: '', headers, remoteAddress: '127.0.0.1', http2: false, peer: null, refusal: null };
    const ex = new Exchange(ctx as unknown as WorkerContext, ds, req);
    ex.begin(listener, (e) => {
      events = e;
    });
    return ex;
  };
  return { pool, cluster, ds, ctx, start, outcomes, listenerCounts, finished, events: (): DownstreamEvents => events! };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- tests ----

t.test('success: the request goes out once, the response comes back, everything is given back', async (t) => {
  const h = harness();
  const ex = h.start('GET');
  t.equal(h.pool.conns.length, 1, 'one connection taken');
  const conn = h.pool.conns[0];
  t.match(conn.head, /^GET \/p HTTP\/1\.1\r\nhost: a\r\n/, 'request head written');
  t.match(conn.head, /x-request-id: /, 'x-request-id added');
  conn.respond(200, 'hello');
  t.equal(h.ds.status, 200);
  t.equal(h.ds.body, 'hello');
  t.ok(h.ds.headers.includes('x-remora-upstream-service-time'), 'service time header');
  t.equal(ex.info.status, 200);
  t.equal(ex.info.flags, '-');
  t.equal(ex.info.attempts, 1);
  t.equal(ex.info.bytesOut, 5);
  t.equal(ex.info.upstreamHost, '10.0.0.1:80');
  t.equal(h.ctx.inflight, 0, 'inflight back to 0');
  t.equal(h.pool.active, 0, 'pool active back to 0');
  t.equal(h.cluster.resources.requests.used, 0, 'max_requests given back');
  t.same(h.finished, [{ status: 200, flag: '' }], 'the listener stats recorded one 200 without a flag');
});

t.test('no route: 404 NR local reply, nothing forwarded', async (t) => {
  const h = harness({ noRoute: true });
  const ex = h.start('GET');
  t.equal(h.pool.clients.length, 0, 'no pool touched');
  t.equal(h.ds.replies.length, 1);
  t.equal(h.ds.replies[0].status, 404);
  t.equal(h.ds.header('x-remora-flags'), 'NR');
  t.equal(h.ds.replies[0].body, 'no route matched\n');
  t.equal(ex.info.flag, 'NR');
  t.equal(h.ctx.inflight, 0);
});

t.test('a redirect route answers with its status and Location, the listener\'s scheme, flag DR', async (t) => {
  const h = harness({ redirect: { host: 'new.example', response_code: 308, strip_query: false } });
  const ex = h.start('GET');
  t.equal(h.ds.replies[0].status, 308);
  t.equal(h.ds.header('location'), 'http://new.example/p', 'scheme from the listener, path from the request');
  t.equal(h.ds.replies[0].body, '', 'no body');
  t.equal(ex.info.flag, 'DR');
  t.equal(h.ctx.inflight, 0);
});

t.test('direct response carries the route response_headers_to_add', async (t) => {
  const h = harness({ direct: { status: 200, body: 'hi' }, responseHeadersToAdd: [{ name: 'x-added', value: 'yes' }] });
  const ex = h.start('GET');
  t.equal(h.ds.replies[0].status, 200);
  t.equal(h.ds.replies[0].body, 'hi');
  t.equal(h.ds.header('x-added'), 'yes', 'route header added to the direct response');
  t.equal(h.ds.header('x-remora-flags'), undefined, 'a direct response stays plain');
  t.equal(ex.info.flag, 'DR');
});

t.test('connect failure is retried on a new attempt object', async (t) => {
  const h = harness({ retry: retryPolicy({ retry_on: ['connect-failure'], num_retries: 1 }) });
  const ex = h.start('GET');
  const first = h.pool.conns[0];
  first.sink!.onUpstreamError('connect', false, 'refused');
  t.equal(h.ds.replies.length, 0, 'no reply yet: backing off');
  t.equal(h.cluster.resources.retries.used, 1, 'retry resource held during backoff');
  await sleep(20);
  t.equal(h.pool.clients.length, 2, 'a second acquire');
  t.not(h.pool.clients[1], h.pool.clients[0], 'the retry is a new attempt object');
  t.ok(h.pool.clients[0].cancelled, 'the first attempt is over');
  t.match(h.pool.conns[1].head, /x-remora-attempt-count: 2\r\n/, 'the retry says it is attempt 2');
  h.pool.conns[1].respond(200, 'ok');
  t.equal(h.ds.status, 200);
  t.equal(ex.info.attempts, 2, 'both tries were written to a connection');
  t.equal(ex.info.flags, '-');
  t.equal(h.cluster.resources.retries.used, 0, 'retry resource given back');
  t.equal(h.pool.active, 0);
  t.same(h.outcomes, [true, false], 'endpoint outcomes: the failure, then the success');
});

t.test('per-try timeout: 504 UT, the connection dropped', async (t) => {
  const h = harness({ retry: retryPolicy({ retry_on: ['reset'], num_retries: 0, per_try_timeout_ms: 20 }) });
  const ex = h.start('GET');
  await sleep(60);
  t.equal(h.ds.replies.length, 1);
  t.equal(h.ds.replies[0].status, 504);
  t.equal(h.ds.replies[0].body, 'upstream per-try timeout\n');
  t.equal(ex.info.flag, 'UT');
  t.ok(h.pool.conns[0].destroyed, 'the attempt connection was destroyed');
  t.equal(h.pool.active, 0);
  t.equal(h.cluster.resources.requests.used, 0);
});

t.test('global timeout during backoff: 504 UT and no further attempt', async (t) => {
  const random = Math.random;
  Math.random = () => 0.999;
  t.teardown(() => {
    Math.random = random;
  });
  const h = harness({ timeoutMs: 30, retry: retryPolicy({ retry_on: ['connect-failure'], num_retries: 2, base_interval_ms: 5000, max_interval_ms: 5000 }) });
  const ex = h.start('GET');
  h.pool.conns[0].sink!.onUpstreamError('connect', false, 'refused');
  await sleep(80);
  t.equal(h.ds.replies.length, 1);
  t.equal(h.ds.replies[0].status, 504);
  t.equal(h.ds.replies[0].body, 'upstream request timeout\n');
  t.equal(ex.info.flag, 'UT');
  t.equal(h.pool.clients.length, 1, 'no second attempt');
  t.equal(h.cluster.resources.retries.used, 0, 'retry resource given back');
  t.equal(h.ctx.inflight, 0);
});

t.test('client abort while waiting for a connection: DC, the queued attempt cancelled', async (t) => {
  const h = harness();
  h.pool.autoConnect = false;
  const ex = h.start('GET');
  t.equal(h.pool.clients.length, 1, 'queued');
  h.events().onAbort();
  t.equal(ex.info.flag, 'DC');
  t.ok(h.pool.clients[0].cancelled, 'the pool will skip it');
  t.equal(h.pool.active, 0);
  t.same(h.finished, [{ status: 0, flag: 'DC' }], 'the listener stats recorded the request with DC');
  t.equal(h.ds.replies.length, 0, 'nothing sent to a gone client');
  // A connection that frees up later goes straight back.
  h.pool.clients[0].onConnection(new FakeConnection() as never);
  t.equal(h.pool.released, 1, 'a late connection is released');
});

t.test('chunked body over the route limit: 413, connection closed, upstream cut', async (t) => {
  const h = harness({ maxRequestBodyBytes: 10 });
  const ex = h.start('POST', ['host', 'a', 'transfer-encoding', 'chunked']);
  const conn = h.pool.conns[0];
  t.match(conn.head, /transfer-encoding: chunked\r\n/, 'chunked framing upstream');
  h.events().onRequestBody(Buffer.from('0123456789abcdef'), false);
  t.equal(h.ds.replies.length, 1);
  t.equal(h.ds.replies[0].status, 413);
  t.ok(h.ds.replies[0].close, 'client connection closed');
  t.equal(ex.info.flag, 'DPE');
  t.ok(conn.destroyed, 'upstream request cut');
  t.equal(h.pool.active, 0);
});

t.test('a body that arrives before the connection is written when it comes', async (t) => {
  const h = harness();
  h.pool.autoConnect = false;
  h.start('POST', ['host', 'a', 'content-length', '5']);
  h.events().onRequestBody(Buffer.from('hello'), true);
  const conn = new FakeConnection();
  h.pool.clients[0].onConnection(conn as never);
  t.equal(conn.body, 'hello');
  t.ok(conn.bodyEnded);
  t.match(conn.head, /content-length: 5\r\n/);
});

t.test('retriable status: the response is discarded and the retry answers', async (t) => {
  const h = harness({ retry: retryPolicy({ retry_on: ['5xx'], num_retries: 1 }) });
  const ex = h.start('GET');
  h.pool.conns[0].respond(503, 'busy');
  t.equal(h.ds.status, 0, 'nothing of the 503 reached the client');
  await sleep(20);
  h.pool.conns[1].respond(200, 'fine');
  t.equal(h.ds.status, 200);
  t.equal(h.ds.body, 'fine');
  t.equal(ex.info.attempts, 2);
  t.equal(ex.info.upstreamStatus, 200);
  t.same(h.cluster.retried, [503], 'the retried 503 is counted as a retried response');
});

t.test('retries used up: the last answer goes to the client, flag URX', async (t) => {
  const h = harness({ retry: retryPolicy({ retry_on: ['5xx'], num_retries: 1 }) });
  const ex = h.start('GET');
  h.pool.conns[0].respond(503, 'busy');
  await sleep(20);
  h.pool.conns[1].respond(503, 'still');
  t.equal(h.ds.status, 503);
  t.equal(h.ds.body, 'still');
  t.equal(ex.info.flags, 'URX');
  t.same(h.cluster.retried, [503], 'only the first 503 was retried; the last went to the client');
});

t.test('only its creator imports the exchange (logs and stats read StreamInfo)', async (t) => {
  const root = REPO_ROOT;
  const importers: string[] = [];
  const scan = (dir: string): void => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) scan(path);
      else if (entry.name.endsWith('.ts') && /from '[./]*(?:workers\/)?exchange\.js'/.test(readFileSync(join(root, path), 'utf8'))) importers.push(path);
    }
  };
  scan('src');
  scan('workers');
  t.same(importers, ['workers/start-exchange.ts']);
});
