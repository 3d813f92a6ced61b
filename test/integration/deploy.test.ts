// Remora run the way deploy/ runs it: the command line of the image's ENTRYPOINT plus the
// args of the native sidecar in deploy/k8s/base, the container's env, and
// deploy/remora-sidecar.yaml with only its addresses moved to 127.0.0.1, its ports to 0
// and the app cluster's endpoint to a test upstream. Then what kubelet, Prometheus, a
// client, Docker and a pod deletion do to it: every probe path of the manifest on the
// probes port, /metrics there (and nothing of the admin API), a request through the
// inbound listener, the Dockerfile's HEALTHCHECK and the classic form's postStart command
// (wait-ready), and SIGTERM: /ready turns 503 at once, requests still pass during
// drain.delay_ms, exit 0 within the pod's terminationGracePeriodSeconds.
// Also: every Remora config shipped under deploy/ passes `remora validate`.

import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments, stringify } from 'yaml';
import { BIN, request, startUpstream } from '../helpers/remora.js';
import { repoPath } from '../helpers/repo-root.js';

const root = (p: string): string => repoPath(p);

interface Probe {
  httpGet?: { path?: string; port: number | string };
}
interface Container {
  name: string;
  image?: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  ports?: { name?: string; containerPort: number }[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { postStart?: { exec?: { command: string[] } } };
}
interface PodTemplate {
  metadata?: { annotations?: Record<string, string> };
  spec: { terminationGracePeriodSeconds?: number; initContainers?: Container[]; containers: Container[] };
}
interface Deployment {
  kind: string;
  spec: { template: PodTemplate };
}
interface SidecarConfig {
  admin: { address: string; port: number };
  probes: { address: string; port: number };
  drain: { delay_ms: number; timeout_ms: number };
  listeners: { name: string; address: string; port: number }[];
  clusters: { name: string; endpoints: { address: string; port: number }[] }[];
}

function deployment(file: string): Deployment {
  const docs = parseAllDocuments(readFileSync(root(file), 'utf8'));
  const found = (Array.isArray(docs) ? docs : [docs]).map((d) => d.toJS() as Deployment).find((d) => d?.kind === 'Deployment');
  if (!found) throw new Error(`no Deployment in ${file}`);
  return found;
}
const isRemora = (c: Container): boolean => /(^|\/)remora(:|$)/.test(c.image ?? '');

const base = deployment('deploy/k8s/base/deployment.yaml').spec.template;
const sidecar = (base.spec.initContainers ?? []).find(isRemora);
const classic = deployment('deploy/k8s/classic/deployment.yaml').spec.template.spec.containers.find(isRemora);
const config = parseYaml(readFileSync(root('deploy/remora-sidecar.yaml'), 'utf8')) as SidecarConfig;

/** Dockerfile instructions, continuation lines joined. */
function dockerfile(op: string): string {
  const text = readFileSync(root('deploy/Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const lines = text.split('\n').filter((l) => new RegExp(`^${op}\\s`, 'i').test(l.trim()));
  if (lines.length === 0) throw new Error(`Dockerfile has no ${op}`);
  return lines[lines.length - 1].trim().slice(op.length).trim();
}
/** A command of the image, as it runs here: /usr/local/bin/node → this node, /app/bin/remora.js → bin/remora.js. */
const local = (argv: string[]): string[] =>
  argv.map((a) => (a === '/usr/local/bin/node' ? process.execPath : a === '/app/bin/remora.js' ? BIN : a));

const entrypoint = JSON.parse(dockerfile('ENTRYPOINT')) as string[];
// tini -- node /app/bin/remora.js: tini only forwards signals; run what follows "--".
const remoraCommand = local(entrypoint.slice(entrypoint.indexOf('--') + 1));
const healthcheck = dockerfile('HEALTHCHECK');
const healthcheckCommand = local(JSON.parse(healthcheck.slice(healthcheck.indexOf('CMD ') + 4)) as string[]);

function run(argv: string[], ms: number): Promise<{ code: number | null; output: string; elapsed: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
    }, ms);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, elapsed: Date.now() - started });
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('every Remora config under deploy/ passes remora validate', async (t) => {
  for (const file of [
    'deploy/remora-sidecar.yaml',
    'deploy/k8s/common/remora.yaml',
    'deploy/k8s/overlays/example/remora-job.yaml',
    'deploy/examples/remora.yaml',
    'deploy/examples/remora-mtls.yaml',
  ]) {
    const r = spawnSync(process.execPath, [BIN, 'validate', root(file)], { encoding: 'utf8', timeout: 30_000 });
    t.equal(r.status, 0, `${file}: ${r.stdout}${r.stderr}`);
  }
});

