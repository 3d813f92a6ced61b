// Unit tests for the main thread's outlier detector (src/main/outlier-detector.ts) with a
// fake clock, a fake volume source and a recording `write` callback: consecutive-failure
// ejection, ejection time growth and cap, probation (ok, fail, token refill),
// max_ejection_percent, decay of the ejection count, success-rate ejection, config
// updates and events for unknown slots.

import t from 'tap';
import type { Cluster, OutlierDetection } from '../../src/config/types.js';
import { createLogger } from '../../src/core/log.js';
import { OutlierDetector, type VolumeSource } from '../../src/main/outlier-detector.js';
import { EndpointState } from '../../src/shared/shared-state.js';
import { endpointKey } from '../../src/upstream/pool.js';

const log = createLogger({ component: 'outlier-detector-test' }, 'silent');

const START = 1_000_000;
const BASE = 1000;
const INTERVAL = 10_000;

function od(over: Partial<OutlierDetection> = {}): OutlierDetection {
  return {
    consecutive_5xx: 5,
    consecutive_gateway_failure: 5,
    interval_ms: INTERVAL,
    base_ejection_time_ms: BASE,
    max_ejection_time_ms: 300_000,
    max_ejection_percent: 100,
    probation_requests: 3,
    success_rate_minimum_hosts: 0,
    success_rate_request_volume: 100,
    success_rate_stdev_factor: 1.9,
    ...over,
  };
}

/** A cluster with endpoints 10.0.<index>.<i>:8080 for each i in `hosts`. */
function cluster(name: string, hosts: readonly number[], detection: OutlierDetection | undefined, index = 0): Cluster {
  return {
    name,
    lb_policy: 'round_robin',
    protocol: 'http1',
    http2_protocol_options: { max_concurrent_streams: 100, initial_stream_window_size: 65_535, initial_connection_window_size: 1_048_576 },
    endpoints: hosts.map((i) => ({ address: `10.0.${index}.${i}`, port: 8080 })),
    connect_timeout_ms: 1000,
    idle_timeout_ms: 60_000,
    max_connections_per_endpoint: 1024,
    max_requests_per_connection: 0,
    circuit_breakers: { max_connections: 1024, max_pending_requests: 1024, max_requests: 1024, max_retries: 3 },
    outlier_detection: detection,
    panic_threshold_percent: 50,
  };
}

class FakeVolumes implements VolumeSource {
  /** Volumes handed out (once) by the next takeVolume of each slot. */
  readonly volumes = new Map<number, { total: number; success: number }>();
  readonly taken: number[] = [];
  readonly resets: number[] = [];

  takeVolume(slot: number): { total: number; success: number } {
    this.taken.push(slot);
    const v = this.volumes.get(slot) ?? { total: 0, success: 0 };
    this.volumes.delete(slot);
    return v;
  }

  resetConsecutive(slot: number): void {
    this.resets.push(slot);
  }
}

interface Write {
  readonly slot: number;
  readonly bits: number;
  readonly tokens: number;
}

const show = (ws: readonly Write[]): string => (ws.length === 0 ? 'none' : ws.map((w) => `(${w.slot},${w.bits},${w.tokens})`).join(' '));

interface Rig {
  readonly det: OutlierDetector;
  readonly clock: { now: number };
  readonly volumes: FakeVolumes;
  readonly writes: Write[];
  /** Slot of `cluster|address:port`; endpoint i of the first cluster gets slot i. */
  slotOf(cluster: string, key: string): number;
  update(clusters: readonly Cluster[]): void;
  /** Moves the clock and runs tick(); returns the writes the tick made. */
  advance(ms: number): Write[];
  /** Writes made since the last call (or since the rig was made). */
  drain(): Write[];
}

