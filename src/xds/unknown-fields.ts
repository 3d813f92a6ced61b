// Fields of an xDS resource that Remora's protos do not know (docs/xds.md "Unknown
// fields"). Decoding drops a field number its descriptor lacks without a word, so a
// control plane newer than Remora's Envoy API copy could set something Remora never
// sees. This walks the resource's wire bytes against the loaded descriptors, into nested
// messages and into Anys of known types, and lists each unknown field by path:
// `filter_chains.filters.typed_config(HttpConnectionManager).#87`. Envoy's default for
// dynamic resources is the same policy Remora follows with it: accept, warn, count.

import { messageDescriptor, resolveTypeName } from './descriptors.js';

interface FieldInfo {
  readonly name: string;
  /** Full name of the message type, for TYPE_MESSAGE fields; else null. */
  readonly messageType: string | null;
}

const ANY = 'google.protobuf.Any';
const MAX_DEPTH = 64;
const typeCache = new Map<string, ReadonlyMap<number, FieldInfo> | null>();

/** The unknown fields of a resource of `typeUrl` encoded as `bytes` (empty: none; a type
 *  whose descriptor is not loaded is not walked). */
export function unknownFields(typeUrl: string, bytes: Uint8Array): string[] {
  const out: string[] = [];
  walk(typeUrl.slice(typeUrl.lastIndexOf('/') + 1), bytes, '', out, 0);
  return out;
}

function walk(typeName: string, bytes: Uint8Array, path: string, out: string[], depth: number): void {
  const fields = fieldsOf(typeName);
  if (fields === null || depth > MAX_DEPTH) return;
  const r = { pos: 0 };
  while (r.pos < bytes.length) {
    const tag = varint(bytes, r);
    const number = Math.floor(tag / 8);
    const wire = tag % 8;
    const f = fields.get(number);
    if (f === undefined) {
      const at = `${path}${path === '' ? '' : '.'}#${number}`;
      if (!out.includes(at)) out.push(at);
    }
    if (wire === 0) varint(bytes, r);
    else if (wire === 1) r.pos += 8;
    else if (wire === 5) r.pos += 4;
    else if (wire === 2) {
      const len = varint(bytes, r);
      const body = bytes.subarray(r.pos, r.pos + len);
      r.pos += len;
      if (f?.messageType === ANY) walkAny(body, `${path}${path === '' ? '' : '.'}${f.name}`, out, depth + 1);
      else if (f?.messageType != null) walk(f.messageType, body, `${path}${path === '' ? '' : '.'}${f.name}`, out, depth + 1);
    } else return; // groups (never in xDS) or garbage: decoding failed already if it matters
  }
}

/** An Any: walks its value as its type when that type is loaded. */
function walkAny(bytes: Uint8Array, path: string, out: string[], depth: number): void {
  const r = { pos: 0 };
  let typeUrl = '';
  let value: Uint8Array | null = null;
  while (r.pos < bytes.length) {
    const tag = varint(bytes, r);
    if (tag % 8 !== 2) return;
    const len = varint(bytes, r);
    const body = bytes.subarray(r.pos, r.pos + len);
    r.pos += len;
    if (tag >>> 3 === 1) typeUrl = Buffer.from(body).toString('utf8');
    else if (tag >>> 3 === 2) value = body;
  }
  if (value === null || typeUrl === '') return;
  const type = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  walk(type, value, `${path}(${type.slice(type.lastIndexOf('.') + 1)})`, out, depth);
}

/** Field number → field of a message type, from the loaded descriptors (cached). */
function fieldsOf(typeName: string): ReadonlyMap<number, FieldInfo> | null {
  const cached = typeCache.get(typeName);
  if (cached !== undefined) return cached;
  const fields = messageDescriptor(typeName)?.field;
  if (fields === undefined) {
    typeCache.set(typeName, null);
    return null;
  }
  const map = new Map<number, FieldInfo>();
  for (const f of fields) map.set(f.number, { name: f.name, messageType: f.type === 'TYPE_MESSAGE' ? resolveTypeName(typeName, f.typeName) : null });
  typeCache.set(typeName, map);
  return map;
}

function varint(bytes: Uint8Array, r: { pos: number }): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10 && r.pos < bytes.length; i++) {
    const b = bytes[r.pos++];
    value += (b & 0x7f) * scale;
    if (b < 0x80) return value;
    scale *= 128;
  }
  return value;
}
