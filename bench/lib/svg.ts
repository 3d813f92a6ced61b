// A small dependency-free SVG bar chart: groups along x, one bar per series in each
// group (grouped bars), a zero baseline (negative values go below it), y ticks, and a
// legend (circles, so the only <rect> elements are the bars).

export interface BarGroup {
  readonly label: string;
  /** One value per series, in series order; null leaves a gap (no bar). */
  readonly values: readonly (number | null)[];
}

export interface BarChart {
  readonly title: string;
  readonly unit: string;
  readonly series: readonly string[];
  readonly groups: readonly BarGroup[];
  readonly width?: number;
  readonly height?: number;
}

const COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7'];

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A "nice" step (1, 2 or 5 × 10^k) that splits `span` into about `n` ticks. */
export function niceStep(span: number, n = 5): number {
  if (!(span > 0)) return 1;
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(2));
}

export function barChart(c: BarChart): string {
  const legendW = c.series.reduce((w, s) => w + 30 + Math.ceil(s.length * 6.2), 0);
  const width = c.width ?? Math.max(480, 90 + legendW, 90 + c.groups.length * (c.series.length * 18 + 30));
  const height = c.height ?? 320;
  const left = 70;
  const right = 20;
  const top = 40;
  const bottom = 60;
  const values = c.groups.flatMap((g) => g.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const lo0 = Math.min(0, ...values);
  const hi0 = Math.max(0, ...values);
  const step = niceStep(hi0 - lo0 || 1);
  const lo = Math.floor(lo0 / step) * step;
  const hi = Math.max(Math.ceil(hi0 / step) * step, lo + step);
  const plotH = height - top - bottom;
  const plotW = width - left - right;
  const y = (v: number): number => top + ((hi - v) / (hi - lo)) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="14">${escapeXml(c.title)}</text>`,
    `<text x="14" y="${top + plotH / 2}" transform="rotate(-90 14 ${top + plotH / 2})" text-anchor="middle">${escapeXml(c.unit)}</text>`,
  ];
  for (let v = lo; v <= hi + step / 2; v += step) {
    const yy = y(v).toFixed(1);
    out.push(`<line x1="${left}" x2="${width - right}" y1="${yy}" y2="${yy}" stroke="${Math.abs(v) < step / 1e6 ? '#000' : '#ddd'}"/>`);
    out.push(`<text x="${left - 6}" y="${yy}" dy="4" text-anchor="end">${fmt(v)}</text>`);
  }
  const groupW = plotW / Math.max(1, c.groups.length);
  const barW = Math.max(2, Math.min(40, (groupW - 16) / Math.max(1, c.series.length)));
  c.groups.forEach((g, gi) => {
    const x0 = left + gi * groupW + (groupW - barW * c.series.length) / 2;
    g.values.forEach((v, si) => {
      if (v === null || !Number.isFinite(v)) return;
      const y1 = y(Math.max(v, 0));
      const h = Math.abs(y(v) - y(0));
      const color = COLORS[si % COLORS.length];
      out.push(
        `<rect x="${(x0 + si * barW).toFixed(1)}" y="${y1.toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="${color}"><title>${escapeXml(`${g.label} ${c.series[si] ?? ''}: ${v} ${c.unit}`)}</title></rect>`,
      );
    });
    out.push(`<text x="${(left + gi * groupW + groupW / 2).toFixed(1)}" y="${height - bottom + 16}" text-anchor="middle">${escapeXml(g.label)}</text>`);
  });
  let lx = left;
  c.series.forEach((s, si) => {
    const ly = height - 16;
    out.push(`<circle cx="${lx + 5}" cy="${ly - 4}" r="5" fill="${COLORS[si % COLORS.length]}"/>`);
    out.push(`<text x="${lx + 14}" y="${ly}">${escapeXml(s)}</text>`);
    lx += 30 + Math.ceil(s.length * 6.2); // about 6 px per character at 11 px
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
