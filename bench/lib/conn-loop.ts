// Closed-loop HTTP/1.1 load generator for the suite's `connections` scenario and bench/mtls.ts.
// autocannon keeps its connections open, so it cannot price connection set-up; this can:
// `lanes` lanes, each with one request in flight at a time, and
//   - mode 'new':        every request on a fresh TCP connection, sent with
//                        `Connection: close`; the lane closes the socket once the
//                        response is complete and connects again for the next request;
//   - mode 'keep-alive': each lane keeps one connection for all its requests.
// Both modes run the same code, so the pair prices the connection alone.
// Counts complete 2xx responses (req/s over the measured time) and errors (connect
// failures, resets, malformed or non-2xx responses, responses slower than `timeoutMs`);
// latency (µs, from the request's send, or from connect() in 'new' mode) goes into an
// HDR histogram. Uses Remora's own response parser for framing.
// With `tls`, every connection is a TLS one (tls.connect, one client context built once,
// client certificate presented when given): 'new' mode then prices a full handshake per
// request, or a resumed one with `resume` (each lane offers the session of its last
// connection). The result also gives this process's CPU over the run (the generator's
// own share, which matters when it shares cores with what it measures).

import net from 'node:net';
import tls from 'node:tls';
import * as hdr from 'hdr-histogram-js';
import { ResponseParser, type ResponseHandler } from '../../src/upstream/http1-parser.js';

export type ConnMode = 'new' | 'keep-alive';

export interface ConnLoopOptions {
  readonly port: number;
  readonly mode: ConnMode;
  readonly lanes: number;
  readonly durationMs: number;
  readonly path?: string;
  readonly host?: string;
  /** A request that has no complete response after this long is an error (default 10 s). */
  readonly timeoutMs?: number;
  /** Speak TLS on every connection; absent: plaintext. */
  readonly tls?: ConnLoopTls;
}

export interface ConnLoopTls {
  /** PEM: the CA that signed the server's certificate (verified, with `servername`). */
  readonly ca: string | Buffer;
  /** SNI and the name the server's certificate must carry. */
  readonly servername: string;
  /** PEM client certificate chain and key (mTLS); absent: none presented. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** 'new' mode: offer each lane's last session (resumption) instead of a full handshake. */
  readonly resume?: boolean;
}

export interface ConnLoopResult {
  readonly mode: ConnMode;
  /** Complete 2xx responses per second of measured time. */
  readonly rps: number;
  readonly requests: number;
  readonly errors: number;
  /** Error kinds and counts ("ECONNRESET", "status 502", "timeout", …). */
  readonly errorKinds: Readonly<Record<string, number>>;
  /** TCP connections opened. */
  readonly connections: number;
  /** TLS connections whose handshake resumed a session (0 without `tls`). */
  readonly resumed: number;
  /** This process's CPU time over the run, % of one core (user + system, every thread). */
  readonly cpuPct: number;
  /** Microseconds. */
  readonly p50: number;
  readonly p99: number;
  readonly mean: number;
}

/** The request a lane sends: `Connection: close` in 'new' mode. */
export function requestHead(mode: ConnMode, path = '/', host = 'bench'): string {
  return `GET ${path} HTTP/1.1\r\nhost: ${host}\r\n${mode === 'new' ? 'connection: close\r\n' : ''}\r\n`;
}

export async function runConnLoop(o: ConnLoopOptions): Promise<ConnLoopResult> {
  const head = requestHead(o.mode, o.path, o.host);
  const timeoutMs = o.timeoutMs ?? 10_000;
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const errorKinds: Record<string, number> = {};
  let requests = 0;
  let errors = 0;
  let connections = 0;
  let resumed = 0;
  const context = o.tls === undefined ? null : tls.createSecureContext({ ca: o.tls.ca, cert: o.tls.cert, key: o.tls.key });
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const end = start + o.durationMs;
  const error = (kind: string): void => {
    errors++;
    errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
  };

  const lane = (): Promise<void> =>
    new Promise<void>((resolveLane) => {
      let socket: net.Socket | null = null;
      let sentAt = 0;
      let inFlight = false;
      let timer: NodeJS.Timeout | null = null;
      const parser = new ResponseParser();
      let status = 0;
      let session: Buffer | undefined;

      const settle = (ok: boolean, kind?: string): void => {
        if (!inFlight) return;
        inFlight = false;
        if (timer !== null) clearTimeout(timer);
        timer = null;
        if (ok) {
          requests++;
          histogram.recordValue(Math.max(1, Math.round((performance.now() - sentAt) * 1000)));
        } else {
          error(kind ?? 'error');
        }
        // A fresh connection for the next request in 'new' mode, and after any error.
        if (o.mode === 'new' || !ok || !parser.keepAlive) {
          socket?.destroy();
          socket = null;
        }
        if (performance.now() >= end) {
          socket?.destroy();
          resolveLane();
        } else {
          // setImmediate: a lane never recurses deeper than one turn of the loop.
          setImmediate(next);
        }
      };

      const handler: ResponseHandler = {
        onHead(s) {
          status = s;
        },
        onBody() {},
        onComplete() {
          settle(status >= 200 && status < 300, `status ${status}`);
        },
      };

      const connect = (): net.Socket => {
        if (o.tls === undefined || context === null) return net.connect({ port: o.port, host: '127.0.0.1', noDelay: true });
        const s = tls.connect({
          port: o.port,
          host: '127.0.0.1',
          servername: o.tls.servername,
          secureContext: context,
          ALPNProtocols: ['http/1.1'],
          ...(o.tls.resume === true && session !== undefined ? { session } : {}),
        });
        s.setNoDelay(true);
        s.on('secureConnect', () => {
          if (s.isSessionReused()) resumed++;
        });
        if (o.tls.resume === true) s.on('session', (b: Buffer) => (session = b));
        return s;
      };

      const open = (): net.Socket => {
        connections++;
        const s = connect();
        s.on('data', (buf: Buffer) => {
          if (s !== socket) return;
          try {
            parser.execute(buf);
          } catch {
            settle(false, 'malformed response');
          }
        });
        s.on('error', (err: NodeJS.ErrnoException) => {
          if (s === socket) settle(false, err.code ?? 'socket error');
        });
        s.on('close', () => {
          if (s !== socket) return;
          if (parser.endsAtClose) parser.finishAtClose();
          else settle(false, 'closed before the response');
        });
        return s;
      };

      function next(): void {
        inFlight = true;
        status = 0;
        sentAt = performance.now();
        timer = setTimeout(() => settle(false, 'timeout'), timeoutMs);
        parser.start(handler, false);
        if (socket === null) socket = open();
        socket.write(head);
      }
      next();
    });

  await Promise.all(Array.from({ length: o.lanes }, lane));
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  return {
    mode: o.mode,
    rps: requests / seconds,
    requests,
    errors,
    errorKinds,
    connections,
    resumed,
    cpuPct: Math.round((cpu.user + cpu.system) / 1e4 / seconds),
    p50: histogram.getValueAtPercentile(50),
    p99: histogram.getValueAtPercentile(99),
    mean: Math.round(histogram.mean),
  };
}
