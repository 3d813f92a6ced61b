// Acceptance of real xDS resources: resources that other control planes and projects
// wrote (Envoy config dumps from Istio sidecars, Envoy Gateway's translator outputs,
// Envoy's example configs) are sent over ADS to a fresh Remora sidecar, one case at a
// time, and what it ACKs and NACKs is counted per source, per resource type and per
// rejection reason. The corpus is not part of this repository: it is read from --dir.
//
//   npm run bench:xds-corpus -- --dir DIR [--case-timeout-s 8] [--out DIR]
//
// DIR holds one directory per source (its name is the source's name in the report).
// A case is one file, except that files named `<case>.<kind>.yaml` with kind listeners,
// routes, clusters, endpoints or secrets (Envoy Gateway's outputs) make one case per
// <case> (a name repeated in one kind's list is kept once, the last, as the snapshot
// cache Envoy Gateway serves them from keeps it). A file is JSON or YAML and is read as:
// - an Envoy config dump (`configs`): its dynamic resources, what a control plane sent
//   (static ones came from the bootstrap, not over xDS);
// - an Envoy bootstrap (`static_resources`): its listeners, clusters and secrets;
// - a list of resources of the kind its name says.
// Resources are converted from the proto3 JSON mapping (bench/lib/proto-json.ts); a
// field or Any type the loaded protos lack is left out and listed. The one change made
// to a resource: a listener that binds a socket address is moved to 127.0.0.1 and a free
// port (Remora applies before it ACKs, and must be able to bind), and its filter chains
// that match its own port (destination_port) follow it. A
// RouteConfiguration or ClusterLoadAssignment that nothing in its case references (a
// partial dump) gets a minimal listener or EDS cluster of this tool's that asks for it,
// so that it is measured too; those helpers are not counted.
//
// Per case: a scripted ADS server (test/helpers/xds.ts) and `remora run` with an xDS
// bootstrap naming it (1 worker; the SDS server `sds-grpc` listed as Istio's bootstrap
// lists it, at a socket nothing serves: Secrets from it stay awaited, as warming). All
// types are pushed at once; a RouteConfiguration, ClusterLoadAssignment or Secret is
// sent when Remora subscribes to it. The case ends when every type sent has been
// answered and nothing new came for a second, or at --case-timeout-s. A resource is
// ACKed unless a NACK names it (Remora's log line for each NACK lists the names);
// resources Remora never subscribed to (nothing accepted references them) are counted
// apart, as Envoy would not ask for them either.
// Writes <out>/xds-corpus-<stamp>.{json,md} (out: bench/results).
// Long file: reading the corpus's shapes, running a case against a sidecar and the
// report are one measurement, and read best in one place.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { loadXdsProtos, TypeUrl, type ProtoObject } from '../src/xds/protos.js';
import { bindsPort, edsClusters, referencedRoutes } from '../src/xds/resources.js';
import { startScriptedAds } from '../test/helpers/xds.js';
import { MACHINE, REMORA_NODE_FLAGS, ROOT, commandLine, log, revision, runMain, sleep, writeResults } from './lib/harness.js';
import { ProtoJson, type ConversionProblem } from './lib/proto-json.js';

const { values: args } = parseArgs({
  options: {
    dir: { type: 'string' },
    'case-timeout-s': { type: 'string', default: '8' },
    out: { type: 'string' },
  },
});

type Kind = 'listeners' | 'routes' | 'clusters' | 'endpoints' | 'secrets';
const KINDS: readonly Kind[] = ['clusters', 'endpoints', 'listeners', 'routes', 'secrets'];
const TYPE_OF: Record<Kind, string> = {
  listeners: TypeUrl.Listener,
  routes: TypeUrl.RouteConfiguration,
  clusters: TypeUrl.Cluster,
  endpoints: TypeUrl.ClusterLoadAssignment,
  secrets: TypeUrl.Secret,
};

interface CorpusCase {
  readonly source: string;
  readonly name: string;
  readonly resources: Record<Kind, unknown[]>;
  /** Resources left out because a later one of the same kind has the same name. */
  readonly collapsed?: number;
}

/** What happened to one resource. */
/** `placeholder`: the resource's certificate or key is not PEM (a config dump writes
 *  "[redacted]" for keys, test outputs write "cert-data"), so what Remora makes of it
 *  says nothing about the resource a control plane would push. */
type Verdict = 'acked' | 'nacked' | 'not-subscribed' | 'placeholder';

