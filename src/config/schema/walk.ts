// The generic schema walker: checks plain data (parsed YAML/JSON) against a config schema
// and returns a copy with static defaults filled in and values normalised. It reports
// EVERY problem as a ConfigError with its path (`clusters[2].endpoints[0].port`) in
// Remora's wording: types, integer and number ranges, enums, field checks, unknown keys
// (with a did-you-mean). What a schema cannot say (references, uniqueness, conditional
// defaults, rules across fields) is validate.ts's second pass, which reads the walk's
// result and adds its errors to the same list. Bad input never throws.

import * as v from 'valibot';
import type { ConfigError } from '../types.js';
import type { FieldMeta } from './fields.js';

type Obj = Record<string, unknown>;
type Schema = v.GenericSchema;

/** What the walker reads of a schema: its base type, its actions, merged metadata. */
export interface SchemaParts {
  readonly base: Schema & { readonly type: string; readonly message?: unknown };
  readonly integer: boolean;
  readonly min?: number;
  readonly max?: number;
  readonly description?: string;
  readonly meta: FieldMeta;
}

type Action = { readonly kind: string; readonly type: string; readonly requirement?: unknown; readonly description?: string; readonly metadata?: FieldMeta };

const partsCache = new WeakMap<object, SchemaParts>();

/** Reads a (possibly piped, possibly nested-pipe) schema once; cached. */
export function schemaParts(schema: Schema): SchemaParts {
  const cached = partsCache.get(schema);
  if (cached) return cached;
  const pipe = (schema as { pipe?: readonly (Schema | Action)[] }).pipe;
  let parts: SchemaParts;
  if (pipe === undefined) {
    parts = { base: schema as SchemaParts['base'], integer: false, meta: {} };
  } else {
    const inner = schemaParts(pipe[0] as Schema);
    let { integer, min, max, description } = inner;
    let meta: FieldMeta = inner.meta;
    for (const a of pipe.slice(1) as Action[]) {
      if (a.type === 'integer') integer = true;
      else if (a.type === 'min_value') min = a.requirement as number;
      else if (a.type === 'max_value') max = a.requirement as number;
      else if (a.type === 'description') description = a.description;
      else if (a.type === 'metadata') meta = { ...meta, ...a.metadata };
    }
    parts = { base: inner.base, integer, min, max, description, meta };
  }
  partsCache.set(schema, parts);
  return parts;
}

/** Entries of an object schema (through its pipe). */
export function objectEntries(schema: Schema): v.ObjectEntries | undefined {
  const base = schemaParts(schema).base as { entries?: v.ObjectEntries };
  return base.entries;
}

export function isObj(value: unknown): value is Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export const at = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

export function unknownKeyMessage(key: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDist = 3;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k);
    if (d < bestDist) { best = k; bestDist = d; }
  }
  return best !== undefined
    ? `unknown key (did you mean "${best}"?)`
    : `unknown key (allowed: ${known.join(', ')})`;
}

/** Names for a message, in their order: all of them when there are few, else the first
 *  `shown` and how many more (a mesh config has thousands of clusters). */
export function nameList(names: Iterable<string>, shown = 10): string {
  const all = [...names];
  const more = all.length > shown ? ` and ${all.length - shown} more` : '';
  return all.slice(0, shown).join(', ') + more;
}

function rangeText(p: SchemaParts): string {
  const unit = p.meta.unit !== undefined ? ` (${p.meta.unit})` : '';
  return `${p.integer ? 'an integer' : 'a number'} ${p.min}..${p.max}${unit}`;
}

/** The message for a missing required field. */
export function requiredMessage(p: SchemaParts): string {
  if (p.meta.required !== undefined) return p.meta.required;
  switch (p.base.type) {
    case 'string': return 'is required (a string)';
    case 'number': return `is required (${rangeText(p)})`;
    case 'array': return p.meta.nonEmpty ?? 'is required';
    case 'strict_object': case 'object': return 'must be an object (mapping)';
    default: return 'is required';
  }
}

/** One walk: the errors found, and what the second pass needs to know about the input. */
export class SchemaWalk {
  readonly errors: ConfigError[] = [];
  /** Paths whose value was missing (required) or of the wrong type. */
  private readonly wrongType = new Set<string>();
  /** Keys present in the input, by output object. */
  private readonly present = new WeakMap<object, ReadonlySet<string>>();

  err(path: string, message: string): void {
    this.errors.push({ path: path === '' ? '(root)' : path, message });
  }

  /** Was `key` set in the input object that `out` was made from? */
  given(out: object | undefined, key: string): boolean {
    return out !== undefined && (this.present.get(out)?.has(key) ?? false);
  }

  /** Was the value at `path` missing or of the wrong type (so a placeholder stands there)? */
  wrong(path: string): boolean {
    return this.wrongType.has(path);
  }

  /** Has an error been reported at exactly `path`? */
  erred(path: string): boolean {
    return this.errors.some((e) => e.path === path);
  }

