// The container image and Kubernetes manifests under deploy/ checked without a cluster:
// every YAML document parses; every Kubernetes object validates against the Kubernetes
// schemas of `kubernetes-models` (the ServiceMonitor against the Prometheus Operator's,
// `@kubernetes-models/prometheus-operator`); every file a kustomization names exists and
// every file under deploy/k8s is named by one; where kubectl is installed, each
// kustomization renders (`kubectl kustomize`) and its output validates too. Then what
// the schemas cannot see: the pod spec agrees with Remora's config (drain timing against
// terminationGracePeriodSeconds, probes on the probes port, named ports matching listener
// ports, the config mounted where the args read it), the sidecar forms (native:
// restartPolicy Always; classic: first container with the wait-ready postStart hook, app
// preStop as long as the drain delay), the security context, and the Dockerfile.
//
// kubernetes-models' schemas accept unknown fields (no additionalProperties: false), so a
// misspelt key (`readinesProbe`) would pass them: the containers, probes, lifecycle
// handlers and security contexts are also checked key by key against the Kubernetes API
// field lists below.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, Service } from 'kubernetes-models/v1';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { REPO_ROOT } from '../helpers/repo-root.js';
import { REMORA_NODE_FLAGS } from '../../bench/lib/harness.js';

const ROOT = REPO_ROOT;
const DEPLOY = join(ROOT, 'deploy');
const K8S = join(DEPLOY, 'k8s');
const SIDECAR_CONFIG = join(DEPLOY, 'remora-sidecar.yaml');
const DOCKERFILE = join(DEPLOY, 'Dockerfile');
const rel = (p: string): string => relative(ROOT, p);

// ---- types for the parts of the manifests the checks read ------------------------------

type Obj = Record<string, unknown>;
interface HttpGet {
  path?: string;
  port: number | string;
}
interface Probe {
  httpGet?: HttpGet;
  periodSeconds?: number;
  failureThreshold?: number;
}
interface ExecHandler {
  exec?: { command: string[] };
  sleep?: { seconds: number };
}
interface Container {
  name: string;
  image?: string;
  args?: string[];
  command?: string[];
  env?: { name: string; value?: string }[];
  ports?: { name?: string; containerPort: number; protocol?: string }[];
  restartPolicy?: string;
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { postStart?: ExecHandler; preStop?: ExecHandler };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    runAsGroup?: number;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  terminationGracePeriodSeconds?: number;
  restartPolicy?: string;
  initContainers?: Container[];
  containers: Container[];
  volumes?: { name: string; configMap?: { name: string } }[];
}
interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Obj & { template?: PodTemplate };
  data?: Record<string, string>;
}
interface Kustomization {
  resources?: string[];
  components?: string[];
  patches?: { path?: string }[];
  configMapGenerator?: { name: string; files?: string[] }[];
  secretGenerator?: { name: string; files?: string[] }[];
  images?: { name: string; newName?: string; newTag?: string }[];
  replicas?: { name: string; count: number }[];
  namespace?: string;
}
/** The parts of a Remora config these checks read (docs/config.md). */
interface RemoraConfig {
  workers?: number;
  admin?: { address?: string; port?: number };
  probes?: { address?: string; port?: number };
  drain?: { delay_ms?: number; timeout_ms?: number };
  listeners: { name: string; address?: string; port: number }[];
  clusters?: { name: string; endpoints: { address: string; port: number }[] }[];
}

// ---- Kubernetes API field lists (core/v1, Kubernetes 1.32) for the key-by-key check ---

const CONTAINER_KEYS = new Set([
  'name', 'image', 'command', 'args', 'workingDir', 'ports', 'envFrom', 'env', 'resources',
  'resizePolicy', 'restartPolicy', 'volumeMounts', 'volumeDevices', 'livenessProbe',
  'readinessProbe', 'startupProbe', 'lifecycle', 'terminationMessagePath',
  'terminationMessagePolicy', 'imagePullPolicy', 'securityContext', 'stdin', 'stdinOnce', 'tty',
]);
const PROBE_KEYS = new Set([
  'exec', 'httpGet', 'tcpSocket', 'grpc', 'initialDelaySeconds', 'timeoutSeconds', 'periodSeconds',
  'successThreshold', 'failureThreshold', 'terminationGracePeriodSeconds',
]);
const HTTP_GET_KEYS = new Set(['path', 'port', 'host', 'scheme', 'httpHeaders']);
const LIFECYCLE_KEYS = new Set(['postStart', 'preStop', 'stopSignal']);
const HANDLER_KEYS = new Set(['exec', 'httpGet', 'tcpSocket', 'sleep']);
const SECURITY_CONTEXT_KEYS = new Set([
  'capabilities', 'privileged', 'seLinuxOptions', 'windowsOptions', 'runAsUser', 'runAsGroup',
  'runAsNonRoot', 'readOnlyRootFilesystem', 'allowPrivilegeEscalation', 'procMount',
  'seccompProfile', 'appArmorProfile',
]);
const POD_SPEC_KEYS = new Set([
  'volumes', 'initContainers', 'containers', 'ephemeralContainers', 'restartPolicy',
  'terminationGracePeriodSeconds', 'activeDeadlineSeconds', 'dnsPolicy', 'nodeSelector',
  'serviceAccountName', 'serviceAccount', 'automountServiceAccountToken', 'nodeName',
  'hostNetwork', 'hostPID', 'hostIPC', 'shareProcessNamespace', 'securityContext',
  'imagePullSecrets', 'hostname', 'subdomain', 'affinity', 'schedulerName', 'tolerations',
  'hostAliases', 'priorityClassName', 'priority', 'dnsConfig', 'readinessGates',
  'runtimeClassName', 'enableServiceLinks', 'preemptionPolicy', 'overhead',
  'topologySpreadConstraints', 'setHostnameAsFQDN', 'os', 'hostUsers', 'schedulingGates',
  'resourceClaims',
]);

