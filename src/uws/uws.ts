// The one place that knows which uWebSockets.js build Remora runs on.
// It loads the native binary itself and refuses to start without it: the package's
// own entry point silently falls back to a slow pure-JS server, which we never want.
// Only listeners with `codec: uws` load it; where it has no build for the runtime, a
// config that asks for it is rejected by path (uwsCodecErrors) and the strict codec,
// the default, serves everywhere.

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type * as UwsTypes from '@trufflesuite/uws-js-unofficial';
import { RemoraError } from '../core/errors.js';
import type { ConfigError } from '../config/types.js';

export type TemplatedApp = UwsTypes.TemplatedApp;
export type HttpResponse = UwsTypes.HttpResponse;
export type HttpRequest = UwsTypes.HttpRequest;
export type ListenSocket = UwsTypes.us_listen_socket;
export type UwsModule = typeof UwsTypes;

const PACKAGE = '@trufflesuite/uws-js-unofficial';

let loaded: UwsModule | undefined;

/** Loads the native uWS addon for this platform, or throws REMORA_ERR_UWS_LOAD. */
export function loadUws(): UwsModule {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  let pkgDir: string;
  try {
    pkgDir = dirname(require.resolve(`${PACKAGE}/package.json`));
  } catch (err) {
    throw new RemoraError('REMORA_ERR_UWS_LOAD', `cannot find ${PACKAGE}; run npm ci`, { cause: err });
  }
  const file = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  const path = join(pkgDir, 'binaries', file);
  // Tests: a runtime the package has no build for (Node 22 and 24 are such runtimes).
  if (!existsSync(path) || process.env.REMORA_FAULT_INJECTION === 'no_uws') {
    throw new RemoraError(
      'REMORA_ERR_UWS_LOAD',
      `uWebSockets.js has no native build for this runtime (${file} missing in ${PACKAGE}: ` +
        `it has Node 20, ABI 115, on linux/darwin x64 and arm64; Remora does not use its JS fallback)`,
    );
  }
  try {
    loaded = require(path) as UwsModule;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new RemoraError('REMORA_ERR_UWS_LOAD', `cannot load uWebSockets.js native binary ${path}: ${reason}`, {
      cause: err,
    });
  }
  return loaded;
}

/** Errors, by config path, for plain listeners that ask for `codec: uws` where the native
 *  build does not load (Node 22 and 24, for one: deploy/README.md, "Runtimes"). Loads
 *  the addon in the calling thread only when some listener asks for it. */
export function uwsCodecErrors(listeners: readonly { name: string; codec: string; tls?: unknown }[]): ConfigError[] {
  const errors: ConfigError[] = [];
  let reason: string | null | undefined;
  for (let i = 0; i < listeners.length; i++) {
    const l = listeners[i];
    if (l.codec !== 'uws' || l.tls !== undefined) continue; // TLS listeners are always strict
    if (reason === undefined) {
      try {
        loadUws();
        reason = null;
      } catch (err) {
        reason = err instanceof Error ? err.message : String(err);
      }
    }
    if (reason === null) return errors;
    errors.push({
      path: `listeners[${i}].codec`,
      message: `listener ${l.name}: codec "uws" cannot run on Node ${process.versions.node}: ${reason}; use codec "strict" (the default)`,
    });
  }
  return errors;
}

/** Text of an ArrayBuffer uWS hands out (remote address and the like). */
export function arrayBufferText(ab: ArrayBuffer): string {
  return Buffer.from(ab).toString('latin1');
}
