// The one place that knows which uWebSockets.js build Remora runs on.
// It loads the native binary itself and refuses to start without it: the package's
// own entry point silently falls back to a slow pure-JS server, which we never want.

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type * as UwsTypes from '@trufflesuite/uws-js-unofficial';
import { RemoraError } from '../core/errors.js';

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
  if (!existsSync(path)) {
    throw new RemoraError(
      'REMORA_ERR_UWS_LOAD',
      `uWebSockets.js has no native build for this platform (${file} missing in ${PACKAGE}); ` +
        `Remora needs Node 20 (ABI 115) on linux/darwin x64 or arm64 and will not run on the JS fallback`,
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

/** Text of an ArrayBuffer uWS hands out (remote address and the like). */
export function arrayBufferText(ab: ArrayBuffer): string {
  return Buffer.from(ab).toString('latin1');
}
