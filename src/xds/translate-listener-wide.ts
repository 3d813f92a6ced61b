// The Listener's own fields that apply to every connection, whatever its filter chain
// (part of src/xds/translate-listener.ts, for HTTP and TCP listeners alike): the
// listener-wide access log and listener filter timeouts Istio sets, and the accepting,
// buffering and draining settings Envoy Gateway sets. Each is accepted where it changes
// nothing Remora does, and rejected by path where ignoring it would (docs/xds.md,
// "Listener", says why for each).

import { asArr, asObj, isSet, type Obj } from './read.js';
import { sub, type Ctx, type Loc } from './translate-context.js';
import type { Fields } from './translate-fields.js';

/** Listener fields about accepting, buffering and draining connections (Envoy Gateway
 *  sets all three): listenerWide reads them, and translateListener the buffer limit of
 *  an HTTP listener (ListenerPart.retryBufferLimit). */
export const LISTENER_SETTINGS = ['drain_type', 'max_connections_to_accept_per_socket_event', 'per_connection_buffer_limit_bytes'] as const;
const DRAIN_TYPES: readonly string[] = ['DEFAULT', 'MODIFY_ONLY'];

/**
 * The Listener's own access_log and listener filter timeouts (Istio sets them on its
 * listeners). An access log whose filter is `response_flag_filter` NR only logs the
 * connections no filter chain takes: none when `everyConnectionTaken` (an HTTP listener's
 * one chain, a default chain, or one chain without a match), so it has no effect; else
 * Remora would close them without that line, and it is rejected, as is any other
 * listener-wide log. listener_filters_timeout and continue_on_listener_filters_timeout
 * bound the listener filters' wait for a connection's first bytes: no effect when Remora
 * reads none before handing the connection to its chain (`readsFirstBytes` false); else
 * Remora waits request_headers_timeout_ms and closes, so they are rejected. The
 * LISTENER_SETTINGS have no effect, but for an HTTP listener's buffer limit.
 */
export function listenerWide(ctx: Ctx, l: Obj, loc: Loc, facts: { http: boolean; everyConnectionTaken: boolean; readsFirstBytes: boolean }): void {
  const logs = asArr(l.access_log);
  logs.forEach((v, i) => {
    const al = sub(loc, `access_log[${i}]`);
    const flags = asArr(asObj(asObj(asObj(v)?.filter)?.response_flag_filter)?.flags);
    const filter = asObj(asObj(v)?.filter) ?? {};
    if (flags.length === 0 || flags.some((f) => f !== 'NR') || Object.keys(filter).some((k) => k !== 'response_flag_filter' && isSet(filter[k]))) {
      ctx.reject(al, 'is not supported: Remora writes the access log of the HttpConnectionManager or tcp_proxy; a listener-wide one is accepted only with '
        + 'filter.response_flag_filter NR (connections no filter chain takes) on a listener where every connection has a chain');
    } else if (!facts.everyConnectionTaken) {
      ctx.reject(al, 'logs the connections no filter chain takes (response_flag_filter NR): Remora closes those without a log line (counted by '
        + 'remora_downstream_no_filter_chain_match_total); add a default_filter_chain, or drop this log');
    }
  });
  if (logs.length > 0) ctx.noEffect(loc, 'Listener.access_log');
  // drain_type: DEFAULT (the zero value) also drains on /healthcheck/fail; MODIFY_ONLY
  // (Envoy Gateway's) only when the listener changes or Envoy restarts. Remora's
  // /healthcheck/fail flips readiness and closes no connection, and it drains every
  // listener when it stops (SIGTERM, /drain_listeners), whatever this says.
  if (isSet(l.drain_type)) {
    if (!DRAIN_TYPES.includes(String(l.drain_type))) ctx.reject(sub(loc, 'drain_type'), `unknown drain type ${String(l.drain_type)}`);
    else ctx.noEffect(loc, 'Listener.drain_type');
  }
  // How many connections Envoy accepts per wakeup of its event loop: scheduling only.
  if (isSet(l.max_connections_to_accept_per_socket_event)) ctx.noEffect(loc, 'Listener.max_connections_to_accept_per_socket_event');
  // A TCP listener's connection buffers only pace reading (flow control): tcp_proxy keeps
  // nothing to replay. An HTTP listener's also bound retries (retryBufferLimit).
  if (!facts.http && isSet(l.per_connection_buffer_limit_bytes)) ctx.noEffect(loc, 'Listener.per_connection_buffer_limit_bytes');
  for (const k of ['listener_filters_timeout', 'continue_on_listener_filters_timeout']) {
    if (!isSet(l[k])) continue;
    if (facts.readsFirstBytes) {
      ctx.reject(sub(loc, k), 'is not supported on a listener that reads a PROXY header or a TLS ClientHello before picking a filter chain: '
        + 'Remora waits request_headers_timeout_ms (10 s by default) for them, then closes the connection');
    } else ctx.noEffect(loc, `Listener.${k}`);
  }
}