function unknownKeys(value: unknown, allowed: Set<string>, where: string): string[] {
  if (!value || typeof value !== 'object') return [];
  return Object.keys(value)
    .filter((k) => !allowed.has(k))
    .map((k) => `${where}.${k}`);
}

function containerKeyErrors(c: Container, where: string): string[] {
  const errs = unknownKeys(c, CONTAINER_KEYS, where);
  for (const p of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
    const probe = c[p];
    errs.push(...unknownKeys(probe, PROBE_KEYS, `${where}.${p}`));
    errs.push(...unknownKeys(probe?.httpGet, HTTP_GET_KEYS, `${where}.${p}.httpGet`));
  }
  errs.push(...unknownKeys(c.lifecycle, LIFECYCLE_KEYS, `${where}.lifecycle`));
  for (const h of ['postStart', 'preStop'] as const) {
    errs.push(...unknownKeys(c.lifecycle?.[h], HANDLER_KEYS, `${where}.lifecycle.${h}`));
  }
  errs.push(...unknownKeys(c.securityContext, SECURITY_CONTEXT_KEYS, `${where}.securityContext`));
  return errs;
}

// ---- loading -------------------------------------------------------------------------

function walk(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const p = join(dir, name);
      return statSync(p).isDirectory() ? walk(p) : [p];
    })
    .sort();
}

