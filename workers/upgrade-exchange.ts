// One HTTP/1.1 upgrade request (WebSocket and other upgrade_configs types), from the
// strict codec's 'upgrade' event to the end of its tunnel: the pipeline beside
// exchange.ts for a request whose connection, if the upstream agrees, stops being HTTP.
// It runs the same steps as any request — head checks, listener filters, route (404),
// the upgrade policy (403 upgrade_failed), route filters, direct responses, cluster and
// endpoint pick (503 UH), then a DEDICATED upstream connection (pool.openDedicated: under
// the cluster's max_connections, 503 UO; a failed connect is 503 UF) carrying the usual
// upstream head with `connection: upgrade` and `upgrade` kept. The upstream's answer:
// 101 → its head goes to the client unchanged (an HTTP/2 client gets a 200) and both
// sides become a byte tunnel (byte-tunnel.ts); anything else → that response is
// forwarded (headers edited as for any response, body with its framing) and the
// connection (or stream) closes. No retries: an upgrade
// request is sent once. The route timeout (else the listener's idle timeout) bounds the
// wait for the upstream's answer; the tunnel has the listener's idle_timeout_ms.
// The client is an UpgradeClient (upgrade-client.ts): an HTTP/1.1 connection node:http
// has let go of (replies written as raw HTTP/1.1, upgrade-reply.ts), or an HTTP/2 stream
// opened with extended CONNECT (RFC 8441, upgrade-client-h2.ts: the front end made it the
// HTTP/1.1 upgrade request it stands for; replies are HTTP/2 responses, the 101 becomes
// a 200, the stream is tunnelled). The upstream side is HTTP/1.1 either way.

import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { ResponseFlag } from '../src/core/flags.js';
import { reportError } from '../src/core/report.js';
import { runFilters, type LocalReply } from '../src/filters/request-filter.js';
import { readRequestFacts, underscoreHeaders } from '../src/http/request-facts.js';
import { localReplyHeaders } from '../src/http/response-head.js';
import { newTraceparent } from '../src/http/trace-context.js';
import { buildUpstreamRequestHead, startsTrace, withAttemptCount, withUpgrade } from '../src/http/upstream-request-head.js';
import { redirectLocation } from '../src/router/redirect.js';
import { pickTarget, type CompiledRoute } from '../src/router/route-table.js';
import { ListenerCounter, ListenerGauge, ListenerHistogram } from '../src/stats/stat-names.js';
import type { ClusterRuntime } from '../src/upstream/cluster.js';
import type { DedicatedEvents, DedicatedFailure } from '../src/upstream/dedicated-connection.js';
import type { EndpointPool } from '../src/upstream/pool.js';
import type { ListenerRuntime, RoutePolicy, WorkerContext } from './context.js';
import type { DownstreamRequest } from './downstream.js';
import { recordRequest } from './request-stats.js';
import { StreamInfo } from './stream-info.js';
import { AnswerForwarder, AnswerHeadReader, type ForwardOwner } from './upgrade-answer.js';
import type { UpgradeClient } from './upgrade-client.js';
import { upgradeAllowed } from './upgrade-policy.js';
import { Tunnel, type TunnelOwner } from './byte-tunnel.js';
import { HTTP1_ALPN } from '../src/upstream/upstream-tls.js';

/** What the front end lends an upgrade request. */
export interface UpgradeHost {
  /** `server` on local replies (null: pass_through). */
  readonly serverName: string | null;
  /** The listener's idle_timeout_ms: the tunnel's idle timeout. */
  readonly idleTimeoutMs: number;
  /** The exchange is under way / over (the front end closes the ones under way when the
   *  worker stops). */
  opened(ex: UpgradeExchange): void;
  closed(ex: UpgradeExchange): void;
}

/** 'headers': read, checked, routed (synchronous, in begin); 'connecting': the dedicated
 *  connection is being made; 'waiting_head': the request went up, the upstream's answer
 *  is awaited; 'responding': a non-101 answer streams to the client; 'tunnel': switched
 *  protocols, bytes flow; 'done': answered or closed, recorded. */
export type UpgradePhase = 'headers' | 'connecting' | 'waiting_head' | 'responding' | 'tunnel' | 'done';

export class UpgradeExchange implements DedicatedEvents, ForwardOwner, TunnelOwner {
  private phase: UpgradePhase = 'headers';
  readonly info: StreamInfo;
  private readonly isHeadRequest: boolean;
  private listener: ListenerRuntime | null = null;
  private route: CompiledRoute<ClusterRuntime, RoutePolicy> | null = null;
  private cluster: ClusterRuntime | null = null;
  private pool: EndpointPool | null = null;
  private upstream: Socket | null = null;
  /** The upstream head to write once connected. */
  private head = '';
  /** Counted as an active request of its endpoint (least_request), from connect to end. */
  private active = false;
  private timer: NodeJS.Timeout | null = null;
  /** Reads the upstream's answer up to the end of its head. */
  private readonly answer = new AnswerHeadReader();
  /** Passes on a final (non-101) answer. */
  private forwarder: AnswerForwarder | null = null;
  private tunnel: Tunnel | null = null;

