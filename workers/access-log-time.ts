// Wall-clock times for access log lines: ISO-8601 with milliseconds (the default line and
// `%START_TIME%`), and `%START_TIME(FORMAT)%`'s strftime-style formats, compiled once per
// snapshot into a list of fields computed from the epoch milliseconds (UTC, no Date).

// The part up to the second is formatted once per second (a Date and toISOString per line
// cost more than the rest of the line).
let cachedSecond = -1;
let cachedPrefix = '';

/** ISO-8601 time with milliseconds, UTC: `2026-03-02T10:15:04.123Z`. */
export function isoTime(ms: number): string {
  const whole = Math.floor(ms);
  const second = Math.floor(whole / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, 20); // "YYYY-MM-DDTHH:MM:SS."
  }
  const milli = whole - second * 1000;
  return cachedPrefix + (milli < 10 ? '00' : milli < 100 ? '0' : '') + milli + 'Z';
}

/** One piece of a compiled time format: literal text or a field of the time. */
type TimePiece = string | ((t: Civil) => string);

/** A time split into its UTC fields; reused, one per format. */
interface Civil {
  ms: number;
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`);

/** The field for a conversion character, or undefined when it is not one Remora has. */
function field(c: string, digits: number): ((t: Civil) => string) | undefined {
  switch (c) {
    case 'Y': return (t) => `${t.year}`;
    case 'm': return (t) => pad2(t.month);
    case 'd': return (t) => pad2(t.day);
    case 'H': return (t) => pad2(t.hour);
    case 'M': return (t) => pad2(t.minute);
    case 'S': return (t) => pad2(t.second);
    case 's': return (t) => `${Math.floor(t.ms / 1000)}`;
    case 'F': return (t) => `${t.year}-${pad2(t.month)}-${pad2(t.day)}`;
    case 'T': return (t) => `${pad2(t.hour)}:${pad2(t.minute)}:${pad2(t.second)}`;
    case 'z': return () => '+0000';
    case 'Z': return () => 'UTC';
    case 'f': {
      // Envoy's %f (9 digits) and %1f..%9f: the fraction of the second; Remora's clock
      // has milliseconds, so digits past the third are 0.
      return (t) => {
        const milli = `${t.ms - Math.floor(t.ms / 1000) * 1000}`.padStart(3, '0');
        return digits <= 3 ? milli.slice(0, digits) : milli.padEnd(digits, '0');
      };
    }
    default: return undefined;
  }
}

/** A `%START_TIME(FORMAT)%` format compiled: epoch milliseconds → text. Conversions
 *  Remora has: %Y %m %d %H %M %S %s %F %T %z %Z %f %1f..%9f %%; a format with any other
 *  prints ISO-8601 instead. */
export function compileTimeFormat(format: string): (ms: number) => string {
  const pieces: TimePiece[] = [];
  for (let i = 0; i < format.length; i++) {
    const ch = format[i];
    if (ch !== '%') {
      if (typeof pieces[pieces.length - 1] === 'string') pieces[pieces.length - 1] += ch;
      else pieces.push(ch);
      continue;
    }
    let c = format[i + 1] ?? '';
    let digits = 9;
    if (c >= '1' && c <= '9' && format[i + 2] === 'f') {
      digits = Number(c);
      c = 'f';
      i++;
    }
    i++;
    if (c === '%') {
      pieces.push('%');
      continue;
    }
    const f = field(c, digits);
    if (f === undefined) return isoTime;
    pieces.push(f);
  }
  const t: Civil = { ms: 0, year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  return (ms: number): string => {
    civil(Math.floor(ms), t);
    let out = '';
    for (const p of pieces) out += typeof p === 'string' ? p : p(t);
    return out;
  };
}

/** Fills `t` with the UTC fields of `ms` (days to a date: Howard Hinnant's civil_from_days). */
function civil(ms: number, t: Civil): void {
  t.ms = ms;
  const days = Math.floor(ms / 86_400_000);
  const inDay = ms - days * 86_400_000;
  t.hour = Math.floor(inDay / 3_600_000);
  t.minute = Math.floor(inDay / 60_000) % 60;
  t.second = Math.floor(inDay / 1000) % 60;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  t.day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  t.month = mp < 10 ? mp + 3 : mp - 9;
  t.year = yoe + era * 400 + (t.month <= 2 ? 1 : 0);
}