/** Every document of a YAML file; parse errors fail the test at once. */
function yamlDocs(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const list = Array.isArray(docs) ? docs : [docs];
  const out: unknown[] = [];
  for (const doc of list) {
    if (doc.errors.length > 0) throw new Error(`${rel(file)}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};

/** Schema errors of one object ([] when valid). */
function schemaErrors(obj: K8sObject, where: string): string[] {
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
  if (!Model) return [`${where}: no schema for ${obj.apiVersion} ${obj.kind} (add it to MODELS)`];
  try {
    new Model(obj as never).validate();
    return [];
  } catch (err) {
    const e = err as Error & { errors?: { instancePath?: string; message?: string }[] };
    const detail = e.errors?.map((x) => `${x.instancePath ?? ''} ${x.message ?? ''}`).join('; ');
    return [`${where}: ${detail || e.message}`];
  }
}

const kustomizationFiles = walk(K8S).filter((f) => /\/kustomization\.ya?ml$/.test(f));
const kustomizations = new Map<string, Kustomization>(
  kustomizationFiles.map((f) => [dirname(f), yamlDocs(f)[0] as Kustomization]),
);

/** `key=path` or `path` → path. */
const generatorPath = (entry: string): string => (entry.includes('=') ? entry.slice(entry.indexOf('=') + 1) : entry);

/** Files (resources) and data files (generators) each kustomization names, resolved. */
const resourceFiles = new Set<string>();
const generatorFiles = new Set<string>();
for (const [dir, k] of kustomizations) {
  for (const r of k.resources ?? []) {
    const p = resolve(dir, r);
    if (existsSync(p) && statSync(p).isFile()) resourceFiles.add(p);
  }
  for (const p of k.patches ?? []) if (p.path) resourceFiles.add(resolve(dir, p.path));
  for (const g of [...(k.configMapGenerator ?? []), ...(k.secretGenerator ?? [])]) {
    for (const f of g.files ?? []) generatorFiles.add(resolve(dir, generatorPath(f)));
  }
}

/** Objects of every resource file, with the file they came from. */
const objects: { file: string; obj: K8sObject }[] = [...resourceFiles]
  .sort()
  .flatMap((file) => yamlDocs(file).map((obj) => ({ file, obj: obj as K8sObject })));

function find(kind: string, name: string, under: string): { file: string; obj: K8sObject } {
  const hit = objects.find((o) => o.obj.kind === kind && o.obj.metadata.name === name && o.file.startsWith(join(K8S, under) + '/'));
  if (!hit) throw new Error(`no ${kind} ${name} under deploy/k8s/${under}`);
  return hit;
}

/** The ConfigMap generator `name` in any kustomization → its config file, parsed. */
function generatedConfig(name: string): { file: string; config: RemoraConfig } {
  for (const [dir, k] of kustomizations) {
    const gen = (k.configMapGenerator ?? []).find((g) => g.name === name);
    if (gen) {
      const entry = (gen.files ?? []).find((f) => f === 'remora.yaml' || f.startsWith('remora.yaml='));
      if (!entry) throw new Error(`configMapGenerator ${name} has no key remora.yaml`);
      const file = resolve(dir, generatorPath(entry));
      return { file, config: parseYaml(readFileSync(file, 'utf8')) as RemoraConfig };
    }
  }
  throw new Error(`no configMapGenerator named ${name}`);
}

const sidecarText = readFileSync(SIDECAR_CONFIG, 'utf8');
const sidecar = parseYaml(sidecarText) as RemoraConfig;

/** Every pod template that runs Remora: where, the Remora container, how it runs. */
interface RemoraPod {
  where: string;
  obj: K8sObject;
  spec: PodSpec;
  template: PodTemplate;
  remora: Container;
  native: boolean;
  others: Container[];
  config: RemoraConfig;
  configFile: string;
}
const isRemora = (c: Container): boolean => /(^|\/)remora(:|$)/.test(c.image ?? '');
const remoraPods: RemoraPod[] = objects.flatMap(({ file, obj }) => {
  const template = obj.spec?.template;
  if (!template) return [];
  const spec = template.spec;
  const init = (spec.initContainers ?? []).find(isRemora);
  const regular = spec.containers.find(isRemora);
  const remora = init ?? regular;
  if (!remora) return [];
  const mount = (remora.volumeMounts ?? []).find((m) => m.mountPath === '/etc/remora');
  const volume = spec.volumes?.find((v) => v.name === mount?.name);
  const cmName = volume?.configMap?.name ?? '';
  const { file: configFile, config } = generatedConfig(cmName);
  return [
    {
      where: `${rel(file)} ${obj.kind}/${obj.metadata.name}`,
      obj,
      spec,
      template,
      remora,
      native: init !== undefined,
      others: spec.containers.filter((c) => c !== remora),
      config,
      configFile,
    },
  ];
});

// ---- Dockerfile ------------------------------------------------------------------------

/** Instructions of the Dockerfile (continuations joined, comments dropped). */
function dockerInstructions(): { op: string; rest: string }[] {
  const lines = readFileSync(DOCKERFILE, 'utf8').split('\n');
  const out: { op: string; rest: string }[] = [];
  let cur = '';
  for (const raw of lines) {
    const line = raw.trim();
    if (cur === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      cur += line.slice(0, -1) + ' ';
      continue;
    }
    cur += line;
    const m = /^(\S+)\s+(.*)$/.exec(cur);
    if (m) out.push({ op: m[1].toUpperCase(), rest: m[2].trim() });
    cur = '';
  }
  return out;
}
const docker = dockerInstructions();
const dockerOne = (op: string): string => {
  const all = docker.filter((i) => i.op === op);
  if (all.length === 0) throw new Error(`Dockerfile has no ${op}`);
  return all[all.length - 1].rest;
};
const execForm = (rest: string): string[] => JSON.parse(rest) as string[];

// ---- tests -----------------------------------------------------------------------------

t.test('every YAML document under deploy/k8s parses', async (t) => {
  const files = walk(K8S).filter((f) => /\.ya?ml$/.test(f));
  t.ok(files.length >= 10, `${files.length} YAML files`);
  for (const f of files) t.doesNotThrow(() => yamlDocs(f), rel(f));
  t.ok(kustomizations.size >= 4, 'common, base, classic and overlays/example kustomizations');
});

t.test('kustomizations name files that exist, and every file is named', async (t) => {
  for (const [dir, k] of kustomizations) {
    const where = rel(join(dir, 'kustomization.yaml'));
    for (const r of [...(k.resources ?? []), ...(k.components ?? [])]) {
      const p = resolve(dir, r);
      const ok = existsSync(p) && (statSync(p).isFile() || existsSync(join(p, 'kustomization.yaml')));
      t.ok(ok, `${where}: resource ${r} exists (a file, or a directory with a kustomization.yaml)`);
    }
    for (const p of k.patches ?? []) if (p.path) t.ok(existsSync(resolve(dir, p.path)), `${where}: patch ${p.path} exists`);
    for (const g of k.configMapGenerator ?? []) {
      for (const f of g.files ?? []) t.ok(existsSync(resolve(dir, generatorPath(f))), `${where}: ${g.name} file ${f} exists`);
    }
  }
  const named = new Set([...resourceFiles, ...generatorFiles, ...kustomizationFiles]);
  for (const f of walk(K8S).filter((p) => /\.ya?ml$/.test(p))) {
    t.ok(named.has(f), `${rel(f)} is used by a kustomization`);
  }
});

t.test('every Kubernetes object validates against its schema', async (t) => {
  t.ok(objects.length >= 7, `${objects.length} objects`);
  const kinds = new Set(objects.map((o) => o.obj.kind));
  for (const k of ['Deployment', 'Service', 'Job', 'ServiceMonitor', 'Namespace']) t.ok(kinds.has(k), `a ${k} is among them`);
  for (const { file, obj } of objects) {
    const where = `${rel(file)} ${obj.kind}/${obj.metadata?.name}`;
    t.same(schemaErrors(obj, where), [], `${where} is valid`);
    const spec = obj.spec?.template?.spec;
    if (spec) {
      const errs = unknownKeys(spec, POD_SPEC_KEYS, `${where} pod spec`);
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) errs.push(...containerKeyErrors(c, `${where} ${c.name}`));
      t.same(errs, [], `${where}: no unknown keys in the pod spec and its containers`);
    }
  }
});

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
const noKubectl = kubectl.error || kubectl.status !== 0 ? 'kubectl not installed: kustomize output not rendered' : false;

t.test('each kustomization renders with kubectl kustomize, and its output validates', { skip: noKubectl }, async (t) => {
  for (const dir of ['base', 'classic', 'overlays/example']) {
    const r = spawnSync('kubectl', ['kustomize', join(K8S, dir)], { encoding: 'utf8', timeout: 60_000 });
    t.equal(r.status, 0, `kubectl kustomize deploy/k8s/${dir}: ${r.stderr}`);
    if (r.status !== 0) continue;
    const rendered = parseAllDocuments(r.stdout);
    const docs = (Array.isArray(rendered) ? rendered : [rendered]).map((d) => d.toJS() as K8sObject).filter(Boolean);
    for (const obj of docs) {
      const where = `kustomize ${dir}: ${obj.kind}/${obj.metadata.name}`;
      t.same(schemaErrors(obj, where), [], `${where} is valid`);
    }
    // The generated ConfigMap carries the config byte for byte, and the pods mount it
    // under its hashed name.
    const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name.startsWith('remora-config-'));
    t.ok(cm, `${dir}: generated ConfigMap remora-config-<hash>`);
    t.equal(cm?.data?.['remora.yaml'], sidecarText, `${dir}: ConfigMap data remora.yaml is deploy/remora-sidecar.yaml`);
    const deployment = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'app');
    t.ok(
      deployment?.spec?.template?.spec.volumes?.some((v) => v.configMap?.name === cm?.metadata.name),
      `${dir}: Deployment mounts ${cm?.metadata.name}`,
    );
    if (dir === 'overlays/example') {
      t.ok(docs.every((d) => d.kind === 'Namespace' || d.metadata.namespace === 'remora-example'), 'overlay: everything in namespace remora-example');
      t.equal(deployment?.spec?.replicas, 3, 'overlay: 3 replicas');
      const images = docs.flatMap((d) => {
        const s = d.spec?.template?.spec;
        return s ? [...(s.initContainers ?? []), ...s.containers].filter((c) => (c.image ?? '').includes('remora')).map((c) => c.image) : [];
      });
      t.ok(images.length >= 3, 'overlay: Remora in the Deployment and both Jobs');
      t.ok(images.every((i) => i === 'registry.example.com/remora:0.1.0'), `overlay: image set everywhere (${images.join(', ')})`);
    }
  }
});

t.test('the ConfigMap source is deploy/remora-sidecar.yaml byte for byte', async (t) => {
  const { file } = generatedConfig('remora-config');
  t.equal(
    readFileSync(file, 'utf8'),
    sidecarText,
    `${rel(file)} must equal deploy/remora-sidecar.yaml (cp deploy/remora-sidecar.yaml ${rel(file)})`,
  );
});

t.test('the sidecar config: loopback admin, probes and drain set, inbound → app:8080', async (t) => {
  t.equal(sidecar.admin?.address, '127.0.0.1', 'admin API on loopback only');
  t.equal(sidecar.admin?.port, 9901, 'admin on 9901 (wait-ready default)');
  t.equal(sidecar.probes?.address, '0.0.0.0', 'probes reachable by kubelet on the pod IP');
  t.equal(sidecar.probes?.port, 9902);
  t.same(sidecar.drain, { delay_ms: 5000, timeout_ms: 20000 });
  t.equal(sidecar.workers, 2);
  const inbound = sidecar.listeners.find((l) => l.name === 'inbound');
  t.same([inbound?.address, inbound?.port], ['0.0.0.0', 15006], 'listener inbound on 0.0.0.0:15006');
  t.same(sidecar.clusters?.find((c) => c.name === 'app')?.endpoints, [{ address: '127.0.0.1', port: 8080 }], 'cluster app → 127.0.0.1:8080');
});

t.test('pods running Remora agree with their config', async (t) => {
  t.ok(remoraPods.length >= 4, `${remoraPods.length} pod templates run Remora (base, classic, two Jobs)`);
  for (const p of remoraPods) {
    const { where, spec, remora, config, template } = p;
    const drain = config.drain ?? {};
    t.ok(drain.delay_ms !== undefined && drain.timeout_ms !== undefined, `${where}: ${rel(p.configFile)} sets drain.delay_ms and drain.timeout_ms`);
    const needed = ((drain.delay_ms ?? 0) + (drain.timeout_ms ?? 0)) / 1000;
    t.ok(
      (spec.terminationGracePeriodSeconds ?? 30) >= needed,
      `${where}: terminationGracePeriodSeconds ${spec.terminationGracePeriodSeconds} ≥ (delay + timeout) = ${needed} s`,
    );

    // The config is mounted where the args read it.
    t.same(remora.args, ['run', '--config', '/etc/remora/remora.yaml'], `${where}: args run --config /etc/remora/remora.yaml`);
    const mount = remora.volumeMounts?.find((m) => m.mountPath === '/etc/remora');
    t.ok(mount?.readOnly, `${where}: config mounted read-only at /etc/remora`);

    // Probes: on the named port "probes", whose number is the config's probes port.
    const ports = new Map((remora.ports ?? []).map((x) => [x.name, x.containerPort]));
    t.equal(ports.get('probes'), config.probes?.port, `${where}: container port "probes" = config probes.port ${config.probes?.port}`);
    t.equal(config.probes?.address, '0.0.0.0', `${where}: probes server on the pod IP`);
    t.equal(config.admin?.address, '127.0.0.1', `${where}: admin on loopback`);
    t.notOk(
      (remora.ports ?? []).some((x) => x.containerPort === config.admin?.port),
      `${where}: the admin port is not declared as a container port`,
    );
    for (const l of config.listeners.filter((x) => x.address !== '127.0.0.1')) {
      t.equal(ports.get(l.name), l.port, `${where}: container port "${l.name}" = listener ${l.name}'s port ${l.port}`);
    }
    const expectPath = { startupProbe: '/ready', readinessProbe: '/ready', livenessProbe: '/live' } as const;
    let probes = 0;
    for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
      const probe = remora[kind];
      if (!probe) continue;
      probes++;
      t.equal(probe.httpGet?.port, 'probes', `${where}: ${kind} uses the named port "probes"`);
      t.equal(probe.httpGet?.path, expectPath[kind], `${where}: ${kind} GET ${expectPath[kind]}`);
    }
    t.ok(probes >= 1, `${where}: at least one probe`);

    // Security context and resources.
    const sc = remora.securityContext;
    t.equal(sc?.runAsNonRoot, true, `${where}: runAsNonRoot`);
    t.equal(sc?.runAsUser, 10001, `${where}: runAsUser 10001 (the image's user)`);
    t.equal(sc?.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
    t.equal(sc?.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation false`);
    t.same(sc?.capabilities?.drop, ['ALL'], `${where}: drops ALL capabilities`);
    t.ok(remora.resources?.requests?.cpu && remora.resources?.requests?.memory, `${where}: requests set`);
    t.ok(remora.resources?.limits?.memory, `${where}: memory limit set`);

    if (p.obj.kind === 'Deployment') {
      const a = template.metadata?.annotations ?? {};
      t.equal(a['prometheus.io/scrape'], 'true', `${where}: prometheus.io/scrape`);
      t.equal(a['prometheus.io/port'], String(config.probes?.port), `${where}: prometheus.io/port = probes port`);
      t.equal(a['prometheus.io/path'], '/metrics', `${where}: prometheus.io/path /metrics`);
      t.ok(remora.startupProbe && remora.readinessProbe && remora.livenessProbe, `${where}: startup, readiness and liveness probes`);
      t.equal(remora.startupProbe?.periodSeconds, 1, `${where}: startupProbe every second`);
      t.equal(remora.startupProbe?.failureThreshold, 60, `${where}: startupProbe for up to 60 s`);
      t.same(remora.resources, { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '500m', memory: '512Mi' } }, `${where}: resources`);
      t.equal(spec.terminationGracePeriodSeconds, 30, `${where}: terminationGracePeriodSeconds 30`);
    }
  }
});

t.test('native sidecar (base): an init container with restartPolicy Always', async (t) => {
  const pod = remoraPods.find((p) => p.where.includes('deploy/k8s/base/'));
  t.ok(pod, 'base runs Remora');
  if (!pod) return;
  t.ok(pod.native, 'Remora is in initContainers');
  t.equal(pod.remora.restartPolicy, 'Always', 'restartPolicy: Always makes it a sidecar');
  t.ok(pod.remora.startupProbe, 'startupProbe: the app starts only after it passes');
  t.equal(pod.spec.initContainers?.[0]?.name, 'remora', 'first init container: nothing runs before the proxy');
  t.same(pod.spec.containers.map((c) => c.name), ['app'], 'one app container');
});

t.test('classic sidecar: the first container, with a wait-ready postStart hook', async (t) => {
  const pod = remoraPods.find((p) => p.where.includes('deploy/k8s/classic/'));
  t.ok(pod, 'classic runs Remora');
  if (!pod) return;
  t.notOk(pod.native, 'Remora is a regular container');
  t.equal(pod.spec.initContainers, undefined, 'no init containers');
  t.equal(pod.spec.containers[0], pod.remora, 'Remora is the first container');
  t.equal(pod.remora.restartPolicy, undefined, 'no container restartPolicy (needs ≥ 1.29)');
  t.same(
    pod.remora.lifecycle?.postStart?.exec?.command,
    ['node', '/app/bin/remora.js', 'wait-ready', '--timeout', '60'],
    'postStart: remora wait-ready --timeout 60',
  );
  const app = pod.spec.containers[1];
  t.equal(app?.name, 'app');
  t.same(
    app?.lifecycle?.preStop?.exec?.command,
    ['sleep', String((pod.config.drain?.delay_ms ?? 0) / 1000)],
    `app preStop sleeps drain.delay_ms (${pod.config.drain?.delay_ms} ms)`,
  );
});

t.test('base and classic differ only in the sidecar form', async (t) => {
  const base = remoraPods.find((p) => p.where.includes('deploy/k8s/base/'));
  const classic = remoraPods.find((p) => p.where.includes('deploy/k8s/classic/'));
  if (!base || !classic) return t.fail('both forms present');
  const strip = (c: Container): Container => {
    const { restartPolicy: _r, lifecycle: _l, ...rest } = c;
    return rest;
  };
  t.same(strip(classic.remora), strip(base.remora), 'same Remora container but restartPolicy / postStart');
  t.same(classic.others, base.others, 'same app container');
  t.same(classic.spec.volumes, base.spec.volumes, 'same volumes');
  t.same(classic.template.metadata, base.template.metadata, 'same labels and annotations');
  t.equal(classic.spec.terminationGracePeriodSeconds, base.spec.terminationGracePeriodSeconds, 'same grace period');
  // The app's preStop keeps it serving while the endpoint leaves the Service in both forms.
  t.same(base.others[0]?.lifecycle?.preStop, classic.others[0]?.lifecycle?.preStop, 'same app preStop');
});

t.test('Service and ServiceMonitor reach Remora through named ports', async (t) => {
  const svc = find('Service', 'app', 'common').obj;
  const base = remoraPods.find((p) => p.where.includes('deploy/k8s/base/'));
  const svcSpec = svc.spec as { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string | number }[] };
  t.same(svcSpec.selector, base?.template.metadata?.labels, 'Service selects the pods');
  const http = svcSpec.ports.find((x) => x.name === 'http');
  t.equal(http?.targetPort, 'inbound', 'Service http → Remora listener inbound (not the app port)');
  t.notOk(svcSpec.ports.some((x) => x.targetPort === 8080 || x.targetPort === 9901), 'neither the app nor the admin port is exposed');
  const probes = svcSpec.ports.find((x) => x.name === 'probes');
  t.equal(probes?.targetPort, 'probes', 'Service probes → container port probes');

  const sm = find('ServiceMonitor', 'app', 'overlays/example').obj;
  const smSpec = sm.spec as { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] };
  t.same(smSpec.selector.matchLabels, svc.metadata.labels, 'ServiceMonitor selects the Service');
  t.same(
    smSpec.endpoints.map((e) => [e.port, e.path]),
    [['probes', '/metrics']],
    'ServiceMonitor scrapes port probes, path /metrics',
  );
});

t.test('Jobs: classic ends Remora with /quitquitquit, native needs nothing', async (t) => {
  const classic = remoraPods.find((p) => p.obj.kind === 'Job' && !p.native);
  const native = remoraPods.find((p) => p.obj.kind === 'Job' && p.native);
  t.ok(classic && native, 'one Job of each form');
  if (!classic || !native) return;
  t.equal(classic.spec.containers[0], classic.remora, 'classic Job: Remora first');
  t.same(classic.remora.lifecycle?.postStart?.exec?.command?.slice(0, 3), ['node', '/app/bin/remora.js', 'wait-ready'], 'classic Job: wait-ready postStart');
  const main = classic.others[0];
  const script = [...(main?.command ?? []), ...(main?.args ?? [])].join(' ');
  t.match(
    script,
    new RegExp(`curl [^\\n]*-X POST http://127\\.0\\.0\\.1:${classic.config.admin?.port}/quitquitquit`),
    'classic Job: the main container POSTs /quitquitquit to the admin port when done',
  );
  t.ok((classic.obj.spec as { activeDeadlineSeconds?: number }).activeDeadlineSeconds, 'classic Job: activeDeadlineSeconds as a safety net');
  t.equal(native.remora.restartPolicy, 'Always', 'native Job: sidecar restartPolicy Always');
  const nativeMain = [...(native.others[0]?.command ?? []), ...(native.others[0]?.args ?? [])].join(' ');
  t.notMatch(nativeMain, /quitquitquit/, 'native Job: no /quitquitquit needed');
  for (const p of [classic, native]) {
    t.equal(p.spec.restartPolicy, 'Never', `${p.where}: restartPolicy Never`);
    const out = p.config.listeners.find((l) => l.name === 'outbound');
    t.equal(out?.address, '127.0.0.1', `${p.where}: outbound listener on loopback`);
    t.match(
      [...(p.others[0]?.command ?? []), ...(p.others[0]?.args ?? [])].join(' '),
      `http://127.0.0.1:${out?.port}/`,
      `${p.where}: the work goes through Remora's outbound listener`,
    );
  }
});