function rig(clusters: readonly Cluster[]): Rig {
  const clock = { now: START };
  const volumes = new FakeVolumes();
  const writes: Write[] = [];
  const slots = new Map<string, number>();
  const slotOf = (c: string, key: string): number => {
    const name = `${c}|${key}`;
    let s = slots.get(name);
    if (s === undefined) {
      s = slots.size;
      slots.set(name, s);
    }
    return s;
  };
  const det = new OutlierDetector(log, volumes, (slot, bits, tokens) => writes.push({ slot, bits, tokens }), () => clock.now);
  let seen = 0;
  const r: Rig = {
    det,
    clock,
    volumes,
    writes,
    slotOf,
    update: (cs) => det.update(cs, slotOf, endpointKey),
    advance(ms) {
      clock.now += ms;
      const before = writes.length;
      det.tick();
      seen = writes.length;
      return writes.slice(before);
    },
    drain() {
      const out = writes.slice(seen);
      seen = writes.length;
      return out;
    },
  };
  r.update(clusters);
  return r;
}

const EJECTED: Write = { slot: 0, bits: EndpointState.Ejected, tokens: 0 };

t.test('a consecutive_5xx event ejects the endpoint', async (t) => {
  const r = rig([cluster('api', [0, 1, 2], od())]);
  t.same(r.volumes.resets.sort(), [0, 1, 2], `update() resets the consecutive counters of new endpoints: got ${r.volumes.resets.join(',')}`);
  t.same(r.drain(), [], 'update() writes nothing for fresh endpoints');
  r.det.onEvent(0, 'consecutive_5xx');
  const w = r.drain();
  t.same(w, [EJECTED], `write(0, Ejected, 0): got ${show(w)}`);
  const v = r.det.view(0);
  t.same(
    v,
    { ejected: true, probation: false, timesEjected: 1, ejectedUntil: START + BASE, lastReason: 'consecutive_5xx' },
    `view(0) after the ejection: got ${JSON.stringify(v)}`,
  );
  t.equal(r.det.ejections.consecutive_5xx, 1, `ejections.consecutive_5xx: expected 1, got ${r.det.ejections.consecutive_5xx}`);
  t.equal(r.det.activeEjections('api'), 1, `activeEjections('api'): expected 1, got ${r.det.activeEjections('api')}`);
  t.equal(r.det.activeEjections('nope'), 0, `activeEjections of an unknown cluster: expected 0, got ${r.det.activeEjections('nope')}`);
  r.det.onEvent(0, 'consecutive_5xx');
  r.det.onEvent(0, 'consecutive_gateway');
  t.same(r.drain(), [], 'more failure events for an ejected endpoint write nothing');
  t.equal(r.det.view(0)?.timesEjected, 1, `and do not count as ejections: timesEjected expected 1, got ${r.det.view(0)?.timesEjected}`);

  r.det.onEvent(1, 'consecutive_gateway');
  const g = r.drain();
  t.same(g, [{ slot: 1, bits: EndpointState.Ejected, tokens: 0 }], `consecutive_gateway ejects too: write(1, Ejected, 0), got ${show(g)}`);
  t.equal(r.det.view(1)?.lastReason, 'consecutive_gateway', `reason consecutive_gateway: got ${r.det.view(1)?.lastReason}`);
  t.equal(r.det.ejections.consecutive_gateway, 1, `ejections.consecutive_gateway: expected 1, got ${r.det.ejections.consecutive_gateway}`);
  t.equal(r.det.view(2)?.ejected, false, 'endpoint 2 untouched');
});

t.test('ejection ends at base × times ejected, capped at max', async (t) => {
  const r = rig([cluster('api', [0, 1], od({ base_ejection_time_ms: BASE, max_ejection_time_ms: 2500, interval_ms: 1_000_000 }))]);
  const want = [1000, 2000, 2500, 2500];
  r.det.onEvent(0, 'consecutive_5xx');
  for (let n = 1; n <= want.length; n++) {
    const v = r.det.view(0);
    const ms = (v?.ejectedUntil ?? 0) - r.clock.now;
    t.equal(ms, want[n - 1], `ejection ${n}: expected ${want[n - 1]} ms, got ${ms} (timesEjected ${v?.timesEjected})`);
    t.equal(v?.timesEjected, n, `ejection ${n}: timesEjected expected ${n}, got ${v?.timesEjected}`);
    const early = r.advance(ms - 1);
    t.same(early, [], `1 ms before the end the endpoint stays ejected: got ${show(early)}`);
    t.equal(r.det.view(0)?.ejected, true, `ejection ${n} still on 1 ms early`);
    const end = r.advance(1);
    t.same(end, [{ slot: 0, bits: EndpointState.Probation, tokens: 3 }], `ejection ${n} ends exactly on time: write(0, Probation, 3), got ${show(end)}`);
    r.det.onEvent(0, 'probation_fail');
    r.drain();
  }
  // A fresh ejection after probation passed still counts earlier ejections (no interval passed).
  const r2 = rig([cluster('api', [0, 1], od({ interval_ms: 1_000_000 }))]);
  r2.det.onEvent(0, 'consecutive_5xx');
  r2.advance(BASE);
  r2.det.onEvent(0, 'probation_ok');
  r2.det.onEvent(0, 'consecutive_5xx');
  const ms = (r2.det.view(0)?.ejectedUntil ?? 0) - r2.clock.now;
  t.equal(ms, 2 * BASE, `a second ejection by consecutive_5xx lasts 2 × base: expected ${2 * BASE}, got ${ms}`);
});

