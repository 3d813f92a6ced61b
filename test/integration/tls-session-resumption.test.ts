// TLS session resumption on a listener, through the real proxy (1 worker): by default
// (`session_resumption: tickets`) a TLS 1.2 client gets a session ticket and resumes with
// it; with `cache` (Envoy's disable_stateless_session_resumption) it gets none and resumes
// from the worker's session cache; with `none` (and disable_stateful_session_resumption)
// it does not resume. Real peers: Node's tls client and openssl s_client.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import t from 'tap';
import { TestPki } from '../helpers/certs.js';
import { startRemora, startUpstream } from '../helpers/remora.js';

const pki = new TestPki('tickets');
t.teardown(() => pki.remove());
pki.ca('ca');
pki.leaf('server', 'ca', { dns: 'backend.local' });

const app = await startUpstream((req, res) => {
  req.resume();
  res.end('ok');
});
t.teardown(() => app.close());

const listener = (name: string, extra: Record<string, unknown>) => ({
  name,
  address: '127.0.0.1',
  port: 0,
  tls: { cert_file: pki.file('server.pem'), key_file: pki.file('server.key'), ...extra },
  virtual_hosts: [{ name: 'app', domains: ['*'], routes: [{ name: 'all', match: { prefix: '/' }, route: { cluster: 'app' } }] }],
});
const remora = await startRemora({
  workers: 1,
  admin: { address: '127.0.0.1', port: 0 },
  listeners: [listener('tickets', {}), listener('no-tickets', { session_resumption: 'cache' }), listener('no-resumption', { session_resumption: 'none' })],
  clusters: [{ name: 'app', endpoints: [{ address: '127.0.0.1', port: app.port }] }],
});
t.teardown(() => remora.stop());

/** One TLS 1.2 handshake; what the server gave to resume with, and whether `session`
 *  (from an earlier handshake) was resumed. */
function handshake(port: number, session?: Buffer): Promise<{ ticket: boolean; session: Buffer; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'backend.local', ca: readFileSync(pki.file('ca.pem')), maxVersion: 'TLSv1.2', session });
    socket.once('secureConnect', () => {
      const result = { ticket: socket.getTLSTicket() !== undefined, session: socket.getSession()!, reused: socket.isSessionReused() };
      socket.end();
      resolve(result);
    });
    socket.once('error', reject);
  });
}

t.test('by default a session ticket is issued, and the session resumes with it', async (t) => {
  const first = await handshake(remora.ports.tickets);
  t.ok(first.ticket, 'expected a session ticket from the listener');
  const again = await handshake(remora.ports.tickets, first.session);
  t.ok(again.reused, 'expected the session to resume');
});

t.test('cache issues no ticket; the session resumes from the worker\'s cache', async (t) => {
  const first = await handshake(remora.ports['no-tickets']);
  t.notOk(first.ticket, 'expected no session ticket');
  const again = await handshake(remora.ports['no-tickets'], first.session);
  t.ok(again.reused, 'expected the session to resume by its id');
});

t.test('openssl s_client sees a ticket on one listener and none on the other', async (t) => {
  const sClient = (port: number): string => execFileSync('sh', ['-c', `openssl s_client -connect 127.0.0.1:${port} -tls1_2 -CAfile ${pki.file('ca.pem')} </dev/null 2>&1 || true`],
    { encoding: 'utf8', timeout: 10_000 });
  t.match(sClient(remora.ports.tickets), /TLS session ticket lifetime hint/, 'expected a ticket with tickets on');
  t.notMatch(sClient(remora.ports['no-tickets']), /TLS session ticket lifetime hint/, 'expected no ticket with session_resumption: cache');
});

t.test('none issues no ticket and resumes nothing', async (t) => {
  const first = await handshake(remora.ports['no-resumption']);
  t.notOk(first.ticket, 'expected no session ticket');
  const again = await handshake(remora.ports['no-resumption'], first.session);
  t.notOk(again.reused, 'expected a full handshake');
});
