// Where a TCP listener's filter chain finds its TLS material: the main thread's cert
// store keeps it beside the listeners' own, under `<listener> <chain>` (names have no
// spaces, so no listener's own name is ever such a key).

/** The key of filter chain `chain`'s material in TlsMaterialSet.listeners. */
export function chainTlsKey(listener: string, chain: string): string {
  return `${listener} ${chain}`;
}
