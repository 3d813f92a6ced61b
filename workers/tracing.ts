// Tracing in a worker: per listener (compiled per snapshot) the sampling settings, the
// propagation formats and the custom tags; per traced request a RequestTrace that holds
// the trace id, the server span's id and the sampling decision, writes each upstream
// attempt's context into its head, and records the server span and one client span per
// attempt into the worker's SpanBuffer (workers/span-buffer.ts) when sampled. A request
// on a listener that does not trace costs one null check.

import type { CustomTag, ListenerTracing, RouteTracing } from '../src/config/types.js';
import { newSpanId, newTraceId } from '../src/http/trace-context.js';
import { extractParent, injectionLines, type Injection, type ParentContext } from '../src/tracing/propagation.js';
import type { TracingSettings } from '../src/tracing/settings.js';
import { epochUs, SpanKind, SpanStatus, type AttributeValue } from '../src/tracing/span.js';
import type { SpanBuffer } from './span-buffer.js';
import type { StreamInfo } from './stream-info.js';

/** Shares (0..1) of Envoy's three sampling settings. */
export interface Sampling {
  readonly random: number;
  readonly client: number;
  readonly overall: number;
}

/** A custom tag compiled: a fixed value, or a request header read per request. */
interface CompiledTag {
  readonly tag: string;
  /** The value for literal and environment tags ('' with `header` set). */
  readonly value: string;
  /** The request header to read; '' for literal and environment tags. */
  readonly header: string;
  /** Used when the header is missing; null: leave the tag out. */
  readonly fallback: string | null;
}

/** The random share a sampler implies when no `random_sampling` says otherwise. */
function samplerShare(settings: TracingSettings): number {
  switch (settings.sampler) {
    case 'always_on':
    case 'parentbased_always_on':
      return 1;
    case 'always_off':
    case 'parentbased_always_off':
      return 0;
    case 'traceidratio':
    case 'parentbased_traceidratio':
      return settings.ratio;
  }
}

const share = (percent: number | undefined, fallback: number): number => (percent === undefined ? fallback : percent / 100);

/** A trace id's share for ratio sampling: its last 56 bits as a fraction (OpenTelemetry's
 *  TraceIdRatioBased idea: every hop with the same ratio decides the same way). */
function traceIdFraction(traceId: string): number {
  return parseInt(traceId.slice(18), 16) / 72057594037927936; // 2^56
}

export class ListenerTracer {
  readonly sampling: Sampling;
  private readonly parentBased: boolean;
  private readonly inject: Injection;
  private readonly tags: readonly CompiledTag[];
  private readonly maxPath: number;

  constructor(
    readonly settings: TracingSettings,
    config: ListenerTracing | undefined,
    readonly listener: string,
    private readonly spans: SpanBuffer,
    env: Readonly<Record<string, string | undefined>>,
  ) {
    this.sampling = {
      random: share(config?.random_sampling, samplerShare(settings)),
      client: share(config?.client_sampling, 1),
      overall: share(config?.overall_sampling, 1),
    };
    this.parentBased = settings.sampler.startsWith('parentbased_');
    const p = settings.propagators;
    this.inject = { tracecontext: p.includes('tracecontext'), b3: p.includes('b3'), b3multi: p.includes('b3multi') };
    this.tags = (config?.custom_tags ?? []).flatMap((t) => compileTag(t, env));
    this.maxPath = config?.max_path_tag_length ?? 256;
  }

  /** A route's sampling: its own settings over the listener's (null: the listener's). */
  routeSampling(t: RouteTracing | undefined): Sampling | null {
    if (t === undefined) return null;
    const l = this.sampling;
    return { random: share(t.random_sampling, l.random), client: share(t.client_sampling, l.client), overall: share(t.overall_sampling, l.overall) };
  }

  /** Reads the request's trace context and decides whether it is sampled. */
  start(headers: readonly string[], sampling: Sampling): RequestTrace {
    const parent = extractParent(headers, this.settings.propagators);
    const traceId = parent.traceId !== '' ? parent.traceId : newTraceId();
    let sampled: boolean;
    if (parent.forced) sampled = true;
    else if (parent.clientTraceId !== '' && (sampling.client >= 1 || Math.random() < sampling.client)) sampled = true;
    else if (this.parentBased && parent.sampled !== -1) sampled = parent.sampled === 1;
    else sampled = sampling.random >= 1 ? true : sampling.random <= 0 ? false : traceIdFraction(traceId) < sampling.random;
    if (sampled && sampling.overall < 1 && !(Math.random() < sampling.overall)) sampled = false;
    // The formats the request came with are written back too, whatever the propagators
    // say: the listener drops every trace header from the upstream head.
    let inject = this.inject;
    if ((parent.b3 === 'multi' && !inject.b3multi) || (parent.b3 === 'single' && !inject.b3) || (parent.traceparent && !inject.tracecontext)) {
      inject = { tracecontext: inject.tracecontext || parent.traceparent, b3: inject.b3 || parent.b3 === 'single', b3multi: inject.b3multi || parent.b3 === 'multi' };
    }
    return new RequestTrace(this, parent, traceId, sampled, inject);
  }

