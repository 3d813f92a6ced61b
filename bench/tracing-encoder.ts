// Micro-benchmark: what a finished server span costs the thread that serves the request,
// for the two designs Remora chose between:
//
//   otel-sdk: OpenTelemetry JS (@opentelemetry/sdk-trace-base 2.12.1: BasicTracerProvider
//             + BatchSpanProcessor, defaults 2048/512) with @opentelemetry/exporter-trace-
//             otlp-proto 0.223.1 posting to a local HTTP sink. Per span: startSpan with 10
//             attributes of a proxy's server span, setAttribute ×2 at the end, end().
//   remora:   a SpanRecord (src/tracing/span.ts) built at the end of the request with the
//             same 12 attributes, pushed to an array; every 512, encodeSpansProto (what a
//             worker's span buffer does, workers/span-buffer.ts).
//
//   npm run bench:tracing-encoder -- [--rounds 7] [--spans 100000] [--no-pin]
//
// Each task runs in its own child process (node --expose-gc; pinned to core 1 unless
// --no-pin, the sink on core 0); rounds are interleaved after one untimed warm-up round.
// Spans are made in chunks of 512 with a turn of the event loop between chunks (for the
// SDK: until its export is answered), so the SDK's exports run as they would under a load
// it keeps up with; "exported share" says whether it did. Measures per
// round, reported as median (min–max) over rounds:
//   hot path: ns per span creating + ending it (for the SDK: the loop time minus the
//     time spent in the exporter's export(), which BatchSpanProcessor calls inside the
//     end() that fills a batch);
//   batch encode: ns per encoded span turning batches of 512 into OTLP protobuf (the SDK's
//     ProtobufTraceSerializer.serializeRequest as its exporter calls it; Remora's
//     encodeSpansProto); export() rest: the rest of the SDK's export() on the thread
//     (starting the HTTP request);
//   allocated: heap bytes allocated per span (median over chunks without a GC);
//   heap peak and heap after GC: heap growth over a round (at the default 100k spans: per
//     100k spans) above its starting point (after a GC): at its highest during the round
//     (garbage not yet collected included: the allocation pressure) and after a GC at its
//     end (what stays).
// Writes bench/results/tracing-encoder-<timestamp>.{json,md}.

import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { MACHINE, canPin, commandLine, log, pinSelf, round, runMain, showSpread, spread, writeResults, type Spread } from './lib/harness.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '7' },
    spans: { type: 'string', default: '100000' },
    'no-pin': { type: 'boolean', default: false },
    child: { type: 'string' },
    sink: { type: 'string' },
    pin: { type: 'boolean', default: false },
  },
  strict: true,
});

const CHUNK = 512;
const TASKS = ['otel-sdk', 'remora'] as const;
type TaskName = (typeof TASKS)[number];

/** One round's measures, from a child. */
interface Measures {
  hot_ns_per_span: number;
  encode_ns_per_span: number;
  export_rest_ns_per_span: number;
  allocated_bytes_per_span: number;
  heap_peak_mb: number;
  heap_after_gc_mb: number;
  /** Spans the sink received / spans made (the SDK drops when its queue is full). */
  exported_share: number;
  encoded_bytes_per_span: number;
}

// --- What a proxy knows about a request -------------------------------------------------

const PATHS = Array.from({ length: 64 }, (_, i) => `/api/v1/orders/${100000 + i * 7919}`);
const CLIENTS = Array.from({ length: 16 }, (_, i) => `10.1.${i}.${(i * 37) % 250}`);
const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
const NAME = 'ingress GET /api/v1/orders/{id}';

// --- Children -----------------------------------------------------------------------------

const heapUsed = (): number => v8.getHeapStatistics().used_heap_size;
const gc = (): void => (globalThis as { gc?: () => void }).gc!();
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** The part of a round both tasks share: chunks, heap sampling, timing. `chunk` makes
 *  `n` spans and returns the ns it took on the hot path; `settle` runs between chunks
 *  (untimed); `after` once at the end. */
async function measureRound(
  spans: number,
  chunk: (n: number, base: number) => number,
  settle: () => Promise<void>,
  after: () => Promise<void>,
): Promise<{ hotNs: number; allocated: number; peak: number; afterGc: number }> {
  gc();
  const base = heapUsed();
  let hotNs = 0;
  let peak = 0;
  const alloc: number[] = [];
  for (let done = 0; done < spans; done += CHUNK) {
    const n = Math.min(CHUNK, spans - done);
    const h0 = heapUsed();
    hotNs += chunk(n, done);
    const h1 = heapUsed();
    if (h1 >= h0) alloc.push((h1 - h0) / n);
    peak = Math.max(peak, h1 - base);
    await settle();
  }
  await after();
  gc();
  const afterGc = heapUsed() - base;
  alloc.sort((a, b) => a - b);
  return { hotNs, allocated: alloc.length === 0 ? NaN : alloc[alloc.length >> 1], peak, afterGc };
}

