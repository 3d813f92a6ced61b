// DNS clusters end to end through a real `remora run`: a test DNS server on 127.0.0.1
// (test/helpers/dns-server.ts) names two upstreams; a strict_dns cluster balances over
// both, keeps a name's last good address when its resolution fails, drops it when the
// answer is empty, and answers 503 UH once no name has an address; a logical_dns
// cluster dials the latest address while a pooled connection to the old one is kept.
// A name in the hosts file (a temp file, REMORA_HOSTS_FILE) and `localhost` resolve
// without a DNS query. /clusters, /config_dump and /stats show the resolutions.

import t from 'tap';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { admin, namedUpstream, request, routesConfig, startRemora } from '../helpers/remora.js';
import { startDnsServer } from '../helpers/dns-server.js';

const waitUntil = async (what: string, cond: () => Promise<boolean>, ms = 5000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

interface ClusterView {
  name: string;
  dns?: { type: string; attempt: number; failure: number; empty: number; names: { hostname: string; addresses: string[] | null }[] };
  endpoints: { address: string; port: number; hostname?: string; dial?: string }[];
}

t.test('strict and logical DNS clusters through a running Remora', async (t) => {
  const dns = await startDnsServer();
  t.teardown(() => dns.close());
  const a = await namedUpstream('a');
  const b = await namedUpstream('b');
  t.teardown(() => Promise.all([a.close(), b.close()]));
  let bConnections = 0;
  b.server.on('connection', () => bConnections++);
  dns.set('svc-a.test', ['127.0.0.1']);
  dns.set('svc-b.test', ['127.0.0.1']);
  dns.set('svc-l.test', ['127.0.0.1']);
  // svc-h.test is only in the hosts file; the DNS server would answer NXDOMAIN for it.
  const hostsDir = mkdtempSync(join(tmpdir(), 'remora-dns-hosts-'));
  t.teardown(() => rmSync(hostsDir, { recursive: true, force: true }));
  const hostsFile = join(hostsDir, 'hosts');
  writeFileSync(hostsFile, '# test hosts file\n127.0.0.1  SVC-H.test  # the upstream b\n');
  const dnsBlock = (type: string) => ({
    type, refresh_rate_ms: 100, lookup_family: 'v4_only', resolvers: [dns.address],
    failure_refresh_rate: { base_ms: 50, max_ms: 100 }, query_timeout_ms: 300, query_tries: 1,
  });
  const remora = await startRemora(routesConfig(
    [
      { name: 'logical', match: { prefix: '/logical' }, route: { cluster: 'logical' } },
      { name: 'hosts', match: { prefix: '/hosts' }, route: { cluster: 'hosts' } },
      { name: 'strict', match: { prefix: '/' }, route: { cluster: 'strict' } },
    ],
    [
      { name: 'strict', connect_timeout_ms: 500, endpoints: [{ address: 'svc-a.test', port: a.port }, { address: 'svc-b.test', port: b.port }], dns: dnsBlock('strict') },
      { name: 'logical', connect_timeout_ms: 500, endpoints: [{ address: 'svc-l.test', port: a.port }], dns: dnsBlock('logical') },
      { name: 'hosts', connect_timeout_ms: 500, endpoints: [{ address: 'svc-h.test', port: b.port }, { address: 'localhost', port: a.port }], dns: dnsBlock('strict') },
    ],
  ), { REMORA_HOSTS_FILE: hostsFile });
  t.teardown(() => remora.stop());
  const port = remora.ports.main;
  const clusters = async (): Promise<ClusterView[]> => JSON.parse((await admin(remora.adminPort, '/clusters')).text).clusters as ClusterView[];
  const cluster = async (name: string): Promise<ClusterView> => (await clusters()).find((c) => c.name === name)!;
  const served = async (n: number, path = '/'): Promise<Record<string, number>> => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const r = await request(port, { path });
      const key = r.status === 200 ? r.text : `${r.status} ${String(r.headers['x-remora-flags'])}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  };

  await t.test('both names resolve: traffic reaches both upstreams', async (t) => {
    await waitUntil('two endpoints', async () => (await cluster('strict')).endpoints.length === 2);
    t.same(await served(10), { a: 5, b: 5 }, 'round robin over the resolved endpoints');
    const view = await cluster('strict');
    t.same(view.endpoints.map((e) => [e.address, e.port, e.hostname]), [['127.0.0.1', a.port, 'svc-a.test'], ['127.0.0.1', b.port, 'svc-b.test']]);
    t.equal(view.dns?.type, 'strict');
    const dump = JSON.parse((await admin(remora.adminPort, '/config_dump')).text) as {
      config: { clusters: { name: string; endpoints: { address: string }[] }[] };
      resolved_endpoints: Record<string, { address: string; hostname?: string }[]>;
    };
    t.same(dump.config.clusters.find((c) => c.name === 'strict')!.endpoints.map((e) => e.address), ['svc-a.test', 'svc-b.test'], 'config_dump: endpoints as written');
    t.same(dump.resolved_endpoints.strict.map((e) => e.hostname), ['svc-a.test', 'svc-b.test'], 'config_dump: resolved addresses');
    const stats = (await admin(remora.adminPort, '/stats?filter=update_')).text;
    t.match(stats, /cluster\.strict\.update_attempt: [1-9]/);
    t.match(stats, /cluster\.strict\.update_success: [1-9]/);
    const metrics = (await admin(remora.adminPort, '/metrics')).text;
    t.match(metrics, /remora_cluster_dns_resolutions_total\{cluster="strict",result="success"\} [1-9]/);
  });

  await t.test('svc-a stops resolving: its last good address stays', async (t) => {
    const failures = (await cluster('strict')).dns!.failure;
    dns.mode('svc-a.test', 'servfail');
    await waitUntil('failures', async () => (await cluster('strict')).dns!.failure >= failures + 2);
    t.same(await served(10), { a: 5, b: 5 }, 'still both');
    dns.mode('svc-a.test', 'drop'); // no answer at all: a timeout, also a failure
    await new Promise((r) => setTimeout(r, 500));
    t.same(await served(4), { a: 2, b: 2 }, 'still both after timeouts');
  });

  await t.test('svc-a answers empty: traffic moves to svc-b', async (t) => {
    const before = bConnections;
    dns.set('svc-a.test', []);
    await waitUntil('svc-a removed', async () => (await cluster('strict')).endpoints.length === 1);
    t.same(await served(6), { b: 6 });
    t.equal(bConnections, before, 'the pooled connection to svc-b was kept (no new one)');
    t.ok((await cluster('strict')).dns!.empty > 0, 'update_empty counted');
    dns.mode('svc-b.test', 'nxdomain');
    await waitUntil('no endpoints', async () => (await cluster('strict')).endpoints.length === 0);
    t.same(await served(2), { '503 UH': 2 }, 'no address left: 503 UH');
    dns.set('svc-a.test', ['127.0.0.1']);
    await waitUntil('svc-a back', async () => (await cluster('strict')).endpoints.length === 1);
    t.same(await served(2), { a: 2 });
  });

  await t.test('logical: new connections dial the latest address, pooled ones are kept', async (t) => {
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => keepAlive.destroy());
    await waitUntil('logical endpoint', async () => (await cluster('logical')).endpoints.length === 1);
    let view = await cluster('logical');
    t.same(view.endpoints.map((e) => [e.address, e.dial]), [['svc-l.test', '127.0.0.1']], 'one endpoint named by its host name');
    t.equal((await request(port, { path: '/logical', agent: keepAlive })).text, 'a');
    // Nothing listens on 127.0.0.2: only a new upstream connection would notice.
    dns.set('svc-l.test', ['127.0.0.2']);
    await waitUntil('new address', async () => (await cluster('logical')).endpoints[0]?.dial === '127.0.0.2');
    view = await cluster('logical');
    t.equal(view.endpoints[0].address, 'svc-l.test');
    t.equal((await request(port, { path: '/logical', agent: keepAlive })).text, 'a', 'the pooled connection to the old address still serves');
    dns.set('svc-l.test', []);
    await new Promise((r) => setTimeout(r, 300));
    t.equal((await cluster('logical')).endpoints[0]?.dial, '127.0.0.2', 'an empty answer keeps the address');
  });

  await t.test('a name in the hosts file and localhost resolve without DNS', async (t) => {
    await waitUntil('hosts endpoints', async () => (await cluster('hosts')).endpoints.length === 2);
    const view = await cluster('hosts');
    t.same(view.endpoints.map((e) => [e.address, e.port, e.hostname]), [['127.0.0.1', b.port, 'svc-h.test'], ['127.0.0.1', a.port, 'localhost']], 'both resolved to 127.0.0.1');
    t.same(await served(4, '/hosts'), { a: 2, b: 2 }, 'traffic reaches both');
    t.equal(dns.queries('svc-h.test'), 0, 'svc-h.test was never asked of DNS');
    t.equal(dns.queries('localhost'), 0, 'localhost was never asked of DNS');
    t.ok(view.dns!.attempt > 0 && view.dns!.failure === 0 && view.dns!.empty === 0, `counted as successful resolutions: ${JSON.stringify(view.dns)}`);
  });
});