  /** Walks `value` at `path`; the result has the schema's output shape when no error was
   *  reported (placeholders stand where errors were: `''`, `0`, `[]`, or undefined). */
  value(schema: Schema, value: unknown, path: string): unknown {
    if (schema.type === 'optional') {
      const wrapped = (schema as unknown as { wrapped: Schema }).wrapped;
      if (value !== undefined) return this.value(wrapped, value, path);
      const d = v.getDefault(schema as v.OptionalSchema<Schema, unknown>);
      return d === undefined ? undefined : this.value(wrapped, structuredClone(d), path);
    }
    const p = schemaParts(schema);
    const bad = (message: string, placeholder: unknown): unknown => {
      this.err(path, message);
      this.wrongType.add(path);
      return placeholder;
    };
    const typeMessage = typeof p.base.message === 'string' ? p.base.message : undefined;
    switch (p.base.type) {
      case 'number': {
        const ok = typeof value === 'number' && (p.integer ? Number.isInteger(value) : !Number.isNaN(value))
          && value >= (p.min ?? -Infinity) && value <= (p.max ?? Infinity);
        if (!ok) {
          if (typeof value !== 'number') return bad(typeMessage ?? `must be ${rangeText(p)}`, 0);
          this.err(path, `must be ${rangeText(p)}`);
          return value;
        }
        return this.checked(p, value, path);
      }
      case 'string':
        if (typeof value !== 'string') return bad(typeMessage ?? 'must be a string', '');
        return this.checked(p, value, path);
      case 'boolean':
        if (typeof value !== 'boolean') return bad(typeMessage ?? 'must be true or false', false);
        return this.checked(p, value, path);
      case 'picklist': {
        const options = (p.base as unknown as { options: readonly string[] }).options;
        if (typeof value !== 'string' || !options.includes(value)) return bad(`must be one of ${options.join(', ')}`, undefined);
        return value;
      }
      case 'array': {
        if (!Array.isArray(value)) return bad(typeMessage ?? 'must be a list', []);
        if (value.length === 0 && p.meta.nonEmpty !== undefined) this.err(path, p.meta.nonEmpty);
        const item = (p.base as unknown as { item: Schema }).item;
        const out = value.map((x, i) => this.value(item, x, `${path}[${i}]`));
        return p.meta.normalize ? (p.meta.normalize as (a: unknown[]) => unknown)(out) : out;
      }
      case 'tuple': {
        // A fixed-length list (a status range pair): one message for any problem in it.
        const items = (p.base as unknown as { items: readonly Schema[] }).items;
        const inner = new SchemaWalk();
        const ok = Array.isArray(value) && value.length === items.length
          && items.every((s, i) => { inner.value(s, (value as unknown[])[i], ''); return inner.errors.length === 0; });
        const problem = ok ? p.meta.check && (p.meta.check as (x: unknown) => string | undefined)(value) : typeMessage ?? 'must be a list';
        if (problem) return bad(problem, undefined);
        return [...(value as unknown[])];
      }
      case 'record': {
        if (!isObj(value)) return bad(typeMessage ?? 'must be an object (mapping)', undefined);
        const valueSchema = (p.base as unknown as { value: Schema }).value;
        return Object.fromEntries(Object.entries(value).map(([k, x]) => [k, this.value(valueSchema, x, at(path, k))]));
      }
      case 'strict_object':
      case 'object':
        return this.object(p, value, path, typeMessage);
      default:
        throw new Error(`config schema: the walker does not handle "${p.base.type}" (${path})`);
    }
  }

  private checked(p: SchemaParts, value: unknown, path: string): unknown {
    const problem = p.meta.check && (p.meta.check as (x: unknown) => string | undefined)(value);
    if (problem !== undefined) this.err(path, problem);
    return p.meta.normalize ? (p.meta.normalize as (x: unknown) => unknown)(value) : value;
  }

  private object(p: SchemaParts, value: unknown, path: string, typeMessage: string | undefined): Obj | undefined {
    if (!isObj(value)) {
      this.err(path, typeMessage ?? 'must be an object (mapping)');
      this.wrongType.add(path);
      return undefined;
    }
    const entries = (p.base as unknown as { entries: v.ObjectEntries }).entries;
    const known = Object.keys(entries);
    for (const key of Object.keys(value)) {
      if (!Object.hasOwn(entries, key)) this.err(at(path, key), unknownKeyMessage(key, known));
    }
    const out: Obj = {};
    const present = new Set<string>();
    for (const key of known) {
      const schema = entries[key];
      const raw = value[key];
      const fp = at(path, key);
      if (raw !== undefined) present.add(key);
      if (raw === undefined && schema.type !== 'optional') {
        const fieldParts = schemaParts(schema);
        // Filled in by validate.ts; the key is set here so that it keeps its place in the output.
        if (fieldParts.meta.conditional) { out[key] = undefined; continue; }
        this.err(fp, requiredMessage(fieldParts));
        this.wrongType.add(fp);
        const placeholder = { string: '', number: 0, array: [] as unknown[] }[fieldParts.base.type as 'string'];
        if (placeholder !== undefined) out[key] = placeholder;
        continue;
      }
      const result = this.value(schema, raw, fp);
      if (result !== undefined) out[key] = result;
    }
    this.present.set(out, present);
    return out;
  }
}
