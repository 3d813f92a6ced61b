// Plain-data accessors for decoded xDS protos. proto-loader gives plain data (options in
// src/xds/protos.ts): only fields that were on the wire, 64-bit integers and enums as
// strings, wrappers as {value}. A proto3 scalar at its zero value is the same as unset
// (conforming senders do not even encode it). These readers never reject anything: the
// translation (src/xds/translate*.ts) decides what a wrong shape means.

import type { ProtoObject } from './protos.js';

export type Obj = ProtoObject;

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
