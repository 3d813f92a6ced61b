// The mesh CA of the reference control plane (`remora control-plane --ca-dir DIR`):
// remora.control.v1.MeshCertificateService (proto/remora/control/v1/ca.proto), served on
// the ADS server, so sidecars get certificates over the connection they use for xDS.
// It signs a sidecar's CSR for its SPIFFE identity: the CSR's signature must verify and
// its subjectAltName must be exactly one URI, a SPIFFE ID of the CA's trust domain. The
// certificate carries that URI SAN only (critical, empty subject, as SPIFFE X.509-SVIDs
// do), CA:false, digitalSignature + keyEncipherment, serverAuth + clientAuth, a random
// 16-byte serial, notBefore 60 s in the past (clock skew) and notAfter per the requested
// validity clamped to 10 min .. 15 days. The CA key and certificate are DIR/ca.key and
// DIR/ca.pem, generated (EC P-256, 10 years) when both are absent. docs/mesh-ca.md.
// Who may ask for which SPIFFE ID is ca-authn.ts's decision: the caller's token (or the
// client certificate it renews with, caller.ts) is authenticated before the CSR is read,
// and the identity the CSR asks for must be one the credential proves. Issuances are counted by identity, refusals by reason
// (mesh-ca-stats.ts); each issuance is logged with identity, principal and peer.

import { randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../core/log.js';
import { parseSpiffeId, trustDomainProblem } from '../core/spiffe.js';
import {
  EC_P256, SAN_OID, generateEcKeyPair, importSigningKey, issuedByOneOf, loadX509, privateKeyPem, splitPemCertificates, writeFilesAtomically,
  type X509Module,
} from '../control/mesh-pki.js';
import { loadMeshCaService, type CreateCertificateRequest } from '../control/remora-protos.js';
import { openCaAuthn } from './ca-authn-open.js';
import { refuse as refusal, type AuthnMethod, type AuthnOutcome, type CaAuthn, type CaAuthnOptions, type Principal, type Refusal, type RefusalReason } from './ca-authn.js';
import { authenticateCall, type ServerCall } from './caller.js';
import { MeshCaCounters, RefusalLogLimiter, type MeshCaStats } from './mesh-ca-stats.js';

export type { MeshCaStats } from './mesh-ca-stats.js';

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
/** Validity granted when a request asks for none (0): 24 h. */
export const DEFAULT_CERT_TTL_S = 86_400;
/** The longest validity granted: 15 days. Longer requests get this. */
export const MAX_CERT_TTL_S = 15 * 86_400;
/** The shortest validity granted: 10 minutes. Shorter requests get this. */
export const MIN_CERT_TTL_S = 600;
/** notBefore is this far in the past, for peers whose clocks run behind. */
const BACKDATE_S = 60;
/** Validity of a CA certificate generated here. */
const CA_VALIDITY_S = 10 * 365 * 86_400;
/** A CSR larger than this is refused unread. */
const MAX_CSR_BYTES = 16 * 1024;
/** OID of the subjectKeyIdentifier extension. */
const SKI_OID = '2.5.29.14';

/** The CA directory and certificate settings, and who may ask (CaAuthnOptions: with none
 *  of jwksFile, bootstrapTokensFile, insecureAllowAnyIdentity, every request is refused). */
export interface MeshCaOptions extends CaAuthnOptions {
  /** Holds ca.key and ca.pem; both are created when both are absent. */
  readonly dir: string;
  /** Default cluster.local. */
  readonly trustDomain?: string;
  /** Validity for requests that ask for none, seconds. Default 24 h; at most 15 days. */
  readonly defaultTtlSeconds?: number;
  /** TEST ONLY: the shortest validity granted (default 600 s). The integration tests
   *  lower it to renew within seconds; a production CA never should. */
  readonly minTtlSeconds?: number;
}

export type SignOutcome =
  | { ok: true; certChainPem: string[]; caBundlePem: string; identity: string; principal: Principal; serial: string; notBefore: Date; notAfter: Date }
  | { ok: false; code: grpc.status; reason: RefusalReason; message: string; principal?: Principal };

interface CaMaterial {
  readonly cert: X509Certificate;
  readonly certPem: string;
  /** The CA's subject as @peculiar/x509 decodes it: the issuer name, byte for byte. */
  readonly subjectName: InstanceType<X509Module['X509Certificate']>['subjectName'];
  /** The CA's subject key identifier (hex): the certificates' authority key identifier. */
  readonly keyId: string;
  /** Certificates of ca.pem after the first: the signing CA's own chain. */
  readonly chain: readonly X509Certificate[];
  readonly signingKey: CryptoKeyLike;
  readonly algorithm: { name: string; hash: string };
  readonly created: boolean;
}
type CryptoKeyLike = Awaited<ReturnType<typeof importSigningKey>>['key'];

export class MeshCa {
  private readonly counters = new MeshCaCounters();
  private readonly refusalLogs = new RefusalLogLimiter();

  private constructor(
    private readonly x509: X509Module,
    private readonly material: CaMaterial,
    readonly trustDomain: string,
    private readonly defaultTtlS: number,
    private readonly minTtlS: number,
    private readonly authn: CaAuthn,
    private readonly log: Logger,
  ) {}

  /** Loads the CA from opts.dir, or creates it there. Throws with a message an operator
   *  can act on (half a CA, a key that does not match, an expired CA, a bad option). */
  static async open(opts: MeshCaOptions, log: Logger): Promise<MeshCa> {
    const trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    const tdProblem = trustDomainProblem(trustDomain);
    if (tdProblem !== null) throw new Error(`--trust-domain: ${tdProblem}`);
    const minTtlS = opts.minTtlSeconds ?? MIN_CERT_TTL_S;
    const defaultTtlS = opts.defaultTtlSeconds ?? DEFAULT_CERT_TTL_S;
    if (!Number.isInteger(defaultTtlS) || defaultTtlS < minTtlS || defaultTtlS > MAX_CERT_TTL_S) {
      throw new Error(`--cert-ttl must be ${minTtlS} s .. ${MAX_CERT_TTL_S} s (15 days); got ${defaultTtlS} s`);
    }
    const authn = openCaAuthn(opts, trustDomain, log);
    const x509 = await loadX509();
    const material = await loadOrCreate(x509, opts.dir, trustDomain, log);
    const ca = new MeshCa(x509, material, trustDomain, defaultTtlS, minTtlS, authn, log);
    log.info(
      {
        ca_dir: opts.dir,
        created: material.created,
        subject: material.cert.subject.replace(/\n/g, ', '),
        ca_serial: material.cert.serialNumber,
        ca_not_after: new Date(material.cert.validTo).toISOString(),
        trust_domain: trustDomain,
        default_ttl_s: defaultTtlS,
        authn: authn.methods,
      },
      material.created ? 'mesh CA created' : 'mesh CA loaded',
    );
    return ca;
  }

  /** The CA certificate (PEM), what peers trust. */
  get caCertPem(): string {
    return this.material.certPem;
  }

  /** The authentication methods configured (empty: every request is refused). */
  get authnMethods(): AuthnMethod[] {
    return this.authn.methods;
  }

  /** Issuances by identity, refusals by reason, since start. */
  stats(): MeshCaStats {
    return this.counters.snapshot();
  }

  /** Checks and signs one request. `authorization` is the request's metadata value.
   *  Order: the caller's token (before the CSR is read), the request, the trust domain,
   *  then whether the token proves the identity asked for. */
  async sign(csrPem: string, validitySeconds: number, authorization: string | undefined): Promise<SignOutcome> {
    return this.signFor(csrPem, validitySeconds, this.authn.authenticate(authorization, Date.now()));
  }

  /** Who a gRPC call proves to be: its bearer token and its verified client certificate
   *  (caller.ts). ADS asks this too, to decide which group a node may be served. */
  authenticateCall(call: ServerCall): AuthnOutcome {
    return authenticateCall(call, this.authn, this.trustDomain, Date.now());
  }

  /** sign() for a caller already authenticated (`authn`, as authenticateCall returns it). */
  async signFor(csrPem: string, validitySeconds: number, authn: AuthnOutcome): Promise<SignOutcome> {
    const refused = (r: Refusal, principal?: Principal): SignOutcome => {
      this.counters.refuse(r.reason);
      return { ok: false, code: grpc.status[r.code], reason: r.reason, message: r.message, ...(principal !== undefined ? { principal } : {}) };
    };
    const invalid = (message: string): SignOutcome => refused(refusal('INVALID_ARGUMENT', 'invalid_request', message));
    if (!authn.ok) return refused(authn);
    if (!Number.isFinite(validitySeconds) || validitySeconds < 0) return invalid(`validity_seconds must be 0 (the CA's default) or positive; got ${validitySeconds}`);
    if (Buffer.byteLength(csrPem) > MAX_CSR_BYTES) return invalid(`csr_pem is larger than ${MAX_CSR_BYTES} bytes`);
    if (!csrPem.includes('-----BEGIN CERTIFICATE REQUEST-----')) return invalid('csr_pem must be a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)');
    const { x509 } = this;
    let csr: InstanceType<X509Module['Pkcs10CertificateRequest']>;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
      if (!(await csr.verify())) return invalid("the CSR's signature does not verify with its own public key");
    } catch (err) {
      return invalid(`the CSR does not parse: ${err instanceof Error ? err.message : String(err)}`);
    }
    const keyProblem = publicKeyProblem(csr.publicKey.algorithm as { name?: string; namedCurve?: string; modulusLength?: number });
    if (keyProblem !== null) return invalid(keyProblem);
    const sans = csr.getExtensions(SAN_OID);
    if (sans.length !== 1) return invalid(`the CSR must have one subjectAltName extension holding one URI (a SPIFFE ID); it has ${sans.length}`);
    let names: { type: string; value: string }[];
    try {
      names = new x509.SubjectAlternativeNameExtension(sans[0].rawData).names.toJSON();
    } catch (err) {
      return invalid(`the CSR's subjectAltName does not parse: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (names.length !== 1 || names[0].type !== 'url') {
      const seen = names.map((n) => `${n.type === 'url' ? 'URI' : n.type.toUpperCase()}:${n.value}`).join(', ');
      return invalid(`the CSR's subjectAltName must be exactly one URI (a SPIFFE ID) and nothing else; it is [${seen}]`);
    }
    const identity = names[0].value;
    const id = parseSpiffeId(identity);
    if (!id.ok) return invalid(id.problem);
    if (id.trustDomain !== this.trustDomain) {
      return refused(refusal('PERMISSION_DENIED', 'wrong_trust_domain', `"${identity}" is in trust domain "${id.trustDomain}"; this CA signs for "${this.trustDomain}" only`));
    }
    const authz = this.authn.authorize(authn.principal, id);
    if (!authz.ok) return refused(authz, authn.principal);

    const requested = validitySeconds === 0 ? this.defaultTtlS : validitySeconds;
    const ttlS = Math.min(MAX_CERT_TTL_S, Math.max(this.minTtlS, Math.floor(requested)));
    const issued = await this.issue(csr.publicKey, identity, ttlS);
    this.counters.issue(identity);
    return { ok: true, ...issued, identity, principal: authn.principal };
  }

  /** A certificate for the control plane's own SPIFFE ID (its TLS server certificate,
   *  tls.ts), with a fresh P-256 key: not counted as an issuance to a caller. */
  async serverCertificate(identity: string, ttlS: number): Promise<{ keyPem: string; certChainPem: string; notBefore: Date; notAfter: Date }> {
    const keys = await generateEcKeyPair();
    const publicKey = await this.x509.PublicKey.create(keys.publicKey);
    const issued = await this.issue(publicKey, identity, ttlS);
    return { keyPem: await privateKeyPem(keys.privateKey), certChainPem: issued.certChainPem.join(''), notBefore: issued.notBefore, notAfter: issued.notAfter };
  }

  /** The CA certificates a peer's certificate must chain to: what verifies the client
   *  certificates presented to the control plane (tls.ts). */
  get trustBundlePem(): string {
    return [this.material.cert, ...this.material.chain].map((c) => c.toString()).join('');
  }

  /** Signs a certificate for `identity` and `publicKey`, valid `ttlS` (the profile of the
   *  module comment). */
  private async issue(publicKey: InstanceType<X509Module['PublicKey']>, identity: string, ttlS: number): Promise<Pick<Extract<SignOutcome, { ok: true }>, 'certChainPem' | 'caBundlePem' | 'serial' | 'notBefore' | 'notAfter'>> {
    const { x509 } = this;
    const now = Date.now();
    const caNotAfter = new Date(this.material.cert.validTo).getTime();
    const notAfter = new Date(Math.min(now + ttlS * 1000, caNotAfter));
    // 60 s back, or a tenth of the validity when that is shorter (only below the 10-minute
    // minimum, in tests): a sidecar schedules renewal from notBefore/notAfter.
    const notBefore = new Date(now - Math.min(BACKDATE_S, ttlS / 10) * 1000);
    const serial = randomSerial();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: '',
      issuer: this.material.subjectName,
      notBefore,
      notAfter,
      publicKey,
      signingKey: this.material.signingKey,
      signingAlgorithm: this.material.algorithm,
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: identity }], true),
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.AuthorityKeyIdentifierExtension(this.material.keyId),
      ],
    });
    const selfSigned = (c: X509Certificate): boolean => c.checkIssued(c);
    const all = [this.material.cert, ...this.material.chain];
    const roots = all.filter(selfSigned);
    return {
      certChainPem: [withNewline(cert.toString('pem')), ...all.filter((c) => !selfSigned(c)).map((c) => c.toString())],
      caBundlePem: (roots.length > 0 ? roots : [all[all.length - 1]]).map((c) => c.toString()).join(''),
      serial: serial.toUpperCase(),
      notBefore,
      notAfter,
    };
  }

  /** The MeshCertificateService implementation, for grpc.Server.addService. */
  handlers(): grpc.UntypedServiceImplementation {
    return {
      CreateCertificate: (call: grpc.ServerUnaryCall<CreateCertificateRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const peer = call.getPeer();
        this.signFor(call.request.csr_pem ?? '', Number(call.request.validity_seconds ?? 0), this.authenticateCall(call)).then(
          (outcome) => {
            if (!outcome.ok) {
              this.logRefusal(outcome, peer);
              callback({ code: outcome.code, details: outcome.message });
              return;
            }
            this.logIssuance(outcome, peer);
            callback(null, { cert_chain_pem: outcome.certChainPem, ca_bundle_pem: outcome.caBundlePem });
          },
          (err: unknown) => {
            this.counters.refuse('internal_error');
            this.log.error({ err, peer }, 'signing a certificate request failed');
            callback({ code: grpc.status.INTERNAL, details: 'the CA failed to sign the request (logged on the control plane)' });
          },
        );
      },
    };
  }

  /** remora.control.v1.MeshCertificateService, for grpc.Server.addService. */
  service(): grpc.ServiceDefinition {
    return loadMeshCaService().service;
  }

  private logIssuance(o: Extract<SignOutcome, { ok: true }>, peer: string): void {
    const fields = {
      identity: o.identity,
      principal: o.principal.name,
      authn: o.principal.method,
      ...o.principal.detail,
      serial: o.serial,
      not_after: o.notAfter.toISOString(),
      peer,
    };
    // Insecure mode: every issuance says so, at warn.
    if (o.principal.method === 'insecure') this.log.warn({ ...fields, insecure: true }, 'mesh certificate issued');
    else this.log.info(fields, 'mesh certificate issued');
  }

  private logRefusal(o: Extract<SignOutcome, { ok: false }>, peer: string): void {
    const suppressed = this.refusalLogs.admit(o.reason, Date.now());
    if (suppressed === null) return;
    this.log.warn(
      {
        peer,
        code: grpc.status[o.code],
        reason: o.reason,
        error: o.message,
        ...(o.principal !== undefined ? { principal: o.principal.name } : {}),
        ...(suppressed > 0 ? { suppressed_since_last: suppressed } : {}),
      },
      `certificate request refused: ${o.message}`,
    );
  }
}

