// Diagnostics for a test file that passes but whose process does not exit: once its
// tests have ended, an unref'd timer (it keeps nothing alive itself) describes what is
// still open after `afterMs` on stderr, which tap shows with the file's output: each
// socket's local and remote address and state, servers' addresses, timers' callbacks,
// child processes by pid. Exiting stays tap's job (its timeout still fails the file).

type Handle = {
  constructor?: { name?: string };
  localAddress?: string;
  localPort?: number;
  remoteAddress?: string;
  remotePort?: number;
  connecting?: boolean;
  destroyed?: boolean;
  pending?: boolean;
  readyState?: string;
  encrypted?: boolean;
  address?: () => unknown;
  listenerCount?: (event: string) => number;
  _onTimeout?: () => void;
  _idleTimeout?: number;
  pid?: number;
  spawnargs?: string[];
};

function describe(h: Handle): string {
  const kind = h.constructor?.name ?? typeof h;
  try {
    if (kind === 'Socket' || kind === 'TLSSocket') {
      const listeners = ['connect', 'data', 'readable', 'secureConnect'].map((e) => `${e}:${h.listenerCount?.(e) ?? '?'}`).join(' ');
      return `${kind} ${h.localAddress}:${h.localPort} -> ${h.remoteAddress}:${h.remotePort} connecting=${h.connecting} pending=${h.pending} readyState=${h.readyState} destroyed=${h.destroyed} listeners(${listeners})`;
    }
    if (kind === 'Server') return `Server ${JSON.stringify(h.address?.())}`;
    if (kind === 'Timeout') return `Timeout ${h._idleTimeout} ms: ${String(h._onTimeout).slice(0, 200).replace(/\s+/g, ' ')}`;
    if (kind === 'ChildProcess') return `ChildProcess pid ${h.pid}: ${(h.spawnargs ?? []).join(' ').slice(0, 200)}`;
  } catch (err) {
    return `${kind} (not described: ${(err as Error).message})`;
  }
  return kind;
}

/** Arms the report: call it from the file's last teardown. */
export function reportLingeringHandles(file: string, afterMs = 30_000): void {
  const timer = setTimeout(() => {
    const handles = (process as unknown as { _getActiveHandles(): Handle[] })._getActiveHandles();
    const lines = handles.filter((h) => h !== (process.stdout as unknown) && h !== (process.stderr as unknown) && h !== (process.stdin as unknown)).map(describe);
    process.stderr.write(`${file}: still running ${afterMs} ms after its tests ended; open handles:\n${lines.map((l) => `  ${l}`).join('\n')}\n` + `  resources: ${JSON.stringify(process.getActiveResourcesInfo())}\n`);
  }, afterMs);
  timer.unref();
}
