// The `remora` command line as a user runs it (bin/remora.js in a child process):
// validate, --help, usage errors, the zero-config `run --listen --upstream` mode,
// startup failures, and the admin endpoints of a running proxy.

import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { admin, BIN, namedUpstream, request, simpleConfig, startRemora } from '../helpers/remora.js';
import { freePort } from '../../src/main/ports.js';

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running `remora` child with its output so far. */
interface Cli {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<Finished>;
  /** Resolves the "remora ready" log record, or rejects if the process exits first. */
  ready(ms?: number): Promise<{ listeners: Record<string, number>; admin: number }>;
  stop(signal?: NodeJS.Signals): Promise<Finished>;
}

function cli(args: string[], env: Record<string, string> = {}): Cli {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, REMORA_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<Finished>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  const readyRe = /\{[^\n]*"msg":"remora ready"[^\n]*\}/;
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    ready: (ms = 15_000) =>
      new Promise((resolve, reject) => {
        const deadline = Date.now() + ms;
        const poll = setInterval(() => {
          const m = readyRe.exec(stdout);
          if (m) {
            clearInterval(poll);
            resolve(JSON.parse(m[0]) as { listeners: Record<string, number>; admin: number });
          } else if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
            clearInterval(poll);
            reject(new Error(`remora did not become ready (exit ${child.exitCode}); stdout:\n${stdout}\nstderr:\n${stderr}`));
          }
        }, 20);
      }),
    /** SIGINT drains without drain.delay_ms (5 s by default with SIGTERM). */
    async stop(signal: NodeJS.Signals = 'SIGINT') {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
        const done = await exited;
        clearTimeout(timer);
        return done;
      }
      return exited;
    },
  };
}

/** Runs `remora ARGS` to completion (it must exit within `ms`). */
async function runToExit(args: string[], ms = 20_000, env: Record<string, string> = {}): Promise<Finished> {
  const c = cli(args, env);
  const timer = setTimeout(() => c.child.kill('SIGKILL'), ms);
  const done = await c.exited;
  clearTimeout(timer);
  return done;
}

/** A temp directory removed at teardown; `file(name, content)` writes into it. */
function tempFiles(t: { teardown(fn: () => void): void }): (name: string, content: unknown) => string {
  const dir = mkdtempSync(join(tmpdir(), 'remora-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return (name, content) => {
    const file = join(dir, name);
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    return file;
  };
}


/** A config with three distinct mistakes, each at a known path. */
const badConfig = {
  workers: 0,
  listeners: [
    {
      name: 'main',
      port: 8080,
      virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'missing' } }] }],
    },
  ],
  clusters: [{ name: 'up', lb_policy: 'fastest', endpoints: [{ address: '127.0.0.1', port: 70000 }] }],
};
const badPaths = [
  'workers',
  'listeners[0].virtual_hosts[0].routes[0].route.cluster',
  'clusters[0].lb_policy',
  'clusters[0].endpoints[0].port',
];

t.test('remora validate', async (t) => {
  const file = tempFiles(t);
  const good = file('good.json', simpleConfig([9999]));
  const ok = await runToExit(['validate', good]);
  t.equal(ok.code, 0, 'a valid file exits 0');
  t.match(ok.stdout, /valid/, 'and says it is valid');
  t.equal(ok.stderr, '', 'and prints nothing on stderr');

  const yaml = file(
    'good.yaml',
    'listeners:\n  - name: l\n    port: 0\n    virtual_hosts:\n      - name: v\n        domains: ["*"]\n        routes:\n          - match: { path: /healthz }\n            direct_response: { status: 200 }\n',
  );
  t.equal((await runToExit(['validate', yaml])).code, 0, 'a valid YAML file exits 0');

  const bad = await runToExit(['validate', file('bad.json', badConfig)]);
  t.equal(bad.code, 1, 'an invalid file exits 1');
  t.match(bad.stderr, /4 errors/, 'stderr gives the number of errors');
  for (const path of badPaths) t.ok(bad.stderr.includes(`  ${path}: `), `stderr lists the error at ${path}`);
  t.ok(bad.stderr.endsWith('\n'), 'the error list ends with a newline');

  const yamlBad = await runToExit(['validate', file('bad.yaml', 'listeners: [\n')]);
  t.equal(yamlBad.code, 1, 'a YAML syntax error exits 1');
  t.match(yamlBad.stderr, /\(file\): invalid YAML/, 'and says the YAML is invalid');

  const missing = await runToExit(['validate', join(tmpdir(), 'remora-no-such-file.yaml')]);
  t.equal(missing.code, 1, 'a missing file exits 1');
  t.match(missing.stderr, /file not found/, 'and says the file was not found');

  const noArg = await runToExit(['validate']);
  t.equal(noArg.code, 2, 'validate without FILE is a usage error (exit 2)');
});