  constructor(
    private readonly ctx: WorkerContext,
    private readonly host: UpgradeHost,
    /** The client: an HTTP/1.1 connection or an HTTP/2 stream. */
    private readonly client: UpgradeClient,
    private readonly req: DownstreamRequest,
    /** What the client sent after its request head, in the same read. */
    private readonly clientHead: Buffer,
    /** The Upgrade value as sent, and lower-cased (the policy's key). */
    private readonly upgrade: string,
    private readonly upgradeType: string,
  ) {
    this.info = new StreamInfo(req);
    this.isHeadRequest = req.method === 'HEAD';
  }

  /** Runs the pipeline up to the point where it waits for the upstream. */
  begin(listener: ListenerRuntime): void {
    this.ctx.inflight++;
    this.listener = listener;
    this.host.opened(this);
    listener.stats.requestStarted();
    this.client.watch(this.onClientClose);
    const req = this.req;
    const info = this.info;
    const refusal = req.refusal;
    if (refusal !== null) return this.reject(refusal.status, refusal.reason, refusal.location !== undefined ? ['location', refusal.location] : null);
    if (underscoreHeaders(listener.underscoreHeaders, req.headers)) return this.reject(400, 'header name with an underscore', null);
    const facts = readRequestFacts(req.method, req.path, req.query, req.headers, listener.maxRequestHeadersBytes);
    info.requestId = facts.requestId;
    if (facts.refusal !== null) return this.reject(facts.refusal.status, facts.refusal.reason, null);
    if (info.requestId === '') info.requestId = randomUUID();

    let reply = runFilters(listener.filters, req);
    if (reply !== null) return this.reply(reply);
    const route = listener.table.match({ host: facts.host, method: req.method, path: req.path, headers: req.headers, query: req.query });
    if (route === null) return this.localReply(404, ResponseFlag.NoRoute, 'no route matched');
    this.route = route;
    info.routeName = route.name;
    const policy = route.policy;
    if (!upgradeAllowed(listener.upgrades, policy.upgrades, this.upgradeType)) {
      // Envoy's answer, with no response flag (its details say upgrade_failed).
      return this.localReply(403, ResponseFlag.None, `upgrade_failed: "${this.upgradeType}" upgrades are not enabled for this route`);
    }
    reply = runFilters(policy.filters, req);
    if (reply !== null) return this.reply(reply);
    if (route.direct !== null) return this.localReply(route.direct.status, ResponseFlag.DirectResponse, route.direct.body, true);
    const redirect = route.redirect;
    if (redirect !== null) {
      const location = redirectLocation(redirect, listener.scheme, facts.host, req.path, req.query, route.pathValue);
      return this.localReply(redirect.status, ResponseFlag.DirectResponse, '', true, ['location', location]);
    }

    const target = pickTarget(route);
    const cluster = target.cluster;
    if (cluster === null) return this.localReply(route.clusterNotFoundStatus, ResponseFlag.NoClusterFound, 'cluster not found');
    this.cluster = cluster;
    info.cluster = cluster;
    const pool = cluster.pick();
    if (pool === null) return this.localReply(503, ResponseFlag.NoHealthyUpstream, 'no healthy upstream');
    this.pool = pool;
    info.upstreamHost = pool.key;
    const traceparent = startsTrace(listener.generateTraceparent, route.requestHeadersToRemove, req.headers) ? newTraceparent() : null;
    info.generatedTraceparent = traceparent;
    const head = withUpgrade(buildUpstreamRequestHead(req, facts, route, listener, info.requestId, traceparent, false, target.hostRewrite), this.upgrade);
    this.head = route.includeAttemptCount ? withAttemptCount(head, 1) : head;
    this.phase = 'connecting';
    const upstream = pool.openDedicated(HTTP1_ALPN, null, this);
    if (upstream === null) {
      return this.localReply(503, ResponseFlag.UpstreamOverflow, 'upstream overflow: max_connections reached', false, ['x-remora-overloaded', 'true']);
    }
    this.upstream = upstream;
    const ms = route.timeoutMs > 0 ? route.timeoutMs : this.host.idleTimeoutMs;
    this.timer = setTimeout(UpgradeExchange.onTimeout, ms, this);
  }

