/**
 * The pure helpers behind the host API a script sees (`parse_time`, `format_time`, `url_encode`), kept apart
 * from the Lua plumbing so they can be tested as plain functions.
 */

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))$/;

/** Epoch milliseconds of an RFC 3339 / ISO 8601 date-time (fractions below 1 ms are dropped), or an error text. */
export function parseIsoTime(text: string): number | { error: string } {
  const m = RFC3339.exec(text);
  if (m === null)
    return { error: `not an ISO 8601 date-time with seconds and a zone: ${JSON.stringify(text)}` };
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const fraction = m[7] === undefined ? 0 : Math.floor(Number(`0.${m[7]}`) * 1000 + 1e-6);
  if (month < 1 || month > 12) return { error: `month out of range in ${JSON.stringify(text)}` };
  if (day < 1 || day > daysInMonth(year, month))
    return { error: `day out of range in ${JSON.stringify(text)}` };
  if (hour > 23 || minute > 59 || second > 59)
    return { error: `time out of range in ${JSON.stringify(text)}` };
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    const offsetHours = Number(m[10]);
    const offsetMins = Number(m[11]);
    if (offsetHours > 23 || offsetMins > 59)
      return { error: `zone offset out of range in ${JSON.stringify(text)}` };
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not map years 0..99 to 1900..1999.
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, fraction);
  return date.getTime() - offsetMinutes * 60_000;
}

/** ISO 8601 in UTC with milliseconds (`2025-01-15T08:30:00.000Z`), or an error text. */
export function formatIsoTime(ms: number): string | { error: string } {
  if (!Number.isFinite(ms)) return { error: `${String(ms)} is not a time` };
  const date = new Date(Math.floor(ms));
  if (Number.isNaN(date.getTime())) return { error: `${String(ms)} is outside the range of dates` };
  return date.toISOString();
}

const HEX = '0123456789ABCDEF';

/**
 * Percent-encodes every byte outside RFC 3986's unreserved set (`A-Z a-z 0-9 - . _ ~`), so the result is safe
 * as a query value or a path segment. Works on bytes: a Lua string need not be valid UTF-8.
 */
export function urlEncodeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) {
    if (
      (byte >= 0x30 && byte <= 0x39) ||
      (byte >= 0x41 && byte <= 0x5a) ||
      (byte >= 0x61 && byte <= 0x7a) ||
      byte === 0x2d ||
      byte === 0x2e ||
      byte === 0x5f ||
      byte === 0x7e
    ) {
      out += String.fromCharCode(byte);
    } else {
      out += `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
    }
  }
  return out;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** The levels `log()` accepts from a script: a subset of the config's `log.level` values. */
export const SCRIPT_LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type ScriptLogLevel = (typeof SCRIPT_LOG_LEVELS)[number];

/** Log lines one hook call may write; the rest are counted and reported once, so a loop cannot flood logs. */
export const MAX_LOG_LINES_PER_CALL = 20;
/** Longest log message kept, in characters. */
export const MAX_LOG_MESSAGE = 2000;
