// Unit tests for DNS clusters' hosts file (src/main/hosts-file.ts and its use in
// dns-query.ts / dns-resolver.ts): the parser (comments, aliases, case, IPv4 and IPv6),
// lookup per family with the localhost rule, resolution with the hosts file in front of
// DNS for every lookup family, re-reading on change, and DnsClusters with real timers
// against a temp hosts file and a real UDP DNS server on 127.0.0.1.

import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createLogger } from '../../src/core/log.js';
import { resolveName } from '../../src/main/dns-query.js';
import { DnsClusters, defaultHostsPath } from '../../src/main/dns-resolver.js';
import { HostsFile, hostsAddresses, parseHosts, type HostsTable } from '../../src/main/hosts-file.js';
import { dnsClusterConfig, fakeLookup, startDnsServer } from '../helpers/dns-server.js';
import { waitUntil } from '../helpers/remora.js';

const log = createLogger({ component: 'dns-hosts-file-test' }, 'silent');

/** A temp directory, removed when the test ends. */
function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'remora-hosts-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `text` to `path` and moves its mtime forward, so a change is seen even where
 *  the file system's clock is coarse. */
let bump = 0;
function writeHosts(path: string, text: string): void {
  writeFileSync(path, text);
  const at = new Date(Date.now() + ++bump * 2000);
  utimesSync(path, at, at);
}

const SAMPLE = [
  '# The hosts file of a test',
  '127.0.0.1\tlocalhost',
  '::1     localhost ip6-localhost   # loopback, IPv6',
  '',
  '10.0.0.1  Svc.Internal  svc  svc-alias.internal',
  '10.0.0.2  svc.internal',
  'FD00:0:0::0001 svc.internal',
  '10.0.0.1  svc.internal',
  '10.0.0.9  v4only.test',
  'fd00::9   v6only.test',
  '   # an indented comment 10.0.0.3 commented.test',
  '10.0.0.4 trailing.test.   # a trailing dot',
  'not-an-ip bogus.test',
  '10.0.0.5',
  'fe80::1%eth0 scoped.test',
  '10.0.0.6 crlf.test\r',
].join('\n');

t.test('parser: names, aliases, comments, case, families', async (t) => {
  const table = parseHosts(SAMPLE);
  t.same(table.get('svc.internal'), { v4: ['10.0.0.1', '10.0.0.2'], v6: ['fd00::1'] }, 'lines of one name merge, in file order, without duplicates; IPv6 canonical');
  t.same(table.get('svc'), { v4: ['10.0.0.1'], v6: [] }, 'an alias gets the line\'s address');
  t.same(table.get('svc-alias.internal'), { v4: ['10.0.0.1'], v6: [] }, 'every alias');
  t.same(table.get('localhost'), { v4: ['127.0.0.1'], v6: ['::1'] }, 'tabs and a trailing comment');
  t.same(table.get('ip6-localhost'), { v4: [], v6: ['::1'] });
  t.same(table.get('trailing.test'), { v4: ['10.0.0.4'], v6: [] }, 'a trailing dot is dropped');
  t.same(table.get('crlf.test'), { v4: ['10.0.0.6'], v6: [] }, 'CRLF line ends');
  for (const name of ['commented.test', 'bogus.test', 'scoped.test', 'not-an-ip', '10.0.0.5', 'Svc.Internal']) {
    t.equal(table.get(name), undefined, `no entry for ${name}`);
  }
  t.equal(parseHosts('').size, 0, 'empty text, empty table');
});

t.test('lookup per family, case-insensitive, localhost', async (t) => {
  const table = parseHosts(SAMPLE);
  t.same(hostsAddresses(table, 'SVC.internal', false), ['10.0.0.1', '10.0.0.2'], 'names match case-insensitively');
  t.same(hostsAddresses(table, 'svc.internal.', true), ['fd00::1'], 'a trailing dot on the asked name');
  t.equal(hostsAddresses(table, 'v4only.test', true), null, 'no address of that family: not answered (DNS is asked)');
  t.equal(hostsAddresses(table, 'absent.test', false), null, 'not in the file');
  t.same(hostsAddresses(table, 'localhost', false), ['127.0.0.1'], 'localhost from the file');
  const empty: HostsTable = new Map();
  t.same(hostsAddresses(empty, 'localhost', false), ['127.0.0.1'], 'localhost without the file: loopback IPv4');
  t.same(hostsAddresses(empty, 'LocalHost', true), ['::1'], 'loopback IPv6');
  t.same(hostsAddresses(empty, 'api.localhost', false), ['127.0.0.1'], 'a name under .localhost');
  t.equal(hostsAddresses(empty, 'notlocalhost', false), null, 'only localhost and names under .localhost');
  const v4OnlyLocal = parseHosts('127.0.0.1 localhost');
  t.same(hostsAddresses(v4OnlyLocal, 'localhost', true), ['::1'], 'the family the file lacks is filled with loopback');
});