t.test('the base sidecar, run as the manifest and the image run it', async (t) => {
  if (!sidecar || !classic) throw new Error('no Remora container in deploy/k8s/base or deploy/k8s/classic');
  const args = sidecar.args ?? [];
  const configAt = args.indexOf('--config');
  t.ok(configAt >= 0 && args[configAt + 1] === '/etc/remora/remora.yaml', `args read /etc/remora/remora.yaml: ${args.join(' ')}`);

  const upstream = await startUpstream((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': 'app' });
      res.end(`app saw ${req.method} ${req.url}`);
    });
  });
  t.teardown(() => upstream.close());

  // The config with only addresses → 127.0.0.1, ports → 0, app endpoint → the upstream.
  const testConfig: SidecarConfig = structuredClone(config);
  testConfig.admin = { ...testConfig.admin, address: '127.0.0.1', port: 0 };
  testConfig.probes = { ...testConfig.probes, address: '127.0.0.1', port: 0 };
  testConfig.listeners = testConfig.listeners.map((l) => ({ ...l, address: '127.0.0.1', port: 0 }));
  const app = testConfig.clusters.find((c) => c.name === 'app');
  if (!app) throw new Error('no cluster "app" in deploy/remora-sidecar.yaml');
  app.endpoints = [{ address: '127.0.0.1', port: upstream.port }];
  const dir = mkdtempSync(join(tmpdir(), 'remora-deploy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'remora.yaml');
  writeFileSync(file, stringify(testConfig));

  const argv = [...remoraCommand, ...args.map((a, i) => (i === configAt + 1 ? file : a))];
  const env: Record<string, string> = {};
  for (const e of sidecar.env ?? []) env[e.name] = e.value ?? '';
  const child: ChildProcess = spawn(argv[0], argv.slice(1), {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid!, 'SIGKILL');
      await exited;
    }
  });

  // The ready line: listener, admin and probes ports.
  const readyRe = /\{[^\n]*"msg":"remora ready"[^\n]*\}/;
  const deadline = Date.now() + 20_000;
  while (!readyRe.test(out) && child.exitCode === null && Date.now() < deadline) await sleep(20);
  const m = readyRe.exec(out);
  if (!m) throw new Error(`remora did not become ready (exit ${child.exitCode}); output:\n${out}`);
  const ready = JSON.parse(m[0]) as { listeners: Record<string, number>; admin: number; probes?: number };
  const inbound = ready.listeners.inbound;
  const probes = ready.probes;
  t.ok(inbound > 0, `listener inbound on ${inbound}`);
  t.ok(ready.admin > 0, `admin on ${ready.admin}`);
  t.ok(typeof probes === 'number' && probes > 0, `the ready line names the probes port (${probes})`);
  if (typeof probes !== 'number') return;

  // kubelet: every probe of the manifest, on the port named "probes".
  const named = new Map((sidecar.ports ?? []).map((p) => [p.name, p.containerPort]));
  for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
    const get = sidecar[kind]?.httpGet;
    t.ok(get, `${kind} is an httpGet probe`);
    if (!get) continue;
    t.equal(named.get(String(get.port)), config.probes.port, `${kind} port ${get.port} is the config's probes port`);
    const r = await request(probes, { path: get.path ?? '/', agent: false });
    t.equal(r.status, 200, `${kind}: GET ${get.path} → 200`);
  }

  // Prometheus: the annotation's path on the probes port.
  const annotations = base.metadata?.annotations ?? {};
  t.equal(Number(annotations['prometheus.io/port']), config.probes.port, 'prometheus.io/port is the probes port');
  const metrics = await request(probes, { path: annotations['prometheus.io/path'] ?? '/metrics', agent: false });
  t.equal(metrics.status, 200, 'GET /metrics on the probes port → 200');
  t.match(String(metrics.headers['content-type']), /^text\/plain/, 'Prometheus text exposition');
  t.match(metrics.text, /^# (HELP|TYPE) remora_/m, 'remora_ series');

  // The probes port is read-only: no admin paths, no POSTs.
  const dump = await request(probes, { path: '/config_dump', agent: false });
  t.not(dump.status, 200, `GET /config_dump on the probes port → ${dump.status}`);
  const quit = await request(probes, { method: 'POST', path: '/quitquitquit', agent: false });
  t.not(quit.status, 200, `POST /quitquitquit on the probes port → ${quit.status}`);
  await sleep(200);
  t.equal(child.exitCode, null, 'still running after a POST to the probes port');

  // A client: through the inbound listener to the app.
  const through = await request(inbound, { path: '/hello?x=1', agent: false });
  t.equal(through.status, 200, 'inbound → app: 200');
  t.equal(through.text, 'app saw GET /hello?x=1', 'the app got the path and query');
  t.equal(through.headers['x-upstream'], 'app', 'the response is the app\'s');

  // Docker's HEALTHCHECK and the classic form's postStart hook: wait-ready on the admin port.
  const admin = ['--admin', `127.0.0.1:${ready.admin}`];
  const hc = await run([...healthcheckCommand, ...admin], 15_000);
  t.equal(hc.code, 0, `HEALTHCHECK remora ${healthcheckCommand.slice(2).join(' ')} → exit 0`, { output: hc.output });
  const postStart = classic.lifecycle?.postStart?.exec?.command ?? [];
  const ps = await run([...local(postStart), ...admin], 15_000);
  t.equal(ps.code, 0, `classic postStart ${postStart.join(' ')} → exit 0`, { output: ps.output });

  // Taking the pod out of the Service by hand: the readiness probe's /ready follows the
  // admin API's /healthcheck/fail and /healthcheck/ok.
  const readinessPath = sidecar.readinessProbe?.httpGet?.path ?? '/ready';
  t.equal((await request(ready.admin, { method: 'POST', path: '/healthcheck/fail', agent: false })).status, 200, 'POST /healthcheck/fail');
  t.equal((await request(probes, { path: readinessPath, agent: false })).status, 503, `readiness ${readinessPath} → 503 after /healthcheck/fail`);
  t.equal((await request(probes, { path: '/live', agent: false })).status, 200, 'liveness /live still 200 (no restart)');
  t.equal((await request(ready.admin, { method: 'POST', path: '/healthcheck/ok', agent: false })).status, 200, 'POST /healthcheck/ok');
  t.equal((await request(probes, { path: readinessPath, agent: false })).status, 200, `readiness ${readinessPath} → 200 again`);

  // Pod deletion: SIGTERM (the image's STOPSIGNAL).
  t.equal(dockerfile('STOPSIGNAL'), 'SIGTERM', 'the image stops with SIGTERM');
  const grace = base.spec.terminationGracePeriodSeconds ?? 30;
  const stoppedAt = Date.now();
  process.kill(child.pid!, 'SIGTERM');
  let readyStatus = 0;
  while (Date.now() - stoppedAt < 1000) {
    readyStatus = (await request(probes, { path: '/ready', agent: false })).status;
    if (readyStatus === 503) break;
    await sleep(25);
  }
  t.equal(readyStatus, 503, `/ready → 503 within 1 s of SIGTERM (${Date.now() - stoppedAt} ms)`);
  if (Date.now() - stoppedAt < config.drain.delay_ms - 1000) {
    const during = await request(inbound, { path: '/during-drain', agent: false }).catch((e: Error) => ({ status: 0, text: e.message }));
    t.equal(during.status, 200, `a new request during drain.delay_ms still reaches the app (${during.text})`);
  }
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
  }, grace * 1000 + 5000);
  const result = await exited;
  clearTimeout(timer);
  const elapsed = Date.now() - stoppedAt;
  t.same(result, { code: 0, signal: null }, 'SIGTERM → exit 0', { output: out.slice(-4000) });
  t.ok(elapsed < grace * 1000, `exited in ${elapsed} ms, within terminationGracePeriodSeconds ${grace} s`);
  t.ok(elapsed >= config.drain.delay_ms * 0.9, `kept accepting for drain.delay_ms (${config.drain.delay_ms} ms) before exiting`);

  // Once it is gone, the HEALTHCHECK fails.
  const after = await run([...healthcheckCommand, ...admin], 15_000);
  t.equal(after.code, 1, 'HEALTHCHECK exits 1 once Remora is gone', { output: after.output });
});
