// The main thread loads @grpc/grpc-js only when something speaks gRPC (xDS, OTLP/gRPC
// traces, the gRPC access log service): importing the sidecar's main-thread entry loads
// none of it, so a sidecar on a file config without those pays no memory for it.

import Module from 'node:module';
import t from 'tap';

t.test('importing the main thread loads no @grpc/grpc-js module', async (t) => {
  await import('../../src/main/remora.js');
  const cache = (Module as unknown as { _cache: Record<string, unknown> })._cache;
  const grpc = Object.keys(cache).filter((k) => k.includes('@grpc/grpc-js'));
  t.same(grpc, [], `expected no @grpc/grpc-js module loaded, saw ${grpc.length} (${grpc.slice(0, 3).join(', ')})`);
  const { loadGrpc } = await import('../../src/core/grpc-module.js');
  t.equal(typeof loadGrpc().Client, 'function', 'and loadGrpc() loads it when asked');
});