t.test('when the ejection time is up, tick() puts the endpoint on probation', async (t) => {
  const r = rig([cluster('api', [0, 1], od({ probation_requests: 3 }))]);
  r.det.onEvent(0, 'consecutive_5xx');
  r.drain();
  r.volumes.resets.length = 0;
  const w = r.advance(BASE);
  t.same(w, [{ slot: 0, bits: EndpointState.Probation, tokens: 3 }], `write(0, Probation, probation_requests 3): got ${show(w)}`);
  t.same(r.volumes.resets, [0], `the consecutive counters of slot 0 are reset as probation starts: got ${r.volumes.resets.join(',')}`);
  const v = r.det.view(0);
  t.equal(v?.ejected, false, `view(0).ejected: expected false, got ${v?.ejected}`);
  t.equal(v?.probation, true, `view(0).probation: expected true, got ${v?.probation}`);
  t.equal(v?.ejectedUntil, 0, `view(0).ejectedUntil: expected 0, got ${v?.ejectedUntil}`);
  t.equal(r.det.activeEjections('api'), 0, `an endpoint on probation is not an active ejection: got ${r.det.activeEjections('api')}`);
  t.same(r.advance(1), [], 'the next tick writes nothing more');
  r.det.onEvent(0, 'consecutive_5xx');
  t.same(r.drain(), [], 'a consecutive failure event on probation is ignored (probation_fail decides)');
});

t.test('probation_ok makes the endpoint healthy', async (t) => {
  const r = rig([cluster('api', [0, 1], od())]);
  r.det.onEvent(1, 'probation_ok');
  t.same(r.drain(), [], 'probation_ok for an endpoint not on probation writes nothing');
  r.det.onEvent(0, 'consecutive_5xx');
  r.det.onEvent(0, 'probation_ok');
  t.same(r.drain(), [EJECTED], 'probation_ok while ejected (not yet on probation) is ignored');
  r.advance(BASE);
  r.drain();
  r.volumes.resets.length = 0;
  r.det.onEvent(0, 'probation_ok');
  const w = r.drain();
  t.same(w, [{ slot: 0, bits: 0, tokens: 0 }], `write(0, 0, 0): got ${show(w)}`);
  t.same(r.volumes.resets, [0], `consecutive counters reset on the way back: got ${r.volumes.resets.join(',')}`);
  const v = r.det.view(0);
  t.equal(v?.probation, false, `view(0).probation: expected false, got ${v?.probation}`);
  t.equal(v?.ejected, false, `view(0).ejected: expected false, got ${v?.ejected}`);
  t.equal(v?.timesEjected, 1, `timesEjected stays 1 until it decays: got ${v?.timesEjected}`);
  r.det.onEvent(0, 'probation_ok');
  t.same(r.drain(), [], 'a second probation_ok writes nothing');
});

