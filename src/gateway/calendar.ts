/**
 * RFC 3339 timestamps in plain arithmetic: reading one into its fields and
 * writing an instant as one, without a `Date`, a regular expression or a
 * formatted string on the way. Every search reads two timestamps from the
 * request and writes two to the platform; done with `Date`, a match and
 * `toISOString` that was about 5% of the instructions of a REST search.
 *
 * Dates are proleptic Gregorian in UTC, as `Date` and protobuf's Timestamp
 * count them (the day arithmetic is Howard Hinnant's `days_from_civil` and
 * `civil_from_days`).
 */

/** The fields of an RFC 3339 timestamp as written; nothing is checked but the shape. */
export interface Rfc3339Fields {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
  /** The fraction of the second, in nanoseconds (0 without one). */
  readonly nanos: number;
  /** The UTC offset in minutes (0 for `Z`); its hours and minutes as written are `offsetHours` and `offsetMinutes`. */
  readonly offset: number;
  readonly offsetHours: number;
  readonly offsetMinutes: number;
}

const ZERO = 48;
const HYPHEN = 45;
const COLON = 58;
const DOT = 46;
const PLUS = 43;
const T = 84;
const Z = 90;

/** The value of the `count` ASCII digits at `at`, or -1 when one of them is not a digit. */
function digits(text: string, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i++) {
    const d = text.charCodeAt(i) - ZERO;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}

/**
 * Reads `YYYY-MM-DDTHH:MM:SS[.f…]` followed by `Z` or `±HH:MM` (one to nine
 * fraction digits, ASCII digits only, `T` and `Z` upper case), or returns
 * undefined when the text has another shape. Whether the fields name a real
 * date and time is the caller's check.
 */
export function readRfc3339(text: string): Rfc3339Fields | undefined {
  const length = text.length;
  if (length < 20) return undefined;
  if (text.charCodeAt(4) !== HYPHEN || text.charCodeAt(7) !== HYPHEN || text.charCodeAt(10) !== T) return undefined;
  if (text.charCodeAt(13) !== COLON || text.charCodeAt(16) !== COLON) return undefined;
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hour = digits(text, 11, 2);
  const minute = digits(text, 14, 2);
  const second = digits(text, 17, 2);
  if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return undefined;
  let at = 19;
  let nanos = 0;
  if (text.charCodeAt(at) === DOT) {
    const start = ++at;
    while (at < length && at - start < 10) {
      const d = text.charCodeAt(at) - ZERO;
      if (d < 0 || d > 9) break;
      nanos = nanos * 10 + d;
      at++;
    }
    const count = at - start;
    if (count < 1 || count > 9) return undefined;
    nanos *= 10 ** (9 - count);
  }
  const zone = text.charCodeAt(at);
  if (zone === Z) {
    if (at + 1 !== length) return undefined;
    return { year, month, day, hour, minute, second, nanos, offset: 0, offsetHours: 0, offsetMinutes: 0 };
  }
  if ((zone !== PLUS && zone !== HYPHEN) || at + 6 !== length || text.charCodeAt(at + 3) !== COLON) return undefined;
  const offsetHours = digits(text, at + 1, 2);
  const offsetMinutes = digits(text, at + 4, 2);
  if (offsetHours < 0 || offsetMinutes < 0) return undefined;
  const offset = (zone === HYPHEN ? -1 : 1) * (offsetHours * 60 + offsetMinutes);
  return { year, month, day, hour, minute, second, nanos, offset, offsetHours, offsetMinutes };
}

/** Days since 1970-01-01 of a date (month 1 to 12; a day past the month's end rolls over, as `Date.UTC` does). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  return era * 146_097 + yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear - 719_468;
}

/** The number of days in a month (1 to 12) of a year. */
export function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

const MS_PER_DAY = 86_400_000;

function pad2(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/**
 * An instant (milliseconds since the epoch, years 0001 to 9999) as RFC 3339
 * in UTC: what `new Date(ms).toISOString()` writes, without the fraction when
 * it is `.000` (`2030-01-07T09:00:00Z`).
 */
export function isoOfMillis(ms: number): string {
  const days = Math.floor(ms / MS_PER_DAY);
  let rest = ms - days * MS_PER_DAY;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const hour = Math.floor(rest / 3_600_000);
  rest -= hour * 3_600_000;
  const minute = Math.floor(rest / 60_000);
  rest -= minute * 60_000;
  const second = Math.floor(rest / 1000);
  const millis = rest - second * 1000;
  const fraction = millis === 0 ? "" : millis < 10 ? `.00${millis}` : millis < 100 ? `.0${millis}` : `.${millis}`;
  const y = year < 10 ? `000${year}` : year < 100 ? `00${year}` : year < 1000 ? `0${year}` : `${year}`;
  return `${y}-${pad2(month)}-${pad2(day)}T${pad2(hour)}:${pad2(minute)}:${pad2(second)}${fraction}Z`;
}