interface ResourceResult {
  readonly kind: Kind;
  readonly name: string;
  readonly verdict: Verdict;
  readonly reason?: string;
  /** Every error of the NACK that names this resource (`reason` is the first). */
  readonly reasons?: readonly string[];
  /** Fields and Any types the conversion left out. */
  readonly leftOut: readonly string[];
}

interface CaseResult {
  readonly source: string;
  readonly name: string;
  readonly resources: readonly ResourceResult[];
  /** Resources collapsed into a later one of the same name (lastOfEachName). */
  readonly collapsed: number;
  readonly error?: string;
}

/** A value under either spelling of a proto field name. */
function field(o: unknown, snake: string): unknown {
  if (o === null || typeof o !== 'object') return undefined;
  const r = o as Record<string, unknown>;
  return r[snake] ?? r[snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())];
}

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function emptyResources(): Record<Kind, unknown[]> {
  return { listeners: [], routes: [], clusters: [], endpoints: [], secrets: [] };
}

/** The dynamic resources of Envoy config dump sections (each with its "@type"). */
function fromDumpSections(sections: readonly unknown[]): Record<Kind, unknown[]> {
  const r = emptyResources();
  for (const c of sections) {
    const type = String((c as Record<string, unknown>)['@type'] ?? '');
    const take = (kind: Kind, entries: string, inner: string[]): void => {
      for (const e of list(field(c, entries))) {
        for (const path of inner) {
          let v: unknown = e;
          for (const p of path.split('.')) v = field(v, p);
          if (v !== undefined) {
            r[kind].push(v);
            break;
          }
        }
      }
    };
    if (type.endsWith('ListenersConfigDump')) {
      take('listeners', 'dynamic_listeners', ['active_state.listener', 'warming_state.listener']);
      take('listeners', 'dynamic_active_listeners', ['listener']); // API v2's dump
    }
    if (type.endsWith('ClustersConfigDump')) {
      take('clusters', 'dynamic_active_clusters', ['cluster']);
      take('clusters', 'dynamic_warming_clusters', ['cluster']);
    }
    if (type.endsWith('RoutesConfigDump')) take('routes', 'dynamic_route_configs', ['route_config']);
    if (type.endsWith('EndpointsConfigDump')) take('endpoints', 'dynamic_endpoint_configs', ['endpoint_config']);
    if (type.endsWith('SecretsConfigDump')) {
      take('secrets', 'dynamic_active_secrets', ['secret']);
      take('secrets', 'dynamic_warming_secrets', ['secret']);
    }
  }
  return r;
}

/** The kind of a bare resource, from the fields only that kind has. */
function kindOf(o: unknown): Kind | null {
  const has = (f: string): boolean => field(o, f) !== undefined;
  if (has('filter_chains') || has('default_filter_chain') || has('listener_filters')) return 'listeners';
  if (has('virtual_hosts') || has('vhds')) return 'routes';
  if (has('cluster_name') && (has('endpoints') || has('policy'))) return 'endpoints';
  if (has('tls_certificate') || has('validation_context') || has('session_ticket_keys') || has('generic_secret')) return 'secrets';
  if (has('connect_timeout') || has('lb_policy') || has('load_assignment') || has('eds_cluster_config') || has('type') || has('cluster_type')) return 'clusters';
  return null;
}

/** A file's document as resources: a config dump (whole or one section), a bootstrap,
 *  or a list of bare resources; null when it is none of these. */
function resourcesOf(d: unknown): Record<Kind, unknown[]> | null {
  const configs = field(d, 'configs');
  if (configs !== undefined) return fromDumpSections(Array.isArray(configs) ? configs : Object.values(configs as object));
  if (d !== null && typeof d === 'object' && String((d as Record<string, unknown>)['@type'] ?? '').endsWith('ConfigDump')) return fromDumpSections([d]);
  if (field(d, 'static_resources') !== undefined) return fromBootstrap(d);
  const items = Array.isArray(d) ? d : [d];
  const r = emptyResources();
  for (const item of items) {
    const kind = kindOf(item);
    if (kind === null) return null;
    r[kind].push(item);
  }
  return r;
}

/** Whether a case comes from Envoy's API v2 (removed from Envoy in 1.18): v2 type URLs,
 *  or the v1 filter flag `deprecated_v1: true` of v2 filter configs. (A v3 Listener's own
 *  `deprecated_v1` is a message, `{bind_to_port}`: Istio 1.9 still writes it.) */
function isApiV2(text: string): boolean {
  return /envoy\.admin\.v2alpha|envoy\.api\.v2\.|"deprecated_?[vV]1": *true/.test(text);
}

