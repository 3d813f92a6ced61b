// Renders the field tables of docs/config.md from the config schema. Each table sits
// between marker comments (`<!-- generated:Listener -->` ... `<!-- /generated:Listener -->`);
// the prose around them is written by hand. `npm run gen:config-docs` rewrites them and
// test/unit/config-schema.test.ts fails when the committed file differs.

import type { GenericSchema, ObjectEntries } from 'valibot';
import { anchorOf, CATALOG, namedObject, type CatalogEntry } from './catalog.js';
import { objectEntries, schemaParts } from './walk.js';

/** The reference these tables live in (relative to the repository root). */
export const CONFIG_DOCS_FILE = 'docs/config.md';

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function unwrap(schema: GenericSchema): { inner: GenericSchema; optional: boolean; def: unknown } {
  if (schema.type !== 'optional') return { inner: schema, optional: false, def: undefined };
  const o = schema as unknown as { wrapped: GenericSchema; default?: unknown };
  return { inner: o.wrapped, optional: true, def: o.default };
}

function typeText(schema: GenericSchema): string {
  const p = schemaParts(schema);
  if (p.meta.type !== undefined) return p.meta.type;
  const named = namedObject(schema);
  if (named) return `[${named.name}](#${anchorOf(named)})`;
  const base = p.base as unknown as { type: string; options?: readonly string[]; item?: GenericSchema };
  switch (base.type) {
    case 'number': return `${p.integer ? 'integer' : 'number'} ${p.min}..${p.max}`;
    case 'picklist': return (base.options ?? []).map((o) => `\`${o}\``).join(' | ');
    case 'array': return `list of ${typeText(base.item as GenericSchema)}`;
    default: return base.type;
  }
}

function valueText(d: unknown): string {
  if (typeof d === 'string') return d === '' ? '`""`' : `\`${d}\``;
  return `\`${JSON.stringify(d)}\``;
}

function defaultText(schema: GenericSchema): string {
  const { inner, optional, def } = unwrap(schema);
  const p = schemaParts(inner);
  if (p.meta.default !== undefined) return p.meta.default;
  if (optional) return def === undefined ? 'unset' : valueText(def);
  return p.meta.nonEmpty !== undefined ? '— (at least one)' : '—';
}

/** The markdown table of one object's fields. */
export function fieldTable(entries: ObjectEntries): string {
  const rows = Object.entries(entries).map(([key, schema]) => {
    const p = schemaParts(unwrap(schema).inner);
    return `| \`${key}\` | ${cell(typeText(unwrap(schema).inner))} | ${cell(defaultText(schema))} | ${cell(p.meta.scope ?? '—')} | ${cell(p.description ?? '')} |`;
  });
  return ['| Field | Type | Default | Unit / scope | Meaning |', '|---|---|---|---|---|', ...rows].join('\n');
}

const begin = (e: CatalogEntry): string => `<!-- generated:${e.name} (npm run gen:config-docs) -->`;
const end = (e: CatalogEntry): string => `<!-- /generated:${e.name} -->`;

/** `text` (docs/config.md) with every generated table replaced by the schema's. Throws
 *  when a catalog object has no markers (each named object is documented). */
export function renderConfigDocs(text: string): string {
  let out = text;
  for (const e of CATALOG) {
    const entries = objectEntries(e.schema);
    if (!entries) continue;
    const from = out.indexOf(begin(e));
    const to = out.indexOf(end(e));
    if (from === -1 || to < from) {
      if (e.name === 'WeightedCluster') continue; // documented inline in RouteAction
      throw new Error(`docs/config.md: no "${begin(e)}" ... "${end(e)}" markers`);
    }
    out = `${out.slice(0, from)}${begin(e)}\n${fieldTable(entries)}\n${out.slice(to)}`;
  }
  return out;
}
