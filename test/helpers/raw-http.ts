// Raw-socket HTTP/1.1 helpers for tests that must see exact bytes: a client connection
// that reads one response at a time (so a test can tell whether any byte follows a
// bodiless response, and reuse the socket), and a net-level upstream whose handler
// writes whatever bytes it likes.

import net from 'node:net';

export interface RawResponse {
  status: number;
  /** The head as received, up to and including CRLFCRLF. */
  head: string;
  /** [name (lower-case), value] in arrival order. */
  headerList: [string, string][];
  /** Lower-case name → value (the last one when repeated). */
  headers: Record<string, string>;
  body: Buffer;
}

/** One client TCP connection that parses responses as they arrive. */
export class RawConn {
  private buf: Buffer = Buffer.alloc(0);
  closed = false;
  private wake: (() => void) | null = null;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      this.poke();
    });
    socket.on('close', () => {
      this.closed = true;
      this.poke();
    });
    socket.on('error', () => {
      this.closed = true;
      this.poke();
    });
  }

  static open(port: number): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve(new RawConn(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Bytes received and not yet consumed by readResponse. */
  get buffered(): Buffer {
    return this.buf;
  }

  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Resolves true once the peer has closed the connection, false after `ms`. */
  async waitClosed(ms = 2000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this.waitData(left);
    }
    return true;
  }

  /** Reads one whole response. `noBody`: the request was HEAD (the response then has no
   *  body whatever it announces). Rejects when the connection closes first or after `ms`. */
  async readResponse(opts: { noBody?: boolean; ms?: number } = {}): Promise<RawResponse> {
    const deadline = Date.now() + (opts.ms ?? 5000);
    const need = async (what: string): Promise<void> => {
      const left = deadline - Date.now();
      if (this.closed) throw new Error(`connection closed while waiting for ${what}; got ${JSON.stringify(this.buf.toString('latin1'))}`);
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.buf.toString('latin1'))}`);
      await this.waitData(left);
    };
    let end: number;
    while ((end = this.buf.indexOf('\r\n\r\n')) < 0) await need('a response head');
    const head = this.buf.toString('latin1', 0, end + 4);
    const lines = head.slice(0, -4).split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    if (!m) throw new Error(`bad status line ${JSON.stringify(lines[0])}`);
    const status = Number(m[1]);
    const headerList: [string, string][] = [];
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headerList.push([name, value]);
      headers[name] = value;
    }
    this.buf = this.buf.subarray(end + 4);
    if (opts.noBody || status === 204 || status === 304 || status < 200) {
      return { status, head, headerList, headers, body: Buffer.alloc(0) };
    }
    if (headers['transfer-encoding'] !== undefined) {
      const parts: Buffer[] = [];
      for (;;) {
        let lineEnd: number;
        while ((lineEnd = this.buf.indexOf('\r\n')) < 0) await need('a chunk size line');
        const size = parseInt(this.buf.toString('latin1', 0, lineEnd), 16);
        if (Number.isNaN(size)) throw new Error(`bad chunk size line ${JSON.stringify(this.buf.toString('latin1', 0, lineEnd))}`);
        if (size === 0) {
          // No trailers expected from the proxy: the terminating CRLF follows.
          while (this.buf.length < lineEnd + 4) await need('the end of a chunked body');
          this.buf = this.buf.subarray(lineEnd + 4);
          break;
        }
        while (this.buf.length < lineEnd + 2 + size + 2) await need('chunk data');
        parts.push(Buffer.from(this.buf.subarray(lineEnd + 2, lineEnd + 2 + size)));
        this.buf = this.buf.subarray(lineEnd + 2 + size + 2);
      }
      return { status, head, headerList, headers, body: Buffer.concat(parts) };
    }
    if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      while (this.buf.length < n) await need(`${n} body bytes`);
      const body = Buffer.from(this.buf.subarray(0, n));
      this.buf = this.buf.subarray(n);
      return { status, head, headerList, headers, body };
    }
    // Delimited by close.
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for the connection to close (body without length)');
      await this.waitData(left);
    }
    const body = this.buf;
    this.buf = Buffer.alloc(0);
    return { status, head, headerList, headers, body };
  }

  private waitData(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
    });
  }

  private poke(): void {
    this.wake?.();
  }
}

export interface RawUpstream {
  port: number;
  /** Requests whose head has arrived, in order. */
  readonly heads: string[];
  /** Every accepted socket, open or closed. */
  readonly sockets: net.Socket[];
  close(): Promise<void>;
}

/** A net server for upstream faults. It splits each connection's bytes into requests
 *  (head, then a Content-Length body if any; chunked request bodies are not supported)
 *  and calls `onRequest` for each with the socket's request index (0 = first on it). */
export async function startRawUpstream(
  onRequest: (socket: net.Socket, head: string, body: Buffer, indexOnSocket: number) => void,
): Promise<RawUpstream> {
  const heads: string[] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    let pending: Buffer = Buffer.alloc(0);
    let count = 0;
    socket.on('data', (d: Buffer) => {
      pending = Buffer.concat([pending, d]);
      for (;;) {
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = pending.toString('latin1', 0, end + 4);
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        const length = m ? Number(m[1]) : 0;
        if (pending.length < end + 4 + length) return;
        const body = Buffer.from(pending.subarray(end + 4, end + 4 + length));
        pending = pending.subarray(end + 4 + length);
        heads.push(head);
        onRequest(socket, head, body, count++);
        if (socket.destroyed) return;
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    heads,
    sockets,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Resolves when `cond` holds (polled every 20 ms); false after `ms`. */
export async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}
