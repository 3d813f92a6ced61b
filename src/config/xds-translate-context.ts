// The reading side of the xDS translation (src/config/xds-translate.ts and its
// xds-translate-*.ts parts): plain-data accessors for decoded protos, where a problem is
// (resource, field path), marks that map raw Remora paths back to xDS fields, and Ctx,
// which collects rejections and decodes Anys, Durations, percentages and the Remora
// metadata extensions.
//
// proto-loader gives plain data: only fields that were on the wire, 64-bit integers and
// enums as strings, wrappers as {value}. A proto3 scalar at its zero value is the same as
// unset (conforming senders do not even encode it).

import { loadXdsProtos, type ProtoObject } from '../control/xds-protos.js';

/** One rejected field. `message` says what is wrong; `formatRejection` adds where. */
export interface XdsRejection {
  readonly typeUrl: string;
  /** The resource's name ("" for problems of the whole set, "bootstrap" for the base). */
  readonly name: string;
  /** Field path inside the resource, e.g. `filter_chains[0].filters[0].typed_config.http_filters[1]`. */
  readonly path: string;
  readonly message: string;
}

/** `filter_metadata` namespace of the Remora-only fields (see docs/xds.md). */
export const REMORA_METADATA = 'remora';
export const UNSUPPORTED = 'field not supported by Remora';

export type Obj = ProtoObject;

/** `Listener "in" filter_chains[0]: message` — the form used in NACKs and logs. */
export function formatRejection(r: XdsRejection): string {
  const kind = r.typeUrl === '' ? '' : `${r.typeUrl.slice(r.typeUrl.lastIndexOf('.') + 1)} `;
  return `${kind}"${r.name}"${r.path === '' ? '' : ` ${r.path}`}: ${r.message}`;
}


export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}
export const asObj = (v: unknown): Obj | undefined => (isObj(v) ? v : undefined);
export const asArr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
export const asStr = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
export const asNum = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'string' && v !== '' ? Number(v) : 0);

export function isSet(v: unknown): boolean {
  if (v === undefined || v === null || v === '' || v === 0 || v === '0' || v === false) return false;
  if (Array.isArray(v) || v instanceof Uint8Array) return v.length > 0;
  return true;
}

/** A UInt32Value / UInt64Value / DoubleValue / Percent: its number, or undefined when unset. */
export function wrapped(v: unknown): number | undefined {
  const o = asObj(v);
  return o === undefined ? undefined : asNum(o.value);
}

/** A BoolValue: its boolean, or undefined when unset. */
export function wrappedBool(v: unknown): boolean | undefined {
  const o = asObj(v);
  return o === undefined ? undefined : o.value === true;
}

/** google.protobuf.Struct → plain data (protobufjs names Value's fields in camelCase). */
export function fromStruct(s: Obj): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(asObj(s.fields) ?? {})) out[k] = fromValue(asObj(v) ?? {});
  return out;
}

function fromValue(v: Obj): unknown {
  if (v.numberValue !== undefined) return v.numberValue;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.structValue !== undefined) return fromStruct(asObj(v.structValue) ?? {});
  if (v.listValue !== undefined) return asArr(asObj(v.listValue)?.values).map((x) => fromValue(asObj(x) ?? {}));
  return null;
}

// ---------------------------------------------------------------------------
// Where a problem is: a resource and a field path inside it.

export interface Loc {
  readonly typeUrl: string;
  readonly name: string;
  readonly path: string;
}

export const root = (typeUrl: string, name: string): Loc => ({ typeUrl, name, path: '' });

/** `sub(loc, 'a')`, `sub(loc, 0)`, `sub(loc, 'a[0].b')`, `sub(loc, '["key"]')`. */
export function sub(loc: Loc, key: string | number): Loc {
  const k = typeof key === 'number' ? `[${key}]` : key;
  const path = loc.path === '' ? k.replace(/^\./, '') : k.startsWith('[') ? `${loc.path}${k}` : `${loc.path}.${k}`;
  return { ...loc, path };
}

/** A raw Remora path (relative to its listener or cluster, `.a.b[0]`) → where it came from. */
export type Mark = readonly [string, Loc];

