// Unit tests for the config schema (src/config/schema/): the committed JSON Schema and the
// field tables of docs/config.md are what the schema generates (no drift), every field is
// documented, the derived types are read-only, and the JSON Schema accepts the examples.

import t from 'tap';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { CATALOG } from '../../src/config/schema/catalog.js';
import { CONFIG_DOCS_FILE, renderConfigDocs } from '../../src/config/schema/docs.js';
import { JSON_SCHEMA_FILE, renderJsonSchema } from '../../src/config/schema/json-schema.js';
import { objectEntries, schemaParts } from '../../src/config/schema/walk.js';
import { validateConfig } from '../../src/config/validate.js';
import type { Cluster, HealthCheck, Listener, RemoraConfig, Route } from '../../src/config/types.js';

const REGENERATE = 'run `npm run gen:config-docs` and commit the result';

t.test('docs/remora-config.schema.json is what the schema generates', async (t) => {
  t.equal(readFileSync(JSON_SCHEMA_FILE, 'utf8'), renderJsonSchema(), `${JSON_SCHEMA_FILE} is out of date: ${REGENERATE}`);
});

t.test('the field tables of docs/config.md are what the schema generates', async (t) => {
  const text = readFileSync(CONFIG_DOCS_FILE, 'utf8');
  t.equal(text, renderConfigDocs(text), `the generated tables of ${CONFIG_DOCS_FILE} are out of date: ${REGENERATE}`);
});

t.test('every field has a description; every default is stated', async (t) => {
  for (const { name, schema } of CATALOG) {
    for (const [key, field] of Object.entries(objectEntries(schema) ?? {})) {
      const inner = field.type === 'optional' ? (field as unknown as { wrapped: typeof field }).wrapped : field;
      const p = schemaParts(inner);
      t.ok(p.description !== undefined && p.description.length > 0, `${name}.${key} has a description`);
      if (p.meta.conditional) t.ok(p.meta.default, `${name}.${key}: a conditional default says what it is`);
    }
  }
});

t.test('the route table documents authorization (it had drifted)', async (t) => {
  const text = readFileSync(CONFIG_DOCS_FILE, 'utf8');
  const route = text.slice(text.indexOf('<!-- generated:Route '), text.indexOf('<!-- /generated:Route -->'));
  t.match(route, /\| `authorization` \| \[Authorization\]\(#authorization\)/);
});

t.test('the JSON Schema describes the example configs', async (t) => {
  const schema = JSON.parse(renderJsonSchema()) as { definitions: Record<string, { properties?: Record<string, unknown>; required?: string[] }> };
  const root = schema.definitions.Root;
  // A small structural check (no JSON Schema validator in the dependencies): every key
  // the examples use is a property of its object, and required keys are present.
  for (const file of ['deploy/examples/remora.yaml', 'deploy/examples/remora-mtls.yaml']) {
    const raw = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    for (const key of Object.keys(raw)) t.ok(root.properties?.[key], `${file}: root key ${key} is in the JSON Schema`);
    for (const key of root.required ?? []) t.ok(key in raw, `${file}: required ${key} present`);
    t.ok(validateConfig(raw, { defaultWorkers: 1 }).ok, `${file} validates`);
  }
  t.same(root.required, ['listeners'], 'workers has a conditional default, so only listeners is required');
  t.same(schema.definitions.RetryPolicy.required, undefined, 'max_interval_ms (conditional default) is not required');
});

t.test('derived types are read-only', async (t) => {
  const cfg = validateConfig(parse(readFileSync('deploy/examples/remora.yaml', 'utf8')), { defaultWorkers: 1 });
  if (!cfg.ok) return t.fail('example config is valid');
  const c: RemoraConfig = cfg.config;
  const mutate = (): void => {
    // @ts-expect-error readonly field
    c.workers = 3;
    // @ts-expect-error readonly list
    c.listeners.push({} as Listener);
    const l: Listener = c.listeners[0];
    // @ts-expect-error readonly field of a listener
    l.port = 1;
    const r: Route = l.virtual_hosts[0].routes[0];
    // @ts-expect-error readonly nested list
    r.match.methods.push('GET');
    const cl: Cluster = c.clusters[0];
    // @ts-expect-error readonly nested object
    cl.circuit_breakers.max_connections = 1;
    const h = {} as HealthCheck;
    // @ts-expect-error readonly tuple inside a readonly list
    h.expected_statuses[0][0] = 1;
  };
  t.throws(mutate, TypeError, 'and frozen at run time');
});
