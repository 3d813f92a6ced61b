// xDS resources written as JSON or YAML (Envoy's config dumps, Envoy's own YAML configs,
// control planes' test outputs) turned into the objects the proto loader encodes
// (src/xds/protos.ts: field names as in the .proto, Anys as {type_url, value}), so that
// real resources can be sent over ADS as a control plane would send them. It follows
// the proto3 JSON mapping: field names in either spelling (`route_config` or
// `routeConfig`), Anys with "@type" encoded to bytes, Durations as "1.5s", wrappers as
// bare values, Structs as plain objects, maps as objects, bytes as base64, 64-bit
// integers as strings or numbers. What it cannot encode is listed, not guessed: a field
// the loaded protos do not have, an Any of a type they do not define (sent with the
// type URL and no bytes, as opaque as it is to Remora), a value of the wrong shape.

import { messageDescriptor, resolveTypeName, type FieldDescriptor, type MessageDescriptor } from '../../src/xds/descriptors.js';
import type { XdsProtos, ProtoObject } from '../../src/xds/protos.js';

/** One thing the conversion could not carry over, by path in the input. */
export interface ConversionProblem {
  readonly path: string;
  readonly problem: string;
}

const WRAPPERS = new Set(['DoubleValue', 'FloatValue', 'Int64Value', 'UInt64Value', 'Int32Value', 'UInt32Value', 'BoolValue', 'StringValue', 'BytesValue'].map((n) => `google.protobuf.${n}`));
const INT64 = new Set(['TYPE_INT64', 'TYPE_UINT64', 'TYPE_SINT64', 'TYPE_FIXED64', 'TYPE_SFIXED64']);

