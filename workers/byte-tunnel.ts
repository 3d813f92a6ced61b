// A byte tunnel: a client connection and a dedicated upstream connection joined both ways,
// bytes passed as they come (no parsing), with backpressure (a side that cannot take more
// pauses the other). What an upgraded request becomes once the upstream answered 101
// (upgrade-exchange.ts) and what a TCP proxy connection is once connected (tcp-proxy.ts).
// A half-close travels: one side's FIN becomes the other's, and the tunnel ends when both
// sockets are closed. A reset on one side resets the other; a side that closes cleanly
// lets the other flush what it was given, then closes it. No byte in either direction for
// the idle timeout closes both (every byte passes the client socket, whose timeout counts
// reads and writes). Bytes are counted per chunk in the listener's and the cluster's
// tunnel counters. The client side may be an HTTP/2 stream (extended CONNECT, RFC 8441):
// END_STREAM is its FIN and RST_STREAM its reset (tunnel-side.ts).

import type { Socket } from 'node:net';
import { ResponseFlag } from '../src/core/flags.js';
import { reportError } from '../src/core/report.js';
import type { ClusterStats, ListenerStats } from '../src/stats/recorder.js';
import { ClusterCounter, ListenerCounter } from '../src/stats/stat-names.js';
import { closedByReset, closeWhenFlushed, resetSide, type TunnelSide } from './tunnel-side.js';
import { closeFrame, FrameBoundary, GOING_AWAY } from './websocket-framing.js';

/** Hears when a tunnel is over (both sockets closed, or closed by destroy()). */
export interface TunnelOwner {
  /** `flag`: '-' for a tunnel closed by either side, UC / DC after a reset by the upstream
   *  / the client, LR when Remora closed it (idle timeout, worker stopping). */
  onTunnelEnd(tunnel: Tunnel, flag: string): void;
}

/** What ended a tunnel: the side whose FIN (or clean close) came first, a reset, the idle
 *  timeout, or destroy() (the worker stopping, a maximum duration). */
export type TunnelEnd = 'downstream' | 'upstream' | 'error' | 'idle_timeout' | 'closed';

export class Tunnel {
  /** Bytes from the client after the 101 (the ones it pipelined behind its request head
   *  are counted by the caller). */
  bytesIn = 0;
  /** Bytes to the client after the 101 head. */
  bytesOut = 0;
  /** performance.now() at the 101. */
  readonly openedAt = performance.now();
  private flag: string = ResponseFlag.None;
  /** What ended it; set by the first event that starts the end. */
  reason: TunnelEnd | null = null;
  /** WebSocket tunnels: where each direction's frames are; null for other tunnels. */
  private readonly toClient: FrameBoundary | null = null;
  private readonly toUpstream: FrameBoundary | null = null;
  private clientClosed = false;
  private upstreamClosed = false;
  private ended = false;

  constructor(
    private readonly client: TunnelSide,
    private readonly upstream: Socket,
    private readonly idleTimeoutMs: number,
    private readonly listenerStats: ListenerStats,
    private readonly clusterStats: ClusterStats,
    private readonly owner: TunnelOwner,
    /** A WebSocket: frames are followed both ways so destroy() can close it with 1001. */
    websocket = false,
  ) {
    if (websocket) {
      this.toClient = new FrameBoundary();
      this.toUpstream = new FrameBoundary();
    }
  }

  /** Sends `head` (an upgrade's 101 head; null for none) and the bytes that followed it
   *  in the same read (`rest`) to the client, then lets bytes flow both ways. */
  start(head: Buffer | null, rest: Buffer): void {
    const client = this.client;
    const upstream = this.upstream;
    client.on('error', this.onClientError);
    client.on('close', this.onClientClose);
    upstream.on('error', this.onUpstreamError);
    upstream.on('close', this.onUpstreamClose);
    if (head !== null) client.write(head);
    if (rest.length > 0) this.onUpstreamData(rest);
    client.on('data', this.onClientData);
    upstream.on('data', this.onUpstreamData);
    client.on('drain', this.onClientDrain);
    upstream.on('drain', this.onUpstreamDrain);
    client.on('end', this.onClientEnd);
    upstream.on('end', this.onUpstreamEnd);
    if (this.idleTimeoutMs > 0) {
      client.setTimeout(this.idleTimeoutMs);
      client.on('timeout', this.onIdle);
    }
    client.resume();
    upstream.resume();
  }

  /** Closes both sides now (the worker is stopping, a maximum duration); the owner hears
   *  of it before this returns. A WebSocket tunnel is closed as a server going away: a
   *  close frame `1001` to the client and one (masked) to the upstream, each only where
   *  its direction is between two frames (websocket-framing.ts), then each side ends once
   *  that is sent (reset a second later if it lingers). Other tunnels are reset. */
  destroy(): void {
    if (this.ended) return;
    this.reason ??= 'closed';
    this.flag = ResponseFlag.LocalReset;
    if (this.toClient !== null && this.toUpstream !== null) {
      this.goAway(this.toClient, this.toUpstream);
    } else {
      resetSide(this.client);
      this.upstream.destroy();
    }
    this.end();
  }

