// Picking by the server name a TLS client sent (SNI), as Envoy picks a filter chain by
// `filter_chain_match.server_names`: an exact name first, then the longest `*.suffix`
// the name ends with (`*.b.example` beats `*.example`; a wildcard stands for one label or
// more). Built once per config; a lookup is a map probe per dot of the name.

export class ServerNames<T> {
  private readonly exact = new Map<string, T>();
  /** By suffix with its dot (`.b.example`). */
  private readonly wildcard = new Map<string, T>();

  /** `entries`: each value with its names, lower-case; the first value naming a name
   *  keeps it. */
  constructor(entries: readonly { readonly names: readonly string[]; readonly value: T }[]) {
    for (const { names, value } of entries) {
      for (const name of names) {
        if (name.startsWith('*.')) {
          if (!this.wildcard.has(name.slice(1))) this.wildcard.set(name.slice(1), value);
        } else if (!this.exact.has(name)) this.exact.set(name, value);
      }
    }
  }

  /** The value for `name` (lower-case), or null when no name matches it. */
  pick(name: string): T | null {
    const exact = this.exact.get(name);
    if (exact !== undefined) return exact;
    if (this.wildcard.size === 0) return null;
    // Suffixes from the longest: ".b.example", then ".example"; never the whole name.
    for (let dot = name.indexOf('.'); dot > 0 && dot < name.length - 1; dot = name.indexOf('.', dot + 1)) {
      const hit = this.wildcard.get(name.slice(dot));
      if (hit !== undefined) return hit;
    }
    return null;
  }
}
