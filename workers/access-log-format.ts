// A listener's access-log `format` (Envoy's text_format) or `json_format`, compiled once
// per config snapshot into a list of pieces: literal text, already JSON-quoted keys, and
// getters (workers/access-log-operators.ts). Writing a line runs the pieces and joins
// their text; nothing is parsed, matched or looked up per line. Each format is compiled
// for both records a listener may log: HTTP requests and TCP proxy connections.

import { parseLogFormat, type LogFormatPart } from '../src/config/log-format.js';
import type { AccessLogConfig } from '../src/config/types.js';
import { httpOperator, tcpOperator, type ConnectionRecord, type FormatContext, type Getter, type OperatorGetter, type Value } from './access-log-operators.js';
import type { StreamInfo } from './stream-info.js';

/** A compiled format: a record → its line, `\n` included. */
export type LineFormat<R> = (r: R) => string;

/** A listener's configured format, for each record type. */
export interface AccessLogFormat {
  readonly http: LineFormat<StreamInfo>;
  readonly tcp: LineFormat<ConnectionRecord>;
}

/** A piece of a line: literal text, or text computed from the record. */
type Piece<R> = string | ((r: R) => string);

const quote = JSON.stringify;

/** A value in a text format: `-` for not known (Envoy's rule). */
const asText = (v: Value): string => (v === null ? '-' : typeof v === 'number' ? `${v}` : v);
/** A value that is a whole JSON value: numbers stay numbers, not known is null. */
const asJson = (v: Value): string => (v === null ? 'null' : typeof v === 'number' ? `${v}` : quote(v));

/** The access log's format, or null when it sets neither `format` nor `json_format`
 *  (Remora's own JSON line). Throws on a format the config schema would have refused. */
export function compileAccessLogFormat(config: Pick<AccessLogConfig, 'format' | 'json_format'>, ctx: FormatContext): AccessLogFormat | null {
  if (config.format !== undefined) {
    const parts = partsOf(config.format);
    return { http: textLine(parts, httpOperator, ctx), tcp: textLine(parts, tcpOperator, ctx) };
  }
  if (config.json_format !== undefined) {
    const fields = Object.entries(config.json_format).map(([key, template]): [string, LogFormatPart[]] => [key, partsOf(template)]);
    return { http: jsonLine(fields, httpOperator, ctx), tcp: jsonLine(fields, tcpOperator, ctx) };
  }
  return null;
}

function partsOf(format: string): LogFormatPart[] {
  const r = parseLogFormat(format);
  if ('problem' in r) throw new Error(`access log format ${quote(format)}: ${r.problem}`);
  return r.parts;
}

/** The getter of one operator part, with its `:MAXLEN` applied. */
function getterOf<R>(part: Extract<LogFormatPart, { kind: 'operator' }>, op: OperatorGetter<R>, ctx: FormatContext): Getter<R> {
  const get = op(part.name, part.arg, ctx);
  const max = part.maxLength;
  if (max === 0) return get;
  return (r) => {
    const v = get(r);
    return typeof v === 'string' && v.length > max ? v.slice(0, max) : v;
  };
}

/** Pieces printing `parts` as text. */
function textPieces<R>(parts: readonly LogFormatPart[], op: OperatorGetter<R>, ctx: FormatContext): Piece<R>[] {
  return parts.map((p): Piece<R> => {
    if (p.kind === 'text') return p.text;
    const get = getterOf(p, op, ctx);
    return (r) => asText(get(r));
  });
}

/** Joins the pieces into a line function, literal neighbours merged first. */
function joined<R>(pieces: readonly Piece<R>[]): LineFormat<R> {
  const merged: Piece<R>[] = [];
  for (const p of pieces) {
    const last = merged.length - 1;
    if (typeof p === 'string' && last >= 0 && typeof merged[last] === 'string') merged[last] += p;
    else if (p !== '') merged.push(p);
  }
  if (merged.length === 1 && typeof merged[0] === 'string') {
    const line = merged[0];
    return () => line;
  }
  return (r) => {
    let out = '';
    for (let i = 0; i < merged.length; i++) {
      const p = merged[i];
      out += typeof p === 'string' ? p : p(r);
    }
    return out;
  };
}

/** `format`: its text, ending in `\n` (added when the format has none). */
function textLine<R>(parts: readonly LogFormatPart[], op: OperatorGetter<R>, ctx: FormatContext): LineFormat<R> {
  const pieces = textPieces(parts, op, ctx);
  const last = parts[parts.length - 1];
  if (last === undefined || last.kind !== 'text' || !last.text.endsWith('\n')) pieces.push('\n');
  return joined(pieces);
}

/** `json_format`: one JSON object per line, keys in the order given. A value that is one
 *  operator is that operator's JSON value (a number stays a number, not known is null);
 *  any other value is a string (its operators printed as in a text format). */
function jsonLine<R>(fields: readonly [string, readonly LogFormatPart[]][], op: OperatorGetter<R>, ctx: FormatContext): LineFormat<R> {
  const pieces: Piece<R>[] = [];
  fields.forEach(([key, parts], i) => {
    pieces.push(`${i === 0 ? '{' : ','}${quote(key)}:`);
    const only = parts.length === 1 ? parts[0] : undefined;
    if (only !== undefined && only.kind === 'operator') {
      const get = getterOf(only, op, ctx);
      pieces.push((r) => asJson(get(r)));
    } else if (parts.every((p) => p.kind === 'text')) {
      pieces.push(quote(parts.map((p) => (p.kind === 'text' ? p.text : '')).join('')));
    } else {
      const text = joined(textPieces(parts, op, ctx));
      pieces.push((r) => quote(text(r)));
    }
  });
  pieces.push(fields.length === 0 ? '{}\n' : '}\n');
  return joined(pieces);
}
