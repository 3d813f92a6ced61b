// Unit tests for health-aware endpoint picking (ClusterRuntime.pick in
// src/upstream/cluster.ts) against a real shared-state buffer: the main thread's
// EndpointStateWriter sets endpoint states and bumps the cluster's health generation;
// pick() rebuilds its healthy list only when the generation moved. Covers skipping
// ejected / unhealthy / pending endpoints, probation trials, panic mode, `avoid`, and
// update() keeping the pools of endpoints that stay. pick() never connects, so the
// endpoint ports need not listen.

import t from 'tap';
import type { Cluster, LbPolicy } from '../../src/config/types.js';
import { ClusterResources, EndpointCell, EndpointState, EndpointStateWriter, SHARED_LAYOUT } from '../../src/shared/shared-state.js';
import { NO_CLUSTER_STATS } from '../../src/stats/recorder.js';
import { ClusterRuntime, type SharedSlots } from '../../src/upstream/cluster.js';
import type { EndpointPool } from '../../src/upstream/pool.js';

const PORT0 = 10_000;

function config(ports: readonly number[], over: Partial<Cluster> = {}): Cluster {
  return {
    name: 'api',
    lb_policy: 'round_robin',
    protocol: 'http1',
    http2_protocol_options: { max_concurrent_streams: 100, initial_stream_window_size: 65_535, initial_connection_window_size: 1_048_576 },
    endpoints: ports.map((port) => ({ address: '127.0.0.1', port })),
    connect_timeout_ms: 1000,
    idle_timeout_ms: 60_000,
    max_connections_per_endpoint: 1024,
    max_requests_per_connection: 0,
    circuit_breakers: { max_connections: 1024, max_pending_requests: 1024, max_requests: 1024, max_retries: 3 },
    panic_threshold_percent: 50,
    ...over,
  };
}

interface Rig {
  readonly cluster: ClusterRuntime;
  readonly cells: Int32Array;
  readonly writer: EndpointStateWriter;
  readonly shared: SharedSlots;
  /** Sets endpoint i's state word (and probation tokens); does NOT bump the generation. */
  set(i: number, state: number, tokens?: number): void;
  bump(): void;
  /** Endpoint index (port − PORT0) of `n` picks; -1 for a null pick. */
  picks(n: number, avoid?: readonly EndpointPool[] | null): number[];
  pool(i: number): EndpointPool;
}

/** A cluster of `count` endpoints: endpoint i is 127.0.0.1:(PORT0 + i) in slot i, cluster slot 0. */
function rig(t: { teardown(fn: () => void): void }, count = 4, over: Partial<Cluster> = {}): Rig {
  const cells = new Int32Array(SHARED_LAYOUT.allocate());
  const writer = new EndpointStateWriter(cells);
  const resources = new ClusterResources(cells, 0);
  const shared: SharedSlots = {
    cells,
    clusterSlot: 0,
    endpointSlot(key: string): number {
      const port = Number(key.slice(key.lastIndexOf(':') + 1));
      if (!key.startsWith('127.0.0.1:') || !(port >= PORT0)) throw new Error(`unexpected endpoint key ${key}`);
      return port - PORT0;
    },
  };
  const cluster = new ClusterRuntime(
    config(
      Array.from({ length: count }, (_, i) => PORT0 + i),
      over,
    ),
    NO_CLUSTER_STATS,
    shared,
  );
  t.teardown(() => cluster.close());
  const index = (p: EndpointPool | null): number => (p === null ? -1 : p.endpoint.port - PORT0);
  return {
    cluster,
    cells,
    writer,
    shared,
    set: (i, state, tokens = 0) => writer.setState(i, state, tokens),
    bump: () => resources.bumpHealthGeneration(),
    picks: (n, avoid = null) => Array.from({ length: n }, () => index(cluster.pick(avoid))),
    pool(i) {
      const p = cluster.pools.find((x) => x.endpoint.port === PORT0 + i);
      if (p === undefined) throw new Error(`no pool for endpoint ${i}`);
      return p;
    },
  };
}

/** How often each endpoint index 0..n-1 occurs. */
const histogram = (picks: readonly number[], n: number): number[] => {
  const out = new Array<number>(n).fill(0);
  for (const p of picks) if (p >= 0 && p < n) out[p]++;
  return out;
};

t.test('all healthy: round robin over every endpoint', async (t) => {
  const r = rig(t);
  const got = r.picks(8);
  t.same(got, [0, 1, 2, 3, 0, 1, 2, 3], `round robin 0,1,2,3,0,1,2,3: got ${got.join(',')}`);
  t.equal(r.cluster.inPanic, false, 'not in panic with every endpoint healthy');
  t.equal(r.cluster.pools.length, 4, `four pools: got ${r.cluster.pools.length}`);
  t.same(
    r.cluster.pools.map((p) => p.cells.slot),
    [0, 1, 2, 3],
    `endpoint i uses shared slot i: got ${r.cluster.pools.map((p) => p.cells.slot).join(',')}`,
  );
});

