// One TCP health check probe (Envoy's tcp_health_check): a new connection to the endpoint
// (TLS with the cluster's options when it has them), the `send` bytes written, and a pass
// once everything read contains the `receive` blocks in order (Envoy's fuzzy match: each
// block found after the previous one, not necessarily next to it), or at once when there
// are none (connect only). The connection is closed after every check, as Envoy does
// without reuse_connection. The match is health-payload.ts, shared with HTTP checks.

import net from 'node:net';
import tls from 'node:tls';
import type { Agent } from 'node:https';
import type { HealthCheck } from '../config/types.js';
import { describeError, type ProbeResult, type RunningProbe } from './health-probe.js';
import { containsInOrder, payloadBytes } from './health-payload.js';

export interface TcpProbeTarget {
  readonly address: string;
  readonly port: number;
  /** The cluster's https.Agent (its TLS options are used), or null for plaintext. */
  readonly tlsAgent: Agent | null;
}

/** Largest answer kept while waiting for a match (what a check may read in all). */
const MAX_READ = 64 * 1024;

/** Starts one probe; `done` is called exactly once unless the probe is cancelled. */
export function tcpProbe(target: TcpProbeTarget, settings: HealthCheck, done: (result: ProbeResult) => void): RunningProbe {
  const tcp = settings.tcp!;
  const blocks = payloadBytes(tcp.receive);
  let finished = false;
  let read = Buffer.alloc(0);
  const socket: net.Socket = target.tlsAgent === null
    ? net.connect({ host: target.address, port: target.port })
    // The cluster's TLS options, without the HTTP/1.1 ALPN its HTTP checks offer.
    : tls.connect({ ...(target.tlsAgent.options as tls.ConnectionOptions), ALPNProtocols: undefined, host: target.address, port: target.port });
  socket.unref();
  const deadline = setTimeout(() => {
    finish({ pass: false, status: 0, error: `timeout after ${settings.timeout_ms} ms${blocks.length > 0 ? ` (${read.length} bytes read, no match)` : ''}`, kind: 'timeout' });
  }, settings.timeout_ms);
  deadline.unref();

  function finish(result: ProbeResult): void {
    if (finished) return;
    finished = true;
    clearTimeout(deadline);
    socket.destroy();
    done(result);
  }

  socket.once(target.tlsAgent === null ? 'connect' : 'secureConnect', () => {
    if (tcp.send !== undefined) socket.write(Buffer.from(tcp.send, 'hex'));
    if (blocks.length === 0) finish({ pass: true, status: 0, error: '', kind: null });
  });
  socket.on('data', (chunk: Buffer) => {
    if (finished) return;
    read = Buffer.concat([read, chunk]);
    if (read.length > MAX_READ) read = read.subarray(-MAX_READ);
    if (containsInOrder(read, blocks)) finish({ pass: true, status: 0, error: '', kind: null });
  });
  socket.on('end', () => {
    finish({ pass: false, status: 0, error: `connection closed by the endpoint after ${read.length} bytes, no match`, kind: 'network' });
  });
  socket.on('error', (err) => finish({ pass: false, status: 0, error: describeError(err), kind: 'network' }));
  socket.on('close', () => finish({ pass: false, status: 0, error: 'connection closed', kind: 'network' }));
  return {
    cancel(): void {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      socket.destroy();
    },
  };
}
