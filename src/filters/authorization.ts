// Authorization by peer identity (Envoy's RBAC, reduced to what a sidecar needs):
// compiled once per config snapshot into exact sets and prefix lists, then checked per
// request with no allocation. Deny wins; a non-empty allow list must match; a client
// with no verified certificate has no identity and matches no pattern.

import type { Authorization } from '../config/types.js';

class Patterns {
  private readonly exact = new Set<string>();
  private readonly prefixes: string[] = [];

  constructor(patterns: readonly string[]) {
    for (const p of patterns) {
      if (p.endsWith('*')) this.prefixes.push(p.slice(0, -1));
      else this.exact.add(p);
    }
  }

  get empty(): boolean {
    return this.exact.size === 0 && this.prefixes.length === 0;
  }

  matches(id: string): boolean {
    if (this.exact.has(id)) return true;
    for (let i = 0; i < this.prefixes.length; i++) if (id.startsWith(this.prefixes[i])) return true;
    return false;
  }
}

export class CompiledAuthorization {
  private readonly allow: Patterns;
  private readonly deny: Patterns;

  constructor(config: Authorization) {
    this.allow = new Patterns(config.allow);
    this.deny = new Patterns(config.deny);
  }

  /** Whether a peer with identity `id` ('' = none) may pass. */
  permits(id: string): boolean {
    if (id !== '' && this.deny.matches(id)) return false;
    if (this.allow.empty) return true;
    return id !== '' && this.allow.matches(id);
  }
}

export function compileAuthorization(config: Authorization | undefined): CompiledAuthorization | null {
  return config === undefined ? null : new CompiledAuthorization(config);
}
