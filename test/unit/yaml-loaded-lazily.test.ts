// The main thread loads the YAML parser only when it reads YAML: importing the sidecar's
// main-thread entry and loading a JSON config load none of it; the first YAML config
// does, and parses as before. In a child Node process, since tap itself loads `yaml`.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

const CHILD = `
import Module from 'node:module';
const yamlModules = () => Object.keys(Module._cache).filter((k) => k.includes('/node_modules/yaml/')).length;
await import(process.env.MAIN_URL);
const { loadConfigFile } = await import(process.env.LOAD_URL);
const json = loadConfigFile(process.env.JSON_FILE);
const afterJson = yamlModules();
const yaml = loadConfigFile(process.env.YAML_FILE);
console.log(JSON.stringify({ jsonOk: json.ok, afterJson, yamlOk: yaml.ok, yamlErrors: yaml.ok ? [] : yaml.errors, afterYaml: yamlModules() }));
process.exit(0);
`;

t.test('the YAML parser is loaded with the first YAML config, not before', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'remora-yaml-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const listener = { name: 'main', address: '127.0.0.1', port: 0, virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200 } }] }] };
  writeFileSync(join(dir, 'c.json'), JSON.stringify({ workers: 1, listeners: [listener], clusters: [] }));
  writeFileSync(join(dir, 'c.yaml'), 'workers: 1\nclusters: []\nlisteners:\n  - name: main\n    address: 127.0.0.1\n    port: 0\n    virtual_hosts:\n      - name: all\n        domains: ["*"]\n        routes:\n          - match: { prefix: / }\n            direct_response: { status: 200 }\n');
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD], {
    encoding: 'utf8',
    timeout: 30_000,
    env: {
      ...process.env,
      MAIN_URL: new URL('../../src/main/remora.js', import.meta.url).href,
      LOAD_URL: new URL('../../src/config/load.js', import.meta.url).href,
      JSON_FILE: join(dir, 'c.json'),
      YAML_FILE: join(dir, 'c.yaml'),
    },
  });
  const line = child.stdout.trim().split('\n').pop() ?? '';
  let seen: { jsonOk: boolean; afterJson: number; yamlOk: boolean; yamlErrors: unknown[]; afterYaml: number };
  try {
    seen = JSON.parse(line) as typeof seen;
  } catch {
    return t.fail(`the child printed no result (status ${child.status}; stderr: ${child.stderr.slice(0, 500)})`);
  }
  t.ok(seen.jsonOk, 'a JSON config loads');
  t.equal(seen.afterJson, 0, `expected no yaml module loaded after the main thread and a JSON config, saw ${seen.afterJson}`);
  t.ok(seen.yamlOk, `a YAML config loads (${JSON.stringify(seen.yamlErrors)})`);
  t.ok(seen.afterYaml > 0, `and the YAML parser is loaded for it (${seen.afterYaml} modules)`);
});
