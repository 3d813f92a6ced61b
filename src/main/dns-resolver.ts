// DNS clusters' service discovery, in the main thread (Envoy's STRICT_DNS and
// LOGICAL_DNS): one target per host name of a cluster, each resolving on its own timer
// (dns-query.ts decides the queries and the waits; names in the hosts file, hosts-file.ts,
// are answered from it before DNS is asked). A failed resolution keeps the last
// good addresses; an answer that changes them calls onChange (coalesced), and the
// running Remora hands the new endpoint lists to the workers (remora.ts). What the
// workers use is resolved(config): the written endpoints with their host names
// replaced by the addresses (src/config/dns-endpoints.ts explains the two shapes).

import { isIP } from 'node:net';
import type { Cluster, ClusterDns, RemoraConfig, ResolvedEndpoints, UpstreamEndpoint } from '../config/types.js';
import type { Logger } from '../core/log.js';
import { MAX_ENDPOINTS } from '../shared/limits.js';
import { endpointKey } from '../upstream/pool.js';
import { nextDelayMs, resolveName, systemLookup, type DnsLookup, type DnsOutcome } from './dns-query.js';
import { DEFAULT_HOSTS_PATH, HostsFile } from './hosts-file.js';

/** Addresses of one host name used at most (the first ones of the answer). */
export const MAX_ADDRESSES_PER_NAME = 64;

/** Envoy's DNS cluster counters (`cluster.<name>.update_*`). */
export interface DnsClusterCounts {
  attempt: number;
  success: number;
  failure: number;
  empty: number;
}

/** One host name of a DNS cluster, for /clusters. */
export interface DnsTargetView {
  readonly hostname: string;
  /** null until the first answer. */
  readonly addresses: readonly string[] | null;
  readonly last_answer_at: string | null;
  readonly last_ttl_s: number | null;
  readonly last_error: string | null;
  readonly failures_in_a_row: number;
  readonly next_resolution_in_ms: number | null;
}

export type LookupFactory = (settings: ClusterDns) => DnsLookup;

export interface DnsClustersOptions {
  /** The DNS side of each cluster's resolutions (a node:dns Resolver by default). */
  readonly makeLookup?: LookupFactory;
  /** The hosts file answered from before DNS: `REMORA_HOSTS_FILE` when set, else
   *  /etc/hosts. */
  readonly hostsPath?: string;
}

/** The hosts file path of this process: `REMORA_HOSTS_FILE`, or /etc/hosts. */
export function defaultHostsPath(env: NodeJS.ProcessEnv = process.env): string {
  const path = env.REMORA_HOSTS_FILE;
  return path !== undefined && path !== '' ? path : DEFAULT_HOSTS_PATH;
}

/** One host name of one cluster, resolved on its own timer. */
class DnsTarget {
  addresses: readonly string[] | null = null;
  lastAnswerAt = 0;
  lastTtlS: number | null = null;
  lastError: string | null = null;
  failures = 0;
  nextAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private stopped = false;
  private lookup: DnsLookup;

  constructor(
    readonly cluster: string,
    readonly hostname: string,
    public settings: ClusterDns,
    private readonly makeLookup: LookupFactory,
    private readonly hosts: HostsFile,
    private readonly counts: DnsClusterCounts,
    private readonly onChange: () => void,
    private readonly log: Logger,
  ) {
    this.lookup = makeLookup(settings);
  }

  /** New settings for the same cluster and name: a new resolver, and a resolution now. */
  reconfigure(settings: ClusterDns): void {
    this.settings = settings;
    this.lookup.cancel();
    this.lookup = this.makeLookup(settings);
    this.running = false;
    this.resolveNow();
  }

  resolveNow(): void {
    if (this.stopped || this.running) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.running = true;
    this.counts.attempt++;
    const lookup = this.lookup;
    this.resolve(lookup).then(
      (result) => { if (result !== null && lookup === this.lookup) this.settle(result); },
      (err: unknown) => { if (lookup === this.lookup) this.settle({ kind: 'failure', error: String(err) }); },
    );
  }

  /** One resolution: the hosts file (checked for changes once), then DNS for what it
   *  does not hold. null when the target stopped or was reconfigured meanwhile. */
  private async resolve(lookup: DnsLookup): Promise<DnsOutcome | null> {
    const table = await this.hosts.current();
    if (this.stopped || lookup !== this.lookup) return null;
    const { lookup_family, refresh_rate_ms } = this.settings;
    return resolveName(lookup, this.hostname, lookup_family, { table, ttlS: refresh_rate_ms / 1000 });
  }

  private settle(result: DnsOutcome): void {
    this.running = false;
    if (this.stopped) return;
    if (result.kind === 'answer') {
      this.counts.success++;
      if (result.addresses.length === 0) this.counts.empty++;
      this.failures = 0;
      this.lastError = null;
      this.lastAnswerAt = Date.now();
      this.lastTtlS = result.ttlS;
      // A logical endpoint keeps its last address through an empty answer (Envoy).
      const keep = this.settings.type === 'logical' && result.addresses.length === 0 && this.addresses !== null;
      const next = keep ? this.addresses! : result.addresses.slice(0, MAX_ADDRESSES_PER_NAME);
      const changed = this.addresses === null || next.length !== this.addresses.length || next.some((a, i) => a !== this.addresses![i]);
      this.addresses = next;
      if (changed) {
        this.log.info({ cluster: this.cluster, hostname: this.hostname, addresses: next }, 'DNS answer changed the endpoints');
        this.onChange();
      }
    } else {
      this.counts.failure++;
      this.failures++;
      this.lastError = result.error;
      if (this.failures === 1) this.log.warn({ cluster: this.cluster, hostname: this.hostname, error: result.error }, 'DNS resolution failed; the last good addresses keep serving');
    }
    const delay = nextDelayMs(this.settings, result, this.failures);
    this.nextAt = Date.now() + delay;
    this.timer = setTimeout(() => this.resolveNow(), delay);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.lookup.cancel();
  }