t.test('remora validate accepts an xDS bootstrap, as run --config does', async (t) => {
  const file = tempFiles(t);
  const bootstrap = {
    workers: 2,
    admin: { address: '127.0.0.1', port: 9901 },
    probes: { port: 9902 },
    xds: { servers: ['127.0.0.1:18000', 'cp-2.mesh:18000'], node: { id: 'sidecar-1', cluster: 'web' } },
  };
  const ok = await runToExit(['validate', file('bootstrap.json', bootstrap)]);
  t.equal(ok.code, 0, `a valid bootstrap exits 0 (stderr: ${ok.stderr})`);
  t.match(ok.stdout, /valid xDS bootstrap/, `it says the file is an xDS bootstrap (stdout: ${ok.stdout})`);
  t.match(ok.stdout, /127\.0\.0\.1:18000, cp-2\.mesh:18000/, 'it names the control-plane addresses');
  t.match(ok.stdout, /node "sidecar-1" in cluster "web"/, 'it names the node id and cluster');
  t.equal(ok.stderr, '', 'and prints nothing on stderr');

  const yaml = file('bootstrap.yaml', 'xds:\n  servers: ["127.0.0.1:18000"]\n  node: { id: n, cluster: c }\n');
  t.equal((await runToExit(['validate', yaml])).code, 0, 'a minimal YAML bootstrap exits 0');

  const badXds = await runToExit(['validate', file('bad-xds.json', { ...bootstrap, xds: { ...bootstrap.xds, servers: ['no-port'] } })]);
  t.equal(badXds.code, 1, 'a bootstrap with a bad control-plane address exits 1');
  t.ok(badXds.stderr.includes('  xds.servers[0]: '), `the error is given by path xds.servers[0] (stderr: ${badXds.stderr})`);

  const badBase = await runToExit(['validate', file('bad-base.json', { ...bootstrap, admin: { address: '127.0.0.1', port: 70000 } })]);
  t.equal(badBase.code, 1, 'a bootstrap with a bad admin port exits 1 (not only once a control plane answers)');
  t.ok(badBase.stderr.includes('  admin.port: '), `the error is given by path admin.port (stderr: ${badBase.stderr})`);

  const both = await runToExit(['validate', file('both.json', { ...bootstrap, listeners: [] })]);
  t.equal(both.code, 1, 'a bootstrap that also lists listeners exits 1');
  t.ok(both.stderr.includes('  listeners: '), `the error is given by path listeners (stderr: ${both.stderr})`);
});

