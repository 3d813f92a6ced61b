// The sidecar's mesh identity (main thread; xds.mesh_identity in the bootstrap): gets a
// certificate for its SPIFFE ID from the control plane's mesh CA
// (remora.control.v1.MeshCertificateService, on the ADS server) and keeps it fresh. Each
// certificate gets a fresh EC P-256 key; the CSR carries the SPIFFE ID as its only URI
// SAN. The key, the certificate (leaf + chain) and the CA bundle are written to
// dir/key.pem, dir/cert.pem and dir/ca.pem: each to a temp file first, then all renamed
// one after the other, key first, so a watcher of the directory sees the new pair in one
// short burst. Remora's listener and cluster `tls:` blocks read those files.
//
// Schedule: renewal at renew_fraction of the certificate's own lifetime (notBefore ..
// notAfter), but never sooner after an issue than a tenth of the time the certificate
// has left (renewalAt): the CA backdates notBefore, so a small fraction of a short
// lifetime can fall before the moment of issue, and without the floor the sidecar would
// ask again at once, in a loop. Failed attempts retry with jittered exponential backoff
// (1 s doubling to 60 s) while the current files stay in place. A warning is logged when
// the certificate has less than 20 %, 10 % and 5 % of its lifetime left, an error when
// it has expired.
// Trust is pinned (mesh-trust.ts): an answer must chain to the roots of
// trust_bundle_file, else to the bundle already in ca.pem (pinned on first use), and its
// CA bundle must be vouched for by them; a control plane with another CA is refused and
// the files stay.
// At start, valid files for the same identity are used as they are (a restart does not
// re-issue). docs/mesh-ca.md.

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { MeshIdentityBootstrap } from '../config/types.js';
import type { Logger } from '../core/log.js';
import {
  EC_P256, generateEcKeyPair, issuedByOneOf, loadX509, privateKeyPem, splitPemCertificates, uriSans, writeFilesAtomically,
} from './mesh-pki.js';
import { loadMeshCaService, type CreateCertificateRequest, type CreateCertificateResponse } from './remora-protos.js';
import { bundleProblem, chainProblem, currentAnchors } from './mesh-trust.js';
import type { XdsTransport } from './xds-client.js';

/** The files written in `dir`. */
export const IDENTITY_FILES = { key: 'key.pem', cert: 'cert.pem', ca: 'ca.pem' } as const;

/** When to renew a certificate received at `receivedAt`: at `fraction` of its lifetime,
 *  but never sooner than a tenth of the time it had left when it arrived (the floor that
 *  keeps a fraction that falls before the moment of issue from renewing in a loop). */
export function renewalAt(cert: { notBefore: number; notAfter: number }, fraction: number, receivedAt: number): number {
  const planned = cert.notBefore + fraction * (cert.notAfter - cert.notBefore);
  return Math.max(planned, receivedAt + 0.1 * (cert.notAfter - receivedAt));
}

/** Remaining fractions of the lifetime at which a warning is logged (once each). */
const WARN_AT_REMAINING = [0.2, 0.1, 0.05] as const;

export interface MeshIdentityOptions {
  readonly identity: MeshIdentityBootstrap;
  /** Control-plane addresses, HOST:PORT (the xDS servers). */
  readonly servers: readonly string[];
  /** The server the xDS stream is connected to now, if any: asked first. grpc-js shares
   *  one connection per address between clients of the same options, so the request
   *  then rides the ADS connection. */
  readonly currentServer?: () => string | null;
  readonly log: Logger;
  /** Retry backoff after a failed attempt: random in [ceiling/2, ceiling], the ceiling
   *  doubling from initial to max. Default 1000 → 60000 ms. */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Deadline of one CreateCertificate call. Default 10000 ms. */
  readonly callTimeoutMs?: number;
  /** TLS to the control plane (xds.tls): each call's credentials, with the current
   *  certificate presented, so that a renewal is authenticated by it. Default plaintext. */
  readonly transport?: XdsTransport;
  /** Called after each certificate is written. */
  readonly onIssued?: () => void;
}