t.test('probation_fail re-ejects for twice the base time', async (t) => {
  const r = rig([cluster('api', [0, 1], od())]);
  r.det.onEvent(0, 'probation_fail');
  t.same(r.drain(), [], 'probation_fail for an endpoint not on probation writes nothing');
  r.det.onEvent(0, 'consecutive_5xx');
  r.advance(BASE);
  r.drain();
  r.det.onEvent(0, 'probation_fail');
  const w = r.drain();
  t.same(w, [EJECTED], `write(0, Ejected, 0): got ${show(w)}`);
  const v = r.det.view(0);
  t.equal(v?.ejectedUntil, r.clock.now + 2 * BASE, `ejected until now + 2 × base = +${2 * BASE}: got +${(v?.ejectedUntil ?? 0) - r.clock.now}`);
  t.equal(v?.timesEjected, 2, `timesEjected: expected 2, got ${v?.timesEjected}`);
  t.equal(v?.probation, false, `no longer on probation: got ${v?.probation}`);
  t.equal(v?.lastReason, 'probation_failure', `lastReason: expected probation_failure, got ${v?.lastReason}`);
  t.equal(r.det.ejections.probation_failure, 1, `ejections.probation_failure: expected 1, got ${r.det.ejections.probation_failure}`);
  r.det.onEvent(0, 'probation_fail');
  t.same(r.drain(), [], 'a late probation_fail while ejected again writes nothing');
});

t.test('max_ejection_percent', async (t) => {
  t.test('3 endpoints at 10%: the first ejection is allowed, the second refused', async (t) => {
    const r = rig([cluster('api', [0, 1, 2], od({ max_ejection_percent: 10 }))]);
    r.det.onEvent(0, 'consecutive_5xx');
    t.same(r.drain(), [EJECTED], 'one endpoint may always be ejected');
    r.det.onEvent(1, 'consecutive_gateway');
    const w = r.drain();
    t.same(w, [], `the second ejection (would be 67% > 10%) writes nothing: got ${show(w)}`);
    t.equal(r.det.overflows, 1, `overflows: expected 1, got ${r.det.overflows}`);
    t.equal(r.det.view(1)?.ejected, false, 'endpoint 1 is not ejected');
    t.equal(r.det.view(1)?.timesEjected, 0, `a refused ejection does not count: timesEjected expected 0, got ${r.det.view(1)?.timesEjected}`);
    t.equal(r.det.ejections.consecutive_gateway, 0, `ejections.consecutive_gateway: expected 0, got ${r.det.ejections.consecutive_gateway}`);
    // Once endpoint 0 is on probation it no longer counts; endpoint 1 may go.
    r.advance(BASE);
    r.drain();
    r.det.onEvent(1, 'consecutive_gateway');
    t.same(r.drain(), [{ slot: 1, bits: EndpointState.Ejected, tokens: 0 }], 'with endpoint 0 on probation, endpoint 1 is ejected');
    // A failed probation re-ejects regardless of the limit.
    r.det.onEvent(0, 'probation_fail');
    t.same(r.drain(), [EJECTED], 'probation_fail re-ejects endpoint 0 even though endpoint 1 is ejected');
    t.equal(r.det.overflows, 1, `the forced re-ejection is not an overflow: expected 1, got ${r.det.overflows}`);
    t.equal(r.det.activeEjections('api'), 2, `two active ejections: got ${r.det.activeEjections('api')}`);
  });

  t.test('4 endpoints at 50%: two ejections, the third refused', async (t) => {
    const r = rig([cluster('api', [0, 1, 2, 3], od({ max_ejection_percent: 50 }))]);
    for (const slot of [0, 1, 2]) r.det.onEvent(slot, 'consecutive_5xx');
    const w = r.drain();
    t.same(
      w.map((x) => x.slot),
      [0, 1],
      `endpoints 0 and 1 ejected (0% then 25% already ejected), 2 refused at 50%: got ${show(w)}`,
    );
    t.equal(r.det.overflows, 1, `overflows: expected 1, got ${r.det.overflows}`);
  });
});

