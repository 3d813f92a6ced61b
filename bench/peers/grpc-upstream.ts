// A gRPC upstream for the HTTP/2 benchmarks: @grpc/grpc-js serving /bench.Echo/Unary,
// which answers each request with its own bytes (raw serializers: no protobuf work).
// Prints its port on stdout.
//
//   node dist/bench/peers/grpc-upstream.js

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js') as typeof import('@grpc/grpc-js');

const raw = (b: Buffer): Buffer => b;
const server = new grpc.Server();
server.addService(
  { unary: { path: '/bench.Echo/Unary', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
  { unary: (call: { request: Buffer }, cb: (err: null, res: Buffer) => void) => cb(null, call.request) } as never,
);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err !== null) throw err;
  process.stdout.write(`${port}\n`);
});
