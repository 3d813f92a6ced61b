// Pinned trust for the mesh identity (src/control/mesh-trust.ts) on certificates made by
// openssl: a leaf chains to a pinned root directly or through an intermediate; a leaf of
// another CA does not; a CA bundle is accepted when it holds the pinned root, a root
// signed by it, or the self-signed twin of a cross-signed new root, and refused when it
// brings a root nothing pinned vouches for; the anchors come from trust_bundle_file, else
// ca.pem, else none.

import t from 'tap';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleProblem, chainProblem, currentAnchors } from '../../src/control/mesh-trust.js';

const dir = mkdtempSync(join(tmpdir(), 'remora-mesh-trust-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const f = (n: string): string => join(dir, n);
const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
writeFileSync(f('ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
writeFileSync(f('leaf.ext'), 'subjectAltName=URI:spiffe://cluster.local/ns/a/sa/b\n');

function root(name: string): void {
  // openssl's v3_ca section: basicConstraints CA:TRUE, subject and authority key ids.
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.pem`), '-days', '2', '-subj', `/CN=${name}`);
}
/** `name`.pem signed by `issuer`, with `key` (default: a new one) and CN=`cn`. */
function signed(name: string, issuer: string, ext: string, cn = name, key?: string): void {
  const k = key ?? f(`${name}.key`);
  if (key === undefined) ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', k);
  ssl('req', '-new', '-key', k, '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
  ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${issuer}.pem`), '-CAkey', f(`${issuer}.key`), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '2', '-extfile', f(ext));
}
const cert = (name: string): X509Certificate => new X509Certificate(readFileSync(f(`${name}.pem`)));

root('r1');
root('r2');
root('rogue');
signed('r2x', 'r1', 'ca.ext', 'r2', f('r2.key')); // r2's key and subject, signed by r1: the cross-signed new root
signed('inter', 'r1', 'ca.ext');
signed('leaf1', 'r1', 'leaf.ext');
signed('leaf-inter', 'inter', 'leaf.ext');
signed('leaf2', 'r2', 'leaf.ext');
signed('leaf-rogue', 'rogue', 'leaf.ext');

t.test('chains', async (t) => {
  const pinned = [cert('r1')];
  t.equal(chainProblem(cert('leaf1'), [], pinned), null, 'signed by the pinned root');
  t.equal(chainProblem(cert('leaf-inter'), [cert('inter')], pinned), null, 'through an intermediate the answer carries');
  t.match(chainProblem(cert('leaf-inter'), [], pinned), /does not chain to the pinned roots \(CN=r1\)/, 'the intermediate missing');
  t.match(chainProblem(cert('leaf-rogue'), [cert('rogue')], pinned), /does not chain/, 'another CA, with its own root in the chain');
  t.equal(chainProblem(cert('leaf2'), [cert('r2x')], pinned), null, 'a leaf of the new root, through its cross-signed twin');
});

t.test('bundles', async (t) => {
  const pinned = [cert('r1')];
  t.equal(bundleProblem([cert('r1')], pinned), null, 'the same root');
  t.equal(bundleProblem([cert('r2'), cert('r2x')], pinned), null, 'a new root with its cross-signed twin');
  t.equal(bundleProblem([cert('r1'), cert('r2'), cert('r2x')], pinned), null);
  t.match(bundleProblem([cert('r2')], pinned), /holds CN=r2 .*neither a pinned root nor signed by one/, 'the new root alone: nothing pinned vouches for it');
  t.match(bundleProblem([cert('r1'), cert('rogue')], pinned), /holds CN=rogue/, 'a rogue root slipped in beside the real one');
  t.equal(bundleProblem([cert('r2')], [cert('r2'), cert('r2x')]), null, 'once the twin pair is pinned, the new root alone is fine');
});

t.test('anchors', async (t) => {
  t.same(currentAnchors(undefined, f('missing.pem')), { certs: [], source: 'none' }, 'first contact');
  const pinned = currentAnchors(undefined, f('r1.pem'));
  t.equal(pinned.source, 'ca.pem');
  t.equal(pinned.certs[0].subject, 'CN=r1');
  writeFileSync(f('bundle.pem'), readFileSync(f('r1.pem'), 'utf8') + readFileSync(f('r2.pem'), 'utf8'));
  const file = currentAnchors(f('bundle.pem'), f('r1.pem'));
  t.same([file.source, file.certs.map((c) => c.subject)], ['trust_bundle_file', ['CN=r1', 'CN=r2']], 'the trust bundle wins over ca.pem');
  t.throws(() => currentAnchors(f('missing.pem'), f('r1.pem')), /trust_bundle_file .* does not exist/);
  writeFileSync(f('empty.pem'), 'nothing here\n');
  t.throws(() => currentAnchors(f('empty.pem'), f('r1.pem')), /holds no PEM certificate/);
});