/** What the admin endpoint shows. Times are ISO 8601; null = not yet / none. */
export interface MeshIdentityStatus {
  readonly identity: string;
  readonly dir: string;
  /** The current certificate's serial (hex, uppercase), validity and where it came from. */
  readonly serial: string | null;
  readonly not_before: string | null;
  readonly not_after: string | null;
  /** 'issued' by this process, or 'files' found valid at start. */
  readonly source: 'issued' | 'files' | null;
  /** When the latest certificate was issued to this process. */
  readonly last_renewal_at: string | null;
  /** The latest failed attempt; cleared by a success. */
  readonly last_error: { readonly message: string; readonly at: string } | null;
  /** Failed attempts since the latest success. */
  readonly consecutive_failures: number;
  /** When the next attempt is due (a renewal or a retry). */
  readonly next_renewal_at: string | null;
  /** Where the pinned CA roots come from: `trust_bundle_file`, `ca.pem` (pinned on first
   *  use) or `none` (no certificate yet). */
  readonly trust_source: 'trust_bundle_file' | 'ca.pem' | 'none';
  /** Answers refused because they did not chain to the pinned roots. */
  readonly trust_refusals: number;
}

interface Current {
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly source: 'issued' | 'files';
}

type CaClient = grpc.Client & {
  CreateCertificate(
    req: CreateCertificateRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: CreateCertificateResponse) => void,
  ): grpc.ClientUnaryCall;
};

export class MeshIdentityClient {
  private readonly conf: MeshIdentityBootstrap;
  private readonly clients = new Map<string, CaClient>();
  private current: Current | null = null;
  private lastRenewalAt: number | null = null;
  private lastError: { message: string; at: string } | null = null;
  private failures = 0;
  private serverIndex = 0;
  private timer: NodeJS.Timeout | null = null;
  private nextAt: number | null = null;
  private closed = false;
  private warned = 0;
  private expiredLogged = false;
  private trustRefusals = 0;
  private trustSource: MeshIdentityStatus['trust_source'] = 'none';
  private tofuWarned = false;
  /** whenReady() callers: called with whether a certificate is in place. */
  private readyWaiters: ((ready: boolean) => void)[] = [];

  constructor(private readonly opts: MeshIdentityOptions) {
    this.conf = opts.identity;
  }

  /** Uses valid files already in `dir`, else asks for a certificate now. */
  start(): void {
    const existing = this.loadFiles();
    if (existing !== null) {
      this.current = existing;
      this.opts.log.info(
        { identity: this.conf.spiffe_id, serial: existing.serial, not_after: iso(existing.notAfter), dir: this.conf.dir },
        'mesh identity: using the certificate already in the directory',
      );
      this.schedule(this.renewalTime(existing));
    } else {
      this.schedule(Date.now());
    }
  }

