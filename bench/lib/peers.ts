// Peer proxies the benchmarks compare Remora with: nginx and HAProxy (when installed;
// also as TCP and WebSocket proxies for bench/tunnels.ts), and two Node.js proxies
// (bench/peers/http-proxy.ts, bench/peers/fastify-proxy.ts).
// Config writers are pure (unit-tested); the start functions launch each peer through
// `Processes` (pinned like Remora) and resolve once it accepts connections.

import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import net from 'node:net';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, hasBinary, startPortScript, type Processes } from './harness.js';
import { freePort } from '../../src/main/ports.js';

export type PeerName = 'nginx' | 'haproxy' | 'http-proxy' | 'fastify-proxy';
export const PEERS: readonly PeerName[] = ['nginx', 'haproxy', 'http-proxy', 'fastify-proxy'];

export interface PeerConfigOptions {
  /** Port the peer listens on (127.0.0.1). */
  readonly port: number;
  readonly upstreamPort: number;
  /** nginx worker_processes / HAProxy nbthread. */
  readonly workers: number;
  /** Directory for nginx's pid, logs and temp paths. */
  readonly dir: string;
  /** nginx only: serve TLS on `port` instead of plaintext. */
  readonly tls?: PeerTls;
}

/** PEM file paths for a peer's TLS listener. */
export interface PeerTls {
  readonly cert: string;
  readonly key: string;
  /** CAs for client certificates: set, every client must present a valid one
   *  (`ssl_verify_client on`). */
  readonly ca?: string;
}

/** nginx's `listen` parameters and ssl_* directives for `tls` (empty for plaintext). */
function nginxTls(tls: PeerTls | undefined): { listen: string; directives: string } {
  if (tls === undefined) return { listen: '', directives: '' };
  const client = tls.ca !== undefined ? ` ssl_client_certificate ${tls.ca}; ssl_verify_client on;` : '';
  return { listen: ' ssl', directives: ` ssl_certificate ${tls.cert}; ssl_certificate_key ${tls.key}; ssl_protocols TLSv1.2 TLSv1.3;${client}` };
}

/** nginx: `workers` worker processes, upstream keep-alive (128 idle connections), and
 *  `proxy_max_temp_file_size 0` so that large responses (the 1 MB payload) stream through
 *  memory buffers instead of being spooled to temp files on disk, as every other peer does.
 *  keepalive_requests raised on both sides: nginx's default (1000) closes a client's and an
 *  upstream connection after 1000 requests, which Remora and the other peers never do.
 *  With `tls`: TLS 1.2–1.3 (nginx's default ciphers and session tickets), client
 *  certificates verified when `tls.ca` is set. */
export function nginxConfig(o: PeerConfigOptions): string {
  const d = o.dir;
  const tls = nginxTls(o.tls);
  return (
    `worker_processes ${o.workers};\ndaemon off;\npid ${d}/nginx.pid;\nerror_log ${d}/nginx-error.log;\n` +
    `events { worker_connections 4096; }\nhttp {\n  access_log off;\n  keepalive_requests 10000000;\n` +
    `  client_body_temp_path ${d}; proxy_temp_path ${d}; fastcgi_temp_path ${d}; uwsgi_temp_path ${d}; scgi_temp_path ${d};\n` +
    `  upstream up { server 127.0.0.1:${o.upstreamPort}; keepalive 128; keepalive_requests 10000000; }\n` +
    `  server { listen 127.0.0.1:${o.port}${tls.listen};${tls.directives} location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_max_temp_file_size 0; } }\n}\n`
  );
}

/** HAProxy: `workers` threads, keep-alive both sides, `http-reuse always`. */
export function haproxyConfig(o: PeerConfigOptions): string {
  return (
    `global\n  nbthread ${o.workers}\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  option http-keep-alive\n` +
    `frontend fe\n  bind 127.0.0.1:${o.port}\n  default_backend be\nbackend be\n  http-reuse always\n  server s1 127.0.0.1:${o.upstreamPort}\n`
  );
}


export { freePort };

