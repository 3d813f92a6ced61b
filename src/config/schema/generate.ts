// `npm run gen:config-docs`: writes the JSON Schema (docs/remora-config.schema.json) and
// the field tables of docs/config.md from the config schema. Run from the repository root.

import { readFileSync, writeFileSync } from 'node:fs';
import { CONFIG_DOCS_FILE, renderConfigDocs } from './docs.js';
import { JSON_SCHEMA_FILE, renderJsonSchema } from './json-schema.js';

writeFileSync(JSON_SCHEMA_FILE, renderJsonSchema());
writeFileSync(CONFIG_DOCS_FILE, renderConfigDocs(readFileSync(CONFIG_DOCS_FILE, 'utf8')));
console.log(`wrote ${JSON_SCHEMA_FILE} and the tables of ${CONFIG_DOCS_FILE}`);
