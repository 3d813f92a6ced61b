// Field builders for the config schema (valibot, chosen by measurement: docs/config.md
// "Config schema"). Each builder returns a valibot schema whose pipe carries what the
// walker (walk.ts), the JSON Schema (json-schema.ts) and the docs tables (docs.ts) read:
// range and enum from valibot actions, the rest in a `FieldMeta` metadata action.

import * as v from 'valibot';

/** What a field says beyond its valibot type. */
export interface FieldMeta {
  /** Unit added to range messages and docs: `must be an integer 1..3600000 (milliseconds)`. */
  readonly unit?: string;
  /** Docs "Unit / scope" column: who the value applies to ("per worker", "ms, per request"). */
  readonly scope?: string;
  /** Docs "Type" column, where the derived one says too little ("name", "IP literal ..."). */
  readonly type?: string;
  /** Docs "Default" column, where the default is not a plain value. */
  readonly default?: string;
  /** The default depends on other fields: the walker leaves the field absent and the
   *  hand-written pass in validate.ts fills it in. `default` says what it is. */
  readonly conditional?: true;
  /** Message when a required field is missing (else derived from the type). */
  readonly required?: string;
  /** Message when a list is empty (or missing, when required). */
  readonly nonEmpty?: string;
  /** A rule on a well-typed value; returns the problem (today's wording) or undefined. */
  readonly check?: (value: never) => string | undefined;
  /** Normalises a valid value (lower-cases header names, drops duplicate list entries). */
  readonly normalize?: (value: never) => unknown;
}

/** Longest duration any `_ms` field accepts: one hour. */
export const MAX_TIMEOUT_MS = 3_600_000;

/** Names (listeners, clusters, routes, ...): visible ASCII, no whitespace. Control planes
 *  use what Envoy allows — Istio's `outbound|9080||reviews.default.svc.cluster.local`,
 *  Envoy Gateway's `httproute/ns/name/rule/0` — and Remora shows them as sent: JSON and
 *  Prometheus label values are escaped where they are written. */
export const NAME_RE = /^[\x21-\x7e]+$/;
export const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/; // RFC 7230 token (header field name)
const LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?';
export const HOST_RE = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`);

const meta = <T>(m: FieldMeta): v.MetadataAction<T, Record<string, unknown>> => v.metadata<T, Record<string, unknown>>(m as Record<string, unknown>);

/** An integer min..max. */
export const int = (min: number, max: number, doc: string, m: FieldMeta = {}) =>
  v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max), v.description(doc), meta<number>(m));

/** A duration in milliseconds, min..MAX_TIMEOUT_MS. */
export const ms = (min: number, doc: string, m: FieldMeta = {}) =>
  int(min, MAX_TIMEOUT_MS, doc, { unit: 'milliseconds', ...m, scope: m.scope ?? 'ms' });

/** A number (not necessarily an integer) min..max. */
export const num = (min: number, max: number, doc: string, m: FieldMeta = {}) =>
  v.pipe(v.number(), v.minValue(min), v.maxValue(max), v.description(doc), meta<number>(m));

export const bool = (doc: string, m: FieldMeta = {}) => v.pipe(v.boolean(), v.description(doc), meta<boolean>(m));

/** A string; `typeMessage` replaces "must be a string" when the field has its own wording. */
export const str = (doc: string, m: FieldMeta = {}, typeMessage?: string) =>
  v.pipe(v.string(typeMessage), v.description(doc), meta<string>(m));

export const oneOf = <const T extends readonly [string, ...string[]]>(options: T, doc: string, m: FieldMeta = {}) =>
  v.pipe(v.picklist(options), v.description(doc), meta<T[number]>(m));

/** A read-only list. */
export const list = <T extends v.GenericSchema>(item: T, doc: string, m: FieldMeta = {}, typeMessage?: string) =>
  v.pipe(v.array(item, typeMessage), v.readonly(), v.description(doc), meta<Readonly<v.InferOutput<v.ArraySchema<T, undefined>>>>(m));

/** A read-only object; unknown keys are errors. */
export const obj = <T extends v.ObjectEntries>(entries: T, doc: string) =>
  v.pipe(v.strictObject(entries), v.readonly(), v.description(doc));

/** A field holding a named object: the field's own description and docs metadata. */
export const field = <T extends v.GenericSchema>(schema: T, doc: string, m: FieldMeta = {}) =>
  v.pipe(schema, v.description(doc), meta<v.InferOutput<T>>(m));

/** A required identifier: listener, cluster, virtual host, rate limit names. */
export const name = (doc: string, scope: string) =>
  str(doc, { type: 'name', scope, check: nameProblem });

export function nameProblem(s: string): string | undefined {
  if (s === '') return 'must not be empty';
  if (!NAME_RE.test(s)) return 'must contain only visible ASCII characters (no spaces or control characters)';
  return undefined;
}

/** A file path: non-empty, no NUL. Whether it can be read is checked when the config is applied. */
export const filePath = (doc: string, m: FieldMeta = {}) =>
  str(doc, { type: 'path', ...m, check: (s: string) => (s === '' || s.includes('\0') ? 'must be a non-empty file path without NUL characters' : undefined) });

/** Drops repeated entries of a list (first one kept). */
export const dedupe = (a: readonly unknown[]): unknown[] => [...new Set(a)];
