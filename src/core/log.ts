// Process logs (startup, config, worker lifecycle, request errors) as JSON lines via
// pino, written asynchronously so no thread ever blocks on stdout.

import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(bindings: Record<string, unknown>, level = process.env.REMORA_LOG_LEVEL ?? 'info'): Logger {
  return pino(
    { level, base: { pid: process.pid, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 1, sync: false, minLength: 0 }),
  );
}