t.test('timesEjected decays by one per interval while healthy', async (t) => {
  const r = rig([cluster('api', [0, 1], od({ interval_ms: INTERVAL, base_ejection_time_ms: BASE }))]);
  // S: ejected until S+1000; S+1000: probation, fails, ejected until S+3000; S+3000: ok.
  r.det.onEvent(0, 'consecutive_5xx');
  r.advance(BASE);
  r.det.onEvent(0, 'probation_fail');
  r.advance(2 * BASE);
  r.det.onEvent(0, 'probation_ok');
  t.equal(r.det.view(0)?.timesEjected, 2, `healthy again after two ejections: timesEjected expected 2, got ${r.det.view(0)?.timesEjected}`);
  r.advance(INTERVAL - 3 * BASE - 1);
  t.equal(r.det.view(0)?.timesEjected, 2, `1 ms before the first interval: expected 2, got ${r.det.view(0)?.timesEjected}`);
  r.advance(1);
  t.equal(r.det.view(0)?.timesEjected, 1, `after one interval: expected 1, got ${r.det.view(0)?.timesEjected}`);
  r.advance(INTERVAL / 2);
  t.equal(r.det.view(0)?.timesEjected, 1, `half an interval later: still 1, got ${r.det.view(0)?.timesEjected}`);
  r.advance(INTERVAL / 2);
  t.equal(r.det.view(0)?.timesEjected, 0, `after two intervals: expected 0, got ${r.det.view(0)?.timesEjected}`);
  r.advance(INTERVAL);
  t.equal(r.det.view(0)?.timesEjected, 0, `never below 0: got ${r.det.view(0)?.timesEjected}`);
  r.drain();
  r.det.onEvent(0, 'consecutive_5xx');
  const ms = (r.det.view(0)?.ejectedUntil ?? 0) - r.clock.now;
  t.equal(ms, BASE, `after full decay an ejection lasts base again: expected ${BASE}, got ${ms}`);

  // No decay while ejected or on probation.
  const long = rig([cluster('api', [0, 1], od({ interval_ms: INTERVAL, base_ejection_time_ms: 3 * INTERVAL, max_ejection_time_ms: 10 * INTERVAL }))]);
  long.det.onEvent(0, 'consecutive_5xx');
  long.advance(INTERVAL);
  long.advance(INTERVAL);
  t.equal(long.det.view(0)?.timesEjected, 1, `two intervals while ejected: timesEjected stays 1, got ${long.det.view(0)?.timesEjected}`);
  long.advance(INTERVAL); // ejection ends: probation
  long.advance(INTERVAL);
  t.equal(long.det.view(0)?.probation, true, 'on probation');
  t.equal(long.det.view(0)?.timesEjected, 1, `an interval on probation: timesEjected stays 1, got ${long.det.view(0)?.timesEjected}`);
});

t.test('probation tokens are refilled after an interval without a report', async (t) => {
  const r = rig([cluster('api', [0, 1], od({ interval_ms: INTERVAL, base_ejection_time_ms: BASE, probation_requests: 2 }))]);
  r.det.onEvent(0, 'consecutive_5xx');
  const start = r.advance(BASE); // S+1000: probation starts
  t.same(start, [{ slot: 0, bits: EndpointState.Probation, tokens: 2 }], `probation starts with 2 tokens: got ${show(start)}`);
  const first = r.advance(INTERVAL - BASE); // S+10000: interval, but probation only 9000 ms old
  t.same(first, [], `an interval boundary 9000 ms into probation does not refill: got ${show(first)}`);
  const second = r.advance(INTERVAL); // S+20000: 19000 ms into probation
  t.same(second, [{ slot: 0, bits: EndpointState.Probation, tokens: 2 }], `the next interval refills 2 tokens: got ${show(second)}`);
  const between = r.advance(INTERVAL / 2);
  t.same(between, [], `no refill between intervals: got ${show(between)}`);
  const third = r.advance(INTERVAL / 2); // S+30000: 10000 ms since the refill
  t.same(third, [{ slot: 0, bits: EndpointState.Probation, tokens: 2 }], `and again one interval after the refill: got ${show(third)}`);
  r.det.onEvent(0, 'probation_ok');
  r.drain();
  const after = r.advance(2 * INTERVAL);
  t.same(after, [], `no refills once the endpoint passed probation: got ${show(after)}`);
});