  view(now: number): DnsTargetView {
    return {
      hostname: this.hostname,
      addresses: this.addresses,
      last_answer_at: this.lastAnswerAt > 0 ? new Date(this.lastAnswerAt).toISOString() : null,
      last_ttl_s: this.lastTtlS,
      last_error: this.lastError,
      failures_in_a_row: this.failures,
      next_resolution_in_ms: this.timer !== null ? Math.max(0, this.nextAt - now) : null,
    };
  }
}

const targetKey = (cluster: string, hostname: string): string => `${cluster}|${hostname}`;

/** The host names a DNS cluster resolves (IP literals are used as they are). */
function hostNames(c: Cluster): string[] {
  return [...new Set(c.endpoints.filter((ep) => isIP(ep.address) === 0).map((ep) => ep.address.toLowerCase()))];
}

export class DnsClusters {
  private readonly targets = new Map<string, DnsTarget>();
  private readonly counts = new Map<string, DnsClusterCounts>();
  private pending = false;
  private stopped = false;
  private truncatedWarned = false;
  private readonly makeLookup: LookupFactory;
  private readonly hosts: HostsFile;

  constructor(
    private readonly log: Logger,
    /** Called (once per turn of the event loop at most) when some name's addresses changed. */
    private readonly onChange: () => void,
    options: DnsClustersOptions = {},
  ) {
    this.makeLookup = options.makeLookup ?? systemLookup;
    this.hosts = new HostsFile(options.hostsPath ?? defaultHostsPath(), log);
  }

  /** Follows an applied config: targets of new names start resolving now, those of names
   *  gone stop, those whose cluster's settings changed resolve again. Results of names
   *  that stay are kept. */
  configure(config: RemoraConfig): void {
    if (this.stopped) return;
    const wanted = new Set<string>();
    for (const c of config.clusters) {
      if (c.dns === undefined) continue;
      let counts = this.counts.get(c.name);
      if (counts === undefined) this.counts.set(c.name, (counts = { attempt: 0, success: 0, failure: 0, empty: 0 }));
      for (const name of hostNames(c)) {
        const key = targetKey(c.name, name);
        wanted.add(key);
        const target = this.targets.get(key);
        if (target === undefined) {
          const t = new DnsTarget(c.name, name, c.dns, this.makeLookup, this.hosts, counts, () => this.changed(), this.log);
          this.targets.set(key, t);
          t.resolveNow();
        } else if (JSON.stringify(target.settings) !== JSON.stringify(c.dns)) {
          target.reconfigure(c.dns);
        }
      }
    }
    for (const [key, target] of this.targets) {
      if (wanted.has(key)) continue;
      target.stop();
      this.targets.delete(key);
    }
    const dnsClusters = new Set(config.clusters.filter((c) => c.dns !== undefined).map((c) => c.name));
    for (const name of this.counts.keys()) if (!dnsClusters.has(name)) this.counts.delete(name);
  }

  /** The endpoints the data plane uses for every DNS cluster of `config`, from the
   *  latest answers (see src/config/dns-endpoints.ts). */
  resolved(config: RemoraConfig): ResolvedEndpoints {
    const out: Record<string, UpstreamEndpoint[]> = {};
    let room = MAX_ENDPOINTS - config.clusters.reduce((n, c) => n + (c.dns === undefined ? c.endpoints.length : 0), 0);
    let truncated = false;
    for (const c of config.clusters) {
      if (c.dns === undefined) continue;
      const list: UpstreamEndpoint[] = [];
      const seen = new Set<string>();
      const add = (ep: UpstreamEndpoint, key: string): void => {
        if (seen.has(key)) return;
        if (room <= 0) {
          truncated = true;
          return;
        }
        seen.add(key);
        list.push(ep);
        room--;
      };
      for (const ep of c.endpoints) {
        if (isIP(ep.address) !== 0) {
          add(ep, endpointKey(ep.address, ep.port));
          continue;
        }
        const addresses = this.targets.get(targetKey(c.name, ep.address.toLowerCase()))?.addresses ?? null;
        if (addresses === null || addresses.length === 0) continue;
        if (c.dns.type === 'logical') add({ ...ep, dial: addresses[0] }, endpointKey(ep.address, ep.port));
        else for (const address of addresses) add({ ...ep, address, hostname: ep.address }, endpointKey(address, ep.port));
      }
      out[c.name] = list;
    }
    if (truncated && !this.truncatedWarned) {
      this.truncatedWarned = true;
      this.log.warn({ max: MAX_ENDPOINTS }, 'DNS answers hold more addresses than the process has endpoint slots; the rest are not used');
    }
    return out;
  }

  /** Counters of a DNS cluster (undefined for another cluster). */
  countsOf(cluster: string): Readonly<DnsClusterCounts> | undefined {
    return this.counts.get(cluster);
  }

  /** Every DNS cluster's counters, by cluster name. */
  allCounts(): ReadonlyMap<string, Readonly<DnsClusterCounts>> {
    return this.counts;
  }

  /** Per host name of `cluster`: its addresses, last answer or error, next resolution. */
  view(cluster: string): DnsTargetView[] {
    const now = Date.now();
    return [...this.targets.values()].filter((t) => t.cluster === cluster).map((t) => t.view(now));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.targets.values()) t.stop();
    this.targets.clear();
  }

  private changed(): void {
    if (this.pending || this.stopped) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      if (!this.stopped) this.onChange();
    });
  }
}