const mb = (bytes: number): number => round(bytes / 2 ** 20, 2);

async function otelTask(sink: string, spans: number): Promise<() => Promise<Measures>> {
  const [{ BasicTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { SpanKind }] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-proto'),
    import('@opentelemetry/api'),
  ]);
  // The serializer instance the exporter calls (its own otlp-transformer version).
  const fromExporter = createRequire(createRequire(import.meta.url).resolve('@opentelemetry/exporter-trace-otlp-proto'));
  const serializer = (fromExporter('@opentelemetry/otlp-transformer') as { ProtobufTraceSerializer: { serializeRequest: (x: unknown) => Uint8Array | undefined } }).ProtobufTraceSerializer;
  let serializeNs = 0;
  let exportNs = 0;
  let encodedBytes = 0;
  let encodedSpans = 0;
  const serialize = serializer.serializeRequest;
  serializer.serializeRequest = (x: unknown) => {
    const t0 = process.hrtime.bigint();
    const out = serialize(x);
    serializeNs += Number(process.hrtime.bigint() - t0);
    encodedBytes += out?.length ?? 0;
    encodedSpans += (x as unknown[]).length;
    return out;
  };
  const exporter = new OTLPTraceExporter({ url: sink });
  const exportFn = exporter.export.bind(exporter);
  exporter.export = (items, cb) => {
    const t0 = process.hrtime.bigint();
    exportFn(items, cb);
    exportNs += Number(process.hrtime.bigint() - t0);
  };
  const processor = new BatchSpanProcessor(exporter);
  // Between chunks: wait until the processor has sent what it holds and heard back, as it
  // would between requests under a load it keeps up with (else its queue overflows and it
  // drops spans, which would make it look cheaper than it is). Its fields, not its API.
  const state = processor as unknown as { _isExporting?: boolean; _finishedSpans?: unknown[] };
  const settle = async (): Promise<void> => {
    if (state._finishedSpans === undefined) return new Promise((r) => setTimeout(r, 2));
    await turn();
    while (state._isExporting === true || state._finishedSpans.length >= CHUNK) await turn();
  };
  const provider = new BasicTracerProvider({ spanProcessors: [processor] });
  const tracer = provider.getTracer('remora-bench', '1.0.0');

  const chunk = (n: number, base: number): number => {
    const e0 = exportNs;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const k = base + i;
      const span = tracer.startSpan(NAME, {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': 'GET',
          'url.path': PATHS[k & 63],
          'url.scheme': 'http',
          'server.address': 'checkout.default.svc.cluster.local',
          'server.port': 8080,
          'network.protocol.version': '1.1',
          'client.address': CLIENTS[k & 15],
          'user_agent.original': UA,
          'http.request.body.size': 0,
          'upstream_cluster': 'checkout',
        },
      });
      span.setAttribute('http.response.status_code', 200);
      span.setAttribute('http.response.body.size', 1024 + (k & 255));
      span.end();
    }
    return Number(process.hrtime.bigint() - t0) - (exportNs - e0);
  };
  return async () => {
    serializeNs = exportNs = encodedBytes = encodedSpans = 0;
    const before = await sinkCount(sink);
    const r = await measureRound(spans, chunk, settle, () => processor.forceFlush());
    const got = (await sinkCount(sink)) - before;
    return {
      hot_ns_per_span: round(r.hotNs / spans, 1),
      encode_ns_per_span: round(serializeNs / Math.max(1, encodedSpans), 1),
      export_rest_ns_per_span: round((exportNs - serializeNs) / Math.max(1, encodedSpans), 1),
      allocated_bytes_per_span: round(r.allocated, 0),
      heap_peak_mb: mb(r.peak),
      heap_after_gc_mb: mb(r.afterGc),
      exported_share: round(got / spans, 4),
      encoded_bytes_per_span: round(encodedBytes / Math.max(1, encodedSpans), 0),
    };
  };
}

