// Unit tests for the load-balancing policies (load-balancer.ts): round robin order,
// least_request (power of two choices) preferring the less busy endpoint, random range.

import t from 'tap';
import { createLoadBalancer, LeastRequest, RandomPick, RoundRobin, type Balanced } from '../../src/upstream/load-balancer.js';

const endpoints = (...active: number[]): Balanced[] => active.map((a) => ({ active: a }));

t.test('round robin cycles through endpoints in order', async (t) => {
  const lb = new RoundRobin();
  const eps = endpoints(0, 0, 0);
  const picks = Array.from({ length: 9 }, () => lb.pick(eps));
  t.same(picks, [0, 1, 2, 0, 1, 2, 0, 1, 2], 'picks go 0,1,2,0,1,2,...');
  t.same(
    Array.from({ length: 3 }, () => lb.pick(endpoints(5, 0, 9))),
    [0, 1, 2],
    'round robin ignores how busy endpoints are',
  );
});

t.test('round robin survives the endpoint list shrinking', async (t) => {
  const lb = new RoundRobin();
  const three = endpoints(0, 0, 0);
  lb.pick(three);
  lb.pick(three);
  lb.pick(three); // cursor now past index 2
  const two = endpoints(0, 0);
  const picks = Array.from({ length: 4 }, () => lb.pick(two));
  t.ok(picks.every((p) => p >= 0 && p < 2), `every pick is a valid index of the shorter list (got ${picks.join(',')})`);
  t.same(picks, [0, 1, 0, 1], 'after shrinking it cycles over the remaining endpoints');
});

t.test('least_request with two endpoints always picks the less busy one', async (t) => {
  const lb = new LeastRequest();
  let wrong = 0;
  for (let i = 0; i < 2000; i++) if (lb.pick(endpoints(5, 2)) !== 1) wrong++;
  t.equal(wrong, 0, 'endpoint 1 (active 2) always beats endpoint 0 (active 5)');
  wrong = 0;
  for (let i = 0; i < 2000; i++) if (lb.pick(endpoints(0, 1)) !== 0) wrong++;
  t.equal(wrong, 0, 'endpoint 0 (active 0) always beats endpoint 1 (active 1)');
});

t.test('least_request with equal load spreads over both endpoints', async (t) => {
  const lb = new LeastRequest();
  const counts = [0, 0];
  for (let i = 0; i < 4000; i++) counts[lb.pick(endpoints(3, 3))]++;
  t.ok(counts[0] > 1600 && counts[1] > 1600, `ties are broken at random, about 50/50 (got ${counts.join('/')})`);
});

t.test('least_request with many endpoints never picks the busiest, stays in range', async (t) => {
  const lb = new LeastRequest();
  const eps = endpoints(1, 1, 1, 100, 1);
  const counts = [0, 0, 0, 0, 0];
  let outOfRange = 0;
  for (let i = 0; i < 5000; i++) {
    const p = lb.pick(eps);
    if (p >= 0 && p < eps.length) counts[p]++;
    else outOfRange++;
  }
  t.equal(outOfRange, 0, 'every pick is a valid index');
  t.equal(counts[3], 0, 'the endpoint with 100 requests in flight loses every comparison');
  t.ok(counts.every((c, i) => i === 3 || c > 0), `the other endpoints all get traffic (got ${counts.join('/')})`);
  t.equal(lb.pick(endpoints(7)), 0, 'a single endpoint is always picked');
});

t.test('random stays in range and spreads over every endpoint', async (t) => {
  const lb = new RandomPick();
  const eps = endpoints(0, 0, 0, 0);
  const counts = [0, 0, 0, 0];
  let outOfRange = 0;
  for (let i = 0; i < 8000; i++) {
    const p = lb.pick(eps);
    if (!(Number.isInteger(p) && p >= 0 && p < eps.length)) outOfRange++;
    else counts[p]++;
  }
  t.equal(outOfRange, 0, 'every pick is an integer index within the endpoint list');
  t.ok(counts.every((c) => c > 1600 && c < 2400), `each of 4 endpoints gets about a quarter (got ${counts.join('/')})`);
});

t.test('createLoadBalancer maps each policy to its balancer', async (t) => {
  t.ok(createLoadBalancer('round_robin') instanceof RoundRobin, 'round_robin → RoundRobin');
  t.ok(createLoadBalancer('least_request') instanceof LeastRequest, 'least_request → LeastRequest');
  t.ok(createLoadBalancer('random') instanceof RandomPick, 'random → RandomPick');
  const a = createLoadBalancer('round_robin');
  const b = createLoadBalancer('round_robin');
  a.pick(endpoints(0, 0));
  t.equal(b.pick(endpoints(0, 0)), 0, 'each balancer has its own round-robin cursor');
});