t.test('an ejected endpoint is skipped once the health generation is bumped', async (t) => {
  const r = rig(t);
  r.picks(4); // builds the healthy list at generation 0
  r.set(1, EndpointState.Ejected);
  const cached = r.picks(8);
  t.same(histogram(cached, 4), [2, 2, 2, 2], `without a bump the cached list (all 4) is used — that is the contract: got ${cached.join(',')}`);
  r.bump();
  const after = r.picks(9);
  t.same(histogram(after, 4), [3, 0, 3, 3], `after the bump endpoint 1 is skipped, 0/2/3 share the picks: got ${after.join(',')}`);
  t.equal(r.cluster.inPanic, false, '3 of 4 healthy (75%) is not panic at 50%');
  r.set(1, 0);
  const stale = r.picks(6);
  t.equal(histogram(stale, 4)[1], 0, `healthy again but no bump: still skipped (got ${stale.join(',')})`);
  r.bump();
  const back = r.picks(8);
  t.same(histogram(back, 4), [2, 2, 2, 2], `bumped: endpoint 1 is back in rotation: got ${back.join(',')}`);

  // A runtime that never picked rebuilds on its first pick, bump or not.
  const fresh = rig(t);
  fresh.set(2, EndpointState.Ejected);
  const first = fresh.picks(6);
  t.equal(histogram(first, 4)[2], 0, `the first pick builds the list from the current states: endpoint 2 skipped (got ${first.join(',')})`);
});

t.test('unhealthy and pending endpoints are skipped', async (t) => {
  const r = rig(t);
  r.set(0, EndpointState.Unhealthy);
  r.set(2, EndpointState.Pending);
  r.bump();
  const got = r.picks(8);
  t.same(got, [1, 3, 1, 3, 1, 3, 1, 3], `only endpoints 1 and 3: got ${got.join(',')}`);
  t.equal(r.cluster.inPanic, false, 'exactly 50% healthy is not below a 50% panic threshold');
  r.set(0, EndpointState.Unhealthy | EndpointState.Ejected);
  r.set(2, 0);
  r.bump();
  const mixed = r.picks(6);
  t.same(histogram(mixed, 4), [0, 2, 2, 2], `combined bits (unhealthy|ejected) are skipped too; 2 is back: got ${mixed.join(',')}`);
});

t.test('a probation endpoint gets exactly `tokens` trial picks first, then is skipped', async (t) => {
  const r = rig(t);
  r.set(2, EndpointState.Probation, 3);
  r.bump();
  const got = r.picks(11);
  t.same(got.slice(0, 3), [2, 2, 2], `the first 3 picks are the trials on endpoint 2: got ${got.join(',')}`);
  t.same(histogram(got.slice(3), 4), [3, 3, 0, 2], `then endpoint 2 is skipped, 0/1/3 round robin: got ${got.slice(3).join(',')}`);
  const left = r.writer.read(2, EndpointCell.ProbationTokens);
  t.equal(left, 0, `all trial tokens taken: expected 0, got ${left}`);
  // The main thread hands out more trials (it refills a trial that never reported back).
  r.set(2, EndpointState.Probation, 1);
  const refill = r.picks(2);
  t.equal(refill[0], 2, `a refilled token is used by the next pick: got ${refill.join(',')}`);
  t.not(refill[1], 2, `one token, one trial: got ${refill.join(',')}`);
  // `avoid` (the endpoint a retry just failed on) does not take a trial.
  r.set(2, EndpointState.Probation, 2);
  const avoided = r.picks(4, [r.pool(2)]);
  t.equal(histogram(avoided, 4)[2], 0, `with endpoint 2 avoided its trials are not used: got ${avoided.join(',')}`);
  t.equal(r.writer.read(2, EndpointCell.ProbationTokens), 2, `its 2 tokens are left: got ${r.writer.read(2, EndpointCell.ProbationTokens)}`);
  t.equal(r.cluster.pick()?.endpoint.port, PORT0 + 2, 'without avoid the next pick takes a trial');
});

t.test('panic: too few healthy endpoints spread picks over all of them', async (t) => {
  const r = rig(t, 4, { panic_threshold_percent: 50 });
  for (const i of [0, 1, 3]) r.set(i, EndpointState.Ejected);
  r.bump();
  t.equal(r.cluster.inPanic, true, '1 of 4 healthy (25%) is below 50%: panic');
  const got = r.picks(12);
  t.same(histogram(got, 4), [3, 3, 3, 3], `picks spread over all 4 endpoints, ejected ones included: got ${got.join(',')}`);
  for (const i of [0, 1, 2, 3]) r.set(i, EndpointState.Ejected);
  r.bump();
  const all = r.picks(8);
  t.same(histogram(all, 4), [2, 2, 2, 2], `all ejected, panic threshold 50: still all 4: got ${all.join(',')}`);
  r.set(1, EndpointState.Probation, 5);
  r.bump();
  const probationInPanic = r.picks(8);
  t.same(histogram(probationInPanic, 4), [2, 2, 2, 2], `in panic, probation trials are not handed out first: got ${probationInPanic.join(',')}`);
  t.equal(r.writer.read(1, EndpointCell.ProbationTokens), 5, 'no trial token taken in panic');
  for (const i of [0, 1, 3]) r.set(i, 0);
  r.bump();
  t.equal(r.cluster.inPanic, false, 'healthy again: panic over');
});

