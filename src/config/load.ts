// Config loading: reads a YAML or JSON file, turns syntax errors into ConfigErrors
// (path `(file)`, with line and column), validates the result with validate.ts, and
// formats error lists for humans. The YAML parser is loaded with the first YAML text:
// a sidecar on a JSON config, in quick mode or on an xDS bootstrap in JSON does not
// keep its 0.7 MB of code and tables in the main thread's heap.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import type { ConfigError, RemoraConfig, XdsBootstrap } from './types.js';
import { validateBootstrap, validateConfig } from './validate.js';

export type ParseResult = { ok: true; raw: unknown } | { ok: false; errors: ConfigError[] };
export type LoadResult = { ok: true; config: RemoraConfig } | { ok: false; errors: ConfigError[] };

const fileError = (message: string): ConfigError => ({ path: '(file)', message });

/** Line and column (1-based) of a character offset. */
function lineCol(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const col = offset - before.lastIndexOf('\n');
  return `line ${line}, column ${col}`;
}

function parseJson(text: string): ParseResult {
  try {
    return { ok: true, raw: JSON.parse(text) as unknown };
  } catch (e) {
    // Node 20 says "at position N"; Node 22+ adds "(line L column C)" itself. One form on
    // every runtime: Node's own line/column suffix dropped, ours appended from the offset.
    const message = (e as Error).message.replace(/ \(line \d+ column \d+\)$/, '');
    const pos = /at position (\d+)/.exec(message);
    const where = pos ? ` (${lineCol(text, Number(pos[1]))})` : '';
    return { ok: false, errors: [fileError(`invalid JSON: ${message}${where}`)] };
  }
}

let yaml: typeof Yaml | null = null;

/** The `yaml` package, loaded on first use (synchronously: loading a config is). */
export function yamlModule(): typeof Yaml {
  yaml ??= createRequire(import.meta.url)('yaml') as typeof Yaml;
  return yaml;
}

function parseYaml(text: string): ParseResult {
  // parseDocument (rather than parse) so that every syntax error is reported, not only the first.
  const doc = yamlModule().parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) {
    // With prettyErrors the message is "<what> at line L, column C:\n<source excerpt>".
    const errors = problems.map((e) => fileError(`invalid YAML: ${e.message.split('\n')[0].replace(/:$/, '')}`));
    return { ok: false, errors };
  }
  try {
    return { ok: true, raw: doc.toJS() as unknown };
  } catch (e) {
    return { ok: false, errors: [fileError(`invalid YAML: ${(e as Error).message}`)] }; // e.g. alias bombs
  }
}

/** Parses config text: JSON when the file name ends in `.json`, YAML otherwise. */
export function parseConfigText(text: string, fileName: string): ParseResult {
  return fileName.toLowerCase().endsWith('.json') ? parseJson(text) : parseYaml(text);
}

/** Reads, parses and validates a config file. Never throws for bad input. */
export function loadConfigFile(file: string, opts: { defaultWorkers?: number } = {}): LoadResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'file not found' : err.message;
    return { ok: false, errors: [fileError(`cannot read ${file}: ${why}`)] };
  }
  const parsed = parseConfigText(text, file);
  if (!parsed.ok) return parsed;
  return validateConfig(parsed.raw, opts);
}

/** `config.yaml: 2 errors\n  path: message\n  path: message` */
export function formatErrors(file: string, errors: readonly ConfigError[]): string {
  const head = `${file}: ${errors.length} error${errors.length === 1 ? '' : 's'}`;
  return [head, ...errors.map((e) => `  ${e.path}: ${e.message}`)].join('\n');
}

export type SourceResult =
  | { ok: true; kind: 'file'; config: RemoraConfig }
  | { ok: true; kind: 'xds'; xds: XdsBootstrap; base: Record<string, unknown> }
  | { ok: false; errors: ConfigError[] };

/** Like loadConfigFile, but a file with an `xds` block is an xDS bootstrap (listeners and
 *  clusters then come from a control plane). */
export function loadConfigSource(file: string): SourceResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { ok: false, errors: [fileError(`cannot read ${file}: ${err.code === 'ENOENT' ? 'file not found' : err.message}`)] };
  }
  const parsed = parseConfigText(text, file);
  if (!parsed.ok) return parsed;
  const raw = parsed.raw;
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw) && 'xds' in raw) {
    const boot = validateBootstrap(raw);
    return boot.ok ? { ok: true, kind: 'xds', xds: boot.xds, base: boot.base } : boot;
  }
  const result = validateConfig(raw);
  return result.ok ? { ok: true, kind: 'file', config: result.config } : result;
}
