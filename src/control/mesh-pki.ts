// Certificate helpers shared by the mesh CA (src/control-plane/mesh-ca.ts) and the
// sidecar's identity client (src/control/mesh-identity.ts). Node's crypto reads
// certificates and keys but cannot create certificates or CSRs, so @peculiar/x509 does
// that, on Node's WebCrypto. It is loaded on first use only (with reflect-metadata, which
// its dependency injection needs first): a sidecar without a mesh identity never loads it.

import { createPrivateKey, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';
import { chmodSync, renameSync, writeFileSync } from 'node:fs';
import { sansOfType } from '../tls/certificates.js';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

export type X509Module = typeof import('@peculiar/x509');

/** ECDSA P-256 with SHA-256: keys, CSRs and the certificates the CA creates. */
export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** OID of the subjectAltName extension (CSR extensions are looked up by OID string). */
export const SAN_OID = '2.5.29.17';

let x509: Promise<X509Module> | null = null;

/** @peculiar/x509, set up to use Node's WebCrypto. */
export function loadX509(): Promise<X509Module> {
  x509 ??= (async () => {
    await import('reflect-metadata');
    const mod = await import('@peculiar/x509');
    mod.cryptoProvider.set(webcrypto as unknown as Parameters<typeof mod.cryptoProvider.set>[0]);
    return mod;
  })();
  return x509;
}

/** DER bytes as a PEM block. */
export function pemBlock(label: string, der: ArrayBuffer | Uint8Array): string {
  const b64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

/** A new extractable ECDSA P-256 key pair. */
export async function generateEcKeyPair(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
}

/** A WebCrypto private key as PKCS#8 PEM ("PRIVATE KEY"). */
export async function privateKeyPem(key: CryptoKey): Promise<string> {
  return pemBlock('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', key));
}

/** A PEM private key (PKCS#8, SEC1 or PKCS#1) as a WebCrypto signing key, with the
 *  algorithm that signs with it: ECDSA (P-256, P-384) or RSASSA-PKCS1-v1_5, SHA-256. */
export async function importSigningKey(pem: string): Promise<{ key: CryptoKey; algorithm: { name: string; hash: string }; keyObject: KeyObject }> {
  const keyObject = createPrivateKey(pem);
  const der = keyObject.export({ format: 'der', type: 'pkcs8' });
  if (keyObject.asymmetricKeyType === 'ec') {
    const curve = { prime256v1: 'P-256', secp384r1: 'P-384' }[keyObject.asymmetricKeyDetails?.namedCurve ?? ''];
    if (curve === undefined) throw new Error(`unsupported EC curve ${keyObject.asymmetricKeyDetails?.namedCurve ?? '?'} (P-256 or P-384)`);
    const key = await webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: curve }, false, ['sign']);
    return { key, algorithm: { name: 'ECDSA', hash: 'SHA-256' }, keyObject };
  }
  if (keyObject.asymmetricKeyType === 'rsa') {
    const key = await webcrypto.subtle.importKey('pkcs8', der, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign']);
    return { key, algorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, keyObject };
  }
  throw new Error(`unsupported key type ${keyObject.asymmetricKeyType ?? '?'} (EC P-256/P-384 or RSA)`);
}

export { splitPemCertificates } from '../tls/certificates.js';

/** The URI entries of a certificate's subjectAltName. */
export function uriSans(cert: X509Certificate): string[] {
  return sansOfType(cert.subjectAltName, 'URI');
}

/** Whether `cert` was signed by one of `issuers` (issuer name and signature). */
export function issuedByOneOf(cert: X509Certificate, issuers: readonly X509Certificate[]): boolean {
  return issuers.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
}

/** Writes files so that a reader sees either the old or the new content of each: every
 *  file goes to a temp file next to it first, then all are renamed in the order given,
 *  one right after the other. */
export function writeFilesAtomically(files: readonly { path: string; content: string; mode: number }[]): void {
  const tmp = files.map((f) => `${f.path.replace(/([^/]+)$/, '.$1')}.${process.pid}.tmp`);
  files.forEach((f, i) => {
    writeFileSync(tmp[i], f.content, { mode: f.mode });
    chmodSync(tmp[i], f.mode); // a temp file left by a crash keeps its old mode otherwise
  });
  files.forEach((f, i) => renameSync(tmp[i], f.path));
}
