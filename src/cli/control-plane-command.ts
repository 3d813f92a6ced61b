// `remora control-plane`: the reference xDS control plane (docs/control-plane.md).
// Serves ADS to sidecars from a directory of Remora config files, one per node group,
// and a small management API (proto/remora/control/v1/control.proto).

import { parseArgs } from 'node:util';
import { createLogger } from '../core/log.js';
import { DEFAULT_LISTEN, DEFAULT_MANAGEMENT, startControlPlane } from '../control-plane/server.js';

const HELP = `remora control-plane — a reference xDS (ADS, state of the world) control plane

Usage:
  remora control-plane --config-dir DIR [--listen HOST:PORT] [--management HOST:PORT]

  DIR holds Remora config files, one per node group: <group>.yaml, .yml or .json. A node
  is served the group named after its node.cluster, else its node.id, else "default".
  Files are watched; a changed file becomes the group's next version, pushed to its nodes.
  An invalid file is rejected (every error logged) and its group keeps its last snapshot.
  Groups named grpc-* serve gRPC API listeners, for proxyless gRPC clients (xds:///NAME).

Options:
  -d, --config-dir DIR     group configs (required)
  -l, --listen H:P         ADS (xDS) address (default ${DEFAULT_LISTEN})
  -m, --management H:P     management API (ListNodes, PushSnapshot; unauthenticated,
                           keep it on loopback) (default ${DEFAULT_MANAGEMENT})
  -h, --help

SIGTERM and SIGINT end every ADS stream (nodes reconnect to another replica) and exit 0.
`;

export async function controlPlaneCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        'config-dir': { type: 'string', short: 'd' },
        listen: { type: 'string', short: 'l' },
        management: { type: 'string', short: 'm' },
      },
    }));
  } catch (err) {
    return usage(err instanceof Error ? err.message : String(err));
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const configDir = values['config-dir'];
  if (configDir === undefined || configDir === '') return usage('control-plane needs --config-dir DIR');

  const log = createLogger({ component: 'control-plane' });
  let cp;
  try {
    cp = await startControlPlane({ configDir, listen: values.listen, management: values.management, log });
  } catch (err) {
    process.stderr.write(`remora control-plane: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
    log.flush();
    return 1;
  }
  log.info(
    {
      config_dir: configDir,
      listen: cp.listenPort,
      management: cp.managementPort,
      identifier: cp.identifier,
      groups: Object.fromEntries(cp.groups().map((g) => [g.name, g.snapshot?.version ?? null])),
    },
    'control plane ready',
  );

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const on = (s: NodeJS.Signals): void => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(s);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
  log.info({ signal }, 'control plane stopping');
  await cp.stop();
  log.flush();
  return 0;
}

function usage(message: string): number {
  process.stderr.write(`remora control-plane: ${message}\nRun "remora control-plane --help" for usage.\n`);
  return 2;
}