  /** Internal failure while handling the request: answer 500 if still possible. */
  fail(err: unknown): void {
    this.ctx.log.error({ err, requestId: this.info.requestId }, 'upgrade request handling failed');
    switch (this.phase) {
      case 'done':
        return;
      case 'tunnel':
        this.tunnel!.destroy();
        return;
      case 'responding':
        this.client.cut();
        this.finish(ResponseFlag.LocalReset);
        return;
      default:
        this.localReply(500, ResponseFlag.LocalReset, 'internal error');
    }
  }

  /** Closes it now, whatever its phase (the worker is stopping). */
  destroy(): void {
    switch (this.phase) {
      case 'tunnel':
        this.tunnel!.destroy();
        return;
      case 'done':
        return;
      default:
        this.client.cut();
        this.finish(ResponseFlag.LocalReset);
    }
  }

  // ---- DedicatedEvents ----

  onUpstreamConnected(up: Socket): void {
    if (this.phase !== 'connecting') {
      up.destroy();
      return;
    }
    this.upstream = up;
    this.pool!.cells.requestStarted();
    this.active = true;
    const info = this.info;
    info.attempts = 1;
    info.upstreamStartedAt = performance.now();
    up.on('data', this.onUpstreamData);
    up.on('error', this.onUpstreamError);
    up.on('close', this.onUpstreamClose);
    this.phase = 'waiting_head';
    up.write(this.head, 'latin1');
    // Bytes the client sent behind its head (in the same read) follow it; the rest of
    // what it sends is read once the upstream has switched protocols.
    const early = this.clientHead;
    if (early.length > 0) {
      info.bytesIn += early.length;
      up.write(early);
    }
  }

  onUpstreamConnectFailed(_failure: DedicatedFailure, detail: string): void {
    if (this.phase !== 'connecting') return;
    this.upstream = null;
    // Counted against the endpoint as a 5xx and a gateway error, as any failed connect.
    this.ctx.endpointOutcome(this.cluster!, this.pool!, true, true);
    this.localReply(503, ResponseFlag.UpstreamConnectFailure, `upstream connect error: ${detail}`);
  }

  // ---- the upstream's answer (upgrade-answer.ts) ----

  private readonly onUpstreamData = (chunk: Buffer): void => {
    try {
      switch (this.phase) {
        case 'waiting_head': {
          const a = this.answer.push(chunk);
          switch (a.kind) {
            case 'more':
              return;
            case 'switch':
              return this.switchProtocols(a.head, a.rest);
            case 'final':
              return this.forwardAnswer(a.bytes);
            case 'bad':
              return this.upstreamProtocolError(a.detail);
          }
          return;
        }
        case 'responding':
          this.forwarder!.push(chunk);
          return;
        default:
          return;
      }
    } catch (err) {
      // The answer's framing (ProtocolError), or a failure of Remora's own.
      if (this.phase === 'tunnel') this.fail(err);
      else this.upstreamProtocolError(err instanceof Error ? err.message : String(err));
    }
  };

  private switchProtocols(head: Buffer, rest: Buffer): void {
    const client = this.client;
    if (client.gone) {
      // Gone while the upstream answered (its 'close' is on its way): nothing to open.
      this.finish(ResponseFlag.DownstreamConnectionTermination);
      return;
    }
    // Throws when the head cannot be passed on: answered 502 (nothing was sent).
    const status = client.switched(head);
    this.clearTimer();
    const up = this.upstream!;
    const cluster = this.cluster!;
    const listener = this.listener!;
    const info = this.info;
    info.status = status;
    info.upstreamStatus = 101;
    this.ctx.endpointOutcome(cluster, this.pool!, false, false);
    up.removeListener('data', this.onUpstreamData);
    up.removeListener('error', this.onUpstreamError);
    up.removeListener('close', this.onUpstreamClose);
    client.unwatch();
    listener.stats.count(ListenerCounter.UpgradesTotal);
    listener.stats.gauge(ListenerGauge.UpgradesActive, 1);
    this.phase = 'tunnel';
    const tunnel = new Tunnel(client.side, up, this.host.idleTimeoutMs, listener.stats, cluster.stats, this, this.upgradeType === 'websocket');
    this.tunnel = tunnel;
    tunnel.start(null, rest);
  }

  onTunnelEnd(tunnel: Tunnel, flag: string): void {
    if (this.phase !== 'tunnel') return;
    const info = this.info;
    info.bytesIn += tunnel.bytesIn;
    info.bytesOut += tunnel.bytesOut;
    const stats = this.listener!.stats;
    stats.gauge(ListenerGauge.UpgradesActive, -1);
    stats.observe(ListenerHistogram.TunnelDuration, Math.round((performance.now() - tunnel.openedAt) * 1000));
    this.finish(flag);
  }