t.test('resolution: the hosts file before DNS, for every lookup family', async (t) => {
  const hosts = { table: parseHosts(SAMPLE), ttlS: 7 };
  const dnsRecords = { 'A svc.internal': [{ address: '192.0.2.1', ttl: 30 }], 'AAAA v4only.test': [{ address: '2001:db8::1', ttl: 30 }] };
  const cases: [string, Parameters<typeof resolveName>[2], string[], string[]][] = [
    ['svc.internal', 'v4_only', ['10.0.0.1', '10.0.0.2'], []],
    ['svc.internal', 'v6_only', ['fd00::1'], []],
    ['svc.internal', 'auto', ['fd00::1'], []],
    ['svc.internal', 'v4_preferred', ['10.0.0.1', '10.0.0.2'], []],
    ['svc.internal', 'all', ['10.0.0.1', '10.0.0.2', 'fd00::1'], []],
    ['v4only.test', 'v4_only', ['10.0.0.9'], []],
    ['v4only.test', 'v4_preferred', ['10.0.0.9'], []],
    ['v4only.test', 'all', ['10.0.0.9'], []],
    ['v6only.test', 'auto', ['fd00::9'], []],
    // Per family, as c-ares: the file has no AAAA for the name, so DNS is asked for it.
    ['v4only.test', 'auto', ['2001:db8::1'], ['AAAA v4only.test']],
    ['v4only.test', 'v6_only', ['2001:db8::1'], ['AAAA v4only.test']],
    ['v6only.test', 'v4_preferred', ['fd00::9'], ['A v6only.test']],
    ['localhost', 'all', ['127.0.0.1', '::1'], []],
    ['app.localhost', 'auto', ['::1'], []],
    ['absent.test', 'all', [], ['A absent.test', 'AAAA absent.test']],
  ];
  for (const [name, family, addresses, asked] of cases) {
    const l = fakeLookup(dnsRecords);
    const r = await resolveName(l, name, family, hosts);
    t.same(r.kind === 'answer' ? r.addresses : r, addresses, `${name} ${family}: addresses`);
    t.same(l.asked, asked, `${name} ${family}: DNS asked for ${asked.length === 0 ? 'nothing' : asked.join(', ')}`);
  }
  const l = fakeLookup({});
  t.same(await resolveName(l, 'svc', 'v4_only', hosts), { kind: 'answer', addresses: ['10.0.0.1'], ttlS: 7 }, 'a hosts answer has the TTL given (the refresh rate)');
  const mixed = await resolveName(fakeLookup(dnsRecords), 'v4only.test', 'auto', { ...hosts, ttlS: 60 });
  t.same(mixed, { kind: 'answer', addresses: ['2001:db8::1'], ttlS: 30 }, 'DNS records keep their TTL');
  const noFile = fakeLookup(dnsRecords);
  t.same(await resolveName(noFile, 'svc.internal', 'v4_only'), { kind: 'answer', addresses: ['192.0.2.1'], ttlS: 30 }, 'without a hosts view: DNS only');
});

t.test('HostsFile: parsed once, read again when it changes, unreadable is empty', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'hosts');
  writeHosts(path, '10.0.0.1 one.test\n');
  const lines: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(chunk.toString()); done(); } });
  const debugLog = pino({ level: 'debug' }, sink);
  const hosts = new HostsFile(path, debugLog);

  t.same((await hosts.current()).get('one.test')?.v4, ['10.0.0.1'], 'first read');
  await hosts.current();
  await hosts.current();
  t.equal(hosts.parseCount, 1, 'not parsed again while unchanged');
  const together = await Promise.all([hosts.current(), hosts.current(), hosts.current()]);
  t.ok(together.every((tb) => tb === together[0]), 'calls at the same time share one check');

  writeHosts(path, '10.0.0.2 one.test\n10.0.0.3 two.test\n');
  const changed = await hosts.current();
  t.equal(hosts.parseCount, 2, 'parsed again after a change');
  t.same(changed.get('one.test')?.v4, ['10.0.0.2'], 'the new address');
  t.same(changed.get('two.test')?.v4, ['10.0.0.3'], 'a new name');

  rmSync(path);
  t.equal((await hosts.current()).size, 0, 'removed: an empty table');
  t.equal((await hosts.current()).size, 0, 'still empty');
  const debug = lines.filter((l) => l.includes('hosts file not readable'));
  t.equal(debug.length, 1, `logged once while unreadable; saw ${debug.length}`);
  t.match(debug[0], /"level":20/, 'at debug level');
  t.match(debug[0], /ENOENT/, 'with the error code');

  writeHosts(path, '10.0.0.4 one.test\n');
  t.same((await hosts.current()).get('one.test')?.v4, ['10.0.0.4'], 'readable again');
  t.equal(defaultHostsPath({}), '/etc/hosts', 'default path');
  t.equal(defaultHostsPath({ REMORA_HOSTS_FILE: '/tmp/h' }), '/tmp/h', 'REMORA_HOSTS_FILE names another');
  t.equal(defaultHostsPath({ REMORA_HOSTS_FILE: '' }), '/etc/hosts', 'an empty REMORA_HOSTS_FILE is the default');
});

