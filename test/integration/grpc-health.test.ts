// gRPC active health checks against real @grpc/grpc-js servers that implement
// grpc.health.v1.Health/Check: an endpoint answering SERVING is healthy, one switched to
// NOT_SERVING is taken out (and gets no calls), and comes back when it serves again; an
// endpoint that does not implement the health service (UNIMPLEMENTED) is unhealthy.

import { createRequire } from 'node:module';
import t from 'tap';
import { admin, routesConfig, startRemora, waitUntil } from '../helpers/remora.js';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js') as typeof import('@grpc/grpc-js');

const raw = (b: Buffer): Buffer => b;
const unary = (path: string) => ({
  path, requestStream: false, responseStream: false,
  requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw,
});

/** A gRPC server with an Echo method and, unless `health` is false, the health service
 *  answering `state.serving` (1 SERVING, 2 NOT_SERVING) for every service name. */
async function server(name: string, health = true) {
  const state = { serving: 1, checks: 0, services: [] as string[], calls: 0 };
  const s = new grpc.Server();
  s.addService({ echo: unary('/demo.Demo/Echo') }, {
    echo: (call: { request: Buffer }, cb: (e: null, v: Buffer) => void) => {
      state.calls++;
      cb(null, Buffer.from(`${name}:${call.request.toString()}`));
    },
  } as never);
  if (health) {
    s.addService({ check: unary('/grpc.health.v1.Health/Check') }, {
      check: (call: { request: Buffer }, cb: (e: null, v: Buffer) => void) => {
        state.checks++;
        // HealthCheckRequest: field 1 (service), a string.
        const req = call.request;
        state.services.push(req.length > 2 ? req.subarray(2, 2 + req[1]).toString() : '');
        cb(null, Buffer.from([0x08, state.serving]));
      },
    } as never);
  }
  const port = await new Promise<number>((resolve, reject) =>
    s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { port, state, close: () => new Promise<void>((r) => s.tryShutdown(() => r())) };
}

t.test('gRPC health checks mark endpoints by grpc.health.v1 answers', async (t) => {
  const a = await server('a');
  const b = await server('b');
  const none = await server('none', false);
  const config = routesConfig(
    [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'svc' } }],
    [{
      name: 'svc',
      protocol: 'http2',
      panic_threshold_percent: 0, // two of three out: still route around them
      endpoints: [a, b, none].map((s) => ({ address: '127.0.0.1', port: s.port })),
      health_check: { grpc: { service_name: 'demo.Demo' }, interval_ms: 100, no_traffic_interval_ms: 100, timeout_ms: 500, unhealthy_threshold: 2, healthy_threshold: 2 },
    }],
  );
  const remora = await startRemora(config);
  const Client = grpc.makeGenericClientConstructor({ echo: unary('/demo.Demo/Echo') }, 'Demo');
  const client = new Client(`127.0.0.1:${remora.ports.main}`, grpc.credentials.createInsecure()) as unknown as {
    echo(req: Buffer, cb: (err: Error | null, res?: Buffer) => void): void;
    close(): void;
  };
  t.teardown(async () => {
    client.close();
    await remora.stop();
    await Promise.all([a.close(), b.close(), none.close()]);
  });
  const health = async (port: number): Promise<string> => {
    const body = JSON.parse((await admin(remora.adminPort, '/clusters')).text) as { clusters: { name: string; endpoints: { port: number; health: string }[] }[] };
    return body.clusters.find((c) => c.name === 'svc')!.endpoints.find((e) => e.port === port)!.health;
  };
  const call = () => new Promise<string>((resolve, reject) => client.echo(Buffer.from('x'), (err, res) => (err ? reject(err) : resolve(res!.toString()))));

  await waitUntil('a and b healthy', async () => (await health(a.port)) === 'healthy' && (await health(b.port)) === 'healthy');
  await waitUntil('the endpoint without the health service unhealthy', async () => (await health(none.port)) === 'unhealthy');
  t.ok(a.state.checks > 0 && b.state.checks > 0, `checks reached a (${a.state.checks}) and b (${b.state.checks})`);
  t.equal(a.state.services[0], 'demo.Demo', 'the check asks about service_name');

  b.state.serving = 2; // NOT_SERVING
  await waitUntil('b unhealthy once it says NOT_SERVING', async () => (await health(b.port)) === 'unhealthy');
  const before = { a: a.state.calls, b: b.state.calls, none: none.state.calls };
  const answers = [];
  for (let i = 0; i < 20; i++) answers.push(await call());
  t.ok(answers.every((x) => x === 'a:x'), `every call went to a while b and "none" are unhealthy (saw ${[...new Set(answers)].join(', ')})`);
  t.equal(b.state.calls - before.b, 0, 'b got no calls');
  t.equal(none.state.calls - before.none, 0, '"none" got no calls');

  b.state.serving = 1;
  await waitUntil('b healthy again', async () => (await health(b.port)) === 'healthy');
  for (let i = 0; i < 20; i++) await call();
  t.ok(b.state.calls - before.b > 0, `b takes calls again (${b.state.calls - before.b})`);

  // Every call above ended with grpc-status 0: counted per cluster and status.
  const stats = (await admin(remora.adminPort, '/stats?filter=grpc')).text;
  const ok = Number(/^cluster\.svc\.grpc\.upstream_rq_0: (\d+)$/m.exec(stats)?.[1] ?? -1);
  t.equal(ok, 40, `cluster.svc.grpc.upstream_rq_0 counts the 40 calls (saw ${ok}; /stats: ${stats.trim().split('\n').length} lines)`);
  const metrics = (await admin(remora.adminPort, '/metrics')).text;
  t.match(metrics, /^remora_upstream_grpc_responses_total\{cluster="svc",grpc_status="0"\} 40$/m, 'and in Prometheus by grpc_status');
});
