// gRPC through the real proxy: a @grpc/grpc-js client → Remora → a @grpc/grpc-js server
// on a `protocol: http2` cluster (h2c). Unary, server, client and bidi streaming (10,000
// messages in order; interleaved echo), deadlines (the client's own, and Remora's from
// `grpc-timeout` capped by `grpc_timeout_header_max_ms`), cancellation reaching the
// server, status and metadata both ways, 4 MB messages, retries on UNAVAILABLE, the
// gRPC-shaped local reply (UNAVAILABLE, flag UF), and a TLS listener (ALPN h2) in front of
// an h2c upstream. The service is defined with raw Buffer serializers: no .proto file.
// Where the grpc-js peers cannot tell who acted (both enforce the deadline themselves), a
// node:http2 client and a node:http2 upstream that never answers show Remora's own part.
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import t from 'tap';
import { TestPki } from '../helpers/certs.js';
import { listenHttp2 } from '../helpers/raw-h2.js';
import { startRemora, waitUntil } from '../helpers/remora.js';
import { deadPort } from '../helpers/dead-port.js';

const MB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// The service: four methods, Buffers in and out.

const identity = (b: Buffer): Buffer => b;
const method = (service: string, name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/${service}/${name}`,
  requestStream,
  responseStream,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
});
const serviceDef = (service: string) => ({
  Unary: method(service, 'Unary', false, false),
  ServerStream: method(service, 'ServerStream', false, true),
  ClientStream: method(service, 'ClientStream', true, false),
  Bidi: method(service, 'Bidi', true, true),
});
/** Services, each behind its own route (see the config below). */
const SVC = {
  main: 'test.Echo', // plain route to the h2c cluster
  deadline: 'deadline.Echo', // timeout_ms 60000, grpc_timeout_header_max_ms 0
  capped: 'capped.Echo', // grpc_timeout_header_max_ms 200
  retry: 'retry.Echo', // two endpoints, the first always UNAVAILABLE; retry_on unavailable
  down: 'down.Echo', // an endpoint nobody listens on
  held: 'held.Echo', // a node:http2 upstream that never answers; grpc_timeout_header_max_ms 0
} as const;

/** What the server saw of each call, by the client's `x-case` metadata. */
interface Seen {
  calls: number;
  cancelled: boolean;
  metadata: grpc.Metadata | null;
}
const seen = new Map<string, Seen>();
const record = (call: { metadata: grpc.Metadata; on(e: 'cancelled', f: () => void): unknown }): Seen => {
  const key = String(call.metadata.get('x-case')[0] ?? 'none');
  let s = seen.get(key);
  if (!s) seen.set(key, (s = { calls: 0, cancelled: false, metadata: null }));
  s.calls++;
  s.metadata = call.metadata;
  const entry = s;
  call.on('cancelled', () => (entry.cancelled = true));
  return s;
};
const seenOf = (key: string): Seen => seen.get(key) ?? { calls: 0, cancelled: false, metadata: null };

const GRPC_LIMITS = { 'grpc.max_receive_message_length': 8 * MB, 'grpc.max_send_message_length': 8 * MB };

/** The good server's implementation, the same for every service name. */
const implementation: grpc.UntypedServiceImplementation = {
  Unary(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
    record(call);
    const delay = Number(call.metadata.get('x-delay-ms')[0] ?? 0);
    const respond = (): void => {
      if (call.metadata.get('x-fail')[0] === 'not-found') {
        callback({ code: grpc.status.NOT_FOUND, details: 'no such thing' });
        return;
      }
      const initial = new grpc.Metadata();
      initial.set('x-initial-meta', 'one');
      call.sendMetadata(initial);
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer-meta', 'two');
      callback(null, call.request, trailer);
    };
    if (delay <= 0) return respond();
    const timer = setTimeout(respond, delay);
    call.on('cancelled', () => clearTimeout(timer));
  },
  ServerStream(call: grpc.ServerWritableStream<Buffer, Buffer>) {
    record(call);
    const req = JSON.parse(call.request.toString()) as { count?: number; forever?: boolean };
    if (req.forever) {
      let i = 0;
      const timer = setInterval(() => {
        const msg = Buffer.alloc(4);
        msg.writeUInt32BE(i++);
        call.write(msg);
      }, 5);
      call.on('cancelled', () => clearInterval(timer));
      return;
    }
    for (let i = 0; i < (req.count ?? 0); i++) {
      const msg = Buffer.alloc(16);
      msg.writeUInt32BE(i);
      call.write(msg);
    }
    call.end();
  },
  ClientStream(call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
    record(call);
    const got: string[] = [];
    call.on('data', (m: Buffer) => got.push(m.toString()));
    call.on('end', () => callback(null, Buffer.from(JSON.stringify(got))));
  },
  Bidi(call: grpc.ServerDuplexStream<Buffer, Buffer>) {
    record(call);
    call.on('data', (m: Buffer) => call.write(Buffer.concat([Buffer.from('echo:'), m])));
    call.on('end', () => call.end());
  },
};

async function startGrpcServer(services: Record<string, grpc.UntypedServiceImplementation>): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server(GRPC_LIMITS);
  for (const [name, impl] of Object.entries(services)) server.addService(serviceDef(name), impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, server };
}


// ---------------------------------------------------------------------------
// Peers and the proxy.

const pki = new TestPki('grpc');
t.teardown(() => pki.remove());
pki.ca('ca');
pki.leaf('remora', 'ca', { dns: 'remora.test', usage: 'serverAuth' });

const good = await startGrpcServer(Object.fromEntries(Object.values(SVC).map((s) => [s, implementation])));
t.teardown(() => good.server.forceShutdown());
let badCalls = 0;
const bad = await startGrpcServer({
  [SVC.retry]: {
    Unary(_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      badCalls++;
      callback({ code: grpc.status.UNAVAILABLE, details: 'bad endpoint' });
    },
  },
});
t.teardown(() => bad.server.forceShutdown());
const downPort = await deadPort();

/** An h2c upstream that never answers: it records each stream's grpc-timeout and the
 *  RST_STREAM code it was closed with (0: closed without a reset). */
const held: { grpcTimeout: string | undefined; rstCode: number | null }[] = [];
const heldServer = http2.createServer();
heldServer.on('stream', (stream, headers) => {
  const entry = { grpcTimeout: headers['grpc-timeout'] as string | undefined, rstCode: null as number | null };
  held.push(entry);
  stream.on('error', () => undefined);
  stream.on('close', () => (entry.rstCode = stream.rstCode ?? 0));
  stream.resume();
});
const heldPort = await listenHttp2(heldServer, t);

const h2Cluster = (name: string, ports: number[]) => ({
  name,
  protocol: 'http2',
  connect_timeout_ms: 1000,
  lb_policy: 'round_robin',
  endpoints: ports.map((port) => ({ address: '127.0.0.1', port })),
});
const routes = [
  { name: 'deadline', match: { prefix: `/${SVC.deadline}/` }, route: { cluster: 'grpc', timeout_ms: 60_000, grpc_timeout_header_max_ms: 0 } },
  { name: 'capped', match: { prefix: `/${SVC.capped}/` }, route: { cluster: 'grpc', timeout_ms: 60_000, grpc_timeout_header_max_ms: 200 } },
  { name: 'retry', match: { prefix: `/${SVC.retry}/` }, route: { cluster: 'retry', retry_policy: { retry_on: ['unavailable'], num_retries: 2 } } },
  { name: 'down', match: { prefix: `/${SVC.down}/` }, route: { cluster: 'down' } },
  { name: 'held', match: { prefix: `/${SVC.held}/` }, route: { cluster: 'held', timeout_ms: 60_000, grpc_timeout_header_max_ms: 0 } },
  { name: 'main', match: { prefix: `/${SVC.main}/` }, route: { cluster: 'grpc', timeout_ms: 30_000 } },
  // Nothing else is routed: /nowhere.Echo/... gets the no-route reply.
];
const virtualHosts = [{ name: 'all', domains: ['*'], routes }];
const remora = await startRemora({
  workers: 1,
  admin: { address: '127.0.0.1', port: 0 },
  listeners: [
    { name: 'main', address: '127.0.0.1', port: 0, virtual_hosts: virtualHosts },
    {
      name: 'secure',
      address: '127.0.0.1',
      port: 0,
      tls: { cert_file: pki.file('remora.pem'), key_file: pki.file('remora.key') },
      virtual_hosts: virtualHosts,
    },
  ],
  clusters: [h2Cluster('grpc', [good.port]), h2Cluster('retry', [bad.port, good.port]), h2Cluster('down', [downPort]),
    h2Cluster('held', [heldPort]),
  ],
});
t.teardown(() => remora.stop());

const clients: grpc.Client[] = [];
t.teardown(() => {
  for (const c of clients) c.close();
});
function client(target = `127.0.0.1:${remora.ports.main}`, creds = grpc.credentials.createInsecure(), options: grpc.ChannelOptions = {}): grpc.Client {
  const c = new grpc.Client(target, creds, { ...GRPC_LIMITS, 'grpc.use_local_subchannel_pool': 1, ...options });
  clients.push(c);
  return c;
}
const plain = client();

interface UnaryResult {
  err: grpc.ServiceError | null;
  value: Buffer | undefined;
  initial: grpc.Metadata | null;
  status: grpc.StatusObject | null;
  ms: number;
}

/** One unary call; never rejects: the error, the metadata and the status come back. */
function unary(c: grpc.Client, service: string, payload: Buffer, md: Record<string, string> = {}, opts: grpc.CallOptions = {}): Promise<UnaryResult> {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(md)) metadata.set(k, v);
  const started = Date.now();
  return new Promise((resolve) => {
    const result: UnaryResult = { err: null, value: undefined, initial: null, status: null, ms: 0 };
    let pending = 2;
    const done = (): void => {
      if (--pending === 0) {
        result.ms = Date.now() - started;
        resolve(result);
      }
    };
    const call = c.makeUnaryRequest(`/${service}/Unary`, identity, identity, payload, metadata, opts, (err, value) => {
      result.err = err;
      result.value = value;
      done();
    });
    call.on('metadata', (m: grpc.Metadata) => (result.initial = m));
    call.on('status', (s: grpc.StatusObject) => {
      result.status = s;
      done();
    });
  });
}

const describe = (r: UnaryResult): string =>
  r.err ? `error code ${r.err.code} (${grpc.status[r.err.code]}) "${r.err.details}"` : `OK with ${r.value?.length ?? 0} bytes`;

// ---------------------------------------------------------------------------

t.test('unary: the request reaches the server and its echo comes back', async (t) => {
  const r = await unary(plain, SVC.main, Buffer.from('hello grpc'), { 'x-case': 'unary' });
  t.equal(r.err, null, `expected OK, got ${describe(r)}`);
  t.equal(r.value?.toString(), 'hello grpc', 'expected the echoed message');
  t.equal(seenOf('unary').calls, 1, 'expected the server to have served exactly one call');
});

t.test('server streaming: 10,000 messages, all received, in order', async (t) => {
  const call = plain.makeServerStreamRequest(`/${SVC.main}/ServerStream`, identity, identity, Buffer.from(JSON.stringify({ count: 10_000 })), new grpc.Metadata());
  let count = 0;
  let outOfOrder = -1;
  call.on('data', (m: Buffer) => {
    if (outOfOrder < 0 && m.readUInt32BE(0) !== count) outOfOrder = count;
    count++;
  });
  const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  t.equal(status.code, grpc.status.OK, `expected status OK, got ${status.code} "${status.details}"`);
  t.equal(count, 10_000, 'expected 10,000 messages');
  t.equal(outOfOrder, -1, `expected every message in order; the first out of order was at position ${outOfOrder}`);
});

t.test('client streaming: 100 messages reach the server in order, one response', async (t) => {
  const md = new grpc.Metadata();
  md.set('x-case', 'client-stream');
  const sent = Array.from({ length: 100 }, (_, i) => `msg-${i}`);
  const res = await new Promise<{ err: grpc.ServiceError | null; value?: Buffer }>((resolve) => {
    const call = plain.makeClientStreamRequest(`/${SVC.main}/ClientStream`, identity, identity, md, {}, (err, value) => resolve({ err, value }));
    for (const m of sent) call.write(Buffer.from(m));
    call.end();
  });
  t.equal(res.err, null, `expected OK, got ${res.err ? `code ${res.err.code} "${res.err.details}"` : 'OK'}`);
  t.same(JSON.parse(res.value?.toString() ?? 'null'), sent, 'expected the server to have received the 100 messages in order');
});

t.test('bidi streaming: each message is echoed before the next is sent (interleaved)', async (t) => {
  const call = plain.makeBidiStreamRequest(`/${SVC.main}/Bidi`, identity, identity, new grpc.Metadata());
  const echoes: string[] = [];
  let wake: (() => void) | null = null;
  call.on('data', (m: Buffer) => {
    echoes.push(m.toString());
    wake?.();
  });
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  for (let i = 0; i < 20; i++) {
    call.write(Buffer.from(`ping-${i}`));
    const deadline = Date.now() + 5000;
    while (echoes.length <= i && Date.now() < deadline) {
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
    if (echoes.length <= i) {
      t.fail(`expected the echo of ping-${i} before sending ping-${i + 1}; got ${echoes.length} echoes after 5 s (is the stream buffered until the request ends?)`);
      call.cancel();
      return;
    }
  }
  call.end();
  const s = await status;
  t.equal(s.code, grpc.status.OK, `expected status OK, got ${s.code} "${s.details}"`);
  t.same(echoes, Array.from({ length: 20 }, (_, i) => `echo:ping-${i}`), 'expected every echo, in order');
});

t.test('deadline exceeded: the server is slower than the client\'s deadline', async (t) => {
  const r = await unary(plain, SVC.main, Buffer.from('slow'), { 'x-case': 'deadline', 'x-delay-ms': '1500' }, { deadline: Date.now() + 200 });
  t.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED, `expected DEADLINE_EXCEEDED (4), got ${describe(r)}`);
  t.ok(r.ms < 1200, `expected the call to end near its 200 ms deadline, it took ${r.ms} ms`);
  await waitUntil('the server to see the slow call cancelled', async () => seenOf('deadline').cancelled, 3000);
});

t.test('cancellation: the client cancels a server stream and the server sees it cancelled', async (t) => {
  const md = new grpc.Metadata();
  md.set('x-case', 'cancel');
  const call = plain.makeServerStreamRequest(`/${SVC.main}/ServerStream`, identity, identity, Buffer.from(JSON.stringify({ forever: true })), md);
  let received = 0;
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
  call.on('error', () => undefined); // CANCELLED, checked through the status
  await new Promise<void>((resolve) =>
    call.on('data', () => {
      if (++received === 5) resolve();
    }),
  );
  t.equal(seenOf('cancel').cancelled, false, 'expected the server stream to be running before the cancel');
  call.cancel();
  const s = await status;
  t.equal(s.code, grpc.status.CANCELLED, `expected the client to see CANCELLED (1), got ${s.code} "${s.details}"`);
  // No deadline on this call: only a reset passed on by Remora can cancel it at the server.
  await waitUntil('the server to see the stream cancelled (Remora reset the upstream stream)', async () => seenOf('cancel').cancelled, 3000);
});

t.test('error status with a message reaches the client', async (t) => {
  const r = await unary(plain, SVC.main, Buffer.from('x'), { 'x-case': 'not-found', 'x-fail': 'not-found' });
  t.equal(r.err?.code, grpc.status.NOT_FOUND, `expected NOT_FOUND (5), got ${describe(r)}`);
  t.equal(r.err?.details, 'no such thing', 'expected the server\'s status message');
});

t.test('metadata: request metadata reaches the server; initial and trailing metadata reach the client', async (t) => {
  const r = await unary(plain, SVC.main, Buffer.from('m'), { 'x-case': 'metadata', 'x-req-meta': 'hello' });
  t.equal(r.err, null, `expected OK, got ${describe(r)}`);
  t.same(seenOf('metadata').metadata?.get('x-req-meta'), ['hello'], 'expected the server to see x-req-meta: hello');
  t.same(r.initial?.get('x-initial-meta'), ['one'], `expected initial metadata x-initial-meta: one, got ${JSON.stringify(r.initial?.getMap())}`);
  t.same(r.status?.metadata.get('x-trailer-meta'), ['two'], `expected trailing metadata x-trailer-meta: two, got ${JSON.stringify(r.status?.metadata.getMap())}`);
});

t.test('a 4 MB message each way', async (t) => {
  const big = Buffer.alloc(4 * MB);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32BE(i, i);
  const r = await unary(plain, SVC.main, big, { 'x-case': 'big' }, { deadline: Date.now() + 20_000 });
  t.equal(r.err, null, `expected OK, got ${describe(r)}`);
  t.equal(r.value?.length, big.length, 'expected a 4 MB response');
  t.ok(r.value?.equals(big), 'expected the response to be the exact bytes sent');
});

t.test('retry on UNAVAILABLE: every call succeeds, the failing endpoint was tried', async (t) => {
  const results = [];
  for (let i = 0; i < 6; i++) results.push(await unary(plain, SVC.retry, Buffer.from(`r${i}`), { 'x-case': 'retry' }));
  const failed = results.filter((r) => r.err !== null).map(describe);
  t.same(failed, [], 'expected every call to succeed after retrying on the second endpoint');
  t.ok(badCalls > 0, `expected the always-UNAVAILABLE endpoint to have seen calls, it saw ${badCalls}`);
  t.equal(seenOf('retry').calls, 6, 'expected the good endpoint to have answered every call once');
});

t.test('gRPC-shaped local reply: an endpoint that refuses connections → UNAVAILABLE with x-remora-flags UF', async (t) => {
  const r = await unary(plain, SVC.down, Buffer.from('x'), {}, { deadline: Date.now() + 5000 });
  t.equal(r.err?.code, grpc.status.UNAVAILABLE, `expected UNAVAILABLE (14), got ${describe(r)}`);
  const flags = [...(r.status?.metadata.get('x-remora-flags') ?? []), ...(r.initial?.get('x-remora-flags') ?? [])].map(String);
  t.ok(flags.includes('UF'), `expected x-remora-flags: UF in the response metadata, got ${JSON.stringify(flags)} (status metadata ${JSON.stringify(r.status?.metadata.getMap())})`);
  t.ok((r.err?.details ?? '') !== '', 'expected a grpc-message giving the reason');
});

t.test('no route → UNIMPLEMENTED (12) with x-remora-flags NR', async (t) => {
  const r = await unary(plain, 'nowhere.Echo', Buffer.from('x'), {}, { deadline: Date.now() + 5000 });
  t.equal(r.err?.code, grpc.status.UNIMPLEMENTED, `expected UNIMPLEMENTED (12) for a path no route matches, got ${describe(r)}`);
  const flags = [...(r.status?.metadata.get('x-remora-flags') ?? []), ...(r.initial?.get('x-remora-flags') ?? [])].map(String);
  t.ok(flags.includes('NR'), `expected x-remora-flags: NR, got ${JSON.stringify(flags)}`);
});

t.test('grpc-timeout: the client\'s deadline (300 ms) applies although the route\'s timeout_ms is 60 s', async (t) => {
  const r = await unary(plain, SVC.deadline, Buffer.from('slow'), { 'x-case': 'grpc-timeout', 'x-delay-ms': '2000' }, { deadline: Date.now() + 300 });
  t.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED, `expected DEADLINE_EXCEEDED (4), got ${describe(r)}`);
  t.ok(r.ms < 1500, `expected the call to end well before the server's 2 s, it took ${r.ms} ms`);
  await waitUntil('the server to see the call cancelled (Remora stopped the upstream call)', async () => seenOf('grpc-timeout').cancelled, 3000);
});

