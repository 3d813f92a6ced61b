// The step every front end shares once it has read a request: find the listener's
// runtime in the current snapshot and start an Exchange, turning any error thrown while
// setting up into a 500 (or the exchange's own failure path) instead of a crash.

import type { WorkerContext } from './context.js';
import type { Downstream, DownstreamEvents, DownstreamRequest } from './downstream.js';
import { Exchange } from './exchange.js';

export function startExchange(
  ctx: WorkerContext,
  listenerName: string,
  ds: Downstream,
  request: DownstreamRequest,
  listen: (events: DownstreamEvents, hasBody: boolean) => void,
): void {
  let ex: Exchange | null = null;
  try {
    const listener = ctx.listener(listenerName);
    if (listener === undefined) {
      ds.respond(503, 'Service Unavailable', ['content-type', 'text/plain'], 'listener is being removed\n', true, false);
      return;
    }
    ex = new Exchange(ctx, ds, request);
    ex.begin(listener, listen);
  } catch (err) {
    if (ex !== null) {
      ex.fail(err);
    } else {
      ctx.log.error({ err }, 'request setup failed');
      if (!ds.aborted) ds.respond(500, 'Internal Server Error', ['content-type', 'text/plain'], 'internal error\n', true, false);
    }
  }
}
