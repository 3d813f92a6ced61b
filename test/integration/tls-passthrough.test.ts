// TLS passthrough by SNI and ALPN (filter_chains) in a real Remora process: `openssl
// s_server` upstreams with certificates for a.example, *.b.example, h2.example and
// default.example behind TCP listeners; `openssl s_client` and Node's tls.connect as
// clients see the certificate of the upstream their ClientHello picked (TLS is never
// terminated by Remora), an HTTP request goes through end to end, unknown names take the
// default chain or are closed (no_filter_chain_match), a plain-text client takes the
// raw_buffer chain, and `-alpn h2` takes the chain naming h2.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { freePort } from '../../src/main/ports.js';
import { TestPki } from '../helpers/certs.js';
import { startRemora, waitUntil } from '../helpers/remora.js';
import { exchange, runProgram, startEcho, stat } from '../helpers/tcp-peers.js';

const pki = new TestPki('tls-passthrough');
t.teardown(() => pki.remove());
pki.ca('ca');
const NAMES = ['a.example', 'b.example', 'h2.example', 'default.example'] as const;
type Name = (typeof NAMES)[number];
pki.leaf('a.example', 'ca', { dns: 'a.example' });
pki.leaf('b.example', 'ca', { dns: '*.b.example' });
pki.leaf('h2.example', 'ca', { dns: 'h2.example' });
pki.leaf('default.example', 'ca', { dns: 'default.example' });
const caFile = pki.file('ca.pem');
const logDir = mkdtempSync(join(tmpdir(), 'remora-tls-passthrough-'));
t.teardown(() => rmSync(logDir, { recursive: true, force: true }));
const accessLog = join(logDir, 'access.log');

/** `openssl s_server -www` with `name`'s certificate on a free port; killed by pid. */
async function sServer(name: Name, extra: string[] = []): Promise<number> {
  const port = await freePort();
  const child: ChildProcess = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', pki.file(`${name}.pem`), '-key', pki.file(`${name}.key`), '-www', '-quiet', ...extra],
    { stdio: ['pipe', 'ignore', 'ignore'] });
  t.teardown(() => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  });
  await waitUntil(`openssl s_server (${name}) listening on ${port}`, () => new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  }), 10_000, 50);
  return port;
}

const upstream: Record<Name, number> = {
  'a.example': await sServer('a.example'),
  'b.example': await sServer('b.example'),
  'h2.example': await sServer('h2.example', ['-alpn', 'h2']),
  'default.example': await sServer('default.example'),
};
const plain = await startEcho();
t.teardown(() => plain.close());

const cluster = (name: string, port: number) => ({ name, endpoints: [{ address: '127.0.0.1', port }] });
const chain = (name: string, match: Record<string, unknown>, to: string) => ({ name, match, tcp_proxy: { cluster: to } });
const sniChains = [chain('a', { server_names: ['a.example'] }, 'a'), chain('b', { server_names: ['*.b.example'] }, 'b')];
const base = { address: '127.0.0.1', port: 0, access_log: { path: accessLog }, request_headers_timeout_ms: 2000 };

const remora = await startRemora({
  workers: 2,
  admin: { address: '127.0.0.1', port: 0 },
  listeners: [
    { name: 'sni', ...base, filter_chains: sniChains, tcp_proxy: { cluster: 'default' } },
    { name: 'strict', ...base, filter_chains: sniChains },
    { name: 'mixed', ...base, filter_chains: [chain('tls', { transport_protocol: 'tls' }, 'a'), chain('raw', { transport_protocol: 'raw_buffer' }, 'plain')] },
    { name: 'alpn', ...base, filter_chains: [chain('h2', { application_protocols: ['h2'] }, 'h2')], tcp_proxy: { cluster: 'default' } },
  ],
  clusters: [
    cluster('a', upstream['a.example']), cluster('b', upstream['b.example']), cluster('h2', upstream['h2.example']),
    cluster('default', upstream['default.example']), cluster('plain', plain.port),
  ],
});
t.teardown(() => remora.stop());

/** `openssl s_client` through Remora: the subject CN of the certificate it got ('' when
 *  none), the ALPN protocol agreed, and its output. */
async function sClient(port: number, args: string[]): Promise<{ cn: string; alpn: string; out: string; code: number | null }> {
  const r = await runProgram('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', caFile, ...args], { ms: 15_000 });
  const cn = /^subject=.*?CN ?= ?([^,\n/]+)/m.exec(r.out)?.[1]?.trim() ?? '';
  const alpn = /^ALPN protocol: (\S+)/m.exec(r.out)?.[1] ?? '';
  return { cn, alpn, out: r.out, code: r.code };
}

