// Peer identity and XFCC from real certificates (made with the openssl CLI), and
// authorization patterns: exact, prefix, deny wins, no identity matches nothing.
import { readFileSync } from 'node:fs';
import { createHash, X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import t from 'tap';
import { CompiledAuthorization } from '../../src/filters/authorization.js';
import { subjectString } from '../../src/tls/certificates.js';
import { peerIdentity } from '../../src/tls/peer-identity.js';
import { TestPki } from '../helpers/certs.js';

const pki = new TestPki('peer-identity');
t.teardown(() => pki.remove());
pki.ca('ca');
pki.leaf('spiffe', 'ca', { uri: 'spiffe://cluster.local/ns/a/sa/b', dns: 'b.a.svc' });
pki.leaf('dns-only', 'ca', { dns: 'api.example.com' });
pki.leaf('no-san', 'ca');

/** The shape tls.TLSSocket#getPeerCertificate() gives, from a PEM file. */
function peerCert(name: string): PeerCertificate {
  const x = new X509Certificate(readFileSync(pki.file(`${name}.pem`)));
  const subject: Record<string, string> = {};
  for (const line of x.subject.split('\n')) {
    const eq = line.indexOf('=');
    subject[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return { raw: x.raw, subject, subjectaltname: x.subjectAltName } as unknown as PeerCertificate;
}

t.test('identity: URI SAN first, then DNS SAN, then the subject', async (t) => {
  t.equal(peerIdentity(peerCert('spiffe'), '')?.id, 'spiffe://cluster.local/ns/a/sa/b', 'expected the SPIFFE URI');
  t.equal(peerIdentity(peerCert('dns-only'), '')?.id, 'api.example.com', 'expected the DNS SAN');
  t.equal(peerIdentity(peerCert('no-san'), '')?.id, 'O=remora-test,CN=no-san', 'expected the subject');
  t.equal(peerIdentity({ raw: Buffer.alloc(0) } as unknown as PeerCertificate, ''), null, 'expected no identity for an empty certificate');
});

t.test('XFCC element: By, Hash, Subject (quoted), URI and every DNS', async (t) => {
  const cert = peerCert('spiffe');
  const hash = createHash('sha256').update(cert.raw).digest('hex');
  t.equal(
    peerIdentity(cert, 'spiffe://cluster.local/ns/me/sa/proxy')?.xfcc,
    `By=spiffe://cluster.local/ns/me/sa/proxy;Hash=${hash};Subject="O=remora-test,CN=spiffe";URI=spiffe://cluster.local/ns/a/sa/b;DNS=b.a.svc`,
  );
  t.notMatch(peerIdentity(cert, '')?.xfcc ?? '', /By=/, 'expected no By without a local identity');
  t.equal(subjectString({ CN: 'a,b', O: 'x"y' } as unknown as PeerCertificate['subject']), 'O=x\\"y,CN=a\\,b', 'expected RDN escaping');
});

t.test('authorization: exact and prefix, deny wins, no identity matches nothing', async (t) => {
  const authz = new CompiledAuthorization({
    allow: ['spiffe://cluster.local/ns/payments/*', 'spiffe://cluster.local/ns/web/sa/frontend'],
    deny: ['spiffe://cluster.local/ns/payments/sa/batch'],
  });
  t.ok(authz.permits('spiffe://cluster.local/ns/payments/sa/api'), 'prefix allows');
  t.ok(authz.permits('spiffe://cluster.local/ns/web/sa/frontend'), 'exact allows');
  t.notOk(authz.permits('spiffe://cluster.local/ns/web/sa/frontend2'), 'exact is exact');
  t.notOk(authz.permits('spiffe://cluster.local/ns/payments/sa/batch'), 'deny wins over a matching allow');
  t.notOk(authz.permits(''), 'no certificate, no access when allow is set');
  const denyOnly = new CompiledAuthorization({ allow: [], deny: ['spiffe://cluster.local/ns/batch/*'] });
  t.ok(denyOnly.permits('spiffe://cluster.local/ns/web/sa/x'), 'deny-only lets others through');
  t.ok(denyOnly.permits(''), 'deny-only lets a client without a certificate through (as Envoy RBAC DENY)');
  t.notOk(denyOnly.permits('spiffe://cluster.local/ns/batch/sa/job'), 'deny-only refuses a match');
  const any = new CompiledAuthorization({ allow: ['*'], deny: [] });
  t.ok(any.permits('anything'), '"*" allows any verified identity');
  t.notOk(any.permits(''), '"*" still needs an identity');
});