t.test('success-rate ejection', async (t) => {
  const SR = { success_rate_minimum_hosts: 5, success_rate_request_volume: 100, success_rate_stdev_factor: 1.9, max_ejection_percent: 10 };

  t.test('5 endpoints with 100 requests, one at 50% success: that one is ejected', async (t) => {
    const r = rig([cluster('api', [0, 1, 2, 3, 4], od(SR))]);
    for (const slot of [0, 1, 2, 3]) r.volumes.volumes.set(slot, { total: 100, success: 100 });
    r.volumes.volumes.set(4, { total: 100, success: 50 });
    const early = r.advance(INTERVAL - 1);
    t.same(early, [], 'nothing before the interval');
    t.same(r.volumes.taken, [], `volumes are not taken before the interval: got ${r.volumes.taken.join(',')}`);
    // mean 90, stdev 20, threshold 90 − 1.9 × 20 = 52 > 50.
    const w = r.advance(1);
    t.same(w, [{ slot: 4, bits: EndpointState.Ejected, tokens: 0 }], `write(4, Ejected, 0): got ${show(w)}`);
    t.same(r.volumes.taken.sort(), [0, 1, 2, 3, 4], `every endpoint's volume taken once: got ${r.volumes.taken.join(',')}`);
    t.equal(r.det.view(4)?.lastReason, 'success_rate', `reason success_rate: got ${r.det.view(4)?.lastReason}`);
    t.equal(r.det.ejections.success_rate, 1, `ejections.success_rate: expected 1, got ${r.det.ejections.success_rate}`);
    for (const slot of [0, 1, 2, 3]) t.equal(r.det.view(slot)?.ejected, false, `endpoint ${slot} (100%) not ejected`);
  });

  t.test('a rate just above the threshold is kept', async (t) => {
    // 4 × 100% and one at 50%: mean 90, stdev 20. With 4 perfect peers the outlier always
    // sits exactly 2 stdev below the mean, so factor 1.9 ejects it and 2.1 keeps it.
    const r = rig([cluster('api', [0, 1, 2, 3, 4], od({ ...SR, success_rate_stdev_factor: 2.1 }))]);
    for (const slot of [0, 1, 2, 3]) r.volumes.volumes.set(slot, { total: 100, success: 100 });
    r.volumes.volumes.set(4, { total: 100, success: 50 });
    const w = r.advance(INTERVAL);
    t.same(w, [], `factor 2.1: threshold 90 − 42 = 48 < 50, nobody ejected: got ${show(w)}`);
  });

  t.test('fewer than minimum_hosts endpoints with enough volume: no ejection', async (t) => {
    const four = rig([cluster('api', [0, 1, 2, 3], od(SR))]);
    for (const slot of [0, 1, 2]) four.volumes.volumes.set(slot, { total: 100, success: 100 });
    four.volumes.volumes.set(3, { total: 100, success: 0 });
    const w4 = four.advance(INTERVAL);
    t.same(w4, [], `a cluster of 4 < minimum_hosts 5: nobody ejected: got ${show(w4)}`);

    const lowVolume = rig([cluster('api', [0, 1, 2, 3, 4], od(SR))]);
    for (const slot of [0, 1, 2]) lowVolume.volumes.volumes.set(slot, { total: 100, success: 100 });
    lowVolume.volumes.volumes.set(3, { total: 99, success: 99 });
    lowVolume.volumes.volumes.set(4, { total: 100, success: 0 });
    const wl = lowVolume.advance(INTERVAL);
    t.same(wl, [], `only 4 endpoints reach request_volume 100 (one has 99): nobody ejected: got ${show(wl)}`);

    const off = rig([cluster('api', [0, 1, 2, 3, 4], od({ ...SR, success_rate_minimum_hosts: 0 }))]);
    for (const slot of [0, 1, 2, 3]) off.volumes.volumes.set(slot, { total: 100, success: 100 });
    off.volumes.volumes.set(4, { total: 100, success: 0 });
    const wo = off.advance(INTERVAL);
    t.same(wo, [], `minimum_hosts 0 turns success-rate ejection off: got ${show(wo)}`);
  });

  t.test('ejected endpoints are left out of the sample', async (t) => {
    const r = rig([cluster('api', [0, 1, 2, 3, 4, 5], od({ ...SR, max_ejection_percent: 100, base_ejection_time_ms: 5 * INTERVAL }))]);
    r.det.onEvent(5, 'consecutive_5xx');
    r.drain();
    for (const slot of [0, 1, 2, 3]) r.volumes.volumes.set(slot, { total: 100, success: 100 });
    r.volumes.volumes.set(4, { total: 100, success: 50 });
    r.volumes.volumes.set(5, { total: 100, success: 0 });
    const w = r.advance(INTERVAL);
    t.same(w, [{ slot: 4, bits: EndpointState.Ejected, tokens: 0 }], `the already ejected endpoint 5 (0%) does not pull the mean down; 4 is ejected: got ${show(w)}`);
    t.equal(r.det.view(5)?.timesEjected, 1, `endpoint 5 is not ejected a second time: timesEjected ${r.det.view(5)?.timesEjected}`);
  });
});

