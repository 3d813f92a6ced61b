// TEST ONLY: one control-plane replica as a real process, for tests that need several
// replicas they can kill by pid (SIGKILL: a crash, no goodbye on the ADS streams) while
// running them with options `remora control-plane` does not expose, such as the mesh
// CA's test-only ca.minTtlSeconds (certificates that live seconds, renewed within a
// test). Run as
//   node dist/test/helpers/control-plane-process.js '<json options>'
// where the JSON is startControlPlane's options without the logger: configDir, listen,
// management, rescanIntervalMs, ca {...}, tls {...}. Logs (pino JSON lines) go to stderr;
// stdout gets exactly one line, `ready <listenPort>`, once the replica serves. SIGTERM
// (or SIGINT) stops it and exits 0; a failed start exits 1 with the reason on stderr.

import { pino } from 'pino';
import { startControlPlane, type ControlPlaneOptions } from '../../src/control-plane/server.js';

type JsonOptions = Omit<ControlPlaneOptions, 'log' | 'translator'>;

async function main(): Promise<number> {
  const arg = process.argv[2];
  if (arg === undefined) {
    process.stderr.write('usage: control-plane-process.js \'<json options>\'\n');
    return 2;
  }
  let opts: JsonOptions;
  try {
    opts = JSON.parse(arg) as JsonOptions;
  } catch (err) {
    process.stderr.write(`control-plane-process: the options are not JSON: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const log = pino(
    { level: process.env.REMORA_LOG_LEVEL ?? 'info', base: { pid: process.pid, component: 'control-plane' }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 2, sync: true }),
  );
  let cp;
  try {
    cp = await startControlPlane({ ...opts, log });
  } catch (err) {
    process.stderr.write(`control-plane-process: cannot start: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    return 1;
  }
  // Handlers before the ready line: a test may send SIGTERM as soon as it reads it.
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  process.stdout.write(`ready ${cp.listenPort}\n`);
  const s = await signal;
  log.info({ signal: s }, 'control plane stopping');
  await cp.stop();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`control-plane-process: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
