// Which node groups a caller may be served over ADS, when the control plane runs with
// TLS (docs/control-plane.md, "Who gets which config"). A node names its group (node
// cluster, else node id); a stream is served that group only when the identity the
// caller proved (caller.ts: its client certificate or its token) is allowed it:
// - when the access file (--xds-access) has lines for the group, by those lines only:
//   `<group> <spiffe-id>` ('#' comments; `*` for any identity of the trust domain);
// - otherwise by the Kubernetes convention: spiffe://<td>/ns/<ns>/sa/<sa> may be served
//   the group `<sa>` or `<sa>.<ns>`, and any identity the group `default`.
// A caller of the CA's insecure mode (no identity bound) may be served any group. The
// file is re-read when it changes (reloaded-file.ts).

import type { Logger } from '../core/log.js';
import { parseSpiffeId } from '../core/spiffe.js';
import { fieldLines, ReloadedFile } from './reloaded-file.js';
import { DEFAULT_GROUP } from './snapshots.js';

/** Any identity of the trust domain, in an access file line. */
const ANY = '*';

/** The file's text → identities by group. Throws naming every bad line. */
export function parseXdsAccess(text: string, trustDomain: string): Map<string, Set<string>> {
  const byGroup = new Map<string, Set<string>>();
  const problems: string[] = [];
  fieldLines(text, (fields, where) => {
    if (fields.length !== 2) return void problems.push(`${where}: expected "<group> <spiffe-id>" (or "<group> *"), saw ${fields.length} field(s)`);
    const [group, identity] = fields;
    if (identity !== ANY) {
      const id = parseSpiffeId(identity);
      if (!id.ok) return void problems.push(`${where}: ${id.problem}`);
      if (id.trustDomain !== trustDomain) return void problems.push(`${where}: "${identity}" is not in the trust domain "${trustDomain}"`);
    }
    let set = byGroup.get(group);
    if (set === undefined) byGroup.set(group, (set = new Set()));
    set.add(identity);
  });
  if (problems.length > 0) throw new Error(problems.join('; '));
  return byGroup;
}

export class XdsAccess {
  private readonly file: ReloadedFile<Map<string, Set<string>>> | null;

  /** Throws when the file cannot be read or has a bad line. */
  constructor(path: string | undefined, private readonly trustDomain: string, log: Logger) {
    if (path === undefined) {
      this.file = null;
      return;
    }
    try {
      this.file = new ReloadedFile(path, (text) => parseXdsAccess(text, trustDomain), log, '--xds-access');
    } catch (err) {
      throw new Error(`--xds-access ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Null when one of `identities` (null: any) may be served `group`, else why not. */
  check(identities: readonly string[] | null, group: string): string | null {
    if (identities === null) return null;
    const listed = this.file?.current().get(group);
    if (listed !== undefined) {
      if (listed.has(ANY) || identities.some((id) => listed.has(id))) return null;
      return `the group "${group}" is served to ${[...listed].map((i) => `"${i}"`).join(', ')} only (--xds-access), not to ${shown(identities)}`;
    }
    if (group === DEFAULT_GROUP || identities.some((id) => conventionalGroups(id, this.trustDomain).includes(group))) return null;
    return `${shown(identities)} may be served the group named after its service account ("<sa>" or "<sa>.<ns>") or "${DEFAULT_GROUP}", not "${group}" (list other identities for it in --xds-access)`;
  }
}

/** The groups spiffe://<td>/ns/<ns>/sa/<sa> is served by convention: `<sa>`, `<sa>.<ns>`. */
export function conventionalGroups(identity: string, trustDomain: string): string[] {
  const id = parseSpiffeId(identity);
  if (!id.ok || id.trustDomain !== trustDomain) return [];
  const m = /^\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(id.path);
  return m === null ? [] : [m[2], `${m[2]}.${m[1]}`];
}

const shown = (identities: readonly string[]): string => (identities.length === 1 ? `"${identities[0]}"` : `[${identities.map((i) => `"${i}"`).join(', ')}]`);
