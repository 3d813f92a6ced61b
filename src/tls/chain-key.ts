// Where TLS material is kept besides a listener's own: the main thread's cert store keeps
// a filter chain's (a TCP listener's, or an HTTPS one picked by server name) under
// `<listener> <chain>`, and the additional
// certificates of either under `<key> certificate <i>` (names have no spaces, so no
// listener's own name is ever such a key).

/** The key of filter chain `chain`'s material in TlsMaterialSet.listeners. */
export function chainTlsKey(listener: string, chain: string): string {
  return `${listener} ${chain}`;
}

/** The key of additional certificate `i` of the TLS config whose material is at `key`. */
export function additionalCertificateKey(key: string, i: number): string {
  return `${key} certificate ${i}`;
}