export async function waitPort(port: number, ms = 10000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} never opened`);
}

export interface RunningPeer {
  readonly name: PeerName;
  readonly port: number;
  readonly pid: number | undefined;
}

/** Why `name` cannot run here, or null when it can (binary or npm package present). */
export function peerMissing(name: PeerName): string | null {
  if (name === 'nginx' || name === 'haproxy') return hasBinary(name) ? null : `${name} not installed`;
  const pkg = name === 'http-proxy' ? 'http-proxy' : '@fastify/http-proxy';
  try {
    createRequire(join(ROOT, 'package.json')).resolve(pkg);
    return null;
  } catch {
    return `npm package ${pkg} not installed (npm install)`;
  }
}

/** Starts peer `name` on `core` in front of 127.0.0.1:`upstreamPort`; `tls` (nginx only)
 *  makes its listener TLS. */
export async function startPeer(
  procs: Processes,
  core: number | string | null,
  name: PeerName,
  upstreamPort: number,
  workers: number,
  dir: string,
  tls?: PeerTls,
): Promise<RunningPeer> {
  if (tls !== undefined && name !== 'nginx') throw new Error(`${name}: TLS listeners are configured for nginx only`);
  if (name === 'nginx' || name === 'haproxy') {
    const port = await freePort();
    const opts = { port, upstreamPort, workers, dir, tls };
    const file = join(dir, name === 'nginx' ? 'nginx.conf' : 'haproxy.cfg');
    writeFileSync(file, name === 'nginx' ? nginxConfig(opts) : haproxyConfig(opts));
    const child = name === 'nginx' ? procs.start(core, 'nginx', ['-c', file, '-p', dir]) : procs.start(core, 'haproxy', ['-f', file, '-db']);
    child.stderr!.on('data', (d: Buffer) => process.stderr.write(`${name}: ${d}`));
    child.stdout!.resume();
    await waitPort(port);
    return { name, port, pid: child.pid };
  }
  const { port, pid } = await startPortScript(procs, core, `peers/${name}`, [String(upstreamPort), '0']);
  return { name, port, pid };
}

/** nginx for the HTTP/2 benchmarks: h2c with prior knowledge on `port` (`listen … http2`),
 *  `/` proxied to the HTTP/1.1 upstream (keep-alive) and `/bench.` to the gRPC upstream
 *  (`grpc_pass`, keep-alive). */
export function nginxH2Config(o: PeerConfigOptions, grpcPort: number): string {
  const d = o.dir;
  return (
    `worker_processes ${o.workers};\ndaemon off;\npid ${d}/nginx.pid;\nerror_log ${d}/nginx-error.log;\n` +
    // keepalive_requests: nginx's default (1000) ends an HTTP/2 connection with GOAWAY
    // after 1000 streams, which h2load does not reconnect from.
    `events { worker_connections 4096; }\nhttp {\n  access_log off;\n  keepalive_requests 10000000;\n` +
    `  client_body_temp_path ${d}; proxy_temp_path ${d}; fastcgi_temp_path ${d}; uwsgi_temp_path ${d}; scgi_temp_path ${d};\n` +
    `  upstream up { server 127.0.0.1:${o.upstreamPort}; keepalive 128; keepalive_requests 10000000; }\n` +
    `  upstream grpcup { server 127.0.0.1:${grpcPort}; keepalive 128; keepalive_requests 10000000; }\n` +
    `  server { listen 127.0.0.1:${o.port} http2; http2_max_concurrent_streams 128;\n` +
    `    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }\n` +
    `    location /bench. { grpc_pass grpc://grpcup; } }\n}\n`
  );
}

/** HAProxy for the HTTP/2 benchmarks: h2c on `port` (`proto h2`), `/` to the HTTP/1.1
 *  upstream and gRPC (`/bench.`) to the gRPC upstream over HTTP/2 (`proto h2`). */
export function haproxyH2Config(o: PeerConfigOptions, grpcPort: number): string {
  return (
    `global\n  nbthread ${o.workers}\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  option http-keep-alive\n` +
    `frontend fe\n  bind 127.0.0.1:${o.port} proto h2\n  use_backend grpc if { path_beg /bench. }\n  default_backend be\n` +
    `backend be\n  http-reuse always\n  server s1 127.0.0.1:${o.upstreamPort}\n` +
    `backend grpc\n  http-reuse always\n  server g1 127.0.0.1:${grpcPort} proto h2\n`
  );
}