  private goAway(toClient: FrameBoundary, toUpstream: FrameBoundary): void {
    const client = this.client;
    const upstream = this.upstream;
    // Nothing more is passed on: a byte after a close frame would break the protocol.
    client.removeListener('data', this.onClientData);
    upstream.removeListener('data', this.onUpstreamData);
    client.pause();
    upstream.pause();
    if (toClient.atBoundary && client.writable) client.write(closeFrame(GOING_AWAY, false));
    if (toUpstream.atBoundary && upstream.writable) upstream.write(closeFrame(GOING_AWAY, true));
    closeWhenFlushed(client);
    closeWhenFlushed(upstream);
    setTimeout(() => {
      resetSide(client);
      upstream.destroy();
    }, 1000).unref();
  }

  private readonly onClientData = (chunk: Buffer): void => {
    try {
      const n = chunk.length;
      this.toUpstream?.feed(chunk);
      this.bytesIn += n;
      this.listenerStats.add(ListenerCounter.CxRxBytes, n);
      this.clusterStats.add(ClusterCounter.CxTxBytes, n);
      const upstream = this.upstream;
      if (upstream.writable && !upstream.write(chunk)) this.client.pause();
    } catch (err) {
      this.failed(err);
    }
  };

  private readonly onUpstreamData = (chunk: Buffer): void => {
    try {
      const n = chunk.length;
      this.toClient?.feed(chunk);
      this.bytesOut += n;
      this.listenerStats.add(ListenerCounter.CxTxBytes, n);
      this.clusterStats.add(ClusterCounter.CxRxBytes, n);
      const client = this.client;
      if (client.writable && !client.write(chunk)) this.upstream.pause();
    } catch (err) {
      this.failed(err);
    }
  };

  /** An error of Remora's own while carrying bytes: both sides are closed. */
  private failed(err: unknown): void {
    reportError(err, 'a tunnelled connection');
    this.flag = ResponseFlag.LocalReset;
    resetSide(this.client);
    this.upstream.destroy();
  }

  private readonly onClientDrain = (): void => {
    this.upstream.resume();
  };

  private readonly onUpstreamDrain = (): void => {
    this.client.resume();
  };

  // Half-close: a FIN from one side ends the other's writing side.
  private readonly onClientEnd = (): void => {
    this.reason ??= 'downstream';
    guard(() => {
      if (this.upstream.writable) this.upstream.end();
    });
  };

  private readonly onUpstreamEnd = (): void => {
    this.reason ??= 'upstream';
    guard(() => {
      if (this.client.writable) this.client.end();
    });
  };

  private readonly onIdle = (): void => {
    guard(() => {
      this.reason ??= 'idle_timeout';
      this.listenerStats.count(ListenerCounter.TunnelIdleTimeout);
      this.flag = ResponseFlag.LocalReset;
      resetSide(this.client);
      this.upstream.destroy();
    });
  };

  private readonly onClientError = (): void => {
    this.reason ??= 'error';
    if (this.flag === ResponseFlag.None) this.flag = ResponseFlag.DownstreamConnectionTermination;
  };

  private readonly onUpstreamError = (): void => {
    this.reason ??= 'error';
    if (this.flag === ResponseFlag.None) this.flag = ResponseFlag.UpstreamConnectionTermination;
  };

  private readonly onClientClose = (hadError?: boolean): void => {
    const reset = closedByReset(this.client, hadError);
    this.reason ??= reset ? 'error' : 'downstream';
    // An HTTP/2 stream reset by the client emits no 'error' (CANCEL) or one that comes
    // before this (other codes): the flag is set here too.
    if (reset && this.flag === ResponseFlag.None) this.flag = ResponseFlag.DownstreamConnectionTermination;
    guard(() => {
      this.clientClosed = true;
      if (this.upstreamClosed) this.end();
      else if (reset) this.upstream.destroy();
      else closeWhenFlushed(this.upstream);
    });
  };

  private readonly onUpstreamClose = (hadError: boolean): void => {
    this.reason ??= hadError ? 'error' : 'upstream';
    guard(() => {
      this.upstreamClosed = true;
      if (this.clientClosed) this.end();
      else if (hadError) resetSide(this.client, true);
      else closeWhenFlushed(this.client);
    });
  };

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.client.setTimeout(0);
    this.owner.onTunnelEnd(this, this.flag);
  }
}

function guard(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    reportError(err, 'a tunnelled connection');
  }
}
