// The writing side of the xDS translation: raw Remora data (the shape a config file has)
// and, for each raw field, a mark naming the resource field it was read from, so that
// validateConfig's errors, which name raw paths, are reported at the xDS field
// (src/xds/translate.ts, locate). `Fields` writes a value and its mark in one call, so a
// field cannot be translated without saying where it came from.

import type { Loc } from './translate-context.js';
import { isObj, type Obj } from './read.js';

/** A raw Remora path (relative to its listener or cluster, `.a.b[0]`) → where it came from. */
export type Mark = readonly [string, Loc];

/** Raw data with marks relative to it ('' is the data itself, `.a` a field, `[0]` an item). */
export interface Part<T = Obj> {
  readonly raw: T;
  readonly marks: readonly Mark[];
}

export function addMarks(into: Mark[], prefix: string, marks: readonly Mark[]): void {
  for (const [rel, loc] of marks) into.push([`${prefix}${rel}`, loc]);
}

/**
 * Writes one raw object. `at` is the object's raw path relative to what `marks` are
 * relative to ('' when they are relative to the object itself), so nested objects can
 * share their listener's or cluster's marks. Every method writes one field.
 */
export class Fields {
  constructor(
    readonly raw: Obj = {},
    readonly marks: Mark[] = [],
    readonly at: string = '',
  ) {}

  /** Marks the object itself as read from `from`. */
  here(from: Loc): this {
    this.marks.push([this.at, from]);
    return this;
  }

  /** `key` = `value`, read from `from`. */
  set(key: string, value: unknown, from: Loc): void {
    this.raw[key] = value;
    this.marks.push([`${this.at}.${key}`, from]);
  }

  /** `key` = `value` when the value is defined; nothing otherwise. */
  take(key: string, value: unknown, from: Loc): void {
    if (value !== undefined) this.set(key, value, from);
  }

  /** `key` = `value` when the value is defined, and the mark either way: the default
   *  validateConfig fills in stands for `from` too. */
  fill(key: string, value: unknown, from: Loc): void {
    if (value !== undefined) this.raw[key] = value;
    this.marks.push([`${this.at}.${key}`, from]);
  }

  /** Marks a raw path below the object (`.key`, `.key[0]`) without writing it. */
  mark(rel: string, from: Loc): void {
    this.marks.push([`${this.at}${rel}`, from]);
  }

  /** `key` = data built elsewhere, with its marks (relative to it). */
  attach(key: string, value: unknown, marks: readonly Mark[]): void {
    this.raw[key] = value;
    addMarks(this.marks, `${this.at}.${key}`, marks);
  }

  /** `key` = the parts' data as a list, each part's marks under its index. */
  list(key: string, parts: readonly Part[]): void {
    this.raw[key] = parts.map((p) => p.raw);
    parts.forEach((p, i) => addMarks(this.marks, `${this.at}.${key}[${i}]`, p.marks));
  }

  /** `key` = a new object, written by the returned Fields (same marks). */
  nest(key: string): Fields {
    const child = new Fields({}, this.marks, `${this.at}.${key}`);
    this.raw[key] = child.raw;
    return child;
  }

  /** The object already at `key`, to write more fields into; undefined when there is none. */
  within(key: string): Fields | undefined {
    const o = this.raw[key];
    return isObj(o) ? new Fields(o, this.marks, `${this.at}.${key}`) : undefined;
  }

  /** A new object at raw path `rel` below this one (a list item: `[0]`), which the caller
   *  places; it shares the marks. */
  item(rel: string): Fields {
    return new Fields({}, this.marks, `${this.at}${rel}`);
  }
}