t.test('DnsClusters: names from the hosts file never reach DNS; a change is followed', async (t) => {
  const server = await startDnsServer();
  t.teardown(() => server.close());
  server.set('dns.test', ['127.0.0.20']);
  const dir = tempDir(t);
  const path = join(dir, 'hosts');
  writeHosts(path, '127.0.0.10 Hosted.Test hosted-alias.test\n');
  const cfg = dnsClusterConfig({
    type: 'strict', refresh_rate_ms: 100, lookup_family: 'v4_only', resolvers: [server.address], query_timeout_ms: 200, query_tries: 1,
  }, [{ address: 'hosted.test', port: 1 }, { address: 'HOSTED-ALIAS.test', port: 2 }, { address: 'dns.test', port: 3 }, { address: 'localhost', port: 4 }]);
  const dns = new DnsClusters(log, () => {}, { hostsPath: path });
  t.teardown(() => dns.stop());
  dns.configure(cfg);
  await waitUntil('all four names', async () => (dns.resolved(cfg).c?.length ?? 0) === 4);
  t.same(dns.resolved(cfg).c, [
    { address: '127.0.0.10', port: 1, hostname: 'hosted.test' },
    { address: '127.0.0.10', port: 2, hostname: 'HOSTED-ALIAS.test' },
    { address: '127.0.0.20', port: 3, hostname: 'dns.test' },
    { address: '127.0.0.1', port: 4, hostname: 'localhost' },
  ], 'hosts file, alias, DNS and localhost endpoints');
  const hosted = dns.view('c').find((v) => v.hostname === 'hosted.test');
  t.equal(hosted?.last_ttl_s, 0.1, 'a hosts answer has the refresh rate as its TTL');
  t.equal(hosted?.last_error, null, 'no error');
  const counts = dns.countsOf('c')!;
  t.ok(counts.success >= 4 && counts.failure === 0, `counted as successes (success ${counts.success}, failure ${counts.failure})`);

  // The file changes: the next resolution reads it again.
  writeHosts(path, '127.0.0.11 hosted.test\n');
  await waitUntil('the new address', async () => dns.resolved(cfg).c!.some((e) => e.hostname === 'hosted.test' && e.address === '127.0.0.11'));
  t.pass('the changed file answered');
  // The alias left the file: it goes to DNS, which does not know it (NXDOMAIN, empty).
  await waitUntil('alias gone', async () => !dns.resolved(cfg).c!.some((e) => e.hostname === 'HOSTED-ALIAS.test'));
  t.ok(server.queries('hosted-alias.test') > 0, 'a name no longer in the file is asked of DNS');
  t.equal(server.queries('hosted.test'), 0, 'a name in the file was never asked of DNS');
  t.equal(server.queries('localhost'), 0, 'localhost was never asked of DNS');
  t.ok(server.queries('dns.test') > 0, 'a name not in the file is asked of DNS');

  // The file goes: everything but localhost goes to DNS; the last good addresses stay
  // only through failures, and DNS answers NXDOMAIN for hosted.test (empty).
  rmSync(path);
  await waitUntil('hosted.test asked of DNS', async () => server.queries('hosted.test') > 0);
  await waitUntil('hosted.test gone', async () => !dns.resolved(cfg).c!.some((e) => e.hostname === 'hosted.test'));
  t.ok(dns.resolved(cfg).c!.some((e) => e.hostname === 'localhost' && e.address === '127.0.0.1'), 'localhost still resolves without the file');
  t.equal(server.queries('localhost'), 0, 'and still without DNS');
});
