// The `remora` command line: run from a config file, run as a zero-config reverse
// proxy, or validate a config file. Unknown flags are errors.

import { parseArgs } from 'node:util';
import { formatErrors, loadConfigSource } from '../config/load.js';
import { validateBootstrapBase } from '../config/bootstrap-base.js';
import { validateConfig } from '../config/validate.js';
import { uwsCodecErrors } from '../uws/uws.js';
import type { RemoraConfig, XdsBootstrap } from '../config/types.js';
import { RemoraError } from '../core/errors.js';
import { REMORA_VERSION } from '../core/version.js';
import { createLogger } from '../core/log.js';
import http from 'node:http';
import { ConfigWatcher } from '../main/config-watch.js';
import { startRemora, type RunningRemora } from '../main/remora.js';
import type { Logger } from '../core/log.js';

const HELP = `remora — a sidecar HTTP proxy

Usage:
  remora run --config FILE [--workers N]
      Run from a YAML or JSON config file (reference: docs/config.md).

  remora run --listen HOST:PORT --upstream HOST:PORT[,HOST:PORT...]
             [--workers N] [--admin HOST:PORT] [--lb round_robin|least_request|random]
             [--upstream-protocol http1|http2] [--otlp-endpoint URL] [--trace-sampling PCT]
      Zero-config reverse proxy: one listener (HTTP/1.1 and h2c), one cluster of the
      given upstreams (HTTP/2 for gRPC services with --upstream-protocol http2).
      Admin defaults to 127.0.0.1:9901.

  remora validate FILE
      Check a config file or an xDS bootstrap (a file with an "xds" block): whatever
      "run --config FILE" accepts. Exit 0 if valid, else print every error by path, exit 1.

  remora wait-ready [--admin HOST:PORT] [--timeout SECONDS]
      Wait until Remora's /ready answers 200 (default admin 127.0.0.1:9901, 60 s).
      Exit 0 when ready, 1 on timeout: for an app container's startup hook.

Signals: SIGTERM drains (drain.delay_ms, then drain.timeout_ms) and exits 0; SIGINT
drains without the delay; a second signal stops at once; SIGHUP reloads the config
file (it is also reloaded when it changes on disk).

  remora control-plane --config-dir DIR [--listen HOST:PORT] [--management HOST:PORT]
      Run the reference xDS control plane (docs/control-plane.md): serves the Remora
      config files in DIR to sidecars over ADS.

  remora --help | --version

Options:
  -c, --config FILE     config file (.yaml, .yml or .json)
  -w, --workers N       worker threads (default: config, else available cores)
      --listen H:P      listener address for the zero-config mode
      --upstream LIST   comma-separated upstream endpoints for the zero-config mode
      --admin H:P       admin listener for the zero-config mode
      --lb POLICY       load-balancing policy for the zero-config mode
      --upstream-protocol http1|http2
      --otlp-endpoint URL   zero-config mode: export spans over OTLP to URL (also turned on by
                            OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
      --otlp-protocol grpc|http/protobuf|http/json
      --trace-sampling PCT  zero-config mode: trace PCT % of new traces (callers' decisions kept)
      --service-name NAME   zero-config mode: service.name of the spans
                        HTTP version spoken to the upstreams (default http1)
      --timeout S       seconds wait-ready waits (default 60)

Examples:
  remora run --listen 127.0.0.1:10000 --upstream 127.0.0.1:8080
  remora validate deploy/examples/remora.yaml
`;

