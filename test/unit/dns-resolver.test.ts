// Unit tests for DNS clusters' resolution (src/main/dns-query.ts, dns-resolver.ts): the
// schedule (refresh rate, TTL, failure backoff), lookup families, and against a real
// UDP DNS server on 127.0.0.1 (test/helpers/dns-server.ts): keep-last-good on failure,
// an empty answer removes a strict name's endpoints, logical endpoints, the counters.

import t from 'tap';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster, ClusterDns, RemoraConfig } from '../../src/config/types.js';
import { validateConfig } from '../../src/config/validate.js';
import { createLogger } from '../../src/core/log.js';
import { nextDelayMs, resolveName } from '../../src/main/dns-query.js';
import { DnsClusters } from '../../src/main/dns-resolver.js';
import { dnsClusterConfig, fakeLookup, startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { waitUntil } from '../helpers/remora.js';

const log = createLogger({ component: 'dns-resolver-test' }, 'silent');
/** No hosts file (a path nothing creates): every name goes to the test DNS server, never
 *  to this machine's /etc/hosts (test/unit/dns-hosts-file.test.ts covers the file). */
const hostsPath = join(tmpdir(), `remora-dns-resolver-test-no-hosts-${process.pid}`);

const dnsOf = (cfg: RemoraConfig): ClusterDns => (cfg.clusters[0] as Cluster).dns!;

t.test('schedule: refresh rate, TTL, failure backoff', async (t) => {
  const ep = [{ address: 'a.test', port: 1 }];
  const plain = dnsOf(dnsClusterConfig({ type: 'strict' }, ep));
  t.equal(plain.refresh_rate_ms, 5000, "Envoy's default refresh rate");
  const answer = (ttlS: number, n = 1) => ({ kind: 'answer' as const, addresses: Array(n).fill('10.0.0.1'), ttlS });
  const failure = { kind: 'failure' as const, error: 'ESERVFAIL' };
  t.equal(nextDelayMs(plain, answer(30), 0), 5000, 'TTL ignored without respect_ttl');
  t.equal(nextDelayMs(plain, failure, 3), 5000, 'no failure_refresh_rate: refresh rate, no backoff');

  const ttl = dnsOf(dnsClusterConfig({ type: 'strict', respect_ttl: true, min_refresh_rate_ms: 2000 }, ep));
  t.equal(nextDelayMs(ttl, answer(30), 0), 30_000, 'the TTL');
  t.equal(nextDelayMs(ttl, answer(1), 0), 2000, 'a short TTL is raised to min_refresh_rate_ms');
  t.equal(nextDelayMs(ttl, answer(0), 0), 5000, 'TTL 0: refresh rate');
  t.equal(nextDelayMs(ttl, answer(30, 0), 0), 5000, 'an empty answer: refresh rate');

  const backoff = dnsOf(dnsClusterConfig({ type: 'strict', failure_refresh_rate: { base_ms: 100 } }, ep));
  t.equal(backoff.failure_refresh_rate?.max_ms, 1000, 'max_ms defaults to 10 × base_ms');
  const low = (): number => 0;
  const high = (): number => 1;
  t.same([1, 2, 3, 4, 5, 9].map((n) => nextDelayMs(backoff, failure, n, high)), [100, 200, 400, 800, 1000, 1000], 'doubles up to max_ms');
  t.same([1, 2, 5].map((n) => nextDelayMs(backoff, failure, n, low)), [50, 100, 500], 'jitter keeps at least half');
  t.equal(nextDelayMs(backoff, answer(30), 0), 5000, 'a success goes back to the refresh rate');
});

t.test('validation of the dns block, by path', async (t) => {
  const bad = validateConfig({
    listeners: [],
    clusters: [{ name: 'c', endpoints: [{ address: 'a.test', port: 1 }], dns: { type: 'fancy', failure_refresh_rate: { base_ms: 500, max_ms: 100 }, resolvers: ['dns.example', '10.0.0.1:99999'], lookup_family: 'v5' } }],
  });
  t.notOk(bad.ok);
  const paths = bad.ok ? [] : bad.errors.map((e) => e.path);
  for (const p of ['clusters[0].dns.type', 'clusters[0].dns.failure_refresh_rate.max_ms', 'clusters[0].dns.resolvers[0]', 'clusters[0].dns.resolvers[1]', 'clusters[0].dns.lookup_family']) {
    t.ok(paths.includes(p), `error at ${p}`);
  }
  const ok = dnsClusterConfig({ type: 'logical', resolvers: ['[::1]:53', '10.0.0.1'] }, [{ address: '10.1.2.3', port: 1 }]);
  t.same(dnsOf(ok).resolvers, ['[::1]:53', '10.0.0.1'], 'an IP literal in a DNS cluster is accepted; resolvers with and without a port');
});


t.test('lookup families and what counts as empty or failed', async (t) => {
  const v4 = [{ address: '10.0.0.1', ttl: 30 }, { address: '10.0.0.2', ttl: 10 }];
  const v6 = [{ address: 'fd00::1', ttl: 20 }];
  let l = fakeLookup({ 'A x': v4, 'AAAA x': 'ENODATA' });
  t.same(await resolveName(l, 'x', 'auto'), { kind: 'answer', addresses: ['10.0.0.1', '10.0.0.2'], ttlS: 10 }, 'auto: no AAAA, so A (lowest TTL)');
  t.same(l.asked, ['AAAA x', 'A x']);
  l = fakeLookup({ 'A x': v4, 'AAAA x': v6 });
  t.same(await resolveName(l, 'x', 'auto'), { kind: 'answer', addresses: ['fd00::1'], ttlS: 20 }, 'auto: AAAA first');
  t.same(l.asked, ['AAAA x']);
  t.same((await resolveName(l, 'x', 'v4_preferred')), { kind: 'answer', addresses: ['10.0.0.1', '10.0.0.2'], ttlS: 10 });
  t.same((await resolveName(l, 'x', 'all')), { kind: 'answer', addresses: ['10.0.0.1', '10.0.0.2', 'fd00::1'], ttlS: 10 }, 'all: IPv4 first');
  t.same((await resolveName(l, 'x', 'v6_only')), { kind: 'answer', addresses: ['fd00::1'], ttlS: 20 });
  l = fakeLookup({ 'A x': 'ENOTFOUND', 'AAAA x': 'ENOTFOUND' });
  t.same(await resolveName(l, 'x', 'auto'), { kind: 'answer', addresses: [], ttlS: 0 }, 'NXDOMAIN: an empty answer');
  l = fakeLookup({ 'A x': 'ESERVFAIL' });
  t.equal((await resolveName(l, 'x', 'v4_only')).kind, 'failure', 'SERVFAIL: a failure');
  l = fakeLookup({ 'A x': v4, 'AAAA x': 'ETIMEOUT' });
  t.equal((await resolveName(l, 'x', 'auto')).kind, 'answer', 'AAAA timed out, A answered: an answer');
  l = fakeLookup({ 'A x': 'ENODATA', 'AAAA x': 'ETIMEOUT' });
  t.equal((await resolveName(l, 'x', 'auto')).kind, 'failure', 'AAAA failed and no A: a failure (keep the last good)');
});

t.test('against a DNS server: strict cluster', async (t) => {
  const server: TestDnsServer = await startDnsServer();
  t.teardown(() => server.close());
  server.set('a.test', [{ address: '127.0.0.1', ttl: 60 }, { address: '127.0.0.2', ttl: 60 }]);
  server.set('b.test', ['127.0.0.3']);
  const cfg = dnsClusterConfig({
    type: 'strict', refresh_rate_ms: 100, lookup_family: 'v4_only', resolvers: [server.address],
    failure_refresh_rate: { base_ms: 20, max_ms: 40 }, query_timeout_ms: 200, query_tries: 1,
  }, [{ address: 'a.test', port: 8080 }, { address: 'b.test', port: 9090 }, { address: '10.9.9.9', port: 7070 }]);
  let changes = 0;
  const dns = new DnsClusters(log, () => changes++, { hostsPath });
  t.teardown(() => dns.stop());
  t.same(dns.resolved(cfg).c, [{ address: '10.9.9.9', port: 7070 }], 'before any answer: only the IP literal');
  dns.configure(cfg);
  await waitUntil('first answers', async () => (dns.resolved(cfg).c?.length ?? 0) === 4);
  t.same(dns.resolved(cfg).c, [
    { address: '127.0.0.1', port: 8080, hostname: 'a.test' },
    { address: '127.0.0.2', port: 8080, hostname: 'a.test' },
    { address: '127.0.0.3', port: 9090, hostname: 'b.test' },
    { address: '10.9.9.9', port: 7070 },
  ], 'every address its own endpoint, the port written');
  t.ok(changes >= 1, 'onChange called');
  t.equal(server.queries('10.9.9.9'), 0, 'an IP literal is never queried');

  // a.test fails: its addresses stay, retried on the failure backoff (faster than refresh).
  server.mode('a.test', 'servfail');
  const before = dns.countsOf('c')!.failure;
  const q0 = server.queries('a.test');
  await waitUntil('failures', async () => dns.countsOf('c')!.failure >= before + 3);
  t.ok(server.queries('a.test') - q0 >= 3, 'retried');
  t.equal(dns.resolved(cfg).c?.filter((e) => e.hostname === 'a.test').length, 2, 'last good addresses kept');
  t.match(dns.view('c').find((v) => v.hostname === 'a.test'), { failures_in_a_row: Number, last_error: /SERVFAIL/ });

  // b.test answers with nothing: its endpoint goes.
  const empty0 = dns.countsOf('c')!.empty;
  server.set('b.test', []);
  await waitUntil('empty answer', async () => !dns.resolved(cfg).c!.some((e) => e.hostname === 'b.test'));
  t.ok(dns.countsOf('c')!.empty > empty0, 'update_empty counted');
  server.mode('b.test', 'nxdomain');
  await new Promise((r) => setTimeout(r, 250));
  t.notOk(dns.resolved(cfg).c!.some((e) => e.hostname === 'b.test'), 'NXDOMAIN: still none');

  // a.test recovers with a new address set.
  server.set('a.test', ['127.0.0.9']);
  await waitUntil('recovery', async () => dns.resolved(cfg).c!.some((e) => e.address === '127.0.0.9'));
  t.same(dns.resolved(cfg).c!.filter((e) => e.hostname === 'a.test').map((e) => e.address), ['127.0.0.9']);
  const c = dns.countsOf('c')!;
  t.ok(c.attempt >= c.success + c.failure - 1 && c.success > 0 && c.failure > 0, 'counters add up');

  // Reconfigured without the cluster: its timers stop.
  dns.configure({ ...cfg, clusters: [] });
  // A query sent just before may still be on its way to the server: let it arrive first.
  await new Promise((r) => setTimeout(r, 100));
  const q1 = server.queries();
  await new Promise((r) => setTimeout(r, 300));
  t.equal(server.queries(), q1, 'no more queries after the cluster left');
  t.equal(dns.countsOf('c'), undefined);
});

t.test('against a DNS server: TTL and logical endpoints', async (t) => {
  const server = await startDnsServer();
  t.teardown(() => server.close());
  server.set('l.test', [{ address: '127.0.0.5', ttl: 1 }, { address: '127.0.0.6', ttl: 1 }]);
  const cfg = dnsClusterConfig({
    type: 'logical', refresh_rate_ms: 60_000, respect_ttl: true, min_refresh_rate_ms: 100, lookup_family: 'v4_only', resolvers: [server.address],
  }, [{ address: 'l.test', port: 8080 }]);
  const dns = new DnsClusters(log, () => {}, { hostsPath });
  t.teardown(() => dns.stop());
  dns.configure(cfg);
  await waitUntil('answer', async () => (dns.resolved(cfg).c?.length ?? 0) === 1);
  t.same(dns.resolved(cfg).c, [{ address: 'l.test', port: 8080, dial: '127.0.0.5' }], 'one logical endpoint, dialing the first address');
  server.set('l.test', [{ address: '127.0.0.7', ttl: 1 }]);
  // The 1 s TTL brings the next resolution long before the 60 s refresh rate.
  await waitUntil('TTL refresh', async () => dns.resolved(cfg).c?.[0]?.dial === '127.0.0.7', 3000);
  t.pass('re-resolved at the TTL');
  server.set('l.test', []);
  const empty0 = dns.countsOf('c')!.empty;
  await waitUntil('empty answer', async () => dns.countsOf('c')!.empty > empty0, 3000);
  t.same(dns.resolved(cfg).c, [{ address: 'l.test', port: 8080, dial: '127.0.0.7' }], 'an empty answer keeps the logical address');
});