t.test('control plane: a disruption budget, a network policy and TLS for its replicas', async (t) => {
  const deployment = find('Deployment', 'remora-control-plane', 'control-plane').obj;
  const podLabels = deployment.spec!.template!.metadata?.labels ?? {};
  const replicas = Number(deployment.spec!.replicas);
  const pdb = find('PodDisruptionBudget', 'remora-control-plane', 'control-plane').obj.spec as { minAvailable: number; selector: { matchLabels: Record<string, string> } };
  t.match(podLabels, pdb.selector.matchLabels, 'the budget selects the replicas');
  t.ok(pdb.minAvailable >= 1 && pdb.minAvailable < replicas, `minAvailable ${pdb.minAvailable} of ${replicas}: one may move at a time, never all`);
  const np = find('NetworkPolicy', 'remora-control-plane', 'control-plane').obj.spec as {
    podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: { from: { namespaceSelector?: object }[]; ports: { port: number }[] }[];
  };
  t.match(podLabels, np.podSelector.matchLabels, 'the policy selects the replicas');
  t.same(np.policyTypes, ['Ingress']);
  const xds = deployment.spec!.template!.spec.containers[0].ports?.find((p) => p.name === 'xds')?.containerPort;
  t.same(np.ingress.flatMap((r) => r.ports.map((p) => p.port)), [xds], 'only the xDS/CA port is open');
  t.ok(np.ingress.every((r) => r.from.length > 0 && r.from.every((f) => f.namespaceSelector !== undefined)), 'only from selected namespaces');
  const args = deployment.spec!.template!.spec.containers[0].args ?? [];
  t.ok(args.includes('--tls') && args.includes('--ca-dir'), `ADS and the CA over TLS, from the mesh CA (args: ${args.join(' ')})`);
  t.notOk(args.includes('--insecure-allow-any-identity'), 'never the insecure CA mode');
  const sid = args[args.indexOf('--server-identity') + 1];
  t.match(sid, /^spiffe:\/\/cluster\.local\/ns\/[a-z0-9-]+\/sa\/[a-z0-9-]+$/, `a server identity sidecars can verify (${sid})`);
});

