// Remora's version, read once from package.json (two directories above dist/src/core).

import { readFileSync } from 'node:fs';

export const REMORA_VERSION = (
  JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