t.test('panic_threshold_percent 0: all endpoints out → null', async (t) => {
  const r = rig(t, 4, { panic_threshold_percent: 0 });
  r.set(0, EndpointState.Ejected);
  r.set(1, EndpointState.Unhealthy);
  r.set(2, EndpointState.Pending);
  r.set(3, EndpointState.Ejected);
  r.bump();
  t.equal(r.cluster.inPanic, false, 'panic is disabled');
  const got = r.picks(3);
  t.same(got, [-1, -1, -1], `no endpoint may be used: pick() returns null: got ${got.join(',')}`);
  r.set(3, EndpointState.Probation, 1);
  r.bump();
  const trial = r.picks(2);
  t.same(trial, [3, -1], `one probation trial, then null again: got ${trial.join(',')}`);
});

t.test('avoid is not returned when another endpoint is available', async (t) => {
  for (const policy of ['round_robin', 'random', 'least_request'] as LbPolicy[]) {
    const r = rig(t, 4, { lb_policy: policy });
    const avoid = [r.pool(1)];
    const got = r.picks(2000, avoid);
    const h = histogram(got, 4);
    t.equal(h[1], 0, `${policy}: the avoided endpoint 1 is never picked: picked ${h[1]} times of 2000 (${h.join('/')})`);
    t.ok(h[0] > 0 && h[2] > 0 && h[3] > 0, `${policy}: the other endpoints all get picks (${h.join('/')})`);
  }
  const r = rig(t, 4, { panic_threshold_percent: 0 });
  for (const i of [0, 2, 3]) r.set(i, EndpointState.Ejected);
  r.bump();
  const lone = r.picks(3, [r.pool(1)]);
  t.same(lone, [1, 1, 1], `the avoided endpoint is still returned when it is the only one left: got ${lone.join(',')}`);
});

t.test('every endpoint tried before is avoided (Envoy\'s previous_hosts), while one is left', async (t) => {
  for (const policy of ['round_robin', 'random', 'least_request'] as LbPolicy[]) {
    const r = rig(t, 4, { lb_policy: policy });
    const got = r.picks(2000, [r.pool(0), r.pool(2), r.pool(3)]);
    t.same(histogram(got, 4), [0, 2000, 0, 0], `${policy}: three of four tried: every pick is the fourth (${histogram(got, 4).join('/')})`);
    const all = r.picks(400, [r.pool(0), r.pool(1), r.pool(2), r.pool(3)]);
    t.ok(histogram(all, 4).every((n) => n > 0), `${policy}: all tried: the balancer's picks stand (${histogram(all, 4).join('/')})`);
  }
});

t.test('update() keeps pools across config changes that keep the HTTP version choice; a new choice gets new pools', async (t) => {
  for (const protocol of ['http1', 'http2', 'downstream', 'auto'] as const) {
    const r = rig(t, 2, { protocol });
    const before = [r.pool(0), r.pool(1)];
    r.cluster.update(config([PORT0, PORT0 + 1], { protocol, idle_timeout_ms: 5000 }), NO_CLUSTER_STATS, r.shared);
    t.ok(r.pool(0) === before[0] && r.pool(1) === before[1], `protocol ${protocol}: an update that keeps it keeps the pools (and their connections)`);
  }
  const r = rig(t, 2, { protocol: 'http1' });
  const before = r.pool(0);
  r.cluster.update(config([PORT0, PORT0 + 1], { protocol: 'http2' }), NO_CLUSTER_STATS, r.shared);
  t.not(r.pool(0), before, 'http1 → http2: a new pool');
});

t.test('update() keeps the pools of endpoints that stay', async (t) => {
  const r = rig(t);
  const before = [0, 1, 2, 3].map((i) => r.pool(i));
  r.picks(4);
  // Endpoint 3 is ejected without a bump; update() must rebuild anyway.
  r.set(3, EndpointState.Ejected);
  const next = config([PORT0 + 1, PORT0 + 3, PORT0 + 4]);
  r.cluster.update(next, NO_CLUSTER_STATS, r.shared);
  const ports = r.cluster.pools.map((p) => p.endpoint.port - PORT0);
  t.same(ports, [1, 3, 4], `pools follow the new endpoint order: got ${ports.join(',')}`);
  t.equal(r.pool(1), before[1], 'endpoint 1 keeps its pool object');
  t.equal(r.pool(3), before[3], 'endpoint 3 keeps its pool object');
  t.notOk(before.includes(r.pool(4)), 'endpoint 4 gets a new pool');
  t.equal(r.pool(4).cells.slot, 4, `the new endpoint uses slot 4: got ${r.pool(4).cells.slot}`);
  t.equal(r.cluster.config, next, 'the runtime holds the new config');
  const got = r.picks(6);
  t.same(histogram(got, 5), [0, 3, 0, 0, 3], `picks over the new list, ejected endpoint 3 skipped after update() without a bump: got ${got.join(',')}`);
});
