// Reloads the config file on SIGHUP and when it changes on disk. The directory is
// watched, not the file: editors and Kubernetes ConfigMap updates replace the file (a
// rename or a symlink swap), which a watch on the old inode would miss. Changes are
// debounced and compared by content, so one save is one reload. A file that fails
// validation is rejected whole (every error logged, counted, shown in /config_dump) and
// the running config keeps serving.

import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { loadConfigFile } from '../config/load.js';
import type { RemoraConfig } from '../config/types.js';
import type { Logger } from '../core/log.js';
import type { RunningRemora } from './remora.js';

const DEBOUNCE_MS = 200;

export class ConfigWatcher {
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastHash: string;

  constructor(
    private readonly file: string,
    private readonly remora: RunningRemora,
    private readonly log: Logger,
    /** Applied to every loaded config (e.g. --workers from the command line). */
    private readonly adjust: (config: RemoraConfig) => RemoraConfig = (c) => c,
  ) {
    this.lastHash = this.hash() ?? '';
  }

  /** Watches the file's directory; SIGHUP is wired by the caller to reloadNow(). */
  start(): void {
    const name = basename(this.file);
    try {
      this.watcher = watch(dirname(this.file), (_event, changed) => {
        // Kubernetes swaps a `..data` symlink next to the file: any change in the
        // directory may be ours; the content hash decides.
        if (changed !== null && changed !== name && !changed.startsWith('..')) return;
        this.schedule();
      });
      this.watcher.on('error', (err) => this.log.warn({ err, file: this.file }, 'config file watch failed; SIGHUP still reloads'));
    } catch (err) {
      this.log.warn({ err, file: this.file }, 'cannot watch the config file; SIGHUP still reloads');
    }
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.timer !== null) clearTimeout(this.timer);
  }

  /** Reloads now, whether or not the content changed (SIGHUP). */
  reloadNow(trigger: string): void {
    this.lastHash = this.hash() ?? this.lastHash;
    this.apply(trigger);
  }

  private schedule(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      const hash = this.hash();
      if (hash === null || hash === this.lastHash) return;
      this.lastHash = hash;
      this.apply('file change');
    }, DEBOUNCE_MS);
    this.timer.unref();
  }

  private apply(trigger: string): void {
    try {
      const result = loadConfigFile(this.file);
      if (!result.ok) {
        this.remora.rejected(`${this.file} (${trigger})`, result.errors);
        return;
      }
      this.log.info({ file: this.file, trigger }, 'config reloading');
      this.remora.reload(this.adjust(result.config)).catch((err: unknown) => this.log.error({ err }, 'config reload failed'));
    } catch (err) {
      this.log.error({ err, file: this.file }, 'config reload failed');
    }
  }

  private hash(): string | null {
    try {
      return createHash('sha256').update(readFileSync(this.file)).digest('hex');
    } catch {
      return null; // mid-swap or deleted: the next event decides
    }
  }
}