  /** A final answer other than 101: forwarded, then the connection closes. */
  private forwardAnswer(bytes: Buffer): void {
    this.clearTimer();
    this.phase = 'responding';
    const forwarder = new AnswerForwarder(this.client.answerSink(), this.upstream!, this.route!.policy.responseHead, this.isHeadRequest, this.info.upstreamStartedAt, this);
    this.forwarder = forwarder;
    forwarder.start(bytes);
  }

  onForwardHead(status: number): void {
    const info = this.info;
    info.status = status;
    info.upstreamStatus = status;
    this.ctx.endpointOutcome(this.cluster!, this.pool!, status >= 500, status >= 502 && status <= 504);
  }

  onForwardBody(bytes: number): void {
    this.info.bytesOut += bytes;
  }

  onForwardDone(): void {
    if (this.phase === 'responding') this.finish(ResponseFlag.None);
  }

  // ---- failures ----

  private upstreamProtocolError(detail: string): void {
    switch (this.phase) {
      case 'waiting_head':
        this.ctx.endpointOutcome(this.cluster!, this.pool!, true, true);
        this.localReply(502, ResponseFlag.UpstreamProtocolError, `bad upstream response: ${detail}`);
        return;
      case 'responding':
        if (!this.forwarder!.headSent) {
          // Nothing sent yet (the final head itself was bad).
          this.ctx.endpointOutcome(this.cluster!, this.pool!, true, true);
          this.localReply(502, ResponseFlag.UpstreamProtocolError, `bad upstream response: ${detail}`);
          return;
        }
        this.client.cut();
        this.finish(ResponseFlag.UpstreamProtocolError);
        return;
      default:
        return;
    }
  }

  private readonly onUpstreamError = (): void => {
    // 'close' follows and decides.
  };

  private readonly onUpstreamClose = (): void => {
    try {
      switch (this.phase) {
        case 'waiting_head':
          this.upstream = null;
          this.ctx.endpointOutcome(this.cluster!, this.pool!, true, true);
          this.localReply(503, ResponseFlag.UpstreamConnectionTermination, 'upstream reset before response headers');
          return;
        case 'responding': {
          if (this.forwarder!.upstreamClosed()) return;
          // Never let a cut-off response look complete.
          this.client.cut();
          this.finish(ResponseFlag.UpstreamConnectionTermination);
          return;
        }
        default:
          return;
      }
    } catch (err) {
      reportError(err, 'an upgrade request');
    }
  };

  private readonly onClientClose = (): void => {
    try {
      if (this.phase !== 'done') this.finish(ResponseFlag.DownstreamConnectionTermination);
    } catch (err) {
      reportError(err, 'an upgrade request');
    }
  };

  private static onTimeout(this: void, ex: UpgradeExchange): void {
    ex.timer = null;
    try {
      if (ex.phase === 'connecting' || ex.phase === 'waiting_head') {
        ex.localReply(504, ResponseFlag.UpstreamRequestTimeout, 'upstream request timeout');
      }
    } catch (err) {
      reportError(err, 'an upgrade request timeout');
    }
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  // ---- answering ----

  /** A head that must not be forwarded: 400 (or 431, 501...), flag DPE. */
  private reject(status: number, reason: string, extraHeaders: readonly string[] | null): void {
    if (this.info.requestId === '') this.info.requestId = randomUUID();
    this.listener?.stats.count(ListenerCounter.RqProtocolError);
    this.localReply(status, ResponseFlag.DownstreamProtocolError, reason, false, extraHeaders);
  }

  private reply(r: LocalReply): void {
    this.localReply(r.status, r.flag, r.body, false, r.headers);
  }

  /** Answers from Remora and closes the connection, or the stream (whatever followed the
   *  request is not read). */
  private localReply(status: number, flag: string, body: string, direct = false, extraHeaders: readonly string[] | null = null): void {
    const info = this.info;
    info.status = status;
    info.flag = flag;
    const route = this.route;
    const headers = localReplyHeaders(direct, info.flags, info.requestId, extraHeaders, route === null ? null : route.responseHeadersToAdd);
    this.client.reply(status, headers, direct ? body : `${body}\n`, this.host.serverName, this.isHeadRequest);
    this.finish(flag);
  }

  /** Ends the request: timer stopped, the upstream connection closed (a tunnel's are
   *  closed already), resources given back, recorded. */
  private finish(flag: string): void {
    if (this.phase === 'done') return;
    const wasTunnel = this.phase === 'tunnel';
    this.phase = 'done';
    const info = this.info;
    info.flag = flag;
    this.clearTimer();
    if (!wasTunnel) this.upstream?.destroy();
    this.upstream = null;
    if (this.active) {
      this.active = false;
      this.pool!.cells.requestFinished();
    }
    info.end(performance.now());
    this.ctx.inflight--;
    this.host.closed(this);
    if (this.listener !== null) recordRequest(info, this.listener);
  }
}
