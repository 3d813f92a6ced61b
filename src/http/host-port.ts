// Where the port starts in a Host (or :authority) value: `name:port`, `[v6]:port`, or no
// port at all. Shared by what rewrites a Host around its port (redirects, mirrored
// requests).

/** The index of the ':' that starts `host`'s port, or -1 when it has none. */
export function portStart(host: string): number {
  if (host.startsWith('[')) {
    const end = host.lastIndexOf(']:');
    return end > 0 ? end + 1 : -1;
  }
  const colon = host.lastIndexOf(':');
  return colon > 0 ? colon : -1;
}
