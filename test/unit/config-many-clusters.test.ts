// Unit tests for validation at mesh scale (validate.ts, limits.ts): a config of 5,000
// clusters of 10 endpoints each, one route per cluster, is accepted; exactly
// MAX_CLUSTERS clusters are accepted and one more is rejected under `clusters`; an
// unknown cluster among thousands is reported with a bounded list of the defined ones.

import t from 'tap';
import { validateConfig } from '../../src/config/validate.js';
import { MAX_CLUSTERS } from '../../src/shared/limits.js';

/** `n` clusters `svc-<i>` of `endpoints` endpoints each, one listener with a route per
 *  cluster (`/svc-<i>/`). */
function meshConfig(n: number, endpoints: number, routeTo: (i: number) => string = (i) => `svc-${i}`) {
  return {
    workers: 2,
    listeners: [
      {
        name: 'main',
        port: 0,
        virtual_hosts: [
          {
            name: 'all',
            domains: ['*'],
            routes: Array.from({ length: n }, (_, i) => ({ name: `svc-${i}`, match: { prefix: `/svc-${i}/` }, route: { cluster: routeTo(i) } })),
          },
        ],
      },
    ],
    clusters: Array.from({ length: n }, (_, i) => ({
      name: `svc-${i}`,
      endpoints: Array.from({ length: endpoints }, (_, e) => ({ address: '127.0.0.1', port: 20_000 + e })),
    })),
  };
}

t.test('5,000 clusters of 10 endpoints, a route each, are accepted', async (t) => {
  const result = validateConfig(meshConfig(5000, 10), { defaultWorkers: 1 });
  t.equal(result.ok, true, `5,000 clusters validate (errors: ${result.ok ? 'none' : JSON.stringify(result.errors.slice(0, 3))})`);
  if (!result.ok) return;
  t.equal(result.config.clusters.length, 5000, '5,000 clusters in the config');
  t.equal(result.config.clusters.reduce((n, c) => n + c.endpoints.length, 0), 50_000, '50,000 endpoints in the config');
  t.equal(result.config.listeners[0].virtual_hosts[0].routes[4999].route?.cluster, 'svc-4999', 'the last route names the last cluster');
});

t.test('MAX_CLUSTERS clusters are accepted, one more is rejected under `clusters`', async (t) => {
  t.ok(MAX_CLUSTERS >= 5000, `the cap (${MAX_CLUSTERS}) admits a 5,000-service mesh`);
  const atCap = validateConfig(meshConfig(MAX_CLUSTERS, 1), { defaultWorkers: 1 });
  t.equal(atCap.ok, true, `${MAX_CLUSTERS} clusters validate (errors: ${atCap.ok ? 'none' : JSON.stringify(atCap.errors.slice(0, 3))})`);

  const over = validateConfig(meshConfig(MAX_CLUSTERS + 1, 1), { defaultWorkers: 1 });
  t.equal(over.ok, false, `${MAX_CLUSTERS + 1} clusters are rejected`);
  if (over.ok) return;
  t.same(
    over.errors,
    [{ path: 'clusters', message: `at most ${MAX_CLUSTERS} clusters (got ${MAX_CLUSTERS + 1})` }],
    'one error, under clusters, naming the cap and the count',
  );
});

t.test('an unknown cluster among thousands lists ten defined ones and how many more', async (t) => {
  const result = validateConfig(meshConfig(5000, 1, (i) => (i === 4999 ? 'svc-49990' : `svc-${i}`)), { defaultWorkers: 1 });
  t.equal(result.ok, false, 'a route to an unknown cluster is rejected');
  if (result.ok) return;
  t.same(
    result.errors,
    [
      {
        path: 'listeners[0].virtual_hosts[0].routes[4999].route.cluster',
        message: 'unknown cluster "svc-49990" (defined: svc-0, svc-1, svc-2, svc-3, svc-4, svc-5, svc-6, svc-7, svc-8, svc-9 and 4990 more)',
      },
    ],
    'the error names the route and lists a bounded number of clusters',
  );
});
