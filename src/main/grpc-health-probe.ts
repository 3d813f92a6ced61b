// One gRPC health check probe (Envoy's grpc_health_check): a unary call to
// `grpc.health.v1.Health/Check` over a new HTTP/2 connection (h2c, or h2 by ALPN with the
// cluster's TLS options), with a deadline. The endpoint passes when the call ends with
// grpc-status 0 and the answer says SERVING. The messages are small enough to encode by
// hand (HealthCheckRequest: field 1, string; HealthCheckResponse: field 1, enum).

import http2 from 'node:http2';
import type { Agent } from 'node:http';
import tls from 'node:tls';
import type { HealthCheck } from '../config/types.js';
import { describeError, type ProbeResult, type RunningProbe } from './health-probe.js';

const USER_AGENT = 'remora-health-check';
/** HealthCheckResponse.ServingStatus names, by number. */
const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

export interface GrpcProbeTarget {
  readonly address: string;
  readonly port: number;
  /** The cluster's https.Agent (its TLS options are used), or null for h2c. */
  readonly tlsAgent: Agent | null;
}

/** A HealthCheckRequest { service } in a gRPC message frame. */
export function healthCheckRequestFrame(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const msg = name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(name.length), name]);
  const frame = Buffer.alloc(5 + msg.length);
  frame.writeUInt32BE(msg.length, 1);
  msg.copy(frame, 5);
  return frame;
}

/** The ServingStatus of a HealthCheckResponse message frame; -1 when it cannot be read. */
export function servingStatus(body: Buffer): number {
  if (body.length < 5 || body[0] !== 0) return -1; // compressed or short: not ours to read
  const len = body.readUInt32BE(1);
  if (body.length < 5 + len) return -1;
  const msg = body.subarray(5, 5 + len);
  let status = 0; // proto3: an absent field is its default, UNKNOWN
  for (let i = 0; i < msg.length; ) {
    const tag = msg[i++];
    const [value, next] = readVarint(msg, i);
    if (next < 0) return -1;
    if ((tag & 7) === 0) {
      if (tag >> 3 === 1) status = value;
      i = next;
    } else if ((tag & 7) === 2) {
      i = next + value; // a length-delimited field we do not know
    } else {
      return -1;
    }
  }
  return status;
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

function readVarint(b: Buffer, at: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (let i = at; i < b.length && shift < 35; i++) {
    value |= (b[i] & 0x7f) << shift;
    if ((b[i] & 0x80) === 0) return [value >>> 0, i + 1];
    shift += 7;
  }
  return [0, -1];
}

/** Starts one gRPC probe; `done` is called exactly once unless the probe is cancelled. */
export function grpcProbe(target: GrpcProbeTarget, settings: HealthCheck, done: (result: ProbeResult) => void): RunningProbe {
  const grpc = settings.grpc!;
  let finished = false;
  const host = target.address.includes(':') ? `[${target.address}]` : target.address;
  const authority = `${target.tlsAgent === null ? 'http' : 'https'}://${host}:${target.port}`;
  const tlsOptions = target.tlsAgent === null ? null : (target.tlsAgent as Agent & { options: tls.ConnectionOptions }).options;
  const session = http2.connect(authority, tlsOptions === null ? {} : {
    // The agent offers h2 by ALPN (src/main/health-checker.ts), or the cluster's own list.
    createConnection: () => tls.connect({ ...tlsOptions, host: target.address, port: target.port }),
  });
  const deadline = setTimeout(() => finish({ pass: false, status: 0, error: `timeout after ${settings.timeout_ms} ms`, kind: 'timeout' }), settings.timeout_ms);
  deadline.unref();

  function finish(result: ProbeResult): void {
    if (finished) return;
    finished = true;
    clearTimeout(deadline);
    session.destroy();
    done(result);
  }

  session.on('error', (err) => finish({ pass: false, status: 0, error: describeError(err), kind: 'network' }));
  session.on('connect', () => session.socket?.unref());
  try {
    const req = session.request({
      ':method': 'POST',
      ':path': '/grpc.health.v1.Health/Check',
      ':authority': grpc.authority ?? settings.host,
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': USER_AGENT,
    });
    let status = 0;
    let grpcStatus: string | null = null;
    const chunks: Buffer[] = [];
    req.on('response', (headers) => {
      status = Number(headers[':status']);
      if (headers['grpc-status'] !== undefined) grpcStatus = String(headers['grpc-status']);
    });
    req.on('trailers', (trailers) => {
      if (trailers['grpc-status'] !== undefined) grpcStatus = String(trailers['grpc-status']);
    });
    req.on('data', (chunk: Buffer) => {
      if (chunks.length < 16) chunks.push(chunk);
    });
    req.on('error', (err) => finish({ pass: false, status, error: describeError(err), kind: 'network' }));
    req.on('end', () => {
      if (status !== 200) return finish({ pass: false, status, error: `status ${status}`, kind: 'status' });
      if (grpcStatus !== '0') return finish({ pass: false, status, error: `grpc-status ${grpcStatus ?? 'missing'}`, kind: 'status' });
      const serving = servingStatus(Buffer.concat(chunks));
      if (serving === 1) return finish({ pass: true, status, error: '', kind: null });
      finish({ pass: false, status, error: serving < 0 ? 'unreadable health check response' : `health status ${SERVING_STATUS[serving] ?? serving}`, kind: 'status' });
    });
    req.end(healthCheckRequestFrame(grpc.service_name));
  } catch (err) {
    finish({ pass: false, status: 0, error: describeError(err), kind: 'network' });
  }
  return {
    cancel(): void {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      session.destroy();
    },
  };
}
