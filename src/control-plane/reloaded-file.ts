// A small file the control plane reads (a JWKS, the bootstrap tokens, --xds-access), parsed
// once and parsed again when it changes. Each current() stats the file (following
// symlinks, so a Kubernetes ConfigMap or Secret mount's `..data` swap counts as a
// change); a change of inode, size, mtime or ctime re-reads it. Certificate requests are
// rare, so a stat per request costs nothing that matters, and a rotated file applies to
// the very next request. A file that becomes unreadable or invalid keeps the last good
// content (logged at error, once per change); the first read throws instead, so that a
// bad file stops the start. fieldLines() reads the line-per-entry formats.

import { readFileSync, statSync, type Stats } from 'node:fs';
import type { Logger } from '../core/log.js';

export class ReloadedFile<T> {
  private value: T;
  private signature: string;

  /** `parse` throws an Error whose message says what is wrong with the text. `what`
   *  names the file in logs ("--ca-jwks"). */
  constructor(
    readonly path: string,
    private readonly parse: (text: string) => T,
    private readonly log: Logger,
    private readonly what: string,
    private readonly onReload?: (value: T) => void,
  ) {
    const st = statSync(path);
    this.value = parse(readFileSync(path, 'utf8'));
    this.signature = signatureOf(st);
  }

  /** The content, re-read first when the file changed. */
  current(): T {
    let signature: string;
    try {
      signature = signatureOf(statSync(this.path));
    } catch (err) {
      this.failed('gone', err);
      return this.value;
    }
    if (signature === this.signature) return this.value;
    this.signature = signature;
    try {
      this.value = this.parse(readFileSync(this.path, 'utf8'));
      this.log.info({ file: this.path, flag: this.what }, `${this.what} file changed: reloaded`);
      this.onReload?.(this.value);
    } catch (err) {
      this.report(err);
    }
    return this.value;
  }

  /** `signature` stands for the state seen, so that one failure is logged once. */
  private failed(signature: string, err: unknown): void {
    if (this.signature === signature) return;
    this.signature = signature;
    this.report(err);
  }

  private report(err: unknown): void {
    this.log.error(
      { file: this.path, flag: this.what, error: err instanceof Error ? err.message : String(err) },
      `${this.what} file cannot be read or is invalid: the last good content stays in use`,
    );
  }
}

/** The lines of a small config file as whitespace-separated fields, with `where` ("line
 *  N") for error messages; '#' starts a comment, blank lines are skipped. */
export function fieldLines(text: string, each: (fields: string[], where: string) => void): void {
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line !== '') each(line.split(/\s+/), `line ${i + 1}`);
  });
}

function signatureOf(st: Stats): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}
