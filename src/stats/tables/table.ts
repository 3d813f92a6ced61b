// The shape of a stat table: one row per stat of a component (listener, cluster,
// worker), declared once (Envoy's stat macros). A row's kind and its place among the
// rows of that kind give its slot index in the slab block; its names drive /stats
// (src/main/admin-stats.ts), /metrics (src/main/metrics.ts) and the generated tables
// of docs/metrics.md (src/stats/metrics-doc.ts). Rows are in /stats order.

export type StatKind = 'counter' | 'gauge' | 'histogram';

export interface StatRow<H extends string = string, K extends StatKind = StatKind> {
  /** Name of the handle workers write with (`ListenerCounter.CxTotal`). */
  readonly handle: H;
  readonly kind: K;
  /** Envoy-style /stats name after the component prefix (`listener.<name>.`); null:
   *  not shown by /stats. Envoy's own name wherever Envoy has the stat. */
  readonly stats: string | null;
  /** Prometheus family; null: not exported. Rows of one family are adjacent and differ
   *  by their constant `labels`. */
  readonly prom: string | null;
  /** Labels with a fixed value for this row, besides the component's own label. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Prometheus HELP text (a family takes its first row's). */
  readonly help: string;
  /** Meaning in docs/metrics.md when it says more than `help` (a family: first row's). */
  readonly doc?: string;
  /** Markdown for the /stats column of docs/metrics.md, for a family of many rows. */
  readonly docStats?: string;
}

/** Each row's index among the rows of its kind, in row order: the cell offset inside
 *  that kind's region of the block (what its handle holds). */
export function kindIndexes(rows: readonly StatRow[]): number[] {
  const next: Record<StatKind, number> = { counter: 0, gauge: 0, histogram: 0 };
  return rows.map((row) => next[row.kind]++);
}

/** Handle name → kind index, for the rows of `kind`. The result is copied by a spread:
 *  an object filled by keyed stores turns into a dictionary after a dozen or so
 *  properties, and then every `ClusterCounter.X` on the hot path is a hash lookup (about
 *  10 % of a request's CPU with stats on, measured with bench:revisions); the copy has
 *  fast properties, whose reads V8 inlines. */
export function handles<R extends StatRow, K extends StatKind>(
  rows: readonly R[],
  kind: K,
): Readonly<Record<Extract<R, { kind: K }>['handle'], number>> {
  const index = kindIndexes(rows);
  const out: Record<string, number> = {};
  rows.forEach((row, i) => {
    if (row.kind === kind) out[row.handle] = index[i];
  });
  return { ...out } as Record<Extract<R, { kind: K }>['handle'], number>;
}

/** Rows of `kind`, in slab order. */
export function rowsOf(rows: readonly StatRow[], kind: StatKind): readonly StatRow[] {
  return rows.filter((r) => r.kind === kind);
}

/** A Prometheus family: adjacent rows sharing a `prom` name. */
export interface StatFamily<R extends StatRow = StatRow> {
  readonly name: string;
  readonly kind: StatKind;
  readonly help: string;
  readonly rows: readonly R[];
}

/** The families of a table, in row order (rows without a Prometheus name left out). */
export function families<R extends StatRow>(rows: readonly R[]): StatFamily<R>[] {
  const out: { name: string; kind: StatKind; help: string; rows: R[] }[] = [];
  for (const row of rows) {
    if (row.prom === null) continue;
    const last = out[out.length - 1];
    if (last !== undefined && last.name === row.prom) last.rows.push(row);
    else out.push({ name: row.prom, kind: row.kind, help: row.help, rows: [row] });
  }
  return out;
}

export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

/** The five status-class counters (`<prefix>1xx` … `5xx`), adjacent so that a recorder
 *  adds `Rq1xx + class`; one Prometheus family with a `status_class` label. */
export function statusClassRows<P extends string>(
  prefix: P,
  statsPrefix: string,
  prom: string,
  help: string,
  doc: string,
): readonly StatRow<`${P}${StatusClass}`, 'counter'>[] {
  return STATUS_CLASSES.map((c) => ({
    handle: `${prefix}${c}` as `${P}${StatusClass}`,
    kind: 'counter' as const,
    stats: `${statsPrefix}${c}`,
    prom,
    labels: { status_class: c },
    help,
    doc,
    docStats: `\`${statsPrefix}1xx\` … \`${statsPrefix}5xx\``,
  }));
}

/** gRPC status labels: the 17 codes of the gRPC spec, and `other` for anything else. */
export const GRPC_STATUS_LABELS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15', '16', 'other'] as const;
export type GrpcStatusLabel = (typeof GRPC_STATUS_LABELS)[number];

/** One counter per gRPC status (`<prefix>0` … `<prefix>16`, `<prefix>other`), adjacent so
 *  that a recorder adds `<prefix>0 + code`; one Prometheus family with a `grpc_status`
 *  label, 18 series at most per component. */
export function grpcStatusRows<P extends string>(
  prefix: P,
  statsPrefix: string,
  prom: string,
  help: string,
  doc: string,
): readonly StatRow<`${P}${GrpcStatusLabel}`, 'counter'>[] {
  return GRPC_STATUS_LABELS.map((code) => ({
    handle: `${prefix}${code}` as `${P}${GrpcStatusLabel}`,
    kind: 'counter' as const,
    stats: `${statsPrefix}${code}`,
    prom,
    labels: { grpc_status: code },
    help,
    doc,
    docStats: `\`${statsPrefix}0\` … \`${statsPrefix}16\`, \`${statsPrefix}other\``,
  }));
}