/** lower_snake to lowerCamel, as protoc derives a field's JSON name. */
function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export class ProtoJson {
  private readonly fieldsByType = new Map<string, Map<string, FieldDescriptor>>();

  constructor(private readonly protos: XdsProtos) {}

  /** `json` (a resource of `typeUrl`) as the loader's object; `problems` gets what was
   *  left out. */
  message(typeUrl: string, json: unknown, problems: ConversionProblem[], path = ''): ProtoObject {
    // A resource from a config dump can carry its own "@type" (written as an Any).
    if (json !== null && typeof json === 'object' && '@type' in json) {
      const { '@type': _, ...rest } = json as Record<string, unknown>;
      json = rest;
    }
    return this.convertMessage(typeUrl.slice(typeUrl.lastIndexOf('/') + 1), json, problems, path);
  }

  private fields(fullName: string, d: MessageDescriptor): Map<string, FieldDescriptor> {
    let m = this.fieldsByType.get(fullName);
    if (m === undefined) {
      m = new Map();
      for (const f of d.field ?? []) {
        m.set(f.name, f);
        m.set(f.jsonName !== '' ? f.jsonName : camel(f.name), f);
      }
      this.fieldsByType.set(fullName, m);
    }
    return m;
  }

  private convertMessage(fullName: string, json: unknown, problems: ConversionProblem[], path: string): ProtoObject {
    const special = this.wellKnown(fullName, json, problems, path);
    if (special !== undefined) return special;
    const d = messageDescriptor(fullName);
    if (d === null) {
      problems.push({ path, problem: `type ${fullName} is not in the loaded protos` });
      return {};
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      problems.push({ path, problem: `expected an object for ${fullName}` });
      return {};
    }
    const fields = this.fields(fullName, d);
    const out: ProtoObject = {};
    for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
      const at = path === '' ? key : `${path}.${key}`;
      const f = fields.get(key);
      if (f === undefined) {
        problems.push({ path: at, problem: `no field "${key}" in ${fullName}` });
        continue;
      }
      if (value === null) continue; // JSON null: the field is unset
      const entry = f.type === 'TYPE_MESSAGE' ? d.nestedType?.find((n) => n.name === f.typeName && n.options?.mapEntry === true) : undefined;
      if (entry !== undefined) {
        out[f.name] = this.convertMap(`${fullName}.${entry.name}`, entry, value, problems, at);
      } else if (f.label === 'LABEL_REPEATED') {
        if (!Array.isArray(value)) {
          problems.push({ path: at, problem: 'expected a list' });
          continue;
        }
        out[f.name] = value.map((v, i) => this.convertValue(fullName, f, v, problems, `${at}[${i}]`));
      } else {
        out[f.name] = this.convertValue(fullName, f, value, problems, at);
      }
    }
    return out;
  }

  private convertMap(scope: string, entry: MessageDescriptor, json: unknown, problems: ConversionProblem[], path: string): Record<string, unknown> {
    const valueField = entry.field?.find((f) => f.name === 'value');
    const out: Record<string, unknown> = {};
    if (valueField === undefined || json === null || typeof json !== 'object' || Array.isArray(json)) {
      problems.push({ path, problem: 'expected an object (a map)' });
      return out;
    }
    for (const [k, v] of Object.entries(json as Record<string, unknown>)) out[k] = this.convertValue(scope, valueField, v, problems, `${path}.${k}`);
    return out;
  }

  private convertValue(scope: string, f: FieldDescriptor, v: unknown, problems: ConversionProblem[], path: string): unknown {
    switch (f.type) {
      case 'TYPE_MESSAGE': {
        const t = resolveTypeName(scope, f.typeName);
        if (t === null) {
          problems.push({ path, problem: `type ${f.typeName} not found` });
          return {};
        }
        return this.convertMessage(t, v, problems, path);
      }
      case 'TYPE_BYTES':
        return typeof v === 'string' ? Buffer.from(v, 'base64') : v;
      case 'TYPE_BOOL':
        return v === true || v === 'true';
      case 'TYPE_STRING':
      case 'TYPE_ENUM':
        return v;
      default:
        if (INT64.has(f.type)) return String(v);
        return typeof v === 'string' ? Number(v) : v;
    }
  }

  /** The well-known types with a JSON form of their own; undefined for any other type. */
  private wellKnown(fullName: string, json: unknown, problems: ConversionProblem[], path: string): ProtoObject | undefined {
    if (WRAPPERS.has(fullName)) {
      if (fullName.endsWith('Int64Value') || fullName.endsWith('UInt64Value')) return { value: String(json) };
      if (fullName.endsWith('BytesValue')) return { value: Buffer.from(String(json), 'base64') };
      if (fullName.endsWith('StringValue')) return { value: json };
      if (fullName.endsWith('BoolValue')) return { value: json === true || json === 'true' };
      return { value: Number(json) };
    }
    switch (fullName) {
      case 'google.protobuf.Duration':
      case 'google.protobuf.Timestamp': {
        const seconds = fullName.endsWith('Duration') ? durationSeconds(json) : typeof json === 'string' ? Date.parse(json) / 1000 : NaN;
        if (!Number.isFinite(seconds)) {
          problems.push({ path, problem: `not a ${fullName.slice(16)}: ${JSON.stringify(json)}` });
          return {};
        }
        const whole = Math.trunc(seconds);
        return { seconds: String(whole), nanos: Math.round((seconds - whole) * 1e9) };
      }
      case 'google.protobuf.Struct':
        return structOf(json);
      case 'google.protobuf.Value':
        return valueOf(json);
      case 'google.protobuf.ListValue':
        return { values: (Array.isArray(json) ? json : []).map(valueOf) };
      case 'google.protobuf.Empty':
        return {};
      case 'google.protobuf.FieldMask':
        return { paths: typeof json === 'string' ? json.split(',').filter((p) => p !== '') : [] };
      case 'google.protobuf.Any':
        return this.any(json, problems, path);
    }
    return undefined;
  }

  /** An Any written with "@type": the rest converted as that type and encoded. */
  private any(json: unknown, problems: ConversionProblem[], path: string): ProtoObject {
    const o = (json ?? {}) as Record<string, unknown>;
    const typeUrl = typeof o['@type'] === 'string' ? o['@type'] : '';
    // Envoy reads an Any without a type by its filter's name: sent as it is.
    if (typeUrl === '') return { type_url: '', value: Buffer.alloc(0) };
    const name = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
    if (this.protos.definition[name] === undefined) {
      problems.push({ path, problem: `Any of ${name}: not in the loaded protos (sent without its bytes)` });
      return { type_url: typeUrl, value: Buffer.alloc(0) };
    }
    const { '@type': _, ...rest } = o;
    // A well-known type inside an Any carries its JSON form under "value".
    const body = name.startsWith('google.protobuf.') && 'value' in rest ? rest.value : rest;
    const message = this.convertMessage(name, body, problems, path);
    return { type_url: typeUrl, value: this.protos.encodeAny(typeUrl, message).value };
  }
}

/** "1.5s", "0.000001s", or a number of seconds. */
function durationSeconds(json: unknown): number {
  if (typeof json === 'number') return json;
  if (typeof json === 'string' && /^-?\d+(\.\d+)?s$/.test(json)) return Number(json.slice(0, -1));
  return NaN;
}

function structOf(json: unknown): ProtoObject {
  const fields: Record<string, unknown> = {};
  if (json !== null && typeof json === 'object' && !Array.isArray(json)) {
    for (const [k, v] of Object.entries(json as Record<string, unknown>)) fields[k] = valueOf(v);
  }
  return { fields };
}

/** A google.protobuf.Value (the loader takes this type's fields in lowerCamel). */
function valueOf(v: unknown): ProtoObject {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(valueOf) } };
  return { structValue: structOf(v) };
}