/** 16 random bytes as hex, the top bit cleared (a positive INTEGER) and the next one set
 *  (so DER keeps all 16 bytes). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] & 0x7f) | 0x40;
  return bytes.toString('hex');
}

/** EC P-256/P-384 or RSA of at least 2048 bits. */
function publicKeyProblem(alg: { name?: string; namedCurve?: string; modulusLength?: number }): string | null {
  if (alg.name === 'ECDSA' || alg.name === 'ECDH') {
    return alg.namedCurve === 'P-256' || alg.namedCurve === 'P-384' ? null : `the CSR's EC key is on ${alg.namedCurve ?? 'an unknown curve'}; P-256 or P-384 only`;
  }
  if (alg.name !== undefined && alg.name.startsWith('RSA')) {
    return (alg.modulusLength ?? 0) >= 2048 ? null : `the CSR's RSA key has ${alg.modulusLength ?? '?'} bits; at least 2048`;
  }
  return `the CSR's key is ${alg.name ?? 'of an unknown type'}; EC P-256/P-384 or RSA only`;
}

async function loadOrCreate(x509: X509Module, dir: string, trustDomain: string, log: Logger): Promise<CaMaterial> {
  const keyFile = join(dir, 'ca.key');
  const certFile = join(dir, 'ca.pem');
  const haveKey = existsSync(keyFile);
  const haveCert = existsSync(certFile);
  if (!haveKey && !haveCert) return createCa(x509, dir, keyFile, certFile, trustDomain);
  if (!haveKey || !haveCert) {
    throw new Error(`${dir} has ${haveKey ? 'ca.key but no ca.pem' : 'ca.pem but no ca.key'}: give both, or neither (then a CA is generated)`);
  }
  const certs = splitPemCertificates(readFileSync(certFile, 'utf8')).map((pem) => new X509Certificate(pem));
  if (certs.length === 0) throw new Error(`${certFile} holds no PEM certificate`);
  const [cert, ...chain] = certs;
  const { key, algorithm, keyObject } = await importSigningKey(readFileSync(keyFile, 'utf8'));
  if (!cert.checkPrivateKey(keyObject)) throw new Error(`${keyFile} is not the key of the first certificate in ${certFile}`);
  if (!cert.ca) throw new Error(`${certFile}: the first certificate is not a CA (basicConstraints CA:true)`);
  if (new Date(cert.validTo).getTime() <= Date.now()) throw new Error(`${certFile}: the CA certificate expired on ${new Date(cert.validTo).toISOString()}`);
  for (let i = 0; i < chain.length; i++) {
    if (!issuedByOneOf(i === 0 ? cert : chain[i - 1], [chain[i]])) throw new Error(`${certFile}: certificate ${i + 2} did not issue certificate ${i + 1} (order: the CA, then its issuers)`);
  }
  // Group-readable is how a Kubernetes Secret reaches a non-root process (fsGroup, mode
  // 0440); readable by anyone is a mistake.
  const mode = statSync(keyFile).mode & 0o777;
  if ((mode & 0o007) !== 0) log.warn({ file: keyFile, mode: mode.toString(8) }, 'the CA key is readable by any user; chmod 600 (or 640) it');
  const daysLeft = (new Date(cert.validTo).getTime() - Date.now()) / 86_400_000;
  if (daysLeft < 30) log.warn({ file: certFile, days_left: Math.floor(daysLeft) }, 'the CA certificate expires within 30 days');
  return { cert, certPem: cert.toString(), chain, signingKey: key, algorithm, created: false, ...(await issuerFields(x509, cert.toString())) };
}

