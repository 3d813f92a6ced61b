// Status lines, cached for the standard reason phrases so the hot path builds no strings.

import { STATUS_CODES } from 'node:http';

const cache = new Map<number, string>();
for (const [code, reason] of Object.entries(STATUS_CODES)) {
  cache.set(Number(code), `${code} ${reason}`);
}

/** `200 OK`; the upstream's own reason phrase is kept when it differs. */
export function statusLine(status: number, reason: string): string {
  const cached = cache.get(status);
  if (cached !== undefined && (reason === '' || cached.length === 4 + reason.length && cached.endsWith(reason))) {
    return cached;
  }
  return `${status} ${reason}`; // an empty reason still keeps the SP the grammar needs
}

export function reasonPhrase(status: number): string {
  return STATUS_CODES[status] ?? '';
}
