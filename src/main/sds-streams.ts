// Secrets from SDS servers of their own (xds.sds_servers; Istio's `sds-grpc`, the
// istio-agent's Unix socket), next to the ADS stream (src/main/xds-source.ts). One
// Secret Discovery Service stream per server, opened when a listener or cluster first
// asks that server for a Secret and subscribed to exactly the names asked for (the
// ADS side calls want() with what its resources reference). Each stream follows the xDS
// rules of src/control/xds-client.ts: a Secret received is checked on its own and NACKed
// by name when it is bad (the previous version stays); what is accepted is written under
// sds_dir (a new version rotates the files in place: new handshakes get it, open
// connections keep theirs) and only then ACKed; then the ADS side applies again, so that
// a listener or cluster warming for the Secret starts serving.

import { XdsClient, type ResourceRejection, type XdsClientState, type XdsNode } from '../control/xds-client.js';
import type { Logger } from '../core/log.js';
import { TypeUrl, type ProtoObject } from '../xds/protos.js';
import { parseSecretKey, secretKey, writeSecretFiles } from '../xds/sds.js';
import { Ctx, formatRejection } from '../xds/translate-context.js';
import { checkSecret } from '../xds/translate-secret.js';

interface SdsStream {
  readonly address: string;
  client: XdsClient | null;
  /** Secret names asked of this server, sorted. */
  wanted: readonly string[];
  /** Secrets accepted, by name. */
  secrets: ReadonlyMap<string, ProtoObject>;
}

export class SdsStreams {
  private readonly streams = new Map<string, SdsStream>();
  private stopped = false;
  /** Counts changes of what was received: the merged map is rebuilt when it moves. */
  private revision = 0;
  private merged: { revision: number; ads: ReadonlyMap<string, ProtoObject> | undefined; map: ReadonlyMap<string, ProtoObject> } | null = null;

  constructor(
    servers: Readonly<Record<string, string>>,
    private readonly node: XdsNode,
    private readonly dir: string,
    private readonly log: Logger,
    /** Called after a stream accepted a change (its files are written). */
    private readonly onChange: () => void,
  ) {
    for (const [name, address] of Object.entries(servers)) this.streams.set(name, { address, client: null, wanted: [], secrets: new Map() });
  }

  /** The servers' names (what an api_config_source may name). */
  get names(): ReadonlySet<string> {
    return new Set(this.streams.keys());
  }

  /** `ads` (the Secrets over ADS, by name) with every Secret received from these servers,
   *  keyed by secretKey. The same map object while nothing changed. */
  withSecrets(ads: ReadonlyMap<string, ProtoObject> | undefined): ReadonlyMap<string, ProtoObject> | undefined {
    if (this.streams.size === 0) return ads;
    if (this.merged !== null && this.merged.revision === this.revision && this.merged.ads === ads) return this.merged.map;
    const map = new Map(ads ?? []);
    for (const [server, s] of this.streams) for (const [name, secret] of s.secrets) map.set(secretKey(server, name), secret);
    this.merged = { revision: this.revision, ads, map };
    return map;
  }

  /** The Secret keys the ADS resources reference (secretNames): each server is asked for
   *  the names of its own (ADS keys are ignored); a server asked for nothing keeps its
   *  stream, subscribed to nothing. */
  want(keys: readonly string[]): void {
    if (this.stopped) return;
    const byServer = new Map<string, string[]>();
    for (const key of keys) {
      const { server, name } = parseSecretKey(key);
      if (server === null || !this.streams.has(server)) continue;
      const names = byServer.get(server);
      if (names === undefined) byServer.set(server, [name]);
      else names.push(name);
    }
    for (const [server, s] of this.streams) {
      const wanted = [...new Set(byServer.get(server) ?? [])].sort();
      if (wanted.length === s.wanted.length && wanted.every((n, i) => n === s.wanted[i])) continue;
      s.wanted = wanted;
      if (s.client === null) {
        if (wanted.length === 0) continue;
        s.client = this.open(server, s);
        s.client.start();
      }
      s.client.resubscribe();
    }
  }

  /** Each server's stream, as /config_dump shows it (`connected: false` and nothing else
   *  before it is opened). */
  state(): Record<string, (XdsClientState & { address: string; subscribed: readonly string[] }) | { address: string; subscribed: readonly string[]; connected: false }> {
    const out: ReturnType<SdsStreams['state']> = {};
    for (const [server, s] of this.streams) {
      out[server] = s.client !== null ? { address: s.address, subscribed: s.wanted, ...s.client.state() } : { address: s.address, subscribed: s.wanted, connected: false };
    }
    return out;
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.streams.values()) s.client?.stop();
  }

  private open(server: string, s: SdsStream): XdsClient {
    const log = this.log.child({ sds_server: server });
    return new XdsClient(
      { servers: [s.address], node: this.node, log, service: 'sds' },
      {
        references: () => ({ routes: [], endpoints: [], secrets: s.wanted }),
        check: (maps) => {
          const ctx = new Ctx();
          for (const [name, secret] of maps[TypeUrl.Secret]) checkSecret(ctx, name, secret);
          return ctx.errors.map((e): ResourceRejection => ({ typeUrl: e.typeUrl, name: e.name, text: formatRejection(e) }));
        },
        apply: (maps) => {
          const secrets = maps[TypeUrl.Secret];
          if (secrets === s.secrets) return Promise.resolve([]);
          const keyed = new Map([...secrets].map(([name, secret]) => [secretKey(server, name), secret]));
          try {
            const written = writeSecretFiles(this.dir, keyed);
            if (written.length > 0) log.info({ dir: this.dir, files: written.length }, 'SDS secrets written');
          } catch (err) {
            return Promise.resolve([{ typeUrl: TypeUrl.Secret, name: '', text: `cannot write the secrets under xds.sds_dir ${this.dir}: ${err instanceof Error ? err.message : String(err)}` }]);
          }
          s.secrets = secrets;
          this.revision++;
          this.onChange();
          return Promise.resolve([]);
        },
      },
    );
  }
}
