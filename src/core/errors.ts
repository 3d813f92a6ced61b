// Errors with stable codes (REMORA_ERR_*), each with a message a user can act on.

export type RemoraErrorCode =
  | 'REMORA_ERR_CONFIG_INVALID'
  | 'REMORA_ERR_CONFIG_READ'
  | 'REMORA_ERR_UWS_LOAD'
  | 'REMORA_ERR_LISTEN'
  | 'REMORA_ERR_CLI_USAGE'
  | 'REMORA_ERR_WORKER';

export class RemoraError extends Error {
  readonly code: RemoraErrorCode;
  constructor(code: RemoraErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'RemoraError';
  }
}

/** Best-effort text for anything thrown. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return String(err);
}