t.test('bin/remora.js in a checkout that was never built says so in one line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'remora-unbuilt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'bin'));
  copyFileSync(BIN, join(dir, 'bin', 'remora.js'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  const done = await new Promise<Finished>((resolve) => {
    const child = spawn(process.execPath, [join(dir, 'bin', 'remora.js'), '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  t.equal(done.code, 1, 'it exits 1');
  t.equal(done.stderr, 'remora: not built yet: run npm run build (dist/src/cli/remora.js is missing)\n', 'stderr is the one line to act on, no stack trace');
  t.equal(done.stdout, '', 'stdout is empty');
});

t.test('remora --help, --version and usage errors', async (t) => {
  const help = await runToExit(['--help']);
  t.equal(help.code, 0, '--help exits 0');
  t.match(help.stdout, /remora run/, '--help mentions run');
  t.match(help.stdout, /remora validate/, '--help mentions validate');

  const version = await runToExit(['--version']);
  t.equal(version.code, 0, '--version exits 0');
  t.match(version.stdout, /^\d+\.\d+\.\d+\n$/, '--version prints a semver');

  const flag = await runToExit(['run', '--bogus-flag']);
  t.equal(flag.code, 2, 'an unknown flag exits 2');
  t.match(flag.stderr, /--bogus-flag/, 'the message names the unknown flag');
  t.match(flag.stderr, /--help/, 'and points at --help');

  const cmd = await runToExit(['frobnicate']);
  t.equal(cmd.code, 2, 'an unknown command exits 2');
  t.match(cmd.stderr, /frobnicate/, 'the message names the unknown command');

  const workers = await runToExit(['run', '--listen', '127.0.0.1:1', '--upstream', '127.0.0.1:2', '--workers', 'many']);
  t.equal(workers.code, 2, 'a non-numeric --workers exits 2');
  t.match(workers.stderr, /--workers/, 'the message names --workers');

  const listen = await runToExit(['run', '--listen', 'nonsense', '--upstream', '127.0.0.1:2']);
  t.equal(listen.code, 2, 'a malformed --listen exits 2');
  t.match(listen.stderr, /--listen/, 'the message names --listen');

  const nothing = await runToExit(['run']);
  t.equal(nothing.code, 2, 'run without a config or --listen/--upstream exits 2');
});

t.test('remora run --listen --upstream: zero-config proxy, round robin', async (t) => {
  const [a, b] = await Promise.all([namedUpstream('a'), namedUpstream('b')]);
  const port = await freePort();
  const c = cli([
    'run',
    '--listen', `127.0.0.1:${port}`,
    '--upstream', `127.0.0.1:${a.port},127.0.0.1:${b.port}`,
    '--workers', '1',
    '--admin', '127.0.0.1:0',
  ]);
  t.teardown(async () => {
    await c.stop();
    await Promise.all([a.close(), b.close()]);
  });
  const ready = await c.ready();
  t.equal(ready.listeners.main, port, 'the listener uses the port given with --listen');
  t.ok(ready.admin > 0, 'the admin server got a port');
  const seq: string[] = [];
  for (let i = 0; i < 6; i++) seq.push((await request(port, { path: `/z/${i}` })).text);
  t.same(seq, ['a', 'b', 'a', 'b', 'a', 'b'], 'requests alternate between the two upstreams');
  const dump = JSON.parse((await admin(ready.admin, '/config_dump')).text) as { config: { workers: number; clusters: { lb_policy: string }[] } };
  t.equal(dump.config.workers, 1, '--workers 1 is applied');
  t.equal(dump.config.clusters[0].lb_policy, 'round_robin', 'round_robin is the default --lb');
  const started = Date.now();
  const done = await c.stop('SIGTERM');
  t.equal(done.code, 0, 'SIGTERM ends it with exit code 0');
  t.ok(Date.now() - started >= 4500, `SIGTERM first waits drain.delay_ms (5 s by default) (took ${Date.now() - started} ms)`);
});

t.test('codec "uws" where uWebSockets.js has no build for the runtime: validate and run reject it by path', async (t) => {
  // REMORA_FAULT_INJECTION=no_uws: as on Node 22 or 24, which the uWS package has no build for.
  const file = tempFiles(t);
  const config = simpleConfig([9999]) as { listeners: Record<string, unknown>[] };
  config.listeners.push({ ...config.listeners[0], name: 'fast', codec: 'uws' });
  const path = file('uws.json', config);
  const noUws = { REMORA_FAULT_INJECTION: 'no_uws' };
  const checked = await runToExit(['validate', path], 20_000, noUws);
  t.equal(checked.code, 1, `validate exits 1 (stdout: ${checked.stdout})`);
  t.ok(checked.stderr.includes('  listeners[1].codec: listener fast: codec "uws" cannot run on Node '), `the error is at listeners[1].codec (stderr: ${checked.stderr})`);
  t.match(checked.stderr, /use codec "strict" \(the default\)/, 'and says what to use instead');
  const run = await runToExit(['run', '--config', path], 20_000, noUws);
  t.equal(run.code, 1, 'run exits 1');
  t.ok(run.stderr.includes('  listeners[1].codec: '), `run lists the same path (stderr: ${run.stderr})`);
  t.notMatch(run.stdout, /remora ready/, 'nothing started');
});

t.test('remora run with an invalid config file exits 1 listing the errors', async (t) => {
  const file = tempFiles(t);
  const bad = await runToExit(['run', '--config', file('bad.json', badConfig)]);
  t.equal(bad.code, 1, 'exit code 1');
  for (const path of badPaths) t.ok(bad.stderr.includes(`  ${path}: `), `stderr lists the error at ${path}`);
  t.notMatch(bad.stdout, /remora ready/, 'nothing started');
});

t.test('remora run when the listener port is in use fails clearly', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const port = (blocker.address() as net.AddressInfo).port;
  const up = await namedUpstream('a');
  t.teardown(() => up.close());
  const res = await runToExit(['run', '--listen', `127.0.0.1:${port}`, '--upstream', `127.0.0.1:${up.port}`, '--workers', '2', '--admin', '127.0.0.1:0']);
  t.not(res.code, 0, `a listener port in use gives a non-zero exit (got ${res.code})`);
  t.equal(res.signal, null, 'the process exits by itself, not by a signal');
  t.match(res.stderr, new RegExp(`cannot bind 127\\.0\\.0\\.1:${port}`), 'stderr names the address that cannot be bound');
  t.match(res.stderr, /in use/, 'stderr says why');
  t.notMatch(res.stdout, /remora ready/, 'it never reported ready');
});

t.test('remora run when the admin port is in use fails clearly', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const adminPort = (blocker.address() as net.AddressInfo).port;
  const port = await freePort();
  const res = await runToExit(['run', '--listen', `127.0.0.1:${port}`, '--upstream', '127.0.0.1:9', '--workers', '1', '--admin', `127.0.0.1:${adminPort}`]);
  t.equal(res.code, 1, 'an admin port in use exits 1');
  t.match(res.stderr, new RegExp(`admin cannot bind 127\\.0\\.0\\.1:${adminPort}`), 'stderr names the admin address');
});

t.test('remora run when a worker dies during startup exits 1 instead of retrying forever', async (t) => {
  const port = await freePort();
  const c = cli(['run', '--listen', `127.0.0.1:${port}`, '--upstream', '127.0.0.1:9', '--workers', '2', '--admin', '127.0.0.1:0'], {
    REMORA_FAULT_INJECTION: 'worker_start',
  });
  const timer = setTimeout(() => c.child.kill('SIGKILL'), 15_000);
  const res = await c.exited;
  clearTimeout(timer);
  t.equal(res.signal, null, 'the process exits by itself (it was not killed after hanging)');
  t.equal(res.code, 1, 'exit code 1');
  t.match(res.stderr, /REMORA_ERR_WORKER: worker failed to start: injected worker startup failure/, 'stderr says a worker failed to start, and why');
  t.notMatch(res.stdout, /remora ready/, 'it never reported ready');
});

t.test('admin endpoints', async (t) => {
  const up = await namedUpstream('a');
  const config = simpleConfig([up.port], { workers: 2 });
  const remora = await startRemora(config);
  t.teardown(async () => {
    await remora.stop();
    await up.close();
  });
  const port = remora.adminPort;

  const ready = await admin(port, '/ready');
  t.equal(ready.status, 200, '/ready is 200 once every worker listens');
  const live = await admin(port, '/live');
  t.equal(live.status, 200, '/live is 200');

  const dumpRes = await admin(port, '/config_dump');
  t.equal(dumpRes.status, 200, '/config_dump is 200');
  t.match(String(dumpRes.headers['content-type']), /application\/json/, '/config_dump is JSON');
  const dump = JSON.parse(dumpRes.text) as {
    version: number;
    bound_ports: Record<string, number>;
    config: {
      workers: number;
      listeners: { virtual_hosts: { routes: { route: { timeout_ms: number } }[] }[] }[];
      clusters: { connect_timeout_ms: number; idle_timeout_ms: number; max_connections_per_endpoint: number; lb_policy: string }[];
    };
  };
  t.equal(dump.version, 1, 'config version 1');
  t.equal(dump.bound_ports.main, remora.ports.main, 'bound_ports resolves the listener port 0');
  t.equal(dump.config.workers, 2, 'the effective config has workers: 2');
  t.equal(dump.config.clusters[0].connect_timeout_ms, 500, 'a configured value is shown');
  t.equal(dump.config.clusters[0].idle_timeout_ms, 60_000, 'idle_timeout_ms default 60000 is filled in');
  t.equal(dump.config.clusters[0].max_connections_per_endpoint, 1024, 'max_connections_per_endpoint default 1024 is filled in');
  t.equal(dump.config.listeners[0].virtual_hosts[0].routes[0].route.timeout_ms, 15_000, 'route timeout_ms default 15000 is filled in');

  await request(remora.ports.main, { path: '/warm' });
  const clustersRes = await admin(port, '/clusters');
  t.equal(clustersRes.status, 200, '/clusters is 200');
  const clusters = JSON.parse(clustersRes.text) as {
    clusters: { name: string; lb_policy: string; endpoints: { address: string; port: number; health: string; connections: number }[] }[];
  };
  t.equal(clusters.clusters.length, 1, 'one cluster');
  t.equal(clusters.clusters[0].name, 'up', 'cluster name');
  t.same(
    clusters.clusters[0].endpoints.map((e) => [e.address, e.port, e.health]),
    [['127.0.0.1', up.port, 'healthy']],
    'the endpoint is listed with its address, port and health',
  );
  t.ok(clusters.clusters[0].endpoints[0].connections >= 1, 'the endpoint shows the pooled connection after a request');

  const unknown = await admin(port, '/nope');
  t.equal(unknown.status, 404, 'an unknown admin path is 404');
  t.match(unknown.text, /GET \/ready/, 'the 404 lists the available paths');
  for (const inherited of ['/constructor', '/toString', '/__proto__']) {
    t.equal((await admin(port, inherited)).status, 404, `${inherited} (an Object property name) is an unknown path, not a 500`);
  }
  const getOnPost = await admin(port, '/debug/crash_worker');
  t.equal(getOnPost.status, 405, 'GET on a POST-only path is 405');
  const postOnGet = await admin(port, '/ready', 'POST');
  t.equal(postOnGet.status, 405, 'POST on a GET-only path is 405');
  const crash = await admin(port, '/debug/crash_worker?slot=0', 'POST');
  t.equal(crash.status, 404, 'fault injection is off without REMORA_FAULT_INJECTION=1');
  t.equal((await admin(port, '/ready')).status, 200, 'and nothing crashed');
});