async function remoraTask(spans: number): Promise<() => Promise<Measures>> {
  const [{ encodeSpansProto }, { newSpanId, newTraceId }, { epochUs }] = await Promise.all([
    import('../src/tracing/otlp-encode.js'),
    import('../src/http/trace-context.js'),
    import('../src/tracing/span.js'),
  ]);
  type Rec = import('../src/tracing/span.js').SpanRecord;
  let batch: Rec[] = [];
  let encodeNs = 0;
  let encodedBytes = 0;
  const parts: Uint8Array[] = [];
  const chunk = (n: number, base: number): number => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const k = base + i;
      const start = performance.now(); // taken when the request arrives
      const rec: Rec = {
        traceId: newTraceId(),
        spanId: newSpanId(),
        parentSpanId: '',
        traceState: '',
        name: NAME,
        kind: 2,
        startUs: epochUs(start),
        endUs: epochUs(performance.now()),
        attributes: [
          'http.request.method', 'GET',
          'url.path', PATHS[k & 63],
          'url.scheme', 'http',
          'server.address', 'checkout.default.svc.cluster.local',
          'server.port', 8080,
          'network.protocol.version', '1.1',
          'client.address', CLIENTS[k & 15],
          'user_agent.original', UA,
          'http.request.body.size', 0,
          'upstream_cluster', 'checkout',
          'http.response.status_code', 200,
          'http.response.body.size', 1024 + (k & 255),
        ],
        status: 0,
        statusMessage: '',
      };
      batch.push(rec);
    }
    const hot = Number(process.hrtime.bigint() - t0);
    // A worker encodes a full batch on the next turn of the event loop; timed apart.
    if (batch.length >= CHUNK) encode();
    return hot;
  };
  const encode = (): void => {
    const t0 = process.hrtime.bigint();
    const bytes = encodeSpansProto(batch);
    encodeNs += Number(process.hrtime.bigint() - t0);
    encodedBytes += bytes.length;
    batch = [];
    parts.push(bytes); // posted to the main thread in Remora; dropped at the round's end
  };
  return async () => {
    encodeNs = encodedBytes = 0;
    const r = await measureRound(spans, chunk, turn, async () => {
      if (batch.length > 0) encode();
      parts.length = 0;
    });
    return {
      hot_ns_per_span: round(r.hotNs / spans, 1),
      encode_ns_per_span: round(encodeNs / spans, 1),
      export_rest_ns_per_span: 0,
      allocated_bytes_per_span: round(r.allocated, 0),
      heap_peak_mb: mb(r.peak),
      heap_after_gc_mb: mb(r.afterGc),
      exported_share: 1,
      encoded_bytes_per_span: round(encodedBytes / spans, 0),
    };
  };
}

/** Spans the sink has received so far. */
function sinkCount(sink: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(sink.replace('/v1/traces', '/count'), (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(Number(body)));
    }).on('error', reject);
  });
}

async function child(task: TaskName): Promise<void> {
  if (args.pin) pinSelf(1);
  const spans = Number(args.spans);
  const runRound = task === 'otel-sdk' ? await otelTask(args.sink!, spans) : await remoraTask(spans);
  process.on('message', (m: unknown) => {
    if (m === 'exit') process.exit(0);
    runRound().then(
      (r) => process.send!(r),
      (err: unknown) => {
        process.stderr.write(`${task}: ${err instanceof Error ? err.stack : String(err)}\n`);
        process.exit(1);
      },
    );
  });
  process.send!('ready');
}

// --- Parent -------------------------------------------------------------------------------

/** The OTLP/HTTP sink: answers every export with success and counts the spans in it
 *  (decoded with OpenTelemetry's generated code). GET /count returns the count. */
async function startSink(): Promise<{ url: string; close: () => void }> {
  const root = createRequire(import.meta.url)('@opentelemetry/otlp-transformer/build/src/generated/root.js') as {
    opentelemetry: { proto: { collector: { trace: { v1: { ExportTraceServiceRequest: { decode(b: Uint8Array): { resourceSpans: { scopeSpans: { spans: unknown[] }[] }[] } } } } } } };
  };
  const Request = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
  let count = 0;
  const server = http.createServer((req, res) => {
    if (req.method === 'GET') {
      res.end(String(count));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      for (const rs of Request.decode(Buffer.concat(chunks)).resourceSpans) for (const ss of rs.scopeSpans) count += ss.spans.length;
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, close: () => server.close() };
}

const live: ChildProcess[] = [];

function startChild(task: TaskName, sink: string, pin: boolean): Promise<(msg: string) => Promise<Measures>> {
  const c = fork(fileURLToPath(import.meta.url), ['--child', task, '--sink', sink, '--spans', args.spans!, ...(pin ? ['--pin'] : [])], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  live.push(c);
  const next = (): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`${task} exited (${code})`));
      c.once('exit', onExit);
      c.once('message', (m) => {
        c.off('exit', onExit);
        resolve(m);
      });
    });
  return next().then(() => (msg: string) => {
    const p = next() as Promise<Measures>;
    c.send(msg);
    return p;
  });
}

