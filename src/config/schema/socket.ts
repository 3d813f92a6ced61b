// Socket options Remora sets on the TCP connections it accepts (a listener's) and opens
// (a cluster's). Only what Node can set: keepalive on or off and the idle time before
// the first probe. The interval between probes and their number are the platform's
// (libuv sets them when keepalive is turned on), which Node cannot change.

import * as v from 'valibot';
import { int, obj } from './fields.js';

/** Linux's TCP_KEEPIDLE limit (seconds). */
export const MAX_KEEPALIVE_TIME_S = 32_767;

export const TcpKeepaliveSchema = obj({
  time_s: v.optional(int(1, MAX_KEEPALIVE_TIME_S, 'Seconds a connection is idle before the first keepalive probe (Envoy\'s `keepalive_time`).',
    { default: 'the operating system\'s (`net.ipv4.tcp_keepalive_time`, 7200 s on Linux)', scope: 'per connection' })),
}, 'TCP keepalive (`SO_KEEPALIVE`): the kernel probes a connection that has been idle this long, and closes it when the peer no longer answers, so a peer that vanished (a crashed host, a NAT or load balancer that forgot the connection) is found without traffic. The probes\' interval and count are the platform\'s: Node cannot set them.');