export async function main(argv: string[]): Promise<number> {
  // The control plane has its own flags (src/cli/control-plane-command.ts).
  // Loaded only when used: gRPC and the protos cost memory a file-configured sidecar does
  // not need to pay.
  if (argv[0] === 'control-plane') return (await import('./control-plane-command.js')).controlPlaneCommand(argv.slice(1));
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
        config: { type: 'string', short: 'c' },
        workers: { type: 'string', short: 'w' },
        listen: { type: 'string' },
        upstream: { type: 'string' },
        admin: { type: 'string' },
        lb: { type: 'string' },
        'upstream-protocol': { type: 'string' },
        'otlp-endpoint': { type: 'string' },
        'otlp-protocol': { type: 'string' },
        'trace-sampling': { type: 'string' },
        'service-name': { type: 'string' },
        timeout: { type: 'string' },
      },
    });
  } catch (err) {
    return usage(err instanceof Error ? err.message : String(err));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${REMORA_VERSION}\n`);
    return 0;
  }
  const [command, ...rest] = positionals;
  switch (command) {
    case 'validate': {
      if (rest.length !== 1) return usage('validate takes exactly one FILE');
      return validate(rest[0]);
    }
    case 'run':
      if (rest.length > 0) return usage(`unexpected argument "${rest[0]}"`);
      return run(values);
    case 'wait-ready':
      if (rest.length > 0) return usage(`unexpected argument "${rest[0]}"`);
      return waitReady(values);
    case undefined:
      process.stdout.write(HELP);
      return 2;
    default:
      return usage(`unknown command "${command}"`);
  }
}

/** `remora validate FILE`: accepts what `run --config FILE` accepts, a config file or an
 *  xDS bootstrap (whose process-wide fields are checked too: they are otherwise checked
 *  only when the first config arrives). */
function validate(file: string): number {
  const result = loadConfigSource(file);
  let errors = result.ok ? [] : result.errors;
  if (result.ok && result.kind === 'xds') {
    const base = validateBootstrapBase(result.base);
    if (!base.ok) errors = base.errors;
  }
  // What this runtime can serve: `codec: uws` only where its native build loads.
  if (result.ok && result.kind === 'file') errors = uwsCodecErrors(result.config.listeners);
  if (errors.length > 0) {
    process.stderr.write(`${formatErrors(file, errors)}\n`);
    return 1;
  }
  if (result.ok && result.kind === 'xds') {
    const { servers, node } = result.xds;
    process.stdout.write(
      `${file}: valid xDS bootstrap: control plane ${servers.join(', ')}; node "${node.id}" in cluster "${node.cluster}"` +
        `; listeners and clusters come from the control plane\n`,
    );
  } else {
    process.stdout.write(`${file}: valid\n`);
  }
  return 0;
}

interface RunFlags {
  config?: string;
  workers?: string;
  listen?: string;
  upstream?: string;
  admin?: string;
  lb?: string;
  'upstream-protocol'?: string;
  'otlp-endpoint'?: string;
  'otlp-protocol'?: string;
  'trace-sampling'?: string;
  'service-name'?: string;
}

/** Quick-mode tracing flags as a root `tracing` block, or null without any (and without
 *  OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT in the environment, which turns tracing on too). */
function quickTracing(flags: RunFlags): Record<string, unknown> | null {
  const env = process.env;
  const any = flags['otlp-endpoint'] !== undefined || flags['otlp-protocol'] !== undefined || flags['trace-sampling'] !== undefined || flags['service-name'] !== undefined;
  if (!any && !env.OTEL_EXPORTER_OTLP_ENDPOINT && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return null;
  const otlp: Record<string, unknown> = {};
  if (flags['otlp-endpoint'] !== undefined) otlp.endpoint = flags['otlp-endpoint'];
  if (flags['otlp-protocol'] !== undefined) otlp.protocol = flags['otlp-protocol'];
  const tracing: Record<string, unknown> = { otlp };
  if (flags['service-name'] !== undefined) tracing.service_name = flags['service-name'];
  if (flags['trace-sampling'] !== undefined) {
    // A share of new traces, decided from the trace id; callers' decisions are kept.
    tracing.sampler = 'parentbased_traceidratio';
    tracing.sampler_arg = Number(flags['trace-sampling']) / 100;
  }
  return tracing;
}

const TRACING_FLAGS = ['otlp-endpoint', 'otlp-protocol', 'trace-sampling', 'service-name'] as const;

async function run(flags: RunFlags): Promise<number> {
  let workers: number | undefined;
  if (flags.workers !== undefined) {
    workers = Number(flags.workers);
    if (!Number.isInteger(workers) || workers < 1 || workers > 256) return usage('--workers must be an integer 1..256');
  }
  let config: RemoraConfig;
  let source: string;
  if (flags.config !== undefined) {
    if (flags.listen || flags.upstream || flags.admin || flags.lb || flags['upstream-protocol'] || TRACING_FLAGS.some((f) => flags[f] !== undefined)) {
      return usage('--config cannot be combined with --listen/--upstream/--admin/--lb/--upstream-protocol or the tracing flags (set "tracing" in the file)');
    }
    const result = loadConfigSource(flags.config);
    if (!result.ok) {
      process.stderr.write(`${formatErrors(flags.config, result.errors)}\n`);
      return 1;
    }
    if (result.kind === 'xds') {
      const base = workers !== undefined ? { ...result.base, workers } : result.base;
      return runXds(flags.config, result.xds, base);
    }
    config = result.config;
    source = flags.config;
  } else if (flags.listen !== undefined && flags.upstream !== undefined) {
    const raw = quickConfig(flags.listen, flags.upstream, flags.admin ?? '127.0.0.1:9901', flags.lb ?? 'round_robin', flags['upstream-protocol'] ?? 'http1');
    if (typeof raw === 'string') return usage(raw);
    const tracing = quickTracing(flags);
    if (tracing !== null) raw.tracing = tracing;
    const result = validateConfig(raw);
    if (!result.ok) {
      process.stderr.write(`${formatErrors('command line', result.errors)}\n`);
      return 1;
    }
    config = result.config;
    source = 'command line';
  } else {
    return usage('run needs --config FILE, or --listen and --upstream');
  }
  if (workers !== undefined) config = Object.freeze({ ...config, workers });

  const log = createLogger({ component: 'main' });
  let remora;
  try {
    remora = await startRemora(config, log);
  } catch (err) {
    const message = err instanceof RemoraError ? `${err.code}: ${err.message}` : String(err);
    process.stderr.write(`remora: cannot start: ${message}\n`);
    log.flush();
    return 1;
  }
  if (stoppedWhileStarting(remora, log)) return 0;
  log.info(
    {
      source,
      version: remora.snapshot.version,
      workers: config.workers,
      listeners: remora.snapshot.boundPorts,
      admin: remora.adminPort,
      ...(remora.probesPort !== null ? { probes: remora.probesPort } : {}),
    },
    'remora ready',
  );
  const configFile = flags.config;
  const watcher =
    configFile !== undefined
      ? new ConfigWatcher(configFile, remora, log, (c) => (workers !== undefined ? Object.freeze({ ...c, workers }) : c))
      : null;
  watcher?.start();
  return serve(remora, log, (signal) => {
    if (watcher === null) log.warn({ signal }, 'SIGHUP ignored: no config file (zero-config mode)');
    else watcher.reloadNow('SIGHUP');
  }).finally(() => watcher?.stop());
}

/** xDS mode: listeners and clusters from a control plane (src/main/xds-source.ts). */
async function runXds(file: string, xds: XdsBootstrap, base: Record<string, unknown>): Promise<number> {
  const log = createLogger({ component: 'main' });
  log.info({ bootstrap: file, servers: xds.servers, node: xds.node.id }, 'xDS mode: fetching the config from the control plane');
  // Until Remora runs, a signal ends the wait for the first config (exit 0); from then
  // on serve() handles signals as for a file-configured Remora.
  const stop = new AbortController();
  const onSignal = (signal: string): void => {
    log.info({ signal }, 'stop requested');
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let run;
  try {
    const { startFromXds } = await import('../main/xds-source.js');
    run = await startFromXds(xds, base, log, stop.signal);
  } catch (err) {
    const message = err instanceof RemoraError ? `${err.code}: ${err.message}` : String(err);
    process.stderr.write(`remora: cannot start: ${message}\n`);
    log.flush();
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (run === null) {
    log.info('stopped');
    log.flush();
    return 0;
  }
  const remora = run.remora;
  if (stoppedWhileStarting(remora, log)) return 0;
  log.info(
    {
      source: `xds (${run.startedFrom})`,
      version: remora.snapshot.version,
      workers: remora.snapshot.config.workers,
      listeners: remora.snapshot.boundPorts,
      admin: remora.adminPort,
      ...(remora.probesPort !== null ? { probes: remora.probesPort } : {}),
    },
    'remora ready',
  );
  return serve(remora, log, () => log.warn('SIGHUP ignored: the config comes from the control plane'));
}

/** Signals for a running Remora; resolves 0 when it has stopped. SIGTERM drains with the
 *  delay (load balancers first stop sending), SIGINT (Ctrl-C) without it, a second
 *  signal stops at once. */
async function serve(remora: RunningRemora, log: Logger, onHup: (signal: string) => void): Promise<number> {
  let signals = 0;
  const onSignal = (signal: string): void => {
    signals++;
    if (signals === 1) {
      void remora.shutdown(signal, signal === 'SIGTERM');
      return;
    }
    log.warn({ signal }, 'second signal: stopping now');
    void remora.stop(0);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onHup);
  await remora.finished;
  log.info('stopped');
  log.flush();
  return 0;
}

/** True when a stop came while Remora started (POST /quitquitquit before the workers
 *  were up): it has already stopped, so it is never announced as ready. */
function stoppedWhileStarting(remora: RunningRemora, log: Logger): boolean {
  if (remora.lifecycle.phase !== 'stopped') return false;
  log.info('stopped');
  log.flush();
  return true;
}

/** `remora wait-ready`: polls the admin /ready until it answers 200. */
async function waitReady(flags: { admin?: string; timeout?: string }): Promise<number> {
  const target = flags.admin ?? '127.0.0.1:9901';
  const m = /^(.+):(\d+)$/.exec(target);
  if (m === null) return usage(`--admin must be HOST:PORT (got "${target}")`);
  const host = m[1].replace(/^\[|\]$/g, '');
  const timeoutS = flags.timeout !== undefined ? Number(flags.timeout) : 60;
  if (!(timeoutS > 0)) return usage(`--timeout must be a positive number of seconds (got "${flags.timeout}")`);
  const deadline = Date.now() + timeoutS * 1000;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    last = await probeReady(host, Number(m[2]));
    if (last === 'ready') return 0;
    await new Promise((r) => setTimeout(r, 100));
  }
  process.stderr.write(`remora wait-ready: ${target} not ready after ${timeoutS} s (${last})\n`);
  return 1;
}

function probeReady(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: '/ready', timeout: 1000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? 'ready' : `${res.statusCode}: ${body.trim()}`));
      res.on('error', (err) => resolve(err.message));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => resolve(err.message));
  });
}
/** The raw config for `run --listen --upstream`, or an error message. */
function quickConfig(listen: string, upstreams: string, admin: string, lb: string, protocol: string): Record<string, unknown> | string {
  const l = splitHostPort(listen);
  if (typeof l === 'string') return `--listen: ${l}`;
  const a = splitHostPort(admin);
  if (typeof a === 'string') return `--admin: ${a}`;
  const endpoints = [];
  for (const item of upstreams.split(',')) {
    const e = splitHostPort(item.trim());
    if (typeof e === 'string') return `--upstream "${item}": ${e}`;
    endpoints.push({ address: e.host, port: e.port });
  }
  return {
    admin: { address: a.host, port: a.port },
    listeners: [
      {
        name: 'main',
        address: l.host,
        port: l.port,
        virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'all', match: { prefix: '/' }, route: { cluster: 'upstream' } }] }],
      },
    ],
    clusters: [{ name: 'upstream', lb_policy: lb, protocol, endpoints }],
  };
}

function splitHostPort(text: string): { host: string; port: number } | string {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(text);
  if (m === null) return 'expected HOST:PORT';
  return { host: m[1], port: Number(m[2]) };
}

function usage(message: string): number {
  process.stderr.write(`remora: ${message}\nRun "remora --help" for usage.\n`);
  return 2;
}
