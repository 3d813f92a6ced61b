// A path rewrite by regular expression (Envoy's `regex_rewrite`, on a route action or a
// redirect): every match in the path is replaced by the substitution, whose `\1` … `\9`
// insert capture groups (`\0` the whole match) and `\\` a backslash, as in RE2's
// ReplaceAll. Compiled once per config snapshot into the parts of the substitution.

import type { RegexRewrite } from '../config/types.js';

export interface CompiledRegexRewrite {
  readonly re: RegExp;
  /** Literal text, or the number of a capture group. */
  readonly parts: readonly (string | number)[];
}

/** The substitution as parts, or a problem: a backslash before anything but a digit or
 *  a backslash, or a group the pattern does not have. */
function substitutionParts(pattern: string, substitution: string): (string | number)[] | string {
  const groups = new RegExp(`${pattern}|`).exec('')!.length - 1;
  const parts: (string | number)[] = [];
  let text = '';
  for (let i = 0; i < substitution.length; i++) {
    const c = substitution[i];
    if (c !== '\\') {
      text += c;
      continue;
    }
    const next = substitution[++i];
    if (next === '\\') {
      text += '\\';
    } else if (next !== undefined && next >= '0' && next <= '9') {
      const n = next.charCodeAt(0) - 48;
      if (n > groups) return `uses \\${n}, but the pattern has ${groups} capture group${groups === 1 ? '' : 's'}`;
      if (text !== '') parts.push(text);
      text = '';
      parts.push(n);
    } else {
      return 'has a backslash that is not followed by a digit or a backslash (write \\\\ for one)';
    }
  }
  if (text !== '') parts.push(text);
  return parts;
}

/** Why a rewrite cannot be used (the pattern itself is checked by the schema), or undefined. */
export function regexRewriteProblem(r: RegexRewrite): string | undefined {
  let parts: (string | number)[] | string;
  try {
    parts = substitutionParts(r.pattern, r.substitution);
  } catch {
    return undefined; // an invalid pattern: the schema names it
  }
  return typeof parts === 'string' ? `substitution ${parts}` : undefined;
}

export function compileRegexRewrite(r: RegexRewrite): CompiledRegexRewrite {
  const parts = substitutionParts(r.pattern, r.substitution);
  return { re: new RegExp(r.pattern, 'g'), parts: typeof parts === 'string' ? [] : parts };
}

/** `path` (without the query) with every match replaced. */
export function applyRegexRewrite(r: CompiledRegexRewrite, path: string): string {
  return path.replace(r.re, (...m: unknown[]) => {
    let out = '';
    for (const p of r.parts) out += typeof p === 'string' ? p : ((m[p] as string | undefined) ?? '');
    return out;
  });
}