t.test('update()', async (t) => {
  t.test('endpoints that stay keep their state; new ones start fresh', async (t) => {
    const r = rig([cluster('api', [0, 1, 2], od())]);
    r.det.onEvent(0, 'consecutive_5xx');
    r.det.onEvent(1, 'consecutive_5xx');
    r.advance(BASE); // both on probation
    r.det.onEvent(1, 'probation_fail'); // 1 ejected again, timesEjected 2
    r.drain();
    const before0 = r.det.view(0);
    const before1 = r.det.view(1);
    r.volumes.resets.length = 0;
    r.update([cluster('api', [0, 1, 3], od({ probation_requests: 7 }))]);
    t.same(r.det.view(0), before0, `endpoint 0 keeps its probation: ${JSON.stringify(r.det.view(0))}`);
    t.same(r.det.view(1), before1, `endpoint 1 keeps its ejection: ${JSON.stringify(r.det.view(1))}`);
    const slot3 = r.slotOf('api', '10.0.0.3:8080');
    t.same(
      r.det.view(slot3),
      { ejected: false, probation: false, timesEjected: 0, ejectedUntil: 0, lastReason: '' },
      `the new endpoint starts healthy: ${JSON.stringify(r.det.view(slot3))}`,
    );
    t.same(r.volumes.resets, [slot3], `only the new endpoint's counters are reset: got ${r.volumes.resets.join(',')}`);
    t.equal(r.det.view(2), null, 'the removed endpoint is no longer tracked');
    t.same(r.drain(), [], 'removing a healthy endpoint writes nothing');
    r.det.onEvent(2, 'consecutive_5xx');
    t.same(r.drain(), [], 'events for the removed endpoint are ignored');
    const w = r.advance(2 * BASE);
    t.same(w, [{ slot: 1, bits: EndpointState.Probation, tokens: 7 }], `the new probation_requests 7 applies: got ${show(w)}`);
  });

  t.test('an ejected endpoint whose cluster lost outlier_detection is released', async (t) => {
    const r = rig([cluster('api', [0, 1, 2, 3], od())]);
    r.det.onEvent(0, 'consecutive_5xx');
    r.det.onEvent(1, 'consecutive_5xx');
    r.advance(BASE); // 0 and 1 on probation
    r.det.onEvent(0, 'probation_fail'); // 0 ejected
    r.drain();
    r.update([cluster('api', [0, 1, 2, 3], undefined)]);
    const w = r.drain();
    t.same(
      [...w].sort((a, b) => a.slot - b.slot),
      [
        { slot: 0, bits: 0, tokens: 0 },
        { slot: 1, bits: 0, tokens: 0 },
      ],
      `write(0,0,0) for the ejected and write(1,0,0) for the one on probation; nothing for the healthy ones: got ${show(w)}`,
    );
    for (const slot of [0, 1, 2, 3]) t.equal(r.det.view(slot), null, `endpoint ${slot} no longer tracked`);
    t.equal(r.det.activeEjections('api'), 0, `no active ejections: got ${r.det.activeEjections('api')}`);
    r.det.onEvent(2, 'consecutive_5xx');
    t.same(r.drain(), [], 'events for the released endpoints are ignored');
    t.same(r.advance(10 * INTERVAL), [], 'ticks no longer act on the cluster');
  });

  t.test('an ejected endpoint of a removed cluster is released; other clusters keep going', async (t) => {
    const r = rig([cluster('a', [0, 1], od(), 0), cluster('b', [0, 1], od(), 1)]);
    const b0 = r.slotOf('b', '10.0.1.0:8080');
    r.det.onEvent(0, 'consecutive_5xx');
    r.det.onEvent(b0, 'consecutive_5xx');
    r.drain();
    r.update([cluster('b', [0, 1], od(), 1)]);
    t.same(r.drain(), [{ slot: 0, bits: 0, tokens: 0 }], 'the ejected endpoint of removed cluster a is released');
    t.equal(r.det.view(b0)?.ejected, true, 'cluster b keeps its ejection');
    const w = r.advance(BASE);
    t.same(w, [{ slot: b0, bits: EndpointState.Probation, tokens: 3 }], `only cluster b's endpoint moves to probation: got ${show(w)}`);
  });

  t.test('with `only` (an endpoint update): the clusters named follow, the others are left as they are', async (t) => {
    const r = rig([cluster('a', [0, 1], od(), 0), cluster('b', [0, 1], od(), 1)]);
    const b0 = r.slotOf('b', '10.0.1.0:8080');
    r.det.onEvent(0, 'consecutive_5xx');
    r.det.onEvent(b0, 'consecutive_5xx');
    r.drain();
    // Cluster a's endpoint 0 goes and 2 comes; cluster b is not passed.
    r.det.update([cluster('a', [1, 2], od(), 0)], r.slotOf, endpointKey, new Set(['a']));
    t.same(r.drain(), [{ slot: 0, bits: 0, tokens: 0 }], 'the ejected endpoint cluster a dropped is released');
    t.equal(r.det.view(b0)?.ejected, true, 'cluster b, not passed, keeps its ejection');
    t.equal(r.det.view(r.slotOf('b', '10.0.1.1:8080'))?.ejected, false, 'and its other endpoint is still tracked');
    t.equal(r.det.view(r.slotOf('a', '10.0.0.2:8080'))?.ejected, false, 'the new endpoint of a is tracked');
    t.equal(r.det.activeEjections('b'), 1, 'cluster b still counts its ejection');
  });
});