  /** Records a sampled request's server span (the request is over). */
  endServer(trace: RequestTrace, info: StreamInfo, scheme: string): void {
    const req = info.request;
    const a: (string | AttributeValue)[] = ['http.request.method', req.method, 'url.path', cut(req.path, this.maxPath), 'url.scheme', scheme];
    if (req.query.length > 0) a.push('url.query', cut(req.query, this.maxPath));
    if (trace.host !== '') a.push('server.address', trace.host);
    a.push('network.protocol.version', req.http2 ? '2' : '1.1', 'client.address', req.remoteAddress);
    const headers = req.headers;
    const tags = this.tags;
    let userAgent: string | null = null;
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i] === 'user-agent') {
        userAgent = headers[i + 1];
        break;
      }
    }
    if (userAgent !== null) a.push('user_agent.original', userAgent);
    if (info.status > 0) a.push('http.response.status_code', info.status);
    a.push('http.request.body.size', info.bytesIn, 'http.response.body.size', info.bytesOut);
    a.push('remora.listener', this.listener, 'remora.request_id', info.requestId, 'remora.response_flags', info.flags);
    if (info.routeName !== '') a.push('remora.route', info.routeName);
    if (info.cluster !== null) a.push('remora.cluster', info.cluster.name);
    if (info.upstreamHost !== '') a.push('remora.upstream.address', info.upstreamHost);
    if (info.attempts > 1) a.push('remora.retry_count', info.attempts - 1);
    if (info.grpcStatus >= 0) a.push('rpc.grpc.status_code', info.grpcStatus);
    if (req.peer !== null) a.push('remora.peer.identity', req.peer.id);
    if (trace.parent.clientTraceId !== '') a.push('remora.client_trace_id', trace.parent.clientTraceId);
    for (let i = 0; i < tags.length; i++) {
      const t = tags[i];
      if (t.header === '') {
        a.push(t.tag, t.value);
        continue;
      }
      let value: string | null = null;
      for (let j = 0; j < headers.length; j += 2) {
        if (headers[j] === t.header) {
          value = headers[j + 1];
          break;
        }
      }
      value ??= t.fallback;
      if (value !== null) a.push(t.tag, value);
    }
    const error = info.status >= 500 || info.status === 0;
    const name = info.routeName !== '' ? `${req.method} ${info.routeName}` : req.method;
    const startUs = epochUs(info.startedAt);
    this.spans.add({
      traceId: trace.traceId,
      spanId: trace.spanId,
      parentSpanId: trace.parent.spanId,
      traceState: trace.parent.traceState,
      name,
      kind: SpanKind.Server,
      startUs,
      endUs: startUs + info.durationUs,
      attributes: a,
      status: error ? SpanStatus.Error : SpanStatus.Unset,
      statusMessage: error ? info.flags : '',
    });
  }

  /** Records a sampled request's upstream attempt (client span). */
  endClient(trace: RequestTrace, attempt: TracedAttempt, method: string, cluster: string, endpoint: string, number: number, endedAt: number): void {
    const a: (string | AttributeValue)[] = ['http.request.method', method, 'remora.cluster', cluster];
    const colon = endpoint.lastIndexOf(':');
    if (colon > 0) {
      const host = endpoint.startsWith('[') ? endpoint.slice(1, colon - 1) : endpoint.slice(0, colon);
      a.push('server.address', host, 'server.port', Number(endpoint.slice(colon + 1)), 'network.peer.address', host);
    }
    if (number > 1) a.push('http.request.resend_count', number - 1);
    if (attempt.backoffMs > 0) a.push('remora.retry.backoff_ms', attempt.backoffMs);
    const status = attempt.status;
    if (status > 0) a.push('http.response.status_code', status);
    let error = '';
    if (attempt.failure !== '') error = attempt.failure;
    else if (status >= 500) error = String(status);
    else if (status === 0) error = 'cancelled';
    if (error !== '') a.push('error.type', error);
    this.spans.add({
      traceId: trace.traceId,
      spanId: attempt.spanId,
      parentSpanId: trace.spanId,
      traceState: trace.parent.traceState,
      name: method,
      kind: SpanKind.Client,
      startUs: epochUs(attempt.createdAt),
      endUs: epochUs(endedAt),
      attributes: a,
      status: error !== '' && (status >= 400 || status === 0) ? SpanStatus.Error : SpanStatus.Unset,
      statusMessage: error !== '' && (status >= 400 || status === 0) ? error : '',
    });
  }
}

/** What a client span needs from an upstream attempt. */
export interface TracedAttempt {
  /** This attempt's span id ('' until its head was built). */
  spanId: string;
  readonly createdAt: number;
  /** The upstream's status, 0 when no response head came. */
  readonly status: number;
  /** Why it failed without a usable response ('' when it did not). */
  readonly failure: string;
  /** The backoff before it (ms), 0 for a first attempt. */
  backoffMs: number;
}

export class RequestTrace {
  /** The server span's id. */
  readonly spanId = newSpanId();
  /** The request's host (server.address), set by the exchange. */
  host = '';

  constructor(
    readonly tracer: ListenerTracer,
    readonly parent: ParentContext,
    readonly traceId: string,
    readonly sampled: boolean,
    private readonly inject: Injection,
  ) {}

  /** The trace headers of one upstream attempt (a new span id for it, written into
   *  `attempt`), each line ending in CRLF. */
  attemptHeaders(attempt: TracedAttempt): string {
    const id = newSpanId();
    attempt.spanId = id;
    return injectionLines(this.inject, this.traceId, id, this.spanId, this.sampled);
  }
}

function compileTag(t: CustomTag, env: Readonly<Record<string, string | undefined>>): CompiledTag[] {
  if (t.literal !== undefined) return [{ tag: t.tag, value: t.literal, header: '', fallback: null }];
  if (t.environment !== undefined) {
    const value = env[t.environment] ?? t.default_value;
    return value === undefined ? [] : [{ tag: t.tag, value, header: '', fallback: null }];
  }
  if (t.request_header !== undefined) return [{ tag: t.tag, value: '', header: t.request_header, fallback: t.default_value ?? null }];
  return [];
}

function cut(s: string, max: number): string {
  return s.length > max ? s.slice(0, max) : s;
}
