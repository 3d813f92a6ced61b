// Generates the JSON Schema (draft-07) of Remora's config files from the config schema,
// for editors (docs/remora-config.schema.json; docs/config.md says how to use it).

import type { GenericSchema, ObjectEntries } from 'valibot';
import { CATALOG, namedObject } from './catalog.js';
import { schemaParts, type SchemaParts } from './walk.js';

type Json = Record<string, unknown>;

function description(p: SchemaParts): Json {
  if (p.description === undefined) return {};
  const extra = [p.meta.scope !== undefined ? `Scope: ${p.meta.scope}.` : '', p.meta.conditional ? `Default: ${p.meta.default}.` : '']
    .filter((s) => s !== '').join(' ');
  return { description: extra === '' ? p.description : `${p.description} ${extra}` };
}

/** The JSON Schema of one field or list item; `top`: the definition itself, not a $ref to it. */
function toJson(schema: GenericSchema, top = false): Json {
  if (schema.type === 'optional') {
    const o = schema as unknown as { wrapped: GenericSchema; default?: unknown };
    const inner = toJson(o.wrapped);
    const d = o.default;
    return d === undefined || typeof d === 'function' ? inner : { ...inner, default: d };
  }
  const p = schemaParts(schema);
  const named = top ? undefined : namedObject(schema);
  if (named) {
    const ref = { $ref: `#/definitions/${named.name}` };
    const desc = description(p);
    return desc.description !== undefined ? { allOf: [ref], ...desc } : ref;
  }
  const base = p.base as unknown as { type: string; options?: readonly string[]; item?: GenericSchema; items?: readonly GenericSchema[]; value?: GenericSchema; entries?: ObjectEntries };
  let out: Json;
  switch (base.type) {
    case 'number': out = { type: p.integer ? 'integer' : 'number', minimum: p.min, maximum: p.max }; break;
    case 'string': out = { type: 'string' }; break;
    case 'boolean': out = { type: 'boolean' }; break;
    case 'picklist': out = { type: 'string', enum: base.options }; break;
    case 'array': out = { type: 'array', items: toJson(base.item as GenericSchema), ...(p.meta.nonEmpty !== undefined ? { minItems: 1 } : {}) }; break;
    case 'tuple': {
      const items = (base.items ?? []).map((s) => toJson(s));
      out = { type: 'array', items, minItems: items.length, maxItems: items.length };
      break;
    }
    case 'record': out = { type: 'object', additionalProperties: toJson(base.value as GenericSchema) }; break;
    default: {
      const entries = base.entries ?? {};
      const required = Object.keys(entries).filter((k) => entries[k].type !== 'optional' && !schemaParts(entries[k]).meta.conditional);
      out = {
        type: 'object',
        properties: Object.fromEntries(Object.entries(entries).map(([k, s]) => [k, toJson(s)])),
        ...(required.length > 0 ? { required } : {}),
        additionalProperties: false,
      };
    }
  }
  return { ...description(p), ...out };
}

/** The whole JSON Schema: a config file, or an xDS bootstrap (root fields plus `xds`). */
export function configJsonSchema(): Json {
  const definitions = Object.fromEntries(CATALOG.map((e) => [e.name, toJson(e.schema, true)]));
  const root = definitions.Root as { properties: Json };
  const { listeners: _l, clusters: _c, ...bootstrapFields } = root.properties;
  definitions.Bootstrap = {
    description: 'An xDS bootstrap: the root fields of a config file plus `xds`; listeners and clusters come from the control plane.',
    type: 'object',
    properties: { ...bootstrapFields, xds: { $ref: '#/definitions/Xds' } },
    required: ['xds'],
    additionalProperties: false,
  };
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $comment: 'Generated from src/config/schema/ by `npm run gen:config-docs`; do not edit.',
    title: 'Remora config',
    oneOf: [{ $ref: '#/definitions/Root' }, { $ref: '#/definitions/Bootstrap' }],
    definitions,
  };
}

/** Where the generated JSON Schema is committed (relative to the repository root). */
export const JSON_SCHEMA_FILE = 'docs/remora-config.schema.json';

export const renderJsonSchema = (): string => `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
