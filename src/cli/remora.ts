// The `remora` command line: run from a config file, run as a zero-config reverse
// proxy, or validate a config file. Unknown flags are errors.

import { parseArgs } from 'node:util';
import { formatErrors, loadConfigFile } from '../config/load.js';
import { validateConfig } from '../config/validate.js';
import type { RemoraConfig } from '../config/types.js';
import { RemoraError } from '../core/errors.js';
import { REMORA_VERSION } from '../core/version.js';
import { createLogger } from '../core/log.js';
import { startRemora } from '../main/remora.js';

const HELP = `remora — a sidecar HTTP proxy

Usage:
  remora run --config FILE [--workers N]
      Run from a YAML or JSON config file (reference: docs/config.md).

  remora run --listen HOST:PORT --upstream HOST:PORT[,HOST:PORT...]
             [--workers N] [--admin HOST:PORT] [--lb round_robin|least_request|random]
      Zero-config reverse proxy: one listener, one cluster of the given upstreams.
      Admin defaults to 127.0.0.1:9901.

  remora validate FILE
      Check a config file. Exit 0 if valid, else print every error by path, exit 1.

  remora --help | --version

Options:
  -c, --config FILE     config file (.yaml, .yml or .json)
  -w, --workers N       worker threads (default: config, else available cores)
      --listen H:P      listener address for the zero-config mode
      --upstream LIST   comma-separated upstream endpoints for the zero-config mode
      --admin H:P       admin listener for the zero-config mode
      --lb POLICY       load-balancing policy for the zero-config mode

Examples:
  remora run --listen 127.0.0.1:10000 --upstream 127.0.0.1:8080
  remora validate deploy/examples/remora.yaml
`;

export async function main(argv: string[]): Promise<number> {
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
      const result = loadConfigFile(rest[0]);
      if (result.ok) {
        process.stdout.write(`${rest[0]}: valid\n`);
        return 0;
      }
      process.stderr.write(`${formatErrors(rest[0], result.errors)}\n`);
      return 1;
    }
    case 'run':
      if (rest.length > 0) return usage(`unexpected argument "${rest[0]}"`);
      return run(values);
    case undefined:
      process.stdout.write(HELP);
      return 2;
    default:
      return usage(`unknown command "${command}"`);
  }
}

interface RunFlags {
  config?: string;
  workers?: string;
  listen?: string;
  upstream?: string;
  admin?: string;
  lb?: string;
}

async function run(flags: RunFlags): Promise<number> {
  let workers: number | undefined;
  if (flags.workers !== undefined) {
    workers = Number(flags.workers);
    if (!Number.isInteger(workers) || workers < 1 || workers > 256) return usage('--workers must be an integer 1..256');
  }
  let config: RemoraConfig;
  let source: string;
  if (flags.config !== undefined) {
    if (flags.listen || flags.upstream || flags.admin || flags.lb) {
      return usage('--config cannot be combined with --listen/--upstream/--admin/--lb');
    }
    const result = loadConfigFile(flags.config);
    if (!result.ok) {
      process.stderr.write(`${formatErrors(flags.config, result.errors)}\n`);
      return 1;
    }
    config = result.config;
    source = flags.config;
  } else if (flags.listen !== undefined && flags.upstream !== undefined) {
    const raw = quickConfig(flags.listen, flags.upstream, flags.admin ?? '127.0.0.1:9901', flags.lb ?? 'round_robin');
    if (typeof raw === 'string') return usage(raw);
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
  log.info(
    { source, version: remora.snapshot.version, workers: config.workers, listeners: remora.snapshot.boundPorts, admin: remora.adminPort },
    'remora ready',
  );
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'stopping');
      remora
        .stop()
        .then(() => {
          log.info('stopped');
          log.flush();
          resolve(0);
        })
        .catch((err: unknown) => {
          log.error({ err }, 'stop failed');
          log.flush();
          resolve(1);
        });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // SIGHUP re-reads the config file; a bad file is rejected whole and the running
    // config keeps serving.
    const configFile = flags.config;
    if (configFile !== undefined) {
      process.on('SIGHUP', () => {
        const result = loadConfigFile(configFile);
        if (!result.ok) {
          log.error({ file: configFile, errors: result.errors }, 'config reload rejected; the running config keeps serving');
          return;
        }
        const next = workers !== undefined ? Object.freeze({ ...result.config, workers }) : result.config;
        remora.reload(next).catch((err: unknown) => log.error({ err }, 'config reload failed'));
      });
    }
  });
}

/** The raw config for `run --listen --upstream`, or an error message. */
function quickConfig(listen: string, upstreams: string, admin: string, lb: string): Record<string, unknown> | string {
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
    clusters: [{ name: 'upstream', lb_policy: lb, endpoints }],
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
