// `npm start`: two demo upstreams plus Remora on the bundled example config
// (deploy/examples/remora.yaml), and what to curl.

import { fileURLToPath } from 'node:url';
import { formatErrors, loadConfigFile } from '../config/load.js';
import { createLogger } from '../core/log.js';
import { startDemoUpstream } from '../demo/upstream.js';
import { startRemora } from '../main/remora.js';

const CONFIG = fileURLToPath(new URL('../../../deploy/examples/remora.yaml', import.meta.url));

async function demo(): Promise<void> {
  const loaded = loadConfigFile(CONFIG);
  if (!loaded.ok) {
    process.stderr.write(`${formatErrors(CONFIG, loaded.errors)}\n`);
    process.exit(1);
  }
  const upstreams = await Promise.all([startDemoUpstream('demo-1', 8081), startDemoUpstream('demo-2', 8082)]);
  const log = createLogger({ component: 'main' });
  const remora = await startRemora(loaded.config, log);
  const port = remora.snapshot.boundPorts['ingress'];
  process.stdout.write(`
Remora is running (config ${CONFIG}, ${loaded.config.workers} workers).
Demo upstreams demo-1 and demo-2 listen on 127.0.0.1:8081 and :8082.

Try:
  curl -i http://127.0.0.1:${port}/hello            # round-robin over demo-1, demo-2
  curl -i http://127.0.0.1:${port}/api/users         # prefix rewrite /api -> /v1
  curl -i http://127.0.0.1:${port}/healthz           # direct response from Remora
  curl -i http://127.0.0.1:${port}/nope -H 'host: unknown.example' # 404, flag NR
  curl -s http://127.0.0.1:${remora.adminPort}/ready
  curl -s http://127.0.0.1:${remora.adminPort}/clusters
  curl -s http://127.0.0.1:${remora.adminPort}/metrics
  curl -s http://127.0.0.1:${remora.adminPort}/stats

Ctrl-C stops everything.
`);
  const stop = (): void => {
    remora
      .stop(1000)
      .then(() => Promise.all(upstreams.map((u) => u.close())))
      .finally(() => {
        log.flush();
        process.exit(0);
      });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

demo().catch((err: unknown) => {
  process.stderr.write(`remora demo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
