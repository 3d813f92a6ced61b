// @grpc/grpc-js, loaded on first use rather than with the modules that can use it: a
// sidecar that speaks no gRPC to its control plane, trace collector or access log
// service never loads it (several MB of the main thread's heap).

import type * as Grpc from '@grpc/grpc-js';
import { createRequire } from 'node:module';

let grpcModule: typeof Grpc | null = null;

/** The @grpc/grpc-js module (required the first time). */
export function loadGrpc(): typeof Grpc {
  return (grpcModule ??= createRequire(import.meta.url)('@grpc/grpc-js') as typeof Grpc);
}