interface LogLine { kind: string; listener: string; filter_chain: string; server_name: string | null; cluster: string; flags: string; termination: string }
function logLines(listener: string): LogLine[] {
  let text = '';
  try {
    text = readFileSync(accessLog, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogLine).filter((l) => l.kind === 'tcp' && l.listener === listener);
}

t.test('openssl s_client: the SNI picks the upstream (exact name, wildcard, unknown → default chain)', async (t) => {
  const cases: [string[], string, string][] = [
    [['-servername', 'a.example'], 'a.example', 'exact server name a.example'],
    [['-servername', 'x.b.example'], 'b.example', '*.b.example takes x.b.example'],
    [['-servername', 'deep.x.b.example'], 'b.example', '*.b.example takes deep.x.b.example'],
    [['-servername', 'c.example'], 'default.example', 'an unknown name takes the listener\'s tcp_proxy'],
    [['-servername', 'b.example'], 'default.example', '*.b.example does not take b.example itself'],
    [['-noservername'], 'default.example', 'no SNI takes the listener\'s tcp_proxy'],
  ];
  for (const [args, want, what] of cases) {
    const r = await sClient(remora.ports.sni, args);
    t.equal(r.cn, want, `${what}: expected the certificate of ${want}, got ${JSON.stringify(r.cn)} (exit ${r.code}; ${JSON.stringify(r.out.slice(0, 300))})`);
  }
  await waitUntil('6 access log lines of listener sni', async () => logLines('sni').length >= 6);
  const lines = logLines('sni');
  const a = lines.find((l) => l.server_name === 'a.example');
  t.match(a, { filter_chain: 'a', cluster: 'a', flags: '-' }, `the access log names the chain and the SNI (${JSON.stringify(a)})`);
  const unknown = lines.find((l) => l.server_name === 'c.example');
  t.match(unknown, { filter_chain: '-', cluster: 'default' }, `the default chain is logged as "-" (${JSON.stringify(unknown)})`);
});

t.test('Node tls.connect: verified certificate of the picked upstream, an HTTP request end to end', async (t) => {
  for (const [servername, want] of [['a.example', 'a.example'], ['x.b.example', 'b.example'], ['other.example', 'default.example']] as const) {
    const got = await new Promise<{ cn: string; authorized: boolean; reply: string; error?: string }>((resolve) => {
      // checkServerIdentity on: other.example gets default.example's certificate, so accept the name mismatch there only.
      const s = tls.connect({
        host: '127.0.0.1', port: remora.ports.sni, servername, ca: readFileSync(caFile),
        checkServerIdentity: servername === 'other.example' ? () => undefined : tls.checkServerIdentity,
      });
      let reply = '';
      s.on('secureConnect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
      s.on('data', (d: Buffer) => (reply += d.toString('latin1')));
      s.on('end', () => resolve({ cn: String(s.getPeerCertificate().subject?.CN ?? ''), authorized: s.authorized, reply }));
      s.on('error', (err) => resolve({ cn: '', authorized: false, reply, error: err.message }));
      s.setTimeout(10_000, () => s.destroy(new Error('timed out')));
    });
    t.equal(got.error, undefined, `${servername}: no error (got ${got.error})`);
    t.equal(got.cn, want, `${servername}: peer certificate CN ${want} (got ${JSON.stringify(got.cn)})`);
    t.ok(got.authorized, `${servername}: the chain verifies against the test CA (Remora did not touch TLS)`);
    t.match(got.reply, /^HTTP\/1\.0 200 ok\r\n/i, `${servername}: s_server's -www answer came back through Remora (${JSON.stringify(got.reply.slice(0, 40))})`);
  }
});

t.test('no default chain: an unknown name is closed and counted as no_filter_chain_match', async (t) => {
  const before = await stat(remora.adminPort, 'listener.strict.no_filter_chain_match');
  const known = await sClient(remora.ports.strict, ['-servername', 'a.example']);
  t.equal(known.cn, 'a.example', `a.example still reaches its chain (got ${JSON.stringify(known.cn)})`);
  const r = await sClient(remora.ports.strict, ['-servername', 'c.example']);
  t.equal(r.cn, '', `no certificate for c.example (got ${JSON.stringify(r.cn)})`);
  t.not(r.code, 0, `s_client fails (exit ${r.code})`);
  const err = await new Promise<string>((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: remora.ports.strict, servername: 'nobody.example', ca: readFileSync(caFile) });
    s.on('secureConnect', () => resolve('connected'));
    s.on('error', (e) => resolve(e.message));
  });
  t.not(err, 'connected', `tls.connect with an unknown name fails (${err})`);
  await waitUntil('no_filter_chain_match counted twice', async () => (await stat(remora.adminPort, 'listener.strict.no_filter_chain_match')) === before + 2);
  t.pass('listener.strict.no_filter_chain_match counted both');
});

t.test('transport_protocol: a plain-text client takes the raw_buffer chain, a TLS one the tls chain', async (t) => {
  const r = await exchange(remora.ports.mixed, 'PING plain text\r\n');
  t.equal(r.data.toString(), 'PING plain text\r\nafter FIN: 17 bytes', `plain text reached the echo server (got ${JSON.stringify(r.data.toString())})`);
  const tlsClient = await sClient(remora.ports.mixed, ['-servername', 'anything.example']);
  t.equal(tlsClient.cn, 'a.example', `a TLS client reached the tls chain's upstream (got ${JSON.stringify(tlsClient.cn)})`);
  await waitUntil('2 lines of listener mixed', async () => logLines('mixed').length >= 2);
  t.strictSame(logLines('mixed').map((l) => l.filter_chain).sort(), ['raw', 'tls'], 'each logged with its chain');
});

t.test('application_protocols: -alpn h2 takes the h2 chain, http/1.1 the default', async (t) => {
  const h2 = await sClient(remora.ports.alpn, ['-servername', 'h2.example', '-alpn', 'h2,http/1.1']);
  t.equal(h2.cn, 'h2.example', `-alpn h2,http/1.1: the h2 chain (got ${JSON.stringify(h2.cn)})`);
  t.equal(h2.alpn, 'h2', `the upstream agreed h2 with the client itself (got ${JSON.stringify(h2.alpn)})`);
  const h1 = await sClient(remora.ports.alpn, ['-servername', 'h2.example', '-alpn', 'http/1.1']);
  t.equal(h1.cn, 'default.example', `-alpn http/1.1: the default chain (got ${JSON.stringify(h1.cn)})`);
  const none = await sClient(remora.ports.alpn, ['-servername', 'h2.example']);
  t.equal(none.cn, 'default.example', `no ALPN: the default chain (got ${JSON.stringify(none.cn)})`);
});
