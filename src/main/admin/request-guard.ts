// Keeps browsers away from the admin API. A page on any site can make a victim's browser
// send requests to 127.0.0.1:9901: a cross-site POST with a "simple" content type needs
// no CORS preflight, and DNS rebinding (a hostile name that resolves to 127.0.0.1) lets
// the page read replies such as /config_dump. So the admin server refuses a Host that is
// neither an IP address nor localhost (rebinding needs a name of its own), and a
// state-changing request that carries an Origin header or a content type a form can send.
// curl, kubectl port-forward, probes and Prometheus send none of these. Pure: tested in
// test/unit/admin-guard.test.ts, applied in server.ts.

import { isIP } from 'node:net';

/** Content types a browser sends cross-site without a preflight (the CORS "simple" ones). */
const FORM_TYPES = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data'];

/** The host part of a Host header: without the port, without IPv6 brackets, lower case. */
export function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end < 0 ? h : h.slice(1, end);
  }
  const colon = h.lastIndexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

/** Why the admin server refuses a request with this method and these headers, or null to
 *  serve it. Anything but GET and HEAD may change state. */
export function adminRefusal(
  method: string | undefined,
  headers: { host?: string; origin?: string; 'content-type'?: string },
): string | null {
  if (headers.host !== undefined) {
    const name = hostName(headers.host);
    if (name !== 'localhost' && !name.endsWith('.localhost') && isIP(name) === 0) {
      return `Host "${headers.host}" is neither an IP address nor localhost (the admin API is not served to other names: DNS rebinding)`;
    }
  }
  if (method === undefined || method === 'GET' || method === 'HEAD') return null;
  if (headers.origin !== undefined) {
    return `a state-changing request with an Origin header ("${headers.origin}") comes from a browser page; the admin API takes none`;
  }
  const type = headers['content-type']?.split(';')[0].trim().toLowerCase();
  if (type !== undefined && FORM_TYPES.includes(type)) {
    return `a state-changing request with content type ${type} (what a cross-site form can send) is refused; send none`;
  }
  return null;
}
