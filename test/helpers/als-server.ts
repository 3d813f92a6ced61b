// A test gRPC access log service on 127.0.0.1 (port 0, or a given port to come back on):
// envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs implemented with
// @grpc/grpc-js, its messages decoded by @grpc/proto-loader from Envoy's own protos (the
// grpc-js-xds deps, the include dirs src/xds/protos.ts uses), never by Remora's encoder.
// Plain or TLS (mutual with a client CA). Records every message of every stream, in order.

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { createRequire } from 'node:module';
import path from 'node:path';

/** A decoded message (keepCase, longs and enums as strings, defaults left out). */
export type AlsObj = Record<string, unknown>;

export interface AlsStreamRecord {
  readonly messages: AlsObj[];
  ended: boolean;
}

export interface AlsServer {
  readonly port: number;
  readonly streams: AlsStreamRecord[];
  /** Every HTTPAccessLogEntry received, across streams, in order. */
  entries(): AlsObj[];
  /** Stops at once (open streams are cancelled). */
  close(): Promise<void>;
}

let definition: protoLoader.PackageDefinition | null = null;

/** The AccessLogService definition (loaded once). */
export function alsDefinition(): protoLoader.PackageDefinition {
  if (definition !== null) return definition;
  const require = createRequire(import.meta.url);
  const deps = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  const includeDirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(deps, d));
  definition = protoLoader.loadSync(['envoy/service/accesslog/v3/als.proto'], { keepCase: true, longs: String, enums: String, defaults: false, oneofs: false, includeDirs });
  return definition;
}

/** Decodes a StreamAccessLogsMessage with Envoy's protos (the service's own deserializer). */
export function decodeStreamMessage(bytes: Uint8Array): AlsObj {
  const service = alsDefinition()['envoy.service.accesslog.v3.AccessLogService'] as grpc.ServiceDefinition;
  return service.StreamAccessLogs.requestDeserialize(Buffer.from(bytes)) as AlsObj;
}

/** TLS for the service: its certificate and key, and the CA client certificates must
 *  chain to (mutual TLS) when `ca` is given. PEM. */
export interface AlsTls {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca?: Buffer;
}

export async function startAlsServer(port = 0, tls?: AlsTls): Promise<AlsServer> {
  const def = alsDefinition();
  const service = (def['envoy.service.accesslog.v3.AccessLogService'] as grpc.ServiceDefinition);
  const server = new grpc.Server();
  const streams: AlsStreamRecord[] = [];
  server.addService(service, {
    StreamAccessLogs: (call: grpc.ServerReadableStream<AlsObj, AlsObj>, callback: grpc.sendUnaryData<AlsObj>) => {
      const record: AlsStreamRecord = { messages: [], ended: false };
      streams.push(record);
      call.on('data', (m: AlsObj) => record.messages.push(m));
      call.on('end', () => {
        record.ended = true;
        callback(null, {});
      });
      call.on('error', () => {
        record.ended = true;
      });
    },
  });
  const credentials = tls === undefined
    ? grpc.ServerCredentials.createInsecure()
    : grpc.ServerCredentials.createSsl(tls.ca ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], tls.ca !== undefined);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, credentials, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port: bound,
    streams,
    entries: () =>
      streams.flatMap((s) => s.messages.flatMap((m) => ((m.http_logs as AlsObj | undefined)?.log_entry as AlsObj[] | undefined) ?? [])),
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}
