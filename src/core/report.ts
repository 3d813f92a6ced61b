// Where errors caught at callback boundaries go. Workers point it at their logger at
// start; the default writes to stderr. Reporting itself never throws.

let reporter: (err: unknown, where: string) => void = (err, where) => {
  process.stderr.write(`remora: error in ${where}: ${err instanceof Error ? err.stack : String(err)}\n`);
};

export function setErrorReporter(fn: (err: unknown, where: string) => void): void {
  reporter = fn;
}

export function reportError(err: unknown, where: string): void {
  try {
    reporter(err, where);
  } catch {
    // nothing more can be done; never let it escape a callback
  }
}
