// TLS on the control plane's ADS port (`--tls`): the server certificate is issued by the
// control plane's own mesh CA for its SPIFFE ID (--server-identity), with a fresh key,
// and renewed in the process at half its lifetime; handshakes after a renewal get the
// new certificate, connections already open keep theirs. Client certificates are asked
// for but not required: a sidecar's first contact has none (it proves itself with its
// token, caller.ts), later ones present the certificate the CA issued, verified here
// against the CA. Sidecars verify the server by the SPIFFE ID in its certificate and a
// root bundle they were given out of band (src/control/control-plane-tls.ts).
// grpc-js takes the certificates from a CertificateProvider: this class is one.

import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../core/log.js';
import type { MeshCa } from './mesh-ca.js';

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

/** Default lifetime of the server certificate: 24 h, renewed after 12 h. */
export const SERVER_CERT_TTL_S = 86_400;
/** Retry after a failed renewal (the current certificate keeps serving). */
const RETRY_MS = 30_000;


export class ControlPlaneTls implements grpc.experimental.CertificateProvider {
  private identity: grpc.experimental.IdentityCertificateUpdate | null = null;
  private readonly ca: grpc.experimental.CaCertificateUpdate;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** The current server certificate's validity, for logs and the tests. */
  notAfter: Date | null = null;
  renewals = 0;

  private constructor(
    private readonly meshCa: MeshCa,
    readonly serverIdentity: string,
    private readonly ttlS: number,
    private readonly log: Logger,
  ) {
    this.ca = { caCertificate: Buffer.from(meshCa.trustBundlePem) };
  }

  /** Issues the first server certificate (throws when the CA cannot sign it). */
  static async start(meshCa: MeshCa, serverIdentity: string, log: Logger, ttlS = SERVER_CERT_TTL_S): Promise<ControlPlaneTls> {
    const tls = new ControlPlaneTls(meshCa, serverIdentity, ttlS, log);
    await tls.renew();
    return tls;
  }

  /** Server credentials for the ADS port (listener.ts): this provider for both the server's
   *  certificate and the CA that verifies clients; client certificates optional. */
  credentials(): grpc.ServerCredentials {
    return grpc.experimental.createCertificateProviderServerCredentials(this, this, false);
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  // Listeners hear the current certificates on the next tick, not during the add:
  // grpc-js registers its own watcher only after adding these listeners, and would miss
  // an answer given synchronously (its server then drops every connection).
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    process.nextTick(() => {
      if (this.caListeners.has(listener)) listener(this.ca);
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => {
      if (this.identity !== null && this.identityListeners.has(listener)) listener(this.identity);
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  private async renew(): Promise<void> {
    const issued = await this.meshCa.serverCertificate(this.serverIdentity, this.ttlS);
    this.identity = { certificate: Buffer.from(issued.certChainPem), privateKey: Buffer.from(issued.keyPem) };
    this.notAfter = issued.notAfter;
    this.renewals++;
    for (const l of this.identityListeners) l(this.identity);
    const lifetime = issued.notAfter.getTime() - issued.notBefore.getTime();
    const renewAt = issued.notBefore.getTime() + lifetime / 2;
    this.log.info({ identity: this.serverIdentity, not_after: issued.notAfter.toISOString(), renew_at: new Date(renewAt).toISOString() }, 'control plane TLS certificate issued');
    this.schedule(renewAt - Date.now());
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.renew().catch((err: unknown) => {
        this.log.error({ err, identity: this.serverIdentity, not_after: this.notAfter?.toISOString() }, 'renewing the control plane TLS certificate failed; the current one keeps serving, retrying');
        this.schedule(RETRY_MS);
      });
    }, Math.min(Math.max(0, delayMs), 2 ** 31 - 1));
    this.timer.unref();
  }
}