t.test('grpc_timeout_header_max_ms caps the client\'s deadline: Remora answers DEADLINE_EXCEEDED (UT) and resets the upstream call', async (t) => {
  // The client allows 5 s; the route caps it at 200 ms, so the timeout is Remora's alone.
  const r = await unary(plain, SVC.capped, Buffer.from('slow'), { 'x-case': 'capped', 'x-delay-ms': '2000' }, { deadline: Date.now() + 5000 });
  t.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED, `expected DEADLINE_EXCEEDED (4) from Remora, got ${describe(r)}`);
  t.ok(r.ms < 1500, `expected Remora to time out near 200 ms, the call took ${r.ms} ms`);
  const flags = [...(r.status?.metadata.get('x-remora-flags') ?? []), ...(r.initial?.get('x-remora-flags') ?? [])].map(String);
  t.ok(flags.includes('UT'), `expected x-remora-flags: UT, got ${JSON.stringify(flags)}`);
  await waitUntil('the server to see the call cancelled (Remora reset the upstream stream)', async () => seenOf('capped').cancelled, 3000);
});

t.test('grpc-timeout honoured by Remora itself: a bare h2 client without a deadline of its own, an upstream that never answers', async (t) => {
  // grpc-js peers both enforce grpc-timeout themselves; here neither side does, so the
  // DEADLINE_EXCEEDED, its UT flag and the upstream stream's reset can only be Remora's.
  const session = http2.connect(`http://127.0.0.1:${remora.ports.main}`);
  t.teardown(() => session.destroy());
  session.on('error', () => undefined);
  const message = Buffer.from('hello');
  const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]);
  const started = Date.now();
  const req = session.request({
    ':method': 'POST',
    ':path': `/${SVC.held}/Unary`,
    'content-type': 'application/grpc',
    te: 'trailers',
    'grpc-timeout': '300m',
  });
  req.end(framed);
  const outcome = await new Promise<{ headers: http2.IncomingHttpHeaders | null; trailers: http2.IncomingHttpHeaders | null; error: string | null }>((resolve) => {
    const o = { headers: null as http2.IncomingHttpHeaders | null, trailers: null as http2.IncomingHttpHeaders | null, error: null as string | null };
    const timer = setTimeout(() => {
      o.error = 'no end after 5 s';
      resolve(o);
    }, 5000);
    req.on('response', (h) => (o.headers = h));
    req.on('trailers', (h) => (o.trailers = h));
    req.on('error', (err) => (o.error = String(err)));
    req.on('close', () => {
      clearTimeout(timer);
      resolve(o);
    });
    req.resume();
  });
  const ms = Date.now() - started;
  const status = outcome.headers?.['grpc-status'] ?? outcome.trailers?.['grpc-status'];
  t.equal(outcome.error, null, 'expected the stream to end without error');
  t.equal(outcome.headers?.[':status'], 200, `expected HTTP 200 (a gRPC-shaped reply), got ${JSON.stringify(outcome.headers)}`);
  t.equal(status, '4', `expected grpc-status 4 (DEADLINE_EXCEEDED), got headers ${JSON.stringify(outcome.headers)} trailers ${JSON.stringify(outcome.trailers)}`);
  t.equal(outcome.headers?.['x-remora-flags'], 'UT', 'expected flag UT');
  t.ok(ms >= 250 && ms < 1500, `expected the reply near the 300 ms grpc-timeout (route timeout_ms is 60 s), it came after ${ms} ms`);
  t.equal(held.length, 1, `expected the upstream to have received the call once, it got ${held.length}`);
  await waitUntil('the upstream stream to be closed', async () => held[0]?.rstCode !== null, 3000);
  t.not(held[0]?.rstCode, 0, `expected Remora to reset the upstream stream (RST_STREAM), it closed with code ${held[0]?.rstCode}`);
});

t.test('TLS listener (ALPN h2) in front of the h2c cluster: unary works', async (t) => {
  const c = client(`127.0.0.1:${remora.ports.secure}`, grpc.credentials.createSsl(readFileSync(pki.file('ca.pem'))), {
    'grpc.ssl_target_name_override': 'remora.test',
    'grpc.default_authority': 'remora.test',
  });
  const r = await unary(c, SVC.main, Buffer.from('over tls'), { 'x-case': 'tls' }, { deadline: Date.now() + 5000 });
  t.equal(r.err, null, `expected OK over TLS, got ${describe(r)}`);
  t.equal(r.value?.toString(), 'over tls', 'expected the echoed message');
  t.equal(seenOf('tls').calls, 1, 'expected the server to have served the call');
});

// Remora keeps serving after all of the above.
t.test('afterwards: a unary call still works', async (t) => {
  await sleep(50);
  const r = await unary(plain, SVC.main, Buffer.from('still here'));
  t.equal(r.err, null, `expected OK, got ${describe(r)}`);
});