/** Linux's socket option numbers (level, name) that a listener's socket_options may set. */
const SOL_SOCKET = 1;
const IPPROTO_TCP = 6;
const SO_KEEPALIVE = 9;
const SO_REUSEPORT = 15;
const TCP_NODELAY = 1;
const TCP_KEEPIDLE = 4;
const TCP_KEEPINTVL = 5;
const TCP_KEEPCNT = 6;

/**
 * A listener's socket_options → `tcp_keepalive` in `out`. What Remora can set of TCP
 * keepalive: SO_KEEPALIVE (on, or off when 0) and TCP_KEEPIDLE (the idle time).
 * TCP_KEEPINTVL and TCP_KEEPCNT are counted as without effect (Node cannot set them;
 * the platform's apply). TCP_NODELAY 1 and SO_REUSEPORT 1 are what Remora sets anyway.
 * Any other option, or a value given as bytes, is rejected: Remora cannot set it.
 */
export function listenerSocketOptions(ctx: Ctx, l: Obj, loc: Loc, out: Fields): void {
  let keepalive: boolean | undefined;
  let idle: { value: number; loc: Loc } | undefined;
  asArr(l.socket_options).forEach((v, i) => {
    const ol = sub(loc, `socket_options[${i}]`);
    const o = asObj(v) ?? {};
    ctx.only(o, ol, ['description', 'level', 'name', 'int_value', 'buf_value', 'state', 'type']);
    const level = Number(o.level ?? 0);
    const name = Number(o.name ?? 0);
    if (isSet(o.buf_value)) {
      ctx.reject(sub(ol, 'buf_value'), 'is not supported: Remora sets socket options from int_value only');
      return;
    }
    const value = Number(o.int_value ?? 0);
    if (level === SOL_SOCKET && name === SO_KEEPALIVE) keepalive = value !== 0;
    else if (level === IPPROTO_TCP && name === TCP_KEEPIDLE) idle = { value, loc: sub(ol, 'int_value') };
    else if (level === IPPROTO_TCP && (name === TCP_KEEPINTVL || name === TCP_KEEPCNT)) {
      ctx.noEffect(loc, `Listener.socket_options ${name === TCP_KEEPINTVL ? 'TCP_KEEPINTVL' : 'TCP_KEEPCNT'}`);
    } else if (((level === IPPROTO_TCP && name === TCP_NODELAY) || (level === SOL_SOCKET && name === SO_REUSEPORT)) && value === 1) {
      ctx.noEffect(loc, `Listener.socket_options ${name === TCP_NODELAY ? 'TCP_NODELAY' : 'SO_REUSEPORT'}`);
    } else {
      ctx.reject(ol, `level ${level} name ${name} is not supported: Remora sets SO_KEEPALIVE (level 1 name 9) and TCP_KEEPIDLE (level 6 name 4) `
        + 'as the listener\'s tcp_keepalive; TCP_KEEPINTVL and TCP_KEEPCNT are the platform\'s');
    }
  });
  if (keepalive === true) {
    const k = out.nest('tcp_keepalive').here(sub(loc, 'socket_options'));
    if (idle !== undefined) k.set('time_s', idle.value, idle.loc);
  } else if (idle !== undefined) {
    // Envoy sets it, and it does nothing without SO_KEEPALIVE.
    ctx.noEffect(loc, 'Listener.socket_options TCP_KEEPIDLE (without SO_KEEPALIVE)');
  }
}