export function addMarks(into: Mark[], prefix: string, marks: readonly Mark[]): void {
  for (const [rel, loc] of marks) into.push([`${prefix}${rel}`, loc]);
}

/** One translation's rejections (deduplicated) and the readers that reject as they go. */
export class Ctx {
  readonly errors: XdsRejection[] = [];
  private readonly seen = new Set<string>();
  readonly protos = loadXdsProtos();

  reject(loc: Loc, message: string): void {
    const r: XdsRejection = { typeUrl: loc.typeUrl, name: loc.name, path: loc.path, message };
    const key = formatRejection(r);
    if (this.seen.has(key)) return; // a route configuration shared by two listeners
    this.seen.add(key);
    this.errors.push(r);
  }

  /** Rejects every set field of `o` that is not in `allowed`. */
  only(o: Obj, loc: Loc, allowed: readonly string[]): void {
    for (const [k, v] of Object.entries(o)) {
      if (!allowed.includes(k) && isSet(v)) this.reject(sub(loc, k), UNSUPPORTED);
    }
  }

  /** Decodes an Any; undefined (rejected) when it cannot be. */
  decode(v: unknown, loc: Loc): { typeUrl: string; message: Obj } | undefined {
    const any = asObj(v);
    const typeUrl = asStr(any?.type_url);
    if (any === undefined || typeUrl === undefined || typeUrl === '') {
      this.reject(loc, 'is required (a typed config)');
      return undefined;
    }
    const value = any.value instanceof Uint8Array ? any.value : new Uint8Array(0);
    try {
      return this.protos.decodeAny({ type_url: typeUrl, value });
    } catch (err) {
      this.reject(loc, `cannot decode ${typeUrl}: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  /** A Duration in whole milliseconds; undefined when unset or rejected. */
  ms(v: unknown, loc: Loc): number | undefined {
    const d = asObj(v);
    if (d === undefined) return undefined;
    this.only(d, loc, ['seconds', 'nanos']);
    const seconds = asNum(d.seconds);
    const nanos = asNum(d.nanos);
    if (seconds < 0 || nanos < 0) {
      this.reject(loc, 'must not be negative');
      return undefined;
    }
    if (nanos % 1_000_000 !== 0) {
      this.reject(loc, `must be a whole number of milliseconds (got ${seconds}s and ${nanos}ns)`);
      return undefined;
    }
    return seconds * 1000 + nanos / 1_000_000;
  }

  /** A RuntimeFractionalPercent as a percentage; undefined when unset. Remora has no
   *  runtime, so a runtime_key never overrides the default value. */
  percent(v: unknown, loc: Loc): number | undefined {
    const o = asObj(v);
    if (o === undefined) return undefined;
    this.only(o, loc, ['default_value', 'runtime_key']);
    const d = asObj(o.default_value) ?? {};
    this.only(d, sub(loc, 'default_value'), ['numerator', 'denominator']);
    const denominator = d.denominator === 'TEN_THOUSAND' ? 10_000 : d.denominator === 'MILLION' ? 1_000_000 : 100;
    return (asNum(d.numerator) * 100) / denominator;
  }

  /** The `remora` Struct of a resource's metadata, with only `allowed` keys. */
  extensions(o: Obj, loc: Loc, allowed: readonly string[]): Obj {
    const m = asObj(o.metadata);
    if (m === undefined) return {};
    const ml = sub(loc, 'metadata');
    this.only(m, ml, ['filter_metadata']);
    const fm = asObj(m.filter_metadata) ?? {};
    for (const ns of Object.keys(fm)) {
      if (ns !== REMORA_METADATA) this.reject(sub(ml, `filter_metadata["${ns}"]`), `metadata namespace not used by Remora (only "${REMORA_METADATA}")`);
    }
    const s = asObj(fm[REMORA_METADATA]);
    if (s === undefined) return {};
    const ext = fromStruct(s);
    for (const k of Object.keys(ext)) {
      if (!allowed.includes(k)) {
        this.reject(sub(ml, `filter_metadata.${REMORA_METADATA}.${k}`), `unknown Remora extension (allowed here: ${allowed.join(', ')})`);
      }
    }
    return ext;
  }
}