t.test('update(): a slot handed to another endpoint while its old one was ejected', async (t) => {
  // SlotRegistry reuses a freed endpoint slot once MAX_ENDPOINTS names have been used.
  // The old occupant of slot 0 was ejected (the publisher in src/main/resilience.ts keeps
  // outlierBits[0] = Ejected); the new endpoint in slot 0 starts healthy here, but no
  // write(0, 0, 0) tells the publisher, so its next publish of slot 0 (a health-check
  // verdict ORs in the stale outlier bits) marks the new endpoint ejected with no ejection
  // the detector will ever end. Expected: the detector releases the old occupant.
  const r = rig([cluster('api', [0, 1], od())]);
  r.det.onEvent(0, 'consecutive_5xx');
  r.drain();
  const reuse = (c: string, key: string): number => (key === '10.0.0.9:8080' ? 0 : r.slotOf(c, key));
  r.det.update([cluster('api', [9, 1], od())], reuse, endpointKey);
  const v = r.det.view(0);
  t.same(
    v,
    { ejected: false, probation: false, timesEjected: 0, ejectedUntil: 0, lastReason: '' },
    `the new occupant of slot 0 starts healthy: got ${JSON.stringify(v)}`,
  );
  const w = r.drain();
  t.same(w, [{ slot: 0, bits: 0, tokens: 0 }], `write(0, 0, 0) releases the old ejected occupant: got ${show(w)}`);
  t.same(r.advance(BASE), [], 'the old ejection does not end on the new occupant');
});

t.test('events for unknown slots are ignored', async (t) => {
  const r = rig([cluster('api', [0, 1], od())]);
  for (const kind of ['consecutive_5xx', 'consecutive_gateway', 'probation_ok', 'probation_fail', 'immediate_health_check_fail'] as const) {
    r.det.onEvent(99, kind);
    r.det.onEvent(-1, kind);
  }
  t.same(r.drain(), [], 'no writes');
  t.same(r.det.ejections, { consecutive_5xx: 0, consecutive_gateway: 0, success_rate: 0, probation_failure: 0 }, 'no ejections counted');
  t.equal(r.det.view(99), null, 'view of an unknown slot is null');
  r.det.onEvent(0, 'immediate_health_check_fail');
  t.same(r.drain(), [], 'immediate_health_check_fail is left to the health checker');
});
