// Certificates for tests, made with the openssl CLI in a temporary directory: CAs, leaf
// certificates with SPIFFE URI and DNS SANs, and expired ones (`openssl ca` with fixed
// dates, since `x509 -days` cannot go back in time). `remove()` deletes everything.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LeafOptions {
  readonly uri?: string;
  readonly dns?: string;
  /** extendedKeyUsage; default serverAuth,clientAuth. */
  readonly usage?: string;
  /** Valid in 2020 only. */
  readonly expired?: boolean;
}

export class TestPki {
  readonly dir: string;

  constructor(prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), `remora-${prefix}-`));
  }

  file(name: string): string {
    return join(this.dir, name);
  }

  /** `<name>.pem` and `<name>.key`: a self-signed EC P-256 CA. */
  ca(name: string): void {
    this.openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', this.file(`${name}.key`),
      '-out', this.file(`${name}.pem`), '-days', '2', '-subj', `/CN=${name}`);
  }

  /** `<name>.pem` and `<name>.key` signed by CA `ca`, subject CN=<name>. */
  leaf(name: string, ca: string, opts: LeafOptions = {}): void {
    this.openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', this.file(`${name}.key`),
      '-out', this.file(`${name}.csr`), '-subj', `/CN=${name}/O=remora-test`);
    const sans = [opts.dns !== undefined ? `DNS:${opts.dns}` : '', opts.uri !== undefined ? `URI:${opts.uri}` : ''].filter((s) => s !== '');
    const ext = [sans.length > 0 ? `subjectAltName=${sans.join(',')}` : '', `extendedKeyUsage=${opts.usage ?? 'serverAuth,clientAuth'}`]
      .filter((s) => s !== '')
      .join('\n');
    writeFileSync(this.file(`${name}.ext`), `${ext}\n`);
    if (opts.expired === true) {
      // `openssl ca` takes explicit dates; it needs a tiny CA database.
      writeFileSync(this.file('index.txt'), '');
      writeFileSync(this.file('serial'), '1000\n');
      writeFileSync(
        this.file('ca.cnf'),
        `[ca]\ndefault_ca = d\n[d]\ndatabase = ${this.file('index.txt')}\nnew_certs_dir = ${this.dir}\nserial = ${this.file('serial')}\n` +
          'default_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\norganizationName = optional\n',
      );
      this.openssl('ca', '-batch', '-config', this.file('ca.cnf'), '-in', this.file(`${name}.csr`), '-out', this.file(`${name}.pem`),
        '-cert', this.file(`${ca}.pem`), '-keyfile', this.file(`${ca}.key`), '-startdate', '20200101000000Z', '-enddate', '20200102000000Z',
        '-extfile', this.file(`${name}.ext`), '-notext');
      return;
    }
    this.openssl('x509', '-req', '-in', this.file(`${name}.csr`), '-CA', this.file(`${ca}.pem`), '-CAkey', this.file(`${ca}.key`),
      '-CAcreateserial', '-out', this.file(`${name}.pem`), '-days', '2', '-extfile', this.file(`${name}.ext`));
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private openssl(...args: string[]): void {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  }
}
