// Admin handlers for the process lifecycle: readiness and liveness probes, the manual
// readiness override (POST /healthcheck/fail|ok), and the operator's stops
// (POST /drain_listeners, /quitquitquit).

import type { AdminHandler } from './context.js';

export const readyHandler: AdminHandler = (ctx) => {
  const r = ctx.lifecycle.readiness(ctx.pool.notListening(ctx.snapshot().version));
  return r.ready ? [200, 'LIVE\n'] : [503, `NOT READY: ${r.reason}\n`];
};

export const liveHandler: AdminHandler = () => [200, 'OK\n'];

export const healthCheckFailHandler: AdminHandler = (ctx) => {
  ctx.lifecycle.healthCheckFailed = true;
  ctx.log.warn('readiness failed by POST /healthcheck/fail');
  return [200, 'OK: /ready now answers 503 (POST /healthcheck/ok to undo)\n'];
};

export const healthCheckOkHandler: AdminHandler = (ctx) => {
  ctx.lifecycle.healthCheckFailed = false;
  ctx.log.info('readiness restored by POST /healthcheck/ok');
  return [200, 'OK\n'];
};

export const drainListenersHandler: AdminHandler = (ctx) => {
  void ctx.shutdown('POST /drain_listeners', true, false);
  return [200, 'OK: draining; listeners stop accepting after drain.delay_ms\n'];
};

export const quitHandler: AdminHandler = (ctx) => {
  // Answer first; the drain starts right after.
  setImmediate(() => void ctx.shutdown('POST /quitquitquit', false));
  return [200, 'OK: draining and exiting\n'];
};
