// A virtual host's domains (part of src/xds/translate-route.ts), as Envoy matches them
// against Host and Remora's route table does (docs/xds.md, "Host and port"): with
// ignore_port_in_host_matching, a domain with a port is rejected (Envoy never matches it,
// Remora would); a `host:*` domain (Contour's) is dropped where it adds nothing.

import { sub, type Ctx, type Loc } from './translate-context.js';

/**
 * The domains Remora's virtual host gets, and where each was received (`moved`: [index
 * kept, index received] when they differ). Rejects what Remora would match differently
 * from Envoy.
 */
export function virtualHostDomains(ctx: Ctx, received: readonly unknown[], vl: Loc, ignorePort: boolean): { domains: unknown[]; moved: [number, number][] } {
  const kept = anyPortDomains(ctx, received, vl, ignorePort);
  if (ignorePort) {
    kept.domains.forEach((d, k) => {
      const j = kept.moved.find(([at]) => at === k)?.[1] ?? k;
      if (typeof d === 'string' && HAS_PORT.test(d)) {
        ctx.reject(sub(vl, `domains[${j}]`), `"${d}" has a port, which Envoy never matches with ignore_port_in_host_matching (it strips the port from Host); `
          + 'Remora would match it: remove the port or ignore_port_in_host_matching');
      }
    });
  }
  return kept;
}

/** A domain that names a port: `host:80`, `[::1]:80`. */
const HAS_PORT = /^(?:\[[^\]]*\]|[^:]*):\d+$/;
/** A domain for a host with any port: `host:*` (Contour writes one beside each host). */
const ANY_PORT = /^(.+):\*$/;

/**
 * A virtual host's domains without its `host:*` entries, and where each kept one was
 * (`moved`: [index kept, index received] when they differ). In Envoy `host:*` is a prefix
 * wildcard: Host `host:<port>`. Remora matches a domain whatever port Host carries
 * ([Host and port] in docs/xds.md), so where the virtual host also lists `host` (Contour's
 * pair), `host:*` adds nothing; with ignore_port_in_host_matching, Envoy strips the port
 * before matching and `host:*` never matches. Dropped in both cases, counted without
 * effect. Alone, it is rejected: Remora cannot leave out the Host without a port.
 */
function anyPortDomains(ctx: Ctx, received: readonly unknown[], vl: Loc, ignorePort: boolean): { domains: unknown[]; moved: [number, number][] } {
  const hosts = new Set(received.filter((d): d is string => typeof d === 'string').map((d) => d.toLowerCase()));
  const domains: unknown[] = [];
  const moved: [number, number][] = [];
  received.forEach((d, j) => {
    const host = typeof d === 'string' ? ANY_PORT.exec(d)?.[1] : undefined;
    if (host === undefined || (host.includes('*') && !host.startsWith('*.'))) {
      if (domains.length !== j) moved.push([domains.length, j]);
      domains.push(d);
    } else if (ignorePort || hosts.has(host.toLowerCase())) {
      ctx.noEffect(vl, 'RouteConfiguration.virtual_hosts.domains (host:*)');
    } else {
      ctx.reject(sub(vl, `domains[${j}]`), `"${String(d)}" matches ${host} with a port and not without one; Remora matches a domain whatever port Host `
        + `carries and cannot leave out the Host without one: list "${host}" in this virtual host too (it then takes both, in Envoy too)`);
    }
  });
  return { domains, moved };
}