function fromBootstrap(b: unknown): Record<Kind, unknown[]> {
  const r = emptyResources();
  const s = field(b, 'static_resources');
  r.listeners.push(...list(field(s, 'listeners')));
  r.clusters.push(...list(field(s, 'clusters')));
  r.secrets.push(...list(field(s, 'secrets')));
  return r;
}

/** Envoy Gateway's outputs are lists its xDS server puts into a go-control-plane
 *  snapshot, which keeps one resource per name (the last): what a sidecar is sent. A
 *  list with a name twice is collapsed the same way, and the number left out counted. */
function lastOfEachName(resources: Record<Kind, unknown[]>): { resources: Record<Kind, unknown[]>; collapsed: number } {
  const out = emptyResources();
  let collapsed = 0;
  for (const kind of KINDS) {
    const byName = new Map<string, unknown>();
    for (const r of resources[kind]) {
      const name = String(field(r, kind === 'endpoints' ? 'cluster_name' : 'name') ?? '');
      if (byName.has(name)) collapsed += 1;
      byName.delete(name);
      byName.set(name, r);
    }
    out[kind] = [...byName.values()];
  }
  return { resources: out, collapsed };
}

/** The documents of a corpus file's text (JSON, or YAML with one or more documents). */
function parseDocuments(file: string, text: string): unknown[] {
  if (file.endsWith('.json')) return [JSON.parse(text)];
  return parseAllDocuments(text).map((d) => d.toJS());
}

/** Every case of every source under `dir`. */
function loadCorpus(dir: string): CorpusCase[] {
  const cases: CorpusCase[] = [];
  for (const source of readdirSync(dir).sort()) {
    const sdir = join(dir, source);
    if (!statSync(sdir).isDirectory()) continue;
    const grouped = new Map<string, Record<Kind, unknown[]>>();
    for (const file of readdirSync(sdir).sort()) {
      if (!/\.(json|ya?ml)$/.test(file)) continue;
      const text = readFileSync(join(sdir, file), 'utf8');
      let docs: unknown[];
      try {
        docs = parseDocuments(file, text);
      } catch (err) {
        log(`skipping ${source}/${file}: ${err instanceof Error ? err.message : String(err)}`);
        continue;
      }
      const m = /^(.*)\.(listeners|routes|clusters|endpoints|secrets)\.ya?ml$/.exec(file);
      const v2 = isApiV2(text);
      const into = v2 ? `${source} (API v2)` : source;
      if (m !== null) {
        const key = `${into}\0${m[1]}`;
        const r = grouped.get(key) ?? emptyResources();
        for (const d of docs) r[m[2] as Kind].push(...(Array.isArray(d) ? d : [d]));
        grouped.set(key, r);
        continue;
      }
      for (const [i, d] of docs.entries()) {
        const resources = resourcesOf(d);
        if (resources !== null) cases.push({ source: into, name: docs.length > 1 ? `${file}#${i}` : file, resources });
        else log(`skipping ${source}/${file}${docs.length > 1 ? `#${i}` : ''}: not a config dump, bootstrap or list of resources`);
      }
    }
    for (const [key, resources] of grouped) {
      const [into, name] = key.split('\0');
      cases.push({ source: into, name, ...lastOfEachName(resources) });
    }
  }
  return cases.filter((c) => KINDS.some((k) => c.resources[k].length > 0)).sort((a, b) => a.source.localeCompare(b.source));
}

const protos = loadXdsProtos();
const converter = new ProtoJson(protos);

function nameOf(kind: Kind, r: ProtoObject): string {
  return String((kind === 'endpoints' ? r.cluster_name : r.name) ?? '');
}

/** A port the kernel has just given out and taken back (free for the sidecar to bind). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** A listener bound to a socket address, moved to 127.0.0.1 and a free port. Filter
 *  chains that match the listener's own port (destination_port: Istio's virtualInbound)
 *  are moved with it, so that the same chains take its connections as at the port sent. */
async function loopback(listener: ProtoObject): Promise<void> {
  const sa = (listener.address as ProtoObject | undefined)?.socket_address as ProtoObject | undefined;
  if (sa === undefined || !bindsPort(listener)) return;
  const was = Number(sa.port_value ?? 0);
  const port = await freePort();
  sa.address = '127.0.0.1';
  sa.port_value = port;
  for (const chain of (listener.filter_chains as ProtoObject[] | undefined) ?? []) {
    const m = chain.filter_chain_match as ProtoObject | undefined;
    const dp = m?.destination_port as { value?: number } | undefined;
    if (dp !== undefined && Number(dp.value) === was) dp.value = port;
  }
}

interface Converted {
  /** Added by this tool so that a resource nothing in its case references is asked for
   *  (not counted). */
  readonly helper?: boolean;
  readonly placeholder: boolean;
  readonly kind: Kind;
  readonly name: string;
  readonly message: ProtoObject;
  readonly leftOut: string[];
}

/** Whether a certificate, key or CA given inline (inline_bytes / inline_string of a
 *  certificate_chain, private_key or trusted_ca, anywhere in the resource) is not PEM. */
function hasPlaceholderMaterial(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return false;
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (k === 'certificate_chain' || k === 'private_key' || k === 'trusted_ca') {
      const d = x as { inline_bytes?: Uint8Array; inline_string?: string } | undefined;
      const text = d?.inline_string ?? (d?.inline_bytes !== undefined ? Buffer.from(d.inline_bytes).toString('latin1') : undefined);
      if (text !== undefined && !text.includes('-----BEGIN')) return true;
    } else if (typeof x === 'object' && hasPlaceholderMaterial(x)) return true;
  }
  return false;
}