t.test('Dockerfile: the image the manifests run', async (t) => {
  const froms = docker.filter((i) => i.op === 'FROM').map((i) => i.rest);
  t.same(froms, ['${NODE_IMAGE} AS build', '${RUNTIME_BASE} AS runtime'], 'a build stage on ${NODE_IMAGE}, a runtime on ${RUNTIME_BASE}');
  const args = docker.filter((i) => i.op === 'ARG').map((i) => i.rest);
  t.ok(args.some((a) => /^NODE_IMAGE=node:24-bookworm-slim$/.test(a)), `build stage: Node 24 (current LTS) on bookworm (glibc 2.36) (ARGs: ${args.join(', ')})`);
  t.ok(args.includes('RUNTIME_BASE=gcr.io/distroless/cc-debian12'), 'runtime: distroless cc on Debian 12, the same release');
  const runs = docker.filter((i) => i.op === 'RUN').map((i) => i.rest);
  t.ok(runs.some((r) => /npm ci --ignore-scripts\b/.test(r)), 'build stage: npm ci');
  t.ok(runs.some((r) => /tsc -p tsconfig\.runtime\.json/.test(r)), 'build stage: compiles what the image ships (tsconfig.runtime.json: src and workers)');
  t.ok(runs.some((r) => /npm ci --omit=dev/.test(r)), 'production dependencies: npm ci --omit=dev');
  t.ok(runs.some((r) => /apt-get install -y --no-install-recommends tini/.test(r)), 'tini installed (build stage; its static binary is copied)');
  t.ok(
    docker.some((i) => i.op === 'COPY' && i.rest === '--from=build /usr/bin/tini-static /usr/bin/tini'),
    'the runtime gets tini-static as /usr/bin/tini',
  );
  t.ok(docker.some((i) => i.op === 'COPY' && i.rest === '--from=build /usr/local/bin/node /usr/local/bin/node'), 'and Node from the build stage');
  const runtimeAt = docker.findIndex((i) => i.op === 'FROM' && i.rest.includes('AS runtime'));
  t.same(docker.slice(runtimeAt).filter((i) => i.op === 'RUN'), [], 'the runtime stage runs nothing (it has no shell)');
  t.equal(dockerOne('USER'), '10001:10001', 'USER 10001:10001 (numeric, for runAsNonRoot)');
  t.same(execForm(dockerOne('ENTRYPOINT')), ['/usr/bin/tini', '--', '/usr/local/bin/node', ...REMORA_NODE_FLAGS, '/app/bin/remora.js'], 'ENTRYPOINT tini -- node (with the flags the benchmarks use) remora');
  const cmd = execForm(dockerOne('CMD'));
  t.same(cmd, ['run', '--config', '/etc/remora/remora.yaml'], 'CMD run --config /etc/remora/remora.yaml');
  for (const p of remoraPods) t.same(p.remora.args, cmd, `${p.where}: args = the image's CMD`);
  t.equal(dockerOne('STOPSIGNAL'), 'SIGTERM', 'STOPSIGNAL SIGTERM (the drain)');
  const hc = dockerOne('HEALTHCHECK');
  const hcCmd = execForm(hc.slice(hc.indexOf('CMD ') + 4));
  t.same(hcCmd, ['/usr/local/bin/node', '/app/bin/remora.js', 'wait-ready', '--timeout', '2'], 'HEALTHCHECK wait-ready --timeout 2 (admin 127.0.0.1:9901 by default)');
  const exposed = docker
    .filter((i) => i.op === 'EXPOSE')
    .flatMap((i) => i.rest.split(/\s+/))
    .map((x) => Number(x.split('/')[0]))
    .sort();
  t.same(exposed, [sidecar.listeners.find((l) => l.name === 'inbound')!.port, sidecar.probes!.port].sort(), 'EXPOSE inbound and probes, not admin');

  const copies = docker.filter((i) => i.op === 'COPY').map((i) => i.rest);
  t.ok(copies.includes('deploy/remora-sidecar.yaml /etc/remora/remora.yaml'), 'default config from deploy/remora-sidecar.yaml');
  for (const c of copies) {
    if (c.startsWith('--from=')) continue;
    const sources = c.split(/\s+/).slice(0, -1);
    for (const s of sources) t.ok(existsSync(join(ROOT, s)), `COPY source ${s} exists in the repository`);
  }
  // What the runtime loads: bin/remora.js imports ../dist/src/cli/remora.js; the worker
  // pool loads dist/workers/serve.js; version.ts reads package.json.
  t.match(readFileSync(join(ROOT, 'bin/remora.js'), 'utf8'), /'\.\.\/dist\/src\/cli\/remora\.js'/, 'bin/remora.js loads dist/src');
  t.ok(copies.some((c) => c.startsWith('--from=build /src/dist/src ')), 'dist/src copied from the build stage');
  t.ok(copies.some((c) => c.startsWith('--from=build /src/dist/workers ')), 'dist/workers copied from the build stage');
  t.ok(copies.some((c) => /^bin\s/.test(c)), 'bin/ copied');
  t.ok(copies.some((c) => c.startsWith('package.json package-lock.json ')), 'package.json and the lock copied');
  t.ok(copies.includes('--from=build /prod/node_modules ./node_modules'), 'production node_modules copied from the build stage');
  t.ok(copies.includes('proto ./proto'), 'proto/ copied (remora control-plane loads it)');
});

