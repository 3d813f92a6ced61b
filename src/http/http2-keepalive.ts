// HTTP/2 connection keepalive (Envoy's `connection_keepalive`): a PING every interval on
// a connection; one not acknowledged within the timeout means the peer (or the path to
// it) is gone, and the connection is closed at once instead of waiting for TCP to notice.
// Used on client connections (listeners) and upstream connections (clusters).

import type { Http2Session } from 'node:http2';

export interface Http2KeepaliveSettings {
  /** 0 = no keepalive. */
  readonly interval_ms: number;
  readonly timeout_ms: number;
}

/** Starts PINGs on `session`; they stop when it closes. `onDead` runs (once) before the
 *  session is destroyed for an unanswered PING. */
export function keepHttp2Alive(session: Http2Session, settings: Http2KeepaliveSettings, onDead: () => void = noop): void {
  if (settings.interval_ms <= 0) return;
  let outstanding = false;
  let deadline: NodeJS.Timeout | null = null;
  const tick = setInterval(() => {
    if (outstanding || session.closed || session.destroyed) return;
    outstanding = true;
    try {
      session.ping((err) => {
        outstanding = false;
        if (deadline !== null) clearTimeout(deadline);
        deadline = null;
        void err; // a failed ping means the session is going anyway
      });
    } catch {
      outstanding = false; // the session went between the check and the ping
      return;
    }
    deadline = setTimeout(() => {
      deadline = null;
      if (!outstanding || session.destroyed) return;
      try {
        onDead();
      } finally {
        session.destroy(new Error(`no PING acknowledgement within ${settings.timeout_ms} ms`));
      }
    }, settings.timeout_ms);
    deadline.unref();
  }, settings.interval_ms);
  tick.unref();
  session.once('close', () => {
    clearInterval(tick);
    if (deadline !== null) clearTimeout(deadline);
  });
}

function noop(): void {}