  /** Resolves true as soon as a certificate is in place, false after `ms` without one. */
  whenReady(ms: number): Promise<boolean> {
    if (this.current !== null) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.readyWaiters = this.readyWaiters.filter((w) => w !== done);
        resolve(this.current !== null);
      }, ms);
      const done = (ready: boolean): void => {
        clearTimeout(timer);
        resolve(ready);
      };
      this.readyWaiters.push(done);
    });
  }

  status(): MeshIdentityStatus {
    const c = this.current;
    return {
      identity: this.conf.spiffe_id,
      dir: this.conf.dir,
      serial: c?.serial ?? null,
      not_before: c !== null ? iso(c.notBefore) : null,
      not_after: c !== null ? iso(c.notAfter) : null,
      source: c?.source ?? null,
      last_renewal_at: this.lastRenewalAt !== null ? iso(this.lastRenewalAt) : null,
      last_error: this.lastError,
      consecutive_failures: this.failures,
      next_renewal_at: this.nextAt !== null ? iso(this.nextAt) : null,
      trust_source: this.trustSource,
      trust_refusals: this.trustRefusals,
    };
  }

  /** Stops renewing (the files stay). Idempotent. */
  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.nextAt = null;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    for (const w of this.readyWaiters) w(this.current !== null);
    this.readyWaiters = [];
  }

  private schedule(at: number): void {
    if (this.closed) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.nextAt = at;
    // setTimeout's limit is 2^31-1 ms (24.8 days); certificates live 15 days at most.
    this.timer = setTimeout(() => void this.attempt(), Math.min(Math.max(0, at - Date.now()), 2 ** 31 - 1));
    this.timer.unref();
  }

  private renewalTime(c: Current): number {
    return c.notBefore + this.conf.renew_fraction * (c.notAfter - c.notBefore);
  }

  private async attempt(): Promise<void> {
    this.timer = null;
    try {
      const issued = await this.renew();
      if (this.closed) return;
      this.current = issued;
      this.lastRenewalAt = Date.now();
      this.lastError = null;
      this.failures = 0;
      this.warned = 0;
      this.expiredLogged = false;
      const renewAt = renewalAt(issued, this.conf.renew_fraction, Date.now());
      this.opts.log.info(
        { identity: this.conf.spiffe_id, serial: issued.serial, not_after: iso(issued.notAfter), renew_at: iso(renewAt), dir: this.conf.dir },
        'mesh certificate written',
      );
      for (const w of this.readyWaiters) w(true);
      this.readyWaiters = [];
      this.schedule(renewAt);
      this.opts.onIssued?.();
    } catch (err) {
      if (this.closed) return;
      this.onFailure(err instanceof Error ? err.message : String(err));
    }
  }

  private onFailure(message: string): void {
    this.failures++;
    this.lastError = { message, at: iso(Date.now()) };
    // The next address of the list, unless the xDS stream names one.
    this.serverIndex = (this.serverIndex + 1) % this.opts.servers.length;
    const initial = this.opts.initialBackoffMs ?? 1000;
    const max = this.opts.maxBackoffMs ?? 60_000;
    const ceiling = Math.min(max, initial * 2 ** Math.min(this.failures - 1, 30));
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    const log = this.opts.log;
    const c = this.current;
    const fields = { identity: this.conf.spiffe_id, attempt: this.failures, retry_in_ms: Math.round(delay), error: message };
    if (c === null) {
      (this.failures === 1 ? log.warn : log.info).call(log, fields, 'mesh certificate request failed; no certificate yet, retrying');
    } else {
      log.info({ ...fields, serial: c.serial, not_after: iso(c.notAfter) }, 'mesh certificate renewal failed; the current certificate stays in place, retrying');
      const now = Date.now();
      const left = (c.notAfter - now) / (c.notAfter - c.notBefore);
      if (now >= c.notAfter) {
        if (!this.expiredLogged) {
          log.error({ identity: this.conf.spiffe_id, serial: c.serial, not_after: iso(c.notAfter), error: message }, 'mesh certificate EXPIRED and renewal keeps failing: peers will refuse this sidecar');
          this.expiredLogged = true;
        }
      } else {
        let level = this.warned;
        while (level < WARN_AT_REMAINING.length && left < WARN_AT_REMAINING[level]) level++;
        if (level > this.warned) {
          this.warned = level;
          log.warn(
            { identity: this.conf.spiffe_id, serial: c.serial, not_after: iso(c.notAfter), lifetime_left_percent: Math.floor(left * 100), error: message },
            `mesh certificate has less than ${WARN_AT_REMAINING[level - 1] * 100}% of its lifetime left and cannot be renewed`,
          );
        }
      }
    }
    // Retry no later than expiry, so the error is logged on time.
    this.schedule(Date.now() + (c !== null && c.notAfter > Date.now() ? Math.min(delay, c.notAfter - Date.now() + 10) : delay));
  }

  /** One attempt: key, CSR, CreateCertificate, checks, files. */
  private async renew(): Promise<Current> {
    const x509 = await loadX509();
    const keys = await generateEcKeyPair();
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      keys,
      signingAlgorithm: EC_P256,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: this.conf.spiffe_id }])],
    });
    const metadata = new grpc.Metadata();
    const token = this.token();
    if (token !== null) metadata.set('authorization', `Bearer ${token}`);
    const server = this.opts.currentServer?.() ?? this.opts.servers[this.serverIndex];
    const res = await this.call(server, { csr_pem: csr.toString('pem'), validity_seconds: String(this.conf.lifetime_seconds) }, metadata);

    const keyPem = await privateKeyPem(keys.privateKey);
    const chain = (res.cert_chain_pem ?? []).flatMap(splitPemCertificates);
    const bundle = splitPemCertificates(res.ca_bundle_pem ?? '');
    if (chain.length === 0) throw new Error(`${server}: the answer holds no certificate`);
    if (bundle.length === 0) throw new Error(`${server}: the answer holds no CA certificate`);
    const leaf = new X509Certificate(chain[0]);
    const problem = this.leafProblem(leaf, keyPem, [...chain.slice(1), ...bundle].map((p) => new X509Certificate(p)));
    if (problem !== null) throw new Error(`${server}: the issued certificate ${problem}`);
    const files = this.files();
    this.checkTrust(server, leaf, chain.slice(1).map((p) => new X509Certificate(p)), bundle.map((p) => new X509Certificate(p)), files.ca);
    mkdirSync(this.conf.dir, { recursive: true });
    writeFilesAtomically([
      { path: files.key, content: keyPem, mode: 0o600 },
      { path: files.cert, content: chain.join(''), mode: 0o644 },
      { path: files.ca, content: bundle.join(''), mode: 0o644 },
    ]);
    return current(leaf, 'issued');
  }

  /** The token to send, or null. A token file that is empty or cannot be read fails the
   *  attempt, unless the request goes over TLS with an unexpired certificate, which
   *  authenticates a renewal by itself. */
  private token(): string | null {
    const file = this.conf.token_file;
    if (file === undefined) return null;
    let problem: string;
    try {
      const token = readFileSync(file, 'utf8').trim();
      if (token !== '') return token;
      problem = `the token file ${file} is empty`;
    } catch (err) {
      problem = `the token file ${file} cannot be read: ${err instanceof Error ? err.message : String(err)}`;
    }
    const c = this.current;
    if (this.opts.transport !== undefined && c !== null && c.notAfter > Date.now()) return null;
    throw new Error(problem);
  }

  /** Refuses (throws) an answer that does not chain to the pinned roots, or whose CA
   *  bundle would replace them with roots they do not vouch for (mesh-trust.ts). */
  private checkTrust(server: string, leaf: X509Certificate, intermediates: X509Certificate[], bundle: X509Certificate[], caFile: string): void {
    const anchors = currentAnchors(this.conf.trust_bundle_file, caFile);
    if (anchors.source === 'none') {
      if (!this.tofuWarned) {
        this.tofuWarned = true;
        this.opts.log.warn({ identity: this.conf.spiffe_id, server }, 'mesh identity: no trust_bundle_file; pinning the first CA bundle received (trust on first use)');
      }
      this.trustSource = 'ca.pem';
      return;
    }
    this.trustSource = anchors.source;
    const problem = chainProblem(leaf, intermediates, anchors.certs) ?? bundleProblem(bundle, anchors.certs);
    if (problem === null) return;
    this.trustRefusals++;
    const what = chainProblem(leaf, intermediates, anchors.certs) !== null ? 'the issued certificate' : 'the CA bundle';
    this.opts.log.error({ identity: this.conf.spiffe_id, server, pinned_from: anchors.source, problem }, `mesh identity: REFUSED ${what} from the control plane: it ${problem}; keeping the current files`);
    throw new Error(`${server}: ${what} ${problem} (pinned from ${anchors.source})`);
  }

  private call(server: string, req: CreateCertificateRequest, metadata: grpc.Metadata): Promise<CreateCertificateResponse> {
    const transport = this.opts.transport;
    let client = transport === undefined ? this.clients.get(server) : undefined;
    if (client === undefined) {
      const Service = loadMeshCaService();
      if (transport === undefined) {
        // Default options and insecure credentials, as the xDS client's: the same subchannel.
        client = new Service(server, grpc.credentials.createInsecure()) as unknown as CaClient;
        this.clients.set(server, client);
      } else {
        // With TLS, a client per call: the certificate it presents changes with each renewal.
        const conn = transport.connection(server);
        client = new Service(server, conn.credentials, conn.options) as unknown as CaClient;
      }
    }
    const deadline = Date.now() + (this.opts.callTimeoutMs ?? 10_000);
    const used = client;
    return new Promise<CreateCertificateResponse>((resolve, reject) => {
      used.CreateCertificate(req, metadata, { deadline }, (err, res) => {
        if (err !== null) reject(new Error(`${server}: ${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`));
        else resolve(res!);
      });
    }).finally(() => {
      if (transport !== undefined) used.close();
    });
  }

  /** Why `leaf` is not a certificate for this identity and key, signed by `issuers`, and
   *  valid now; null when it is. */
  private leafProblem(leaf: X509Certificate, keyPem: string, issuers: X509Certificate[]): string | null {
    const sans = uriSans(leaf);
    if (sans.length !== 1 || sans[0] !== this.conf.spiffe_id) return `is for [${sans.join(', ')}], not ${this.conf.spiffe_id}`;
    if (!leaf.checkPrivateKey(createPrivateKey(keyPem))) return 'is not for the key in key.pem';
    if (!issuedByOneOf(leaf, issuers)) return 'is not signed by the chain or the CA bundle that came with it';
    const now = Date.now();
    if (Date.parse(leaf.validTo) <= now) return `expired at ${leaf.validTo}`;
    return null;
  }

  private files(): { key: string; cert: string; ca: string } {
    const d = this.conf.dir;
    return { key: join(d, IDENTITY_FILES.key), cert: join(d, IDENTITY_FILES.cert), ca: join(d, IDENTITY_FILES.ca) };
  }

  /** The certificate in `dir` when it is for this identity, matches key.pem, is signed by
   *  ca.pem (or its own chain) and has not expired; null otherwise (logged). */
  private loadFiles(): Current | null {
    const files = this.files();
    let certPem: string;
    let keyPem: string;
    let caPem: string;
    try {
      certPem = readFileSync(files.cert, 'utf8');
      keyPem = readFileSync(files.key, 'utf8');
      caPem = readFileSync(files.ca, 'utf8');
    } catch {
      return null; // nothing there yet (or not all of it): ask for a certificate
    }
    try {
      const chain = splitPemCertificates(certPem).map((p) => new X509Certificate(p));
      if (chain.length === 0) throw new Error('cert.pem holds no certificate');
      const problem = this.leafProblem(chain[0], keyPem, [...chain.slice(1), ...splitPemCertificates(caPem).map((p) => new X509Certificate(p))]);
      if (problem !== null) throw new Error(`the certificate ${problem}`);
      if (this.conf.trust_bundle_file !== undefined) {
        const anchors = currentAnchors(this.conf.trust_bundle_file, files.ca);
        const untrusted = chainProblem(chain[0], chain.slice(1), anchors.certs);
        if (untrusted !== null) throw new Error(`the certificate ${untrusted} of trust_bundle_file`);
        this.trustSource = 'trust_bundle_file';
      } else {
        this.trustSource = 'ca.pem';
      }
      return current(chain[0], 'files');
    } catch (err) {
      this.opts.log.info({ dir: this.conf.dir, reason: err instanceof Error ? err.message : String(err) }, 'mesh identity: the files in the directory are not usable; requesting a new certificate');
      return null;
    }
  }
}

const iso = (ms: number): string => new Date(ms).toISOString();

const current = (leaf: X509Certificate, source: Current['source']): Current => ({
  serial: leaf.serialNumber,
  notBefore: Date.parse(leaf.validFrom),
  notAfter: Date.parse(leaf.validTo),
  source,
});