/** A listener and an EDS cluster that ask for `routes` and `assignments`: a partial dump
 *  (route tables without their listeners, endpoint lists without their clusters) is
 *  then measured too. */
function helpers(routes: readonly string[], assignments: readonly string[]): Converted[] {
  const out: Converted[] = [];
  routes.forEach((name, i) => {
    const hcm = protos.encodeAny(TypeUrl.HttpConnectionManager, {
      stat_prefix: 'corpus',
      rds: { route_config_name: name, config_source: { ads: {}, resource_api_version: 'V3' } },
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: protos.encodeAny(TypeUrl.Router, {}) }],
    });
    const message = { name: `corpus.rds.${i}`, address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
      filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }] }] };
    out.push({ helper: true, placeholder: false, kind: 'listeners', name: message.name, message, leftOut: [] });
  });
  assignments.forEach((name, i) => {
    const message = { name: `corpus.eds.${i}`, type: 'EDS', connect_timeout: { seconds: 1 }, eds_cluster_config: { eds_config: { ads: {} }, service_name: name } };
    out.push({ helper: true, placeholder: false, kind: 'clusters', name: message.name, message, leftOut: [] });
  });
  return out;
}

function convert(c: CorpusCase): Converted[] {
  const out: Converted[] = [];
  for (const kind of KINDS) {
    for (const [i, json] of c.resources[kind].entries()) {
      const problems: ConversionProblem[] = [];
      const message = converter.message(TYPE_OF[kind], json, problems, `${kind}[${i}]`);
      out.push({ placeholder: hasPlaceholderMaterial(message), kind, name: nameOf(kind, message), message, leftOut: problems.map((p) => `${p.path.replace(/^[a-z]+\[\d+\]\.?/, '')}: ${p.problem}`) });
    }
  }
  return out;
}

interface Nack {
  readonly type: string;
  readonly rejected: string[];
  readonly error: string;
}

