// The container image, run as a sidecar runs it: the image's own ENTRYPOINT and CMD
// (`remora run` with the manifests' config), its HEALTHCHECK command, a request through
// it to an app on 127.0.0.1:8080, `remora control-plane` from the same image, and SIGTERM
// drain; it prints the image size and the idle RSS. deploy/build-image.sh --test builds
// the image and runs this file inside a network namespace of its own, so the fixed ports
// the image's config uses (15006, 9901, 9902, the app's 8080) are free. Not part of
// `npm test` (it needs buildah, root and a built image): `npm run image:test`.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import { request, waitUntil } from '../helpers/remora.js';
import { repoPath } from '../helpers/repo-root.js';

const IMAGE = process.env.REMORA_IMAGE ?? '';
const SIZE_TARGET = 200 * 1024 * 1024;

interface DockerConfig {
  User?: string;
  Entrypoint?: string[];
  Cmd?: string[];
  ExposedPorts?: Record<string, unknown>;
  Healthcheck?: { Test?: string[] };
}

/** Runs buildah to completion; throws with its output when it fails. */
function buildah(...args: string[]): string {
  const r = spawnSync('buildah', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`buildah ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout.trim();
}

/** A running `buildah run` of one container, its output collected. */
interface Running {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function run(container: string, command: string[], volumes: string[] = []): Running {
  const args = ['run', '--isolation', 'chroot', ...volumes.flatMap((v) => ['-v', v]), container, '--', ...command];
  const child = spawn('buildah', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** Ends a run, the image's processes first, by pid, and waits for it (SIGKILL after 10 s). */
async function stop(r: Running, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (r.child.exitCode === null && r.child.signalCode === null) {
    for (const pid of descendants(r.child.pid!).reverse()) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
    r.child.kill(signal);
    const timer = setTimeout(() => r.child.kill('SIGKILL'), 10_000);
    const code = await r.exited;
    clearTimeout(timer);
    return code;
  }
  return r.exited;
}

/** argv of every process, and each one's parent (the image's processes are visible here:
 *  chroot isolation shares the pid namespace). */
function processTable(): Map<number, { ppid: number; argv: string[] }> {
  const table = new Map<number, { ppid: number; argv: string[] }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      table.set(Number(name), { ppid, argv: readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0') });
    } catch {
      // exited while we looked
    }
  }
  return table;
}

/** Pids of the processes below `root` (buildah → its chroot helpers → tini → node), those
 *  running `program` only when given. */
function descendants(root: number, program?: string): number[] {
  const table = processTable();
  const below = new Set<number>([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, p] of table) {
      if (!below.has(pid) && below.has(p.ppid)) {
        below.add(pid);
        grew = true;
      }
    }
  }
  below.delete(root);
  return [...below].filter((pid) => program === undefined || table.get(pid)?.argv[0] === program);
}

function status(pid: number, field: string): string {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return line ? line.slice(field.length + 1).trim() : '';
}

/** Polls `check` (a throw counts as not yet) until it holds; the error names `what` and
 *  carries the process's output. */
async function until(what: string, check: () => Promise<boolean>, ms: number, output: () => string): Promise<void> {
  await waitUntil(what, () => check().catch(() => false), ms, 200).catch((err: Error) => {
    throw new Error(`${err.message}; output:\n${output()}`);
  });
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

if (IMAGE === '') {
  t.plan(0, 'REMORA_IMAGE is not set: deploy/build-image.sh --test (npm run image:test) builds the image and sets it');
} else {
  const config = JSON.parse(buildah('inspect', '--type', 'image', IMAGE)) as { Docker: { config: DockerConfig } };
  const dockerConfig = config.Docker.config;
  const container = buildah('from', '--pull-never', IMAGE);
  t.teardown(() => {
    spawnSync('buildah', ['rm', container]);
  });

  t.test('the image: size, user, entry point, health check, no shell', async (t) => {
    const mount = buildah('mount', container);
    const du = spawnSync('du', ['-sb', mount], { encoding: 'utf8' });
    buildah('umount', container);
    const size = Number(du.stdout.split('\t')[0]);
    console.log(`image ${IMAGE}: ${mib(size)} uncompressed (target ${mib(SIZE_TARGET)})`);
    t.ok(size > 0 && size <= SIZE_TARGET, `image size ${mib(size)}, expected at most ${mib(SIZE_TARGET)}`);
    t.equal(dockerConfig.User, '10001:10001', 'runs as the numeric non-root user 10001:10001');
    t.same(dockerConfig.Entrypoint, ['/usr/bin/tini', '--', '/usr/local/bin/node', '--max-semi-space-size=4', '/app/bin/remora.js'], 'tini is PID 1 and runs remora, its main thread\'s young generation capped');
    t.same(dockerConfig.Cmd, ['run', '--config', '/etc/remora/remora.yaml'], 'the default command runs the bundled sidecar config');
    t.same(Object.keys(dockerConfig.ExposedPorts ?? {}).sort(), ['15006/tcp', '9902/tcp'], 'exposes the listener and the probes port only');
    t.equal(dockerConfig.Healthcheck?.Test?.[0], 'CMD', 'has a HEALTHCHECK in exec form');
    const shell = spawnSync('buildah', ['run', '--isolation', 'chroot', container, '--', '/bin/sh', '-c', 'true'], { encoding: 'utf8' });
    t.not(shell.status, 0, 'has no shell (/bin/sh does not run)');
    const node = spawnSync('buildah', ['run', '--isolation', 'chroot', container, '--', '/usr/local/bin/node', '--version'], { encoding: 'utf8' });
    t.match(node.stdout.trim(), /^v24\./, `runs Node 24 (got ${JSON.stringify(node.stdout.trim())}, ${node.stderr})`);
  });

  t.test('remora run as the manifests run it: ready, healthy, proxying, idle RSS, SIGTERM drain', async (t) => {
    let slowStarted = false;
    const app = http.createServer((req, res) => {
      if (req.url === '/slow') {
        slowStarted = true;
        setTimeout(() => res.end('slow done'), 1500);
        return;
      }
      res.setHeader('x-app', 'demo');
      res.end(`app saw ${req.method} ${req.url}`);
    });
    await new Promise<void>((resolve) => app.listen(8080, '127.0.0.1', resolve));
    t.teardown(() => new Promise<void>((resolve) => app.close(() => resolve())));

    const sidecar = run(container, [...dockerConfig.Entrypoint!, ...dockerConfig.Cmd!]);
    t.teardown(() => stop(sidecar, 'SIGKILL'));
    await until('admin /ready 200 on 127.0.0.1:9901', async () => (await request(9901, { path: '/ready', agent: false })).status === 200, 60_000, sidecar.output);
    t.pass('admin /ready answers 200');

    const health = dockerConfig.Healthcheck!.Test!.slice(1);
    const check = spawnSync('buildah', ['run', '--isolation', 'chroot', container, '--', ...health], { encoding: 'utf8' });
    t.equal(check.status, 0, `the HEALTHCHECK command (${health.join(' ')}) exits 0 (output: ${check.stdout}${check.stderr})`);

    const r = await request(15006, { path: '/hello?x=1', agent: false });
    t.equal(r.status, 200, 'a request through listener inbound (15006) gets 200');
    t.equal(r.text, 'app saw GET /hello?x=1', 'from the app on 127.0.0.1:8080, path and query intact');
    const probes = await request(9902, { path: '/ready', agent: false });
    t.equal(probes.status, 200, 'the probes port (9902) answers /ready 200');
    // The worker records a request just after writing its last bytes; on a loaded
    // machine the client can read them (and ask for /metrics) before the worker thread
    // runs again: the count may take a moment to show.
    const counted = /^remora_downstream_requests_total\{[^\n]*listener="inbound"[^\n]*\} [1-9]/m;
    let metrics = await request(9902, { path: '/metrics', agent: false });
    for (let i = 0; i < 20 && !counted.test(metrics.text); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      metrics = await request(9902, { path: '/metrics', agent: false });
    }
    t.match(metrics.text, counted, `and serves /metrics, which counts that request (${metrics.text.length} bytes)`);
    t.equal((await request(9902, { path: '/config_dump', agent: false })).status, 404, 'the probes port serves nothing else (/config_dump is 404)');

    const nodes = descendants(sidecar.child.pid!, '/usr/local/bin/node');
    t.equal(nodes.length, 1, `one remora node process (pids ${nodes.join(', ')})`);
    const pid = nodes[0];
    t.match(status(pid, 'Uid'), /^10001\s/, `it runs as uid 10001 (Uid: ${status(pid, 'Uid')})`);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const rss = status(pid, 'VmRSS');
    console.log(`idle RSS of remora run (main thread and 2 workers): ${rss}`);
    t.match(rss, /^\d+ kB$/, `idle RSS read from /proc/${pid}/status (${rss})`);

    // SIGTERM to tini, as the kubelet or `docker stop` sends it: the drain lets a request
    // in flight finish, then remora exits 0.
    const tini = descendants(sidecar.child.pid!, '/usr/bin/tini')[0];
    const inflight = request(15006, { path: '/slow', agent: false });
    await until('the slow request to reach the app', async () => slowStarted, 5000, sidecar.output);
    const started = Date.now();
    process.kill(tini, 'SIGTERM');
    const slow = await inflight;
    t.equal(slow.status, 200, 'a request in flight at SIGTERM completes');
    t.equal(slow.text, 'slow done', 'with its whole body');
    const code = await Promise.race([sidecar.exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 30_000))]);
    t.equal(code, 0, `remora exits 0 after the drain (exit ${String(code)} after ${Date.now() - started} ms)`);
    t.match(sidecar.output(), /drain/i, 'its log tells of the drain');
  });

  t.test('remora control-plane from the same image', async (t) => {
    const groups = repoPath('deploy/k8s/control-plane/groups');
    const cp = run(
      container,
      ['/usr/bin/tini', '--', '/usr/local/bin/node', '/app/bin/remora.js', 'control-plane', '--config-dir', '/etc/remora-control-plane', '--listen', '127.0.0.1:18000', '--management', '127.0.0.1:18001'],
      [`${groups}:/etc/remora-control-plane:ro`],
    );
    t.teardown(() => stop(cp, 'SIGKILL'));
    await until('the ADS port 18000 to accept', () => connects(18000), 30_000, cp.output);
    t.pass('the ADS port (18000) accepts connections: the group files loaded');
    t.ok(await connects(18001), 'the management API (18001) accepts connections');
    const tini = descendants(cp.child.pid!, '/usr/bin/tini')[0];
    process.kill(tini, 'SIGTERM');
    const code = await Promise.race([cp.exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 15_000))]);
    t.equal(code, 0, `SIGTERM ends it with exit 0 (got ${String(code)}; output: ${cp.output().slice(-400)})`);
  });
}