async function createCa(x509: X509Module, dir: string, keyFile: string, certFile: string, trustDomain: string): Promise<CaMaterial> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keys = await generateEcKeyPair();
  const now = Date.now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=Remora mesh CA, O=${trustDomain}`,
    notBefore: new Date(now - BACKDATE_S * 1000),
    notAfter: new Date(now + CA_VALIDITY_S * 1000),
    keys,
    signingAlgorithm: EC_P256,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const certPem = withNewline(ca.toString('pem'));
  // The key first: a CA dir with a certificate but no key refuses to start.
  writeFilesAtomically([
    { path: keyFile, content: await privateKeyPem(keys.privateKey), mode: 0o600 },
    { path: certFile, content: certPem, mode: 0o644 },
  ]);
  return { cert: new X509Certificate(certPem), certPem, chain: [], signingKey: keys.privateKey, algorithm: EC_P256, created: true, ...(await issuerFields(x509, certPem)) };
}

/** The CA's subject name and key identifier (its SKI extension, else the SHA-1 of its key). */
async function issuerFields(x509: X509Module, pem: string): Promise<Pick<CaMaterial, 'subjectName' | 'keyId'>> {
  const cert = new x509.X509Certificate(pem);
  const ski = cert.getExtension(SKI_OID);
  const keyId = ski !== null ? new x509.SubjectKeyIdentifierExtension(ski.rawData).keyId : (await x509.SubjectKeyIdentifierExtension.create(cert.publicKey)).keyId;
  return { subjectName: cert.subjectName, keyId };
}

const withNewline = (pem: string): string => (pem.endsWith('\n') ? pem : `${pem}\n`);