/** Starts nginx or HAProxy configured for HTTP/2 (see nginxH2Config, haproxyH2Config). */
export async function startH2Peer(procs: Processes, core: number | string | null, name: 'nginx' | 'haproxy', upstreamPort: number, grpcPort: number, dir: string): Promise<RunningPeer> {
  const port = await freePort();
  const opts = { port, upstreamPort, workers: 1, dir };
  const file = join(dir, name === 'nginx' ? 'nginx-h2.conf' : 'haproxy-h2.cfg');
  writeFileSync(file, name === 'nginx' ? nginxH2Config(opts, grpcPort) : haproxyH2Config(opts, grpcPort));
  const child = name === 'nginx' ? procs.start(core, 'nginx', ['-c', file, '-p', dir]) : procs.start(core, 'haproxy', ['-f', file, '-db']);
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(`${name}: ${d}`));
  child.stdout!.resume();
  await waitPort(port);
  return { name, port, pid: child.pid };
}

/** nginx's stream module for a `stream {}` block: `''` when nginx has it built in, the
 *  absolute path of its dynamic module (`load_module` it) when installed, or null when
 *  neither (Debian: `apt-get install libnginx-mod-stream`). */
export function nginxStreamModule(): string | null {
  const v = spawnSync('nginx', ['-V'], { encoding: 'utf8' });
  const flags = `${v.stdout ?? ''}${v.stderr ?? ''}`;
  if (/--with-stream(\s|$)/.test(flags)) return '';
  const prefix = /--modules-path=(\S+)/.exec(flags)?.[1];
  for (const dir of [...(prefix !== undefined ? [prefix] : []), '/usr/lib/nginx/modules', '/usr/share/nginx/modules', '/usr/lib64/nginx/modules']) {
    const file = join(dir, 'ngx_stream_module.so');
    if (existsSync(file)) return file;
  }
  return null;
}

/** nginx as a TCP proxy (`stream { server { listen; proxy_pass; } }`), `workers` worker
 *  processes; `streamModule` as nginxStreamModule returns it (a path is `load_module`d). */
export function nginxStreamConfig(o: PeerConfigOptions, streamModule: string): string {
  const d = o.dir;
  return (
    (streamModule !== '' ? `load_module ${streamModule};\n` : '') +
    `worker_processes ${o.workers};\ndaemon off;\npid ${d}/nginx.pid;\nerror_log ${d}/nginx-error.log;\n` +
    `events { worker_connections 4096; }\n` +
    `stream {\n  server { listen 127.0.0.1:${o.port}; proxy_pass 127.0.0.1:${o.upstreamPort}; proxy_timeout 1h; }\n}\n`
  );
}

/** HAProxy as a TCP proxy: `mode tcp`, `workers` threads. */
export function haproxyTcpConfig(o: PeerConfigOptions): string {
  return (
    `global\n  nbthread ${o.workers}\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1h\n  timeout server 1h\n` +
    `frontend fe\n  bind 127.0.0.1:${o.port}\n  default_backend be\nbackend be\n  server s1 127.0.0.1:${o.upstreamPort}\n`
  );
}

/** nginx in front of a WebSocket upstream: HTTP/1.1 to it, `Upgrade` passed on and
 *  `Connection: upgrade` set (nginx's documented WebSocket proxying), an hour's read
 *  timeout so that an idle tunnel is not cut during a run. */
export function nginxWebSocketConfig(o: PeerConfigOptions): string {
  const d = o.dir;
  return (
    `worker_processes ${o.workers};\ndaemon off;\npid ${d}/nginx.pid;\nerror_log ${d}/nginx-error.log;\n` +
    `events { worker_connections 4096; }\nhttp {\n  access_log off;\n` +
    `  client_body_temp_path ${d}; proxy_temp_path ${d}; fastcgi_temp_path ${d}; uwsgi_temp_path ${d}; scgi_temp_path ${d};\n` +
    `  server { listen 127.0.0.1:${o.port}; location / { proxy_pass http://127.0.0.1:${o.upstreamPort}; proxy_http_version 1.1; ` +
    `proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; proxy_read_timeout 1h; proxy_send_timeout 1h; } }\n}\n`
  );
}

/** HAProxy in front of a WebSocket upstream: `mode http` (it tunnels an upgraded
 *  connection by itself), `timeout tunnel` for the upgraded connections. */
export function haproxyWebSocketConfig(o: PeerConfigOptions): string {
  return (
    `global\n  nbthread ${o.workers}\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  timeout tunnel 1h\n` +
    `frontend fe\n  bind 127.0.0.1:${o.port}\n  default_backend be\nbackend be\n  server s1 127.0.0.1:${o.upstreamPort}\n`
  );
}