/** Runs one case against a fresh sidecar. */
async function runCase(c: CorpusCase, timeoutMs: number): Promise<CaseResult> {
  const corpus = convert(c);
  for (const r of corpus) if (r.kind === 'listeners') await loopback(r.message);
  const ofKind = (k: Kind): ProtoObject[] => corpus.filter((r) => r.kind === k).map((r) => r.message);
  const askedRoutes = new Set(ofKind('listeners').flatMap((l) => referencedRoutes(l)));
  const askedAssignments = new Set(edsClusters(ofKind('clusters')));
  const converted = [...corpus, ...helpers(
    corpus.filter((r) => r.kind === 'routes' && !askedRoutes.has(r.name)).map((r) => r.name),
    corpus.filter((r) => r.kind === 'endpoints' && !askedAssignments.has(r.name)).map((r) => r.name),
  )];
  const ads = await startScriptedAds();
  const dir = mkdtempSync(join(tmpdir(), 'remora-corpus-'));
  let child: ChildProcess | null = null;
  try {
    const bootstrap = {
      workers: 1,
      admin: { address: '127.0.0.1', port: 0 },
      drain: { delay_ms: 0, timeout_ms: 1000 },
      xds: {
        servers: [`127.0.0.1:${ads.port}`],
        node: { id: 'sidecar~127.0.0.1~corpus.default~default.svc.cluster.local', cluster: 'corpus' },
        sds_servers: { 'sds-grpc': `unix:${join(dir, 'nothing-serves-here.sock')}` },
        sds_dir: join(dir, 'sds'),
        initial_fetch_timeout_ms: 60_000,
      },
    };
    const file = join(dir, 'bootstrap.json');
    writeFileSync(file, JSON.stringify(bootstrap));
    child = spawn(process.execPath, [...REMORA_NODE_FLAGS, join(ROOT, 'bin/remora.js'), 'run', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const nacks: Nack[] = [];
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (!line.includes('xDS update rejected')) continue;
        try {
          const j = JSON.parse(line) as Nack;
          nacks.push({ type: j.type, rejected: j.rejected, error: j.error });
        } catch {
          // not a log record
        }
      }
    });
    child.stderr!.resume();
    await ads.waitFor((q) => q.type_url === TypeUrl.Cluster, 15_000);
    const nonces = new Map<string, string>();
    for (const kind of KINDS) {
      const items = converted.filter((r) => r.kind === kind).map((r) => r.message);
      if (items.length === 0 && kind !== 'listeners' && kind !== 'clusters') continue;
      nonces.set(TYPE_OF[kind], ads.push(TYPE_OF[kind], 'corpus-1', items));
    }
    // Done when every type asked for has been answered and a second passes quietly.
    const deadline = Date.now() + timeoutMs;
    let seen = -1;
    let quietSince = Date.now();
    while (Date.now() < deadline) {
      await sleep(100);
      if (ads.requests.length !== seen) {
        seen = ads.requests.length;
        quietSince = Date.now();
        continue;
      }
      const asked = [...nonces.keys()].filter((t) => ads.requests.some((q) => q.type_url === t));
      const answered = asked.every((t) => ads.requests.some((q) => q.type_url === t && String(q.response_nonce ?? '') !== ''));
      if (answered && Date.now() - quietSince >= 1000) break;
    }
    /** Whether the sidecar asked for it (LDS and CDS are wildcard: always). */
    const everAsked = (kind: Kind, name: string): boolean =>
      kind === 'listeners' || kind === 'clusters' || ads.requests.some((q) => q.type_url === TYPE_OF[kind] && ((q.resource_names as string[] | undefined) ?? []).includes(name));
    const results: ResourceResult[] = corpus.map((r) => {
      if (r.placeholder) return { kind: r.kind, name: r.name, verdict: 'placeholder', leftOut: r.leftOut };
      const type = TYPE_OF[r.kind];
      const nack = [...nacks].reverse().find((n) => n.type === type && (n.rejected.includes(r.name) || n.rejected.includes('')));
      if (nack !== undefined) {
        const parts = nack.error.split('; ');
        const own = parts.filter((p) => p.includes(`"${r.name}"`));
        return { kind: r.kind, name: r.name, verdict: 'nacked', reason: own[0] ?? parts[0], reasons: own.length > 0 ? own : parts, leftOut: r.leftOut };
      }
      const verdict: Verdict = everAsked(r.kind, r.name) ? 'acked' : 'not-subscribed';
      return { kind: r.kind, name: r.name, verdict, leftOut: r.leftOut };
    });
    return { source: c.source, name: c.name, resources: results, collapsed: c.collapsed ?? 0 };
  } catch (err) {
    return { source: c.source, name: c.name, resources: [], collapsed: c.collapsed ?? 0, error: err instanceof Error ? err.message : String(err) };
  } finally {
    if (child !== null && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    await ads.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A rejection reason with names and values taken out, to group like with like. */
function reasonPattern(reason: string): string {
  return reason
    .replace(/^(Listener|Cluster|RouteConfiguration|ClusterLoadAssignment|Secret) "[^"]*"/, '$1')
    .replace(/"[^"]*"/g, '"…"')
    .replace(/\[\d+\]/g, '[i]')
    .replace(/\d+/g, 'N')
    .slice(0, 200);
}

const pct = (a: number, b: number): string => (b === 0 ? '–' : `${((100 * a) / b).toFixed(1)} %`);

function report(results: readonly CaseResult[]): string[] {
  const when = new Date().toISOString();
  const lines = [
    `# xDS acceptance of a corpus of real resources — ${when}`,
    '',
    `Command: \`${commandLine('bench:xds-corpus')}\`  `,
    `Machine: ${MACHINE}; Remora ${revision()}  `,
    'Method: bench/xds-corpus.ts (each case to a fresh sidecar over ADS; ACKed unless a NACK names the resource). The corpus is not in this repository.',
    '',
    '## Per source',
    '',
    '| source | cases | resources sent | ACKed | NACKed | not subscribed | placeholder keys | ACKed of those answered | converted with fields left out | names repeated in a list (the last kept) |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  const sources = [...new Set(results.map((r) => r.source))];
  for (const s of sources) {
    const rs = results.filter((r) => r.source === s);
    const all = rs.flatMap((r) => r.resources);
    const acked = all.filter((r) => r.verdict === 'acked').length;
    const nacked = all.filter((r) => r.verdict === 'nacked').length;
    const idle = all.filter((r) => r.verdict === 'not-subscribed').length;
    const placeholders = all.filter((r) => r.verdict === 'placeholder').length;
    const lossy = all.filter((r) => r.leftOut.length > 0).length;
    const failed = rs.filter((r) => r.error !== undefined).length;
    const collapsed = rs.reduce((n, r) => n + r.collapsed, 0);
    lines.push(`| ${s} | ${rs.length}${failed > 0 ? ` (${failed} failed to run)` : ''} | ${all.length} | ${acked} | ${nacked} | ${idle} | ${placeholders} | **${pct(acked, acked + nacked)}** | ${lossy} | ${collapsed} |`);
  }
  lines.push('', '## Per source and type (ACKed / answered)', '', `| source | ${KINDS.join(' | ')} |`, `|---|${KINDS.map(() => '---').join('|')}|`);
  for (const s of sources) {
    const all = results.filter((r) => r.source === s).flatMap((r) => r.resources);
    const cells = KINDS.map((k) => {
      const of = all.filter((r) => r.kind === k && (r.verdict === 'acked' || r.verdict === 'nacked'));
      return of.length === 0 ? '–' : `${of.filter((r) => r.verdict === 'acked').length} / ${of.length}`;
    });
    lines.push(`| ${s} | ${cells.join(' | ')} |`);
  }
  lines.push('', '## Rejection reasons (resources per reason, names and numbers taken out)', '');
  for (const s of sources) {
    const counts = new Map<string, number>();
    for (const r of results.filter((x) => x.source === s).flatMap((x) => x.resources)) {
      if (r.verdict !== 'nacked') continue;
      const p = reasonPattern(r.reason ?? '');
      counts.set(p, (counts.get(p) ?? 0) + 1);
    }
    if (counts.size === 0) continue;
    lines.push(`### ${s}`, '', '| resources | reason |', '|---|---|');
    for (const [p, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, 25)) lines.push(`| ${n} | ${p.replace(/\|/g, '\\|')} |`);
    lines.push('');
  }
  const leftOut = new Map<string, number>();
  for (const r of results.flatMap((x) => x.resources)) for (const l of new Set(r.leftOut.map(reasonPattern))) leftOut.set(l, (leftOut.get(l) ?? 0) + 1);
  if (leftOut.size > 0) {
    lines.push('## Left out by the conversion (not in the loaded protos), resources per item', '', '| resources | item |', '|---|---|');
    for (const [p, n] of [...leftOut].sort((a, b) => b[1] - a[1]).slice(0, 20)) lines.push(`| ${n} | ${p.replace(/\|/g, '\\|')} |`);
  }
  const failed = results.filter((r) => r.error !== undefined);
  if (failed.length > 0) {
    lines.push('', '## Cases that did not run', '');
    for (const f of failed) lines.push(`- ${f.source}/${f.name}: ${f.error}`);
  }
  return lines;
}

async function main(): Promise<void> {
  if (args.dir === undefined) throw new Error('--dir DIR is required (a directory per source of xDS resources)');
  const cases = loadCorpus(args.dir);
  log(`${cases.length} cases from ${args.dir}`);
  const results: CaseResult[] = [];
  for (const [i, c] of cases.entries()) {
    const r = await runCase(c, Number(args['case-timeout-s']) * 1000);
    const acked = r.resources.filter((x) => x.verdict === 'acked').length;
    log(`[${i + 1}/${cases.length}] ${c.source}/${c.name}: ${acked} of ${r.resources.length} ACKed${r.error !== undefined ? ` (did not run: ${r.error})` : ''}`);
    results.push(r);
  }
  const lines = report(results);
  const when = new Date().toISOString();
  const written = writeResults('xds-corpus', when, { when, dir: basename(args.dir), revision: revision(), results }, lines, args.out);
  log(`wrote ${written.join(', ')}`);
}

runMain(main, () => {});
