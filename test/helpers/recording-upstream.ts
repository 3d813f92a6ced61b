// An upstream for hostile-input tests that records exactly what reached it: every byte of
// every connection (a TCP recorder in front), and every request a real HTTP server (Node's
// own, a parser this project did not write) took from those bytes, with its whole body.
// A smuggled request shows up as an extra entry in `requests`; a cut one in `aborted`.

import http from 'node:http';
import net from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  /** Raw header list as the upstream's parser saw it. */
  headers: string[];
  body: string;
}

export interface RecordingUpstream {
  port: number;
  /** Requests received whole (head and complete body), in order. */
  readonly requests: RecordedRequest[];
  /** Requests whose connection ended before their body did (method and url). */
  readonly aborted: string[];
  /** Every chunk of bytes received (from any connection), in arrival order. */
  readonly raw: Buffer[];
  /** `METHOD url` of each whole request (convenient for comparisons). */
  lines(): string[];
  clear(): void;
  close(): Promise<void>;
}

/** `respond` answers each whole request (default: 200 with body "ok"). */
export async function startRecordingUpstream(
  respond: (req: RecordedRequest, res: http.ServerResponse) => void = (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  },
): Promise<RecordingUpstream> {
  const requests: RecordedRequest[] = [];
  const aborted: string[] = [];
  const raw: Buffer[] = [];
  const app = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let complete = false;
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      complete = true;
      const rec = { method: req.method ?? '', url: req.url ?? '', headers: req.rawHeaders, body: Buffer.concat(chunks).toString('latin1') };
      requests.push(rec);
      respond(rec, res);
    });
    req.on('close', () => {
      if (!complete) aborted.push(`${req.method} ${req.url}`);
    });
  });
  app.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as net.AddressInfo).port;
  const sockets = new Set<net.Socket>();
  const front = net.createServer((client) => {
    const back = net.connect(appPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(back);
    client.on('data', (d: Buffer) => {
      raw.push(d);
      back.write(d);
    });
    back.on('data', (d: Buffer) => client.write(d));
    const end = (): void => {
      client.destroy();
      back.destroy();
      sockets.delete(client);
      sockets.delete(back);
    };
    client.on('close', end);
    back.on('close', end);
    client.on('error', end);
    back.on('error', end);
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  return {
    port: (front.address() as net.AddressInfo).port,
    requests,
    aborted,
    raw,
    lines: () => requests.map((r) => `${r.method} ${r.url}`),
    clear() {
      requests.length = 0;
      aborted.length = 0;
      raw.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        app.closeAllConnections();
        front.close(() => app.close(() => resolve()));
      }),
  };
}