const COLUMNS: [keyof Measures, string][] = [
  ['hot_ns_per_span', 'hot path ns/span'],
  ['encode_ns_per_span', 'batch encode ns/span'],
  ['export_rest_ns_per_span', 'export() rest ns/span'],
  ['allocated_bytes_per_span', 'allocated B/span'],
  ['heap_peak_mb', 'heap growth, peak MB'],
  ['heap_after_gc_mb', 'heap growth after GC MB'],
  ['encoded_bytes_per_span', 'OTLP bytes/span'],
  ['exported_share', 'exported share'],
];

/** Rows where a ratio means nothing (zero or near it on one side). */
const NO_RATIO: (keyof Measures)[] = ['export_rest_ns_per_span', 'heap_after_gc_mb', 'exported_share'];

async function main(): Promise<void> {
  const pin = canPin(args['no-pin']);
  if (pin) pinSelf(0);
  const rounds = Number(args.rounds);
  const spans = Number(args.spans);
  const sink = await startSink();
  try {
    log(`tasks: ${TASKS.join(', ')}; ${spans} spans × ${rounds} rounds (after a warm-up round); pinning ${pin ? 'on' : 'off'}`);
    const tasks = await Promise.all(TASKS.map((t) => startChild(t, sink.url, pin)));
    const raw: Record<TaskName, Measures[]> = { 'otel-sdk': [], remora: [] };
    for (const call of tasks) await call('round');
    for (let r = 0; r < rounds; r++) {
      log(`round ${r + 1}/${rounds}`);
      for (let i = 0; i < TASKS.length; i++) raw[TASKS[i]].push(await tasks[i]('round'));
    }
    const summary = Object.fromEntries(
      TASKS.map((t) => [t, Object.fromEntries(COLUMNS.map(([k]) => [k, spread(raw[t].map((m) => m[k]), 2)]))]),
    ) as Record<TaskName, Record<keyof Measures, Spread>>;

    const when = new Date().toISOString();
    const command = commandLine('bench:tracing-encoder');
    const ratio = (k: keyof Measures): string => round(summary['otel-sdk'][k].median / summary.remora[k].median, 1) + '×';
    const sum = (t: TaskName): number => summary[t].hot_ns_per_span.median + summary[t].encode_ns_per_span.median + summary[t].export_rest_ns_per_span.median;
    const lines = [
      `# Tracing: a span's cost on the serving thread — ${when}`,
      '',
      `Command: \`${command}\`  `,
      `Machine: ${MACHINE}; pinning ${pin ? 'tasks on core 1, sink on core 0' : 'off'}  `,
      `${spans} server spans per round (12 attributes), ${rounds} rounds after a warm-up; median (min–max) over rounds.`,
      '',
      '| measure | OpenTelemetry JS SDK | Remora | SDK ÷ Remora |',
      '|---|---|---|---|',
      ...COLUMNS.map(([k, label]) => `| ${label} | ${showSpread(summary['otel-sdk'][k])} | ${showSpread(summary.remora[k])} | ${NO_RATIO.includes(k) ? '—' : ratio(k)} |`),
      `| **total on the thread ns/span** | **${round(sum('otel-sdk'), 0)}** | **${round(sum('remora'), 0)}** | **${round(sum('otel-sdk') / sum('remora'), 1)}×** |`,
      '',
      'OpenTelemetry JS SDK: @opentelemetry/sdk-trace-base 2.12.1 (BasicTracerProvider, BatchSpanProcessor with its defaults), @opentelemetry/exporter-trace-otlp-proto 0.223.1 to a local HTTP sink. ' +
        'Its hot path excludes the time inside export(), which BatchSpanProcessor calls from the end() that fills a batch: that time is the "batch encode" (ProtobufTraceSerializer) and "export() rest" (starting the HTTP request) rows. ' +
        'Remora: SpanRecord + push; encodeSpansProto per 512 spans (a worker then posts the bytes to the main thread, which sends them: not on the serving thread, not counted). ' +
        `"allocated": median over 512-span chunks without a GC; "heap growth": over a round of ${spans} spans, above its start (after a GC), at its peak (uncollected garbage included) and after a GC at its end (what stays; ±0.5 MB is noise).`,
      '',
    ];
    writeResults('tracing-encoder', when, { when, command, machine: MACHINE, pinned: pin, spans, rounds, raw, summary }, lines);
    for (const call of tasks) void call('exit').catch(() => {});
  } finally {
    sink.close();
  }
}

if (args.child !== undefined) {
  if (!(TASKS as readonly string[]).includes(args.child)) throw new Error(`unknown task ${args.child}`);
  void child(args.child as TaskName);
} else {
  runMain(main, () => {
    for (const c of live) if (c.exitCode === null) c.kill();
  });
}