t.test('.dockerignore keeps node_modules, dist, bench/results and .git out of the context', async (t) => {
  const lines = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim());
  for (const p of ['node_modules', 'dist', 'bench/results', '.git']) t.ok(lines.includes(p), p);
  t.notOk(lines.some((l) => ['deploy', 'bin', 'src', 'workers', 'proto'].includes(l)), 'nothing the Dockerfile copies is ignored');
});

t.test('build-image.sh builds from the repository root with docker or buildah', async (t) => {
  const script = readFileSync(join(DEPLOY, 'build-image.sh'), 'utf8');
  t.match(script, /docker build -f deploy\/Dockerfile -t "\$image"/, 'docker build -f deploy/Dockerfile');
  t.match(script, /buildah bud --isolation chroot --format docker [^\n]*-f deploy\/Dockerfile -t "\$image"/, 'buildah bud -f deploy/Dockerfile');
  t.match(script, /image="\$\{IMAGE:-remora:dev\}"/, 'IMAGE defaults to remora:dev');
  t.match(script, /command -v docker/, 'checks that docker exists');
  t.match(script, /command -v buildah/, 'and buildah');
  t.ok(statSync(join(DEPLOY, 'build-image.sh')).mode & 0o100, 'executable');
  // Without docker on PATH it exits 1 with a message, before doing anything.
  const r = spawnSync(existsSync('/bin/bash') ? '/bin/bash' : '/usr/bin/bash', [join(DEPLOY, 'build-image.sh')], { encoding: 'utf8', env: { ...process.env, PATH: '/nonexistent' } });
  t.equal(r.status, 1, 'exit 1 without docker and buildah');
  t.match(r.stderr, /neither a Docker engine .* nor buildah/, `says both are missing (stderr: ${r.stderr})`);
});
